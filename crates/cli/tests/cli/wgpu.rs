//! `sweep` on burn's wgpu backend (a build with `--features wgpu`; lavapipe in CI): devices,
//! answers equal to the CPU's, precisions wgpu cannot run. (Resuming on wgpu is tested in
//! qa-model's wgpu tests in one process: every new process pays a minute of kernel
//! compilation on lavapipe; kill -9 and resume are backend-independent and tested on CPU.)

use super::{sweep, sweep_ok, tiny_trial, tmp};

/// `sweep devices` lists the adapter the other tests use.
#[test]
fn wgpu_devices_lists_the_adapter() {
    let out = sweep_ok(&["devices"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("wgpu:0 ")),
        "no wgpu:0 (Debian: apt install mesa-vulkan-drivers):\n{text}"
    );
}

/// A checkpoint's answers on wgpu are the CPU's answers, question for question.
#[test]
fn wgpu_predict_gives_the_cpu_answers() {
    let dir = tmp("wgpu-predict");
    let yaml = tiny_trial(&dir, ", max_steps: 30");
    let config = dir.join("trial.yaml");
    std::fs::write(&config, &yaml).unwrap();
    let run = dir.join("run");
    sweep_ok(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    let eval = dir.join("eval.json");
    let predict = |device: &str| -> serde_json::Value {
        let out = dir.join(format!("predictions-{device}.json"));
        sweep_ok(&[
            "predict",
            "--model",
            run.join("checkpoint").to_str().unwrap(),
            "--dataset",
            eval.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--max-seq-length",
            "64",
            "--doc-stride",
            "16",
            "--device",
            device,
        ]);
        serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
    };
    let (cpu, gpu) = (predict("cpu"), predict("wgpu:0"));
    assert_eq!(cpu.as_object().map(|m| m.len()), Some(30));
    assert_eq!(cpu, gpu, "answers differ between cpu and wgpu:0");
}

/// bf16 has no WGSL type: refused before anything runs, with what to use instead.
#[test]
fn wgpu_bf16_is_a_clear_error() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../qa-model/tests/fixtures/bert-tiny"
    );
    let out = sweep(&[
        "check-logits",
        "--model",
        fixture,
        "--reference",
        &format!("{fixture}/expected_logits.json"),
        "--device",
        "wgpu:0",
        "--precision",
        "bf16",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bfloat16") && err.contains("use f32"), "{err}");
}

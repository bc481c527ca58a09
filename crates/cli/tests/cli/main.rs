//! The `sweep` binary as a user runs it: exit codes, stdout JSON, stderr messages.

// Test helpers may unwrap: a panic here is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

mod disk;
mod gpu_kit;
mod hostile;
mod runner;
mod slurm;
#[cfg(feature = "wgpu")]
mod wgpu;

fn sweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `sweep` and fails the test with its stderr unless it succeeds.
fn sweep_ok(args: &[&str]) -> Output {
    let out = sweep(args);
    assert!(
        out.status.success(),
        "sweep {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn shared(rel: &str) -> String {
    let dir = std::env::var_os("QA_SWEEP_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"));
    dir.join(rel).display().to_string()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sweep-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn score_prints_official_json() {
    let preds = tmp("preds.json");
    std::fs::write(&preds, r#"{"1147-2-1": "梵語", "1147-2-2": "錯的答案"}"#).unwrap();
    let out = sweep_ok(&[
        "score",
        "--dataset",
        &shared("drcd/DRCD_test.json"),
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["TOTAL"], 3493);
    assert_eq!(v["SKIP"], 3491);
    // One right answer out of 3493: 100/3493 = 0.0286… → 0.029.
    assert_eq!(v["EM"], 0.029);
    assert_eq!(v.as_object().unwrap().len(), 4);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("3491 of 3493 questions have no prediction")
    );
}

#[test]
fn synth_is_deterministic_and_scores_itself_100() {
    let a = tmp("a.json");
    let b = tmp("b.json");
    for p in [&a, &b] {
        let out = sweep_ok(&[
            "data",
            "synth",
            "--out",
            p.to_str().unwrap(),
            "--questions",
            "120",
            "--seed",
            "3",
        ]);
        assert!(out.status.success());
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // Gold answers as predictions.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    let mut gold = serde_json::Map::new();
    for art in v["data"].as_array().unwrap() {
        for p in art["paragraphs"].as_array().unwrap() {
            for q in p["qas"].as_array().unwrap() {
                gold.insert(
                    q["id"].as_str().unwrap().into(),
                    q["answers"][0]["text"].clone(),
                );
            }
        }
    }
    let preds = tmp("gold.json");
    std::fs::write(&preds, serde_json::to_string(&gold).unwrap()).unwrap();
    let out = sweep(&[
        "score",
        "--dataset",
        a.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["EM"].as_f64(), s["F1"].as_f64(), s["TOTAL"].as_u64()),
        (Some(100.0), Some(100.0), Some(120))
    );
}

#[test]
fn stats_reports_windows_and_unknown_tokens() {
    let out = sweep_ok(&[
        "data",
        "stats",
        "--dataset",
        &shared("drcd/DRCD_dev.json"),
        "--vocab",
        &shared("vocab/bert-base-chinese-vocab.txt"),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["load"]["questions"], 3524);
    assert!(v["eval_features"].as_u64().unwrap() > 3524);
    assert!(v["unk_token_share"].as_f64().unwrap() < 0.01);
}

#[test]
fn bad_input_fails_with_a_message_naming_the_file() {
    let bad = tmp("bad.json");
    std::fs::write(&bad, r#"{"data": [{"paragraphs": [{"context": 3}]}]}"#).unwrap();
    let preds = tmp("p.json");
    std::fs::write(&preds, "{}").unwrap();
    let out = sweep(&[
        "score",
        "--dataset",
        bad.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json") && err.contains("data[0].paragraphs[0].context"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let out = sweep(&["score", "--dataset"]);
    assert_eq!(out.status.code(), Some(2));
    let out = sweep(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("score"));
}

#[test]
fn train_predict_score_round_trip() {
    let dir = tmp("train");
    let train = dir.with_file_name("train-data.json");
    let eval = dir.with_file_name("eval-data.json");
    let vocab = dir.with_file_name("vocab.txt");
    for (p, n, seed) in [(&train, "150", "1"), (&eval, "40", "2")] {
        let out = sweep(&[
            "data",
            "synth",
            "--out",
            p.to_str().unwrap(),
            "--questions",
            n,
            "--seed",
            seed,
        ]);
        assert!(out.status.success());
    }
    let out = sweep(&[
        "data",
        "vocab",
        "--dataset",
        train.to_str().unwrap(),
        "--dataset",
        eval.to_str().unwrap(),
        "--out",
        vocab.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let config = dir.with_file_name("trial.yaml");
    std::fs::write(
        &config,
        format!(
            "model: {{preset: tiny, vocab: {}}}\ndata: {{train: {}, eval: {}}}\ntrain: {{max_steps: 4, batch_size: 8, max_seq_length: 96, doc_stride: 32}}\n",
            vocab.display(),
            train.display(),
            eval.display()
        ),
    )
    .unwrap();
    let run_dir = dir.with_file_name("run");
    let out = sweep_ok(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["steps"], 4);

    let preds = dir.with_file_name("preds.json");
    sweep_ok(&[
        "predict",
        "--model",
        run_dir.join("checkpoint").to_str().unwrap(),
        "--dataset",
        eval.to_str().unwrap(),
        "--output",
        preds.to_str().unwrap(),
        "--max-seq-length",
        "96",
        "--doc-stride",
        "32",
    ]);
    let out = sweep_ok(&[
        "score",
        "--dataset",
        eval.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    let score: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // `sweep predict` reproduces the trial's own final evaluation exactly.
    assert_eq!(
        score["F1"].as_f64().unwrap(),
        (result["F1"].as_f64().unwrap() * 1000.0).round() / 1000.0
    );
    assert_eq!(score["TOTAL"], 40);
}

/// `sweep train` on a trial config written from `yaml`; the run is expected to fail with
/// exit code 1, and its stderr is returned.
fn train_fails(name: &str, yaml: &str) -> String {
    let config = tmp(name);
    std::fs::write(&config, yaml).unwrap();
    let out_dir = tmp(&format!("{name}.out"));
    let out = sweep(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_trial_config_names_the_key() {
    let err = train_fails(
        "bad-trial.yaml",
        "model: {preset: tiny, vocab: v.txt}\ndata: {train: a, eval: b}\ntrain: {epoch: 2}\n",
    );
    assert!(
        err.contains("bad-trial.yaml") && err.contains("epoch"),
        "{err}"
    );
}

#[test]
fn pure_half_precision_on_cpu_is_a_clear_error() {
    // Mixed precision (fp16: true, precision: bf16) runs on CPU; pure half does not.
    let err = train_fails(
        "pure-bf16-trial.yaml",
        "model: {preset: tiny, vocab: v.txt}\ndata: {train: a, eval: b}\ntrain: {precision: pure-bf16}\n",
    );
    assert!(
        err.contains("pure-bf16-trial.yaml") && err.contains("needs a CUDA device"),
        "{err}"
    );
}

/// `sweep predict` on a device whose backend this build lacks: exit 1 and its stderr.
#[cfg(any(not(feature = "wgpu"), not(feature = "cuda")))]
fn predict_on_missing_backend(device: &str) -> String {
    let out = sweep(&[
        "predict",
        "--model",
        "x",
        "--dataset",
        &shared("drcd/DRCD_dev.json"),
        "--output",
        "o.json",
        "--device",
        device,
    ]);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn wgpu_device_without_wgpu_build_is_a_clear_error() {
    let err = predict_on_missing_backend("wgpu:0");
    assert!(
        err.contains("built without wgpu") && err.contains("--features wgpu"),
        "{err}"
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_device_without_cuda_build_is_a_clear_error() {
    let err = predict_on_missing_backend("cuda:0");
    assert!(
        err.contains("built without CUDA") && err.contains("--features cuda"),
        "{err}"
    );
}

/// Synthetic train/eval files and a char vocab under `dir`; returns the trial YAML text.
fn tiny_trial(dir: &std::path::Path, train_extra: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let (train, eval, vocab) = (
        dir.join("train.json"),
        dir.join("eval.json"),
        dir.join("vocab.txt"),
    );
    for (p, n, seed) in [(&train, "150", "1"), (&eval, "30", "2")] {
        assert!(sweep(&[
            "data",
            "synth",
            "--out",
            p.to_str().unwrap(),
            "--questions",
            n,
            "--seed",
            seed
        ])
        .status
        .success());
    }
    let v = [
        "data",
        "vocab",
        "--dataset",
        train.to_str().unwrap(),
        "--out",
        vocab.to_str().unwrap(),
    ];
    assert!(sweep(&v).status.success());
    format!(
        "model: {{preset: tiny, vocab: {}}}\nmodel_config: {{hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}}\n\
         data: {{train: {}, eval: {}}}\ntrain: {{batch_size: 4, max_seq_length: 64, doc_stride: 16, learning_rate: 1.0e-3{train_extra}}}\n",
        vocab.display(),
        train.display(),
        eval.display()
    )
}

#[test]
fn killed_trial_resumes_to_the_same_weights() {
    let dir = tmp("resume");
    // With dropout: on flex the masks are keyed by (seed, step, micro-batch, site), so the
    // resumed run draws the masks the uninterrupted run drew.
    let yaml = tiny_trial(&dir, ", max_steps: 60, save_steps: 5, eval_steps: 1000").replace(
        "hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0",
        "hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1",
    );
    assert!(yaml.contains("hidden_dropout_prob: 0.1"));
    let config = dir.join("trial.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (a, b) = (dir.join("uninterrupted"), dir.join("killed"));
    sweep_ok(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
    ]);

    // Start again, kill -9 as soon as a resume state exists, then run to the end.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args([
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            b.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !b.join("train_state/state.json").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no resume state appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !b.join("result.json").exists(),
        "the run finished before it could be killed"
    );
    let out = sweep_ok(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming from step"));
    assert!(
        !b.join("train_state").exists(),
        "resume state is removed at the end"
    );
    // A resumed run is the uninterrupted run, bit for bit, dropout included.
    let wa = std::fs::read(a.join("checkpoint/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("checkpoint/model.safetensors")).unwrap();
    assert!(wa == wb, "weights differ after resume");
    let ra: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("result.json")).unwrap()).unwrap();
    let rb: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("result.json")).unwrap()).unwrap();
    assert_eq!(
        (
            ra["F1"].clone(),
            ra["train_loss"].clone(),
            rb["steps"].clone()
        ),
        (rb["F1"].clone(), rb["train_loss"].clone(), 60.into())
    );
    // metrics.jsonl has each step once.
    let lines = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    let mut dedup = steps.clone();
    dedup.dedup();
    assert_eq!(steps, dedup, "a step was logged twice: {steps:?}");
}

#[test]
fn check_logits_against_hf_reference() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../qa-model/tests/fixtures");
    for name in ["bert-tiny", "albert-tiny"] {
        let dir = fixtures.join(name);
        let out = sweep_ok(&[
            "check-logits",
            "--model",
            dir.to_str().unwrap(),
            "--reference",
            dir.join("expected_logits.json").to_str().unwrap(),
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], true);
        assert!(v["max_abs_diff"].as_f64().unwrap() < 1e-5);
    }
}

#[test]
fn bench_train_measures_a_step() {
    let args = [
        "bench-train",
        "--preset",
        "tiny",
        "--vocab-size",
        "100",
        "--batch",
        "2",
        "--seq",
        "16",
        "--warmup",
        "0",
        "--steps",
        "1",
    ];
    let out = sweep(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["ms_per_step"].as_f64().unwrap() > 0.0);
    assert_eq!(v["batch"], 2);
    // Mixed precision on CPU; pure half only on CUDA.
    let mut amp = args.to_vec();
    amp.extend(["--precision", "f16"]);
    let out = sweep(&amp);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["precision"], "f16");
    let out = sweep(&["bench-train", "--precision", "pure-bf16"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a CUDA device"));
}

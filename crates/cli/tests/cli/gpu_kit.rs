//! The GPU kit's preflight (scripts/gpu-preflight.sh) against fake directory layouts: a
//! CUDA toolkit, PyTorch's CUDA 13 wheel (whole, and with crt/ in its own wheel), the split
//! CUDA 12 wheels, nothing at all; and its refusal of an NVRTC newer than the driver. The
//! GPU machine is borrowed for 15 minutes: these choices must be right before it starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gpu-preflight.sh")
}

fn touch(root: &Path, rel: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, "").unwrap();
}

fn layout(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gpu-kit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the discovery with only `toolkits` and `site_packages` as search roots.
fn discover(root: &Path, toolkits: &[&str], site_packages: &[&str]) -> (Output, String) {
    let join = |v: &[&str]| {
        v.iter()
            .map(|r| root.join(r).display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let out = Command::new("bash")
        .arg(script())
        .arg("--discover-only")
        .env_remove("CUDA_PATH")
        .env("GPU_PREFLIGHT_TOOLKIT_DIRS", join(toolkits))
        .env("GPU_PREFLIGHT_SITE_PACKAGES", join(site_packages))
        .env("GPU_PREFLIGHT_WORK", root.join("merged"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
}

#[test]
fn a_toolkit_is_found_with_its_nvrtc() {
    let d = layout("toolkit");
    touch(&d, "cuda-12.8/include/cuda_runtime.h");
    touch(&d, "cuda-12.8/include/crt/host_config.h");
    touch(&d, "cuda-12.8/lib64/libnvrtc.so.12");
    touch(&d, "cuda-12.8/lib64/libnvrtc-builtins.so.12.8");
    // A headerless folder earlier in the list is passed over.
    touch(&d, "empty/lib64/libnvrtc.so.11");
    let (out, t) = discover(&d, &["empty", "cuda-12.8"], &[]);
    assert!(out.status.success(), "{t}");
    assert_eq!(field(&t, "SOURCE"), "toolkit");
    assert!(field(&t, "CUDA_PATH").ends_with("cuda-12.8"), "{t}");
    assert!(
        field(&t, "NVRTC").ends_with("cuda-12.8/lib64/libnvrtc.so.12"),
        "{t}"
    );
}

#[test]
fn pytorch_cu13_wheel_is_used_whole() {
    let d = layout("cu13");
    let sp = "venv/lib/python3.12/site-packages";
    touch(&d, &format!("{sp}/nvidia/cu13/include/cuda_runtime.h"));
    touch(&d, &format!("{sp}/nvidia/cu13/include/crt/host_config.h"));
    touch(&d, &format!("{sp}/nvidia/cu13/include/cccl/cuda/barrier"));
    touch(&d, &format!("{sp}/nvidia/cu13/lib/libnvrtc.so.13"));
    touch(
        &d,
        &format!("{sp}/nvidia/cu13/lib/libnvrtc-builtins.so.13.0"),
    );
    let (out, t) = discover(&d, &[], &[sp]);
    assert!(out.status.success(), "{t}");
    assert_eq!(field(&t, "SOURCE"), "pip-cu13");
    assert!(field(&t, "CUDA_PATH").ends_with("nvidia/cu13"), "{t}");
    assert!(
        field(&t, "NVRTC").ends_with("cu13/lib/libnvrtc.so.13"),
        "{t}"
    );
}

#[test]
fn cu13_without_crt_is_merged_with_the_crt_wheel() {
    let d = layout("cu13-crt");
    let sp = "sp";
    touch(&d, &format!("{sp}/nvidia/cu13/include/cuda_runtime.h"));
    touch(&d, &format!("{sp}/nvidia/cu13/lib/libnvrtc.so.13"));
    touch(
        &d,
        &format!("{sp}/nvidia/cuda_crt/include/crt/host_config.h"),
    );
    let (out, t) = discover(&d, &[], &[sp]);
    assert!(out.status.success(), "{t}");
    assert_eq!(field(&t, "SOURCE"), "pip-cu13-merged");
    let cuda = PathBuf::from(field(&t, "CUDA_PATH"));
    assert!(cuda.join("include/cuda_runtime.h").exists());
    assert!(cuda.join("include/crt/host_config.h").exists());
}

#[test]
fn split_cu12_wheels_are_merged_by_symlinks() {
    let d = layout("cu12");
    let sp = "sp";
    touch(
        &d,
        &format!("{sp}/nvidia/cuda_runtime/include/cuda_runtime.h"),
    );
    touch(&d, &format!("{sp}/nvidia/cuda_runtime/include/cuda_fp16.h"));
    touch(
        &d,
        &format!("{sp}/nvidia/cuda_nvcc/include/crt/host_config.h"),
    );
    touch(&d, &format!("{sp}/nvidia/cuda_cccl/include/cuda/barrier"));
    touch(&d, &format!("{sp}/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"));
    let (out, t) = discover(&d, &[], &[sp]);
    assert!(out.status.success(), "{t}");
    assert_eq!(field(&t, "SOURCE"), "pip-cu12-merged");
    let cuda = PathBuf::from(field(&t, "CUDA_PATH"));
    for h in [
        "cuda_runtime.h",
        "cuda_fp16.h",
        "crt/host_config.h",
        "cccl/cuda/barrier",
    ] {
        assert!(cuda.join("include").join(h).exists(), "{h} missing in {t}");
    }
    assert!(
        field(&t, "NVRTC").ends_with("cuda_nvrtc/lib/libnvrtc.so.12"),
        "{t}"
    );
}

#[test]
fn nothing_found_is_a_clear_failure() {
    let d = layout("none");
    touch(&d, "sp/nvidia/cublas/lib/libcublas.so.12");
    let (out, t) = discover(&d, &["nowhere"], &["sp"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(t.trim(), "none");
}

/// The full preflight with stand-in versions: an NVRTC newer than the driver is refused
/// before any kernel is compiled; equal versions pass.
#[test]
fn an_nvrtc_newer_than_the_driver_is_refused() {
    let d = layout("versions");
    touch(&d, "cuda/include/cuda_runtime.h");
    touch(&d, "cuda/include/crt/host_config.h");
    touch(&d, "cuda/lib64/libnvrtc.so.13");
    let run = |nvrtc: &str, driver: &str| {
        Command::new("bash")
            .arg("-c")
            .arg(format!("source '{}' && gpu_preflight", script().display()))
            .env_remove("CUDA_PATH")
            .env("GPU_PREFLIGHT_TOOLKIT_DIRS", d.join("cuda"))
            .env("GPU_PREFLIGHT_SITE_PACKAGES", "")
            .env("GPU_PREFLIGHT_NVRTC_VERSION", nvrtc)
            .env("GPU_PREFLIGHT_DRIVER_VERSION", driver)
            .env("GPU_PREFLIGHT_SKIP_PTXJIT", "1")
            .output()
            .unwrap()
    };
    let out = run("13.2", "12.8");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than the driver"));
    let out = run("12.10", "12.9");
    assert_eq!(out.status.code(), Some(3), "12.10 is newer than 12.9");
    let out = run("12.8", "12.8");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "toolkit");
    assert_eq!(v["nvrtc_version"], "12.8");
}

/// The whole kit, dry-run on this CPU at toy sizes with the debug `sweep` standing in for
/// `sweep-cuda`: every step runs in order under the deadline, results land in
/// summary.jsonl, and tools/gpu_summary.py renders the tables.
#[test]
fn gpu_check_dry_run_on_cpu() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = layout("dry-run");
    let run = Command::new("bash")
        .arg(root.join("scripts/gpu-check.sh"))
        .env("OUT", &out)
        .env("GPU_CHECK_BIN", env!("CARGO_BIN_EXE_sweep"))
        .env("GPU_CHECK_DEVICE", "cpu")
        .env("GPU_CHECK_SKIP_PREFLIGHT", "1")
        .env("GPU_CHECK_TORCH", "0")
        .env("GPU_CHECK_PRESET", "tiny")
        .env("GPU_CHECK_SEQ", "32")
        .env("GPU_CHECK_TRAIN_QUESTIONS", "60")
        .env("GPU_CHECK_ONLY", "smoke,parity,bench,train")
        .env("GPU_CHECK_BUDGET", "400")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{log}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = std::fs::read_to_string(out.join("summary.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = summary
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let parity: Vec<_> = rows
        .iter()
        .filter(|r| r.get("max_abs_diff").is_some())
        .collect();
    assert_eq!(parity.len(), 10, "{summary}");
    assert!(parity.iter().all(|r| r["ok"] == true), "{summary}");
    let bench: Vec<_> = rows
        .iter()
        .filter(|r| r.get("ms_per_step").is_some())
        .collect();
    assert_eq!(bench.len(), 2, "{summary}");
    assert!(
        rows.iter().any(|r| r.get("train_loss").is_some()),
        "{summary}"
    );
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("| bert-aligned | f32 |") && md.contains("| burn flex |"),
        "{md}"
    );
    let steps = std::fs::read_to_string(out.join("steps.jsonl")).unwrap();
    assert!(steps.lines().count() >= 13, "{steps}");
    assert!(
        !root.join("cubecl.toml").exists(),
        "the kit leaves no cubecl.toml behind"
    );
}

//! Dev-only helpers shared by the test suites: [`fuzz`], the loaders' fuzzer,
//! [`require_slurm`] and [`study`]. (The fake trial the runner's tests use lives with the runner:
//! `crates/runner/tests/support`.)

pub mod fuzz;

/// Why a test is `#[ignore]`d: it needs a Slurm cluster. `make test-all` (CI) runs it.
pub const NEEDS_SLURM: &str =
    "needs a Slurm cluster (sudo tools/slurm-local.sh starts one); make test-all runs it";

/// Fails the test unless a Slurm cluster answers `sinfo` (tools/slurm-local.sh starts a
/// one-node one). The tests that call it are `#[ignore]`d, so a machine without Slurm reports
/// them as ignored instead of passing them untested.
pub fn require_slurm() {
    let up = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    assert!(
        up,
        "no Slurm cluster answers sinfo: start one with `sudo tools/slurm-local.sh`"
    );
}

/// Debian's `chromium` (or another Chromium on the PATH), for the browser tests; `None` when
/// none is installed (those tests are `#[ignore]`d and fail without it).
pub fn chromium() -> Option<std::path::PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|c| {
            let out = std::process::Command::new("which").arg(c).output().ok()?;
            out.status
                .success()
                .then(|| std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

/// A study YAML over a test workspace holding `vocab.txt`, `train.json` and `dev.json` (tiny
/// preset, `steps` optimizer steps); `extra` is appended (ablations, seeds…). Used by the
/// runner's and the CLI's runner tests.
pub fn study(dir: &std::path::Path, name: &str, steps: u32, extra: &str) -> std::path::PathBuf {
    let d = dir.display();
    let text = format!(
        "name: {name}\nbase:\n  model: {{preset: tiny, vocab: {d}/vocab.txt}}\n  data: {{train: {d}/train.json, eval: {d}/dev.json}}\n  train: {{max_steps: {steps}, learning_rate: 3.0e-5, max_seq_length: 64, doc_stride: 16}}\n{extra}"
    );
    let path = dir.join(format!("{name}.yaml"));
    #[allow(clippy::unwrap_used)]
    std::fs::write(&path, text).unwrap();
    path
}

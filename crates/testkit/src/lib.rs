//! Dev-only helpers shared by the test suites: [`fuzz`], the loaders' fuzzer,
//! [`slurm_available`] and [`study`]. (The fake trial the runner's tests use lives with the runner:
//! `crates/runner/tests/support`.)

pub mod fuzz;

/// Whether a Slurm cluster answers `sinfo` (tools/slurm-local.sh starts a one-node one).
/// With `QA_SWEEP_REQUIRE_SLURM` set (CI), a missing cluster fails the test instead of
/// skipping it.
pub fn slurm_available() -> bool {
    let up = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        assert!(
            std::env::var_os("QA_SWEEP_REQUIRE_SLURM").is_none(),
            "QA_SWEEP_REQUIRE_SLURM is set but no Slurm cluster answers sinfo"
        );
        eprintln!("skipped: no Slurm cluster (tools/slurm-local.sh starts one)");
    }
    up
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

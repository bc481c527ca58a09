//! Dev-only helpers shared by the test suites: [`fuzz`], the loaders' fuzzer, and
//! [`slurm_available`]. (The fake trial the runner's tests use lives with the runner:
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

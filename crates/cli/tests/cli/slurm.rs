//! `sweep run --executor slurm` with real training against a real Slurm cluster (CI starts
//! a one-node cluster with tools/slurm-local.sh). `#[ignore]`d: `make test-all` runs it, and
//! it fails when no cluster answers. Scancel, time limits and reattaching are tested with
//! the fake trial in crates/runner/tests.

use std::path::Path;
use std::process::Command;

use super::runner::{export, fake_trial, stderr, study, workspace};

pub(crate) use testkit::require_slurm;

/// `sweep run --executor slurm` with the fake trial (or the real one with `real`).
fn slurm_cmd(dir: &Path, study: &Path, step_ms: u32, extra: &[&str], real: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sweep"));
    c.arg("run")
        .arg(study)
        .arg("--db")
        .arg(dir.join("sweep.db"))
        .args(["--executor", "slurm", "--slurm-poll", "1"])
        .args(extra)
        .env("FAKE_TRIAL_STEP_MS", step_ms.to_string());
    if !real {
        c.env("SWEEP_TRIAL_COMMAND", fake_trial());
    }
    c
}

#[test]
#[ignore = "needs a Slurm cluster (sudo tools/slurm-local.sh); make test-all runs it"]
fn slurm_results_equal_local_results() {
    require_slurm();
    let dir = workspace("slurm-vs-local");
    let s = study(
        &dir,
        "svl",
        8,
        "ablations: [{name: lr-1e-3, set: {train.learning_rate: 1.0e-3}}]\nseeds: [1]\n",
    );
    let local = dir.join("local");
    let out = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args(["run", s.to_str().unwrap(), "--devices", "cpu", "--db"])
        .arg(local.join("sweep.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let remote = dir.join("slurm");
    let out = slurm_cmd(&remote, &s, 0, &[], true).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (a, b) = (export(&local, "svl"), export(&remote, "svl"));
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["id"], y["id"]);
        assert_eq!(x["status"], "succeeded");
        assert_eq!(y["status"], "succeeded");
        // Same seeds on CPU: the same numbers, whoever ran them.
        assert_eq!(x["em"], y["em"], "{x} vs {y}");
        assert_eq!(x["f1"], y["f1"], "{x} vs {y}");
    }
}

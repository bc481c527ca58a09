//! The Slurm executor with the fake trial against a real Slurm cluster (CI starts a
//! one-node cluster with tools/slurm-local.sh). `#[ignore]`d: `make test-all` runs them, and
//! they fail when no cluster answers. (Real training under Slurm: the cli's tests.)

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

pub(crate) use testkit::require_slurm;

/// The runner with `--executor slurm` and the fake trial.
pub(crate) fn slurm_cmd(dir: &Path, study: &Path, step_ms: u32, extra: &[&str]) -> Command {
    let mut c = Command::new(RUN_STUDY);
    c.arg(study)
        .arg("--db")
        .arg(dir.join("sweep.db"))
        .args(["--executor", "slurm", "--slurm-poll", "1"])
        .args(extra)
        .env("SWEEP_TRIAL_COMMAND", FAKE_TRIAL)
        .env("FAKE_TRIAL_STEP_MS", step_ms.to_string());
    c
}

pub(crate) fn slurm_run(dir: &Path, study: &Path, step_ms: u32, extra: &[&str]) -> Output {
    slurm_cmd(dir, study, step_ms, extra).output().unwrap()
}

fn attempts_started(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("trials"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("attempts.log")).ok())
                .map(|t| t.lines().filter(|l| l.starts_with("start")).count())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "needs a Slurm cluster (sudo tools/slurm-local.sh); make test-all runs it"]
fn scancel_interrupts_and_the_next_run_resumes() {
    require_slurm();
    let dir = workspace("slurm-scancel");
    let s = study(&dir, "scx", 100, "seeds: [1]\n");
    let child = slurm_cmd(&dir, &s, 50, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the task has trained a few steps, then kill it the way a user would.
    wait_for(
        "the task to start training",
        Duration::from_secs(60),
        || {
            std::fs::read_dir(dir.join("trials"))
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| std::fs::read_to_string(e.ok()?.path().join("metrics.jsonl")).ok())
                .is_some_and(|t| t.lines().count() >= 5)
        },
    );
    let job = std::fs::read_dir(dir.join("slurm"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".out")
                .map(|s| s.split('_').next().unwrap_or("").to_string())
        })
        .expect("a slurm output file");
    let st = Command::new("scancel").arg(&job).status().unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = export(&dir, "scx");
    assert_eq!(rows[0]["status"], "interrupted", "{rows:?}");
    // The next run resubmits and the trial resumes from its saved step.
    let out = slurm_run(&dir, &s, 5, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_complete_metrics(&dir, "scx", 100);
    assert_never_concurrent(&dir);
    assert_eq!(attempts_started(&dir), 2);
}

#[test]
#[ignore = "needs a Slurm cluster (sudo tools/slurm-local.sh); make test-all runs it"]
fn a_task_past_its_time_limit_is_resubmitted_and_resumes() {
    require_slurm();
    let dir = workspace("slurm-timeout");
    let s = study(&dir, "tlim", 100, "seeds: [1]\n");
    // 100 steps of 1 s under a 1-minute limit: the task is told to stop 20 s before the
    // limit, saves its state, and the runner resubmits it until it is done.
    let out = slurm_run(&dir, &s, 1000, &["--time", "00:01:00"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = export(&dir, "tlim");
    assert_eq!(rows[0]["status"], "succeeded");
    assert!(rows[0]["attempts"].as_i64().unwrap() >= 2, "{rows:?}");
    assert_complete_metrics(&dir, "tlim", 100);
    assert_never_concurrent(&dir);
}

#[test]
#[ignore = "needs a Slurm cluster (sudo tools/slurm-local.sh); make test-all runs it"]
fn a_restarted_runner_reattaches_to_its_jobs() {
    require_slurm();
    let dir = workspace("slurm-restart");
    let s = study(
        &dir,
        "rst",
        40,
        "ablations: [{name: lr, set: {train.learning_rate: 1.0e-4}}]\nseeds: [1, 2]\n",
    );
    let mut child = slurm_cmd(&dir, &s, 100, &["--max-parallel", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the array to be submitted", Duration::from_secs(30), || {
        std::fs::read_dir(dir.join("slurm"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().ends_with(".sbatch"))
            })
            .unwrap_or(false)
    });
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap(); // SIGKILL: the runner dies, the jobs do not
    let _ = child.wait();
    let out = slurm_run(&dir, &s, 100, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("reattached to"), "{}", stderr(&out));
    let rows: Vec<Value> = export(&dir, "rst");
    assert!(rows.iter().all(|r| r["attempts"] == 1), "{rows:?}");
    assert_eq!(by_seed(&rows, 2)["status"], "succeeded");
    assert_complete_metrics(&dir, "rst", 40);
    assert_never_concurrent(&dir);
}

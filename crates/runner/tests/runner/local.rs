//! The local executor through the scheduler.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn every_outcome_is_recorded() {
    let dir = workspace("outcomes");
    let s = study(&dir, "o", 10, "seeds: [1, 2, 3, 4, 5, 6]\n");
    let behavior =
        r#"{"seed:2":"crash","seed:3":"diverge","seed:4":"oom","seed:5":"hang","seed:6":"abort"}"#;
    let out = run(
        &dir,
        &s,
        behavior,
        &["--per-device", "6", "--trial-timeout", "2"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = export(&dir, "o");
    let status = |seed| by_seed(&rows, seed)["status"].as_str().unwrap().to_string();
    assert_eq!(status(1), "succeeded");
    assert_eq!(status(2), "failed");
    assert_eq!(status(3), "diverged");
    assert_eq!(status(4), "out_of_memory");
    assert_eq!(status(5), "timed_out");
    assert_eq!(status(6), "failed");
    assert!(by_seed(&rows, 1)["f1"].as_f64().unwrap() > 50.0);
    // Exit codes, signals and stderr are kept apart in the database (and named on stderr).
    let e = stderr(&out);
    assert!(
        e.contains("exit code 1: fake-trial: crashing on purpose"),
        "{e}"
    );
    assert!(e.contains("killed by signal 6"), "{e}");
}

#[test]
fn retries_rerun_failures_but_not_divergence() {
    let dir = workspace("retries");
    let s = study(&dir, "r", 5, "seeds: [1, 2]\n");
    let behavior = r#"{"seed:1":"crash-once","seed:2":"diverge"}"#;
    let out = run(&dir, &s, behavior, &["--retries", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = export(&dir, "r");
    assert_eq!(by_seed(&rows, 1)["status"], "succeeded");
    assert_eq!(by_seed(&rows, 1)["attempts"], 2);
    assert_eq!(by_seed(&rows, 2)["status"], "diverged");
    assert_eq!(by_seed(&rows, 2)["attempts"], 1);
}

#[test]
fn a_rerun_skips_finished_trials() {
    let dir = workspace("rerun");
    let s = study(
        &dir,
        "again",
        5,
        "ablations: [{name: lr, set: {train.learning_rate: 1.0e-4}}]\nseeds: [1, 2]\n",
    );
    let mut opts = options(&dir);
    opts.per_device = 2;
    let summary = runner::run(&plan(&s), &opts, &runner::ExecutorKind::Local).unwrap();
    assert_eq!(summary.distinct_trials, 4);
    assert_eq!(summary.outcomes[&spec::protocol::TrialStatus::Succeeded], 4);
    let first = export(&dir, "again");
    let summary = runner::run(&plan(&s), &opts, &runner::ExecutorKind::Local).unwrap();
    assert_eq!(summary.already_done, 4);
    assert!(summary.outcomes.is_empty(), "{summary:?}");
    assert_eq!(first, export(&dir, "again"));
    assert!(first
        .iter()
        .all(|r| r["attempts"] == 1 && r["status"] == "succeeded"));
}

#[test]
fn a_result_whose_recording_was_lost_is_recorded_not_rerun() {
    let dir = workspace("recover");
    let s = study(&dir, "rec", 5, "seeds: [1]\n");
    let opts = options(&dir);
    runner::run(&plan(&s), &opts, &runner::ExecutorKind::Local).unwrap();
    let first = export(&dir, "rec");
    // As if the runner had died between the trial's end and its record: the database says
    // running (owner gone), the folder holds the result.
    let conn = rusqlite::Connection::open(dir.join("sweep.db")).unwrap();
    conn.execute_batch(
        "UPDATE trials SET status = 'running', lease_owner = 'gone', lease_expires_at = 0;",
    )
    .unwrap();
    drop(conn);
    runner::run(&plan(&s), &opts, &runner::ExecutorKind::Local).unwrap();
    let again = export(&dir, "rec");
    assert_eq!(again[0]["status"], "succeeded");
    assert_eq!(again[0]["f1"], first[0]["f1"]);
    let log = std::fs::read_dir(dir.join("trials"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("attempts.log")).unwrap())
        .collect::<String>();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("start")).count(),
        1,
        "{log}"
    );
}

#[test]
fn precision_the_devices_cannot_run_is_refused_before_anything_starts() {
    let dir = workspace("precision");
    let s = study(&dir, "p", 5, "seeds: [1]\n");
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("doc_stride: 16", "doc_stride: 16, precision: pure-bf16");
    std::fs::write(&s, text).unwrap();
    let e = runner::run(&plan(&s), &options(&dir), &runner::ExecutorKind::Local)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("train.precision on cpu") && e.contains("CUDA"),
        "{e}"
    );
    assert!(!dir.join("trials").exists());
}

#[test]
fn kill_dash_nine_at_random_points_then_resume() {
    let dir = workspace("kill9");
    let s = study(
        &dir,
        "k",
        40,
        "ablations: [{name: lr, set: {train.learning_rate: 1.0e-4}}]\nseeds: [1, 2, 3]\n",
    );
    let mut rng = 12345u64;
    for _ in 0..6 {
        let mut child = run_cmd(&dir, &s, "{}", &["--per-device", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait_ms = 100 + (rng >> 33) % 700;
        std::thread::sleep(Duration::from_millis(wait_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let out = run(&dir, &s, "{}", &["--per-device", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_complete_metrics(&dir, "k", 40);
    assert_never_concurrent(&dir);
}

#[test]
fn two_runners_share_a_database_without_running_a_trial_twice() {
    let dir = workspace("two");
    let s = study(&dir, "two", 15, "ablations: [{name: lr, set: {train.learning_rate: 1.0e-4}}, {name: wd, set: {train.weight_decay: 0.01}}]\nseeds: [1, 2, 3, 4]\n");
    let spawn = || -> Child {
        run_cmd(&dir, &s, "{}", &["--per-device", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    let rows = export(&dir, "two");
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r["attempts"] == 1), "{rows:?}");
    assert_complete_metrics(&dir, "two", 15);
    assert_never_concurrent(&dir);
}

fn interrupt(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
}

#[test]
fn ctrl_c_drains_and_the_next_run_resumes() {
    let dir = workspace("ctrlc");
    let s = study(&dir, "c", 60, "seeds: [1, 2]\n");
    let child = run_cmd(&dir, &s, "{}", &["--per-device", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("trials to start", Duration::from_secs(20), || {
        running_trials(&dir) == 2
    });
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let rows = export(&dir, "c");
    assert!(
        rows.iter().all(|r| r["status"] == "interrupted"),
        "{rows:?}"
    );
    let out = run(&dir, &s, "{}", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_complete_metrics(&dir, "c", 60);
    // The second attempt resumed: each trial has exactly two processes in its log.
    for e in std::fs::read_dir(dir.join("trials")).unwrap() {
        let log = std::fs::read_to_string(e.unwrap().path().join("attempts.log")).unwrap();
        assert_eq!(
            log.lines().filter(|l| l.starts_with("start")).count(),
            2,
            "{log}"
        );
    }
}

#[test]
fn a_second_ctrl_c_kills_trials_that_ignore_the_first() {
    let dir = workspace("ctrlc2");
    let s = study(&dir, "c2", 1000, "seeds: [1]\n");
    let mut cmd = run_cmd(&dir, &s, r#"{"*":"ignore-term"}"#, &[]);
    cmd.env("SWEEP_KILL_GRACE_S", "600");
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the trial to start", Duration::from_secs(20), || {
        running_trials(&dir) == 1
    });
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(export(&dir, "c2")[0]["status"], "interrupted");
}

/// Sequential seeds: a claim with a large effect is decided after the first 3 seeds; a
/// claim with an effect hidden in noise gets more seeds, up to the plan's maximum or until
/// futility; kill -9 in the middle and a resume arrive at the same runs; a rerun adds
/// nothing.
#[test]
fn sequential_seeds_go_to_undecided_claims_only() {
    let dir = workspace("sequential");
    let s = study(
        &dir,
        "seq",
        5,
        "ablations:\n  - {name: big, set: {train.learning_rate: 3.0e-3}}\n  - {name: small, set: {model_config.hidden_dropout_prob: 0.13}}\n\
         seeds: {min: 3, max: 9, batch: 2}\nclaims:\n  - {variant: big, metric: f1, expect: higher}\n  - {variant: small, metric: f1, expect: lower}\n",
    );
    // Seed noise of about 2 F1 points, different per variant.
    let text = std::fs::read_to_string(&s).unwrap().replace(
        "train: {max_steps",
        "model_config: {fake_noise: 2.0}\n  train: {max_steps",
    );
    std::fs::write(&s, text).unwrap();
    // Interrupt it twice at random moments, then let it finish.
    for wait in [400, 900] {
        let mut child = run_cmd(&dir, &s, "{}", &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait));
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = run(&dir, &s, "{}", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = export(&dir, "seq");
    let count = |v: &str| rows.iter().filter(|r| r["variant"] == v).count();
    assert_eq!(
        count("big"),
        3,
        "a decided claim gets no more seeds: {rows:?}"
    );
    let small = count("small");
    assert!(small > 3, "the undecided claim got more seeds: {small}");
    assert_eq!(
        count("baseline"),
        small,
        "the baseline runs every seed a claim needs"
    );
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:?}");
    let log = stderr(&out);
    assert!(
        log.contains("now runs"),
        "the runner says why it adds seeds: {log}"
    );
    // A rerun adds nothing.
    let again = run(&dir, &s, "{}", &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(export(&dir, "seq").len(), rows.len());
    assert_complete_metrics(&dir, "seq", 5);
    assert_never_concurrent(&dir);
}

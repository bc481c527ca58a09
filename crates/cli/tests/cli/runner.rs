//! `sweep plan/run/status/export` with the fake trial (`testkit`'s `fake-trial`) standing in
//! for training: every outcome, retries, reruns, kill -9 of the runner, two runners on one
//! database, Ctrl-C. One test at the end runs real training (two tiny trials).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{sweep, sweep_ok};

/// `fake-trial`, built beside `sweep`. Built (or brought up to date) once per test run:
/// `cargo test -p cli` alone would not rebuild another package's binary.
pub(crate) fn fake_trial() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "testkit", "--bin", "fake-trial"])
                .status()
                .unwrap();
            assert!(status.success(), "cannot build fake-trial");
            PathBuf::from(env!("CARGO_BIN_EXE_sweep")).with_file_name("fake-trial")
        })
        .clone()
}

/// A fresh folder with a small synthetic dataset and its vocabulary.
pub(crate) fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sweep-runner-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    sweep_ok(&[
        "data",
        "synth",
        "--out",
        &p("train.json"),
        "--questions",
        "40",
        "--seed",
        "1",
    ]);
    sweep_ok(&[
        "data",
        "synth",
        "--out",
        &p("dev.json"),
        "--questions",
        "20",
        "--seed",
        "2",
    ]);
    sweep_ok(&[
        "data",
        "vocab",
        "--dataset",
        &p("train.json"),
        "--dataset",
        &p("dev.json"),
        "--out",
        &p("vocab.txt"),
    ]);
    dir
}

/// A study over the workspace's data; `extra` is appended (ablations, seeds…).
pub(crate) fn study(dir: &Path, name: &str, steps: u32, extra: &str) -> PathBuf {
    let d = dir.display();
    let text = format!(
        "name: {name}\nbase:\n  model: {{preset: tiny, vocab: {d}/vocab.txt}}\n  data: {{train: {d}/train.json, eval: {d}/dev.json}}\n  train: {{max_steps: {steps}, learning_rate: 3.0e-5, max_seq_length: 64, doc_stride: 16}}\n{extra}"
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `sweep run` with the fake trial; `behavior` goes to FAKE_TRIAL_BEHAVIOR.
fn run_cmd(dir: &Path, study: &Path, behavior: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sweep"));
    c.arg("run")
        .arg(study)
        .arg("--db")
        .arg(dir.join("sweep.db"))
        .args(["--devices", "cpu"])
        .args(extra)
        .env("SWEEP_TRIAL_COMMAND", fake_trial())
        .env("FAKE_TRIAL_BEHAVIOR", behavior)
        .env("FAKE_TRIAL_STEP_MS", "10")
        .env("SWEEP_POLL_MS", "20")
        .env("SWEEP_KILL_GRACE_S", "2");
    c
}

fn run(dir: &Path, study: &Path, behavior: &str, extra: &[&str]) -> Output {
    run_cmd(dir, study, behavior, extra).output().unwrap()
}

pub(crate) fn export(dir: &Path, name: &str) -> Vec<Value> {
    let out = sweep_ok(&[
        "export",
        name,
        "--format",
        "json",
        "--db",
        dir.join("sweep.db").to_str().unwrap(),
    ]);
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn by_seed(rows: &[Value], seed: u64) -> &Value {
    rows.iter().find(|r| r["seed"] == seed).unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn plan_expands_and_shares_inert_variants() {
    let dir = workspace("plan");
    let s = study(&dir, "p", 5, "ablations:\n  - {name: pooler-5, set: {model_config.pooler_num_fc_layers: 5}}\n  - {name: lr, set: {train.learning_rate: 1.0e-4}}\nseeds: [1, 2]\n");
    let out = sweep_ok(&["plan", s.to_str().unwrap(), "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 6);
    let variants: Vec<&str> = rows
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        variants,
        ["baseline", "baseline", "pooler-5", "pooler-5", "lr", "lr"]
    );
    assert_eq!(rows[2]["id"], rows[0]["id"]);
    assert_eq!(rows[2]["duplicate_of"], "baseline");
    assert_eq!(
        rows[2]["duplicate_reason"],
        "pooler-5 = baseline: pooler_num_fc_layers is not read by BertForQuestionAnswering"
    );
    assert_ne!(rows[4]["id"], rows[0]["id"]);
    assert_ne!(
        rows[0]["id"], rows[1]["id"],
        "seeds must give different trials"
    );
    // The table says the same in words.
    let out = sweep_ok(&["plan", s.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("6 trials (3 variants × 2 seeds), 4 distinct runs"),
        "{text}"
    );
}

#[test]
fn plan_rejects_missing_files_and_bad_yaml() {
    let dir = workspace("plan-bad");
    let s = study(&dir, "p", 5, "seeds: [1]\n");
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("dev.json", "nope.json");
    std::fs::write(&s, text).unwrap();
    let out = sweep(&["plan", s.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("variant baseline: data.eval") && e.contains("nope.json"),
        "{e}"
    );
    // A study over a model that is not downloaded yet: --no-check-files still plans it.
    let init = std::fs::read_to_string(&s).unwrap().replace(
        "preset: tiny, vocab:",
        "init: /nonexistent/bert-base-chinese, vocab:",
    );
    std::fs::write(&s, init).unwrap();
    let out = sweep(&["plan", s.to_str().unwrap(), "--no-check-files"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("assuming BERT"), "{}", stderr(&out));
    let out = sweep(&["status", "--db", dir.join("none.db").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no results database here"),
        "{}",
        stderr(&out)
    );
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "name: x\nbase: {}\nseeds: [1]\ngird: {}\n").unwrap();
    let out = sweep(&["plan", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.yaml"), "{}", stderr(&out));
}

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
        &["--per-device", "6", "--trial-timeout", "2s"],
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
    // A timed-out trial kept its state: the next run with --retries resumes it.
    let db = dir.join("sweep.db");
    let status_out = sweep_ok(&["status", "o", "--db", db.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&status_out.stdout);
    assert!(table.contains("1 succeeded"), "{table}");
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
    let out = run(&dir, &s, "{}", &["--per-device", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = export(&dir, "again");
    let out = run(&dir, &s, r#"{"*":"crash"}"#, &[]);
    assert!(
        out.status.success(),
        "a rerun started trials again: {}",
        stderr(&out)
    );
    let second = export(&dir, "again");
    assert_eq!(first, second);
    assert!(first
        .iter()
        .all(|r| r["attempts"] == 1 && r["status"] == "succeeded"));
}

/// Reads `attempts.log` of every trial folder: no two processes overlap in time.
pub(crate) fn assert_never_concurrent(dir: &Path) {
    for e in std::fs::read_dir(dir.join("trials")).unwrap() {
        let log = e.unwrap().path().join("attempts.log");
        let Ok(text) = std::fs::read_to_string(&log) else {
            continue;
        };
        let mut open: Option<String> = None;
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (what, pid) = (parts.next().unwrap(), parts.next().unwrap().to_string());
            match what {
                "start" => {
                    assert!(
                        open.is_none(),
                        "{}: {pid} started while {open:?} ran",
                        log.display()
                    );
                    open = Some(pid);
                }
                _ => {
                    assert_eq!(open.as_deref(), Some(pid.as_str()), "{}", log.display());
                    open = None;
                }
            }
        }
    }
}

/// The loss steps stored for each trial are exactly 1..=steps: nothing lost, nothing twice.
pub(crate) fn assert_complete_metrics(dir: &Path, name: &str, steps: i64) {
    let rows = export(dir, name);
    for r in rows {
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    let db = dir.join("sweep.db");
    let store = store::Store::open_read_only(&db).unwrap();
    assert!(store.integrity_check().unwrap().is_ok());
    for r in store.study_trials(name).unwrap() {
        let series = store.metric_series(&r.trial_id, "loss").unwrap();
        let got: Vec<i64> = series.iter().map(|m| m.step).collect();
        assert_eq!(got, (1..=steps).collect::<Vec<_>>(), "trial {}", r.trial_id);
    }
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
    for round in 0..6 {
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
        let _ = round;
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

pub(crate) fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running_trials(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("trials"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .map(|e| e.path().join("metrics.jsonl").exists())
                    .unwrap_or(false)
            })
            .count()
        })
        .unwrap_or(0)
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

/// Real training through `sweep trial`: two tiny trials on synthetic data.
#[test]
fn end_to_end_real_tiny_sweep() {
    let dir = workspace("real");
    let s = study(
        &dir,
        "real",
        8,
        "ablations: [{name: lr-1e-3, set: {train.learning_rate: 1.0e-3}}]\nseeds: [1]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sweep"))
        .args([
            "run",
            s.to_str().unwrap(),
            "--db",
            dir.join("sweep.db").to_str().unwrap(),
            "--devices",
            "cpu",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = export(&dir, "real");
    assert_eq!(rows.len(), 2);
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    for (r, row) in store.study_trials("real").unwrap().iter().zip(&rows) {
        let tdir = dir.join("trials").join(&r.trial_id);
        let result: Value =
            serde_json::from_str(&std::fs::read_to_string(tdir.join("result.json")).unwrap())
                .unwrap();
        assert_eq!(row["f1"], result["F1"]);
        assert_eq!(row["em"], result["EM"]);
        let preds = store.predictions(&r.trial_id).unwrap();
        assert_eq!(preds.len(), 20, "every dev question answered and scored");
        let mean_f1 = preds.iter().map(|p| p.f1.unwrap()).sum::<f64>() / 20.0 * 100.0;
        assert!((mean_f1 - result["F1"].as_f64().unwrap()).abs() < 1e-9);
        assert_eq!(
            store.metric_series(&r.trial_id, "eval_f1").unwrap().len(),
            1
        );
        let env = store.environment_json(&r.trial_id).unwrap().unwrap();
        assert!(
            env.contains("train_sha256") && env.contains("git_commit"),
            "{env}"
        );
    }
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

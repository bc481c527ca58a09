//! Workspaces, studies and the runner's two ways in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const FAKE_TRIAL: &str = env!("CARGO_BIN_EXE_fake-trial");
pub const RUN_STUDY: &str = env!("CARGO_BIN_EXE_run-study");

/// A fresh folder with a small synthetic dataset and its vocabulary.
pub fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runner-tests-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train.json"), qa_data::synth::generate(40, 1)).unwrap();
    std::fs::write(dir.join("dev.json"), qa_data::synth::generate(20, 2)).unwrap();
    let sets: Vec<qa_data::squad::Dataset> = ["train.json", "dev.json"]
        .iter()
        .map(|f| qa_data::squad::Dataset::load(dir.join(f)).unwrap())
        .collect();
    let refs: Vec<&qa_data::squad::Dataset> = sets.iter().collect();
    let vocab = qa_data::vocab::build_char_vocab(&refs, true);
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
    dir
}

pub use testkit::study;

/// The runner as a process (`run-study`) with the fake trial; `behavior` goes to
/// FAKE_TRIAL_BEHAVIOR.
pub fn run_cmd(dir: &Path, study: &Path, behavior: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(RUN_STUDY);
    c.arg(study)
        .arg("--db")
        .arg(dir.join("sweep.db"))
        .args(["--devices", "cpu"])
        .args(extra)
        .env("SWEEP_TRIAL_COMMAND", FAKE_TRIAL)
        .env("FAKE_TRIAL_BEHAVIOR", behavior)
        .env("FAKE_TRIAL_STEP_MS", "10")
        .env("SWEEP_POLL_MS", "20")
        .env("SWEEP_KILL_GRACE_S", "2");
    c
}

pub fn run(dir: &Path, study: &Path, behavior: &str, extra: &[&str]) -> Output {
    run_cmd(dir, study, behavior, extra).output().unwrap()
}

/// Options for an in-process run over `dir`'s database with the fake trial.
pub fn options(dir: &Path) -> runner::RunOptions {
    let mut o = runner::RunOptions::new(dir.join("sweep.db"), vec![FAKE_TRIAL.into()]);
    o.poll = Duration::from_millis(20);
    o.kill_grace = Duration::from_secs(2);
    o
}

pub fn plan(study: &Path) -> runner::Plan {
    runner::plan(&spec::Study::from_yaml_file(study).unwrap()).unwrap()
}

/// `sweep export --format json`, from the runner's own export.
pub fn export(dir: &Path, name: &str) -> Vec<Value> {
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    let rows = store.study_trials(name).unwrap();
    runner::export::to_json(&rows).as_array().unwrap().clone()
}

pub fn by_seed(rows: &[Value], seed: u64) -> &Value {
    rows.iter().find(|r| r["seed"] == seed).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads `attempts.log` of every trial folder: no two processes overlap in time.
pub fn assert_never_concurrent(dir: &Path) {
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
pub fn assert_complete_metrics(dir: &Path, name: &str, steps: i64) {
    let rows = export(dir, name);
    for r in rows {
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    assert!(store.integrity_check().unwrap().is_ok());
    for r in store.study_trials(name).unwrap() {
        let series = store.metric_series(&r.trial_id, "loss").unwrap();
        let got: Vec<i64> = series.iter().map(|m| m.step).collect();
        assert_eq!(got, (1..=steps).collect::<Vec<_>>(), "trial {}", r.trial_id);
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Trial folders whose trial has begun writing metrics.
pub fn running_trials(dir: &Path) -> usize {
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

//! Program trials (`command:`): a Python standard-library program that speaks the trial
//! protocol (`tests/support/program_trial.py`), supervised by the same code as `sweep trial`
//! (the fake trial hands program trials to `runner::program::supervise`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;

const PROGRAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/program_trial.py"
);

/// A value no shell may ever see unquoted: it must reach the program as one argv element.
const HOSTILE: &str = "a b; touch PWNED $(touch PWNED2) `touch PWNED3` \"' {{x}} \\ \n end";

/// A study whose base trial is the program (`params.steps` steps, `tag` a hostile value).
fn program_study(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let d = dir.display();
    let tag = serde_json::to_string(HOSTILE).unwrap();
    let text = format!(
        "name: {name}\nbase:\n  data: {{train: {d}/train.json, eval: {d}/dev.json}}\n  train: {{learning_rate: 3.0e-5}}\n  command: [python3, {PROGRAM}, --params, \"{{params_json}}\", --tag, \"{{param:tag}}\"]\n  params: {{steps: 4, tag: {tag}}}\n{extra}"
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn trial_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("trials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn program_trials_report_every_outcome() {
    let dir = workspace("program-outcomes");
    let s = program_study(&dir, "p", "seeds: [1, 2, 3, 4, 5, 6]\n");
    let behavior = r#"{"seed:2":"crash","seed:3":"oom","seed:4":"wrong-score","seed:5":"garbage","seed:6":"no-result"}"#;
    let out = run(&dir, &s, behavior, &["--per-device", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = export(&dir, "p");
    let status = |seed| by_seed(&rows, seed)["status"].as_str().unwrap().to_string();
    let error = |seed| {
        by_seed(&rows, seed)["error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(status(1), "succeeded");
    assert_eq!(by_seed(&rows, 1)["em"], 50.0);
    assert_eq!(by_seed(&rows, 1)["f1"], 50.0);
    assert_eq!(error(1), "", "an honest program gets no note");
    // Its other numbers are stored and exported; a value that is not a number is not.
    assert_eq!(by_seed(&rows, 1)["metric.peak_memory_mib"], 123.0);
    assert!(by_seed(&rows, 1).get("metric.note").is_none());
    assert_eq!(status(2), "failed");
    assert!(error(2).contains("crashing on purpose"), "{}", error(2));
    assert_eq!(status(3), "out_of_memory", "{}", error(3));
    // A reported score that its predictions do not give: the official score is stored,
    // the reported one is named.
    assert_eq!(status(4), "succeeded");
    assert_eq!(by_seed(&rows, 4)["em"], 50.0);
    assert!(
        error(4).contains("score mismatch") && error(4).contains("EM 60.00"),
        "{}",
        error(4)
    );
    assert_eq!(status(5), "failed");
    assert!(error(5).contains("result.json"), "{}", error(5));
    assert_eq!(status(6), "failed");
    assert!(error(6).contains("wrote no result"), "{}", error(6));
    // The program's metrics were ingested as curves.
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    let id = by_seed(&rows, 1)["id"].as_str().unwrap().to_string();
    let losses = store.metric_series(&id, "loss").unwrap();
    assert_eq!(
        losses.iter().map(|m| m.step).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    // The hostile value arrived as one argv element, and no shell ran it.
    for t in trial_dirs(&dir) {
        let Ok(argv) = std::fs::read_to_string(t.join("argv.json")) else {
            continue;
        };
        let argv: Vec<String> = serde_json::from_str(&argv).unwrap();
        // A value is inserted as it is: its braces are not placeholders.
        assert_eq!(argv.last().unwrap(), HOSTILE);
        for f in ["PWNED", "PWNED2", "PWNED3"] {
            assert!(!t.join(f).exists() && !dir.join(f).exists(), "{f}");
        }
        let params: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(t.join("params.json")).unwrap()).unwrap();
        assert_eq!(params["params"]["steps"], 4);
        assert_eq!(params["device"], "cpu");
    }
}

#[test]
fn hf_trainer_output_folders_are_read() {
    let dir = workspace("program-hf");
    let s = program_study(&dir, "hf", "seeds: [1]\n");
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("  params:", "  results: hf-trainer\n  params:");
    std::fs::write(&s, text).unwrap();
    let out = run(&dir, &s, r#"{"*":"hf-trainer"}"#, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = export(&dir, "hf");
    let r = by_seed(&rows, 1);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(
        (r["em"].as_f64(), r["f1"].as_f64()),
        (Some(50.0), Some(50.0))
    );
    assert_eq!(r["error"], serde_json::Value::Null, "{r}");
    assert_eq!(r["train_seconds"], 12.5034);
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    let id = r["id"].as_str().unwrap();
    // trainer_state.json's log_history became the curves: losses at the logged steps, the
    // evaluations as eval rows.
    let loss: Vec<(i64, f64)> = store
        .metric_series(id, "loss")
        .unwrap()
        .iter()
        .map(|m| (m.step, m.value))
        .collect();
    assert_eq!(
        loss,
        [(2, 5.3125), (4, 4.0625), (6, 2.75), (8, 1.625), (10, 1.0)]
    );
    let evals = store.metric_series(id, "eval_f1").unwrap();
    assert_eq!(
        evals.iter().map(|m| (m.step, m.value)).collect::<Vec<_>>(),
        [(5, 31.25), (10, 50.0)]
    );
    let t = trial_dirs(&dir).pop().unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["steps"], 10);
    assert_eq!(result["results_format"], "hf-trainer");
    assert_eq!(result["metrics"]["eval_samples"], 20.0);
    assert_eq!(r["metric.eval_samples"], 20.0);
    assert_eq!(r["metric.train_runtime"], 12.5034);
}

#[test]
fn a_stopped_program_resumes_and_runs_once_at_a_time() {
    let dir = workspace("program-kill9");
    let s = program_study(&dir, "k", "seeds: [1, 2]\n");
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("steps: 4", "steps: 40");
    std::fs::write(&s, text).unwrap();
    for round in 0..3 {
        let mut child = run_cmd(&dir, &s, "{}", &["--per-device", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for("a program trial to start", Duration::from_secs(30), || {
            dir.join("trials").exists() && running_trials(&dir) > 0
        });
        std::thread::sleep(Duration::from_millis(150 + 100 * round));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let out = run(&dir, &s, "{}", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_never_concurrent(&dir);
    let rows = export(&dir, "k");
    for r in &rows {
        assert_eq!(r["status"], "succeeded", "{r}");
    }
}

#[test]
fn a_program_past_its_time_is_stopped() {
    let dir = workspace("program-timeout");
    let s = program_study(&dir, "t", "seeds: [1]\n");
    let out = run(
        &dir,
        &s,
        r#"{"*":"ignore-term"}"#,
        &["--trial-timeout", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = export(&dir, "t");
    assert_eq!(by_seed(&rows, 1)["status"], "timed_out");
    // The runner's SIGKILL reached the program too (its process group): nothing runs on.
    let t = trial_dirs(&dir).pop().unwrap();
    let log = std::fs::read_to_string(t.join("attempts.log")).unwrap();
    let pid: i32 = log.split_whitespace().nth(1).unwrap().parse().unwrap();
    wait_for("the program to be gone", Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
}

#[test]
fn code_files_and_commands_enter_the_trial_id() {
    let dir = workspace("program-ids");
    let script = dir.join("train.py");
    std::fs::write(&script, "print('v1')\n").unwrap();
    let s = program_study(
        &dir,
        "c",
        &format!(
            "ablations: [{{name: other-flag, set: {{command: [python3, {PROGRAM}, --params, \"{{params_json}}\", --tag, x]}}}}]\nseeds: [1]\n"
        ),
    );
    let text = std::fs::read_to_string(&s).unwrap().replace(
        "  params:",
        &format!("  code: [{}]\n  params:", script.display()),
    );
    std::fs::write(&s, text).unwrap();
    let ids = |s: &Path| -> Vec<String> {
        plan(s)
            .entries
            .iter()
            .map(|e| e.trial_id.to_string())
            .collect()
    };
    let first = ids(&s);
    assert_ne!(first[0], first[1], "the command is part of the id");
    assert_eq!(ids(&s), first, "ids are stable");
    std::fs::write(&script, "print('v2')\n").unwrap();
    let edited = ids(&s);
    assert!(
        edited[0] != first[0] && edited[1] != first[1],
        "editing a code file makes new trials"
    );
    std::fs::remove_file(&script).unwrap();
    let e = runner::plan(&spec::Study::from_yaml_file(&s).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("code") && e.contains("train.py"), "{e}");
}

#[test]
#[ignore = "needs a Slurm cluster (sudo tools/slurm-local.sh); make test-all runs it"]
fn a_program_trial_runs_as_a_slurm_array_task() {
    crate::slurm::require_slurm();
    let dir = workspace("program-slurm");
    let s = program_study(&dir, "ps", "seeds: [1, 2]\n");
    let out = crate::slurm::slurm_run(&dir, &s, 10, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = export(&dir, "ps");
    for r in &rows {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["f1"], 50.0, "{r}");
    }
    // The batch script held no study value; the hostile one reached the program whole.
    for t in trial_dirs(&dir) {
        let argv: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(t.join("argv.json")).unwrap()).unwrap();
        assert_eq!(argv.last().unwrap(), HOSTILE);
    }
    let scripts: Vec<String> = std::fs::read_dir(dir.join("slurm"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(scripts.iter().all(|s| !s.contains("PWNED")));
}

#[test]
fn an_out_of_memory_retry_waits_before_it_starts_again() {
    let dir = workspace("program-oom-backoff");
    let s = program_study(&dir, "oom", "seeds: [1]\n");
    let out = run_cmd(&dir, &s, r#"{"*":"oom-once"}"#, &["--retries", "1"])
        .env("SWEEP_OOM_BACKOFF_S", "1.5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = export(&dir, "oom");
    assert_eq!(by_seed(&rows, 1)["status"], "succeeded");
    assert_eq!(by_seed(&rows, 1)["attempts"], 2);
    let t = trial_dirs(&dir).pop().unwrap();
    let log = std::fs::read_to_string(t.join("attempts.log")).unwrap();
    let times: Vec<u128> = log
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect();
    // start, end (out of memory), start, end: the retry began at least the backoff later.
    assert_eq!(times.len(), 4, "{log}");
    assert!(times[2] - times[1] >= 1_500_000, "{log}");
}

#[test]
fn a_claim_can_name_a_reported_metric() {
    let dir = workspace("program-claim");
    let s = program_study(
        &dir,
        "pc",
        "ablations: [{name: big, set: {params.memory: 200}}]\nseeds: [1, 2, 3]\nclaims:\n  - {variant: big, metric: metrics.peak_memory_mib, expect: higher}\n  - {variant: big, metric: metrics.not_reported, expect: lower}\n",
    );
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("steps: 4,", "steps: 2, memory: 100,");
    std::fs::write(&s, text).unwrap();
    let out = run(&dir, &s, "{}", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    let study = spec::Study::from_yaml_file(&s).unwrap();
    let analysis = runner::sequential::analysis(&store, &study).unwrap();
    // Differences of 100 MiB give or take a few: decided after 3 seeds.
    assert_eq!(
        analysis.claims[0].label(),
        "reproduced",
        "{:?}",
        analysis.claims[0]
    );
    // A metric no trial reported has no pairs: never decided.
    assert_eq!(analysis.claims[1].label(), "inconclusive");
    assert!(analysis.claims[1]
        .pairs
        .iter()
        .all(|(_, p)| p.as_ref().is_err_and(|e| e.contains("no score recorded"))));
}

//! Hostile studies: a study file is input from someone else and reaches a cluster account.
//! Every string field that can reach a command (names, data/model/vocab paths, Slurm
//! options, the work folder) is tried with shell payloads (newlines, `$(…)`, backticks,
//! quotes, `;`, `&&`, NUL, very long values) through `sweep plan`, `sweep plan --executor
//! slurm`, a real local `sweep run` and, where a Slurm cluster answers, a real
//! `sweep run --executor slurm`. Each value is refused with a message naming its key, or
//! passed verbatim as one argument; the canary file that every payload would create is
//! never created.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::runner::{export, fake_trial, stderr, workspace};
use super::slurm::require_slurm;

/// Shell payloads that each create `canary` if any shell ever interprets them.
fn payloads(canary: &Path) -> Vec<String> {
    let c = canary.display();
    vec![
        format!("debug\ntouch {c}"),
        format!("$(touch {c})"),
        format!("`touch {c}`"),
        format!("x'; touch {c}; '"),
        format!("x\"; touch {c}; \""),
        format!("a;touch {c}"),
        format!("a && touch {c}"),
        format!("a\0b; touch {c}"),
        format!("{}$(touch {c})", "x".repeat(5000)),
    ]
}

/// A YAML double-quoted scalar holding exactly `s` (newlines and NUL escaped).
fn yaml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The fields a payload goes into, as the study text that sets it.
fn study_text(dir: &Path, field: &str, value: &str) -> String {
    let d = dir.display();
    let v = yaml_str(value);
    let (mut name, mut train, mut vocab, mut ablation, mut slurm) = (
        "hostile".to_string(),
        yaml_str(&format!("{d}/train.json")),
        yaml_str(&format!("{d}/vocab.txt")),
        "lr".to_string(),
        String::new(),
    );
    let mut init = String::new();
    match field {
        "name" => name = v.clone(),
        "data.train" => train = v.clone(),
        "model.vocab" => vocab = v.clone(),
        "model.init" => init = v.clone(),
        "ablations.name" => ablation = v.clone(),
        "description" => {}
        k => {
            let key = k.trim_start_matches("executor.slurm.");
            slurm = if key == "extra_args" {
                format!("executor:\n  slurm:\n    extra_args: [{v}]\n")
            } else {
                format!("executor:\n  slurm:\n    {key}: {v}\n")
            };
        }
    }
    let model = if init.is_empty() {
        format!("{{preset: tiny, vocab: {vocab}}}")
    } else {
        format!("{{init: {init}}}")
    };
    let description = if field == "description" {
        format!("description: {v}\n")
    } else {
        String::new()
    };
    format!(
        "name: {name}\n{description}base:\n  model: {model}\n  data: {{train: {train}, eval: {d}/dev.json}}\n  \
         train: {{max_steps: 3, max_seq_length: 64, doc_stride: 16}}\nablations: [{{name: {ablation}, set: {{train.learning_rate: 1.0e-4}}}}]\n\
         seeds: [1]\n{slurm}"
    )
}

const FIELDS: [&str; 11] = [
    "name",
    "description",
    "data.train",
    "model.vocab",
    "model.init",
    "ablations.name",
    "executor.slurm.partition",
    "executor.slurm.gres",
    "executor.slurm.mem",
    "executor.slurm.time",
    "executor.slurm.extra_args",
];

fn sweep_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sweep"));
    c.env("SWEEP_TRIAL_COMMAND", fake_trial());
    c
}

/// Where a refusal must point: the field's own name (for extra_args, its entry).
fn key_named(stderr: &str, field: &str) -> bool {
    let last = field.rsplit('.').next().unwrap_or(field);
    stderr.contains(field) || stderr.contains(last)
}

#[test]
fn hostile_values_are_refused_by_key_or_passed_verbatim() {
    let dir = workspace("hostile-plan");
    let canary = dir.join("CANARY");
    let mut tried = 0;
    for field in FIELDS {
        let mut values = payloads(&canary);
        if field == "executor.slurm.extra_args" {
            // Also as a well-formed option whose value is the payload: accepted, verbatim.
            values.extend(payloads(&canary).iter().map(|p| format!("--comment={p}")));
        }
        for payload in values {
            let path = dir.join("study.yaml");
            std::fs::write(&path, study_text(&dir, field, &payload)).unwrap();
            for executor in ["local", "slurm"] {
                tried += 1;
                let out = sweep_cmd()
                    .args(["plan", path.to_str().unwrap(), "--executor", executor])
                    .arg("--workdir")
                    .arg(dir.join("work"))
                    .output()
                    .unwrap();
                let err = stderr(&out);
                let text = String::from_utf8_lossy(&out.stdout);
                if out.status.success() {
                    // Accepted: then the value appears only as data, never as script text.
                    if executor == "slurm" {
                        let (command, script) = text.split_once("\n#!/bin/bash").unwrap();
                        assert!(
                            !script.contains("touch"),
                            "{field} = {payload:?} reached the script:\n{script}"
                        );
                        if field.starts_with("executor.slurm") {
                            let quoted = format!("'{}'", payload.replace('\'', "'\\''"));
                            assert!(
                                command.contains(&quoted),
                                "{field} = {payload:?} is not one quoted argument:\n{command}"
                            );
                        }
                    }
                } else {
                    assert!(
                        key_named(&err, field),
                        "{field} = {payload:?} ({executor}): the error does not name the key:\n{err}"
                    );
                    assert!(!err.contains("panicked"), "{err}");
                }
                assert!(!canary.exists(), "{field} = {payload:?} ran a shell");
            }
        }
    }
    eprintln!("{tried} hostile plans tried");
    // The work folder itself: a newline or % in it is refused for Slurm.
    let path = dir.join("study.yaml");
    std::fs::write(&path, study_text(&dir, "description", "plain")).unwrap();
    let out = sweep_cmd()
        .args(["plan", path.to_str().unwrap(), "--executor", "slurm"])
        .arg("--workdir")
        .arg(dir.join(format!("w\ntouch {}", canary.display())))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("log folder"), "{}", stderr(&out));
    // Command-line Slurm options are checked like the study's, naming the flag.
    let out = sweep_cmd()
        .args(["plan", path.to_str().unwrap(), "--executor", "slurm"])
        .args(["--partition", &format!("a\ntouch {}", canary.display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--partition"), "{}", stderr(&out));
    assert!(!canary.exists());
}

/// Data files whose names are shell payloads run like any other: the runner and the trial
/// pass paths as argv and YAML, never through a shell.
#[test]
fn hostile_paths_run_verbatim_locally() {
    let dir = workspace("hostile-local");
    let canary = dir.join("CANARY");
    let name = format!(
        "train $(touch {c}) `touch {c}`;'\".json",
        c = canary.display()
    )
    .replace('/', "_");
    let hostile: PathBuf = dir.join(&name);
    std::fs::copy(dir.join("train.json"), &hostile).unwrap();
    let mut text = study_text(&dir, "data.train", &hostile.display().to_string());
    text = text.replace("name: hostile", "name: hostile-local");
    let path = dir.join("study.yaml");
    std::fs::write(&path, text).unwrap();
    let out = sweep_cmd()
        .args(["run", path.to_str().unwrap(), "--devices", "cpu", "--db"])
        .arg(dir.join("sweep.db"))
        .env("FAKE_TRIAL_STEP_MS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = export(&dir, "hostile-local");
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:?}");
    // The trial got the path verbatim (its trial.yaml holds it as YAML data).
    let trials: Vec<PathBuf> = std::fs::read_dir(dir.join("trials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let config = spec::TrialConfig::from_yaml_file(&trials[0].join("trial.yaml")).unwrap();
    assert_eq!(config.data.train, hostile);
    assert!(!canary.exists());
}

/// On a real cluster: an accepted option with a payload reaches sbatch as one argument and
/// Slurm stores it verbatim.
#[test]
#[ignore = "needs a Slurm cluster (sudo tools/slurm-local.sh); make test-all runs it"]
fn hostile_slurm_option_reaches_sbatch_verbatim() {
    require_slurm();
    let dir = workspace("hostile-slurm");
    let canary = dir.join("CANARY");
    let comment = format!(
        "$(touch {c}); `touch {c}` && touch {c}",
        c = canary.display()
    );
    let text = study_text(
        &dir,
        "executor.slurm.extra_args",
        &format!("--comment={comment}"),
    )
    .replace("name: hostile", "name: hostile-slurm");
    let path = dir.join("study.yaml");
    std::fs::write(&path, text).unwrap();
    let out = sweep_cmd()
        .args([
            "run",
            path.to_str().unwrap(),
            "--executor",
            "slurm",
            "--slurm-poll",
            "1",
        ])
        .arg("--db")
        .arg(dir.join("sweep.db"))
        .env("FAKE_TRIAL_STEP_MS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!canary.exists(), "a shell ran the comment");
    let q = Command::new("squeue")
        .args([
            "-h",
            "--states=all",
            "-n",
            "sweep-hostile-slurm",
            "-o",
            "%k",
        ])
        .output()
        .unwrap();
    let comments = String::from_utf8_lossy(&q.stdout);
    assert!(
        comments.lines().any(|l| l.trim() == comment),
        "Slurm does not hold the comment verbatim: {comments:?}"
    );
}

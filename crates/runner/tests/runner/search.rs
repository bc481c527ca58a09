//! Search studies: suggestions recorded in order and reproducible, a search resumed after
//! kill -9 that continues instead of starting over, and ASHA pruning on the fake trial's
//! evaluation curves.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Map, Value};
use spec::protocol::TrialStatus;

use crate::common::*;

const SPACE: &str = "  space:\n    train.learning_rate: {loguniform: [1.0e-5, 3.0e-4]}\n    train.warmup_steps: {int: [0, 40]}\n";

fn search_study(dir: &Path, name: &str, steps: u32, search: &str) -> std::path::PathBuf {
    study(
        dir,
        name,
        steps,
        &format!(
            "seeds: [1]\nsearch:\n  objective: {{metric: f1, direction: max}}\n{search}{SPACE}"
        ),
    )
}

/// Suggestion name → params, from the database.
fn suggestions(dir: &Path, name: &str) -> BTreeMap<String, Map<String, Value>> {
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    store
        .study_trials(name)
        .unwrap()
        .into_iter()
        .map(|r| (r.variant, serde_json::from_str(&r.params).unwrap()))
        .collect()
}

fn run_in_process(dir: &Path, s: &Path, per_device: usize) -> runner::RunSummary {
    let mut o = options(dir);
    o.per_device = per_device;
    runner::run(&plan(s), &o, &runner::ExecutorKind::Local).unwrap()
}

#[test]
fn a_tpe_search_makes_all_its_suggestions_in_order_and_reproducibly() {
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            let dir = workspace(&format!("tpe-{tag}"));
            let s = search_study(
                &dir,
                "t",
                5,
                "  method: tpe\n  trials: 8\n  startup: 3\n  seed: 5\n",
            );
            let summary = run_in_process(&dir, &s, 1);
            assert_eq!(summary.outcomes.get(&TrialStatus::Succeeded), Some(&8));
            let rows = export(&dir, "t");
            assert_eq!(rows.len(), 8);
            for (i, r) in rows.iter().enumerate() {
                assert_eq!(r["variant"], format!("s{:02}", i + 1), "suggestion order");
                assert_eq!(r["status"], "succeeded");
            }
            // The first three are the plan's (random) suggestions, as `sweep plan` shows them.
            let first = plan(&s);
            assert_eq!(first.entries.len(), 3);
            let got = suggestions(&dir, "t");
            for e in &first.entries {
                assert_eq!(got[&e.trial.variant], e.trial.params);
            }
            let study = spec::Study::from_yaml_file(&s).unwrap();
            let search = study.search.as_ref().unwrap();
            for p in got.values() {
                for (k, d) in &search.space {
                    assert!(d.contains(&p[k]), "{k} = {}", p[k]);
                }
            }
            got
        })
        .collect();
    // One slot: each suggestion saw the same results in both runs, so they are the same.
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn parallel_slots_get_suggestions_while_trials_run() {
    let dir = workspace("tpe-parallel");
    let s = search_study(&dir, "p", 20, "  method: tpe\n  trials: 6\n  startup: 2\n");
    let summary = run_in_process(&dir, &s, 3);
    assert_eq!(summary.outcomes.get(&TrialStatus::Succeeded), Some(&6));
    let got = suggestions(&dir, "p");
    assert_eq!(got.len(), 6);
    let distinct: std::collections::BTreeSet<String> = got
        .values()
        .map(|p| Value::Object(p.clone()).to_string())
        .collect();
    assert_eq!(
        distinct.len(),
        6,
        "the liar spreads pending suggestions: {got:?}"
    );
    // Three trials ran at once at some point: suggestions were made while others ran.
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    let rows = store.study_trials("p").unwrap();
    let spans: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.started_at.clone().unwrap(),
                r.finished_at.clone().unwrap(),
            )
        })
        .collect();
    let overlapping = spans
        .iter()
        .filter(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count() >= 3)
        .count();
    assert!(overlapping > 0, "{spans:?}");
}

#[test]
fn kill_dash_nine_mid_search_then_resume_continues_the_same_search() {
    let dir = workspace("search-kill9");
    let s = search_study(&dir, "k", 30, "  method: tpe\n  trials: 8\n  startup: 2\n");
    let mut seen: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut rng = 99u64;
    for _ in 0..5 {
        let mut child = run_cmd(&dir, &s, "{}", &["--per-device", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(300 + (rng >> 33) % 900));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Suggestions once recorded never change.
        let now = suggestions(&dir, "k");
        for (k, v) in &seen {
            assert_eq!(now.get(k), Some(v), "suggestion {k} changed after kill -9");
        }
        seen = now;
    }
    let out = run(&dir, &s, "{}", &["--per-device", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let now = suggestions(&dir, "k");
    for (k, v) in &seen {
        assert_eq!(now.get(k), Some(v), "suggestion {k} changed on resume");
    }
    assert_eq!(now.len(), 8, "{now:?}");
    assert_complete_metrics(&dir, "k", 30);
    assert_never_concurrent(&dir);
}

#[test]
fn asha_prunes_trials_that_fall_behind_and_keeps_their_curves() {
    let dir = workspace("asha");
    let s = study(
        &dir,
        "asha",
        40,
        "seeds: [1]\nsearch:\n  method: random\n  trials: 8\n  seed: 3\n  objective: {metric: f1, direction: max}\n  space:\n    train.learning_rate: {loguniform: [1.0e-6, 1.0e-3]}\n  prune: {method: asha, metric: f1, min_steps: 4, reduction: 2}\n",
    );
    // Give the text an eval_steps (the study helper writes train: on one line).
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("max_steps: 40,", "max_steps: 40, eval_steps: 2,");
    std::fs::write(&s, text).unwrap();
    let mut cmd = run_cmd(&dir, &s, "{}", &[]);
    cmd.env("FAKE_TRIAL_STEP_MS", "100");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let store = store::Store::open_read_only(&dir.join("sweep.db")).unwrap();
    let rows = store.study_trials("asha").unwrap();
    assert_eq!(rows.len(), 8);
    let lr = |r: &store::StudyTrialRow| {
        serde_json::from_str::<Value>(&r.params).unwrap()["train.learning_rate"]
            .as_f64()
            .unwrap()
    };
    let pruned: Vec<_> = rows
        .iter()
        .filter(|r| r.status == TrialStatus::Pruned)
        .collect();
    assert!(!pruned.is_empty(), "nothing pruned: {}", stderr(&out));
    // The fake trial's F1 grows with the learning rate at every step: the best trial is
    // never pruned, and every pruned one was behind a trial that went on.
    let best = rows.iter().max_by(|a, b| lr(a).total_cmp(&lr(b))).unwrap();
    assert_eq!(best.status, TrialStatus::Succeeded);
    for r in &pruned {
        let step = r.pruned_step.unwrap();
        let value = r.pruned_value.unwrap();
        assert!((4..40).contains(&step), "pruned at step {step}");
        assert!(
            r.error.as_deref().unwrap().contains("pruned at step"),
            "{:?}",
            r.error
        );
        // Its curve up to the rung is kept.
        let evals = store.metric_series(&r.trial_id, "eval_f1").unwrap();
        assert!(
            evals.iter().any(|m| m.step == step && m.value == value),
            "{evals:?}"
        );
        let loss = store.metric_series(&r.trial_id, "loss").unwrap();
        assert!(loss.iter().all(|m| m.step < 40), "ran to its end");
        assert!(rows
            .iter()
            .any(|o| o.status == TrialStatus::Succeeded && lr(o) > lr(r)));
    }
    // ASHA's rule, recomputed here: with one slot, trials ran in suggestion order, so at
    // each rung (steps 4, 8, 16, 32) a trial competed with itself and the earlier trials
    // that reached the rung. A pruned trial was not among the best max(1, n/2) at the rung
    // where it stopped; one that went on was among them at every rung it reached, except
    // that a verdict at the late rungs may come after the trial ended (the runner looks
    // about once a second), so there only "pruned ⇒ behind" is checked.
    // A pruned trial reached no rung after the one where it stopped (it may have written
    // an evaluation or two more before its SIGTERM took effect).
    let evals: Vec<Vec<(i64, f64)>> = rows
        .iter()
        .map(|r| {
            let s = store.metric_series(&r.trial_id, "eval_f1").unwrap();
            let last = r.pruned_step.unwrap_or(i64::MAX);
            s.iter()
                .filter(|m| m.step <= last)
                .map(|m| (m.step, m.value))
                .collect()
        })
        .collect();
    let at = |i: usize, rung: i64| {
        evals[i]
            .iter()
            .filter(|(s, _)| *s >= rung && *s < 40)
            .min_by_key(|(s, _)| *s)
            .map(|(_, v)| *v)
    };
    for (i, r) in rows.iter().enumerate() {
        for rung in [4, 8, 16, 32] {
            let Some(own) = at(i, rung) else { continue };
            let n = (0..=i).filter(|j| at(*j, rung).is_some()).count();
            let better = (0..i)
                .filter(|j| at(*j, rung).is_some_and(|v| v > own))
                .count();
            let kept = (n / 2).max(1);
            let stopped_here = r.status == TrialStatus::Pruned
                && r.pruned_step.is_some_and(|s| s >= rung && s < rung * 2);
            let behind = better + 1 > kept;
            if rung >= 16 && !stopped_here {
                continue;
            }
            assert_eq!(
                behind,
                stopped_here,
                "{} at rung {rung}: place {} of {n} (kept {kept}), status {}",
                r.variant,
                better + 1,
                r.status
            );
        }
    }
}

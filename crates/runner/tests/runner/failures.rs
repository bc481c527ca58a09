//! The results database failing under a running study (failures injected with
//! `runner::FaultPlan`): transient ones are retried and the run completes as if nothing
//! happened; a fatal one drains the running trials, which save their state, and the next
//! run resumes them. Nothing is lost either way.

use std::time::Duration;

use runner::{ExecutorKind, FaultPlan, RetryPolicy};

use crate::common::*;

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        first_wait: Duration::from_millis(5),
        max_wait: Duration::from_millis(50),
        give_up_after: Duration::from_secs(5),
    }
}

#[test]
fn transient_store_failures_are_retried_and_lose_nothing() {
    for operation in ["claim", "ingest", "finish", "heartbeat", "attempt"] {
        let dir = workspace(&format!("transient-{operation}"));
        let s = study(
            &dir,
            "t",
            30,
            "ablations: [{name: lr, set: {train.learning_rate: 1.0e-4}}]\nseeds: [1, 2]\n",
        );
        let mut opts = options(&dir);
        opts.per_device = 2;
        opts.lease = Duration::from_millis(300); // heartbeats every 100 ms
        opts.retry = quick_retries();
        opts.faults = Some(FaultPlan {
            operation: operation.into(),
            after: 1,
            times: 4,
            transient: true,
        });
        let summary = runner::run(&plan(&s), &opts, &ExecutorKind::Local)
            .unwrap_or_else(|e| panic!("{operation}: {e}"));
        assert_eq!(
            summary.outcomes[&spec::protocol::TrialStatus::Succeeded],
            4,
            "{operation}: {summary:?}"
        );
        assert_complete_metrics(&dir, "t", 30);
        assert_never_concurrent(&dir);
    }
}

#[test]
fn a_fatal_store_failure_drains_the_trials_and_the_next_run_resumes() {
    let dir = workspace("fatal");
    let s = study(&dir, "f", 150, "seeds: [1, 2]\n");
    let mut opts = options(&dir);
    opts.per_device = 2;
    opts.retry = quick_retries();
    // The database breaks while both trials are training.
    opts.faults = Some(FaultPlan {
        operation: "ingest".into(),
        after: 4,
        times: 1,
        transient: false,
    });
    let e = runner::run(&plan(&s), &opts, &ExecutorKind::Local)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ingest") && e.contains("injected"), "{e}");
    // Both trials were stopped with SIGTERM and saved their state mid-way.
    for t in std::fs::read_dir(dir.join("trials")).unwrap() {
        let t = t.unwrap().path();
        let state = std::fs::read_to_string(t.join("fake_state.json")).unwrap();
        let step: u64 = serde_json::from_str::<serde_json::Value>(&state).unwrap()["step"]
            .as_u64()
            .unwrap();
        assert!(step > 0 && step < 150, "{}: {state}", t.display());
        let log = std::fs::read_to_string(t.join("attempts.log")).unwrap();
        assert!(log.lines().last().unwrap().starts_with("end"), "{log}");
    }
    opts.faults = None;
    let summary = runner::run(&plan(&s), &opts, &ExecutorKind::Local).unwrap();
    assert_eq!(summary.outcomes[&spec::protocol::TrialStatus::Succeeded], 2);
    assert_complete_metrics(&dir, "f", 150);
    assert_never_concurrent(&dir);
    // The resumed attempts continued where the drained ones stopped.
    for t in std::fs::read_dir(dir.join("trials")).unwrap() {
        let log = std::fs::read_to_string(t.unwrap().path().join("attempts.log")).unwrap();
        assert_eq!(log.lines().filter(|l| l.starts_with("start")).count(), 2);
    }
}

//! The database on its own: migrations (from an older version, refusing a newer one),
//! exclusive claims, leases of dead runners, idempotent metric ingestion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use spec::protocol::TrialStatus;
use store::{Finish, MetricRow, PlannedRow, Store, SCHEMA_VERSION};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("qa-sweep-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.join("sweep.db")
}

fn rows(n: usize) -> Vec<PlannedRow> {
    (0..n)
        .map(|i| PlannedRow {
            ordinal: i,
            variant: format!("v{}", i / 2),
            ablation: "baseline".into(),
            grid_point: String::new(),
            seed: (i % 2) as u64 + 1,
            params: "{}".into(),
            trial_id: format!("{i:016x}"),
            effective_config: format!("{{\"i\":{i}}}"),
            config: "{}".into(),
            duplicate_of: None,
            duplicate_reason: None,
        })
        .collect()
}

#[test]
fn migrates_an_older_database_and_keeps_its_data() {
    let db = tmp("migrate");
    {
        let mut old = Store::open_at_version(&db, 1).unwrap();
        assert_eq!(old.schema_version().unwrap(), 1);
        old.save_plan("s", None, "name: s", "abc", &rows(2))
            .unwrap();
        old.heartbeat("r1", "h", 1, 60.0).unwrap();
        let c = old
            .claim_next("s", "r1", "cpu", "h", 1, 60.0, 0, &[])
            .unwrap();
        assert!(c.is_some());
    }
    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let trials = store.study_trials("s").unwrap();
    assert_eq!(trials.len(), 2);
    assert_eq!(trials[0].status, TrialStatus::Running);
    assert!(store.integrity_check().unwrap().is_ok());
}

#[test]
fn refuses_a_newer_database() {
    let db = tmp("newer");
    drop(Store::open(&db).unwrap());
    store::testing::set_user_version(&db, SCHEMA_VERSION + 1).unwrap();
    let e = Store::open(&db).unwrap_err().to_string();
    assert!(e.contains("newer than this sweep binary"), "{e}");
    let e = Store::open_read_only(&db).unwrap_err().to_string();
    assert!(e.contains("newer"), "{e}");
}

#[test]
fn two_claimers_never_get_the_same_trial() {
    let db = tmp("claims");
    Store::open(&db)
        .unwrap()
        .save_plan("s", None, "name: s", "abc", &rows(40))
        .unwrap();
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut s = Store::open(&db).unwrap();
                let me = format!("runner{k}");
                s.heartbeat(&me, "h", 1, 60.0).unwrap();
                let mut got = Vec::new();
                while let Some(c) = s.claim_next("s", &me, "cpu", "h", 1, 60.0, 0, &[]).unwrap() {
                    got.push(c.trial_id.to_string());
                }
                got
            })
        })
        .collect();
    let mut all: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), 40);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40, "a trial was claimed twice");
}

#[test]
fn a_dead_runners_trials_become_interrupted_and_claimable() {
    let db = tmp("orphans");
    let mut s = Store::open(&db).unwrap();
    s.save_plan("s", None, "name: s", "abc", &rows(2)).unwrap();
    s.heartbeat("dead", "h", 999_999, 60.0).unwrap();
    let c = s
        .claim_next("s", "dead", "cpu", "h", 999_999, 60.0, 0, &[])
        .unwrap()
        .unwrap();
    s.heartbeat("alive", "h", 1, 60.0).unwrap();
    // The owner is alive: nothing to reclaim.
    assert!(s.reclaim_orphans(&|_, _| false).unwrap().is_empty());
    let r = s.reclaim_orphans(&|_, pid| pid == 999_999).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        s.trial_status(&c.trial_id).unwrap(),
        Some(TrialStatus::Interrupted)
    );
    let again = s
        .claim_next("s", "alive", "cpu", "h", 1, 60.0, 0, &[])
        .unwrap()
        .unwrap();
    assert_eq!(again.trial_id, c.trial_id);
    assert_eq!(again.attempt, 2);
    // The old owner can no longer record a result.
    assert!(!s
        .finish(&c.trial_id, 1, "dead", &Finish::new(TrialStatus::Succeeded))
        .unwrap());
    assert!(s
        .finish(
            &c.trial_id,
            2,
            "alive",
            &Finish::new(TrialStatus::Succeeded)
        )
        .unwrap());
}

#[test]
fn retries_and_final_states() {
    let db = tmp("retries");
    let mut s = Store::open(&db).unwrap();
    s.save_plan("s", None, "name: s", "abc", &rows(1)).unwrap();
    s.heartbeat("r", "h", 1, 60.0).unwrap();
    let c = s
        .claim_next("s", "r", "cpu", "h", 1, 60.0, 1, &[])
        .unwrap()
        .unwrap();
    s.finish(
        &c.trial_id,
        c.attempt,
        "r",
        &Finish::new(TrialStatus::Failed),
    )
    .unwrap();
    let c = s
        .claim_next("s", "r", "cpu", "h", 1, 60.0, 1, &[])
        .unwrap()
        .unwrap();
    s.finish(
        &c.trial_id,
        c.attempt,
        "r",
        &Finish::new(TrialStatus::Failed),
    )
    .unwrap();
    // One retry used up.
    assert!(s
        .claim_next("s", "r", "cpu", "h", 1, 60.0, 1, &[])
        .unwrap()
        .is_none());
    // A new runner (a new `sweep run`) gets a fresh retry budget.
    assert!(s
        .claim_next("s", "r2", "cpu", "h", 1, 60.0, 0, &[])
        .unwrap()
        .is_some());
    assert_eq!(s.attempts(&c.trial_id).unwrap().len(), 3);
}

#[test]
fn metric_ingestion_is_idempotent() {
    let db = tmp("metrics");
    let mut s = Store::open(&db).unwrap();
    s.save_plan("s", None, "name: s", "abc", &rows(1)).unwrap();
    let id = format!("{:016x}", 0);
    let m = |step, v| MetricRow {
        step,
        epoch: None,
        name: "loss".into(),
        value: v,
        time: None,
    };
    s.ingest_metrics(&id, &[m(1, 3.0), m(2, 2.0)], &[], 10, false)
        .unwrap();
    s.ingest_metrics(&id, &[m(2, 2.5), m(3, 1.0)], &[], 20, false)
        .unwrap();
    let series = s.metric_series(&id, "loss").unwrap();
    assert_eq!(
        series.iter().map(|r| (r.step, r.value)).collect::<Vec<_>>(),
        [(1, 3.0), (2, 2.5), (3, 1.0)]
    );
    assert_eq!(s.metrics_offset(&id).unwrap(), 20);
    s.ingest_metrics(&id, &[m(1, 3.0)], &[], 5, true).unwrap();
    assert_eq!(s.metric_count(Some(&id)).unwrap(), 1);
}

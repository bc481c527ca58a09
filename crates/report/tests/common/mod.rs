//! The fixture database shared by the report's tests: a study whose variants are a clear
//! improvement, a clear degradation, noise, too few seeds and an inert key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::{Path, PathBuf};

use spec::protocol::TrialStatus;
use store::{EnvironmentRow, Finish, MetricRow, PlannedRow, PredictionRow, Store};

pub const STUDY: &str = "name: fixture
description: Constructed results for the report's tests.
base:
  model: {preset: tiny, vocab: v.txt}
  data: {train: train.json, eval: EVAL}
ablations:
  - {name: better, set: {train.learning_rate: 1.0e-4}}
  - {name: worse, set: {train.warmup_steps: 500}}
  - {name: noisy, set: {train.weight_decay: 0.01}}
  - {name: lonely, set: {train.batch_size: 4}}
  - {name: pooler-5, set: {model_config.pooler_num_fc_layers: 5}}
seeds: [1, 2, 3]
claims:
  - {variant: better, metric: f1, expect: higher}
  - {variant: worse, metric: f1, expect: higher}
  - {variant: noisy, metric: f1, expect: lower}
  - {variant: lonely, metric: em, expect: lower}
  - {variant: pooler-5, metric: f1, expect: same}
";

/// F1 per seed for each variant; `None` = the seed failed.
pub fn f1s(variant: &str) -> [Option<f64>; 3] {
    match variant {
        "baseline" | "pooler-5" => [Some(80.0), Some(81.0), Some(79.5)],
        "better" => [Some(85.0), Some(86.0), Some(85.5)],
        "worse" => [Some(70.0), Some(71.0), Some(69.0)],
        "noisy" => [Some(75.0), Some(86.0), Some(80.5)],
        "lonely" => [Some(60.0), None, None],
        other => panic!("{other}"),
    }
}

pub fn shared(rel: &str) -> PathBuf {
    std::env::var_os("QA_SWEEP_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"))
        .join(rel)
}

pub fn build_db(dir: &Path) -> Store {
    let eval = shared("drcd/DRCD_dev.json");
    let yaml = STUDY.replace("EVAL", &eval.display().to_string());
    let db = dir.join("sweep.db");
    let mut store = Store::open(&db).unwrap();
    let variants = ["baseline", "better", "worse", "noisy", "lonely", "pooler-5"];
    let mut rows = Vec::new();
    for (vi, v) in variants.iter().enumerate() {
        for seed in 1..=3u64 {
            let shares = *v == "pooler-5";
            let id = if shares {
                format!("{:016x}", seed)
            } else {
                format!("{:016x}", vi as u64 * 16 + seed)
            };
            let config = format!(
                r#"{{"data":{{"train":"train.json","eval":"{}"}},"train":{{"seed":{seed}}}}}"#,
                eval.display()
            );
            rows.push(PlannedRow {
                ordinal: rows.len(),
                variant: v.to_string(),
                ablation: v.to_string(),
                grid_point: String::new(),
                seed,
                params: "{}".into(),
                trial_id: id,
                effective_config: "{}".into(),
                config,
                duplicate_of: shares.then(|| "baseline".to_string()),
                duplicate_reason: shares.then(|| "pooler-5 = baseline: pooler_num_fc_layers is not read by BertForQuestionAnswering".to_string()),
            });
        }
    }
    store
        .save_plan(
            "fixture",
            Some("Constructed results for the report's tests."),
            &yaml,
            "feedc0de",
            &rows,
        )
        .unwrap();
    store.heartbeat("r", "host", 1, 600.0).unwrap();
    while let Some(c) = store
        .claim_next("fixture", "r", "cpu", "host", 1, 600.0, 0, &[])
        .unwrap()
    {
        let row = rows
            .iter()
            .find(|r| r.trial_id == c.trial_id.as_str())
            .unwrap();
        let f1 = f1s(&row.variant)[row.seed as usize - 1];
        let mut f = Finish::new(if f1.is_some() {
            TrialStatus::Succeeded
        } else {
            TrialStatus::Failed
        });
        f.f1 = f1;
        f.em = f1.map(|x| x - 10.0);
        f.train_seconds = Some(30.0);
        f.examples_per_second = Some(100.0);
        if f1.is_some() {
            let metrics: Vec<MetricRow> = (1..=5)
                .flat_map(|s| {
                    [("loss", 3.0 / s as f64), ("learning_rate", 1e-4 * s as f64)].map(|(n, v)| {
                        MetricRow {
                            step: s * 10,
                            epoch: None,
                            name: n.into(),
                            value: v,
                            time: None,
                        }
                    })
                })
                .chain(std::iter::once(MetricRow {
                    step: 0,
                    epoch: None,
                    name: "parameters".into(),
                    value: 4.0e6,
                    time: None,
                }))
                .collect();
            store
                .ingest_metrics(&c.trial_id, &metrics, &[], 0, true)
                .unwrap();
            let preds = vec![
                PredictionRow {
                    question_id: "1147-5-1".into(),
                    answer: "歐洲".into(),
                    em: Some(1.0),
                    f1: Some(1.0),
                },
                PredictionRow {
                    question_id: "1147-5-2".into(),
                    answer: "拉丁語".into(),
                    em: Some(0.0),
                    f1: Some(0.0),
                },
            ];
            let env = EnvironmentRow {
                git_commit: Some("abc123".into()),
                binary_version: Some("0.1.0".into()),
                backend: Some("flex".into()),
                device_name: Some("test cpu".into()),
                host: Some("host".into()),
                train_sha256: Some("t".repeat(8)),
                eval_sha256: Some("e".repeat(8)),
                json: r#"{"git_commit":"abc123","binary_version":"0.1.0","backend":"flex","device":"cpu","device_name":"test cpu","train_sha256":"tttttttt","eval_sha256":"eeeeeeee"}"#.into(),
            };
            store.save_outputs(&c.trial_id, &preds, Some(&env)).unwrap();
        }
        store.finish(&c.trial_id, c.attempt, "r", &f).unwrap();
    }
    store
}

pub const GRID_STUDY: &str = "name: gridded
base:
  model: {preset: tiny, vocab: v.txt}
  data: {train: train.json, eval: synthetic_dev.json}
grid:
  train.learning_rate: [1.0e-5, 3.0e-5, 1.0e-4]
  train.batch_size: [4, 8]
ablations:
  - {name: warmup, set: {train.warmup_steps: 100}}
seeds: [1, 2]
claims:
  - {variant: warmup, metric: f1, expect: lower}
";

/// A 3 × 2 grid with an ablation at every point; F1 rises with the learning rate and falls
/// with the warmup.
/// The store's row for a planned trial, with its ordinal as its id.
pub fn planned_row(t: &spec::PlannedTrial) -> PlannedRow {
    PlannedRow {
        ordinal: t.ordinal,
        variant: t.variant.clone(),
        ablation: t.ablation.clone(),
        grid_point: t.grid_point.clone(),
        seed: t.seed,
        params: serde_json::to_string(&t.params).unwrap(),
        trial_id: format!("{:016x}", t.ordinal),
        effective_config: "{}".into(),
        config: serde_json::to_string(&t.config).unwrap(),
        duplicate_of: None,
        duplicate_reason: None,
    }
}

pub fn build_grid_db(dir: &Path) -> Store {
    let study = spec::Study::from_yaml_str(GRID_STUDY, "grid.yaml").unwrap();
    let mut store = Store::open(&dir.join("sweep.db")).unwrap();
    let rows: Vec<PlannedRow> = study.expand().unwrap().iter().map(planned_row).collect();
    store
        .save_plan("gridded", None, GRID_STUDY, "abc", &rows)
        .unwrap();
    store.heartbeat("r", "host", 1, 600.0).unwrap();
    while let Some(c) = store
        .claim_next("gridded", "r", "cpu", "host", 1, 600.0, 0, &[])
        .unwrap()
    {
        let row = rows
            .iter()
            .find(|r| r.trial_id == c.trial_id.as_str())
            .unwrap();
        let p: serde_json::Value = serde_json::from_str(&row.params).unwrap();
        let lr = p["train.learning_rate"].as_f64().unwrap();
        let bs = p["train.batch_size"].as_f64().unwrap();
        let warm = if row.ablation == "warmup" { 6.0 } else { 0.0 };
        let f1 = 50.0 + 5.0 * (lr / 1e-5).ln() + bs * 0.5 - warm + row.seed as f64 * 0.3;
        let mut f = Finish::new(TrialStatus::Succeeded);
        f.f1 = Some(f1);
        f.em = Some(f1 - 10.0);
        store.finish(&c.trial_id, c.attempt, "r", &f).unwrap();
    }
    store
}

//! `sweep export`: one row per (variant, seed) as CSV or JSON, for spreadsheets and notebooks.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use store::StudyTrialRow;

/// The fixed columns, then one column per parameter key the study varies, then
/// `metric.<name>` per end-of-run metric any trial reported.
pub const FIXED: [&str; 16] = [
    "order",
    "id",
    "variant",
    "seed",
    "status",
    "attempts",
    "em",
    "f1",
    "train_loss",
    "train_seconds",
    "examples_per_second",
    "error",
    "started_at",
    "finished_at",
    "pruned_step",
    "pruned_value",
];

fn params(r: &StudyTrialRow) -> Map<String, Value> {
    match serde_json::from_str(&r.params) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn param_keys(rows: &[StudyTrialRow]) -> Vec<String> {
    let keys: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| params(r).keys().cloned().collect::<Vec<_>>())
        .collect();
    keys.into_iter().collect()
}

/// The end-of-run metrics any trial reported (`result.json`'s `metrics`), sorted.
fn metric_keys(rows: &[StudyTrialRow]) -> Vec<String> {
    let keys: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.final_metrics.iter().map(|(k, _)| k.clone()))
        .collect();
    keys.into_iter().collect()
}

fn record(r: &StudyTrialRow, keys: &[String], metrics: &[String]) -> Vec<(String, Value)> {
    let p = params(r);
    let mut out: Vec<(String, Value)> = vec![
        // The plan's order: for a search, the order suggestions were made in.
        ("order".into(), json!(r.ordinal)),
        ("id".into(), json!(r.trial_id)),
        ("variant".into(), json!(r.variant)),
        ("seed".into(), json!(r.seed)),
        ("status".into(), json!(r.status.as_str())),
        ("attempts".into(), json!(r.attempts)),
        ("em".into(), json!(r.em)),
        ("f1".into(), json!(r.f1)),
        ("train_loss".into(), json!(r.train_loss)),
        ("train_seconds".into(), json!(r.train_seconds)),
        ("examples_per_second".into(), json!(r.examples_per_second)),
        // Why a trial failed, or a note on a succeeded one (a score mismatch).
        ("error".into(), json!(r.error)),
        ("started_at".into(), json!(r.started_at)),
        ("finished_at".into(), json!(r.finished_at)),
        // A pruned trial: the step and value of the evaluation the pruner compared.
        ("pruned_step".into(), json!(r.pruned_step)),
        ("pruned_value".into(), json!(r.pruned_value)),
    ];
    for k in keys {
        out.push((k.clone(), p.get(k).cloned().unwrap_or(Value::Null)));
    }
    for m in metrics {
        let v = r
            .final_metrics
            .iter()
            .find(|(k, _)| k == m)
            .map(|(_, v)| *v);
        out.push((format!("metric.{m}"), json!(v)));
    }
    out
}

/// A JSON array of objects.
pub fn to_json(rows: &[StudyTrialRow]) -> Value {
    let keys = param_keys(rows);
    let metrics = metric_keys(rows);
    Value::Array(
        rows.iter()
            .map(|r| Value::Object(record(r, &keys, &metrics).into_iter().collect()))
            .collect(),
    )
}

/// RFC 4180 CSV with a header line.
pub fn to_csv(rows: &[StudyTrialRow]) -> String {
    let keys = param_keys(rows);
    let metrics = metric_keys(rows);
    let mut out = String::new();
    let header: Vec<String> = FIXED
        .iter()
        .map(|s| s.to_string())
        .chain(keys.iter().cloned())
        .chain(metrics.iter().map(|m| format!("metric.{m}")))
        .collect();
    out.push_str(
        &header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    for r in rows {
        let fields: Vec<String> = record(r, &keys, &metrics)
            .into_iter()
            .map(|(_, v)| match v {
                Value::Null => String::new(),
                Value::String(s) => csv_field(&s),
                other => csv_field(&other.to_string()),
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

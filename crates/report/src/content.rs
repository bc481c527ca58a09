//! What the report says, computed once and rendered by both the Markdown and the HTML
//! writers: the summary table, examples of right and wrong answers, and the
//! reproducibility block.

use std::collections::{BTreeMap, BTreeSet};

use qa_data::squad::Dataset;
use serde_json::Value;
use spec::ClaimMetric;
use store::Store;

use crate::data::StudyData;
use crate::stats::{summarize, Summary};

/// The homework's own examples (DRCD test), always shown when the eval set has them.
pub const HOMEWORK_IDS: [&str; 2] = ["5645-11-2", "1190-17-2"];

#[derive(Debug, Clone)]
pub struct SummaryRow {
    pub variant: String,
    pub is_baseline: bool,
    pub is_best: bool,
    pub seeds: usize,
    pub em: Option<Summary>,
    pub f1: Option<Summary>,
    pub train_seconds: Option<f64>,
    pub examples_per_second: Option<f64>,
    pub statuses: String,
    pub shared_with: Option<String>,
    /// End-of-run metrics beyond the columns above (`result.json`'s `metrics`, e.g. a
    /// program trial's peak memory), over succeeded seeds, by name.
    pub other_metrics: BTreeMap<String, Summary>,
}

/// The names of every row's other metrics, sorted (the columns of the second summary
/// table; empty when no trial reported any).
pub fn other_metric_names(rows: &[SummaryRow]) -> Vec<String> {
    let names: BTreeSet<&String> = rows.iter().flat_map(|r| r.other_metrics.keys()).collect();
    names.into_iter().cloned().collect()
}

pub fn summary(data: &StudyData) -> Vec<SummaryRow> {
    let mut rows: Vec<SummaryRow> = data
        .variants
        .iter()
        .map(|v| {
            let mean = |f: fn(&store::StudyTrialRow) -> Option<f64>| {
                let xs: Vec<f64> = v.succeeded().filter_map(f).collect();
                summarize(&xs).map(|s| s.mean)
            };
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &v.rows {
                *counts.entry(r.status.as_str()).or_default() += 1;
            }
            SummaryRow {
                variant: v.name.clone(),
                is_baseline: v.is_baseline(),
                is_best: false,
                seeds: v.rows.len(),
                em: summarize(&v.values(&ClaimMetric::Em)),
                f1: summarize(&v.values(&ClaimMetric::F1)),
                train_seconds: mean(|r| r.train_seconds),
                examples_per_second: mean(|r| r.examples_per_second),
                statuses: counts
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                shared_with: v.duplicate_of.clone(),
                other_metrics: crate::stats::final_metric_summaries(v.succeeded()),
            }
        })
        .collect();
    let best = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.f1.map(|s| (i, s.mean)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i);
    if let Some(i) = best {
        rows[i].is_best = true;
    }
    rows
}

/// One answered question shown in the report.
#[derive(Debug, Clone)]
pub struct Example {
    pub variant: String,
    pub question_id: String,
    pub question: String,
    pub gold: Vec<String>,
    pub prediction: String,
    pub f1: f64,
    /// Context around the gold answer: before, answer, after.
    pub context: (String, String, String),
    pub homework: bool,
}

/// Per variant, up to `per_kind` right (F1 = 1) and wrong (F1 < 0.5) answers of its first
/// succeeded seed, plus the homework's questions when present. Deterministic.
pub fn examples(
    store: &Store,
    data: &StudyData,
    per_kind: usize,
) -> (Vec<Example>, Option<String>) {
    let mut out = Vec::new();
    let mut datasets: BTreeMap<String, Option<Dataset>> = BTreeMap::new();
    let mut note = None;
    for v in data.variants.iter().filter(|v| v.duplicate_of.is_none()) {
        let Some(row) = v.succeeded().next() else {
            continue;
        };
        let Some(eval) = data
            .configs
            .get(&row.trial_id)
            .and_then(|c| c.pointer("/data/eval"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let ds = datasets
            .entry(eval.to_string())
            .or_insert_with(|| Dataset::load(eval).ok());
        let Some(ds) = ds.as_ref() else {
            note = Some(format!(
                "examples are missing: the eval set {eval} is not readable here"
            ));
            continue;
        };
        let Ok(preds) = store.predictions(&row.trial_id) else {
            continue;
        };
        let mut ordered: Vec<&store::PredictionRow> = preds.iter().collect();
        // A fixed pseudo-random order, so the examples are not all from one article.
        ordered.sort_by_key(|p| fnv(&p.question_id));
        let mut picked: Vec<(&store::PredictionRow, bool)> = Vec::new();
        for id in HOMEWORK_IDS {
            if let Some(p) = preds.iter().find(|p| p.question_id == id) {
                picked.push((p, true));
            }
        }
        let right = ordered.iter().filter(|p| p.f1 == Some(1.0)).take(per_kind);
        let wrong = ordered
            .iter()
            .filter(|p| p.f1.is_some_and(|f| f < 0.5))
            .take(per_kind);
        for p in right.chain(wrong) {
            if !picked.iter().any(|(q, _)| q.question_id == p.question_id) {
                picked.push((p, false));
            }
        }
        for (p, homework) in picked {
            let Some(ex) = ds.examples.iter().find(|e| e.id == p.question_id) else {
                continue;
            };
            let para = ds.paragraph(ex);
            let context = match ex.train_answer() {
                Some(a) => {
                    let n = para.char_len();
                    let start = a.start.saturating_sub(60);
                    let end = (a.end() + 60).min(n);
                    (
                        para.slice_chars(start, a.start.min(n)).to_string(),
                        para.slice_chars(a.start.min(n), a.end().min(n)).to_string(),
                        para.slice_chars(a.end().min(n), end).to_string(),
                    )
                }
                None => (
                    para.slice_chars(0, 120.min(para.char_len())).to_string(),
                    String::new(),
                    String::new(),
                ),
            };
            out.push(Example {
                variant: v.name.clone(),
                question_id: p.question_id.clone(),
                question: ex.question.clone(),
                gold: {
                    let mut g: Vec<String> = Vec::new();
                    for a in &ex.answers {
                        if !g.contains(&a.text) {
                            g.push(a.text.clone());
                        }
                    }
                    g
                },
                prediction: p.answer.clone(),
                f1: p.f1.unwrap_or(0.0),
                context,
                homework,
            });
        }
    }
    (out, note)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What a reader needs to reproduce the numbers.
#[derive(Debug, Clone, Default)]
pub struct Reproducibility {
    pub yaml_sha256: String,
    pub git_commits: BTreeSet<String>,
    pub binary_versions: BTreeSet<String>,
    pub backends: BTreeSet<String>,
    pub devices: BTreeSet<String>,
    pub datasets: BTreeSet<String>,
    pub first_started: Option<String>,
    pub last_finished: Option<String>,
}

pub fn reproducibility(data: &StudyData) -> Reproducibility {
    let mut r = Reproducibility {
        yaml_sha256: data.study.yaml_sha256.clone(),
        ..Reproducibility::default()
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    for e in data.environments.values() {
        r.git_commits.extend(text(e, "git_commit"));
        r.binary_versions.extend(text(e, "binary_version"));
        r.backends.extend(text(e, "backend"));
        if let (Some(d), name) = (text(e, "device"), text(e, "device_name")) {
            r.devices.insert(match name {
                Some(n) => format!("{d} ({n})"),
                None => d,
            });
        }
    }
    for (trial, c) in &data.configs {
        let env = data.environments.get(trial);
        for (k, hash) in [("train", "train_sha256"), ("eval", "eval_sha256")] {
            if let (Some(path), Some(h)) = (
                c.pointer(&format!("/data/{k}")).and_then(Value::as_str),
                env.and_then(|e| text(e, hash)),
            ) {
                r.datasets.insert(format!("{path}  sha256 {h}"));
            }
        }
    }
    for v in &data.variants {
        for row in &v.rows {
            if let Some(s) = &row.started_at {
                if r.first_started.as_ref().is_none_or(|f| s < f) {
                    r.first_started = Some(s.clone());
                }
            }
            if let Some(f) = &row.finished_at {
                if r.last_finished.as_ref().is_none_or(|l| f > l) {
                    r.last_finished = Some(f.clone());
                }
            }
        }
    }
    r
}

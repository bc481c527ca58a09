//! `sweep status`: a study's progress and results per variant.

use std::collections::BTreeMap;

use spec::protocol::TrialStatus;
use store::StudyTrialRow;

use crate::stats::{summarize as stat, Summary as Stat};

/// One variant's line.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantStatus {
    pub variant: String,
    pub seeds: usize,
    pub counts: BTreeMap<&'static str, usize>,
    pub em: Option<Stat>,
    pub f1: Option<Stat>,
    /// "pooler-5 = baseline: …" when the variant shares its runs.
    pub duplicate_note: Option<String>,
    /// Notes on succeeded trials (a reported score that its predictions do not give).
    pub notes: Vec<String>,
    /// End-of-run metrics beyond EM/F1 (`result.json`'s `metrics`) over succeeded seeds.
    pub metrics: BTreeMap<String, Stat>,
}

/// Per-variant summary, in plan order.
pub fn summarize(rows: &[StudyTrialRow]) -> Vec<VariantStatus> {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Vec<&StudyTrialRow>> = BTreeMap::new();
    for r in rows {
        if !by.contains_key(&r.variant) {
            order.push(r.variant.clone());
        }
        by.entry(r.variant.clone()).or_default().push(r);
    }
    order
        .into_iter()
        .map(|v| {
            let rs = &by[&v];
            let mut counts = BTreeMap::new();
            for r in rs {
                *counts.entry(r.status.as_str()).or_insert(0) += 1;
            }
            let ok: Vec<&&StudyTrialRow> = rs
                .iter()
                .filter(|r| r.status == TrialStatus::Succeeded)
                .collect();
            let em: Vec<f64> = ok.iter().filter_map(|r| r.em).collect();
            let f1: Vec<f64> = ok.iter().filter_map(|r| r.f1).collect();
            VariantStatus {
                variant: v.clone(),
                seeds: rs.len(),
                counts,
                em: stat(&em),
                f1: stat(&f1),
                duplicate_note: rs.iter().find_map(|r| r.duplicate_reason.clone()),
                metrics: crate::stats::final_metric_summaries(ok.iter().map(|r| **r)),
                notes: ok
                    .iter()
                    .filter_map(|r| r.error.as_ref().map(|e| format!("seed {}: {e}", r.seed)))
                    .collect(),
            }
        })
        .collect()
}

/// A plain-text table for the terminal.
pub fn render_table(study: &str, variants: &[VariantStatus]) -> String {
    let fmt = |s: &Option<Stat>| match s {
        Some(s) if s.n > 1 => format!("{:.2} ± {:.2}", s.mean, s.std),
        Some(s) => format!("{:.2}", s.mean),
        None => "-".into(),
    };
    let state = |v: &VariantStatus| {
        v.counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let w = variants
        .iter()
        .map(|v| v.variant.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!("study {study}\n");
    out.push_str(&format!(
        "{:<w$}  {:>5}  {:<28}  {:>16}  {:>16}\n",
        "variant", "seeds", "trials", "EM", "F1"
    ));
    for v in variants {
        out.push_str(&format!(
            "{:<w$}  {:>5}  {:<28}  {:>16}  {:>16}\n",
            v.variant,
            v.seeds,
            state(v),
            fmt(&v.em),
            fmt(&v.f1)
        ));
    }
    let notes: Vec<&String> = variants
        .iter()
        .filter_map(|v| v.duplicate_note.as_ref())
        .collect();
    if !notes.is_empty() {
        out.push_str("\nshared runs (no effect by construction):\n");
        for n in notes {
            out.push_str(&format!("  {n}\n"));
        }
    }
    let with_metrics: Vec<&VariantStatus> =
        variants.iter().filter(|v| !v.metrics.is_empty()).collect();
    if !with_metrics.is_empty() {
        out.push_str("\nother metrics (mean ± std over succeeded seeds):\n");
        for v in with_metrics {
            let items: Vec<String> = v
                .metrics
                .iter()
                .map(|(k, s)| format!("{k} {}", fmt(&Some(*s))))
                .collect();
            out.push_str(&format!("  {}: {}\n", v.variant, items.join(", ")));
        }
    }
    let trial_notes: Vec<String> = variants
        .iter()
        .flat_map(|v| v.notes.iter().map(move |n| format!("{}: {n}", v.variant)))
        .collect();
    if !trial_notes.is_empty() {
        out.push_str("\nnotes:\n");
        for n in trial_notes {
            out.push_str(&format!("  {n}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        variant: &str,
        seed: i64,
        f1: f64,
        metrics: &[(&str, f64)],
        error: Option<&str>,
    ) -> StudyTrialRow {
        StudyTrialRow {
            ordinal: seed,
            variant: variant.into(),
            ablation: variant.into(),
            grid_point: String::new(),
            seed,
            params: "{}".into(),
            trial_id: format!("{variant}{seed}"),
            duplicate_of: None,
            duplicate_reason: None,
            status: TrialStatus::Succeeded,
            attempts: 1,
            device: None,
            started_at: None,
            finished_at: None,
            exit_code: Some(0),
            signal: None,
            error: error.map(String::from),
            em: Some(f1 - 10.0),
            f1: Some(f1),
            train_loss: None,
            train_seconds: None,
            examples_per_second: None,
            final_metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            pruned_step: None,
            pruned_value: None,
        }
    }

    #[test]
    fn other_metrics_and_notes_are_shown() {
        let rows = [
            row("baseline", 1, 50.0, &[("peak_memory_mib", 100.0)], None),
            row("baseline", 2, 52.0, &[("peak_memory_mib", 120.0)], None),
            row(
                "pytorch",
                1,
                51.0,
                &[],
                Some("score mismatch: reported F1 61.00"),
            ),
        ];
        let table = render_table("s", &summarize(&rows));
        assert!(
            table.contains("baseline: peak_memory_mib 110.00 ± 14.14"),
            "{table}"
        );
        assert!(
            table.contains("pytorch: seed 1: score mismatch: reported F1 61.00"),
            "{table}"
        );
    }
}

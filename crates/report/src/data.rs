//! Everything the report shows, read from the database once: the study, its variants with
//! their seeds' results, learning curves, environments.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use spec::protocol::TrialStatus;
use store::{Store, StudyRow, StudyTrialRow};

use crate::ReportError;

/// One variant (baseline or ablation, at a grid point) and its seeds.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub ablation: String,
    pub grid_point: String,
    pub params: Map<String, Value>,
    pub rows: Vec<StudyTrialRow>,
    /// Set when every seed shares the run of another variant (inert keys).
    pub duplicate_of: Option<String>,
    pub duplicate_reason: Option<String>,
}

impl Variant {
    pub fn is_baseline(&self) -> bool {
        self.ablation == spec::BASELINE
    }

    pub fn succeeded(&self) -> impl Iterator<Item = &StudyTrialRow> {
        self.rows
            .iter()
            .filter(|r| r.status == TrialStatus::Succeeded)
    }

    pub fn values(&self, metric: &spec::ClaimMetric) -> Vec<f64> {
        self.succeeded()
            .filter_map(|r| row_value(r, metric))
            .collect()
    }
}

/// A row's numbers as the claims analysis and a search's objective read them.
pub fn scores(r: &StudyTrialRow) -> stats::study::Scores {
    stats::study::Scores {
        em: r.em,
        f1: r.f1,
        train_loss: r.train_loss,
        train_seconds: r.train_seconds,
        examples_per_second: r.examples_per_second,
        reported: r.final_metrics.clone(),
    }
}

/// A row's number for `metric`, if it recorded one.
pub fn row_value(r: &StudyTrialRow, metric: &spec::ClaimMetric) -> Option<f64> {
    scores(r).get(metric)
}

/// A metric's series per trial: step → value.
pub type Curve = Vec<(i64, f64)>;

#[derive(Debug, Clone)]
pub struct StudyData {
    pub study: StudyRow,
    pub spec: Option<spec::Study>,
    pub variants: Vec<Variant>,
    /// trial id → metric name → curve.
    pub curves: BTreeMap<String, BTreeMap<String, Curve>>,
    /// trial id → environment JSON.
    pub environments: BTreeMap<String, Value>,
    /// trial id → config JSON.
    pub configs: BTreeMap<String, Value>,
}

/// The metric series loaded per trial: the curves, the model's size and the planned number
/// of steps (both logged at step 0 by `sweep trial`).
const CURVES: [&str; 5] = [
    "loss",
    "learning_rate",
    "eval_f1",
    "parameters",
    "total_steps",
];

pub fn load(store: &Store, study: &str) -> Result<StudyData, ReportError> {
    let Some(row) = store.study(study)? else {
        let known = store.study_names()?.join(", ");
        return Err(ReportError::Input(format!(
            "{}: no study named {study:?} (studies: {known})",
            store.path()
        )));
    };
    // The stored YAML was valid when it ran; if this binary cannot parse it any more, the
    // report still works without the claims.
    let spec = spec::Study::from_yaml_str(&row.yaml, &format!("study {study} (stored)")).ok();
    let mut variants: Vec<Variant> = Vec::new();
    for r in store.study_trials(study)? {
        match variants.iter_mut().find(|v| v.name == r.variant) {
            Some(v) => v.rows.push(r),
            None => variants.push(Variant {
                name: r.variant.clone(),
                ablation: r.ablation.clone(),
                grid_point: r.grid_point.clone(),
                params: serde_json::from_str(&r.params).unwrap_or_default(),
                rows: vec![r],
                duplicate_of: None,
                duplicate_reason: None,
            }),
        }
    }
    for v in &mut variants {
        let all_dup = v.rows.iter().all(|r| r.duplicate_of.is_some());
        if all_dup {
            v.duplicate_of = v.rows.first().and_then(|r| r.duplicate_of.clone());
            v.duplicate_reason = v.rows.first().and_then(|r| r.duplicate_reason.clone());
        }
    }
    let mut curves = BTreeMap::new();
    let mut environments = BTreeMap::new();
    let mut configs = BTreeMap::new();
    for v in &variants {
        for r in &v.rows {
            if curves.contains_key(&r.trial_id) {
                continue;
            }
            let mut per: BTreeMap<String, Curve> = BTreeMap::new();
            for name in CURVES {
                let series = store.metric_series(&r.trial_id, name)?;
                if !series.is_empty() {
                    per.insert(
                        name.to_string(),
                        series.iter().map(|m| (m.step, m.value)).collect(),
                    );
                }
            }
            curves.insert(r.trial_id.clone(), per);
            if let Some(e) = store.environment_json(&r.trial_id)? {
                if let Ok(v) = serde_json::from_str(&e) {
                    environments.insert(r.trial_id.clone(), v);
                }
            }
            if let Some(c) = store.trial_config(&r.trial_id)? {
                if let Ok(v) = serde_json::from_str(&c) {
                    configs.insert(r.trial_id.clone(), v);
                }
            }
        }
    }
    Ok(StudyData {
        study: row,
        spec,
        variants,
        curves,
        environments,
        configs,
    })
}

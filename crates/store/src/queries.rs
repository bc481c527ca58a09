//! Read queries for `sweep status`, `sweep export` and the report.

use rusqlite::{params, OptionalExtension, Row};
use spec::protocol::TrialStatus;

use crate::{MetricRow, PredictionRow, Result, Store};

/// A study as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyRow {
    pub name: String,
    pub description: Option<String>,
    pub yaml: String,
    pub yaml_sha256: String,
    pub created_at: String,
    pub updated_at: String,
}

/// One (study, variant, seed) with its trial's state and results.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyTrialRow {
    pub ordinal: i64,
    pub variant: String,
    pub ablation: String,
    pub grid_point: String,
    pub seed: i64,
    pub params: String,
    pub trial_id: String,
    pub duplicate_of: Option<String>,
    pub duplicate_reason: Option<String>,
    pub status: TrialStatus,
    pub attempts: i64,
    pub device: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub error: Option<String>,
    pub em: Option<f64>,
    pub f1: Option<f64>,
    pub train_loss: Option<f64>,
    pub train_seconds: Option<f64>,
    pub examples_per_second: Option<f64>,
    /// The other numbers the trial reported at its end (`result.json`'s `metrics`), by
    /// name, stored as metric rows named [`FINAL_METRIC_PREFIX`]`<name>`.
    pub final_metrics: Vec<(String, f64)>,
    /// A pruned trial: the step of the evaluation the pruner compared, and its value.
    pub pruned_step: Option<i64>,
    pub pruned_value: Option<f64>,
}

/// Metric rows that hold a trial's end-of-run numbers, not a curve.
pub const FINAL_METRIC_PREFIX: &str = "final.";

/// One launch of a trial.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub attempt: u32,
    pub status: String,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub stderr_tail: Option<String>,
}

fn study_trial(r: &Row<'_>) -> rusqlite::Result<StudyTrialRow> {
    let status: String = r.get(9)?;
    Ok(StudyTrialRow {
        ordinal: r.get(0)?,
        variant: r.get(1)?,
        ablation: r.get(2)?,
        grid_point: r.get(3)?,
        seed: r.get(4)?,
        params: r.get(5)?,
        trial_id: r.get(6)?,
        duplicate_of: r.get(7)?,
        duplicate_reason: r.get(8)?,
        // An unknown status (written by a newer binary) reads as pending: never as done.
        status: TrialStatus::parse(&status).unwrap_or(TrialStatus::Pending),
        attempts: r.get(10)?,
        device: r.get(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
        exit_code: r.get(14)?,
        signal: r.get(15)?,
        error: r.get(16)?,
        em: r.get(17)?,
        f1: r.get(18)?,
        train_loss: r.get(19)?,
        train_seconds: r.get(20)?,
        examples_per_second: r.get(21)?,
        final_metrics: Vec::new(),
        pruned_step: r.get(22)?,
        pruned_value: r.get(23)?,
    })
}

impl Store {
    pub fn study(&self, name: &str) -> Result<Option<StudyRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, description, yaml, yaml_sha256, created_at, updated_at
                 FROM studies WHERE name = ?1",
                [name],
                |r| {
                    Ok(StudyRow {
                        name: r.get(0)?,
                        description: r.get(1)?,
                        yaml: r.get(2)?,
                        yaml_sha256: r.get(3)?,
                        created_at: r.get(4)?,
                        updated_at: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn study_names(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM studies ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(names)
    }

    /// The study's (variant, seed) rows in plan order.
    pub fn study_trials(&self, study: &str) -> Result<Vec<StudyTrialRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT st.ordinal, st.variant, st.ablation, st.grid_point, st.seed, st.params,
                    st.trial_id, st.duplicate_of, st.duplicate_reason, t.status, t.attempts,
                    t.device, t.started_at, t.finished_at, t.exit_code, t.signal, t.error,
                    t.em, t.f1, t.train_loss, t.train_seconds, t.examples_per_second,
                    t.pruned_step, t.pruned_value
             FROM study_trials st JOIN trials t ON t.id = st.trial_id
             WHERE st.study = ?1 ORDER BY st.ordinal",
        )?;
        let mut rows: Vec<StudyTrialRow> = stmt
            .query_map([study], study_trial)?
            .collect::<rusqlite::Result<_>>()?;
        let mut finals = self.conn.prepare(
            "SELECT m.trial_id, m.name, m.value FROM metrics m
             WHERE m.name LIKE 'final.%' AND m.value IS NOT NULL
               AND m.trial_id IN (SELECT trial_id FROM study_trials WHERE study = ?1)
             ORDER BY m.trial_id, m.name",
        )?;
        let mut by_trial: std::collections::HashMap<String, Vec<(String, f64)>> =
            std::collections::HashMap::new();
        for row in finals.query_map([study], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })? {
            let (trial, name, value) = row?;
            let name = name
                .strip_prefix(FINAL_METRIC_PREFIX)
                .unwrap_or(&name)
                .to_string();
            by_trial.entry(trial).or_default().push((name, value));
        }
        for r in &mut rows {
            if let Some(m) = by_trial.get(&r.trial_id) {
                r.final_metrics = m.clone();
            }
        }
        Ok(rows)
    }

    /// A trial's metric rows named `name`, by step.
    pub fn metric_series(&self, trial: &str, name: &str) -> Result<Vec<MetricRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT step, epoch, name, value, time FROM metrics
             WHERE trial_id = ?1 AND name = ?2 ORDER BY step",
        )?;
        let rows = stmt
            .query_map(params![trial, name], |r| {
                Ok(MetricRow {
                    step: r.get(0)?,
                    epoch: r.get(1)?,
                    name: r.get(2)?,
                    value: r.get(3)?,
                    time: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// How many metric rows a trial has (all trials with `None`).
    pub fn metric_count(&self, trial: Option<&str>) -> Result<u64> {
        let n: i64 = match trial {
            Some(t) => self.conn.query_row(
                "SELECT COUNT(*) FROM metrics WHERE trial_id = ?1",
                [t],
                |r| r.get(0),
            )?,
            None => self
                .conn
                .query_row("SELECT COUNT(*) FROM metrics", [], |r| r.get(0))?,
        };
        Ok(n.max(0) as u64)
    }

    pub fn predictions(&self, trial: &str) -> Result<Vec<PredictionRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT question_id, answer, em, f1 FROM predictions WHERE trial_id = ?1
             ORDER BY question_id",
        )?;
        let rows = stmt
            .query_map([trial], |r| {
                Ok(PredictionRow {
                    question_id: r.get(0)?,
                    answer: r.get(1)?,
                    em: r.get(2)?,
                    f1: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Attempts of a trial, in order.
    pub fn attempts(&self, trial: &str) -> Result<Vec<AttemptRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT attempt, status, exit_code, signal, stderr_tail FROM attempts
             WHERE trial_id = ?1 ORDER BY attempt",
        )?;
        let rows = stmt
            .query_map([trial], |r| {
                Ok(AttemptRow {
                    attempt: r.get(0)?,
                    status: r.get(1)?,
                    exit_code: r.get(2)?,
                    signal: r.get(3)?,
                    stderr_tail: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The trial config as it ran (JSON).
    pub fn trial_config(&self, trial: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT config FROM trials WHERE id = ?1", [trial], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The environment JSON recorded for a trial.
    pub fn environment_json(&self, trial: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT json FROM environments WHERE trial_id = ?1",
                [trial],
                |r| r.get(0),
            )
            .optional()?)
    }
}

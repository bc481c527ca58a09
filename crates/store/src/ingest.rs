//! What a trial produces, ingested by the runner: metric rows while it runs (incremental,
//! idempotent: a row is keyed by trial, name and step, and the file offset moves in the same
//! transaction), then predictions and the environment when it ends.

use rusqlite::params;

use crate::{Result, Store};

/// One value of `metrics.jsonl` (a line holds several).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub step: i64,
    pub epoch: Option<f64>,
    pub name: String,
    pub value: f64,
    /// Seconds since the trial started.
    pub time: Option<f64>,
}

/// One evaluation (EM/F1 on a split at a step).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRow {
    pub step: i64,
    pub epoch: Option<f64>,
    pub split: String,
    pub em: f64,
    pub f1: f64,
}

/// One answered question.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    pub question_id: String,
    pub answer: String,
    pub em: Option<f64>,
    pub f1: Option<f64>,
}

/// What ran a trial and on what data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvironmentRow {
    pub git_commit: Option<String>,
    pub binary_version: Option<String>,
    pub backend: Option<String>,
    pub device_name: Option<String>,
    pub host: Option<String>,
    pub train_sha256: Option<String>,
    pub eval_sha256: Option<String>,
    /// Everything, as a JSON object.
    pub json: String,
}

impl Store {
    /// Adds (or replaces, by trial/name/step) metric and evaluation rows and records how far
    /// into `metrics.jsonl` they come from. With `replace_all`, the trial's earlier rows are
    /// dropped first (the final ingest, which reads the whole file).
    pub fn ingest_metrics(
        &mut self,
        trial: &str,
        metrics: &[MetricRow],
        evals: &[EvalRow],
        offset: u64,
        replace_all: bool,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        if replace_all {
            tx.execute("DELETE FROM metrics WHERE trial_id = ?1", [trial])?;
            tx.execute("DELETE FROM evaluations WHERE trial_id = ?1", [trial])?;
        }
        {
            let mut m = tx.prepare_cached(
                "INSERT OR REPLACE INTO metrics (trial_id, step, epoch, name, value, time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in metrics {
                m.execute(params![trial, r.step, r.epoch, r.name, r.value, r.time])?;
            }
            let mut e = tx.prepare_cached(
                "INSERT OR REPLACE INTO evaluations (trial_id, step, epoch, split, em, f1)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in evals {
                e.execute(params![trial, r.step, r.epoch, r.split, r.em, r.f1])?;
            }
        }
        tx.execute(
            "UPDATE trials SET metrics_offset = ?2 WHERE id = ?1",
            params![trial, offset as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// How far into `metrics.jsonl` the stored rows reach.
    pub fn metrics_offset(&self, trial: &str) -> Result<u64> {
        let v: i64 = self.conn.query_row(
            "SELECT metrics_offset FROM trials WHERE id = ?1",
            [trial],
            |r| r.get(0),
        )?;
        Ok(v.max(0) as u64)
    }

    /// Replaces the trial's predictions and environment.
    pub fn save_outputs(
        &mut self,
        trial: &str,
        predictions: &[PredictionRow],
        env: Option<&EnvironmentRow>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM predictions WHERE trial_id = ?1", [trial])?;
        {
            let mut p = tx.prepare_cached(
                "INSERT OR REPLACE INTO predictions (trial_id, question_id, answer, em, f1)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for r in predictions {
                p.execute(params![trial, r.question_id, r.answer, r.em, r.f1])?;
            }
        }
        if let Some(e) = env {
            tx.execute(
                "INSERT OR REPLACE INTO environments (trial_id, git_commit, binary_version,
                     backend, device_name, host, train_sha256, eval_sha256, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    trial,
                    e.git_commit,
                    e.binary_version,
                    e.backend,
                    e.device_name,
                    e.host,
                    e.train_sha256,
                    e.eval_sha256,
                    e.json
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

//! Planning, leases and outcomes. A trial row is shared by every study variant whose
//! effective config is the same (same id); `study_trials` maps (study, variant, seed) to it.
//!
//! Claiming runs in an IMMEDIATE transaction, so two runners on one database never claim
//! the same trial. A claim is a lease that the owner's heartbeat extends; a running trial
//! whose lease expired, or whose owner is known to be dead, becomes `interrupted` and can
//! be claimed again (its trial process resumes from its last checkpoint).

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use spec::protocol::{TrialId, TrialStatus};

use crate::{now_text, Result, Store};

/// One planned (study, variant, seed) and its trial.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRow {
    pub ordinal: usize,
    pub variant: String,
    pub ablation: String,
    pub grid_point: String,
    pub seed: u64,
    /// JSON object of the dotted keys this variant sets.
    pub params: String,
    pub trial_id: String,
    /// Canonical JSON that the id hashes.
    pub effective_config: String,
    /// The trial config as it runs (JSON).
    pub config: String,
    /// The variant whose run this one shares, and why they are the same.
    pub duplicate_of: Option<String>,
    pub duplicate_reason: Option<String>,
}

/// Column `i` as a trial id; a value that is not one is reported as a corrupt row.
fn trial_id(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<TrialId> {
    let text: String = row.get(i)?;
    TrialId::parse(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// A trial this runner now holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub trial_id: TrialId,
    pub attempt: u32,
    pub config: String,
}

/// A running trial found orphaned (lease expired or owner dead) and marked interrupted.
#[derive(Debug, Clone, PartialEq)]
pub struct Reclaimed {
    pub trial_id: String,
    pub owner: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub status: TrialStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub error: Option<String>,
    pub stderr_tail: Option<String>,
    pub em: Option<f64>,
    pub f1: Option<f64>,
    pub train_loss: Option<f64>,
    pub train_seconds: Option<f64>,
    pub examples_per_second: Option<f64>,
    pub steps: Option<i64>,
    /// End-of-run numbers beyond the fixed columns (`result.json`'s `metrics`), stored as
    /// metric rows `final.<name>` at the last step.
    pub final_metrics: Vec<(String, f64)>,
    /// Pruned: the step of the evaluation the pruner compared, and its value.
    pub pruned: Option<(i64, f64)>,
}

impl Finish {
    pub fn new(status: TrialStatus) -> Self {
        Finish {
            status,
            exit_code: None,
            signal: None,
            error: None,
            stderr_tail: None,
            em: None,
            f1: None,
            train_loss: None,
            train_seconds: None,
            examples_per_second: None,
            steps: None,
            final_metrics: Vec::new(),
            pruned: None,
        }
    }
}

/// A running trial and its lease owner: (id, owner, lease expiry, owner host, owner pid).
type Candidate = (
    String,
    Option<String>,
    Option<f64>,
    Option<String>,
    Option<i64>,
);

impl Store {
    /// Records a study and its expanded trials. Trials already known (same id) keep their
    /// status and results; the study's variant mapping is replaced, so an edited study
    /// drops variants it no longer has.
    pub fn save_plan(
        &mut self,
        name: &str,
        description: Option<&str>,
        yaml: &str,
        yaml_sha256: &str,
        rows: &[PlannedRow],
    ) -> Result<()> {
        let now = now_text();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO studies (name, description, yaml, yaml_sha256, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT(name) DO UPDATE SET description = ?2, yaml = ?3, yaml_sha256 = ?4,
                 updated_at = ?5",
            params![name, description, yaml, yaml_sha256, now],
        )?;
        tx.execute("DELETE FROM study_trials WHERE study = ?1", [name])?;
        {
            let mut trial = tx.prepare(
                "INSERT OR IGNORE INTO trials (id, effective_config, config, seed)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut map = tx.prepare(
                "INSERT INTO study_trials (study, ordinal, variant, ablation, grid_point, seed,
                     params, trial_id, duplicate_of, duplicate_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in rows {
                trial.execute(params![
                    r.trial_id,
                    r.effective_config,
                    r.config,
                    r.seed as i64
                ])?;
                map.execute(params![
                    name,
                    r.ordinal as i64,
                    r.variant,
                    r.ablation,
                    r.grid_point,
                    r.seed as i64,
                    r.params,
                    r.trial_id,
                    r.duplicate_of,
                    r.duplicate_reason
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Registers a runner (for leases) or refreshes its heartbeat; extends the leases of
    /// the trials it runs.
    pub fn heartbeat(
        &mut self,
        runner: &str,
        host: &str,
        pid: u32,
        lease_seconds: f64,
    ) -> Result<()> {
        let now = crate::now_seconds();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO runners (id, host, pid, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET heartbeat_at = ?5",
            params![runner, host, pid, now_text(), now],
        )?;
        tx.execute(
            "UPDATE trials SET lease_expires_at = ?2 WHERE lease_owner = ?1 AND status = 'running'",
            params![runner, now + lease_seconds],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a runner that is exiting cleanly.
    pub fn unregister_runner(&mut self, runner: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM runners WHERE id = ?1", [runner])?;
        Ok(())
    }

    /// Marks orphaned running trials interrupted: those whose lease expired, whose owner is
    /// unknown, or whose owner `is_dead(host, pid)` says is gone.
    pub fn reclaim_orphans(
        &mut self,
        is_dead: &dyn Fn(&str, i64) -> bool,
    ) -> Result<Vec<Reclaimed>> {
        let now = crate::now_seconds();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let candidates: Vec<Candidate> = {
            // Trials running as scheduler jobs belong to the scheduler, not to a runner
            // process: a restarted runner reattaches to them instead.
            let mut stmt = tx.prepare(
                "SELECT t.id, t.lease_owner, t.lease_expires_at, r.host, r.pid
                 FROM trials t LEFT JOIN runners r ON r.id = t.lease_owner
                 WHERE t.status = 'running' AND NOT EXISTS (
                     SELECT 1 FROM attempts a WHERE a.trial_id = t.id
                       AND a.attempt = t.attempts AND a.executor = 'slurm')",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut reclaimed = Vec::new();
        for (id, owner, expires, host, pid) in candidates {
            let expired = expires.is_none_or(|e| e < now);
            let dead = match (&host, pid) {
                (Some(h), Some(p)) => is_dead(h, p),
                _ => true,
            };
            if expired || dead {
                tx.execute(
                    "UPDATE trials SET status = 'interrupted', lease_owner = NULL,
                         lease_expires_at = NULL WHERE id = ?1",
                    [&id],
                )?;
                tx.execute(
                    "UPDATE attempts SET status = 'interrupted', finished_at = ?2
                     WHERE trial_id = ?1 AND status = 'running'",
                    params![id, now_text()],
                )?;
                reclaimed.push(Reclaimed {
                    trial_id: id,
                    owner,
                });
            }
        }
        tx.execute(
            "DELETE FROM runners WHERE id NOT IN
                 (SELECT lease_owner FROM trials WHERE lease_owner IS NOT NULL)
             AND heartbeat_at < ?1",
            [now - 3600.0],
        )?;
        tx.commit()?;
        Ok(reclaimed)
    }

    /// Claims the study's next runnable trial in plan order: pending or interrupted, or
    /// failed/out of memory/timed out with fewer than `retries + 1` failures by this
    /// runner, skipping `excluded` ids. Returns `None` when nothing is runnable now.
    #[allow(clippy::too_many_arguments)]
    pub fn claim_next(
        &mut self,
        study: &str,
        runner: &str,
        device: &str,
        host: &str,
        pid: u32,
        lease_seconds: f64,
        retries: u32,
        excluded: &[TrialId],
    ) -> Result<Option<Claimed>> {
        let now = crate::now_seconds();
        // Trial ids are hex by construction (`TrialId`), so they can be spliced into SQL.
        let excluded: Vec<String> = excluded.iter().map(|id| format!("'{id}'")).collect();
        // The status rules are spec's (`TrialStatus::is_claimable`/`is_retryable`).
        let claimable = TrialStatus::sql_list(TrialStatus::is_claimable);
        let retryable = TrialStatus::sql_list(TrialStatus::is_retryable);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let next: Option<(TrialId, String, u32)> = tx
            .query_row(
                &format!(
                    "SELECT t.id, t.config, t.attempts FROM study_trials st
                     JOIN trials t ON t.id = st.trial_id
                     WHERE st.study = ?1 AND (t.status IN {claimable}
                        OR (t.status IN {retryable} AND
                            (SELECT COUNT(*) FROM attempts a WHERE a.trial_id = t.id
                               AND a.runner = ?2 AND a.status IN {retryable}) <= ?3))
                       AND t.id NOT IN ({})
                     ORDER BY st.ordinal LIMIT 1",
                    excluded.join(",")
                ),
                params![study, runner, retries],
                |r| Ok((trial_id(r, 0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((id, config, attempts)) = next else {
            return Ok(None);
        };
        let attempt = attempts + 1;
        let started = now_text();
        tx.execute(
            "UPDATE trials SET status = 'running', attempts = ?2, lease_owner = ?3,
                 lease_expires_at = ?4, device = ?5, host = ?6, started_at = ?7,
                 finished_at = NULL, exit_code = NULL, signal = NULL, error = NULL,
                 metrics_offset = 0
             WHERE id = ?1",
            params![
                id.as_str(),
                attempt,
                runner,
                now + lease_seconds,
                device,
                host,
                started
            ],
        )?;
        tx.execute(
            "INSERT INTO attempts (trial_id, attempt, runner, device, host, pid, started_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running')",
            params![id.as_str(), attempt, runner, device, host, pid, started],
        )?;
        tx.commit()?;
        Ok(Some(Claimed {
            trial_id: id,
            attempt,
            config,
        }))
    }

    /// Records the scheduler job (`executor`, e.g. `slurm`, and its id) running an attempt.
    pub fn set_attempt_job(
        &mut self,
        trial: &str,
        attempt: u32,
        executor: &str,
        job_id: &str,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE attempts SET executor = ?3, job_id = ?4 WHERE trial_id = ?1 AND attempt = ?2",
            params![trial, attempt, executor, job_id],
        )?;
        Ok(())
    }

    /// The study's trials now running as `executor` jobs: (trial id, attempt, job id).
    pub fn scheduler_jobs(
        &self,
        study: &str,
        executor: &str,
    ) -> Result<Vec<(TrialId, u32, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, a.attempt, a.job_id FROM study_trials st
             JOIN trials t ON t.id = st.trial_id
             JOIN attempts a ON a.trial_id = t.id AND a.attempt = t.attempts
             WHERE st.study = ?1 AND t.status = 'running' AND a.executor = ?2
               AND a.job_id IS NOT NULL
             GROUP BY t.id ORDER BY MIN(st.ordinal)",
        )?;
        let rows = stmt
            .query_map(params![study, executor], |r| {
                Ok((trial_id(r, 0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Takes over the lease of a running trial (a restarted runner reattaching to a job).
    pub fn adopt(&mut self, trial: &str, runner: &str, lease_seconds: f64) -> Result<()> {
        self.conn.execute(
            "UPDATE trials SET lease_owner = ?2, lease_expires_at = ?3
             WHERE id = ?1 AND status = 'running'",
            params![trial, runner, crate::now_seconds() + lease_seconds],
        )?;
        Ok(())
    }

    /// Records the child's pid on its attempt (for `sweep status` and debugging).
    pub fn set_attempt_pid(&mut self, trial: &str, attempt: u32, pid: u32) -> Result<()> {
        self.conn.execute(
            "UPDATE attempts SET pid = ?3 WHERE trial_id = ?1 AND attempt = ?2",
            params![trial, attempt, pid],
        )?;
        Ok(())
    }

    /// Ends an attempt. Returns false (and changes nothing) if this runner no longer holds
    /// the trial, e.g. because another runner reclaimed it after a missed heartbeat.
    pub fn finish(&mut self, trial: &str, attempt: u32, runner: &str, f: &Finish) -> Result<bool> {
        let now = now_text();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE trials SET status = ?3, lease_owner = NULL, lease_expires_at = NULL,
                 finished_at = ?4, exit_code = ?5, signal = ?6, error = ?7,
                 em = COALESCE(?8, em), f1 = COALESCE(?9, f1),
                 train_loss = COALESCE(?10, train_loss), train_seconds = COALESCE(?11, train_seconds),
                 examples_per_second = COALESCE(?12, examples_per_second), steps = COALESCE(?13, steps),
                 pruned_step = ?14, pruned_value = ?15
             WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
            params![
                trial,
                runner,
                f.status.as_str(),
                now,
                f.exit_code,
                f.signal,
                f.error,
                f.em,
                f.f1,
                f.train_loss,
                f.train_seconds,
                f.examples_per_second,
                f.steps,
                f.pruned.map(|p| p.0),
                f.pruned.map(|p| p.1)
            ],
        )?;
        if n == 1 {
            let step = f.steps.unwrap_or(0);
            for (name, value) in &f.final_metrics {
                tx.execute(
                    "INSERT OR REPLACE INTO metrics (trial_id, step, epoch, name, value, time)
                     VALUES (?1, ?2, NULL, ?3, ?4, NULL)",
                    params![
                        trial,
                        step,
                        format!("{}{name}", crate::queries::FINAL_METRIC_PREFIX),
                        value
                    ],
                )?;
            }
            tx.execute(
                "UPDATE attempts SET status = ?3, finished_at = ?4, exit_code = ?5, signal = ?6,
                     stderr_tail = ?7
                 WHERE trial_id = ?1 AND attempt = ?2",
                params![
                    trial,
                    attempt,
                    f.status.as_str(),
                    now,
                    f.exit_code,
                    f.signal,
                    f.stderr_tail
                ],
            )?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// The status of one trial.
    pub fn trial_status(&self, trial: &str) -> Result<Option<TrialStatus>> {
        let s: Option<String> = self
            .conn
            .query_row("SELECT status FROM trials WHERE id = ?1", [trial], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(s.and_then(|s| TrialStatus::parse(&s)))
    }
}

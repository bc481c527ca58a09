//! The runner's one loop, whatever runs the trials (an [`Executor`]): claim runnable trials
//! and hand them to the executor, record the ones that ended, ingest the metrics of the
//! running ones, keep the lease alive, add seeds for undecided claims, and react to
//! signals. The lifecycle of a trial can be read here from top to bottom; the rules it
//! follows are in docs/trial-lifecycle.md.
//!
//! A [`Session`] owns what a run holds: the database, the runner's registration, the signal
//! handlers and the progress display. Its `Drop` releases them on every path out,
//! errors included. A database failure that outlasts its retries ([`crate::db`]) is fatal:
//! the scheduler drains the running trials (SIGTERM; each saves its state) and returns the
//! error; nothing is lost, and the next `sweep run` resumes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use spec::protocol::{TrialId, TrialResult, TrialStatus};
use spec::TrialConfig;

use crate::attempt::{
    distinct_with, ingest, label_of, record_end, trial_labels, Attempt, Ended, Shared,
};
use crate::db::Db;
use crate::executor::{AfterInterrupt, Executor, Handle, LaunchReport, Launched};
use crate::local::LocalExecutor;
use crate::outcome::Stop;
use crate::plan::{hash_hex, Plan};
use crate::progress::Progress;
use crate::signals::Signals;
use crate::slurm::{SlurmExecutor, SlurmOptions};
use crate::{trial_dir, RunOptions, RunSummary, RunnerError};

/// Where trials run.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorKind {
    /// Child processes on this machine's devices.
    Local,
    /// Slurm array jobs; the runner follows them and may detach.
    Slurm(SlurmOptions),
}

/// Runs `plan` until every trial is done (or cannot run now), then returns what happened.
pub fn run(plan: &Plan, opts: &RunOptions, kind: &ExecutorKind) -> Result<RunSummary, RunnerError> {
    let mut executor: Box<dyn Executor> = match kind {
        ExecutorKind::Local => Box::new(LocalExecutor::new(opts)?),
        ExecutorKind::Slurm(s) => Box::new(SlurmExecutor::new(opts, s, &plan.study.name)?),
    };
    check_precisions(plan, &executor.devices())?;
    let session = Session::start(plan, opts)?;
    Scheduler::new(session, opts)?.run(executor.as_mut())
}

/// Every trial's precision can run on the executor's devices (`Precision::check_device`),
/// checked before anything starts.
fn check_precisions(plan: &Plan, devices: &[spec::Device]) -> Result<(), RunnerError> {
    for e in &plan.entries {
        let precision = e.trial.config.train.effective_precision();
        for d in devices {
            precision
                .check_device(*d)
                .map_err(|message| RunnerError::Check {
                    what: format!(
                        "variant {} (seed {}): train.precision on {d}",
                        e.trial.variant, e.trial.seed
                    ),
                    message,
                })?;
        }
    }
    Ok(())
}

/// Who this runner is in the database.
#[derive(Debug, Clone)]
struct Identity {
    host: String,
    pid: u32,
    id: String,
    lease: f64,
}

/// What one `sweep run` holds while it runs; released by `Drop` on every way out.
pub(crate) struct Session {
    db: Db,
    me: Identity,
    signals: Signals,
    progress: Progress,
    plan: Plan,
}

impl Session {
    /// Opens the database, records the plan (extended as far as a sequential study's
    /// finished runs already ask), registers this runner, and marks trials left running by
    /// dead runners interrupted so they resume.
    fn start(plan: &Plan, opts: &RunOptions) -> Result<Session, RunnerError> {
        let store = store::Store::open(&opts.db)?;
        let mut db = Db::new(store, opts.retry, opts.faults.clone());
        let host = crate::host_name();
        let pid = std::process::id();
        let me = Identity {
            id: format!("{host}:{pid}:{}", hash_hex(store::now_text().as_bytes(), 8)),
            host,
            pid,
            lease: opts.lease.as_secs_f64(),
        };
        db.call("register", |s| {
            s.heartbeat(&me.id, &me.host, me.pid, me.lease)
        })?;
        let orphans = db.call("reclaim", |s| {
            s.reclaim_orphans(&|h, p| h == me.host && crate::pid_is_dead(p))
        })?;
        for r in orphans {
            tracing::info!(
                "trial {} was left running by {} and is now interrupted; it will resume",
                r.trial_id,
                r.owner.as_deref().unwrap_or("an unknown runner")
            );
        }
        let plan = db.call("plan", |s| {
            let plan = crate::suggestions::resume(plan.clone(), s)?;
            crate::sequential::settle(plan, s)
        })?;
        let signals = Signals::install()?;
        Ok(Session {
            db,
            me,
            signals,
            progress: Progress::new(opts.progress, 0, 0),
            plan,
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.progress.finish();
        let id = self.me.id.clone();
        if let Err(e) = self.db.call("unregister", |s| s.unregister_runner(&id)) {
            tracing::warn!("{e} (the lease expires on its own)");
        }
    }
}

/// Trials stopped before their end in this run, and when to try them again.
#[derive(Debug, Default)]
struct Deferrals {
    by_trial: HashMap<TrialId, Deferral>,
}

#[derive(Debug)]
struct Deferral {
    times: u32,
    not_before: Instant,
    not_this_run: bool,
}

impl Deferrals {
    /// An interrupted attempt (not by this runner's own drain). A folder another process
    /// holds is tried again after 2 s, 4 s, … and given up after 5 tries; a user's scancel
    /// is respected for this run; anything stopped 10 times in one run is left for the next.
    fn note(&mut self, trial: &TrialId, busy: bool, cancelled: bool) {
        let d = self.by_trial.entry(trial.clone()).or_insert(Deferral {
            times: 0,
            not_before: Instant::now(),
            not_this_run: false,
        });
        d.times += 1;
        let wait = if busy { 2 * u64::from(d.times) } else { 0 };
        d.not_before = Instant::now() + Duration::from_secs(wait);
        d.not_this_run = cancelled || d.times >= 10 || (busy && d.times > 5);
    }

    /// An attempt that ran out of memory: its retry waits `base`, then twice that, …, so it
    /// does not restart at once into the memory pressure it just met.
    fn note_out_of_memory(&mut self, trial: &TrialId, base: Duration) {
        let d = self.by_trial.entry(trial.clone()).or_insert(Deferral {
            times: 0,
            not_before: Instant::now(),
            not_this_run: false,
        });
        d.times += 1;
        let factor = 1u32 << (d.times - 1).min(6);
        d.not_before = Instant::now() + base * factor;
    }

    fn excluded(&self) -> Vec<TrialId> {
        let now = Instant::now();
        self.by_trial
            .iter()
            .filter(|(_, d)| d.not_this_run || d.not_before > now)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Some trial will be runnable again soon.
    fn waiting(&self) -> bool {
        let now = Instant::now();
        self.by_trial
            .values()
            .any(|d| !d.not_this_run && d.not_before > now)
    }
}

struct Scheduler<'o> {
    session: Session,
    opts: &'o RunOptions,
    labels: HashMap<TrialId, String>,
    bars: HashMap<TrialId, ProgressBar>,
    shared: Shared,
    deferrals: Deferrals,
    summary: RunSummary,
    draining: bool,
    last_heartbeat: Instant,
    pruner: crate::suggestions::Pruner,
}

impl<'o> Scheduler<'o> {
    fn new(mut session: Session, opts: &'o RunOptions) -> Result<Self, RunnerError> {
        let study = session.plan.study.name.clone();
        let rows = session.db.call("read", |s| s.study_trials(&study))?;
        let summary = RunSummary {
            distinct_trials: session.plan.distinct_trials(),
            already_done: distinct_with(&rows, TrialStatus::is_final),
            ..RunSummary::default()
        };
        session.progress.set_total(summary.distinct_trials as u64);
        session.progress.set_done(summary.already_done as u64);
        tracing::info!(
            "study {study}: {} trials ({} distinct runs), {} already done",
            session.plan.entries.len(),
            summary.distinct_trials,
            summary.already_done
        );
        Ok(Scheduler {
            labels: trial_labels(&session.plan),
            session,
            opts,
            bars: HashMap::new(),
            shared: Shared::default(),
            deferrals: Deferrals::default(),
            summary,
            draining: false,
            last_heartbeat: Instant::now(),
            pruner: Default::default(),
        })
    }

    fn run(mut self, executor: &mut dyn Executor) -> Result<RunSummary, RunnerError> {
        match self.event_loop(executor) {
            Ok(()) => Ok(self.summary),
            Err(e) => {
                self.drain_after(&e, executor);
                Err(e)
            }
        }
    }

    fn event_loop(&mut self, executor: &mut dyn Executor) -> Result<(), RunnerError> {
        self.reattach(executor)?;
        let mut interrupts_seen = 0;
        loop {
            let interrupts = self.session.signals.interrupts();
            if interrupts > interrupts_seen {
                interrupts_seen = interrupts;
                self.summary.interrupted = true;
                if !self.draining {
                    self.session.progress.log(
                        "stopping: trials get SIGTERM and save their state; Ctrl-C again kills them",
                        false,
                    );
                }
                self.draining = true;
                if executor.interrupt(interrupts) == AfterInterrupt::Detach {
                    return Ok(());
                }
            }
            let mut exhausted = false;
            if !self.draining {
                let report = self.start_trials(executor);
                exhausted = report.exhausted;
                self.record_launches(report)?;
                // A slot is free and nothing is left to claim: a search makes its next
                // suggestion now, while the other trials run.
                if exhausted && self.suggest_next()? {
                    continue;
                }
            }
            let ended = executor.poll();
            let any_ended = !ended.is_empty();
            for e in ended {
                self.record(e)?;
            }
            self.ingest_running(executor)?;
            self.prune_running(executor)?;
            self.heartbeat()?;
            if any_ended {
                // A slot is free, or a retry is due: claim again at once.
                continue;
            }
            let idle = executor.running().is_empty();
            if idle && (self.draining || (exhausted && !self.deferrals.waiting())) {
                if !self.draining && self.extend_plan()? {
                    continue;
                }
                return Ok(());
            }
            self.session.signals.wait(executor.poll_interval());
        }
    }

    /// Follows jobs an earlier runner of this study submitted (Slurm).
    fn reattach(&mut self, executor: &mut dyn Executor) -> Result<(), RunnerError> {
        let study = self.session.plan.study.name.clone();
        let name = executor.name();
        let jobs = self
            .session
            .db
            .call("read", |s| s.scheduler_jobs(&study, name))?;
        for (trial_id, attempt, job) in jobs {
            let me = self.session.me.clone();
            self.session
                .db
                .call("adopt", |s| s.adopt(&trial_id, &me.id, me.lease))?;
            let config = self.trial_config(&trial_id)?;
            let label = label_of(&self.labels, &trial_id);
            let device = executor
                .devices()
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            let a = Attempt::new(
                &self.opts.workdir,
                &trial_id,
                attempt,
                &config,
                &label,
                &device,
            );
            self.bars
                .insert(trial_id.clone(), self.session.progress.trial_line(&label));
            executor.adopt(a, job);
        }
        Ok(())
    }

    fn trial_config(&mut self, trial_id: &TrialId) -> Result<TrialConfig, RunnerError> {
        let text = self
            .session
            .db
            .call("read", |s| s.trial_config(trial_id))?
            .ok_or_else(|| {
                RunnerError::Invalid(format!("trial {trial_id} is not in the database"))
            })?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Lets the executor claim what it has room for. A claimed trial whose folder already
    /// holds a result (its recording was lost: the runner died, or the database failed,
    /// after the trial ended) is recorded from that result instead of run again.
    fn start_trials(&mut self, executor: &mut dyn Executor) -> LaunchReport {
        let study = self.session.plan.study.name.clone();
        let me = self.session.me.clone();
        let retries = self.opts.retries;
        let workdir = self.opts.workdir.clone();
        let mut recovered: Vec<Ended> = Vec::new();
        let report = {
            let db = &mut self.session.db;
            let deferrals = &self.deferrals;
            let labels = &self.labels;
            let mut claim = |device: &str, trial_device: spec::Device| loop {
                let excluded = deferrals.excluded();
                let claimed = db.call("claim", |s| {
                    s.claim_next(
                        &study, &me.id, device, &me.host, me.pid, me.lease, retries, &excluded,
                    )
                })?;
                let Some(c) = claimed else {
                    return Ok(None);
                };
                let config: TrialConfig = serde_json::from_str(&c.config)?;
                let label = label_of(labels, &c.trial_id);
                let attempt =
                    Attempt::new(&workdir, &c.trial_id, c.attempt, &config, &label, device);
                if let Ok(Some(_)) = TrialResult::read(&attempt.dir) {
                    tracing::info!("{label}: its result is already in its folder; recording it");
                    recovered.push(Ended {
                        attempt,
                        code: Some(spec::protocol::exit::SUCCEEDED),
                        signal: None,
                        stop: Stop::None,
                        note: Some("recovered from result.json".into()),
                        cancelled: false,
                    });
                    continue;
                }
                trial_dir::prepare(&attempt.dir, &config, trial_device)?;
                return Ok(Some(attempt));
            };
            executor.start(&mut claim)
        };
        for e in recovered {
            if let Err(err) = self.record(e) {
                let mut report = report;
                report.fatal.get_or_insert(err);
                return report;
            }
        }
        report
    }

    fn record_launches(&mut self, report: LaunchReport) -> Result<(), RunnerError> {
        for l in report.launched {
            match l {
                Launched::Running {
                    trial_id,
                    attempt,
                    label,
                    device,
                    handle,
                } => {
                    match &handle {
                        Handle::Pid(pid) => self
                            .session
                            .db
                            .call("attempt", |s| s.set_attempt_pid(&trial_id, attempt, *pid))?,
                        Handle::Job(job) => {
                            let name = crate::slurm::EXECUTOR;
                            self.session.db.call("attempt", |s| {
                                s.set_attempt_job(&trial_id, attempt, name, job)
                            })?
                        }
                    }
                    self.session.progress.log(
                        &format!("start {label} on {device} (trial {trial_id}, attempt {attempt})"),
                        true,
                    );
                    self.bars.insert(
                        trial_id,
                        self.session
                            .progress
                            .trial_line(&format!("{label} [{device}]")),
                    );
                }
                Launched::NotStarted {
                    attempt,
                    status,
                    error,
                } => {
                    let mut f = store::Finish::new(status);
                    f.error = Some(error.clone());
                    let me = self.session.me.id.clone();
                    self.session.db.call("finish", |s| {
                        s.finish(&attempt.trial_id, attempt.attempt, &me, &f)
                    })?;
                    *self.summary.outcomes.entry(status).or_default() += 1;
                    tracing::error!("{}: {error}", attempt.label);
                }
            }
        }
        match report.fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Records an ended attempt and decides when an interrupted one may run again.
    fn record(&mut self, mut ended: Ended) -> Result<(), RunnerError> {
        let me = self.session.me.clone();
        let shared = &mut self.shared;
        let verdict = self.pruner.take(&ended.attempt.trial_id);
        let pruned = match (&verdict, ended.stop) {
            (Some((step, value, line)), Stop::Prune) => {
                ended.note = Some(line.clone());
                Some((*step, *value))
            }
            _ => None,
        };
        let (status, line) = self.session.db.call("finish", |s| {
            record_end(s, &me.id, &me.host, &mut ended, shared, pruned)
        })?;
        let id = ended.attempt.trial_id.clone();
        self.session
            .progress
            .log(&line, status == TrialStatus::Succeeded);
        if let Some(bar) = self.bars.remove(&id) {
            self.session.progress.finish_trial(&bar, status.is_final());
        } else if status.is_final() {
            self.session.progress.inc_done();
        }
        // Stopped while this runner is not draining: by a scheduler (time limit,
        // preemption, scancel) or another process holding the folder.
        if status == TrialStatus::Interrupted && !self.draining {
            let busy = ended.code == Some(spec::protocol::exit::BUSY);
            self.deferrals.note(&id, busy, ended.cancelled);
        }
        if status == TrialStatus::OutOfMemory && !self.draining {
            self.deferrals
                .note_out_of_memory(&id, self.opts.oom_backoff);
        }
        *self.summary.outcomes.entry(status).or_default() += 1;
        Ok(())
    }

    /// New metric lines of running trials, at most once a second each.
    fn ingest_running(&mut self, executor: &mut dyn Executor) -> Result<(), RunnerError> {
        for a in executor.running() {
            if a.last_ingest.elapsed() < Duration::from_secs(1) {
                continue;
            }
            let news = self.session.db.call("ingest", |s| ingest(a, s, false))?;
            if let (Some(msg), Some(bar)) = (news, self.bars.get(&a.trial_id)) {
                bar.set_message(msg);
                bar.tick();
            }
        }
        Ok(())
    }

    /// A search's pruner stops the running trials that fell behind at a rung.
    fn prune_running(&mut self, executor: &mut dyn Executor) -> Result<(), RunnerError> {
        if self.draining {
            return Ok(());
        }
        let running: Vec<TrialId> = executor
            .running()
            .iter()
            .map(|a| a.trial_id.clone())
            .collect();
        let plan = &self.session.plan;
        let pruner = &mut self.pruner;
        let stops = self
            .session
            .db
            .call("read", |s| pruner.look(plan, s, &running))?;
        for (trial, why) in stops {
            let label = label_of(&self.labels, &trial);
            self.session
                .progress
                .log(&format!("prune {label}: {why}"), true);
            if !executor.prune(&trial) {
                // Ended meanwhile: whatever it ended as stands.
                self.pruner.take(&trial);
            }
        }
        Ok(())
    }

    /// A search study with suggestions left gets its next one; true if it did.
    fn suggest_next(&mut self) -> Result<bool, RunnerError> {
        if self.session.plan.study.search.is_none() {
            return Ok(false);
        }
        let plan = &self.session.plan;
        let Some(next) = self
            .session
            .db
            .call("read", |s| crate::suggestions::extend(plan, s))?
        else {
            return Ok(false);
        };
        self.adopt_plan(next)?;
        Ok(true)
    }

    fn heartbeat(&mut self) -> Result<(), RunnerError> {
        if self.last_heartbeat.elapsed() >= self.opts.lease / 3 {
            let me = self.session.me.clone();
            self.session.db.call("heartbeat", |s| {
                s.heartbeat(&me.id, &me.host, me.pid, me.lease)
            })?;
            self.last_heartbeat = Instant::now();
        }
        Ok(())
    }

    /// A sequential study whose claims are not decided yet gets more seeds; true if it did.
    fn extend_plan(&mut self) -> Result<bool, RunnerError> {
        let plan = &self.session.plan;
        let Some(next) = self
            .session
            .db
            .call("read", |s| crate::sequential::extend(plan, s))?
        else {
            return Ok(false);
        };
        self.adopt_plan(next)?;
        Ok(true)
    }

    /// Records a grown plan and runs it from now on.
    fn adopt_plan(&mut self, next: Plan) -> Result<(), RunnerError> {
        self.session
            .db
            .call("plan", |s| crate::sequential::save(&next, s))?;
        self.labels = trial_labels(&next);
        self.summary.distinct_trials = next.distinct_trials();
        self.session
            .progress
            .set_total(self.summary.distinct_trials as u64);
        self.session.plan = next;
        Ok(())
    }

    /// After a fatal error: every running trial is asked to stop (it saves its state) and
    /// waited for; what can still be recorded is, the rest is resumed by the next run.
    fn drain_after(&mut self, error: &RunnerError, executor: &mut dyn Executor) {
        tracing::error!("{error}");
        if executor.running().is_empty() {
            return;
        }
        // With the database failing, recording would only wait out its retries again.
        let record = !matches!(error, RunnerError::Database { .. });
        self.session.progress.log(
            "stopping every running trial (each saves its state); run the same command again to resume",
            false,
        );
        if executor.interrupt(1) == AfterInterrupt::Detach {
            return;
        }
        let interrupts_before = self.session.signals.interrupts();
        while !executor.running().is_empty() {
            if self.session.signals.interrupts() > interrupts_before {
                executor.interrupt(2);
            }
            for e in executor.poll() {
                if !record {
                    continue;
                }
                if let Err(e) = self.record(e) {
                    tracing::warn!("not recorded: {e}");
                }
            }
            self.session.signals.wait(executor.poll_interval());
        }
    }
}

//! The sweep runner: plans a study into trials ([`plan`]), checks its inputs ([`check`]),
//! runs them through one scheduler loop ([`scheduler`]) on an executor (child processes
//! on local devices, [`local`]; Slurm array jobs, [`slurm`]) and records everything in the
//! results database, of which it is the only writer ([`db`]). It never links burn: a trial
//! is a process speaking `spec::protocol` (`sweep trial DIR`, or the test suite's fake
//! trial), both built on [`trial_process`]. Lifecycle and crash safety:
//! `docs/trial-lifecycle.md`.

mod attempt;
pub mod check;
pub mod db;
mod executor;
pub mod export;
mod local;
pub mod outcome;
pub mod plan;
pub mod program;
mod progress;
pub mod scheduler;
pub mod sequential;
mod signals;
pub mod slurm;
pub mod suggestions;
pub mod trial_dir;
pub mod trial_process;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use spec::protocol::TrialStatus;
use spec::Device;

pub use db::{FaultPlan, RetryPolicy};
pub use plan::{Plan, PlanEntry};

/// Expands `study` and gives every trial its id (a search study: its first suggestions).
/// Reads each distinct `model.init`'s `config.json` (to know the architecture and which
/// overrides are no-ops).
pub fn plan(study: &spec::Study) -> Result<Plan, RunnerError> {
    plan_with(study, true)
}

/// [`plan`]; with `require_models: false`, a `model.init` folder that cannot be read is
/// assumed to hold a BERT checkpoint with no config values to compare against, and a
/// program trial's missing `code:` file enters the id as missing (for
/// `sweep plan --no-check-files` before the models and scripts are there).
pub fn plan_with(study: &spec::Study, require_models: bool) -> Result<Plan, RunnerError> {
    if study.search.is_some() {
        suggestions::first_plan(study, require_models)
    } else {
        plan::plan_with(study, require_models)
    }
}
pub use scheduler::{run, ExecutorKind};

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Final status counts of this run's attempts.
    pub outcomes: HashMap<TrialStatus, usize>,
    /// Trials the plan shares between variants (run once).
    pub distinct_trials: usize,
    /// Trials already finished before this run.
    pub already_done: usize,
    /// The run was stopped by a signal (drained locally, detached from Slurm).
    pub interrupted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{what}: {message}")]
    Check { what: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the results database failed at {operation} (after {retries} retries): {source}")]
    Database {
        operation: String,
        retries: u32,
        #[source]
        source: store::StoreError,
    },
    #[error("{0}")]
    Invalid(String),
}

/// How `sweep run` runs a study locally.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The results database.
    pub db: PathBuf,
    /// Where trial folders go (`<workdir>/trials/<id>`).
    pub workdir: PathBuf,
    /// One slot group each.
    pub devices: Vec<Device>,
    /// Concurrent trials per device.
    pub per_device: usize,
    /// Extra attempts for failed, out-of-memory and timed-out trials.
    pub retries: u32,
    pub trial_timeout: Option<Duration>,
    /// The trial command; the trial folder and `--device D` are appended.
    pub trial_command: Vec<OsString>,
    /// Draw progress bars (only on a terminal).
    pub progress: bool,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// How long a stopped trial gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// How long a trial that ran out of memory waits before its retry (doubling with each
    /// out-of-memory attempt): the memory another trial on the device held may be free by
    /// then, and other trials run meanwhile.
    pub oom_backoff: Duration,
    /// The longest the runner sleeps between looks at its children and their files (a
    /// child's exit or a signal wakes it at once).
    pub poll: Duration,
    /// How long transient database failures are retried before the run drains and stops.
    pub retry: RetryPolicy,
    /// Test hook: database failures to inject ([`FaultPlan`]). `None` in real runs.
    pub faults: Option<FaultPlan>,
}

impl RunOptions {
    /// Defaults for `db`, with trial folders beside it.
    pub fn new(db: PathBuf, trial_command: Vec<OsString>) -> Self {
        let workdir = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        RunOptions {
            db,
            workdir,
            devices: vec![Device::Cpu],
            per_device: 1,
            retries: 0,
            trial_timeout: None,
            trial_command,
            progress: false,
            lease: Duration::from_secs(60),
            kill_grace: Duration::from_secs(30),
            oom_backoff: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            retry: RetryPolicy::default(),
            faults: None,
        }
    }

    /// Test and benchmark knobs from the environment: `SWEEP_POLL_MS` (the poll),
    /// `SWEEP_KILL_GRACE_S` (SIGTERM to SIGKILL), `SWEEP_OOM_BACKOFF_S` (the first wait
    /// before an out-of-memory retry).
    pub fn with_env_overrides(mut self) -> Self {
        if let Some(ms) = std::env::var("SWEEP_POLL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            self.poll = Duration::from_millis(ms);
        }
        if let Some(s) = std::env::var("SWEEP_KILL_GRACE_S")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
        {
            self.kill_grace = Duration::from_secs_f64(s);
        }
        if let Some(s) = std::env::var("SWEEP_OOM_BACKOFF_S")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
        {
            self.oom_backoff = Duration::from_secs_f64(s);
        }
        self
    }
}

/// `sweep run`'s exit code when the run was interrupted (Ctrl-C, SIGTERM, a detached Slurm
/// runner): running the same command again resumes.
pub const EXIT_INTERRUPTED: i32 = 130;

/// `sweep run`'s exit code after a run, the one rule for it: [`EXIT_INTERRUPTED`] when it
/// was interrupted, 0 when every trial of the study succeeded (or is still running in
/// another runner), 1 when some did not.
pub fn exit_code(summary: &RunSummary, rows: &[store::StudyTrialRow]) -> i32 {
    if summary.interrupted {
        return EXIT_INTERRUPTED;
    }
    let all_ok = rows.iter().all(|r| {
        matches!(
            r.status,
            // A search's pruner stopping a trial is the search working, not a failure.
            TrialStatus::Succeeded | TrialStatus::Running | TrialStatus::Pruned
        )
    });
    if all_ok {
        0
    } else {
        1
    }
}

/// Every visible GPU (`nvidia-smi -L`, limited by `CUDA_VISIBLE_DEVICES`), else `cpu`.
pub fn default_devices() -> Vec<Device> {
    let listed = std::process::Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with("GPU "))
                .count()
        })
        .unwrap_or(0);
    let visible: Option<Vec<String>> = std::env::var("CUDA_VISIBLE_DEVICES").ok().map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    });
    let ids: Vec<u32> = match visible {
        Some(v) => v.iter().filter_map(|i| i.parse().ok()).collect(),
        None => (0..listed as u32).collect(),
    };
    if listed == 0 || ids.is_empty() {
        vec![Device::Cpu]
    } else {
        ids.into_iter().map(Device::Cuda).collect()
    }
}

/// This machine's name (recorded with leases and trials).
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a process of this host is gone.
pub fn pid_is_dead(pid: i64) -> bool {
    use nix::errno::Errno;
    match i32::try_from(pid) {
        Ok(p) if p > 0 => matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None),
            Err(Errno::ESRCH)
        ),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_is_alive() {
        assert!(!pid_is_dead(i64::from(std::process::id())));
        assert!(pid_is_dead(0));
    }
}

//! The sweep runner: plans a study into trials ([`plan`]), checks its inputs ([`check`]),
//! runs trials as child processes on local devices ([`local`]) and records everything in
//! the results database, of which it is the only writer. It never links burn: a trial is
//! a process speaking the protocol of `spec::protocol` (`sweep trial DIR`, or the test
//! suite's fake trial). Lifecycle and crash safety: `docs/trial-lifecycle.md`.

mod attempt;
pub mod check;
pub mod export;
pub mod local;
pub mod outcome;
pub mod plan;
mod progress;
pub mod sequential;
pub mod slurm;
pub mod trial_dir;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub use local::{run_local, RunSummary};
pub use plan::{plan, plan_with, Plan, PlanEntry};

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
    /// `cpu` or `cuda:N`, one slot group each.
    pub devices: Vec<String>,
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
    /// The longest the runner sleeps between looks at its children and their files (a
    /// child's exit or a signal wakes it at once).
    pub poll: Duration,
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
            devices: vec!["cpu".into()],
            per_device: 1,
            retries: 0,
            trial_timeout: None,
            trial_command,
            progress: false,
            lease: Duration::from_secs(60),
            kill_grace: Duration::from_secs(30),
            poll: Duration::from_millis(500),
        }
    }
}

/// `cpu`, `cuda:N` or a comma-separated list of them.
pub fn parse_devices(text: &str) -> Result<Vec<String>, RunnerError> {
    let mut out = Vec::new();
    for d in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let ok = d == "cpu"
            || d.strip_prefix("cuda:")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(RunnerError::Invalid(format!(
                "--devices: {d:?} is not a device; expected cpu or cuda:N (e.g. cuda:0,cuda:1)"
            )));
        }
        if out.iter().any(|o| o == d) {
            return Err(RunnerError::Invalid(format!(
                "--devices: {d} is listed twice; use --per-device for several trials per device"
            )));
        }
        out.push(d.to_string());
    }
    if out.is_empty() {
        return Err(RunnerError::Invalid("--devices: no device given".into()));
    }
    Ok(out)
}

/// Every visible GPU (`nvidia-smi -L`, limited by `CUDA_VISIBLE_DEVICES`), else `cpu`.
pub fn default_devices() -> Vec<String> {
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
    let ids: Vec<String> = match visible {
        Some(v) => v,
        None => (0..listed).map(|i| i.to_string()).collect(),
    };
    if listed == 0 || ids.is_empty() {
        vec!["cpu".into()]
    } else {
        ids.iter().map(|i| format!("cuda:{i}")).collect()
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
    fn devices_parse_with_clear_errors() {
        assert_eq!(
            parse_devices("cuda:0, cuda:1").unwrap(),
            ["cuda:0", "cuda:1"]
        );
        assert_eq!(parse_devices("cpu").unwrap(), ["cpu"]);
        assert!(parse_devices("gpu0")
            .unwrap_err()
            .to_string()
            .contains("gpu0"));
        assert!(parse_devices("cpu,cpu")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(parse_devices("").is_err());
    }

    #[test]
    fn own_pid_is_alive() {
        assert!(!pid_is_dead(i64::from(std::process::id())));
        assert!(pid_is_dead(0));
    }
}

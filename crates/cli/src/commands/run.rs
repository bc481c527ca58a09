//! `sweep run STUDY.yaml`: runs every trial of a study that is not done yet, records all
//! results in the database, and prints the status table. Safe to interrupt and rerun.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use spec::protocol::TrialStatus;

use crate::commands::plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    /// Child processes on this machine's devices.
    Local,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The study YAML (see docs/experiment-format.md).
    pub study: PathBuf,
    /// The results database; trial folders go beside it unless --workdir says otherwise.
    #[arg(long, default_value = "results/sweep.db")]
    pub db: PathBuf,
    /// Where trial folders go (<workdir>/trials/<id>). Default: the database's folder.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// cpu, or CUDA devices such as cuda:0,cuda:1. Default: every visible GPU, else cpu.
    #[arg(long)]
    pub devices: Option<String>,
    /// Concurrent trials per device.
    #[arg(long, default_value_t = 1)]
    pub per_device: usize,
    /// Extra attempts for failed, out-of-memory and timed-out trials (diverged ones never).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Stop a trial that runs longer than this (e.g. 90s, 30m, 2h); it keeps its state.
    #[arg(long, value_parser = parse_duration)]
    pub trial_timeout: Option<Duration>,
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    pub executor: Executor,
}

/// `90`, `90s`, `30m`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 90s, 30m or 2h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unit must be s, m or h")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("{s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The trial worker: this binary's `trial` subcommand, or `SWEEP_TRIAL_COMMAND`
/// (whitespace-separated; the test suite and benchmarks point it at the fake trial).
pub fn trial_command() -> anyhow::Result<Vec<OsString>> {
    if let Ok(cmd) = std::env::var("SWEEP_TRIAL_COMMAND") {
        let parts: Vec<OsString> = cmd.split_whitespace().map(OsString::from).collect();
        if !parts.is_empty() {
            return Ok(parts);
        }
    }
    Ok(vec![
        std::env::current_exe()?.into_os_string(),
        "trial".into(),
    ])
}

/// Returns the exit code: 0 when every trial succeeded (or is still running in another
/// runner), 1 when some did not, 130 when the run was interrupted.
pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let plan = plan::load(&args.study, true)?;
    let mut opts = runner::RunOptions::new(args.db.clone(), trial_command()?);
    if let Some(w) = &args.workdir {
        opts.workdir = w.clone();
    }
    opts.devices = match &args.devices {
        Some(d) => runner::parse_devices(d)?,
        None => runner::default_devices(),
    };
    if args.per_device == 0 {
        anyhow::bail!("--per-device must be at least 1");
    }
    opts.per_device = args.per_device;
    opts.retries = args.retries;
    opts.trial_timeout = args.trial_timeout;
    opts.progress = std::io::stderr().is_terminal();
    if let Some(ms) = std::env::var("SWEEP_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.poll = Duration::from_millis(ms);
    }
    if let Some(s) = std::env::var("SWEEP_KILL_GRACE_S")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.kill_grace = Duration::from_secs_f64(s);
    }
    let summary = runner::run_local(&plan, &opts)?;
    let store = store::Store::open_read_only(&args.db)?;
    let rows = store.study_trials(&plan.study.name)?;
    eprint!(
        "{}",
        runner::status::render_table(&plan.study.name, &runner::status::summarize(&rows))
    );
    if summary.interrupted {
        eprintln!("interrupted: run the same command again to resume");
        return Ok(130);
    }
    // Trials another runner is still running are not failures of this run.
    let elsewhere = rows
        .iter()
        .filter(|r| r.status == TrialStatus::Running)
        .count();
    if elsewhere > 0 {
        eprintln!("{elsewhere} trial(s) are still running in another runner");
    }
    let all_ok = rows
        .iter()
        .all(|r| matches!(r.status, TrialStatus::Succeeded | TrialStatus::Running));
    Ok(if all_ok { 0 } else { 1 })
}

//! `sweep run STUDY.yaml`: runs every trial of a study that is not done yet, records all
//! results in the database, and prints the status table. Safe to interrupt and rerun.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use spec::protocol::TrialStatus;

use crate::commands::launch::{trial_command, Executor, SlurmArgs};
use crate::commands::plan;

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
    #[command(flatten)]
    pub slurm: SlurmArgs,
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
        Some(d) => spec::Device::parse_list(d).map_err(|e| anyhow::anyhow!("--devices: {e}"))?,
        None => runner::default_devices(),
    };
    // A CPU build on a GPU machine would pick the GPUs and fail every burn trial at its
    // start: say so before anything runs. Program trials bring their own GPU code; the
    // fake trial (SWEEP_TRIAL_COMMAND) and Slurm (devices from its allocation) need none.
    let local_burn_trials = plan.entries.iter().any(|e| !e.trial.config.is_program())
        && std::env::var_os("SWEEP_TRIAL_COMMAND").is_none()
        && matches!(args.executor, Executor::Local);
    if local_burn_trials && !cfg!(feature = "cuda") && opts.devices.iter().any(|d| d.is_cuda()) {
        let devices: Vec<String> = opts.devices.iter().map(|d| d.to_string()).collect();
        anyhow::bail!(
            "this sweep was built without CUDA, but the run would use {} ({}). Build the CUDA one \
             (`cargo build --release --features cuda`), or pass --devices cpu",
            devices.join(","),
            if args.devices.is_some() {
                "from --devices"
            } else {
                "every GPU nvidia-smi lists"
            }
        );
    }
    if local_burn_trials && !cfg!(feature = "wgpu") && opts.devices.iter().any(|d| d.is_wgpu()) {
        anyhow::bail!("--devices: {}", super::device::NO_WGPU);
    }
    if args.per_device == 0 {
        anyhow::bail!("--per-device must be at least 1");
    }
    opts.per_device = args.per_device;
    opts.retries = args.retries;
    opts.trial_timeout = args.trial_timeout;
    opts.progress = std::io::stderr().is_terminal();
    let opts = opts.with_env_overrides();
    let executor = match args.executor {
        Executor::Local => runner::ExecutorKind::Local,
        Executor::Slurm => {
            if !(args.slurm.slurm_poll.is_finite() && args.slurm.slurm_poll > 0.0) {
                anyhow::bail!("--slurm-poll must be a positive number of seconds");
            }
            runner::ExecutorKind::Slurm(runner::slurm::SlurmOptions {
                spec: args.slurm.merged(&plan.study)?,
                poll: Duration::from_secs_f64(args.slurm.slurm_poll),
            })
        }
    };
    let summary = runner::run(&plan, &opts, &executor)?;
    let store = store::Store::open_read_only(&args.db)?;
    let rows = store.study_trials(&plan.study.name)?;
    eprint!(
        "{}",
        report::status::render_table(&plan.study.name, &report::status::summarize(&rows))
    );
    if summary.interrupted {
        match args.executor {
            Executor::Local => eprintln!("interrupted: run the same command again to resume"),
            Executor::Slurm => eprintln!(
                "detached: submitted tasks keep running; run the same command again to follow them"
            ),
        }
    } else {
        // Trials another runner is still running are not failures of this run.
        let elsewhere = rows
            .iter()
            .filter(|r| r.status == TrialStatus::Running)
            .count();
        if elsewhere > 0 {
            eprintln!("{elsewhere} trial(s) are still running in another runner");
        }
    }
    Ok(runner::exit_code(&summary, &rows))
}

//! How a study's trials are launched: the executor, the Slurm options and the trial worker's
//! command. `sweep run` launches with them; `sweep plan --executor slurm` previews the same
//! script.

use std::ffi::OsString;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    /// Child processes on this machine's devices.
    Local,
    /// A Slurm job array; trial folders on a shared filesystem (--workdir).
    Slurm,
}

/// Slurm options; each overrides the study's `executor.slurm` key of the same name.
#[derive(Debug, Clone, Default, Args)]
pub struct SlurmArgs {
    /// Slurm partition (sbatch --partition).
    #[arg(long, help_heading = "Slurm")]
    pub partition: Option<String>,
    /// Generic resources per task, e.g. gpu:1 (trials then run on cuda:0 of their node).
    #[arg(long, help_heading = "Slurm")]
    pub gres: Option<String>,
    #[arg(long, help_heading = "Slurm")]
    pub cpus_per_task: Option<u32>,
    /// Memory per task, e.g. 32G.
    #[arg(long, help_heading = "Slurm")]
    pub mem: Option<String>,
    /// Time limit per task, e.g. 04:00:00; the trial saves its state before it.
    #[arg(long, help_heading = "Slurm")]
    pub time: Option<String>,
    /// At most this many tasks of an array run at once (sbatch --array=…%K).
    #[arg(long, help_heading = "Slurm")]
    pub max_parallel: Option<u32>,
    /// Seconds between looks at the queue (sacct/squeue).
    #[arg(long, default_value_t = 15.0, help_heading = "Slurm")]
    pub slurm_poll: f64,
}

impl SlurmArgs {
    /// The study's settings with the command line's on top, checked (an error names the
    /// flag or the study key).
    pub fn merged(&self, study: &spec::Study) -> anyhow::Result<spec::slurm::SlurmSpec> {
        let mut s = study.executor.slurm.clone().unwrap_or_default();
        if let Some(v) = &self.partition {
            s.partition = Some(v.clone());
        }
        if let Some(v) = &self.gres {
            s.gres = Some(v.clone());
        }
        if let Some(v) = self.cpus_per_task {
            s.cpus_per_task = Some(v);
        }
        if let Some(v) = &self.mem {
            s.mem = Some(v.clone());
        }
        if let Some(v) = &self.time {
            s.time = Some(v.clone());
        }
        if let Some(v) = self.max_parallel {
            s.max_parallel = Some(v);
        }
        if let Err(e) = s.validate() {
            let flag = format!("--{}", e.key.replace('_', "-"));
            let from_flag = match e.key.as_str() {
                "partition" => self.partition.is_some(),
                "gres" => self.gres.is_some(),
                "mem" => self.mem.is_some(),
                "time" => self.time.is_some(),
                "cpus_per_task" => self.cpus_per_task.is_some(),
                "max_parallel" => self.max_parallel.is_some(),
                _ => false,
            };
            let key = if from_flag {
                flag
            } else {
                format!("executor.slurm.{}", e.key)
            };
            anyhow::bail!("{key}: {}", e.message);
        }
        Ok(s)
    }
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

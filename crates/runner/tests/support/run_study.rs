//! `run-study STUDY.yaml --db DB [options]`: the runner as its own process, without the
//! `sweep` binary (which links burn), for the runner's tests that signal or kill it. It
//! plans the study and calls `runner::run` as `sweep run` does; the trial command comes
//! from `SWEEP_TRIAL_COMMAND` (the fake trial). Options: `--workdir W`, `--devices D`,
//! `--per-device N`, `--retries N`, `--trial-timeout SECONDS`, `--executor local|slurm`,
//! `--slurm-poll SECONDS`, `--time T`, `--max-parallel K`, `--gres G`. Exit codes as
//! `sweep run`: 0 all succeeded, 1 some did not, 130 interrupted, 2 an error.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use runner::slurm::SlurmOptions;
use runner::{ExecutorKind, RunOptions};
use spec::slurm::SlurmSpec;

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    std::process::exit(match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("run-study: {e}");
            2
        }
    });
}

fn run() -> Result<i32, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let study_path = PathBuf::from(args.first().ok_or("usage: run-study STUDY.yaml --db DB")?);
    let flag = |name: &str| -> Option<&str> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let number = |name: &str| -> Result<Option<f64>, String> {
        flag(name)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| format!("{name}: {v:?} is not a number"))
            })
            .transpose()
    };
    let db = PathBuf::from(flag("--db").ok_or("--db is required")?);
    let command: Vec<OsString> = std::env::var("SWEEP_TRIAL_COMMAND")
        .map_err(|_| "SWEEP_TRIAL_COMMAND is not set")?
        .split_whitespace()
        .map(OsString::from)
        .collect();
    let study = spec::Study::from_yaml_file(&study_path).map_err(|e| e.to_string())?;
    let plan = runner::plan(&study).map_err(|e| e.to_string())?;
    let mut opts = RunOptions::new(db.clone(), command).with_env_overrides();
    if let Some(w) = flag("--workdir") {
        opts.workdir = PathBuf::from(w);
    }
    if let Some(d) = flag("--devices") {
        opts.devices = spec::Device::parse_list(d)?;
    }
    opts.per_device = number("--per-device")?.map_or(1, |n| n as usize);
    opts.retries = number("--retries")?.map_or(0, |n| n as u32);
    opts.trial_timeout = number("--trial-timeout")?.map(Duration::from_secs_f64);
    let executor = match flag("--executor") {
        None | Some("local") => ExecutorKind::Local,
        Some("slurm") => {
            let mut spec: SlurmSpec = study.executor.slurm.clone().unwrap_or_default();
            if let Some(t) = flag("--time") {
                spec.time = Some(t.to_string());
            }
            if let Some(k) = number("--max-parallel")? {
                spec.max_parallel = Some(k as u32);
            }
            if let Some(g) = flag("--gres") {
                spec.gres = Some(g.to_string());
            }
            ExecutorKind::Slurm(SlurmOptions {
                spec,
                poll: Duration::from_secs_f64(number("--slurm-poll")?.unwrap_or(1.0)),
            })
        }
        Some(other) => return Err(format!("--executor {other}: expected local or slurm")),
    };
    let summary = runner::run(&plan, &opts, &executor).map_err(|e| e.to_string())?;
    let store = store::Store::open_read_only(&db).map_err(|e| e.to_string())?;
    let rows = store.study_trials(&study.name).map_err(|e| e.to_string())?;
    Ok(runner::exit_code(&summary, &rows))
}

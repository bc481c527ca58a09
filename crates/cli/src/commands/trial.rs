//! `sweep trial DIR`: runs one prepared trial folder for an executor (the local runner or a
//! Slurm array task). Speaks `spec::protocol`: holds the folder's lock, asks for SIGTERM
//! when its parent runner dies, stops cleanly (state saved) on SIGTERM/SIGINT, and exits
//! with the protocol's codes. Users run `sweep run`; this is its worker.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use burn::backend::Autodiff;
use clap::Args;
use serde_json::json;
use spec::protocol::{env, exit, files};
use spec::TrialConfig;

use crate::commands::device;
use crate::with_backend;

#[derive(Debug, Args)]
pub struct TrialArgs {
    /// A trial folder prepared by the runner (holds trial.yaml).
    pub dir: PathBuf,
    /// cpu or cuda:N; overrides train.device.
    #[arg(long)]
    pub device: Option<String>,
}

/// Returns the protocol exit code.
pub fn run(args: &TrialArgs) -> anyhow::Result<i32> {
    let lock_path = args.dir.join(files::LOCK);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        tracing::error!(
            "{} is being run by another process; not starting a second copy",
            args.dir.display()
        );
        return Ok(exit::BUSY);
    }
    if let Ok(runner_pid) = std::env::var(env::RUNNER_PID) {
        // If the runner dies (even by kill -9), the kernel sends us SIGTERM and we save
        // and stop instead of running on unobserved. Check after asking, in case it
        // already died.
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
        if nix::unistd::getppid().to_string() != runner_pid {
            tracing::warn!("the runner that started this trial is gone; stopping");
            return Ok(exit::INTERRUPTED);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    contain_file_size_limit()?;
    let config_path = args.dir.join(files::SPEC);
    let trial = TrialConfig::from_yaml_file(&config_path)?;
    let device_text = args.device.clone().unwrap_or(trial.train.device.clone());
    let dev = device::parse(&device_text)?;
    let precision = trial.train.effective_precision();
    precision
        .check_device(&dev.to_string())
        .map_err(|e| anyhow::anyhow!("{}: train.precision: {e}", config_path.display()))?;
    write_environment(&args.dir, &device_text)?;
    let result = with_backend!(dev, precision, |B, d| {
        qa_model::train::train_until::<Autodiff<B>>(&trial, &args.dir, &d, &stop)
    });
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            let text = e.to_string();
            eprintln!("error: {text}");
            let oom = text.to_lowercase().contains("out of memory");
            return Ok(if oom {
                exit::OUT_OF_MEMORY
            } else {
                exit::FAILED
            });
        }
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(match result.status {
        qa_model::train::TrainStatus::Succeeded => exit::SUCCEEDED,
        qa_model::train::TrainStatus::Diverged => exit::DIVERGED,
        qa_model::train::TrainStatus::Interrupted => exit::INTERRUPTED,
    })
}

/// A write past the file-size limit (`ulimit -f`) kills a process with SIGXFSZ by
/// default; with the signal caught, the write fails with EFBIG instead, and the trial
/// reports which file it could not write (its previous checkpoint intact) rather than dying.
pub(crate) fn contain_file_size_limit() -> anyhow::Result<()> {
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(AtomicBool::new(false)),
    )?;
    Ok(())
}

/// `env.json`: what ran this trial. The runner adds the host and dataset hashes.
fn write_environment(dir: &std::path::Path, device: &str) -> anyhow::Result<()> {
    let backend = if cfg!(feature = "cuda") && device.starts_with("cuda") {
        "cuda"
    } else if cfg!(feature = "ndarray") {
        "ndarray"
    } else {
        "flex"
    };
    let v = json!({
        "binary_version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("SWEEP_GIT_COMMIT"),
        "backend": backend,
        "device": device,
        "device_name": device_name(device),
        "cuda_visible_devices": std::env::var(env::CUDA_VISIBLE_DEVICES).ok(),
    });
    crate::commands::data::write_atomically(
        &dir.join(files::ENV),
        serde_json::to_string_pretty(&v)?.as_bytes(),
    )
}

fn device_name(device: &str) -> Option<String> {
    if device.starts_with("cuda") {
        let index = std::env::var(env::CUDA_VISIBLE_DEVICES)
            .ok()
            .and_then(|v| v.split(',').next().map(str::to_string))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "0".into());
        let out = std::process::Command::new("nvidia-smi")
            .args(["--query-gpu=name", "--format=csv,noheader", "-i", &index])
            .output()
            .ok()?;
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return (!name.is_empty()).then_some(name);
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
}

//! `sweep trial DIR`: runs one prepared trial folder for an executor (the local runner or a
//! Slurm array task). The protocol's trial side (folder lock, parent-death signal, stop
//! flag, file-size limit) is `runner::trial_process`, shared with the runner's fake trial;
//! this adds training and the exit codes of `spec::protocol`. A program trial (`command:`)
//! is supervised by `runner::program` instead. Users run `sweep run`; this is its worker.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use burn::backend::Autodiff;
use clap::Args;
use runner::trial_process::TrialProcess;
use serde_json::json;
use spec::protocol::{env, exit, files, mentions_out_of_memory};
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
    let process = match TrialProcess::start(&args.dir) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            return Ok(e.exit_code());
        }
    };
    let config_path = args.dir.join(files::SPEC);
    let trial = TrialConfig::from_yaml_file(&config_path)?;
    if trial.is_program() {
        // Any program as a trial: supervised, its results turned into the protocol's.
        let device = match args.device.as_deref() {
            Some(d) => d.to_string(),
            None => trial.train.device.to_string(),
        };
        return Ok(runner::program::supervise(&process, &trial, &device));
    }
    let (dev, precision) = device::for_trial(args.device.as_deref(), &trial, &config_path)?;
    write_environment(&args.dir, dev)?;
    let result = with_backend!(dev, precision, |B, d| {
        qa_model::train::train_until::<Autodiff<B>>(&trial, &args.dir, &d, process.stop_flag())
    });
    match result {
        Ok(r) => {
            println!("{}", serde_json::to_string(&r)?);
            Ok(r.status.exit_code())
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!("error: {text}");
            Ok(if mentions_out_of_memory(&text) {
                exit::OUT_OF_MEMORY
            } else {
                exit::FAILED
            })
        }
    }
}

/// `sweep train` outside the runner: a write past the file-size limit (`ulimit -f`) fails
/// with EFBIG and names its file instead of killing the process (`sweep trial` gets this
/// from `TrialProcess`).
pub(crate) fn contain_file_size_limit() -> anyhow::Result<()> {
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(AtomicBool::new(false)),
    )?;
    Ok(())
}

/// `env.json`: what ran this trial. The runner adds the host and dataset hashes.
fn write_environment(dir: &std::path::Path, device: spec::Device) -> anyhow::Result<()> {
    let backend = qa_model::backend::backend_name(device);
    let v = json!({
        "binary_version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("SWEEP_GIT_COMMIT"),
        "backend": backend,
        "device": device.to_string(),
        "device_name": device_name(device),
        "cuda_visible_devices": std::env::var(env::CUDA_VISIBLE_DEVICES).ok(),
    });
    spec::atomic::write_file(
        &dir.join(files::ENV),
        serde_json::to_string_pretty(&v)?.as_bytes(),
    )?;
    Ok(())
}

fn device_name(device: spec::Device) -> Option<String> {
    if device.is_cuda() {
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
    #[cfg(feature = "wgpu")]
    if let spec::Device::Wgpu(n) = device {
        return qa_model::backend::wgpu_adapters::adapter(n)
            .ok()
            .map(|a| format!("{} ({})", a.name, a.driver));
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
}

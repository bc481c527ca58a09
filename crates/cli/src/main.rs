//! `sweep`: run and check hyperparameter sweeps of BERT/ALBERT extractive QA.
//!
//! One file per subcommand under `commands/`; logs go to stderr through `tracing`, data
//! (JSON) goes to stdout; exit codes are defined once in `exit_codes`.

mod commands;
mod exit_codes;

use clap::{Parser, Subcommand};

// burn-flex allocates large short-lived buffers on every op; mimalloc reuses them instead of
// returning pages to the OS and faulting them in again (measured in docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod alloc;

#[derive(Debug, Parser)]
#[command(
    name = "sweep",
    version,
    about = "Hyperparameter sweeps for BERT/ALBERT Chinese extractive QA, checked and reproducible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Expand a study into trials and check its inputs, without running anything.
    Plan(commands::plan::PlanArgs),
    /// Run a study's trials that are not done yet (resumable; safe to interrupt).
    Run(commands::run::RunArgs),
    /// Cancel a study's Slurm tasks (they resume on the next `sweep run`).
    Cancel(commands::cancel::CancelArgs),
    /// Show a study's progress and mean EM/F1 per variant.
    Status(commands::status::StatusArgs),
    /// Write a study's report: charts, claim verdicts, published references, examples.
    Report(commands::report::ReportArgs),
    /// Export a study's trials as CSV or JSON.
    Export(commands::export::ExportArgs),
    /// A live web page of the database's studies: trials, curves, verdicts (read only).
    Serve(commands::serve::ServeArgs),
    /// Run one prepared trial folder (used by `sweep run`'s executors).
    #[command(hide = true)]
    Trial(commands::trial::TrialArgs),
    /// Score predictions with the official CMRC2018/DRCD EM and F1.
    Score(commands::score::ScoreArgs),
    /// Dataset tools: generate the synthetic set, inspect a dataset.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// Train and evaluate one trial from a YAML config.
    Train(commands::train::TrainArgs),
    /// Write answers for a dataset with a trained checkpoint.
    Predict(commands::predict::PredictArgs),
    /// Compare a checkpoint's logits on a device with recorded reference logits.
    CheckLogits(commands::check_logits::CheckLogitsArgs),
    /// Measure training-step throughput of a preset model on a device.
    BenchTrain(commands::bench_train::BenchTrainArgs),
    /// List the devices this build can run on (cpu, cuda:N, wgpu:N).
    Devices(commands::device::DevicesArgs),
}

fn main() {
    alloc::keep_freed_memory();
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit_codes::USAGE
            } else {
                exit_codes::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let result = match cli.command {
        Command::Plan(args) => commands::plan::run(&args),
        Command::Run(args) => exit_with(commands::run::run(&args)),
        Command::Status(args) => commands::status::run(&args),
        Command::Cancel(args) => commands::cancel::run(&args),
        Command::Devices(args) => commands::device::list(&args),
        Command::Export(args) => commands::export::run(&args),
        Command::Report(args) => commands::report::run(&args),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Trial(args) => exit_with(commands::trial::run(&args)),
        Command::Score(args) => commands::score::run(&args),
        Command::Data(cmd) => commands::data::run(&cmd),
        Command::Train(args) => commands::train::run(&args),
        Command::Predict(args) => commands::predict::run(&args),
        Command::CheckLogits(args) => commands::check_logits::run(&args),
        Command::BenchTrain(args) => commands::bench_train::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(exit_codes::FAILURE);
    }
}

/// For commands whose success has several exit codes: exits with the code.
fn exit_with(code: anyhow::Result<i32>) -> anyhow::Result<()> {
    match code {
        Ok(exit_codes::OK) => Ok(()),
        Ok(c) => std::process::exit(c),
        Err(e) => Err(e),
    }
}

/// Logs to stderr (colours only on a terminal); `SWEEP_LOG` takes tracing's filter syntax
/// (default `info`).
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWEEP_LOG")
        // burn's GPU runtimes log every autotune at info (hundreds of lines per trial).
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,cubecl_runtime=warn,cubecl_wgpu=warn,wgpu_core=warn,wgpu_hal=warn",
            )
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

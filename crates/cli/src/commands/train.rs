//! `sweep train`: one trial from a YAML config.

use std::path::PathBuf;

use burn::backend::Autodiff;
use clap::Args;
use spec::TrialConfig;

use crate::commands::device;
use crate::with_backend;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Trial config YAML (model, model_config, data, train).
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder: metrics.jsonl, predictions.json, result.json, checkpoint/.
    #[arg(long)]
    pub out: PathBuf,
    /// cpu or cuda:N; overrides train.device.
    #[arg(long)]
    pub device: Option<String>,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    crate::commands::trial::contain_file_size_limit()?;
    let trial = TrialConfig::from_yaml_file(&args.config)?;
    let (dev, precision) = device::for_trial(args.device.as_deref(), &trial, &args.config)?;
    let result = with_backend!(
        dev,
        precision,
        |B, d| qa_model::train::train::<Autodiff<B>>(&trial, &args.out, &d)
    )?;
    println!("{}", serde_json::to_string(&result)?);
    if result.status == qa_model::train::TrainStatus::Diverged {
        anyhow::bail!(
            "training diverged (NaN/inf loss); see {}",
            args.out.join("metrics.jsonl").display()
        );
    }
    Ok(())
}

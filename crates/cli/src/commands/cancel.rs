//! `sweep cancel STUDY`: cancels a study's Slurm tasks (scancel) and marks their trials
//! interrupted; `sweep run` later resumes them from their last checkpoint.

use std::path::PathBuf;

use clap::Args;

use crate::commands::status::study_name;

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// A study name (or its YAML file).
    pub study: String,
    #[arg(long, default_value = "results/sweep.db")]
    pub db: PathBuf,
}

pub fn run(args: &CancelArgs) -> anyhow::Result<()> {
    let name = study_name(&args.study)?;
    let n = runner::slurm::cancel(&args.db, &name)?;
    eprintln!("cancelled {n} slurm task(s) of {name}");
    Ok(())
}

//! `sweep export STUDY --format csv|json`: one row per (variant, seed) with its params.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::commands::status::study_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A study name (or its YAML file).
    pub study: String,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    #[arg(long, default_value = "results/sweep.db")]
    pub db: PathBuf,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let store = store::Store::open_read_only(&args.db)?;
    let name = study_name(&args.study)?;
    if store.study(&name)?.is_none() {
        anyhow::bail!("{}: no study named {name:?}", args.db.display());
    }
    let rows = store.study_trials(&name)?;
    let text = match args.format {
        Format::Csv => runner::export::to_csv(&rows),
        Format::Json => serde_json::to_string_pretty(&runner::export::to_json(&rows))? + "\n",
    };
    match &args.out {
        Some(p) => std::fs::write(p, text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

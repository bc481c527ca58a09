//! `sweep report STUDY`: charts, claim verdicts, published references and examples as a
//! self-contained HTML page and a Markdown file.

use std::path::PathBuf;

use clap::Args;

use crate::commands::status::study_name;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A study name (or its YAML file).
    pub study: String,
    #[arg(long, default_value = "results/sweep.db")]
    pub db: PathBuf,
    /// Output folder (default: results/reports/<study>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Published numbers to compare with (default: the copy of experiments/references.yaml
    /// built into sweep).
    #[arg(long)]
    pub references: Option<PathBuf>,
}

pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let store = store::Store::open_read_only(&args.db)?;
    let name = study_name(&args.study)?;
    let refs = match &args.references {
        Some(p) => report::references::References::from_file(p)?,
        None => report::references::References::embedded()?,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results/reports").join(&name));
    let index = report::write_report(&store, &name, &out, &refs)?;
    println!("{}", index.display());
    Ok(())
}

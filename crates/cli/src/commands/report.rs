//! `sweep report STUDY`: charts, claim verdicts, published references and examples as a
//! self-contained HTML page and a Markdown file.

use std::path::PathBuf;

use clap::Args;

use crate::commands::status::study_name;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A study name (or its YAML file).
    pub study: String,
    /// A second study to put side by side with the first (e.g. demo vs drcd-local).
    #[arg(long, value_name = "STUDY_B")]
    pub compare: Option<String>,
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
    if let Some(other) = &args.compare {
        let other = study_name(other)?;
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("results/reports").join(format!("{name}-vs-{other}")));
        let index = report::compare::write_comparison(&store, &name, &other, &out, &refs)?;
        println!("{}", index.display());
        return Ok(());
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results/reports").join(&name));
    let index = report::write_report(&store, &name, &out, &refs)?;
    println!("{}", index.display());
    Ok(())
}

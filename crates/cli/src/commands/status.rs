//! `sweep status [STUDY]`: per-variant trial counts and mean EM/F1 from the database.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A study name (or its YAML file); without it, every study in the database.
    pub study: Option<String>,
    #[arg(long, default_value = "results/sweep.db")]
    pub db: PathBuf,
}

/// A study argument may be a name or the YAML it came from.
pub fn study_name(arg: &str) -> anyhow::Result<String> {
    let p = std::path::Path::new(arg);
    if arg.ends_with(".yaml") || arg.ends_with(".yml") {
        return Ok(spec::Study::from_yaml_file(p)?.name);
    }
    Ok(arg.to_string())
}

pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let store = store::Store::open_read_only(&args.db)?;
    let names = match &args.study {
        Some(s) => vec![study_name(s)?],
        None => store.study_names()?,
    };
    if names.is_empty() {
        println!("no studies in {}", args.db.display());
    }
    for name in names {
        if store.study(&name)?.is_none() {
            let known = store.study_names()?.join(", ");
            anyhow::bail!(
                "{}: no study named {name:?} (studies: {known})",
                args.db.display()
            );
        }
        let rows = store.study_trials(&name)?;
        print!(
            "{}",
            report::status::render_table(&name, &report::status::summarize(&rows))
        );
    }
    Ok(())
}

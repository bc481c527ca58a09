//! `sweep score`: the official CMRC2018/DRCD evaluation of a predictions file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use qa_data::metric::evaluate;
use qa_data::squad::{load_predictions, Dataset};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Gold SQuAD-format JSON (DRCD, CMRC2018 squad-style).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Predictions: a JSON object {question id: answer text}, as written by HF run_qa.
    #[arg(long)]
    pub predictions: PathBuf,
}

/// Prints `{"EM": …, "F1": …, "TOTAL": …, "SKIP": …}` (percent, 3 decimals) to stdout.
pub fn run(args: &ScoreArgs) -> anyhow::Result<()> {
    let dataset = Dataset::load(&args.dataset)?;
    let predictions = load_predictions(&args.predictions)?;
    let result = evaluate(&dataset, &predictions);
    if result.skip > 0 {
        let missing: Vec<&str> = result
            .per_question
            .iter()
            .filter(|q| !q.answered)
            .take(5)
            .map(|q| q.id.as_str())
            .collect();
        tracing::warn!(
            "{} of {} questions have no prediction and score 0 (e.g. {})",
            result.skip,
            result.total,
            missing.join(", ")
        );
    }
    let known: std::collections::HashSet<&str> =
        dataset.examples.iter().map(|e| e.id.trim()).collect();
    let unknown = predictions
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .count();
    if unknown > 0 {
        tracing::warn!(
            "{unknown} predictions name question ids that are not in the dataset; they are ignored"
        );
    }
    let json = serde_json::to_string(&result.rounded()).context("serialising the scores")?;
    println!("{json}");
    Ok(())
}

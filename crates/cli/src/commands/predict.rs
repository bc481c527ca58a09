//! `sweep predict`: answers for every question of a dataset from a checkpoint.

use std::path::PathBuf;

use clap::Args;
use qa_data::decode::DecodeConfig;
use qa_data::features::{build_features, FeatureConfig, Split};
use qa_data::squad::Dataset;
use qa_data::tokenizer::BertTokenizer;
use qa_model::checkpoint::load_model_dir;
use qa_model::eval::{evaluate_model, EvalPadding};

use crate::commands::device;
use crate::with_f32_backend;

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// HF model directory (e.g. a trial's checkpoint/).
    #[arg(long)]
    pub model: PathBuf,
    /// SQuAD-format JSON.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Output {question id: answer} JSON.
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value_t = 384)]
    pub max_seq_length: usize,
    #[arg(long, default_value_t = 128)]
    pub doc_stride: usize,
    #[arg(long, default_value_t = 20)]
    pub n_best_size: usize,
    #[arg(long, default_value_t = 30)]
    pub max_answer_length: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Pad every window to --max-seq-length, as run_qa does by default, so the answers are
    /// run_qa's. `false` pads each batch to its longest window: faster, and then the
    /// answers equal run_qa's `--pad_to_max_length False` with the same batch size.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pad_to_max_length: bool,
}

pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let dev = device::parse(&args.device)?;
    let dataset = Dataset::load(&args.dataset)?;
    let tokenizer = BertTokenizer::from_model_dir(&args.model)?;
    let fc = FeatureConfig {
        max_seq_length: args.max_seq_length,
        doc_stride: args.doc_stride,
    };
    let features = build_features(&dataset, &tokenizer, fc, Split::Eval)?;
    let decode = DecodeConfig {
        n_best_size: args.n_best_size,
        max_answer_length: args.max_answer_length,
    };
    let pad = tokenizer.special_ids().pad;
    let result = with_f32_backend!(dev, spec::Precision::F32, |B, d| {
        let (model, _, _) = load_model_dir::<B>(&args.model, &Default::default(), &d)?;
        evaluate_model(
            &model,
            &dataset,
            &features,
            args.batch_size,
            pad,
            EvalPadding::from_flag(args.pad_to_max_length, args.max_seq_length),
            decode,
            &d,
        )
    })?;
    let json = serde_json::to_string(&result.predictions)?;
    crate::commands::data::write_atomically(&args.output, json.as_bytes())?;
    tracing::info!(
        "wrote {} answers to {} (EM {:.3}, F1 {:.3} against the dataset's own answers)",
        result.predictions.len(),
        args.output.display(),
        result.scores.em,
        result.scores.f1
    );
    Ok(())
}

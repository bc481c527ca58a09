//! `sweep data synth` and `sweep data stats`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use qa_data::decode::DecodeConfig;
use qa_data::features::FeatureConfig;
use qa_data::squad::Dataset;
use qa_data::stats::dataset_stats;
use qa_data::tokenizer::{BertTokenizer, BertTokenizerOptions};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write the deterministic synthetic Traditional-Chinese QA set (SQuAD format).
    Synth(SynthArgs),
    /// Describe a dataset as a model would see it: windows, [UNK] share, long answers.
    Stats(StatsArgs),
    /// Build a character vocab.txt from datasets (for models trained from scratch).
    Vocab(VocabArgs),
}

#[derive(Debug, Args)]
pub struct VocabArgs {
    /// SQuAD-format JSON files whose contexts and questions are read (repeatable).
    #[arg(long = "dataset", required = true)]
    pub datasets: Vec<PathBuf>,
    /// Output vocab.txt.
    #[arg(long)]
    pub out: PathBuf,
    /// Lower-case characters (match the tokenizer's do_lower_case).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub do_lower_case: bool,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output JSON file.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of questions.
    #[arg(long, default_value_t = 2000)]
    pub questions: usize,
    /// Seed: the same seed always gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// SQuAD-format JSON file.
    #[arg(long)]
    pub dataset: PathBuf,
    /// A WordPiece vocab.txt, a tokenizer.json, or a HF model directory.
    #[arg(long)]
    pub vocab: PathBuf,
    /// Lower-case and strip accents (HF BertTokenizer's default; bert-base-chinese uses false).
    /// Ignored for tokenizer.json and model directories, which say it themselves.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub do_lower_case: bool,
    #[arg(long, default_value_t = 384)]
    pub max_seq_length: usize,
    #[arg(long, default_value_t = 128)]
    pub doc_stride: usize,
    #[arg(long, default_value_t = 30)]
    pub max_answer_length: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: &DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Synth(args) => synth(args),
        DataCommand::Stats(args) => stats(args),
        DataCommand::Vocab(args) => vocab(args),
    }
}

fn vocab(args: &VocabArgs) -> anyhow::Result<()> {
    let datasets = args
        .datasets
        .iter()
        .map(Dataset::load)
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&Dataset> = datasets.iter().collect();
    let vocab = qa_data::vocab::build_char_vocab(&refs, args.do_lower_case);
    write_atomically(&args.out, (vocab.join("\n") + "\n").as_bytes())?;
    tracing::info!("wrote {} tokens to {}", vocab.len(), args.out.display());
    Ok(())
}

fn synth(args: &SynthArgs) -> anyhow::Result<()> {
    if args.questions == 0 {
        anyhow::bail!("--questions must be at least 1");
    }
    let json = qa_data::synth::generate(args.questions, args.seed);
    write_atomically(&args.out, json.as_bytes())?;
    tracing::info!(
        "wrote {} questions to {}",
        args.questions,
        args.out.display()
    );
    Ok(())
}

/// Writes `path` all or nothing (`spec::atomic::write_file`), creating its folder.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(spec::atomic::write_file(path, bytes)?)
}

/// A vocab.txt file, a tokenizer.json file or a model directory.
pub fn load_tokenizer(path: &Path, do_lower_case: bool) -> anyhow::Result<BertTokenizer> {
    let tokenizer = if path.is_dir() {
        BertTokenizer::from_model_dir(path)?
    } else if path.extension().is_some_and(|e| e == "json") {
        BertTokenizer::from_tokenizer_json(path)?
    } else {
        let options = BertTokenizerOptions {
            do_lower_case,
            ..BertTokenizerOptions::default()
        };
        BertTokenizer::from_vocab_file(path, &options)?
    };
    Ok(tokenizer)
}

fn stats(args: &StatsArgs) -> anyhow::Result<()> {
    let dataset = Dataset::load(&args.dataset)?;
    let tokenizer = load_tokenizer(&args.vocab, args.do_lower_case)?;
    let config = FeatureConfig {
        max_seq_length: args.max_seq_length,
        doc_stride: args.doc_stride,
    };
    let decode = DecodeConfig {
        max_answer_length: args.max_answer_length,
        ..DecodeConfig::default()
    };
    let s = dataset_stats(&dataset, &tokenizer, config, decode)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let l = &s.load;
    let w = s.windows_per_question;
    let rows: Vec<(&str, String)> = vec![
        ("file", s.file.clone()),
        (
            "articles / paragraphs / questions",
            format!("{} / {} / {}", l.articles, l.paragraphs, l.questions),
        ),
        ("answers", l.answers.to_string()),
        (
            "answer starts repaired",
            l.repaired_answer_starts.to_string(),
        ),
        ("answers not in context", l.unlocatable_answers.to_string()),
        (
            "questions kept for evaluation only",
            l.eval_only_questions.to_string(),
        ),
        (
            "max_seq_length / doc_stride",
            format!("{} / {}", s.max_seq_length, s.doc_stride),
        ),
        ("evaluation windows", s.eval_features.to_string()),
        (
            "questions with 1 / 2 / 3 / 4+ windows",
            format!("{} / {} / {} / {}", w[0], w[1], w[2], w[3]),
        ),
        (
            "windows per question (mean / max)",
            format!(
                "{:.2} / {}",
                s.mean_windows_per_question, s.max_windows_per_question
            ),
        ),
        (
            "training windows (answer outside → [CLS])",
            format!("{} ({})", s.train_features, s.train_features_without_answer),
        ),
        (
            "question tokens (mean / max)",
            format!("{:.1} / {}", s.mean_question_tokens, s.max_question_tokens),
        ),
        (
            "context tokens (mean / max)",
            format!("{:.1} / {}", s.mean_context_tokens, s.max_context_tokens),
        ),
        (
            "[UNK] share of tokens",
            format!("{:.4}%", 100.0 * s.unk_token_share),
        ),
        (
            "answers longer than max_answer_length",
            format!(
                "{} (max_answer_length {})",
                s.answers_longer_than_max_answer_length, s.max_answer_length
            ),
        ),
    ];
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
    Ok(())
}

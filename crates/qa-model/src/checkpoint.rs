//! HF model directories: `config.json` + weights + tokenizer files, in and out.
//! A saved directory loads in `transformers.AutoModelForQuestionAnswering` without missing
//! keys (checked with tools/make_model_fixtures.py --check-roundtrip).

use std::path::Path;

use burn::tensor::backend::Backend;
use serde_json::{Map, Value};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::model::QaModel;
use crate::weights::{read_checkpoint, write_safetensors, LoadReport, WeightSource};

/// Tokenizer files copied along with a checkpoint.
pub const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Loads a QA model from a HF directory; `overrides` are `model_config` keys of a trial.
pub fn load_model_dir<B: Backend>(
    dir: &Path,
    overrides: &Map<String, Value>,
    device: &B::Device,
) -> Result<(QaModel<B>, ModelConfig, LoadReport)> {
    let config_path = dir.join("config.json");
    let config = ModelConfig::load(&config_path)?
        .with_overrides(overrides, &config_path.display().to_string())?;
    let mut source = WeightSource::from_checkpoint(read_checkpoint(dir)?, config.arch.prefix());
    let (model, report) = QaModel::build(&config, &mut source, device)?;
    log_report(&report);
    Ok((model, config, report))
}

/// Logs exactly which keys were initialised, unused or ignored.
pub fn log_report(r: &LoadReport) {
    tracing::info!("loaded {} tensors from {}", r.loaded, r.source);
    if !r.initialised.is_empty() {
        tracing::warn!(
            "freshly initialised (not in the checkpoint): {}",
            r.initialised.join(", ")
        );
    }
    if !r.unused.is_empty() {
        tracing::warn!("unused checkpoint keys: {}", r.unused.join(", "));
    }
    if !r.ignored.is_empty() {
        tracing::info!(
            "ignored pre-training heads/pooler/buffers: {}",
            r.ignored.len()
        );
    }
}

/// Saves `model` as a HF directory (config.json, model.safetensors, tokenizer files from
/// `tokenizer_dir` when given), staged and swapped in whole: an existing `out` stays as it
/// was until the new one is complete.
pub fn save_model_dir<B: Backend>(
    model: &QaModel<B>,
    config: &ModelConfig,
    tokenizer_dir: Option<&Path>,
    out: &Path,
) -> Result<()> {
    spec::atomic::write_dir(out, |staged| {
        write_model_files(model, config, tokenizer_dir, staged)
    })
}

/// The files of a HF directory, written into the (existing) folder `out`.
pub fn write_model_files<B: Backend>(
    model: &QaModel<B>,
    config: &ModelConfig,
    tokenizer_dir: Option<&Path>,
    out: &Path,
) -> Result<()> {
    let exported = model.export(config)?;
    write_safetensors(&out.join("model.safetensors"), &exported.tensors)?;
    spec::atomic::write_json(&out.join("config.json"), &config.to_json())?;
    if let Some(src) = tokenizer_dir {
        for f in TOKENIZER_FILES {
            let from = src.join(f);
            if from.is_file() && from != out.join(f) {
                std::fs::copy(&from, out.join(f)).map_err(|e| ModelError::io(&from, e))?;
            }
        }
    }
    Ok(())
}

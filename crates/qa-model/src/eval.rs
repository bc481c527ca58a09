//! Evaluation: logits for every window, decoding per question, the official EM/F1.

use std::collections::HashMap;

use burn::tensor::backend::Backend;
use qa_data::decode::{decode_dataset, DecodeConfig, Prediction};
use qa_data::features::Feature;
use qa_data::metric::{evaluate, Evaluation};
use qa_data::squad::Dataset;

use crate::data::batch;
use crate::error::{ModelError, Result};
use crate::model::QaModel;

/// Everything an evaluation produces.
#[derive(Debug, Clone)]
pub struct EvalResult {
    pub scores: Evaluation,
    /// Question id → answer text (questions without any context get no entry).
    pub predictions: HashMap<String, String>,
    pub per_example: Vec<Option<Prediction>>,
}

/// Per-feature logits, each trimmed to its window's length.
pub type FeatureLogits = Vec<Vec<f32>>;

/// Start/end logits of every feature, in feature order.
pub fn logits<B: Backend>(
    model: &QaModel<B>,
    features: &[Feature],
    batch_size: usize,
    pad_id: u32,
    pad_to: Option<usize>,
    device: &B::Device,
) -> Result<(FeatureLogits, FeatureLogits)> {
    let mut starts = Vec::with_capacity(features.len());
    let mut ends = Vec::with_capacity(features.len());
    for chunk in features.chunks(batch_size.max(1)) {
        let refs: Vec<&Feature> = chunk.iter().collect();
        let out = model.forward(batch::<B>(&refs, pad_id, pad_to, device));
        let [rows, len] = out.start_logits.dims();
        let read = |t: burn::tensor::Tensor<B, 2>| -> Result<Vec<f32>> {
            t.into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| ModelError::Invalid(format!("cannot read logits: {e:?}")))
        };
        let s = read(out.start_logits)?;
        let e = read(out.end_logits)?;
        for r in 0..rows {
            let n = chunk[r].len();
            starts.push(s[r * len..r * len + n].to_vec());
            ends.push(e[r * len..r * len + n].to_vec());
        }
    }
    Ok((starts, ends))
}

/// Predicts every question of `dataset` and scores it with the official metric.
pub fn evaluate_model<B: Backend>(
    model: &QaModel<B>,
    dataset: &Dataset,
    features: &[Feature],
    batch_size: usize,
    pad_id: u32,
    decode: DecodeConfig,
    device: &B::Device,
) -> Result<EvalResult> {
    // Real tokens' logits do not depend on padding; dynamic padding is simply faster.
    let (starts, ends) = logits(model, features, batch_size, pad_id, None, device)?;
    let per_example = decode_dataset(dataset, features, &starts, &ends, decode);
    let predictions: HashMap<String, String> = dataset
        .examples
        .iter()
        .zip(&per_example)
        .filter_map(|(ex, p)| p.as_ref().map(|p| (ex.id.clone(), p.text.clone())))
        .collect();
    let scores = evaluate(dataset, &predictions);
    Ok(EvalResult {
        scores,
        predictions,
        per_example,
    })
}

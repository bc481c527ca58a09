//! Evaluation exactly like HF `run_qa`: logits for every window, in batches, padded the way
//! run_qa pads them; decoding per question; the official EM/F1.
//!
//! run_qa's `postprocess_qa_predictions` takes the top `n_best_size` start and end indices
//! over *all* positions of a window's logits row, padding included: padding positions then
//! fail the context filter but use up n-best slots. Which positions a row has therefore
//! changes the chosen answer (on sharp checkpoints, for 3–6 % of the questions), so the
//! rows we decode are exactly HF's:
//! - [`EvalPadding::MaxLength`] (run_qa's default `pad_to_max_length`): every window padded
//!   to `max_seq_length`, the whole row decoded;
//! - [`EvalPadding::Longest`] (`--pad_to_max_length False`): each batch of `batch_size`
//!   windows padded to its longest window, and the rows filled up with -100 to the longest
//!   batch, as the Trainer's `nested_concat(…, padding_index=-100)` does. Faster; the answer
//!   then depends on the eval batch size, as it does in HF.

use std::collections::HashMap;

use burn::tensor::backend::Backend;
use qa_data::decode::{decode_dataset, DecodeConfig, Prediction};
use qa_data::features::Feature;
use qa_data::metric::{evaluate, Evaluation};
use qa_data::squad::Dataset;

use crate::data::batch;
use crate::error::{ModelError, Result};
use crate::model::QaModel;

/// The value HF's prediction loop fills missing logit columns with.
pub const MISSING_LOGIT: f32 = -100.0;

/// How evaluation pads its windows (run_qa's `pad_to_max_length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalPadding {
    /// Every window padded to this many tokens (run_qa's default, `max_seq_length`).
    MaxLength(usize),
    /// Each batch padded to its longest window.
    Longest,
}

impl EvalPadding {
    /// run_qa's rule: `pad_to_max_length` pads to `max_seq_length`, else to the batch.
    pub fn from_flag(pad_to_max_length: bool, max_seq_length: usize) -> Self {
        if pad_to_max_length {
            Self::MaxLength(max_seq_length)
        } else {
            Self::Longest
        }
    }

    fn pad_to(self) -> Option<usize> {
        match self {
            Self::MaxLength(n) => Some(n),
            Self::Longest => None,
        }
    }
}

/// Everything an evaluation produces.
#[derive(Debug, Clone)]
pub struct EvalResult {
    pub scores: Evaluation,
    /// Question id → answer text (questions without any context get no entry).
    pub predictions: HashMap<String, String>,
    pub per_example: Vec<Option<Prediction>>,
}

/// Per-feature logit rows, all of one length: the padded batch row, filled up with
/// [`MISSING_LOGIT`].
pub type FeatureLogits = Vec<Vec<f32>>;

/// Start/end logits of every feature, in feature order, as HF's prediction loop returns
/// them (see the module docs).
pub fn logits<B: Backend>(
    model: &QaModel<B>,
    features: &[Feature],
    batch_size: usize,
    pad_id: u32,
    padding: EvalPadding,
    device: &B::Device,
) -> Result<(FeatureLogits, FeatureLogits)> {
    let mut starts = Vec::with_capacity(features.len());
    let mut ends = Vec::with_capacity(features.len());
    let mut width = 0;
    for chunk in features.chunks(batch_size.max(1)) {
        let refs: Vec<&Feature> = chunk.iter().collect();
        let out = model.forward(batch::<B>(&refs, pad_id, padding.pad_to(), device));
        let [rows, len] = out.start_logits.dims();
        width = width.max(len);
        let read = |t: burn::tensor::Tensor<B, 2>| -> Result<Vec<f32>> {
            t.into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| ModelError::Invalid(format!("cannot read logits: {e:?}")))
        };
        let s = read(out.start_logits)?;
        let e = read(out.end_logits)?;
        for r in 0..rows {
            starts.push(s[r * len..(r + 1) * len].to_vec());
            ends.push(e[r * len..(r + 1) * len].to_vec());
        }
    }
    for row in starts.iter_mut().chain(ends.iter_mut()) {
        row.resize(width, MISSING_LOGIT);
    }
    Ok((starts, ends))
}

/// Predicts every question of `dataset` like run_qa and scores it with the official metric.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_model<B: Backend>(
    model: &QaModel<B>,
    dataset: &Dataset,
    features: &[Feature],
    batch_size: usize,
    pad_id: u32,
    padding: EvalPadding,
    decode: DecodeConfig,
    device: &B::Device,
) -> Result<EvalResult> {
    let (starts, ends) = logits(model, features, batch_size, pad_id, padding, device)?;
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

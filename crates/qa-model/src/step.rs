//! One optimizer step of a training run, where precision lives: forward and backward of
//! each micro-batch of an accumulation group (mixed precision through the model's
//! autocast), f16 loss scaling, the padding row's gradient, global clipping, AdamW, and
//! the rules for a non-finite loss.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use qa_data::features::Feature;

use crate::amp::GradScaler;
use crate::data::{batch, labels};
use crate::fused::forward_key;
use crate::model::{qa_loss, QaModel};
use crate::optim::{step, AdamW};

/// Consecutive overflow steps after which an f16 run counts as diverged: the scale has
/// been halved that many times (2^16 → 2^-34), so the gradients are not coming back.
pub const MAX_CONSECUTIVE_OVERFLOWS: u32 = 50;

/// What the step needs besides the model and the optimizer.
#[derive(Debug)]
pub struct StepInputs<'a, B: Backend> {
    pub features: &'a [Feature],
    /// Feature indices of each micro-batch of the accumulation group.
    pub group: &'a [&'a [usize]],
    pub pad_id: u32,
    /// Pad every window to this length (`pad_to_max_length`), else to the batch's longest.
    pub pad_to: Option<usize>,
    /// The word-embedding row that gets no gradient (HF's `padding_idx`).
    pub pad_token_id: usize,
    pub learning_rate: f64,
    pub max_grad_norm: f64,
    /// Seeds the dropout masks of this step ([`crate::fused::forward_key`]).
    pub dropout_seed: u64,
    pub dropout_step: u64,
    pub device: &'a B::Device,
}

/// How the step ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepOutcome {
    /// The update was applied.
    Applied { loss: f64, grad_norm: f64 },
    /// f16 loss scaling found inf/NaN (in the loss or the gradients): no update, the scale
    /// is halved, the learning-rate schedule does not advance (HF Trainer, GradScaler).
    Skipped { loss: f64, grad_norm: f64 },
    /// The loss is NaN/inf without loss scaling to absorb it: training stops.
    Diverged { loss: f64 },
}

/// Runs one optimizer step over `inputs.group`; returns the (possibly) updated model, the
/// outcome and the number of examples seen.
pub fn optimizer_step<B: AutodiffBackend>(
    model: QaModel<B>,
    opt: &mut AdamW<B::InnerBackend>,
    scaler: Option<&mut GradScaler>,
    inputs: &StepInputs<'_, B>,
) -> (QaModel<B>, StepOutcome, usize) {
    let loss_scale = scaler.as_ref().map_or(1.0, |s| s.scale);
    let mut acc = GradientsAccumulator::<QaModel<B>>::new();
    let mut step_loss = 0.0;
    let mut examples = 0;
    let micro_batches = inputs.group.len().max(1) as f64;
    for (micro_batch, idx) in inputs.group.iter().enumerate() {
        let feats: Vec<&Feature> = idx.iter().map(|&i| &inputs.features[i]).collect();
        let mut input = batch::<B>(&feats, inputs.pad_id, inputs.pad_to, inputs.device);
        input.dropout_key =
            forward_key(inputs.dropout_seed, inputs.dropout_step, micro_batch as u64);
        let (start, end) = labels::<B>(&feats, inputs.device);
        let out = model.forward(input);
        let loss: Tensor<B, 1> =
            qa_loss(out.start_logits, out.end_logits, start, end) / micro_batches;
        let value: f64 = loss.clone().into_scalar().elem();
        examples += feats.len();
        if !value.is_finite() {
            return match scaler {
                // torch: a non-finite loss gives non-finite scaled gradients; the scaler
                // skips the step and backs off.
                Some(s) => {
                    s.update(true);
                    (
                        model,
                        StepOutcome::Skipped {
                            loss: value,
                            grad_norm: f64::NAN,
                        },
                        examples,
                    )
                }
                None => (model, StepOutcome::Diverged { loss: value }, examples),
            };
        }
        step_loss += value;
        let scaled = if loss_scale == 1.0 {
            loss
        } else {
            loss * loss_scale
        };
        let grads = GradientsParams::from_grads(scaled.backward(), &model);
        acc.accumulate(&model, grads);
    }
    let mut grads = acc.grads();
    zero_padding_grad(&model, &mut grads, inputs.pad_token_id);
    let (model, report) = step::<B, QaModel<B>>(
        opt,
        model,
        grads,
        inputs.learning_rate,
        inputs.max_grad_norm,
        loss_scale,
    );
    if let Some(s) = scaler {
        s.update(!report.applied);
    }
    let outcome = if report.applied {
        StepOutcome::Applied {
            loss: step_loss,
            grad_norm: report.grad_norm,
        }
    } else {
        StepOutcome::Skipped {
            loss: step_loss,
            grad_norm: report.grad_norm,
        }
    };
    (model, outcome, examples)
}

/// Zeroes the gradient of the padding row of the word embeddings, as `nn.Embedding`'s
/// `padding_idx` does in HF.
fn zero_padding_grad<B: AutodiffBackend>(
    model: &QaModel<B>,
    grads: &mut GradientsParams,
    pad: usize,
) {
    let id = model.embeddings.word_embeddings.weight.id;
    if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
        let [n, d] = g.dims();
        let g = if pad < n {
            let device = g.device();
            g.slice_assign([pad..pad + 1, 0..d], Tensor::zeros([1, d], &device))
        } else {
            g
        };
        grads.register(id, g);
    }
}

/// The model in evaluation mode (no dropout, no autodiff), with the same autocast.
pub fn for_eval<B: AutodiffBackend>(model: &QaModel<B>) -> QaModel<B::InnerBackend> {
    let mut valid = model.valid();
    valid.autocast = model.autocast;
    valid
}

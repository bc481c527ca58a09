//! Automatic mixed precision the way HF Trainer's `--fp16` / `--bf16` do it with torch.amp:
//! f32 master weights and AdamW moments; the matmul-heavy ops run in the half type; the ops
//! torch's autocast keeps in f32 stay in f32; f16 scales the loss dynamically.
//!
//! What runs in which type (torch.autocast's CUDA op lists, torch 2.x,
//! `aten/src/ATen/autocast_mode.cpp`), and where we differ:
//! - **half** ("lower precision" list): `linear`/`matmul`/`bmm` — every Linear, the
//!   attention scores `q·kᵀ` and the context `probs·v`. Inputs and weights are cast to the
//!   half type, the output is half. [`crate::nn::linear`] and [`crate::nn::matmul`].
//! - **f32** ("float32" list): `softmax`, `layer_norm`, `log_softmax`/`cross_entropy` (the
//!   loss), `exp`, `sum` and the other reductions: their inputs are cast up first.
//!   [`to_f32`] before each.
//! - **the input's type** (neither list): GELU/erf, dropout, scaling, adds of equal types.
//!   A half tensor plus an f32 one promotes to f32, as in PyTorch ([`add`]): the residual
//!   adds of BERT (f32 embeddings or LayerNorm output + half sublayer output) are in f32,
//!   and the attention mask (f32) promotes the scores to f32 before the softmax.
//! - Embedding lookups are on neither list: they read the f32 weights and stay f32.
//! - Differences: none in which op runs in which type. burn has no fused f16 softmax or
//!   GELU kernels, so the results of equal math differ in rounding, not in type. Our
//!   gradient norm for clipping is computed in f32 from f32 gradients, as torch's is.
//!
//! f16 loss scaling follows `torch.amp.GradScaler` (`torch/amp/grad_scaler.py`): initial
//! scale 2^16; gradients are unscaled before clipping; a step whose gradients hold inf/NaN
//! is skipped and the scale halved; after 2000 consecutive finite steps the scale doubles.
//! HF Trainer does not advance the learning-rate schedule on a skipped step
//! (`optimizer_step_was_skipped`), and AdamW's step count does not advance either.

use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};
use spec::Half;

/// The half type of a mixed-precision forward pass; `None` runs in the backend's type.
pub type Autocast = Option<FloatDType>;

/// The burn dtype of a half type.
pub fn dtype(half: Half) -> FloatDType {
    match half {
        Half::F16 => FloatDType::F16,
        Half::Bf16 => FloatDType::BF16,
    }
}

/// `x` in f32 under autocast (for the ops autocast runs in f32); unchanged otherwise.
pub fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>, ac: Autocast) -> Tensor<B, D> {
    match ac {
        None => x,
        Some(_) => x.cast(FloatDType::F32),
    }
}

/// `a + b` with PyTorch's promotion: tensors of different float types meet in f32.
pub fn add<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    if a.dtype() == b.dtype() {
        a + b
    } else {
        a.cast(FloatDType::F32) + b.cast(FloatDType::F32)
    }
}

/// `torch.amp.GradScaler`'s state and rules (defaults of its constructor).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradScaler {
    pub scale: f64,
    /// Consecutive steps with finite gradients since the scale last changed.
    pub growth_tracker: u32,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: u32,
}

impl Default for GradScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            growth_tracker: 0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

impl GradScaler {
    /// `scaler.update()` after a step: halve the scale on inf/NaN gradients (the step was
    /// skipped), double it after `growth_interval` finite steps in a row.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == self.growth_interval {
                self.scale *= self.growth_factor;
                self.growth_tracker = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_halves_the_scale_and_resets_growth() {
        let mut s = GradScaler::default();
        for _ in 0..10 {
            s.update(false);
        }
        assert_eq!((s.scale, s.growth_tracker), (65536.0, 10));
        s.update(true);
        assert_eq!((s.scale, s.growth_tracker), (32768.0, 0));
        s.update(true);
        assert_eq!(s.scale, 16384.0);
    }

    #[test]
    fn growth_doubles_after_the_interval() {
        let mut s = GradScaler::default();
        for _ in 0..1999 {
            s.update(false);
        }
        assert_eq!(s.scale, 65536.0);
        s.update(false);
        assert_eq!((s.scale, s.growth_tracker), (131072.0, 0));
        // The same as torch with growth_interval=3: 1, 2, 3 → ×2.
        let mut t = GradScaler {
            growth_interval: 3,
            ..GradScaler::default()
        };
        for f in [false, false, true, false, false, false] {
            t.update(f);
        }
        assert_eq!(t.scale, 65536.0);
    }
}

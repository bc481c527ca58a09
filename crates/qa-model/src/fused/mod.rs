//! Fused CPU ops: attention softmax (scale + mask + softmax + dropout), dropout,
//! residual + dropout + LayerNorm, GELU (exact and HF's tanh `gelu_new`), the Linear bias,
//! the attention-head split/merge, each one parallel pass forward and one backward, with
//! their own autodiff backward on burn-flex (`Autodiff<Flex>`, burn's `Backward` extension
//! point); and the fused AdamW update and gradient norm of [`crate::optim`].
//!
//! Why: burn 0.21's autodiff decomposes softmax/LayerNorm/GELU into element-wise ops,
//! and flex runs element-wise ops below 4M elements on one thread, so training kept one
//! of two cores busy; burn's dropout draws each mask element from a ChaCha RNG under a
//! mutex (docs/benchmarks.md has the profile before and after).
//!
//! Every function takes burn tensors of any backend. f32 tensors of flex (training or
//! evaluation) take the fused path; other backends (CUDA) and other float types (CPU
//! autocast) take the decomposition the model used before, with burn's dropout. Both
//! paths compute the same function; tests compare them.
//!
//! Dropout masks come from [`DropoutMask`]: a hash of (per-forward key, site, element),
//! so a mask does not depend on threads or on earlier draws, and a resumed run draws the
//! masks the uninterrupted one would have drawn.

// Without flex every tensor takes the decomposition: the fused arms are compiled out, which
// leaves the kernels and the values they would have used unused.
#![cfg_attr(not(feature = "flex"), allow(dead_code, unused_variables))]

mod kernels;

pub use kernels::{mix64, DropoutMask};

use burn::nn::Dropout;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::layer_norm::LayerNorm;

/// Where a dropout is applied, and the key of the forward pass it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropoutSite {
    /// Per forward pass (the trainer's mix of seed, step and micro-batch).
    pub key: u64,
    /// Per dropout location in the model (unique per layer application).
    pub site: u64,
}

/// The key of one forward pass: training seed, optimizer step and micro-batch.
pub fn forward_key(seed: u64, step: u64, micro_batch: u64) -> u64 {
    mix64(mix64(mix64(seed) ^ step) ^ micro_batch)
}

impl DropoutSite {
    /// The mask of this site, when the backend is training and `dropout` drops anything.
    fn mask<B: Backend>(self, dropout: &Dropout, device: &B::Device) -> Option<DropoutMask> {
        (B::ad_enabled(device) && dropout.prob > 0.0)
            .then(|| DropoutMask::new(self.key, self.site, dropout.prob))
    }
}

/// `dropout(softmax(scores · scale + mask))` over the last dimension. `scores`:
/// [batch, heads, queries, keys]; `mask`: additive, [batch, 1, 1, keys].
pub fn attention_probs<B: Backend>(
    scores: Tensor<B, 4>,
    mask: Tensor<B, 4>,
    scale: f64,
    dropout: &Dropout,
    site: DropoutSite,
) -> Tensor<B, 4> {
    let [batch, heads, queries, keys] = scores.dims();
    let mask_shape_fits = mask.dims() == [batch, 1, 1, keys];
    let drop = site.mask::<B>(dropout, &scores.device());
    if mask_shape_fits {
        match (native::<B, 4>(scores), native::<B, 4>(mask)) {
            #[cfg(feature = "flex")]
            (Native::Flex(s), Native::Flex(m)) => {
                return flex::attention_probs(s, &m, keys, heads * queries, scale as f32, drop);
            }
            (s, m) => {
                return decomposed_attention_probs(s.into_tensor(), m.into_tensor(), scale, dropout)
            }
        }
    }
    decomposed_attention_probs(scores, mask, scale, dropout)
}

fn decomposed_attention_probs<B: Backend>(
    scores: Tensor<B, 4>,
    mask: Tensor<B, 4>,
    scale: f64,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    // The f32 mask promotes half scores to f32, and softmax runs in f32 either way.
    dropout.forward(softmax(crate::amp::add(scores * scale, mask), 3))
}

/// Dropout of `x` at `site`.
pub fn dropout<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    dropout: &Dropout,
    site: DropoutSite,
) -> Tensor<B, D> {
    let Some(drop) = site.mask::<B>(dropout, &x.device()) else {
        return x;
    };
    match native::<B, D>(x) {
        #[cfg(feature = "flex")]
        Native::Flex(x) => flex::dropout(x, drop),
        other => dropout.forward(other.into_tensor()),
    }
}

/// `layer_norm(dropout(h) + residual)`: the end of BERT's attention and feed-forward
/// blocks (`BertSelfOutput`, `BertOutput`). `dropout` `None`: no dropout on `h` (ALBERT's
/// feed-forward).
pub fn residual_layer_norm<B: Backend>(
    h: Tensor<B, 3>,
    residual: Tensor<B, 3>,
    norm: &LayerNorm<B>,
    dropout: Option<(&Dropout, DropoutSite)>,
) -> Tensor<B, 3> {
    let device = h.device();
    let drop = dropout.and_then(|(d, site)| site.mask::<B>(d, &device));
    let same_shape = h.dims() == residual.dims();
    let gamma = norm.weight.val();
    let beta = norm.bias.val();
    if same_shape {
        match (
            native::<B, 3>(h),
            native::<B, 3>(residual),
            native::<B, 1>(gamma),
            native::<B, 1>(beta),
        ) {
            #[cfg(feature = "flex")]
            (Native::Flex(h), Native::Flex(r), Native::Flex(g), Native::Flex(b)) => {
                return flex::residual_layer_norm(h, r, g, b, norm.eps as f32, drop);
            }
            (h, r, _, _) => {
                return decomposed_residual_layer_norm(
                    h.into_tensor(),
                    r.into_tensor(),
                    norm,
                    dropout,
                )
            }
        }
    }
    decomposed_residual_layer_norm(h, residual, norm, dropout)
}

fn decomposed_residual_layer_norm<B: Backend>(
    h: Tensor<B, 3>,
    residual: Tensor<B, 3>,
    norm: &LayerNorm<B>,
    dropout: Option<(&Dropout, DropoutSite)>,
) -> Tensor<B, 3> {
    let h = match dropout {
        Some((d, _)) => d.forward(h),
        None => h,
    };
    // Under autocast `h` may be half; the residual sum and LayerNorm run in f32.
    norm.forward(crate::amp::add(h, residual).cast(burn::tensor::FloatDType::F32))
}

/// [batch, seq, heads·dim] → [batch, heads, seq, dim], contiguous (one parallel copy;
/// burn's reshape + swap_dims leaves a strided view that later ops copy on one thread).
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [batch, seq, hidden] = x.dims();
    let dim = hidden / heads.max(1);
    match native::<B, 3>(x) {
        #[cfg(feature = "flex")]
        Native::Flex(x) if dim * heads == hidden => {
            flex::swap_middle(x, (seq, heads, dim), [batch, heads, seq, dim])
        }
        x => x
            .into_tensor()
            .reshape([batch, seq, heads, dim])
            .swap_dims(1, 2),
    }
}

/// [batch, heads, seq, dim] → [batch, seq, heads·dim] (the inverse of [`split_heads`]).
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [batch, heads, seq, dim] = x.dims();
    match native::<B, 4>(x) {
        #[cfg(feature = "flex")]
        Native::Flex(x) => flex::swap_middle(x, (heads, seq, dim), [batch, seq, heads * dim]),
        x => x
            .into_tensor()
            .swap_dims(1, 2)
            .reshape([batch, seq, heads * dim]),
    }
}

/// `x · w + b` of a Linear on rows ([rows, in] → [rows, out]): burn's matmul, then the
/// bias added in one parallel pass (burn's broadcast add runs on one thread) with its
/// column-sum gradient.
pub fn linear_rows<B: Backend>(l: &burn::nn::Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    let y = x.matmul(l.weight.val());
    let Some(bias) = &l.bias else { return y };
    let bias = bias.val();
    let out = y.dims()[1];
    #[cfg(feature = "flex")]
    if bias.dims() == [out] {
        if let (Native::Flex(y), Native::Flex(b)) =
            (native::<B, 2>(y.clone()), native::<B, 1>(bias.clone()))
        {
            return flex::add_bias(y, b);
        }
    }
    y + bias.unsqueeze()
}

/// Exact (erf) GELU, HF's `gelu`.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match native::<B, D>(x) {
        #[cfg(feature = "flex")]
        Native::Flex(x) => flex::gelu(x, flex::GeluKind::Erf),
        other => {
            let x = other.into_tensor();
            x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) * 0.5
        }
    }
}

/// HF's `gelu_new` (the tanh approximation; ALBERT's default activation).
pub fn gelu_new<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match native::<B, D>(x) {
        #[cfg(feature = "flex")]
        Native::Flex(x) => flex::gelu(x, flex::GeluKind::Tanh),
        other => {
            let x = other.into_tensor();
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let inner = (x.clone() + x.clone().powi_scalar(3) * 0.044715) * c;
            x * (inner.tanh() + 1.0) * 0.5
        }
    }
}

/// Σ x² of a gradient, in f64, one parallel pass; `None` when the tensor is not flex f32
/// (the caller then uses tensor ops).
pub fn sum_squares<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Option<f64> {
    match native::<B, D>(t.clone()) {
        #[cfg(feature = "flex")]
        Native::Flex(f) => Some(flex::sum_squares(&f)),
        Native::Other(_) => None,
    }
}

/// The numbers of one AdamW update of one parameter (torch.optim.AdamW's arithmetic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// 0 for parameters without decay.
    pub weight_decay: f64,
    /// 1-based.
    pub step: i32,
    /// Unscales (loss scaling) and clips the gradient.
    pub grad_scale: f64,
}

/// The fused AdamW update of a flattened parameter: one parallel pass that reads the
/// parameter, gradient and moments and writes them back. `Err` gives the inputs back when
/// they are not all flex f32.
#[allow(clippy::type_complexity)]
pub fn adamw<B: Backend>(
    param: Tensor<B, 1>,
    grad: Tensor<B, 1>,
    moments: Option<(Tensor<B, 1>, Tensor<B, 1>)>,
    step: &AdamWStep,
) -> Result<
    [Tensor<B, 1>; 3],
    (
        Tensor<B, 1>,
        Tensor<B, 1>,
        Option<(Tensor<B, 1>, Tensor<B, 1>)>,
    ),
> {
    let (p, g) = (native::<B, 1>(param), native::<B, 1>(grad));
    let moments = moments.map(|(m, v)| (native::<B, 1>(m), native::<B, 1>(v)));
    match (p, g, moments) {
        #[cfg(feature = "flex")]
        (Native::Flex(p), Native::Flex(g), None) => Ok(flex::adamw(p, g, None, step)),
        #[cfg(feature = "flex")]
        (Native::Flex(p), Native::Flex(g), Some((Native::Flex(m), Native::Flex(v)))) => {
            Ok(flex::adamw(p, g, Some((m, v)), step))
        }
        (p, g, moments) => Err((
            p.into_tensor(),
            g.into_tensor(),
            moments.map(|(m, v)| (m.into_tensor(), v.into_tensor())),
        )),
    }
}

/// A tensor sorted by whether the fused kernels take it.
enum Native<B: Backend, const D: usize> {
    /// An f32 tensor of flex, with or without autodiff.
    #[cfg(feature = "flex")]
    Flex(flex::FlexOf<B, D>),
    Other(Tensor<B, D>),
}

impl<B: Backend, const D: usize> Native<B, D> {
    fn into_tensor(self) -> Tensor<B, D> {
        match self {
            #[cfg(feature = "flex")]
            Native::Flex(t) => flex::back(t),
            Native::Other(t) => t,
        }
    }
}

#[cfg(feature = "flex")]
fn native<B: Backend, const D: usize>(t: Tensor<B, D>) -> Native<B, D> {
    use burn::tensor::{DType, TensorPrimitive};
    if t.dtype() != DType::F32 {
        return Native::Other(t);
    }
    let primitive = match t.into_primitive() {
        TensorPrimitive::Float(p) => p,
        q => return Native::Other(Tensor::from_primitive(q)),
    };
    match flex::FlexOf::<B, D>::from_primitive(primitive) {
        Ok(f) => Native::Flex(f),
        Err(p) => Native::Other(Tensor::from_primitive(TensorPrimitive::Float(p))),
    }
    .check_dtype()
}

#[cfg(feature = "flex")]
impl<B: Backend, const D: usize> Native<B, D> {
    /// `dtype()` of a tensor answers for its primitive; keep that promise when the
    /// primitive's storage says otherwise.
    fn check_dtype(self) -> Self {
        match self {
            Native::Flex(f) if !f.is_f32() => Native::Other(flex::back(f)),
            n => n,
        }
    }
}

#[cfg(not(feature = "flex"))]
fn native<B: Backend, const D: usize>(t: Tensor<B, D>) -> Native<B, D> {
    Native::Other(t)
}

#[cfg(feature = "flex")]
mod flex;

#[cfg(all(test, feature = "flex"))]
mod tests;

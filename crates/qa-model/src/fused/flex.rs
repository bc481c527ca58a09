//! The fused ops on flex tensors: forward on [`FlexTensor`] storage, and under
//! `Autodiff<Flex>` a burn `Backward` per op (the pattern of burn's own autodiff ops,
//! burn-autodiff 0.21 `ops/tensor.rs`, and its custom-kernel example
//! <https://github.com/tracel-ai/burn/blob/v0.21.0/examples/custom-cubecl-kernel/src/backward.rs>).
//!
//! A model is generic over its backend; [`FlexOf::from_primitive`] finds out at run time,
//! with a safe `Any` downcast, whether a primitive is flex's (`FlexTensor`) or
//! autodiff-over-flex's (`AutodiffTensor<Flex>`), and [`back`] casts the result back.

use std::any::Any;
use std::borrow::Cow;
use std::marker::PhantomData;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape, Tensor, TensorData, TensorMetadata, TensorPrimitive};

use super::kernels;
use super::DropoutMask;

/// The primitive of `Autodiff<Flex>`: a flex tensor and its graph node.
type AdTensor = FloatTensor<Autodiff<Flex>>;

/// A flex primitive, under autodiff (training) or not (evaluation).
pub enum Prim {
    Train(AdTensor),
    Eval(FlexTensor),
}

/// A `Tensor<B, D>`'s primitive when `B` is flex or autodiff over flex.
pub struct FlexOf<B, const D: usize> {
    prim: Prim,
    backend: PhantomData<B>,
}

/// `x` as a `T` when `U` is `T`.
fn cast<T: 'static, U: 'static>(x: U) -> Result<T, U> {
    let mut slot = Some(x);
    if let Some(t) = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
    {
        return Ok(t);
    }
    match slot {
        Some(x) => Err(x),
        // The downcast succeeded, so `take` returned above.
        None => unreachable!("a successful downcast returns"),
    }
}

impl<B: Backend, const D: usize> FlexOf<B, D> {
    fn new(prim: Prim) -> Self {
        FlexOf {
            prim,
            backend: PhantomData,
        }
    }

    /// `Ok` when `B` is flex or autodiff over flex.
    pub fn from_primitive(p: B::FloatTensorPrimitive) -> Result<Self, B::FloatTensorPrimitive> {
        let p = match cast::<AdTensor, _>(p) {
            Ok(t) => return Ok(Self::new(Prim::Train(t))),
            Err(p) => p,
        };
        cast::<FlexTensor, _>(p).map(|t| Self::new(Prim::Eval(t)))
    }

    pub fn is_f32(&self) -> bool {
        self.values().dtype() == DType::F32
    }

    fn values(&self) -> &FlexTensor {
        match &self.prim {
            Prim::Train(t) => &t.primitive,
            Prim::Eval(t) => t,
        }
    }
}

/// The tensor again.
pub fn back<B: Backend, const D: usize>(t: FlexOf<B, D>) -> Tensor<B, D> {
    let primitive = match t.prim {
        Prim::Train(t) => cast::<B::FloatTensorPrimitive, _>(t).ok(),
        Prim::Eval(t) => cast::<B::FloatTensorPrimitive, _>(t).ok(),
    };
    match primitive {
        Some(p) => Tensor::from_primitive(TensorPrimitive::Float(p)),
        // `FlexOf<B, D>` is only made from `B`'s own primitive.
        None => unreachable!("a FlexOf<B> holds B's primitive"),
    }
}

/// Contiguous f32 values (borrowed when the layout already is).
fn f32s(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .map(<[f32]>::to_vec)
                .unwrap_or_default(),
        ),
    }
}

fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `out` as the result of an op on `input`: an autodiff node with `backward` when the
/// input is tracked, a plain flex tensor in evaluation.
fn finish<B: Backend, const D: usize, const N: usize, O>(
    op: O,
    parents: [Option<&AdTensor>; N],
    state: impl FnOnce() -> O::State,
    out: FlexTensor,
) -> Tensor<B, D>
where
    O: Backward<Flex, N>,
{
    let nodes: Option<Vec<_>> = parents.iter().map(|p| p.map(|t| t.node.clone())).collect();
    let prim = match nodes.and_then(|n| <[_; N]>::try_from(n).ok()) {
        None => Prim::Eval(out),
        Some(nodes) => Prim::Train(
            match op
                .prepare::<NoCheckpointing>(nodes)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(state(), out),
                OpsKind::UnTracked(prep) => prep.finish(out),
            },
        ),
    };
    back(FlexOf::<B, D>::new(prim))
}

fn train_parent<B, const D: usize>(t: &FlexOf<B, D>) -> Option<&AdTensor> {
    match &t.prim {
        Prim::Train(t) => Some(t),
        Prim::Eval(_) => None,
    }
}

// ---------------------------------------------------------------- attention softmax

#[derive(Debug)]
struct AttentionProbsBackward;

#[derive(Debug, Clone)]
struct AttentionState {
    probs: FlexTensor,
    cols: usize,
    scale: f32,
    drop: Option<DropoutMask>,
}

impl Backward<Flex, 1> for AttentionProbsBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let shape = grad.shape();
            let dx = kernels::attention_probs_backward(
                &f32s(&s.probs),
                &f32s(&grad),
                s.cols,
                s.scale,
                s.drop.as_ref(),
            );
            tensor(dx, shape)
        });
    }
}

pub fn attention_probs<B: Backend>(
    scores: FlexOf<B, 4>,
    mask: &FlexOf<B, 4>,
    cols: usize,
    rows_per_batch: usize,
    scale: f32,
    drop: Option<DropoutMask>,
) -> Tensor<B, 4> {
    let shape = scores.values().shape();
    let (probs, dropped) = kernels::attention_probs(
        &f32s(scores.values()),
        cols,
        rows_per_batch,
        &f32s(mask.values()),
        scale,
        drop.as_ref(),
    );
    let probs = tensor(probs, shape.clone());
    let out = match dropped {
        Some(d) => tensor(d, shape),
        None => probs.clone(),
    };
    finish::<B, 4, 1, _>(
        AttentionProbsBackward,
        [train_parent(&scores)],
        || AttentionState {
            probs,
            cols,
            scale,
            drop,
        },
        out,
    )
}

// ---------------------------------------------------------------- dropout

#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    type State = DropoutMask;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let mask = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let shape = grad.shape();
            tensor(kernels::dropout(&f32s(&grad), &mask), shape)
        });
    }
}

pub fn dropout<B: Backend, const D: usize>(x: FlexOf<B, D>, mask: DropoutMask) -> Tensor<B, D> {
    let out = tensor(
        kernels::dropout(&f32s(x.values()), &mask),
        x.values().shape(),
    );
    finish::<B, D, 1, _>(DropoutBackward, [train_parent(&x)], || mask, out)
}

// ---------------------------------------------------------------- GELU

#[derive(Debug)]
struct GeluBackward;

/// Which GELU: exact (erf) or HF's tanh approximation (`gelu_new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeluKind {
    Erf,
    Tanh,
}

impl Backward<Flex, 1> for GeluBackward {
    /// (x, Φ(x) for erf or the tanh for the approximation, which GELU).
    type State = (FlexTensor, Vec<f32>, GeluKind);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, aux, kind) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let shape = grad.shape();
            let dx = match kind {
                GeluKind::Erf => kernels::gelu_backward(&f32s(&x), &aux, &f32s(&grad)),
                GeluKind::Tanh => kernels::gelu_tanh_backward(&f32s(&x), &aux, &f32s(&grad)),
            };
            tensor(dx, shape)
        });
    }
}

pub fn gelu<B: Backend, const D: usize>(x: FlexOf<B, D>, kind: GeluKind) -> Tensor<B, D> {
    let (out, aux) = match kind {
        GeluKind::Erf => kernels::gelu(&f32s(x.values())),
        GeluKind::Tanh => kernels::gelu_tanh(&f32s(x.values())),
    };
    let out = tensor(out, x.values().shape());
    let input = x.values().clone();
    finish::<B, D, 1, _>(GeluBackward, [train_parent(&x)], || (input, aux, kind), out)
}

// ---------------------------------------------------------------- attention heads

#[derive(Debug)]
struct SwapMiddleBackward;

impl Backward<Flex, 1> for SwapMiddleBackward {
    /// (a, b, d) of the forward swap and the input's shape; the backward swaps back.
    type State = (usize, usize, usize, Shape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (a, b, d, input_shape) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            tensor(kernels::swap_middle(&f32s(&grad), b, a, d), input_shape)
        });
    }
}

/// `x` viewed as [n, a, b, d] → [n, b, a, d], contiguous, with the output shape `shape`.
pub fn swap_middle<B: Backend, const D: usize, const D2: usize>(
    x: FlexOf<B, D>,
    (a, b, d): (usize, usize, usize),
    shape: [usize; D2],
) -> Tensor<B, D2> {
    let out = kernels::swap_middle(&f32s(x.values()), a, b, d);
    let input_shape = x.values().shape();
    finish::<B, D2, 1, _>(
        SwapMiddleBackward,
        [train_parent(&x)],
        || (a, b, d, input_shape),
        tensor(out, Shape::new(shape)),
    )
}

// ---------------------------------------------------------------- bias

#[derive(Debug)]
struct AddBiasBackward;

impl Backward<Flex, 2> for AddBiasBackward {
    /// Columns.
    type State = usize;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let cols = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let [x, bias] = ops.parents;
        if let Some(node) = bias {
            let sums = kernels::column_sums(&f32s(&grad), cols);
            grads.register::<Flex>(node.id, tensor(sums, Shape::new([cols])));
        }
        if let Some(node) = x {
            grads.register::<Flex>(node.id, grad);
        }
    }
}

pub fn add_bias<B: Backend>(x: FlexOf<B, 2>, bias: FlexOf<B, 1>) -> Tensor<B, 2> {
    let out = kernels::add_bias(&f32s(x.values()), &f32s(bias.values()));
    let shape = x.values().shape();
    let cols = shape[1];
    finish::<B, 2, 2, _>(
        AddBiasBackward,
        [train_parent(&x), train_parent(&bias)],
        || cols,
        tensor(out, shape),
    )
}

// ---------------------------------------------------------------- LayerNorm

/// What LayerNorm's backward needs: x̂, 1/σ per row and γ.
#[derive(Debug, Clone)]
struct NormState {
    xhat: FlexTensor,
    rstd: Vec<f32>,
    gamma: FlexTensor,
    cols: usize,
}

impl NormState {
    /// (dx, dγ, dβ) from dy.
    fn grads(&self, grad: &FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (dx, dg, db) = kernels::layer_norm_backward(
            &f32s(grad),
            &f32s(&self.xhat),
            &self.rstd,
            &f32s(&self.gamma),
            self.cols,
        );
        let param = Shape::new([self.cols]);
        (
            tensor(dx, grad.shape()),
            tensor(dg, param.clone()),
            tensor(db, param),
        )
    }
}

fn norm_forward(
    x: &[f32],
    shape: Shape,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    eps: f32,
) -> (FlexTensor, NormState) {
    let cols = shape[shape.num_dims() - 1];
    let (y, xhat, rstd) = kernels::layer_norm(x, cols, &f32s(gamma), &f32s(beta), eps);
    (
        tensor(y, shape.clone()),
        NormState {
            xhat: tensor(xhat, shape),
            rstd,
            gamma: gamma.clone(),
            cols,
        },
    )
}

#[derive(Debug)]
struct ResidualLayerNormBackward;

impl Backward<Flex, 4> for ResidualLayerNormBackward {
    type State = (NormState, Option<DropoutMask>);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (norm, drop) = ops.state;
        let (dx, dg, db) = norm.grads(&grad);
        let [h, r, g, b] = ops.parents;
        if let Some(node) = h {
            let dh = match &drop {
                Some(mask) => tensor(kernels::dropout(&f32s(&dx), mask), dx.shape()),
                None => dx.clone(),
            };
            grads.register::<Flex>(node.id, dh);
        }
        for (parent, value) in [(r, dx), (g, dg), (b, db)] {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, value);
            }
        }
    }
}

pub fn residual_layer_norm<B: Backend>(
    h: FlexOf<B, 3>,
    residual: FlexOf<B, 3>,
    gamma: FlexOf<B, 1>,
    beta: FlexOf<B, 1>,
    eps: f32,
    drop: Option<DropoutMask>,
) -> Tensor<B, 3> {
    let sum = kernels::dropout_add(&f32s(h.values()), &f32s(residual.values()), drop.as_ref());
    let (out, norm) = norm_forward(&sum, h.values().shape(), gamma.values(), beta.values(), eps);
    finish::<B, 3, 4, _>(
        ResidualLayerNormBackward,
        [
            train_parent(&h),
            train_parent(&residual),
            train_parent(&gamma),
            train_parent(&beta),
        ],
        || (norm, drop),
        out,
    )
}

// ---------------------------------------------------------------- optimizer

/// Σ x².
pub fn sum_squares<B: Backend, const D: usize>(t: &FlexOf<B, D>) -> f64 {
    kernels::sum_squares(&f32s(t.values()))
}

/// The values of `t`, moved out when it holds the only reference to them.
fn owned<B: Backend, const D: usize>(t: FlexOf<B, D>) -> Vec<f32> {
    let flex = match t.prim {
        Prim::Train(t) => t.primitive,
        Prim::Eval(t) => t,
    };
    match flex.as_slice::<f32>() {
        Some(_) if flex.is_unique() => flex.into_data().into_vec::<f32>().unwrap_or_default(),
        _ => f32s(&flex).into_owned(),
    }
}

/// A new untracked tensor of `template`'s kind.
fn like<B: Backend, const D: usize>(
    template: &FlexOf<B, D>,
    values: Vec<f32>,
    shape: Shape,
) -> Tensor<B, D> {
    let t = tensor(values, shape);
    back(FlexOf::<B, D>::new(match template.prim {
        Prim::Train(_) => Prim::Train(AdTensor::new(t)),
        Prim::Eval(_) => Prim::Eval(t),
    }))
}

/// One fused AdamW update: (parameter, first moment, second moment).
pub fn adamw<B: Backend>(
    param: FlexOf<B, 1>,
    grad: FlexOf<B, 1>,
    moments: Option<(FlexOf<B, 1>, FlexOf<B, 1>)>,
    h: &super::AdamWStep,
) -> [Tensor<B, 1>; 3] {
    let shape = param.values().shape();
    let n = shape[0];
    let mut p = owned(param);
    let (mut m, mut v) = match moments {
        Some((m, v)) => (owned(m), owned(v)),
        None => (vec![0.0; n], vec![0.0; n]),
    };
    kernels::adamw(
        &mut p,
        &f32s(grad.values()),
        &mut m,
        &mut v,
        h.lr,
        h.beta1,
        h.beta2,
        h.epsilon,
        h.weight_decay,
        h.step,
        h.grad_scale,
    );
    [p, m, v].map(|values| like(&grad, values, shape.clone()))
}

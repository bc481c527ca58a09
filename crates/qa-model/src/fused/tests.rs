//! The fused ops against the decompositions they replace, values and gradients, under
//! `Autodiff<Flex>` and in evaluation (plain flex).

use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::nn::DropoutConfig;
use burn::tensor::{Tensor, TensorData};

use super::*;

type Ad = Autodiff<Flex>;

fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Ad, D> {
    // A fixed stream, independent of the backend's global RNG.
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|i| {
            (mix64(seed ^ (i as u64 * 0x9E37_79B9)) >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
        })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn values<const D: usize, B: Backend>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0f32, f32::max);
    assert!(worst < tol, "{what}: max relative difference {worst}");
}

fn norm(seed: u64, cols: usize) -> LayerNorm<Ad> {
    LayerNorm {
        weight: Param::from_tensor(random([cols], seed) + 1.0),
        bias: Param::from_tensor(random([cols], seed + 1)),
        eps: 1e-12,
    }
}

fn no_dropout() -> Dropout {
    DropoutConfig::new(0.0).init()
}

const SITE: DropoutSite = DropoutSite { key: 7, site: 3 };

#[test]
fn residual_layer_norm_matches_the_decomposition_with_gradients() {
    let (h0, r0, n) = (random([2, 5, 16], 1), random([2, 5, 16], 2), norm(3, 16));
    let w = random([2, 5, 16], 4);
    let run = |fused: bool| {
        let (h, r) = (h0.clone().require_grad(), r0.clone().require_grad());
        let y = if fused {
            residual_layer_norm(h.clone(), r.clone(), &n, Some((&no_dropout(), SITE)))
        } else {
            decomposed_residual_layer_norm(h.clone(), r.clone(), &n, None)
        };
        let grads = (y.clone() * w.clone()).sum().backward();
        let g = |t: &Tensor<Ad, 3>| values(t.grad(&grads).expect("gradient"));
        let gw = values(n.weight.val().grad(&grads).expect("gamma gradient"));
        let gb = values(n.bias.val().grad(&grads).expect("beta gradient"));
        (values(y), g(&h), g(&r), gw, gb)
    };
    let (fused, reference) = (run(true), run(false));
    assert_close(&fused.0, &reference.0, 1e-5, "y");
    assert_close(&fused.1, &reference.1, 1e-4, "dh");
    assert_close(&fused.2, &reference.2, 1e-4, "dr");
    assert_close(&fused.3, &reference.3, 1e-4, "dgamma");
    assert_close(&fused.4, &reference.4, 1e-4, "dbeta");
}

#[test]
fn attention_probs_match_the_decomposition_with_gradients() {
    let (b, h, s) = (2, 3, 6);
    let scores0 = random([b, h, s, s], 5) * 3.0;
    // The second item's last two keys are padding.
    let mut m = vec![0.0f32; b * s];
    m[2 * s - 2..].fill(f32::MIN);
    let mask: Tensor<Ad, 4> =
        Tensor::from_data(TensorData::new(m, [b, 1, 1, s]), &Default::default());
    let w = random([b, h, s, s], 6);
    let run = |fused: bool| {
        let scores = scores0.clone().require_grad();
        let p = if fused {
            attention_probs(scores.clone(), mask.clone(), 0.25, &no_dropout(), SITE)
        } else {
            decomposed_attention_probs(scores.clone(), mask.clone(), 0.25, &no_dropout())
        };
        let grads = (p.clone() * w.clone()).sum().backward();
        (values(p), values(scores.grad(&grads).expect("gradient")))
    };
    let (fused, reference) = (run(true), run(false));
    assert_close(&fused.0, &reference.0, 1e-6, "probs");
    assert_close(&fused.1, &reference.1, 1e-5, "dscores");
}

#[test]
fn gelu_and_residual_layer_norm_match_in_training_and_evaluation() {
    let x0 = random([3, 4, 8], 8);
    let reference = check_activation(
        gelu,
        |x| x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) * 0.5,
        x0.clone(),
        "gelu",
    );
    // Evaluation: plain flex tensors take the fused forward too.
    let plain: Tensor<Flex, 3> = x0.clone().inner();
    assert_close(
        &values(gelu(plain.clone())),
        &reference,
        1e-6,
        "gelu (eval)",
    );
    let n = norm(9, 8);
    let eval_norm = LayerNorm::<Flex> {
        weight: Param::from_tensor(n.weight.val().inner()),
        bias: Param::from_tensor(n.bias.val().inner()),
        eps: n.eps,
    };
    let plain_residual: Tensor<Flex, 3> = random([3, 4, 8], 11).inner();
    assert_close(
        &values(residual_layer_norm(
            plain.clone(),
            plain_residual.clone(),
            &eval_norm,
            None,
        )),
        &values(eval_norm.forward(plain + plain_residual)),
        1e-5,
        "residual layer norm (eval)",
    );
}

#[test]
fn dropout_masks_repeat_per_key_and_the_gradient_uses_the_same_mask() {
    let d = DropoutConfig::new(0.25).init();
    let x0 = random([4, 64, 32], 10).abs() + 0.5;
    let x = x0.clone().require_grad();
    let y = dropout(x.clone(), &d, SITE);
    let grads = y.clone().sum().backward();
    let (y, x_values) = (values(y), values(x0.clone()));
    let g = values(x.grad(&grads).expect("gradient"));
    let kept = y.iter().filter(|v| **v != 0.0).count() as f64 / y.len() as f64;
    assert!((kept - 0.75).abs() < 0.02, "kept share {kept}");
    for ((y, x), g) in y.iter().zip(&x_values).zip(&g) {
        // Kept elements are scaled by 1/keep in both passes, dropped ones are zero in both.
        assert!((y - x * g).abs() < 1e-5, "{y} vs {x}·{g}");
    }
    let again = values(dropout(x0.clone().require_grad(), &d, SITE));
    assert_eq!(again, y, "same key and site, same mask");
    let other = values(dropout(
        x0.clone().require_grad(),
        &d,
        DropoutSite { key: 8, ..SITE },
    ));
    assert_ne!(other, y, "another key, another mask");
    // Evaluation never drops.
    let plain: Tensor<Flex, 3> = x0.clone().inner();
    assert_eq!(values(dropout(plain, &d, SITE)), x_values);
}

#[test]
fn untracked_inputs_give_untracked_outputs() {
    // No require_grad: the ops must still run (inference under Autodiff, masks, …).
    let x = random([2, 3, 4], 11);
    let y = residual_layer_norm(x.clone(), x.clone(), &norm(12, 4), None);
    assert_eq!(y.dims(), [2, 3, 4]);
}

#[test]
fn flex_f32_tensors_take_the_fused_path_and_others_do_not() {
    assert!(matches!(native(random([2, 3], 13)), Native::Flex(_)));
    let plain: Tensor<Flex, 2> = random([2, 3], 13).inner();
    assert!(matches!(native(plain.clone()), Native::Flex(_)));
    let half = plain.cast(burn::tensor::FloatDType::BF16);
    assert!(matches!(native(half), Native::Other(_)));
}

#[test]
fn linear_rows_match_burns_linear_with_gradients() {
    let x0 = random([6, 5], 14);
    let w = random([6, 3], 17);
    let run = |fused: bool| {
        let l = burn::nn::Linear::<Ad> {
            weight: Param::from_tensor(random([5, 3], 15).require_grad()),
            bias: Some(Param::from_tensor(random([3], 16).require_grad())),
        };
        let x = x0.clone().require_grad();
        let y = if fused {
            linear_rows(&l, x.clone())
        } else {
            l.forward(x.clone())
        };
        let grads = (y.clone() * w.clone()).sum().backward();
        let bias = l.bias.as_ref().map(|b| b.val()).expect("bias");
        (
            values(y),
            values(x.grad(&grads).expect("dx")),
            values(l.weight.val().grad(&grads).expect("dw")),
            values(bias.grad(&grads).expect("db")),
        )
    };
    let (fused, reference) = (run(true), run(false));
    assert_close(&fused.0, &reference.0, 1e-6, "y");
    assert_close(&fused.1, &reference.1, 1e-6, "dx");
    assert_close(&fused.2, &reference.2, 1e-6, "dw");
    assert_close(&fused.3, &reference.3, 1e-6, "db");
}

#[test]
fn split_and_merge_heads_match_reshape_and_swap_dims_with_gradients() {
    let x0 = random([2, 5, 12], 18);
    let w = random([2, 5, 12], 19);
    let run = |fused: bool| {
        let x = x0.clone().require_grad();
        let heads = if fused {
            split_heads(x.clone(), 3)
        } else {
            x.clone().reshape([2, 5, 3, 4]).swap_dims(1, 2)
        };
        // Something head-wise in between, so the gradient is not the identity.
        let heads = heads.clone() * heads;
        let y = if fused {
            merge_heads(heads)
        } else {
            heads.swap_dims(1, 2).reshape([2, 5, 12])
        };
        let grads = (y.clone() * w.clone()).sum().backward();
        (values(y), values(x.grad(&grads).expect("dx")))
    };
    let (fused, reference) = (run(true), run(false));
    assert_eq!(fused.0, reference.0);
    assert_close(&fused.1, &reference.1, 1e-6, "dx");
    let split = split_heads(x0.clone(), 3);
    assert_eq!(
        values(split),
        values(x0.reshape([2, 5, 3, 4]).swap_dims(1, 2))
    );
}

#[test]
fn gelu_new_matches_the_decomposition_with_gradients() {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    check_activation(
        gelu_new,
        |x| {
            let inner = (x.clone() + x.clone().powi_scalar(3) * 0.044715) * c;
            x * (inner.tanh() + 1.0) * 0.5
        },
        random([3, 4, 8], 20) * 2.0,
        "gelu_new",
    );
}

/// `fused` against `reference` on `x0`: values and the gradient of their sum. Returns the
/// reference's values.
fn check_activation(
    fused: impl Fn(Tensor<Ad, 3>) -> Tensor<Ad, 3>,
    reference: impl Fn(Tensor<Ad, 3>) -> Tensor<Ad, 3>,
    x0: Tensor<Ad, 3>,
    name: &str,
) -> Vec<f32> {
    let run = |f: &dyn Fn(Tensor<Ad, 3>) -> Tensor<Ad, 3>| {
        let x = x0.clone().require_grad();
        let y = f(x.clone());
        let grads = y.clone().sum().backward();
        // A missing gradient gives no values, which the length check below reports.
        (values(y), x.grad(&grads).map(values).unwrap_or_default())
    };
    let (got, want) = (run(&fused), run(&reference));
    assert_close(&got.0, &want.0, 1e-6, name);
    assert_close(&got.1, &want.1, 1e-5, &format!("d{name}"));
    want.0
}

//! The arithmetic of the fused CPU kernels on plain `f32` slices, parallel over rows or
//! fixed-size chunks with rayon. Every reduction runs in a fixed order inside a row or a
//! chunk, and chunk results are combined in chunk order, so results do not depend on the
//! number of threads.

use rayon::prelude::*;

/// Elements per parallel chunk of element-wise kernels (large enough to amortise the
/// task, small enough for both cores to share a 260K-element activation).
pub const CHUNK: usize = 16 * 1024;

/// A zeroed output buffer. Not `vec![0.0; n]`: that is `calloc`, which hands out fresh
/// pages from the OS for large sizes, and the kernel then zeroes them page by page on
/// every op (`clear_page_erms` in the profile); `resize` reuses the allocator's memory.
pub fn buffer(n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    v.resize(n, 0.0);
    v
}

/// Counter-based dropout masks: element `i` of call `(key, site)` is kept when the
/// SplitMix64 finaliser of `key ⊕ site ⊕ i·γ` falls below `keep·2⁶⁴`. No state, any
/// element in any order, the same mask in the forward and the backward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutMask {
    /// Per forward call: the trainer's (seed, step, micro-batch) mix.
    pub key: u64,
    /// Per dropout location in the model.
    pub site: u64,
    /// Keep when the hash is below this.
    threshold: u64,
    /// 1 / keep probability.
    pub scale: f32,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl DropoutMask {
    /// A mask dropping each element with probability `prob` (0 ≤ prob < 1).
    pub fn new(key: u64, site: u64, prob: f64) -> Self {
        let keep = (1.0 - prob).clamp(0.0, 1.0);
        let threshold = if keep >= 1.0 {
            u64::MAX
        } else {
            (keep * 18_446_744_073_709_551_616.0) as u64
        };
        DropoutMask {
            key,
            site: mix64(site.wrapping_add(GAMMA)),
            threshold,
            scale: if keep > 0.0 { (1.0 / keep) as f32 } else { 0.0 },
        }
    }

    /// The factor of element `i`: `1/keep` when kept, 0 when dropped.
    #[inline]
    pub fn factor(&self, i: usize) -> f32 {
        let h = mix64(self.key ^ self.site ^ (i as u64).wrapping_mul(GAMMA));
        if h < self.threshold {
            self.scale
        } else {
            0.0
        }
    }
}

/// `out[i] = x[i] · mask.factor(i)`.
pub fn dropout(x: &[f32], mask: &DropoutMask) -> Vec<f32> {
    let mut out = buffer(x.len());
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(c, (o, x))| {
            let base = c * CHUNK;
            for (k, (o, x)) in o.iter_mut().zip(x).enumerate() {
                *o = x * mask.factor(base + k);
            }
        });
    out
}

/// `dropout(h) + r`, element-wise (the residual connection before a LayerNorm).
pub fn dropout_add(h: &[f32], r: &[f32], mask: Option<&DropoutMask>) -> Vec<f32> {
    let mut out = buffer(h.len());
    out.par_chunks_mut(CHUNK)
        .zip(h.par_chunks(CHUNK).zip(r.par_chunks(CHUNK)))
        .enumerate()
        .for_each(|(c, (o, (h, r)))| {
            let base = c * CHUNK;
            match mask {
                Some(d) => {
                    for (k, ((o, h), r)) in o.iter_mut().zip(h).zip(r).enumerate() {
                        *o = h * d.factor(base + k) + r;
                    }
                }
                None => {
                    for ((o, h), r) in o.iter_mut().zip(h).zip(r) {
                        *o = h + r;
                    }
                }
            }
        });
    out
}

/// Softmax over each row of `scores·scale + mask[batch]` (mask: one row of additive
/// values per batch item, shared by the `rows_per_batch` rows of that item's heads and
/// queries), then dropout. Returns the probabilities before dropout, and after it when
/// there is a dropout.
pub fn attention_probs(
    scores: &[f32],
    cols: usize,
    rows_per_batch: usize,
    mask: &[f32],
    scale: f32,
    dropout: Option<&DropoutMask>,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut probs = buffer(scores.len());
    probs
        .par_chunks_mut(cols)
        .zip(scores.par_chunks(cols))
        .enumerate()
        .for_each(|(r, (p, s))| {
            let m = &mask[(r / rows_per_batch) * cols..][..cols];
            let mut max = f32::NEG_INFINITY;
            for ((p, s), m) in p.iter_mut().zip(s).zip(m) {
                *p = s * scale + m;
                max = max.max(*p);
            }
            let mut sum = 0.0f32;
            for p in p.iter_mut() {
                *p = (*p - max).exp();
                sum += *p;
            }
            let inv = 1.0 / sum;
            for p in p.iter_mut() {
                *p *= inv;
            }
        });
    let dropped = dropout.map(|d| self::dropout(&probs, d));
    (probs, dropped)
}

/// The gradient of [`attention_probs`] with respect to the raw scores, given the
/// gradient `grad` of its output (after dropout): `scale · p ⊙ (g − Σ g⊙p)` row by row,
/// with `g = grad ⊙ mask`.
pub fn attention_probs_backward(
    probs: &[f32],
    grad: &[f32],
    cols: usize,
    scale: f32,
    dropout: Option<&DropoutMask>,
) -> Vec<f32> {
    let mut out = buffer(probs.len());
    out.par_chunks_mut(cols)
        .zip(probs.par_chunks(cols).zip(grad.par_chunks(cols)))
        .enumerate()
        .for_each(|(r, (o, (p, g)))| {
            let base = r * cols;
            let mut dot = 0.0f32;
            for (k, ((o, p), g)) in o.iter_mut().zip(p).zip(g).enumerate() {
                let gk = match dropout {
                    Some(d) => g * d.factor(base + k),
                    None => *g,
                };
                *o = gk;
                dot += gk * p;
            }
            for (o, p) in o.iter_mut().zip(p) {
                *o = scale * p * (*o - dot);
            }
        });
    out
}

/// LayerNorm over rows of `cols`: returns (y, x̂, 1/σ per row).
pub fn layer_norm(
    x: &[f32],
    cols: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows = x.len() / cols;
    let mut y = buffer(x.len());
    let mut xhat = buffer(x.len());
    let mut rstd = vec![0.0f32; rows];
    y.par_chunks_mut(cols)
        .zip(xhat.par_chunks_mut(cols))
        .zip(rstd.par_iter_mut())
        .zip(x.par_chunks(cols))
        .for_each(|(((y, h), r), x)| {
            let n = cols as f32;
            let mean = x.iter().sum::<f32>() / n;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + eps).sqrt();
            *r = inv;
            for (((y, h), x), (g, b)) in y
                .iter_mut()
                .zip(h.iter_mut())
                .zip(x)
                .zip(gamma.iter().zip(beta))
            {
                *h = (x - mean) * inv;
                *y = *h * g + b;
            }
        });
    (y, xhat, rstd)
}

/// Rows per chunk of the column sums in [`layer_norm_backward`].
const ROWS_PER_CHUNK: usize = 64;

/// LayerNorm's gradients: (dx, dγ, dβ) from dy, x̂, 1/σ and γ.
pub fn layer_norm_backward(
    grad: &[f32],
    xhat: &[f32],
    rstd: &[f32],
    gamma: &[f32],
    cols: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dx = buffer(grad.len());
    dx.par_chunks_mut(cols)
        .zip(grad.par_chunks(cols).zip(xhat.par_chunks(cols)))
        .zip(rstd.par_iter())
        .for_each(|((dx, (g, h)), r)| {
            let n = cols as f32;
            let mut mean_g = 0.0f32;
            let mut mean_gh = 0.0f32;
            for ((g, h), gm) in g.iter().zip(h).zip(gamma) {
                let d = g * gm;
                mean_g += d;
                mean_gh += d * h;
            }
            mean_g /= n;
            mean_gh /= n;
            for (((dx, g), h), gm) in dx.iter_mut().zip(g).zip(h).zip(gamma) {
                *dx = r * (g * gm - mean_g - h * mean_gh);
            }
        });
    // Column sums over rows, in fixed chunks of rows, combined in chunk order.
    let partial: Vec<(Vec<f32>, Vec<f32>)> = grad
        .par_chunks(cols * ROWS_PER_CHUNK)
        .zip(xhat.par_chunks(cols * ROWS_PER_CHUNK))
        .map(|(g, h)| {
            let mut dgamma = vec![0.0f32; cols];
            let mut dbeta = vec![0.0f32; cols];
            for (g, h) in g.chunks(cols).zip(h.chunks(cols)) {
                for (((dg, db), g), h) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(g).zip(h) {
                    *dg += g * h;
                    *db += g;
                }
            }
            (dgamma, dbeta)
        })
        .collect();
    let mut dgamma = vec![0.0f32; cols];
    let mut dbeta = vec![0.0f32; cols];
    for (pg, pb) in partial {
        for (((dg, db), g), b) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(pg).zip(pb) {
            *dg += g;
            *db += b;
        }
    }
    (dx, dgamma, dbeta)
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `x[r, c] + bias[c]` over rows of `bias.len()` columns (a Linear's bias).
pub fn add_bias(x: &[f32], bias: &[f32]) -> Vec<f32> {
    let cols = bias.len();
    let mut out = buffer(x.len());
    let rows_per_task = (CHUNK / cols.max(1)).max(1);
    out.par_chunks_mut(cols * rows_per_task)
        .zip(x.par_chunks(cols * rows_per_task))
        .for_each(|(o, x)| {
            for (o, x) in o.chunks_mut(cols).zip(x.chunks(cols)) {
                for ((o, x), b) in o.iter_mut().zip(x).zip(bias) {
                    *o = x + b;
                }
            }
        });
    out
}

/// Column sums of a row-major matrix with `cols` columns (a bias gradient), in fixed
/// chunks of rows combined in chunk order.
pub fn column_sums(x: &[f32], cols: usize) -> Vec<f32> {
    let partial: Vec<Vec<f32>> = x
        .par_chunks(cols * ROWS_PER_CHUNK)
        .map(|x| {
            let mut sums = vec![0.0f32; cols];
            for row in x.chunks(cols) {
                for (s, v) in sums.iter_mut().zip(row) {
                    *s += v;
                }
            }
            sums
        })
        .collect();
    let mut sums = vec![0.0f32; cols];
    for p in partial {
        for (s, v) in sums.iter_mut().zip(p) {
            *s += v;
        }
    }
    sums
}

/// Swaps the two middle axes of `x` laid out as [n, a, b, d]: returns [n, b, a, d]
/// (splitting [batch, seq, heads·dim] into [batch, heads, seq, dim], or merging back).
pub fn swap_middle(x: &[f32], a: usize, b: usize, d: usize) -> Vec<f32> {
    let mut out = buffer(x.len());
    let block = a * d;
    if block == 0 {
        return out;
    }
    out.par_chunks_mut(block).enumerate().for_each(|(k, o)| {
        let (n, j) = (k / b, k % b);
        let src = &x[n * a * b * d..][..a * b * d];
        for (i, o) in o.chunks_mut(d).enumerate() {
            o.copy_from_slice(&src[(i * b + j) * d..][..d]);
        }
    });
    out
}

/// 1/√(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Exact GELU, `x·Φ(x)` (HF's `gelu`). Returns (GELU(x), Φ(x)); the backward reuses Φ.
pub fn gelu(x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut out = buffer(x.len());
    let mut cdf = buffer(x.len());
    out.par_chunks_mut(CHUNK)
        .zip(cdf.par_chunks_mut(CHUNK))
        .zip(x.par_chunks(CHUNK))
        .for_each(|((o, c), x)| {
            for ((o, c), x) in o.iter_mut().zip(c.iter_mut()).zip(x) {
                *c = 0.5 * (1.0 + libm::erff(x * FRAC_1_SQRT_2));
                *o = x * *c;
            }
        });
    (out, cdf)
}

/// GELU's gradient: `grad · (Φ(x) + x·φ(x))`, with Φ(x) from [`gelu`].
pub fn gelu_backward(x: &[f32], cdf: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = buffer(x.len());
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(cdf.par_chunks(CHUNK)))
        .zip(grad.par_chunks(CHUNK))
        .for_each(|((o, (x, c)), g)| {
            for (((o, x), c), g) in o.iter_mut().zip(x).zip(c).zip(g) {
                let pdf = INV_SQRT_2PI * (-0.5 * x * x).exp();
                *o = g * (c + x * pdf);
            }
        });
    out
}

/// √(2/π).
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// The tanh approximation of GELU (HF's `gelu_new`, ALBERT's default):
/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`. Returns (GELU(x), the tanh).
pub fn gelu_tanh(x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut out = buffer(x.len());
    let mut tanh = buffer(x.len());
    out.par_chunks_mut(CHUNK)
        .zip(tanh.par_chunks_mut(CHUNK))
        .zip(x.par_chunks(CHUNK))
        .for_each(|((o, t), x)| {
            for ((o, t), x) in o.iter_mut().zip(t.iter_mut()).zip(x) {
                *t = (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh();
                *o = 0.5 * x * (1.0 + *t);
            }
        });
    (out, tanh)
}

/// [`gelu_tanh`]'s gradient: `grad · (0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²))`.
pub fn gelu_tanh_backward(x: &[f32], tanh: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = buffer(x.len());
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(tanh.par_chunks(CHUNK)))
        .zip(grad.par_chunks(CHUNK))
        .for_each(|((o, (x, t)), g)| {
            for (((o, x), t), g) in o.iter_mut().zip(x).zip(t).zip(g) {
                let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044_715 * x * x);
                *o = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
            }
        });
    out
}

/// Σ x², in fixed chunks combined in order (f64 accumulation).
pub fn sum_squares(x: &[f32]) -> f64 {
    let partial: Vec<f64> = x
        .par_chunks(CHUNK)
        .map(|c| c.iter().map(|v| f64::from(*v) * f64::from(*v)).sum())
        .collect();
    partial.iter().sum()
}

/// One AdamW update of a parameter buffer in place (torch.optim.AdamW's arithmetic):
/// decoupled decay, moments, bias correction. `grad_scale` unscales and clips the
/// gradient.
#[allow(clippy::too_many_arguments)]
pub fn adamw(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    decay: f64,
    step: i32,
    grad_scale: f64,
) {
    let bias1 = 1.0 - beta1.powi(step);
    // Scalars are computed in f64 and rounded once, as torch does with Python floats.
    let b2 = beta2 as f32;
    let (one_minus_b1, one_minus_b2) = ((1.0 - beta1) as f32, (1.0 - beta2) as f32);
    let keep = (1.0 - lr * decay) as f32;
    let step_size = (lr / bias1) as f32;
    let bias2_sqrt = (1.0 - beta2.powi(step)).sqrt() as f32;
    let (eps, gs) = (eps as f32, grad_scale as f32);
    // torch's order of operations (`_single_tensor_adamw`): decay, `lerp` of the first
    // moment, `addcmul` of the second, `sqrt / bias2_sqrt + eps`, `addcdiv`.
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| {
            for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = g * gs;
                *m += one_minus_b1 * (g - *m);
                *v = *v * b2 + one_minus_b2 * (g * g);
                let denom = v.sqrt() / bias2_sqrt + eps;
                *p *= keep;
                *p += -step_size * (*m / denom);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_masks_keep_the_expected_share_and_repeat() {
        let d = DropoutMask::new(42, 3, 0.1);
        let kept = (0..100_000).filter(|&i| d.factor(i) > 0.0).count();
        assert!((89_000..91_000).contains(&kept), "{kept}");
        assert_eq!(d.factor(17), DropoutMask::new(42, 3, 0.1).factor(17));
        let other = DropoutMask::new(42, 4, 0.1);
        let same = (0..1000)
            .filter(|&i| d.factor(i) == other.factor(i))
            .count();
        assert!(same < 900, "sites must differ: {same}");
        assert!(DropoutMask::new(1, 1, 0.0).factor(5) == 1.0);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_the_gradient_matches_finite_differences() {
        let cols = 5;
        let scores: Vec<f32> = (0..20).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.0).collect();
        let mask = vec![
            0.0,
            0.0,
            0.0,
            f32::MIN,
            f32::MIN,
            0.0,
            0.0,
            0.0,
            0.0,
            f32::MIN,
        ];
        let (p, _) = attention_probs(&scores, cols, 2, &mask, 0.5, None);
        for row in p.chunks(cols) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert_eq!(p[3], 0.0);
        let grad: Vec<f32> = (0..20).map(|i| (i as f32 * 0.37).sin()).collect();
        let dx = attention_probs_backward(&p, &grad, cols, 0.5, None);
        let loss = |s: &[f32]| -> f32 {
            let (p, _) = attention_probs(s, cols, 2, &mask, 0.5, None);
            p.iter().zip(&grad).map(|(a, b)| a * b).sum()
        };
        for i in [0, 6, 12, 18] {
            let (mut a, mut b) = (scores.clone(), scores.clone());
            a[i] += 1e-2;
            b[i] -= 1e-2;
            let fd = (loss(&a) - loss(&b)) / 2e-2;
            assert!((fd - dx[i]).abs() < 1e-3, "{i}: {fd} vs {}", dx[i]);
        }
    }

    #[test]
    fn layer_norm_gradient_matches_finite_differences() {
        let cols = 4;
        let x: Vec<f32> = (0..12).map(|i| ((i * 5) % 7) as f32 * 0.4 - 1.0).collect();
        let gamma = vec![1.0, 0.5, -0.3, 2.0];
        let beta = vec![0.1, 0.0, 0.2, -0.1];
        let grad: Vec<f32> = (0..12).map(|i| (i as f32 * 0.9).cos()).collect();
        let (_, xhat, rstd) = layer_norm(&x, cols, &gamma, &beta, 1e-5);
        let (dx, dgamma, dbeta) = layer_norm_backward(&grad, &xhat, &rstd, &gamma, cols);
        let loss = |x: &[f32], g: &[f32], b: &[f32]| -> f64 {
            let (y, _, _) = layer_norm(x, cols, g, b, 1e-5);
            y.iter().zip(&grad).map(|(a, b)| f64::from(a * b)).sum()
        };
        let h = 1e-2f32;
        for i in 0..12 {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += h;
            b[i] -= h;
            let fd = (loss(&a, &gamma, &beta) - loss(&b, &gamma, &beta)) / f64::from(2.0 * h);
            assert!(
                (fd - f64::from(dx[i])).abs() < 2e-3,
                "dx {i}: {fd} vs {}",
                dx[i]
            );
        }
        for j in 0..cols {
            let (mut a, mut b) = (gamma.clone(), gamma.clone());
            a[j] += h;
            b[j] -= h;
            let fd = (loss(&x, &a, &beta) - loss(&x, &b, &beta)) / f64::from(2.0 * h);
            assert!((fd - f64::from(dgamma[j])).abs() < 2e-3);
            let (mut a, mut b) = (beta.clone(), beta.clone());
            a[j] += h;
            b[j] -= h;
            let fd = (loss(&x, &gamma, &a) - loss(&x, &gamma, &b)) / f64::from(2.0 * h);
            assert!((fd - f64::from(dbeta[j])).abs() < 2e-3);
        }
    }

    #[test]
    fn gelu_is_exact_and_its_gradient_matches() {
        // torch.nn.functional.gelu (exact) at these points.
        let x = [-3.0f32, -1.0, -0.1, 0.0, 0.5, 2.0];
        let want = [
            -0.004_049_7,
            -0.158_655_3,
            -0.046_017_2,
            0.0,
            0.345_731_1,
            1.954_499_7,
        ];
        let (y, cdf) = gelu(&x);
        for (y, w) in y.iter().zip(want) {
            assert!((y - w).abs() < 1e-6, "{y} vs {w}");
        }
        let g = gelu_backward(&x, &cdf, &[1.0; 6]);
        for (i, xi) in x.iter().enumerate() {
            let fd = (gelu(&[xi + 1e-3]).0[0] - gelu(&[xi - 1e-3]).0[0]) / 2e-3;
            assert!((fd - g[i]).abs() < 1e-3);
        }
    }

    #[test]
    fn swapping_the_middle_axes_twice_is_the_identity() {
        // [1, 2, 3, 2] → [1, 3, 2, 2].
        let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let y = swap_middle(&x, 2, 3, 2);
        assert_eq!(
            y,
            [0.0, 1.0, 6.0, 7.0, 2.0, 3.0, 8.0, 9.0, 4.0, 5.0, 10.0, 11.0]
        );
        assert_eq!(swap_middle(&y, 3, 2, 2), x);
    }

    #[test]
    fn gelu_tanh_matches_the_formula_and_its_gradient() {
        let x = [-3.0f32, -1.0, -0.1, 0.0, 0.5, 2.0];
        let (y, t) = gelu_tanh(&x);
        for (y, x) in y.iter().zip(x) {
            let c = (2.0f64 / std::f64::consts::PI).sqrt();
            let x = f64::from(x);
            let want = 0.5 * x * (1.0 + (c * (x + 0.044715 * x.powi(3))).tanh());
            assert!((f64::from(*y) - want).abs() < 1e-6, "{y} vs {want}");
        }
        let g = gelu_tanh_backward(&x, &t, &[1.0; 6]);
        for (i, xi) in x.iter().enumerate() {
            let fd = (gelu_tanh(&[xi + 1e-3]).0[0] - gelu_tanh(&[xi - 1e-3]).0[0]) / 2e-3;
            assert!((fd - g[i]).abs() < 1e-3, "{i}: {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn bias_rows_and_column_sums() {
        let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
        assert_eq!(
            add_bias(&x, &[1.0, 2.0, 3.0])[..6],
            [1.0, 3.0, 5.0, 4.0, 6.0, 8.0]
        );
        assert_eq!(column_sums(&x, 3), vec![18.0, 22.0, 26.0]);
        let big: Vec<f32> = (0..3 * 1000).map(|i| (i % 7) as f32).collect();
        let want: Vec<f32> = (0..3)
            .map(|c| (0..1000).map(|r| ((r * 3 + c) % 7) as f32).sum())
            .collect();
        assert_eq!(column_sums(&big, 3), want);
    }

    #[test]
    fn adamw_matches_the_reference_arithmetic() {
        let (mut p, mut m, mut v) = (vec![1.0f32, -2.0], vec![0.0f32; 2], vec![0.0f32; 2]);
        adamw(
            &mut p,
            &[0.5, -1.0],
            &mut m,
            &mut v,
            0.1,
            0.9,
            0.999,
            1e-8,
            0.01,
            1,
            1.0,
        );
        // torch.optim.AdamW(lr=0.1, weight_decay=0.01) after one step: p·(1−lr·wd) − lr·sign(g).
        assert!((p[0] - (1.0 * 0.999 - 0.1)).abs() < 1e-6, "{p:?}");
        assert!((p[1] - (-2.0 * 0.999 + 0.1)).abs() < 1e-6, "{p:?}");
        assert!((sum_squares(&[3.0, 4.0]) - 25.0).abs() < 1e-12);
    }
}

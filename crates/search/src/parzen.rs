//! Multivariate TPE (Bergstra et al. 2011, with the joint kernels of Falkner et al. 2018,
//! "BOHB"), the method Optuna's `TPESampler` uses by default for one objective since 4.x.
//!
//! The results are ranked (best first) and split: the best `min(⌈n/10⌉, 25)` are "good",
//! the rest "bad". Each set gets a Parzen estimator over the whole space: one kernel per
//! result (a product over the keys) plus a prior kernel, all of equal weight. A numerical
//! key's kernel is a Gaussian truncated to the key's range, as wide as the larger gap to
//! its neighbouring results in that key (the outermost ones: the inner gap), clipped to
//! [range / min(100, n + 2), range] ("magic clip"); the prior's is as wide as the range.
//! A choice's kernel puts weight 1 + 1/(n + 1) on its result's choice and 1/(n + 1) on every
//! choice (the prior: uniform). 24 candidates are drawn from the good estimator; the one
//! with the largest log l(x) − log g(x) is the suggestion.
//!
//! The `tpe` crate (univariate, one optimizer per key) was the first choice and lost to
//! Optuna on Hartmann-6 and Branin (docs/benchmarks.md, "Search"): its prior is one more
//! point among the results, with a neighbour's narrow width, and keys are independent.

use rand_core::Rng;

/// Candidates drawn from the good estimator per suggestion (Optuna's `n_ei_candidates`).
const CANDIDATES: usize = 24;

/// One key as the estimator sees it.
#[derive(Debug, Clone, Copy)]
pub enum Axis {
    /// A real interval `[low, high)` (log-uniform keys on their logarithm, integers on
    /// `[low, high + 1)`).
    Real { low: f64, high: f64 },
    /// `n` choices, numbered from 0.
    Choice(usize),
}

/// One kernel's part for one key.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// Mean, standard deviation, log of the mass inside the range.
    Gauss(f64, f64, f64),
    /// The chosen index, or `None` for the uniform prior; with the prior's share.
    Pick(Option<usize>, f64),
}

/// A Parzen estimator over the whole space: equal-weight kernels, each a product of parts.
#[derive(Debug)]
struct Mixture<'a> {
    axes: &'a [Axis],
    kernels: Vec<Vec<Part>>,
    /// Log of each kernel's weight (normalized).
    log_weights: Vec<f64>,
}

/// The weights of `n` results in the order they were made: 1 each, and beyond 25 results
/// the older ones ramp down from 1/n (Optuna's `default_weights`): an estimator trusts the
/// latest results most.
fn recency_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    (0..ramp)
        .map(|i| {
            if ramp == 1 {
                1.0 / n as f64
            } else {
                1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64
            }
        })
        .chain(std::iter::repeat_n(1.0, 25))
        .collect()
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

impl<'a> Mixture<'a> {
    /// The estimator of `points`, each with the number of the suggestion it came from.
    fn fit(axes: &'a [Axis], points: &[&[f64]], made: &[usize]) -> Mixture<'a> {
        let n = points.len();
        let mut chronological: Vec<usize> = (0..n).collect();
        chronological.sort_by_key(|i| made.get(*i).copied().unwrap_or(*i));
        let mut weights = vec![1.0; n + 1];
        for (w, i) in recency_weights(n).into_iter().zip(&chronological) {
            weights[*i] = w;
        }
        let total: f64 = weights.iter().sum();
        let log_weights: Vec<f64> = weights.iter().map(|w| (w / total).ln()).collect();
        let mut kernels: Vec<Vec<Part>> = vec![Vec::with_capacity(axes.len()); n + 1];
        for (d, axis) in axes.iter().enumerate() {
            match *axis {
                Axis::Real { low, high } => {
                    let width = high - low;
                    let mut order: Vec<usize> = (0..n).collect();
                    order.sort_by(|a, b| points[*a][d].total_cmp(&points[*b][d]));
                    let sorted: Vec<f64> = order.iter().map(|i| points[*i][d]).collect();
                    let min_sigma = width / (2.0 + n as f64).min(100.0);
                    let mut sigmas = vec![0.0; n];
                    for (k, &i) in order.iter().enumerate() {
                        let prev = if k == 0 { low } else { sorted[k - 1] };
                        let next = sorted.get(k + 1).copied().unwrap_or(high);
                        let x = sorted[k];
                        let sigma = if n >= 2 && k == 0 {
                            next - x
                        } else if n >= 2 && k + 1 == n {
                            x - prev
                        } else {
                            (x - prev).max(next - x)
                        };
                        sigmas[i] = sigma.clamp(min_sigma, width);
                    }
                    let gauss = |mu: f64, sigma: f64| {
                        let mass = normal_cdf((high - mu) / sigma) - normal_cdf((low - mu) / sigma);
                        Part::Gauss(mu, sigma, mass.max(1e-300).ln())
                    };
                    for i in 0..n {
                        kernels[i].push(gauss(points[i][d], sigmas[i]));
                    }
                    kernels[n].push(gauss(low + 0.5 * width, width));
                }
                Axis::Choice(_) => {
                    let share = 1.0 / (n as f64 + 1.0);
                    for i in 0..n {
                        kernels[i].push(Part::Pick(Some(points[i][d] as usize), share));
                    }
                    kernels[n].push(Part::Pick(None, share));
                }
            }
        }
        Mixture {
            axes,
            kernels,
            log_weights,
        }
    }

    fn log_pdf(&self, x: &[f64]) -> f64 {
        let logs: Vec<f64> = self
            .kernels
            .iter()
            .zip(&self.log_weights)
            .map(|(parts, log_w)| {
                log_w
                    + parts
                        .iter()
                        .zip(self.axes)
                        .zip(x)
                        .map(|((part, axis), &v)| match (*part, *axis) {
                            (Part::Gauss(mu, sigma, log_mass), _) => {
                                let z = (v - mu) / sigma;
                                -0.5 * z * z
                                    - sigma.ln()
                                    - 0.5 * (2.0 * std::f64::consts::PI).ln()
                                    - log_mass
                            }
                            (Part::Pick(pick, share), Axis::Choice(c)) => {
                                let hit = pick == Some(v as usize);
                                let p = (if hit { 1.0 } else { 0.0 } + share)
                                    / (if pick.is_some() { 1.0 } else { 0.0 } + share * c as f64);
                                p.ln()
                            }
                            (Part::Pick(..), Axis::Real { .. }) => f64::NEG_INFINITY,
                        })
                        .sum::<f64>()
            })
            .collect();
        let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return max;
        }
        max + logs.iter().map(|l| (l - max).exp()).sum::<f64>().ln()
    }

    fn sample(&self, rng: &mut impl Rng) -> Vec<f64> {
        let mut u = unit(rng);
        let mut k = self.kernels.len() - 1;
        for (i, lw) in self.log_weights.iter().enumerate() {
            u -= lw.exp();
            if u < 0.0 {
                k = i;
                break;
            }
        }
        self.kernels[k]
            .iter()
            .zip(self.axes)
            .map(|(part, axis)| match (*part, *axis) {
                (Part::Gauss(mu, sigma, _), Axis::Real { low, high }) => {
                    // Inverse-CDF draw from the Gaussian truncated to [low, high).
                    let (a, b) = (
                        normal_cdf((low - mu) / sigma),
                        normal_cdf((high - mu) / sigma),
                    );
                    let u = a + unit(rng) * (b - a);
                    let x = mu + sigma * std::f64::consts::SQRT_2 * inverse_erf(2.0 * u - 1.0);
                    if x.is_finite() { x } else { mu }.clamp(low, high.next_down())
                }
                (Part::Pick(pick, share), Axis::Choice(c)) => {
                    let total = if pick.is_some() { 1.0 } else { 0.0 } + share * c as f64;
                    let mut u = unit(rng) * total;
                    for i in 0..c {
                        u -= share + if pick == Some(i) { 1.0 } else { 0.0 };
                        if u < 0.0 {
                            return i as f64;
                        }
                    }
                    (c - 1) as f64
                }
                _ => 0.0,
            })
            .collect()
    }
}

/// A uniform draw in (0, 1).
fn unit(rng: &mut impl Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// TPE's next point from `points`, best first (at least one), each with the number of the
/// suggestion it came from.
pub fn suggest(axes: &[Axis], points: &[(Vec<f64>, usize)], rng: &mut impl Rng) -> Vec<f64> {
    let n = points.len();
    let n_good = n.div_ceil(10).clamp(1, 25).min(n);
    let (good, good_made) = split(&points[..n_good]);
    let (bad, bad_made) = split(&points[n_good..]);
    let l = Mixture::fit(axes, &good, &good_made);
    let g = Mixture::fit(axes, &bad, &bad_made);
    let mut best: Option<(f64, Vec<f64>)> = None;
    for _ in 0..CANDIDATES {
        let x = l.sample(rng);
        let score = l.log_pdf(&x) - g.log_pdf(&x);
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, x));
        }
    }
    best.map(|(_, x)| x).unwrap_or_default()
}

fn split(part: &[(Vec<f64>, usize)]) -> (Vec<&[f64]>, Vec<usize>) {
    part.iter().map(|(x, i)| (x.as_slice(), *i)).unzip()
}

/// erf⁻¹ by Newton's method on `libm::erf` from Giles' single-precision start (2012).
fn inverse_erf(y: f64) -> f64 {
    let y = y.clamp(-1.0 + 1e-15, 1.0 - 1e-15);
    let w = -((1.0 - y) * (1.0 + y)).ln();
    let mut x = if w < 5.0 {
        let w = w - 2.5;
        let mut p = 2.810_226_36e-08;
        for c in [
            3.432_739_39e-07,
            -3.523_387_7e-06,
            -4.391_506_54e-06,
            0.000_218_580_87,
            -0.001_253_725_03,
            -0.004_177_681_64,
            0.246_640_727,
            1.501_409_41,
        ] {
            p = c + p * w;
        }
        p * y
    } else {
        let w = w.sqrt() - 3.0;
        let mut p = -0.000_200_214_257;
        for c in [
            0.000_100_950_558,
            0.001_349_343_22,
            -0.003_673_428_44,
            0.005_739_507_73,
            -0.007_622_461_3,
            0.009_438_870_47,
            1.001_674_06,
            2.832_976_82,
        ] {
            p = c + p * w;
        }
        p * y
    };
    for _ in 0..3 {
        let err = libm::erf(x) - y;
        x -= err / (2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp());
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn recency_weights_ramp_up_beyond_25() {
        assert_eq!(recency_weights(3), vec![1.0; 3]);
        let w = recency_weights(45);
        assert_eq!(w.len(), 45);
        assert!((w[0] - 1.0 / 45.0).abs() < 1e-12 && (w[19] - 1.0).abs() < 1e-12);
        assert!(w.windows(2).all(|p| p[0] <= p[1]) && w[20..].iter().all(|x| *x == 1.0));
    }

    #[test]
    fn inverse_erf_inverts_erf() {
        for y in [-0.999, -0.5, -0.1, 0.0, 0.3, 0.9, 0.99999] {
            assert!((libm::erf(inverse_erf(y)) - y).abs() < 1e-12, "{y}");
        }
    }

    #[test]
    fn densities_integrate_to_one_and_samples_stay_in_range() {
        let axes = [
            Axis::Real {
                low: -5.0,
                high: 10.0,
            },
            Axis::Choice(3),
        ];
        let pts: Vec<Vec<f64>> = vec![vec![1.0, 0.0], vec![1.5, 2.0], vec![9.0, 2.0]];
        let refs: Vec<&[f64]> = pts.iter().map(Vec::as_slice).collect();
        let m = Mixture::fit(&axes, &refs, &[0, 1, 2]);
        let n = 20_000;
        let h = 15.0 / n as f64;
        let integral: f64 = (0..3)
            .map(|c| {
                (0..n)
                    .map(|i| m.log_pdf(&[-5.0 + (i as f64 + 0.5) * h, c as f64]).exp() * h)
                    .sum::<f64>()
            })
            .sum();
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
        let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
        let draws: Vec<Vec<f64>> = (0..3000).map(|_| m.sample(&mut rng)).collect();
        assert!(draws.iter().all(|x| (-5.0..10.0).contains(&x[0])));
        // Choice 2 was picked twice, choice 1 never: the draws say so.
        let count = |c: f64| draws.iter().filter(|x| x[1] == c).count();
        assert!(count(2.0) > count(0.0) && count(0.0) > count(1.0));
        assert!(m.log_pdf(&[1.25, 0.0]) > m.log_pdf(&[5.0, 0.0]));
    }

    #[test]
    fn the_suggestion_lands_near_the_good_results() {
        let axes = [
            Axis::Real {
                low: 0.0,
                high: 1.0,
            },
            Axis::Real {
                low: 0.0,
                high: 1.0,
            },
        ];
        // The best results sit near (0.2, 0.8), the rest spread elsewhere.
        let mut pts = vec![(vec![0.2, 0.8], 0), (vec![0.22, 0.79], 1)];
        for i in 0..18 {
            let t = i as f64 / 18.0;
            pts.push((vec![0.5 + 0.5 * t, 0.5 * t], i + 2));
        }
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let near = (0..50)
            .filter(|_| {
                let x = suggest(&axes, &pts, &mut rng);
                (x[0] - 0.21).abs() < 0.2 && (x[1] - 0.8).abs() < 0.2
            })
            .count();
        assert!(near > 35, "{near} of 50");
    }
}

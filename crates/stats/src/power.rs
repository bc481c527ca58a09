//! What a seed plan can detect, for `sweep plan` and the report: the smallest effect a
//! directional claim reproduces with 80 % power, the smallest margin at which a `same`
//! claim with no true difference is declared equivalent with 80 % power, and the `max`
//! seeds that a target effect or margin needs.
//!
//! Everything is in units of σ, the standard deviation of the per-seed differences
//! (variant − baseline): multiply by a pilot σ (the first look's, or `seeds.pilot_sd`)
//! for metric points. Power is simulated through the design's own boundaries: per path of
//! N(0, 1) differences, the smallest effect that some look would reproduce is
//! min_k (c_k·s_k/√n_k − z̄_k), so the power at every effect comes from one set of paths
//! (common random numbers; the small chance that a look contradicts first is ignored).
//! Futility stopping, which is non-binding, lowers power a little (docs/report.md).

use crate::dist::t_quantile;
use crate::rng::Rng;
use crate::sequential::{interval_level, Design, LookAt, NullPaths};

/// The power the planning numbers are for.
pub const TARGET_POWER: f64 = 0.8;
/// Simulated studies behind each power number.
const POWER_PATHS: usize = 20_000;
/// Null paths behind the boundaries of designs other than the study's own (planning only).
const PLANNING_NULL_PATHS: usize = 50_000;
const POWER_SEED: u64 = 0x00B0_0E55;

/// Per simulated study, the mean and sd of the first n differences at each look.
fn paths(looks: &[usize]) -> Vec<Vec<(f64, f64)>> {
    let n_max = looks.last().copied().unwrap_or(0);
    let mut rng = Rng::new(POWER_SEED);
    (0..POWER_PATHS)
        .map(|_| {
            let (mut mean, mut m2) = (0.0f64, 0.0f64);
            let mut out = Vec::with_capacity(looks.len());
            let mut j = 0;
            for i in 1..=n_max {
                let x = rng.normal();
                let delta = x - mean;
                mean += delta / i as f64;
                m2 += delta * (x - mean);
                while j < looks.len() && looks[j] == i {
                    out.push((mean, (m2 / (i.max(2) - 1) as f64).sqrt()));
                    j += 1;
                }
            }
            out
        })
        .collect()
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::INFINITY;
    }
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

/// Boundaries of `design` at level `u` with every run in: the shared decision boundaries
/// (`shared`), or a smaller simulation for designs that are only being considered.
fn bounds(design: &Design, u: f64, shared: bool) -> Vec<f64> {
    if shared || design.looks.len() == 1 {
        return design.bounds_at(u);
    }
    let paths = NullPaths::simulate(design.max_n(), PLANNING_NULL_PATHS, POWER_SEED ^ 1);
    let made: Vec<LookAt> = design.complete();
    paths.boundaries(&design.looks, &made, u)
}

/// The `power` quantile over simulated studies of the smallest target each study reaches
/// at some look: `need(mean, sd, n, c)` is what look (n pairs, critical value c) needs.
fn smallest(
    design: &Design,
    u: f64,
    power: f64,
    shared: bool,
    need: impl Fn(f64, f64, usize, f64) -> f64,
) -> f64 {
    let c = bounds(design, u, shared);
    let per_study: Vec<f64> = paths(&design.looks)
        .iter()
        .map(|p| {
            p.iter()
                .zip(&design.looks)
                .zip(&c)
                .filter(|(_, c)| c.is_finite())
                .map(|(((mean, sd), &n), &c)| need(*mean, *sd, n, c))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    quantile(per_study, power)
}

/// Directional: reproduced at a look once δ ≥ c·s/√n − z̄.
fn smallest_effect(design: &Design, level: f64, power: f64, shared: bool) -> f64 {
    smallest(design, level, power, shared, |mean, sd, n, c| {
        c * sd / (n as f64).sqrt() - mean
    })
}

/// Equivalence with no difference: declared at a look once Δ > |z̄| + c·s/√n (90% interval).
fn smallest_margin(design: &Design, level: f64, power: f64, shared: bool) -> f64 {
    let u = interval_level(true, level);
    smallest(design, u, power, shared, |mean, sd, n, c| {
        mean.abs() + c * sd / (n as f64).sqrt()
    })
}

/// The smallest true effect (in σ) that a directional claim under `design` reproduces with
/// probability `power` at family level `level`.
pub fn detectable_effect(design: &Design, level: f64, power: f64) -> f64 {
    smallest_effect(design, level, power, true)
}

/// The smallest margin (in σ) at which a `same` claim with no true difference is declared
/// equivalent with probability `power` at family level `level`.
pub fn reachable_margin(design: &Design, level: f64, power: f64) -> f64 {
    smallest_margin(design, level, power, true)
}

/// What a claim needs: an effect to reproduce or a margin to reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A directional claim's true effect, in σ.
    Effect(f64),
    /// A `same` claim's margin, in σ.
    Margin(f64),
}

/// The fewest `max` seeds (looks at `min`, `min + batch`, …, `max`; one look when
/// `batch` is `None`) that reach `target` with probability `power` at level `level`;
/// `None` if `limit` seeds do not.
pub fn seeds_needed(
    min: usize,
    batch: Option<usize>,
    level: f64,
    target: Target,
    power: f64,
    limit: usize,
) -> Option<usize> {
    let reaches = |max: usize| {
        let design = match batch {
            Some(b) => Design::sequential(min.min(max), max, b, level),
            None => Design::fixed(max, level),
        };
        match target {
            Target::Effect(e) => smallest_effect(&design, level, power, false) <= e,
            Target::Margin(m) => smallest_margin(&design, level, power, false) <= m,
        }
    };
    let lowest = if batch.is_some() { min.max(2) } else { 2 };
    if lowest > limit || !reaches(limit) {
        return None;
    }
    // Power rises with max: the smallest max that reaches it, by bisection.
    let (mut lo, mut hi) = (lowest, limit);
    if reaches(lo) {
        return Some(lo);
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if reaches(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// The fixed-sample normal-theory size, for checking the simulation: n with
/// (t_{1−u/2} + t_{power})·σ/√n = effect, iterated on the degrees of freedom.
pub fn fixed_sample_seeds(level: f64, effect: f64, power: f64) -> usize {
    let mut n = 2usize;
    for _ in 0..50 {
        let df = (n - 1) as f64;
        let z = t_quantile(1.0 - level / 2.0, df) + t_quantile(power, df);
        let next = ((z / effect).powi(2)).ceil().max(2.0) as usize;
        if next == n {
            break;
        }
        n = next;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::t_cdf;

    /// One look: the power of the paired t test at the found effect is 80 %, computed from
    /// the noncentral t by its normal approximation (δ√n − t_c ≈ t_power).
    #[test]
    fn one_look_matches_the_paired_t_power() {
        let design = Design::fixed(10, 0.05);
        let d = detectable_effect(&design, 0.05, 0.8);
        // The power of the one-sided rejection at δ = d by the usual approximation of the
        // noncentral t (a shifted central t), within 0.04 of 80 % here.
        let c = t_quantile(0.975, 9.0);
        let approx = 1.0 - t_cdf(c - d * 10f64.sqrt(), 9.0);
        assert!((approx - 0.8).abs() < 0.04, "δ {d}: approx power {approx}");
        assert!(d > 0.9 && d < 1.1, "{d}");
    }

    /// More seeds detect smaller effects; a sequential plan needs a bit more than one look.
    #[test]
    fn seeds_needed_shrink_with_the_effect() {
        let fixed = seeds_needed(2, None, 0.05, Target::Effect(1.0), 0.8, 100);
        assert_eq!(fixed, Some(fixed_sample_seeds(0.05, 1.0, 0.8)), "{fixed:?}");
        let seq = seeds_needed(3, Some(2), 0.05, Target::Effect(1.0), 0.8, 100).unwrap();
        assert!(
            seq >= fixed.unwrap() && seq <= fixed.unwrap() + 6,
            "{seq} vs {fixed:?}"
        );
        let small = seeds_needed(3, Some(2), 0.05, Target::Effect(0.5), 0.8, 100).unwrap();
        assert!(small > 2 * seq, "{small} vs {seq}");
        assert_eq!(
            seeds_needed(3, Some(2), 0.05, Target::Effect(0.01), 0.8, 100),
            None
        );
    }

    /// Equivalence with no true difference: the margin that 10 seeds reach is near the
    /// fixed-sample TOST's (t_{0.95} + t_{0.9})·σ/√n.
    #[test]
    fn reachable_margin_matches_tost() {
        let m = reachable_margin(&Design::fixed(10, 0.05), 0.05, 0.8);
        let want = (t_quantile(0.95, 9.0) + t_quantile(0.9, 9.0)) / 10f64.sqrt();
        assert!((m / want - 1.0).abs() < 0.1, "{m} vs {want}");
    }
}

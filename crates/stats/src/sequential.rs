//! A group-sequential paired t design for deciding a claim with as few seeds as possible
//! while keeping its error rate under repeated looks, whatever runs fail.
//!
//! Per claim, the paired differences d_i = variant − baseline (same seed) are looked at
//! once `looks[0] < looks[1] < … < looks[K-1] = n_max` seeds are in. A failed run (or a
//! diverged one under `diverged_runs: exclude`) gives no pair, so look k has n_k ≤ looks[k]
//! valid pairs. With d̄, s and se = s/√n_k, the repeated confidence interval (Jennison &
//! Turnbull 1989) is d̄ ± c_k·se.
//!
//! The critical values spend the error rate α over the looks with the Hwang–Shih–DeCani
//! function (γ = −2; Hwang, Shih & DeCani 1990, Stat Med 9:1439), α(t) = α·(1 − e^{−γt})/
//! (1 − e^{−γ}), at the *planned* information fractions t_k = looks[k]/n_max (Lan & DeMets
//! 1983), and are calibrated for the pairs *realised* at each look: c_k is the value that
//! |T| of a null path first crosses at look k with probability α(t_k) − α(t_{k−1}), where the
//! path's statistic at look j uses n_j pairs. Because the t statistic is pivotal under the
//! null and failures do not depend on the scores, this keeps the error rate at α whatever
//! fails (a look with all its new runs failed spends its share and adds no information; a
//! look with fewer than 2 pairs is skipped and its share carried over). Boundaries for
//! earlier looks never change when a later one is made, so a verdict once reached stays.
//! - The first look made is a plain t statistic: c_1 is the exact t quantile with n_1 − 1
//!   degrees of freedom.
//! - Later looks come from [`NULL_PATHS`] simulated null paths of N(0, 1) differences
//!   (seeded; the same in every run): |T| of each path at every number of pairs, so one
//!   simulation serves every pattern of failures. Normal theory would roughly double the
//!   error rate at these n (Jennison & Turnbull 1991, Biometrika 78:133).
//!
//! Verdicts read off the interval:
//! - a directional claim (`higher`/`lower`) is reproduced when the repeated 1 − α interval
//!   is on the claimed side of 0, contradicted when it is on the other side;
//! - a `same` claim is the two one-sided tests (TOST; Schuirmann 1987), each at α: reproduced
//!   (equivalent) when the repeated 1 − 2α interval lies inside (−Δ, Δ), contradicted when
//!   it lies outside [−Δ, Δ] (sequential form: Jennison & Turnbull 1993, Biometrics 49:31).
//!
//! A claim's repeated p-value is the smallest level at which some look made is decisive,
//! found by bisection on the same boundaries that draw its interval, so a verdict and its
//! printed interval cannot disagree. Holm's step-down over the study's claims uses it
//! (crate::claims).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::dist::{t_cdf, t_quantile};
use crate::rng::Rng;

/// The Hwang–Shih–DeCani parameter: γ = −2 spends little error early (conservative first
/// looks, when 3 seeds say little) and most of it late.
pub const HSD_GAMMA: f64 = -2.0;
/// Simulated null paths behind the boundaries of every look after the first.
pub const NULL_PATHS: usize = 400_000;
/// The most |T| values one simulation keeps (32 MB): plans beyond 21 seeds get
/// proportionally fewer paths.
const MAX_STATISTICS: usize = 8_000_000;
/// The generator's seed for the null paths: boundaries are the same in every run.
const PATHS_SEED: u64 = 0x00C1_A1A5_5EED;

/// α spent by information fraction `t` (Hwang–Shih–DeCani, γ = [`HSD_GAMMA`]).
pub fn spent(alpha: f64, t: f64) -> f64 {
    let g = HSD_GAMMA;
    alpha * (1.0 - (-g * t).exp()) / (1.0 - (-g).exp())
}

/// When a claim is looked at, and its error rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// Numbers of paired seeds at which the claim is analysed, increasing; the last is the
    /// most the claim will get.
    pub looks: Vec<usize>,
    /// The error rate of the claim's own procedure (two-sided; each direction α/2).
    pub alpha: f64,
}

impl Design {
    /// One look after `n` seeds: the fixed-sample paired t interval.
    pub fn fixed(n: usize, alpha: f64) -> Self {
        Self {
            looks: vec![n],
            alpha,
        }
    }

    /// Looks at `min`, `min + batch`, … and `max` seeds.
    pub fn sequential(min: usize, max: usize, batch: usize, alpha: f64) -> Self {
        let mut looks = Vec::new();
        let mut n = min;
        while n < max {
            looks.push(n);
            n += batch.max(1);
        }
        looks.push(max);
        Self { looks, alpha }
    }

    pub fn max_n(&self) -> usize {
        self.looks.last().copied().unwrap_or(0)
    }

    /// Every look with all its planned pairs (no run failed).
    pub fn complete(&self) -> Vec<LookAt> {
        self.looks
            .iter()
            .enumerate()
            .filter(|(_, &n)| n >= 2)
            .map(|(index, &pairs)| LookAt { index, pairs })
            .collect()
    }

    /// The critical values c_k at this design's α when every run succeeds.
    pub fn bounds(&self) -> Vec<f64> {
        self.bounds_at(self.alpha)
    }

    /// The critical values at level `u` when every run succeeds.
    pub fn bounds_at(&self, u: f64) -> Vec<f64> {
        boundaries(&self.looks, &self.complete(), u)
    }
}

/// A look as it was made: which planned look (index into [`Design::looks`]) and how many
/// valid pairs it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LookAt {
    pub index: usize,
    pub pairs: usize,
}

/// |T| of simulated null paths (i.i.d. N(0, 1) differences) after every number of pairs
/// from 2 to `n_max`: any pattern of valid pairs is a choice of columns.
#[derive(Debug)]
pub struct NullPaths {
    n_max: usize,
    count: usize,
    /// Column-major: the |T| of every path after n pairs at `(n − 2)·count ..`.
    abs_t: Vec<f32>,
}

impl NullPaths {
    /// `count` paths of `n_max` differences from the generator seeded with `seed`.
    pub fn simulate(n_max: usize, count: usize, seed: u64) -> Self {
        let n_max = n_max.max(2);
        let mut abs_t = vec![0f32; count * (n_max - 1)];
        let mut rng = Rng::new(seed);
        for p in 0..count {
            // Welford's running mean and sum of squares.
            let (mut mean, mut m2) = (0.0f64, 0.0f64);
            for i in 1..=n_max {
                let x = rng.normal();
                let delta = x - mean;
                mean += delta / i as f64;
                m2 += delta * (x - mean);
                if i >= 2 {
                    let sd = (m2 / (i - 1) as f64).sqrt();
                    abs_t[(i - 2) * count + p] = (mean / (sd / (i as f64).sqrt())).abs() as f32;
                }
            }
        }
        Self {
            n_max,
            count,
            abs_t,
        }
    }

    /// The paths every decision with up to `n_max` pairs uses ([`NULL_PATHS`] of them, fewer
    /// beyond 21 pairs), simulated once per `n_max`.
    pub fn shared(n_max: usize) -> Arc<Self> {
        static CACHE: OnceLock<Mutex<HashMap<usize, Arc<NullPaths>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
        let count = NULL_PATHS.min(MAX_STATISTICS / n_max.max(3).saturating_sub(1));
        Arc::clone(
            guard
                .entry(n_max)
                .or_insert_with(|| Arc::new(Self::simulate(n_max, count, PATHS_SEED))),
        )
    }

    fn column(&self, pairs: usize) -> &[f32] {
        let j = pairs.clamp(2, self.n_max) - 2;
        &self.abs_t[j * self.count..(j + 1) * self.count]
    }

    /// Walks the looks `made` at level `u`, giving `visit` each look's number (in `made`)
    /// and critical value until it returns true.
    pub fn walk(
        &self,
        planned: &[usize],
        made: &[LookAt],
        u: f64,
        mut visit: impl FnMut(usize, f64) -> bool,
    ) {
        let n_max = planned.last().copied().unwrap_or(1).max(1) as f64;
        let mut before = 0.0;
        // The paths that have not crossed yet; `None` before the first look.
        let mut alive: Option<Vec<u32>> = None;
        let mut buf: Vec<f32> = Vec::new();
        for (k, look) in made.iter().enumerate() {
            let now = spent(
                u,
                planned.get(look.index).copied().unwrap_or(0) as f64 / n_max,
            );
            let share = (now - before).max(0.0);
            before = now;
            let col = self.column(look.pairs);
            let c = match &mut alive {
                None => {
                    let c = first_bound(share, look.pairs);
                    if k + 1 < made.len() {
                        alive = Some(
                            (0..self.count as u32)
                                .filter(|&i| f64::from(col[i as usize]) < c)
                                .collect(),
                        );
                    }
                    c
                }
                Some(live) => {
                    let m = (share * self.count as f64).round() as usize;
                    buf.clear();
                    buf.extend(live.iter().map(|&i| col[i as usize]));
                    let c = if m == 0 || buf.is_empty() {
                        f64::INFINITY
                    } else if m >= buf.len() {
                        0.0
                    } else {
                        let (_, v, _) = buf.select_nth_unstable_by(m - 1, |a, b| b.total_cmp(a));
                        f64::from(*v)
                    };
                    if k + 1 < made.len() {
                        live.retain(|&i| f64::from(col[i as usize]) < c);
                    }
                    c
                }
            };
            if visit(k, c) {
                return;
            }
        }
    }

    /// The critical value of every look made, at level `u`.
    pub fn boundaries(&self, planned: &[usize], made: &[LookAt], u: f64) -> Vec<f64> {
        let mut out = Vec::with_capacity(made.len());
        self.walk(planned, made, u, |_, c| {
            out.push(c);
            false
        });
        out
    }
}

/// The first look's critical value: the exact two-sided t quantile for error `share`.
fn first_bound(share: f64, pairs: usize) -> f64 {
    let df = pairs.saturating_sub(1).max(1) as f64;
    if share <= 0.0 {
        f64::INFINITY
    } else if share >= 1.0 {
        0.0
    } else {
        t_quantile(1.0 - share / 2.0, df)
    }
}

/// The critical values of the looks `made` of a plan with looks `planned`, at level `u`
/// (cached: decisions ask for a few levels many times).
pub fn boundaries(planned: &[usize], made: &[LookAt], u: f64) -> Vec<f64> {
    type Key = (Vec<usize>, Vec<LookAt>, u64);
    static CACHE: OnceLock<Mutex<HashMap<Key, Vec<f64>>>> = OnceLock::new();
    let key = (planned.to_vec(), made.to_vec(), u.to_bits());
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(b) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return b.clone();
    }
    let b = compute(planned, made, u);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, b.clone());
    b
}

fn compute(planned: &[usize], made: &[LookAt], u: f64) -> Vec<f64> {
    match made {
        [] => Vec::new(),
        // One look needs no simulation.
        [only] => {
            let n_max = planned.last().copied().unwrap_or(1).max(1) as f64;
            let t = planned.get(only.index).copied().unwrap_or(0) as f64 / n_max;
            vec![first_bound(spent(u, t), only.pairs)]
        }
        _ => NullPaths::shared(planned.last().copied().unwrap_or(2)).boundaries(planned, made, u),
    }
}

/// The first look made that is decisive at level `u` for the statistics `stats` (one per
/// look made), computed afresh (no cache; for bisection).
pub fn first_decisive(planned: &[usize], made: &[LookAt], stats: &[f64], u: f64) -> Option<usize> {
    let mut hit = None;
    let mut check = |k: usize, c: f64| {
        if stats.get(k).is_some_and(|&s| s >= c) {
            hit = Some(k);
            true
        } else {
            false
        }
    };
    if made.len() == 1 {
        check(0, compute(planned, made, u)[0]);
    } else if !made.is_empty() {
        NullPaths::shared(planned.last().copied().unwrap_or(2)).walk(planned, made, u, check);
    }
    hit
}

/// The two-sided p-value of a plain t statistic with `pairs − 1` degrees of freedom.
pub fn t_p(stat: f64, pairs: usize) -> f64 {
    let df = pairs.saturating_sub(1).max(1) as f64;
    (2.0 * (1.0 - t_cdf(stat, df))).clamp(0.0, 1.0)
}

/// The level of the repeated interval a claim is read from at family level `u`: 1 − u for
/// directional claims, 1 − 2u for `same` claims (TOST: each one-sided test at u).
pub fn interval_level(same: bool, u: f64) -> f64 {
    if same {
        (2.0 * u).min(1.0)
    } else {
        u
    }
}

/// What an interval shows about a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Entirely above 0 (directional claims).
    Above,
    /// Entirely below 0.
    Below,
    /// Inside (−Δ, Δ) (`same` claims: equivalent).
    Inside,
    /// Outside [−Δ, Δ] (`same` claims: different).
    Outside,
}

/// One look at a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// The design's look number (0-based) and its planned number of seeds.
    pub index: usize,
    pub planned: usize,
    /// Pairs actually used (fewer than planned when runs failed or were excluded).
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    /// The distance in standard errors that decides the look ([`statistic`]) and the event
    /// it points to.
    pub stat: f64,
    pub event: Event,
    /// The confidence of the interval (0.95 for directional claims at α = 0.05, 0.90 for
    /// `same` claims), its critical value, and the interval.
    pub confidence: f64,
    pub bound: f64,
    pub low: f64,
    pub high: f64,
}

impl Look {
    /// Whether the look is decisive at the claim's own level.
    pub fn decisive(&self) -> bool {
        self.stat >= self.bound
    }

    pub fn at(&self) -> LookAt {
        LookAt {
            index: self.index,
            pairs: self.n,
        }
    }
}

/// The statistic in standard errors that decides a look, and the event it would give:
/// for directional claims |d̄|/se (above or below 0), for `same` claims the distance of
/// d̄ from ±Δ (inside or outside).
pub fn statistic(same: bool, margin: f64, mean: f64, se: f64) -> (f64, Event) {
    let (distance, event) = if same {
        let inside = margin - mean.abs();
        (
            inside.abs(),
            if inside > 0.0 {
                Event::Inside
            } else {
                Event::Outside
            },
        )
    } else {
        (
            mean.abs(),
            if mean > 0.0 {
                Event::Above
            } else {
                Event::Below
            },
        )
    };
    let stat = if se > 0.0 {
        distance / se
    } else if distance != 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    (stat, event)
}

/// Mean and sample standard deviation.
pub fn mean_sd(d: &[f64]) -> (f64, f64) {
    let n = d.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64).sqrt();
    (mean, sd)
}

/// The looks a claim has reached: `pairs` are per seed in seed order (`None`: no valid
/// pair for that seed), and look k is made once `looks[k]` seeds are in and it has at
/// least 2 valid pairs. Intervals are at the claim's own level ([`interval_level`]).
pub fn looks_made(same: bool, margin: f64, pairs: &[Option<f64>], design: &Design) -> Vec<Look> {
    let level = interval_level(same, design.alpha);
    let mut out = Vec::new();
    for (k, &planned) in design.looks.iter().enumerate() {
        if pairs.len() < planned {
            break;
        }
        let d: Vec<f64> = pairs[..planned].iter().flatten().copied().collect();
        let n = d.len();
        if n < 2 {
            continue;
        }
        let (mean, sd) = mean_sd(&d);
        let (stat, event) = statistic(same, margin, mean, sd / (n as f64).sqrt());
        out.push(Look {
            index: k,
            planned,
            n,
            mean,
            sd,
            stat,
            event,
            confidence: 1.0 - level,
            bound: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        });
    }
    let made: Vec<LookAt> = out.iter().map(Look::at).collect();
    let bounds = boundaries(&design.looks, &made, level);
    for (l, c) in out.iter_mut().zip(bounds) {
        let se = l.sd / (l.n as f64).sqrt();
        l.bound = c;
        l.low = l.mean - c * se;
        l.high = l.mean + c * se;
    }
    out
}

/// Probability, by simulation from N(d̄, s²), that some remaining look of `design` would
/// be decisive at level `level` (every future run succeeding): the conditional power that
/// futility stopping uses.
pub fn conditional_power(
    same: bool,
    margin: f64,
    observed: &[f64],
    design: &Design,
    level: f64,
    sims: usize,
) -> f64 {
    let n0 = observed.len();
    if n0 < 2 {
        return 1.0;
    }
    let (mean, sd) = mean_sd(observed);
    let future: Vec<(usize, usize)> = design
        .looks
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > n0)
        .map(|(k, &n)| (k, n))
        .collect();
    if future.is_empty() {
        return 0.0;
    }
    let bounds = design.bounds_at(interval_level(same, level));
    let seed = observed.iter().fold(0x00C0_4D17_u64, |h, x| {
        (h ^ x.to_bits()).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = Rng::new(seed);
    let mut hits = 0;
    for _ in 0..sims {
        let mut d = observed.to_vec();
        for &(k, n) in &future {
            while d.len() < n {
                d.push(mean + sd * rng.normal());
            }
            let (m, s) = mean_sd(&d);
            let (stat, _) = statistic(same, margin, m, s / (n as f64).sqrt());
            if stat >= bounds[k] {
                hits += 1;
                break;
            }
        }
    }
    hits as f64 / sims.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_reaches_alpha_at_the_end() {
        assert!((spent(0.05, 1.0) - 0.05).abs() < 1e-15);
        assert!(
            spent(0.05, 0.3) < 0.05 * 0.3,
            "γ = −2 spends less than linear early"
        );
    }

    #[test]
    fn looks_follow_min_batch_max() {
        assert_eq!(Design::sequential(3, 10, 2, 0.05).looks, [3, 5, 7, 9, 10]);
        assert_eq!(Design::sequential(3, 3, 2, 0.05).looks, [3]);
        assert_eq!(Design::sequential(3, 7, 2, 0.05).looks, [3, 5, 7]);
    }

    #[test]
    fn one_look_is_the_paired_t_interval() {
        let b = Design::fixed(5, 0.05).bounds();
        assert!((b[0] - 2.776_445_105).abs() < 1e-6);
        assert!((t_p(2.776_445_105, 5) - 0.05).abs() < 1e-9);
        // One of the five runs failed: the interval of 4 pairs, t with 3 df.
        let four = boundaries(&[5], &[LookAt { index: 0, pairs: 4 }], 0.05);
        assert!((four[0] - 3.182_446_305).abs() < 1e-6, "{four:?}");
    }

    /// The first look is exact: t(2) at the α that γ = −2 spends by 3 of 10 seeds (12.40);
    /// the notes' quick simulation gave ≈ 4.88, 3.48, 2.50 for looks 5, 7, 10.
    #[test]
    fn boundaries_match_the_exact_first_look_and_the_quick_simulation() {
        let b = Design {
            looks: vec![3, 5, 7, 10],
            alpha: 0.05,
        }
        .bounds();
        let exact = t_quantile(1.0 - spent(0.05, 0.3) / 2.0, 2.0);
        assert!((b[0] - exact).abs() < 1e-9 && (exact - 12.40).abs() < 0.01);
        for (got, want) in b[1..].iter().zip([4.88, 3.48, 2.50]) {
            assert!((got / want - 1.0).abs() < 0.03, "{b:?}");
        }
    }

    /// Fewer pairs than planned at a look give a wider boundary there; the looks before it
    /// keep theirs.
    #[test]
    fn failed_runs_widen_the_boundary_of_their_look_only() {
        let planned = [3, 5, 7, 10];
        let all = boundaries(
            &planned,
            &[LookAt { index: 0, pairs: 3 }, LookAt { index: 1, pairs: 5 }],
            0.05,
        );
        let lost = boundaries(
            &planned,
            &[LookAt { index: 0, pairs: 3 }, LookAt { index: 1, pairs: 4 }],
            0.05,
        );
        assert_eq!(all[0], lost[0]);
        assert!(lost[1] > all[1], "{all:?} {lost:?}");
    }

    /// Boundaries fall as the level rises, so "decisive at level u" is monotone in u and
    /// the p-value found by bisection is the verdict's.
    #[test]
    fn boundaries_fall_with_the_level() {
        let planned = [3, 4, 5, 6];
        let made = [
            LookAt { index: 0, pairs: 3 },
            LookAt { index: 1, pairs: 3 },
            LookAt { index: 2, pairs: 5 },
            LookAt { index: 3, pairs: 5 },
        ];
        let paths = NullPaths::shared(6);
        let mut last = vec![f64::INFINITY; 4];
        for i in 1..=60 {
            let u = 10f64.powf(-4.0 + 4.0 * f64::from(i) / 60.0);
            let b = paths.boundaries(&planned, &made, u);
            for (now, before) in b.iter().zip(&last) {
                assert!(now <= before, "u {u}: {b:?} after {last:?}");
            }
            last = b;
        }
    }
}

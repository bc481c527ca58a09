//! A group-sequential paired t design for deciding a claim with as few seeds as possible
//! while keeping its error rate under repeated looks.
//!
//! Per claim, the paired differences d_i = variant − baseline (same seed) are looked at
//! after `looks[0] < looks[1] < … < looks[K-1] = n_max` seeds. At look k, with n pairs,
//! d̄, s and se = s/√n, the repeated confidence interval (Jennison & Turnbull 1989) is
//! d̄ ± c_k·se. The critical values c_k spend the error rate α over the looks with the
//! Hwang–Shih–DeCani function (γ = −2; Hwang, Shih & DeCani 1990, Stat Med 9:1439):
//! α(t) = α·(1 − e^{−γt})/(1 − e^{−γ}), t = n_k / n_max (Lan & DeMets 1983). Because the t
//! statistic is pivotal under the null, the c_k are calibrated exactly by simulation rather
//! than taken from normal theory, which at these n would double the error rate
//! (Jennison & Turnbull 1991, Biometrika 78:133; Rom & McTague 2020): [`NULL_PATHS`] null
//! paths of N(0, 1) differences, at each look c_k is the value that the largest
//! round(N·(α(t_k) − α(t_{k−1}))) |T_k| of the paths still alive reach, and those paths are
//! removed. The interval then covers the true mean difference at every look at once with
//! probability 1 − α, so the verdicts read off it keep α in total, whenever the analysis
//! stops:
//! - a directional claim (`higher`/`lower`) is reproduced when the interval is on the
//!   claimed side of 0, contradicted when it is on the other side;
//! - a `same` claim is reproduced (equivalent) when the interval lies inside (−Δ, Δ), and
//!   contradicted when it lies outside [−Δ, Δ] (a sequential TOST: each one-sided test at
//!   α/2; Jennison & Turnbull 1993, Biometrics 49:31).
//!
//! A single look (a fixed list of seeds) is the classic paired t interval, computed exactly.
//! The repeated p-value of a claim (the smallest level at which some look actually made
//! would have been decisive) is read off a table of critical values over a grid of levels;
//! Holm's step-down over the study's claims uses it (crate::claims).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::dist::{t_cdf, t_quantile};
use crate::rng::Rng;

/// The Hwang–Shih–DeCani parameter: γ = −2 spends little error early (conservative first
/// looks, when 3 seeds say little) and most of it late.
pub const HSD_GAMMA: f64 = -2.0;
/// Simulated null paths per look schedule.
pub const NULL_PATHS: usize = 200_000;
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

    /// The critical values c_k at this design's α.
    pub fn bounds(&self) -> Vec<f64> {
        table(&self.looks).critical(self.alpha)
    }
}

/// Critical values of |T| per look over a grid of levels, from the simulated null paths
/// (exact t quantiles for a single look).
#[derive(Debug)]
pub struct BoundaryTable {
    looks: Vec<usize>,
    /// |T_k| of each null path at each look (path-major), when there are several looks.
    paths: Vec<f32>,
    /// Ascending levels.
    levels: Vec<f64>,
    /// `crit[i][k]`: the critical value at look k for level `levels[i]`.
    crit: Vec<Vec<f64>>,
    /// Critical values already computed for exact levels (each costs a pass over the paths).
    exact: Mutex<HashMap<u64, Vec<f64>>>,
}

/// The (cached) table of a look schedule.
pub fn table(looks: &[usize]) -> Arc<BoundaryTable> {
    static CACHE: OnceLock<Mutex<HashMap<Vec<usize>, Arc<BoundaryTable>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    Arc::clone(
        guard
            .entry(looks.to_vec())
            .or_insert_with(|| Arc::new(BoundaryTable::new(looks))),
    )
}

impl BoundaryTable {
    fn new(looks: &[usize]) -> Self {
        // 160 levels from 1e-5 to 1, log-spaced.
        let levels: Vec<f64> = (0..=160)
            .map(|i| 10f64.powf(-5.0 + 5.0 * i as f64 / 160.0))
            .collect();
        let paths = if looks.len() > 1 {
            simulate(looks, NULL_PATHS, PATHS_SEED)
        } else {
            Vec::new()
        };
        let mut t = BoundaryTable {
            looks: looks.to_vec(),
            paths,
            levels,
            crit: Vec::new(),
            exact: Mutex::new(HashMap::new()),
        };
        t.crit = t.levels.iter().map(|&u| t.compute(u)).collect();
        t
    }

    /// The critical values at level `u` (computed once per level).
    pub fn critical(&self, u: f64) -> Vec<f64> {
        let mut cache = self.exact.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(u.to_bits())
            .or_insert_with(|| self.compute(u))
            .clone()
    }

    fn compute(&self, u: f64) -> Vec<f64> {
        if self.looks.len() == 1 {
            let df = self.looks[0].saturating_sub(1).max(1) as f64;
            return vec![t_quantile(1.0 - u / 2.0, df)];
        }
        let k = self.looks.len();
        let n = self.paths.len() / k;
        let n_max = self.looks[k - 1] as f64;
        let mut alive = vec![true; n];
        let mut prev = 0.0;
        let mut out = Vec::with_capacity(k);
        let mut buf: Vec<f32> = Vec::with_capacity(n);
        for j in 0..k {
            let now = spent(u, self.looks[j] as f64 / n_max);
            let m = ((now - prev) * n as f64).round() as usize;
            prev = now;
            buf.clear();
            buf.extend((0..n).filter(|&i| alive[i]).map(|i| self.paths[i * k + j]));
            let c = if m == 0 || buf.is_empty() {
                f64::INFINITY
            } else if m >= buf.len() {
                0.0
            } else {
                let (_, v, _) = buf.select_nth_unstable_by(m - 1, |a, b| b.total_cmp(a));
                f64::from(*v)
            };
            for (i, a) in alive.iter_mut().enumerate() {
                if *a && f64::from(self.paths[i * k + j]) >= c {
                    *a = false;
                }
            }
            out.push(c);
        }
        out
    }

    /// The smallest level at which look `k` would be decisive for statistic `stat` (a
    /// |T|-like distance from the decision boundary in standard errors); 1 if none.
    pub fn level_for(&self, k: usize, stat: f64) -> f64 {
        if stat.is_nan() || stat <= 0.0 {
            return 1.0;
        }
        if self.looks.len() == 1 {
            let df = self.looks[0].saturating_sub(1).max(1) as f64;
            return (2.0 * (1.0 - t_cdf(stat, df))).min(1.0);
        }
        // crit[·][k] decreases with the level: find the first level whose value ≤ stat.
        let first = self.crit.iter().position(|c| c[k] <= stat);
        match first {
            None => 1.0,
            Some(0) => self.levels[0],
            Some(i) => {
                let (c0, c1) = (self.crit[i - 1][k], self.crit[i][k]);
                let (l0, l1) = (self.levels[i - 1].ln(), self.levels[i].ln());
                if !c0.is_finite() || c0 <= c1 {
                    return self.levels[i];
                }
                let w = ((c0 - stat) / (c0 - c1)).clamp(0.0, 1.0);
                (l0 + w * (l1 - l0)).exp()
            }
        }
    }
}

/// |T| at each look for `paths` null paths of N(0, 1) differences (path-major, f32).
fn simulate(looks: &[usize], paths: usize, seed: u64) -> Vec<f32> {
    let k = looks.len();
    let n_max = looks[k - 1];
    let mut out = vec![0f32; paths * k];
    let mut rng = Rng::new(seed);
    for p in 0..paths {
        // Welford's running mean and sum of squares.
        let (mut mean, mut m2) = (0.0f64, 0.0f64);
        let mut j = 0;
        for i in 1..=n_max {
            let x = rng.normal();
            let delta = x - mean;
            mean += delta / i as f64;
            m2 += delta * (x - mean);
            if j < k && i == looks[j] {
                let sd = (m2 / (i - 1).max(1) as f64).sqrt();
                let t = mean / (sd / (i as f64).sqrt());
                out[p * k + j] = t.abs() as f32;
                j += 1;
            }
        }
    }
    out
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
    /// The critical value at the design's α, and the repeated interval it gives.
    pub bound: f64,
    pub low: f64,
    pub high: f64,
    /// The smallest level at which this look would have been decisive, and how.
    pub p: f64,
    pub event: Option<Event>,
}

/// The statistic in standard errors that decides a look, and the event it would give:
/// for directional claims |d̄|/se (above or below 0), for `same` claims the distance of
/// d̄ from ±Δ (inside or outside).
pub fn statistic(same: bool, margin: f64, mean: f64, se: f64) -> (f64, Event) {
    if same {
        let inside = margin - mean.abs();
        let stat = if se > 0.0 {
            inside.abs() / se
        } else if inside != 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        (
            stat,
            if inside > 0.0 {
                Event::Inside
            } else {
                Event::Outside
            },
        )
    } else {
        let stat = if se > 0.0 {
            mean.abs() / se
        } else if mean != 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        (
            stat,
            if mean > 0.0 {
                Event::Above
            } else {
                Event::Below
            },
        )
    }
}

/// The looks a claim has reached: `pairs` are per seed in seed order (`None`: no valid
/// pair for that seed), and look k is made once `looks[k]` seeds are in.
pub fn looks_made(same: bool, margin: f64, pairs: &[Option<f64>], design: &Design) -> Vec<Look> {
    let tab = table(&design.looks);
    let bounds = design.bounds();
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
        let mean = d.iter().sum::<f64>() / n as f64;
        let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let se = sd / (n as f64).sqrt();
        let (stat, event) = statistic(same, margin, mean, se);
        let p = tab.level_for(k, stat);
        let decisive_now = stat >= bounds[k];
        out.push(Look {
            index: k,
            planned,
            n,
            mean,
            sd,
            bound: bounds[k],
            low: mean - bounds[k] * se,
            high: mean + bounds[k] * se,
            p,
            event: (decisive_now || p < 1.0).then_some(event),
        });
    }
    out
}

/// Probability, by simulation from N(d̄, s²), that some remaining look of `design` would
/// be decisive at level `level`: the conditional power that futility stopping uses.
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
    let mean = observed.iter().sum::<f64>() / n0 as f64;
    let sd = (observed.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n0 - 1) as f64).sqrt();
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
    let bounds = table(&design.looks).critical(level);
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
            let m = d.iter().sum::<f64>() / n as f64;
            let s = (d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
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
        let d = Design::fixed(5, 0.05);
        let b = d.bounds();
        assert!((b[0] - 2.776_445_105).abs() < 1e-6);
        let tab = table(&[5]);
        assert!((tab.level_for(0, 2.776_445_105) - 0.05).abs() < 1e-6);
    }

    /// The notes' quick simulation gave ≈ 12.1, 4.88, 3.48, 2.50 for looks 3, 5, 7, 10.
    #[test]
    fn boundaries_match_the_published_quick_simulation() {
        let b = Design {
            looks: vec![3, 5, 7, 10],
            alpha: 0.05,
        }
        .bounds();
        for (got, want) in b.iter().zip([12.1, 4.88, 3.48, 2.50]) {
            assert!((got / want - 1.0).abs() < 0.06, "{b:?}");
        }
        // Levels read back from the table agree with the boundaries they came from.
        let tab = table(&[3, 5, 7, 10]);
        for (k, c) in b.iter().enumerate() {
            let u = tab.level_for(k, *c);
            assert!((u / 0.05 - 1.0).abs() < 0.05, "look {k}: {u}");
        }
    }
}

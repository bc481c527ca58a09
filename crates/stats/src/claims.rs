//! Deciding a study's claims together: each claim's group-sequential analysis
//! ([`crate::sequential`]), Holm's step-down over the claims' repeated p-values (family-wise
//! error rate α, any dependence, a shared baseline included; Holm 1979), non-binding
//! futility, and which claims need more seeds next.
//!
//! A claim is decided once Holm rejects it: its repeated p-value is valid whenever the
//! analysis stops (a repeated confidence interval covers at every look), p-values only fall
//! as looks are added, and Holm is monotone in them, so a decision never has to be taken
//! back when other claims get more seeds. Undecided claims get their next look, unless
//! futility says the remaining seeds would not decide them (conditional power below 10 %
//! for directional claims; for `same` claims, from 5 seeds on, the interval at the most
//! seeds with today's spread would still be wider than the margin). Futility is
//! non-binding: the error rates are computed without it, so stopping early only ever
//! lowers them.

use serde::Serialize;
use spec::Expect;

use crate::fixed::holm;
use crate::sequential::{
    boundaries, conditional_power, first_decisive, interval_level, looks_made, Design, Event, Look,
    LookAt,
};

/// Conditional power below which a directional claim stops as futile.
pub const FUTILITY_POWER: f64 = 0.10;
/// Seeds before an equivalence claim may stop as futile.
pub const FUTILITY_MIN_SEEDS: usize = 5;
const FUTILITY_SIMS: usize = 2000;

/// One claim's data: the paired differences per seed, in seed order (`None` for a seed
/// whose pair is missing: a failed run, or a diverged run under the `exclude` policy).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimData {
    pub expect: Expect,
    pub margin: f64,
    pub pairs: Vec<Option<f64>>,
    pub design: Design,
}

/// Where a claim stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Decision {
    /// The claim holds (for `same`: equivalent within ±margin).
    Reproduced { why: String },
    /// The opposite holds (for `same`: the difference exceeds the margin).
    Contradicted { why: String },
    /// More seeds cannot decide it (non-binding futility); `why` says what was seen.
    Futile { why: String },
    /// Its seeds are all run (or its list of seeds is fixed) and it is not decided.
    Undecided { why: String },
    /// Not decided yet: run up to `next_seeds` seeds.
    Continue { next_seeds: usize },
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Reproduced { .. } => "reproduced",
            Decision::Contradicted { .. } => "contradicted",
            Decision::Futile { .. } => "futile",
            Decision::Undecided { .. } => "inconclusive",
            Decision::Continue { .. } => "running",
        }
    }

    pub fn is_final(&self) -> bool {
        !matches!(self, Decision::Continue { .. })
    }
}

/// A claim's analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimAnalysis {
    pub looks: Vec<Look>,
    /// The repeated p-value (smallest level decisive at a look made; 1 with none).
    pub p: f64,
    /// Holm-adjusted over the study's claims.
    pub p_holm: f64,
    pub decision: Decision,
    /// Half-width of the latest interval over the margin: the order in which undecided
    /// claims get their next seeds (widest first).
    pub width_over_margin: f64,
}

impl ClaimAnalysis {
    pub fn latest(&self) -> Option<&Look> {
        self.looks.last()
    }
}

/// How finely [`decide_with`] computes each claim's repeated p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PValues {
    /// By bisection to 1e-4 relative (a few milliseconds per claim): what reports print.
    Exact,
    /// Only as finely as the decisions need: the smallest of Holm's thresholds α/m, …,
    /// α/2, α at which the claim is decisive, or 1 (for simulations and the runner).
    Decisions,
}

/// What [`decide_with`] does besides deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Stop undecided claims that more seeds would not decide (non-binding).
    pub futility: bool,
    pub p_values: PValues,
}

/// Analyses every claim of a study at family-wise level `alpha`, futility on, exact
/// p-values.
pub fn decide(claims: &[ClaimData], alpha: f64) -> Vec<ClaimAnalysis> {
    decide_with(
        claims,
        alpha,
        Options {
            futility: true,
            p_values: PValues::Exact,
        },
    )
}

/// Holm's j-th threshold α/j; decisions and p-values use these same numbers, so a p-value
/// equal to one decides exactly as the boundary at that level does.
fn holm_threshold(alpha: f64, j: usize) -> f64 {
    alpha / j.max(1) as f64
}

/// [`decide`] with `options`; `futility: false` never stops an undecided claim early (the
/// design the error rates are computed for; futility only lowers them).
pub fn decide_with(claims: &[ClaimData], alpha: f64, options: Options) -> Vec<ClaimAnalysis> {
    let m = claims.len().max(1);
    let thresholds: Vec<f64> = (1..=m).rev().map(|j| holm_threshold(alpha, j)).collect();
    let per: Vec<(Vec<Look>, f64)> = claims
        .iter()
        .map(|c| {
            let same = c.expect == Expect::Same;
            let looks = looks_made(same, c.margin, &c.pairs, &c.design);
            let p = repeated_p(c, &looks, &thresholds, options.p_values);
            (looks, p)
        })
        .collect();
    let ps: Vec<f64> = per.iter().map(|(_, p)| *p).collect();
    let rejected = holm_rejects(&ps, alpha);
    let adjusted = holm(&ps, alpha);
    let undecided = rejected.iter().filter(|r| !**r).count().max(1);
    claims
        .iter()
        .zip(per)
        .zip(adjusted.into_iter().zip(rejected))
        .map(|((c, (looks, p)), ((p_holm, _), rejected))| {
            let decision = if rejected {
                decided(c, &looks, p)
            } else {
                open(c, &looks, alpha / undecided as f64, options.futility)
            };
            let width_over_margin = looks
                .last()
                .map(|l| (l.high - l.low) / 2.0 / c.margin.max(1e-9))
                .unwrap_or(f64::INFINITY);
            ClaimAnalysis {
                looks,
                p,
                p_holm,
                decision,
                width_over_margin,
            }
        })
        .collect()
}

/// Holm's step-down (Holm 1979): the i-th smallest p-value is rejected while every one
/// before it was and it is at most α/(m − i), compared with the very thresholds the
/// p-values were bracketed by.
fn holm_rejects(ps: &[f64], alpha: f64) -> Vec<bool> {
    let m = ps.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]).then(a.cmp(&b)));
    let mut out = vec![false; m];
    for (rank, &i) in order.iter().enumerate() {
        if ps[i] > holm_threshold(alpha, m - rank) {
            break;
        }
        out[i] = true;
    }
    out
}

/// The first look made that is decisive at family level `u`: from the cached boundaries
/// (`cached`, for the few levels decisions use) or computed afresh (bisection).
fn decisive_at(c: &ClaimData, looks: &[Look], u: f64, cached: bool) -> Option<usize> {
    let level = interval_level(c.expect == Expect::Same, u);
    let made: Vec<LookAt> = looks.iter().map(Look::at).collect();
    if cached {
        boundaries(&c.design.looks, &made, level)
            .iter()
            .zip(looks)
            .position(|(b, l)| l.stat >= *b)
    } else {
        let stats: Vec<f64> = looks.iter().map(|l| l.stat).collect();
        first_decisive(&c.design.looks, &made, &stats, level)
    }
}

/// The claim's repeated p-value: the smallest level at which a look made is decisive (1
/// with none). Bracketed by Holm's thresholds (so p ≤ α/j exactly when the boundary at
/// α/j is crossed), then refined by bisection for [`PValues::Exact`].
fn repeated_p(c: &ClaimData, looks: &[Look], thresholds: &[f64], precision: PValues) -> f64 {
    if looks.is_empty() {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for &t in thresholds {
        if decisive_at(c, looks, t, true).is_some() {
            hi = t;
            break;
        }
        lo = t;
    }
    if hi >= 1.0 && decisive_at(c, looks, 1.0, true).is_none() {
        return 1.0;
    }
    if precision == PValues::Decisions {
        return hi;
    }
    let mut lo = lo.max(hi * 1e-12);
    while hi / lo > 1.0 + 1e-4 {
        let mid = (lo * hi).sqrt();
        if decisive_at(c, looks, mid, false).is_some() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

fn describe(l: &Look) -> String {
    let seeds = if l.n < l.planned {
        format!("{} valid pairs of {} seeds", l.n, l.planned)
    } else {
        format!("{} seeds", l.n)
    };
    format!(
        "after {seeds}: mean difference {:+.2}, repeated {:.0}% interval [{:.2}, {:.2}]",
        l.mean,
        100.0 * l.confidence,
        l.low,
        l.high
    )
}

/// The verdict of a rejected claim, from the look that decided it.
fn decided(c: &ClaimData, looks: &[Look], p: f64) -> Decision {
    let Some(l) = decisive_at(c, looks, p, true).and_then(|k| looks.get(k)) else {
        return Decision::Undecided {
            why: "no look decided it".into(),
        };
    };
    let why = describe(l);
    match (c.expect, l.event) {
        (Expect::Higher, Event::Above)
        | (Expect::Lower, Event::Below)
        | (Expect::Same, Event::Inside) => Decision::Reproduced { why },
        _ => Decision::Contradicted { why },
    }
}

/// An undecided claim: at its last look, futile, or on to the next look.
fn open(c: &ClaimData, looks: &[Look], level: f64, futility: bool) -> Decision {
    let design = &c.design;
    let seeds_in = c.pairs.len();
    let latest = looks.last();
    let next = design.looks.iter().copied().find(|&n| n > seeds_in);
    let Some(next_seeds) = next else {
        return Decision::Undecided {
            why: match latest {
                Some(l) => format!(
                    "not decided with all {} seeds: {}",
                    design.max_n(),
                    describe(l)
                ),
                None => "too few valid pairs".into(),
            },
        };
    };
    if let Some(l) = latest.filter(|_| futility) {
        let same = c.expect == Expect::Same;
        let diffs: Vec<f64> = c.pairs.iter().flatten().copied().collect();
        if same && l.n >= FUTILITY_MIN_SEEDS {
            let bounds = design.bounds_at(interval_level(true, level));
            let last = bounds.last().copied().unwrap_or(f64::INFINITY);
            let half = last * l.sd / (design.max_n() as f64).sqrt();
            if half >= c.margin {
                return Decision::Futile {
                    why: format!(
                        "{}; with this spread (sd {:.2}) even {} seeds give an interval ±{:.2} wider than the margin ±{}",
                        describe(l),
                        l.sd,
                        design.max_n(),
                        half,
                        c.margin
                    ),
                };
            }
        } else if !same {
            let power = conditional_power(false, c.margin, &diffs, design, level, FUTILITY_SIMS);
            if power < FUTILITY_POWER {
                return Decision::Futile {
                    why: format!(
                        "{}; conditional power {:.0}% that {} seeds would decide it",
                        describe(l),
                        100.0 * power,
                        design.max_n()
                    ),
                };
            }
        }
    }
    Decision::Continue { next_seeds }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(expect: Expect, d: &[f64], design: Design) -> ClaimData {
        ClaimData {
            expect,
            margin: 1.0,
            pairs: d.iter().map(|&x| Some(x)).collect(),
            design,
        }
    }

    #[test]
    fn a_clear_effect_is_decided_at_the_first_look() {
        let design = Design::sequential(3, 10, 2, 0.05);
        let r = decide(&[claim(Expect::Lower, &[-10.0, -11.0, -9.5], design)], 0.05);
        assert_eq!(r[0].decision.label(), "reproduced", "{:?}", r[0]);
        assert!(r[0].p < 0.05);
    }

    #[test]
    fn the_opposite_effect_contradicts() {
        let design = Design::fixed(4, 0.05);
        let r = decide(
            &[claim(Expect::Higher, &[-3.0, -3.2, -2.9, -3.1], design)],
            0.05,
        );
        assert_eq!(r[0].decision.label(), "contradicted");
    }

    #[test]
    fn noise_asks_for_the_next_look_then_stops_at_max() {
        let design = Design::sequential(3, 7, 2, 0.05);
        let r = decide(
            &[claim(Expect::Higher, &[1.0, -1.0, 2.0], design.clone())],
            0.05,
        );
        assert!(matches!(
            r[0].decision,
            Decision::Continue { next_seeds: 5 } | Decision::Futile { .. }
        ));
        let all: Vec<f64> = (0..7)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.1 })
            .collect();
        let r = decide(&[claim(Expect::Higher, &all, design)], 0.05);
        assert!(
            matches!(r[0].decision, Decision::Undecided { .. }),
            "{:?}",
            r[0]
        );
    }

    #[test]
    fn equivalence_needs_a_narrow_interval() {
        let design = Design::fixed(6, 0.05);
        let tight = [0.1, -0.1, 0.05, 0.0, -0.05, 0.1];
        let r = decide(&[claim(Expect::Same, &tight, design.clone())], 0.05);
        assert_eq!(r[0].decision.label(), "reproduced");
        let wide = [3.0, -3.0, 2.0, -2.5, 1.0, -1.0];
        let r = decide(&[claim(Expect::Same, &wide, design)], 0.05);
        assert_ne!(r[0].decision.label(), "reproduced");
    }

    #[test]
    fn holm_can_hold_back_a_claim_its_own_level_would_decide() {
        // p ≈ 0.03 alone would pass at 0.05; with a second claim at p = 1, Holm needs 0.025.
        let design = Design::fixed(8, 0.05);
        let d = [0.9, 1.4, -0.2, 1.1, 0.3, 1.6, -0.4, 0.8];
        let alone = decide(&[claim(Expect::Higher, &d, design.clone())], 0.05);
        let p = alone[0].p;
        assert!(p > 0.025 && p < 0.05, "p {p}");
        assert_eq!(alone[0].decision.label(), "reproduced");
        let noise = [1.0, -1.0, 0.5, -0.5, 1.0, -1.0, 0.2, -0.2];
        let both = decide(
            &[
                claim(Expect::Higher, &d, design.clone()),
                claim(Expect::Higher, &noise, design),
            ],
            0.05,
        );
        assert_ne!(both[0].decision.label(), "reproduced");
        // Both p-values are bisected to 1e-4 relative, from different brackets.
        assert!((both[0].p_holm / (2.0 * p) - 1.0).abs() < 2e-4);
    }

    /// One look: the bisected repeated p-value is the paired t test's p-value.
    #[test]
    fn one_look_p_is_the_paired_t_p() {
        let design = Design::fixed(8, 0.05);
        let d = [0.9, 1.4, -0.2, 1.1, 0.3, 1.6, -0.4, 0.8];
        let r = decide(&[claim(Expect::Higher, &d, design)], 0.05);
        let l = &r[0].looks[0];
        let want = crate::sequential::t_p(l.stat, 8);
        assert!((r[0].p / want - 1.0).abs() < 1e-4, "{} vs {want}", r[0].p);
    }

    /// A `same` claim is TOST at α: equivalent when the 90% interval is inside ±Δ, and its
    /// p-value is the larger of the two one-sided t p-values.
    #[test]
    fn equivalence_reads_the_90_percent_interval() {
        let design = Design::fixed(6, 0.05);
        let d = [0.3, -0.2, 0.5, 0.1, -0.4, 0.2];
        let r = decide(&[claim(Expect::Same, &d, design)], 0.05);
        let l = &r[0].looks[0];
        assert!((l.confidence - 0.90).abs() < 1e-12);
        let want = crate::dist::t_quantile(0.95, 5.0);
        assert!((l.bound - want).abs() < 1e-9, "{} vs {want}", l.bound);
        let (mean, sd) = crate::sequential::mean_sd(&d);
        let se = sd / 6f64.sqrt();
        let one_sided = |x: f64| 1.0 - crate::dist::t_cdf(x, 5.0);
        let tost = one_sided((1.0 - mean) / se).max(one_sided((1.0 + mean) / se));
        assert!((r[0].p / tost - 1.0).abs() < 1e-4, "{} vs {tost}", r[0].p);
        assert_eq!(r[0].decision.label(), "reproduced");
    }
}

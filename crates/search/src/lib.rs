//! Suggestions for search studies and the rule that prunes their trials.
//!
//! [`suggest`] is a pure function of the study's `search:` block, the suggestion's number
//! and the results before it, so the same study and results always give the same
//! suggestion; the runner stores every suggestion it made, so a resumed search continues
//! where it stopped instead of asking again. Random draws come from PCG-64 (`rand_pcg`)
//! seeded with the search's seed and the suggestion's number.
//!
//! TPE (Bergstra et al. 2011, "Algorithms for Hyper-Parameter Optimization"; multivariate,
//! as Optuna's default `TPESampler`, see [`parzen`]): the first `startup` suggestions are
//! random; after that a suggestion maximizes l(x)/g(x) over 24 candidates drawn from l,
//! where l is fitted to the best ⌈10 %⌉ of the results and g to the rest. Only the ranking
//! of results enters, so trials that are still running (a constant liar: they count as
//! worse than every result, Optuna's `constant_liar`), pruned and diverged trials (worse
//! than every completed one) fit in the same order without inventing numbers.
//!
//! [`asha`] is asynchronous successive halving's promotion rule.

pub mod asha;
pub mod parzen;
mod sample;

use rand_core::SeedableRng;
use rand_pcg::Pcg64;
use serde_json::{Map, Value};
use spec::search::{Direction, Search, SearchMethod};

pub use sample::{round_significant, SIGNIFICANT_DIGITS};

/// How one earlier suggestion stands, as the sampler sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every seed finished: the objective, averaged over the seeds.
    Complete(f64),
    /// Stopped early or diverged: worse than every complete result; among themselves,
    /// ordered by this value (the metric where they stopped).
    Stopped(f64),
    /// Queued or running: worse than everything (the constant liar), so that parallel
    /// suggestions spread out instead of piling onto the same region.
    Pending,
    /// Failed for reasons that say nothing about the parameters (a crash): left out.
    Failed,
}

/// One earlier suggestion and how it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub params: Map<String, Value>,
    pub outcome: Outcome,
}

/// Suggestion `index` (0-based) of `search`, given how the earlier ones stand. Values lie
/// in their domains; reals are rounded to [`SIGNIFICANT_DIGITS`] significant digits (what
/// a person would write in a config, and what makes equal suggestions share a trial id).
pub fn suggest(search: &Search, index: usize, history: &[Observation]) -> Map<String, Value> {
    let mut rng = rng_for(search.seed, index);
    let informed = history
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Complete(_) | Outcome::Stopped(_)))
        .count();
    let use_tpe = search.method == SearchMethod::Tpe && informed >= search.startup.max(1);
    let ranked = if use_tpe {
        rank(history, search.objective.direction)
    } else {
        Vec::new()
    };
    if use_tpe {
        if let Some(out) = sample::tpe(&search.space, &ranked, &mut rng) {
            return out;
        }
    }
    search
        .space
        .iter()
        .map(|(key, domain)| (key.clone(), sample::uniform(domain, &mut rng)))
        .collect()
}

/// The suggestions a search makes before any result: all of a random search, the first
/// `startup` of a TPE search (at most `trials`).
pub fn first_suggestions(search: &Search) -> Vec<Map<String, Value>> {
    let n = match search.method {
        SearchMethod::Random => search.trials,
        SearchMethod::Tpe => search.startup.min(search.trials),
    };
    (0..n).map(|i| suggest(search, i, &[])).collect()
}

/// The observations TPE learns from, best first, each with its suggestion's number:
/// complete results by objective, then stopped ones by their value, then pending ones.
/// Failed ones are left out.
fn rank(history: &[Observation], direction: Direction) -> Vec<(&Map<String, Value>, usize)> {
    let key = |o: &Observation| -> Option<(u8, f64)> {
        let signed = |v: f64| match direction {
            Direction::Max => -v,
            Direction::Min => v,
        };
        match o.outcome {
            Outcome::Complete(v) if v.is_finite() => Some((0, signed(v))),
            Outcome::Complete(_) => Some((1, f64::INFINITY)),
            Outcome::Stopped(v) => Some((
                1,
                if v.is_finite() {
                    signed(v)
                } else {
                    f64::INFINITY
                },
            )),
            Outcome::Pending => Some((2, 0.0)),
            Outcome::Failed => None,
        }
    };
    let mut keyed: Vec<((u8, f64), usize, &Observation)> = history
        .iter()
        .enumerate()
        .filter_map(|(i, o)| key(o).map(|k| (k, i, o)))
        .collect();
    // Stable: ties keep suggestion order, so the ranking is a function of the history.
    keyed.sort_by(|(a, _, _), (b, _, _)| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    keyed.into_iter().map(|(_, i, o)| (&o.params, i)).collect()
}

/// PCG-64 seeded by the search's seed and the suggestion's number (SplitMix64 mixing, so
/// neighbouring numbers give unrelated streams).
fn rng_for(seed: u64, index: usize) -> Pcg64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index as u64)
        .wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Pcg64::seed_from_u64(z ^ (z >> 31))
}

#[cfg(test)]
mod tests;

/// One seed's run of a suggestion, as the results database has it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedRun {
    pub status: spec::protocol::TrialStatus,
    /// The objective's metric, if the run recorded it.
    pub value: Option<f64>,
    /// Where the pruner stopped it, if it did.
    pub pruned_value: Option<f64>,
}

impl Outcome {
    /// How a suggestion stands from its seeds' runs: pending while any may still run;
    /// failed if any failed; stopped if any was pruned or diverged; else complete, with the
    /// objective averaged over the seeds.
    pub fn from_runs(runs: &[SeedRun]) -> Outcome {
        use spec::protocol::TrialStatus as S;
        if runs.is_empty()
            || runs
                .iter()
                .any(|r| matches!(r.status, S::Pending | S::Running | S::Interrupted))
        {
            return Outcome::Pending;
        }
        if runs.iter().any(|r| r.status.is_retryable()) {
            return Outcome::Failed;
        }
        if let Some(r) = runs.iter().find(|r| r.status == S::Pruned) {
            return Outcome::Stopped(r.pruned_value.unwrap_or(f64::NAN));
        }
        if let Some(r) = runs.iter().find(|r| r.status == S::Diverged) {
            return Outcome::Stopped(r.value.unwrap_or(f64::NAN));
        }
        let values: Option<Vec<f64>> = runs.iter().map(|r| r.value).collect();
        match values {
            Some(v) => Outcome::Complete(v.iter().sum::<f64>() / v.len() as f64),
            None => Outcome::Failed,
        }
    }
}

//! A study's `search:` block: which keys to search, over what ranges, by which method, for
//! which objective, and optionally how to stop poor trials early (ASHA). The sampling
//! itself is the `search` crate's; this module owns the format and its checks
//! (docs/experiment-format.md, "Search").
//!
//! ```yaml
//! search:
//!   method: tpe               # or random
//!   trials: 24
//!   seed: 7
//!   objective: {metric: f1, direction: max}
//!   space:
//!     train.learning_rate: {loguniform: [1.0e-5, 3.0e-4]}
//!     train.warmup_ratio: {uniform: [0.0, 0.3]}
//!     train.batch_size: {choice: [16, 32, 64]}
//!   prune: {method: asha, metric: f1, min_steps: 200, reduction: 3}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metric::ClaimMetric;

/// How suggestions are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMethod {
    /// Independent uniform draws (log-uniform where the range says so).
    Random,
    /// Tree-structured Parzen estimators (Bergstra et al. 2011), after `startup` random
    /// suggestions.
    Tpe,
}

/// Whether the objective is to be made large or small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Max,
    Min,
}

/// What the search optimizes: a metric a claim could name, averaged over the seeds of a
/// suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    pub metric: ClaimMetric,
    pub direction: Direction,
}

impl Objective {
    /// True when `a` is better than `b`.
    pub fn better(&self, a: f64, b: f64) -> bool {
        match self.direction {
            Direction::Max => a > b,
            Direction::Min => a < b,
        }
    }
}

/// The values one key may take. Written as a one-key mapping: `{uniform: [lo, hi]}`,
/// `{loguniform: [lo, hi]}`, `{int: [lo, hi]}` or `{choice: [a, b, …]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawDomain", into = "RawDomain")]
pub enum Domain {
    /// A real number in `[low, high]`, uniform.
    Uniform([f64; 2]),
    /// A positive real in `[low, high]`, uniform in its logarithm.
    LogUniform([f64; 2]),
    /// An integer in `[low, high]`, both included.
    Int([i64; 2]),
    /// One of the values listed.
    Choice(Vec<Value>),
}

/// The YAML form of a [`Domain`] (serde_yaml reads externally tagged enums only from
/// `!tags`; a one-key mapping is what people write).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uniform: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loguniform: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    int: Option<[i64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    choice: Option<Vec<Value>>,
}

impl TryFrom<RawDomain> for Domain {
    type Error = String;
    fn try_from(r: RawDomain) -> Result<Self, String> {
        let mut found = Vec::new();
        if let Some(v) = r.uniform {
            found.push(Domain::Uniform(v));
        }
        if let Some(v) = r.loguniform {
            found.push(Domain::LogUniform(v));
        }
        if let Some(v) = r.int {
            found.push(Domain::Int(v));
        }
        if let Some(v) = r.choice {
            found.push(Domain::Choice(v));
        }
        match (found.pop(), found.is_empty()) {
            (Some(d), true) => Ok(d),
            _ => Err("expected exactly one of {uniform: [low, high]}, {loguniform: [low, high]}, {int: [low, high]}, {choice: [a, b, ...]}".into()),
        }
    }
}

impl From<Domain> for RawDomain {
    fn from(d: Domain) -> RawDomain {
        let mut r = RawDomain::default();
        match d {
            Domain::Uniform(v) => r.uniform = Some(v),
            Domain::LogUniform(v) => r.loguniform = Some(v),
            Domain::Int(v) => r.int = Some(v),
            Domain::Choice(v) => r.choice = Some(v),
        }
        r
    }
}

impl Domain {
    /// The values the plan-time checks try: both ends of a range, every choice.
    pub fn extremes(&self) -> Vec<Value> {
        match self {
            Domain::Uniform([lo, hi]) | Domain::LogUniform([lo, hi]) => {
                vec![Value::from(*lo), Value::from(*hi)]
            }
            Domain::Int([lo, hi]) => vec![Value::from(*lo), Value::from(*hi)],
            Domain::Choice(values) => values.clone(),
        }
    }

    /// Does `v` belong to the domain?
    pub fn contains(&self, v: &Value) -> bool {
        match self {
            Domain::Uniform([lo, hi]) | Domain::LogUniform([lo, hi]) => {
                v.as_f64().is_some_and(|x| *lo <= x && x <= *hi)
            }
            Domain::Int([lo, hi]) => v.as_i64().is_some_and(|x| *lo <= x && x <= *hi),
            Domain::Choice(values) => values.contains(v),
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            Domain::Uniform([lo, hi]) => {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(format!("uniform [{lo}, {hi}]: expected finite low < high"));
                }
            }
            Domain::LogUniform([lo, hi]) => {
                if !(lo.is_finite() && hi.is_finite() && *lo > 0.0 && lo < hi) {
                    return Err(format!(
                        "loguniform [{lo}, {hi}]: expected 0 < low < high (a log scale has no 0)"
                    ));
                }
            }
            Domain::Int([lo, hi]) => {
                if lo >= hi {
                    return Err(format!("int [{lo}, {hi}]: expected low < high"));
                }
            }
            Domain::Choice(values) => {
                if values.len() < 2 {
                    return Err("choice: expected at least two values".into());
                }
                if values.iter().any(Value::is_null) {
                    return Err("choice: null is not a value a key can be set to".into());
                }
                if values
                    .iter()
                    .enumerate()
                    .any(|(i, a)| values[..i].contains(a))
                {
                    return Err("choice: a value is listed twice".into());
                }
            }
        }
        Ok(())
    }
}

/// The early-stopping rule. Only asynchronous successive halving is offered: it needs no
/// synchronisation between trials, so it works the same on one device and on Slurm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PruneMethod {
    Asha,
}

/// ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning"): at
/// steps `min_steps · reduction^k`, a trial whose metric is not in the top
/// `1/reduction` of the trials that reached that step is stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prune {
    pub method: PruneMethod,
    /// The evaluation score compared at each rung (`em` or `f1`: what trials report at
    /// their periodic evaluations).
    #[serde(default = "f1")]
    pub metric: ClaimMetric,
    pub min_steps: u64,
    #[serde(default = "three")]
    pub reduction: u64,
}

fn f1() -> ClaimMetric {
    ClaimMetric::F1
}
fn three() -> u64 {
    3
}

impl Prune {
    /// The steps at which trials are compared, up to `max_steps`.
    pub fn rungs(&self, max_steps: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut s = self.min_steps;
        while s < max_steps && s > 0 {
            out.push(s);
            s = match s.checked_mul(self.reduction) {
                Some(n) => n,
                None => break,
            };
        }
        out
    }
}

/// The most suggestions one search may make.
pub const MAX_SEARCH_TRIALS: usize = 10_000;

/// A parsed, checked `search:` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    pub method: SearchMethod,
    /// How many suggestions to make (each runs every seed of the study).
    pub trials: usize,
    /// The suggestions are a function of this, their number and the results before them.
    #[serde(default)]
    pub seed: u64,
    pub objective: Objective,
    /// Dotted key → domain, in the order written.
    #[serde(with = "ordered_space")]
    pub space: Vec<(String, Domain)>,
    /// TPE: how many random suggestions come first (Optuna's `n_startup_trials`).
    #[serde(default = "ten")]
    pub startup: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<Prune>,
}

fn ten() -> usize {
    10
}

/// The space as a YAML mapping whose order is kept.
mod ordered_space {
    use super::Domain;
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[(String, Domain)], s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(v.len()))?;
        for (k, d) in v {
            m.serialize_entry(k, d)?;
        }
        m.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, Domain)>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(String, Domain)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of dotted keys to {uniform|loguniform|int: [low, high]} or {choice: [..]}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Domain>()? {
                    out.push((k, v));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

impl Search {
    /// The checks that need only the block itself; the study checks keys and values
    /// against the trial schema. Errors are `(key under search, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        if self.trials == 0 || self.trials > MAX_SEARCH_TRIALS {
            return err(
                "trials",
                format!("{}: expected 1 to {MAX_SEARCH_TRIALS}", self.trials),
            );
        }
        if self.space.is_empty() {
            return err("space", "expected at least one key to search".into());
        }
        for (i, (k, d)) in self.space.iter().enumerate() {
            if self.space[..i].iter().any(|(o, _)| o == k) {
                return err(&format!("space.{k}"), "the key is listed twice".into());
            }
            d.check().map_err(|m| (format!("space.{k}"), m))?;
        }
        if let Some(p) = &self.prune {
            if !matches!(p.metric, ClaimMetric::F1 | ClaimMetric::Em) {
                return err(
                    "prune.metric",
                    format!(
                        "{}: pruning compares periodic evaluations, which report em and f1",
                        p.metric.label()
                    ),
                );
            }
            if p.min_steps == 0 {
                return err("prune.min_steps", "expected at least 1".into());
            }
            if p.reduction < 2 {
                return err(
                    "prune.reduction",
                    format!("{}: expected 2 or more (3 is usual)", p.reduction),
                );
            }
        }
        Ok(())
    }

    /// The variant name of suggestion `index` (0-based): `s01`, `s02`, …, padded so that
    /// names sort in suggestion order.
    pub fn variant_name(&self, index: usize) -> String {
        let width = self.trials.to_string().len().max(2);
        format!("s{:0width$}", index + 1)
    }

    /// The suggestion index of a variant name this search made.
    pub fn index_of(&self, variant: &str) -> Option<usize> {
        let digits = variant.strip_prefix('s')?;
        if digits.len() != self.trials.to_string().len().max(2) {
            return None;
        }
        digits.parse::<usize>().ok()?.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_geometrically_below_the_last_step() {
        let p = Prune {
            method: PruneMethod::Asha,
            metric: ClaimMetric::F1,
            min_steps: 10,
            reduction: 3,
        };
        assert_eq!(p.rungs(100), vec![10, 30, 90]);
        assert_eq!(p.rungs(90), vec![10, 30]);
        assert_eq!(p.rungs(10), Vec::<u64>::new());
    }

    #[test]
    fn variant_names_round_trip_and_sort() {
        let s: Search = serde_yaml::from_str(
            "{method: random, trials: 120, objective: {metric: f1, direction: max}, space: {train.learning_rate: {uniform: [0.1, 0.2]}}}",
        )
        .unwrap();
        assert_eq!(s.variant_name(0), "s001");
        assert_eq!(s.variant_name(119), "s120");
        assert_eq!(s.index_of("s007"), Some(6));
        assert_eq!(s.index_of("s07"), None);
        assert_eq!(s.index_of("baseline"), None);
        assert!(s.variant_name(8) < s.variant_name(10));
    }

    #[test]
    fn domains_check_their_ranges() {
        assert!(Domain::LogUniform([0.0, 1.0]).check().is_err());
        assert!(Domain::Uniform([1.0, 1.0]).check().is_err());
        assert!(Domain::Int([3, 2]).check().is_err());
        assert!(Domain::Choice(vec![Value::from(1)]).check().is_err());
        assert!(Domain::Choice(vec![Value::from(1), Value::from(1)])
            .check()
            .is_err());
        assert!(Domain::Int([1, 4]).contains(&Value::from(4)));
        assert!(!Domain::Int([1, 4]).contains(&Value::from(5)));
        assert!(Domain::LogUniform([1e-5, 1e-3]).contains(&Value::from(1e-4)));
    }
}

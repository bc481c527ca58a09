//! Which seeds a study's variants run: a fixed list, or a sequential plan in which claims
//! that are not decided yet get more seeds (docs/experiment-format.md, "Seeds").
//!
//! ```yaml
//! seeds: [1, 2, 3]                        # every variant runs each seed
//! seeds: {min: 3, max: 10, batch: 2}      # seeds 1, 2, … : 3 first, then 2 at a time, at most 10
//! seeds: {first: 101, min: 3, max: 8}     # seeds 101 … 108, one at a time after the first 3
//! ```

use serde::{Deserialize, Serialize};

/// The sequential plan: `min` seeds for every variant, then `batch` more at a time for the
/// variants of undecided claims (and their baselines), at most `max`; seed values are
/// `first`, `first + 1`, ….
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequentialSeeds {
    #[serde(default = "one_u64")]
    pub first: u64,
    pub min: usize,
    pub max: usize,
    #[serde(default = "one")]
    pub batch: usize,
    /// The standard deviation of the per-seed differences (variant − baseline) expected,
    /// in metric points, e.g. from earlier runs: `sweep plan` turns it into the smallest
    /// effect each claim can detect. The report uses the first look's instead when it has
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pilot_sd: Option<f64>,
    /// An effect (metric points) the study should detect: `sweep plan` says what `max` that
    /// needs at 80 % power.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_effect: Option<f64>,
}

fn one() -> usize {
    1
}
fn one_u64() -> u64 {
    1
}

/// The seeds of a study.
#[derive(Debug, Clone, PartialEq)]
pub enum Seeds {
    List(Vec<u64>),
    Sequential(SequentialSeeds),
}

/// The most seeds a sequential plan may ask for.
pub const MAX_SEQUENTIAL_SEEDS: usize = 100;

impl Seeds {
    pub fn is_sequential(&self) -> bool {
        matches!(self, Seeds::Sequential(_))
    }

    /// Every seed a variant may run, in order.
    pub fn all(&self) -> Vec<u64> {
        match self {
            Seeds::List(l) => l.clone(),
            Seeds::Sequential(s) => (0..s.max as u64).map(|i| s.first + i).collect(),
        }
    }

    /// How many seeds every variant starts with.
    pub fn initial(&self) -> usize {
        match self {
            Seeds::List(l) => l.len(),
            Seeds::Sequential(s) => s.min,
        }
    }

    /// The numbers of seeds at which claims are analysed: the whole list for a fixed list;
    /// `min`, `min + batch`, …, `max` for a sequential plan.
    pub fn looks(&self) -> Vec<usize> {
        match self {
            Seeds::List(l) => vec![l.len()],
            Seeds::Sequential(s) => {
                let mut looks = Vec::new();
                let mut n = s.min;
                while n < s.max {
                    looks.push(n);
                    n += s.batch.max(1);
                }
                looks.push(s.max);
                looks
            }
        }
    }

    /// Parses the YAML value of `seeds`; the error says what was expected.
    pub fn from_yaml(v: &serde_yaml::Value) -> Result<Self, String> {
        match v {
            serde_yaml::Value::Sequence(items) => {
                let mut out: Vec<u64> = Vec::new();
                for item in items {
                    let s = item.as_u64().ok_or_else(|| {
                        format!("seed {item:?}: expected u64, a non-negative integer")
                    })?;
                    if out.contains(&s) {
                        return Err(format!("seed {s} is listed twice"));
                    }
                    out.push(s);
                }
                if out.is_empty() {
                    return Err("expected at least one seed".into());
                }
                Ok(Seeds::List(out))
            }
            serde_yaml::Value::Mapping(_) => {
                let s: SequentialSeeds = serde_yaml::from_value(v.clone()).map_err(|e| {
                    format!("{e}; expected {{min: N, max: M, batch: B, first: S, pilot_sd: SD, target_effect: E}} (batch and first default to 1; pilot_sd and target_effect are optional)")
                })?;
                if s.min < 2 {
                    return Err(format!(
                        "min {}: a claim needs at least 2 paired seeds (3 or more recommended)",
                        s.min
                    ));
                }
                if s.max < s.min {
                    return Err(format!("max {} is below min {}", s.max, s.min));
                }
                if s.max > MAX_SEQUENTIAL_SEEDS {
                    return Err(format!("max {} is above {MAX_SEQUENTIAL_SEEDS}", s.max));
                }
                if s.batch == 0 {
                    return Err("batch must be at least 1".into());
                }
                for (key, v) in [("pilot_sd", s.pilot_sd), ("target_effect", s.target_effect)] {
                    if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                        return Err(format!(
                            "{key} {v}: expected a positive number of metric points"
                        ));
                    }
                }
                if s.first.checked_add(s.max as u64).is_none() {
                    return Err(format!("first {} + max {} overflows", s.first, s.max));
                }
                Ok(Seeds::Sequential(s))
            }
            other => Err(format!(
                "expected a list of seeds ([1, 2, 3]) or {{min: 3, max: 10, batch: 2}}, found {other:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Seeds, String> {
        Seeds::from_yaml(&serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn lists_and_plans() {
        let l = parse("[3, 1, 2]").unwrap();
        assert_eq!(
            (l.all(), l.initial(), l.looks()),
            (vec![3, 1, 2], 3, vec![3])
        );
        let s = parse("{min: 3, max: 10, batch: 2}").unwrap();
        assert_eq!(s.all(), (1..=10).collect::<Vec<u64>>());
        assert_eq!((s.initial(), s.looks()), (3, vec![3, 5, 7, 9, 10]));
        let Seeds::Sequential(p) =
            parse("{min: 3, max: 6, pilot_sd: 2.5, target_effect: 2}").unwrap()
        else {
            panic!("a plan");
        };
        assert_eq!((p.pilot_sd, p.target_effect), (Some(2.5), Some(2.0)));
        let f = parse("{first: 101, min: 3, max: 5}").unwrap();
        assert_eq!(
            (f.all(), f.looks()),
            (vec![101, 102, 103, 104, 105], vec![3, 4, 5])
        );
    }

    #[test]
    fn bad_plans_say_why() {
        for (text, want) in [
            ("[]", "at least one seed"),
            ("[1, 1]", "listed twice"),
            ("[-1]", "expected u64"),
            ("{min: 1, max: 5}", "at least 2"),
            ("{min: 5, max: 3}", "below min"),
            ("{min: 3, max: 10, batch: 0}", "batch"),
            ("{min: 3, max: 1000}", "above"),
            ("{min: 3, max: 5, step: 2}", "unknown field"),
            (
                "{min: 3, max: 5, pilot_sd: 0}",
                "pilot_sd 0: expected a positive",
            ),
            (
                "{min: 3, max: 5, target_effect: -1.5}",
                "target_effect -1.5",
            ),
            ("seven", "expected a list"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}

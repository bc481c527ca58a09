//! The metrics a claim or a search objective can name.

use serde::{Deserialize, Serialize};

/// The metric a claim is about: a score of the last evaluation, a number every trial
/// reports at its end, or (`metrics.<name>`) a number of `result.json`'s `metrics` object
/// (program trials: docs/trial-protocol.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ClaimMetric {
    Em,
    F1,
    /// Mean training loss over the run.
    TrainLoss,
    /// Wall-clock seconds of training.
    TrainSeconds,
    /// Training throughput.
    ExamplesPerSecond,
    /// `metrics.<name>`: a number the trial reported in `result.json`'s `metrics`.
    Reported(String),
}

/// How a claim names a number of `result.json`'s `metrics` object.
const REPORTED_PREFIX: &str = "metrics.";

impl ClaimMetric {
    const NAMED: [(&'static str, ClaimMetric); 5] = [
        ("em", Self::Em),
        ("f1", Self::F1),
        ("train_loss", Self::TrainLoss),
        ("train_seconds", Self::TrainSeconds),
        ("examples_per_second", Self::ExamplesPerSecond),
    ];

    /// The name as a study writes it.
    pub fn parse(text: &str) -> Result<ClaimMetric, String> {
        if let Some((_, m)) = Self::NAMED.iter().find(|(n, _)| *n == text) {
            return Ok(m.clone());
        }
        if let Some(name) = text.strip_prefix(REPORTED_PREFIX) {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if ok {
                return Ok(Self::Reported(name.to_string()));
            }
        }
        Err(format!(
            "unknown metric {text:?}: expected em, f1, train_loss, train_seconds, examples_per_second, or metrics.<name> for a number of result.json's metrics (A-Z a-z 0-9 _ - .)"
        ))
    }

    /// How reports name it.
    pub fn label(&self) -> &str {
        match self {
            Self::Em => "EM",
            Self::F1 => "F1",
            Self::TrainLoss => "train loss",
            Self::TrainSeconds => "train seconds",
            Self::ExamplesPerSecond => "examples/s",
            Self::Reported(name) => name,
        }
    }

    /// EM and F1 are points on 0-100, where `same` has a default margin; the others need
    /// one in their own unit.
    pub fn is_score(&self) -> bool {
        matches!(self, Self::Em | Self::F1)
    }
}

impl TryFrom<String> for ClaimMetric {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ClaimMetric::parse(&s)
    }
}

impl From<ClaimMetric> for String {
    fn from(m: ClaimMetric) -> String {
        match m {
            ClaimMetric::Reported(name) => format!("{REPORTED_PREFIX}{name}"),
            named => ClaimMetric::NAMED
                .iter()
                .find(|(_, k)| *k == named)
                .map(|(n, _)| n.to_string())
                .unwrap_or_default(),
        }
    }
}

//! What a search study's report shows: every suggestion in the order it was made, with its
//! parameters, its objective (the mean over its seeds), how it ended (pruned where, failed,
//! still pending) and the best objective so far; and the best suggestions.

use serde_json::{Map, Value};
use spec::protocol::TrialStatus;
use spec::search::{Direction, Domain};

use crate::data::StudyData;

/// One suggestion of a search.
#[derive(Debug, Clone)]
pub struct Suggestion {
    /// 1-based, in the order the suggestions were made.
    pub number: usize,
    pub variant: String,
    pub params: Map<String, Value>,
    pub seeds: Vec<i64>,
    pub outcome: search::Outcome,
    /// `complete`, `pruned at step N`, `diverged`, `failed`, `pending`.
    pub state: String,
    /// The best complete objective among suggestions 1..=number.
    pub best_so_far: Option<f64>,
}

impl Suggestion {
    /// The objective where every seed completed.
    pub fn objective(&self) -> Option<f64> {
        match self.outcome {
            search::Outcome::Complete(v) => Some(v),
            _ => None,
        }
    }

    /// What the charts plot: the objective, or where a pruned or diverged one stopped.
    pub fn plotted(&self) -> Option<f64> {
        self.objective().or(self.stopped_at())
    }

    /// Where a pruned or diverged suggestion stopped (its metric there).
    pub fn stopped_at(&self) -> Option<f64> {
        match self.outcome {
            search::Outcome::Stopped(v) if v.is_finite() => Some(v),
            _ => None,
        }
    }
}

/// A search study's suggestions and what they found.
#[derive(Debug, Clone)]
pub struct SearchReport {
    pub method: String,
    pub trials: usize,
    pub metric: String,
    pub direction: Direction,
    pub space: Vec<(String, Domain)>,
    pub suggestions: Vec<Suggestion>,
}

impl SearchReport {
    /// Up to `n` complete suggestions, best first.
    pub fn best(&self, n: usize) -> Vec<&Suggestion> {
        let mut done: Vec<&Suggestion> = self
            .suggestions
            .iter()
            .filter(|s| s.objective().is_some())
            .collect();
        done.sort_by(|a, b| {
            let (x, y) = (a.objective().unwrap_or(0.0), b.objective().unwrap_or(0.0));
            match self.direction {
                Direction::Max => y.total_cmp(&x),
                Direction::Min => x.total_cmp(&y),
            }
            .then(a.number.cmp(&b.number))
        });
        done.truncate(n);
        done
    }

    pub fn pruned(&self) -> usize {
        self.suggestions
            .iter()
            .filter(|s| s.state.starts_with("pruned"))
            .count()
    }
}

/// The search of `data`'s study, if it is a search study.
pub fn summarize(data: &StudyData) -> Option<SearchReport> {
    let spec = data.spec.as_ref()?;
    let search = spec.search.as_ref()?;
    let mut suggestions: Vec<Suggestion> = Vec::new();
    let mut best: Option<f64> = None;
    let mut variants: Vec<_> = data
        .variants
        .iter()
        .filter_map(|v| search.index_of(&v.name).map(|i| (i, v)))
        .collect();
    variants.sort_by_key(|(i, _)| *i);
    for (i, v) in variants {
        let runs: Vec<search::SeedRun> = v
            .rows
            .iter()
            .map(|r| search::SeedRun {
                status: r.status,
                value: crate::data::row_value(r, &search.objective.metric),
                pruned_value: r.pruned_value,
            })
            .collect();
        let outcome = search::Outcome::from_runs(&runs);
        let state = match &outcome {
            search::Outcome::Complete(_) => "complete".to_string(),
            search::Outcome::Stopped(_) => match v.rows.iter().find_map(|r| r.pruned_step) {
                Some(step) => format!("pruned at step {step}"),
                None if v.rows.iter().any(|r| r.status == TrialStatus::Pruned) => "pruned".into(),
                None => "diverged".into(),
            },
            search::Outcome::Failed => "failed".into(),
            search::Outcome::Pending => "pending".into(),
        };
        if let search::Outcome::Complete(x) = outcome {
            if best.is_none_or(|b| search.objective.better(x, b)) {
                best = Some(x);
            }
        }
        suggestions.push(Suggestion {
            number: i + 1,
            variant: v.name.clone(),
            params: v.params.clone(),
            seeds: v.rows.iter().map(|r| r.seed).collect(),
            outcome,
            state,
            best_so_far: best,
        });
    }
    Some(SearchReport {
        method: format!("{:?}", search.method).to_lowercase(),
        trials: search.trials,
        metric: search.objective.metric.label().to_string(),
        direction: search.objective.direction,
        space: search.space.clone(),
        suggestions,
    })
}

/// A parameter value as the tables show it.
pub fn show(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "—".into(),
    }
}

impl SearchReport {
    /// One line on what the search did.
    pub fn headline(&self) -> String {
        let done = self
            .suggestions
            .iter()
            .filter(|s| s.objective().is_some())
            .count();
        let best = self
            .best(1)
            .first()
            .map(|b| {
                format!(
                    "; best {} {:.2} ({}, suggestion {})",
                    self.metric,
                    b.objective().unwrap_or(f64::NAN),
                    b.variant,
                    b.number
                )
            })
            .unwrap_or_default();
        format!(
            "A {} search for the {} {} (mean over each suggestion's seeds): {} of {} suggestions made, {done} complete, {} pruned{best}.",
            self.method,
            match self.direction {
                Direction::Max => "highest",
                Direction::Min => "lowest",
            },
            self.metric,
            self.suggestions.len(),
            self.trials,
            self.pruned()
        )
    }

    /// The columns of the suggestion tables.
    pub fn header(&self) -> Vec<String> {
        let mut h = vec!["#".to_string(), "suggestion".into()];
        h.extend(self.space.iter().map(|(k, _)| k.clone()));
        h.extend([
            "seeds".to_string(),
            self.metric.clone(),
            "state".into(),
            "best so far".into(),
        ]);
        h
    }

    /// One table row (plain text cells) per suggestion in `which`.
    pub fn rows<'a>(&self, which: impl IntoIterator<Item = &'a Suggestion>) -> Vec<Vec<String>> {
        which
            .into_iter()
            .map(|s| {
                let mut row = vec![s.number.to_string(), s.variant.clone()];
                row.extend(self.space.iter().map(|(k, _)| show(s.params.get(k))));
                row.push(
                    s.seeds
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                row.push(match (s.objective(), s.stopped_at()) {
                    (Some(v), _) => format!("{v:.2}"),
                    (None, Some(v)) => format!("({v:.2})"),
                    _ => "—".into(),
                });
                row.push(s.state.clone());
                row.push(s.best_so_far.map_or("—".into(), |b| format!("{b:.2}")));
                row
            })
            .collect()
    }
}

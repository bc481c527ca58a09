//! Search studies in the runner. A search's plan grows one suggestion at a time: the
//! first ones (all of a random search, TPE's `startup`) are planned up front, and whenever a
//! slot is free and nothing is left to claim, the next suggestion is asked of
//! [`search::suggest`] with the results the database holds now, recorded in the database
//! (the plan's rows), and claimed. A runner that starts on a study whose suggestions are
//! already recorded continues from them ([`resume`]), so a search stopped by `kill -9`
//! goes on where it was and runs no trial twice.
//!
//! Pruning ([`Pruner`]): after each ingest of running trials' metrics, every running trial
//! that reached a new rung is judged by ASHA's rule against every trial of the study that
//! reached that rung, and stopped if it is not among the best.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use search::asha::{self, Verdict};
use search::{Observation, Outcome, SeedRun};
use serde_json::{Map, Value};
use spec::protocol::TrialId;
use spec::search::Search;
use spec::{ClaimMetric, Study};
use store::Store;

use crate::plan::{hash_hex, plan_trials, Plan};
use crate::RunnerError;

fn search_of(study: &Study) -> Result<&Search, RunnerError> {
    study
        .search
        .as_ref()
        .ok_or_else(|| RunnerError::Invalid(format!("study {} has no search: block", study.name)))
}

/// The plan of a search before any result: its first suggestions.
pub fn first_plan(study: &Study, require_models: bool) -> Result<Plan, RunnerError> {
    let first = search::first_suggestions(search_of(study)?);
    plan_of(study, &first, require_models)
}

/// The plan that runs `suggestions` (in order), each with every seed of the study.
fn plan_of(
    study: &Study,
    suggestions: &[Map<String, Value>],
    require_models: bool,
) -> Result<Plan, RunnerError> {
    let mut trials = Vec::new();
    for (i, params) in suggestions.iter().enumerate() {
        trials.extend(study.suggestion(i, params.clone(), trials.len())?);
    }
    plan_trials(study, trials, require_models)
}

/// The suggestions a plan holds, in order.
pub fn suggestions_in(plan: &Plan) -> Vec<Map<String, Value>> {
    let Some(search) = &plan.study.search else {
        return Vec::new();
    };
    let mut by_index: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
    for e in &plan.entries {
        if let Some(i) = search.index_of(&e.trial.variant) {
            by_index.entry(i).or_insert_with(|| e.trial.params.clone());
        }
    }
    by_index.into_values().collect()
}

/// `plan` with the suggestions an earlier runner recorded for this study, if the study is
/// the same text (a changed study starts its search over; trials it suggests again are
/// recognised by their ids and not rerun).
pub fn resume(plan: Plan, store: &Store) -> Result<Plan, RunnerError> {
    let Some(search) = &plan.study.search else {
        return Ok(plan);
    };
    let Some(row) = store.study(&plan.study.name)? else {
        return Ok(plan);
    };
    if row.yaml_sha256 != hash_hex(plan.study.source.as_bytes(), 64) {
        tracing::info!(
            "study {} changed since its last run: its search starts over (trials it suggests again keep their results)",
            plan.study.name
        );
        return Ok(plan);
    }
    let mut stored: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
    for r in store.study_trials(&plan.study.name)? {
        let Some(i) = search.index_of(&r.variant) else {
            continue;
        };
        let params: Map<String, Value> = serde_json::from_str(&r.params)?;
        stored.entry(i).or_insert(params);
    }
    // Suggestions are recorded in order, so the stored ones are 0..n.
    let stored: Vec<Map<String, Value>> = stored
        .into_iter()
        .enumerate()
        .take_while(|(expected, (i, _))| expected == i)
        .map(|(_, (_, p))| p)
        .collect();
    let planned = suggestions_in(&plan);
    if stored.len() <= planned.len() && stored[..] == planned[..stored.len()] {
        return Ok(plan);
    }
    tracing::info!(
        "study {}: continuing its search after {} recorded suggestions",
        plan.study.name,
        stored.len()
    );
    let mut all = stored;
    all.extend(planned.into_iter().skip(all.len()));
    plan_of(&plan.study, &all, true)
}

/// The plan with one more suggestion, made from the results the database holds now;
/// `None` when the search has made all its suggestions (or `plan` is not a search).
pub fn extend(plan: &Plan, store: &Store) -> Result<Option<Plan>, RunnerError> {
    let Some(search) = &plan.study.search else {
        return Ok(None);
    };
    let mut made = suggestions_in(plan);
    if made.len() >= search.trials {
        return Ok(None);
    }
    let history = observations(&plan.study, &made, store)?;
    let next = search::suggest(search, made.len(), &history);
    tracing::info!("{}: {}", search.variant_name(made.len()), describe(&next));
    made.push(next);
    Ok(Some(plan_of(&plan.study, &made, true)?))
}

fn describe(params: &Map<String, Value>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How each suggestion stands, from its seeds' rows.
pub fn observations(
    study: &Study,
    made: &[Map<String, Value>],
    store: &Store,
) -> Result<Vec<Observation>, RunnerError> {
    let search = search_of(study)?;
    let mut runs: HashMap<String, Vec<SeedRun>> = HashMap::new();
    for r in store.study_trials(&study.name)? {
        runs.entry(r.variant.clone()).or_default().push(SeedRun {
            status: r.status,
            value: crate::sequential::scores(&r).get(&search.objective.metric),
            pruned_value: r.pruned_value,
        });
    }
    Ok(made
        .iter()
        .enumerate()
        .map(|(i, params)| Observation {
            params: params.clone(),
            outcome: runs
                .get(&search.variant_name(i))
                .map_or(Outcome::Pending, |r| Outcome::from_runs(r)),
        })
        .collect())
}

/// The metric rows a pruner compares.
fn eval_metric(metric: &ClaimMetric) -> &'static str {
    match metric {
        ClaimMetric::Em => "eval_em",
        _ => "eval_f1",
    }
}

/// ASHA for one runner: which rungs each running trial was judged at (a trial judged at a
/// rung is not judged there again; after a restart, a resumed trial is judged at the rungs
/// it had reached, against every trial there now), and the verdicts waiting for their
/// trial to end.
#[derive(Debug, Default)]
pub(crate) struct Pruner {
    judged: HashMap<TrialId, usize>,
    verdicts: HashMap<TrialId, (Verdict, String)>,
    last_look: Option<Instant>,
}

impl Pruner {
    /// The running trials to stop now, at most once a second.
    pub fn look(
        &mut self,
        plan: &Plan,
        store: &Store,
        running: &[TrialId],
    ) -> Result<Vec<(TrialId, String)>, RunnerError> {
        let Some(search) = &plan.study.search else {
            return Ok(Vec::new());
        };
        let Some(prune) = &search.prune else {
            return Ok(Vec::new());
        };
        if running.is_empty()
            || self
                .last_look
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(Vec::new());
        }
        self.last_look = Some(Instant::now());
        let name = eval_metric(&prune.metric);
        // Where each stopped trial stopped: evaluations it wrote after the pruner's verdict
        // (before its SIGTERM took effect) reached no rung, since it was not promoted.
        let mut cut: HashMap<String, u64> = HashMap::new();
        for r in store.study_trials(&plan.study.name)? {
            if let Some(step) = r.pruned_step.and_then(|s| u64::try_from(s).ok()) {
                cut.insert(r.trial_id, step);
            }
        }
        for (id, (v, _)) in &self.verdicts {
            cut.insert(id.to_string(), v.step);
        }
        let ids: HashSet<&TrialId> = plan.entries.iter().map(|e| &e.trial_id).collect();
        let mut series: HashMap<&TrialId, Vec<(u64, f64)>> = HashMap::new();
        for id in ids {
            let last = cut.get(id.as_str()).copied().unwrap_or(u64::MAX);
            let rows = store.metric_series(id.as_str(), name)?;
            let s: Vec<(u64, f64)> = rows
                .iter()
                .filter_map(|r| Some((u64::try_from(r.step).ok()?, r.value)))
                .filter(|(step, _)| *step <= last)
                .collect();
            series.insert(id, s);
        }
        let mut out = Vec::new();
        for id in running {
            if self.verdicts.contains_key(id) {
                continue;
            }
            let Some(own) = series.get(id) else { continue };
            let reached = asha::rungs_reached(prune, own);
            let from = self.judged.get(id).copied().unwrap_or(0);
            for rung in from..reached {
                self.judged.insert(id.clone(), rung + 1);
                let Some(step) = asha::rung_step(prune, rung) else {
                    break;
                };
                let Some(value) = asha::value_at(own, step) else {
                    continue;
                };
                let others: Vec<f64> = series
                    .iter()
                    .filter(|(other, _)| **other != id)
                    .filter_map(|(_, s)| asha::value_at(s, step).map(|(_, v)| v))
                    .collect();
                if let Some(v) =
                    asha::judge(prune, search.objective.direction, rung, value, &others)
                {
                    let line = v.describe(prune.metric.label());
                    out.push((id.clone(), line.clone()));
                    self.verdicts.insert(id.clone(), (v, line));
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The verdict on a trial that just ended, if the pruner stopped it: the step and
    /// value of the evaluation compared, and the verdict in words.
    pub fn take(&mut self, trial: &TrialId) -> Option<(i64, f64, String)> {
        self.judged.remove(trial);
        let (v, line) = self.verdicts.remove(trial)?;
        Some((i64::try_from(v.step).unwrap_or(i64::MAX), v.value, line))
    }
}

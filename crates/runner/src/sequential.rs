//! Sequential seeds: after the runs it has are done, a study whose claims are not decided
//! gets more seeds for those claims' variants and baselines (`stats::study::analyze`
//! decides how many), up to the plan's maximum. The allocation is recomputed from the
//! database every time, so a runner that was killed, or a second runner, arrives at the
//! same plan; seeds already run are never run again (same ids).

use std::collections::BTreeMap;

use spec::Study;
use stats::claims::PValues;
use stats::study::{analyze_with, Run, Scores, StudyAnalysis};
use store::Store;

use crate::plan::{plan_with_seeds, Plan};
use crate::RunnerError;

/// The runs of a study as the claims analysis reads them.
pub fn runs(store: &Store, study: &str) -> Result<Vec<Run>, RunnerError> {
    Ok(store
        .study_trials(study)?
        .iter()
        .map(|r| {
            Run::from_row(
                &r.variant,
                r.seed,
                r.status,
                scores(r),
                r.duplicate_of.as_deref(),
                r.duplicate_reason.as_deref(),
            )
        })
        .collect())
}

/// The numbers a claim or a search objective can name, from a database row.
pub fn scores(r: &store::StudyTrialRow) -> Scores {
    Scores {
        em: r.em,
        f1: r.f1,
        train_loss: r.train_loss,
        train_seconds: r.train_seconds,
        examples_per_second: r.examples_per_second,
        reported: r.final_metrics.clone(),
    }
}

/// The analysis of the study's claims from what the database holds now (decisions only:
/// the report computes the exact p-values).
pub fn analysis(store: &Store, study: &Study) -> Result<StudyAnalysis, RunnerError> {
    Ok(analyze_with(
        study,
        &runs(store, &study.name)?,
        PValues::Decisions,
    ))
}

/// The plan the study needs now: more seeds for undecided claims when their current
/// seeds are all in. `None` when `plan` already holds every trial needed.
pub fn extend(plan: &Plan, store: &Store) -> Result<Option<Plan>, RunnerError> {
    if !plan.study.seeds.is_sequential() {
        return Ok(None);
    }
    let a = analysis(store, &plan.study)?;
    let current = seeds_in(plan);
    if a.seeds
        .iter()
        .all(|(v, n)| current.get(v).copied().unwrap_or(0) >= *n)
    {
        return Ok(None);
    }
    for c in &a.claims {
        if let Some(x) = &c.analysis {
            if let stats::claims::Decision::Continue { next_seeds } = x.decision {
                tracing::info!(
                    "claim {} {} {} undecided ({}); {} now runs {next_seeds} seeds",
                    c.variant,
                    format!("{:?}", c.claim.expect).to_lowercase(),
                    c.baseline,
                    x.latest()
                        .map(|l| format!(
                            "interval [{:.2}, {:.2}] after {} seeds",
                            l.low, l.high, l.n
                        ))
                        .unwrap_or_else(|| "no look yet".into()),
                    c.variant
                );
            }
        }
    }
    Ok(Some(plan_with_seeds(
        &plan.study,
        &a.seeds,
        &a.priority,
        true,
    )?))
}

/// Records `plan` in the database.
pub fn save(plan: &Plan, store: &mut Store) -> Result<(), RunnerError> {
    let study = &plan.study;
    store.save_plan(
        &study.name,
        study.description.as_deref(),
        &study.source,
        &crate::plan::hash_hex(study.source.as_bytes(), 64),
        &plan.rows()?,
    )?;
    Ok(())
}

/// Records `plan` and extends it for as long as the claims ask for seeds whose runs the
/// database already has (a study resumed after more seeds were added); returns the plan to
/// run now.
pub fn settle(mut plan: Plan, store: &mut Store) -> Result<Plan, RunnerError> {
    loop {
        save(&plan, store)?;
        match extend(&plan, store)? {
            Some(next) if next != plan => plan = next,
            _ => return Ok(plan),
        }
    }
}

/// How many seeds each variant has in `plan`.
fn seeds_in(plan: &Plan) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in &plan.entries {
        *m.entry(e.trial.variant.clone()).or_insert(0) += 1;
    }
    m
}

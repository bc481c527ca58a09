//! One attempt of a trial, whatever runs it (a local child process or a Slurm array task):
//! tailing its metrics into the database while it runs, and recording its outcome, final
//! metrics, predictions and environment when it ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use qa_data::squad::Dataset;
use serde_json::Value;
use spec::protocol::{files, TrialId, TrialResult, TrialStatus};
use store::{EnvironmentRow, Finish, Store};

use crate::outcome::{classify, Stop};
use crate::plan::{hash_hex, Plan};
use crate::trial_dir::{self, log_tail, read_json, read_metrics};
use crate::RunnerError;

/// What the runner knows of a running attempt.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub trial_id: TrialId,
    pub attempt: u32,
    /// `variant (seed N)`, for logs.
    pub label: String,
    pub device: String,
    pub dir: PathBuf,
    pub eval_path: PathBuf,
    pub train_path: PathBuf,
    /// Where this attempt's part of stderr.log begins.
    pub stderr_from: u64,
    /// How far into metrics.jsonl the database is.
    pub offset: u64,
    pub started: Instant,
    pub last_ingest: Instant,
}

impl Attempt {
    pub fn new(
        workdir: &Path,
        trial_id: &TrialId,
        attempt: u32,
        config: &spec::TrialConfig,
        label: &str,
        device: &str,
    ) -> Self {
        let dir = trial_id.dir_in(workdir);
        let stderr_from = std::fs::metadata(dir.join(files::STDERR))
            .map(|m| m.len())
            .unwrap_or(0);
        Attempt {
            trial_id: trial_id.clone(),
            attempt,
            label: label.to_string(),
            device: device.to_string(),
            eval_path: std::path::absolute(&config.data.eval).unwrap_or(config.data.eval.clone()),
            train_path: std::path::absolute(&config.data.train)
                .unwrap_or(config.data.train.clone()),
            dir,
            stderr_from,
            offset: 0,
            started: Instant::now(),
            last_ingest: Instant::now(),
        }
    }
}

/// How an attempt ended, as its executor saw it.
#[derive(Debug)]
pub(crate) struct Ended {
    pub attempt: Attempt,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// What the runner did to it.
    pub stop: Stop,
    /// What the executor adds (a Slurm state).
    pub note: Option<String>,
    /// Cancelled by the user outside the runner (`scancel`): not resubmitted in this run.
    pub cancelled: bool,
}

/// Caches of things several trials share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    eval_sets: HashMap<PathBuf, Arc<Dataset>>,
    sha256: HashMap<PathBuf, String>,
}

/// Moves new metric lines into the database; returns a progress line when there is news.
pub(crate) fn ingest(
    a: &mut Attempt,
    store: &mut Store,
    final_read: bool,
) -> Result<Option<String>, RunnerError> {
    a.last_ingest = Instant::now();
    let from = if final_read { 0 } else { a.offset };
    let chunk = read_metrics(&a.dir, from)?;
    if chunk.metrics.is_empty() && chunk.evals.is_empty() && !chunk.rewound && !final_read {
        return Ok(None);
    }
    store.ingest_metrics(
        a.trial_id.as_str(),
        &chunk.metrics,
        &chunk.evals,
        chunk.offset,
        final_read || chunk.rewound,
    )?;
    a.offset = chunk.offset;
    let last = |name: &str| chunk.metrics.iter().rev().find(|m| m.name == name);
    Ok(last("loss").map(|loss| {
        let eps = last("examples_per_second").map(|m| format!("  {:.1} ex/s", m.value));
        format!(
            "step {}  loss {:.4}{}",
            loss.step,
            loss.value,
            eps.unwrap_or_default()
        )
    }))
}

/// Records an ended attempt: its outcome, final metrics, predictions and environment, in
/// that order, then releases the trial. `pruned` is where the pruner stopped it (the step
/// and value of the evaluation it compared), kept if it ends as pruned. Returns the status
/// and a one-line summary for the caller to show.
pub(crate) fn record_end(
    store: &mut Store,
    runner: &str,
    host: &str,
    ended: &mut Ended,
    shared: &mut Shared,
    pruned: Option<(i64, f64)>,
) -> Result<(TrialStatus, String), RunnerError> {
    let (code, signal) = (ended.code, ended.signal);
    let seconds = ended.attempt.started.elapsed().as_secs_f64();
    let a = &mut ended.attempt;
    let stderr_tail = log_tail(&a.dir.join(files::STDERR), a.stderr_from, 20);
    let result = TrialResult::read(&a.dir);
    let (trial_status, error) = classify(code, signal, ended.stop, &result, stderr_tail.as_deref());
    ingest(a, store, true)?;
    let mut f = Finish::new(trial_status);
    f.pruned = pruned.filter(|_| trial_status == TrialStatus::Pruned);
    f.exit_code = code;
    f.signal = signal;
    // The last line of stderr usually says what went wrong; keep it next to the status.
    let last_line = stderr_tail
        .as_deref()
        .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()))
        .map(str::trim);
    let error = match (trial_status, error, last_line) {
        (TrialStatus::Failed | TrialStatus::OutOfMemory, Some(e), Some(l)) => {
            Some(format!("{e}: {l}"))
        }
        (_, e, _) => e,
    };
    let error = match (ended.note.clone(), error) {
        (Some(n), Some(e)) => Some(format!("{n}; {e}")),
        (n, e) => n.or(e),
    };
    f.error = error.clone();
    f.stderr_tail = stderr_tail;
    if let Ok(Some(r)) = &result {
        f.em = Some(r.em);
        f.f1 = Some(r.f1);
        f.train_loss = r.train_loss;
        f.train_seconds = r.train_seconds;
        f.examples_per_second = r.examples_per_second;
        f.steps = i64::try_from(r.steps).ok();
        f.final_metrics = r.final_metrics();
    }
    if trial_status == TrialStatus::Succeeded {
        let scored = match eval_set(shared, &a.eval_path) {
            Ok(eval) => trial_dir::score_predictions(&a.dir, &eval)
                .map_err(|e| tracing::warn!("{}: predictions not stored: {e}", a.label))
                .ok(),
            Err(e) => {
                tracing::warn!("{}: predictions not scored: {e}", a.label);
                None
            }
        };
        // The trial's own EM/F1 against the official metric over its predictions: a
        // program may score differently (HF's `squad` metric splits on whitespace, which
        // for Chinese scores whole answers). The official score is what gets stored.
        if let (Some(s), Some(em), Some(f1)) = (&scored, f.em, f.f1) {
            let off = |x: f64, y: f64| (x - y).abs() > trial_dir::SCORE_TOLERANCE;
            if off(em, s.em) || off(f1, s.f1) {
                let note = format!(
                    "score mismatch: the trial reported EM {em:.2} / F1 {f1:.2}, its predictions.json scores EM {:.2} / F1 {:.2} by the official metric (stored)",
                    s.em, s.f1
                );
                tracing::warn!("{}: {note}", a.label);
                f.em = Some(s.em);
                f.f1 = Some(s.f1);
                f.error = Some(note);
            }
        }
        let predictions = scored.map(|s| s.rows).unwrap_or_default();
        let env = environment(a, host, shared);
        store.save_outputs(a.trial_id.as_str(), &predictions, Some(&env))?;
    }
    let held = store.finish(a.trial_id.as_str(), a.attempt, runner, &f)?;
    if !held {
        tracing::warn!(
            "{}: another runner took this trial over; its result is theirs to record",
            a.label
        );
    }
    let line = match (trial_status, f.em, f.f1) {
        (TrialStatus::Succeeded, Some(em), Some(f1)) => format!(
            "done  {} [{}] EM {em:.2} F1 {f1:.2} in {seconds:.0}s",
            a.label, a.device
        ),
        (s, _, _) => format!(
            "{s}  {} [{}]{}",
            a.label,
            a.device,
            error.map(|e| format!(": {e}")).unwrap_or_default()
        ),
    };
    Ok((trial_status, line))
}

pub(crate) fn eval_set(shared: &mut Shared, path: &Path) -> Result<Arc<Dataset>, RunnerError> {
    if let Some(d) = shared.eval_sets.get(path) {
        return Ok(Arc::clone(d));
    }
    let d = Arc::new(Dataset::load(path).map_err(|e| RunnerError::Check {
        what: path.display().to_string(),
        message: e.to_string(),
    })?);
    shared.eval_sets.insert(path.to_path_buf(), Arc::clone(&d));
    Ok(d)
}

fn file_sha256(shared: &mut Shared, path: &Path) -> Option<String> {
    if let Some(h) = shared.sha256.get(path) {
        return Some(h.clone());
    }
    let bytes = std::fs::read(path).ok()?;
    let h = hash_hex(&bytes, 64);
    shared.sha256.insert(path.to_path_buf(), h.clone());
    Some(h)
}

/// The trial's `env.json` plus what the runner knows: host and dataset hashes.
fn environment(r: &Attempt, host: &str, shared: &mut Shared) -> EnvironmentRow {
    let mut json = read_json(&r.dir, files::ENV).unwrap_or_default();
    let text = |m: &serde_json::Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).map(String::from)
    };
    let train_sha = file_sha256(shared, &r.train_path);
    let eval_sha = file_sha256(shared, &r.eval_path);
    json.insert("host".into(), host.into());
    json.insert("device".into(), r.device.clone().into());
    json.insert("train_sha256".into(), train_sha.clone().into());
    json.insert("eval_sha256".into(), eval_sha.clone().into());
    EnvironmentRow {
        git_commit: text(&json, "git_commit"),
        binary_version: text(&json, "binary_version"),
        backend: text(&json, "backend"),
        device_name: text(&json, "device_name"),
        host: Some(host.to_string()),
        train_sha256: train_sha,
        eval_sha256: eval_sha,
        json: Value::Object(json).to_string(),
    }
}

/// `variant (seed N)` for each trial id, naming every variant that shares it.
pub(crate) fn trial_labels(plan: &Plan) -> HashMap<TrialId, String> {
    let mut labels: HashMap<TrialId, String> = HashMap::new();
    for e in &plan.entries {
        let l = format!("{} (seed {})", e.trial.variant, e.trial.seed);
        labels
            .entry(e.trial_id.clone())
            .and_modify(|x| {
                x.push_str(" = ");
                x.push_str(&e.trial.variant);
            })
            .or_insert(l);
    }
    labels
}

/// The label of `trial_id` from [`trial_labels`], or the id itself.
pub(crate) fn label_of(labels: &HashMap<TrialId, String>, trial_id: &TrialId) -> String {
    labels
        .get(trial_id)
        .cloned()
        .unwrap_or_else(|| trial_id.to_string())
}

pub(crate) fn distinct_with(
    rows: &[store::StudyTrialRow],
    pred: impl Fn(TrialStatus) -> bool,
) -> usize {
    let mut ids: Vec<&str> = rows
        .iter()
        .filter(|r| pred(r.status))
        .map(|r| r.trial_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

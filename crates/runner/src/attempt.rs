//! One attempt of a trial, whatever runs it (a local child process or a Slurm array task):
//! tailing its metrics into the database while it runs, and recording its outcome, final
//! metrics, predictions and environment when it ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use qa_data::squad::Dataset;
use serde_json::Value;
use spec::protocol::{files, TrialStatus};
use store::{EnvironmentRow, Finish, Store};

use crate::outcome::{classify, Stop};
use crate::plan::{hash_hex, Plan};
use crate::trial_dir::{self, log_tail, read_json, read_metrics};
use crate::RunnerError;

/// What the runner knows of a running attempt.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub trial_id: String,
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
}

impl Attempt {
    pub fn new(
        workdir: &Path,
        claimed_id: &str,
        attempt: u32,
        config: &spec::TrialConfig,
        label: &str,
        device: &str,
    ) -> Self {
        let dir = trial_dir::trial_dir(workdir, claimed_id);
        let stderr_from = std::fs::metadata(dir.join(files::STDERR))
            .map(|m| m.len())
            .unwrap_or(0);
        Attempt {
            trial_id: claimed_id.to_string(),
            attempt,
            label: label.to_string(),
            device: device.to_string(),
            eval_path: std::path::absolute(&config.data.eval).unwrap_or(config.data.eval.clone()),
            train_path: std::path::absolute(&config.data.train)
                .unwrap_or(config.data.train.clone()),
            dir,
            stderr_from,
            offset: 0,
        }
    }
}

/// Who this runner is, once registered.
#[derive(Debug, Clone)]
pub(crate) struct RunnerIdentity {
    pub host: String,
    pub pid: u32,
    pub id: String,
    pub lease: f64,
}

/// Signals to the runner: how many SIGINT/SIGTERM so far, and a channel that wakes the
/// main loop on those and on SIGCHLD.
#[derive(Debug)]
pub(crate) struct Interrupts {
    pub count: Arc<AtomicUsize>,
    pub wake: std::sync::mpsc::Receiver<()>,
    pub handle: signal_hook::iterator::Handle,
}

impl Interrupts {
    pub fn install() -> Result<Self, RunnerError> {
        let count = Arc::new(AtomicUsize::new(0));
        let (tx, wake) = std::sync::mpsc::channel::<()>();
        let handle = watch_signals(Arc::clone(&count), tx)?;
        Ok(Interrupts {
            count,
            wake,
            handle,
        })
    }

    pub fn signals(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// What every executor does first: records the plan (extended as far as a sequential
/// study's finished runs already ask), registers this runner (lease and heartbeat), and
/// marks trials left running by dead runners interrupted so they resume. Returns the
/// runner's identity and the plan to run.
pub(crate) fn start_run(
    store: &mut Store,
    plan: &Plan,
    opts: &crate::RunOptions,
) -> Result<(RunnerIdentity, Plan), RunnerError> {
    let host = crate::host_name();
    let pid = std::process::id();
    let id = format!("{host}:{pid}:{}", hash_hex(store::now_text().as_bytes(), 8));
    let lease = opts.lease.as_secs_f64();
    store.heartbeat(&id, &host, pid, lease)?;
    for r in store.reclaim_orphans(&|h, p| h == host && crate::pid_is_dead(p))? {
        tracing::info!(
            "trial {} was left running by {} and is now interrupted; it will resume",
            r.trial_id,
            r.owner.as_deref().unwrap_or("an unknown runner")
        );
    }
    let plan = crate::sequential::settle(plan.clone(), store)?;
    Ok((
        RunnerIdentity {
            host,
            pid,
            id,
            lease,
        },
        plan,
    ))
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
    let from = if final_read { 0 } else { a.offset };
    let chunk = read_metrics(&a.dir, from)?;
    if chunk.metrics.is_empty() && chunk.evals.is_empty() && !chunk.rewound && !final_read {
        return Ok(None);
    }
    store.ingest_metrics(
        &a.trial_id,
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
/// that order, then releases the trial. `note` adds what the executor knows (a scheduler
/// state). Returns the status and a one-line summary for the caller to show.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_end(
    store: &mut Store,
    runner: &str,
    host: &str,
    a: &mut Attempt,
    code: Option<i32>,
    signal: Option<i32>,
    stop: Stop,
    note: Option<String>,
    seconds: f64,
    shared: &mut Shared,
) -> Result<(TrialStatus, String), RunnerError> {
    let stderr_tail = log_tail(&a.dir.join(files::STDERR), a.stderr_from, 20);
    let result = read_json(&a.dir, files::RESULT);
    let result_status = result
        .as_ref()
        .and_then(|m| m.get("status"))
        .and_then(Value::as_str);
    let (trial_status, error) = classify(code, signal, stop, result_status, stderr_tail.as_deref());
    ingest(a, store, true)?;
    let mut f = Finish::new(trial_status);
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
    let error = match (note, error) {
        (Some(n), Some(e)) => Some(format!("{n}; {e}")),
        (n, e) => n.or(e),
    };
    f.error = error.clone();
    f.stderr_tail = stderr_tail;
    if let Some(m) = &result {
        let num = |k: &str| m.get(k).and_then(Value::as_f64);
        f.em = num("EM");
        f.f1 = num("F1");
        f.train_loss = num("train_loss");
        f.train_seconds = num("train_seconds");
        f.examples_per_second = num("examples_per_second");
        f.steps = m.get("steps").and_then(Value::as_i64);
    }
    if trial_status == TrialStatus::Succeeded {
        let predictions = match eval_set(shared, &a.eval_path) {
            Ok(eval) => trial_dir::score_predictions(&a.dir, &eval).unwrap_or_else(|e| {
                tracing::warn!("{}: predictions not stored: {e}", a.label);
                Vec::new()
            }),
            Err(e) => {
                tracing::warn!("{}: predictions not scored: {e}", a.label);
                Vec::new()
            }
        };
        let env = environment(a, host, shared);
        store.save_outputs(&a.trial_id, &predictions, Some(&env))?;
    }
    let held = store.finish(&a.trial_id, a.attempt, runner, &f)?;
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
pub(crate) fn trial_labels(plan: &Plan) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = HashMap::new();
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
pub(crate) fn label_of(labels: &HashMap<String, String>, trial_id: &str) -> String {
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

/// SIGINT/SIGTERM to the runner count up (the main loop drains at 1 and kills at 2); they
/// and SIGCHLD (a child ended) wake the main loop at once.
fn watch_signals(
    count: Arc<AtomicUsize>,
    wake: std::sync::mpsc::Sender<()>,
) -> Result<signal_hook::iterator::Handle, RunnerError> {
    use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGCHLD]).map_err(|e| {
            RunnerError::Io {
                path: "signal handler".into(),
                source: e,
            }
        })?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig != SIGCHLD {
                count.fetch_add(1, Ordering::SeqCst);
            }
            if wake.send(()).is_err() {
                break;
            }
        }
    });
    Ok(handle)
}

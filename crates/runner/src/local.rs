//! The local executor: device slots, one child process per trial, the database kept up to
//! date as trials run.
//!
//! Crash safety comes from three mechanisms that do not depend on this process surviving:
//! leases in the database (a claim expires unless heartbeats extend it, and a dead owner on
//! this host is noticed at once), an exclusive lock each trial process holds on its folder,
//! and the trial process's own parent-death signal (it saves its state and exits when the
//! runner dies). Children run in their own process group, so a terminal's Ctrl-C reaches
//! only the runner, which drains: SIGTERM to every child, wait, record. A second Ctrl-C
//! sends SIGKILL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use qa_data::squad::Dataset;
use serde_json::Value;
use spec::protocol::{env, files, TrialStatus};
use spec::TrialConfig;
use store::{EnvironmentRow, Finish, Store};

use crate::outcome::{classify, Stop};
use crate::plan::{hash_hex, Plan};
use crate::progress::Progress;
use crate::trial_dir::{self, log_tail, read_json, read_metrics};
use crate::{host_name, pid_is_dead, RunOptions, RunnerError};

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Final status counts of this run's attempts.
    pub outcomes: HashMap<TrialStatus, usize>,
    /// Trials the plan shares between variants (run once).
    pub distinct_trials: usize,
    /// Trials already finished before this run.
    pub already_done: usize,
    /// The run was stopped by a signal.
    pub interrupted: bool,
}

struct Running {
    trial_id: String,
    attempt: u32,
    label: String,
    device: String,
    dir: PathBuf,
    eval_path: PathBuf,
    train_path: PathBuf,
    child: Child,
    started: Instant,
    stderr_from: u64,
    stop: Stop,
    term_sent: Option<Instant>,
    offset: u64,
    last_ingest: Instant,
    bar: ProgressBar,
}

/// Caches of things several trials share.
#[derive(Default)]
struct Shared {
    eval_sets: HashMap<PathBuf, Arc<Dataset>>,
    sha256: HashMap<PathBuf, String>,
}

/// Runs `plan` on this machine until every trial is done (or cannot run now), then returns.
pub fn run_local(plan: &Plan, opts: &RunOptions) -> Result<RunSummary, RunnerError> {
    if opts.trial_command.is_empty() {
        return Err(RunnerError::Invalid("no trial command".into()));
    }
    let mut store = Store::open(&opts.db)?;
    let study = &plan.study;
    store.save_plan(
        &study.name,
        study.description.as_deref(),
        &study.source,
        &hash_hex(study.source.as_bytes(), 64),
        &plan.rows()?,
    )?;
    let host = host_name();
    let pid = std::process::id();
    let runner_id = format!("{host}:{pid}:{}", hash_hex(store::now_text().as_bytes(), 8));
    let lease = opts.lease.as_secs_f64();
    store.heartbeat(&runner_id, &host, pid, lease)?;
    for r in store.reclaim_orphans(&|h, p| h == host && pid_is_dead(p))? {
        tracing::info!(
            "trial {} was left running by {} and is now interrupted; it will resume",
            r.trial_id,
            r.owner.as_deref().unwrap_or("an unknown runner")
        );
    }

    let signals = Arc::new(AtomicUsize::new(0));
    let (wake_tx, wake) = std::sync::mpsc::channel::<()>();
    let signal_thread = watch_signals(Arc::clone(&signals), wake_tx)?;
    let labels = trial_labels(plan);
    let rows = store.study_trials(&study.name)?;
    let mut summary = RunSummary {
        distinct_trials: plan.distinct_trials(),
        ..RunSummary::default()
    };
    let done_before = distinct_with(&rows, |s| s.is_final());
    summary.already_done = done_before;
    let progress = Progress::new(
        opts.progress,
        summary.distinct_trials as u64,
        done_before as u64,
    );
    tracing::info!(
        "study {}: {} trials ({} distinct runs), {} already done",
        study.name,
        plan.entries.len(),
        summary.distinct_trials,
        done_before
    );

    let slots: Vec<String> = opts
        .devices
        .iter()
        .flat_map(|d| std::iter::repeat_n(d.clone(), opts.per_device.max(1)))
        .collect();
    let mut running: Vec<Option<Running>> = slots.iter().map(|_| None).collect();
    let mut shared = Shared::default();
    let mut deferred: HashMap<String, (Instant, u32)> = HashMap::new();
    let mut last_heartbeat = Instant::now();
    let mut draining = false;
    let mut killed = false;
    let result = loop {
        let sig = signals.load(Ordering::SeqCst);
        if sig >= 1 && !draining {
            draining = true;
            summary.interrupted = true;
            progress.println(
                "stopping: waiting for running trials to save their state (Ctrl-C again to kill)",
            );
            tracing::warn!(
                "stopping: trials get SIGTERM and save their state; Ctrl-C again kills them"
            );
            for r in running.iter_mut().flatten() {
                signal_group(&r.child, Signal::SIGTERM);
                r.stop = Stop::Drain;
                r.term_sent = Some(Instant::now());
            }
        }
        if sig >= 2 && !killed {
            killed = true;
            for r in running.iter_mut().flatten() {
                signal_group(&r.child, Signal::SIGKILL);
            }
        }
        let mut nothing_to_claim = false;
        if !draining {
            let now = Instant::now();
            let excluded: Vec<String> = deferred
                .iter()
                .filter(|(_, (until, _))| *until > now)
                .map(|(id, _)| id.clone())
                .collect();
            for (slot, device) in slots.iter().enumerate() {
                if running[slot].is_some() {
                    continue;
                }
                let claimed = store.claim_next(
                    &study.name,
                    &runner_id,
                    device,
                    &host,
                    pid,
                    lease,
                    opts.retries,
                    &excluded,
                )?;
                let Some(c) = claimed else {
                    nothing_to_claim = true;
                    break;
                };
                let label = labels
                    .get(&c.trial_id)
                    .cloned()
                    .unwrap_or_else(|| c.trial_id.clone());
                match spawn(opts, &c, device, &label, &progress) {
                    Ok(r) => {
                        store.set_attempt_pid(&c.trial_id, c.attempt, r.child.id())?;
                        tracing::info!(
                            "start {label} on {device} (trial {}, attempt {})",
                            c.trial_id,
                            c.attempt
                        );
                        running[slot] = Some(r);
                    }
                    Err(e) => {
                        let mut f = Finish::new(TrialStatus::Failed);
                        f.error = Some(format!("could not start the trial process: {e}"));
                        store.finish(&c.trial_id, c.attempt, &runner_id, &f)?;
                        *summary.outcomes.entry(TrialStatus::Failed).or_default() += 1;
                        tracing::error!("{label}: {e}");
                    }
                }
            }
        }
        let mut freed_a_slot = false;
        for slot in running.iter_mut() {
            let Some(r) = slot.as_mut() else { continue };
            match r.child.try_wait() {
                Ok(Some(status)) => {
                    freed_a_slot = true;
                    let Some(r) = slot.take() else { continue };
                    let s = finish_attempt(
                        &mut store,
                        &runner_id,
                        &host,
                        r,
                        status,
                        &mut shared,
                        &progress,
                    )?;
                    if let Some((id, s)) = s {
                        if s == TrialStatus::Interrupted && !draining {
                            let entry = deferred.entry(id).or_insert((Instant::now(), 0));
                            entry.1 += 1;
                            // A folder held by another process: try again later, a few times.
                            let wait = if entry.1 > 5 {
                                3600
                            } else {
                                2 * u64::from(entry.1)
                            };
                            entry.0 = Instant::now() + Duration::from_secs(wait);
                        }
                        *summary.outcomes.entry(s).or_default() += 1;
                    }
                }
                Ok(None) => watch(r, opts, &mut store)?,
                Err(e) => {
                    tracing::error!("cannot wait for trial {}: {e}", r.trial_id);
                }
            }
        }
        if last_heartbeat.elapsed() >= opts.lease / 3 {
            store.heartbeat(&runner_id, &host, pid, lease)?;
            last_heartbeat = Instant::now();
        }
        let idle = running.iter().all(Option::is_none);
        let waiting = deferred
            .values()
            .any(|(until, n)| *until > Instant::now() && *n <= 5);
        if idle && (draining || (nothing_to_claim && !waiting)) {
            break Ok(());
        }
        if freed_a_slot {
            // Start the next trial at once.
            continue;
        }
        // Sleeps until a child exits or a signal arrives (SIGCHLD wakes it), at most `poll`.
        let _ = wake.recv_timeout(opts.poll);
        while wake.try_recv().is_ok() {}
    };
    progress.finish();
    signal_thread.close();
    store.unregister_runner(&runner_id)?;
    result.map(|()| summary)
}

/// `variant (seed N)` for each trial id, naming every variant that shares it.
fn trial_labels(plan: &Plan) -> HashMap<String, String> {
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

fn distinct_with(rows: &[store::StudyTrialRow], pred: impl Fn(TrialStatus) -> bool) -> usize {
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

fn signal_group(child: &Child, sig: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

fn spawn(
    opts: &RunOptions,
    claimed: &store::Claimed,
    device: &str,
    label: &str,
    progress: &Progress,
) -> Result<Running, RunnerError> {
    use std::os::unix::process::CommandExt;
    let config: TrialConfig = serde_json::from_str(&claimed.config)?;
    let dir = trial_dir::trial_dir(&opts.workdir, &claimed.trial_id);
    trial_dir::prepare(&dir, &config, device_for_child(device))?;
    let open_log = |name: &str| -> Result<(std::fs::File, u64), RunnerError> {
        let path = dir.join(name);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| RunnerError::Io {
                path: path.display().to_string(),
                source: e,
            })?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((f, len))
    };
    let (stdout, _) = open_log(files::STDOUT)?;
    let (stderr, stderr_from) = open_log(files::STDERR)?;
    let visible = device.strip_prefix("cuda:").unwrap_or("");
    let mut cmd = Command::new(&opts.trial_command[0]);
    cmd.args(&opts.trial_command[1..])
        .arg(&dir)
        .arg("--device")
        .arg(device_for_child(device))
        .env(env::TRIAL_ID, &claimed.trial_id)
        .env(env::RUNNER_PID, std::process::id().to_string())
        .env(env::CUDA_VISIBLE_DEVICES, visible)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Own process group: a terminal's Ctrl-C reaches the runner only, which decides.
        .process_group(0);
    let child = cmd.spawn().map_err(|e| RunnerError::Io {
        path: opts.trial_command[0].to_string_lossy().into_owned(),
        source: e,
    })?;
    let train_abs = std::path::absolute(&config.data.train).unwrap_or(config.data.train.clone());
    let eval_abs = std::path::absolute(&config.data.eval).unwrap_or(config.data.eval.clone());
    Ok(Running {
        trial_id: claimed.trial_id.clone(),
        attempt: claimed.attempt,
        label: label.to_string(),
        device: device.to_string(),
        dir,
        eval_path: eval_abs,
        train_path: train_abs,
        child,
        started: Instant::now(),
        stderr_from,
        stop: Stop::None,
        term_sent: None,
        offset: 0,
        last_ingest: Instant::now(),
        bar: progress.trial_line(&format!("{label} [{device}]")),
    })
}

/// The child sees only its GPU (`CUDA_VISIBLE_DEVICES`), as `cuda:0`.
fn device_for_child(device: &str) -> &str {
    if device.starts_with("cuda:") {
        "cuda:0"
    } else {
        "cpu"
    }
}

/// Ingests new metrics, enforces the timeout, escalates SIGTERM to SIGKILL after the grace.
fn watch(r: &mut Running, opts: &RunOptions, store: &mut Store) -> Result<(), RunnerError> {
    if let (Some(limit), Stop::None) = (opts.trial_timeout, r.stop) {
        if r.started.elapsed() > limit {
            tracing::warn!("{}: --trial-timeout reached; stopping it", r.label);
            signal_group(&r.child, Signal::SIGTERM);
            r.stop = Stop::Timeout;
            r.term_sent = Some(Instant::now());
        }
    }
    if let Some(t) = r.term_sent {
        if t.elapsed() > opts.kill_grace {
            signal_group(&r.child, Signal::SIGKILL);
        }
    }
    if r.last_ingest.elapsed() >= Duration::from_secs(1) {
        ingest(r, store, false)?;
        r.last_ingest = Instant::now();
    }
    Ok(())
}

fn ingest(r: &mut Running, store: &mut Store, final_read: bool) -> Result<(), RunnerError> {
    let from = if final_read { 0 } else { r.offset };
    let chunk = read_metrics(&r.dir, from)?;
    if chunk.metrics.is_empty() && chunk.evals.is_empty() && !chunk.rewound && !final_read {
        return Ok(());
    }
    store.ingest_metrics(
        &r.trial_id,
        &chunk.metrics,
        &chunk.evals,
        chunk.offset,
        final_read || chunk.rewound,
    )?;
    r.offset = chunk.offset;
    let last = |name: &str| chunk.metrics.iter().rev().find(|m| m.name == name);
    if let Some(loss) = last("loss") {
        let eps = last("examples_per_second").map(|m| format!("  {:.1} ex/s", m.value));
        r.bar.set_message(format!(
            "step {}  loss {:.4}{}",
            loss.step,
            loss.value,
            eps.unwrap_or_default()
        ));
        r.bar.tick();
    }
    Ok(())
}

/// Records an ended attempt: its outcome, final metrics, predictions and environment, in
/// that order, then releases the trial. Returns the trial id and status.
fn finish_attempt(
    store: &mut Store,
    runner: &str,
    host: &str,
    mut r: Running,
    status: std::process::ExitStatus,
    shared: &mut Shared,
    progress: &Progress,
) -> Result<Option<(String, TrialStatus)>, RunnerError> {
    use std::os::unix::process::ExitStatusExt;
    let stderr_tail = log_tail(&r.dir.join(files::STDERR), r.stderr_from, 20);
    let result = read_json(&r.dir, files::RESULT);
    let result_status = result
        .as_ref()
        .and_then(|m| m.get("status"))
        .and_then(Value::as_str);
    let (trial_status, error) = classify(
        status.code(),
        status.signal(),
        r.stop,
        result_status,
        stderr_tail.as_deref(),
    );
    ingest(&mut r, store, true)?;
    let mut f = Finish::new(trial_status);
    f.exit_code = status.code();
    f.signal = status.signal();
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
    f.error = error.clone();
    f.stderr_tail = stderr_tail.clone();
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
        let predictions = match eval_set(shared, &r.eval_path) {
            Ok(eval) => trial_dir::score_predictions(&r.dir, &eval).unwrap_or_else(|e| {
                tracing::warn!("{}: predictions not stored: {e}", r.label);
                Vec::new()
            }),
            Err(e) => {
                tracing::warn!("{}: predictions not scored: {e}", r.label);
                Vec::new()
            }
        };
        let env = environment(&r, host, shared);
        store.save_outputs(&r.trial_id, &predictions, Some(&env))?;
    }
    let held = store.finish(&r.trial_id, r.attempt, runner, &f)?;
    if !held {
        tracing::warn!(
            "{}: another runner took this trial over; its result is theirs to record",
            r.label
        );
    }
    let line = match (trial_status, f.em, f.f1) {
        (TrialStatus::Succeeded, Some(em), Some(f1)) => {
            format!(
                "done  {} [{}] EM {em:.2} F1 {f1:.2} in {:.0}s",
                r.label,
                r.device,
                r.started.elapsed().as_secs_f64()
            )
        }
        (s, _, _) => format!(
            "{s}  {} [{}]{}",
            r.label,
            r.device,
            error.map(|e| format!(": {e}")).unwrap_or_default()
        ),
    };
    if trial_status == TrialStatus::Succeeded {
        tracing::info!("{line}");
    } else {
        tracing::warn!("{line}");
    }
    progress.println(&line);
    progress.finish_trial(&r.bar, trial_status.is_final());
    Ok(Some((r.trial_id, trial_status)))
}

fn eval_set(shared: &mut Shared, path: &Path) -> Result<Arc<Dataset>, RunnerError> {
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
fn environment(r: &Running, host: &str, shared: &mut Shared) -> EnvironmentRow {
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

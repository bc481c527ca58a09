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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use spec::protocol::{env, files, TrialStatus};
use spec::TrialConfig;
use store::{Finish, Store};

use crate::attempt::Interrupts;
use crate::attempt::{
    distinct_with, ingest, label_of, record_end, start_run, trial_labels, Attempt, RunnerIdentity,
    Shared,
};
use crate::outcome::Stop;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::trial_dir;
use crate::{RunOptions, RunnerError};

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
    a: Attempt,
    child: Child,
    started: Instant,
    stop: Stop,
    term_sent: Option<Instant>,
    last_ingest: Instant,
    bar: ProgressBar,
}

/// Runs `plan` on this machine until every trial is done (or cannot run now), then returns.
pub fn run_local(plan: &Plan, opts: &RunOptions) -> Result<RunSummary, RunnerError> {
    if opts.trial_command.is_empty() {
        return Err(RunnerError::Invalid("no trial command".into()));
    }
    let mut store = Store::open(&opts.db)?;
    let (
        RunnerIdentity {
            host,
            pid,
            id: runner_id,
            lease,
        },
        mut plan,
    ) = start_run(&mut store, plan, opts)?;
    let study = plan.study.clone();
    let interrupts = Interrupts::install()?;
    let mut labels = trial_labels(&plan);
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
        let sig = interrupts.signals();
        if sig >= 1 && !draining {
            draining = true;
            summary.interrupted = true;
            progress.log(
                "stopping: trials get SIGTERM and save their state; Ctrl-C again kills them",
                false,
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
                let label = label_of(&labels, &c.trial_id);
                match spawn(opts, &c, device, &label, &progress) {
                    Ok(r) => {
                        store.set_attempt_pid(&c.trial_id, c.attempt, r.child.id())?;
                        progress.log(
                            &format!(
                                "start {label} on {device} (trial {}, attempt {})",
                                c.trial_id, c.attempt
                            ),
                            true,
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
                    let (id, s) = finish_attempt(
                        &mut store,
                        &runner_id,
                        &host,
                        r,
                        status,
                        &mut shared,
                        &progress,
                    )?;
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
                Ok(None) => watch(r, opts, &mut store)?,
                Err(e) => {
                    tracing::error!("cannot wait for trial {}: {e}", r.a.trial_id);
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
            // A sequential study whose claims are not decided yet gets more seeds.
            if !draining {
                if let Some(next) = crate::sequential::extend(&plan, &store)? {
                    crate::sequential::save(&next, &mut store)?;
                    plan = next;
                    labels = trial_labels(&plan);
                    summary.distinct_trials = plan.distinct_trials();
                    progress.set_total(summary.distinct_trials as u64);
                    continue;
                }
            }
            break Ok(());
        }
        if freed_a_slot {
            // Start the next trial at once.
            continue;
        }
        // Sleeps until a child exits or a signal arrives (SIGCHLD wakes it), at most `poll`.
        let _ = interrupts.wake.recv_timeout(opts.poll);
        while interrupts.wake.try_recv().is_ok() {}
    };
    progress.finish();
    interrupts.handle.close();
    store.unregister_runner(&runner_id)?;
    result.map(|()| summary)
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
    // Made before the logs are opened, so it notes where this attempt's stderr begins.
    let attempt = Attempt::new(
        &opts.workdir,
        &claimed.trial_id,
        claimed.attempt,
        &config,
        label,
        device,
    );
    let dir = attempt.dir.clone();
    trial_dir::prepare(&dir, &config, device_for_child(device))?;
    let open_log = |name: &str| -> Result<std::fs::File, RunnerError> {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| RunnerError::Io {
                path: path.display().to_string(),
                source: e,
            })
    };
    let stdout = open_log(files::STDOUT)?;
    let stderr = open_log(files::STDERR)?;
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
    Ok(Running {
        a: attempt,
        child,
        started: Instant::now(),
        stop: Stop::None,
        term_sent: None,
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
            tracing::warn!("{}: --trial-timeout reached; stopping it", r.a.label);
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
        if let Some(msg) = ingest(&mut r.a, store, false)? {
            r.bar.set_message(msg);
            r.bar.tick();
        }
        r.last_ingest = Instant::now();
    }
    Ok(())
}

/// Records an ended child through [`record_end`]; returns the trial id and status.
fn finish_attempt(
    store: &mut Store,
    runner: &str,
    host: &str,
    mut r: Running,
    status: std::process::ExitStatus,
    shared: &mut Shared,
    progress: &Progress,
) -> Result<(String, TrialStatus), RunnerError> {
    use std::os::unix::process::ExitStatusExt;
    let (trial_status, line) = record_end(
        store,
        runner,
        host,
        &mut r.a,
        status.code(),
        status.signal(),
        r.stop,
        None,
        r.started.elapsed().as_secs_f64(),
        shared,
    )?;
    progress.log(&line, trial_status == TrialStatus::Succeeded);
    progress.finish_trial(&r.bar, trial_status.is_final());
    Ok((r.a.trial_id, trial_status))
}

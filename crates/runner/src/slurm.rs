//! The Slurm executor: pending trials go to the cluster as one job array per batch
//! (`sbatch --array=0-N%K`), one array task per trial running the trial command on a
//! compute node. Trial folders live on the shared filesystem (`--workdir`); the database
//! stays here and only this runner writes it.
//!
//! The runner polls `sacct` (or `squeue --states=all` where accounting is off) every
//! `poll`, ingests metrics as they grow, and maps Slurm states to outcomes. A task's batch
//! script forwards SIGTERM (scancel, preemption, `--signal` before the time limit) to the
//! trial, which saves its state, and records the trial's exit code next to it; such a
//! trial is resubmitted and resumes. The runner may exit at any time: the next `sweep run`
//! finds the job ids in the database and reattaches. The loop around this is the
//! scheduler's ([`crate::scheduler`]), shared with the local executor.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use spec::protocol::{TrialId, TrialStatus};
use spec::slurm::{time_limit_seconds, SlurmSpec};
use spec::Device;
use store::Store;

use crate::attempt::{Attempt, Ended};
use crate::executor::{AfterInterrupt, Claim, Executor, Handle, LaunchReport, Launched};
use crate::outcome::Stop;
use crate::plan::{hash_hex, Plan};
use crate::{host_name, RunOptions, RunnerError};

/// The executor name recorded on attempts.
pub const EXECUTOR: &str = "slurm";

/// Slurm settings: the study's `executor.slurm`, overridden by the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmOptions {
    pub spec: SlurmSpec,
    /// How often to ask Slurm about the jobs.
    pub poll: Duration,
}

fn io(what: &str, e: std::io::Error) -> RunnerError {
    RunnerError::Io {
        path: what.to_string(),
        source: e,
    }
}

/// The device a task's trial uses: the GPU Slurm gives it, or the CPU.
fn task_device(spec: &SlurmSpec) -> Device {
    if spec.gres.as_deref().is_some_and(|g| g.contains("gpu")) {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Refuses a path that cannot travel safely: a newline would split the tasks file's lines
/// and a script line, `%` is a pattern character in sbatch's `--output`.
pub fn check_path(what: &str, path: &Path) -> Result<(), RunnerError> {
    let text = path.to_string_lossy();
    if let Some(c) = text.chars().find(|c| c.is_control() || *c == '%') {
        return Err(RunnerError::Invalid(format!(
            "{what} {text:?} holds {c:?}; paths used with Slurm may not hold control characters or %"
        )));
    }
    Ok(())
}

/// The sbatch options of an array of `n` tasks, as argv: values from the study and the
/// command line are validated (`SlurmSpec::validate`) and passed verbatim, one argument
/// each, never as script text.
pub fn sbatch_args(
    study: &str,
    n: usize,
    log_dir: &Path,
    spec: &SlurmSpec,
) -> Result<Vec<String>, RunnerError> {
    spec.validate()
        .map_err(|e| RunnerError::Invalid(format!("slurm option {}: {}", e.key, e.message)))?;
    check_path("the Slurm log folder", log_dir)?;
    let max = spec
        .max_parallel
        .map(|k| format!("%{k}"))
        .unwrap_or_default();
    // Requeue after preemption or node failure; SIGTERM to the batch shell before the time
    // limit (60 s, or a third of a limit under 3 minutes), which the trial turns into a
    // saved state.
    let lead = spec
        .time
        .as_deref()
        .and_then(time_limit_seconds)
        .map_or(60, |t| if t < 180 { (t / 3).max(5) } else { 60 });
    let mut args = vec![
        format!("--job-name=sweep-{study}"),
        format!("--array=0-{}{max}", n.saturating_sub(1)),
        format!("--output={}/%A_%a.out", log_dir.display()),
        "--requeue".to_string(),
        format!("--signal=B:TERM@{lead}"),
    ];
    if let Some(p) = &spec.partition {
        args.push(format!("--partition={p}"));
    }
    if let Some(g) = &spec.gres {
        args.push(format!("--gres={g}"));
    }
    if let Some(c) = spec.cpus_per_task {
        args.push(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = &spec.mem {
        args.push(format!("--mem={m}"));
    }
    if let Some(t) = &spec.time {
        args.push(format!("--time={t}"));
    }
    args.extend(spec.extra_args.iter().cloned());
    Ok(args)
}

/// The batch script for an array over the trial folders listed in `tasks_file`. It holds no
/// value from a study: only the (quoted) tasks file, the (quoted) trial command and the
/// device, which the runner chooses.
pub fn batch_script(
    tasks_file: &Path,
    spec: &SlurmSpec,
    trial_command: &[OsString],
) -> Result<String, RunnerError> {
    check_path("the tasks file", tasks_file)?;
    let mut cmd = Vec::new();
    for c in trial_command {
        check_path("the trial command", Path::new(c))?;
        cmd.push(shell_quote(&c.to_string_lossy()));
    }
    Ok(format!(
        r#"#!/bin/bash
set -u
DIR=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {tasks})
export SWEEP_TRIAL_ID=$(basename "$DIR")
{cmd} "$DIR" --device {device} >>"$DIR/stdout.log" 2>>"$DIR/stderr.log" &
child=$!
# scancel, preemption and the time-limit signal reach this shell: pass them on and wait
# for the trial to save its state.
trap 'kill -TERM $child 2>/dev/null' TERM INT
wait $child; rc=$?
# Above 128: the wait was cut short by a trapped signal (wait again for the real code), or
# the trial died of a signal (then it is already reaped and wait says 127).
while [ $rc -gt 128 ]; do
  wait $child; r=$?
  [ $r -eq 127 ] && break
  rc=$r
done
echo $rc > "$DIR/exit-${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
exit $rc
"#,
        tasks = shell_quote(&tasks_file.display().to_string()),
        cmd = cmd.join(" "),
        device = task_device(spec),
    ))
}

fn run_cmd(program: &str, args: &[&str]) -> Result<String, RunnerError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| io(&format!("{program} (is Slurm installed here?)"), e))?;
    if !out.status.success() {
        return Err(RunnerError::Invalid(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits the script with its options as argv; returns the array job id.
fn submit(options: &[String], script_path: &Path) -> Result<String, RunnerError> {
    let mut args: Vec<&str> = vec!["--parsable"];
    args.extend(options.iter().map(String::as_str));
    let script = script_path.display().to_string();
    args.push(&script);
    let out = run_cmd("sbatch", &args)?;
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(RunnerError::Invalid(format!(
            "sbatch printed {out:?}, not a job id"
        )));
    }
    Ok(id)
}

/// Slurm's view of array tasks: `"<job>_<task>"` → (state, exit code).
fn query_states(job_ids: &[String]) -> HashMap<String, (String, Option<i32>)> {
    let mut map = HashMap::new();
    if job_ids.is_empty() {
        return map;
    }
    let list = job_ids.join(",");
    if let Ok(out) = run_cmd(
        "sacct",
        &["-n", "-P", "-X", "-j", &list, "-o", "JobID,State,ExitCode"],
    ) {
        for line in out.lines() {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() >= 3 {
                let state = f[1].split_whitespace().next().unwrap_or("").to_string();
                let code = f[2].split(':').next().and_then(|c| c.parse().ok());
                map.insert(f[0].to_string(), (state, code));
            }
        }
        if !map.is_empty() {
            return map;
        }
    }
    // Accounting off (small clusters, CI): squeue remembers finished jobs for MinJobAge.
    if let Ok(out) = run_cmd(
        "squeue",
        &["-h", "--states=all", "-j", &list, "-o", "%i|%T"],
    ) {
        for line in out.lines() {
            if let Some((id, state)) = line.split_once('|') {
                map.insert(id.trim().to_string(), (state.trim().to_string(), None));
            }
        }
    }
    map
}

/// What a Slurm state means for the trial, given the exit code the task recorded.
fn slurm_outcome(state: &str, recorded: Option<i32>) -> (Option<i32>, Option<i32>, Stop, String) {
    let note = format!("slurm state {state}");
    match state {
        // A trial that hit the time limit kept its last checkpoint: resubmit and resume.
        "TIMEOUT" | "CANCELLED" | "PREEMPTED" | "NODE_FAIL" | "BOOT_FAIL" | "DEADLINE" => (
            recorded.or(Some(spec::protocol::exit::INTERRUPTED)),
            None,
            Stop::Drain,
            note,
        ),
        "OUT_OF_MEMORY" => (
            Some(spec::protocol::exit::OUT_OF_MEMORY),
            None,
            Stop::None,
            note,
        ),
        _ => (recorded, None, Stop::None, note),
    }
}

const TERMINAL: [&str; 10] = [
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CANCELLED",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
];

/// Follows Slurm array tasks: submits what the scheduler claims as one array per batch,
/// asks `sacct`/`squeue` about them every `poll`, and maps their end to outcomes.
pub(crate) struct SlurmExecutor {
    spec: SlurmSpec,
    poll: Duration,
    trial_command: Vec<OsString>,
    study: String,
    slurm_dir: PathBuf,
    tracked: Vec<(Attempt, String)>,
    /// Tasks scancelled by the pruner: their end is recorded as pruned, not cancelled.
    pruned: std::collections::HashSet<String>,
    last_poll: Option<Instant>,
}

impl SlurmExecutor {
    pub fn new(opts: &RunOptions, slurm: &SlurmOptions, study: &str) -> Result<Self, RunnerError> {
        let slurm_dir = opts.workdir.join("slurm");
        std::fs::create_dir_all(&slurm_dir).map_err(|e| io(&slurm_dir.display().to_string(), e))?;
        Ok(SlurmExecutor {
            spec: slurm.spec.clone(),
            poll: slurm.poll,
            trial_command: opts.trial_command.clone(),
            study: study.to_string(),
            slurm_dir,
            tracked: Vec::new(),
            pruned: Default::default(),
            last_poll: None,
        })
    }

    /// Writes the tasks file and the script and submits them; returns the array job id.
    fn submit_batch(&self, batch: &[Attempt]) -> Result<String, RunnerError> {
        let stamp = hash_hex(store::now_text().as_bytes(), 8);
        let tasks = self.slurm_dir.join(format!("{}-{stamp}.tasks", self.study));
        let dirs: Vec<String> = batch
            .iter()
            .map(|a| {
                std::path::absolute(&a.dir)
                    .map(|p| p.display().to_string())
                    .map_err(|e| io("workdir", e))
            })
            .collect::<Result<_, _>>()?;
        spec::atomic::write_file(&tasks, (dirs.join("\n") + "\n").as_bytes())
            .map_err(|e| io(&e.path.display().to_string(), e.source))?;
        let script = batch_script(
            &std::path::absolute(&tasks).map_err(|e| io("tasks", e))?,
            &self.spec,
            &self.trial_command,
        )?;
        let options = sbatch_args(
            &self.study,
            batch.len(),
            &std::path::absolute(&self.slurm_dir).map_err(|e| io("slurm dir", e))?,
            &self.spec,
        )?;
        let script_path = self
            .slurm_dir
            .join(format!("{}-{stamp}.sbatch", self.study));
        spec::atomic::write_file(&script_path, script.as_bytes())
            .map_err(|e| io(&e.path.display().to_string(), e.source))?;
        submit(&options, &script_path)
    }
}

impl Executor for SlurmExecutor {
    fn name(&self) -> &'static str {
        EXECUTOR
    }

    fn devices(&self) -> Vec<Device> {
        vec![task_device(&self.spec)]
    }

    fn start(&mut self, claim: &mut Claim<'_>) -> LaunchReport {
        let mut report = LaunchReport::default();
        let device = task_device(&self.spec);
        let mut batch: Vec<Attempt> = Vec::new();
        while let Some(a) = report.claim_next(claim, EXECUTOR, device) {
            batch.push(a);
        }
        if batch.is_empty() {
            return report;
        }
        match self.submit_batch(&batch) {
            Ok(job) => {
                tracing::info!(
                    "submitted slurm array job {job} with {} task(s)",
                    batch.len()
                );
                for (i, a) in batch.into_iter().enumerate() {
                    let task = format!("{job}_{i}");
                    report
                        .launched
                        .push(Launched::running(&a, Handle::Job(task.clone())));
                    self.tracked.push((a, task));
                }
            }
            Err(e) => {
                // Nothing was submitted: the trials go back as they were, and the run stops.
                for a in batch {
                    report.launched.push(Launched::NotStarted {
                        attempt: a,
                        status: TrialStatus::Interrupted,
                        error: format!("sbatch failed: {e}"),
                    });
                }
                report.fatal = Some(e);
            }
        }
        report
    }

    fn adopt(&mut self, attempt: Attempt, job: String) {
        tracing::info!("reattached to {}: slurm job {job}", attempt.label);
        self.tracked.push((attempt, job));
    }

    fn poll(&mut self) -> Vec<Ended> {
        if self.last_poll.is_some_and(|t| t.elapsed() < self.poll) || self.tracked.is_empty() {
            return Vec::new();
        }
        self.last_poll = Some(Instant::now());
        let mut arrays: Vec<String> = self
            .tracked
            .iter()
            .map(|(_, job)| job.split('_').next().unwrap_or(job).to_string())
            .collect();
        arrays.sort();
        arrays.dedup();
        let states = query_states(&arrays);
        let mut ended = Vec::new();
        let mut still = Vec::new();
        for (a, job) in self.tracked.drain(..) {
            let recorded = read_exit(&a.dir, &job);
            let state = states.get(&job).map(|(s, _)| s.clone());
            let finished = match &state {
                Some(s) => TERMINAL.contains(&s.as_str()),
                // Unknown to Slurm (forgotten after MinJobAge): done if it left its code.
                None => recorded.is_some(),
            };
            if !finished {
                still.push((a, job));
                continue;
            }
            let slurm_state = state.as_deref().unwrap_or("COMPLETED");
            let (code, signal, stop, note) = slurm_outcome(
                slurm_state,
                recorded.or_else(|| states.get(&job).and_then(|s| s.1)),
            );
            let pruned = self.pruned.remove(&job);
            ended.push(Ended {
                attempt: a,
                code,
                signal,
                stop: if pruned { Stop::Prune } else { stop },
                note: Some(note),
                cancelled: slurm_state == "CANCELLED" && !pruned,
            });
        }
        self.tracked = still;
        ended
    }

    fn running(&mut self) -> Vec<&mut Attempt> {
        self.tracked.iter_mut().map(|(a, _)| a).collect()
    }

    fn prune(&mut self, trial: &TrialId) -> bool {
        let Some((_, job)) = self.tracked.iter().find(|(a, _)| a.trial_id == *trial) else {
            return false;
        };
        // The batch script passes scancel's SIGTERM on to the trial, which saves its state.
        match run_cmd("scancel", &[job.as_str()]) {
            Ok(_) => {
                self.pruned.insert(job.clone());
                true
            }
            Err(e) => {
                tracing::warn!("pruning {job}: {e}; it runs to its end");
                false
            }
        }
    }

    fn interrupt(&mut self, _count: usize) -> AfterInterrupt {
        tracing::warn!(
            "detaching: {} slurm task(s) keep running; `sweep run` again reattaches, `sweep cancel {}` stops them",
            self.tracked.len(),
            self.study
        );
        AfterInterrupt::Detach
    }

    fn poll_interval(&self) -> Duration {
        self.poll.min(Duration::from_secs(1))
    }
}

/// The exit code the batch script recorded for `job` (`<array>_<task>`).
fn read_exit(dir: &Path, job: &str) -> Option<i32> {
    std::fs::read_to_string(dir.join(format!("exit-{job}")))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// `sweep cancel`: scancel every Slurm task of the study and mark its trial interrupted.
pub fn cancel(db: &Path, study: &str) -> Result<usize, RunnerError> {
    let mut store = Store::open(db)?;
    let jobs = store.scheduler_jobs(study, EXECUTOR)?;
    if jobs.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = jobs.iter().map(|(_, _, j)| j.as_str()).collect();
    run_cmd("scancel", &ids)?;
    let host = host_name();
    let pid = std::process::id();
    let runner_id = format!("{host}:{pid}:cancel");
    store.heartbeat(&runner_id, &host, pid, 60.0)?;
    for (trial, attempt, job) in &jobs {
        store.adopt(trial, &runner_id, 60.0)?;
        let mut f = store::Finish::new(TrialStatus::Interrupted);
        f.error = Some(format!("cancelled by `sweep cancel` (slurm job {job})"));
        store.finish(trial, *attempt, &runner_id, &f)?;
    }
    store.unregister_runner(&runner_id)?;
    Ok(jobs.len())
}

/// What `sweep plan --executor slurm` shows: the sbatch command line (each argument
/// shell-quoted for display; the runner passes them as argv) and the script, for every
/// runnable trial of the plan.
pub fn preview_script(
    plan: &Plan,
    workdir: &Path,
    spec: &SlurmSpec,
    trial_command: &[OsString],
) -> Result<String, RunnerError> {
    let n = plan.distinct_trials();
    let slurm_dir: PathBuf =
        std::path::absolute(workdir.join("slurm")).unwrap_or(workdir.join("slurm"));
    let args = sbatch_args(&plan.study.name, n, &slurm_dir, spec)?;
    let script_path = slurm_dir.join(format!("{}-<batch>.sbatch", plan.study.name));
    let script = batch_script(
        &slurm_dir.join(format!("{}-<batch>.tasks", plan.study.name)),
        spec,
        trial_command,
    )?;
    let line: Vec<String> = std::iter::once("sbatch --parsable".to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .chain(std::iter::once(shell_quote(
            &script_path.display().to_string(),
        )))
        .collect();
    Ok(format!(
        "# submitted as (options passed as argv, one argument each):\n# {}\n{script}",
        line.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_argv_and_the_script_holds_no_study_value() {
        let spec = SlurmSpec {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            time: Some("04:00:00".into()),
            max_parallel: Some(4),
            extra_args: vec!["--account=lab".into(), "--comment=$(touch x); `y`".into()],
            ..SlurmSpec::default()
        };
        let args = sbatch_args("hw", 12, Path::new("/s"), &spec).unwrap();
        for want in [
            "--array=0-11%4",
            "--partition=gpu",
            "--gres=gpu:1",
            "--time=04:00:00",
            "--signal=B:TERM@60",
            "--requeue",
            "--account=lab",
            "--comment=$(touch x); `y`",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
        let script = batch_script(
            Path::new("/s/t.tasks"),
            &spec,
            &["/bin/sweep".into(), "trial".into()],
        )
        .unwrap();
        assert!(!script.contains("#SBATCH"), "{script}");
        assert!(!script.contains("touch"), "{script}");
        for want in [
            "'/bin/sweep' 'trial' \"$DIR\" --device cuda:0",
            "trap 'kill -TERM $child",
        ] {
            assert!(script.contains(want), "{want} missing from\n{script}");
        }
        let mut bad = spec.clone();
        bad.partition = Some("debug\ntouch PWNED".into());
        let e = sbatch_args("hw", 1, Path::new("/s"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("partition"), "{e}");
        for path in ["/s/a\nb.tasks", "/s/%x.tasks"] {
            assert!(batch_script(Path::new(path), &spec, &["x".into()]).is_err());
        }
        assert_eq!(
            slurm_outcome("CANCELLED", None).0,
            Some(spec::protocol::exit::INTERRUPTED)
        );
        assert_eq!(
            slurm_outcome("OUT_OF_MEMORY", Some(1)).0,
            Some(spec::protocol::exit::OUT_OF_MEMORY)
        );
    }
}

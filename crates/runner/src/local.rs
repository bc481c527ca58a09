//! The local executor: device slots (`--devices`, `--per-device`), one child process per
//! trial in its own process group (a terminal's Ctrl-C reaches only the runner, which
//! decides), `--trial-timeout` enforced with SIGTERM then SIGKILL after the grace.
//!
//! Crash safety does not depend on this process surviving: the database's leases, the
//! trial folder's lock and the trial's parent-death signal (`trial_process`) cover a
//! runner killed by `kill -9`. See docs/trial-lifecycle.md.

use std::ffi::OsString;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use spec::protocol::{env, files, TrialStatus};
use spec::Device;

use crate::attempt::{Attempt, Ended};
use crate::executor::{AfterInterrupt, Claim, Executor, Handle, LaunchReport, Launched};
use crate::outcome::Stop;
use crate::{RunOptions, RunnerError};

struct Running {
    attempt: Attempt,
    child: Child,
    stop: Stop,
    term_sent: Option<Instant>,
}

struct Slot {
    device: Device,
    running: Option<Running>,
}

pub(crate) struct LocalExecutor {
    slots: Vec<Slot>,
    trial_command: Vec<OsString>,
    trial_timeout: Option<Duration>,
    kill_grace: Duration,
    poll: Duration,
}

impl LocalExecutor {
    pub fn new(opts: &RunOptions) -> Result<Self, RunnerError> {
        if opts.trial_command.is_empty() {
            return Err(RunnerError::Invalid("no trial command".into()));
        }
        if opts.devices.is_empty() {
            return Err(RunnerError::Invalid("no device to run trials on".into()));
        }
        let slots = opts
            .devices
            .iter()
            .flat_map(|d| std::iter::repeat_n(*d, opts.per_device.max(1)))
            .map(|device| Slot {
                device,
                running: None,
            })
            .collect();
        Ok(LocalExecutor {
            slots,
            trial_command: opts.trial_command.clone(),
            trial_timeout: opts.trial_timeout,
            kill_grace: opts.kill_grace,
            poll: opts.poll,
        })
    }

    fn spawn(&self, a: &Attempt, device: Device) -> Result<Child, RunnerError> {
        use std::os::unix::process::CommandExt;
        let open_log = |name: &str| -> Result<std::fs::File, RunnerError> {
            let path = a.dir.join(name);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| RunnerError::Io {
                    path: path.display().to_string(),
                    source: e,
                })
        };
        let mut cmd = Command::new(&self.trial_command[0]);
        cmd.args(&self.trial_command[1..])
            .arg(&a.dir)
            .arg("--device")
            .arg(device.inside_child().to_string())
            .env(env::TRIAL_ID, a.trial_id.as_str())
            .env(env::RUNNER_PID, std::process::id().to_string())
            .env(env::CUDA_VISIBLE_DEVICES, device.cuda_visible_devices())
            .env(env::ATTEMPT, a.attempt.to_string())
            .stdin(Stdio::null())
            .stdout(open_log(files::STDOUT)?)
            .stderr(open_log(files::STDERR)?)
            // Own process group: a terminal's Ctrl-C reaches the runner only.
            .process_group(0);
        cmd.spawn().map_err(|e| RunnerError::Io {
            path: self.trial_command[0].to_string_lossy().into_owned(),
            source: e,
        })
    }
}

fn signal_group(child: &Child, sig: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn devices(&self) -> Vec<Device> {
        let mut out: Vec<Device> = Vec::new();
        for s in &self.slots {
            if !out.contains(&s.device) {
                out.push(s.device);
            }
        }
        out
    }

    fn start(&mut self, claim: &mut Claim<'_>) -> LaunchReport {
        let mut report = LaunchReport::default();
        for i in 0..self.slots.len() {
            if self.slots[i].running.is_some() {
                continue;
            }
            let device = self.slots[i].device;
            let Some(attempt) =
                report.claim_next(claim, &device.to_string(), device.inside_child())
            else {
                break;
            };
            match self.spawn(&attempt, device) {
                Ok(child) => {
                    report
                        .launched
                        .push(Launched::running(&attempt, Handle::Pid(child.id())));
                    self.slots[i].running = Some(Running {
                        attempt,
                        child,
                        stop: Stop::None,
                        term_sent: None,
                    });
                }
                Err(e) => report.launched.push(Launched::NotStarted {
                    attempt,
                    status: TrialStatus::Failed,
                    error: format!("could not start the trial process: {e}"),
                }),
            }
        }
        report
    }

    fn adopt(&mut self, attempt: Attempt, job: String) {
        // Local attempts have no job id; an adopted one would be another executor's.
        tracing::warn!(
            "{}: job {job} belongs to another executor; not following it here",
            attempt.label
        );
    }

    fn poll(&mut self) -> Vec<Ended> {
        use std::os::unix::process::ExitStatusExt;
        let mut ended = Vec::new();
        for slot in &mut self.slots {
            let Some(r) = slot.running.as_mut() else {
                continue;
            };
            match r.child.try_wait() {
                Ok(Some(status)) => {
                    if let Some(r) = slot.running.take() {
                        ended.push(Ended {
                            attempt: r.attempt,
                            code: status.code(),
                            signal: status.signal(),
                            stop: r.stop,
                            note: None,
                            cancelled: false,
                        });
                    }
                }
                Ok(None) => {
                    if let (Some(limit), Stop::None) = (self.trial_timeout, r.stop) {
                        if r.attempt.started.elapsed() > limit {
                            tracing::warn!(
                                "{}: --trial-timeout reached; stopping it",
                                r.attempt.label
                            );
                            signal_group(&r.child, Signal::SIGTERM);
                            r.stop = Stop::Timeout;
                            r.term_sent = Some(Instant::now());
                        }
                    }
                    if r.term_sent.is_some_and(|t| t.elapsed() > self.kill_grace) {
                        signal_group(&r.child, Signal::SIGKILL);
                    }
                }
                Err(e) => tracing::error!("cannot wait for trial {}: {e}", r.attempt.trial_id),
            }
        }
        ended
    }

    fn running(&mut self) -> Vec<&mut Attempt> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.running.as_mut().map(|r| &mut r.attempt))
            .collect()
    }

    fn prune(&mut self, trial: &spec::protocol::TrialId) -> bool {
        let Some(r) = self
            .slots
            .iter_mut()
            .filter_map(|s| s.running.as_mut())
            .find(|r| r.attempt.trial_id == *trial)
        else {
            return false;
        };
        if r.term_sent.is_none() {
            signal_group(&r.child, Signal::SIGTERM);
            r.term_sent = Some(Instant::now());
        }
        if r.stop != Stop::Drain {
            r.stop = Stop::Prune;
        }
        true
    }

    fn interrupt(&mut self, count: usize) -> AfterInterrupt {
        for r in self.slots.iter_mut().filter_map(|s| s.running.as_mut()) {
            if count >= 2 {
                signal_group(&r.child, Signal::SIGKILL);
            } else if r.term_sent.is_none() {
                signal_group(&r.child, Signal::SIGTERM);
                r.stop = Stop::Drain;
                r.term_sent = Some(Instant::now());
            } else {
                // Already stopping (a timeout): it now counts as drained.
                r.stop = Stop::Drain;
            }
        }
        AfterInterrupt::Drain
    }

    fn poll_interval(&self) -> Duration {
        self.poll
    }
}

//! What the scheduler needs from a place that runs trials. Two implementations: child
//! processes on this machine's devices ([`crate::local::LocalExecutor`]) and Slurm array
//! jobs ([`crate::slurm::SlurmExecutor`]). Everything else (claiming, recording, retries,
//! sequential seeds, signals, the database) is the scheduler's, written once.

use std::time::Duration;

use spec::Device;

use crate::attempt::{Attempt, Ended};
use crate::RunnerError;

/// Claims the next runnable trial for the executor and prepares its folder. Arguments:
/// the device recorded in the database (`cpu`, `cuda:1`, `slurm`) and the device the trial
/// process will see. `None` when nothing is runnable now.
pub(crate) type Claim<'a> = dyn FnMut(&str, Device) -> Result<Option<Attempt>, RunnerError> + 'a;

/// How a started attempt can be found again.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Handle {
    /// A child process of this runner.
    Pid(u32),
    /// A scheduler job (`<array>_<task>`), which a later runner can reattach to.
    Job(String),
}

/// One claimed attempt after the executor tried to start it.
#[derive(Debug)]
pub(crate) enum Launched {
    Running {
        trial_id: spec::protocol::TrialId,
        attempt: u32,
        label: String,
        device: String,
        handle: Handle,
    },
    /// It could not start; the scheduler records it with this status and error.
    NotStarted {
        attempt: Attempt,
        status: spec::protocol::TrialStatus,
        error: String,
    },
}

impl Launched {
    /// `attempt` started and can be found again by `handle`.
    pub fn running(attempt: &Attempt, handle: Handle) -> Self {
        Launched::Running {
            trial_id: attempt.trial_id.clone(),
            attempt: attempt.attempt,
            label: attempt.label.clone(),
            device: attempt.device.clone(),
            handle,
        }
    }
}

/// What [`Executor::start`] did.
#[derive(Debug, Default)]
pub(crate) struct LaunchReport {
    pub launched: Vec<Launched>,
    /// The claim found nothing more to run (as opposed to: no free slot to ask for one).
    pub exhausted: bool,
    /// The executor cannot go on (sbatch refused the job); after recording `launched`,
    /// the run stops with this error.
    pub fatal: Option<RunnerError>,
}

impl LaunchReport {
    /// The next claimed attempt, or `None` when nothing more may start now (and why:
    /// nothing is runnable, or the claim failed).
    pub fn claim_next(
        &mut self,
        claim: &mut Claim<'_>,
        device: &str,
        trial_device: Device,
    ) -> Option<Attempt> {
        match claim(device, trial_device) {
            Ok(Some(a)) => Some(a),
            Ok(None) => {
                self.exhausted = true;
                None
            }
            Err(e) => {
                self.fatal = Some(e);
                None
            }
        }
    }
}

/// What the scheduler does after the executor took a SIGINT/SIGTERM to the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterInterrupt {
    /// Stop claiming, wait for the running trials (they save their state), then exit.
    Drain,
    /// Exit now: the trials run on without this process (a later runner reattaches).
    Detach,
}

pub(crate) trait Executor {
    /// Recorded on attempts that have a [`Handle::Job`].
    fn name(&self) -> &'static str;

    /// The devices trials will run on (checked against each trial's precision first).
    fn devices(&self) -> Vec<Device>;

    /// Claims (through `claim`) and starts as many trials as there is room for now.
    fn start(&mut self, claim: &mut Claim<'_>) -> LaunchReport;

    /// Takes over an attempt an earlier runner started as a job.
    fn adopt(&mut self, attempt: Attempt, job: String);

    /// Attempts that ended since the last call. Also enforces time limits.
    fn poll(&mut self) -> Vec<Ended>;

    /// The attempts still running (their metrics are ingested while they run).
    fn running(&mut self) -> Vec<&mut Attempt>;

    /// Stops one running trial for good (a search's pruner): SIGTERM now, SIGKILL after
    /// the grace period; it ends with [`crate::outcome::Stop::Prune`]. False if the trial
    /// is not running here.
    fn prune(&mut self, trial: &spec::protocol::TrialId) -> bool;

    /// The `count`-th SIGINT/SIGTERM to the runner (1, 2, …).
    fn interrupt(&mut self, count: usize) -> AfterInterrupt;

    /// The longest the scheduler should sleep between looks.
    fn poll_interval(&self) -> Duration;
}

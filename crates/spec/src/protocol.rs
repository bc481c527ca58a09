//! The contract between the runner and a trial process (`sweep trial DIR`, or the test
//! suite's fake trial): the files of a trial folder, the environment the runner sets, the
//! exit codes, and the statuses a trial moves through. Lifecycle: `docs/trial-lifecycle.md`.

use serde::{Deserialize, Serialize};

/// Files of a trial folder `results/trials/<id>/`.
pub mod files {
    /// The trial's config (absolute paths, seed set), written by the runner.
    pub const SPEC: &str = "trial.yaml";
    /// One JSON object per line, appended and flushed by the trial; the runner tails it.
    pub const METRICS: &str = "metrics.jsonl";
    /// The outcome, written atomically at the end by the trial.
    pub const RESULT: &str = "result.json";
    /// `{question id: answer}` of the last evaluation.
    pub const PREDICTIONS: &str = "predictions.json";
    /// The trained model as a HF directory (transformers loads it), written at the end and
    /// with every saved state.
    pub const CHECKPOINT: &str = "checkpoint";
    /// What a resumed run continues from (model, AdamW moments, position, loss scaler);
    /// removed when the run completes.
    pub const TRAIN_STATE: &str = "train_state";
    /// What ran the trial: binary version, git commit, backend, device name.
    pub const ENV: &str = "env.json";
    pub const STDOUT: &str = "stdout.log";
    pub const STDERR: &str = "stderr.log";
    /// Held (exclusive file lock) by the process running the trial, so two processes never
    /// run one trial folder at the same time, whichever runner started them.
    pub const LOCK: &str = ".lock";
}

/// Environment variables the runner sets for a trial process.
pub mod env {
    pub const TRIAL_ID: &str = "SWEEP_TRIAL_ID";
    /// The runner's pid: the trial asks the kernel for SIGTERM when its parent dies, and
    /// exits at once if the parent is already gone.
    pub const RUNNER_PID: &str = "SWEEP_RUNNER_PID";
    pub const CUDA_VISIBLE_DEVICES: &str = "CUDA_VISIBLE_DEVICES";
}

/// Exit codes of a trial process. Signals are reported separately by the OS.
pub mod exit {
    pub const SUCCEEDED: i32 = 0;
    /// Any error: bad input, a crash the trial caught, an I/O failure.
    pub const FAILED: i32 = 1;
    /// The loss became NaN or infinite; rerunning the same config would diverge again.
    pub const DIVERGED: i32 = 3;
    /// Stopped on SIGTERM/SIGINT after saving its state; running it again resumes.
    pub const INTERRUPTED: i32 = 4;
    /// Another process holds the trial folder's lock.
    pub const BUSY: i32 = 5;
    /// The device ran out of memory.
    pub const OUT_OF_MEMORY: i32 = 6;
}

/// Where a trial stands. Terminal: succeeded, diverged; retryable: failed, out_of_memory,
/// timed_out; resumable: interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Diverged,
    OutOfMemory,
    TimedOut,
    Interrupted,
}

impl TrialStatus {
    pub const ALL: [TrialStatus; 8] = [
        Self::Pending,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Diverged,
        Self::OutOfMemory,
        Self::TimedOut,
        Self::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Diverged => "diverged",
            Self::OutOfMemory => "out_of_memory",
            Self::TimedOut => "timed_out",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Done for good: never run again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Diverged)
    }

    /// Worth another attempt if retries remain.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Failed | Self::OutOfMemory | Self::TimedOut)
    }
}

impl std::fmt::Display for TrialStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in TrialStatus::ALL {
            assert_eq!(TrialStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(TrialStatus::parse("done"), None);
    }
}

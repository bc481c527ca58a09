//! How an attempt ended, from the process's exit status, what the runner did to it, the
//! trial's `result.json` and its stderr. Signals and exit codes stay distinct.

use spec::protocol::{exit, mentions_out_of_memory, Outcome, TrialResult, TrialStatus};

/// What the runner itself did to the process, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Nothing: the process ended on its own (or someone else signalled it).
    None,
    /// `--trial-timeout` passed: SIGTERM, then SIGKILL after a grace period.
    Timeout,
    /// The runner is draining (Ctrl-C, SIGTERM) or was told to kill.
    Drain,
    /// A search's pruner stopped it (SIGTERM): final, never resumed.
    Prune,
}

/// Classifies an ended attempt; the string explains failures in words. `result` is what
/// [`TrialResult::read`] found in the trial folder.
pub fn classify(
    code: Option<i32>,
    signal: Option<i32>,
    stop: Stop,
    result: &Result<Option<TrialResult>, String>,
    stderr_tail: Option<&str>,
) -> (TrialStatus, Option<String>) {
    let oom_text = stderr_tail.is_some_and(mentions_out_of_memory);
    match (stop, code, signal) {
        (Stop::Timeout, _, _) => (
            TrialStatus::TimedOut,
            Some("stopped by the runner: --trial-timeout reached".into()),
        ),
        (_, Some(exit::SUCCEEDED), _) => match result {
            Ok(Some(r)) => match r.status {
                Outcome::Succeeded => (TrialStatus::Succeeded, None),
                Outcome::Diverged => {
                    (TrialStatus::Diverged, Some("loss became NaN/inf".into()))
                }
                Outcome::Interrupted => (
                    TrialStatus::Failed,
                    Some("exited 0 but result.json says interrupted".into()),
                ),
            },
            Ok(None) => (
                TrialStatus::Failed,
                Some("exited 0 without writing result.json".into()),
            ),
            Err(e) => (
                TrialStatus::Failed,
                Some(format!("exited 0 with an unreadable result: {e}")),
            ),
        },
        // Ended on its own before the pruner's SIGTERM arrived: that outcome stands.
        (Stop::Prune, Some(exit::DIVERGED), _) => {
            (TrialStatus::Diverged, Some("loss became NaN/inf".into()))
        }
        (Stop::Prune, _, _) => (
            TrialStatus::Pruned,
            Some("stopped early by the search's pruner".into()),
        ),
        (_, Some(exit::DIVERGED), _) => (TrialStatus::Diverged, Some("loss became NaN/inf".into())),
        (_, Some(exit::INTERRUPTED), _) => (
            TrialStatus::Interrupted,
            Some("stopped after saving its state; the next run resumes it".into()),
        ),
        (_, Some(exit::BUSY), _) => (
            TrialStatus::Interrupted,
            Some("another process holds this trial's folder".into()),
        ),
        (_, Some(exit::OUT_OF_MEMORY), _) => (TrialStatus::OutOfMemory, Some("out of memory".into())),
        (Stop::Drain, _, Some(_)) => (
            TrialStatus::Interrupted,
            Some("killed while the runner was stopping".into()),
        ),
        (_, Some(c), _) if oom_text => (
            TrialStatus::OutOfMemory,
            Some(format!("exit code {c}; stderr reports out of memory")),
        ),
        (_, _, Some(9)) => (
            TrialStatus::OutOfMemory,
            Some("killed by SIGKILL, not by the runner: most often the kernel's out-of-memory killer".into()),
        ),
        (_, _, Some(s)) => (TrialStatus::Failed, Some(format!("killed by signal {s}"))),
        (_, Some(c), None) => (TrialStatus::Failed, Some(format!("exit code {c}"))),
        (_, None, None) => (TrialStatus::Failed, Some("ended with no exit status".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Outcome) -> Result<Option<TrialResult>, String> {
        Ok(Some(TrialResult {
            status,
            em: 1.0,
            f1: 2.0,
            steps: 3,
            train_loss: None,
            train_seconds: None,
            examples_per_second: None,
            details: Default::default(),
        }))
    }

    #[test]
    fn exit_statuses_map_to_outcomes() {
        let c = |code, signal, stop, result: Option<Outcome>, err| {
            let r = result.map_or(Ok(None), self::result);
            classify(code, signal, stop, &r, err).0
        };
        use TrialStatus::*;
        assert_eq!(
            c(Some(0), None, Stop::None, Some(Outcome::Succeeded), None),
            Succeeded
        );
        assert_eq!(
            c(Some(0), None, Stop::None, Some(Outcome::Diverged), None),
            Diverged
        );
        assert_eq!(c(Some(0), None, Stop::None, None, None), Failed);
        let (status, why) = classify(
            Some(0),
            None,
            Stop::None,
            &Err("result.json: missing field `EM`".into()),
            None,
        );
        assert_eq!(status, Failed);
        assert!(why.unwrap().contains("missing field `EM`"));
        assert_eq!(c(Some(3), None, Stop::None, None, None), Diverged);
        assert_eq!(c(Some(4), None, Stop::Drain, None, None), Interrupted);
        assert_eq!(c(Some(4), None, Stop::Timeout, None, None), TimedOut);
        assert_eq!(c(Some(4), None, Stop::Prune, None, None), Pruned);
        assert_eq!(c(None, Some(9), Stop::Prune, None, None), Pruned);
        assert_eq!(
            c(Some(0), None, Stop::Prune, Some(Outcome::Succeeded), None),
            Succeeded
        );
        assert_eq!(c(None, Some(9), Stop::Drain, None, None), Interrupted);
        assert_eq!(c(None, Some(9), Stop::None, None, None), OutOfMemory);
        assert_eq!(
            c(
                Some(101),
                None,
                Stop::None,
                None,
                Some("CUDA out of memory")
            ),
            OutOfMemory
        );
        assert_eq!(c(Some(1), None, Stop::None, None, Some("bad key")), Failed);
        assert_eq!(c(None, Some(11), Stop::None, None, None), Failed);
    }
}

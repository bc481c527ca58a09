//! The trial side of the protocol (`spec::protocol`), for every program that runs a trial
//! folder: `sweep trial` and the runner's test-suite fake trial use this one module, so the
//! fake cannot drift from the real one.
//!
//! [`TrialProcess::start`] takes the folder's exclusive lock (two processes never run one
//! trial), asks the kernel for SIGTERM when the runner that started it dies (even by
//! `kill -9`) and stops at once if that runner is already gone, turns SIGTERM/SIGINT into a
//! stop flag the training loop checks between steps, and turns a file-size limit
//! (`ulimit -f`) into a write error instead of death by SIGXFSZ.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use spec::protocol::{env, exit, files};

/// Why a trial process does not run its folder.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0} is being run by another process; not starting a second copy")]
    Busy(PathBuf),
    #[error("the runner that started this trial is gone; stopping")]
    RunnerGone,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    /// The protocol exit code for this refusal.
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Busy(_) => exit::BUSY,
            StartError::RunnerGone => exit::INTERRUPTED,
            StartError::Io { .. } => exit::FAILED,
        }
    }
}

/// A trial process holding its folder. Dropping it releases the lock.
#[derive(Debug)]
pub struct TrialProcess {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    // Held for the life of the process: the lock is the file's.
    lock: File,
}

impl TrialProcess {
    /// Takes `dir` for this process (see the module docs).
    pub fn start(dir: &Path) -> Result<TrialProcess, StartError> {
        let io = |what: String| move |source| StartError::Io { what, source };
        let lock_path = dir.join(files::LOCK);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(lock_path.display().to_string()))?;
        if lock.try_lock().is_err() {
            return Err(StartError::Busy(dir.to_path_buf()));
        }
        if let Ok(runner_pid) = std::env::var(env::RUNNER_PID) {
            // Asked first, checked after: a runner that died in between is noticed too.
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(|e| {
                StartError::Io {
                    what: "prctl(PR_SET_PDEATHSIG)".into(),
                    source: e.into(),
                }
            })?;
            if nix::unistd::getppid().to_string() != runner_pid {
                return Err(StartError::RunnerGone);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&stop))
                .map_err(io("signal handler".into()))?;
        }
        // With SIGXFSZ caught, a write past `ulimit -f` fails with EFBIG: the trial names
        // the file it could not write (its previous checkpoint intact) instead of dying.
        signal_hook::flag::register(
            signal_hook::consts::SIGXFSZ,
            Arc::new(AtomicBool::new(false)),
        )
        .map_err(io("signal handler".into()))?;
        Ok(TrialProcess {
            dir: dir.to_path_buf(),
            stop,
            lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Set on SIGTERM/SIGINT: save the state and exit with [`exit::INTERRUPTED`].
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Lets programs this process starts inherit the folder lock (clears close-on-exec on
    /// its descriptor). An flock belongs to the open file, so the folder stays locked until
    /// this process and every child holding it have exited: a supervisor killed by
    /// SIGKILL cannot let a second copy of a still-running program start.
    pub fn share_lock_with_children(&self) -> std::io::Result<()> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        fcntl(&self.lock, FcntlArg::F_SETFD(FdFlag::empty()))
            .map(|_| ())
            .map_err(std::io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_process_on_one_folder_is_refused_as_busy() {
        let dir = std::env::temp_dir().join(format!("trial-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = TrialProcess::start(&dir).unwrap();
        assert!(!first.stop_requested());
        // Another open file description of the same lock file: flock refuses it.
        let second = TrialProcess::start(&dir).unwrap_err();
        assert_eq!(second.exit_code(), exit::BUSY);
        drop(first);
        let again = TrialProcess::start(&dir).unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

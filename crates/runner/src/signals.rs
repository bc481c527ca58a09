//! Signals to the runner. SIGINT/SIGTERM count up (the scheduler drains or detaches at
//! the first and kills at the second); they and SIGCHLD (a child ended) wake the scheduler
//! at once instead of at its next poll. Installed for a run session and removed with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use crate::RunnerError;

#[derive(Debug)]
pub(crate) struct Signals {
    count: Arc<AtomicUsize>,
    wake: Receiver<()>,
    handle: signal_hook::iterator::Handle,
}

impl Signals {
    pub fn install() -> Result<Self, RunnerError> {
        use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
        let count = Arc::new(AtomicUsize::new(0));
        let (tx, wake) = std::sync::mpsc::channel::<()>();
        let mut signals =
            signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGCHLD]).map_err(|e| {
                RunnerError::Io {
                    path: "signal handler".into(),
                    source: e,
                }
            })?;
        let handle = signals.handle();
        let counter = Arc::clone(&count);
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if sig != SIGCHLD {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        Ok(Signals {
            count,
            wake,
            handle,
        })
    }

    /// SIGINT/SIGTERM received so far.
    pub fn interrupts(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Sleeps until a signal arrives or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        let _ = self.wake.recv_timeout(timeout);
        while self.wake.try_recv().is_ok() {}
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.handle.close();
    }
}

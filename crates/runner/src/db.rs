//! The runner's handle on the results database. Every operation goes through [`Db::call`],
//! which retries transient failures with backoff and logs each retry: the database locked
//! by another process beyond SQLite's own 30 s busy wait, a full disk, an I/O error. A
//! failure that persists past the retry budget, or that is not transient, is returned as
//! fatal; the scheduler then drains its trials (each saves its state) and exits, and the
//! next `sweep run` resumes them. Retrying is safe because each store operation is one
//! SQLite transaction: a failed one left nothing behind.

use std::time::{Duration, Instant};

use store::{Store, StoreError};

use crate::RunnerError;

/// How long transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub first_wait: Duration,
    pub max_wait: Duration,
    /// Give up (fatal) once retrying has taken this long.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_wait: Duration::from_millis(200),
            max_wait: Duration::from_secs(10),
            give_up_after: Duration::from_secs(120),
        }
    }
}

/// Test hook: makes the database operation named `operation` (the names the scheduler
/// passes to [`Db::call`], e.g. `finish`, `claim`, `ingest`, `heartbeat`) fail `times`
/// times after `after` successful calls, as a transient (SQLITE_BUSY) or a fatal
/// (SQLITE_CORRUPT) error. Nothing else injects failures.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    pub operation: String,
    pub after: usize,
    pub times: usize,
    pub transient: bool,
}

#[derive(Debug)]
pub(crate) struct Db {
    store: Store,
    retry: RetryPolicy,
    fault: Option<(FaultPlan, usize)>,
}

impl Db {
    pub fn new(store: Store, retry: RetryPolicy, fault: Option<FaultPlan>) -> Self {
        Db {
            store,
            retry,
            fault: fault.map(|f| (f, 0)),
        }
    }

    /// Runs `op` on the store, retrying transient failures (see the module docs); `what`
    /// names the operation in logs and errors.
    pub fn call<T, E: Into<RunnerError>>(
        &mut self,
        what: &str,
        mut op: impl FnMut(&mut Store) -> Result<T, E>,
    ) -> Result<T, RunnerError> {
        let started = Instant::now();
        let mut wait = self.retry.first_wait;
        let mut retries = 0u32;
        loop {
            let result = match self.injected(what) {
                Some(e) => Err(RunnerError::Store(e)),
                None => op(&mut self.store).map_err(Into::into),
            };
            match result {
                Ok(v) => {
                    if retries > 0 {
                        tracing::info!("database: {what} went through after {retries} retries");
                    }
                    return Ok(v);
                }
                Err(RunnerError::Store(e))
                    if e.is_transient() && started.elapsed() + wait <= self.retry.give_up_after =>
                {
                    tracing::warn!("database: {what} failed ({e}); retrying in {wait:?}");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(self.retry.max_wait);
                    retries += 1;
                }
                Err(RunnerError::Store(e)) => {
                    return Err(RunnerError::Database {
                        operation: what.to_string(),
                        retries,
                        source: e,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn injected(&mut self, what: &str) -> Option<StoreError> {
        let (plan, calls) = self.fault.as_mut()?;
        if plan.operation != what {
            return None;
        }
        *calls += 1;
        if *calls <= plan.after || *calls > plan.after + plan.times {
            return None;
        }
        let code = if plan.transient {
            rusqlite::ffi::SQLITE_BUSY
        } else {
            rusqlite::ffi::SQLITE_CORRUPT
        };
        Some(StoreError::Sql(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some(format!("injected by the test FaultPlan for {what}")),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(fault: FaultPlan) -> Db {
        let dir = std::env::temp_dir().join(format!("runner-db-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("t.db")).unwrap();
        let retry = RetryPolicy {
            first_wait: Duration::from_millis(1),
            max_wait: Duration::from_millis(4),
            give_up_after: Duration::from_millis(200),
        };
        Db::new(store, retry, Some(fault))
    }

    #[test]
    fn transient_failures_are_retried_and_fatal_ones_are_not() {
        let mut d = db(FaultPlan {
            operation: "heartbeat".into(),
            after: 1,
            times: 3,
            transient: true,
        });
        let beat = |d: &mut Db| d.call("heartbeat", |s| s.heartbeat("r", "h", 1, 60.0));
        beat(&mut d).unwrap();
        beat(&mut d).unwrap(); // fails three times, then goes through
        assert_eq!(d.fault.as_ref().unwrap().1, 5);
        let mut d = db(FaultPlan {
            operation: "heartbeat".into(),
            after: 0,
            times: 1,
            transient: false,
        });
        let e = d
            .call("heartbeat", |s| s.heartbeat("r", "h", 1, 60.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("heartbeat") && e.contains("injected"), "{e}");
        // A transient failure that never ends becomes fatal after the budget.
        let mut d = db(FaultPlan {
            operation: "heartbeat".into(),
            after: 0,
            times: usize::MAX / 2,
            transient: true,
        });
        let t = Instant::now();
        assert!(d
            .call("heartbeat", |s| s.heartbeat("r", "h", 1, 60.0))
            .is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}

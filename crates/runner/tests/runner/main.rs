//! The runner against the fake trial (`tests/support/fake_trial.rs`), driven in-process
//! (`runner::run`) or as its own process (`run-study`, for signals and kill -9): every
//! outcome, retries, reruns, kill -9, two runners on one database, Ctrl-C, sequential
//! seeds, database failures, and the Slurm executor against a real cluster. Nothing here
//! links burn; `make test-runner` runs it.

// Test helpers may unwrap: a panic here is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod failures;
mod ids;
mod local;
mod program;
mod search;
mod slurm;

//! Exit codes of `sweep`, in one place so scripts can rely on them.

/// Success.
pub const OK: i32 = 0;
/// The command failed: bad input, unreadable file, invalid configuration. The message on
/// stderr names the file, key or line.
pub const FAILURE: i32 = 1;
/// The command line itself is wrong (unknown flag, missing argument).
pub const USAGE: i32 = 2;
// `sweep run` ends with `runner::exit_code`: 0 every trial succeeded, 1 some did not, 130
// (`runner::EXIT_INTERRUPTED`) stopped by Ctrl-C/SIGTERM (local: trials saved their state;
// Slurm: the runner detached). Running the same command again resumes.
// `sweep trial` (the executors' worker) exits with the protocol's codes:
// spec::protocol::exit (0 succeeded, 1 failed, 3 diverged, 4 interrupted, 5 busy, 6 out of memory).

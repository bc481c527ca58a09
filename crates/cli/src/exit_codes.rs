//! Exit codes of `sweep`, in one place so scripts can rely on them.

/// Success.
pub const OK: i32 = 0;
/// The command failed: bad input, unreadable file, invalid configuration. The message on
/// stderr names the file, key or line.
pub const FAILURE: i32 = 1;
/// The command line itself is wrong (unknown flag, missing argument).
pub const USAGE: i32 = 2;

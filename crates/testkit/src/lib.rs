//! Dev-only helpers shared by the test suites: [`fuzz`], the loaders' fuzzer. The
//! `fake-trial` binary beside it stands in for `sweep trial` in the runner's tests.

pub mod fuzz;

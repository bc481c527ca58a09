//! Dev-only helpers shared by the test suites: [`fuzz`], the loaders' fuzzer. (The fake
//! trial the runner's tests use lives with the runner: `crates/runner/tests/support`.)

pub mod fuzz;

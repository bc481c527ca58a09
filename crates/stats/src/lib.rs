//! Statistics for deciding ablation claims over seeds with the fewest runs and known error
//! rates. No dependency but `spec` (claim types), so the runner (which decides when to add
//! seeds) and the report (which shows the verdicts) use the same code.
//!
//! - [`dist`]: Student's t and the normal distribution.
//! - [`fixed`]: summaries, Welch and paired t intervals, the sign-flip permutation test,
//!   TOST, Holm.
//! - [`sequential`]: the group-sequential paired t design (alpha spending, Monte Carlo
//!   boundaries, repeated confidence intervals and p-values, conditional power).
//! - [`claims`]: a study's claims decided together (Holm, futility, the next look).
//! - [`study`]: a study's runs → pairs per claim, arm counts, decisions, and how many seeds
//!   each variant runs now (the runner and the report share it).
//! - [`evp`]: expected validation performance curves for grid studies.
//!
//! Error rates are proven by simulation (tests/error_rates.rs) and the fixed-sample
//! functions equal scipy's (tests/scipy_reference.rs); docs/report.md has the numbers.

pub mod claims;
pub mod dist;
pub mod evp;
pub mod fixed;
pub mod power;
pub mod rng;
pub mod sequential;
pub mod study;

//! Summaries over seeds for the report's tables and charts; the statistics themselves live
//! in the `stats` crate, shared with the runner.

pub use stats::fixed::{summarize, welch, Interval, Summary};

//! Summaries over seeds for the report's tables and charts; the statistics themselves live
//! in the `stats` crate, shared with the runner.

pub use stats::fixed::{summarize, welch, Interval, Summary};

use std::collections::BTreeMap;

/// The end-of-run metrics (`result.json`'s `metrics`) of `rows`, summarised per name over
/// the rows given (the callers pass a variant's succeeded trials).
pub fn final_metric_summaries<'a>(
    rows: impl IntoIterator<Item = &'a store::StudyTrialRow>,
) -> BTreeMap<String, Summary> {
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows {
        for (k, v) in &r.final_metrics {
            values.entry(k.clone()).or_default().push(*v);
        }
    }
    values
        .into_iter()
        .filter_map(|(k, xs)| summarize(&xs).map(|s| (k, s)))
        .collect()
}

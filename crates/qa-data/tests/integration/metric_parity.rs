//! `metric::evaluate` equals the official script's logic (`tools/cmrc2018_metric.py`) on
//! noisy predictions for DRCD test and CMRC2018 dev (`tools/make_metric_fixture.py`).

use std::collections::HashMap;

use qa_data::metric::{evaluate, exact_match, f1};
use qa_data::squad::Dataset;
use serde::Deserialize;

use crate::common::{data_file, fixture};

#[derive(Deserialize)]
struct Overall {
    #[serde(rename = "EM")]
    em: f64,
    #[serde(rename = "F1")]
    f1: f64,
    #[serde(rename = "TOTAL")]
    total: usize,
    #[serde(rename = "SKIP")]
    skip: usize,
}

#[derive(Deserialize)]
struct MetricFixture {
    overall: Overall,
    per_question: HashMap<String, (String, f64, f64)>,
}

fn check(fixture_name: &str, dataset: &str) {
    let fx: MetricFixture =
        serde_json::from_slice(&std::fs::read(fixture(fixture_name)).unwrap()).unwrap();
    let ds = Dataset::load(data_file(dataset)).unwrap();
    let mut mismatches = Vec::new();
    for ex in &ds.examples {
        if let Some((pred, em, f)) = fx.per_question.get(&ex.id) {
            let answers: Vec<&str> = ex.answers.iter().map(|a| a.text.as_str()).collect();
            if exact_match(&answers, pred) != *em || (f1(&answers, pred) - f).abs() > 1e-12 {
                mismatches.push(format!("{} {pred:?}: python em={em} f1={f}", ex.id));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches, e.g. {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(5)]
    );
    let predictions: HashMap<String, String> = fx
        .per_question
        .into_iter()
        .map(|(id, (p, _, _))| (id, p))
        .collect();
    let ours = evaluate(&ds, &predictions).rounded();
    assert_eq!(ours.em, fx.overall.em, "EM");
    assert!(
        (ours.f1 - fx.overall.f1).abs() <= 0.01,
        "F1 {} vs {}",
        ours.f1,
        fx.overall.f1
    );
    assert_eq!(ours.total, fx.overall.total);
    assert_eq!(ours.skip, fx.overall.skip);
}

#[test]
fn drcd_test_noisy_predictions() {
    check("metric_DRCD_test.json", "drcd/DRCD_test.json");
}

#[test]
fn cmrc2018_dev_noisy_predictions() {
    check("metric_cmrc2018_dev.json", "cmrc2018/cmrc2018_dev.json");
}

//! The fixed-sample statistics equal scipy's (1.17) and statsmodels' on 40 seeded random
//! cases and 10 Holm cases (tools/stats_reference.py wrote the fixture): paired t intervals
//! and p-values, Welch's intervals, p-values and degrees of freedom, TOST's one-sided
//! p-values, the exact sign-flip permutation p-value, Holm's adjusted p-values and
//! rejections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use stats::fixed::{holm, paired_t, sign_flip_p, tost, welch};

fn cases() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scipy_cases.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-8 * want.abs().max(1.0);
    assert!((got - want).abs() <= tol, "{what}: {got} vs scipy {want}");
}

#[test]
fn fixed_sample_statistics_equal_scipy() {
    let all = cases();
    let list = all["cases"].as_array().unwrap();
    assert_eq!(list.len(), 40);
    for (i, c) in list.iter().enumerate() {
        let d = floats(&c["d"]);
        let p = paired_t(&d, 0.95).unwrap();
        close(
            p.estimate,
            c["paired"]["mean"].as_f64().unwrap(),
            &format!("case {i} mean"),
        );
        close(
            p.low,
            c["paired"]["low"].as_f64().unwrap(),
            &format!("case {i} paired low"),
        );
        close(
            p.high,
            c["paired"]["high"].as_f64().unwrap(),
            &format!("case {i} paired high"),
        );
        close(
            p.p,
            c["paired"]["p"].as_f64().unwrap(),
            &format!("case {i} paired p"),
        );

        let (a, b) = (floats(&c["a"]), floats(&c["b"]));
        let w = welch(&a, &b, 0.95).unwrap();
        close(
            w.estimate,
            c["welch"]["diff"].as_f64().unwrap(),
            &format!("case {i} welch diff"),
        );
        close(
            w.low,
            c["welch"]["low"].as_f64().unwrap(),
            &format!("case {i} welch low"),
        );
        close(
            w.high,
            c["welch"]["high"].as_f64().unwrap(),
            &format!("case {i} welch high"),
        );
        close(
            w.p,
            c["welch"]["p"].as_f64().unwrap(),
            &format!("case {i} welch p"),
        );
        close(
            w.df,
            c["welch"]["df"].as_f64().unwrap(),
            &format!("case {i} welch df"),
        );

        let t = tost(&d, c["margin"].as_f64().unwrap()).unwrap();
        close(
            t.p_lower,
            c["tost"]["p_lower"].as_f64().unwrap(),
            &format!("case {i} tost lower"),
        );
        close(
            t.p_upper,
            c["tost"]["p_upper"].as_f64().unwrap(),
            &format!("case {i} tost upper"),
        );

        if let Some(want) = c["sign_flip_p"].as_f64() {
            close(
                sign_flip_p(&d).unwrap(),
                want,
                &format!("case {i} sign flip"),
            );
        }
    }
}

#[test]
fn holm_equals_statsmodels() {
    let all = cases();
    for (i, c) in all["holm"].as_array().unwrap().iter().enumerate() {
        let p = floats(&c["p"]);
        let want = floats(&c["adjusted"]);
        let rejected: Vec<bool> = c["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_bool().unwrap())
            .collect();
        let got = holm(&p, 0.05);
        for (j, ((adj, rej), (w, r))) in got.iter().zip(want.iter().zip(&rejected)).enumerate() {
            close(*adj, *w, &format!("holm case {i} [{j}]"));
            assert_eq!(rej, r, "holm case {i} [{j}]");
        }
    }
}

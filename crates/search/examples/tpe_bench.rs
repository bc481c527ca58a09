//! `make bench-search` (with tools/tpe_optuna.py): qa-sweep's TPE and random search on
//! standard test functions, minimized over `BUDGET` evaluations, `REPEATS` times with seeds
//! 0, 1, …; prints one JSON object per function and method with every repeat's best value
//! and their median, for comparison with Optuna's TPESampler on the same budget.
//! `cargo run --release -p search --example tpe_bench [budget] [repeats]`.

use serde_json::{json, Map, Value};
use spec::search::{Direction, Domain, Objective, Search, SearchMethod};
use spec::ClaimMetric;

/// Branin-Hoo on [-5, 10] × [0, 15]; minimum 0.397887.
fn branin(x: &[f64]) -> f64 {
    let pi = std::f64::consts::PI;
    let (b, c, t) = (5.1 / (4.0 * pi * pi), 5.0 / pi, 1.0 / (8.0 * pi));
    (x[1] - b * x[0] * x[0] + c * x[0] - 6.0).powi(2) + 10.0 * (1.0 - t) * x[0].cos() + 10.0
}

/// Hartmann-6 on [0, 1]^6; minimum −3.32237.
fn hartmann6(x: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
        [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
        [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
        [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
    ];
    -(0..4)
        .map(|i| {
            let inner: f64 = (0..6)
                .map(|j| A[i][j] * (x[j] - P[i][j] * 1e-4).powi(2))
                .sum();
            ALPHA[i] * (-inner).exp()
        })
        .sum::<f64>()
}

/// A name, the function, its box.
type TestFunction = (&'static str, fn(&[f64]) -> f64, Vec<(f64, f64)>);

fn search(method: SearchMethod, seed: u64, budget: usize, bounds: &[(f64, f64)]) -> Search {
    Search {
        method,
        trials: budget,
        seed,
        objective: Objective {
            metric: ClaimMetric::Reported("value".into()),
            direction: Direction::Min,
        },
        space: bounds
            .iter()
            .enumerate()
            .map(|(i, (lo, hi))| (format!("x{i}"), Domain::Uniform([*lo, *hi])))
            .collect(),
        // Optuna's TPESampler default.
        startup: 10,
        prune: None,
    }
}

fn best_of(s: &Search, f: fn(&[f64]) -> f64) -> f64 {
    let mut history = Vec::new();
    let mut best = f64::INFINITY;
    for i in 0..s.trials {
        let p: Map<String, Value> = search::suggest(s, i, &history);
        let x: Vec<f64> = (0..s.space.len())
            .map(|k| p[&format!("x{k}")].as_f64().unwrap_or(f64::NAN))
            .collect();
        let v = f(&x);
        best = best.min(v);
        history.push(search::Observation {
            params: p,
            outcome: search::Outcome::Complete(v),
        });
    }
    best
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let budget = args.first().copied().unwrap_or(50);
    let repeats = args.get(1).copied().unwrap_or(20);
    let functions: [TestFunction; 2] = [
        ("branin", branin, vec![(-5.0, 10.0), (0.0, 15.0)]),
        ("hartmann6", hartmann6, vec![(0.0, 1.0); 6]),
    ];
    for (name, f, bounds) in &functions {
        for (label, method) in [
            ("qa-sweep tpe", SearchMethod::Tpe),
            ("qa-sweep random", SearchMethod::Random),
        ] {
            let started = std::time::Instant::now();
            let mut bests: Vec<f64> = (0..repeats as u64)
                .map(|seed| best_of(&search(method, seed, budget, bounds), *f))
                .collect();
            let all = bests.clone();
            let m = median(&mut bests);
            println!(
                "{}",
                json!({"function": name, "method": label, "budget": budget, "repeats": repeats,
                       "median_best": m, "bests": all,
                       "seconds": started.elapsed().as_secs_f64()})
            );
        }
    }
}

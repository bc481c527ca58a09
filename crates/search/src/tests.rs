use super::*;
use spec::search::Domain;

fn search(method: &str, trials: usize) -> Search {
    serde_yaml::from_str(&format!(
        "{{method: {method}, trials: {trials}, seed: 7, startup: 5,
           objective: {{metric: f1, direction: max}},
           space: {{train.learning_rate: {{loguniform: [1.0e-5, 3.0e-4]}},
                    train.warmup_ratio: {{uniform: [0.0, 0.3]}},
                    train.epochs: {{int: [1, 4]}},
                    train.batch_size: {{choice: [16, 32, 64]}}}}}}"
    ))
    .unwrap()
}

/// A made-up objective over the space, best at lr 1e-4, warmup 0.1, 3 epochs, batch 32.
fn objective(p: &Map<String, Value>) -> f64 {
    let lr = p["train.learning_rate"].as_f64().unwrap();
    let warmup = p["train.warmup_ratio"].as_f64().unwrap();
    let epochs = p["train.epochs"].as_i64().unwrap() as f64;
    let batch = p["train.batch_size"].as_i64().unwrap();
    80.0 - 10.0 * (lr / 1e-4).ln().powi(2)
        - 100.0 * (warmup - 0.1).powi(2)
        - 3.0 * (epochs - 3.0).abs()
        - if batch == 32 { 0.0 } else { 4.0 }
}

fn run(s: &Search) -> Vec<(Map<String, Value>, f64)> {
    let mut history: Vec<Observation> = Vec::new();
    let mut out = Vec::new();
    for i in 0..s.trials {
        let p = suggest(s, i, &history);
        let v = objective(&p);
        history.push(Observation {
            params: p.clone(),
            outcome: Outcome::Complete(v),
        });
        out.push((p, v));
    }
    out
}

#[test]
fn suggestions_lie_in_their_domains_and_are_rounded() {
    for method in ["random", "tpe"] {
        let s = search(method, 40);
        for (p, _) in run(&s) {
            assert_eq!(p.len(), 4);
            for (key, domain) in &s.space {
                assert!(domain.contains(&p[key]), "{method}: {key} = {}", p[key]);
                if let Domain::Uniform(_) | Domain::LogUniform(_) = domain {
                    let x = p[key].as_f64().unwrap();
                    assert_eq!(x, round_significant(x, SIGNIFICANT_DIGITS));
                }
            }
        }
    }
}

#[test]
fn same_study_and_results_give_the_same_suggestions() {
    for method in ["random", "tpe"] {
        let a = run(&search(method, 20));
        let b = run(&search(method, 20));
        assert_eq!(a, b, "{method}");
        let mut other = search(method, 20);
        other.seed = 8;
        assert_ne!(a, run(&other), "{method}: the seed must matter");
    }
    // A random search's suggestions do not depend on results at all.
    let s = search("random", 10);
    let history = vec![Observation {
        params: suggest(&s, 0, &[]),
        outcome: Outcome::Complete(1.0),
    }];
    assert_eq!(suggest(&s, 1, &history), suggest(&s, 1, &[]));
    assert_eq!(first_suggestions(&s).len(), 10);
    assert_eq!(first_suggestions(&search("tpe", 20)).len(), 5);
}

#[test]
fn tpe_beats_random_search_on_a_smooth_objective() {
    // Over 20 seeds, the best of 40 TPE suggestions beats the best of 40 random ones more
    // often than not (TPE's first 5 are random too).
    let mut wins = 0;
    let mut tpe_sum = 0.0;
    let mut random_sum = 0.0;
    for seed in 0..20 {
        let mut t = search("tpe", 40);
        t.seed = seed;
        let mut r = search("random", 40);
        r.seed = seed;
        let best = |runs: Vec<(Map<String, Value>, f64)>| {
            runs.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max)
        };
        let (bt, br) = (best(run(&t)), best(run(&r)));
        tpe_sum += bt;
        random_sum += br;
        wins += usize::from(bt > br);
    }
    assert!(wins >= 12, "TPE won {wins} of 20");
    assert!(tpe_sum > random_sum, "{tpe_sum} vs {random_sum}");
}

#[test]
fn pending_suggestions_push_the_next_one_elsewhere() {
    // With a liar for the running trials, parallel suggestions differ from each other.
    let s = search("tpe", 30);
    let mut history: Vec<Observation> = run(&search("tpe", 10))
        .into_iter()
        .map(|(params, v)| Observation {
            params,
            outcome: Outcome::Complete(v),
        })
        .collect();
    let mut batch = Vec::new();
    for i in 10..14 {
        let p = suggest(&s, i, &history);
        history.push(Observation {
            params: p.clone(),
            outcome: Outcome::Pending,
        });
        batch.push(p);
    }
    for i in 0..batch.len() {
        for j in 0..i {
            assert_ne!(batch[i], batch[j]);
        }
    }
}

#[test]
fn failed_and_foreign_observations_are_ignored() {
    let s = search("tpe", 30);
    let mut history: Vec<Observation> = run(&search("tpe", 10))
        .into_iter()
        .map(|(params, v)| Observation {
            params,
            outcome: Outcome::Complete(v),
        })
        .collect();
    let before = suggest(&s, 10, &history);
    let mut foreign = Map::new();
    foreign.insert("train.learning_rate".into(), Value::from(5.0));
    history.push(Observation {
        params: foreign,
        outcome: Outcome::Failed,
    });
    assert_eq!(suggest(&s, 10, &history), before);
}

#[test]
fn rounding_keeps_four_significant_digits() {
    assert_eq!(round_significant(3.14159e-5, 4), 3.142e-5);
    assert_eq!(round_significant(0.123456, 4), 0.1235);
    assert_eq!(round_significant(0.0, 4), 0.0);
    assert_eq!(round_significant(-12345.0, 4), -12350.0);
}

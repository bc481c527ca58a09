//! Throughput of the data layer, for `make bench` (tools/bench_data.py drives it and puts
//! the numbers next to HF transformers + Python measured in the same run).
//!
//! Usage: bench_data DATASET VOCAB PREDICTIONS [--lower] [--repeat N]
//! Prints one JSON object: train/eval features per second, metric questions per second.

use std::collections::HashMap;
use std::time::Instant;

use qa_data::features::{build_features, FeatureConfig, Split};
use qa_data::metric::evaluate;
use qa_data::squad::{load_predictions, Dataset};
use qa_data::tokenizer::{BertTokenizer, BertTokenizerOptions};

fn best_of<T>(repeat: usize, mut f: impl FnMut() -> T) -> (T, f64) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (out.unwrap_or_else(|| unreachable!()), best)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: bench_data DATASET VOCAB PREDICTIONS [--lower] [--repeat N]".into());
    }
    let lower = args.iter().any(|a| a == "--lower");
    let repeat = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let (dataset, load_s) = best_of(repeat, || Dataset::load(&args[1]));
    let dataset = dataset?;
    let options = BertTokenizerOptions {
        do_lower_case: lower,
        ..BertTokenizerOptions::default()
    };
    let tokenizer = BertTokenizer::from_vocab_file(args[2].as_ref(), &options)?;
    let config = FeatureConfig::default();
    let mut result = serde_json::json!({
        "questions": dataset.examples.len(),
        "threads": rayon::current_num_threads(),
        "load_seconds": load_s,
    });
    for (name, split) in [("train", Split::Train), ("eval", Split::Eval)] {
        let (features, s) = best_of(repeat, || {
            build_features(&dataset, &tokenizer, config, split)
        });
        let n = features?.len();
        result[name] =
            serde_json::json!({"features": n, "seconds": s, "features_per_second": n as f64 / s});
    }
    let predictions: HashMap<String, String> = load_predictions(&args[3])?;
    let (scores, s) = best_of(repeat, || evaluate(&dataset, &predictions));
    result["metric"] = serde_json::json!({
        "questions": scores.total, "seconds": s, "questions_per_second": scores.total as f64 / s,
        "EM": scores.em, "F1": scores.f1,
    });
    println!("{result}");
    Ok(())
}

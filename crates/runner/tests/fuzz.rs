//! Fuzzing what the runner reads from a trial folder (`make fuzz` for the long run):
//! `metrics.jsonl`, which it tails while the trial writes it, and `result.json`. A trial
//! that dies mid-write, a full disk or a buggy trial leaves arbitrary bytes there; the
//! runner must neither panic nor hang, and keeps only well-formed lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use runner::outcome::{classify, Stop};
use runner::trial_dir::read_metrics;
use spec::protocol::TrialResult;
use testkit::fuzz::{self, Rng, Target, Verdict};

const METRICS: &str = r#"{"step": 0, "parameters": 1234}
{"step": 10, "epoch": 0.5, "loss": 2.3, "learning_rate": 0.0001, "grad_norm": 1.5, "examples_per_second": 40.0, "elapsed_seconds": 3.0}
{"step": 20, "epoch": 1, "eval_em": 12.5, "eval_f1": 30.25}
{"step": 20, "epoch": 1, "loss": NaN, "diverged": true}
"#;

const RESULT: &str =
    r#"{"status": "succeeded", "EM": 50.0, "F1": 64.7, "train_loss": 1.2, "steps": 364}"#;

#[test]
fn metrics_and_result_files_never_panic() {
    let dir = std::env::temp_dir().join(format!("runner-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    fuzz::run(
        Target {
            name: "metrics-jsonl",
            seeds: vec![METRICS.as_bytes().to_vec()],
            dictionary: vec![
                &b"\n"[..],
                b"{\"step\": -1}",
                b"\"step\": 1e400",
                b"\xff\xfe",
            ],
            generate: Some(Box::new(|rng: &mut Rng| {
                let keys = [
                    "step",
                    "epoch",
                    "loss",
                    "eval_em",
                    "eval_f1",
                    "elapsed_seconds",
                ];
                (0..rng.below(6))
                    .map(|_| fuzz::json(rng, &keys, 2) + "\n")
                    .collect::<String>()
                    .into_bytes()
            })),
            deadline: Duration::from_secs(10),
        },
        "metrics.jsonl",
        move |bytes| {
            std::fs::write(d.join("metrics.jsonl"), bytes).unwrap();
            // From the start, from the middle (a resumed tail), past the end (rewound).
            for offset in [0, bytes.len() as u64 / 2, bytes.len() as u64 + 7] {
                match read_metrics(&d, offset) {
                    Ok(chunk) => {
                        assert!(chunk.offset <= bytes.len() as u64);
                        assert!(chunk.metrics.iter().all(|m| m.value.is_finite()));
                    }
                    Err(e) => return Verdict::Rejected(e.to_string()),
                }
            }
            Verdict::Accepted
        },
    );
    fuzz::run(
        Target {
            name: "result-json",
            seeds: vec![RESULT.as_bytes().to_vec()],
            dictionary: vec![&b"\"status\": \"diverged\""[..], b"\"EM\": \"x\"", b"null"],
            generate: Some(Box::new(|rng: &mut Rng| {
                fuzz::json(rng, &["status", "EM", "F1", "steps", "succeeded"], 2).into_bytes()
            })),
            deadline: Duration::from_secs(10),
        },
        "result.json",
        move |bytes| {
            std::fs::write(dir.join("result.json"), bytes).unwrap();
            let result = TrialResult::read(&dir);
            let (status, why) = classify(Some(0), None, Stop::None, &result, None);
            match result {
                Ok(_) => Verdict::Accepted,
                Err(e) => {
                    // An unreadable result is a failed attempt that says why.
                    assert_eq!(status, spec::protocol::TrialStatus::Failed);
                    assert!(why.is_some_and(|w| w.contains("result.json")));
                    Verdict::Rejected(e)
                }
            }
        },
    );
}

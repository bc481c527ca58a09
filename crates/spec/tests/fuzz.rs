//! Fuzzing the study and trial YAML loaders (`make fuzz` for the long run): mutations of
//! the shipped studies and trial configs, and generated YAML built from the schema's keys.
//! No input may panic or hang; every error names the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use spec::{Study, TrialConfig};
use testkit::fuzz::{self, Rng, Target, Verdict};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(root().join(rel)).unwrap()
}

const DICTIONARY: [&[u8]; 14] = [
    b"\nablations:\n  - {name: x, set: {train.learning_rate: 1.0}}\n",
    b"\nseeds: [1, 1]\n",
    b"\ngrid: {train.batch_size: []}\n",
    b"model_config: {hidden_dropout_prob: 1.5}",
    b"executor: {slurm: {partition: \"a\\nb\"}}",
    b"&anchor ",
    b"*anchor",
    b"!!binary ",
    b"- ",
    b": ",
    b"\t",
    b"{",
    b"'",
    b"999999999999999999999",
];

/// A YAML document assembled from the study schema's keys with random values.
fn generated_study(rng: &mut Rng) -> Vec<u8> {
    let keys = [
        "name",
        "base",
        "model",
        "preset",
        "vocab",
        "init",
        "data",
        "train",
        "eval",
        "learning_rate",
        "batch_size",
        "grid",
        "ablations",
        "set",
        "seeds",
        "claims",
        "variant",
        "metric",
        "expect",
        "margin",
        "executor",
        "slurm",
        "partition",
        "model_config",
        "train.learning_rate",
        "max_steps",
    ];
    // JSON is YAML: the generator's objects parse as YAML maps.
    fuzz::json(rng, &keys, 5).into_bytes()
}

#[test]
fn study_yaml_never_panics() {
    let seeds = [
        "demo.yaml",
        "drcd-local.yaml",
        "hw4-3-ablation.yaml",
        "bert-vs-albert.yaml",
    ]
    .iter()
    .map(|f| read(&format!("experiments/{f}")))
    .collect();
    fuzz::run(
        Target {
            name: "study-yaml",
            seeds,
            dictionary: DICTIONARY.to_vec(),
            generate: Some(Box::new(generated_study)),
            deadline: Duration::from_secs(10),
        },
        "fuzzed-study.yaml",
        |bytes| {
            let text = String::from_utf8_lossy(bytes);
            match Study::from_yaml_str(&text, "fuzzed-study.yaml") {
                Ok(s) => {
                    // An accepted study must expand without panicking too.
                    let _ = s.expand();
                    Verdict::Accepted
                }
                Err(e) => Verdict::Rejected(e.to_string()),
            }
        },
    );
}

#[test]
fn trial_yaml_never_panics() {
    fuzz::run(
        Target {
            name: "trial-yaml",
            seeds: vec![read("experiments/trials/synthetic-tiny.yaml")],
            dictionary: DICTIONARY.to_vec(),
            generate: Some(Box::new(generated_study)),
            deadline: Duration::from_secs(10),
        },
        "fuzzed-trial.yaml",
        |bytes| {
            let text = String::from_utf8_lossy(bytes);
            match TrialConfig::from_yaml_str(&text, "fuzzed-trial.yaml") {
                Ok(_) => Verdict::Accepted,
                Err(e) => Verdict::Rejected(e.to_string()),
            }
        },
    );
}

#[test]
fn hf_config_json_never_panics() {
    let fixtures = root().join("crates/qa-model/tests/fixtures");
    let seeds = ["bert-tiny", "albert-tiny", "decode/albert-sharp"]
        .iter()
        .map(|d| std::fs::read(fixtures.join(d).join("config.json")).unwrap())
        .collect();
    let dir = std::env::temp_dir().join(format!("spec-fuzz-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    fuzz::run(
        Target {
            name: "hf-config-json",
            seeds,
            dictionary: vec![
                &b"\"hidden_size\": 99999999999"[..],
                b"\"num_attention_heads\": 0",
                b"\"vocab_size\": 4000000",
                b"\"model_type\": \"gpt2\"",
                b"\"hidden_act\": \"swish\"",
                b"\"embedding_size\": 65536",
                b"\"num_hidden_groups\": 512",
            ],
            generate: Some(Box::new(|rng: &mut Rng| {
                // Every key a model reads, and one it does not.
                let keys: Vec<&str> = spec::model_keys::COMMON_KEYS
                    .iter()
                    .chain(spec::model_keys::ALBERT_KEYS)
                    .copied()
                    .chain(["architectures"])
                    .collect();
                fuzz::json(rng, &keys, 2).into_bytes()
            })),
            deadline: Duration::from_secs(10),
        },
        "config.json",
        move |bytes| {
            let path = dir.join("config.json");
            std::fs::write(&path, bytes).unwrap();
            match spec::model_config::ModelConfig::load(&path) {
                Ok(c) => {
                    // Accepted configs describe models that can be allocated.
                    let embedding = c.vocab_size.saturating_mul(c.embedding_size);
                    assert!(embedding <= 1 << 31, "{c:?}");
                    Verdict::Accepted
                }
                Err(e) => Verdict::Rejected(e.to_string()),
            }
        },
    );
}

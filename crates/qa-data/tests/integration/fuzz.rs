//! Fuzzing qa-data's loaders (`make fuzz` for the long run): SQuAD-format datasets,
//! predictions files, `tokenizer.json`, and `vocab.txt` + `tokenizer_config.json` model
//! folders. Seeds are real files (a CMRC2018 trial slice, the saved-state tokenizer
//! fixtures); generated inputs are JSON built from each format's keys. No input may panic
//! or hang, and every error names the file. Accepted inputs are also used (features are
//! built, text is encoded), since a loader that accepts garbage could panic later.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qa_data::features::{build_features, FeatureConfig, Split};
use qa_data::squad::{load_predictions, Dataset};
use qa_data::tokenizer::BertTokenizer;
use testkit::fuzz::{self, Rng, Target, Verdict};

use crate::common::{data_file, fixture};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qa-data-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const JSON_WORDS: [&[u8]; 10] = [
    b"\"answer_start\": -5",
    b"\"answer_start\": 99999999999",
    b"\"answers\": []",
    b"\"id\": 1.5",
    b"\"context\": \"\"",
    b"\\ud800",
    b"\"\xe4\xb8\"",
    b"[[[[[[[[[[",
    b"\"qas\": {}",
    b"\"data\": null",
];

/// A small real dataset: the first paragraphs of CMRC2018 trial.
fn squad_seed() -> Vec<u8> {
    let text = std::fs::read_to_string(data_file("cmrc2018/cmrc2018_trial.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let data = v["data"].as_array_mut().unwrap();
    data.truncate(2);
    for a in data.iter_mut() {
        a["paragraphs"].as_array_mut().unwrap().truncate(2);
    }
    serde_json::to_vec_pretty(&v).unwrap()
}

/// A structurally valid dataset with hostile content: empty or odd contexts, answers at
/// wrong, negative or huge offsets, duplicate ids, questions with no answer, long texts;
/// one time in three, random JSON from the format's keys instead.
fn generated_squad(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(3) {
        let keys = [
            "data",
            "paragraphs",
            "context",
            "qas",
            "id",
            "question",
            "answers",
            "text",
            "answer_start",
            "title",
            "version",
        ];
        return fuzz::json(rng, &keys, 7).into_bytes();
    }
    let pieces = [
        "甲乙丙",
        "abc def",
        " ",
        "",
        r"\u2028",
        "[SEP]",
        "1999年",
        r"\u0000",
        "é",
    ];
    let text = |rng: &mut Rng, n: usize| -> String {
        (0..rng.below(n))
            .map(|_| pieces[rng.below(pieces.len())])
            .collect()
    };
    let mut paragraphs = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let context = text(rng, 40);
        let mut qas = Vec::new();
        for _ in 0..rng.below(4) {
            let start: i64 = match rng.below(4) {
                0 => -1,
                1 => 1 << 40,
                _ => rng.below(60) as i64,
            };
            let answers: Vec<String> = (0..rng.below(3))
                .map(|_| format!(r#"{{"text": "{}", "answer_start": {start}}}"#, text(rng, 3)))
                .collect();
            qas.push(format!(
                r#"{{"id": "{}", "question": "{}", "answers": [{}]}}"#,
                rng.below(5),
                text(rng, 6),
                answers.join(",")
            ));
        }
        paragraphs.push(format!(
            r#"{{"context": "{context}", "qas": [{}]}}"#,
            qas.join(",")
        ));
    }
    format!(
        r#"{{"data": [{{"paragraphs": [{}]}}]}}"#,
        paragraphs.join(",")
    )
    .into_bytes()
}

#[test]
fn squad_json_never_panics() {
    let dir = scratch("squad");
    let tokenizer = crate::common::tokenizer(false);
    fuzz::run(
        Target {
            name: "squad-json",
            seeds: vec![squad_seed()],
            dictionary: JSON_WORDS.to_vec(),
            generate: Some(Box::new(generated_squad)),
            deadline: Duration::from_secs(20),
        },
        "fuzzed.json",
        move |bytes| {
            let path = dir.join("fuzzed.json");
            match Dataset::from_json_bytes(&path, bytes) {
                Ok(ds) => {
                    let fc = FeatureConfig {
                        max_seq_length: 64,
                        doc_stride: 16,
                    };
                    for split in [Split::Train, Split::Eval] {
                        let _ = build_features(&ds, &tokenizer, fc, split);
                    }
                    Verdict::Accepted
                }
                Err(e) => Verdict::Rejected(e.to_string()),
            }
        },
    );
}

#[test]
fn predictions_json_never_panics() {
    let dir = scratch("predictions");
    fuzz::run(
        Target {
            name: "predictions-json",
            seeds: vec![br#"{"1147-2-1": "\u68b5\u8a9e", "q2": "", "3": "a \"b\""}"#.to_vec()],
            dictionary: JSON_WORDS.to_vec(),
            generate: Some(Box::new(|rng: &mut Rng| {
                fuzz::json(rng, &["q1", "TRAIN_186_QUERY_0", "1"], 3).into_bytes()
            })),
            deadline: Duration::from_secs(10),
        },
        "predictions.json",
        move |bytes| {
            let path = dir.join("predictions.json");
            std::fs::write(&path, bytes).unwrap();
            match load_predictions(&path) {
                Ok(_) => Verdict::Accepted,
                Err(e) => Verdict::Rejected(e.to_string()),
            }
        },
    );
}

fn tokenizer_check(dir: &Path, name: &str, bytes: &[u8]) -> Verdict {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let loaded = if name == "tokenizer.json" {
        BertTokenizer::from_tokenizer_json(&path)
    } else {
        BertTokenizer::from_model_dir(dir)
    };
    match loaded {
        Ok(t) => {
            for text in ["甲乙丙 abc [SEP] 1999年", "", "\u{2028}\u{0}x"] {
                let _ = t.encode(text);
            }
            Verdict::Accepted
        }
        Err(e) => Verdict::Rejected(e.to_string()),
    }
}

#[test]
fn tokenizer_json_never_panics() {
    let dir = scratch("tokenizer-json");
    let seeds = [
        "run-qa-finetune",
        "fixed-128-longest-first",
        "truncation-512",
    ]
    .iter()
    .map(|d| std::fs::read(fixture(&format!("tokenizers/{d}/tokenizer.json"))).unwrap())
    .collect();
    fuzz::run(
        Target {
            name: "tokenizer-json",
            seeds,
            dictionary: vec![
                &b"\"max_input_chars_per_word\": 0"[..],
                b"\"type\": \"BPE\"",
                b"\"vocab\": {}",
                b"\"strategy\": {\"Fixed\": 0}",
                b"\"max_length\": 0",
                b"\"stride\": 999",
                b"\"continuing_subword_prefix\": \"\"",
            ],
            generate: None,
            deadline: Duration::from_secs(20),
        },
        "tokenizer.json",
        move |bytes| tokenizer_check(&dir, "tokenizer.json", bytes),
    );
}

#[test]
fn vocab_and_tokenizer_config_never_panic() {
    let vocab_dir = scratch("vocab");
    let config_dir = scratch("tokenizer-config");
    let vocab = std::fs::read(fixture("tokenizers/run-qa-finetune/vocab.txt")).unwrap();
    std::fs::write(config_dir.join("vocab.txt"), &vocab).unwrap();
    std::fs::write(
        vocab_dir.join("tokenizer_config.json"),
        b"{\"do_lower_case\": false}",
    )
    .unwrap();
    fuzz::run(
        Target {
            name: "vocab-txt",
            seeds: vec![vocab],
            dictionary: vec![&b"[UNK]\n"[..], b"\r\n", b"\n\n", b"##", b"[PAD]"],
            generate: None,
            deadline: Duration::from_secs(20),
        },
        "vocab.txt",
        move |bytes| tokenizer_check(&vocab_dir, "vocab.txt", bytes),
    );
    fuzz::run(
        Target {
            name: "tokenizer-config-json",
            seeds: vec![
                std::fs::read(fixture("tokenizers/run-qa-finetune/tokenizer_config.json")).unwrap(),
            ],
            dictionary: JSON_WORDS.to_vec(),
            generate: Some(Box::new(|rng: &mut Rng| {
                let keys = [
                    "do_lower_case",
                    "strip_accents",
                    "tokenize_chinese_chars",
                    "unk_token",
                    "sep_token",
                    "pad_token",
                    "cls_token",
                    "mask_token",
                    "content",
                ];
                fuzz::json(rng, &keys, 3).into_bytes()
            })),
            deadline: Duration::from_secs(20),
        },
        "tokenizer_config.json",
        move |bytes| tokenizer_check(&config_dir, "tokenizer_config.json", bytes),
    );
}

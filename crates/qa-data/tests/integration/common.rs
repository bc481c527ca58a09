//! Paths to the shared data and fixtures.

use std::path::PathBuf;

use qa_data::tokenizer::{BertTokenizer, BertTokenizerOptions};

/// `$QA_SWEEP_SHARED_DATA`, else the evaluation sets in the repository (`testdata/`).
pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os("QA_SWEEP_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"));
    assert!(
        dir.join("drcd/DRCD_dev.json").is_file(),
        "the test data set is missing at {}; set QA_SWEEP_SHARED_DATA to a folder holding drcd/, cmrc2018/ and vocab/ (testdata/README.md)",
        dir.display()
    );
    dir
}

pub fn data_file(rel: &str) -> PathBuf {
    shared_data().join(rel)
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn tokenizer(lower: bool) -> BertTokenizer {
    let options = BertTokenizerOptions {
        do_lower_case: lower,
        ..BertTokenizerOptions::default()
    };
    BertTokenizer::from_vocab_file(&data_file("vocab/bert-base-chinese-vocab.txt"), &options)
        .unwrap()
}

pub const ALL_SETS: [&str; 4] = [
    "drcd/DRCD_dev.json",
    "drcd/DRCD_test.json",
    "cmrc2018/cmrc2018_dev.json",
    "cmrc2018/cmrc2018_trial.json",
];

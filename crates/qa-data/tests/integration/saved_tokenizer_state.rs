//! tokenizer.json files that carry padding/truncation state (saved by transformers after
//! run_qa-style calls, or shipped that way like all-MiniLM-L6-v2's; made by
//! tools/make_tokenizer_fixtures.py) give exactly the windows of a clean tokenizer with the
//! same vocabulary: HF ignores that state, and so must we.

use qa_data::features::{build_features, FeatureConfig, Split};
use qa_data::squad::Dataset;
use qa_data::tokenizer::{BertTokenizer, BertTokenizerOptions};

use crate::common::{data_file, fixture};

const SAVED: [&str; 3] = [
    "run-qa-finetune",
    "fixed-128-longest-first",
    "truncation-512",
];

#[test]
fn saved_padding_and_truncation_are_ignored() {
    let ds = Dataset::load(data_file("cmrc2018/cmrc2018_trial.json")).unwrap();
    let fc = FeatureConfig {
        max_seq_length: 256,
        doc_stride: 64,
    };
    for name in SAVED {
        let dir = fixture(&format!("tokenizers/{name}"));
        // The fixture really carries the state this test is about.
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
        assert!(!raw["truncation"].is_null(), "{name}: no saved truncation");

        let saved = BertTokenizer::from_model_dir(&dir).unwrap();
        assert!(saved.source().ends_with("tokenizer.json"));
        let options = BertTokenizerOptions {
            do_lower_case: false,
            ..BertTokenizerOptions::default()
        };
        let clean = BertTokenizer::from_vocab_file(&dir.join("vocab.txt"), &options).unwrap();
        for split in [Split::Eval, Split::Train] {
            let a = build_features(&ds, &saved, fc, split).unwrap();
            let b = build_features(&ds, &clean, fc, split).unwrap();
            assert_eq!(a.len(), b.len(), "{name} {split:?}: window count");
            assert!(a == b, "{name} {split:?}: windows differ");
        }
        // A long text encodes whole, neither cut at 128/512 tokens nor padded.
        let long: String = ds.paragraphs.iter().map(|p| p.context.as_str()).collect();
        let enc = saved.encode(&long).unwrap();
        assert_eq!(enc.ids, clean.encode(&long).unwrap().ids, "{name}");
        assert!(enc.ids.len() > 1000, "{name}: {} tokens", enc.ids.len());
    }
}

//! Our features equal HF's (`tools/hf_features.py` output) token for token.

use qa_data::features::{build_features, FeatureConfig, Split};
use qa_data::squad::Dataset;
use serde::Deserialize;

use crate::common::{data_file, fixture, tokenizer};

#[derive(Deserialize)]
struct HfFixture {
    do_lower_case: bool,
    max_seq_length: usize,
    doc_stride: usize,
    questions: usize,
    features: Vec<HfFeature>,
}

#[derive(Deserialize)]
struct HfFeature {
    example_id: String,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    context_start: usize,
    context_offsets: Vec<(u32, u32)>,
    start_position: usize,
    end_position: usize,
}

fn check(fixture_name: &str, dataset: &str) {
    let hf: HfFixture =
        serde_json::from_slice(&std::fs::read(fixture(fixture_name)).unwrap()).unwrap();
    let mut ds = Dataset::load(data_file(dataset)).unwrap();
    ds.examples.truncate(hf.questions);
    let tok = tokenizer(hf.do_lower_case);
    let config = FeatureConfig {
        max_seq_length: hf.max_seq_length,
        doc_stride: hf.doc_stride,
    };
    let ours = build_features(&ds, &tok, config, Split::Train).unwrap();
    let eval = build_features(&ds, &tok, config, Split::Eval).unwrap();
    assert_eq!(
        ours.len(),
        hf.features.len(),
        "{fixture_name}: feature count"
    );
    assert_eq!(
        eval.len(),
        hf.features.len(),
        "{fixture_name}: eval feature count"
    );
    let mut hf_quirks = 0;
    for (i, (o, h)) in ours.iter().zip(&hf.features).enumerate() {
        let ctx = format!("{fixture_name}: feature {i} (question {})", h.example_id);
        assert_eq!(ds.examples[o.example_index].id, h.example_id, "{ctx}");
        assert_eq!(o.input_ids, h.input_ids, "{ctx}: input_ids");
        assert_eq!(
            o.token_type_ids(),
            h.token_type_ids,
            "{ctx}: token_type_ids"
        );
        assert_eq!(o.context_start, h.context_start, "{ctx}: context start");
        assert_eq!(o.context_offsets, h.context_offsets, "{ctx}: offsets");
        assert_eq!(eval[i].input_ids, o.input_ids, "{ctx}: eval windows");
        let (start, end) = o.label.unwrap();
        let last_context = o.context_range().end - 1;
        if h.start_position > last_context && h.start_position != 0 {
            // HF's start loop ran past [SEP] into padding; we keep the last context token.
            hf_quirks += 1;
            assert_eq!(start, last_context, "{ctx}: start label (HF quirk case)");
        } else {
            assert_eq!(start, h.start_position, "{ctx}: start label");
        }
        assert_eq!(end, h.end_position, "{ctx}: end label");
    }
    eprintln!(
        "{fixture_name}: {} features equal; {hf_quirks} HF start-label overruns",
        ours.len()
    );
}

#[test]
fn drcd_dev_short_windows() {
    check("hf_features_drcd_dev_128_32.json", "drcd/DRCD_dev.json");
}

#[test]
fn drcd_test_tiny_windows() {
    check("hf_features_drcd_test_64_16.json", "drcd/DRCD_test.json");
}

#[test]
fn cmrc_dev_default_windows_lower_case() {
    check(
        "hf_features_cmrc_dev_384_128_lower.json",
        "cmrc2018/cmrc2018_dev.json",
    );
}

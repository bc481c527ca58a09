//! Evaluation picks run_qa's answers. Sharp random BERT and ALBERT checkpoints
//! (initializer_range 0.5; tools/make_decode_fixtures.py), saved as safetensors and as
//! legacy pytorch_model.bin, both with the int64 `position_ids` buffer of transformers
//! ≤ 4.30, answer the first 1000 DRCD dev questions at 384/128, n-best 20, max answer 30;
//! HF's answers were recorded with both run_qa padding modes. Target: the same answer for
//! ≥ 99 % of the questions whose best and second-best candidate texts differ by more than
//! 1e-3 in score (closer calls are float noise). The .bin twins must give the very same
//! logits.
//!
//! A negative control decodes rows trimmed to each window's length (what evaluation did
//! before): it must miss the target, or this test could not tell the difference.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use qa_data::decode::{decode_dataset, DecodeConfig};
use qa_data::features::{build_features, Feature, FeatureConfig, Split};
use qa_data::squad::Dataset;
use qa_data::tokenizer::BertTokenizer;
use qa_model::backend::CpuBackend;
use qa_model::checkpoint::load_model_dir;
use qa_model::eval::{evaluate_model, logits, EvalPadding};
use qa_model::model::QaModel;
use serde::Deserialize;

#[derive(Deserialize)]
struct Span {
    text: String,
    margin: f64,
}

#[derive(Deserialize)]
struct Expected {
    questions: usize,
    max_seq_length: usize,
    doc_stride: usize,
    n_best_size: usize,
    max_answer_length: usize,
    eval_batch_size: usize,
    padded: HashMap<String, Span>,
    dynamic: HashMap<String, Span>,
}

const MARGIN: f64 = 1e-3;
const TARGET: f64 = 0.99;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decode")
}

fn shared_data() -> PathBuf {
    std::env::var_os("QA_SWEEP_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"))
}

/// The first `n` questions of DRCD dev, in file order (as tools/hf_features.flatten cuts
/// them), written to `dir` and loaded.
fn drcd_dev_slice(n: usize, dir: &Path) -> Dataset {
    let text = std::fs::read_to_string(shared_data().join("drcd/DRCD_dev.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut left = n;
    let articles = v["data"].as_array_mut().unwrap();
    for article in articles.iter_mut() {
        let paragraphs = article["paragraphs"].as_array_mut().unwrap();
        for p in paragraphs.iter_mut() {
            let qas = p["qas"].as_array_mut().unwrap();
            qas.truncate(left);
            left -= qas.len();
        }
        paragraphs.retain(|p| !p["qas"].as_array().unwrap().is_empty());
    }
    articles.retain(|a| !a["paragraphs"].as_array().unwrap().is_empty());
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("drcd_dev_slice.json");
    std::fs::write(&path, v.to_string()).unwrap();
    let ds = Dataset::load(&path).unwrap();
    assert_eq!(ds.examples.len(), n);
    ds
}

/// Share of decided questions (margin > 1e-3) whose answer equals HF's; and their count.
fn agreement(expected: &HashMap<String, Span>, ours: &HashMap<String, String>) -> (f64, usize) {
    let decided: Vec<(&String, &Span)> =
        expected.iter().filter(|(_, s)| s.margin > MARGIN).collect();
    let same = decided
        .iter()
        .filter(|(id, s)| ours.get(*id) == Some(&s.text))
        .count();
    (same as f64 / decided.len() as f64, decided.len())
}

fn predictions(
    ds: &Dataset,
    preds: &[Option<qa_data::decode::Prediction>],
) -> HashMap<String, String> {
    ds.examples
        .iter()
        .zip(preds)
        .filter_map(|(ex, p)| p.as_ref().map(|p| (ex.id.clone(), p.text.clone())))
        .collect()
}

fn check(model_dir: &str, expected_file: &str) {
    let e: Expected =
        serde_json::from_slice(&std::fs::read(fixtures().join(expected_file)).unwrap()).unwrap();
    let tmp = std::env::temp_dir().join(format!("qa-decode-{}-{model_dir}", std::process::id()));
    let ds = drcd_dev_slice(e.questions, &tmp);
    let dir = fixtures().join(model_dir);
    let device = Default::default();
    let (model, _, report) =
        load_model_dir::<CpuBackend>(&dir, &Default::default(), &device).unwrap();
    assert!(report.initialised.is_empty(), "{:?}", report.initialised);
    assert!(report.unused.is_empty(), "{:?}", report.unused);
    assert!(
        report
            .ignored
            .iter()
            .any(|k| k.ends_with("embeddings.position_ids")),
        "the fixture's int64 position_ids buffer should be skipped: {:?}",
        report.ignored
    );
    let tokenizer = BertTokenizer::from_model_dir(&dir).unwrap();
    let fc = FeatureConfig {
        max_seq_length: e.max_seq_length,
        doc_stride: e.doc_stride,
    };
    let features = build_features(&ds, &tokenizer, fc, Split::Eval).unwrap();
    let decode = DecodeConfig {
        n_best_size: e.n_best_size,
        max_answer_length: e.max_answer_length,
    };
    let pad = tokenizer.special_ids().pad;
    for (mode, padding, want) in [
        (
            "padded",
            EvalPadding::MaxLength(e.max_seq_length),
            &e.padded,
        ),
        ("dynamic", EvalPadding::Longest, &e.dynamic),
    ] {
        let r = evaluate_model(
            &model,
            &ds,
            &features,
            e.eval_batch_size,
            pad,
            padding,
            decode,
            &device,
        )
        .unwrap();
        let (share, n) = agreement(want, &r.predictions);
        eprintln!("{model_dir} {mode}: same answer as HF for {share:.4} of {n} decided questions");
        assert!(
            share >= TARGET,
            "{model_dir} {mode}: {share:.4} of {n} questions agree with run_qa"
        );
    }
    let share = trimmed_rows_agreement(&model, &ds, &features, &e, pad, decode);
    eprintln!("{model_dir}: rows trimmed to the window agree for {share:.4} (control)");
    assert!(
        share < TARGET,
        "the control should miss the target; the test cannot see the padding rule"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The old rule: each row cut to its window's own length, padding positions never ranked.
fn trimmed_rows_agreement(
    model: &QaModel<CpuBackend>,
    ds: &Dataset,
    features: &[Feature],
    e: &Expected,
    pad: u32,
    decode: DecodeConfig,
) -> f64 {
    let device = Default::default();
    let (mut s, mut en) = logits(
        model,
        features,
        e.eval_batch_size,
        pad,
        EvalPadding::MaxLength(e.max_seq_length),
        &device,
    )
    .unwrap();
    for (f, (rs, re)) in features.iter().zip(s.iter_mut().zip(en.iter_mut())) {
        rs.truncate(f.len());
        re.truncate(f.len());
    }
    let preds = decode_dataset(ds, features, &s, &en, decode);
    agreement(&e.padded, &predictions(ds, &preds)).0
}

#[test]
fn bert_decodes_like_run_qa() {
    check("bert-sharp", "bert-sharp.expected.json");
}

#[test]
fn albert_decodes_like_run_qa() {
    check("albert-sharp", "albert-sharp.expected.json");
}

/// The legacy pytorch_model.bin fixtures hold the same weights as the safetensors ones (and
/// the int64 position_ids buffer): identical logits on real windows mean identical answers.
#[test]
fn legacy_bin_checkpoints_give_the_same_logits() {
    let tmp = std::env::temp_dir().join(format!("qa-decode-legacy-{}", std::process::id()));
    let ds = drcd_dev_slice(40, &tmp);
    let device = Default::default();
    for name in ["bert-sharp", "albert-sharp"] {
        let load = |dir: &str| {
            let (model, _, report) =
                load_model_dir::<CpuBackend>(&fixtures().join(dir), &Default::default(), &device)
                    .unwrap();
            assert!(
                report.initialised.is_empty() && report.unused.is_empty(),
                "{dir}"
            );
            assert!(
                report
                    .ignored
                    .iter()
                    .any(|k| k.ends_with("embeddings.position_ids")),
                "{dir}: {:?}",
                report.ignored
            );
            model
        };
        let (st, bin) = (load(name), load(&format!("{name}-legacy")));
        let tokenizer = BertTokenizer::from_model_dir(fixtures().join(name)).unwrap();
        let features =
            build_features(&ds, &tokenizer, FeatureConfig::default(), Split::Eval).unwrap();
        let padding = EvalPadding::MaxLength(384);
        let a = logits(&st, &features, 8, 0, padding, &device).unwrap();
        let b = logits(&bin, &features, 8, 0, padding, &device).unwrap();
        assert!(a == b, "{name}: the .bin checkpoint gives other logits");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

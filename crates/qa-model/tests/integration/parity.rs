//! Our logits equal HF's within 1e-4 (f32, CPU) for BERT (gelu), ALBERT (relu, factorised
//! embeddings, 2 groups × 2 inner layers) and a legacy pytorch_model.bin with gamma/beta.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use qa_model::backend::CpuBackend;
use qa_model::checkpoint::{load_model_dir, save_model_dir};
use qa_model::model::{int_tensor, QaBatch, QaModel};
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct Expected {
    pub(crate) input_ids: Vec<Vec<i64>>,
    pub(crate) token_type_ids: Vec<Vec<i64>>,
    pub(crate) attention_mask: Vec<Vec<i64>>,
    pub(crate) start_logits: Vec<Vec<f32>>,
    pub(crate) end_logits: Vec<Vec<f32>>,
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub(crate) fn expected(dir: &Path) -> Expected {
    serde_json::from_slice(&std::fs::read(dir.join("expected_logits.json")).unwrap()).unwrap()
}

/// The fixture's inputs as a batch on `device`.
pub(crate) fn batch<B: Backend>(e: &Expected, device: &B::Device) -> QaBatch<B> {
    let (rows, cols) = (e.input_ids.len(), e.input_ids[0].len());
    let flat = |v: &Vec<Vec<i64>>| v.iter().flatten().copied().collect::<Vec<i64>>();
    QaBatch {
        input_ids: int_tensor(flat(&e.input_ids), rows, cols, device),
        token_type_ids: int_tensor(flat(&e.token_type_ids), rows, cols, device),
        attention_mask: int_tensor(flat(&e.attention_mask), rows, cols, device),
        dropout_key: 0,
    }
}

/// The largest |logit difference| between `model` (on `device`) and HF's recorded logits.
pub(crate) fn max_diff_on<B: Backend>(model: &QaModel<B>, e: &Expected, device: &B::Device) -> f32 {
    let out = model.forward(batch(e, device));
    let s: Vec<f32> = out.start_logits.into_data().to_vec().unwrap();
    let en: Vec<f32> = out.end_logits.into_data().to_vec().unwrap();
    let mut worst = 0.0f32;
    let mut k = 0;
    for (row_s, row_e) in e.start_logits.iter().zip(&e.end_logits) {
        for (a, b) in row_s.iter().zip(row_e) {
            worst = worst.max((s[k] - a).abs()).max((en[k] - b).abs());
            k += 1;
        }
    }
    worst
}

fn max_diff(model: &QaModel<CpuBackend>, e: &Expected) -> f32 {
    max_diff_on(model, e, &Default::default())
}

fn check(name: &str) -> QaModel<CpuBackend> {
    let dir = fixture(name);
    let (model, _config, report) =
        load_model_dir::<CpuBackend>(&dir, &Default::default(), &Default::default()).unwrap();
    assert!(
        report.initialised.is_empty(),
        "{name}: initialised {:?}",
        report.initialised
    );
    assert!(
        report.unused.is_empty(),
        "{name}: unused {:?}",
        report.unused
    );
    let d = max_diff(&model, &expected(&dir));
    eprintln!("{name}: max |logit diff| = {d:e}");
    assert!(d < 1e-4, "{name}: max logit difference {d}");
    model
}

#[test]
fn bert_gelu_matches_hf() {
    check("bert-tiny");
}

/// The GPU kit's aligned shapes (hidden 64, FFN 256, 4 heads, sequence 64).
#[test]
fn aligned_bert_matches_hf() {
    check("bert-aligned");
}

#[test]
fn albert_relu_groups_match_hf() {
    check("albert-tiny");
}

#[test]
fn legacy_pytorch_bin_with_gamma_beta_matches_hf() {
    let dir = fixture("bert-tiny-legacy");
    let (_, _, report) =
        load_model_dir::<CpuBackend>(&dir, &Default::default(), &Default::default()).unwrap();
    assert_eq!(
        report.ignored,
        vec![
            "bert.pooler.dense.bias",
            "bert.pooler.dense.weight",
            "cls.predictions.bias"
        ]
    );
    check("bert-tiny-legacy");
}

#[test]
fn saved_checkpoint_reloads_identically() {
    for name in ["bert-tiny", "albert-tiny"] {
        let dir = fixture(name);
        let (model, config, _) =
            load_model_dir::<CpuBackend>(&dir, &Default::default(), &Default::default()).unwrap();
        let out = std::env::temp_dir().join(format!("qa-model-save-{}-{name}", std::process::id()));
        save_model_dir(&model, &config, Some(&dir), &out).unwrap();
        for f in [
            "config.json",
            "model.safetensors",
            "vocab.txt",
            "tokenizer_config.json",
        ] {
            assert!(out.join(f).is_file(), "{name}: {f} missing");
        }
        // Same HF keys as the original file, nothing more, nothing less.
        let orig = qa_model::weights::read_safetensors(&dir.join("model.safetensors")).unwrap();
        let saved = qa_model::weights::read_safetensors(&out.join("model.safetensors")).unwrap();
        let mut a: Vec<_> = orig.keys().collect();
        let mut b: Vec<_> = saved.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{name}: keys");
        for (k, t) in &orig {
            assert_eq!(&saved[k], t, "{name}: tensor {k}");
        }
        let (again, _, report) =
            load_model_dir::<CpuBackend>(&out, &Default::default(), &Default::default()).unwrap();
        assert!(report.initialised.is_empty() && report.unused.is_empty());
        assert!(max_diff(&again, &expected(&dir)) < 1e-4);
    }
}

#[test]
fn missing_qa_head_is_initialised_and_reported() {
    // A bare BertModel checkpoint (no prefix, no qa_outputs), as sentence-transformers saves it.
    let dir = fixture("bert-tiny");
    let tensors = qa_model::weights::read_safetensors(&dir.join("model.safetensors")).unwrap();
    let bare: std::collections::BTreeMap<String, qa_model::weights::HostTensor> = tensors
        .into_iter()
        .filter(|(k, _)| !k.starts_with("qa_outputs"))
        .map(|(k, v)| (k.trim_start_matches("bert.").to_string(), v))
        .collect();
    let out = std::env::temp_dir().join(format!("qa-model-bare-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    qa_model::weights::write_safetensors(&out.join("model.safetensors"), &bare).unwrap();
    std::fs::copy(dir.join("config.json"), out.join("config.json")).unwrap();
    let (_, _, report) =
        load_model_dir::<CpuBackend>(&out, &Default::default(), &Default::default()).unwrap();
    assert_eq!(
        report.initialised,
        vec!["qa_outputs.weight", "qa_outputs.bias"]
    );
    assert!(report.unused.is_empty());
}

#[test]
fn wrong_shape_names_the_key() {
    let dir = fixture("bert-tiny");
    let out = std::env::temp_dir().join(format!("qa-model-shape-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(dir.join("model.safetensors"), out.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    cfg["intermediate_size"] = 40.into();
    std::fs::write(out.join("config.json"), cfg.to_string()).unwrap();
    let err = load_model_dir::<CpuBackend>(&out, &Default::default(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bert.encoder.layer.0.intermediate.dense.weight") && err.contains("[37, 16]"),
        "{err}"
    );
}

#[test]
fn sharded_safetensors_with_index_match_hf() {
    let dir = fixture("bert-tiny");
    let tensors = qa_model::weights::read_safetensors(&dir.join("model.safetensors")).unwrap();
    let out = std::env::temp_dir().join(format!("qa-model-sharded-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let (mut a, mut b) = (
        std::collections::BTreeMap::new(),
        std::collections::BTreeMap::new(),
    );
    let mut weight_map = serde_json::Map::new();
    for (i, (k, v)) in tensors.into_iter().enumerate() {
        let shard = if i % 2 == 0 {
            "model-00001-of-00002.safetensors"
        } else {
            "model-00002-of-00002.safetensors"
        };
        weight_map.insert(k.clone(), shard.into());
        if i % 2 == 0 {
            a.insert(k, v)
        } else {
            b.insert(k, v)
        };
    }
    qa_model::weights::write_safetensors(&out.join("model-00001-of-00002.safetensors"), &a)
        .unwrap();
    qa_model::weights::write_safetensors(&out.join("model-00002-of-00002.safetensors"), &b)
        .unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(out.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::copy(dir.join("config.json"), out.join("config.json")).unwrap();
    let (model, _, report) =
        load_model_dir::<CpuBackend>(&out, &Default::default(), &Default::default()).unwrap();
    assert!(report.initialised.is_empty() && report.unused.is_empty());
    assert!(max_diff(&model, &expected(&dir)) < 1e-4);
}

/// Mixed precision against HF's f32 logits: the matmuls in bf16/f16, softmax/LayerNorm in
/// f32. Measured on these fixtures (logits of magnitude ~1): bf16 ≤ 3e-3, f16 ≤ 5e-4; the
/// asserted tolerances leave room: bf16 1e-2 (8 mantissa bits), f16 2e-3 (11 bits).
#[test]
fn mixed_precision_logits_stay_close_to_hf() {
    for name in ["bert-tiny", "albert-tiny", "bert-tiny-legacy"] {
        let dir = fixture(name);
        let (mut model, _, _) =
            load_model_dir::<CpuBackend>(&dir, &Default::default(), &Default::default()).unwrap();
        for (half, tolerance) in [(spec::Half::Bf16, 1e-2), (spec::Half::F16, 2e-3)] {
            model.autocast = Some(qa_model::amp::dtype(half));
            let d = max_diff(&model, &expected(&dir));
            eprintln!("{name} {half:?} autocast: max |logit diff| = {d:e}");
            assert!(d < tolerance, "{name} {half:?}: {d}");
            assert!(
                d > 0.0,
                "{name} {half:?}: no difference at all; is autocast on?"
            );
        }
    }
}

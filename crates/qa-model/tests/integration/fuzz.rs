//! Fuzzing the checkpoint readers (`make fuzz` for the long run): safetensors headers,
//! `pytorch_model.bin` (zip + pickle, read by burn-store) and sharded-checkpoint indexes,
//! mutated from the fixtures. No input may panic or hang; every error names the file.
//! Accepted checkpoints are also built into a model against the fixture's config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qa_model::backend::CpuBackend;
use qa_model::config::ModelConfig;
use qa_model::model::QaModel;
use qa_model::weights::{read_checkpoint, WeightSource};
use testkit::fuzz::{self, Rng, Target, Verdict};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qa-model-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads the checkpoint in `dir` and, if it reads, builds the fixture model from it.
fn load(dir: &Path, config: &ModelConfig) -> Verdict {
    match read_checkpoint(dir) {
        Ok(c) => {
            let mut source = WeightSource::from_checkpoint(c, config.arch.prefix());
            match QaModel::<CpuBackend>::build(config, &mut source, &Default::default()) {
                Ok(_) => Verdict::Accepted,
                Err(e) => Verdict::Rejected(e.to_string()),
            }
        }
        Err(e) => Verdict::Rejected(e.to_string()),
    }
}

fn bert_config() -> ModelConfig {
    ModelConfig::load(&fixture("bert-tiny/config.json")).unwrap()
}

/// A safetensors file with its JSON header mutated (the data part kept), so the cases test
/// the header parser rather than float values.
fn header_mutation(file: &[u8], rng: &mut Rng) -> Vec<u8> {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header = &file[8..8 + n];
    let words: [&[u8]; 6] = [
        b"\"dtype\":\"I64\"",
        b"\"shape\":[99999999999,99999999999]",
        b"\"data_offsets\":[0,18446744073709551615]",
        b"\"dtype\":\"F8_E4M3\"",
        b"\"shape\":[]",
        b"\"__metadata__\":{\"format\":1}",
    ];
    let mut h = fuzz::mutate(rng, header, &words);
    let mut out = Vec::with_capacity(file.len() + 16);
    let declared = if rng.chance(8) {
        rng.next_u64() % (file.len() as u64 * 2)
    } else {
        h.len() as u64
    };
    out.extend_from_slice(&declared.to_le_bytes());
    out.append(&mut h);
    out.extend_from_slice(&file[8 + n..]);
    out
}

#[test]
fn safetensors_never_panic() {
    let dir = scratch("safetensors");
    let file = std::fs::read(fixture("bert-tiny/model.safetensors")).unwrap();
    let config = bert_config();
    let seed = file.clone();
    fuzz::run(
        Target {
            name: "safetensors",
            // The whole file: plain mutations mostly land in the tensor data (accepted, as
            // they should be); `header_mutation` aims at the JSON header.
            seeds: vec![file],
            dictionary: vec![],
            generate: Some(Box::new(move |rng: &mut Rng| header_mutation(&seed, rng))),
            deadline: Duration::from_secs(30),
        },
        "model.safetensors",
        move |bytes| {
            std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
            load(&dir, &config)
        },
    );
}

#[test]
fn pytorch_bin_never_panics() {
    let dir = scratch("bin");
    let file = std::fs::read(fixture("bert-tiny-legacy/pytorch_model.bin")).unwrap();
    let config = bert_config();
    fuzz::run(
        Target {
            name: "pytorch-bin",
            seeds: vec![file],
            dictionary: vec![
                &b"PK\x03\x04"[..],
                b"PK\x01\x02",
                b"\x80\x02",
                b"q\x00",
                b".",
            ],
            generate: None,
            deadline: Duration::from_secs(30),
        },
        "pytorch_model.bin",
        move |bytes| {
            std::fs::write(dir.join("pytorch_model.bin"), bytes).unwrap();
            load(&dir, &config)
        },
    );
}

#[test]
fn sharded_index_never_panics() {
    let dir = scratch("sharded");
    std::fs::copy(
        fixture("bert-tiny/model.safetensors"),
        dir.join("model-00001-of-00001.safetensors"),
    )
    .unwrap();
    let config = bert_config();
    let index = br#"{"metadata": {"total_size": 1}, "weight_map": {"bert.embeddings.word_embeddings.weight": "model-00001-of-00001.safetensors", "qa_outputs.weight": "model-00001-of-00001.safetensors"}}"#;
    fuzz::run(
        Target {
            name: "safetensors-index",
            seeds: vec![index.to_vec()],
            dictionary: vec![
                &b"\"../../etc/passwd\""[..],
                b"\"/dev/zero\"",
                b"\"\"",
                b"\"weight_map\": []",
                b"null",
            ],
            generate: Some(Box::new(|rng: &mut Rng| {
                fuzz::json(
                    rng,
                    &["weight_map", "metadata", "model-00001-of-00001.safetensors"],
                    3,
                )
                .into_bytes()
            })),
            deadline: Duration::from_secs(30),
        },
        "model.safetensors.index.json",
        move |bytes| {
            std::fs::write(dir.join("model.safetensors.index.json"), bytes).unwrap();
            load(&dir, &config)
        },
    );
}

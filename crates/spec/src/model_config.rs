//! HF `config.json` for BERT and ALBERT: parsing, every check of its values, trial
//! overrides (`model_config`), and the presets' configs. Burn-free, so the planner runs the
//! very checks a trial makes (a `model_config: {hidden_dropout_prob: 1.5}` fails `sweep
//! plan`, not every trial); `qa-model` builds the network from the result.
//!
//! Every key of the file is kept (`raw`), so saving a fine-tuned checkpoint writes the
//! user's config back unchanged apart from what training changed. Which keys the QA models
//! read is [`crate::model_keys`].
//!
//! Mirrors transformers' `BertConfig` / `AlbertConfig` (models/bert/configuration_bert.py,
//! models/albert/configuration_albert.py of transformers v5.24.0): the same key names and
//! defaults.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::SpecError;
use crate::model_keys::{key_effect, Arch, KeyEffect};

/// Model presets for runs without pretrained weights (random init).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// BERT, 2 layers, hidden 128, 2 heads.
    Tiny,
    /// BERT, 4 layers, hidden 256, 4 heads.
    Mini,
    /// BERT, 4 layers, hidden 512, 8 heads.
    Small,
    /// BERT-base shape (12 layers, hidden 768, 12 heads), for throughput measurements.
    Base,
    /// ALBERT, embedding 64, hidden 128, 2 layers sharing one group, 2 heads.
    AlbertTiny,
}

type Result<T> = std::result::Result<T, SpecError>;

/// Upper bounds that keep a config from asking for absurd allocations (a corrupt or hostile
/// config.json): far above any real BERT/ALBERT.
const MAX_DIM: usize = 65_536;
const MAX_LAYERS: usize = 512;
const MAX_VOCAB: usize = 4_000_000;
const MAX_POSITIONS: usize = 1 << 20;
/// The largest single weight matrix, in elements (2^31: 8 GiB of f32).
const MAX_MATRIX: usize = 1 << 31;

/// `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact erf GELU (HF `gelu`).
    Gelu,
    /// Tanh approximation (HF `gelu_new`, `gelu_pytorch_tanh`).
    GeluNew,
    Relu,
}

impl Activation {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluNew),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }
}

/// A parsed HF config.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub initializer_range: f64,
    pub pad_token_id: usize,
    /// ALBERT: factorised embedding size (BERT: = hidden_size).
    pub embedding_size: usize,
    pub num_hidden_groups: usize,
    pub inner_group_num: usize,
    /// The whole JSON object, every key kept, for saving.
    pub raw: Map<String, Value>,
}

/// Typed keys of a config.json, with HF's defaults and our bounds; errors name the file and
/// the key.
struct Keys<'a> {
    raw: &'a Map<String, Value>,
    origin: &'a str,
}

impl Keys<'_> {
    fn err(&self, message: String) -> SpecError {
        SpecError::Config {
            path: self.origin.into(),
            message,
        }
    }

    /// `model_type`, or for older files the class named in `architectures`.
    fn arch(&self) -> Result<Arch> {
        match self.raw.get("model_type").and_then(Value::as_str) {
            Some("bert") => Ok(Arch::Bert),
            Some("albert") => Ok(Arch::Albert),
            Some(other) => Err(self.err(format!(
                "model_type {other:?} is not supported; expected \"bert\" or \"albert\""
            ))),
            None => {
                let archs = self
                    .raw
                    .get("architectures")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                if archs.contains("Albert") {
                    Ok(Arch::Albert)
                } else if archs.contains("Bert") {
                    Ok(Arch::Bert)
                } else {
                    Err(self
                        .err("key model_type is missing; expected \"bert\" or \"albert\"".into()))
                }
            }
        }
    }

    /// A positive integer of at most `max` (`pad_token_id` may be 0); `default` when absent,
    /// an error when absent without one.
    fn usize(&self, key: &str, default: Option<usize>, max: usize) -> Result<usize> {
        match self.raw.get(key) {
            None | Some(Value::Null) => default.ok_or_else(|| {
                self.err(format!(
                    "key {key} is missing (expected a positive integer)"
                ))
            }),
            Some(v) => v
                .as_u64()
                .filter(|&n| n > 0 || key == "pad_token_id")
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= max)
                .ok_or_else(|| {
                    self.err(format!(
                        "key {key}: expected a positive integer of at most {max}, found {v}"
                    ))
                }),
        }
    }

    /// A number in `range`; `default` when absent.
    fn f64(&self, key: &str, default: f64, range: std::ops::RangeInclusive<f64>) -> Result<f64> {
        match self.raw.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().filter(|x| range.contains(x)).ok_or_else(|| {
                self.err(format!(
                    "key {key}: expected a number in {range:?}, found {v}"
                ))
            }),
        }
    }

    fn hidden_act(&self) -> Result<Activation> {
        match self.raw.get("hidden_act") {
            None => Ok(Activation::Gelu),
            Some(v) => v.as_str().and_then(Activation::parse).ok_or_else(|| {
                self.err(format!(
                    "key hidden_act: expected \"gelu\", \"gelu_new\" or \"relu\", found {v}"
                ))
            }),
        }
    }
}

impl ModelConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Config {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        let raw: Map<String, Value> =
            serde_json::from_str(&text).map_err(|e| SpecError::Config {
                path: path.display().to_string(),
                message: format!("not a JSON object: {e}"),
            })?;
        Self::from_map(raw, &path.display().to_string())
    }

    /// Builds from a JSON object; `origin` names it in errors.
    pub fn from_map(raw: Map<String, Value>, origin: &str) -> Result<Self> {
        let keys = Keys { raw: &raw, origin };
        let arch = keys.arch()?;
        if let Some(v) = raw.get("position_embedding_type") {
            if v.as_str() != Some("absolute") {
                return Err(keys.err(format!(
                    "key position_embedding_type: only \"absolute\" is supported, found {v}"
                )));
            }
        }
        let hidden_size = keys.usize("hidden_size", None, MAX_DIM)?;
        let (embedding_size, num_hidden_groups, inner_group_num) = match arch {
            Arch::Bert => (hidden_size, 1, 1),
            Arch::Albert => (
                keys.usize("embedding_size", Some(128), MAX_DIM)?,
                keys.usize("num_hidden_groups", Some(1), MAX_LAYERS)?,
                keys.usize("inner_group_num", Some(1), MAX_LAYERS)?,
            ),
        };
        let config = Self {
            arch,
            vocab_size: keys.usize("vocab_size", None, MAX_VOCAB)?,
            hidden_size,
            num_hidden_layers: keys.usize("num_hidden_layers", None, MAX_LAYERS)?,
            num_attention_heads: keys.usize("num_attention_heads", None, MAX_DIM)?,
            intermediate_size: keys.usize("intermediate_size", None, MAX_DIM * 4)?,
            hidden_act: keys.hidden_act()?,
            hidden_dropout_prob: keys.f64("hidden_dropout_prob", 0.1, 0.0..=0.99)?,
            attention_probs_dropout_prob: keys.f64(
                "attention_probs_dropout_prob",
                0.1,
                0.0..=0.99,
            )?,
            max_position_embeddings: keys.usize(
                "max_position_embeddings",
                Some(512),
                MAX_POSITIONS,
            )?,
            type_vocab_size: keys.usize("type_vocab_size", Some(2), 1024)?,
            layer_norm_eps: keys.f64("layer_norm_eps", 1e-12, 0.0..=1.0)?,
            initializer_range: keys.f64("initializer_range", 0.02, 0.0..=10.0)?,
            pad_token_id: keys.usize("pad_token_id", Some(0), MAX_VOCAB)?,
            embedding_size,
            num_hidden_groups,
            inner_group_num,
            // Last: every key above is read from it first.
            raw,
        };
        config.check_shapes(origin)?;
        Ok(config)
    }

    /// The checks between keys: heads divide the hidden size, groups fit the layers, the
    /// padding id is in the vocabulary, and no weight matrix or layer count is absurd.
    fn check_shapes(&self, origin: &str) -> Result<()> {
        let err = |message: String| SpecError::Config {
            path: origin.into(),
            message,
        };
        let (hidden, heads) = (self.hidden_size, self.num_attention_heads);
        if hidden % heads != 0 {
            return Err(err(format!(
                "key num_attention_heads: hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
            )));
        }
        let (groups, layers) = (self.num_hidden_groups, self.num_hidden_layers);
        if groups > layers {
            return Err(err(format!(
                "key num_hidden_groups: {groups} groups for {layers} layers"
            )));
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(err(format!(
                "key pad_token_id: {} is not below vocab_size {}",
                self.pad_token_id, self.vocab_size
            )));
        }
        for (key, rows, cols) in [
            ("vocab_size", self.vocab_size, self.embedding_size),
            ("intermediate_size", self.intermediate_size, hidden),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                self.embedding_size,
            ),
        ] {
            if rows.saturating_mul(cols) > MAX_MATRIX {
                return Err(err(format!(
                    "key {key}: a {rows} × {cols} weight matrix is larger than {MAX_MATRIX} elements"
                )));
            }
        }
        let inner = self.inner_group_num;
        if groups.saturating_mul(inner) > MAX_LAYERS {
            return Err(err(format!(
                "key inner_group_num: {groups} groups × {inner} layers is more than {MAX_LAYERS} layers"
            )));
        }
        Ok(())
    }

    /// Keys present in the file that the architecture does not read.
    pub fn inert_keys(&self) -> Vec<String> {
        self.raw
            .keys()
            .filter(|k| matches!(key_effect(self.arch, k), KeyEffect::Inert(_)))
            .cloned()
            .collect()
    }

    /// Sets a key (from a trial's `model_config`), keeping the raw map in sync, and re-validates.
    pub fn with_overrides(&self, overrides: &Map<String, Value>, origin: &str) -> Result<Self> {
        let mut raw = self.raw.clone();
        for (k, v) in overrides {
            raw.insert(k.clone(), v.clone());
        }
        Self::from_map(raw, origin)
    }

    /// config.json as HF writes it (all original keys, QA architecture).
    pub fn to_json(&self) -> Value {
        let mut raw = self.raw.clone();
        raw.insert(
            "architectures".into(),
            Value::from(vec![self.arch.qa_class()]),
        );
        raw.insert("model_type".into(), Value::from(self.arch.prefix()));
        Value::Object(raw)
    }
}

/// The HF config of a preset; `albert` switches `tiny`/`mini`/`small` to ALBERT.
pub fn preset_config(preset: Preset, albert: bool, vocab_size: usize) -> Result<ModelConfig> {
    let (layers, hidden, heads) = match preset {
        Preset::Tiny | Preset::AlbertTiny => (2, 128, 2),
        Preset::Mini => (4, 256, 4),
        Preset::Small => (4, 512, 8),
        Preset::Base => (12, 768, 12),
    };
    let albert = albert || preset == Preset::AlbertTiny;
    let mut c: Map<String, Value> = match json!({
        "model_type": if albert { "albert" } else { "bert" },
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": hidden * 4,
        "hidden_act": if albert { "gelu_new" } else { "gelu" },
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if albert {
        c.insert("embedding_size".into(), json!(hidden / 2));
        c.insert("num_hidden_groups".into(), json!(1));
        c.insert("inner_group_num".into(), json!(1));
    }
    ModelConfig::from_map(c, &format!("preset {preset:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> Result<ModelConfig> {
        ModelConfig::from_map(serde_json::from_str(json).unwrap(), "config.json")
    }

    #[test]
    fn pooler_keys_are_inert_for_bert() {
        assert_eq!(
            key_effect(Arch::Bert, "hidden_dropout_prob"),
            KeyEffect::Read
        );
        assert_eq!(
            key_effect(Arch::Bert, "pooler_num_fc_layers"),
            KeyEffect::Inert("pooler_num_fc_layers is not read by BertForQuestionAnswering".into())
        );
        assert_eq!(key_effect(Arch::Albert, "embedding_size"), KeyEffect::Read);
        assert!(matches!(
            key_effect(Arch::Bert, "embedding_size"),
            KeyEffect::Inert(_)
        ));
        assert!(matches!(
            key_effect(Arch::Bert, "directionality"),
            KeyEffect::Inert(_)
        ));
    }

    #[test]
    fn errors_name_the_key() {
        let base = r#""model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"intermediate_size":4"#;
        let e = cfg(&format!("{{{base},\"num_attention_heads\":3}}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("num_attention_heads") && e.contains("multiple"),
            "{e}"
        );
        let e = cfg(&format!(
            "{{{base},\"num_attention_heads\":2,\"hidden_act\":\"swish\"}}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("hidden_act"), "{e}");
        let e = cfg(&format!(
            "{{{base},\"num_attention_heads\":2,\"hidden_dropout_prob\":\"x\"}}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("hidden_dropout_prob"), "{e}");
        let c = cfg(&format!(
            "{{{base},\"num_attention_heads\":2,\"pooler_num_fc_layers\":3}}"
        ))
        .unwrap();
        assert_eq!(c.inert_keys(), vec!["pooler_num_fc_layers".to_string()]);
    }
    #[test]
    fn presets_build_valid_configs() {
        let t = preset_config(Preset::Tiny, false, 500).unwrap();
        assert_eq!(
            (t.arch, t.hidden_size, t.num_hidden_layers, t.vocab_size),
            (Arch::Bert, 128, 2, 500)
        );
        let a = preset_config(Preset::AlbertTiny, false, 500).unwrap();
        assert_eq!((a.arch, a.embedding_size), (Arch::Albert, 64));
        let b = preset_config(Preset::Base, false, 21128).unwrap();
        assert_eq!(
            (b.hidden_size, b.num_hidden_layers, b.num_attention_heads),
            (768, 12, 12)
        );
    }
}

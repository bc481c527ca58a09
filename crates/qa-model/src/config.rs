//! HF `config.json` for BERT and ALBERT, and which of its keys the QA model reads.
//!
//! Every key of the file is kept (`extra`), so saving a fine-tuned checkpoint writes the
//! user's config back unchanged apart from what training changed. [`key_effect`] tells the
//! sweep runner whether varying a key can change results: bert-base-chinese's
//! `pooler_num_fc_layers` (one of the homework's ablations) is never read by
//! `BertForQuestionAnswering`, so a sweep over it measures only seed noise.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
pub use spec::model_keys::{key_effect, Arch, KeyEffect};

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

impl ModelConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let raw: Map<String, Value> =
            serde_json::from_str(&text).map_err(|e| ModelError::Config {
                path: path.to_path_buf(),
                message: format!("not a JSON object: {e}"),
            })?;
        Self::from_map(raw, &path.display().to_string())
    }

    /// Builds from a JSON object; `origin` names it in errors.
    pub fn from_map(raw: Map<String, Value>, origin: &str) -> Result<Self> {
        let err = |message: String| ModelError::Config {
            path: origin.into(),
            message,
        };
        let arch = match raw.get("model_type").and_then(Value::as_str) {
            Some("bert") => Arch::Bert,
            Some("albert") => Arch::Albert,
            Some(other) => {
                return Err(err(format!(
                    "model_type {other:?} is not supported; expected \"bert\" or \"albert\""
                )))
            }
            None => {
                let archs = raw
                    .get("architectures")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                if archs.contains("Albert") {
                    Arch::Albert
                } else if archs.contains("Bert") {
                    Arch::Bert
                } else {
                    return Err(err(
                        "key model_type is missing; expected \"bert\" or \"albert\"".into(),
                    ));
                }
            }
        };
        let usize_key = |key: &str, default: Option<usize>| -> Result<usize> {
            match raw.get(key) {
                None | Some(Value::Null) => default.ok_or_else(|| {
                    err(format!(
                        "key {key} is missing (expected a positive integer)"
                    ))
                }),
                Some(v) => v
                    .as_u64()
                    .filter(|&n| n > 0 || key == "pad_token_id")
                    .map(|n| n as usize)
                    .ok_or_else(|| {
                        err(format!("key {key}: expected a positive integer, found {v}"))
                    }),
            }
        };
        let f64_key =
            |key: &str, default: f64, range: std::ops::RangeInclusive<f64>| -> Result<f64> {
                match raw.get(key) {
                    None | Some(Value::Null) => Ok(default),
                    Some(v) => v.as_f64().filter(|x| range.contains(x)).ok_or_else(|| {
                        err(format!(
                            "key {key}: expected a number in {range:?}, found {v}"
                        ))
                    }),
                }
            };
        let hidden_act = match raw.get("hidden_act") {
            None => Activation::Gelu,
            Some(v) => v.as_str().and_then(Activation::parse).ok_or_else(|| {
                err(format!(
                    "key hidden_act: expected \"gelu\", \"gelu_new\" or \"relu\", found {v}"
                ))
            })?,
        };
        if let Some(v) = raw.get("position_embedding_type") {
            if v.as_str() != Some("absolute") {
                return Err(err(format!(
                    "key position_embedding_type: only \"absolute\" is supported, found {v}"
                )));
            }
        }
        let hidden_size = usize_key("hidden_size", None)?;
        let num_hidden_layers = usize_key("num_hidden_layers", None)?;
        let num_attention_heads = usize_key("num_attention_heads", None)?;
        if hidden_size % num_attention_heads != 0 {
            return Err(err(format!(
                "key num_attention_heads: hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
            )));
        }
        let (embedding_size, num_hidden_groups, inner_group_num) = match arch {
            Arch::Bert => (hidden_size, 1, 1),
            Arch::Albert => (
                usize_key("embedding_size", Some(128))?,
                usize_key("num_hidden_groups", Some(1))?,
                usize_key("inner_group_num", Some(1))?,
            ),
        };
        if num_hidden_groups > num_hidden_layers {
            return Err(err(format!(
                "key num_hidden_groups: {num_hidden_groups} groups for {num_hidden_layers} layers"
            )));
        }
        let vocab_size = usize_key("vocab_size", None)?;
        let pad_token_id = usize_key("pad_token_id", Some(0))?;
        if pad_token_id >= vocab_size {
            return Err(err(format!(
                "key pad_token_id: {pad_token_id} is not below vocab_size {vocab_size}"
            )));
        }
        Ok(Self {
            arch,
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size: usize_key("intermediate_size", None)?,
            hidden_act,
            hidden_dropout_prob: f64_key("hidden_dropout_prob", 0.1, 0.0..=0.99)?,
            attention_probs_dropout_prob: f64_key("attention_probs_dropout_prob", 0.1, 0.0..=0.99)?,
            max_position_embeddings: usize_key("max_position_embeddings", Some(512))?,
            type_vocab_size: usize_key("type_vocab_size", Some(2))?,
            layer_norm_eps: f64_key("layer_norm_eps", 1e-12, 0.0..=1.0)?,
            initializer_range: f64_key("initializer_range", 0.02, 0.0..=10.0)?,
            pad_token_id,
            embedding_size,
            num_hidden_groups,
            inner_group_num,
            raw,
        })
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
}

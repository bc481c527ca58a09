//! Which keys of a HF `config.json` the BERT/ALBERT QA models read.
//!
//! Burn-free, so the sweep runner can use it: bert-base-chinese's `pooler_num_fc_layers`
//! (one of the homework's ablations) is never read by `BertForQuestionAnswering`, so two
//! trials that differ only in it compute the same thing and the runner runs one of them.
//! The model code (`qa-model`) reads exactly the keys listed here; its parity tests against
//! HF transformers would fail if it read others.

use serde::{Deserialize, Serialize};

/// Which architecture a config describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Bert,
    Albert,
}

impl Arch {
    /// HF class name of the QA model.
    pub fn qa_class(self) -> &'static str {
        match self {
            Arch::Bert => "BertForQuestionAnswering",
            Arch::Albert => "AlbertForQuestionAnswering",
        }
    }
    /// The prefix of the base model's weights in HF checkpoints.
    pub fn prefix(self) -> &'static str {
        match self {
            Arch::Bert => "bert",
            Arch::Albert => "albert",
        }
    }
}

/// The keys the QA models read, per architecture. Everything else in a config is inert.
pub const COMMON_KEYS: &[&str] = &[
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "initializer_range",
    "pad_token_id",
    "model_type",
    "position_embedding_type",
];
/// Keys only ALBERT reads.
pub const ALBERT_KEYS: &[&str] = &["embedding_size", "num_hidden_groups", "inner_group_num"];

/// Whether a config key can change what a QA model computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEffect {
    Read,
    /// Not read by the architecture; the string says so in words.
    Inert(String),
}

/// Does `key` of `config.json` affect `arch`'s QA model (forward pass, initialisation or
/// training)? Used by the runner to detect sweeps over inert hyperparameters.
pub fn key_effect(arch: Arch, key: &str) -> KeyEffect {
    let read = COMMON_KEYS.contains(&key) || (arch == Arch::Albert && ALBERT_KEYS.contains(&key));
    if read {
        KeyEffect::Read
    } else {
        KeyEffect::Inert(format!("{key} is not read by {}", arch.qa_class()))
    }
}

impl Arch {
    /// The architecture named by a config's `model_type`.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Self::Bert),
            "albert" => Some(Self::Albert),
            _ => None,
        }
    }
}

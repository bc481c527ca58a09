//! The HF parameter names of the BERT and ALBERT QA models, written once. Building a model
//! from a checkpoint (`QaModel::build`), exporting it (`QaModel::export`) and naming
//! optimizer state (`ParamNames`) all read this table, so a name cannot differ between them.
//!
//! The names are the module paths of transformers v5.24.0 (the version the parity tests run
//! against):
//! - BERT, [modeling_bert.py](https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/bert/modeling_bert.py):
//!   `BertEmbeddings` (`embeddings.{word,position,token_type}_embeddings`,
//!   `embeddings.LayerNorm`), per `BertLayer` `encoder.layer.{i}.`: `BertSelfAttention`
//!   (`attention.self.{query,key,value}`), `BertSelfOutput` (`attention.output.dense`,
//!   `attention.output.LayerNorm`), `BertIntermediate` (`intermediate.dense`), `BertOutput`
//!   (`output.dense`, `output.LayerNorm`);
//! - ALBERT, [modeling_albert.py](https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/albert/modeling_albert.py):
//!   `AlbertEmbeddings` (as BERT's), `AlbertTransformer.embedding_hidden_mapping_in`, per
//!   `AlbertLayer` `encoder.albert_layer_groups.{g}.albert_layers.{j}.`: `AlbertAttention`
//!   (`attention.{query,key,value,dense,LayerNorm}`), `ffn`, `ffn_output`,
//!   `full_layer_layer_norm`;
//! - both: `qa_outputs` of `{Bert,Albert}ForQuestionAnswering`, outside the base model's
//!   prefix (`bert.`/`albert.`).

use spec::model_keys::Arch;

use crate::config::ModelConfig;

/// Where a parameter module lives in a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In the base model, under `bert.`/`albert.` (checkpoints of the bare model omit it).
    Base,
    /// In the task head (`qa_outputs`), never prefixed.
    Head,
}

/// The HF name of one parameter-holding module (its parameters are `<name>.weight`,
/// `<name>.bias`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfName {
    pub scope: Scope,
    /// The module path inside its scope, e.g. `encoder.layer.3.attention.self.query`.
    pub path: String,
}

impl HfName {
    fn base(path: impl Into<String>) -> Self {
        HfName {
            scope: Scope::Base,
            path: path.into(),
        }
    }

    /// The full name as a saved `…ForQuestionAnswering` model has it
    /// (`bert.encoder.layer.3.attention.self.query`, `qa_outputs`).
    pub fn full(&self, arch: Arch) -> String {
        match self.scope {
            Scope::Base => format!("{}.{}", arch.prefix(), self.path),
            Scope::Head => self.path.clone(),
        }
    }
}

/// One transformer layer's modules, by what they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerNames {
    pub query: HfName,
    pub key: HfName,
    pub value: HfName,
    /// The attention output projection.
    pub attention_dense: HfName,
    pub attention_layer_norm: HfName,
    /// The feed-forward up projection (hidden → intermediate).
    pub ffn: HfName,
    /// The feed-forward down projection (intermediate → hidden).
    pub ffn_output: HfName,
    pub output_layer_norm: HfName,
}

impl LayerNames {
    /// The names of stored layer `index`: BERT's `encoder.layer.{index}`, or ALBERT's
    /// layer `index % inner_group_num` of group `index / inner_group_num`.
    pub fn new(arch: Arch, index: usize, inner_group_num: usize) -> Self {
        let (prefix, names) = match arch {
            Arch::Bert => (
                format!("encoder.layer.{index}."),
                [
                    "attention.self.query",
                    "attention.self.key",
                    "attention.self.value",
                    "attention.output.dense",
                    "attention.output.LayerNorm",
                    "intermediate.dense",
                    "output.dense",
                    "output.LayerNorm",
                ],
            ),
            Arch::Albert => {
                let inner = inner_group_num.max(1);
                (
                    format!(
                        "encoder.albert_layer_groups.{}.albert_layers.{}.",
                        index / inner,
                        index % inner
                    ),
                    [
                        "attention.query",
                        "attention.key",
                        "attention.value",
                        "attention.dense",
                        "attention.LayerNorm",
                        "ffn",
                        "ffn_output",
                        "full_layer_layer_norm",
                    ],
                )
            }
        };
        let [query, key, value, attention_dense, attention_layer_norm, ffn, ffn_output, output_layer_norm] =
            names.map(|n| HfName::base(format!("{prefix}{n}")));
        LayerNames {
            query,
            key,
            value,
            attention_dense,
            attention_layer_norm,
            ffn,
            ffn_output,
            output_layer_norm,
        }
    }
}

/// Every module name of a QA model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelNames {
    pub arch: Arch,
    pub word_embeddings: HfName,
    pub position_embeddings: HfName,
    pub token_type_embeddings: HfName,
    pub embeddings_layer_norm: HfName,
    /// ALBERT only: embedding_size → hidden_size.
    pub embedding_hidden_mapping_in: Option<HfName>,
    /// One per stored layer (ALBERT stores `num_hidden_groups × inner_group_num`).
    pub layers: Vec<LayerNames>,
    pub qa_outputs: HfName,
}

impl ModelNames {
    pub fn new(config: &ModelConfig) -> Self {
        let arch = config.arch;
        let stored_layers = match arch {
            Arch::Bert => config.num_hidden_layers,
            Arch::Albert => config.num_hidden_groups * config.inner_group_num,
        };
        ModelNames {
            arch,
            word_embeddings: HfName::base("embeddings.word_embeddings"),
            position_embeddings: HfName::base("embeddings.position_embeddings"),
            token_type_embeddings: HfName::base("embeddings.token_type_embeddings"),
            embeddings_layer_norm: HfName::base("embeddings.LayerNorm"),
            embedding_hidden_mapping_in: (arch == Arch::Albert)
                .then(|| HfName::base("encoder.embedding_hidden_mapping_in")),
            layers: (0..stored_layers)
                .map(|i| LayerNames::new(arch, i, config.inner_group_num))
                .collect(),
            qa_outputs: HfName {
                scope: Scope::Head,
                path: "qa_outputs".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_hfs() {
        let bert = LayerNames::new(Arch::Bert, 3, 1);
        assert_eq!(
            bert.query.full(Arch::Bert),
            "bert.encoder.layer.3.attention.self.query"
        );
        assert_eq!(
            bert.output_layer_norm.full(Arch::Bert),
            "bert.encoder.layer.3.output.LayerNorm"
        );
        let albert = LayerNames::new(Arch::Albert, 3, 2);
        assert_eq!(
            albert.ffn_output.full(Arch::Albert),
            "albert.encoder.albert_layer_groups.1.albert_layers.1.ffn_output"
        );
        let head = HfName {
            scope: Scope::Head,
            path: "qa_outputs".into(),
        };
        assert_eq!(head.full(Arch::Albert), "qa_outputs");
    }
}

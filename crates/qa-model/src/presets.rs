//! Model presets for runs without pretrained weights: random init (HF's), any vocab.

use serde_json::{json, Map, Value};
use spec::Preset;

use crate::config::ModelConfig;
use crate::error::Result;

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
    use crate::config::Arch;

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

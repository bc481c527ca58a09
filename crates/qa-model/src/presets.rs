//! Model presets for runs without pretrained weights: random init (HF's), any vocab. The
//! table lives in `spec::model_config` (the planner checks preset overrides without burn).

pub use spec::model_config::preset_config;

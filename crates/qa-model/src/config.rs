//! HF `config.json` for BERT and ALBERT, and which of its keys the QA model reads. Both
//! live in the burn-free `spec` crate (`spec::model_config`, `spec::model_keys`), so the
//! planner runs the same checks a trial makes; this module re-exports them for the model.

pub use spec::model_config::{Activation, ModelConfig};
pub use spec::model_keys::{key_effect, Arch, KeyEffect};

//! Pure domain types of qa-sweep, shared by the trainer, the runner and the report:
//! today the trial configuration ([`trial::TrialConfig`]), the schema the sweep runner varies.

pub mod trial;

pub use trial::{DataSpec, ModelSpec, Precision, Preset, SpecError, TrainSpec, TrialConfig};

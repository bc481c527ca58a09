//! Pure domain types of qa-sweep, shared by the trainer, the runner and the report: the trial
//! configuration ([`trial::TrialConfig`]), studies ([`study::Study`]), which model keys
//! matter ([`model_keys`]), and the trial protocol between runner and trial process
//! ([`protocol`]).

pub mod atomic;
pub mod device;
pub mod error;
pub mod metric;
pub mod model_config;
pub mod model_keys;
pub mod program;
pub mod protocol;
pub mod search;
pub mod seeds;
pub mod slurm;
pub mod study;
mod suggest;
pub mod trial;

pub use device::Device;
pub use search::{Direction, Domain, Search, SearchMethod};
pub use study::{Claim, ClaimMetric, Expect, PlannedTrial, Study, BASELINE, SEARCH};
pub use trial::{DataSpec, Half, ModelSpec, Precision, Preset, SpecError, TrainSpec, TrialConfig};

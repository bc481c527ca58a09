//! The model layer of qa-sweep: BERT and ALBERT extractive-QA models in burn that load HF
//! checkpoints, match HF numerically, train with HF Trainer semantics and save HF
//! checkpoints back.
//!
//! - [`config`]: HF `config.json`, and which keys the QA model reads ([`config::key_effect`]).
//! - [`weights`]: safetensors / sharded / `pytorch_model.bin` in, safetensors out.
//! - [`hf_names`]: the HF parameter names, written once (build, export, optimizer state).
//! - [`nn`], [`layer_norm`], [`model`]: the network, and the QA loss ([`model::qa_loss`]).
//! - [`amp`]: mixed precision's type rules and loss scaling.
//! - [`checkpoint`]: model directories (config + weights + tokenizer) in and out.
//! - [`fused`]: fused CPU ops (attention softmax, dropout, LayerNorm, GELU, AdamW) with
//!   their own backward on flex; other backends take the decomposition.
//! - [`train`], [`optim`], [`eval`]: HF Trainer semantics, AdamW, the official metric.
//! - [`presets`]: random-init models for runs without pretrained weights.
//! - `resume`: train_state/ for resuming killed trials.
//! - [`backend`]: the compiled-in backends (devices are `spec::Device`).

pub mod amp;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod fused;
pub mod hf_names;
pub mod layer_norm;
pub mod model;
pub mod nn;
pub mod optim;
pub mod presets;
mod resume;
pub mod step;
pub mod train;
pub mod weights;

pub use error::{ModelError, Result};

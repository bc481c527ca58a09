//! qa-model against HF transformers: logits of tiny random checkpoints
//! (tools/make_model_fixtures.py) and checkpoint round trips.

// Test helpers may unwrap: a panic here is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fuzz;
mod parity;
mod run_qa_decoding;
mod training;
#[cfg(feature = "wgpu")]
mod wgpu;

//! qa-data against real data (`testdata/`, or `$QA_SWEEP_SHARED_DATA`: DRCD dev/test, CMRC2018 dev/trial, the
//! bert-base-chinese vocab) and against references recorded from Python: HF's fast
//! tokenizer with run_qa's feature logic (`tools/hf_features.py`) and the official metric's
//! logic (`tools/cmrc2018_metric.py`).

// Test helpers may unwrap: a panic here is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod decode_props;
mod errors;
mod fuzz;
mod hf_parity;
mod metric_parity;
mod real_data;
mod saved_tokenizer_state;

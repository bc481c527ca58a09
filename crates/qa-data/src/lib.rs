//! The data layer of qa-sweep: everything between a SQuAD-format JSON file and the tensors a
//! model sees, and back from logits to answers and official scores. No burn here, so it
//! builds and tests fast.
//!
//! - [`squad`]: load and validate DRCD/CMRC2018 (SQuAD-format) files, repair answer starts.
//! - [`tokenizer`]: BERT WordPiece from a model directory (`tokenizer.json` or `vocab.txt`).
//! - [`features`]: HF `run_qa`-compatible windows (train labels, eval offsets).
//! - [`decode`]: n-best span decoding over all windows of a question.
//! - [`metric`]: the official CMRC2018/DRCD EM and F1.
//! - [`synth`]: the deterministic synthetic Traditional-Chinese QA set (the demo dataset).
//! - [`stats`]: what `sweep data stats` prints.
//! - [`vocab`]: character vocabularies for models trained from scratch.

pub mod decode;
pub mod error;
pub mod features;
pub mod metric;
pub mod rng;
pub mod squad;
pub mod stats;
pub mod synth;
pub mod tokenizer;
pub mod treebank;
pub mod vocab;

pub use error::{DataError, Result};

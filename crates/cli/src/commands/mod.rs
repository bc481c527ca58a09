//! One module per subcommand.

pub mod bench_train;
pub mod check_logits;
pub mod data;
pub mod device;
pub mod predict;
pub mod score;
pub mod train;

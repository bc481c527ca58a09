//! One module per subcommand.

pub mod check_logits;
pub mod data;
pub mod device;
pub mod predict;
pub mod score;
pub mod train;

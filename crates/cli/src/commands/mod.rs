//! One module per subcommand.

pub mod data;
pub mod device;
pub mod predict;
pub mod score;
pub mod train;

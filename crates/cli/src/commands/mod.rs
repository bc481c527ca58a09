//! One module per subcommand.

pub mod bench_train;
pub mod cancel;
pub mod check_logits;
pub mod data;
pub mod device;
pub mod export;
pub mod launch;
pub mod plan;
pub mod predict;
pub mod report;
pub mod run;
pub mod score;
pub mod serve;
pub mod status;
pub mod train;
pub mod trial;

//! One module per subcommand.

pub mod completion;
pub mod diagnose;
pub mod fix;
pub mod status;

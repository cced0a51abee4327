//! One module per subcommand.

pub mod completion;
pub mod demo;
pub mod diagnose;
pub mod fix;
pub mod objects;
pub mod override_image;
pub mod policy;
pub mod status;
pub mod uninstall;
pub mod upgrade;
pub mod upgrade_check;
pub mod values_edit;

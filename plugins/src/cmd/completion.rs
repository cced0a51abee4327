//! `kubectl supsvc completion <shell>`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs};

pub fn run(args: &CompletionArgs, bin_name: &str) {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, bin_name, &mut std::io::stdout());
}

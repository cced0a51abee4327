//! `kubectl supsvc completion <shell>`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs};

/// The executable shells complete (kubectl itself completes `kubectl supsvc` through it).
const EXECUTABLE: &str = "kubectl-supsvc";

/// Writes the completion script for `shell`.
pub fn generate(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, EXECUTABLE, out);
}

pub fn run(args: &CompletionArgs) {
    // Rendered first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    generate(args.shell, &mut script);
    out!("{}", String::from_utf8_lossy(&script));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_shell_gets_a_script() {
        for shell in clap_complete::Shell::value_variants() {
            let mut out = Vec::new();
            generate(*shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("kubectl-supsvc"), "{shell}");
            assert!(text.contains("fix"), "{shell}");
        }
    }
}

//! The `abcast` command-line program.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    // The library's records (target `abcast`) on stderr: warnings, or the level of
    // `ABCAST_LOG` (0 to 3); `abcast node -q / -v` changes it.
    let verbosity = std::env::var("ABCAST_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<u8>().ok())
        .unwrap_or(1);
    abcast::ffi::install_stderr_logger(verbosity);
    cli::run(cli::Cli::parse())
}

//! The `abcast` command-line program: subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod node;
mod signal;

/// Fault-tolerant atomic broadcast over TCP.
#[derive(Debug, Parser)]
#[command(name = "abcast", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one member of a group: each stdin line is broadcast; each delivered message
    /// is printed to stdout as `SEQ ORIGIN PAYLOAD`.
    Node(node::NodeArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Node(args) => node::run(args),
    }
}

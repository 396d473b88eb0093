//! The `abcast` command-line program: subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bench;
pub mod demo;
pub mod node;
mod options;
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
    /// Watch a group on loopback form, order messages, lose its relayer to SIGKILL,
    /// fail over, and verify that every survivor delivered the identical sequence.
    Demo(demo::DemoArgs),
    /// Measure a group on loopback (throughput, latency, fail-over, memory) beside
    /// the raw-TCP limit of the same traffic.
    Bench(bench::BenchArgs),
    /// One member of a `bench` or `demo` group (started by them).
    #[command(hide = true)]
    BenchMember(bench::member::MemberArgs),
    /// The raw-TCP baseline's forwarding process (started by `bench`).
    #[command(hide = true)]
    BenchForwarder(bench::forwarder::ForwarderArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Node(args) => node::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchMember(args) => bench::member::run(args),
        Command::BenchForwarder(args) => bench::forwarder::run(args),
    }
}

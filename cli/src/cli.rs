//! The `abcast` command-line program: subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bench;
pub mod demo;
pub mod node;
mod node_state;
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
    /// Write a new random group key to a new file PATH (mode 0600; an existing file
    /// is never overwritten). Give every member a copy, with `--key-file PATH`.
    Keygen {
        /// Where to write the key file.
        path: std::path::PathBuf,
    },
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
        Command::Keygen { path } => match abcast::GroupKey::write_new_file(&path) {
            Ok(key) => {
                eprintln!(
                    "wrote a new group key to {} (fingerprint {})",
                    path.display(),
                    key.fingerprint()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("abcast keygen: {e}");
                ExitCode::from(1)
            }
        },
        Command::BenchMember(args) => bench::member::run(args),
        Command::BenchForwarder(args) => bench::forwarder::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The ids of `sub`'s options under the help heading `heading` (None: the first).
    fn under(sub: &str, heading: Option<&str>) -> Vec<String> {
        let cli = Cli::command();
        let cmd = cli.find_subcommand(sub).expect("a subcommand");
        cmd.get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_help_heading() == heading)
            .map(|a| a.get_id().to_string())
            .collect()
    }

    #[test]
    fn tuning_options_are_under_the_advanced_heading() {
        let runtime = [
            "send_window",
            "relay_window",
            "delivery_queue",
            "relay_workers",
            "io_coalesce_us",
            "batch_scheduling",
            "app_batch_scheduling",
            "realtime_priority",
            "app_realtime_priority",
        ];
        for sub in ["node", "bench"] {
            let advanced = under(sub, Some("Advanced"));
            for id in runtime {
                assert!(advanced.iter().any(|a| a == id), "{sub}: --{id}");
            }
        }
        assert!(under("bench", Some("Advanced")).contains(&"pin_members".to_string()));
        assert_eq!(
            under("node", None),
            [
                "id",
                "members",
                "buffering",
                "quorum",
                "failure_timeout_ms",
                "startup_timeout_ms",
                "join",
                "state",
                "rejoin",
                "key_file",
                "auth_only",
                "delivery",
                "verbose",
                "quiet"
            ]
        );
        assert_eq!(
            under("demo", None),
            ["nodes", "buffering", "duration", "quick"]
        );
        // The first heading is the one a user needs first.
        let help = Cli::command()
            .find_subcommand_mut("node")
            .expect("node")
            .render_help()
            .to_string();
        let (first, advanced) = (help.find("Options:"), help.find("Advanced:"));
        assert!(first.is_some() && first < advanced, "{help}");
    }
}

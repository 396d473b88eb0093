//! `abcast node`: one member as a process. Stdin lines are broadcast; deliveries go
//! to stdout as `SEQ ORIGIN PAYLOAD`; membership and relayer events go to stderr.

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

use abcast::{Buffering, Config, Error, Event, Node};

/// Options of `abcast node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// This member's id (members are ranked by id: the lowest is the first relayer).
    #[arg(long)]
    pub id: u32,
    /// Every member: `ID=HOST:PORT,ID=HOST:PORT,...` (this one included).
    #[arg(long)]
    pub members: String,
    /// Buffering strategy.
    #[arg(long, value_enum, default_value_t = BufferingArg::Replicated)]
    pub buffering: BufferingArg,
    /// Heartbeat interval on idle links, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub heartbeat_ms: u64,
    /// A peer silent this long is suspected, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub failure_timeout_ms: u64,
    /// How long to wait for every member to connect, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub startup_timeout_ms: u64,
    /// Join a group that is already running (a late start, or a restart after a
    /// crash): deliver from this member's own *process joined* on.
    #[arg(long)]
    pub join: bool,
    /// Runtime settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// More log lines on stderr (-v: membership and phases; -vv: every message).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No log lines (events are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--buffering` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BufferingArg {
    /// Every member keeps relays until they are stable (tolerates more).
    Replicated,
    /// Members keep only their own unrelayed messages and the last round (cheaper).
    Distributed,
}

/// Runtime settings the `node`, `bench` and `bench-member` subcommands share; each is
/// the runtime's default when absent.
#[derive(Clone, Copy, Debug, Default, Args)]
pub struct RuntimeArgs {
    /// Send window: own broadcasts not yet delivered (messages, per member).
    #[arg(long)]
    pub send_window: Option<usize>,
    /// Relay window: how far (in messages) the relayer may sequence beyond what
    /// every member delivered.
    #[arg(long)]
    pub relay_window: Option<u64>,
    /// Delivery queue: events waiting for the application (per member).
    #[arg(long)]
    pub delivery_queue: Option<usize>,
    /// Relay worker threads (per member).
    #[arg(long)]
    pub relay_workers: Option<usize>,
    /// The busy select thread goes back to its sockets at most once per this many
    /// microseconds (0, the runtime's default: at once).
    #[arg(long)]
    pub io_coalesce_us: Option<u64>,
    /// Run the runtime's threads under SCHED_BATCH (Linux; the runtime's default is
    /// true): a runtime thread that wakes up does not preempt a running one.
    #[arg(long)]
    pub batch_scheduling: Option<bool>,
    /// Run this program's own threads that broadcast and receive under SCHED_BATCH
    /// too (Linux), as `abcast::runtime::set_thread_batch_scheduling` does.
    #[arg(long)]
    pub app_batch_scheduling: bool,
    /// Run the runtime's threads under SCHED_FIFO at this real-time priority, 1 to
    /// 99 (Linux; needs CAP_SYS_NICE or RLIMIT_RTPRIO): they then preempt other
    /// programs' threads when they wake up. Overrides --batch-scheduling.
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub realtime_priority: Option<u8>,
    /// Run this program's own threads that broadcast and receive under SCHED_FIFO at
    /// this priority too, as `abcast::runtime::set_thread_realtime_priority` does.
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub app_realtime_priority: Option<u8>,
}

impl RuntimeArgs {
    /// `config` with the settings given.
    pub fn apply(&self, mut config: Config) -> Config {
        if let Some(w) = self.send_window {
            config = config.with_send_window(w);
        }
        if let Some(w) = self.relay_window {
            config = config.with_relay_window(w);
        }
        if let Some(q) = self.delivery_queue {
            config = config.with_delivery_queue(q);
        }
        if let Some(w) = self.relay_workers {
            config = config.with_relay_workers(w);
        }
        if let Some(us) = self.io_coalesce_us {
            config = config.with_io_coalesce(Duration::from_micros(us));
        }
        if let Some(on) = self.batch_scheduling {
            config = config.with_batch_scheduling(on);
        }
        if let Some(p) = self.realtime_priority {
            config = config.with_realtime_priority(Some(p));
        }
        config
    }

    /// Puts the calling thread (one of the program's own, that broadcasts or
    /// receives) under SCHED_FIFO if `--app-realtime-priority` was given, else under
    /// SCHED_BATCH if `--app-batch-scheduling` was.
    pub fn apply_to_app_thread(&self) -> std::io::Result<()> {
        if let Some(p) = self.app_realtime_priority {
            abcast::runtime::set_thread_realtime_priority(p)?;
        } else if self.app_batch_scheduling {
            abcast::runtime::set_thread_batch_scheduling()?;
        }
        Ok(())
    }

    /// The option [`RuntimeArgs::apply_to_app_thread`] applies, to name it in an
    /// error.
    pub fn app_scheduling_option(&self) -> &'static str {
        if self.app_realtime_priority.is_some() {
            "--app-realtime-priority"
        } else {
            "--app-batch-scheduling"
        }
    }

    /// The settings given, as command-line arguments.
    pub fn push_args(&self, v: &mut Vec<String>) {
        let given = [
            ("--send-window", self.send_window.map(|w| w as u64)),
            ("--relay-window", self.relay_window),
            ("--delivery-queue", self.delivery_queue.map(|q| q as u64)),
            ("--relay-workers", self.relay_workers.map(|w| w as u64)),
            ("--io-coalesce-us", self.io_coalesce_us),
            ("--realtime-priority", self.realtime_priority.map(u64::from)),
            (
                "--app-realtime-priority",
                self.app_realtime_priority.map(u64::from),
            ),
        ];
        for (flag, value) in given {
            if let Some(value) = value {
                v.push(flag.into());
                v.push(value.to_string());
            }
        }
        if let Some(on) = self.batch_scheduling {
            v.push("--batch-scheduling".into());
            v.push(on.to_string());
        }
        if self.app_batch_scheduling {
            v.push("--app-batch-scheduling".into());
        }
    }
}

/// Runs a member until SIGTERM/SIGINT (exit 0), exclusion (exit 2) or an error (1).
pub fn run(args: NodeArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("abcast node: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_inner(args: NodeArgs) -> Result<ExitCode, Error> {
    if args.quiet {
        abcast::runtime::set_verbosity(0);
    } else if args.verbose > 0 {
        abcast::runtime::set_verbosity(1 + args.verbose.min(2));
    }
    let members = Config::parse_members(&args.members)?;
    let mut config = Config::new(args.id, members)
        .with_buffering(match args.buffering {
            BufferingArg::Replicated => Buffering::Replicated,
            BufferingArg::Distributed => Buffering::Distributed,
        })
        .with_heartbeat_interval(Duration::from_millis(args.heartbeat_ms))
        .with_failure_timeout(Duration::from_millis(args.failure_timeout_ms))
        .with_startup_timeout(Duration::from_millis(args.startup_timeout_ms))
        .with_join(args.join);
    config = args.runtime.apply(config);
    // Before starting, so that a signal during start-up is not lost.
    let mut signals = super::signal::install().map_err(|e| Error::Io {
        context: "install signal handlers".into(),
        source: e,
    })?;
    let node = Arc::new(Node::start(config)?);
    // This thread receives; the threads it starts from here on inherit the policy.
    args.runtime.apply_to_app_thread().map_err(|e| Error::Io {
        context: args.runtime.app_scheduling_option().into(),
        source: e,
    })?;
    if !node.failed_at_start().is_empty() {
        eprintln!(
            "event startup not-connected={:?} (they count as failed)",
            node.failed_at_start()
        );
    }

    // SIGTERM / SIGINT: leave gracefully; the receive loop then ends with Stopped.
    {
        let node = node.clone();
        std::thread::Builder::new()
            .name("abcast-signals".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                if matches!(signals.read(&mut byte), Ok(1)) {
                    eprintln!("event signal: leaving the group");
                    let _ = node.leave();
                }
            })
            .map_err(|e| Error::Io {
                context: "spawn the signal thread".into(),
                source: e,
            })?;
    }

    // Stdin: one broadcast per line (without its newline). At EOF, keep delivering.
    {
        let node = node.clone();
        std::thread::Builder::new()
            .name("abcast-stdin".into())
            .spawn(move || {
                let stdin = io::stdin();
                let mut input = stdin.lock();
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match input.read_until(b'\n', &mut line) {
                        Ok(0) => break,
                        Ok(_) => {
                            if line.last() == Some(&b'\n') {
                                line.pop();
                            }
                            match node.broadcast(&line) {
                                Ok(_) => {}
                                Err(Error::PayloadTooLarge { len, max }) => {
                                    eprintln!(
                                        "abcast node: line of {len} bytes skipped (max {max})"
                                    )
                                }
                                Err(_) => return,
                            }
                        }
                        Err(e) => {
                            eprintln!("abcast node: reading stdin: {e}");
                            break;
                        }
                    }
                }
            })
            .map_err(|e| Error::Io {
                context: "spawn the stdin thread".into(),
                source: e,
            })?;
    }

    // Deliveries: one line each on stdout, flushed whenever none is waiting.
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    loop {
        let event = match node.try_recv() {
            Ok(Some(e)) => Ok(e),
            Ok(None) => {
                if out.flush().is_err() {
                    let _ = node.leave();
                    return Ok(ExitCode::from(1));
                }
                node.recv()
            }
            Err(e) => Err(e),
        };
        match event {
            Ok(Event::Deliver {
                seq,
                origin,
                payload,
            }) => {
                let ok = write!(out, "{seq} {origin} ")
                    .and_then(|_| out.write_all(&payload))
                    .and_then(|_| out.write_all(b"\n"));
                if ok.is_err() {
                    let _ = node.leave();
                    return Ok(ExitCode::from(1));
                }
            }
            Ok(Event::MemberLeft { seq, member }) => {
                eprintln!("event seq={seq} process-left member={member}")
            }
            Ok(Event::MemberJoined { seq, member }) => {
                eprintln!("event seq={seq} process-joined member={member}")
            }
            Ok(Event::RelayerChanged {
                seq,
                epoch,
                relayer,
            }) => eprintln!("event seq={seq} relayer-changed epoch={epoch} relayer={relayer}"),
            Ok(Event::Excluded) => eprintln!("event excluded"),
            Err(Error::Stopped) => {
                let _ = out.flush();
                return Ok(ExitCode::SUCCESS);
            }
            Err(Error::Excluded) => {
                let _ = out.flush();
                return Ok(ExitCode::from(2));
            }
            Err(e) => {
                let _ = out.flush();
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        runtime: RuntimeArgs,
    }

    fn parse(args: &[&str]) -> RuntimeArgs {
        Wrap::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .expect("parses")
            .runtime
    }

    #[test]
    fn realtime_priorities_out_of_range_are_refused_by_the_parser() {
        for flag in ["--realtime-priority", "--app-realtime-priority"] {
            for bad in ["0", "100", "-1", "x"] {
                let r = Wrap::try_parse_from(["x", flag, bad]);
                assert!(r.is_err(), "{flag} {bad} accepted");
            }
            assert!(Wrap::try_parse_from(["x", flag, "99"]).is_ok());
        }
        // An error applying the application threads' policy names the option in use.
        assert_eq!(parse(&[]).app_scheduling_option(), "--app-batch-scheduling");
        assert_eq!(
            parse(&["--app-realtime-priority", "1"]).app_scheduling_option(),
            "--app-realtime-priority"
        );
    }

    #[test]
    fn runtime_arguments_reach_the_configuration_and_survive_a_round_trip() {
        let given = [
            "--send-window",
            "77",
            "--relay-window",
            "333",
            "--delivery-queue",
            "555",
            "--relay-workers",
            "3",
            "--io-coalesce-us",
            "40",
            "--batch-scheduling",
            "false",
            "--realtime-priority",
            "7",
            "--app-realtime-priority",
            "5",
        ];
        let args = parse(&given);
        let members = Config::parse_members("1=127.0.0.1:1,2=127.0.0.1:2").unwrap();
        let config = args.apply(Config::new(1, members.clone()));
        assert_eq!(config.send_window_msgs, 77);
        assert_eq!(config.relay_window_msgs, 333);
        assert_eq!(config.delivery_queue_msgs, 555);
        assert_eq!(config.relay_workers, 3);
        assert_eq!(config.io_coalesce, Duration::from_micros(40));
        assert!(!config.batch_scheduling);
        assert_eq!(config.realtime_priority, Some(7));
        assert_eq!(args.app_realtime_priority, Some(5));

        // What `bench` passes on to its members is what it was given.
        let mut v = Vec::new();
        args.push_args(&mut v);
        let again = parse(&v.iter().map(String::as_str).collect::<Vec<_>>());
        let config2 = again.apply(Config::new(1, members.clone()));
        assert_eq!(format!("{config:?}"), format!("{config2:?}"));
        assert_eq!(again.app_realtime_priority, Some(5));

        // Absent arguments leave the runtime's defaults.
        let none = parse(&[]).apply(Config::new(1, members.clone()));
        assert_eq!(
            format!("{none:?}"),
            format!("{:?}", Config::new(1, members))
        );
    }

    #[test]
    fn a_zero_window_is_refused_by_the_configuration() {
        let members = Config::parse_members("1=127.0.0.1:1,2=127.0.0.1:2").unwrap();
        for flag in ["--relay-window", "--delivery-queue", "--send-window"] {
            let config = parse(&[flag, "0"]).apply(Config::new(1, members.clone()));
            assert!(config.validate().is_err(), "{flag} 0 accepted");
        }
    }
}

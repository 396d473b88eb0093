//! Options that several subcommands share: the buffering strategy, and the runtime's
//! tuning settings (listed under "Advanced" in the help).

use std::time::Duration;

use clap::{Args, ValueEnum};

use abcast::{Buffering, Config, GroupKey, Protection, Quorum};

/// `--buffering` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BufferingArg {
    /// Every member keeps relays until they are stable (tolerates more).
    Replicated,
    /// Members keep only their own unrelayed messages and the last round (cheaper).
    Distributed,
}

impl BufferingArg {
    /// The value's name on the command line, in the JSON report and in messages.
    pub fn name(self) -> &'static str {
        match self {
            BufferingArg::Replicated => "replicated",
            BufferingArg::Distributed => "distributed",
        }
    }
}

impl From<BufferingArg> for Buffering {
    fn from(b: BufferingArg) -> Buffering {
        match b {
            BufferingArg::Replicated => Buffering::Replicated,
            BufferingArg::Distributed => Buffering::Distributed,
        }
    }
}

/// `--delivery` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeliveryArg {
    /// Deliver as soon as this member holds a message (a member that crashes may
    /// have delivered a last few messages nobody else does).
    Agreed,
    /// Deliver once every member of the view holds it: whatever one member
    /// delivered, every survivor delivers (about one more round trip; replicated
    /// buffering only).
    Safe,
}

impl From<DeliveryArg> for abcast::Delivery {
    fn from(d: DeliveryArg) -> abcast::Delivery {
        match d {
            DeliveryArg::Agreed => abcast::Delivery::Agreed,
            DeliveryArg::Safe => abcast::Delivery::Safe,
        }
    }
}

/// `--quorum` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QuorumArg {
    /// A member leaves the view on evidence that it crashed, or when a majority
    /// agrees it is unreachable; a member without a majority stops (safe under
    /// partitions and pauses).
    Majority,
    /// Every suspicion is final (fastest reaction; a partition or a long pause
    /// splits the group into groups that each deliver their own order): only for a
    /// single host or a perfect failure detector.
    None,
}

impl From<QuorumArg> for Quorum {
    fn from(q: QuorumArg) -> Quorum {
        match q {
            QuorumArg::Majority => Quorum::Majority,
            QuorumArg::None => Quorum::None,
        }
    }
}

/// The group key options the `node` and `bench` subcommands share.
#[derive(Clone, Debug, Default, Args)]
pub struct KeyArgs {
    /// The group's key file (made by `abcast keygen`): only members that hold the
    /// same key can connect, and every frame is sealed. Without it, membership is
    /// unauthenticated.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<std::path::PathBuf>,
    /// With --key-file: authenticate frames without encrypting them (every member
    /// must choose the same).
    #[arg(long, requires = "key_file")]
    pub auth_only: bool,
}

impl KeyArgs {
    /// `config` with the key read from the key file, if one was given.
    pub fn apply(&self, mut config: Config) -> Result<Config, abcast::Error> {
        if let Some(path) = &self.key_file {
            let key = GroupKey::read_file(path)
                .map_err(|e| abcast::Error::InvalidConfig(e.to_string()))?;
            config = config.with_group_key(key);
        }
        if self.auth_only {
            config = config.with_protection(Protection::Authenticated);
        }
        Ok(config)
    }

    /// The options again, for a member process started with them.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(p) = &self.key_file {
            v.push("--key-file".to_string());
            v.push(p.display().to_string());
        }
        if self.auth_only {
            v.push("--auth-only".to_string());
        }
        v
    }
}

/// Runtime settings the `node`, `bench` and `bench-member` subcommands share; each is
/// the runtime's default when absent.
#[derive(Clone, Copy, Debug, Default, Args)]
pub struct RuntimeArgs {
    /// When messages are delivered (every member must choose the same; default
    /// agreed).
    #[arg(long, value_enum)]
    pub delivery: Option<DeliveryArg>,
    /// Send window: own broadcasts not yet delivered (messages, per member).
    #[arg(long, help_heading = "Advanced")]
    pub send_window: Option<usize>,
    /// Relay window: how far (in messages) the relayer may sequence beyond what
    /// every member delivered.
    #[arg(long, help_heading = "Advanced")]
    pub relay_window: Option<u64>,
    /// Delivery queue: events waiting for the application (per member).
    #[arg(long, help_heading = "Advanced")]
    pub delivery_queue: Option<usize>,
    /// Relay worker threads (per member).
    #[arg(long, help_heading = "Advanced")]
    pub relay_workers: Option<usize>,
    /// The busy select thread goes back to its sockets at most once per this many
    /// microseconds (0, the runtime's default: at once).
    #[arg(long, help_heading = "Advanced")]
    pub io_coalesce_us: Option<u64>,
    /// Run the runtime's threads under SCHED_BATCH (Linux; the runtime's default is
    /// true): a runtime thread that wakes up does not preempt a running one.
    #[arg(long, help_heading = "Advanced")]
    pub batch_scheduling: Option<bool>,
    /// Run this program's own threads that broadcast and receive under SCHED_BATCH
    /// too (Linux), as `abcast::runtime::set_thread_batch_scheduling` does.
    #[arg(long, help_heading = "Advanced")]
    pub app_batch_scheduling: bool,
    /// Run the runtime's threads under SCHED_FIFO at this real-time priority, 1 to
    /// 99 (Linux; needs CAP_SYS_NICE or RLIMIT_RTPRIO): they then preempt other
    /// programs' threads when they wake up. Overrides --batch-scheduling.
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=99), help_heading = "Advanced")]
    pub realtime_priority: Option<u8>,
    /// Run this program's own threads that broadcast and receive under SCHED_FIFO at
    /// this priority too, as `abcast::runtime::set_thread_realtime_priority` does.
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=99), help_heading = "Advanced")]
    pub app_realtime_priority: Option<u8>,
}

impl RuntimeArgs {
    /// `config` with the settings given.
    pub fn apply(&self, mut config: Config) -> Config {
        if let Some(d) = self.delivery {
            config = config.with_delivery(d.into());
        }
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
        if let Some(d) = self.delivery {
            v.push("--delivery".into());
            v.push(d.to_possible_value().expect("a value").get_name().into());
        }
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

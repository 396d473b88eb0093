//! `abcast node`: one member as a process. Stdin lines are broadcast; deliveries go
//! to stdout as `SEQ ORIGIN PAYLOAD`; membership and relayer events go to stderr.

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use clap::Args;

use abcast::{Config, Error, Event, Node};

use super::node_state::PrintedLines;
use super::options::{BufferingArg, KeyArgs, QuorumArg, RuntimeArgs};

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
    /// When a member may leave the view: `majority` (safe under partitions) or
    /// `none` (every suspicion final; a partition splits the group).
    #[arg(long, value_enum, default_value_t = QuorumArg::Majority)]
    pub quorum: QuorumArg,
    /// Heartbeat interval on idle links, in milliseconds.
    #[arg(long, default_value_t = 200, help_heading = "Advanced")]
    pub heartbeat_ms: u64,
    /// A peer silent this long is suspected, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub failure_timeout_ms: u64,
    /// How long to wait for every member to connect, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub startup_timeout_ms: u64,
    /// How long a graceful leave (on SIGTERM/SIGINT) waits at most for the others to
    /// hold what this member delivered, in milliseconds.
    #[arg(long, default_value_t = 5_000, help_heading = "Advanced")]
    pub leave_timeout_ms: u64,
    /// Join a group that is already running (a late start, or a restart after a
    /// crash): deliver from this member's own *process joined* on.
    #[arg(long)]
    pub join: bool,
    /// Keep the application state, every line printed to stdout (its count and
    /// SHA-256 sum it up), hand it to members that join, and with --join or
    /// --rejoin install it first: such a member prints `event seq=S
    /// state-installed count=C sha256=HEX` and then what follows seq S. Its memory
    /// grows with every line printed.
    #[arg(long)]
    pub state: bool,
    /// When the group excludes this member (it was cut off or paused too long),
    /// join it again as a new incarnation instead of exiting (with --state, with
    /// the group's state).
    #[arg(long)]
    pub rejoin: bool,
    /// The group key.
    #[command(flatten)]
    pub key: KeyArgs,
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
        abcast::ffi::install_stderr_logger(0);
    } else if args.verbose > 0 {
        abcast::ffi::install_stderr_logger(1 + args.verbose.min(2));
    }
    let members = Config::parse_members(&args.members)?;
    let lines = args.state.then(PrintedLines::default);
    let config = |join: bool| -> Result<Config, Error> {
        let mut config = Config::new(args.id, members.clone())
            .with_buffering(args.buffering.into())
            .with_quorum(args.quorum.into())
            .with_heartbeat_interval(Duration::from_millis(args.heartbeat_ms))
            .with_failure_timeout(Duration::from_millis(args.failure_timeout_ms))
            .with_startup_timeout(Duration::from_millis(args.startup_timeout_ms))
            .with_leave_timeout(Duration::from_millis(args.leave_timeout_ms))
            .with_join(join);
        if let Some(lines) = &lines {
            config = config.with_state_transfer(Arc::new(lines.clone()));
        }
        config = args.runtime.apply(config);
        args.key.apply(config)
    };
    // Before starting, so that a signal during start-up is not lost.
    let mut signals = super::signal::install().map_err(|e| Error::Io {
        context: "install signal handlers".into(),
        source: e,
    })?;
    let mut node = Arc::new(Node::start(config(args.join)?)?);
    // This thread receives; the threads it starts from here on inherit the policy.
    args.runtime.apply_to_app_thread().map_err(|e| Error::Io {
        context: args.runtime.app_scheduling_option().into(),
        source: e,
    })?;
    report_startup(&node);
    // The member's current node: another one after a rejoin.
    let current = Arc::new(RwLock::new(node.clone()));
    let leaving = Arc::new(AtomicBool::new(false));

    // SIGTERM / SIGINT: leave gracefully; the receive loop then ends with Stopped.
    {
        let (current, leaving) = (current.clone(), leaving.clone());
        spawn("abcast-signals", move || {
            let mut byte = [0u8; 1];
            if matches!(signals.read(&mut byte), Ok(1)) {
                eprintln!("event signal: leaving the group");
                leaving.store(true, Ordering::SeqCst);
                let node = current.read().unwrap_or_else(|e| e.into_inner()).clone();
                let _ = node.leave();
            }
        })?;
    }

    // Stdin: one broadcast per line (without its newline). At EOF, keep delivering.
    {
        let (current, leaving, rejoin) = (current.clone(), leaving.clone(), args.rejoin);
        spawn("abcast-stdin", move || {
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
                        // After an exclusion with --rejoin, the line waits for the
                        // member's next node.
                        loop {
                            let node = current.read().unwrap_or_else(|e| e.into_inner()).clone();
                            if broadcast_line(&node, &line) {
                                break;
                            }
                            if !rejoin || leaving.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(NO_QUORUM_RETRY);
                        }
                    }
                    Err(e) => {
                        eprintln!("abcast node: reading stdin: {e}");
                        break;
                    }
                }
            }
        })?;
    }

    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    loop {
        match receive(&node, lines.as_ref(), &mut out)? {
            End::Stopped => return Ok(ExitCode::SUCCESS),
            End::Failed => {
                let _ = node.leave();
                return Ok(ExitCode::from(1));
            }
            End::Excluded if args.rejoin && !leaving.load(Ordering::SeqCst) => {
                let _ = node.leave(); // frees its port
                eprintln!("event rejoining");
                node = Arc::new(Node::start(config(true)?)?);
                *current.write().unwrap_or_else(|e| e.into_inner()) = node.clone();
                report_startup(&node);
            }
            End::Excluded => return Ok(ExitCode::from(2)),
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| Error::Io {
            context: format!("spawn the {name} thread"),
            source: e,
        })
}

fn report_startup(node: &Node) {
    if !node.failed_at_start().is_empty() {
        eprintln!(
            "event startup not-connected={:?} (they count as failed)",
            node.failed_at_start()
        );
    }
}

/// How a node's receive loop ended.
enum End {
    Stopped,
    Excluded,
    /// Stdout failed.
    Failed,
}

/// Deliveries: one line each on stdout (and in `lines`), flushed whenever none is
/// waiting; events on stderr.
fn receive(node: &Node, lines: Option<&PrintedLines>, out: &mut impl Write) -> Result<End, Error> {
    let mut line = Vec::new();
    loop {
        let event = match node.try_recv() {
            Ok(Some(e)) => Ok(e),
            Ok(None) => {
                if out.flush().is_err() {
                    return Ok(End::Failed);
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
                ..
            }) => {
                line.clear();
                let _ = write!(line, "{seq} {origin} ");
                line.extend_from_slice(&payload);
                line.push(b'\n');
                if out.write_all(&line).is_err() {
                    return Ok(End::Failed);
                }
                if let Some(lines) = lines {
                    lines.push(&line);
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
            Ok(Event::StateInstalled { seq, .. }) => {
                let (count, sha) = lines.map(PrintedLines::summary).unwrap_or_default();
                eprintln!("event seq={seq} state-installed count={count} sha256={sha}");
            }
            Ok(Event::Excluded) => eprintln!("event excluded"),
            Ok(Event::NoQuorum) => eprintln!("event no-quorum"),
            Ok(other) => eprintln!("event {other:?}"),
            Err(Error::Stopped) => {
                let _ = out.flush();
                return Ok(End::Stopped);
            }
            Err(Error::Excluded) => {
                let _ = out.flush();
                return Ok(End::Excluded);
            }
            Err(e) => {
                let _ = out.flush();
                return Err(e);
            }
        }
    }
}

/// Broadcasts one stdin line. Without a quorum the line waits (and so does stdin)
/// until there is one again, so that no line is lost; an oversize line is skipped
/// with a message. Returns false once the member can broadcast no more (it left,
/// was excluded or stopped).
fn broadcast_line(node: &Node, line: &[u8]) -> bool {
    let mut waiting = false;
    loop {
        match node.broadcast(line) {
            Ok(_) => return true,
            Err(Error::PayloadTooLarge { len, max }) => {
                eprintln!("abcast node: line of {len} bytes skipped (max {max})");
                return true;
            }
            Err(Error::NoQuorum) => {
                if !waiting {
                    eprintln!("abcast node: no quorum; stdin waits until there is one");
                    waiting = true;
                }
                std::thread::sleep(NO_QUORUM_RETRY);
            }
            Err(_) => return false,
        }
    }
}

/// How often a line held back for want of a quorum is offered again.
const NO_QUORUM_RETRY: Duration = Duration::from_millis(10);

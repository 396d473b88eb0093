//! A replicated key-value store: a state machine that every member runs on the same
//! commands in the same order, so that every member holds the same map.
//!
//! Commands are read from stdin, one a line, and broadcast as typed:
//!
//! ```text
//! set KEY VALUE    (KEY and VALUE one word each)
//! del KEY
//! ```
//!
//! A malformed line is rejected here, with a message on stderr, and not broadcast.
//! Every member applies each delivered command to its `BTreeMap<String, String>` and
//! prints `<seq> <hash> <command>` on stdout, where `hash` is the FNV-1a 64 hash of
//! the whole map (16 hex digits): the members' outputs are identical line by line.
//! At end of input (Ctrl-D) the member leaves the group gracefully and, once its
//! last delivery is applied, prints `final <hash> <size>`. Membership changes go to
//! stderr.
//!
//! Run a group of three, one member per terminal (start them within 30 seconds of
//! one another: each waits that long for the others to connect):
//!
//! ```text
//! cargo run --release --example kv -- --id 1 --members 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! cargo run --release --example kv -- --id 2 --members 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! cargo run --release --example kv -- --id 3 --members 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! ```
//!
//! A member that starts late, or comes back after a crash, joins with `--join`: it
//! receives the map as it was at its *process joined* from a member of the group
//! (state transfer, through [`abcast::StateTransfer`]), prints `installed <seq>
//! <hash> <size>`, and goes on applying what follows.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use abcast::{Config, Error, Event, MemberId, Node, Seq, StateTransfer};

const USAGE: &str = "\
usage: kv --id ID --members ID=HOST:PORT,ID=HOST:PORT,... [--join]

  --id ID        this member's id (one of the ids in --members)
  --members LIST every member of the group, this one included
  --join         join a running group (a late start, or a restart after a crash),
                 receiving the map from a member of the group

Commands on stdin, one a line: `set KEY VALUE` or `del KEY`. Each applied command is
printed as `<seq> <hash-of-map> <command>`; at end of input the member leaves and
prints `final <hash> <size>`.
";

/// One state-machine command.
#[derive(Debug, PartialEq, Eq)]
enum Command<'a> {
    Set(&'a str, &'a str),
    Del(&'a str),
}

impl<'a> Command<'a> {
    fn parse(line: &'a str) -> Result<Command<'a>, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["set", key, value] => Ok(Command::Set(key, value)),
            ["del", key] => Ok(Command::Del(key)),
            ["set", ..] => Err("usage: set KEY VALUE (one word each)".into()),
            ["del", ..] => Err("usage: del KEY".into()),
            [other, ..] => Err(format!("unknown command `{other}` (set or del)")),
            [] => Err("empty command".into()),
        }
    }

    fn apply(&self, map: &mut BTreeMap<String, String>) {
        match *self {
            Command::Set(key, value) => {
                map.insert(key.to_string(), value.to_string());
            }
            Command::Del(key) => {
                map.remove(key);
            }
        }
    }
}

/// FNV-1a 64 over the entries in key order, each string preceded by its length (so
/// that `("ab", "c")` and `("a", "bc")` differ). For comparing members, not security.
fn map_hash(map: &BTreeMap<String, String>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for s in map.iter().flat_map(|(k, v)| [k, v]) {
        for &b in (s.len() as u64).to_le_bytes().iter().chain(s.as_bytes()) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The replicated map, shared by the applying loop and state transfer (both on the
/// receiving thread).
#[derive(Clone, Default)]
struct Store(Arc<Mutex<BTreeMap<String, String>>>);

impl Store {
    fn map(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The map as `KEY VALUE` lines (keys and values are one word each).
impl StateTransfer for Store {
    fn snapshot(&self, _seq: Seq) -> Vec<u8> {
        let mut out = String::new();
        for (k, v) in self.map().iter() {
            out.push_str(k);
            out.push(' ');
            out.push_str(v);
            out.push('\n');
        }
        out.into_bytes()
    }

    fn install(&self, _seq: Seq, state: &[u8]) {
        let mut map = self.map();
        map.clear();
        for line in String::from_utf8_lossy(state).lines() {
            if let Some((k, v)) = line.split_once(' ') {
                map.insert(k.to_string(), v.to_string());
            }
        }
    }
}

struct Args {
    id: MemberId,
    members: Vec<(MemberId, SocketAddr)>,
    join: bool,
}

/// The command line, or `None` when help was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let (mut id, mut members, mut join) = (None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--id" => id = Some(value()?.parse().map_err(|e| format!("--id: {e}"))?),
            "--members" => {
                members = Some(Config::parse_members(&value()?).map_err(|e| e.to_string())?)
            }
            "--join" => join = true,
            "-h" | "--help" => return Ok(None),
            _ => return Err(format!("unexpected argument `{arg}`")),
        }
    }
    Ok(Some(Args {
        id: id.ok_or("--id is missing")?,
        members: members.ok_or("--members is missing")?,
        join,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("kv: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let store = Store::default();
    let config = Config::new(args.id, args.members)
        .with_startup_timeout(Duration::from_secs(30))
        .with_join(args.join)
        .with_state_transfer(Arc::new(store.clone()));

    // `start` returns once every member is connected (or the start-up timeout passed).
    eprintln!("kv: member {}: waiting for the others", args.id);
    let node = match Node::start(config) {
        Ok(node) => Arc::new(node),
        Err(e) => {
            eprintln!("kv: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !node.failed_at_start().is_empty() {
        eprintln!(
            "kv: not connected, so counted as failed: {:?}",
            node.failed_at_start()
        );
    }
    eprintln!("kv: member {} is in", node.id());

    // One thread reads and broadcasts commands, this one applies them.
    let sender = {
        let node = node.clone();
        thread::spawn(move || send_commands(&node))
    };
    match apply_deliveries(&node, &store) {
        Ok(()) => {
            let map = store.map();
            println!("final {:016x} {}", map_hash(&map), map.len());
            let _ = sender.join();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let map = store.map();
            eprintln!(
                "kv: {e}; the map as of then: {:016x} {}",
                map_hash(&map),
                map.len()
            );
            ExitCode::FAILURE
        }
    }
}

/// Broadcasts each well-formed command read from stdin; at end of input, leaves.
fn send_commands(node: &Node) {
    for (n, line) in io::stdin().lock().split(b'\n').enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("kv: reading stdin: {e}");
                break;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let checked = std::str::from_utf8(&line)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(Command::parse);
        if let Err(e) = checked {
            eprintln!("kv: line {} rejected, not sent: {e}", n + 1);
            continue;
        }
        match node.broadcast(&line) {
            Ok(_) => {}
            Err(e @ Error::PayloadTooLarge { .. }) => eprintln!("kv: line {} not sent: {e}", n + 1),
            // Excluded or stopped: the applying thread says so.
            Err(_) => return,
        }
    }
    // Waits until this member's commands are delivered, then tells the others.
    if let Err(e) = node.leave() {
        eprintln!("kv: leaving: {e}");
    }
}

/// Applies every delivered command to the map, in the total order, until the node
/// stops (`Ok`: it left).
fn apply_deliveries(node: &Node, store: &Store) -> Result<(), Error> {
    loop {
        match node.recv() {
            Ok(Event::Deliver {
                seq,
                origin,
                payload,
                ..
            }) => {
                // Every member parses the same bytes alike, so a command that is
                // malformed (from a member running other code) is skipped everywhere.
                let text = String::from_utf8_lossy(&payload);
                match Command::parse(&text) {
                    Ok(cmd) => {
                        let mut map = store.map();
                        cmd.apply(&mut map);
                        println!("{seq} {:016x} {text}", map_hash(&map));
                    }
                    Err(e) => eprintln!("kv: [{seq}] from member {origin} skipped: {e}"),
                }
            }
            Ok(Event::MemberLeft { seq, member }) => eprintln!("[{seq}] member {member} left"),
            Ok(Event::MemberJoined { seq, member }) => {
                eprintln!("[{seq}] member {member} joined")
            }
            Ok(Event::RelayerChanged {
                seq,
                epoch,
                relayer,
            }) => eprintln!("[{seq}] member {relayer} is the relayer now (epoch {epoch})"),
            Ok(Event::StateInstalled { seq, .. }) => {
                let map = store.map();
                println!("installed {seq} {:016x} {}", map_hash(&map), map.len());
            }
            Ok(Event::Excluded) => eprintln!("kv: the group excluded this member"),
            Ok(Event::NoQuorum) => {
                eprintln!("kv: no majority of the group is reachable: the map stands still")
            }
            Ok(_) => {}
            Err(Error::Stopped) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

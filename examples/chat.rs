//! A chat over atomic broadcast: every line typed at any member appears at every
//! member, in the same order.
//!
//! Each line read from stdin is broadcast to the group; each delivery is printed on
//! stdout as `<seq> <origin>: <text>`, where `seq` is its position in the total
//! order. Membership changes (a member left or joined, a new relayer, this member
//! excluded) go to stderr. End of input (Ctrl-D) leaves the group gracefully.
//!
//! Run a group of three, one member per terminal (start them within 30 seconds of
//! one another: each waits that long for the others to connect):
//!
//! ```text
//! cargo run --release --example chat -- --id 1 --members 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! cargo run --release --example chat -- --id 2 --members 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! cargo run --release --example chat -- --id 3 --members 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! ```
//!
//! A member that ends (Ctrl-D) or is killed can come back with the same command
//! plus `--join`: it joins the running group and sees what is said from then on.

use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use abcast::{Config, Error, Event, MemberId, Node};

const USAGE: &str = "\
usage: chat --id ID --members ID=HOST:PORT,ID=HOST:PORT,... [--join]

  --id ID        this member's id (one of the ids in --members)
  --members LIST every member of the group, this one included
  --join         join a group that is already running instead of forming it

Lines read from stdin are broadcast; deliveries are printed as `<seq> <origin>: <text>`,
membership changes on stderr. End of input leaves the group.
";

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
            eprintln!("chat: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = Config::new(args.id, args.members)
        .with_startup_timeout(Duration::from_secs(30))
        .with_join(args.join);

    // `start` returns once every member is connected (or the start-up timeout passed).
    eprintln!("chat: member {}: waiting for the others", args.id);
    let node = match Node::start(config) {
        Ok(node) => Arc::new(node),
        Err(e) => {
            eprintln!("chat: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !node.failed_at_start().is_empty() {
        eprintln!(
            "chat: not connected, so counted as failed: {:?}",
            node.failed_at_start()
        );
    }
    eprintln!(
        "chat: member {} is in; type away (end of input leaves)",
        node.id()
    );

    // One thread sends, this one receives: `Node` is `Send + Sync`.
    let sender = {
        let node = node.clone();
        thread::spawn(move || send_lines(&node))
    };
    match receive(&node) {
        Ok(()) => {
            // The node stopped because the sender left: that thread is done or nearly.
            let _ = sender.join();
            ExitCode::SUCCESS
        }
        // The sender may still wait for input; returning ends the process.
        Err(Error::Excluded) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Broadcasts each line of stdin; at end of input, leaves the group.
fn send_lines(node: &Node) {
    for line in io::stdin().lock().split(b'\n') {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("chat: reading stdin: {e}");
                break;
            }
        };
        match node.broadcast(&line) {
            Ok(_) => {}
            Err(e @ Error::PayloadTooLarge { .. }) => eprintln!("chat: line not sent: {e}"),
            // Excluded or stopped: the receiving thread says so.
            Err(_) => return,
        }
    }
    // Waits until this member's lines are delivered, then tells the others.
    if let Err(e) = node.leave() {
        eprintln!("chat: leaving: {e}");
    }
}

/// Prints every event, in the total order, until the node stops (`Ok`: it left).
fn receive(node: &Node) -> Result<(), Error> {
    loop {
        match node.recv() {
            Ok(Event::Deliver {
                seq,
                origin,
                payload,
                ..
            }) => println!("{seq} {origin}: {}", String::from_utf8_lossy(&payload)),
            Ok(Event::MemberLeft { seq, member }) => eprintln!("[{seq}] member {member} left"),
            Ok(Event::MemberJoined { seq, member }) => {
                eprintln!("[{seq}] member {member} joined")
            }
            Ok(Event::RelayerChanged {
                seq,
                epoch,
                relayer,
            }) => eprintln!("[{seq}] member {relayer} is the relayer now (epoch {epoch})"),
            Ok(Event::Excluded) => eprintln!("chat: the group excluded this member"),
            Ok(Event::NoQuorum) => eprintln!("chat: no majority of the group is reachable"),
            // Events this program does not use (it configures no state transfer).
            Ok(_) => {}
            Err(Error::Stopped) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

//! A member of the raw-TCP baseline: frames `[u32 length][payload]` to the
//! forwarder, which writes every frame to every member; no protocol.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::cli::bench::clock::Clock;
use crate::cli::bench::framing::{raw_frame, ReadBuf};
use crate::cli::bench::payload::read_header;
use crate::cli::bench::protocol::Report;

use super::load::load;
use super::tally::Tally;
use super::{app_thread_policy, wait_go, Ctrl, MemberArgs, Out};

/// Runs the member against the forwarder at `addr`.
pub fn run(
    args: &MemberArgs,
    addr: SocketAddr,
    ctrl: &Receiver<Ctrl>,
    out: Out,
) -> Result<(), String> {
    let clock = Clock::new();
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    out(Report::Ready {
        connected: Vec::new(),
        failed: Vec::new(),
    });
    let window = wait_go(ctrl)?;
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (args, sent) = (args.clone(), sent.clone());
        let wr = stream.try_clone().map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("bench-sender".into())
            .spawn(move || {
                let w = std::cell::RefCell::new(io::BufWriter::with_capacity(64 * 1024, wr));
                load(
                    clock,
                    &args,
                    window,
                    &sent,
                    |p| {
                        let mut w = w.borrow_mut();
                        w.write_all(&(p.len() as u32).to_le_bytes())
                            .and_then(|_| w.write_all(p))
                            .map_err(|e| e.to_string())
                    },
                    || w.borrow_mut().flush().map_err(|e| e.to_string()),
                )
            })
            .map_err(|e| e.to_string())?
    };
    let mut tally = Tally::new(clock, args, 1..=args.nodes, window, sent, out);
    app_thread_policy(args)?;
    // On an error, the sender cannot be woken from a blocked write: the process
    // exit ends it.
    deliver(stream, &mut tally, ctrl)?;
    sender
        .join()
        .unwrap_or_else(|_| Err("the sender panicked".into()))
        .map_err(|e| format!("send: {e}"))?;
    tally.report_done(args, ctrl)
}

/// Reads frames from the forwarder into the tally until every end message; an
/// abort is noticed between reads.
fn deliver(mut stream: TcpStream, tally: &mut Tally, ctrl: &Receiver<Ctrl>) -> Result<(), String> {
    let mut buf = ReadBuf::new();
    let mut seq = 0u64;
    while !tally.finished() {
        match stream.read(buf.space()) {
            Ok(0) => return Err("the forwarder closed the connection".into()),
            Ok(n) => buf.filled(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        let now = tally.clock.now_ns();
        let data = buf.data();
        let mut pos = 0;
        while !tally.finished() {
            let Some(p) = raw_frame(&data[pos..]) else {
                break;
            };
            seq += 1;
            let origin = read_header(p).map_or(0, |h| h.1);
            tally.on_message(now, seq, origin, p);
            pos += 4 + p.len();
        }
        buf.consume(pos);
        if tally.tick()? && matches!(ctrl.try_recv(), Ok(Ctrl::Abort)) {
            return Err("aborted".into());
        }
    }
    Ok(())
}

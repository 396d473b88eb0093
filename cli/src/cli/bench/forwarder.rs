//! `abcast bench-forwarder` (hidden): the raw-TCP baseline's one forwarding process.
//!
//! It listens on a free loopback port (printed as `listening ADDR`), accepts
//! `--nodes` connections (then prints `forwarding`), and writes every frame
//! (`[u32 length][payload]`) any of them sends to all of them, in one order, with
//! no protocol at all: per connection, one thread reads as much as the socket has
//! and cuts it at the last whole frame, and one thread writes what is queued for
//! that member in as few writes as it can. It exits when every member has closed its
//! connection, or when stdin ends.

use std::io::{self, BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use clap::Args;
use crossbeam_channel::{Receiver, Sender};

use super::framing::{raw_frame, ReadBuf};

/// Options of `abcast bench-forwarder`.
#[derive(Debug, Args)]
pub struct ForwarderArgs {
    /// How many members connect.
    #[arg(long)]
    pub nodes: usize,
    /// Run every thread under SCHED_FIFO at this priority (as abcast's runtime
    /// threads with `--realtime-priority`).
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub realtime_priority: Option<u8>,
}

/// Chunks queued for one member's writer before readers wait.
const QUEUE_CHUNKS: usize = 64;
/// Bytes a writer gathers into one write.
const WRITE_BYTES: usize = 256 * 1024;

/// Runs the forwarder process.
pub fn run(args: ForwarderArgs) -> ExitCode {
    if let Some(p) = args.realtime_priority {
        // Before any thread starts: they inherit it.
        if let Err(e) = abcast::runtime::set_thread_realtime_priority(p) {
            eprintln!("abcast bench-forwarder: cannot run under SCHED_FIFO {p}: {e}");
            return ExitCode::from(1);
        }
    }
    match forward(args.nodes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("abcast bench-forwarder: {e}");
            ExitCode::from(1)
        }
    }
}

fn forward(nodes: usize) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    {
        let mut so = io::stdout().lock();
        writeln!(so, "listening {}", listener.local_addr()?)?;
        so.flush()?;
    }
    // The coordinator ends stdin when it is done with us.
    std::thread::spawn(|| {
        for line in io::stdin().lock().lines() {
            if line.is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    let mut streams = Vec::new();
    while streams.len() < nodes {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        streams.push(s);
    }
    let mut txs: Vec<Sender<Bytes>> = Vec::new();
    let mut writers = Vec::new();
    for s in &streams {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_CHUNKS);
        txs.push(tx);
        let w = s.try_clone()?;
        writers.push(std::thread::spawn(move || write_loop(w, rx)));
    }
    let order = Arc::new(Mutex::new(txs));
    let readers: Vec<_> = streams
        .into_iter()
        .map(|s| {
            let order = order.clone();
            std::thread::spawn(move || read_loop(s, &order))
        })
        .collect();
    {
        let mut so = io::stdout().lock();
        writeln!(so, "forwarding")?;
        so.flush()?;
    }
    for r in readers {
        let _ = r.join();
    }
    // Every reader ended: close the queues, let the writers finish.
    order.lock().map(|mut t| t.clear()).ok();
    for w in writers {
        let _ = w.join();
    }
    Ok(())
}

fn read_loop(mut s: TcpStream, order: &Mutex<Vec<Sender<Bytes>>>) {
    let mut buf = ReadBuf::new();
    loop {
        match s.read(buf.space()) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.filled(n),
        }
        let data = buf.data();
        let mut pos = 0;
        while let Some(frame) = raw_frame(&data[pos..]) {
            pos += 4 + frame.len();
        }
        if pos == 0 {
            continue;
        }
        let chunk = Bytes::copy_from_slice(&data[..pos]);
        buf.consume(pos);
        // One lock for the whole fan-out: every member gets the chunks in one order.
        let Ok(txs) = order.lock() else { return };
        for tx in txs.iter() {
            // A member that is gone no longer counts.
            let _ = tx.send(chunk.clone());
        }
    }
}

fn write_loop(mut s: TcpStream, rx: Receiver<Bytes>) {
    let mut out: Vec<u8> = Vec::with_capacity(WRITE_BYTES);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(chunk) = next.take() {
            if out.is_empty() && chunk.len() >= WRITE_BYTES / 4 {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            } else {
                out.extend_from_slice(&chunk);
            }
            if out.len() < WRITE_BYTES {
                next = rx.try_recv().ok();
            }
        }
        if !out.is_empty() {
            if s.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

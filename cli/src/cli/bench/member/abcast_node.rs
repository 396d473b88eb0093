//! A member of an abcast group: an abcast [`Node`], a thread that sends, and the
//! receiving thread feeding the tally.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use abcast::{Config, Error, Event, Node, Quorum};

use crate::cli::bench::clock::Clock;
use crate::cli::bench::protocol::Report;
use crate::cli::options::{BufferingArg, KeyArgs, RuntimeArgs};

use super::load::load;
use super::tally::Tally;
use super::{app_thread_policy, wait_go, Ctrl, MemberArgs, Out, END_GRACE_NS, PROGRESS_EVERY_NS};

/// The settings of a bench member's node that come from the `bench` options.
pub struct MemberConfig<'a> {
    /// `--buffering`.
    pub buffering: BufferingArg,
    /// `--heartbeat-ms`.
    pub heartbeat_ms: u64,
    /// `--failure-timeout-ms`.
    pub failure_timeout_ms: u64,
    /// The runtime settings.
    pub runtime: &'a RuntimeArgs,
    /// The group key options.
    pub key: &'a KeyArgs,
}

impl MemberConfig<'_> {
    /// Member `id`'s configuration in the group `members` (not yet validated).
    pub fn config(&self, id: u32, members: Vec<(u32, SocketAddr)>) -> Result<Config, String> {
        let config = Config::new(id, members)
            .with_buffering(self.buffering.into())
            .with_quorum(match self.buffering {
                // Distributed buffering needs it; the bench runs on hosts that do not
                // vanish.
                BufferingArg::Distributed => Quorum::None,
                BufferingArg::Replicated => Quorum::Majority,
            })
            .with_heartbeat_interval(Duration::from_millis(self.heartbeat_ms))
            .with_failure_timeout(Duration::from_millis(self.failure_timeout_ms));
        self.key
            .apply(self.runtime.apply(config))
            .map_err(|e| e.to_string())
    }
}

/// Runs the member in an abcast group.
pub fn run(args: &MemberArgs, ctrl: &Receiver<Ctrl>, out: Out) -> Result<(), String> {
    let clock = Clock::new();
    let members = Config::parse_members(&args.members).map_err(|e| e.to_string())?;
    let ids: Vec<u32> = members.iter().map(|(id, _)| *id).collect();
    let config = MemberConfig {
        buffering: args.buffering,
        heartbeat_ms: args.heartbeat_ms,
        failure_timeout_ms: args.failure_timeout_ms,
        runtime: &args.runtime,
        key: &args.key,
    }
    .config(args.id, members)?;
    let node = Arc::new(Node::start(config).map_err(|e| format!("start: {e}"))?);
    out(Report::Ready {
        connected: node.connected_at_start().to_vec(),
        failed: node.failed_at_start().to_vec(),
    });
    let window = match wait_go(ctrl) {
        Ok(w) => w,
        Err(e) => {
            let _ = node.leave();
            return Err(e);
        }
    };
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (node, args, sent) = (node.clone(), args.clone(), sent.clone());
        std::thread::Builder::new()
            .name("bench-sender".into())
            .spawn(move || {
                load(
                    clock,
                    &args,
                    window,
                    &sent,
                    |p| node.broadcast(p).map(|_| ()).map_err(|e| e.to_string()),
                    || Ok(()),
                )
            })
            .map_err(|e| e.to_string())?
    };
    let mut tally = Tally::new(clock, args, ids, window, sent, out.clone());
    app_thread_policy(args)?;
    let result = deliver(&node, &mut tally, ctrl, &out);
    let sender_result = if result.is_ok() {
        sender
            .join()
            .unwrap_or_else(|_| Err("the sender panicked".into()))
    } else {
        // The sender may be blocked in broadcast: leaving wakes it.
        let _ = node.leave();
        let _ = sender.join();
        Ok(())
    };
    result?;
    sender_result.map_err(|e| format!("broadcast: {e}"))?;
    tally.report_done(args, ctrl)?;
    node.leave().map_err(|e| format!("leave: {e}"))
}

/// The most events one `recv_many` takes.
const RECV_BATCH: usize = 1024;

/// Delivers until every end message, blocking in `recv_many` (one clock read per
/// batch taken, no timed wait); a progress thread reports every 200 ms and, on an
/// abort or when the end messages are overdue, leaves the group, which ends
/// `recv_many`.
fn deliver(
    node: &Arc<Node>,
    tally: &mut Tally,
    ctrl: &Receiver<Ctrl>,
    out: &Out,
) -> Result<(), String> {
    let done = Arc::new(AtomicBool::new(false));
    let why: Arc<Mutex<Option<String>>> = Arc::default();
    let watcher = {
        let (node, done, why, ctrl, out) = (
            node.clone(),
            done.clone(),
            why.clone(),
            ctrl.clone(),
            out.clone(),
        );
        let (clock, t_end, shown, sent) = (
            tally.clock,
            tally.t_end,
            tally.shown.clone(),
            tally.sent.clone(),
        );
        std::thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || {
                let every = Duration::from_nanos(PROGRESS_EVERY_NS);
                while !done.load(Ordering::SeqCst) {
                    out(Report::Progress {
                        delivered: shown.load(Ordering::Relaxed),
                        sent: sent.load(Ordering::Relaxed),
                    });
                    let stop = match ctrl.recv_timeout(every) {
                        Ok(Ctrl::Abort) | Err(RecvTimeoutError::Disconnected) => {
                            Some("aborted".to_string())
                        }
                        _ if clock.now_ns() > t_end + END_GRACE_NS => Some(format!(
                            "not every end message was delivered {} s after the load ended",
                            END_GRACE_NS / 1_000_000_000
                        )),
                        _ => None,
                    };
                    if let Some(reason) = stop {
                        if !done.load(Ordering::SeqCst) {
                            *why.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
                            let _ = node.leave();
                        }
                        return;
                    }
                }
            })
            .map_err(|e| e.to_string())?
    };
    let mut events = Vec::with_capacity(RECV_BATCH);
    let result = 'recv: loop {
        if tally.finished() {
            break Ok(());
        }
        events.clear();
        if let Err(e) = node.recv_many(&mut events, RECV_BATCH) {
            if matches!(e, Error::Excluded) {
                break Err("the group excluded this member".to_string());
            }
            let why = why.lock().unwrap_or_else(|e| e.into_inner()).take();
            break Err(why.unwrap_or_else(|| format!("recv: {e}")));
        }
        let now = tally.clock.now_ns();
        for event in events.drain(..) {
            match event {
                Event::Deliver {
                    seq,
                    origin,
                    payload,
                    ..
                } => tally.on_message(now, seq, origin, &payload),
                Event::MemberLeft { seq, member } => tally.on_left(seq, member),
                Event::RelayerChanged {
                    seq,
                    epoch,
                    relayer,
                } => tally.on_relayer_changed(seq, epoch, relayer),
                Event::MemberJoined { seq, member } => tally.on_joined(seq, member),
                Event::Excluded => break 'recv Err("the group excluded this member".to_string()),
                Event::NoQuorum => {
                    break 'recv Err("this member lost its majority (no quorum)".to_string())
                }
                // The bench configures no state transfer.
                _ => {}
            }
        }
    };
    done.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    if let Some(w) = why.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(w);
    }
    result
}

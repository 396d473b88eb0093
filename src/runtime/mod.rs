//! The runtime: the protocol core ([`crate::protocol`]) over real TCP sockets.
//!
//! [`Node::start`] starts one member of the group that a [`Config`] describes;
//! [`Node::broadcast`] sends a message (*sent-broadcast*), [`Node::recv`] returns the
//! [`Event`]s of the total order, and [`Node::leave`] (or dropping the node) leaves
//! the group gracefully.
//!
//! ```no_run
//! use abcast::{Config, Event, Node};
//!
//! let members = Config::parse_members("1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003")?;
//! let node = Node::start(Config::new(2, members))?;
//! node.broadcast(b"hello")?;
//! while let Ok(event) = node.recv() {
//!     if let Event::Deliver { seq, origin, payload, .. } = event {
//!         println!("{seq} {origin} {}", String::from_utf8_lossy(&payload));
//!     }
//! }
//! # Ok::<(), abcast::Error>(())
//! ```
//!
//! # Threads
//!
//! The thread model is the one the seed names. The protocol core (a
//! [`crate::protocol::Member`]) sits behind one `parking_lot` mutex that every thread
//! takes only to feed it an input and drain its outputs; it is never held across a
//! socket call or a blocking channel operation.
//!
//! | thread | does | blocks in |
//! | --- | --- | --- |
//! | application thread(s) | [`Node::broadcast`]: *sent-broadcast*. Copies the message into the outbox (a queue behind its own mutex), gives it the next `origin_seq` and returns; whoever drains the core next takes it along. [`Node::recv`] takes events off the delivery queue. | `broadcast`: while the send window or the delivery queue is full, and at the relayer while the transport's relay backlog is over its limit ([`Node::try_broadcast`] returns [`Error::WouldBlock`] instead); `recv`: until there is an event; `leave`: at most twice the leave timeout. |
//! | relay workers ([`Config::relay_workers`], default 2) | *received-broadcast*, *sent-relay*, *received-relay*, the synchronization phase and *process left*: run the core on inbound messages, a peer's always on the same worker, in order. | their shard queue; the delivery-queue gate; the core lock. |
//! | one select thread (`mio`) | the listener and every connection: dials, accepts, Hello, framing, each peer's bounded write queue, heartbeats, failure detection, closing bad connections; in distributed buffering, the fan-out rounds. | `Poll::poll`, with a timeout of a quarter heartbeat (5 to 50 ms). |
//!
//! Threads hand work to one another in batches: whatever accumulated while the
//! thread that takes it was busy, with at most one wake-up per batch. The select
//! thread and the workers run under `SCHED_BATCH` by default
//! ([`Config::batch_scheduling`]), or `SCHED_FIFO` with
//! [`Config::realtime_priority`]; they inherit the CPUs of the thread that calls
//! [`Node::start`] ([`set_thread_cpu_affinity`]).
//!
//! Every queue is bounded, and a slow member slows the group instead of growing
//! it: the delivery queue ([`Config::delivery_queue_msgs`]), the send window, the
//! relay window, each worker shard (beyond which the select thread stops reading that
//! shard's peers, so that TCP's flow control reaches the sender), and each peer's
//! write queue (a peer whose queue passes twice what the relay and send windows
//! allow, and a few frames, stopped reading, and is suspected).
//!
//! The design in full — batching, flow control, connections and start-up, joining,
//! distributed buffering over TCP, logging — is in the repository's
//! `docs/design.md`; the measurements behind its choices in `docs/performance.md`.
//!
//! # Known limits
//!
//! - [`Node::leave`] with distributed buffering: only the relayer can tell (from the
//!   acknowledgements) that no member depends on it, so a client that leaves just as
//!   the relayer crashes can take the last round with it.
//! - Without [`Config::group_key`] membership is not authenticated: anyone who can
//!   reach the port can claim a member id that has not connected yet, or whose
//!   incarnation failed. With one, whoever holds the key can (see [`crate::auth`]).
//! - Logging: records through the `log` facade (target `abcast`; warn, info for
//!   membership and phases, debug for every message). The library installs no
//!   logger: without one in the application nothing is printed
//!   ([`crate::ffi::install_stderr_logger`] prints them on stderr).

mod broadcast;
mod config;
mod delivery;
mod error;
mod event;
mod io_cmd;
pub(crate) mod log;
mod node;
pub(crate) mod os;
mod outbox;
mod ready_fd;
mod receive;
mod shared;
mod state_transfer;
mod trace;
mod transport;
mod worker;

pub use config::{
    Config, DEFAULT_RELAY_WINDOW_MSGS, MAX_IO_COALESCE, MIN_FAILURE_TIMEOUT,
    MIN_HEARTBEATS_PER_TIMEOUT,
};
pub(crate) use config::{MAX_FRAME_BYTES, MIN_FRAME_BYTES, PAYLOAD_OVERHEAD_BYTES};
pub use error::Error;
pub use event::{Event, Stats};
pub use node::Node;
pub use state_transfer::StateTransfer;

/// Puts the calling thread under Linux's `SCHED_BATCH` policy, as the runtime's own
/// threads are by default ([`Config::batch_scheduling`]): when it wakes up it does
/// not preempt the thread running on its CPU. For an application thread that
/// broadcasts or receives at a high rate on a machine with few cores, so that its
/// wake-ups do not preempt the runtime's threads halfway through a batch either.
/// Does nothing elsewhere than Linux.
pub fn set_thread_batch_scheduling() -> std::io::Result<()> {
    os::set_batch_scheduling()
}

/// Puts the calling thread under Linux's `SCHED_FIFO` real-time policy at `priority`
/// (1 to 99), as [`Config::realtime_priority`] does for the runtime's own threads:
/// for an application thread that broadcasts or receives and must not wait behind
/// other programs' threads either. Threads it starts afterwards inherit it. Needs
/// `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at least `priority`
/// ([`std::io::ErrorKind::PermissionDenied`] otherwise); a priority out of range is
/// [`std::io::ErrorKind::InvalidInput`]; either way nothing changes. Elsewhere than
/// Linux: [`std::io::ErrorKind::Unsupported`].
pub fn set_thread_realtime_priority(priority: u8) -> std::io::Result<()> {
    os::set_realtime_priority(priority)
}

/// Restricts the calling thread to the CPUs `cpus` (as the OS numbers them, each
/// below 1024), like `taskset`; threads it starts afterwards inherit the restriction,
/// the runtime's own among them when this thread then calls [`crate::Node::start`].
/// On a machine that runs several members, keeping each member's threads on one
/// CPU makes every hand-off between them (application, relay workers, select
/// thread) a wake-up on the same CPU, which is much cheaper than one across CPUs
/// under a hypervisor (see `docs/performance.md`). An empty list, a CPU number
/// of 1024 or more, or a set with no CPU the thread may use is an
/// [`std::io::ErrorKind::InvalidInput`] error and changes nothing. Elsewhere than
/// Linux: [`std::io::ErrorKind::Unsupported`].
pub fn set_thread_cpu_affinity(cpus: &[usize]) -> std::io::Result<()> {
    os::set_cpu_affinity(cpus)
}

/// The CPUs the calling thread may run on, in increasing order. Elsewhere than
/// Linux: [`std::io::ErrorKind::Unsupported`].
pub fn thread_cpu_affinity() -> std::io::Result<Vec<usize>> {
    os::cpu_affinity()
}

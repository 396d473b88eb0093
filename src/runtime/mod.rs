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
//!     if let Event::Deliver { seq, origin, payload } = event {
//!         println!("{seq} {origin} {}", String::from_utf8_lossy(&payload));
//!     }
//! }
//! # Ok::<(), abcast::Error>(())
//! ```
//!
//! # Threads
//!
//! The thread model is the one the seed's table names: the application's threads do
//! *sent-broadcast*; a small pool of relay worker threads (the seed's RPC threads) do
//! *received-broadcast*, *sent-relay* and *received-relay*; one select thread does
//! the sockets, the timers and the failure detection. The protocol core (a
//! [`crate::protocol::Member`]) sits behind one `parking_lot` mutex that every thread
//! takes only to feed it an input and drain its outputs; it is never held across a
//! socket call or a blocking channel operation.
//!
//! | thread | does | blocks in |
//! | --- | --- | --- |
//! | application thread(s) | [`Node::broadcast`]: *sent-broadcast*. Never locks the core: it copies the message into the *outbox* (a queue behind a mutex held only for a copy and a push), gives it the next `origin_seq`, and returns; whoever drains the core next moves every waiting message into it, in order, where `Member::broadcast` gives each the same `origin_seq` (at the relayer, sequences it). The first broadcast after a drain asks the select thread for a flush — unless earlier broadcasts of this client are still on their way to the relayer and back, or a relay worker holds inbound items, whose drain will take it along — and the broadcasts that follow only wait in the outbox (see *Batching*), so that they leave as one sent-broadcast batch. A broadcaster that has put a batch's worth there (`max_batch_msgs` or `max_batch_bytes` of the core's configuration) drains the core itself if nobody holds it, else asks for a flush. [`Node::recv`] takes events off the delivery queue. | `broadcast`: while the send window is full (checked in the outbox against the core's count as of its last drain; a `Condvar` on the outbox, signalled by every drain), while the delivery queue is full, and, at the relayer, while the transport's relay backlog is over its limit. `try_broadcast` returns [`Error::WouldBlock`] instead. `recv` waits for an event. `leave` waits at most twice the leave timeout, then joins the threads. |
//! | relay workers (`Config::relay_workers`, default 2) | Run the core on inbound messages: *received-broadcast* (the relayer sequences and emits *sent-relay* batches), *received-relay* (clients deliver), the synchronization phase (sync-start, sync-report, repairs, *finish synchronization*), and failure notices (*process left*). Each worker owns one shard (a queue behind a mutex and condition variable, which the worker sleeps on without spinning): the select thread sends peer `p`'s messages to shard `p % workers`, and `p`'s failure notice down the same shard after its last message, so one peer's input is handled in order. A worker takes up to 16 queued items, feeds them all, then drains: several broadcasts become one relay batch. | Its shard queue; the delivery-queue gate (no inbound work while the application's delivery queue is full); the core lock. |
//! | select thread (one, `mio`) | Owns the listener and every connection. Dials, accepts and says Hello; reads until the socket would block and decodes frames; hands protocol messages to the workers; drains the core when a broadcaster asked for a flush (encoding the broadcasts that waited there as one batch); writes each peer's bounded queue until the socket would block; heartbeats on idle links; suspects a peer after the failure timeout without traffic, or at once on end of stream, a reset, a write error or a decode error; closes bad connections; in distributed buffering, holds relay batches until the previous round is acknowledged by every member, and merges them into the next round. Woken by a `mio::Waker` when another thread hands it work over a `crossbeam-channel`, only if it is not already awake (see *Batching*). | `Poll::poll`, with a timeout of a quarter heartbeat (5 to 50 ms); with `Config::io_coalesce` set (not by default), while busy, a sleep for what is left of it since it last woke (see *Batching*). |
//!
//! The select thread and the relay workers run under Linux's `SCHED_BATCH` policy
//! (`Config::batch_scheduling`, default on; [`set_thread_batch_scheduling`] does the
//! same for an application thread): one that wakes up does not preempt the thread
//! running on its CPU. See *Batching* for why and what it measured.
//!
//! With `Config::realtime_priority` they run under `SCHED_FIFO` instead (and
//! [`set_thread_realtime_priority`] puts an application thread there): a runtime
//! thread that wakes up then preempts any ordinary thread on its CPU — another
//! program's, a kernel worker's — but not one of the same priority, so the runtime's
//! threads still hand batches to one another without preempting. Give the
//! application's sending and receiving threads the same priority: ordinary threads
//! are preempted by the runtime's, which on a busy machine makes them, and the
//! latency they see, worse. `Node::start` checks the priority is allowed (it needs
//! `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at least it) and fails if not.
//!
//! The runtime's threads inherit the CPUs of the thread that calls [`Node::start`];
//! [`set_thread_cpu_affinity`] restricts that thread first (a process with several
//! members can keep each on one CPU, so that their hand-offs wake no other CPU).
//!
//! Ordering: whoever drains the core (a worker, the select thread on a flush, or a
//! broadcaster with a batch's worth) sends the encoded frames to the select thread
//! while still holding the core lock (the channel is unbounded, so this never
//! blocks), so frames reach each connection in the order the core produced them. A
//! transmit is encoded once; its bytes (one `Bytes`) are queued on every destination.
//! Lock order is core, then delivery queue; a receiver takes the delivery queue's
//! receiver-side lock before the queue's own.
//!
//! # Batching
//!
//! What a message costs is mostly what it costs to hand work from one thread to
//! another (a futex or eventfd write, and a context switch when the other thread
//! sleeps) and to make a system call, so the runtime hands work over in batches, and
//! a batch is whatever accumulated while the thread that takes it was busy:
//!
//! - *Broadcasts coalesce.* `broadcast` puts the message into the outbox and, if no
//!   flush is pending, sets `flush_pending` and wakes the select thread; the
//!   broadcasts that follow only go into the outbox. The next drain, by whoever
//!   makes it (the select thread on its flush, or a worker after its batch), moves
//!   every waiting broadcast into the core and sends them: one sent-broadcast batch
//!   at a client, one relay batch (and the local deliveries) at the relayer. The
//!   outbox is bounded by the send window (it counts against it); a broadcaster
//!   that has put a batch's worth there (`max_batch_msgs` messages or
//!   `max_batch_bytes` bytes of the core's configuration; in distributed buffering
//!   at the relayer, also what the relay window allows) drains at once. A broadcast
//!   asks for no flush either while a relay worker holds inbound items: it drains
//!   after them and takes the broadcast along. No wake-up is lost: the broadcaster
//!   decides with the outbox locked, and a drain, after it sent what it moved,
//!   publishes (with the outbox locked) whether a relay will come back; messages that
//!   arrived meanwhile and that no coming drain will take get a flush then.
//! - *Broadcasters do not wait for the core.* A relay worker holds the core lock
//!   while it handles a batch, and on two cores it can lose its CPU meanwhile; a
//!   broadcaster that locked the core for every message waited for it (measured at
//!   1.45 M msgs/s of 64 B, open loop, 3 members: each sender waited over 200 µs for
//!   the lock 1,400-2,000 times in 5.5 s, 0.5-0.7 s in all). Through the outbox,
//!   calls to `broadcast` that took over 300 µs fell from 900-1,250 per
//!   sender to 17-72. (The p99 delivery latency did not change with it: the
//!   senders' own waits for a CPU remained.)
//! - *One sent-broadcast batch in flight.* A client whose earlier broadcasts left
//!   for the relayer and have not come back relayed
//!   (`Member::broadcasts_in_flight`) asks for no flush: the worker that handles
//!   their relay drains the core, and takes the new ones along. So a client sends
//!   one batch per round trip to the relayer, as Nagle's algorithm sends one TCP
//!   segment per round trip, however its application spreads its broadcasts; a lone
//!   broadcast still leaves at once. Measured with `abcast bench --nodes 3 --size 64
//!   --rate R` (open loop, every member sending, 4 s, 2 cores), p99 latency went
//!   from 5.9-9.0 ms to 3.0-4.6 ms at R = 1.15 M msgs/s and from 2.0 ms to 1.1-1.7 ms
//!   at 300 k; the clients' select threads woke 7-8 k times a second instead of
//!   20-38 k. Closed-loop throughput did not change.
//! - *The select thread can coalesce its passes; by default it does not.* With
//!   `Config::io_coalesce` set, when a pass of its loop read at least 16
//!   application messages, or read and wrote 4 KiB, the select thread goes back to
//!   its sockets no sooner than that interval after it last woke: it sleeps out the
//!   rest with `io_awake` still set (so nobody writes the waker meanwhile; the
//!   kernel keeps every socket's readiness), and what arrived meanwhile is read,
//!   handed to the workers and written as larger batches. It was 75 µs by default
//!   and halved p99 at half the peak when it came (C = 0: 3.1-5.3 ms at 1.48 M
//!   msgs/s; C = 75: 1.5-2.2 ms). Once a client kept one sent-broadcast batch in
//!   flight, broadcasters stopped locking the core and the threads ran under
//!   `SCHED_BATCH`, traffic coalesced without it, and the sleep only added latency
//!   at every hop — and a sleeping select thread is not woken by its sockets, so a
//!   stall of its CPU holds it for the whole stall. Measured (`abcast bench --nodes
//!   3 --size 64 --rate R --io-coalesce-us C --no-baseline`, 4 s, interleaved
//!   runs): at R = 1.45-1.5 M (half the peak), 10 pairs, C = 75: p50 0.65-0.72 ms,
//!   p99 1.55-10.7 ms (median 2.8, 3 of 10 under 2 ms); C = 0: p50 0.35-0.43, p99
//!   1.14-4.95 (median 1.65, 7 of 10). At 300 k p50 0.59 → 0.33 ms; at 30 k and
//!   100 k no difference (p50 0.26-0.31, p99 0.56-0.82 ms). 1 KiB at 460 k: p50
//!   0.65-0.68 → 0.38-0.41 ms, p99 alike (2.9-5.8 and 3.0-5.1 ms in a noisy hour);
//!   5 members at 1 M: p50 0.89-1.07 → 0.59-0.61 ms, p99 3.8-5.5 → 2.6-3.9 ms.
//!   Closed-loop peaks alike or higher (64 B: 3.04-3.14 → 3.15-3.19 M msgs/s). The
//!   busy limits are in `transport.rs`.
//! - *Wake-ups coalesce.* The select thread keeps an `io_awake` flag: set while it
//!   runs or once someone woke it, cleared just before it looks for work and sleeps.
//!   Whoever queues work for it writes the waker's eventfd only when the flag was
//!   clear. The select thread clears the flag, then (after a fence) checks its
//!   channel, a pending flush and paused reads; a producer queues its work, then
//!   (after a fence) reads the flag: either the check sees the work or the producer
//!   sees the flag clear and wakes it, so no wake-up is lost.
//! - *Deliveries are taken in batches.* `recv` takes the whole delivery queue into a
//!   receiver-side buffer with one lock of the queue, and returns its events one by
//!   one; the bound counts both. Broadcasters and workers check for room with an
//!   atomic before they take any lock.
//! - A relay worker takes up to 16 queued inbound messages before it drains (so the
//!   relayer turns several sent-broadcast batches into one relay batch); taking up
//!   to 64 measured no better.
//! - *Threads that wake do not preempt.* Under load the threads hand work to one
//!   another tens of thousands of times a second, and by default a thread that
//!   wakes up preempts the one running on its CPU, which may be a worker halfway
//!   through a batch with the core locked, or the relayer's select thread; on two
//!   cores the preempted thread then waits for a CPU while the pipeline behind it
//!   stalls. Under `SCHED_BATCH` a woken thread waits until the running one blocks
//!   (which these threads do every few tens of microseconds) or its slice ends.
//!   Measured (`abcast bench --nodes 3 --size 64 --rate 1450000 --duration 4
//!   --no-baseline`, 2 cores, 8 interleaved runs each), p99 latency: every thread
//!   under the default policy 2.0-4.8 ms (median 3.1); the runtime's threads under
//!   `SCHED_BATCH` 1.7-3.4 (median 2.8); the benchmark's sender and receiver too
//!   (`--app-batch-scheduling`) 1.3-3.3 (median 1.8). At 30 k msgs/s p99 fell from
//!   0.79-0.89 to 0.63-0.73 ms; at 300 k, p50 rose from 0.41 to 0.47-0.50 ms, p99
//!   stayed 1.0-1.1 ms. Closed-loop throughput rose by about 3% (runtime threads)
//!   and 8% (all threads). In a `perf` profile at 1.45 M msgs/s, the kernel's
//!   wake-up, context-switch and interrupt-return paths fell from about 22% of all
//!   samples to 10% with every thread under `SCHED_BATCH`.
//!
//! Measured with `perf stat -a` over `abcast bench --nodes 3 --size 64 --duration 4
//! --no-baseline` (2 cores): before these (commit `43ef57a`), per message ordered,
//! 0.79 eventfd writes, 0.26 futex calls, 0.37 context switches, 0.11 `writev`, and
//! 504 k delivered messages/s per member; after, 0.007 eventfd writes, 0.012 futex
//! calls, 0.032 context switches, 0.008 `writev` (about 120 messages per write), and
//! 2.2 M messages/s. The thread roles are the seed's; no other split was measured.
//!
//! Where the seed puts retransmission and *finish synchronization* in the select
//! thread, here the select thread detects the failure and the worker of the failed
//! peer's shard runs the core on it (so the core sees the failure after every
//! message already read from that peer); the sync-start, repairs and
//! finish-synchronization it produces are written by the select thread.
//!
//! # Flow control
//!
//! Every queue is bounded, and a slow member slows the group instead of growing it:
//!
//! - the delivery queue holds `Config::delivery_queue_msgs` events (plus at most one
//!   worker batch), counting those a receiver took but has not yet returned; while
//!   it is full the workers take no inbound work and broadcasts wait;
//! - broadcasts waiting in the core for a flush: at most one batch (see
//!   *Batching*);
//! - acknowledgements of what a client delivered ride with its sent-broadcast
//!   batches, and the relayer's stable watermark with its relay batches; either is
//!   sent on its own once it lags by an eighth of the relay window, or at the select
//!   thread's next tick (`Member::handle_tick`), so the relay window never waits for
//!   a timer and stability lags by at most a tick when traffic stops;
//! - each worker shard holds at most 64 unhandled messages; beyond that the select
//!   thread stops reading from that shard's peers, so TCP's own flow control reaches
//!   the sender. Silence on a connection we stopped reading does not count against
//!   the peer;
//! - the relayer's relays to a member that stopped reading stop at the relay window
//!   (replicated buffering: it is measured against the stable watermark; distributed
//!   buffering: against the members' acknowledgements), and then clients' send
//!   windows fill and their broadcasts block;
//! - per-peer write queues are bounded by those windows; a queue beyond four times
//!   `Config::max_sync_frame_bytes` means the peer stopped reading for good, and it is
//!   suspected.
//!
//! # Connections and start-up
//!
//! Members form a full mesh with one connection per pair: each member dials the
//! members with lower ids (retrying every 50 ms) and accepts those with higher ids.
//! Both sides send a Hello frame first. [`Node::start`] returns once every member is
//! connected, or at the startup timeout; members not connected by then are reported
//! to the core as failed (*process left*). A joining member dials every member.
//!
//! A connection is a member only once it said a valid Hello: an id in the
//! configuration, higher than ours (we dial the lower ones, unless they come back as
//! joiners), not our own, not already connected, and not a failed incarnation. Anything else (bad magic or version, an unknown frame kind,
//! a length over the limit — before a Hello the limit is 64 bytes —, a frame other
//! than Hello first, no Hello within the larger of the failure timeout and one
//! second, a truncated frame at end of stream) closes the connection with a warning
//! naming the reason, and affects no member. On a member's connection, a bad frame or
//! a second Hello closes it, and the member is suspected.
//!
//! # Distributed buffering and the transport
//!
//! Distributed buffering assumes that when a relayer crashes, members differ by at
//! most the relay batch it was writing. Writing a batch into every socket before the
//! next is not enough over TCP: a process killed with unread data in its sockets
//! resets them, and the kernel discards what it had accepted but not yet
//! transmitted (in the kill test, a slow member lost 157 relays that way and was
//! excluded). So in distributed buffering each client acknowledges every relay batch
//! it handles (an `Ack`, which only replicated buffering's core sends by itself), and
//! the relayer's select thread releases the next round only once every member of the
//! previous one acknowledged it or failed. This costs a round trip per round, so a
//! round is not one relay batch but every relay batch that waited for the previous
//! round (same destinations and epoch, up to `Config::max_frame_bytes`), merged into
//! one `Relay` message and encoded once: workers hand relay batches to the select
//! thread unencoded. A round must stay one message, because a client keeps the last
//! relay message it received as its round. (Releasing one batch per round trip gave
//! 11 k to 39 k messages/s at 64 bytes; merging gives about what replicated
//! buffering gives.)
//!
//! # Logging
//!
//! Lines on stderr, named with the seed's events (*sent-broadcast*,
//! *received-relay*, *process left*, *finish synchronization*, ...), behind a
//! process-wide verbosity switch: [`set_verbosity`], or the `ABCAST_LOG` environment
//! variable (0 silent, 1 warnings — the default —, 2 membership and phases, 3 every
//! message).
//!
//! # Joining
//!
//! A member (`Config::join`, `abcast node --join`) that starts late,
//! or comes back after a crash, dials every member and asks to join; members
//! accept its Hello when its old incarnation counts as failed (its failure notice
//! reached the core before anything the new incarnation says). [`Node::start`]
//! returns once it is connected; its first event is its own
//! [`Event::MemberJoined`], and it delivers what is ordered after it (no state
//! transfer). Without `join`, a member not connected within the startup timeout
//! counts as failed, and the group forms without it.
//!
//! # Known gaps and limits
//!
//! - A member the group excluded while it was alive (for instance, paused for longer
//!   than the failure timeout) has its connections closed by the others; it sees them
//!   all fail and carries on alone. Nothing on the wire tells it it was excluded.
//! - A client's synchronization report is one message holding every relay it buffers
//!   above the new relayer's and every broadcast not yet relayed; it can exceed
//!   `Config::max_frame_bytes`, so members accept frames up to
//!   `Config::max_sync_frame_bytes` from each other (connections that have not said
//!   Hello: 64 bytes).
//! - [`Node::leave`] waits until no member depends on the leaver for what it
//!   delivered; with distributed buffering only the relayer can tell (from the
//!   acknowledgements), so a client that leaves just as the relayer crashes can
//!   take the last round with it.
//! - Membership is not authenticated: anyone who can reach the port can claim a
//!   member id that has not connected yet, or whose incarnation failed.

mod broadcast;
mod config;
mod delivery;
mod error;
mod event;
mod io_cmd;
pub mod log;
mod node;
pub(crate) mod os;
mod outbox;
mod shared;
mod trace;
mod transport;
mod worker;

pub use config::{Config, MAX_IO_COALESCE};
pub use error::Error;
pub use event::{Event, Stats};
pub use log::set_verbosity;
pub use node::Node;

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
/// under a hypervisor (see the README, *Performance*). An empty list, a CPU number
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

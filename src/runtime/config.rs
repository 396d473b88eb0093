//! A node's configuration: who the members are and how the runtime behaves.

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::state_transfer::StateTransfer;
use super::Error;
use crate::auth::{GroupKey, Protection};
use crate::protocol::{Buffering, CoreConfig, Delivery, MemberId, Quorum};
use crate::wire;
use std::sync::Arc;

/// Bytes of framing around the largest payload of a one-message broadcast or relay
/// frame (header, batch fields and per-message fields), rounded up.
pub(crate) const PAYLOAD_OVERHEAD_BYTES: usize = 64;
/// The smallest [`Config::max_frame_bytes`] accepted.
pub(crate) const MIN_FRAME_BYTES: usize = 4096;
/// The largest [`Config::max_frame_bytes`] accepted: a frame's length is 32 bits.
pub(crate) const MAX_FRAME_BYTES: usize = u32::MAX as usize;
/// An upper bound on the per-message overhead of a relay in a batch (25 bytes today).
const RELAY_OVERHEAD_BOUND: usize = 32;

/// Everything [`crate::Node::start`] needs.
///
/// Build it with [`Config::new`] (or [`Config::parse_members`]) and adjust it with the
/// `with_*` builders or by setting the public fields. `Node::start` checks it and
/// rejects an invalid one with [`Error::InvalidConfig`]. More settings may be
/// added: build it with [`Config::new`], not a struct expression.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use abcast::{Config, Error, Node};
///
/// let members = Config::parse_members("1=127.0.0.1:0")?;
/// let config = Config::new(1, members)
///     .with_heartbeat_interval(Duration::from_millis(100))
///     .with_failure_timeout(Duration::from_millis(500))
///     .with_send_window(256)
///     .with_max_frame_bytes(64 * 1024);
/// assert_eq!(config.max_payload_bytes(), 64 * 1024 - 64);
/// config.validate()?;
///
/// // An invalid configuration is refused before anything starts.
/// let bad = config.clone().with_send_window(0);
/// assert!(matches!(Node::start(bad), Err(Error::InvalidConfig(_))));
///
/// // A group of one starts at once (port 0: the system picks a free port).
/// let node = Node::start(config)?;
/// assert!(node.local_addr().port() != 0);
/// assert!(matches!(node.broadcast(&[0; 64 * 1024]), Err(Error::PayloadTooLarge { .. })));
/// node.leave()?;
/// # Ok::<(), abcast::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// This member's id; it must be one of `members`.
    pub self_id: MemberId,
    /// Every member of the group: id and address. Members are ranked by id: the lowest
    /// id is the first relayer. Each member listens on its own address; it dials the
    /// members with lower ids and accepts the members with higher ids.
    pub members: Vec<(MemberId, SocketAddr)>,
    /// Replicated (default) or distributed buffering.
    pub buffering: Buffering,
    /// When a member may leave the view (see [`Quorum`]): with the default
    /// [`Quorum::Majority`], on evidence that its process is gone or when a majority
    /// agrees it is unreachable, and a member that cannot reach a majority stops
    /// (`Event::NoQuorum`); [`Quorum::None`] makes every suspicion final, which
    /// splits the group under a partition or a long pause.
    pub quorum: Quorum,
    /// A heartbeat is sent on a link that carried nothing for this long.
    pub heartbeat_interval: Duration,
    /// A peer that sent nothing for this long is suspected. A connection closed or
    /// reset without an announcement is evidence that its process is gone, at once.
    /// At least [`MIN_HEARTBEATS_PER_TIMEOUT`] heartbeats and
    /// [`MIN_FAILURE_TIMEOUT`].
    pub failure_timeout: Duration,
    /// `Node::start` waits this long for every member to connect; members not
    /// connected by then count as failed.
    pub startup_timeout: Duration,
    /// How many of its own broadcasts a member may have un-delivered at once; beyond
    /// it `broadcast` blocks and `try_broadcast` returns [`Error::WouldBlock`].
    pub send_window_msgs: usize,
    /// How many payload bytes of its own broadcasts a member may have un-delivered at
    /// once (one larger message is let through when nothing else is pending).
    pub send_window_bytes: usize,
    /// How far (in sequence numbers) the relayer may run ahead of the slowest member
    /// (replicated buffering): it bounds every member's relay buffer.
    pub relay_window_msgs: u64,
    /// How many payload bytes the relayer may have ordered beyond what the slowest
    /// member delivered (replicated buffering): it bounds every member's relay
    /// buffer in bytes.
    pub relay_window_bytes: usize,
    /// The largest frame body accepted or sent (a welcome may be larger by what the
    /// view of a large group needs). The largest payload is this less 64 bytes.
    pub max_frame_bytes: usize,
    /// How many relay worker threads run the protocol on inbound messages.
    pub relay_workers: usize,
    /// While it is busy, the select thread goes back to its sockets at most once per
    /// this interval, so that what arrives meanwhile is read, handed over and
    /// written in larger batches (fewer wake-ups and system calls for the same
    /// traffic). It counts as busy when its previous pass read at least 16
    /// application messages or read and wrote 4 KiB; at low load nothing waits.
    /// Zero: always at once.
    /// At most 10 ms. Default zero: with a client's one sent-broadcast batch in
    /// flight and the runtime's threads under `SCHED_BATCH`, traffic coalesces
    /// without it, and a nonzero interval only adds latency (see the runtime docs,
    /// *Batching*).
    pub io_coalesce: Duration,
    /// Run the runtime's threads (the select thread and the relay workers) under
    /// Linux's `SCHED_BATCH` policy: one of them that wakes up does not preempt the
    /// thread running on its CPU, but waits until that thread blocks or its time
    /// slice ends (nothing changes on an idle CPU, or for threads already running).
    /// Under load, where the runtime's threads hand work to one another thousands of
    /// times a second, this keeps them from preempting one another (and the
    /// application) halfway through a batch. No privilege is needed; elsewhere than
    /// Linux it does nothing. Default on. Off: the threads keep the policy they
    /// inherit from the thread that calls [`crate::Node::start`].
    pub batch_scheduling: bool,
    /// Run the runtime's threads under Linux's `SCHED_FIFO` real-time policy at this
    /// priority (1 to 99) instead: one of them that wakes up preempts any ordinary
    /// thread on its CPU at once (another process's, a kernel worker's), but not
    /// another of the same priority, so they still hand batches to one another
    /// without preempting. On a small machine whose other programs run for a few
    /// milliseconds at a time, this is what keeps them out of the latency tail (see
    /// `docs/performance.md`). Needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at
    /// least this priority: without it [`crate::Node::start`] fails with an I/O error
    /// (permission denied) and starts nothing; elsewhere than Linux it fails too.
    /// The threads block whenever they have nothing to do. The kernel keeps 5% of
    /// each second of a CPU for ordinary threads (real-time throttling, or its fair
    /// server): threads of this priority that keep a CPU busy all the time are
    /// stopped for about 50 ms once a second, so use it where the group leaves a
    /// CPU's worth of slack (three members on two cores at half their peak do; five
    /// do not). Give the application's sending and receiving threads the same
    /// priority ([`crate::runtime::set_thread_realtime_priority`]): ordinary threads
    /// are preempted by these. When set, [`Config::batch_scheduling`] is ignored.
    /// Default `None`.
    pub realtime_priority: Option<u8>,
    /// How many events may wait for the application's `recv`. When the queue is
    /// full, this member stops reading from its peers (backpressure).
    pub delivery_queue_msgs: usize,
    /// `leave` waits at most this long for this member's own broadcasts to be
    /// delivered, and as long again for its last frames to be written.
    pub leave_timeout: Duration,
    /// The address to listen on; by default this member's address in `members`.
    pub listen_addr: Option<SocketAddr>,
    /// Join a group that is already running (a member that starts late, or comes
    /// back after a crash) instead of forming it: the member dials every member and
    /// asks to join; it delivers from its own *process joined* on.
    pub join: bool,
    /// The group's key (see [`crate::auth`]): with one, every connection starts with
    /// a handshake that proves both ends hold it, and every frame is sealed; peers
    /// without it are refused. Every member must hold the same key. `None` (the
    /// default): membership is unauthenticated, and the node logs a warning saying so.
    pub group_key: Option<GroupKey>,
    /// How frames are sealed with a group key: encrypted and authenticated (the
    /// default) or authenticated only. Every member must use the same.
    pub protection: Protection,
    /// When a message is handed to the application: [`Delivery::Agreed`] (the
    /// default) as soon as this member holds it; [`Delivery::Safe`] once every
    /// member of the view holds it, so that whatever one member delivered, every
    /// survivor delivers (about one more round trip of latency; replicated
    /// buffering only). Every member must choose the same.
    pub delivery: Delivery,
    /// The application's state, for members that join (see [`StateTransfer`]):
    /// this member takes a snapshot at each *process joined* and serves it, and
    /// installs one when it joins (`join`). `None` (the default): a joiner starts
    /// with no state.
    pub state_transfer: Option<Arc<dyn StateTransfer>>,
    /// The largest state a joining member accepts (bytes).
    pub max_state_bytes: u64,
}

/// The shortest failure timeout accepted: a loaded host's scheduler can keep a
/// thread off the CPU for tens of milliseconds, which a shorter timeout would take
/// for a failure.
pub const MIN_FAILURE_TIMEOUT: Duration = Duration::from_millis(50);

/// The failure timeout spans at least this many heartbeat intervals, so that one
/// late heartbeat is not a failure.
pub const MIN_HEARTBEATS_PER_TIMEOUT: u32 = 3;

/// The default [`Config::relay_window_msgs`]. At a few million small messages a
/// second it is a few milliseconds of the group's traffic: what the delivered
/// watermarks take to come back to the relayer through a loaded host's threads, so
/// that the relayer rarely waits for them.
pub const DEFAULT_RELAY_WINDOW_MSGS: u64 = 16_384;

/// The longest [`Config::io_coalesce`]: well under any heartbeat interval.
pub const MAX_IO_COALESCE: Duration = Duration::from_millis(10);

impl Config {
    /// A configuration for member `self_id` of the group `members`, with default
    /// settings.
    pub fn new(self_id: MemberId, members: Vec<(MemberId, SocketAddr)>) -> Config {
        Config {
            self_id,
            members,
            buffering: Buffering::Replicated,
            quorum: Quorum::Majority,
            heartbeat_interval: Duration::from_millis(200),
            failure_timeout: Duration::from_millis(1000),
            startup_timeout: Duration::from_secs(10),
            send_window_msgs: 1024,
            send_window_bytes: 1 << 20,
            relay_window_msgs: DEFAULT_RELAY_WINDOW_MSGS,
            relay_window_bytes: 8 << 20,
            max_frame_bytes: wire::DEFAULT_MAX_FRAME_BYTES,
            relay_workers: 2,
            io_coalesce: Duration::ZERO,
            batch_scheduling: true,
            realtime_priority: None,
            delivery_queue_msgs: 4096,
            leave_timeout: Duration::from_secs(5),
            listen_addr: None,
            join: false,
            group_key: None,
            protection: Protection::Encrypted,
            delivery: Delivery::Agreed,
            state_transfer: None,
            max_state_bytes: 1 << 32,
        }
    }

    /// Parses a member list `ID=HOST:PORT,ID=HOST:PORT,...` (host names are resolved;
    /// the first address is used).
    pub fn parse_members(list: &str) -> Result<Vec<(MemberId, SocketAddr)>, Error> {
        let mut members = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, addr) = item.split_once('=').ok_or_else(|| {
                Error::config(format!("member `{item}` is not of the form ID=HOST:PORT"))
            })?;
            let id: MemberId = id
                .trim()
                .parse()
                .map_err(|e| Error::config(format!("member id `{id}` in `{item}`: {e}")))?;
            let addr = addr.trim();
            let resolved = match addr.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => addr
                    .to_socket_addrs()
                    .map_err(|e| Error::config(format!("address `{addr}` of member {id}: {e}")))?
                    .next()
                    .ok_or_else(|| {
                        Error::config(format!(
                            "address `{addr}` of member {id} resolves to nothing"
                        ))
                    })?,
            };
            members.push((id, resolved));
        }
        if members.is_empty() {
            return Err(Error::config("the member list is empty"));
        }
        Ok(members)
    }

    /// Sets the buffering strategy.
    pub fn with_buffering(mut self, buffering: Buffering) -> Config {
        self.buffering = buffering;
        self
    }

    /// Sets the quorum rule (see [`Config::quorum`]).
    pub fn with_quorum(mut self, quorum: Quorum) -> Config {
        self.quorum = quorum;
        self
    }

    /// Sets the heartbeat interval.
    pub fn with_heartbeat_interval(mut self, d: Duration) -> Config {
        self.heartbeat_interval = d;
        self
    }

    /// Sets the failure timeout.
    pub fn with_failure_timeout(mut self, d: Duration) -> Config {
        self.failure_timeout = d;
        self
    }

    /// Sets the startup timeout.
    pub fn with_startup_timeout(mut self, d: Duration) -> Config {
        self.startup_timeout = d;
        self
    }

    /// Sets the send window (messages).
    pub fn with_send_window(mut self, msgs: usize) -> Config {
        self.send_window_msgs = msgs;
        self
    }

    /// Sets the relay window (messages).
    pub fn with_relay_window(mut self, msgs: u64) -> Config {
        self.relay_window_msgs = msgs;
        self
    }

    /// Sets the send window in payload bytes.
    pub fn with_send_window_bytes(mut self, bytes: usize) -> Config {
        self.send_window_bytes = bytes;
        self
    }

    /// Sets the relay window in payload bytes.
    pub fn with_relay_window_bytes(mut self, bytes: usize) -> Config {
        self.relay_window_bytes = bytes;
        self
    }

    /// Sets the maximum frame body size (bytes).
    pub fn with_max_frame_bytes(mut self, bytes: usize) -> Config {
        self.max_frame_bytes = bytes;
        self
    }

    /// Sets the number of relay worker threads.
    pub fn with_relay_workers(mut self, n: usize) -> Config {
        self.relay_workers = n;
        self
    }

    /// Sets how often, at most, the busy select thread goes back to its sockets (see
    /// [`Config::io_coalesce`]).
    pub fn with_io_coalesce(mut self, d: Duration) -> Config {
        self.io_coalesce = d;
        self
    }

    /// Sets whether the runtime's threads run under `SCHED_BATCH` (see
    /// [`Config::batch_scheduling`]).
    pub fn with_batch_scheduling(mut self, on: bool) -> Config {
        self.batch_scheduling = on;
        self
    }

    /// Sets the real-time priority of the runtime's threads (see
    /// [`Config::realtime_priority`]); `None` for none.
    pub fn with_realtime_priority(mut self, priority: Option<u8>) -> Config {
        self.realtime_priority = priority;
        self
    }

    /// Sets the bound of the delivery queue (events).
    pub fn with_delivery_queue(mut self, msgs: usize) -> Config {
        self.delivery_queue_msgs = msgs;
        self
    }

    /// Sets the leave timeout.
    pub fn with_leave_timeout(mut self, d: Duration) -> Config {
        self.leave_timeout = d;
        self
    }

    /// Listens on `addr` instead of this member's configured address.
    pub fn with_listen_addr(mut self, addr: SocketAddr) -> Config {
        self.listen_addr = Some(addr);
        self
    }

    /// Sets the group key (see [`Config::group_key`]).
    pub fn with_group_key(mut self, key: GroupKey) -> Config {
        self.group_key = Some(key);
        self
    }

    /// Sets how frames are sealed with a group key (see [`Config::protection`]).
    pub fn with_protection(mut self, protection: Protection) -> Config {
        self.protection = protection;
        self
    }

    /// Sets when messages are delivered (see [`Config::delivery`]).
    pub fn with_delivery(mut self, delivery: Delivery) -> Config {
        self.delivery = delivery;
        self
    }

    /// Sets the application's state for joiners (see [`Config::state_transfer`]).
    pub fn with_state_transfer(mut self, state: Arc<dyn StateTransfer>) -> Config {
        self.state_transfer = Some(state);
        self
    }

    /// Sets [`Config::max_state_bytes`].
    pub fn with_max_state_bytes(mut self, bytes: u64) -> Config {
        self.max_state_bytes = bytes;
        self
    }

    /// Joins a running group instead of forming it (see [`Config::join`]).
    pub fn with_join(mut self, join: bool) -> Config {
        self.join = join;
        self
    }

    /// The largest payload `broadcast` accepts.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_frame_bytes.saturating_sub(PAYLOAD_OVERHEAD_BYTES)
    }

    /// This member's address in the member list.
    pub fn self_addr(&self) -> Option<SocketAddr> {
        self.members
            .iter()
            .find(|(id, _)| *id == self.self_id)
            .map(|(_, a)| *a)
    }

    /// Checks the configuration; `Node::start` calls it.
    pub fn validate(&self) -> Result<(), Error> {
        if self.members.is_empty() {
            return Err(Error::config("the member list is empty"));
        }
        if self.buffering == Buffering::Distributed && self.quorum != Quorum::None {
            return Err(Error::config(
                "distributed buffering needs the quorum rule Quorum::None (--quorum none, \
                 ABCAST_QUORUM_NONE): it tolerates crashes, not partitions or false \
                 suspicions; with a majority quorum use replicated buffering",
            ));
        }
        if self.buffering == Buffering::Distributed && self.delivery == Delivery::Safe {
            return Err(Error::config(
                "safe delivery needs replicated buffering: it waits until every member \
                 holds a message, which distributed buffering does not track",
            ));
        }
        if self.self_id == 0 {
            return Err(Error::config(
                "this member's id is 0, which is reserved (events use it for \"no member\"): \
                 ids start at 1",
            ));
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for (id, addr) in &self.members {
            if *id == 0 {
                return Err(Error::config(
                    "member id 0 is reserved (events use it for \"no member\"): ids start at 1",
                ));
            }
            if !ids.insert(*id) {
                return Err(Error::config(format!("member id {id} appears twice")));
            }
            if !addrs.insert(*addr) {
                return Err(Error::config(format!(
                    "address {addr} is given to two members"
                )));
            }
        }
        if !ids.contains(&self.self_id) {
            return Err(Error::config(format!(
                "this member's id {} is not in the member list",
                self.self_id
            )));
        }
        if self.startup_timeout.is_zero() {
            return Err(Error::config(
                "the start-up timeout is zero: members would count as failed before any \
                 could connect",
            ));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(Error::config("the heartbeat interval is zero"));
        }
        if self.failure_timeout < self.heartbeat_interval * MIN_HEARTBEATS_PER_TIMEOUT {
            return Err(Error::config(format!(
                "the failure timeout ({:?}) must span at least {MIN_HEARTBEATS_PER_TIMEOUT} \
                 heartbeat intervals ({:?})",
                self.failure_timeout, self.heartbeat_interval
            )));
        }
        if self.failure_timeout < MIN_FAILURE_TIMEOUT {
            return Err(Error::config(format!(
                "the failure timeout ({:?}) is below the minimum of {MIN_FAILURE_TIMEOUT:?}, \
                 which a loaded host can meet",
                self.failure_timeout
            )));
        }
        if self.send_window_msgs == 0 {
            return Err(Error::config("the send window is zero"));
        }
        if self.relay_window_msgs == 0 {
            return Err(Error::config("the relay window is zero"));
        }
        if self.send_window_bytes == 0 || self.relay_window_bytes == 0 {
            return Err(Error::config("a window in bytes is zero"));
        }
        if self.relay_workers == 0 {
            return Err(Error::config("there must be at least one relay worker"));
        }
        if self.relay_workers > 64 {
            return Err(Error::config("at most 64 relay workers"));
        }
        if self.delivery_queue_msgs == 0 {
            return Err(Error::config("the delivery queue bound is zero"));
        }
        if self.io_coalesce > MAX_IO_COALESCE {
            return Err(Error::config(format!(
                "the I/O coalescing interval ({} µs) is over the maximum of {} µs",
                self.io_coalesce.as_micros(),
                MAX_IO_COALESCE.as_micros()
            )));
        }
        if let Some(p) = self.realtime_priority {
            super::os::realtime_priority(i64::from(p)).map_err(Error::config)?;
        }
        if self.max_frame_bytes < MIN_FRAME_BYTES {
            return Err(Error::config(format!(
                "the maximum frame size ({} bytes) is below the minimum of {MIN_FRAME_BYTES} \
                 bytes",
                self.max_frame_bytes
            )));
        }
        if self.max_frame_bytes > MAX_FRAME_BYTES {
            return Err(Error::config("the maximum frame size exceeds 4 GiB"));
        }
        Ok(())
    }

    /// The most bytes a peer's write queue may hold: what the relay and send windows
    /// allow twice over, and a few frames. A peer whose queue passes it stopped
    /// reading, and is suspected.
    pub(crate) fn outbox_bytes_max(&self) -> usize {
        self.relay_window_bytes
            .saturating_add(self.send_window_bytes)
            .saturating_mul(2)
            .saturating_add(self.max_frame_bytes.saturating_mul(8))
    }

    /// The protocol core's settings for this configuration: batches stay well under
    /// the maximum frame size. With distributed buffering a relay batch is a round,
    /// one per round trip, so it takes as many messages as the frame size allows.
    pub(crate) fn core_config(&self) -> CoreConfig {
        let max_batch_bytes = self.max_frame_bytes / 2;
        let most_msgs = match self.buffering {
            Buffering::Replicated => 1024,
            Buffering::Distributed => usize::MAX,
        };
        let max_batch_msgs = (self.max_frame_bytes / 4 / RELAY_OVERHEAD_BOUND).clamp(1, most_msgs);
        CoreConfig {
            buffering: self.buffering,
            quorum: self.quorum,
            send_window_msgs: self.send_window_msgs,
            send_window_bytes: self.send_window_bytes,
            relay_window_msgs: self.relay_window_msgs,
            relay_window_bytes: self.relay_window_bytes,
            delivery: self.delivery,
            max_batch_msgs,
            max_batch_bytes,
            ..CoreConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<(MemberId, SocketAddr)> {
        Config::parse_members("1=127.0.0.1:7001, 2=127.0.0.1:7002,3=127.0.0.1:7003").unwrap()
    }

    /// Every part of a synchronization report the core makes under this
    /// configuration fits a frame: the most relays a batch holds, then the most
    /// broadcasts, each at the most bytes a batch allows, and a part of one message of
    /// the largest payload.
    #[test]
    fn a_sync_report_part_fits_a_frame() {
        use crate::protocol::{Epoch, Message, Relay, RelayBody};
        use bytes::Bytes;
        for buffering in [Buffering::Replicated, Buffering::Distributed] {
            let mut config = Config::new(1, members());
            config.buffering = buffering;
            let core = config.core_config();
            let each = core.max_batch_bytes / core.max_batch_msgs;
            let largest = config.max_payload_bytes();
            let relay = |seq, len| Relay {
                seq,
                origin: u32::MAX,
                origin_seq: u64::MAX,
                body: RelayBody::App(Bytes::from(vec![0; len])),
            };
            let report = |relays: Vec<Relay>, unrelayed: Vec<(u64, Bytes)>| {
                wire::Frame::Protocol(Message::SyncReport {
                    epoch: Epoch {
                        number: u64::MAX,
                        relayer: u32::MAX,
                    },
                    received: u64::MAX,
                    part: u32::MAX,
                    more: true,
                    relays,
                    unrelayed,
                })
            };
            let full_relays = (0..core.max_batch_msgs as u64)
                .map(|s| relay(s, each))
                .collect();
            let full_msgs = (0..core.max_batch_msgs as u64)
                .map(|s| (s, Bytes::from(vec![0; each])))
                .collect();
            for frame in [
                report(full_relays, Vec::new()),
                report(Vec::new(), full_msgs),
                report(vec![relay(1, largest)], Vec::new()),
                report(Vec::new(), vec![(1, Bytes::from(vec![0; largest]))]),
            ] {
                let len = wire::encoded_len(&frame);
                assert!(
                    len <= wire::HEADER_BYTES + config.max_frame_bytes,
                    "{buffering:?}: a part of {len} bytes"
                );
            }
        }
    }

    #[test]
    fn member_id_zero_and_a_zero_start_up_timeout_are_refused() {
        let zero = Config::parse_members("0=127.0.0.1:7000,1=127.0.0.1:7001").unwrap();
        let e = Config::new(1, zero).validate().unwrap_err().to_string();
        assert!(e.contains("member id 0 is reserved"), "{e}");
        let e = Config::new(0, members())
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("this member's id is 0, which is reserved"),
            "{e}"
        );
        let e = Config::new(1, members())
            .with_startup_timeout(Duration::ZERO)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("start-up timeout is zero"), "{e}");
    }

    #[test]
    fn parses_members() {
        let m = members();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1], (2, "127.0.0.1:7002".parse().unwrap()));
        assert!(Config::parse_members("1=127.0.0.1:7001,x").is_err());
        assert!(Config::parse_members("a=127.0.0.1:7001").is_err());
        assert!(Config::parse_members("").is_err());
    }

    #[test]
    fn rejects_invalid() {
        assert!(Config::new(1, members()).validate().is_ok());
        let e = Config::new(9, members()).validate().unwrap_err();
        assert!(e.to_string().contains("not in the member list"), "{e}");
        let mut dup = members();
        dup.push((2, "127.0.0.1:7009".parse().unwrap()));
        let e = Config::new(1, dup).validate().unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
        let e = Config::new(1, members())
            .with_send_window(0)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("send window is zero"), "{e}");
        let e = Config::new(1, members())
            .with_failure_timeout(Duration::from_millis(10))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("failure timeout"), "{e}");
        // A few heartbeats at least, and a floor a loaded host can meet.
        let timing = |hb, timeout| {
            Config::new(1, members())
                .with_heartbeat_interval(Duration::from_millis(hb))
                .with_failure_timeout(Duration::from_millis(timeout))
                .validate()
        };
        let e = timing(100, 250).unwrap_err();
        assert!(e.to_string().contains("3 heartbeat intervals"), "{e}");
        let e = timing(1, 2).unwrap_err();
        assert!(e.to_string().contains("at least 3"), "{e}");
        let e = timing(10, 40).unwrap_err();
        assert!(e.to_string().contains("minimum of 50ms"), "{e}");
        assert!(timing(10, 50).is_ok());
        assert!(timing(100, 300).is_ok());
        let e = Config::new(1, members())
            .with_io_coalesce(MAX_IO_COALESCE + Duration::from_micros(1))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("coalescing interval"), "{e}");
        for ok in [Duration::ZERO, MAX_IO_COALESCE] {
            assert!(Config::new(1, members())
                .with_io_coalesce(ok)
                .validate()
                .is_ok());
        }
    }
}

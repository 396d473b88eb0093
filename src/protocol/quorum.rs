//! When a member may be taken out of the view: on evidence that its process is gone,
//! or with the agreement of a majority.

/// How a group decides that a member it cannot hear from is gone.
///
/// A failure detector cannot tell a crashed process from a slow, paused or
/// partitioned one. *Evidence* can: a peer's TCP connection reset or closed without
/// the peer saying it closes on purpose, or its Leave. What a member learns only from
/// silence (the failure timeout) or from a peer that closed on purpose is
/// *suspicion*.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Quorum {
    /// Safe under partitions, pauses and false suspicions (the default). A member
    /// leaves the view on evidence that its process is gone, or when the members
    /// that can still reach one another are a majority of the view (not counting
    /// members with evidence of their end). A member that cannot reach such a
    /// majority stops: its relayer orders nothing more, it refuses broadcasts, and
    /// it reports [`Event::NoQuorum`](super::Event::NoQuorum). A new relayer finishes
    /// synchronization only with the reports of such a majority, and a member
    /// follows a new relayer only once it suspects every member ranked before it: one
    /// member's suspicion never deposes a relayer the others still hear.
    #[default]
    Majority,
    /// Every suspicion is final and acts at once, as if it were evidence (the
    /// seed's crash-stop model): the fastest reaction, and any sequence of failures
    /// is survived with no majority, but a partition, a long pause or a false
    /// suspicion splits the group into parts that each go on with their own order.
    /// For a group on one host, or with a failure detector that never errs.
    None,
}

//! What a member counts of its own work, for monitoring.

/// Counts of what a member did over its life, for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Application messages this member sequenced as relayer.
    pub relayed_msgs: u64,
    /// Relays this member sent as repairs, leading a synchronization phase.
    pub repaired_relays: u64,
    /// *Relayer changed* events this member applied (fail-overs and hand-overs).
    pub relayer_changes: u64,
}

//! A run's configuration: its seed, group size, buffering and fault profile, with
//! the text form a failing run prints and `replay` parses.

use std::fmt;
use std::str::FromStr;

use crate::protocol::{Buffering, Delivery, PlantedBug, Quorum};

/// Which failures a run injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultProfile {
    /// No failures: ordering and delivery under random interleavings only.
    NoFaults,
    /// The relayer crashes (process crash) in the middle of a fan-out.
    RelayerCrash,
    /// The relayer crashes mid fan-out, then the new relayer crashes during the
    /// synchronization phase it leads.
    CrashDuringSync,
    /// Up to N-1 crashes in a row, of relayers and clients, process crashes and hosts
    /// vanishing, at random moments (synchronization phases included).
    Cascade,
    /// The relayer's host vanishes with relays in flight.
    RelayerHostVanishes,
    /// Up to N-1 crashes; once the group is quiet, every crashed member comes back as
    /// a new incarnation and joins, while everyone broadcasts again — and, in half the
    /// runs, the relayer crashes while the joins are under way.
    Rejoin,
    /// Up to N-1 crashes, as in `cascade`; each crashed member comes back as a new
    /// incarnation within a few failure timeouts, often before the others noticed
    /// its previous incarnation fail (a join racing failure detection).
    Restart,
    /// One or two failure detectors suspect a live member (which closes the
    /// connection, so the suspected member sees the suspecter fail too).
    FalseSuspicion,
    /// The group splits into two sides that lose every link between them for a few
    /// failure timeouts, then heal.
    Partition,
    /// One member is paused for two to four failure timeouts, then carries on.
    Pause,
    /// The link between two live members carries nothing for two to eight failure
    /// timeouts (both ends time each other out), then carries traffic again.
    LinkBreak,
    /// A member leaves gracefully under traffic, the relayer in most runs (which
    /// hands its role over in the order); in some runs the leaver crashes while
    /// leaving, or the relayer crashes soon after.
    Leave,
}

impl FaultProfile {
    /// Every profile, in order.
    pub const ALL: [FaultProfile; 12] = [
        FaultProfile::NoFaults,
        FaultProfile::RelayerCrash,
        FaultProfile::CrashDuringSync,
        FaultProfile::Cascade,
        FaultProfile::RelayerHostVanishes,
        FaultProfile::Rejoin,
        FaultProfile::FalseSuspicion,
        FaultProfile::Partition,
        FaultProfile::Pause,
        FaultProfile::LinkBreak,
        FaultProfile::Leave,
        FaultProfile::Restart,
    ];

    /// Whether the profile injects faults that leave processes alive (so that a
    /// live member may be excluded, and must then be told).
    pub fn has_live_faults(self) -> bool {
        matches!(
            self,
            FaultProfile::FalseSuspicion
                | FaultProfile::Partition
                | FaultProfile::Pause
                | FaultProfile::LinkBreak
        )
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            FaultProfile::NoFaults => "none",
            FaultProfile::RelayerCrash => "relayer-crash",
            FaultProfile::CrashDuringSync => "crash-during-sync",
            FaultProfile::Cascade => "cascade",
            FaultProfile::RelayerHostVanishes => "relayer-host-vanishes",
            FaultProfile::Rejoin => "rejoin",
            FaultProfile::FalseSuspicion => "false-suspicion",
            FaultProfile::Partition => "partition",
            FaultProfile::Pause => "pause",
            FaultProfile::LinkBreak => "link-break",
            FaultProfile::Leave => "leave",
            FaultProfile::Restart => "restart",
        }
    }
}

fn bug_name(b: PlantedBug) -> &'static str {
    match b {
        PlantedBug::SkipRepair => "skip-repair",
        PlantedBug::NoDuplicateDetection => "no-duplicate-detection",
        PlantedBug::DeliverStaleEpoch => "deliver-stale-epoch",
        PlantedBug::NoHoldDuringSync => "no-hold-during-sync",
        PlantedBug::DeliverUnstable => "deliver-unstable",
    }
}

/// Everything that determines a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The seed of every random choice.
    pub seed: u64,
    /// Group size (2 to 7 in the test suite; any size from 1 works).
    pub members: usize,
    /// Buffering mode of every member.
    pub buffering: Buffering,
    /// Quorum rule of every member (text form: `quorum=none`; when absent, majority
    /// with replicated buffering and none with distributed, which needs it).
    pub quorum: Quorum,
    /// Failures to inject.
    pub profile: FaultProfile,
    /// How many messages each member broadcasts.
    pub msgs_per_member: usize,
    /// When members hand messages to the application (text form: `delivery=safe`;
    /// agreed when absent). With safe delivery the checker allows no member to have
    /// delivered anything the group did not.
    pub delivery: Delivery,
    /// A bug to plant in every member (tests of the checker only).
    pub planted_bug: Option<PlantedBug>,
}

impl SimConfig {
    /// A run of `members` members with `profile`, 12 messages per member.
    pub fn new(seed: u64, members: usize, buffering: Buffering, profile: FaultProfile) -> Self {
        SimConfig {
            seed,
            members,
            buffering,
            // Distributed buffering needs it (`CoreConfig::validate`).
            quorum: match buffering {
                Buffering::Replicated => Quorum::Majority,
                Buffering::Distributed => Quorum::None,
            },
            profile,
            msgs_per_member: 12,
            delivery: Delivery::Agreed,
            planted_bug: None,
        }
    }
}

impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = match self.buffering {
            Buffering::Replicated => "replicated",
            Buffering::Distributed => "distributed",
        };
        write!(
            f,
            "seed={},members={},buffering={},profile={},msgs={}",
            self.seed,
            self.members,
            b,
            self.profile.name(),
            self.msgs_per_member
        )?;
        if self.quorum == Quorum::None {
            write!(f, ",quorum=none")?;
        }
        if self.delivery == Delivery::Safe {
            write!(f, ",delivery=safe")?;
        }
        if let Some(bug) = self.planted_bug {
            write!(f, ",bug={}", bug_name(bug))?;
        }
        Ok(())
    }
}

impl FromStr for SimConfig {
    type Err = String;

    /// Parses the form [`SimConfig`]'s `Display` prints.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut c = SimConfig::new(0, 3, Buffering::Replicated, FaultProfile::NoFaults);
        let mut quorum = None;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {part:?}"))?;
            let bad = |what: &str| format!("bad {what}: {v:?}");
            match k {
                "seed" => c.seed = v.parse().map_err(|_| bad("seed"))?,
                "members" => c.members = v.parse().map_err(|_| bad("members"))?,
                "msgs" => c.msgs_per_member = v.parse().map_err(|_| bad("msgs"))?,
                "buffering" => {
                    c.buffering = match v {
                        "replicated" => Buffering::Replicated,
                        "distributed" => Buffering::Distributed,
                        _ => return Err(bad("buffering")),
                    }
                }
                "quorum" => {
                    quorum = Some(match v {
                        "majority" => Quorum::Majority,
                        "none" => Quorum::None,
                        _ => return Err(bad("quorum")),
                    })
                }
                "delivery" => {
                    c.delivery = match v {
                        "agreed" => Delivery::Agreed,
                        "safe" => Delivery::Safe,
                        _ => return Err(bad("delivery")),
                    }
                }
                "profile" => {
                    c.profile = FaultProfile::ALL
                        .into_iter()
                        .find(|p| p.name() == v)
                        .ok_or_else(|| bad("profile"))?
                }
                "bug" => {
                    c.planted_bug = Some(
                        [
                            PlantedBug::SkipRepair,
                            PlantedBug::NoDuplicateDetection,
                            PlantedBug::DeliverStaleEpoch,
                            PlantedBug::NoHoldDuringSync,
                            PlantedBug::DeliverUnstable,
                        ]
                        .into_iter()
                        .find(|b| bug_name(*b) == v)
                        .ok_or_else(|| bad("bug"))?,
                    )
                }
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        if c.members == 0 {
            return Err("members must be at least 1".into());
        }
        c.quorum = quorum.unwrap_or(match c.buffering {
            Buffering::Replicated => Quorum::Majority,
            Buffering::Distributed => Quorum::None,
        });
        if c.buffering == Buffering::Distributed && c.quorum != Quorum::None {
            return Err("distributed buffering needs quorum=none".into());
        }
        Ok(c)
    }
}

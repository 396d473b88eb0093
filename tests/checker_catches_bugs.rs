//! The checker is only worth its silence if it speaks up: each test plants a bug in
//! the protocol core and asserts that the simulator's checker names the property the
//! bug violates, and that the same run without the bug holds every property.

use abcast::protocol::{Delivery, PlantedBug};
use abcast::sim::{check_all, run_and_check, FaultProfile, Property, Sim, SimConfig};
use abcast::{Buffering, Quorum};

/// Searches seeds until the planted bug shows; returns every property it violated.
fn violations(bug: PlantedBug, profile: FaultProfile, members: usize) -> Vec<Property> {
    violations_with(bug, profile, members, Quorum::Majority)
}

/// [`violations`] under the quorum rule `quorum`.
fn violations_with(
    bug: PlantedBug,
    profile: FaultProfile,
    members: usize,
    quorum: Quorum,
) -> Vec<Property> {
    violations_of(bug, profile, members, |cfg| cfg.quorum = quorum)
}

/// [`violations`] in runs that `adjust` configures.
fn violations_of(
    bug: PlantedBug,
    profile: FaultProfile,
    members: usize,
    adjust: impl Fn(&mut SimConfig),
) -> Vec<Property> {
    for seed in 0..5_000 {
        let mut cfg = SimConfig::new(seed, members, Buffering::Replicated, profile);
        cfg.msgs_per_member = 20;
        adjust(&mut cfg);
        cfg.planted_bug = Some(bug);
        if let Err(f) = run_and_check(&cfg) {
            eprintln!("{bug:?} caught: {f}");
            // The same schedule without the bug holds every property.
            let mut clean = cfg.clone();
            clean.planted_bug = None;
            if let Err(f) = run_and_check(&clean) {
                panic!("the run fails without the planted bug too: {f}");
            }
            let all = check_all(&Sim::new(cfg).run().record);
            return all.into_iter().map(|v| v.property).collect();
        }
    }
    panic!("{bug:?} went unnoticed in 5000 runs");
}

#[test]
fn new_relayer_skipping_the_repair_breaks_agreement() {
    let p = violations(PlantedBug::SkipRepair, FaultProfile::RelayerCrash, 4);
    assert!(p.contains(&Property::Agreement), "{p:?}");
}

#[test]
fn no_duplicate_detection_breaks_integrity() {
    let p = violations(
        PlantedBug::NoDuplicateDetection,
        FaultProfile::RelayerCrash,
        4,
    );
    assert!(p.contains(&Property::Integrity), "{p:?}");
}

/// With a majority quorum a member follows a new relayer only once it noticed the
/// old one fail, after everything the old one wrote: a stale relay can only come
/// late where a member follows at once, as with `Quorum::None`.
#[test]
fn delivering_a_stale_epoch_relay_breaks_total_order() {
    let p = violations_with(
        PlantedBug::DeliverStaleEpoch,
        FaultProfile::RelayerCrash,
        4,
        Quorum::None,
    );
    assert!(p.contains(&Property::TotalOrder), "{p:?}");
}

#[test]
fn not_holding_broadcasts_during_sync_breaks_validity() {
    let p = violations(PlantedBug::NoHoldDuringSync, FaultProfile::RelayerCrash, 4);
    assert!(p.contains(&Property::Validity), "{p:?}");
}

/// With safe delivery the checker allows a crashed member no delivery the survivors
/// do not make: delivering before stability shows as a total-order violation.
#[test]
fn delivering_before_stability_breaks_uniform_agreement() {
    let p = violations_of(
        PlantedBug::DeliverUnstable,
        FaultProfile::RelayerCrash,
        4,
        |cfg| cfg.delivery = Delivery::Safe,
    );
    assert!(p.contains(&Property::TotalOrder), "{p:?}");
}

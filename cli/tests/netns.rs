//! Three (or four) `abcast node` members on a private network of namespaces (see
//! `common/netns.rs`), every member broadcasting, under the faults of a real
//! network: a host that drops off the network for good (silent host loss: no FIN,
//! no RST), a partition that heals, a process paused three seconds (six failure
//! timeouts), a link that flaps, and a group of four split so that no side has a
//! majority. Member 1 is the first relayer.
//!
//! Each case asserts, from the members' own output:
//! - members that were not told `event excluded` never bind one seq to two
//!   different messages, and a member that was told (or whose host was lost) agrees
//!   with them up to a point and differs for at most a relay window of entries;
//! - the majority side keeps delivering during the fault, and a side without a
//!   majority delivers nothing once two failure timeouts (and a margin) have passed;
//! - after the heal, every member is either excluded and knows it (it exits with
//!   status 2) or back in one group that delivers what every member of it broadcast:
//!   nothing a member of the final group broadcast is lost, and nothing is
//!   delivered twice.
//!
//! The tests need root and `ip` (iproute2). Without them they print why and pass,
//! unless `ABCAST_NETNS_REQUIRED=1` is set (as in `.ci/run`), which makes them fail.
//! The cases run one at a time.

mod common;
#[path = "common/netns.rs"]
mod net;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{wait_until, Delivery, NodeProc};
use net::Net;

/// The cases share the machine's CPUs and timing: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const MEMBERS: [u32; 3] = [1, 2, 3];
const FOUR: [u32; 4] = [1, 2, 3, 4];
const RELAYER: u32 = 1;
const CLIENT: u32 = 3;
const HEARTBEAT_MS: &str = "100";
const FAILURE_TIMEOUT_MS: &str = "500";
/// Every member broadcasts one line this often.
const PACE: Duration = Duration::from_millis(5);
/// The relay window at default settings: the most messages an excluded member or a
/// lost host can have delivered beyond the group, plus a *process left* per member
/// and a *relayer changed* per epoch it went through (the simulator's
/// `tail_bound`).
fn tail_bound(members: usize) -> u64 {
    abcast::runtime::DEFAULT_RELAY_WINDOW_MSGS + 2 * members as u64
}
/// How long after the fault's start the minority must have stopped delivering (two
/// failure timeouts and a margin).
const MINORITY_QUIET_AFTER: Duration = Duration::from_millis(2 * 500 + 500);
/// From when after the fault's start the majority must be delivering again (two
/// failure timeouts and a second).
const MAJORITY_BACK_AFTER: Duration = Duration::from_millis(2 * 500 + 1000);

/// One fault, held for its duration and then healed (except a lost host).
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The member's link goes down and stays down to the end.
    HostLost(u32),
    /// The member's link is down for the duration, then up again.
    Partition(u32, Duration),
    /// SIGSTOP for the duration, then SIGCONT.
    Pause(u32, Duration),
    /// The member's link goes down for `down`, up for `up`, `times` times.
    Flap {
        member: u32,
        down: Duration,
        up: Duration,
        times: u32,
    },
    /// Both members' links are down for the duration, then up again.
    Split(u32, u32, Duration),
}

impl Fault {
    /// The members the fault cuts off.
    fn cut(self) -> Vec<u32> {
        match self {
            Fault::HostLost(m) | Fault::Partition(m, _) | Fault::Pause(m, _) => vec![m],
            Fault::Flap { member, .. } => vec![member],
            Fault::Split(a, b, _) => vec![a, b],
        }
    }

    /// Whether the faulty member is cut off long enough that the others must
    /// go on without it, and it must stand still (a flapping link may or may not
    /// cost a member, depending on how its downs fall against the timeout).
    fn splits(self) -> bool {
        !matches!(self, Fault::Flap { .. })
    }

    fn heals(self) -> bool {
        !matches!(self, Fault::HostLost(_))
    }
}

/// The running group: members first, so that they are killed before the network
/// they run in is removed.
struct Group {
    procs: Vec<NodeProc>,
    net: Net,
    members: Vec<u32>,
}

impl Group {
    fn start(case: &str, members_ids: &[u32]) -> Group {
        let net = Net::create(case, members_ids);
        let members = net.member_list();
        let mut procs = Vec::new();
        for &id in members_ids {
            let ns = net.member_ns(id);
            let wrapper = ["ip", "netns", "exec", ns.as_str()];
            let extra = [
                "--heartbeat-ms",
                HEARTBEAT_MS,
                "--failure-timeout-ms",
                FAILURE_TIMEOUT_MS,
                "--startup-timeout-ms",
                "20000",
            ];
            procs.push(NodeProc::spawn_under(&wrapper, id, &members, &extra));
        }
        for p in &mut procs {
            p.feed(u64::MAX, PACE);
        }
        let group = Group {
            procs,
            net,
            members: members_ids.to_vec(),
        };
        let formed = wait_until(Duration::from_secs(30), || {
            group.procs.iter().all(|p| {
                let origins: HashSet<u32> = p.deliveries().iter().map(|d| d.origin).collect();
                members_ids.iter().all(|m| origins.contains(m))
            })
        });
        assert!(formed, "the group did not form:\n{}", group.stderr_all());
        group
    }

    fn proc(&self, id: u32) -> &NodeProc {
        self.procs.iter().find(|p| p.id == id).expect("member")
    }

    fn stderr_all(&self) -> String {
        self.procs
            .iter()
            .map(|p| format!("--- member {} stderr:\n{}", p.id, p.stderr_text()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many lines each member has been fed so far.
    fn fed(&self) -> BTreeMap<u32, u64> {
        use std::sync::atomic::Ordering;
        self.procs
            .iter()
            .map(|p| (p.id, p.fed.load(Ordering::SeqCst)))
            .collect()
    }

    fn told_excluded(&self, id: u32) -> bool {
        self.proc(id)
            .stderr_text()
            .lines()
            .any(|l| l == "event excluded")
    }

    /// Applies `fault` and returns once it is over (healed, or for a lost host,
    /// once its duration has passed), with the moment just before the heal. The
    /// sleeps here are the fault's duration.
    fn inject(&self, fault: Fault, lost_for: Duration) -> Instant {
        let before_heal;
        match fault {
            Fault::HostLost(m) => {
                self.net.set_link(m, false);
                std::thread::sleep(lost_for);
                before_heal = Instant::now();
            }
            Fault::Partition(m, d) => {
                self.net.set_link(m, false);
                std::thread::sleep(d);
                before_heal = Instant::now();
                self.net.set_link(m, true);
            }
            Fault::Split(a, b, d) => {
                self.net.set_link(a, false);
                self.net.set_link(b, false);
                std::thread::sleep(d);
                before_heal = Instant::now();
                self.net.set_link(a, true);
                self.net.set_link(b, true);
            }
            Fault::Pause(m, d) => {
                self.proc(m).freeze();
                std::thread::sleep(d);
                before_heal = Instant::now();
                self.proc(m).thaw();
            }
            Fault::Flap {
                member,
                down,
                up,
                times,
            } => {
                for _ in 0..times {
                    self.net.set_link(member, false);
                    std::thread::sleep(down);
                    self.net.set_link(member, true);
                    std::thread::sleep(up);
                }
                before_heal = Instant::now();
            }
        }
        before_heal
    }
}

/// Whether this machine can run the cases; a printed reason when not.
fn available() -> bool {
    let Some(why) = net::unavailable() else {
        return true;
    };
    if std::env::var("ABCAST_NETNS_REQUIRED").as_deref() == Ok("1") {
        panic!("ABCAST_NETNS_REQUIRED=1 but network namespaces are unavailable: {why}");
    }
    eprintln!("skipped: network namespaces are unavailable ({why}); needs root and iproute2");
    false
}

/// Deliveries read in `[from, to)`.
fn read_between(p: &NodeProc, from: Instant, to: Instant) -> Vec<Delivery> {
    p.timed_deliveries()
        .into_iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|(_, d)| d)
        .collect()
}

/// The longest time between two deliveries read in `[from, to]` (or between `from`
/// and the first of them): how long the group stood still, for the test log.
fn longest_gap(p: &NodeProc, from: Instant, to: Instant) -> Duration {
    let mut last = from;
    let mut longest = Duration::ZERO;
    for (t, _) in p.timed_deliveries() {
        if t < from || t > to {
            continue;
        }
        longest = longest.max(t - last);
        last = t;
    }
    longest.max(to - last)
}

/// The message number of a payload `m<origin>-<k>`.
fn number(d: &Delivery) -> u64 {
    d.payload
        .rsplit('-')
        .next()
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("unexpected payload {:?}", d.payload))
}

fn run(case: &str, fault: Fault) {
    run_with(case, &MEMBERS, fault);
}

fn run_with(case: &str, members: &[u32], fault: Fault) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    let mut g = Group::start(case, members);
    let cut = fault.cut();
    let faulty = cut[0];
    let others: Vec<u32> = members
        .iter()
        .copied()
        .filter(|m| !cut.contains(m))
        .collect();
    // The side without the cut-off members may go on only with a majority.
    let majority_side = others.len() * 2 > members.len();
    let quiet_side: Vec<u32> = if majority_side {
        cut.clone()
    } else {
        members.to_vec()
    };
    let lost_for = Duration::from_secs(4);

    let fault_start = Instant::now();
    let fault_end = g.inject(fault, lost_for);
    let fed_at_heal = g.fed();

    for &m in &others {
        eprintln!(
            "{case}: member {m}'s longest pause in deliveries during the fault: {} ms \
             (failure timeout {FAILURE_TIMEOUT_MS} ms)",
            longest_gap(g.proc(m), fault_start, fault_end).as_millis()
        );
    }
    if fault.splits() && majority_side {
        // The majority side kept delivering, from both of its members.
        for &m in &others {
            let got = read_between(g.proc(m), fault_start + MAJORITY_BACK_AFTER, fault_end);
            for &o in &others {
                assert!(
                    got.iter().any(|d| d.origin == o),
                    "{case}: member {m} delivered nothing from member {o} while member \
                     {faulty} was cut off\n{}",
                    g.stderr_all()
                );
            }
        }
    }
    if fault.splits() {
        for &m in &quiet_side {
            // A member cut off by the network from a majority knows it has none.
            if matches!(
                fault,
                Fault::Partition(..) | Fault::HostLost(_) | Fault::Split(..)
            ) {
                assert!(
                    g.proc(m)
                        .stderr_text()
                        .lines()
                        .any(|l| l == "event no-quorum"),
                    "{case}: member {m}, without a majority, never reported that it has \
                     no quorum\n{}",
                    g.stderr_all()
                );
            }
            // A side without a majority delivered nothing new once the timeouts
            // had passed.
            let quiet = read_between(g.proc(m), fault_start + MINORITY_QUIET_AFTER, fault_end);
            assert!(
                quiet.is_empty(),
                "{case}: member {m}, without a majority, delivered {} messages, first {:?}",
                quiet.len(),
                quiet.first()
            );
        }
    }

    // After the heal: every member is excluded and knows it, or delivers what the
    // others of the final group broadcast after the heal. A lost host stays lost.
    let settle = |g: &Group| {
        let in_final = |m: u32| !(g.told_excluded(m) || !fault.heals() && m == faulty);
        members.iter().filter(|m| in_final(**m)).all(|&m| {
            let got = g.proc(m).deliveries();
            members.iter().filter(|o| in_final(**o)).all(|&o| {
                got.iter()
                    .any(|d| d.origin == o && number(d) > fed_at_heal[&o])
            })
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), || settle(&g)),
        "{case}: after the fault the group is neither whole nor told who was excluded\n{}",
        g.stderr_all()
    );
    let lost = !fault.heals();
    let in_final: Vec<u32> = members
        .iter()
        .copied()
        .filter(|m| !(g.told_excluded(*m) || lost && *m == faulty))
        .collect();
    // After a split with no majority anywhere, the members excluded and told may
    // be half of the group (their exits are evidence: the rest may go on).
    let least = if majority_side {
        members.len() / 2 + 1
    } else {
        members.len() / 2
    };
    assert!(
        in_final.len() >= least,
        "{case}: only {in_final:?} are left in the group\n{}",
        g.stderr_all()
    );

    // Nothing lost: stop broadcasting; the final group delivers every line its
    // members were fed.
    for p in &mut g.procs {
        p.stop_feeding
            .store(true, std::sync::atomic::Ordering::SeqCst);
        p.join_feeder();
    }
    let fed = g.fed();
    let complete = |g: &Group| {
        in_final.iter().all(|&m| {
            let got: HashSet<(u32, u64)> = g
                .proc(m)
                .deliveries()
                .iter()
                .map(|d| (d.origin, number(d)))
                .collect();
            in_final
                .iter()
                .all(|&o| (1..=fed[&o]).all(|k| got.contains(&(o, k))))
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), || complete(&g)),
        "{case}: the final group {in_final:?} did not deliver every line its members \
         were fed ({fed:?})\n{}",
        g.stderr_all()
    );

    // The ends: the excluded exit 2 by themselves; the rest leave on SIGTERM; a lost
    // host is killed.
    for &m in members {
        let p = g.procs.iter_mut().find(|p| p.id == m).expect("member");
        if lost && m == faulty && !in_final.contains(&m) {
            p.kill9();
        } else if !in_final.contains(&m) {
            assert_eq!(
                p.wait_exit(Duration::from_secs(10)),
                Some(2),
                "{case}: excluded member {m} did not exit with status 2"
            );
        }
    }
    for &m in &in_final {
        g.proc(m).terminate();
    }
    for &m in &in_final {
        let p = g.procs.iter_mut().find(|p| p.id == m).expect("member");
        assert_eq!(
            p.wait_exit(Duration::from_secs(15)),
            Some(0),
            "{case}: member {m} did not leave cleanly"
        );
    }
    check_order(case, &g, &in_final);
    eprintln!(
        "{case}: final group {in_final:?}, each delivered {} messages\n{}",
        g.proc(in_final[0]).deliveries().len(),
        g.stderr_all()
    );
}

/// No duplicates, each origin's messages in the order it broadcast them, members
/// of the final group agree at every seq, and the others agree with them up to a
/// tail of at most [`tail_bound`] entries.
fn check_order(case: &str, g: &Group, in_final: &[u32]) {
    let logs: BTreeMap<u32, BTreeMap<u64, Delivery>> = g
        .procs
        .iter()
        .map(|p| {
            (
                p.id,
                p.deliveries().into_iter().map(|d| (d.seq, d)).collect(),
            )
        })
        .collect();
    for (m, log) in &logs {
        let mut seen = HashSet::new();
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for d in log.values() {
            assert!(
                seen.insert((d.origin, number(d))),
                "{case}: member {m} delivered {:?} twice",
                d.payload
            );
            let k = number(d);
            let prev = last.insert(d.origin, k).unwrap_or(0);
            assert!(
                k > prev,
                "{case}: member {m} delivered {:?} after m{}-{prev}",
                d.payload,
                d.origin
            );
        }
    }
    let reference = in_final[0];
    for &a in in_final {
        for (seq, d) in &logs[&a] {
            for &b in in_final {
                if let Some(e) = logs[&b].get(seq) {
                    assert_eq!(
                        (d.origin, &d.payload),
                        (e.origin, &e.payload),
                        "{case}: members {a} and {b}, neither told it was excluded, \
                         bound seq {seq} to different messages"
                    );
                }
            }
        }
    }
    for (&x, log) in logs.iter().filter(|(x, _)| !in_final.contains(x)) {
        let group = &logs[&reference];
        let first = log
            .iter()
            .find(|(seq, d)| group.get(seq).is_some_and(|e| e != *d))
            .map(|(seq, _)| *seq);
        if let (Some(first), Some(end)) = (first, log.keys().next_back()) {
            let tail = end - first + 1;
            eprintln!(
                "{case}: member {x}, out of the group, differs from seq {first} on \
                 ({tail} entries)"
            );
            let bound = tail_bound(g.members.len());
            assert!(
                tail <= bound,
                "{case}: member {x} (out of the group) differs from seq {first} on for \
                 {tail} entries (at most {bound})"
            );
        }
    }
}

#[test]
fn relayer_host_lost_without_fin_or_rst() {
    run("lost-r", Fault::HostLost(RELAYER));
}

#[test]
fn client_host_lost_without_fin_or_rst() {
    run("lost-c", Fault::HostLost(CLIENT));
}

#[test]
fn relayer_partitioned_four_seconds_then_healed() {
    run("part-r", Fault::Partition(RELAYER, Duration::from_secs(4)));
}

#[test]
fn client_partitioned_four_seconds_then_healed() {
    run("part-c", Fault::Partition(CLIENT, Duration::from_secs(4)));
}

#[test]
fn relayer_paused_three_seconds() {
    run("pause-r", Fault::Pause(RELAYER, Duration::from_secs(3)));
}

#[test]
fn client_paused_three_seconds() {
    run("pause-c", Fault::Pause(CLIENT, Duration::from_secs(3)));
}

#[test]
fn a_link_between_live_members_flaps() {
    run(
        "flap",
        Fault::Flap {
            member: 2,
            down: Duration::from_millis(700),
            up: Duration::from_millis(300),
            times: 5,
        },
    );
}

#[test]
fn four_members_split_with_no_majority_anywhere_then_healed() {
    // Members 1 and 2 each alone, 3 and 4 together: two of four is no majority.
    run_with("split", &FOUR, Fault::Split(1, 2, Duration::from_secs(4)));
}

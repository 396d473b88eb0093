//! Running a benchmark group from start to stop: the coordinator side of
//! `abcast bench` and `abcast demo`.
//!
//! Every wait has a deadline; every process still running when the run ends is
//! killed by its PID.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::clock::Clock;
use super::cpu::CpuMeter;
use super::group::{GroupOutcome, GroupSpec, MemberOutcome, Mode, Progress, Ui};
use super::handle::{spawn_process, spawn_thread, start_forwarder, Handle, Msg};
use super::member::Ctrl;
use super::procfs::peak_rss_bytes;
use super::protocol::Report;

/// Free loopback addresses (bound to port 0, then released).
pub fn free_addrs(n: usize) -> Result<Vec<SocketAddr>, String> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    ls.iter()
        .map(|l| l.local_addr().map_err(|e| e.to_string()))
        .collect()
}

/// Runs one group from start to stop. Errors of the run are in the outcome's
/// `errors`; an `Err` means it could not start at all.
pub fn run_group(spec: &GroupSpec, ui: &mut dyn Ui) -> Result<GroupOutcome, String> {
    let clock = Clock::new();
    let started = Instant::now();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut forwarder = None;
    let mut addrs: Vec<Option<SocketAddr>> = vec![None; spec.nodes];
    let mut members_list = String::new();
    match spec.mode {
        Mode::RawTcp => {
            forwarder = Some(start_forwarder(spec.nodes, spec.runtime.realtime_priority)?)
        }
        Mode::Abcast => {
            let a = free_addrs(spec.nodes)?;
            members_list = a
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{}={a}", i + 1))
                .collect::<Vec<_>>()
                .join(",");
            addrs = a.into_iter().map(Some).collect();
        }
    }
    let fwd_addr = forwarder.as_ref().map(|f| f.addr);
    let mut handles = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let id = i as u32 + 1;
        let args = spec.member_args(id, &members_list, fwd_addr);
        let h = if spec.in_process {
            spawn_thread(args, i, &tx)?
        } else {
            spawn_process(&spec.member_cmdline(&args), i, &tx)?
        };
        ui.started(id, h.pid(), *addr);
        handles.push(h);
    }
    drop(tx);
    let mut out = GroupOutcome {
        members: (0..spec.nodes)
            .map(|i| MemberOutcome {
                id: i as u32 + 1,
                pid: handles[i].pid(),
                ..MemberOutcome::default()
            })
            .collect(),
        ..GroupOutcome::default()
    };
    let mut closed = vec![false; spec.nodes];
    let pids: Vec<Option<u32>> = handles.iter().map(Handle::pid).collect();
    let mut cpu = CpuMeter::new(&pids, forwarder.as_ref().and_then(|f| f.handle.pid()));
    let result = drive(
        spec,
        ui,
        &clock,
        started,
        &rx,
        &mut handles,
        &mut out,
        &mut closed,
        &mut cpu,
    );
    out.cpu = cpu.result();
    match result {
        // Every member is done: now they may leave.
        Ok(()) => {
            for h in handles.iter_mut() {
                h.send(Ctrl::Leave);
            }
        }
        Err(e) => {
            out.errors.push(e);
            for h in handles.iter_mut() {
                h.send(Ctrl::Abort);
            }
        }
    }
    ui.finished();
    // Stop: members leave by themselves once done; reap them, kill what is left.
    let deadline = Instant::now() + Duration::from_secs(15);
    for (i, h) in handles.iter_mut().enumerate() {
        let m = &mut out.members[i];
        if m.killed {
            continue;
        }
        match h.finish(deadline) {
            Ok(Some(0)) | Ok(None) => {}
            Ok(Some(code)) => {
                if m.failure.is_none() {
                    m.failure = Some(format!("exited with code {code}"));
                }
            }
            Err(e) => m.failure = Some(e),
        }
        m.stderr_tail = h.stderr_tail();
    }
    if let Some(mut f) = forwarder {
        if let Err(e) = f.handle.finish(Instant::now() + Duration::from_secs(5)) {
            out.errors.push(format!("forwarder: {e}"));
        }
    }
    for m in &out.members {
        if let Some(f) = &m.failure {
            out.errors.push(format!("member {}: {f}", m.id));
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn drive(
    spec: &GroupSpec,
    ui: &mut dyn Ui,
    clock: &Clock,
    started: Instant,
    rx: &Receiver<Msg>,
    handles: &mut [Handle],
    out: &mut GroupOutcome,
    closed: &mut [bool],
    cpu: &mut CpuMeter,
) -> Result<(), String> {
    let n = spec.nodes;
    // 1. Every member ready.
    let mut ready = vec![false; n];
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    while !ready.iter().all(|r| *r) {
        let left = ready_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Report(i, Report::Ready { connected, failed })) => {
                ready[i] = true;
                ui.ready(i as u32 + 1, &connected, &failed, started.elapsed());
                if !failed.is_empty() {
                    return Err(format!(
                        "member {} started without members {failed:?}",
                        i + 1
                    ));
                }
            }
            Ok(Msg::Report(i, Report::Failed(e))) => {
                out.members[i].failure = Some(e.clone());
                return Err(format!("member {} failed to start: {e}", i + 1));
            }
            Ok(Msg::Report(..)) => {}
            Ok(Msg::Closed(i)) => {
                closed[i] = true;
                return Err(format!(
                    "member {} ended before it was ready; its stderr:\n{}",
                    i + 1,
                    handles[i].stderr_tail().join("\n")
                ));
            }
            Err(_) => {
                let missing: Vec<usize> = (0..n).filter(|i| !ready[*i]).map(|i| i + 1).collect();
                return Err(format!("members {missing:?} not ready within 30 s"));
            }
        }
    }
    out.formed_in = started.elapsed();
    ui.formed(out.formed_in);

    // 2. The load.
    let t_go = clock.now_ns() + 100_000_000;
    let t_end = t_go + spec.duration.as_nanos() as u64;
    out.t_go = t_go;
    out.t_end = t_end;
    for h in handles.iter_mut() {
        h.send(Ctrl::Go { t_go, t_end });
    }
    let mut kill_at = spec
        .kill_after
        .map(|d| t_go + d.as_nanos() as u64)
        .filter(|_| n > 1);
    // The CPU time is sampled over the window the members measure.
    let mut cpu_from = Some(t_go + spec.warmup.as_nanos() as u64);
    let hard_deadline = t_end + 90_000_000_000;
    let mut delivered = vec![0u64; n];
    let mut sent = vec![0u64; n];
    let mut done = vec![false; n];
    // Per member: (when its progress report arrived, what it had delivered), over
    // the last second or so: its delivery rate.
    let mut history: Vec<VecDeque<(u64, u64)>> = vec![VecDeque::new(); n];
    let mut next_tick = clock.now_ns();
    let mut drained_told = false;
    loop {
        let live: Vec<usize> = (0..n).filter(|i| !out.members[*i].killed).collect();
        if live.iter().all(|i| done[*i] || closed[*i]) {
            return Ok(());
        }
        let now = clock.now_ns();
        if now > hard_deadline {
            let missing: Vec<u32> = live
                .iter()
                .filter(|i| !done[**i])
                .map(|i| *i as u32 + 1)
                .collect();
            return Err(format!("members {missing:?} did not finish in time"));
        }
        if cpu_from.is_some_and(|c| now >= c) {
            cpu_from = None;
            cpu.start();
        }
        if let Some(k) = kill_at {
            if now >= k {
                kill_at = None;
                cpu.end_member(0);
                let t = clock.now_ns();
                out.t_kill = Some(t);
                out.members[0].sampled_rss = out.members[0]
                    .sampled_rss
                    .max(handles[0].pid().and_then(|p| peak_rss_bytes(Some(p))));
                handles[0].kill();
                out.members[0].killed = true;
                ui.killed(1, handles[0].pid(), (t - t_go) as f64 / 1e9);
                continue;
            }
        }
        if now >= t_end && !drained_told {
            drained_told = true;
            cpu.end();
            ui.draining();
        }
        if now >= next_tick {
            next_tick = now + 250_000_000;
            for i in &live {
                if let Some(p) = handles[*i].pid() {
                    let m = &mut out.members[*i];
                    m.sampled_rss = m.sampled_rss.max(peak_rss_bytes(Some(p)));
                }
            }
            let min = live.iter().map(|i| delivered[*i]).min().unwrap_or(0);
            let rate = live
                .iter()
                .map(|i| {
                    let h = &history[*i];
                    match (h.front(), h.back()) {
                        (Some((t0, d0)), Some((t1, d1))) if t1 > t0 => {
                            d1.saturating_sub(*d0) as f64 * 1e9 / (t1 - t0) as f64
                        }
                        _ => 0.0,
                    }
                })
                .sum::<f64>()
                / live.len().max(1) as f64;
            ui.progress(&Progress {
                elapsed: (now as f64 - t_go as f64) / 1e9,
                total: spec.duration.as_secs_f64(),
                min_delivered: min,
                rate,
                sent: sent.iter().sum(),
                live: live.len(),
            });
        }
        let mut wake = next_tick;
        if !drained_told {
            wake = wake.min(t_end);
        }
        if let Some(k) = kill_at {
            wake = wake.min(k);
        }
        if let Some(c) = cpu_from {
            wake = wake.min(c);
        }
        let wait = Duration::from_nanos(wake.saturating_sub(clock.now_ns()));
        match rx.recv_timeout(wait) {
            Ok(Msg::Report(i, r)) => match r {
                Report::Progress {
                    delivered: d,
                    sent: s,
                } => {
                    delivered[i] = d;
                    sent[i] = s;
                    let t = clock.now_ns();
                    let h = &mut history[i];
                    h.push_back((t, d));
                    while h.len() > 2 && t - h[0].0 > 1_000_000_000 {
                        h.pop_front();
                    }
                }
                Report::Left { member, seq, .. } => {
                    // A member that finished leaves only after every end message
                    // was ordered, so no member still counting delivers its leave:
                    // a member leaving while the run goes on that was not killed was
                    // excluded (suspected by the failure detector).
                    let killed = out
                        .members
                        .get(member as usize - 1)
                        .is_some_and(|m| m.killed);
                    if !killed {
                        out.errors.push(format!(
                            "member {}: member {member} left the view at position {seq} \
                             although it was not killed (suspected by the failure detector?)",
                            i + 1
                        ));
                    }
                    ui.membership(i as u32 + 1, &r, out.t_kill)
                }
                Report::RelayerChanged { .. } => ui.membership(i as u32 + 1, &r, out.t_kill),
                Report::CheckFailed(m) => out.check_failures.push(m),
                Report::Done(s) => {
                    done[i] = true;
                    delivered[i] = delivered[i].max(s.delivered);
                    out.members[i].summary = Some(*s);
                }
                Report::Failed(e) => {
                    if !out.members[i].killed {
                        out.members[i].failure = Some(e.clone());
                        return Err(format!("member {} failed: {e}", i + 1));
                    }
                }
                Report::Ready { .. } => {}
            },
            Ok(Msg::Closed(i)) => {
                closed[i] = true;
                if !done[i] && !out.members[i].killed {
                    let msg = format!(
                        "member {} ended without finishing; its stderr:\n{}",
                        i + 1,
                        handles[i].stderr_tail().join("\n")
                    );
                    out.members[i].failure = Some("ended without finishing".into());
                    return Err(msg);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

#!/usr/bin/env bash
# Which other threads of this machine take a CPU from the group, and for how long:
# records the scheduler's switches and wake-ups on every CPU (`perf record -e
# sched:sched_switch,sched:sched_wakeup -a`) while `abcast bench` runs, then prints
# (1) every thread outside the benchmark that ran for more than 1 ms at a time, and
# (2) every wake-up of one of the benchmark's threads that waited more than 1 ms for
# its CPU, with what ran there meanwhile. Threads of other programs (an agent, a
# kernel worker) that run for milliseconds hold up every thread woken behind them
# on their CPU; under SCHED_FIFO (`--realtime-priority`, `--app-realtime-priority`)
# the group's threads preempt them instead. A host that stalls a whole vCPU shows
# here as a long run of whatever thread was on it.
#
#   bash tools/host-investigation/sched-intruders.sh [abcast bench options]
#   bash tools/host-investigation/sched-intruders.sh --rate 1400000
#   bash tools/host-investigation/sched-intruders.sh --rate 1400000 --realtime-priority 1 --app-realtime-priority 1
#
# Needs perf (Debian: linux-perf) and root, or a perf_event_paranoid that allows
# tracing; a release build (it makes one); python3. Runs `--no-baseline`, 5 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v perf >/dev/null || { echo "needs perf (Debian: apt-get install linux-perf)" >&2; exit 2; }
cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
perf record -q -e sched:sched_switch,sched:sched_wakeup -a -o "$tmp/perf.data" -- \
  "${CARGO_TARGET_DIR:-target}/release/abcast" bench --no-baseline --duration 5 "$@" >"$tmp/bench.out" 2>&1
grep -E 'latency|throughput' "$tmp/bench.out" || true
perf script -i "$tmp/perf.data" -F comm,tid,cpu,time,event,trace 2>/dev/null >"$tmp/sched.txt"
python3 - "$tmp/sched.txt" <<'PY'
import collections, re, sys

# The benchmark's own threads, by name: the member processes' main threads
# ("abcast"), the runtime's ("abcast-ID-select", "abcast-ID-relay-"), the load's
# ("bench-..."), and perf itself.
def ours(comm):
    return comm.startswith("abcast") or comm.startswith("bench-") or comm.startswith("perf")

switch = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: prev_comm=(.*?) prev_pid=\d+ .*?==> next_comm=(.*?) next_pid=(\d+)")
wakeup = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_wakeup: comm=(.*?) pid=(\d+) .*target_cpu=(\d+)")
running = {}   # cpu -> (since, comm)
woken = {}     # tid -> (time, comm)
long_runs = collections.defaultdict(list)   # comm -> [ms]
waits = collections.Counter()               # (our comm, who ran meanwhile) -> count
worst_wait = collections.defaultdict(float)
total_waits = 0
for line in open(sys.argv[1]):
    m = wakeup.search(line)
    if m:
        woken[m[4]] = (float(m[2]), m[3])
        continue
    m = switch.search(line)
    if not m:
        continue
    cpu, t, nxt, tid = int(m[1]), float(m[2]), m[4], m[5]
    if cpu in running:
        since, comm = running[cpu]
        ran_ms = (t - since) * 1000
        if ran_ms > 1 and not ours(comm) and not comm.startswith("swapper"):
            long_runs[comm].append(ran_ms)
    # Who held this CPU while the thread switched in now waited (the last one).
    before = running.get(cpu, (t, "?"))[1]
    running[cpu] = (t, nxt)
    if tid in woken:
        wt, comm = woken.pop(tid)
        wait_ms = (t - wt) * 1000
        if wait_ms > 1 and ours(comm):
            total_waits += 1
            key = (re.sub(r"-\d+-", "-N-", comm), before)
            waits[key] += 1
            worst_wait[key] = max(worst_wait[key], wait_ms)

print("\nother threads that ran over 1 ms at a time (5 s):")
if not long_runs:
    print("  none")
for comm, runs in sorted(long_runs.items(), key=lambda kv: -sum(kv[1])):
    print("  %-24s %4d times, %7.1f ms in all, longest %5.2f ms" % (comm, len(runs), sum(runs), max(runs)))
print("\nthe benchmark's wake-ups that waited over 1 ms for a CPU: %d" % total_waits)
for (comm, before), n in waits.most_common(15):
    print("  %-18s behind %-24s %4d times, longest %5.2f ms" % (comm, before, n, worst_wait[(comm, before)]))
PY

#!/usr/bin/env bash
# The latency target's procedure, repeated: a closed-loop run, then a run at half its
# throughput, RUNS times. Prints each run's peak and p99 at half of it, beside the
# raw-TCP p99 at the same rate and time (the same load generator, no protocol), the
# share of deliveries over 2 ms for both (from `--latency-trace`, leaving out the
# deliveries of the warm-up, as p99 does), how many runs were under the target, and
# the medians. What the machine does to any program (its other threads, a hypervisor)
# shows in the raw-TCP columns. KEEP_TRACES=DIR keeps each run's trace in DIR/run-N;
# `python3 tools/host-investigation/latency-episodes.py DIR/run-N` shows its episodes.
#
#   bash benches/half-peak.sh [RUNS] [extra `abcast bench` options...]
#   bash benches/half-peak.sh 10 --size 1024
#   HALF_OF=raw bash benches/half-peak.sh 10
#
# HALF_OF=raw applies the same procedure to the raw-TCP limit itself: the peak is the
# baseline's closed-loop throughput, the rate half of it, and the runs counted under
# the target are the baseline's (abcast runs too, overloaded at that rate: ignore its
# columns). It tells whether the machine lets any system meet the target at half its
# own peak.
#
# HOST_PROBE_SECS=S (default 3; 0: off) runs tools/host-investigation/host-noise.c's
# busy loops, one per vCPU at the ordinary priority, for S seconds right before and
# right after each half-rate run, and prints the gaps over 2 ms the worse vCPU's loop
# saw (before + after): how much other threads (this machine's other programs and
# kernel workers, or a hypervisor) took the CPUs around each run, so that runs can be
# compared in like conditions. The summary counts the runs under the target among
# those with at most HOST_QUIET_GAPS (default 2) such gaps, and among the others. The
# probe keeps both vCPUs busy, so it runs between the measurements, never during one.
#
# Needs a release build (it makes one, in $CARGO_TARGET_DIR if set), python3 for the
# JSON, and gcc for the probe.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
half_of=${HALF_OF:-abcast}
case "$half_of" in abcast | raw) ;; *) echo "HALF_OF must be abcast or raw" >&2; exit 2 ;; esac
target_ms=2.0
probe_secs=${HOST_PROBE_SECS:-3}
quiet_gaps=${HOST_QUIET_GAPS:-2}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/abcast
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$probe_secs" != 0 ]; then
  gcc -O2 -pthread -o "$tmp/host-noise" tools/host-investigation/host-noise.c
fi
# Gaps over 2 ms on the vCPU with the most, in one probe of $probe_secs s.
probe() {
  "$tmp/host-noise" stalls "$probe_secs" |
    awk -F'over 2 ms: ' 'NF > 1 { split($2, a, ","); if (a[1] + 0 > m) m = a[1] + 0 } END { print m + 0 }'
}
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# The share of deliveries over 2 ms in trace DIR ($1) for abcast or raw-tcp ($2),
# leaving out the first $3 ms, as the JSON's latency figures leave out the warm-up.
over() {
  python3 - "$1" "$2" "$3" <<'PY'
import csv, glob, sys
n = o = 0
skip_ms = float(sys.argv[3])
for f in glob.glob(f"{sys.argv[1]}/{sys.argv[2]}-member-*.csv"):
    with open(f, newline="") as fh:
        for row in list(csv.reader(fh))[1:]:
            if int(row[0]) < skip_ms:
                continue
            n += int(row[1]); o += int(row[3])
print("%.2f" % (100.0 * o / n) if n else "-")
PY
}
under=0
quiet_runs=0
quiet_under=0
p99s=()
raws=()
printf '%4s  %10s  %10s  %7s  %7s  %11s  %12s  %13s  %10s\n' \
  run peak half p50_ms p99_ms raw_p99_ms over_2ms_% raw_over_2ms_% host_gaps
for i in $(seq 1 "$runs"); do
  if [ "$half_of" = raw ]; then
    "$bin" bench --json "$tmp/peak.json" "$@" >/dev/null 2>&1
    peak=$(field "$tmp/peak.json" "int(d['baseline_msgs_per_sec'])")
  else
    "$bin" bench --no-baseline --json "$tmp/peak.json" "$@" >/dev/null 2>&1
    peak=$(field "$tmp/peak.json" "int(d['throughput_msgs_per_sec'])")
  fi
  half=$((peak / 2))
  trace="$tmp/trace-$i"
  gaps=-
  [ "$probe_secs" != 0 ] && gaps=$(probe)
  "$bin" bench --rate "$half" --json "$tmp/half.json" --latency-trace "$trace" "$@" >/dev/null 2>&1
  [ "$probe_secs" != 0 ] && gaps=$((gaps + $(probe)))
  p50=$(field "$tmp/half.json" "'%.2f' % (d['latency_us']['p50'] / 1000)")
  p99=$(field "$tmp/half.json" "'%.2f' % (d['latency_us']['p99'] / 1000)")
  raw=$(field "$tmp/half.json" "'%.2f' % (d['baseline_latency_us']['p99'] / 1000)")
  warmup_ms=$(field "$tmp/half.json" "d['warmup_s'] * 1000")
  printf '%4d  %10d  %10d  %7s  %7s  %11s  %12s  %13s  %10s\n' "$i" "$peak" "$half" "$p50" "$p99" "$raw" \
    "$(over "$trace" abcast "$warmup_ms")" "$(over "$trace" raw-tcp "$warmup_ms")" "$gaps"
  p99s+=("$p99")
  raws+=("$raw")
  if [ -n "${KEEP_TRACES:-}" ]; then
    mkdir -p "$KEEP_TRACES" && rm -rf "$KEEP_TRACES/run-$i" && cp -r "$trace" "$KEEP_TRACES/run-$i"
  fi
  counted=$p99
  [ "$half_of" = raw ] && counted=$raw
  quiet=0
  if [ "$gaps" != - ] && [ "$gaps" -le "$quiet_gaps" ]; then
    quiet=1
    quiet_runs=$((quiet_runs + 1))
  fi
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$counted" "$target_ms"; then
    under=$((under + 1))
    quiet_under=$((quiet_under + quiet))
  fi
done
median() { python3 -c "import statistics,sys; print('%.2f' % statistics.median(map(float, sys.argv[1:])))" "$@"; }
if [ "$half_of" = raw ]; then
  echo "raw TCP's p99 at half its own peak under $target_ms ms in $under of $runs runs; median $(median "${raws[@]}") ms (abcast's columns: overloaded, ignore)"
else
  echo "p99 at half the peak under $target_ms ms in $under of $runs runs; median p99 $(median "${p99s[@]}") ms, raw TCP's $(median "${raws[@]}") ms"
fi
if [ "$probe_secs" != 0 ]; then
  echo "host probe (2 x $probe_secs s around each run): under $target_ms ms in $quiet_under of $quiet_runs runs with at most $quiet_gaps gaps over 2 ms, in $((under - quiet_under)) of $((runs - quiet_runs)) with more"
fi

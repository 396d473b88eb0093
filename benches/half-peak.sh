#!/usr/bin/env bash
# The latency target's procedure, repeated: a closed-loop run, then a run at half its
# throughput, RUNS times; prints each run's peak and p99 at half of it, beside the
# raw-TCP p99 at the same rate and time (the same load generator, no protocol), and
# how many runs were under the target. The host's own noise shows in the raw-TCP
# column.
#
#   bash benches/half-peak.sh [RUNS] [extra `abcast bench` options...]
#   bash benches/half-peak.sh 10 --size 1024
#
# Needs a release build (it makes one) and python3 for the JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
target_ms=2.0
cargo build --release --quiet
bin=target/release/abcast
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
under=0
printf '%4s  %12s  %12s  %10s  %10s  %14s\n' run peak half p50_ms p99_ms raw_tcp_p99_ms
for i in $(seq 1 "$runs"); do
  "$bin" bench --no-baseline --json "$tmp/peak.json" "$@" >/dev/null 2>&1
  peak=$(field "$tmp/peak.json" "int(d['throughput_msgs_per_sec'])")
  half=$((peak / 2))
  "$bin" bench --rate "$half" --json "$tmp/half.json" "$@" >/dev/null 2>&1
  p50=$(field "$tmp/half.json" "'%.2f' % (d['latency_us']['p50'] / 1000)")
  p99=$(field "$tmp/half.json" "'%.2f' % (d['latency_us']['p99'] / 1000)")
  raw=$(field "$tmp/half.json" "'%.2f' % (d['baseline_latency_us']['p99'] / 1000)")
  printf '%4d  %12d  %12d  %10s  %10s  %14s\n' "$i" "$peak" "$half" "$p50" "$p99" "$raw"
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$p99" "$target_ms"; then
    under=$((under + 1))
  fi
done
echo "p99 at half the peak under $target_ms ms in $under of $runs runs"

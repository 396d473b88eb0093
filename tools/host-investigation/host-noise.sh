#!/usr/bin/env bash
# What this machine costs a latency-bound program, without abcast: how long a busy
# loop at the ordinary priority is kept off its CPU, by other threads of the machine
# or by a hypervisor (a loop on the first CPU alone, then one on every CPU), and what
# one thread waking another costs, in time and in CPU, on the same CPU and across
# CPUs (a futex ping-pong). Run it beside benches/half-peak.sh to tell the group's
# tail from what the machine does to it.
#
#   bash tools/host-investigation/host-noise.sh [SECS]     (default 5)
#   HANDOFF_ROUNDS=N    round trips per ping-pong (default 200,000)
#
# Needs gcc (it builds host-noise.c, beside this file, into a temporary directory).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-5}
rounds=${HANDOFF_ROUNDS:-200000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -pthread -o "$tmp/host-noise" host-noise.c
echo "== stalls: one busy loop, on cpu 0 alone, for $secs s"
"$tmp/host-noise" stalls "$secs" 1
echo "== stalls: one busy loop per CPU for $secs s"
"$tmp/host-noise" stalls "$secs"
echo "== hand-offs ($rounds round trips each)"
"$tmp/host-noise" handoff 0 0 "$rounds"
if [ "$(nproc)" -ge 2 ]; then
  "$tmp/host-noise" handoff 0 1 "$rounds"
fi
"$tmp/host-noise" handoff -1 -1 "$rounds"

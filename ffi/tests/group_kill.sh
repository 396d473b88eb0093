#!/usr/bin/env bash
# The 3-process C group test: three `group_member` processes on 127.0.0.1 (free ports),
# each broadcasting COUNT messages; the relayer (member 1, the lowest id) is killed with
# SIGKILL mid-stream; the two survivors must deliver identical sequences, containing
# every message of both survivors in FIFO order and a prefix of member 1's, with
# member 1's departure at the same position; member 1's own log must agree with theirs
# up to where it was killed. The survivors then get SIGTERM, leave, and must exit 0
# (they are built with AddressSanitizer by ffi/ci.sh: no error, no leak).
#
#   bash ffi/tests/group_kill.sh BIN_DIR     # BIN_DIR has group_member and free_ports
#
# Every process started is killed by PID on exit. No blind sleeps: each wait polls a
# condition until a deadline.
set -euo pipefail

bin=${1:?usage: group_kill.sh BIN_DIR}
COUNT=${COUNT:-2000}
KILL_AFTER=${KILL_AFTER:-300}   # member 1 is killed once it has logged this many events
work=$(mktemp -d)
pids=()

cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "group_kill: FAIL: $*" >&2
  for id in 1 2 3; do
    if [[ -s $work/err$id ]]; then
      echo "--- stderr of member $id:" >&2
      tail -n 40 "$work/err$id" >&2
    fi
  done
  exit 1
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 20 ms until it succeeds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
    sleep 0.02
  done
}

lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
has_lines() { (($(lines "$1") >= $2)); }
gone() { ! kill -0 "$1" 2>/dev/null; }
both_done() { [[ -f $work/done2 && -f $work/done3 ]]; }

mapfile -t ports < <("$bin/free_ports" 3)
members="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
echo "group_kill: members $members, $COUNT messages each"

declare -A pid
for id in 1 2 3; do
  "$bin/group_member" "$id" "$members" "$COUNT" "$work/log$id" "$work/done$id" \
    </dev/null >"$work/out$id" 2>"$work/err$id" &
  pid[$id]=$!
  pids+=("$!")
done
# Member 1 will be SIGKILLed: disown it so that bash does not print "Killed" (it is
# still killed by PID on exit, and bash still reaps it).
disown "${pid[1]}"

# Mid-stream: member 1 has delivered KILL_AFTER events and nobody has finished.
wait_until 60 "member 1 to log $KILL_AFTER events" has_lines "$work/log1" "$KILL_AFTER"
[[ ! -f $work/done2 && ! -f $work/done3 ]] || fail "a survivor finished before the kill: raise COUNT"
kill -KILL "${pid[1]}"
wait_until 10 "member 1 (pid ${pid[1]}) to die" gone "${pid[1]}"
echo "group_kill: killed the relayer (member 1, pid ${pid[1]}) after $(lines "$work/log1") events"

for id in 2 3; do
  gone "${pid[$id]}" && fail "member $id exited early"
done
wait_until 120 "both survivors to deliver every survivor's $COUNT messages" both_done

# Survivors leave on SIGTERM and must exit 0 (clean under AddressSanitizer).
for id in 2 3; do kill -TERM "${pid[$id]}"; done
for id in 2 3; do
  wait_until 30 "member $id to exit after SIGTERM" gone "${pid[$id]}"
  rc=0
  wait "${pid[$id]}" || rc=$?
  ((rc == 0)) || fail "member $id exited with status $rc"
done

# 1. Identical delivered sequences at the survivors.
cmp -s "$work/log2" "$work/log3" || {
  diff "$work/log2" "$work/log3" | head -n 20 >&2
  fail "the survivors' logs differ"
}

# 2. Their contents: every survivor message once and in FIFO order, member 1's a
#    FIFO prefix, sequence numbers consecutive, member 1's departure logged, and both
#    survivors still broadcasting after it (the kill was mid-stream).
awk -v count="$COUNT" '
  function bad(msg) { print "log2: " msg " (line " NR ": " $0 ")" > "/dev/stderr"; err = 1; exit 1 }
  {
    if ($2 != NR) bad("sequence numbers are not consecutive")
  }
  $1 == "D" {
    split($4, p, ":")
    if (p[1] != $3) bad("payload origin differs from the event origin")
    if (p[2] != next_k[$3] + 1) bad("not FIFO or a duplicate")
    next_k[$3] = p[2]
    if (left1 && ($3 == 2 || $3 == 3)) after[$3]++
    next
  }
  $1 == "L" { if ($3 == 1) left1 = 1; else bad("a survivor left") ; next }
  $1 == "R" || $1 == "J" { next }
  { bad("unexpected line") }
  END {
    if (err) exit 1
    if (next_k[2] != count || next_k[3] != count) { print "log2: missing survivor messages" > "/dev/stderr"; exit 1 }
    if (!left1) { print "log2: no member-left event for member 1" > "/dev/stderr"; exit 1 }
    if (after[2] == 0 || after[3] == 0) { print "log2: no survivor message after the kill" > "/dev/stderr"; exit 1 }
    printf "group_kill: survivors delivered %d events: %d from member 1, %d and %d from the survivors (%d and %d after the kill)\n", NR, next_k[1], next_k[2], next_k[3], after[2], after[3]
  }
' "$work/log2" || fail "the survivors' log is wrong"

# 3. Member 1's log agrees with the survivors' up to the point where they differ, and
#    beyond it holds only deliveries (it may have delivered a last few messages the
#    survivors never saw: delivery is not uniform).
common=$(awk 'NR == FNR { a[FNR] = $0; n = FNR; next } FNR <= n && a[FNR] == $0 { c = FNR; next } { exit } END { print c + 0 }' "$work/log2" "$work/log1")
awk -v common="$common" 'FNR > common && $1 != "D" { print "log1: line " FNR " after the common prefix is not a delivery: " $0 > "/dev/stderr"; exit 1 }' "$work/log1" \
  || fail "member 1's log disagrees with the survivors'"
echo "group_kill: member 1 logged $(lines "$work/log1") events, the first $common identical to the survivors'"
echo "group_kill: 1 passed, 0 failed"

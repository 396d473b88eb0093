#!/usr/bin/env bash
# Smoke test of the examples: three `kv` members on 127.0.0.1, fed different
# commands, must print identical `<seq> <hash> <command>` lines and the same final
# hash; two `chat` members, one line each, must both deliver both lines.
# Builds the examples in release mode; prints a PASS or FAIL line at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CARGO_TARGET_DIR:-target}/release/examples"
tmp=$(mktemp -d)
pids=()
result=""

cleanup() {
  local rc=$?
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
  if [[ -z $result ]]; then
    echo "examples smoke test: FAIL (exit status $rc)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the files "${@:2}" (their last lines), then the FAIL line with reason $1.
fail() {
  local f
  for f in "${@:2}"; do
    echo "--- $(basename "$f")"
    tail -n 20 "$f" || true
  done
  result=fail
  echo "examples smoke test: FAIL: $1"
  exit 1
}

# N free TCP ports on 127.0.0.1 (all bound at once, so they differ).
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

# The member list for ids 1..N on the given ports.
members_arg() {
  local id=1 list=""
  for port in "$@"; do
    list+="${list:+,}$id=127.0.0.1:$port"
    id=$((id + 1))
  done
  echo "$list"
}

# Starts `$bin/$1` as member $2 of group $3 in the background, stdin from the FIFO
# $tmp/$1-$2.in (the caller opens it for writing, once all members started, so that
# none inherits another's stdin), stdout and stderr to files; adds
# its PID to `pids` and to `group`, and its name to `names`.
start_member() {
  local prog=$1 id=$2 members=$3 base="$tmp/$1-$2"
  mkfifo "$base.in"
  : >"$base.out"
  "$bin/$prog" --id "$id" --members "$members" >"$base.out" 2>"$base.err" <"$base.in" &
  pids+=($!)
  group+=($!)
  names+=("$prog member $id")
}

# Polls until `$1` (a shell condition) holds, for at most $2 seconds.
wait_for() {
  local deadline=$((SECONDS + $2))
  until eval "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Fails at once if a member of `group` exited before its stdin was closed.
check_alive() {
  local i
  for i in "${!group[@]}"; do
    kill -0 "${group[i]}" 2>/dev/null || fail "${names[i]} exited early" "$tmp"/*.err
  done
}

# Whether every process in "$@" (PIDs) has exited.
all_exited() {
  local pid
  for pid in "$@"; do
    ! kill -0 "$pid" 2>/dev/null || return 1
  done
}

# Waits for each PID to exit (by the deadline of wait_for) and checks its status.
reap() {
  local what=$1
  shift
  wait_for "all_exited $*" 10 || fail "$what did not exit after end of input" "$tmp"/*.err
  local pid p rest
  for pid in "$@"; do
    wait "$pid" || fail "$what: a member exited with status $?" "$tmp"/*.err
    # Reaped: its PID may be reused, so the exit trap must not kill it.
    rest=()
    for p in "${pids[@]}"; do
      [[ $p == "$pid" ]] || rest+=("$p")
    done
    pids=(${rest[@]+"${rest[@]}"})
  done
}

echo "== building the examples"
cargo build --release -p abcast --example kv --example chat

echo "== kv: three members"
read -r -a ports <<<"$(free_ports 3)"
members=$(members_arg "${ports[@]}")
group=() names=()
for id in 1 2 3; do
  start_member kv "$id" "$members"
done
# Read-write, so that opening does not wait for the member to open its end.
exec 3<>"$tmp/kv-1.in" 4<>"$tmp/kv-2.in" 5<>"$tmp/kv-3.in"
printf '%s\n' "set a 1" "set b 2" "bogus line" "del a" "set shared one" >&3
printf '%s\n' "set c 3" "set shared two" "set onlykey" "del b" >&4
printf '%s\n' "set d 4" "" "set shared three" "del nothing" "set a 9" >&5
expected=11 # well-formed commands, all members together

applied() { grep -cE '^[0-9]+ [0-9a-f]{16} ' "$tmp/kv-$1.out" || true; }
all_applied() {
  check_alive
  for id in 1 2 3; do
    (($(applied "$id") >= expected)) || return 1
  done
}
wait_for all_applied 20 || fail "kv: not every member applied $expected commands" "$tmp"/kv-*.out "$tmp"/kv-*.err
exec 3>&- 4>&- 5>&-
reap kv "${group[@]}"

for id in 1 2 3; do
  out="$tmp/kv-$id.out"
  (($(applied "$id") == expected)) || fail "kv: member $id applied $(applied "$id") commands, not $expected" "$out"
  grep -qE '^final [0-9a-f]{16} [0-9]+$' "$out" || fail "kv: member $id printed no final line" "$out"
  grep -E '^[0-9]+ [0-9a-f]{16} ' "$out" | cut -d' ' -f1,2 >"$tmp/kv-$id.seq"
  grep '^final ' "$out" >"$tmp/kv-$id.final"
done
grep -q 'rejected' "$tmp/kv-1.err" || fail "kv: member 1 did not reject 'bogus line'" "$tmp/kv-1.err"
grep -q 'rejected' "$tmp/kv-2.err" || fail "kv: member 2 did not reject 'set onlykey'" "$tmp/kv-2.err"
for id in 2 3; do
  cmp -s "$tmp/kv-1.seq" "$tmp/kv-$id.seq" || fail "kv: members 1 and $id printed different <seq> <hash> lines" "$tmp/kv-1.out" "$tmp/kv-$id.out"
  cmp -s "$tmp/kv-1.final" "$tmp/kv-$id.final" || fail "kv: members 1 and $id ended with different maps" "$tmp/kv-1.out" "$tmp/kv-$id.out"
done
echo "kv: 3 members applied the same $expected commands in the same order; $(cat "$tmp/kv-1.final")"

echo "== chat: two members"
read -r -a ports <<<"$(free_ports 2)"
members=$(members_arg "${ports[@]}")
group=() names=()
for id in 1 2; do
  start_member chat "$id" "$members"
done
exec 6<>"$tmp/chat-1.in" 7<>"$tmp/chat-2.in"
echo "hello from 1" >&6
echo "hello from 2" >&7

delivered_both() {
  check_alive
  for id in 1 2; do
    grep -qE '^[0-9]+ 1: hello from 1$' "$tmp/chat-$id.out" || return 1
    grep -qE '^[0-9]+ 2: hello from 2$' "$tmp/chat-$id.out" || return 1
  done
}
wait_for delivered_both 15 || fail "chat: a member did not deliver both lines" "$tmp"/chat-*.out "$tmp"/chat-*.err
exec 6>&- 7>&-
reap chat "${group[@]}"
cmp -s "$tmp/chat-1.out" "$tmp/chat-2.out" || fail "chat: the members printed different deliveries" "$tmp"/chat-*.out
echo "chat: both members delivered both lines in the same order"

result=pass
echo "examples smoke test: PASS"

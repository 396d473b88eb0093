#!/usr/bin/env bash
# Everything CI does for the C API (.ci/run calls it; runnable alone from anywhere):
#   1. installs cbindgen (pinned) if missing, and checks that include/abcast.h is what
#      cbindgen makes (`make -C ffi check-header`, the same command as `make header`);
#   2. builds and installs the library (`make -C ffi install PREFIX=<temp dir>`);
#   3. compiles the header as C99, C11, C++11 and C++17 with -Wall -Wextra -Werror
#      -pedantic;
#   4. builds the examples with pkg-config, against libabcast.so (abcast.pc) and
#      libabcast.a (abcast-static.pc), the README's C example (its first ```c
#      block), and the C tests with AddressSanitizer;
#   5. runs the API tests and the 3-process relayer-kill test under AddressSanitizer
#      (no error, no leak), then the C counter example (3 processes, shared and static
#      builds mixed) and the C++ chat example (3 processes).
# Uses $CARGO_TARGET_DIR if set (else target/), a temporary prefix, and only
# 127.0.0.1. Every process it starts is killed by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$(date +%s)
say() { printf '\n-- C API: %s (%ss)\n' "$1" "$(($(date +%s) - start))"; }

CBINDGEN_VERSION=0.29.4
CC=${CC:-cc}
CXX=${CXX:-c++}
WARN=(-Wall -Wextra -Werror -pedantic)
ASAN=(-g -fsanitize=address -fno-omit-frame-pointer)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}

work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "ffi/ci.sh: FAIL: $*" >&2
  exit 1
}

# wait_exit SECONDS PID: waits (polling) for PID to exit, then returns its status.
wait_exit() {
  local deadline=$((SECONDS + $1)) pid=$2
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "process $pid still running after $1 s"
    sleep 0.02
  done
  local rc=0
  wait "$pid" || rc=$?
  return "$rc"
}

say "tools"
missing=()
for tool in "$CC" "$CXX" pkg-config readelf strip make cmake; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "missing: ${missing[*]}; installing gcc g++ pkg-config binutils make cmake"
  command -v apt-get >/dev/null || fail "no apt-get to install ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq gcc g++ pkg-config binutils make cmake >/dev/null
fi
$CC --version | head -n 1

say "cbindgen $CBINDGEN_VERSION"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if [[ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]]; then
  cargo install cbindgen --locked --version "$CBINDGEN_VERSION"
fi
cbindgen --version

say "the committed header is current"
make --no-print-directory -C ffi check-header

say "build and install the library"
prefix=$work/prefix
make --no-print-directory -C ffi install PREFIX="$prefix"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --modversion abcast
echo "abcast.pc:        $(pkg-config --cflags --libs abcast)"
echo "abcast.pc static: $(pkg-config --libs --static abcast)"
echo "abcast-static.pc: $(pkg-config --cflags --libs abcast-static)"

say "the header compiles as C99, C11, C++11, C++17"
printf '#include <abcast.h>\nint main(void) { return abcast_status_str(ABCAST_OK) == 0; }\n' >"$work/h.c"
for std in c99 c11; do
  $CC -std=$std "${WARN[@]}" $(pkg-config --cflags abcast) -c "$work/h.c" -o "$work/h-$std.o"
done
for std in c++11 c++17; do
  $CXX -std=$std "${WARN[@]}" $(pkg-config --cflags abcast) -x c++ -c "$work/h.c" -o "$work/h-$std.o"
done

say "build the examples (pkg-config, shared and static) and the tests (AddressSanitizer)"
bin=$work/bin
mkdir -p "$bin"
libdir=$(pkg-config --variable=libdir abcast)
# Shared: the library is found at run time through the rpath (or LD_LIBRARY_PATH).
$CC -std=c99 "${WARN[@]}" -O2 ffi/examples/counter.c $(pkg-config --cflags --libs abcast) \
  -Wl,-rpath,"$libdir" -o "$bin/counter"
$CC -std=c99 "${WARN[@]}" -O2 ffi/examples/counter.c $(pkg-config --cflags --libs abcast-static) \
  -o "$bin/counter-static"
$CXX -std=c++11 "${WARN[@]}" -O2 ffi/examples/chat.cpp $(pkg-config --cflags --libs abcast) \
  -Wl,-rpath,"$libdir" -o "$bin/chat"
# The README's C example (its first ```c block) compiles and links as it stands.
awk '/^```c$/ { on = 1; next } on && /^```/ { exit } on' README.md >"$work/readme.c"
[[ -s "$work/readme.c" ]] || fail "README.md has no \`\`\`c block"
$CC -std=c99 "${WARN[@]}" -O2 "$work/readme.c" $(pkg-config --cflags --libs abcast) \
  -Wl,-rpath,"$libdir" -o "$bin/readme"
readelf -d "$bin/counter" | grep -q 'NEEDED.*\[libabcast\.so\.0\]' \
  || fail "counter is not linked to the versioned libabcast.so.0"
# The installed library: its SONAME, the links to it, no debug info.
version=$(pkg-config --modversion abcast)
readelf -d "$libdir/libabcast.so.$version" | grep -q 'SONAME.*\[libabcast\.so\.0\]' \
  || fail "libabcast.so.$version has no SONAME libabcast.so.0"
[[ "$(readlink "$libdir/libabcast.so.0")" == "libabcast.so.$version" ]] || fail "libabcast.so.0 link"
[[ "$(readlink "$libdir/libabcast.so")" == "libabcast.so.0" ]] || fail "libabcast.so link"
if readelf -S "$libdir/libabcast.so.$version" | grep -q '\.debug_info'; then
  fail "the installed libabcast.so keeps its debug info"
fi
echo "libabcast.so.$version: SONAME libabcast.so.0, $(du -h "$libdir/libabcast.so.$version" | cut -f1)"
if readelf -d "$bin/counter-static" | grep -q 'NEEDED.*libabcast'; then
  fail "counter-static needs libabcast.so"
fi
say "build the examples with CMake (find_package(abcast), shared and static)"
mkdir -p "$work/cmake"
cat >"$work/cmake/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.13)
project(abcast_examples C CXX)
find_package(abcast 0.1 REQUIRED)
add_executable(counter $PWD/ffi/examples/counter.c)
target_link_libraries(counter abcast::abcast)
add_executable(chat $PWD/ffi/examples/chat.cpp)
target_link_libraries(chat abcast::abcast_static)
CMAKE
cmake -S "$work/cmake" -B "$work/cmake/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/cmake/build" >/dev/null
readelf -d "$work/cmake/build/counter" | grep -q 'NEEDED.*\[libabcast\.so\.0\]' \
  || fail "the CMake-built counter is not linked to libabcast.so.0"
if readelf -d "$work/cmake/build/chat" | grep -q 'NEEDED.*libabcast'; then
  fail "the CMake-built static chat needs libabcast.so"
fi
echo "CMake: counter (shared) and chat (static) built"

for t in test_api group_member; do
  $CC -std=c99 "${WARN[@]}" "${ASAN[@]}" -Iffi/tests "ffi/tests/$t.c" \
    $(pkg-config --cflags --libs abcast-static) -o "$bin/$t"
done
$CC -std=c99 "${WARN[@]}" ffi/tests/free_ports.c -o "$bin/free_ports"

say "API tests (AddressSanitizer)"
"$bin/test_api"

say "3 processes, the relayer killed with SIGKILL (AddressSanitizer)"
bash ffi/tests/group_kill.sh "$bin"

say "example: the C counter, 3 processes (shared, shared, static)"
mapfile -t ports < <("$bin/free_ports" 3)
members="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
declare -A pid
for id in 1 2 3; do
  prog=$bin/counter
  [[ $id == 3 ]] && prog=$bin/counter-static
  "$prog" "$id" "$members" 2000 </dev/null >"$work/counter$id.out" 2>"$work/counter$id.err" &
  pid[$id]=$!
  pids+=("$!")
done
for id in 1 2 3; do
  wait_exit 120 "${pid[$id]}" || { cat "$work/counter$id.err" >&2; fail "counter $id failed"; }
done
cat "$work/counter1.out"
for id in 2 3; do
  cmp -s "$work/counter1.out" "$work/counter$id.out" ||
    fail "counter $id printed '$(cat "$work/counter$id.out")', member 1 '$(cat "$work/counter1.out")'"
done
grep -q '^counter = [0-9]* after [0-9]* operations, order digest [0-9a-f]*$' "$work/counter1.out" ||
  fail "unexpected counter output"

say "example: the C++ chat, 3 processes"
# Each chat reads a FIFO that this script keeps open until every chat has printed every
# line: nobody leaves before the end, so the three transcripts must be identical.
# (Delivery is not uniform: a member that leaves early may have delivered a last line
# in a position the others never saw.)
mapfile -t ports < <("$bin/free_ports" 3)
members="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
declare -A infd
for id in 1 2 3; do
  mkfifo "$work/chat$id.fifo"
  "$bin/chat" "$id" "$members" <"$work/chat$id.fifo" >"$work/chat$id.out" 2>"$work/chat$id.err" &
  pid[$id]=$!
  pids+=("$!")
done
# Open the write ends only now, so that no chat inherits another one's.
for id in 1 2 3; do
  exec {fd}>"$work/chat$id.fifo"
  infd[$id]=$fd
  for k in $(seq 1 50); do echo "line $k from $id"; done >"$work/chat$id.in"
  cat "$work/chat$id.in" >&"$fd"
done
all_printed() {
  local id
  for id in 1 2 3; do (($(wc -l <"$work/chat$id.out") >= 150)) || return 1; done
}
deadline=$((SECONDS + 60))
until all_printed; do
  for id in 1 2 3; do
    kill -0 "${pid[$id]}" 2>/dev/null || { cat "$work/chat$id.err" >&2; fail "chat $id exited early"; }
  done
  ((SECONDS < deadline)) || fail "the chats did not print all 150 lines within 60 s"
  sleep 0.02
done
for id in 1 2 3; do exec {infd[$id]}>&-; done # end of input: each chat leaves
for id in 1 2 3; do
  wait_exit 60 "${pid[$id]}" || { cat "$work/chat$id.err" >&2; fail "chat $id failed"; }
done
for id in 1 2 3; do
  # Its own lines, all of them, in order.
  diff <(sed -n "s/^$id: //p" "$work/chat$id.out") "$work/chat$id.in" >/dev/null ||
    fail "chat $id did not print its own lines in order"
done
for id in 2 3; do
  cmp -s "$work/chat1.out" "$work/chat$id.out" || fail "chat $id's transcript differs from chat 1's"
done
echo "chat transcripts: 3 x $(wc -l <"$work/chat1.out") lines, identical"

say "done"
echo "ffi: 4 passed, 0 failed"

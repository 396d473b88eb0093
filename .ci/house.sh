#!/usr/bin/env bash
# The house rules that a compiler does not check: no source file over 800 lines; the
# protocol core, the wire format and the simulator use nothing above them and no
# `unsafe` (each also says `#![forbid(unsafe_code)]`); a licence file for each
# licence the manifests name; no import circle among the library's modules (when the
# workplace's checker is beside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
while read -r n f; do
  [[ $f == total ]] && continue
  if (( n > 800 )); then echo "house: $f has $n lines (at most 800)"; fail=1; fi
done < <(find src cli/src examples benches tests cli/tests -name '*.rs' -print0 | xargs -0 wc -l)
for m in protocol wire sim; do
  if grep -rnE 'crate::(runtime|ffi)\b' "src/$m" | grep -vE '^[^:]+:[0-9]+: *//'; then
    echo "house: src/$m uses a layer above it"; fail=1
  fi
  grep -q '^#!\[forbid(unsafe_code)\]' "src/$m/mod.rs" || { echo "house: src/$m/mod.rs does not forbid unsafe code"; fail=1; }
done
if grep -rnE 'crate::(runtime|ffi|sim)\b' src/protocol src/wire | grep -vE '^[^:]+:[0-9]+: *//'; then
  echo "house: the protocol core or the wire format uses a layer above it"; fail=1
fi
# A licence file for each licence the packages name (`license = "MIT OR Apache-2.0"`).
for manifest in Cargo.toml cli/Cargo.toml; do
  expr=$(sed -n 's/^license *= *"\(.*\)"/\1/p' "$manifest")
  [[ -n $expr ]] || { echo "house: $manifest names no licence"; fail=1; }
  for lic in ${expr// OR / }; do
    f=LICENSE-${lic%%-*}
    f=${f^^}
    [[ -s $f ]] || { echo "house: $manifest names $lic, but there is no $f"; fail=1; }
  done
done
cycles=../shared/tools/import_cycles.py
if [[ -f $cycles ]]; then
  python3 "$cycles" src || fail=1
else
  echo "house: $cycles not found; import circles not checked"
fi
(( fail == 0 )) && echo "house: ok"
exit "$fail"

#!/usr/bin/env bash
# The struct sizes that are part of vigil's ABI (docs/ABI.md), recorded in
# docs/ABI.md between the "abi-sizes" markers, for x86_64 Linux.
#   scripts/abi-sizes.sh check [bench-sizes]   compare the build with the record
#   scripts/abi-sizes.sh record [bench-sizes]  rewrite the record from the build
# bench-sizes defaults to build/dev/bench-sizes (`make build`). check exits 1
# and prints every difference; a difference recorded under the same version
# is an ABI change without a version bump.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-check}
bin=${2:-build/dev/bench-sizes}
doc=${ABI_DOC:-docs/ABI.md}
if [ "$(uname -m)" != x86_64 ]; then
  echo "abi-sizes: the record is for x86_64; skipped on $(uname -m)"
  exit 0
fi
now=$("$bin" --abi)
recorded=$(sed -n '/^<!-- abi-sizes begin -->$/,/^<!-- abi-sizes end -->$/p' "$doc" |
  sed -n 's/^| `\([a-z_]*\)` | \([0-9.]*\) |$/\1 \2/p')
case "$mode" in
record)
  table=$(echo "$now" | awk '{ printf "| `%s` | %s |\n", $1, $2 }')
  TABLE="$table" awk '
    /^<!-- abi-sizes begin -->$/ { print; print "| struct | bytes |"; print "|---|---|"; print ENVIRON["TABLE"]; skip = 1; next }
    /^<!-- abi-sizes end -->$/ { skip = 0 }
    !skip { print }' "$doc" >"$doc.tmp"
  mv "$doc.tmp" "$doc"
  echo "abi-sizes: recorded $(echo "$now" | wc -l) lines in $doc"
  ;;
check)
  if [ -z "$recorded" ]; then
    echo "abi-sizes: no record in $doc (scripts/abi-sizes.sh record)" >&2
    exit 1
  fi
  if ! diff <(echo "$recorded") <(echo "$now") >/tmp/abi-sizes.$$; then
    echo "abi-sizes: struct sizes differ from the record in $doc (< recorded, > built):" >&2
    cat /tmp/abi-sizes.$$ >&2
    rm -f /tmp/abi-sizes.$$
    echo "abi-sizes: an ABI change: bump VIGIL_VERSION_MINOR before 1.0 (docs/ABI.md), then record" >&2
    exit 1
  fi
  rm -f /tmp/abi-sizes.$$
  echo "abi-sizes: $(echo "$now" | wc -l) sizes match the record"
  ;;
*)
  echo "usage: $0 check|record [bench-sizes]" >&2
  exit 2
  ;;
esac

#!/usr/bin/env bash
# `make faults`: builds the fault suite's programs (dev preset), runs the
# network-namespace fault suite (tests/fault/suite.sh) and its SIGINT
# cleanup test, and writes docs/FAULTS.md from that run. Needs root (network
# namespaces); otherwise says so and exits 77 without touching the doc.
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1

if [ "$(id -u)" != 0 ]; then
  echo "faults: skipped, needs root for network namespaces"
  exit 77
fi
jobs=${JOBS:-2}
cmake --preset dev >/dev/null || exit 1
targets=(fault-peer vigil_tool vigil_preload)
build=build/dev
nfq=""
if pkg-config --exists libnetfilter_queue 2>/dev/null; then
  targets+=(nfq-delay)
  nfq=$build/tests/fault/nfq-delay
fi
cmake --build --preset dev --target "${targets[@]}" -j "$jobs" || exit 1

out=$build/faults
mkdir -p "$out"
args=(--peer "$build/tests/fault/fault-peer" --nfq "$nfq" --vigil "$build/vigil")
tests/fault/suite.sh "${args[@]}" --out "$out/run"
rc=$?
cleanup=$(tests/fault/test-interrupt.sh "${args[@]}" | tail -1)
crc=$?
echo "$cleanup"
python3 tests/fault/report.py "$out/run" "$cleanup" >docs/FAULTS.md.new &&
  mv docs/FAULTS.md.new docs/FAULTS.md
echo "faults: wrote docs/FAULTS.md"
[ $rc = 0 ] && [ $crc = 0 ]

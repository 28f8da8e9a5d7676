#!/usr/bin/env bash
# `make soak SOAK_S=1200`: builds the fault suite's programs (dev preset),
# runs only the soak cases of tests/fault/suite.sh (a healthy connection over
# a lossy and over a jittery link, kernel keepalive and vigil's heartbeat)
# for SOAK_S seconds each, in parallel, and writes their figures into the
# "Long soaks" section of docs/FAULTS.md (tests/fault/report.py --soak). The
# 30 s soaks stay in `make test` / `make faults`. Needs root (network
# namespaces); otherwise says so and exits 77 without touching the doc.
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1

secs=${1:-${SOAK_S:-1200}}
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 1)); then
  echo "soak: SOAK_S must be a whole number of seconds >= 1, not '$secs'" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "soak: skipped, needs root for network namespaces"
  exit 77
fi
jobs=${JOBS:-2}
cmake --preset dev >/dev/null || exit 1
targets=(fault-peer vigil_tool)
build=build/dev
nfq=""
if pkg-config --exists libnetfilter_queue 2>/dev/null; then
  targets+=(nfq-delay)
  nfq=$build/tests/fault/nfq-delay
fi
cmake --build --preset dev --target "${targets[@]}" -j "$jobs" || exit 1

out=$build/soak
mkdir -p "$out"
echo "soak: 4 cases of ${secs} s each, in parallel"
FAULT_SOAK_S=$secs tests/fault/suite.sh --peer "$build/tests/fault/fault-peer" --nfq "$nfq" \
  --vigil "$build/vigil" --out "$out/run" --only '^case_soak '
rc=$?
python3 tests/fault/report.py --soak "$out/run" "make soak SOAK_S=$secs" docs/FAULTS.md &&
  echo "soak: wrote the Long soaks section of docs/FAULTS.md"
exit $rc

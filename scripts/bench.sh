#!/usr/bin/env bash
# Runs every benchmark of the release build in turn. Each prints its own
# figures; ratios against a baseline are computed inside one benchmark run so
# the noisy shared machine affects both sides alike.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in build/release/bench-*; do
  [ -x "$bin" ] || continue
  echo "== $(basename "$bin")"
  "$bin" "$@"
done
# The same servers' user-space instructions per heartbeat under callgrind:
# a ratio to the floor that the shared machine's load does not move
# (bench/bench-connections.c, --callgrind).
if [ -x build/release/bench-connections ]; then
  echo "== bench-connections --callgrind"
  build/release/bench-connections --callgrind
fi

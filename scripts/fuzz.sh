#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for $1
# seconds (default 60), seeded from the protocol test vectors. Each target
# keeps its growing corpus in fuzz/corpus-<target>/ (git-ignored). Fails if a
# target finds a crash, leak or timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
status=0
for bin in build/fuzz/fuzz-*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus=fuzz/corpus-$name
  mkdir -p "$corpus"
  seeds=(tests/vectors)
  # Target-specific seeds, if any: fuzz/seeds/<target without "fuzz-">/.
  [ -d "fuzz/seeds/${name#fuzz-}" ] && seeds+=("fuzz/seeds/${name#fuzz-}")
  echo "== $name for ${seconds}s (seeds: ${seeds[*]})"
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="build/fuzz/$name-" \
       "$corpus" "${seeds[@]}" 2>"build/fuzz/$name.log"; then
    echo "$name FAILED; last lines of build/fuzz/$name.log:"
    tail -n 40 "build/fuzz/$name.log"
    status=1
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "build/fuzz/$name.log" | sed "s/^/  /"
  fi
done
exit $status

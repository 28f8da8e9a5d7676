#!/usr/bin/env bash
# How long `vigil probe --count N --interval I` takes against `vigil serve`,
# run RUNS times: prints every run's wall time, the distribution, and how
# many runs finished within BOUND_MS. Exits 1 if any run took longer or
# failed (a live server reported dead).
#
# A probe is a measurement: it pings on its own schedule, so N pings take
# about N intervals whatever the server sends (issue 8, defect 2).
#
#   bench/probe-time.sh                   # 10 runs, --count 3 --interval 1s, bound 4000 ms
#   RUNS=20 INTERVAL=200ms BOUND_MS=800 bench/probe-time.sh
#   VIGIL=/path/to/vigil bench/probe-time.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VIGIL=${VIGIL:-build/dev/vigil}
RUNS=${RUNS:-10}
COUNT=${COUNT:-3}
INTERVAL=${INTERVAL:-1s}
BOUND_MS=${BOUND_MS:-4000}

[ -x "$VIGIL" ] || { echo "probe-time: $VIGIL not built (make build)" >&2; exit 2; }

dir=$(mktemp -d)
srv=
cleanup() {
  [ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

"$VIGIL" serve 127.0.0.1:0 --json >"$dir/serve.log" 2>&1 &
srv=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$dir/serve.log")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "probe-time: serve did not start" >&2; cat "$dir/serve.log" >&2; exit 2; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

times=()
bad=0
for run in $(seq "$RUNS"); do
  t0=$(now_ms)
  status=0
  "$VIGIL" probe "127.0.0.1:$port" --count "$COUNT" --interval "$INTERVAL" >"$dir/probe.log" 2>&1 ||
    status=$?
  ms=$(($(now_ms) - t0))
  times+=("$ms")
  verdict=ok
  if [ "$status" -ne 0 ]; then
    verdict="exit $status"
    bad=$((bad + 1))
  elif [ "$ms" -ge "$BOUND_MS" ]; then
    verdict="over ${BOUND_MS} ms"
    bad=$((bad + 1))
  fi
  printf 'run %2d  %5d ms  %s\n' "$run" "$ms" "$verdict"
done

sorted=$(printf '%s\n' "${times[@]}" | sort -n)
min=$(echo "$sorted" | head -1)
max=$(echo "$sorted" | tail -1)
median=$(echo "$sorted" | sed -n "$(((RUNS + 1) / 2))p")
echo "probe --count $COUNT --interval $INTERVAL, $RUNS runs: min $min ms, median $median ms," \
  "max $max ms; $((RUNS - bad))/$RUNS within $BOUND_MS ms and alive"
[ "$bad" -eq 0 ]

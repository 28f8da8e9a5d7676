#!/usr/bin/env bash
# make demo: a server and four clients on loopback, broken in four ways,
# and a table of what each side saw: the cause, and the time from the fault
# to the verdict against the configured bound.
#
#   c1 says goodbye (SIGINT: CLOSE "goodbye")   server must see: closed, code 0
#   kill -9 of c2 (its kernel closes the socket) server must see: closed/reset, no CLOSE
#   SIGSTOP of c3 (TCP alive, process frozen)   server must see: heartbeat_timeout or
#                                                peer_stalled, never before the timeout,
#                                                at most timeout + slack after the stop;
#                                                c3, resumed, must reconnect
#   server restart (SIGTERM, then a new one)    clients must see the goodbye (code 1)
#                                                and reconnect to the new server
#
# No root; docs/CLI.md gives the last run's time (measured into build/demo/elapsed_s); every process it starts is stopped on exit (trap);
# exits 1 if an expectation failed. Logs (JSON lines, docs/CLI.md) are kept
# in build/demo/ for a closer look.
set -euo pipefail
cd "$(dirname "$0")/.."

INTERVAL_MS=${DEMO_INTERVAL_MS:-200}
TIMEOUT_MS=${DEMO_TIMEOUT_MS:-600}
SLACK_MS=${DEMO_SLACK_MS:-100}   # scheduling slack on a shared machine

if [ -z "${VIGIL:-}" ]; then   # VIGIL=/path/to/vigil runs the demo on another build
  echo "demo: building (cmake --preset dev; cmake --build --preset dev --target vigil_tool)"
  cmake --preset dev >/dev/null
  cmake --build --preset dev --target vigil_tool -j "${JOBS:-2}" >/dev/null
  VIGIL=$PWD/build/dev/vigil
fi
[ -x "$VIGIL" ] || { echo "demo: $VIGIL was not built" >&2; exit 1; }
command -v python3 >/dev/null || { echo "demo: needs python3 (scripts/install-deps.sh)" >&2; exit 1; }

STARTED=$(date +%s.%N)
LOG=${DEMO_LOG:-$PWD/build/demo}   # ctest (demo.matches_doc) runs it in its build tree
rm -rf "$LOG"
mkdir -p "$LOG"
FAULTS=$LOG/faults.txt
: >"$FAULTS"

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -CONT "$p" 2>/dev/null || true
    kill -TERM "$p" 2>/dev/null || true
  done
  sleep 0.3
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
mark() { echo "$1 $(now)" >>"$FAULTS"; }

# wait_for FILE REGEX SECONDS: until a line of FILE matches (bounded).
wait_for() {
  local file=$1 re=$2 deadline
  deadline=$(( $(date +%s%N) + ${3}000000000 ))
  while [ "$(date +%s%N)" -lt "$deadline" ]; do
    grep -Eq "$re" "$file" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "demo: timed out waiting for /$re/ in $(basename "$file")" >&2
  return 1
}

# count_of FILE REGEX: matching lines.
count_of() { grep -Ec "$2" "$1" 2>/dev/null || true; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
HB=(--interval "${INTERVAL_MS}ms" --timeout "${TIMEOUT_MS}ms")
ok=1

start_server() {
  "$VIGIL" serve "$ADDR" "${HB[@]}" --json >"$LOG/$1.log" 2>"$LOG/$1.err" &
  server_pid=$!
  pids+=("$server_pid")
  wait_for "$LOG/$1.log" '"event":"listening"' 5
}

declare -A cpid
start_client() {
  "$VIGIL" connect "$ADDR" --id "$1" "${HB[@]}" --backoff-max 1s --json --quiet-rtt >"$LOG/$1.log" 2>"$LOG/$1.err" &
  cpid[$1]=$!
  pids+=("${cpid[$1]}")
}

open_re() { echo "\"event\":\"open\",\"peer\":\"[^\"]*\",\"id\":\"$1\""; }
dead_re() { echo "\"event\":\"dead\",\"peer\":\"[^\"]*\",\"id\":\"$1\""; }

echo "demo: vigil serve $ADDR (interval ${INTERVAL_MS} ms, timeout ${TIMEOUT_MS} ms) and clients c1..c4"
start_server server1 || ok=0
for c in c1 c2 c3 c4; do start_client $c; done
for c in c1 c2 c3 c4; do wait_for "$LOG/server1.log" "$(open_re $c)" 5 || ok=0; done
sleep 0.5   # a few heartbeats on every connection

echo "demo: c1 says goodbye (SIGINT)"
mark goodbye_c1
kill -INT "${cpid[c1]}"
wait_for "$LOG/server1.log" "$(dead_re c1)" 3 || ok=0

echo "demo: kill -9 of c2"
mark kill9_c2
kill -KILL "${cpid[c2]}"
{ wait "${cpid[c2]}"; } 2>/dev/null || true
wait_for "$LOG/server1.log" "$(dead_re c2)" 3 || ok=0

echo "demo: SIGSTOP of c3"
mark stop_c3
kill -STOP "${cpid[c3]}"
wait_for "$LOG/server1.log" "$(dead_re c3)" 5 || ok=0
sleep 0.2
mark cont_c3
kill -CONT "${cpid[c3]}"
# c3 finds its connection gone and comes back
wait_for "$LOG/server1.log" "($(open_re c3)|\"event\":\"rejoin\",\"peer\":\"[^\"]*\",\"id\":\"c3\").*" 8 || true
for _ in $(seq 1 100); do
  [ "$(count_of "$LOG/server1.log" "$(open_re c3)")" -ge 2 ] && break
  sleep 0.05
done

echo "demo: server restart (SIGTERM, new server on the same port)"
mark restart_down
kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null || true
for c in c3 c4; do wait_for "$LOG/$c.log" '"event":"dead"' 3 || ok=0; done
sleep 1
mark restart_up
start_server server2 || ok=0
for c in c3 c4; do wait_for "$LOG/server2.log" "$(open_re $c)" 15 || ok=0; done

echo
python3 - "$LOG" "$INTERVAL_MS" "$TIMEOUT_MS" "$SLACK_MS" <<'EOF' >"$LOG/report.txt" || ok=0
import json, os, sys

log, interval, timeout, slack = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def events(name):
    out = []
    try:
        with open(os.path.join(log, name + ".log")) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out

faults = {}
with open(os.path.join(log, "faults.txt")) as f:
    for line in f:
        k, t = line.split()
        faults[k] = float(t)

def first(evs, event, ident, after):
    for e in evs:
        if e["event"] == event and e.get("id") == ident and e["t"] >= after:
            return e
    return None

rows, failures = [], 0

def describe(e):
    text = e.get("cause") or e["event"]
    if e.get("close_code") is not None:
        if e.get("close_by") == "us":
            text += f" (sent CLOSE {e['close_code']})"
        else:
            text += f" (got CLOSE {e['close_code']} \"{e.get('reason') or ''}\")"
    elif e.get("detail"):
        text += f" ({e['detail']})"
    return text

def row(fault, who, e, t0, expect, bound_ms, bound_text=None):
    """One line of the table: the fault, who saw it, the verdict, the time
    from the fault to the verdict line, and whether it met expectations."""
    global failures
    bound_text = bound_text or f"< {bound_ms} ms"
    if e is None:
        rows.append((fault, who, "nothing seen", "-", "-", bound_text, "FAIL"))
        failures += 1
        return
    ms = (e["t"] - t0) * 1000.0
    silent = f"{e['silent_ms']} ms" if e.get("silent_ms") is not None and e["event"] == "dead" else "-"
    good = expect(e) and ms <= bound_ms
    if not good:
        failures += 1
    rows.append((fault, who, describe(e), f"{ms:.0f} ms", silent, bound_text,
                 "ok" if good else "FAIL"))

s1, s2 = events("server1"), events("server2")
c3, c4 = events("c3"), events("c4")

row("c1 says goodbye (SIGINT)", "server", first(s1, "dead", "c1", faults["goodbye_c1"]),
    faults["goodbye_c1"], lambda e: e["cause"] == "closed" and e.get("close_code") == 0, 1000)
row("kill -9 of c2", "server", first(s1, "dead", "c2", faults["kill9_c2"]),
    faults["kill9_c2"],
    lambda e: e["cause"] in ("closed", "reset") and e.get("close_code") is None, 1000)
# SIGSTOP: the verdict must come from the detector's own clock: never
# before `timeout` of silence, and at most `slack` after it. Measured from
# the stop it can be shorter than the timeout (the last frame arrived up to
# one interval before the stop).
e = first(s1, "dead", "c3", faults["stop_c3"])
row("SIGSTOP of c3", "server", e, faults["stop_c3"],
    lambda e: e["cause"] in ("heartbeat_timeout", "peer_stalled")
    and timeout <= e.get("silent_ms", 0) <= timeout + slack, timeout + slack,
    f"silent in [{timeout}, {timeout} + {slack}] ms")
row("  ...c3 resumed (SIGCONT)", "c3", first(c3, "dead", "c3", faults["cont_c3"]),
    faults["cont_c3"], lambda e: True, 2000, "its own verdict")
opens = [x for x in s1 if x["event"] in ("open", "rejoin") and x.get("id") == "c3"
         and x["t"] >= faults["cont_c3"]]
row("  ...c3 reconnects", "server", opens[0] if opens else None, faults["cont_c3"],
    lambda e: True, 5000)
for name, evs in (("c3", c3), ("c4", c4)):
    row(f"server stops (SIGTERM)", name, first(evs, "dead", name, faults["restart_down"]),
        faults["restart_down"], lambda e: e["cause"] == "closed" and e.get("close_code") == 1,
        1000)
for name in ("c3", "c4"):
    row(f"server back: {name} reconnects", "server", first(s2, "open", name, faults["restart_up"]),
        faults["restart_up"], lambda e: True, 3000, "< 3 s (backoff max 1 s)")

head = ("fault", "seen by", "verdict", "after fault", "silent", "expected", "")
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
if e is not None:
    print(f"\nSIGSTOP client c3: {e['cause']} after {(e['t'] - faults['stop_c3']) * 1000:.0f} ms "
          f"from the stop, {e['silent_ms']} ms after its last frame "
          f"(bound: timeout {timeout} ms + {slack} ms)")
print()
deaths = [x for x in s1 + s2 if x["event"] == "dead"]
print(f"server events: {len(s1) + len(s2)} lines, {len(deaths)} deaths; logs in {log}/")
if failures:
    print(f"demo: {failures} expectation(s) failed")
    sys.exit(1)
print("demo: every expectation held")
EOF
cat "$LOG/report.txt"
python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$STARTED" \
  "$(date +%s.%N)" >"$LOG/elapsed_s"
echo "demo: took $(cat "$LOG/elapsed_s") s"
[ "$ok" = 1 ] || { rm -f "$LOG/elapsed_s"; echo "demo: FAILED (see $LOG/*.log)"; exit 1; }

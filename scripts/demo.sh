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
# Then, when redis-server is installed and vigil has Redis support, the fleet
# view (docs/PRESENCE.md): `vigil serve --workers 2 --presence unix://...` on a
# redis-server of the demo's own (a temp dir, no persistence, stopped by pid),
# clients f1..f4, and what `vigil who` (asking Redis only) says:
#   f1..f4 connect                               who: all online, node demo
#   SIGSTOP of f2                                who: offline, peer_stalled, within
#                                                timeout + 1 s
#   kill -9 of f3's worker                       who: f3 online again (a new
#                                                connection, on whichever worker)
# Without them the fleet rows are left out and the report says why.
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
  if [ -n "${REDIS_DIR:-}" ]; then rm -rf "$REDIS_DIR"; fi
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

# Two free ports: the demo's server, and the fleet's (one python3 start).
read -r PORT FPORT < <(python3 -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
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
start_client() {   # ID [ADDR]
  "$VIGIL" connect "${2:-$ADDR}" --id "$1" "${HB[@]}" --backoff-max 1s --json --quiet-rtt >"$LOG/$1.log" 2>"$LOG/$1.err" &
  cpid[$1]=$!
  pids+=("${cpid[$1]}")
}

open_re() { echo "\"event\":\"open\",\"peer\":\"[^\"]*\",\"id\":\"$1\""; }
dead_re() { echo "\"event\":\"dead\",\"peer\":\"[^\"]*\",\"id\":\"$1\""; }

# The fleet view's redis-server starts now, so that it is up by then.
FLEET_SKIP=
if ! command -v redis-server >/dev/null; then
  FLEET_SKIP="redis-server not installed (scripts/install-deps.sh)"
else
  REDIS_DIR=$(mktemp -d /tmp/vigil-demo-redis.XXXXXX)
  PURL=unix://$REDIS_DIR/redis.sock
  redis-server --port 0 --unixsocket "$REDIS_DIR/redis.sock" --save "" --appendonly no \
    --dir "$REDIS_DIR" --loglevel warning >"$LOG/redis.log" 2>&1 &
  pids+=("$!")
fi

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

# ---- the fleet view ----
# wait_who NAME SECONDS TEST: polls `vigil who f1..f4 --json` (Redis only)
# until TEST (a shell function given the output file) holds; the output is
# kept as who-NAME.json, the time it first held marked as NAME.
who_json() { "$VIGIL" who --presence "$PURL" f1 f2 f3 f4 --json >"$1" 2>>"$LOG/who.err" || true; }
wait_who() {
  local name=$1 test=$3 deadline
  deadline=$(( $(date +%s%N) + ${2}000000000 ))
  while [ "$(date +%s%N)" -lt "$deadline" ]; do
    who_json "$LOG/who-$name.json"
    if "$test" "$LOG/who-$name.json"; then mark "$name"; return 0; fi
    sleep 0.05
  done
  echo "demo: vigil who never showed $name" >&2
  return 1
}
id_line() { grep -E "\"id\":\"$2\"" "$1" || true; }
all_online() { [ "$(grep -c '"state":"online","node":"demo"' "$1")" = 4 ]; }
f2_offline() { id_line "$1" f2 | grep -q '"state":"offline".*"cause":"peer_stalled"'; }
gen_of() { id_line "$1" "$2" | grep -Eo '"gen":[0-9]+' | cut -d: -f2 || true; }
f3_back() { id_line "$1" f3 | grep -q '"state":"online"' && [ "$(gen_of "$1" f3)" -gt "$F3_GEN" ] 2>/dev/null; }

if [ -z "$FLEET_SKIP" ]; then
  answered=0
  for _ in $(seq 1 60); do
    if "$VIGIL" who --presence "$PURL" >/dev/null 2>"$LOG/who.err"; then answered=1; break; fi
    grep -q 'no Redis support' "$LOG/who.err" && break
    sleep 0.05
  done
  if grep -q 'no Redis support' "$LOG/who.err"; then
    FLEET_SKIP="this vigil was built without hiredis (libhiredis-dev)"
  elif [ "$answered" = 0 ]; then
    FLEET_SKIP="the demo's redis-server did not answer"
    ok=0
  fi
fi
if [ -n "$FLEET_SKIP" ]; then
  echo "demo: fleet view skipped: $FLEET_SKIP"
  echo "$FLEET_SKIP" >"$LOG/fleet-skipped"
else
  echo "demo: the fleet: vigil serve 127.0.0.1:$FPORT --workers 2 --presence $PURL and clients f1..f4"
  "$VIGIL" serve "127.0.0.1:$FPORT" "${HB[@]}" --workers 2 --presence "$PURL" --node demo \
    --node-timeout 1s --json >"$LOG/fleet.log" 2>"$LOG/fleet.err" &
  pids+=("$!")
  for _ in $(seq 1 100); do
    [ "$(count_of "$LOG/fleet.log" '"event":"listening"')" -ge 2 ] && break
    sleep 0.05
  done
  mark fleet_join
  for c in f1 f2 f3 f4; do start_client $c "127.0.0.1:$FPORT"; done
  wait_who fleet_online 5 all_online || ok=0

  echo "demo: SIGSTOP of f2 (vigil who must say offline within timeout + 1 s)"
  mark fleet_stop_f2
  kill -STOP "${cpid[f2]}"
  wait_who fleet_f2_offline 4 f2_offline || ok=0

  # (|| true: a missing line is reported below, not a silent exit under set -e)
  F3_GEN=$(gen_of "$LOG/who-fleet_online.json" f3)
  F3_WORKER=$(grep -E "$(open_re f3)" "$LOG/fleet.log" | grep -Eo '"worker":[0-9]+' | head -1 |
              cut -d: -f2 || true)
  F3_PID=$(grep '"event":"worker_start"' "$LOG/fleet.log" | grep "\"worker\":${F3_WORKER:-x}," |
           tail -1 | grep -Eo '"pid":[0-9]+' | cut -d: -f2 || true)
  echo "demo: kill -9 of worker ${F3_WORKER:-?} (pid ${F3_PID:-?}), f3's"
  mark fleet_kill_worker
  if [ -n "$F3_PID" ] && [ -n "$F3_GEN" ]; then
    kill -KILL "$F3_PID"
    wait_who fleet_f3_back 6 f3_back || ok=0
  else
    echo "demo: f3's worker not found in fleet.log" >&2
    ok=0
  fi
  "$VIGIL" who --presence "$PURL" f1 f2 f3 f4 >"$LOG/who-final.txt" 2>&1 || true
fi

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

# The fleet: what `vigil who` (Redis only) said, timed from the fault to the
# who line that first showed it.
def who(name):
    out = {}
    try:
        with open(os.path.join(log, f"who-{name}.json")) as f:
            for line in f:
                if line.strip():
                    e = json.loads(line)
                    out[e.get("id")] = e
    except FileNotFoundError:
        pass
    return out

def fleet_row(fault, start, name, verdict, good, bound_ms, bound_text):
    global failures
    w = who(name)
    t = faults.get(name)
    if t is None or not w:
        rows.append((fault, "vigil who", "not seen" if not w else "; ".join(
            f"{i} {e.get('state')}" for i, e in sorted(w.items())), "-", "-", bound_text, "FAIL"))
        failures += 1
        return
    at = min(e["t"] for e in w.values())
    ms = (at - faults[start]) * 1000.0
    ok_ = good(w) and ms <= bound_ms
    if not ok_:
        failures += 1
    rows.append((fault, "vigil who", verdict(w), f"{ms:.0f} ms", "-", bound_text,
                 "ok" if ok_ else "FAIL"))

fleet_skipped = os.path.exists(os.path.join(log, "fleet-skipped"))
if not fleet_skipped:
    online = lambda w: [i for i, e in w.items() if e.get("state") == "online" and e.get("node") == "demo"]
    fleet_row("fleet: f1..f4 join 2 workers", "fleet_join", "fleet_online",
              lambda w: f"online, node demo ({len(online(w))} of 4)",
              lambda w: len(online(w)) == 4, 3000, "< 3000 ms")
    fleet_row("fleet: SIGSTOP of f2", "fleet_stop_f2", "fleet_f2_offline",
              lambda w: f"f2 {w.get('f2', {}).get('state')}, {w.get('f2', {}).get('cause')}",
              lambda w: w.get("f2", {}).get("cause") == "peer_stalled", timeout + 1000,
              f"< {timeout} + 1000 ms")
    fleet_row("fleet: kill -9 of f3's worker", "fleet_kill_worker", "fleet_f3_back",
              lambda w: f"f3 {w.get('f3', {}).get('state')} again (new connection)",
              lambda w: w.get("f3", {}).get("state") == "online", 5000, "< 5000 ms")

head = ("fault", "seen by", "verdict", "after fault", "silent", "expected", "")
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
if e is not None:
    print(f"\nSIGSTOP client c3: {e['cause']} after {(e['t'] - faults['stop_c3']) * 1000:.0f} ms "
          f"from the stop, {e['silent_ms']} ms after its last frame "
          f"(bound: timeout {timeout} ms + {slack} ms)")
if fleet_skipped:
    print(f"\nfleet view: skipped, {open(os.path.join(log, 'fleet-skipped')).read().strip()}")
else:
    print("\nfleet: vigil serve --workers 2 --presence unix://... --node demo; at the end, "
          "vigil who f1 f2 f3 f4:")
    try:
        print(open(os.path.join(log, "who-final.txt")).read().rstrip("\n"))
    except FileNotFoundError:
        print("(no output)")
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

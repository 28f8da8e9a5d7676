#!/usr/bin/env bash
# Interop on loopback between the Windows build of vigil (vigil.exe under
# wine, IOCP backend) and the Linux build (epoll): each side is killed or
# stopped in turn, and the OTHER side must report the death with the right
# cause. Also the probe contract: `vigil.exe probe` against a Linux server
# exits 0 with RTTs, and 1 within its timeout when the server is stopped.
#
# usage: scripts/interop.sh [LINUX_VIGIL [WINDOWS_VIGIL_EXE]]
#   defaults: build/dev/vigil and build/mingw/vigil.exe (make build, make windows)
# Exit: 0 all passed, 1 a case failed, 77 skipped (no wine or no binaries).
# Only processes this script starts are signalled, by pid.
set -uo pipefail
cd "$(dirname "$0")/.."

LNX=${1:-build/dev/vigil}
WIN=${2:-build/mingw/vigil.exe}
if ! command -v wine >/dev/null 2>&1; then
  echo "interop: skipped (wine not installed)"; exit 77
fi
for f in "$LNX" "$WIN"; do
  if [ ! -x "$f" ] && [ ! -f "$f" ]; then
    echo "interop: skipped ($f not built)"; exit 77
  fi
done
export WINEDEBUG=-all
export WINEPREFIX=${WINEPREFIX:-$PWD/build/wineprefix}
export WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  wineboot -i >/dev/null 2>&1 || true
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -CONT "$p" 2>/dev/null
    kill -9 "$p" 2>/dev/null
  done
  gone "${PIDS[@]}"
  if [ -n "${NS:-}" ]; then
    ns_kill_all
    ip netns del "$NS" 2>/dev/null
  fi
  if [ -n "${NSPFX:-}" ]; then
    rm -rf "$NSPFX"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

FAILS=0
INTERVAL=200ms # timeout 600 ms: every death below is due within ~1 s

pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; FAILS=$((FAILS + 1)); }

# wait_for FILE REGEX SECONDS: 0 once a line of FILE matches.
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -Eq -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start_server SIDE NAME: runs `vigil serve` on 127.0.0.1:0; sets SRV_PID, SRV_PORT.
start_server() {
  local out=$TMP/$2.out
  if [ "$1" = win ]; then
    wine "$WIN" serve 127.0.0.1:0 --interval $INTERVAL >"$out" 2>&1 &
  else
    "$LNX" serve 127.0.0.1:0 --interval $INTERVAL >"$out" 2>&1 &
  fi
  SRV_PID=$!
  disown "$SRV_PID" # no job notices when we kill it
  PIDS+=("$SRV_PID")
  if ! wait_for "$out" 'listening 127\.0\.0\.1:[0-9]+' 20; then
    SRV_PORT=0
    return 1
  fi
  SRV_PORT=$(grep -Eo 'listening 127\.0\.0\.1:[0-9]+' "$out" | head -1 | cut -d: -f2)
}

# start_client SIDE NAME ID: `vigil connect` to SRV_PORT; sets CLI_PID.
start_client() {
  local out=$TMP/$2.out
  if [ "$1" = win ]; then
    wine "$WIN" connect 127.0.0.1:"$SRV_PORT" --interval $INTERVAL --id "$3" --quiet-rtt \
      --no-reconnect >"$out" 2>&1 &
  else
    "$LNX" connect 127.0.0.1:"$SRV_PORT" --interval $INTERVAL --id "$3" --quiet-rtt \
      --no-reconnect >"$out" 2>&1 &
  fi
  CLI_PID=$!
  disown "$CLI_PID"
  PIDS+=("$CLI_PID")
}

stop_all() {
  local p
  for p in "$@"; do
    kill -CONT "$p" 2>/dev/null
    kill -9 "$p" 2>/dev/null
  done
  gone "$@"
}

# gone PID...: waits (at most 5 s) until the processes have exited.
gone() {
  local p i
  for p in "$@"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
  done
}

# check NAME FILE REGEX SECONDS: the observer's output must show the death.
check() {
  if wait_for "$2" "$3" "$4"; then
    pass "$1: $(grep -Eo -- "$3" "$2" | head -1)"
  else
    fail "$1: no line matching /$3/ within $4 s; output:"
    sed 's/^/      /' "$2"
  fi
}

DEAD_STALL='dead .*cause=(peer_stalled|heartbeat_timeout)'
DEAD_GONE='dead .*cause=(closed|reset) .*(without a CLOSE frame|error=ECONNRESET|error=EOF)'

# ---- the probe contract ------------------------------------------------------

start_server lnx probe-srv || fail "probe: Linux server did not start"
t0=$(date +%s%N)
wine "$WIN" probe 127.0.0.1:"$SRV_PORT" --count 3 --interval $INTERVAL >"$TMP/probe.out" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $rc -eq 0 ] && [ "$(grep -c 'pong from' "$TMP/probe.out")" -eq 3 ]; then
  pass "probe (wine) -> Linux serve: exit 0, 3 RTTs, $ms ms"
else
  fail "probe (wine) -> Linux serve: exit $rc"; sed 's/^/      /' "$TMP/probe.out"
fi
kill -STOP "$SRV_PID"
t0=$(date +%s%N)
wine "$WIN" probe 127.0.0.1:"$SRV_PORT" --timeout 2s --json >"$TMP/probe-stopped.out" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# The verdict is held to the 2 s timeout by the detector's own silent_ms; the
# wall time adds wine's start-up (1-3 s on this shared machine).
silent=$(grep -o '"event":"connect_failed".*' "$TMP/probe-stopped.out" | grep -Eo '"silent_ms":[0-9]+' | cut -d: -f2)
if [ $rc -eq 1 ] && [ $ms -lt 8000 ] && [ -n "$silent" ] && [ "$silent" -ge 2000 ] && [ "$silent" -lt 2500 ]; then
  pass "probe (wine) -> SIGSTOPped Linux serve: exit 1, verdict after ${silent} ms of silence; $ms ms with wine start-up"
else
  fail "probe (wine) -> SIGSTOPped Linux serve: exit $rc after $ms ms"
  sed 's/^/      /' "$TMP/probe-stopped.out"
fi
stop_all "$SRV_PID"

# ---- Windows client, Linux server -------------------------------------------

start_server lnx s1 && start_client win c1 winc1
if wait_for "$TMP/s1.out" 'open .*id=winc1' 20; then
  kill -STOP "$CLI_PID"
  check "wine client SIGSTOPped -> Linux server" "$TMP/s1.out" "$DEAD_STALL" 5
else
  fail "wine client never opened"; sed 's/^/      /' "$TMP/s1.out" "$TMP/c1.out"
fi
stop_all "$CLI_PID" "$SRV_PID"

start_server lnx s2 && start_client win c2 winc2
if wait_for "$TMP/s2.out" 'open .*id=winc2' 20; then
  kill -9 "$CLI_PID"
  check "wine client killed -9 -> Linux server" "$TMP/s2.out" "$DEAD_GONE" 5
else
  fail "wine client never opened"
fi
stop_all "$CLI_PID" "$SRV_PID"

# ---- Linux client, Windows server -------------------------------------------

start_server win s3 && start_client lnx c3 linc3
if wait_for "$TMP/s3.out" 'open .*id=linc3' 20; then
  kill -STOP "$CLI_PID"
  check "Linux client SIGSTOPped -> wine server" "$TMP/s3.out" "$DEAD_STALL" 5
else
  fail "Linux client never opened on the wine server"; sed 's/^/      /' "$TMP/s3.out"
fi
stop_all "$CLI_PID" "$SRV_PID"

start_server win s4 && start_client lnx c4 linc4
if wait_for "$TMP/s4.out" 'open .*id=linc4' 20; then
  kill -9 "$CLI_PID"
  check "Linux client killed -9 -> wine server" "$TMP/s4.out" "$DEAD_GONE" 5
else
  fail "Linux client never opened on the wine server"
fi
stop_all "$CLI_PID" "$SRV_PID"

start_server win s5 && start_client lnx c5 linc5
if wait_for "$TMP/c5.out" 'open ' 20; then
  kill -STOP "$SRV_PID"
  check "wine server SIGSTOPped -> Linux client" "$TMP/c5.out" "$DEAD_STALL" 5
else
  fail "Linux client never opened"; sed 's/^/      /' "$TMP/c5.out"
fi
stop_all "$CLI_PID" "$SRV_PID"

start_server win s6 && start_client lnx c6 linc6
if wait_for "$TMP/c6.out" 'open ' 20; then
  kill -9 "$SRV_PID"
  check "wine server killed -9 -> Linux client" "$TMP/c6.out" "$DEAD_GONE" 5
else
  fail "Linux client never opened"
fi
stop_all "$CLI_PID" "$SRV_PID"

# ---- network blackhole (needs root, ip netns and nft) ----------------------
# Both programs run in a private network namespace; once connected, nft drops
# every segment of the connection on its loopback. wine creates sockets in
# its wineserver, so the namespace gets its own wineserver: a prefix copy
# (hard links, registry files copied) whose server starts inside it.

blackhole() { # blackhole PORT: drop the connection's segments both ways
  ip netns exec "$NS" nft add table inet vigilw &&
    ip netns exec "$NS" nft add chain inet vigilw out '{ type filter hook output priority 0; }' &&
    ip netns exec "$NS" nft add rule inet vigilw out tcp dport "$1" drop &&
    ip netns exec "$NS" nft add rule inet vigilw out tcp sport "$1" drop
}

unblackhole() {
  ip netns exec "$NS" nft delete table inet vigilw 2>/dev/null || true
}

ns_kill_all() {
  local p
  for p in $(ip netns pids "$NS" 2>/dev/null); do
    kill -CONT "$p" 2>/dev/null
    kill -9 "$p" 2>/dev/null
  done
  gone $(ip netns pids "$NS" 2>/dev/null)
}

# ns_start OUT CMD...: runs CMD in the namespace (wine with the namespace's
# prefix) in the background, output to OUT; sets NS_PID.
ns_start() {
  local out=$1
  shift
  ip netns exec "$NS" env WINEPREFIX="$NSPFX" "$@" >"$out" 2>&1 &
  NS_PID=$!
  disown "$NS_PID"
}

blackhole_cases() {
  local port
  if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
    echo "SKIP  blackhole cases (need root, ip netns and nft)"
    return
  fi
  NS=vigilw-$$
  NSPFX=$WINEPREFIX.ns-$$ # a sibling: hard links need the same file system
  if ! ip netns add "$NS" 2>/dev/null; then
    echo "SKIP  blackhole cases (cannot create a network namespace)"
    return
  fi
  ip -n "$NS" link set lo up
  cp -al "$WINEPREFIX" "$NSPFX" && rm -f "$NSPFX"/*.reg && cp "$WINEPREFIX"/*.reg "$NSPFX"/

  # B1: silence both ways: each side's heartbeat convicts within its timeout.
  ns_start "$TMP/b1s.out" "$LNX" serve 127.0.0.1:0 --interval $INTERVAL
  wait_for "$TMP/b1s.out" 'listening' 10
  port=$(grep -Eo 'listening 127\.0\.0\.1:[0-9]+' "$TMP/b1s.out" | cut -d: -f2)
  ns_start "$TMP/b1c.out" wine "$WIN" connect 127.0.0.1:"$port" --interval $INTERVAL --id winb1 \
    --quiet-rtt --no-reconnect
  if wait_for "$TMP/b1s.out" 'open .*id=winb1' 30 && blackhole "$port"; then
    check "blackhole -> Linux server" "$TMP/b1s.out" 'dead .*cause=heartbeat_timeout' 5
    check "blackhole -> wine client" "$TMP/b1c.out" 'dead .*cause=heartbeat_timeout' 5
  else
    fail "blackhole heartbeat case did not start"; sed 's/^/      /' "$TMP/b1s.out" "$TMP/b1c.out"
  fi
  ns_kill_all
  unblackhole

  # B2: an idle connection with a 20 s heartbeat but a 5 s kernel keepalive
  # budget on the wine side: the kernel gives up first, and the zero-byte
  # WSARecv fails with ETIMEDOUT (STATUS_IO_TIMEOUT). wine cannot set the
  # probe count (TCP_KEEPCNT), so Linux's 9 probes apply: about 11 s.
  ns_start "$TMP/b2s.out" "$LNX" serve 127.0.0.1:0 --no-keepalive
  wait_for "$TMP/b2s.out" 'listening' 10
  port=$(grep -Eo 'listening 127\.0\.0\.1:[0-9]+' "$TMP/b2s.out" | cut -d: -f2)
  ns_start "$TMP/b2c.out" wine "$WIN" connect 127.0.0.1:"$port" --interval 20s --keepalive 5s \
    --id winb2 --quiet-rtt --no-reconnect
  if wait_for "$TMP/b2s.out" 'open .*id=winb2' 30 && blackhole "$port"; then
    check "blackhole idle, keepalive 5s -> wine client" "$TMP/b2c.out" \
      'dead .*cause=keepalive_timeout .*error=ETIMEDOUT' 20
  else
    fail "blackhole keepalive case did not start"; sed 's/^/      /' "$TMP/b2s.out" "$TMP/b2c.out"
  fi
  ns_kill_all
  unblackhole

  # B3: the same with the wine side as the server.
  ns_start "$TMP/b3s.out" wine "$WIN" serve 127.0.0.1:0 --keepalive 5s
  wait_for "$TMP/b3s.out" 'listening' 30
  port=$(grep -Eo 'listening 127\.0\.0\.1:[0-9]+' "$TMP/b3s.out" | cut -d: -f2)
  ns_start "$TMP/b3c.out" "$LNX" connect 127.0.0.1:"$port" --interval 20s --no-keepalive \
    --id linb3 --quiet-rtt --no-reconnect
  if wait_for "$TMP/b3s.out" 'open .*id=linb3' 30 && blackhole "$port"; then
    check "blackhole idle, keepalive 5s -> wine server" "$TMP/b3s.out" \
      'dead .*cause=keepalive_timeout .*error=ETIMEDOUT' 20
  else
    fail "blackhole keepalive case (wine server) did not start"
    sed 's/^/      /' "$TMP/b3s.out" "$TMP/b3c.out"
  fi
  ns_kill_all
  ip netns del "$NS" 2>/dev/null
  NS=
}

NS=
NSPFX=
blackhole_cases

if [ $FAILS -ne 0 ]; then
  echo "interop: $FAILS case(s) failed"
  exit 1
fi
echo "interop: all cases passed"

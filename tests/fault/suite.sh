#!/usr/bin/env bash
# The fault suite: real faults on real TCP connections between network
# namespaces, each detected (or, where the mechanism cannot see it, shown not
# to be detected) by one liveness mechanism, with the cause and the time from
# the fault to the verdict checked against the bound documented for that
# mechanism. See docs/FAULTS.md (generated from a run by scripts/faults.sh)
# and tests/fault/lib.sh (namespaces, cleanup).
#
# Mechanisms (the observer's settings; the victim runs the same program with
# nothing armed):
#   ka   kernel keepalive alone: idle 1 s, interval 1 s, count 2 (fault-peer)
#   uto  TCP_USER_TIMEOUT alone: 2 s (fault-peer)
#   run  `vigil run --budget 3s --lost 1` around fault-peer: libvigil's keepalive +
#        user timeout applied to an unmodified program by LD_PRELOAD
#   hb   vigil's heartbeat: `vigil serve` / `vigil connect`, interval 500 ms,
#        timeout 1500 ms, kernel keepalive off; in the data variants the
#        observer also sends (--send-every: a 100 B trickle for cable_data,
#        1 MiB every 20 ms for stop_data)
#   tls  the same heartbeat inside TLS (serve --tls-cert/--tls-key, connect
#        --tls with the suite's own CA and name): the causes must not change
# Each scenario runs in both directions: role "server" means the observer is
# the server and the client dies; "client" the reverse.
#
# Usage: suite.sh --peer FAULT_PEER [--nfq NFQ_DELAY] [--vigil VIGIL]
#                 [--out DIR] [--jobs N] [--only REGEX]
# Exit: 0 all passed, 1 a case failed, 77 cannot run here (not root, no netns).
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

PEER="" NFQ="" VIGIL="" OUT="" JOBS=${FAULT_JOBS:-12} ONLY="" T_CUT="" T_BACK=""
while [ $# -gt 0 ]; do
  case $1 in
  --peer) PEER=$2; shift 2 ;;
  --nfq) NFQ=$2; shift 2 ;;
  --vigil) VIGIL=$2; shift 2 ;;
  --out) OUT=$2; shift 2 ;;
  --jobs) JOBS=$2; shift 2 ;;
  --only) ONLY=$2; shift 2 ;;
  *) echo "suite.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "fault suite skipped: needs root for network namespaces (uid $(id -u))"
  exit 77
fi
if ! ip netns list >/dev/null 2>&1 || ! command -v nft >/dev/null 2>&1; then
  echo "fault suite skipped: 'ip netns' or nft not available"
  exit 77
fi
if [ -z "$PEER" ] || [ ! -x "$PEER" ]; then
  echo "suite.sh: --peer must name the built fault-peer program" >&2
  exit 2
fi
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/vigil-faults.XXXXXX)
rm -rf "$OUT/results" "$OUT/cases" "$OUT/harness.err"
mkdir -p "$OUT/results" "$OUT/cases"

# A self-signed certificate for the tls mechanism, made for this run (name
# fault.test; the client verifies it with --tls-ca and --tls-name). Without
# openssl or a vigil built with TLS the tls cases are left out, said here.
TLS_DIR=""
if command -v openssl >/dev/null 2>&1 && [ -n "$VIGIL" ] &&
  "$VIGIL" serve --help 2>&1 | grep -q -- --tls-cert; then
  TLS_DIR=$OUT/tls
  mkdir -p "$TLS_DIR"
  if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=fault.test -addext subjectAltName=DNS:fault.test \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" >"$TLS_DIR/openssl.log" 2>&1; then
    echo "suite.sh: openssl could not make the test certificate: $(tail -1 "$TLS_DIR/openssl.log")" >&2
    exit 2
  fi
else
  echo "fault suite: tls cases left out (needs openssl and a vigil built with TLS)"
fi

RUN_ID=$$
RUN_BASE=$((RUN_ID % 200))
PORT=7000
SUITE_START=$(ms_now)

# vigil's own pieces are optional at the case level: a case whose program is
# missing is reported SKIP with the reason, never silently passed.
have_vigil_cmd() {
  [ -n "$VIGIL" ] && [ -x "$VIGIL" ] && "$VIGIL" "$1" --help >/dev/null 2>&1
}
HAVE_HB=0 HAVE_RUN=0 HAVE_IDLE=0
have_vigil_cmd serve && have_vigil_cmd connect && HAVE_HB=1
have_vigil_cmd run && HAVE_RUN=1
have_vigil_cmd idle-timeout && HAVE_IDLE=1

# ---- cleanup ---------------------------------------------------------------

case_pids=()
cleanup_all() {
  local p
  trap - EXIT INT TERM
  for p in "${case_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  # A case tears down its own namespaces when it sees TERM, but bash runs
  # the trap only after the command in progress; give them 3 s, then sweep.
  local alive
  for _ in $(seq 30); do
    alive=0
    for p in "${case_pids[@]}"; do
      kill -0 "$p" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  ns_sweep "^${FAULT_PREFIX}-${RUN_ID}-"
}
on_signal() {
  echo "fault suite: interrupted, cleaning up" >&2
  cleanup_all
  exit 130
}
trap cleanup_all EXIT
trap on_signal INT TERM
ns_sweep_stale

# ---- one case ----------------------------------------------------------------
# Runs in a background subshell. Globals set here: C (case name), CDIR, NSA,
# NSB, NSP, NSR, IPA, IPB (observer's and victim's addresses), VIC (victim pid).

case_setup_vars() {
  C=$1
  CDIR=$OUT/cases/$C
  mkdir -p "$CDIR"
  local n=$2
  local x=$(((RUN_BASE + n) % 256))
  NSA=${FAULT_PREFIX}-${RUN_ID}-${n}-a
  NSB=${FAULT_PREFIX}-${RUN_ID}-${n}-b
  NSP=${FAULT_PREFIX}-${RUN_ID}-${n}-p
  NSR=${FAULT_PREFIX}-${RUN_ID}-${n}-r
  SUBNET=10.231.$x
  IPA=$SUBNET.1
  IPB=$SUBNET.2
}

case_teardown() {
  local ns
  for ns in "$NSA" "$NSB" "$NSP" "$NSR"; do
    ns_destroy "$ns"
  done
}

# Two hosts on one veth; a parking namespace holds B's end while B reboots.
topo_pair() {
  ns_new "$NSA" && ns_new "$NSB" && ns_new "$NSP" || return 1
  ip link add va netns "$NSA" type veth peer name vb netns "$NSB" || return 1
  ip -n "$NSA" addr add "$IPA/24" dev va
  ip -n "$NSB" addr add "$IPB/24" dev vb
  ip -n "$NSA" link set va up
  ip -n "$NSB" link set vb up
}

# A (client side, 10.231.x.0/25) -- R (masquerade, forgets idle flows after
# 4 s) -- B (server side, 10.231.x.128/25). B never sees A's address.
topo_nat() {
  ns_new "$NSA" && ns_new "$NSR" && ns_new "$NSB" || return 1
  IPA=$SUBNET.1
  IPB=$SUBNET.130
  ip link add va netns "$NSA" type veth peer name ra netns "$NSR" || return 1
  ip link add vb netns "$NSB" type veth peer name rb netns "$NSR" || return 1
  ip -n "$NSA" addr add "$IPA/25" dev va
  ip -n "$NSR" addr add "$SUBNET.2/25" dev ra
  ip -n "$NSR" addr add "$SUBNET.129/25" dev rb
  ip -n "$NSB" addr add "$IPB/25" dev vb
  ip -n "$NSA" link set va up
  ip -n "$NSR" link set ra up
  ip -n "$NSR" link set rb up
  ip -n "$NSB" link set vb up
  ip -n "$NSA" route add default via "$SUBNET.2"
  ip netns exec "$NSR" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$NSR" nft -f - <<EOF || return 1
table ip vfnat {
  chain outgoing { type nat hook postrouting priority 100; oifname "rb" masquerade; }
}
table inet vffw {
  chain forwarding {
    type filter hook forward priority 0; policy drop;
    ct state established accept
    iifname "ra" oifname "rb" tcp flags & (syn|ack) == syn ct state new accept
  }
  chain incoming { type filter hook input priority 0; policy drop; }
}
EOF
  ip netns exec "$NSR" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_established=4 \
    net.netfilter.nf_conntrack_tcp_loose=0 || return 1
}

# start NS OUTFILE CMD...: runs CMD inside NS in the background; sets LAST_PID.
start() {
  local ns=$1 out=$2
  shift 2
  ip netns exec "$ns" "$@" >"$out" 2>"$out.err" </dev/null &
  LAST_PID=$!
}

peer_cmd() { # peer_cmd ROLE(server|client) ADDR [fault-peer options...]
  local role=$1 addr=$2
  shift 2
  if [ "$role" = server ]; then
    echo "$PEER --listen $addr $PORT $*"
  else
    echo "$PEER --connect $addr $PORT $*"
  fi
}

# The observer and victim commands for a mechanism. $1 = mech, $2 = role of
# the observer, $3 = server address, $4 = extra observer options (fault-peer
# data options, or heartbeat overrides "INTERVAL TIMEOUT").
obs_cmd() {
  local mech=$1 role=$2 addr=$3 extra=$4
  case $mech in
  ka) peer_cmd "$role" "$addr" --ka 1,1,2 $extra ;;
  uto) peer_cmd "$role" "$addr" --uto 2000 $extra ;;
  run) echo "$VIGIL run --budget 3s --lost 1 -- $(peer_cmd "$role" "$addr" $extra)" ;;
  hb) hb_cmd "$role" "$addr" $extra ;;
  tls) echo "$(hb_cmd "$role" "$addr" $extra) $(tls_opts "$role")" ;;
  esac
}
vic_cmd() {
  local mech=$1 role=$2 addr=$3 extra=${4:-}
  case $mech in
  hb) hb_cmd "$role" "$addr" $extra ;;
  tls) echo "$(hb_cmd "$role" "$addr" $extra) $(tls_opts "$role")" ;;
  *) peer_cmd "$role" "$addr" $extra ;;
  esac
}
tls_opts() { # tls_opts ROLE: the TLS options of `vigil serve` / `vigil connect`
  if [ "$1" = server ]; then
    echo "--tls-cert $TLS_DIR/cert.pem --tls-key $TLS_DIR/key.pem"
  else
    echo "--tls-ca $TLS_DIR/cert.pem --tls-name fault.test"
  fi
}
hb_cmd() { # hb_cmd ROLE ADDR [INTERVAL TIMEOUT [MORE OPTIONS...]]
  local role=$1 addr=$2 iv=${3:-500ms} to=${4:-1500ms}
  shift 2
  shift $(($# < 2 ? $# : 2))
  if [ "$role" = server ]; then
    echo "$VIGIL serve $addr:$PORT --interval $iv --timeout $to --no-keepalive --json $*"
  else
    echo "$VIGIL connect $addr:$PORT --interval $iv --timeout $to --no-keepalive --json --no-reconnect --quiet-rtt --id fault-client $*"
  fi
}

# Starts server then client; VIC (victim pid), OBS_OUT/VIC_OUT files. $1 mech,
# $2 observer role, $3 server address, $4 observer extra, $5 observer ns,
# $6 victim ns, $7 victim extra.
start_pair() {
  local mech=$1 role=$2 addr=$3 oextra=$4 ons=$5 vns=$6 vextra=${7:-}
  OBS_OUT=$CDIR/observer.out
  VIC_OUT=$CDIR/victim.out
  if [ "$role" = server ]; then
    # shellcheck disable=SC2046
    start "$ons" "$OBS_OUT" $(obs_cmd "$mech" server "$addr" "$oextra")
    OBS=$LAST_PID

    wait_for "$OBS_OUT" '"event":"listening"' 3000 || return 1
    # shellcheck disable=SC2046
    start "$vns" "$VIC_OUT" $(vic_cmd "$mech" client "$addr" "$vextra")
    VIC=$LAST_PID
  else
    # shellcheck disable=SC2046
    start "$vns" "$VIC_OUT" $(vic_cmd "$mech" server "$addr" "$vextra")
    VIC=$LAST_PID
    wait_for "$VIC_OUT" '"event":"listening"' 3000 || return 1
    # shellcheck disable=SC2046
    start "$ons" "$OBS_OUT" $(obs_cmd "$mech" client "$addr" "$oextra")
    OBS=$LAST_PID

  fi
  wait_for "$OBS_OUT" '"event":"open"' 3000 && wait_for "$VIC_OUT" '"event":"open"' 3000
}

event_time_ms() { # the event's wall-clock time in ms from a JSON line
  local line=$1 v
  if v=$(json_field "$line" t_ms); then
    echo "$v"
  else
    v=$(json_field "$line" t) && awk -v t="$v" 'BEGIN { printf "%.3f\n", t * 1000 }'
  fi
}

# record STATUS OUTCOME CAUSE TIME_MS NOTE: one TSV line per case.
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SCEN" "$MECH" "$ROLE" "$EXPECT" "$BOUND" \
    "$2" "$3" "$4" "$1" "$5" >"$OUT/results/$C.tsv"
}

# early_check LINE CAUSE: a silence verdict from vigil must never come
# before its timeout (DESIGN.md): silent_ms >= timeout_ms. Sets EARLY_NOTE.
early_check() {
  local line=$1 cause=$2 silent timeout
  EARLY_NOTE=""
  case $cause in heartbeat_timeout | peer_stalled) ;; *) return 0 ;; esac
  silent=$(json_field "$line" silent_ms) || return 0
  timeout=$(json_field "$line" timeout_ms) || return 0
  EARLY_NOTE="silent ${silent} ms, timeout ${timeout} ms"
  ((silent >= timeout))
}

# data_check LINE: in the heartbeat's data variants the observer was sending
# when the peer went away, and its "dead" line must say so with the data keys
# of docs/CLI.md: messages accepted (sent > 0), and for the flood data still
# held by the library at the death (unsent or queue_full > 0: the peer's
# window was shut, so the queue could not drain). The trickle's 100 B
# messages go straight into the kernel's send buffer, where they stay
# unacknowledged once the cable is out: there tcp_unacked > 0 is what shows
# the pending data (the library's unsent is 0 and only reported). Sets
# DATA_NOTE.
data_check() {
  local line=$1 k v sent unsent qfull unacked
  DATA_NOTE=""
  [ "$MECH" = hb ] || return 0
  case $SCEN in *_data) ;; *) return 0 ;; esac
  for k in sent queue_full unsent unsent_bytes tcp_unacked tcp_snd_wnd; do
    if ! v=$(json_field "$line" "$k") || ! [[ $v =~ ^[0-9]+$ ]]; then
      DATA_NOTE="no numeric \"$k\" in the dead line"
      return 1
    fi
  done
  sent=$(json_field "$line" sent)
  unsent=$(json_field "$line" unsent)
  qfull=$(json_field "$line" queue_full)
  unacked=$(json_field "$line" tcp_unacked)
  DATA_NOTE="sent $sent, unsent $unsent ($(json_field "$line" unsent_bytes) B), queue_full $qfull,"
  DATA_NOTE+=" tcp_unacked $unacked, tcp_snd_wnd $(json_field "$line" tcp_snd_wnd)"
  ((sent > 0)) || return 1
  case $SCEN in
  stop_data) ((unsent + qfull > 0)) ;;
  cable_data) ((unacked > 0)) ;;
  esac
}

# ack_before_cut LINE CAUSE T_DEAD_MS: the known ambiguity of docs/RUNTIME.md
# ("Causes from evidence"). The peer's kernel ACKs our ping at once, in
# softirq; its application's pong follows when it is scheduled, which on a
# loaded machine can take tens of ms. A cable cut in between leaves the
# evidence of a stalled application: an ACK after the last valid frame, and
# nothing of ours unacknowledged. peer_stalled instead of heartbeat_timeout
# is accepted only when the dead line's own evidence dates that ACK
# (t - tcp_last_ack_ms) before the link went down (T_CUT, taken after the
# ip command returned; 4 ms for the kernel's jiffy-granular stamp). An ACK
# dated after the cut is a defect and stays a failure. Sets CUT_NOTE.
ack_before_cut() {
  local line=$1 cause=$2 t=$3 ack ack_at
  CUT_NOTE=""
  [ "$cause" = peer_stalled ] && [ -n "$T_CUT" ] || return 1
  [[ "|$EXPECT|" == *"|heartbeat_timeout|"* ]] || return 1
  ack=$(json_field "$line" tcp_last_ack_ms) && [[ $ack =~ ^[0-9]+$ ]] || return 1
  ack_at=$(awk -v t="$t" -v a="$ack" -v c="$T_CUT" 'BEGIN { printf "%d\n", t - a - c + 0.5 }')
  if ((ack_at > 4)); then
    CUT_NOTE="the peer's kernel ACKed ${ack_at} ms after the cut"
    return 1
  fi
  CUT_NOTE="ambiguity: the peer's kernel ACKed our ping $((-ack_at)) ms before the cut, its pong had not left"
}

# down_at_verdict CAUSE T_DEAD_MS: a rebooting host answers with RST only
# when a segment of ours reaches it after it is back. When rebuilding its
# namespace outlasts keepalive's schedule (idle 1 s, then 2 probes 1 s apart,
# for both --ka 1,1,2 and run --budget 3s --lost 1; seen at load average
# 110), keepalive convicts first, and truly: its last probe, sent one
# interval before the verdict, found the host down. keepalive_timeout
# instead of reset passes only when that probe left before the host was back
# (T_BACK, taken after its link was up again). Sets CUT_NOTE.
down_at_verdict() {
  local cause=$1 t=$2 probe_to_back
  [ "$SCEN" = reboot ] && [ "$cause" = keepalive_timeout ] && [ -n "$T_BACK" ] || return 1
  [[ "|$EXPECT|" == *"|reset|"* ]] || return 1
  probe_to_back=$(awk -v t="$t" -v b="$T_BACK" 'BEGIN { printf "%d\n", b - (t - 1000) + 0.5 }')
  if ((probe_to_back <= 0)); then
    CUT_NOTE="the host was back ${probe_to_back#-} ms before the last probe"
    return 1
  fi
  CUT_NOTE="the last probe left ${probe_to_back} ms before the host was back: keepalive convicted a host that was down"
}

# judge T_FAULT_MS: waits for the observer's verdict and records the result
# against EXPECT ("none" or "cause1|cause2") and BOUND (ms).
judge() {
  local t0=$1 line cause t dt
  CUT_NOTE=""
  local window=$((BOUND + 1000))
  if wait_for "$OBS_OUT" '"event":"dead"' "$window"; then
    line=$(grep -m1 '"event":"dead"' "$OBS_OUT")
    cause=$(json_field "$line" cause)
    t=$(event_time_ms "$line")
    # A cut counts from when the path went down (T_CUT): under load the
    # ip command alone took up to 644 ms, frames still arriving meanwhile.
    dt=$(fsub "$t" "${T_CUT:-$t0}")
    if [ "$EXPECT" = none ]; then
      record FAIL detected "$cause" "$dt" "expected no verdict within ${window} ms"
    elif ! [[ "|$EXPECT|" == *"|$cause|"* ]] && ! ack_before_cut "$line" "$cause" "$t" &&
      ! down_at_verdict "$cause" "$t"; then
      record FAIL detected "$cause" "$dt" "wrong cause${CUT_NOTE:+ ($CUT_NOTE)}"
    elif ((dt > BOUND)); then
      record FAIL detected "$cause" "$dt" "later than the bound"
    elif ! early_check "$line" "$cause"; then
      record FAIL detected "$cause" "$dt" "verdict before the timeout: $EARLY_NOTE"
    elif ! data_check "$line"; then
      record FAIL detected "$cause" "$dt" "$EARLY_NOTE; data keys: $DATA_NOTE"
    else
      local note=$EARLY_NOTE
      [ -n "$DATA_NOTE" ] && note="${note:+$note; }$DATA_NOTE"
      [ -n "$CUT_NOTE" ] && note="${note:+$note; }$CUT_NOTE"
      record PASS detected "$cause" "$dt" "$note"
    fi
  elif [ "$EXPECT" = none ]; then
    record PASS none "-" "$(fsub "$(ms_now)" "$t0")" "still open (watched)"
  else
    record FAIL none "-" "-" "no verdict within $window ms"
  fi
}

# Faults, applied to host B (the victim's side).
# T_CUT: when B's path went down (cable, vanish, oneway), for the judge.
fault_cable() {
  ip -n "$NSB" link set vb down
  T_CUT=$(ms_now)
}
fault_kill9() { kill -KILL "$VIC" 2>/dev/null; }
fault_stop() { kill -STOP "$VIC" 2>/dev/null; }
fault_vanish() {
  ip -n "$NSB" link set vb down
  T_CUT=$(ms_now)
  kill -KILL "$VIC" 2>/dev/null
  wait "$VIC" 2>/dev/null
  ip netns exec "$NSB" ss -K dst "$IPA" >/dev/null 2>&1
}
fault_oneway() { # B's packets never reach A; A's still reach B
  ip netns exec "$NSB" nft -f - <<EOF
table inet vfoneway {
  chain out { type filter hook output priority 0; ip daddr $IPA drop; }
}
EOF
  T_CUT=$(ms_now)
}
# The host reboots: its link is parked (nothing leaves B: no FIN, no RST),
# the process and its sockets die, the namespace is deleted and created
# again with the same address and the same link (same MAC, so A's neighbour
# entry stays valid). A's next segment meets a host that knows nothing of
# the connection: RST.
fault_reboot() {
  ip -n "$NSB" link set vb netns "$NSP"
  kill -KILL "$VIC" 2>/dev/null
  wait "$VIC" 2>/dev/null
  ip netns exec "$NSB" ss -K >/dev/null 2>&1
  ip netns del "$NSB"
  ns_new "$NSB"
  ip -n "$NSP" link set vb netns "$NSB"
  ip -n "$NSB" addr add "$IPB/24" dev vb
  ip -n "$NSB" link set vb up
  T_BACK=$(ms_now)
}

# expect SCENARIO MECH -> sets EXPECT and BOUND.
expect() {
  local s=$1 m=$2
  local ka=4000 uto=3500 run=4500 hb=2000 k=$m
  # The heartbeat inside TLS is held to the heartbeat's expectations.
  [ "$m" = tls ] && k=hb
  case $k in ka) BOUND=$ka ;; uto) BOUND=$uto ;; run) BOUND=$run ;; hb) BOUND=$hb ;; esac
  # A stalled peer's zero window is probed with exponential backoff, and the
  # user timeout is checked only when a probe is due: the abort comes at the
  # first probe past UTO, at most UTO later again.
  if [ "$s" = stop_data ]; then
    case $m in uto) BOUND=5000 ;; run) BOUND=7000 ;; esac
  fi
  case $s/$k in
  cable/ka | vanish/ka | oneway/ka | cable/run | vanish/run | oneway/run) EXPECT=keepalive_timeout ;;
  cable/hb | vanish/hb | oneway/hb | cable_data/hb) EXPECT=heartbeat_timeout ;;
  cable/uto | vanish/uto | oneway/uto | reboot/uto | stop/*) EXPECT=none ;;
  cable_data/ka | stop_data/ka) EXPECT=none ;;
  cable_data/* | stop_data/*) EXPECT=user_timeout ;;
  kill9/*) EXPECT="closed|reset" BOUND=1000 ;;
  reboot/*) EXPECT=reset ;;
  esac
  # A stopped peer's kernel still ACKs: vigil may name it peer_stalled (zero
  # window, or no pong while TCP is alive) or, from silence, heartbeat_timeout.
  case $s/$k in stop/hb | stop_data/hb) EXPECT="peer_stalled|heartbeat_timeout" ;; esac
  # A rebooted host answers with RST only when our next retransmission reaches
  # it; RTO backoff spaces those out (0.2, 0.6, 1.4 s after the first send).
  # When the rebuild of its namespace outlasts that (seen with 12 cases at a
  # time on 2 cores), the heartbeat's silence convicts first, and truly.
  case $s/$k in reboot/hb) EXPECT="reset|heartbeat_timeout" ;; esac
}

# A two-host scenario. $1 case number, $2 scenario, $3 mech, $4 role.
case_basic() {
  local n=$1
  SCEN=$2 MECH=$3 ROLE=$4
  case_setup_vars "$SCEN-$MECH-$ROLE" "$n"
  trap 'case_teardown; exit 130' TERM
  expect "$SCEN" "$MECH"
  if [ "$MECH" = hb ] && [ $HAVE_HB = 0 ]; then
    record SKIP - - - "vigil serve/connect not available"; return
  fi
  if [ "$MECH" = run ] && [ $HAVE_RUN = 0 ]; then
    record SKIP - - - "vigil run not available"; return
  fi
  local oextra="" fault=${SCEN%_data}
  case $SCEN/$MECH in
  cable_data/hb) oextra="500ms 1500ms --send-every 100ms --send-size 100" ;;
  stop_data/hb) oextra="500ms 1500ms --send-every 20ms --send-size 1048576" ;;
  cable_data/*) oextra="--send 100,100" ;;
  stop_data/*) oextra="--flood" ;;
  esac
  local saddr=$IPA ons=$NSA vns=$NSB
  [ "$ROLE" = client ] && saddr=$IPB
  topo_pair || { record FAIL - - - "topology setup failed"; case_teardown; return; }
  if ! start_pair "$MECH" "$ROLE" "$saddr" "$oextra" "$ons" "$vns"; then
    record FAIL - - - "connection did not open: $(tail -c 300 "$CDIR"/*.err | tr '\n\t' '  ')"
    case_teardown
    return
  fi
  # For stop_data, let the flood fill the stopped peer's window first so the
  # verdict measures TCP_USER_TIMEOUT, not a buffer filling up.
  sleep 0.3
  local t0
  t0=$(ms_now)
  T_CUT="" T_BACK=""
  "fault_$fault"
  judge "$t0"
  case_teardown
}

# NAT: $1 case number, $2 mech (hb|ka), $3 variant (below|above), $4 role.
# The connection goes idle at "open"; the router forgets it 4 s later.
case_nat() {
  local n=$1 variant=$3
  MECH=$2 ROLE=$4 SCEN=nat_$3
  case_setup_vars "$SCEN-$MECH-$ROLE" "$n"
  trap 'case_teardown; exit 130' TERM
  if [ "$MECH" = hb ] && [ $HAVE_HB = 0 ]; then
    EXPECT=- BOUND=-
    record SKIP - - - "vigil serve/connect not available"; return
  fi
  local oextra vextra
  if [ "$MECH" = hb ]; then
    # Pings go out after 75..100% of the interval (jitter): 6 s -> 4.5 s at
    # the earliest, after the router forgot; 2 s keeps refreshing it.
    if [ "$variant" = above ]; then oextra="6s 12s"; EXPECT=heartbeat_timeout BOUND=13000
    else oextra="2s 6s"; EXPECT=none BOUND=12000; fi
  else
    if [ "$variant" = above ]; then oextra="--ka 6,1,2"; EXPECT=keepalive_timeout BOUND=9000
    else oextra="--ka 2,1,2"; EXPECT=none BOUND=12000; fi
  fi
  vextra=$oextra
  [ "$MECH" = ka ] && vextra=""
  topo_nat || { record FAIL - - - "NAT topology setup failed"; case_teardown; return; }
  local ons=$NSA vns=$NSB
  [ "$ROLE" = server ] && ons=$NSB vns=$NSA
  # The observer's role is $ROLE; the server always lives behind the NAT's
  # outside (B), so for ROLE=server the observer runs in B.
  OBS_OUT=$CDIR/observer.out
  VIC_OUT=$CDIR/victim.out
  local sout=$OBS_OUT cout=$VIC_OUT sextra=$oextra cextra=$vextra
  if [ "$ROLE" = client ]; then sout=$VIC_OUT cout=$OBS_OUT sextra=$vextra cextra=$oextra; fi
  # shellcheck disable=SC2046
  if [ "$MECH" = hb ]; then
    start "$NSB" "$sout" $(hb_cmd server "$IPB" $sextra)
  else
    start "$NSB" "$sout" $(peer_cmd server "$IPB" $sextra)
  fi
  wait_for "$sout" '"event":"listening"' 3000
  # shellcheck disable=SC2046
  if [ "$MECH" = hb ]; then
    start "$NSA" "$cout" $(hb_cmd client "$IPB" $cextra)
  else
    start "$NSA" "$cout" $(peer_cmd client "$IPB" $cextra)
  fi
  if ! wait_for "$OBS_OUT" '"event":"open"' 3000; then
    record FAIL - - - "connection through the NAT did not open"
    case_teardown
    return
  fi
  local t0
  t0=$(event_time_ms "$(grep -m1 '"event":"open"' "$OBS_OUT")")
  judge "$t0"
  case_teardown
}

# Soak: a lossy or a delayed, jittery link under a healthy connection. With
# keepalive sized by docs/KEEPALIVE.md ("Sizing for a lossy path") and the
# heartbeat by docs/FAULTS.md's rule, neither end may ever give a verdict. $1 case number, $2 link
# (loss|jitter), $3 mech (hb|ka). `make soak SOAK_S=1200` runs these alone
# for longer (FAULT_SOAK_S); `make test` runs them for 30 s.
SOAK_S=${FAULT_SOAK_S:-30}
LOSS_PCT=20
JITTER_MAX_MS=300
case_soak() {
  local n=$1 link=$2
  MECH=$3 ROLE=both SCEN=$2
  case_setup_vars "$SCEN-$MECH-$ROLE" "$n"
  trap 'case_teardown; exit 130' TERM
  EXPECT=none BOUND=$((SOAK_S * 1000))
  if [ "$MECH" = hb ] && [ $HAVE_HB = 0 ]; then
    record SKIP - - - "vigil serve/connect not available"; return
  fi
  if [ "$link" = jitter ] && [ -z "$NFQ" ]; then
    record SKIP - - - "nfq-delay not built (libnetfilter-queue-dev missing)"; return
  fi
  topo_pair || { record FAIL - - - "topology setup failed"; case_teardown; return; }
  local settings rules
  # Keepalive (docs/KEEPALIVE.md, vigil_keepalive_count_for_loss): a probe
  # round trip fails with q = 1 - (1 - p)^2; count consecutive failures kill
  # an idle connection, which starts at most horizon / idle probe series, so
  # expected false deaths = (horizon / idle) x q^count. For at most 0.001
  # over 24 h at idle 1 s: count 18 at p = 20% (q = 0.36; 86400 x 0.36^18 =
  # 8.9e-4). The old count 8 gave 86400 x 0.36^8 = 24 a day. Jitter: every
  # answer comes within the 600 ms round trip, before the next probe, so no
  # probe is lost (q = 0, count 1); 3 is the library's default floor.
  # Heartbeat (docs/FAULTS.md): k consecutive losses of one segment delay it
  # by 0.2 s x (2^k - 1): timeout >= interval + 6.2 s -> 8 s at 20%;
  # jitter d_max one way: timeout >= interval + 2 d_max + 0.2 s -> 3 s. That
  # rule has no horizon: at 20% it allows ~11 false deaths a day per end
  # (docs/FAULTS.md), so a long heartbeat soak on the lossy link can fail.
  # fault-peer's own --max-ms (default 10 minutes) would end the connection
  # in a long soak: the other end would count that "closed" as a death.
  local maxms="--max-ms $(((SOAK_S + 600) * 1000))"
  if [ "$link" = loss ]; then
    if [ "$MECH" = hb ]; then settings="1s 8s"; else settings="--ka 1,1,18"; fi
  else
    if [ "$MECH" = hb ]; then settings="1s 3s"; else settings="--ka 1,1,3"; fi
  fi
  local vset=$maxms oset="$settings $maxms"
  [ "$MECH" = hb ] && vset=$settings oset=$settings
  # The link is impaired once the connection is open: the soak is about a
  # healthy established connection, not about handshakes over a bad link.
  if ! start_pair "$MECH" client "$IPB" "$oset" "$NSA" "$NSB" "$vset"; then
    record FAIL - - - "connection did not open"
    case_teardown
    return
  fi
  if [ "$link" = loss ]; then
    rules="meta l4proto tcp counter numgen random mod 100 < $LOSS_PCT counter drop"
  else
    start "$NSB" "$CDIR/nfq.out" "$NFQ" 0 0 "$JITTER_MAX_MS" "$n"
    NFQ_PID=$LAST_PID
    if ! wait_for "$CDIR/nfq.out" bound 3000; then
      record FAIL - - - "nfq-delay did not start"; case_teardown; return
    fi
    # nft's own queue statement needs nft_queue, absent on this kernel; the
    # iptables NFQUEUE target (xt_NFQUEUE) works.
    if ! ip netns exec "$NSB" iptables -A INPUT -p tcp -j NFQUEUE --queue-num 0 --queue-bypass ||
      ! ip netns exec "$NSB" iptables -A OUTPUT -p tcp -j NFQUEUE --queue-num 0 --queue-bypass; then
      record FAIL - - - "iptables NFQUEUE rule failed"; case_teardown; return
    fi
    rules="meta l4proto tcp accept"
  fi
  if ! printf 'table inet vflink {\n chain i { type filter hook input priority 0; %s; }\n chain o { type filter hook output priority 0; %s; }\n}\n' \
    "$rules" "$rules" | ip netns exec "$NSB" nft -f -; then
    record FAIL - - - "nft rule for the $link link failed"; case_teardown; return
  fi
  local t0 deaths=0 f ended=0
  t0=$(ms_now)

  # Held by the clock, not by a count of sleeps (their overhead adds up).
  local now end=$((${t0%.*} + SOAK_S * 1000))
  while now=$(ms_now) && ((${now%.*} < end)); do sleep 0.5; done
  for f in "$OBS_OUT" "$VIC_OUT"; do
    deaths=$((deaths + $(grep -c '"event":"dead"' "$f")))
    ended=$((ended + $(grep -c '"event":"max_time"' "$f")))
  done
  local note=""
  if [ "$MECH" = ka ]; then
    # The observer's probe statistics: probes the kernel sent (TcpExtTCPKeepAlive
    # of its namespace, which holds only this connection) and fault-peer's
    # histogram of runs of unanswered probes, printed on SIGTERM.
    local sent stats
    sent=$(ip netns exec "$NSA" awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 }
      else for (i = 1; i <= NF; i++) if (k[i] == "TCPKeepAlive") print $i }' /proc/net/netstat)
    kill -TERM "$OBS" 2>/dev/null
    if wait_for "$OBS_OUT" '"event":"stats"' 2000; then
      stats=$(grep -m1 '"event":"stats"' "$OBS_OUT")
      note="; ${sent:-?} probes sent, longest run unanswered $(json_field "$stats" max_probes), runs of 1,2,.. unanswered: $(sed 's/.*"probe_runs":\[\([0-9,]*\)\].*/\1/' <<<"$stats")"
    fi
  fi
  if [ "$link" = loss ]; then
    # Two counters per chain: all TCP packets, then the dropped ones.
    note="$note; $(ip netns exec "$NSB" nft list table inet vflink | awk '/counter/ {
      n = 0; for (i = 1; i <= NF; i++) if ($i == "packets") { c[++k] = $(i + 1) } }
      END { printf "%d of %d packets dropped", c[2] + c[4], c[1] + c[3] }')"
  fi
  if [ "$link" = jitter ]; then
    kill -TERM "$NFQ_PID" 2>/dev/null
    wait_for "$CDIR/nfq.out" packets 2000 && note="$note; $(grep packets "$CDIR/nfq.out" | sed 's/^nfq-delay: //')"
  fi
  if ((deaths == 0 && ended == 0)); then
    record PASS none "-" "$(fsub "$(ms_now)" "$t0")" "0 false deaths on either end (${settings// /\/})$note"
  elif ((deaths == 0)); then
    record FAIL none "-" "$(fsub "$(ms_now)" "$t0")" "fault-peer's --max-ms ended the connection before the soak did"
  else
    local line
    line=$(grep -h -m1 '"event":"dead"' "$OBS_OUT" "$VIC_OUT" | head -1)
    record FAIL detected "$(json_field "$line" cause)" "-" \
      "$deaths false deaths (${settings// /\/}); first: $(sed 's/^{//; s/}$//; s/"//g' <<<"$line")$note"
  fi
  case_teardown
}

# An unmodified Debian program (socat) after a cable pull, with and without
# `vigil run`. Idle: socat only reads. Data: socat writes a line every 100 ms.
# The wrapper script prints a "dead" line with the time socat exits.
case_socat() {
  local n=$1 variant=$2
  MECH=$3 ROLE=client SCEN=socat_$2
  case_setup_vars "$SCEN-$MECH-$ROLE" "$n"
  trap 'case_teardown; exit 130' TERM
  EXPECT=none BOUND=4500
  [ "$MECH" = run ] && EXPECT=ETIMEDOUT
  if ! command -v socat >/dev/null; then
    record SKIP - - - "socat not installed"; return
  fi
  if [ "$MECH" = run ] && [ $HAVE_RUN = 0 ]; then
    record SKIP - - - "vigil run not available"; return
  fi
  topo_pair || { record FAIL - - - "topology setup failed"; case_teardown; return; }
  OBS_OUT=$CDIR/observer.out
  VIC_OUT=$CDIR/victim.out
  # shellcheck disable=SC2046
  start "$NSB" "$VIC_OUT" $(peer_cmd server "$IPB")
  wait_for "$VIC_OUT" '"event":"listening"' 3000
  printf '#!/bin/sh\nwhile :; do echo x; sleep 0.1; done\n' >"$CDIR/gen.sh"
  cat >"$CDIR/wrap.sh" <<'EOF'
#!/bin/sh
err=$1
shift
"$@" 2>"$err"
c=exit_$?
grep -q "timed out" "$err" && c=ETIMEDOUT
printf '{"t_ms":%s,"event":"dead","cause":"%s"}\n' "$(date +%s%3N)" "$c"
EOF
  chmod +x "$CDIR/gen.sh" "$CDIR/wrap.sh"
  local pre=() left=(-u "TCP:$IPB:$PORT" STDOUT)
  [ "$variant" = data ] && left=(-u "EXEC:$CDIR/gen.sh" "TCP:$IPB:$PORT")
  [ "$MECH" = run ] && pre=("$VIGIL" run --budget 3s --lost 1 --)
  start "$NSA" "$OBS_OUT" "$CDIR/wrap.sh" "$CDIR/socat.err" "${pre[@]}" socat "${left[@]}"
  if ! wait_for "$VIC_OUT" '"event":"open"' 3000; then
    record FAIL - - - "socat did not connect: $(tr '\n' ' ' <"$CDIR/socat.err" 2>/dev/null)"
    case_teardown
    return
  fi
  sleep 0.3
  local t0
  t0=$(ms_now)
  fault_cable
  judge "$t0"
  case_teardown
}

# `vigil idle-timeout` through the NAT that forgets flows after 4 s: the
# estimate must be within 1 s of the configured conntrack timeout.
NAT_TIMEOUT_MS=4000
case_idle_timeout() {
  local n=$1
  MECH=tool ROLE=client SCEN=idle_timeout
  case_setup_vars "$SCEN-$MECH-$ROLE" "$n"
  trap 'case_teardown; exit 130' TERM
  EXPECT="${NAT_TIMEOUT_MS}+-1000" BOUND=1000
  if [ $HAVE_IDLE = 0 ] || [ $HAVE_HB = 0 ]; then
    record SKIP - - - "vigil idle-timeout / serve not available"; return
  fi
  topo_nat || { record FAIL - - - "NAT topology setup failed"; case_teardown; return; }
  OBS_OUT=$CDIR/observer.out
  VIC_OUT=$CDIR/victim.out
  start "$NSB" "$VIC_OUT" "$VIGIL" serve "$IPB:$PORT" --json
  wait_for "$VIC_OUT" '"event":"listening"' 3000
  local t0 line est lo hi
  t0=$(ms_now)
  start "$NSA" "$OBS_OUT" "$VIGIL" idle-timeout "$IPB:$PORT" --json --max 30s
  if ! wait_for "$OBS_OUT" '"event":"result"' 60000; then
    record FAIL - - - "no result: $(tail -c 300 "$OBS_OUT.err" | tr '\n' ' ')"
    case_teardown
    return
  fi
  line=$(grep -m1 '"event":"result"' "$OBS_OUT")
  est=$(json_field "$line" timeout_ms)
  lo=$(json_field "$line" alive_ms)
  hi=$(json_field "$line" dead_ms)
  local err=$((est - NAT_TIMEOUT_MS)) took
  took=$(fsub "$(ms_now)" "$t0")
  ((err < 0)) && err=$((-err))
  if [[ "$est" =~ ^[0-9]+$ ]] && ((err <= 1000)); then
    record PASS found "estimate_${est}ms" "$err" "alive after ${lo} ms, gone after ${hi} ms; run took ${took} ms"
  else
    record FAIL found "estimate_${est}ms" "$err" "alive after ${lo} ms, gone after ${hi} ms"
  fi
  case_teardown
}

# ---- the plan ----------------------------------------------------------------

plan=()
n=0
for scen in cable cable_data vanish kill9 reboot stop stop_data oneway; do
  for mech in ka uto run hb; do
    for role in server client; do
      n=$((n + 1))
      plan+=("case_basic $n $scen $mech $role")
    done
  done
done
# The heartbeat over TLS where TLS could change what is seen: a hung peer
# (its kernel still ACKs, TLS records stop), a pulled cable, a killed peer.
if [ -n "$TLS_DIR" ]; then
  for scen in cable kill9 stop; do
    for role in server client; do
      n=$((n + 1))
      plan+=("case_basic $n $scen tls $role")
    done
  done
fi
for mech in ka hb; do
  for variant in below above; do
    for role in server client; do
      n=$((n + 1))
      plan+=("case_nat $n $mech $variant $role")
    done
  done
done

for link in loss jitter; do
  for mech in hb ka; do
    n=$((n + 1))
    plan+=("case_soak $n $link $mech")
  done
done
for variant in idle data; do
  for mech in plain run; do
    n=$((n + 1))
    plan+=("case_socat $n $variant $mech")
  done
done
n=$((n + 1))
plan+=("case_idle_timeout $n")

# Longest cases first so the tail of the run is short.
ordered=()
for p in "${plan[@]}"; do [[ $p == case_soak* || $p == case_idle* ]] && ordered+=("$p"); done
for p in "${plan[@]}"; do [[ $p == case_nat* ]] && ordered+=("$p"); done
for p in "${plan[@]}"; do [[ $p != case_nat* && $p != case_soak* && $p != case_idle* ]] && ordered+=("$p"); done

echo "fault suite: ${#ordered[@]} cases, $JOBS at a time, results in $OUT"
for p in "${ordered[@]}"; do
  if [ -n "$ONLY" ] && ! [[ $p =~ $ONLY ]]; then continue; fi
  while (($(jobs -rp | wc -l) >= JOBS)); do
    wait -n 2>/dev/null
  done
  # shellcheck disable=SC2086
  ( $p ) 2>>"$OUT/harness.err" &
  case_pids+=($!)
done
wait

# ---- report -----------------------------------------------------------------

SUITE_MS=$(fsub "$(ms_now)" "$SUITE_START")
echo "$SUITE_MS" >"$OUT/suite_ms"
fail=0
printf '%-11s %-4s %-7s %-32s %-7s %-9s %-18s %-7s %s\n' scenario mech role expected bound_ms \
  outcome cause time_ms status
for f in "$OUT"/results/*.tsv; do
  [ -f "$f" ] || continue
  IFS=$'\t' read -r s m r e b o c t st note <"$f"
  printf '%-11s %-4s %-7s %-32s %-7s %-9s %-18s %-7s %s %s\n' "$s" "$m" "$r" "$e" "$b" "$o" "$c" \
    "$t" "$st" "$note"
  [ "$st" = FAIL ] && fail=1
done
echo "fault suite: total ${SUITE_MS} ms"
exit $fail

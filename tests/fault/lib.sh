# shellcheck shell=bash
# Network-namespace harness for the fault suite (sourced by suite.sh).
#
# Every resource a run creates lives in a network namespace whose name starts
# with "vigilf-<runner pid>-": the veth pairs, addresses, nftables tables and
# sysctls are all inside those namespaces, and every process the suite starts
# runs inside one of them. That makes cleanup complete and safe: for each of
# our namespaces, `ip netns pids` names exactly the processes to kill (ours by
# construction), and deleting the namespace takes its veth ends and firewall
# rules with it. The same sweep removes namespaces left by an earlier run
# whose runner pid no longer exists (a run killed with SIGKILL cannot clean
# up after itself). Nothing is ever created in the root namespace.
#
# Addresses: 10.231.X.0/24 per case, X derived from the runner pid and the
# case number, so two concurrent runs on one machine also differ (they could
# not collide anyway: each case's addresses exist only in its namespaces).

FAULT_PREFIX=vigilf

ms_now() { # wall clock in ms (3 decimals), comparable with fault-peer's t_ms
  local t=$EPOCHREALTIME s us
  s=${t%.*}
  us=${t#*.}
  echo "$((s * 1000 + 10#$us / 1000)).$(printf '%03d' $((10#$us % 1000)))"
}

# ns_sweep PATTERN: kill every process inside each matching namespace, then
# delete the namespace.
ns_sweep() {
  local pattern=$1 ns p
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$pattern"); do
    ns_destroy "$ns"
  done
}

ns_destroy() {
  local ns=$1 p pids
  pids=$(ip netns pids "$ns" 2>/dev/null)
  for p in $pids; do
    kill -CONT "$p" 2>/dev/null
    kill -KILL "$p" 2>/dev/null
  done
  ip netns del "$ns" 2>/dev/null || true
}

# Removes namespaces of earlier runs whose runner is gone.
ns_sweep_stale() {
  local ns owner
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${FAULT_PREFIX}-[0-9]+-"); do
    owner=${ns#"${FAULT_PREFIX}"-}
    owner=${owner%%-*}
    if ! kill -0 "$owner" 2>/dev/null; then
      ns_destroy "$ns"
    fi
  done
}

# ns_new NAME: creates a namespace with loopback up.
ns_new() {
  ip netns add "$1" || return 1
  ip -n "$1" link set lo up
}

# wait_for FILE REGEX TIMEOUT_MS: polls until a line matches; 0 if found.
wait_for() {
  local file=$1 re=$2 limit=$3 waited=0
  while ((waited < limit)); do
    if [ -f "$file" ] && grep -qE "$re" "$file" 2>/dev/null; then
      return 0
    fi
    sleep 0.05
    waited=$((waited + 50))
  done
  return 1
}

# json_field LINE KEY: the value of "KEY":... in a flat JSON object line.
json_field() {
  local line=$1 key=$2 v
  v=${line#*\""$key"\":}
  [ "$v" = "$line" ] && return 1
  v=${v%%[,\}]*}
  v=${v#\"}
  v=${v%\"}
  printf '%s\n' "$v"
}

# fsub A B: A - B for decimal numbers, as an integer (ms).
fsub() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%d\n", a - b + 0.5 }'
}

#!/usr/bin/env bash
# The fault suite cleans up after itself when interrupted: start it on a few
# long cases, send SIGINT (what Ctrl-C sends) while they are in the middle of
# a fault, and check that every namespace it made is gone, every process
# that ran inside them is gone, and the root namespace has the same links as
# before. Arguments are passed to suite.sh (--peer, --nfq, --vigil).
# Exit: 0 clean, 1 something was left behind, 77 cannot run here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "cleanup test skipped: needs root and 'ip netns'"
  exit 77
fi

out=$(mktemp -d /tmp/vigil-fault-interrupt.XXXXXX)
links_before=$(ip -o link | awk -F': ' '{print $2}' | sort)

# Background jobs of a script start with SIGINT ignored, and bash cannot trap
# a signal ignored at entry: restore the default so the suite sees SIGINT as
# it would from a terminal.
env --default-signal=INT "$here/suite.sh" "$@" --out "$out" --jobs 4 \
  --only 'case_nat [0-9]+ ka below|case_basic [0-9]+ (stop|cable_data) ka ' >"$out/suite.log" 2>&1 &
suite=$!

# Wait until the cases are mid-fault: namespaces exist and processes run.
pids=""
for _ in $(seq 100); do
  pids=""
  for ns in $(ip netns list | awk '{print $1}' | grep "^${FAULT_PREFIX}-${suite}-"); do
    pids="$pids $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
  done
  [ "$(echo "$pids" | wc -w)" -ge 6 ] && break
  sleep 0.1
done
sleep 1
namespaces=$(ip netns list | awk '{print $1}' | grep -c "^${FAULT_PREFIX}-${suite}-")
echo "interrupting the suite (pid $suite) with $namespaces namespaces and $(echo "$pids" | wc -w) processes in them"
kill -INT "$suite"

rc=""
for _ in $(seq 150); do
  if ! kill -0 "$suite" 2>/dev/null; then
    wait "$suite"
    rc=$?
    break
  fi
  sleep 0.1
done

fail=0
if [ -z "$rc" ]; then
  echo "FAIL: the suite did not exit within 15 s of SIGINT"
  kill -KILL "$suite" 2>/dev/null
  fail=1
elif [ "$rc" != 130 ]; then
  echo "FAIL: the suite exited $rc after SIGINT (expected 130)"
  fail=1
fi
if [ "$namespaces" -lt 3 ]; then
  echo "FAIL: the cases never got going (only $namespaces namespaces); log:"
  tail -5 "$out/suite.log"
  fail=1
fi
left=$(ip netns list | awk '{print $1}' | grep "^${FAULT_PREFIX}-${suite}-")
if [ -n "$left" ]; then
  echo "FAIL: namespaces left behind: $left"
  fail=1
fi
for p in $pids; do
  if [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
    echo "FAIL: process $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) still running"
    fail=1
  fi
done
links_after=$(ip -o link | awk -F': ' '{print $2}' | sort)
if [ "$links_before" != "$links_after" ]; then
  echo "FAIL: root namespace links changed: $(diff <(echo "$links_before") <(echo "$links_after") | tr '\n' ' ')"
  fail=1
fi
# Whatever happened, leave nothing of ours behind.
ns_sweep "^${FAULT_PREFIX}-${suite}-"
if [ $fail = 0 ]; then
  echo "cleanup after SIGINT: OK (no namespaces, no processes, root links unchanged)"
  rm -rf "$out"
fi
exit $fail

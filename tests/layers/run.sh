#!/bin/sh
# The layer check (scripts/layers.py) on fixture trees that break the rule,
# and on the real tree, which must not. usage: run.sh upward|unmapped|tree
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
check=$root/scripts/layers.py
expect_fail() { # fixture, line that must be printed
  out=$(python3 "$check" "$root/tests/layers/$1")
  rc=$?
  echo "$out"
  [ "$rc" -eq 1 ] || { echo "FAIL: exit $rc on fixture $1, expected 1"; exit 1; }
  echo "$out" | grep -qxF "$2" || { echo "FAIL: no line '$2'"; exit 1; }
}
case "${1:-}" in
upward)
  expect_fail upward "src/low.c:3: includes include/high.h of layer 'high' from layer 'low' below it"
  # only that one: the downward includes (high.c, mid/) are allowed
  [ "$(echo "$out" | grep -c ': includes ')" -eq 1 ] || { echo "FAIL: more than one finding"; exit 1; }
  ;;
unmapped)
  expect_fail unmapped "src/stray.c: in no layer of docs/ARCHITECTURE.md's table (each file needs exactly one)"
  echo "$out" | grep -qxF "docs/ARCHITECTURE.md: layer 'only' names \`src/gone.c\`, which matches no file" ||
    { echo "FAIL: the stale src/gone.c was not reported"; exit 1; }
  ;;
tree)
  python3 "$check" "$root" || { echo "FAIL: the tree breaks its own layer table"; exit 1; }
  ;;
*)
  echo "usage: $0 upward|unmapped|tree" >&2
  exit 2
  ;;
esac
echo "ok"

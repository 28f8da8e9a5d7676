#!/usr/bin/env bash
# Windows build with mingw-w64 (`build`: libvigil DLL + import library, static
# library, vigil.exe) and its test suite under wine (`test`: ctest, then
# scripts/interop.sh against the Linux build when build/dev/vigil exists).
# The wine prefix lives in the build tree so runs never touch the user's
# ~/.wine. docs/WINDOWS.md says what runs and what is skipped; its counts and
# skip table are rewritten from the run (scripts/windows-doc.py).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}
if ! scripts/have-windows-toolchain.sh; then
  echo "windows: needs x86_64-w64-mingw32-gcc and wine (scripts/install-deps.sh installs them)" >&2
  exit 1
fi
export WINEDEBUG=-all
export WINEPREFIX=${WINEPREFIX:-$PWD/build/wineprefix}
export WINEDLLOVERRIDES="mscoree,mshtml="   # no Mono/Gecko install prompts
cmake --preset mingw >/dev/null
cmake --build --preset mingw -j "$(nproc)"
case "$mode" in
  build)
    ls -l build/mingw/*.dll build/mingw/*.a build/mingw/*.exe 2>/dev/null | grep -E 'vigil' || true
    ;;
  test)
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
      echo "windows: creating wine prefix $WINEPREFIX"
      wineboot -i >/dev/null 2>&1 || true
      # wineboot leaves its wineserver running a few seconds; `wineserver -p`
      # below exits 2 while another server holds the prefix (CI's fresh
      # prefix failed there), so wait for it to go.
      wineserver -w
    fi
    # A persistent wineserver for the run: by default it exits a few seconds
    # after its last client, and a test starting at that moment dies with
    # "wine client error:0: recvmsg: Connection reset by peer" (seen on
    # sans-I/O tests under load). Stopped at exit; it serves this prefix only.
    # wineboot starts the prefix's services (winedevice.exe ...) now, with
    # their output discarded: started by a test, they would hold its stdout
    # open for as long as the server lives and ctest would wait on it.
    wineserver -p
    trap 'wineserver -k 2>/dev/null || true' EXIT
    wineboot </dev/null >/dev/null 2>&1 || true
    # The JUnit record feeds scripts/windows-doc.py (docs/WINDOWS.md's counts and skip table).
    ctest --preset mingw -j 2 --output-junit "$PWD/build/mingw/ctest-junit.xml"
    # Interop with the Linux build (make build / make test-dev builds it):
    # wine vigil.exe against Linux vigil both ways. 77 means skipped.
    rc=0
    scripts/interop.sh build/dev/vigil build/mingw/vigil.exe || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
      exit "$rc"
    fi
    # docs/WINDOWS.md's counts and skip table from this run; a change is
    # drift (commit the rewritten doc), an error in CI.
    rc=0
    python3 scripts/windows-doc.py write build/mingw/ctest-junit.xml || rc=$?
    if [ "$rc" -eq 3 ] && [ "${CI:-}" = true ]; then
      git --no-pager diff docs/WINDOWS.md
      exit 1
    elif [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
      exit "$rc"
    fi
    ;;
  *)
    echo "usage: scripts/windows.sh build|test" >&2
    exit 2
    ;;
esac

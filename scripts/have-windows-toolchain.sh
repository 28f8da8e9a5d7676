#!/bin/sh
# Exit 0 when the Windows cross toolchain and wine are both installed.
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || exit 1
command -v wine >/dev/null 2>&1 || command -v wine64 >/dev/null 2>&1 || exit 1
exit 0

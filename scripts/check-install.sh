#!/usr/bin/env bash
# Installs vigil into a temporary prefix with `make install PREFIX=...`, then
# builds tests/install/consumer.c as a separate program three ways -- CMake
# package (shared and static) and pkg-config -- and runs each.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(mktemp -d /tmp/vigil-install.XXXXXX)
work=$(mktemp -d /tmp/vigil-consumer.XXXXXX)
trap 'rm -rf "$prefix" "$work"' EXIT
make --no-print-directory install PREFIX="$prefix" >/dev/null
test -f "$prefix/include/vigil.h"
pc=$(find "$prefix" -name vigil.pc | head -n 1)
libdir=$(dirname "$(dirname "$pc")")
cmake -S tests/install -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/cmake/consumer_shared"
"$work/cmake/consumer_static"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -Wall -Werror tests/install/consumer.c $(pkg-config --cflags --libs vigil) -o "$work/consumer_pc"
LD_LIBRARY_PATH="$libdir" "$work/consumer_pc"
echo "check-install: ok (prefix $prefix)"

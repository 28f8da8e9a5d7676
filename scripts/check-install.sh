#!/usr/bin/env bash
# Installs vigil into a temporary prefix with `make install PREFIX=...`, then
# builds tests/install/consumer.c as a separate program three ways -- CMake
# package (shared and static) and pkg-config -- and runs each. Where
# libvigil-uv was installed (libuv present), tests/install/consumer-uv.c is
# built and run the same three ways (component uv, vigil-uv.pc); where
# libvigil-redis was (hiredis present), tests/install/consumer-redis.c
# (component redis, vigil-redis.pc).
# Then the installed tree is moved elsewhere (as a package manager or a
# vendored copy would) and the consumer is built again from the moved copy
# with pkg-config and the CMake package: neither may name the old prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(mktemp -d /tmp/vigil-install.XXXXXX)
work=$(mktemp -d /tmp/vigil-consumer.XXXXXX)
moved=$(mktemp -d /tmp/vigil-moved.XXXXXX)
trap 'rm -rf "$prefix" "$work" "$moved"' EXIT
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
if [ -f "$libdir/pkgconfig/vigil-uv.pc" ]; then
  LD_LIBRARY_PATH="$libdir" "$work/cmake/consumer_uv"
  "$work/cmake/consumer_uv_static"
  # uv.h needs POSIX declarations that -std=c11 alone hides.
  cc -std=c11 -D_GNU_SOURCE -Wall -Werror tests/install/consumer-uv.c \
    $(pkg-config --cflags --libs vigil-uv) -o "$work/consumer_uv_pc"
  LD_LIBRARY_PATH="$libdir" "$work/consumer_uv_pc"
else
  echo "check-install: libvigil-uv not installed (no libuv at build time); its consumer skipped"
fi
if [ -f "$libdir/pkgconfig/vigil-redis.pc" ]; then
  test -f "$prefix/include/vigil/presence-redis.h"
  LD_LIBRARY_PATH="$libdir" "$work/cmake/consumer_redis"
  "$work/cmake/consumer_redis_static"
  cc -std=c11 -Wall -Werror tests/install/consumer-redis.c \
    $(pkg-config --cflags --libs vigil-redis) -o "$work/consumer_redis_pc"
  LD_LIBRARY_PATH="$libdir" "$work/consumer_redis_pc"
else
  test ! -f "$prefix/include/vigil/presence-redis.h"
  echo "check-install: libvigil-redis not installed (no hiredis at build time); its consumer skipped"
fi

# Relocation: move the tree, leave nothing at the old prefix.
mv "$prefix" "$moved/tree"
mkdir "$prefix"
mlib="$moved/tree/${libdir#"$prefix"/}"
export PKG_CONFIG_PATH="$mlib/pkgconfig"
flags=$(pkg-config --cflags --libs vigil)
case "$flags" in
*"$prefix"*) echo "check-install: vigil.pc still names the old prefix: $flags" >&2; exit 1 ;;
esac
cc -std=c11 -Wall -Werror tests/install/consumer.c $flags -o "$work/consumer_moved"
LD_LIBRARY_PATH="$mlib" "$work/consumer_moved"
cmake -S tests/install -B "$work/cmake-moved" -DCMAKE_PREFIX_PATH="$moved/tree" >/dev/null
cmake --build "$work/cmake-moved" >/dev/null
LD_LIBRARY_PATH="$mlib" "$work/cmake-moved/consumer_shared"
if [ -f "$mlib/pkgconfig/vigil-uv.pc" ]; then
  cc -std=c11 -D_GNU_SOURCE -Wall -Werror tests/install/consumer-uv.c \
    $(pkg-config --cflags --libs vigil-uv) -o "$work/consumer_uv_moved"
  LD_LIBRARY_PATH="$mlib" "$work/consumer_uv_moved"
fi
if [ -f "$mlib/pkgconfig/vigil-redis.pc" ]; then
  cc -std=c11 -Wall -Werror tests/install/consumer-redis.c \
    $(pkg-config --cflags --libs vigil-redis) -o "$work/consumer_redis_moved"
  LD_LIBRARY_PATH="$mlib" "$work/consumer_redis_moved"
  LD_LIBRARY_PATH="$mlib" "$work/cmake-moved/consumer_redis"
fi
echo "check-install: ok (prefix $prefix, then moved to $moved/tree)"

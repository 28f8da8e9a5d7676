#!/usr/bin/env bash
# clang-tidy (checks in .clang-tidy) over the library, tools and tests using
# the dev build's compile_commands.json, then cppcheck over src/ and tools/.
# Any finding fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)" >/dev/null
files=$(git ls-files 'src/*.c' 'src/unix/*.c' 'tools/*.c' 'tools/preload/*.c')
echo "clang-tidy: $(echo "$files" | wc -w) files"
out=$(clang-tidy -p build/dev --quiet $files 2>/dev/null || true)
if echo "$out" | grep -qE '(warning|error):'; then
  echo "$out"
  exit 1
fi
echo "cppcheck"
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
  --inline-suppr --std=c11 -D__linux__ -D_GNU_SOURCE -Iinclude -Isrc \
  --suppress=missingIncludeSystem \
  src src/unix tools
echo "lint clean"

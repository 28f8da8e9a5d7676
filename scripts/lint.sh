#!/usr/bin/env bash
# clang-format (the committed .clang-format) over every tracked .c and .h;
# the layer check (scripts/layers.py: no file includes a header of a layer
# above its own, per the table in docs/ARCHITECTURE.md); clang-tidy (checks
# in .clang-tidy) over the library, tools and examples as the dev build
# compiles them (compile_commands.json), then cppcheck over the same files,
# and over the Windows sources with _WIN32 defined (cppcheck needs no system
# headers, so the IOCP code is checked here too); docs/WINDOWS.md's skip
# table against the tests' RETURN_SKIP reasons (scripts/windows-doc.py
# check). Any finding fails.
set -euo pipefail
cd "$(dirname "$0")/.."
sources=$(git ls-files '*.c' '*.h')
echo "clang-format: $(echo "$sources" | wc -w) files"
if ! clang-format --dry-run -Werror $sources; then
  echo "clang-format: the files above differ from .clang-format (make format fixes them)"
  exit 1
fi
python3 scripts/layers.py
python3 scripts/windows-doc.py check
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)" >/dev/null
# git pathspecs match across '/', so filter the Windows tree out explicitly.
files=$(git ls-files 'src/*.c' 'tools/*.c' 'examples/*.c' | grep -v '^src/win/')
win_files=$(git ls-files 'src/win/*.c')
echo "clang-tidy: $(echo "$files" | wc -w) files"
out=$(clang-tidy -p build/dev --quiet $files 2>/dev/null || true)
if echo "$out" | grep -qE '(warning|error):'; then
  echo "$out"
  exit 1
fi
common=(--quiet --error-exitcode=1 --enable=warning,performance,portability
        --inline-suppr --std=c11 -Iinclude -Isrc --suppress=missingIncludeSystem)
echo "cppcheck: $(echo "$files" | wc -w) POSIX files, $(echo "$win_files" | wc -w) Windows files"
cppcheck "${common[@]}" -D__linux__ -D_GNU_SOURCE $files
cppcheck "${common[@]}" -D_WIN32 -U__linux__ $win_files
echo "lint clean"

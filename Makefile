# The short commands. CMake (CMakePresets.json) is the build; this file only
# names the usual jobs. Build trees live under build/<preset>.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 60
SOAK_S ?= 1200
CTEST_ARGS ?=

.PHONY: all build test test-dev test-asan test-generic test-windows windows fuzz fuzz-ci \
        lint format demo bench faults soak install check-install clean

all: build

build:
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j $(JOBS)

# Every test: the dev build, the same suite under ASan+UBSan, again built as on
# a POSIX system that is not Linux (VIGIL_GENERIC_POSIX: poll backend, no
# TCP_INFO), and the Windows build under wine when mingw-w64 and wine are
# installed.
test: test-dev test-asan test-generic check-install
	@if scripts/have-windows-toolchain.sh; then $(MAKE) --no-print-directory test-windows; \
	 elif [ "$$CI" = true ]; then echo "test-windows: mingw-w64 or wine missing in CI (scripts/install-deps.sh installs them)"; exit 1; \
	 else echo "test-windows: skipped (mingw-w64 or wine not installed; scripts/install-deps.sh installs them)"; fi

test-dev: build
	ctest --preset dev -j $(JOBS) $(CTEST_ARGS)

test-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) $(CTEST_ARGS)

test-generic:
	cmake --preset generic-posix >/dev/null
	cmake --build --preset generic-posix -j $(JOBS)
	ctest --preset generic-posix -j $(JOBS) $(CTEST_ARGS)

windows:
	scripts/windows.sh build

test-windows:
	scripts/windows.sh test

# libFuzzer targets under ASan+UBSan, each for FUZZ_SECONDS, seeded from the
# protocol test vectors.
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-ci:
	scripts/fuzz.sh 30

lint:
	scripts/lint.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The demo, then its table and run time written into docs/CLI.md.
demo:
	scripts/demo.sh
	scripts/cli-doc.sh

bench:
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)
	scripts/bench.sh

faults:
	scripts/faults.sh

# The fault suite's soak cases alone, SOAK_S seconds each (default 20
# minutes; `make test` and `make faults` run them for 30 s), figures into
# docs/FAULTS.md's "Long soaks" section.
soak:
	scripts/soak.sh $(SOAK_S)

install:
	cmake -S . -B build/install -DCMAKE_BUILD_TYPE=Release \
	  -DVIGIL_BUILD_TESTS=OFF -DVIGIL_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build build/install -j $(JOBS)
	cmake --install build/install

check-install:
	scripts/check-install.sh

clean:
	rm -rf build

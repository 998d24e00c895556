# The two commands of the README: `make demo` and `make test`. Both install the Debian
# packages first (scripts/install-deps is idempotent and quick when nothing is missing).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)
GENERATOR  := $(shell command -v ninja >/dev/null 2>&1 && echo -G Ninja)
DYNASEAL   := $(BUILD)/src/cli/dynaseal

.PHONY: all deps build test test-asan demo bench fuzz interop-deps format format-check clean

all: build

deps:
	scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

# npm packages for the interop tests, pinned by tests/interop/package-lock.json.
interop-deps: deps
	scripts/install-interop-deps

test: build interop-deps
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The same suite built with AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps interop-deps
	cmake -S . -B $(ASAN_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug \
	  -DDYNASEAL_SANITIZE=address,undefined -DDYNASEAL_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

demo: build
	$(DYNASEAL) demo

# Core microbenchmarks, the server over real processes, then the backend's minting and the
# callback pipeline (docs/performance.md; ~4 min).
bench: build
	$(BUILD)/bench/core_bench
	scripts/bench-server $(BUILD)
	scripts/bench-backend $(BUILD)
	scripts/bench-replicas $(BUILD)

# libFuzzer targets (clang), each run for FUZZ_SECONDS on its own corpus directory.
fuzz: deps
	CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DDYNASEAL_FUZZ=ON -DDYNASEAL_TESTS=OFF -DDYNASEAL_BENCH=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	scripts/run-fuzzers $(FUZZ_BUILD)/fuzz $(FUZZ_SECONDS)

# Every C++ file git tracks or would track (new files too, ignored ones never).
SOURCES = git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp'

format:
	$(SOURCES) | xargs clang-format -i

format-check:
	$(SOURCES) | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

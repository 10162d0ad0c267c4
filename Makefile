# Thin wrapper over CMake. `make test` is what CI runs (.ci/run).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps build run test bench fuzz format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Builds and starts the broker with the embedded defaults: localhost:9092, data in ./data.
# Extra settings: make run ARGS="--set num.partitions=3 --config my.properties"
run: build
	$(BUILD)/bin/kbroker $(ARGS)

# Unit tests (normal build), the same unit tests under ASan+UBSan, the format
# check, then the compat tests: real clients against a real kbroker process (1 and
# 2 shards) and the same suite against Apache Kafka, the reference (compat-tests/REPORT.md).
test:
	@scripts/install-deps.sh --test
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cmake -S . -B $(ASAN_BUILD) -DKB_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)
	@scripts/check-format.sh
	KB_BROKER_BIN=$(CURDIR)/$(BUILD)/bin/kbroker compat-tests/run.sh --target kbroker,kafka 1 2

# Starts a broker on an ephemeral port with a temporary data dir, runs kbench's
# and Kafka's own perf tools against it, then the same against Apache Kafka (tools/bench/bench.py).
bench: build
	tools/bench/run-bench.sh $(BUILD)

# Bounded libFuzzer run of every fuzz target: FUZZ_SECONDS each (default 60).
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps.sh --test
	CC=clang cmake -S . -B build-fuzz -DKB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-fuzz -j $(JOBS)
	scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

format:
	find kafka-proto storage server tools compat-tests -name '*.[ch]' -not -path '*/generated/*' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz

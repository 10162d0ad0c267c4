# Thin wrapper over CMake. `make test` is what CI runs (.ci/run).
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS ?= $(shell nproc)

FUZZ_BUILD ?= build-fuzz

.PHONY: all deps build run check test tsan bench fuzz fuzz-run format clean

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

# The unit tests alone, in seconds: builds the target `unit` (the in-process
# CUnit programs and the libraries they link; not the broker executable, the
# tools or the wire tests) and runs ctest's label "unit". No broker process,
# no sanitizer build, no compat tests: that is `make test`.
check: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) --target unit -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)

# Unit tests (normal build), the same unit tests under ASan+UBSan, the unit and
# wire tests under ThreadSanitizer (make tsan), every fuzz
# target built and run for TEST_FUZZ_SECONDS (so the fuzz build cannot rot), the format
# check, then the compat tests: real clients against a real kbroker process (1 and
# 2 shards) and the same suite against Apache Kafka, the reference (compat-tests/REPORT.md).
# The three compat passes run at once (COMPAT_JOBS): each has its own brokers and
# ports, and together they keep about one of two cores busy; one after the other they
# took more than half of CI's 40-minute budget.
COMPAT_JOBS ?= 3
test:
	@scripts/install-deps.sh --test
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cmake -S . -B $(ASAN_BUILD) -DKB_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)
	$(MAKE) tsan
	$(MAKE) fuzz-run FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
	@scripts/check-format.sh
	KB_JOBS=$(COMPAT_JOBS) KB_BROKER_BIN=$(CURDIR)/$(BUILD)/bin/kbroker compat-tests/run.sh --target kbroker,kafka 1 2

# ThreadSanitizer (gcc -fsanitize=thread, its own build dir): the unit tests and
# the wire tests, whose kbroker (2 shards) is this build's too. Any report fails
# the step: reports go to $(TSAN_BUILD)/tsan-reports, because the wire tests send
# the broker's stderr to a log they delete, and are printed at the end.
# - TSAN_NO_ASLR: TSan places its shadow memory at fixed addresses; on kernels
#   with a high vm.mmap_rnd_bits it dies at start ("unexpected memory mapping"),
#   so the tests run under setarch -R (no ASLR for them) where setarch can.
# - die_after_fork=0: storage tests fork a child that opens a log (helper
#   threads) to crash or race the parent; TSan refuses new threads after a fork
#   of a threaded process by default (the children here use only their own io).
# - until-pass:3: a test that fails once on this 2-core machine under TSan's
#   slowdown gets two more tries (storage/CMakeLists.txt drops the ones whose
#   premise TSan breaks); a retried test still leaves its race reports behind.
# - tests/tsan.supp: false positives inside libevent only, a reason for each.
TSAN_NO_ASLR ?= $(shell setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R)
tsan:
	cmake -S . -B $(TSAN_BUILD) -DKB_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(TSAN_BUILD) --target unit wire -j $(JOBS)
	rm -rf $(TSAN_BUILD)/tsan-reports && mkdir -p $(TSAN_BUILD)/tsan-reports
	cd $(TSAN_BUILD) && { \
	  TSAN_OPTIONS="log_path=$(CURDIR)/$(TSAN_BUILD)/tsan-reports/tsan die_after_fork=0 second_deadlock_stack=1 \
	    suppressions=$(CURDIR)/tests/tsan.supp" \
	    $(TSAN_NO_ASLR) ctest --output-on-failure -L 'unit|wire' -j $(JOBS) --repeat until-pass:3; st=$$?; \
	  if [ -n "$$(ls -A tsan-reports)" ]; then cat tsan-reports/*; echo "ThreadSanitizer: reports above"; st=1; fi; \
	  exit $$st; }

# Starts a broker on an ephemeral port with a temporary data dir, runs kbench's
# and Kafka's own perf tools against it, then the same against Apache Kafka (tools/bench/bench.py).
bench: build
	tools/bench/run-bench.sh $(BUILD)

# Bounded libFuzzer run of every fuzz target: FUZZ_SECONDS each (default 60),
# seeded with the captured client frames. The fuzz build (clang, -DKB_FUZZ=ON)
# holds kafka-proto and the fuzz targets only.
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 5
fuzz:
	@scripts/install-deps.sh --test
	$(MAKE) fuzz-run

# The fuzz build and run without the dependency check (make test has done it).
fuzz-run:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DKB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

format:
	find kafka-proto storage server tools compat-tests -name '*.[ch]' -not -path '*/generated/*' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)

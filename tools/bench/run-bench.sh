#!/usr/bin/env bash
# `make bench`: starts kbroker on an ephemeral port with a fresh data
# directory, runs kbench's standard set against it and against librdkafka's
# in-process mock cluster (--peer mock), prints the tables, stops the broker.
#
#   tools/bench/run-bench.sh [BUILD_DIR]        (default ./build)
#
# BENCH_SECONDS (default 8) is the measured time of each run; the whole set
# takes about 8 runs x (BENCH_SECONDS + ~3 s). The broker's data goes to a
# new directory under BENCH_DIR (default /var/tmp, disk-backed where /tmp may
# be tmpfs), removed afterwards. BENCH_JSON=1 prints JSON.
set -euo pipefail
build=${1:-build}
secs=${BENCH_SECONDS:-8}
kbroker="$build/bin/kbroker"
kbench="$build/bin/kbench"
for b in "$kbroker" "$kbench"; do
  [ -x "$b" ] || { echo "run-bench: no $b (build first)"; exit 1; }
done

dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/kbench.XXXXXX")
mkdir "$dir/data"
log="$dir/kbroker.log"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "${dir:?}"
}
trap cleanup EXIT INT TERM

"$kbroker" --set listeners=PLAINTEXT://127.0.0.1:0 --set "log.dirs=$dir/data" 2>"$log" &
pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*kbroker ready: listening on PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "run-bench: kbroker exited:"; cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "run-bench: kbroker not ready after 10 s:"; cat "$log"; exit 1; }
echo "kbroker pid $pid on 127.0.0.1:$port, data in $dir/data ($(nproc) CPUs; broker and clients share them)"

json=()
[ "${BENCH_JSON:-0}" = 1 ] && json=(--json)
run() { # title, kbench args...
  local title=$1
  shift
  echo
  echo "=== $title"
  "$kbench" "$@" --bootstrap "127.0.0.1:$port" --peer mock "${json[@]}"
}

# Each workload gets its own topic so one run's data cannot slow another.
run "produce 100 B, acks=all" produce --topic bench-p100 --partitions 2 --msg-size 100 --acks all \
  --duration "$secs" --warmup 1
run "produce 1 KiB, acks=all" produce --topic bench-p1k --partitions 2 --msg-size 1024 --acks all \
  --duration "$secs" --warmup 1
run "e2e 100 B at 50,000 msg/s, acks=all" e2e --topic bench-e2e --partitions 2 --msg-size 100 --acks all \
  --rate 50000 --linger-ms 1 --fetch-wait-ms 1 --duration "$secs" --warmup 2
run "roundtrip 100 B, acks=all, one message in flight" roundtrip --topic bench-rt --partitions 2 \
  --msg-size 100 --acks all --duration "$secs" --warmup 1

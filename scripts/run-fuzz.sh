#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD/fuzz for SECONDS each, seeded from the
# captured client requests, and fails if any target finds a crash.
set -euo pipefail
build=${1:?build dir}; secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/fuzz/kp_fuzz_*; do
  name=$(basename "$bin")
  case "$name" in *.*) continue ;; esac # logs and artifacts beside the binaries
  corpus="$build/fuzz-corpus/$name"; mkdir -p "$corpus"
  # Seeds: captured frames from real clients (request target) and the same
  # frames for the batch target, whose parser skips what is not a batch.
  cp -n "$root"/kafka-proto/tests/data/captures/*.bin "$corpus"/ 2>/dev/null || true
  echo "== $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$build/fuzz/$name-" "$corpus" 2>"$build/fuzz/$name.log"; then
    status=1; tail -50 "$build/fuzz/$name.log"
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$build/fuzz/$name.log" | tail -4
done
exit $status

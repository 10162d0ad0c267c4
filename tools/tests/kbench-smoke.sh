#!/usr/bin/env bash
# ctest smoke run of kbench against librdkafka's in-process mock cluster:
# passes when kbench exits 0 and reports every one of the messages it was
# asked for. Timings are printed but never asserted (they would flake).
#
#   kbench-smoke.sh KBENCH MODE COUNT [extra kbench options...]
set -euo pipefail
kbench=$1 mode=$2 count=$3
shift 3
out=$("$kbench" "$mode" --peer mock --count "$count" --json "$@")
echo "$out"
grep -q "\"msgs\": $count," <<<"$out" || { echo "kbench-smoke: expected \"msgs\": $count"; exit 1; }

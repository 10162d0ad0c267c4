#!/usr/bin/env bash
# Runs fio (raw O_DIRECT sequential write bandwidth) and st-bench on the same
# directory in one go, and prints the ratios that storage/README.md records.
#
#   storage/bench/run-bench.sh [DIR] [BUILD_DIR]
#
# DIR must be on the disk under test (default /var/tmp/st-bench); it is
# emptied. BUILD_DIR is where st-bench was built (default ./build).
# ST_BENCH_BYTES (default 1 GiB) and ST_BENCH_SECONDS (default 10) scale it.
set -euo pipefail
dir=${1:-/var/tmp/st-bench}
build=${2:-build}
bench="$build/bin/st-bench"
size=${ST_BENCH_BYTES:-1073741824}
secs=${ST_BENCH_SECONDS:-10}
[ -x "$bench" ] || { echo "no $bench (build the st-bench target)"; exit 1; }
command -v fio >/dev/null || { echo "fio is not installed"; exit 1; }
mkdir -p "$dir"
rm -rf "${dir:?}"/*

fio_bw() { # bs extra-args...
  local bs=$1 out
  shift
  out=$(fio --name=raw --filename="$dir/fio.dat" --rw=write --direct=1 --bs="$bs" --size="$size" \
        --end_fsync=1 --output-format=terse --terse-version=3 "$@" 2>/dev/null)
  rm -f "$dir/fio.dat"
  # terse v3: field 48 is the write bandwidth in KiB/s
  echo "$out" | awk -F';' '{printf "%.1f", $48 * 1024 / 1e6}'
}

st_bw() { # batch io extra-args...
  local bs=$1 io=$2 out
  shift 2
  out=$("$bench" --dir "$dir/log" --mode throughput --batch "$bs" --total "$size" --io "$io" "$@")
  rm -rf "$dir/log"
  echo "  $out" >&2
  echo "$out" | sed -n 's/.*MBps=\([0-9.]*\).*/\1/p'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }

echo "== $(df -h "$dir" | tail -1 | awk '{print $1, $2}'), kernel $(uname -r), $(nproc) cpus"
# Ceiling: what the disk takes with O_DIRECT and a deep queue, no syncs.
raw=$(fio_bw 1M --ioengine=libaio --iodepth=16)
echo "fio raw O_DIRECT 1 MiB QD16, no sync: $raw MB/s"
for bs in 16384 1048576; do
  every=$((1048576 / bs))
  strict=$(fio_bw "$bs" --ioengine=psync --fdatasync="$every")
  echo "fio O_DIRECT bs=$bs psync, fdatasync per MiB: $strict MB/s"
  for io in uring thread; do
    st=$(st_bw "$bs" "$io")
    echo "st-bench batch=$bs io=$io sync requested per MiB: $st MB/s  ratio_vs_raw=$(ratio "$st" "$raw")"
    sst=$(st_bw "$bs" "$io" --strict-sync)
    echo "st-bench batch=$bs io=$io strict sync per MiB: $sst MB/s  ratio_vs_fio_same_syncs=$(ratio "$sst" "$strict")"
  done
done
for io in uring thread; do
  "$bench" --dir "$dir/log" --mode latency --batch 1024 --appenders 64 --seconds "$secs" --io "$io"
  rm -rf "$dir/log"
done

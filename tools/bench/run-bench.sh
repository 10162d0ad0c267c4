#!/usr/bin/env bash
# `make bench`: kbroker and Apache Kafka side by side (issue 14). Installs what the benchmark needs and is
# missing (python3-matplotlib for the soak plot, Debian's confluent-kafka for topic admin, the Kafka
# broker's and Kafka tools' jars into ~/.m2, once), then runs tools/bench/bench.py, which prints the table
# and writes BUILD_DIR/bench/REPORT.md, results.json and soak.png.
#
#   tools/bench/run-bench.sh [BUILD_DIR]        (default ./build)
#
# BENCH_QUICK=1: a reduced plan to check the harness (~5 min). BENCH_PARTS tls: the produce and consume
# workloads over an SSL listener, with the share of the plaintext figure left. BENCH_SECONDS (measured seconds per run),
# BENCH_SOAK_SECONDS (default 600), BENCH_DIR (parent of the data dirs, default /var/tmp, disk-backed where
# /tmp may be tmpfs), BENCH_PARTS and BENCH_SETTINGS select parts of the plan (see bench.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
missing=()
for p in python3-matplotlib python3-confluent-kafka openjdk-17-jdk-headless maven; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "run-bench: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's python3 on purpose: the packages above are installed for it, not for another python3 on PATH.
exec /usr/bin/python3 "$here/bench.py" "$build"

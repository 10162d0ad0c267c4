#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need, only when one
# is missing (so a machine that has them does no network traffic).
set -euo pipefail
pkgs=(build-essential cmake pkg-config python3 clang-format
      libevent-dev libssl-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
      libcunit1-dev liburing-dev librdkafka-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(clang libclang-rt-14-dev kcat python3-confluent-kafka python3-kafka
         openjdk-17-jdk-headless maven)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere than Debian (a newer build is common):
# what matters is the commands, and Debian's npm conflicts with other nodes.
if [ "${1:-}" = "--test" ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Apache Kafka, the compat tests' reference broker, comes from Maven Central (compat-tests/kafka/pom.xml):
# resolved once into ~/.m2 and a cached classpath, after which this does no network traffic.
if [ "${1:-}" = "--test" ]; then
  /usr/bin/python3 "$(dirname "$0")/../compat-tests/lib/kafka_ref.py" resolve
  # The Java compat suite (kafka-clients, kafka-streams, kafka-tools): its jars into ~/.m2 and its classes
  # built once; a later run finds them up to date and does nothing (offline Maven first).
  "$(dirname "$0")/../compat-tests/java/build.sh"
fi

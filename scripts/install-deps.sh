#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need, only when one
# is missing (so a machine that has them does no network traffic).
set -euo pipefail
# libevent-dev also brings libevent_openssl (TLS listeners), with libssl-dev;
# libpcre2-dev: the Java-like regular expressions of ssl.principal.mapping.rules.
pkgs=(build-essential cmake pkg-config python3 clang-format
      libevent-dev libssl-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
      libcunit1-dev liburing-dev librdkafka-dev libpcre2-dev
      libraft-dev libuv1-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(clang libclang-rt-14-dev kcat python3-confluent-kafka python3-kafka
         openjdk-17-jdk-headless maven python3-venv openssl)
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
# libFuzzer and the sanitizer runtimes for `make fuzz`: they belong to the installed clang's version
# (libclang-rt-N-dev on Debian 12), so ask clang where its runtime is rather than naming a version.
if [ "${1:-}" = "--test" ]; then
  if [ ! -f "$(clang -print-file-name="libclang_rt.fuzzer-$(uname -m).a")" ]; then
    rt="libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
    echo "installing: $rt"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$rt"
  fi
fi
# Apache Kafka, the compat tests' reference broker, comes from Maven Central (compat-tests/kafka/pom.xml):
# resolved once into ~/.m2 and a cached classpath, after which this does no network traffic.
if [ "${1:-}" = "--test" ]; then
  /usr/bin/python3 "$(dirname "$0")/../compat-tests/lib/kafka_ref.py" resolve
  # The Java compat suite (kafka-clients, kafka-streams, kafka-tools): its jars into ~/.m2 and its classes
  # built once; a later run finds them up to date and does nothing (offline Maven first).
  "$(dirname "$0")/../compat-tests/java/build.sh"
fi
# The Go compat tests (compat-tests/go) need Go >= 1.21: it fetches the go.mod's toolchain (1.26) itself, once,
# into the module cache. Debian 12's golang-go is 1.19: without a newer Go, take the newest golang-1.2x of
# bookworm-backports. Then the modules of go.sum, once (go mod download is offline when they are cached).
go_ok() { # a Go that can switch toolchains (>= 1.21)
  local g
  for g in "$(command -v go || true)" /usr/local/go/bin/go /usr/lib/go-1.2[1-9]/bin/go; do
    [ -x "$g" ] || continue
    "$g" env GOVERSION 2>/dev/null | grep -Eq '^go1\.(2[1-9]|[3-9][0-9])' && { GO_BIN="$g"; return 0; }
  done
  return 1
}
if [ "${1:-}" = "--test" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  if ! go_ok; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      # The machine's own Debian mirror, from its apt sources (deb822 or one-line form).
      mirror="$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -oE '(URIs:|^deb)[^#]*' | grep -oE 'https?://[^ ]+/debian/?' | head -n 1)"
      if [ -n "$mirror" ]; then
        echo "deb ${mirror%/} bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/kbroker-backports.list >/dev/null
      fi
    fi
    $SUDO apt-get update -qq
    gopkg="$(apt-cache search --names-only '^golang-1\.2[1-9]-go$' | cut -d' ' -f1 | sort -V | tail -n 1)"
    if [ -n "$gopkg" ]; then
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "$gopkg"
    fi
  fi
  if go_ok; then
    (cd "$(dirname "$0")/../compat-tests/go" && GOTOOLCHAIN=auto "$GO_BIN" mod download)
  else
    echo "no Go >= 1.21 available: the Go compat tests will be skipped" >&2
  fi
  # The newer Python clients' venv (compat-tests/py3/requirements.txt): made once, reused offline.
  "$(dirname "$0")/../compat-tests/py3/venv.sh" >/dev/null
fi

#!/usr/bin/env bash
# Builds the Go compat tests once into a test binary: compat-tests/go/build.sh OUT
# Owns: finding a Go toolchain and compiling this module's tests. Must not: run them (run.sh does).
# Modules come from GOMODCACHE (default ~/go/pkg/mod), filled by scripts/install-deps.sh --test (go mod
# download); with a cache that has them this does no network traffic. go.mod needs Go 1.26: an older Go
# (>= 1.21, e.g. Debian bookworm-backports' golang-1.2x) fetches that toolchain once through GOTOOLCHAIN=auto.
# Writes OUT.go: the path of the Go used. Exit 3 (and a message) when no Go is installed.
set -euo pipefail
out="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
go_bin="$(command -v go || true)"
if [ -z "$go_bin" ]; then
    for g in /usr/local/go/bin/go /usr/lib/go-1.2[1-9]/bin/go; do
        if [ -x "$g" ]; then go_bin="$g"; fi
    done
fi
if [ -z "$go_bin" ]; then
    echo "no Go toolchain (go in PATH, /usr/local/go or Debian's golang-1.2x): run scripts/install-deps.sh --test" >&2
    exit 3
fi
cd "$here"
GOFLAGS=-mod=readonly "$go_bin" test -c -o "$out" .
# run.sh runs the binary through this Go's test2json.
echo "$go_bin" >"$out.go"

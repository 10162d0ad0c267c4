#!/usr/bin/env bash
# Fails when a C file differs from what .clang-format makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then echo "not formatted: $f"; bad=1; fi
done < <(find kafka-proto storage server tools compat-tests -name '*.[ch]' -not -path '*/generated/*')
[ $bad -eq 0 ] && echo "format: ok"
exit $bad

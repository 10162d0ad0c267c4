#!/usr/bin/env bash
# Consumer-group compat tests (real clients, real broker), shards=1 and shards=2 by default:
#   compat-tests/groups/run.sh [shards...]
# Env as compat-tests/run.sh: KB_BROKER_BIN, KB_PYTHON. The KafkaJS group test lives in
# compat-tests/js/test/kafkajs_groups.test.mjs and runs with the JS suite.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${KB_PYTHON:-/usr/bin/python3}"
export KB_BROKER_BIN="${KB_BROKER_BIN:-$HERE/../../build/bin/kbroker}"
rc=0
for shards in ${*:-1 2}; do
    for f in "$HERE"/test_*.py; do
        echo "== $(basename "$f") shards=$shards"
        KB_SHARDS="$shards" timeout -k 10 240 "$PY" "$HERE/../lib/run_py.py" "$f" 2>&1 | grep -E '^RESULT|^(FAIL|ERROR):|Error' || true
        [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
    done
done
exit $rc

#!/usr/bin/env bash
# Compat test suite: real Kafka clients against a real kbroker process.
#
#   compat-tests/run.sh            # shards=1 and shards=2
#   compat-tests/run.sh 2          # only shards=2   (or: KB_SHARDS_LIST="1 2")
#   KB_ONLY=kcat compat-tests/run.sh   # only test files whose name contains "kcat"
#
# Env: KB_BROKER_BIN (default <repo>/build/bin/kbroker), KB_PYTHON (default /usr/bin/python3),
#      KB_FILE_TIMEOUT (seconds per test file, default 240), KB_VERBOSE=1 (print every file's output).
# Prints one "N passed, N failed" line at the end; exits non-zero on any failure.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PY="${KB_PYTHON:-/usr/bin/python3}"
export KB_BROKER_BIN="${KB_BROKER_BIN:-$REPO/build/bin/kbroker}"
SHARDS_LIST="${*:-${KB_SHARDS_LIST:-1 2}}"
FILE_TIMEOUT="${KB_FILE_TIMEOUT:-240}"
ONLY="${KB_ONLY:-}"

if [ ! -x "$KB_BROKER_BIN" ]; then
    echo "broker binary $KB_BROKER_BIN missing: build it (cmake --build build --target kbroker) or set KB_BROKER_BIN" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

JS_OK=1
if [ ! -d "$HERE/js/node_modules/kafkajs" ] || [ ! -d "$HERE/js/node_modules/@platformatic/kafka" ]; then
    echo "== npm ci (js/node_modules missing)"
    if ! (cd "$HERE/js" && npm ci --no-audit --no-fund >/dev/null 2>&1); then
        echo "npm ci failed: JS tests will be counted as failed" >&2
        JS_OK=0
    fi
fi

LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/kb-compat-run.XXXXXX")"
PASSED=0 FAILED=0 SKIPPED=0
FAILED_FILES=()
T0=$(date +%s)

add_result() { # name logfile rc passed failed skipped
    local name="$1" log="$2" rc="$3" p="$4" f="$5" s="$6"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed / timed out / unclean broker stop
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + s))
    printf '  %-34s %3d passed %3d failed %3d skipped  (%ss)\n' "$name" "$p" "$f" "$s" "$ELAPSED"
    if [ "$f" -ne 0 ]; then
        FAILED_FILES+=("$name")
        echo "----- output of $name -----"
        grep -v '^%[0-9]|' "$log" | tail -n 150
        echo "----- end of $name (full log: $log) -----"
    elif [ "${KB_VERBOSE:-0}" = 1 ]; then
        cat "$log"
    fi
}

run_py() { # shards file
    local shards="$1" file="$2" name log rc t
    name="py/$(basename "$file" .py)[shards=$shards]"
    log="$LOGDIR/$(basename "$file" .py).s$shards.log"
    t=$(date +%s)
    KB_SHARDS="$shards" timeout -k 10 "$FILE_TIMEOUT" "$PY" "$HERE/lib/run_py.py" "$file" >"$log" 2>&1
    rc=$?
    ELAPSED=$(( $(date +%s) - t ))
    local line p=0 f=0 s=0
    line="$(grep -E '^RESULT passed=' "$log" | tail -n 1)"
    if [ -n "$line" ]; then
        p="$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")"
        f="$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")"
        s="$(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")"
    fi
    add_result "$name" "$log" "$rc" "$p" "$f" "$s"
}

run_js() { # shards
    local shards="$1" name="js/node --test[shards=$shards]" log="$LOGDIR/js.s$shards.log" rc t
    if [ "$JS_OK" -ne 1 ]; then add_result "$name" /dev/null 1 0 1 0; return; fi
    t=$(date +%s)
    (cd "$HERE/js" && KB_SHARDS="$shards" timeout -k 10 "$FILE_TIMEOUT" "$PY" "$HERE/lib/with_broker.py" -- \
        node --test --test-reporter=tap --test-concurrency=2 test/*.test.mjs) >"$log" 2>&1
    rc=$?
    ELAPSED=$(( $(date +%s) - t ))
    local p f c s
    p="$(grep -E '^# pass [0-9]+' "$log" | tail -n1 | awk '{print $3}')"
    f="$(grep -E '^# fail [0-9]+' "$log" | tail -n1 | awk '{print $3}')"
    c="$(grep -E '^# cancelled [0-9]+' "$log" | tail -n1 | awk '{print $3}')"
    s="$(grep -E '^# skipped [0-9]+' "$log" | tail -n1 | awk '{print $3}')"
    p=${p:-0}; f=${f:-0}; c=${c:-0}; s=${s:-0}
    # An unclean broker stop is reported by with_broker.py as an extra failure.
    if grep -q '^BROKER STOP FAILED' "$log"; then f=$((f + 1)); fi
    add_result "$name" "$log" "$rc" "$p" "$((f + c))" "$s"
}

for shards in $SHARDS_LIST; do
    echo "== shards=$shards"
    for file in "$HERE"/py/test_*.py "$HERE"/groups/test_*.py; do
        case "$(basename "$file")" in *"$ONLY"*) run_py "$shards" "$file" ;; esac
    done
    case "js" in *"$ONLY"*) run_js "$shards" ;; *) [ -z "$ONLY" ] && run_js "$shards" ;; esac
done

echo "== total $(( $(date +%s) - T0 ))s, $SKIPPED skipped, logs in $LOGDIR"
if [ "${#FAILED_FILES[@]}" -ne 0 ]; then
    echo "== failing: ${FAILED_FILES[*]}"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

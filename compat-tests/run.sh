#!/usr/bin/env bash
# Compat test suite: real Kafka clients against a real broker: kbroker, Apache Kafka (the reference)
# or any broker given by its address.
#
#   compat-tests/run.sh                          # kbroker, shards=1 and shards=2
#   compat-tests/run.sh 2                        # kbroker, only shards=2   (or: KB_SHARDS_LIST="1 2")
#   compat-tests/run.sh --target kafka           # Apache Kafka (compat-tests/kafka/pom.xml), started once
#   compat-tests/run.sh --target kbroker,kafka 1 2   # both, one report
#   compat-tests/run.sh --target 10.0.0.5:9092   # a running broker (kbroker-only tests skip)
#   KB_ONLY=kcat compat-tests/run.sh             # only test files whose name contains "kcat"
#
# Env: KB_BROKER_BIN (default <repo>/build/bin/kbroker), KB_PYTHON (default /usr/bin/python3),
#      KB_TARGETS (default kbroker; --target wins), KB_FILE_TIMEOUT (seconds per test file, default 240;
#      KB_JAVA_TIMEOUT for the one-JVM Java pass, default 600),
#      KB_VERBOSE=1 (print every file's output), KB_REPORT (report path; default compat-tests/REPORT.md
#      for a run without KB_ONLY, else only <logdir>/REPORT.md), KB_JOBS (passes run at once, default 1;
#      a pass is one target, or kbroker with one shard count).
# Prints one "N passed, N failed" line at the end; exits non-zero on any failure.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PY="${KB_PYTHON:-/usr/bin/python3}"
export KB_BROKER_BIN="${KB_BROKER_BIN:-$REPO/build/bin/kbroker}"
FILE_TIMEOUT="${KB_FILE_TIMEOUT:-240}"
# The Java pass is one JVM running every case (about 65, 200 s on kbroker and 240 s on Kafka on this 2-core
# machine, more on a slower one): a file's bound would cut it short.
JAVA_TIMEOUT="${KB_JAVA_TIMEOUT:-600}"
ONLY="${KB_ONLY:-}"
JOBS="${KB_JOBS:-1}"

TARGETS="${KB_TARGETS:-kbroker}"
SHARDS_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --target) [ $# -ge 2 ] || { echo "--target needs kbroker, kafka or HOST:PORT" >&2; exit 2; }
                  TARGETS="$2"; shift 2 ;;
        --target=*) TARGETS="${1#--target=}"; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) SHARDS_ARGS+=("$1"); shift ;;
    esac
done
SHARDS_LIST="${SHARDS_ARGS[*]:-${KB_SHARDS_LIST:-1 2}}"
TARGETS="${TARGETS//,/ }"
for t in $TARGETS; do
    case "$t" in
        kbroker|kafka) ;;
        *:*) ;;
        *) echo "unknown target '$t': kbroker, kafka or HOST:PORT" >&2; exit 2 ;;
    esac
done

LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/kb-compat-run.XXXXXX")"
RESULTS="$LOGDIR/results.tsv"
: >"$RESULTS"
PASSED=0 FAILED=0 SKIPPED=0
FAILED_FILES=()
T0=$(date +%s)
KAFKA_PID=""

stop_kafka() {
    if [ -n "$KAFKA_PID" ]; then
        kill -TERM "$KAFKA_PID" 2>/dev/null
        wait "$KAFKA_PID" 2>/dev/null
        KAFKA_PID=""
    fi
}
trap 'stop_kafka' EXIT
trap 'stop_kafka; exit 130' INT TERM

if [[ " $TARGETS " == *" kbroker "* ]] && [ ! -x "$KB_BROKER_BIN" ]; then
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

add_result() { # name logfile rc passed failed skipped kind file
    local name="$1" log="$2" rc="$3" p="$4" f="$5" s="$6"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed / timed out / unclean broker stop
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + s))
    printf '  %-34s %3d passed %3d failed %3d skipped  (%ss)\n' "$name" "$p" "$f" "$s" "$ELAPSED"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$LABEL" "$7" "$8" "$p" "$f" "$s" "$ELAPSED" "$rc" "$log" >>"$RESULTS"
    if [ "$f" -ne 0 ]; then
        FAILED_FILES+=("$name")
        echo "----- output of $name -----"
        grep -v '^%[0-9]|' "$log" | tail -n 150
        echo "----- end of $name (full log: $log) -----"
    elif [ "${KB_VERBOSE:-0}" = 1 ]; then
        cat "$log"
    fi
}

run_py() { # file
    local file="$1" name log rc t rel
    rel="$(basename "$(dirname "$file")")/$(basename "$file")"
    name="${rel%.py}[$LABEL]"
    log="$LOGDIR/$(basename "$file" .py).$SAFE.log"
    t=$(date +%s)
    timeout -k 10 "$FILE_TIMEOUT" "$PY" "$HERE/lib/run_py.py" "$file" >"$log" 2>&1
    rc=$?
    ELAPSED=$(( $(date +%s) - t ))
    local line p=0 f=0 s=0
    line="$(grep -E '^RESULT passed=' "$log" | tail -n 1)"
    if [ -n "$line" ]; then
        p="$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")"
        f="$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")"
        s="$(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")"
    fi
    add_result "$name" "$log" "$rc" "$p" "$f" "$s" py "$rel"
}

run_js() {
    local name="js/node --test[$LABEL]" log="$LOGDIR/js.$SAFE.log" rc t
    if [ "$JS_OK" -ne 1 ]; then ELAPSED=0; add_result "$name" /dev/null 1 0 1 0 js "js/test"; return; fi
    t=$(date +%s)
    (cd "$HERE/js" && timeout -k 10 "$FILE_TIMEOUT" "$PY" "$HERE/lib/with_broker.py" -- \
        node --test --test-reporter=tap --test-reporter-destination=stdout \
        --test-reporter=./file-reporter.mjs --test-reporter-destination="$log.files" \
        --test-concurrency=2 $(ls test/*.test.mjs | grep -v '^test/security.test.mjs$')) >"$log" 2>&1
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
    add_result "$name" "$log" "$rc" "$p" "$((f + c))" "$s" js "js/test"
}

run_diff() { # differential wire test: kbroker processes of its own against the run's Apache Kafka
    case "differential" in *"$ONLY"*) ;; *) return ;; esac
    [ "${KB_TARGET:-kbroker}" = kafka ] || return 0   # needs the reference: once per run, in the kafka pass
    KB_DIFF_SHARDS="${KB_DIFF_SHARDS:-1 2}" run_py "$HERE/diff/test_differential.py"
}

run_java() { # one JVM runs every Java case (java/run.py); java/build.sh builds once, offline when cached
    local name="java/kbcompat[$LABEL]" log="$LOGDIR/java.$SAFE.log" rc t p=0 f=0 s=0 line
    t=$(date +%s)
    if "$HERE/java/build.sh" >"$log" 2>&1 || { echo "FAIL: java/build.sh" >>"$log"; false; }; then
        timeout -k 10 "$JAVA_TIMEOUT" "$PY" "$HERE/java/run.py" >>"$log" 2>&1
        rc=$?
    else rc=1; fi
    ELAPSED=$(( $(date +%s) - t ))
    line="$(grep -E '^RESULT passed=' "$log" | tail -n 1)"
    if [ -n "$line" ]; then
        p="$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")"; f="$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")"
        s="$(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")"
    fi
    add_result "$name" "$log" "$rc" "$p" "$f" "$s" java "java/run.py"
}

run_go() { # go/: franz-go, sarama, kafka-go; the test binary is built once per run.sh run
    local name="go/go test[$LABEL]" log="$LOGDIR/go.$SAFE.log" bin="$LOGDIR/go-compat.test" rc t go_bin
    t=$(date +%s)
    if [ ! -x "$bin" ]; then "$HERE/go/build.sh" "$bin" >"$LOGDIR/go-build.log" 2>&1; fi
    if [ ! -x "$bin" ]; then
        ELAPSED=$(( $(date +%s) - t )); cp "$LOGDIR/go-build.log" "$log"
        if grep -q '^no Go toolchain' "$log"; then echo "SKIP-REASON go: $(cat "$log")" >>"$log"
            add_result "$name" "$log" 0 0 0 1 go "go/common_test.go"
        else add_result "$name" "$log" 1 0 1 0 go "go/common_test.go"; fi
        return
    fi
    go_bin="$(cat "$bin.go")"
    (cd "$HERE/go" && timeout -k 10 "$FILE_TIMEOUT" "$PY" "$HERE/lib/with_broker.py" --unstable -- \
        "$go_bin" tool test2json -p go "$bin" -test.v -test.parallel 4 -test.skip '^TestSecurity') >"$log.json" 2>&1
    rc=$?
    ELAPSED=$(( $(date +%s) - t ))
    "$PY" "$HERE/go/tally.py" "$log.json" >"$log"
    local line p f s
    line="$(grep -E '^RESULT passed=' "$log" | tail -n 1)"
    p="$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")"
    f="$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")"
    s="$(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")"
    add_result "$name" "$log" "$rc" "${p:-0}" "${f:-0}" "${s:-0}" go "go/common_test.go"
}

run_py3() { # py3/: newer Python clients, run with the venv's python (py3/venv.sh)
    local py3 file
    if ! py3="$("$HERE/py3/venv.sh" 2>"$LOGDIR/py3-venv.log")"; then
        ELAPSED=0; add_result "py3/venv[$LABEL]" "$LOGDIR/py3-venv.log" 1 0 1 0 py "py3/requirements.txt"; return
    fi
    for file in "$HERE"/py3/test_*.py; do
        case "$(basename "$file")" in *"$ONLY"*) PY="$py3" run_py "$file" ;; esac
    done
}

run_files() {
    for file in "$HERE"/py/test_*.py "$HERE"/groups/test_*.py; do
        case "$(basename "$file")" in *"$ONLY"*) run_py "$file" ;; esac
    done
    case "js" in *"$ONLY"*) run_js ;; *) [ -z "$ONLY" ] && run_js ;; esac
    run_diff
    case "java" in *"$ONLY"*) run_java ;; *) [ -z "$ONLY" ] && run_java ;; esac
    case "go" in *"$ONLY"*) run_go ;; *) [ -z "$ONLY" ] && run_go ;; esac
    run_py3
}

start_kafka() {
    local envfile="$LOGDIR/kafka-ref.env" i
    "$PY" "$HERE/lib/kafka_ref.py" serve "$envfile" >"$LOGDIR/kafka-ref.log" 2>&1 &
    KAFKA_PID=$!
    for ((i = 0; i < 1800; i++)); do
        [ -f "$envfile" ] && break
        kill -0 "$KAFKA_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -f "$envfile" ]; then
        echo "Apache Kafka did not start:" >&2
        cat "$LOGDIR/kafka-ref.log" >&2
        stop_kafka
        return 1
    fi
    # shellcheck disable=SC1090
    set -a; . "$envfile"; set +a
    export KB_TARGET=kafka
    head -n 1 "$LOGDIR/kafka-ref.log"
}

run_pass() { # one pass: "kbroker SHARDS", "kafka" or "ext HOST:PORT"
    case "$1" in
        kbroker)
            LABEL="kbroker shards=$2" SAFE="kbroker-s$2"
            echo "== $LABEL"
            KB_TARGET=kbroker KB_SHARDS="$2" run_files ;;
        kafka)
            SAFE="kafka"
            if ! start_kafka; then
                LABEL="kafka" ELAPSED=0
                add_result "Apache Kafka start" "$LOGDIR/kafka-ref.log" 1 0 1 0 setup "kafka-ref"
                return
            fi
            LABEL="kafka $KB_TARGET_VERSION"
            echo "== $LABEL at $KB_TARGET_BOOTSTRAP"
            # The mirror test's full size is for kbroker's 1-shard pass.
            KB_SHARDS=1 KB_MIRROR_FULL="${KB_MIRROR_FULL:-0}" run_files
            stop_kafka
            unset KB_TARGET KB_TARGET_BOOTSTRAP KB_TARGET_DATA_DIR KB_TARGET_LOG ;;
        ext)
            LABEL="$2" SAFE="ext-${2//[^A-Za-z0-9]/_}"
            echo "== external broker $2"
            KB_TARGET=external KB_TARGET_BOOTSTRAP="$2" KB_SHARDS=1 KB_MIRROR_FULL="${KB_MIRROR_FULL:-0}" \
                run_files ;;
    esac
}

PASSES=()
for target in $TARGETS; do
    case "$target" in
        kbroker) for shards in $SHARDS_LIST; do PASSES+=("kbroker $shards"); done ;;
        kafka) PASSES+=("kafka") ;;
        *) PASSES+=("ext $target") ;;
    esac
done

if [ "$JOBS" -le 1 ] || [ "${#PASSES[@]}" -le 1 ]; then
    for pass in "${PASSES[@]}"; do
        # shellcheck disable=SC2086
        run_pass $pass
    done
else
    # Passes at once: each has its own brokers, ports and temp dirs (Kafka included), so they share only
    # what is built once here first (the Java classes, the Go test binary, the py3 venv). A pass's output
    # is kept and printed whole, in pass order, when all are done; counts are summed from what each wrote.
    "$HERE/java/build.sh" >"$LOGDIR/java-build.log" 2>&1 || true
    "$HERE/go/build.sh" "$LOGDIR/go-compat.test" >"$LOGDIR/go-build.log" 2>&1 || true
    "$HERE/py3/venv.sh" >/dev/null 2>"$LOGDIR/py3-venv.log" || true
    PIDS=()
    trap 'kill -TERM "${PIDS[@]}" 2>/dev/null; wait; exit 130' INT TERM
    echo "== ${#PASSES[@]} passes, $JOBS at a time: ${PASSES[*]}"
    for i in "${!PASSES[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
        (
            trap 'stop_kafka' EXIT
            trap 'stop_kafka; exit 130' INT TERM
            RESULTS="$LOGDIR/results.$i.tsv"
            : >"$RESULTS"
            # shellcheck disable=SC2086
            run_pass ${PASSES[$i]}
            echo "$PASSED $FAILED $SKIPPED" >"$LOGDIR/pass.$i.sum"
            if [ "${#FAILED_FILES[@]}" -ne 0 ]; then printf '%s\n' "${FAILED_FILES[@]}"; fi >"$LOGDIR/pass.$i.failed"
        ) >"$LOGDIR/pass.$i.out" 2>&1 &
        PIDS+=($!)
    done
    wait
    trap 'stop_kafka' EXIT
    trap 'stop_kafka; exit 130' INT TERM
    for i in "${!PASSES[@]}"; do
        cat "$LOGDIR/pass.$i.out"
        cat "$LOGDIR/results.$i.tsv" >>"$RESULTS" 2>/dev/null
        if read -r p f sk <"$LOGDIR/pass.$i.sum" 2>/dev/null; then
            PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + sk))
            while IFS= read -r name; do FAILED_FILES+=("$name"); done <"$LOGDIR/pass.$i.failed"
        else
            FAILED=$((FAILED + 1)); FAILED_FILES+=("pass '${PASSES[$i]}' (ended without its counts)")
        fi
    done
fi

REPORT="${KB_REPORT:-}"
if [ -z "$REPORT" ]; then
    if [ -z "$ONLY" ]; then REPORT="$HERE/REPORT.md"; else REPORT="$LOGDIR/REPORT.md"; fi
fi
"$PY" "$HERE/lib/report.py" "$RESULTS" "$REPORT" "$(( $(date +%s) - T0 ))" || echo "report generation failed" >&2

echo "== total $(( $(date +%s) - T0 ))s, $SKIPPED skipped, logs in $LOGDIR, report $REPORT"
if [ "${#FAILED_FILES[@]}" -ne 0 ]; then
    echo "== failing: ${FAILED_FILES[*]}"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

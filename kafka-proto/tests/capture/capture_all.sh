#!/bin/sh
# Regenerate tests/data/captures end to end: start fake_broker.py on an ephemeral
# 127.0.0.1 port, run every client scenario of scenarios.json (kcat, kafka-python,
# KafkaJS), stop the broker, copy the interesting frames + MANIFEST.json into
# tests/data/captures, then run the independent verifier.
#
# Usage: tests/capture/capture_all.sh [--keep]    (--keep: leave the raw work dir)
# Needs: kcat, /usr/bin/python3 with kafka-python, node + npm (kafkajs is installed
# into tests/capture/node_modules from package.json/package-lock.json if missing),
# and the lz4 and zstd command-line tools (for the verifier).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
DEST="$HERE/../data/captures"
PY=/usr/bin/python3
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kafka-capture.XXXXXX")
BROKER_PID=""
cleanup() {
    if [ -n "$BROKER_PID" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then echo "raw capture kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

if [ ! -d "$HERE/node_modules/kafkajs" ]; then
    (cd "$HERE" && npm ci --no-audit --no-fund)
fi

"$PY" "$HERE/fake_broker.py" 0 --out "$WORK/frames" --port-file "$WORK/port" 2>"$WORK/broker.log" &
BROKER_PID=$!
i=0
while [ ! -s "$WORK/port" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then echo "fake broker did not start:"; cat "$WORK/broker.log"; exit 1; fi
    sleep 0.1
done
PORT=$(cat "$WORK/port")
echo "fake broker on 127.0.0.1:$PORT (pid $BROKER_PID), work dir $WORK"

rc=0
"$PY" "$HERE/drive_kcat.py" "$PORT" "$WORK/runs.jsonl" 2>"$WORK/kcat.log" || { rc=1; echo "kcat driver failed (see $WORK/kcat.log)"; KEEP=1; }
"$PY" "$HERE/drive_kafka_python.py" "$PORT" "$WORK/runs.jsonl" 2>"$WORK/kafka-python.log" || { rc=1; echo "kafka-python driver failed (see $WORK/kafka-python.log)"; KEEP=1; }
KAFKAJS_NO_PARTITIONER_WARNING=1 node "$HERE/drive_kafkajs.js" "$PORT" "$WORK/runs.jsonl" 2>"$WORK/kafkajs.log" || { rc=1; echo "kafkajs driver failed (see $WORK/kafkajs.log)"; KEEP=1; }

kill "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
BROKER_PID=""
echo "--- fake broker log"
grep -E ': (ApiVersions|Metadata|Produce|InitProducerId|FindCoordinator|Api[0-9]+) ' "$WORK/broker.log" | sed 's/^\[fake_broker [0-9:]*\] //' || true

"$PY" "$HERE/build_manifest.py" "$WORK" "$DEST" || { rc=1; KEEP=1; }
"$PY" "$HERE/verify_captures.py" "$DEST" || { rc=1; KEEP=1; }
exit $rc

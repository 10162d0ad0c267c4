"""Asks Apache Kafka 4.4.0 the coordinator's answers that server/tests/test_txn_state.c expects.

Owns nothing that stays: starts Kafka (compat-tests/lib/kafka_ref.py), sends raw InitProducerId v5,
AddPartitionsToTxn v3 and EndTxn v4/v5 requests and compares every answer with the unit tests' rows.
Must not: be needed by the build or the tests. Exit status 0 when every answer matched.

    $(compat-tests/py3/venv.sh) tools/txn_fixtures/probe_errors.py
"""
import os
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "compat-tests", "lib"))
from kafka_ref import KafkaRef  # noqa: E402
from wire import carray, cstr, flex_request, read_frame  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

corr = 0
failures = 0


def call(s, key, ver, body):
    global corr
    corr += 1
    s.sendall(flex_request(key, ver, corr, body))
    r = read_frame(s)
    assert struct.unpack(">i", r[:4])[0] == corr
    return r[5:]  # correlation id + empty tagged fields of header v1


def init(s, tid, timeout, pid=-1, epoch=-1):
    r = call(s, 22, 5, cstr(tid) + struct.pack(">iqh", timeout, pid, epoch) + b"\0")
    _, err, p, e = struct.unpack(">ihqh", r[:16])
    return err, p, e


def add(s, tid, pid, epoch, topic, part):
    body = cstr(tid) + struct.pack(">qh", pid, epoch) + carray([cstr(topic) + carray([struct.pack(">i", part)]) + b"\0"]) + b"\0"
    r = call(s, 24, 3, body)
    # throttle, results[1]: name, results[1]: partition, error
    off = 4 + 1
    n = r[off] - 1
    off += 1 + n + 1
    _, err = struct.unpack(">ih", r[off:off + 6])
    return err


def end(s, tid, pid, epoch, commit, ver):
    r = call(s, 26, ver, cstr(tid) + struct.pack(">qhb", pid, epoch, 1 if commit else 0) + b"\0")
    _, err = struct.unpack(">ih", r[:6])
    if ver >= 5:
        p, e = struct.unpack(">qh", r[6:16])
        return err, p, e
    return err, None, None


def expect(what, got, want):
    global failures
    ok = got in want if isinstance(want, set) else got == want
    failures += 0 if ok else 1
    print("%-58s got %-22s want %-22s %s" % (what, got, want, "ok" if ok else "MISMATCH"))


def until_complete(fn, tries=100):
    """Retries while markers complete (51) or the coordinator loads (14, 15, 16)."""
    for _ in range(tries):
        r = fn()
        if r[0] not in (14, 15, 16, 51):
            return r
        time.sleep(0.2)
    return r


def find_coordinator(s, tid):
    """FindCoordinator v4, key type 1: makes Kafka create __transaction_state."""
    r = call(s, 10, 4, struct.pack(">b", 1) + carray([cstr(tid)]) + b"\0")
    return r


k = KafkaRef(settings={"transaction.state.log.num.partitions": "1"})
k.start()
try:
    ad = AdminClient({"bootstrap.servers": k.bootstrap})
    for f in ad.create_topics([NewTopic("t", 1, 1)]).values():
        f.result()
    host, port = k.bootstrap.split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    for _ in range(100):
        find_coordinator(s, "p1")
        if init(s, "p1", 900001)[0] not in (14, 15, 16):
            break
        time.sleep(0.2)
    expect("init: timeout above transaction.max.timeout.ms", init(s, "p1", 900001)[0], 50)
    err, pid, ep = until_complete(lambda: init(s, "p1", 60000))
    expect("init: new id", (err, ep), (0, 0))
    expect("v4 EndTxn commit on Empty", end(s, "p1", pid, 0, True, 4)[0], 48)
    expect("v4 EndTxn abort on Empty", end(s, "p1", pid, 0, False, 4)[0], 48)
    expect("v5 EndTxn commit on Empty", end(s, "p1", pid, 0, True, 5)[0], 48)
    expect("v5 EndTxn abort on Empty, previous epoch", end(s, "p1", pid, -1, False, 5)[0], 90)
    expect("v5 EndTxn abort on Empty: epoch bump", end(s, "p1", pid, 0, False, 5), (0, pid, 1))
    time.sleep(0.5)
    expect("v5 EndTxn abort retry on CompleteAbort", end(s, "p1", pid, 0, False, 5), (0, pid, 1))
    expect("v5 EndTxn commit retry on CompleteAbort", end(s, "p1", pid, 0, True, 5)[0], 48)
    expect("v4 EndTxn other producer id", end(s, "p1", pid + 1000, 1, True, 4)[0], 49)
    expect("v4 EndTxn unknown id", end(s, "nope", pid, 1, True, 4)[0], 49)
    expect("AddPartitions v3 stale epoch", add(s, "p1", pid, 0, "t", 0), 90)
    expect("AddPartitions v3 other producer id", add(s, "p1", pid + 1000, 1, "t", 0), 49)
    expect("AddPartitions v3 unknown id", add(s, "nope", pid, 1, "t", 0), 49)
    expect("AddPartitions v3", add(s, "p1", pid, 1, "t", 0), 0)
    expect("AddPartitions v3 again (already in)", add(s, "p1", pid, 1, "t", 0), 0)
    expect("init of a new instance on Ongoing: fence", init(s, "p1", 60000)[0], 51)
    expect("v4 EndTxn commit by the fenced producer", end(s, "p1", pid, 1, True, 4)[0], 90)
    err, _, ep = until_complete(lambda: init(s, "p1", 60000))
    expect("init after the fence: epoch 1 -> fence 2 -> 3", (err, ep), (0, 3))
    expect("init, KIP-360 with a stale epoch", init(s, "p1", 60000, pid, 2)[0], 90)
    expect("init, KIP-360 with another producer id", init(s, "p1", 60000, pid + 1000, 3)[0], 90)
    expect("init, KIP-360 current epoch: bump", init(s, "p1", 60000, pid, 3)[1:], (pid, 4))
    expect("init, KIP-360 retry (last epoch): no bump", init(s, "p1", 60000, pid, 3)[1:], (pid, 4))
    expect("AddPartitions v3 after init", add(s, "p1", pid, 4, "t", 0), 0)
    expect("v4 EndTxn commit", end(s, "p1", pid, 4, True, 4)[0], 0)
    # Right after the commit the markers are in flight (51); once they are written, the state answers (48).
    expect("v4 EndTxn abort while the commit's markers go out", end(s, "p1", pid, 4, False, 4)[0], {51, 48})
    time.sleep(0.5)
    expect("v4 EndTxn commit retry on CompleteCommit", end(s, "p1", pid, 4, True, 4)[0], 0)
    s.close()
finally:
    k.stop()
    k.cleanup()
print("mismatches: %d" % failures)
sys.exit(1 if failures else 0)

"""Transactions and the log cleaner / retention (issue 16), on a broker with
transaction.partition.verification.enable=false, raw wire (helpers of test_txn_partition.py): on a compacted topic
with small segments (segment.ms), min.cleanable.dirty.ratio=0 and a short delete.retention.ms, an aborted
transaction's values disappear after the cleaner ran and the committed ones stay, at both isolation levels; and
DeleteRecords past an open transaction's first offset moves the log start (bounded by the high watermark, not by
the last stable offset), leaves the transaction open (DescribeProducers), clamps the LSO to the log start, and its
later abort lists the original first offset. Apache Kafka first (its log.cleaner.backoff.ms lowered to 500 ms),
then kbroker, whose compaction runs every 15 s; every wait is bounded."""

import os
import struct
import sys
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
import kwire  # noqa: E402
from broker import target  # noqa: E402
from common import uniq  # noqa: E402
from test_txn_partition import NONE, Wire, aborted, own_broker  # noqa: E402

CREATE_TOPICS, DELETE_RECORDS = 19, 21
SETTINGS = {"transaction.partition.verification.enable": "false"}
KAFKA_ONLY = {"log.cleaner.backoff.ms": "500"}
CLEAN_WAIT_S = 90


def now_ms():
    """Record timestamps: Kafka rolls by segment.ms on the records' own timestamps."""
    return int(time.time() * 1000)


def keyed_batch(kvs, pid, epoch, seq, ts, transactional=True):
    """A magic-2 batch of (key, value) records of the producer (transactional: attribute bit 4)."""
    body = bytearray()
    for i, (k, val) in enumerate(kvs):
        r = bytearray(b"\x00") + kwire._varint(0) + kwire._varint(i)
        r += kwire._varint(len(k)) + k + kwire._varint(len(val)) + val + kwire._varint(0)
        body += kwire._varint(len(r)) + r
    n = len(kvs)
    attrs = 0x10 if transactional else 0
    after_crc = struct.pack(">hiqqqhii", attrs, n - 1, ts, ts, pid, epoch, seq, n) + bytes(body)
    head = struct.pack(">qiib", 0, 4 + 1 + 4 + len(after_crc), 0, 2)
    return head + struct.pack(">I", kwire.crc32c(after_crc)) + after_crc


def create(w, topic, configs):
    r = w.c.request(CREATE_TOPICS, 4, {"Topics": [{
        "Name": topic, "NumPartitions": 1, "ReplicationFactor": 1, "Assignments": [],
        "Configs": [{"Name": k, "Value": v} for k, v in configs.items()]}], "timeoutMs": 15000})
    assert r["Topics"][0]["ErrorCode"] == 0, r


def records(w, topic, isolation):
    """(offset, key, value) of every data record below the HW (read_committed: below the LSO, aborted skipped
    with the aborted list, as a client does); and the raw batches."""
    out, batches, off, deadline = [], [], 0, time.time() + 15
    p = w.fetch(topic, 0, 0, isolation)
    hw = p["HighWatermark"] if isolation == 0 else p["LastStableOffset"]
    pending = sorted(aborted(w.fetch(topic, 0, 0, 1)) or [], key=lambda x: x[1])
    skipping = set()
    while off < hw and time.time() < deadline:
        got = kwire.read_batches(w.fetch(topic, 0, off, isolation)["Records"])
        if not got:
            break
        for b in got:
            batches.append(b)
            off = b["base_offset"] + b["last_offset_delta"] + 1
            # The Java consumer's rule: a producer's aborted transaction is skipped from its first offset up
            # to its ABORT marker.
            while pending and pending[0][1] <= b["base_offset"]:
                skipping.add(pending.pop(0)[0])
            if b["attributes"] & 0x20:
                skipping.discard(b["producer_id"])
                continue
            if isolation == 1 and b["attributes"] & 0x10 and b["producer_id"] in skipping:
                continue
            for r in b["records"]:
                out.append((b["base_offset"] + r["offset_delta"], r["key"], r["value"]))
    return out, batches


def latest(recs):
    m = {}
    for _, k, v in recs:
        m[k] = v
    return m


class TxnCompactionTest(unittest.TestCase):
    def setUp(self):
        settings = dict(SETTINGS, **(KAFKA_ONLY if target() == "kafka" else {}))
        self.b = own_broker(self, settings)
        self.w = Wire(self.b.bootstrap)
        self.addCleanup(self.w.c.close)

    def test_aborted_values_cleaned(self):
        w, T = self.w, uniq("txn-compact")
        create(w, T, {"cleanup.policy": "compact", "segment.ms": "300", "min.cleanable.dirty.ratio": "0",
                      "delete.retention.ms": "1000", "min.compaction.lag.ms": "0"})
        (a, ea), (b, eb) = w.init_pid(), w.init_pid()
        committed = [(b"k1", b"c1"), (b"k2", b"c2"), (b"k3", b"c3")]
        ab_vals = [(b"k1", b"ABORTED1"), (b"k4", b"ABORTED4")]
        self.assertEqual(w.produce(T, 0, keyed_batch([(b"k1", b"old1"), (b"k5", b"plain5")], -1, -1, -1, now_ms(),
                                                     transactional=False), txn_id=None)[0], NONE)
        self.assertEqual(w.produce(T, 0, keyed_batch(committed, a, ea, 0, now_ms()))[0], NONE)
        self.assertEqual(w.produce(T, 0, keyed_batch(ab_vals, b, eb, 0, now_ms()))[0], NONE)
        self.assertEqual(w.markers(a, ea, True, [(T, 0)]), {(T, 0): NONE})
        self.assertEqual(w.markers(b, eb, False, [(T, 0)]), {(T, 0): NONE})
        # Still in the active segment: nothing cleaned yet.
        before_c, _ = records(w, T, 1)
        before_u, raw = records(w, T, 0)
        marker_of = {bt["producer_id"]: bt["base_offset"] for bt in reversed(raw) if bt["attributes"] & 0x20}
        self.assertEqual(aborted(w.fetch(T, 0, 0, 1)), [(b, 5)])
        self.assertIn((b"k4", b"ABORTED4"), [(k, v) for _, k, v in before_u])
        self.assertEqual(latest(before_c), {b"k1": b"c1", b"k2": b"c2", b"k3": b"c3", b"k5": b"plain5"})
        # Later data in later segments (segment.ms), so the transactions' segment is neither active nor at the
        # LSO, and the producers' batches above are not their last ones.
        for i in range(3):
            time.sleep(0.5)
            self.assertEqual(w.produce(T, 0, keyed_batch([(b"f%d" % i, b"filler")], -1, -1, -1, now_ms(),
                                                         transactional=False), txn_id=None)[0], NONE)
        self.assertEqual(w.produce(T, 0, keyed_batch([(b"k6", b"c6")], a, ea, 3, now_ms()))[0], NONE)
        self.assertEqual(w.markers(a, ea, True, [(T, 0)]), {(T, 0): NONE})
        self.assertEqual(w.produce(T, 0, keyed_batch([(b"k7", b"late")], b, eb, 2, now_ms()))[0], NONE)
        self.assertEqual(w.markers(b, eb, True, [(T, 0)]), {(T, 0): NONE})


        deadline, after_u, batches = time.time() + CLEAN_WAIT_S, before_u, []
        while time.time() < deadline:
            # Keep rolling: a cleaner never touches the active segment.
            time.sleep(1.0)
            self.assertEqual(w.produce(T, 0, keyed_batch([(b"tick", b"t")], -1, -1, -1, now_ms(),
                                                         transactional=False), txn_id=None)[0], NONE)
            after_u, batches = records(w, T, 0)
            if not any(v.startswith(b"ABORTED") for _, _, v in after_u) and b"old1" not in [
                    v for _, _, v in after_u]:
                break
        self.assertEqual([v for _, _, v in after_u if v.startswith(b"ABORTED")], [],
                         "aborted values still there after %d s" % CLEAN_WAIT_S)
        after_c, _ = records(w, T, 1)
        want = {b"k1": b"c1", b"k2": b"c2", b"k3": b"c3", b"k5": b"plain5", b"f0": b"filler", b"f1": b"filler",
                b"f2": b"filler", b"k6": b"c6", b"k7": b"late", b"tick": b"t"}
        self.assertEqual(latest(after_c), want)
        self.assertEqual(latest(after_u), want)  # nothing aborted is left to read uncommitted
        # Offsets did not move: the committed values sit where they were written.
        before_at = {(k, v): o for o, k, v in before_c}
        for o, k, v in after_c:
            if (k, v) in before_at:
                self.assertEqual(before_at[(k, v)], o)

        # Markers: B's ABORT, whose data is gone, goes once delete.retention.ms passed after a pass found it
        # empty (its aborted-transaction entry before it); A's COMMIT, whose values are still the latest, stays.
        deadline, gone = time.time() + CLEAN_WAIT_S, False
        while time.time() < deadline and not gone:
            time.sleep(1.0)
            self.assertEqual(w.produce(T, 0, keyed_batch([(b"tick", b"t")], -1, -1, -1, now_ms(),
                                                         transactional=False), txn_id=None)[0], NONE)
            _, raw = records(w, T, 0)
            gone = all(bt["base_offset"] != marker_of[b] for bt in raw)
        self.assertTrue(gone, "B's ABORT marker still there after %d s" % CLEAN_WAIT_S)
        self.assertEqual(aborted(w.fetch(T, 0, 0, 1)), [])
        self.assertIn(marker_of[a], [bt["base_offset"] for bt in raw if bt["attributes"] & 0x20])
        self.assertEqual(latest(records(w, T, 1)[0]), want)

    def test_delete_records_past_open_txn(self):
        w, T = self.w, uniq("txn-delrec")
        create(w, T, {})
        (a, ea), (b, eb) = w.init_pid(), w.init_pid()
        self.assertEqual(w.produce(T, 0, keyed_batch([(b"a", b"open0")], a, ea, 0, now_ms())), (NONE, 0))
        self.assertEqual(w.produce(T, 0, keyed_batch([(b"b", b"b1")], b, eb, 0, now_ms())), (NONE, 1))
        self.assertEqual(w.produce(T, 0, keyed_batch([(b"a", b"open2")], a, ea, 1, now_ms())), (NONE, 2))
        self.assertEqual(w.markers(b, eb, True, [(T, 0)]), {(T, 0): NONE})  # offset 3
        self.assertEqual(w.fetch(T, 0, 0, 1)["LastStableOffset"], 0)
        # DeleteRecords past A's first offset (and past the LSO): allowed, bounded by the HW only.
        r = w.c.request(DELETE_RECORDS, 1, {"Topics": [{"Name": T, "Partitions": [
            {"PartitionIndex": 0, "Offset": 2}]}], "TimeoutMs": 10000})
        p = r["Topics"][0]["Partitions"][0]
        self.assertEqual((p["ErrorCode"], p["LowWatermark"]), (NONE, 2))
        f = w.fetch(T, 0, 2, 1, version=11)
        self.assertEqual((f["ErrorCode"], f["HighWatermark"], f["LastStableOffset"], f["LogStartOffset"]),
                         (NONE, 4, 2, 2))
        self.assertEqual(w.list_offset(T, 0, -1, 1)[0], 2)
        self.assertEqual(w.list_offset(T, 0, -2, 0)[0], 2)
        self.assertEqual(w.producers(T, 0)[a]["CurrentTxnStartOffset"], 0)
        # A aborts (offset 4): its entry keeps the first offset retention removed.
        self.assertEqual(w.markers(a, ea, False, [(T, 0)]), {(T, 0): NONE})
        f = w.fetch(T, 0, 2, 1)
        self.assertEqual((f["HighWatermark"], f["LastStableOffset"], aborted(f)), (5, 5, [(a, 0)]))
        self.assertEqual(w.producers(T, 0)[a]["CurrentTxnStartOffset"], -1)
        # Beyond the HW: refused.
        r = w.c.request(DELETE_RECORDS, 1, {"Topics": [{"Name": T, "Partitions": [
            {"PartitionIndex": 0, "Offset": 9}]}], "TimeoutMs": 10000})
        self.assertEqual(r["Topics"][0]["Partitions"][0]["ErrorCode"], 1)  # OFFSET_OUT_OF_RANGE


if __name__ == "__main__":
    unittest.main()

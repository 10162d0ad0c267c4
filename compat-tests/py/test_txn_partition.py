"""Transactions, the partition leader's side (issue 16), on a broker with
transaction.partition.verification.enable=false (KIP-890 part 1 off: partitions take transactional batches without
asking a coordinator), as Apache Kafka 4.4 does it. Raw requests (kwire, the generated-message codec): two producers
from InitProducerId (no transactional id) write transactional batches to 2 partitions, WriteTxnMarkers commits one
and aborts the other; Fetch at both isolation levels (last stable offset, aborted transactions, what stops at the
LSO before a marker), ListOffsets at both levels, DescribeProducers, fencing by an older epoch on data and on a
marker, an older coordinator epoch, a non-transactional batch inside a transaction, and a marker for a producer
with no open transaction. Real clients then read the result: confluent-kafka (Debian's 1.7 and the venv's 2.x) and
kcat with isolation.level=read_committed see only committed records, read_uncommitted all of them. On a broker with
the default (verification on) a transactional request is still refused."""

import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
import kwire  # noqa: E402
from broker import Broker, shards_from_env, target  # noqa: E402
from common import uniq  # noqa: E402

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

SETTINGS = {"transaction.partition.verification.enable": "false"}
NONE, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, COORD_FENCED = 0, 47, 48, 52
TXN_ID_AUTH_FAILED, UNKNOWN_TOPIC = 53, 3
T0 = 1700000000000
PRODUCE, FETCH, LIST_OFFSETS, INIT_PID, WRITE_MARKERS, DESCRIBE_PRODUCERS, CREATE_TOPICS = 0, 1, 2, 22, 27, 61, 19


def txn_batch(values, pid, epoch, seq, ts, transactional=True):
    """A magic-2 batch of the producer, transactional (attribute bit 4) unless told."""
    body = bytearray()
    for i, val in enumerate(values):
        r = bytearray(b"\x00") + kwire._varint(0) + kwire._varint(i) + kwire._varint(-1)
        r += kwire._varint(len(val)) + val + kwire._varint(0)
        body += kwire._varint(len(r)) + r
    n = len(values)
    after_crc = struct.pack(">hiqqqhii", 0x10 if transactional else 0, n - 1, ts, ts, pid, epoch, seq, n) + bytes(body)
    head = struct.pack(">qiib", 0, 4 + 1 + 4 + len(after_crc), 0, 2)
    return head + struct.pack(">I", kwire.crc32c(after_crc)) + after_crc


def own_broker(testcase, settings):
    """A broker of the test's own with these settings: kbroker, or on the kafka target an Apache Kafka."""
    if target() == "kafka":
        from kafka_ref import KafkaRef
        k = KafkaRef(settings=settings)
        testcase.addCleanup(k.cleanup)
        testcase.addCleanup(k.stop)
        k.start()
        return k
    if target() != "kbroker":
        raise unittest.SkipTest("needs a broker of the test's own with transaction.partition.verification.enable")
    b = Broker(shards=shards_from_env(), extra_sets=["%s=%s" % kv for kv in settings.items()], target="kbroker")
    testcase.addCleanup(b.cleanup)
    testcase.addCleanup(lambda: b.running and b.stop())
    b.start()
    return b


class Wire:
    def __init__(self, bootstrap):
        self.c = kwire.Conn(bootstrap)

    def create(self, topic, parts):
        r = self.c.request(CREATE_TOPICS, 4, {"Topics": [{"Name": topic, "NumPartitions": parts,
                                                          "ReplicationFactor": 1}], "timeoutMs": 15000})
        assert r["Topics"][0]["ErrorCode"] == 0, r

    def init_pid(self):
        """A producer id and epoch; Kafka answers COORDINATOR_LOAD_IN_PROGRESS for a while after its start."""
        deadline = time.time() + 30
        while True:
            r = self.c.request(INIT_PID, 0, {"TransactionalId": None, "TransactionTimeoutMs": 60000})
            if r["ErrorCode"] != 14 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r["ErrorCode"] == 0, r
        return r["ProducerId"], r["ProducerEpoch"]

    def produce(self, topic, part, batch, txn_id="txn-test", retry=True):
        """The partition's (error, base offset); a partition not led yet (Kafka just after CreateTopics) is
        retried for a bounded time."""
        deadline = time.time() + 15
        while True:
            r = self.c.request(PRODUCE, 3, {"TransactionalId": txn_id, "Acks": -1, "TimeoutMs": 10000,
                                            "TopicData": [{"Name": topic, "PartitionData": [
                                                {"Index": part, "Records": batch}]}]})
            p = r["Responses"][0]["PartitionResponses"][0]
            if not retry or p["ErrorCode"] not in (3, 6) or time.time() > deadline:
                return p["ErrorCode"], p["BaseOffset"]
            time.sleep(0.2)

    def markers(self, pid, epoch, commit, parts, coord_epoch=5, tv=None):
        """WriteTxnMarkers v1 (v2 with transaction version tv) for one producer: {(topic, partition): error}."""
        topics = {}
        for t, p in parts:
            topics.setdefault(t, []).append(p)
        r = self.c.request(WRITE_MARKERS, 1 if tv is None else 2, {"Markers": [{
            "ProducerId": pid, "ProducerEpoch": epoch, "TransactionResult": commit, "CoordinatorEpoch": coord_epoch,
            "TransactionVersion": tv or 0,
            "Topics": [{"Name": t, "PartitionIndexes": ps} for t, ps in topics.items()]}]})
        m = r["Markers"][0]
        assert m["ProducerId"] == pid, r
        return {(t["Name"], p["PartitionIndex"]): p["ErrorCode"] for t in m["Topics"] for p in t["Partitions"]}

    def fetch(self, topic, part, offset, isolation, version=4, wait_ms=0, min_bytes=0):
        r = self.c.request(FETCH, version, {
            "ReplicaId": -1, "MaxWaitMs": wait_ms, "MinBytes": min_bytes, "MaxBytes": 1 << 20,
            "IsolationLevel": isolation,
            "SessionId": 0, "SessionEpoch": -1,
            "Topics": [{"Topic": topic, "Partitions": [{"Partition": part, "FetchOffset": offset,
                                                        "PartitionMaxBytes": 1 << 20, "LogStartOffset": -1,
                                                        "CurrentLeaderEpoch": -1, "LastFetchedEpoch": -1}]}],
            "ForgottenTopicsData": [], "RackId": ""})
        return r["Responses"][0]["Partitions"][0]

    def batches(self, topic, part, end):
        """Every batch below end, read_uncommitted (Apache Kafka may answer a fetch with fewer batches than
        there are)."""
        out, off, deadline = [], 0, time.time() + 10
        while off < end and time.time() < deadline:
            got = kwire.read_batches(self.fetch(topic, part, off, 0)["Records"])
            out += got
            if got:
                off = got[-1]["base_offset"] + got[-1]["last_offset_delta"] + 1
        return out

    def list_offset(self, topic, part, ts, isolation):
        r = self.c.request(LIST_OFFSETS, 2, {"ReplicaId": -1, "IsolationLevel": isolation, "Topics": [
            {"Name": topic, "Partitions": [{"PartitionIndex": part, "Timestamp": ts}]}]})
        p = r["Topics"][0]["Partitions"][0]
        assert p["ErrorCode"] == 0, r
        return p["Offset"], p["Timestamp"]

    def producers(self, topic, part):
        r = self.c.request(DESCRIBE_PRODUCERS, 0, {"Topics": [{"Name": topic, "PartitionIndexes": [part]}]})
        p = r["Topics"][0]["Partitions"][0]
        assert p["ErrorCode"] == 0, r
        return {s["ProducerId"]: s for s in p["ActiveProducers"]}


def offsets_of(records):
    return [b["base_offset"] + r["offset_delta"] for b in kwire.read_batches(records) if not b["attributes"] & 0x20
            for r in b["records"]]


def values_of(records):
    return [r["value"] for b in kwire.read_batches(records) if not b["attributes"] & 0x20 for r in b["records"]]


def aborted(p):
    a = p["AbortedTransactions"]
    return None if a is None else [(x["ProducerId"], x["FirstOffset"]) for x in a]


class TxnPartitionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.topic = uniq("txn-part")
        cls.broker = None

    def setUp(self):
        self.b = own_broker(self, SETTINGS)
        self.w = Wire(self.b.bootstrap)
        self.addCleanup(self.w.c.close)

    def test_partition_side(self):
        w, T = self.w, uniq("txn-part")
        w.create(T, 2)
        (a, ea), (b, eb) = w.init_pid(), w.init_pid()
        # p0: A's 2 records (0-1), B's (2), A's third (3); p1: A's 2 records (0-1).
        self.assertEqual(w.produce(T, 0, txn_batch([b"a0", b"a1"], a, ea, 0, T0)), (NONE, 0))
        self.assertEqual(w.produce(T, 1, txn_batch([b"x0", b"x1"], a, ea, 0, T0)), (NONE, 0))
        self.assertEqual(w.produce(T, 0, txn_batch([b"b0"], b, eb, 0, T0 + 100)), (NONE, 2))
        self.assertEqual(w.produce(T, 0, txn_batch([b"a2"], a, ea, 2, T0 + 200)), (NONE, 3))

        # Both transactions open: the LSO is A's first offset; read_committed gets nothing.
        p = w.fetch(T, 0, 0, 0)
        self.assertEqual((p["ErrorCode"], p["HighWatermark"], p["LastStableOffset"]), (0, 4, 0))
        self.assertEqual(offsets_of(p["Records"]), [0, 1, 2, 3])
        self.assertIsNone(aborted(p))
        p = w.fetch(T, 0, 0, 1)
        self.assertEqual((p["ErrorCode"], p["HighWatermark"], p["LastStableOffset"]), (0, 4, 0))
        self.assertEqual(offsets_of(p["Records"]), [])
        self.assertEqual(w.list_offset(T, 0, -1, 0)[0], 4)
        self.assertEqual(w.list_offset(T, 0, -1, 1)[0], 0)
        prod = w.producers(T, 0)
        self.assertEqual((prod[a]["CurrentTxnStartOffset"], prod[a]["CoordinatorEpoch"]), (0, -1))
        self.assertEqual(prod[b]["CurrentTxnStartOffset"], 2)

        # A commits on both partitions (p0's marker at 4): B's open transaction now holds the LSO at 2.
        self.assertEqual(w.markers(a, ea, True, [(T, 0), (T, 1)]), {(T, 0): NONE, (T, 1): NONE})
        p = w.fetch(T, 0, 0, 1)
        self.assertEqual((p["HighWatermark"], p["LastStableOffset"]), (5, 2))
        self.assertEqual(offsets_of(p["Records"]), [0, 1])
        self.assertEqual(aborted(p), [])
        self.assertEqual(w.list_offset(T, 0, -1, 1)[0], 2)
        # A timestamp search finds B's batch (offset 2) below the HW but not below the LSO.
        self.assertEqual(w.list_offset(T, 0, T0 + 50, 0)[0], 2)
        self.assertEqual(w.list_offset(T, 0, T0 + 50, 1), (-1, -1))
        self.assertEqual(w.list_offset(T, 0, T0, 1)[0], 0)
        p1 = w.fetch(T, 1, 0, 1)
        self.assertEqual((p1["HighWatermark"], p1["LastStableOffset"]), (3, 3))
        self.assertEqual(values_of(p1["Records"]), [b"x0", b"x1"])

        # B aborts on p0 (marker at 5): everything is stable, B's records listed as aborted.
        self.assertEqual(w.markers(b, eb, False, [(T, 0)]), {(T, 0): NONE})
        p = w.fetch(T, 0, 0, 1)
        self.assertEqual((p["HighWatermark"], p["LastStableOffset"]), (6, 6))
        self.assertEqual(offsets_of(p["Records"]), [0, 1, 2, 3])
        self.assertEqual(aborted(p), [(b, 2)])
        p = w.fetch(T, 0, 4, 1)  # from A's marker on: B's aborted transaction still intersects [4, 6)
        self.assertEqual(aborted(p), [(b, 2)])
        p = w.fetch(T, 0, 0, 1, version=11)
        self.assertEqual(aborted(p), [(b, 2)])
        p = w.fetch(T, 0, 0, 0)
        self.assertEqual((p["LastStableOffset"], aborted(p)), (6, None))
        self.assertEqual((w.list_offset(T, 0, -1, 0)[0], w.list_offset(T, 0, -1, 1)[0]), (6, 6))
        prod = w.producers(T, 0)
        self.assertEqual((prod[a]["CurrentTxnStartOffset"], prod[a]["CoordinatorEpoch"]), (-1, 5))
        self.assertEqual((prod[b]["CurrentTxnStartOffset"], prod[b]["CoordinatorEpoch"]), (-1, 5))

        # Fencing. A starts epoch ea+1 on p1 (offset 3); its old epoch is refused on data and on a marker.
        self.assertEqual(w.produce(T, 1, txn_batch([b"y0"], a, ea + 1, 0, T0 + 300)), (NONE, 3))
        self.assertEqual(w.produce(T, 1, txn_batch([b"old"], a, ea, 3, T0 + 300))[0], INVALID_PRODUCER_EPOCH)
        self.assertEqual(w.markers(a, ea, True, [(T, 1)]), {(T, 1): INVALID_PRODUCER_EPOCH})
        # An idempotent (non-transactional) batch inside the open transaction, an older coordinator epoch.
        self.assertEqual(w.produce(T, 1, txn_batch([b"plain"], a, ea + 1, 1, T0 + 300, transactional=False),
                                   txn_id=None)[0], INVALID_TXN_STATE)
        self.assertEqual(w.markers(a, ea + 1, False, [(T, 1)], coord_epoch=4), {(T, 1): COORD_FENCED})
        self.assertEqual(w.fetch(T, 1, 0, 1)["LastStableOffset"], 3)
        self.assertEqual(w.markers(a, ea + 1, False, [(T, 1)]), {(T, 1): NONE})
        p1 = w.fetch(T, 1, 3, 1)
        self.assertEqual((p1["HighWatermark"], p1["LastStableOffset"], aborted(p1)), (5, 5, [(a, 3)]))

        # A marker for a producer with no open transaction is written and aborts nothing.
        c, ec = w.init_pid()
        self.assertEqual(w.markers(c, ec, False, [(T, 1), (T, 7)]), {(T, 1): NONE, (T, 7): UNKNOWN_TOPIC})
        p1 = w.fetch(T, 1, 3, 1)
        self.assertEqual((p1["HighWatermark"], p1["LastStableOffset"], aborted(p1)), (6, 6, [(a, 3)]))
        # Kafka lists a producer that only wrote a marker here, with that marker's coordinator epoch.
        pc = w.producers(T, 1)[c]
        self.assertEqual((pc["ProducerEpoch"], pc["LastSequence"], pc["CoordinatorEpoch"], pc["CurrentTxnStartOffset"]),
                         (ec, -1, 5, -1))
        self.assertEqual(w.markers(c, ec, True, [(uniq("missing"), 0)]).popitem()[1], UNKNOWN_TOPIC)
        # Transactions v2 (WriteTxnMarkers v2, TransactionVersion 2): with a transaction open the marker's epoch
        # must be above the producer's (Kafka 4.4 answers a same-epoch marker without one like v0/v1: written).
        self.assertEqual(w.markers(c, ec, False, [(T, 1)], tv=2), {(T, 1): NONE})  # offset 6
        self.assertEqual(w.produce(T, 1, txn_batch([b"z0"], c, ec, 0, T0 + 400)), (NONE, 7))
        self.assertEqual(w.markers(c, ec, False, [(T, 1)], tv=2), {(T, 1): INVALID_PRODUCER_EPOCH})
        self.assertEqual(w.markers(c, ec + 1, False, [(T, 1)], tv=2), {(T, 1): NONE})  # offset 8
        # p1 as stored: A's batch, its COMMIT, A's next batch (epoch ea+1), its ABORT, C's ABORT.
        self.assertEqual([(bt["base_offset"], bt["attributes"] & 0x30, bt["producer_id"])
                          for bt in w.batches(T, 1, 9)],
                         [(0, 0x10, a), (2, 0x30, a), (3, 0x10, a), (4, 0x30, a), (5, 0x30, c), (6, 0x30, c),
                          (7, 0x10, c), (8, 0x30, c)])

        self.clients_read(T)

    def test_long_poll_wakes_on_lso(self):
        """A read_committed fetch parked at the LSO (a transaction open, its data below the HW) is answered
        when the COMMIT marker moves the LSO, long before its wait ends."""
        w, T = self.w, uniq("txn-poll")
        w.create(T, 1)
        a, ea = w.init_pid()
        self.assertEqual(w.produce(T, 0, txn_batch([b"p0", b"p1"], a, ea, 0, T0)), (NONE, 0))
        self.assertEqual(w.fetch(T, 0, 0, 1)["LastStableOffset"], 0)
        out = {}

        def poll():
            r = Wire(self.b.bootstrap)
            try:
                t0 = time.time()
                out["p"] = r.fetch(T, 0, 0, 1, wait_ms=10000, min_bytes=1)
                out["s"] = time.time() - t0
            finally:
                r.c.close()

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(1.0)
        self.assertNotIn("p", out, "the read_committed fetch did not wait for the LSO")
        self.assertEqual(w.markers(a, ea, True, [(T, 0)]), {(T, 0): NONE})
        th.join(15)
        self.assertFalse(th.is_alive())
        self.assertLess(out["s"], 6.0)
        self.assertEqual((out["p"]["LastStableOffset"], values_of(out["p"]["Records"])), (3, [b"p0", b"p1"]))

    def clients_read(self, T):
        """Real clients over p0 (A's a0 a1 a2 committed, B's b0 aborted) and p1 (x0 x1 committed, y0 z0
        aborted)."""
        committed = sorted([b"a0", b"a1", b"a2", b"x0", b"x1"])
        everything = sorted(committed + [b"b0", b"y0", b"z0"])
        for iso, want in (("read_committed", committed), ("read_uncommitted", everything)):
            self.assertEqual(sorted(self.consume_1_7(T, iso)), want, "confluent-kafka 1.7 " + iso)
            self.assertEqual(sorted(self.consume_venv(T, iso)), want, "confluent-kafka 2.x " + iso)
            self.assertEqual(sorted(self.consume_kcat(T, iso)), want, "kcat " + iso)

    def consume_1_7(self, T, iso):
        c = Consumer({"bootstrap.servers": self.b.bootstrap, "group.id": uniq("g"), "isolation.level": iso,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        try:
            c.assign([TopicPartition(T, 0, 0), TopicPartition(T, 1, 0)])
            got, deadline = [], time.time() + 20
            while time.time() < deadline and len(got) < 8:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.append(m.value())
            if len(got) < 8:  # the committed view has 5: give it a moment more, then stop
                end = time.time() + 2
                while time.time() < end:
                    m = c.poll(0.2)
                    if m is not None and not m.error():
                        got.append(m.value())
            return got
        finally:
            c.close()

    def consume_venv(self, T, iso):
        venv = os.path.join(_HERE, "..", "py3", "venv.sh")
        p = subprocess.run([venv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if p.returncode != 0:
            raise unittest.SkipTest("the compat venv (py3/venv.sh) is not available: %s" % p.stderr[-300:])
        script = textwrap.dedent("""
            import json, sys, time
            from confluent_kafka import Consumer, TopicPartition
            bs, topic, iso = sys.argv[1:4]
            c = Consumer({"bootstrap.servers": bs, "group.id": "g-" + iso + topic, "isolation.level": iso,
                          "enable.auto.commit": False})
            c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
            got, deadline, quiet = [], time.time() + 20, None
            while time.time() < deadline:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    got.append(m.value().decode())
                    quiet = time.time() + 2
                elif quiet and time.time() > quiet:
                    break
            c.close()
            print(json.dumps(got))
        """)
        r = subprocess.run([p.stdout.decode().strip(), "-c", script, self.b.bootstrap, T, iso],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        return [v.encode() for v in json.loads(r.stdout)]

    def consume_kcat(self, T, iso):
        got = []
        for part in (0, 1):
            r = subprocess.run(["kcat", "-C", "-b", self.b.bootstrap, "-t", T, "-p", str(part), "-o", "beginning",
                                "-e", "-q", "-f", "%s\\n", "-X", "isolation.level=" + iso],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            got += [line for line in r.stdout.split(b"\n") if line]
        return got


class DefaultRefusalTest(unittest.TestCase):
    def test_verification_on_refuses(self):
        """transaction.partition.verification.enable at its default (true): a transactional request is refused
        and nothing is appended."""
        b = Broker()
        self.addCleanup(b.cleanup)
        self.addCleanup(lambda: b.running and b.stop())
        b.start()
        w = Wire(b.bootstrap)
        self.addCleanup(w.c.close)
        T = uniq("txn-refused")
        w.create(T, 1)
        pid, ep = w.init_pid()
        err, _ = w.produce(T, 0, txn_batch([b"v"], pid, ep, 0, T0))
        # Refused by the coordinator's verification (no such transaction): the codes are checked in
        # test_txn_coordinator.py, which runs the coordinator on both brokers.
        self.assertNotEqual(err, NONE)
        self.assertEqual(w.fetch(T, 0, 0, 0)["HighWatermark"], 0)


if __name__ == "__main__":
    unittest.main()

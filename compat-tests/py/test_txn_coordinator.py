"""Transactions, the coordinator's side (issue 16), in raw requests, the same test against Apache Kafka 4.4 and
kbroker: FindCoordinator for a transactional id (v1-3 and the batched v4+ form), InitProducerId with an id (epoch
bump, a zombie fenced: PRODUCER_FENCED or INVALID_PRODUCER_EPOCH by request version), AddPartitionsToTxn, EndTxn
commit and abort with their markers seen by Fetch at both isolation levels, CONCURRENT_TRANSACTIONS while the
markers of a commit are in flight, INVALID_TXN_STATE, the abort of a transaction older than its timeout, and the
coordinator's state surviving a restart. kbroker runs with unstable.api.versions.enable=true (no longer
needed: the transaction APIs are served without it)."""

import os
import struct
import sys
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
import kwire  # noqa: E402
from broker import Broker, shards_from_env, target  # noqa: E402
from common import kbroker_only, uniq  # noqa: E402

NONE, NOT_COORD, COORD_NOT_AVAIL, LOAD_IN_PROGRESS = 0, 16, 15, 14
INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, INVALID_PRODUCER_ID_MAPPING, CONCURRENT = 47, 48, 49, 51
PRODUCER_FENCED, TXN_ID_NOT_FOUND, TRANSACTION_ABORTABLE = 90, 105, 120
DESCRIBE_TXNS, LIST_TXNS = 65, 66
PRODUCE, FETCH, FIND_COORD, INIT_PID, ADD_PARTS, END_TXN, CREATE_TOPICS, API_VERSIONS = 0, 1, 10, 22, 24, 26, 19, 18
T0 = 1700000000000
RETRIABLE = (NOT_COORD, COORD_NOT_AVAIL, LOAD_IN_PROGRESS)

SETTINGS = {
    # The timeout scan every 500 ms instead of 10 s: the timeout test waits for it.
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
}
KBROKER_ONLY = {"unstable.api.versions.enable": "true"}


def txn_batch(values, pid, epoch, seq, ts):
    body = bytearray()
    for i, val in enumerate(values):
        r = bytearray(b"\x00") + kwire._varint(0) + kwire._varint(i) + kwire._varint(-1)
        r += kwire._varint(len(val)) + val + kwire._varint(0)
        body += kwire._varint(len(r)) + r
    n = len(values)
    after_crc = struct.pack(">hiqqqhii", 0x10, n - 1, ts, ts, pid, epoch, seq, n) + bytes(body)
    head = struct.pack(">qiib", 0, 4 + 1 + 4 + len(after_crc), 0, 2)
    return head + struct.pack(">I", kwire.crc32c(after_crc)) + after_crc


class Node:
    """A broker of the test's own: Apache Kafka on the kafka target, else kbroker (shards from the env)."""

    def __init__(self, testcase, settings=None):
        self.tc = testcase
        settings = dict(SETTINGS, **(settings or {}))
        if target() == "kafka":
            from kafka_ref import KafkaRef
            self.k = KafkaRef(settings=settings)
            testcase.addCleanup(self.k.cleanup)
            testcase.addCleanup(lambda: self.k.running and self.k.stop())
            self.k.start()
            self.b = None
        elif target() == "kbroker":
            sets = dict(settings, **KBROKER_ONLY)
            self.b = Broker(shards=shards_from_env(), extra_sets=["%s=%s" % kv for kv in sets.items()],
                            target="kbroker")
            testcase.addCleanup(self.b.cleanup)
            testcase.addCleanup(lambda: self.b.running and self.b.stop())
            self.b.start()
            self.k = None
        else:
            raise unittest.SkipTest("starts and restarts a broker of its own")

    @property
    def bootstrap(self):
        return (self.k or self.b).bootstrap

    def restart(self):
        if self.k:
            from kafka_ref import LISTEN_RE, restart_same_dir
            since = len(self.k.log_text())
            restart_same_dir(self.k)
            # Its listener is on port 0: the restarted Kafka listens on another ephemeral port.
            ports = [int(p) for p in LISTEN_RE.findall(self.k.log_text()[since:]) if int(p) != self.k.controller_port]
            self.k.port = ports[-1]
        else:
            self.b.restart()


class Wire:
    def __init__(self, bootstrap):
        deadline = time.time() + 30
        while True:  # a restarted broker may say it is ready just before it listens
            try:
                self.c = kwire.Conn(bootstrap)
                break
            except ConnectionRefusedError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def close(self):
        self.c.close()

    def req(self, key, version, values):
        return self.c.request(key, version, values)

    def pipelined(self, reqs):
        """Several requests in one write, then their answers in order: the second reaches the broker while the
        first is being served."""
        specs = kwire.api_specs()
        out, corrs = b"", []
        for key, version, values in reqs:
            m = kwire.Message(specs[key][0])
            self.c.corr += 1
            corrs.append((key, version, self.c.corr))
            head = struct.pack(">hhih", key, version, self.c.corr, len(self.c.client_id)) + self.c.client_id
            if kwire._in(version, m.flex):
                head += kwire._uvarint(0)
            body = m.encode(version, values)
            out += struct.pack(">i", len(head) + len(body)) + head + body
        self.c.s.sendall(out)
        answers = []
        for key, version, corr in corrs:
            size = struct.unpack(">i", self.c._recv(4))[0]
            data = self.c._recv(size)
            assert struct.unpack(">i", data[:4])[0] == corr
            resp = kwire.Message(specs[key][1])
            r = kwire.Reader(data[4:])
            if kwire._in(version, resp.flex):
                for _ in range(r.uvarint()):
                    r.uvarint()
                    r.take(r.uvarint())
            answers.append(resp.decode(version, r.d[r.p:]))
        return answers

    def create(self, topic, parts):
        r = self.req(CREATE_TOPICS, 4, {"Topics": [{"Name": topic, "NumPartitions": parts, "ReplicationFactor": 1}],
                                        "timeoutMs": 15000})
        assert r["Topics"][0]["ErrorCode"] == 0, r

    def find(self, txn_id, version=3):
        """FindCoordinator for a transactional id, retried while the coordinator is not ready (bounded)."""
        deadline = time.time() + 30
        while True:
            if version >= 4:
                r = self.req(FIND_COORD, version, {"KeyType": 1, "CoordinatorKeys": [txn_id]})
                c = r["Coordinators"][0]
                err = c["ErrorCode"]
            else:
                r = self.req(FIND_COORD, version, {"Key": txn_id, "KeyType": 1})
                c, err = r, r["ErrorCode"]
            if err not in RETRIABLE or time.time() > deadline:
                return err, c
            time.sleep(0.2)

    def _retry(self, fn):
        deadline = time.time() + 30
        while True:
            r = fn()
            if r["ErrorCode"] not in RETRIABLE + (CONCURRENT,) or time.time() > deadline:
                return r
            time.sleep(0.1)

    def init(self, txn_id, timeout_ms=60000, version=3, pid=-1, epoch=-1):
        self.find(txn_id)
        return self._retry(lambda: self.req(INIT_PID, version, {
            "TransactionalId": txn_id, "TransactionTimeoutMs": timeout_ms, "ProducerId": pid, "ProducerEpoch": epoch}))

    def add(self, txn_id, pid, epoch, parts, version=3):
        """AddPartitionsToTxn v0-3: {(topic, partition): error}."""
        topics = {}
        for t, p in parts:
            topics.setdefault(t, []).append(p)
        r = self.req(ADD_PARTS, version, {"V3AndBelowTransactionalId": txn_id, "V3AndBelowProducerId": pid,
                                          "V3AndBelowProducerEpoch": epoch,
                                          "V3AndBelowTopics": [{"Name": t, "Partitions": ps}
                                                               for t, ps in topics.items()]})
        return {(t["Name"], p["PartitionIndex"]): p["PartitionErrorCode"]
                for t in r["ResultsByTopicV3AndBelow"] for p in t["ResultsByPartition"]}

    def end(self, txn_id, pid, epoch, commit, version=3):
        return self.req(END_TXN, version, {"TransactionalId": txn_id, "ProducerId": pid, "ProducerEpoch": epoch,
                                           "Committed": commit})["ErrorCode"]

    def end_request(self, txn_id, pid, epoch, commit, version=3):
        return (END_TXN, version, {"TransactionalId": txn_id, "ProducerId": pid, "ProducerEpoch": epoch,
                                   "Committed": commit})

    def produce(self, txn_id, topic, part, batch):
        deadline = time.time() + 15
        while True:
            r = self.req(PRODUCE, 3, {"TransactionalId": txn_id, "Acks": -1, "TimeoutMs": 10000,
                                      "TopicData": [{"Name": topic, "PartitionData": [
                                          {"Index": part, "Records": batch}]}]})
            p = r["Responses"][0]["PartitionResponses"][0]
            if p["ErrorCode"] not in (3, 6) or time.time() > deadline:
                return p["ErrorCode"], p["BaseOffset"]
            time.sleep(0.2)

    def fetch(self, topic, part, offset, isolation):
        r = self.req(FETCH, 4, {
            "ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 0, "MaxBytes": 1 << 20, "IsolationLevel": isolation,
            "Topics": [{"Topic": topic, "Partitions": [{"Partition": part, "FetchOffset": offset,
                                                        "PartitionMaxBytes": 1 << 20}]}]})
        return r["Responses"][0]["Partitions"][0]

    def batches(self, topic, part, end, isolation=0):
        """Every batch below end (Apache Kafka may answer with fewer batches than there are)."""
        out, off, deadline = [], 0, time.time() + 10
        while off < end and time.time() < deadline:
            got = kwire.read_batches(self.fetch(topic, part, off, isolation)["Records"])
            out += got
            if got:
                off = got[-1]["base_offset"] + got[-1]["last_offset_delta"] + 1
        return out

    def settled(self, topic, part, end):
        """Waits (bounded) until the partition's last stable offset reaches end; returns the fetch answer."""
        deadline = time.time() + 15
        while True:
            p = self.fetch(topic, part, 0, 1)
            if p["LastStableOffset"] >= end or time.time() > deadline:
                return p
            time.sleep(0.05)


def markers(batches):
    """(commit?, producer id) of every control batch."""
    out = []
    for b in batches:
        if b["attributes"] & 0x20:
            key = b["records"][0]["key"]
            out.append((struct.unpack(">hh", key)[1] == 1, b["producer_id"]))
    return out


def data_values(batches):
    return [r["value"] for b in batches if not b["attributes"] & 0x20 for r in b["records"]]


class TxnCoordinatorTest(unittest.TestCase):
    def setUp(self):
        self.n = Node(self)
        self.w = Wire(self.n.bootstrap)
        self.addCleanup(lambda: self.w.close())

    def test_find_coordinator(self):
        w = self.w
        tid = uniq("txn-find")
        for v in (1, 2, 3):
            err, c = w.find(tid, v)
            self.assertEqual(err, NONE, c)
            self.assertGreaterEqual(c["NodeId"], 0)
            self.assertEqual(c["Port"], int(self.n.bootstrap.rpartition(":")[2]))
        for v in (4, 5, 6):
            err, c = w.find(tid, v)
            self.assertEqual((err, c["Key"]), (NONE, tid), c)
            self.assertEqual(c["Port"], int(self.n.bootstrap.rpartition(":")[2]))
        # Batched: every key answered, in order.
        ids = [uniq("txn-a"), uniq("txn-b"), uniq("txn-c")]
        r = w.req(FIND_COORD, 4, {"KeyType": 1, "CoordinatorKeys": ids})
        self.assertEqual([(c["Key"], c["ErrorCode"]) for c in r["Coordinators"]], [(i, NONE) for i in ids])

    def test_init_bump_and_fencing(self):
        w, T, tid = self.w, uniq("txn-fence"), uniq("txn-fence")
        w.create(T, 1)
        r = w.init(tid)
        self.assertEqual(r["ErrorCode"], NONE, r)
        pid, e0 = r["ProducerId"], r["ProducerEpoch"]
        self.assertGreaterEqual(pid, 0)
        # A new instance with the same id: same producer, next epoch.
        r = w.init(tid)
        self.assertEqual((r["ErrorCode"], r["ProducerId"], r["ProducerEpoch"]), (NONE, pid, e0 + 1))
        # KIP-360 (v3+): the current producer asks for a bump with its id and epoch.
        r = w.init(tid, pid=pid, epoch=e0 + 1)
        self.assertEqual((r["ErrorCode"], r["ProducerId"], r["ProducerEpoch"]), (NONE, pid, e0 + 2))
        # ... and a zombie asking with an older epoch is fenced: PRODUCER_FENCED from v4, INVALID_PRODUCER_EPOCH
        # before (KafkaApis maps it for old clients).
        r = w.req(INIT_PID, 4, {"TransactionalId": tid, "TransactionTimeoutMs": 60000, "ProducerId": pid,
                                "ProducerEpoch": e0})
        self.assertEqual(r["ErrorCode"], PRODUCER_FENCED, r)
        r = w.req(INIT_PID, 3, {"TransactionalId": tid, "TransactionTimeoutMs": 60000, "ProducerId": pid,
                                "ProducerEpoch": e0})
        self.assertEqual(r["ErrorCode"], INVALID_PRODUCER_EPOCH, r)
        # The zombie's AddPartitionsToTxn and EndTxn: fenced, by version.
        self.assertEqual(w.add(tid, pid, e0, [(T, 0)], version=3), {(T, 0): PRODUCER_FENCED})
        self.assertEqual(w.add(tid, pid, e0, [(T, 0)], version=1), {(T, 0): INVALID_PRODUCER_EPOCH})
        self.assertEqual(w.end(tid, pid, e0, True, version=3), PRODUCER_FENCED)
        self.assertEqual(w.end(tid, pid, e0, True, version=1), INVALID_PRODUCER_EPOCH)
        # The current producer's transaction works; a zombie of an ongoing transaction fences it: the new
        # instance first gets CONCURRENT_TRANSACTIONS (the abort is written), then the bumped epoch.
        e = e0 + 2
        self.assertEqual(w.add(tid, pid, e, [(T, 0)]), {(T, 0): NONE})
        self.assertEqual(w.produce(tid, T, 0, txn_batch([b"z"], pid, e, 0, T0)), (NONE, 0))
        r = w.req(INIT_PID, 3, {"TransactionalId": tid, "TransactionTimeoutMs": 60000, "ProducerId": -1,
                                "ProducerEpoch": -1})
        self.assertEqual(r["ErrorCode"], CONCURRENT, r)
        r = w.init(tid)
        self.assertEqual(r["ErrorCode"], NONE, r)
        self.assertEqual(r["ProducerId"], pid)
        self.assertGreater(r["ProducerEpoch"], e)
        self.assertEqual(w.end(tid, pid, e, True), PRODUCER_FENCED)
        # The fenced transaction was aborted on its partition.
        p = w.settled(T, 0, 2)
        self.assertEqual([(x["ProducerId"], x["FirstOffset"]) for x in p["AbortedTransactions"]], [(pid, 0)])
        self.assertEqual(markers(w.batches(T, 0, 2)), [(False, pid)])

    def test_commit_abort_markers(self):
        w, T, tid = self.w, uniq("txn-ca"), uniq("txn-ca")
        w.create(T, 2)
        r = w.init(tid)
        pid, e = r["ProducerId"], r["ProducerEpoch"]
        # EndTxn with nothing begun: INVALID_TXN_STATE.
        self.assertEqual(w.end(tid, pid, e, True), INVALID_TXN_STATE)
        self.assertEqual(w.add(tid, pid, e, [(T, 0), (T, 1)]), {(T, 0): NONE, (T, 1): NONE})
        self.assertEqual(w.add(tid, pid, e, [(T, 0)]), {(T, 0): NONE})  # already in: no change
        self.assertEqual(w.produce(tid, T, 0, txn_batch([b"c0", b"c1"], pid, e, 0, T0)), (NONE, 0))
        self.assertEqual(w.produce(tid, T, 1, txn_batch([b"c2"], pid, e, 0, T0)), (NONE, 0))
        p = w.fetch(T, 0, 0, 1)
        self.assertEqual((p["HighWatermark"], p["LastStableOffset"]), (2, 0))
        # The commit and, in the same write, an abort: the abort meets the commit's markers in flight.
        a, b = w.pipelined([w.end_request(tid, pid, e, True), w.end_request(tid, pid, e, False)])
        self.assertEqual((a["ErrorCode"], b["ErrorCode"]), (NONE, CONCURRENT))
        p0, p1 = w.settled(T, 0, 3), w.settled(T, 1, 2)
        self.assertEqual((p0["HighWatermark"], p0["LastStableOffset"]), (3, 3))
        self.assertEqual(data_values(kwire.read_batches(p0["Records"])), [b"c0", b"c1"])
        self.assertEqual(data_values(kwire.read_batches(p1["Records"])), [b"c2"])
        self.assertEqual(markers(w.batches(T, 0, 3)), [(True, pid)])
        self.assertEqual(markers(w.batches(T, 1, 2)), [(True, pid)])
        # Once complete: an abort of the committed transaction is INVALID_TXN_STATE, a commit retry NONE.
        deadline = time.time() + 10
        while w.end(tid, pid, e, False) == CONCURRENT and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(w.end(tid, pid, e, False), INVALID_TXN_STATE)
        self.assertEqual(w.end(tid, pid, e, True), NONE)
        # A second transaction, aborted: read_committed lists it, read_uncommitted shows its records.
        self.assertEqual(w._retry(lambda: {"ErrorCode": w.add(tid, pid, e, [(T, 0)])[(T, 0)]})["ErrorCode"], NONE)
        self.assertEqual(w.produce(tid, T, 0, txn_batch([b"x0"], pid, e, 2, T0)), (NONE, 3))
        self.assertEqual(w.end(tid, pid, e, False), NONE)
        self.assertEqual(w.settled(T, 0, 5)["LastStableOffset"], 5)
        p = w.fetch(T, 0, 3, 1)  # from the aborted batch (Kafka may end an answer before a marker)
        self.assertEqual([(x["ProducerId"], x["FirstOffset"]) for x in p["AbortedTransactions"]], [(pid, 3)])
        self.assertEqual(data_values(w.batches(T, 0, 5)), [b"c0", b"c1", b"x0"])
        self.assertEqual(markers(w.batches(T, 0, 5)), [(True, pid), (False, pid)])
        # Partition 1 was not in the second transaction: no marker there.
        self.assertEqual(markers(w.batches(T, 1, 2)), [(True, pid)])

    def test_produce_verification(self):
        """transaction.partition.verification.enable at its default (true), KIP-890 part 1: a partition takes a
        transactional batch only when the coordinator says it is in the producer's transaction."""
        w, T, tid = self.w, uniq("txn-ver"), uniq("txn-ver")
        w.create(T, 2)
        r = w.init(tid)
        pid, e = r["ProducerId"], r["ProducerEpoch"]
        batch = txn_batch([b"v"], pid, e, 0, T0)

        def produce(version, part=0, txn=tid, b=batch):
            r = w.req(PRODUCE, version, {"TransactionalId": txn, "Acks": -1, "TimeoutMs": 10000, "TopicData": [
                {"Name": T, "PartitionData": [{"Index": part, "Records": b}]}]})
            return r["Responses"][0]["PartitionResponses"][0]

        w.produce(tid, T, 1, txn_batch([b"warm"], pid + 1000, 0, 0, T0))  # waits until the partitions are led
        # Not added: INVALID_TXN_STATE (with Kafka's message from v8), TRANSACTION_ABORTABLE from v11.
        self.assertEqual(produce(3)["ErrorCode"], INVALID_TXN_STATE)
        p = produce(9)
        self.assertEqual((p["ErrorCode"], p["ErrorMessage"]), (INVALID_TXN_STATE,
                                                               "Partition was not added to the transaction"))
        self.assertEqual(produce(11)["ErrorCode"], TRANSACTION_ABORTABLE)
        # An id the coordinator does not know, another producer id: INVALID_PRODUCER_ID_MAPPING; another epoch:
        # INVALID_PRODUCER_EPOCH.
        self.assertEqual(produce(3, txn=uniq("txn-unknown"))["ErrorCode"], INVALID_PRODUCER_ID_MAPPING)
        self.assertEqual(w.add(tid, pid, e, [(T, 0)]), {(T, 0): NONE})
        self.assertEqual(produce(3, b=txn_batch([b"v"], pid + 7, e, 0, T0))["ErrorCode"],
                         INVALID_PRODUCER_ID_MAPPING)
        self.assertEqual(produce(3, b=txn_batch([b"v"], pid, e + 3, 0, T0))["ErrorCode"], INVALID_PRODUCER_EPOCH)
        # Nothing of those was appended; the added partition takes the batch.
        self.assertEqual(w.fetch(T, 0, 0, 0)["HighWatermark"], 0)
        self.assertEqual((produce(3)["ErrorCode"], produce(3, part=1)["ErrorCode"]), (NONE, INVALID_TXN_STATE))
        self.assertEqual(w.fetch(T, 0, 0, 0)["HighWatermark"], 1)

    def test_batched_verify_only(self):
        """AddPartitionsToTxn v4+ (the brokers' form, KIP-890): several transactions in one request; verify-only
        answers per partition whether it is in the transaction, without adding it."""
        w, T = self.w, uniq("txn-vo")
        a, b = uniq("txn-vo-a"), uniq("txn-vo-b")
        w.create(T, 2)
        ra, rb = w.init(a), w.init(b)
        self.assertEqual(w.add(a, ra["ProducerId"], ra["ProducerEpoch"], [(T, 0)]), {(T, 0): NONE})

        def txn(tid, r, verify, epoch_delta=0):
            return {"TransactionalId": tid, "ProducerId": r["ProducerId"],
                    "ProducerEpoch": r["ProducerEpoch"] + epoch_delta, "VerifyOnly": verify,
                    "Topics": [{"Name": T, "Partitions": [0, 1]}]}

        def results(r):
            return {x["TransactionalId"]: {p["PartitionIndex"]: p["PartitionErrorCode"]
                                           for t in x["TopicResults"] for p in t["ResultsByPartition"]}
                    for x in r["ResultsByTransaction"]}

        r = w.req(ADD_PARTS, 4, {"Transactions": [txn(a, ra, True), txn(b, rb, True)]})
        self.assertEqual(r["ErrorCode"], NONE, r)
        self.assertEqual(results(r), {a: {0: NONE, 1: TRANSACTION_ABORTABLE}, b: {0: TRANSACTION_ABORTABLE,
                                                                                 1: TRANSACTION_ABORTABLE}})
        # Nothing was added by the verification; another epoch is fenced.
        r = w.req(ADD_PARTS, 5, {"Transactions": [txn(a, ra, True), txn(b, rb, True, epoch_delta=1)]})
        self.assertEqual(results(r), {a: {0: NONE, 1: TRANSACTION_ABORTABLE},
                                      b: {0: PRODUCER_FENCED, 1: PRODUCER_FENCED}})

    def test_describe_and_list(self):
        w, T = self.w, uniq("txn-dl")
        a, b, unknown = uniq("txn-dl-a"), uniq("txn-dl-b"), uniq("txn-dl-none")
        w.create(T, 2)
        ra, rb = w.init(a), w.init(b, timeout_ms=45000)
        self.assertEqual(w.add(b, rb["ProducerId"], rb["ProducerEpoch"], [(T, 1), (T, 0)]), {(T, 0): NONE, (T, 1): NONE})
        r = w.req(DESCRIBE_TXNS, 0, {"TransactionalIds": [a, b, unknown]})
        st = {x["TransactionalId"]: x for x in r["TransactionStates"]}
        self.assertEqual([x["TransactionalId"] for x in r["TransactionStates"]], [a, b, unknown])
        x = st[a]
        self.assertEqual((x["ErrorCode"], x["TransactionState"], x["ProducerId"], x["ProducerEpoch"], x["Topics"],
                          x["TransactionTimeoutMs"], x["TransactionStartTimeMs"]),
                         (NONE, "Empty", ra["ProducerId"], ra["ProducerEpoch"], [], 60000, -1))
        x = st[b]
        self.assertEqual((x["ErrorCode"], x["TransactionState"], x["ProducerId"], x["TransactionTimeoutMs"]),
                         (NONE, "Ongoing", rb["ProducerId"], 45000))
        self.assertGreater(x["TransactionStartTimeMs"], 0)
        self.assertEqual([(t["Topic"], sorted(t["Partitions"])) for t in x["Topics"]], [(T, [0, 1])])
        self.assertEqual((st[unknown]["ErrorCode"], st[unknown]["TransactionState"]), (TXN_ID_NOT_FOUND, ""))

        def listed(version=0, **filters):
            r = w.req(LIST_TXNS, version, {"StateFilters": filters.get("states", []),
                                           "ProducerIdFilters": filters.get("pids", []),
                                           "DurationFilter": filters.get("duration", -1)})
            self.assertEqual(r["ErrorCode"], NONE, r)
            return sorted((x["TransactionalId"], x["ProducerId"], x["TransactionState"])
                          for x in r["TransactionStates"]), r["UnknownStateFilters"]

        both = sorted([(a, ra["ProducerId"], "Empty"), (b, rb["ProducerId"], "Ongoing")])
        self.assertEqual(listed(), (both, []))
        self.assertEqual(listed(states=["Ongoing", "Bogus"]), ([(b, rb["ProducerId"], "Ongoing")], ["Bogus"]))
        self.assertEqual(listed(states=["Bogus"]), ([], ["Bogus"]))
        self.assertEqual(listed(pids=[ra["ProducerId"]]), ([(a, ra["ProducerId"], "Empty")], []))
        # v1 (KIP-994): running longer than the duration.
        self.assertEqual(listed(1, duration=0)[0], both)
        long_ones = listed(1, duration=3600000)[0]
        self.assertNotIn((b, rb["ProducerId"], "Ongoing"), long_ones)
        self.assertEqual(long_ones, [(a, ra["ProducerId"], "Empty")])

    def test_timeout_abort(self):
        w, T, tid = self.w, uniq("txn-to"), uniq("txn-to")
        w.create(T, 1)
        r = w.init(tid, timeout_ms=2000)
        pid, e = r["ProducerId"], r["ProducerEpoch"]
        self.assertEqual(w.add(tid, pid, e, [(T, 0)]), {(T, 0): NONE})
        self.assertEqual(w.produce(tid, T, 0, txn_batch([b"t0"], pid, e, 0, T0)), (NONE, 0))
        p = w.settled(T, 0, 2)  # the coordinator aborts it after about 2 s (+ the 500 ms scan)
        self.assertEqual(p["LastStableOffset"], 2)
        self.assertEqual([(x["ProducerId"], x["FirstOffset"]) for x in p["AbortedTransactions"]], [(pid, 0)])
        b = w.batches(T, 0, 2)
        self.assertEqual(markers(b), [(False, pid)])
        self.assertGreater(b[-1]["producer_epoch"], e)  # the abort fenced the producer
        self.assertEqual(w.end(tid, pid, e, True), PRODUCER_FENCED)
        self.assertEqual(w.end(tid, pid, e, True, version=1), INVALID_PRODUCER_EPOCH)

    def test_state_survives_restart(self):
        w, T, tid = self.w, uniq("txn-rs"), uniq("txn-rs")
        w.create(T, 1)
        r = w.init(tid)
        pid, e = r["ProducerId"], r["ProducerEpoch"]
        self.assertEqual(w.add(tid, pid, e, [(T, 0)]), {(T, 0): NONE})
        self.assertEqual(w.produce(tid, T, 0, txn_batch([b"r0"], pid, e, 0, T0)), (NONE, 0))
        w.close()
        self.n.restart()
        self.w = w = Wire(self.n.bootstrap)
        w.find(tid)
        # The ongoing transaction is still there: its commit works after the restart.
        r = w._retry(lambda: {"ErrorCode": w.end(tid, pid, e, True)})
        self.assertEqual(r["ErrorCode"], NONE)
        p = w.settled(T, 0, 2)
        self.assertEqual(data_values(kwire.read_batches(p["Records"])), [b"r0"])
        # And the producer id: a new instance gets the same one with the next epoch.
        r = w.init(tid)
        self.assertEqual((r["ErrorCode"], r["ProducerId"], r["ProducerEpoch"]), (NONE, pid, e + 1))


class TxnIdExpirationTest(unittest.TestCase):
    """transactional.id.expiration.ms: an idle id is forgotten (its tombstone written); a new InitProducerId then
    starts it afresh with a new producer id."""

    def test_idle_id_expires(self):
        n = Node(self, {"transactional.id.expiration.ms": "2000",
                        "transaction.remove.expired.transaction.cleanup.interval.ms": "500"})
        w = Wire(n.bootstrap)
        self.addCleanup(w.close)
        tid = uniq("txn-exp")
        r = w.init(tid)
        self.assertEqual(r["ErrorCode"], NONE, r)
        pid = r["ProducerId"]
        r = w.req(DESCRIBE_TXNS, 0, {"TransactionalIds": [tid]})
        self.assertEqual(r["TransactionStates"][0]["ErrorCode"], NONE)
        deadline, err = time.time() + 20, NONE
        while err == NONE and time.time() < deadline:
            time.sleep(0.2)
            err = w.req(DESCRIBE_TXNS, 0, {"TransactionalIds": [tid]})["TransactionStates"][0]["ErrorCode"]
        self.assertEqual(err, TXN_ID_NOT_FOUND)
        r = w.init(tid)
        self.assertEqual((r["ErrorCode"], r["ProducerEpoch"]), (NONE, 0))
        self.assertNotEqual(r["ProducerId"], pid)


@kbroker_only("kills its own kbroker process and reads its log")
class TxnResumeTest(unittest.TestCase):
    """A kbroker killed (-9) while a commit's markers are being written: after the restart the id is loaded in
    PrepareCommit, its markers are sent again and the transaction completes, every partition with its COMMIT
    marker and the data readable at read_committed. The kill comes right after EndTxn's answer, while markers
    go to 120 partitions; an attempt whose markers all landed before the kill proves nothing and is repeated."""

    NPARTS = 120

    def test_markers_resume_after_kill(self):
        b = Broker(shards=shards_from_env(), extra_sets=["%s=%s" % kv for kv in KBROKER_ONLY.items()],
                   target="kbroker")
        self.addCleanup(b.cleanup)
        self.addCleanup(lambda: b.running and b.stop())
        b.start()
        for attempt in range(5):
            w = Wire(b.bootstrap)
            T, tid = uniq("txn-resume"), uniq("txn-resume")
            w.create(T, self.NPARTS)
            r = w.init(tid)
            pid, e = r["ProducerId"], r["ProducerEpoch"]
            parts = [(T, p) for p in range(self.NPARTS)]
            self.assertEqual(set(w.add(tid, pid, e, parts).values()), {NONE})
            self.assertEqual(w.produce(tid, T, 0, txn_batch([b"r"], pid, e, 0, T0)), (NONE, 0))
            since = len(b.log_text())
            self.assertEqual(w.end(tid, pid, e, True), NONE)
            b.kill9()
            w.close()
            b.start()
            w = Wire(b.bootstrap)
            self.addCleanup(w.close)
            w.find(tid)
            deadline = time.time() + 20
            while time.time() < deadline:
                st = w.req(DESCRIBE_TXNS, 0, {"TransactionalIds": [tid]})["TransactionStates"][0]
                if st["TransactionState"] == "CompleteCommit":
                    break
                time.sleep(0.1)
            self.assertEqual(st["TransactionState"], "CompleteCommit", st)
            self.assertEqual(data_values(kwire.read_batches(w.settled(T, 0, 2)["Records"])), [b"r"])
            # Every partition got its COMMIT: those written before the kill get it again (a marker for a
            # producer with no open transaction changes nothing, as in Kafka, which re-sends them too).
            for p in range(self.NPARTS):
                f = w.settled(T, p, 2 if p == 0 else 1)
                self.assertEqual(f["LastStableOffset"], f["HighWatermark"], p)
                got = markers(w.batches(T, p, f["HighWatermark"]))
                self.assertIn(len(got), (1, 2), p)
                self.assertEqual(set(got), {(True, pid)}, p)
            if "loaded in PrepareCommit, sending its markers again" in b.log_text()[since:]:
                return
            w.close()
        self.skipTest("the markers always landed before the kill: the resumption was not exercised")


@kbroker_only("an outside WriteTxnMarkers with a newer coordinator epoch; Kafka leaves such an id pending")
class TxnRefusedMarkerTest(unittest.TestCase):
    """A partition that will never take the coordinator's marker (an outside WriteTxnMarkers, from a principal
    with CLUSTER_ACTION, ended the producer's transaction there with a newer coordinator epoch): the marker is
    not retried forever with the id stuck in PrepareCommit; the transaction completes without it."""

    def test_refused_marker_completes(self):
        b = Broker(shards=shards_from_env(), extra_sets=["%s=%s" % kv for kv in KBROKER_ONLY.items()],
                   target="kbroker")
        self.addCleanup(b.cleanup)
        self.addCleanup(lambda: b.running and b.stop())
        b.start()
        w = Wire(b.bootstrap)
        self.addCleanup(w.close)
        T, tid = uniq("txn-refused"), uniq("txn-refused")
        w.create(T, 1)
        r = w.init(tid)
        pid, e = r["ProducerId"], r["ProducerEpoch"]
        self.assertEqual(w.add(tid, pid, e, [(T, 0)]), {(T, 0): NONE})
        self.assertEqual(w.produce(tid, T, 0, txn_batch([b"v"], pid, e, 0, T0)), (NONE, 0))
        m = w.req(27, 1, {"Markers": [{"ProducerId": pid, "ProducerEpoch": e, "TransactionResult": False,
                                       "Topics": [{"Name": T, "PartitionIndexes": [0]}], "CoordinatorEpoch": 5}]})
        self.assertEqual(m["Markers"][0]["Topics"][0]["Partitions"][0]["ErrorCode"], NONE)
        self.assertEqual(w.end(tid, pid, e, True), NONE)
        deadline = time.time() + 10
        while time.time() < deadline:
            st = w.req(DESCRIBE_TXNS, 0, {"TransactionalIds": [tid]})["TransactionStates"][0]
            if st["TransactionState"] == "CompleteCommit":
                break
            time.sleep(0.1)
        self.assertEqual(st["TransactionState"], "CompleteCommit", st)
        self.assertIn("refused for good", b.log_text())
        r = w.init(tid)
        self.assertEqual((r["ErrorCode"], r["ProducerId"], r["ProducerEpoch"]), (NONE, pid, e + 1))


if __name__ == "__main__":
    unittest.main()

"""Transactions v2 (KIP-890 part 2, issue 16) in raw requests, the same test against Apache Kafka 4.4 and kbroker:
ApiVersions finalizes transaction.version 2; Produce v12 with a transactional id adds its partition to the
transaction implicitly (no AddPartitionsToTxn) and TxnOffsetCommit v5 the group's offsets partition (no
AddOffsetsToTxn); and the error paths of that implicit add: a produce at an old epoch, a produce after EndTxn v5
(which bumped the epoch) at the old epoch and at the new one, Produce v11 / TxnOffsetCommit v4 that still need
the explicit add. kbroker runs with unstable.api.versions.enable=true (no longer needed for the transaction APIs, served
without it)."""

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
from common import uniq  # noqa: E402
from test_txn_coordinator import Node, Wire, markers, txn_batch  # noqa: E402
from test_txn_offsets import java_hash  # noqa: E402

NONE, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, CONCURRENT, NOT_ENOUGH_REPLICAS = 0, 47, 48, 51, 19
TRANSACTION_ABORTABLE, UNSTABLE_OFFSET = 120, 88
PRODUCE, API_VERSIONS, END_TXN, TXN_OFFSET_COMMIT, OFFSET_FETCH, DESCRIBE_TXNS = 0, 18, 26, 28, 9, 65
FIND_COORDINATOR, METADATA = 10, 3
T0 = 1700000000000


class W2(Wire):
    def produce_v(self, version, tid, topic, part, batch):
        """One Produce of one batch at a request version; retried only while the partition is not there yet."""
        deadline = time.time() + 15
        while True:
            r = self.req(PRODUCE, version, {"TransactionalId": tid, "Acks": -1, "TimeoutMs": 10000,
                                            "TopicData": [{"Name": topic, "PartitionData": [
                                                {"Index": part, "Records": batch}]}]})
            p = r["Responses"][0]["PartitionResponses"][0]
            if p["ErrorCode"] not in (3, 6) or time.time() > deadline:
                return p["ErrorCode"]
            time.sleep(0.2)

    def end5(self, tid, pid, epoch, commit):
        """EndTxn v5, retried while the coordinator is busy (bounded): (error, answered epoch)."""
        deadline = time.time() + 15
        while True:
            r = self.req(END_TXN, 5, {"TransactionalId": tid, "ProducerId": pid, "ProducerEpoch": epoch,
                                      "Committed": commit})
            if r["ErrorCode"] != CONCURRENT or time.time() > deadline:
                return r["ErrorCode"], r["ProducerEpoch"]
            time.sleep(0.05)

    def describe(self, tid):
        s = self.req(DESCRIBE_TXNS, 0, {"TransactionalIds": [tid]})["TransactionStates"][0]
        parts = sorted((t["Topic"], p) for t in s["Topics"] for p in t["Partitions"])
        return s["TransactionState"], s["ProducerEpoch"], parts

    def complete(self, tid):
        """Waits (bounded) for the id's markers to be written; its state afterwards."""
        deadline = time.time() + 15
        while True:
            st = self.describe(tid)
            if st[0] not in ("PrepareCommit", "PrepareAbort") or time.time() > deadline:
                return st
            time.sleep(0.05)

    def toc(self, version, tid, group, pid, epoch, topic, offset):
        r = self.req(TXN_OFFSET_COMMIT, version, {
            "TransactionalId": tid, "GroupId": group, "ProducerId": pid, "ProducerEpoch": epoch,
            "GenerationId": -1, "MemberId": "", "GroupInstanceId": None,
            "Topics": [{"Name": topic, "Partitions": [{"PartitionIndex": 0, "CommittedOffset": offset,
                                                      "CommittedLeaderEpoch": -1, "CommittedMetadata": ""}]}]})
        return r["Topics"][0]["Partitions"][0]["ErrorCode"]

    def group_ready(self, group):
        deadline = time.time() + 60
        while True:
            r = self.req(FIND_COORDINATOR, 3, {"Key": group, "KeyType": 0})
            if r["ErrorCode"] == 0:
                return
            assert time.time() < deadline, r
            time.sleep(0.2)

    def committed(self, group, topic, stable):
        r = self.req(OFFSET_FETCH, 8, {"Groups": [{"GroupId": group, "MemberId": None, "MemberEpoch": -1,
                                                   "Topics": [{"Name": topic, "PartitionIndexes": [0]}]}],
                                       "RequireStable": stable})
        p = r["Groups"][0]["Topics"][0]["Partitions"][0]
        return p["ErrorCode"], p["CommittedOffset"]


class TxnV2Test(unittest.TestCase):
    def setUp(self):
        self.n = Node(self)
        self.w = W2(self.n.bootstrap)
        self.addCleanup(lambda: self.w.close())

    def test_features(self):
        """ApiVersions v3+: transaction.version finalized at 2, with an epoch; Produce v12, TxnOffsetCommit v5."""
        r = self.w.req(API_VERSIONS, 3, {"ClientSoftwareName": "t", "ClientSoftwareVersion": "1"})
        # (SupportedFeatures is checked by the Java case txn2/features through Admin.describeFeatures.)
        fin = {f["Name"]: (f["MinVersionLevel"], f["MaxVersionLevel"]) for f in r["FinalizedFeatures"]}
        self.assertEqual(fin.get("transaction.version"), (2, 2), r)
        self.assertGreaterEqual(r["FinalizedFeaturesEpoch"], 0)
        versions = {a["ApiKey"]: a["MaxVersion"] for a in r["ApiKeys"]}
        self.assertGreaterEqual(versions[PRODUCE], 12)
        self.assertGreaterEqual(versions[TXN_OFFSET_COMMIT], 5)

    def test_produce_implicit_add(self):
        w, T, tid = self.w, uniq("tv2-p"), uniq("tv2-p")
        w.create(T, 2)
        w.init(tid, version=5)
        r = w.init(tid, version=5)  # a second instance: epoch 1, so an older epoch exists
        self.assertEqual((r["ErrorCode"], r["ProducerEpoch"]), (NONE, 1), r)
        pid, e = r["ProducerId"], r["ProducerEpoch"]
        # Produce v11 (transactions v1) without AddPartitionsToTxn: refused, nothing written.
        self.assertEqual(w.produce_v(11, tid, T, 0, txn_batch([b"v1"], pid, e, 0, T0)), TRANSACTION_ABORTABLE)
        # Produce v12: the partition joins the transaction, no AddPartitionsToTxn.
        self.assertEqual(w.produce_v(12, tid, T, 0, txn_batch([b"a"], pid, e, 0, T0)), NONE)
        self.assertEqual(w.describe(tid), ("Ongoing", e, [(T, 0)]))
        self.assertEqual(w.produce_v(12, tid, T, 1, txn_batch([b"b"], pid, e, 0, T0)), NONE)
        self.assertEqual(w.describe(tid), ("Ongoing", e, [(T, 0), (T, 1)]))
        # An older epoch than the transaction's: fenced.
        self.assertEqual(w.produce_v(12, tid, T, 0, txn_batch([b"old"], pid, e - 1, 0, T0)), INVALID_PRODUCER_EPOCH)
        # EndTxn v5 commits and bumps the epoch; both partitions get their COMMIT marker.
        self.assertEqual(w.end5(tid, pid, e, True), (NONE, e + 1))
        self.assertEqual(w.complete(tid)[:2], ("CompleteCommit", e + 1))
        self.assertEqual(markers(w.batches(T, 0, 2)), [(True, pid)])
        self.assertEqual(markers(w.batches(T, 1, 2)), [(True, pid)])
        # After EndTxn, the old epoch: fenced, nothing written, no new transaction.
        self.assertEqual(w.produce_v(12, tid, T, 0, txn_batch([b"late"], pid, e, 1, T0)), INVALID_PRODUCER_EPOCH)
        self.assertEqual(w.describe(tid)[0], "CompleteCommit")
        # The new epoch begins the next transaction implicitly; it aborts.
        self.assertEqual(w.produce_v(12, tid, T, 1, txn_batch([b"next"], pid, e + 1, 0, T0)), NONE)
        self.assertEqual(w.describe(tid), ("Ongoing", e + 1, [(T, 1)]))
        self.assertEqual(w.end5(tid, pid, e + 1, False), (NONE, e + 2))
        self.assertEqual(w.complete(tid)[:2], ("CompleteAbort", e + 2))
        self.assertEqual(markers(w.batches(T, 1, 4)), [(True, pid), (False, pid)])
        self.assertEqual(w.settled(T, 1, 4)["LastStableOffset"], 4)
        # The next transaction's first batch right after EndTxn's answer, while the commit's markers may still
        # be in flight: Kafka retries inside the broker (add.partitions.to.txn.retry.backoff.*) and answers NONE;
        # kbroker answers the retriable NOT_ENOUGH_REPLICAS meanwhile, which a producer retries. Either way the
        # batch lands after the COMMIT marker, in the new transaction, never in the committed one.
        e2 = e + 2
        self.assertEqual(w.produce_v(12, tid, T, 0, txn_batch([b"t3"], pid, e2, 0, T0)), NONE)
        self.assertEqual(w.end5(tid, pid, e2, True), (NONE, e2 + 1))
        deadline, seen = time.time() + 15, []
        while True:
            perr = w.produce_v(12, tid, T, 0, txn_batch([b"t4"], pid, e2 + 1, 0, T0))
            seen.append(perr)
            if perr != NOT_ENOUGH_REPLICAS or time.time() > deadline:
                break
            time.sleep(0.02)
        print("produce right after EndTxn: %s" % sorted(set(seen)), file=sys.stderr)
        self.assertEqual(perr, NONE, seen)
        self.assertEqual(w.describe(tid), ("Ongoing", e2 + 1, [(T, 0)]))
        b = w.batches(T, 0, 5)
        self.assertEqual(markers(b), [(True, pid), (True, pid)])
        self.assertEqual([x["base_offset"] for x in b if not x["attributes"] & 0x20], [0, 2, 4])

    def test_pipelined_first_batches(self):
        """A producer's first batches of a transaction, pipelined on one connection to 4 partitions (3 each, in
        sequence): every one is appended in order, none refused while the first add's record is being written
        (Kafka serves one request of a connection at a time; kbroker queues the adds of an id behind a write in
        flight, in arrival order)."""
        w, T, tid = self.w, uniq("tv2-pl"), uniq("tv2-pl")
        w.create(T, 4)
        r = w.init(tid, version=5)
        self.assertEqual(r["ErrorCode"], NONE, r)
        pid, e = r["ProducerId"], r["ProducerEpoch"]
        # Both partitions' leaders are known before the burst (a first produce can meet a leader not yet ready).
        for p in range(4):
            w.settled(T, p, 0)
        seq, reqs = [0] * 4, []
        for i in range(12):
            p = i % 4
            reqs.append((PRODUCE, 12, {"TransactionalId": tid, "Acks": -1, "TimeoutMs": 10000, "TopicData": [
                {"Name": T, "PartitionData": [{"Index": p, "Records": txn_batch([b"v%d" % i], pid, e, seq[p],
                                                                                    T0)}]}]}))
            seq[p] += 1
        errs = [a["Responses"][0]["PartitionResponses"][0]["ErrorCode"] for a in w.pipelined(reqs)]
        self.assertEqual(errs, [NONE] * 12)
        self.assertEqual(w.describe(tid), ("Ongoing", e, [(T, p) for p in range(4)]))
        self.assertEqual(w.end5(tid, pid, e, True), (NONE, e + 1))
        for p in range(4):
            self.assertEqual(w.settled(T, p, 4)["LastStableOffset"], 4)
            self.assertEqual(markers(w.batches(T, p, 4)), [(True, pid)])

    def test_txn_offset_commit_implicit_add(self):
        w, T, tid, g = self.w, uniq("tv2-o"), uniq("tv2-o"), uniq("tv2-o")
        w.create(T, 1)
        w.group_ready(g)
        w.init(tid, version=5)
        r = w.init(tid, version=5)  # a second instance: epoch 1, so an older epoch exists
        self.assertEqual((r["ErrorCode"], r["ProducerEpoch"]), (NONE, 1), r)
        pid, e = r["ProducerId"], r["ProducerEpoch"]
        nparts = len(w.req(METADATA, 4, {"Topics": [{"Name": "__consumer_offsets"}],
                                         "AllowAutoTopicCreation": False})["Topics"][0]["Partitions"])
        op = abs(java_hash(g)) % nparts
        # v4 (transactions v1) without AddOffsetsToTxn: refused.
        self.assertEqual(w.toc(4, tid, g, pid, e, T, 5), TRANSACTION_ABORTABLE)
        # v5: the offsets partition joins the transaction; the offset stays pending until the commit.
        self.assertEqual(w.toc(5, tid, g, pid, e, T, 5), NONE)
        self.assertEqual(w.describe(tid), ("Ongoing", e, [("__consumer_offsets", op)]))
        self.assertEqual(w.committed(g, T, True), (UNSTABLE_OFFSET, -1))
        # An older epoch: fenced.
        self.assertEqual(w.toc(5, tid, g, pid, e - 1, T, 6), INVALID_PRODUCER_EPOCH)
        self.assertEqual(w.end5(tid, pid, e, True), (NONE, e + 1))
        self.assertEqual(w.complete(tid)[:2], ("CompleteCommit", e + 1))
        deadline = time.time() + 15
        while w.committed(g, T, True) != (NONE, 5) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(w.committed(g, T, True), (NONE, 5))
        # After EndTxn: the old epoch is fenced and changes nothing; the new one begins the next transaction,
        # which aborts: its offset never shows.
        self.assertEqual(w.toc(5, tid, g, pid, e, T, 8), INVALID_PRODUCER_EPOCH)
        self.assertEqual(w.describe(tid)[0], "CompleteCommit")
        self.assertEqual(w.toc(5, tid, g, pid, e + 1, T, 9), NONE)
        self.assertEqual(w.describe(tid), ("Ongoing", e + 1, [("__consumer_offsets", op)]))
        self.assertEqual(w.end5(tid, pid, e + 1, False), (NONE, e + 2))
        self.assertEqual(w.complete(tid)[:2], ("CompleteAbort", e + 2))
        self.assertEqual(w.committed(g, T, True), (NONE, 5))


if __name__ == "__main__":
    unittest.main()

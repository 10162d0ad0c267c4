"""The verification guard (KIP-890 part 1, issue 16) in raw requests: a transactional batch verified with the
coordinator just before its transaction's markers are written must not be appended after them (it would open a
transaction no coordinator knows: a hanging transaction that holds the last stable offset forever). kbroker-only:
the race is made deterministic with the test-only setting kbroker.test.txn.verification.delay.ms (verified
batches wait that long before going to their partitions), which Apache Kafka has no counterpart of; there the
window is too short to hit on purpose. What kbroker answers is what Kafka's UnifiedLog answers a batch whose
guard no longer matches: INVALID_TXN_STATE, "Record was not part of an ongoing transaction"."""

import os
import sys
import threading
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
sys.path.insert(0, _HERE)
from broker import Broker, shards_from_env  # noqa: E402
from common import kbroker_only, uniq  # noqa: E402
from test_txn_coordinator import PRODUCE, T0, Wire, markers, txn_batch  # noqa: E402

INVALID_TXN_STATE, CONCURRENT_TRANSACTIONS = 48, 51
GUARD_MESSAGE = "Record was not part of an ongoing transaction"
DELAY_MS = 3000


@kbroker_only("holds verified batches with the test-only kbroker.test.txn.verification.delay.ms")
class TxnGuardTest(unittest.TestCase):
    def setUp(self):
        sets = {"unstable.api.versions.enable": "true",  # no longer needed for the transaction APIs
                "kbroker.test.txn.verification.delay.ms": str(DELAY_MS)}
        self.b = Broker(shards=shards_from_env(), extra_sets=["%s=%s" % kv for kv in sets.items()],
                        target="kbroker")
        self.addCleanup(self.b.cleanup)
        self.addCleanup(lambda: self.b.running and self.b.stop())
        self.b.start()

    def wire(self):
        w = Wire(self.b.bootstrap)
        self.addCleanup(w.close)
        return w

    def race(self, w, side, topic):
        """One transaction: its batch verified, then EndTxn's markers while the batch is held, then the batch's
        append. Returns the batch's Produce answer and the partition's batches afterwards."""
        tid = uniq("txn-guard")
        r = w.init(tid)
        self.assertEqual(r["ErrorCode"], 0, r)
        pid, epoch = r["ProducerId"], r["ProducerEpoch"]
        self.assertEqual(w.add(tid, pid, epoch, [(topic, 0)]), {(topic, 0): 0})
        end0 = w.fetch(topic, 0, 0, 0)["HighWatermark"]
        answer = {}

        def produce():
            # v8: the answer carries the error message that tells the guard from the verification.
            r = side.req(PRODUCE, 8, {"TransactionalId": tid, "Acks": -1, "TimeoutMs": 30000,
                                      "TopicData": [{"Name": topic, "PartitionData": [
                                          {"Index": 0, "Records": txn_batch([b"late"], pid, epoch, 0, T0)}]}]})
            answer.update(r["Responses"][0]["PartitionResponses"][0])

        t = threading.Thread(target=produce)
        t.start()
        time.sleep(0.5)  # the verification is one round trip to the coordinator; the batch is then held 3 s
        self.assertEqual(w.end(tid, pid, epoch, True), 0)
        # The COMMIT marker is durable while the batch is still held.
        p = w.settled(topic, 0, end0 + 1)
        self.assertGreaterEqual(p["LastStableOffset"], end0 + 1, p)
        t.join(60)
        self.assertFalse(t.is_alive(), "the held Produce was never answered")
        hw = w.fetch(topic, 0, 0, 0)["HighWatermark"]
        return answer, w.batches(topic, 0, hw), w.settled(topic, 0, hw), pid

    def test_batch_verified_before_the_markers_is_refused(self):
        w, side = self.wire(), self.wire()
        topic = uniq("guard")
        w.create(topic, 1)
        for _ in range(3):  # a verification that lost the race to EndTxn proves nothing: tried again
            answer, batches, settled, pid = self.race(w, side, topic)
            if answer.get("ErrorMessage") == GUARD_MESSAGE or answer.get("ErrorCode") == 0:
                break
        self.assertEqual((answer["ErrorCode"], answer.get("ErrorMessage")), (INVALID_TXN_STATE, GUARD_MESSAGE),
                         answer)
        # Nothing of the producer after its marker, and no hanging transaction: the LSO is the high watermark.
        mine = [b for b in batches if b["producer_id"] == pid]
        self.assertTrue(mine and mine[-1]["attributes"] & 0x20, mine)
        self.assertEqual(markers(mine)[-1], (True, pid))
        self.assertEqual(settled["LastStableOffset"], settled["HighWatermark"], settled)

    def test_batch_verified_after_the_markers_is_taken(self):
        """The guard refuses only what was verified before the marker: the producer's next transaction on the
        same partition goes in (held the same 3 s, with no marker in between)."""
        w = self.wire()
        topic = uniq("guard-next")
        w.create(topic, 1)
        tid = uniq("txn-guard-next")
        r = w.init(tid)
        pid, epoch = r["ProducerId"], r["ProducerEpoch"]
        for seq in (0, 1):
            # CONCURRENT_TRANSACTIONS until the previous commit's Complete record is written (clients retry it).
            deadline = time.time() + 30
            while True:
                added = w.add(tid, pid, epoch, [(topic, 0)])
                if added != {(topic, 0): CONCURRENT_TRANSACTIONS} or time.time() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(added, {(topic, 0): 0})
            err, _ = w.produce(tid, topic, 0, txn_batch([b"v%d" % seq], pid, epoch, seq, T0))
            self.assertEqual(err, 0)
            self.assertEqual(w.end(tid, pid, epoch, True), 0)
            w.settled(topic, 0, 2 * (seq + 1))
        hw = w.fetch(topic, 0, 0, 0)["HighWatermark"]
        self.assertEqual(hw, 4)
        self.assertEqual(markers(w.batches(topic, 0, hw)), [(True, pid), (True, pid)])


if __name__ == "__main__":
    unittest.main()

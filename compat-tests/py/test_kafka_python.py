"""kafka-python: produce and consume with assign() (group_id=None), admin topics."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import BrokerTestCase, kbroker_only, uniq  # noqa: E402

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError  # noqa: E402

N = 2000
NPART = 3


class KafkaPythonTest(BrokerTestCase):
    def admin(self):
        a = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        self.addCleanup(a.close)
        return a

    def consume_all(self, topic, partitions, expect, **kw):
        c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                          auto_offset_reset="earliest", consumer_timeout_ms=3000, fetch_max_wait_ms=100, **kw)
        try:
            tps = [TopicPartition(topic, p) for p in partitions]
            c.assign(tps)
            c.seek_to_beginning(*tps)
            got = []
            deadline = time.monotonic() + 30
            while len(got) < expect and time.monotonic() < deadline:
                for m in c:
                    got.append(m)
                    if len(got) >= expect:
                        break
            # Nothing beyond what was produced.
            extra = c.poll(timeout_ms=500)
            got.extend(m for msgs in extra.values() for m in msgs)
            return got
        finally:
            c.close()

    def _produce_consume(self, compression):
        topic = uniq("kp-" + (compression or "none"))
        a = self.admin()
        a.create_topics([NewTopic(topic, NPART, 1)])
        p = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                          compression_type=compression)
        try:
            futs = []
            for i in range(N):
                futs.append((i, p.send(topic, key=b"k%d" % (i % 50), value=b"value-%06d" % i,
                                       headers=[("n", b"%d" % i), ("x", b"")])))
            p.flush(30)
            acked = {}
            for i, f in futs:
                md = f.get(10)
                acked[i] = (md.partition, md.offset)
        finally:
            p.close(10)
        self.assertEqual(len(set(acked.values())), N, "distinct acknowledged offsets")
        got = self.consume_all(topic, range(NPART), N)
        self.assertEqual(len(got), N)
        per_part = {}
        for m in got:
            i = int(m.value[6:])
            self.assertEqual(acked[i], (m.partition, m.offset), "record %d read at a different offset" % i)
            self.assertEqual(m.key, b"k%d" % (i % 50))
            self.assertEqual(m.headers, [("n", b"%d" % i), ("x", b"")])
            per_part.setdefault(m.partition, []).append(m.offset)
        for part, offs in per_part.items():
            self.assertEqual(offs, list(range(len(offs))), "partition %d out of order / gaps" % part)

    def test_produce_consume_uncompressed(self):
        self._produce_consume(None)

    def test_produce_consume_gzip(self):
        # kafka-python compresses gzip itself (no broker feature gating, unlike Debian librdkafka).
        self._produce_consume("gzip")

    def test_admin_create_list_delete(self):
        a = self.admin()
        t = uniq("kp-adm")
        a.create_topics([NewTopic(t, 4, 1)])
        self.assertIn(t, a.list_topics())
        desc = [d for d in a.describe_topics([t]) if d["topic"] == t]
        self.assertEqual(len(desc), 1)
        self.assertEqual(len(desc[0]["partitions"]), 4)
        with self.assertRaises(TopicAlreadyExistsError):
            a.create_topics([NewTopic(t, 4, 1)])
        a.delete_topics([t])
        deadline = time.monotonic() + 10
        while t in a.list_topics() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertNotIn(t, a.list_topics())
        with self.assertRaises(UnknownTopicOrPartitionError):
            a.delete_topics([t])

    def test_end_offsets_and_offsets_for_times(self):
        topic = uniq("kp-ts")
        base = int(time.time() * 1000) - 60000
        p = KafkaProducer(bootstrap_servers=self.bootstrap, acks=1)
        try:
            for i in range(10):
                p.send(topic, value=b"v%d" % i, partition=0, timestamp_ms=base + i * 100).get(10)
        finally:
            p.close(10)
        c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        try:
            tp = TopicPartition(topic, 0)
            self.assertEqual(c.end_offsets([tp])[tp], 10)
            self.assertEqual(c.beginning_offsets([tp])[tp], 0)
            r = c.offsets_for_times({tp: base + 450})[tp]
            self.assertEqual((r.offset, r.timestamp), (5, base + 500))
        finally:
            c.close()

    @kbroker_only("Kafka 4 removed Produce v0-2, Fetch v0-3 and ListOffsets v0 (KIP-896); kbroker serves "
                  "Kafka 3.9's ranges and converts magic 0/1 at the edge")
    def test_old_protocol_generations(self):
        """Clients pinned to old brokers use magic 0/1 message sets (Produce v1-2,
        Fetch v1-3, ListOffsets v0): converted at the edge, the data is the same."""
        for ver in [(0, 9), (0, 10, 0), (0, 10, 1)]:
            topic = uniq("kpy-old")
            p = KafkaProducer(bootstrap_servers=self.bootstrap, api_version=ver, compression_type="gzip")
            self.addCleanup(p.close)
            for i in range(50):
                p.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0)
            p.flush(10)
            c = KafkaConsumer(bootstrap_servers=self.bootstrap, api_version=ver, group_id=None,
                              consumer_timeout_ms=3000)
            self.addCleanup(c.close)
            tp = TopicPartition(topic, 0)
            c.assign([tp])
            c.seek_to_end(tp)
            self.assertEqual(c.position(tp), 50, ver)
            c.seek_to_beginning(tp)
            got = [(m.offset, m.key, m.value) for m in c]
            self.assertEqual(got, [(i, b"k%d" % i, b"v%d" % i) for i in range(50)], ver)

if __name__ == "__main__":
    unittest.main()

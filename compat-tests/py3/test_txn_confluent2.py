"""confluent-kafka-python 2.x (its bundled librdkafka) as a transactional producer (issue 16): commit and abort
across 2 partitions, a read_committed consumer sees exactly the committed records and a read_uncommitted one all
of them, a zombie producer with the same transactional.id is fenced, and send_offsets_to_transaction commits a
group's offsets with the transaction. kbroker runs with unstable.api.versions.enable=true (no longer needed:
the coordinator's APIs are advertised without it).

Owns: the confluent-kafka 2.x transaction checks. Must not: depend on another test's topics or groups."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common3 import GROUP_SETS, BrokerTestCase, is_kbroker, uniq

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


class TxnConfluent2Test(BrokerTestCase):
    extra_sets = GROUP_SETS + (("unstable.api.versions.enable=true",) if is_kbroker() else ())

    def setUp(self):
        self.topic = uniq("txn-c2")
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(self.topic, 2, 1)])[self.topic].result(20)

    def producer(self, txn_id, **conf):
        p = Producer(dict({"bootstrap.servers": self.bootstrap, "transactional.id": txn_id, "linger.ms": 5}, **conf))
        p.init_transactions(30)
        return p

    def read(self, isolation, n_expected, parts=(0, 1), group=None):
        """Values read from the start of both partitions until n_expected or a quiet second after the end."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group or uniq("txn-reader"),
                      "enable.auto.commit": False, "isolation.level": isolation, "fetch.wait.max.ms": 100,
                      "enable.partition.eof": True})
        try:
            c.assign([TopicPartition(self.topic, p, 0) for p in parts])
            got, eof, deadline = [], set(), time.monotonic() + 30
            while time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    if len(got) >= n_expected and len(eof) == len(parts):
                        break
                    continue
                if m.error():
                    self.assertEqual(m.error().code(), KafkaError._PARTITION_EOF, m.error())
                    eof.add(m.partition())
                    continue
                eof.discard(m.partition())
                got.append(m.value())
            return sorted(got)
        finally:
            c.close()

    def test_commit_abort_and_isolation(self):
        p = self.producer(uniq("txn-id"))
        p.begin_transaction()
        for i in range(10):
            p.produce(self.topic, value=b"commit-%02d" % i, partition=i % 2)
        p.commit_transaction(30)
        p.begin_transaction()
        for i in range(6):
            p.produce(self.topic, value=b"abort-%02d" % i, partition=i % 2)
        p.flush(30)
        p.abort_transaction(30)
        p.begin_transaction()
        p.produce(self.topic, value=b"commit-late", partition=1)
        p.commit_transaction(30)
        committed = sorted([b"commit-%02d" % i for i in range(10)] + [b"commit-late"])
        self.assertEqual(self.read("read_committed", 11), committed)
        self.assertEqual(self.read("read_uncommitted", 17), sorted(committed + [b"abort-%02d" % i for i in range(6)]))

    def test_zombie_fenced(self):
        tid = uniq("txn-zombie")
        old = self.producer(tid)
        old.begin_transaction()
        old.produce(self.topic, value=b"zombie", partition=0)
        old.flush(30)
        new = self.producer(tid)  # fences old and aborts its open transaction
        new.begin_transaction()
        new.produce(self.topic, value=b"fresh", partition=1)
        new.commit_transaction(30)
        with self.assertRaises(KafkaException) as cm:
            old.commit_transaction(30)
        err = cm.exception.args[0]
        self.assertTrue(err.fatal(), err)
        self.assertEqual(err.code(), KafkaError._FENCED, err)
        self.assertEqual(self.read("read_committed", 1), [b"fresh"])

    def test_offsets_in_transaction(self):
        """The offsets sent with the transaction are the group's once it commits (TxnOffsetCommit verified
        with the transaction coordinator, transaction.partition.verification.enable=true by default)."""
        group = uniq("txn-group")
        p = self.producer(uniq("txn-offsets"))
        p.begin_transaction()
        p.produce(self.topic, value=b"with-offsets", partition=0)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False})
        p.send_offsets_to_transaction([TopicPartition(self.topic, 1, 42)], c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        got = c.committed([TopicPartition(self.topic, 1)], 30)
        c.close()
        self.assertEqual(got[0].offset, 42)


if __name__ == "__main__":
    unittest.main()

"""confluent-kafka-python 2.x (its bundled librdkafka): idempotent produce with keys, headers and every
codec, consume, classic and KIP-848 consumer groups with commit and resume, AdminClient (topics, partitions,
configs, offsets, groups, records), error cases.

Owns: the confluent-kafka 2.x checks. Must not: depend on another test's topics or groups."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common3 import CODECS, GROUP_SETS, BrokerTestCase, uniq, value

from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException,
                             Producer, TopicCollection, TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic, OffsetSpec, ResourceType)

N = 300


class Confluent2Test(BrokerTestCase):
    extra_sets = GROUP_SETS

    def admin(self):
        # Kept for the test: a futures' handle must outlive its results.
        if getattr(self, "_admin", None) is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create(self, topic, parts=1, config=None):
        self.admin().create_topics([NewTopic(topic, parts, 1, config=config or {})])[topic].result(20)

    def produce(self, topic, msgs, **conf):
        """msgs: (partition or None, key, value, headers); returns delivery reports in order."""
        p = Producer(dict({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "acks": "all",
                           "enable.idempotence": True}, **conf))
        reports = []
        for part, k, v, h in msgs:
            kw = {} if part is None else {"partition": part}
            p.produce(topic, key=k, value=v, headers=h, on_delivery=lambda e, m: reports.append((e, m)), **kw)
        self.assertEqual(p.flush(30), 0)
        return reports

    def consume_assigned(self, topic, parts, n):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("unused"), "enable.auto.commit": False,
                      "fetch.wait.max.ms": 100})
        try:
            c.assign([TopicPartition(topic, p, 0) for p in parts])
            got = []
            deadline = time.monotonic() + 30
            while len(got) < n and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                self.assertIsNone(m.error(), m.error())
                got.append(m)
            return got
        finally:
            c.close()

    def test_produce_consume_codecs(self):
        for codec in CODECS:
            with self.subTest(codec=codec):
                topic = uniq("cf2-" + codec)
                self.create(topic, 3)
                msgs = [(None, b"k%d" % (i % 7), value(i), [("i", b"%d" % i), ("empty", b"")]) for i in range(N)]
                reports = self.produce(topic, msgs, **{"compression.type": codec})
                at = {}
                for e, m in reports:
                    self.assertIsNone(e, e)
                    at[(m.partition(), m.offset())] = m
                self.assertEqual(len(at), N)
                got = self.consume_assigned(topic, range(3), N)
                self.assertEqual(len(got), N)
                for m in got:
                    w = at[(m.partition(), m.offset())]
                    self.assertEqual((m.key(), m.value()), (w.key(), w.value()))
                    i = int(w.value()[6:11])  # delivery reports carry no headers: the index is in the value
                    self.assertEqual(m.headers(), [("i", b"%d" % i), ("empty", b"")])

    def group_consumer(self, group, topic, **conf):
        c = Consumer(dict({"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False,
                           "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100}, **conf))
        c.subscribe([topic])
        return c

    def group_run(self, group, topic, n, **conf):
        c = self.group_consumer(group, topic, **conf)
        try:
            seen = {}
            deadline = time.monotonic() + 60
            while len(seen) < n and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                self.assertIsNone(m.error(), m.error())
                seen[m.key()] = (m.partition(), m.offset())
            self.assertEqual(len(seen), n, "group consumer saw %d of %d" % (len(seen), n))
            c.commit(asynchronous=False)
            return seen
        finally:
            c.close()

    def _group_commit_resume(self, **conf):
        topic, group = uniq("cf2-grp"), uniq("cf2-g")
        self.create(topic, 4)
        self.produce(topic, [(i % 4, b"%d" % i, value(i), None) for i in range(20)])
        self.group_run(group, topic, 20, **conf)
        a = self.admin()
        res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(15)
        committed = {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic}
        self.assertEqual(committed, {0: 5, 1: 5, 2: 5, 3: 5})
        self.produce(topic, [(i % 4, b"%d" % i, value(i), None) for i in range(20, 40)])
        second = self.group_run(group, topic, 20, **conf)
        self.assertEqual(set(second), {b"%d" % i for i in range(20, 40)})
        self.assertTrue(all(o >= 5 for _, o in second.values()), second)
        return group

    def test_group_classic_commit_resume(self):
        group = self._group_commit_resume(**{"group.protocol": "classic"})
        a = self.admin()
        d = a.describe_consumer_groups([group])[group].result(15)
        self.assertEqual(str(d.state), "ConsumerGroupState.EMPTY")
        a.delete_consumer_groups([group])[group].result(15)
        with self.assertRaises(KafkaException) as cm:
            a.delete_consumer_groups([group])[group].result(15)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.GROUP_ID_NOT_FOUND)

    def test_group_consumer_protocol_commit_resume(self):
        # KIP-848: ConsumerGroupHeartbeat; the broker assigns.
        group = self._group_commit_resume(**{"group.protocol": "consumer"})
        d = self.admin().describe_consumer_groups([group])[group].result(15)
        self.assertEqual(str(d.type), "ConsumerGroupType.CONSUMER")

    def test_admin(self):
        a = self.admin()
        topic = uniq("cf2-adm")
        self.create(topic, 2, {"retention.ms": "3600000"})
        with self.assertRaises(KafkaException) as cm:
            a.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS)
        cl = a.describe_cluster().result(15)
        self.assertEqual(len(cl.nodes), 1)
        a.create_partitions([NewPartitions(topic, 3)])[topic].result(15)
        deadline = time.monotonic() + 10
        while True:
            d = a.describe_topics(TopicCollection([topic]))[topic].result(15)
            if len(d.partitions) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(len(d.partitions), 3)
        res = ConfigResource(ResourceType.TOPIC, topic)
        cfg = a.describe_configs([res])[res].result(15)
        self.assertEqual(cfg["retention.ms"].value, "3600000")
        a.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry("segment.bytes", "2097152", incremental_operation=AlterConfigOpType.SET)])])[res].result(15)
        deadline = time.monotonic() + 10
        while a.describe_configs([res])[res].result(15)["segment.bytes"].value != "2097152":
            self.assertLess(time.monotonic(), deadline, "segment.bytes not altered")
            time.sleep(0.2)
        self.produce(topic, [(0, None, value(i), None) for i in range(10)])
        tp = TopicPartition(topic, 0)
        off = a.list_offsets({tp: OffsetSpec.latest()})[tp].result(15)
        self.assertEqual(off.offset, 10)
        dr = a.delete_records([TopicPartition(topic, 0, 4)])[TopicPartition(topic, 0, 4)].result(15)
        self.assertEqual(dr.low_watermark, 4)
        self.assertEqual(a.list_offsets({tp: OffsetSpec.earliest()})[tp].result(15).offset, 4)
        group = uniq("cf2-adm-g")
        a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 7)])])[
            group].result(15)
        res2 = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(15)
        self.assertEqual([(t.topic, t.partition, t.offset) for t in res2.topic_partitions], [(topic, 0, 7)])
        listed = a.list_consumer_groups().result(15)
        self.assertIn(group, [g.group_id for g in listed.valid])
        a.delete_topics([topic])[topic].result(15)
        missing = uniq("cf2-missing")
        with self.assertRaises(KafkaException) as cm:
            a.delete_topics([missing])[missing].result(15)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.UNKNOWN_TOPIC_OR_PART)

    def test_error_unknown_topic(self):
        reports = self.produce(uniq("cf2-missing"), [(None, None, b"x", None)],
                               **{"allow.auto.create.topics": False, "message.timeout.ms": 10000,
                                  "topic.metadata.propagation.max.ms": 1000})
        self.assertIn(reports[0][0].code(), (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC))

    def test_error_offset_out_of_range(self):
        topic = uniq("cf2-oor")
        self.create(topic)
        self.produce(topic, [(0, None, b"x", None)])
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("unused"), "enable.auto.commit": False,
                      "auto.offset.reset": "error"})
        try:
            c.assign([TopicPartition(topic, 0, 1000)])
            deadline = time.monotonic() + 20
            err = None
            while err is None and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None:
                    self.assertIsNotNone(m.error(), "a record at offset %d" % m.offset())
                    err = m.error()
            self.assertIsNotNone(err)
            self.assertEqual(err.code(), KafkaError._AUTO_OFFSET_RESET, err)
            self.assertIn("out of range", err.str().lower())
        finally:
            c.close()

    def test_error_record_too_large(self):
        topic = uniq("cf2-big")
        self.create(topic, 1, {"max.message.bytes": "1024"})
        reports = self.produce(topic, [(0, None, b"\0" * 8192, None)], **{"compression.type": "none"})
        self.assertEqual(reports[0][0].code(), KafkaError.MSG_SIZE_TOO_LARGE)
        tp = TopicPartition(topic, 0)
        self.assertEqual(self.admin().list_offsets({tp: OffsetSpec.latest()})[tp].result(15).offset, 0)


if __name__ == "__main__":
    unittest.main()

"""kafka-python 3.x: idempotent KafkaProducer with keys, headers and every codec, KafkaConsumer by
assignment and in a group with commit and resume, KafkaAdminClient (topics, partitions, configs, offsets,
groups, records), error cases.

Owns: the kafka-python 3.x checks. Must not: depend on another test's topics or groups."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common3 import CODECS, GROUP_SETS, BrokerTestCase, uniq, value  # noqa: E402

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import (ConfigResource, ConfigResourceType, NewPartitions, NewTopic,  # noqa: E402
                         OffsetSpec)
from kafka.errors import (CoordinatorNotAvailableError, GroupIdNotFoundError, MessageSizeTooLargeError,  # noqa: E402
                          OffsetOutOfRangeError, TopicAlreadyExistsError, UnknownTopicOrPartitionError)
from kafka.structs import OffsetAndMetadata  # noqa: E402

N = 200


def _wait(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


class KafkaPython3Test(BrokerTestCase):
    extra_sets = GROUP_SETS

    def admin(self):
        a = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15000)
        self.addCleanup(a.close)
        return a

    def producer(self, **kw):
        p = KafkaProducer(**dict(dict(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                      linger_ms=5), **kw))
        self.addCleanup(p.close)
        return p

    def test_produce_consume_codecs(self):
        a = self.admin()
        for codec in CODECS:
            with self.subTest(codec=codec):
                topic = uniq("kp3-" + codec)
                a.create_topics([NewTopic(topic, 2, 1)])
                p = self.producer(compression_type=None if codec == "none" else codec)
                futs = [p.send(topic, key=b"k%d" % (i % 5), value=value(i),
                               headers=[("i", b"%d" % i), ("empty", b"")]) for i in range(N)]
                at = {}
                for i, f in enumerate(futs):
                    md = f.get(timeout=30)
                    at[(md.partition, md.offset)] = i
                c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                  auto_offset_reset="earliest", fetch_max_wait_ms=100)
                try:
                    c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
                    got = []
                    deadline = time.monotonic() + 30
                    while len(got) < N and time.monotonic() < deadline:
                        for msgs in c.poll(timeout_ms=500).values():
                            got.extend(msgs)
                finally:
                    c.close()
                self.assertEqual(len(got), N)
                for m in got:
                    i = at[(m.partition, m.offset)]
                    self.assertEqual((m.key, m.value), (b"k%d" % (i % 5), value(i)))
                    self.assertEqual(list(m.headers), [("i", b"%d" % i), ("empty", b"")])

    def group_run(self, group, topic, n):
        c = KafkaConsumer(topic, bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False,
                          auto_offset_reset="earliest", fetch_max_wait_ms=100, session_timeout_ms=10000,
                          heartbeat_interval_ms=1000)
        try:
            seen = {}
            deadline = time.monotonic() + 60
            while len(seen) < n and time.monotonic() < deadline:
                for msgs in c.poll(timeout_ms=500).values():
                    for m in msgs:
                        seen[m.key] = (m.partition, m.offset)
            self.assertEqual(len(seen), n)
            c.commit()
            return seen
        finally:
            c.close()

    def test_group_commit_resume(self):
        a = self.admin()
        topic, group = uniq("kp3-grp"), uniq("kp3-g")
        a.create_topics([NewTopic(topic, 3, 1)])
        p = self.producer()
        for i in range(15):
            p.send(topic, key=b"%d" % i, value=value(i), partition=i % 3)
        p.flush()
        self.group_run(group, topic, 15)
        offs = a.list_group_offsets({group: None})[group]
        self.assertEqual({tp.partition: o.offset for tp, o in offs.items() if tp.topic == topic}, {0: 5, 1: 5, 2: 5})
        for i in range(15, 30):
            p.send(topic, key=b"%d" % i, value=value(i), partition=i % 3)
        p.flush()
        second = self.group_run(group, topic, 15)
        self.assertEqual(set(second), {b"%d" % i for i in range(15, 30)})
        groups = {g["group_id"]: g for g in a.list_groups()}
        self.assertEqual((groups[group]["protocol_type"], groups[group]["group_state"]), ("consumer", "Empty"))
        d = a.describe_groups([group])[group]
        self.assertEqual((d["group_state"], d["protocol_type"], d["members"]), ("Empty", "consumer", []))
        self.assertEqual(a.delete_groups([group]), {group: "OK"})
        # The result names the error.
        self.assertIn(GroupIdNotFoundError.__name__, str(a.delete_groups([group])[group]))

    def test_admin(self):
        a = self.admin()
        topic = uniq("kp3-adm")
        created = a.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "3600000"})])
        self.assertEqual(created["topics"][0]["error_code"], 0)
        with self.assertRaises(TopicAlreadyExistsError):
            a.create_topics([NewTopic(topic, 1, 1)])
        cl = a.describe_cluster()
        self.assertEqual([b["broker_id"] for b in cl["brokers"]], [cl["controller_id"]])
        a.create_partitions({topic: NewPartitions(3)})
        self.assertTrue(_wait(lambda: len(a.describe_topics([topic])[0]["partitions"]) == 3))
        cfg = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
        self.assertEqual((cfg["retention.ms"]["value"], cfg["retention.ms"]["config_source"]),
                         ("3600000", "DYNAMIC_TOPIC_CONFIG"))
        self.assertEqual(a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                         configs={"retention.ms": "7200000"})]),
                         {"topic": {topic: "OK"}})
        self.assertTrue(_wait(lambda: a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])[
            "topic"][topic]["retention.ms"]["value"] == "7200000"))
        p = self.producer()
        for i in range(6):
            p.send(topic, value=value(i), partition=0).get(15)
        tp = TopicPartition(topic, 0)
        self.assertEqual(a.list_partition_offsets({tp: OffsetSpec.LATEST})[tp].offset, 6)
        dr = a.delete_records({tp: 2})[tp]
        self.assertEqual((dr["error_code"], dr["low_watermark"]), (0, 2))
        self.assertEqual(a.list_partition_offsets({tp: OffsetSpec.EARLIEST})[tp].offset, 2)
        group = uniq("kp3-adm-g")
        # A fresh Kafka creates __consumer_offsets on the first FindCoordinator and answers
        # COORDINATOR_NOT_AVAILABLE meanwhile; kafka-python's admin does not retry.
        deadline = time.monotonic() + 30
        while True:
            try:
                a.alter_group_offsets(group, {tp: OffsetAndMetadata(4, "", -1)})
                break
            except CoordinatorNotAvailableError:
                self.assertLess(time.monotonic(), deadline, "no group coordinator after 30 s")
                time.sleep(0.5)
        self.assertEqual(a.list_group_offsets({group: None})[group][tp].offset, 4)
        deleted = a.delete_topics([topic])["topics"][0]
        self.assertEqual((deleted["error_code"], deleted["topic_id"]), (0, created["topics"][0]["topic_id"]))
        with self.assertRaises(UnknownTopicOrPartitionError):
            a.delete_topics([uniq("kp3-missing")])

    def test_error_offset_out_of_range(self):
        a = self.admin()
        topic = uniq("kp3-oor")
        a.create_topics([NewTopic(topic, 1, 1)])
        self.producer().send(topic, value=b"x", partition=0).get(15)
        c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                          auto_offset_reset="none", fetch_max_wait_ms=100)
        try:
            tp = TopicPartition(topic, 0)
            c.assign([tp])
            c.seek(tp, 1000)
            with self.assertRaises(OffsetOutOfRangeError):
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    self.assertEqual(c.poll(timeout_ms=500), {})
        finally:
            c.close()

    def test_error_record_too_large(self):
        a = self.admin()
        topic = uniq("kp3-big")
        a.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "1024"})])
        f = self.producer(retries=0, enable_idempotence=False).send(topic, value=b"\0" * 8192, partition=0)
        with self.assertRaises(MessageSizeTooLargeError):
            f.get(timeout=20)
        tp = TopicPartition(topic, 0)
        self.assertEqual(a.list_partition_offsets({tp: OffsetSpec.LATEST})[tp].offset, 0)

    def test_error_unknown_topic(self):
        a = self.admin()
        missing = uniq("kp3-missing")
        d = a.describe_topics([missing])
        self.assertEqual([(t["name"], t["error_code"], t["topic_id"], t["partitions"]) for t in d],
                         [(missing, 3, None, [])])
        with self.assertRaises(UnknownTopicOrPartitionError):
            a.delete_records({TopicPartition(missing, 0): 1})

if __name__ == "__main__":
    unittest.main()

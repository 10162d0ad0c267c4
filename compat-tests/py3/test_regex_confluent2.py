"""librdkafka's regex subscription with the KIP-848 consumer protocol (confluent-kafka 2.x of the venv): a topic
list entry starting with "^" is a regex, and with group.protocol=consumer librdkafka sends it to the broker as
ConsumerGroupHeartbeat's SubscribedTopicRegex instead of matching topic names itself. The member consumes the
records of the existing matching topics, then of a matching topic created after it joined, never of the others.
The same on kbroker and Apache Kafka."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common3 import GROUP_SETS, BrokerTestCase, uniq  # noqa: E402

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


class RegexConfluent2Test(BrokerTestCase):
    extra_sets = GROUP_SETS

    def create(self, admin, parts):
        fs = admin.create_topics([NewTopic(n, p, 1) for n, p in parts.items()], operation_timeout=30)
        for f in fs.values():
            f.result(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            md = admin.list_topics(timeout=10)
            if all(n in md.topics and len(md.topics[n].partitions) == p and
                   all(pm.leader >= 0 for pm in md.topics[n].partitions.values()) for n, p in parts.items()):
                return
            time.sleep(0.2)
        self.fail("topics %s without leaders" % list(parts))

    def produce(self, topic, partitions, n):
        p = Producer({"bootstrap.servers": self.bootstrap})
        for part in range(partitions):
            for i in range(n):
                p.produce(topic, value=("%s/%d/%d" % (topic, part, i)).encode(), partition=part)
        self.assertEqual(p.flush(30), 0)

    def consume(self, c, allowed, got, want, seconds):
        deadline = time.monotonic() + seconds
        while (want is None or len(got) < want) and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            self.assertIsNone(m.error(), m.error())
            self.assertIn(m.topic(), allowed, "a record of a topic the regex does not match")
            self.assertNotIn(m.value(), got, "a record delivered twice")
            got.add(m.value())
        if want is not None:
            self.assertEqual(len(got), want)

    def test_regex_with_consumer_protocol(self):
        base = uniq("rx2")
        a, b, c, other, near = base + "-a", base + "-b", base + "-c", base + "-other", "x" + base + "-a"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        self.create(admin, {a: 2, b: 1, other: 1, near: 1})
        for t, n in ((a, 2), (b, 1), (other, 1), (near, 1)):
            self.produce(t, n, 5)
        cons = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("rx2g"), "group.protocol": "consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            cons.subscribe(["^" + base.replace("-", "[-]") + "-(a|b|c)"])
            got = set()
            self.consume(cons, {a, b}, got, 15, 60)
            self.create(admin, {c: 3})
            self.produce(c, 3, 2)
            self.consume(cons, {a, b, c}, got, 21, 90)
            self.consume(cons, {a, b, c}, got, None, 1.5)
            self.assertEqual(len(got), 21)
        finally:
            cons.close()


if __name__ == "__main__":
    unittest.main()

"""confluent-kafka-python 2.16's ShareConsumer (librdkafka 2.16's KIP-932 share consumer) on a share group:
two consumers splitting a 2-partition topic (every record once, ACCEPT), a RELEASEd record delivered again with
delivery count 2, a REJECTed one never again. The same on Apache Kafka 4.4.0 and kbroker.

Owns: the librdkafka share consumer checks. Must not: depend on another test's topics or groups, or wait
without a deadline."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common3 import BrokerTestCase, uniq  # noqa: E402

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer  # noqa: E402
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,  # noqa: E402
                                   NewTopic, ResourceType)


ACCEPT, RELEASE, REJECT = AcknowledgeType.ACCEPT, AcknowledgeType.RELEASE, AcknowledgeType.REJECT


class ShareConfluentTest(BrokerTestCase):
    # kbroker advertises the share APIs with this until issue 18 is complete; Kafka 4.4 serves them anyway.

    def setup_topic(self, parts):
        topic, group = uniq("shc"), uniq("shcg")
        a = AdminClient({"bootstrap.servers": self.bootstrap})
        a.create_topics([NewTopic(topic, parts, 1)])[topic].result(20)
        # A new share group starts at the latest offset unless its group config says earliest.
        res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
            ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
        for f in a.incremental_alter_configs([res]).values():
            f.result(20)
        return topic, group

    def produce(self, topic, parts, n):
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all"})
        for i in range(n):
            p.produce(topic, value=b"v-%d" % i, partition=i % parts)
        self.assertEqual(p.flush(30), 0)

    def consumer(self, group, topic):
        c = ShareConsumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                           "share.acknowledgement.mode": "explicit"})
        self.addCleanup(c.close)
        c.subscribe([topic])
        return c

    def poll(self, c, decide):
        """One poll; each message acknowledged with decide(message); returns (value, partition, count)."""
        out = []
        for m in c.poll(0.5) or []:
            if m.error():
                continue
            out.append((m.value().decode(), m.partition(), m.delivery_count()))
            c.acknowledge(m, decide(m))
        if out:
            c.commit_sync(20)
        return out

    def test_two_consumers_split(self):
        topic, group = self.setup_topic(2)
        n = 40
        self.produce(topic, 2, n)
        c1, c2 = self.consumer(group, topic), self.consumer(group, topic)
        seen = {}
        deadline = time.monotonic() + 60
        while len(seen) < n and time.monotonic() < deadline:
            for k, c in ((1, c1), (2, c2)):
                for v, part, count in self.poll(c, lambda m: ACCEPT):
                    self.assertNotIn(v, seen, "delivered twice")
                    self.assertEqual(count, 1, v)
                    seen[v] = (k, part)
        self.assertEqual(sorted(seen), sorted("v-%d" % i for i in range(n)))
        # Both members got partitions once the group settled: each partition went to one consumer.
        by_part = {}
        for k, part in seen.values():
            by_part.setdefault(part, set()).add(k)
        self.assertEqual(sorted(by_part), [0, 1])
        for _ in range(3):
            for c in (c1, c2):
                self.assertEqual(self.poll(c, lambda m: ACCEPT), [], "accepted records came again")

    def test_release_and_reject(self):
        topic, group = self.setup_topic(1)
        self.produce(topic, 1, 3)
        c = self.consumer(group, topic)
        plan = {"v-0": RELEASE, "v-1": REJECT, "v-2": ACCEPT}
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 4 and time.monotonic() < deadline:
            got += self.poll(c, lambda m: plan[m.value().decode()] if m.delivery_count() == 1 else ACCEPT)
        # v-0 released: delivered again with count 2 (then accepted); v-1 rejected, v-2 accepted: never again.
        self.assertEqual(sorted((v, n) for v, _, n in got), [("v-0", 1), ("v-0", 2), ("v-1", 1), ("v-2", 1)])
        for _ in range(3):
            self.assertEqual(self.poll(c, lambda m: ACCEPT), [])


if __name__ == "__main__":
    unittest.main()

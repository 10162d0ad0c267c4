"""Consumer groups with kafka-python 2.0.2 against kbroker: the basic three-member group (exclusive
partitions, a close moving partitions, every record consumed), a mixed group of kafka-python and
confluent-kafka members using the range assignor, and the admin APIs of both clients (list,
describe, list offsets, delete groups)."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from grouplib import GROUP_SETS, BrokerTestCase, Worker, uniq, wait_consumed, wait_partitioned  # noqa: E402

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition  # noqa: E402
from kafka.errors import GroupIdNotFoundError, NoError, NonEmptyGroupError  # noqa: E402

NPART = 6


class KafkaPythonGroups(BrokerTestCase):
    extra_sets = GROUP_SETS

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kb-groups-")
        self.workers = []

    def tearDown(self):
        for w in self.workers:
            w.kill9()

    def worker(self, lib, group, topic, name, **opts):
        w = Worker(lib, self.bootstrap, group, topic, self.tmp, name, **opts)
        self.workers.append(w)
        return w

    def topic(self, n_msgs):
        t = uniq("kpg")
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(t, NPART, 1)])[t].result(15)
        p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        for i in range(n_msgs):
            p.produce(t, value=b"m%d" % i, partition=i % NPART)
        self.assertEqual(p.flush(30), 0)
        return t

    def test_basic_group(self):
        n = 6000
        t = self.topic(n)
        g = uniq("kp3")
        ws = [self.worker("kafka-python", g, t, "k%d" % i, rate=500) for i in range(3)]
        sets = wait_partitioned(ws, NPART, timeout=40)
        self.assertTrue(all(len(s) == 2 for s in sets), sets)
        ws[0].close()
        wait_partitioned(ws[1:], NPART, timeout=40)
        wait_consumed(ws, {(p, o) for p in range(NPART) for o in range(n // NPART)}, timeout=60)

    def test_mixed_clients_range(self):
        t = self.topic(600)
        g = uniq("mix")
        a = self.worker("confluent", g, t, "rdk", strategy="range")
        b = self.worker("kafka-python", g, t, "kpy", strategy="range")
        sa, sb = wait_partitioned([a, b], NPART, timeout=40)
        self.assertEqual((len(sa), len(sb)), (3, 3))
        # Range hands out contiguous blocks.
        for s in (sa, sb):
            self.assertEqual(max(s) - min(s), 2, s)
        try:
            wait_consumed([a, b], {(p, o) for p in range(NPART) for o in range(100)}, timeout=30)
        except AssertionError:
            for w in (a, b):
                print(w.name, w.assign_events(), sorted({p for p, _ in w.consumed()}), "".join(w.stderr)[-3000:])
            raise

    def test_admin(self):
        t = self.topic(60)
        g = uniq("adm")
        c = KafkaConsumer(t, bootstrap_servers=self.bootstrap, group_id=g, auto_offset_reset="earliest",
                          enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                          api_version=(2, 5, 0))
        got = 0
        for _ in range(50):
            got += sum(len(v) for v in c.poll(timeout_ms=200).values())
            if got >= 60:
                break
        self.assertEqual(got, 60)
        c.commit()
        ka = KafkaAdminClient(bootstrap_servers=self.bootstrap, api_version=(2, 5, 0))
        try:
            groups = dict(ka.list_consumer_groups())
            self.assertEqual(groups.get(g), "consumer")
            desc = ka.describe_consumer_groups([g])[0]
            self.assertEqual(desc.state, "Stable")
            self.assertEqual(desc.protocol_type, "consumer")
            self.assertEqual(len(desc.members), 1)
            self.assertEqual(desc.members[0].client_host, "/127.0.0.1")  # Kafka's "/ip" form
            self.assertEqual(sorted(desc.members[0].member_assignment.assignment[0][1]),
                             list(range(NPART)))
            offs = ka.list_consumer_group_offsets(g)
            self.assertEqual({tp.partition: om.offset for tp, om in offs.items()}, {p: 10 for p in range(NPART)})
            # confluent-kafka 1.7 lists groups too.
            self.assertIn(g, [x.id for x in AdminClient({"bootstrap.servers": self.bootstrap}).list_groups(timeout=10)])
            self.assertIs(ka.delete_consumer_groups([g])[0][1], NonEmptyGroupError)
            c.close()
            self.assertEqual(ka.describe_consumer_groups([g])[0].state, "Empty")
            self.assertIs(ka.delete_consumer_groups([g])[0][1], NoError)
            self.assertNotIn(g, dict(ka.list_consumer_groups()))
            self.assertEqual(ka.describe_consumer_groups([g])[0].state, "Dead")
            self.assertIs(ka.delete_consumer_groups([g])[0][1], GroupIdNotFoundError)
            self.assertEqual({tp: om.offset for tp, om in ka.list_consumer_group_offsets(
                g, partitions=[TopicPartition(t, 0)]).items()}, {TopicPartition(t, 0): -1})
        finally:
            ka.close()


if __name__ == "__main__":
    unittest.main()

"""Consumer groups with confluent-kafka-python (librdkafka 2.0.2): three members over six partitions,
a clean close and a kill -9 moving partitions, all 60k records consumed, commits kept (across a broker
restart on kbroker), static membership without rebalance, cooperative-sticky."""

import os
import re
import tempfile
import time
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from grouplib import GROUP_SETS, BrokerTestCase, Worker, uniq, wait_consumed, wait_partitioned
from common import is_kbroker

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

NPART = 6
N = 60000


class ConfluentGroups(BrokerTestCase):
    extra_sets = GROUP_SETS

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kb-groups-")
        self.workers = []

    def tearDown(self):
        for w in self.workers:
            w.kill9()

    def worker(self, group, topic, name, lib="confluent", **opts):
        w = Worker(lib, self.bootstrap, group, topic, self.tmp, name, **opts)
        self.workers.append(w)
        return w

    def topic(self, n_msgs, nparts=NPART):
        t = uniq("grp")
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(t, nparts, 1)])[t].result(15)
        p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "enable.idempotence": True})
        for i in range(n_msgs):
            p.produce(t, value=b"m%d" % i, partition=i % nparts)
            if i % 10000 == 0:
                p.poll(0)
        self.assertEqual(p.flush(30), 0)
        return t

    def rebalances(self, group):
        return len(re.findall(r"group %s: preparing to rebalance" % re.escape(group), self.broker.log_text()))

    def test_three_members_close_kill_all_consumed_restart(self):
        t = self.topic(N)
        g = uniq("g3")
        ws = [self.worker(g, t, "c%d" % i, rate=2500) for i in range(3)]
        sets = wait_partitioned(ws, NPART)
        self.assertTrue(all(len(s) == 2 for s in sets), sets)
        # A clean close: LeaveGroup, the other two take its partitions.
        ws[0].close()
        sets = wait_partitioned(ws[1:], NPART)
        # kill -9: nothing tells the broker; the session timeout (6 s) does.
        t_kill = time.monotonic()
        ws[1].kill9()
        wait_partitioned(ws[2:], NPART, timeout=30)
        self.assertGreater(time.monotonic() - t_kill, 4.0, "rebalanced before the session timeout")
        expect = {(p, o) for p in range(NPART) for o in range(N // NPART)}
        wait_consumed(ws, expect, timeout=90)
        ws[2].close()  # commits its position and leaves
        # Committed offsets survive a restart (of our own process: kbroker only; elsewhere they must
        # simply be there).
        if is_kbroker():
            self.broker.restart()
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": g})
        try:
            committed = c.committed([TopicPartition(t, p) for p in range(NPART)], timeout=15)
        finally:
            c.close()
        self.assertEqual([tp.offset for tp in committed], [N // NPART] * NPART)
        # A new member resumes after the last commit: it sees only new records.
        p = Producer({"bootstrap.servers": self.bootstrap})
        for i in range(600):
            p.produce(t, value=b"late%d" % i, partition=i % NPART)
        self.assertEqual(p.flush(15), 0)
        w = self.worker(g, t, "after-restart")
        wait_partitioned([w], NPART)
        late = {(q, o) for q in range(NPART) for o in range(N // NPART, N // NPART + 100)}
        got = wait_consumed([w], late, timeout=30)
        self.assertEqual(min(o for _, o in got), N // NPART, "resumed before the last commit")

    def test_static_member_restart_without_rebalance(self):
        t = self.topic(600)
        g = uniq("gs")
        a = self.worker(g, t, "sa", instance="inst-a", session=10000)
        b = self.worker(g, t, "sb", instance="inst-b", session=10000)
        sets = wait_partitioned([a, b], NPART)
        before = self.rebalances(g) if is_kbroker() else None
        b_events = len(b.assign_events())
        a.kill9()
        a2 = self.worker(g, t, "sa2", instance="inst-a", session=10000)
        sets2 = wait_partitioned([a2, b], NPART)
        self.assertEqual(sets2, sets, "a restarted static member keeps its assignment")
        time.sleep(1.0)
        # What a client sees of a rebalance: the other member's partitions revoked and assigned again.
        self.assertEqual(b.assign_events()[b_events:], [], "static member rejoin made the other member rebalance")
        if is_kbroker():
            self.assertEqual(self.rebalances(g), before, "static member rejoin caused a rebalance")
            self.assertIn("static member inst-a rejoins", self.broker.log_text())

    def test_cooperative_sticky_incremental(self):
        t = self.topic(600)
        g = uniq("gc")
        a = self.worker(g, t, "ca", strategy="cooperative-sticky")
        b = self.worker(g, t, "cb", strategy="cooperative-sticky")
        sa, sb = wait_partitioned([a, b], NPART)
        n_events = len(a.assign_events())
        c = self.worker(g, t, "cc", strategy="cooperative-sticky")
        sa2, sb2, sc2 = wait_partitioned([a, b, c], NPART)
        self.assertTrue(sa2 <= sa and sb2 <= sb, "sticky: members keep what they can")
        self.assertEqual(len(sc2), 2)
        # Incremental: a never gave up everything it had (no eager revoke of all).
        for ev in a.assign_events()[n_events:]:
            if ev["kind"] == "revoke":
                self.assertNotEqual(set(ev["delta"]), sa, "eager revoke under cooperative-sticky")


if __name__ == "__main__":
    unittest.main()

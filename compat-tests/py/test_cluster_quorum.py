"""A three-node kbroker cluster on one metadata quorum (canonical raft), driven by librdkafka (confluent-kafka):
every node sees every broker and every topic; partitions are spread over the nodes and produced to and consumed
from through their leaders; replication factor 3 and manual assignments are placed and every replica opened; a consumer group commits; kill -9 of the raft leader elects another within a bound,
fences the dead broker, and metadata changes still commit; the killed node restarts from its raft snapshot and
catches up.

kbroker only: the cluster is kbroker processes of the test's own (lib/cluster.py); the reference Kafka of the
harness is one node.
"""

import os
import socket
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from broker import shards_from_env  # noqa: E402
from cluster import Cluster  # noqa: E402
from common import kbroker_only, uniq  # noqa: E402
from wire import carray, cstr, flex_request, kstr, read_frame, request  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SESSION_MS = 3000
# Bounds of the waits (CI runs three suites at once on two slow cores): generous, each polls its condition.
ELECTION_BOUND = 20.0
WAIT = 40.0


def metadata(node, timeout=10):
    return AdminClient({"bootstrap.servers": node.bootstrap}).list_topics(timeout=timeout)


def wait_for(what, cond, timeout=WAIT, logs=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except KafkaException as e:
            last = e
        time.sleep(0.2)
    raise AssertionError("%s: not within %.0fs (last: %r)%s" % (what, timeout, last,
                                                              "\n" + logs() if logs else ""))


def create(node, topic, partitions, rf=1):
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    return a.create_topics([NewTopic(topic, partitions, rf)], operation_timeout=20)[topic].result(30)


def crc32c(data):
    crc = 0xFFFFFFFF
    for x in data:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def one_record_batch(value):
    """A v2 record batch of one record (key null), as a client would send it."""
    rec = bytes([0, 0, 0, 1]) + bytes([len(value) * 2]) + value + bytes([0])  # attrs, ts/offset deltas, key -1
    rec = bytes([len(rec) * 2]) + rec
    after_crc = struct.pack(">hiqqqhii", 0, 0, 0, 0, -1, -1, -1, 1) + rec
    body = struct.pack(">ib", -1, 2) + struct.pack(">I", crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def raw_produce_error(node, topic, partition):
    """Produce v3 (acks 1) of one record straight to node: the partition's error code."""
    batch = one_record_batch(b"x")
    body = (struct.pack(">hhi", -1, 1, 10000) + struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", 1)
            + struct.pack(">ii", partition, len(batch)) + batch)
    with socket.create_connection((node.host, node.port), timeout=10) as s:
        s.sendall(request(0, 3, 7, body))
        r = read_frame(s)
    off = 4  # correlation id
    off += 4  # topics count (1)
    n = struct.unpack(">h", r[off:off + 2])[0]
    off += 2 + n + 4  # name, partitions count (1)
    _, err = struct.unpack(">ih", r[off:off + 6])
    return err


def raw_create_topic(node, topic, partitions):
    """CreateTopics v4 of one topic straight to node (no client routing): (error code, message)."""
    body = (struct.pack(">i", 1) + kstr(topic) + struct.pack(">ihii", partitions, 1, 0, 0)
            + struct.pack(">ib", 30000, 0))
    with socket.create_connection((node.host, node.port), timeout=40) as s:
        s.sendall(request(19, 4, 9, body))
        r = read_frame(s)
    off = 4 + 4 + 4  # correlation id, throttle, topics count (1)
    n = struct.unpack(">h", r[off:off + 2])[0]
    off += 2 + n
    err, mlen = struct.unpack(">hh", r[off:off + 4])
    msg = r[off + 4:off + 4 + mlen].decode() if mlen > 0 else None
    return err, msg


def raw_registration(node, broker_id, cluster_id):
    """BrokerRegistration v0 (flexible) straight to node: its error code."""
    listener = cstr("PLAINTEXT") + cstr("fake.example") + struct.pack(">Hh", 9999, 0) + b"\0"
    body = (struct.pack(">i", broker_id) + cstr(cluster_id) + b"\x11" * 16 + carray([listener]) + carray([])
            + cstr(None) + b"\0")
    with socket.create_connection((node.host, node.port), timeout=20) as s:
        s.sendall(flex_request(62, 0, 11, body))
        r = read_frame(s)
    return struct.unpack(">h", r[4 + 1 + 4:4 + 1 + 4 + 2])[0]  # correlation id, header tags, throttle


def raw_heartbeat(node, broker_id):
    """BrokerHeartbeat v0 (flexible) straight to node: its error code."""
    body = struct.pack(">iqq??", broker_id, 1, 0, False, False) + b"\0"
    with socket.create_connection((node.host, node.port), timeout=20) as s:
        s.sendall(flex_request(63, 0, 12, body))
        r = read_frame(s)
    return struct.unpack(">h", r[4 + 1 + 4:4 + 1 + 4 + 2])[0]


@kbroker_only("a cluster of kbroker processes of the test's own")
class ClusterQuorumTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3, shards=shards_from_env(),
                              extra_sets=["broker.session.timeout.ms=%d" % SESSION_MS,
                                          "broker.heartbeat.interval.ms=500",
                                          # Snapshots every few entries, so a restart restores one.
                                          "metadata.log.max.record.bytes.between.snapshots=400"])
        cls.addClassCleanup(cls._stop)
        cls.cluster.start()
        # Every node registered and the offsets topic made by the active controller.
        wait_for("all brokers registered everywhere",
                 lambda: all(sorted(metadata(n).brokers) == [1, 2, 3] for n in cls.cluster.nodes),
                 logs=cls.cluster.logs)

    @classmethod
    def _stop(cls):
        rcs = cls.cluster.stop()
        if any(rc != 0 for rc in rcs.values()):
            raise AssertionError("nodes did not exit 0 on SIGTERM: %r" % rcs)

    def logs(self):
        return self.cluster.logs()

    def test_registration_of_a_stranger_refused(self):
        """Only the configured voters register: a client cannot add a broker, nor heartbeat for one, nor join
        from another cluster."""
        for node in self.cluster.nodes:
            self.assertEqual(raw_heartbeat(node, 99), 102)  # BROKER_ID_NOT_REGISTERED
            self.assertEqual(raw_registration(node, 99, "whatever"), 42)  # INVALID_REQUEST: not a voter
            self.assertEqual(raw_registration(node, -1, "whatever"), 42)
            self.assertEqual(raw_registration(node, 2, "another-cluster"), 104)  # INCONSISTENT_CLUSTER_ID
        self.assertTrue(all(sorted(metadata(n).brokers) == [1, 2, 3] for n in self.cluster.nodes))

    def test_all_nodes_see_all_brokers(self):
        controllers = set()
        for n in self.cluster.nodes:
            md = metadata(n)
            self.assertEqual(sorted(md.brokers), [1, 2, 3])
            for b in md.brokers.values():
                self.assertEqual("%s:%d" % (b.host, b.port), self.cluster.node(b.id).bootstrap)
            controllers.add(md.controller_id)
        self.assertEqual(len(controllers), 1, "nodes disagree on the active controller: %r" % controllers)
        self.assertIn(controllers.pop(), [1, 2, 3])
        # The active controller made the offsets topic once every broker had registered: spread over all.
        md = wait_for("__consumer_offsets", lambda: (
            metadata(self.cluster.node(1)) if "__consumer_offsets" in metadata(self.cluster.node(1)).topics else None))
        per = {}
        for p in md.topics["__consumer_offsets"].partitions.values():
            per[p.leader] = per.get(p.leader, 0) + 1
        self.assertEqual(sorted(per), [1, 2, 3])
        self.assertTrue(all(16 <= v <= 17 for v in per.values()), per)

    def test_topic_created_on_one_node_is_seen_by_all(self):
        topic = uniq("spread")
        # The node given is a follower when it can be: the client is sent to the controller by Metadata.
        ctl = metadata(self.cluster.node(1)).controller_id
        via = self.cluster.node(1 if ctl != 1 else 2)
        create(via, topic, 6)
        leaders = []
        for n in self.cluster.nodes:
            md = wait_for("topic %s on node %d" % (topic, n.node_id), lambda: (
                metadata(n) if topic in metadata(n).topics else None), logs=self.logs)
            t = md.topics[topic]
            self.assertEqual(sorted(t.partitions), list(range(6)))
            leaders.append({p: t.partitions[p].leader for p in t.partitions})
        self.assertEqual(leaders[0], leaders[1])
        self.assertEqual(leaders[0], leaders[2])
        # Round-robin: six partitions, two on each broker.
        self.assertEqual(sorted(leaders[0].values()), [1, 1, 2, 2, 3, 3])

    def test_creation_on_a_follower_is_forwarded_to_the_controller(self):
        ctl = metadata(self.cluster.node(1)).controller_id
        for n in self.cluster.nodes:
            topic = uniq("fwd%d" % n.node_id)
            # On the controller itself as on the followers, which forward it: clients never see NOT_CONTROLLER.
            self.assertEqual(raw_create_topic(n, topic, 3), (0, None), "via node %d (controller %d)\n%s"
                             % (n.node_id, ctl, self.logs()))
            wait_for("%s on all nodes" % topic, lambda: all(topic in metadata(x).topics for x in self.cluster.nodes))
            # The controller's answer comes back through the follower, errors included.
            err, msg = raw_create_topic(n, topic, 3)
            self.assertEqual(err, 36, msg)  # TOPIC_ALREADY_EXISTS
            self.assertIn("already exists", msg)

    def test_replication_factor_three_placed_on_every_node(self):
        topic = uniq("rf3")
        ctl = metadata(self.cluster.node(1)).controller_id
        create(self.cluster.node(1 if ctl != 1 else 2), topic, 3, rf=3)  # through a follower: forwarded
        for n in self.cluster.nodes:
            md = wait_for("%s on node %d" % (topic, n.node_id), lambda: (
                metadata(n) if topic in metadata(n).topics else None), logs=self.logs)
            parts = md.topics[topic].partitions
            self.assertEqual(sorted(p.leader for p in parts.values()), [1, 2, 3])
            for p in parts.values():
                self.assertEqual(sorted(p.replicas), [1, 2, 3], "partition %d" % p.id)
                self.assertEqual(sorted(p.isrs), [1, 2, 3], "partition %d" % p.id)
                self.assertEqual(p.replicas[0], p.leader)  # the preferred leader leads
        # Every node is a replica of every partition: each opened all three on its disk.
        for n in self.cluster.nodes:
            wait_for("node %d holds the three replicas" % n.node_id, lambda: {
                int(d.rsplit("-", 1)[1]) for d in os.listdir(n.data_dir) if d.startswith(topic + "-")} == {0, 1, 2})
        # Manual assignments name registered brokers, the first live one leads.
        a = AdminClient({"bootstrap.servers": self.cluster.node(ctl).bootstrap})
        manual = uniq("manual")
        a.create_topics([NewTopic(manual, 2, replica_assignment=[[3, 1], [2, 3]])])[manual].result(30)
        parts = wait_for("manual topic", lambda: (
            metadata(self.cluster.node(ctl)).topics[manual].partitions
            if manual in metadata(self.cluster.node(ctl)).topics else None))
        self.assertEqual((parts[0].leader, parts[0].replicas), (3, [3, 1]))
        self.assertEqual((parts[1].leader, parts[1].replicas), (2, [2, 3]))
        bad = uniq("bad")
        with self.assertRaises(KafkaException) as cm:
            a.create_topics([NewTopic(bad, 1, replica_assignment=[[1, 7]])])[bad].result(30)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.INVALID_REPLICA_ASSIGNMENT)
        self.assertIn("broker 7, but no such broker is registered", cm.exception.args[0].str())

    def test_replication_factor_above_the_brokers_refused(self):
        with self.assertRaises(KafkaException) as cm:
            create(self.cluster.node(2), uniq("rf4"), 3, rf=4)
        err = cm.exception.args[0]
        self.assertEqual(err.code(), KafkaError.INVALID_REPLICATION_FACTOR, err)
        self.assertIn("The target replication factor of 4 cannot be reached because only 3 broker(s) are "
                      "registered", err.str())

    def produce_all(self, topic, nparts, per_part):
        p = Producer({"bootstrap.servers": self.cluster.bootstrap, "acks": "all", "linger.ms": 5})
        errors = []

        def cb(err, msg):
            if err:
                errors.append(err)
        for i in range(per_part):
            for part in range(nparts):
                p.produce(topic, key=b"k%d" % part, value=b"%d-%d" % (part, i), partition=part, on_delivery=cb)
        left = p.flush(30)
        self.assertEqual(left, 0, "records not delivered within 30s\n" + self.logs())
        self.assertEqual(errors, [])

    def test_produce_and_consume_every_partition_through_its_leader(self):
        topic = uniq("data")
        create(self.cluster.node(3), topic, 6)
        wait_for("topic on all", lambda: all(topic in metadata(n).topics for n in self.cluster.nodes))
        self.produce_all(topic, 6, 20)
        c = Consumer({"bootstrap.servers": self.cluster.bootstrap, "group.id": uniq("unused"),
                      "enable.auto.commit": False, "enable.partition.eof": True, "fetch.wait.max.ms": 100})
        got = {p: [] for p in range(6)}
        try:
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(6)])
            eof = set()
            deadline = time.monotonic() + WAIT
            while len(eof) < 6 and time.monotonic() < deadline:
                for m in c.consume(100, 0.5):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            eof.add(m.partition())
                        continue
                    got[m.partition()].append(m.value())
        finally:
            c.close()
        for p in range(6):
            self.assertEqual(got[p], [b"%d-%d" % (p, i) for i in range(20)], "partition %d" % p)
        # Each node holds only the partitions it leads: the others are not even on its disk.
        md = metadata(self.cluster.node(1)).topics[topic]
        for n in self.cluster.nodes:
            mine = {p for p in md.partitions if md.partitions[p].leader == n.node_id}
            dirs = {int(d.rsplit("-", 1)[1]) for d in os.listdir(n.data_dir) if d.startswith(topic + "-")}
            self.assertEqual(dirs, mine, "node %d" % n.node_id)

    def test_partition_of_another_node_answers_not_leader(self):
        topic = uniq("lead")
        create(self.cluster.node(1), topic, 3)
        md = wait_for("topic on all", lambda: (
            metadata(self.cluster.node(1)) if all(topic in metadata(n).topics for n in self.cluster.nodes)
            else None))
        leaders = {p: md.topics[topic].partitions[p].leader for p in range(3)}
        for p, lid in leaders.items():
            for n in self.cluster.nodes:
                want = 0 if n.node_id == lid else 6  # NOT_LEADER_OR_FOLLOWER: the client refreshes and moves on
                self.assertEqual(raw_produce_error(n, topic, p), want, "partition %d on node %d" % (p, n.node_id))

    def test_consumer_group_commits_offsets(self):
        topic = uniq("grp")
        group = uniq("g")
        create(self.cluster.node(1), topic, 3)
        wait_for("topic on all", lambda: all(topic in metadata(n).topics for n in self.cluster.nodes))
        self.produce_all(topic, 3, 5)
        c = Consumer({"bootstrap.servers": self.cluster.bootstrap, "group.id": group,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
        try:
            c.subscribe([topic])
            n = 0
            deadline = time.monotonic() + WAIT
            while n < 15 and time.monotonic() < deadline:
                for m in c.consume(50, 0.5):
                    if not m.error():
                        n += 1
            self.assertEqual(n, 15, self.logs())
            c.commit(asynchronous=False)
        finally:
            c.close()
        # A new member of the group reads the committed offsets back (from the coordinator's node).
        c2 = Consumer({"bootstrap.servers": self.cluster.node(2).bootstrap, "group.id": group})
        try:
            committed = c2.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)
        finally:
            c2.close()
        self.assertEqual(sorted((tp.partition, tp.offset) for tp in committed), [(0, 5), (1, 5), (2, 5)])

    def test_z_leader_killed_new_leader_elected_and_restarted_node_catches_up(self):
        cl = self.cluster
        old = metadata(cl.node(1)).controller_id
        self.assertIn(old, [1, 2, 3])
        victim = cl.node(old)
        survivors = [n for n in cl.nodes if n is not victim]
        # Enough metadata for a snapshot on every node (the setting above), so the restart restores one.
        create(victim, uniq("before"), 8)
        raft_dir = os.path.join(victim.data_dir, "__raft_metadata")
        wait_for("a raft snapshot on node %d" % old,
                 lambda: [f for f in os.listdir(raft_dir) if f.startswith("snapshot-")], logs=self.logs)
        t0 = time.monotonic()
        victim.kill9()

        def new_leader():
            ids = {metadata(n, timeout=5).controller_id for n in survivors}
            return ids.pop() if len(ids) == 1 and ids != {old} and ids != {-1} else None
        leader = wait_for("a new active controller", new_leader, timeout=ELECTION_BOUND, logs=self.logs)
        elected = time.monotonic() - t0
        self.assertNotEqual(leader, old)
        # Metadata still changes: a topic created through a survivor commits and is placed on live brokers.
        topic = uniq("after")
        create(survivors[0], topic, 4)
        wait_for("new topic on both survivors", lambda: all(topic in metadata(n).topics for n in survivors))
        # The dead broker is fenced after the session timeout and leaves Metadata.
        wait_for("broker %d fenced" % old,
                 lambda: all(sorted(metadata(n).brokers) == sorted(x.node_id for x in survivors)
                             for n in survivors), timeout=SESSION_MS / 1000 + WAIT, logs=self.logs)
        topic2 = uniq("fenced")
        create(survivors[1], topic2, 4)
        leaders = wait_for("placement without the fenced broker", lambda: (
            {p.leader for p in metadata(survivors[0]).topics[topic2].partitions.values()}
            if topic2 in metadata(survivors[0]).topics else None))
        self.assertEqual(leaders, {x.node_id for x in survivors})
        # The killed node restarts from its snapshot and the quorum's log, and is registered (unfenced) again.
        victim.start()
        self.assertIn("metadata quorum: restored a snapshot", victim.log_text().split("---- start:")[-1])
        wait_for("restarted node catches up", lambda: (
            topic in metadata(victim).topics and topic2 in metadata(victim).topics
            and sorted(metadata(victim).brokers) == [1, 2, 3]), logs=self.logs)
        for n in cl.nodes:
            wait_for("node %d sees all brokers" % n.node_id, lambda: sorted(metadata(n).brokers) == [1, 2, 3])
        sys.stderr.write("\n[cluster] node %d killed: new controller %d after %.1fs\n" % (old, leader, elected))


if __name__ == "__main__":
    unittest.main()

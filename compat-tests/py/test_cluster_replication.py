"""Data replication in a three-node kbroker cluster (issue 17), driven by librdkafka (confluent-kafka): a topic of
replication factor 3 written by an idempotent acks=all producer ends up, batch for batch (same offsets, same
CRCs), in every replica's log on disk, as the followers fetch from the leader (Fetch with ReplicaState); a
follower killed with -9 leaves the ISR once fenced, so acks=all goes on, and catches up from its own log end when
it restarts; the high watermark waits for the in-sync replicas (consumers and acks=all alike).

kbroker only: the cluster is kbroker processes of the test's own (lib/cluster.py); the reference Kafka of the
harness is one node.
"""

import os
import signal
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
from wire import read_frame, request  # noqa: E402

sys.path.insert(0, HERE)
from test_cluster_quorum import raw_produce_error  # noqa: E402  (a batch whose partitionLeaderEpoch is -1)

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

WAIT = 40.0  # each wait polls its condition; generous for CI's shared cores
PARTS = 3


def metadata(node, timeout=10):
    return AdminClient({"bootstrap.servers": node.bootstrap}).list_topics(timeout=timeout)


def raw_init_producer_id(node):
    """InitProducerId v0 (idempotent: no transactional id) straight to node: (error code, producer id)."""
    with socket.create_connection((node.host, node.port), timeout=20) as s:
        s.sendall(request(22, 0, 5, struct.pack(">hi", -1, 30000)))
        r = read_frame(s)
    _, err, pid, _ = struct.unpack(">ihqh", r[4:4 + 16])  # after the correlation id
    return err, pid


def raw_replica_fetch(node, replica_id, topic, part, offset):
    """Fetch v11 naming replica_id (a follower's fetch before ReplicaState) of one partition at offset, no wait:
    the partition's error code."""
    body = struct.pack(">iiiibii", replica_id, 0, 1, 1 << 20, 0, 0, -1)
    body += struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic.encode()
    body += struct.pack(">i", 1) + struct.pack(">iiqqi", part, -1, offset, -1, 1 << 20)
    body += struct.pack(">i", 0) + struct.pack(">h", 0)  # no forgotten topics, rack ""
    with socket.create_connection((node.host, node.port), timeout=20) as s:
        s.sendall(request(1, 11, 7, body))
        r = read_frame(s)
    off = 4 + 4 + 2 + 4  # correlation id, throttle, error, session id
    (ntopics,) = struct.unpack_from(">i", r, off)
    assert ntopics == 1, ntopics
    (tlen,) = struct.unpack_from(">h", r, off + 4)
    off += 4 + 2 + tlen + 4  # the topic, its partition count
    pidx, err = struct.unpack_from(">ih", r, off)
    assert pidx == part, pidx
    return err


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


def raw_offset_for_leader_epoch(node, topic, partition, epoch, current_epoch=-1):
    """OffsetForLeaderEpoch v3 (as a consumer: replica id -1) straight to node: (error, leader epoch, end offset)."""
    t = topic.encode()
    body = struct.pack(">ii", -1, 1) + struct.pack(">h", len(t)) + t + struct.pack(">iiii", 1, partition,
                                                                                     current_epoch, epoch)
    with socket.create_connection((node.host, node.port), timeout=20) as s:
        s.sendall(request(23, 3, 7, body))
        r = read_frame(s)
    # correlation id, throttle, topics (1), name, partitions (1), then the entry
    off = 4 + 4 + 4
    (nl,) = struct.unpack_from(">h", r, off)
    off += 2 + nl + 4
    err, _part, e, end = struct.unpack_from(">hiiq", r, off)
    return err, e, end


def batch_epochs(node, topic, partition):
    """The partitionLeaderEpoch of every batch of node's replica, in offset order, from its segment files."""
    d = os.path.join(node.data_dir, "%s-%d" % (topic, partition))
    out = []
    for name in sorted(n for n in os.listdir(d) if n.endswith(".log")):
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        off = 0
        while off + 61 <= len(data):
            _base, length, epoch, magic = struct.unpack_from(">qiib", data, off)
            if length < 49 or magic != 2 or off + 12 + length > len(data):
                break
            out.append(epoch)
            off += 12 + length
    return out


@kbroker_only("a cluster of kbroker processes of the test's own")
class ClusterReplicationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3, shards=shards_from_env(),
                              extra_sets=["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500",
                                          "replica.socket.timeout.ms=1000"])
        cls.addClassCleanup(cls._stop)
        cls.cluster.start()
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

    def create_rf3(self, topic):
        a = AdminClient({"bootstrap.servers": self.cluster.bootstrap})
        a.create_topics([NewTopic(topic, PARTS, 3, config={"min.insync.replicas": "2"})],
                        operation_timeout=20)[topic].result(30)
        wait_for("%s on every node" % topic, lambda: all(
            topic in metadata(n).topics and len(metadata(n).topics[topic].partitions) == PARTS
            for n in self.cluster.nodes), logs=self.logs)

    def produce(self, topic, start, n):
        """n records per partition, values "<partition>-<i>" from i = start, idempotent acks=all; every one
        acknowledged."""
        p = Producer({"bootstrap.servers": self.cluster.bootstrap, "acks": "all", "enable.idempotence": True,
                      "linger.ms": 5, "message.timeout.ms": 30000})
        errors = []

        def cb(err, msg):
            if err:
                errors.append(err)
        for i in range(start, start + n):
            for part in range(PARTS):
                p.produce(topic, value=b"%d-%d" % (part, i), partition=part, on_delivery=cb)
            if i % 50 == 0:
                p.poll(0)
        self.assertEqual(p.flush(40), 0, "records not delivered\n" + self.logs())
        self.assertEqual(errors, [])

    def consume_all(self, topic, node=None):
        c = Consumer({"bootstrap.servers": node.bootstrap if node else self.cluster.bootstrap,
                      "group.id": uniq("read"), "enable.auto.commit": False, "enable.partition.eof": True,
                      "fetch.wait.max.ms": 100})
        got = {p: [] for p in range(PARTS)}
        try:
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTS)])
            eof = set()
            deadline = time.monotonic() + WAIT
            while len(eof) < PARTS and time.monotonic() < deadline:
                for m in c.consume(500, 0.5):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            eof.add(m.partition())
                        continue
                    got[m.partition()].append(m.value())
        finally:
            c.close()
        return got

    def assert_replicas_identical(self, topic, nodes):
        """Every partition's log is the same batches (offsets and CRCs) on each of nodes as on its leader."""
        md = metadata(nodes[0]).topics[topic]
        for part in range(PARTS):
            leader = self.cluster.node(md.partitions[part].leader)
            want = leader.partition_batches(topic, part)
            self.assertTrue(want, "partition %d: the leader's log is empty" % part)
            for n in nodes:
                wait_for("partition %d on node %d as on leader %d" % (part, n.node_id, leader.node_id),
                         lambda: n.partition_batches(topic, part) == leader.partition_batches(topic, part),
                         logs=self.logs)

    def test_followers_copy_the_leaders_log_and_a_killed_follower_catches_up(self):
        topic = uniq("repl")
        self.create_rf3(topic)
        md = metadata(self.cluster.node(1)).topics[topic]
        for p in md.partitions.values():
            self.assertEqual(sorted(p.replicas), [1, 2, 3])
            self.assertEqual(sorted(p.isrs), [1, 2, 3])
        self.produce(topic, 0, 200)
        self.assert_replicas_identical(topic, self.cluster.nodes)
        got = self.consume_all(topic)
        for p in range(PARTS):
            self.assertEqual(got[p], [b"%d-%d" % (p, i) for i in range(200)], "partition %d" % p)

        # A follower of partition 0 dies; the records that come meanwhile reach it after its restart, fetched
        # from where its own log ends.
        leader0 = md.partitions[0].leader
        victim = self.cluster.node(next(i for i in (1, 2, 3) if i != leader0
                                        and i != metadata(self.cluster.node(leader0)).controller_id))
        victim.kill9()
        survivors = [n for n in self.cluster.nodes if n is not victim]
        led_by_victim = [p for p in range(PARTS) if md.partitions[p].leader == victim.node_id]
        # Once fenced it leaves the ISR of the partitions it follows, so acks=all goes on there (min.insync 2).
        # Partitions the victim led wait for it (leader election is not built yet): write the others only.
        others = [p for p in range(PARTS) if p not in led_by_victim]
        wait_for("node %d out of the ISRs" % victim.node_id, lambda: all(
            victim.node_id not in metadata(survivors[0]).topics[topic].partitions[p].isrs for p in others),
            logs=self.logs)
        p = Producer({"bootstrap.servers": ",".join(n.bootstrap for n in survivors), "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5})
        errors = []
        for i in range(200, 300):
            for part in range(PARTS):
                if part not in led_by_victim:
                    p.produce(topic, value=b"%d-%d" % (part, i), partition=part,
                              on_delivery=lambda err, msg: err and errors.append(err))
        self.assertEqual(p.flush(40), 0, "records not delivered\n" + self.logs())
        self.assertEqual(errors, [])
        victim.start()
        wait_for("node %d back in the ISRs" % victim.node_id, lambda: all(
            sorted(pm.isrs) == [1, 2, 3] for pm in metadata(victim).topics[topic].partitions.values()),
            logs=self.logs)
        self.assert_replicas_identical(topic, self.cluster.nodes)
        for part in range(PARTS):
            if part not in led_by_victim:
                self.assertEqual(victim.partition_batches(topic, part)[-1][1], 299,
                                 "partition %d on the restarted node" % part)

    def test_leaders_stamp_their_epoch_and_answer_offset_for_leader_epoch(self):
        topic = uniq("epoch")
        self.create_rf3(topic)
        self.produce(topic, 0, 40)
        md = metadata(self.cluster.nodes[0]).topics[topic]
        for part in range(PARTS):
            # A batch stamped -1 by its producer (the Java client's NO_PARTITION_LEADER_EPOCH): the leader
            # overwrites it with its own epoch, as Kafka does.
            self.assertEqual(raw_produce_error(self.cluster.node(md.partitions[part].leader), topic, part), 0)
        self.assert_replicas_identical(topic, self.cluster.nodes)
        for part in range(PARTS):
            leader = self.cluster.node(md.partitions[part].leader)
            end = leader.partition_batches(topic, part)[-1][1] + 1
            for n in self.cluster.nodes:
                epochs = batch_epochs(n, topic, part)
                self.assertTrue(epochs and set(epochs) == {0}, "node %d: %r" % (n.node_id, epochs))
            # Kafka's endOffsetFor: the current epoch ends at the log end, a later one is unknown.
            self.assertEqual(raw_offset_for_leader_epoch(leader, topic, part, 0), (0, 0, end))
            self.assertEqual(raw_offset_for_leader_epoch(leader, topic, part, 1), (0, -1, -1))
            self.assertEqual(raw_offset_for_leader_epoch(leader, topic, part, 0, current_epoch=1)[0], 75,
                             "a newer current_leader_epoch: UNKNOWN_LEADER_EPOCH")

    def test_producer_ids_never_repeat_across_nodes(self):
        """Each node hands out producer ids of its own residue modulo the voters: two producers that got their
        ids from two nodes started in the same millisecond would otherwise share one, and the second would be
        refused (OUT_OF_ORDER_SEQUENCE_NUMBER) by every partition the first wrote to."""
        seen = set()
        for n in self.cluster.nodes:
            for _ in range(3):
                err, pid = raw_init_producer_id(n)
                self.assertEqual(err, 0)
                self.assertEqual(pid % 3, n.node_id - 1, "node %d" % n.node_id)
                self.assertNotIn(pid, seen)
                seen.add(pid)

    def test_stopped_leader_times_out_the_followers_fetch(self):
        """A leader that keeps its connections but never answers (SIGSTOP: as a half-open connection) does not leave
        its followers' fetch out forever: after replica.socket.timeout.ms (1 s here) plus the long poll they give
        up on the connection, before the controller fences the leader (3 s), and fetch again once it is back."""
        topic = uniq("stall")
        self.create_rf3(topic)
        self.produce(topic, 0, 5)
        leader = self.cluster.node(metadata(self.cluster.node(1)).topics[topic].partitions[0].leader)
        followers = [n for n in self.cluster.nodes if n is not leader]
        line = "leader %d at %s:%d: no answer within replica.socket.timeout.ms" % (
            leader.node_id, leader.host, leader.port)
        before = [n.log_text().count(line) for n in followers]
        leader.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for("a follower's fetch timed out", lambda: any(
                n.log_text().count(line) > b for n, b in zip(followers, before)), timeout=15, logs=self.logs)
        finally:
            leader.proc.send_signal(signal.SIGCONT)
        wait_for("all brokers registered and unfenced again",
                 lambda: all(sorted(metadata(n).brokers) == [1, 2, 3] for n in self.cluster.nodes), logs=self.logs)
        self.produce(topic, 5, 5)
        self.assert_replicas_identical(topic, self.cluster.nodes)

    def test_z_high_watermark_waits_for_the_in_sync_replicas(self):
        """With both followers of a partition down (its ISR unchanged: without a raft majority nobody is fenced) the leader
        still appends (acks=1) but its high watermark stays: consumers do not see the record and acks=all is not
        answered; once the followers are back they copy it, the high watermark passes it and it is read."""
        topic = uniq("hw")
        self.create_rf3(topic)
        self.produce(topic, 0, 10)
        md = metadata(self.cluster.node(1)).topics[topic]
        leader = self.cluster.node(md.partitions[0].leader)
        followers = [n for n in self.cluster.nodes if n is not leader]
        c = Consumer({"bootstrap.servers": leader.bootstrap, "group.id": uniq("wm")})
        try:
            wait_for("high watermark 10", lambda: c.get_watermark_offsets(TopicPartition(topic, 0), 5)[1] == 10)
            for n in followers:
                n.kill9()
            p1 = Producer({"bootstrap.servers": leader.bootstrap, "acks": "1"})
            done = []
            p1.produce(topic, value=b"0-10", partition=0, on_delivery=lambda err, msg: done.append((err, msg)))
            self.assertEqual(p1.flush(20), 0)
            self.assertIsNone(done[0][0])
            self.assertEqual(done[0][1].offset(), 10)  # in the leader's log
            pall = Producer({"bootstrap.servers": leader.bootstrap, "acks": "all", "message.timeout.ms": 3000,
                             "request.timeout.ms": 1000, "retries": 0})
            lost = []
            pall.produce(topic, value=b"0-11", partition=0, on_delivery=lambda err, msg: lost.append(err))
            pall.flush(20)
            self.assertEqual(len(lost), 1)
            self.assertIsNotNone(lost[0], "acks=all answered without the in-sync replicas")
            # The high watermark has not moved: consumers see the ten records the ISR has.
            self.assertEqual(c.get_watermark_offsets(TopicPartition(topic, 0), 5)[1], 10)
            # A follower's fetch past the leader's end is refused, as Kafka does, and is no copy: the high
            # watermark stays (it moved past the acks=1 record with no follower having it).
            for n in followers:
                self.assertEqual(raw_replica_fetch(leader, n.node_id, topic, 0, 1000), 1)  # OFFSET_OUT_OF_RANGE
            time.sleep(0.5)
            self.assertEqual(c.get_watermark_offsets(TopicPartition(topic, 0), 5)[1], 10)
            self.assertEqual(self.read_partition(leader, topic, 0), [b"0-%d" % i for i in range(10)])
            for n in followers:
                n.start()
            wait_for("high watermark past the acks=1 record",
                     lambda: c.get_watermark_offsets(TopicPartition(topic, 0), 5)[1] >= 11, logs=self.logs)
        finally:
            c.close()
        self.assertEqual(self.read_partition(leader, topic, 0)[:11], [b"0-%d" % i for i in range(11)])
        self.assert_replicas_identical(topic, self.cluster.nodes)

    def read_partition(self, node, topic, part):
        c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": uniq("one"), "enable.auto.commit": False,
                      "enable.partition.eof": True, "fetch.wait.max.ms": 100})
        out = []
        try:
            c.assign([TopicPartition(topic, part, OFFSET_BEGINNING)])
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        break
                    continue
                out.append(m.value())
        finally:
            c.close()
        return out


if __name__ == "__main__":
    unittest.main()

"""A broker under a low RLIMIT_NOFILE (256): thousands of partitions stay produce- and fetch-able (also after
a restart), a partition whose directory cannot be opened answers KAFKA_STORAGE_ERROR while the others work,
and more connections than descriptors neither flood the log, nor stop existing connections, nor take the
descriptors partitions need."""

import os
import re
import shutil
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from broker import Broker, shards_from_env  # noqa: E402
from common import uniq  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka.protocol.admin import ApiVersionRequest  # noqa: E402
from kafka.protocol.fetch import FetchRequest  # noqa: E402
from kafka.protocol.metadata import MetadataRequest  # noqa: E402
from kafka.protocol.parser import KafkaProtocol  # noqa: E402
from kafka.protocol.produce import ProduceRequest  # noqa: E402
from kafka.record.memory_records import MemoryRecordsBuilder  # noqa: E402

NOFILE = 256
NPARTS = 2000
STORAGE_ERROR = 56


class Raw:
    """One connection speaking the protocol through kafka-python's codecs, to see exact error codes."""

    def __init__(self, bootstrap):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=15)
        self.proto = KafkaProtocol(client_id="fd-limit-raw")

    def call(self, req):
        self.proto.send_request(req)
        self.sock.sendall(self.proto.send_bytes())
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                raise AssertionError("connection closed by the broker")
            got = self.proto.receive_bytes(data)
            if got:
                return got[0][1]

    def close(self):
        self.sock.close()


def one_batch(value):
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    b.append(timestamp=None, key=b"k", value=value, headers=[])
    b.close()
    return bytes(b.buffer())


def produce_each(bootstrap, topic, nparts, tag):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                  "message.timeout.ms": 30000})
    res = {}

    def dr(err, msg):
        res[msg.partition()] = (err, msg.offset())
    for i in range(nparts):
        p.produce(topic, value=b"%s-%d" % (tag, i), partition=i, on_delivery=dr)
    left = p.flush(60)
    return left, res


def read_each(bootstrap, topic, nparts, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uniq("unused"), "enable.auto.commit": False,
                  "enable.partition.eof": True, "fetch.wait.max.ms": 100})
    got = {}
    eof = set()
    try:
        c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(nparts)])
        deadline = time.monotonic() + timeout
        while len(eof) < nparts and time.monotonic() < deadline:
            for m in c.consume(10000, 0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise AssertionError("consume error: %s" % m.error())
                eof.discard(m.partition())
                got.setdefault(m.partition(), {})[m.offset()] = m.value()
    finally:
        c.close()
    return got, eof


class FdLimitTest(unittest.TestCase):
    broker = None

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(shards=shards_from_env(), nofile=NOFILE, ready_timeout=60)
        cls.addClassCleanup(cls._stop_broker)
        cls.broker.start()

    @classmethod
    def _stop_broker(cls):
        try:
            if cls.broker.running:
                cls.broker.stop(check=True, timeout=60)
        finally:
            cls.broker.cleanup()

    def create(self, topic, nparts):
        a = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        for f in a.create_topics([NewTopic(topic, nparts, 1)], operation_timeout=60).values():
            f.result(60)

    def test_limit_logged(self):
        pat = r"RLIMIT_NOFILE soft limit %d \(was %d\), hard limit %d" % (NOFILE, NOFILE, NOFILE)
        self.assertTrue(re.search(pat, self.broker.log_text()), "no line matching %r in the broker log" % pat)

    def test_many_partitions_under_low_limit(self):
        topic = uniq("fd-many")
        self.create(topic, NPARTS)
        left, res = produce_each(self.broker.bootstrap, topic, NPARTS, b"a")
        self.assertEqual(left, 0)
        bad = {p: r for p, r in res.items() if r[0] is not None or r[1] != 0}
        self.assertEqual(len(res), NPARTS)
        self.assertEqual(bad, {}, "failed or misplaced deliveries (first few): %s" % list(bad.items())[:5])
        got, eof = read_each(self.broker.bootstrap, topic, NPARTS)
        self.assertEqual(len(eof), NPARTS)
        self.assertEqual(got, {i: {0: b"a-%d" % i} for i in range(NPARTS)})

        # Same limit after a clean restart: every partition opens (files are reopened on demand), serves its
        # data and takes appends at the next offset.
        self.broker.restart(timeout=60)
        got, eof = read_each(self.broker.bootstrap, topic, NPARTS)
        self.assertEqual(len(eof), NPARTS)
        self.assertEqual(got, {i: {0: b"a-%d" % i} for i in range(NPARTS)})
        left, res = produce_each(self.broker.bootstrap, topic, NPARTS, b"b")
        self.assertEqual(left, 0)
        self.assertEqual({p: r for p, r in res.items() if r[0] is not None or r[1] != 1}, {})
        self.assertFalse("cannot open" in self.broker.log_text(), "a partition could not be opened")

    def test_unopenable_partition_is_storage_error(self):
        topic = uniq("fd-bad")
        self.create(topic, 3)
        left, res = produce_each(self.broker.bootstrap, topic, 3, b"x")
        self.assertEqual((left, [r[0] for r in res.values()]), (0, [None] * 3))
        self.broker.stop(timeout=60)
        # The partition's directory becomes a regular file: opening it fails even for root.
        d = os.path.join(self.broker.data_dir, "%s-1" % topic)
        shutil.rmtree(d)
        with open(d, "w") as f:
            f.write("not a partition directory\n")
        self.broker.start()
        pat = r"ERROR .*partition %s-1 is offline.*Not a directory" % topic
        self.assertTrue(re.search(pat, self.broker.log_text()), "no line matching %r in the broker log" % pat)

        raw = Raw(self.broker.bootstrap)
        try:
            md = raw.call(MetadataRequest[1](topics=[topic]))
            errs = {p[1]: p[0] for t in md.topics for p in t[3]}
            self.assertEqual(errs, {0: 0, 1: STORAGE_ERROR, 2: 0})
            batch = one_batch(b"after restart")
            pr = raw.call(ProduceRequest[3](transactional_id=None, required_acks=-1, timeout=5000,
                                            topics=[(topic, [(0, batch), (1, batch), (2, batch)])]))
            perr = {p[0]: (p[1], p[2]) for t in pr.topics for p in t[1]}
            self.assertEqual(perr, {0: (0, 1), 1: (STORAGE_ERROR, -1), 2: (0, 1)})
            fr = raw.call(FetchRequest[4](replica_id=-1, max_wait_time=100, min_bytes=1, max_bytes=1 << 20,
                                          isolation_level=0,
                                          topics=[(topic, [(0, 0, 1 << 20), (1, 0, 1 << 20), (2, 0, 1 << 20)])]))
            ferr = {x[0]: x[1] for t in fr.topics for x in t[1]}
            self.assertEqual(ferr, {0: 0, 1: STORAGE_ERROR, 2: 0})
        finally:
            raw.close()
        got, eof = read_each(self.broker.bootstrap, topic, 1)
        self.assertEqual(got, {0: {0: b"x-0", 1: b"after restart"}})
        # Put the directory back so the class's final stop is an ordinary one.
        self.broker.stop(timeout=60)
        os.unlink(d)
        self.broker.start()

    def test_accept_without_descriptors(self):
        bs = self.broker.bootstrap
        host, port = bs.rsplit(":", 1)
        keep = Raw(bs)
        keep.call(ApiVersionRequest[0]())
        def refusals():
            t = self.broker.log_text()
            return t.count("accept failed") + t.count("closing new connections")
        before = refusals()
        extra = []
        try:
            # More connections than the broker has descriptors for: it refuses them (closes them at once,
            # keeping the descriptors its partitions need; or accept() fails with EMFILE and the rest wait
            # in the listen backlog -- their connect() succeeds either way).
            for _ in range(NOFILE + 64):
                extra.append(socket.create_connection((host, int(port)), timeout=5))
            deadline = time.monotonic() + 10
            while refusals() == before and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertGreater(refusals(), before, "no refused connection logged")
            # The broker keeps serving the connection it has, promptly, for a while.
            t0 = time.monotonic()
            for _ in range(20):
                keep.call(ApiVersionRequest[0]())
                time.sleep(0.05)
            self.assertLess(time.monotonic() - t0, 10)
            # Rate-limited (one line per listener and shard per 10 s): a spinning accept loop logs a line per
            # attempt, millions in this time.
            self.assertLessEqual(refusals() - before, 4 * self.broker.shards)
        finally:
            for s in extra:
                s.close()
            keep.close()
        # Descriptors are back: new clients connect and work.
        deadline = time.monotonic() + 15
        while True:
            try:
                r = Raw(bs)
                r.call(ApiVersionRequest[0]())
                r.close()
                break
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


if __name__ == "__main__":
    unittest.main()

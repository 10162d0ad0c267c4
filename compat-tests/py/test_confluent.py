"""confluent-kafka-python (librdkafka) against kbroker: idempotent bulk produce, assign()-based
consume without consumer-group coordination, AdminClient topic management, offsets_for_times."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import BrokerTestCase, uniq  # noqa: E402

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,  # noqa: E402
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

N_MSGS = int(os.environ.get("KB_CONFLUENT_N", "100000"))
NPART = 6


def consume_assigned(bootstrap, topic, partitions, expect_total, timeout=60.0, extra=None):
    """Read every partition from the beginning with assign() (no subscribe, no commits)."""
    conf = {"bootstrap.servers": bootstrap, "group.id": uniq("unused-group"),
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": True,
            "fetch.wait.max.ms": 100}
    conf.update(extra or {})
    c = Consumer(conf)
    errors = []
    got = {p: [] for p in partitions}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        eof = set()
        n = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (n < expect_total or len(eof) < len(partitions)):
            batch = c.consume(10000, 0.5)
            for m in batch:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                    else:
                        errors.append(m.error())
                    continue
                eof.discard(m.partition())
                got[m.partition()].append((m.offset(), m.key(), m.value(), m.headers(), m.timestamp()))
                n += 1
    finally:
        c.close()
    return got, errors


def wait_partitions(admin, topic, timeout=10.0):
    """The topic's partitions once each has a leader (bounded). Kafka answers CreateTopics before the new
    partitions are in its metadata: seen with 4.4.0, the topic listed with 0 partitions just after."""
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic, timeout=10)
        parts = md.topics[topic].partitions if topic in md.topics else {}
        if (parts and all(p.leader >= 0 for p in parts.values())) or time.monotonic() > deadline:
            return parts
        time.sleep(0.1)


class ConfluentTest(BrokerTestCase):
    def admin(self):
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create(self, topic, partitions, **kw):
        a = self.admin()  # keep a reference: the futures die with the handle
        fs = a.create_topics([NewTopic(topic, partitions, 1)], request_timeout=15, **kw)
        fs[topic].result(15)

    def test_idempotent_bulk_produce_and_assign_consume(self):
        topic = uniq("ck-bulk")
        self.create(topic, NPART)
        acked = {}
        errs = []

        def dr(err, msg):
            if err is not None:
                errs.append(err)
            else:
                acked[(msg.partition(), msg.offset())] = msg.key()

        p = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all",
                      "linger.ms": 5, "compression.type": "zstd", "batch.num.messages": 5000,
                      "queue.buffering.max.messages": 200000})
        t0 = time.monotonic()
        for i in range(N_MSGS):
            k = b"key-%d" % (i % 997)
            p.produce(topic, key=k, value=b"val-%08d" % i,
                      headers=[("seq", b"%d" % i), ("src", b"confluent")], on_delivery=dr)
            if i % 10000 == 0:
                p.poll(0)
        remaining = p.flush(60)
        self.assertEqual(remaining, 0, "messages still queued after flush")
        self.assertEqual(errs, [])
        self.assertEqual(len(acked), N_MSGS, "acknowledged distinct (partition, offset) pairs")
        produce_s = time.monotonic() - t0

        got, cerrs = consume_assigned(self.bootstrap, topic, list(range(NPART)), N_MSGS)
        self.assertEqual(cerrs, [])
        total = sum(len(v) for v in got.values())
        self.assertEqual(total, N_MSGS)
        seen = set()
        for part, msgs in got.items():
            offs = [m[0] for m in msgs]
            self.assertEqual(offs, list(range(len(msgs))), "partition %d offsets not dense 0..n-1" % part)
            last_seq_per_key = {}
            for off, key, val, hdrs, ts in msgs:
                i = int(val[4:])
                self.assertEqual(hdrs, [("seq", b"%d" % i), ("src", b"confluent")])
                self.assertEqual(key, b"key-%d" % (i % 997))
                self.assertEqual(acked[(part, off)], key, "acked offset maps to a different key")
                # Same key -> same partition, in production order.
                self.assertGreater(i, last_seq_per_key.get(key, -1))
                last_seq_per_key[key] = i
                seen.add(i)
        self.assertEqual(len(seen), N_MSGS, "duplicates or losses")
        self.assertGreater(sum(1 for v in got.values() if v), 1, "keys all landed in one partition")
        print("\n  produced %d idempotent msgs in %.1fs" % (N_MSGS, produce_s))

    def test_consumer_with_group_id_does_not_need_coordinator(self):
        # assign() + group.id + no commits: librdkafka may still look up the coordinator
        # (FindCoordinator, which kbroker does not implement); consuming must still work.
        topic = uniq("ck-grp")
        p = Producer({"bootstrap.servers": self.bootstrap})
        for i in range(10):
            p.produce(topic, value=b"%d" % i)
        self.assertEqual(p.flush(15), 0)
        got, errs = consume_assigned(self.bootstrap, topic, [0], 10, timeout=20)
        self.assertEqual([m[2] for m in got[0]], [b"%d" % i for i in range(10)])
        self.assertEqual(errs, [])

    def test_long_poll_fetch_wakes_on_produce(self):
        # A consumer parked at the end of the log (long-poll Fetch) must see a new record promptly,
        # not only after fetch.wait.max.ms expires.
        topic = uniq("ck-lp")
        self.create(topic, 1)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("unused"), "enable.auto.commit": False,
                      "fetch.wait.max.ms": 5000})
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 0})
        try:
            p.produce(topic, value=b"first")
            self.assertEqual(p.flush(10), 0)
            c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            # Consume "first" so the consumer sits at the end of the log.
            deadline = time.monotonic() + 10
            first = None
            while time.monotonic() < deadline and first is None:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    first = m.value()
            self.assertEqual(first, b"first")
            time.sleep(0.3)  # let the next long-poll Fetch park on the broker
            t0 = time.monotonic()
            p.produce(topic, value=b"wake")
            self.assertEqual(p.flush(10), 0)
            got = None
            while time.monotonic() - t0 < 10 and got is None:
                m = c.poll(0.1)
                if m is not None and not m.error():
                    got = m
            latency = time.monotonic() - t0
            print("\n  long-poll wake latency %.3fs" % latency)
            self.assertIsNotNone(got, "record never arrived")
            self.assertEqual(got.value(), b"wake")
            self.assertLess(latency, 2.5, "parked Fetch (max wait 5s) was not woken by the produce")
        finally:
            c.close()

    def test_acks_0_and_1(self):
        topic = uniq("ck-acks")
        # acks=0 has nobody to tell about a partition without a leader yet: with an auto-created topic
        # the 1000 acks=0 records were not the first on Kafka 4.4.0 (2 runs in 4). Create it first.
        self.create(topic, 1)
        wait_partitions(self.admin(), topic)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("unused"), "enable.auto.commit": False})
        try:
            for acks in ("0", "1"):
                p = Producer({"bootstrap.servers": self.bootstrap, "acks": acks, "linger.ms": 1})
                for i in range(1000):
                    p.produce(topic, value=b"a%s-%d" % (acks.encode(), i))
                self.assertEqual(p.flush(15), 0)
                # An acks=0 flush() returns once the bytes are sent, not appended: on Kafka 4.4.0 the acks=1
                # producer's records (another connection) came before some acks=0 ones in 2 runs of 10.
                # Two producers have no order between them; wait for the first's records to land.
                deadline = time.monotonic() + 10
                while (c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1] < 1000
                       and time.monotonic() < deadline):
                    time.sleep(0.05)
        finally:
            c.close()
        got, errs = consume_assigned(self.bootstrap, topic, [0], 2000, timeout=20)
        self.assertEqual(errs, [])
        self.assertEqual([m[2] for m in got[0]], [b"a0-%d" % i for i in range(1000)] + [b"a1-%d" % i for i in range(1000)])

    def test_admin_create_list_delete(self):
        a = self.admin()
        t1, t2 = uniq("ck-adm"), uniq("ck-adm")
        fs = a.create_topics([NewTopic(t1, 3, 1), NewTopic(t2, 1, 1)], request_timeout=15)
        for t, f in fs.items():
            self.assertIsNone(f.result(15))
        self.assertEqual(len(wait_partitions(a, t1)), 3)
        self.assertEqual(len(wait_partitions(a, t2)), 1)
        md = a.list_topics(timeout=10)
        self.assertIn(t1, md.topics)
        self.assertEqual(list(md.brokers.keys()), [1])
        self.assertEqual(md.topics[t1].partitions[0].leader, 1)
        # Creating it again: TOPIC_ALREADY_EXISTS.
        with self.assertRaises(KafkaException) as cm:
            a.create_topics([NewTopic(t1, 3, 1)], request_timeout=15)[t1].result(15)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS)
        fs = a.delete_topics([t1, t2], request_timeout=15)
        for t, f in fs.items():
            self.assertIsNone(f.result(15))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            md = a.list_topics(timeout=10)
            if t1 not in md.topics and t2 not in md.topics:
                break
            time.sleep(0.2)
        self.assertNotIn(t1, md.topics)
        self.assertNotIn(t2, md.topics)
        # Deleting an unknown topic.
        with self.assertRaises(KafkaException) as cm:
            a.delete_topics([t1], request_timeout=15)[t1].result(15)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.UNKNOWN_TOPIC_OR_PART)

    def test_recreate_deleted_topic_starts_empty(self):
        a = self.admin()
        t = uniq("ck-recreate")
        a.create_topics([NewTopic(t, 2, 1)])[t].result(15)
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all"})
        for i in range(10):
            p.produce(t, value=b"old-%d" % i, partition=i % 2)
        self.assertEqual(p.flush(10), 0)
        a.delete_topics([t])[t].result(15)
        deadline = time.monotonic() + 10
        while True:
            try:
                a.create_topics([NewTopic(t, 1, 1)])[t].result(15)
                break
            except KafkaException as e:
                # Kafka may briefly answer TOPIC_ALREADY_EXISTS while the deletion completes.
                if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.assertEqual(len(wait_partitions(a, t)), 1)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("unused"), "enable.auto.commit": False})
        try:
            self.assertEqual(c.get_watermark_offsets(TopicPartition(t, 0), timeout=10), (0, 0),
                             "re-created topic still has the deleted topic's records")
        finally:
            c.close()
        # The producer saw the topic deleted: librdkafka refuses at once (_UNKNOWN_TOPIC) until its metadata
        # shows the new topic, which a loaded Kafka may take a moment to serve.
        deadline = time.monotonic() + 15
        while True:
            try:
                p.produce(t, value=b"new", partition=0)
                break
            except KafkaException as e:
                if e.args[0].code() != KafkaError._UNKNOWN_TOPIC or time.monotonic() > deadline:
                    raise
                p.poll(0.2)
        self.assertEqual(p.flush(10), 0)
        got, errs = consume_assigned(self.bootstrap, t, [0], 1, timeout=10)
        self.assertEqual([(m[0], m[2]) for m in got[0]], [(0, b"new")])

    def test_admin_validate_only_and_errors(self):
        a = self.admin()
        t = uniq("ck-val")
        self.assertIsNone(a.create_topics([NewTopic(t, 2, 1)], validate_only=True, request_timeout=15)[t].result(15))
        md = a.list_topics(topic=None, timeout=10)
        self.assertNotIn(t, md.topics, "validate_only created the topic")
        with self.assertRaises(KafkaException) as cm:
            a.create_topics([NewTopic("bad/name!", 1, 1)], request_timeout=15)["bad/name!"].result(15)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.TOPIC_EXCEPTION)
        bad = uniq("ck-badp")
        # librdkafka validates num_partitions < 1 client-side; 0 is sent? -1 means broker default.
        with self.assertRaises((KafkaException, ValueError)) as cm:
            a.create_topics([NewTopic(bad, 0, 1)], request_timeout=15)[bad].result(15)
        if isinstance(cm.exception, KafkaException):
            self.assertEqual(cm.exception.args[0].code(), KafkaError.INVALID_PARTITIONS)
        rf = uniq("ck-badrf")
        with self.assertRaises(KafkaException) as cm:
            a.create_topics([NewTopic(rf, 1, 3)], request_timeout=15)[rf].result(15)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.INVALID_REPLICATION_FACTOR)
        md = a.list_topics(timeout=10)
        self.assertNotIn(bad, md.topics)
        self.assertNotIn(rf, md.topics)

    def test_offsets_for_times(self):
        topic = uniq("ck-ts")
        self.create(topic, 1)
        base = int(time.time() * 1000) - 100000
        p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0})
        for i in range(20):
            p.produce(topic, value=b"v%d" % i, timestamp=base + i * 1000)
            if i % 5 == 4:
                p.flush(10)  # several batches
        self.assertEqual(p.flush(10), 0)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("unused"),
                      "enable.auto.commit": False})
        try:
            def lookup(ts):
                r = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
                self.assertIsNone(r[0].error)
                return r[0].offset
            self.assertEqual(lookup(base - 5000), 0)
            self.assertEqual(lookup(base), 0)
            self.assertEqual(lookup(base + 1), 1)
            self.assertEqual(lookup(base + 7000), 7)
            self.assertEqual(lookup(base + 7500), 8)
            self.assertEqual(lookup(base + 19000), 19)
            self.assertEqual(lookup(base + 19001), -1)  # past the last record: no offset (OFFSET_END)
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
            self.assertEqual((lo, hi), (0, 20))
            # Consume from the looked-up offset and check the timestamp matches.
            off = lookup(base + 12000)
            c.assign([TopicPartition(topic, 0, off)])
            m = c.poll(10)
            self.assertIsNotNone(m)
            self.assertIsNone(m.error())
            self.assertEqual((m.offset(), m.value(), m.timestamp()[1]), (12, b"v12", base + 12000))
        finally:
            c.close()


    def test_topic_compression_type_recompresses(self):
        """A topic's compression.type other than 'producer' is applied to what is
        stored, as in Kafka; consumers see the same records either way."""
        import glob
        import struct
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        topics = {"zstd": (uniq("cf-zstd"), 4), "uncompressed": (uniq("cf-plain"), 0)}
        fs = admin.create_topics([NewTopic(t, 1, 1, config={"compression.type": ct})
                                  for ct, (t, _) in topics.items()])
        for f in fs.values():
            f.result(10)
        p = Producer({"bootstrap.servers": self.bootstrap, "compression.type": "gzip", "linger.ms": 50})
        for t, _ in topics.values():
            for i in range(300):
                p.produce(t, key=b"k%d" % i, value=b"value-value-value-%d" % i, headers=[("h", b"%d" % i)])
        self.assertEqual(p.flush(15), 0)
        for t, codec in topics.values():
            seg = sorted(glob.glob(os.path.join(self.broker.data_dir, "%s-0" % t, "*.log")))[0]
            with open(seg, "rb") as fh:
                head = fh.read(23)
            self.assertEqual(struct.unpack(">h", head[21:23])[0] & 7, codec, t)
            c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("g"), "enable.auto.commit": False})
            c.assign([TopicPartition(t, 0, OFFSET_BEGINNING)])
            got = []
            deadline = time.monotonic() + 20
            while len(got) < 300 and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.append((m.key(), m.value(), m.headers()))
            c.close()
            self.assertEqual(got, [(b"k%d" % i, b"value-value-value-%d" % i, [("h", b"%d" % i)]) for i in range(300)])

if __name__ == "__main__":
    unittest.main()

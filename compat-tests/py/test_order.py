"""Record order under backpressure: producers with many requests in flight push large records to one
partition faster than the log syncs them. Every acknowledged record must sit in the log in the order the
producer sent it (the broker waits instead of answering a retriable error that the client would retry
after later requests were appended)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import BrokerTestCase, uniq  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

# The scenario, scaled to keep the test short: small records first, then records large enough
# that a few requests in flight exceed the log's unflushed-bytes budget (8 MiB).
N_SMALL = int(os.environ.get("KB_ORDER_SMALL", "500"))
N_LARGE = int(os.environ.get("KB_ORDER_LARGE", "300"))
SMALL = 10 * 1000
LARGE = 500 * 1000


def payload(i):
    size = SMALL if i < N_SMALL else LARGE
    head = b"%08d|" % i
    return head + b"x" * (size - len(head))


def read_keys(bootstrap, topic, expect, timeout=90.0):
    """(offset, key) of every record of partition 0, read with a client fetch limit below the large
    records' size (the consumer of the issue), so any gap or reordering shows."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uniq("order-reader"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True, "fetch.message.max.bytes": 100000,
                  "fetch.wait.max.ms": 100})
    out = []
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        eof = False
        while time.monotonic() < deadline and (len(out) < expect or not eof):
            for m in c.consume(100, 0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof = True
                        continue
                    raise AssertionError("consume error: %s" % m.error())
                eof = False
                out.append((m.offset(), m.key()))
    finally:
        c.close()
    return out


class OrderUnderBackpressureTest(BrokerTestCase):
    def create(self, topic):
        a = AdminClient({"bootstrap.servers": self.bootstrap})
        a.create_topics([NewTopic(topic, 1, 1)], request_timeout=15)[topic].result(15)
        # Kafka answers CreateTopics before its partition leader serves the partition; a first produce in
        # that window fails and, without idempotence, its retry lands after later records (Kafka reorders
        # too). This test is about backpressure: start once a ListOffsets of the partition is answered.
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uniq("order-probe")})
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            c.close()

    def check_log(self, topic, acked):
        n = N_SMALL + N_LARGE
        self.assertEqual(len(acked), n, "every record must be acknowledged")
        got = read_keys(self.bootstrap, topic, n)
        self.assertEqual(len(got), n, "read back %d of %d records" % (len(got), n))
        wrong = [(off, key) for i, (off, key) in enumerate(got) if key != b"%d" % i or off != i]
        self.assertEqual(wrong[:10], [], "%d of %d records out of place (offset, key)" % (len(wrong), n))
        # The offsets the producer was told are the ones the records have.
        bad_acks = [(k, off) for k, off in acked.items() if off != int(k)]
        self.assertEqual(bad_acks[:10], [], "delivery reports disagree with the log")

    def produce_confluent(self, topic, conf):
        acked, errs = {}, []

        def dr(err, msg):
            if err is not None:
                errs.append(err)
            else:
                acked[msg.key()] = msg.offset()

        base = {"bootstrap.servers": self.bootstrap, "linger.ms": 5, "message.max.bytes": 1000000,
                "queue.buffering.max.kbytes": 1048576, "queue.buffering.max.messages": 100000}
        base.update(conf)
        p = Producer(base)
        for i in range(N_SMALL + N_LARGE):
            while True:
                try:
                    p.produce(topic, key=b"%d" % i, value=payload(i), partition=0, on_delivery=dr)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        self.assertEqual(p.flush(120), 0, "producer did not drain")
        self.assertEqual(errs, [])
        return acked

    def test_confluent_default_producer_keeps_order(self):
        """librdkafka's defaults: no idempotence, up to 1,000,000 requests in flight, retries on."""
        topic = uniq("order-ck")
        self.create(topic)
        acked = self.produce_confluent(topic, {"acks": "all"})
        self.check_log(topic, {k.decode(): v for k, v in acked.items()})

    def test_confluent_acks1_keeps_order(self):
        topic = uniq("order-ck1")
        self.create(topic)
        acked = self.produce_confluent(topic, {"acks": "1"})
        self.check_log(topic, {k.decode(): v for k, v in acked.items()})

    def test_confluent_idempotent_keeps_order(self):
        topic = uniq("order-ckidem")
        self.create(topic)
        acked = self.produce_confluent(topic, {"enable.idempotence": True, "acks": "all"})
        self.check_log(topic, {k.decode(): v for k, v in acked.items()})

    def test_kafka_python_in_flight_keeps_order(self):
        """kafka-python, non-idempotent, five requests in flight per connection."""
        from kafka import KafkaProducer
        topic = uniq("order-kp")
        self.create(topic)
        p = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, retries=5,
                          max_in_flight_requests_per_connection=5, max_request_size=1048576,
                          buffer_memory=256 * 1024 * 1024, request_timeout_ms=60000,
                          api_version_auto_timeout_ms=10000)
        futs = []
        try:
            for i in range(N_SMALL + N_LARGE):
                futs.append((i, p.send(topic, key=b"%d" % i, value=payload(i), partition=0)))
            p.flush(120)
            acked = {}
            for i, f in futs:
                md = f.get(timeout=60)
                acked[str(i)] = md.offset
        finally:
            p.close(10)
        self.check_log(topic, acked)


if __name__ == "__main__":
    unittest.main()

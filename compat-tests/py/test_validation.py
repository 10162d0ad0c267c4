"""Produce-time record validation seen by real clients, as Apache Kafka answers (checked against
Kafka 4.1): confluent-kafka gets INVALID_RECORD for a keyless record on a compacted topic,
INVALID_TIMESTAMP for a record older than message.timestamp.before.max.ms and
MSG_SIZE_TOO_LARGE for a batch over max.message.bytes (even one the topic's compression.type would
shrink below it); kafka-python sees the broker's
LogAppendTime in the produce answer of a LogAppendTime topic."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import BrokerTestCase, uniq  # noqa: E402

from confluent_kafka import KafkaError, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka import KafkaProducer  # noqa: E402


class ValidationTest(BrokerTestCase):
    def create(self, topic, config):
        a = AdminClient({"bootstrap.servers": self.bootstrap})
        fs = a.create_topics([NewTopic(topic, 1, 1, config=config)], request_timeout=15)
        fs[topic].result(15)

    def deliver(self, topic, records, **conf):
        """Produces (key, value, timestamp_ms) records one batch each; returns per-record
        (error code or None, offset)."""
        c = {"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 0,
             "compression.type": "none", "retries": 0, "message.timeout.ms": 15000}
        c.update(conf)
        p = Producer(c)
        out = []

        def dr(err, msg):
            out.append((err.code() if err is not None else None, msg.offset()))

        for key, value, ts in records:
            p.produce(topic, key=key, value=value, timestamp=ts or 0, on_delivery=dr)
            self.assertEqual(p.flush(20), 0, "delivery reports missing")
        return out

    def test_keyless_record_on_compacted_topic(self):
        topic = uniq("val-compact")
        self.create(topic, {"cleanup.policy": "compact"})
        got = self.deliver(topic, [(None, b"no key", None), (b"k", b"keyed", None)])
        self.assertEqual(got[0][0], KafkaError.INVALID_RECORD)
        self.assertEqual(got[1], (None, 0))  # the refused record took no offset

    def test_record_older_than_before_max_ms(self):
        topic = uniq("val-ts")
        self.create(topic, {"message.timestamp.before.max.ms": "3600000"})
        now = int(time.time() * 1000)
        got = self.deliver(topic, [(b"k", b"old", now - 2 * 3600 * 1000), (b"k", b"fresh", now)])
        self.assertEqual(got[0][0], KafkaError.INVALID_TIMESTAMP)
        self.assertEqual(got[1], (None, 0))

    def test_batch_over_max_message_bytes(self):
        # The produced batch's size counts, before the topic's compression.type would shrink it.
        topic = uniq("val-size")
        self.create(topic, {"max.message.bytes": "10000", "compression.type": "gzip"})
        got = self.deliver(topic, [(b"k", b"x" * 20000, None), (b"k", b"x" * 1000, None)])
        self.assertEqual(got[0][0], KafkaError.MSG_SIZE_TOO_LARGE)
        self.assertEqual(got[1], (None, 0))

    def test_log_append_time_in_produce_answer(self):
        topic = uniq("val-lat")
        self.create(topic, {"message.timestamp.type": "LogAppendTime"})
        p = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", api_version=(2, 0, 0))
        try:
            t0 = int(time.time() * 1000)
            md = p.send(topic, key=b"k", value=b"v", timestamp_ms=1000).get(timeout=20)
            t1 = int(time.time() * 1000)
        finally:
            p.close(5)
        # kafka-python reports the broker's log_append_time_ms when the answer carries one.
        self.assertGreaterEqual(md.timestamp, t0)
        self.assertLessEqual(md.timestamp, t1)


if __name__ == "__main__":
    unittest.main()

"""kcat (Debian's librdkafka) against kbroker: metadata, produce/consume with keys, headers, codecs."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import BrokerTestCase, uniq  # noqa: E402

FMT = "%k|%s|%h|%p|%o\\n"


def records(n, tag):
    # Values are compressible (repetitive) so librdkafka keeps the compressed form.
    return [("key-%d" % i, "%s-value-%05d-" % (tag, i) + "abcdefgh" * 20) for i in range(n)]


class KcatTest(BrokerTestCase):
    def test_metadata_lists_broker_and_autocreated_topic(self):
        topic = uniq("kcat-meta")
        # Produce one message: Metadata auto-creates the topic.
        self.kcat("-P", "-t", topic, input=b"hello\n")
        out = self.kcat("-L").stdout.decode()
        self.assertIn("1 brokers:", out)
        self.assertRegex(out, r"broker 1 at 127\.0\.0\.1:%d" % self.broker.port)
        self.assertRegex(out, r'topic "%s" with 1 partitions:' % re.escape(topic))
        self.assertRegex(out, r"partition 0, leader 1, replicas: 1, isrs: 1")
        out = self.kcat("-L", "-t", topic).stdout.decode()
        self.assertIn('topic "%s"' % topic, out)

    def _roundtrip(self, codec):
        topic = uniq("kcat-" + codec)
        recs = records(300, codec)
        payload = "".join("%s\t%s\n" % kv for kv in recs).encode()
        p = self.kcat("-P", "-t", topic, "-p", "0", "-K", "\t", "-z", codec,
                      "-H", "h1=one", "-H", "hdr-two=2", "-X", "debug=msg", "-X", "linger.ms=50",
                      input=payload)
        dbg = p.stderr.decode(errors="replace")
        self.assertNotRegex(dbg, r"(?i)delivery failed|error")
        out = self.kcat("-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-f", FMT).stdout.decode()
        lines = out.splitlines()
        expect = ["%s|%s|h1=one,hdr-two=2|0|%d" % (k, v, i) for i, (k, v) in enumerate(recs)]
        self.assertEqual(len(lines), len(expect), "record count for codec %s" % codec)
        self.assertEqual(lines, expect)
        sent = re.findall(r"Produce MessageSet with \d+ message\(s\) \(.*?, (\w+)\)", dbg)
        not_supported = "Broker does not support compression type %s" % codec in dbg
        return sent, not_supported

    def test_roundtrip_none(self):
        sent, _ = self._roundtrip("none")
        self.assertTrue(sent and all(s == "uncompressed" for s in sent), sent)

    def test_roundtrip_zstd(self):
        sent, ns = self._roundtrip("zstd")
        self.assertFalse(ns, "librdkafka decided the broker does not support zstd")
        self.assertIn("zstd", sent, "librdkafka did not send any zstd batch: %s" % sent)

    def _legacy_codec(self, codec):
        # Debian's librdkafka 2.0.2 gates gzip/snappy on Produce v2 + Fetch v2 and
        # lz4 on FindCoordinator v0 being advertised; without them it silently
        # sends uncompressed. The broker advertises them (as Kafka 3.9 does).
        sent, ns = self._roundtrip(codec)
        self.assertFalse(ns, "librdkafka decided the broker does not support %s" % codec)
        self.assertIn(codec, sent, "batches: %s" % sent)

    def test_roundtrip_gzip(self):
        self._legacy_codec("gzip")

    def test_roundtrip_snappy(self):
        self._legacy_codec("snappy")

    def test_roundtrip_lz4(self):
        self._legacy_codec("lz4")

    def test_repeated_and_empty_headers_and_empty_key(self):
        topic = uniq("kcat-hdr")
        self.kcat("-P", "-t", topic, "-p", "0", "-K", ":", "-H", "a=1", "-H", "a=2", "-H", "empty=",
                  input=b"k1:v1\nk2:v2\n:nokey\n")
        out = self.kcat("-C", "-t", topic, "-o", "beginning", "-e", "-f", FMT).stdout.decode().splitlines()
        self.assertEqual(out, ["k1|v1|a=1,a=2,empty=|0|0", "k2|v2|a=1,a=2,empty=|0|1",
                               "|nokey|a=1,a=2,empty=|0|2"])

    def test_consume_from_offset_and_count(self):
        topic = uniq("kcat-off")
        self.kcat("-P", "-t", topic, input="".join("m%d\n" % i for i in range(50)).encode())
        out = self.kcat("-C", "-t", topic, "-o", "42", "-c", "5", "-f", "%o:%s\\n").stdout.decode().splitlines()
        self.assertEqual(out, ["%d:m%d" % (i, i) for i in range(42, 47)])
        out = self.kcat("-C", "-t", topic, "-o", "-3", "-e", "-f", "%o:%s\\n").stdout.decode().splitlines()
        self.assertEqual(out, ["%d:m%d" % (i, i) for i in range(47, 50)])


if __name__ == "__main__":
    unittest.main()

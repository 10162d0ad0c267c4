"""Share groups' metrics on kbroker's /metrics (kbroker only: Kafka has no such endpoint).

Owns: the checks of kbroker_share_group_members and kbroker_share_partition_* after a known sequence of raw
share requests. Must not: depend on another test's topics or groups.

One member acquires ten records, ACCEPTs four, RELEASEs two, REJECTs one and keeps three; the two released come
back with delivery count 2 (two redeliveries) and are released again, which archives them at the delivery limit
(2 here). The scrape must then show every figure: acknowledgements by type, redeliveries, records in flight,
archived at the limit, the start offset and the lag as DescribeShareGroupOffsets v1 computes it. Two groups on
the same topic with 1 and 2 shards, so that the lag joins a share-partition and a high watermark kept by
different shards in most runs."""

import os
import re
import socket
import sys
import time
import unittest
import urllib.request

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
sys.path.insert(0, _HERE)
import kwire  # noqa: E402
from broker import Broker  # noqa: E402
from common import kbroker_only, uniq  # noqa: E402
from test_share_groups import acquired, create_topic, heartbeat, join, produce, share_ack, share_fetch  # noqa: E402

ACCEPT, RELEASE, REJECT = 1, 2, 3
LINE = re.compile(r'^(kbroker_share_[a-z_]+)\{(.*)\} (-?\d+)$', re.M)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    out = {}
    for name, labels, value in LINE.findall(text):
        out[(name, labels)] = int(value)
    return out, text


@kbroker_only("kbroker's /metrics endpoint")
class ShareMetricsTest(unittest.TestCase):
    def run_shards(self, shards):
        mport = free_port()
        b = Broker(shards=shards, extra_sets=["metrics.port=%d" % mport,
                                              "group.share.delivery.count.limit=2"])
        self.addCleanup(b.cleanup)
        b.start()
        c = kwire.Conn(b.bootstrap, client_id="share-metrics")
        self.addCleanup(c.close)
        topic = uniq("shm")
        tid = create_topic(c, topic, 1)
        want = {}
        for g in range(2):
            group = uniq("shmg%d" % g)
            member, mepoch = join(c, group, topic)
            base = g * 10
            # The share-partition starts at the end once a fetch found the partition.
            sepoch = 0
            while not self.started(c, group):
                self.assertEqual(share_fetch(c, group, member, sepoch, tid, wait_ms=100)["ErrorCode"], 0)
                sepoch += 1
                self.assertLess(sepoch, 50, "share-partition never initialised")
            produce(c, topic, [b"v%d" % i for i in range(10)])
            r = share_fetch(c, group, member, sepoch, tid, wait_ms=2000, max_records=10)
            self.assertEqual(acquired(r), [(base, base + 9, 1)], r)
            r = share_ack(c, group, member, sepoch + 1, tid, [
                {"FirstOffset": base, "LastOffset": base + 3, "AcknowledgeTypes": [ACCEPT]},
                {"FirstOffset": base + 4, "LastOffset": base + 6, "AcknowledgeTypes": [RELEASE, RELEASE, REJECT]}])
            self.assertEqual(r["ErrorCode"], 0, r)
            r = share_fetch(c, group, member, sepoch + 2, tid, wait_ms=2000, max_records=10)
            self.assertEqual(acquired(r), [(base + 4, base + 5, 2)], r)
            # Before the second release: start at base+4 (acquired), one rejected record done in flight.
            hwm = base + 10
            pre = self.expect(group, topic, members=1, lag=hwm - (base + 4) - 1, start=base + 4, acquired=5,
                              redeliveries=2, archived=0, acks=(0, 4, 2, 1))
            self.wait_for(mport, pre)
            r = share_ack(c, group, member, sepoch + 3, tid, [
                {"FirstOffset": base + 4, "LastOffset": base + 5, "AcknowledgeTypes": [RELEASE]}])
            self.assertEqual(r["ErrorCode"], 0, r)
            # Released at the limit: archived; the start moves past 4..6 to the three still acquired.
            want[group] = self.expect(group, topic, members=1, lag=3, start=base + 7, acquired=3, redeliveries=2,
                                      archived=2, acks=(0, 4, 4, 1))
            self.assertEqual(heartbeat(c, group, member, mepoch)["ErrorCode"], 0)
        for g, (group, w) in enumerate(want.items()):
            # The records produced for the later group count in the earlier one's lag too: the metric is
            # DescribeShareGroupOffsets' Lag, asked here of the broker itself.
            lag_key = [k for k in w if k[0] == "kbroker_share_partition_lag"][0]
            w[lag_key] = 3 + 10 * (len(want) - 1 - g)
            self.assertEqual(self.lag(c, group), w[lag_key])
            self.wait_for(mport, w)
        b.stop(check=True)

    def lag(self, c, group):
        g = c.request(90, 1, {"Groups": [{"GroupId": group, "Topics": None}]})["Groups"][0]
        return [p["Lag"] for t in g["Topics"] for p in t["Partitions"]][0]

    def started(self, c, group):
        g = c.request(90, 1, {"Groups": [{"GroupId": group, "Topics": None}]})["Groups"][0]
        return any(p["StartOffset"] >= 0 for t in g["Topics"] or [] for p in t["Partitions"])

    def expect(self, group, topic, members, lag, start, acquired, redeliveries, archived, acks):
        gl = 'group="%s"' % group
        pl = '%s,topic="%s",partition="0"' % (gl, topic)
        w = {("kbroker_share_group_members", gl): members,
             ("kbroker_share_partition_lag", pl): lag,
             ("kbroker_share_partition_start_offset", pl): start,
             ("kbroker_share_partition_records_acquired", pl): acquired,
             ("kbroker_share_partition_redeliveries_total", pl): redeliveries,
             ("kbroker_share_partition_archived_at_limit_total", pl): archived}
        for t, n in zip(("gap", "accept", "release", "reject"), acks):
            w[("kbroker_share_partition_acknowledgements_total", '%s,type="%s"' % (pl, t))] = n
        return w

    def wait_for(self, mport, want):
        """Shards publish once a second: the scrape converges on the figures."""
        deadline = time.monotonic() + 10
        while True:
            got, text = scrape(mport)
            diff = {k: (v, got.get(k)) for k, v in want.items() if got.get(k) != v}
            if not diff:
                return
            if time.monotonic() > deadline:
                self.fail("metrics differ (want, got): %r\n%s" % (diff, text[-3000:]))
            time.sleep(0.3)

    def test_one_shard(self):
        self.run_shards(1)

    def test_label_not_utf8(self):
        """A group id that is not UTF-8 (and holds a quote, a backslash and a newline) leaves the scrape valid:
        each bad byte is U+FFFD, the rest escaped as the text format requires (scrape() decodes strictly)."""
        mport = free_port()
        b = Broker(shards=1, extra_sets=["metrics.port=%d" % mport])
        self.addCleanup(b.cleanup)
        b.start()
        c = kwire.Conn(b.bootstrap, client_id="share-metrics")
        self.addCleanup(c.close)
        topic = uniq("shmu")
        tid = create_topic(c, topic, 1)
        tail = uniq("u").encode()
        group = b'g\xff\xc3("q\\b\nz\xed\xa0\x80' + tail
        member, _ = join(c, group, topic)
        sepoch = 0
        while not self.started(c, group):
            self.assertEqual(share_fetch(c, group, member, sepoch, tid, wait_ms=100)["ErrorCode"], 0)
            sepoch += 1
            self.assertLess(sepoch, 50, "share-partition never initialised")
        gl = 'group="g\ufffd\ufffd(\\"q\\\\b\\nz\ufffd\ufffd\ufffd%s"' % tail.decode()
        self.wait_for(mport, {("kbroker_share_group_members", gl): 1,
                              ("kbroker_share_partition_start_offset", '%s,topic="%s",partition="0"' % (gl, topic)): 0})
        b.stop(check=True)

    def test_two_shards(self):
        self.run_shards(2)


if __name__ == "__main__":
    unittest.main()

"""Durability across restarts: clean SIGTERM restart, and kill -9 during an acks=all produce loop."""

import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from broker import Broker, shards_from_env  # noqa: E402
from common import kbroker_only, uniq  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def read_all(bootstrap, topic, partitions, timeout=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uniq("unused"), "enable.auto.commit": False,
                  "enable.partition.eof": True, "fetch.wait.max.ms": 100})
    got = {p: {} for p in partitions}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        eof = set()
        deadline = time.monotonic() + timeout
        while len(eof) < len(partitions) and time.monotonic() < deadline:
            for m in c.consume(5000, 0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise AssertionError("consume error: %s" % m.error())
                eof.discard(m.partition())
                got[m.partition()][m.offset()] = (m.key(), m.value(), m.headers())
        if len(eof) < len(partitions):
            raise AssertionError("did not reach the end of every partition: eof=%s" % sorted(eof))
        wm = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
    finally:
        c.close()
    return got, wm


# Child process: produce with acks=all until killed, printing each acknowledged
# message as a JSON line (flushed immediately), so the parent knows exactly what
# the broker acknowledged before it died.
CHILD = r"""
import json, sys, time
from confluent_kafka import Producer
bootstrap, topic, nparts = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = sys.stdout
def dr(err, msg):
    if err is None:
        out.write(json.dumps([msg.partition(), msg.offset(), msg.value().decode()]) + "\n")
        out.flush()
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
              "linger.ms": 2, "message.timeout.ms": 300000, "reconnect.backoff.max.ms": 200})
i = 0
while True:
    try:
        p.produce(topic, value=b"m-%d" % i, key=b"%d" % (i % 16), on_delivery=dr)
        i += 1
    except BufferError:
        pass
    p.poll(0.0005 if i % 50 == 0 else 0)
"""


@kbroker_only("stops, kill -9s and restarts the broker process on its data dir")
class RestartTest(unittest.TestCase):
    def setUp(self):
        self.b = Broker(shards=shards_from_env())
        self.addCleanup(self.b.cleanup)
        self.b.start()

    @property
    def broker(self):  # for the runner's log printing
        return self.b

    def test_sigterm_restart_keeps_everything(self):
        b = self.b
        topic = uniq("rs")
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic(topic, 4, 1)])[topic].result(15)
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5})
        acked = {}

        def dr(err, msg):
            self.assertIsNone(err)
            acked[(msg.partition(), msg.offset())] = msg.value()

        for i in range(5000):
            p.produce(topic, key=b"k%d" % (i % 7), value=b"v-%d" % i, headers=[("i", b"%d" % i)], on_delivery=dr)
        self.assertEqual(p.flush(30), 0)
        self.assertEqual(len(acked), 5000)
        del p
        before, wm_before = read_all(b.bootstrap, topic, range(4))
        auto = uniq("rs-auto")  # an auto-created topic must survive too
        subprocess.run(["kcat", "-b", b.bootstrap, "-P", "-t", auto], input=b"a\nb\n", check=True, timeout=30)

        gone = uniq("rs-deleted")  # a deleted topic must stay deleted
        a.create_topics([NewTopic(gone, 1, 1)])[gone].result(15)
        a.delete_topics([gone])[gone].result(15)
        del a

        b.stop()  # asserts exit code 0
        self.assertIn("stopped cleanly", b.log_text())
        old_port = b.port
        b.start()
        self.assertEqual(b.log_text().count("kbroker ready"), 2)

        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        self.assertIn(topic, md.topics)
        self.assertEqual(len(md.topics[topic].partitions), 4)
        self.assertIn(auto, md.topics)
        self.assertNotIn(gone, md.topics, "deleted topic came back after restart")
        after, wm_after = read_all(b.bootstrap, topic, range(4))
        self.assertEqual(wm_after, wm_before)
        self.assertEqual(after, before)
        for (part, off), v in acked.items():
            self.assertEqual(after[part][off][1], v)
        out = subprocess.run(["kcat", "-b", b.bootstrap, "-C", "-t", auto, "-e", "-f", "%o:%s\\n"],
                             stdout=subprocess.PIPE, check=True, timeout=30).stdout.decode()
        self.assertEqual(out.splitlines(), ["0:a", "1:b"])
        # Appends continue after the old end.
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
        res = []
        p.produce(topic, value=b"after", partition=2, on_delivery=lambda e, m: res.append((e, m.offset())))
        self.assertEqual(p.flush(15), 0)
        self.assertEqual(res, [(None, wm_before[2][1])])
        self.assertNotEqual(old_port, None)

    def test_kill9_during_acks_all_loses_nothing_acknowledged(self):
        b = self.b
        topic = uniq("k9")
        nparts = 3
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        a.create_topics([NewTopic(topic, nparts, 1)])[topic].result(15)
        ack_path = os.path.join(b._tmp, "acks.jsonl")
        with open(ack_path, "wb") as ack_fh:
            child = subprocess.Popen([sys.executable, "-c", CHILD, b.bootstrap, topic, str(nparts)],
                                     stdout=ack_fh, stderr=subprocess.DEVNULL)
            try:
                # Let it run until a good number of acks are in, then kill -9 mid-stream.
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    if os.path.getsize(ack_path) > 200 * 1024:
                        break
                    self.assertIsNone(child.poll(), "producer child exited early")
                    time.sleep(0.05)
                rc = b.kill9()
                self.assertEqual(rc, -9)
                time.sleep(0.3)  # let any in-flight callbacks land (none can be acks now)
            finally:
                child.kill()
                child.wait()
        acks = []
        with open(ack_path) as f:
            for line in f:
                if line.endswith("\n"):
                    acks.append(json.loads(line))
        self.assertGreater(len(acks), 1000, "too few acknowledged messages before the kill")

        b.start()
        got, wm = read_all(b.bootstrap, topic, range(nparts))
        missing = []
        for part, off, val in acks:
            rec = got[part].get(off)
            if rec is None or rec[1] != val.encode():
                missing.append((part, off, val, rec and rec[1]))
        self.assertEqual(missing[:20], [], "%d of %d acknowledged messages not found at their offsets"
                         % (len(missing), len(acks)))
        for part in range(nparts):
            offs = sorted(got[part])
            self.assertEqual(offs, list(range(len(offs))), "partition %d has gaps after recovery" % part)
        print("\n  %d acked before kill -9; after restart high watermarks %s" %
              (len(acks), {p: wm[p][1] for p in wm}))
        b.stop()


if __name__ == "__main__":
    unittest.main()

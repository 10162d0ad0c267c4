"""kbroker-admin share-group (list, describe with start offsets and lag, describe --members) on a share group a
confluent-kafka 2.16 ShareConsumer really formed: the same on Apache Kafka 4.4.0 and kbroker.

Owns: the share-group checks of kbroker-admin. Must not: depend on another test's topics or groups, or wait
without a deadline."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common3 import BrokerTestCase, is_kbroker, uniq  # noqa: E402

from broker import REPO  # noqa: E402
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer  # noqa: E402
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,  # noqa: E402
                                   NewTopic, ResourceType)

ADMIN = os.environ.get("KB_ADMIN_BIN") or os.path.join(REPO, "build", "bin", "kbroker-admin")


class AdminShareCliTest(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(ADMIN, os.X_OK):
            raise AssertionError("kbroker-admin %s not built (or set KB_ADMIN_BIN)" % ADMIN)
        super().setUpClass()

    def run_admin(self, *args, rc=0):
        p = subprocess.run([ADMIN, "--bootstrap", self.bootstrap, "--timeout", "10"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if rc is not None and p.returncode != rc:
            self.fail("%s exited %d (expected %d)\nstdout:\n%s\nstderr:\n%s" % (
                " ".join(args), p.returncode, rc, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace")))
        return p

    def js(self, *args):
        return json.loads(self.run_admin("--json", *args).stdout.decode())

    def until(self, fn, want, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got == want:
                return
            if time.monotonic() > deadline:
                self.fail("%s: want %r, got %r" % (what, want, got))
            time.sleep(0.5)

    def test_list_and_describe(self):
        topic, group = uniq("adsh"), uniq("adshg")
        a = AdminClient({"bootstrap.servers": self.bootstrap})
        a.create_topics([NewTopic(topic, 2, 1)])[topic].result(20)
        res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
            ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
        for f in a.incremental_alter_configs([res]).values():
            f.result(20)
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all"})
        for i in range(10):
            p.produce(topic, value=b"v%d" % i, partition=i % 2)
        self.assertEqual(p.flush(30), 0)

        c = ShareConsumer({"bootstrap.servers": self.bootstrap, "group.id": group, "client.id": "adm-share",
                           "share.acknowledgement.mode": "explicit"})
        closed = []
        self.addCleanup(lambda: closed or c.close())
        c.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 60
        while got < 10 and time.monotonic() < deadline:
            msgs = [m for m in c.poll(0.5) or [] if not m.error()]
            for m in msgs:
                c.acknowledge(m, AcknowledgeType.ACCEPT)
            if msgs:
                c.commit_sync(20)
            got += len(msgs)
        self.assertEqual(got, 10)
        # Three more on partition 1 that nobody fetches: its lag.
        for i in range(3):
            p.produce(topic, value=b"w%d" % i, partition=1)
        self.assertEqual(p.flush(30), 0)

        mine = [g for g in self.js("share-group", "list") if g["group"] == group]
        self.assertEqual(mine, [{"group": group, "state": "Stable"}])
        # Only share groups: a classic or consumer group is not listed.
        self.assertTrue(all(g["state"] in ("Stable", "Empty") for g in self.js("share-group", "list")))

        def members():
            d = self.js("share-group", "describe", group, "--members")
            return [(m["client_id"], sorted((x["topic"], x["partition"]) for x in m["assignment"]))
                    for m in d["members"]]
        self.until(members, [("adm-share", [(topic, 0), (topic, 1)])], "members and their assignment")

        def offsets():
            d = self.js("share-group", "describe", group)
            return [(x["topic"], x["partition"], x["lag"]) for x in d["partitions"]]
        self.until(offsets, [(topic, 0, 0), (topic, 1, 3)], "lag per partition")
        # The start offset is the broker's: kbroker's is the first record not finished (5: all five accepted);
        # Kafka 4.4 still answers 0 here (the start offset its share coordinator persisted), with the same lag.
        starts = [x["start_offset"] for x in self.js("share-group", "describe", group)["partitions"]]
        self.assertEqual(starts, [5, 5] if is_kbroker() else starts)
        self.assertTrue(all(x in (0, 5) for x in starts), starts)

        # The table has Kafka's kafka-share-groups columns.
        text = self.run_admin("share-group", "describe", group).stdout.decode().splitlines()
        self.assertEqual(text[0].split(), ["GROUP", "TOPIC", "PARTITION", "LEADER-EPOCH", "START-OFFSET", "LAG"])
        self.assertEqual([ln.split()[:3] + ln.split()[4:] for ln in text[1:]],
                         [[group, topic, "0", str(starts[0]), "0"], [group, topic, "1", str(starts[1]), "3"]])
        text = self.run_admin("share-group", "describe", group, "--members").stdout.decode().splitlines()
        self.assertEqual(text[0].split(), ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"])
        row = text[1].split()
        self.assertEqual((row[0], row[3], row[4], row[5]), (group, "adm-share", "2", "%s:0,1" % topic))

        c.close()
        closed.append(1)

        def state():
            return [g["state"] for g in self.js("share-group", "list") if g["group"] == group]
        self.until(state, ["Empty"], "state once the consumer left")

    def test_unknown_group(self):
        p = self.run_admin("share-group", "describe", uniq("nosuch"), rc=1)
        self.assertIn("GROUP_ID_NOT_FOUND", p.stderr.decode())
        p = self.run_admin("share-group", "describe", uniq("nosuch"), "--members", rc=1)
        self.assertIn("GROUP_ID_NOT_FOUND", p.stderr.decode())
        self.run_admin("share-group", "frobnicate", rc=2)

    def test_bad_bootstrap(self):
        # A usage error before any connection: exit 2 with the reason, not a crash.
        for args in (["share-group", "describe", "g"], ["share-group", "describe", "g", "--members"],
                     ["share-group", "list"]):
            p = subprocess.run([ADMIN, "--bootstrap", "nohost"] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr.decode(errors="replace")))
            self.assertIn("is not HOST:PORT", p.stderr.decode(errors="replace"))


if __name__ == "__main__":
    unittest.main()

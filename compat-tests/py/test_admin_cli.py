"""kbroker-admin against a real broker: every subcommand, its JSON output and its exit codes.

Exit codes: 0 ok, 1 operation failed, 2 usage, 3 unreachable. The group tests
build a real consumer group with confluent-kafka (Debian's python3-confluent-kafka).
"""

import json
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from broker import REPO  # noqa: E402
from common import BrokerTestCase, uniq  # noqa: E402

ADMIN = os.environ.get("KB_ADMIN_BIN") or os.path.join(REPO, "build", "bin", "kbroker-admin")

try:
    from confluent_kafka import Consumer, TopicPartition
except ImportError:  # pragma: no cover - the suite installs it
    Consumer = None


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AdminCliTest(BrokerTestCase):
    # Groups form at once instead of after Kafka's 3 s initial rebalance delay.
    extra_sets = ("group.initial.rebalance.delay.ms=0",)

    @classmethod
    def setUpClass(cls):
        if not os.access(ADMIN, os.X_OK):
            raise AssertionError("kbroker-admin %s not built (cmake --build build --target kbroker-admin, "
                                 "or set KB_ADMIN_BIN)" % ADMIN)
        super().setUpClass()

    def run_admin(self, *args, input=None, rc=0, bootstrap=None, timeout=30):
        cmd = [ADMIN, "--bootstrap", bootstrap or self.bootstrap, "--timeout", "5"] + list(args)
        p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if rc is not None and p.returncode != rc:
            self.fail("%s exited %d (expected %d)\nstdout:\n%s\nstderr:\n%s\nbroker log:\n%s"
                      % (" ".join(args), p.returncode, rc, p.stdout.decode(errors="replace"),
                         p.stderr.decode(errors="replace"), self.broker.log_tail(20)))
        return p

    def js(self, *args, **kw):
        p = self.run_admin("--json", *args, **kw)
        return json.loads(p.stdout.decode())

    # ---------------------------------------------------------------- ping / errors
    def test_ping(self):
        out = self.js("ping")
        self.assertEqual(len(out), 1)
        self.assertTrue(out[0]["ok"])
        self.assertGreater(out[0]["api_count"], 10)
        text = self.run_admin("ping").stdout.decode()
        self.assertIn("ApiVersions answered", text)

    def test_unreachable_broker_exit_3(self):
        dead = "127.0.0.1:%d" % closed_port()
        p = self.run_admin("ping", bootstrap=dead, rc=3)
        self.assertIn("Connection refused", p.stderr.decode())
        t0 = time.monotonic()
        p = self.run_admin("topic", "list", bootstrap=dead, rc=3)
        self.assertLess(time.monotonic() - t0, 15)
        self.assertIn("cannot reach a broker at %s" % dead, p.stderr.decode())

    def test_usage_errors_exit_2(self):
        self.run_admin("nonsense", rc=2)
        self.run_admin("topic", "create", rc=2)
        self.run_admin("topic", "create", "x", "--partitions", "zero", rc=2)
        self.run_admin("group", "reset-offsets", "g", "--all-topics", rc=2)  # no --to-*
        self.run_admin("group", "reset-offsets", "g", "--all-topics", "--to-datetime", "yesterday", rc=2)
        p = subprocess.run([ADMIN, "--help"], stdout=subprocess.PIPE, timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"reset-offsets", p.stdout)

    # ---------------------------------------------------------------- topics
    def test_topic_lifecycle(self):
        t = uniq("adm-topic")
        out = self.js("topic", "create", t, "--partitions", "3", "--config", "retention.ms=3600000")
        self.assertEqual(out, [{"topic": t, "ok": True, "error": None, "message": None}])
        p = self.run_admin("topic", "create", t, "--partitions", "3", rc=1)
        self.assertIn("TOPIC_ALREADY_EXISTS", p.stderr.decode())
        self.run_admin("topic", "create", t, "--if-not-exists")

        listed = {x["name"]: x for x in self.js("topic", "list")}
        self.assertEqual(listed[t]["partitions"], 3)
        self.assertFalse(listed[t]["internal"])

        d = self.js("topic", "describe", t)[0]
        self.assertEqual((d["name"], d["partition_count"], d["replication_factor"]), (t, 3, 1))
        self.assertEqual(d["configs"], {"retention.ms": "3600000"})
        self.assertEqual([x["partition"] for x in d["partitions"]], [0, 1, 2])
        self.assertEqual(d["partitions"][0]["leader"], 1)
        self.assertEqual(d["partitions"][0]["log_end_offset"], 0)
        self.assertIn("PartitionCount: 3", self.run_admin("topic", "describe", t).stdout.decode())

        self.run_admin("topic", "alter-config", t, "--set", "cleanup.policy=compact", "--delete", "retention.ms")
        d = self.js("topic", "describe", t)[0]
        self.assertEqual(d["configs"], {"cleanup.policy": "compact"})
        p = self.run_admin("topic", "alter-config", t, "--set", "no.such.key=1", rc=1)
        self.assertIn("INVALID_CONFIG", p.stderr.decode())

        self.run_admin("topic", "add-partitions", t, "--total", "5")
        self.run_admin("topic", "add-partitions", t, "--count", "1")
        self.assertEqual(self.js("topic", "describe", t)[0]["partition_count"], 6)
        self.run_admin("topic", "add-partitions", t, "--total", "2", rc=1)

        out = self.js("topic", "delete", t)
        self.assertTrue(out[0]["ok"])
        p = self.run_admin("topic", "delete", t, rc=1)
        self.assertIn("UNKNOWN_TOPIC_OR_PART", p.stderr.decode())
        self.run_admin("topic", "delete", t, "--if-exists")
        self.assertNotIn(t, {x["name"] for x in self.js("topic", "list")})

    def test_unknown_topic_exit_1(self):
        t = uniq("adm-missing")
        for args in (("topic", "describe", t), ("topic", "add-partitions", t, "--count", "1"),
                     ("topic", "alter-config", t, "--set", "retention.ms=1"),
                     ("topic", "delete-records", t, "--before", "1"),
                     ("consume", t, "--from-beginning", "--exit-at-end")):
            p = self.run_admin(*args, rc=1)
            self.assertIn("topic '%s' does not exist" % t, p.stderr.decode())
        # Describing must not have auto-created it.
        self.assertNotIn(t, {x["name"] for x in self.js("topic", "list")})

    # ---------------------------------------------------------------- records
    def test_produce_consume_delete_records(self):
        t = uniq("adm-rec")
        self.run_admin("topic", "create", t, "--partitions", "1")
        out = self.js("produce", t, "--key-separator", ":", input=b"k1:v1\nk2:v2 with spaces\nk3:v3\n")
        self.assertEqual(out, {"topic": t, "produced": 3, "failed": 0})
        self.run_admin("produce", t, input=b"plain\n")

        recs = [json.loads(line) for line in
                self.run_admin("--json", "consume", t, "--from-beginning", "--exit-at-end").stdout.splitlines()]
        self.assertEqual([(r["key"], r["value"], r["offset"]) for r in recs],
                         [("k1", "v1", 0), ("k2", "v2 with spaces", 1), ("k3", "v3", 2), (None, "plain", 3)])
        text = self.run_admin("consume", t, "--from-beginning", "--count", "2", "--print-key",
                              "--key-separator", "=").stdout.decode()
        self.assertEqual(text, "k1=v1\nk2=v2 with spaces\n")
        text = self.run_admin("consume", t, "--offset", "2", "--partition", "0", "--exit-at-end").stdout.decode()
        self.assertEqual(text, "v3\nplain\n")
        # From the end with nothing new: ends on the idle timeout with no output.
        self.assertEqual(self.run_admin("consume", t, "--idle-timeout", "1").stdout, b"")

        out = self.js("topic", "delete-records", t, "--before", "2")
        self.assertEqual(out, [{"topic": t, "partition": 0, "log_start_offset": 2, "error": None}])
        text = self.run_admin("consume", t, "--from-beginning", "--exit-at-end").stdout.decode()
        self.assertEqual(text, "v3\nplain\n")
        self.assertEqual(self.js("topic", "describe", t)[0]["partitions"][0]["log_start_offset"], 2)

        p = self.run_admin("produce", t, "--key-separator", ":", input=b"no separator here\n", rc=1)
        self.assertIn("no key separator", p.stderr.decode())

    # ---------------------------------------------------------------- groups
    def _group_consumer(self, group, topic, n):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "client.id": "adm-test",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "session.timeout.ms": 6000})
        c.subscribe([topic])
        got, deadline = 0, time.monotonic() + 20
        while got < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got += 1
        self.assertEqual(got, n, "consumer read %d of %d" % (got, n))
        c.commit(asynchronous=False)
        return c

    def test_groups(self):
        if Consumer is None:
            self.skipTest("python3-confluent-kafka not installed")
        t, g = uniq("adm-grp"), uniq("adm-g")
        self.run_admin("topic", "create", t, "--partitions", "2")
        self.run_admin("produce", t, "--partition", "0", input=b"".join(b"a%d\n" % i for i in range(6)))
        self.run_admin("produce", t, "--partition", "1", input=b"".join(b"b%d\n" % i for i in range(4)))
        c = self._group_consumer(g, t, 10)
        try:
            self.run_admin("produce", t, "--partition", "0", input=b"late1\nlate2\n")  # lag 2 on p0
            groups = {x["group"]: x for x in self.js("group", "list")}
            self.assertEqual(groups[g]["state"], "Stable")
            d = self.js("group", "describe", g)[0]
            self.assertEqual(d["state"], "Stable")
            self.assertEqual(len(d["members"]), 1)
            self.assertEqual(d["members"][0]["client_id"], "adm-test")
            offs = {o["partition"]: o for o in d["offsets"]}
            self.assertEqual((offs[0]["committed_offset"], offs[0]["log_end_offset"], offs[0]["lag"]), (6, 8, 2))
            self.assertEqual((offs[1]["committed_offset"], offs[1]["log_end_offset"], offs[1]["lag"]), (4, 4, 0))
            self.assertEqual(offs[0]["consumer_id"], d["members"][0]["consumer_id"])
            self.assertEqual(d["total_lag"], 2)
            text = self.run_admin("group", "describe", g).stdout.decode()
            self.assertIn("LOG-END-OFFSET", text)
            # Resetting an active group is refused, as by Kafka's tool.
            p = self.run_admin("group", "reset-offsets", g, "--all-topics", "--to-earliest", "--execute", rc=1)
            self.assertIn("inactive", p.stderr.decode())
            p = self.run_admin("group", "delete", g, rc=1)
            self.assertIn("NON_EMPTY_GROUP", p.stderr.decode())
        finally:
            c.close()

        d = self.js("group", "describe", g)[0]
        self.assertEqual((d["state"], d["members"]), ("Empty", []))
        # Dry run (the default) reports the plan and changes nothing.
        plan = self.js("group", "reset-offsets", g, "--all-topics", "--to-earliest")
        self.assertFalse(plan["executed"])
        self.assertEqual({(o["partition"], o["previous_offset"], o["new_offset"]) for o in plan["offsets"]},
                         {(0, 6, 0), (1, 4, 0)})
        self.assertEqual({o["committed_offset"] for o in self.js("group", "describe", g)[0]["offsets"]}, {6, 4})

        def committed():
            return {o["partition"]: o["committed_offset"] for o in self.js("group", "describe", g)[0]["offsets"]}

        self.js("group", "reset-offsets", g, "--topic", t, "--to-earliest", "--execute")
        self.assertEqual(committed(), {0: 0, 1: 0})
        self.js("group", "reset-offsets", g, "--topic", t + ":0", "--shift-by", "3", "--execute")
        self.assertEqual(committed(), {0: 3, 1: 0})
        self.js("group", "reset-offsets", g, "--topic", t, "--to-offset", "5", "--execute")
        self.assertEqual(committed(), {0: 5, 1: 4})  # clamped to partition 1's log end
        self.js("group", "reset-offsets", g, "--topic", t, "--to-latest", "--execute")
        self.assertEqual(committed(), {0: 8, 1: 4})
        self.js("group", "reset-offsets", g, "--topic", t, "--to-datetime", "2000-01-01T00:00:00Z", "--execute")
        self.assertEqual(committed(), {0: 0, 1: 0})
        self.js("group", "reset-offsets", g, "--topic", t, "--to-datetime", "2999-01-01T00:00:00.000+01:00",
                "--execute")
        self.assertEqual(committed(), {0: 8, 1: 4})
        self.run_admin("group", "reset-offsets", g, "--topic", uniq("nope"), "--to-earliest", rc=1)

        # A new consumer of the group starts where the reset put it.
        self.js("group", "reset-offsets", g, "--topic", t + ":0", "--to-offset", "6", "--execute")
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": g, "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(t, 0)])
            pos = c.committed([TopicPartition(t, 0)], timeout=10)
            self.assertEqual(pos[0].offset, 6)
        finally:
            c.close()

        out = self.js("group", "delete", g)
        self.assertEqual(out, [{"group": g, "ok": True, "error": None, "message": None}])
        p = self.run_admin("group", "describe", g, rc=1)
        self.assertIn("does not exist", p.stderr.decode())
        p = self.run_admin("group", "delete", g, rc=1)
        self.assertIn("GROUP_ID_NOT_FOUND", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()

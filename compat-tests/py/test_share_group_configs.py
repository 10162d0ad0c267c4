"""Share groups' dynamic group configs (GROUP resources, issue 18): durable, by_duration, the legacy API.

Owns: its topics and groups, on the target broker (Kafka 4.4.0 or kbroker 1 and 2 shards); the restart test
its own kbroker process. Must not: depend on another test's groups or configs.

- AlterConfigs (the legacy, non-incremental API) on a GROUP resource replaces the group's whole set, as Kafka
  4.4 does: a key set before and not listed goes back to the broker's value.
- Both APIs, and DescribeConfigs, with GROUP and TOPIC resources in one request: each answered (and applied) on
  its own.
- DeleteGroups of a share group keeps its configs (Kafka 4.4 keeps group configs apart from the group).
- share.auto.offset.reset=by_duration:PT1H: DescribeConfigs answers the value as written, and a new
  share-partition starts at the first record stamped in the last hour (older records skipped); a negative
  duration is refused with Kafka's message.
- kbroker only (kill -9): share.auto.offset.reset and share.record.lock.duration.ms set with
  IncrementalAlterConfigs are still described (source GROUP_CONFIG) and in force after a restart: a new
  member's first fetch gets the records produced before it (earliest) with a 20 s lock."""

import os
import sys
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
sys.path.insert(0, _HERE)
import kwire  # noqa: E402
import test_share_groups as tsg  # noqa: E402
from common import BrokerTestCase, kbroker_only, uniq  # noqa: E402

GROUP = 32
GROUP_CONFIG, STATIC_BROKER, DEFAULT = 8, 4, 5
LOCK = "share.record.lock.duration.ms"
RESET = "share.auto.offset.reset"
HB = "share.heartbeat.interval.ms"


def iac(c, group, *changes):
    r = c.request(44, 1, {"Resources": [{"ResourceType": GROUP, "ResourceName": group, "Configs": [
        {"Name": k, "ConfigOperation": 0 if v is not None else 1, "Value": v} for k, v in changes]}],
        "ValidateOnly": False})
    return r["Responses"][0]


def described(c, group, *keys):
    """{key: (value, source)} of the group's configs."""
    r = c.request(32, 4, {"Resources": [{"ResourceType": GROUP, "ResourceName": group,
                                         "ConfigurationKeys": list(keys)}],
                          "IncludeSynonyms": False, "IncludeDocumentation": False})
    res = r["Results"][0]
    assert res["ErrorCode"] == 0, res
    return {e["Name"]: (e["Value"], e["ConfigSource"]) for e in res["Configs"]}


def wait_described(c, group, key, want):
    """Kafka publishes a group config change through its metadata a little after the answer."""
    tsg.wait_until(lambda: described(c, group, key)[key] == want or described(c, group, key),
                   "%s of %s described as %r" % (key, group, want), timeout=15.0)


def first_fetch(test, c, group, topic, tid):
    """A new member's fetches until it acquires something: (offsets acquired, AcquisitionLockTimeoutMs)."""
    member, _ = tsg.join(c, group, topic)
    out = {}
    epoch = [0]

    def got():
        r = tsg.share_fetch(c, group, member, epoch[0], tid, wait_ms=500)
        test.assertEqual(r["ErrorCode"], 0, r)
        epoch[0] += 1
        acq = tsg.acquired(r)
        if not acq:
            return r
        out["offsets"] = [o for first, last, _ in acq for o in range(first, last + 1)]
        out["lock"] = r["AcquisitionLockTimeoutMs"]
        return True
    tsg.wait_until(got, "records acquired by a member of %s" % group)
    return out["offsets"], out["lock"]


class GroupConfigsTest(BrokerTestCase):
    def test_legacy_alter_configs_replaces_the_set(self):
        c = kwire.Conn(self.bootstrap, client_id="share-gconf")
        self.addCleanup(c.close)
        group = uniq("sgc")
        self.assertEqual(iac(c, group, (LOCK, "20000"))["ErrorCode"], 0)
        wait_described(c, group, LOCK, ("20000", GROUP_CONFIG))
        r = c.request(33, 2, {"Resources": [{"ResourceType": GROUP, "ResourceName": group, "Configs": [
            {"Name": HB, "Value": "6000"}]}], "ValidateOnly": False})["Responses"][0]
        self.assertEqual((r["ErrorCode"], r["ErrorMessage"]), (0, None), r)
        wait_described(c, group, HB, ("6000", GROUP_CONFIG))
        d = described(c, group, LOCK, HB)
        self.assertNotEqual(d[LOCK][1], GROUP_CONFIG, "AlterConfigs keeps a key it did not list: %r" % d)
        self.assertNotEqual(d[LOCK][0], "20000", d)

    def test_mixed_with_topic_resources(self):
        c = kwire.Conn(self.bootstrap, client_id="share-gconf")
        self.addCleanup(c.close)
        topic, group = uniq("sgcm"), uniq("sgc")
        tsg.create_topic(c, topic, 1)
        r = c.request(44, 1, {"Resources": [
            {"ResourceType": GROUP, "ResourceName": group, "Configs": [
                {"Name": LOCK, "ConfigOperation": 0, "Value": "20000"}]},
            {"ResourceType": 2, "ResourceName": topic, "Configs": [
                {"Name": "retention.ms", "ConfigOperation": 0, "Value": "86400000"}]},
            {"ResourceType": 2, "ResourceName": uniq("nosuch"), "Configs": [
                {"Name": "retention.ms", "ConfigOperation": 0, "Value": "1000"}]}], "ValidateOnly": False})
        self.assertEqual([x["ErrorCode"] for x in r["Responses"]], [0, 0, 3], r)
        wait_described(c, group, LOCK, ("20000", GROUP_CONFIG))
        # The legacy API, a group and a topic in one request: the group's set replaced.
        r = c.request(33, 2, {"Resources": [
            {"ResourceType": 2, "ResourceName": topic, "Configs": [{"Name": "retention.ms", "Value": "3600000"}]},
            {"ResourceType": GROUP, "ResourceName": group, "Configs": [{"Name": HB, "Value": "6000"}]}],
            "ValidateOnly": False})
        self.assertEqual([x["ErrorCode"] for x in r["Responses"]], [0, 0], r)
        wait_described(c, group, HB, ("6000", GROUP_CONFIG))
        self.assertNotEqual(described(c, group, LOCK)[LOCK][1], GROUP_CONFIG)
        # DescribeConfigs of both in one request.
        d = c.request(32, 4, {"Resources": [
            {"ResourceType": 2, "ResourceName": topic, "ConfigurationKeys": ["retention.ms"]},
            {"ResourceType": GROUP, "ResourceName": group, "ConfigurationKeys": [HB]}],
            "IncludeSynonyms": False, "IncludeDocumentation": False})
        self.assertEqual([(x["ResourceType"], x["ErrorCode"], [(e["Name"], e["Value"]) for e in x["Configs"]])
                          for x in d["Results"]],
                         [(2, 0, [("retention.ms", "3600000")]), (GROUP, 0, [(HB, "6000")])], d)
        # A bad group value refuses that resource only.
        r = c.request(44, 1, {"Resources": [
            {"ResourceType": GROUP, "ResourceName": group, "Configs": [
                {"Name": LOCK, "ConfigOperation": 0, "Value": "x"}]},
            {"ResourceType": 2, "ResourceName": topic, "Configs": [
                {"Name": "retention.ms", "ConfigOperation": 0, "Value": "7200000"}]}], "ValidateOnly": False})
        self.assertEqual([x["ErrorCode"] for x in r["Responses"]], [40, 0], r)
        self.assertEqual(r["Responses"][0]["ErrorMessage"],
                         "Invalid value x for configuration %s: Not a number of type INT" % LOCK)

    def test_delete_groups_keeps_configs(self):
        c = kwire.Conn(self.bootstrap, client_id="share-gconf")
        self.addCleanup(c.close)
        topic, group = uniq("sgct"), uniq("sgc")
        tsg.create_topic(c, topic, 1)
        self.assertEqual(iac(c, group, (LOCK, "20000"))["ErrorCode"], 0)
        wait_described(c, group, LOCK, ("20000", GROUP_CONFIG))
        member, _ = tsg.join(c, group, topic)
        self.assertEqual(tsg.heartbeat(c, group, member, -1)["ErrorCode"], 0)
        tsg.wait_until(lambda: c.request(42, 2, {"GroupsNames": [group]})["Results"][0]["ErrorCode"] == 0 or None,
                       "DeleteGroups of the emptied share group")
        for _ in range(2):  # also once a change DeleteGroups made would have been published
            self.assertEqual(described(c, group, LOCK)[LOCK], ("20000", GROUP_CONFIG))
            time.sleep(1.0)

    def test_by_duration(self):
        c = kwire.Conn(self.bootstrap, client_id="share-gconf")
        self.addCleanup(c.close)
        topic, group = uniq("sgcd"), uniq("sgc")
        tid = tsg.create_topic(c, topic, 1)
        bad = iac(c, group, (RESET, "by_duration:-PT1H"))
        self.assertEqual(bad["ErrorCode"], 40, bad)
        self.assertIn("The value must be either 'earliest', 'latest' or of the format "
                      "'by_duration:<PnDTnHnMn.nS>'.", bad["ErrorMessage"])
        self.assertEqual(iac(c, group, (RESET, "by_duration:PT1H"))["ErrorCode"], 0)
        wait_described(c, group, RESET, ("by_duration:PT1H", GROUP_CONFIG))
        # Three records of 2023 (kwire's fixed timestamp), then two of now.
        tsg.produce(c, topic, [b"old0", b"old1", b"old2"])
        now = int(time.time() * 1000)
        batch = kwire.record_batch([(None, b"new3"), (None, b"new4")], base_ts=now)
        r = c.request(0, 9, {"TransactionalId": None, "Acks": -1, "TimeoutMs": 30000,
                             "TopicData": [{"Name": topic, "PartitionData": [{"Index": 0, "Records": batch}]}]})
        self.assertEqual(r["Responses"][0]["PartitionResponses"][0]["ErrorCode"], 0, r)
        offsets, _ = first_fetch(self, c, group, topic, tid)
        self.assertEqual(offsets, [3, 4], "by_duration:PT1H starts at the first record of the last hour")


@kbroker_only("kills and restarts the broker process")
class GroupConfigsRestartTest(BrokerTestCase):
    def test_configs_survive_kill9(self):
        c = kwire.Conn(self.bootstrap, client_id="share-gconf")
        topic, group = uniq("sgcr"), uniq("sgcr")
        tid = tsg.create_topic(c, topic, 1)
        tsg.coordinator_ready(c, group)
        self.assertEqual(iac(c, group, (RESET, "earliest"), (LOCK, "20000"))["ErrorCode"], 0)
        tsg.produce(c, topic, [b"a", b"b", b"c"])
        c.close()
        self.broker.kill9()
        self.broker.start()
        c = kwire.Conn(self.bootstrap, client_id="share-gconf")
        self.addCleanup(c.close)
        tsg.coordinator_ready(c, group)
        self.assertEqual(described(c, group, RESET, LOCK),
                         {RESET: ("earliest", GROUP_CONFIG), LOCK: ("20000", GROUP_CONFIG)})
        offsets, lock = first_fetch(self, c, group, topic, tid)
        self.assertEqual(offsets, [0, 1, 2], "share.auto.offset.reset=earliest lost in the restart")
        self.assertEqual(lock, 20000, "share.record.lock.duration.ms lost in the restart")


if __name__ == "__main__":
    unittest.main()

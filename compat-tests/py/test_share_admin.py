"""KIP-932 share-group admin on the wire: DescribeShareGroupOffsets, AlterShareGroupOffsets,
DeleteShareGroupOffsets, DeleteGroups of share groups and share-group configs on GROUP resources, with the codes
and messages Apache Kafka 4.4 answers (seen on the wire), the same on kbroker and Kafka.

An unknown group describes as no topics (named partitions: start -1, lag -1); deleting its offsets is
GROUP_ID_NOT_FOUND "Group <id> not found."; altering, deleting offsets or deleting a group that has a member is
NON_EMPTY_GROUP "The group is not empty."; an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION with
Kafka's message; group configs are checked with Kafka's rules and messages. Both brokers serve these APIs by
default."""

import os
import sys
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
sys.path.insert(0, _HERE)
import kwire  # noqa: E402
from common import BrokerTestCase, uniq  # noqa: E402
from test_share_groups import create_topic, heartbeat, join, coordinator_ready, wait_until  # noqa: E402

DESCRIBE_OFFSETS, ALTER_OFFSETS, DELETE_OFFSETS, DELETE_GROUPS = 90, 91, 92, 42
INCREMENTAL_ALTER_CONFIGS, DESCRIBE_CONFIGS = 44, 32
UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST, INVALID_CONFIG = 3, 42, 40
NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND = 68, 69
GROUP = 32
NOT_HOSTED = "This server does not host this topic-partition."
NOT_EMPTY = "The group is not empty."
ZERO_ID = "00000000-0000-0000-0000-000000000000"  # how kwire shows a zero topic id
# Kafka answers these while its coordinators load a fresh group's partition: asked again.
RETRY = (14, 15, 16)


def produce(conn, topic, values):
    """To partition 0, again while Kafka's new partition still answers NOT_LEADER_OR_FOLLOWER."""
    batch = kwire.record_batch([(None, v) for v in values])

    def sent():
        r = conn.request(0, 9, {"TransactionalId": None, "Acks": -1, "TimeoutMs": 30000,
                                "TopicData": [{"Name": topic, "PartitionData": [{"Index": 0, "Records": batch}]}]})
        return r["Responses"][0]["PartitionResponses"][0]["ErrorCode"] == 0 or r
    wait_until(sent, "a produce to %s" % topic)


def until_served(send, what):
    """send() again while the coordinator is not ready, for at most 60 s; returns the first real answer."""
    out = {}

    def served():
        out["r"] = send()
        return out["r"].get("ErrorCode", 0) not in RETRY or out["r"]
    wait_until(served, what)
    return out["r"]


class ShareAdminTest(BrokerTestCase):

    def conn(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-test")
        self.addCleanup(c.close)
        return c

    def describe_offsets(self, c, group, topics=None):
        r = until_served(lambda: c.request(DESCRIBE_OFFSETS, 1, {"Groups": [{"GroupId": group, "Topics": topics}]})
                         ["Groups"][0], "DescribeShareGroupOffsets of %s" % group)
        return r

    def alter(self, c, group, topics):
        return until_served(lambda: c.request(ALTER_OFFSETS, 0, {"GroupId": group, "Topics": [
            {"TopicName": t, "Partitions": [{"PartitionIndex": p, "StartOffset": o} for p, o in parts]}
            for t, parts in topics]}), "AlterShareGroupOffsets of %s" % group)

    def delete_offsets(self, c, group, topics):
        return until_served(lambda: c.request(DELETE_OFFSETS, 0, {"GroupId": group, "Topics": [
            {"TopicName": t} for t in topics]}), "DeleteShareGroupOffsets of %s" % group)

    def delete_group(self, c, group):
        return until_served(lambda: c.request(DELETE_GROUPS, 2, {"GroupsNames": [group]})["Results"][0],
                            "DeleteGroups of %s" % group)["ErrorCode"]

    def iac(self, c, group, configs):
        r = c.request(INCREMENTAL_ALTER_CONFIGS, 1, {"Resources": [{"ResourceType": GROUP, "ResourceName": group,
                                                                    "Configs": configs}], "ValidateOnly": False})
        o = r["Responses"][0]
        return o["ErrorCode"], o["ErrorMessage"]

    def test_unknown_group(self):
        c = self.conn()
        topic, group = uniq("sha"), uniq("shag")
        tid = create_topic(c, topic, 2)
        coordinator_ready(c, group)
        g = self.describe_offsets(c, group)
        self.assertEqual((g["ErrorCode"], g["Topics"]), (0, []), g)
        missing = uniq("nosuch")
        # Kafka answers the zero topic id for a topic its broker has not seen yet (CreateTopics answers before
        # that under load): ask until the new topic's id is known, within a bound.
        deadline = time.time() + 30
        while True:
            g = self.describe_offsets(c, group, [{"TopicName": topic, "Partitions": [0]},
                                                 {"TopicName": missing, "Partitions": [0]}])
            known = [t for t in g["Topics"] if t["TopicName"] == topic and str(t["TopicId"]) != ZERO_ID]
            if known or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(g["ErrorCode"], 0, g)
        got = [(str(t["TopicId"]), p["PartitionIndex"], p["StartOffset"], p["Lag"], p["ErrorCode"])
               for t in g["Topics"] for p in t["Partitions"]]
        self.assertEqual(sorted(got), sorted([(str(tid), 0, -1, -1, 0), (ZERO_ID, 0, -1, -1, 0)]), g)
        r = self.delete_offsets(c, group, [topic])
        self.assertEqual((r["ErrorCode"], r["ErrorMessage"], r["Responses"]),
                         (GROUP_ID_NOT_FOUND, "Group %s not found." % group, []), r)
        self.assertEqual(self.delete_group(c, group), GROUP_ID_NOT_FOUND)

    def test_alter_makes_group_and_checks_partitions(self):
        c = self.conn()
        topic, group = uniq("sha"), uniq("shag")
        tid = create_topic(c, topic, 2)
        produce(c, topic, [b"a", b"b", b"c"])
        coordinator_ready(c, group)
        nosuch = uniq("nosuch")
        r = self.alter(c, group, [(topic, [(0, 1), (9, 0)]), (nosuch, [(0, 0)])])
        self.assertEqual((r["ErrorCode"], r["ErrorMessage"]), (0, None), r)
        got = {(t["TopicName"], p["PartitionIndex"]): (p["ErrorCode"], p["ErrorMessage"])
               for t in r["Responses"] for p in t["Partitions"]}
        self.assertEqual(got, {(topic, 0): (0, None), (topic, 9): (UNKNOWN_TOPIC_OR_PARTITION, NOT_HOSTED),
                               (nosuch, 0): (UNKNOWN_TOPIC_OR_PARTITION, NOT_HOSTED)}, r)
        # The group now exists with that start; the lag is the high watermark (3) minus it.
        g = self.describe_offsets(c, group)
        self.assertEqual([(t["TopicId"], p["PartitionIndex"], p["StartOffset"], p["Lag"])
                          for t in g["Topics"] for p in t["Partitions"]], [(tid, 0, 1, 2)], g)
        # A start of -1 keeps the partition listed, without a start.
        r = self.alter(c, group, [(topic, [(1, -1)])])
        self.assertEqual(r["ErrorCode"], 0, r)
        g = self.describe_offsets(c, group)
        self.assertEqual(sorted((p["PartitionIndex"], p["StartOffset"], p["Lag"])
                                for t in g["Topics"] for p in t["Partitions"]), [(0, 1, 2), (1, -1, -1)], g)
        # Deleting an unknown topic's offsets is refused for that topic only.
        r = self.delete_offsets(c, group, [topic, nosuch])
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(sorted((t["TopicName"], t["ErrorCode"], t["ErrorMessage"]) for t in r["Responses"]),
                         sorted([(topic, 0, None), (nosuch, UNKNOWN_TOPIC_OR_PARTITION, NOT_HOSTED)]), r)
        self.assertEqual(self.describe_offsets(c, group)["Topics"], [])
        self.assertEqual(self.delete_group(c, group), 0)

    def test_member_present_refused(self):
        c = self.conn()
        topic, group = uniq("sha"), uniq("shag")
        create_topic(c, topic, 1)
        member, epoch = join(c, group, topic)
        r = self.alter(c, group, [(topic, [(0, 0)])])
        self.assertEqual((r["ErrorCode"], r["ErrorMessage"], r["Responses"]), (NON_EMPTY_GROUP, NOT_EMPTY, []), r)
        r = self.delete_offsets(c, group, [topic])
        self.assertEqual((r["ErrorCode"], r["ErrorMessage"], r["Responses"]), (NON_EMPTY_GROUP, NOT_EMPTY, []), r)
        self.assertEqual(self.delete_group(c, group), NON_EMPTY_GROUP)
        # Once the member left, all three are allowed.
        self.assertEqual(heartbeat(c, group, member, -1)["ErrorCode"], 0)
        self.assertEqual(self.alter(c, group, [(topic, [(0, 0)])])["ErrorCode"], 0)
        self.assertEqual(self.delete_offsets(c, group, [topic])["ErrorCode"], 0)
        self.assertEqual(self.delete_group(c, group), 0)
        r = c.request(16, 5, {"StatesFilter": [], "TypesFilter": ["share"]})
        self.assertEqual([g for g in r["Groups"] if g["GroupId"] == group], [], r)

    def test_group_config_errors(self):
        c = self.conn()
        group = uniq("shag")

        def one(name, value, op=0):
            return self.iac(c, group, [{"Name": name, "ConfigOperation": op, "Value": value}])
        self.assertEqual(one("share.auto.offset.reset", "middle"), (INVALID_CONFIG, (
            "Invalid value middle for configuration share.auto.offset.reset: Invalid value `middle` for "
            "configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format "
            "'by_duration:<PnDTnHnMn.nS>'.")))
        self.assertEqual(one("share.record.lock.duration.ms", "999"), (INVALID_CONFIG, (
            "Invalid value 999 for configuration share.record.lock.duration.ms: Value must be at least 1000")))
        self.assertEqual(one("share.session.timeout.ms", "abc"), (INVALID_CONFIG, (
            "Invalid value abc for configuration share.session.timeout.ms: Not a number of type INT")))
        self.assertEqual(one("share.heartbeat.interval.ms", "1000"), (INVALID_CONFIG, (
            "share.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive.")))
        self.assertEqual(one("share.delivery.count.limit", "11"), (INVALID_CONFIG, (
            "share.delivery.count.limit must be in the range 2 to 10 inclusive.")))
        self.assertEqual(one("share.nosuch", "1"), (INVALID_CONFIG, "Unknown group config name: share.nosuch"))
        self.assertEqual(one("share.auto.offset.reset", "earliest", op=2), (INVALID_CONFIG, (
            "Can't APPEND to key share.auto.offset.reset because its type is not LIST.")))
        r = c.request(INCREMENTAL_ALTER_CONFIGS, 1, {"Resources": [{"ResourceType": GROUP, "ResourceName": "",
                                                                    "Configs": []}], "ValidateOnly": False})
        self.assertEqual((r["Responses"][0]["ErrorCode"], r["Responses"][0]["ErrorMessage"]),
                         (INVALID_REQUEST, "Default group resources are not allowed."), r)
        # A good value is taken and described as the group's (source GROUP_CONFIG, 8), then deleted back.
        self.assertEqual(one("share.auto.offset.reset", "earliest"), (0, None))
        self.assertEqual(one("share.delivery.count.limit", "3"), (0, None))

        def described():
            r = c.request(DESCRIBE_CONFIGS, 4, {"Resources": [{"ResourceType": GROUP, "ResourceName": group,
                                                               "ConfigurationKeys": ["share.auto.offset.reset",
                                                                                     "share.delivery.count.limit"]}],
                                                "IncludeSynonyms": False, "IncludeDocumentation": False})
            res = r["Results"][0]
            self.assertEqual(res["ErrorCode"], 0, r)
            return sorted((e["Name"], e["Value"], e["ConfigSource"]) for e in res["Configs"])
        # Kafka publishes group configs through its metadata: they show up a moment later.
        want = [("share.auto.offset.reset", "earliest", 8), ("share.delivery.count.limit", "3", 8)]
        wait_until(lambda: described() == want or described(), "the group's configs described")
        self.assertEqual(one("share.auto.offset.reset", None, op=1), (0, None))
        want = [("share.auto.offset.reset", "latest", 5), ("share.delivery.count.limit", "3", 8)]
        wait_until(lambda: described() == want or described(), "share.auto.offset.reset back to the default")


if __name__ == "__main__":
    unittest.main()

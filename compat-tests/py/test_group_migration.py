"""Online migration between the classic and the consumer group protocol (KIP-848) as raw requests, the same
on kbroker and Apache Kafka, each target started with the server properties of the case.

group.consumer.migration.policy=disabled: a ConsumerGroupHeartbeat joining a non-empty classic group is
GROUP_ID_NOT_FOUND with Kafka's message and the group stays classic; a classic JoinGroup to a non-empty consumer
group is INCONSISTENT_GROUP_PROTOCOL. =upgrade: a classic member joins a non-empty consumer group (its generation
is its member epoch) and the group stays a consumer group when the last consumer-protocol member leaves. group.consumer.max.size=1: a second member of either protocol is
GROUP_MAX_SIZE_REACHED with Kafka's message, also the consumer member that would upgrade a full classic group
(which stays classic). With the default policy a classic group upgraded by a consumer member is still a
consumer group with both members after a restart, and becomes classic again (at a new generation: the classic
member's heartbeat is ILLEGAL_GENERATION until it rejoins) when that member leaves."""

import os
import shutil
import struct
import sys
import tempfile
import time
import unittest
import uuid

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
import kwire  # noqa: E402
from common import uniq  # noqa: E402
from secure import SecureTarget, make_pki, restart_target  # noqa: E402

ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, REBALANCE_IN_PROGRESS, GROUP_ID_NOT_FOUND, MEMBER_ID_REQUIRED, GROUP_MAX_SIZE_REACHED = 22, 23, 27, 69, 79, 81
RETRIABLE = (14, 15, 16)  # coordinator loading / not available / not coordinator


def wait_until(fn, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last is True:
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def subscription(topics, owned=()):
    """ConsumerProtocolSubscription v1: topics, null user data, owned partitions (topic, [partitions])."""
    out = struct.pack(">hi", 1, len(topics))
    for t in topics:
        out += struct.pack(">h", len(t)) + t.encode()
    out += struct.pack(">i", -1) + struct.pack(">i", len(owned))
    for t, ps in owned:
        out += struct.pack(">h", len(t)) + t.encode() + struct.pack(">i", len(ps))
        out += b"".join(struct.pack(">i", p) for p in ps)
    return out


def assignment(topic, parts):
    """ConsumerProtocolAssignment v1 of one topic."""
    return (struct.pack(">hi", 1, 1) + struct.pack(">h", len(topic)) + topic.encode() +
            struct.pack(">i", len(parts)) + b"".join(struct.pack(">i", p) for p in parts) + struct.pack(">i", -1))


class Classic:
    """A classic member driven by hand (JoinGroup v9 with KIP-394's member id round trip)."""

    def __init__(self, conn, group, topic):
        self.conn, self.group, self.topic = conn, group, topic
        self.id, self.generation = "", -1

    def join(self):
        body = {"GroupId": self.group, "SessionTimeoutMs": 30000, "RebalanceTimeoutMs": 30000, "MemberId": self.id,
                "GroupInstanceId": None, "ProtocolType": "consumer",
                "Protocols": [{"Name": "range", "Metadata": subscription([self.topic])}], "Reason": None}
        # A coordinator still loading (Kafka, right after __consumer_offsets was created on a loaded
        # machine) is retried, as every client does.
        deadline = time.monotonic() + 15
        while True:
            r = self.conn.request(11, 9, body)
            if r["ErrorCode"] not in (14, 15, 16) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if r["ErrorCode"] == MEMBER_ID_REQUIRED:
            self.id = r["MemberId"]
            body["MemberId"] = self.id
            r = self.conn.request(11, 9, body)
        if r["ErrorCode"] == 0:
            self.generation = r["GenerationId"]
        return r

    def sync(self, assignments=()):
        return self.conn.request(14, 5, {"GroupId": self.group, "GenerationId": self.generation, "MemberId": self.id,
                                         "GroupInstanceId": None, "ProtocolType": "consumer", "ProtocolName": "range",
                                         "Assignments": [{"MemberId": m, "Assignment": a} for m, a in assignments]})

    def stable(self, parts):
        r = self.join()
        assert r["ErrorCode"] == 0, r
        r = self.sync([(self.id, assignment(self.topic, parts))])
        assert r["ErrorCode"] == 0, r

    def heartbeat(self):
        return self.conn.request(12, 4, {"GroupId": self.group, "GenerationId": self.generation,
                                         "MemberId": self.id, "GroupInstanceId": None})["ErrorCode"]


def cghb(conn, group, member, epoch, topic):
    return conn.request(68, 1, {"GroupId": group, "MemberId": member, "MemberEpoch": epoch, "InstanceId": None,
                                "RackId": None, "RebalanceTimeoutMs": 30000 if epoch == 0 else -1,
                                "SubscribedTopicNames": [topic] if epoch == 0 else None,
                                "SubscribedTopicRegex": None, "ServerAssignor": None,
                                "TopicPartitions": [] if epoch == 0 else None})


def describe_groups(conn, group):
    return conn.request(15, 5, {"Groups": [group], "IncludeAuthorizedOperations": False})["Groups"][0]


def group_type(conn, group):
    r = conn.request(16, 5, {"StatesFilter": [], "TypesFilter": []})
    for g in r["Groups"]:
        if g["GroupId"] == group:
            return g["GroupType"]
    return None


class MigrationTarget(unittest.TestCase):
    """One target started with EXTRA; a topic of 4 partitions."""
    EXTRA = {}

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-mig-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        extra = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "4"}
        extra.update(cls.EXTRA)
        cls.t = SecureTarget(cls.pki, extra=extra)
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()

    def conn(self):
        c = kwire.Conn(self.t.addr("PLAINTEXT"), client_id="migration-test")
        self.addCleanup(c.close)
        return c

    def ready(self, conn, group, topic=None):
        if topic:
            r = conn.request(19, 4, {"Topics": [{"Name": topic, "NumPartitions": 4, "ReplicationFactor": 1,
                                                 "Assignments": [], "Configs": []}],
                                     "timeoutMs": 30000, "validateOnly": False})
            assert r["Topics"][0]["ErrorCode"] == 0, r

            def leaders():
                m = conn.request(3, 12, {"Topics": [{"Name": topic, "TopicId": b"\0" * 16}],
                                         "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
                t = m["Topics"][0]
                return (t["ErrorCode"] == 0 and len(t["Partitions"]) == 4 and
                        all(p["LeaderId"] >= 0 for p in t["Partitions"])) or t
            wait_until(leaders, "leaders of " + topic)

        def coordinator():
            r = conn.request(10, 4, {"KeyType": 0, "CoordinatorKeys": [group]})
            return r["Coordinators"][0]["ErrorCode"] == 0 or r
        wait_until(coordinator, "the coordinator of " + group)

    def heartbeat_until(self, conn, group, member, epoch, topic):
        """A ConsumerGroupHeartbeat, retried while the coordinator loads."""
        deadline = time.monotonic() + 60
        while True:
            r = cghb(conn, group, member, epoch, topic)
            if r["ErrorCode"] not in RETRIABLE or time.monotonic() > deadline:
                return r
            time.sleep(0.3)


class DisabledPolicyTest(MigrationTarget):
    EXTRA = {"group.consumer.migration.policy": "disabled"}

    def test_no_upgrade_of_a_classic_group(self):
        c = self.conn()
        topic, group = uniq("mig-dis"), uniq("mig-dis-g")
        self.ready(c, group, topic)
        Classic(c, group, topic).stable([0, 1, 2, 3])
        r = self.heartbeat_until(c, group, uuid.uuid4().hex[:22], 0, topic)
        self.assertEqual(r["ErrorCode"], GROUP_ID_NOT_FOUND, r)
        self.assertEqual(r["ErrorMessage"], "Cannot upgrade classic group %s to consumer group because online upgrade"
                                            " is disabled." % group)
        self.assertEqual(group_type(c, group), "classic")

    def test_no_classic_member_in_a_consumer_group(self):
        c = self.conn()
        topic, group = uniq("mig-dis2"), uniq("mig-dis2-g")
        self.ready(c, group, topic)
        r = self.heartbeat_until(c, group, uuid.uuid4().hex[:22], 0, topic)
        self.assertEqual(r["ErrorCode"], 0, r)
        r = Classic(c, group, topic).join()
        self.assertEqual(r["ErrorCode"], INCONSISTENT_GROUP_PROTOCOL, r)
        self.assertEqual(r["MemberId"], "")


class UpgradeOnlyTest(MigrationTarget):
    EXTRA = {"group.consumer.migration.policy": "upgrade"}

    def test_classic_member_joins_and_no_downgrade(self):
        c = self.conn()
        topic, group = uniq("mig-up1"), uniq("mig-up1-g")
        self.ready(c, group, topic)
        mid = uuid.uuid4().hex[:22]
        r = self.heartbeat_until(c, group, mid, 0, topic)
        self.assertEqual(r["ErrorCode"], 0, r)
        k = Classic(c, group, topic)
        r = k.join()
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(r["ProtocolType"], "consumer")
        self.assertEqual(r["ProtocolName"], "range")
        self.assertEqual(r["Leader"], "")
        self.assertEqual(r["Members"], [])
        self.assertGreater(k.generation, 0)
        r = k.sync()
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(group_type(c, group), "consumer")
        # The consumer-protocol member leaves: no downgrade, the classic member goes on in a consumer group.
        # (When it is told to rejoin differs: Kafka 4.4 holds the new target back by its assignment interval and
        # answers its heartbeat with no error meanwhile; kbroker computes the target at once.)
        r = cghb(c, group, mid, -1, topic)
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(group_type(c, group), "consumer")
        self.assertIn(k.heartbeat(), (0, REBALANCE_IN_PROGRESS))
        d = c.request(69, 0, {"GroupIds": [group], "IncludeAuthorizedOperations": False})["Groups"][0]
        self.assertEqual([m["MemberId"] for m in d["Members"]], [k.id])


class MaxSizeTest(MigrationTarget):
    EXTRA = {"group.consumer.max.size": "1"}

    def test_second_member_refused(self):
        c = self.conn()
        topic, group = uniq("mig-max"), uniq("mig-max-g")
        self.ready(c, group, topic)
        r = self.heartbeat_until(c, group, uuid.uuid4().hex[:22], 0, topic)
        self.assertEqual(r["ErrorCode"], 0, r)
        r = cghb(c, group, uuid.uuid4().hex[:22], 0, topic)
        self.assertEqual(r["ErrorCode"], GROUP_MAX_SIZE_REACHED, r)
        self.assertEqual(r["ErrorMessage"], "The consumer group has reached its maximum capacity of 1 members.")
        r = Classic(c, group, topic).join()
        self.assertEqual(r["ErrorCode"], GROUP_MAX_SIZE_REACHED, r)

    def test_full_classic_group_not_upgraded(self):
        c = self.conn()
        topic, group = uniq("mig-max2"), uniq("mig-max2-g")
        self.ready(c, group, topic)
        k = Classic(c, group, topic)
        k.stable([0, 1, 2, 3])
        r = self.heartbeat_until(c, group, uuid.uuid4().hex[:22], 0, topic)
        self.assertEqual(r["ErrorCode"], GROUP_MAX_SIZE_REACHED, r)
        self.assertEqual(group_type(c, group), "classic")
        self.assertEqual(k.heartbeat(), 0)


class UpgradeRestartTest(MigrationTarget):
    def test_upgrade_survives_restart_then_downgrade(self):
        c = self.conn()
        topic, group = uniq("mig-up"), uniq("mig-up-g")
        self.ready(c, group, topic)
        k = Classic(c, group, topic)
        k.stable([0, 1, 2, 3])
        mid = uuid.uuid4().hex[:22]
        r = self.heartbeat_until(c, group, mid, 0, topic)
        self.assertEqual(r["ErrorCode"], 0, r)
        epoch = r["MemberEpoch"]
        self.assertEqual(group_type(c, group), "consumer")
        # DescribeGroups knows classic groups only: a consumer group is Dead there, without error (Kafka 4.4).
        d = describe_groups(c, group)
        self.assertEqual((d["ErrorCode"], d["GroupState"], d["ProtocolType"], d["Members"]), (0, "Dead", "", []))
        # The classic member keeps its partitions until it rejoins.
        self.assertEqual(k.heartbeat(), REBALANCE_IN_PROGRESS)

        restart_target(self.t)
        c = self.conn()
        k.conn = c
        self.ready(c, group)
        wait_until(lambda: group_type(c, group) == "consumer" or group_type(c, group), "the group after restart")
        d = c.request(69, 0, {"GroupIds": [group], "IncludeAuthorizedOperations": False})["Groups"][0]
        self.assertEqual(d["ErrorCode"], 0, d)
        self.assertEqual(sorted(m["MemberId"] for m in d["Members"]), sorted([mid, k.id]))
        # The consumer member goes on where it was; when it leaves the group is classic again.
        r = self.heartbeat_until(c, group, mid, epoch, topic)
        self.assertEqual(r["ErrorCode"], 0, r)
        r = cghb(c, group, mid, -1, topic)
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(group_type(c, group), "classic")
        d = describe_groups(c, group)
        self.assertEqual((d["ErrorCode"], d["GroupState"], d["ProtocolType"]), (0, "PreparingRebalance", "consumer"))
        self.assertEqual([m["MemberId"] for m in d["Members"]], [k.id])
        self.assertEqual(k.heartbeat(), ILLEGAL_GENERATION)


if __name__ == "__main__":
    unittest.main()

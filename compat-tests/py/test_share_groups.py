"""KIP-932 share groups as raw requests: the error paths of ShareGroupHeartbeat, ShareFetch and ShareAcknowledge,
with Apache Kafka's codes, the same on kbroker and Kafka.

A heartbeat of a member the group does not know is UNKNOWN_MEMBER_ID, one with an epoch other than the member's is
FENCED_MEMBER_EPOCH; a ShareFetch continuing a session that was never opened is SHARE_SESSION_NOT_FOUND, one with
the wrong session epoch INVALID_SHARE_SESSION_EPOCH; acknowledging a record this member has not acquired is
INVALID_RECORD_STATE for its partition, and a record acquired by one member cannot be acknowledged by another.
Both brokers serve the share APIs by default."""

import os
import sys
import time
import unittest
import uuid

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
import kwire  # noqa: E402
from common import BrokerTestCase, uniq  # noqa: E402

UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, INVALID_REQUEST = 25, 110, 42
INVALID_RECORD_STATE, SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH = 121, 122, 123
SGH, SGD, SHARE_FETCH, SHARE_ACK = 76, 77, 78, 79
LOADING = (14, 15, 16)


def wait_until(fn, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last is True:
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def create_topic(conn, name, parts):
    r = conn.request(19, 4, {"Topics": [{"Name": name, "NumPartitions": parts, "ReplicationFactor": 1,
                                         "Assignments": [], "Configs": []}],
                             "timeoutMs": 30000, "validateOnly": False})
    assert r["Topics"][0]["ErrorCode"] == 0, r

    out = {}

    def ready():
        m = conn.request(3, 12, {"Topics": [{"Name": name, "TopicId": b"\0" * 16}],
                                 "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
        t = m["Topics"][0]
        if t["ErrorCode"] == 0 and t["Partitions"] and all(p["LeaderId"] >= 0 for p in t["Partitions"]):
            out["id"] = t["TopicId"]
            return True
        return t
    wait_until(ready, "leaders of %s" % name)
    return out["id"]


def produce(conn, topic, values):
    batch = kwire.record_batch([(None, v) for v in values])
    r = conn.request(0, 9, {"TransactionalId": None, "Acks": -1, "TimeoutMs": 30000,
                            "TopicData": [{"Name": topic, "PartitionData": [{"Index": 0, "Records": batch}]}]})
    assert r["Responses"][0]["PartitionResponses"][0]["ErrorCode"] == 0, r


def coordinator_ready(conn, group):
    """Kafka creates __consumer_offsets on the first FindCoordinator: until then NOT_COORDINATOR."""
    def ready():
        r = conn.request(10, 4, {"KeyType": 0, "CoordinatorKeys": [group]})
        return r["Coordinators"][0]["ErrorCode"] == 0 or r
    wait_until(ready, "the coordinator of %s" % group)


def heartbeat(conn, group, member, epoch, topics=None):
    return conn.request(SGH, 1, {"GroupId": group, "MemberId": member, "MemberEpoch": epoch, "RackId": None,
                                 "SubscribedTopicNames": topics})


def join(conn, group, topic):
    """A new member, its first heartbeat retried while the coordinator loads; returns (id, epoch)."""
    member = uuid.uuid4().hex[:22]
    out = {}
    coordinator_ready(conn, group)

    def joined():
        r = heartbeat(conn, group, member, 0, [topic])
        if r["ErrorCode"] in LOADING:
            return r
        assert r["ErrorCode"] == 0, r
        out["epoch"] = r["MemberEpoch"]
        return True
    wait_until(joined, "member of %s" % group)
    return member, out["epoch"]


def share_fetch(conn, group, member, epoch, topic_id, acks=None, wait_ms=0, max_records=100):
    part = {"PartitionIndex": 0, "PartitionMaxBytes": 0, "AcknowledgementBatches": acks or []}
    return conn.request(SHARE_FETCH, 1, {"GroupId": group, "MemberId": member, "ShareSessionEpoch": epoch,
                                         "MaxWaitMs": wait_ms, "MinBytes": 1, "MaxBytes": 1 << 20,
                                         "MaxRecords": max_records, "BatchSize": max_records,
                                         "Topics": [{"TopicId": topic_id, "Partitions": [part]}],
                                         "ForgottenTopicsData": []})


def share_ack(conn, group, member, epoch, topic_id, acks):
    return conn.request(SHARE_ACK, 1, {"GroupId": group, "MemberId": member, "ShareSessionEpoch": epoch,
                                       "Topics": [{"TopicId": topic_id, "Partitions": [
                                           {"PartitionIndex": 0, "AcknowledgementBatches": acks}]}]})


def acquired(resp):
    out = []
    for t in resp["Responses"] or []:
        for p in t["Partitions"]:
            out += [(a["FirstOffset"], a["LastOffset"], a["DeliveryCount"]) for a in p["AcquiredRecords"] or []]
    return out


def part_errors(resp):
    return [(p["ErrorCode"], p.get("AcknowledgeErrorCode", 0)) for t in resp["Responses"] or []
            for p in t["Partitions"]]


class ShareGroupErrorsTest(BrokerTestCase):

    def conn(self):
        c = kwire.Conn(self.bootstrap, client_id="share-test")
        self.addCleanup(c.close)
        return c

    def setup_group(self):
        c = self.conn()
        topic, group = uniq("sh"), uniq("shg")
        tid = create_topic(c, topic, 1)
        member, epoch = join(c, group, topic)
        return c, topic, tid, group, member, epoch

    def acquiring_group(self):
        """A group whose member has a share session and acquired records (the share-partition starts at the
        latest offset when first fetched, so records are produced until a fetch acquires some). The member
        heartbeats meanwhile, as clients do: Kafka's group coordinator initialises a share-partition in the
        share coordinator after an assignment, asynchronously, and a fetch before that gets nothing ("Read
        operation on uninitialized share partition"). Should one never initialise, a fresh group and topic
        are tried (at most 3). Returns (conn, topic id, group, member, next session epoch, acquired)."""
        for attempt in range(3):
            c, topic, tid, group, member, mepoch = self.setup_group()
            r = share_fetch(c, group, member, 0, tid, wait_ms=100)
            self.assertEqual(r["ErrorCode"], 0, r)
            epoch = 1
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                h = heartbeat(c, group, member, mepoch)
                self.assertEqual(h["ErrorCode"], 0, h)
                mepoch = h["MemberEpoch"]
                produce(c, topic, [b"v1", b"v2", b"v3"])
                r = share_fetch(c, group, member, epoch, tid, wait_ms=500)
                self.assertEqual(r["ErrorCode"], 0, r)
                epoch += 1
                if acquired(r):
                    return c, tid, group, member, epoch, acquired(r)
                time.sleep(0.3)
        self.fail("no records acquired by a new share group in 3 attempts")

    def test_heartbeat_unknown_member(self):
        c, topic, tid, group, member, epoch = self.setup_group()
        r = heartbeat(c, group, uuid.uuid4().hex[:22], epoch)
        self.assertEqual(r["ErrorCode"], UNKNOWN_MEMBER_ID, r)

    def test_heartbeat_fenced_epoch(self):
        c, topic, tid, group, member, epoch = self.setup_group()
        r = heartbeat(c, group, member, epoch + 5)
        self.assertEqual(r["ErrorCode"], FENCED_MEMBER_EPOCH, r)
        r = heartbeat(c, group, member, epoch)
        self.assertEqual(r["ErrorCode"], 0, r)

    def test_list_groups_share_type(self):
        c, topic, tid, group, member, epoch = self.setup_group()
        r = c.request(16, 5, {"StatesFilter": [], "TypesFilter": ["share"]})
        self.assertEqual(r["ErrorCode"], 0, r)
        mine = [g for g in r["Groups"] if g["GroupId"] == group]
        self.assertEqual(mine, [{"GroupId": group, "ProtocolType": "share", "GroupState": "Stable",
                                 "GroupType": "share"}], r)
        r = c.request(16, 5, {"StatesFilter": [], "TypesFilter": ["consumer", "classic"]})
        self.assertEqual([g for g in r["Groups"] if g["GroupId"] == group], [], r)
        self.assertEqual(heartbeat(c, group, member, -1)["ErrorCode"], 0)
        r = c.request(16, 5, {"StatesFilter": ["Empty"], "TypesFilter": []})
        self.assertEqual([g["GroupState"] for g in r["Groups"] if g["GroupId"] == group], ["Empty"], r)

    def test_heartbeat_first_without_topics(self):
        c = self.conn()
        group = uniq("shg")
        coordinator_ready(c, group)
        r = heartbeat(c, group, uuid.uuid4().hex[:22], 0, None)
        if r["ErrorCode"] in LOADING:
            self.skipTest("coordinator loading")
        self.assertEqual(r["ErrorCode"], INVALID_REQUEST, r)

    def test_fetch_session_not_found_and_bad_epoch(self):
        c, topic, tid, group, member, epoch = self.setup_group()
        r = share_fetch(c, group, member, 1, tid)
        self.assertEqual(r["ErrorCode"], SHARE_SESSION_NOT_FOUND, r)
        r = share_fetch(c, group, member, 0, tid)
        self.assertEqual(r["ErrorCode"], 0, r)
        r = share_fetch(c, group, member, 7, tid)
        self.assertEqual(r["ErrorCode"], INVALID_SHARE_SESSION_EPOCH, r)
        r = share_fetch(c, group, member, 1, tid)
        self.assertEqual(r["ErrorCode"], 0, r)

    def test_ack_epoch_zero(self):
        c, topic, tid, group, member, epoch = self.setup_group()
        r = share_ack(c, group, member, 0, tid, [])
        self.assertEqual(r["ErrorCode"], INVALID_SHARE_SESSION_EPOCH, r)

    def test_ack_not_acquired(self):
        c, tid, group, member, sepoch, acq = self.acquiring_group()
        first, last, _ = acq[0]
        self.assertGreater(last, first, acq)  # three records in one batch: one range of three

        def ack(f, l):
            nonlocal sepoch
            r = share_ack(c, group, member, sepoch, tid, [{"FirstOffset": f, "LastOffset": l,
                                                           "AcknowledgeTypes": [1]}])
            sepoch += 1
            self.assertEqual(r["ErrorCode"], 0, r)
            return [(p["ErrorCode"], p["ErrorMessage"]) for t in r["Responses"] for p in t["Partitions"]]
        # Past everything acquired: INVALID_REQUEST, with Kafka's words.
        self.assertEqual(ack(last + 1000, last + 1000), [(INVALID_REQUEST, "Batch record not found. The first "
                                                          "offset in request is past acquired records.")])
        self.assertEqual(ack(last, last + 1000), [(INVALID_REQUEST, "Batch record not found. The last offset "
                                                   "in request is past acquired records.")])
        # Accepted once, then again (the start offset stays: the first record is still acquired).
        self.assertEqual(ack(last, last), [(0, None)])
        self.assertEqual(ack(last, last), [(INVALID_RECORD_STATE,
                                            "The offset cannot be acknowledged. The offset is not acquired.")])
        # Piggy-backed on a ShareFetch, the same answer is the partition's acknowledge error.
        r = share_fetch(c, group, member, sepoch, tid, acks=[{"FirstOffset": last, "LastOffset": last,
                                                             "AcknowledgeTypes": [1]}])
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual([(p["AcknowledgeErrorCode"], p["AcknowledgeErrorMessage"])
                          for t in r["Responses"] for p in t["Partitions"]],
                         [(INVALID_RECORD_STATE, "The offset cannot be acknowledged. The offset is not acquired.")])

    def test_ack_by_another_member(self):
        c, tid, group, member, sepoch, acq = self.acquiring_group()
        first, last, _ = acq[0]
        topic_name = None  # the other member subscribes by name: read it back from the describe
        d = c.request(SGD, 1, {"GroupIds": [group], "IncludeAuthorizedOperations": False})
        topic_name = d["Groups"][0]["Members"][0]["SubscribedTopicNames"][0]
        other, _ = join(c, group, topic_name)
        r = share_fetch(c, group, other, 0, tid)
        self.assertEqual(r["ErrorCode"], 0, r)
        r = share_ack(c, group, other, 1, tid, [{"FirstOffset": first, "LastOffset": first,
                                                 "AcknowledgeTypes": [1]}])
        errs = [(p["ErrorCode"], p["ErrorMessage"]) for t in r["Responses"] for p in t["Partitions"]]
        self.assertEqual([e for e, _ in errs], [INVALID_RECORD_STATE], r)
        # Kafka ends the message with "batch record" or "offset" after how it happens to track the records
        # (whole fetched batches until one is acknowledged in part); kbroker tracks offsets (DIFFERENCES.md).
        self.assertTrue(errs[0][1].startswith("Member is not the owner of "), errs)
        # Still the first member's to acknowledge.
        r = share_ack(c, group, member, sepoch, tid, [{"FirstOffset": first, "LastOffset": first,
                                                       "AcknowledgeTypes": [1]}])
        self.assertEqual([e for e, _ in part_errors(r)], [0], r)

if __name__ == "__main__":
    unittest.main()

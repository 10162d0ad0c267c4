"""Share-group admin operations and __share_group_state (issue 18 review).

AlterShareGroupOffsets with StartOffset -1 on a share-partition that has records in flight, then the
operations that walk the group's share-partitions (a heartbeat of a new member, DescribeShareGroupOffsets,
DeleteGroups): the broker answers them (kbroker used to dereference the freed share-partition and die).

What the admin operations write to __share_group_state, read back with plain Fetch requests (decoders of
test_share_state.py): an altered start is a ShareSnapshot with that start offset; DeleteGroups ends the
share-partition's records with a tombstone (its key, a null value). Both are durable before the answer, so
(kbroker only: kills the process) a deleted share group stays deleted and an altered start stays altered after a
kill -9, and a deleted share-partition no longer holds back the pruning of its state partition."""

import os
import sys
import time
import unittest
import uuid

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
sys.path.insert(0, _HERE)
import kwire  # noqa: E402
import test_share_groups as tsg  # noqa: E402
import test_share_state as tss  # noqa: E402
from broker import is_kbroker  # noqa: E402
from common import BrokerTestCase, kbroker_only, uniq  # noqa: E402

ACCEPT, RELEASE = 1, 2


def tid_bytes(tid):
    return uuid.UUID(tid).bytes if isinstance(tid, str) else tid


def inflight_group(test, c):
    """A member acquires >= 3 records, accepts the first, releases the rest and leaves: the share-partition
    keeps available records in flight, and the group is empty."""
    topic, group = uniq("sas"), uniq("sasg")
    tid = tsg.create_topic(c, topic, 1)
    member, mepoch = tsg.join(c, group, topic)
    epoch, mepoch, offs = tss.acquire_some(test, c, topic, tid, group, member, mepoch)
    a = tsg.share_ack(c, group, member, epoch, tid,
                      [{"FirstOffset": offs[0], "LastOffset": offs[0], "AcknowledgeTypes": [ACCEPT]},
                       {"FirstOffset": offs[1], "LastOffset": offs[-1], "AcknowledgeTypes": [RELEASE]}])
    test.assertEqual(a["ErrorCode"], 0, a)
    h = tsg.heartbeat(c, group, member, -1)
    test.assertEqual(h["ErrorCode"], 0, h)
    return topic, tid, group, offs


def alter(test, c, group, topic, start, timeout=60.0):
    """AlterShareGroupOffsets of partition 0; retried while the coordinator is not ready (the state topic is
    created on first use) or the group is not empty yet (Kafka expires a left member asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.request(91, 0, {"GroupId": group, "Topics": [{"TopicName": topic, "Partitions": [
            {"PartitionIndex": 0, "StartOffset": start}]}]})
        if r["ErrorCode"] in (14, 15, 16, 68) and time.monotonic() < deadline:
            time.sleep(0.3)
            continue
        test.assertEqual(r["ErrorCode"], 0, r)
        test.assertEqual([p["ErrorCode"] for t in r["Responses"] for p in t["Partitions"]], [0], r)
        return


def describe(c, group):
    return c.request(90, 1, {"Groups": [{"GroupId": group, "Topics": None}]})["Groups"][0]


def starts(c, group):
    g = describe(c, group)
    assert g["ErrorCode"] == 0, g
    return [p["StartOffset"] for t in g["Topics"] for p in t["Partitions"]]


def raw_state_records(conn, group, topic_id):
    """(type, value or None for a tombstone) of every record of (group, topic, 0), in offset order, with the
    state partition they are in."""
    m = conn.request(3, 12, {"Topics": [{"Name": tss.STATE_TOPIC, "TopicId": b"\0" * 16}],
                             "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
    t = m["Topics"][0]
    assert t["ErrorCode"] == 0, m
    nparts = len(t["Partitions"])
    p = tss.java_partition_for(group, topic_id, 0, nparts)
    out, offset = [], tss.earliest(conn, tss.STATE_TOPIC, p)
    while True:
        r = conn.request(1, 12, {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 0, "MaxBytes": 1 << 20,
                                 "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1,
                                 "Topics": [{"Topic": tss.STATE_TOPIC, "Partitions": [
                                     {"Partition": p, "CurrentLeaderEpoch": -1, "FetchOffset": offset,
                                      "LastFetchedEpoch": -1, "LogStartOffset": -1,
                                      "PartitionMaxBytes": 1 << 20}]}],
                                 "ForgottenTopicsData": [], "RackId": ""})
        pd = r["Responses"][0]["Partitions"][0]
        assert pd["ErrorCode"] == 0, pd
        batches = [b for b in kwire.read_batches(pd["Records"]) if "records" in b]
        if not batches:
            break
        for b in batches:
            for rec in b["records"]:
                rtype, g, tid, part = tss.decode_key(rec["key"])
                if g == group and tid == topic_id and part == 0:
                    v = rec["value"]
                    out.append((rtype, None if v is None else tss.decode_value(rtype, v)))
            offset = b["base_offset"] + b["last_offset_delta"] + 1
        if offset >= pd["HighWatermark"]:
            break
    return p, out


class AlterResetThenWalkTest(BrokerTestCase):
    def test_alter_minus_one_then_heartbeat_describe_delete(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-state")
        self.addCleanup(c.close)
        topic, tid, group, offs = inflight_group(self, c)
        alter(self, c, group, topic, -1)
        # A new member's heartbeat, then DescribeShareGroupOffsets: both walk the reset share-partition.
        h = tsg.heartbeat(c, group, uniq("m"), 0, [topic])
        self.assertEqual(h["ErrorCode"], 0, h)
        h = tsg.heartbeat(c, group, h["MemberId"], -1)
        self.assertEqual(h["ErrorCode"], 0, h)
        self.assertEqual(describe(c, group)["ErrorCode"], 0)
        tsg.wait_until(lambda: c.request(42, 2, {"GroupsNames": [group]})["Results"][0]["ErrorCode"] == 0 or None,
                       "DeleteGroups of the emptied share group")
        if is_kbroker():
            self.assertIsNone(self.broker.proc.poll(), "kbroker died")


class AdminStateRecordsTest(BrokerTestCase):
    def test_alter_writes_snapshot_delete_writes_tombstone(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-state")
        self.addCleanup(c.close)
        topic, tid, group, offs = inflight_group(self, c)
        alter(self, c, group, topic, offs[0])
        # Durable before the answer: readable now.
        _, recs = raw_state_records(c, group, tid_bytes(tid))
        self.assertTrue(recs, recs)
        rtype, v = recs[-1]
        self.assertEqual(rtype, 0, "an altered start is a ShareSnapshot: %r" % recs)
        self.assertEqual((v["StartOffset"], v["StateBatches"]), (offs[0], []), recs)
        tsg.wait_until(lambda: c.request(42, 2, {"GroupsNames": [group]})["Results"][0]["ErrorCode"] == 0 or None,
                       "DeleteGroups of the share group")
        _, recs = raw_state_records(c, group, tid_bytes(tid))
        self.assertIsNone(recs[-1][1], "DeleteGroups ends with a tombstone: %r" % recs)


    def test_delete_offsets_writes_tombstone(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-state")
        self.addCleanup(c.close)
        topic, tid, group, offs = inflight_group(self, c)
        alter(self, c, group, topic, offs[0])

        def deleted():
            r = c.request(92, 0, {"GroupId": group, "Topics": [{"TopicName": topic}]})
            return r["ErrorCode"] == 0 or r

        tsg.wait_until(deleted, "DeleteShareGroupOffsets of the emptied share group")
        _, recs = raw_state_records(c, group, tid_bytes(tid))
        self.assertIsNone(recs[-1][1], "DeleteShareGroupOffsets ends with a tombstone: %r" % recs)

    def test_alter_minus_one_writes_snapshot_without_start(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-state")
        self.addCleanup(c.close)
        topic, tid, group, offs = inflight_group(self, c)
        alter(self, c, group, topic, -1)
        _, recs = raw_state_records(c, group, tid_bytes(tid))
        rtype, v = recs[-1]
        self.assertEqual((rtype, v["StartOffset"], v["StateBatches"]), (0, -1, []), recs)
        self.assertEqual(starts(c, group), [-1])


def kill9_restart(test, c):
    c.close()
    test.broker.kill9()
    test.broker.start()
    c = kwire.Conn(test.bootstrap, client_id="share-admin-state")
    test.addCleanup(c.close)
    return c


@kbroker_only("kills and restarts the broker process")
class AdminStateRestartTest(BrokerTestCase):
    def test_deleted_group_stays_deleted(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-state")
        topic, tid, group, offs = inflight_group(self, c)
        r = c.request(42, 2, {"GroupsNames": [group]})["Results"][0]
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(describe(c, group)["Topics"], [])
        c = kill9_restart(self, c)
        tsg.coordinator_ready(c, group)
        self.assertEqual(describe(c, group)["Topics"], [], "deleted share group came back after a restart")

    def test_deleted_offsets_stay_deleted(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-state")
        topic, tid, group, offs = inflight_group(self, c)
        r = c.request(92, 0, {"GroupId": group, "Topics": [{"TopicName": topic}]})
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(starts(c, group), [])
        c = kill9_restart(self, c)
        tsg.coordinator_ready(c, group)
        self.assertEqual(starts(c, group), [], "deleted share offsets came back after a restart")

    def test_altered_start_kept(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-state")
        topic, tid, group, offs = inflight_group(self, c)
        alter(self, c, group, topic, offs[0])
        self.assertEqual(starts(c, group), [offs[0]])
        c = kill9_restart(self, c)
        tsg.coordinator_ready(c, group)
        self.assertEqual(starts(c, group), [offs[0]], "altered start lost after a restart")


@kbroker_only("kbroker's pruning of a state partition (Kafka prunes on its own schedule)")
class TombstoneUnpinsPruningTest(BrokerTestCase):
    def test_deleted_share_partition_no_longer_pins_pruning(self):
        c = kwire.Conn(self.bootstrap, client_id="share-admin-state")
        self.addCleanup(c.close)
        topic = uniq("sap")
        tid = tid_bytes(tsg.create_topic(c, topic, 1))
        ga = uniq("sapa")
        alter(self, c, ga, topic, 0)
        p, _ = raw_state_records(c, ga, tid)
        # Another group whose share-partition's records go to the same state partition.
        gb = next(g for g in (uniq("sapb") for _ in range(10000)) if tss.java_partition_for(g, tid, 0, 50) == p)
        alter(self, c, gb, topic, 0)
        hw = c.request(2, 7, {"ReplicaId": -1, "IsolationLevel": 0, "Topics": [{"Name": tss.STATE_TOPIC,
                       "Partitions": [{"PartitionIndex": p, "CurrentLeaderEpoch": -1, "Timestamp": -1}]}]})
        a_snapshot_end = hw["Topics"][0]["Partitions"][0]["Offset"]  # past both snapshots
        r = c.request(42, 2, {"GroupsNames": [ga]})["Results"][0]
        self.assertEqual(r["ErrorCode"], 0, r)

        def pruned_past_a():
            alter(self, c, gb, topic, 0)  # each snapshot of gb prunes below the previous one
            e = tss.earliest(c, tss.STATE_TOPIC, p)
            return e >= a_snapshot_end or e

        tsg.wait_until(pruned_past_a, "state partition %d pruned past the deleted group's snapshot" % p)


if __name__ == "__main__":
    unittest.main()

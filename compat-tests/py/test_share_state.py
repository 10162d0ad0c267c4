"""Durable share-group state (issue 18): the __share_group_state records on the wire, the same on kbroker and
Apache Kafka 4.4, and (kbroker only) a share-partition's state surviving a broker kill -9.

A member acquires records and acknowledges them (ACCEPT the first, REJECT the second, RELEASE the rest); once
the ShareAcknowledge answer is in, __share_group_state is read with plain Fetch requests and decoded here
(independently of the broker's codecs): keys are the int16 record type (0 ShareSnapshot, 1 ShareUpdate) then
the v0 key (group id, topic id, partition); values are the int16 version 0 then the flexible value. The records
of the share-partition sit in the partition Kafka's hash of "group:topicId:partition" names, the first is a
snapshot, and replaying them (snapshot, then updates merged over it) gives the state the acknowledgements made:
the accepted and rejected records done (below the start offset, or in Acknowledged / Archived batches: Kafka
leaves its start offset on them, kbroker moves it past), the released ones Available with delivery count 1.
kbroker also writes a record at acquisition (so a restart keeps delivery counts), Kafka only at
acknowledgement; the replayed state is compared, not the count of records. kbroker prunes a state partition
below the oldest latest-snapshot of its share-partitions, as Kafka's share coordinator does; the pruned-restart
case checks that a restart from a pruned partition keeps the state too."""

import base64
import os
import struct
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
from broker import is_kbroker  # noqa: E402
from common import BrokerTestCase, kbroker_only, uniq  # noqa: E402

STATE_TOPIC = "__share_group_state"
ACCEPT, RELEASE, REJECT = 1, 2, 3


# ---------------------------------------------------------------- decoding, written from Kafka 4.4's definitions

class R:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        assert self.p + n <= len(self.b), "short record"
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def un(self, fmt):
        return struct.unpack(">" + fmt, self.take(struct.calcsize(">" + fmt)))[0]

    def uvarint(self):
        shift = v = 0
        while True:
            c = self.take(1)[0]
            v |= (c & 0x7F) << shift
            if not c & 0x80:
                return v
            shift += 7

    def tags(self):
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = self.take(self.uvarint())
        return out

    def done(self):
        assert self.p == len(self.b), "%d trailing bytes" % (len(self.b) - self.p)


def decode_key(b):
    r = R(b)
    rtype = r.un("h")
    n = r.un("h")
    group = r.take(n).decode()
    topic_id = r.take(16)
    part = r.un("i")
    r.done()
    return rtype, group, topic_id, part


def decode_value(rtype, b):
    r = R(b)
    version = r.un("h")
    assert version == 0, "value version %d" % version
    v = {"version": version, "SnapshotEpoch": r.un("i")}
    if rtype == 0:
        v["StateEpoch"] = r.un("i")
    v["LeaderEpoch"] = r.un("i")
    v["StartOffset"] = r.un("q")
    if rtype == 0:
        v["CreateTimestamp"] = r.un("q")
        v["WriteTimestamp"] = r.un("q")
    batches = []
    for _ in range(r.uvarint() - 1):
        batches.append((r.un("q"), r.un("q"), r.un("b"), r.un("h")))
        r.tags()
    v["StateBatches"] = batches
    tags = r.tags()
    if 0 in tags:
        v["DeliveryCompleteCount"] = struct.unpack(">i", tags[0])[0]
    r.done()
    return v


def java_partition_for(group, topic_id, partition, n):
    key = "%s:%s:%d" % (group, base64.urlsafe_b64encode(topic_id).decode().rstrip("="), partition)
    h = 0
    for unit in struct.unpack("<%dH" % (len(key.encode("utf-16-le")) // 2), key.encode("utf-16-le")):
        h = (h * 31 + unit) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return (0 if h == -(1 << 31) else abs(h)) % n


def replay(records):
    """Kafka's ShareCoordinatorShard: a snapshot replaces, an update's batches replace what they cover and its
    start offset (unless -1) moves the start; batches below the start go. Returns (start, {offset: (state,
    count)})."""
    start, per = None, {}
    for rtype, v in records:
        if rtype == 0:
            # Kafka's InitializeShareGroupState writes StartOffset -1: not known yet.
            start, per = v["StartOffset"], {}
        elif v["StartOffset"] >= 0:
            start = v["StartOffset"]
        for first, last, state, count in v["StateBatches"]:
            for o in range(first, last + 1):
                per[o] = (state, count)
        per = {o: s for o, s in per.items() if o >= start}
    return start, per


# ---------------------------------------------------------------- the broker side

def state_records(conn, group, topic_id):
    """Every record of (group, topic, 0) in __share_group_state, by partition, in offset order."""
    m = conn.request(3, 12, {"Topics": [{"Name": STATE_TOPIC, "TopicId": b"\0" * 16}],
                             "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
    t = m["Topics"][0]
    assert t["ErrorCode"] == 0, m
    assert t["IsInternal"], t
    nparts = len(t["Partitions"])
    found = {}
    for p in range(nparts):
        offset = 0
        while True:
            r = conn.request(1, 12, {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 0, "MaxBytes": 1 << 20,
                                     "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1,
                                     "Topics": [{"Topic": STATE_TOPIC, "Partitions": [
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
                    rtype, g, tid, part = decode_key(rec["key"])
                    if g == group and tid == topic_id and part == 0:
                        found.setdefault(p, []).append((rtype, decode_value(rtype, rec["value"])))
                offset = b["base_offset"] + b["last_offset_delta"] + 1
            if offset >= pd["HighWatermark"]:
                break
    return nparts, found


def acquire_some(test, c, topic, tid, group, member, mepoch):
    """Heartbeats and fetches (producing meanwhile) until a fetch acquires records: Kafka initialises a
    share-partition asynchronously after the assignment. Returns (next session epoch, member epoch, offsets)."""
    r = tsg.share_fetch(c, group, member, 0, tid, wait_ms=100)
    test.assertEqual(r["ErrorCode"], 0, r)
    epoch = 1
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        h = tsg.heartbeat(c, group, member, mepoch)
        test.assertEqual(h["ErrorCode"], 0, h)
        mepoch = h["MemberEpoch"]
        tsg.produce(c, topic, [b"v1", b"v2", b"v3", b"v4"])
        r = tsg.share_fetch(c, group, member, epoch, tid, wait_ms=500)
        test.assertEqual(r["ErrorCode"], 0, r)
        epoch += 1
        offs = sorted(o for f, last, _ in tsg.acquired(r) for o in range(f, last + 1))
        if len(offs) >= 3:
            return epoch, mepoch, offs
        if offs:
            # Too few to acknowledge three ways: give them back and fetch again.
            a = tsg.share_ack(c, group, member, epoch, tid,
                              [{"FirstOffset": offs[0], "LastOffset": offs[-1], "AcknowledgeTypes": [ACCEPT]}])
            epoch += 1
            test.assertEqual(a["ErrorCode"], 0, a)
        time.sleep(0.2)
    test.fail("no three records acquired by a new share group in 40 s")


def acks_for(offs):
    """ACCEPT the first, REJECT the second, RELEASE the rest (contiguous offsets from one fetch)."""
    return [{"FirstOffset": offs[0], "LastOffset": offs[0], "AcknowledgeTypes": [ACCEPT]},
            {"FirstOffset": offs[1], "LastOffset": offs[1], "AcknowledgeTypes": [REJECT]},
            {"FirstOffset": offs[2], "LastOffset": offs[-1], "AcknowledgeTypes": [RELEASE]}]


class ShareStateRecordsTest(BrokerTestCase):

    def conn(self):
        c = kwire.Conn(self.bootstrap, client_id="share-state-test")
        self.addCleanup(c.close)
        return c

    def group_with_acks(self):
        c = self.conn()
        topic, group = uniq("shs"), uniq("shsg")
        tid = tsg.create_topic(c, topic, 1)
        member, mepoch = tsg.join(c, group, topic)
        epoch, mepoch, offs = acquire_some(self, c, topic, tid, group, member, mepoch)
        self.assertEqual(offs, list(range(offs[0], offs[-1] + 1)), offs)
        a = tsg.share_ack(c, group, member, epoch, tid, acks_for(offs))
        self.assertEqual(a["ErrorCode"], 0, a)
        self.assertEqual(tsg.part_errors(a), [(0, 0)], a)
        return c, topic, tid, group, member, epoch + 1, offs

    def test_records_on_the_wire(self):
        c, topic, tid, group, member, epoch, offs = self.group_with_acks()
        tid = uuid.UUID(tid).bytes if isinstance(tid, str) else tid
        # Written before the answer: readable now, no wait.
        nparts, found = state_records(c, group, tid)
        if is_kbroker():
            self.assertEqual(nparts, 50)  # share.coordinator.state.topic.num.partitions' default, as Kafka's
        self.assertEqual(list(found), [java_partition_for(group, tid, 0, nparts)], found.keys())
        recs = next(iter(found.values()))
        self.assertEqual(recs[0][0], 0, "the first record of a share-partition is a ShareSnapshot: %r" % recs)
        self.assertTrue(all(t in (0, 1) for t, _ in recs), recs)
        start, per = replay(recs)
        # Kafka keeps the start offset at the first acknowledged record and marks it and the rejected one
        # done in batches; kbroker moves the start past them: the same state. Offsets below the start and
        # Acknowledged (2) / Archived (4) ones are done, Available (0) ones pending with their count.
        self.assertIsNotNone(start, recs)
        self.assertGreaterEqual(start, 0, recs)

        def state(o):
            if o < start or per.get(o, (0, 0))[0] in (2, 4):
                return "done"
            return per.get(o, (0, 0))

        self.assertEqual([state(o) for o in offs], ["done", "done"] + [(0, 1)] * (len(offs) - 2), recs)
        self.assertLessEqual(start, offs[2], recs)

    def test_state_topic_configs(self):
        c, topic, tid, group, member, epoch, offs = self.group_with_acks()
        r = c.request(32, 4, {"Resources": [{"ResourceType": 2, "ResourceName": STATE_TOPIC,
                                             "ConfigurationKeys": ["cleanup.policy", "compression.type", "retention.ms"]}],
                              "IncludeSynonyms": False, "IncludeDocumentation": False})
        res = r["Results"][0]
        self.assertEqual(res["ErrorCode"], 0, r)
        got = {x["Name"]: x["Value"] for x in res["Configs"]}
        # Kafka 4.4's: not compacted; its coordinator prunes what snapshots made useless.
        self.assertEqual(got, {"cleanup.policy": "delete", "compression.type": "producer", "retention.ms": "-1"}, r)


def earliest(conn, topic, partition):
    r = conn.request(2, 7, {"ReplicaId": -1, "IsolationLevel": 0, "Topics": [
        {"Name": topic, "Partitions": [{"PartitionIndex": partition, "CurrentLeaderEpoch": -1, "Timestamp": -2}]}]})
    p = r["Topics"][0]["Partitions"][0]
    assert p["ErrorCode"] == 0, r
    return p["Offset"]


def kill9_keeps_state(test, pruned):
    """Acknowledged, acquired and new records across a kill -9; with pruned, the share-partition's state
    partition no longer starts at 0 before the kill (the replay starts past what snapshots made useless)."""
    c = kwire.Conn(test.bootstrap, client_id="share-state-test")
    topic, group = uniq("shr"), uniq("shrg")
    tid = tsg.create_topic(c, topic, 1)
    member, mepoch = tsg.join(c, group, topic)
    epoch, mepoch, offs = acquire_some(test, c, topic, tid, group, member, mepoch)
    a = tsg.share_ack(c, group, member, epoch, tid, acks_for(offs))
    test.assertEqual(tsg.part_errors(a), [(0, 0)], a)
    # Fetch the released ones again (delivery count 2), leave them acquired, and produce one more record.
    r = tsg.share_fetch(c, group, member, epoch + 1, tid, wait_ms=2000)
    test.assertEqual(tsg.acquired(r), [(offs[2], offs[-1], 2)], r)
    tid_b = uuid.UUID(tid).bytes if isinstance(tid, str) else tid
    sp = java_partition_for(group, tid_b, 0, 50)
    if pruned:
        test.assertGreater(earliest(c, STATE_TOPIC, sp), 0)
    else:
        test.assertEqual(earliest(c, STATE_TOPIC, sp), 0)
    c.close()
    test.broker.kill9()
    test.broker.start()
    c = kwire.Conn(test.bootstrap, client_id="share-state-test")
    test.addCleanup(c.close)
    tsg.produce(c, topic, [b"after"])
    member2, _ = tsg.join(c, group, topic)
    got = []
    deadline = time.monotonic() + 30
    epoch = 0
    while time.monotonic() < deadline and sum(last - f + 1 for f, last, _ in got) < len(offs) - 2 + 1:
        r = tsg.share_fetch(c, group, member2, epoch, tid, wait_ms=500)
        test.assertEqual(r["ErrorCode"], 0, r)
        epoch += 1
        got += tsg.acquired(r)
    # The accepted and rejected records never again; the ones acquired at the kill with their third
    # delivery; the record produced after the restart (past the kept start offset) with its first.
    test.assertEqual(got, [(offs[2], offs[-1], 3), (offs[-1] + 1, offs[-1] + 1, 1)], got)


@kbroker_only("kills and restarts the broker process")
class ShareStateRestartTest(BrokerTestCase):

    def test_kill9_keeps_share_partition_state(self):
        kill9_keeps_state(self, pruned=False)


@kbroker_only("kills and restarts the broker process")
class ShareStatePrunedRestartTest(BrokerTestCase):
    # Every record a snapshot: each write prunes below the previous one.
    extra_sets = ("share.coordinator.snapshot.update.records.per.snapshot=0",)

    def test_kill9_after_pruning(self):
        kill9_keeps_state(self, pruned=True)


if __name__ == "__main__":
    unittest.main()

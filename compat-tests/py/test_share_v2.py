"""ShareFetch and ShareAcknowledge v2 (KIP-1206 acquire modes, KIP-1222 renew acknowledgements), raw requests.

Owns: its topics and groups, on the target broker (Kafka 4.4.0 or kbroker 1 and 2 shards). Must not: depend on
another test's state.

- record_limit (ShareAcquireMode 1) acquires at most MaxRecords records.
- RENEW (acknowledge type 4) in a ShareAcknowledge v2 with IsRenewAck keeps the record acquired with a fresh
  lock: accepted after its first lock would have expired. A ShareFetch v2 with IsRenewAck renews and fetches
  nothing; with MaxBytes/MinBytes/MaxRecords/MaxWaitMs not 0 it is INVALID_REQUEST.
- RENEW without IsRenewAck, or in v1: the partition's INVALID_REQUEST; with the group config
  share.renew.acknowledge.enable=false: INVALID_RECORD_STATE and Kafka's message."""

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
from common import BrokerTestCase, uniq  # noqa: E402

ACCEPT, RENEW = 1, 4
INVALID_REQUEST, INVALID_RECORD_STATE = 42, 121
LOCK_MS = 3000


def set_configs(c, group, **kv):
    """Sets the group's configs and waits until they are described (Kafka publishes them a little later)."""
    names = [k.replace("_", ".") for k in kv]
    r = c.request(44, 1, {"Resources": [{"ResourceType": 32, "ResourceName": group, "Configs": [
        {"Name": n, "ConfigOperation": 0, "Value": v} for n, v in zip(names, kv.values())]}],
        "ValidateOnly": False})["Responses"][0]
    assert r["ErrorCode"] == 0, r

    def published():
        d = c.request(32, 4, {"Resources": [{"ResourceType": 32, "ResourceName": group, "ConfigurationKeys": names}],
                              "IncludeSynonyms": False, "IncludeDocumentation": False})["Results"][0]["Configs"]
        return all(e["ConfigSource"] == 8 for e in d) or d
    tsg.wait_until(published, "configs of %s published" % group, timeout=15.0)


def fetch2(c, group, member, epoch, tid, acks=None, renew=False, mode=0, max_records=2, wait_ms=500):
    part = {"PartitionIndex": 0, "PartitionMaxBytes": 0, "AcknowledgementBatches": acks or []}
    zero = renew
    return c.request(78, 2, {"GroupId": group, "MemberId": member, "ShareSessionEpoch": epoch,
                             "MaxWaitMs": 0 if zero else wait_ms, "MinBytes": 0 if zero else 1,
                             "MaxBytes": 0 if zero else 1 << 20, "MaxRecords": 0 if zero else max_records,
                             "BatchSize": 0 if zero else max_records, "ShareAcquireMode": mode,
                             "IsRenewAck": renew, "Topics": [{"TopicId": tid, "Partitions": [part]}],
                             "ForgottenTopicsData": []})


def ack2(c, group, member, epoch, tid, acks, renew=True, version=2):
    body = {"GroupId": group, "MemberId": member, "ShareSessionEpoch": epoch,
            "Topics": [{"TopicId": tid, "Partitions": [{"PartitionIndex": 0, "AcknowledgementBatches": acks}]}]}
    if version >= 2:
        body["IsRenewAck"] = renew
    return c.request(79, version, body)


def one(offset, kind):
    return [{"FirstOffset": offset, "LastOffset": offset, "AcknowledgeTypes": [kind]}]


class ShareV2Test(BrokerTestCase):
    extra_sets = ("group.share.min.record.lock.duration.ms=1000",)  # as kafka_ref.REF_SETTINGS: a 3 s lock

    def setup_group(self, c, **configs):
        """A 1-partition topic of 6 records and a member whose record_limit fetch acquired offsets 0-1."""
        topic, group = uniq("sv2"), uniq("sv2g")
        tid = tsg.create_topic(c, topic, 1)
        tsg.produce(c, topic, [b"r%d" % i for i in range(6)])
        set_configs(c, group, share_auto_offset_reset="earliest", **configs)
        member, _ = tsg.join(c, group, topic)
        out = {"epoch": 0}

        def got():
            r = fetch2(c, group, member, out["epoch"], tid, mode=1)
            self.assertEqual(r["ErrorCode"], 0, r)
            out["epoch"] += 1
            if not tsg.acquired(r):
                return r
            out["acq"] = tsg.acquired(r)
            return True
        tsg.wait_until(got, "records acquired")
        self.assertEqual(out["acq"], [(0, 1, 1)], "record_limit acquires MaxRecords (2) records")
        return group, member, tid, out["epoch"]

    def test_renew_extends_the_lock(self):
        c = kwire.Conn(self.bootstrap, client_id="share-v2")
        self.addCleanup(c.close)
        group, member, tid, epoch = self.setup_group(c, share_record_lock_duration_ms=str(LOCK_MS))
        t0 = time.monotonic()
        time.sleep(LOCK_MS / 2000)
        r = ack2(c, group, member, epoch, tid, one(0, RENEW))
        epoch += 1
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(r["AcquisitionLockTimeoutMs"], LOCK_MS, r)
        self.assertEqual(tsg.part_errors(r), [(0, 0)], r)
        # Offset 1 through a renew-only ShareFetch: no records in the answer.
        r = fetch2(c, group, member, epoch, tid, acks=one(1, RENEW), renew=True)
        epoch += 1
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(tsg.part_errors(r), [(0, 0)], r)
        self.assertEqual(tsg.acquired(r), [], r)
        # Past the first lock, before the renewed one ends: still this member's.
        time.sleep(max(0.0, t0 + LOCK_MS * 1.25 / 1000 - time.monotonic()))
        r = ack2(c, group, member, epoch, tid, [{"FirstOffset": 0, "LastOffset": 1,
                                                 "AcknowledgeTypes": [ACCEPT]}], renew=False)
        self.assertEqual(tsg.part_errors(r), [(0, 0)], "renewed records expired: %r" % r)

    def test_renew_refusals(self):
        c = kwire.Conn(self.bootstrap, client_id="share-v2")
        self.addCleanup(c.close)
        group, member, tid, epoch = self.setup_group(c)
        r = ack2(c, group, member, epoch, tid, one(0, RENEW), renew=False)
        epoch += 1
        self.assertEqual(tsg.part_errors(r), [(INVALID_REQUEST, 0)], r)
        r = ack2(c, group, member, epoch, tid, one(0, RENEW), version=1)
        epoch += 1
        self.assertEqual(tsg.part_errors(r), [(INVALID_REQUEST, 0)], r)
        r = fetch2(c, group, member, epoch, tid, acks=one(0, RENEW), wait_ms=0)
        epoch += 1
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual([p["AcknowledgeErrorCode"] for t in r["Responses"] for p in t["Partitions"]],
                         [INVALID_REQUEST], r)
        # IsRenewAck with something to fetch: the whole request is refused (the epoch is not used).
        part = {"PartitionIndex": 0, "PartitionMaxBytes": 0, "AcknowledgementBatches": one(0, RENEW)}
        r = c.request(78, 2, {"GroupId": group, "MemberId": member, "ShareSessionEpoch": epoch, "MaxWaitMs": 0,
                              "MinBytes": 0, "MaxBytes": 1 << 20, "MaxRecords": 0, "BatchSize": 0,
                              "ShareAcquireMode": 0, "IsRenewAck": True,
                              "Topics": [{"TopicId": tid, "Partitions": [part]}], "ForgottenTopicsData": []})
        self.assertEqual((r["ErrorCode"], r["Responses"]), (INVALID_REQUEST, []), r)

    def test_renew_disabled_for_the_group(self):
        c = kwire.Conn(self.bootstrap, client_id="share-v2")
        self.addCleanup(c.close)
        group, member, tid, epoch = self.setup_group(c, share_renew_acknowledge_enable="FALSE")
        r = c.request(32, 4, {"Resources": [{"ResourceType": 32, "ResourceName": group,
                                             "ConfigurationKeys": ["share.renew.acknowledge.enable"]}],
                              "IncludeSynonyms": False, "IncludeDocumentation": False})
        e = r["Results"][0]["Configs"][0]
        self.assertEqual((e["Value"], e["ConfigSource"], e["ConfigType"]), ("false", 8, 1), e)
        r = ack2(c, group, member, epoch, tid, one(0, RENEW))
        p = r["Responses"][0]["Partitions"][0]
        self.assertEqual((p["ErrorCode"], p["ErrorMessage"]),
                         (INVALID_RECORD_STATE, "Renewing acquisition locks is not enabled for the group."), r)


if __name__ == "__main__":
    unittest.main()

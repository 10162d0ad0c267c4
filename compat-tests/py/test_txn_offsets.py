"""Transactions, offsets committed in a transaction (issue 16): TxnOffsetCommit in the group coordinator, on a
broker with transaction.partition.verification.enable=false, as Apache Kafka 4.4 answers it. Raw requests (kwire):
a producer id from InitProducerId without a transactional id, TxnOffsetCommit with a made-up transactional id
(Kafka 4.4 takes it without any transaction coordinator when verification is off: seen, so both targets run the
same sequence), then WriteTxnMarkers COMMIT or ABORT to the group's __consumer_offsets partition
(abs(Java hashCode(group)) % the topic's partition count). Checked: the offsets stay invisible to OffsetFetch
until the COMMIT marker and are dropped by ABORT; require_stable answers UNSTABLE_OFFSET_COMMIT per partition
(v7 and v8 bodies) and leaves pending-only partitions out of an all-topics fetch; a plain OffsetCommit written
after the transaction's record wins over it at commit, one written before loses; DeleteGroups and OffsetDelete
with pending offsets succeed and drop them; the checks of the coordinator (unknown topic, unknown group with a
generation, an older producer epoch); and a restart between TxnOffsetCommit and the marker (still pending) and
after it (committed). kbroker serves TxnOffsetCommit and the other transaction APIs without
unstable.api.versions.enable (checked too: the flag no longer gates them); some tests still pass it.
Kafka runs without it."""

import os
import sys
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
sys.path.insert(0, _HERE)
import kwire  # noqa: E402
from broker import Broker, shards_from_env, skip_unless_kbroker, target  # noqa: E402
from common import uniq  # noqa: E402

OFFSETS = "__consumer_offsets"
NONE, UNKNOWN_TOPIC, ILLEGAL_GENERATION, INVALID_PRODUCER_EPOCH, UNSTABLE = 0, 3, 22, 47, 88
RETRIABLE = (14, 15, 16)  # load in progress, not available, not coordinator
PRODUCE_TXN_SETTINGS = {"transaction.partition.verification.enable": "false"}
KB_SETTINGS = dict(PRODUCE_TXN_SETTINGS, **{"unstable.api.versions.enable": "true"})
FETCH, OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, METADATA = 1, 8, 9, 10, 3
API_VERSIONS, CREATE_TOPICS, INIT_PID, WRITE_MARKERS, TXN_OFFSET_COMMIT = 18, 19, 22, 27, 28
DELETE_GROUPS, OFFSET_DELETE = 42, 47


def java_hash(s):
    """Java's String.hashCode (over UTF-16 code units), as a signed int32."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


class TxnBroker:
    """A broker of the test's own: kbroker (restartable on its data dir) or Apache Kafka."""

    def __init__(self, testcase, settings):
        self.kafka = target() == "kafka"
        if self.kafka:
            from kafka_ref import KafkaRef
            self.b = KafkaRef(settings=PRODUCE_TXN_SETTINGS)
            testcase.addCleanup(self.b.cleanup)
            testcase.addCleanup(self.b.stop)
        elif target() == "kbroker":
            self.b = Broker(shards=shards_from_env(), target="kbroker",
                            extra_sets=["%s=%s" % kv for kv in settings.items()])
            testcase.addCleanup(self.b.cleanup)
            testcase.addCleanup(lambda: self.b.running and self.b.stop())
        else:
            raise unittest.SkipTest("needs a broker of the test's own (settings, restarts)")
        self.b.start()

    @property
    def bootstrap(self):
        return self.b.bootstrap

    def restart(self):
        if self.kafka:
            from kafka_ref import LISTEN_RE, restart_same_dir
            since = len(self.b.log_text())
            restart_same_dir(self.b)
            # Its listener is on port 0: a restart binds another one.
            ports = [int(p) for p in LISTEN_RE.findall(self.b.log_text()[since:]) if int(p) != self.b.controller_port]
            assert ports, self.b.log_tail()
            self.b.port = ports[-1]
        else:
            self.b.restart()


class Txo:
    """Raw requests of one connection, with the retries a coordinator that is still loading needs."""

    def __init__(self, testcase, bootstrap):
        self.c = kwire.Conn(bootstrap)
        testcase.addCleanup(self.c.close)

    def create(self, topic, parts):
        r = self.c.request(CREATE_TOPICS, 4, {"Topics": [{"Name": topic, "NumPartitions": parts,
                                                          "ReplicationFactor": 1}], "timeoutMs": 15000})
        assert r["Topics"][0]["ErrorCode"] == 0, r

    def coordinator(self, group):
        """Waits until the group's coordinator answers (the offsets topic is created on demand)."""
        deadline = time.time() + 60
        while True:
            r = self.c.request(FIND_COORDINATOR, 3, {"Key": group, "KeyType": 0})
            if r["ErrorCode"] == 0:
                break
            assert time.time() < deadline, r
            time.sleep(0.2)
        while True:
            r = self.fetch(group, None, v=8)
            if r["Groups"][0]["ErrorCode"] == 0:
                return
            assert time.time() < deadline, r
            time.sleep(0.2)

    def offsets_partition(self, group):
        r = self.c.request(METADATA, 4, {"Topics": [{"Name": OFFSETS}], "AllowAutoTopicCreation": False})
        n = len(r["Topics"][0]["Partitions"])
        assert n > 0, r
        return abs(java_hash(group)) % n

    def init_pid(self):
        deadline = time.time() + 30
        while True:
            r = self.c.request(INIT_PID, 0, {"TransactionalId": None, "TransactionTimeoutMs": 60000})
            if r["ErrorCode"] != 14 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r["ErrorCode"] == 0, r
        return r["ProducerId"], r["ProducerEpoch"]

    def txn_commit(self, group, pid, epoch, parts, v=3, gen=-1, member=""):
        """TxnOffsetCommit of (topic, partition, offset, metadata) items: {(topic, partition): error}."""
        topics = {}
        for t, p, o, md in parts:
            topics.setdefault(t, []).append({"PartitionIndex": p, "CommittedOffset": o, "CommittedLeaderEpoch": -1,
                                             "CommittedMetadata": md})
        body = {"TransactionalId": "made-up-txn-id", "GroupId": group, "ProducerId": pid, "ProducerEpoch": epoch,
                "GenerationId": gen, "MemberId": member, "GroupInstanceId": None,
                "Topics": [{"Name": t, "Partitions": ps} for t, ps in topics.items()]}
        deadline = time.time() + 30
        while True:
            r = self.c.request(TXN_OFFSET_COMMIT, v, body)
            out = {(t["Name"], p["PartitionIndex"]): p["ErrorCode"] for t in r["Topics"] for p in t["Partitions"]}
            if not set(out.values()) & set(RETRIABLE) or time.time() > deadline:
                return out
            time.sleep(0.2)

    def commit(self, group, topic, part, offset):
        r = self.c.request(OFFSET_COMMIT, 8, {"GroupId": group, "GenerationIdOrMemberEpoch": -1, "MemberId": "",
                                              "GroupInstanceId": None, "Topics": [{"Name": topic, "Partitions": [
                                                  {"PartitionIndex": part, "CommittedOffset": offset,
                                                   "CommittedLeaderEpoch": -1, "CommittedMetadata": ""}]}]})
        return r["Topics"][0]["Partitions"][0]["ErrorCode"]

    def fetch(self, group, topics, v=8, stable=False):
        """topics: [(topic, [partitions])] or None (all)."""
        ts = None if topics is None else [{"Name": t, "PartitionIndexes": ps} for t, ps in topics]
        if v >= 8:
            return self.c.request(OFFSET_FETCH, v, {"Groups": [{"GroupId": group, "MemberId": None, "MemberEpoch": -1,
                                                                "Topics": ts}], "RequireStable": stable})
        return self.c.request(OFFSET_FETCH, v, {"GroupId": group, "Topics": ts, "RequireStable": stable})

    def fetched(self, group, topics, v=8, stable=False):
        """{(topic, partition): (error, offset, metadata)}."""
        deadline = time.time() + 30
        while True:
            r = self.fetch(group, topics, v, stable)
            gr = r["Groups"][0] if v >= 8 else r
            if gr["ErrorCode"] not in RETRIABLE or time.time() > deadline:
                break
            time.sleep(0.2)
        assert gr["ErrorCode"] == 0, r
        return {(t["Name"], p["PartitionIndex"]): (p["ErrorCode"], p["CommittedOffset"], p["Metadata"])
                for t in gr["Topics"] for p in t["Partitions"]}

    def markers(self, pid, epoch, commit, partition):
        r = self.c.request(WRITE_MARKERS, 1, {"Markers": [{
            "ProducerId": pid, "ProducerEpoch": epoch, "TransactionResult": commit, "CoordinatorEpoch": 0,
            "Topics": [{"Name": OFFSETS, "PartitionIndexes": [partition]}]}]})
        return r["Markers"][0]["Topics"][0]["Partitions"][0]["ErrorCode"]


class TxnOffsetsTest(unittest.TestCase):
    def setUp(self):
        self.b = TxnBroker(self, KB_SETTINGS)
        self.w = Txo(self, self.b.bootstrap)
        self.topic = uniq("txo")
        self.w.create(self.topic, 3)

    def group(self, name):
        g = uniq(name)
        self.w.coordinator(g)
        return g, self.w.offsets_partition(g)

    def test_commit_abort_and_plain_commits(self):
        w, T = self.w, self.topic
        g, cp = self.group("txo-g")
        pid, ep = w.init_pid()
        # p1 gets a plain commit before the transaction's record (5) and one after it (7); p0 only the
        # transaction's.
        self.assertEqual(w.commit(g, T, 1, 5), NONE)
        self.assertEqual(w.txn_commit(g, pid, ep, [(T, 0, 10, "m0"), (T, 1, 20, "m1")]),
                         {(T, 0): NONE, (T, 1): NONE})
        self.assertEqual(w.commit(g, T, 2, 3), NONE)
        both = [(T, [0, 1, 2])]
        self.assertEqual(w.fetched(g, both), {(T, 0): (NONE, -1, ""), (T, 1): (NONE, 5, ""), (T, 2): (NONE, 3, "")})
        unstable = {(T, 0): (UNSTABLE, -1, ""), (T, 1): (UNSTABLE, -1, ""), (T, 2): (NONE, 3, "")}
        self.assertEqual(w.fetched(g, both, stable=True), unstable)
        self.assertEqual(w.fetched(g, both, v=7, stable=True), unstable)
        # An all-topics fetch lists committed offsets only, a pending one among them as unstable.
        self.assertEqual(w.fetched(g, None, stable=True), {(T, 1): (UNSTABLE, -1, ""), (T, 2): (NONE, 3, "")})
        self.assertEqual(w.fetched(g, None, v=7, stable=True), {(T, 1): (UNSTABLE, -1, ""), (T, 2): (NONE, 3, "")})
        self.assertEqual(w.commit(g, T, 1, 7), NONE)

        self.assertEqual(w.markers(pid, ep, 1, cp), NONE)
        done = {(T, 0): (NONE, 10, "m0"), (T, 1): (NONE, 7, ""), (T, 2): (NONE, 3, "")}
        self.assertEqual(w.fetched(g, both), done)
        self.assertEqual(w.fetched(g, both, stable=True), done)

        # A second producer: its offset is dropped by ABORT; a plain commit before its record loses at commit.
        pid2, ep2 = w.init_pid()
        self.assertEqual(w.txn_commit(g, pid2, ep2, [(T, 2, 33, "x")]), {(T, 2): NONE})
        self.assertEqual(w.markers(pid2, ep2, 0, cp), NONE)
        self.assertEqual(w.fetched(g, both, stable=True), done)
        self.assertEqual(w.txn_commit(g, pid2, ep2, [(T, 2, 34, "y")]), {(T, 2): NONE})
        self.assertEqual(w.markers(pid2, ep2, 1, cp), NONE)
        self.assertEqual(w.fetched(g, [(T, [2])], stable=True), {(T, 2): (NONE, 34, "y")})

    def test_checks(self):
        w, T = self.w, self.topic
        g, cp = self.group("txo-chk")
        pid, ep0 = w.init_pid()
        ep = ep0 + 1  # a later epoch than the producer's first, so that ep0 is an older one
        self.assertEqual(w.txn_commit(g, pid, ep, [("no-such-topic-" + T, 0, 1, "")]),
                         {("no-such-topic-" + T, 0): UNKNOWN_TOPIC})
        self.assertEqual(w.txn_commit(g, pid, ep, [(T, 7, 1, "")]), {(T, 7): UNKNOWN_TOPIC})
        # An unknown group with a generation: ILLEGAL_GENERATION (no group is created).
        self.assertEqual(w.txn_commit(g, pid, ep, [(T, 0, 1, "")], gen=5, member="m"), {(T, 0): ILLEGAL_GENERATION})
        # Versions 0 and 2 carry no member: an empty group takes them.
        self.assertEqual(w.txn_commit(g, pid, ep, [(T, 0, 11, "")], v=0), {(T, 0): NONE})
        self.assertEqual(w.txn_commit(g, pid, ep, [(T, 1, 12, "")], v=2), {(T, 1): NONE})
        # The partition's producer state fences an older epoch.
        self.assertEqual(w.txn_commit(g, pid, ep0, [(T, 2, 1, "")]), {(T, 2): INVALID_PRODUCER_EPOCH})
        self.assertEqual(w.markers(pid, ep, 1, cp), NONE)
        self.assertEqual(w.fetched(g, [(T, [0, 1, 2])], stable=True),
                         {(T, 0): (NONE, 11, ""), (T, 1): (NONE, 12, ""), (T, 2): (NONE, -1, "")})

    def test_delete_with_pending(self):
        w, T = self.w, self.topic
        g, cp = self.group("txo-del")
        pid, ep = w.init_pid()
        self.assertEqual(w.commit(g, T, 0, 4), NONE)
        self.assertEqual(w.txn_commit(g, pid, ep, [(T, 0, 40, ""), (T, 1, 41, "")]), {(T, 0): NONE, (T, 1): NONE})
        # OffsetDelete of a partition with a pending offset: done, and the pending offset is gone with it.
        r = w.c.request(OFFSET_DELETE, 0, {"GroupId": g, "Topics": [{"Name": T, "Partitions": [{"PartitionIndex": 1}]}]})
        self.assertEqual((r["ErrorCode"], r["Topics"][0]["Partitions"][0]["ErrorCode"]), (NONE, NONE))
        self.assertEqual(w.fetched(g, [(T, [0, 1])], stable=True), {(T, 0): (UNSTABLE, -1, ""), (T, 1): (NONE, -1, "")})
        # DeleteGroups of an empty group with a pending offset: done (Kafka does not answer NON_EMPTY_GROUP).
        r = w.c.request(DELETE_GROUPS, 2, {"GroupsNames": [g]})
        self.assertEqual(r["Results"][0]["ErrorCode"], NONE)
        self.assertEqual(w.markers(pid, ep, 1, cp), NONE)
        self.assertEqual(w.fetched(g, [(T, [0, 1])], stable=True), {(T, 0): (NONE, -1, ""), (T, 1): (NONE, -1, "")})

    def test_records_in_the_log(self):
        """What lands in the group's __consumer_offsets partition: the offsets in one transactional batch of the
        producer (its id and epoch), then the marker. The base sequence is not compared: Kafka 4.4 writes 0 (its
        coordinator's appends skip sequence checks), kbroker -1 (no sequence, so that the log's producer state
        does not take the producer's next offset commit for a duplicate)."""
        w, T = self.w, self.topic
        g, cp = self.group("txo-log")
        pid, ep = w.init_pid()
        self.assertEqual(w.txn_commit(g, pid, ep, [(T, 0, 5, "x"), (T, 1, 6, "")]), {(T, 0): NONE, (T, 1): NONE})
        self.assertEqual(w.markers(pid, ep, 1, cp), NONE)
        r = w.c.request(FETCH, 4, {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 0, "MaxBytes": 1 << 20,
                                   "IsolationLevel": 0, "Topics": [{"Topic": OFFSETS, "Partitions": [
                                       {"Partition": cp, "FetchOffset": 0, "PartitionMaxBytes": 1 << 20}]}]})
        p = r["Responses"][0]["Partitions"][0]
        self.assertEqual(p["ErrorCode"], NONE)
        mine = [b for b in kwire.read_batches(p["Records"]) if b["producer_id"] == pid]
        self.assertEqual([(b["attributes"] & 0x30, b["producer_epoch"], len(b["records"])) for b in mine],
                         [(0x10, ep, 2), (0x30, ep, 1)])
        self.assertTrue(all(g.encode() in rec["key"] for rec in mine[0]["records"]))

    def test_restart(self):
        w, T = self.w, self.topic
        g, cp = self.group("txo-rst")
        pid, ep = w.init_pid()
        pid2, ep2 = w.init_pid()
        self.assertEqual(w.commit(g, T, 0, 1), NONE)
        self.assertEqual(w.txn_commit(g, pid, ep, [(T, 0, 50, "a")]), {(T, 0): NONE})
        self.assertEqual(w.txn_commit(g, pid2, ep2, [(T, 1, 60, "b")]), {(T, 1): NONE})
        self.b.restart()
        w = self.w = Txo(self, self.b.bootstrap)
        w.coordinator(g)
        # Replayed: both still pending.
        self.assertEqual(w.fetched(g, [(T, [0, 1])], stable=True), {(T, 0): (UNSTABLE, -1, ""), (T, 1): (UNSTABLE, -1, "")})
        self.assertEqual(w.fetched(g, [(T, [0, 1])]), {(T, 0): (NONE, 1, ""), (T, 1): (NONE, -1, "")})
        self.assertEqual(w.markers(pid, ep, 1, cp), NONE)
        self.assertEqual(w.markers(pid2, ep2, 0, cp), NONE)
        after = {(T, 0): (NONE, 50, "a"), (T, 1): (NONE, -1, "")}
        self.assertEqual(w.fetched(g, [(T, [0, 1])], stable=True), after)
        self.b.restart()
        w = self.w = Txo(self, self.b.bootstrap)
        w.coordinator(g)
        # Replayed with the markers: committed and aborted as before.
        self.assertEqual(w.fetched(g, [(T, [0, 1])], stable=True), after)


class TxnOffsetsVerificationTest(unittest.TestCase):
    def test_verification_on(self):
        """With transaction.partition.verification.enable=true (the default) the group coordinator has the
        transaction coordinator verify that the group's __consumer_offsets partition is in the producer's
        transaction (added by AddOffsetsToTxn) before it writes, as Kafka 4.4 does (answers seen on Kafka, the
        same asked of kbroker): before __transaction_state exists COORDINATOR_NOT_AVAILABLE; not added
        INVALID_TXN_STATE for v0-3 and TRANSACTION_ABORTABLE for v4; an unknown id or another producer id
        INVALID_PRODUCER_ID_MAPPING; another epoch (older, newer, or fenced by a new InitProducerId)
        INVALID_PRODUCER_EPOCH; once added NONE, invisible until EndTxn's commit. Unknown topics are refused
        first."""
        from test_txn_coordinator import Wire
        if target() == "kafka":
            from kafka_ref import KafkaRef
            b = KafkaRef(settings={"transaction.partition.verification.enable": "true"})
            self.addCleanup(b.cleanup)
            self.addCleanup(b.stop)
        elif target() == "kbroker":
            b = Broker(shards=shards_from_env(), target="kbroker", extra_sets=["unstable.api.versions.enable=true"])
            self.addCleanup(b.cleanup)
            self.addCleanup(lambda: b.running and b.stop())
        else:
            raise unittest.SkipTest("needs a broker of the test's own")
        b.start()
        w = Txo(self, b.bootstrap)
        T, g, g2, tid = uniq("txo-v"), uniq("txo-v"), uniq("txo-v2"), uniq("txo-v-tx")
        w.create(T, 1)
        w.coordinator(g)
        pid, ep = w.init_pid()

        def toc(v, txn_id=tid, p=pid, e=ep, group=g, unknown_topic=False):
            topics = [{"Name": T, "Partitions": [{"PartitionIndex": 0, "CommittedOffset": 7,
                                                  "CommittedLeaderEpoch": -1, "CommittedMetadata": "m"}]}]
            if unknown_topic:
                topics.append({"Name": T + "-none", "Partitions": [{"PartitionIndex": 0, "CommittedOffset": 1,
                                                                    "CommittedLeaderEpoch": -1,
                                                                    "CommittedMetadata": ""}]})
            r = w.c.request(TXN_OFFSET_COMMIT, v, {
                "TransactionalId": txn_id, "GroupId": group, "ProducerId": p, "ProducerEpoch": e,
                "GenerationId": -1, "MemberId": "", "GroupInstanceId": None, "Topics": topics})
            return {t["Name"]: t["Partitions"][0]["ErrorCode"] for t in r["Topics"]}

        # No __transaction_state yet: no coordinator to verify with.
        for v in (0, 3):
            self.assertEqual(toc(v, txn_id="made-up-txn-id", unknown_topic=True), {T: 15, T + "-none": UNKNOWN_TOPIC}, v)
        tx = Wire(b.bootstrap)
        self.addCleanup(tx.close)
        r = tx.init(tid)
        self.assertEqual(r["ErrorCode"], NONE, r)
        tpid, tep = r["ProducerId"], r["ProducerEpoch"]
        NOT_ADDED = {0: 48, 1: 48, 2: 48, 3: 48, 4: 120}
        self.assertEqual({v: toc(v, p=tpid, e=tep)[T] for v in range(5)}, NOT_ADDED)
        self.assertEqual([toc(v, txn_id=tid + "-unknown", p=tpid, e=tep)[T] for v in (0, 3, 4)], [49] * 3)
        self.assertEqual(toc(3, p=tpid + 1000, e=tep)[T], 49)
        r = tx.req(25, 3, {"TransactionalId": tid, "ProducerId": tpid, "ProducerEpoch": tep, "GroupId": g})
        self.assertEqual(r["ErrorCode"], NONE, r)
        self.assertEqual([toc(v, p=tpid, e=e)[T] for v in (0, 3, 4) for e in (tep - 1, tep + 1)], [47] * 6)
        self.assertEqual({v: toc(v, p=tpid, e=tep, group=g2)[T] for v in range(5)}, NOT_ADDED)  # not its group
        self.assertEqual(toc(3, p=tpid, e=tep, unknown_topic=True), {T: NONE, T + "-none": UNKNOWN_TOPIC})
        self.assertEqual(w.fetched(g, [(T, [0])]), {(T, 0): (NONE, -1, "")})
        self.assertEqual(tx.end(tid, tpid, tep, True), NONE)
        deadline = time.time() + 30
        while w.fetched(g, [(T, [0])]) != {(T, 0): (NONE, 7, "m")} and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(w.fetched(g, [(T, [0])], stable=True), {(T, 0): (NONE, 7, "m")})
        # A new instance fences the old one: its epoch is refused.
        r = tx.init(tid)
        self.assertEqual(r["ErrorCode"], NONE, r)
        self.assertEqual([toc(v, p=tpid, e=tep)[T] for v in (0, 3, 4)], [47] * 3)
        self.assertEqual({v: toc(v, p=r["ProducerId"], e=r["ProducerEpoch"])[T] for v in range(5)}, NOT_ADDED)


class TxnOffsetsGateTest(unittest.TestCase):
    def test_unstable_gate(self):
        """The transaction APIs are served and advertised without unstable.api.versions.enable, with Kafka 4.4's
        transaction.version 2 finalized; so are the share-group APIs (Kafka 4.4 serves them by default)."""
        skip_unless_kbroker("unstable.api.versions.enable is kbroker's gate")
        txn = {24: (0, 5), 25: (0, 4), 26: (0, 5), TXN_OFFSET_COMMIT: (0, 5), 65: (0, 0), 66: (0, 1)}
        share = (76, 77, 78, 79, 90, 91, 92)
        for flag in (False, True):
            settings = dict(PRODUCE_TXN_SETTINGS, **({"unstable.api.versions.enable": "true"} if flag else {}))
            b = Broker(shards=shards_from_env(), target="kbroker",
                       extra_sets=["%s=%s" % kv for kv in settings.items()])
            self.addCleanup(b.cleanup)
            b.start()
            try:
                c = kwire.Conn(b.bootstrap)
                r = c.request(API_VERSIONS, 3, {"ClientSoftwareName": "t", "ClientSoftwareVersion": "1"})
                # Served, not only listed: ListTransactions answers.
                lt = c.request(66, 0, {"StateFilters": [], "ProducerIdFilters": []})
                c.close()
                got = {a["ApiKey"]: (a["MinVersion"], a["MaxVersion"]) for a in r["ApiKeys"]}
                self.assertEqual({k: got.get(k) for k in txn}, txn, flag)
                self.assertEqual(lt["ErrorCode"], 0, lt)
                fin = {f["Name"]: (f["MinVersionLevel"], f["MaxVersionLevel"]) for f in r["FinalizedFeatures"]}
                self.assertEqual(fin.get("transaction.version"), (2, 2), fin)
                self.assertEqual([k for k in share if k in got], list(share), flag)
            finally:
                b.stop()


if __name__ == "__main__":
    unittest.main()

"""Authorization of the transaction coordinator's APIs with Kafka's StandardAuthorizer, the same on kbroker and
Apache Kafka 4.4: DESCRIBE on the TRANSACTIONAL_ID for FindCoordinator and Describe/ListTransactions, WRITE on it
for InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn, WRITE on each topic added (the others
OPERATION_NOT_ATTEMPTED), READ on the group of AddOffsetsToTxn, CLUSTER_ACTION for the batched AddPartitionsToTxn
v4+. Raw requests over SASL_PLAINTEXT (lib/secure.py's SecureTarget; users and ACL helpers of test_acl.py).
kbroker runs with unstable.api.versions.enable=true, no longer needed for these APIs (served without it since
issue 16's un-gating)."""

import os
import shutil
import sys
import tempfile
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
sys.path.insert(0, _HERE)
from broker import target  # noqa: E402
from secure import SecureTarget, make_pki  # noqa: E402
from test_acl import ALLOW, EXTRA, GROUP, LITERAL, TOPIC, Sasl, acl_entry, wait_until  # noqa: E402

TXN_ID = 5
TOPIC_AUTH, GROUP_AUTH, CLUSTER_AUTH, TXN_AUTH, NOT_ATTEMPTED, TXN_ID_NOT_FOUND = 29, 30, 31, 53, 55, 105
RETRIABLE = (14, 15, 16, 51)
ACLS = [
    (TXN_ID, "tx-a", LITERAL, "alice", "WRITE", ALLOW),
    (TOPIC, "t-ok", LITERAL, "alice", "WRITE", ALLOW),
    (GROUP, "g-ok", LITERAL, "alice", "READ", ALLOW),
    (TXN_ID, "tx-b", LITERAL, "bob", "DESCRIBE", ALLOW),
]


class TxnAclTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-txn-acl-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        extra = dict(EXTRA, **({"unstable.api.versions.enable": "true"} if target() == "kbroker" else {}))
        cls.t = SecureTarget(cls.pki, extra=extra)
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()
        addr = cls.t.addr("SASL_PLAINTEXT")
        cls.admin, cls.alice, cls.bob = Sasl(addr, "admin"), Sasl(addr, "alice"), Sasl(addr, "bob")
        for c in (cls.admin, cls.alice, cls.bob):
            cls.addClassCleanup(c.close)
        r = cls.admin.request(19, 4, {"Topics": [{"Name": n, "NumPartitions": 1, "ReplicationFactor": 1}
                                                 for n in ("t-ok", "t-no")], "timeoutMs": 30000})
        assert all(t["ErrorCode"] in (0, 36) for t in r["Topics"]), r
        codes = [x["ErrorCode"] for x in cls.admin.request(30, 3, {"Creations": [acl_entry(*a) for a in ACLS]})[
            "Results"]]
        assert codes == [0] * len(ACLS), codes

        def acls_visible():
            r = cls.admin.request(29, 3, {"ResourceTypeFilter": 1, "ResourceNameFilter": None, "PatternTypeFilter": 1,
                                          "PrincipalFilter": None, "HostFilter": None, "Operation": 1,
                                          "PermissionType": 1})
            return sum(len(x["Acls"]) for x in r["Resources"]) == len(ACLS) or r
        wait_until(acls_visible, "the ACLs")

    @staticmethod
    def retry(fn, code_of):
        deadline = time.time() + 30
        while True:
            r = fn()
            if code_of(r) not in RETRIABLE or time.time() > deadline:
                return r
            time.sleep(0.2)

    def find(self, conn, ids):
        r = self.retry(lambda: conn.request(10, 4, {"KeyType": 1, "CoordinatorKeys": ids}),
                       lambda r: max(c["ErrorCode"] if c["ErrorCode"] in RETRIABLE else 0 for c in r["Coordinators"]))
        return [c["ErrorCode"] for c in r["Coordinators"]]

    def init(self, conn, tid):
        return self.retry(lambda: conn.request(22, 4, {"TransactionalId": tid, "TransactionTimeoutMs": 60000,
                                                       "ProducerId": -1, "ProducerEpoch": -1}),
                          lambda r: r["ErrorCode"])

    def add(self, conn, tid, pid, epoch, topics):
        r = conn.request(24, 3, {"V3AndBelowTransactionalId": tid, "V3AndBelowProducerId": pid,
                                 "V3AndBelowProducerEpoch": epoch,
                                 "V3AndBelowTopics": [{"Name": t, "Partitions": [0]} for t in topics]})
        return {t["Name"]: t["ResultsByPartition"][0]["PartitionErrorCode"] for t in r["ResultsByTopicV3AndBelow"]}

    def test_authorization(self):
        a, b = self.alice, self.bob
        self.assertEqual(self.find(a, ["tx-a", "tx-b"]), [0, TXN_AUTH])
        self.assertEqual(self.find(b, ["tx-b", "tx-a"]), [0, TXN_AUTH])
        # DESCRIBE is not enough to use an id; WRITE is.
        self.assertEqual(self.init(b, "tx-b")["ErrorCode"], TXN_AUTH)
        r = self.init(a, "tx-a")
        self.assertEqual(r["ErrorCode"], 0, r)
        pid, epoch = r["ProducerId"], r["ProducerEpoch"]
        self.assertEqual(self.init(a, "tx-b")["ErrorCode"], TXN_AUTH)
        # A topic without WRITE: refused, the other one not attempted, nothing added.
        self.assertEqual(self.add(a, "tx-a", pid, epoch, ["t-ok", "t-no"]), {"t-ok": NOT_ATTEMPTED, "t-no": TOPIC_AUTH})
        self.assertEqual(self.add(b, "tx-b", pid, epoch, ["t-ok"]), {"t-ok": TXN_AUTH})
        self.assertEqual(self.add(a, "tx-a", pid, epoch, ["t-ok"]), {"t-ok": 0})
        # The batched form (v4+) is the brokers': CLUSTER_ACTION.
        r = a.request(24, 4, {"Transactions": [{"TransactionalId": "tx-a", "ProducerId": pid, "ProducerEpoch": epoch,
                                                "VerifyOnly": True, "Topics": [{"Name": "t-ok", "Partitions": [0]}]}]})
        self.assertEqual(r["ErrorCode"], CLUSTER_AUTH, r)

        def add_offsets(group):
            return self.retry(lambda: a.request(25, 3, {"TransactionalId": "tx-a", "ProducerId": pid,
                                                        "ProducerEpoch": epoch, "GroupId": group}),
                              lambda r: r["ErrorCode"])["ErrorCode"]
        self.assertEqual(add_offsets("g-no"), GROUP_AUTH)
        self.assertEqual(add_offsets("g-ok"), 0)
        # Describe: per id; List: only the ids the principal may DESCRIBE.
        r = a.request(65, 0, {"TransactionalIds": ["tx-a", "tx-b"]})
        st = {x["TransactionalId"]: x for x in r["TransactionStates"]}
        self.assertEqual((st["tx-a"]["ErrorCode"], st["tx-a"]["TransactionState"]), (0, "Ongoing"))
        # __consumer_offsets (AddOffsetsToTxn's partition) is left out: alice may not DESCRIBE it.
        self.assertEqual(sorted(t["Topic"] for t in st["tx-a"]["Topics"]), ["t-ok"])
        self.assertEqual(st["tx-b"]["ErrorCode"], TXN_AUTH)
        r = b.request(65, 0, {"TransactionalIds": ["tx-b"]})
        self.assertEqual(r["TransactionStates"][0]["ErrorCode"], TXN_ID_NOT_FOUND)
        listed = {c: [x["TransactionalId"] for x in c.request(66, 0, {"StateFilters": [], "ProducerIdFilters": []})[
            "TransactionStates"]] for c in (a, b)}
        self.assertEqual(listed[a], ["tx-a"])
        self.assertEqual(listed[b], [])
        # EndTxn: WRITE on the id.
        end = {"TransactionalId": "tx-a", "ProducerId": pid, "ProducerEpoch": epoch, "Committed": True}
        self.assertEqual(b.request(26, 3, end)["ErrorCode"], TXN_AUTH)
        self.assertEqual(a.request(26, 3, end)["ErrorCode"], 0)


if __name__ == "__main__":
    unittest.main()

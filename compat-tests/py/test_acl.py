"""Authorization with Kafka's StandardAuthorizer (authorizer.class.name), the same on kbroker and Apache Kafka.

A SecureTarget with a SASL_PLAINTEXT listener (PLAIN users admin, alice, bob, carol, dave, erin), admin a super
user. Admin creates topics and ACLs (literal, prefixed and the "*" literal on topics, a literal and a prefixed
group, the cluster, one DENY per principal), then an ACL MATRIX: every principal x resource x operation sent as a
raw request (produce, fetch, list offsets, metadata listing / named / auto-create, create and delete topics,
describe and alter configs of topics and the broker, create partitions, delete records, the group APIs,
InitProducerId, the ACL APIs) and the error code each answer carries, compared with the table Apache Kafka 4.4.0
answered (EXPECTED). Also: the ACL APIs' validation and filters (per-item errors, MATCH filters, matching_acls
of a delete) as raw requests; Kafka's own kafka-acls tool (AclCommand) --add/--list/--remove; confluent-kafka's
producer and consumer seeing TOPIC_AUTHORIZATION_FAILED; an acks=0 Produce refused closing the connection;
ConsumerGroupDescribe of a KIP-848 group whose topic the principal cannot see; on kbroker, the ACLs surviving a
restart and kill -9, and an authorizer class kbroker does not have refused at start.

User:ANONYMOUS is a super user too: Apache Kafka's own controller and inter-broker connections are PLAINTEXT
(ANONYMOUS) and must pass the authorizer; every client of this test authenticates over SASL instead."""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
import kwire  # noqa: E402
from broker import DEFAULT_BIN  # noqa: E402
from common import kbroker_only  # noqa: E402
from secure import SecureTarget, authenticate, handshake, make_pki, plain_token  # noqa: E402

from confluent_kafka import KafkaError, Consumer, Producer  # noqa: E402

PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret",
             "dave": "dave-secret", "erin": "erin-secret"}
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret" ' + " ".join('user_%s="%s"' % kv for kv in PASSWORDS.items()) + ";")
STANDARD = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
EXTRA = {
    "authorizer.class.name": STANDARD,
    "super.users": "User:admin;User:ANONYMOUS",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
    "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "1",
}

# Kafka's codes (ResourceType, PatternType, AclOperation, AclPermissionType).
TOPIC, GROUP, CLUSTER = 2, 3, 4
ANY, MATCH, LITERAL, PREFIXED = 1, 2, 3, 4
OP = {"ANY": 1, "ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DELETE": 6, "ALTER": 7, "DESCRIBE": 8,
      "CLUSTER_ACTION": 9, "DESCRIBE_CONFIGS": 10, "ALTER_CONFIGS": 11, "IDEMPOTENT_WRITE": 12}
DENY, ALLOW = 2, 3

PRINCIPALS = ("alice", "bob", "carol")
TOPICS = {"lit": "lit-topic", "pre": "pre-topic", "none": "none-topic"}
ACLS = [
    # (resource type, name, pattern, principal, operation, permission)
    (TOPIC, "lit-topic", LITERAL, "alice", "WRITE", ALLOW),
    (TOPIC, "lit-topic", LITERAL, "alice", "ALTER_CONFIGS", ALLOW),
    (TOPIC, "pre-", PREFIXED, "alice", "READ", ALLOW),
    (TOPIC, "new-", PREFIXED, "alice", "CREATE", ALLOW),
    (GROUP, "g1", LITERAL, "alice", "READ", ALLOW),
    (TOPIC, "*", LITERAL, "bob", "ALL", ALLOW),
    (TOPIC, "lit-topic", LITERAL, "bob", "WRITE", DENY),
    (TOPIC, "pre-topic", LITERAL, "bob", "DELETE", DENY),
    (GROUP, "g", PREFIXED, "bob", "DESCRIBE", ALLOW),
    (CLUSTER, "kafka-cluster", LITERAL, "bob", "CREATE", ALLOW),
    (GROUP, "carol-g", LITERAL, "carol", "READ", ALLOW),
]

# What Apache Kafka 4.4.0 answered (error codes; lists where the answer is a list). 0 none, 29 TOPIC_, 30 GROUP_,
# 31 CLUSTER_AUTHORIZATION_FAILED. Auto-creation answers 0, 3 or 5 while the topic is being created: "ok".
EXPECTED = {'alice': {'alter_configs lit': 0,
           'alter_configs none': 29,
           'alter_configs pre': 29,
           'create_acls': [31],
           'create_partitions lit': 29,
           'create_partitions none': 29,
           'create_partitions pre': 29,
           'create_topics': [('new', 0), ('x', 29)],
           'delete_acls': 31,
           'delete_groups': [30, 30],
           'delete_records lit': 29,
           'delete_records none': 29,
           'delete_records pre': 29,
           'delete_topics': [('del-alice', 29), ('pre-topic', 29)],
           'describe_acls': 31,
           'describe_cluster': (0, 0),
           'describe_configs broker': 31,
           'describe_configs lit': 0,
           'describe_configs none': 29,
           'describe_configs pre': 29,
           'describe_groups g1': (0, 264),
           'describe_groups h1': (30, -2147483648),
           'fetch lit': 29,
           'fetch none': 29,
           'fetch pre': 0,
           'find_coordinator g1': 0,
           'find_coordinator h1': 30,
           'incremental_alter_configs broker': 31,
           'incremental_alter_configs lit': 0,
           'incremental_alter_configs none': 29,
           'incremental_alter_configs pre': 29,
           'init_producer_id': 0,
           'list_groups': ['g1'],
           'list_offsets lit': 0,
           'list_offsets none': 29,
           'list_offsets pre': 0,
           'metadata all': ['lit-topic', 'pre-topic'],
           'metadata auto new': 29,
           'metadata auto x': 29,
           'metadata lit': (0, 3344),
           'metadata none': (29, -2147483648),
           'metadata pre': (0, 264),
           'offset_commit g1': [29, 0],
           'offset_commit h1': [30, 30],
           'offset_delete g1': 30,
           'offset_delete h1': 30,
           'offset_fetch all g1': (0, ['pre-topic']),
           'offset_fetch all h1': (30, []),
           'offset_fetch topics g1': (0, [0, 0]),
           'offset_fetch topics h1': (30, []),
           'produce lit': 0,
           'produce none': 29,
           'produce pre': 29},
 'bob': {'alter_configs lit': 0,
         'alter_configs none': 0,
         'alter_configs pre': 0,
         'create_acls': [31],
         'create_partitions lit': 0,
         'create_partitions none': 0,
         'create_partitions pre': 0,
         'create_topics': [('new', 0), ('x', 0)],
         'delete_acls': 31,
         'delete_groups': [30, 30],
         'delete_records lit': 0,
         'delete_records none': 0,
         'delete_records pre': 29,
         'delete_topics': [('del-bob', 0), ('pre-topic', 29)],
         'describe_acls': 31,
         'describe_cluster': (0, 0),
         'describe_configs broker': 31,
         'describe_configs lit': 0,
         'describe_configs none': 0,
         'describe_configs pre': 0,
         'describe_groups g1': (0, 256),
         'describe_groups h1': (30, -2147483648),
         'fetch lit': 0,
         'fetch none': 0,
         'fetch pre': 0,
         'find_coordinator g1': 0,
         'find_coordinator h1': 30,
         'incremental_alter_configs broker': 31,
         'incremental_alter_configs lit': 0,
         'incremental_alter_configs none': 0,
         'incremental_alter_configs pre': 0,
         'init_producer_id': 0,
         'list_groups': ['g1'],
         'list_offsets lit': 0,
         'list_offsets none': 0,
         'list_offsets pre': 0,
         'metadata all': ['del-alice', 'del-bob', 'del-carol', 'lit-topic', 'none-topic', 'pre-topic'],
         'metadata auto new': 'ok',
         'metadata auto x': 'ok',
         'metadata lit': (0, 3560),
         'metadata none': (0, 3576),
         'metadata pre': (0, 3512),
         'offset_commit g1': [30, 30],
         'offset_commit h1': [30, 30],
         'offset_delete g1': 30,
         'offset_delete h1': 30,
         'offset_fetch all g1': (0, ['pre-topic']),
         'offset_fetch all h1': (30, []),
         'offset_fetch topics g1': (0, [0, 0]),
         'offset_fetch topics h1': (30, []),
         'produce lit': 29,
         'produce none': 0,
         'produce pre': 0},
 'carol': {'alter_configs lit': 29,
           'alter_configs none': 29,
           'alter_configs pre': 29,
           'create_acls': [31],
           'create_partitions lit': 29,
           'create_partitions none': 29,
           'create_partitions pre': 29,
           'create_topics': [('new', 29), ('x', 29)],
           'delete_acls': 31,
           'delete_groups': [30, 30],
           'delete_records lit': 29,
           'delete_records none': 29,
           'delete_records pre': 29,
           'delete_topics': [('del-carol', 29), ('pre-topic', 29)],
           'describe_acls': 31,
           'describe_cluster': (0, 0),
           'describe_configs broker': 31,
           'describe_configs lit': 29,
           'describe_configs none': 29,
           'describe_configs pre': 29,
           'describe_groups g1': (30, -2147483648),
           'describe_groups h1': (30, -2147483648),
           'fetch lit': 29,
           'fetch none': 29,
           'fetch pre': 29,
           'find_coordinator g1': 30,
           'find_coordinator h1': 30,
           'incremental_alter_configs broker': 31,
           'incremental_alter_configs lit': 29,
           'incremental_alter_configs none': 29,
           'incremental_alter_configs pre': 29,
           'init_producer_id': 31,
           'list_groups': [],
           'list_offsets lit': 29,
           'list_offsets none': 29,
           'list_offsets pre': 29,
           'metadata all': [],
           'metadata auto new': 29,
           'metadata auto x': 29,
           'metadata lit': (29, -2147483648),
           'metadata none': (29, -2147483648),
           'metadata pre': (29, -2147483648),
           'offset_commit g1': [30, 30],
           'offset_commit h1': [30, 30],
           'offset_delete g1': 30,
           'offset_delete h1': 30,
           'offset_fetch all g1': (30, []),
           'offset_fetch all h1': (30, []),
           'offset_fetch topics g1': (30, []),
           'offset_fetch topics h1': (30, []),
           'produce lit': 29,
           'produce none': 29,
           'produce pre': 29}}


def acl_entry(rtype, name, pattern, user, op, perm, host="*"):
    return {"ResourceType": rtype, "ResourceName": name, "ResourcePatternType": pattern,
            "Principal": "User:" + user, "Host": host, "Operation": OP[op], "PermissionType": perm}


class Sasl(kwire.Conn):
    """A raw connection authenticated with SASL/PLAIN as user."""

    def __init__(self, addr, user):
        super().__init__(addr, client_id="acl-" + user)
        err, _ = handshake(self.s, "PLAIN", corr=1001)
        assert err == 0, err
        err, msg = authenticate(self.s, plain_token(user, PASSWORDS[user]), corr=1002)
        assert err == 0, msg


def wait_until(fn, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last is True:
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class AclTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-acl-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.t = SecureTarget(cls.pki, extra=EXTRA)
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()
        cls.addr = cls.t.addr("SASL_PLAINTEXT")
        cls.admin = Sasl(cls.addr, "admin")
        cls.addClassCleanup(cls.admin.close)
        cls.setup_data()

    # ---- set-up as the super user ----------------------------------------------------------------------------

    @classmethod
    def create_topics(cls, names, parts=1, conn=None):
        conn = conn or cls.admin
        r = conn.request(19, 4, {"Topics": [{"Name": n, "NumPartitions": parts, "ReplicationFactor": 1,
                                                  "Assignments": [], "Configs": []} for n in names],
                                      "timeoutMs": 30000, "validateOnly": False})
        for t in r["Topics"]:
            assert t["ErrorCode"] in (0, 36), t
        wait_until(lambda: cls.leaders(names, conn), "leaders of %s" % names)

    @classmethod
    def leaders(cls, names, conn=None):
        r = (conn or cls.admin).request(3, 12, {"Topics": [{"Name": n, "TopicId": b"\0" * 16} for n in names],
                                      "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
        ok = all(t["ErrorCode"] == 0 and t["Partitions"] and all(p["LeaderId"] >= 0 for p in t["Partitions"])
                 for t in r["Topics"])
        return ok or r["Topics"]

    @classmethod
    def create_acls(cls, conn, entries):
        return [x["ErrorCode"] for x in conn.request(30, 3, {"Creations": entries})["Results"]]

    @classmethod
    def describe_all(cls, conn=None):
        r = (conn or cls.admin).request(29, 3, {"ResourceTypeFilter": ANY, "ResourceNameFilter": None,
                                                "PatternTypeFilter": ANY, "PrincipalFilter": None,
                                                "HostFilter": None, "Operation": 1, "PermissionType": 1})
        out = set()
        for res in r["Resources"]:
            for a in res["Acls"]:
                out.add((res["ResourceType"], res["ResourceName"], res["PatternType"], a["Principal"], a["Host"],
                         a["Operation"], a["PermissionType"]))
        return r["ErrorCode"], out

    @classmethod
    def wait_acls(cls, n):
        wait_until(lambda: len(cls.describe_all()[1]) == n or cls.describe_all(), "%d ACLs" % n)

    @classmethod
    def group_ready(cls, group):
        r = cls.admin.request(10, 4, {"KeyType": 0, "CoordinatorKeys": [group]})
        return r["Coordinators"][0]["ErrorCode"] == 0 or r

    @classmethod
    def setup_data(cls):
        cls.create_topics(list(TOPICS.values()) + ["del-" + p for p in PRINCIPALS])
        codes = cls.create_acls(cls.admin, [acl_entry(*a) for a in ACLS])
        assert codes == [0] * len(ACLS), codes
        cls.wait_acls(len(ACLS))
        for g in ("g1", "h1"):
            wait_until(lambda: cls.group_ready(g), "coordinator of " + g)
            r = cls.admin.request(8, 8, cls.commit_body(g, [TOPICS["pre"]]))
            assert r["Topics"][0]["Partitions"][0]["ErrorCode"] == 0, r
        r = cls.admin.request(0, 9, cls.produce_body(TOPICS["lit"]))
        assert r["Responses"][0]["PartitionResponses"][0]["ErrorCode"] == 0, r

    # ---- request bodies ------------------------------------------------------------------------------------

    @staticmethod
    def produce_body(topic):
        batch = kwire.record_batch([(b"k", b"v")], base_ts=int(time.time() * 1000))
        return {"TransactionalId": None, "Acks": -1, "TimeoutMs": 30000,
                "TopicData": [{"Name": topic, "PartitionData": [{"Index": 0, "Records": batch}]}]}

    @staticmethod
    def commit_body(group, topics):
        return {"GroupId": group, "GenerationIdOrMemberEpoch": -1, "MemberId": "", "GroupInstanceId": None,
                "Topics": [{"Name": t, "Partitions": [{"PartitionIndex": 0, "CommittedOffset": 0,
                                                      "CommittedLeaderEpoch": -1, "CommittedMetadata": ""}]}
                           for t in topics]}

    # ---- the matrix ------------------------------------------------------------------------------------------

    def matrix_of(self, user):
        c = Sasl(self.addr, user)
        self.addCleanup(c.close)
        m = {}
        first = lambda r, *path: _dig(r, path)  # noqa: E731
        for key, topic in TOPICS.items():
            r = c.request(0, 9, self.produce_body(topic))
            m["produce " + key] = first(r, "Responses", 0, "PartitionResponses", 0, "ErrorCode")
            r = c.request(1, 12, {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 20,
                                  "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1, "RackId": "",
                                  "ForgottenTopicsData": [],
                                  "Topics": [{"Topic": topic, "Partitions": [
                                      {"Partition": 0, "CurrentLeaderEpoch": -1, "FetchOffset": 0,
                                       "LastFetchedEpoch": -1, "LogStartOffset": -1,
                                       "PartitionMaxBytes": 1 << 20}]}]})
            m["fetch " + key] = first(r, "Responses", 0, "Partitions", 0, "ErrorCode")
            r = c.request(2, 7, {"ReplicaId": -1, "IsolationLevel": 0, "Topics": [
                {"Name": topic, "Partitions": [{"PartitionIndex": 0, "CurrentLeaderEpoch": -1, "Timestamp": -1}]}]})
            m["list_offsets " + key] = first(r, "Topics", 0, "Partitions", 0, "ErrorCode")
            r = c.request(3, 12, {"Topics": [{"Name": topic, "TopicId": b"\0" * 16}],
                                  "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": True})
            t = r["Topics"][0]
            m["metadata " + key] = (t["ErrorCode"], t["TopicAuthorizedOperations"])
            r = c.request(32, 4, {"Resources": [{"ResourceType": TOPIC, "ResourceName": topic,
                                                 "ConfigurationKeys": ["retention.ms"]}],
                                  "IncludeSynonyms": False, "IncludeDocumentation": False})
            m["describe_configs " + key] = first(r, "Results", 0, "ErrorCode")
            r = c.request(44, 1, {"Resources": [{"ResourceType": TOPIC, "ResourceName": topic, "Configs": [
                {"Name": "retention.ms", "ConfigOperation": 0, "Value": "3600000"}]}], "ValidateOnly": True})
            m["incremental_alter_configs " + key] = first(r, "Responses", 0, "ErrorCode")
            r = c.request(33, 1, {"Resources": [{"ResourceType": TOPIC, "ResourceName": topic, "Configs": [
                {"Name": "retention.ms", "Value": "3600000"}]}], "ValidateOnly": True})
            m["alter_configs " + key] = first(r, "Responses", 0, "ErrorCode")
            r = c.request(37, 3, {"Topics": [{"Name": topic, "Count": 2, "Assignments": None}], "TimeoutMs": 30000,
                                  "ValidateOnly": True})
            m["create_partitions " + key] = first(r, "Results", 0, "ErrorCode")
            r = c.request(21, 2, {"Topics": [{"Name": topic, "Partitions": [{"PartitionIndex": 0, "Offset": 0}]}],
                                  "TimeoutMs": 30000})
            m["delete_records " + key] = first(r, "Topics", 0, "Partitions", 0, "ErrorCode")
        r = c.request(3, 12, {"Topics": None, "AllowAutoTopicCreation": False,
                              "IncludeTopicAuthorizedOperations": False})
        ours = set(TOPICS.values()) | {"del-" + p for p in PRINCIPALS}
        m["metadata all"] = sorted(t["Name"] for t in r["Topics"] if t["Name"] in ours)
        for name in ("new-%s-auto" % user, "x-%s-auto" % user):
            r = c.request(3, 12, {"Topics": [{"Name": name, "TopicId": b"\0" * 16}], "AllowAutoTopicCreation": True,
                                  "IncludeTopicAuthorizedOperations": False})
            code = r["Topics"][0]["ErrorCode"]
            m["metadata auto " + name.split("-")[0]] = "ok" if code in (0, 3, 5) else code
        r = c.request(19, 4, {"Topics": [{"Name": n, "NumPartitions": 1, "ReplicationFactor": 1, "Assignments": [],
                                          "Configs": []} for n in ("new-%s-c" % user, "x-%s-c" % user)],
                              "timeoutMs": 30000, "validateOnly": False})
        m["create_topics"] = sorted((t["Name"].split("-")[0], t["ErrorCode"]) for t in r["Topics"])
        r = c.request(20, 4, {"TopicNames": ["del-" + user, TOPICS["pre"]], "TimeoutMs": 30000})
        m["delete_topics"] = sorted((t["Name"], t["ErrorCode"]) for t in r["Responses"])
        r = c.request(32, 4, {"Resources": [{"ResourceType": 4, "ResourceName": "1",
                                             "ConfigurationKeys": ["log.retention.ms"]}],
                              "IncludeSynonyms": False, "IncludeDocumentation": False})
        m["describe_configs broker"] = first(r, "Results", 0, "ErrorCode")
        r = c.request(44, 1, {"Resources": [{"ResourceType": 4, "ResourceName": "1", "Configs": [
            {"Name": "log.retention.ms", "ConfigOperation": 0, "Value": "3600000"}]}], "ValidateOnly": True})
        m["incremental_alter_configs broker"] = first(r, "Responses", 0, "ErrorCode")
        for g in ("g1", "h1"):
            r = c.request(10, 4, {"KeyType": 0, "CoordinatorKeys": [g]})
            m["find_coordinator " + g] = first(r, "Coordinators", 0, "ErrorCode")
            r = c.request(15, 5, {"Groups": [g], "IncludeAuthorizedOperations": True})
            gr = r["Groups"][0]
            m["describe_groups " + g] = (gr["ErrorCode"], gr["AuthorizedOperations"])
            r = c.request(8, 8, self.commit_body(g, [TOPICS["lit"], TOPICS["pre"]]))
            m["offset_commit " + g] = [x["Partitions"][0]["ErrorCode"] for x in r["Topics"]]
            r = c.request(9, 8, {"Groups": [{"GroupId": g, "Topics": None}], "RequireStable": False})
            gr = r["Groups"][0]
            m["offset_fetch all " + g] = (gr["ErrorCode"], sorted(t["Name"] for t in gr["Topics"]))
            r = c.request(9, 8, {"Groups": [{"GroupId": g, "Topics": [
                {"Name": t, "PartitionIndexes": [0]} for t in (TOPICS["lit"], TOPICS["pre"])]}],
                "RequireStable": False})
            gr = r["Groups"][0]
            m["offset_fetch topics " + g] = (gr["ErrorCode"], [t["Partitions"][0]["ErrorCode"] for t in gr["Topics"]])
            r = c.request(47, 0, {"GroupId": g, "Topics": [{"Name": TOPICS["pre"],
                                                            "Partitions": [{"PartitionIndex": 0}]}]})
            m["offset_delete " + g] = r["ErrorCode"]
        r = c.request(16, 4, {"StatesFilter": []})
        m["list_groups"] = sorted(g["GroupId"] for g in r["Groups"] if g["GroupId"] in ("g1", "h1"))
        r = c.request(42, 2, {"GroupsNames": ["h1", "zz-none"]})
        m["delete_groups"] = [x["ErrorCode"] for x in r["Results"]]
        deadline = time.monotonic() + 20
        while True:  # a fresh Kafka answers COORDINATOR_LOAD_IN_PROGRESS until its producer ids are ready
            r = c.request(22, 4, {"TransactionalId": None, "TransactionTimeoutMs": 60000, "ProducerId": -1,
                                  "ProducerEpoch": -1})
            if r["ErrorCode"] not in (14, 15) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        m["init_producer_id"] = r["ErrorCode"]
        r = c.request(60, 1, {"IncludeClusterAuthorizedOperations": True, "EndpointType": 1})
        m["describe_cluster"] = (r["ErrorCode"], r["ClusterAuthorizedOperations"])
        m["describe_acls"] = self.describe_all(c)[0]
        m["create_acls"] = self.create_acls(c, [acl_entry(TOPIC, "zz", LITERAL, user, "READ", ALLOW)])
        r = c.request(31, 3, {"Filters": [{"ResourceTypeFilter": TOPIC, "ResourceNameFilter": "zz",
                                           "PatternTypeFilter": LITERAL, "PrincipalFilter": None, "HostFilter": None,
                                           "Operation": 1, "PermissionType": 1}]})
        m["delete_acls"] = first(r, "FilterResults", 0, "ErrorCode")
        return m

    # ---- the ACL APIs themselves ---------------------------------------------------------------------------

    def test_acl_api_validation(self):
        """CreateAcls per item as Kafka answers it (ANY/MATCH codes, codes it does not know, an empty name, another
        cluster name, a principal without a type, an empty host), the valid one in the same batch created; a
        DeleteAcls filter with codes Kafka does not know; a field of code 0 (UNKNOWN) closes the connection."""
        admin = Sasl(self.addr, "admin")
        self.addCleanup(admin.close)
        good = acl_entry(TOPIC, "api-topic", LITERAL, "dave", "READ", ALLOW)
        bad = [dict(good, ResourceType=ANY), dict(good, ResourcePatternType=MATCH), dict(good, ResourcePatternType=ANY),
               dict(good, Operation=OP["ANY"]), dict(good, PermissionType=1), dict(good, ResourceType=99),
               dict(good, ResourcePatternType=99), dict(good, Operation=99), dict(good, PermissionType=99),
               dict(good, ResourceName=""), dict(good, ResourceName="", ResourceType=99),
               dict(good, ResourceType=CLUSTER, ResourceName="other-cluster"), dict(good, Principal="dave"),
               dict(good, Host="")]
        # One ANY or MATCH code fails the whole batch (Kafka's binding constructor throws): nothing is created.
        for b in bad[:5]:
            r = admin.request(30, 3, {"Creations": [b, good]})
            self.assertEqual([(x["ErrorCode"], x["ErrorMessage"]) for x in r["Results"]], [(-1, None)] * 2)
        self.assertEqual(admin.request(29, 3, {"ResourceTypeFilter": TOPIC, "ResourceNameFilter": "api-topic",
                                               "PatternTypeFilter": ANY, "PrincipalFilter": None, "HostFilter": None,
                                               "Operation": 1, "PermissionType": 1})["Resources"], [])
        r = admin.request(30, 3, {"Creations": [bad[5], good] + bad[6:]})
        self.assertEqual([(x["ErrorCode"], x["ErrorMessage"]) for x in r["Results"]], [
            (42, "Invalid resourceType UNKNOWN"), (0, ""), (42, "Invalid patternType UNKNOWN"),
            (42, "Invalid operation UNKNOWN"), (42, "Invalid permissionType UNKNOWN"),
            (42, "Invalid empty resource name"), (42, "Invalid empty resource name"),
            (42, "The only valid name for the CLUSTER resource is kafka-cluster"),
            (42, "Could not parse principal from `dave` (no colon is present separating the principal type from the "
                 "principal name)"),
            (42, "Host pattern cannot be null or empty")])
        flt = {"ResourceTypeFilter": TOPIC, "ResourceNameFilter": "api-topic", "PatternTypeFilter": LITERAL,
               "PrincipalFilter": "User:dave", "HostFilter": None, "Operation": 1, "PermissionType": 1}
        wait_until(lambda: admin.request(29, 3, flt)["Resources"] != [] or "no ACL yet", "the new ACL")
        r = admin.request(29, 3, flt)
        self.assertEqual(r["ErrorCode"], 0)
        self.assertEqual([(x["ResourceType"], x["ResourceName"], x["PatternType"],
                           [(a["Principal"], a["Host"], a["Operation"], a["PermissionType"]) for a in x["Acls"]])
                          for x in r["Resources"]],
                         [(TOPIC, "api-topic", LITERAL, [("User:dave", "*", OP["READ"], ALLOW)])])
        # Codes Kafka does not know match nothing in DescribeAcls, and refuse a DeleteAcls filter.
        r = admin.request(29, 3, dict(flt, ResourceTypeFilter=99))
        self.assertEqual((r["ErrorCode"], r["Resources"]), (0, []))
        # Creating it again changes nothing; deleting it reports it once.
        self.assertEqual(self.create_acls(admin, [good]), [0])
        r = admin.request(31, 3, {"Filters": [dict(flt), dict(flt, PatternTypeFilter=99), dict(flt, Operation=99)]})
        res = r["FilterResults"]
        self.assertEqual([(x["ErrorCode"], x["ErrorMessage"]) for x in res],
                         [(0, None), (42, "Unknown patternFilter."), (42, "Unknown entryFilter.")])
        self.assertEqual([(m["ResourceName"], m["Principal"], m["Operation"], m["ErrorCode"], m["ErrorMessage"])
                          for m in res[0]["MatchingAcls"]], [("api-topic", "User:dave", OP["READ"], 0, None)])
        wait_until(lambda: admin.request(29, 3, flt)["Resources"] == [] or "still there", "the deletion")
        for api, body in ((30, {"Creations": [dict(good, Operation=0)]}),
                          (29, dict(flt, PatternTypeFilter=0)),
                          (31, {"Filters": [dict(flt, PermissionType=0)]})):
            c = Sasl(self.addr, "admin")
            self.addCleanup(c.close)
            with self.assertRaises((kwire.WireError, OSError), msg="api %d" % api):
                c.request(api, 3, body)

    def test_acl_filters(self):
        """DescribeAcls with MATCH, ANY with a name, PREFIXED, by principal / operation / permission."""
        admin = Sasl(self.addr, "admin")
        self.addCleanup(admin.close)
        def described(**kw):
            flt = {"ResourceTypeFilter": ANY, "ResourceNameFilter": None, "PatternTypeFilter": ANY,
                   "PrincipalFilter": None, "HostFilter": None, "Operation": 1, "PermissionType": 1}
            flt.update(kw)
            r = admin.request(29, 3, flt)
            return r["ErrorCode"], sorted((x["ResourceType"], x["ResourceName"], x["PatternType"], a["Principal"],
                                           a["Operation"], a["PermissionType"])
                                          for x in r["Resources"] for a in x["Acls"])
        lit = [(TOPIC, "lit-topic", LITERAL, "User:alice", OP["WRITE"], ALLOW),
               (TOPIC, "lit-topic", LITERAL, "User:alice", OP["ALTER_CONFIGS"], ALLOW),
               (TOPIC, "lit-topic", LITERAL, "User:bob", OP["WRITE"], DENY)]
        star = [(TOPIC, "*", LITERAL, "User:bob", OP["ALL"], ALLOW)]
        self.assertEqual(described(ResourceTypeFilter=TOPIC, ResourceNameFilter="lit-topic", PatternTypeFilter=MATCH),
                         (0, sorted(lit + star)))
        self.assertEqual(described(ResourceTypeFilter=TOPIC, ResourceNameFilter="lit-topic"), (0, sorted(lit)))
        self.assertEqual(described(ResourceTypeFilter=TOPIC, ResourceNameFilter="pre-topic", PatternTypeFilter=MATCH),
                         (0, sorted(star + [(TOPIC, "pre-", PREFIXED, "User:alice", OP["READ"], ALLOW),
                                            (TOPIC, "pre-topic", LITERAL, "User:bob", OP["DELETE"], DENY)])))
        self.assertEqual(described(PatternTypeFilter=PREFIXED, PrincipalFilter="User:alice"),
                         (0, [(TOPIC, "new-", PREFIXED, "User:alice", OP["CREATE"], ALLOW),
                              (TOPIC, "pre-", PREFIXED, "User:alice", OP["READ"], ALLOW)]))
        self.assertEqual(described(ResourceTypeFilter=GROUP, PermissionType=ALLOW, Operation=OP["DESCRIBE"]),
                         (0, [(GROUP, "g", PREFIXED, "User:bob", OP["DESCRIBE"], ALLOW)]))
        self.assertEqual(described(ResourceTypeFilter=CLUSTER),
                         (0, [(CLUSTER, "kafka-cluster", LITERAL, "User:bob", OP["CREATE"], ALLOW)]))
        self.assertEqual(described(PermissionType=DENY, HostFilter="*"),
                         (0, [(TOPIC, "lit-topic", LITERAL, "User:bob", OP["WRITE"], DENY),
                              (TOPIC, "pre-topic", LITERAL, "User:bob", OP["DELETE"], DENY)]))
        self.assertEqual(described(HostFilter="10.9.9.9"), (0, []))

    # ---- Kafka's own tool, and real clients --------------------------------------------------------------------

    def acl_tool(self, *args):
        cfg = os.path.join(self.pki, "admin.properties")
        with open(cfg, "w") as f:
            f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                    "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                    "username=\"admin\" password=\"admin-secret\";\n")
        cmd = ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", _tool_classpath(),
               "org.apache.kafka.tools.AclCommand", "--bootstrap-server", self.addr, "--command-config", cfg] + list(args)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, text=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        return p.stdout

    def test_kafka_acls_tool(self):
        """kafka-acls (org.apache.kafka.tools.AclCommand) --add, --list, --remove."""
        out = self.acl_tool("--add", "--allow-principal", "User:toolie", "--operation", "Read", "--operation",
                            "Describe", "--topic", "tool-", "--group", "tool-", "--resource-pattern-type", "prefixed")
        self.assertIn("tool-", out)
        self.assertNotIn("Error", out)
        wait_until(lambda: len([a for a in self.describe_all()[1] if a[3] == "User:toolie"]) == 4 or
                   self.describe_all()[1], "the tool's ACLs")
        self.assertEqual(sorted(a for a in self.describe_all()[1] if a[3] == "User:toolie"),
                         sorted((t, "tool-", PREFIXED, "User:toolie", "*", op, ALLOW)
                                for t in (TOPIC, GROUP) for op in (OP["READ"], OP["DESCRIBE"])))
        out = self.acl_tool("--list", "--topic", "tool-topic", "--resource-pattern-type", "match")
        self.assertIn("User:toolie", out)
        self.assertIn("READ", out.upper())
        self.acl_tool("--remove", "--force", "--allow-principal", "User:toolie", "--operation", "Read", "--topic",
                      "tool-", "--resource-pattern-type", "prefixed")
        wait_until(lambda: len([a for a in self.describe_all()[1] if a[3] == "User:toolie"]) == 3 or
                   self.describe_all()[1], "the removal")
        # Without --operation the tool removes only ALL bindings (an exact filter): name both.
        self.acl_tool("--remove", "--force", "--allow-principal", "User:toolie", "--operation", "Read", "--operation",
                      "Describe", "--topic", "tool-", "--group", "tool-", "--resource-pattern-type", "prefixed")
        wait_until(lambda: not [a for a in self.describe_all()[1] if a[3] == "User:toolie"] or
                   self.describe_all()[1], "the removal of the rest")

    def client_conf(self, user, **kw):
        c = {"bootstrap.servers": self.addr, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
             "sasl.username": user, "sasl.password": PASSWORDS[user], "socket.timeout.ms": 10000}
        c.update(kw)
        return c

    def test_clients_see_topic_authorization_failed(self):
        """confluent-kafka: carol's producer and consumer get TOPIC_AUTHORIZATION_FAILED; bob's produce works."""
        reports = []
        p = Producer(self.client_conf("carol", **{"message.timeout.ms": 10000, "enable.idempotence": False}))
        p.produce(TOPICS["none"], b"x", on_delivery=lambda err, msg: reports.append(err))
        p.flush(20)
        self.assertEqual(len(reports), 1)
        self.assertIsNotNone(reports[0])
        self.assertEqual(reports[0].code(), KafkaError.TOPIC_AUTHORIZATION_FAILED, reports[0])
        reports.clear()
        p = Producer(self.client_conf("bob", **{"message.timeout.ms": 10000}))
        p.produce(TOPICS["none"], b"y", on_delivery=lambda err, msg: reports.append(err))
        p.flush(20)
        self.assertEqual(reports, [None])
        c = Consumer(self.client_conf("carol", **{"group.id": "carol-g", "enable.auto.commit": False}))
        try:
            c.subscribe([TOPICS["none"]])
            err = None
            deadline = time.monotonic() + 20
            while err is None and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and m.error():
                    err = m.error()
            self.assertIsNotNone(err, "no error seen by the consumer")
            self.assertEqual(err.code(), KafkaError.TOPIC_AUTHORIZATION_FAILED, err)
        finally:
            c.close()

    def test_acks0_refused_closes_connection(self):
        """An acks=0 Produce has no answer to carry TOPIC_AUTHORIZATION_FAILED: the broker closes the connection
        (so does an unknown topic); an allowed one leaves it open and usable."""
        def acks0(user, topic):
            c = Sasl(self.addr, user)
            self.addCleanup(c.close)
            body = self.produce_body(topic)
            body["Acks"] = 0
            head = struct.pack(">hhih", 0, 9, 4242, 3) + b"acl" + b"\0"
            payload = kwire.Message("ProduceRequest").encode(9, body)
            c.s.sendall(struct.pack(">i", len(head) + len(payload)) + head + payload)
            c.s.settimeout(5)
            try:
                return "closed" if c.s.recv(64) == b"" else "answered"
            except socket.timeout:
                r = c.request(3, 12, {"Topics": [], "AllowAutoTopicCreation": False,
                                      "IncludeTopicAuthorizedOperations": False})
                return "open" if "Brokers" in r else r
            except ConnectionResetError:
                return "closed"
        self.assertEqual(acks0("carol", TOPICS["none"]), "closed")
        self.assertEqual(acks0("admin", "acks0-no-such-topic"), "closed")
        self.assertEqual(acks0("bob", TOPICS["none"]), "open")

    def test_cluster_config_apis_need_cluster_rights(self):
        """SCRAM credential and client quota APIs act on the cluster: without DESCRIBE / ALTER (credentials) or
        DESCRIBE_CONFIGS / ALTER_CONFIGS (quotas) on it, Kafka answers CLUSTER_AUTHORIZATION_FAILED and changes
        nothing; the super user is served."""
        def probe(user):
            c = Sasl(self.addr, user)
            self.addCleanup(c.close)
            out = {}
            r = c.request(50, 0, {"Users": []})
            out["describe_scram"] = (r["ErrorCode"], r["ErrorMessage"], len(r["Results"] or []))
            r = c.request(51, 0, {"Deletions": [], "Upsertions": [
                {"Name": "acl-scram-" + user, "Mechanism": 1, "Iterations": 4096, "Salt": b"s" * 16,
                 "SaltedPassword": b"p" * 32}]})
            out["alter_scram"] = [(x["User"], x["ErrorCode"], x["ErrorMessage"]) for x in r["Results"]]
            r = c.request(48, 1, {"Components": [{"EntityType": "client-id", "MatchType": 2, "Match": None}],
                                  "Strict": False})
            out["describe_quotas"] = (r["ErrorCode"], r["ErrorMessage"], r["Entries"] is None)
            r = c.request(49, 1, {"Entries": [{"Entity": [{"EntityType": "client-id",
                                                           "EntityName": "acl-quota-" + user}],
                                               "Ops": [{"Key": "producer_byte_rate", "Value": 1024.0,
                                                        "Remove": False}]}],
                                  "ValidateOnly": True})
            out["alter_quotas"] = [(x["ErrorCode"], x["ErrorMessage"]) for x in r["Entries"]]
            return out
        self.maxDiff = None
        denied = "Cluster authorization failed."
        got = probe("carol")
        # Kafka forwards the SCRAM change to its controller, whose refusal text names its internal request
        # object: only the code is compared there.
        got["alter_scram"] = [(u, e) for u, e, _ in got["alter_scram"]]
        self.assertEqual(got, {
            "describe_scram": (31, None, 0),
            "alter_scram": [("acl-scram-carol", 31)],
            "describe_quotas": (31, None, True),
            "alter_quotas": [(31, denied)],
        })
        got = probe("admin")
        self.assertEqual(got["describe_scram"][0], 0, got)
        self.assertEqual(got["alter_scram"], [("acl-scram-admin", 0, None)])
        self.assertEqual(got["describe_quotas"][:2], (0, ""), got)
        self.assertEqual(got["alter_quotas"], [(0, None)])

    def test_consumer_group_describe_hides_topics(self):
        """ConsumerGroupDescribe of a KIP-848 group whose member subscribes to and is assigned a topic: described to
        who may DESCRIBE that topic, TOPIC_AUTHORIZATION_FAILED (no members) to who may only DESCRIBE the group."""
        admin = Sasl(self.addr, "admin")
        self.addCleanup(admin.close)
        self.create_topics(["cg-topic"], parts=2)
        self.assertEqual(self.create_acls(admin, [acl_entry(GROUP, "cgd", LITERAL, "dave", "READ", ALLOW),
                                                  acl_entry(TOPIC, "cg-topic", LITERAL, "dave", "READ", ALLOW),
                                                  acl_entry(GROUP, "cgd", LITERAL, "erin", "DESCRIBE", ALLOW)]),
                         [0, 0, 0])
        wait_until(lambda: len([a for a in self.describe_all(admin)[1] if a[1] in ("cgd", "cg-topic")]) == 3 or
                   "not yet", "the group's ACLs")
        wait_until(lambda: self.group_ready("cgd"), "coordinator of cgd")
        dave = Sasl(self.addr, "dave")
        self.addCleanup(dave.close)
        body = {"GroupId": "cgd", "MemberId": "acl-test-member-0001", "MemberEpoch": 0, "InstanceId": None,
                "RackId": None, "RebalanceTimeoutMs": 30000, "SubscribedTopicNames": ["cg-topic"],
                "SubscribedTopicRegex": None, "ServerAssignor": None, "TopicPartitions": []}
        r = dave.request(68, 1, body)
        self.assertEqual(r["ErrorCode"], 0, r)
        epoch = r["MemberEpoch"]

        def described(user):
            c = Sasl(self.addr, user)
            try:
                g = c.request(69, 0, {"GroupIds": ["cgd"], "IncludeAuthorizedOperations": True})["Groups"][0]
            finally:
                c.close()
            return (g["ErrorCode"], g["ErrorMessage"], g["GroupState"], len(g["Members"]), g["AuthorizedOperations"],
                    sorted(tp["TopicName"] for m in g["Members"] for tp in m["Assignment"]["TopicPartitions"]))

        def assigned():
            nonlocal epoch
            r = dave.request(68, 1, dict(body, MemberEpoch=epoch, SubscribedTopicNames=None, TopicPartitions=None))
            epoch = r["MemberEpoch"]
            return described("dave")[5] == ["cg-topic"] or described("dave")
        wait_until(assigned, "dave's assignment")
        self.assertEqual(described("dave"), (0, None, "Stable", 1, (1 << OP["READ"]) | (1 << OP["DESCRIBE"]),
                                             ["cg-topic"]))
        self.assertEqual(described("erin"), (29, "The group has described topic(s) that the client is not authorized "
                                                 "to describe.", "", 0, -2147483648, []))
        self.assertEqual(described("carol")[0], 30)
        dave.request(68, 1, dict(body, MemberEpoch=-1, SubscribedTopicNames=None, TopicPartitions=None))

    def test_matrix(self):
        got = {p: self.matrix_of(p) for p in PRINCIPALS}
        if os.environ.get("KB_ACL_PRINT"):
            import pprint
            with open(os.environ["KB_ACL_PRINT"], "w") as f:
                f.write(pprint.pformat(got, width=116))
        for p in PRINCIPALS:
            for k in sorted(set(EXPECTED[p]) | set(got[p])):
                with self.subTest(principal=p, op=k):
                    self.assertEqual(got[p].get(k), EXPECTED[p].get(k), "%s %s" % (p, k))


class AclAllowEveryoneTest(unittest.TestCase):
    """allow.everyone.if.no.acl.found=true: a resource without any binding is open to everyone; one binding on it
    (for someone else) closes it to the rest; other resources stay open."""

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-acl-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.t = SecureTarget(cls.pki, extra=dict(EXTRA, **{"allow.everyone.if.no.acl.found": "true"}))
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()
        cls.addr = cls.t.addr("SASL_PLAINTEXT")

    def test_open_until_bound(self):
        admin = Sasl(self.addr, "admin")
        self.addCleanup(admin.close)
        AclTest.create_topics(["open-a", "open-b"], conn=admin)

        def produce(user, topic):
            c = Sasl(self.addr, user)
            try:
                return c.request(0, 9, AclTest.produce_body(topic))["Responses"][0]["PartitionResponses"][0][
                    "ErrorCode"]
            finally:
                c.close()
        self.assertEqual((produce("carol", "open-a"), produce("carol", "open-b")), (0, 0))
        self.assertEqual(AclTest.create_acls(admin, [acl_entry(TOPIC, "open-a", LITERAL, "alice", "READ", ALLOW)]),
                         [0])
        wait_until(lambda: produce("carol", "open-a") == 29 or "still open", "the binding to apply")
        self.assertEqual((produce("carol", "open-a"), produce("carol", "open-b"), produce("alice", "open-a")),
                         (29, 0, 29))


@kbroker_only("restarts and kills its own kbroker process, and kbroker's refusal of another authorizer class")
class AclDurabilityTest(unittest.TestCase):
    """ACLs live in kbroker's metadata log: they survive a clean restart and kill -9 (answered only once
    durable), a deleted one stays deleted (its tombstone replays), and enforcement holds after each start."""

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-acl-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.t = SecureTarget(cls.pki, extra=EXTRA)
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()
        cls.addr = cls.t.addr("SASL_PLAINTEXT")

    def acls(self):
        c = Sasl(self.addr, "admin")
        try:
            return AclTest.describe_all(c)[1]
        finally:
            c.close()

    def produce_as(self, user, topic):
        c = Sasl(self.addr, user)
        try:
            r = c.request(0, 9, AclTest.produce_body(topic))
            return r["Responses"][0]["PartitionResponses"][0]["ErrorCode"]
        finally:
            c.close()

    def test_restart_and_kill9(self):
        admin = Sasl(self.addr, "admin")
        r = admin.request(19, 4, {"Topics": [{"Name": "dur-topic", "NumPartitions": 1, "ReplicationFactor": 1,
                                              "Assignments": [], "Configs": []}], "timeoutMs": 30000,
                                  "validateOnly": False})
        self.assertEqual(r["Topics"][0]["ErrorCode"], 0)
        entries = [acl_entry(TOPIC, "dur-", PREFIXED, "alice", "WRITE", ALLOW),
                   acl_entry(TOPIC, "dur-topic", LITERAL, "bob", "WRITE", ALLOW),
                   acl_entry(TOPIC, "dur-topic", LITERAL, "bob", "WRITE", DENY, host="127.0.0.1")]
        self.assertEqual(AclTest.create_acls(admin, entries), [0, 0, 0])
        admin.close()
        before = self.acls()
        self.assertEqual(len(before), 3)
        self.assertEqual((self.produce_as("alice", "dur-topic"), self.produce_as("bob", "dur-topic"),
                          self.produce_as("carol", "dur-topic")), (0, 29, 29))
        self.t.kb.restart()
        self.assertEqual(self.acls(), before)
        self.assertEqual((self.produce_as("alice", "dur-topic"), self.produce_as("bob", "dur-topic")), (0, 29))
        # Delete the DENY, then kill -9 right after the answer: the deletion is durable too.
        admin = Sasl(self.addr, "admin")
        r = admin.request(31, 3, {"Filters": [{"ResourceTypeFilter": TOPIC, "ResourceNameFilter": "dur-topic",
                                               "PatternTypeFilter": LITERAL, "PrincipalFilter": "User:bob",
                                               "HostFilter": None, "Operation": 1, "PermissionType": DENY}]})
        self.assertEqual(len(r["FilterResults"][0]["MatchingAcls"]), 1)
        admin.close()
        self.t.kb.kill9()
        self.t.kb.start()
        self.assertEqual(self.acls(), {a for a in before if a[6] != DENY})
        self.assertEqual((self.produce_as("alice", "dur-topic"), self.produce_as("bob", "dur-topic"),
                          self.produce_as("carol", "dur-topic")), (0, 0, 29))
        self.assertIn(" 2 ACLs,", self.t.log_text())

    def test_other_authorizer_refused(self):
        """An authorizer class kbroker does not have fails the start, naming the one it has."""
        d = tempfile.mkdtemp(prefix="kb-acl-cls-")
        self.addCleanup(shutil.rmtree, d, True)
        argv = [os.environ.get("KB_BROKER_BIN") or DEFAULT_BIN, "--set", "listeners=PLAINTEXT://127.0.0.1:0",
                "--set", "log.dirs=" + d, "--set", "authorizer.class.name=kafka.security.authorizer.AclAuthorizer"]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = p.stdout.decode(errors="replace")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("authorizer.class.name=kafka.security.authorizer.AclAuthorizer is not supported", out)
        self.assertIn("org.apache.kafka.metadata.authorizer.StandardAuthorizer", out)


def _tool_classpath():
    """Kafka's tools from the Java suite's classpath (compat-tests/java/build.sh makes it)."""
    java = os.path.join(_HERE, "..", "java")
    path = os.path.join(java, "target", "classpath.txt")
    if not os.path.exists(path):
        subprocess.run([os.path.join(java, "build.sh")], check=True, timeout=600)
    with open(path) as f:
        return f.read().strip()


def _dig(obj, path):
    for p in path:
        obj = obj[p]
    return obj


if __name__ == "__main__":
    unittest.main()

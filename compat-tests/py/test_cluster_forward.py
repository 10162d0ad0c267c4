"""Metadata changes sent to a follower of a three-node kbroker quorum are forwarded to the active controller in
Kafka's Envelope (API 58) with the caller's principal, as Kafka 4.x brokers forward theirs: every forwardable change
(CreateTopics, CreatePartitions, IncrementalAlterConfigs and AlterConfigs of topics, CreateAcls, DeleteAcls,
AlterClientQuotas, AlterUserScramCredentials, DeleteTopics) sent to a follower answers as the controller would and
takes effect on every node. With StandardAuthorizer on, the controller authorizes the forwarded principal: a user
without the ACL is refused (TOPIC_/CLUSTER_AUTHORIZATION_FAILED), the same user with it is served; an Envelope from a
principal without CLUSTER_ACTION on the cluster is refused with CLUSTER_AUTHORIZATION_FAILED, and one naming alice
is authorized as alice. An Envelope from an address that is no voter's is refused (CLUSTER_AUTHORIZATION_FAILED) even
from the nodes' own principal; a malformed inner request (an ACL code 0) answers the Envelope UNSUPPORTED_VERSION and
keeps the connection, the follower's link; a controller_mutation_rate throttle mutes the throttled client on the
follower, not the follower's link.

Metadata's auto-creation through a follower goes in an Envelope too: a user allowed CREATE gets the topic although
the nodes' own principal may not create it.

kbroker only: the cluster is kbroker processes of the test's own (lib/cluster.py); Kafka serves Envelope on its
controller listener only, between its own nodes. Users authenticate with SASL/PLAIN on a second listener; the
nodes' own connections (registration, forwarding) are PLAINTEXT on the first, whose ANONYMOUS principal gets
CLUSTER_ACTION on the cluster and nothing else (admin grants it once the controller is known).
"""

import os
import socket
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "diff"))
import kwire  # noqa: E402
from cluster import Cluster, Node  # noqa: E402
from common import kbroker_only, uniq  # noqa: E402
from ports import free_port  # noqa: E402
from secure import authenticate, handshake, plain_token  # noqa: E402

PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret" ' + " ".join('user_%s="%s"' % kv for kv in PASSWORDS.items()) + ";")
TOPIC, CLUSTER = 2, 4
LITERAL, PREFIXED, ANY = 3, 4, 1
ALLOW = 3
OP = {"ANY": 1, "CREATE": 5, "DESCRIBE": 8, "DELETE": 6, "ALTER": 7, "CLUSTER_ACTION": 9, "ALTER_CONFIGS": 11}
NOT_CONTROLLER, TOPIC_AUTHZ, CLUSTER_AUTHZ, UNSUPPORTED_VERSION = 41, 29, 31, 35
WAIT = 40.0


class SaslNode(Node):
    """A node with a SASL_PLAINTEXT listener beside the PLAINTEXT one the nodes talk on."""

    def __init__(self, *a):
        super().__init__(*a)
        self.sasl_port = free_port(self.host)

    def argv(self):
        a = super().argv()
        i = a.index("listeners=PLAINTEXT://%s:0,CONTROLLER://%s:%d" % (self.host, self.host, self.ctl_port))
        a[i] = ("listeners=PLAINTEXT://%s:0,SASL_PLAINTEXT://%s:%d,CONTROLLER://%s:%d"
                % (self.host, self.host, self.sasl_port, self.host, self.ctl_port))
        i = a.index("listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")
        a[i] = "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
        return a

    @property
    def sasl(self):
        return "%s:%d" % (self.host, self.sasl_port)


class SaslCluster(Cluster):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.nodes = [SaslNode(self, x.node_id, x.host, x.ctl_port) for x in self.nodes]


class Sasl(kwire.Conn):
    def __init__(self, addr, user, client_id=None):
        super().__init__(addr, client_id=client_id or "fwd-" + user)
        err, _ = handshake(self.s, "PLAIN", corr=1001)
        assert err == 0, err
        err, msg = authenticate(self.s, plain_token(user, PASSWORDS[user]), corr=1002)
        assert err == 0, msg


def acl(rtype, name, pattern, user, op):
    return {"ResourceType": rtype, "ResourceName": name, "ResourcePatternType": pattern,
            "Principal": "User:" + user, "Host": "*", "Operation": OP[op], "PermissionType": ALLOW}


def create_topics(c, names, parts=1):
    r = c.request(19, 7, {"Topics": [{"Name": n, "NumPartitions": parts, "ReplicationFactor": 1, "Assignments": [],
                                      "Configs": []} for n in names], "TimeoutMs": 30000, "ValidateOnly": False})
    return [t["ErrorCode"] for t in r["Topics"]]


def partitions(c, topic):
    r = c.request(3, 12, {"Topics": [{"Name": topic, "TopicId": b"\0" * 16}], "AllowAutoTopicCreation": False,
                          "IncludeTopicAuthorizedOperations": False})
    t = r["Topics"][0]
    return len(t["Partitions"]) if t["ErrorCode"] == 0 else -t["ErrorCode"]


def topic_config(c, topic, key):
    r = c.request(32, 4, {"Resources": [{"ResourceType": TOPIC, "ResourceName": topic, "ConfigurationKeys": [key]}],
                          "IncludeSynonyms": False, "IncludeDocumentation": False})
    res = r["Results"][0]
    if res["ErrorCode"]:
        return ("error", res["ErrorCode"])
    return next((x["Value"] for x in res["Configs"] if x["Name"] == key), None)


def acls_of(c, user):
    r = c.request(29, 3, {"ResourceTypeFilter": ANY, "ResourceNameFilter": None, "PatternTypeFilter": ANY,
                          "PrincipalFilter": "User:" + user, "HostFilter": None, "Operation": 1, "PermissionType": 1})
    return sorted((res["ResourceName"], a["Operation"]) for res in r["Resources"] for a in res["Acls"])


def quota_of(c, client_id):
    r = c.request(48, 1, {"Components": [{"EntityType": "client-id", "MatchType": 0, "Match": client_id}],
                          "Strict": False})
    return [v["Value"] for e in (r["Entries"] or []) for v in e["Values"] if v["Key"] == "producer_byte_rate"]


def scram_users(c, user):
    r = c.request(50, 0, {"Users": [{"Name": user}]})
    return [(x["User"], x["ErrorCode"], len(x["CredentialInfos"] or [])) for x in r["Results"]]


def principal_data(type_, name):
    """Kafka's DefaultKafkaPrincipalBuilder serialization: int16 version 0, then DefaultPrincipalData v0."""
    return struct.pack(">h", 0) + kwire.Message("DefaultPrincipalData").encode(0, {
        "Type": type_, "Name": name, "TokenAuthenticated": False})


def inner_create_topics(name, corr=77):
    """A whole CreateTopics v7 request (header v2 and body), as an Envelope carries it."""
    body = kwire.Message("CreateTopicsRequest").encode(7, {
        "Topics": [{"Name": name, "NumPartitions": 1, "ReplicationFactor": 1, "Assignments": [], "Configs": []}],
        "TimeoutMs": 30000, "ValidateOnly": False})
    cid = b"envelope-test"
    return struct.pack(">hhih", 19, 7, corr, len(cid)) + cid + b"\0" + body


def inner_request(key, ver, name, values, corr=77):
    """A whole request of a flexible version (header v2 and body), as an Envelope carries it."""
    body = kwire.Message(name).encode(ver, values)
    cid = b"envelope-test"
    return struct.pack(">hhih", key, ver, corr, len(cid)) + cid + b"\0" + body


def bound_conn(addr, source):
    """A PLAINTEXT connection whose socket is bound to the address source first."""
    c = kwire.Conn.__new__(kwire.Conn)
    host, _, port = addr.rpartition(":")
    c.s = socket.create_connection((host, int(port)), timeout=15.0, source_address=(source, 0))
    c.corr = 0
    c.client_id = b"non-voter"
    return c


def inner_error(data, corr=77):
    """The first topic's error code of the CreateTopics v7 response inside an Envelope response."""
    got_corr = struct.unpack(">i", data[:4])[0]
    assert got_corr == corr, (got_corr, corr)
    r = kwire.Reader(data[4:])
    for _ in range(r.uvarint()):  # the response header's tagged fields
        r.uvarint()
        r.take(r.uvarint())
    resp = kwire.Message("CreateTopicsResponse").decode(7, r.d[r.p:])
    return resp["Topics"][0]["ErrorCode"]


def wait_for(what, cond, timeout=WAIT, logs=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last is True:
            return
        time.sleep(0.2)
    raise AssertionError("%s: not within %.0fs (last: %r)%s" % (what, timeout, last, "\n" + logs() if logs else ""))


@kbroker_only("a cluster of kbroker processes; Kafka serves Envelope only between its own nodes")
class ClusterForwardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = SaslCluster(n=3, extra_sets=[
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:admin",
            "sasl.enabled.mechanisms=PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config=" + JAAS,
            "broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500",
            "offsets.topic.num.partitions=3"])
        cls.cluster.start()
        cls.addClassCleanup(cls.cluster.stop)
        cls.conns = []
        cls.addClassCleanup(lambda: [c.close() for c in cls.conns])

        def controller_id():
            c = kwire.Conn(cls.cluster.node(1).bootstrap)
            try:
                return c.request(3, 12, {"Topics": [], "AllowAutoTopicCreation": False,
                                         "IncludeTopicAuthorizedOperations": False})["ControllerId"]
            finally:
                c.close()
        wait_for("an active controller", lambda: controller_id() in (1, 2, 3), logs=cls.cluster.logs)
        # The nodes' own connections (registration, forwarding) are the first listener's ANONYMOUS: a cluster
        # member, CLUSTER_ACTION and nothing else, granted by the super user on the controller.
        admin = Sasl(cls.cluster.node(controller_id()).sasl, "admin")
        r = admin.request(30, 3, {"Creations": [acl(CLUSTER, "kafka-cluster", LITERAL, "ANONYMOUS",
                                                    "CLUSTER_ACTION")]})
        admin.close()
        assert [x["ErrorCode"] for x in r["Results"]] == [0], r

        def settled():
            ids = set()
            for n in cls.cluster.nodes:
                c = kwire.Conn(n.bootstrap)
                try:
                    md = c.request(3, 12, {"Topics": [], "AllowAutoTopicCreation": False,
                                           "IncludeTopicAuthorizedOperations": False})
                finally:
                    c.close()
                if len(md["Brokers"]) != 3:
                    return "node %d sees %d brokers" % (n.node_id, len(md["Brokers"]))
                ids.add(md["ControllerId"])
            return True if len(ids) == 1 and -1 not in ids else ids
        wait_for("three registered brokers and one controller", settled, logs=cls.cluster.logs)
        c = kwire.Conn(cls.cluster.node(1).bootstrap)
        cls.controller = c.request(3, 12, {"Topics": [], "AllowAutoTopicCreation": False,
                                           "IncludeTopicAuthorizedOperations": False})["ControllerId"]
        c.close()
        cls.followers = [n for n in cls.cluster.nodes if n.node_id != cls.controller]

    def conn(self, node, user):
        c = Sasl(node.sasl, user)
        self.conns.append(c)
        return c

    def everywhere(self, what, fn, want):
        """fn(conn) == want on every node (through each node's own admin connection)."""
        conns = [self.conn(n, "admin") for n in self.cluster.nodes]
        wait_for(what, lambda: True if all(fn(c) == want for c in conns) else [fn(c) for c in conns],
                 logs=self.cluster.logs)

    def test_every_change_on_a_follower_takes_effect_cluster_wide(self):
        f = self.followers[0]
        c = self.conn(f, "admin")
        t = uniq("fwd")
        self.assertEqual(create_topics(c, [t]), [0], self.cluster.logs())
        self.everywhere("the topic on every node", lambda x: partitions(x, t), 1)

        r = c.request(37, 3, {"Topics": [{"Name": t, "Count": 3, "Assignments": None}], "TimeoutMs": 30000,
                              "ValidateOnly": False})
        self.assertEqual(r["Results"][0]["ErrorCode"], 0, r)
        self.everywhere("three partitions on every node", lambda x: partitions(x, t), 3)

        r = c.request(44, 1, {"Resources": [{"ResourceType": TOPIC, "ResourceName": t, "Configs": [
            {"Name": "retention.ms", "ConfigOperation": 0, "Value": "123456"}]}], "ValidateOnly": False})
        self.assertEqual(r["Responses"][0]["ErrorCode"], 0, r)
        self.everywhere("the incremental config on every node", lambda x: topic_config(x, t, "retention.ms"),
                        "123456")
        r = c.request(33, 2, {"Resources": [{"ResourceType": TOPIC, "ResourceName": t, "Configs": [
            {"Name": "cleanup.policy", "Value": "compact"}]}], "ValidateOnly": False})
        self.assertEqual(r["Responses"][0]["ErrorCode"], 0, r)
        self.everywhere("the replaced config on every node", lambda x: topic_config(x, t, "cleanup.policy"),
                        "compact")

        user = uniq("u")
        r = c.request(30, 3, {"Creations": [acl(TOPIC, t, LITERAL, user, "ALTER")]})
        self.assertEqual([x["ErrorCode"] for x in r["Results"]], [0], r)
        self.everywhere("the ACL on every node", lambda x: acls_of(x, user), [(t, OP["ALTER"])])
        r = c.request(31, 3, {"Filters": [{"ResourceTypeFilter": TOPIC, "ResourceNameFilter": t,
                                           "PatternTypeFilter": LITERAL, "PrincipalFilter": "User:" + user,
                                           "HostFilter": None, "Operation": 1, "PermissionType": 1}]})
        self.assertEqual(r["FilterResults"][0]["ErrorCode"], 0, r)
        self.assertEqual(len(r["FilterResults"][0]["MatchingAcls"]), 1, r)
        self.everywhere("the ACL gone from every node", lambda x: acls_of(x, user), [])

        cid = uniq("client")
        r = c.request(49, 1, {"Entries": [{"Entity": [{"EntityType": "client-id", "EntityName": cid}],
                                           "Ops": [{"Key": "producer_byte_rate", "Value": 2048.0,
                                                    "Remove": False}]}], "ValidateOnly": False})
        self.assertEqual(r["Entries"][0]["ErrorCode"], 0, r)
        self.everywhere("the quota on every node", lambda x: quota_of(x, cid), [2048.0])

        su = uniq("scram")
        r = c.request(51, 0, {"Deletions": [], "Upsertions": [
            {"Name": su, "Mechanism": 1, "Iterations": 4096, "Salt": b"s" * 16, "SaltedPassword": b"p" * 32}]})
        self.assertEqual([x["ErrorCode"] for x in r["Results"]], [0], r)
        self.everywhere("the SCRAM credential on every node", lambda x: scram_users(x, su), [(su, 0, 1)])

        r = c.request(20, 6, {"Topics": [{"Name": t, "TopicId": b"\0" * 16}], "TimeoutMs": 30000})
        self.assertEqual(r["Responses"][0]["ErrorCode"], 0, r)
        self.everywhere("the topic gone from every node", lambda x: partitions(x, t), -3)

    def test_the_controller_authorizes_the_forwarded_user(self):
        f = self.followers[-1]
        alice = self.conn(f, "alice")
        t = "alice-" + uniq("t")
        # No ACL: the controller refuses alice (Kafka's codes, as test_acl.py's matrix has them).
        self.assertEqual(create_topics(alice, [t]), [TOPIC_AUTHZ])
        r = alice.request(30, 3, {"Creations": [acl(TOPIC, t, LITERAL, "alice", "ALTER")]})
        self.assertEqual([x["ErrorCode"] for x in r["Results"]], [CLUSTER_AUTHZ], r)
        r = alice.request(49, 1, {"Entries": [{"Entity": [{"EntityType": "client-id", "EntityName": t}],
                                               "Ops": [{"Key": "producer_byte_rate", "Value": 1.0,
                                                        "Remove": False}]}], "ValidateOnly": False})
        self.assertEqual(r["Entries"][0]["ErrorCode"], CLUSTER_AUTHZ, r)
        # Granted through another follower (or the controller), then alice's creation through this one passes.
        admin = self.conn(self.followers[0], "admin")
        r = admin.request(30, 3, {"Creations": [acl(TOPIC, "alice-", PREFIXED, "alice", "CREATE")]})
        self.assertEqual([x["ErrorCode"] for x in r["Results"]], [0], r)
        self.everywhere("alice's ACL on every node",
                        lambda x: [a for a in acls_of(x, "alice") if a[0] == "alice-"], [("alice-", OP["CREATE"])])
        self.assertEqual(create_topics(alice, [t]), [0], self.cluster.logs())
        self.everywhere("alice's topic on every node", lambda x: partitions(x, t), 1)
        # Deleting needs DELETE, which alice lacks.
        r = alice.request(20, 6, {"Topics": [{"Name": t, "TopicId": b"\0" * 16}], "TimeoutMs": 30000})
        self.assertEqual(r["Responses"][0]["ErrorCode"], TOPIC_AUTHZ, r)

    def test_auto_creation_on_a_follower_runs_as_the_user(self):
        f = self.followers[0]
        admin = self.conn(f, "admin")
        r = admin.request(30, 3, {"Creations": [acl(TOPIC, "auto-alice-", PREFIXED, "alice", "CREATE"),
                                                acl(TOPIC, "auto-alice-", PREFIXED, "alice", "DESCRIBE")]})
        self.assertEqual([x["ErrorCode"] for x in r["Results"]], [0, 0], r)
        self.everywhere("alice's auto-creation ACLs on every node", lambda x: len(
            [a for a in acls_of(x, "alice") if a[0] == "auto-alice-"]), 2)
        t = "auto-alice-" + uniq("t")
        alice = self.conn(f, "alice")

        def created():
            r = alice.request(3, 12, {"Topics": [{"Name": t, "TopicId": b"\0" * 16}], "AllowAutoTopicCreation": True,
                                      "IncludeTopicAuthorizedOperations": False})
            return True if r["Topics"][0]["ErrorCode"] == 0 else r["Topics"][0]["ErrorCode"]
        wait_for("alice's auto-created topic", created, logs=self.cluster.logs)
        self.everywhere("the auto-created topic on every node", lambda x: partitions(x, t), 1)

    def envelope(self, conn, principal, inner):
        return conn.request(58, 0, {"RequestData": inner, "RequestPrincipal": principal,
                                    "ClientHostAddress": bytes([127, 0, 0, 9])})

    def test_envelope_needs_cluster_action_and_runs_as_the_named_principal(self):
        ctl = self.cluster.node(self.controller)
        # bob is no cluster member: refused whole, nothing run.
        bob = self.conn(ctl, "bob")
        t = "env-" + uniq("t")
        r = self.envelope(bob, principal_data("User", "admin"), inner_create_topics(t))
        self.assertEqual((r["ErrorCode"], r["ResponseData"]), (CLUSTER_AUTHZ, None))
        # A member (the nodes' own PLAINTEXT principal) naming alice: authorized as alice, who may not create t.
        member = kwire.Conn(ctl.bootstrap)
        self.conns.append(member)
        r = self.envelope(member, principal_data("User", "alice"), inner_create_topics(t))
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(inner_error(r["ResponseData"]), TOPIC_AUTHZ)
        # ... and naming admin, served.
        r = self.envelope(member, principal_data("User", "admin"), inner_create_topics(t))
        self.assertEqual((r["ErrorCode"], inner_error(r["ResponseData"])), (0, 0))
        self.everywhere("the enveloped topic on every node", lambda x: partitions(x, t), 1)
        # A principal that does not decode, and an API that is not forwarded.
        r = self.envelope(member, b"\0\7junk", inner_create_topics(t))
        self.assertEqual(r["ErrorCode"], 97)
        r = self.envelope(member, principal_data("User", "admin"),
                          struct.pack(">hhih", 18, 0, 5, 1) + b"x")
        self.assertEqual(r["ErrorCode"], 42)

    def test_a_malformed_inner_request_keeps_the_followers_link(self):
        ctl = self.cluster.node(self.controller)
        member = kwire.Conn(ctl.bootstrap)
        self.conns.append(member)
        # An ACL binding with an UNKNOWN (0) operation, and a filter with an UNKNOWN pattern type: requests Kafka
        # cannot parse. In an Envelope the controller answers UNSUPPORTED_VERSION, as Kafka 4.4's controller answers
        # an inner request it cannot parse, and keeps the connection, a follower's link carrying other forwards.
        bad_create = inner_request(30, 3, "CreateAclsRequest", {"Creations": [
            {"ResourceType": TOPIC, "ResourceName": "x", "ResourcePatternType": LITERAL, "Principal": "User:x",
             "Host": "*", "Operation": 0, "PermissionType": ALLOW}]})
        bad_delete = inner_request(31, 3, "DeleteAclsRequest", {"Filters": [
            {"ResourceTypeFilter": TOPIC, "ResourceNameFilter": "x", "PatternTypeFilter": 0,
             "PrincipalFilter": None, "HostFilter": None, "Operation": 1, "PermissionType": 1}]})
        for inner in (bad_create, bad_delete):
            r = self.envelope(member, principal_data("User", "admin"), inner)
            self.assertEqual((r["ErrorCode"], r["ResponseData"]), (UNSUPPORTED_VERSION, None))
        t = "env-" + uniq("t")
        r = self.envelope(member, principal_data("User", "admin"), inner_create_topics(t))
        self.assertEqual((r["ErrorCode"], inner_error(r["ResponseData"])), (0, 0))
        # Through a follower the request is not forwarded: the follower closes its client, as Kafka's broker
        # does with a request it cannot parse, and its link serves the next client.
        f = self.followers[0]
        bad = self.conn(f, "admin")
        with self.assertRaises((kwire.WireError, OSError)):
            bad.request(30, 3, {"Creations": [dict(acl(TOPIC, "x", LITERAL, "x", "ALTER"), Operation=0)]})
        self.assertEqual(create_topics(self.conn(f, "admin"), ["fwd-" + uniq("t")]), [0])
        self.assertNotRegex(ctl.log_text(), r"closing connection from \S+: CreateAcls creation with an UNKNOWN")

    def test_envelope_to_a_follower_answers_not_controller(self):
        # An Envelope reaching a node that is not the controller is never forwarded again (which would run it as
        # that node): its inner request answers NOT_CONTROLLER and the sender retries against the controller.
        f = self.followers[0]
        member = kwire.Conn(f.bootstrap)
        self.conns.append(member)
        t = "env-" + uniq("t")
        r = self.envelope(member, principal_data("User", "admin"), inner_create_topics(t))
        self.assertEqual((r["ErrorCode"], inner_error(r["ResponseData"])), (0, NOT_CONTROLLER))
        self.assertEqual(partitions(self.conn(self.cluster.node(self.controller), "admin"), t), -3)

    def test_envelope_from_a_non_voter_address_refused(self):
        ctl = self.cluster.node(self.controller)
        t = "env-" + uniq("t")
        # The nodes' own principal (CLUSTER_ACTION), but from 127.0.0.50, which is no voter's address.
        c = bound_conn(ctl.bootstrap, "127.0.0.50")
        self.conns.append(c)
        r = self.envelope(c, principal_data("User", "admin"), inner_create_topics(t))
        self.assertEqual((r["ErrorCode"], r["ResponseData"]), (CLUSTER_AUTHZ, None))
        admin = self.conn(ctl, "admin")
        self.assertEqual(partitions(admin, t), -3)
        self.assertIn("not the address of one of controller.quorum.voters", ctl.log_text())

    def test_mutation_throttle_mutes_the_client_not_the_followers_link(self):
        f = self.followers[0]
        admin = self.conn(f, "admin")
        slow_id = uniq("slow")
        r = admin.request(49, 1, {"Entries": [{"Entity": [{"EntityType": "client-id", "EntityName": slow_id}],
                                               "Ops": [{"Key": "controller_mutation_rate", "Value": 1.0,
                                                        "Remove": False}]}], "ValidateOnly": False})
        self.assertEqual(r["Entries"][0]["ErrorCode"], 0, r)
        ctl_admin = self.conn(self.cluster.node(self.controller), "admin")

        def quota_on_controller():
            r = ctl_admin.request(48, 1, {"Components": [{"EntityType": "client-id", "MatchType": 0,
                                                          "Match": slow_id}], "Strict": False})
            return True if r["Entries"] else r
        wait_for("the mutation quota on the controller", quota_on_controller, logs=self.cluster.logs)
        slow = Sasl(f.sasl, "admin", client_id=slow_id)
        self.conns.append(slow)
        r = slow.request(19, 7, {"Topics": [{"Name": "slow-" + uniq("t"), "NumPartitions": 40,
                                             "ReplicationFactor": 1, "Assignments": [], "Configs": []}],
                                 "TimeoutMs": 30000, "ValidateOnly": False})
        self.assertEqual(r["Topics"][0]["ErrorCode"], 0, r)
        self.assertGreater(r["ThrottleTimeMs"], 2000, r)
        # Another client's change through the same follower is not held back by the throttle ...
        t0 = time.monotonic()
        self.assertEqual(create_topics(admin, ["fast-" + uniq("t")]), [0])
        self.assertLess(time.monotonic() - t0, 2.0)
        # ... while the throttled client is muted by the follower.
        slow.s.settimeout(1.0)
        with self.assertRaises(socket.timeout):
            slow.request(18, 3, {"ClientSoftwareName": "t", "ClientSoftwareVersion": "1"})

    def test_envelope_not_advertised(self):
        c = kwire.Conn(self.followers[0].bootstrap)
        self.conns.append(c)
        keys = [k["ApiKey"] for k in c.request(18, 3, {"ClientSoftwareName": "t",
                                                         "ClientSoftwareVersion": "1"})["ApiKeys"]]
        self.assertNotIn(58, keys)


@kbroker_only("a cluster of kbroker processes; Kafka serves Envelope only between its own nodes")
class ClusterForwardBigAnswerTest(unittest.TestCase):
    """A forwarded answer above a MiB comes back to the client. A cluster of its own without an authorizer, whose
    session timeout outlasts the controller's seconds of validating a few hundred topics (its follower's link
    waits for that answer before its next heartbeat's)."""

    def test_an_answer_above_a_mib_comes_back_through_a_follower(self):
        cluster = Cluster(n=3, extra_sets=["broker.session.timeout.ms=30000", "broker.heartbeat.interval.ms=500",
                                           "offsets.topic.num.partitions=3"])
        cluster.start()
        self.addCleanup(cluster.stop)

        def controller():
            ids = set()
            for n in cluster.nodes:
                c = kwire.Conn(n.bootstrap)
                try:
                    md = c.request(3, 12, {"Topics": [], "AllowAutoTopicCreation": False,
                                           "IncludeTopicAuthorizedOperations": False})
                finally:
                    c.close()
                if len(md["Brokers"]) != 3:
                    return None
                ids.add(md["ControllerId"])
            return ids.pop() if len(ids) == 1 and -1 not in ids else None
        wait_for("three registered brokers and one controller", lambda: controller() is not None or None,
                 logs=cluster.logs)
        f = next(n for n in cluster.nodes if n.node_id != controller())
        c = kwire.Conn(f.bootstrap, timeout=60.0)
        self.addCleanup(c.close)
        # Validated only: each topic's answer lists its 36 configs, two of them about 1 KB long, and its 249-byte
        # name: about 1.2 MB in all.
        v = ",".join("%d:1" % i for i in range(250))[:1017]
        v = v[:v.rindex(",")]
        names = [("big%d-" % i).ljust(249, "y") for i in range(340)]
        r = c.request(19, 7, {"Topics": [{"Name": n, "NumPartitions": 1, "ReplicationFactor": 1, "Assignments": [],
                                          "Configs": [{"Name": "leader.replication.throttled.replicas", "Value": v},
                                                      {"Name": "follower.replication.throttled.replicas",
                                                       "Value": v}]} for n in names],
                              "TimeoutMs": 30000, "ValidateOnly": True})
        self.assertEqual({t["ErrorCode"] for t in r["Topics"]}, {0}, cluster.logs())
        self.assertEqual(sorted(t["Name"] for t in r["Topics"]), sorted(names))
        self.assertGreater(len(kwire.Message("CreateTopicsResponse").encode(7, r)), 1 << 20)


if __name__ == "__main__":
    unittest.main()

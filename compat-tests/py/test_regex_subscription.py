"""KIP-848 regular-expression subscriptions (ConsumerGroupHeartbeat v1 SubscribedTopicRegex) as raw requests,
the same on kbroker and Apache Kafka.

A member joining with a regex is assigned the partitions of the existing topics the pattern matches as a whole
(Java's matches(), RE2/J on Kafka), not of the others; a matching topic created later is assigned and a deleted
one taken away without the client changing anything; ConsumerGroupDescribe shows the member's regex. A pattern
the RE2/J dialect refuses (a syntax error, a backreference, a lookahead) is INVALID_REGULAR_EXPRESSION with
Kafka's message, and a first heartbeat with neither names nor a regex is INVALID_REQUEST. With the
StandardAuthorizer on, a member is only assigned the matched topics its principal may DESCRIBE, also among
topics created after it joined."""

import os
import shutil
import sys
import tempfile
import time
import unittest
import uuid

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
import kwire  # noqa: E402
from common import BrokerTestCase, uniq  # noqa: E402
from secure import SecureTarget, authenticate, handshake, make_pki, plain_token  # noqa: E402

INVALID_REQUEST, INVALID_REGULAR_EXPRESSION = 42, 128


def wait_until(fn, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last is True:
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def create_topics(conn, parts):
    r = conn.request(19, 4, {"Topics": [{"Name": n, "NumPartitions": p, "ReplicationFactor": 1, "Assignments": [],
                                         "Configs": []} for n, p in parts.items()],
                             "timeoutMs": 30000, "validateOnly": False})
    assert all(t["ErrorCode"] == 0 for t in r["Topics"]), r

    def ready():
        m = conn.request(3, 12, {"Topics": [{"Name": n, "TopicId": b"\0" * 16} for n in parts],
                                 "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
        return all(t["ErrorCode"] == 0 and t["Partitions"] and all(p["LeaderId"] >= 0 for p in t["Partitions"])
                   for t in m["Topics"]) or m["Topics"]
    wait_until(ready, "leaders of %s" % list(parts))


def topic_ids(conn, names):
    m = conn.request(3, 12, {"Topics": [{"Name": n, "TopicId": b"\0" * 16} for n in names],
                             "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
    return {t["Name"]: t["TopicId"] for t in m["Topics"] if t["ErrorCode"] == 0}


def partition_count(conn, name):
    m = conn.request(3, 12, {"Topics": [{"Name": name, "TopicId": b"\0" * 16}],
                             "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
    return len(m["Topics"][0]["Partitions"])


def join_body(group, member, regex, names=None):
    return {"GroupId": group, "MemberId": member, "MemberEpoch": 0, "InstanceId": None, "RackId": None,
            "RebalanceTimeoutMs": 30000, "SubscribedTopicNames": names, "SubscribedTopicRegex": regex,
            "ServerAssignor": None, "TopicPartitions": []}


class Member:
    """One KIP-848 member driven by hand: joins, then heartbeats reporting what it owns."""

    def __init__(self, conn, group, regex, names=None):
        self.conn, self.group = conn, group
        self.id = uuid.uuid4().hex[:22]
        self.epoch = 0
        self.owned = {}
        self.first = self.conn.request(68, 1, join_body(group, self.id, regex, names))
        self._take(self.first)

    def _take(self, r):
        if r["ErrorCode"] == 0:
            self.epoch = r["MemberEpoch"]
            if r["Assignment"] is not None:
                self.owned = {tp["TopicId"]: sorted(tp["Partitions"]) for tp in r["Assignment"]["TopicPartitions"]}
        return r

    def beat(self):
        body = {"GroupId": self.group, "MemberId": self.id, "MemberEpoch": self.epoch, "InstanceId": None,
                "RackId": None, "RebalanceTimeoutMs": -1, "SubscribedTopicNames": None, "SubscribedTopicRegex": None,
                "ServerAssignor": None,
                "TopicPartitions": [{"TopicId": t, "Partitions": p} for t, p in sorted(self.owned.items())]}
        return self._take(self.conn.request(68, 1, body))

    def owns(self, ids):
        """True once the member owns exactly every partition of the topics ids maps (topic id -> count)."""
        r = self.beat()
        if r["ErrorCode"] in (14, 15, 16):  # coordinator moving or loading: retried, as clients do
            return r
        assert r["ErrorCode"] == 0, r
        return self.owned == {t: list(range(n)) for t, n in ids.items()} or self.owned

    def leave(self):
        Member.leave_raw(self.conn, self.group, self.id)

    @staticmethod
    def leave_raw(conn, group, member):
        body = {"GroupId": group, "MemberId": member, "MemberEpoch": -1, "InstanceId": None, "RackId": None,
                "RebalanceTimeoutMs": -1, "SubscribedTopicNames": None, "SubscribedTopicRegex": None,
                "ServerAssignor": None, "TopicPartitions": None}
        conn.request(68, 1, body)


def coordinator_ready(conn, group):
    def ready():
        r = conn.request(10, 4, {"KeyType": 0, "CoordinatorKeys": [group]})
        return r["Coordinators"][0]["ErrorCode"] == 0 or r
    wait_until(ready, "the coordinator of %s" % group)


class RegexSubscriptionTest(BrokerTestCase):
    def conn(self):
        c = kwire.Conn(self.bootstrap, client_id="regex-test")
        self.addCleanup(c.close)
        return c

    def test_regex_assigns_matching_topics_and_follows_creation_and_deletion(self):
        c = self.conn()
        p = uniq("rx")
        create_topics(c, {p + "-a": 2, p + "-b": 1, "x" + p + "-a": 1, p + "-other": 1})
        ids = topic_ids(c, [p + "-a", p + "-b", "x" + p + "-a", p + "-other"])
        group = uniq("rxg")
        coordinator_ready(c, group)
        regex = p.replace("-", "[-]") + "-(a|b|c)"
        m = Member(c, group, regex)
        self.assertEqual(m.first["ErrorCode"], 0, m.first)
        self.addCleanup(m.leave)
        # Matched as a whole: "x<p>-a" contains a match but is not one; "<p>-other" does not match.
        wait_until(lambda: m.owns({ids[p + "-a"]: 2, ids[p + "-b"]: 1}), "the matching topics assigned")

        d = c.request(69, 0, {"GroupIds": [group], "IncludeAuthorizedOperations": False})["Groups"][0]
        self.assertEqual(d["ErrorCode"], 0, d)
        self.assertEqual(len(d["Members"]), 1, d)
        self.assertEqual(d["Members"][0]["SubscribedTopicRegex"], regex)
        self.assertEqual(d["Members"][0]["SubscribedTopicNames"], [])
        self.assertEqual(sorted(tp["TopicName"] for tp in d["Members"][0]["Assignment"]["TopicPartitions"]),
                         [p + "-a", p + "-b"])

        # A matching topic created later is assigned without the member asking.
        create_topics(c, {p + "-c": 3})
        ids.update(topic_ids(c, [p + "-c"]))
        wait_until(lambda: m.owns({ids[p + "-a"]: 2, ids[p + "-b"]: 1, ids[p + "-c"]: 3}), "the new topic assigned")

        # A deleted one is taken away.
        r = c.request(20, 6, {"Topics": [{"Name": p + "-b", "TopicId": b"\0" * 16}], "TimeoutMs": 30000})
        self.assertEqual(r["Responses"][0]["ErrorCode"], 0, r)
        wait_until(lambda: m.owns({ids[p + "-a"]: 2, ids[p + "-c"]: 3}), "the deleted topic revoked")

    def test_metadata_by_id_with_empty_name(self):
        """A regex member learns its assignment as topic ids; the Java consumer then asks Metadata v12 for them
        with Name "" and the id: answered by id (an unknown id: UNKNOWN_TOPIC_ID, no name)."""
        c = self.conn()
        p = uniq("rxmd")
        create_topics(c, {p: 2})
        tid = topic_ids(c, [p])[p]
        r = c.request(3, 12, {"Topics": [{"Name": "", "TopicId": tid}, {"Name": "", "TopicId": b"\x01" * 16}],
                              "AllowAutoTopicCreation": False, "IncludeTopicAuthorizedOperations": False})
        # Kafka answers in an order of its own.
        got = sorted(((t["Name"], t["TopicId"], t["ErrorCode"], len(t["Partitions"])) for t in r["Topics"]),
                     key=lambda x: x[1])
        self.assertEqual(got, sorted([(p, tid, 0, 2), (None, "01010101-0101-0101-0101-010101010101", 100, 0)],
                                     key=lambda x: x[1]))

    def test_internal_topics_are_matched_too(self):
        """Kafka 4.4 resolves a regex against every topic of its metadata image, __consumer_offsets included."""
        c = self.conn()
        p = uniq("rxi")
        create_topics(c, {p: 1})
        group = uniq("rxig")
        coordinator_ready(c, group)
        ids = topic_ids(c, [p, "__consumer_offsets"])
        n = partition_count(c, "__consumer_offsets")
        m = Member(c, group, "__consumer_offsets|" + p.replace("-", "[-]"))
        self.addCleanup(m.leave)
        self.assertEqual(m.first["ErrorCode"], 0, m.first)
        wait_until(lambda: m.owns({ids[p]: 1, ids["__consumer_offsets"]: n}), "both topics assigned")

    def test_invalid_regexes(self):
        c = self.conn()
        group = uniq("rxbad")
        coordinator_ready(c, group)
        # What Apache Kafka 4.4.0 (RE2/J) answers, description for description.
        cases = {
            "(": "missing closing )",
            "a)": "regexp/syntax: internal error",
            "[a": "missing closing ]",
            "*a": "missing argument to repetition operator",
            "a**": "invalid nested repetition operator",
            "a*+": "invalid nested repetition operator",
            "x{2}{3}": "invalid nested repetition operator",
            "(a)\\1": "invalid escape sequence",
            "\\k<n>": "invalid escape sequence",
            "\\Z": "invalid escape sequence",
            "a\\": "trailing backslash at end of expression",
            "a(?=b)": "invalid or unsupported Perl syntax",
            "(?>a)": "invalid or unsupported Perl syntax",
            "(?x)a": "invalid or unsupported Perl syntax",
            "a(?<!b)": "invalid named capture",
            "a{2,1}": "invalid repeat count",
            "a{1001}": "invalid repeat count",
            "[z-a]": "invalid character class range",
            "\\p{Foo}": "invalid character class range",
        }
        got = {}
        for regex in cases:
            r = c.request(68, 1, join_body(group, uuid.uuid4().hex[:22], regex))
            got[regex] = (r["ErrorCode"], r["ErrorMessage"], r["MemberId"], r["MemberEpoch"])
        self.maxDiff = None
        self.assertEqual(got, {regex: (INVALID_REGULAR_EXPRESSION, "SubscribedTopicRegex `%s` is not a valid regular "
                                       "expression: %s." % (regex, desc), None, 0) for regex, desc in cases.items()})
        # What RE2/J accepts and a stricter reading could refuse: named groups both ways, flags, quoting.
        for regex in ("(?P<n>a)", "(?<n>a)", "(?i)A", "\\Qa.b\\E", "a*?b+?c??", "[[:alpha:]]\\d{2,}"):
            r = c.request(68, 1, join_body(group, uuid.uuid4().hex[:22], regex))
            self.assertEqual(r["ErrorCode"], 0, (regex, r))
            Member.leave_raw(c, group, r["MemberId"])

    def test_first_heartbeat_needs_names_or_regex(self):
        c = self.conn()
        group = uniq("rxnone")
        coordinator_ready(c, group)
        r = c.request(68, 1, join_body(group, uuid.uuid4().hex[:22], None, None))
        self.assertEqual((r["ErrorCode"], r["ErrorMessage"]),
                         (INVALID_REQUEST, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null "
                                           "when (re-)joining."))

    def test_names_and_regex_together(self):
        c = self.conn()
        p = uniq("rxn")
        create_topics(c, {p + "-n": 1, p + "-r": 1})
        ids = topic_ids(c, [p + "-n", p + "-r"])
        group = uniq("rxng")
        coordinator_ready(c, group)
        m = Member(c, group, p.replace("-", "[-]") + "-r", names=[p + "-n"])
        self.addCleanup(m.leave)
        self.assertEqual(m.first["ErrorCode"], 0, m.first)
        wait_until(lambda: m.owns({ids[p + "-n"]: 1, ids[p + "-r"]: 1}), "names and regex topics assigned")


PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret"}
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret" ' + " ".join('user_%s="%s"' % kv for kv in PASSWORDS.items()) + ";")
ACL_EXTRA = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin;User:ANONYMOUS",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
    "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "1",
}
TOPIC, GROUP, LITERAL, PREFIXED, READ, DESCRIBE, ALLOW = 2, 3, 3, 4, 3, 8, 3


class Sasl(kwire.Conn):
    """A raw connection authenticated with SASL/PLAIN as user."""

    def __init__(self, addr, user):
        super().__init__(addr, client_id="regex-" + user)
        err, _ = handshake(self.s, "PLAIN", corr=1001)
        assert err == 0, err
        err, msg = authenticate(self.s, plain_token(user, PASSWORDS[user]), corr=1002)
        assert err == 0, msg


def acl(rtype, name, pattern, op):
    return {"ResourceType": rtype, "ResourceName": name, "ResourcePatternType": pattern, "Principal": "User:alice",
            "Host": "*", "Operation": op, "PermissionType": ALLOW}


class RegexAuthorizationTest(unittest.TestCase):
    """With the StandardAuthorizer: a regex member is assigned only the matched topics it may DESCRIBE, also
    among topics created after it joined."""

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-regex-acl-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.t = SecureTarget(cls.pki, extra=ACL_EXTRA)
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()
        cls.addr = cls.t.addr("SASL_PLAINTEXT")

    def test_only_describable_topics_are_assigned(self):
        admin = Sasl(self.addr, "admin")
        self.addCleanup(admin.close)
        create_topics(admin, {"rxacl-ok1": 2, "rxacl-hidden1": 1})
        r = admin.request(30, 3, {"Creations": [acl(GROUP, "rxacl-g", LITERAL, READ),
                                                acl(TOPIC, "rxacl-ok", PREFIXED, DESCRIBE)]})
        self.assertEqual([x["ErrorCode"] for x in r["Results"]], [0, 0], r)
        coordinator_ready(admin, "rxacl-g")
        alice = Sasl(self.addr, "alice")
        self.addCleanup(alice.close)

        def joined():
            m = Member(alice, "rxacl-g", "rxacl-.*")
            if m.first["ErrorCode"] != 0:  # the ACLs may not be in force on the listener yet
                return m.first
            self.m = m
            return True
        wait_until(joined, "alice joining rxacl-g")
        self.addCleanup(self.m.leave)
        ids = topic_ids(admin, ["rxacl-ok1"])
        wait_until(lambda: self.m.owns({ids["rxacl-ok1"]: 2}), "only the describable topic assigned")

        # Topics created later: the one alice may describe is assigned, the other is not.
        create_topics(admin, {"rxacl-ok2": 1, "rxacl-hidden2": 1})
        ids.update(topic_ids(admin, ["rxacl-ok2"]))
        wait_until(lambda: self.m.owns({ids["rxacl-ok1"]: 2, ids["rxacl-ok2"]: 1}), "the new describable topic")

if __name__ == "__main__":
    unittest.main()

"""Client quotas (KIP-546) and connection limits, against kbroker and Apache Kafka alike.

- DescribeClientQuotas / AlterClientQuotas v0-1 over raw frames: the answers (errors and messages included) are
  the ones Apache Kafka 4.4.0 gave to the same requests, written down here, so each target must give them.
- Kafka's own kafka-configs tool (org.apache.kafka.tools.ConfigCommand) sets, describes and deletes a quota.
- A confluent-kafka producer with producer_byte_rate=100 KB/s sending ~2 MB is throttled (the time it takes
  follows Kafka's windowed rate, librdkafka's stats report throttle time) while a producer on another client id
  is not slowed; the same for a consumer with consumer_byte_rate.
- Quotas survive a restart (kbroker only: a process of our own).
- max.connections.per.ip=N: the N+1th connection is closed, the others keep working, a log line; max.connections
  with a 2-shard kbroker (the counts are kept on the accepting shard).

Entities are named uniquely per run; default entities (<default> user / client id), which would apply to every
other test's clients on a shared broker, only get keys no other test is affected by and are removed at the end."""

import json
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import Broker, BrokerTestCase, is_kbroker, kbroker_only, target, uniq  # noqa: E402
from wire import carray, cstr, flex_request, kstr, read_cstr, read_frame, read_uvarint, request  # noqa: E402

from confluent_kafka import Consumer, Producer  # noqa: E402

U, C = "user", "client-id"
INVALID_REQUEST, UNSUPPORTED_VERSION = 42, 35


def _nstr(s):
    return struct.pack(">h", -1) if s is None else kstr(s)


def _read_nstr(b, off):
    n = struct.unpack(">h", b[off:off + 2])[0]
    off += 2
    if n < 0:
        return None, off
    return b[off:off + n].decode(), off + n


class _Codec:
    """Encodings of one version: v0 classic, v1 flexible."""

    def __init__(self, version):
        self.flex = version >= 1
        self.version = version

    def s(self, v):
        return cstr(v) if self.flex else _nstr(v)

    def arr(self, items):
        return carray(items) if self.flex else struct.pack(">i", len(items)) + b"".join(items)

    @property
    def tag(self):
        return b"\0" if self.flex else b""

    def rs(self, r, off):
        return read_cstr(r, off) if self.flex else _read_nstr(r, off)

    def rn(self, r, off):
        if self.flex:
            n, off = read_uvarint(r, off)
            return n - 1, off
        return struct.unpack(">i", r[off:off + 4])[0], off + 4

    def call(self, addr, key, body, corr):
        host, port = addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=15) as s:
            s.sendall((flex_request if self.flex else request)(key, self.version, corr, body))
            r = read_frame(s)
        assert struct.unpack(">i", r[:4])[0] == corr, "wrong correlation id"
        return r, 4 + (1 if self.flex else 0) + 4  # header, throttle_time_ms


def alter(addr, entries, validate_only=False, version=1):
    """entries: [({type: name or None}, [(key, value or None to remove)])] -> [(error, message, entity)]"""
    c = _Codec(version)
    ents = []
    for ent, ops in entries:
        e = c.arr([c.s(t) + c.s(n) + c.tag for t, n in ent.items()])
        o = c.arr([c.s(k) + struct.pack(">d", 0.0 if v is None else float(v)) + bytes([v is None]) + c.tag
                   for k, v in ops])
        ents.append(e + o + c.tag)
    r, off = c.call(addr, 49, c.arr(ents) + bytes([validate_only]) + c.tag, 3)
    n, off = c.rn(r, off)
    out = []
    for _ in range(n):
        err = struct.unpack(">h", r[off:off + 2])[0]
        msg, off = c.rs(r, off + 2)
        m, off = c.rn(r, off)
        ent = {}
        for _ in range(m):
            t, off = c.rs(r, off)
            nm, off = c.rs(r, off)
            off += 1 if c.flex else 0
            ent[t] = nm
        off += 1 if c.flex else 0
        out.append((err, msg, ent))
    return out


def describe(addr, components, strict=False, version=1):
    """components: [(type, match_type, match)] -> (error, message, {entity (sorted pairs): {key: value}} or None)"""
    c = _Codec(version)
    body = c.arr([c.s(t) + struct.pack(">b", mt) + c.s(m) + c.tag for t, mt, m in components])
    r, off = c.call(addr, 48, body + bytes([strict]) + c.tag, 4)
    err = struct.unpack(">h", r[off:off + 2])[0]
    msg, off = c.rs(r, off + 2)
    n, off = c.rn(r, off)
    if n < 0:
        return err, msg, None
    out = {}
    for _ in range(n):
        m, off = c.rn(r, off)
        ent = []
        for _ in range(m):
            t, off = c.rs(r, off)
            nm, off = c.rs(r, off)
            off += 1 if c.flex else 0
            ent.append((t, nm))
        k, off = c.rn(r, off)
        vals = {}
        for _ in range(k):
            key, off = c.rs(r, off)
            vals[key] = struct.unpack(">d", r[off:off + 8])[0]
            off += 8 + (1 if c.flex else 0)
        off += 1 if c.flex else 0
        out[tuple(sorted(ent, key=lambda x: x[0]))] = vals
    return err, msg, out


def create_topics(addr, topics, version, client_id):
    """Raw CreateTopics (v5 classic or v7 flexible) of {name: partitions} as client_id ->
    (throttle_time_ms, {name: (error, message)})."""
    c = _Codec(version)
    body = c.arr([c.s(n) + struct.pack(">ih", p, -1) + c.arr([]) + c.arr([]) + c.tag for n, p in topics.items()])
    body += struct.pack(">i?", 30000, False) + c.tag
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall((flex_request if c.flex else request)(19, version, 5, body, client_id=client_id))
        r = read_frame(s)
    off = 4 + (1 if c.flex else 0)
    throttle = struct.unpack(">i", r[off:off + 4])[0]
    off += 4
    n, off = c.rn(r, off)
    out = {}
    for _ in range(n):
        name, off = c.rs(r, off)
        if version >= 7:
            off += 16  # topic id
        err = struct.unpack(">h", r[off:off + 2])[0]
        msg, off = c.rs(r, off + 2)
        off += 6  # num_partitions, replication_factor
        k, off = c.rn(r, off)
        for _ in range(max(k, 0)):
            _, off = c.rs(r, off)
            _, off = c.rs(r, off)
            off += 3 + (1 if c.flex else 0)
        off += 1 if c.flex else 0
        out[name] = (err, msg)
    return throttle, out


def java_classpath():
    java_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "java")
    if subprocess.run([os.path.join(java_dir, "build.sh")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                      timeout=600).returncode != 0:
        raise unittest.SkipTest("the Java suite (compat-tests/java/build.sh) does not build here")
    with open(os.path.join(java_dir, "target", "classpath.txt")) as f:
        return f.read().strip()


def wait_for(cond, timeout=15.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


class QuotaApiTest(BrokerTestCase):
    def test_alter_and_describe_as_kafka(self):
        """Alterations and filters answered as Apache Kafka 4.4.0 answers them (errors, messages, results)."""
        a = self.bootstrap
        alice, app, bob = uniq("alice"), uniq("app"), uniq("bob")
        ok = lambda ent: [(0, None, ent)]  # noqa: E731
        bad = lambda ent, msg: [(INVALID_REQUEST, msg, ent)]  # noqa: E731
        cases = [
            ({U: alice}, [("producer_byte_rate", 1000)], ok),
            ({U: alice, C: app}, [("consumer_byte_rate", 2000), ("request_percentage", 50.5)], ok),
            ({C: app}, [("controller_mutation_rate", 2.5)], ok),
            ({U: bob}, [("foo", 1)], lambda e: bad(e, "Invalid configuration key foo")),
            ({U: bob}, [("producer_byte_rate", -1)],
             lambda e: bad(e, "Quota producer_byte_rate must be greater than 0")),
            ({U: bob}, [("producer_byte_rate", 0)],
             lambda e: bad(e, "Quota producer_byte_rate must be greater than 0")),
            ({U: bob}, [("producer_byte_rate", 1.5)],
             lambda e: bad(e, "producer_byte_rate cannot be a fractional value.")),
            ({U: bob}, [("request_percentage", 1.5)], ok),
            ({U: bob}, [("producer_byte_rate", 1e30)],
             lambda e: bad(e, "Proposed value for producer_byte_rate is too large for a LONG.")),
            ({"ip": "1.2.3.4", U: bob}, [("connection_creation_rate", 10)],
             lambda e: bad(e, "Invalid quota entity combination, IP entity shouldnot be combined with User or "
                              "ClientId")),
            ({"foo": "x"}, [("producer_byte_rate", 10)],
             lambda e: bad(e, "Unhandled client quota entity type: foo")),
            ({}, [("producer_byte_rate", 10)], lambda e: bad(e, "Invalid empty client quota entity")),
            ({U: bob}, [("producer_byte_rate", 10), ("producer_byte_rate", 20)],
             lambda e: bad(e, "Ignoring duplicate entity ClientQuotaEntity(entries={user=%s})" % bob)),
            ({U: bob}, [("consumer_byte_rate", 10)], ok),
            ({U: bob}, [("ip", 10)], lambda e: bad(e, "Invalid configuration key ip")),
            ({U: ""}, [("producer_byte_rate", 10)], lambda e: bad(e, "Empty user not supported")),
            ({U: bob}, [("connection_creation_rate", 10)],
             lambda e: bad(e, "Invalid configuration key connection_creation_rate")),
            ({U: uniq("nobody")}, [("producer_byte_rate", None)], ok),
        ]
        for ent, ops, want in cases:
            self.assertEqual(alter(a, [(ent, ops)]), want(ent), "alter %r %r" % (ent, ops))
        dave = uniq("dave")
        self.assertEqual(alter(a, [({U: dave}, [("producer_byte_rate", 5)])], validate_only=True),
                         [(0, None, {U: dave})])
        erin = uniq("erin")
        self.assertEqual(alter(a, [({U: erin}, [("producer_byte_rate", 5)])], version=0), [(0, None, {U: erin})])
        # Several entries in one request: each answered on its own (in no fixed order: Kafka's HashMap's).
        self.assertEqual(sorted(alter(a, [({U: bob, C: app}, [("foo", 1)]), ({U: erin}, [("consumer_byte_rate", 7)])]),
                                key=repr),
                         sorted([(INVALID_REQUEST, "Invalid configuration key foo", {U: bob, C: app}),
                                 (0, None, {U: erin})], key=repr))
        # One entity twice: one answer for it, an error, yet Kafka applied the first of them.
        self.assertEqual(alter(a, [({U: erin}, [("producer_byte_rate", 6)]), ({U: erin}, [("foo", 1)])]),
                         [(INVALID_REQUEST, "Ignoring duplicate entity ClientQuotaEntity(entries={user=%s})" % erin,
                           {U: erin})])
        # Default entities: keys that throttle nobody else on a shared broker, removed at the end.
        self.addCleanup(alter, a, [({U: None}, [("controller_mutation_rate", None)])])
        self.addCleanup(alter, a, [({C: None}, [("controller_mutation_rate", None)])])
        self.assertEqual(alter(a, [({U: None}, [("controller_mutation_rate", 1e6)])]), ok({U: None}))
        self.assertEqual(alter(a, [({C: None}, [("controller_mutation_rate", 2e6)])]), ok({C: None}))

        def mine(result):
            err, msg, ents = result
            return err, msg, {e: v for e, v in ents.items()
                              if any(n in (alice, app, bob, dave, erin) for _, n in e)} if ents is not None else None
        ua, uc = ((C, app), (U, alice)), ((U, alice),)
        got = {}
        for version in (0, 1):
            got[version] = describe(a, [(U, 0, alice)], version=version)
            self.assertEqual(got[version], (0, "", {
                ua: {"consumer_byte_rate": 2000.0, "request_percentage": 50.5},
                uc: {"producer_byte_rate": 1000.0}}), "exact user, v%d" % version)
        self.assertEqual(describe(a, [(U, 0, alice)], strict=True), (0, "", {uc: {"producer_byte_rate": 1000.0}}))
        self.assertEqual(describe(a, [(U, 0, alice), (C, 0, app)], strict=True),
                         (0, "", {ua: {"consumer_byte_rate": 2000.0, "request_percentage": 50.5}}))
        self.assertEqual(describe(a, [(U, 0, alice), (C, 2, None)]),
                         (0, "", {ua: {"consumer_byte_rate": 2000.0, "request_percentage": 50.5}}))
        self.assertEqual(describe(a, [(C, 0, app)]), (0, "", {
            ua: {"consumer_byte_rate": 2000.0, "request_percentage": 50.5},
            ((C, app),): {"controller_mutation_rate": 2.5}}))
        self.assertEqual(mine(describe(a, [(U, 2, None)], strict=True)), (0, "", {
            uc: {"producer_byte_rate": 1000.0},
            ((U, bob),): {"consumer_byte_rate": 10.0, "request_percentage": 1.5},
            ((U, erin),): {"producer_byte_rate": 6.0, "consumer_byte_rate": 7.0}}))
        err, msg, ents = describe(a, [(U, 1, None)], strict=True)
        self.assertEqual((err, msg, ents.get(((U, None),))), (0, "", {"controller_mutation_rate": 1e6}))
        err, msg, ents = describe(a, [(C, 1, None)])
        self.assertEqual((err, msg, ents.get(((C, None),))), (0, "", {"controller_mutation_rate": 2e6}))
        self.assertEqual(describe(a, [], strict=True), (0, "", {}))
        self.assertIn(uc, describe(a, [])[2])
        # Refused filters.
        for comps, want in [
            ([(U, 0, alice), (U, 0, bob)],
             (INVALID_REQUEST, "Entity type user cannot appear more than once in the filter.", None)),
            ([("foo", 2, None)], (UNSUPPORTED_VERSION, "Unsupported entity type foo", None)),
            ([(U, 0, None)], (INVALID_REQUEST, "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                              None)),
            ([(U, 1, "x")], (INVALID_REQUEST,
                             "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.", None)),
            ([(U, 3, None)], (INVALID_REQUEST, "Unknown match type 3", None)),
            ([(U, 2, "zzz")], (INVALID_REQUEST,
                               "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.", None)),
        ]:
            self.assertEqual(describe(a, comps), want, "filter %r" % comps)
        # Removing the last key removes the entity; validate_only changed nothing.
        self.assertEqual(alter(a, [({U: alice}, [("producer_byte_rate", None)])]), ok({U: alice}))
        self.assertEqual(describe(a, [(U, 0, alice)], strict=True), (0, "", {}))
        self.assertEqual(describe(a, [(U, 0, dave)]), (0, "", {}))

    def test_kafka_configs_tool(self):
        """Kafka's kafka-configs (ConfigCommand) adds, describes and deletes client and user quotas."""
        cp = java_classpath()
        client, user = uniq("cfgtool"), uniq("cfguser")
        java = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp,
                "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", self.bootstrap]

        def run(*args):
            p = subprocess.run(java + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            self.assertEqual(p.returncode, 0, "kafka-configs %s:\n%s" % (" ".join(args), p.stdout.decode()[-3000:]))
            return p.stdout.decode()
        run("--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048", "--entity-type", "clients",
            "--entity-name", client)
        run("--alter", "--add-config", "request_percentage=25", "--entity-type", "users", "--entity-name", user)
        self.assertEqual(describe(self.bootstrap, [(C, 0, client)], strict=True),
                         (0, "", {((C, client),): {"producer_byte_rate": 1024.0, "consumer_byte_rate": 2048.0}}))
        out = run("--describe", "--entity-type", "clients", "--entity-name", client)
        self.assertIn("producer_byte_rate=1024.0", out)
        self.assertIn("consumer_byte_rate=2048.0", out)
        self.assertEqual(describe(self.bootstrap, [(U, 0, user)], strict=True),
                         (0, "", {((U, user),): {"request_percentage": 25.0}}))
        # Describing a user also asks DescribeUserScramCredentials: both answers show.
        self.assertIn("request_percentage=25.0", run("--describe", "--entity-type", "users", "--entity-name", user))
        run("--alter", "--delete-config", "producer_byte_rate", "--entity-type", "clients", "--entity-name", client)
        self.assertEqual(describe(self.bootstrap, [(C, 0, client)], strict=True),
                         (0, "", {((C, client),): {"consumer_byte_rate": 2048.0}}))
        run("--alter", "--delete-config", "consumer_byte_rate", "--entity-type", "clients", "--entity-name", client)
        run("--alter", "--delete-config", "request_percentage", "--entity-type", "users", "--entity-name", user)
        self.assertEqual(describe(self.bootstrap, [(C, 0, client)]), (0, "", {}))


class MutationQuotaTest(BrokerTestCase):
    def test_controller_mutation_rate(self):
        """controller_mutation_rate=1 partition/s (a burst of 11 with Kafka's 11 windows of 1 s): CreateTopics v7
        creates topics while tokens remain and refuses the rest with THROTTLING_QUOTA_EXCEEDED (89) and a throttle
        time; v5 (before the error existed) creates them all and is only throttled."""
        strict, permissive = uniq("mut-strict"), uniq("mut-permissive")
        for cid in (strict, permissive):
            self.assertEqual(alter(self.bootstrap, [({C: cid}, [("controller_mutation_rate", 1)])]),
                             [(0, None, {C: cid})])
            self.addCleanup(alter, self.bootstrap, [({C: cid}, [("controller_mutation_rate", None)])])
        names = [uniq("mut") for _ in range(4)]
        throttle, res = create_topics(self.bootstrap, {n: 5 for n in names}, 7, strict)
        self.assertEqual([res[n] for n in names], [(0, None)] * 3 + [(89, None)])
        # 15 partitions taken from 11 tokens: 4 short at 1 per second.
        self.assertTrue(3000 <= throttle <= 4100, throttle)
        names = [uniq("mut-old") for _ in range(4)]
        throttle, res = create_topics(self.bootstrap, {n: 5 for n in names}, 5, permissive)
        self.assertEqual([res[n][0] for n in names], [0] * 4)
        self.assertTrue(8000 <= throttle <= 9100, throttle)


class RequestQuotaTest(BrokerTestCase):
    def test_request_percentage_on_produce(self):
        """request_percentage far below what any request costs: each produce answer carries a throttle time of at
        most one quota window (Kafka bounds request-quota throttles so), and the client waits it out; another
        client id is not throttled."""
        topic = uniq("quota-request")
        slow, fast = uniq("busy-producer"), uniq("free-producer")
        self.assertEqual(alter(self.bootstrap, [({C: slow}, [("request_percentage", 1e-9)])]), [(0, None, {C: slow})])
        self.addCleanup(alter, self.bootstrap, [({C: slow}, [("request_percentage", None)])])

        def run(client_id):
            throttles = []

            def stats(js):
                for b in json.loads(js).get("brokers", {}).values():
                    t = b.get("throttle", {})
                    if t.get("cnt", 0) and t.get("max", 0) > 0:
                        throttles.append(t["max"])
            p = Producer({"bootstrap.servers": self.bootstrap, "client.id": client_id, "linger.ms": 0,
                          "statistics.interval.ms": 100, "stats_cb": stats})
            p.produce(topic, b"warm-up")
            self.assertEqual(p.flush(30), 0)
            t0 = time.monotonic()
            for i in range(5):
                p.produce(topic, b"r%d" % i)
                self.assertEqual(p.flush(30), 0)
            elapsed = time.monotonic() - t0
            p.poll(0.3)
            return elapsed, throttles
        fast_s, fast_th = run(fast)
        slow_s, slow_th = run(slow)
        print("\nrequest_percentage: 5 requests in %.1f s throttled (throttle max %s ms), %.2f s unthrottled"
              % (slow_s, max(slow_th) if slow_th else None, fast_s), file=sys.stderr)
        self.assertTrue(slow_th, "no throttle time seen")
        self.assertLessEqual(max(slow_th), 1100)
        self.assertFalse(fast_th)
        self.assertGreater(slow_s, 3.0)
        self.assertLess(fast_s, 2.0)


QUOTA = 100 * 1024         # bytes per second
VOLUME = 2 * 1024 * 1024   # what each client moves
WINDOW_SPAN = 10           # quota.window.num - 1 windows of quota.window.size.seconds: Kafka's defaults 11 and 1


def produce(bootstrap, topic, client_id, volume, throttles, timeout=90):
    """Sends `volume` bytes in 8 KB records; returns the seconds until all are acknowledged."""
    def stats(js):
        for b in json.loads(js).get("brokers", {}).values():
            t = b.get("throttle", {})
            if t.get("cnt", 0) and t.get("max", 0) > 0:
                throttles.append(t["max"])
    # Small requests (librdkafka's batch.size is 1 MB by default): the client never waits for the throttle
    # of its last request, so large ones would hide up to one request's worth of throttle time.
    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5, "batch.size": 16384,
                  "statistics.interval.ms": 200, "stats_cb": stats, "acks": 1})
    payload = b"x" * 8192
    t0 = time.monotonic()
    errors = []
    for _ in range(volume // len(payload)):
        while True:
            try:
                p.produce(topic, payload, on_delivery=lambda err, msg: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(timeout)
    elapsed = time.monotonic() - t0
    p.poll(0.5)  # a last stats callback
    assert left == 0 and not errors, "producer %s: %d left, errors %s" % (client_id, left, errors[:3])
    return elapsed


class ThrottleTest(BrokerTestCase):
    def expected_seconds(self):
        # Kafka's Rate pads a young window to WINDOW_SPAN seconds: QUOTA * WINDOW_SPAN bytes pass at once,
        # the rest at the quota.
        return (VOLUME - QUOTA * WINDOW_SPAN) / QUOTA

    def test_producer_byte_rate(self):
        """producer_byte_rate=100 KB/s: ~2 MB take as long as Kafka's rate allows, the client sees throttle
        time; another client id is not slowed."""
        topic = uniq("quota-produce")
        slow, fast = uniq("slow-producer"), uniq("fast-producer")
        self.assertEqual(alter(self.bootstrap, [({C: slow}, [("producer_byte_rate", QUOTA)])]), [(0, None, {C: slow})])
        self.addCleanup(alter, self.bootstrap, [({C: slow}, [("producer_byte_rate", None)])])
        throttles_fast = []
        fast_s = produce(self.bootstrap, topic, fast, VOLUME, throttles_fast)
        throttles = []
        slow_s = produce(self.bootstrap, topic, slow, VOLUME, throttles)
        want = self.expected_seconds()
        print("\nproducer: %d bytes in %.1f s throttled (expected about %.1f s), %.2f s unthrottled; "
              "throttle max %s ms" % (VOLUME, slow_s, want, fast_s, max(throttles) if throttles else None),
              file=sys.stderr)
        self.assertTrue(throttles, "the client saw no throttle time")
        self.assertFalse(throttles_fast, "the unthrottled client saw throttle time")
        self.assertGreater(slow_s, 0.7 * want)
        self.assertLess(slow_s, 2.0 * want + 5)
        self.assertLess(fast_s, slow_s / 3)

    def test_consumer_byte_rate(self):
        """consumer_byte_rate=100 KB/s: reading ~2 MB is throttled the same way; another client id is not."""
        topic = uniq("quota-consume")
        produce(self.bootstrap, topic, uniq("filler"), VOLUME, [])
        slow, fast = uniq("slow-consumer"), uniq("fast-consumer")
        self.assertEqual(alter(self.bootstrap, [({C: slow}, [("consumer_byte_rate", QUOTA)])]), [(0, None, {C: slow})])
        self.addCleanup(alter, self.bootstrap, [({C: slow}, [("consumer_byte_rate", None)])])

        def consume(client_id, throttles):
            def stats(js):
                for b in json.loads(js).get("brokers", {}).values():
                    t = b.get("throttle", {})
                    if t.get("cnt", 0) and t.get("max", 0) > 0:
                        throttles.append(t["max"])
            c = Consumer({"bootstrap.servers": self.bootstrap, "client.id": client_id, "group.id": uniq("g"),
                          "auto.offset.reset": "earliest", "enable.auto.commit": False,
                          # Small fetches: the rate is followed closely rather than in 1 MB steps.
                          "max.partition.fetch.bytes": 65536, "fetch.max.bytes": 65536,
                          "message.max.bytes": 65536,
                          "statistics.interval.ms": 200, "stats_cb": stats})
            try:
                c.subscribe([topic])
                got, t0, deadline = 0, None, time.monotonic() + 90
                while got < VOLUME and time.monotonic() < deadline:
                    m = c.poll(0.5)
                    if m is None or m.error():
                        continue
                    if t0 is None:
                        t0 = time.monotonic()
                    got += len(m.value())
                self.assertGreaterEqual(got, VOLUME, "consumer %s read %d bytes" % (client_id, got))
                elapsed = time.monotonic() - t0
                c.poll(0.5)
                return elapsed
            finally:
                c.close()
        fast_throttles, slow_throttles = [], []
        fast_s = consume(fast, fast_throttles)
        slow_s = consume(slow, slow_throttles)
        want = self.expected_seconds()
        print("\nconsumer: %d bytes in %.1f s throttled (expected about %.1f s), %.2f s unthrottled; "
              "throttle max %s ms" % (VOLUME, slow_s, want, fast_s, max(slow_throttles) if slow_throttles else None),
              file=sys.stderr)
        self.assertTrue(slow_throttles, "the consumer saw no throttle time")
        self.assertFalse(fast_throttles, "the unthrottled consumer saw throttle time")
        self.assertGreater(slow_s, 0.7 * want)
        # A throttled fetch is answered empty and its bytes taken back (Kafka's getThrottledResponse): the
        # consumer stays further below its quota than a producer does (Apache Kafka: 23 s here).
        self.assertLess(slow_s, 3.0 * want + 5)
        self.assertLess(fast_s, slow_s / 3)


@kbroker_only("restarts the broker process")
class QuotaRestartTest(unittest.TestCase):
    def test_quotas_survive_restart(self):
        b = Broker()
        self.addCleanup(b.cleanup)
        self.addCleanup(lambda: b.running and b.stop())
        b.start()
        u = uniq("persist")
        alter(b.bootstrap, [({U: u, C: None}, [("producer_byte_rate", 4096), ("request_percentage", 12.5)]),
                            ({C: "gone"}, [("consumer_byte_rate", 1)])])
        alter(b.bootstrap, [({C: "gone"}, [("consumer_byte_rate", None)])])
        before = describe(b.bootstrap, [])
        self.assertEqual(before, (0, "", {((C, None), (U, u)): {"producer_byte_rate": 4096.0,
                                                                  "request_percentage": 12.5}}))
        b.restart()
        self.assertEqual(describe(b.bootstrap, []), before)


def limited_broker(testcase, settings, shards=2):
    """A broker of the test's own with these server settings: kbroker (2 shards: a client's connections then sit
    on different shards) or, on the kafka target, an Apache Kafka of its own."""
    if target() == "kafka":
        from kafka_ref import KafkaRef
        k = KafkaRef(settings=settings)
        testcase.addCleanup(k.cleanup)
        testcase.addCleanup(k.stop)
        k.start()
        return k
    if target() != "kbroker":
        raise unittest.SkipTest("needs a broker of the test's own with connection limits")
    b = Broker(shards=shards, extra_sets=["%s=%s" % kv for kv in settings.items()], target="kbroker")
    testcase.addCleanup(b.cleanup)
    testcase.addCleanup(lambda: b.running and b.stop())
    b.start()
    return b


def api_versions_ok(s, corr=9, timeout=5.0):
    """An ApiVersions answered on s within timeout (False on a close or silence)."""
    s.settimeout(timeout)
    try:
        s.sendall(request(18, 0, corr, b""))
        r = read_frame(s)
        return struct.unpack(">i", r[:4])[0] == corr and struct.unpack(">h", r[4:6])[0] == 0
    except (OSError, EOFError):
        return False


def peer_closed(s, timeout=5.0):
    s.settimeout(timeout)
    try:
        return s.recv(65536) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def connect(bootstrap):
    host, port = bootstrap.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


class ConnectionLimitTest(unittest.TestCase):
    def log_has(self, broker, needle, timeout=10.0):
        return wait_for(lambda: needle in broker.log_text(), timeout=timeout)

    def test_max_connections_per_ip(self):
        """max.connections.per.ip=3: the 4th connection from 127.0.0.1 is closed with a log line, the 3 others
        keep working, and a slot freed by a close is taken again. A flood of refusals logs few lines."""
        b = limited_broker(self, {"max.connections.per.ip": "3"})
        socks = [connect(b.bootstrap) for _ in range(3)]
        self.addCleanup(lambda: [s.close() for s in socks])
        for i, s in enumerate(socks):
            self.assertTrue(api_versions_ok(s, corr=i + 1), "connection %d not served" % i)
        extra = connect(b.bootstrap)
        self.addCleanup(extra.close)
        self.assertTrue(peer_closed(extra), "the 4th connection was not closed")
        self.assertTrue(self.log_has(b, "Rejected connection from /127.0.0.1, address already has the configured "
                                        "maximum of 3 connections"), "no log line for the refusal")
        for i, s in enumerate(socks):
            self.assertTrue(api_versions_ok(s, corr=10 + i), "connection %d stopped working" % i)
        # A flood of refused connections: each closed, and not a line each.
        for _ in range(50):
            f = connect(b.bootstrap)
            self.assertTrue(peer_closed(f))
            f.close()
        if is_kbroker():
            self.assertLessEqual(b.log_text().count("Rejected connection from /127.0.0.1"), 2)
        socks.pop().close()
        again = wait_for(lambda: (lambda s: s if api_versions_ok(s, corr=30, timeout=2) else s.close())(
            connect(b.bootstrap)), timeout=10, step=0.2)
        self.assertTrue(again, "a freed slot was not given to a new connection")
        socks.append(again)

    def test_listener_max_connections(self):
        """listener.name.plaintext.max.connections=3 (kbroker on 2 shards): a 4th connection waits unserved
        (accepting pauses, as Kafka's acceptor waits) until one of the 3 closes, then it is served."""
        b = limited_broker(self, {"listener.name.plaintext.max.connections": "3"})
        socks = [connect(b.bootstrap) for _ in range(3)]
        self.addCleanup(lambda: [s.close() for s in socks])
        for i, s in enumerate(socks):
            self.assertTrue(api_versions_ok(s, corr=i + 1), "connection %d not served" % i)
        waiting = connect(b.bootstrap)
        self.addCleanup(waiting.close)
        waiting.sendall(request(18, 0, 77, b""))
        waiting.settimeout(2.0)
        with self.assertRaises(socket.timeout, msg="the 4th connection was served over the limit"):
            waiting.recv(4)
        socks.pop(0).close()
        waiting.settimeout(10.0)
        r = read_frame(waiting)
        self.assertEqual(struct.unpack(">i", r[:4])[0], 77)
        for i, s in enumerate(socks):
            self.assertTrue(api_versions_ok(s, corr=40 + i))

    def test_ip_connection_creation_rate(self):
        """An ip entity's connection_creation_rate=2/s (a young window allows about 2 x 10 at once): past that a new
        connection from 127.0.0.1 is held unserved and closed, other connections keep working."""
        b = limited_broker(self, {})
        self.assertEqual(alter(b.bootstrap, [({"ip": "127.0.0.1"}, [("connection_creation_rate", 2)])]),
                         [(0, None, {"ip": "127.0.0.1"})])
        keep = []
        self.addCleanup(lambda: [s.close() for s in keep])
        refused_at = None
        for i in range(40):
            s = connect(b.bootstrap)
            keep.append(s)
            if not api_versions_ok(s, corr=i + 1, timeout=3):
                refused_at = i
                break
        self.assertIsNotNone(refused_at, "40 connections created at once, none refused")
        self.assertTrue(15 <= refused_at <= 22, refused_at)
        self.assertTrue(api_versions_ok(keep[0], corr=99), "an earlier connection stopped working")
        if is_kbroker():
            self.assertTrue(self.log_has(b, "Delaying closing of connection from /127.0.0.1"))

    @kbroker_only("broker-wide max.connections: Kafka exempts its inter-broker listener, the only one here")
    def test_broker_max_connections_two_shards(self):
        """max.connections=4 on 2 shards: the count is broker-wide (kept by the accepting shard), not per shard."""
        b = limited_broker(self, {"max.connections": "4"}, shards=2)
        socks = [connect(b.bootstrap) for _ in range(4)]
        self.addCleanup(lambda: [s.close() for s in socks])
        for i, s in enumerate(socks):
            self.assertTrue(api_versions_ok(s, corr=i + 1), "connection %d not served" % i)
        # Close two that sit on the same shard (connections are dealt round-robin), open two: both served, the
        # first on the shard that still holds two (a per-shard share of 4 / 2 would refuse it).
        socks.pop(3).close()
        socks.pop(1).close()
        for i in range(2):
            s = connect(b.bootstrap)
            socks.append(s)
            self.assertTrue(api_versions_ok(s, corr=20 + i, timeout=10), "a freed slot was not reused")
        waiting = connect(b.bootstrap)
        self.addCleanup(waiting.close)
        self.assertFalse(api_versions_ok(waiting, corr=50, timeout=2), "a 5th connection was served")

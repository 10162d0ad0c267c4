"""request_percentage on every API (Kafka's ClientRequestQuotaManager), against kbroker and Apache Kafka alike.

A raw client whose client id has a request_percentage far below what any request costs sends Metadata v4,
ListOffsets v2, FindCoordinator v1 and ListGroups v1 on one connection, one at a time: every answer carries a
throttle_time_ms above zero and at most one quota window (Kafka bounds request-quota throttles so), and since the
broker then mutes the connection (KIP-219) the requests take about a window each. The same requests on another
client id carry throttle time 0 and are not slowed.

Exempt as in Kafka, whose authenticator serves them outside its request handlers: on a SASL_PLAINTEXT listener the
same client id's ApiVersions before authentication, SaslHandshake and SaslAuthenticate are neither throttled nor
slowed; once authenticated, its ApiVersions and Metadata are."""

import os
import shutil
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import BrokerTestCase, uniq  # noqa: E402
from test_quota import C, alter, wait_for  # noqa: E402
from wire import kstr, read_frame, request  # noqa: E402
from secure import USERS, SecureTarget, make_pki, plain_token  # noqa: E402

import socket  # noqa: E402

# (name, api key, version, body): non-flexible versions whose response starts with throttle_time_ms.
REQUESTS = [
    ("Metadata v4", 3, 4, struct.pack(">i", 0) + b"\0"),                    # no topics, no auto-creation
    ("ListOffsets v2", 2, 2, struct.pack(">ibi", -1, 0, 0)),                # replica -1, read_uncommitted, no topics
    ("FindCoordinator v1", 10, 1, kstr("quota-group") + b"\0"),            # a group coordinator
    ("ListGroups v1", 16, 1, b""),
]
ROUNDS = 2


def run(addr, client_id):
    """Sends every request ROUNDS times, one at a time on one connection: [(name, throttle ms)], seconds."""
    host, port = addr.rsplit(":", 1)
    seen, corr = [], 0
    with socket.create_connection((host, int(port)), timeout=30) as s:
        t0 = time.monotonic()
        for _ in range(ROUNDS):
            for name, key, ver, body in REQUESTS:
                corr += 1
                s.sendall(request(key, ver, corr, body, client_id=client_id))
                r = read_frame(s)
                assert struct.unpack(">i", r[:4])[0] == corr, "wrong correlation id"
                seen.append((name, struct.unpack(">i", r[4:8])[0]))
        return seen, time.monotonic() - t0


class RequestQuotaEveryApiTest(BrokerTestCase):
    def test_request_percentage_on_every_api(self):
        busy, free = uniq("busy-admin"), uniq("free-admin")
        self.assertEqual(alter(self.bootstrap, [({C: busy}, [("request_percentage", 1e-9)])]), [(0, None, {C: busy})])
        self.addCleanup(alter, self.bootstrap, [({C: busy}, [("request_percentage", None)])])
        # A quota reaches Kafka's brokers through its metadata log: wait until the client is throttled.
        self.assertTrue(wait_for(lambda: run(self.bootstrap, busy)[0][0][1] > 0, timeout=20, step=0.5),
                        "the quota never applied")
        time.sleep(1.2)  # the probe's own mute
        free_seen, free_s = run(self.bootstrap, free)
        busy_seen, busy_s = run(self.bootstrap, busy)
        print("\nrequest_percentage: %d requests in %.1f s throttled (%s), %.2f s unthrottled"
              % (len(busy_seen), busy_s, ", ".join("%s %d ms" % x for x in busy_seen), free_s), file=sys.stderr)
        self.assertEqual([t for _, t in free_seen], [0] * len(free_seen), free_seen)
        for name, t in busy_seen:
            self.assertTrue(0 < t <= 1100, (name, t))
        n = len(busy_seen)
        # Each answer but the last mutes the connection for its throttle time before the next is read.
        self.assertGreater(busy_s, 0.5 * (n - 1))
        self.assertLess(free_s, 2.0)


def call(s, key, ver, corr, body, client_id):
    s.sendall(request(key, ver, corr, body, client_id=client_id))
    r = read_frame(s)
    assert struct.unpack(">i", r[:4])[0] == corr, "wrong correlation id"
    return r


def api_versions_throttle(s, corr, client_id):
    """ApiVersions v1: error, [key, min, max], throttle_time_ms."""
    r = call(s, 18, 1, corr, b"", client_id)
    err, n = struct.unpack(">hi", r[4:10])
    assert err == 0, err
    return struct.unpack(">i", r[10 + 6 * n:14 + 6 * n])[0]


class RequestQuotaExemptTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-pki-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.t = SecureTarget(cls.pki)
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()

    def test_sasl_exchange_exempt(self):
        plain = self.t.addr("PLAINTEXT")
        busy = uniq("busy-sasl")
        self.assertEqual(alter(plain, [({C: busy}, [("request_percentage", 1e-9)])]), [(0, None, {C: busy})])
        self.assertTrue(wait_for(lambda: run(plain, busy)[0][0][1] > 0, timeout=20, step=0.5),
                        "the quota never applied")
        time.sleep(1.2)
        host, port = self.t.addr("SASL_PLAINTEXT").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as s:
            t0 = time.monotonic()
            pre = api_versions_throttle(s, 1, busy)
            r = call(s, 17, 1, 2, kstr("PLAIN"), busy)
            self.assertEqual(struct.unpack(">h", r[4:6])[0], 0)
            token = plain_token("alice", USERS["alice"])
            r = call(s, 36, 1, 3, struct.pack(">i", len(token)) + token, busy)
            self.assertEqual(struct.unpack(">h", r[4:6])[0], 0)
            exchange_s = time.monotonic() - t0
            post = api_versions_throttle(s, 4, busy)
            meta = struct.unpack(">i", call(s, 3, 4, 5, REQUESTS[0][3], busy)[4:8])[0]
            total_s = time.monotonic() - t0
        print("\nrequest_percentage over SASL: ApiVersions before authentication %d ms, exchange %.2f s; after: "
              "ApiVersions %d ms, Metadata %d ms, %.1f s in all" % (pre, exchange_s, post, meta, total_s),
              file=sys.stderr)
        self.assertEqual(pre, 0)
        self.assertLess(exchange_s, 0.5)
        self.assertTrue(0 < post <= 1100, post)
        self.assertTrue(0 < meta <= 1100, meta)
        self.assertGreater(total_s, 0.5)


if __name__ == "__main__":
    unittest.main()

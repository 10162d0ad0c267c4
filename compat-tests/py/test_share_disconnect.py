"""KIP-932 share sessions end with their connection, as Apache Kafka drops a share session when the connection
that opened it closes: the records the member held acquired go back at once (Available, delivery count kept),
not when their acquisition locks expire (group.share.record.lock.duration.ms, 5 s here).

Raw requests: member 1 acquires records over its own socket, the socket closes, and member 2's ShareFetch gets
the same records with delivery count 2 within 1 s. When member 1 opened its session again over a second socket
before, closing the first socket gives nothing back: the records stay with member 1 until the second one closes.
"""

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
from common import BrokerTestCase, uniq  # noqa: E402
from test_share_groups import acquired, coordinator_ready, create_topic, heartbeat, produce, share_fetch  # noqa: E402

LOADING = (14, 15, 16)
BACK_WITHIN_S = 1.0  # well under the 5 s lock of both targets' test settings


class ShareDisconnectTest(BrokerTestCase):

    def conn(self):
        c = kwire.Conn(self.bootstrap, client_id="share-disconnect")
        self.addCleanup(c.close)
        return c

    def join(self, c, group, topic):
        member = uuid.uuid4().hex[:22]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = heartbeat(c, group, member, 0, [topic])
            if r["ErrorCode"] not in LOADING:
                self.assertEqual(r["ErrorCode"], 0, r)
                return member, r["MemberEpoch"]
            time.sleep(0.2)
        self.fail("member of %s never joined" % group)

    def holding_member(self):
        """A group with member 1 holding records acquired over its own socket, and member 2 joined with a
        share session over another; returns everything a test needs."""
        admin = self.conn()
        topic, group = uniq("shd"), uniq("shdg")
        tid = create_topic(admin, topic, 1)
        coordinator_ready(admin, group)
        c1 = kwire.Conn(self.bootstrap, client_id="share-disconnect-1")
        m1, e1 = self.join(c1, group, topic)
        c2 = self.conn()
        m2, e2 = self.join(c2, group, topic)
        r = share_fetch(c1, group, m1, 0, tid, wait_ms=100)
        self.assertEqual(r["ErrorCode"], 0, r)
        s1, got = 1, []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            e1 = heartbeat(c1, group, m1, e1)["MemberEpoch"]
            e2 = heartbeat(c2, group, m2, e2)["MemberEpoch"]
            produce(admin, topic, [b"v1", b"v2", b"v3"])
            r = share_fetch(c1, group, m1, s1, tid, wait_ms=500)
            self.assertEqual(r["ErrorCode"], 0, r)
            s1 += 1
            got = acquired(r)
        self.assertTrue(got, "member 1 never acquired records")
        # Member 2's session, opened now: what it acquires from here on is what member 1 gives back.
        r = share_fetch(c2, group, m2, 0, tid, wait_ms=0)
        self.assertEqual(r["ErrorCode"], 0, r)
        self.assertEqual(acquired(r), [], r)
        return dict(admin=admin, tid=tid, group=group, c1=c1, m1=m1, e1=e1, s1=s1, got=got, c2=c2, m2=m2, e2=e2)

    def redelivered(self, h, limit_s, s2=1):
        """Member 2 fetches until it acquires member 1's records (each with delivery count 2) or limit_s
        passes: (seconds taken or None, next session epoch)."""
        want = {(f, l) for f, l, _ in h["got"]}
        t0 = time.monotonic()
        seen = []
        while time.monotonic() - t0 < limit_s:
            r = share_fetch(h["c2"], h["group"], h["m2"], s2, h["tid"], wait_ms=100)
            self.assertEqual(r["ErrorCode"], 0, r)
            s2 += 1
            seen += acquired(r)
            if {(f, l) for f, l, _ in seen} >= want:
                self.assertTrue(all(d == 2 for _, _, d in seen), seen)
                return time.monotonic() - t0, s2
        return None, s2

    def test_closed_connection_releases(self):
        h = self.holding_member()
        h["c1"].close()
        took, _ = self.redelivered(h, 3.0)
        self.assertIsNotNone(took, "member 1's records not back within 3 s of its connection closing")
        self.assertLess(took, BACK_WITHIN_S, "records came back after %.2f s: at lock expiry, not on close" % took)

    def test_session_reopened_elsewhere_keeps_records(self):
        h = self.holding_member()
        c1b = self.conn()
        r = share_fetch(c1b, h["group"], h["m1"], 0, h["tid"], wait_ms=0)
        self.assertEqual(r["ErrorCode"], 0, r)
        h["c1"].close()
        took, s2 = self.redelivered(h, 1.5)
        self.assertIsNone(took, "records released by the close of a connection the session had left")
        c1b.close()
        took, _ = self.redelivered(h, 3.0, s2)
        self.assertIsNotNone(took, "member 1's records not back within 3 s of its new connection closing")
        self.assertLess(took, BACK_WITHIN_S, "records came back after %.2f s: at lock expiry, not on close" % took)


if __name__ == "__main__":
    unittest.main()

"""Client byte-rate quotas held for one client's connections together, as one Apache Kafka broker holds them.

A client id with producer_byte_rate (then consumer_byte_rate) Q opens CONNS raw connections and produces
(fetches) through all of them as fast as the throttle lets it for DURATION seconds, honouring each answer's
ThrottleTimeMs as clients do (KIP-219). One Kafka broker keeps one rate per client: over the run the client
moves about Q x (WINDOW_SPAN + DURATION) bytes (Kafka's Rate pads a young window to WINDOW_SPAN seconds, so
Q x WINDOW_SPAN passes at once, the rest at Q). kbroker runs with 2 shards here (at least), and deals accepted
connections out round-robin from shard 0, so connections opened one after another sit on different shards:
the bound must hold for their sum, not per shard (per shard, 2 shards would let about twice as much through).

Owns its broker on kbroker (2 shards or more); on the kafka target the suite's Apache Kafka. Entities are
unique per run and removed at the end."""

import os
import sys
import threading
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))
sys.path.insert(0, os.path.join(_HERE, "..", "diff"))
import kwire  # noqa: E402
from common import Broker, shards_from_env, uniq  # noqa: E402

QUOTA = 50 * 1024   # bytes per second
WINDOW_SPAN = 10    # (quota.window.num - 1) x quota.window.size.seconds: Kafka's defaults 11 and 1
DURATION = 10.0     # seconds of traffic
CONNS = 4           # connections of the one client: 2 per shard on a 2-shard kbroker
VALUE = 16 * 1024   # bytes per produced record (one record per request)


def kafka_bound():
    """What one Kafka broker lets the client move in DURATION seconds from a fresh rate."""
    return QUOTA * (WINDOW_SPAN + DURATION)


class QuotaShardsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # On kbroker a broker of its own with 2 shards even in the suite's 1-shard pass: the point is the
        # spread. On the kafka target the suite's Apache Kafka.
        cls.broker = Broker(shards=max(2, shards_from_env()))
        cls.addClassCleanup(cls.broker.cleanup)
        cls.addClassCleanup(lambda: cls.broker.running and cls.broker.stop())
        cls.broker.start()
        cls.admin = kwire.Conn(cls.broker.bootstrap, client_id="quota-shards-admin")
        cls.addClassCleanup(cls.admin.close)

    # ---- helpers ------------------------------------------------------------------------------------------

    def set_quota(self, client_id, key, value):
        r = self.admin.request(49, 1, {"Entries": [{
            "Entity": [{"EntityType": "client-id", "EntityName": client_id}],
            "Ops": [{"Key": key, "Value": float(value or 0), "Remove": value is None}]}], "ValidateOnly": False})
        self.assertEqual(r["Entries"][0]["ErrorCode"], 0, r)

    def quota(self, client_id, key, value):
        self.set_quota(client_id, key, value)
        self.addCleanup(self.set_quota, client_id, key, None)
        # Applied once DescribeClientQuotas shows it (the same metadata publishes both).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r = self.admin.request(48, 1, {"Components": [{"EntityType": "client-id", "MatchType": 0,
                                                           "Match": client_id}], "Strict": False})
            if r["Entries"]:
                break
            time.sleep(0.1)
        time.sleep(0.5)

    def create_topic(self):
        topic = uniq("quota-shards")
        # retention.ms=-1: the records carry a 2023 timestamp, and Kafka's retention check (every 5 minutes)
        # once deleted the segment under the consumers (OFFSET_OUT_OF_RANGE).
        r = self.admin.request(19, 5, {"Topics": [{"Name": topic, "NumPartitions": 1, "ReplicationFactor": 1,
                                                   "Configs": [{"Name": "retention.ms", "Value": "-1"}]}],
                                       "TimeoutMs": 30000})
        self.assertEqual(r["Topics"][0]["ErrorCode"], 0, r)
        return topic

    @staticmethod
    def produce_body(topic, batch):
        return {"TransactionalId": None, "Acks": 1, "TimeoutMs": 30000,
                "TopicData": [{"Name": topic, "PartitionData": [{"Index": 0, "Records": batch}]}]}

    def fill(self, topic, nbytes):
        """nbytes of records, written by an unlimited client id (retries while the partition comes up)."""
        c = kwire.Conn(self.broker.bootstrap, client_id=uniq("filler"))
        try:
            batch = kwire.record_batch([(None, b"f" * 60000)])
            done, deadline = 0, time.monotonic() + 60
            while done < nbytes and time.monotonic() < deadline:
                r = c.request(0, 9, self.produce_body(topic, batch))
                if r["Responses"][0]["PartitionResponses"][0]["ErrorCode"] == 0:
                    done += 60000
                else:
                    time.sleep(0.1)
            self.assertGreaterEqual(done, nbytes, "could not fill %s" % topic)
        finally:
            c.close()

    def connections(self, client_id):
        """CONNS connections opened one after another (kbroker: round-robin over the shards), each proven
        served by an ApiVersions before any traffic."""
        conns = []
        for _ in range(CONNS):
            c = kwire.Conn(self.broker.bootstrap, timeout=60, client_id=client_id)
            self.addCleanup(c.close)
            self.assertEqual(c.request(18, 0, {})["ErrorCode"], 0)
            conns.append(c)
        return conns

    def run_all(self, conns, step):
        """step(conn, i) -> (bytes counted, throttle ms) in a loop on every connection at once until
        DURATION ends; answers arriving after the end are not counted. Returns (bytes, max throttle ms)."""
        totals, throttles, errors = [0] * len(conns), [0] * len(conns), []
        end = time.monotonic() + DURATION

        def loop(i, c):
            try:
                while time.monotonic() < end:
                    n, th = step(c, i)
                    if time.monotonic() >= end:
                        break
                    totals[i] += n
                    throttles[i] = max(throttles[i], th)
                    if th > 0:  # the client waits as KIP-219 asks (the broker also mutes the connection)
                        time.sleep(max(0.0, min(th / 1000.0, end - time.monotonic())))
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                errors.append(repr(e))
        threads = [threading.Thread(target=loop, args=(i, c), daemon=True) for i, c in enumerate(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DURATION + 90)
        self.assertFalse(any(t.is_alive() for t in threads), "a connection's loop did not end")
        self.assertFalse(errors, errors[:3])
        return sum(totals), max(throttles)

    def check(self, what, moved, throttle_ms, upper, lower):
        bound = kafka_bound()
        print("\n%s: %d connections moved %d bytes in %.0f s (one broker's bound Q x (span + run) = %d, "
              "%.2f of it); throttle max %d ms" % (what, CONNS, moved, DURATION, bound, moved / bound,
                                                   throttle_ms), file=sys.stderr)
        self.assertGreater(throttle_ms, 0, "no throttle time seen")
        self.assertLess(moved, upper)
        self.assertGreater(moved, lower * bound)

    # ---- the tests ----------------------------------------------------------------------------------------

    def test_producer_byte_rate_over_connections(self):
        """producer_byte_rate=Q on one client id with CONNS connections (kbroker: on both shards): the sum
        stays within one broker's bound of Q."""
        topic = self.create_topic()
        self.fill(topic, 60000)  # the partition is up
        client = uniq("spread-producer")
        self.quota(client, "producer_byte_rate", QUOTA)
        batch = kwire.record_batch([(None, b"p" * VALUE)])
        conns = self.connections(client)

        def step(c, i):
            r = c.request(0, 9, self.produce_body(topic, batch))
            err = r["Responses"][0]["PartitionResponses"][0]["ErrorCode"]
            self.assertEqual(err, 0, r)
            return len(batch), r["ThrottleTimeMs"]
        moved, th = self.run_all(conns, step)
        # Kafka's arithmetic: at most the bound, plus the request of each connection that crosses it.
        self.check("produce", moved, th, kafka_bound() + CONNS * len(batch), 0.5)

    def test_consumer_byte_rate_over_connections(self):
        """consumer_byte_rate=Q on one client id with CONNS connections, each reading the partition from the
        start in 64 KB fetches: the sum stays within one broker's bound of Q."""
        topic = self.create_topic()
        # More than the connections could read unthrottled at 2 x the bound, so none runs out.
        self.fill(topic, int(2.5 * kafka_bound()))
        client = uniq("spread-consumer")
        self.quota(client, "consumer_byte_rate", QUOTA)
        conns = self.connections(client)
        offsets = [0] * len(conns)

        def step(c, i):
            r = c.request(1, 12, {
                "ReplicaId": -1, "MaxWaitMs": 100, "MinBytes": 1, "MaxBytes": 65536, "IsolationLevel": 0,
                "SessionId": 0, "SessionEpoch": -1,
                "Topics": [{"Topic": topic, "Partitions": [{
                    "Partition": 0, "CurrentLeaderEpoch": -1, "FetchOffset": offsets[i], "LastFetchedEpoch": -1,
                    "LogStartOffset": -1, "PartitionMaxBytes": 65536}]}],
                "ForgottenTopicsData": [], "RackId": ""})
            self.assertEqual(r["ErrorCode"], 0, r)
            p = r["Responses"][0]["Partitions"][0] if r["Responses"] else None
            if p is None:
                return 0, r["ThrottleTimeMs"]  # a throttled fetch may be answered without its data
            self.assertEqual(p["ErrorCode"], 0, p)
            records = p["Records"] or b""
            whole = [b for b in kwire.read_batches(records) if "partial" not in b]
            if whole:
                offsets[i] = whole[-1]["base_offset"] + whole[-1]["last_offset_delta"] + 1
            return sum(b["length"] + 12 for b in whole), r["ThrottleTimeMs"]
        moved, th = self.run_all(conns, step)
        # A throttled fetch is answered empty and its bytes taken back (Kafka's getThrottledResponse): a
        # consumer stays well below the bound on one Kafka broker (0.47 of it here, 0.59 in test_quota.py),
        # hence a lower ceiling; a client held per shard on 2 shards gets about twice that.
        self.check("fetch", moved, th, 0.75 * kafka_bound(), 0.3)


if __name__ == "__main__":
    unittest.main()

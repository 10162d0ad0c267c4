"""One consumer-group member as a subprocess, for the group compat tests.

    worker.py <lib> <bootstrap> <group> <topic> <outfile> [key=value ...]

lib: confluent | kafka-python.  Options (key=value): instance=<group.instance.id>,
strategy=<range|roundrobin|cooperative-sticky>, rate=<max msgs/s>, session=<ms>.

Prints one JSON line per event on stdout (flushed): {"ev": "owned", "parts": [...]} after every
assignment change, {"ev": "ready"} once subscribed.  Every consumed record is appended to
<outfile> as "partition offset" lines (flushed each batch).  SIGTERM closes the consumer cleanly
(commit + LeaveGroup); SIGKILL is what the kill tests use.
"""

import json
import os
import signal
import sys
import time

lib, bootstrap, group, topic, outfile = sys.argv[1:6]
opts = dict(a.split("=", 1) for a in sys.argv[6:])
rate = float(opts.get("rate", "0"))
session = int(opts.get("session", "6000"))
stop = False


def on_term(sig, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
owned = set()


def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


out = open(outfile, "a")


def record(pairs):
    if pairs:
        out.write("".join("%d %d\n" % x for x in pairs))
        out.flush()


def pace(n, t0, done):
    if rate > 0:
        ahead = done / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(min(ahead, 0.5))


def run_confluent():
    from confluent_kafka import Consumer
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "session.timeout.ms": session, "heartbeat.interval.ms": 500, "enable.auto.commit": True,
            "auto.commit.interval.ms": 500, "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 2000}
    if "instance" in opts:
        conf["group.instance.id"] = opts["instance"]
    if "strategy" in opts:
        conf["partition.assignment.strategy"] = opts["strategy"]
    c = Consumer(conf)

    def on_assign(consumer, parts):
        owned.update(p.partition for p in parts)
        emit(ev="owned", parts=sorted(owned), kind="assign", delta=sorted(p.partition for p in parts))

    def on_revoke(consumer, parts):
        owned.difference_update(p.partition for p in parts)
        emit(ev="owned", parts=sorted(owned), kind="revoke", delta=sorted(p.partition for p in parts))

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    emit(ev="ready")
    t0, done = time.monotonic(), 0
    while not stop:
        # poll(), not consume(n): librdkafka 2.0's batch consume can store offsets of
        # messages a rebalance purged before they reached the application.
        pairs = []
        m = c.poll(0.2)
        while m is not None and len(pairs) < 200:
            if not m.error():
                pairs.append((m.partition(), m.offset()))
            m = c.poll(0)
        if m is not None and not m.error():
            pairs.append((m.partition(), m.offset()))
        record(pairs)
        done += len(pairs)
        pace(len(pairs), t0, done)
    c.close()


def run_kafka_python():
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    assignors = {"range": [RangePartitionAssignor], "roundrobin": [RoundRobinPartitionAssignor]}
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      session_timeout_ms=session, heartbeat_interval_ms=500, enable_auto_commit=True,
                      auto_commit_interval_ms=500, fetch_max_wait_ms=100, metadata_max_age_ms=2000,
                      partition_assignment_strategy=assignors.get(opts.get("strategy", "range")),
                      api_version=(2, 5, 0))

    class L(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            owned.difference_update(p.partition for p in revoked)
            emit(ev="owned", parts=sorted(owned), kind="revoke", delta=sorted(p.partition for p in revoked))

        def on_partitions_assigned(self, assigned):
            owned.update(p.partition for p in assigned)
            emit(ev="owned", parts=sorted(owned), kind="assign", delta=sorted(p.partition for p in assigned))

    c.subscribe([topic], listener=L())
    emit(ev="ready")
    t0, done = time.monotonic(), 0
    while not stop:
        batch = c.poll(timeout_ms=200, max_records=200)
        pairs = [(m.partition, m.offset) for recs in batch.values() for m in recs]
        record(pairs)
        done += len(pairs)
        pace(len(pairs), t0, done)
    c.close()


(run_confluent if lib == "confluent" else run_kafka_python)()
emit(ev="closed")

"""Kafka Streams exactly_once_v2 through kill -9 (issue 16): the word count of java/.../StreamsKillApp.java runs
as a JVM of its own while an idempotent producer (confluent-kafka 2.x) feeds lines; the app is killed with
SIGKILL in the middle of processing and restarted on the same state dir (twice), and on kbroker the broker is
killed with SIGKILL and restarted on the same data dir and port in between. A read_committed consumer reads every
count update: each word's updates must be exactly 1, 2, ..., its count (none lost, none twice, in order) and the
last ones the exact counts of everything fed.

On Apache Kafka (--target kafka) the run's shared Kafka is not ours to kill: the app kills only. With
KB_HIST_KAFKA_OWN=1 the test starts a Kafka of its own (lib/kafka_ref.py, restartable on its data dir) and kills
it as well, as test_txn_history.py does.

Knobs (env): KB_STREAMS_KILL_SECONDS (feeding time, default 24), KB_STREAMS_KILL_RATE (lines per second, 20),
KB_STREAMS_KILL_APP_KILLS (2), KB_STREAMS_KILL_BROKER_KILLS (1 on kbroker), KB_STREAMS_KILL_TIMEOUT (hard limit of
the whole run, 110 s), KB_STREAMS_KILL_BREAK=at_least_once (self-check: the app runs at_least_once, the kills must
then show duplicate updates).

Owns: the driver (broker, input, app process, kills, checks). Must not: leave the app or a broker running.
"""

import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common3 import GROUP_SETS, is_kbroker, uniq  # noqa: E402
from test_txn_history import FixedPortBroker, KillableKafka, env_int  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

JAVA = os.path.join(HERE, "..", "java")
WORDS = ("kafka", "broker", "stream", "count", "word", "log", "txn", "epoch")


def line(i):
    return "%s %s %s" % (WORDS[i % 8], WORDS[(i * 5 + 1) % 8], WORDS[(i // 8) % 8])


class App:
    """The Streams app as a process: started, killed with SIGKILL, its output kept for the report."""

    def __init__(self, argv, log_path):
        self.argv = argv
        self.log_path = log_path
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        finally:
            log.close()

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_running(self, deadline):
        since = self.text().count("STREAMS-KILL-APP state RUNNING")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("the Streams app exited with %s:\n%s"
                                     % (self.proc.returncode, self.text()[-3000:]))
            if self.text().count("STREAMS-KILL-APP state RUNNING") > since:
                return
            time.sleep(0.1)
        raise AssertionError("the Streams app is not RUNNING before the deadline:\n%s" % self.text()[-3000:])

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()


class StreamsKillTest(unittest.TestCase):
    def test_word_count_eos_v2_kill9(self):
        hard = time.monotonic() + env_int("KB_STREAMS_KILL_TIMEOUT", 110)
        seconds = env_int("KB_STREAMS_KILL_SECONDS", 24)
        rate = env_int("KB_STREAMS_KILL_RATE", 20)
        app_kills = env_int("KB_STREAMS_KILL_APP_KILLS", 2)
        broker_kills = env_int("KB_STREAMS_KILL_BROKER_KILLS", 1)
        guarantee = "at_least_once" if os.environ.get("KB_STREAMS_KILL_BREAK") == "at_least_once" \
            else "exactly_once_v2"
        if is_kbroker():
            b = FixedPortBroker(extra_sets=GROUP_SETS + ("unstable.api.versions.enable=true",))  # no longer needed for transactions
            where = "kbroker shards=%d" % b.shards
        elif os.environ.get("KB_TARGET") == "kafka" and os.environ.get("KB_HIST_KAFKA_OWN", "0") == "1":
            b = KillableKafka()
            where = "Apache Kafka %s (own, killed)" % b.ref.version
        else:
            b = FixedPortBroker(extra_sets=GROUP_SETS)
            where = "target %s (attached, not killed: the run's shared Kafka)" % os.environ.get(
                "KB_TARGET_BOOTSTRAP", "?")
            broker_kills = 0
        subprocess.run([os.path.join(JAVA, "build.sh")], check=True, timeout=600)
        with open(os.path.join(JAVA, "target", "classpath.txt")) as f:
            cp = os.path.join(JAVA, "target", "classes") + os.pathsep + f.read().strip()
        tmp = tempfile.mkdtemp(prefix="kb-streams-kill-")
        app = None
        try:
            b.start()
            run = uniq("sk")
            src, out, app_id = run + "-in", run + "-out", run + "-app"
            conf = {"bootstrap.servers": b.bootstrap, "reconnect.backoff.max.ms": 500}
            admin = AdminClient(conf)
            for f in admin.create_topics([NewTopic(src, 2, 1), NewTopic(out, 2, 1)]).values():
                f.result(30)
            java = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp]
            app = App(java + ["kbcompat.StreamsKillApp", b.bootstrap, src, out, app_id,
                              os.path.join(tmp, "state"), guarantee], os.path.join(tmp, "app.log"))

            # The reader: every count update the app committed, in order per word.
            updates = {}
            reader = Consumer(dict(conf, **{"group.id": uniq("sk-reader"), "isolation.level": "read_committed",
                                            "enable.auto.commit": False, "fetch.wait.max.ms": 100}))
            reader.assign([TopicPartition(out, 0, 0), TopicPartition(out, 1, 0)])

            def read(t):
                for m in reader.consume(500, t):
                    if m.error():
                        continue
                    updates.setdefault(m.key().decode(), []).append(struct.unpack(">q", m.value())[0])

            # The feeder: lines at a steady rate, through broker restarts (idempotent: no line twice).
            fed = [0]
            feed_errors = []
            stop = threading.Event()

            def feed():
                p = Producer(dict(conf, **{"enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 60000}))
                t0 = time.monotonic()
                n = 0
                while not stop.is_set() and time.monotonic() - t0 < seconds:
                    while n < (time.monotonic() - t0) * rate:
                        p.produce(src, key=b"line-%d" % n, value=line(n).encode(), partition=n % 2,
                                  on_delivery=lambda err, msg: err and feed_errors.append(err.name()))
                        n += 1
                    p.poll(0.05)
                fed[0] = n
                if p.flush(60) != 0:
                    feed_errors.append("not flushed")

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            t0 = time.monotonic()
            app.start()
            app.wait_running(min(hard, time.monotonic() + 60))
            # Kills spread over the feeding time, each once the app has committed 30 more updates since the last one
            # (so each lands in the middle of processing); the broker kills between the app kills.
            events = ["app"] * app_kills + ["broker"] * broker_kills
            rng = random.Random(seconds * 7 + rate)
            order = ["app"] + rng.sample(events[1:], len(events) - 1) if events else []
            kills = {"app": 0, "broker": 0}
            kill_points = []  # (what, count updates read when killed): each in the middle of the processing
            for i, what in enumerate(order):
                at = t0 + seconds * (i + 1) / (len(order) + 1)
                seen = sum(len(v) for v in updates.values())
                while time.monotonic() < at or sum(len(v) for v in updates.values()) < seen + 30:
                    if time.monotonic() > hard - 45:
                        raise AssertionError("no progress of the app before kill %d (%s)" % (i, what))
                    read(0.2)
                if what == "app":
                    app.kill9()
                    app.start()
                else:
                    b.kill9()
                    time.sleep(rng.uniform(0, 1.0))
                    b.start()
                kills[what] += 1
                kill_points.append((what, sum(len(v) for v in updates.values())))
            feeder.join(max(1, hard - 40 - time.monotonic()))
            self.assertFalse(feeder.is_alive(), "the feeder did not finish")
            expected = {}
            for i in range(fed[0]):
                for w in line(i).split():
                    expected[w] = expected.get(w, 0) + 1
            # Bounded wait for the exact counts, then a short read more: nothing beyond them.
            while time.monotonic() < hard - 10:
                latest = {w: v[-1] for w, v in updates.items()}
                if latest == expected:
                    break
                if app.proc.poll() is not None:
                    raise AssertionError("the Streams app exited by itself:\n%s" % app.text()[-3000:])
                read(0.3)
            read(1.5)
            reader.close()
            replaced = app.text().count("STREAMS-KILL-APP thread replaced")
            print("STREAMS-KILL %s guarantee=%s lines=%d words=%d updates=%d app_kills=%d broker_kills=%d "
                  "app_starts=%d threads_replaced=%d feed_errors=%d elapsed=%.0fs kills_at_updates=%s"
                  % (where, guarantee, fed[0], sum(expected.values()), sum(len(v) for v in updates.values()),
                     kills["app"], kills["broker"], app.starts, replaced, len(feed_errors),
                     time.monotonic() - t0, kill_points), flush=True)
            self.assertEqual(feed_errors, [])
            self.assertEqual(kills, {"app": app_kills, "broker": broker_kills})
            bad = {w: (len(v), [x for x in v if v.count(x) > 1][:5], expected.get(w))
                   for w, v in updates.items() if v != list(range(1, expected.get(w, 0) + 1))}
            self.assertEqual(bad, {}, "words whose committed updates are not exactly 1..count "
                                      "(updates, repeated values, count)")
            self.assertEqual(sorted(updates), sorted(expected))
        finally:
            try:
                if app is not None:
                    app.kill9()
            finally:
                try:
                    if b.running:
                        b.stop()
                finally:
                    b.cleanup()
                    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()

"""Jepsen-style history of transactions (issue 16): P transactional producers (confluent-kafka 2.x) write
transactions across partitions of 3 topics and commit or abort them at random, C read_committed consumers read
everything from the beginning, and the broker is killed with SIGKILL K times and restarted on the same data dir
and port. At the end every partition is read again (read_committed and read_uncommitted) and
lib/txn_history.py checks: no aborted read, no torn transaction, no lost commit, no duplicate, offsets
increasing, run-time reads a prefix of the final committed log. One HISTORY line gives the counts.

On Apache Kafka (--target kafka) the run's shared Kafka is not ours to kill: by default the history runs against it
without kills. KB_HIST_KAFKA_OWN=1 starts a Kafka of the test's own (lib/kafka_ref.py, fixed port) and kills and
restarts it like kbroker; Kafka 4.4.0 then leaves a committed transaction without markers in about one run of
three (docs/transactions.md, "History checker"), so that is not the default of make test. CheckerTest feeds the checker doctored histories, one per kind of
violation, to show each is reported.

Knobs (env): KB_HIST_SECONDS (run time, default 45), KB_HIST_PRODUCERS (4), KB_HIST_CONSUMERS (2),
KB_HIST_KILLS (3), KB_HIST_SEED (random), KB_HIST_TIMEOUT (hard limit of the whole run, default 200 s),
KB_HIST_KEEP_LOG=DIR (copy the broker's log there at the end), KB_HIST_BREAK=read_uncommitted (self-check: the "committed" reads are made read_uncommitted, the test must fail).

Owns: the history workload and its broker. Must not: depend on another test's topics, leave a broker running.
"""

import collections
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common3 import GROUP_SETS, is_kbroker, uniq  # noqa: E402

from broker import Broker  # noqa: E402
from ports import free_port  # noqa: E402
import txn_history as th  # noqa: E402

from confluent_kafka import (Consumer, IsolationLevel, KafkaError, KafkaException, Producer,  # noqa: E402
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # noqa: E402


def env_int(name, default):
    return int(os.environ.get(name, default))


class FixedPortBroker(Broker):
    """A kbroker whose restarts listen on the same port: clients keep their bootstrap address across a kill."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.fixed_port = free_port() if self.target == "kbroker" else None

    def argv(self):
        a = super().argv()
        return [x if not x.startswith("listeners=") else "listeners=PLAINTEXT://127.0.0.1:%d" % self.fixed_port
                for x in a]


class KillableKafka:
    """An Apache Kafka of the test's own (lib/kafka_ref.py) on a fixed port, so that it can be killed with SIGKILL
    and restarted on its data dir like kbroker: the same history with kills runs against the reference."""

    shards = 1
    starts = 0

    def __init__(self):
        from kafka_ref import KafkaRef

        port = free_port()

        class Fixed(KafkaRef):
            def _properties(self):
                return super()._properties().replace("PLAINTEXT://%s:0" % self.host,
                                                     "PLAINTEXT://%s:%d" % (self.host, port))

        self.ref = Fixed()

    @property
    def bootstrap(self):
        return self.ref.bootstrap

    @property
    def running(self):
        return self.ref.running

    def start(self):
        from kafka_ref import restart_same_dir

        self.starts += 1
        if self.ref.controller_port is None:
            self.ref.start()
        else:
            restart_same_dir(self.ref)

    def kill9(self):
        p = self.ref.proc
        if p is not None:
            p.kill()
            p.wait()
        # stop() on a dead process only forgets it (and drops it from kafka_ref's atexit list).
        self.ref.stop()

    def stop(self):
        self.ref.stop()

    def cleanup(self):
        self.ref.cleanup()


class CheckerTest(unittest.TestCase):
    """Doctored histories: each violation kind is found (the checker can fail)."""

    T = [("a", 0), ("b", 1), ("c", 0)]

    def clean(self):
        txns = {
            (0, 0): th.Txn({0: self.T[0], 1: self.T[1]}, th.COMMITTED),
            (0, 1): th.Txn({0: self.T[0], 1: self.T[2]}, th.ABORTED),
            (1, 0): th.Txn({0: self.T[1], 1: self.T[2]}, th.UNKNOWN),
            (1, 1): th.Txn({0: self.T[2]}, th.COMMITTED),
        }
        v = {k: {rec: th.tag(k[0], k[1], rec, len(t.records), len(set(t.records.values())))
                 for rec in t.records} for k, t in txns.items()}
        # read_uncommitted: everything, the aborted transaction included; read_committed: not the aborted one.
        ru = [("a", 0, 0, v[(0, 0)][0]), ("a", 0, 1, v[(0, 1)][0]),
              ("b", 1, 0, v[(0, 0)][1]), ("b", 1, 1, v[(1, 0)][0]),
              ("c", 0, 0, v[(0, 1)][1]), ("c", 0, 1, v[(1, 0)][1]), ("c", 0, 3, v[(1, 1)][0])]
        rc = [row for row in ru if th.parse(row[3])[:2] != (0, 1)]
        observed = {"c0": [("a", 0, 0, v[(0, 0)][0]), ("b", 1, 0, v[(0, 0)][1]), ("c", 0, 1, v[(1, 0)][1])]}
        return txns, observed, rc, ru, v

    def test_clean_history_passes(self):
        txns, observed, rc, ru, _ = self.clean()
        r = th.check(txns, observed, rc, ru)
        self.assertEqual(r.total(), 0, r.examples())
        self.assertEqual(th.counts(txns), (2, 1, 1))

    def only(self, r, kind):
        self.assertGreater(r.count(kind), 0, r.summary())

    def test_aborted_read(self):
        txns, observed, rc, ru, v = self.clean()
        rc = sorted(rc + [("a", 0, 1, v[(0, 1)][0])])
        self.only(th.check(txns, observed, rc, ru), "aborted_read")
        txns, observed, rc, ru, v = self.clean()
        observed["c0"].insert(1, ("a", 0, 1, v[(0, 1)][0]))
        self.only(th.check(txns, observed, rc, ru), "aborted_read")

    def test_torn_transaction(self):
        txns, observed, rc, ru, v = self.clean()
        rc = [row for row in rc if row[3] != v[(1, 0)][0]]  # the unknown one half visible
        self.only(th.check(txns, {}, rc, ru), "torn")

    def test_lost_commit(self):
        txns, observed, rc, ru, v = self.clean()
        rc = [row for row in rc if row[3] != v[(1, 1)][0]]
        ru = [row for row in ru if row[3] != v[(1, 1)][0]]
        r = th.check(txns, {}, rc, ru)
        self.only(r, "lost_commit")

    def test_duplicate(self):
        txns, observed, rc, ru, v = self.clean()
        rc = rc + [("c", 0, 4, v[(1, 1)][0])]
        ru = ru + [("c", 0, 4, v[(1, 1)][0])]
        self.only(th.check(txns, {}, rc, ru), "duplicate")
        txns, observed, rc, ru, v = self.clean()
        observed["c0"].append(("c", 0, 3, v[(0, 0)][0]))
        self.only(th.check(txns, observed, rc, ru), "duplicate")

    def test_offsets_not_increasing(self):
        txns, observed, rc, ru, v = self.clean()
        observed["c0"] = [("c", 0, 1, v[(1, 0)][1]), ("c", 0, 0, v[(0, 0)][0])]
        self.only(th.check(txns, observed, rc, ru), "offsets")

    def test_not_a_prefix(self):
        txns, observed, rc, ru, v = self.clean()
        observed["c0"] = [("c", 0, 3, v[(1, 1)][0])]  # skipped offset 1, committed
        self.only(th.check(txns, observed, rc, ru), "prefix")

    def test_read_committed_not_in_uncommitted(self):
        txns, observed, rc, ru, v = self.clean()
        ru = [row for row in ru if row[3] != v[(0, 0)][1]]
        self.only(th.check(txns, observed, rc, ru), "uncommitted_missing")

    def test_phantom(self):
        txns, observed, rc, ru, v = self.clean()
        rc = rc + [("c", 0, 9, b"p7|t0|r0|n1|k1")]
        self.only(th.check(txns, observed, rc, ru), "phantom")


class History:
    """One run: producers, consumers and a killer on threads; everything they were told, recorded."""

    def __init__(self, broker, seed, seconds, nprod, ncons, nkills):
        self.b = broker
        self.final_start = 0  # 1 when the run ended with the broker down and the reads restarted it
        self.rng = random.Random(seed)
        self.seed = seed
        self.seconds = seconds
        self.nprod, self.ncons, self.nkills = nprod, ncons, nkills
        self.run = uniq("hist")
        self.topics = [("%s-%s" % (self.run, n), parts) for n, parts in (("a", 3), ("b", 2), ("c", 3))]
        self.tps = [(t, p) for t, n in self.topics for p in range(n)]
        self.txns = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.observed = {}
        self.kills = 0
        self.recreated = 0
        # KB_HIST_BREAK=read_uncommitted makes the "committed" reads uncommitted: a self-check of the whole
        # pipeline, which must then report aborted reads.
        self.isolation = "read_uncommitted" if os.environ.get("KB_HIST_BREAK") == "read_uncommitted" \
            else "read_committed"
        self.errors = []  # unexpected exceptions of the threads
        self.told = collections.Counter()  # (step, error name) -> how often a producer was told it

    def conf(self, **kw):
        c = {"bootstrap.servers": self.b.bootstrap, "reconnect.backoff.max.ms": 500,
             "socket.connection.setup.timeout.ms": 5000, "topic.metadata.refresh.interval.ms": 2000}
        c.update(kw)
        return c

    def create_topics(self):
        admin = AdminClient(self.conf())
        fs = admin.create_topics([NewTopic(t, n, 1) for t, n in self.topics])
        for f in fs.values():
            f.result(30)

    # --- producers ---------------------------------------------------------------------------
    def new_producer(self, tid):
        """A producer of tid with its transactions initialised (fencing any older one), retried through an
        outage; None when the run ends first."""
        while not self.stop.is_set() or self._final:
            p = Producer(self.conf(**{"transactional.id": tid, "linger.ms": 5, "transaction.timeout.ms": 10000,
                                      "message.timeout.ms": 9000, "enable.idempotence": True}))
            try:
                p.init_transactions(15)
                return p
            except KafkaException:
                p.flush(0)
                time.sleep(0.3)
            if self._final and time.monotonic() > self._final:
                return None
        return None

    _final = 0

    def producer_loop(self, pn, rng):
        tid = "%s-tx-%d" % (self.run, pn)
        p = self.new_producer(tid)
        seq = 0
        dirty = False
        while p is not None and not self.stop.is_set():
            parts = rng.sample(self.tps, rng.randint(2, 5))
            recs = {}
            for tp in parts:
                for _ in range(rng.randint(1, 3)):
                    recs[len(recs)] = tp
            txn = th.Txn(recs, th.ABORTED)
            key = (pn, seq)
            seq += 1
            commit = rng.random() < 0.7
            nparts = len(parts)
            asked_commit = False
            step = "begin"
            try:
                p.begin_transaction()
                with self.lock:
                    self.txns[key] = txn
                step = "produce"
                for rec, (t, part) in recs.items():
                    p.produce(t, value=th.tag(pn, key[1], rec, len(recs), nparts), key=b"p%d" % pn, partition=part)
                if commit:
                    asked_commit = True
                    step = "commit"
                    txn.outcome = th.UNKNOWN
                    p.commit_transaction(15)
                    txn.outcome = th.COMMITTED
                else:
                    # abort_transaction drops what is still queued: flush most aborted transactions first so
                    # that their records are in the log and read_committed has something to filter out.
                    if rng.random() < 0.8:
                        step = "flush"
                        if p.flush(15) != 0:
                            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "flush before abort"))
                    step = "abort"
                    p.abort_transaction(15)
                dirty = False
            except (KafkaException, BufferError) as e:
                err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
                self.told[(step, err.name() if err is not None else type(e).__name__)] += 1
                # A commit requested and not acknowledged may have happened: unknown; one never requested cannot.
                txn.outcome = th.UNKNOWN if asked_commit else th.ABORTED
                dirty = True
                if err is not None and err.txn_requires_abort() and not err.fatal():
                    try:
                        p.abort_transaction(15)
                        dirty = False
                        continue
                    except KafkaException:
                        pass
                # Fatal, or an abort that failed: a new producer, as an application would; its init fences the
                # old epoch and aborts what it left open.
                self.recreated += 1
                p = self.new_producer(tid)
        if dirty or p is None:
            # Leave nothing open at the end: a new incarnation's init aborts the last transaction if needed.
            self._final = self._final or time.monotonic() + 60
            p = self.new_producer(tid)
            if p is None:
                self.errors.append("producer %d could not init after the run" % pn)
        if p is not None:
            p.flush(5)

    # --- consumers ---------------------------------------------------------------------------
    def consumer_loop(self, name):
        rows = self.observed.setdefault(name, [])
        c = Consumer(self.conf(**{"group.id": uniq("hist-c"), "enable.auto.commit": False,
                                  "isolation.level": self.isolation, "auto.offset.reset": "earliest",
                                  "fetch.wait.max.ms": 100}))
        try:
            c.assign([TopicPartition(t, p, 0) for t, p in self.tps])
            while not self.stop.is_set():
                m = c.poll(0.2)
                if m is None or m.error():
                    continue
                rows.append((m.topic(), m.partition(), m.offset(), m.value()))
        finally:
            c.close()

    # --- the killer --------------------------------------------------------------------------
    def killer_loop(self, t0):
        moments = sorted(self.rng.uniform(0.15, 0.8) * self.seconds for _ in range(self.nkills))
        for at in moments:
            while time.monotonic() - t0 < at:
                if self.stop.wait(0.1):
                    return
            self.b.kill9()
            self.kills += 1
            time.sleep(self.rng.uniform(0, 1.0))
            self.b.start()

    # --- the final read ----------------------------------------------------------------------
    def offsets(self, admin, isolation):
        fs = admin.list_offsets({TopicPartition(t, p): OffsetSpec.latest() for t, p in self.tps},
                                isolation_level=isolation, request_timeout=10)
        return {(tp.topic, tp.partition): f.result(15).offset for tp, f in fs.items()}

    def wait_stable(self, deadline):
        """Markers are written after EndTxn is answered (and resent after a restart): until they are, the last
        stable offset hides a committed transaction. Wait until it reaches the high watermark everywhere; one
        that never does is a hanging transaction, itself a violation."""
        admin = AdminClient(self.conf())
        while True:
            try:
                high = self.offsets(admin, IsolationLevel.READ_UNCOMMITTED)
                stable = self.offsets(admin, IsolationLevel.READ_COMMITTED)
                behind = {tp: (stable[tp], high[tp]) for tp in high if stable[tp] != high[tp]}
            except KafkaException as e:
                behind = {"error": str(e)}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError("last stable offset still behind the high watermark (hanging transaction?): "
                                     "%s" % behind)
            time.sleep(0.5)

    def read_all(self, isolation, deadline):
        c = Consumer(self.conf(**{"group.id": uniq("hist-final"), "enable.auto.commit": False,
                                  "isolation.level": isolation, "enable.partition.eof": True,
                                  "fetch.wait.max.ms": 100}))
        try:
            high = {}
            for t, p in self.tps:
                high[(t, p)] = c.get_watermark_offsets(TopicPartition(t, p), timeout=15)[1]
            c.assign([TopicPartition(t, p, 0) for t, p in self.tps])
            rows, eof = [], set()
            while time.monotonic() < deadline:
                m = c.poll(0.3)
                if m is None:
                    if len(eof) == len(self.tps):
                        pos = c.position([TopicPartition(t, p) for t, p in self.tps])
                        # read_committed's position can stop before the last marker; EOF there means the LSO.
                        if isolation == "read_committed" or all(tp.offset >= high[(tp.topic, tp.partition)]
                                                                for tp in pos):
                            return rows
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add((m.topic(), m.partition()))
                    continue
                eof.discard((m.topic(), m.partition()))
                rows.append((m.topic(), m.partition(), m.offset(), m.value()))
            raise AssertionError("final %s read did not reach the end before the deadline (eof on %d of %d)"
                                 % (isolation, len(eof), len(self.tps)))
        finally:
            c.close()

    def execute(self, hard_deadline):
        self.create_topics()
        t0 = time.monotonic()
        threads = []

        def guard(fn, *a):
            def run():
                try:
                    fn(*a)
                except Exception as e:  # recorded, the test fails on it
                    self.errors.append("%s: %r" % (fn.__name__, e))
            th_ = threading.Thread(target=run, daemon=True)
            th_.start()
            threads.append(th_)

        for i in range(self.ncons):
            guard(self.consumer_loop, "consumer-%d" % i)
        for i in range(self.nprod):
            guard(self.producer_loop, i, random.Random(self.seed * 1000 + i))
        if self.nkills:
            guard(self.killer_loop, t0)
        while time.monotonic() - t0 < self.seconds and time.monotonic() < hard_deadline:
            time.sleep(0.2)
        self.stop.set()
        # Keep time for the final reads: a history with a hanging transaction is still read and checked.
        reads_from = hard_deadline - min(60, (hard_deadline - time.monotonic()) / 3)
        for t in threads:
            t.join(max(1.0, reads_from - time.monotonic()))
        if any(t.is_alive() for t in threads):
            self.errors.append("threads still running (daemons, left behind) %.0f s before the hard deadline"
                               % (hard_deadline - time.monotonic()))
        if not self.b.running:  # the killer stopped between a kill and its restart
            self.b.start()
            self.final_start = 1
        try:
            self.wait_stable(reads_from + (hard_deadline - reads_from) / 3)
        except AssertionError as e:
            self.errors.append(str(e))
        rc = self.read_all(self.isolation, hard_deadline)
        ru = self.read_all("read_uncommitted", hard_deadline)
        return rc, ru


class TxnHistoryTest(unittest.TestCase):
    def test_history(self):
        seconds = env_int("KB_HIST_SECONDS", 45)
        seed = env_int("KB_HIST_SEED", random.randrange(1 << 30))
        kills = env_int("KB_HIST_KILLS", 3)
        hard = time.monotonic() + env_int("KB_HIST_TIMEOUT", 200)
        if is_kbroker():
            b = FixedPortBroker(extra_sets=GROUP_SETS + ("unstable.api.versions.enable=true",))  # no longer needed for transactions
            where = "kbroker shards=%d" % b.shards
        elif os.environ.get("KB_TARGET") == "kafka" and os.environ.get("KB_HIST_KAFKA_OWN", "0") == "1":
            # The run's shared Kafka is not ours to kill: a second one of our own is.
            b = KillableKafka()
            where = "Apache Kafka %s (own, killed)" % b.ref.version
        else:
            b = FixedPortBroker(extra_sets=GROUP_SETS)
            where = "target %s (attached, not killed)" % os.environ.get("KB_TARGET_BOOTSTRAP", "?")
            kills = 0
        try:
            b.start()
            h = History(b, seed, seconds, env_int("KB_HIST_PRODUCERS", 4), env_int("KB_HIST_CONSUMERS", 2), kills)
            rc, ru = h.execute(hard)
            rep = th.check(h.txns, h.observed, rc, ru)
            c, a, u = th.counts(h.txns)
            line = ("HISTORY %s seed=%d seconds=%d producers=%d consumers=%d txns committed=%d aborted=%d "
                    "unknown=%d records=%d read_committed=%d read_uncommitted=%d consumed=%d kills=%d recreated=%d "
                    "violations %s"
                    % (where, seed, seconds, h.nprod, h.ncons, c, a, u, sum(len(t.records) for t in h.txns.values()),
                       len(rc), len(ru), sum(len(v) for v in h.observed.values()), h.kills, h.recreated, rep.summary()))
            print(line, flush=True)
            print("HISTORY errors told to producers (step, error): %s" % sorted(h.told.items()), flush=True)
            self.assertEqual(h.errors + (["violations " + rep.examples()] if rep.total() else []), [])
            self.assertGreater(c, 0, "no transaction committed")
            self.assertEqual(h.kills, kills)
            self.assertEqual(b.starts, 1 + kills + h.final_start, "every kill restarts the broker process")
        finally:
            try:
                if b.running:
                    b.stop()
            finally:
                keep = os.environ.get("KB_HIST_KEEP_LOG")
                if keep and getattr(b, "log_path", None) or keep and getattr(b, "ref", None):
                    import shutil
                    src = b.ref.log_path if hasattr(b, "ref") else b.log_path
                    shutil.copy(src, os.path.join(keep, "broker-%d.log" % seed))
                b.cleanup()


if __name__ == "__main__":
    unittest.main()

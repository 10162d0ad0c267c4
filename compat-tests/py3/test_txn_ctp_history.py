"""Jepsen-style history of consume-transform-produce (issue 16): W workers, each a read_committed group consumer
of an input topic and a transactional producer (confluent-kafka 2.x), turn every input record into one output
record and commit their input offsets in the same transaction (send_offsets_to_transaction with the consumer's
group metadata, KIP-447); some transactions are aborted on purpose and the worker rewinds to the group's committed
offsets, as an application does. An idempotent producer feeds the input meanwhile, C read_committed consumers
read the output, a monitor records the group's committed offsets (require_stable), and the broker is killed with
SIGKILL K times and restarted on the same data dir and port. lib/txn_history.py check_ctp then checks the output
as the transactional history does (no aborted read, no torn transaction, no lost commit, no duplicate, offsets,
prefix) and the input: every input record in exactly one committed output record made from its value, committed
offsets never going back and ending at the end of the input. One HISTORY-CTP line gives the counts.

On Apache Kafka (--target kafka) the run's shared Kafka is not ours to kill: the history runs against it without
kills by default; KB_HIST_KAFKA_OWN=1 kills and restarts a Kafka of the test's own, as test_txn_history.py does
(Kafka 4.4.0 can then leave a committed transaction without markers, docs/transactions.md "History checker").

Knobs (env), shared with test_txn_history.py where the name is: KB_HIST_SECONDS (feeding and processing time,
default 30 here), KB_HIST_WORKERS (3), KB_HIST_CONSUMERS (1), KB_HIST_KILLS (3), KB_HIST_RATE (input records per
second, 150), KB_HIST_SEED (random), KB_HIST_TIMEOUT (hard limit of the whole run, 150 s), KB_HIST_KEEP_LOG=DIR,
KB_HIST_BREAK=no_rewind (self-check: after an abort the worker does not rewind, the run must report lost input),
KB_HIST_DEBUG=eos,protocol (librdkafka debug contexts of the workers' producers), KB_HIST_CHURN (times each
worker's consumer leaves the group and a new one joins during the run, 1).

Owns: the consume-transform-produce workload and its broker. Must not: depend on another test's topics or groups,
leave a broker running.
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
from test_txn_history import FixedPortBroker, History, KillableKafka, env_int  # noqa: E402

import txn_history as th  # noqa: E402

from confluent_kafka import (OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, KafkaError,  # noqa: E402
                             KafkaException, Producer, TopicPartition)

IN_PARTS, OUT_PARTS = 4, 3


class CtpCheckerTest(unittest.TestCase):
    """Doctored consume-transform-produce histories: each input-side violation is found (the checker can fail)."""

    def clean(self):
        inp = [(0, 0, b"i0"), (0, 1, b"i1"), (1, 0, b"i2")]
        txns = {(0, 0): th.Txn({0: ("o", 0), 1: ("o", 1)}, th.COMMITTED),
                (0, 1): th.Txn({0: ("o", 0)}, th.ABORTED),
                (1, 0): th.Txn({0: ("o", 1)}, th.COMMITTED)}
        lineage = {(0, 0, 0): (0, 0, b"i0"), (0, 0, 1): (1, 0, b"i2"), (0, 1, 0): (0, 1, b"i1"),
                   (1, 0, 0): (0, 1, b"i1")}
        v = {k: th.tag(k[0], k[1], k[2], len(txns[k[:2]].records), len(set(txns[k[:2]].records.values())))
             for k in lineage}
        ru = [("o", 0, 0, v[(0, 0, 0)]), ("o", 0, 1, v[(0, 1, 0)]), ("o", 1, 0, v[(0, 0, 1)]),
              ("o", 1, 1, v[(1, 0, 0)])]
        rc = [row for row in ru if row[3] != v[(0, 1, 0)]]
        seen = {0: [0, 1, 2], 1: [0, 1]}
        final = {0: 2, 1: 1}
        return txns, lineage, rc, ru, inp, seen, final, v

    def test_clean_passes(self):
        txns, lineage, rc, ru, inp, seen, final, _ = self.clean()
        r = th.check_ctp(txns, lineage, {}, rc, ru, inp, seen, final)
        self.assertEqual(r.total(), 0, r.examples())

    def only(self, r, kind):
        self.assertGreater(r.count(kind), 0, r.summary())

    def test_input_lost(self):
        txns, lineage, rc, ru, inp, seen, final, _ = self.clean()
        inp = inp + [(1, 1, b"i3")]
        final[1] = 2
        self.only(th.check_ctp(txns, lineage, {}, rc, ru, inp, seen, final), "input_lost")

    def test_input_duplicate(self):
        txns, lineage, rc, ru, inp, seen, final, v = self.clean()
        txns[(1, 1)] = th.Txn({0: ("o", 0)}, th.COMMITTED)
        lineage[(1, 1, 0)] = (0, 0, b"i0")
        extra = ("o", 0, 2, th.tag(1, 1, 0, 1, 1))
        self.only(th.check_ctp(txns, lineage, {}, rc + [extra], ru + [extra], inp, seen, final), "input_duplicate")

    def test_lineage(self):
        txns, lineage, rc, ru, inp, seen, final, _ = self.clean()
        lineage[(1, 0, 0)] = (0, 1, b"not-i1")
        self.only(th.check_ctp(txns, lineage, {}, rc, ru, inp, seen, final), "lineage")

    def test_offsets_backwards(self):
        txns, lineage, rc, ru, inp, seen, final, _ = self.clean()
        seen[0] = [0, 2, 1, 2]
        self.only(th.check_ctp(txns, lineage, {}, rc, ru, inp, seen, final), "offsets_backwards")

    def test_offsets_final(self):
        txns, lineage, rc, ru, inp, seen, final, _ = self.clean()
        final[0] = 1
        self.only(th.check_ctp(txns, lineage, {}, rc, ru, inp, seen, final), "offsets_final")

    def test_output_side_checked(self):
        txns, lineage, rc, ru, inp, seen, final, v = self.clean()
        rc = sorted(rc + [("o", 0, 1, v[(0, 1, 0)])])  # the aborted transaction's output visible
        r = th.check_ctp(txns, lineage, {}, rc, ru, inp, seen, final)
        self.only(r, "aborted_read")
        self.only(r, "input_duplicate")


class CtpHistory(History):
    """One consume-transform-produce run; History gives the broker handling, the killer, the output consumers and
    the final reads (over self.tps, the output partitions)."""

    def __init__(self, broker, seed, seconds, nworkers, ncons, nkills, rate):
        super().__init__(broker, seed, seconds, nworkers, ncons, nkills)
        self.run = uniq("ctp")
        self.input = "%s-in" % self.run
        self.output = "%s-out" % self.run
        self.group = "%s-group" % self.run
        self.topics = [(self.input, IN_PARTS), (self.output, OUT_PARTS)]
        self.tps = [(self.output, p) for p in range(OUT_PARTS)]
        self.in_tps = [(self.input, p) for p in range(IN_PARTS)]
        self.rate = rate
        self.lineage = {}
        self.committed_seen = collections.defaultdict(list)
        self.fed = 0
        self.feed_errors = collections.Counter()
        self.rewinds = 0
        self.churn = env_int("KB_HIST_CHURN", 1)
        self.churned = 0
        self.deliberate_aborts = 0
        self.no_rewind = os.environ.get("KB_HIST_BREAK") == "no_rewind"
        self.drained = threading.Event()
        self.workers_stop = threading.Event()

    # --- input -------------------------------------------------------------------------------
    def feeder_loop(self, until):
        p = Producer(self.conf(**{"enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 60000}))

        def dr(err, msg):
            if err is not None:
                self.feed_errors[err.name()] += 1

        n = 0
        t0 = time.monotonic()
        while not self.stop.is_set() and time.monotonic() < until:
            while n < (time.monotonic() - t0) * self.rate:
                try:
                    p.produce(self.input, value=b"in-%d" % n, partition=n % IN_PARTS, on_delivery=dr)
                    n += 1
                except BufferError:
                    break
            p.poll(0.05)
        self.fed = n
        if p.flush(60) != 0:
            self.feed_errors["not flushed"] += 1

    # --- the committed offsets ---------------------------------------------------------------
    def committed(self, c):
        """The group's committed input offsets, asked with require_stable (a read_committed consumer's OffsetFetch):
        the offsets of a transaction count once it is committed. Through a consumer of the group that does not
        join it, not AdminClient.list_consumer_group_offsets: with that, this process died of SIGSEGV in 2 of 3
        runs against Apache Kafka (no Python traceback; librdkafka's admin OffsetFetch is known to crash on a
        group it has no handle for, confluent-kafka-python issue 1982: probably that, not confirmed)."""
        res = c.committed([TopicPartition(t, p) for t, p in self.in_tps], timeout=15)
        return {tp.partition: tp.offset for tp in res if tp.offset >= 0 and not tp.error}

    def offsets_reader(self):
        return Consumer(self.conf(**{"group.id": self.group, "enable.auto.commit": False,
                                     "isolation.level": "read_committed"}))

    def monitor_loop(self):
        c = self.offsets_reader()
        try:
            while not self.workers_stop.is_set():
                try:
                    for p, off in self.committed(c).items():
                        seq = self.committed_seen[p]
                        if not seq or seq[-1] != off:
                            seq.append(off)
                except KafkaException:
                    pass
                self.workers_stop.wait(0.3)
        finally:
            c.close()

    # --- workers -----------------------------------------------------------------------------
    def new_producer(self, tid):
        """A producer of tid with its transactions initialised (fencing any older one), retried through an
        outage until the workers stop (they outlive the run's time: they drain the input)."""
        while not self.workers_stop.is_set():
            # metadata.recovery.strategy=none: with librdkafka's default (rebootstrap, KIP-899) a broker killed and
            # restarted makes the client decommission the group coordinator it had cached, and
            # send_offsets_to_transaction then never sends TxnOffsetCommit and ignores its timeout (librdkafka
            # issues 5511 and 5456, seen here with 2.16: two workers stuck 90 s with no request to the broker).
            p = Producer(self.conf(**{"transactional.id": tid, "linger.ms": 5, "transaction.timeout.ms": 10000,
                                      "message.timeout.ms": 9000, "enable.idempotence": True,
                                      "metadata.recovery.strategy": "none",
                                      **({"debug": os.environ["KB_HIST_DEBUG"]} if os.environ.get("KB_HIST_DEBUG")
                                         else {})}))
            try:
                p.init_transactions(15)
                return p
            except KafkaException:
                p.flush(0)
                time.sleep(0.3)
        return None

    def rewind(self, c):
        """Back to the group's committed offsets (require_stable: librdkafka asks for them with read_committed),
        as an application must after an abort: the aborted batch is consumed again."""
        self.rewinds += 1
        if self.no_rewind:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.workers_stop.is_set():
            try:
                parts = c.assignment()
                if not parts:
                    return
                for tp in c.committed(parts, timeout=10):
                    tp.offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                    try:
                        c.seek(tp)
                    except KafkaException:
                        pass  # revoked meanwhile: its next owner starts from the committed offset
                return
            except KafkaException:
                time.sleep(0.3)
        self.errors.append("a worker could not rewind to the committed offsets within 30 s")

    def worker_loop(self, wn, rng):
        tid = "%s-tx-%d" % (self.run, wn)

        def consumer():
            c = Consumer(self.conf(**{"group.id": self.group, "enable.auto.commit": False,
                                      "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                                      "fetch.wait.max.ms": 100, "session.timeout.ms": 10000,
                                      "heartbeat.interval.ms": 1000}))
            c.subscribe([self.input])
            return c

        c = consumer()
        # Churn: the worker's consumer leaves the group and a new one joins, at random moments of the run, so that
        # partitions change hands between the workers while transactions carry their offsets (KIP-447).
        t0 = time.monotonic()
        churn = sorted(rng.uniform(0.1, 0.7) * self.seconds for _ in range(self.churn))
        p = self.new_producer(tid)
        seq = 0
        try:
            while p is not None and not self.workers_stop.is_set():
                if churn and time.monotonic() - t0 > churn[0]:
                    churn.pop(0)
                    c.close()
                    c = consumer()
                    self.churned += 1
                msgs = [m for m in c.consume(50, 0.3) if not m.error()]
                if not msgs:
                    continue
                recs, lin = {}, {}
                ends = {}
                for m in msgs:
                    rec = len(recs)
                    recs[rec] = (self.output, m.partition() % OUT_PARTS)
                    lin[rec] = (m.partition(), m.offset(), m.value())
                    ends[m.partition()] = m.offset() + 1
                key = (wn, seq)
                seq += 1
                txn = th.Txn(recs, th.ABORTED)
                nparts = len(set(recs.values()))
                abort = rng.random() < 0.15
                asked_commit = False
                step = "begin"
                try:
                    p.begin_transaction()
                    with self.lock:
                        self.txns[key] = txn
                        for rec, src in lin.items():
                            self.lineage[(wn, key[1], rec)] = src
                    step = "produce"
                    for rec, (t, part) in recs.items():
                        p.produce(t, value=th.tag(wn, key[1], rec, len(recs), nparts), partition=part)
                    step = "send_offsets"
                    p.send_offsets_to_transaction([TopicPartition(self.input, ip, off) for ip, off in ends.items()],
                                                  c.consumer_group_metadata(), 15)
                    if abort:
                        step = "abort"
                        p.abort_transaction(15)
                        self.deliberate_aborts += 1
                        self.rewind(c)
                        continue
                    step = "commit"
                    asked_commit = True
                    txn.outcome = th.UNKNOWN
                    p.commit_transaction(15)
                    txn.outcome = th.COMMITTED
                except (KafkaException, BufferError) as e:
                    err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
                    self.told[(step, err.name() if err is not None else type(e).__name__)] += 1
                    txn.outcome = th.UNKNOWN if asked_commit else th.ABORTED
                    if err is not None and err.txn_requires_abort() and not err.fatal():
                        try:
                            p.abort_transaction(15)
                            self.rewind(c)
                            continue
                        except KafkaException:
                            pass
                    # Fatal, or an abort that failed: a new producer, whose init fences the old epoch and aborts
                    # what it left open; the consumer goes back to what the group committed.
                    self.recreated += 1
                    p = self.new_producer(tid)
                    self.rewind(c)
            if p is None:
                self.errors.append("worker %d: no producer (init_transactions failed until the end)" % wn)
        finally:
            c.close()
            if p is not None:
                p.flush(5)

    # --- the run -----------------------------------------------------------------------------
    def read_input(self, deadline):
        keep = self.tps
        self.tps = self.in_tps
        try:
            return [(p, off, v) for _, p, off, v in self.read_all("read_uncommitted", deadline)]
        finally:
            self.tps = keep

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
            t = threading.Thread(target=run, daemon=True)
            t.start()
            threads.append(t)

        feeder = threading.Thread(target=self.feeder_loop, args=(t0 + self.seconds * 0.8,), daemon=True)
        feeder.start()
        for i in range(self.ncons):
            guard(self.consumer_loop, "consumer-%d" % i)
        guard(self.monitor_loop)
        for i in range(self.nprod):
            guard(self.worker_loop, i, random.Random(self.seed * 1000 + i))
        if self.nkills:
            guard(self.killer_loop, t0)
        while time.monotonic() - t0 < self.seconds and time.monotonic() < hard_deadline:
            time.sleep(0.2)
        self.stop.set()  # the feeder, the killer and the output consumers stop; the workers drain the input
        reads_from = hard_deadline - min(60, (hard_deadline - time.monotonic()) / 3)
        feeder.join(max(1.0, reads_from - time.monotonic()))
        if not self.b.running:  # the killer stopped between a kill and its restart
            self.b.start()
            self.final_start = 1
        reader = self.offsets_reader()
        ends, left = {}, None
        while time.monotonic() < reads_from:
            try:
                ends = {p: hi for p, hi in ((p, self.high(reader, p)) for _, p in self.in_tps)}
                got = self.committed(reader)
                left = {p: (got.get(p), hi) for p, hi in ends.items() if got.get(p, 0 if hi == 0 else None) != hi}
                if not left:
                    break
            except KafkaException as e:
                left = {"error": str(e)}
            time.sleep(0.5)
        if left:
            self.errors.append("the workers did not commit the whole input before the deadline: %s; where the "
                               "threads are: %s" % (left, self.where_threads(threads)))
        self.workers_stop.set()
        for t in threads:
            t.join(max(1.0, reads_from - time.monotonic()))
        if any(t.is_alive() for t in threads):
            self.errors.append("threads still running (daemons, left behind) %.0f s before the hard deadline"
                               % (hard_deadline - time.monotonic()))
        try:
            self.wait_stable(reads_from + (hard_deadline - reads_from) / 3)
        except AssertionError as e:
            self.errors.append(str(e))
        rc = self.read_all(self.isolation, hard_deadline)
        ru = self.read_all("read_uncommitted", hard_deadline)
        inp = self.read_input(hard_deadline)
        final = {}
        try:
            final = self.committed(reader)
        except KafkaException as e:
            self.errors.append("final committed offsets: %s" % e)
        finally:
            reader.close()
        return rc, ru, inp, final

    @staticmethod
    def where_threads(threads):
        """The innermost frames of the run's live threads: what a stuck worker waits for."""
        import traceback
        frames = sys._current_frames()
        out = []
        for t in threads:
            f = frames.get(t.ident)
            if t.is_alive() and f is not None:
                out.append(" <- ".join("%s:%d %s" % (x.name, x.lineno, x.line)
                                       for x in reversed(traceback.extract_stack(f)[-3:])))
        return out

    def high(self, c, p):
        return c.get_watermark_offsets(TopicPartition(self.input, p), timeout=10)[1]


class TxnCtpHistoryTest(unittest.TestCase):
    def test_ctp_history(self):
        seconds = env_int("KB_HIST_SECONDS", 30)
        seed = env_int("KB_HIST_SEED", random.randrange(1 << 30))
        kills = env_int("KB_HIST_KILLS", 3)
        hard = time.monotonic() + env_int("KB_HIST_TIMEOUT", 150)
        if is_kbroker():
            b = FixedPortBroker(extra_sets=GROUP_SETS + ("unstable.api.versions.enable=true",))  # no longer needed for transactions
            where = "kbroker shards=%d" % b.shards
        elif os.environ.get("KB_TARGET") == "kafka" and os.environ.get("KB_HIST_KAFKA_OWN", "0") == "1":
            b = KillableKafka()
            where = "Apache Kafka %s (own, killed)" % b.ref.version
        else:
            b = FixedPortBroker(extra_sets=GROUP_SETS)
            where = "target %s (attached, not killed)" % os.environ.get("KB_TARGET_BOOTSTRAP", "?")
            kills = 0
        try:
            b.start()
            h = CtpHistory(b, seed, seconds, env_int("KB_HIST_WORKERS", 3), env_int("KB_HIST_CONSUMERS", 1), kills,
                           env_int("KB_HIST_RATE", 150))
            rc, ru, inp, final = h.execute(hard)
            rep = th.check_ctp(h.txns, h.lineage, h.observed, rc, ru, inp, dict(h.committed_seen), final)
            c, a, u = th.counts(h.txns)
            line = ("HISTORY-CTP %s seed=%d seconds=%d workers=%d consumers=%d input=%d fed=%d txns committed=%d "
                    "aborted=%d (deliberate %d) unknown=%d output_records=%d read_committed=%d read_uncommitted=%d "
                    "consumed=%d committed_offsets_seen=%d rewinds=%d churned=%d kills=%d recreated=%d violations %s"
                    % (where, seed, seconds, h.nprod, h.ncons, len(inp), h.fed, c, a, h.deliberate_aborts, u,
                       sum(len(t.records) for t in h.txns.values()), len(rc), len(ru),
                       sum(len(v) for v in h.observed.values()), sum(len(v) for v in h.committed_seen.values()),
                       h.rewinds, h.churned, h.kills, h.recreated, rep.summary()))
            print(line, flush=True)
            print("HISTORY-CTP errors told to producers (step, error): %s; input feed errors: %s"
                  % (sorted(h.told.items()), sorted(h.feed_errors.items())), flush=True)
            self.assertEqual(h.errors + (["violations " + rep.examples()] if rep.total() else []), [])
            self.assertGreater(c, 0, "no transaction committed")
            self.assertGreater(len(inp), 0, "no input")
            self.assertEqual(h.kills, kills)
            self.assertEqual(b.starts, 1 + kills + h.final_start, "every kill restarts the broker process")
        except BaseException:
            if getattr(b, "log_tail", None) is not None and b.target == "kbroker":
                print("---- kbroker log tail ----\n%s\n----" % b.log_tail(40), flush=True)
            raise
        finally:
            try:
                if b.running:
                    b.stop()
            finally:
                keep = os.environ.get("KB_HIST_KEEP_LOG")
                if keep and (getattr(b, "log_path", None) or getattr(b, "ref", None)):
                    import shutil
                    src = b.ref.log_path if hasattr(b, "ref") else b.log_path
                    shutil.copy(src, os.path.join(keep, "broker-ctp-%d.log" % seed))
                b.cleanup()


if __name__ == "__main__":
    unittest.main()

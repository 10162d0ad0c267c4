"""The history checker of issue 16 (Jepsen-style): what transactional producers were told and what
read_committed consumers saw, checked against the final logs.

Owns: the record tag format and the checks over a recorded history (pure functions, no client, no broker),
for both workloads: transactional producers (check) and consume-transform-produce (check_ctp).
Must not: talk to a broker or decide outcomes itself: compat-tests/py3/test_txn_history.py records them.

A history:
  txns      {(producer, seq): Txn}: every transaction a producer began, the records it meant to write and
            the outcome it was told: "committed" (commit_transaction returned), "aborted" (commit never
            requested: nothing may make it visible) or "unknown" (commit requested, then an error or a crash).
  observed  {consumer name: [(topic, partition, offset, value), ...]} in the order each run-time
            read_committed consumer received them.
  final_rc  [(topic, partition, offset, value)] the whole log read once more with read_committed at the end,
  final_ru  the same with read_uncommitted.
"""

import collections

COMMITTED, ABORTED, UNKNOWN = "committed", "aborted", "unknown"
KINDS = ("aborted_read", "torn", "lost_commit", "duplicate", "offsets", "prefix", "phantom", "uncommitted_missing")


def tag(producer, seq, rec, nrec, nparts):
    """The value of a record: who wrote it, in which transaction, its index, and the transaction's size."""
    return b"p%d|t%d|r%d|n%d|k%d" % (producer, seq, rec, nrec, nparts)


def parse(value):
    """(producer, seq, rec, nrec, nparts) or None for a value that is not a tag."""
    try:
        f = value.split(b"|")
        if len(f) != 5 or [x[:1] for x in f] != [b"p", b"t", b"r", b"n", b"k"]:
            return None
        return tuple(int(x[1:]) for x in f)
    except (ValueError, AttributeError):
        return None


class Txn:
    __slots__ = ("records", "outcome")

    def __init__(self, records, outcome=UNKNOWN):
        # records: {rec index: (topic, partition)}
        self.records = dict(records)
        self.outcome = outcome


# Consume-transform-produce: the output side is checked by check() (its records are tagged transactions); these are
# about the input: each input record transformed into exactly one committed output record, with its own value, and
# the group's committed input offsets never going back and ending at the end of the input.
CTP_KINDS = ("input_lost", "input_duplicate", "lineage", "offsets_backwards", "offsets_final")


class Report:
    def __init__(self, kinds=KINDS):
        self.violations = collections.OrderedDict((k, []) for k in kinds)

    def add(self, kind, what):
        self.violations[kind].append(what)

    def count(self, kind):
        return len(self.violations[kind])

    def total(self):
        return sum(len(v) for v in self.violations.values())

    def summary(self):
        return " ".join("%s=%d" % (k, len(v)) for k, v in self.violations.items())

    def examples(self, n=3):
        return "; ".join("%s: %s" % (k, " | ".join(str(x) for x in v[:n])) for k, v in self.violations.items() if v)


def _by_partition(rows):
    parts = collections.defaultdict(list)
    for topic, part, off, value in rows:
        parts[(topic, part)].append((off, value))
    return parts


def check(txns, observed, final_rc, final_ru):
    r = Report()

    # The final read_committed log: duplicates, offsets, what each record belongs to.
    rc_parts = _by_partition(final_rc)
    seen_rc = collections.defaultdict(set)  # (producer, seq) -> rec indexes visible to read_committed
    where = {}
    for tp, rows in sorted(rc_parts.items()):
        last = -1
        for off, value in rows:
            if off <= last:
                r.add("offsets", ("final_rc", tp, last, off))
            last = off
            t = parse(value)
            if t is None or (t[0], t[1]) not in txns:
                r.add("phantom", ("final_rc", tp, off, value))
                continue
            key, rec = (t[0], t[1]), t[2]
            txn = txns[key]
            if txn.records.get(rec) != tp:
                r.add("phantom", ("final_rc wrong partition", tp, off, value))
                continue
            if rec in seen_rc[key]:
                r.add("duplicate", ("final_rc", tp, off, value, "first at", where[(key, rec)]))
                continue
            seen_rc[key].add(rec)
            where[(key, rec)] = (tp, off)
            if txn.outcome == ABORTED:
                r.add("aborted_read", ("final_rc", tp, off, value))

    # read_uncommitted sees everything written: each transaction read_committed shows must be there too.
    ru_vals = set(v for _, _, _, v in final_ru)
    ru_offsets = collections.defaultdict(dict)
    for topic, part, off, value in final_ru:
        ru_offsets[(topic, part)][off] = value
    for tp, rows in rc_parts.items():
        for off, value in rows:
            if ru_offsets[tp].get(off) != value:
                r.add("uncommitted_missing", (tp, off, value))

    # All or nothing, and nothing acknowledged lost.
    for key, txn in sorted(txns.items()):
        n, want = len(seen_rc[key]), len(txn.records)
        if 0 < n < want:
            r.add("torn", (key, txn.outcome, "visible %d of %d" % (n, want),
                           sorted(set(txn.records) - seen_rc[key])[:5]))
        elif n == 0 and txn.outcome == COMMITTED:
            gone = [rec for rec in txn.records
                    if tag(key[0], key[1], rec, want, len(set(txn.records.values()))) not in ru_vals]
            r.add("lost_commit", (key, "%d of %d records absent even from read_uncommitted" % (len(gone), want)))

    # Run-time consumers: no aborted read, no duplicate, offsets increasing, and per partition exactly the final
    # committed log up to the last offset they reached (nothing skipped, nothing seen that is not there).
    for name, rows in sorted(observed.items()):
        parts = _by_partition(rows)
        values = set()
        for tp, seen in sorted(parts.items()):
            last = -1
            for off, value in seen:
                if off <= last:
                    r.add("offsets", (name, tp, last, off))
                last = off
                if value in values:
                    r.add("duplicate", (name, tp, off, value))
                values.add(value)
                t = parse(value)
                if t is not None and (t[0], t[1]) in txns and txns[(t[0], t[1])].outcome == ABORTED:
                    r.add("aborted_read", (name, tp, off, value))
            top = max(off for off, _ in seen)
            expect = [(off, v) for off, v in rc_parts.get(tp, []) if off <= top]
            if seen != expect:
                got, exp = dict(seen), dict(expect)
                diff = sorted(set(got.items()) ^ set(exp.items()))[:3]
                r.add("prefix", (name, tp, "saw %d records up to offset %d, final log has %d there" %
                                 (len(seen), top, len(expect)), diff))
    return r


def counts(txns):
    c = collections.Counter(t.outcome for t in txns.values())
    return c[COMMITTED], c[ABORTED], c[UNKNOWN]


def check_ctp(txns, lineage, observed, final_rc, final_ru, input_log, committed_seen, committed_final):
    """Consume-transform-produce: workers read an input topic with read_committed group consumers and write one
    output record per input record in a transaction that also commits their input offsets.

    txns, observed, final_rc, final_ru: as check(), over the output topic (each output record is a tag).
    lineage        {(producer, seq, rec): (input partition, input offset, input value)} what each output record was
                   made from.
    input_log      [(partition, offset, value)] the whole input topic, read at the end.
    committed_seen {partition: [offset, ...]} the group's committed input offsets in the order they were observed
                   during the run (read with require_stable, so only committed transactions' offsets).
    committed_final {partition: offset} the group's committed offsets at the end.
    """
    r = Report(KINDS + CTP_KINDS)
    base = check(txns, observed, final_rc, final_ru)
    for k, v in base.violations.items():
        r.violations[k].extend(v)

    inputs = {(p, off): value for p, off, value in input_log}
    made = collections.defaultdict(list)  # input (partition, offset) -> output (producer, seq, rec) visible
    for topic, part, off, value in final_rc:
        t = parse(value)
        if t is None:
            continue  # a phantom, counted by check()
        src = lineage.get(t[:3])
        if src is None:
            r.add("lineage", ("output record with no recorded input", topic, part, off, value))
            continue
        ip, ioff, ivalue = src
        if inputs.get((ip, ioff)) != ivalue:
            r.add("lineage", ("output made from a record that is not the input's", (ip, ioff), ivalue,
                              inputs.get((ip, ioff))))
            continue
        made[(ip, ioff)].append((t[:3], topic, part, off))
    for key in sorted(inputs):
        n = len(made.get(key, ()))
        if n == 0:
            r.add("input_lost", (key, inputs[key]))
        elif n > 1:
            r.add("input_duplicate", (key, inputs[key], made[key][:3]))

    for p, seq in sorted(committed_seen.items()):
        for a, b in zip(seq, seq[1:]):
            if b < a:
                r.add("offsets_backwards", (p, a, b))
    ends = collections.Counter()
    for p, off, _ in input_log:
        ends[p] = max(ends[p], off + 1)
    for p, end in sorted(ends.items()):
        if committed_final.get(p) != end:
            r.add("offsets_final", (p, "committed %s, input ends at %d" % (committed_final.get(p), end)))
    return r

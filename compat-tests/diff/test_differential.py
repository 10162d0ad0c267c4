"""Differential wire test: the same request sequences to Apache Kafka and to kbroker, responses compared.

Owns: running scenarios.py against the reference Kafka (the run's, KB_TARGET=kafka, or one of its own via
lib/kafka_ref.py when run alone) and against kbroker processes of its own (1 and 2 shards, KB_DIFF_SHARDS),
normalising what legitimately differs, printing a readable diff per scenario, and failing on any difference
that DIFFERENCES.md does not list, or on a listed one that is gone.
Must not: loosen a comparison to hide a difference (list it with its reason instead), or run on the kbroker
pass of run.sh (no reference there: it runs once per run, in the kafka pass).
"""

import os
import sys
import time
import unittest
import uuid

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, "..", "lib"))

import kwire  # noqa: E402
import scenarios as S  # noqa: E402
from broker import Broker, target  # noqa: E402
from kafka_ref import REF_SETTINGS  # noqa: E402

DIFFERENCES = os.path.join(_HERE, "DIFFERENCES.md")
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
WAIT_SECONDS = 20.0

# Values that differ between any two brokers by nature: replaced by a fixed token (or by a symbol numbered in
# order of appearance, so that "the same id as before" is still compared).
FIXED_VALUE = {"ClusterId": "<cluster-id>", "Host": "<host>", "Port": "<port>", "LogDir": "<log-dir>",
               "TotalBytes": "<bytes>", "UsableBytes": "<bytes>", "ThrottleTimeMs": 0,
               "FinalizedFeaturesEpoch": "<epoch>"}
SYMBOLIC = {"TopicId": "topic-id", "MemberId": "member", "LeaderId": "member", "Leader": "member", "ProducerId": "producer-id",
            "SessionId": "session"}
# Error message texts are free text in every response that carries one; null or not is still compared.
FREE_TEXT = {"ErrorMessage", "Documentation", "StatusMessage"}
# Lists a client reads as sets (keyed by these fields): sorted before comparing.
SORT_KEYS = ("ApiKey", "Name", "GroupId", "ResourceName", "Topic", "PartitionIndex", "Partition", "Index",
             "NodeId", "BrokerId", "MemberId")


def _sub(value, subs):
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace(k, v)
    return value


def _resolve(value, ctx, subs):
    if isinstance(value, (S.Ref, S.Fn)):
        return value.resolve(ctx)
    if isinstance(value, dict):
        return {k: _resolve(v, ctx, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, ctx, subs) for v in value]
    return _sub(value, subs)


class Normaliser:
    def __init__(self, run_token):
        self.run_token = run_token
        self.symbols = {}

    def symbol(self, kind, value):
        key = (kind, value)
        if key not in self.symbols:
            self.symbols[key] = "%s#%d" % (kind, 1 + sum(1 for k in self.symbols if k[0] == kind))
        return self.symbols[key]

    def norm(self, value, name=""):
        if isinstance(value, dict):
            return {k: self.norm_field(k, v) for k, v in value.items()}
        if isinstance(value, list):
            items = [self.norm(v, name) for v in value]
            if items and all(isinstance(i, dict) for i in items):
                for key in SORT_KEYS:
                    if all(key in i for i in items):
                        return sorted(items, key=lambda i: (isinstance(i[key], str), i[key]))
            return items
        if isinstance(value, str):
            return value.replace(self.run_token, "<R>")
        return value

    def norm_field(self, name, value):
        if name == "ApiKeys" and isinstance(value, list):
            specs = kwire.api_specs()
            return {(specs[a["ApiKey"]][0][:-len("Request")] if a["ApiKey"] in specs else str(a["ApiKey"])):
                    "%d-%d" % (a["MinVersion"], a["MaxVersion"]) for a in value}
        if name == "Configs" and isinstance(value, list) and all(isinstance(c, dict) and "Name" in c
                                                                for c in value):
            # Config entries by name: a config only one broker has is one difference, not a shifted list.
            return {c["Name"]: self.norm({k: v for k, v in c.items() if k != "Name"}) for c in value}
        if name in FIXED_VALUE:
            return FIXED_VALUE[name]
        if name in FREE_TEXT:
            return None if value is None else "<text>"
        if name == "Records":
            return [self.norm_batch(b) for b in kwire.read_batches(value)] if value is not None else None
        if name in SYMBOLIC:
            if isinstance(value, str) and value not in ("", ZERO_UUID):
                return self.symbol(SYMBOLIC[name], value)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return self.symbol(SYMBOLIC[name], value)
            return value
        if isinstance(value, (bytes, bytearray)):
            return value.hex()
        return self.norm(value, name)

    def norm_batch(self, b):
        b = dict(b)
        if b.get("producer_id", -1) >= 0:
            b["producer_id"] = self.symbol("producer-id", b["producer_id"])
        b["records"] = [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.items()} for r in b["records"]]
        return b


# Kafka 4 still advertises Produce v0-2 (old librdkafka refuses a broker without them) but closes the
# connection when they are used (KIP-896). The levels start above; the "removed-versions" scenario sends one.
ADVERTISED_NOT_SERVED = {S.PRODUCE: 3}


def versions_common(kafka_av, kb_av):
    """{api_key: (lo, hi)} for the APIs kbroker advertises, limited to what Kafka and the spec serve."""
    specs = kwire.api_specs()
    k = {a["ApiKey"]: (a["MinVersion"], a["MaxVersion"]) for a in kafka_av["ApiKeys"]}
    out = {}
    for a in kb_av["ApiKeys"]:
        key = a["ApiKey"]
        if key not in k or key not in specs:
            continue
        lo = max(a["MinVersion"], k[key][0], specs[key][2][0])
        hi = min(a["MaxVersion"], k[key][1], specs[key][2][1] if specs[key][2][1] is not None else 1 << 15)
        lo = max(lo, ADVERTISED_NOT_SERVED.get(key, lo))
        if lo <= hi:
            out[key] = (lo, hi)
    return out


def level_version(rng, level):
    lo, hi = rng
    return {"low": lo, "mid": (lo + hi) // 2, "high": hi}[level]


def step_version(step, level, common):
    v = step["v"]
    rng = common.get(step["api"])
    if rng is None:
        return None
    if isinstance(v, int):
        # A fixed version: sent only where both brokers serve it (ApiVersions is always answered).
        return v if (rng[0] <= v <= rng[1] or step.get("any_version")) else None
    return level_version(rng, level if v == "L" else v)


class Target:
    def __init__(self, name, bootstrap):
        self.name, self.bootstrap = name, bootstrap

    def conn(self):
        return kwire.Conn(self.bootstrap)


def _wait(conn, kind, req, resp):
    """Polls until Kafka's asynchronous work is visible (kbroker's is done when it answers)."""
    deadline = time.monotonic() + WAIT_SECONDS
    # Only what the step did: topics its response reports without an error.
    done = {t.get("Name") for t in (resp.get("Topics") or resp.get("Results") or resp.get("Responses") or [])
            if t.get("ErrorCode") == 0}
    while True:
        if kind in ("leaders", "gone"):
            names = [t["Name"] for t in req.get("Topics") or []] or req.get("TopicNames") or []
            names = [n for n in names if n in done]
            r = conn.request(S.METADATA, 4, {"Topics": [{"Name": n} for n in names], "AllowAutoTopicCreation":
                                             False})
            if kind == "leaders":
                # Kafka's metadata names a leader before the leader serves the partition: ask it too.
                parts = [{"Name": t["Name"], "Partitions": [{"PartitionIndex": p["PartitionIndex"], "Timestamp": -1}
                                                             for p in t["Partitions"]]}
                         for t in r["Topics"] if t["ErrorCode"] == 0]
                lo = conn.request(S.LIST_OFFSETS, 1, {"ReplicaId": -1, "Topics": parts})
                ok = all(p["ErrorCode"] == 0 for t in lo["Topics"] for p in t["Partitions"])
                ok = ok and all(t["ErrorCode"] == 0 and all(
                    p["LeaderId"] >= 0 and p["ErrorCode"] == 0 for p in t["Partitions"]) for t in r["Topics"])
                # Partitions just added by CreatePartitions must show too.
                want = {t["Name"]: t.get("Count") for t in req.get("Topics") or [] if "Count" in t}
                ok = ok and all(want.get(t["Name"]) is None or t["ErrorCode"] != 0
                                or len(t["Partitions"]) >= want[t["Name"]] for t in r["Topics"])
            else:
                ok = all(t["ErrorCode"] == 3 for t in r["Topics"])
        elif kind == "configs":
            # Kafka's broker serves a config change once the metadata log reaches it: wait until every
            # value the step set (SET ops, AlterConfigs) reads back.
            ok_names = {x["ResourceName"] for x in resp.get("Responses") or [] if x["ErrorCode"] == 0}
            res, want = [], {}
            for x in req.get("Resources") or []:
                sets = {c["Name"]: c["Value"] for c in x["Configs"] if c.get("ConfigOperation", 0) == 0}
                if x["ResourceName"] in ok_names and sets:
                    res.append({"ResourceType": x["ResourceType"], "ResourceName": x["ResourceName"],
                                "ConfigurationKeys": sorted(sets)})
                    want[x["ResourceName"]] = sets
            r = conn.request(S.DESCRIBE_CONFIGS, 1, {"Resources": res}) if res else {"Results": []}
            ok = all(c["Value"] == want[x["ResourceName"]].get(c["Name"])
                     for x in r["Results"] for c in x["Configs"])
        elif kind == "group":
            # FindCoordinator names Kafka's coordinator before it serves the group (its __consumer_offsets
            # partition still loading): wait until it answers for the group.
            keys = req.get("CoordinatorKeys") or [req.get("Key")]
            r = conn.request(S.DESCRIBE_GROUPS, 0, {"Groups": keys})
            ok = all(g["ErrorCode"] == 0 for g in r["Groups"])
        else:
            raise AssertionError("scenario wait %r unknown" % kind)
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError("wait %s not done after %.0fs: %r" % (kind, WAIT_SECONDS, r))
        time.sleep(0.1)


def _error_codes(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "ErrorCode":
                yield x
            else:
                yield from _error_codes(x)
    elif isinstance(v, list):
        for x in v:
            yield from _error_codes(x)


def run_scenario(tgt, scen, level, common, run_token):
    """[(label, normalised response)] of one scenario at one level against one target."""
    subs = {"{R}": run_token, "{L}": level or "x"}
    ctx = {}
    out = []
    norm = Normaliser(run_token)
    conn = tgt.conn()
    try:
        for step in scen["steps"]:
            v = step_version(step, level or "high", common)
            if v is None:
                continue
            req = _resolve(step["req"], ctx, subs)
            label = "%s[%s]/%s v%d" % (scen["name"], level or "-", step["id"], v)
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                try:
                    resp = conn.request(step["api"], v, req)
                except (kwire.WireError, OSError) as e:
                    # A broker closing the connection is an answer too: compared, then a fresh connection.
                    resp = {"<no response>": type(e).__name__ + ": " + str(e)}
                    conn.close()
                    conn = tgt.conn()
                # "retry": error codes of a coordinator still loading (Kafka's, on first use), not compared.
                if not (set(step.get("retry", ())) & set(_error_codes(resp))) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if step.get("keep_run_groups") and resp.get("Groups") is not None:
                # ListGroups lists every group of the broker, the shared Kafka's other tests' too.
                mine = "%s-%s-" % (run_token, level or "x")
                resp["Groups"] = [g for g in resp["Groups"] if mine in (g.get("GroupId") or "")]
            ctx[step["id"]] = resp
            out.append((label, norm.norm(resp)))
            if step.get("wait") and "<no response>" not in resp:
                _wait(conn, step["wait"], req, resp)
    finally:
        conn.close()
    return out


def _short(v):
    s = repr(v)
    return s if len(s) <= 120 else s[:117] + "..."


def diff(a, b, path=""):
    """Lines 'path: kafka=... kbroker=...' for every leaf that differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        # Keys on one side only: one line per side, so that a whole missing API is one difference.
        lines = []
        only_a = [k for k in a if k not in b]
        only_b = [k for k in b if k not in a]
        for side, only, d in (("kafka", only_a, a), ("kbroker", only_b, b)):
            if only:
                lines.append("%s: only %s has %s" % (path or "<top>", side, ", ".join(
                    str(k) if len(only) > 3 else "%s=%s" % (k, _short(d[k])) for k in only)))
        for k in a:
            if k in b:
                lines += diff(a[k], b[k], "%s.%s" % (path, k) if path else k)
        return lines
    if isinstance(a, list) and isinstance(b, list):
        lines = []
        for i in range(max(len(a), len(b))):
            p = "%s[%d]" % (path, i)
            if i >= len(a):
                lines.append("%s: kafka=<absent> kbroker=%s" % (p, _short(b[i])))
            elif i >= len(b):
                lines.append("%s: kafka=%s kbroker=<absent>" % (p, _short(a[i])))
            else:
                lines += diff(a[i], b[i], p)
        return lines
    if a != b or type(a) is not type(b):
        return ["%s: kafka=%s kbroker=%s" % (path, _short(a), _short(b))]
    return []


def load_expected(path=DIFFERENCES):
    """The difference lines DIFFERENCES.md lists (indented four spaces under a reason), optionally prefixed
    '[shards=N] ' when only that shard count shows them."""
    out = set()
    with open(path) as f:
        for line in f:
            if line.startswith("    ") and line.strip():
                out.add(line.rstrip("\n")[4:])
    return out


def levels_of(scen, common):
    """The scenario's levels, without one whose versions repeat an earlier level's."""
    if scen.get("levels", ()) is None:
        return [None]
    seen, out = set(), []
    for level in ("low", "mid", "high"):
        vs = tuple(step_version(s, level, common) for s in scen["steps"])
        if vs not in seen:
            seen.add(vs)
            out.append(level)
    return out


class DifferentialTest(unittest.TestCase):
    kafka = None
    own_kafka = None

    @classmethod
    def setUpClass(cls):
        t = target()
        if t == "kafka":
            cls.kafka = Target("kafka", os.environ["KB_TARGET_BOOTSTRAP"])
        elif t == "kbroker":
            if os.environ.get("KB_DIFF_STANDALONE") != "1":
                raise unittest.SkipTest("needs Apache Kafka: runs once per run, in run.sh's kafka pass "
                                        "(alone: KB_DIFF_STANDALONE=1 starts its own Kafka)")
            from kafka_ref import KafkaRef
            cls.own_kafka = KafkaRef()
            cls.addClassCleanup(cls.own_kafka.cleanup)
            cls.own_kafka.start()
            cls.kafka = Target("kafka", cls.own_kafka.bootstrap)
        else:
            raise unittest.SkipTest("compares kbroker with Apache Kafka; target is %s" % t)
        cls.shards = [int(s) for s in os.environ.get("KB_DIFF_SHARDS", "1 2").split()]
        cls.run_token = uuid.uuid4().hex[:8]
        cls.brokers = {}
        for n in cls.shards:
            # unstable.api.versions.enable: the transaction coordinator's APIs are compared too (issue 16).
            b = Broker(shards=n, target="kbroker", extra_sets=["%s=%s" % kv for kv in REF_SETTINGS.items()]
                       + ["unstable.api.versions.enable=true"])
            cls.addClassCleanup(cls._stop, b)
            b.start()
            cls.brokers[n] = b
        c = cls.kafka.conn()
        try:
            kafka_av = c.request(S.API_VERSIONS, 3, {"ClientSoftwareName": "kb-diff", "ClientSoftwareVersion": "1"})
        finally:
            c.close()
        c = kwire.Conn(cls.brokers[cls.shards[0]].bootstrap)
        try:
            kb_av = c.request(S.API_VERSIONS, 3, {"ClientSoftwareName": "kb-diff", "ClientSoftwareVersion": "1"})
        finally:
            c.close()
        cls.common = versions_common(kafka_av, kb_av)
        cls.kb_apis = sorted(a["ApiKey"] for a in kb_av["ApiKeys"])

    @staticmethod
    def _stop(b):
        try:
            if b.running:
                b.stop(check=True)
        finally:
            b.cleanup()

    def test_every_advertised_api_is_exercised(self):
        used = {s["api"] for scen in S.SCENARIOS for s in scen["steps"]}
        missing = [k for k in self.kb_apis if k not in used]
        self.assertEqual(missing, [], "APIs kbroker advertises that no scenario sends")

    def test_differential(self):
        expected = load_expected()
        found = {n: set() for n in self.shards}
        t0 = time.monotonic()
        for scen in S.SCENARIOS:
            for level in levels_of(scen, self.common):
                ref = run_scenario(self.kafka, scen, level, self.common, self.run_token)
                for n in self.shards:
                    kb = Target("kbroker", self.brokers[n].bootstrap)
                    got = run_scenario(kb, scen, level, self.common, self.run_token)
                    self.assertEqual([lbl for lbl, _ in ref], [lbl for lbl, _ in got])
                    lines = []
                    for (label, a), (_, b) in zip(ref, got):
                        for d in diff(a, b):
                            lines.append("%s: %s" % (label, d))
                    found[n].update(lines)
                    head = "== %s[%s] kbroker shards=%d: " % (scen["name"], level or "-", n)
                    if not lines:
                        print(head + "same (%d responses)" % len(ref))
                    else:
                        print(head + "%d differences" % len(lines))
                        for line in lines:
                            print("   %s %s" % ("listed" if line in expected or "[shards=%d] %s" % (n, line)
                                                in expected else "NEW   ", line))
        print("differential: %.1fs" % (time.monotonic() - t0))
        problems = []
        for n in self.shards:
            want = {e for e in expected if not e.startswith("[shards=")}
            want |= {e[len("[shards=%d] " % n):] for e in expected if e.startswith("[shards=%d] " % n)}
            new = sorted(found[n] - want)
            gone = sorted(want - found[n])
            problems += ["shards=%d new difference (fix kbroker or list it in DIFFERENCES.md): %s" % (n, x)
                         for x in new]
            problems += ["shards=%d listed difference no longer seen (remove it from DIFFERENCES.md): %s" % (n, x)
                         for x in gone]
        if problems:
            self.fail("\n".join(problems))


if __name__ == "__main__":
    unittest.main(verbosity=2)

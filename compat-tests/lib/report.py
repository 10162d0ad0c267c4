"""Write compat-tests/REPORT.md from one run.sh run: client/tool x test file x target.

Owns: turning run.sh's results.tsv and the per-file logs into a readable Markdown table with the reason
of every skip and the name of every failing test.
Must not: decide pass/fail itself (run.sh's tallies are the truth) or need anything beyond the stdlib.

Usage: report.py RESULTS.tsv OUT.md TOTAL_SECONDS
"""

import datetime
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))

# File -> the client or tool it drives; a file not listed shows the first line of its docstring.
CLIENTS = {
    "py/test_kcat.py": "kcat (librdkafka 2.0.2)",
    "py/test_confluent.py": "confluent-kafka-python 1.7 (librdkafka)",
    "py/test_kafka_python.py": "kafka-python 2.0.2",
    "py/test_bad_input.py": "raw sockets + kcat + confluent-kafka",
    "py/test_admin_cli.py": "kbroker-admin",
    "py/test_mirror.py": "kbroker-mirror + confluent-kafka",
    "py/test_restart.py": "confluent-kafka (broker restarts, kill -9)",
    "py/test_docker_entrypoint.py": "docker/entrypoint.sh",
    "groups/test_groups_confluent.py": "confluent-kafka-python groups",
    "groups/test_groups_kafka_python.py": "kafka-python groups (+ mixed)",
    "kafkajs.test.mjs": "KafkaJS 2.2.4",
    "kafkajs_groups.test.mjs": "KafkaJS 2.2.4 groups",
    "platformatic.test.mjs": "@platformatic/kafka 1.35",
    "platformatic_consumer_protocol.test.mjs": "@platformatic/kafka (KIP-848 consumer protocol)",
    "py/test_security_matrix.py": "every client over SSL, mTLS, SASL (PLAIN, SCRAM)",
}

# The security matrix (py/test_security_matrix.py): one method test_<client>__<cell> per client and cell.
MATRIX_FILE = "py/test_security_matrix.py"
MATRIX_CLIENTS = {
    "confluent17": "confluent-kafka 1.7 (librdkafka 2.0.2)", "kafka_python2": "kafka-python 2.0.2",
    "kcat": "kcat (librdkafka 2.0.2)", "confluent2": "confluent-kafka 2.x (librdkafka 2.16)",
    "kafka_python3": "kafka-python 3.0", "aiokafka": "aiokafka 0.14", "java": "kafka-clients 4.4 (Java)",
    "franz": "franz-go 1.22", "sarama": "sarama 1.61", "kafkago": "kafka-go 0.4.51", "kafkajs": "KafkaJS 2.2.4",
    "platformatic": "@platformatic/kafka 1.35",
}
MATRIX_CELLS = (("ssl", "SSL"), ("mtls", "mTLS"), ("sasl_plaintext_plain", "SASL_PLAINTEXT PLAIN"),
                ("sasl_ssl_plain", "SASL_SSL PLAIN"), ("sasl_plaintext_scram256", "SASL_PLAINTEXT SCRAM-256"),
                ("sasl_ssl_scram256", "SASL_SSL SCRAM-256"), ("sasl_plaintext_scram512", "SASL_PLAINTEXT SCRAM-512"),
                ("sasl_ssl_scram512", "SASL_SSL SCRAM-512"))
MATRIX_MARK = {"ok": "pass", "FAIL": "**FAIL**", "ERROR": "**FAIL**", "expected failure": "xfail",
               "unexpected success": "**FAIL** (unexpected success)"}


def matrix_section(rows):
    """One table per target: client x listener/mechanism, from the matrix file's unittest lines."""
    out = []
    for r in rows:
        if r["rel"] != MATRIX_FILE:
            continue
        status = {}
        for name, _tid, st in UNITTEST_LINE.findall(read(r["log"])):
            client, _, cell = name[len("test_"):].partition("__")
            status[(client, cell)] = MATRIX_MARK.get(st, "skip" if st.startswith("skipped") else st)
        if not status:
            continue
        out.append("### Security matrix, %s\n" % r["label"])
        out.append("| client | " + " | ".join(lab for _, lab in MATRIX_CELLS) + " |")
        out.append("|---|" + "---|" * len(MATRIX_CELLS))
        for client, label in MATRIX_CLIENTS.items():
            out.append("| %s | %s |" % (label, " | ".join(status.get((client, c), "—") for c, _ in MATRIX_CELLS)))
        out.append("")
    if out:
        out.insert(0, "## Security matrix\n\nA produce/consume round trip with a consumer group per cell "
                      "(`py/test_security_matrix.py`); skips and expected failures carry their reasons in the "
                      "target's section below.\n")
    return out

UNITTEST_LINE = re.compile(r"^(\w+) \(([\w.]+)\)(?:\n.*?)? \.\.\. (ok|FAIL|ERROR|skipped[^\n]*|expected failure|"
                           r"unexpected success)$", re.M | re.S)
SKIP_RE = re.compile(r"^SKIP-REASON (.*?): (.*)$", re.M)
XFAIL_RE = re.compile(r"^XFAIL-REASON (.*?): (.*)$", re.M)
FAIL_RE = re.compile(r"^(?:FAIL|ERROR): (.+)$", re.M)


def client_of(rel):
    if rel in CLIENTS:
        return CLIENTS[rel]
    base = os.path.basename(rel)
    if base in CLIENTS:
        return CLIENTS[base]
    try:
        text = open(os.path.join(ROOT, rel)).read(2000)
    except OSError:
        return "?"
    m = re.search(r'"""(.+)', text) or re.search(r"^// (.+)", text, re.M)
    return (m.group(1).split(":")[0].strip()[:60]) if m else "?"


def short_test(test_id):
    return test_id.split(".")[-1] if "(" not in test_id else test_id


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def main():
    results, out, total = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = []
    for line in read(results).splitlines():
        parts = line.split("\t")
        if len(parts) != 9:
            continue
        label, kind, rel, p, f, s, secs, rc, log = parts
        rows.append(dict(label=label, kind=kind, rel=rel, p=int(p), f=int(f), s=int(s), secs=int(secs),
                         rc=int(rc), log=log))
    labels = []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])

    # cells[(file, label)] = (passed, failed, skipped, seconds); notes[label] = [lines]
    cells = {}
    skips = {}
    fails = {}
    xfails = {}
    for r in rows:
        text = read(r["log"])
        if r["kind"] == "js":
            per = {}
            for ln in read(r["log"] + ".files").splitlines():
                f = ln.split("\t")
                if len(f) != 5 or f[0] != "JSRESULT":
                    continue
                _, status, fname, name, reason = f
                c = per.setdefault("js/test/" + fname, [0, 0, 0])
                c[{"pass": 0, "fail": 1, "skip": 2}[status]] += 1
                if status == "skip":
                    skips.setdefault((r["label"], reason or "(no reason given)"), []).append(
                        "%s: %s" % (fname, name))
                elif status == "fail":
                    fails.setdefault(r["label"], []).append("%s: %s" % (fname, name))
            if not per or r["f"] > sum(c[1] for c in per.values()):
                # Failures no single test owns (broker stop, node crash, timeout).
                per.setdefault("js/test (run)", [0, 0, 0])[1] += r["f"] - sum(c[1] for c in per.values())
                fails.setdefault(r["label"], []).append("js run: exit %d, see %s" % (r["rc"], r["log"]))
            for rel, (p, f, s) in per.items():
                cells[(rel, r["label"])] = (p, f, s, r["secs"])
            continue
        cells[(r["rel"], r["label"])] = (r["p"], r["f"], r["s"], r["secs"])
        for tid, reason in SKIP_RE.findall(text):
            skips.setdefault((r["label"], reason), []).append("%s: %s" % (r["rel"], short_test(tid)))
        for tid, reason in XFAIL_RE.findall(text):
            xfails.setdefault(r["label"], {}).setdefault((r["rel"], reason), []).append(short_test(tid))
        failed = FAIL_RE.findall(text)
        for t in failed:
            fails.setdefault(r["label"], []).append("%s: %s" % (r["rel"], t.strip()))
        if r["f"] and not failed:
            fails.setdefault(r["label"], []).append("%s: exit %d (crash/timeout/unclean broker stop), see %s"
                                                    % (r["rel"], r["rc"], r["log"]))

    files = []
    for (rel, _lab) in cells:
        if rel not in files:
            files.append(rel)
    files.sort(key=lambda x: (not x.startswith("py/"), not x.startswith("groups/"), x))

    def cell(rel, lab):
        c = cells.get((rel, lab))
        if c is None:
            return "—"
        p, f, s, secs = c
        parts = []
        if f:
            parts.append("**FAIL %d**" % f)
        parts.append("%d pass" % p)
        if s:
            parts.append("%d skip" % s)
        return ", ".join(parts)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tp = sum(r["p"] for r in rows)
    tf = sum(r["f"] for r in rows)
    ts = sum(r["s"] for r in rows)
    o = []
    o.append("# Compat test report\n")
    o.append("Written by `compat-tests/run.sh` (%s, %s s, targets: %s). Totals: %d passed, %d failed, "
             "%d skipped. Counts are tests (unittest methods, `node --test` top-level tests); a skipped "
             "class counts once. Regenerate with `compat-tests/run.sh --target kbroker,kafka 1 2` "
             "(what `make test` runs).\n" % (now, total, ", ".join(labels), tp, tf, ts))
    o.append("| client / tool | test file | " + " | ".join(labels) + " |")
    o.append("|---|---|" + "---|" * len(labels))
    for rel in files:
        o.append("| %s | `%s` | %s |" % (client_of(rel), rel, " | ".join(cell(rel, lab) for lab in labels)))
    o.append("")
    o.append("Seconds per file and target are in run.sh's output; the logs of this run were in a "
             "`kb-compat-run.*` temp directory.\n")
    o.extend(matrix_section(rows))
    for lab in labels:
        secs = sum(r["secs"] for r in rows if r["label"] == lab)
        o.append("## %s (%d s)\n" % (lab, secs))
        fl = fails.get(lab, [])
        if fl:
            o.append("Failed:\n")
            o.extend("- %s" % x for x in fl)
            o.append("")
        reasons = [(reason, tests) for (l2, reason), tests in skips.items() if l2 == lab]
        if reasons:
            o.append("Skipped:\n")
            for reason, tests in sorted(reasons):
                per_file = {}
                for t in tests:
                    f, _, name = t.partition(": ")
                    per_file.setdefault(f, []).append(name)
                what = "; ".join("`%s` (%s)" % (f, ", ".join(sorted(n))) for f, n in sorted(per_file.items()))
                o.append("- %s — %s" % (what, reason))
            o.append("")
        xl = xfails.get(lab, {})
        if xl:
            o.append("Known kbroker differences from Kafka (expected failures, counted as skips):\n")
            # One line per file and reason: the security matrix alone has dozens of cells per reason.
            o.extend("- %s: %s — %s" % (rel, ", ".join(sorted(tests)), reason) for (rel, reason), tests in xl.items())
            o.append("")
        if not fl and not reasons and not xl:
            o.append("Everything passed, nothing skipped.\n")
    with open(out, "w") as f:
        f.write("\n".join(o).rstrip() + "\n")


if __name__ == "__main__":
    main()

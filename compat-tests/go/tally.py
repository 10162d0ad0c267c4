"""Tally of a Go test run for run.sh and lib/report.py, from `go tool test2json` events: one RESULT line like
lib/run_py.py's, a SKIP-REASON or XFAIL-REASON line per skipped test (a `differs` expected failure skips with
a message starting "XFAIL "), a FAIL line and the output of each failed test, and the lines that belong to no
test (with_broker.py's broker log tail, a panic).

Owns: turning test2json events into the harness's lines. Must not: decide what passes (go test does).
Counts every test and subtest (a parent of subtests counts too). Usage: tally.py EVENTS.json
"""

import json
import re
import sys

LOG_RE = re.compile(r"^\s+\w+\.go:\d+: (.*)$")


def main():
    passed = failed = skipped = 0
    output = {}
    out, loose = [], []
    for line in open(sys.argv[1], "rb").read().decode("utf-8", "replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            loose.append(line)  # not from test2json: with_broker.py's own lines
            continue
        name, action = ev.get("Test"), ev.get("Action")
        if not name:
            if action == "output" and not ev.get("Output", "").startswith(("PASS", "FAIL", "ok", "=== ")):
                loose.append(ev["Output"].rstrip("\n"))
            continue
        if action == "output":
            output.setdefault(name, []).append(ev["Output"].rstrip("\n"))
        elif action == "pass":
            passed += 1
        elif action == "fail":
            failed += 1
            out.append("FAIL: %s" % name)
            out.extend("  " + ln for ln in output.get(name, []) if not ln.startswith("=== "))
        elif action == "skip":
            skipped += 1
            msgs = [m.group(1) for m in map(LOG_RE.match, output.get(name, [])) if m]
            reason = " ".join((msgs[-1] if msgs else "(no reason given)").split())
            if reason.startswith("XFAIL "):
                out.append("XFAIL-REASON %s: %s" % (name, reason[len("XFAIL "):]))
            else:
                out.append("SKIP-REASON %s: %s" % (name, reason))
    # Loose lines (a broker log tail can be long) first: run.sh shows the end of this output.
    if failed or any("panic:" in ln for ln in loose):
        out = loose + out
    out.append("RESULT passed=%d failed=%d skipped=%d" % (passed, failed, skipped))
    print("\n".join(out))


if __name__ == "__main__":
    main()

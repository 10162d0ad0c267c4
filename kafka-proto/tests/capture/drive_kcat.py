#!/usr/bin/python3
"""Run the kcat scenarios of scenarios.json against the fake broker.

Usage: drive_kcat.py PORT RUNS_JSONL [--dry-run]
Appends one JSON line per run (client name/version, argv, stdin, exit code) to RUNS_JSONL.
--dry-run only prints the kcat command lines (used to document them in README.md).
"""
import json
import os
import re
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KCAT = "kcat"


def kcat_version():
    out = subprocess.run([KCAT, "-V"], capture_output=True, text=True).stdout
    kv = re.search(r"^Version (\S+)", out, re.M)
    lv = re.search(r"librdkafka (\S+)", out)
    return "kcat %s (librdkafka %s)" % (kv.group(1) if kv else "?", lv.group(1) if lv else "?")


def build(run, scen, bootstrap):
    common = ["-b", bootstrap, "-X", "client.id=" + run["id"]]
    if run["action"] == "metadata-list":
        return [KCAT, "-L"] + common, None
    recs = scen["record_sets"][run["records"]]["records"]
    headers = recs[0]["headers"]
    for r in recs:
        # kcat -H sets the same headers on every message and -K: needs a non-null key/value
        assert r["headers"] == headers and r["key"] is not None and r["value"] is not None
        assert ":" not in r["key"] and "\n" not in r["key"] + r["value"] and r["timestamp"] is None
    assert run["acks"] == -1
    argv = [KCAT, "-P"] + common + ["-t", scen["topic"], "-z", run["codec"], "-K:"]
    for k, v in headers:
        argv += ["-H", "%s=%s" % (k, v)]
    argv += ["-X", "acks=all",
             "-X", "request.timeout.ms=%d" % run["timeout_ms"],
             "-X", "linger.ms=100"]
    if run.get("idempotent"):
        argv += ["-X", "enable.idempotence=true"]
    stdin = "".join("%s:%s\n" % (r["key"], r["value"]) for r in recs)
    return argv, stdin


def main():
    port, runs_path = sys.argv[1], sys.argv[2]
    dry = "--dry-run" in sys.argv
    scen = json.load(open(os.path.join(HERE, "scenarios.json")))
    version = None if dry else kcat_version()
    rc_all = 0
    for run in scen["runs"]:
        if run["client"] != "kcat":
            continue
        argv, stdin = build(run, scen, "127.0.0.1:" + port)
        if dry:
            line = " ".join(shlex.quote(a) for a in argv)
            if stdin is not None:
                line = "printf %s | %s" % (shlex.quote(stdin.replace("\n", "\\n")), line)
            print(line)
            continue
        sys.stderr.write("[drive_kcat] %s: %s\n" % (run["id"], " ".join(shlex.quote(a) for a in argv)))
        p = subprocess.run(argv, input=stdin, text=True, capture_output=True, timeout=60)
        sys.stderr.write(p.stdout + p.stderr)
        rc_all |= p.returncode
        with open(runs_path, "a") as f:
            f.write(json.dumps({"run": run["id"], "client_name": "kcat", "client_version": version,
                                "argv": argv, "stdin": stdin, "exit_code": p.returncode}) + "\n")
    sys.exit(1 if rc_all else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Run the kafka-python scenarios of scenarios.json against the fake broker.

Must run with the Debian interpreter (/usr/bin/python3), which has kafka-python.
Usage: /usr/bin/python3 drive_kafka_python.py PORT RUNS_JSONL
Appends one JSON line per run (client name/version, settings, exit status) to RUNS_JSONL.
"""
import json
import logging
import os
import sys

import kafka
from kafka import KafkaProducer

HERE = os.path.dirname(os.path.abspath(__file__))


def enc(s):
    return None if s is None else s.encode("utf-8")


def main():
    port, runs_path = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[kafka-python] %(levelname)s %(name)s: %(message)s")
    scen = json.load(open(os.path.join(HERE, "scenarios.json")))
    failed = False
    for run in scen["runs"]:
        if run["client"] != "kafka-python":
            continue
        assert run["acks"] == -1 and not run.get("idempotent")
        settings = dict(
            bootstrap_servers="127.0.0.1:" + port,
            client_id=run["id"],
            acks="all",                      # -> acks -1 on the wire
            compression_type=None if run["codec"] == "none" else run["codec"],
            request_timeout_ms=run["timeout_ms"],  # kafka-python puts this in Produce.timeout
            linger_ms=100,
            api_version=None,                # auto-detect (probes the broker)
        )
        status = "ok"
        try:
            p = KafkaProducer(**settings)
            futures = []
            for r in scen["record_sets"][run["records"]]["records"]:
                futures.append(p.send(scen["topic"], key=enc(r["key"]), value=enc(r["value"]),
                                      headers=[(k, enc(v)) for k, v in r["headers"]],
                                      partition=scen["partition"], timestamp_ms=r["timestamp"]))
            p.flush(timeout=20)
            for f in futures:
                md = f.get(timeout=20)
                sys.stderr.write("[kafka-python] %s: acked %s\n" % (run["id"], md))
            p.close(timeout=5)
        except Exception as ex:  # record and continue with the next run
            status = "error: %r" % (ex,)
            failed = True
        settings_out = dict(settings, bootstrap_servers="127.0.0.1:PORT")
        with open(runs_path, "a") as f:
            f.write(json.dumps({"run": run["id"], "client_name": "kafka-python",
                                "client_version": kafka.__version__,
                                "settings": settings_out, "explicit_partition": scen["partition"],
                                "status": status}) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

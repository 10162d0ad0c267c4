#!/usr/bin/python3
"""Select the interesting frames of a capture session and write MANIFEST.json.

Usage: build_manifest.py WORK_DIR DEST_DIR
  WORK_DIR: holds frames/ (fake_broker.py output: *.bin, index.jsonl, broker.json)
            and runs.jsonl (one line per client run, written by the drivers)
  DEST_DIR: tests/data/captures; its old *.bin and MANIFEST.json are replaced.

Sources of the manifest fields:
  - api_key / api_version / correlation_id / client_id / size: the fake broker's
    parse of the request header (index.jsonl), which the verifier re-checks;
  - client name/version: what the client library reported (runs.jsonl);
  - Produce acks/timeout/topic/partition/codec/records and the expected producer
    id/epoch/sequence: what scenarios.json asked the client to send (NOT parsed
    back from the bytes).
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    work, dest = sys.argv[1], sys.argv[2]
    frames = os.path.join(work, "frames")
    scen = json.load(open(os.path.join(HERE, "scenarios.json")))
    broker = json.load(open(os.path.join(frames, "broker.json")))
    index = [json.loads(l) for l in open(os.path.join(frames, "index.jsonl"))]
    runs_info = {}
    for l in open(os.path.join(work, "runs.jsonl")):
        r = json.loads(l)
        runs_info[r["run"]] = r

    os.makedirs(dest, exist_ok=True)
    for f in os.listdir(dest):
        if f.endswith(".bin") or f == "MANIFEST.json":
            os.remove(os.path.join(dest, f))

    entries = []
    problems = []
    for run in scen["runs"]:
        rid = run["id"]
        info = runs_info.get(rid)
        if info is None:
            problems.append("%s: client did not run" % rid)
            continue
        if info.get("status", "ok") != "ok" or info.get("exit_code", 0) != 0:
            problems.append("%s: client reported failure: %s" % (rid, info.get("status", info.get("exit_code"))))
        frames_of_run = sorted((e for e in index if e["client_label"] == rid), key=lambda e: e["seq"])
        if not frames_of_run:
            problems.append("%s: no frames recorded" % rid)
            continue
        conns = []
        for e in frames_of_run:
            if e["conn"] not in conns:
                conns.append(e["conn"])
        keep = set(run.get("keep", ["ApiVersions", "Metadata", "InitProducerId", "Produce"]))
        seen_apiv = set()
        seen_meta = set()
        recs = scen["record_sets"].get(run.get("records"), {}).get("records")
        produce_count = 0
        for e in frames_of_run:
            name = e["api_name"]
            if name not in keep:
                continue
            if name == "ApiVersions":
                if e["api_version"] in seen_apiv:
                    continue
                seen_apiv.add(e["api_version"])
            if name == "Metadata":
                # distinct request = same version and same bytes after the client id
                body = open(os.path.join(frames, e["file"]), "rb").read()[10 + len(e["client_id"] or ""):]
                k = (e["api_version"], body)
                if k in seen_meta:
                    continue
                seen_meta.add(k)
            shutil.copyfile(os.path.join(frames, e["file"]), os.path.join(dest, e["file"]))
            ent = {
                "file": e["file"],
                "run": rid,
                "client": {"name": info["client_name"], "version": info["client_version"]},
                "size": e["size"],
                "sha256": e["sha256"],
                "api_key": e["api_key"],
                "api_name": name,
                "api_version": e["api_version"],
                "correlation_id": e["correlation_id"],
                "client_id": e["client_id"],
                "connection": conns.index(e["conn"]) + 1,
                "seq_in_run": e["seq"],
            }
            if name == "Produce":
                produce_count += 1
                idem = bool(run.get("idempotent"))
                bp = {"producer_id": 1000, "producer_epoch": 0, "base_sequence": 0} if idem else \
                    {"producer_id": -1, "producer_epoch": -1, "base_sequence": -1}
                bp.update(run.get("expected_batch_producer", {}))
                ent["produce"] = {
                    "transactional_id": None,
                    "acks": run["acks"],
                    "timeout_ms": run["timeout_ms"],
                    "topic": scen["topic"],
                    "partition": scen["partition"],
                    "codec": run["codec"],
                    "idempotent": idem,
                    "expected_producer_id": bp["producer_id"],
                    "expected_producer_epoch": bp["producer_epoch"],
                    "expected_base_sequence": bp["base_sequence"],
                    "records": recs,
                }
            if name == "InitProducerId":
                ent["init_producer_id"] = {"transactional_id": None}
            entries.append(ent)
        if run["action"] == "produce" and produce_count != 1:
            problems.append("%s: expected exactly 1 Produce request, got %d" % (rid, produce_count))

    clients = {}
    for r in runs_info.values():
        clients[r["client_name"]] = r["client_version"]
    manifest = {
        "description": "Request frames sent by real Kafka clients to tests/capture/fake_broker.py. "
                       "Each .bin file is one request frame without its 4-byte size prefix "
                       "(header + body). Regenerate with tests/capture/capture_all.sh.",
        "field_sources": {
            "api_key, api_version, correlation_id, client_id, size": "request header as recorded by the fake broker",
            "client": "name and version string reported by the client library",
            "produce.*": "what the capture script asked the client to send (tests/capture/scenarios.json)",
            "records[].timestamp": "explicit create timestamp in ms given to the client; null = client used the current time",
            "records[].headers": "[key, value] pairs in send order; kcat applies the same -H headers to every message",
        },
        "notes": [
            "All Produce batches are magic 2. One record batch per Produce request; record offsets deltas 0..n-1.",
            "Idempotent runs got producer id 1000 epoch 0 from InitProducerId, so their batch carries "
            "producerId 1000, producerEpoch 0, baseSequence 0; others carry -1/-1/-1, except "
            "non-idempotent KafkaJS, which writes producerId -1 with producerEpoch 0 and baseSequence 0.",
            "The fake broker advertised the ranges in broker_advertised (Kafka 3.x-like minimums).",
        ],
        "clients": clients,
        "broker_advertised": broker["advertised"],
        "files": entries,
    }
    with open(os.path.join(dest, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("build_manifest: %d files -> %s" % (len(entries), dest))
    for p in problems:
        print("build_manifest: PROBLEM: " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

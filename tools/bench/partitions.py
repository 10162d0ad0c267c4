#!/usr/bin/env python3
"""Start/stop time and memory of a broker with many partitions (docs/performance.md, "Many partitions").

Creates N single-partition topics (or --per-topic P partitions each) on a fresh data dir under a given
RLIMIT_NOFILE, optionally produces one record to every partition and reads them all back, then measures a
clean stop (SIGTERM to exit), a start (exec to the "ready" log line) and a second stop. Figures, not a test:
nothing is asserted beyond the produce/read-back check.

  tools/bench/partitions.py --partitions 10000 [--per-topic 1] [--nofile 4096] [--shards 2] [--verify]
"""

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
READY = re.compile(rb"kbroker ready: listening on PLAINTEXT://[0-9.]+:(\d+)")


def start(args, data, log):
    lim = args.nofile

    def pre():
        resource.setrlimit(resource.RLIMIT_NOFILE, (lim, lim))
    argv = [args.broker, "--set", "listeners=PLAINTEXT://127.0.0.1:0", "--set", "log.dirs=%s" % data,
            "--set", "shards=%d" % args.shards]
    off = os.path.getsize(log) if os.path.exists(log) else 0
    fh = open(log, "ab")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=fh, stderr=fh, stdin=subprocess.DEVNULL, preexec_fn=pre)
    while True:
        with open(log, "rb") as f:
            f.seek(off)
            m = READY.search(f.read())
        if m:
            return p, int(m.group(1)), time.monotonic() - t0
        if p.poll() is not None:
            sys.exit("broker exited with %s; see %s" % (p.returncode, log))
        time.sleep(0.01)


def stop(p):
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    rc = p.wait()
    if rc != 0:
        sys.exit("broker exited with %d on SIGTERM" % rc)
    return time.monotonic() - t0


def status(p):
    rss = 0
    with open("/proc/%d/status" % p.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir("/proc/%d/fd" % p.pid))


def idle_cpu(p, seconds=5.0):
    """CPU share the idle broker uses (its periodic per-partition work), over `seconds`."""
    def ticks():
        with open("/proc/%d/stat" % p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    hz = os.sysconf("SC_CLK_TCK")
    t0, c0 = time.monotonic(), ticks()
    time.sleep(seconds)
    return (ticks() - c0) / hz / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=10000)
    ap.add_argument("--per-topic", type=int, default=1)
    ap.add_argument("--nofile", type=int, default=4096)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--dir", default=None, help="parent of the data dir (default /var/tmp)")
    ap.add_argument("--broker", default=os.path.join(REPO, "build", "bin", "kbroker"))
    ap.add_argument("--verify", action="store_true", help="produce one record per partition and read all back")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    from confluent_kafka.admin import AdminClient, NewTopic

    root = tempfile.mkdtemp(prefix="kb-parts-", dir=args.dir or "/var/tmp")
    data, log = os.path.join(root, "data"), os.path.join(root, "broker.log")
    ntopics = (args.partitions + args.per_topic - 1) // args.per_topic
    topics = ["p%06d" % i for i in range(ntopics)]
    try:
        p, port, t_start0 = start(args, data, log)
        bs = "127.0.0.1:%d" % port
        a = AdminClient({"bootstrap.servers": bs})
        t0 = time.monotonic()
        for i in range(0, ntopics, 1000):
            fs = a.create_topics([NewTopic(t, args.per_topic, 1) for t in topics[i:i + 1000]],
                                 operation_timeout=600, request_timeout=600)
            for f in fs.values():
                f.result()
        t_create = time.monotonic() - t0
        print("created %d topics x %d partitions in %.1f s" % (ntopics, args.per_topic, t_create), flush=True)
        if args.verify:
            verify(bs, topics, args.per_topic, "first run")
        rss, fds = status(p)
        print("after creation: RSS %.0f MiB, %d open fds" % (rss / 2**20, fds), flush=True)
        print("stop #1: %.2f s" % stop(p), flush=True)
        p, port, t_start = start(args, data, log)
        rss, fds = status(p)
        print("start: %.2f s (RSS %.0f MiB, %d open fds)" % (t_start, rss / 2**20, fds), flush=True)
        print("idle CPU after start: %.1f%% of one core" % (100 * idle_cpu(p)), flush=True)
        if args.verify:
            verify("127.0.0.1:%d" % port, topics, args.per_topic, "after restart")
            rss, fds = status(p)
            print("after reading every partition: RSS %.0f MiB, %d open fds" % (rss / 2**20, fds), flush=True)
        print("stop #2: %.2f s" % stop(p), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print("kept", root)


def verify(bs, topics, per_topic, what, chunk=2000):
    """One record to every partition (acks=all), then every partition read back from offset 0.

    Raw Produce v3 / Fetch v4 requests with `chunk` partitions each, through kafka-python's codecs: a
    librdkafka producer with 100,000 partitions spends its time scanning its own partition list (its thread
    at ~90% CPU while the broker idles), which would measure the client, not the broker."""
    import socket
    from kafka.protocol.fetch import FetchRequest
    from kafka.protocol.parser import KafkaProtocol
    from kafka.protocol.produce import ProduceRequest
    from kafka.record.memory_records import MemoryRecordsBuilder, MemoryRecords
    host, port = bs.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=600)
    proto = KafkaProtocol(client_id="bench-partitions")

    def call(req):
        proto.send_request(req)
        sock.sendall(proto.send_bytes())
        while True:
            data = sock.recv(1 << 22)
            if not data:
                sys.exit("%s: connection closed" % what)
            got = proto.receive_bytes(data)
            if got:
                return got[0][1]
    tps = [(t, part) for t in topics for part in range(per_topic)]
    t0 = time.monotonic()
    for i in range(0, len(tps), chunk):
        by_topic = {}
        for t, part in tps[i:i + chunk]:
            b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
            b.append(timestamp=None, key=None, value=b"%s/%d" % (t.encode(), part), headers=[])
            b.close()
            by_topic.setdefault(t, []).append((part, bytes(b.buffer())))
        r = call(ProduceRequest[3](transactional_id=None, required_acks=-1, timeout=600000,
                                   topics=list(by_topic.items())))
        bad = [(tp[0], p[0], p[1]) for tp in r.topics for p in tp[1] if p[1] != 0]
        if bad:
            sys.exit("%s: produce errors %s" % (what, bad[:5]))
    t1 = time.monotonic()
    n = 0
    for i in range(0, len(tps), chunk):
        by_topic = {}
        for t, part in tps[i:i + chunk]:
            by_topic.setdefault(t, []).append((part, 0, 1 << 16))
        r = call(FetchRequest[4](replica_id=-1, max_wait_time=0, min_bytes=0, max_bytes=1 << 30,
                                 isolation_level=0, topics=list(by_topic.items())))
        for t, parts in r.topics:
            for p in parts:
                if p[1] != 0:
                    sys.exit("%s: fetch error %d on %s-%d" % (what, p[1], t, p[0]))
                recs = MemoryRecords(p[-1])
                vals = []
                while recs.has_next():
                    vals += [x.value for x in recs.next_batch()]
                if vals[:1] != [b"%s/%d" % (t.encode(), p[0])]:
                    sys.exit("%s: %s-%d read back %r" % (what, t, p[0], vals[:2]))
                n += 1
    sock.close()
    print("%s: produced to %d partitions in %.1f s (acks=all, %d per request), read %d back in %.2f s"
          % (what, len(tps), t1 - t0, chunk, n, time.monotonic() - t1), flush=True)


if __name__ == "__main__":
    main()

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


def verify(bs, topics, per_topic, what):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
    t0 = time.monotonic()
    prod = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 50, "message.timeout.ms": 600000,
                     "queue.buffering.max.messages": 2000000})
    errs = []

    def dr(err, msg):
        if err:
            errs.append(err)
    for t in topics:
        for part in range(per_topic):
            prod.produce(t, value=b"%s/%d" % (t.encode(), part), partition=part, on_delivery=dr)
            prod.poll(0)
    left = prod.flush(600)
    if left or errs:
        sys.exit("%s: %d undelivered, %d errors (first: %s)" % (what, left, len(errs), errs[:1]))
    t1 = time.monotonic()
    c = Consumer({"bootstrap.servers": bs, "group.id": "bench", "enable.partition.eof": True,
                  "fetch.wait.max.ms": 100, "enable.auto.commit": False})
    tps = [TopicPartition(t, part, OFFSET_BEGINNING) for t in topics for part in range(per_topic)]
    c.assign(tps)
    want = len(tps)
    eof, n = set(), 0
    deadline = time.monotonic() + 600
    while len(eof) < want and time.monotonic() < deadline:
        for m in c.consume(100000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add((m.topic(), m.partition()))
                    continue
                sys.exit("%s: consume error %s" % (what, m.error()))
            n += 1
    c.close()
    if len(eof) < want:
        sys.exit("%s: only %d of %d partitions reached their end" % (what, len(eof), want))
    print("%s: produced to %d partitions in %.1f s, read %d records back in %.1f s"
          % (what, want, t1 - t0, n, time.monotonic() - t1), flush=True)


if __name__ == "__main__":
    main()

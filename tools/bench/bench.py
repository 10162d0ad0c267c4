#!/usr/bin/python3
"""`make bench`: kbroker and Apache Kafka side by side (issue 14), same run, same disk, same clients.

Owns: the benchmark plan (broker settings x workloads x clients), starting each broker one after the other on
fresh data dirs under BENCH_DIR, running kbench (librdkafka) and Kafka's own Java tools (ProducerPerformance,
ConsumerPerformance, EndToEndLatency) against each, the broker's CPU time and memory from /proc, the machine's
limits (loopback TCP, O_DIRECT write, fdatasync), the soak with its latency-over-time plot, and the report
(printed, and REPORT.md / results.json / soak.png under BENCH_OUT).
Must not: start Apache Kafka any other way than compat-tests/lib/kafka_ref.py, report a figure it did not
measure (a failed run shows as failed), leave a broker, a JVM or a data dir behind, or change a broker's
defaults beyond the settings named in the plan.

    tools/bench/bench.py [BUILD_DIR]

Environment: BENCH_QUICK=1 (a reduced plan with short runs, to check the harness in ~5 min), BENCH_SECONDS
(measured seconds per run), BENCH_SOAK_SECONDS, BENCH_DIR (parent of the data dirs, default /var/tmp),
BENCH_OUT (default BUILD_DIR/bench), BENCH_PARTS (comma list of limits,main,tls,pinned,partitions,soak; default
all), BENCH_SETTINGS (comma list of kb,kbns,kf1,kf; default all), BENCH_WORKLOADS (comma list of
produce,consume,e2e,roundtrip: the kinds of workload the main, tls and pinned passes run; default all), e.g.
BENCH_PARTS=main BENCH_SETTINGS=kb,kf1 BENCH_WORKLOADS=consume for the consume rows only.

The tls part runs the main pass's produce and consume workloads (same sizes, kbench only) against an SSL
listener of each broker (a throwaway PKI made with openssl, PEM key store) and reports, beside each figure,
the share of the plaintext figure of the same run that is left over TLS.
"""

import json
import math
import mmap
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "compat-tests", "lib"))
import kafka_ref  # noqa: E402  (the shared Apache Kafka launcher)

TOOLS_POM = os.path.join(HERE, "kafka-tools", "pom.xml")
HZ = os.sysconf("SC_CLK_TCK")

# What bin/kafka-server-start.sh and kafka-run-class.sh give a broker: the JVM a Kafka user runs, not the
# quick-start flags the compat suite uses.
KAFKA_BROKER_JVM = ["-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                    "-XX:MaxInlineLevel=15"]
# bin/kafka-producer-perf-test.sh and friends: 512 MB heap, the same GC flags.
KAFKA_TOOL_JVM = ["-Xmx512M", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                  "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                  "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true"]

# The four broker settings; pairs of equal durability are compared.
SETTINGS = {
    "kb": ("kbroker", "kbroker (fsync before ack, default)", {}),
    "kbns": ("kbroker", "kbroker flush.sync.acks=false", {"flush.sync.acks": "false"}),
    "kf1": ("kafka", "Kafka flush.messages=1", {"log.flush.interval.messages": "1"}),
    "kf": ("kafka", "Kafka defaults", {}),
}
# (numerator, denominator, column title)
RATIOS = [("kb", "kf1", "ratio, both durable (kb / kf1)"),
          ("kbns", "kf", "ratio, neither syncs (kbns / kf)"),
          ("kb", "kf", "ratio, kbroker durable / Kafka defaults (kb / kf)")]


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Config:
    def __init__(self, build):
        env = os.environ
        self.build = os.path.abspath(build)
        self.quick = env.get("BENCH_QUICK") == "1"
        self.secs = float(env.get("BENCH_SECONDS") or (2 if self.quick else 4))
        self.soak = float(env.get("BENCH_SOAK_SECONDS") or (20 if self.quick else 600))
        self.dir = env.get("BENCH_DIR") or "/var/tmp"
        self.out = os.path.abspath(env.get("BENCH_OUT") or os.path.join(self.build, "bench"))
        self.parts = (env.get("BENCH_PARTS") or "limits,main,tls,pinned,partitions,soak").split(",")
        self.settings = (env.get("BENCH_SETTINGS") or "kb,kbns,kf1,kf").split(",")
        self.workloads = (env.get("BENCH_WORKLOADS") or "produce,consume,e2e,roundtrip").split(",")
        for w in self.workloads:
            if w not in ("produce", "consume", "e2e", "roundtrip"):
                sys.exit("bench: unknown workload %r in BENCH_WORKLOADS (known: produce,consume,e2e,roundtrip)" % w)
        for s in self.settings:
            if s not in SETTINGS:
                sys.exit("bench: unknown setting %r in BENCH_SETTINGS (known: %s)" % (s, ",".join(SETTINGS)))
        self.kbroker = os.path.join(self.build, "bin", "kbroker")
        self.kbench = os.path.join(self.build, "bin", "kbench")
        for b in (self.kbroker, self.kbench):
            if not os.access(b, os.X_OK):
                sys.exit("bench: no %s (build first)" % b)
        # produce: (message size, partitions, producers); 8 producers on 16 partitions only, where they
        # spread (on one partition they measure the clients' contention, on 256 the same as on 16 twice).
        if self.quick:
            self.produces = [(100, 16, 1), (1024, 16, 1)]
            self.consumes, self.rates, self.many = [1024], [50000], 1000
            self.pinned_produces, self.roundtrip = [(1024, 16, 1)], False
        else:
            self.produces = [(size, parts, 1) for size in (100, 1024) for parts in (1, 16, 256)] + [
                (100, 16, 8), (1024, 16, 8)]
            self.consumes, self.rates, self.many = [100, 1024], [10000, 50000, 100000], 10000
            self.pinned_produces, self.roundtrip = [(1024, 16, 1)], True
        if "produce" not in self.workloads:
            self.produces, self.pinned_produces = [], []
        if "consume" not in self.workloads:
            self.consumes = []
        if "e2e" not in self.workloads:
            self.rates = []
        if "roundtrip" not in self.workloads:
            self.roundtrip = False
        self.soak_interval = 2.0 if self.quick else 10.0


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread, io_uring workers included), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def memory(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


# ---------------------------------------------------------------- brokers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_settings(pki):
    """An SSL listener (PEM key store, no client certificates) beside PLAINTEXT, as either broker reads it."""
    return {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
        "listener.name.ssl.ssl.keystore.type": "PEM",
        "listener.name.ssl.ssl.keystore.location": os.path.join(pki, "server-keystore.pem"),
    }


class Kbroker:
    kind = "kbroker"

    def __init__(self, cfg, settings, cpus=None, ssl_port=None):
        self.cfg, self.settings, self.cpus, self.ssl_port = cfg, dict(settings), cpus, ssl_port
        self.root = tempfile.mkdtemp(prefix="kbench-kbroker-", dir=cfg.dir)
        self.proc = None

    def start(self):
        data = os.path.join(self.root, "data")
        os.mkdir(data)
        self.log_path = os.path.join(self.root, "kbroker.log")
        listeners = "PLAINTEXT://127.0.0.1:0" + (",SSL://127.0.0.1:%d" % self.ssl_port if self.ssl_port else "")
        argv = [self.cfg.kbroker, "--set", "listeners=" + listeners, "--set", "log.dirs=" + data]
        for k, v in self.settings.items():
            argv += ["--set", "%s=%s" % (k, v)]
        if self.cpus is not None:
            argv = ["taskset", "-c", self.cpus] + argv
        fh = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=fh, stderr=fh, stdin=subprocess.DEVNULL)
        fh.close()
        deadline = time.monotonic() + 30
        rx = re.compile(r"kbroker ready: listening on PLAINTEXT://127\.0\.0\.1:(\d+)")
        while True:
            m = rx.search(open(self.log_path, errors="replace").read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kbroker did not start: %s" % open(self.log_path).read()[-2000:])
            time.sleep(0.05)
        self.pid = self.proc.pid
        self.bootstrap = "127.0.0.1:%d" % self.port
        if self.ssl_port:
            self.client_bootstrap = "127.0.0.1:%d" % self.ssl_port
        return self

    def stop(self, timeout=120.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


class Kafka:
    kind = "kafka"

    def __init__(self, cfg, settings, cpus=None, ssl_port=None):
        self.cfg, self.cpus, self.ssl_port = cfg, cpus, ssl_port
        ref_class = kafka_ref.KafkaRef
        if ssl_port:
            # Fixed ports for both client listeners: the reference learns an ephemeral port from the log,
            # which would then be the SSL one.
            self.plain_port = plain = free_port()

            class TlsKafka(kafka_ref.KafkaRef):
                def _properties(inner):
                    inner.settings["listeners"] = "PLAINTEXT://%s:%d,SSL://%s:%d,CONTROLLER://%s:%d" % (
                        inner.host, plain, inner.host, ssl_port, inner.host, inner.controller_port)
                    inner.settings["advertised.listeners"] = "PLAINTEXT://%s:%d,SSL://%s:%d" % (
                        inner.host, plain, inner.host, ssl_port)
                    return kafka_ref.KafkaRef._properties(inner)
            ref_class = TlsKafka
        self.ref = ref_class(settings=settings, base_dir=cfg.dir, jvm_opts=KAFKA_BROKER_JVM, ready_timeout=180)

    def start(self):
        self.ref.start()
        self.pid = self.ref.proc.pid  # java itself: Popen runs it without a shell
        self.bootstrap = self.ref.bootstrap
        if self.ssl_port:
            self.bootstrap = "127.0.0.1:%d" % self.plain_port
            self.client_bootstrap = "127.0.0.1:%d" % self.ssl_port
        if self.cpus is not None:
            # Every existing thread; threads started later inherit the mask from their creator.
            subprocess.run(["taskset", "-a", "-p", "-c", self.cpus, str(self.pid)], check=True,
                           stdout=subprocess.DEVNULL)
        return self

    def stop(self, timeout=60.0):
        self.ref.stop(timeout)
        self.ref.cleanup()


def make_broker(cfg, key, cpus=None, tls_pki=None):
    kind, _, settings = SETTINGS[key]
    ssl_port = None
    if tls_pki:
        ssl_port = free_port()
        settings = dict(settings, **tls_settings(tls_pki))
    return (Kbroker if kind == "kbroker" else Kafka)(cfg, settings, cpus, ssl_port)


# ---------------------------------------------------------------- clients


class Clients:
    def __init__(self, cfg):
        self.cfg = cfg
        self.tools_cp = None
        self.log4j = os.path.join(cfg.out, "tools-log4j2.properties")
        with open(self.log4j, "w") as f:
            f.write("status = error\nappender.err.type = Console\nappender.err.name = ERR\n"
                    "appender.err.target = SYSTEM_ERR\nappender.err.layout.type = PatternLayout\n"
                    "appender.err.layout.pattern = %p %m (%c)%n\nrootLogger.level = WARN\n"
                    "rootLogger.appenderRef.err.ref = ERR\n")
        self.pin = None  # "0" in the pinned pass
        self.xprops = []  # kbench -X arguments (the tls pass)

    def _prefix(self):
        return ["taskset", "-c", self.pin] if self.pin is not None else []

    def kbench(self, broker, mode, *args, timeout=None, stderr_lines=None):
        # A broker with an SSL listener is measured through it (client_bootstrap); admin calls stay on
        # PLAINTEXT.
        bootstrap = getattr(broker, "client_bootstrap", None) if self.xprops else None
        argv = self._prefix() + [self.cfg.kbench, mode, "--bootstrap", bootstrap or broker.bootstrap, "--json"] + [
            str(a) for a in args] + self.xprops
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout or (self.cfg.secs * 4 + 180))
        except subprocess.TimeoutExpired as e:
            if stderr_lines is not None and e.stderr:
                stderr_lines.extend(e.stderr.decode(errors="replace").splitlines())
            raise RuntimeError("kbench %s not done after %.0f s (the broker fell behind the schedule?)"
                               % (mode, e.timeout))
        err = p.stderr.decode(errors="replace")
        if stderr_lines is not None:
            stderr_lines.extend(err.splitlines())
        try:
            r = json.loads(p.stdout.decode())["results"][0]
        except (ValueError, KeyError, IndexError):
            raise RuntimeError("kbench %s exited %d: %s" % (mode, p.returncode, err[-600:]))
        if not r.get("ok"):
            raise RuntimeError("kbench %s: %s" % (mode, r.get("error", "failed")))
        if r.get("errors"):
            raise RuntimeError("kbench %s: %d errors" % (mode, r["errors"]))
        return r

    def _java(self, main, args, timeout):
        if self.tools_cp is None:
            self.tools_cp = kafka_ref.resolve_classpath(pom=TOOLS_POM)
        argv = self._prefix() + ["java"] + KAFKA_TOOL_JVM + ["-Dlog4j2.configurationFile=" + self.log4j, "-cp",
                                                            self.tools_cp, "org.apache.kafka.tools." + main]
        return argv + [str(a) for a in args]

    def java(self, main, args, timeout):
        p = subprocess.run(self._java(main, args, timeout), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            raise RuntimeError("%s exited %d: %s" % (main, p.returncode, out[-600:]))
        return out

    def perf_timed(self, arglists, warmup, secs):
        """ProducerPerformance processes for a fixed time: it stops only after a record count, and a count
        sized for one broker or client runs for minutes on another. Each prints a line per second; the
        first `warmup` seconds of lines are left out, the processes are stopped after warmup + secs.
        Returns each process's records/s."""
        procs = [subprocess.Popen(self._java("ProducerPerformance", a + ["--reporting-interval", 1000], 0),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for a in arglists]
        lines = [[] for _ in procs]

        def reader(i, p):
            for ln in p.stdout:
                lines[i].append((time.monotonic(), ln.decode(errors="replace")))
        ths = [threading.Thread(target=reader, args=(i, p), daemon=True) for i, p in enumerate(procs)]
        for t in ths:
            t.start()
        start = time.monotonic()
        rx = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec")
        try:
            # The clock starts at each process's first interval line (JVM start and metadata are not timed).
            while True:
                firsts = [next((t for t, ln in ls if rx.match(ln)), None) for ls in lines]
                if all(f is not None for f in firsts) and time.monotonic() >= max(firsts) + warmup + secs:
                    break
                dead = [p for p in procs if p.poll() is not None]
                if dead and len(dead) == len(procs):
                    break
                if time.monotonic() - start > warmup + secs + 120:
                    raise RuntimeError("ProducerPerformance printed no progress in %.0f s" % (warmup + secs + 120))
                time.sleep(0.1)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for t in ths:
                t.join(5)
        rates = []
        for ls in lines:
            iv = [(t, ln) for t, ln in ls if rx.match(ln)]
            if not iv:
                raise RuntimeError("ProducerPerformance: no progress line: %s" % "".join(x[1] for x in ls)[-600:])
            t0 = iv[0][0]
            use = [ln for t, ln in iv if t > t0 + warmup - 0.5] or [iv[-1][1]]
            sent = sum(int(rx.match(ln).group(1)) for ln in use)
            secs_used = sum(int(rx.match(ln).group(1)) / max(float(rx.match(ln).group(2)), 1e-9) for ln in use)
            rates.append(sent / secs_used if secs_used > 0 else 0.0)
        return rates


PERF_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                          r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def parse_perf(out, size):
    ms = PERF_SUMMARY.findall(out)
    if not ms:
        raise RuntimeError("no ProducerPerformance summary in: %s" % out[-600:])
    n, rps, _, avg, mx, p50, p95, p99, p999 = ms[-1]
    # Its MB is 2^20 bytes: payload bytes per second as kbench counts them (10^6) instead.
    return {"msg_per_s": float(rps), "mb_per_s": float(rps) * size / 1e6, "p50": float(p50) * 1e3,
            "p99": float(p99) * 1e3, "p99.9": float(p999) * 1e3, "max": float(mx) * 1e3, "msgs": int(n)}


# ---------------------------------------------------------------- admin


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})


def create_topic(bootstrap, name, partitions, timeout=300):
    from confluent_kafka.admin import NewPartitions, NewTopic
    a = admin(bootstrap)
    # Kafka's controller refuses one operation of more than 10,000 metadata records ("excessively large
    # batch operation"), which a 10,000-partition topic is: larger topics grow by CreatePartitions.
    first = min(partitions, 5000)
    fs = a.create_topics([NewTopic(name, first, 1)], operation_timeout=timeout, request_timeout=timeout)
    fs[name].result(timeout=timeout + 30)
    if partitions > first:
        fs = a.create_partitions([NewPartitions(name, partitions)], operation_timeout=timeout,
                                 request_timeout=timeout)
        fs[name].result(timeout=timeout + 30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = a.list_topics(timeout=30)
        t = md.topics.get(name)
        if t and not t.error and len(t.partitions) == partitions and all(
                p.leader >= 0 for p in t.partitions.values()):
            if partitions <= 256:
                end_offsets(bootstrap, name)  # waits out Kafka's NOT_LEADER of the first moments
            return
        time.sleep(0.2)
    raise RuntimeError("topic %s: no leader for every partition after %d s" % (name, timeout))


def delete_topic(bootstrap, name):
    try:
        a = admin(bootstrap)  # must outlive the future: destroying it fails or strands the request
        a.delete_topics([name], operation_timeout=60, request_timeout=60)[name].result(timeout=90)
    except Exception as e:  # noqa: BLE001 - only disk space is at stake
        log("delete %s: %s" % (name, e))


def end_offsets(bootstrap, name):
    """Messages in the topic: the sum of its partitions' high watermarks (topics here are never trimmed)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-offsets", "enable.auto.commit": False,
                  "log_level": 3})
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                md = c.list_topics(name, timeout=30)
                total = 0
                for p in md.topics[name].partitions:
                    lo, hi = c.get_watermark_offsets(TopicPartition(name, p), timeout=30)
                    total += hi
                return total
            except KafkaException:
                # Kafka answers NOT_LEADER for a moment after a new topic's metadata shows its leaders.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        c.close()


# ---------------------------------------------------------------- results


class Results:
    """(section, workload, client, figure, unit, better) -> {setting: value or 'failed: ...'}"""

    def __init__(self):
        self.rows = {}
        self.order = []
        self.notes = []

    def put(self, section, workload, client, figure, better, setting, value):
        k = (section, workload, client, figure, better)
        if k not in self.rows:
            self.rows[k] = {}
            self.order.append(k)
        self.rows[k][setting] = value

    def fail(self, section, workload, client, setting, why):
        self.put(section, workload, client, "(run)", "", setting, "failed: %s" % why.replace("\n", " ")[:160])


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


# ---------------------------------------------------------------- workloads


class Bench:
    def __init__(self, cfg):
        self.cfg = cfg
        os.makedirs(cfg.out, exist_ok=True)
        self.c = Clients(cfg)
        self.res = Results()
        self.limits = {}
        self.commands = []
        self.soak_series, self.soak_lines = {}, {}
        self.peak = {}
        self.seq = 0

    def topic(self, stem):
        self.seq += 1
        return "%s-%d" % (stem, self.seq)

    def cmd(self, line):
        if line not in self.commands:
            self.commands.append(line)

    def guarded(self, section, workload, client, setting, fn):
        t0 = time.monotonic()
        try:
            r = fn()
            log("%s / %s / %s: %.0f s" % (setting, workload, client, time.monotonic() - t0))
            return r
        except Exception as e:  # noqa: BLE001 - one failed run must not end the benchmark
            log("FAILED %s / %s / %s: %s" % (workload, client, setting, e))
            self.res.fail(section, workload, client, setting, str(e))
            return None

    def with_cpu(self, broker, fn):
        c0 = cpu_seconds(broker.pid)
        r = fn()
        return r, cpu_seconds(broker.pid) - c0

    # ---- produce
    def produce(self, broker, key, section, size, parts, prods, java=True):
        s = self.cfg.secs
        w = "produce %s, %d partition%s, %d producer%s" % ("100 B" if size == 100 else "1 KiB", parts,
                                                           "s" if parts > 1 else "", prods, "s" if prods > 1 else "")
        t = self.topic("p%d-%dp-%dx" % (size, parts, prods))
        create_topic(broker.bootstrap, t, parts)
        fig = "msg/s" if size == 100 else "MB/s"

        def kb():
            n0 = end_offsets(broker.bootstrap, t)
            r, cpu = self.with_cpu(broker, lambda: self.c.kbench(
                broker, "produce", "--topic", t, "--partitions", parts, "--msg-size", size, "--acks", "all",
                "--producers", prods, "--duration", s, "--warmup", 1))
            nbytes = (end_offsets(broker.bootstrap, t) - n0) * size
            self.put_produce(section, w, "kbench", key, r["msg_per_s"], r["mb_per_s"], cpu, nbytes, fig)
            if section == "main":
                self.peak[(key, size, parts, prods)] = r["msg_per_s"]
            return r
        self.cmd("kbench produce --topic T --partitions P --msg-size S --acks all --producers N --duration %g "
                 "--warmup 1" % s)
        r = self.guarded(section, w, "kbench", key, kb)
        if java:
            def jv():
                n0 = end_offsets(broker.bootstrap, t)
                args = ["--bootstrap-server", broker.bootstrap, "--topic", t, "--num-records", 10**10,
                        "--record-size", size, "--throughput", -1, "--command-property", "acks=all"]
                rates, cpu = self.with_cpu(broker, lambda: self.c.perf_timed([args] * prods, 1, s))
                nbytes = (end_offsets(broker.bootstrap, t) - n0) * size
                mps = sum(rates)
                self.put_produce(section, w, "kafka-producer-perf-test", key, mps, mps * size / 1e6, cpu,
                                 nbytes, fig)
            self.cmd("kafka-producer-perf-test --topic T --num-records 10^10 --record-size S --throughput -1 "
                     "--command-property acks=all --reporting-interval 1000  (stopped after 1 + %g s of progress "
                     "lines, the first second left out; 8 producers = 8 processes, rates summed)" % s)
            self.guarded(section, w, "kafka-producer-perf-test", key, jv)
        delete_topic(broker.bootstrap, t)

    def put_produce(self, section, w, client, key, mps, mbps, cpu, nbytes, fig):
        self.res.put(section, w, client, fig, "higher", key, mps if fig == "msg/s" else mbps)
        if nbytes > 0:
            self.res.put(section, w, client, "broker CPU-s per GB produced", "lower", key, cpu / (nbytes / 1e9))

    # ---- consume
    def consume(self, broker, key, section, size, parts=16, java=True):
        s = self.cfg.secs
        # About s seconds of reading for kbroker on this machine (~1.5 M msg/s of 100 B, ~400 MB/s of 1 KiB).
        count = int((1500000 if size == 100 else 400000) * s)
        w = "consume %s, %d partitions, %d messages" % ("100 B" if size == 100 else "1 KiB", parts, count)
        t = self.topic("c%d" % size)
        create_topic(broker.bootstrap, t, parts)
        # Filled first, untimed, so the consume run's CPU is the broker's reading only.
        self.c.kbench(broker, "produce", "--topic", t, "--partitions", parts, "--msg-size", size, "--count", count,
                      "--acks", "all")
        fig = "msg/s" if size == 100 else "MB/s"

        def kb():
            r, cpu = self.with_cpu(broker, lambda: self.c.kbench(
                broker, "consume", "--topic", t, "--partitions", parts, "--msg-size", size, "--count", count))
            self.res.put(section, w, "kbench", fig, "higher", key, r["msg_per_s"] if size == 100 else r["mb_per_s"])
            self.res.put(section, w, "kbench", "broker CPU-s per GB consumed", "lower", key, cpu / (r["bytes"] / 1e9))
        self.cmd("kbench consume --topic T --partitions P --msg-size S --count N  (after an untimed kbench "
                 "produce --count N)")
        self.guarded(section, w, "kbench", key, kb)
        if java:
            def jv():
                out, cpu = self.with_cpu(broker, lambda: self.c.java(
                    "ConsumerPerformance", ["--bootstrap-server", broker.bootstrap, "--topic", t, "--num-records",
                                            count, "--timeout", 30000, "--hide-header", "--group",
                                            "bench-%s" % t], timeout=s * 20 + 120))
                line = [x for x in out.splitlines() if x.count(",") >= 9][-1].split(",")
                # start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s: the
                # fetch figures leave the group's join out.
                n, fetch_ms = float(line[4]), float(line[7])
                if n < count or fetch_ms <= 0:
                    raise RuntimeError("ConsumerPerformance read %d of %d messages: %s" % (n, count, out[-400:]))
                mps = n / (fetch_ms / 1e3)
                self.res.put(section, w, "kafka-consumer-perf-test", fig, "higher", key,
                             mps if size == 100 else mps * size / 1e6)
                self.res.put(section, w, "kafka-consumer-perf-test", "broker CPU-s per GB consumed", "lower", key,
                             cpu / (n * size / 1e9))
            self.cmd("kafka-consumer-perf-test --topic T --num-records N --timeout 30000 --group G  (fetch.nMsg.sec, "
                     "i.e. without the group join)")
            self.guarded(section, w, "kafka-consumer-perf-test", key, jv)
        delete_topic(broker.bootstrap, t)

    # ---- latency
    def e2e(self, broker, key, section, rate, parts=4, java=True):
        s = self.cfg.secs
        w = "e2e 100 B at %s msg/s, %d partitions" % ("{:,}".format(rate), parts)
        t = self.topic("e2e%d" % rate)
        create_topic(broker.bootstrap, t, parts)

        def kb():
            r = self.c.kbench(broker, "e2e", "--topic", t, "--partitions", parts, "--msg-size", 100, "--acks", "all",
                              "--rate", rate, "--duration", max(s, 4), "--warmup", 1)
            if r["lost"]:
                raise RuntimeError("%d messages lost" % r["lost"])
            for p in ("p50", "p99", "p99.9", "p99.99", "max"):
                self.res.put(section, w, "kbench (CO-corrected)", p + " (µs)", "lower", key, r["latency_us"][p])
        self.cmd("kbench e2e --topic T --partitions 4 --msg-size 100 --acks all --rate R --duration %g --warmup 1  "
                 "(linger.ms 0, fetch.wait.max.ms 500: the broker wakes the fetch)" % max(s, 4))
        self.guarded(section, w, "kbench (CO-corrected)", key, kb)
        if rate == 50000 and section == "main":
            # librdkafka at linger.ms 0 sends a request per message while the broker keeps up: the same
            # rate at linger.ms 1 shows how much of a figure is the request rate rather than the bytes.
            def kb1():
                r = self.c.kbench(broker, "e2e", "--topic", t, "--partitions", parts, "--msg-size", 100, "--acks",
                                  "all", "--rate", rate, "--linger-ms", 1, "--duration", max(s, 4), "--warmup", 1)
                if r["lost"]:
                    raise RuntimeError("%d messages lost" % r["lost"])
                for p in ("p50", "p99", "p99.9", "p99.99", "max"):
                    self.res.put(section, w, "kbench, linger.ms 1 (CO-corrected)", p + " (µs)", "lower", key,
                                 r["latency_us"][p])
            self.cmd("kbench e2e ... --rate 50000 --linger-ms 1  (the same, batching for up to 1 ms)")
            self.guarded(section, w, "kbench, linger.ms 1 (CO-corrected)", key, kb1)
        if java:
            def jv():
                n = int(rate * max(s, 4))
                out = self.c.java("ProducerPerformance", [
                    "--bootstrap-server", broker.bootstrap, "--topic", t, "--num-records", n + rate,
                    "--warmup-records", rate, "--record-size", 100, "--throughput", rate, "--command-property",
                    "acks=all", "linger.ms=0"], timeout=max(s, 4) * 3 + 60)
                r = parse_perf(out, 100)
                # Its percentiles are whole milliseconds: shown as such, not as microseconds.
                for p in ("p50", "p99", "p99.9", "max"):
                    self.res.put(section, w, "kafka-producer-perf-test --throughput (ack, not CO-corrected)",
                                 p + " (ms)", "lower", key, r[p] / 1e3)
                self.res.put(section, w, "kafka-producer-perf-test --throughput (ack, not CO-corrected)",
                             "achieved msg/s", "higher", key, r["msg_per_s"])
            self.cmd("kafka-producer-perf-test --topic T --num-records R x %g --warmup-records R --record-size 100 "
                     "--throughput R --command-property acks=all linger.ms=0  (send-to-ack latency in whole ms)"
                     % max(s, 4))
            self.guarded(section, w, "kafka-producer-perf-test --throughput (ack, not CO-corrected)", key, jv)
        delete_topic(broker.bootstrap, t)

    def java_e2e(self, broker, key, section):
        n = int(1000 * max(self.cfg.secs, 4))
        w = "e2e 100 B, one message in flight, 1 partition"
        t = self.topic("jlat")
        create_topic(broker.bootstrap, t, 1)

        def jv():
            out = self.c.java("EndToEndLatency", [broker.bootstrap, t, n, "all", 100], timeout=n / 100 + 120)
            avg = re.search(r"Avg latency: ([\d.]+) ms", out)
            pc = re.search(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", out)
            if not avg or not pc:
                raise RuntimeError("no EndToEndLatency figures in: %s" % out[-600:])
            for name, v in zip(("p50", "p99", "p99.9"), pc.groups()):
                self.res.put(section, w, client, name + " (ms)", "lower", key, float(v))
            self.res.put(section, w, client, "mean (ms)", "lower", key, float(avg.group(1)))
        client = "EndToEndLatency (Java, whole ms)"
        self.cmd("EndToEndLatency BOOTSTRAP T %d all 100  (closed loop: send, wait for the consumer, repeat)" % n)
        self.guarded(section, w, client, key, jv)
        delete_topic(broker.bootstrap, t)

    def roundtrip(self, broker, key, section):
        w = "roundtrip 100 B, acks=all, one message in flight"

        def kb():
            t = self.topic("rt")
            r = self.c.kbench(broker, "roundtrip", "--topic", t, "--partitions", 1, "--msg-size", 100,
                              "--acks", "all", "--duration", self.cfg.secs, "--warmup", 1)
            for p in ("p50", "p99", "p99.9", "max"):
                self.res.put(section, w, "kbench", p + " (µs)", "lower", key, r["latency_us"][p])
            delete_topic(broker.bootstrap, t)
        self.cmd("kbench roundtrip --topic T --partitions 1 --msg-size 100 --acks all --duration %g --warmup 1"
                 % self.cfg.secs)
        self.guarded(section, w, "kbench", key, kb)

    # ---- passes
    def start(self, key, cpus=None, tls_pki=None):
        b = make_broker(self.cfg, key, cpus, tls_pki)
        t0 = time.monotonic()
        b.start()
        log("%s up at %s (pid %d) in %.1f s%s" % (SETTINGS[key][1], b.bootstrap, b.pid, time.monotonic() - t0,
                                                  ", broker on CPU %s" % cpus if cpus else ""))
        return b

    def main_pass(self, key):
        cfg, sec = self.cfg, "main"
        b = self.start(key)
        try:
            for size, parts, prods in cfg.produces:
                self.produce(b, key, sec, size, parts, prods)
            for size in cfg.consumes:
                self.consume(b, key, sec, size)
            for rate in cfg.rates:
                self.e2e(b, key, sec, rate)
            if "e2e" in cfg.workloads:
                self.java_e2e(b, key, sec)
            if cfg.roundtrip:
                self.roundtrip(b, key, sec)
            m = memory(b.pid)
            self.res.put(sec, "after the workloads above", "", "broker peak RSS (VmHWM, MiB)", "lower", key,
                         m["VmHWM"] / 2**20)
            self.res.put(sec, "after the workloads above", "", "broker RSS (VmRSS, MiB)", "lower", key,
                         m["VmRSS"] / 2**20)
        finally:
            b.stop()

    def tls_pki(self):
        """A throwaway CA and server certificate (compat-tests' make_pki), made once per run."""
        if getattr(self, "_pki", None) is None:
            from secure import make_pki
            self._pki = os.path.join(self.cfg.out, "tls-pki")
            shutil.rmtree(self._pki, ignore_errors=True)
            os.makedirs(self._pki)
            make_pki(self._pki)
        return self._pki

    def tls_pass(self, key):
        """The main pass's produce and consume sizes over SSL (kbench, librdkafka's OpenSSL), and what is left
        of the plaintext figure of the same workload."""
        cfg, sec = self.cfg, "tls"
        pki = self.tls_pki()
        b = self.start(key, tls_pki=pki)
        self.c.xprops = ["-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + os.path.join(pki, "ca.pem")]
        self.cmd("tls: the kbench commands above with -X security.protocol=SSL -X ssl.ca.location=ca.pem against "
                 "an SSL listener (PEM key store, RSA 2048, TLS 1.3 negotiated)")
        try:
            for size, parts, prods in cfg.produces:
                self.produce(b, key, sec, size, parts, prods, java=False)
            for size in cfg.consumes:
                self.consume(b, key, sec, size, java=False)
        finally:
            self.c.xprops = []
            b.stop()
        for (section, w, client, fig, better) in list(self.res.order):
            if section != sec or better != "higher":
                continue
            tls = self.res.rows[(sec, w, client, fig, better)].get(key)
            plain = self.res.rows.get(("main", w, client, fig, better), {}).get(key)
            if isinstance(tls, (int, float)) and isinstance(plain, (int, float)) and plain > 0:
                self.res.put(sec, w, client, "%s over TLS, %% of plaintext" % fig, "higher", key, 100.0 * tls / plain)

    def pinned_pass(self, key):
        sec = "pinned"
        self.c.pin = "0"
        b = self.start(key, cpus="1")
        try:
            for size, parts, prods in self.cfg.pinned_produces:
                self.produce(b, key, sec, size, parts, prods)
            if "consume" in self.cfg.workloads:
                self.consume(b, key, sec, 1024)
            if "e2e" in self.cfg.workloads:
                self.e2e(b, key, sec, 50000, java=False)
        finally:
            self.c.pin = None
            b.stop()

    def partitions_run(self, key):
        sec, n = "partitions", self.cfg.many
        w = "%s partitions (one topic)" % "{:,}".format(n)
        b = self.start(key)
        try:
            def run():
                t = "many"
                t0 = time.monotonic()
                create_topic(b.bootstrap, t, n, timeout=900)
                self.res.put(sec, w, "admin", "create the topic (s)", "lower", key, time.monotonic() - t0)
                m = memory(b.pid)
                self.res.put(sec, w, "", "broker RSS after creating (MiB)", "lower", key, m["VmRSS"] / 2**20)
                # One record to every partition and every partition read back, with raw requests of 2,000
                # partitions each (partitions.py): librdkafka with 10,000 partitions spends its time in its
                # own partition scans, and against Kafka it did not get one message per partition
                # acknowledged within kbench's 30-s priming limit.
                import partitions
                deadline = time.monotonic() + 120
                while True:
                    t0 = time.monotonic()
                    try:
                        partitions.verify(b.bootstrap, [t], n, "%d partitions" % n)
                        break
                    except SystemExit as e:
                        # Kafka answers NOT_LEADER (6) for partitions CreatePartitions added moments ago,
                        # after its metadata already names their leader: the write is tried again.
                        if " 6)" not in str(e) or time.monotonic() > deadline:
                            raise RuntimeError("write/read-back of every partition: %s" % e)
                        log("not every partition served yet, again in 5 s: %s" % str(e)[:120])
                        time.sleep(5)
                self.res.put(sec, w, "raw Produce v3 / Fetch v4", "write 1 record to each, read all back (s)",
                             "lower", key, time.monotonic() - t0)
                m = memory(b.pid)
                self.res.put(sec, w, "", "broker RSS after writing every partition (MiB)", "lower", key,
                             m["VmRSS"] / 2**20)
                self.res.put(sec, w, "", "broker peak RSS (VmHWM, MiB)", "lower", key, m["VmHWM"] / 2**20)
            self.cmd("one topic of %d partitions (AdminClient: CreateTopics of 5,000, CreatePartitions to %d), one "
                     "record to every partition (Produce v3, acks=all, 2,000 partitions a request) and every "
                     "partition read back (Fetch v4), as tools/bench/partitions.py --verify; VmRSS/VmHWM from /proc"
                     % (n, n))
            self.guarded(sec, w, "raw Produce v3 / Fetch v4", key, run)
        finally:
            b.stop(10)  # a clean stop of 10,000 partitions is not measured here (partitions.py does)

    def soak_run(self, key, rate):
        sec = "soak"
        d = self.cfg.soak
        w = "soak: e2e 100 B at %s msg/s (50%% of peak), 16 partitions, %.0f s" % ("{:,}".format(rate), d)
        b = self.start(key)
        try:
            def run():
                t = self.topic("soak")
                create_topic(b.bootstrap, t, 16)
                lines = []
                self.soak_lines[key] = lines
                c0 = cpu_seconds(b.pid)
                # linger.ms 5, as in the produce run whose peak set the rate: at linger 0 the same rate is
                # many more requests than the peak run made.
                r = self.c.kbench(b, "e2e", "--topic", t, "--partitions", 16, "--msg-size", 100, "--acks", "all",
                                  "--linger-ms", 5, "--rate", rate, "--duration", d, "--warmup", 2, "--interval",
                                  self.cfg.soak_interval, timeout=d + 120, stderr_lines=lines)
                cpu = cpu_seconds(b.pid) - c0
                series = self.soak_parse(key)
                for p in ("p50", "p99", "p99.9", "p99.99", "max"):
                    self.res.put(sec, w, "kbench (CO-corrected)", p + " (µs)", "lower", key, r["latency_us"][p])
                if series:
                    self.res.put(sec, w, "kbench (CO-corrected)", "worst %g-s interval p99 (µs)"
                                 % self.cfg.soak_interval, "lower", key, max(x[3] for x in series))
                self.res.put(sec, w, "kbench (CO-corrected)", "messages received per second", "higher", key,
                             r["msgs"] / d)
                self.res.put(sec, w, "", "broker CPU (cores, average)", "lower", key, cpu / (d + 3))
                m = memory(b.pid)
                self.res.put(sec, w, "", "broker peak RSS (VmHWM, MiB)", "lower", key, m["VmHWM"] / 2**20)
                if r["lost"]:
                    raise RuntimeError("%d messages lost" % r["lost"])
            self.cmd("kbench e2e --topic T --partitions 16 --msg-size 100 --acks all --linger-ms 5 --rate R "
                     "--duration %g --warmup 2 --interval %g" % (d, self.cfg.soak_interval))
            self.guarded(sec, w, "kbench (CO-corrected)", key, run)
            self.soak_parse(key)  # a run that failed still plots what it measured
        finally:
            b.stop()

    def soak_parse(self, key):
        series = []
        for ln in self.soak_lines.get(key, []):
            m = re.match(r"kbench-interval consumer=0 t_s=([\d.]+) n=(\d+) p50_us=([\d.]+) "
                         r"p99_us=([\d.]+) p99.9_us=([\d.]+) max_us=([\d.]+)", ln)
            if m:
                series.append([float(x) for x in m.groups()])
        self.soak_series[key] = series
        return series

    # ---- machine limits
    def machine_limits(self):
        secs = 2 if self.cfg.quick else 5
        try:
            self.limits["loopback TCP, 1 stream, 1 MiB writes (MB/s)"] = loopback(secs)
        except Exception as e:  # noqa: BLE001
            self.limits["loopback TCP"] = "failed: %s" % e
        try:
            self.limits["O_DIRECT sequential write, 1 MiB blocks, 4 writers, on BENCH_DIR (MB/s)"] = \
                odirect(self.cfg.dir, secs)
        except Exception as e:  # noqa: BLE001
            self.limits["O_DIRECT write"] = "failed: %s" % e
        try:
            lat = fdatasync_lat(self.cfg.dir, secs)
            self.limits["4 KiB write + fdatasync on BENCH_DIR, per op (µs)"] = (
                "p50 %s / p99 %s / p99.9 %s / p99.99 %s / max %s (%d ops)" % tuple(
                    [fmt(pct(lat, q)) for q in (50, 99, 99.9, 99.99, 100)] + [len(lat)]))
            self.limits["_fsync_p99.9"] = pct(lat, 99.9)
        except Exception as e:  # noqa: BLE001
            self.limits["fdatasync"] = "failed: %s" % e
        for k, v in self.limits.items():
            if not k.startswith("_"):
                log("limit: %s = %s" % (k, fmt(v)))

    # ---- everything
    def run(self):
        cfg = self.cfg
        t0 = time.monotonic()
        log("plan: %s; settings %s; %g s per run; soak %g s; data under %s; %d CPUs" % (
            ",".join(cfg.parts), ",".join(cfg.settings), cfg.secs, cfg.soak, cfg.dir, os.cpu_count()))
        if "limits" in cfg.parts:
            self.machine_limits()
        if "main" in cfg.parts:
            for k in cfg.settings:
                self.main_pass(k)
        if "tls" in cfg.parts:
            for k in cfg.settings:
                self.tls_pass(k)
        if "pinned" in cfg.parts:
            for k in cfg.settings:
                self.pinned_pass(k)
        durable = [k for k in ("kb", "kf1") if k in cfg.settings]
        if "partitions" in cfg.parts:
            for k in durable:
                self.partitions_run(k)
        if "soak" in cfg.parts and durable:
            peaks = [self.peak.get((k, 100, 16, 1)) for k in durable]
            peaks = [p for p in peaks if p]
            rate = int(min(peaks) / 2) if peaks else 50000
            self.soak_rate = rate
            for k in durable:
                self.soak_run(k, rate)
            self.plot()
        self.elapsed = time.monotonic() - t0
        self.report()

    # ---- output
    def plot(self):
        self.plot_path = None
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            self.res.notes.append("no plot: python3-matplotlib is not installed")
            return
        if not any(self.soak_series.values()):
            return
        fig, ax = plt.subplots(figsize=(10, 5))
        styles = {"kb": "tab:blue", "kf1": "tab:red"}
        for key, series in self.soak_series.items():
            if not series:
                continue
            t = [x[0] for x in series]
            for idx, q, ls in ((2, "p50", ":"), (3, "p99", "-"), (4, "p99.9", "--")):
                ax.plot(t, [x[idx] / 1e3 for x in series], ls, color=styles.get(key), label="%s %s" % (
                    SETTINGS[key][1], q))
        ax.set_yscale("log")
        ax.set_xlabel("seconds since the end of the warm-up (%g-s intervals, by receive time)"
                      % self.cfg.soak_interval)
        ax.set_ylabel("produce-to-consume latency (ms, from the intended send time)")
        ax.set_title("soak: 100 B, acks=all, %s msg/s, 16 partitions, both durable" % "{:,}".format(self.soak_rate))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        self.plot_path = os.path.join(self.cfg.out, "soak.png")
        fig.savefig(self.plot_path, dpi=110)
        plt.close(fig)

    def table(self):
        head = ["section", "workload", "client", "figure"] + [k for k in SETTINGS] + [r[0] + "/" + r[1]
                                                                                       for r in RATIOS]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 4 + "---:|" * (len(head) - 4)]
        prev = None
        for k in self.res.order:
            sec, w, client, figure, better = k
            vals = self.res.rows[k]
            cells = [sec if sec != prev else "", w, client, figure]
            prev = sec
            cells += [fmt(vals.get(s)) if s in vals else "" for s in SETTINGS]
            for a, b, _ in RATIOS:
                va, vb = vals.get(a), vals.get(b)
                if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and vb > 0:
                    cells.append("%.2f" % (va / vb))
                else:
                    cells.append("")
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    def targets(self):
        """Issue 14's targets on this machine, from this run's figures: (target, reached?, the figures)."""
        rows = [(k, v) for k, v in ((k, self.res.rows[k]) for k in self.res.order)]

        def ratios(pred, a, b):
            out = []
            for (sec, w, client, fig, better), v in rows:
                if pred(sec, w, client, fig) and isinstance(v.get(a), (int, float)) and \
                        isinstance(v.get(b), (int, float)) and v[b] > 0:
                    out.append((v[a] / v[b], "%s (%s)" % (", ".join(x for x in (w, client, fig) if x), sec)))
            return out
        out = []

        def verdict(name, rs, ok, worst_is_min=True):
            if not rs:
                out.append((name, None, "not measured in this run"))
                return
            worst = (min if worst_is_min else max)(rs)
            out.append((name, all(ok(r) for r, _ in rs), "%d figures, %.2f to %.2f; worst %.2f: %s" % (
                len(rs), min(r for r, _ in rs), max(r for r, _ in rs), worst[0], worst[1])))

        def tput(sec, w, client, fig):
            return fig in ("msg/s", "MB/s") and w.startswith(("produce", "consume"))
        verdict("throughput >= 1.5x Kafka at equal durability (kb/kf1)", ratios(tput, "kb", "kf1"),
                lambda r: r >= 1.5)
        verdict("throughput >= 1.0x Kafka's defaults while kbroker fsyncs (kb/kf)", ratios(tput, "kb", "kf"),
                lambda r: r >= 1.0)
        e2e = self.res.rows.get(("main", "e2e 100 B at 50,000 msg/s, 4 partitions", "kbench (CO-corrected)",
                                 "p99 (µs)", "lower"))
        e2e9 = self.res.rows.get(("main", "e2e 100 B at 50,000 msg/s, 4 partitions", "kbench (CO-corrected)",
                                  "p99.9 (µs)", "lower"))
        e2e5 = self.res.rows.get(("main", "e2e 100 B at 50,000 msg/s, 4 partitions", "kbench (CO-corrected)",
                                  "p50 (µs)", "lower"))
        if e2e and e2e9 and e2e5 and all(isinstance(x.get("kb"), (int, float)) for x in (e2e, e2e9, e2e5)):
            p50, p99, p999 = e2e5["kb"], e2e["kb"], e2e9["kb"]
            out.append(("e2e 50k msg/s durable: p99 <= 3 ms, p99.9 <= 6 ms, p99.9/p50 <= 4 (kbench, linger.ms 0)",
                        p99 <= 3000 and p999 <= 6000 and p999 / p50 <= 4,
                        "p50 %s / p99 %s / p99.9 %s µs, p99.9/p50 %.1f" % (fmt(p50), fmt(p99), fmt(p999),
                                                                           p999 / p50)))
            if isinstance(e2e.get("kf1"), (int, float)) and isinstance(e2e9.get("kf1"), (int, float)):
                r99, r999 = p99 / e2e["kf1"], p999 / e2e9["kf1"]
                out.append(("e2e 50k msg/s: p99 and p99.9 <= 0.5x Kafka's at equal durability", r99 <= 0.5 and
                            r999 <= 0.5, "p99 %.3f, p99.9 %.3f of Kafka flush.messages=1's" % (r99, r999)))
        else:
            out.append(("e2e 50k msg/s durable targets", None, "not measured in this run"))

        def cpu(sec, w, client, fig):
            return fig.startswith("broker CPU-s per GB") and sec == "pinned"
        verdict("broker CPU per GB <= 0.5x Kafka's (pinned pass, kb/kf1)", ratios(cpu, "kb", "kf1"),
                lambda r: r <= 0.5, worst_is_min=False)

        def mem(sec, w, client, fig):
            return sec == "partitions" and "RSS" in fig
        verdict("memory <= 0.25x Kafka's at %s partitions (kb/kf1)" % "{:,}".format(self.cfg.many),
                ratios(mem, "kb", "kf1"),
                lambda r: r <= 0.25, worst_is_min=False)
        lim = [v for k, v in self.limits.items() if k.startswith(("loopback", "O_DIRECT")) and
               isinstance(v, (int, float))]
        best = [v.get("kb") for (sec, w, client, fig, _), v in rows if sec == "main" and
                w.startswith("produce 1 KiB") and fig == "MB/s" and isinstance(v.get("kb"), (int, float))]
        if len(lim) == 2 and best:
            out.append(("1 KiB produce >= 0.7x min(loopback, O_DIRECT write)", max(best) >= 0.7 * min(lim),
                        "best %s MB/s = %.2f of %s MB/s" % (fmt(max(best)), max(best) / min(lim), fmt(min(lim)))))
        else:
            out.append(("1 KiB produce >= 0.7x min(loopback, O_DIRECT write)", None, "not measured in this run"))
        return out

    def report(self):
        cfg = self.cfg
        out = ["# kbroker vs Apache Kafka %s — `make bench` report" % kafka_ref.kafka_version(), "",
               "Run of %s UTC, %.0f min, %s mode; %g s per run, soak %g s; data dirs under %s; %d CPUs; "
               "load average before the run: %s." % (
                   time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.t_start_wall)), self.elapsed / 60,
                   "quick" if cfg.quick else "full", cfg.secs, cfg.soak, cfg.dir, os.cpu_count(), self.load0), ""]
        out += ["Settings: " + "; ".join("**%s** = %s" % (k, v[1]) for k, v in SETTINGS.items()) + ".",
                "Ratios: kbroker / Kafka (throughput: > 1 favours kbroker; latency, CPU, memory: < 1 favours "
                "kbroker). MB = 10^6 B of payload. `pinned`: clients on CPU 0 (`taskset -c 0`), the broker on CPU 1 "
                "(every thread). CPU-s per GB: the broker process's utime+stime (all threads) over the run, per "
                "10^9 payload bytes the topic's offsets grew by (produce) or the client read (consume).", ""]
        out += self.table()
        out += ["", "Targets of issue 14, from this run's figures:", "", "| target | reached | figures |",
                "|---|---|---|"]
        out += ["| %s | %s | %s |" % (name, {True: "yes", False: "**no**", None: "–"}[ok], why)
                for name, ok, why in self.targets()]
        out += ["", "Machine limits, measured in the same run:", ""]
        out += ["| limit | figure |", "|---|---:|"]
        out += ["| %s | %s |" % (k, fmt(v)) for k, v in self.limits.items() if not k.startswith("_")]
        if getattr(self, "plot_path", None):
            out += ["", "Soak latency over time: %s" % self.plot_path]
        if self.res.notes:
            out += [""] + ["Note: " + n for n in self.res.notes]
        out += ["", "Commands (T, P, S, N, R: topic, partitions, message size, count/producers, rate; each client "
                "gets --bootstrap / --bootstrap-server of the broker under test):", "", "```"]
        out += [
            "make bench   # = tools/bench/run-bench.sh build -> tools/bench/bench.py build",
            "BENCH_QUICK=%s BENCH_SECONDS=%g BENCH_SOAK_SECONDS=%g BENCH_DIR=%s" % (
                "1" if cfg.quick else "0", cfg.secs, cfg.soak, cfg.dir),
            "kbroker --set listeners=PLAINTEXT://127.0.0.1:0 --set log.dirs=<fresh dir> [--set flush.sync.acks=false]",
            "kafka_ref.KafkaRef(settings={[log.flush.interval.messages: 1]}, base_dir=BENCH_DIR, jvm_opts=%s)"
            % " ".join(KAFKA_BROKER_JVM),
            "java %s -cp <kafka-tools %s classpath> org.apache.kafka.tools.<Tool> ..." % (
                " ".join(KAFKA_TOOL_JVM[:1]), kafka_ref.kafka_version())]
        out += self.commands + ["```"]
        text = "\n".join(out) + "\n"
        with open(os.path.join(cfg.out, "REPORT.md"), "w") as f:
            f.write(text)
        with open(os.path.join(cfg.out, "results.json"), "w") as f:
            json.dump({"rows": [list(k) + [self.res.rows[k]] for k in self.res.order], "limits": self.limits,
                       "soak": self.soak_series, "commands": self.commands}, f, indent=1)
        print()
        print(text)
        log("report: %s" % os.path.join(cfg.out, "REPORT.md"))


# ---------------------------------------------------------------- machine limits


def pct(vals, q):
    s = sorted(vals)
    if not s:
        return 0
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def loopback(secs):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    pid = os.fork()
    if pid == 0:  # the sender: its own process, so neither side waits for the other's GIL
        try:
            c = socket.create_connection(("127.0.0.1", port))
            buf = b"x" * (1 << 20)
            end = time.monotonic() + secs + 0.5
            while time.monotonic() < end:
                c.sendall(buf)
            c.close()
        finally:
            os._exit(0)
    conn, _ = srv.accept()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    got, t0 = 0, None
    while True:
        n = conn.recv_into(view)
        if not n:
            break
        if t0 is None:
            t0 = time.monotonic()
        got += n
    dt = time.monotonic() - t0
    os.waitpid(pid, 0)
    conn.close()
    srv.close()
    return got / dt / 1e6


def odirect(parent, secs, writers=4, block=1 << 20):
    d = tempfile.mkdtemp(prefix="kbench-limits-", dir=parent)
    total = [0] * writers
    try:
        end = time.monotonic() + secs

        def w(i):
            fd = os.open(os.path.join(d, "w%d" % i), os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
            buf = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT wants
            buf.write(b"y" * block)
            try:
                while time.monotonic() < end and total[i] < (4 << 30):
                    total[i] += os.write(fd, buf)
            finally:
                os.close(fd)
        t0 = time.monotonic()
        ths = [threading.Thread(target=w, args=(i,)) for i in range(writers)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        return sum(total) / (time.monotonic() - t0) / 1e6
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fdatasync_lat(parent, secs):
    d = tempfile.mkdtemp(prefix="kbench-limits-", dir=parent)
    try:
        fd = os.open(os.path.join(d, "s"), os.O_WRONLY | os.O_CREAT, 0o600)
        buf = b"z" * 4096
        lat = []
        end = time.monotonic() + secs
        while time.monotonic() < end:
            t = time.monotonic_ns()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append((time.monotonic_ns() - t) / 1e3)
        os.close(fd)
        return lat
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    cfg = Config(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build"))
    b = Bench(cfg)
    b.t_start_wall = time.time()
    b.load0 = " ".join(open("/proc/loadavg").read().split()[:3])

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    b.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

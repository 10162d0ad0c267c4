"""Apache Kafka as the reference broker of the compat tests (stdlib only).

Owns: resolving the Kafka broker's classpath from Maven Central (compat-tests/kafka/pom.xml, cached so a
second run does no network traffic), formatting a fresh single-node KRaft log dir (broker+controller in one
process) and starting/stopping that broker on loopback ephemeral ports in a temp dir.
Must not: touch kbroker, leave a JVM or a temp dir behind, or reach the network once the cache is complete.

    k = KafkaRef(); k.start(); k.bootstrap; k.data_dir; k.stop(); k.cleanup()

Command line (run.sh uses it):
    kafka_ref.py resolve          fill the Maven cache and the cached classpath (install-deps.sh --test)
    kafka_ref.py version          print the Kafka version the pom pins
    kafka_ref.py serve ENVFILE    start Kafka, write KB_TARGET_* lines to ENVFILE, serve until SIGTERM/SIGINT
"""

import atexit
import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

_HERE = os.path.dirname(os.path.abspath(__file__))
POM = os.path.abspath(os.path.join(_HERE, "..", "kafka", "pom.xml"))
CACHE_DIR = os.environ.get("KB_KAFKA_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kbroker-compat")

# What the suite expects of any target beyond Kafka's defaults: the values kbroker's group tests pass with
# --set (groups form at once, short sessions). Tests whose extra_sets go beyond these skip on other targets.
REF_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "offsets.topic.num.partitions": "10",
    # Share groups (java ShareCases): a lock timeout a test can wait out (Kafka's minimum allows it).
    "group.share.min.record.lock.duration.ms": "1000",
    "group.share.record.lock.duration.ms": "5000",
    # Most raw-protocol tests write records stamped 2023-11-14 (kwire's fixed timestamp). Kafka's retention
    # check, every 5 minutes by default, rolls and deletes any segment older than log.retention.hours (7 days):
    # it once removed a test's records between its write and its read (OFFSET_OUT_OF_RANGE, missing records).
    # An hour between checks keeps a suite's data; no test waits for time-based retention on Kafka.
    "log.retention.check.interval.ms": "3600000",
}

READY = "Kafka Server started"
LISTEN_RE = re.compile(r"Awaiting socket connections on [^\s:]+:(\d+)\.")


class KafkaRefError(AssertionError):
    pass


def kafka_version():
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", open(POM).read())
    if not m:
        raise KafkaRefError("no <kafka.version> in %s" % POM)
    return m.group(1)


def _classpath_cache(pom=POM):
    digest = hashlib.sha256(open(pom, "rb").read()).hexdigest()[:16]
    return os.path.join(CACHE_DIR, "kafka-%s-%s.classpath" % (kafka_version(), digest))


def _cached_classpath(pom=POM):
    path = _classpath_cache(pom)
    try:
        cp = open(path).read().strip()
    except OSError:
        return None
    jars = cp.split(os.pathsep) if cp else []
    # A jar removed from ~/.m2 since makes the cache stale: resolve again.
    if not jars or not all(os.path.isfile(j) for j in jars):
        return None
    return cp


def resolve_classpath(log=sys.stderr, pom=POM):
    """The broker's classpath: from the cache file, else `mvn -o`, else `mvn` online (once).

    Another pom (tools/bench's, for Kafka's own perf tools) gets -Dkafka.version of ours, so whatever it
    resolves is the same Kafka release as the broker."""
    cp = _cached_classpath(pom)
    if cp:
        return cp
    os.makedirs(CACHE_DIR, exist_ok=True)
    out = _classpath_cache(pom) + ".tmp"
    base = ["mvn", "-B", "-q", "-f", pom, "dependency:build-classpath", "-Dmdep.outputFile=" + out]
    if pom != POM:
        base.append("-Dkafka.version=" + kafka_version())
    attempts = [["-o"]]
    if os.environ.get("KB_KAFKA_OFFLINE") != "1":
        attempts.append([])
    err = ""
    for extra in attempts:
        p = subprocess.run(base[:1] + extra + base[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=900)
        if p.returncode == 0 and os.path.isfile(out):
            os.replace(out, _classpath_cache(pom))
            cp = _cached_classpath(pom)
            if cp:
                return cp
        err = p.stdout.decode(errors="replace")[-3000:]
        if extra == ["-o"] and len(attempts) > 1:
            print("kafka_ref: Maven cache incomplete, resolving Kafka %s online" % kafka_version(), file=log)
    raise KafkaRefError("cannot resolve Kafka %s with mvn (%s):\n%s" % (kafka_version(), pom, err))


def _free_port(host):
    from ports import free_port

    return free_port(host)


def _cluster_id():
    # Kafka's Uuid.randomUuid(): url-safe base64 without padding, never starting with '-'.
    while True:
        s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not s.startswith("-"):
            return s


_live = []


def _kill_all():
    for k in list(_live):
        try:
            k.stop()
        except Exception:
            pass


atexit.register(_kill_all)


class KafkaRef:
    # base_dir: parent of the temp dir (data and log), default the system's; the benchmark puts it on the
    # filesystem it measures. jvm_opts: replaces the heap/GC/JIT flags below, tuned for a quick start of
    # the compat suite, by the ones a measured broker runs with.
    def __init__(self, host="127.0.0.1", settings=None, ready_timeout=120.0, heap="512m", base_dir=None,
                 jvm_opts=None):
        self.host = host
        self.settings = dict(REF_SETTINGS, **(settings or {}))
        self.ready_timeout = ready_timeout
        self.heap = heap
        self.version = kafka_version()
        self.jvm_opts = list(jvm_opts) if jvm_opts is not None else None
        self._tmp = tempfile.mkdtemp(prefix="kb-kafka-ref-", dir=base_dir)
        self.data_dir = os.path.join(self._tmp, "data")
        self.log_path = os.path.join(self._tmp, "kafka.log")
        self.proc = None
        self.port = None
        self.controller_port = None
        self.start_seconds = None

    @property
    def bootstrap(self):
        if self.port is None:
            raise KafkaRefError("Kafka not started")
        return "%s:%d" % (self.host, self.port)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _properties(self):
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": "%s:%d" % (self.host, self.controller_port),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            # Port 0: Kafka binds an ephemeral port and advertises the bound one.
            "listeners": "PLAINTEXT://%s:0,CONTROLLER://%s:%d" % (self.host, self.host, self.controller_port),
            "advertised.listeners": "PLAINTEXT://%s:0" % self.host,
            "log.dirs": self.data_dir,
            # One node: internal topics cannot have more replicas than that.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
        }
        props.update(self.settings)
        return "".join("%s=%s\n" % kv for kv in props.items())

    def _java(self, main, *args, cp):
        log4j = os.path.join(self._tmp, "log4j2.properties")
        jvm = self.jvm_opts
        if jvm is None:
            jvm = ["-Xms128m", "-Xmx" + self.heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
        return (["java"] + jvm + ["-Djava.awt.headless=true", "-Dlog4j2.configurationFile=" + log4j, "-cp", cp, main]
                + list(args))

    def start(self):
        if self.running:
            raise KafkaRefError("Kafka already running")
        t0 = time.monotonic()
        cp = resolve_classpath()
        with open(os.path.join(self._tmp, "log4j2.properties"), "w") as f:
            f.write("status = error\nappender.out.type = Console\nappender.out.name = OUT\n"
                    "appender.out.layout.type = PatternLayout\n"
                    "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
                    "rootLogger.level = INFO\nrootLogger.appenderRef.out.ref = OUT\n")
        # The controller port must be known before start (the quorum names it); the broker's is ephemeral.
        self.controller_port = _free_port(self.host)
        props = os.path.join(self._tmp, "server.properties")
        with open(props, "w") as f:
            f.write(self._properties())
        shutil.rmtree(self.data_dir, ignore_errors=True)
        fmt = subprocess.run(self._java("kafka.tools.StorageTool", "format", "--standalone", "-t", _cluster_id(),
                                        "-c", props, cp=cp),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        if fmt.returncode != 0:
            raise KafkaRefError("kafka-storage format failed:\n%s" % fmt.stdout.decode(errors="replace")[-3000:])
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self._java("kafka.Kafka", props, cp=cp), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, cwd=self._tmp, close_fds=True,
                                         start_new_session=True)
        finally:
            log.close()
        _live.append(self)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            text = self.log_text()
            if READY in text:
                ports = [int(p) for p in LISTEN_RE.findall(text) if int(p) != self.controller_port]
                if not ports:
                    self.stop()
                    raise KafkaRefError("Kafka started but logged no PLAINTEXT port; log tail:\n%s" % self.log_tail())
                self.port = ports[-1]
                self.start_seconds = time.monotonic() - t0
                return self
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise KafkaRefError("Kafka exited with %s before it was ready; log tail:\n%s" % (rc, self.log_tail()))
            if time.monotonic() > deadline:
                self.stop()
                raise KafkaRefError("Kafka not ready after %.0fs; log tail:\n%s" % (self.ready_timeout,
                                                                                    self.log_tail()))
            time.sleep(0.1)

    def stop(self, timeout=60.0):
        """SIGTERM (Kafka shuts down cleanly), SIGKILL after `timeout`. Returns the exit code."""
        if self.proc is None:
            return None
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.proc = None
        if self in _live:
            _live.remove(self)
        return p.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False


def _serve(envfile):
    k = KafkaRef()
    stopping = []

    def on_signal(sig, frame):
        stopping.append(sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        k.start()
        tmp = envfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("KB_TARGET_BOOTSTRAP=%s\nKB_TARGET_DATA_DIR=%s\nKB_TARGET_VERSION=%s\nKB_TARGET_LOG=%s\n"
                    "KB_TARGET_START_SECONDS=%.1f\n" % (k.bootstrap, k.data_dir, k.version, k.log_path,
                                                       k.start_seconds))
        os.replace(tmp, envfile)  # the reader sees all lines or none
        print("kafka_ref: Apache Kafka %s ready at %s in %.1fs (log %s)" % (k.version, k.bootstrap,
                                                                          k.start_seconds, k.log_path), flush=True)
        while not stopping and k.running:
            time.sleep(0.2)
        if not k.running and not stopping:
            print("kafka_ref: Kafka exited on its own; log tail:\n%s" % k.log_tail(), flush=True)
            return 1
        t = time.monotonic()
        rc = k.stop()
        print("kafka_ref: Kafka stopped (exit %s) in %.1fs" % (rc, time.monotonic() - t), flush=True)
        return 0
    except KafkaRefError as e:
        print("kafka_ref: %s" % e, flush=True)
        return 1
    finally:
        k.cleanup()


def main(argv):
    if argv[:1] == ["resolve"]:
        cp = resolve_classpath()
        print("kafka_ref: Kafka %s classpath cached (%d jars) in %s" % (kafka_version(), len(cp.split(os.pathsep)),
                                                                       _classpath_cache()))
        return 0
    if argv[:1] == ["version"]:
        print(kafka_version())
        return 0
    if len(argv) == 2 and argv[0] == "serve":
        return _serve(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


def restart_same_dir(ref, timeout=None):
    """Stops a started KafkaRef and starts it again on the same data dir and server.properties, without the
    format that start() does: what a restart keeps (dynamic configs in the metadata log) stays. Returns ref."""
    if ref.controller_port is None:
        raise KafkaRefError("Kafka was never started")
    ref.stop()
    since = len(ref.log_text())
    log = open(ref.log_path, "ab")
    try:
        ref.proc = subprocess.Popen(ref._java("kafka.Kafka", os.path.join(ref._tmp, "server.properties"),
                                              cp=resolve_classpath()),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=ref._tmp,
                                    close_fds=True, start_new_session=True)
    finally:
        log.close()
    _live.append(ref)
    deadline = time.monotonic() + (timeout or ref.ready_timeout)
    while READY not in ref.log_text()[since:]:
        if ref.proc.poll() is not None:
            rc = ref.proc.returncode
            ref.proc = None
            raise KafkaRefError("Kafka exited with %s on restart; log tail:\n%s" % (rc, ref.log_tail()))
        if time.monotonic() > deadline:
            ref.stop()
            raise KafkaRefError("Kafka not ready after a restart; log tail:\n%s" % ref.log_tail())
        time.sleep(0.1)
    return ref


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

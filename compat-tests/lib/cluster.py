"""A kbroker cluster on one machine: N combined (broker,controller) nodes of one metadata quorum, node i on
127.0.0.(i+1) with an ephemeral client port and a controller (raft) port chosen here, each in a temp dir.

Owns: the nodes' processes and temp dirs (stop() ends both, also after a failed start). Must not: run anything
but kbroker processes of its own (a cluster is always ours, whatever KB_TARGET says).
"""
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time

from broker import DEFAULT_BIN
from ports import free_port

READY_RE = re.compile(r"kbroker ready: listening on PLAINTEXT://(127\.0\.0\.\d+):(\d+)")


class ClusterError(AssertionError):
    pass


class Node:
    def __init__(self, cluster, node_id, host, ctl_port):
        self.cluster = cluster
        self.node_id = node_id
        self.host = host
        self.ctl_port = ctl_port
        self.port = None
        self.proc = None
        self.dir = os.path.join(cluster.tmp, "node%d" % node_id)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "broker.log")
        self._log_fh = None

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def argv(self):
        c = self.cluster
        a = [c.binary,
             "--set", "process.roles=broker,controller",
             "--set", "node.id=%d" % self.node_id,
             "--set", "listeners=PLAINTEXT://%s:0,CONTROLLER://%s:%d" % (self.host, self.host, self.ctl_port),
             "--set", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
             "--set", "controller.listener.names=CONTROLLER",
             "--set", "controller.quorum.voters=%s" % c.voters,
             "--set", "log.dirs=%s" % self.data_dir,
             "--set", "shards=%d" % c.shards]
        for s in c.extra_sets:
            a += ["--set", s]
        return a

    def launch(self):
        """Starts the process; wait_ready() waits for its listener."""
        if self.running:
            raise ClusterError("node %d already running" % self.node_id)
        self._log_fh = open(self.log_path, "ab")
        self._log_fh.write(("---- start: %s\n" % " ".join(self.argv())).encode())
        self._log_fh.flush()
        self._start_off = self._log_fh.tell()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log_fh,
                                     stderr=self._log_fh, cwd=self.dir, close_fds=True)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(self._start_off)
                text = f.read().decode("utf-8", "replace")
            m = READY_RE.search(text)
            if m:
                self.port = int(m.group(2))
                return self
            if self.proc.poll() is not None:
                raise ClusterError("node %d exited with %s before becoming ready; log:\n%s"
                                   % (self.node_id, self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise ClusterError("node %d not ready after %.0fs; log:\n%s"
                                   % (self.node_id, timeout, self.log_tail()))
            time.sleep(0.05)

    def start(self, timeout=40.0):
        self.launch()
        return self.wait_ready(timeout)

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        rc = self.proc.returncode
        self._closed()
        return rc

    def stop(self, timeout=20.0):
        """SIGTERM, SIGKILL after timeout; the exit code (None if it had to be killed)."""
        if self.proc is None:
            return 0
        p = self.proc
        rc = None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        else:
            rc = p.returncode
        self._closed()
        return rc

    def _closed(self):
        self.proc = None
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def partition_batches(self, topic, partition):
        """The record batches of this node's replica of topic-partition, read from its segment files (what
        reached the disk): [(base offset, last offset, CRC)], in offset order. Direct I/O leaves the tail of a
        segment zero-padded until it is sealed: parsing stops at the first batch that is not one."""
        d = os.path.join(self.data_dir, "%s-%d" % (topic, partition))
        out = []
        try:
            names = sorted(n for n in os.listdir(d) if n.endswith(".log"))
        except FileNotFoundError:
            return out
        for name in names:
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            off = 0
            while off + 61 <= len(data):
                base, length, _epoch, magic, crc, _attrs, last_delta = struct.unpack_from(">qiibIhi", data, off)
                if length < 49 or magic != 2 or off + 12 + length > len(data):
                    break
                out.append((base, base + last_delta, crc))
                off += 12 + length
        return out


class Cluster:
    def __init__(self, n=3, shards=1, extra_sets=(), binary=None):
        self.binary = binary or os.environ.get("KB_BROKER_BIN") or DEFAULT_BIN
        if not os.access(self.binary, os.X_OK):
            raise ClusterError("broker binary %s not found (build it or set KB_BROKER_BIN)" % self.binary)
        self.shards = shards
        self.extra_sets = list(extra_sets)
        self.tmp = tempfile.mkdtemp(prefix="kb-cluster-")
        self.nodes = []
        for i in range(n):
            host = "127.0.0.%d" % (i + 1)
            self.nodes.append(Node(self, i + 1, host, free_port(host)))
        self.voters = ",".join("%d@%s:%d" % (x.node_id, x.host, x.ctl_port) for x in self.nodes)

    def start(self, timeout=60.0):
        """All nodes at once (each waits a bounded time for its quorum at start-up)."""
        try:
            for x in self.nodes:
                x.launch()
            for x in self.nodes:
                x.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def node(self, node_id):
        return self.nodes[node_id - 1]

    @property
    def bootstrap(self):
        return ",".join(x.bootstrap for x in self.nodes if x.running)

    def stop(self):
        """Stops every running node (SIGTERM) and removes the temp dir: {node id: exit code} of those that ran
        (None: had to be killed)."""
        rcs = {}
        for x in self.nodes:
            if not x.running:
                continue
            try:
                rcs[x.node_id] = x.stop()
            except Exception:
                x.kill9()
                rcs[x.node_id] = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        return rcs

    def logs(self):
        return "\n".join("==== node %d\n%s" % (x.node_id, x.log_tail()) for x in self.nodes)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

"""One broker per data dir and per port: a second kbroker on either exits at once with an ERROR
line; the first keeps serving. Against Apache Kafka the first broker is Kafka: a kbroker must keep off
Kafka's locked data dir (Kafka's .lock is a POSIX record lock, which kbroker's lock conflicts with) and off
its port. Also: connections are dealt out evenly over the shards."""

import os
import re
import socket
import struct
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from broker import Broker, is_kbroker, shards_from_env, target  # noqa: E402
from common import KCAT, uniq  # noqa: E402

# A second broker that refuses to start must be gone well before this.
EXIT_WITHIN_S = 10.0


def api_versions_ok(port, client_id=b"exclusive-test"):
    """Opens a new connection, sends ApiVersions v0, True if the answer has error 0."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
        s.sendall(struct.pack(">i", len(body)) + body)
        hdr = _recv(s, 4)
        frame = _recv(s, struct.unpack(">i", hdr)[0])
        corr, err = struct.unpack(">ih", frame[:6])
        return corr == 7 and err == 0
    finally:
        s.close()


def _recv(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise AssertionError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def free_port():
    from ports import free_port as pick

    return pick("127.0.0.1")


def run_second(first, data_dir, port):
    """Runs another broker to completion (killed after EXIT_WITHIN_S); returns (rc, seconds, log)."""
    argv = [first.binary, "--set", "listeners=PLAINTEXT://127.0.0.1:%d" % port, "--set",
            "log.dirs=%s" % data_dir, "--set", "shards=%d" % first.shards]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired as e:  # run() has killed it
        raise AssertionError("second broker still running after %.0fs; its log:\n%s"
                             % (EXIT_WITHIN_S, (e.output or b"").decode(errors="replace")))
    return p.returncode, time.monotonic() - t0, p.stdout.decode(errors="replace")


class ExclusiveTest(unittest.TestCase):
    def setUp(self):
        if target() == "external":
            self.skipTest("needs the first broker's data dir and the kbroker binary on this machine")
        self.first = Broker(shards=shards_from_env())
        self.addCleanup(self.first.cleanup)
        self.first.start()

    def tearDown(self):
        if self.first.running:
            self.first.stop(check=True)

    def assert_first_serves(self):
        topic = uniq("excl")
        kc = [KCAT, "-b", self.first.bootstrap]
        p = subprocess.run(kc + ["-P", "-t", topic], input=b"one\ntwo\n", capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run(kc + ["-C", "-t", topic, "-o", "beginning", "-c", "2", "-e"], capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), [b"one", b"two"])
        for _ in range(8):
            self.assertTrue(api_versions_ok(self.first.port))

    def test_same_data_dir_other_port(self):
        self.assert_first_serves()
        self.assertTrue(self.first.data_dir, "the target's data dir is not known")
        files_before = sorted(os.listdir(self.first.data_dir))
        rc, secs, log = run_second(self.first, self.first.data_dir, 0)
        self.assertNotEqual(rc, 0, log)
        self.assertLess(secs, EXIT_WITHIN_S)
        # The ERROR line names the dir and the lock file; the broker did nothing else of note.
        line = [ln for ln in log.splitlines() if " ERROR " in ln and ".lock" in ln]
        self.assertTrue(line, log)
        self.assertIn(self.first.data_dir, line[0])
        self.assertNotIn("kbroker ready", log)
        self.assertNotIn("recover", log.lower())
        if is_kbroker():  # Kafka's own dir keeps changing under its own work
            self.assertEqual(sorted(os.listdir(self.first.data_dir)), files_before)
        self.assertTrue(os.path.exists(os.path.join(self.first.data_dir, ".lock")))
        self.assert_first_serves()

    def test_other_data_dir_same_port(self):
        self.assert_first_serves()
        other = tempfile.mkdtemp(prefix="kb-excl-")
        self.addCleanup(shutil.rmtree, other, True)
        rc, secs, log = run_second(self.first, other, self.first.port)
        self.assertNotEqual(rc, 0, log)
        self.assertLess(secs, EXIT_WITHIN_S)
        self.assertTrue(re.search(r" ERROR .*127\.0\.0\.1:%d.*[Aa]ddress already in use" % self.first.port, log),
                        log)
        self.assertNotIn("kbroker ready", log)
        # Every new connection reaches the first broker (none is left to a half-started one).
        self.assert_first_serves()

    def test_restart_after_stop_takes_the_lock(self):
        # The lock dies with the process: a clean stop and a kill -9 both free the dir.
        self.first.stop(check=True)
        self.first.start()
        self.assert_first_serves()
        self.first.kill9()
        self.first.start()
        self.assert_first_serves()


class ShardSpreadTest(unittest.TestCase):
    """Connections are dealt out round-robin: with 2 shards each gets half of them."""

    N = 16

    def test_connections_balanced(self):
        mport = free_port()
        b = Broker(shards=2, extra_sets=["metrics.port=%d" % mport])
        self.addCleanup(b.cleanup)
        b.start()
        socks = []
        try:
            for _ in range(self.N):
                s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
                socks.append(s)
            # A request answered on each means each was adopted by its shard.
            for s in socks:
                body = struct.pack(">hhih", 18, 0, 3, 4) + b"bal0"
                s.sendall(struct.pack(">i", len(body)) + body)
                _recv(s, struct.unpack(">i", _recv(s, 4))[0])
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()
            per = {int(m.group(1)): int(m.group(2))
                   for m in re.finditer(r'^kbroker_connections\{shard="(\d+)"\} (\d+)$', text, re.M)}
            self.assertEqual(sorted(per), [0, 1], text)
            self.assertEqual(sum(per.values()), self.N, per)
            self.assertLessEqual(abs(per[0] - per[1]), 1, per)
        finally:
            for s in socks:
                s.close()
        b.stop(check=True)


if __name__ == "__main__":
    unittest.main()

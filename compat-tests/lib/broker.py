"""Start and stop a real kbroker process for the compat tests (stdlib only).

    b = Broker(shards=2)
    b.start()            # waits for the "kbroker ready" line, learns the port
    b.bootstrap          # "127.0.0.1:<port>"
    b.stop()             # SIGTERM, wait, SIGKILL after a timeout; asserts exit 0
    b.kill9()            # SIGKILL, no assertions
    b.restart()          # start again on the same data dir (new ephemeral port)
    b.log_text()         # everything the broker wrote to stderr so far
    b.cleanup()          # stop if running and remove the temp dir (if we made it)

Every Broker ever started is killed at interpreter exit (atexit), so a
crashing test never leaves a broker behind.  Loopback only, ephemeral ports.

Targets: with KB_TARGET unset or "kbroker" a Broker is a kbroker process of its own. With
KB_TARGET=kafka (the reference Apache Kafka run.sh starts once per suite) or KB_TARGET=external
(any broker), start() attaches to KB_TARGET_BOOTSTRAP instead and stop() detaches; what only a
process of our own can do (kill9, restart, its log, settings it was not started with) raises
unittest.SkipTest naming the reason, so a kbroker-specific test skips instead of failing.
"""

import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import weakref

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(_HERE, "..", ".."))
DEFAULT_BIN = os.path.join(REPO, "build", "bin", "kbroker")

READY_RE = re.compile(r"kbroker ready: listening on PLAINTEXT://127\.0\.0\.1:(\d+)")

_live = weakref.WeakSet()


def _kill_all():
    for b in list(_live):
        try:
            b.kill9()
        except Exception:
            pass


atexit.register(_kill_all)


def _chain_signal(signum):
    """Make SIGTERM/SIGINT to the test process run atexit (kill brokers)."""
    prev = signal.getsignal(signum)

    def handler(sig, frame):
        _kill_all()
        if callable(prev):
            prev(sig, frame)
        else:
            sys.exit(128 + sig)

    try:
        signal.signal(signum, handler)
    except ValueError:  # not in main thread
        pass


_chain_signal(signal.SIGTERM)


def shards_from_env(default=1):
    return int(os.environ.get("KB_SHARDS", default))


def target():
    """"kbroker" (a process per Broker), "kafka" (the reference Apache Kafka) or "external"."""
    t = os.environ.get("KB_TARGET", "kbroker") or "kbroker"
    if t not in ("kbroker", "kafka", "external"):
        raise BrokerError("KB_TARGET=%r: expected kbroker, kafka or external (run.sh --target HOST:PORT "
                          "sets external)" % t)
    return t


_env_target = target  # Broker.__init__'s `target` parameter shadows the function


def is_kbroker():
    return target() == "kbroker"


def target_name():
    """For messages: "kbroker", "Apache Kafka 4.4.0" or the external address."""
    t = target()
    if t == "kafka":
        return "Apache Kafka %s" % os.environ.get("KB_TARGET_VERSION", "?")
    if t == "external":
        return os.environ.get("KB_TARGET_BOOTSTRAP", "external broker")
    return "kbroker"


def target_settings():
    """Settings a non-kbroker target is known to run with (kafka_ref.REF_SETTINGS; an external broker is
    documented to need the same)."""
    from kafka_ref import REF_SETTINGS
    return dict(REF_SETTINGS)


def skip_unless_kbroker(what):
    if not is_kbroker():
        raise unittest.SkipTest("kbroker only (target %s): %s" % (target_name(), what))


class BrokerError(AssertionError):
    pass


class Broker:
    def __init__(self, shards=None, data_dir=None, extra_sets=(), binary=None, ready_timeout=20.0, target=None):
        """target=None follows KB_TARGET; target="kbroker" is always a kbroker process of the caller's own
        (e.g. the destination a test kills and inspects)."""
        self.shards = shards_from_env() if shards is None else int(shards)
        self.binary = binary or os.environ.get("KB_BROKER_BIN") or DEFAULT_BIN
        self.ready_timeout = ready_timeout
        self.extra_sets = list(extra_sets)
        self.target = target if target is not None else _env_target()
        # A data dir or binary of the caller's choosing only means something for a process of our own.
        self._needs_own = data_dir is not None or binary is not None
        self.host = "127.0.0.1"
        self.proc = None
        self.port = None
        self.starts = 0
        if self.target != "kbroker":
            # Attached to a broker we did not start: no process, no temp dir; the reference Kafka's log dir
            # is local and shown to tests that inspect segment files.
            self._tmp = None
            self._own_data = False
            self.data_dir = os.environ.get("KB_TARGET_DATA_DIR") or None
            self.log_path = os.environ.get("KB_TARGET_LOG") or None
            self._log_fh = None
            self._attached = False
            return
        self._tmp = tempfile.mkdtemp(prefix="kb-compat-")
        self._own_data = data_dir is None
        self.data_dir = data_dir or os.path.join(self._tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self._tmp, "broker.log")
        self._log_fh = None

    # ------------------------------------------------------------------
    @property
    def bootstrap(self):
        if self.port is None:
            raise BrokerError("broker not started")
        return "%s:%d" % (self.host, self.port)

    @property
    def running(self):
        if self.target != "kbroker":
            return self._attached
        return self.proc is not None and self.proc.poll() is None

    def _own_process_only(self, what):
        # Per Broker, not per KB_TARGET: Broker(target="kbroker") is ours on any target.
        if self.target != "kbroker":
            skip_unless_kbroker(what)

    def _attach(self):
        if self._needs_own:
            self._own_process_only("runs kbroker with a data dir or binary of its own")
        bad = [s for s in self.extra_sets
               if target_settings().get(s.split("=", 1)[0]) != s.partition("=")[2]]
        if bad:
            raise unittest.SkipTest("needs broker settings %s that target %s does not run with"
                                    % (", ".join(bad), target_name()))
        boot = os.environ.get("KB_TARGET_BOOTSTRAP", "")
        host, _, port = boot.rpartition(":")
        if not host or not port.isdigit():
            raise BrokerError("KB_TARGET=%s needs KB_TARGET_BOOTSTRAP=HOST:PORT (got %r)" % (self.target, boot))
        if self.starts:
            self._own_process_only("restarts the broker process")
        self.starts += 1
        self.host, self.port = host.strip("[]"), int(port)
        self._attached = True
        return self

    def argv(self):
        a = [self.binary,
             "--set", "listeners=PLAINTEXT://127.0.0.1:0",
             "--set", "log.dirs=%s" % self.data_dir,
             "--set", "shards=%d" % self.shards]
        for s in self.extra_sets:
            a += ["--set", s]
        return a

    def start(self):
        if self.running:
            raise BrokerError("broker already running")
        if self.target != "kbroker":
            return self._attach()
        if not os.access(self.binary, os.X_OK):
            raise BrokerError("broker binary %s not found (build it or set KB_BROKER_BIN)" % self.binary)
        self.starts += 1
        # Append so a restart keeps the earlier run's lines in the same file.
        self._log_fh = open(self.log_path, "ab")
        self._log_fh.write(("---- start #%d: %s\n" % (self.starts, " ".join(self.argv()))).encode())
        self._log_fh.flush()
        start_off = self._log_fh.tell()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log_fh,
                                     stderr=self._log_fh, cwd=self._tmp, close_fds=True)
        _live.add(self)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(start_off)
                text = f.read().decode("utf-8", "replace")
            m = READY_RE.search(text)
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise BrokerError("broker exited with %s before becoming ready; log:\n%s"
                                  % (self.proc.returncode, self.log_text()))
            if time.monotonic() > deadline:
                self.kill9()
                raise BrokerError("broker not ready after %.0fs; log:\n%s" % (self.ready_timeout, self.log_text()))
            time.sleep(0.02)

    def stop(self, timeout=15.0, check=True):
        """SIGTERM; SIGKILL after `timeout`.  Returns the exit code.

        With check=True raises BrokerError unless the broker exited 0 on its own.
        """
        if self.target != "kbroker":
            self._attached = False
            return 0
        if self.proc is None:
            return None
        p = self.proc
        killed = False
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                p.kill()
                p.wait()
        rc = p.returncode
        self._closed()
        if check:
            if killed:
                raise BrokerError("broker did not stop within %.0fs of SIGTERM (SIGKILLed); log tail:\n%s"
                                  % (timeout, self.log_tail()))
            if rc != 0:
                raise BrokerError("broker exited with %s after SIGTERM (expected 0); log tail:\n%s"
                                  % (rc, self.log_tail()))
        return rc

    def kill9(self):
        if self.target != "kbroker":
            if not self._attached:
                return None
            self._own_process_only("kills the broker process (kill -9)")
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        rc = self.proc.returncode
        self._closed()
        return rc

    def restart(self, **stop_kw):
        self._own_process_only("restarts the broker process")
        if self.running:
            self.stop(**stop_kw)
        return self.start()

    def _closed(self):
        self.proc = None
        _live.discard(self)
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None

    # ------------------------------------------------------------------
    def log_text(self):
        """The broker's log. kbroker's lines are ours: asserting on them is kbroker only."""
        self._own_process_only("asserts on kbroker's log lines")
        return self._read_log()

    def _read_log(self):
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        # For failure messages on any target: the reference Kafka's log when there is one.
        return "\n".join(self._read_log().splitlines()[-n:])

    def wait_log(self, pattern, timeout=5.0, since=0):
        """Wait until the log (from byte offset `since`) matches regex `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            t = self.log_text()[since:]
            m = rx.search(t)
            if m:
                return m
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def log_size(self):
        return len(self.log_text())

    def cleanup(self):
        if self.target != "kbroker":
            self._attached = False
            return
        if self.running:
            self.kill9()
        shutil.rmtree(self._tmp, ignore_errors=True)
        if not self._own_data:
            pass  # caller owns data_dir

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if self.running:
                self.stop(check=exc[0] is None)
        finally:
            self.cleanup()
        return False

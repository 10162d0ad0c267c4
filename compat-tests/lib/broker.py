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


class BrokerError(AssertionError):
    pass


class Broker:
    def __init__(self, shards=None, data_dir=None, extra_sets=(), binary=None, ready_timeout=20.0, nofile=None):
        """nofile: run the broker with RLIMIT_NOFILE (soft and hard) set to this."""
        self.shards = shards_from_env() if shards is None else int(shards)
        self.nofile = nofile
        self.binary = binary or os.environ.get("KB_BROKER_BIN") or DEFAULT_BIN
        self.ready_timeout = ready_timeout
        self.extra_sets = list(extra_sets)
        self._tmp = tempfile.mkdtemp(prefix="kb-compat-")
        self._own_data = data_dir is None
        self.data_dir = data_dir or os.path.join(self._tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.proc = None
        self.port = None
        self.starts = 0
        self.log_path = os.path.join(self._tmp, "broker.log")
        self._log_fh = None

    # ------------------------------------------------------------------
    @property
    def bootstrap(self):
        if self.port is None:
            raise BrokerError("broker not started")
        return "127.0.0.1:%d" % self.port

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

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
        if not os.access(self.binary, os.X_OK):
            raise BrokerError("broker binary %s not found (build it or set KB_BROKER_BIN)" % self.binary)
        self.starts += 1
        # Append so a restart keeps the earlier run's lines in the same file.
        self._log_fh = open(self.log_path, "ab")
        self._log_fh.write(("---- start #%d: %s\n" % (self.starts, " ".join(self.argv()))).encode())
        self._log_fh.flush()
        start_off = self._log_fh.tell()
        preexec = None
        if self.nofile is not None:
            import resource
            lim = int(self.nofile)

            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (lim, lim))
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log_fh,
                                     stderr=self._log_fh, cwd=self._tmp, close_fds=True, preexec_fn=preexec)
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
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        rc = self.proc.returncode
        self._closed()
        return rc

    def restart(self, **stop_kw):
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
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

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

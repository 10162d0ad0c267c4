"""Helpers of the consumer-group compat tests: workers as subprocesses, waiting for assignments."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from common import BrokerTestCase, uniq  # noqa: E402,F401

PY = os.environ.get("KB_PYTHON", "/usr/bin/python3")
# Short timeouts keep the suite fast; the broker must accept them.
GROUP_SETS = ("group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000",
              "offsets.topic.num.partitions=10")


class Worker:
    def __init__(self, lib, bootstrap, group, topic, tmpdir, name, **opts):
        self.name = name
        self.outfile = os.path.join(tmpdir, "%s.consumed" % name)
        args = [PY, os.path.join(HERE, "worker.py"), lib, bootstrap, group, topic, self.outfile]
        args += ["%s=%s" % kv for kv in opts.items()]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events = []
        self.owned = set()
        self.lock = threading.Lock()
        self.stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)
                if ev.get("ev") == "owned":
                    self.owned = set(ev["parts"])

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def get_owned(self):
        with self.lock:
            return set(self.owned)

    def assign_events(self):
        with self.lock:
            return [e for e in self.events if e.get("ev") == "owned"]

    def close(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with self.lock:
            self.owned = set()

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with self.lock:
            self.owned = set()

    def consumed(self):
        got = set()
        try:
            with open(self.outfile) as f:
                for line in f:
                    p, o = line.split()
                    got.add((int(p), int(o)))
        except OSError:
            pass
        return got


def wait_partitioned(workers, nparts, timeout=30.0):
    """Until the workers' owned sets are disjoint and cover every partition; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        sets = [w.get_owned() for w in workers]
        union = set().union(*sets) if sets else set()
        if union == set(range(nparts)) and sum(len(s) for s in sets) == nparts and all(sets):
            # Stable for a moment: no rebalance in flight.
            time.sleep(0.5)
            again = [w.get_owned() for w in workers]
            if again == sets:
                return sets
        if time.monotonic() > deadline:
            raise AssertionError("no clean partitioning after %.0fs: %s" % (
                timeout, {w.name: sorted(s) for w, s in zip(workers, sets)}))
        time.sleep(0.1)


def wait_consumed(workers, expect, timeout=60.0):
    """Until the union of consumed (partition, offset) pairs contains `expect`."""
    deadline = time.monotonic() + timeout
    while True:
        got = set()
        for w in workers:
            got |= w.consumed()
        missing = expect - got
        if not missing:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("%d records never consumed, e.g. %s" % (len(missing), sorted(missing)[:5]))
        time.sleep(0.2)

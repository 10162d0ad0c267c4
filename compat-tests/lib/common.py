"""Shared helpers for the Python compat tests (unittest, stdlib + the client under test)."""

import os
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker import Broker, shards_from_env  # noqa: E402

KCAT = os.environ.get("KB_KCAT", "kcat")


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


class BrokerTestCase(unittest.TestCase):
    """One broker per test class; stopped (and checked for a clean exit) at the end."""

    broker = None
    extra_sets = ()

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(shards=shards_from_env(), extra_sets=cls.extra_sets)
        # Registered before start(): runs even if start() or a later setUpClass step fails.
        cls.addClassCleanup(cls._stop_broker)
        cls.broker.start()

    @classmethod
    def _stop_broker(cls):
        b = cls.broker
        try:
            if b.running:
                b.stop(check=True)
        finally:
            b.cleanup()

    @property
    def bootstrap(self):
        return self.broker.bootstrap

    def kcat(self, *args, input=None, timeout=30, check=True):
        cmd = [KCAT, "-b", self.bootstrap] + list(args)
        p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and p.returncode != 0:
            self.fail("kcat %s exited %d\nstderr:\n%s\nbroker log tail:\n%s"
                      % (" ".join(args), p.returncode, p.stderr.decode(errors="replace"), self.broker.log_tail()))
        return p

"""Security operations (issue 15): ssl.principal.mapping.rules on the mTLS subject DN, the broker's ssl.* / sasl.*
keys in DescribeConfigs (sensitive ones null), certificate reload without a restart, a failed-login rate limit per
client address, and kbroker-admin / kbroker-mirror over SSL and SASL_SSL. Each hostile case checks that the broker
keeps serving others. Against Apache Kafka where Kafka has the behaviour (mapping rules, DescribeConfigs); the
file-watch reload, the per-address delay and the tools are kbroker's own and skip there."""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from broker import BrokerError, is_kbroker, target  # noqa: E402
from secure import (HOST, USERS, SASL_AUTHENTICATION_FAILED, SecureTarget, authenticate, closed, handshake,  # noqa: E402
                    make_pki, plain_token)
from wire import read_frame, request  # noqa: E402

try:
    from kafka_ref import KafkaRefError
except ImportError:  # pragma: no cover
    KafkaRefError = AssertionError

BAD_RULE = "RULE:^CN=(.*?),O=(.*)$/$1/X"


def tls_socket(pki, port, cert=True):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    if cert:
        ctx.load_cert_chain(os.path.join(pki, "client.crt"), os.path.join(pki, "client.key"))
    raw = socket.create_connection((HOST, port), timeout=10)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except Exception:
        raw.close()
        raise


def served(pki, port, cert=True):
    """True when an ApiVersions over TLS gets its answer; False when the broker closes the connection."""
    try:
        s = tls_socket(pki, port, cert)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return False
    try:
        s.sendall(request(18, 0, 1, b""))
        s.settimeout(10)
        r = read_frame(s)
        return struct.unpack(">ih", r[:6]) == (1, 0)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, OSError, AssertionError):
        return False
    finally:
        s.close()


class PkiCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-pki-ops-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)

    def start(self, extra=None):
        t = SecureTarget(self.pki, extra=extra)
        self.addCleanup(t.stop)
        t.start()
        return t


class PrincipalMappingTest(PkiCase):
    """ssl.principal.mapping.rules: the rule list is applied to the subject DN exactly as Kafka formats it
    (RFC 2253, "CN=client,O=kbroker-tests"); with no applicable rule the client is refused, others are served."""

    def test_invalid_rule_refused_at_start(self):
        t = SecureTarget(self.pki, extra={"ssl.principal.mapping.rules": BAD_RULE})
        self.addCleanup(t.stop)
        with self.assertRaises((BrokerError, KafkaRefError, AssertionError, RuntimeError)):
            t.start()
        want = "Invalid rule: `%s`, unmatched substring: `X`" % BAD_RULE
        self.assertIn(want, t.log_text())

    def test_rule_matching_the_rfc2253_dn(self):
        # Only a DN spelled exactly "CN=client,O=kbroker-tests" (RFC 2253 order: most specific first) matches.
        t = self.start({"ssl.principal.mapping.rules": "RULE:^CN=client,O=kbroker-tests$/mapped-$0/L"})
        self.assertTrue(served(self.pki, t.ports["MTLS"]))
        self.assertTrue(served(self.pki, t.ports["SSL"], cert=False))

    def test_no_rule_applies_refused(self):
        t = self.start({"ssl.principal.mapping.rules": "RULE:^CN=someone-else,O=(.*)$/$1/, "
                                                         "RULE:^O=kbroker-tests,CN=client$/reversed/"})
        self.assertFalse(served(self.pki, t.ports["MTLS"]),
                         "a certificate no mapping rule applies to was served")
        # Without a client certificate the principal is ANONYMOUS: no rule is consulted.
        self.assertTrue(served(self.pki, t.ports["SSL"], cert=False))
        # The broker keeps serving, the refused client again refused.
        self.assertFalse(served(self.pki, t.ports["MTLS"]))
        if is_kbroker():
            self.assertTrue(t.wait_log("no ssl.principal.mapping.rules rule applies to CN=client,O=kbroker-tests"))


if __name__ == "__main__":
    unittest.main()

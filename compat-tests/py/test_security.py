"""Listeners with security protocols: SSL (PEM keystore), SASL_PLAINTEXT and SASL_SSL (PKCS12 keystore) with
SASL/PLAIN, and an SSL listener with ssl.client.auth=required (mTLS). A throwaway CA, server and client certificate
are made with openssl in a temp dir. Produce/consume round trips with confluent-kafka over each protocol, then
what must be refused: a client without a certificate on the mTLS listener, a wrong password, a request before
authentication, an unsupported mechanism, garbage and a truncated ClientHello on the TLS port; after each the
broker keeps serving. On the kafka target the test starts its own Apache Kafka with the same listeners (the
shared one has only PLAINTEXT)."""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import uniq  # noqa: E402
from secure import (HOST, USERS, SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE,  # noqa: E402
                    SecureTarget, api_versions_keys, authenticate, closed, eof_within, handshake, make_pki,
                    plain_token)
from wire import read_frame, request  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-pki-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.t = SecureTarget(cls.pki)
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()

    def p(self, name):
        return os.path.join(self.pki, name)

    def client_conf(self, listener, user="alice", password=None, cert=True):
        c = {"bootstrap.servers": self.t.addr(listener), "socket.timeout.ms": 10000}
        if listener in ("SSL", "SASL_SSL", "MTLS"):
            c["security.protocol"] = "SASL_SSL" if listener == "SASL_SSL" else "SSL"
            c["ssl.ca.location"] = self.p("ca.pem")
            if listener == "MTLS" and cert:
                c["ssl.certificate.location"] = self.p("client.crt")
                c["ssl.key.location"] = self.p("client.key")
        if listener.startswith("SASL_"):
            c["security.protocol"] = listener
            c["sasl.mechanisms"] = "PLAIN"
            c["sasl.username"] = user
            c["sasl.password"] = USERS[user] if password is None else password
        return c

    def round_trip(self, listener, user="alice"):
        topic = uniq("sec-" + listener.lower())
        conf = self.client_conf(listener, user)
        errors = []
        p = Producer(dict(conf, **{"error_cb": errors.append}))
        values = [("%s-%d" % (listener, i)).encode() for i in range(20)]
        for v in values:
            p.produce(topic, v)
        self.assertEqual(p.flush(30), 0, "undelivered messages over %s; errors %s" % (listener, errors))
        c = Consumer(dict(conf, **{"group.id": uniq("g"), "enable.auto.commit": False}))
        try:
            c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            got, deadline = [], time.monotonic() + 30
            while len(got) < len(values) and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.append(m.value())
            self.assertEqual(got, values, "over %s" % listener)
        finally:
            c.close()

    def raw(self, listener, tls=False, cert=False):
        s = socket.create_connection((HOST, self.t.ports[listener]), timeout=10)
        if tls:
            ctx = ssl.create_default_context(cafile=self.p("ca.pem"))
            if cert:
                ctx.load_cert_chain(self.p("client.crt"), self.p("client.key"))
            s = ctx.wrap_socket(s, server_hostname="localhost")
        self.addCleanup(s.close)
        return s

    # ---- round trips -------------------------------------------------------------------------

    def test_round_trip_plaintext(self):
        self.round_trip("PLAINTEXT")

    def test_round_trip_ssl(self):
        self.round_trip("SSL")

    def test_round_trip_sasl_plaintext(self):
        self.round_trip("SASL_PLAINTEXT")
        self.round_trip("SASL_PLAINTEXT", user="bob")  # spaces in the password

    def test_round_trip_sasl_ssl(self):
        self.round_trip("SASL_SSL")

    def test_round_trip_mtls(self):
        self.round_trip("MTLS")

    # ---- refusals ------------------------------------------------------------------------------

    def test_mtls_without_certificate_refused(self):
        raw = socket.create_connection((HOST, self.t.ports["MTLS"]), timeout=10)
        self.addCleanup(raw.close)
        ctx = ssl.create_default_context(cafile=self.p("ca.pem"))
        refused = False
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            # TLS 1.3: the server checks the (missing) certificate after the client's handshake finished;
            # the refusal arrives as an alert or a close on the first read.
            s.sendall(request(18, 0, 1, b""))
            refused = closed(s)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            refused = True
        self.assertTrue(refused, "a client without a certificate was served on the mTLS listener")
        self.round_trip("MTLS")

    def tls_version_with(self, listener, maximum):
        ctx = ssl.create_default_context(cafile=self.p("ca.pem"))
        ctx.maximum_version = maximum
        raw = socket.create_connection((HOST, self.t.ports[listener]), timeout=10)
        self.addCleanup(raw.close)
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, ConnectionResetError):
            return None
        self.addCleanup(s.close)
        return s.version()

    def test_enabled_protocols(self):
        """ssl.enabled.protocols: both by default; a TLSv1.3-only listener refuses a TLSv1.2 client."""
        self.assertEqual(self.tls_version_with("SSL", ssl.TLSVersion.TLSv1_2), "TLSv1.2")
        self.assertEqual(self.tls_version_with("SSL", ssl.TLSVersion.TLSv1_3), "TLSv1.3")
        self.assertIsNone(self.tls_version_with("TLS13", ssl.TLSVersion.TLSv1_2), "TLSv1.2 accepted on TLS13")
        self.assertEqual(self.tls_version_with("TLS13", ssl.TLSVersion.TLSv1_3), "TLSv1.3")

    def test_wrong_password_seen_by_client(self):
        s = self.raw("SASL_PLAINTEXT")
        self.assertEqual(handshake(s, "PLAIN"), (0, ["PLAIN"]))
        t0 = time.monotonic()
        err, msg = authenticate(s, plain_token("alice", "wrong"))
        self.assertEqual((err, msg), (SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password"))
        self.assertGreaterEqual(time.monotonic() - t0, 0.09, "connection.failed.authentication.delay.ms ignored")
        self.assertTrue(closed(s), "connection not closed after a failed authentication")
        # Unknown user: same answer.
        s2 = self.raw("SASL_PLAINTEXT")
        handshake(s2, "PLAIN")
        self.assertEqual(authenticate(s2, plain_token("mallory", "x"))[0], SASL_AUTHENTICATION_FAILED)
        # And a real client reports it.
        errors = []
        p = Producer(dict(self.client_conf("SASL_SSL", password="nope"), **{"error_cb": errors.append}))
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            p.poll(0.2)
        self.assertTrue(errors, "the client saw no error with a wrong password")
        self.assertEqual(errors[0].code(), KafkaError._AUTHENTICATION, errors[0])
        self.assertIn("Invalid username or password", errors[0].str())
        self.round_trip("SASL_SSL")

    def test_request_before_authentication_closes(self):
        s = self.raw("SASL_PLAINTEXT")
        s.sendall(request(3, 1, 1, struct.pack(">i", -1)))  # Metadata v1, all topics
        self.assertTrue(closed(s), "Metadata before authentication was not refused")
        # After a handshake, still not authenticated.
        s = self.raw("SASL_PLAINTEXT")
        handshake(s, "PLAIN")
        since = len(self.t.log_text())
        s.sendall(request(3, 1, 2, struct.pack(">i", -1)))
        # Kafka answers this one with Metadata's error response (ILLEGAL_SASL_STATE) before closing, kbroker
        # closes at once: both refuse to serve it and close.
        self.assertTrue(eof_within(s), "Metadata between handshake and authentication was not refused")
        if self.t.kind == "kbroker":
            self.assertTrue(self.t.wait_log("request before SASL authentication", since=since))
        # ApiVersions too: after the handshake only SaslAuthenticate may come.
        s = self.raw("SASL_PLAINTEXT")
        handshake(s, "PLAIN")
        s.sendall(request(18, 0, 3, b""))
        self.assertTrue(eof_within(s), "ApiVersions between handshake and authentication was served")
        self.round_trip("SASL_PLAINTEXT")

    def test_oversized_frame_before_authentication_closes(self):
        s = self.raw("SASL_PLAINTEXT")
        s.sendall(struct.pack(">i", 524288 + 1) + b"\0" * 1024)
        self.assertTrue(closed(s), "a frame above sasl.server.max.receive.size was accepted before authentication")

    def test_unsupported_mechanism(self):
        s = self.raw("SASL_PLAINTEXT")
        err, mechs = handshake(s, "SCRAM-SHA-256")
        self.assertEqual((err, mechs), (UNSUPPORTED_SASL_MECHANISM, ["PLAIN"]))

    def test_handshake_v0_bare_token(self):
        """Old clients: SaslHandshake v0, then the PLAIN token as a bare frame, answered by an empty one."""
        s = self.raw("SASL_PLAINTEXT")
        self.assertEqual(handshake(s, "PLAIN", version=0), (0, ["PLAIN"]))
        tok = plain_token("alice", "alice-secret")
        s.sendall(struct.pack(">i", len(tok)) + tok)
        self.assertEqual(read_frame(s), b"")
        keys = api_versions_keys(s)
        self.assertIn(3, keys)
        s.sendall(request(3, 1, 5, struct.pack(">i", 0)))  # Metadata v1, no topics: served now
        self.assertEqual(struct.unpack(">i", read_frame(s)[:4])[0], 5)

    def test_handshake_v0_bad_token_closes(self):
        s = self.raw("SASL_PLAINTEXT")
        handshake(s, "PLAIN", version=0)
        tok = plain_token("alice", "bad")
        s.sendall(struct.pack(">i", len(tok)) + tok)
        self.assertTrue(closed(s))

    def test_sasl_apis_on_plaintext(self):
        s = self.raw("PLAINTEXT")
        keys = api_versions_keys(s)
        self.assertEqual(keys.get(17), (0, 1))
        self.assertEqual(keys.get(36), (0, 2))
        self.assertEqual(handshake(s, "PLAIN", corr=3), (ILLEGAL_SASL_STATE, []))

    def test_authenticated_then_served(self):
        s = self.raw("SASL_SSL", tls=True)
        self.assertEqual(handshake(s, "PLAIN"), (0, ["PLAIN"]))
        self.assertEqual(authenticate(s, plain_token("bob", USERS["bob"])), (0, ""))
        s.sendall(request(3, 1, 7, struct.pack(">i", 0)))
        self.assertEqual(struct.unpack(">i", read_frame(s)[:4])[0], 7)
        # A second SaslAuthenticate after success.
        err, _ = authenticate(s, plain_token("bob", USERS["bob"]), corr=8)
        self.assertEqual(err, ILLEGAL_SASL_STATE)

    def test_garbage_and_truncated_client_hello_on_tls_port(self):
        # A client connected before the abuse keeps working through it.
        before = self.raw("SSL", tls=True)
        self.assertIn(3, api_versions_keys(before))
        since = len(self.t.log_text())
        s = socket.create_connection((HOST, self.t.ports["SSL"]), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
        self.assertTrue(eof_within(s), "garbage on the SSL port did not close the connection")
        # The first 60 bytes of a real ClientHello, then the client goes quiet (half-close).
        hello = self.client_hello()[:60]
        s = socket.create_connection((HOST, self.t.ports["SSL"]), timeout=10)
        self.addCleanup(s.close)
        s.sendall(hello)
        s.shutdown(socket.SHUT_WR)
        self.assertTrue(eof_within(s), "a truncated ClientHello did not close the connection")
        if self.t.kind == "kbroker":
            self.assertTrue(self.t.wait_log("SSL handshake failed", since=since), "no log line for the bad TLS")
        else:
            self.assertTrue(self.t.wait_log("Failed authentication with /127.0.0.1", since=since, timeout=10))
        self.assertIn(3, api_versions_keys(before, corr=11))
        self.round_trip("SSL")

    def test_java_console_clients(self):
        """The Java client (kafka-clients 4.4.0, through Kafka's console producer and consumer) over each protocol."""
        java_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "java")
        if subprocess.run([os.path.join(java_dir, "build.sh")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=600).returncode != 0:
            raise unittest.SkipTest("the Java suite (compat-tests/java/build.sh) does not build here")
        with open(os.path.join(java_dir, "target", "classpath.txt")) as f:
            cp = f.read().strip()
        jaas = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="%s";'
        for listener in ("SSL", "SASL_PLAINTEXT", "SASL_SSL", "MTLS"):
            props = {"security.protocol": "SSL" if listener == "MTLS" else listener}
            if listener != "SASL_PLAINTEXT":
                props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": self.p("ca.pem")})
            if listener == "MTLS":
                props.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": self.p("client-keystore.pem")})
            if listener.startswith("SASL_"):
                props.update({"sasl.mechanism": "PLAIN", "sasl.jaas.config": jaas % USERS["alice"]})
            conf = os.path.join(self.pki, "java-%s.properties" % listener)
            with open(conf, "w") as f:
                f.write("".join("%s=%s\n" % kv for kv in props.items()))
            topic = uniq("sec-java-" + listener.lower())
            java = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp]
            lines = ["%s-java-%d" % (listener, i) for i in range(5)]
            p = subprocess.run(java + ["org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server",
                                       self.t.addr(listener), "--topic", topic, "--command-config", conf],
                               input="\n".join(lines).encode() + b"\n", stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=120)
            self.assertEqual(p.returncode, 0, "Java producer over %s:\n%s" % (listener, p.stdout.decode()[-3000:]))
            c = subprocess.run(java + ["org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                                       self.t.addr(listener), "--topic", topic, "--command-config", conf,
                                       "--from-beginning", "--max-messages", str(len(lines)), "--timeout-ms",
                                       "30000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(c.stdout.decode().split(), lines,
                             "Java consumer over %s:\n%s" % (listener, c.stderr.decode()[-3000:]))

    def client_hello(self):
        """The bytes a TLS client sends first, captured from Python's ssl through a memory BIO."""
        ctx = ssl.create_default_context()
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return out.read()


if __name__ == "__main__":
    unittest.main()

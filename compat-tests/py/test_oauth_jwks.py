"""SASL/OAUTHBEARER with the JWKS fetched from an https:// endpoint and refreshed (Kafka's RefreshingHttpsJwks).

The test serves the JWKS itself over HTTPS (python http.server + ssl, certificate from secure.make_pki's CA, which
the broker trusts through the JVM's default trust store for Kafka and kbroker.sasl.oauthbearer.jwks.endpoint.
ca.file for kbroker). refresh.ms is an hour, so only the on-demand refresh for an unknown kid can explain a new
key being accepted: a token with kid "a" works; the endpoint rotates to key "b" only; a token with kid "b" is
accepted within seconds and kid "a" is then refused; with the endpoint answering nothing, a token with an unknown
kid makes the broker try again, fail, and keep key "b" working. kbroker only: an https endpoint unreachable or
untrusted at start, and plain http://, fail the start with a message; a file:// JWKS is re-read every refresh.ms
(a key replaced under the same kid, which no unknown-kid refresh can pick up)."""

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker import Broker, BrokerError  # noqa: E402
from common import kbroker_only  # noqa: E402
from secure import HOST, SASL_AUTHENTICATION_FAILED, SecureTarget, free_port, handshake, make_pki  # noqa: E402
from test_oauth import (AUDIENCE, INVALID_TOKEN, ISSUER, MODULE, VALIDATOR, Keys, authenticate_full,  # noqa: E402
                        client_response, uint_b64u)

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

CA_KEY = "kbroker.sasl.oauthbearer.jwks.endpoint.ca.file"


def rsa_jwk(key, kid):
    n = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": uint_b64u(n.n), "e": uint_b64u(n.e)}


class JwksServer:
    """An HTTPS server of the test's own answering GET with `self.jwks`; `down` makes it close without an
    answer. `hits` counts requests."""

    def __init__(self, pki):
        outer = self
        self.jwks, self.down, self.hits = {"keys": []}, False, 0

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if outer.down:
                    self.close_connection = True
                    return
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((HOST, 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://localhost:%d/jwks" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def oauth_settings(url, pki, extra=None):
    lp = "listener.name.sasl_plaintext."
    s = {
        lp + "sasl.enabled.mechanisms": "OAUTHBEARER",
        lp + "oauthbearer.sasl.jaas.config": MODULE + " required ;",
        lp + "oauthbearer.sasl.server.callback.handler.class": VALIDATOR,
        "sasl.oauthbearer.jwks.endpoint.url": url,
        "sasl.oauthbearer.jwks.endpoint.refresh.ms": "3600000",
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms": "100",
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": "1000",
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "sasl.oauthbearer.expected.issuer": ISSUER,
    }
    s.update(extra or {})
    return s


class OAuthJwksHttpsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kb-jwks-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        make_pki(cls.dir)
        cls.keys = Keys()
        cls.key_a = cls.keys.rsa
        cls.key_b = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.key_c = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.srv = JwksServer(cls.dir)
        cls.addClassCleanup(cls.srv.stop)
        cls.srv.jwks = {"keys": [rsa_jwk(cls.key_a, "a")]}
        extra = oauth_settings(cls.srv.url, cls.dir, {CA_KEY: os.path.join(cls.dir, "ca.pem")})
        cls.t = SecureTarget(cls.dir, extra)
        if cls.t.kafka:
            # The JVM's default trust store, where a JVM broker's JWKS client looks, with the test CA in it.
            trust = os.path.join(cls.dir, "trust.p12")
            subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file",
                            os.path.join(cls.dir, "ca.pem"), "-keystore", trust, "-storetype", "PKCS12",
                            "-storepass", "changeit"], check=True, capture_output=True, timeout=60)
            cls.t.kafka.jvm_opts = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                                    "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=" + cls.srv.url,
                                    "-Djavax.net.ssl.trustStore=" + trust, "-Djavax.net.ssl.trustStorePassword=changeit",
                                    "-Djavax.net.ssl.trustStoreType=PKCS12"]
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()

    def attempt(self, token):
        """One connection: True when the token is accepted, False on Kafka's invalid_token challenge."""
        with socket.create_connection((HOST, self.t.ports["SASL_PLAINTEXT"]), timeout=10) as s:
            self.assertEqual(handshake(s, "OAUTHBEARER")[0], 0)
            err, msg, auth, _ = authenticate_full(s, client_response(token))
            if (err, auth) == (0, b""):
                return True
            self.assertEqual((err, auth.decode()), (0, INVALID_TOKEN))
            err, msg, _, _ = authenticate_full(s, b"\x01", corr=3)
            self.assertEqual(err, SASL_AUTHENTICATION_FAILED)
            return False

    def accepted_within(self, token, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.attempt(token):
                return True
            time.sleep(0.3)
        return False

    def test_rotation_on_demand_and_endpoint_down(self):
        tok_a = self.keys.token(kid="a", key=self.key_a)
        tok_b = self.keys.token(kid="b", key=self.key_b)
        self.assertTrue(self.attempt(tok_a), "token with kid a (in the JWKS at start) refused")
        # (No kid b token before the rotation: it would use up kid b's one refresh a minute, in Kafka as here.)

        # Rotation: only key b is served now; refresh.ms is an hour, so only the unknown-kid refresh helps.
        self.srv.jwks = {"keys": [rsa_jwk(self.key_b, "b")]}
        hits = self.srv.hits
        self.assertTrue(self.accepted_within(tok_b, 20), "kid b not accepted within 20 s of the rotation")
        self.assertGreater(self.srv.hits, hits, "no request to the endpoint after the unknown kid")
        self.assertFalse(self.attempt(tok_a), "kid a still accepted after the JWKS dropped it")

        # Endpoint down: a refresh (asked for by kid c) fails; key b keeps working.
        self.srv.down = True
        hits = self.srv.hits
        since = len(self.t.log_text())
        self.assertFalse(self.attempt(self.keys.token(kid="c", key=self.key_c)))
        if self.t.kind == "kbroker":
            deadline = time.monotonic() + 15
            while self.srv.hits == hits and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertGreater(self.srv.hits, hits, "the unknown kid c did not make the broker try the endpoint")
            self.assertTrue(self.t.wait_log("keeping the 1 keys in use", timeout=10, since=since))
        else:
            # Apache Kafka 4.4 made no request here within 15 s (seen in a run): only the outcome is compared.
            time.sleep(3)
        self.assertTrue(self.attempt(tok_b), "kid b refused after a failed refresh")
        self.srv.down = False


@kbroker_only("kbroker's start-time messages and its file:// refresh")
class OAuthJwksStartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kb-jwks-start-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        make_pki(cls.dir)

    def sets(self, url, extra=None):
        port = free_port()
        s = {"listeners": "PLAINTEXT://%s:0,SASL_PLAINTEXT://%s:%d" % (HOST, HOST, port),
             "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                               "CONTROLLER:PLAINTEXT",
             "sasl.enabled.mechanisms": "OAUTHBEARER"}
        s.update(oauth_settings(url, self.dir, extra))
        return port, ["%s=%s" % kv for kv in s.items()]

    def refused_start(self, url, needle, extra=None):
        b = Broker(extra_sets=self.sets(url, extra)[1])
        self.addCleanup(b.cleanup)
        t0 = time.monotonic()
        with self.assertRaises(BrokerError) as e:
            b.start()
        self.assertIn(needle, str(e.exception))
        return time.monotonic() - t0

    def test_start_fails_without_a_usable_jwks(self):
        ca = {CA_KEY: os.path.join(self.dir, "ca.pem")}
        self.refused_start("https://127.0.0.1:%d/jwks" % free_port(), "no usable JWKS at start", ca)
        self.refused_start("https://127.0.0.1:%d/jwks" % free_port(), "Connection refused", ca)
        srv = JwksServer(self.dir)
        self.addCleanup(srv.stop)
        srv.jwks = {"keys": [rsa_jwk(Keys().rsa, "a")]}
        self.refused_start(srv.url, "certificate verification failed")  # our CA not trusted
        srv.down = True
        self.refused_start(srv.url, "not an HTTP/1.x answer", ca)
        self.refused_start(srv.url.replace("https:", "http:"), "only https:// and file:// URLs", ca)

    def test_file_jwks_reread_every_refresh_ms(self):
        keys = Keys()
        new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = os.path.join(self.dir, "jwks.json")
        with open(path, "w") as f:
            json.dump({"keys": [rsa_jwk(keys.rsa, "a")]}, f)
        port, sets = self.sets("file://" + path, {"sasl.oauthbearer.jwks.endpoint.refresh.ms": "1000"})
        b = Broker(extra_sets=sets)
        self.addCleanup(b.cleanup)
        b.start()
        self.addCleanup(b.stop)
        t = type("T", (), {"ports": {"SASL_PLAINTEXT": port}})()
        probe = OAuthJwksHttpsTest("attempt")
        probe.t = t
        self.assertTrue(probe.attempt(keys.token(kid="a")))
        # The same kid, another key: a bad signature, not an unknown kid, so only the scheduled re-read helps.
        with open(path + ".tmp", "w") as f:
            json.dump({"keys": [rsa_jwk(new, "a")]}, f)
        os.rename(path + ".tmp", path)
        probe.t = t
        deadline, ok = time.monotonic() + 10, False
        while not ok and time.monotonic() < deadline:
            ok = probe.attempt(keys.token(kid="a", key=new))
            time.sleep(0.2)
        self.assertTrue(ok, "the new key of the file not used within 10 s (refresh.ms 1 s)")
        self.assertFalse(probe.attempt(keys.token(kid="a")), "the replaced key still accepted")


if __name__ == "__main__":
    unittest.main()

"""SASL/OAUTHBEARER with JWTs validated against a JWKS file (Kafka's OAuthBearerValidatorCallbackHandler), and
re-authentication (KIP-368, connections.max.reauth.ms=2000) over OAUTHBEARER and PLAIN.

An RSA and an EC key pair and their JWKS are made in a temp dir; tokens are signed here (python3-cryptography).
confluent-kafka produces and consumes with an oauth_cb token; raw exchanges check what is refused (expired, wrong
audience or issuer, bad signature, alg none, unknown kid: Kafka's {"status":"invalid_token"} challenge, then
SASL_AUTHENTICATION_FAILED), the session lifetime the broker answers, a re-authentication on the same connection,
a principal change refused, and a connection that does not re-authenticate closed on its next request. A newer
librdkafka (the py3 venv, 2.x re-authenticates) keeps producing and consuming for 7 s across re-authentications.
On the kafka target the test starts its own Apache Kafka with the same settings."""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from broker import Broker, BrokerError  # noqa: E402
from common import kbroker_only, uniq  # noqa: E402
from secure import (HOST, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED, SecureTarget, closed,  # noqa: E402
                    eof_within, handshake, make_pki, plain_token)
from wire import read_frame, request  # noqa: E402

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

AUDIENCE = "kbroker-test"
ISSUER = "https://issuer.example"
REAUTH_MS = 2000
INVALID_TOKEN = '{"status":"invalid_token"}'
VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint_b64u(n, size=None):
    return b64u(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


class Keys:
    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not in the JWKS

    def jwks(self):
        rn = self.rsa.public_key().public_numbers()
        en = self.ec.public_key().public_numbers()
        return {"keys": [
            {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": uint_b64u(rn.n), "e": uint_b64u(rn.e)},
            {"kty": "EC", "kid": "ec1", "use": "sig", "crv": "P-256", "x": uint_b64u(en.x, 32),
             "y": uint_b64u(en.y, 32)},
        ]}

    def token(self, sub="alice", alg="RS256", kid="rsa1", key=None, **claims):
        now = int(time.time())
        body = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600, "scope": "kafka"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        header = {"alg": alg, "typ": "JWT"}
        if kid:
            header["kid"] = kid
        data = (b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(body).encode())).encode()
        if alg == "none":
            return data.decode() + "."
        if alg.startswith("ES"):
            r, s = decode_dss_signature((key or self.ec).sign(data, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        elif alg.startswith("PS"):
            sig = (key or self.rsa).sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                                         hashes.SHA256())
        else:
            sig = (key or self.rsa).sign(data, padding.PKCS1v15(), hashes.SHA256())
        return data.decode() + "." + b64u(sig)


def client_response(token, authzid=""):
    return ("n,%s,\x01auth=Bearer %s\x01\x01" % ("a=" + authzid if authzid else "", token)).encode()


def authenticate_full(s, token, corr=2, version=1):
    """SaslAuthenticate v0/v1: (error code, message, auth bytes, session_lifetime_ms or None)."""
    s.sendall(request(36, version, corr, struct.pack(">i", len(token)) + token))
    r = read_frame(s)
    assert struct.unpack(">i", r[:4])[0] == corr
    err, mlen = struct.unpack(">hh", r[4:8])
    off = 8 + max(mlen, 0)
    msg = r[8:off].decode() if mlen >= 0 else None
    blen = struct.unpack(">i", r[off:off + 4])[0]
    auth = r[off + 4:off + 4 + blen]
    off += 4 + blen
    life = struct.unpack(">q", r[off:off + 8])[0] if version >= 1 else None
    return err, msg, auth, life


def metadata_answered(s, corr):
    """Sends Metadata v1 (no topics); True when answered, False when the connection closed instead."""
    try:
        s.sendall(request(3, 1, corr, struct.pack(">i", 0)))
        r = read_frame(s)
        return struct.unpack(">i", r[:4])[0] == corr
    except (ConnectionError, OSError, EOFError, AssertionError, struct.error):
        return False


class OAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kb-oauth-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        make_pki(cls.dir)
        cls.keys = Keys()
        jwks = os.path.join(cls.dir, "jwks.json")
        with open(jwks, "w") as f:
            json.dump(cls.keys.jwks(), f)
        url = "file://" + jwks
        lp = "listener.name.sasl_plaintext."
        extra = {
            lp + "sasl.enabled.mechanisms": "PLAIN,OAUTHBEARER",
            lp + "oauthbearer.sasl.jaas.config": MODULE + " required ;",
            lp + "oauthbearer.sasl.server.callback.handler.class": VALIDATOR,
            # One key unprefixed, the others listener- and mechanism-prefixed: both forms are read.
            "sasl.oauthbearer.jwks.endpoint.url": url,
            lp + "oauthbearer.sasl.oauthbearer.expected.audience": AUDIENCE,
            lp + "oauthbearer.sasl.oauthbearer.expected.issuer": ISSUER,
            "connections.max.reauth.ms": str(REAUTH_MS),
        }
        cls.t = SecureTarget(cls.dir, extra)
        if cls.t.kafka:
            # Kafka 4 reads a JWKS URL only when this system property allows it.
            cls.t.kafka.jvm_opts = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                                    "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=" + url]
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()

    def raw(self):
        s = socket.create_connection((HOST, self.t.ports["SASL_PLAINTEXT"]), timeout=10)
        self.addCleanup(s.close)
        return s

    def conf(self, token_fn, errors):
        def oauth_cb(_config):
            tok = token_fn()
            return tok, time.time() + 3600

        return {"bootstrap.servers": self.t.addr("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "OAUTHBEARER", "oauth_cb": oauth_cb, "error_cb": errors.append,
                "socket.timeout.ms": 10000}

    def oauth_ok(self, token, sub="alice"):
        s = self.raw()
        err, mechs = handshake(s, "OAUTHBEARER")
        self.assertEqual(err, 0)
        self.assertEqual(sorted(mechs), ["OAUTHBEARER", "PLAIN"])
        err, msg, auth, life = authenticate_full(s, client_response(token))
        self.assertEqual((err, msg, auth), (0, "", b""), "token for %s refused" % sub)
        return s, life

    def refused(self, token, why):
        s = self.raw()
        since = len(self.t.log_text())
        self.assertEqual(handshake(s, "OAUTHBEARER")[0], 0)
        err, msg, auth, _ = authenticate_full(s, client_response(token))
        self.assertEqual((err, auth.decode()), (0, INVALID_TOKEN), "%s: no invalid_token challenge" % why)
        err, msg, auth, _ = authenticate_full(s, b"\x01", corr=3)
        self.assertEqual((err, msg), (SASL_AUTHENTICATION_FAILED, INVALID_TOKEN), why)
        self.assertTrue(eof_within(s), "%s: connection not closed" % why)
        if self.t.kind == "kbroker":
            self.assertTrue(self.t.wait_log("invalid OAUTHBEARER token from", since=since), why)

    # ---- OAUTHBEARER ---------------------------------------------------------------------------

    def test_produce_consume_with_oauth_cb(self):
        topic = uniq("oauth")
        errors = []
        conf = self.conf(lambda: self.keys.token(), errors)
        p = Producer(conf)
        values = [b"v%d" % i for i in range(20)]
        for v in values:
            p.produce(topic, v)
        self.assertEqual(p.flush(30), 0, "undelivered; errors %s" % errors)
        c = Consumer(dict(self.conf(lambda: self.keys.token(alg="ES256", kid="ec1"), errors),
                          **{"group.id": uniq("g"), "enable.auto.commit": False}))
        try:
            c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            got, deadline = [], time.monotonic() + 30
            while len(got) < len(values) and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.append(m.value())
            self.assertEqual(got, values)
        finally:
            c.close()

    def test_algorithms_and_lifetime(self):
        for alg, kid in (("RS256", "rsa1"), ("PS256", "rsa1"), ("ES256", "ec1"), ("RS256", None)):
            _, life = self.oauth_ok(self.keys.token(alg=alg, kid=kid))
            self.assertTrue(0 < life <= REAUTH_MS, "%s: session_lifetime_ms %s" % (alg, life))
        # A token that expires before connections.max.reauth.ms bounds the session (skew does not count).
        _, life = self.oauth_ok(self.keys.token(exp=int(time.time()) + 1))
        self.assertLess(life, 1500)

    def test_invalid_tokens_refused(self):
        now = int(time.time())
        k = self.keys
        self.refused(k.token(exp=now - 120), "expired token")
        self.refused(k.token(nbf=now + 600), "token not yet valid")
        self.refused(k.token(aud="someone-else"), "wrong audience")
        self.refused(k.token(iss="https://evil.example"), "wrong issuer")
        self.refused(k.token(key=k.other), "bad signature")
        self.refused(k.token(kid="nope"), "unknown kid")
        self.refused(k.token(alg="none", kid=None), "alg none")
        self.refused(k.token(iat=None), "no iat")
        self.refused(k.token(sub=None), "no sub")
        self.refused("not.a.jwt", "malformed token")
        # A real client sees the failure.
        errors = []
        p = Producer(self.conf(lambda: k.token(exp=int(time.time()) - 120), errors))
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            p.poll(0.2)
        self.assertTrue(errors, "the client saw no error with an expired token")
        self.assertEqual(errors[0].code(), KafkaError._AUTHENTICATION, errors[0])
        self.oauth_ok(k.token())

    def test_malformed_client_response(self):
        generic = ("Authentication failed during authentication due to invalid credentials with SASL mechanism "
                   "OAUTHBEARER")
        for bad in (b"n,,\x01\x01", b"y,,\x01auth=Bearer a.b.c\x01\x01", b"n,,\x01auth=Bearer a.b.c\x01",
                    b"n,,\x01auth=Bearer a b\x01\x01", b"n,,\x01auth=Bearer\x01\x01"):
            s = self.raw()
            handshake(s, "OAUTHBEARER")
            err, msg, _, _ = authenticate_full(s, bad)
            self.assertEqual((err, msg), (SASL_AUTHENTICATION_FAILED, generic), bad)
            self.assertTrue(eof_within(s), bad)
        # Another scheme than Bearer: Kafka closes without an answer.
        s = self.raw()
        handshake(s, "OAUTHBEARER")
        bad = b"n,,\x01auth=Basic abc\x01\x01"
        s.sendall(request(36, 1, 2, struct.pack(">i", len(bad)) + bad))
        self.assertTrue(closed(s), "a Basic scheme was answered")
        # RFC 6750 token characters (+ / ~ and trailing =) parse; the token is then invalid.
        self.refused("a+b/c~d==", "b64token characters")
        # An authorization id other than the token's subject.
        s = self.raw()
        handshake(s, "OAUTHBEARER")
        err, msg, _, _ = authenticate_full(s, client_response(self.keys.token(), authzid="bob"))
        self.assertEqual(err, SASL_AUTHENTICATION_FAILED)
        self.assertIn("Client requested an authorization id (bob) that is different from the token's principal "
                      "name (alice)", msg)

    def test_java_console_clients(self):
        """The Java client (kafka-clients 4.4.0, Kafka's console producer and consumer) with its own OAUTHBEARER
        login: OAuthBearerLoginCallbackHandler reading a pre-signed token from a file:// token endpoint."""
        java_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "java")
        if subprocess.run([os.path.join(java_dir, "build.sh")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=600).returncode != 0:
            raise unittest.SkipTest("the Java suite (compat-tests/java/build.sh) does not build here")
        with open(os.path.join(java_dir, "target", "classpath.txt")) as f:
            cp = f.read().strip()
        tok = os.path.join(self.dir, "java-token")
        with open(tok, "w") as f:
            f.write(self.keys.token(sub="java-user", alg="ES256", kid="ec1"))
        conf = os.path.join(self.dir, "java-oauth.properties")
        props = {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER",
            "sasl.login.callback.handler.class":
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
            "sasl.oauthbearer.token.endpoint.url": "file://" + tok,
            "sasl.jaas.config": MODULE + " required ;",
        }
        with open(conf, "w") as f:
            f.write("".join("%s=%s\n" % kv for kv in props.items()))
        topic = uniq("oauth-java")
        java = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=file://" + tok, "-cp", cp]
        lines = ["java-oauth-%d" % i for i in range(5)]
        p = subprocess.run(java + ["org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server",
                                   self.t.addr("SASL_PLAINTEXT"), "--topic", topic, "--command-config", conf],
                           input="\n".join(lines).encode() + b"\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        self.assertEqual(p.returncode, 0, "Java producer:\n%s" % p.stdout.decode()[-3000:])
        c = subprocess.run(java + ["org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                                   self.t.addr("SASL_PLAINTEXT"), "--topic", topic, "--command-config", conf,
                                   "--from-beginning", "--max-messages", str(len(lines)), "--timeout-ms", "30000"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(c.stdout.decode().split(), lines, "Java consumer:\n%s" % c.stderr.decode()[-3000:])

    def test_handshake_v0_bare_tokens(self):
        """SaslHandshake v0: the client response and the answers travel as bare frames."""
        s = self.raw()
        self.assertEqual(handshake(s, "OAUTHBEARER", version=0)[0], 0)
        tok = client_response(self.keys.token())
        s.sendall(struct.pack(">i", len(tok)) + tok)
        self.assertEqual(read_frame(s), b"")
        self.assertTrue(metadata_answered(s, 5))
        # An invalid token: the JSON challenge as a bare frame, then the %x01 closes without an answer.
        s = self.raw()
        handshake(s, "OAUTHBEARER", version=0)
        tok = client_response(self.keys.token(aud="nope"))
        s.sendall(struct.pack(">i", len(tok)) + tok)
        self.assertEqual(read_frame(s).decode(), INVALID_TOKEN)
        s.sendall(struct.pack(">i", 1) + b"\x01")
        self.assertTrue(closed(s))

    # ---- re-authentication (KIP-368) -----------------------------------------------------------

    def plain_ok(self, s, user="alice", password="alice-secret", version=1, corr=2):
        err, msg, _, life = authenticate_full(s, plain_token(user, password), corr=corr, version=version)
        self.assertEqual((err, msg), (0, ""))
        return life

    def test_session_expires_without_reauthentication(self):
        for mech in ("PLAIN", "OAUTHBEARER"):
            s = self.raw()
            since = len(self.t.log_text())
            self.assertEqual(handshake(s, mech)[0], 0)
            if mech == "PLAIN":
                life = self.plain_ok(s)
            else:
                err, _, _, life = authenticate_full(s, client_response(self.keys.token()))
                self.assertEqual(err, 0)
            self.assertEqual(life, REAUTH_MS, mech)
            self.assertTrue(metadata_answered(s, 10), "%s: not served within the session" % mech)
            time.sleep(life / 1000 + 0.5)
            self.assertFalse(metadata_answered(s, 11), "%s: served after the session expired" % mech)
            self.assertTrue(closed(s, 2), mech)
            if self.t.kind == "kbroker":
                self.assertTrue(self.t.wait_log("did not re-authenticate", since=since), mech)

    def test_reauthenticate_on_the_same_connection(self):
        s = self.raw()
        handshake(s, "PLAIN")
        self.assertEqual(self.plain_ok(s), REAUTH_MS)
        time.sleep(1.2)  # Kafka lets a connection start a re-authentication at most once a second
        self.assertTrue(metadata_answered(s, 3))
        self.assertEqual(handshake(s, "PLAIN", corr=4)[0], 0)
        self.assertEqual(self.plain_ok(s, corr=5), REAUTH_MS)
        time.sleep(1.2)  # past the first session's end, inside the second's
        self.assertTrue(metadata_answered(s, 6), "not served after re-authenticating")
        # The same over OAUTHBEARER.
        s, life = self.oauth_ok(self.keys.token())
        time.sleep(1.2)
        self.assertEqual(handshake(s, "OAUTHBEARER", corr=4)[0], 0)
        err, _, _, life = authenticate_full(s, client_response(self.keys.token(alg="ES256", kid="ec1")), corr=5)
        self.assertEqual((err, life), (0, REAUTH_MS))
        time.sleep(1.2)
        self.assertTrue(metadata_answered(s, 6), "not served after re-authenticating with OAUTHBEARER")

    def test_reauthentication_behind_pipelined_requests(self):
        """Requests sent before the re-authentication's handshake are answered first, in order."""
        s = self.raw()
        handshake(s, "PLAIN")
        self.plain_ok(s)
        time.sleep(1.1)
        s.sendall(request(3, 1, 3, struct.pack(">i", 0)) + request(3, 1, 4, struct.pack(">i", 0)) +
                  request(17, 1, 5, b"\x00\x05PLAIN"))
        self.assertEqual([struct.unpack(">i", read_frame(s)[:4])[0] for _ in range(3)], [3, 4, 5])
        self.assertEqual(self.plain_ok(s, corr=6), REAUTH_MS)
        self.assertTrue(metadata_answered(s, 7))

    def test_reauthentication_cannot_change_principal(self):
        s = self.raw()
        handshake(s, "PLAIN")
        self.plain_ok(s)
        time.sleep(1.1)
        self.assertEqual(handshake(s, "PLAIN", corr=3)[0], 0)
        err, msg, _, _ = authenticate_full(s, plain_token("bob", "bob pass word"), corr=4)
        self.assertEqual((err, msg), (SASL_AUTHENTICATION_FAILED,
                                      "Cannot change principals during re-authentication from User.alice: User.bob"))
        self.assertTrue(eof_within(s))

    def test_handshake_too_soon_is_not_a_reauthentication(self):
        s = self.raw()
        handshake(s, "PLAIN")
        self.plain_ok(s)
        # Right after authenticating a handshake starts a re-authentication...
        self.assertEqual(handshake(s, "PLAIN", corr=3)[0], 0)
        self.plain_ok(s, corr=4)
        # ...but within a second of the last one it is served as an ordinary request: refused.
        err, mechs = handshake(s, "PLAIN", corr=5)
        self.assertEqual((err, mechs), (ILLEGAL_SASL_STATE, []))
        self.assertTrue(metadata_answered(s, 6))

    def test_v0_sasl_authenticate(self):
        """SaslAuthenticate v0 carries no session lifetime; the session still ends for the broker."""
        s = self.raw()
        handshake(s, "PLAIN")
        self.assertIsNone(self.plain_ok(s, version=0))
        self.assertTrue(metadata_answered(s, 3))
        time.sleep(REAUTH_MS / 1000 + 0.5)
        self.assertFalse(metadata_answered(s, 4), "a v0 session outlived connections.max.reauth.ms")

    def test_clients_reauthenticate(self):
        """librdkafka 2.x (the py3 venv) re-authenticates: 7 s of producing and consuming with sessions of 2 s,
        over OAUTHBEARER and PLAIN, lose nothing."""
        venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py3", "venv.sh")
        try:
            py = subprocess.run([venv], check=True, capture_output=True, text=True, timeout=600).stdout.strip()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            raise unittest.SkipTest("no py3 venv with confluent-kafka 2.x: %s" % e)
        tok_file = os.path.join(self.dir, "token")
        with open(tok_file, "w") as f:
            f.write(self.keys.token())
        script = textwrap.dedent("""
            import sys, time
            from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
            bootstrap, mech, topic, tok = sys.argv[1:5]
            conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": mech}
            if mech == "PLAIN":
                conf.update({"sasl.username": "alice", "sasl.password": "alice-secret"})
            else:
                conf["oauth_cb"] = lambda _c: (open(tok).read(), time.time() + 3600)
            p = Producer(conf)
            c = Consumer(dict(conf, **{"group.id": topic, "enable.auto.commit": False}))
            c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            sent, got, end = 0, 0, time.monotonic() + 7
            while time.monotonic() < end:
                p.produce(topic, b"m%d" % sent)
                sent += 1
                p.poll(0)
                m = c.poll(0.1)
                if m is not None and not m.error():
                    got += 1
            left = p.flush(20)
            end = time.monotonic() + 20
            while got < sent and time.monotonic() < end:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    got += 1
            c.close()
            print(sent, got, left)
        """)
        for mech in ("OAUTHBEARER", "PLAIN"):
            since = len(self.t.log_text())
            topic = uniq("reauth-" + mech.lower())
            out = subprocess.run([py, "-c", script, self.t.addr("SASL_PLAINTEXT"), mech, topic, tok_file],
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr[-2000:])
            sent, got, left = map(int, out.stdout.split())
            self.assertGreater(sent, 20, mech)
            self.assertEqual((got, left), (sent, 0), "%s: lost messages across re-authentications" % mech)
            if self.t.kind == "kbroker":
                n = self.t.log_text()[since:].count("re-authenticated as User:alice")
                self.assertGreaterEqual(n, 4, "%s: %d re-authentications seen in 7 s of 2 s sessions" % (mech, n))


@kbroker_only("kbroker's start-time checks of its OAUTHBEARER settings")
class OAuthConfigTest(unittest.TestCase):
    """What kbroker refuses at start, each with a message naming the key: Kafka would fetch an http:// JWKS and
    fall back to its unsecured validator, kbroker does neither."""

    def refused_start(self, extra, needle):
        d = tempfile.mkdtemp(prefix="kb-oauth-cfg-")
        self.addCleanup(shutil.rmtree, d, True)
        jwks = os.path.join(d, "jwks.json")
        with open(jwks, "w") as f:
            json.dump(Keys().jwks(), f)
        lp = "listener.name.sasl_plaintext."
        sets = {
            "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
            "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": "OAUTHBEARER",
            lp + "oauthbearer.sasl.jaas.config": MODULE + " required ;",
            lp + "oauthbearer.sasl.server.callback.handler.class": VALIDATOR,
            "sasl.oauthbearer.jwks.endpoint.url": "file://" + jwks,
        }
        sets.update(extra)
        b = Broker(extra_sets=["%s=%s" % kv for kv in sets.items() if kv[1] is not None])
        self.addCleanup(b.cleanup)
        with self.assertRaises(BrokerError) as e:
            b.start()
        self.assertIn(needle, str(e.exception))

    def test_refused_settings(self):
        lp = "listener.name.sasl_plaintext."
        self.refused_start({"sasl.oauthbearer.jwks.endpoint.url": "http://idp.example/jwks"},
                           "only https:// and file:// URLs are supported")
        self.refused_start({lp + "oauthbearer.sasl.server.callback.handler.class": None},
                           "oauthbearer.sasl.server.callback.handler.class")
        self.refused_start({lp + "oauthbearer.sasl.jaas.config": None}, "no JAAS configuration for mechanism "
                                                                         "OAUTHBEARER")
        self.refused_start({"sasl.oauthbearer.jwks.endpoint.url": "file:///nonexistent/jwks.json"}, "cannot open")
        self.refused_start({"connections.max.reauth.ms": "soon"}, "connections.max.reauth.ms")


if __name__ == "__main__":
    unittest.main()

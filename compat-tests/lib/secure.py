"""Security fixtures shared by the compat tests: a throwaway PKI made with openssl, a target (kbroker or
Apache Kafka) started with SSL, SASL_PLAINTEXT, SASL_SSL, mTLS and TLSv1.3-only listeners, and raw SASL
exchanges for tests that must see the wire."""

import hashlib
import os
import socket
import ssl
import struct
import subprocess
import time
import unittest

from broker import Broker, shards_from_env, target
from wire import carray, cbytes, cstr, flex_request, kstr, read_cstr, read_frame, read_uvarint, request

HOST = "127.0.0.1"
USERS = {"alice": "alice-secret", "bob": "bob pass word"}
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" '
        'password="alice-secret" user_alice="alice-secret" user_bob="bob pass word";')
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
KS_PASS = "ks-pass"


def free_port():
    from ports import free_port as pick

    return pick(HOST)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def make_pki(d):
    """CA, server certificate (localhost, 127.0.0.1) and client certificate (CN=client,O=kbroker-tests)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=kb-test-ca", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, subj, ext in (("server", "/CN=localhost", ["-extfile", "san.ext"]),
                            ("client", "/O=kbroker-tests/CN=client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".crt", "-days", "2", *ext, cwd=d)
    # PEM keystore: key and certificate in one file (Kafka's ssl.keystore.type=PEM with a location).
    with open(os.path.join(d, "server-keystore.pem"), "w") as out:
        for part in ("server.key", "server.crt"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    with open(os.path.join(d, "client-keystore.pem"), "w") as out:
        for part in ("client.key", "client.crt"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    openssl("pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key", "-certfile", "ca.pem",
            "-out", "server.p12", "-passout", "pass:" + KS_PASS, cwd=d)


def one_line(path):
    with open(path) as f:
        return " ".join(f.read().split())


def settings(pki, ports, extra=None):
    p = lambda name: os.path.join(pki, name)  # noqa: E731
    listeners = ",".join("%s://%s:%d" % (n, HOST, ports[n]) for n in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT",
                                                                       "SASL_SSL", "MTLS", "TLS13"))
    s = {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                          "SASL_SSL:SASL_SSL,MTLS:SSL,TLS13:SSL,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "ssl.enabled.protocols": "TLSv1.2,TLSv1.3",  # a plain key every listener falls back to
        "listener.name.ssl.ssl.keystore.type": "PEM",
        "listener.name.ssl.ssl.keystore.location": p("server-keystore.pem"),
        # Inline PEM on one line (whitespace instead of newlines), as a properties value often is.
        "listener.name.mtls.ssl.keystore.type": "PEM",
        "listener.name.mtls.ssl.keystore.certificate.chain": one_line(p("server.crt")),
        "listener.name.mtls.ssl.keystore.key": one_line(p("server.key")),
        "listener.name.sasl_ssl.ssl.keystore.type": "PKCS12",
        "listener.name.sasl_ssl.ssl.keystore.location": p("server.p12"),
        "listener.name.sasl_ssl.ssl.keystore.password": KS_PASS,
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.tls13.ssl.keystore.type": "PEM",
        "listener.name.tls13.ssl.keystore.location": p("server-keystore.pem"),
        "listener.name.tls13.ssl.enabled.protocols": "TLSv1.3",
        "listener.name.mtls.ssl.truststore.type": "PEM",
        "listener.name.mtls.ssl.truststore.location": p("ca.pem"),
        "connection.failed.authentication.delay.ms": "100",
    }
    s.update(extra or {})
    return s


class SecureTarget:
    """kbroker (a process of ours) or Apache Kafka started with the same security settings."""

    def __init__(self, pki, extra=None):
        """extra: more server properties (Kafka's names), given to either target."""
        self.ports = {n: free_port() for n in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", "MTLS", "TLS13")}
        self.settings = settings(pki, self.ports, extra)
        self.kind = target()
        self.kafka = self.kb = None
        if self.kind == "kbroker":
            self.kb = Broker(shards=shards_from_env(), extra_sets=["%s=%s" % kv for kv in self.settings.items()])
        elif self.kind == "kafka":
            from kafka_ref import KafkaRef

            s = dict(self.settings)

            class SecKafka(KafkaRef):
                def _properties(inner):
                    inner.settings["listeners"] = s["listeners"] + ",CONTROLLER://%s:%d" % (HOST,
                                                                                           inner.controller_port)
                    return KafkaRef._properties(inner)

            self.kafka = SecKafka(settings=s)
        else:
            raise unittest.SkipTest("needs a broker with SSL and SASL listeners of its own (target %s)" % self.kind)

    def start(self):
        (self.kb or self.kafka).start()

    def stop(self):
        if self.kb:
            try:
                if self.kb.running:
                    self.kb.stop(check=True)
            finally:
                self.kb.cleanup()
        if self.kafka:
            self.kafka.cleanup()

    def log_text(self):
        return (self.kb or self.kafka).log_text()

    def wait_log(self, needle, timeout=5.0, since=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text()[since:]:
                return True
            time.sleep(0.05)
        return False

    def addr(self, listener):
        return "%s:%d" % (HOST, self.ports[listener])


# ---- raw SASL exchanges ---------------------------------------------------------------------------









def closed(s, timeout=5.0):
    """True when the peer closes (EOF, reset or a TLS alert) within timeout without sending a frame."""
    s.settimeout(timeout)
    try:
        return s.recv(65536) == b""
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def eof_within(s, timeout=5.0):
    """True when the peer closes within timeout; bytes before the close (a TLS alert) are read and ignored."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if s.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def handshake(s, mechanism, version=1, corr=1):
    s.sendall(request(17, version, corr, kstr(mechanism)))
    r = read_frame(s)
    assert struct.unpack(">i", r[:4])[0] == corr
    err, n = struct.unpack(">hi", r[4:10])
    mechs, off = [], 10
    for _ in range(n):
        ln = struct.unpack(">h", r[off:off + 2])[0]
        mechs.append(r[off + 2:off + 2 + ln].decode())
        off += 2 + ln
    return err, mechs


def authenticate(s, token, corr=2):
    """SaslAuthenticate v1 (not flexible): error code, message, auth bytes."""
    s.sendall(request(36, 1, corr, struct.pack(">i", len(token)) + token))
    r = read_frame(s)
    assert struct.unpack(">i", r[:4])[0] == corr
    err, mlen = struct.unpack(">hh", r[4:8])
    msg = r[8:8 + mlen].decode() if mlen >= 0 else None
    return err, msg


def plain_token(user, password):
    return b"\0" + user.encode() + b"\0" + password.encode()


def api_versions_keys(s, corr=9):
    s.sendall(request(18, 0, corr, b""))
    r = read_frame(s)
    err, n = struct.unpack(">hi", r[4:10])
    assert err == 0, err
    return {struct.unpack(">hhh", r[10 + 6 * i:16 + 6 * i])[0]: struct.unpack(">hhh", r[10 + 6 * i:16 + 6 * i])[1:]
            for i in range(n)}


# ---- SCRAM credentials through AlterUserScramCredentials (works on any broker that implements it) ----------

SCRAM_MECHANISMS = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}


def scram_upsert(addr, users, mechanism="SCRAM-SHA-256", iterations=4096, deletions=()):
    """Creates or replaces SCRAM credentials {user: password} over a PLAINTEXT listener at addr ("host:port")
    with a raw AlterUserScramCredentials v0, salting as a client does; deletions: (user, mechanism) pairs.
    Returns {user: (error_code, error_message)} as the broker answered."""
    mech_id, digest = SCRAM_MECHANISMS[mechanism]
    ups = []
    for user, password in users.items():
        salt = os.urandom(24)
        salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)
        ups.append(cstr(user) + struct.pack(">bi", mech_id, iterations) + cbytes(salt) + cbytes(salted) + b"\0")
    dels = [cstr(u) + struct.pack(">b", SCRAM_MECHANISMS[m][0]) + b"\0" for u, m in deletions]
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(flex_request(51, 0, 7, carray(dels) + carray(ups) + b"\0"))
        r = read_frame(s)
    if struct.unpack(">i", r[:4])[0] != 7:
        raise AssertionError("AlterUserScramCredentials: wrong correlation id")
    off = 5 + 4  # correlation id, header tagged fields, throttle_time_ms
    n, off = read_uvarint(r, off)
    out = {}
    for _ in range(n - 1):
        user, off = read_cstr(r, off)
        err = struct.unpack(">h", r[off:off + 2])[0]
        msg, off = read_cstr(r, off + 2)
        off += 1  # tagged fields
        out[user] = (err, msg)
    return out


def restart_target(t):
    """Stops and starts a SecureTarget on the same data dir (kbroker or Apache Kafka), ports unchanged."""
    if t.kb:
        t.kb.restart()
    else:
        from kafka_ref import restart_same_dir

        restart_same_dir(t.kafka)

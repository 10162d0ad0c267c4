"""SASL/SCRAM-SHA-256 and SCRAM-SHA-512 with credentials managed by AlterUserScramCredentials /
DescribeUserScramCredentials, on a target started with PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 on its SASL listeners.
Users are created over the PLAINTEXT listener with a raw AlterUserScramCredentials (secure.scram_upsert), the
same on kbroker and Apache Kafka. Real clients log in and produce/consume: confluent-kafka 2.x (the compat venv;
Debian's librdkafka 1.7 sends a wrong nonce in its SCRAM client-final message and is refused by Apache Kafka 4.4
as well), kafka-python 2.0.2 (SaslHandshake v0, bare tokens), the Java client (Kafka's console tools) and
Kafka's own ConfigCommand (kafka-configs.sh) to create and describe a user. Refusals: wrong password, unknown
user, malformed SCRAM messages and an absurd token, each answered or closed with a log line while other clients
keep working; Alter/Describe errors as Apache Kafka answers them. kbroker only: credentials survive a restart,
and kbroker-storage format --add-scram creates the first user before the first start."""

import base64
import hashlib
import hmac
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import kbroker_only, uniq  # noqa: E402
from secure import (HOST, SASL_AUTHENTICATION_FAILED, SecureTarget, api_versions_keys, closed, handshake,  # noqa: E402
                    make_pki, scram_upsert)
from wire import (carray, cbytes, cstr, flex_request, kstr, read_cstr, read_frame, read_uvarint,  # noqa: E402
                  request)

SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
DIGEST = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MECH_ID = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
USERS = {"sam": ("SCRAM-SHA-256", "sam-secret"), "sara": ("SCRAM-SHA-512", "sara secret 512")}
GENERIC = "Authentication failed during authentication due to invalid credentials with SASL mechanism %s"
UNSUPPORTED_SASL_MECHANISM, RESOURCE_NOT_FOUND, DUPLICATE_RESOURCE, UNACCEPTABLE_CREDENTIAL = 33, 91, 92, 93
TWICE = "A user credential cannot be altered twice in the same request"
ABSENT = "Attempt to delete a user credential that does not exist"

# confluent-kafka 2.x from the venv (compat-tests/py3/venv.sh): one producer/consumer round trip.
ROUND_TRIP = textwrap.dedent("""
    import json, sys, time
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    conf, topic = json.loads(sys.argv[1]), sys.argv[2]
    errors = []
    p = Producer(dict(conf, error_cb=lambda e: errors.append(str(e))))
    values = [("v-%d" % i).encode() for i in range(10)]
    for v in values:
        p.produce(topic, v)
    if p.flush(30) != 0:
        sys.exit("undelivered; errors %s" % errors[:3])
    c = Consumer(dict(conf, **{"group.id": topic, "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got, deadline = [], time.monotonic() + 30
    while len(got) < len(values) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    if got != values:
        sys.exit("consumed %r" % got)
""")


def b64(b):
    return base64.b64encode(b).decode()


class ScramClient:
    """The client side of RFC 5802, computed here, to see each message on the wire."""

    def __init__(self, mechanism, user, password, nonce="fyko+d2lbbFgONRv9qkxdawL"):
        self.digest = DIGEST[mechanism]
        self.user, self.password, self.nonce = user, password, nonce
        self.first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), nonce)

    def first(self):
        return ("n,," + self.first_bare).encode()

    def final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        assert attrs["r"].startswith(self.nonce), sf
        salted = hashlib.pbkdf2_hmac(self.digest, self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", self.digest).digest()
        stored = hashlib.new(self.digest, client_key).digest()
        without = "c=biws,r=" + attrs["r"]
        auth = ",".join((self.first_bare, sf, without)).encode()
        sig = hmac.new(stored, auth, self.digest).digest()
        server_key = hmac.new(salted, b"Server Key", self.digest).digest()
        self.server_signature = b64(hmac.new(server_key, auth, self.digest).digest())
        return (without + ",p=" + b64(bytes(a ^ b for a, b in zip(client_key, sig)))).encode()


def sasl_authenticate(s, token, corr):
    """SaslAuthenticate v1: error code, message, auth bytes."""
    s.sendall(request(36, 1, corr, struct.pack(">i", len(token)) + token))
    r = read_frame(s)
    assert struct.unpack(">i", r[:4])[0] == corr
    err, mlen = struct.unpack(">hh", r[4:8])
    off = 8 + max(mlen, 0)
    msg = r[8:off].decode() if mlen >= 0 else None
    blen = struct.unpack(">i", r[off:off + 4])[0]
    return err, msg, r[off + 4:off + 4 + blen]


def alter(addr, dels=(), ups=()):
    """Raw AlterUserScramCredentials v0: {user: (error, message)}; each result user must be unique."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(flex_request(51, 0, 7, carray(list(dels)) + carray(list(ups)) + b"\0"))
        r = read_frame(s)
    n, off = read_uvarint(r, 9)
    out = {}
    for _ in range(n - 1):
        user, off = read_cstr(r, off)
        err = struct.unpack(">h", r[off:off + 2])[0]
        msg, off = read_cstr(r, off + 2)
        off += 1
        assert user not in out, "user %r answered twice" % user
        out[user] = (err, msg)
    return out


def up(user, mech=1, iterations=4096, salt=b"saltsalt", salted=b"x" * 32):
    return cstr(user) + struct.pack(">bi", mech, iterations) + cbytes(salt) + cbytes(salted) + b"\0"


def dele(user, mech=1):
    return cstr(user) + struct.pack(">b", mech) + b"\0"


def describe(addr, users):
    """Raw DescribeUserScramCredentials v0 (users None: all): (error, message, {user: (err, msg, {mech: it})})."""
    host, port = addr.rsplit(":", 1)
    body = (b"\0" if users is None else carray([cstr(u) + b"\0" for u in users])) + b"\0"
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(flex_request(50, 0, 8, body))
        r = read_frame(s)
    err = struct.unpack(">h", r[9:11])[0]
    msg, off = read_cstr(r, 11)
    n, off = read_uvarint(r, off)
    res = {}
    for _ in range(n - 1):
        user, off = read_cstr(r, off)
        e = struct.unpack(">h", r[off:off + 2])[0]
        m, off = read_cstr(r, off + 2)
        k, off = read_uvarint(r, off)
        infos = {}
        for _ in range(k - 1):
            mech, it = struct.unpack(">bi", r[off:off + 5])
            infos[mech] = it
            off += 6
        off += 1
        res[user] = (e, m, infos)
    return err, msg, res


def scram_extra():
    extra = {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
             # A long session for one mechanism on one listener only: re-authentication is seen on the wire
             # without any other client having to re-authenticate.
             "listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms": "600000"}
    for listener in ("sasl_plaintext", "sasl_ssl"):
        for mech in ("scram-sha-256", "scram-sha-512"):
            extra["listener.name.%s.%s.sasl.jaas.config" % (listener, mech)] = SCRAM_JAAS
    return extra


class ScramTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-pki-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.t = SecureTarget(cls.pki, scram_extra())
        cls.addClassCleanup(cls.t.stop)
        cls.t.start()
        for user, (mech, password) in USERS.items():
            assert scram_upsert(cls.t.addr("PLAINTEXT"), {user: password}, mechanism=mech) == {user: (0, None)}

    def p(self, name):
        return os.path.join(self.pki, name)

    def raw(self, listener):
        s = socket.create_connection((HOST, self.t.ports[listener]), timeout=10)
        if listener == "SASL_SSL":
            s = ssl.create_default_context(cafile=self.p("ca.pem")).wrap_socket(s, server_hostname="localhost")
        self.addCleanup(s.close)
        return s

    def login(self, user, password, mechanism, listener="SASL_PLAINTEXT", deadline_s=10.0):
        """A raw SCRAM login: (error, message) of the step that ended it. Retried while the target has not yet
        learnt a credential it just acknowledged (Apache Kafka applies it to its cache a moment later)."""
        deadline = time.monotonic() + deadline_s
        while True:
            s = self.raw(listener)
            err, mechs = handshake(s, mechanism)
            self.assertEqual(err, 0, mechs)
            # Kafka lists the enabled mechanisms in its own (hash) order, kbroker in the configured one.
            self.assertEqual(sorted(mechs), ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
            c = ScramClient(mechanism, user, password)
            err, msg, server_first = sasl_authenticate(s, c.first(), corr=2)
            if err == 0:
                err, msg, server_final = sasl_authenticate(s, c.final(server_first), corr=3)
                if err == 0:
                    self.assertEqual(server_final.decode(), "v=" + c.server_signature)
                    # Authenticated: an ordinary request is served.
                    self.assertIn(3, api_versions_keys(s, corr=4))
            s.close()
            if err == 0 or time.monotonic() > deadline or password is None:
                return err, msg
            time.sleep(0.3)

    def venv_python(self):
        venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py3", "venv.sh")
        p = subprocess.run([venv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if p.returncode != 0:
            raise unittest.SkipTest("the compat venv (py3/venv.sh) is not available: %s" % p.stderr[-300:])
        return p.stdout.decode().strip()

    def java(self):
        java_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "java")
        if subprocess.run([os.path.join(java_dir, "build.sh")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=600).returncode != 0:
            raise unittest.SkipTest("the Java suite (compat-tests/java/build.sh) does not build here")
        with open(os.path.join(java_dir, "target", "classpath.txt")) as f:
            cp = f.read().strip()
        return ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp]

    # ---- clients --------------------------------------------------------------------------------

    def test_confluent_kafka_round_trips(self):
        """confluent-kafka 2.x produces and consumes over SASL_PLAINTEXT and SASL_SSL with each mechanism."""
        py = self.venv_python()
        for listener in ("SASL_PLAINTEXT", "SASL_SSL"):
            for user, (mech, password) in USERS.items():
                conf = {"bootstrap.servers": self.t.addr(listener), "security.protocol": listener,
                        "sasl.mechanisms": mech, "sasl.username": user, "sasl.password": password}
                if listener == "SASL_SSL":
                    conf["ssl.ca.location"] = self.p("ca.pem")
                import json
                p = subprocess.run([py, "-c", ROUND_TRIP, json.dumps(conf), uniq("scram-" + listener.lower())],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
                self.assertEqual(p.returncode, 0, "%s over %s:\n%s" % (mech, listener, p.stdout.decode()[-2000:]))

    def test_kafka_python_scram_sha_256(self):
        """kafka-python 2.0.2 (SaslHandshake v0, then bare SCRAM messages) with SCRAM-SHA-256."""
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        conf = dict(bootstrap_servers=self.t.addr("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
                    sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="sam", sasl_plain_password="sam-secret")
        topic = uniq("scram-kp")
        prod = KafkaProducer(**conf)
        for i in range(5):
            prod.send(topic, b"kp-%d" % i).get(timeout=30)
        prod.close()
        cons = KafkaConsumer(consumer_timeout_ms=15000, auto_offset_reset="earliest", **conf)
        cons.assign([TopicPartition(topic, 0)])
        got = []
        for m in cons:
            got.append(m.value)
            if len(got) == 5:
                break
        cons.close()
        self.assertEqual(got, [b"kp-%d" % i for i in range(5)])

    def test_java_console_clients(self):
        """Kafka's console producer and consumer (kafka-clients 4.4.0) with SCRAM-SHA-256 and SCRAM-SHA-512."""
        java = self.java()
        jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";'
        for listener, user in (("SASL_PLAINTEXT", "sam"), ("SASL_SSL", "sara")):
            mech, password = USERS[user]
            props = {"security.protocol": listener, "sasl.mechanism": mech, "sasl.jaas.config": jaas % (user, password)}
            if listener == "SASL_SSL":
                props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": self.p("ca.pem")})
            conf = os.path.join(self.pki, "java-scram-%s.properties" % listener)
            with open(conf, "w", encoding="utf-8") as f:
                f.write("".join("%s=%s\n" % kv for kv in props.items()))
            topic = uniq("scram-java-" + listener.lower())
            lines = ["%s-java-%d" % (mech, i) for i in range(5)]
            p = subprocess.run(java + ["org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server",
                                       self.t.addr(listener), "--topic", topic, "--command-config", conf],
                               input="\n".join(lines).encode() + b"\n", stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=120)
            self.assertEqual(p.returncode, 0, "Java producer, %s over %s:\n%s" % (mech, listener,
                                                                                 p.stdout.decode()[-3000:]))
            c = subprocess.run(java + ["org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                                       self.t.addr(listener), "--topic", topic, "--command-config", conf,
                                       "--from-beginning", "--max-messages", str(len(lines)), "--timeout-ms",
                                       "30000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            # Kafka's tools may log a line to stdout too: only the records count.
            got = [ln for ln in c.stdout.decode().split() if ln.startswith(mech + "-java-")]
            self.assertEqual(got, lines,
                             "Java consumer, %s over %s:\n%s" % (mech, listener, c.stderr.decode()[-3000:]))

    def config_command(self, user, *args):
        cmd = self.java() + ["org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", self.t.addr("PLAINTEXT"),
                             "--entity-type", "users", "--entity-name", user] + list(args)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout.decode()[-3000:])
        return p.stdout.decode()

    def test_config_command_users(self):
        """Kafka's kafka-configs.sh (ConfigCommand) creates a SCRAM-SHA-512 user, who logs in, and deletes it."""
        user = uniq("cfg")
        out = self.config_command(user, "--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=cfg-pw]")
        self.assertIn("Completed updating config for user %s." % user, out)
        self.assertEqual(describe(self.t.addr("PLAINTEXT"), [user])[2], {user: (0, "", {2: 8192})})
        self.assertEqual(self.login(user, "cfg-pw", "SCRAM-SHA-512"), (0, ""))
        self.assertEqual(self.login(user, "cfg-pw", "SCRAM-SHA-256", deadline_s=0)[0], SASL_AUTHENTICATION_FAILED)
        self.config_command(user, "--alter", "--delete-config", "SCRAM-SHA-512")
        self.assertEqual(describe(self.t.addr("PLAINTEXT"), [user])[2][user][0], RESOURCE_NOT_FOUND)

    def test_config_command_describe(self):
        """kafka-configs.sh --describe lists a user's SCRAM mechanisms and iterations."""
        user = uniq("cfgd")
        # One mechanism per call: Kafka refuses a user altered twice in one request (DUPLICATE_RESOURCE).
        self.config_command(user, "--alter", "--add-config", "SCRAM-SHA-256=[password=a]")
        self.config_command(user, "--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=b]")
        out = self.config_command(user, "--describe")
        prefix = "SCRAM credential configs for user-principal '%s' are " % user
        line = [ln for ln in out.splitlines() if ln.startswith(prefix)]
        self.assertEqual(len(line), 1, out)
        # Kafka lists the mechanisms in its own (hash) order.
        self.assertEqual(set(line[0][len(prefix):].split(", ")),
                         {"SCRAM-SHA-256=iterations=4096", "SCRAM-SHA-512=iterations=8192"})

    # ---- refusals -------------------------------------------------------------------------------

    def test_wrong_password_and_unknown_user(self):
        since = len(self.t.log_text())
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            for user, password in (("sam", "not-it"), ("sara", "not-it"), ("nobody", "x")):
                err, msg = self.login(user, password, mech, deadline_s=0)
                self.assertEqual((err, msg), (SASL_AUTHENTICATION_FAILED, GENERIC % mech), (user, mech))
        # A right password with the mechanism the user has no credential for.
        self.assertEqual(self.login("sam", "sam-secret", "SCRAM-SHA-512", deadline_s=0),
                         (SASL_AUTHENTICATION_FAILED, GENERIC % "SCRAM-SHA-512"))
        needle = "failed authentication with 127.0.0.1" if self.t.kind == "kbroker" else \
            "Failed authentication with /127.0.0.1"
        self.assertTrue(self.t.wait_log(needle, since=since, timeout=10), "no log line for the failures")
        self.assertNotIn("not-it", self.t.log_text()[since:])
        # The connection is closed after the failure.
        s = self.raw("SASL_PLAINTEXT")
        handshake(s, "SCRAM-SHA-256")
        self.assertEqual(sasl_authenticate(s, ScramClient("SCRAM-SHA-256", "nobody", "x").first(), 2)[0],
                         SASL_AUTHENTICATION_FAILED)
        self.assertTrue(closed(s), "the connection stayed open after a failed SCRAM login")
        self.assertEqual(self.login("sam", "sam-secret", "SCRAM-SHA-256"), (0, ""))
        self.assertEqual(self.login("sara", USERS["sara"][1], "SCRAM-SHA-512", listener="SASL_SSL"), (0, ""))

    def test_malformed_messages_and_absurd_token(self):
        since = len(self.t.log_text())
        bad_first = [b"", b"y,,n=sam,r=abc", b"n,,n=sam", b"n,,n=s=2Xam,r=abc", b"\xff\x00garbage",
                     b"n,,n=sam,r=abc,tokenauth=true"]
        for tok in bad_first:
            s = self.raw("SASL_PLAINTEXT")
            handshake(s, "SCRAM-SHA-256")
            self.assertEqual(sasl_authenticate(s, tok, corr=2), (SASL_AUTHENTICATION_FAILED,
                                                                 GENERIC % "SCRAM-SHA-256", b""), tok)
            self.assertTrue(closed(s), "still open after the malformed client-first %r" % tok)
        # A valid first message, then a malformed final one.
        s = self.raw("SASL_PLAINTEXT")
        handshake(s, "SCRAM-SHA-256")
        c = ScramClient("SCRAM-SHA-256", "sam", "sam-secret")
        err, _, server_first = sasl_authenticate(s, c.first(), corr=2)
        self.assertEqual(err, 0)
        self.assertEqual(sasl_authenticate(s, b"c=biws,r=" + server_first[2:12] + b",p=AAAA", corr=3)[:2],
                         (SASL_AUTHENTICATION_FAILED, GENERIC % "SCRAM-SHA-256"))
        self.assertTrue(closed(s))
        # An absurd token: a frame over sasl.server.max.receive.size (512 KiB) before authentication.
        s = self.raw("SASL_PLAINTEXT")
        handshake(s, "SCRAM-SHA-256")
        token = b"n,,n=sam,r=" + b"a" * (600 << 10)
        try:
            s.sendall(request(36, 1, 2, struct.pack(">i", len(token)) + token))
        except (ConnectionResetError, BrokenPipeError):
            pass
        self.assertTrue(closed(s, timeout=10), "an oversized SCRAM token was not refused")
        if self.t.kind == "kbroker":
            self.assertTrue(self.t.wait_log("exceeds sasl.server.max.receive.size", since=since))
            self.assertTrue(self.t.wait_log("invalid credentials with SASL mechanism SCRAM-SHA-256: client-first",
                                            since=since))
        else:
            self.assertTrue(self.t.wait_log("Failed authentication with /127.0.0.1", since=since, timeout=10))
        # Everyone else is still served.
        self.assertEqual(self.login("sam", "sam-secret", "SCRAM-SHA-256"), (0, ""))

    # ---- AlterUserScramCredentials / DescribeUserScramCredentials ---------------------------------

    def test_alter_errors_as_kafka(self):
        a = self.t.addr("PLAINTEXT")
        cases = [
            ([], [up("u1", iterations=4095)], {"u1": (UNACCEPTABLE_CREDENTIAL, "Too few iterations")}),
            ([], [up("u1", iterations=16385)], {"u1": (UNACCEPTABLE_CREDENTIAL, "Too many iterations")}),
            ([], [up("u1", mech=3)], {"u1": (UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")}),
            ([], [up("u1", mech=0)], {"u1": (UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")}),
            ([dele("u1", 5)], [], {"u1": (UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")}),
            ([], [up("")], {"": (UNACCEPTABLE_CREDENTIAL, "Username must not be empty")}),
            ([dele("")], [], {"": (UNACCEPTABLE_CREDENTIAL, "Username must not be empty")}),
            ([], [up("u2"), up("u2", mech=2)], {"u2": (DUPLICATE_RESOURCE, TWICE)}),
            ([], [up("u2"), up("u2")], {"u2": (DUPLICATE_RESOURCE, TWICE)}),
            ([dele("u3")], [up("u3")], {"u3": (RESOURCE_NOT_FOUND, ABSENT)}),
            ([dele("u4"), dele("u4", 2)], [], {"u4": (RESOURCE_NOT_FOUND, ABSENT)}),
            ([dele("nobody")], [], {"nobody": (RESOURCE_NOT_FOUND, ABSENT)}),
            ([], [up("u6", salted=b"")], {"u6": (-1, None)}),
            ([], [up("u5", salt=b""), up("u7", iterations=16384)], {"u5": (0, None), "u7": (0, None)}),
            ([], [up("u7", mech=2)], {"u7": (0, None)}),
            ([dele("zz")], [up("u8", iterations=1), up("u9")],
             {"zz": (RESOURCE_NOT_FOUND, ABSENT), "u8": (UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
              "u9": (0, None)}),
            ([dele("u9")], [], {"u9": (0, None)}),
            ([dele("u9")], [], {"u9": (RESOURCE_NOT_FOUND, ABSENT)}),
            ([dele("u7"), dele("u7", 2)], [], {"u7": (DUPLICATE_RESOURCE, TWICE)}),
        ]
        for dels, ups, want in cases:
            self.assertEqual(alter(a, dels, ups), want)
        # What was accepted is there, what was refused is not.
        err, msg, res = describe(a, None)
        self.assertEqual((err, msg), (0, ""))
        self.assertEqual(res["u5"], (0, "", {1: 4096}))
        self.assertEqual(res["u7"], (0, "", {1: 16384, 2: 4096}))
        for gone in ("u1", "u2", "u3", "u6", "u8", "u9"):
            self.assertNotIn(gone, res)

    def test_describe_as_kafka(self):
        a = self.t.addr("PLAINTEXT")
        err, msg, everyone = describe(a, None)
        self.assertEqual((err, msg), (0, ""))
        self.assertEqual(everyone["sam"], (0, "", {1: 4096}))
        self.assertEqual(everyone["sara"], (0, "", {2: 4096}))
        self.assertEqual(describe(a, [])[2], everyone)  # an empty list is "all", as a null one
        err, msg, res = describe(a, ["sam", "nobody", "sam", ""])
        self.assertEqual((err, msg), (0, ""))
        self.assertEqual(res, {
            "sam": (DUPLICATE_RESOURCE,
                    "Cannot describe SCRAM credentials for the same user twice in a single request: sam", {}),
            "nobody": (RESOURCE_NOT_FOUND, "Attempt to describe a user credential that does not exist: nobody", {}),
            "": (RESOURCE_NOT_FOUND, "Attempt to describe a user credential that does not exist: ", {}),
        })
        self.assertEqual(describe(a, ["sara"])[2], {"sara": (0, "", {2: 4096})})

    def test_session_lifetime_and_reauthentication(self):
        """KIP-368 with SCRAM: the mechanism's connections.max.reauth.ms is the session lifetime answered by the
        last SaslAuthenticate (the other mechanism answers 0), and the client re-authenticates on the same
        connection with a new SCRAM exchange, then keeps being served."""
        def exchange(s, mechanism, user, corr):
            err, mechs = handshake(s, mechanism, corr=corr)
            self.assertEqual(err, 0, mechs)
            c = ScramClient(mechanism, user, USERS[user][1])
            err, msg, server_first = sasl_authenticate(s, c.first(), corr=corr + 1)
            self.assertEqual(err, 0, msg)
            s.sendall(request(36, 1, corr + 2, struct.pack(">i", len(c.final(server_first))) + c.final(server_first)))
            r = read_frame(s)
            err, mlen = struct.unpack(">hh", r[4:8])
            self.assertEqual(err, 0, r[8:8 + max(mlen, 0)])
            off = 8 + max(mlen, 0)
            blen = struct.unpack(">i", r[off:off + 4])[0]
            self.assertEqual(r[off + 4:off + 4 + blen].decode(), "v=" + c.server_signature)
            return struct.unpack(">q", r[off + 4 + blen:off + 12 + blen])[0]

        users = {USERS[u][0]: u for u in USERS}
        s = self.raw("SASL_PLAINTEXT")
        self.assertEqual(exchange(s, "SCRAM-SHA-256", users["SCRAM-SHA-256"], 1), 0)
        s = self.raw("SASL_PLAINTEXT")
        life = exchange(s, "SCRAM-SHA-512", users["SCRAM-SHA-512"], 1)
        self.assertTrue(599000 <= life <= 600000, life)
        self.assertIn(3, api_versions_keys(s, corr=10))
        time.sleep(1.1)  # Kafka accepts one re-authentication per second
        life = exchange(s, "SCRAM-SHA-512", users["SCRAM-SHA-512"], 11)
        self.assertTrue(599000 <= life <= 600000, life)
        self.assertIn(3, api_versions_keys(s, corr=20))

    def test_api_versions_advertise(self):
        keys = api_versions_keys(self.raw("PLAINTEXT"))
        self.assertEqual(keys.get(50), (0, 0))
        self.assertEqual(keys.get(51), (0, 0))


class ScramConfigTest(unittest.TestCase):
    def test_enabled_scram_without_its_jaas_line_refuses_to_start(self):
        """A SCRAM mechanism in sasl.enabled.mechanisms needs its listener.name.<l>.<mech>.sasl.jaas.config."""
        pki = tempfile.mkdtemp(prefix="kb-pki-")
        self.addCleanup(shutil.rmtree, pki, True)
        make_pki(pki)
        t = SecureTarget(pki, {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256"})
        self.addCleanup(t.stop)
        with self.assertRaises(Exception) as ctx:
            t.start()
        want = "scram-sha-256.sasl.jaas.config" if t.kind == "kbroker" else \
            "Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry in the JAAS configuration"
        self.assertIn(want, str(ctx.exception))


class ScramKbrokerTest(unittest.TestCase):
    """What only a process of our own can show: a restart, and the storage tool before the first start."""

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-pki-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)

    def login_ok(self, t, user, password, mechanism):
        s = socket.create_connection((HOST, t.ports["SASL_PLAINTEXT"]), timeout=10)
        self.addCleanup(s.close)
        self.assertEqual(handshake(s, mechanism)[0], 0)
        c = ScramClient(mechanism, user, password)
        err, msg, server_first = sasl_authenticate(s, c.first(), corr=2)
        if err == 0:
            err, msg, _ = sasl_authenticate(s, c.final(server_first), corr=3)
        return err, msg

    @kbroker_only("restarts the broker process")
    def test_credentials_survive_restart(self):
        t = SecureTarget(self.pki, scram_extra())
        self.addCleanup(t.stop)
        t.start()
        a = t.addr("PLAINTEXT")
        self.assertEqual(scram_upsert(a, {"keep": "keep-pw", "drop": "drop-pw"}), {"keep": (0, None),
                                                                                   "drop": (0, None)})
        self.assertEqual(scram_upsert(a, {"keep": "keep-512"}, mechanism="SCRAM-SHA-512"), {"keep": (0, None)})
        self.assertEqual(scram_upsert(a, {}, deletions=[("drop", "SCRAM-SHA-256")]), {"drop": (0, None)})
        t.kb.restart()
        self.assertIn(", 1 SCRAM users", t.log_text())  # keep (both mechanisms); drop deleted
        self.assertEqual(self.login_ok(t, "keep", "keep-pw", "SCRAM-SHA-256"), (0, ""))
        self.assertEqual(self.login_ok(t, "keep", "keep-512", "SCRAM-SHA-512"), (0, ""))
        self.assertEqual(self.login_ok(t, "drop", "drop-pw", "SCRAM-SHA-256"),
                         (SASL_AUTHENTICATION_FAILED, GENERIC % "SCRAM-SHA-256"))
        self.assertEqual(describe(a, None)[2], {"keep": (0, "", {1: 4096, 2: 4096})})
        self.assertNotIn("keep-pw", t.log_text())

    @kbroker_only("kbroker-storage writes kbroker's own metadata log")
    def test_storage_format_add_scram(self):
        """kbroker-storage format --add-scram (Kafka's kafka-storage syntax) creates the first users before the
        first start: password= with iterations=, and salt= with saltedpassword= (base64)."""
        tool = os.path.join(os.path.dirname(os.environ.get("KB_BROKER_BIN", "")), "kbroker-storage")
        if not os.access(tool, os.X_OK):
            self.fail("no kbroker-storage beside the broker binary: %s" % tool)
        t = SecureTarget(self.pki, scram_extra())
        self.addCleanup(t.stop)
        salt = b"fixed-salt-for-the-test"
        salted = hashlib.pbkdf2_hmac("sha512", b"ops pass", salt, 4096)
        args = [tool, "format", "--set", "log.dirs=%s" % t.kb.data_dir,
                "--add-scram", "SCRAM-SHA-256=[name=admin,password=admin-secret,iterations=8192]",
                "--add-scram", 'SCRAM-SHA-512=[name=ops,salt="%s",saltedpassword="%s"]' % (b64(salt), b64(salted)),
                "--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-512]"]
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        self.assertNotIn("admin-secret", p.stdout.decode())
        # Bad specs are refused with Kafka's words, and nothing is written twice.
        for bad, why in (("SCRAM-SHA-256=[password=x]", "you must supply 'name'"),
                         ("SCRAM-SHA-256=[name=a]", "one of 'password' or 'saltedpassword'"),
                         ("SCRAM-SHA-1=[name=a,password=x]", "unknown SCRAM mechanism"),
                         ("SCRAM-SHA-256=[name=a,password=x,iterations=100]", "iterations must be 4096 to 16384"),
                         ("SCRAM-SHA-256=[name=new,password=x]", "already holds SCRAM credentials")):
            p = subprocess.run(args[:4] + ["--add-scram", bad], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=60)
            self.assertNotEqual(p.returncode, 0, bad)
            self.assertIn(why, p.stdout.decode(), bad)
        t.start()
        self.assertEqual(self.login_ok(t, "admin", "admin-secret", "SCRAM-SHA-256"), (0, ""))
        self.assertEqual(self.login_ok(t, "admin", "admin-512", "SCRAM-SHA-512"), (0, ""))
        self.assertEqual(self.login_ok(t, "ops", "ops pass", "SCRAM-SHA-512"), (0, ""))
        self.assertEqual(self.login_ok(t, "new", "x", "SCRAM-SHA-256")[0], SASL_AUTHENTICATION_FAILED)
        self.assertEqual(describe(t.addr("PLAINTEXT"), ["admin"])[2], {"admin": (0, "", {1: 8192, 2: 4096})})
        # While the broker runs, the tool keeps off its log dir.
        p = subprocess.run(args[:4] + ["--add-scram", "SCRAM-SHA-256=[name=late,password=x]"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is a broker running", p.stdout.decode())


if __name__ == "__main__":
    unittest.main()

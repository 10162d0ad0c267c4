"""Security matrix: every client of the suite over SSL, mTLS, SASL_PLAINTEXT and SASL_SSL with PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512.

Owns: the one secured target of the matrix (lib/secure.py's SecureTarget, started once per target: kbroker
or Apache Kafka), its SCRAM users, and running every client's round trip against it: confluent-kafka 1.7,
kafka-python 2.0.2 and kcat in this process (Debian's python); confluent-kafka 2.x, kafka-python 3 and
aiokafka in the py3 venv (this file again, `--runner py3`); franz-go, sarama and kafka-go (go/security_test.go);
KafkaJS and @platformatic/kafka (js/test/security.test.mjs); kafka-clients 4.4 (java SecurityCases). One
unittest method per client x listener x mechanism, so REPORT.md names every cell that skips or differs.
Must not: loosen a round trip to hide a broker difference (mark it kbroker_differs), or leave a runner
unbounded in time.

A round trip: three records with keys and two headers each, produced with acks=all, read back exactly (key,
value, headers, in order) by a consumer in a fresh group (subscribe, earliest) that commits; clients
without groups say so in their runner.

Runners get the target through the environment (also how to run one by hand):
  KB_SEC_BOOTSTRAP_<L>   host:port of listener L: PLAINTEXT, SSL, MTLS (SSL, ssl.client.auth=required),
                         SASL_PLAINTEXT, SASL_SSL
  KB_SEC_CA              the test CA (PEM) that signed the server certificate (localhost, IP 127.0.0.1)
  KB_SEC_CLIENT_CERT, KB_SEC_CLIENT_KEY   the client certificate and key for MTLS (PEM, PKCS#8 key)
  KB_SEC_CLIENT_KEYSTORE key and certificate in one PEM file (Java's ssl.keystore.type=PEM)
  KB_SEC_CRED_PLAIN, KB_SEC_CRED_SCRAM_SHA_256, KB_SEC_CRED_SCRAM_SHA_512   user:password per mechanism
                         (one SCRAM user per mechanism, so a client using the wrong one fails)
  KB_SEC_CASES           optional comma list of LISTENER/MECHANISM cells (MECHANISM "-" for SSL/MTLS)
  KB_BOOTSTRAP           the PLAINTEXT listener (the JS helpers need it)
Each runner prints one line per cell: SECCASE <client> <listener> <mechanism|-> PASS|FAIL|SKIP <detail>.
"""

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "lib"))

# Listener name (lib/secure.py) x SASL mechanism; MTLS is an SSL listener with ssl.client.auth=required.
CELLS = (("SSL", "-"), ("MTLS", "-"),
         ("SASL_PLAINTEXT", "PLAIN"), ("SASL_SSL", "PLAIN"),
         ("SASL_PLAINTEXT", "SCRAM-SHA-256"), ("SASL_SSL", "SCRAM-SHA-256"),
         ("SASL_PLAINTEXT", "SCRAM-SHA-512"), ("SASL_SSL", "SCRAM-SHA-512"))
# Client -> runner. Runner "inproc" is this process (Debian's python).
CLIENTS = (("confluent17", "inproc"), ("kafka_python2", "inproc"), ("kcat", "inproc"),
           ("confluent2", "py3"), ("kafka_python3", "py3"), ("aiokafka", "py3"),
           ("java", "java"), ("franz", "go"), ("sarama", "go"), ("kafkago", "go"),
           ("kafkajs", "js"), ("platformatic", "js"))
SCRAM_USERS = {"SCRAM-SHA-256": ("scram256", "s256 secret"), "SCRAM-SHA-512": ("scram512", "s512-secret")}
CASE_TIMEOUT = 60
RUNNER_TIMEOUT = 170


def protocol(listener):
    return "SSL" if listener == "MTLS" else listener


def cred(mech):
    u, _, p = os.environ["KB_SEC_CRED_" + mech.replace("-", "_")].partition(":")
    return u, p


def records(client, listener, mech):
    """What every round trip writes and must read back: (key, value, [(header, value)])."""
    return [("k%d" % i, "%s %s %s #%d" % (client, listener, mech, i), [("i", str(i)), ("via", listener)])
            for i in range(3)]


def names(client, listener, mech):
    tag = ("%s-%s-%s" % (client, listener, mech)).lower().replace("_", "-")
    suffix = uuid.uuid4().hex[:8]
    return "sec-%s-%s" % (tag, suffix), "secg-%s-%s" % (tag, suffix)


def check(got, want, what):
    if got != want:
        raise AssertionError("%s: read back %r, wanted %r" % (what, got, want))


# ---- Python clients (shared by Debian's python and the venv: same APIs, other versions) -------------------


def rt_confluent(client, listener, mech):
    from confluent_kafka import Consumer, Producer

    c = {"bootstrap.servers": os.environ["KB_SEC_BOOTSTRAP_" + listener], "security.protocol": protocol(listener),
         "socket.timeout.ms": 15000}
    if "SSL" in c["security.protocol"]:
        c["ssl.ca.location"] = os.environ["KB_SEC_CA"]
    if listener == "MTLS":
        c["ssl.certificate.location"] = os.environ["KB_SEC_CLIENT_CERT"]
        c["ssl.key.location"] = os.environ["KB_SEC_CLIENT_KEY"]
    if mech != "-":
        c["sasl.mechanisms"] = mech
        c["sasl.username"], c["sasl.password"] = cred(mech)
    topic, group = names(client, listener, mech)
    want = records(client, listener, mech)
    errors, reports = [], []
    p = Producer(dict(c, **{"acks": "all", "error_cb": errors.append, "message.timeout.ms": 30000}))
    for k, v, h in want:
        p.produce(topic, v.encode(), k.encode(), headers=h,
                  on_delivery=lambda err, msg: reports.append(err))
    left = p.flush(40)
    if left or any(reports):
        raise AssertionError("produce: %d undelivered, delivery errors %s, client errors %s"
                             % (left, [str(e) for e in reports if e], [str(e) for e in errors]))
    cons = Consumer(dict(c, **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                               "error_cb": errors.append}))
    try:
        cons.subscribe([topic])
        got, deadline = [], time.monotonic() + 40
        while len(got) < len(want) and time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is None or m.error():
                continue
            got.append((m.key().decode(), m.value().decode(),
                        [(hk, hv.decode()) for hk, hv in (m.headers() or [])]))
        check(got, want, "consumer group %s (client errors %s)" % (group, [str(e) for e in errors]))
        cons.commit(asynchronous=False)
    finally:
        cons.close()


def kafka_python_conf(listener, mech):
    c = {"bootstrap_servers": os.environ["KB_SEC_BOOTSTRAP_" + listener], "security_protocol": protocol(listener),
         "request_timeout_ms": 30000}
    if "SSL" in c["security_protocol"]:
        c["ssl_cafile"] = os.environ["KB_SEC_CA"]
    if listener == "MTLS":
        c["ssl_certfile"] = os.environ["KB_SEC_CLIENT_CERT"]
        c["ssl_keyfile"] = os.environ["KB_SEC_CLIENT_KEY"]
    if mech != "-":
        c["sasl_mechanism"] = mech
        c["sasl_plain_username"], c["sasl_plain_password"] = cred(mech)
    return c


def rt_kafka_python(client, listener, mech):
    from kafka import KafkaConsumer, KafkaProducer

    c = kafka_python_conf(listener, mech)
    topic, group = names(client, listener, mech)
    want = records(client, listener, mech)
    p = KafkaProducer(acks="all", **c)
    try:
        futs = [p.send(topic, key=k.encode(), value=v.encode(), headers=[(hk, hv.encode()) for hk, hv in h])
                for k, v, h in want]
        for f in futs:
            f.get(timeout=40)
    finally:
        p.close(timeout=10)
    cons = KafkaConsumer(group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, **c)
    try:
        cons.subscribe([topic])
        got, deadline = [], time.monotonic() + 40
        while len(got) < len(want) and time.monotonic() < deadline:
            for recs in cons.poll(timeout_ms=500).values():
                for m in recs:
                    got.append((m.key.decode(), m.value.decode(), [(hk, hv.decode()) for hk, hv in m.headers]))
        check(got, want, "consumer group " + group)
        cons.commit()
    finally:
        cons.close()


def rt_aiokafka(client, listener, mech):
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    c = {"bootstrap_servers": os.environ["KB_SEC_BOOTSTRAP_" + listener], "security_protocol": protocol(listener)}
    if "SSL" in c["security_protocol"]:
        ssl_args = {"cafile": os.environ["KB_SEC_CA"]}
        if listener == "MTLS":
            ssl_args.update(certfile=os.environ["KB_SEC_CLIENT_CERT"], keyfile=os.environ["KB_SEC_CLIENT_KEY"])
        c["ssl_context"] = create_ssl_context(**ssl_args)
    if mech != "-":
        c["sasl_mechanism"] = mech
        c["sasl_plain_username"], c["sasl_plain_password"] = cred(mech)
    topic, group = names(client, listener, mech)
    want = records(client, listener, mech)

    async def run():
        p = AIOKafkaProducer(acks="all", **c)
        await p.start()
        try:
            for k, v, h in want:
                await p.send_and_wait(topic, v.encode(), key=k.encode(), headers=[(hk, hv.encode()) for hk, hv in h])
        finally:
            await p.stop()
        cons = AIOKafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, **c)
        await cons.start()
        try:
            got, deadline = [], time.monotonic() + 40
            while len(got) < len(want) and time.monotonic() < deadline:
                for recs in (await cons.getmany(timeout_ms=500)).values():
                    for m in recs:
                        got.append((m.key.decode(), m.value.decode(), [(hk, hv.decode()) for hk, hv in m.headers]))
            check(got, want, "consumer group " + group)
            await cons.commit()
        finally:
            await cons.stop()

    asyncio.run(asyncio.wait_for(run(), CASE_TIMEOUT - 5))


def rt_kcat(client, listener, mech):
    x = ["-X", "security.protocol=" + protocol(listener)]
    if "SSL" in protocol(listener):
        x += ["-X", "ssl.ca.location=" + os.environ["KB_SEC_CA"]]
    if listener == "MTLS":
        x += ["-X", "ssl.certificate.location=" + os.environ["KB_SEC_CLIENT_CERT"],
              "-X", "ssl.key.location=" + os.environ["KB_SEC_CLIENT_KEY"]]
    if mech != "-":
        u, pw = cred(mech)
        x += ["-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=" + u, "-X", "sasl.password=" + pw]
    boot = ["-b", os.environ["KB_SEC_BOOTSTRAP_" + listener]]
    topic, group = names(client, listener, mech)
    want = records(client, listener, mech)
    # kcat -P gives every record of a run the same -H headers: records share theirs, one run per record.
    want = [(k, v, [("via", listener), ("case", "kcat")]) for k, v, _ in want]
    for k, v, _ in want:
        r = subprocess.run(["kcat"] + boot + x + ["-P", "-t", topic, "-K", "\t", "-H", "via=" + listener,
                                                  "-H", "case=kcat", "-X", "acks=all"],
                           input=("%s\t%s\n" % (k, v)).encode(), capture_output=True, timeout=40)
        if r.returncode:
            raise AssertionError("kcat -P exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    # -G: the balanced consumer (a group), -c: exit after that many records.
    r = subprocess.run(["kcat"] + boot + x + ["-G", group, "-X", "auto.offset.reset=earliest", "-c", str(len(want)),
                                              "-f", "%k\t%s\t%h\n", topic],
                       capture_output=True, timeout=45)
    if r.returncode:
        raise AssertionError("kcat -G exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
    got = []
    for ln in r.stdout.decode().splitlines():
        k, v, h = ln.split("\t")
        got.append((k, v, [tuple(kv.split("=", 1)) for kv in h.split(",")]))
    check(got, want, "kcat -G " + group)


RT = {"confluent17": rt_confluent, "confluent2": rt_confluent, "kafka_python2": rt_kafka_python,
      "kafka_python3": rt_kafka_python, "aiokafka": rt_aiokafka, "kcat": rt_kcat}


# librdkafka before 2.6.1 repeats the client nonce in the SCRAM client-final message; Kafka 4.x checks the
# nonce strictly (RFC 5802) and refuses the proof (confluentinc/librdkafka#4895). Debian's librdkafka 2.0.2
# (confluent-kafka 1.7, kcat) therefore cannot log in with SCRAM: those cells check that the broker refuses
# it as Kafka does, then skip with this reason.
OLD_LIBRDKAFKA_SCRAM = ("librdkafka 2.0.2 cannot log in with SCRAM to Kafka 4.x (client-final nonce bug, fixed in "
                        "librdkafka 2.6.1, confluentinc/librdkafka#4895); the refusal was checked")
REFUSED = "Authentication failed during authentication due to invalid credentials"


def refused_old_librdkafka(client, listener, mech):
    """Raises unless a librdkafka 2.0.2 SCRAM login is refused with Kafka's message (bounded: 20 s)."""
    u, pw = cred(mech)
    conf = ["security.protocol=" + protocol(listener), "sasl.mechanisms=" + mech, "sasl.username=" + u,
            "sasl.password=" + pw]
    if "SSL" in listener:
        conf.append("ssl.ca.location=" + os.environ["KB_SEC_CA"])
    if client == "kcat":
        args = ["kcat", "-b", os.environ["KB_SEC_BOOTSTRAP_" + listener], "-L", "-m", "8"]
        for c in conf:
            args += ["-X", c]
        r = subprocess.run(args, capture_output=True, timeout=20)
        err = r.stderr.decode(errors="replace")
        if r.returncode == 0 or REFUSED not in err:
            raise AssertionError("kcat -L with %s: exit %d, wanted a refusal (%r): %s"
                                 % (mech, r.returncode, REFUSED, " ".join(err.split())[-600:]))
        return
    import logging

    from confluent_kafka import Producer

    # The refusal's text reaches only librdkafka's log (error_cb sees a transport failure): collect it.
    seen = []

    class Collect(logging.Handler):
        def emit(self, rec):
            seen.append(rec.getMessage())

    lg = logging.getLogger("secmatrix-%s-%s" % (listener, mech))
    lg.propagate = False
    lg.addHandler(Collect())
    p = Producer(dict([c.split("=", 1) for c in conf], **{"bootstrap.servers": os.environ[
        "KB_SEC_BOOTSTRAP_" + listener], "logger": lg, "error_cb": lambda e: seen.append(str(e))}))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(REFUSED in m for m in seen):
        p.poll(0.2)
    try:
        md = p.list_topics(timeout=1)
    except Exception:
        md = None
    if md is not None:
        raise AssertionError("confluent-kafka 1.7 logged in with %s: the broker took the wrong nonce" % mech)
    if not any(REFUSED in m for m in seen):
        raise AssertionError("wanted a refusal (%r), got %s" % (REFUSED, seen[-5:]))


def one_line(e):
    return " ".join(("%s: %s" % (type(e).__name__, e)).split())[:2000]


def run_python_cases(runner, emit):
    """Runs the runner's Python clients over every cell (KB_SEC_CASES filters), 4 at a time; emit(line)."""
    want = os.environ.get("KB_SEC_CASES", "")
    cells = [c for c in CELLS if not want or "%s/%s" % c in want.split(",")]
    jobs = [(cl, lst, mech) for cl, r in CLIENTS if r == runner for lst, mech in cells]

    def one(job):
        cl, lst, mech = job
        t0 = time.monotonic()
        try:
            if cl in ("confluent17", "kcat") and mech.startswith("SCRAM"):
                refused_old_librdkafka(cl, lst, mech)
                status, detail = "SKIP", OLD_LIBRDKAFKA_SCRAM
            else:
                RT[cl](cl, lst, mech)
                status, detail = "PASS", ""
        except Exception as e:  # a client error is the cell's result
            status, detail = "FAIL", one_line(e)
        emit("SECCASE %s %s %s %s %.1fs %s" % (cl, lst, mech, status, time.monotonic() - t0, detail))

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for f in [ex.submit(one, j) for j in jobs]:
            f.result()


def py3_main():
    lock = threading.Lock()

    def emit(line):
        with lock:
            print(line, flush=True)

    run_python_cases("py3", emit)


if __name__ == "__main__" and sys.argv[1:2] == ["--runner"]:
    py3_main()
    sys.exit(0)

# ---- the driver (unittest, Debian's python) ----------------------------------------------------------------

from secure import JAAS, USERS, SecureTarget, make_pki, scram_upsert  # noqa: E402

JAVA_CASE = re.compile(r"^CASE (PASS|FAIL) secmatrix/(\w+)/([\w-]+) \((\d+) ms\)(?:: (.*))?$")


def scram_login(addr, user, password, mech):
    """A raw RFC 5802 exchange (SaslHandshake v1, SaslAuthenticate v1) on a SASL_PLAINTEXT listener; raises
    unless the broker accepts it and proves it knows the credential."""
    import base64
    import hashlib
    import hmac
    import socket
    import struct

    from secure import handshake
    from wire import read_frame, request

    h = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mech]
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        err, mechs = handshake(s, mech)
        if err:
            raise AssertionError("SaslHandshake %s: error %d, enabled %s" % (mech, err, mechs))

        def step(token, corr):
            s.sendall(request(36, 1, corr, struct.pack(">i", len(token)) + token))
            r = read_frame(s)
            code, mlen = struct.unpack(">hh", r[4:8])
            off = 8 + max(mlen, 0)
            msg = r[8:off].decode() if mlen >= 0 else None
            blen = struct.unpack(">i", r[off:off + 4])[0]
            if code:
                raise AssertionError("SaslAuthenticate: error %d %s" % (code, msg))
            return r[off + 4:off + 4 + blen].decode()

        bare = "n=%s,r=%s" % (user, uuid.uuid4().hex)
        first = step(("n,," + bare).encode(), 2)
        attrs = dict(kv.split("=", 1) for kv in first.split(","))
        salted = hashlib.pbkdf2_hmac(h, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", h).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth = ("%s,%s,%s" % (bare, first, without_proof)).encode()
        sig = hmac.new(hashlib.new(h, client_key).digest(), auth, h).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        final = step(("%s,p=%s" % (without_proof, proof)).encode(), 3)
        server_sig = hmac.new(hmac.new(salted, b"Server Key", h).digest(), auth, h).digest()
        if final != "v=" + base64.b64encode(server_sig).decode():
            raise AssertionError("server-final %r does not prove the credential" % final)


SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def scram_settings(mechs):
    s = {"sasl.enabled.mechanisms": ",".join(["PLAIN"] + mechs)}
    for lst in ("sasl_plaintext", "sasl_ssl"):
        for m in mechs:
            s["listener.name.%s.%s.sasl.jaas.config" % (lst, m.lower())] = SCRAM_JAAS
    return s


class Runner:
    """A child process printing SECCASE lines; its output is kept for the cells it does not report."""

    def __init__(self, name, argv, cwd, env):
        self.name, self.argv = name, argv
        self.out, self.rc, self.error = "", None, None
        self.t = threading.Thread(target=self._run, args=(cwd, env), daemon=True)
        self.t.start()

    def _run(self, cwd, env):
        try:
            p = subprocess.run(self.argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=RUNNER_TIMEOUT)
            self.out, self.rc = p.stdout.decode("utf-8", "replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            self.out = (e.stdout or b"").decode("utf-8", "replace")
            self.error = "runner timed out after %ds" % RUNNER_TIMEOUT
        except Exception as e:
            self.error = one_line(e)

    def wait(self):
        self.t.join(RUNNER_TIMEOUT + 30)


class SecurityMatrixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-secmatrix-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.t = cls.start_target(["SCRAM-SHA-256", "SCRAM-SHA-512"])
        cls.addClassCleanup(cls.t.stop)
        cls.env = cls.client_env()
        cls.results = {}
        cls.lock = threading.Lock()
        cls.runners = {}
        cls.start_runners()

    @classmethod
    def start_target(cls, mechs):
        from kafka_ref import REF_SETTINGS

        t = SecureTarget(cls.pki, extra=dict(REF_SETTINGS, **scram_settings(mechs)))
        try:
            t.start()
        except BaseException:
            t.stop()
            raise
        return t

    @classmethod
    def client_env(cls):
        p = lambda n: os.path.join(cls.pki, n)  # noqa: E731
        env = dict(os.environ, KB_SEC_CA=p("ca.pem"), KB_SEC_CLIENT_CERT=p("client.crt"),
                   KB_SEC_CLIENT_KEY=p("client.key"), KB_SEC_CLIENT_KEYSTORE=p("client-keystore.pem"),
                   KB_BOOTSTRAP=cls.t.addr("PLAINTEXT"), KB_SEC_CRED_PLAIN="alice:" + USERS["alice"])
        for lst in ("PLAINTEXT", "SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL"):
            env["KB_SEC_BOOTSTRAP_" + lst] = cls.t.addr(lst)
        assert 'user_alice="%s"' % USERS["alice"] in JAAS, "secure.JAAS no longer has the PLAIN user the clients use"
        cls.scram_error = None
        for mech, (user, pw) in SCRAM_USERS.items():
            env["KB_SEC_CRED_" + mech.replace("-", "_")] = "%s:%s" % (user, pw)
        try:
            for mech, (user, pw) in SCRAM_USERS.items():
                ans = scram_upsert(cls.t.addr("PLAINTEXT"), {user: pw}, mech)
                if ans.get(user, (None,))[0] != 0:
                    raise AssertionError("AlterUserScramCredentials %s %s: %r" % (mech, user, ans))
            cls.wait_scram(env)
        except Exception as e:
            cls.scram_error = "SCRAM users not created: " + one_line(e)
        os.environ.update({k: v for k, v in env.items() if k.startswith("KB_SEC_")})
        return env

    @classmethod
    def wait_scram(cls, env):
        """Kafka applies credentials through its metadata log: wait (bounded) until each user logs in."""
        for mech, (user, pw) in SCRAM_USERS.items():
            deadline, last = time.monotonic() + 20, None
            while True:
                try:
                    scram_login(env["KB_SEC_BOOTSTRAP_SASL_PLAINTEXT"], user, pw, mech)
                    break
                except Exception as e:
                    last = one_line(e)
                if time.monotonic() > deadline:
                    raise AssertionError("%s user %s cannot log in after 20 s: %s" % (mech, user, last))
                time.sleep(0.3)

    @classmethod
    def record(cls, line):
        m = JAVA_CASE.match(line)
        if m:  # java/Main's CASE lines: secmatrix/<listener>/<mechanism>
            with cls.lock:
                cls.results[("java", m.group(2), m.group(3))] = (m.group(1), m.group(5) or "",
                                                                 "%.1fs" % (int(m.group(4)) / 1000))
            return
        parts = line.split(" ", 6)
        if len(parts) >= 6 and parts[0] == "SECCASE":
            with cls.lock:
                cls.results[(parts[1], parts[2], parts[3])] = (parts[4], parts[6] if len(parts) > 6 else "",
                                                               parts[5])

    @classmethod
    def start_runners(cls):
        env = cls.env
        if cls.scram_error:
            cells = [c for c in CELLS if not c[1].startswith("SCRAM")]
            env = dict(env, KB_SEC_CASES=",".join("%s/%s" % c for c in cells))
        tmp = tempfile.mkdtemp(prefix="kb-secmatrix-run-")
        cls.addClassCleanup(shutil.rmtree, tmp, True)
        # Go: built here (go/build.sh, warm cache: seconds), then only the security tests.
        gobin = os.path.join(tmp, "go-sec.test")
        cls.runners["go"] = Runner("go", ["sh", "-c", '"$0" "$1" >/dev/null && exec "$1" -test.run "^TestSecurity" '
                                          '-test.parallel 6 -test.timeout 160s',
                                          os.path.join(ROOT, "go", "build.sh"), gobin], os.path.join(ROOT, "go"), env)
        cls.runners["js"] = Runner("js", ["node", "test/security.test.mjs"],
                                   os.path.join(ROOT, "js"), env)
        java_cp = os.path.join(ROOT, "java", "target")
        cls.runners["java"] = Runner("java", ["sh", "-c", '"$0" >/dev/null && exec java -Xmx512m -XX:+UseSerialGC '
                                              '-XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn '
                                              '-cp "$1/classes:$(cat "$1/classpath.txt")" kbcompat.Main',
                                              os.path.join(ROOT, "java", "build.sh"), java_cp],
                                     os.path.join(ROOT, "java"),
                                     dict(env, KB_JAVA_ONLY="secmatrix/", KB_BOOTSTRAP=cls.t.addr("PLAINTEXT")))
        venv = subprocess.run([os.path.join(ROOT, "py3", "venv.sh")], capture_output=True, timeout=600)
        if venv.returncode == 0:
            cls.runners["py3"] = Runner("py3", [venv.stdout.decode().strip(), os.path.abspath(__file__), "--runner"],
                                        ROOT, env)
        else:
            cls.py3_error = "py3/venv.sh failed: " + venv.stderr.decode(errors="replace")[-500:]
        # Debian's python clients, in this process, while the others run.
        cls.inproc = threading.Thread(target=run_python_cases, args=("inproc", cls.record), daemon=True)
        os.environ["KB_SEC_CASES"] = env.get("KB_SEC_CASES", "")
        cls.inproc.start()
        cls.addClassCleanup(cls.stop_runners)

    @classmethod
    def stop_runners(cls):
        cls.inproc.join(CASE_TIMEOUT * 8)
        for r in cls.runners.values():
            r.wait()
            for ln in r.out.splitlines():
                cls.record(ln)
        # Every cell as its runner saw it (seconds included), for the log of the run.
        for (client, lst, mech), (status, detail, secs) in sorted(cls.results.items()):
            print("SECCASE %s %s %s %s %s %s" % (client, lst, mech, status, secs, detail[:300]))

    def cell(self, client, runner, listener, mech):
        if mech.startswith("SCRAM") and self.scram_error:
            self.fail(self.scram_error)
        if runner == "inproc":
            deadline = time.monotonic() + CASE_TIMEOUT * 8
            while (client, listener, mech) not in self.results and self.inproc.is_alive():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        elif runner not in self.runners:
            self.fail(getattr(self, "py3_error", "runner %s not started" % runner))
        else:
            r = self.runners[runner]
            r.wait()
            for ln in r.out.splitlines():
                self.record(ln)
        got = self.results.get((client, listener, mech))
        if got is None:
            out = self.runners[runner].out if runner in self.runners else ""
            err = self.runners[runner].error if runner in self.runners else None
            self.fail("%s reported nothing for %s/%s (%s); runner output tail:\n%s"
                      % (client, listener, mech, err or "exit %s" % getattr(self.runners.get(runner), "rc", "?"),
                         out[-3000:]))
        status, detail, _secs = got
        if status == "SKIP":
            self.skipTest(detail)
        if status != "PASS":
            self.fail("%s over %s/%s: %s" % (client, listener, mech, detail))


def _make(client, runner, listener, mech):
    def t(self):
        self.cell(client, runner, listener, mech)
    t.__doc__ = "%s: produce/consume round trip over %s%s" % (client, listener, "" if mech == "-" else " " + mech)
    return t


for _client, _runner in CLIENTS:
    for _lst, _mech in CELLS:
        _name = "test_%s__%s_%s" % (_client, _lst.lower(), _mech.lower().replace("-", "").replace("scramsha", "scram"))
        setattr(SecurityMatrixTest, _name.rstrip("_"), _make(_client, _runner, _lst, _mech))

"""docker/entrypoint.sh outside a container: Kafka-image environment variables -> kbroker arguments.

Dry runs (KB_ENTRYPOINT_DRY_RUN=1) check the mapping for Apache-, Confluent- and
Bitnami-style compose environments; two real runs start the broker through the
entrypoint (ephemeral ports, temp data dir) and talk to it with kcat, the second
with the kafka service environment of docker/docker-compose.yml itself and the
compose file's own producer/consumer commands. The three kafka services of
docker/docker-compose.cluster.yml go through the entrypoint too (their addresses
moved to 127.0.0.1-3): one metadata quorum forms, a topic created on one node is
seen by all, and the compose file's consumer group reads what was produced.
No Docker engine is needed.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from broker import DEFAULT_BIN, REPO, shards_from_env  # noqa: E402
from common import KCAT, kbroker_only, uniq  # noqa: E402

DOCKER_ONLY = "docker/entrypoint.sh maps Kafka images' environment to kbroker's own process and arguments"

ENTRYPOINT = os.path.join(REPO, "docker", "entrypoint.sh")
COMPOSE = os.path.join(REPO, "docker", "docker-compose.yml")
CLUSTER_COMPOSE = os.path.join(REPO, "docker", "docker-compose.cluster.yml")
DOCKERFILE = os.path.join(REPO, "docker", "Dockerfile")
BROKER_BIN = os.environ.get("KB_BROKER_BIN") or DEFAULT_BIN
ADMIN_BIN = os.environ.get("KB_ADMIN_BIN") or os.path.join(REPO, "build", "bin", "kbroker-admin")
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"}


def free_port():
    from ports import free_port as pick

    return pick("127.0.0.1")


def dry_run(env, args=()):
    e = dict(BASE_ENV, KB_ENTRYPOINT_DRY_RUN="1", KB_BROKER_BIN="/opt/kbroker")
    e.update(env)
    p = subprocess.run([ENTRYPOINT] + list(args), env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20)
    if p.returncode != 0:
        raise AssertionError("entrypoint exited %d: %s" % (p.returncode, p.stderr.decode()))
    argv = p.stdout.decode().split("\n")[:-1]
    return argv, p.stderr.decode()


def sets_of(argv):
    """--set values in order, and the effective (last) value per key."""
    order, last = [], {}
    for i, a in enumerate(argv):
        if a == "--set":
            k, _, v = argv[i + 1].partition("=")
            order.append((k, v))
            last[k] = v
    return order, last


@kbroker_only(DOCKER_ONLY)
class DryRunMapping(unittest.TestCase):
    def test_apache_kraft_style(self):
        argv, log = dry_run({
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            "KAFKA_NUM_PARTITIONS": "3",
            "KAFKA_LOG_RETENTION_HOURS": "48",
            "KAFKA_HEAP_OPTS": "-Xmx1G",
            "KAFKA_LOG4J_OPTS": "-Dlog4j.configuration=x",
            "CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
            "FOO_BAR": "ignored",
        })
        self.assertEqual(argv[0], "/opt/kbroker")
        _, s = sets_of(argv)
        self.assertEqual(s["node.id"], "1")
        self.assertEqual(s["process.roles"], "broker,controller")
        self.assertEqual(s["listeners"], "PLAINTEXT://:9092,CONTROLLER://:9093")
        self.assertEqual(s["advertised.listeners"], "PLAINTEXT://kafka:9092")
        self.assertEqual(s["controller.listener.names"], "CONTROLLER")
        self.assertEqual(s["listener.security.protocol.map"], "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        self.assertEqual(s["controller.quorum.voters"], "1@kafka:9093")
        self.assertEqual(s["offsets.topic.replication.factor"], "1")
        self.assertEqual(s["auto.create.topics.enable"], "false")
        self.assertEqual(s["num.partitions"], "3")
        self.assertEqual(s["log.retention.hours"], "48")
        self.assertEqual(s["log.dirs"], "/var/lib/kbroker")  # image default
        for k in s:  # JVM settings, cluster id and non-KAFKA_ variables are not config
            self.assertNotRegex(k, r"heap|log4j|cluster|foo")
        self.assertIn("KAFKA_HEAP_OPTS is a JVM/image setting", log)
        self.assertIn("process.roles is a ZooKeeper/KRaft setting", log)
        self.assertIn("cluster id MkU3OEVBNTcwNTJENDM2Qk", log)
        self.assertIn("health address 127.0.0.1:9092", log)

    def test_confluent_zookeeper_style(self):
        argv, log = dry_run({
            "KAFKA_BROKER_ID": "1",
            "KAFKA_ZOOKEEPER_CONNECT": "zookeeper:2181",
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:29092,PLAINTEXT_HOST://localhost:9092",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
            "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
            "KAFKA_JMX_PORT": "9101",
            "KAFKA_JMX_HOSTNAME": "localhost",
            "KAFKA_CONFLUENT_SUPPORT_METRICS_ENABLE": "false",
        })
        _, s = sets_of(argv)
        self.assertEqual(s["broker.id"], "1")
        self.assertEqual(s["zookeeper.connect"], "zookeeper:2181")
        # No KAFKA_LISTENERS: derived from the advertised ones on all interfaces (Apache image rule).
        self.assertEqual(s["listeners"], "PLAINTEXT://0.0.0.0:29092,PLAINTEXT_HOST://0.0.0.0:9092")
        self.assertEqual(s["inter.broker.listener.name"], "PLAINTEXT")
        self.assertEqual(s["default.replication.factor"], "1")
        self.assertEqual(s["log.dirs"], "/var/lib/kafka/data")
        self.assertEqual(s["confluent.support.metrics.enable"], "false")  # the broker logs it as unknown
        self.assertNotIn("jmx.port", s)
        self.assertIn("zookeeper.connect is a ZooKeeper/KRaft setting", log)
        self.assertIn("health address 127.0.0.1:29092", log)

    def test_bitnami_style(self):
        argv, log = dry_run({
            "KAFKA_CFG_NODE_ID": "0",
            "KAFKA_CFG_PROCESS_ROLES": "controller,broker",
            "KAFKA_CFG_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_CFG_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
            "KAFKA_CFG_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CFG_CONTROLLER_QUORUM_VOTERS": "0@kafka:9093",
            "KAFKA_CFG_LOG_DIRS": "/bitnami/kafka/data",
            "KAFKA_CFG_LISTENER_NAME_SASL_SSL_PLAIN_SASL_JAAS_CONFIG": "x",
            "KAFKA_KRAFT_CLUSTER_ID": "abcdefghijklmnopqrstuv",
            "KAFKA_ENABLE_KRAFT": "yes",
            "KAFKA_CLIENT_USERS": "user",
            "ALLOW_PLAINTEXT_LISTENER": "yes",
        })
        _, s = sets_of(argv)
        self.assertEqual(s["node.id"], "0")
        self.assertEqual(s["listeners"], "PLAINTEXT://:9092,CONTROLLER://:9093")
        self.assertEqual(s["controller.quorum.voters"], "0@kafka:9093")
        self.assertEqual(s["log.dirs"], "/bitnami/kafka/data")
        # Bitnami's exception list keeps the protocol names whole.
        self.assertEqual(s["listener.name.sasl_ssl.plain.sasl.jaas.config"], "x")
        self.assertNotIn("enable.kraft", s)
        self.assertNotIn("client.users", s)
        self.assertNotIn("allow.plaintext.listener", s)
        self.assertIn("cluster id abcdefghijklmnopqrstuv", log)

    def test_generic_rule_precedence_and_command_args(self):
        argv, log = dry_run({
            "KAFKA_A___B__C_D": "1",          # Apache rule: ___ -> '-', __ -> '_', _ -> '.'
            "KAFKA_NUM_PARTITIONS": "2",
            "KAFKA_CFG_NUM_PARTITIONS": "4",  # Bitnami style wins over Apache style
            "KAFKA_MESSAGE_MAX_BYTES": "",    # empty: ignored
            "KB_SHARDS": "3",
        }, args=["kbroker", "--set", "num.partitions=5"])
        order, s = sets_of(argv)
        self.assertEqual(s["a-b_c.d"], "1")
        self.assertEqual([v for k, v in order if k == "num.partitions"], ["2", "4", "5"])
        self.assertEqual(argv[-2:], ["--set", "num.partitions=5"])  # command args come last: they win
        self.assertEqual(s["shards"], "3")
        self.assertNotIn("message.max.bytes", s)
        self.assertIn("KAFKA_MESSAGE_MAX_BYTES is empty", log)
        self.assertEqual(s["listeners"], "PLAINTEXT://:9092")

    def test_security_variables(self):
        """Confluent/Apache: KAFKA_SSL_*_FILENAME and *_CREDENTIALS (files in the secrets dir), the generic rule
        for KAFKA_SSL_* / KAFKA_SASL_* / KAFKA_LISTENER_NAME_*; Bitnami: KAFKA_CLIENT_USERS/PASSWORDS. Secrets are
        never in the log."""
        secrets = tempfile.mkdtemp(prefix="kb-secrets-")
        self.addCleanup(shutil.rmtree, secrets, True)
        for name, value in (("ks_creds", "ks-pass-1\n"), ("key_creds", "key-pass-2"), ("ts_creds", "ts-pass-3\n")):
            with open(os.path.join(secrets, name), "w") as f:
                f.write(value)
        jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-pass-4";')
        argv, log = dry_run({
            "KB_SECRETS_DIR": secrets,
            "KAFKA_LISTENERS": "SASL_SSL://:9094,SSL://:9093,SASL_PLAINTEXT://:9095",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "KAFKA_SSL_KEYSTORE_FILENAME": "kafka.keystore.p12",
            "KAFKA_SSL_KEYSTORE_TYPE": "PKCS12",
            "KAFKA_SSL_KEYSTORE_CREDENTIALS": "ks_creds",
            "KAFKA_SSL_KEY_CREDENTIALS": "key_creds",
            "KAFKA_SSL_TRUSTSTORE_FILENAME": "kafka.truststore.p12",
            "KAFKA_SSL_TRUSTSTORE_CREDENTIALS": "ts_creds",
            "KAFKA_SSL_TRUSTSTORE_TYPE": "PKCS12",
            "KAFKA_SSL_CLIENT_AUTH": "required",
            "KAFKA_SSL_PRINCIPAL_MAPPING_RULES": "RULE:^CN=(.*?),.*$/$1/,DEFAULT",
            "KAFKA_SASL_ENABLED_MECHANISMS": "PLAIN",
            "KAFKA_LISTENER_NAME_SASL__SSL_PLAIN_SASL_JAAS_CONFIG": jaas,
            "KAFKA_LISTENER_NAME_SSL_SSL_CLIENT_AUTH": "requested",
            "KAFKA_CLIENT_USERS": "alice,bob",
            "KAFKA_CLIENT_PASSWORDS": "alice-pass-5,bob-pass-6",
        })
        _, s = sets_of(argv)
        self.assertEqual(s["listener.security.protocol.map"],
                         "SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT")
        self.assertEqual(s["ssl.keystore.location"], os.path.join(secrets, "kafka.keystore.p12"))
        self.assertEqual(s["ssl.keystore.password"], "ks-pass-1")
        self.assertEqual(s["ssl.key.password"], "key-pass-2")
        self.assertEqual(s["ssl.truststore.location"], os.path.join(secrets, "kafka.truststore.p12"))
        self.assertEqual(s["ssl.truststore.password"], "ts-pass-3")
        self.assertEqual(s["ssl.keystore.type"], "PKCS12")
        self.assertEqual(s["ssl.client.auth"], "required")
        self.assertEqual(s["ssl.principal.mapping.rules"], "RULE:^CN=(.*?),.*$/$1/,DEFAULT")
        self.assertEqual(s["listener.name.sasl_ssl.plain.sasl.jaas.config"], jaas)  # its own line is kept
        self.assertEqual(s["listener.name.ssl.ssl.client.auth"], "requested")
        self.assertEqual(s["listener.name.sasl_plaintext.plain.sasl.jaas.config"],
                         'org.apache.kafka.common.security.plain.PlainLoginModule required '
                         'user_alice="alice-pass-5" user_bob="bob-pass-6";')
        self.assertEqual(s["sasl.enabled.mechanisms"], "PLAIN")
        for k in ("ssl.keystore.filename", "ssl.keystore.credentials", "ssl.key.credentials", "client.users",
                  "client.passwords"):
            self.assertNotIn(k, s)
        for secret in ("ks-pass-1", "key-pass-2", "ts-pass-3", "admin-pass-4", "alice-pass-5", "bob-pass-6"):
            self.assertNotIn(secret, log)
        self.assertIn("ssl.keystore.password=(secret", log)
        # Health: the first listener without TLS.
        self.assertIn("health address 127.0.0.1:9095", log)

    def test_missing_credentials_file_fails(self):
        e = dict(BASE_ENV, KB_ENTRYPOINT_DRY_RUN="1", KB_BROKER_BIN="/opt/kbroker", KB_SECRETS_DIR="/nonexistent",
                 KAFKA_SSL_KEYSTORE_CREDENTIALS="ks_creds")
        p = subprocess.run([ENTRYPOINT], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"KAFKA_SSL_KEYSTORE_CREDENTIALS: cannot read /nonexistent/ks_creds", p.stderr)

    def test_other_command_is_executed(self):
        p = subprocess.run([ENTRYPOINT, "echo", "hello"], env=dict(BASE_ENV, KAFKA_NODE_ID="1"),
                           stdout=subprocess.PIPE, timeout=10)
        self.assertEqual((p.returncode, p.stdout), (0, b"hello\n"))


@kbroker_only(DOCKER_ONLY)
class RealStart(unittest.TestCase):
    """The entrypoint really execs the broker; kcat checks what it serves."""

    def setUp(self):
        if not os.access(BROKER_BIN, os.X_OK):
            self.skipTest("broker binary %s not built" % BROKER_BIN)
        self.tmp = tempfile.mkdtemp(prefix="kb-entry-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.proc = None
        self.addCleanup(self._kill)

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def start(self, env):
        e = dict(BASE_ENV, KB_BROKER_BIN=BROKER_BIN, KB_SHARDS=str(shards_from_env()),
                 KB_HEALTH_FILE=os.path.join(self.tmp, "health"))
        e.update(env)
        self.log_path = os.path.join(self.tmp, "out.log")
        self.proc = subprocess.Popen([ENTRYPOINT], env=e, stdout=open(self.log_path, "wb"),
                                     stderr=subprocess.STDOUT, cwd=self.tmp)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = self.log()
            if "kbroker ready" in text:
                return text
            if self.proc.poll() is not None:
                self.fail("broker exited %s:\n%s" % (self.proc.returncode, text))
            time.sleep(0.05)
        self.fail("broker not ready:\n%s" % self.log())

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)  # exec'ed: the entrypoint's pid is the broker's
        self.assertEqual(self.proc.wait(15), 0, self.log())

    def kcat(self, *args, input=None, timeout=30):
        p = subprocess.run([KCAT] + list(args), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        self.assertEqual(p.returncode, 0, "kcat %s: %s\n%s" % (args, p.stderr.decode(), self.log()))
        return p.stdout.decode()

    def test_kraft_env_starts_and_serves(self):
        port, ctl = free_port(), free_port()
        data = os.path.join(self.tmp, "data")
        text = self.start({
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (port, ctl),
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:%d" % port,
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:%d" % ctl,
            "KAFKA_NUM_PARTITIONS": "3",
            "KAFKA_LOG_DIRS": data,
            "KAFKA_HEAP_OPTS": "-Xmx1G",
            "CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
        })
        self.assertIn("kbroker-entrypoint: exec ", text)  # effective arguments printed first
        self.assertRegex(text, r"listener CONTROLLER is a KRaft controller listener: not opened")
        self.assertRegex(text, r"cluster\.id=MkU3OEVBNTcwNTJENDM2Qk")
        with self.assertRaises(OSError):  # the controller port stays closed
            socket.create_connection(("127.0.0.1", ctl), timeout=2).close()
        topic = uniq("entry")
        self.kcat("-b", "127.0.0.1:%d" % port, "-P", "-t", topic, "-K:", input=b"k1:v1\nk2:v2\n")
        meta = self.kcat("-b", "127.0.0.1:%d" % port, "-L", "-t", topic)
        self.assertIn("broker 1 at 127.0.0.1:%d" % port, meta)
        self.assertIn('with 3 partitions', meta)  # KAFKA_NUM_PARTITIONS applied to auto-creation
        out = self.kcat("-b", "127.0.0.1:%d" % port, "-C", "-t", topic, "-e", "-f", "%k=%s\n")
        self.assertEqual(sorted(out.split()), ["k1=v1", "k2=v2"])
        with open(os.path.join(self.tmp, "health")) as f:
            self.assertEqual(f.read().strip(), "127.0.0.1:%d" % port)
        if os.access(ADMIN_BIN, os.X_OK):  # the image's HEALTHCHECK command
            p = subprocess.run([ADMIN_BIN, "--timeout", "3", "--bootstrap", "127.0.0.1:%d" % port, "ping"],
                               stdout=subprocess.PIPE, timeout=10)
            self.assertEqual(p.returncode, 0)
        self.stop()

    def test_secured_env_starts_and_serves(self):
        """SASL_SSL with a PKCS12 key store given as the Confluent image takes it (file name and credentials
        file in the secrets dir) and Bitnami-style client users; kbroker-admin talks to it over SASL_SSL, a
        wrong password is refused, and no secret reaches the log."""
        from secure import KS_PASS, make_pki
        if not os.access(ADMIN_BIN, os.X_OK):
            self.skipTest("kbroker-admin not built")
        pki = os.path.join(self.tmp, "secrets")
        os.makedirs(pki)
        make_pki(pki)
        with open(os.path.join(pki, "ks_creds"), "w") as f:
            f.write(KS_PASS + "\n")
        port, plain = free_port(), free_port()
        self.start({
            "KB_SECRETS_DIR": pki,
            "KAFKA_LISTENERS": "SASL_SSL://127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d" % (port, plain),
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT",
            "KAFKA_SSL_KEYSTORE_FILENAME": "server.p12",
            "KAFKA_SSL_KEYSTORE_TYPE": "PKCS12",
            "KAFKA_SSL_KEYSTORE_CREDENTIALS": "ks_creds",
            "KAFKA_CLIENT_USERS": "carol",
            "KAFKA_CLIENT_PASSWORDS": "carol-secret-7",
            "KAFKA_LOG_DIRS": os.path.join(self.tmp, "data"),
        })
        sec = ["--security.protocol", "SASL_SSL", "--ssl.ca.location", os.path.join(pki, "ca.pem"),
               "--sasl.mechanisms", "PLAIN", "--sasl.username", "carol"]
        base = [ADMIN_BIN, "--bootstrap", "127.0.0.1:%d" % port, "--timeout", "10"] + sec
        topic = uniq("entry-sec")
        p = subprocess.run(base + ["--sasl.password", "carol-secret-7", "produce", topic], input=b"x\ny\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode() + self.log())
        p = subprocess.run(base + ["--sasl.password", "carol-secret-7", "consume", topic, "--from-beginning",
                                   "--exit-at-end"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stdout.split(), [b"x", b"y"])
        p = subprocess.run(base + ["--sasl.password", "wrong", "topic", "list"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        with open(os.path.join(self.tmp, "health")) as f:  # the HEALTHCHECK pings the PLAINTEXT listener
            self.assertEqual(f.read().strip(), "127.0.0.1:%d" % plain)
        self.stop()
        text = self.log()
        self.assertNotIn("carol-secret-7", text)
        self.assertNotIn(KS_PASS, text)

    def start_compose(self):
        """Starts the kafka service of docker-compose.yml through the entrypoint.

        The compose environment is used as-is, with its three ports mapped to
        free local ones, the service name to loopback and the volume to a temp
        dir. Returns (services, ports).
        """
        try:
            import yaml
        except ImportError:
            self.skipTest("python3-yaml not installed")
        with open(COMPOSE) as f:
            doc = yaml.safe_load(f)
        svc = doc["services"]
        self.assertEqual(set(svc), {"kafka", "producer", "consumer"})
        self.assertTrue(svc["kafka"]["image"].startswith("kbroker"))
        self.assertIn("9092:9092", svc["kafka"]["ports"])
        ports = {p: free_port() for p in ("9092", "29092", "9093")}
        env = {}
        for k, v in svc["kafka"]["environment"].items():
            v = str(v).replace("kafka:", "127.0.0.1:").replace("localhost:", "127.0.0.1:")
            v = re.sub(r":(9092|29092|9093)\b", lambda m: ":%d" % ports[m.group(1)], v)
            env[k] = v
        env["KAFKA_LOG_DIRS"] = os.path.join(self.tmp, "kafka-data")
        self.start(env)
        return svc, ports

    def test_compose_file_stack(self):
        svc, ports = self.start_compose()
        bootstrap = "127.0.0.1:%d" % ports["9092"]
        # The producer service's pipeline, bounded to 5 records.
        self.kcat("-b", bootstrap, "-P", "-t", "demo", "-K:", "-X", "linger.ms=10",
                  input=b"".join(b"key%d:message %d\n" % (i, i) for i in range(1, 6)))
        # The consumer service's exact arguments (a balanced consumer group), bounded by -c.
        args = [a.replace("kafka:9092", bootstrap) for a in svc["consumer"]["command"]]
        out = self.kcat("-c", "5", *args, timeout=45)
        self.assertEqual(len(out.strip().splitlines()), 5, out)
        self.assertRegex(out, r"demo\[\d\]@\d+ key=key1 value=message 1")
        # The host listener accepts connections (what it advertises: see below).
        self.kcat("-b", "127.0.0.1:%d" % ports["29092"], "-L")
        self.stop()

    # Kafka answers Metadata with the advertised address of the listener the
    # request came in on: a host client bootstrapping from PLAINTEXT_HOST must
    # be sent to localhost:29092, not to the containers' kafka:9092.
    def test_compose_host_listener_advertises_itself(self):
        _, ports = self.start_compose()
        meta = self.kcat("-b", "127.0.0.1:%d" % ports["29092"], "-L")
        try:
            self.assertIn("broker 1 at 127.0.0.1:%d" % ports["29092"], meta)
        finally:
            self.stop()


@kbroker_only(DOCKER_ONLY)
class ClusterCompose(unittest.TestCase):
    """docker/docker-compose.cluster.yml's three kafka services through the entrypoint, outside Docker: each
    service's environment as the file has it, its fixed network address (172.28.5.1N) and name (kafka-N) moved to
    127.0.0.N and its ports to free ones, the volume to a temp dir."""

    def setUp(self):
        if not os.access(BROKER_BIN, os.X_OK):
            self.skipTest("broker binary %s not built" % BROKER_BIN)
        try:
            import yaml
        except ImportError:
            self.skipTest("python3-yaml not installed")
        with open(CLUSTER_COMPOSE) as f:
            self.doc = yaml.safe_load(f)
        self.tmp = tempfile.mkdtemp(prefix="kb-entry-cluster-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.procs = {}
        self.addCleanup(self._kill)

    def _kill(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    def services(self):
        svc = self.doc["services"]
        self.assertEqual(set(svc), {"kafka-1", "kafka-2", "kafka-3", "producer", "consumer"})
        return [svc["kafka-%d" % n] for n in (1, 2, 3)]

    def test_services_dry_run_as_one_quorum(self):
        voters = None
        for n, svc in enumerate(self.services(), 1):
            self.assertTrue(svc["image"].startswith("kbroker"))
            env = {k: str(v) for k, v in svc["environment"].items()}
            argv, log = dry_run(env)
            _, s = sets_of(argv)
            self.assertEqual(s["node.id"], str(n))
            self.assertEqual(s["process.roles"], "broker,controller")
            self.assertEqual(s["listeners"], "PLAINTEXT://:9092,CONTROLLER://:9093")
            self.assertEqual(s["advertised.listeners"], "PLAINTEXT://kafka-%d:9092" % n)
            self.assertEqual(s["controller.listener.names"], "CONTROLLER")
            voters = voters or s["controller.quorum.voters"]
            self.assertEqual(s["controller.quorum.voters"], voters)  # one quorum: the same voters everywhere
            self.assertIn("%d@%s:9093" % (n, svc["networks"]["kbroker"]["ipv4_address"]), voters.split(","))
            self.assertIn("metadata quorum of 3 voters", log)
            self.assertNotIn("process.roles is a ZooKeeper/KRaft setting", log)

    def test_three_nodes_form_a_quorum_and_share_topics(self):
        ports = {}
        from ports import free_port as pick
        for name in ("client", "ctl"):  # one number, free on all three addresses
            for _ in range(50):
                p = pick("127.0.0.1")
                try:
                    for h in ("127.0.0.2", "127.0.0.3"):
                        socket.create_server((h, p)).close()
                except OSError:
                    continue
                ports[name] = p
                break
        self.assertEqual(len(ports), 2)
        addr = {}
        for n, svc in enumerate(self.services(), 1):
            addr[svc["networks"]["kbroker"]["ipv4_address"]] = "127.0.0.%d" % n
            addr["kafka-%d" % n] = "127.0.0.%d" % n

        def local(v, n):
            v = str(v).replace("PLAINTEXT://:9092", "PLAINTEXT://127.0.0.%d:9092" % n)
            v = v.replace("CONTROLLER://:9093", "CONTROLLER://127.0.0.%d:9093" % n)
            for a, b in addr.items():
                v = v.replace(a + ":", b + ":")
            return v.replace(":9092", ":%d" % ports["client"]).replace(":9093", ":%d" % ports["ctl"])

        logs = {}
        for n, svc in enumerate(self.services(), 1):
            env = dict(BASE_ENV, KB_BROKER_BIN=BROKER_BIN, KB_SHARDS=str(shards_from_env()),
                       KB_HEALTH_FILE=os.path.join(self.tmp, "health-%d" % n))
            env.update({k: local(v, n) for k, v in svc["environment"].items()})
            env["KAFKA_LOG_DIRS"] = os.path.join(self.tmp, "kafka-%d-data" % n)
            logs[n] = os.path.join(self.tmp, "kafka-%d.log" % n)
            self.procs[n] = subprocess.Popen([ENTRYPOINT], env=env, stdout=open(logs[n], "wb"),
                                             stderr=subprocess.STDOUT, cwd=self.tmp)

        def text(n):
            with open(logs[n], "rb") as f:
                return f.read().decode(errors="replace")

        def all_logs():
            return "\n".join("==== kafka-%d\n%s" % (n, "\n".join(text(n).splitlines()[-30:])) for n in logs)

        def wait(what, cond, timeout=60):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if cond():
                    return
                for n, p in self.procs.items():
                    if p.poll() is not None:
                        self.fail("kafka-%d exited %s:\n%s" % (n, p.returncode, all_logs()))
                time.sleep(0.2)
            self.fail("%s: not within %ds\n%s" % (what, timeout, all_logs()))

        wait("three nodes ready", lambda: all("kbroker ready" in text(n) for n in logs))
        for n in logs:
            self.assertIn("cluster.id=5L6g3nShT-eMCtK--X86sw", text(n))

        def kcat(*args, timeout=30):
            p = subprocess.run([KCAT] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        boot = {n: "127.0.0.%d:%d" % (n, ports["client"]) for n in logs}
        wait("every node sees three brokers",
             lambda: all(kcat("-b", boot[n], "-L", "-m", "5")[1].count(" at 127.0.0.") >= 3 for n in logs))
        # A topic made on node 2 (auto-creation by a producer: forwarded when node 2 does not lead) is on all.
        topic = uniq("cluster-compose")
        p = subprocess.run([KCAT, "-b", boot[2], "-P", "-t", topic, "-K:", "-X", "linger.ms=10"],
                           input=b"".join(b"key%d:message %d\n" % (i, i) for i in range(1, 7)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode() + all_logs())
        wait("the topic on every node",
             lambda: all("topic \"%s\" with 3 partitions" % topic in kcat("-b", boot[n], "-L", "-t", topic)[1]
                         for n in logs))
        leaders = set()
        for line in kcat("-b", boot[1], "-L", "-t", topic)[1].splitlines():
            if "leader" in line:
                leaders.add(line.split("leader")[1].split(",")[0].strip())
        self.assertEqual(len(leaders), 3, "partitions not spread over the nodes: %r" % leaders)
        # The consumer service's arguments (a consumer group), on the topic, through all three nodes.
        args = [a.replace("kafka-1:9092,kafka-2:9092,kafka-3:9092", ",".join(boot.values()))
                for a in self.doc["services"]["consumer"]["command"]]
        args[-1] = topic
        rc, out, err = kcat("-c", "6", *args, timeout=60)
        self.assertEqual(rc, 0, err + all_logs())
        self.assertEqual(sorted(x.split(" value=")[1] for x in out.strip().splitlines()),
                         sorted("message %d" % i for i in range(1, 7)))
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for n, p in self.procs.items():
            self.assertEqual(p.wait(20), 0, all_logs())


@kbroker_only(DOCKER_ONLY)
class StaticChecks(unittest.TestCase):
    def test_dockerfile_structure(self):
        with open(DOCKERFILE) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^FROM debian:bookworm AS build$")
        self.assertRegex(text, r"(?m)^FROM debian:bookworm-slim$")
        self.assertIn("-DKB_TOOLS=ON", text)
        for lib in ("libevent-2.1-7", "libssl3", "zlib1g", "libsnappy1v5", "liblz4-1", "libzstd1", "liburing2",
                    "librdkafka1"):
            self.assertIn(lib, text)
        self.assertRegex(text, r"(?m)^USER kbroker$")
        self.assertRegex(text, r"(?m)^EXPOSE 9092$")
        self.assertRegex(text, r"(?m)^VOLUME \[\"/var/lib/kbroker\"\]$")
        self.assertRegex(text, r"(?m)^HEALTHCHECK .*\n.*kbroker-admin .*ping")
        self.assertRegex(text, r"(?m)^ENTRYPOINT \[\"kbroker-entrypoint\"\]$")

    def test_entrypoint_is_valid_bash(self):
        p = subprocess.run(["bash", "-n", ENTRYPOINT], stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr.decode())


if __name__ == "__main__":
    unittest.main()

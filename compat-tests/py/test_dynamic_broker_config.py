"""Dynamic broker configs kept across a restart (issue 15): a TLS listener's key store location set through
IncrementalAlterConfigs on the broker resource is served at once, shown by DescribeConfigs as
DYNAMIC_BROKER_CONFIG with the static value among its synonyms, still served and shown after a restart, and a
DELETE (or an AlterConfigs that no longer lists it) brings the static key store back, also across a restart.
The cluster-default resource ("") cannot take these per-broker keys; a refused or validate_only change is not
kept. Same test against Apache Kafka (restarted on its own data dir) and kbroker."""

import hashlib
import os
import shutil
import ssl
import struct
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from secure import HOST, SecureTarget, make_pki, openssl, restart_target  # noqa: E402
from wire import kstr, read_frame, request  # noqa: E402

KEY = "listener.name.ssl.ssl.keystore.location"
DYNAMIC_BROKER_CONFIG, STATIC_BROKER_CONFIG = 2, 4
INVALID_REQUEST = 42
SET, DELETE = 0, 1


def _rpc(addr, api, version, body):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(request(api, version, 11, body))
        s.settimeout(60)
        r = read_frame(s)
    assert struct.unpack(">i", r[:4])[0] == 11
    return r, 4


def _nstr(r, off):
    n = struct.unpack(">h", r[off:off + 2])[0]
    off += 2
    if n < 0:
        return None, off
    return r[off:off + n].decode(), off + n


def incremental_alter(addr, resource, ops, validate_only=False):
    """IncrementalAlterConfigs v0 of one BROKER resource: ops = [(name, op, value or None)]. (error, message)."""
    body = struct.pack(">i", 1) + struct.pack(">b", 4) + kstr(resource) + struct.pack(">i", len(ops))
    for name, op, value in ops:
        body += kstr(name) + struct.pack(">b", op) + (kstr(value) if value is not None else struct.pack(">h", -1))
    body += struct.pack(">b", 1 if validate_only else 0)
    r, off = _rpc(addr, 44, 0, body)
    off += 4  # throttle
    assert struct.unpack(">i", r[off:off + 4])[0] == 1
    err = struct.unpack(">h", r[off + 4:off + 6])[0]
    msg, _ = _nstr(r, off + 6)
    return err, msg


def alter_legacy(addr, resource, configs):
    """AlterConfigs v0 (replaces every dynamic config of the resource) of one BROKER resource: configs =
    [(name, value)]. (error, message)."""
    body = struct.pack(">i", 1) + struct.pack(">b", 4) + kstr(resource) + struct.pack(">i", len(configs))
    body += b"".join(kstr(k) + kstr(v) for k, v in configs) + struct.pack(">b", 0)
    r, off = _rpc(addr, 33, 0, body)
    off += 4
    assert struct.unpack(">i", r[off:off + 4])[0] == 1
    err = struct.unpack(">h", r[off + 4:off + 6])[0]
    msg, _ = _nstr(r, off + 6)
    return err, msg


def describe(addr, resource, keys, synonyms=True):
    """DescribeConfigs v1 of a BROKER resource: (error, {name: (value, source, read_only, [(name, value, src)])})."""
    body = struct.pack(">i", 1) + struct.pack(">b", 4) + kstr(resource) + struct.pack(">i", len(keys))
    body += b"".join(kstr(k) for k in keys) + struct.pack(">b", 1 if synonyms else 0)
    r, off = _rpc(addr, 32, 1, body)
    off += 4
    assert struct.unpack(">i", r[off:off + 4])[0] == 1
    off += 4
    err = struct.unpack(">h", r[off:off + 2])[0]
    _, off = _nstr(r, off + 2)
    off += 1  # resource type
    _, off = _nstr(r, off)
    n = struct.unpack(">i", r[off:off + 4])[0]
    off += 4
    out = {}
    for _ in range(max(n, 0)):
        name, off = _nstr(r, off)
        value, off = _nstr(r, off)
        read_only, source, _sensitive = struct.unpack(">?b?", r[off:off + 3])
        off += 3
        ns = struct.unpack(">i", r[off:off + 4])[0]
        off += 4
        syn = []
        for _ in range(max(ns, 0)):
            sn, off = _nstr(r, off)
            sv, off = _nstr(r, off)
            syn.append((sn, sv, struct.unpack(">b", r[off:off + 1])[0]))
            off += 1
        out[name] = (value, source, read_only, syn)
    return err, out


def new_keystore(pki, name):
    """Another certificate for the same server (same DN and SubjectAltName, as Kafka requires)."""
    with open(os.path.join(pki, name + ".ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj",
            "/CN=localhost", cwd=pki)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=pki)
    path = os.path.join(pki, name + "-keystore.pem")
    with open(path, "w") as out:
        for part in (name + ".key", name + ".crt"):
            with open(os.path.join(pki, part)) as f:
                out.write(f.read())
    with open(os.path.join(pki, name + ".crt")) as f:
        return path, hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


class DynamicKeystoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="kb-pki-dyn-")
        cls.addClassCleanup(shutil.rmtree, cls.pki, True)
        make_pki(cls.pki)
        cls.renewed, cls.renewed_fp = new_keystore(cls.pki, "renewed")

    def fingerprint(self, port):
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        with socket.create_connection((HOST, port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                return hashlib.sha256(s.getpeercert(True)).hexdigest()

    def wait_fingerprint(self, port, want, timeout=20):
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.fingerprint(port)
            if got == want:
                break
            time.sleep(0.1)
        return got

    def described(self, t, key=KEY, want=None, timeout=20):
        """The key's (value, source, read_only, synonyms); with want, polled until it is that (Kafka applies a
        change to what it describes a moment after it answers)."""
        deadline = time.monotonic() + timeout
        while True:
            err, cfg = describe(t.addr("PLAINTEXT"), "1", [key])
            self.assertEqual(err, 0)
            self.assertIn(key, cfg)
            if want is None or cfg[key] == want or time.monotonic() > deadline:
                return cfg[key]
            time.sleep(0.2)

    def test_keystore_location_kept_across_restart_and_deleted(self):
        d = tempfile.mkdtemp(prefix="kb-ks-", dir=self.pki)
        static = os.path.join(d, "keystore.pem")
        shutil.copy(os.path.join(self.pki, "server-keystore.pem"), static)
        t = SecureTarget(self.pki, extra={KEY: static})
        self.addCleanup(t.stop)
        t.start()
        admin, port = t.addr("PLAINTEXT"), t.ports["SSL"]
        original = self.fingerprint(port)
        self.assertNotEqual(original, self.renewed_fp)
        # Listener-prefixed keys are read-only to Kafka's describe (only unprefixed names are listed as dynamic).
        as_static = (static, STATIC_BROKER_CONFIG, True, [(KEY, static, STATIC_BROKER_CONFIG)])
        self.assertEqual(self.described(t), as_static)

        # A per-broker key at the cluster-default resource: refused, nothing changes.
        err, msg = incremental_alter(admin, "", [(KEY, SET, self.renewed)])
        self.assertEqual((err, msg), (INVALID_REQUEST, "Cannot update these configs at default cluster level, "
                                                       "broker id must be specified: [%s]" % KEY))
        # Deleting a value that was never set dynamically: nothing to do, at either level.
        for resource in ("", "1"):
            err, msg = incremental_alter(admin, resource, [(KEY, DELETE, None)])
            self.assertEqual((err, msg), (0, None))
        self.assertEqual(self.fingerprint(port), original)
        self.assertNotIn(KEY, describe(admin, "", [])[1])
        # A store that cannot be used is refused, validate_only applies nothing: neither is kept.
        garbage = os.path.join(d, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a key store\n")
        err, msg = incremental_alter(admin, "1", [(KEY, SET, garbage)])
        self.assertEqual(err, INVALID_REQUEST, msg)
        err, msg = incremental_alter(admin, "1", [(KEY, SET, self.renewed)], validate_only=True)
        self.assertEqual((err, msg), (0, None))
        time.sleep(1)
        self.assertEqual(self.described(t), as_static)
        self.assertEqual(self.fingerprint(port), original)
        restart_target(t)
        self.assertEqual(self.fingerprint(port), original)
        self.assertEqual(self.described(t), as_static)

        # Per broker: served at once, described as dynamic over the static value.
        err, msg = incremental_alter(admin, "1", [(KEY, SET, self.renewed)])
        self.assertEqual((err, msg), (0, None))
        self.assertEqual(self.wait_fingerprint(port, self.renewed_fp), self.renewed_fp)
        dynamic = (self.renewed, DYNAMIC_BROKER_CONFIG, True,
                   [(KEY, self.renewed, DYNAMIC_BROKER_CONFIG), (KEY, static, STATIC_BROKER_CONFIG)])
        self.assertEqual(self.described(t, want=dynamic), dynamic)
        err, cfg = describe(admin, "1", [KEY], synonyms=False)
        self.assertEqual(cfg[KEY], dynamic[:3] + ([],))
        # Not a cluster default (which lists only what was set dynamically there).
        err, cfg = describe(admin, "", [])
        self.assertEqual(err, 0)
        self.assertNotIn(KEY, cfg)
        self.assertTrue(all(e[1] == 3 for e in cfg.values()), cfg)

        # A restart keeps it: the renewed certificate is served from the start; other TLS listeners keep theirs.
        restart_target(t)
        self.assertEqual(self.fingerprint(port), self.renewed_fp)
        self.assertEqual(self.described(t), dynamic)
        self.assertEqual(self.fingerprint(t.ports["TLS13"]), original)

        # DELETE: the static key store is back, also after a restart.
        err, msg = incremental_alter(admin, "1", [(KEY, DELETE, None)])
        self.assertEqual((err, msg), (0, None))
        self.assertEqual(self.wait_fingerprint(port, original), original)
        self.assertEqual(self.described(t, want=as_static), as_static)
        restart_target(t)
        self.assertEqual(self.fingerprint(port), original)
        self.assertEqual(self.described(t), as_static)

        # AlterConfigs (legacy) replaces the resource's dynamic configs: the listed key is set, and a list
        # without it deletes it again; the cluster default still refuses it.
        err, msg = alter_legacy(admin, "", [(KEY, self.renewed)])
        self.assertEqual((err, msg), (INVALID_REQUEST, "Cannot update these configs at default cluster level, "
                                                       "broker id must be specified: [%s]" % KEY))
        self.assertEqual(alter_legacy(admin, "1", [(KEY, self.renewed)]), (0, None))
        self.assertEqual(self.wait_fingerprint(port, self.renewed_fp), self.renewed_fp)
        self.assertEqual(self.described(t, want=dynamic), dynamic)
        self.assertEqual(alter_legacy(admin, "1", []), (0, None))
        self.assertEqual(self.wait_fingerprint(port, original), original)
        self.assertEqual(self.described(t, want=as_static), as_static)


if __name__ == "__main__":
    unittest.main()

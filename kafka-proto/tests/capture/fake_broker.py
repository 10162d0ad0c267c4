#!/usr/bin/python3
"""Minimal fake Kafka broker that records every request frame it receives.

Test tooling only (python3 standard library, no product code).  It listens on
127.0.0.1:<port>, writes each request frame (the bytes after the 4-byte size
prefix) to OUT_DIR/<client>-<seq>-<ApiName>-v<version>.bin, appends one JSON
line per frame to OUT_DIR/index.jsonl, logs a summary line to stderr, and
answers just enough for real clients to reach Produce:

  ApiVersions   v0-v3 (higher -> UNSUPPORTED_VERSION in a v0 body, like Kafka;
                always response header v0)
  Metadata      v0-v12 (one broker = this listener; every topic asked for is
                auto-created with 1 partition, leader 0; "cap" always exists)
  Produce       v3-v9 (success, base offsets counted per partition; no answer
                for acks=0)
  InitProducerId v0-v4 (producer id 1000, epoch 0)
  FindCoordinator v0-v3 (this broker)

Anything else is logged, recorded and answered by closing the connection.

<client> is the request header's client id with characters outside
[A-Za-z0-9._-] replaced by '_' (so give every client run its own client id);
<seq> counts frames per client id over all its connections.

Usage: fake_broker.py [--out DIR] [--port-file FILE] [--apiversions-max N]
                      [--kafka4-ranges] PORT                  (PORT 0 = ephemeral)
  --apiversions-max N  answer ApiVersions up to vN only (to watch client fallback)
  --kafka4-ranges      advertise Kafka 4.0 minimum versions (Produce 3+, Fetch 4+)
"""

import argparse
import hashlib
import json
import os
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

HOST = "127.0.0.1"
NODE_ID = 0
CLUSTER_ID = "fake-capture-cluster"

# api key -> (name, first flexible version or None)
APIS = {
    0: ("Produce", 9),
    1: ("Fetch", 12),
    2: ("ListOffsets", 6),
    3: ("Metadata", 9),
    8: ("OffsetCommit", 8),
    9: ("OffsetFetch", 6),
    10: ("FindCoordinator", 3),
    11: ("JoinGroup", 6),
    12: ("Heartbeat", 4),
    13: ("LeaveGroup", 4),
    14: ("SyncGroup", 4),
    15: ("DescribeGroups", 5),
    16: ("ListGroups", 3),
    17: ("SaslHandshake", None),
    18: ("ApiVersions", 3),
    19: ("CreateTopics", 5),
    22: ("InitProducerId", 2),
    29: ("DescribeAcls", 2),
    32: ("DescribeConfigs", 4),
    36: ("SaslAuthenticate", 2),
    60: ("DescribeCluster", 0),
}

# What this fake broker advertises in ApiVersions (key, min, max): Kafka 3.x-like
# ranges.  The minimum versions matter: librdkafka <= 2.x derives its "broker
# supports gzip/snappy/lz4" features from Produce/Fetch ranges that include the
# old versions 0-2, and silently sends gzip/snappy/lz4 batches UNCOMPRESSED when
# the broker advertises Kafka-4-style minimums (Produce 3+, Fetch 4+); see
# confluentinc/librdkafka#4956.  Use --kafka4-ranges to reproduce that.
ADVERTISED = [
    (0, 0, 9),     # Produce (served: v3-v9)
    (1, 0, 12),    # Fetch (advertised only; not served)
    (2, 0, 7),     # ListOffsets (advertised only)
    (3, 0, 12),    # Metadata
    (8, 0, 8),     # OffsetCommit (advertised only)
    (9, 0, 8),     # OffsetFetch (advertised only)
    (10, 0, 3),    # FindCoordinator
    (18, 0, 3),    # ApiVersions
    (22, 0, 4),    # InitProducerId
]
KAFKA4_MIN = {0: 3, 1: 4, 2: 1, 8: 2, 9: 1}
APIVERSIONS_MAX = 3

UNSUPPORTED_VERSION = 35


def api_name(key):
    return APIS.get(key, ("Api%d" % key, None))[0]


def is_flexible(key, version):
    flex = APIS.get(key, (None, None))[1]
    return flex is not None and version >= flex


# ---------------------------------------------------------------- encoding
def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Enc:
    """Encoder for one (flexible or not) message version."""

    def __init__(self, flexible):
        self.flex = flexible

    def string(self, s):
        if s is None:
            return uvarint(0) if self.flex else i16(-1)
        b = s.encode()
        return (uvarint(len(b) + 1) if self.flex else i16(len(b))) + b

    def array(self, items):
        """items: list of already-encoded elements, or None for null."""
        if items is None:
            return uvarint(0) if self.flex else i32(-1)
        return (uvarint(len(items) + 1) if self.flex else i32(len(items))) + b"".join(items)

    def tags(self):
        return uvarint(0) if self.flex else b""


# ---------------------------------------------------------------- decoding
class Dec:
    def __init__(self, data, pos=0):
        self.d = data
        self.p = pos

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError("short frame")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = 0
        v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def string(self, flex):
        if flex:
            n = self.uvarint() - 1
        else:
            n = self.i16()
        if n < 0:
            return None
        return self.take(n).decode("utf-8", "replace")

    def bytes_(self, flex):
        n = (self.uvarint() - 1) if flex else self.i32()
        if n < 0:
            return None
        return self.take(n)

    def array_len(self, flex):
        return (self.uvarint() - 1) if flex else self.i32()

    def skip_tags(self, flex):
        if not flex:
            return
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def parse_request_header(frame):
    d = Dec(frame)
    key = d.i16()
    version = d.i16()
    corr = d.i32()
    client_id = d.string(False)  # header client id is never compact
    # Header v2 exactly when the version is flexible (ApiVersions: v3 and later,
    # including versions newer than we answer, as Kafka does).
    flex = is_flexible(key, version)
    d.skip_tags(flex)
    return key, version, corr, client_id, flex, d


# ---------------------------------------------------------------- state
class State:
    def __init__(self, out_dir, port):
        self.out_dir = out_dir
        self.port = port
        self.lock = threading.Lock()
        self.seq = {}
        self.topics = {"cap": 1}
        self.offsets = {}
        self.conn_counter = 0
        self.index = open(os.path.join(out_dir, "index.jsonl"), "a", buffering=1)

    def next_conn(self):
        with self.lock:
            self.conn_counter += 1
            return self.conn_counter

    def record(self, frame, key, version, corr, client_id, conn, peer):
        label = re.sub(r"[^A-Za-z0-9._-]", "_", client_id) if client_id else "noclientid"
        with self.lock:
            seq = self.seq.get(label, 0) + 1
            self.seq[label] = seq
            fname = "%s-%03d-%s-v%d.bin" % (label, seq, api_name(key), version)
            with open(os.path.join(self.out_dir, fname), "wb") as f:
                f.write(frame)
            entry = {
                "file": fname, "client_label": label, "seq": seq, "conn": conn,
                "peer_port": peer[1], "time": time.time(), "size": len(frame),
                "api_key": key, "api_name": api_name(key), "api_version": version,
                "correlation_id": corr, "client_id": client_id,
                "sha256": hashlib.sha256(frame).hexdigest(),
            }
            self.index.write(json.dumps(entry) + "\n")
        return fname

    def ensure_topic(self, name):
        with self.lock:
            if name not in self.topics:
                self.topics[name] = 1
                log("auto-created topic %r" % name)

    def append(self, topic, part, nrecords):
        with self.lock:
            base = self.offsets.get((topic, part), 0)
            self.offsets[(topic, part)] = base + nrecords
            return base


def log(msg):
    sys.stderr.write("[fake_broker %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def topic_uuid(name):
    return hashlib.md5(("topic:" + name).encode()).digest()


# ---------------------------------------------------------------- handlers
def h_api_versions(st, version, d):
    if version > APIVERSIONS_MAX:
        # v0 body with UNSUPPORTED_VERSION and our ranges; header v0.
        e = Enc(False)
        body = i16(UNSUPPORTED_VERSION) + e.array([i16(k) + i16(lo) + i16(hi) for k, lo, hi in ADVERTISED])
        return body, "UNSUPPORTED_VERSION (asked v%d, max v%d)" % (version, APIVERSIONS_MAX)
    flex = version >= 3
    info = ""
    if flex:
        sw_name = d.string(True)
        sw_ver = d.string(True)
        d.skip_tags(True)
        info = "software=%s/%s" % (sw_name, sw_ver)
    e = Enc(flex)
    body = i16(0)
    body += e.array([i16(k) + i16(lo) + i16(hi) + e.tags() for k, lo, hi in ADVERTISED])
    if version >= 1:
        body += i32(0)  # throttle
    body += e.tags()
    return body, info


def h_metadata(st, version, d):
    flex = version >= 9
    n = d.array_len(flex)
    asked = None
    if n >= 0:
        asked = []
        for _ in range(n):
            if version >= 10:
                d.take(16)
            name = d.string(flex)
            d.skip_tags(flex)
            if name is not None:
                asked.append(name)
    if asked is None or (version == 0 and n == 0):
        names = sorted(st.topics)
    else:
        for t in asked:
            st.ensure_topic(t)
        names = asked
    e = Enc(flex)
    body = b""
    if version >= 3:
        body += i32(0)  # throttle
    broker = i32(NODE_ID) + e.string(HOST) + i32(st.port)
    if version >= 1:
        broker += e.string(None)  # rack
    body += e.array([broker + e.tags()])
    if version >= 2:
        body += e.string(CLUSTER_ID)
    if version >= 1:
        body += i32(NODE_ID)  # controller
    topics = []
    for name in names:
        t = i16(0) + e.string(name)
        if version >= 10:
            t += topic_uuid(name)
        if version >= 1:
            t += boolean(False)
        parts = []
        for p in range(st.topics[name]):
            pe = i16(0) + i32(p) + i32(NODE_ID)
            if version >= 7:
                pe += i32(0)  # leader epoch
            pe += e.array([i32(NODE_ID)]) + e.array([i32(NODE_ID)])
            if version >= 5:
                pe += e.array([])
            parts.append(pe + e.tags())
        t += e.array(parts)
        if version >= 8:
            t += i32(-2147483648)
        topics.append(t + e.tags())
    body += e.array(topics)
    if 8 <= version <= 10:
        body += i32(-2147483648)
    body += e.tags()
    return body, "topics asked=%s answered=%s" % (asked, names)


def count_records(records):
    """Sum of (lastOffsetDelta + 1) over the record batches (magic 2)."""
    total = 0
    pos = 0
    while records is not None and pos + 61 <= len(records):
        batch_len = struct.unpack(">i", records[pos + 8:pos + 12])[0]
        last_delta = struct.unpack(">i", records[pos + 23:pos + 27])[0]
        total += last_delta + 1
        pos += 12 + batch_len
    return total


def h_produce(st, version, d):
    flex = version >= 9
    txn = d.string(flex)
    acks = d.i16()
    timeout = d.i32()
    results = []
    for _ in range(d.array_len(flex)):
        name = d.string(flex)
        parts = []
        for _ in range(d.array_len(flex)):
            idx = d.i32()
            recs = d.bytes_(flex)
            d.skip_tags(flex)
            n = count_records(recs)
            base = st.append(name, idx, n)
            parts.append((idx, base, n))
        d.skip_tags(flex)
        results.append((name, parts))
    d.skip_tags(flex)
    info = "txn=%s acks=%d timeout=%d %s" % (txn, acks, timeout,
                                             ["%s/%d@%d(+%d)" % (t, i, b, n) for t, ps in results for i, b, n in ps])
    if acks == 0:
        return None, info + " (acks=0: no response)"
    e = Enc(flex)
    topics = []
    for name, parts in results:
        pr = []
        for idx, base, n in parts:
            p = i32(idx) + i16(0) + i64(base)
            if version >= 2:
                p += i64(-1)  # log append time
            if version >= 5:
                p += i64(0)  # log start offset
            if version >= 8:
                p += e.array([]) + e.string(None)
            pr.append(p + e.tags())
        topics.append(e.string(name) + e.array(pr) + e.tags())
    body = e.array(topics)
    if version >= 1:
        body += i32(0)
    body += e.tags()
    return body, info


def h_init_producer_id(st, version, d):
    flex = version >= 2
    txn = d.string(flex)
    txn_timeout = d.i32()
    info = "txn=%s txn_timeout=%d" % (txn, txn_timeout)
    if version >= 3:
        info += " pid=%d epoch=%d" % (d.i64(), d.i16())
    e = Enc(flex)
    body = i32(0) + i16(0) + i64(1000) + i16(0) + e.tags()
    return body, info


def h_find_coordinator(st, version, d):
    flex = version >= 3
    e = Enc(flex)
    key = d.string(flex)
    body = b""
    if version >= 1:
        body += i32(0)
    body += i16(0)
    if version >= 1:
        body += e.string(None)
    body += i32(NODE_ID) + e.string(HOST) + i32(st.port) + e.tags()
    return body, "key=%s" % key


HANDLERS = {
    18: h_api_versions,
    3: h_metadata,
    0: h_produce,
    22: h_init_producer_id,
    10: h_find_coordinator,
}
SERVED = {18: (0, 99), 3: (0, 12), 0: (3, 9), 22: (0, 4), 10: (0, 3)}


# ---------------------------------------------------------------- server
class Handler(socketserver.BaseRequestHandler):
    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def handle(self):
        st = self.server.state
        conn = st.next_conn()
        peer = self.client_address
        log("conn %d from %s:%d" % (conn, peer[0], peer[1]))
        try:
            while True:
                hdr = self.recv_exact(4)
                if hdr is None:
                    break
                size = struct.unpack(">i", hdr)[0]
                if size < 0 or size > 100 * 1024 * 1024:
                    log("conn %d: bad frame size %d, closing" % (conn, size))
                    break
                frame = self.recv_exact(size)
                if frame is None:
                    log("conn %d: EOF inside a frame" % conn)
                    break
                key, version, corr, client_id, flex, d = parse_request_header(frame)
                fname = st.record(frame, key, version, corr, client_id, conn, peer)
                served = SERVED.get(key)
                if served is None or not served[0] <= version <= served[1]:
                    log("conn %d: %s v%d corr=%d client=%r size=%d -> %s: UNHANDLED, closing" %
                        (conn, api_name(key), version, corr, client_id, size, fname))
                    break
                body, info = HANDLERS[key](st, version, d)
                log("conn %d: %s v%d corr=%d client=%r size=%d -> %s %s" %
                    (conn, api_name(key), version, corr, client_id, size, fname, info))
                if body is None:
                    continue
                # ApiVersions always answers with response header v0.
                rflex = flex and key != 18
                resp = i32(corr) + (uvarint(0) if rflex else b"") + body
                self.request.sendall(i32(len(resp)) + resp)
        except (ConnectionError, ValueError, struct.error) as ex:
            log("conn %d: %r" % (conn, ex))
        log("conn %d closed" % conn)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int, help="TCP port on 127.0.0.1 (0 = ephemeral)")
    ap.add_argument("--out", default="frames", help="directory for the recorded frames (default ./frames)")
    ap.add_argument("--port-file", help="write the port actually bound to this file once listening")
    ap.add_argument("--kafka4-ranges", action="store_true",
                    help="advertise Kafka 4.0 minimum versions (Produce 3+, Fetch 4+, ...)")
    ap.add_argument("--apiversions-max", type=int, default=3, choices=range(0, 4),
                    help="highest ApiVersions version answered (default 3); higher -> UNSUPPORTED_VERSION")
    args = ap.parse_args()
    global APIVERSIONS_MAX
    APIVERSIONS_MAX = args.apiversions_max
    ADVERTISED[:] = [(k, lo, APIVERSIONS_MAX if k == 18 else hi) for k, lo, hi in ADVERTISED]
    if args.kafka4_ranges:
        ADVERTISED[:] = [(k, max(lo, KAFKA4_MIN.get(k, lo)), hi) for k, lo, hi in ADVERTISED]
    os.makedirs(args.out, exist_ok=True)
    srv = Server((HOST, args.port), Handler)
    port = srv.server_address[1]
    srv.state = State(args.out, port)
    with open(os.path.join(args.out, "broker.json"), "w") as f:
        json.dump({"host": HOST, "port": port, "node_id": NODE_ID, "cluster_id": CLUSTER_ID,
                   "api_versions_max": APIVERSIONS_MAX,
                   "advertised": [{"api_key": k, "api_name": api_name(k), "min": lo, "max": hi}
                                  for k, lo, hi in ADVERTISED]}, f, indent=1)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log("listening on %s:%d, recording to %s" % (HOST, port, args.out))
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        log("stopping")
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()

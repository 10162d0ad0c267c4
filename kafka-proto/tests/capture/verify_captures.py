#!/usr/bin/python3
"""Independent sanity check of tests/data/captures against MANIFEST.json.

Standard library only (plus the `lz4` and `zstd` command-line tools to inflate
those codecs).  Shares no code with fake_broker.py or build_manifest.py: it
re-parses every frame from scratch and checks that
  - the file length equals the frame size the broker saw, and the sha256 matches;
  - request header api key / version / correlation id / client id match the manifest
    (header v2 with a tagged-field section for flexible versions);
  - the body parses completely (no trailing bytes) for ApiVersions, Metadata,
    InitProducerId and Produce;
  - Produce: transactional id, acks, timeout, topic, partition match the manifest;
    each record batch is magic 2 with a correct CRC-32C and batchLength, the
    codec bits match, producer id/epoch/base sequence are as expected, and the
    decoded records (key, value, headers, timestamps) equal the manifest's.
Usage: verify_captures.py [CAPTURES_DIR]   (default ../data/captures)
"""
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys

FIRST_FLEXIBLE = {0: 9, 3: 9, 18: 3, 22: 2}
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

# ------------------------------------------------------------------ CRC-32C
_T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


# ------------------------------------------------------------------ reader
class R:
    def __init__(self, b):
        self.b, self.p = b, 0

    def n(self, k):
        if self.p + k > len(self.b):
            raise ValueError("read past end (%d+%d > %d)" % (self.p, k, len(self.b)))
        v = self.b[self.p:self.p + k]
        self.p += k
        return v

    def s8(self):
        return struct.unpack(">b", self.n(1))[0]

    def s16(self):
        return struct.unpack(">h", self.n(2))[0]

    def s32(self):
        return struct.unpack(">i", self.n(4))[0]

    def s64(self):
        return struct.unpack(">q", self.n(8))[0]

    def uv(self):
        v = s = 0
        while True:
            x = self.n(1)[0]
            v |= (x & 0x7F) << s
            s += 7
            if x < 0x80:
                return v

    def sv(self):  # zigzag varint / varlong
        u = self.uv()
        return (u >> 1) ^ -(u & 1)

    def str_(self, flex):
        k = self.uv() - 1 if flex else self.s16()
        return None if k < 0 else self.n(k).decode("utf-8")

    def bytes_(self, flex):
        k = self.uv() - 1 if flex else self.s32()
        return None if k < 0 else self.n(k)

    def count(self, flex):
        return self.uv() - 1 if flex else self.s32()

    def tags(self, flex):
        if flex:
            for _ in range(self.uv()):
                self.uv()
                self.n(self.uv())

    def end(self):
        if self.p != len(self.b):
            raise ValueError("%d trailing bytes" % (len(self.b) - self.p))


# ------------------------------------------------------------------ codecs
def snappy_raw(src):
    r = R(src)
    out_len = r.uv()
    out = bytearray()
    while r.p < len(src):
        tag = r.n(1)[0]
        t = tag & 3
        if t == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(r.n(nb), "little")
            out += r.n(ln + 1)
            continue
        if t == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | r.n(1)[0]
        elif t == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(r.n(2), "little")
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(r.n(4), "little")
        if off == 0 or off > len(out):
            raise ValueError("bad snappy offset")
        for _ in range(ln):
            out.append(out[-off])
    if len(out) != out_len:
        raise ValueError("snappy length mismatch")
    return bytes(out)


def snappy(src):
    magic = b"\x82SNAPPY\x00"
    if not src.startswith(magic):
        return snappy_raw(src), "raw"
    r = R(src)
    r.n(8)
    r.s32()
    r.s32()
    out = b""
    while r.p < len(src):
        out += snappy_raw(r.n(r.s32()))
    return out, "xerial"


def inflate(codec, data):
    if codec == "none":
        return data, None
    if codec == "gzip":
        return gzip.decompress(data), None
    if codec == "snappy":
        return snappy(data)
    tool = {"lz4": ["lz4", "-d", "-c"], "zstd": ["zstd", "-d", "-c", "-q"]}[codec]
    return subprocess.run(tool, input=data, capture_output=True, check=True).stdout, None


# ------------------------------------------------------------------ bodies
def parse_batches(buf, exp, file):
    """Returns the list of decoded records (dicts) and notes."""
    r = R(buf)
    out = []
    notes = []
    while r.p < len(buf):
        start = r.p
        r.s64()                            # base offset (ignored, client sends 0)
        blen = r.s32()
        end = r.p + blen
        if end > len(buf):
            raise ValueError("batch overruns records")
        r.s32()                            # partition leader epoch
        magic = r.s8()
        if magic != 2:
            raise ValueError("magic %d" % magic)
        crc = struct.unpack(">I", r.n(4))[0]
        if crc32c(buf[r.p:end]) != crc:
            raise ValueError("CRC-32C mismatch")
        attrs = r.s16()
        last_delta = r.s32()
        base_ts = r.s64()
        max_ts = r.s64()
        pid, epoch, seq = r.s64(), r.s16(), r.s32()
        n = r.s32()
        codec = CODECS[attrs & 7]
        if codec != exp["codec"]:
            raise ValueError("codec %s, manifest says %s" % (codec, exp["codec"]))
        if attrs & ~7:
            raise ValueError("unexpected attribute bits 0x%x" % attrs)
        if (pid, epoch, seq) != (exp["expected_producer_id"], exp["expected_producer_epoch"],
                                 exp["expected_base_sequence"]):
            raise ValueError("producer id/epoch/seq %s" % ((pid, epoch, seq),))
        payload, framing = inflate(codec, r.n(end - r.p))
        if framing:
            notes.append("snappy framing: " + framing)
        rr = R(payload)
        for i in range(n):
            ln = rr.sv()
            rstart = rr.p
            rr.s8()
            ts_delta = rr.sv()
            off_delta = rr.sv()
            kl = rr.sv()
            key = None if kl < 0 else rr.n(kl).decode()
            vl = rr.sv()
            val = None if vl < 0 else rr.n(vl).decode()
            hs = []
            for _ in range(rr.sv()):
                hk = rr.n(rr.sv()).decode()
                hl = rr.sv()
                hs.append([hk, None if hl < 0 else rr.n(hl).decode()])
            if rr.p - rstart != ln:
                raise ValueError("record %d length field %d != %d" % (i, ln, rr.p - rstart))
            if off_delta != len(out):
                raise ValueError("offset delta %d at record %d" % (off_delta, len(out)))
            out.append({"key": key, "value": val, "headers": hs, "timestamp": base_ts + ts_delta})
        rr.end()
        if last_delta != n - 1:
            raise ValueError("lastOffsetDelta %d for %d records" % (last_delta, n))
        if max_ts != max(x["timestamp"] for x in out[-n:]):
            raise ValueError("maxTimestamp mismatch")
        notes.append("batch@%d: %d records, codec %s, %d bytes" % (start, n, codec, end - start))
    return out, notes


def check_produce(r, v, m):
    flex = v >= 9
    exp = m["produce"]
    txn = r.str_(flex)
    acks = r.s16()
    timeout = r.s32()
    got = {"transactional_id": txn, "acks": acks, "timeout_ms": timeout}
    for k, val in got.items():
        if exp[k] != val:
            raise ValueError("%s=%r, manifest %r" % (k, val, exp[k]))
    topics = r.count(flex)
    if topics != 1:
        raise ValueError("%d topics" % topics)
    name = r.str_(flex)
    parts = r.count(flex)
    if name != exp["topic"] or parts != 1:
        raise ValueError("topic %r with %d partitions" % (name, parts))
    idx = r.s32()
    if idx != exp["partition"]:
        raise ValueError("partition %d" % idx)
    recs, notes = parse_batches(r.bytes_(flex), exp, m["file"])
    r.tags(flex)
    r.tags(flex)
    r.tags(flex)
    if len(recs) != len(exp["records"]):
        raise ValueError("%d records, manifest %d" % (len(recs), len(exp["records"])))
    for i, (g, e) in enumerate(zip(recs, exp["records"])):
        for k in ("key", "value", "headers"):
            if g[k] != e[k]:
                raise ValueError("record %d %s=%r, manifest %r" % (i, k, g[k], e[k]))
        if e["timestamp"] is not None and g["timestamp"] != e["timestamp"]:
            raise ValueError("record %d timestamp %d, manifest %d" % (i, g["timestamp"], e["timestamp"]))
    return "txn=%s acks=%d timeout=%d %s/%d; %s" % (txn, acks, timeout, name, idx, "; ".join(notes))


def check_metadata(r, v, m):
    flex = v >= 9
    n = r.count(flex)
    names = None
    if n >= 0:
        names = []
        for _ in range(n):
            if v >= 10:
                r.n(16)
            names.append(r.str_(flex))
            r.tags(flex)
    extra = []
    if v >= 4:
        extra.append("allow_auto_create=%d" % r.s8())
    if 8 <= v <= 10:
        extra.append("cluster_ops=%d" % r.s8())
    if v >= 8:
        extra.append("topic_ops=%d" % r.s8())
    r.tags(flex)
    return "topics=%s %s" % ("null" if names is None else names, " ".join(extra))


def check_apiversions(r, v, m):
    if v < 3:
        return "empty body"
    name = r.str_(True)
    ver = r.str_(True)
    r.tags(True)
    if ver not in m["client"]["version"]:
        raise ValueError("ClientSoftwareVersion %r not in client version %r" % (ver, m["client"]["version"]))
    return "software=%s/%s" % (name, ver)


def check_init_pid(r, v, m):
    flex = v >= 2
    txn = r.str_(flex)
    tmo = r.s32()
    extra = ""
    if v >= 3:
        extra = " pid=%d epoch=%d" % (r.s64(), r.s16())
    r.tags(flex)
    if txn != m["init_producer_id"]["transactional_id"]:
        raise ValueError("transactional id %r" % txn)
    return "txn=%s timeout=%d%s" % (txn, tmo, extra)


BODY = {0: check_produce, 3: check_metadata, 18: check_apiversions, 22: check_init_pid}


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "..", "data", "captures")
    man = json.load(open(os.path.join(d, "MANIFEST.json")))
    bad = 0
    listed = set()
    total = 0
    for m in man["files"]:
        listed.add(m["file"])
        data = open(os.path.join(d, m["file"]), "rb").read()
        total += len(data)
        try:
            if len(data) != m["size"]:
                raise ValueError("file length %d != frame size %d" % (len(data), m["size"]))
            if hashlib.sha256(data).hexdigest() != m["sha256"]:
                raise ValueError("sha256 mismatch")
            r = R(data)
            key, ver, corr = r.s16(), r.s16(), r.s32()
            cid = r.str_(False)
            hv = 1
            if ver >= FIRST_FLEXIBLE[key]:
                r.tags(True)
                hv = 2
            got = (key, ver, corr, cid)
            exp = (m["api_key"], m["api_version"], m["correlation_id"], m["client_id"])
            if got != exp:
                raise ValueError("header %r != manifest %r" % (got, exp))
            if not m["file"].endswith("-%s-v%d.bin" % (m["api_name"], ver)):
                raise ValueError("file name does not match api/version")
            info = BODY[key](r, ver, m)
            r.end()
            print("ok   %-44s hdr v%d corr=%-2d %s" % (m["file"], hv, corr, info))
        except Exception as ex:
            bad += 1
            print("FAIL %-44s %s" % (m["file"], ex))
    stray = sorted(f for f in os.listdir(d) if f.endswith(".bin") and f not in listed)
    for f in stray:
        bad += 1
        print("FAIL %s: not in MANIFEST.json" % f)
    print("verify_captures: %d files, %d bytes of frames, %d failures" % (len(man["files"]), total, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

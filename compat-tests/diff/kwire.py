"""A generic Kafka wire codec driven by the JSON message definitions in kafka-proto/spec/messages (stdlib only).

Owns: encoding a request body and decoding a response body of any API and version the definitions know,
field by field (flexible versions, compact types, tagged fields), the request/response headers, a minimal
magic-2 record batch builder and reader, and a blocking client connection for the differential tests.
Must not: know any API by name beyond the header rules (ApiVersions answers use header v0), or guess values
the caller did not give: a missing field takes its definition's default (0, "", [] or null).
"""

import json
import os
import socket
import struct

_HERE = os.path.dirname(os.path.abspath(__file__))
SPEC_DIR = os.path.abspath(os.path.join(_HERE, "..", "..", "kafka-proto", "spec", "messages"))


class WireError(Exception):
    pass


def _parse_versions(s):
    """'0+', '3-7', '5', 'none' -> (lo, hi) with hi None for open-ended; None for 'none'."""
    if s is None or s == "none":
        return None
    if s.endswith("+"):
        return (int(s[:-1]), None)
    if "-" in s:
        lo, hi = s.split("-")
        return (int(lo), int(hi))
    return (int(s), int(s))


def _in(v, rng):
    return rng is not None and v >= rng[0] and (rng[1] is None or v <= rng[1])


_spec_cache = {}


def load(name):
    if name not in _spec_cache:
        with open(os.path.join(SPEC_DIR, name + ".json")) as f:
            _spec_cache[name] = json.load(f)
    return _spec_cache[name]


def api_specs():
    """{api_key: (request_name, response_name, (lo, hi))} for every request definition."""
    out = {}
    for fn in sorted(os.listdir(SPEC_DIR)):
        if not fn.endswith("Request.json"):
            continue
        d = load(fn[:-5])
        if d.get("type") != "request":
            continue
        out[d["apiKey"]] = (d["name"], d["name"][: -len("Request")] + "Response", _parse_versions(d["validVersions"]))
    return out


# ---------------------------------------------------------------- primitive writers / readers


def _uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _varint(n):
    return _uvarint((n << 1) ^ (n >> 63))


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise WireError("truncated: need %d bytes at %d of %d" % (n, self.p, len(self.d)))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def unpack(self, fmt):
        return struct.unpack(">" + fmt, self.take(struct.calcsize(">" + fmt)))[0]

    def uvarint(self):
        shift = n = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 63:
                raise WireError("varint too long")

    def varint(self):
        n = self.uvarint()
        return (n >> 1) ^ -(n & 1)

    def left(self):
        return len(self.d) - self.p


_FIXED = {"int8": "b", "int16": "h", "int32": "i", "int64": "q", "uint16": "H", "uint32": "I", "float64": "d"}


def _default(field, version):
    t = field["type"]
    nullable = _in(version, _parse_versions(field.get("nullableVersions")))
    if "default" in field:
        d = field["default"]
        if d == "null":
            return None
        if t in _FIXED:
            return float(d) if t == "float64" else int(d, 0) if isinstance(d, str) else int(d)
        if t == "bool":
            return d in (True, "true")
        return d
    if t.startswith("[]"):
        return []  # nullable or not: an empty array, as Kafka's generated classes default
    if t in _FIXED:
        return 0
    if t == "bool":
        return False
    if t == "string":
        return ""
    if t == "uuid":
        return bytes(16)
    if t in ("bytes", "records"):
        return None if nullable else b""
    return {}  # a struct


class Message:
    """One definition (request, response or data) with its common structs."""

    def __init__(self, name):
        self.d = load(name)
        self.name = name
        self.structs = {s["name"]: s["fields"] for s in self.d.get("commonStructs", [])}
        self.flex = _parse_versions(self.d.get("flexibleVersions", "none"))

    def _fields_of(self, field):
        if "fields" in field:
            return field["fields"]
        t = field["type"][2:] if field["type"].startswith("[]") else field["type"]
        if t in self.structs:
            return self.structs[t]
        raise WireError("%s: no fields for struct %s" % (self.name, t))

    # -------------------------------------------------------------- encode
    def encode(self, version, values):
        flex = _in(version, self.flex)
        return self._enc_struct(self.d["fields"], values or {}, version, flex)

    def _enc_struct(self, fields, values, v, flex):
        out = bytearray()
        tagged = []
        for f in fields:
            if not _in(v, _parse_versions(f["versions"])):
                continue
            val = values.get(f["name"], _default(f, v)) if isinstance(values, dict) else _default(f, v)
            tv = _parse_versions(f.get("taggedVersions"))
            if _in(v, tv):
                if f["name"] not in values:
                    continue  # a tagged field at its default is not sent
                tagged.append((f["tag"], self._enc_value(f, val, v, flex)))
                continue
            out += self._enc_value(f, val, v, flex)
        if flex:
            out += _uvarint(len(tagged))
            for tag, data in sorted(tagged):
                out += _uvarint(tag) + _uvarint(len(data)) + data
        return bytes(out)

    def _enc_value(self, f, val, v, flex):
        t = f["type"]
        if t.startswith("[]"):
            et = t[2:]
            if val is None:
                return _uvarint(0) if flex else struct.pack(">i", -1)
            head = _uvarint(len(val) + 1) if flex else struct.pack(">i", len(val))
            body = bytearray()
            for item in val:
                if et in _FIXED or et in ("bool", "string", "bytes", "uuid", "records"):
                    body += self._enc_prim(et, item, flex)
                else:
                    body += self._enc_struct(self._fields_of(f), item, v, flex)
            return head + bytes(body)
        if t in _FIXED or t in ("bool", "string", "bytes", "uuid", "records"):
            return self._enc_prim(t, val, flex)
        if _in(v, _parse_versions(f.get("nullableVersions"))):
            # A nullable struct carries a presence byte.
            if val is None:
                return struct.pack(">b", -1)
            return struct.pack(">b", 1) + self._enc_struct(self._fields_of(f), val, v, flex)
        return self._enc_struct(self._fields_of(f), val or {}, v, flex)

    @staticmethod
    def _enc_prim(t, val, flex):
        if t in _FIXED:
            return struct.pack(">" + _FIXED[t], val)
        if t == "bool":
            return b"\x01" if val else b"\x00"
        if t == "uuid":
            if isinstance(val, str):
                import uuid as _u
                val = _u.UUID(val).bytes
            if len(val) != 16:
                raise WireError("uuid of %d bytes" % len(val))
            return bytes(val)
        if t == "string":
            if val is None:
                return _uvarint(0) if flex else struct.pack(">h", -1)
            b = val.encode() if isinstance(val, str) else bytes(val)
            return (_uvarint(len(b) + 1) if flex else struct.pack(">h", len(b))) + b
        # bytes, records
        if val is None:
            return _uvarint(0) if flex else struct.pack(">i", -1)
        b = bytes(val)
        return (_uvarint(len(b) + 1) if flex else struct.pack(">i", len(b))) + b

    # -------------------------------------------------------------- decode
    def decode(self, version, data):
        r = Reader(data)
        flex = _in(version, self.flex)
        out = self._dec_struct(self.d["fields"], r, version, flex)
        if r.left():
            raise WireError("%s v%d: %d bytes left after the body" % (self.name, version, r.left()))
        return out

    def _dec_struct(self, fields, r, v, flex):
        out = {}
        bytag = {}
        for f in fields:
            if not _in(v, _parse_versions(f["versions"])):
                continue
            if _in(v, _parse_versions(f.get("taggedVersions"))):
                bytag[f["tag"]] = f
                continue
            out[f["name"]] = self._dec_value(f, r, v, flex)
        if flex:
            for _ in range(r.uvarint()):
                tag = r.uvarint()
                size = r.uvarint()
                raw = r.take(size)
                if tag in bytag:
                    sub = Reader(raw)
                    out[bytag[tag]["name"]] = self._dec_value(bytag[tag], sub, v, flex)
                    if sub.left():
                        raise WireError("tagged field %s: %d bytes left" % (bytag[tag]["name"], sub.left()))
                else:
                    out["_tag%d" % tag] = raw.hex()
        return out

    def _dec_value(self, f, r, v, flex):
        t = f["type"]
        if t.startswith("[]"):
            et = t[2:]
            n = r.uvarint() - 1 if flex else r.unpack("i")
            if n < 0:
                return None
            if et in _FIXED or et in ("bool", "string", "bytes", "uuid", "records"):
                return [self._dec_prim(et, r, flex) for _ in range(n)]
            fs = self._fields_of(f)
            return [self._dec_struct(fs, r, v, flex) for _ in range(n)]
        if t in _FIXED or t in ("bool", "string", "bytes", "uuid", "records"):
            return self._dec_prim(t, r, flex)
        if _in(v, _parse_versions(f.get("nullableVersions"))) and r.unpack("b") < 0:
            return None
        return self._dec_struct(self._fields_of(f), r, v, flex)

    @staticmethod
    def _dec_prim(t, r, flex):
        if t in _FIXED:
            return r.unpack(_FIXED[t])
        if t == "bool":
            return r.take(1)[0] != 0
        if t == "uuid":
            import uuid as _u
            return str(_u.UUID(bytes=bytes(r.take(16))))
        if t == "string":
            n = r.uvarint() - 1 if flex else r.unpack("h")
            return None if n < 0 else r.take(n).decode("utf-8", "replace")
        n = r.uvarint() - 1 if flex else r.unpack("i")
        return None if n < 0 else bytes(r.take(n))


# ---------------------------------------------------------------- record batches (magic 2, uncompressed)


def _crc32c_table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


_CRC_TAB = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TAB[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def record_batch(records, base_ts=1700000000000, producer_id=-1, producer_epoch=-1, base_sequence=-1):
    """records: [(key bytes|None, value bytes|None)]. Timestamps are fixed so both brokers store the same."""
    body = bytearray()
    for i, (k, val) in enumerate(records):
        r = bytearray(b"\x00")  # attributes
        r += _varint(i) + _varint(i)  # timestamp delta, offset delta
        r += _varint(-1) if k is None else _varint(len(k)) + k
        r += _varint(-1) if val is None else _varint(len(val)) + val
        r += _varint(0)  # headers
        body += _varint(len(r)) + r
    n = len(records)
    after_crc = struct.pack(">hiqqqhii", 0, n - 1, base_ts, base_ts + n - 1, producer_id, producer_epoch,
                            base_sequence, n) + bytes(body)
    head = struct.pack(">qiib", 0, 4 + 1 + 4 + len(after_crc), 0, 2)  # base offset, length, leader epoch, magic
    return head + struct.pack(">I", crc32c(after_crc)) + after_crc


def read_batches(data):
    """A records field's bytes as a list of dicts (batch header fields and records), for comparison."""
    out = []
    r = Reader(data or b"")
    while r.left() >= 12:
        base, length = struct.unpack(">qi", r.take(12))
        if r.left() < length:
            out.append({"partial": r.left()})
            break
        b = Reader(r.take(length))
        epoch, magic, crc = b.unpack("i"), b.unpack("b"), b.unpack("I")
        rest = b.d[b.p:]
        (attrs, lod, fts, mts, pid, pep, bseq, n) = struct.unpack(">hiqqqhii", b.take(40))
        recs = []
        if attrs & 7 == 0:
            for _ in range(n):
                ln = b.varint()
                rr = Reader(b.take(ln))
                rr.take(1)
                tsd, od = rr.varint(), rr.varint()
                kl = rr.varint()
                k = None if kl < 0 else bytes(rr.take(kl))
                vl = rr.varint()
                val = None if vl < 0 else bytes(rr.take(vl))
                recs.append({"ts_delta": tsd, "offset_delta": od, "key": k, "value": val, "headers": rr.varint()})
        out.append({"base_offset": base, "length": length, "leader_epoch": epoch, "magic": magic,
                    "crc_ok": crc == crc32c(rest), "attributes": attrs, "last_offset_delta": lod,
                    "first_ts": fts, "max_ts": mts, "producer_id": pid, "producer_epoch": pep,
                    "base_sequence": bseq, "records": recs})
    return out


# ---------------------------------------------------------------- a connection


class Conn:
    def __init__(self, bootstrap, timeout=15.0, client_id="kb-diff"):
        host, _, port = bootstrap.rpartition(":")
        self.s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self.corr = 0
        self.client_id = client_id.encode()

    def close(self):
        self.s.close()

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise WireError("connection closed by the broker")
            buf += chunk
        return bytes(buf)

    def request(self, api_key, version, values):
        """Sends one request; returns the decoded response body (a dict)."""
        specs = api_specs()
        req_name, resp_name, _ = specs[api_key]
        req = Message(req_name)
        flex = _in(version, req.flex)
        self.corr += 1
        head = struct.pack(">hhih", api_key, version, self.corr, len(self.client_id)) + self.client_id
        if flex:
            head += _uvarint(0)
        body = req.encode(version, values)
        self.s.sendall(struct.pack(">i", len(head) + len(body)) + head + body)
        size = struct.unpack(">i", self._recv(4))[0]
        data = self._recv(size)
        corr = struct.unpack(">i", data[:4])[0]
        if corr != self.corr:
            raise WireError("correlation id %d, expected %d" % (corr, self.corr))
        resp = Message(resp_name)
        r = Reader(data[4:])
        if _in(version, resp.flex) and api_key != 18:
            for _ in range(r.uvarint()):
                r.uvarint()
                r.take(r.uvarint())
        return resp.decode(version, r.d[r.p:])

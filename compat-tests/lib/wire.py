"""Raw Kafka framing for tests that must see the wire: request headers, frames, exact reads."""

import struct


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def header_v1(api_key, api_version, corr, client_id=b"compat-raw"):
    return struct.pack(">hhih", api_key, api_version, corr, len(client_id)) + client_id


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def request(api_key, version, corr, body, client_id="compat-raw"):
    """A non-flexible request (header v1) framed with its size."""
    return frame(header_v1(api_key, version, corr, client_id.encode()) + body)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(s):
    """One response frame without its size prefix."""
    n = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, n)


# ---- flexible (compact) encodings, for request header v2 -------------------------------------------

def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def read_uvarint(buf, off):
    n = shift = 0
    while True:
        b = buf[off]
        off += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, off
        shift += 7


def cstr(s):
    """Compact string (None: null)."""
    if s is None:
        return b"\0"
    b = s.encode()
    return uvarint(len(b) + 1) + b


def cbytes(b):
    return uvarint(len(b) + 1) + b


def carray(items):
    return uvarint(len(items) + 1) + b"".join(items)


def read_cstr(buf, off):
    n, off = read_uvarint(buf, off)
    if n == 0:
        return None, off
    return buf[off:off + n - 1].decode(), off + n - 1


def flex_request(api_key, version, corr, body, client_id="compat-raw"):
    """A flexible request (header v2: client id as a nullable int16 string, then empty tagged fields)."""
    cid = client_id.encode()
    return frame(struct.pack(">hhih", api_key, version, corr, len(cid)) + cid + b"\0" + body)

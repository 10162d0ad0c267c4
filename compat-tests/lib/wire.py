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

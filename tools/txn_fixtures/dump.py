"""Prints and saves as JSON the records of one Kafka log segment (record batches v2, uncompressed)."""
import struct, json, sys
def varint(b, i):
    shift = 0; r = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << shift; shift += 7
        if not x & 0x80: break
    return (r >> 1) ^ -(r & 1), i
data = open(sys.argv[1], "rb").read()
i = 0; out = []
while i + 12 <= len(data):
    base, blen = struct.unpack(">qi", data[i:i+12])
    b = data[i:i+12+blen]; i += 12 + blen
    attrs = struct.unpack(">h", b[21:23])[0]
    first_ts = struct.unpack(">q", b[27:35])[0]
    n = struct.unpack(">i", b[57:61])[0]
    j = 61
    for _ in range(n):
        ln, j = varint(b, j); end = j + ln
        j += 1
        tsd, j = varint(b, j); od, j = varint(b, j)
        kl, j = varint(b, j); k = b[j:j+kl]; j += kl
        vl, j = varint(b, j)
        v = None if vl < 0 else b[j:j+vl]; j += max(vl, 0)
        out.append({"offset": base + od, "ts": first_ts + tsd, "key": k.hex(), "value": None if v is None else v.hex()})
        j = end
json.dump(out, open(sys.argv[2], "w"), indent=1)
for r in out: print(r["offset"], r["ts"], r["key"], r["value"])

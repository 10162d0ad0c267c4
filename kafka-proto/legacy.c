/*
 * legacy.c — conversion between magic 0/1 message sets and magic-2 batches.
 * The CRC of a legacy message is CRC-32 (IEEE, zlib's), not CRC-32C.
 */
#include "legacy.h"

#include <string.h>
#include <zlib.h>

#include "codec.h"

#define LEGACY_HEADER      12 /* offset + message size */
#define LEGACY_MIN_MESSAGE 14 /* crc, magic, attributes, key len, value len */

typedef struct legacy_msg {
    int64_t offset;
    int8_t magic;
    int8_t attributes;
    int64_t timestamp;
    kp_bytes key, value;
} legacy_msg;

/* Reads one message; 1 = read, 0 = end (a trailing partial message, which
 * Kafka tolerates in fetches, also ends the set), <0 = corrupt. */
static int next_msg(kp_reader *r, legacy_msg *m)
{
    if (kp_reader_left(r) < LEGACY_HEADER)
        return kp_reader_left(r) == 0 ? 0 : KP_E_INVALID;
    int32_t size = 0;
    if (kp_read_i64(r, &m->offset) || kp_read_i32(r, &size))
        return KP_E_INVALID;
    if (size < LEGACY_MIN_MESSAGE || (size_t)size > kp_reader_left(r))
        return KP_E_INVALID;
    const uint8_t *body = NULL;
    kp_read_raw(r, (size_t)size, &body);
    kp_reader mr;
    kp_reader_init(&mr, body, (size_t)size);
    uint32_t crc = 0;
    kp_read_u32(&mr, &crc);
    if ((uint32_t)crc32(0, body + 4, (uInt)(size - 4)) != crc)
        return KP_E_CRC;
    if (kp_read_i8(&mr, &m->magic) || kp_read_i8(&mr, &m->attributes))
        return KP_E_INVALID;
    if (m->magic != 0 && m->magic != 1)
        return KP_E_INVALID;
    m->timestamp = -1;
    if (m->magic == 1 && kp_read_i64(&mr, &m->timestamp))
        return KP_E_INVALID;
    if (kp_read_bytes(&mr, &m->key) || kp_read_bytes(&mr, &m->value) || kp_reader_left(&mr) != 0)
        return KP_E_INVALID;
    return 1;
}

int kp_records_are_legacy(const uint8_t *p, size_t len)
{
    /* magic sits at byte 16 in both layouts (after the crc in legacy, after
     * partitionLeaderEpoch in magic 2). */
    return len > 16 && (p[16] == 0 || p[16] == 1);
}

static int add_msg(kp_batch_builder *bb, const legacy_msg *m, int64_t ts)
{
    return kp_batch_builder_add(bb, ts, m->key, m->value, NULL, 0);
}

int kp_legacy_to_batch(const uint8_t *msgset, size_t len, size_t max_decompressed, kp_writer *out)
{
    kp_reader r;
    kp_reader_init(&r, msgset, len);
    legacy_msg m;
    kp_batch_builder bb;
    int codec = -1, rc = 0, n;
    int log_append = 0;
    kp_writer inflated;
    kp_writer_init(&inflated, 0);
    while ((n = next_msg(&r, &m)) == 1) {
        int mcodec = m.attributes & KP_ATTR_CODEC_MASK;
        if (codec < 0) {
            codec = mcodec;
            kp_batch_builder_init(&bb, 0, codec);
        }
        if (m.magic == 1 && (m.attributes & KP_ATTR_LOG_APPEND_TIME))
            log_append = 1;
        if (mcodec == KP_CODEC_NONE) {
            if ((rc = add_msg(&bb, &m, m.timestamp)) != 0)
                break;
            continue;
        }
        if (m.value.len <= 0) {
            rc = KP_E_INVALID;
            break;
        }
        inflated.len = 0;
        if ((rc = kp_decompress(mcodec, m.value.p, (size_t)m.value.len, max_decompressed, &inflated)) != 0)
            break;
        kp_reader ir;
        kp_reader_init(&ir, inflated.buf, inflated.len);
        legacy_msg im;
        int in;
        while ((in = next_msg(&ir, &im)) == 1) {
            if ((im.attributes & KP_ATTR_CODEC_MASK) != KP_CODEC_NONE) {
                in = KP_E_INVALID; /* compressed inside compressed: never legal */
                break;
            }
            /* A log-append-time wrapper stamps every inner message. */
            int64_t ts =
                (m.magic == 1 && (m.attributes & KP_ATTR_LOG_APPEND_TIME)) ? m.timestamp : im.timestamp;
            if ((rc = add_msg(&bb, &im, ts)) != 0)
                break;
        }
        if (rc == 0 && in < 0)
            rc = in;
        if (rc)
            break;
    }
    kp_writer_free(&inflated);
    if (codec < 0)
        return n < 0 ? n : KP_E_INVALID; /* no message at all */
    if (rc == 0 && n < 0)
        rc = n;
    if (rc == 0)
        rc = kp_batch_builder_finish(&bb, out);
    kp_batch_builder_free(&bb);
    (void)log_append; /* the broker's topic setting decides LogAppendTime */
    return rc;
}

static int put_legacy(kp_writer *out, int magic, int64_t offset, int64_t ts, int8_t attrs, kp_bytes key,
                      kp_bytes value)
{
    size_t klen = key.len > 0 ? (size_t)key.len : 0, vlen = value.len > 0 ? (size_t)value.len : 0;
    size_t size = 4 + 1 + 1 + (magic == 1 ? 8 : 0) + 4 + klen + 4 + vlen;
    if (size > INT32_MAX)
        return KP_E_TOO_LARGE;
    kp_write_i64(out, offset);
    kp_write_i32(out, (int32_t)size);
    size_t crc_at = out->len;
    kp_write_u32(out, 0);
    kp_write_i8(out, (int8_t)magic);
    kp_write_i8(out, attrs);
    if (magic == 1)
        kp_write_i64(out, ts);
    kp_write_bytes(out, key);
    kp_write_bytes(out, value);
    if (out->err)
        return out->err;
    if (!out->counting) {
        uint32_t crc = (uint32_t)crc32(0, out->buf + crc_at + 4, (uInt)(size - 4));
        kp_put_be32(out->buf + crc_at, crc);
    }
    return 0;
}

int kp_batches_to_legacy(const uint8_t *data, size_t len, int magic0, size_t max_decompressed, kp_writer *out)
{
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, data, len, 0);
    kp_writer plain;
    kp_writer_init(&plain, 0);
    int rc = 0, n;
    int magic = magic0 ? 0 : 1;
    while (rc == 0 && (n = kp_batch_iter_next(&it, &b)) == 1) {
        if (b.h.attributes & KP_ATTR_CONTROL)
            continue;
        const uint8_t *recs = b.records;
        size_t recs_size = b.records_size;
        int codec = b.h.attributes & KP_ATTR_CODEC_MASK;
        if (codec != KP_CODEC_NONE) {
            plain.len = 0;
            if ((rc = kp_decompress(codec, b.records, b.records_size, max_decompressed, &plain)) != 0)
                break;
            recs = plain.buf;
            recs_size = plain.len;
        }
        int8_t attrs =
            (magic == 1 && (b.h.attributes & KP_ATTR_LOG_APPEND_TIME)) ? KP_ATTR_LOG_APPEND_TIME : 0;
        kp_record_iter ri;
        kp_record rec;
        kp_record_iter_init(&ri, &b.h, recs, recs_size);
        int rn;
        while ((rn = kp_record_iter_next(&ri, &rec)) == 1)
            if ((rc = put_legacy(out, magic, rec.offset, rec.timestamp, attrs, rec.key, rec.value)) != 0)
                break;
        if (rc == 0 && rn < 0)
            rc = rn;
    }
    kp_writer_free(&plain);
    return rc;
}

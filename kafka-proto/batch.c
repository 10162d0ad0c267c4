/*
 * batch.c — magic-2 record batches: header, validation, record and header
 * iteration, in-place edits, and the batch builder.
 *
 * Owns: the byte layout of a batch and of a record, and the rules that make
 * a hostile batch safe to walk (every length and count is checked against
 * the bytes that are really there before it is used).
 *
 * Must not: allocate while validating or iterating, decompress on its own
 * (the caller asks codec.h), use signed arithmetic that a hostile offset or
 * timestamp could overflow, or touch bytes outside [p, p + len).
 */
#include "batch.h"
#include "codec.h"

#include <string.h>

/* Header fields, as offsets from the start of the batch. */
#define OFF_BASE_OFFSET       0
#define OFF_BATCH_LENGTH      8
#define OFF_LEADER_EPOCH      12
#define OFF_MAGIC             16
#define OFF_CRC               17
#define OFF_ATTRIBUTES        21
#define OFF_LAST_OFFSET_DELTA 23
#define OFF_BASE_TIMESTAMP    27
#define OFF_MAX_TIMESTAMP     35
#define OFF_PRODUCER_ID       43
#define OFF_PRODUCER_EPOCH    51
#define OFF_BASE_SEQUENCE     53
#define OFF_RECORD_COUNT      57

#define MIN_BATCH_LENGTH (KP_BATCH_HEADER_SIZE - KP_BATCH_LOG_OVERHEAD)

/* Smallest record body (after its length varint): attributes, timestamp
 * delta, offset delta, key length, value length, header count. */
#define RECORD_BODY_MIN 6
/* ...and with its length varint. */
#define RECORD_MIN 7

int kp_batch_header_parse(const uint8_t *p, size_t len, kp_batch_header *h)
{
    if (len < KP_BATCH_HEADER_SIZE)
        return KP_E_SHORT;
    h->base_offset = (int64_t)kp_be64(p + OFF_BASE_OFFSET);
    h->batch_length = (int32_t)kp_be32(p + OFF_BATCH_LENGTH);
    h->partition_leader_epoch = (int32_t)kp_be32(p + OFF_LEADER_EPOCH);
    h->magic = (int8_t)p[OFF_MAGIC];
    h->crc = kp_be32(p + OFF_CRC);
    h->attributes = (int16_t)kp_be16(p + OFF_ATTRIBUTES);
    h->last_offset_delta = (int32_t)kp_be32(p + OFF_LAST_OFFSET_DELTA);
    h->base_timestamp = (int64_t)kp_be64(p + OFF_BASE_TIMESTAMP);
    h->max_timestamp = (int64_t)kp_be64(p + OFF_MAX_TIMESTAMP);
    h->producer_id = (int64_t)kp_be64(p + OFF_PRODUCER_ID);
    h->producer_epoch = (int16_t)kp_be16(p + OFF_PRODUCER_EPOCH);
    h->base_sequence = (int32_t)kp_be32(p + OFF_BASE_SEQUENCE);
    h->record_count = (int32_t)kp_be32(p + OFF_RECORD_COUNT);
    return KP_OK;
}

static void put_header(uint8_t *p, const kp_batch_header *h)
{
    kp_put_be64(p + OFF_BASE_OFFSET, (uint64_t)h->base_offset);
    kp_put_be32(p + OFF_BATCH_LENGTH, (uint32_t)h->batch_length);
    kp_put_be32(p + OFF_LEADER_EPOCH, (uint32_t)h->partition_leader_epoch);
    p[OFF_MAGIC] = (uint8_t)h->magic;
    kp_put_be32(p + OFF_CRC, h->crc);
    kp_put_be16(p + OFF_ATTRIBUTES, (uint16_t)h->attributes);
    kp_put_be32(p + OFF_LAST_OFFSET_DELTA, (uint32_t)h->last_offset_delta);
    kp_put_be64(p + OFF_BASE_TIMESTAMP, (uint64_t)h->base_timestamp);
    kp_put_be64(p + OFF_MAX_TIMESTAMP, (uint64_t)h->max_timestamp);
    kp_put_be64(p + OFF_PRODUCER_ID, (uint64_t)h->producer_id);
    kp_put_be16(p + OFF_PRODUCER_EPOCH, (uint16_t)h->producer_epoch);
    kp_put_be32(p + OFF_BASE_SEQUENCE, (uint32_t)h->base_sequence);
    kp_put_be32(p + OFF_RECORD_COUNT, (uint32_t)h->record_count);
}

/* ---- records ---------------------------------------------------------- */

/* A varint length then that many bytes; -1 is null when nullable. */
static int read_var_bytes(kp_reader *r, int nullable, const uint8_t **p, int32_t *len)
{
    int e = kp_read_varint(r, len);
    if (e)
        return e;
    if (*len == -1 && nullable) {
        *p = NULL;
        return KP_OK;
    }
    if (*len < 0)
        return r->err = KP_E_INVALID;
    return kp_read_raw(r, (size_t)*len, p);
}

static int read_header(kp_reader *r, kp_record_header *out)
{
    const uint8_t *k, *v;
    int32_t klen, vlen;
    int e;
    if ((e = read_var_bytes(r, 0, &k, &klen)) || (e = read_var_bytes(r, 1, &v, &vlen)))
        return e;
    out->key.p = (const char *)k;
    out->key.len = klen;
    out->value.p = v;
    out->value.len = vlen;
    return KP_OK;
}

void kp_record_iter_init(kp_record_iter *it, const kp_batch_header *h, const uint8_t *records, size_t size)
{
    kp_reader_init(&it->r, records, size);
    it->h = h;
    it->remaining = h->record_count;
    it->next_delta = 0;
    if (h->record_count < 0)
        it->r.err = KP_E_INVALID;
}

/* Parses one record body (exactly the bytes its length varint announced). */
static int parse_record(kp_record_iter *it, kp_reader *b, kp_record *rec)
{
    const kp_batch_header *h = it->h;
    int64_t ts_delta;
    int32_t off_delta;
    if (kp_read_i8(b, &rec->attributes) || kp_read_varlong(b, &ts_delta) || kp_read_varint(b, &off_delta))
        return b->err;
    /* Offsets inside a batch strictly increase (compaction only removes). */
    if (off_delta < it->next_delta || off_delta > h->last_offset_delta)
        return KP_E_INVALID;
    it->next_delta = off_delta == INT32_MAX ? INT32_MAX : off_delta + 1;
    if (read_var_bytes(b, 1, &rec->key.p, &rec->key.len) ||
        read_var_bytes(b, 1, &rec->value.p, &rec->value.len))
        return b->err;
    if (kp_read_varint(b, &rec->header_count))
        return b->err;
    /* A header takes at least two bytes (two length varints). */
    if (rec->header_count < 0 || (size_t)rec->header_count > kp_reader_left(b) / 2)
        return KP_E_INVALID;
    rec->headers = b->p;
    for (int32_t i = 0; i < rec->header_count; i++) {
        kp_record_header hdr;
        if (read_header(b, &hdr))
            return b->err;
    }
    rec->headers_size = (size_t)(b->p - rec->headers);
    /* The length varint must account for every byte, no more, no less. */
    if (kp_reader_left(b))
        return KP_E_INVALID;
    /* Unsigned sums: a hostile base can only wrap, never trap. */
    rec->offset = (int64_t)((uint64_t)h->base_offset + (uint64_t)(int64_t)off_delta);
    if (h->attributes & KP_ATTR_LOG_APPEND_TIME)
        rec->timestamp = h->max_timestamp;
    else
        rec->timestamp = (int64_t)((uint64_t)h->base_timestamp + (uint64_t)ts_delta);
    return KP_OK;
}

int kp_record_iter_next(kp_record_iter *it, kp_record *rec)
{
    kp_reader *r = &it->r;
    if (r->err)
        return r->err;
    if (it->remaining == 0) {
        if (kp_reader_left(r))
            return r->err = KP_E_INVALID;
        return 0;
    }
    /* The records section is exactly delimited by the batch, so running out
     * of bytes here means the batch lies, not that more input is coming. */
    int32_t len;
    if (kp_read_varint(r, &len))
        return r->err = KP_E_INVALID;
    if (len < RECORD_BODY_MIN || (size_t)len > kp_reader_left(r))
        return r->err = KP_E_INVALID;
    kp_reader body;
    kp_reader_init(&body, r->p, (size_t)len);
    r->p += len;
    if (parse_record(it, &body, rec))
        return r->err = KP_E_INVALID;
    it->remaining--;
    return 1;
}

int kp_record_header_next(const kp_record *rec, size_t *pos, kp_record_header *out)
{
    if (*pos == rec->headers_size)
        return 0;
    if (*pos > rec->headers_size || !rec->headers)
        return KP_E_INVALID;
    kp_reader r;
    kp_reader_init(&r, rec->headers + *pos, rec->headers_size - *pos);
    if (read_header(&r, out))
        return KP_E_INVALID;
    *pos = rec->headers_size - kp_reader_left(&r);
    return 1;
}

int kp_control_record_parse(const kp_record *rec, int16_t *type, int32_t *coordinator_epoch)
{
    if (rec->key.len < 4 || (int16_t)kp_be16(rec->key.p) < 0)
        return KP_E_INVALID;
    *type = (int16_t)kp_be16(rec->key.p + 2);
    *coordinator_epoch = -1;
    if (*type == KP_CONTROL_ABORT || *type == KP_CONTROL_COMMIT) {
        if (rec->value.len < 6 || (int16_t)kp_be16(rec->value.p) < 0)
            return KP_E_INVALID;
        *coordinator_epoch = (int32_t)kp_be32(rec->value.p + 2);
    }
    return KP_OK;
}

int kp_txn_marker_parse(const kp_batch *b, int16_t *type, int32_t *coordinator_epoch)
{
    if (!(b->h.attributes & KP_ATTR_CONTROL) || (b->h.attributes & KP_ATTR_CODEC_MASK) != KP_CODEC_NONE ||
        b->h.record_count != 1)
        return KP_E_INVALID;
    kp_record_iter it;
    kp_record rec, extra;
    kp_record_iter_init(&it, &b->h, b->records, b->records_size);
    if (kp_record_iter_next(&it, &rec) != 1 || kp_record_iter_next(&it, &extra) != 0)
        return KP_E_INVALID;
    int rc = kp_control_record_parse(&rec, type, coordinator_epoch);
    if (rc < 0)
        return rc;
    return *type == KP_CONTROL_ABORT || *type == KP_CONTROL_COMMIT ? KP_OK : KP_E_INVALID;
}

/* ---- batches ---------------------------------------------------------- */

static int check_records(const kp_batch_header *h, const uint8_t *recs, size_t size)
{
    /* Cheap rejection of an absurd count before walking anything. */
    if ((size_t)h->record_count > size / RECORD_MIN)
        return KP_E_INVALID;
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, h, recs, size);
    int rc;
    while ((rc = kp_record_iter_next(&it, &rec)) == 1)
        ;
    return rc;
}

static int validate(const uint8_t *p, size_t len, kp_batch *out, int verify_crc)
{
    if (len < KP_BATCH_LOG_OVERHEAD)
        return KP_E_SHORT;
    /* magic sits at byte 16 in every format, so legacy message sets (whose
     * messageSize is too small for a v2 header) are named for what they are
     * before the length check would call them corrupt. */
    if (len > OFF_MAGIC && p[OFF_MAGIC] != 2)
        return p[OFF_MAGIC] <= 1 ? KP_E_UNSUPPORTED : KP_E_INVALID;
    int32_t blen = (int32_t)kp_be32(p + OFF_BATCH_LENGTH);
    if (blen < MIN_BATCH_LENGTH)
        return KP_E_INVALID;
    size_t size = KP_BATCH_LOG_OVERHEAD + (size_t)blen;
    if (size > len)
        return KP_E_SHORT;
    kp_batch b;
    kp_batch_header_parse(p, size, &b.h);
    if (verify_crc && kp_crc32c(0, p + KP_BATCH_CRC_START, size - KP_BATCH_CRC_START) != b.h.crc)
        return KP_E_CRC;
    if (b.h.record_count < 0 || b.h.last_offset_delta < 0 ||
        (int64_t)b.h.record_count > (int64_t)b.h.last_offset_delta + 1)
        return KP_E_INVALID;
    int codec = b.h.attributes & KP_ATTR_CODEC_MASK;
    if (codec > KP_CODEC_ZSTD)
        return KP_E_UNSUPPORTED;
    b.data = p;
    b.size = size;
    b.records = p + KP_BATCH_HEADER_SIZE;
    b.records_size = size - KP_BATCH_HEADER_SIZE;
    if (codec == KP_CODEC_NONE) {
        int rc = check_records(&b.h, b.records, b.records_size);
        if (rc)
            return rc;
    }
    if (out)
        *out = b;
    return KP_OK;
}

int kp_batch_validate(const uint8_t *p, size_t len, kp_batch *out)
{
    return validate(p, len, out, 1);
}

void kp_batch_iter_init(kp_batch_iter *it, const void *buf, size_t len, int verify_crc)
{
    it->p = buf;
    it->end = it->p + len;
    it->verify_crc = verify_crc;
    it->partial = 0;
}

int kp_batch_iter_next(kp_batch_iter *it, kp_batch *b)
{
    size_t left = (size_t)(it->end - it->p);
    if (left == 0)
        return 0;
    kp_batch tmp;
    int rc = validate(it->p, left, &tmp, it->verify_crc);
    if (rc == KP_E_SHORT) {
        it->partial = 1;
        return 0;
    }
    if (rc)
        return rc;
    it->p += tmp.size;
    *b = tmp;
    return 1;
}

void kp_batch_set_base_offset(uint8_t *batch, int64_t base_offset)
{
    kp_put_be64(batch + OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void kp_batch_set_leader_epoch(uint8_t *batch, int32_t epoch)
{
    kp_put_be32(batch + OFF_LEADER_EPOCH, (uint32_t)epoch);
}

void kp_batch_set_max_timestamp(uint8_t *batch, size_t size, int64_t ts, int log_append_time)
{
    if (size < KP_BATCH_HEADER_SIZE)
        return;
    int32_t blen = (int32_t)kp_be32(batch + OFF_BATCH_LENGTH);
    if (blen < MIN_BATCH_LENGTH || KP_BATCH_LOG_OVERHEAD + (size_t)blen > size)
        return;
    size = KP_BATCH_LOG_OVERHEAD + (size_t)blen;
    uint16_t attr = kp_be16(batch + OFF_ATTRIBUTES);
    if (log_append_time)
        attr |= KP_ATTR_LOG_APPEND_TIME;
    else
        attr &= (uint16_t)~KP_ATTR_LOG_APPEND_TIME;
    kp_put_be16(batch + OFF_ATTRIBUTES, attr);
    kp_put_be64(batch + OFF_MAX_TIMESTAMP, (uint64_t)ts);
    kp_put_be32(batch + OFF_CRC, kp_crc32c(0, batch + KP_BATCH_CRC_START, size - KP_BATCH_CRC_START));
}

/* ---- building --------------------------------------------------------- */

void kp_batch_builder_init(kp_batch_builder *b, int64_t base_offset, int codec)
{
    memset(b, 0, sizeof(*b));
    kp_writer_init(&b->recs, 0);
    b->codec = codec;
    b->h.base_offset = base_offset;
    b->h.partition_leader_epoch = -1;
    b->h.magic = 2;
    b->h.attributes = (int16_t)(codec & KP_ATTR_CODEC_MASK);
    b->h.producer_id = -1;
    b->h.producer_epoch = -1;
    b->h.base_sequence = -1;
    b->first_ts = -1;
    b->max_ts = -1;
}

void kp_batch_builder_set_producer(kp_batch_builder *b, int64_t pid, int16_t epoch, int32_t base_seq,
                                   int transactional)
{
    b->h.producer_id = pid;
    b->h.producer_epoch = epoch;
    b->h.base_sequence = base_seq;
    if (transactional)
        b->h.attributes |= KP_ATTR_TRANSACTIONAL;
    else
        b->h.attributes &= (int16_t)~KP_ATTR_TRANSACTIONAL;
}

/* Encoded size of a varint length plus the bytes (none when null). */
static size_t var_bytes_size(int32_t len)
{
    return kp_varint_size(len) + (len > 0 ? (size_t)len : 0);
}

int kp_batch_builder_add(kp_batch_builder *b, int64_t timestamp, kp_bytes key, kp_bytes value,
                         const kp_record_header *headers, int32_t header_count)
{
    if (b->recs.err)
        return b->recs.err;
    if (key.len < -1 || value.len < -1 || header_count < 0 || (header_count > 0 && !headers))
        return KP_E_INVALID;
    if (b->count == INT32_MAX)
        return KP_E_TOO_LARGE;
    int64_t first_ts = b->count ? b->first_ts : timestamp;
    int64_t ts_delta = (int64_t)((uint64_t)timestamp - (uint64_t)first_ts);
    int32_t off_delta = b->count;

    /* Sizes in 64 bits: a few int32 lengths cannot overflow them. */
    uint64_t body = 1 + kp_varlong_size(ts_delta) + kp_varint_size(off_delta) + var_bytes_size(key.len) +
                    var_bytes_size(value.len) + kp_varint_size(header_count);
    for (int32_t i = 0; i < header_count; i++) {
        if (headers[i].key.len < 0 || headers[i].value.len < -1)
            return KP_E_INVALID;
        body += var_bytes_size(headers[i].key.len) + var_bytes_size(headers[i].value.len);
        if (body > INT32_MAX)
            return KP_E_TOO_LARGE;
    }
    if (body > INT32_MAX)
        return KP_E_TOO_LARGE;
    /* Uncompressed size bounds the batch only loosely (compression may
     * shrink it), but a records buffer past 2 GiB is never worth building. */
    if (b->recs.len + kp_varint_size((int32_t)body) + body > (uint64_t)INT32_MAX - MIN_BATCH_LENGTH)
        return KP_E_TOO_LARGE;

    kp_writer *w = &b->recs;
    size_t mark = w->len;
    kp_write_varint(w, (int32_t)body);
    kp_write_i8(w, 0);
    kp_write_varlong(w, ts_delta);
    kp_write_varint(w, off_delta);
    kp_write_varint(w, key.len);
    if (key.len > 0)
        kp_write_raw(w, key.p, (size_t)key.len);
    kp_write_varint(w, value.len);
    if (value.len > 0)
        kp_write_raw(w, value.p, (size_t)value.len);
    kp_write_varint(w, header_count);
    for (int32_t i = 0; i < header_count; i++) {
        kp_write_varint(w, headers[i].key.len);
        if (headers[i].key.len > 0)
            kp_write_raw(w, headers[i].key.p, (size_t)headers[i].key.len);
        kp_write_varint(w, headers[i].value.len);
        if (headers[i].value.len > 0)
            kp_write_raw(w, headers[i].value.p, (size_t)headers[i].value.len);
    }
    if (w->err) {
        w->len = mark;
        return w->err;
    }
    b->first_ts = first_ts;
    if (b->count == 0 || timestamp > b->max_ts)
        b->max_ts = timestamp;
    b->count++;
    return KP_OK;
}

int kp_batch_builder_finish(kp_batch_builder *b, kp_writer *out)
{
    if (b->recs.err)
        return b->recs.err;
    if (out->err)
        return out->err;
    if (b->count == 0)
        return KP_E_INVALID;
    size_t start = out->len;
    uint8_t zero[KP_BATCH_HEADER_SIZE] = {0};
    int rc = kp_write_raw(out, zero, sizeof(zero));
    if (!rc)
        rc = kp_compress(b->codec, b->recs.buf, b->recs.len, out);
    if (!rc && out->len - start - KP_BATCH_HEADER_SIZE > (size_t)INT32_MAX - MIN_BATCH_LENGTH)
        rc = KP_E_TOO_LARGE;
    if (rc) {
        out->len = start;
        return rc;
    }
    size_t size = out->len - start;
    kp_batch_header *h = &b->h;
    h->batch_length = (int32_t)(size - KP_BATCH_LOG_OVERHEAD);
    h->magic = 2;
    h->attributes = (int16_t)((h->attributes & ~KP_ATTR_CODEC_MASK) | (b->codec & KP_ATTR_CODEC_MASK));
    h->last_offset_delta = b->count - 1;
    h->base_timestamp = b->first_ts;
    h->max_timestamp = b->max_ts;
    h->record_count = b->count;
    h->crc = 0;
    /* A counting writer (sizes only) has no bytes to checksum. */
    if (out->buf) {
        uint8_t *p = out->buf + start;
        put_header(p, h);
        h->crc = kp_crc32c(0, p + KP_BATCH_CRC_START, size - KP_BATCH_CRC_START);
        kp_put_be32(p + OFF_CRC, h->crc);
    }
    return KP_OK;
}

void kp_batch_builder_free(kp_batch_builder *b)
{
    kp_writer_free(&b->recs);
}

int kp_batch_build_control(kp_writer *out, int64_t base_offset, int64_t pid, int16_t epoch, int commit,
                           int32_t coordinator_epoch, int64_t timestamp)
{
    uint8_t key[4], value[6];
    kp_put_be16(key, 0);
    kp_put_be16(key + 2, commit ? KP_CONTROL_COMMIT : KP_CONTROL_ABORT);
    kp_put_be16(value, 0);
    kp_put_be32(value + 2, (uint32_t)coordinator_epoch);
    kp_batch_builder b;
    kp_batch_builder_init(&b, base_offset, KP_CODEC_NONE);
    kp_batch_builder_set_producer(&b, pid, epoch, -1, 1);
    b.h.attributes |= KP_ATTR_CONTROL;
    int rc = kp_batch_builder_add(&b, timestamp, (kp_bytes){key, sizeof(key)},
                                  (kp_bytes){value, sizeof(value)}, NULL, 0);
    if (!rc)
        rc = kp_batch_builder_finish(&b, out);
    kp_batch_builder_free(&b);
    return rc;
}

/*
 * test_batch.c — record batches: build/validate/iterate round trips for every
 * codec, batches encoded by another client, in-place edits, control batches,
 * and hostile input (truncation, bad lengths and counts, varint overflow,
 * legacy magic, mutated records).
 *
 * Owns: only tests of batch.c (codec.c is used to reach compressed records).
 * Must not: rely on anything but the public headers.
 */
#include "batch.h"
#include "codec.h"

#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OUT (64u << 20)

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void fix_crc(uint8_t *b, size_t size)
{
    kp_put_be32(b + 17, kp_crc32c(0, b + KP_BATCH_CRC_START, size - KP_BATCH_CRC_START));
}

/* Wraps a hand-made records section in a valid header (CRC included). */
static size_t raw_batch(uint8_t *out, const uint8_t *recs, size_t n, int32_t count, int32_t last_offset_delta)
{
    memset(out, 0, KP_BATCH_HEADER_SIZE);
    kp_put_be64(out, 100);
    kp_put_be32(out + 8, (uint32_t)(KP_BATCH_HEADER_SIZE - KP_BATCH_LOG_OVERHEAD + n));
    out[16] = 2;
    kp_put_be32(out + 23, (uint32_t)last_offset_delta);
    kp_put_be64(out + 27, 1000);
    kp_put_be64(out + 35, 1000);
    kp_put_be64(out + 43, UINT64_MAX);
    kp_put_be16(out + 51, 0xffff);
    kp_put_be32(out + 53, 0xffffffff);
    kp_put_be32(out + 57, (uint32_t)count);
    memcpy(out + KP_BATCH_HEADER_SIZE, recs, n);
    fix_crc(out, KP_BATCH_HEADER_SIZE + n);
    return KP_BATCH_HEADER_SIZE + n;
}

static int validate_raw(const uint8_t *recs, size_t n, int32_t count, int32_t last_offset_delta)
{
    uint8_t buf[512];
    size_t size = raw_batch(buf, recs, n, count, last_offset_delta);
    kp_batch b;
    return kp_batch_validate(buf, size, &b);
}

static kp_bytes bytes_of(const char *s)
{
    return s ? (kp_bytes){(const uint8_t *)s, (int32_t)strlen(s)} : KP_BYTES_NULL;
}

static int bytes_eq(kp_bytes b, const char *s)
{
    if (!s)
        return b.len == -1;
    return b.len >= 0 && (size_t)b.len == strlen(s) && memcmp(b.p, s, (size_t)b.len) == 0;
}

/* ---- the records of the round trip ------------------------------------ */

#define NREC 300
#define MAXH 3

typedef struct exp_rec {
    int64_t ts;
    char *key, *value;
    int32_t nh;
    kp_record_header h[MAXH];
    char hk[MAXH][16], hv[MAXH][32];
} exp_rec;

static exp_rec recs[NREC];

static char *dup_text(size_t n)
{
    char *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + rng() % 26);
    p[n] = 0;
    return p;
}

static int make_records(void)
{
    for (int i = 0; i < NREC; i++) {
        exp_rec *r = &recs[i];
        /* Timestamps go backwards now and then: deltas may be negative. */
        r->ts = 1700000000000LL + i * 3 - (i % 10 == 5 ? 5000 : 0);
        r->key = NULL;
        if (i % 7 != 0) {
            r->key = malloc(16);
            snprintf(r->key, 16, "key-%d", i);
        }
        r->value = i % 11 == 0 ? NULL : i % 5 == 0 ? dup_text(0) : dup_text((size_t)(i * 37) % 2000);
        r->nh = i % 4;
        for (int j = 0; j < r->nh; j++) {
            snprintf(r->hk[j], sizeof(r->hk[j]), "h%d", j);
            snprintf(r->hv[j], sizeof(r->hv[j]), "v%d-%d", i, j);
            r->h[j].key = kp_str_c(r->hk[j]);
            r->h[j].value = j == 1 ? KP_BYTES_NULL : bytes_of(r->hv[j]);
        }
    }
    return 0;
}

static int free_records(void)
{
    for (int i = 0; i < NREC; i++) {
        free(recs[i].key);
        free(recs[i].value);
    }
    return 0;
}

/* Builds the NREC records into out with the given codec. */
static int build(kp_writer *out, int codec, int64_t base_offset, int nrec)
{
    kp_batch_builder b;
    kp_batch_builder_init(&b, base_offset, codec);
    kp_batch_builder_set_producer(&b, 4242, 7, 100, 0);
    int rc = KP_OK;
    for (int i = 0; i < nrec && !rc; i++)
        rc = kp_batch_builder_add(&b, recs[i].ts, bytes_of(recs[i].key), bytes_of(recs[i].value), recs[i].h,
                                  recs[i].nh);
    if (!rc)
        rc = kp_batch_builder_finish(&b, out);
    kp_batch_builder_free(&b);
    return rc;
}

/* Checks every record of a validated batch against recs[]. */
static void check_batch_records(const kp_batch *b, int nrec)
{
    kp_writer plain;
    kp_writer_init(&plain, 0);
    const uint8_t *p = b->records;
    size_t n = b->records_size;
    int codec = b->h.attributes & KP_ATTR_CODEC_MASK;
    if (codec != KP_CODEC_NONE) {
        CU_ASSERT_EQUAL_FATAL(kp_decompress(codec, b->records, b->records_size, MAX_OUT, &plain), KP_OK);
        p = plain.buf;
        n = plain.len;
    }
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, &b->h, p, n);
    int i = 0, rc;
    while ((rc = kp_record_iter_next(&it, &rec)) == 1) {
        CU_ASSERT_FATAL(i < nrec);
        exp_rec *e = &recs[i];
        CU_ASSERT_EQUAL(rec.offset, b->h.base_offset + i);
        CU_ASSERT_EQUAL(rec.timestamp, e->ts);
        CU_ASSERT(bytes_eq(rec.key, e->key));
        CU_ASSERT(bytes_eq(rec.value, e->value));
        CU_ASSERT_EQUAL(rec.header_count, e->nh);
        size_t pos = 0;
        kp_record_header h;
        int j = 0;
        while (kp_record_header_next(&rec, &pos, &h) == 1) {
            CU_ASSERT_FATAL(j < e->nh);
            CU_ASSERT(kp_str_eq(h.key, e->hk[j]));
            CU_ASSERT(bytes_eq(h.value, j == 1 ? NULL : e->hv[j]));
            j++;
        }
        CU_ASSERT_EQUAL(j, e->nh);
        CU_ASSERT_EQUAL(pos, rec.headers_size);
        i++;
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(i, nrec);
    CU_ASSERT_EQUAL(kp_record_iter_next(&it, &rec), 0); /* stays done */
    kp_writer_free(&plain);
}

static const int codecs[] = {KP_CODEC_NONE, KP_CODEC_GZIP, KP_CODEC_SNAPPY, KP_CODEC_LZ4, KP_CODEC_ZSTD};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

static void test_round_trip(void)
{
    for (size_t c = 0; c < NCODECS; c++) {
        kp_writer w;
        kp_writer_init(&w, 0);
        CU_ASSERT_EQUAL_FATAL(build(&w, codecs[c], 1000, NREC), KP_OK);
        kp_batch b;
        CU_ASSERT_EQUAL_FATAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
        CU_ASSERT_EQUAL(b.size, w.len);
        CU_ASSERT_PTR_EQUAL(b.data, w.buf);
        CU_ASSERT_EQUAL(b.h.batch_length, (int32_t)(w.len - KP_BATCH_LOG_OVERHEAD));
        CU_ASSERT_EQUAL(b.h.base_offset, 1000);
        CU_ASSERT_EQUAL(b.h.magic, 2);
        CU_ASSERT_EQUAL(b.h.partition_leader_epoch, -1);
        CU_ASSERT_EQUAL(b.h.attributes, codecs[c]);
        CU_ASSERT_EQUAL(b.h.record_count, NREC);
        CU_ASSERT_EQUAL(b.h.last_offset_delta, NREC - 1);
        CU_ASSERT_EQUAL(b.h.base_timestamp, recs[0].ts);
        CU_ASSERT_EQUAL(b.h.max_timestamp, recs[NREC - 1].ts);
        CU_ASSERT_EQUAL(b.h.producer_id, 4242);
        CU_ASSERT_EQUAL(b.h.producer_epoch, 7);
        CU_ASSERT_EQUAL(b.h.base_sequence, 100);
        CU_ASSERT_EQUAL(b.records_size, w.len - KP_BATCH_HEADER_SIZE);
        check_batch_records(&b, NREC);
        kp_writer_free(&w);
    }
}

static void test_builder_exact_bytes(void)
{
    /* The layout of record-batch.md, byte for byte. */
    kp_writer w;
    kp_writer_init(&w, 0);
    kp_batch_builder b;
    kp_batch_builder_init(&b, 5, KP_CODEC_NONE);
    kp_batch_builder_set_producer(&b, 77, 3, 10, 1);
    CU_ASSERT_EQUAL(kp_batch_builder_add(&b, 1000, bytes_of("k"), bytes_of("v"), NULL, 0), KP_OK);
    CU_ASSERT_EQUAL(kp_batch_builder_finish(&b, &w), KP_OK);
    kp_batch_builder_free(&b);
    static const uint8_t want[] = {0,    0,    0,    0,    0,    0,   0,    5, /* base offset */
                                   0,    0,    0,    58,                       /* batch length */
                                   0xff, 0xff, 0xff, 0xff,                     /* leader epoch */
                                   2,                                          /* magic */
                                   0,    0,    0,    0,                        /* crc (checked below) */
                                   0,    0x10,                                 /* attributes: transactional */
                                   0,    0,    0,    0,                        /* last offset delta */
                                   0,    0,    0,    0,    0,    0,   0x03, 0xe8, /* base timestamp */
                                   0,    0,    0,    0,    0,    0,   0x03, 0xe8, /* max timestamp */
                                   0,    0,    0,    0,    0,    0,   0,    77,   /* producer id */
                                   0,    3,                                       /* producer epoch */
                                   0,    0,    0,    10,                          /* base sequence */
                                   0,    0,    0,    1,                           /* record count */
                                   0x10, 0,    0,    0,    0x02, 'k', 0x02, 'v',
                                   0x00}; /* length 8, attr, ts, off, k, v, 0 hdrs */
    CU_ASSERT_EQUAL_FATAL(w.len, sizeof(want));
    CU_ASSERT(memcmp(w.buf, want, 17) == 0);
    CU_ASSERT(memcmp(w.buf + 21, want + 21, sizeof(want) - 21) == 0);
    CU_ASSERT_EQUAL(kp_be32(w.buf + 17), kp_crc32c_sw(0, w.buf + 21, w.len - 21));
    CU_ASSERT_EQUAL(b.h.crc, kp_be32(w.buf + 17));
    kp_writer_free(&w);
}

/* ---- batches written by another client -------------------------------- */

/* Encodings published with Sarama (a Go Kafka client) for one record with
 * key 01020304, value 050607 and header 08090a=0b0c at baseTimestamp
 * 1479847795000 + 5 ms. They pin our CRC and record layout to another
 * implementation and bring gzip with an mtime, and an LZ4 frame with content
 * checksum and 4 MiB blocks, which our encoder never writes. */
#define SARAMA_HEADER(len, c0, c1, c2, c3, codec)                                                            \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, len, 0, 0, 0, 0, 2, c0, c1, c2, c3, 0, codec, 0, 0, 0, 0, 0, 0, 1, 88,  \
        141, 205, 89, 56, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
#define SARAMA_RECORD 40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12

static const uint8_t sarama_plain[] = {SARAMA_HEADER(70, 84, 121, 97, 253, 0), SARAMA_RECORD};
static const uint8_t sarama_gzip[] = {SARAMA_HEADER(95, 231, 74, 206, 165, 1),
                                      31,
                                      139,
                                      8,
                                      0,
                                      0,
                                      9,
                                      110,
                                      136,
                                      0,
                                      255,
                                      0,
                                      21,
                                      0,
                                      234,
                                      255,
                                      SARAMA_RECORD,
                                      3,
                                      0,
                                      173,
                                      201,
                                      88,
                                      103,
                                      21,
                                      0,
                                      0,
                                      0};
static const uint8_t sarama_snappy[] = {SARAMA_HEADER(72, 21, 0, 159, 97, 2), 21, 80, SARAMA_RECORD};
static const uint8_t sarama_lz4[] = {SARAMA_HEADER(89, 169, 74, 119, 197, 3),
                                     4,
                                     34,
                                     77,
                                     24,
                                     100,
                                     112,
                                     185,
                                     21,
                                     0,
                                     0,
                                     128,
                                     SARAMA_RECORD,
                                     0,
                                     0,
                                     0,
                                     0,
                                     12,
                                     59,
                                     239,
                                     146};

static void check_sarama(const uint8_t *p, size_t n, uint32_t crc, int codec)
{
    kp_batch b;
    CU_ASSERT_EQUAL_FATAL(kp_batch_validate(p, n, &b), KP_OK);
    CU_ASSERT_EQUAL(b.h.crc, crc);
    CU_ASSERT_EQUAL(b.h.attributes & KP_ATTR_CODEC_MASK, codec);
    kp_writer plain;
    kp_writer_init(&plain, 0);
    CU_ASSERT_EQUAL_FATAL(kp_decompress(codec, b.records, b.records_size, 1024, &plain), KP_OK);
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, &b.h, plain.buf, plain.len);
    CU_ASSERT_EQUAL_FATAL(kp_record_iter_next(&it, &rec), 1);
    CU_ASSERT_EQUAL(rec.offset, 0);
    CU_ASSERT_EQUAL(rec.timestamp, 1479847795005LL);
    CU_ASSERT(rec.key.len == 4 && memcmp(rec.key.p, "\1\2\3\4", 4) == 0);
    CU_ASSERT(rec.value.len == 3 && memcmp(rec.value.p, "\5\6\7", 3) == 0);
    size_t pos = 0;
    kp_record_header h;
    CU_ASSERT_EQUAL(kp_record_header_next(&rec, &pos, &h), 1);
    CU_ASSERT(h.key.len == 3 && memcmp(h.key.p, "\10\11\12", 3) == 0);
    CU_ASSERT(h.value.len == 2 && memcmp(h.value.p, "\13\14", 2) == 0);
    CU_ASSERT_EQUAL(kp_record_header_next(&rec, &pos, &h), 0);
    CU_ASSERT_EQUAL(kp_record_iter_next(&it, &rec), 0);
    kp_writer_free(&plain);
}

static void test_other_client_batches(void)
{
    CU_ASSERT_EQUAL(sizeof(sarama_plain), 82);
    check_sarama(sarama_plain, sizeof(sarama_plain), 0x547961FDu, KP_CODEC_NONE);
    check_sarama(sarama_gzip, sizeof(sarama_gzip), 0xE74ACEA5u, KP_CODEC_GZIP);
    check_sarama(sarama_snappy, sizeof(sarama_snappy), 0x15009F61u, KP_CODEC_SNAPPY);
    check_sarama(sarama_lz4, sizeof(sarama_lz4), 0xA94A77C5u, KP_CODEC_LZ4);

    /* Empty batches (what compaction can leave), plain and control. */
    uint8_t empty[61] = {0};
    kp_put_be32(empty + 8, 49);
    empty[16] = 2;
    kp_put_be32(empty + 17, 0x595FB7DDu);
    kp_batch b;
    CU_ASSERT_EQUAL(kp_batch_validate(empty, sizeof(empty), &b), KP_OK);
    CU_ASSERT_EQUAL(b.h.record_count, 0);
    CU_ASSERT_EQUAL(b.records_size, 0);
    empty[22] = KP_ATTR_CONTROL;
    kp_put_be32(empty + 17, 0x512E43D9u);
    CU_ASSERT_EQUAL(kp_batch_validate(empty, sizeof(empty), &b), KP_OK);
}

/* ---- truncation and lengths ------------------------------------------- */

static void test_every_prefix_fails(void)
{
    for (size_t c = 0; c < NCODECS; c++) {
        kp_writer w;
        kp_writer_init(&w, 0);
        CU_ASSERT_EQUAL_FATAL(build(&w, codecs[c], 0, 20), KP_OK);
        for (size_t cut = 0; cut < w.len; cut++) {
            /* A copy of exactly cut bytes, so ASan sees any over-read. */
            uint8_t *p = malloc(cut ? cut : 1);
            memcpy(p, w.buf, cut);
            kp_batch b;
            CU_ASSERT_EQUAL(kp_batch_validate(p, cut, &b), KP_E_SHORT);
            kp_batch_iter it;
            kp_batch_iter_init(&it, p, cut, 1);
            CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &b), 0);
            CU_ASSERT_EQUAL(it.partial, cut > 0);
            CU_ASSERT_PTR_EQUAL(it.p, p);
            free(p);
        }
        kp_writer_free(&w);
    }
    uint8_t hdr[60] = {0};
    kp_batch_header h;
    CU_ASSERT_EQUAL(kp_batch_header_parse(hdr, sizeof(hdr), &h), KP_E_SHORT);
}

static void test_batch_length(void)
{
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL_FATAL(build(&w, KP_CODEC_NONE, 0, 3), KP_OK);
    uint8_t *p = w.buf;
    uint32_t good = kp_be32(p + 8);
    kp_batch b;
    static const uint32_t bad_invalid[] = {0xffffffffu, 0x80000000u, 0, 1, 48};
    for (size_t i = 0; i < sizeof(bad_invalid) / sizeof(bad_invalid[0]); i++) {
        kp_put_be32(p + 8, bad_invalid[i]);
        CU_ASSERT_EQUAL(kp_batch_validate(p, w.len, &b), KP_E_INVALID);
    }
    static const uint32_t bad_short[] = {0x7fffffffu, 0x7ffffff0u};
    for (size_t i = 0; i < 2; i++) {
        kp_put_be32(p + 8, bad_short[i]);
        CU_ASSERT_EQUAL(kp_batch_validate(p, w.len, &b), KP_E_SHORT);
    }
    kp_put_be32(p + 8, good + 1);
    CU_ASSERT_EQUAL(kp_batch_validate(p, w.len, &b), KP_E_SHORT);
    /* One byte too few: the records section no longer ends on a record. */
    kp_put_be32(p + 8, good - 1);
    fix_crc(p, w.len - 1);
    CU_ASSERT_EQUAL(kp_batch_validate(p, w.len, &b), KP_E_INVALID);
    /* The minimum (no records) with a count of 3 is a lie. */
    kp_put_be32(p + 8, 49);
    fix_crc(p, 61);
    CU_ASSERT_EQUAL(kp_batch_validate(p, w.len, &b), KP_E_INVALID);
    kp_writer_free(&w);
}

static void test_crc_flips(void)
{
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL_FATAL(build(&w, KP_CODEC_LZ4, 0, 30), KP_OK);
    kp_batch b;
    /* Any byte the CRC covers, and the CRC itself. */
    for (size_t i = 17; i < w.len; i++) {
        uint8_t saved = w.buf[i];
        w.buf[i] ^= (uint8_t)(1u << (i % 8));
        CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_E_CRC);
        w.buf[i] = saved;
    }
    CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
    /* Base offset and leader epoch are outside it. */
    for (size_t i = 0; i < 8; i++) {
        w.buf[i] ^= 0x5a;
        w.buf[12 + i % 4] ^= 0xa5;
        CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
        w.buf[i] ^= 0x5a;
        w.buf[12 + i % 4] ^= 0xa5;
    }
    /* The iterator can skip the check (a trusted local log) or not. */
    w.buf[w.len - 1] ^= 1;
    kp_batch_iter it;
    kp_batch_iter_init(&it, w.buf, w.len, 1);
    CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &b), KP_E_CRC);
    kp_batch_iter_init(&it, w.buf, w.len, 0);
    CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &b), 1);
    kp_writer_free(&w);
}

static void test_magic(void)
{
    /* Legacy magic 0 and 1 messages (offset, size, crc, magic, attributes,
     * [timestamp], null key, null value). */
    uint8_t v0[26] = {0};
    kp_put_be32(v0 + 8, 14);
    v0[16] = 0;
    kp_put_be32(v0 + 18, 0xffffffff);
    kp_put_be32(v0 + 22, 0xffffffff);
    uint8_t v1[34] = {0};
    kp_put_be32(v1 + 8, 22);
    v1[16] = 1;
    kp_put_be32(v1 + 26, 0xffffffff);
    kp_put_be32(v1 + 30, 0xffffffff);
    kp_batch b;
    CU_ASSERT_EQUAL(kp_batch_validate(v0, sizeof(v0), &b), KP_E_UNSUPPORTED);
    CU_ASSERT_EQUAL(kp_batch_validate(v1, sizeof(v1), &b), KP_E_UNSUPPORTED);
    kp_batch_iter it;
    kp_batch_iter_init(&it, v1, sizeof(v1), 1);
    CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &b), KP_E_UNSUPPORTED);

    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL_FATAL(build(&w, KP_CODEC_NONE, 0, 2), KP_OK);
    w.buf[16] = 1;
    CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_E_UNSUPPORTED);
    w.buf[16] = 0;
    CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_E_UNSUPPORTED);
    w.buf[16] = 3;
    CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_E_INVALID);
    w.buf[16] = 0xff;
    CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_E_INVALID);
    w.buf[16] = 2;
    /* Codec ids 5-7 do not exist. */
    w.buf[22] = 5;
    fix_crc(w.buf, w.len);
    CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_E_UNSUPPORTED);
    kp_writer_free(&w);
}

/* ---- hostile records --------------------------------------------------- */

static void test_counts(void)
{
    /* One good record: len 8, attr, ts 0, off 0, key "k", value "v", 0 headers. */
    static const uint8_t one[] = {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), 1, 0), KP_OK);
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), INT32_MAX, INT32_MAX), KP_E_INVALID);
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), INT32_MAX, 0), KP_E_INVALID);
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), 2, 1), KP_E_INVALID);
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), 0, 0), KP_E_INVALID);
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), -1, 0), KP_E_INVALID);
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), INT32_MIN, 0), KP_E_INVALID);
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), 1, -1), KP_E_INVALID);
    /* A compacted batch: fewer records than the offset range. */
    CU_ASSERT_EQUAL(validate_raw(one, sizeof(one), 1, 9), KP_OK);
    CU_ASSERT_EQUAL(validate_raw(one, 0, 0, 9), KP_OK);

    /* A compressed batch's count cannot be checked without decompressing;
     * the record iterator catches it. */
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL_FATAL(build(&w, KP_CODEC_ZSTD, 0, 5), KP_OK);
    kp_put_be32(w.buf + 57, INT32_MAX);
    kp_put_be32(w.buf + 23, INT32_MAX);
    fix_crc(w.buf, w.len);
    kp_batch b;
    CU_ASSERT_EQUAL_FATAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
    kp_writer plain;
    kp_writer_init(&plain, 0);
    CU_ASSERT_EQUAL_FATAL(kp_decompress(KP_CODEC_ZSTD, b.records, b.records_size, MAX_OUT, &plain), KP_OK);
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, &b.h, plain.buf, plain.len);
    int n = 0, rc;
    while ((rc = kp_record_iter_next(&it, &rec)) == 1)
        n++;
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_EQUAL(rc, KP_E_INVALID);
    CU_ASSERT_EQUAL(kp_record_iter_next(&it, &rec), KP_E_INVALID); /* sticky */
    kp_writer_free(&plain);
    kp_writer_free(&w);
}

static void test_bad_records(void)
{
    /* Each section holds one record unless noted; the header says 1 record,
     * last offset delta 0. */
    static const struct {
        const char *why;
        uint8_t b[40];
        size_t n;
        int32_t count, lod;
    } cases[] = {
        {"length varint of 10 bytes of 0xff",
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         10,
         1,
         0},
        {"length varint overflowing 32 bits", {0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0}, 11, 1, 0},
        {"length -1", {0x01, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0}, 9, 1, 0},
        {"length 0", {0x00, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0}, 9, 1, 0},
        {"length past the section", {0x12, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0}, 9, 1, 0},
        {"length longer than the fields", {0x12, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0, 0}, 10, 1, 0},
        {"length shorter than the fields", {0x0e, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0}, 9, 1, 0},
        {"timestamp varlong of 11 bytes of 0xff",
         {0x28, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0},
         21,
         1,
         0},
        {"key length varint overflow",
         {0x18, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0},
         13,
         1,
         0},
        {"key length -2", {0x10, 0, 0, 0, 0x03, 'k', 0x02, 'v', 0}, 9, 1, 0},
        {"key length past the record", {0x10, 0, 0, 0, 0x0e, 'k', 0x02, 'v', 0}, 9, 1, 0},
        {"value length -2", {0x10, 0, 0, 0, 0x02, 'k', 0x03, 'v', 0}, 9, 1, 0},
        {"header count -1", {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x01}, 9, 1, 0},
        {"header count huge", {0x18, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0xfe, 0xff, 0xff, 0xff, 0x0f}, 13, 1, 0},
        {"header count 1, no header", {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x02}, 9, 1, 0},
        {"header with null key", {0x14, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x02, 0x01, 0x00}, 11, 1, 0},
        {"header value past the record",
         {0x16, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x02, 0x00, 0x04, 'x'},
         12,
         1,
         0},
        {"offset delta above last_offset_delta", {0x10, 0, 0, 0x02, 0x02, 'k', 0x02, 'v', 0}, 9, 1, 0},
        {"negative offset delta", {0x10, 0, 0, 0x01, 0x02, 'k', 0x02, 'v', 0}, 9, 1, 0},
        {"offset deltas not increasing",
         {0x10, 0, 0, 0x02, 0x02, 'k', 0x02, 'v', 0, 0x10, 0, 0, 0x02, 0x02, 'k', 0x02, 'v', 0},
         18,
         2,
         1},
        {"trailing bytes after the last record", {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0, 0}, 10, 1, 0},
        {"fewer records than counted", {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0}, 9, 2, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = validate_raw(cases[i].b, cases[i].n, cases[i].count, cases[i].lod);
        if (rc != KP_E_INVALID)
            printf("\n  case \"%s\": got %d", cases[i].why, rc);
        CU_ASSERT_EQUAL(rc, KP_E_INVALID);
    }
    /* ...and their well-formed neighbours pass. */
    static const uint8_t two[] = {0x10, 0, 0, 0x00, 0x02, 'k', 0x02, 'v', 0,
                                  0x10, 0, 0, 0x04, 0x02, 'k', 0x02, 'v', 0};
    CU_ASSERT_EQUAL(validate_raw(two, sizeof(two), 2, 2), KP_OK);
    static const uint8_t hdr[] = {0x12, 0, 0, 0, 0x01, 0x01, 0x02, 0x02, 'x', 0x01};
    CU_ASSERT_EQUAL(validate_raw(hdr, sizeof(hdr), 1, 0), KP_OK);
}

static void test_mutated_records(void)
{
    /* Random damage behind a recomputed CRC reaches the record parser: it
     * must answer OK or KP_E_INVALID and never read outside the batch. */
    kp_writer w;
    kp_writer_init(&w, 0);
    /* Short fields, so most mutations land on lengths, counts and deltas. */
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    kp_record_header hs[2] = {{kp_str_c("a"), bytes_of("1")}, {kp_str_c("bb"), KP_BYTES_NULL}};
    for (int i = 0; i < 12; i++)
        CU_ASSERT_EQUAL(kp_batch_builder_add(&bb, 1000 + i, i % 3 ? bytes_of("k") : KP_BYTES_NULL,
                                             i % 4 ? bytes_of("vv") : KP_BYTES_NULL, hs, i % 3),
                        KP_OK);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, &w), KP_OK);
    kp_batch_builder_free(&bb);
    uint8_t *p = malloc(w.len);
    int ok = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(p, w.buf, w.len);
        int flips = 1 + (int)(rng() % 3);
        for (int k = 0; k < flips; k++) {
            size_t at = KP_BATCH_CRC_START + rng() % (w.len - KP_BATCH_CRC_START);
            p[at] = (rng() & 1) ? (uint8_t)rng() : (uint8_t)(p[at] ^ (1u << (rng() % 8)));
        }
        fix_crc(p, w.len);
        kp_batch b;
        int rc = kp_batch_validate(p, w.len, &b);
        CU_ASSERT(rc == KP_OK || rc == KP_E_INVALID || rc == KP_E_UNSUPPORTED);
        if (rc == KP_OK && (b.h.attributes & KP_ATTR_CODEC_MASK) == KP_CODEC_NONE) {
            ok++;
            kp_record_iter it;
            kp_record rec;
            kp_record_iter_init(&it, &b.h, b.records, b.records_size);
            while (kp_record_iter_next(&it, &rec) == 1) {
                volatile uint8_t sink = 0;
                for (int32_t k = 0; k < rec.key.len; k++)
                    sink ^= rec.key.p[k];
                for (int32_t k = 0; k < rec.value.len; k++)
                    sink ^= rec.value.p[k];
                size_t pos = 0;
                kp_record_header h;
                int hn = 0, hr;
                while ((hr = kp_record_header_next(&rec, &pos, &h)) == 1)
                    hn++;
                CU_ASSERT_EQUAL(hr, 0);
                CU_ASSERT_EQUAL(hn, rec.header_count);
                (void)sink;
            }
        }
    }
    printf("\n  %d of 20000 mutated batches still valid", ok);
    free(p);
    kp_writer_free(&w);
}

static void test_random_record_sections(void)
{
    /* The record iterator on its own, over pure noise. */
    for (int i = 0; i < 20000; i++) {
        size_t n = rng() % 64;
        uint8_t *p = malloc(n ? n : 1);
        for (size_t k = 0; k < n; k++)
            p[k] = (uint8_t)rng();
        kp_batch_header h = {0};
        h.record_count = (int32_t)(rng() % 5);
        h.last_offset_delta = (int32_t)(rng() % 8);
        kp_record_iter it;
        kp_record rec;
        kp_record_iter_init(&it, &h, p, n);
        int rc;
        while ((rc = kp_record_iter_next(&it, &rec)) == 1)
            ;
        CU_ASSERT(rc == 0 || rc == KP_E_INVALID);
        free(p);
    }
}

/* ---- edits, iteration, control batches --------------------------------- */

static void test_set_base_offset_and_epoch(void)
{
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL_FATAL(build(&w, KP_CODEC_GZIP, 0, 10), KP_OK);
    uint32_t crc = kp_be32(w.buf + 17);
    kp_batch_set_base_offset(w.buf, 123456789012LL);
    kp_batch_set_leader_epoch(w.buf, 42);
    CU_ASSERT_EQUAL(kp_be32(w.buf + 17), crc);
    kp_batch b;
    CU_ASSERT_EQUAL_FATAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
    CU_ASSERT_EQUAL(b.h.base_offset, 123456789012LL);
    CU_ASSERT_EQUAL(b.h.partition_leader_epoch, 42);
    check_batch_records(&b, 10);
    kp_writer_free(&w);
}

static void test_set_max_timestamp(void)
{
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL_FATAL(build(&w, KP_CODEC_NONE, 0, 10), KP_OK);
    uint32_t crc = kp_be32(w.buf + 17);
    /* Without a new CRC a changed maxTimestamp is caught. */
    kp_put_be64(w.buf + 35, 99);
    kp_batch b;
    CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &b), KP_E_CRC);

    const int64_t now = 1800000000000LL;
    kp_batch_set_max_timestamp(w.buf, w.len, now, 1);
    CU_ASSERT_NOT_EQUAL(kp_be32(w.buf + 17), crc);
    CU_ASSERT_EQUAL_FATAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
    CU_ASSERT_EQUAL(b.h.max_timestamp, now);
    CU_ASSERT(b.h.attributes & KP_ATTR_LOG_APPEND_TIME);
    /* LogAppendTime: every record reads the batch's timestamp. */
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, &b.h, b.records, b.records_size);
    int n = 0;
    while (kp_record_iter_next(&it, &rec) == 1) {
        CU_ASSERT_EQUAL(rec.timestamp, now);
        n++;
    }
    CU_ASSERT_EQUAL(n, 10);

    /* Back to CreateTime with the original maximum: the original bytes. */
    kp_batch_set_max_timestamp(w.buf, w.len, recs[9].ts, 0);
    CU_ASSERT_EQUAL(kp_be32(w.buf + 17), crc);
    CU_ASSERT_EQUAL_FATAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
    CU_ASSERT_FALSE(b.h.attributes & KP_ATTR_LOG_APPEND_TIME);

    /* A size that does not hold the batch leaves it alone. */
    kp_batch_set_max_timestamp(w.buf, w.len - 1, now, 1);
    CU_ASSERT_EQUAL(kp_be32(w.buf + 17), crc);
    kp_writer_free(&w);
}

static void test_batch_iterator(void)
{
    kp_writer w;
    kp_writer_init(&w, 0);
    for (size_t c = 0; c < NCODECS; c++)
        CU_ASSERT_EQUAL_FATAL(build(&w, codecs[c], (int64_t)c * 1000, 8), KP_OK);
    size_t whole = w.len;
    CU_ASSERT_EQUAL_FATAL(build(&w, KP_CODEC_NONE, 9000, 8), KP_OK);

    /* All batches, then a trailing one cut short (as Fetch may send). */
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, w.buf, w.len - 7, 1);
    size_t n = 0;
    int rc;
    while ((rc = kp_batch_iter_next(&it, &b)) == 1) {
        CU_ASSERT_EQUAL(b.h.base_offset, (int64_t)n * 1000);
        CU_ASSERT_EQUAL(b.h.attributes & KP_ATTR_CODEC_MASK, codecs[n]);
        check_batch_records(&b, 8);
        n++;
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(n, NCODECS);
    CU_ASSERT_EQUAL(it.partial, 1);
    CU_ASSERT_PTR_EQUAL(it.p, w.buf + whole);

    /* A corrupt batch in the middle stops the walk where it starts. */
    kp_batch_iter_init(&it, w.buf, w.len, 1);
    CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &b), 1);
    const uint8_t *second = it.p;
    w.buf[(size_t)(second - w.buf) + 70] ^= 0x40;
    CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &b), KP_E_CRC);
    CU_ASSERT_PTR_EQUAL(it.p, second);
    CU_ASSERT_EQUAL(it.partial, 0);

    kp_batch_iter_init(&it, w.buf, 0, 1);
    CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &b), 0);
    CU_ASSERT_EQUAL(it.partial, 0);
    kp_writer_free(&w);
}

static void test_control_batch(void)
{
    for (int commit = 0; commit <= 1; commit++) {
        kp_writer w;
        kp_writer_init(&w, 0);
        CU_ASSERT_EQUAL_FATAL(kp_batch_build_control(&w, 77, 5001, 3, commit, 9, 1700000000123LL), KP_OK);
        kp_batch b;
        CU_ASSERT_EQUAL_FATAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
        CU_ASSERT_EQUAL(b.h.attributes, KP_ATTR_CONTROL | KP_ATTR_TRANSACTIONAL);
        CU_ASSERT_EQUAL(b.h.base_offset, 77);
        CU_ASSERT_EQUAL(b.h.producer_id, 5001);
        CU_ASSERT_EQUAL(b.h.producer_epoch, 3);
        CU_ASSERT_EQUAL(b.h.base_sequence, -1);
        CU_ASSERT_EQUAL(b.h.record_count, 1);
        CU_ASSERT_EQUAL(b.h.max_timestamp, 1700000000123LL);
        kp_record_iter it;
        kp_record rec;
        kp_record_iter_init(&it, &b.h, b.records, b.records_size);
        CU_ASSERT_EQUAL_FATAL(kp_record_iter_next(&it, &rec), 1);
        CU_ASSERT(rec.key.len == 4 && memcmp(rec.key.p, commit ? "\0\0\0\1" : "\0\0\0\0", 4) == 0);
        CU_ASSERT(rec.value.len == 6 && memcmp(rec.value.p, "\0\0\0\0\0\11", 6) == 0);
        int16_t type;
        int32_t epoch;
        CU_ASSERT_EQUAL(kp_control_record_parse(&rec, &type, &epoch), KP_OK);
        CU_ASSERT_EQUAL(type, commit ? KP_CONTROL_COMMIT : KP_CONTROL_ABORT);
        CU_ASSERT_EQUAL(epoch, 9);
        CU_ASSERT_EQUAL(kp_record_iter_next(&it, &rec), 0);

        /* Damaged control records. */
        kp_record bad = rec;
        bad.key.len = 3;
        CU_ASSERT_EQUAL(kp_control_record_parse(&bad, &type, &epoch), KP_E_INVALID);
        bad = rec;
        bad.key = KP_BYTES_NULL;
        CU_ASSERT_EQUAL(kp_control_record_parse(&bad, &type, &epoch), KP_E_INVALID);
        bad = rec;
        bad.value.len = 5;
        CU_ASSERT_EQUAL(kp_control_record_parse(&bad, &type, &epoch), KP_E_INVALID);
        static const uint8_t neg_version[4] = {0xff, 0xff, 0, 1};
        bad = rec;
        bad.key.p = neg_version;
        CU_ASSERT_EQUAL(kp_control_record_parse(&bad, &type, &epoch), KP_E_INVALID);
        /* Other control types (KRaft's) carry other values. */
        static const uint8_t leader_change[4] = {0, 0, 0, 2};
        bad = rec;
        bad.key.p = leader_change;
        bad.value = KP_BYTES_NULL;
        CU_ASSERT_EQUAL(kp_control_record_parse(&bad, &type, &epoch), KP_OK);
        CU_ASSERT_EQUAL(type, 2);
        CU_ASSERT_EQUAL(epoch, -1);
        kp_writer_free(&w);
    }
}

static void test_builder_errors(void)
{
    kp_batch_builder b;
    kp_writer w;
    kp_writer_init(&w, 0);
    kp_batch_builder_init(&b, 0, KP_CODEC_NONE);
    CU_ASSERT_EQUAL(kp_batch_builder_finish(&b, &w), KP_E_INVALID); /* no records */
    CU_ASSERT_EQUAL(w.len, 0);
    CU_ASSERT_EQUAL(kp_batch_builder_add(&b, 0, (kp_bytes){NULL, -2}, KP_BYTES_NULL, NULL, 0), KP_E_INVALID);
    CU_ASSERT_EQUAL(kp_batch_builder_add(&b, 0, KP_BYTES_NULL, (kp_bytes){NULL, -5}, NULL, 0), KP_E_INVALID);
    CU_ASSERT_EQUAL(kp_batch_builder_add(&b, 0, KP_BYTES_NULL, KP_BYTES_NULL, NULL, 1), KP_E_INVALID);
    CU_ASSERT_EQUAL(kp_batch_builder_add(&b, 0, KP_BYTES_NULL, KP_BYTES_NULL, NULL, -1), KP_E_INVALID);
    kp_record_header nullkey = {KP_STR_NULL, KP_BYTES_NULL};
    CU_ASSERT_EQUAL(kp_batch_builder_add(&b, 0, KP_BYTES_NULL, KP_BYTES_NULL, &nullkey, 1), KP_E_INVALID);
    /* A record of null key and value is fine, and errors left no trace. */
    CU_ASSERT_EQUAL(kp_batch_builder_add(&b, 5, KP_BYTES_NULL, KP_BYTES_NULL, NULL, 0), KP_OK);
    CU_ASSERT_EQUAL(b.count, 1);
    /* A writer too small for the batch: nothing is left half-written. */
    uint8_t small[40];
    kp_writer f;
    kp_writer_init_fixed(&f, small, sizeof(small));
    CU_ASSERT_EQUAL(kp_batch_builder_finish(&b, &f), KP_E_NOMEM);
    CU_ASSERT_EQUAL(f.len, 0);
    CU_ASSERT_EQUAL(kp_batch_builder_finish(&b, &w), KP_OK);
    kp_batch v;
    CU_ASSERT_EQUAL(kp_batch_validate(w.buf, w.len, &v), KP_OK);
    kp_batch_builder_free(&b);
    kp_writer_free(&w);

    /* An unknown codec fails at finish. */
    kp_batch_builder_init(&b, 0, 6);
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL(kp_batch_builder_add(&b, 5, KP_BYTES_NULL, KP_BYTES_NULL, NULL, 0), KP_OK);
    CU_ASSERT_EQUAL(kp_batch_builder_finish(&b, &w), KP_E_UNSUPPORTED);
    CU_ASSERT_EQUAL(w.len, 0);
    kp_batch_builder_free(&b);
    kp_writer_free(&w);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("record batch", make_records, free_records);
    CU_add_test(s, "round trip, every codec", test_round_trip);
    CU_add_test(s, "builder exact bytes", test_builder_exact_bytes);
    CU_add_test(s, "batches from another client", test_other_client_batches);
    CU_add_test(s, "every prefix fails", test_every_prefix_fails);
    CU_add_test(s, "batch length", test_batch_length);
    CU_add_test(s, "crc flips", test_crc_flips);
    CU_add_test(s, "magic", test_magic);
    CU_add_test(s, "record counts", test_counts);
    CU_add_test(s, "bad records", test_bad_records);
    CU_add_test(s, "mutated records", test_mutated_records);
    CU_add_test(s, "random record sections", test_random_record_sections);
    CU_add_test(s, "set base offset and epoch", test_set_base_offset_and_epoch);
    CU_add_test(s, "set max timestamp", test_set_max_timestamp);
    CU_add_test(s, "batch iterator", test_batch_iterator);
    CU_add_test(s, "control batch", test_control_batch);
    CU_add_test(s, "builder errors", test_builder_errors);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_captures.c — request frames captured from real clients (librdkafka via
 * kcat, kafka-python, KafkaJS; see tests/capture/) decode to what those
 * clients were asked to send: header fields, Produce acks/timeout/topic/
 * partition, and every record of the batch (each codec) with key, value,
 * headers and timestamps. The expectations come from the capture scenarios,
 * not from decoding the bytes.
 */
#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "codec.h"
#include "frame.h"

typedef struct cap_hdr {
    const char *key, *value;
} cap_hdr;
typedef struct cap_rec {
    const char *key, *value;
    int nh;
    cap_hdr h[4];
    int64_t ts; /* -1: the client used the current time */
} cap_rec;
typedef struct cap_case {
    const char *file, *client;
    int api_key, api_version, correlation_id;
    const char *client_id;
    int is_produce, acks, timeout;
    const char *topic;
    int partition, codec;
    int64_t pid;
    int epoch, base_seq, nrec;
    const cap_rec *recs;
} cap_case;

#include "captures_expected.h"

#define NCASES (sizeof(cap_cases) / sizeof(cap_cases[0]))

static uint8_t *read_file(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "tests/data/captures/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int bytes_eq(kp_bytes b, const char *s)
{
    if (!s)
        return b.len < 0;
    size_t n = strlen(s);
    return b.len >= 0 && (size_t)b.len == n && memcmp(b.p, s, n) == 0;
}

/* Every record of the one batch in the Produce request matches the scenario. */
static void check_records(const cap_case *c, kp_bytes records)
{
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, records.p, (size_t)records.len, 1);
    CU_ASSERT_EQUAL_FATAL(kp_batch_iter_next(&it, &b), 1);
    CU_ASSERT_EQUAL(b.h.magic, 2);
    CU_ASSERT_EQUAL(b.h.attributes & KP_ATTR_CODEC_MASK, c->codec);
    CU_ASSERT_EQUAL(b.h.record_count, c->nrec);
    CU_ASSERT_EQUAL(b.h.last_offset_delta, c->nrec - 1);
    CU_ASSERT_EQUAL(b.h.producer_id, c->pid);
    CU_ASSERT_EQUAL(b.h.producer_epoch, c->epoch);
    CU_ASSERT_EQUAL(b.h.base_sequence, c->base_seq);

    kp_writer plain;
    kp_writer_init(&plain, 0);
    const uint8_t *recs = b.records;
    size_t recs_size = b.records_size;
    if (c->codec != KP_CODEC_NONE) {
        CU_ASSERT_EQUAL_FATAL(kp_decompress(c->codec, b.records, b.records_size, 1u << 20, &plain), 0);
        recs = plain.buf;
        recs_size = plain.len;
    }
    kp_record_iter ri;
    kp_record rec;
    kp_record_iter_init(&ri, &b.h, recs, recs_size);
    int i = 0;
    while (kp_record_iter_next(&ri, &rec) == 1) {
        CU_ASSERT_FATAL(i < c->nrec);
        const cap_rec *want = &c->recs[i];
        CU_ASSERT_EQUAL(rec.offset, i); /* offset deltas from a client start at 0 */
        CU_ASSERT_TRUE(bytes_eq(rec.key, want->key));
        CU_ASSERT_TRUE(bytes_eq(rec.value, want->value));
        if (want->ts >= 0)
            CU_ASSERT_EQUAL(rec.timestamp, want->ts);
        CU_ASSERT_EQUAL(rec.header_count, want->nh);
        size_t pos = 0;
        kp_record_header h;
        int nh = 0;
        while (kp_record_header_next(&rec, &pos, &h) == 1) {
            CU_ASSERT_FATAL(nh < want->nh);
            CU_ASSERT_TRUE(kp_str_eq(h.key, want->h[nh].key));
            CU_ASSERT_TRUE(bytes_eq(h.value, want->h[nh].value));
            nh++;
        }
        CU_ASSERT_EQUAL(nh, want->nh);
        i++;
    }
    CU_ASSERT_EQUAL(i, c->nrec);
    CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &b), 0); /* exactly one batch */
    kp_writer_free(&plain);
}

static void check_case(const cap_case *c)
{
    size_t len;
    uint8_t *buf = read_file(c->file, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_request req;
    int rc = kp_request_decode(buf, len, &a, &req);
    if (rc)
        fprintf(stderr, "%s: %s\n", c->file, kp_strerror(rc));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(req.hdr.request_api_key, c->api_key);
    CU_ASSERT_EQUAL(req.hdr.request_api_version, c->api_version);
    CU_ASSERT_EQUAL(req.hdr.correlation_id, c->correlation_id);
    CU_ASSERT_TRUE(kp_str_eq(req.hdr.client_id, c->client_id));

    /* The body is consumed exactly: re-encoding gives the same length. */
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL(req.api->request->encode(&w, (int16_t)c->api_version, req.body), 0);
    kp_writer_free(&w);

    if (c->api_key == KP_API_API_VERSIONS && c->api_version >= 3) {
        const kp_api_versions_request *av = req.body;
        /* librdkafka names itself; the version is in the client string. */
        CU_ASSERT_TRUE(kp_str_eq(av->client_software_name, "librdkafka"));
        CU_ASSERT_PTR_NOT_NULL(strstr(c->client, "librdkafka"));
        char ver[64];
        snprintf(ver, sizeof(ver), "librdkafka %.*s)", av->client_software_version.len,
                 av->client_software_version.p);
        CU_ASSERT_PTR_NOT_NULL(strstr(c->client, ver));
    }
    if (c->is_produce) {
        const kp_produce_request *p = req.body;
        CU_ASSERT_EQUAL(p->acks, c->acks);
        CU_ASSERT_EQUAL(p->timeout_ms, c->timeout);
        CU_ASSERT_TRUE(p->transactional_id.len < 0);
        CU_ASSERT_EQUAL_FATAL(p->topic_data_count, 1);
        CU_ASSERT_TRUE(kp_str_eq(p->topic_data[0].name, c->topic));
        CU_ASSERT_EQUAL_FATAL(p->topic_data[0].partition_data_count, 1);
        CU_ASSERT_EQUAL(p->topic_data[0].partition_data[0].index, c->partition);
        check_records(c, p->topic_data[0].partition_data[0].records);
    }
    kp_arena_reset(&a);
    free(buf);
}

static void test_all_captures(void)
{
    CU_ASSERT(NCASES >= 30);
    int produces = 0, codecs_seen = 0;
    for (size_t i = 0; i < NCASES; i++) {
        check_case(&cap_cases[i]);
        if (cap_cases[i].is_produce) {
            produces++;
            codecs_seen |= 1 << cap_cases[i].codec;
        }
    }
    CU_ASSERT(produces >= 10);
    CU_ASSERT_EQUAL(codecs_seen, 0x1f); /* none, gzip, snappy, lz4, zstd */
}

/* Every strict prefix of every captured frame is refused, never a crash. */
static void test_capture_prefixes(void)
{
    for (size_t i = 0; i < NCASES; i++) {
        size_t len;
        uint8_t *buf = read_file(cap_cases[i].file, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
        for (size_t n = 0; n < len; n++) {
            uint8_t *copy = malloc(n ? n : 1);
            memcpy(copy, buf, n);
            kp_arena a;
            kp_arena_init(&a, 0);
            kp_request req;
            /* Every field is mandatory, so no strict prefix is a request. */
            CU_ASSERT_NOT_EQUAL(kp_request_decode(copy, n, &a, &req), 0);
            kp_arena_reset(&a);
            free(copy);
        }
        free(buf);
    }
}

/* Flipping any one byte inside a captured batch's CRC range is detected. */
static void test_capture_crc_flips(void)
{
    for (size_t i = 0; i < NCASES; i++) {
        if (!cap_cases[i].is_produce)
            continue;
        size_t len;
        uint8_t *buf = read_file(cap_cases[i].file, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
        kp_arena a;
        kp_arena_init(&a, 0);
        kp_request req;
        CU_ASSERT_EQUAL_FATAL(kp_request_decode(buf, len, &a, &req), 0);
        const kp_produce_request *p = req.body;
        kp_bytes recs = p->topic_data[0].partition_data[0].records;
        uint8_t *batch = (uint8_t *)recs.p; /* points into buf, which we own */
        for (int32_t off = KP_BATCH_CRC_START; off < recs.len; off++) {
            batch[off] ^= 0x01;
            kp_batch b;
            CU_ASSERT_EQUAL(kp_batch_validate(batch, (size_t)recs.len, &b), KP_E_CRC);
            batch[off] ^= 0x01;
        }
        kp_batch b;
        CU_ASSERT_EQUAL(kp_batch_validate(batch, (size_t)recs.len, &b), 0);
        kp_arena_reset(&a);
        free(buf);
    }
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("captures", NULL, NULL);
    CU_add_test(s, "real client frames decode", test_all_captures);
    CU_add_test(s, "prefixes refused", test_capture_prefixes);
    CU_add_test(s, "crc flips detected", test_capture_crc_flips);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

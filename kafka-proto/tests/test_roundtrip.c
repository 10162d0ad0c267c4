/*
 * test_roundtrip.c — every message of the protocol, every valid version:
 * a fully populated message encodes, its size function agrees, it decodes to
 * the same values, re-encodes to the same bytes, and no strict prefix of the
 * encoding decodes. Also the API table and header-version rules.
 */
#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_messages.h"
#include "kp_messages_test.h"

static int roundtrip_one(const kp_msg_desc *d, int16_t v, uint32_t seed, int prefixes)
{
    kp_arena a1, a2;
    kp_arena_init(&a1, 0);
    kp_arena_init(&a2, 0);
    void *m1 = calloc(1, d->size), *m2 = calloc(1, d->size);
    kp_writer w1, w2;
    kp_writer_init(&w1, 0);
    kp_writer_init(&w2, 0);
    int ok = 0;

    kp_test_fill(d, m1, &a1, v, seed);
    int rc = d->encode(&w1, v, m1);
    if (rc) {
        fprintf(stderr, "%s v%d: encode failed: %s\n", d->name, v, kp_strerror(rc));
        goto out;
    }
    kp_writer cw;
    kp_writer_init_counting(&cw);
    if (d->encode(&cw, v, m1) || cw.len != w1.len) {
        fprintf(stderr, "%s v%d: size %zu != encoded %zu\n", d->name, v, cw.len, w1.len);
        goto out;
    }
    kp_reader r;
    kp_reader_init(&r, w1.buf, w1.len);
    rc = d->decode(&r, &a2, v, m2);
    if (rc || kp_reader_left(&r) != 0) {
        fprintf(stderr, "%s v%d: decode failed: %s, %zu bytes left\n", d->name, v, kp_strerror(rc),
                kp_reader_left(&r));
        goto out;
    }
    if (!kp_test_equal(d, m1, m2)) {
        fprintf(stderr, "%s v%d: decoded message differs\n", d->name, v);
        goto out;
    }
    if (d->encode(&w2, v, m2) || w2.len != w1.len || (w1.len && memcmp(w1.buf, w2.buf, w1.len) != 0)) {
        fprintf(stderr, "%s v%d: re-encoding differs\n", d->name, v);
        goto out;
    }
    if (prefixes) {
        for (size_t n = 0; n < w1.len; n++) {
            kp_arena a3;
            kp_arena_init(&a3, 0);
            void *m3 = calloc(1, d->size);
            /* A copy of exactly n bytes, so ASan catches any read past the end. */
            uint8_t *copy = malloc(n ? n : 1);
            memcpy(copy, w1.buf, n);
            kp_reader_init(&r, copy, n);
            rc = d->decode(&r, &a3, v, m3);
            free(copy);
            free(m3);
            kp_arena_reset(&a3);
            if (rc == 0) {
                fprintf(stderr, "%s v%d: prefix of %zu/%zu bytes decoded\n", d->name, v, n, w1.len);
                goto out;
            }
        }
    }
    ok = 1;
out:
    kp_writer_free(&w1);
    kp_writer_free(&w2);
    free(m1);
    free(m2);
    kp_arena_reset(&a1);
    kp_arena_reset(&a2);
    return ok;
}

static void test_every_message_every_version(void)
{
    int failures = 0, cases = 0;
    for (size_t i = 0; i < kp_msg_count; i++) {
        const kp_msg_desc *d = &kp_msgs[i];
        for (int v = d->min_version; v <= d->max_version; v++) {
            for (uint32_t seed = 1; seed <= 6; seed++) {
                cases++;
                if (!roundtrip_one(d, (int16_t)v, seed * 7919u + (uint32_t)i, seed == 1))
                    failures++;
            }
        }
    }
    printf("\n  round trips: %d cases over %zu messages, %d failures\n", cases, kp_msg_count, failures);
    CU_ASSERT_EQUAL(failures, 0);
}

static void test_invalid_versions_rejected(void)
{
    for (size_t i = 0; i < kp_msg_count; i++) {
        const kp_msg_desc *d = &kp_msgs[i];
        uint8_t buf[64] = {0};
        kp_arena a;
        kp_arena_init(&a, 0);
        void *m = calloc(1, d->size);
        kp_reader r;
        kp_reader_init(&r, buf, sizeof(buf));
        CU_ASSERT_EQUAL(d->decode(&r, &a, (int16_t)(d->max_version + 1), m), KP_E_VERSION);
        kp_reader_init(&r, buf, sizeof(buf));
        CU_ASSERT_EQUAL(d->decode(&r, &a, -1, m), KP_E_VERSION);
        d->init(m);
        kp_writer w;
        kp_writer_init(&w, 0);
        CU_ASSERT_EQUAL(d->encode(&w, (int16_t)(d->max_version + 1), m), KP_E_VERSION);
        kp_writer_free(&w);
        free(m);
        kp_arena_reset(&a);
    }
}

/* The table ApiVersions will be built from agrees with the definitions. */
static void test_api_table(void)
{
    const kp_api_desc *p = kp_api_lookup(KP_API_PRODUCE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->name, "Produce");
    CU_ASSERT_EQUAL(p->min_version, 0);
    CU_ASSERT_EQUAL(p->max_version, 12); /* v12: KIP-890 part 2, from Kafka 4.4.0's jar */
    CU_ASSERT_EQUAL(p->flexible_from, 9);
    CU_ASSERT_TRUE(p->broker_listener);
    CU_ASSERT_STRING_EQUAL(p->request->name, "ProduceRequest");
    CU_ASSERT_STRING_EQUAL(p->response->name, "ProduceResponse");
    const kp_api_desc *f = kp_api_lookup(KP_API_FETCH);
    CU_ASSERT_EQUAL(f->max_version, 17);
    CU_ASSERT_EQUAL(f->flexible_from, 12);
    CU_ASSERT_PTR_NULL(kp_api_lookup(-1));
    CU_ASSERT_PTR_NULL(kp_api_lookup(KP_API_KEY_MAX + 1));
    /* LeaderAndIsr is a ZooKeeper-era inter-broker API, never served to clients. */
    CU_ASSERT_FALSE(kp_api_lookup(KP_API_LEADER_AND_ISR)->broker_listener);
    /* Header versions: flexible requests use header v2, ApiVersions answers v0. */
    CU_ASSERT_EQUAL(kp_request_header_version(KP_API_PRODUCE, 8), 1);
    CU_ASSERT_EQUAL(kp_request_header_version(KP_API_PRODUCE, 9), 2);
    CU_ASSERT_EQUAL(kp_request_header_version(KP_API_CONTROLLED_SHUTDOWN, 0), 0);
    CU_ASSERT_EQUAL(kp_response_header_version(KP_API_PRODUCE, 9), 1);
    CU_ASSERT_EQUAL(kp_response_header_version(KP_API_API_VERSIONS, 3), 0);
    CU_ASSERT_EQUAL(kp_response_header_version(KP_API_METADATA, 8), 0);
    CU_ASSERT_EQUAL(kp_request_header_version(999, 0), -1);
}

/* A hand-built ApiVersions v3 request: flexible body with compact strings and
 * tagged sections, as librdkafka sends it. Checks the wire layout itself, not
 * only self-consistency. */
static void test_known_bytes_api_versions_v3(void)
{
    static const uint8_t body[] = {
        0x08, 'l', 'i', 'b', 'r', 'd', 'k', 'a', /* compact string: len 7 + 1 */
        0x06, '2', '.', '0', '.', '2',           /* compact string: len 5 + 1 */
        0x00,                                    /* no tagged fields */
    };
    kp_api_versions_request m;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_reader r;
    kp_reader_init(&r, body, sizeof(body));
    CU_ASSERT_EQUAL_FATAL(kp_api_versions_request_decode(&r, &a, 3, &m), 0);
    CU_ASSERT_TRUE(kp_str_eq(m.client_software_name, "librdka"));
    CU_ASSERT_TRUE(kp_str_eq(m.client_software_version, "2.0.2"));
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL(kp_api_versions_request_encode(&w, 3, &m), 0);
    CU_ASSERT_EQUAL(w.len, sizeof(body));
    CU_ASSERT_EQUAL(memcmp(w.buf, body, sizeof(body)), 0);
    kp_writer_free(&w);
    kp_arena_reset(&a);
}

/* Unknown tagged fields are skipped; known ones land in their field. */
static void test_tagged_fields(void)
{
    /* ApiVersionsResponse v3: error 0, one api key, throttle, then tags:
     * tag 1 (FinalizedFeaturesEpoch, int64) and an unknown tag 77. */
    static const uint8_t body[] = {
        0x00, 0x00,                                              /* error code */
        0x02, 0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x00,          /* 1 key: 18, 0..4, no tags */
        0x00, 0x00, 0x00, 0x05,                                  /* throttle 5 */
        0x02,                                                    /* 2 tagged fields */
        0x01, 0x08, 0,    0,    0,    0,    0,    0,    0, 0x2a, /* tag 1, 8 bytes: 42 */
        0x4d, 0x03, 0xaa, 0xbb, 0xcc,                            /* tag 77, 3 bytes, skipped */
    };
    kp_api_versions_response m;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_reader r;
    kp_reader_init(&r, body, sizeof(body));
    CU_ASSERT_EQUAL_FATAL(kp_api_versions_response_decode(&r, &a, 3, &m), 0);
    CU_ASSERT_EQUAL(kp_reader_left(&r), 0);
    CU_ASSERT_EQUAL(m.api_keys_count, 1);
    CU_ASSERT_EQUAL(m.api_keys[0].api_key, KP_API_API_VERSIONS);
    CU_ASSERT_EQUAL(m.api_keys[0].max_version, 4);
    CU_ASSERT_EQUAL(m.throttle_time_ms, 5);
    CU_ASSERT_EQUAL(m.finalized_features_epoch, 42);
    CU_ASSERT_EQUAL(m.supported_features_count, 0);
    /* Defaults for absent fields. */
    kp_api_versions_response d;
    kp_api_versions_response_init(&d);
    CU_ASSERT_EQUAL(d.finalized_features_epoch, -1);
    kp_arena_reset(&a);
}

/* Hostile counts and lengths. */
static void test_hostile_lengths(void)
{
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_metadata_request m;
    kp_reader r;
    /* Metadata v1: array count 2^31-1 with 4 bytes behind it. */
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 1, 'a', 0};
    kp_reader_init(&r, huge, sizeof(huge));
    CU_ASSERT_EQUAL(kp_metadata_request_decode(&r, &a, 1, &m), KP_E_INVALID);
    CU_ASSERT(a.used_total < 1024);
    /* Negative count other than -1. */
    static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xfe};
    kp_reader_init(&r, neg, sizeof(neg));
    CU_ASSERT_EQUAL(kp_metadata_request_decode(&r, &a, 1, &m), KP_E_INVALID);
    /* Null topics array is valid from v1 on (all topics), not in v0. */
    static const uint8_t null_arr[] = {0xff, 0xff, 0xff, 0xff};
    kp_reader_init(&r, null_arr, sizeof(null_arr));
    CU_ASSERT_EQUAL(kp_metadata_request_decode(&r, &a, 1, &m), 0);
    CU_ASSERT_EQUAL(m.topics_count, -1);
    kp_reader_init(&r, null_arr, sizeof(null_arr));
    CU_ASSERT_EQUAL(kp_metadata_request_decode(&r, &a, 0, &m), KP_E_INVALID);
    /* Compact array (v9) whose varint never ends. */
    static const uint8_t endless[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    kp_reader_init(&r, endless, sizeof(endless));
    CU_ASSERT_EQUAL(kp_metadata_request_decode(&r, &a, 9, &m), KP_E_INVALID);
    /* A string longer than the input. */
    kp_produce_request p;
    static const uint8_t longstr[] = {0x00, 0x50, 'x', 'y'};
    kp_reader_init(&r, longstr, sizeof(longstr));
    CU_ASSERT_EQUAL(kp_produce_request_decode(&r, &a, 3, &p), KP_E_SHORT);
    /* Non-nullable string sent as null: Produce topic name. */
    static const uint8_t nullname[] = {0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x03,
                                       0xe8, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff};
    kp_reader_init(&r, nullname, sizeof(nullname));
    CU_ASSERT_EQUAL(kp_produce_request_decode(&r, &a, 3, &p), KP_E_INVALID);
    kp_arena_reset(&a);
}

/* An arena cap bounds what a decoder may allocate, whatever the input says. */
static void test_arena_cap(void)
{
    kp_arena a;
    kp_arena_init(&a, 4096);
    CU_ASSERT_PTR_NOT_NULL(kp_arena_alloc(&a, 1000));
    CU_ASSERT_FALSE(kp_arena_failed(&a));
    CU_ASSERT_PTR_NULL(kp_arena_alloc(&a, 5000));
    /* The refusal is remembered even when later allocations fit again. */
    CU_ASSERT_TRUE(kp_arena_failed(&a));
    CU_ASSERT_PTR_NOT_NULL(kp_arena_alloc(&a, 100));
    CU_ASSERT_TRUE(kp_arena_failed(&a));
    CU_ASSERT_PTR_NULL(kp_arena_alloc(&a, SIZE_MAX));
    kp_arena_reset(&a);
    CU_ASSERT_FALSE(kp_arena_failed(&a));
    /* Copies keep every byte, NUL included, and put a NUL after them; null
     * stays null; a refused copy is null and sets the flag. */
    kp_str c = kp_arena_str(&a, (kp_str){"a\0b", 3});
    CU_ASSERT(c.len == 3 && memcmp(c.p, "a\0b", 4) == 0);
    CU_ASSERT_EQUAL(kp_arena_str(&a, KP_STR_NULL).len, -1);
    CU_ASSERT_EQUAL(kp_arena_strz(&a, NULL).len, -1);
    CU_ASSERT(kp_arena_strz(&a, "xyz").len == 3);
    kp_bytes b = kp_arena_bytes(&a, (kp_bytes){(const uint8_t *)"", 0});
    CU_ASSERT(b.len == 0 && b.p != NULL);
    CU_ASSERT_FALSE(kp_arena_failed(&a));
    char big[5000];
    memset(big, 'x', sizeof(big));
    CU_ASSERT_EQUAL(kp_arena_str(&a, (kp_str){big, (int32_t)sizeof(big)}).len, -1);
    CU_ASSERT_TRUE(kp_arena_failed(&a));
    kp_arena_reset(&a);
    /* A decode that runs out of arena leaves the flag set too. */
    kp_arena_init(&a, 64);
    uint8_t frame[] = {0, 0, 0, 3, 0, 1, 'a', 0, 1, 'b', 0, 1, 'c'}; /* three 1-byte strings in an array */
    kp_reader r;
    kp_reader_init(&r, frame, sizeof(frame));
    kp_describe_groups_request dg;
    kp_describe_groups_request_init(&dg);
    CU_ASSERT_FALSE(kp_arena_failed(&a));
    (void)kp_arena_alloc(&a, 40);
    CU_ASSERT_EQUAL(kp_describe_groups_request_decode(&r, &a, 0, &dg), KP_E_NOMEM);
    CU_ASSERT_TRUE(kp_arena_failed(&a));
    kp_arena_reset(&a);
}

/* Encoding refuses what a version cannot carry (as Kafka does), and accepts
 * a value in an ignorable field. */
static void test_unsupported_values(void)
{
    kp_metadata_request m;
    kp_metadata_request_init(&m);
    kp_writer w;
    kp_writer_init(&w, 0);
    m.topics_count = -1; /* all topics: impossible in v0 */
    CU_ASSERT_EQUAL(kp_metadata_request_encode(&w, 0, &m), KP_E_UNSUPPORTED);
    kp_writer_free(&w);
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL(kp_metadata_request_encode(&w, 1, &m), 0);
    kp_writer_free(&w);

    kp_api_versions_response resp;
    kp_api_versions_response_init(&resp);
    resp.throttle_time_ms = 100; /* ignorable: dropped in v0 */
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL(kp_api_versions_response_encode(&w, 0, &resp), 0);
    CU_ASSERT_EQUAL(w.len, 2 + 4);
    kp_writer_free(&w);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("roundtrip", NULL, NULL);
    CU_add_test(s, "every message, every version", test_every_message_every_version);
    CU_add_test(s, "invalid versions rejected", test_invalid_versions_rejected);
    CU_add_test(s, "api table", test_api_table);
    CU_add_test(s, "known bytes: ApiVersions v3", test_known_bytes_api_versions_v3);
    CU_add_test(s, "tagged fields", test_tagged_fields);
    CU_add_test(s, "hostile lengths", test_hostile_lengths);
    CU_add_test(s, "arena cap", test_arena_cap);
    CU_add_test(s, "unsupported values", test_unsupported_values);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

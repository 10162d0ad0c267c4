/*
 * test_writer_refs.c — a writer with by-reference bytes fields
 * (kp_writer_refs_enable): the frame rebuilt from its buffer and its refs is
 * byte for byte the frame a plain writer encodes, its length prefix counts
 * the referenced bytes, and only fields at or above the threshold are left
 * out of the buffer.
 *
 * Owns nothing beyond the test. Must not depend on the broker.
 */
#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "kp_messages.h"

/* buf with each ref's bytes inserted at its position, into out (malloc'd). */
static uint8_t *assemble(const kp_writer *w, size_t *len)
{
    *len = kp_writer_total(w);
    uint8_t *out = malloc(*len + 1);
    size_t o = 0, at = 0;
    for (size_t i = 0; i < w->nrefs; i++) {
        CU_ASSERT(w->refs[i].at >= at && w->refs[i].at <= w->len);
        memcpy(out + o, w->buf + at, w->refs[i].at - at);
        o += w->refs[i].at - at;
        memcpy(out + o, w->refs[i].p, w->refs[i].len);
        o += w->refs[i].len;
        at = w->refs[i].at;
    }
    memcpy(out + o, w->buf + at, w->len - at);
    o += w->len - at;
    CU_ASSERT_EQUAL(o, *len);
    return out;
}

static void check_version(int16_t v)
{
    /* Sizes around the threshold (4096): below, at, above, empty, null. */
    static const int32_t sizes[] = {5000, 10, 4096, 0, 9000, 4095, -1};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    uint8_t *rec[N];
    kp_fetch_response_partition_data pd[N];
    for (int i = 0; i < N; i++) {
        rec[i] = malloc(sizes[i] > 0 ? (size_t)sizes[i] : 1);
        for (int32_t k = 0; k < sizes[i]; k++)
            rec[i][k] = (uint8_t)(k * 7 + i);
        kp_fetch_response_partition_data_init(&pd[i]);
        pd[i].partition_index = i;
        pd[i].high_watermark = 1000 + i;
        pd[i].aborted_transactions_count = -1;
        pd[i].records = (kp_bytes){rec[i], sizes[i]};
    }
    kp_fetch_response_fetchable_topic_response tr;
    kp_fetch_response_fetchable_topic_response_init(&tr);
    tr.topic = kp_str_c("t");
    tr.partitions = pd;
    tr.partitions_count = N;
    kp_fetch_response resp;
    kp_fetch_response_init(&resp);
    resp.responses = &tr;
    resp.responses_count = 1;

    kp_writer plain, byref;
    kp_writer_init(&plain, 0);
    kp_writer_init(&byref, 0);
    kp_writer_refs_enable(&byref, 4096);
    CU_ASSERT_EQUAL_FATAL(kp_response_encode(&plain, KP_API_FETCH, v, 77, &resp), 0);
    CU_ASSERT_EQUAL_FATAL(kp_response_encode(&byref, KP_API_FETCH, v, 77, &resp), 0);
    CU_ASSERT_EQUAL(plain.nrefs, 0);
    CU_ASSERT_EQUAL(byref.nrefs, 3); /* 5000, 4096 and 9000 */
    CU_ASSERT_EQUAL(byref.ref_bytes, 5000 + 4096 + 9000);
    for (size_t i = 0; i < byref.nrefs; i++)
        CU_ASSERT(byref.refs[i].len >= 4096);
    size_t len = 0;
    uint8_t *whole = assemble(&byref, &len);
    CU_ASSERT_EQUAL(len, plain.len);
    int same = len == plain.len && memcmp(whole, plain.buf, len) == 0;
    if (!same)
        fprintf(stderr, "Fetch v%d: the frame by reference differs from the copied one\n", v);
    CU_ASSERT(same);
    CU_ASSERT_EQUAL(kp_be32(byref.buf), (uint32_t)(len - 4));
    free(whole);
    kp_writer_free(&plain);
    kp_writer_free(&byref);
    CU_ASSERT_PTR_NULL(byref.refs);
    CU_ASSERT_EQUAL(byref.ref_bytes, 0);
    for (int i = 0; i < N; i++)
        free(rec[i]);
}

static void test_fetch_versions(void)
{
    for (int16_t v = 4; v <= 16; v++)
        check_version(v);
}

/* A counting or fixed writer never leaves bytes out: their users read
 * buf (or only the length) directly. */
static void test_only_growable(void)
{
    kp_writer w;
    kp_writer_init_counting(&w);
    kp_writer_refs_enable(&w, 1);
    uint8_t b[64] = {0};
    CU_ASSERT_EQUAL(kp_write_bytes(&w, (kp_bytes){b, 64}), 0);
    CU_ASSERT_EQUAL(w.nrefs, 0);
    CU_ASSERT_EQUAL(w.len, 68);
    uint8_t fixed[128];
    kp_writer_init_fixed(&w, fixed, sizeof(fixed));
    kp_writer_refs_enable(&w, 1);
    CU_ASSERT_EQUAL(kp_write_compact_bytes(&w, (kp_bytes){b, 64}), 0);
    CU_ASSERT_EQUAL(w.nrefs, 0);
    CU_ASSERT_EQUAL(w.len, 65);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("writer_refs", NULL, NULL);
    CU_add_test(s, "fetch responses v4-16 by reference equal the copied frame", test_fetch_versions);
    CU_add_test(s, "counting and fixed writers copy", test_only_growable);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_throttle_field.c — the generated kp_response_set_throttle over every
 * API and every version: where the version's response carries
 * ThrottleTimeMs the value is set and travels on the wire; where it does
 * not, neither the struct nor its encoding changes. Spot checks against
 * Kafka's message definitions keep the generator honest about which
 * versions have the field.
 *
 * Owns nothing beyond the test. Must not depend on the broker.
 */
#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_messages.h"
#include "kp_messages_test.h"

/* Differs from anything kp_test_fill puts in an int32 (it sets bit 0 and
 * stays below 2^24). */
#define MS 0x12345678

static int encode(const kp_msg_desc *d, int16_t v, const void *m, kp_writer *w)
{
    kp_writer_init(w, 0);
    return d->encode(w, v, m);
}

static void check_one(const kp_api_desc *api, int16_t v, int *nset)
{
    const kp_msg_desc *d = api->response;
    kp_arena a;
    kp_arena_init(&a, 0);
    void *body = calloc(1, d->size), *orig = calloc(1, d->size), *back = calloc(1, d->size);
    kp_test_fill(d, body, &a, v, (uint32_t)(api->key * 131 + v));
    memcpy(orig, body, d->size);
    kp_writer before, after;
    CU_ASSERT_EQUAL_FATAL(encode(d, v, body, &before), 0);

    int set = kp_response_set_throttle(api->key, v, body, MS);
    CU_ASSERT_EQUAL_FATAL(encode(d, v, body, &after), 0);
    if (set) {
        (*nset)++;
        kp_reader r;
        kp_reader_init(&r, after.buf, after.len);
        CU_ASSERT_EQUAL(d->decode(&r, &a, v, back), 0);
        int32_t *f = kp_response_throttle_field(api->key, v, back);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        if (*f != MS)
            fprintf(stderr, "%s v%d: throttle %d on the wire, not %d\n", d->name, v, *f, MS);
        CU_ASSERT_EQUAL(*f, MS);
    } else {
        CU_ASSERT_PTR_NULL(kp_response_throttle_field(api->key, v, body));
        if (memcmp(orig, body, d->size) != 0)
            fprintf(stderr, "%s v%d: struct changed though the field is absent\n", d->name, v);
        CU_ASSERT(memcmp(orig, body, d->size) == 0);
        CU_ASSERT(before.len == after.len && memcmp(before.buf, after.buf, before.len) == 0);
    }
    kp_writer_free(&before);
    kp_writer_free(&after);
    free(body);
    free(orig);
    free(back);
    kp_arena_reset(&a);
}

static void test_every_api_every_version(void)
{
    int nset = 0, nversions = 0;
    for (size_t i = 0; i < kp_api_count; i++)
        for (int16_t v = kp_apis[i].min_version; v <= kp_apis[i].max_version; v++) {
            check_one(&kp_apis[i], v, &nset);
            nversions++;
        }
    /* Most responses carry the field in most versions; a generator that
     * set nothing would pass the loop above on "absent" alone. */
    CU_ASSERT(nset > nversions / 2);
}

/* Which versions carry ThrottleTimeMs, from Kafka's definitions. */
static void test_known_versions(void)
{
    static const struct {
        int16_t key, v;
        int has;
    } k[] = {
        {KP_API_PRODUCE, 0, 0},
        {KP_API_PRODUCE, 1, 1},
        {KP_API_FETCH, 0, 0},
        {KP_API_FETCH, 1, 1},
        {KP_API_METADATA, 2, 0},
        {KP_API_METADATA, 3, 1},
        {KP_API_LIST_OFFSETS, 1, 0},
        {KP_API_LIST_OFFSETS, 2, 1},
        {KP_API_API_VERSIONS, 0, 0},
        {KP_API_API_VERSIONS, 1, 1},
        {KP_API_HEARTBEAT, 0, 0},
        {KP_API_HEARTBEAT, 1, 1},
        {KP_API_SASL_HANDSHAKE, 1, 0},
        {KP_API_CREATE_TOPICS, 1, 0},
        {KP_API_CREATE_TOPICS, 2, 1},
        {KP_API_DESCRIBE_CLUSTER, 0, 1},
        {KP_API_SASL_AUTHENTICATE, 2, 0},
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        const kp_api_desc *api = kp_api_lookup(k[i].key);
        CU_ASSERT_PTR_NOT_NULL_FATAL(api);
        void *body = calloc(1, api->response->size);
        int got = kp_response_throttle_field(k[i].key, k[i].v, body) != NULL;
        if (got != k[i].has)
            fprintf(stderr, "%s v%d: field %s\n", api->name, k[i].v, got ? "found" : "missing");
        CU_ASSERT_EQUAL(got, k[i].has);
        free(body);
    }
    CU_ASSERT_PTR_NULL(kp_response_throttle_field(-1, 0, NULL));
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("throttle_field", NULL, NULL);
    CU_add_test(s, "every api, every version", test_every_api_every_version);
    CU_add_test(s, "versions that carry the field", test_known_versions);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

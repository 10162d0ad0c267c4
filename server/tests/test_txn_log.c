/*
 * test_txn_log.c — unit tests of server/txn_log.c against records Apache
 * Kafka 4.4.0 wrote (txn_fixtures.h): every key and value decodes to the
 * fields Kafka put in it and encodes back to the same bytes; tombstones;
 * version 0 (what Kafka writes with transaction.version 0) without the
 * tagged fields; and refusal of truncated, overlong and foreign records.
 *
 * Owns: nothing outside the process. Must not: depend on shards or disk.
 */
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"
#include "txn_fixtures.h"
#include "txn_log.h"

static void test_fixtures_decode(void)
{
    for (int i = 0; i < TXN_NFIXTURES; i++) {
        const txn_fixture *f = &txn_fixtures[i];
        const txn_fixture_fields *x = &txn_fixture_fields_of[i];
        CU_ASSERT_EQUAL_FATAL(f->offset, x->offset);
        srv_txn_logrec r;
        int rc = srv_txn_log_decode((const uint8_t *)f->key, f->klen, (const uint8_t *)f->value, f->vlen, &r);
        CU_ASSERT_EQUAL(rc, SRV_TXN_LOG_OK);
        CU_ASSERT_EQUAL(r.id_len, (int32_t)strlen(x->id));
        CU_ASSERT(r.txn_id && memcmp(r.txn_id, x->id, strlen(x->id)) == 0);
        CU_ASSERT_EQUAL(r.tombstone, x->tombstone != 0);
        if (!x->tombstone) {
            CU_ASSERT_EQUAL(r.value_version, 1);
            CU_ASSERT_EQUAL(r.img.producer_id, x->pid);
            CU_ASSERT_EQUAL(r.img.prev_producer_id, x->prev_pid);
            CU_ASSERT_EQUAL(r.img.next_producer_id, x->next_pid);
            CU_ASSERT_EQUAL(r.img.producer_epoch, x->epoch);
            CU_ASSERT_EQUAL(r.img.timeout_ms, x->timeout_ms);
            CU_ASSERT_EQUAL((int)r.img.state, x->state);
            CU_ASSERT_EQUAL(r.img.nparts, x->nparts);
            CU_ASSERT_EQUAL(r.img.start_ms, x->start_ms);
            CU_ASSERT_EQUAL(r.img.last_update_ms, x->last_update_ms);
            CU_ASSERT_EQUAL(r.img.client_tv, x->client_tv);
        }
        srv_txn_logrec_clear(&r);
    }
}

/* A few fields spelled out, independent of the Python reader. */
static void test_fixtures_known(void)
{
    srv_txn_logrec r;
    /* offset 10: tx-java Ongoing over t-0, t-1 and __consumer_offsets-2 */
    const txn_fixture *f = &txn_fixtures[10];
    CU_ASSERT_EQUAL_FATAL(
        srv_txn_log_decode((const uint8_t *)f->key, f->klen, (const uint8_t *)f->value, f->vlen, &r), 0);
    CU_ASSERT_EQUAL(r.img.state, SRV_TXN_ONGOING);
    CU_ASSERT_EQUAL(r.img.nparts, 3);
    CU_ASSERT(srv_txn_image_has_part(&r.img, "t", 1, 0));
    CU_ASSERT(srv_txn_image_has_part(&r.img, "t", 1, 1));
    CU_ASSERT(srv_txn_image_has_part(&r.img, "__consumer_offsets", 18, 2));
    CU_ASSERT_EQUAL(r.img.client_tv, 2);
    srv_txn_logrec_clear(&r);
    /* offset 11: its PrepareCommit, epoch bumped by KIP-890 */
    f = &txn_fixtures[11];
    CU_ASSERT_EQUAL_FATAL(
        srv_txn_log_decode((const uint8_t *)f->key, f->klen, (const uint8_t *)f->value, f->vlen, &r), 0);
    CU_ASSERT_EQUAL(r.img.state, SRV_TXN_PREPARE_COMMIT);
    CU_ASSERT_EQUAL(r.img.producer_epoch, 1);
    srv_txn_logrec_clear(&r);
    /* offset 26: the tombstone of tx-timeout */
    f = &txn_fixtures[26];
    CU_ASSERT_EQUAL_FATAL(srv_txn_log_decode((const uint8_t *)f->key, f->klen, NULL, -1, &r), 0);
    CU_ASSERT(r.tombstone);
    CU_ASSERT_EQUAL(r.id_len, 10);
    CU_ASSERT(memcmp(r.txn_id, "tx-timeout", 10) == 0);
    srv_txn_logrec_clear(&r);
}

static void test_fixtures_encode(void)
{
    for (int i = 0; i < TXN_NFIXTURES; i++) {
        const txn_fixture *f = &txn_fixtures[i];
        srv_txn_logrec r;
        CU_ASSERT_EQUAL_FATAL(
            srv_txn_log_decode((const uint8_t *)f->key, f->klen, (const uint8_t *)f->value, f->vlen, &r), 0);
        kp_writer kw, vw;
        kp_writer_init(&kw, 16);
        kp_writer_init(&vw, 64);
        CU_ASSERT_EQUAL(srv_txn_log_key(&kw, r.txn_id, r.id_len), 0);
        CU_ASSERT_EQUAL(kw.len, (size_t)f->klen);
        CU_ASSERT(kw.len == (size_t)f->klen && memcmp(kw.buf, f->key, kw.len) == 0);
        if (!r.tombstone) {
            CU_ASSERT_EQUAL(srv_txn_log_value(&vw, r.value_version, &r.img), 0);
            CU_ASSERT_EQUAL(vw.len, (size_t)f->vlen);
            CU_ASSERT(vw.len == (size_t)f->vlen && memcmp(vw.buf, f->value, vw.len) == 0);
        }
        kp_writer_free(&kw);
        kp_writer_free(&vw);
        srv_txn_logrec_clear(&r);
    }
}

/* Version 0, by hand from the schema: no tagged section, int16/int32 lengths. */
static void test_version0(void)
{
    static const uint8_t v0[] = {
        0x00, 0x00,                                                             /* version 0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,                         /* producer id 7 */
        0x00, 0x03,                                                             /* epoch 3 */
        0x00, 0x00, 0x27, 0x10,                                                 /* timeout 10000 */
        0x01,                                                                   /* Ongoing */
        0x00, 0x00, 0x00, 0x01,                                                 /* one topic */
        0x00, 0x02, 'a',  'b',                                                  /* "ab" */
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x05, /* [4, 5] */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64,                         /* last update 100 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x32,                         /* start 50 */
    };
    static const uint8_t key[] = {0x00, 0x00, 0x00, 0x01, 'x'};
    srv_txn_logrec r;
    CU_ASSERT_EQUAL_FATAL(srv_txn_log_decode(key, sizeof(key), v0, sizeof(v0), &r), 0);
    CU_ASSERT_EQUAL(r.value_version, 0);
    CU_ASSERT_EQUAL(r.img.producer_id, 7);
    CU_ASSERT_EQUAL(r.img.producer_epoch, 3);
    CU_ASSERT_EQUAL(r.img.prev_producer_id, -1);
    CU_ASSERT_EQUAL(r.img.client_tv, 0);
    CU_ASSERT_EQUAL(r.img.nparts, 2);
    CU_ASSERT(srv_txn_image_has_part(&r.img, "ab", 2, 5));
    /* tagged values are not carried by version 0 */
    r.img.prev_producer_id = 9;
    r.img.client_tv = 2;
    kp_writer w;
    kp_writer_init(&w, 64);
    CU_ASSERT_EQUAL(srv_txn_log_value(&w, 0, &r.img), 0);
    CU_ASSERT(w.len == sizeof(v0) && memcmp(w.buf, v0, sizeof(v0)) == 0);
    kp_writer_free(&w);
    CU_ASSERT_EQUAL(srv_txn_log_value_version(0), 0);
    CU_ASSERT_EQUAL(srv_txn_log_value_version(1), 1);
    CU_ASSERT_EQUAL(srv_txn_log_value_version(2), 1);
    srv_txn_logrec_clear(&r);
}

static void test_refusals(void)
{
    srv_txn_logrec r;
    /* every truncation of every fixture is refused, never read past */
    for (int i = 0; i < TXN_NFIXTURES; i++) {
        const txn_fixture *f = &txn_fixtures[i];
        for (int32_t n = 0; n < f->klen; n++) {
            uint8_t *k = malloc((size_t)n + 1);
            memcpy(k, f->key, (size_t)n);
            CU_ASSERT_NOT_EQUAL(srv_txn_log_decode(k, n, NULL, -1, &r), SRV_TXN_LOG_OK);
            srv_txn_logrec_clear(&r);
            free(k);
        }
        for (int32_t n = 0; f->value && n < f->vlen; n++) {
            uint8_t *v = malloc((size_t)n + 1);
            memcpy(v, f->value, (size_t)n);
            CU_ASSERT_NOT_EQUAL(srv_txn_log_decode((const uint8_t *)f->key, f->klen, v, n, &r),
                                SRV_TXN_LOG_OK);
            srv_txn_logrec_clear(&r);
            free(v);
        }
    }
    const txn_fixture *f = &txn_fixtures[1];
    /* a trailing byte */
    uint8_t *v = malloc((size_t)f->vlen + 1);
    memcpy(v, f->value, (size_t)f->vlen);
    v[f->vlen] = 0;
    CU_ASSERT_EQUAL(srv_txn_log_decode((const uint8_t *)f->key, f->klen, v, f->vlen + 1, &r),
                    SRV_TXN_LOG_E_MALFORMED);
    srv_txn_logrec_clear(&r);
    /* a value version Kafka does not have */
    memcpy(v, f->value, (size_t)f->vlen);
    v[1] = 2;
    CU_ASSERT_EQUAL(srv_txn_log_decode((const uint8_t *)f->key, f->klen, v, f->vlen, &r),
                    SRV_TXN_LOG_E_VALUE_VERSION);
    srv_txn_logrec_clear(&r);
    /* Dead and PrepareEpochFence are never persisted; 9 is no state */
    static const int8_t bad[] = {6, 7, 9, -1};
    for (size_t i = 0; i < sizeof(bad); i++) {
        memcpy(v, f->value, (size_t)f->vlen);
        v[16] = (uint8_t)bad[i]; /* version 2 + pid 8 + epoch 2 + timeout 4 */
        CU_ASSERT_EQUAL(srv_txn_log_decode((const uint8_t *)f->key, f->klen, v, f->vlen, &r),
                        SRV_TXN_LOG_E_STATE);
        srv_txn_logrec_clear(&r);
    }
    free(v);
    /* another coordinator's record type (a group offset key is type 1) */
    static const uint8_t other[] = {0x00, 0x01, 0x00, 0x01, 'g'};
    CU_ASSERT_EQUAL(srv_txn_log_decode(other, sizeof(other), NULL, -1, &r), SRV_TXN_LOG_E_KEY_VERSION);
    srv_txn_logrec_clear(&r);
    /* a non-Empty state without a partition list */
    static const uint8_t nolist[] = {0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x27, 0x10, 0x01, 0x00,
                                     0,    0,    0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,    1,    0x00};
    static const uint8_t key[] = {0x00, 0x00, 0x00, 0x01, 'x'};
    CU_ASSERT_EQUAL(srv_txn_log_decode(key, sizeof(key), nolist, sizeof(nolist), &r),
                    SRV_TXN_LOG_E_MALFORMED);
    srv_txn_logrec_clear(&r);
}

/* An Empty image is written with a null list, others with an array, as Kafka does. */
static void test_encode_lists(void)
{
    srv_txn_image img;
    srv_txn_image_init(&img);
    img.producer_id = 5;
    img.producer_epoch = 0;
    img.timeout_ms = 1000;
    kp_writer w;
    kp_writer_init(&w, 64);
    CU_ASSERT_EQUAL(srv_txn_log_value(&w, 1, &img), 0);
    CU_ASSERT_EQUAL(w.buf[17], 0x00); /* compact null */
    kp_writer_free(&w);
    img.state = SRV_TXN_COMPLETE_ABORT;
    kp_writer_init(&w, 64);
    CU_ASSERT_EQUAL(srv_txn_log_value(&w, 1, &img), 0);
    CU_ASSERT_EQUAL(w.buf[17], 0x01); /* compact empty */
    kp_writer_free(&w);
    CU_ASSERT_EQUAL(srv_txn_log_value(&w, 2, &img), KP_E_UNSUPPORTED);
    srv_txn_image_clear(&img);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("txn_log", NULL, NULL);
    CU_add_test(s, "Kafka's records decode to their fields", test_fixtures_decode);
    CU_add_test(s, "Kafka's records: fields spelled out", test_fixtures_known);
    CU_add_test(s, "Kafka's records encode to the same bytes", test_fixtures_encode);
    CU_add_test(s, "value version 0", test_version0);
    CU_add_test(s, "truncated, overlong and foreign records are refused", test_refusals);
    CU_add_test(s, "Empty has a null partition list, other states an array", test_encode_lists);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

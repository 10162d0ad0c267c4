/*
 * test_txn_v2.c — unit tests of transactions v2 (KIP-890 part 2) in the
 * broker's pure parts: the features ApiVersions lists (srv_features.c), the
 * transaction version a request's version implies (txn_coord.c), and the
 * implicit add of Produce v12 / TxnOffsetCommit v5 as the coordinator runs
 * it (AddPartitionsToTxn's decision with client version 2, then the
 * Produce / TxnOffsetCommit error mappings), with the records written at
 * the coordinator's level 2 decoding to client version 2 (what a restart
 * replays). compat-tests/py/test_txn_v2.py checks the same answers on the
 * wire against Apache Kafka 4.4.0.
 *
 * Owns: nothing outside the process. Must not: start shards or touch disk.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "kb_test.h"
#include "srv_features.h"
#include "txn_coord.h"
#include "txn_log.h"
#include "txn_state.h"

static const srv_feature *find(const srv_feature *f, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (f[i].name_len == (int16_t)strlen(name) && memcmp(f[i].name, name, (size_t)f[i].name_len) == 0)
            return &f[i];
    return NULL;
}

static void test_features(void)
{
    srv_feature f[SRV_FEATURES_MAX];
    int n = srv_features(false, f);
    CU_ASSERT_EQUAL(n, 2);
    const srv_feature *g = find(f, n, "group.version");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->min_supported, 0);
    CU_ASSERT_EQUAL(g->max_supported, 1);
    CU_ASSERT_EQUAL(g->finalized, 1);
    /* Without the transaction APIs no client may be told to use v2. */
    CU_ASSERT_PTR_NULL(find(f, n, "transaction.version"));
    CU_ASSERT_EQUAL(srv_features_txn_version(false), 0);

    /* Share groups are served: KIP-932's level, not 4.4's dead-letter queue. */
    const srv_feature *sv = find(f, n, "share.version");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sv);
    CU_ASSERT_EQUAL(sv->max_supported, 1);
    CU_ASSERT_EQUAL(sv->finalized, 1);

    n = srv_features(true, f);
    CU_ASSERT_EQUAL(n, 3);
    const srv_feature *t = find(f, n, "transaction.version");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->min_supported, 0);
    CU_ASSERT_EQUAL(t->max_supported, 2);
    CU_ASSERT_EQUAL(t->finalized, 2);
    CU_ASSERT_EQUAL(srv_features_txn_version(true), 2);
    /* Features whose semantics kbroker does not have are never listed. */
    const char *absent[] = {"metadata.version", "kraft.version", "streams.version",
                            "eligible.leader.replicas.version"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        CU_ASSERT_PTR_NULL(find(f, n, absent[i]));
    CU_ASSERT(n <= SRV_FEATURES_MAX);
}

static void test_client_tv(void)
{
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_PRODUCE, 11), 0);
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_PRODUCE, 12), 2);
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_TXN_OFFSET_COMMIT, 4), 0);
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_TXN_OFFSET_COMMIT, 5), 2);
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_ADD_PARTITIONS_TO_TXN, 4), 0);
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_ADD_PARTITIONS_TO_TXN, 5), 2);
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_END_TXN, 4), 0);
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_END_TXN, 5), 2);
    CU_ASSERT_EQUAL(srv_txn_client_tv(KP_API_FETCH, 16), 0);
}

/* One id over a coordinator at level 2; every write succeeds and its
 * record must decode to what memory holds. */
typedef struct env {
    srv_txn_cfg cfg;
    srv_txn_meta *m;
    int64_t now;
} env;

static int16_t run(env *e, srv_txn_step *s)
{
    int16_t err = s->error;
    if (s->write) {
        srv_txn_begin(e->m, s);
        kp_writer kw, vw;
        kp_writer_init(&kw, 32);
        kp_writer_init(&vw, 64);
        CU_ASSERT_EQUAL_FATAL(srv_txn_step_record(&e->cfg, e->m, s, &kw, &vw), 0);
        srv_txn_logrec r;
        CU_ASSERT_EQUAL(srv_txn_log_decode(kw.buf, (int32_t)kw.len, vw.buf, (int32_t)vw.len, &r),
                        SRV_TXN_LOG_OK);
        /* Level 2 writes value version 1, whose tagged field keeps the
         * client's version for the replay after a restart. */
        CU_ASSERT_EQUAL(r.value_version, 1);
        CU_ASSERT_EQUAL(r.img.client_tv, s->next.client_tv);
        srv_txn_logrec_clear(&r);
        kp_writer_free(&kw);
        kp_writer_free(&vw);
        srv_txn_written(e->m, s);
    }
    srv_txn_step_clear(s);
    return err;
}

/* Produce v12's implicit add of one partition, answered as the partition
 * leader answers the producer. */
static int16_t produce(env *e, int64_t pid, int16_t epoch, const char *topic, int32_t part)
{
    srv_txn_tp tp = {(char *)topic, (int32_t)strlen(topic), part};
    srv_txn_step s;
    srv_txn_decide_add_partitions(e->m, pid, epoch, &tp, 1, srv_txn_client_tv(KP_API_PRODUCE, 12), e->now,
                                  &s);
    const char *msg;
    return srv_txn_produce_error(run(e, &s), 12, &msg);
}

static void test_implicit_add(void)
{
    env e;
    memset(&e, 0, sizeof(e));
    e.cfg.max_timeout_ms = 900000;
    e.cfg.id_expiration_ms = 604800000;
    e.cfg.tv_level = srv_features_txn_version(true);
    e.now = 5000;
    e.m = srv_txn_meta_new("tx", 2, 42, 60000, e.now);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e.m);
    srv_txn_step s;
    srv_txn_decide_init(&e.cfg, e.m, 60000, false, -1, -1, 43, e.now, &s);
    CU_ASSERT_EQUAL(run(&e, &s), KP_ERR_NONE);
    int16_t ep = e.m->img.producer_epoch;

    /* The first batch begins the transaction, the second partition joins it. */
    e.now = 6000;
    CU_ASSERT_EQUAL(produce(&e, 42, ep, "t", 0), KP_ERR_NONE);
    CU_ASSERT_EQUAL(e.m->img.state, SRV_TXN_ONGOING);
    CU_ASSERT_EQUAL(e.m->img.client_tv, 2);
    CU_ASSERT_EQUAL(e.m->img.start_ms, 6000);
    CU_ASSERT_EQUAL(produce(&e, 42, ep, "t", 1), KP_ERR_NONE);
    CU_ASSERT_EQUAL(e.m->img.nparts, 2);
    /* Another producer id, an older epoch. */
    CU_ASSERT_EQUAL(produce(&e, 41, ep, "t", 0), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(produce(&e, 42, (int16_t)(ep - 1), "t", 0), KP_ERR_INVALID_PRODUCER_EPOCH);

    /* TxnOffsetCommit v5: the group's offsets partition joins the same way. */
    srv_txn_decide_add_offsets(e.m, 42, ep, 7, srv_txn_client_tv(KP_API_TXN_OFFSET_COMMIT, 5), e.now, &s);
    CU_ASSERT_EQUAL(srv_txn_offset_commit_error(run(&e, &s), 5), KP_ERR_NONE);
    CU_ASSERT_EQUAL(e.m->img.nparts, 3);
    srv_txn_decide_add_offsets(e.m, 42, (int16_t)(ep - 1), 7, 2, e.now, &s);
    CU_ASSERT_EQUAL(srv_txn_offset_commit_error(run(&e, &s), 5), KP_ERR_INVALID_PRODUCER_EPOCH);

    /* EndTxn v5 bumps the epoch in the Prepare record. While its markers
     * are out, the next transaction's first batch is retriable for the
     * producer; the old epoch is fenced. */
    srv_txn_decide_end(&e.cfg, e.m, 42, ep, true, 2, 44, e.now, &s);
    CU_ASSERT_EQUAL(run(&e, &s), KP_ERR_NONE);
    CU_ASSERT_EQUAL(e.m->img.state, SRV_TXN_PREPARE_COMMIT);
    CU_ASSERT_EQUAL(e.m->img.producer_epoch, ep + 1);
    CU_ASSERT_EQUAL(produce(&e, 42, (int16_t)(ep + 1), "t", 0), KP_ERR_NOT_ENOUGH_REPLICAS);
    CU_ASSERT_EQUAL(produce(&e, 42, ep, "t", 0), KP_ERR_INVALID_PRODUCER_EPOCH);
    srv_txn_decide_complete(e.m, e.now, &s);
    CU_ASSERT_EQUAL(run(&e, &s), KP_ERR_NONE);
    CU_ASSERT_EQUAL(e.m->img.state, SRV_TXN_COMPLETE_COMMIT);

    /* After the markers: the old epoch still fenced, the new one begins
     * the next transaction with only its own partition. */
    e.now = 9000;
    CU_ASSERT_EQUAL(produce(&e, 42, ep, "t", 1), KP_ERR_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(e.m->img.state, SRV_TXN_COMPLETE_COMMIT);
    CU_ASSERT_EQUAL(produce(&e, 42, (int16_t)(ep + 1), "t", 1), KP_ERR_NONE);
    CU_ASSERT_EQUAL(e.m->img.state, SRV_TXN_ONGOING);
    CU_ASSERT_EQUAL(e.m->img.nparts, 1);
    CU_ASSERT_EQUAL(e.m->img.start_ms, 9000);
    srv_txn_meta_free(e.m);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("txn_v2", NULL, NULL);
    CU_add_test(s, "features by transaction API gate", test_features);
    CU_add_test(s, "transaction version of a request version", test_client_tv);
    CU_add_test(s, "implicit add of Produce v12 and TxnOffsetCommit v5", test_implicit_add);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};

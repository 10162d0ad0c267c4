/*
 * test_txn_state.c — unit tests of the transaction coordinator's rules
 * (server/txn_state.c) and of the replay (server/txn_replay.c), with a fake
 * clock, a counter for producer ids and an in-memory __transaction_state:
 * Kafka's own sequence of records (txn_fixtures.h) rebuilt byte for byte from
 * the same requests at the same times; tables of answers with the Kafka
 * function each row mirrors; fencing, KIP-360 recovery, epoch exhaustion;
 * timeout and expiration; replay of random operation sequences.
 *
 * Owns: nothing outside the process. Must not: depend on shards or disk.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "kb_test.h"
#include "txn_fixtures.h"
#include "txn_replay.h"
#include "txn_state.h"

/* ---- a coordinator of one partition over an in-memory log ----------- */

typedef struct rec {
    uint8_t *key, *value;
    size_t klen, vlen;
    int tombstone;
} rec;

typedef struct env {
    srv_txn_cfg cfg;
    srv_txn_map map;
    int64_t now;
    int64_t next_pid;
    rec *log;
    int nlog, caplog;
    int fail_next; /* the next write fails */
    int16_t answer_error;
    int64_t answer_pid;
    int16_t answer_epoch;
    srv_txn_marker markers;
} env;

static void env_init(env *e, int16_t tv_level)
{
    memset(e, 0, sizeof(*e));
    e->cfg.max_timeout_ms = 900000;
    e->cfg.id_expiration_ms = 604800000;
    e->cfg.tv_level = tv_level;
    srv_txn_map_init(&e->map);
    e->now = 1000000;
}

static void env_free(env *e)
{
    for (int i = 0; i < e->nlog; i++) {
        free(e->log[i].key);
        free(e->log[i].value);
    }
    free(e->log);
    srv_txn_map_free(&e->map);
}

static srv_txn_meta *get(env *e, const char *id)
{
    return srv_txn_map_get(&e->map, id, (int32_t)strlen(id));
}

/* Runs a step as the handler layer will: begin, append, apply, answer. */
static int16_t run(env *e, srv_txn_meta *m, srv_txn_step *s)
{
    if (s->pid_used)
        e->next_pid++;
    e->answer_pid = s->answer_pid;
    e->answer_epoch = s->answer_epoch;
    e->markers = SRV_TXN_MARK_NONE;
    int16_t err = s->error;
    if (s->write) {
        srv_txn_begin(m, s);
        CU_ASSERT_EQUAL(m->pending, s->tombstone ? (int)SRV_TXN_DEAD : (int)s->next.state);
        if (e->fail_next) {
            e->fail_next = 0;
            srv_txn_write_failed(m, s);
            err = KP_ERR_NOT_ENOUGH_REPLICAS;
        } else {
            kp_writer kw, vw;
            kp_writer_init(&kw, 32);
            kp_writer_init(&vw, 64);
            CU_ASSERT_EQUAL_FATAL(srv_txn_step_record(&e->cfg, m, s, &kw, &vw), 0);
            if (e->nlog == e->caplog) {
                e->caplog = e->caplog ? e->caplog * 2 : 64;
                e->log = realloc(e->log, sizeof(rec) * (size_t)e->caplog);
            }
            rec *r = &e->log[e->nlog++];
            r->key = kw.buf;
            r->klen = kw.len;
            r->tombstone = s->tombstone;
            r->value = s->tombstone ? NULL : vw.buf;
            r->vlen = s->tombstone ? 0 : vw.len;
            if (s->tombstone)
                kp_writer_free(&vw);
            e->markers = s->markers;
            if (s->tombstone)
                srv_txn_map_remove(&e->map, m->txn_id, m->id_len);
            else
                srv_txn_written(m, s);
        }
    }
    srv_txn_step_clear(s);
    e->answer_error = err;
    return err;
}

static int16_t do_init(env *e, const char *id, int32_t timeout, int has_exp, int64_t exp_pid,
                       int16_t exp_epoch)
{
    srv_txn_step s;
    int32_t len = (int32_t)strlen(id);
    int16_t err = srv_txn_init_precheck(&e->cfg, len, timeout);
    if (err)
        return e->answer_error = err;
    srv_txn_meta *m = get(e, id);
    if (!m) {
        m = srv_txn_meta_new(id, len, e->next_pid++, timeout, e->now);
        CU_ASSERT_FATAL(m != NULL && srv_txn_map_put(&e->map, m) == 0);
    }
    srv_txn_decide_init(&e->cfg, m, timeout, has_exp != 0, exp_pid, exp_epoch, e->next_pid, e->now, &s);
    return run(e, m, &s);
}

static int16_t do_add(env *e, const char *id, int64_t pid, int16_t epoch, const char *topic,
                      int32_t partition, int16_t tv)
{
    srv_txn_step s;
    srv_txn_tp tp = {(char *)topic, (int32_t)strlen(topic), partition};
    srv_txn_meta *m = get(e, id);
    srv_txn_decide_add_partitions(m, pid, epoch, &tp, 1, tv, e->now, &s);
    return run(e, m, &s);
}

static int16_t do_end(env *e, const char *id, int64_t pid, int16_t epoch, int commit, int16_t tv)
{
    srv_txn_step s;
    srv_txn_meta *m = get(e, id);
    srv_txn_decide_end(&e->cfg, m, pid, epoch, commit != 0, tv, e->next_pid, e->now, &s);
    return run(e, m, &s);
}

static int16_t do_complete(env *e, const char *id)
{
    srv_txn_step s;
    srv_txn_meta *m = get(e, id);
    srv_txn_decide_complete(m, e->now, &s);
    return run(e, m, &s);
}

/* Record i is Kafka's: the same key, and a value with the same fields.
 * Bytes are compared too when at most one partition is listed: Kafka lists
 * a transaction's partitions in the iteration order of a Java HashSet, an
 * order with no meaning that this coordinator does not imitate. */
static void assert_rec_is(const env *e, int i, const txn_fixture *f)
{
    CU_ASSERT_FATAL(i < e->nlog);
    const rec *r = &e->log[i];
    CU_ASSERT(r->klen == (size_t)f->klen && memcmp(r->key, f->key, r->klen) == 0);
    if (!f->value) {
        CU_ASSERT(r->tombstone);
        return;
    }
    CU_ASSERT_FATAL(!r->tombstone);
    srv_txn_logrec ours, theirs;
    CU_ASSERT_EQUAL_FATAL(srv_txn_log_decode(r->key, (int32_t)r->klen, r->value, (int32_t)r->vlen, &ours), 0);
    CU_ASSERT_EQUAL_FATAL(
        srv_txn_log_decode((const uint8_t *)f->key, f->klen, (const uint8_t *)f->value, f->vlen, &theirs), 0);
    CU_ASSERT_EQUAL(ours.value_version, theirs.value_version);
    CU_ASSERT(srv_txn_image_equal(&ours.img, &theirs.img));
    if (theirs.img.nparts <= 1) {
        CU_ASSERT_EQUAL(r->vlen, (size_t)f->vlen);
        CU_ASSERT(r->vlen == (size_t)f->vlen && memcmp(r->value, f->value, r->vlen) == 0);
    }
    srv_txn_logrec_clear(&ours);
    srv_txn_logrec_clear(&theirs);
}

/* ---- Kafka's records, rebuilt ------------------------------------------ */

static int64_t at(int i)
{
    return txn_fixture_fields_of[i].last_update_ms;
}

/* The requests the fixture's clients sent, at the times Kafka stamped: every
 * record we write must be the one Kafka wrote. */
static void test_kafka_sequence(void)
{
    env e;
    env_init(&e, 2);
    e.cfg.id_expiration_ms = 20000;
    /* tx-rdk: librdkafka, old request versions (client transaction version 0) */
    e.now = at(0);
    CU_ASSERT_EQUAL(do_init(&e, "tx-rdk", 60000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 0);
    e.now = at(1);
    srv_txn_tp two[] = {{(char *)"t", 1, 0}, {(char *)"t", 1, 1}};
    srv_txn_step s;
    srv_txn_decide_add_partitions(get(&e, "tx-rdk"), 0, 0, two, 2, 0, e.now, &s);
    CU_ASSERT_EQUAL(run(&e, get(&e, "tx-rdk"), &s), 0);
    e.now = at(2);
    CU_ASSERT_EQUAL(do_end(&e, "tx-rdk", 0, 0, 1, 0), 0);
    CU_ASSERT_EQUAL(e.markers, SRV_TXN_MARK_COMMIT);
    e.now = at(3);
    CU_ASSERT_EQUAL(do_complete(&e, "tx-rdk"), 0);
    e.now = at(4);
    CU_ASSERT_EQUAL(do_add(&e, "tx-rdk", 0, 0, "t", 0, 0), 0);
    e.now = at(5);
    CU_ASSERT_EQUAL(do_end(&e, "tx-rdk", 0, 0, 0, 0), 0);
    CU_ASSERT_EQUAL(e.markers, SRV_TXN_MARK_ABORT);
    e.now = at(6);
    CU_ASSERT_EQUAL(do_complete(&e, "tx-rdk"), 0);
    /* tx-java: kafka-clients 4.4.0, transaction version 2 */
    e.now = at(7);
    CU_ASSERT_EQUAL(do_init(&e, "tx-java", 60000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 1);
    e.now = at(8);
    CU_ASSERT_EQUAL(do_add(&e, "tx-java", 1, 0, "t", 0, 2), 0);
    e.now = at(9);
    CU_ASSERT_EQUAL(do_add(&e, "tx-java", 1, 0, "t", 1, 2), 0);
    e.now = at(10);
    srv_txn_decide_add_offsets(get(&e, "tx-java"), 1, 0, 2, 2, e.now, &s);
    CU_ASSERT_EQUAL(run(&e, get(&e, "tx-java"), &s), 0);
    e.now = at(11);
    CU_ASSERT_EQUAL(do_end(&e, "tx-java", 1, 0, 1, 2), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 1); /* KIP-890: EndTxn v5 answers the bumped epoch */
    CU_ASSERT_EQUAL(e.answer_epoch, 1);
    e.now = at(12);
    CU_ASSERT_EQUAL(do_complete(&e, "tx-java"), 0);
    e.now = at(13);
    CU_ASSERT_EQUAL(do_add(&e, "tx-java", 1, 1, "t", 1, 2), 0);
    e.now = at(14);
    CU_ASSERT_EQUAL(do_end(&e, "tx-java", 1, 1, 0, 2), 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 2);
    e.now = at(15);
    CU_ASSERT_EQUAL(do_complete(&e, "tx-java"), 0);
    e.now = at(16);
    CU_ASSERT_EQUAL(do_add(&e, "tx-java", 1, 2, "t", 0, 2), 0);
    /* a second instance: the ongoing transaction is aborted first */
    e.now = at(17);
    CU_ASSERT_EQUAL(do_init(&e, "tx-java", 60000, 0, -1, -1), KP_ERR_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(e.markers, SRV_TXN_MARK_ABORT);
    e.now = at(18);
    CU_ASSERT_EQUAL(do_complete(&e, "tx-java"), 0);
    e.now = at(19);
    CU_ASSERT_EQUAL(do_init(&e, "tx-java", 60000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 4);
    /* tx-timeout: aborted by the coordinator */
    e.now = at(20);
    CU_ASSERT_EQUAL(do_init(&e, "tx-timeout", 1000, 0, -1, -1), 0);
    e.now = at(21);
    CU_ASSERT_EQUAL(do_add(&e, "tx-timeout", 2, 0, "t", 0, 2), 0);
    e.now = at(22);
    srv_txn_meta *m = get(&e, "tx-timeout");
    CU_ASSERT(srv_txn_timed_out(m, e.now));
    srv_txn_decide_timeout(&e.cfg, m, e.now, &s);
    CU_ASSERT_EQUAL(run(&e, m, &s), 0);
    CU_ASSERT_EQUAL(e.markers, SRV_TXN_MARK_ABORT);
    e.now = at(23);
    CU_ASSERT_EQUAL(do_complete(&e, "tx-timeout"), 0);
    /* expiration, each id 20 s after its last update */
    const char *ids[] = {"tx-rdk", "tx-java", "tx-timeout"};
    const int last[] = {6, 19, 23};
    for (int i = 0; i < 3; i++) {
        m = get(&e, ids[i]);
        CU_ASSERT_FALSE(srv_txn_expired(&e.cfg, m, at(last[i]) + 19999));
        CU_ASSERT(srv_txn_expired(&e.cfg, m, at(last[i]) + 20000));
        srv_txn_decide_expire(&e.cfg, m, &s);
        CU_ASSERT_EQUAL(run(&e, m, &s), 0);
        CU_ASSERT_PTR_NULL(get(&e, ids[i]));
    }
    CU_ASSERT_EQUAL(e.nlog, TXN_NFIXTURES);
    for (int i = 0; i < TXN_NFIXTURES; i++)
        assert_rec_is(&e, i, &txn_fixtures[i]);
    env_free(&e);
}

/* ---- tables of answers ------------------------------------------------- */

/* Brings id "x" to a state at producer 0; returns the epoch the client holds. */
enum { ST_EMPTY, ST_ONGOING, ST_PCOMMIT, ST_PABORT, ST_CCOMMIT, ST_CABORT };
static int16_t setup(env *e, int state, int16_t tv)
{
    CU_ASSERT_EQUAL_FATAL(do_init(e, "x", 60000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL_FATAL(do_init(e, "x", 60000, 0, -1, -1), 0); /* epoch 1: a retry epoch exists */
    int16_t ep = 1;
    if (state == ST_EMPTY)
        return ep;
    CU_ASSERT_EQUAL_FATAL(do_add(e, "x", 0, ep, "t", 0, tv), 0);
    if (state == ST_ONGOING)
        return ep;
    CU_ASSERT_EQUAL_FATAL(do_end(e, "x", 0, ep, state == ST_PCOMMIT || state == ST_CCOMMIT, tv), 0);
    if (tv >= 2)
        ep++;
    if (state == ST_CCOMMIT || state == ST_CABORT)
        CU_ASSERT_EQUAL_FATAL(do_complete(e, "x"), 0);
    return ep;
}

typedef struct end_row {
    int state;
    int commit;
    int retry; /* the request carries the epoch before the current one */
    int16_t error;
    int writes; /* a Prepare* record (with an epoch bump in v2) */
} end_row;

/* TransactionCoordinator.endTransaction (transaction version 2): the table in
 * its comment, row for row, plus the Ongoing and Prepare* states. */
static const end_row end_v2_rows[] = {
    {ST_EMPTY, 0, 1, KP_ERR_PRODUCER_FENCED, 0},
    {ST_EMPTY, 0, 0, KP_ERR_NONE, 1},
    {ST_EMPTY, 1, 1, KP_ERR_PRODUCER_FENCED, 0},
    {ST_EMPTY, 1, 0, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_CABORT, 0, 1, KP_ERR_NONE, 0},
    {ST_CABORT, 0, 0, KP_ERR_NONE, 1},
    {ST_CABORT, 1, 1, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_CABORT, 1, 0, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_CCOMMIT, 0, 1, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_CCOMMIT, 0, 0, KP_ERR_NONE, 1},
    {ST_CCOMMIT, 1, 1, KP_ERR_NONE, 0},
    {ST_CCOMMIT, 1, 0, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_ONGOING, 1, 0, KP_ERR_NONE, 1},
    {ST_ONGOING, 0, 0, KP_ERR_NONE, 1},
    {ST_ONGOING, 1, 1, KP_ERR_PRODUCER_FENCED, 0},
    {ST_PCOMMIT, 1, 1, KP_ERR_CONCURRENT_TRANSACTIONS, 0}, /* a retry of the EndTxn that bumped */
    {ST_PCOMMIT, 0, 1, KP_ERR_CONCURRENT_TRANSACTIONS,
     0}, /* markers in flight: pending (seen on Kafka 4.4.0) */
    {ST_PCOMMIT, 1, 0, KP_ERR_PRODUCER_FENCED, 0},
    {ST_PABORT, 0, 1, KP_ERR_CONCURRENT_TRANSACTIONS, 0},
    {ST_PABORT, 1, 1, KP_ERR_CONCURRENT_TRANSACTIONS, 0},
};

/* TransactionCoordinator.endTransactionWithTV1: no retry epoch, strict equality. */
static const end_row end_v1_rows[] = {
    {ST_EMPTY, 0, 0, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_EMPTY, 1, 0, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_EMPTY, 1, 1, KP_ERR_PRODUCER_FENCED, 0},
    {ST_ONGOING, 1, 0, KP_ERR_NONE, 1},
    {ST_ONGOING, 0, 0, KP_ERR_NONE, 1},
    {ST_ONGOING, 0, 1, KP_ERR_PRODUCER_FENCED, 0},
    {ST_PCOMMIT, 1, 0, KP_ERR_CONCURRENT_TRANSACTIONS, 0},
    {ST_PCOMMIT, 0, 0, KP_ERR_CONCURRENT_TRANSACTIONS,
     0}, /* markers in flight: pending (seen on Kafka 4.4.0) */
    {ST_PABORT, 0, 0, KP_ERR_CONCURRENT_TRANSACTIONS, 0},
    {ST_PABORT, 1, 0, KP_ERR_CONCURRENT_TRANSACTIONS, 0},
    {ST_CCOMMIT, 1, 0, KP_ERR_NONE, 0},
    {ST_CCOMMIT, 0, 0, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_CABORT, 0, 0, KP_ERR_NONE, 0},
    {ST_CABORT, 1, 0, KP_ERR_INVALID_TXN_STATE, 0},
    {ST_CABORT, 0, 1, KP_ERR_PRODUCER_FENCED, 0},
};

static void run_end_rows(const end_row *rows, size_t n, int16_t tv)
{
    for (size_t i = 0; i < n; i++) {
        env e;
        env_init(&e, 2);
        int16_t ep = setup(&e, rows[i].state, tv);
        int before = e.nlog;
        int16_t cur = get(&e, "x")->img.producer_epoch;
        int16_t err = do_end(&e, "x", 0, rows[i].retry ? (int16_t)(ep - 1) : ep, rows[i].commit, tv);
        if (err != rows[i].error || (e.nlog - before) != rows[i].writes)
            fprintf(stderr, "\nrow %zu (tv %d): error %d (want %d), %d writes\n", i, tv, err, rows[i].error,
                    e.nlog - before);
        CU_ASSERT_EQUAL(err, rows[i].error);
        CU_ASSERT_EQUAL(e.nlog - before, rows[i].writes);
        if (rows[i].writes) {
            srv_txn_meta *m = get(&e, "x");
            CU_ASSERT(m->img.state == SRV_TXN_PREPARE_COMMIT || m->img.state == SRV_TXN_PREPARE_ABORT);
            CU_ASSERT_EQUAL(m->img.producer_epoch, tv >= 2 ? cur + 1 : cur);
        }
        env_free(&e);
    }
}

static void test_end_v2_table(void)
{
    run_end_rows(end_v2_rows, sizeof(end_v2_rows) / sizeof(end_v2_rows[0]), 2);
}

static void test_end_v1_table(void)
{
    run_end_rows(end_v1_rows, sizeof(end_v1_rows) / sizeof(end_v1_rows[0]), 0);
}

/* EndTxn of an unknown id or another producer id: INVALID_PRODUCER_ID_MAPPING
 * (endTransaction); a pending write: CONCURRENT_TRANSACTIONS. */
static void test_end_misc(void)
{
    env e;
    env_init(&e, 2);
    CU_ASSERT_EQUAL(do_end(&e, "nope", 0, 0, 1, 0), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(do_end(&e, "nope", 0, 0, 1, 2), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    int16_t ep = setup(&e, ST_ONGOING, 0);
    CU_ASSERT_EQUAL(do_end(&e, "x", 9, ep, 1, 0), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(do_end(&e, "x", 9, ep, 1, 2), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    srv_txn_meta *m = get(&e, "x");
    srv_txn_step s;
    srv_txn_decide_end(&e.cfg, m, 0, ep, true, 0, e.next_pid, e.now, &s);
    srv_txn_begin(m, &s); /* its write is out */
    srv_txn_step s2;
    srv_txn_decide_end(&e.cfg, m, 0, ep, true, 0, e.next_pid, e.now, &s2);
    CU_ASSERT_EQUAL(s2.error, KP_ERR_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_FALSE(s2.write);
    srv_txn_decide_add_partitions(m, 0, ep, NULL, 0, 0, e.now, &s2);
    CU_ASSERT_EQUAL(s2.error, KP_ERR_CONCURRENT_TRANSACTIONS);
    srv_txn_decide_init(&e.cfg, m, 1000, false, -1, -1, e.next_pid, e.now, &s2);
    CU_ASSERT_EQUAL(s2.error, KP_ERR_CONCURRENT_TRANSACTIONS);
    srv_txn_written(m, &s);
    srv_txn_step_clear(&s);
    CU_ASSERT_EQUAL(m->img.state, SRV_TXN_PREPARE_COMMIT);
    CU_ASSERT_EQUAL(srv_txn_markers_owed(m), SRV_TXN_MARK_COMMIT);
    env_free(&e);
}

/* TransactionCoordinator.handleAddPartitionsToTransaction and
 * handleVerifyPartitionsInTransaction. */
static void test_add_partitions(void)
{
    env e;
    env_init(&e, 2);
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, 0, "t", 0, 0), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    int16_t ep = setup(&e, ST_EMPTY, 0);
    CU_ASSERT_EQUAL(do_add(&e, "x", 5, ep, "t", 0, 0), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, (int16_t)(ep - 1), "t", 0, 0), KP_ERR_PRODUCER_FENCED);
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, (int16_t)(ep + 1), "t", 0, 0), KP_ERR_PRODUCER_FENCED);
    e.now += 10;
    int before = e.nlog;
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, ep, "t", 0, 0), 0);
    CU_ASSERT_EQUAL(e.nlog, before + 1);
    srv_txn_meta *m = get(&e, "x");
    CU_ASSERT_EQUAL(m->img.state, SRV_TXN_ONGOING);
    CU_ASSERT_EQUAL(m->img.start_ms, e.now);
    int64_t start = e.now;
    e.now += 10;
    /* already in: NONE without a write */
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, ep, "t", 0, 0), 0);
    CU_ASSERT_EQUAL(e.nlog, before + 1);
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, ep, "u", 3, 0), 0);
    CU_ASSERT_EQUAL(e.nlog, before + 2);
    CU_ASSERT_EQUAL(m->img.nparts, 2);
    CU_ASSERT_EQUAL(m->img.start_ms, start); /* the transaction started at its first partition */
    CU_ASSERT_EQUAL(m->img.last_update_ms, e.now);
    /* verify-only (KIP-890 part 1) */
    srv_txn_tp q[] = {{(char *)"t", 1, 0}, {(char *)"t", 1, 1}, {(char *)"u", 1, 3}};
    int16_t per[3];
    CU_ASSERT_EQUAL(srv_txn_verify_partitions(m, 0, ep, q, 3, per), 0);
    CU_ASSERT_EQUAL(per[0], KP_ERR_NONE);
    CU_ASSERT_EQUAL(per[1], KP_ERR_TRANSACTION_ABORTABLE);
    CU_ASSERT_EQUAL(per[2], KP_ERR_NONE);
    CU_ASSERT_EQUAL(srv_txn_verify_partitions(NULL, 0, ep, q, 3, per), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(srv_txn_verify_partitions(m, 1, ep, q, 3, per), KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(srv_txn_verify_partitions(m, 0, (int16_t)(ep + 1), q, 3, per), KP_ERR_PRODUCER_FENCED);
    /* Prepare*: CONCURRENT_TRANSACTIONS for adds and verification */
    CU_ASSERT_EQUAL(do_end(&e, "x", 0, ep, 1, 0), 0);
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, ep, "t", 0, 0), KP_ERR_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(srv_txn_verify_partitions(m, 0, ep, q, 3, per), KP_ERR_CONCURRENT_TRANSACTIONS);
    /* the markers are durable: Complete, then a new transaction starts now */
    CU_ASSERT_EQUAL(do_complete(&e, "x"), 0);
    CU_ASSERT_EQUAL(m->img.nparts, 0);
    e.now += 10;
    srv_txn_step s;
    srv_txn_decide_add_offsets(m, 0, ep, 7, 0, e.now, &s);
    CU_ASSERT_EQUAL(run(&e, m, &s), 0);
    CU_ASSERT(srv_txn_image_has_part(&m->img, "__consumer_offsets", 18, 7));
    CU_ASSERT_EQUAL(m->img.start_ms, e.now);
    env_free(&e);
}

/* TransactionCoordinator.handleInitProducerId / prepareInitProducerIdTransit
 * and TransactionMetadata.prepareIncrementProducerEpoch. */
static void test_init(void)
{
    env e;
    env_init(&e, 2);
    CU_ASSERT_EQUAL(do_init(&e, "", 1000, 0, -1, -1), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_EQUAL(do_init(&e, "x", 0, 0, -1, -1), KP_ERR_INVALID_TRANSACTION_TIMEOUT);
    CU_ASSERT_EQUAL(do_init(&e, "x", 900001, 0, -1, -1), KP_ERR_INVALID_TRANSACTION_TIMEOUT);
    CU_ASSERT_PTR_NULL(get(&e, "x"));
    CU_ASSERT_EQUAL(do_init(&e, "x", 900000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 0);
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 1);
    CU_ASSERT_EQUAL(get(&e, "x")->img.timeout_ms, 1000); /* the newest timeout */
    /* KIP-360: the current producer recovers with its id and epoch */
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 1, 0, 1), 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 2);
    CU_ASSERT_EQUAL(get(&e, "x")->last_epoch, 1);
    /* its retry (the answer was lost): the same epoch again, no bump */
    int before = e.nlog;
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 1, 0, 1), 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 2);
    CU_ASSERT_EQUAL(e.nlog, before + 1);
    /* an older epoch, or another producer id: fenced */
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 1, 0, 0), KP_ERR_PRODUCER_FENCED);
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 1, 77, 2), KP_ERR_PRODUCER_FENCED);
    /* a new instance (no expected epoch) resets the last epoch: the old one is fenced */
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 3);
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 1, 0, 1), KP_ERR_PRODUCER_FENCED);
    /* Prepare*: CONCURRENT_TRANSACTIONS */
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, 3, "t", 0, 0), 0);
    CU_ASSERT_EQUAL(do_end(&e, "x", 0, 3, 1, 0), 0);
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 0, -1, -1), KP_ERR_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(do_complete(&e, "x"), 0);
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 4);
    env_free(&e);
}

/* A metadata at a given producer and epoch, as if loaded. */
static srv_txn_meta *put_at(env *e, const char *id, int64_t pid, int16_t epoch, srv_txn_state st)
{
    srv_txn_image img;
    srv_txn_image_init(&img);
    img.producer_id = pid;
    img.prev_producer_id = pid;
    img.producer_epoch = epoch;
    img.timeout_ms = 60000;
    img.state = st;
    img.last_update_ms = e->now;
    img.start_ms = st == SRV_TXN_EMPTY ? -1 : e->now;
    if (st != SRV_TXN_EMPTY && st != SRV_TXN_COMPLETE_COMMIT && st != SRV_TXN_COMPLETE_ABORT)
        srv_txn_image_add_part(&img, "t", 1, 0);
    srv_txn_meta *m = srv_txn_meta_from_image(id, (int32_t)strlen(id), &img);
    CU_ASSERT_FATAL(m && srv_txn_map_put(&e->map, m) == 0);
    return m;
}

/* Epoch exhaustion: prepareProducerIdRotation at InitProducerId, and the
 * KIP-890 overflow at EndTxn (the Complete record moves to the next id). */
static void test_exhaustion(void)
{
    env e;
    env_init(&e, 2);
    e.next_pid = 100;
    put_at(&e, "x", 5, 32766, SRV_TXN_COMPLETE_COMMIT);
    CU_ASSERT(srv_txn_epoch_exhausted(32766));
    CU_ASSERT_FALSE(srv_txn_epoch_exhausted(32765));
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 1, 5, 32766), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 100);
    CU_ASSERT_EQUAL(e.answer_epoch, 0);
    CU_ASSERT_EQUAL(e.next_pid, 101);
    srv_txn_meta *m = get(&e, "x");
    CU_ASSERT_EQUAL(m->img.prev_producer_id, 5);
    CU_ASSERT_EQUAL(m->last_epoch, 32766);
    /* the retry of that call, with the old id and its exhausted epoch, is valid */
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 1, 5, 32766), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 100);
    CU_ASSERT_EQUAL(e.answer_epoch, 0); /* expected == last epoch: no second bump */

    /* v2 EndTxn at epoch MaxValue - 1: Prepare at MaxValue, Complete at the next id, epoch 0 */
    put_at(&e, "y", 7, 32766, SRV_TXN_ONGOING);
    CU_ASSERT_EQUAL(do_end(&e, "y", 7, 32766, 1, 2), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 101);
    CU_ASSERT_EQUAL(e.answer_epoch, 0);
    m = get(&e, "y");
    CU_ASSERT_EQUAL(m->img.producer_epoch, 32767);
    CU_ASSERT_EQUAL(m->img.next_producer_id, 101);
    CU_ASSERT_EQUAL(do_complete(&e, "y"), 0);
    CU_ASSERT_EQUAL(m->img.producer_id, 101);
    CU_ASSERT_EQUAL(m->img.producer_epoch, 0);
    CU_ASSERT_EQUAL(m->img.prev_producer_id, 7);
    CU_ASSERT_EQUAL(m->img.next_producer_id, -1);
    /* the client's retry with the old id and MaxValue - 1 is answered NONE */
    CU_ASSERT_EQUAL(do_end(&e, "y", 7, 32766, 1, 2), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 101);
    CU_ASSERT_EQUAL(e.answer_epoch, 0);

    /* A timeout fence at MaxValue - 1 takes MaxValue; a v2 retry of the abort
     * hands MaxValue to the client, whose next transaction cannot commit
     * (Kafka's bump overflows and throws: an unknown error), only abort. */
    e.cfg.tv_level = 2;
    m = put_at(&e, "z", 9, 32766, SRV_TXN_ONGOING);
    e.now += 120000;
    srv_txn_step s;
    srv_txn_decide_timeout(&e.cfg, m, e.now, &s);
    CU_ASSERT_EQUAL(run(&e, m, &s), 0);
    CU_ASSERT_EQUAL(m->img.producer_epoch, 32767);
    CU_ASSERT_EQUAL(do_complete(&e, "z"), 0);
    CU_ASSERT_EQUAL(do_end(&e, "z", 9, 32766, 0, 2), 0);
    CU_ASSERT_EQUAL(e.answer_epoch, 32767);
    CU_ASSERT_EQUAL(do_add(&e, "z", 9, 32767, "t", 0, 2), 0);
    int before = e.nlog;
    CU_ASSERT_EQUAL(do_end(&e, "z", 9, 32767, 1, 2), KP_ERR_UNKNOWN_SERVER_ERROR);
    CU_ASSERT_EQUAL(e.nlog, before);
    CU_ASSERT_EQUAL(do_end(&e, "z", 9, 32767, 0, 2), 0);
    CU_ASSERT_EQUAL(m->img.producer_epoch, 32767);
    CU_ASSERT_EQUAL(do_complete(&e, "z"), 0);
    CU_ASSERT_EQUAL(m->img.producer_id, 102); /* the abort moved it to the next id */
    CU_ASSERT_EQUAL(m->img.producer_epoch, 0);
    env_free(&e);
}

/* Fencing a zombie: a new instance aborts the ongoing transaction with a
 * bumped epoch; the old instance is fenced everywhere; a failed fence write
 * keeps the epoch in memory and is not bumped again. */
static void test_fencing(void)
{
    for (int16_t tv = 0; tv <= 2; tv += 2) {
        env e;
        env_init(&e, tv);
        CU_ASSERT_EQUAL(do_init(&e, "x", 60000, 0, -1, -1), 0);
        CU_ASSERT_EQUAL(do_add(&e, "x", 0, 0, "t", 0, tv), 0);
        /* the new instance: the write fails once */
        e.fail_next = 1;
        CU_ASSERT_EQUAL(do_init(&e, "x", 60000, 0, -1, -1), KP_ERR_NOT_ENOUGH_REPLICAS);
        srv_txn_meta *m = get(&e, "x");
        CU_ASSERT_EQUAL(m->img.producer_epoch, 1);
        CU_ASSERT(m->failed_fence);
        CU_ASSERT_EQUAL(m->img.state, SRV_TXN_ONGOING);
        /* the zombie is already fenced */
        CU_ASSERT_EQUAL(do_add(&e, "x", 0, 0, "u", 0, tv), KP_ERR_PRODUCER_FENCED);
        CU_ASSERT_EQUAL(do_end(&e, "x", 0, 0, 1, tv), KP_ERR_PRODUCER_FENCED);
        /* the retry writes the fence with the same epoch */
        CU_ASSERT_EQUAL(do_init(&e, "x", 60000, 0, -1, -1), KP_ERR_CONCURRENT_TRANSACTIONS);
        CU_ASSERT_EQUAL(m->img.state, SRV_TXN_PREPARE_ABORT);
        CU_ASSERT_EQUAL(m->img.producer_epoch, 1);
        CU_ASSERT_EQUAL(e.markers, SRV_TXN_MARK_ABORT);
        CU_ASSERT_EQUAL(do_init(&e, "x", 60000, 0, -1, -1), KP_ERR_CONCURRENT_TRANSACTIONS);
        CU_ASSERT_EQUAL(do_end(&e, "x", 0, 0, 1, 0), KP_ERR_PRODUCER_FENCED);
        CU_ASSERT_EQUAL(do_complete(&e, "x"), 0);
        CU_ASSERT_FALSE(m->failed_fence);
        CU_ASSERT_EQUAL(do_init(&e, "x", 60000, 0, -1, -1), 0);
        CU_ASSERT_EQUAL(e.answer_epoch, 2);
        CU_ASSERT_EQUAL(do_add(&e, "x", 0, 0, "t", 0, tv), KP_ERR_PRODUCER_FENCED);
        CU_ASSERT_EQUAL(do_init(&e, "x", 60000, 1, 0, 0), KP_ERR_PRODUCER_FENCED);
        env_free(&e);
    }
}

/* transaction.timeout.ms (TransactionStateManager.timedOutTransactions,
 * abortTimedOutTransactions) and transactional.id.expiration.ms. */
static void test_timeout_and_expiration(void)
{
    env e;
    env_init(&e, 0);
    e.cfg.id_expiration_ms = 5000;
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 0, -1, -1), 0);
    srv_txn_meta *m = get(&e, "x");
    CU_ASSERT_FALSE(srv_txn_timed_out(m, e.now + 100000)); /* nothing ongoing */
    int64_t t0 = e.now;
    CU_ASSERT_EQUAL(do_add(&e, "x", 0, 0, "t", 0, 0), 0);
    CU_ASSERT_FALSE(srv_txn_timed_out(m, t0 + 1000));
    CU_ASSERT(srv_txn_timed_out(m, t0 + 1001));
    CU_ASSERT_FALSE(srv_txn_expired(&e.cfg, m, t0 + 100000)); /* Ongoing never expires */
    e.now = t0 + 1001;
    srv_txn_step s;
    srv_txn_decide_timeout(&e.cfg, m, e.now, &s);
    CU_ASSERT(s.write && s.fence);
    CU_ASSERT_EQUAL(run(&e, m, &s), 0);
    CU_ASSERT_EQUAL(m->img.state, SRV_TXN_PREPARE_ABORT);
    CU_ASSERT_EQUAL(m->img.producer_epoch, 1);
    CU_ASSERT_EQUAL(e.markers, SRV_TXN_MARK_ABORT);
    CU_ASSERT_FALSE(srv_txn_timed_out(m, e.now + 100000));
    CU_ASSERT_FALSE(srv_txn_expired(&e.cfg, m, e.now + 100000)); /* Prepare* never expires */
    /* the producer learns it on its next request */
    CU_ASSERT_EQUAL(do_end(&e, "x", 0, 0, 1, 0), KP_ERR_PRODUCER_FENCED);
    CU_ASSERT_EQUAL(do_complete(&e, "x"), 0);
    int64_t t1 = e.now;
    CU_ASSERT_FALSE(srv_txn_expired(&e.cfg, m, t1 + 4999));
    CU_ASSERT(srv_txn_expired(&e.cfg, m, t1 + 5000));
    srv_txn_decide_expire(&e.cfg, m, &s);
    srv_txn_begin(m, &s);
    CU_ASSERT_FALSE(srv_txn_expired(&e.cfg, m, t1 + 5000)); /* being expired */
    srv_txn_step s2;
    srv_txn_decide_init(&e.cfg, m, 1000, false, -1, -1, e.next_pid, e.now, &s2);
    CU_ASSERT_EQUAL(s2.error, KP_ERR_CONCURRENT_TRANSACTIONS);
    srv_txn_write_failed(m, &s); /* the tombstone did not make it: the id stays */
    srv_txn_step_clear(&s);
    CU_ASSERT(srv_txn_expired(&e.cfg, m, t1 + 5000));
    srv_txn_decide_expire(&e.cfg, m, &s);
    CU_ASSERT_EQUAL(run(&e, m, &s), 0);
    CU_ASSERT_PTR_NULL(get(&e, "x"));
    CU_ASSERT(e.log[e.nlog - 1].tombstone);
    /* after expiration the id starts over with a new producer id */
    CU_ASSERT_EQUAL(do_init(&e, "x", 1000, 0, -1, -1), 0);
    CU_ASSERT_EQUAL(e.answer_pid, 1);
    CU_ASSERT_EQUAL(e.answer_epoch, 0);
    env_free(&e);
}

/* ---- replay ------------------------------------------------------------ */

static void replay_all(const env *e, srv_txn_map *into)
{
    srv_txn_map_init(into);
    for (int i = 0; i < e->nlog; i++) {
        const rec *r = &e->log[i];
        int rc = srv_txn_replay_record(into, r->key, (int32_t)r->klen, r->tombstone ? NULL : r->value,
                                       r->tombstone ? -1 : (int32_t)r->vlen);
        CU_ASSERT_EQUAL(rc, SRV_TXN_LOG_OK);
    }
}

typedef struct cmp_ctx {
    const srv_txn_map *other;
    int mismatches;
    int seen;
    int v0;
} cmp_ctx;

static void cmp_one(srv_txn_meta *m, void *arg)
{
    cmp_ctx *c = arg;
    c->seen++;
    const srv_txn_meta *o = srv_txn_map_get(c->other, m->txn_id, m->id_len);
    srv_txn_image mine;
    CU_ASSERT_FATAL(srv_txn_image_copy(&mine, &m->img) == 0);
    if (c->v0) { /* version 0 has no tagged fields: Kafka loads their defaults too */
        mine.prev_producer_id = SRV_TXN_NO_PID;
        mine.next_producer_id = SRV_TXN_NO_PID;
        mine.client_tv = 0;
    }
    if (!o || !srv_txn_image_equal(&mine, &o->img) || o->pending != m->pending ||
        o->last_epoch != SRV_TXN_NO_EPOCH) {
        c->mismatches++;
        if (getenv("TXN_DEBUG"))
            fprintf(stderr, "\n%s: state %d/%d epoch %d/%d pid %lld/%lld\n", m->txn_id, m->img.state,
                    o ? (int)o->img.state : -1, m->img.producer_epoch, o ? o->img.producer_epoch : -9,
                    (long long)m->img.producer_id, o ? (long long)o->img.producer_id : -9LL);
    }
    srv_txn_image_clear(&mine);
}

/* The fixture's records replay to the last state of each id: none (all expired). */
static void test_replay_fixtures(void)
{
    srv_txn_map map;
    srv_txn_map_init(&map);
    for (int i = 0; i < TXN_NFIXTURES; i++) {
        const txn_fixture *f = &txn_fixtures[i];
        CU_ASSERT_EQUAL(
            srv_txn_replay_record(&map, (const uint8_t *)f->key, f->klen, (const uint8_t *)f->value, f->vlen),
            SRV_TXN_LOG_OK);
        if (i == 23) { /* before the tombstones: three ids, in their last states */
            CU_ASSERT_EQUAL(map.count, 3);
            CU_ASSERT_EQUAL(srv_txn_map_get(&map, "tx-rdk", 6)->img.state, SRV_TXN_COMPLETE_ABORT);
            CU_ASSERT_EQUAL(srv_txn_map_get(&map, "tx-java", 7)->img.producer_epoch, 4);
            CU_ASSERT_EQUAL(srv_txn_map_get(&map, "tx-timeout", 10)->img.state, SRV_TXN_COMPLETE_ABORT);
        }
        if (i == 16) { /* a load here finds tx-rdk done and tx-java ongoing */
            CU_ASSERT_EQUAL(srv_txn_markers_owed(srv_txn_map_get(&map, "tx-java", 7)), SRV_TXN_MARK_NONE);
        }
        if (i == 17) { /* ... and here a fence whose markers must be re-sent */
            CU_ASSERT_EQUAL(srv_txn_markers_owed(srv_txn_map_get(&map, "tx-java", 7)), SRV_TXN_MARK_ABORT);
        }
    }
    CU_ASSERT_EQUAL(map.count, 0);
    /* a record of another type is skipped, a damaged one changes nothing */
    static const uint8_t other[] = {0x00, 0x01, 0x00, 0x01, 'g'};
    CU_ASSERT_EQUAL(srv_txn_replay_record(&map, other, sizeof(other), NULL, -1), SRV_TXN_LOG_E_KEY_VERSION);
    const txn_fixture *f = &txn_fixtures[1];
    CU_ASSERT_EQUAL(
        srv_txn_replay_record(&map, (const uint8_t *)f->key, f->klen, (const uint8_t *)f->value, f->vlen - 1),
        SRV_TXN_LOG_E_MALFORMED);
    CU_ASSERT_EQUAL(map.count, 0);
    srv_txn_map_free(&map);
}

/* A load that finds PrepareCommit resumes it: markers, then CompleteCommit. */
static void test_resume(void)
{
    env e;
    env_init(&e, 2);
    int16_t ep = setup(&e, ST_PCOMMIT, 2);
    (void)ep;
    srv_txn_map loaded;
    replay_all(&e, &loaded);
    srv_txn_meta *m = srv_txn_map_get(&loaded, "x", 1);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_EQUAL(srv_txn_markers_owed(m), SRV_TXN_MARK_COMMIT);
    CU_ASSERT_EQUAL(m->img.nparts, 1); /* the markers go to these partitions */
    srv_txn_step s;
    srv_txn_decide_complete(m, e.now + 5, &s);
    CU_ASSERT(s.write);
    srv_txn_begin(m, &s);
    srv_txn_written(m, &s);
    srv_txn_step_clear(&s);
    CU_ASSERT_EQUAL(m->img.state, SRV_TXN_COMPLETE_COMMIT);
    CU_ASSERT_EQUAL(m->img.producer_epoch, 2);
    srv_txn_map_free(&loaded);
    env_free(&e);
}

/* Random operations by clients that mostly hold the right producer id and
 * epoch; then the log replays to exactly the metadata in memory. */
static void test_replay_random(void)
{
    static const char *ids[] = {"a", "b", "c", "d", "e"};
    int by_state[8] = {0}, tombstones = 0, timeouts = 0, rotations = 0;
    /* TXN_SEEDS=n runs more sequences (a longer search for broken invariants). */
    unsigned nseeds = getenv("TXN_SEEDS") ? (unsigned)atoi(getenv("TXN_SEEDS")) : 20;
    for (unsigned seed = 1; seed <= nseeds; seed++) {
        srand(seed);
        env e;
        env_init(&e, (int16_t)(seed % 3));
        e.cfg.id_expiration_ms = 1500;
        int64_t held_pid[5];
        int16_t held_epoch[5];
        for (int i = 0; i < 5; i++) {
            held_pid[i] = -1;
            held_epoch[i] = -1;
        }
        /* one id starts next to exhaustion, through a record of its own */
        srv_txn_meta *m = put_at(&e, "e", 1000, 32764, SRV_TXN_EMPTY);
        srv_txn_step s0;
        memset(&s0, 0, sizeof(s0));
        s0.write = true;
        srv_txn_image_copy(&s0.next, &m->img);
        kp_writer kw, vw;
        kp_writer_init(&kw, 16);
        kp_writer_init(&vw, 64);
        srv_txn_step_record(&e.cfg, m, &s0, &kw, &vw);
        srv_txn_image_clear(&s0.next);
        e.log = malloc(sizeof(rec) * 64);
        e.caplog = 64;
        e.log[e.nlog++] = (rec){kw.buf, vw.buf, kw.len, vw.len, 0};
        held_pid[4] = 1000;
        held_epoch[4] = 32764;
        e.next_pid = 2000;
        for (int op = 0; op < 3000; op++) {
            int i = rand() % 5;
            const char *id = ids[i];
            /* v2 clients need the feature; with it, old clients too */
            int16_t tv = e.cfg.tv_level >= 2 && rand() % 4 ? 2 : 0;
            int stale = rand() % 10 == 0;
            int64_t pid = held_pid[i];
            int16_t epoch = (int16_t)(held_epoch[i] - (stale ? 1 : 0));
            e.now += rand() % 300;
            int r = rand() % 100;
            if (r < 12) {
                int16_t err = do_init(&e, id, 1000 + rand() % 4000, rand() % 3 == 0 && pid >= 0, pid, epoch);
                if (err == 0) {
                    held_pid[i] = e.answer_pid;
                    held_epoch[i] = e.answer_epoch;
                }
            } else if (r < 45) {
                char topic[2] = {(char)('p' + rand() % 3), 0};
                do_add(&e, id, pid, epoch, topic, rand() % 4, tv);
            } else if (r < 50 && get(&e, id)) {
                srv_txn_step s;
                srv_txn_decide_add_offsets(get(&e, id), pid, epoch, rand() % 50, tv, e.now, &s);
                run(&e, get(&e, id), &s);
            } else if (r < 70) {
                int16_t err = do_end(&e, id, pid, epoch, rand() % 2, tv);
                if (err == 0 && tv >= 2 && e.answer_pid >= 0) {
                    held_pid[i] = e.answer_pid;
                    held_epoch[i] = e.answer_epoch;
                }
            } else if (r < 88) {
                m = get(&e, id);
                if (m && srv_txn_markers_owed(m) != SRV_TXN_MARK_NONE)
                    do_complete(&e, id);
            } else if (r < 94) {
                m = get(&e, id);
                if (m && srv_txn_timed_out(m, e.now)) {
                    timeouts++;
                    srv_txn_step s;
                    srv_txn_decide_timeout(&e.cfg, m, e.now, &s);
                    run(&e, m, &s);
                }
            } else {
                m = get(&e, id);
                if (m && srv_txn_expired(&e.cfg, m, e.now)) {
                    srv_txn_step s;
                    srv_txn_decide_expire(&e.cfg, m, &s);
                    run(&e, m, &s);
                }
            }
        }
        for (int i = 0; i < e.nlog; i++) {
            srv_txn_logrec r;
            CU_ASSERT_EQUAL(srv_txn_log_decode(e.log[i].key, (int32_t)e.log[i].klen,
                                               e.log[i].tombstone ? NULL : e.log[i].value,
                                               e.log[i].tombstone ? -1 : (int32_t)e.log[i].vlen, &r),
                            0);
            if (r.tombstone)
                tombstones++;
            else
                by_state[r.img.state]++;
            if (!r.tombstone && r.img.prev_producer_id >= 0 && r.img.prev_producer_id != r.img.producer_id)
                rotations++;
            srv_txn_logrec_clear(&r);
        }
        srv_txn_map loaded;
        replay_all(&e, &loaded);
        cmp_ctx c = {&loaded, 0, 0, e.cfg.tv_level == 0};
        srv_txn_map_each(&e.map, cmp_one, &c);
        CU_ASSERT_EQUAL(c.mismatches, 0);
        CU_ASSERT_EQUAL(c.seen, (int)loaded.count);
        CU_ASSERT(e.nlog > 500);
        srv_txn_map_free(&loaded);
        env_free(&e);
    }
    /* the sequences went through every persisted state, and past the edges */
    for (int st = SRV_TXN_EMPTY; st <= SRV_TXN_COMPLETE_ABORT; st++)
        CU_ASSERT(by_state[st] > 20);
    CU_ASSERT(tombstones > 0);
    CU_ASSERT(timeouts > 0);
    CU_ASSERT(rotations > 0);
    if (getenv("TXN_DEBUG"))
        fprintf(stderr, "\nstates %d %d %d %d %d %d, tombstones %d, timeouts %d, rotated records %d\n",
                by_state[0], by_state[1], by_state[2], by_state[3], by_state[4], by_state[5], tombstones,
                timeouts, rotations);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("txn_state", NULL, NULL);
    CU_add_test(s, "Kafka's records rebuilt byte for byte from the same requests", test_kafka_sequence);
    CU_add_test(s, "EndTxn, transaction version 2: Kafka's table", test_end_v2_table);
    CU_add_test(s, "EndTxn, transaction version 1", test_end_v1_table);
    CU_add_test(s, "EndTxn: unknown id, other producer, pending write", test_end_misc);
    CU_add_test(s, "AddPartitionsToTxn, verify-only, AddOffsetsToTxn", test_add_partitions);
    CU_add_test(s, "InitProducerId: checks, bumps, KIP-360", test_init);
    CU_add_test(s, "epoch exhaustion: producer id rotation", test_exhaustion);
    CU_add_test(s, "fencing a zombie, a failed fence write", test_fencing);
    CU_add_test(s, "transaction timeout and transactional id expiration", test_timeout_and_expiration);
    CU_add_test(s, "replay of Kafka's records", test_replay_fixtures);
    CU_add_test(s, "replay resumes a Prepare state", test_resume);
    CU_add_test(s, "replay of random operations gives the same metadata", test_replay_random);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_quorum_store.c — unit tests of the metadata quorum's pure logic: the
 * compacted store that is the state machine and the raft snapshot
 * (quorum_store.c), the replay of its registration ('N') and placement ('P')
 * records into versions, round-robin placement over unfenced brokers, and
 * the controller in quorum mode driven through a fake quorum (an append is
 * committed into a store whose version the controller adopts, as quorum.c
 * does): placement of created topics and added partitions, RF > 1 and
 * no-broker refusals, NOT_CONTROLLER on a follower. Also the configuration
 * of a quorum (controller.quorum.voters and its checks).
 *
 * Owns: nothing outside the process. Must not: depend on shards, raft or
 * disk.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "config.h"
#include "controller.h"
#include "errors.h"
#include "kb_test.h"
#include "quorum_store.h"

/* ---- helpers ------------------------------------------------------------- */

static void add_rec(kp_batch_builder *bb, const void *key, size_t klen, const void *val, int32_t vlen)
{
    kp_bytes v = vlen < 0 ? KP_BYTES_NULL : (kp_bytes){val, vlen};
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_add(bb, 1, (kp_bytes){key, (int32_t)klen}, v, NULL, 0), 0);
}

static void apply_bb(srv_qstore *s, kp_batch_builder *bb)
{
    kp_writer w;
    kp_writer_init(&w, 256);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(bb, &w), 0);
    kp_batch_builder_free(bb);
    CU_ASSERT_EQUAL(srv_qstore_apply(s, w.buf, w.len), 0);
    kp_writer_free(&w);
}

static void add_broker(kp_batch_builder *bb, int32_t id, const char *host, int port, int fenced)
{
    srv_broker_reg r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    snprintf(r.host, sizeof(r.host), "%s", host);
    r.port = (uint16_t)port;
    r.fenced = fenced;
    uint8_t key[5];
    srv_ctl_broker_key(id, key);
    kp_writer w;
    kp_writer_init(&w, 64);
    CU_ASSERT_EQUAL_FATAL(srv_ctl_encode_broker(&w, &r), 0);
    add_rec(bb, key, 5, w.buf, (int32_t)w.len);
    kp_writer_free(&w);
}

/* ---- the store -------------------------------------------------------------- */

static void test_store_compacts_and_roundtrips(void)
{
    srv_qstore s = {0};
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    add_rec(&bb, "b", 1, "1", 1);
    add_rec(&bb, "a", 1, "2", 1);
    add_rec(&bb, "c", 1, "3", 1);
    add_rec(&bb, "b", 1, "4", 1); /* replaces b */
    apply_bb(&s, &bb);
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    add_rec(&bb, "c", 1, NULL, -1); /* tombstone: gone */
    add_rec(&bb, "ab", 2, "5", 1);
    apply_bb(&s, &bb);
    CU_ASSERT_EQUAL_FATAL(s.n, 3);
    CU_ASSERT(s.r[0].klen == 1 && s.r[0].key[0] == 'a' && s.r[0].val[0] == '2');
    CU_ASSERT(s.r[1].klen == 2 && memcmp(s.r[1].key, "ab", 2) == 0);
    CU_ASSERT(s.r[2].klen == 1 && s.r[2].key[0] == 'b' && s.r[2].val[0] == '4');
    /* The snapshot: one batch that rebuilds the same store. */
    kp_writer w;
    kp_writer_init(&w, 256);
    CU_ASSERT_EQUAL(srv_qstore_encode(&s, &w), 0);
    srv_qstore r = {0};
    CU_ASSERT_EQUAL(srv_qstore_apply(&r, w.buf, w.len), 0);
    CU_ASSERT_EQUAL_FATAL(r.n, s.n);
    for (int i = 0; i < r.n; i++) {
        CU_ASSERT(r.r[i].klen == s.r[i].klen && memcmp(r.r[i].key, s.r[i].key, r.r[i].klen) == 0);
        CU_ASSERT(r.r[i].vlen == s.r[i].vlen && memcmp(r.r[i].val, s.r[i].val, r.r[i].vlen) == 0);
    }
    /* Anything but whole batches is refused, the store unchanged. */
    CU_ASSERT_NOT_EQUAL(srv_qstore_apply(&r, w.buf, w.len - 3), 0);
    w.buf[w.len - 1] ^= 1; /* CRC */
    CU_ASSERT_NOT_EQUAL(srv_qstore_apply(&r, w.buf, w.len), 0);
    CU_ASSERT_EQUAL(r.n, 3);
    kp_writer_free(&w);
    srv_qstore_free(&s);
    srv_qstore_free(&r);
}

static void test_registrations_replay_sorted_last_wins(void)
{
    srv_qstore s = {0};
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    add_broker(&bb, 3, "127.0.0.3", 9093, 0);
    add_broker(&bb, 1, "127.0.0.1", 9091, 0);
    add_broker(&bb, 2, "127.0.0.2", 9092, 0);
    add_broker(&bb, 3, "127.0.0.3", 9999, 1); /* fenced, new port */
    apply_bb(&s, &bb);
    srv_meta *m = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_qstore_meta(&s, 7, &m), 0);
    CU_ASSERT_EQUAL(m->version, 7);
    CU_ASSERT_EQUAL_FATAL(m->nbrokers, 3);
    CU_ASSERT(m->brokers[0].id == 1 && m->brokers[1].id == 2 && m->brokers[2].id == 3);
    CU_ASSERT_STRING_EQUAL(m->brokers[1].host, "127.0.0.2");
    CU_ASSERT(m->brokers[2].fenced && m->brokers[2].port == 9999);
    CU_ASSERT_PTR_NOT_NULL(srv_meta_broker(m, 2));
    CU_ASSERT_PTR_NULL(srv_meta_broker(m, 4));
    srv_meta_unref(m);
    srv_qstore_free(&s);
}

static void test_round_robin_skips_fenced(void)
{
    srv_qstore s = {0};
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    add_broker(&bb, 5, "h5", 1, 0);
    add_broker(&bb, 1, "h1", 1, 0);
    add_broker(&bb, 3, "h3", 1, 1);
    add_broker(&bb, 2, "h2", 1, 0);
    apply_bb(&s, &bb);
    srv_meta *m = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_qstore_meta(&s, 1, &m), 0);
    int32_t l[7];
    memset(l, 0xff, sizeof(l));
    CU_ASSERT_EQUAL(srv_ctl_place(m, 1, 0, 7, l), 3);
    int32_t want[7] = {2, 5, 1, 2, 5, 1, 2}; /* ids 1,2,5 from the second on; 3 is fenced */
    CU_ASSERT_EQUAL(memcmp(l, want, sizeof(l)), 0);
    /* Only from `from` on: earlier partitions keep their leaders. */
    int32_t l2[4] = {9, 9, -1, -1};
    CU_ASSERT_EQUAL(srv_ctl_place(m, 0, 2, 4, l2), 3);
    CU_ASSERT(l2[0] == 9 && l2[1] == 9 && l2[2] == 5 && l2[3] == 1);
    srv_meta_unref(m);
    srv_meta *empty = srv_meta_new_empty();
    CU_ASSERT_EQUAL(srv_ctl_place(empty, 0, 0, 3, l), 0);
    srv_meta_unref(empty);
    srv_qstore_free(&s);
}

/* ---- the controller with a fake quorum ----------------------------------------- */

static srv_qstore g_store;
static srv_controller *g_ctl;
static int g_leader = 1;
static uint64_t g_applied;
static uint8_t g_next_id;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return 1700000000000;
}

static int fake_new_id(void *arg, kp_uuid *id)
{
    (void)arg;
    memset(id->b, 0, 16);
    id->b[15] = ++g_next_id;
    return 0;
}

/* Committed at once: the store applies the entry and the controller adopts
 * the version it replays to, before the append completes (quorum.c's order). */
static void fake_append(void *arg, const uint8_t *batch, size_t len, st_accept_cb accepted, st_append_cb done,
                        void *ctx)
{
    (void)arg;
    (void)accepted;
    CU_ASSERT_EQUAL_FATAL(srv_qstore_apply(&g_store, batch, len), 0);
    srv_meta *m = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_qstore_meta(&g_store, ++g_applied, &m), 0);
    srv_ctl_adopt(g_ctl, m);
    done(ctx, 0, 0);
}

static void fake_publish(void *arg, srv_controller *c, srv_ctl_op *op, srv_meta *m)
{
    (void)arg;
    CU_ASSERT_PTR_EQUAL(m, srv_ctl_current(c)); /* the committed version */
    srv_ctl_published(c, op);
}

static void fake_finish(void *arg, srv_ctl_op *op)
{
    (void)arg;
    (void)op;
}

static int fake_is_leader(void *arg)
{
    (void)arg;
    return g_leader;
}

static const srv_ctl_env fake_env = {NULL, fake_now, fake_new_id, fake_append, fake_publish, fake_finish};

static void quorum_start(int nbrokers)
{
    srv_qstore_free(&g_store);
    g_applied = 0;
    g_leader = 1;
    g_ctl = srv_ctl_new(&fake_env, 3);
    CU_ASSERT_FATAL(g_ctl != NULL);
    srv_ctl_set_quorum(g_ctl, fake_is_leader, NULL);
    for (int i = 1; i <= nbrokers; i++) {
        srv_broker_reg r;
        memset(&r, 0, sizeof(r));
        r.id = i;
        snprintf(r.host, sizeof(r.host), "127.0.0.%d", i);
        r.port = 9092;
        srv_ctl_op op;
        memset(&op, 0, sizeof(op));
        op.kind = SRV_CTL_REGISTER;
        op.reg = &r;
        srv_ctl_enqueue(g_ctl, &op);
        CU_ASSERT_EQUAL(op.reg_error, 0);
    }
    CU_ASSERT_EQUAL(srv_ctl_current(g_ctl)->nbrokers, nbrokers);
}

static void quorum_stop(void)
{
    srv_ctl_free(g_ctl);
    g_ctl = NULL;
    srv_qstore_free(&g_store);
}

static int16_t run_create(const char *name, int32_t nparts, int16_t rf, srv_topic_spec *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->name = kp_str_c(name);
    sp->nparts = nparts;
    sp->replication = rf;
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_CREATE;
    op.nspecs = 1;
    op.specs = sp;
    srv_ctl_enqueue(g_ctl, &op);
    return sp->error;
}

static void test_controller_places_on_registered_brokers(void)
{
    quorum_start(3);
    srv_topic_spec sp;
    CU_ASSERT_EQUAL(run_create("t", 6, -1, &sp), 0);
    const srv_topic *t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("t"));
    CU_ASSERT_FATAL(t != NULL && t->leaders != NULL);
    int per[4] = {0};
    for (int p = 0; p < 6; p++) {
        CU_ASSERT(t->leaders[p] >= 1 && t->leaders[p] <= 3);
        per[t->leaders[p]]++;
        if (p)
            CU_ASSERT_EQUAL(t->leaders[p], t->leaders[p - 1] % 3 + 1); /* consecutive brokers */
    }
    CU_ASSERT(per[1] == 2 && per[2] == 2 && per[3] == 2);
    int32_t first = t->leaders[0];
    /* Added partitions keep the old leaders and continue the round. */
    srv_topic_spec add;
    memset(&add, 0, sizeof(add));
    add.name = kp_str_c("t");
    add.nparts = 8;
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_ADD_PARTITIONS;
    op.nspecs = 1;
    op.specs = &add;
    srv_ctl_enqueue(g_ctl, &op);
    CU_ASSERT_EQUAL(add.error, 0);
    t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("t"));
    CU_ASSERT_FATAL(t != NULL && t->nparts == 8 && t->leaders != NULL);
    CU_ASSERT_EQUAL(t->leaders[0], first);
    CU_ASSERT_EQUAL(t->leaders[6], t->leaders[5] % 3 + 1);
    /* A config change keeps the placement (its 'P' record is untouched). */
    srv_topic_spec alt;
    memset(&alt, 0, sizeof(alt));
    alt.name = kp_str_c("t");
    srv_cfg_alter ch = {0, "retention.ms", "1000"};
    alt.nalter = 1;
    alt.alter = &ch;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_ALTER_CONFIGS;
    op.nspecs = 1;
    op.specs = &alt;
    srv_ctl_enqueue(g_ctl, &op);
    CU_ASSERT_EQUAL(alt.error, 0);
    t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("t"));
    CU_ASSERT_FATAL(t != NULL && t->leaders != NULL);
    CU_ASSERT_EQUAL(t->leaders[0], first);
    CU_ASSERT_STRING_EQUAL(srv_topic_cfg_get(t, "retention.ms"), "1000");
    /* Deleted: the topic and its placement leave the store. */
    srv_topic_spec del;
    memset(&del, 0, sizeof(del));
    del.name = kp_str_c("t");
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_DELETE;
    op.nspecs = 1;
    op.specs = &del;
    srv_ctl_enqueue(g_ctl, &op);
    CU_ASSERT_EQUAL(del.error, 0);
    CU_ASSERT_EQUAL(g_store.n, 3); /* the three registrations only */
    quorum_stop();
}

static void test_controller_refusals(void)
{
    quorum_start(0);
    srv_topic_spec sp;
    CU_ASSERT_EQUAL(run_create("nobody", 1, -1, &sp), KP_ERR_INVALID_REPLICATION_FACTOR);
    CU_ASSERT_PTR_NOT_NULL(strstr(sp.message, "only 0 broker(s) are registered"));
    quorum_stop();
    quorum_start(3);
    CU_ASSERT_EQUAL(run_create("rf3", 1, 3, &sp), KP_ERR_INVALID_REPLICATION_FACTOR);
    CU_ASSERT_PTR_NOT_NULL(strstr(sp.message, "does not replicate partition data"));
    g_leader = 0;
    CU_ASSERT_EQUAL(run_create("follower", 1, -1, &sp), KP_ERR_NOT_CONTROLLER);
    CU_ASSERT_PTR_NULL(srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("follower")));
    quorum_stop();
}

/* ---- configuration ---------------------------------------------------------------- */

static int finish_with(const char *voters, const char *node, char *err, size_t errlen, srv_config *c)
{
    srv_config_init(c, NULL);
    char text[1024];
    snprintf(text, sizeof(text),
             "process.roles=broker,controller\nnode.id=%s\ncontroller.quorum.voters=%s\n"
             "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://"
             "127.0.0.1:9093\ncontroller.listener.names=CONTROLLER\n"
             "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n",
             node, voters);
    int rc = srv_config_load_string(c, text, strlen(text), "t.properties", err, errlen);
    return rc ? rc : srv_config_finish(c, err, errlen);
}

static void test_config_voters(void)
{
    srv_config *c = calloc(1, sizeof(*c));
    CU_ASSERT_FATAL(c != NULL);
    char err[512];
    CU_ASSERT_EQUAL(
        finish_with("1@127.0.0.1:9093,2@127.0.0.2:9094,3@127.0.0.3:9095", "2", err, sizeof(err), c), 0);
    CU_ASSERT_EQUAL_FATAL(c->nvoters, 3);
    CU_ASSERT(c->voters[1].id == 2 && strcmp(c->voters[1].host, "127.0.0.2") == 0 &&
              c->voters[1].port == 9094);
    CU_ASSERT_STRING_EQUAL(c->voters[2].host, "127.0.0.3");
    CU_ASSERT_EQUAL(c->ctl_port, 9093);
    CU_ASSERT_EQUAL(c->n_listeners, 1); /* the controller listener is raft's, not a client listener */
    CU_ASSERT_EQUAL(c->broker_session_timeout_ms, 9000);
    CU_ASSERT_EQUAL(c->broker_heartbeat_interval_ms, 2000);
    /* One voter: the single-node broker, exactly as before quorums. */
    CU_ASSERT_EQUAL(finish_with("1@127.0.0.1:9093", "1", err, sizeof(err), c), 0);
    CU_ASSERT_EQUAL(c->nvoters, 0);
    CU_ASSERT_NOT_EQUAL(finish_with("1@127.0.0.1:9093,2@127.0.0.2:9094", "4", err, sizeof(err), c), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not one of controller.quorum.voters"));
    CU_ASSERT_NOT_EQUAL(finish_with("1@127.0.0.1:9093,2127.0.0.2:9094", "1", err, sizeof(err), c), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected id@host:port"));
    CU_ASSERT_NOT_EQUAL(finish_with("1@127.0.0.1:9093,1@127.0.0.2:9094", "1", err, sizeof(err), c), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "twice"));
    /* Raft's transport parses IPv4 addresses only: a name or IPv6 would
     * never form a quorum, so it is refused at start. */
    CU_ASSERT_NOT_EQUAL(finish_with("1@127.0.0.1:9093,2@kafka-2:9093", "1", err, sizeof(err), c), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "voter 2's host 'kafka-2' must be an IPv4 address"));
    CU_ASSERT_NOT_EQUAL(finish_with("1@127.0.0.1:9093,2@[::1]:9093", "1", err, sizeof(err), c), 0);
    free(c);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("quorum", NULL, NULL);
    CU_add_test(s, "store: last record per key, tombstones, snapshot round trip",
                test_store_compacts_and_roundtrips);
    CU_add_test(s, "registrations replay sorted, the last wins", test_registrations_replay_sorted_last_wins);
    CU_add_test(s, "round-robin placement skips fenced brokers", test_round_robin_skips_fenced);
    CU_add_test(s, "controller places partitions on registered brokers",
                test_controller_places_on_registered_brokers);
    CU_add_test(s, "controller refusals: no broker, RF > 1, not the leader", test_controller_refusals);
    CU_add_test(s, "controller.quorum.voters", test_config_voters);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

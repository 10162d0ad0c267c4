/*
 * test_quorum_store.c — unit tests of the metadata quorum's pure logic: the
 * compacted store that is the state machine and the raft snapshot
 * (quorum_store.c), the replay of its registration ('N') and placement ('P')
 * records into versions, round-robin placement over unfenced brokers, and
 * the controller in quorum mode driven through a fake quorum (an append is
 * committed into a store whose version the controller adopts, as quorum.c
 * does): placement of created topics and added partitions with their
 * replicas (rack-aware, defaults, manual assignments), the placement
 * record's versions, refusals, NOT_CONTROLLER on a follower. Also the configuration
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

static void add_broker_rack(kp_batch_builder *bb, int32_t id, const char *host, int port, int fenced,
                            const char *rack)
{
    srv_broker_reg r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    snprintf(r.rack, sizeof(r.rack), "%s", rack);
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

static void add_broker(kp_batch_builder *bb, int32_t id, const char *host, int port, int fenced)
{
    add_broker_rack(bb, id, host, port, fenced, "");
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
    srv_part_repl r[7];
    memset(l, 0xff, sizeof(l));
    CU_ASSERT_EQUAL(srv_ctl_place(m, 1, 0, 7, 1, l, r), 3);
    int32_t want[7] = {2, 5, 1, 2, 5, 1, 2}; /* ids 1,2,5 from the second on; 3 is fenced */
    CU_ASSERT_EQUAL(memcmp(l, want, sizeof(l)), 0);
    for (int p = 0; p < 7; p++)
        CU_ASSERT(r[p].nreplicas == 1 && r[p].nisr == 1 && r[p].replicas[0] == l[p] && r[p].isr[0] == l[p]);
    /* Only from `from` on: earlier partitions keep their leaders. */
    int32_t l2[4] = {9, 9, -1, -1};
    CU_ASSERT_EQUAL(srv_ctl_place(m, 0, 2, 4, 1, l2, r), 3);
    CU_ASSERT(l2[0] == 9 && l2[1] == 9 && l2[2] == 5 && l2[3] == 1);
    /* RF 3 over three live brokers: every partition on all three, the
     * leader first and the followers after it in id order. */
    CU_ASSERT_EQUAL(srv_ctl_place(m, 0, 0, 3, 3, l, r), 3);
    CU_ASSERT(r[0].replicas[0] == 1 && r[0].replicas[1] == 2 && r[0].replicas[2] == 5);
    CU_ASSERT(r[1].replicas[0] == 2 && r[1].replicas[1] == 5 && r[1].replicas[2] == 1);
    CU_ASSERT(l[2] == 5 && r[2].nisr == 3 && r[2].isr[1] == 1);
    /* More than the live brokers: counted, nothing written. */
    memset(l, 0xff, sizeof(l));
    CU_ASSERT_EQUAL(srv_ctl_place(m, 0, 0, 3, 4, l, r), 3);
    CU_ASSERT_EQUAL(l[0], -1);
    srv_meta_unref(m);
    srv_meta *empty = srv_meta_new_empty();
    CU_ASSERT_EQUAL(srv_ctl_place(empty, 0, 0, 3, 1, l, r), 0);
    srv_meta_unref(empty);
    srv_qstore_free(&s);
}

static void test_rack_aware_placement(void)
{
    srv_qstore s = {0};
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    /* Racks by id: a a a b b c; placement order a1 b4 c6 a2 b5 a3. */
    add_broker_rack(&bb, 1, "h", 1, 0, "a");
    add_broker_rack(&bb, 2, "h", 1, 0, "a");
    add_broker_rack(&bb, 3, "h", 1, 0, "a");
    add_broker_rack(&bb, 4, "h", 1, 0, "b");
    add_broker_rack(&bb, 5, "h", 1, 0, "b");
    add_broker_rack(&bb, 6, "h", 1, 0, "c");
    apply_bb(&s, &bb);
    srv_meta *m = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_qstore_meta(&s, 1, &m), 0);
    int32_t l[6];
    srv_part_repl r[6];
    CU_ASSERT_EQUAL(srv_ctl_place(m, 0, 0, 6, 3, l, r), 6);
    int32_t order[6] = {1, 4, 6, 2, 5, 3};
    for (int p = 0; p < 6; p++) {
        CU_ASSERT_EQUAL(l[p], order[p]); /* every broker leads one */
        CU_ASSERT_EQUAL(r[p].replicas[1], order[(p + 1) % 6]);
    }
    /* The first three partitions span three racks (later ones cannot: rack a
     * has half the brokers). */
    const char *rack_of = "?aaabbc";
    for (int p = 0; p < 3; p++) {
        char a = rack_of[r[p].replicas[0]], b = rack_of[r[p].replicas[1]], c = rack_of[r[p].replicas[2]];
        CU_ASSERT(a != b && b != c && a != c);
    }
    srv_meta_unref(m);
    srv_qstore_free(&s);
}

/* A version-0 placement (written before replication) replays as one
 * replica, in sync, epoch 0. */
static void test_placement_v0_replays(void)
{
    srv_qstore s = {0};
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    kp_uuid id;
    memset(id.b, 7, 16);
    kp_writer w;
    kp_writer_init(&w, 64);
    kp_write_i8(&w, 0);
    kp_write_string(&w, kp_str_c("old"));
    kp_write_uuid(&w, &id);
    kp_write_i32(&w, 2);
    kp_write_i32(&w, 0);
    uint8_t key[17];
    key[0] = 'T';
    memcpy(key + 1, id.b, 16);
    add_rec(&bb, key, 17, w.buf, (int32_t)w.len);
    kp_writer_free(&w);
    kp_writer_init(&w, 64);
    kp_write_i8(&w, 0);
    kp_write_i32(&w, 2);
    kp_write_i32(&w, 3);
    kp_write_i32(&w, 1);
    key[0] = SRV_PLACE_RECORD_KEY;
    add_rec(&bb, key, 17, w.buf, (int32_t)w.len);
    kp_writer_free(&w);
    apply_bb(&s, &bb);
    srv_meta *m = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_qstore_meta(&s, 1, &m), 0);
    const srv_topic *t = srv_meta_topic(m, kp_str_c("old"));
    CU_ASSERT_FATAL(t != NULL && t->leaders != NULL && t->repl != NULL);
    CU_ASSERT(t->leaders[0] == 3 && t->leaders[1] == 1);
    const srv_part_repl *r = srv_topic_repl(t, 1);
    CU_ASSERT(r->nreplicas == 1 && r->replicas[0] == 1 && r->nisr == 1 && r->isr[0] == 1 &&
              r->leader_epoch == 0);
    CU_ASSERT(srv_topic_is_replica(t, 0, 3) && !srv_topic_is_replica(t, 0, 1));
    srv_meta_unref(m);
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
    CU_ASSERT_EQUAL(run_create("rf4", 1, 4, &sp), KP_ERR_INVALID_REPLICATION_FACTOR);
    CU_ASSERT_STRING_EQUAL(sp.message,
                           "Unable to replicate the partition 4 time(s): The target replication "
                           "factor of 4 cannot be reached because only 3 broker(s) are registered.");
    CU_ASSERT_EQUAL(run_create("rf0", 1, 0, &sp), KP_ERR_INVALID_REPLICATION_FACTOR);
    CU_ASSERT_PTR_NULL(srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("rf4")));
    g_leader = 0;
    CU_ASSERT_EQUAL(run_create("follower", 1, -1, &sp), KP_ERR_NOT_CONTROLLER);
    CU_ASSERT_PTR_NULL(srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("follower")));
    quorum_stop();
}

static void test_controller_replicates(void)
{
    quorum_start(3);
    srv_topic_spec sp;
    CU_ASSERT_EQUAL(run_create("r3", 6, 3, &sp), 0);
    CU_ASSERT_EQUAL(sp.result_rf, 3);
    /* The version is the store's replay: the placement record round-trips. */
    const srv_topic *t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("r3"));
    CU_ASSERT_FATAL(t != NULL && t->repl != NULL);
    int per[4] = {0};
    for (int p = 0; p < 6; p++) {
        const srv_part_repl *r = srv_topic_repl(t, p);
        CU_ASSERT(r->nreplicas == 3 && r->nisr == 3 && r->leader_epoch == 0 && r->part_epoch == 0);
        CU_ASSERT_EQUAL(r->replicas[0], t->leaders[p]);
        CU_ASSERT(r->replicas[0] != r->replicas[1] && r->replicas[1] != r->replicas[2] &&
                  r->replicas[0] != r->replicas[2]);
        CU_ASSERT_EQUAL(memcmp(r->isr, r->replicas, sizeof(int32_t) * 3), 0);
        for (int32_t b = 1; b <= 3; b++)
            CU_ASSERT(srv_topic_is_replica(t, p, b));
        per[t->leaders[p]]++;
    }
    CU_ASSERT(per[1] == 2 && per[2] == 2 && per[3] == 2);
    /* Added partitions keep the topic's replication factor. */
    srv_topic_spec add;
    memset(&add, 0, sizeof(add));
    add.name = kp_str_c("r3");
    add.nparts = 7;
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_ADD_PARTITIONS;
    op.nspecs = 1;
    op.specs = &add;
    srv_ctl_enqueue(g_ctl, &op);
    CU_ASSERT_EQUAL(add.error, 0);
    t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("r3"));
    CU_ASSERT_FATAL(t != NULL && t->nparts == 7);
    CU_ASSERT_EQUAL(srv_topic_repl(t, 6)->nreplicas, 3);
    /* The default: default.replication.factor, and the internal topics' own. */
    srv_ctl_set_replication(g_ctl, 2, 3, 1);
    CU_ASSERT_EQUAL(run_create("d2", 1, -1, &sp), 0);
    CU_ASSERT_EQUAL(srv_topic_repl(srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("d2")), 0)->nreplicas, 2);
    CU_ASSERT_EQUAL(run_create("__consumer_offsets", 2, -1, &sp), 0);
    CU_ASSERT_EQUAL(
        srv_topic_repl(srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("__consumer_offsets")), 1)->nreplicas,
        3);
    CU_ASSERT_EQUAL(run_create("__transaction_state", 2, -1, &sp), 0);
    CU_ASSERT_EQUAL(
        srv_topic_repl(srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("__transaction_state")), 1)->nreplicas,
        1);
    quorum_stop();
}

static void set_fenced(int32_t id, int fenced)
{
    srv_broker_reg r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    snprintf(r.host, sizeof(r.host), "127.0.0.%d", id);
    r.port = 9092;
    r.fenced = fenced;
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_REGISTER;
    op.reg = &r;
    srv_ctl_enqueue(g_ctl, &op);
    CU_ASSERT_EQUAL(op.reg_error, 0);
}

/* Fencing a broker drops it from the ISR of the partitions it follows (not
 * of those it leads: no election yet); its return puts it back. */
static void test_fencing_shrinks_and_return_expands_the_isr(void)
{
    quorum_start(3);
    srv_topic_spec sp;
    CU_ASSERT_EQUAL(run_create("f", 3, 3, &sp), 0);
    set_fenced(2, 1);
    const srv_topic *t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("f"));
    CU_ASSERT_FATAL(t != NULL && t->repl != NULL);
    for (int32_t p = 0; p < 3; p++) {
        const srv_part_repl *r = srv_topic_repl(t, p);
        int has2 = 0;
        for (int i = 0; i < r->nisr; i++)
            has2 |= r->isr[i] == 2;
        if (t->leaders[p] == 2) {
            CU_ASSERT(r->nisr == 3 && has2 && r->part_epoch == 0);
        } else {
            CU_ASSERT(r->nisr == 2 && !has2 && r->part_epoch == 1);
            CU_ASSERT_EQUAL(r->nreplicas, 3); /* still a replica */
        }
        CU_ASSERT_EQUAL(r->leader_epoch, 0);
    }
    set_fenced(2, 0);
    t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("f"));
    for (int32_t p = 0; p < 3; p++) {
        const srv_part_repl *r = srv_topic_repl(t, p);
        CU_ASSERT_EQUAL(r->nisr, 3);
        CU_ASSERT_EQUAL(r->part_epoch, t->leaders[p] == 2 ? 0 : 2);
    }
    quorum_stop();
}

static int16_t run_manual(const char *name, int32_t nparts, int16_t rf, const int32_t *ids,
                          srv_topic_spec *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->name = kp_str_c(name);
    sp->nparts = nparts;
    sp->replication = -1;
    sp->assign = ids;
    sp->assign_rf = rf;
    sp->assign_n = nparts;
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_CREATE;
    op.nspecs = 1;
    op.specs = sp;
    srv_ctl_enqueue(g_ctl, &op);
    return sp->error;
}

static void test_controller_manual_assignment(void)
{
    quorum_start(3);
    srv_topic_spec sp;
    int32_t ids[] = {3, 1, 2, 3};
    CU_ASSERT_EQUAL(run_manual("m", 2, 2, ids, &sp), 0);
    const srv_topic *t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("m"));
    CU_ASSERT_FATAL(t != NULL && t->repl != NULL);
    CU_ASSERT(t->leaders[0] == 3 && t->leaders[1] == 2);
    CU_ASSERT(t->repl[0].replicas[1] == 1 && t->repl[1].replicas[1] == 3 && t->repl[1].nisr == 2);
    CU_ASSERT(!srv_topic_is_replica(t, 0, 2) && srv_topic_is_replica(t, 1, 2));
    int32_t bad[] = {1, 9};
    CU_ASSERT_EQUAL(run_manual("m9", 1, 2, bad, &sp), KP_ERR_INVALID_REPLICA_ASSIGNMENT);
    CU_ASSERT_STRING_EQUAL(
        sp.message, "The manual partition assignment includes broker 9, but no such broker is registered.");
    /* A fenced broker is a replica but not in sync, nor the leader. */
    srv_broker_reg r;
    memset(&r, 0, sizeof(r));
    r.id = 1;
    snprintf(r.host, sizeof(r.host), "127.0.0.1");
    r.port = 9092;
    r.fenced = 1;
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_REGISTER;
    op.reg = &r;
    srv_ctl_enqueue(g_ctl, &op);
    int32_t f[] = {1, 2};
    CU_ASSERT_EQUAL(run_manual("mf", 1, 2, f, &sp), 0);
    t = srv_meta_topic(srv_ctl_current(g_ctl), kp_str_c("mf"));
    CU_ASSERT_FATAL(t != NULL && t->repl != NULL);
    CU_ASSERT(t->leaders[0] == 2 && t->repl[0].nreplicas == 2 && t->repl[0].nisr == 1 &&
              t->repl[0].isr[0] == 2);
    int32_t only[] = {1};
    CU_ASSERT_EQUAL(run_manual("m1", 1, 1, only, &sp), KP_ERR_INVALID_REPLICA_ASSIGNMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(sp.message, "are fenced or in controlled shutdown"));
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
    CU_add_test(s, "controller refusals: no broker, RF above the brokers, not the leader",
                test_controller_refusals);
    CU_add_test(s, "rack-aware placement alternates racks", test_rack_aware_placement);
    CU_add_test(s, "a version-0 placement replays as one replica", test_placement_v0_replays);
    CU_add_test(s, "controller places RF 3, added partitions and defaults", test_controller_replicates);
    CU_add_test(s, "controller takes manual assignments as Kafka checks them",
                test_controller_manual_assignment);
    CU_add_test(s, "fencing shrinks the ISR, the return expands it",
                test_fencing_shrinks_and_return_expands_the_isr);
    CU_add_test(s, "controller.quorum.voters", test_config_voters);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

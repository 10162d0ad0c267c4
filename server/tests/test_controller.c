/*
 * test_controller.c — unit tests of the controller's apply logic
 * (server/controller.c) through its injected environment: a fake clock and
 * ids, a metadata log that keeps the appended batches in memory, and
 * publication that is immediate. Creation checks and their Kafka errors,
 * validate-only, added partitions, deletion, a failed append, operations
 * applied one at a time, and the appended records replaying to the version
 * that was published.
 *
 * Owns: nothing outside the process. Must not: depend on shards or disk.
 */
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "errors.h"
#include "kb_test.h"

static uint8_t *g_log; /* every batch appended, in order */
static size_t g_log_len;
static int g_appends, g_publishes, g_finished;
static srv_ctl_op *g_finish_order[8];
static int g_fail_rc; /* the next append's outcome */
static int g_defer;   /* keep appends waiting until complete_append() */
static st_append_cb g_wait_done;
static void *g_wait_ctx;
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
    id->b[0] = 0xAB;
    id->b[15] = ++g_next_id;
    return 0;
}

static void fake_append(void *arg, const uint8_t *batch, size_t len, st_accept_cb accepted, st_append_cb done,
                        void *ctx)
{
    (void)arg;
    (void)accepted;
    g_appends++;
    if (g_fail_rc) {
        done(ctx, g_fail_rc, -1);
        return;
    }
    uint8_t *n = realloc(g_log, g_log_len + len);
    CU_ASSERT_FATAL(n != NULL);
    memcpy(n + g_log_len, batch, len);
    g_log = n;
    g_log_len += len;
    if (g_defer) {
        g_wait_done = done;
        g_wait_ctx = ctx;
        return;
    }
    done(ctx, 0, 0);
}

static void complete_append(void)
{
    st_append_cb done = g_wait_done;
    g_wait_done = NULL;
    CU_ASSERT_FATAL(done != NULL);
    done(g_wait_ctx, 0, 0);
}

static void fake_publish(void *arg, srv_controller *c, srv_ctl_op *op, srv_meta *m)
{
    (void)arg;
    CU_ASSERT_PTR_EQUAL(m, srv_ctl_current(c)); /* the durable version, not a scratch one */
    g_publishes++;
    srv_ctl_published(c, op);
}

static void fake_finish(void *arg, srv_ctl_op *op)
{
    (void)arg;
    if (g_finished < 8)
        g_finish_order[g_finished] = op;
    g_finished++;
}

static const srv_ctl_env fake_env = {NULL, fake_now, fake_new_id, fake_append, fake_publish, fake_finish};

static srv_controller *start(void)
{
    free(g_log);
    g_log = NULL;
    g_log_len = 0;
    g_appends = g_publishes = g_finished = g_fail_rc = g_defer = 0;
    g_wait_done = NULL;
    g_next_id = 0;
    srv_controller *c = srv_ctl_new(&fake_env, 3);
    CU_ASSERT_FATAL(c != NULL);
    return c;
}

static void spec(srv_topic_spec *sp, const char *name, int32_t nparts)
{
    memset(sp, 0, sizeof(*sp));
    sp->name = kp_str_c(name);
    sp->nparts = nparts;
    sp->replication = -1;
}

static void op_init(srv_ctl_op *op, int kind, srv_topic_spec *specs, int n)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->specs = specs;
    op->nspecs = n;
}

/* What the appended records replay to must be what was published. */
static void check_replay_matches(srv_controller *c)
{
    srv_meta *r = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(g_log, g_log_len, &r), 0);
    const srv_meta *cur = srv_ctl_current(c);
    CU_ASSERT_EQUAL(r->ntopics, cur->ntopics);
    for (int i = 0; i < cur->ntopics && i < r->ntopics; i++) {
        CU_ASSERT_STRING_EQUAL(r->topics[i].name, cur->topics[i].name);
        CU_ASSERT_EQUAL(memcmp(r->topics[i].id.b, cur->topics[i].id.b, 16), 0);
        CU_ASSERT_EQUAL(r->topics[i].nparts, cur->topics[i].nparts);
        CU_ASSERT_EQUAL(r->topics[i].ncfg, cur->topics[i].ncfg);
    }
    srv_meta_unref(r);
}

static void test_create(void)
{
    srv_controller *c = start();
    srv_topic_spec sp[5];
    spec(&sp[0], "a", -1);
    spec(&sp[1], "a", 2); /* the same name later in one request */
    spec(&sp[2], "bad/name", 1);
    spec(&sp[3], "b", 0);
    spec(&sp[4], "c", 2);
    srv_topic_cfg_kv cfg = {"cleanup.policy", "compact"};
    sp[4].ncfg = 1;
    sp[4].cfg = &cfg;
    sp[4].replication = 1;
    srv_ctl_op op;
    op_init(&op, SRV_CTL_CREATE, sp, 5);
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(g_finished, 1);
    CU_ASSERT_EQUAL(g_appends, 1); /* one batch for the whole request */
    CU_ASSERT_EQUAL(g_publishes, 1);
    CU_ASSERT_EQUAL(sp[0].error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(sp[0].result_nparts, 3); /* num.partitions */
    CU_ASSERT_EQUAL(sp[1].error, KP_ERR_TOPIC_ALREADY_EXISTS);
    CU_ASSERT_STRING_EQUAL(sp[1].message, "Topic 'a' already exists.");
    CU_ASSERT_EQUAL(sp[2].error, KP_ERR_INVALID_TOPIC_EXCEPTION);
    CU_ASSERT_EQUAL(sp[3].error, KP_ERR_INVALID_PARTITIONS);
    CU_ASSERT_EQUAL(sp[4].error, KP_ERR_NONE);
    const srv_meta *m = srv_ctl_current(c);
    CU_ASSERT_EQUAL(m->ntopics, 2);
    const srv_topic *a = srv_meta_topic(m, kp_str_c("a"));
    const srv_topic *t = srv_meta_topic(m, kp_str_c("c"));
    CU_ASSERT_FATAL(a && t);
    CU_ASSERT_EQUAL(memcmp(a->id.b, sp[0].id.b, 16), 0);
    CU_ASSERT_PTR_EQUAL(srv_meta_topic_by_id(m, &sp[4].id), t);
    CU_ASSERT_STRING_EQUAL(srv_topic_cfg_get(t, "cleanup.policy"), "compact");
    check_replay_matches(c);

    /* validate_only: checked, answered, not applied. */
    srv_topic_spec v;
    spec(&v, "d", 1);
    srv_ctl_op vop;
    op_init(&vop, SRV_CTL_CREATE, &v, 1);
    vop.validate_only = 1;
    srv_ctl_enqueue(c, &vop);
    CU_ASSERT_EQUAL(g_finished, 2);
    CU_ASSERT_EQUAL(v.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(g_appends, 1);
    CU_ASSERT_PTR_NULL(srv_meta_topic(srv_ctl_current(c), kp_str_c("d")));
    srv_ctl_free(c);
}

static void test_partitions_and_delete(void)
{
    srv_controller *c = start();
    srv_topic_spec sp;
    spec(&sp, "t", 2);
    srv_ctl_op op;
    op_init(&op, SRV_CTL_CREATE, &sp, 1);
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(sp.error, KP_ERR_NONE);

    srv_topic_spec grow[3];
    spec(&grow[0], "t", 1);
    spec(&grow[1], "nope", 4);
    spec(&grow[2], "t", 5);
    op_init(&op, SRV_CTL_ADD_PARTITIONS, grow, 3);
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(grow[0].error, KP_ERR_INVALID_PARTITIONS);
    CU_ASSERT_STRING_EQUAL(grow[0].message, "Topic currently has 2 partitions, 1 would not be an increase.");
    CU_ASSERT_EQUAL(grow[1].error, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CU_ASSERT_EQUAL(grow[2].error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(srv_meta_topic(srv_ctl_current(c), kp_str_c("t"))->nparts, 5);
    check_replay_matches(c);

    srv_topic_spec del;
    spec(&del, "t", -1);
    op_init(&op, SRV_CTL_DELETE, &del, 1);
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(del.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(memcmp(del.id.b, sp.id.b, 16), 0);
    CU_ASSERT_EQUAL(srv_ctl_current(c)->ntopics, 0);
    check_replay_matches(c); /* the tombstone removes it on replay too */
    CU_ASSERT_EQUAL(g_appends, 3);
    CU_ASSERT_EQUAL(g_publishes, 3);
    srv_ctl_free(c);
}

static void test_append_fails(void)
{
    srv_controller *c = start();
    const srv_meta *before = srv_ctl_current(c);
    g_fail_rc = ST_E_CLOSED;
    srv_topic_spec sp[2];
    spec(&sp[0], "x", 1);
    spec(&sp[1], "x", 1);
    srv_ctl_op op;
    op_init(&op, SRV_CTL_CREATE, sp, 2);
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(g_finished, 1);
    CU_ASSERT_EQUAL(g_publishes, 0);
    CU_ASSERT_EQUAL(sp[0].error, KP_ERR_KAFKA_STORAGE_ERROR);
    CU_ASSERT_EQUAL(strncmp(sp[0].message, "metadata log: ", 14), 0);
    CU_ASSERT_EQUAL(sp[1].error, KP_ERR_TOPIC_ALREADY_EXISTS); /* its own answer stands */
    CU_ASSERT_PTR_EQUAL(srv_ctl_current(c), before);
    srv_ctl_free(c);
}

static void test_one_at_a_time(void)
{
    srv_controller *c = start();
    g_defer = 1;
    srv_topic_spec s1, s2;
    spec(&s1, "first", 1);
    spec(&s2, "first", 1);
    srv_ctl_op o1, o2;
    op_init(&o1, SRV_CTL_CREATE, &s1, 1);
    op_init(&o2, SRV_CTL_CREATE, &s2, 1);
    srv_ctl_enqueue(c, &o1);
    srv_ctl_enqueue(c, &o2);
    CU_ASSERT_EQUAL(g_appends, 1); /* the second waits for the first */
    CU_ASSERT_EQUAL(g_finished, 0);
    complete_append();
    CU_ASSERT_EQUAL(g_finished, 2); /* the second sees the first's topic: nothing to append */
    CU_ASSERT_PTR_EQUAL(g_finish_order[0], &o1);
    CU_ASSERT_PTR_EQUAL(g_finish_order[1], &o2);
    CU_ASSERT_EQUAL(s1.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(s2.error, KP_ERR_TOPIC_ALREADY_EXISTS);
    CU_ASSERT_EQUAL(g_appends, 1);
    srv_ctl_free(c);
    free(g_log);
    g_log = NULL;
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("controller", NULL, NULL);
    CU_add_test(s, "create: checks, Kafka errors, validate_only, replay", test_create);
    CU_add_test(s, "add partitions and delete", test_partitions_and_delete);
    CU_add_test(s, "a failed append changes nothing", test_append_fails);
    CU_add_test(s, "operations apply one at a time, in order", test_one_at_a_time);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_dyncfg.c — unit tests of dynamic broker configs: the set and Kafka's
 * per-broker over cluster-default precedence (server/dyncfg.c), the 'B'
 * records the controller writes for SRV_CTL_ALTER_BROKER (and the 'G' ones of
 * SRV_CTL_ALTER_GROUP) and their replay
 * (server/controller.c), through the controller's injected environment: an
 * in-memory metadata log and immediate publication.
 *
 * Owns: nothing outside the process. Must not: depend on shards or disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "controller.h"
#include "dyncfg.h"
#include "errors.h"
#include "kb_test.h"

static uint8_t *g_log;
static size_t g_log_len;
static int g_appends, g_finished, g_fail_rc;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return 1700000000000;
}

static int fake_new_id(void *arg, kp_uuid *id)
{
    (void)arg;
    memset(id->b, 0, 16);
    id->b[0] = 0xCD;
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
    done(ctx, 0, 0);
}

static void fake_publish(void *arg, srv_controller *c, srv_ctl_op *op, srv_meta *m)
{
    (void)arg;
    (void)m;
    srv_ctl_published(c, op);
}

static void fake_finish(void *arg, srv_ctl_op *op)
{
    (void)arg;
    (void)op;
    g_finished++;
}

static const srv_ctl_env fake_env = {NULL, fake_now, fake_new_id, fake_append, fake_publish, fake_finish};

static srv_controller *start(void)
{
    free(g_log);
    g_log = NULL;
    g_log_len = 0;
    g_appends = g_finished = g_fail_rc = 0;
    srv_controller *c = srv_ctl_new(&fake_env, 1);
    CU_ASSERT_FATAL(c != NULL);
    return c;
}

static void alter_kind(srv_controller *c, int kind, srv_dyncfg_change *ch, int n, int validate_only)
{
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.validate_only = validate_only;
    op.ndyn = n;
    op.dyn = ch;
    int before = g_finished;
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(g_finished, before + 1);
}

static void alter(srv_controller *c, srv_dyncfg_change *ch, int n, int validate_only)
{
    alter_kind(c, SRV_CTL_ALTER_BROKER, ch, n, validate_only);
}

#define KS "listener.name.ssl.ssl.keystore.location"
#define TS "listener.name.ssl.ssl.truststore.location"

static void test_set_and_precedence(void)
{
    srv_dyncfg *d = NULL, *n = NULL;
    CU_ASSERT_EQUAL(srv_dyncfg_with(NULL, "", KS, "/default.pem", &d), 0);
    CU_ASSERT_PTR_NULL(srv_dyncfg_effective(d, 7, TS, NULL));
    int src = 0;
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_effective(d, 7, KS, &src), "/default.pem");
    CU_ASSERT_EQUAL(src, SRV_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG);
    CU_ASSERT_EQUAL(srv_dyncfg_with(d, "7", KS, "/mine.pem", &n), 0);
    srv_dyncfg_unref(d);
    d = n;
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_effective(d, 7, KS, &src), "/mine.pem");
    CU_ASSERT_EQUAL(src, SRV_SOURCE_DYNAMIC_BROKER_CONFIG);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_effective(d, 8, KS, &src), "/default.pem"); /* another broker's view */
    /* Replacing keeps one entry; removing the last leaves the empty set. */
    CU_ASSERT_EQUAL(srv_dyncfg_with(d, "7", KS, "/mine2.pem", &n), 0);
    srv_dyncfg_unref(d);
    d = n;
    CU_ASSERT_EQUAL(d->n, 2);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(d, "7", KS), "/mine2.pem");
    CU_ASSERT_EQUAL(srv_dyncfg_with(d, "7", KS, NULL, &n), 0);
    srv_dyncfg_unref(d);
    d = n;
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_effective(d, 7, KS, NULL), "/default.pem");
    CU_ASSERT_EQUAL(srv_dyncfg_with(d, "", KS, NULL, &n), 0);
    CU_ASSERT_PTR_NULL(n);
    srv_dyncfg_unref(d);
    char key[128];
    CU_ASSERT_EQUAL(srv_dyncfg_listener_key(key, sizeof(key), "SASL_SSL", 8, "ssl.keystore.location"), 0);
    CU_ASSERT_STRING_EQUAL(key, "listener.name.sasl_ssl.ssl.keystore.location");
    CU_ASSERT_EQUAL(srv_dyncfg_listener_key(key, 20, "SASL_SSL", 8, "ssl.keystore.location"), -1);
}

/* Each change is a record; the log replays to the version published, a
 * DELETE is a tombstone that takes the value away again. */
static void test_records_replay(void)
{
    srv_controller *c = start();
    srv_dyncfg_change ch[3] = {{"1", KS, "/a.pem", 0}, {"", TS, "/ca.pem", 0}, {"1", TS, "/ca1.pem", 0}};
    alter(c, ch, 3, 0);
    CU_ASSERT_EQUAL(g_appends, 1);
    const srv_meta *cur = srv_ctl_current(c);
    CU_ASSERT_FATAL(cur->dyncfg != NULL);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(cur->dyncfg, "1", KS), "/a.pem");
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_effective(cur->dyncfg, 1, TS, NULL), "/ca1.pem");
    srv_meta *r = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(g_log, g_log_len, &r), 0);
    CU_ASSERT_FATAL(r->dyncfg != NULL);
    CU_ASSERT_EQUAL(r->dyncfg->n, 3);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->dyncfg, "1", KS), "/a.pem");
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->dyncfg, "", TS), "/ca.pem");
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->dyncfg, "1", TS), "/ca1.pem");
    srv_meta_unref(r);

    srv_dyncfg_change del[2] = {{"1", TS, NULL, 0}, {"1", KS, "/b.pem", 0}};
    alter(c, del, 2, 0);
    CU_ASSERT_EQUAL(del[0].error, 0);
    cur = srv_ctl_current(c);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_effective(cur->dyncfg, 1, TS, NULL), "/ca.pem");
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(g_log, g_log_len, &r), 0);
    CU_ASSERT_EQUAL(r->dyncfg->n, 2);
    CU_ASSERT_PTR_NULL(srv_dyncfg_get(r->dyncfg, "1", TS));
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->dyncfg, "1", KS), "/b.pem");
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_effective(r->dyncfg, 1, TS, NULL), "/ca.pem");
    srv_meta_unref(r);

    /* Topics and dynamic configs live side by side: a topic change keeps the set. */
    srv_topic_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.name = kp_str_c("t");
    sp.nparts = 1;
    sp.replication = -1;
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_CREATE;
    op.specs = &sp;
    op.nspecs = 1;
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(sp.error, 0);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(srv_ctl_current(c)->dyncfg, "1", KS), "/b.pem");
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(g_log, g_log_len, &r), 0);
    CU_ASSERT_EQUAL(r->ntopics, 1);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->dyncfg, "1", KS), "/b.pem");
    srv_meta_unref(r);
    srv_ctl_free(c);
}

/* Group configs ('G' records) are a set of their own: a group named like a
 * broker id does not shadow the broker's configs, and both replay. */
static void test_group_records_replay(void)
{
    srv_controller *c = start();
    srv_dyncfg_change b[1] = {{"1", KS, "/a.pem", 0}};
    alter(c, b, 1, 0);
    srv_dyncfg_change g[3] = {{"1", "share.record.lock.duration.ms", "20000", 0},
                              {"orders", "share.auto.offset.reset", "by_duration:PT1H", 0},
                              {"orders", "share.delivery.count.limit", "3", 0}};
    alter_kind(c, SRV_CTL_ALTER_GROUP, g, 3, 0);
    CU_ASSERT_EQUAL(g[0].error, 0);
    CU_ASSERT_EQUAL(g_appends, 2);
    const srv_meta *cur = srv_ctl_current(c);
    CU_ASSERT_FATAL(cur->groupcfg != NULL && cur->dyncfg != NULL);
    CU_ASSERT_EQUAL(cur->dyncfg->n, 1);
    CU_ASSERT_EQUAL(cur->groupcfg->n, 3);
    CU_ASSERT_PTR_NULL(srv_dyncfg_get(cur->dyncfg, "1", "share.record.lock.duration.ms"));
    /* validate_only writes nothing; a DELETE is a tombstone. */
    srv_dyncfg_change v[1] = {{"orders", "share.delivery.count.limit", "4", 0}};
    alter_kind(c, SRV_CTL_ALTER_GROUP, v, 1, 1);
    CU_ASSERT_EQUAL(g_appends, 2);
    srv_dyncfg_change d[1] = {{"orders", "share.delivery.count.limit", NULL, 0}};
    alter_kind(c, SRV_CTL_ALTER_GROUP, d, 1, 0);
    srv_meta *r = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(g_log, g_log_len, &r), 0);
    CU_ASSERT_FATAL(r->groupcfg != NULL && r->dyncfg != NULL);
    CU_ASSERT_EQUAL(r->groupcfg->n, 2);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->groupcfg, "1", "share.record.lock.duration.ms"), "20000");
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->groupcfg, "orders", "share.auto.offset.reset"),
                           "by_duration:PT1H");
    CU_ASSERT_PTR_NULL(srv_dyncfg_get(r->groupcfg, "orders", "share.delivery.count.limit"));
    CU_ASSERT_EQUAL(r->dyncfg->n, 1);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->dyncfg, "1", KS), "/a.pem");
    srv_meta_unref(r);
    /* A broker config record is not a group's, and the reverse. */
    srv_dyncfg *x = NULL;
    static const uint8_t gkey[] = {'G', 0, 1, 'g', 0, 1, 'k'};
    CU_ASSERT_EQUAL(srv_dyncfg_record_apply(&x, gkey, sizeof(gkey), NULL, -1), KP_E_INVALID);
    CU_ASSERT_EQUAL(srv_dyncfg_record_apply_tag(&x, SRV_GROUPCFG_RECORD_KEY, gkey, sizeof(gkey), NULL, -1),
                    0);
    srv_dyncfg_unref(x);
    srv_ctl_free(c);
}

/* validate_only and a refused change write nothing; a failed append
 * answers KAFKA_STORAGE_ERROR and leaves the version as it was. */
static void test_nothing_written(void)
{
    srv_controller *c = start();
    srv_dyncfg_change ch[2] = {{"1", KS, "/a.pem", 0}, {"1", TS, "/ca.pem", KP_ERR_INVALID_REQUEST}};
    alter(c, ch, 2, 1);
    CU_ASSERT_EQUAL(g_appends, 0);
    CU_ASSERT_PTR_NULL(srv_ctl_current(c)->dyncfg);
    ch[0].key = TS;
    ch[1].value = NULL;
    alter(c, &ch[1], 1, 0);
    CU_ASSERT_EQUAL(g_appends, 0);
    g_fail_rc = ST_E_CLOSED;
    const srv_meta *before = srv_ctl_current(c);
    alter(c, ch, 1, 0);
    CU_ASSERT_EQUAL(g_appends, 1);
    CU_ASSERT_EQUAL(ch[0].error, KP_ERR_KAFKA_STORAGE_ERROR);
    CU_ASSERT_PTR_EQUAL(srv_ctl_current(c), before);
    srv_ctl_free(c);
}

/* A record this version cannot read is skipped at replay, with the rest. */
static void test_undecodable_record(void)
{
    srv_dyncfg *d = NULL;
    const uint8_t bad_key[] = {'B', 0, 5, 'x'};
    CU_ASSERT_EQUAL(srv_dyncfg_record_apply(&d, bad_key, sizeof(bad_key), NULL, -1), KP_E_INVALID);
    const uint8_t nul_key[] = {'B', 0, 0, 0, 2, 'a', 0};
    CU_ASSERT_EQUAL(srv_dyncfg_record_apply(&d, nul_key, sizeof(nul_key), NULL, -1), KP_E_INVALID);
    const uint8_t key[] = {'B', 0, 1, '1', 0, 1, 'k'};
    const uint8_t bad_version[] = {9, 0, 1, 'v'};
    CU_ASSERT_EQUAL(srv_dyncfg_record_apply(&d, key, sizeof(key), bad_version, sizeof(bad_version)),
                    KP_E_INVALID);
    const uint8_t value[] = {0, 0, 1, 'v'};
    CU_ASSERT_EQUAL(srv_dyncfg_record_apply(&d, key, sizeof(key), value, sizeof(value)), 0);
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(d, "1", "k"), "v");
    CU_ASSERT_EQUAL(srv_dyncfg_record_apply(&d, key, sizeof(key), NULL, -1), 0);
    CU_ASSERT_PTR_NULL(d);

    /* In a log: a bad record between two good ones. */
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    CU_ASSERT_EQUAL(srv_dyncfg_record_add(&bb, 1, "1", KS, "/a.pem"), 0);
    CU_ASSERT_EQUAL(kp_batch_builder_add(&bb, 1, (kp_bytes){bad_key, sizeof(bad_key)},
                                         (kp_bytes){value, sizeof(value)}, NULL, 0),
                    0);
    CU_ASSERT_EQUAL(srv_dyncfg_record_add(&bb, 1, "", TS, "/ca.pem"), 0);
    kp_writer w;
    kp_writer_init(&w, 256);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, &w), 0);
    srv_meta *r = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(w.buf, w.len, &r), 0);
    CU_ASSERT_FATAL(r->dyncfg != NULL);
    CU_ASSERT_EQUAL(r->dyncfg->n, 2);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->dyncfg, "1", KS), "/a.pem");
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->dyncfg, "", TS), "/ca.pem");
    srv_meta_unref(r);
    kp_writer_free(&w);
    kp_batch_builder_free(&bb);
}

/* A log of n 'G' records: group g<i>, one key each; with rewrites, every
 * tenth pair is then set again and every hundredth deleted. */
static void group_log(kp_writer *w, int n, int rewrites)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    char g[32];
    for (int i = 0; i < n; i++) {
        snprintf(g, sizeof(g), "g%06d", i);
        CU_ASSERT_EQUAL_FATAL(
            srv_dyncfg_record_add_tag(&bb, SRV_GROUPCFG_RECORD_KEY, 1, g, "share.delivery.count.limit", "3"),
            0);
    }
    for (int i = 0; rewrites && i < n; i += 10) {
        snprintf(g, sizeof(g), "g%06d", i);
        CU_ASSERT_EQUAL_FATAL(srv_dyncfg_record_add_tag(&bb, SRV_GROUPCFG_RECORD_KEY, 1, g,
                                                        "share.delivery.count.limit",
                                                        i % 100 == 0 ? NULL : "4"),
                              0);
    }
    kp_writer_init(w, 1 << 20);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, w), 0);
    kp_batch_builder_free(&bb);
}

/* Replay applies records into an edit and builds the set once: 20,000
 * records (and 2,000 more) make one set and one entry per record, not a
 * copy of the set per record; a live change makes one set and one entry. */
static void test_group_replay_linear(void)
{
    enum { N = 20000 };
    kp_writer w;
    group_log(&w, N, 1);
    long e0, s0, e1, s1;
    srv_dyncfg_made(&e0, &s0);
    srv_meta *r = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(w.buf, w.len, &r), 0);
    srv_dyncfg_made(&e1, &s1);
    CU_ASSERT_EQUAL(s1 - s0, 1);
    CU_ASSERT_EQUAL(e1 - e0, N + N / 10);
    CU_ASSERT_FATAL(r->groupcfg != NULL);
    CU_ASSERT_EQUAL(r->groupcfg->n, N - N / 100);
    CU_ASSERT_PTR_NULL(srv_dyncfg_get(r->groupcfg, "g000100", "share.delivery.count.limit"));
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->groupcfg, "g000110", "share.delivery.count.limit"), "4");
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(r->groupcfg, "g019999", "share.delivery.count.limit"), "3");
    srv_dyncfg *nd = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_dyncfg_with(r->groupcfg, "g000100", "share.delivery.count.limit", "5", &nd), 0);
    srv_dyncfg_made(&e0, &s0);
    CU_ASSERT_EQUAL(s0 - s1, 1);
    CU_ASSERT_EQUAL(e0 - e1, 1);
    CU_ASSERT_EQUAL(nd->n, r->groupcfg->n + 1);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(nd, "g000100", "share.delivery.count.limit"), "5");
    /* The old set is unchanged, and shares the other entries. */
    CU_ASSERT_PTR_NULL(srv_dyncfg_get(r->groupcfg, "g000100", "share.delivery.count.limit"));
    CU_ASSERT_PTR_EQUAL(srv_dyncfg_get(nd, "g000110", "share.delivery.count.limit"),
                        srv_dyncfg_get(r->groupcfg, "g000110", "share.delivery.count.limit"));
    srv_meta_unref(r);
    CU_ASSERT_STRING_EQUAL(srv_dyncfg_get(nd, "g000110", "share.delivery.count.limit"), "4");
    srv_dyncfg_unref(nd);
    kp_writer_free(&w);
}

/* Beyond SRV_GROUPCFG_MAX_ENTRIES pairs a new pair is refused with
 * POLICY_VIOLATION and nothing is written; changing or deleting a pair
 * the cluster holds still works, and frees room. */
static void test_group_limit(void)
{
    kp_writer w;
    group_log(&w, SRV_GROUPCFG_MAX_ENTRIES - 1, 0);
    srv_meta *r = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(w.buf, w.len, &r), 0);
    kp_writer_free(&w);
    srv_controller *c = start();
    srv_ctl_adopt(c, r);
    srv_dyncfg_change last[1] = {{"h", "share.delivery.count.limit", "3", 0}};
    alter_kind(c, SRV_CTL_ALTER_GROUP, last, 1, 0);
    CU_ASSERT_EQUAL(last[0].error, 0);
    CU_ASSERT_EQUAL(srv_ctl_current(c)->groupcfg->n, SRV_GROUPCFG_MAX_ENTRIES);
    int appends = g_appends;
    srv_dyncfg_change ch[2] = {{"new-group", "share.delivery.count.limit", "3", 0},
                               {"g000001", "share.record.lock.duration.ms", "20000", 0}};
    alter_kind(c, SRV_CTL_ALTER_GROUP, ch, 2, 0);
    CU_ASSERT_EQUAL(ch[0].error, KP_ERR_POLICY_VIOLATION);
    CU_ASSERT_EQUAL(ch[1].error, KP_ERR_POLICY_VIOLATION);
    CU_ASSERT_EQUAL(g_appends, appends);
    CU_ASSERT_PTR_NULL(
        srv_dyncfg_get(srv_ctl_current(c)->groupcfg, "new-group", "share.delivery.count.limit"));
    srv_dyncfg_change upd[2] = {{"g000001", "share.delivery.count.limit", "5", 0},
                                {"g000002", "share.delivery.count.limit", NULL, 0}};
    alter_kind(c, SRV_CTL_ALTER_GROUP, upd, 2, 0);
    CU_ASSERT_EQUAL(upd[0].error, 0);
    CU_ASSERT_EQUAL(upd[1].error, 0);
    /* Room for one pair: a group adding two is refused whole, also when only
     * validated (no group is left half-altered). */
    for (int validate = 1; validate >= 0; validate--) {
        srv_dyncfg_change two[2] = {{"two-keys", "share.delivery.count.limit", "3", 0},
                                    {"two-keys", "share.record.lock.duration.ms", "20000", 0}};
        alter_kind(c, SRV_CTL_ALTER_GROUP, two, 2, validate);
        CU_ASSERT_EQUAL(two[0].error, KP_ERR_POLICY_VIOLATION);
        CU_ASSERT_EQUAL(two[1].error, KP_ERR_POLICY_VIOLATION);
    }
    CU_ASSERT_PTR_NULL(
        srv_dyncfg_get(srv_ctl_current(c)->groupcfg, "two-keys", "share.delivery.count.limit"));
    ch[0].error = 0;
    alter_kind(c, SRV_CTL_ALTER_GROUP, ch, 1, 0);
    CU_ASSERT_EQUAL(ch[0].error, 0);
    CU_ASSERT_STRING_EQUAL(
        srv_dyncfg_get(srv_ctl_current(c)->groupcfg, "new-group", "share.delivery.count.limit"), "3");
    srv_ctl_free(c);
}

static void cleanup(void)
{
    free(g_log);
    g_log = NULL;
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("dyncfg", NULL, NULL);
    CU_add_test(s, "set, replace, remove; per-broker over cluster default", test_set_and_precedence);
    CU_add_test(s, "controller: 'B' records replay to the published set", test_records_replay);
    CU_add_test(s, "validate_only, refused and failed changes write nothing", test_nothing_written);
    CU_add_test(s, "controller: 'G' group config records, a set of their own", test_group_records_replay);
    CU_add_test(s, "undecodable records are skipped at replay", test_undecodable_record);
    CU_add_test(s, "group configs: replay builds one set, a change shares entries", test_group_replay_linear);
    CU_add_test(s, "group configs: a new pair beyond the limit is refused", test_group_limit);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites, .teardown = cleanup};

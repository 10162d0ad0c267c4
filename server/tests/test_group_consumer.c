/*
 * test_group_consumer.c — unit tests of the KIP-848 consumer groups
 * (server/group/consumer.c) driven by the fake group environment
 * (fake_group_env.h): a fake clock, a fake topic metadata and a fake
 * __consumer_offsets log that keeps every batch, so a restart is a replay of
 * what was written: joins with the uniform and range assignors,
 * revocation before assignment, fencing, static members, session expiry,
 * new partitions, offset commits with member epochs, and the classic /
 * consumer coexistence.
 *
 * Owns: nothing outside the process. Must not: depend on shards or sockets.
 */
#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fake_group_env.h"
#include "group/consumer.h"

#define TOPIC_A_ID                                                                                           \
    {                                                                                                        \
        {                                                                                                    \
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16                                            \
        }                                                                                                    \
    }
static const kp_uuid topic_a = TOPIC_A_ID;

/* Topic "a" has 6 partitions unless a test adds some. */
static fake_group_env g_env = {.now_ms = 1000000, .ntopics = 1, .topics = {{"a", TOPIC_A_ID, 6}}};

static srv_groups *new_groups(void)
{
    srv_groups_config cfg = {6000, 300000, 0, 1000, 7LL * 24 * 3600 * 1000, 3000, 45000, 0, 0, 0, {0}};
    return fake_group_env_groups(&g_env, &cfg);
}

typedef struct hb_out {
    int called;
    int16_t error;
    char member_id[64];
    int32_t epoch;
    int32_t interval;
    int has_assignment;
    srv_tps assignment;
} hb_out;

static void on_hb(void *ctx, const srv_chb_result *r)
{
    hb_out *o = ctx;
    o->called++;
    o->error = r->error;
    snprintf(o->member_id, sizeof(o->member_id), "%.*s", r->member_id.len > 0 ? r->member_id.len : 0,
             r->member_id.len > 0 ? r->member_id.p : "");
    o->epoch = r->member_epoch;
    o->interval = r->heartbeat_interval_ms;
    o->has_assignment = r->assignment != NULL;
    o->assignment.n = 0;
    for (int i = 0; r->assignment && i < r->assignment->n; i++)
        srv_tps_add(&o->assignment, r->assignment->v[i].topic, r->assignment->v[i].partition);
}

/* A simulated member: what it owns (acknowledged) and its epoch. */
typedef struct member {
    char id[64];
    const char *instance;
    int32_t epoch;
    srv_tps owned;
} member;

static const kp_str subs_a[1] = {{"a", 1}};

static hb_out heartbeat(srv_groups *gs, const char *group, member *m, const char *assignor, int full)
{
    srv_chb_req rq = {0};
    rq.group_id = kp_str_c(group);
    rq.member_id = kp_str_c(m->id);
    rq.member_epoch = m->epoch;
    rq.instance_id = m->instance ? kp_str_c(m->instance) : KP_STR_NULL;
    rq.rack_id = KP_STR_NULL;
    rq.client_id = kp_str_c("cli");
    rq.client_host = kp_str_c("/127.0.0.1");
    rq.regex = KP_STR_NULL;
    rq.assignor = assignor ? kp_str_c(assignor) : KP_STR_NULL;
    rq.rebalance_timeout_ms = full || m->epoch == 0 ? 30000 : -1;
    rq.nsubs = full || m->epoch == 0 ? 1 : -1;
    rq.subs = subs_a;
    rq.nowned = m->epoch == 0 ? 0 : m->owned.n;
    rq.owned = m->owned.v;
    hb_out o;
    memset(&o, 0, sizeof(o));
    srv_cgroup_heartbeat(gs, 0, &rq, on_hb, &o);
    CU_ASSERT_EQUAL(o.called, 1);
    if (o.error == KP_ERR_NONE) {
        /* As a real client: adopt the id and epoch, own what was assigned
         * (revocations and assignments done before the next heartbeat). */
        snprintf(m->id, sizeof(m->id), "%s", o.member_id);
        m->epoch = o.epoch;
        if (o.has_assignment) {
            m->owned.n = 0;
            for (int i = 0; i < o.assignment.n; i++)
                srv_tps_add(&m->owned, o.assignment.v[i].topic, o.assignment.v[i].partition);
        }
    }
    return o;
}

static void hb_free(hb_out *o)
{
    srv_tps_free(&o->assignment);
}

static void member_free(member *m)
{
    srv_tps_free(&m->owned);
}

/* Heartbeats every member until none changes: the group converges. */
static void converge(srv_groups *gs, const char *group, member *ms, int n, const char *assignor)
{
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < n; i++) {
            hb_out o = heartbeat(gs, group, &ms[i], assignor, 0);
            CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
            hb_free(&o);
        }
}

/* No partition owned twice, all of topic a owned. */
static void check_exclusive(member *ms, int n, int32_t nparts)
{
    for (int32_t p = 0; p < nparts; p++) {
        int owners = 0;
        for (int i = 0; i < n; i++)
            owners += srv_tps_has(&ms[i].owned, topic_a, p);
        CU_ASSERT_EQUAL(owners, 1);
    }
}

static srv_cgroup *cgroup_of(srv_groups *gs, const char *group)
{
    srv_group *g = srv_groups_find(gs, kp_str_c(group));
    return g ? g->cg : NULL;
}

static void test_uniform_three_members(void)
{
    srv_groups *gs = new_groups();
    member ms[3];
    memset(ms, 0, sizeof(ms));
    hb_out o = heartbeat(gs, "gu", &ms[0], NULL, 1);
    CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
    CU_ASSERT(strlen(o.member_id) > 0);
    CU_ASSERT_EQUAL(o.epoch, 1);
    CU_ASSERT_EQUAL(o.interval, 3000);
    CU_ASSERT_EQUAL(o.assignment.n, 6); /* alone: every partition at once */
    hb_free(&o);
    o = heartbeat(gs, "gu", &ms[1], NULL, 1);
    CU_ASSERT_EQUAL(o.epoch, 2); /* the new epoch, but its partitions are still owned by member 0 */
    CU_ASSERT_EQUAL(o.assignment.n, 0);
    hb_free(&o);
    /* Member 0 is asked to give up 3 partitions, and keeps its epoch. */
    o = heartbeat(gs, "gu", &ms[0], NULL, 0);
    CU_ASSERT_EQUAL(o.epoch, 1);
    CU_ASSERT_EQUAL(o.assignment.n, 3);
    hb_free(&o);
    o = heartbeat(gs, "gu", &ms[2], NULL, 1);
    hb_free(&o);
    converge(gs, "gu", ms, 3, NULL);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(ms[i].owned.n, 2);
        CU_ASSERT_EQUAL(ms[i].epoch, 3);
    }
    check_exclusive(ms, 3, 6);
    srv_cgroup *cg = cgroup_of(gs, "gu");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cg);
    CU_ASSERT_STRING_EQUAL(srv_cgroup_state_name(cg), "Stable");
    CU_ASSERT_EQUAL(cg->epoch, 3);
    CU_ASSERT(kp_str_eq(srv_cgroup_assignor(cg), "uniform"));
    for (int i = 0; i < 3; i++)
        member_free(&ms[i]);
    srv_groups_free(gs);
}

static void test_range_three_members(void)
{
    srv_groups *gs = new_groups();
    member ms[3];
    memset(ms, 0, sizeof(ms));
    for (int i = 0; i < 3; i++) {
        hb_out o = heartbeat(gs, "gr", &ms[i], "range", 1);
        CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
        hb_free(&o);
    }
    converge(gs, "gr", ms, 3, "range");
    check_exclusive(ms, 3, 6);
    /* Contiguous ranges in member id order. */
    int order[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (strcmp(ms[order[j]].id, ms[order[i]].id) < 0) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    for (int k = 0; k < 3; k++) {
        member *m = &ms[order[k]];
        CU_ASSERT_EQUAL(m->owned.n, 2);
        CU_ASSERT(srv_tps_has(&m->owned, topic_a, 2 * k));
        CU_ASSERT(srv_tps_has(&m->owned, topic_a, 2 * k + 1));
    }
    CU_ASSERT(kp_str_eq(srv_cgroup_assignor(cgroup_of(gs, "gr")), "range"));
    /* An unknown assignor is refused. */
    member x;
    memset(&x, 0, sizeof(x));
    hb_out o = heartbeat(gs, "gr", &x, "sticky", 1);
    CU_ASSERT_EQUAL(o.error, KP_ERR_UNSUPPORTED_ASSIGNOR);
    hb_free(&o);
    for (int i = 0; i < 3; i++)
        member_free(&ms[i]);
    srv_groups_free(gs);
}

/* A new member gets nothing until the old owner acknowledged revocation;
 * a leaving member's partitions move at once (nobody owns them any more). */
static void test_revoke_before_assign_and_leave(void)
{
    srv_groups *gs = new_groups();
    member ms[2];
    memset(ms, 0, sizeof(ms));
    hb_out o = heartbeat(gs, "gl", &ms[0], NULL, 1);
    hb_free(&o);
    o = heartbeat(gs, "gl", &ms[1], NULL, 1);
    CU_ASSERT_EQUAL(o.assignment.n, 0);
    hb_free(&o);
    /* Member 0 heartbeats without reporting its owned partitions: it is
     * assumed to still own them. */
    srv_chb_req rq = {0};
    rq.group_id = kp_str_c("gl");
    rq.member_id = kp_str_c(ms[0].id);
    rq.member_epoch = ms[0].epoch;
    rq.instance_id = rq.rack_id = rq.regex = rq.assignor = KP_STR_NULL;
    rq.rebalance_timeout_ms = -1;
    rq.nsubs = -1;
    rq.nowned = -1;
    hb_out q;
    memset(&q, 0, sizeof(q));
    srv_cgroup_heartbeat(gs, 0, &rq, on_hb, &q);
    CU_ASSERT_EQUAL(q.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(q.assignment.n, 3); /* asked to revoke 3 */
    CU_ASSERT_EQUAL(q.epoch, 1);
    hb_free(&q);
    /* Member 1 still gets nothing: member 0 has not acknowledged. */
    o = heartbeat(gs, "gl", &ms[1], NULL, 0);
    CU_ASSERT_EQUAL(ms[1].owned.n, 0);
    CU_ASSERT_EQUAL(ms[1].epoch, 2);
    hb_free(&o);
    CU_ASSERT_STRING_EQUAL(srv_cgroup_state_name(cgroup_of(gs, "gl")), "Reconciling");
    /* Member 0 acknowledges (owns only its 3), moves to epoch 2; then member 1 gets the rest. */
    ms[0].owned.n = 0;
    srv_cmember *cm0 = srv_cgroup_member(cgroup_of(gs, "gl"), kp_str_c(ms[0].id));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cm0);
    for (int i = 0; i < cm0->assigned.n; i++)
        srv_tps_add(&ms[0].owned, cm0->assigned.v[i].topic, cm0->assigned.v[i].partition);
    o = heartbeat(gs, "gl", &ms[0], NULL, 0);
    CU_ASSERT_EQUAL(ms[0].epoch, 2);
    hb_free(&o);
    o = heartbeat(gs, "gl", &ms[1], NULL, 0);
    CU_ASSERT_EQUAL(ms[1].owned.n, 3);
    hb_free(&o);
    check_exclusive(ms, 2, 6);
    /* Member 1 leaves: member 0 gets everything on its next heartbeat. */
    member leaving = ms[1];
    leaving.epoch = SRV_CEPOCH_LEAVE;
    o = heartbeat(gs, "gl", &leaving, NULL, 0);
    CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(o.epoch, SRV_CEPOCH_LEAVE);
    hb_free(&o);
    CU_ASSERT_EQUAL(cgroup_of(gs, "gl")->nmembers, 1);
    o = heartbeat(gs, "gl", &ms[0], NULL, 0);
    CU_ASSERT_EQUAL(ms[0].owned.n, 6);
    CU_ASSERT_EQUAL(ms[0].epoch, 3);
    hb_free(&o);
    member_free(&ms[0]);
    member_free(&ms[1]);
    srv_groups_free(gs);
}

static int g_cb_done;
static void cb_done(void *ctx)
{
    (void)ctx;
    g_cb_done++;
}

static void test_fencing(void)
{
    srv_groups *gs = new_groups();
    member m;
    memset(&m, 0, sizeof(m));
    hb_out o = heartbeat(gs, "gf", &m, NULL, 1);
    hb_free(&o);
    member bad = m;
    memset(&bad.owned, 0, sizeof(bad.owned));
    bad.epoch = m.epoch + 5;
    o = heartbeat(gs, "gf", &bad, NULL, 0);
    CU_ASSERT_EQUAL(o.error, KP_ERR_FENCED_MEMBER_EPOCH);
    hb_free(&o);
    bad.epoch = 7;
    snprintf(bad.id, sizeof(bad.id), "nobody");
    o = heartbeat(gs, "gf", &bad, NULL, 0);
    CU_ASSERT_EQUAL(o.error, KP_ERR_UNKNOWN_MEMBER_ID);
    hb_free(&o);
    o = heartbeat(gs, "nogroup", &bad, NULL, 0);
    CU_ASSERT_EQUAL(o.error, KP_ERR_GROUP_ID_NOT_FOUND);
    hb_free(&o);
    /* Offset commits are checked against the member epoch. */
    srv_commit_item it = {0};
    it.topic = kp_str_c("a");
    it.partition = 0;
    it.offset = 5;
    it.leader_epoch = -1;
    it.metadata = KP_STR_NULL;
    it.commit_ts = g_env.now_ms;
    it.expire_ts = -1;
    srv_group_commit(gs, 0, kp_str_c("gf"), m.epoch - 1, kp_str_c(m.id), KP_STR_NULL, 9, 1, &it, cb_done,
                     NULL);
    CU_ASSERT_EQUAL(it.error, KP_ERR_STALE_MEMBER_EPOCH);
    it.error = 0;
    srv_group_commit(gs, 0, kp_str_c("gf"), m.epoch, kp_str_c(m.id), KP_STR_NULL, 8, 1, &it, cb_done, NULL);
    CU_ASSERT_EQUAL(it.error, KP_ERR_UNSUPPORTED_VERSION);
    it.error = 0;
    srv_group_commit(gs, 0, kp_str_c("gf"), m.epoch, kp_str_c(m.id), KP_STR_NULL, 9, 1, &it, cb_done, NULL);
    CU_ASSERT_EQUAL(it.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(srv_group_offset(srv_groups_find(gs, kp_str_c("gf")), kp_str_c("a"), 0)->offset, 5);
    it.error = 0;
    srv_group_commit(gs, 0, kp_str_c("gf"), -1, kp_str_c(""), KP_STR_NULL, 9, 1, &it, cb_done, NULL);
    CU_ASSERT_EQUAL(it.error, KP_ERR_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(srv_group_validate_fetch(gs, kp_str_c("gf"), kp_str_c(m.id), m.epoch + 1),
                    KP_ERR_STALE_MEMBER_EPOCH);
    CU_ASSERT_EQUAL(srv_group_validate_fetch(gs, kp_str_c("gf"), KP_STR_NULL, -1), KP_ERR_NONE);
    member_free(&m);
    srv_groups_free(gs);
}

static void test_static_member(void)
{
    srv_groups *gs = new_groups();
    member s, d;
    memset(&s, 0, sizeof(s));
    memset(&d, 0, sizeof(d));
    s.instance = "inst-1";
    hb_out o = heartbeat(gs, "gs", &s, NULL, 1);
    hb_free(&o);
    o = heartbeat(gs, "gs", &d, NULL, 1);
    hb_free(&o);
    member both[2] = {s, d};
    converge(gs, "gs", both, 2, NULL);
    s = both[0];
    d = both[1];
    CU_ASSERT_EQUAL(s.owned.n, 3);
    int32_t epoch_before = cgroup_of(gs, "gs")->epoch;
    /* A second instance with the same id cannot join while the first holds it. */
    member s2;
    memset(&s2, 0, sizeof(s2));
    s2.instance = "inst-1";
    o = heartbeat(gs, "gs", &s2, NULL, 1);
    CU_ASSERT_EQUAL(o.error, KP_ERR_UNRELEASED_INSTANCE_ID);
    hb_free(&o);
    /* Temporary leave (-2): the partitions stay reserved for it. */
    member leaving = s;
    leaving.epoch = SRV_CEPOCH_LEAVE_STATIC;
    o = heartbeat(gs, "gs", &leaving, NULL, 0);
    CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(o.epoch, SRV_CEPOCH_LEAVE_STATIC);
    hb_free(&o);
    o = heartbeat(gs, "gs", &d, NULL, 0);
    CU_ASSERT_EQUAL(d.owned.n, 3);
    hb_free(&o);
    /* It comes back with a new member id and gets the same partitions at
     * once, without a new group epoch. */
    o = heartbeat(gs, "gs", &s2, NULL, 1);
    CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(o.assignment.n, 3);
    CU_ASSERT(srv_tps_eq(&o.assignment, &s.owned));
    CU_ASSERT_EQUAL(cgroup_of(gs, "gs")->epoch, epoch_before);
    CU_ASSERT_EQUAL(cgroup_of(gs, "gs")->nmembers, 2);
    hb_free(&o);
    /* The old incarnation is fenced. */
    o = heartbeat(gs, "gs", &s, NULL, 0);
    CU_ASSERT_EQUAL(o.error, KP_ERR_FENCED_INSTANCE_ID);
    hb_free(&o);
    member_free(&s);
    member_free(&s2);
    member_free(&d);
    srv_groups_free(gs);
}

static void test_session_expiry_and_new_partitions(void)
{
    srv_groups *gs = new_groups();
    member ms[2];
    memset(ms, 0, sizeof(ms));
    for (int i = 0; i < 2; i++) {
        hb_out o = heartbeat(gs, "ge", &ms[i], NULL, 1);
        hb_free(&o);
    }
    converge(gs, "ge", ms, 2, NULL);
    check_exclusive(ms, 2, 6);
    /* New partitions: the next heartbeat bumps the epoch and they are shared out. */
    g_env.topics[0].nparts = 8;
    converge(gs, "ge", ms, 2, NULL);
    CU_ASSERT_EQUAL(ms[0].owned.n, 4);
    CU_ASSERT_EQUAL(ms[1].owned.n, 4);
    check_exclusive(ms, 2, 8);
    /* Member 1 stops heartbeating: fenced after the session timeout. */
    g_env.now_ms += 30000;
    hb_out o = heartbeat(gs, "ge", &ms[0], NULL, 0);
    hb_free(&o);
    g_env.now_ms += 20000;
    srv_groups_poll(gs);
    CU_ASSERT_EQUAL(cgroup_of(gs, "ge")->nmembers, 1);
    o = heartbeat(gs, "ge", &ms[0], NULL, 0);
    CU_ASSERT_EQUAL(ms[0].owned.n, 8);
    hb_free(&o);
    o = heartbeat(gs, "ge", &ms[1], NULL, 0);
    CU_ASSERT_EQUAL(o.error, KP_ERR_UNKNOWN_MEMBER_ID);
    hb_free(&o);
    g_env.topics[0].nparts = 6;
    member_free(&ms[0]);
    member_free(&ms[1]);
    srv_groups_free(gs);
}

static void on_join(void *ctx, const srv_join_result *r)
{
    *(int16_t *)ctx = r->error;
}

static int16_t classic_join(srv_groups *gs, const char *group, const char *ptype)
{
    static srv_join_protocol proto = {{"range", 5}, {(const uint8_t *)"m", 1}};
    srv_join_req rq = {0};
    rq.group_id = kp_str_c(group);
    rq.member_id = kp_str_c("");
    rq.instance_id = KP_STR_NULL;
    rq.client_id = kp_str_c("cli");
    rq.client_host = kp_str_c("");
    rq.protocol_type = kp_str_c(ptype);
    rq.session_timeout_ms = 10000;
    rq.rebalance_timeout_ms = 10000;
    rq.nprotocols = 1;
    rq.protocols = &proto;
    rq.require_known_member_id = 1;
    int16_t err = -1;
    srv_group_join(gs, 0, &rq, on_join, &err);
    return err;
}

/* Classic and consumer groups side by side, then a restart from the log. */
static void test_coexistence_and_replay(void)
{
    /* Every batch is kept: the restart below is a replay of what was written. */
    g_env.keep_log = 1;
    srv_groups *gs = new_groups();
    member ms[2];
    memset(ms, 0, sizeof(ms));
    for (int i = 0; i < 2; i++) {
        hb_out o = heartbeat(gs, "gc", &ms[i], "range", 1);
        hb_free(&o);
    }
    converge(gs, "gc", ms, 2, "range");
    /* A classic member may join a non-empty consumer group (online
     * migration): it is first handed its member id. */
    CU_ASSERT_EQUAL(classic_join(gs, "gc", "consumer"), KP_ERR_MEMBER_ID_REQUIRED);
    CU_ASSERT_EQUAL(classic_join(gs, "gc", "connect"), KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    /* A classic group with a member refuses a consumer member. */
    CU_ASSERT_EQUAL(classic_join(gs, "classic", "consumer"), KP_ERR_MEMBER_ID_REQUIRED);
    member x;
    memset(&x, 0, sizeof(x));
    srv_group *cl = srv_groups_find(gs, kp_str_c("classic"));
    CU_ASSERT_PTR_NOT_NULL(cl);
    /* "classic" is empty (only a pending member id): it is upgraded. */
    hb_out o = heartbeat(gs, "classic", &x, NULL, 1);
    CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
    hb_free(&o);
    CU_ASSERT_PTR_NOT_NULL(cgroup_of(gs, "classic"));
    /* Offsets of the consumer group, then delete refused while members are in. */
    srv_commit_item it = {0};
    it.topic = kp_str_c("a");
    it.partition = 1;
    it.offset = 42;
    it.leader_epoch = -1;
    it.metadata = KP_STR_NULL;
    it.commit_ts = g_env.now_ms;
    it.expire_ts = -1;
    g_cb_done = 0;
    srv_group_commit(gs, 0, kp_str_c("gc"), ms[0].epoch, kp_str_c(ms[0].id), KP_STR_NULL, 9, 1, &it, cb_done,
                     NULL);
    CU_ASSERT_EQUAL(it.error, KP_ERR_NONE);
    int16_t derr = -1;
    srv_group_delete(gs, kp_str_c("gc"), &derr, cb_done, NULL);
    CU_ASSERT_EQUAL(derr, KP_ERR_NON_EMPTY_GROUP);

    /* Restart: replay everything written. */
    srv_cgroup *before = cgroup_of(gs, "gc");
    int32_t epoch = before->epoch, aepoch = before->assignment_epoch;
    srv_groups *gs2 = new_groups();
    CU_ASSERT(fake_group_env_replay(&g_env, gs2) > 5);
    srv_cgroup *after = cgroup_of(gs2, "gc");
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_EQUAL(after->epoch, epoch);
    CU_ASSERT_EQUAL(after->assignment_epoch, aepoch);
    CU_ASSERT_EQUAL(after->nmembers, 2);
    CU_ASSERT(kp_str_eq(srv_cgroup_assignor(after), "range"));
    for (int i = 0; i < 2; i++) {
        srv_cmember *a = srv_cgroup_member(after, kp_str_c(ms[i].id));
        srv_cmember *bm = srv_cgroup_member(before, kp_str_c(ms[i].id));
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(a->epoch, bm->epoch);
        CU_ASSERT(srv_tps_eq(&a->assigned, &bm->assigned));
        CU_ASSERT(srv_tps_eq(&a->target, &bm->target));
        CU_ASSERT_EQUAL(a->nsubs, 1);
    }
    CU_ASSERT_EQUAL(srv_group_offset(srv_groups_find(gs2, kp_str_c("gc")), kp_str_c("a"), 1)->offset, 42);
    CU_ASSERT_PTR_NOT_NULL(cgroup_of(gs2, "classic"));
    /* Members carry on after the restart with their epochs. */
    for (int i = 0; i < 2; i++) {
        o = heartbeat(gs2, "gc", &ms[i], NULL, 0);
        CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
        hb_free(&o);
    }
    /* Both leave; the empty group can be deleted, and an empty consumer
     * group becomes classic on a classic join. */
    for (int i = 0; i < 2; i++) {
        member l = ms[i];
        l.epoch = SRV_CEPOCH_LEAVE;
        o = heartbeat(gs2, "gc", &l, NULL, 0);
        CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
        hb_free(&o);
    }
    CU_ASSERT_EQUAL(classic_join(gs2, "gc", "consumer"), KP_ERR_MEMBER_ID_REQUIRED);
    CU_ASSERT_PTR_NULL(cgroup_of(gs2, "gc"));
    derr = -1;
    srv_group_delete(gs2, kp_str_c("classic"), &derr, cb_done, NULL);
    CU_ASSERT_EQUAL(derr, KP_ERR_NON_EMPTY_GROUP);
    member_free(&ms[0]);
    member_free(&ms[1]);
    member_free(&x);
    srv_groups_free(gs);
    srv_groups_free(gs2);
    fake_group_env_clear_log(&g_env);
    g_env.keep_log = 0;
}

/* A failed write of the group's records answers as Kafka 4 maps coordinator
 * write errors, one mapping for both protocols: errors it does not translate
 * pass through (the KIP-848 path used to turn them into UNKNOWN_SERVER_ERROR). */
static void test_write_errors(void)
{
    static const struct {
        int16_t log, answer;
    } cases[] = {
        {KP_ERR_NOT_LEADER_OR_FOLLOWER, KP_ERR_NOT_COORDINATOR},
        {KP_ERR_KAFKA_STORAGE_ERROR, KP_ERR_NOT_COORDINATOR},
        {KP_ERR_REQUEST_TIMED_OUT, KP_ERR_COORDINATOR_NOT_AVAILABLE},
        {KP_ERR_MESSAGE_TOO_LARGE, KP_ERR_UNKNOWN_SERVER_ERROR},
        {KP_ERR_CORRUPT_MESSAGE, KP_ERR_CORRUPT_MESSAGE},
        {KP_ERR_INVALID_TIMESTAMP, KP_ERR_INVALID_TIMESTAMP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        srv_groups *gs = new_groups();
        member m = {0};
        g_env.append_error = cases[i].log;
        hb_out o = heartbeat(gs, "werr", &m, NULL, 1);
        g_env.append_error = KP_ERR_NONE;
        if (o.error != cases[i].answer)
            fprintf(stderr, "write error %d answered %d, expected %d\n", cases[i].log, o.error,
                    cases[i].answer);
        CU_ASSERT_EQUAL(o.error, cases[i].answer);
        hb_free(&o);
        member_free(&m);
        srv_groups_free(gs);
    }
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("group_consumer", NULL, NULL);
    CU_add_test(s, "uniform: three members over six partitions", test_uniform_three_members);
    CU_add_test(s, "range: three members over six partitions", test_range_three_members);
    CU_add_test(s, "revocation before assignment, leave", test_revoke_before_assign_and_leave);
    CU_add_test(s, "fencing and offset commits by member epoch", test_fencing);
    CU_add_test(s, "static member leave and rejoin", test_static_member);
    CU_add_test(s, "session expiry, new partitions", test_session_expiry_and_new_partitions);
    CU_add_test(s, "classic/consumer coexistence, replay", test_coexistence_and_replay);
    CU_add_test(s, "failed writes of the group's records", test_write_errors);
}

/* The fake __consumer_offsets the group code wrote to. */
static void free_log(void)
{
    fake_group_env_clear_log(&g_env);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites, .teardown = free_log};

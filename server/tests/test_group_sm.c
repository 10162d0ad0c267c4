/*
 * test_group_sm.c — unit tests of the classic group state machine
 * (server/group/group*.c) driven by the fake group environment
 * (fake_group_env.h), a fake clock and __consumer_offsets log: KIP-394 joins,
 * sync, heartbeats and generation fencing, session expiry, static members
 * (KIP-345), protocol checks, offsets and group deletion.
 *
 * Owns: nothing outside the process. Must not: depend on shards or sockets.
 */
#include "kb_test.h"
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "fake_group_env.h"
#include "group/group.h"

/* Batches are not kept: nothing here replays them. */
static fake_group_env g_env = {.now_ms = 1000000};

typedef struct join_out {
    int called;
    int16_t error;
    int32_t generation;
    char member_id[256];
    char leader[256];
    char protocol[64];
    int nmembers;
} join_out;

static void on_join(void *ctx, const srv_join_result *r)
{
    join_out *o = ctx;
    o->called++;
    o->error = r->error;
    o->generation = r->generation;
    snprintf(o->member_id, sizeof(o->member_id), "%.*s", r->member_id.len > 0 ? r->member_id.len : 0,
             r->member_id.len > 0 ? r->member_id.p : "");
    snprintf(o->leader, sizeof(o->leader), "%.*s", r->leader.len > 0 ? r->leader.len : 0,
             r->leader.len > 0 ? r->leader.p : "");
    snprintf(o->protocol, sizeof(o->protocol), "%.*s", r->protocol_name.len > 0 ? r->protocol_name.len : 0,
             r->protocol_name.len > 0 ? r->protocol_name.p : "");
    o->nmembers = r->nmembers;
}

typedef struct sync_out {
    int called;
    int16_t error;
    char assignment[64];
} sync_out;

static void on_sync(void *ctx, const srv_sync_result *r)
{
    sync_out *o = ctx;
    o->called++;
    o->error = r->error;
    snprintf(o->assignment, sizeof(o->assignment), "%.*s", r->assignment.len, (const char *)r->assignment.p);
}

static srv_groups *new_groups(void)
{
    srv_groups_config cfg = {6000, 300000, 0, 1000, 7LL * 24 * 3600 * 1000, 0, 0, 0, 0, 0, {0}};
    return fake_group_env_groups(&g_env, &cfg);
}

static srv_join_protocol protos[2] = {{{"range", 5}, {(const uint8_t *)"meta-r", 6}},
                                      {{"roundrobin", 10}, {(const uint8_t *)"meta-rr", 7}}};

static srv_join_req join_req(const char *group, const char *member, const char *instance, int nprotos)
{
    srv_join_req rq = {0};
    rq.group_id = kp_str_c(group);
    rq.member_id = kp_str_c(member);
    rq.instance_id = instance ? kp_str_c(instance) : KP_STR_NULL;
    rq.client_id = kp_str_c("cli");
    rq.client_host = kp_str_c("/127.0.0.1");
    rq.protocol_type = kp_str_c("consumer");
    rq.session_timeout_ms = 10000;
    rq.rebalance_timeout_ms = 30000;
    rq.nprotocols = nprotos;
    rq.protocols = protos;
    rq.require_known_member_id = instance == NULL;
    return rq;
}

static void do_join(srv_groups *gs, const char *group, const char *member, const char *instance, join_out *o)
{
    srv_join_req rq = join_req(group, member, instance, 2);
    memset(o, 0, sizeof(*o));
    srv_group_join(gs, 0, &rq, on_join, o);
}

static void do_sync(srv_groups *gs, const char *group, int32_t gen, const char *member, const char *instance,
                    int nassign, const srv_sync_assignment *as, sync_out *o)
{
    srv_sync_req rq = {0};
    rq.group_id = kp_str_c(group);
    rq.generation = gen;
    rq.member_id = kp_str_c(member);
    rq.instance_id = instance ? kp_str_c(instance) : KP_STR_NULL;
    rq.protocol_type = KP_STR_NULL;
    rq.protocol_name = KP_STR_NULL;
    rq.nassignments = nassign;
    rq.assignments = as;
    memset(o, 0, sizeof(*o));
    srv_group_sync(gs, &rq, on_sync, o);
}

/* One dynamic member through MEMBER_ID_REQUIRED, join and sync: Stable gen 1. */
static void join_one(srv_groups *gs, const char *group, join_out *j)
{
    join_out first;
    do_join(gs, group, "", NULL, &first);
    CU_ASSERT_EQUAL(first.called, 1);
    CU_ASSERT_EQUAL(first.error, KP_ERR_MEMBER_ID_REQUIRED);
    CU_ASSERT(strncmp(first.member_id, "cli-", 4) == 0);
    do_join(gs, group, first.member_id, NULL, j);
    CU_ASSERT_EQUAL(j->called, 0); /* parked until the (zero) initial delay fires */
    srv_groups_poll(gs);
    CU_ASSERT_EQUAL(j->called, 1);
    CU_ASSERT_EQUAL(j->error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(j->generation, 1);
    CU_ASSERT_STRING_EQUAL(j->leader, j->member_id);
    CU_ASSERT_STRING_EQUAL(j->protocol, "range");
    CU_ASSERT_EQUAL(j->nmembers, 1);
}

static void test_join_sync_heartbeat(void)
{
    srv_groups *gs = new_groups();
    join_out j;
    join_one(gs, "g", &j);
    srv_sync_assignment a = {kp_str_c(j.member_id), {(const uint8_t *)"A1", 2}};
    sync_out s;
    do_sync(gs, "g", 1, j.member_id, NULL, 1, &a, &s);
    CU_ASSERT_EQUAL(s.called, 1);
    CU_ASSERT_EQUAL(s.error, KP_ERR_NONE);
    CU_ASSERT_STRING_EQUAL(s.assignment, "A1");
    srv_group *g = srv_groups_find(gs, kp_str_c("g"));
    CU_ASSERT_EQUAL(g->state, SRV_GS_STABLE);
    CU_ASSERT_EQUAL(srv_group_heartbeat(gs, kp_str_c("g"), 1, kp_str_c(j.member_id), KP_STR_NULL),
                    KP_ERR_NONE);
    CU_ASSERT_EQUAL(srv_group_heartbeat(gs, kp_str_c("g"), 0, kp_str_c(j.member_id), KP_STR_NULL),
                    KP_ERR_ILLEGAL_GENERATION);
    CU_ASSERT_EQUAL(srv_group_heartbeat(gs, kp_str_c("g"), 1, kp_str_c("nobody"), KP_STR_NULL),
                    KP_ERR_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(srv_group_heartbeat(gs, kp_str_c("zz"), 1, kp_str_c("x"), KP_STR_NULL),
                    KP_ERR_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(srv_group_heartbeat(gs, kp_str_c(""), 1, kp_str_c("x"), KP_STR_NULL),
                    KP_ERR_INVALID_GROUP_ID);
    /* A stable follower-less leader rejoining forces a rebalance (Kafka). */
    join_out r;
    do_join(gs, "g", j.member_id, NULL, &r);
    /* Every member has rejoined: the rebalance completes at once. */
    CU_ASSERT_EQUAL(g->state, SRV_GS_COMPLETING);
    CU_ASSERT_EQUAL(r.called, 1);
    CU_ASSERT_EQUAL(r.generation, 2);
    srv_groups_free(gs);
}

static void test_second_member_rebalance(void)
{
    srv_groups *gs = new_groups();
    join_out a, b, a2;
    join_one(gs, "g2", &a);
    sync_out s;
    do_sync(gs, "g2", 1, a.member_id, NULL, 0, NULL, &s);
    CU_ASSERT_EQUAL(s.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(s.assignment[0], 0); /* no assignment given: empty */
    join_out bid;
    do_join(gs, "g2", "", NULL, &bid);
    CU_ASSERT_EQUAL(bid.error, KP_ERR_MEMBER_ID_REQUIRED);
    do_join(gs, "g2", bid.member_id, NULL, &b);
    CU_ASSERT_EQUAL(b.called, 0);
    CU_ASSERT_EQUAL(srv_group_heartbeat(gs, kp_str_c("g2"), 1, kp_str_c(a.member_id), KP_STR_NULL),
                    KP_ERR_REBALANCE_IN_PROGRESS);
    do_sync(gs, "g2", 1, a.member_id, NULL, 0, NULL, &s);
    CU_ASSERT_EQUAL(s.error, KP_ERR_REBALANCE_IN_PROGRESS);
    do_join(gs, "g2", a.member_id, NULL, &a2);
    CU_ASSERT_EQUAL(a2.called, 1);
    CU_ASSERT_EQUAL(b.called, 1);
    CU_ASSERT_EQUAL(a2.generation, 2);
    CU_ASSERT_EQUAL(b.generation, 2);
    CU_ASSERT_EQUAL(a2.nmembers, 2); /* the leader gets the member list */
    CU_ASSERT_EQUAL(b.nmembers, 0);
    CU_ASSERT_STRING_EQUAL(b.leader, a.member_id);
    /* The follower's sync waits for the leader's. */
    sync_out sb, sa;
    do_sync(gs, "g2", 2, b.member_id, NULL, 0, NULL, &sb);
    CU_ASSERT_EQUAL(sb.called, 0);
    srv_sync_assignment as[2] = {{kp_str_c(a.member_id), {(const uint8_t *)"AA", 2}},
                                 {kp_str_c(b.member_id), {(const uint8_t *)"BB", 2}}};
    do_sync(gs, "g2", 2, a.member_id, NULL, 2, as, &sa);
    CU_ASSERT_EQUAL(sb.called, 1);
    CU_ASSERT_STRING_EQUAL(sb.assignment, "BB");
    CU_ASSERT_STRING_EQUAL(sa.assignment, "AA");
    /* Session expiry of b (only a heartbeats) rebalances to a alone. */
    for (int i = 0; i < 12; i++) {
        g_env.now_ms += 1000;
        srv_group_heartbeat(gs, kp_str_c("g2"), 2, kp_str_c(a.member_id), KP_STR_NULL);
        srv_groups_poll(gs);
    }
    srv_group *g = srv_groups_find(gs, kp_str_c("g2"));
    CU_ASSERT_EQUAL(g->nmembers, 1);
    CU_ASSERT_EQUAL(g->state, SRV_GS_PREPARING);
    CU_ASSERT_EQUAL(srv_group_heartbeat(gs, kp_str_c("g2"), 2, kp_str_c(b.member_id), KP_STR_NULL),
                    KP_ERR_UNKNOWN_MEMBER_ID);
    /* Leaving empties the group: a new generation with no members. */
    srv_leave_member lm = {kp_str_c(a.member_id), KP_STR_NULL, -1};
    CU_ASSERT_EQUAL(srv_group_leave(gs, kp_str_c("g2"), 1, &lm), KP_ERR_NONE);
    CU_ASSERT_EQUAL(lm.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(g->state, SRV_GS_EMPTY);
    CU_ASSERT_EQUAL(g->generation, 3);
    srv_groups_free(gs);
}

static void test_static_member(void)
{
    srv_groups *gs = new_groups();
    join_out j, j2;
    do_join(gs, "gs", "", "inst-1", &j);
    CU_ASSERT_EQUAL(j.called, 0);
    srv_groups_poll(gs);
    CU_ASSERT_EQUAL(j.error, KP_ERR_NONE);
    CU_ASSERT(strncmp(j.member_id, "inst-1-", 7) == 0);
    srv_sync_assignment a = {kp_str_c(j.member_id), {(const uint8_t *)"S1", 2}};
    sync_out s;
    do_sync(gs, "gs", 1, j.member_id, "inst-1", 1, &a, &s);
    CU_ASSERT_STRING_EQUAL(s.assignment, "S1");
    int appends = g_env.appends;
    /* Restart: a new member id, the same instance id, no rebalance. */
    do_join(gs, "gs", "", "inst-1", &j2);
    CU_ASSERT_EQUAL(j2.called, 1);
    CU_ASSERT_EQUAL(j2.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(j2.generation, 1);
    CU_ASSERT_STRING_NOT_EQUAL(j2.member_id, j.member_id);
    CU_ASSERT_EQUAL(g_env.appends, appends + 1); /* the new member id is persisted */
    srv_group *g = srv_groups_find(gs, kp_str_c("gs"));
    CU_ASSERT_EQUAL(g->state, SRV_GS_STABLE);
    CU_ASSERT_EQUAL(srv_group_heartbeat(gs, kp_str_c("gs"), 1, kp_str_c(j.member_id), kp_str_c("inst-1")),
                    KP_ERR_FENCED_INSTANCE_ID);
    do_sync(gs, "gs", 1, j2.member_id, "inst-1", 0, NULL, &s);
    CU_ASSERT_EQUAL(s.error, KP_ERR_NONE);
    CU_ASSERT_STRING_EQUAL(s.assignment, "S1");
    /* Administrative removal by instance id. */
    srv_leave_member lm = {kp_str_c(""), kp_str_c("inst-1"), -1};
    srv_group_leave(gs, kp_str_c("gs"), 1, &lm);
    CU_ASSERT_EQUAL(lm.error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(g->nmembers, 0);
    srv_groups_free(gs);
}

static void test_refusals(void)
{
    srv_groups *gs = new_groups();
    join_out j, x;
    srv_join_req rq = join_req("gr", "", NULL, 2);
    rq.session_timeout_ms = 100;
    memset(&x, 0, sizeof(x));
    srv_group_join(gs, 0, &rq, on_join, &x);
    CU_ASSERT_EQUAL(x.error, KP_ERR_INVALID_SESSION_TIMEOUT);
    join_one(gs, "gr", &j);
    rq = join_req("gr", "", NULL, 2);
    rq.protocol_type = kp_str_c("connect");
    memset(&x, 0, sizeof(x));
    srv_group_join(gs, 0, &rq, on_join, &x);
    CU_ASSERT_EQUAL(x.error, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    do_join(gs, "nogroup", "someone", NULL, &x);
    CU_ASSERT_EQUAL(x.error, KP_ERR_UNKNOWN_MEMBER_ID);
    srv_groups_free(gs);
}

static int g_done;
static void done_cb(void *ctx)
{
    (void)ctx;
    g_done++;
}

static void test_offsets_and_delete(void)
{
    srv_groups *gs = new_groups();
    srv_commit_item it[2] = {
        {kp_str_c("t"), 0, 42, 3, kp_str_c("md"), g_env.now_ms, -1, 0},
        {kp_str_c("t"), 1, 7, -1, KP_STR_NULL, g_env.now_ms, -1, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION}};
    g_done = 0;
    /* No group management (generation -1): a simple group is created. */
    srv_group_commit(gs, 0, kp_str_c("go"), -1, kp_str_c(""), KP_STR_NULL, 8, 2, it, done_cb, NULL);
    CU_ASSERT_EQUAL(g_done, 1);
    CU_ASSERT_EQUAL(it[0].error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(it[1].error, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    srv_group *g = srv_groups_find(gs, kp_str_c("go"));
    const srv_goffset *o = srv_group_offset(g, kp_str_c("t"), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->offset, 42);
    CU_ASSERT_EQUAL(o->leader_epoch, 3);
    CU_ASSERT_STRING_EQUAL(o->metadata, "md");
    CU_ASSERT_PTR_NULL(srv_group_offset(g, kp_str_c("t"), 1));
    /* A generation we do not know is fenced. */
    srv_commit_item it2 = {kp_str_c("t"), 0, 50, -1, KP_STR_NULL, g_env.now_ms, -1, 0};
    srv_group_commit(gs, 0, kp_str_c("other"), 5, kp_str_c("m"), KP_STR_NULL, 8, 1, &it2, done_cb, NULL);
    CU_ASSERT_EQUAL(it2.error, KP_ERR_ILLEGAL_GENERATION);
    /* Members commit with their generation; a stale one is refused. */
    join_out j;
    join_one(gs, "gm", &j);
    sync_out s;
    do_sync(gs, "gm", 1, j.member_id, NULL, 0, NULL, &s);
    srv_commit_item it3 = {kp_str_c("t"), 0, 9, -1, KP_STR_NULL, g_env.now_ms, -1, 0};
    srv_group_commit(gs, 0, kp_str_c("gm"), 0, kp_str_c(j.member_id), KP_STR_NULL, 8, 1, &it3, done_cb, NULL);
    CU_ASSERT_EQUAL(it3.error, KP_ERR_ILLEGAL_GENERATION);
    it3.error = 0;
    srv_group_commit(gs, 0, kp_str_c("gm"), 1, kp_str_c(j.member_id), KP_STR_NULL, 8, 1, &it3, done_cb, NULL);
    CU_ASSERT_EQUAL(it3.error, KP_ERR_NONE);
    int16_t err = -1;
    srv_group_delete(gs, kp_str_c("gm"), &err, done_cb, NULL);
    CU_ASSERT_EQUAL(err, KP_ERR_NON_EMPTY_GROUP);
    srv_group_delete(gs, kp_str_c("go"), &err, done_cb, NULL);
    CU_ASSERT_EQUAL(err, KP_ERR_NONE);
    CU_ASSERT_PTR_NULL(srv_groups_find(gs, kp_str_c("go")));
    srv_group_delete(gs, kp_str_c("go"), &err, done_cb, NULL);
    CU_ASSERT_EQUAL(err, KP_ERR_GROUP_ID_NOT_FOUND);
    /* Retention: an empty group's offsets go a retention period after it emptied. */
    srv_commit_item it4 = {kp_str_c("t"), 2, 1, -1, KP_STR_NULL, g_env.now_ms, -1, 0};
    srv_group_commit(gs, 0, kp_str_c("gx"), -1, kp_str_c(""), KP_STR_NULL, 8, 1, &it4, done_cb, NULL);
    srv_groups_expire_offsets(gs);
    CU_ASSERT_PTR_NOT_NULL(srv_groups_find(gs, kp_str_c("gx")));
    g_env.now_ms += 7LL * 24 * 3600 * 1000 + 1;
    srv_groups_expire_offsets(gs);
    CU_ASSERT_PTR_NULL(srv_groups_find(gs, kp_str_c("gx")));
    srv_groups_free(gs);
}

static void test_partition_for(void)
{
    /* Java: "g1".hashCode() = 3242; "consumer-group".hashCode() % 50 as Kafka computes. */
    CU_ASSERT_EQUAL(srv_group_partition_for(kp_str_c("g1"), 50), 3242 % 50);
    CU_ASSERT_EQUAL(srv_group_partition_for(kp_str_c(""), 50), 0);
    /* "polygenelubricants".hashCode() == Integer.MIN_VALUE: Utils.abs maps it to 0. */
    CU_ASSERT_EQUAL(srv_group_partition_for(kp_str_c("polygenelubricants"), 7), 0);
    /* Non-ASCII: "é" is one UTF-16 unit 0xE9. */
    CU_ASSERT_EQUAL(srv_group_partition_for(kp_str_c("\xc3\xa9"), 1000), 0xE9 % 1000);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("group_sm", NULL, NULL);
    CU_add_test(s, "join, sync, heartbeat, fencing", test_join_sync_heartbeat);
    CU_add_test(s, "second member, rebalance, session expiry, leave", test_second_member_rebalance);
    CU_add_test(s, "static member rejoin without rebalance", test_static_member);
    CU_add_test(s, "refusals", test_refusals);
    CU_add_test(s, "offsets, delete, retention", test_offsets_and_delete);
    CU_add_test(s, "group to partition", test_partition_for);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

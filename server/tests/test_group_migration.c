/*
 * test_group_migration.c — unit tests of the online migration between the
 * classic and the consumer group protocol (KIP-848, server/group/consumer.c
 * and group_classic.c) with the fake group environment: a classic group
 * upgraded by a ConsumerGroupHeartbeat, its classic members driven by
 * JoinGroup/SyncGroup/Heartbeat inside the consumer group, the downgrade
 * when the last consumer-protocol member leaves, both kept across a replay
 * of the log, group.consumer.migration.policy, group.consumer.max.size and
 * group.consumer.assignors.
 *
 * Owns: nothing outside the process. Must not: depend on shards or sockets.
 */
#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errors.h"
#include "fake_group_env.h"
#include "group/consumer.h"
#include "kp_messages.h"

#define TOPIC_T_ID                                                                                           \
    {                                                                                                        \
        {                                                                                                    \
            9, 9, 9, 9, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16                                            \
        }                                                                                                    \
    }
static const kp_uuid topic_t = TOPIC_T_ID;
#define NPARTS 6

static fake_group_env g_env;

static void reset_env(void)
{
    fake_group_env_clear_log(&g_env);
    memset(&g_env, 0, sizeof(g_env));
    g_env.now_ms = 1000000;
    g_env.ntopics = 1;
    g_env.topics[0] = (fake_group_topic){"t", TOPIC_T_ID, NPARTS};
    g_env.keep_log = 1;
}

static srv_groups_config base_cfg(void)
{
    srv_groups_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.min_session_timeout_ms = 6000;
    cfg.max_session_timeout_ms = 300000;
    cfg.initial_rebalance_delay_ms = 100;
    cfg.max_size = 1000;
    cfg.offsets_retention_ms = 7LL * 24 * 3600 * 1000;
    cfg.consumer_heartbeat_interval_ms = 3000;
    cfg.consumer_session_timeout_ms = 45000;
    return cfg;
}

static srv_groups *new_groups_cfg(const srv_groups_config *cfg)
{
    return fake_group_env_groups(&g_env, cfg);
}

/* ---- the classic side ----------------------------------------------------- */

/* A classic consumer: its member id, generation and what it owns. */
typedef struct classic {
    char id[64];
    int32_t generation;
    char protocol[16];
    int joined, synced;
    int16_t join_error, sync_error;
    int nowned;
    int32_t owned[NPARTS];
} classic;

/* Its ConsumerProtocolSubscription v1 (topic t, owned partitions). */
static kp_bytes subscription(const classic *c, kp_writer *w)
{
    kp_consumer_protocol_subscription s;
    kp_consumer_protocol_subscription_init(&s);
    static kp_str topics[1] = {{"t", 1}};
    kp_consumer_protocol_subscription_topic_partition tp;
    kp_consumer_protocol_subscription_topic_partition_init(&tp);
    tp.topic = kp_str_c("t");
    tp.partitions = (int32_t *)c->owned;
    tp.partitions_count = c->nowned;
    s.topics = topics;
    s.topics_count = 1;
    s.user_data = KP_BYTES_NULL;
    s.owned_partitions = &tp;
    s.owned_partitions_count = c->nowned > 0 ? 1 : 0;
    kp_writer_init(w, 64);
    kp_write_i16(w, 1);
    CU_ASSERT_EQUAL(kp_consumer_protocol_subscription_encode(w, 1, &s), 0);
    return (kp_bytes){w->buf, (int32_t)w->len};
}

static kp_bytes assignment_of(const int32_t *parts, int n, kp_writer *w)
{
    kp_consumer_protocol_assignment a;
    memset(&a, 0, sizeof(a));
    kp_consumer_protocol_assignment_topic_partition tp;
    kp_consumer_protocol_assignment_topic_partition_init(&tp);
    tp.topic = kp_str_c("t");
    tp.partitions = (int32_t *)parts;
    tp.partitions_count = n;
    a.assigned_partitions = &tp;
    a.assigned_partitions_count = n > 0 ? 1 : 0;
    a.user_data = KP_BYTES_NULL;
    kp_writer_init(w, 64);
    kp_write_i16(w, 1);
    CU_ASSERT_EQUAL(kp_consumer_protocol_assignment_encode(w, 1, &a), 0);
    return (kp_bytes){w->buf, (int32_t)w->len};
}

static void on_join(void *ctx, const srv_join_result *r)
{
    classic *c = ctx;
    c->joined++;
    c->join_error = r->error;
    if (r->member_id.len > 0)
        snprintf(c->id, sizeof(c->id), "%.*s", r->member_id.len, r->member_id.p);
    if (!r->error) {
        c->generation = r->generation;
        snprintf(c->protocol, sizeof(c->protocol), "%.*s",
                 r->protocol_name.len > 0 ? r->protocol_name.len : 0,
                 r->protocol_name.len > 0 ? r->protocol_name.p : "");
    }
}

/* Adopts the assignment of a SyncGroup answer as what c owns. */
static void on_sync(void *ctx, const srv_sync_result *r)
{
    classic *c = ctx;
    c->synced++;
    c->sync_error = r->error;
    if (r->error)
        return;
    c->nowned = 0;
    kp_reader rd;
    int16_t ver;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_consumer_protocol_assignment asg;
    memset(&asg, 0, sizeof(asg));
    kp_reader_init(&rd, r->assignment.p, (size_t)r->assignment.len);
    CU_ASSERT_EQUAL_FATAL(kp_read_i16(&rd, &ver), 0);
    CU_ASSERT_EQUAL_FATAL(kp_consumer_protocol_assignment_decode(&rd, &a, ver, &asg), 0);
    for (int32_t i = 0; i < asg.assigned_partitions_count; i++) {
        CU_ASSERT(kp_str_eq(asg.assigned_partitions[i].topic, "t"));
        for (int32_t j = 0; j < asg.assigned_partitions[i].partitions_count && c->nowned < NPARTS; j++)
            c->owned[c->nowned++] = asg.assigned_partitions[i].partitions[j];
    }
    kp_arena_reset(&a);
}

static void classic_join(srv_groups *gs, classic *c)
{
    kp_writer w;
    srv_join_protocol p = {kp_str_c("range"), subscription(c, &w)};
    srv_join_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.group_id = kp_str_c("g");
    rq.member_id = kp_str_c(c->id);
    rq.instance_id = KP_STR_NULL;
    rq.client_id = kp_str_c("classic");
    rq.client_host = kp_str_c("/127.0.0.1");
    rq.protocol_type = kp_str_c("consumer");
    rq.session_timeout_ms = 10000;
    rq.rebalance_timeout_ms = 20000;
    rq.nprotocols = 1;
    rq.protocols = &p;
    srv_group_join(gs, 0, &rq, on_join, c);
    kp_writer_free(&w);
}

static void classic_sync(srv_groups *gs, classic *c, int n, const srv_sync_assignment *as)
{
    srv_sync_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.group_id = kp_str_c("g");
    rq.generation = c->generation;
    rq.member_id = kp_str_c(c->id);
    rq.instance_id = KP_STR_NULL;
    rq.protocol_type = kp_str_c("consumer");
    rq.protocol_name = kp_str_c("range");
    rq.nassignments = n;
    rq.assignments = as;
    srv_group_sync(gs, &rq, on_sync, c);
}

static int16_t classic_heartbeat(srv_groups *gs, classic *c)
{
    return srv_group_heartbeat(gs, kp_str_c("g"), c->generation, kp_str_c(c->id), KP_STR_NULL);
}

/* Moves the clock until both joins are answered (the initial rebalance
 * delay, bounded). */
static void settle(srv_groups *gs, classic *c)
{
    for (int i = 0; i < 100 && (!c[0].joined || !c[1].joined); i++) {
        g_env.now_ms += 100;
        srv_groups_poll(gs);
    }
}

/* Two classic members in a Stable classic group "g": c[0] owns 0-2, c[1] 3-5. */
static void stable_classic_group(srv_groups *gs, classic *c)
{
    memset(c, 0, 2 * sizeof(*c));
    classic_join(gs, &c[0]);
    classic_join(gs, &c[1]);
    settle(gs, c);
    CU_ASSERT_EQUAL_FATAL(c[0].joined, 1);
    CU_ASSERT_EQUAL_FATAL(c[1].joined, 1);
    CU_ASSERT_EQUAL_FATAL(c[0].join_error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(c[0].generation, 1);
    static const int32_t lo[3] = {0, 1, 2}, hi[3] = {3, 4, 5};
    kp_writer w0, w1;
    srv_sync_assignment as[2] = {{kp_str_c(c[0].id), assignment_of(lo, 3, &w0)},
                                 {kp_str_c(c[1].id), assignment_of(hi, 3, &w1)}};
    classic_sync(gs, &c[1], 0, NULL);
    classic_sync(gs, &c[0], 2, as);
    kp_writer_free(&w0);
    kp_writer_free(&w1);
    CU_ASSERT_EQUAL_FATAL(c[0].synced, 1);
    CU_ASSERT_EQUAL_FATAL(c[1].synced, 1);
    CU_ASSERT_EQUAL(c[0].nowned, 3);
    CU_ASSERT_EQUAL(c[1].nowned, 3);
    srv_group *g = srv_groups_find(gs, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->state, SRV_GS_STABLE);
}

/* ---- the consumer-protocol side ------------------------------------------- */

typedef struct cons {
    char id[64];
    int32_t epoch;
    srv_tps owned;
    int16_t error;
    char message[200];
} cons;

static void on_hb(void *ctx, const srv_chb_result *r)
{
    cons *m = ctx;
    m->error = r->error;
    snprintf(m->message, sizeof(m->message), "%s", r->message ? r->message : "");
    if (r->error)
        return;
    snprintf(m->id, sizeof(m->id), "%.*s", r->member_id.len, r->member_id.p);
    m->epoch = r->member_epoch;
    if (r->assignment) {
        m->owned.n = 0;
        for (int i = 0; i < r->assignment->n; i++)
            srv_tps_add(&m->owned, r->assignment->v[i].topic, r->assignment->v[i].partition);
    }
}

static const kp_str subs_t[1] = {{"t", 1}};

static int16_t cons_heartbeat(srv_groups *gs, cons *m, int32_t epoch, const char *assignor)
{
    srv_chb_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.group_id = kp_str_c("g");
    rq.member_id = kp_str_c(m->id);
    rq.member_epoch = epoch;
    rq.instance_id = KP_STR_NULL;
    rq.rack_id = KP_STR_NULL;
    rq.client_id = kp_str_c("consumer");
    rq.client_host = kp_str_c("/127.0.0.1");
    rq.regex = KP_STR_NULL;
    rq.assignor = assignor ? kp_str_c(assignor) : KP_STR_NULL;
    rq.rebalance_timeout_ms = epoch == 0 ? 30000 : -1;
    rq.nsubs = epoch == 0 ? 1 : -1;
    rq.subs = subs_t;
    rq.nowned = epoch == 0 ? 0 : m->owned.n;
    rq.owned = m->owned.v;
    m->error = -1;
    srv_cgroup_heartbeat(gs, 0, &rq, on_hb, m);
    CU_ASSERT_NOT_EQUAL(m->error, -1);
    return m->error;
}

/* Every partition of t owned by exactly one of them. */
static void check_each_once(const classic *c, int nc, const cons *m)
{
    for (int32_t p = 0; p < NPARTS; p++) {
        int owners = m && srv_tps_has(&m->owned, topic_t, p);
        for (int i = 0; i < nc; i++)
            for (int k = 0; k < c[i].nowned; k++)
                owners += c[i].owned[k] == p;
        if (owners != 1)
            fprintf(stderr, "partition %d owned %d times\n", p, owners);
        CU_ASSERT_EQUAL(owners, 1);
    }
}

/* The classic members do what a Java classic consumer does when its
 * heartbeat says REBALANCE_IN_PROGRESS (eager: give up everything,
 * rejoin, sync); the consumer member heartbeats. Until nothing moves. */
static void converge(srv_groups *gs, classic *c, int nc, cons *m)
{
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < nc; i++) {
            int16_t e = classic_heartbeat(gs, &c[i]);
            if (e == KP_ERR_REBALANCE_IN_PROGRESS) {
                c[i].nowned = 0;
                c[i].joined = 0;
                classic_join(gs, &c[i]);
                CU_ASSERT_EQUAL(c[i].joined, 1);
                CU_ASSERT_EQUAL(c[i].join_error, KP_ERR_NONE);
                CU_ASSERT_STRING_EQUAL(c[i].protocol, "range");
                c[i].synced = 0;
                classic_sync(gs, &c[i], 0, NULL);
                CU_ASSERT_EQUAL(c[i].synced, 1);
                CU_ASSERT_EQUAL(c[i].sync_error, KP_ERR_NONE);
            } else {
                CU_ASSERT_EQUAL(e, KP_ERR_NONE);
            }
        }
        if (m)
            CU_ASSERT_EQUAL(cons_heartbeat(gs, m, m->epoch, NULL), KP_ERR_NONE);
    }
}

/* ---- tests ---------------------------------------------------------------- */

static void noop(void *ctx)
{
    (void)ctx;
}

static void test_upgrade_and_downgrade(void)
{
    reset_env();
    srv_groups_config cfg = base_cfg();
    srv_groups *gs = new_groups_cfg(&cfg);
    classic c[2];
    stable_classic_group(gs, c);

    /* A consumer-protocol member joins: the group is converted. */
    cons m;
    memset(&m, 0, sizeof(m));
    CU_ASSERT_EQUAL_FATAL(cons_heartbeat(gs, &m, 0, NULL), KP_ERR_NONE);
    srv_group *g = srv_groups_find(gs, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->cg);
    CU_ASSERT_EQUAL(g->cg->nmembers, 3);
    srv_cmember *cm = srv_cgroup_member(g->cg, kp_str_c(c[0].id));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cm);
    CU_ASSERT(srv_cmember_is_classic(cm));
    CU_ASSERT_EQUAL(cm->classic_session_ms, 10000);
    /* Its partitions stay with it until it gives them up: none for now. */
    CU_ASSERT_EQUAL(cm->epoch, 1);
    CU_ASSERT_EQUAL(cm->assigned.n, 3);
    CU_ASSERT_EQUAL(m.owned.n, 0);
    CU_ASSERT(g->cg->epoch > 1);
    /* The classic members learn of the rebalance from their heartbeat. */
    CU_ASSERT_EQUAL(classic_heartbeat(gs, &c[0]), KP_ERR_REBALANCE_IN_PROGRESS);
    /* A commit of the old generation still goes in (before revoking). */
    srv_commit_item it;
    memset(&it, 0, sizeof(it));
    it.topic = kp_str_c("t");
    it.offset = 7;
    it.leader_epoch = -1;
    it.metadata = KP_STR_NULL;
    it.expire_ts = -1;
    srv_group_commit(gs, 0, kp_str_c("g"), 1, kp_str_c(c[0].id), KP_STR_NULL, 8, 1, &it, noop, NULL);
    CU_ASSERT_EQUAL(it.error, KP_ERR_NONE);
    srv_group_commit(gs, 0, kp_str_c("g"), 99, kp_str_c(c[0].id), KP_STR_NULL, 8, 1, &it, noop, NULL);
    CU_ASSERT_EQUAL(it.error, KP_ERR_ILLEGAL_GENERATION);

    converge(gs, c, 2, &m);
    check_each_once(c, 2, &m);
    CU_ASSERT_EQUAL(m.owned.n, 2);
    CU_ASSERT_EQUAL(c[0].nowned + c[1].nowned, 4);
    CU_ASSERT_STRING_EQUAL(srv_cgroup_state_name(g->cg), "Stable");

    /* A restart keeps the converted group with its classic members. */
    srv_groups *gs2 = new_groups_cfg(&cfg);
    CU_ASSERT(fake_group_env_replay(&g_env, gs2) > 0);
    srv_group *g2 = srv_groups_find(gs2, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g2->cg);
    CU_ASSERT_EQUAL(g2->cg->nmembers, 3);
    srv_cmember *cm2 = srv_cgroup_member(g2->cg, kp_str_c(c[1].id));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cm2);
    CU_ASSERT(srv_cmember_is_classic(cm2));
    CU_ASSERT_EQUAL(cm2->epoch, c[1].generation);
    CU_ASSERT_EQUAL(classic_heartbeat(gs2, &c[1]), KP_ERR_NONE);
    srv_groups_free(gs2);

    /* The consumer-protocol member leaves: a classic group again, at the
     * group epoch, rebalancing. */
    int32_t epoch = g->cg->epoch;
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, -1, NULL), KP_ERR_NONE);
    CU_ASSERT_PTR_NULL_FATAL(g->cg);
    CU_ASSERT_EQUAL(g->nmembers, 2);
    CU_ASSERT_EQUAL(g->generation, epoch);
    CU_ASSERT_EQUAL(g->state, SRV_GS_PREPARING);
    CU_ASSERT_EQUAL(classic_heartbeat(gs, &c[0]), KP_ERR_REBALANCE_IN_PROGRESS);

    /* ... and after a restart too. */
    srv_groups *gs3 = new_groups_cfg(&cfg);
    CU_ASSERT(fake_group_env_replay(&g_env, gs3) > 0);
    srv_group *g3 = srv_groups_find(gs3, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g3);
    CU_ASSERT_PTR_NULL(g3->cg);
    CU_ASSERT_EQUAL(g3->nmembers, 2);
    CU_ASSERT_EQUAL(g3->generation, epoch);
    srv_groups_free(gs3);

    /* The classic members finish the rebalance among themselves. */
    c[0].joined = c[1].joined = 0;
    classic_join(gs, &c[0]);
    classic_join(gs, &c[1]);
    settle(gs, c);
    CU_ASSERT_EQUAL(c[0].joined, 1);
    CU_ASSERT_EQUAL(c[0].join_error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(c[0].generation, epoch + 1);
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
}

/* A join that converts the group and is then refused itself (here a
 * consumer-protocol join at epoch 0 under a classic member's id): the
 * conversion stays in memory, so its records must reach the log too. */
static void test_upgrade_then_refused(void)
{
    reset_env();
    srv_groups_config cfg = base_cfg();
    srv_groups *gs = new_groups_cfg(&cfg);
    classic c[2];
    stable_classic_group(gs, c);
    cons m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "%s", c[0].id);
    CU_ASSERT_NOT_EQUAL(cons_heartbeat(gs, &m, 0, NULL), KP_ERR_NONE);
    srv_group *g = srv_groups_find(gs, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    srv_groups *gs2 = new_groups_cfg(&cfg);
    CU_ASSERT(fake_group_env_replay(&g_env, gs2) > 0);
    srv_group *g2 = srv_groups_find(gs2, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g2);
    CU_ASSERT_EQUAL(g2->cg != NULL, g->cg != NULL);
    if (g->cg && g2->cg)
        CU_ASSERT_EQUAL(g2->cg->nmembers, g->cg->nmembers);
    srv_groups_free(gs2);
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
}

static void test_policy(void)
{
    static const int refused_up[] = {SRV_GMIG_DISABLED, SRV_GMIG_DOWNGRADE};
    for (int i = 0; i < 2; i++) {
        reset_env();
        srv_groups_config cfg = base_cfg();
        cfg.migration_policy = refused_up[i];
        srv_groups *gs = new_groups_cfg(&cfg);
        classic c[2];
        stable_classic_group(gs, c);
        cons m;
        memset(&m, 0, sizeof(m));
        CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, 0, NULL), KP_ERR_GROUP_ID_NOT_FOUND);
        if (refused_up[i] == SRV_GMIG_DISABLED)
            CU_ASSERT_STRING_EQUAL(m.message,
                                   "Cannot upgrade classic group g to consumer group because online "
                                   "upgrade is disabled.");
        CU_ASSERT_PTR_NULL(srv_groups_find(gs, kp_str_c("g"))->cg);
        CU_ASSERT_EQUAL(classic_heartbeat(gs, &c[0]), KP_ERR_NONE);
        srv_groups_free(gs);
    }
    /* Disabled: a consumer group takes no classic member. */
    reset_env();
    srv_groups_config dis = base_cfg();
    dis.migration_policy = SRV_GMIG_DISABLED;
    srv_groups *gd = new_groups_cfg(&dis);
    cons d;
    memset(&d, 0, sizeof(d));
    CU_ASSERT_EQUAL(cons_heartbeat(gd, &d, 0, NULL), KP_ERR_NONE);
    classic k;
    memset(&k, 0, sizeof(k));
    classic_join(gd, &k);
    CU_ASSERT_EQUAL(k.joined, 1);
    CU_ASSERT_EQUAL(k.join_error, KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    srv_tps_free(&d.owned);
    srv_groups_free(gd);
    /* Upgrade only: the group stays a consumer group when the consumer
     * member leaves; its classic members go on in it. */
    reset_env();
    srv_groups_config cfg = base_cfg();
    cfg.migration_policy = SRV_GMIG_UPGRADE;
    srv_groups *gs = new_groups_cfg(&cfg);
    classic c[2];
    stable_classic_group(gs, c);
    cons m;
    memset(&m, 0, sizeof(m));
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, 0, NULL), KP_ERR_NONE);
    converge(gs, c, 2, &m);
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, -1, NULL), KP_ERR_NONE);
    srv_group *g = srv_groups_find(gs, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->cg);
    CU_ASSERT_EQUAL(g->cg->nmembers, 2);
    converge(gs, c, 2, NULL);
    check_each_once(c, 2, NULL);
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
}

static void test_max_size(void)
{
    reset_env();
    srv_groups_config cfg = base_cfg();
    cfg.consumer_max_size = 2;
    srv_groups *gs = new_groups_cfg(&cfg);
    classic c[2];
    stable_classic_group(gs, c);
    /* Upgrading would make three members: refused, the group unchanged. */
    cons m;
    memset(&m, 0, sizeof(m));
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, 0, NULL), KP_ERR_GROUP_MAX_SIZE_REACHED);
    CU_ASSERT_STRING_EQUAL(m.message, "The consumer group has reached its maximum capacity of 2 members.");
    CU_ASSERT_PTR_NULL(srv_groups_find(gs, kp_str_c("g"))->cg);
    srv_groups_free(gs);

    /* A consumer group at its capacity: a third member of either protocol
     * is refused, members already in go on. */
    reset_env();
    gs = new_groups_cfg(&cfg);
    cons a, b, x;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&x, 0, sizeof(x));
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &a, 0, NULL), KP_ERR_NONE);
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &b, 0, NULL), KP_ERR_NONE);
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &x, 0, NULL), KP_ERR_GROUP_MAX_SIZE_REACHED);
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &a, a.epoch, NULL), KP_ERR_NONE);
    classic k;
    memset(&k, 0, sizeof(k));
    classic_join(gs, &k);
    CU_ASSERT_EQUAL(k.joined, 1);
    CU_ASSERT_EQUAL(k.join_error, KP_ERR_GROUP_MAX_SIZE_REACHED);
    srv_tps_free(&a.owned);
    srv_tps_free(&b.owned);
    srv_groups_free(gs);
}

static void test_assignors(void)
{
    reset_env();
    srv_groups_config cfg = base_cfg();
    cfg.nassignors = 1;
    cfg.assignors[0] = SRV_ASSIGNOR_RANGE;
    srv_groups *gs = new_groups_cfg(&cfg);
    cons m;
    memset(&m, 0, sizeof(m));
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, 0, "uniform"), KP_ERR_UNSUPPORTED_ASSIGNOR);
    CU_ASSERT_STRING_EQUAL(m.message, "ServerAssignor uniform is not supported. Supported assignors: range.");
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, 0, NULL), KP_ERR_NONE);
    /* Without a choice, the first configured assignor runs. */
    CU_ASSERT(kp_str_eq(srv_cgroup_assignor(srv_groups_find(gs, kp_str_c("g"))->cg), "range"));
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
    /* The config's list: names or Kafka's class names, in order. */
    int8_t out[SRV_ASSIGNORS_MAX];
    CU_ASSERT_EQUAL(
        srv_config_assignors("org.apache.kafka.coordinator.group.assignor.RangeAssignor, uniform", out), 2);
    CU_ASSERT_EQUAL(out[0], SRV_ASSIGNOR_RANGE);
    CU_ASSERT_EQUAL(out[1], SRV_ASSIGNOR_UNIFORM);
    CU_ASSERT_EQUAL(srv_config_migration_policy("DISABLED"), SRV_GMIG_DISABLED);
    CU_ASSERT_EQUAL(srv_config_migration_policy("bidirectional"), SRV_GMIG_BIDIRECTIONAL);
}

/* A member subscribing with a regex only. */
static int16_t regex_join(srv_groups *gs, cons *m, const char *regex)
{
    srv_chb_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.group_id = kp_str_c("g");
    rq.member_id = kp_str_c(m->id);
    rq.member_epoch = 0;
    rq.instance_id = KP_STR_NULL;
    rq.rack_id = KP_STR_NULL;
    rq.client_id = kp_str_c("consumer");
    rq.client_host = kp_str_c("/127.0.0.1");
    rq.regex = kp_str_c(regex);
    rq.assignor = KP_STR_NULL;
    rq.rebalance_timeout_ms = 30000;
    rq.nsubs = -1;
    rq.principal = kp_str_c("User:ANONYMOUS");
    rq.host = kp_str_c("127.0.0.1");
    rq.nowned = 0;
    m->error = -1;
    srv_cgroup_heartbeat(gs, 0, &rq, on_hb, m);
    return m->error;
}

static const srv_cregex *replayed_regex(const srv_groups_config *cfg, srv_groups **out)
{
    *out = new_groups_cfg(cfg);
    CU_ASSERT(fake_group_env_replay(&g_env, *out) > 0);
    srv_group *g = srv_groups_find(*out, kp_str_c("g"));
    if (!g || !g->cg)
        return NULL;
    CU_ASSERT(g->cg->nregexes <= 1);
    return g->cg->nregexes == 1 ? &g->cg->regexes[0] : NULL;
}

/* ConsumerGroupRegularExpression records: written when a resolution
 * changes, replayed, tombstoned when no member uses the regex any more. */
static void test_regex_records(void)
{
    reset_env();
    g_env.version = 1;
    g_env.ntopics = 2;
    g_env.topics[1] = (fake_group_topic){"u", {{7, 7, 7, 7, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}, 2};
    srv_groups_config cfg = base_cfg();
    srv_groups *gs = new_groups_cfg(&cfg);
    cons m;
    memset(&m, 0, sizeof(m));
    CU_ASSERT_EQUAL_FATAL(regex_join(gs, &m, "t|x"), KP_ERR_NONE);
    srv_groups *r1;
    const srv_cregex *r = replayed_regex(&cfg, &r1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(r->regex, "t|x");
    CU_ASSERT_EQUAL_FATAL(r->ntopics, 1);
    CU_ASSERT_STRING_EQUAL(r->topics[0], "t");
    srv_groups_free(r1);

    /* A matching topic created: the resolution and its record change. */
    g_env.topics[1].name = "x";
    g_env.version = 2;
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, m.epoch, NULL), KP_ERR_NONE);
    r = replayed_regex(&cfg, &r1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->ntopics, 2);
    srv_groups_free(r1);

    /* The only member using it leaves: tombstoned. */
    CU_ASSERT_EQUAL(cons_heartbeat(gs, &m, -1, NULL), KP_ERR_NONE);
    r = replayed_regex(&cfg, &r1);
    CU_ASSERT_PTR_NULL(r);
    srv_groups_free(r1);
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("group_migration", NULL, NULL);
    CU_add_test(s, "upgrade, classic members in a consumer group, downgrade, replay",
                test_upgrade_and_downgrade);
    CU_add_test(s, "a join refused after it converted the group", test_upgrade_then_refused);
    CU_add_test(s, "group.consumer.migration.policy", test_policy);
    CU_add_test(s, "group.consumer.max.size", test_max_size);
    CU_add_test(s, "group.consumer.assignors", test_assignors);
    CU_add_test(s, "ConsumerGroupRegularExpression records", test_regex_records);
}

static void free_log(void)
{
    fake_group_env_clear_log(&g_env);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites, .teardown = free_log};

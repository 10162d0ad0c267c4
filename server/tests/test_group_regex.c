/*
 * test_group_regex.c — unit tests of KIP-848 regex subscriptions in the
 * consumer groups (server/group/consumer.c) over the fake group environment:
 * a regex resolved against the topics as whole names, re-resolved when the
 * metadata version moves (a topic created or deleted) with the group epoch
 * bumped, names and a regex together, a regex member leaving, the DESCRIBE
 * filter with the heartbeat's principal, Kafka's refusal of an invalid regex
 * and of a join with neither, and the regex kept in the member's record
 * across a replay.
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

#define ID(n)                                                                                                \
    {                                                                                                        \
        {                                                                                                    \
            n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1                                                   \
        }                                                                                                    \
    }
static const kp_uuid eu = ID(1), us = ID(2), other = ID(3), asia = ID(4);

static fake_group_env g_env;

static void reset_env(void)
{
    fake_group_env_clear_log(&g_env);
    memset(&g_env, 0, sizeof(g_env));
    g_env.now_ms = 1000000;
    g_env.version = 10;
    g_env.ntopics = 3;
    g_env.topics[0] = (fake_group_topic){"orders-eu", ID(1), 2};
    g_env.topics[1] = (fake_group_topic){"orders-us", ID(2), 1};
    g_env.topics[2] = (fake_group_topic){"other", ID(3), 1};
}

static srv_groups *new_groups(void)
{
    srv_groups_config cfg = {6000, 300000, 0, 1000, 7LL * 24 * 3600 * 1000, 3000, 45000, 0, 0, 0, {0}};
    return fake_group_env_groups(&g_env, &cfg);
}

typedef struct hb_out {
    int called;
    int16_t error;
    char message[1200];
    char member_id[64];
    int32_t epoch;
    int has_assignment;
    srv_tps assignment;
} hb_out;

static void on_hb(void *ctx, const srv_chb_result *r)
{
    hb_out *o = ctx;
    o->called++;
    o->error = r->error;
    snprintf(o->message, sizeof(o->message), "%s", r->message ? r->message : "");
    snprintf(o->member_id, sizeof(o->member_id), "%.*s", r->member_id.len > 0 ? r->member_id.len : 0,
             r->member_id.len > 0 ? r->member_id.p : "");
    o->epoch = r->member_epoch;
    o->has_assignment = r->assignment != NULL;
    o->assignment.n = 0;
    for (int i = 0; r->assignment && i < r->assignment->n; i++)
        srv_tps_add(&o->assignment, r->assignment->v[i].topic, r->assignment->v[i].partition);
}

typedef struct member {
    char id[64];
    int32_t epoch;
    const char *regex; /* sent when joining (NULL: none) */
    const char *name;  /* one topic name sent when joining (NULL: no names) */
    const char *principal;
    srv_tps owned;
} member;

/* One heartbeat; the subscription goes with the join only, as the Java
 * client sends it (null: unchanged afterwards). */
static hb_out beat(srv_groups *gs, member *m)
{
    kp_str names[1];
    srv_chb_req rq = {0};
    rq.group_id = kp_str_c("g");
    rq.member_id = kp_str_c(m->id);
    rq.member_epoch = m->epoch;
    rq.instance_id = KP_STR_NULL;
    rq.rack_id = KP_STR_NULL;
    rq.client_id = kp_str_c("cli");
    rq.client_host = kp_str_c("/127.0.0.1");
    rq.assignor = KP_STR_NULL;
    rq.principal = kp_str_c(m->principal ? m->principal : "User:alice");
    rq.host = kp_str_c("127.0.0.1");
    int join = m->epoch == 0;
    rq.rebalance_timeout_ms = join ? 30000 : -1;
    rq.regex = join && m->regex ? kp_str_c(m->regex) : KP_STR_NULL;
    rq.nsubs = join && m->name ? 1 : -1;
    if (m->name)
        names[0] = kp_str_c(m->name);
    rq.subs = names;
    rq.nowned = join ? 0 : m->owned.n;
    rq.owned = m->owned.v;
    hb_out o;
    memset(&o, 0, sizeof(o));
    srv_cgroup_heartbeat(gs, 0, &rq, on_hb, &o);
    CU_ASSERT_EQUAL(o.called, 1);
    if (o.error == KP_ERR_NONE) {
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

static void beats(srv_groups *gs, member *m, int n)
{
    for (int i = 0; i < n; i++) {
        hb_out o = beat(gs, m);
        CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
        srv_tps_free(&o.assignment);
    }
}

/* Partitions of topic t that m owns. */
static int owned_of(const member *m, kp_uuid t)
{
    int n = 0;
    for (int i = 0; i < m->owned.n; i++)
        n += memcmp(m->owned.v[i].topic.b, t.b, 16) == 0;
    return n;
}

static int32_t group_epoch(srv_groups *gs)
{
    srv_group *g = srv_groups_find(gs, kp_str_c("g"));
    return g && g->cg ? g->cg->epoch : -1;
}

static void test_regex_resolves_whole_names(void)
{
    reset_env();
    srv_groups *gs = new_groups();
    member m = {.regex = "orders-(eu|us)"};
    g_env.topics[2].name = "orders-eux"; /* contains a match, is none */
    beats(gs, &m, 2);
    CU_ASSERT_EQUAL(owned_of(&m, eu), 2);
    CU_ASSERT_EQUAL(owned_of(&m, us), 1);
    CU_ASSERT_EQUAL(owned_of(&m, other), 0);
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
}

static void test_created_and_deleted_topics(void)
{
    reset_env();
    srv_groups *gs = new_groups();
    member m = {.regex = "orders-.*"};
    beats(gs, &m, 2);
    CU_ASSERT_EQUAL(m.owned.n, 3);
    int32_t e = group_epoch(gs);

    /* Same metadata version: nothing resolved again, nothing bumped. */
    beats(gs, &m, 1);
    CU_ASSERT_EQUAL(group_epoch(gs), e);

    /* A topic created: the next heartbeat sees a new version, resolves the
     * regex again and the member gets the topic without asking. */
    g_env.topics[3] = (fake_group_topic){"orders-asia", ID(4), 3};
    g_env.ntopics = 4;
    g_env.version++;
    beats(gs, &m, 2);
    CU_ASSERT(group_epoch(gs) > e);
    CU_ASSERT_EQUAL(owned_of(&m, asia), 3);
    CU_ASSERT_EQUAL(m.owned.n, 6);

    /* Deleted: taken away. */
    g_env.topics[0] = g_env.topics[3];
    g_env.ntopics = 3;
    g_env.version++;
    beats(gs, &m, 3);
    CU_ASSERT_EQUAL(owned_of(&m, eu), 0);
    CU_ASSERT_EQUAL(m.owned.n, 4);
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
}

/* Two members: one by name, one by regex; the regex's topics also go to
 * the name subscriber only where it subscribed. */
static void test_names_and_regexes(void)
{
    reset_env();
    srv_groups *gs = new_groups();
    member a = {.name = "other"}, b = {.regex = "orders-eu"}, c = {.name = "orders-us", .regex = "other"};
    for (int r = 0; r < 4; r++) {
        beats(gs, &a, 1);
        beats(gs, &b, 1);
        beats(gs, &c, 1);
    }
    CU_ASSERT_EQUAL(owned_of(&b, eu), 2);
    CU_ASSERT_EQUAL(owned_of(&a, eu) + owned_of(&c, eu), 0);
    CU_ASSERT_EQUAL(owned_of(&c, us), 1);
    CU_ASSERT_EQUAL(owned_of(&a, other) + owned_of(&c, other), 1);
    CU_ASSERT_EQUAL(owned_of(&b, other) + owned_of(&b, us), 0);
    srv_tps_free(&a.owned);
    srv_tps_free(&b.owned);
    srv_tps_free(&c.owned);
    srv_groups_free(gs);
}

/* A regex member leaves: its regex's topics leave the group's subscription
 * metadata with it, not only at the next heartbeat. */
static void test_leaving_regex_member(void)
{
    reset_env();
    srv_groups *gs = new_groups();
    member a = {.name = "other"}, b = {.regex = "orders-.*"};
    for (int r = 0; r < 3; r++) {
        beats(gs, &a, 1);
        beats(gs, &b, 1);
    }
    srv_group *g = srv_groups_find(gs, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->cg->ntopics, 3);
    b.epoch = SRV_CEPOCH_LEAVE;
    hb_out o = beat(gs, &b);
    CU_ASSERT_EQUAL(o.error, KP_ERR_NONE);
    srv_tps_free(&o.assignment);
    CU_ASSERT_EQUAL(g->cg->nmembers, 1);
    CU_ASSERT_EQUAL_FATAL(g->cg->ntopics, 1);
    CU_ASSERT_STRING_EQUAL(g->cg->topics[0].name, "other");
    srv_tps_free(&a.owned);
    srv_tps_free(&b.owned);
    srv_groups_free(gs);
}

/* Only topics the heartbeat's principal may DESCRIBE are assigned. */
static void test_describe_filter(void)
{
    reset_env();
    g_env.denied_principal = "User:bob";
    g_env.denied_topic = "orders-us";
    srv_groups *gs = new_groups();
    member m = {.regex = "orders-.*", .principal = "User:bob"};
    beats(gs, &m, 2);
    CU_ASSERT_EQUAL(owned_of(&m, eu), 2);
    CU_ASSERT_EQUAL(owned_of(&m, us), 0);
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
}

static void test_invalid_requests(void)
{
    reset_env();
    srv_groups *gs = new_groups();
    member m = {.regex = "a(?=b)"};
    hb_out o = beat(gs, &m);
    CU_ASSERT_EQUAL(o.error, KP_ERR_INVALID_REGULAR_EXPRESSION);
    CU_ASSERT_STRING_EQUAL(o.message,
                           "SubscribedTopicRegex `a(?=b)` is not a valid regular expression: invalid or "
                           "unsupported Perl syntax.");
    CU_ASSERT_PTR_NULL(srv_groups_find(gs, kp_str_c("g")));
    srv_tps_free(&o.assignment);
    member none = {0};
    o = beat(gs, &none);
    CU_ASSERT_EQUAL(o.error, KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(
        o.message, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.");
    srv_tps_free(&o.assignment);
    srv_groups_free(gs);
}

/* The member's record carries its regex: after a replay the member is
 * still a regex subscriber and keeps its partitions. */
static void test_replay(void)
{
    reset_env();
    g_env.keep_log = 1;
    srv_groups *gs = new_groups();
    member m = {.regex = "orders-.*"};
    beats(gs, &m, 2);
    CU_ASSERT_EQUAL(m.owned.n, 3);
    srv_groups_free(gs);
    gs = new_groups();
    CU_ASSERT(fake_group_env_replay(&g_env, gs) > 0);
    srv_group *g = srv_groups_find(gs, kp_str_c("g"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->cg);
    CU_ASSERT_EQUAL_FATAL(g->cg->nmembers, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->cg->members[0]->regex);
    CU_ASSERT_STRING_EQUAL(g->cg->members[0]->regex, "orders-.*");
    beats(gs, &m, 2);
    CU_ASSERT_EQUAL(m.owned.n, 3);
    srv_tps_free(&m.owned);
    srv_groups_free(gs);
    fake_group_env_clear_log(&g_env);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("group_regex", NULL, NULL);
    CU_add_test(s, "regex_resolves_whole_names", test_regex_resolves_whole_names);
    CU_add_test(s, "created_and_deleted_topics", test_created_and_deleted_topics);
    CU_add_test(s, "names_and_regexes", test_names_and_regexes);
    CU_add_test(s, "leaving_regex_member", test_leaving_regex_member);
    CU_add_test(s, "describe_filter", test_describe_filter);
    CU_add_test(s, "invalid_requests", test_invalid_requests);
    CU_add_test(s, "replay", test_replay);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};

/*
 * test_share_assign.c — unit tests of share_group.c's simple assignor
 * (KIP-932's rules as Kafka 4.4 applies them), of the share-group admin
 * operations (offsets altered and deleted, groups deleted, only when empty)
 * and of the groups' dynamic configs (by_duration included), with a fake clock and fake topics.
 *
 * Owns: the share groups it builds. Must not: start a broker, read a real
 * clock, or touch the network or the disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "kb_test.h"
#include "share_group.h"
#include "share_partition.h"

static const kp_uuid T1 = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
static const kp_uuid T2 = {{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}};
static int32_t t1_parts = 4, t2_parts = 2;

/* Topics "a" (T1, t1_parts partitions) and "b" (T2, t2_parts). */
static int fake_topic(void *arg, kp_str name, kp_uuid *id, int32_t *nparts)
{
    (void)arg;
    if (name.len != 1)
        return 0;
    if (name.p[0] == 'a') {
        *id = T1;
        *nparts = t1_parts;
        return 1;
    }
    if (name.p[0] == 'b') {
        *id = T2;
        *nparts = t2_parts;
        return 1;
    }
    return 0;
}

static const srv_share_cfg CFG = {.heartbeat_ms = 100,
                                  .session_ms = 500,
                                  .lock_ms = 1000,
                                  .max_delivery = 3,
                                  .max_locks = 100,
                                  .max_size = 50,
                                  .auto_reset_earliest = 0};

static kp_arena A;

/* A heartbeat of `member` (epoch 0 joins with subs "a", "b" or "ab"). */
static srv_shb_result hb(srv_share_groups *sg, const char *member, int32_t epoch, const char *subs,
                         int64_t now)
{
    kp_str s[2];
    int n = 0;
    for (const char *c = subs; c && *c; c++)
        s[n++] = (kp_str){c, 1};
    srv_shb_req rq = {.group_id = kp_str_c("g"),
                      .member_id = kp_str_c(member),
                      .rack_id = KP_STR_NULL,
                      .client_id = kp_str_c("c"),
                      .client_host = kp_str_c("/h"),
                      .member_epoch = epoch,
                      .nsubs = subs ? n : -1,
                      .subs = s};
    srv_shb_result r;
    srv_share_heartbeat(sg, &rq, now, fake_topic, NULL, &A, &r);
    return r;
}

/* How many members hold (topic, partition), and each member's count. */
static int holders(srv_share_groups *sg, char names[][8], int nm, const kp_uuid *topic, int32_t part)
{
    int h = 0;
    for (int i = 0; i < nm; i++) {
        int n;
        const srv_share_tp *v = srv_share_assigned(sg, kp_str_c("g"), kp_str_c(names[i]), &n);
        for (int k = 0; k < n; k++)
            h += v[k].partition == part && memcmp(v[k].topic.b, topic->b, 16) == 0;
    }
    return h;
}

static int count_of(srv_share_groups *sg, const char *member)
{
    int n;
    srv_share_assigned(sg, kp_str_c("g"), kp_str_c(member), &n);
    return n;
}

static int holds(srv_share_groups *sg, const char *member, const kp_uuid *topic, int32_t part)
{
    int n;
    const srv_share_tp *v = srv_share_assigned(sg, kp_str_c("g"), kp_str_c(member), &n);
    for (int k = 0; k < n; k++)
        if (v[k].partition == part && memcmp(v[k].topic.b, topic->b, 16) == 0)
            return 1;
    return 0;
}

static void test_two_members_split(void)
{
    t1_parts = 4;
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    srv_shb_result r = hb(sg, "m1", 0, "a", 0);
    CU_ASSERT_EQUAL(r.nassigned, 4); /* alone: everything */
    r = hb(sg, "m2", 0, "a", 1);
    CU_ASSERT_EQUAL(r.error, 0);
    CU_ASSERT_EQUAL(r.nassigned, 2);
    /* m1 learns its smaller share at its next heartbeat (a new epoch). */
    r = hb(sg, "m1", 1, NULL, 2);
    CU_ASSERT_EQUAL(r.nassigned, 2);
    CU_ASSERT_EQUAL(r.member_epoch, 2);
    char names[][8] = {"m1", "m2"};
    for (int32_t p = 0; p < 4; p++)
        CU_ASSERT_EQUAL(holders(sg, names, 2, &T1, p), 1); /* disjoint, and every partition covered */
    /* Stickiness: m1 kept two of the four it had; nothing moves on a quiet heartbeat. */
    int before[4];
    for (int32_t p = 0; p < 4; p++)
        before[p] = holds(sg, "m1", &T1, p);
    r = hb(sg, "m2", 2, NULL, 3);
    CU_ASSERT_EQUAL(r.nassigned, -1);
    for (int32_t p = 0; p < 4; p++)
        CU_ASSERT_EQUAL(holds(sg, "m1", &T1, p), before[p]);
    /* m2 leaves: m1 gets everything again, at its next heartbeat. */
    CU_ASSERT_EQUAL(hb(sg, "m2", -1, NULL, 4).member_epoch, -1);
    r = hb(sg, "m1", 2, NULL, 5);
    CU_ASSERT_EQUAL(r.nassigned, 4);
    srv_share_groups_free(sg);
    kp_arena_reset(&A);
}

static void test_members_outnumber_partitions(void)
{
    t1_parts = 2;
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    char names[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(names[i], sizeof(names[i]), "m%d", i);
        CU_ASSERT_EQUAL(hb(sg, names[i], 0, "a", i).error, 0);
    }
    /* Five members, two partitions: each partition shared by ceil(5/2) = 3
     * members, member sizes 2/1/1/1/1 (differ by at most one). */
    CU_ASSERT_EQUAL(holders(sg, names, 5, &T1, 0), 3);
    CU_ASSERT_EQUAL(holders(sg, names, 5, &T1, 1), 3);
    int lo = 99, hi = 0, sum = 0;
    for (int i = 0; i < 5; i++) {
        int n = count_of(sg, names[i]);
        lo = n < lo ? n : lo;
        hi = n > hi ? n : hi;
        sum += n;
    }
    CU_ASSERT_TRUE(lo >= 1);
    CU_ASSERT_TRUE(hi - lo <= 1);
    CU_ASSERT_EQUAL(sum, 6);
    srv_share_groups_free(sg);
    kp_arena_reset(&A);
}

static void test_heterogeneous_and_growth(void)
{
    t1_parts = 2;
    t2_parts = 2;
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    CU_ASSERT_EQUAL(hb(sg, "m1", 0, "a", 0).error, 0);
    CU_ASSERT_EQUAL(hb(sg, "m2", 0, "ab", 1).error, 0);
    /* b goes to its only subscriber; a is spread over both. */
    CU_ASSERT_TRUE(holds(sg, "m2", &T2, 0) && holds(sg, "m2", &T2, 1));
    CU_ASSERT_FALSE(holds(sg, "m1", &T2, 0) || holds(sg, "m1", &T2, 1));
    char names[][8] = {"m1", "m2"};
    CU_ASSERT_EQUAL(holders(sg, names, 2, &T1, 0), 1);
    CU_ASSERT_EQUAL(holders(sg, names, 2, &T1, 1), 1);
    CU_ASSERT_EQUAL(count_of(sg, "m1"), 2); /* the least loaded takes a's partitions */
    /* a grows to 4 partitions, first seen by a describe: the group epoch
     * moves, so m1's next heartbeat carries its new assignment. */
    t1_parts = 4;
    srv_shd_group d;
    srv_share_describe(sg, kp_str_c("g"), 2, fake_topic, NULL, &A, &d);
    CU_ASSERT_EQUAL(d.error, 0);
    CU_ASSERT_EQUAL(d.epoch, 3);
    srv_shb_result r = hb(sg, "m1", 1, NULL, 2);
    CU_ASSERT_EQUAL(r.error, 0);
    CU_ASSERT_TRUE(r.nassigned >= 2);
    for (int32_t p = 0; p < 4; p++)
        CU_ASSERT_EQUAL(holders(sg, names, 2, &T1, p), 1);
    srv_share_groups_free(sg);
    kp_arena_reset(&A);
    t1_parts = 4;
}

static void test_admin_offsets_and_delete(void)
{
    t1_parts = 4;
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    kp_str g = kp_str_c("g");
    srv_share_tp tp = {T1, 1};
    /* Unknown: altering creates the group, as Kafka does; deleting refuses. */
    CU_ASSERT_EQUAL(srv_share_delete_group(sg, g, 0), KP_ERR_GROUP_ID_NOT_FOUND);
    CU_ASSERT_EQUAL(srv_share_check_empty(sg, g, 0), KP_ERR_GROUP_ID_NOT_FOUND);
    CU_ASSERT_EQUAL(srv_share_alter_offset(sg, g, &tp, 7), 0);
    CU_ASSERT_TRUE(srv_share_exists(sg, g));
    srv_share_off o = {.tp = tp};
    srv_share_offset_of(sg, g, &o);
    CU_ASSERT_EQUAL(o.start, 7);
    srv_share_off *all;
    CU_ASSERT_EQUAL(srv_share_offsets_all(sg, g, 0, &A, &all), 1);
    /* A member: not empty any more. */
    CU_ASSERT_EQUAL(hb(sg, "m1", 0, "a", 0).error, 0);
    CU_ASSERT_EQUAL(srv_share_check_empty(sg, g, 1), KP_ERR_NON_EMPTY_GROUP);
    CU_ASSERT_EQUAL(srv_share_delete_group(sg, g, 1), KP_ERR_NON_EMPTY_GROUP);
    /* Its session expires (500): empty again, offsets deleted per topic. */
    CU_ASSERT_EQUAL(srv_share_check_empty(sg, g, 600), 0);
    srv_share_delete_topic(sg, g, &T1);
    srv_share_offset_of(sg, g, &o);
    CU_ASSERT_EQUAL(o.start, -1);
    CU_ASSERT_EQUAL(srv_share_offsets_all(sg, g, 600, &A, &all), 0);
    /* A negative start forgets the state. */
    CU_ASSERT_EQUAL(srv_share_alter_offset(sg, g, &tp, 3), 0);
    CU_ASSERT_EQUAL(srv_share_alter_offset(sg, g, &tp, -1), 0);
    srv_share_offset_of(sg, g, &o);
    CU_ASSERT_EQUAL(o.start, -1);
    CU_ASSERT_EQUAL(srv_share_delete_group(sg, g, 600), 0);
    CU_ASSERT_FALSE(srv_share_exists(sg, g));
    srv_share_groups_free(sg);
    kp_arena_reset(&A);
}

static void test_group_configs(void)
{
    t1_parts = 4;
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    kp_str g = kp_str_c("g");
    CU_ASSERT_EQUAL(srv_share_lock_ms(sg, g), 1000);
    srv_share_gconf c;
    srv_share_gconf_get(sg, g, &c);
    CU_ASSERT_FALSE(c.set[SRV_SGK_LOCK_MS]);
    c.set[SRV_SGK_LOCK_MS] = 1, c.val[SRV_SGK_LOCK_MS] = 2500;
    c.set[SRV_SGK_HEARTBEAT_MS] = 1, c.val[SRV_SGK_HEARTBEAT_MS] = 7000;
    c.set[SRV_SGK_SESSION_MS] = 1, c.val[SRV_SGK_SESSION_MS] = 50000;
    CU_ASSERT_EQUAL(srv_share_gconf_put(sg, g, &c), 0);
    CU_ASSERT_EQUAL(srv_share_lock_ms(sg, g), 2500);
    CU_ASSERT_EQUAL(srv_share_lock_ms(sg, kp_str_c("other")), 1000);
    srv_shb_result r = hb(sg, "m1", 0, "a", 0);
    CU_ASSERT_EQUAL(r.heartbeat_ms, 7000);
    /* The group's session timeout (50 s), not the broker's (500 ms). */
    CU_ASSERT_EQUAL(srv_share_check_empty(sg, g, 10000), KP_ERR_NON_EMPTY_GROUP);
    CU_ASSERT_EQUAL(srv_share_check_empty(sg, g, 50001), 0);
    /* A share-partition created now takes the group's lock duration. */
    srv_share_tp tp = {T1, 0};
    CU_ASSERT_EQUAL(srv_share_alter_offset(sg, g, &tp, 0), 0);
    const srv_share_part *sp = srv_share_part_of(sg, g, &tp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
    CU_ASSERT_EQUAL(sp->lock_ms, 2500);
    /* Changed later: applied to the existing share-partition too. */
    c.val[SRV_SGK_LOCK_MS] = 4000;
    CU_ASSERT_EQUAL(srv_share_gconf_put(sg, g, &c), 0);
    CU_ASSERT_EQUAL(sp->lock_ms, 4000);
    /* A share-partition restored at start takes the group's configs (put back first). */
    c.set[SRV_SGK_DELIVERY_LIMIT] = 1, c.val[SRV_SGK_DELIVERY_LIMIT] = 7;
    CU_ASSERT_EQUAL(srv_share_gconf_put(sg, g, &c), 0);
    srv_share_tp tp1 = {T1, 1};
    srv_sp_run run = {5, 6, 0, 2};
    CU_ASSERT_EQUAL(srv_share_restore(sg, g, &tp1, 5, &run, 1), 0);
    const srv_share_part *rp = srv_share_part_of(sg, g, &tp1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rp);
    CU_ASSERT_EQUAL(rp->lock_ms, 4000);
    CU_ASSERT_EQUAL(rp->max_delivery, 7);
    srv_share_groups_free(sg);
    kp_arena_reset(&A);
}

/* share.auto.offset.reset's values as Kafka's GroupConfig takes them. */
static void test_reset_values(void)
{
    static const struct {
        const char *v;
        int ok, mode;
        int64_t ms;
    } cases[] = {
        {"earliest", 1, SRV_SHARE_RESET_EARLIEST, 0},
        {"latest", 1, SRV_SHARE_RESET_LATEST, 0},
        {"by_duration:P1D", 1, SRV_SHARE_RESET_BY_DURATION, 86400000},
        {"by_duration:PT1H30M", 1, SRV_SHARE_RESET_BY_DURATION, 5400000},
        {"by_duration:pt0.5s", 1, SRV_SHARE_RESET_BY_DURATION, 500},
        {"by_duration:P1DT2H3M4.005S", 1, SRV_SHARE_RESET_BY_DURATION, 93784005},
        {"by_duration:+PT1M", 1, SRV_SHARE_RESET_BY_DURATION, 60000},
        {"by_duration:PT1H-30M", 1, SRV_SHARE_RESET_BY_DURATION, 1800000},
        {"by_duration:P0D", 1, SRV_SHARE_RESET_BY_DURATION, 0},
        {"by_duration:-P1D", 0, 0, 0}, /* negative: refused, as Kafka */
        {"by_duration:P-1D", 0, 0, 0},
        {"by_duration:PT-1S", 0, 0, 0},
        {"by_duration:PT-0.5S", 0, 0, 0},
        {"by_duration:xx", 0, 0, 0},
        {"by_duration:", 0, 0, 0},
        {"by_duration:P", 0, 0, 0},
        {"by_duration:PT", 0, 0, 0},
        {"by_duration:P1DT", 0, 0, 0},
        {"by_duration:P1H", 0, 0, 0},
        {"by_duration:PT1D", 0, 0, 0},
        {"by_duration:PT1M1H", 0, 0, 0},
        {"by_duration:P1.5D", 0, 0, 0},
        {"by_duration:PT1.1234567890S", 0, 0, 0},
        {"by_duration:PT9999999999999999999S", 0, 0, 0},
        {"BY_DURATION:P1D", 0, 0, 0},
        {"Earliest", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int mode = -1;
        int64_t ms = -1;
        int rc = srv_share_parse_reset(cases[i].v, strlen(cases[i].v), &mode, &ms);
        if (rc != (cases[i].ok ? 0 : -1) || (cases[i].ok && (mode != cases[i].mode || ms != cases[i].ms)))
            fprintf(stderr, "reset value %s: rc %d mode %d ms %lld\n", cases[i].v, rc, mode, (long long)ms);
        CU_ASSERT_EQUAL(rc, cases[i].ok ? 0 : -1);
        if (cases[i].ok) {
            CU_ASSERT_EQUAL(mode, cases[i].mode);
            CU_ASSERT_EQUAL(ms, cases[i].ms);
        }
    }
    /* As the metadata log keeps them (restored at start). */
    srv_share_gconf g;
    memset(&g, 0, sizeof(g));
    CU_ASSERT_EQUAL(srv_share_gconf_set_str(&g, "share.record.lock.duration.ms", "20000"), 0);
    CU_ASSERT_EQUAL(srv_share_gconf_set_str(&g, "share.auto.offset.reset", "by_duration:PT1H"), 0);
    CU_ASSERT(g.set[SRV_SGK_LOCK_MS] && g.val[SRV_SGK_LOCK_MS] == 20000);
    CU_ASSERT(g.set[SRV_SGK_AUTO_RESET] && g.val[SRV_SGK_AUTO_RESET] == SRV_SHARE_RESET_BY_DURATION);
    CU_ASSERT_EQUAL(g.reset_ms, 3600000);
    CU_ASSERT_EQUAL(srv_share_gconf_set_str(&g, "share.isolation.level", "read_committed"), -1);
    CU_ASSERT_EQUAL(srv_share_gconf_set_str(&g, "share.delivery.count.limit", "3x"), -1);
    CU_ASSERT_FALSE(g.set[SRV_SGK_DELIVERY_LIMIT]);
    for (int k = 0; k < SRV_SGK_COUNT; k++)
        CU_ASSERT_PTR_NOT_NULL(srv_share_gkey_name(k));
}

/* by_duration: a new share-partition's first fetch looks up now - duration
 * and starts at the offset found; none that recent: at the end. */
static void test_reset_by_duration(void)
{
    t1_parts = 2;
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    kp_str g = kp_str_c("g");
    srv_share_gconf c;
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(srv_share_gconf_set_str(&c, "share.auto.offset.reset", "by_duration:PT1H"), 0);
    CU_ASSERT_EQUAL(srv_share_gconf_put(sg, g, &c), 0);
    int64_t now = 10000000;
    CU_ASSERT_EQUAL(hb(sg, "m1", 0, "a", now).error, 0);
    srv_share_item two[2] = {{.tp = {T1, 0}, .fetch = 1}, {.tp = {T1, 1}, .fetch = 1}};
    srv_share_item *items = two;
    int n = 2;
    srv_share_sreq rq = {.group_id = g, .member_id = kp_str_c("m1"), .epoch = 0, .is_fetch = 1};
    CU_ASSERT_EQUAL_FATAL(srv_share_begin(sg, &rq, now, &A, &items, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(items[i].probe, 1);
        CU_ASSERT_EQUAL(items[i].reset_ago_ms, 3600000);
        items[i].log_start = 5;
        items[i].hwm = 9;
        items[i].last = -1;
    }
    items[0].ts_offset = 7;  /* the lookup found offset 7 */
    items[1].ts_offset = -1; /* nothing stamped that recently */
    CU_ASSERT_EQUAL(srv_share_acquire(sg, &rq, 100, now, &A, items, n), 0);
    for (int i = 0; i < n; i++) {
        const srv_share_part *sp = srv_share_part_of(sg, g, &items[i].tp);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
        CU_ASSERT_EQUAL(sp->start, items[i].tp.partition == 0 ? 7 : 9);
    }
    /* Initialised: the next fetch looks nothing up. */
    srv_share_item none = {0};
    items = &none;
    n = 0;
    rq.epoch = 1;
    CU_ASSERT_EQUAL_FATAL(srv_share_begin(sg, &rq, now, &A, &items, &n), 0);
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(items[i].reset_ago_ms, -1);
    srv_share_groups_free(sg);
    kp_arena_reset(&A);
}

static int setup(void)
{
    kp_arena_init(&A, 1 << 20);
    return 0;
}

static void teardown(void)
{
    kp_arena_reset(&A);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("share_assign", NULL, NULL);
    CU_add_test(s, "two members split four partitions", test_two_members_split);
    CU_add_test(s, "members outnumber partitions", test_members_outnumber_partitions);
    CU_add_test(s, "heterogeneous subscriptions, topic growth", test_heterogeneous_and_growth);
    CU_pSuite a = CU_add_suite("share_admin", NULL, NULL);
    CU_add_test(a, "offsets altered and deleted, group deleted", test_admin_offsets_and_delete);
    CU_add_test(a, "group configs", test_group_configs);
    CU_add_test(a, "share.auto.offset.reset values", test_reset_values);
    CU_add_test(a, "share.auto.offset.reset=by_duration", test_reset_by_duration);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = setup, .teardown = teardown};

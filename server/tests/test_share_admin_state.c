/*
 * test_share_admin_state.c — unit tests of share_group.c's admin operations
 * on share-partitions that hold records in flight (issue 18 review): an
 * AlterShareGroupOffsets reset (start -1) followed by the operations that
 * walk every share-partition of the group (member join and leave, session
 * expiry, DescribeShareGroupOffsets, DeleteGroups), and the prune tracker
 * forgetting a share-partition whose tombstone is durable.
 *
 * Owns: the share groups it builds. Must not: start a broker, read a real
 * clock, or touch the network or the disk.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "kb_test.h"
#include "share_group.h"
#include "share_partition.h"
#include "share_state.h"

static const kp_uuid T1 = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};

static int fake_topic(void *arg, kp_str name, kp_uuid *id, int32_t *nparts)
{
    (void)arg;
    if (name.len == 1 && name.p[0] == 'a') {
        *id = T1;
        *nparts = 1;
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

static srv_shb_result hb(srv_share_groups *sg, const char *member, int32_t epoch, int subscribe, int64_t now)
{
    kp_str s[1] = {kp_str_c("a")};
    srv_shb_req rq = {.group_id = kp_str_c("g"),
                      .member_id = kp_str_c(member),
                      .rack_id = KP_STR_NULL,
                      .client_id = kp_str_c("c"),
                      .client_host = kp_str_c("/h"),
                      .member_epoch = epoch,
                      .nsubs = subscribe ? 1 : -1,
                      .subs = s};
    srv_shb_result r;
    srv_share_heartbeat(sg, &rq, now, fake_topic, NULL, &A, &r);
    return r;
}

/* A group as restored from __share_group_state: 10 available records in
 * flight at 0..9, no member, then reset by AlterShareGroupOffsets -1. */
static srv_share_groups *reset_group(void)
{
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    srv_share_tp tp = {T1, 0};
    srv_sp_run run = {0, 9, SRV_SP_AVAILABLE, 1};
    CU_ASSERT_FATAL(srv_share_restore(sg, kp_str_c("g"), &tp, 0, &run, 1) == 0);
    CU_ASSERT_FATAL(srv_share_check_empty(sg, kp_str_c("g"), 0) == 0);
    CU_ASSERT_FATAL(srv_share_alter_offset(sg, kp_str_c("g"), &tp, -1) == 0);
    return sg;
}

static void test_reset_then_member_joins_and_leaves(void)
{
    srv_share_groups *sg = reset_group();
    srv_shb_result r = hb(sg, "m1", 0, 1, 10);
    CU_ASSERT_EQUAL(r.error, 0);
    r = hb(sg, "m1", -1, 0, 20);
    CU_ASSERT_EQUAL(r.error, 0);
    /* Still reset: no start until a fetch initialises it. */
    srv_share_tp tp = {T1, 0};
    CU_ASSERT_PTR_NULL(srv_share_part_of(sg, kp_str_c("g"), &tp));
    srv_share_groups_free(sg);
}

static void test_reset_then_session_expires(void)
{
    srv_share_groups *sg = reset_group();
    CU_ASSERT_EQUAL(hb(sg, "m1", 0, 1, 10).error, 0);
    /* Past the session timeout: the next operation expires the member. */
    CU_ASSERT_EQUAL(srv_share_check_empty(sg, kp_str_c("g"), 10 + 10 * CFG.session_ms), 0);
    srv_share_groups_free(sg);
}

static void test_reset_then_describe_and_delete(void)
{
    srv_share_groups *sg = reset_group();
    srv_share_off *o = NULL;
    int n = srv_share_offsets_all(sg, kp_str_c("g"), 30, &A, &o);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(o[0].start, -1);
    CU_ASSERT_EQUAL(o[0].done, 0);
    CU_ASSERT_EQUAL(srv_share_delete_group(sg, kp_str_c("g"), 40), 0);
    CU_ASSERT_FALSE(srv_share_exists(sg, kp_str_c("g")));
    srv_share_groups_free(sg);
}

/* A deleted share-partition's tombstone takes it out of the prune tracker:
 * its old snapshot no longer holds the state partition's pruning back. */
static void test_tombstone_unpins_prune_point(void)
{
    srv_ss_map m;
    srv_ss_map_init(&m);
    const kp_uuid t2 = {{2}};
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("a"), &T1, 0, SRV_SS_SNAPSHOT, 5), 0);
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("b"), &t2, 0, SRV_SS_SNAPSHOT, 7), 0);
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("b"), &t2, 0, SRV_SS_SNAPSHOT, 20), 0);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), 5);
    srv_ss_untrack(&m, kp_str_c("a"), &T1, 0);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), 20);
    srv_ss_untrack(&m, kp_str_c("a"), &T1, 0); /* twice: nothing left to forget */
    srv_ss_untrack(&m, kp_str_c("b"), &t2, 0);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), -1);
    srv_ss_map_free(&m);
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
    CU_pSuite s = CU_add_suite("share admin state", NULL, NULL);
    CU_add_test(s, "alter -1, then a member joins and leaves", test_reset_then_member_joins_and_leaves);
    CU_add_test(s, "alter -1, then a session expires", test_reset_then_session_expires);
    CU_add_test(s, "alter -1, then describe and delete", test_reset_then_describe_and_delete);
    CU_add_test(s, "a tombstone unpins the prune point", test_tombstone_unpins_prune_point);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = setup, .teardown = teardown};

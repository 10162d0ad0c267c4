/*
 * test_share_conn_close.c — unit tests of a share session ending with the
 * connection that opened it (srv_share_conn_closed, issue 18): the member's
 * acquired records become Available at once with their delivery count kept,
 * a session opened again over another connection keeps its records when the
 * old connection closes, and other members' records are never touched.
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

static const kp_uuid T1 = {{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}};

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

/* Locks far longer than the tests' clock moves: only a close gives back. */
static const srv_share_cfg CFG = {.heartbeat_ms = 100,
                                  .session_ms = 60000,
                                  .lock_ms = 30000,
                                  .max_delivery = 5,
                                  .max_locks = 100,
                                  .max_size = 50,
                                  .auto_reset_earliest = 1};
static kp_arena A;
static const srv_share_tp TP = {{{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}}, 0};

static void join(srv_share_groups *sg, const char *member, int64_t now)
{
    kp_str s[1] = {kp_str_c("a")};
    srv_shb_req rq = {.group_id = kp_str_c("g"),
                      .member_id = kp_str_c(member),
                      .rack_id = KP_STR_NULL,
                      .client_id = kp_str_c("c"),
                      .client_host = kp_str_c("/h"),
                      .member_epoch = 0,
                      .nsubs = 1,
                      .subs = s};
    srv_shb_result r;
    srv_share_heartbeat(sg, &rq, now, fake_topic, NULL, &A, &r);
    CU_ASSERT_EQUAL_FATAL(r.error, 0);
}

/* One ShareFetch of member at session epoch `epoch` over connection conn,
 * the log holding offsets 0..9: how many records it acquired (-1 on error). */
static int fetch(srv_share_groups *sg, const char *member, int32_t epoch, uint64_t conn, int32_t max,
                 int64_t now)
{
    srv_share_item one = {.tp = TP, .fetch = 1};
    srv_share_item *items = &one;
    int n = 1;
    srv_share_sreq rq = {.group_id = kp_str_c("g"),
                         .member_id = kp_str_c(member),
                         .epoch = epoch,
                         .is_fetch = 1,
                         .conn = conn};
    if (srv_share_begin(sg, &rq, now, &A, &items, &n) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        items[i].log_start = 0;
        items[i].hwm = 10;
        items[i].last = items[i].read_from >= 0 ? 9 : -1;
        items[i].ts_offset = -1;
    }
    if (srv_share_acquire(sg, &rq, max, now, &A, items, n) != 0)
        return -1;
    int got = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < items[i].nranges; k++)
            got += (int)(items[i].ranges[k].last - items[i].ranges[k].first + 1);
    return got;
}

static int state_of(srv_share_groups *sg, int64_t offset, int *delivery)
{
    const srv_share_part *sp = srv_share_part_of(sg, kp_str_c("g"), &TP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
    return srv_sp_state_of(sp, offset, delivery);
}

/* m1 holds 0..4 over connection 7; the connection closes: 0..4 are Available
 * again with delivery 1, m2 then acquires them with delivery 2, and m1's
 * session is gone (its next incremental fetch: SHARE_SESSION_NOT_FOUND). */
static void test_close_releases(void)
{
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    join(sg, "m1", 0);
    join(sg, "m2", 0);
    CU_ASSERT_EQUAL(fetch(sg, "m1", 0, 7, 5, 10), 0); /* initialises the share-partition at 0 */
    CU_ASSERT_EQUAL(fetch(sg, "m1", 1, 7, 5, 20), 5);
    int d = 0;
    CU_ASSERT_EQUAL(state_of(sg, 4, &d), SRV_SP_ACQUIRED);
    CU_ASSERT_EQUAL(srv_share_conn_closed(sg, kp_str_c("g"), kp_str_c("m1"), 7, 30), 5);
    for (int64_t o = 0; o < 5; o++) {
        CU_ASSERT_EQUAL(state_of(sg, o, &d), SRV_SP_AVAILABLE);
        CU_ASSERT_EQUAL(d, 1);
    }
    /* A second close of the same connection finds nothing. */
    CU_ASSERT_EQUAL(srv_share_conn_closed(sg, kp_str_c("g"), kp_str_c("m1"), 7, 31), -1);
    CU_ASSERT_EQUAL(fetch(sg, "m1", 2, 7, 5, 40), -1);
    CU_ASSERT_EQUAL(fetch(sg, "m2", 0, 8, 5, 50), 5);
    for (int64_t o = 0; o < 5; o++) {
        CU_ASSERT_EQUAL(state_of(sg, o, &d), SRV_SP_ACQUIRED);
        CU_ASSERT_EQUAL(d, 2);
    }
    srv_share_groups_free(sg);
    kp_arena_reset(&A);
}

/* m1 opens its session again over connection 9 (a reconnect) and acquires
 * more: the old connection 7 closing later releases nothing; 9 closing
 * releases everything m1 holds. m2's records stay with m2 throughout. */
static void test_reopened_elsewhere_keeps(void)
{
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    join(sg, "m1", 0);
    join(sg, "m2", 0);
    CU_ASSERT_EQUAL(fetch(sg, "m1", 0, 7, 3, 10), 0);
    CU_ASSERT_EQUAL(fetch(sg, "m1", 1, 7, 3, 20), 3);  /* 0..2 */
    CU_ASSERT_EQUAL(fetch(sg, "m2", 0, 11, 2, 30), 2); /* 3..4 */
    CU_ASSERT_EQUAL(fetch(sg, "m1", 0, 9, 2, 40), 2);  /* 5..6, a new session */
    CU_ASSERT_EQUAL(srv_share_conn_closed(sg, kp_str_c("g"), kp_str_c("m1"), 7, 50), -1);
    int d = 0;
    for (int64_t o = 0; o < 7; o++)
        CU_ASSERT_EQUAL(state_of(sg, o, &d), SRV_SP_ACQUIRED);
    CU_ASSERT_EQUAL(srv_share_conn_closed(sg, kp_str_c("g"), kp_str_c("m1"), 9, 60), 5);
    for (int64_t o = 0; o < 7; o++) {
        int want = o == 3 || o == 4 ? SRV_SP_ACQUIRED : SRV_SP_AVAILABLE;
        CU_ASSERT_EQUAL(state_of(sg, o, &d), want);
        CU_ASSERT_EQUAL(d, 1);
    }
    /* Unknown group or member, and the "no connection known" token 0. */
    CU_ASSERT_EQUAL(srv_share_conn_closed(sg, kp_str_c("nope"), kp_str_c("m1"), 9, 70), -1);
    CU_ASSERT_EQUAL(srv_share_conn_closed(sg, kp_str_c("g"), kp_str_c("m3"), 9, 70), -1);
    CU_ASSERT_EQUAL(fetch(sg, "m1", 0, 0, 1, 80), 1);
    CU_ASSERT_EQUAL(srv_share_conn_closed(sg, kp_str_c("g"), kp_str_c("m1"), 0, 90), -1);
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
    CU_pSuite s = CU_add_suite("share conn close", NULL, NULL);
    CU_add_test(s, "a closed connection releases its session's records", test_close_releases);
    CU_add_test(s, "a session reopened elsewhere keeps its records", test_reopened_elsewhere_keeps);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = setup, .teardown = teardown};

/*
 * test_share_partition.c — unit tests of server/share_partition.c (KIP-932
 * share-partition states) and of share_group.c's sessions and membership,
 * with a fake clock: acquisition, ACCEPT / RELEASE / REJECT / GAP, the start
 * offset moving past finished records, lock expiry, the delivery limit, a
 * member's release, the in-flight bound, share session epochs, and member
 * epochs and fencing of ShareGroupHeartbeat.
 *
 * Owns: the share-partitions and share groups it builds. Must not: start a
 * broker, read a real clock, or touch the network or the disk.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "kb_test.h"
#include "share_group.h"
#include "share_partition.h"

#define LOCK  1000
#define LIMIT 3

static const int8_t ACCEPT[] = {SRV_ACK_ACCEPT};

static void test_acquire_accept_advances(void)
{
    srv_share_part sp;
    const char *why;
    srv_sp_init(&sp, 10, LOCK, LIMIT, 100);
    srv_sp_range r[8];
    CU_ASSERT_EQUAL(srv_sp_read_from(&sp), 10);
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 1, 10, 14, 0, 0, r, 8), 1);
    CU_ASSERT_EQUAL(r[0].first, 10);
    CU_ASSERT_EQUAL(r[0].last, 14);
    CU_ASSERT_EQUAL(r[0].delivery, 1);
    /* Acquired records are not offered to anyone else. */
    CU_ASSERT_EQUAL(srv_sp_read_from(&sp), 15);
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 2, 10, 14, 0, 0, r, 8), 0);
    /* Accepting the middle keeps the start; accepting the front moves it. */
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 12, 13, ACCEPT, 1, &why), 0);
    CU_ASSERT_EQUAL(sp.start, 10);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 10, 11, ACCEPT, 1, &why), 0);
    CU_ASSERT_EQUAL(sp.start, 14);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 14, NULL), SRV_SP_ACQUIRED);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 14, 14, ACCEPT, 1, &why), 0);
    CU_ASSERT_EQUAL(sp.start, 15);
    CU_ASSERT_EQUAL(srv_sp_in_flight(&sp), 0);
    srv_sp_free(&sp);
}

static void test_ack_not_acquired(void)
{
    srv_share_part sp;
    const char *why;
    srv_sp_init(&sp, 0, LOCK, LIMIT, 100);
    srv_sp_range r[8];
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 1, 0, 4, 0, 0, r, 8), 1);
    /* Another member's, past the window, already accepted: refused with Kafka's words, nothing changes. */
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 2, 0, 0, ACCEPT, 1, &why), KP_ERR_INVALID_RECORD_STATE);
    CU_ASSERT_STRING_EQUAL(why, "Member is not the owner of offset");
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 3, 5, ACCEPT, 1, &why), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(why,
                           "Batch record not found. The last offset in request is past acquired records.");
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 7, 7, ACCEPT, 1, &why), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(why,
                           "Batch record not found. The first offset in request is past acquired records.");
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 3, NULL), SRV_SP_ACQUIRED);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 1, 1, ACCEPT, 1, &why), 0);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 1, 2, ACCEPT, 1, &why), KP_ERR_INVALID_RECORD_STATE);
    CU_ASSERT_STRING_EQUAL(why, "The offset cannot be acknowledged. The offset is not acquired.");
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 2, NULL), SRV_SP_ACQUIRED); /* whole batch or nothing */
    /* Below the start offset: done already, skipped (Kafka answers no error). */
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 0, 0, ACCEPT, 1, &why), 0);
    CU_ASSERT_EQUAL(sp.start, 2);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 0, 2, ACCEPT, 1, &why), 0);
    CU_ASSERT_EQUAL(sp.start, 3);
    /* Malformed: types neither one nor one per offset, an unknown type. */
    const int8_t two[] = {1, 1};
    const int8_t bad[] = {9};
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 2, 4, two, 2, &why), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 2, 2, bad, 1, &why), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 3, 2, ACCEPT, 1, &why), KP_ERR_INVALID_REQUEST);
    /* Client offsets whose span does not fit an int64 (UBSan saw the
     * subtraction overflow before), and a negative first offset. */
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, INT64_MIN, 5, two, 2, &why), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 0, INT64_MAX, two, 2, &why), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, -1, 0, ACCEPT, 1, &why), KP_ERR_INVALID_REQUEST);
    srv_sp_free(&sp);
}

static void test_release_reject_gap(void)
{
    srv_share_part sp;
    const char *why;
    srv_sp_init(&sp, 0, LOCK, LIMIT, 100);
    srv_sp_range r[8];
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 1, 0, 3, 0, 0, r, 8), 1);
    /* One type per offset: release 0, reject 1, gap 2, accept 3. */
    const int8_t types[] = {SRV_ACK_RELEASE, SRV_ACK_REJECT, SRV_ACK_GAP, SRV_ACK_ACCEPT};
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 0, 3, types, 4, &why), 0);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 0, NULL), SRV_SP_AVAILABLE);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 1, NULL), SRV_SP_ARCHIVED);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 2, NULL), SRV_SP_ARCHIVED);
    CU_ASSERT_EQUAL(srv_sp_read_from(&sp), 0);
    /* The released record comes again, to anyone, with the next delivery count; the rejected never. */
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 2, 0, 3, 0, 5, r, 8), 1);
    CU_ASSERT_EQUAL(r[0].first, 0);
    CU_ASSERT_EQUAL(r[0].last, 0);
    CU_ASSERT_EQUAL(r[0].delivery, 2);
    CU_ASSERT_EQUAL(srv_sp_acquired(&sp, 5), 1);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 2, 0, 0, ACCEPT, 1, &why), 0);
    CU_ASSERT_EQUAL(sp.start, 4);
    /* The metrics' counters: one acknowledgement per offset and type, one redelivery, nothing at the limit.
     */
    CU_ASSERT_EQUAL(sp.acks[SRV_ACK_ACCEPT], 2);
    CU_ASSERT_EQUAL(sp.acks[SRV_ACK_RELEASE], 1);
    CU_ASSERT_EQUAL(sp.acks[SRV_ACK_REJECT], 1);
    CU_ASSERT_EQUAL(sp.acks[SRV_ACK_GAP], 1);
    CU_ASSERT_EQUAL(sp.redeliveries, 1);
    CU_ASSERT_EQUAL(sp.archived_at_limit, 0);
    CU_ASSERT_EQUAL(srv_sp_acquired(&sp, 5), 0);
    srv_sp_free(&sp);
}

static void test_lock_expiry_and_limit(void)
{
    srv_share_part sp;
    const char *why;
    srv_sp_init(&sp, 0, LOCK, LIMIT, 100);
    srv_sp_range r[8];
    int64_t now = 100;
    for (int d = 1; d <= LIMIT; d++) {
        CU_ASSERT_EQUAL(srv_sp_acquire(&sp, (uint32_t)d, 0, 0, 0, now, r, 8), 1);
        CU_ASSERT_EQUAL(r[0].delivery, d);
        CU_ASSERT_EQUAL(srv_sp_next_deadline(&sp), now + LOCK);
        CU_ASSERT_EQUAL(srv_sp_expire(&sp, now + LOCK - 1), 0); /* not yet */
        CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 0, NULL), SRV_SP_ACQUIRED);
        now += LOCK;
        CU_ASSERT_EQUAL(srv_sp_expire(&sp, now), 1);
        /* An expired lock ends the holder's right to acknowledge (at the limit the record is archived
         * and below the start offset: skipped, as Kafka does). */
        CU_ASSERT_EQUAL(srv_sp_ack(&sp, (uint32_t)d, 0, 0, ACCEPT, 1, &why),
                        d < LIMIT ? KP_ERR_INVALID_RECORD_STATE : 0);
    }
    /* The limit's delivery timed out: archived, the start moves past it. */
    CU_ASSERT_EQUAL(sp.start, 1);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 0, NULL), SRV_SP_ACKNOWLEDGED); /* below start: done */
    CU_ASSERT_EQUAL(srv_sp_next_deadline(&sp), -1);
    /* Counted for the metrics: LIMIT - 1 redeliveries, one archived at the limit, no acknowledgement. */
    CU_ASSERT_EQUAL(sp.redeliveries, LIMIT - 1);
    CU_ASSERT_EQUAL(sp.archived_at_limit, 1);
    CU_ASSERT_EQUAL(sp.acks[SRV_ACK_ACCEPT], 0);
    srv_sp_free(&sp);
}

/* KIP-1222's RENEW: the holder's lock runs again from now, the delivery
 * count stays; refused outside v2 (-1) and, after the usual checks, when
 * the group disabled it. */
static void test_renew(void)
{
    srv_share_part sp;
    const char *why;
    srv_sp_init(&sp, 0, LOCK, LIMIT, 100);
    srv_sp_range r[8];
    static const int8_t RENEW[] = {SRV_ACK_RENEW};
    static const int8_t MIXED[] = {SRV_ACK_ACCEPT, SRV_ACK_RENEW};
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 7, 0, 2, 0, 100, r, 8), 1);
    CU_ASSERT_EQUAL(srv_sp_ack_at(&sp, 7, 0, 0, RENEW, 1, -1, &why), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 7, 0, 0, RENEW, 1, &why), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_EQUAL(srv_sp_ack_at(&sp, 7, 0, 0, RENEW, 1, SRV_SP_RENEW_DISABLED, &why),
                    KP_ERR_INVALID_RECORD_STATE);
    CU_ASSERT_STRING_EQUAL(why, "Renewing acquisition locks is not enabled for the group.");
    CU_ASSERT_EQUAL(srv_sp_ack_at(&sp, 8, 0, 0, RENEW, 1, 600, &why), KP_ERR_INVALID_RECORD_STATE);
    CU_ASSERT_STRING_EQUAL(why, "Member is not the owner of offset");
    CU_ASSERT_EQUAL(srv_sp_ack_at(&sp, 7, 0, 1, MIXED, 2, 600, &why), 0);
    CU_ASSERT_EQUAL(sp.start, 1); /* 0 accepted */
    /* 1 renewed at 600: its lock ends at 1600, 2's still at 1100. */
    CU_ASSERT_EQUAL(srv_sp_expire(&sp, 1100), 1);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 1, NULL), SRV_SP_ACQUIRED);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 2, NULL), SRV_SP_AVAILABLE);
    CU_ASSERT_EQUAL(srv_sp_next_deadline(&sp), 1600);
    /* Renewed again, then accepted: one delivery all along. */
    CU_ASSERT_EQUAL(srv_sp_ack_at(&sp, 7, 1, 1, RENEW, 1, 1500, &why), 0);
    CU_ASSERT_EQUAL(srv_sp_expire(&sp, 2499), 0);
    CU_ASSERT_EQUAL(srv_sp_ack_at(&sp, 7, 1, 1, ACCEPT, 1, 2499, &why), 0);
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 7, 2, 2, 0, 2500, r, 8), 1);
    CU_ASSERT_EQUAL(r[0].delivery, 2); /* 2's lock had expired: its second delivery */
    /* A record not acquired cannot be renewed. */
    CU_ASSERT_EQUAL(srv_sp_ack_at(&sp, 7, 2, 2, ACCEPT, 1, 2500, &why), 0);
    CU_ASSERT_EQUAL(srv_sp_ack_at(&sp, 7, 2, 2, RENEW, 1, 2500, &why), 0); /* below start: skipped */
    /* The metrics' counters: record 1 renewed twice, only record 2 redelivered. */
    CU_ASSERT_EQUAL(sp.acks[SRV_ACK_RENEW], 2);
    CU_ASSERT_EQUAL(sp.acks[SRV_ACK_ACCEPT], 3);
    CU_ASSERT_EQUAL(sp.redeliveries, 1);
    srv_sp_free(&sp);
}

static void test_release_owner_and_bound(void)
{
    srv_share_part sp;
    srv_sp_init(&sp, 0, LOCK, LIMIT, 4);
    srv_sp_range r[8];
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 1, 0, 1, 0, 0, r, 8), 1);
    /* max_records and the in-flight bound (4) cut the acquisition. */
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 2, 2, 9, 1, 0, r, 8), 1);
    CU_ASSERT_EQUAL(r[0].last, 2);
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 2, 3, 9, 0, 0, r, 8), 1);
    CU_ASSERT_EQUAL(r[0].first, 3);
    CU_ASSERT_EQUAL(r[0].last, 3);
    CU_ASSERT_EQUAL(sp.end, 4);
    CU_ASSERT_EQUAL(srv_sp_read_from(&sp), -1); /* full, nothing available */
    CU_ASSERT_EQUAL(srv_sp_release_owner(&sp, 1), 2);
    CU_ASSERT_EQUAL(srv_sp_read_from(&sp), 0);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 3, NULL), SRV_SP_ACQUIRED);
    /* Retention moved the log start past some of it. */
    srv_sp_move_start(&sp, 3);
    CU_ASSERT_EQUAL(sp.start, 3);
    CU_ASSERT_EQUAL(srv_sp_state_of(&sp, 3, NULL), SRV_SP_ACQUIRED);
    srv_sp_free(&sp);
}

/* ---- share_group.c -------------------------------------------------------- */

static const kp_uuid TOPIC = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};

static int fake_topic(void *arg, kp_str name, kp_uuid *id, int32_t *nparts)
{
    (void)arg;
    if (name.len != 1 || name.p[0] != 't')
        return 0;
    *id = TOPIC;
    *nparts = 2;
    return 1;
}

static srv_shb_result hb(srv_share_groups *sg, kp_arena *a, const char *member, int32_t epoch, int64_t now)
{
    kp_str subs[] = {kp_str_c("t")};
    srv_shb_req rq = {.group_id = kp_str_c("g"),
                      .member_id = kp_str_c(member),
                      .rack_id = KP_STR_NULL,
                      .client_id = kp_str_c("c"),
                      .client_host = kp_str_c("/h"),
                      .member_epoch = epoch,
                      .nsubs = epoch == 0 ? 1 : -1,
                      .subs = subs};
    srv_shb_result r;
    srv_share_heartbeat(sg, &rq, now, fake_topic, NULL, a, &r);
    return r;
}

static const srv_share_cfg CFG = {.heartbeat_ms = 100,
                                  .session_ms = 500,
                                  .lock_ms = LOCK,
                                  .max_delivery = LIMIT,
                                  .max_locks = 100,
                                  .max_size = 10,
                                  .auto_reset_earliest = 1};

static void test_heartbeat_epochs(void)
{
    kp_arena a;
    kp_arena_init(&a, 1 << 20);
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    srv_shb_result r = hb(sg, &a, "m1", 0, 0);
    CU_ASSERT_EQUAL(r.error, 0);
    CU_ASSERT_EQUAL(r.member_epoch, 1);
    CU_ASSERT_EQUAL(r.nassigned, 2); /* every partition of t */
    r = hb(sg, &a, "m2", 0, 10);
    CU_ASSERT_EQUAL(r.member_epoch, 2);
    CU_ASSERT_EQUAL(r.nassigned, 1); /* the simple assignor splits t (test_share_assign.c) */
    /* m1 learns the new epoch with its assignment; a stale epoch is fenced. */
    r = hb(sg, &a, "m1", 1, 20);
    CU_ASSERT_EQUAL(r.error, 0);
    CU_ASSERT_EQUAL(r.member_epoch, 2);
    CU_ASSERT_EQUAL(r.nassigned, 1);
    /* Its previous epoch is still taken (as Kafka: the answer may have been lost); others are fenced. */
    CU_ASSERT_EQUAL(hb(sg, &a, "m1", 1, 30).error, 0);
    r = hb(sg, &a, "m1", 7, 30);
    CU_ASSERT_EQUAL(r.error, KP_ERR_FENCED_MEMBER_EPOCH);
    CU_ASSERT_EQUAL(
        r.msglen,
        (int32_t)strlen("The share group member has a greater member epoch (7) than the one known by "
                        "the group coordinator (2). The member must abandon all its partitions "
                        "and rejoin."));
    r = hb(sg, &a, "m1", 2, 30);
    CU_ASSERT_EQUAL(r.error, 0);
    CU_ASSERT_EQUAL(r.nassigned, -1); /* nothing changed: no assignment sent */
    r = hb(sg, &a, "nobody", 2, 30);
    CU_ASSERT_EQUAL(r.error, KP_ERR_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(r.msglen, (int32_t)strlen("Member nobody is not a member of group g."));
    CU_ASSERT_EQUAL(memcmp(r.msg, "Member nobody is not a member of group g.", (size_t)r.msglen), 0);
    CU_ASSERT_EQUAL(hb(sg, &a, "", 0, 30).error, KP_ERR_INVALID_REQUEST);
    /* m2 stops heartbeating: gone after its session timeout (500). */
    CU_ASSERT_EQUAL(hb(sg, &a, "m1", 2, 400).error, 0);
    CU_ASSERT_EQUAL(hb(sg, &a, "m2", 2, 600).error, KP_ERR_UNKNOWN_MEMBER_ID);
    /* Leaving answers epoch -1. */
    r = hb(sg, &a, "m1", -1, 610);
    CU_ASSERT_EQUAL(r.error, 0);
    CU_ASSERT_EQUAL(r.member_epoch, -1);
    srv_share_groups_free(sg);
    kp_arena_reset(&a);
}

static int16_t begin(srv_share_groups *sg, kp_arena *a, const char *member, int32_t epoch, int is_fetch,
                     srv_share_item **items, int *n)
{
    srv_share_sreq rq = {
        .group_id = kp_str_c("g"), .member_id = kp_str_c(member), .epoch = epoch, .is_fetch = is_fetch};
    return srv_share_begin(sg, &rq, 0, a, items, n);
}

static void test_sessions_and_acquire(void)
{
    kp_arena a;
    kp_arena_init(&a, 1 << 20);
    srv_share_groups *sg = srv_share_groups_new(&CFG);
    CU_ASSERT_EQUAL(hb(sg, &a, "m1", 0, 0).error, 0);
    srv_share_item one = {.tp = {TOPIC, 0}, .fetch = 1};
    srv_share_item *items = &one;
    int n = 1;
    /* Unknown member; no session yet; acknowledgements need a session. */
    CU_ASSERT_EQUAL(begin(sg, &a, "nobody", 0, 1, &items, &n), KP_ERR_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(begin(sg, &a, "m1", 1, 1, &items, &n), KP_ERR_SHARE_SESSION_NOT_FOUND);
    CU_ASSERT_EQUAL(begin(sg, &a, "m1", 0, 0, &items, &n), KP_ERR_INVALID_SHARE_SESSION_EPOCH);
    CU_ASSERT_EQUAL(begin(sg, &a, "m1", 0, 1, &items, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(items[0].probe, 1); /* not initialised: its offsets are read first */
    /* A read that failed (no such partition: no offsets) creates no state. */
    items[0].log_start = items[0].hwm = items[0].last = -1;
    srv_share_sreq rq0 = {.group_id = kp_str_c("g"), .member_id = kp_str_c("m1"), .epoch = 0, .is_fetch = 1};
    CU_ASSERT_EQUAL(srv_share_acquire(sg, &rq0, 100, 0, &a, items, n), 0);
    CU_ASSERT_EQUAL(srv_share_nparts(sg, kp_str_c("g")), 0);
    CU_ASSERT_EQUAL(items[0].probe, 1);
    /* The read found log start 5, high watermark 9: earliest starts at 5, nothing acquired yet. */
    items[0].log_start = 5;
    items[0].hwm = 9;
    items[0].last = -1;
    srv_share_sreq rq = {.group_id = kp_str_c("g"), .member_id = kp_str_c("m1"), .epoch = 0, .is_fetch = 1};
    CU_ASSERT_EQUAL(srv_share_acquire(sg, &rq, 100, 0, &a, items, n), 0);
    CU_ASSERT_EQUAL(items[0].read_from, 5);
    items[0].last = 8;
    CU_ASSERT_EQUAL(srv_share_acquire(sg, &rq, 100, 0, &a, items, n), 0);
    CU_ASSERT_EQUAL(items[0].nranges, 1);
    CU_ASSERT_EQUAL(items[0].ranges[0].first, 5);
    CU_ASSERT_EQUAL(items[0].ranges[0].last, 8);
    /* Next epoch is 1; a repeat of 0 opens a new session, 5 is wrong. */
    srv_share_item none = {0};
    items = &none;
    n = 0;
    CU_ASSERT_EQUAL(begin(sg, &a, "m1", 5, 1, &items, &n), KP_ERR_INVALID_SHARE_SESSION_EPOCH);
    srv_share_ackb ack = {5, 6, ACCEPT, 1};
    srv_share_item acked = {.tp = {TOPIC, 0}, .nacks = 1, .acks = &ack};
    items = &acked;
    n = 1;
    CU_ASSERT_EQUAL(begin(sg, &a, "m1", 1, 0, &items, &n), 0);
    CU_ASSERT_EQUAL(items[0].ack_error, 0);
    const srv_share_part *sp = srv_share_part_of(sg, kp_str_c("g"), &acked.tp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
    CU_ASSERT_EQUAL(sp->start, 7);
    /* Closing the session (epoch -1) gives back 7 and 8. */
    srv_share_item again = {.tp = {TOPIC, 0}};
    items = &again;
    n = 1;
    CU_ASSERT_EQUAL(begin(sg, &a, "m1", -1, 0, &items, &n), 0);
    CU_ASSERT_EQUAL(srv_sp_state_of(sp, 7, NULL), SRV_SP_AVAILABLE);
    CU_ASSERT_EQUAL(begin(sg, &a, "m1", 2, 1, &items, &n), KP_ERR_SHARE_SESSION_NOT_FOUND);
    srv_share_groups_free(sg);
    kp_arena_reset(&a);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("share_partition", NULL, NULL);
    CU_add_test(s, "acquire, accept, start advances", test_acquire_accept_advances);
    CU_add_test(s, "ack of records not acquired", test_ack_not_acquired);
    CU_add_test(s, "release, reject, gap", test_release_reject_gap);
    CU_add_test(s, "lock expiry and delivery limit", test_lock_expiry_and_limit);
    CU_add_test(s, "member release and in-flight bound", test_release_owner_and_bound);
    CU_add_test(s, "renew (KIP-1222)", test_renew);
    CU_pSuite g = CU_add_suite("share_group", NULL, NULL);
    CU_add_test(g, "heartbeat epochs, fencing, expiry", test_heartbeat_epochs);
    CU_add_test(g, "sessions, acknowledgements, acquisition", test_sessions_and_acquire);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_group_txn.c — unit tests of offsets committed in a transaction
 * (server/group/group_txn.c) with the fake group environment: the
 * transactional batch written, pending offsets completed by COMMIT or dropped
 * by ABORT, Kafka's rule when plain and transactional commits mix (the later
 * record wins), the coordinator's checks, replay of a log holding
 * transactional batches and markers, and deletion, OffsetDelete and
 * retention with pending offsets.
 *
 * Owns: nothing outside the process. Must not: depend on shards or sockets.
 */
#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "fake_group_env.h"
#include "group/consumer.h"
#include "group/group.h"

static fake_group_env g_env = {.now_ms = 1000000};

static srv_groups *new_groups(void)
{
    srv_groups_config cfg = {6000, 300000, 0, 1000, 7LL * 24 * 3600 * 1000, 0, 0, 0, 0, 0, {0}};
    return fake_group_env_groups(&g_env, &cfg);
}

static void done_cb(void *ctx)
{
    int *n = ctx;
    if (n)
        (*n)++;
}

static srv_commit_item item(const char *topic, int32_t p, int64_t offset, const char *md)
{
    srv_commit_item it = {kp_str_c(topic), p,  offset, -1, md ? kp_str_c(md) : KP_STR_NULL,
                          g_env.now_ms,    -1, 0};
    return it;
}

/* TxnOffsetCommit of one item for producer pid (v0-2 shape: no member). */
static int16_t txn1(srv_groups *gs, const char *group, int64_t pid, const char *topic, int32_t p,
                    int64_t offset)
{
    srv_txn_commit_req rq = {kp_str_c(group), kp_str_c(""), KP_STR_NULL, -1, pid, 0};
    srv_commit_item it = item(topic, p, offset, "txn");
    int calls = 0;
    srv_group_txn_commit(gs, 0, &rq, 1, &it, done_cb, &calls);
    CU_ASSERT_EQUAL(calls, 1);
    return it.error;
}

static int16_t plain1(srv_groups *gs, const char *group, const char *topic, int32_t p, int64_t offset)
{
    srv_commit_item it = item(topic, p, offset, NULL);
    srv_group_commit(gs, 0, kp_str_c(group), -1, kp_str_c(""), KP_STR_NULL, 8, 1, &it, done_cb, NULL);
    return it.error;
}

/* The committed offset (-1: none), as OffsetFetch reads it. */
static int64_t committed(srv_groups *gs, const char *group, const char *topic, int32_t p)
{
    srv_group *g = srv_groups_find(gs, kp_str_c(group));
    const srv_goffset *o = g ? srv_group_offset(g, kp_str_c(topic), p) : NULL;
    return o ? o->offset : -1;
}

static int pending(srv_groups *gs, const char *group, const char *topic, int32_t p)
{
    return srv_group_txn_pending(gs, kp_str_c(group), kp_str_c(topic), p);
}

/* A marker appended to the kept log, as WriteTxnMarkers writes it. */
static void log_marker(int64_t pid, int16_t epoch, int commit)
{
    kp_writer w;
    kp_writer_init(&w, 128);
    CU_ASSERT_EQUAL_FATAL(kp_batch_build_control(&w, 0, pid, epoch, commit, 0, g_env.now_ms), 0);
    uint8_t *n = realloc(g_env.log, g_env.log_len + w.len);
    CU_ASSERT_FATAL(n != NULL);
    memcpy(n + g_env.log_len, w.buf, w.len);
    g_env.log = n;
    g_env.log_len += w.len;
    kp_writer_free(&w);
}

/* The header of the last batch in the kept log. */
static kp_batch_header last_batch(void)
{
    kp_batch_iter bi;
    kp_batch b;
    kp_batch_header h;
    memset(&h, 0, sizeof(h));
    kp_batch_iter_init(&bi, g_env.log, g_env.log_len, 0);
    while (kp_batch_iter_next(&bi, &b) == 1)
        h = b.h;
    return h;
}

static void test_pending_commit_abort(void)
{
    g_env.keep_log = 1;
    srv_groups *gs = new_groups();
    srv_txn_commit_req rq = {kp_str_c("g"), kp_str_c(""), KP_STR_NULL, -1, 7, 3};
    srv_commit_item it[2] = {item("t", 0, 10, "m0"), item("t", 1, 11, NULL)};
    int calls = 0;
    srv_group_txn_commit(gs, 0, &rq, 2, it, done_cb, &calls);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_EQUAL(it[0].error, KP_ERR_NONE);
    CU_ASSERT_EQUAL(it[1].error, KP_ERR_NONE);
    /* One transactional batch of the producer, without a sequence. */
    kp_batch_header h = last_batch();
    CU_ASSERT(h.attributes & KP_ATTR_TRANSACTIONAL);
    CU_ASSERT_FALSE(h.attributes & KP_ATTR_CONTROL);
    CU_ASSERT_EQUAL(h.producer_id, 7);
    CU_ASSERT_EQUAL(h.producer_epoch, 3);
    CU_ASSERT_EQUAL(h.base_sequence, -1);
    CU_ASSERT_EQUAL(h.last_offset_delta, 1);
    /* Pending: not committed, but known to require_stable. */
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 0), -1);
    CU_ASSERT(pending(gs, "g", "t", 0));
    CU_ASSERT(pending(gs, "g", "t", 1));
    CU_ASSERT_FALSE(pending(gs, "g", "t", 2));
    CU_ASSERT_FALSE(pending(gs, "other", "t", 0));
    /* Another producer's marker, or one on another partition, changes nothing. */
    srv_groups_txn_complete(gs, 0, 8, 1);
    srv_groups_txn_complete(gs, 1, 7, 1);
    CU_ASSERT(pending(gs, "g", "t", 0));
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 0), -1);
    srv_groups_txn_complete(gs, 0, 7, 1);
    CU_ASSERT_FALSE(pending(gs, "g", "t", 0));
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 0), 10);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 1), 11);
    const srv_goffset *o = srv_group_offset(srv_groups_find(gs, kp_str_c("g")), kp_str_c("t"), 0);
    CU_ASSERT(o && o->metadata && strcmp(o->metadata, "m0") == 0);
    /* ABORT drops; a second marker finds nothing. */
    CU_ASSERT_EQUAL(txn1(gs, "g", 9, "t", 0, 99), KP_ERR_NONE);
    CU_ASSERT(pending(gs, "g", "t", 0));
    srv_groups_txn_complete(gs, 0, 9, 0);
    CU_ASSERT_FALSE(pending(gs, "g", "t", 0));
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 0), 10);
    srv_groups_txn_complete(gs, 0, 9, 1);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 0), 10);
    /* The same producer committing a partition twice in one transaction keeps the later offset. */
    CU_ASSERT_EQUAL(txn1(gs, "g", 9, "t", 0, 20), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "g", 9, "t", 0, 21), KP_ERR_NONE);
    srv_groups_txn_complete(gs, 0, 9, 1);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 0), 21);
    srv_groups_free(gs);
    fake_group_env_clear_log(&g_env);
    g_env.keep_log = 0;
}

static void test_race_with_plain_commit(void)
{
    srv_groups *gs = new_groups();
    /* p0: plain 5, then the transaction's 20: the transaction is newer and wins at commit.
     * p1: the transaction's 21, then plain 7: the plain commit is newer and stays. */
    CU_ASSERT_EQUAL(plain1(gs, "g", "t", 0, 5), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "g", 7, "t", 0, 20), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "g", 7, "t", 1, 21), KP_ERR_NONE);
    CU_ASSERT_EQUAL(plain1(gs, "g", "t", 1, 7), KP_ERR_NONE);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 1), 7);
    CU_ASSERT(pending(gs, "g", "t", 1)); /* a plain commit does not end the transaction's claim */
    srv_groups_txn_complete(gs, 0, 7, 1);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 0), 20);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 1), 7);
    /* Two producers on p2: A's record first, B's later; B commits first, then A: B's (newer) stays, as
     * Kafka compares the records' offsets, not the order of the markers. */
    CU_ASSERT_EQUAL(txn1(gs, "g", 100, "t", 2, 30), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "g", 200, "t", 2, 40), KP_ERR_NONE);
    srv_groups_txn_complete(gs, 0, 200, 1);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 2), 40);
    srv_groups_txn_complete(gs, 0, 100, 1);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 2), 40);
    /* The other order: A's record first and committed last still loses to nothing newer: A wins over an
     * older plain commit only. */
    CU_ASSERT_EQUAL(txn1(gs, "g", 300, "t", 3, 50), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "g", 400, "t", 3, 60), KP_ERR_NONE);
    srv_groups_txn_complete(gs, 0, 300, 1);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 3), 50);
    srv_groups_txn_complete(gs, 0, 400, 1);
    CU_ASSERT_EQUAL(committed(gs, "g", "t", 3), 60);
    srv_groups_free(gs);
}

static void on_join_ignore(void *ctx, const srv_join_result *r)
{
    (void)ctx;
    (void)r;
}

static void test_checks(void)
{
    srv_groups *gs = new_groups();
    int calls = 0;
    /* An unknown group with a generation: ILLEGAL_GENERATION, and no group is created. */
    srv_txn_commit_req rq = {kp_str_c("gx"), kp_str_c("m"), KP_STR_NULL, 5, 7, 0};
    srv_commit_item it = item("t", 0, 1, NULL);
    srv_group_txn_commit(gs, 0, &rq, 1, &it, done_cb, &calls);
    CU_ASSERT_EQUAL(it.error, KP_ERR_ILLEGAL_GENERATION);
    CU_ASSERT_PTR_NULL(srv_groups_find(gs, kp_str_c("gx")));
    /* An empty group id. */
    CU_ASSERT_EQUAL(txn1(gs, "", 7, "t", 0, 1), KP_ERR_INVALID_GROUP_ID);
    /* Metadata over offset.metadata.max.bytes: that item only. */
    char big[SRV_GROUP_OFFSET_METADATA_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    srv_txn_commit_req ok = {kp_str_c("g"), kp_str_c(""), KP_STR_NULL, -1, 7, 0};
    srv_commit_item two[2] = {item("t", 0, 1, big), item("t", 1, 2, NULL)};
    srv_group_txn_commit(gs, 0, &ok, 2, two, done_cb, &calls);
    CU_ASSERT_EQUAL(two[0].error, KP_ERR_OFFSET_METADATA_TOO_LARGE);
    CU_ASSERT_EQUAL(two[1].error, KP_ERR_NONE);
    CU_ASSERT_FALSE(pending(gs, "g", "t", 0));
    CU_ASSERT(pending(gs, "g", "t", 1));
    /* A failed write answers the coordinator's mapping and keeps nothing pending. */
    g_env.append_error = KP_ERR_NOT_LEADER_OR_FOLLOWER;
    CU_ASSERT_EQUAL(txn1(gs, "g", 8, "t", 2, 3), KP_ERR_NOT_COORDINATOR);
    g_env.append_error = KP_ERR_NONE;
    CU_ASSERT_FALSE(pending(gs, "g", "t", 2));

    /* A classic group with a member (generation 1): the v0-2 shape (no member, generation -1) is taken
     * although the group is not empty; with v3's member fields they are checked. */
    srv_join_protocol proto = {kp_str_c("range"), {(const uint8_t *)"m", 1}};
    srv_join_req jr = {0};
    jr.group_id = kp_str_c("gc");
    jr.member_id = kp_str_c("");
    jr.instance_id = KP_STR_NULL;
    jr.client_id = kp_str_c("cli");
    jr.client_host = kp_str_c("/127.0.0.1");
    jr.protocol_type = kp_str_c("consumer");
    jr.session_timeout_ms = 10000;
    jr.rebalance_timeout_ms = 30000;
    jr.nprotocols = 1;
    jr.protocols = &proto;
    srv_group_join(gs, 0, &jr, on_join_ignore, NULL);
    srv_groups_poll(gs);
    srv_group *g = srv_groups_find(gs, kp_str_c("gc"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->nmembers, 1);
    CU_ASSERT_EQUAL(g->generation, 1);
    /* Completing the rebalance (leader's assignment pending) does not refuse a transactional commit. */
    CU_ASSERT_EQUAL(g->state, SRV_GS_COMPLETING);
    kp_str mid = kp_str_c(g->members[0]->id);
    CU_ASSERT_EQUAL(txn1(gs, "gc", 7, "t", 0, 1), KP_ERR_NONE);
    srv_txn_commit_req m = {kp_str_c("gc"), kp_str_c("nobody"), KP_STR_NULL, 1, 7, 0};
    it = item("t", 0, 2, NULL);
    srv_group_txn_commit(gs, 0, &m, 1, &it, done_cb, &calls);
    CU_ASSERT_EQUAL(it.error, KP_ERR_UNKNOWN_MEMBER_ID);
    m.member_id = mid;
    m.generation = 2;
    it = item("t", 0, 2, NULL);
    srv_group_txn_commit(gs, 0, &m, 1, &it, done_cb, &calls);
    CU_ASSERT_EQUAL(it.error, KP_ERR_ILLEGAL_GENERATION);
    m.generation = 1;
    it = item("t", 0, 2, NULL);
    srv_group_txn_commit(gs, 0, &m, 1, &it, done_cb, &calls);
    CU_ASSERT_EQUAL(it.error, KP_ERR_NONE);
    srv_groups_free(gs);
}

typedef struct chb_out {
    int16_t error;
    char id[64];
    int32_t epoch;
} chb_out;

static void on_chb(void *ctx, const srv_chb_result *r)
{
    chb_out *o = ctx;
    o->error = r->error;
    snprintf(o->id, sizeof(o->id), "%.*s", r->member_id.len > 0 ? r->member_id.len : 0,
             r->member_id.len > 0 ? r->member_id.p : "");
    o->epoch = r->member_epoch;
}

static void test_checks_consumer_group(void)
{
    srv_groups *gs = new_groups();
    static const kp_str subs[1] = {{"t", 1}};
    srv_chb_req hb = {0};
    hb.group_id = kp_str_c("gk");
    hb.member_id = kp_str_c("");
    hb.member_epoch = 0;
    hb.instance_id = KP_STR_NULL;
    hb.rack_id = KP_STR_NULL;
    hb.client_id = kp_str_c("cli");
    hb.client_host = kp_str_c("/127.0.0.1");
    hb.regex = KP_STR_NULL;
    hb.assignor = KP_STR_NULL;
    hb.rebalance_timeout_ms = 30000;
    hb.nsubs = 1;
    hb.subs = subs;
    hb.nowned = 0;
    chb_out o = {0};
    srv_cgroup_heartbeat(gs, 0, &hb, on_chb, &o);
    CU_ASSERT_EQUAL_FATAL(o.error, KP_ERR_NONE);
    CU_ASSERT(o.epoch > 0);
    int calls = 0;
    /* A KIP-848 member: its epoch is checked; a stale one is ILLEGAL_GENERATION (not STALE_MEMBER_EPOCH),
     * and an old version carries no member: UNKNOWN_MEMBER_ID on a group with members. */
    srv_txn_commit_req rq = {kp_str_c("gk"), kp_str_c(o.id), KP_STR_NULL, o.epoch - 1, 7, 0};
    srv_commit_item it = item("t", 0, 1, NULL);
    srv_group_txn_commit(gs, 0, &rq, 1, &it, done_cb, &calls);
    CU_ASSERT_EQUAL(it.error, KP_ERR_ILLEGAL_GENERATION);
    CU_ASSERT_EQUAL(txn1(gs, "gk", 7, "t", 0, 1), KP_ERR_UNKNOWN_MEMBER_ID);
    rq.generation = o.epoch;
    it = item("t", 0, 2, NULL);
    srv_group_txn_commit(gs, 0, &rq, 1, &it, done_cb, &calls);
    CU_ASSERT_EQUAL(it.error, KP_ERR_NONE);
    CU_ASSERT(pending(gs, "gk", "t", 0));
    srv_groups_txn_complete(gs, 0, 7, 1);
    CU_ASSERT_EQUAL(committed(gs, "gk", "t", 0), 2);
    srv_groups_free(gs);
}

static void test_replay(void)
{
    g_env.keep_log = 1;
    srv_groups *gs = new_groups();
    CU_ASSERT_EQUAL(plain1(gs, "g", "t", 0, 1), KP_ERR_NONE);
    /* Producer 7: committed. Producer 8: no marker yet. Producer 9: aborted. Producer 10: a plain commit
     * after its record wins. */
    CU_ASSERT_EQUAL(txn1(gs, "g", 7, "t", 0, 10), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "g", 7, "t", 1, 11), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "g", 8, "t", 2, 12), KP_ERR_NONE);
    log_marker(7, 0, 1);
    srv_groups_txn_complete(gs, 0, 7, 1);
    CU_ASSERT_EQUAL(txn1(gs, "g", 9, "t", 3, 13), KP_ERR_NONE);
    log_marker(9, 0, 0);
    srv_groups_txn_complete(gs, 0, 9, 0);
    CU_ASSERT_EQUAL(txn1(gs, "g", 10, "t", 4, 50), KP_ERR_NONE);
    CU_ASSERT_EQUAL(plain1(gs, "g", "t", 4, 60), KP_ERR_NONE);
    log_marker(10, 0, 1);
    srv_groups_txn_complete(gs, 0, 10, 1);
    /* A group that has nothing but a pending offset. */
    CU_ASSERT_EQUAL(txn1(gs, "only-pending", 8, "t", 0, 70), KP_ERR_NONE);

    srv_groups *gs2 = new_groups();
    CU_ASSERT(fake_group_env_replay(&g_env, gs2) > 0);
    /* The replayed state is the live one. */
    for (int p = 0; p < 5; p++) {
        CU_ASSERT_EQUAL(committed(gs2, "g", "t", p), committed(gs, "g", "t", p));
        CU_ASSERT_EQUAL(pending(gs2, "g", "t", p), pending(gs, "g", "t", p));
    }
    CU_ASSERT_EQUAL(committed(gs2, "g", "t", 0), 10);
    CU_ASSERT_EQUAL(committed(gs2, "g", "t", 1), 11);
    CU_ASSERT_EQUAL(committed(gs2, "g", "t", 2), -1);
    CU_ASSERT(pending(gs2, "g", "t", 2));
    CU_ASSERT_EQUAL(committed(gs2, "g", "t", 3), -1);
    CU_ASSERT_FALSE(pending(gs2, "g", "t", 3));
    CU_ASSERT_EQUAL(committed(gs2, "g", "t", 4), 60);
    CU_ASSERT_PTR_NOT_NULL(srv_groups_find(gs2, kp_str_c("only-pending")));
    CU_ASSERT(pending(gs2, "only-pending", "t", 0));
    /* The coordinator's marker for producer 8 comes after the load. */
    srv_groups_txn_complete(gs2, 0, 8, 1);
    CU_ASSERT_EQUAL(committed(gs2, "g", "t", 2), 12);
    CU_ASSERT_EQUAL(committed(gs2, "only-pending", "t", 0), 70);
    srv_groups_free(gs2);
    srv_groups_free(gs);
    fake_group_env_clear_log(&g_env);
    g_env.keep_log = 0;
}

static void test_delete_and_retention(void)
{
    g_env.keep_log = 1;
    srv_groups *gs = new_groups();
    int16_t err = -1;
    int calls = 0;
    /* DeleteGroups of an empty group with pending offsets: done, and they go (a later COMMIT finds
     * nothing); its log replays to the same. */
    CU_ASSERT_EQUAL(plain1(gs, "gd", "t", 0, 4), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "gd", 7, "t", 0, 40), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "gd", 7, "t", 1, 41), KP_ERR_NONE);
    srv_group_delete(gs, kp_str_c("gd"), &err, done_cb, &calls);
    CU_ASSERT_EQUAL(err, KP_ERR_NONE);
    CU_ASSERT_FALSE(pending(gs, "gd", "t", 0));
    CU_ASSERT_FALSE(pending(gs, "gd", "t", 1));
    srv_groups_txn_complete(gs, 0, 7, 1);
    CU_ASSERT_EQUAL(committed(gs, "gd", "t", 0), -1);
    CU_ASSERT_EQUAL(committed(gs, "gd", "t", 1), -1);
    srv_groups *gs2 = new_groups();
    log_marker(7, 0, 1);
    CU_ASSERT(fake_group_env_replay(&g_env, gs2) > 0);
    CU_ASSERT_EQUAL(committed(gs2, "gd", "t", 0), -1);
    CU_ASSERT_EQUAL(committed(gs2, "gd", "t", 1), -1);
    srv_groups_free(gs2);

    /* OffsetDelete of a pending-only partition: a tombstone that drops it. */
    CU_ASSERT_EQUAL(txn1(gs, "go", 8, "t", 0, 5), KP_ERR_NONE);
    srv_offset_del_item del = {kp_str_c("t"), 0, 0};
    srv_group_delete_offsets(gs, kp_str_c("go"), 1, &del, &err, done_cb, &calls);
    CU_ASSERT_EQUAL(err, KP_ERR_NONE);
    CU_ASSERT_EQUAL(del.error, KP_ERR_NONE);
    CU_ASSERT_FALSE(pending(gs, "go", "t", 0));
    srv_groups_txn_complete(gs, 0, 8, 1);
    CU_ASSERT_EQUAL(committed(gs, "go", "t", 0), -1);

    /* Retention: an offset with a pending one, and a group with pending offsets, stay. */
    CU_ASSERT_EQUAL(plain1(gs, "gr", "t", 0, 1), KP_ERR_NONE);
    CU_ASSERT_EQUAL(plain1(gs, "gr", "t", 1, 2), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "gr", 9, "t", 0, 10), KP_ERR_NONE);
    CU_ASSERT_EQUAL(txn1(gs, "gp", 9, "t", 0, 20), KP_ERR_NONE);
    g_env.now_ms += 8LL * 24 * 3600 * 1000;
    srv_groups_expire_offsets(gs);
    CU_ASSERT_EQUAL(committed(gs, "gr", "t", 0), 1);
    CU_ASSERT_EQUAL(committed(gs, "gr", "t", 1), -1);
    CU_ASSERT_PTR_NOT_NULL(srv_groups_find(gs, kp_str_c("gp")));
    srv_groups_txn_complete(gs, 0, 9, 1);
    CU_ASSERT_EQUAL(committed(gs, "gr", "t", 0), 10);
    CU_ASSERT_EQUAL(committed(gs, "gp", "t", 0), 20);
    srv_groups_free(gs);
    fake_group_env_clear_log(&g_env);
    g_env.keep_log = 0;
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("group_txn", NULL, NULL);
    CU_add_test(s, "pending, commit, abort", test_pending_commit_abort);
    CU_add_test(s, "race with plain commits", test_race_with_plain_commit);
    CU_add_test(s, "checks", test_checks);
    CU_add_test(s, "checks, consumer group", test_checks_consumer_group);
    CU_add_test(s, "replay with markers", test_replay);
    CU_add_test(s, "delete, offset delete, retention", test_delete_and_retention);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_fetch_session.c — unit tests of server/fetch_session.c: session ids
 * stay unique across shards and name their shard (id % shards) for every
 * allowed shard count, and an incremental fetch finds its session on the
 * shard that created it.
 *
 * Owns: the fake brokers and shards it builds on the stack (no threads, no
 * loop, no metadata: requests name no partitions). Must not: start a broker
 * or touch the network or the disk.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fetch_session.h"
#include "kp_messages.h"
#include "kb_test.h"

/* A shard of an nshards broker, enough for fetch_session.c. */
static void fake_shard(srv_broker *b, srv_shard *s, int nshards, int id)
{
    memset(b, 0, sizeof(*b));
    memset(s, 0, sizeof(*s));
    b->nshards = nshards;
    s->b = b;
    s->id = id;
    s->now_ms = 1000;
}

static int32_t open_session(srv_shard *s)
{
    kp_fetch_request rq;
    kp_fetch_request_init(&rq);
    rq.session_id = 0;
    rq.session_epoch = 0;
    srv_fetch_session *fs = NULL;
    int full = 0;
    CU_ASSERT_EQUAL_FATAL(srv_fetch_session_begin(s, &rq, 12, &fs, &full), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fs);
    CU_ASSERT_EQUAL(full, 1);
    return fs->id;
}

/* The next fetch of the session (epoch 1) on the same shard. */
static void continue_session(srv_shard *s, int32_t id)
{
    kp_fetch_request rq;
    kp_fetch_request_init(&rq);
    rq.session_id = id;
    rq.session_epoch = 1;
    srv_fetch_session *fs = NULL;
    int full = 1;
    CU_ASSERT_EQUAL(srv_fetch_session_begin(s, &rq, 12, &fs, &full), 0);
    CU_ASSERT_PTR_NOT_NULL(fs);
    if (fs)
        CU_ASSERT_EQUAL(fs->id, id);
    CU_ASSERT_EQUAL(full, 0);
}

/* Every shard of a 300-shard broker (shards go up to 1024): its sessions
 * continue, their ids are positive and name it, and no two shards hand out
 * the same id. */
static void test_ids_many_shards(void)
{
    enum { NSHARDS = 300, PER_SHARD = 3 };
    static int32_t ids[NSHARDS * PER_SHARD];
    int n = 0;
    for (int id = 0; id < NSHARDS; id++) {
        srv_broker b;
        srv_shard s;
        fake_shard(&b, &s, NSHARDS, id);
        for (int k = 0; k < PER_SHARD; k++) {
            int32_t sid = open_session(&s);
            CU_ASSERT(sid > 0);
            CU_ASSERT_EQUAL(sid % NSHARDS, id);
            CU_ASSERT_EQUAL(srv_fetch_session_shard(NSHARDS, sid), id);
            continue_session(&s, sid);
            ids[n++] = sid;
        }
        srv_fetch_sessions_free(&s);
    }
    int dup = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            dup += ids[i] == ids[j];
    CU_ASSERT_EQUAL(dup, 0);
}

/* The largest allowed count: the last shard's sessions still work. */
static void test_ids_max_shards(void)
{
    srv_broker b;
    srv_shard s;
    fake_shard(&b, &s, 1024, 1023);
    int32_t sid = open_session(&s);
    CU_ASSERT(sid > 0);
    CU_ASSERT_EQUAL(sid % 1024, 1023);
    CU_ASSERT_EQUAL(srv_fetch_session_shard(1024, sid), 1023);
    CU_ASSERT_EQUAL(srv_fetch_session_shard(1024, 0), -1);
    CU_ASSERT_EQUAL(srv_fetch_session_shard(1024, -1), -1);
    continue_session(&s, sid);
    srv_fetch_sessions_free(&s);
}

/* Another shard's id is not found here (the client starts a new session),
 * even when a session of this shard exists. */
static void test_other_shard_id(void)
{
    srv_broker b0, b1;
    srv_shard s0, s1;
    fake_shard(&b0, &s0, 2, 0);
    fake_shard(&b1, &s1, 2, 1);
    int32_t mine = open_session(&s0);
    int32_t theirs = open_session(&s1);
    CU_ASSERT_NOT_EQUAL(mine, theirs);
    kp_fetch_request rq;
    kp_fetch_request_init(&rq);
    rq.session_id = theirs;
    rq.session_epoch = 1;
    srv_fetch_session *fs = NULL;
    int full = 1;
    CU_ASSERT_EQUAL(srv_fetch_session_begin(&s0, &rq, 12, &fs, &full), KP_ERR_FETCH_SESSION_ID_NOT_FOUND);
    CU_ASSERT_PTR_NULL(fs);
    srv_fetch_sessions_free(&s0);
    srv_fetch_sessions_free(&s1);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("fetch_session", NULL, NULL);
    CU_add_test(s, "ids, 300 shards", test_ids_many_shards);
    CU_add_test(s, "ids, 1024 shards", test_ids_max_shards);
    CU_add_test(s, "another shard's id", test_other_shard_id);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

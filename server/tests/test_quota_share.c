/*
 * test_quota_share.c — unit tests of the usage reports between shards
 * (throttle.c: srv_throttle_report / srv_throttle_merge): a client spread
 * over shards is throttled on the sum of their rates with Kafka's formula,
 * request_percentage adds up to one thread's time across shards, a peer's
 * new report replaces its old one, a client that stops is reported once at
 * 0 and then no more, rates only peers reported are dropped when idle, and
 * a rate that grows by an eighth of its bound is reported at once.
 *
 * Owns nothing outside the process. Must not: depend on shards, files or
 * the network (two tables stand for two shards; a fake clock drives them).
 */
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"
#include "quota.h"
#include "throttle.h"

static srv_quota_set *client_quota(const char *client, const char *key, double v)
{
    srv_quota_entity e;
    memset(&e, 0, sizeof(e));
    e.present = 1u << SRV_QE_CLIENT;
    e.name[SRV_QE_CLIENT] = kp_str_c(client);
    srv_quota_op op = {kp_str_c(key), v, 0};
    srv_quota_set *empty = srv_quota_set_new();
    srv_quota_set *q = srv_quota_apply(empty, &e, &op, 1);
    srv_quota_set_unref(empty);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    return q;
}

/* from's report merged into to, as the srv_call of throttle_share.c does. */
static void exchange(srv_throttle *from, int from_id, srv_throttle *to, int npeers, int64_t now)
{
    srv_usage *u = srv_throttle_report(from, 400, now);
    srv_throttle_merge(to, from_id, npeers, u, now);
    free(u);
}

static const kp_str U = {"alice", 5};
static const kp_str C = {"app", 3};

static void test_bytes_summed(void)
{
    /* producer_byte_rate 1000/s; 11 windows of 1 s: a young rate divides by 10 s. */
    srv_quota_set *q = client_quota("app", "producer_byte_rate", 1000);
    srv_throttle *a = srv_throttle_new(11, 1000), *b = srv_throttle_new(11, 1000);
    /* 6000 bytes on each shard: 600/s each, within the quota each alone. */
    CU_ASSERT_EQUAL(srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 6000, 0), 0);
    CU_ASSERT_EQUAL(srv_throttle_record(b, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 6000, 0), 0);
    exchange(b, 1, a, 2, 0);
    exchange(a, 0, b, 2, 0);
    CU_ASSERT_DOUBLE_EQUAL(srv_throttle_peer_rate(a, SRV_QK_PRODUCER_BYTE_RATE, KP_STR_NULL, C), 600, 1e-9);
    /* Broker-wide 1200/s over a 10 s window: Kafka's (1200 - 1000) / 1000 x 10000 ms. */
    CU_ASSERT_EQUAL(srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 0, 0), 2000);
    CU_ASSERT_EQUAL(srv_throttle_record(b, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 0, 0), 2000);
    /* A second report of a peer replaces its first, it does not add to it. */
    CU_ASSERT_EQUAL(srv_throttle_record(b, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 1000, 0), 3000);
    exchange(b, 1, a, 2, 0);
    exchange(b, 1, a, 2, 0);
    CU_ASSERT_DOUBLE_EQUAL(srv_throttle_peer_rate(a, SRV_QK_PRODUCER_BYTE_RATE, KP_STR_NULL, C), 700, 1e-9);
    CU_ASSERT_EQUAL(srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 0, 0), 3000);
    /* Another client id has no quota and is not reported. */
    CU_ASSERT_EQUAL(srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, kp_str_c("other"), 1e9, 0), 0);
    srv_usage *u = srv_throttle_report(a, 400, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(u->n, 1);
    free(u);
    srv_throttle_free(a);
    srv_throttle_free(b);
    srv_quota_set_unref(q);
}

static void test_three_shards(void)
{
    srv_quota_set *q = client_quota("app", "consumer_byte_rate", 1000);
    srv_throttle *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = srv_throttle_new(11, 1000);
        CU_ASSERT_EQUAL(srv_throttle_record(t[i], q, SRV_QK_CONSUMER_BYTE_RATE, U, C, 4000, 0), 0);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                exchange(t[i], i, t[j], 3, 0);
    /* 3 x 400/s = 1200/s broker-wide on every shard. */
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_DOUBLE_EQUAL(srv_throttle_peer_rate(t[i], SRV_QK_CONSUMER_BYTE_RATE, KP_STR_NULL, C), 800,
                               1e-9);
        CU_ASSERT_EQUAL(srv_throttle_record(t[i], q, SRV_QK_CONSUMER_BYTE_RATE, U, C, 0, 0), 2000);
    }
    for (int i = 0; i < 3; i++)
        srv_throttle_free(t[i]);
    srv_quota_set_unref(q);
}

static void test_request_percentage_one_thread(void)
{
    /* request_percentage 100 = one thread's time. 6 s of thread time over the
     * 10 s window on each of two shards: 60 each, 120 broker-wide. */
    srv_quota_set *q = client_quota("app", "request_percentage", 100);
    srv_throttle *a = srv_throttle_new(11, 1000), *b = srv_throttle_new(11, 1000);
    CU_ASSERT_EQUAL(srv_throttle_record(a, q, SRV_QK_REQUEST_PERCENTAGE, U, C, 6.0 * 100, 0), 0);
    CU_ASSERT_EQUAL(srv_throttle_record(b, q, SRV_QK_REQUEST_PERCENTAGE, U, C, 6.0 * 100, 0), 0);
    exchange(b, 1, a, 2, 0);
    CU_ASSERT_EQUAL(srv_throttle_record(a, q, SRV_QK_REQUEST_PERCENTAGE, U, C, 0, 0), 2000);
    /* 4 s each: 80 broker-wide, within one thread. */
    srv_quota_set_unref(q);
    q = client_quota("app", "request_percentage", 100);
    srv_throttle *c = srv_throttle_new(11, 1000), *d = srv_throttle_new(11, 1000);
    CU_ASSERT_EQUAL(srv_throttle_record(c, q, SRV_QK_REQUEST_PERCENTAGE, U, C, 4.0 * 100, 0), 0);
    CU_ASSERT_EQUAL(srv_throttle_record(d, q, SRV_QK_REQUEST_PERCENTAGE, U, C, 4.0 * 100, 0), 0);
    exchange(d, 1, c, 2, 0);
    CU_ASSERT_EQUAL(srv_throttle_record(c, q, SRV_QK_REQUEST_PERCENTAGE, U, C, 0, 0), 0);
    srv_throttle_free(a);
    srv_throttle_free(b);
    srv_throttle_free(c);
    srv_throttle_free(d);
    srv_quota_set_unref(q);
}

static void test_stop_and_idle(void)
{
    srv_quota_set *q = client_quota("app", "producer_byte_rate", 1000);
    srv_throttle *a = srv_throttle_new(11, 1000), *b = srv_throttle_new(11, 1000);
    srv_throttle_record(b, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 9000, 0);
    exchange(b, 1, a, 2, 0);
    CU_ASSERT_EQUAL(srv_throttle_count(a), 1); /* a rate only the peer measures */
    CU_ASSERT_DOUBLE_EQUAL(srv_throttle_peer_rate(a, SRV_QK_PRODUCER_BYTE_RATE, KP_STR_NULL, C), 900, 1e-9);
    /* A new connection on a is throttled at once on the peer's usage. */
    CU_ASSERT_EQUAL(srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 2000, 0), 1000);
    /* b's client stops: once its samples are all older than the span (11 s)
     * its rate is 0, reported once more within the grace... */
    srv_usage *u = srv_throttle_report(b, 400, 11000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(u->n, 1);
    CU_ASSERT_DOUBLE_EQUAL(u->e[0].rate, 0, 1e-9);
    srv_throttle_merge(a, 1, 2, u, 11000);
    free(u);
    CU_ASSERT_DOUBLE_EQUAL(srv_throttle_peer_rate(a, SRV_QK_PRODUCER_BYTE_RATE, KP_STR_NULL, C), 0, 1e-9);
    /* ...and then no more. */
    CU_ASSERT_PTR_NULL(srv_throttle_report(b, 400, 11500));
    /* A rate at 0 for a client this shard never saw is not created. */
    srv_throttle *c = srv_throttle_new(11, 1000);
    u = srv_throttle_report(a, 400, 11000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    srv_throttle_merge(c, 0, 2, u, 11000);
    free(u);
    CU_ASSERT_EQUAL(srv_throttle_count(c), 0);
    /* Idle rates go after an hour, those only peers reported included. */
    srv_throttle *d = srv_throttle_new(11, 1000);
    srv_throttle_record(b, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 9000, 20000);
    exchange(b, 1, d, 2, 20000);
    CU_ASSERT_EQUAL(srv_throttle_count(d), 1);
    srv_throttle_expire(d, 20000 + 3600 * 1000);
    CU_ASSERT_EQUAL(srv_throttle_count(d), 1);
    srv_throttle_expire(d, 20000 + 3600 * 1000 + 1);
    CU_ASSERT_EQUAL(srv_throttle_count(d), 0);
    srv_throttle_free(a);
    srv_throttle_free(b);
    srv_throttle_free(c);
    srv_throttle_free(d);
    srv_quota_set_unref(q);
}

static void test_mutations_not_reported(void)
{
    srv_quota_set *q = client_quota("app", "controller_mutation_rate", 1);
    srv_throttle *a = srv_throttle_new(11, 1000);
    CU_ASSERT_EQUAL(srv_throttle_mutation(a, q, U, C, 5, 0, 0), 0);
    CU_ASSERT_PTR_NULL(srv_throttle_report(a, 400, 0));
    srv_throttle_free(a);
    srv_quota_set_unref(q);
}

static void test_urgent(void)
{
    srv_quota_set *q = client_quota("app", "producer_byte_rate", 1000);
    srv_throttle *a = srv_throttle_new(11, 1000), *b = srv_throttle_new(11, 1000);
    srv_throttle_share(a, 2);
    /* 100/s: not yet an eighth of the bound (125/s) above the last report. */
    srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 1000, 0);
    CU_ASSERT_PTR_NULL(srv_throttle_urgent(a, 0));
    /* 200/s: urgent, reported alone (another client's rate is not in it). */
    srv_throttle_record(a, q, SRV_QK_CONSUMER_BYTE_RATE, U, C, 0, 0);
    srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 1000, 0);
    srv_usage *u = srv_throttle_urgent(a, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(u->n, 1);
    CU_ASSERT_DOUBLE_EQUAL(u->e[0].rate, 200, 1e-9);
    CU_ASSERT_PTR_NULL(srv_throttle_urgent(a, 0)); /* taken */
    /* A copy for another peer stands on its own. */
    srv_usage *c = srv_usage_copy(u);
    free(u);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    srv_throttle_merge(b, 0, 2, c, 0);
    free(c);
    CU_ASSERT_DOUBLE_EQUAL(srv_throttle_peer_rate(b, SRV_QK_PRODUCER_BYTE_RATE, KP_STR_NULL, C), 200, 1e-9);
    /* Counted from the last report: 300/s is not urgent, 400/s is. */
    srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 1000, 0);
    CU_ASSERT_PTR_NULL(srv_throttle_urgent(a, 0));
    srv_throttle_record(a, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 1000, 0);
    u = srv_throttle_urgent(a, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_DOUBLE_EQUAL(u->e[0].rate, 400, 1e-9);
    free(u);
    /* Without peers nothing is urgent. */
    srv_throttle_record(b, q, SRV_QK_PRODUCER_BYTE_RATE, U, C, 1e6, 0);
    CU_ASSERT_PTR_NULL(srv_throttle_urgent(b, 0));
    srv_throttle_free(a);
    srv_throttle_free(b);
    srv_quota_set_unref(q);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("quota share", NULL, NULL);
    CU_add_test(s, "bytes summed over shards", test_bytes_summed);
    CU_add_test(s, "three shards", test_three_shards);
    CU_add_test(s, "request_percentage: one thread in total", test_request_percentage_one_thread);
    CU_add_test(s, "a stopped client, idle rates", test_stop_and_idle);
    CU_add_test(s, "mutations are not reported", test_mutations_not_reported);
    CU_add_test(s, "a burst is reported at once", test_urgent);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

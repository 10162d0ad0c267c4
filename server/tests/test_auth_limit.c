/*
 * test_auth_limit.c — unit tests of the per-address failed-login budget
 * (server/auth_limit.c): its table, without shards or sockets.
 *
 * Owns nothing outside the process. Must not: start shards or use the clock.
 */
#include <stdio.h>
#include <string.h>

#include "auth_limit.h"
#include "kb_test.h"

static int64_t fail_at(srv_authlim *t, const char *host, int64_t now, int delay)
{
    return srv_authlim_reserve(t, host, strlen(host), now, delay);
}

/* Failures of one address at once queue up: delay, 2 delay, 3 delay. */
static void test_one_address_queues(void)
{
    srv_authlim *t = srv_authlim_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(fail_at(t, "10.0.0.7", 1000, 100), 100);
    CU_ASSERT_EQUAL(fail_at(t, "10.0.0.7", 1000, 100), 200);
    CU_ASSERT_EQUAL(fail_at(t, "10.0.0.7", 1010, 100), 290);
    /* Another address is not slowed by that debt. */
    CU_ASSERT_EQUAL(fail_at(t, "10.0.0.8", 1010, 100), 100);
    /* Once the debt is paid the address starts again from one delay. */
    CU_ASSERT_EQUAL(fail_at(t, "10.0.0.7", 5000, 100), 100);
    srv_authlim_free(t);
}

/* A guessing loop that waits for each answer pays one delay per guess, as
 * Kafka's per-connection delay does. */
static void test_sequential_loop(void)
{
    srv_authlim *t = srv_authlim_new();
    int64_t now = 0;
    for (int i = 0; i < 10; i++) {
        int64_t w = fail_at(t, "::1", now, 50);
        CU_ASSERT_EQUAL(w, 50);
        now += w + 1;
    }
    srv_authlim_free(t);
}

/* Many addresses: entries of paid-up addresses are reused, and a table full
 * of addresses in debt answers -1 (the caller falls back to one delay). */
static void test_full_table(void)
{
    srv_authlim *t = srv_authlim_new();
    char host[32];
    int full = 0;
    for (int i = 0; i < SRV_AUTHLIM_SLOTS * 2; i++) {
        snprintf(host, sizeof(host), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        if (fail_at(t, host, 0, 1000) < 0)
            full++;
    }
    CU_ASSERT(full >= SRV_AUTHLIM_SLOTS);
    /* Later, every entry is expired: all addresses fit again. */
    for (int i = 0; i < SRV_AUTHLIM_SLOTS / 2; i++) {
        snprintf(host, sizeof(host), "172.16.%d.%d", (i >> 8) & 255, i & 255);
        CU_ASSERT_EQUAL(fail_at(t, host, 5000, 1000), 1000);
    }
    srv_authlim_free(t);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("auth_limit", NULL, NULL);
    CU_add_test(s, "one_address_queues", test_one_address_queues);
    CU_add_test(s, "sequential_loop", test_sequential_loop);
    CU_add_test(s, "full_table", test_full_table);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};

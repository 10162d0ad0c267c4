/*
 * test_txn_guard.c — unit tests of the verification guard (KIP-890 part 1,
 * txn_part.h srv_txn_guard_*): a batch verified before a marker of its
 * producer was written is refused, one verified after is taken, other
 * producers are not affected, and what the table forgets (TTL) it refuses
 * instead of taking. compat-tests/py/test_txn_guard.py checks the same race
 * on the wire.
 *
 * Owns: nothing outside the process. Must not: start shards or touch disk.
 */
#include "kb_test.h"
#include "txn_part.h"

#define SEC (1000LL * 1000 * 1000)

static void test_marker_after_verification(void)
{
    srv_txn_guards g = {0};
    int64_t verify = 100 * SEC;
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 7, verify, verify + 1), SRV_TXN_GUARD_OK);
    srv_txn_guard_marker(&g, 7, verify + 5);
    /* The race the guard closes: verified, then the markers, then the append. */
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 7, verify, verify + 10), SRV_TXN_GUARD_STALE);
    /* The same producer's next transaction, verified after the marker. */
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 7, verify + 6, verify + 10), SRV_TXN_GUARD_OK);
    /* A tie cannot be ordered: refused. */
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 7, verify + 5, verify + 10), SRV_TXN_GUARD_STALE);
    /* Another producer's marker says nothing about this one. */
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 8, verify, verify + 10), SRV_TXN_GUARD_OK);
    srv_txn_guards_free(&g);
}

static void test_marker_before_verification(void)
{
    srv_txn_guards g = {0};
    srv_txn_guard_marker(&g, 7, 50 * SEC);
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 7, 51 * SEC, 52 * SEC), SRV_TXN_GUARD_OK);
    srv_txn_guard_marker(&g, 7, 53 * SEC); /* a later marker moves the entry */
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 7, 51 * SEC, 54 * SEC), SRV_TXN_GUARD_STALE);
    CU_ASSERT_EQUAL(g.n, 1);
    srv_txn_guards_free(&g);
}

static void test_ttl(void)
{
    srv_txn_guards g = {0};
    for (int64_t pid = 1; pid <= 100; pid++)
        srv_txn_guard_marker(&g, pid, 10 * SEC + pid);
    CU_ASSERT_EQUAL(g.n, 100);
    /* A marker past the TTL of the others drops them from the table... */
    int64_t later = 10 * SEC + SRV_TXN_GUARD_TTL_NS + 1000;
    srv_txn_guard_marker(&g, 500, later);
    CU_ASSERT_EQUAL(g.n, 1);
    /* ...so a verification from their time must not be taken: it is refused
     * as too old, whatever the table says. */
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 3, 10 * SEC, later), SRV_TXN_GUARD_EXPIRED);
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 3, later - 10, later), SRV_TXN_GUARD_OK);
    CU_ASSERT_EQUAL(srv_txn_guard_check(&g, 500, later - 10, later), SRV_TXN_GUARD_STALE);
    srv_txn_guards_free(&g);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("txn_guard", NULL, NULL);
    CU_add_test(s, "a marker after the verification refuses the batch", test_marker_after_verification);
    CU_add_test(s, "a marker before the verification does not", test_marker_before_verification);
    CU_add_test(s, "entries past the TTL: old verifications refused", test_ttl);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};

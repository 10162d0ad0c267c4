/*
 * test_txn_toc_verify.c — unit tests of TxnOffsetCommit's answers when the
 * transaction coordinator refuses to verify the group's __consumer_offsets
 * partition (KIP-890 part 1, txn_coord.c srv_txn_offset_commit_error), as
 * Apache Kafka 4.4.0 answers them for v0-4 (compat-tests/py/
 * test_txn_offsets.py checks the same codes on the wire against Kafka).
 *
 * Owns: nothing outside the process. Must not: start shards or touch disk.
 */
#include "errors.h"
#include "kb_test.h"
#include "txn_coord.h"

static void test_not_in_transaction(void)
{
    for (int16_t v = 0; v <= 3; v++)
        CU_ASSERT_EQUAL(srv_txn_offset_commit_error(KP_ERR_TRANSACTION_ABORTABLE, v),
                        KP_ERR_INVALID_TXN_STATE);
    CU_ASSERT_EQUAL(srv_txn_offset_commit_error(KP_ERR_TRANSACTION_ABORTABLE, 4),
                    KP_ERR_TRANSACTION_ABORTABLE);
}

static void test_producer_errors(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        CU_ASSERT_EQUAL(srv_txn_offset_commit_error(KP_ERR_PRODUCER_FENCED, v),
                        KP_ERR_INVALID_PRODUCER_EPOCH);
        CU_ASSERT_EQUAL(srv_txn_offset_commit_error(KP_ERR_INVALID_PRODUCER_ID_MAPPING, v),
                        KP_ERR_INVALID_PRODUCER_ID_MAPPING);
        CU_ASSERT_EQUAL(srv_txn_offset_commit_error(KP_ERR_NONE, v), KP_ERR_NONE);
    }
}

static void test_coordinator_not_ready(void)
{
    /* Retriable for the producer, as Kafka's group coordinator maps them. */
    const int16_t busy[] = {KP_ERR_NOT_COORDINATOR, KP_ERR_COORDINATOR_NOT_AVAILABLE,
                            KP_ERR_COORDINATOR_LOAD_IN_PROGRESS, KP_ERR_CONCURRENT_TRANSACTIONS};
    for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
        CU_ASSERT_EQUAL(srv_txn_offset_commit_error(busy[i], 3), KP_ERR_COORDINATOR_NOT_AVAILABLE);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("txn_toc_verify", NULL, NULL);
    CU_add_test(s, "not in the transaction, by version", test_not_in_transaction);
    CU_add_test(s, "producer id and epoch", test_producer_errors);
    CU_add_test(s, "coordinator not ready", test_coordinator_not_ready);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};

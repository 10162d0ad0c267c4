/*
 * test_txn_coord.c — unit tests of the pure parts of server/txn_coord.c:
 * the answers of old request versions (PRODUCER_FENCED below each API's
 * first version that knows it, KafkaApis) and a Produce's answer for a
 * partition the coordinator did not verify (KIP-890 part 1), both as Apache
 * Kafka 4.4.0 answers them (compat-tests/py/test_txn_coordinator.py checks
 * the same codes on the wire against Kafka); and the routing of ids to
 * __transaction_state partitions (Kafka's abs(String.hashCode) % n).
 *
 * Owns: nothing outside the process. Must not: start shards or touch disk.
 */
#include <string.h>

#include "errors.h"
#include "group/group.h"
#include "kb_test.h"
#include "txn_coord.h"

static void test_fenced_by_version(void)
{
    /* InitProducerId learned PRODUCER_FENCED in v4, the others in v2. */
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_PRODUCER_FENCED, 3, 4), KP_ERR_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_PRODUCER_FENCED, 4, 4), KP_ERR_PRODUCER_FENCED);
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_PRODUCER_FENCED, 0, 2), KP_ERR_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_PRODUCER_FENCED, 1, 2), KP_ERR_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_PRODUCER_FENCED, 2, 2), KP_ERR_PRODUCER_FENCED);
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_PRODUCER_FENCED, 5, 2), KP_ERR_PRODUCER_FENCED);
    /* Every other error passes through, in every version. */
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_INVALID_TXN_STATE, 0, 2), KP_ERR_INVALID_TXN_STATE);
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_CONCURRENT_TRANSACTIONS, 0, 4), KP_ERR_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(srv_txn_map_fenced(KP_ERR_NONE, 0, 4), KP_ERR_NONE);
}

static void test_produce_error(void)
{
    const char *msg = "x";
    CU_ASSERT_EQUAL(srv_txn_produce_error(KP_ERR_NONE, 3, &msg), KP_ERR_NONE);
    CU_ASSERT_PTR_NULL(msg);
    CU_ASSERT_EQUAL(srv_txn_produce_error(KP_ERR_TRANSACTION_ABORTABLE, 3, &msg), KP_ERR_INVALID_TXN_STATE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_STRING_EQUAL(msg, "Partition was not added to the transaction");
    CU_ASSERT_EQUAL(srv_txn_produce_error(KP_ERR_TRANSACTION_ABORTABLE, 10, &msg), KP_ERR_INVALID_TXN_STATE);
    CU_ASSERT_EQUAL(srv_txn_produce_error(KP_ERR_TRANSACTION_ABORTABLE, 11, &msg),
                    KP_ERR_TRANSACTION_ABORTABLE);
    CU_ASSERT_PTR_NULL(msg);
    CU_ASSERT_EQUAL(srv_txn_produce_error(KP_ERR_PRODUCER_FENCED, 9, &msg), KP_ERR_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(srv_txn_produce_error(KP_ERR_INVALID_PRODUCER_ID_MAPPING, 9, &msg),
                    KP_ERR_INVALID_PRODUCER_ID_MAPPING);
    const int16_t retriable[] = {KP_ERR_NOT_COORDINATOR, KP_ERR_COORDINATOR_NOT_AVAILABLE,
                                 KP_ERR_COORDINATOR_LOAD_IN_PROGRESS, KP_ERR_CONCURRENT_TRANSACTIONS};
    for (size_t i = 0; i < sizeof(retriable) / sizeof(retriable[0]); i++)
        CU_ASSERT_EQUAL(srv_txn_produce_error(retriable[i], 9, &msg), KP_ERR_NOT_ENOUGH_REPLICAS);
}

static void test_routing(void)
{
    /* Java: "txn-1".hashCode() = 110810510, % 50 = 10;
     * "my-transactional-id".hashCode() = -959806496, abs % 50 = 46; "" = 0.
     * The coordinator's shard is the owner of that partition. */
    CU_ASSERT_EQUAL(srv_group_partition_for(kp_str_c("txn-1"), 50), 10);
    CU_ASSERT_EQUAL(srv_group_partition_for(kp_str_c("my-transactional-id"), 50), 46);
    CU_ASSERT_EQUAL(srv_group_partition_for(kp_str_c(""), 50), 0);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("txn_coord", NULL, NULL);
    CU_add_test(s, "PRODUCER_FENCED by request version", test_fenced_by_version);
    CU_add_test(s, "produce answers of the verification", test_produce_error);
    CU_add_test(s, "transactional id to partition", test_routing);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};

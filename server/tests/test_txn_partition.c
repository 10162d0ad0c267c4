/*
 * test_txn_partition.c — unit tests of server/txn_part.c: where the batches
 * a read returned end (the upper bound of the aborted-transaction list a
 * read_committed fetch answers) and how READ_COMMITTED bounds a ListOffsets
 * answer by the last stable offset, as Kafka 4.4 answers them.
 *
 * Owns: the batches it builds in memory. Must not: start a broker or touch
 * the network or the disk.
 */
#include <string.h>

#include "batch.h"
#include "codec.h"
#include "kb_test.h"
#include "txn_part.h"

/* Appends a data batch of n records at base to w. */
static void add_batch(kp_writer *w, int64_t base, int n, int transactional)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, base, KP_CODEC_NONE);
    kp_batch_builder_set_producer(&bb, 7, 0, 0, transactional);
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL_FATAL(kp_batch_builder_add(&bb, 1000 + i, (kp_bytes){NULL, -1},
                                                   (kp_bytes){(const uint8_t *)"v", 1}, NULL, 0),
                              0);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, w), 0);
    kp_batch_builder_free(&bb);
}

static void test_batches_end(void)
{
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL(srv_txn_batches_end(NULL, 0), -1);
    CU_ASSERT_EQUAL(srv_txn_batches_end((const uint8_t *)"", 0), -1);
    add_batch(&w, 10, 3, 1); /* 10-12 */
    CU_ASSERT_EQUAL(srv_txn_batches_end(w.buf, w.len), 13);
    CU_ASSERT_EQUAL_FATAL(kp_batch_build_control(&w, 13, 7, 0, 0, 4, 2000), 0); /* the ABORT marker at 13 */
    CU_ASSERT_EQUAL(srv_txn_batches_end(w.buf, w.len), 14);
    size_t two = w.len;
    add_batch(&w, 14, 5, 0); /* 14-18 */
    CU_ASSERT_EQUAL(srv_txn_batches_end(w.buf, w.len), 19);
    /* A read cut inside the last batch: only whole batches count. */
    CU_ASSERT_EQUAL(srv_txn_batches_end(w.buf, w.len - 1), 14);
    CU_ASSERT_EQUAL(srv_txn_batches_end(w.buf, two + 20), 14);
    CU_ASSERT_EQUAL(srv_txn_batches_end(w.buf, 30), -1);
    kp_writer_free(&w);
}

static void bound(int64_t req_ts, int64_t lso, int64_t offset, int64_t ts, int64_t want_offset,
                  int64_t want_ts)
{
    srv_txn_bound_list_offset(req_ts, lso, &offset, &ts);
    CU_ASSERT_EQUAL(offset, want_offset);
    CU_ASSERT_EQUAL(ts, want_ts);
}

static void test_bound_list_offset(void)
{
    /* LATEST (-1): the LSO, whatever the HW answer was; no timestamp. */
    bound(-1, 2, 6, -1, 2, -1);
    bound(-1, 6, 6, -1, 6, -1);
    /* EARLIEST (-2): the log start, even at or past the LSO (an empty stable prefix). */
    bound(-2, 0, 0, -1, 0, -1);
    bound(-2, 3, 5, -1, 5, -1);
    /* A timestamp search: kept below the LSO, nothing at or past it. */
    bound(1700000000050, 2, 1, 1700000000100, 1, 1700000000100);
    bound(1700000000050, 2, 2, 1700000000100, -1, -1);
    bound(1700000000050, 2, 3, 1700000000100, -1, -1);
    /* Nothing found stays nothing. */
    bound(1700000000050, 2, -1, -1, -1, -1);
    /* MAX_TIMESTAMP (-3): the same bound. */
    bound(-3, 4, 3, 1700000000200, 3, 1700000000200);
    bound(-3, 4, 4, 1700000000200, -1, -1);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("txn_partition", NULL, NULL);
    CU_add_test(s, "end of the returned batches", test_batches_end);
    CU_add_test(s, "ListOffsets bounded by the LSO", test_bound_list_offset);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

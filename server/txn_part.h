/*
 * txn_part.h — pure rules of a partition leader's transaction answers
 * (issue 16, partition side) that the Fetch and ListOffsets handlers share
 * with their unit tests: where the returned batches end (the upper bound of
 * Kafka's collectAbortedTransactions) and how READ_COMMITTED bounds a
 * ListOffsets answer by the last stable offset.
 *
 * Owns nothing. Must not: touch a log, a shard or the network.
 */
#ifndef SRV_TXN_PART_H
#define SRV_TXN_PART_H

#include <stddef.h>
#include <stdint.h>

/* One past the last offset of the whole magic-2 batches at the start of
 * data (what a read returned), -1 when there is none. A truncated last batch
 * does not count. */
int64_t srv_txn_batches_end(const uint8_t *data, size_t len);

/* ListOffsets at READ_COMMITTED (Kafka's Partition.fetchOffsetForTimestamp):
 * given the request's timestamp (-1 latest, -2 earliest, -3 max timestamp,
 * else a time) and the unbounded answer in *offset / *timestamp, applies the
 * last stable offset: LATEST becomes the LSO, a search that found an offset
 * at or past it finds nothing (-1, -1), EARLIEST is left as is. */
void srv_txn_bound_list_offset(int64_t req_ts, int64_t lso, int64_t *offset, int64_t *timestamp);

#endif

/*
 * txn_part.h — pure rules of a partition leader's transaction answers
 * (issue 16, partition side) that the Fetch and ListOffsets handlers share
 * with their unit tests: where the returned batches end (the upper bound of
 * Kafka's collectAbortedTransactions) and how READ_COMMITTED bounds a
 * ListOffsets answer by the last stable offset; and the verification guard
 * (KIP-890 part 1) a partition's owner keeps for Produce.
 *
 * Owns a partition's guard table (srv_txn_guards), nothing else. Must not: touch a log, a shard or the
 * network.
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

/* The verification guard (Kafka's VerificationGuard, KIP-890 part 1). A
 * transactional batch is verified with the coordinator from the request's
 * shard, then appended on the partition's owner: a marker for its producer
 * written in between (its transaction ended, or a v2 marker bumped the epoch)
 * means the verification vouches for a transaction that is over, and
 * appending would open a new one no coordinator knows (a hanging
 * transaction). Kafka puts a guard object in the producer's entry before
 * verifying; here the verification's start time (monotonic, one clock for all
 * shards) is the guard and the owner remembers when it last wrote a marker
 * for each producer: no extra round trip to the owner before verifying.
 * Entries older than SRV_TXN_GUARD_TTL_NS are dropped, so a verification that
 * took longer than that cannot be judged and is refused (retriable). */
#define SRV_TXN_GUARD_TTL_NS (30LL * 1000 * 1000 * 1000)

typedef struct srv_txn_guard_entry {
    int64_t producer_id;
    int64_t marker_ns; /* when the owner last appended a marker for it */
} srv_txn_guard_entry;

typedef struct srv_txn_guards {
    srv_txn_guard_entry *e;
    size_t n, cap;
    int64_t all_ns; /* out of memory once: every producer counts as marked then */
} srv_txn_guards;

typedef enum {
    SRV_TXN_GUARD_OK = 0,
    SRV_TXN_GUARD_STALE,   /* a marker came after the verification started */
    SRV_TXN_GUARD_EXPIRED, /* the verification is older than the table remembers */
} srv_txn_guard_result;

/* The owner is about to append a marker for producer_id (call before the
 * append: anything the owner appends later is behind the marker). */
void srv_txn_guard_marker(srv_txn_guards *g, int64_t producer_id, int64_t now_ns);

/* Whether a batch of producer_id whose verification started at verify_ns may
 * be appended now. */
srv_txn_guard_result srv_txn_guard_check(const srv_txn_guards *g, int64_t producer_id, int64_t verify_ns,
                                         int64_t now_ns);

void srv_txn_guards_free(srv_txn_guards *g);

#endif

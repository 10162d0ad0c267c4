/*
 * txn_replay.h — the transactional ids of one __transaction_state partition
 * (a map from id to srv_txn_meta) and how reading that partition's records
 * in order rebuilds it at start: a value replaces the id's metadata, a
 * tombstone removes it, as Kafka's TransactionStateManager loads a partition.
 *
 * Owns the map and the metadata in it. Must not: decide transitions
 * (txn_state.c), parse bytes (txn_log.c) or read the log (the caller feeds
 * the records of the partition in offset order).
 */
#ifndef SRV_TXN_REPLAY_H
#define SRV_TXN_REPLAY_H

#include <stddef.h>

#include "txn_state.h"

typedef struct srv_txn_entry srv_txn_entry;
typedef struct srv_txn_map {
    srv_txn_entry **buckets;
    size_t nbuckets;
    size_t count;
} srv_txn_map;

void srv_txn_map_init(srv_txn_map *map);
void srv_txn_map_free(srv_txn_map *map); /* frees every metadata */
srv_txn_meta *srv_txn_map_get(const srv_txn_map *map, const char *id, int32_t id_len);
/* Puts m (the map owns it; an existing entry of the same id is freed); 0 or -1 (no memory, m not taken). */
int srv_txn_map_put(srv_txn_map *map, srv_txn_meta *m);
void srv_txn_map_remove(srv_txn_map *map, const char *id, int32_t id_len);
/* Calls fn for every metadata, in no particular order; fn must not change the map. */
void srv_txn_map_each(const srv_txn_map *map, void (*fn)(srv_txn_meta *m, void *arg), void *arg);

/* Applies one record of the partition (raw key and value; value NULL with
 * vlen < 0 is a tombstone). Returns a SRV_TXN_LOG_* code: a record of
 * another type is skipped (E_KEY_VERSION), a malformed one is refused and
 * changes nothing. */
int srv_txn_replay_record(srv_txn_map *map, const uint8_t *key, int32_t klen, const uint8_t *value,
                          int32_t vlen);

#endif

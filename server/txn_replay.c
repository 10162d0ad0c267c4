/*
 * txn_replay.c — the map of transactional ids and the replay of
 * __transaction_state records into it.
 *
 * Owns the map's memory. Must not: apply a record half-way (a record is
 * decoded whole first), or resume anything itself: after the load the
 * caller asks srv_txn_markers_owed of each id and re-sends the markers of
 * the Prepare* ones, then completes them (Kafka's loadTransactionsForTxnTopicPartition).
 */
#include "txn_replay.h"

#include <stdlib.h>
#include <string.h>

struct srv_txn_entry {
    srv_txn_entry *next;
    uint64_t hash;
    srv_txn_meta *meta;
};

static uint64_t hash_id(const char *id, int32_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int32_t i = 0; i < len; i++) {
        h ^= (uint8_t)id[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void srv_txn_map_init(srv_txn_map *map)
{
    memset(map, 0, sizeof(*map));
}

void srv_txn_map_free(srv_txn_map *map)
{
    for (size_t b = 0; b < map->nbuckets; b++) {
        srv_txn_entry *e = map->buckets[b];
        while (e) {
            srv_txn_entry *n = e->next;
            srv_txn_meta_free(e->meta);
            free(e);
            e = n;
        }
    }
    free(map->buckets);
    srv_txn_map_init(map);
}

static srv_txn_entry **find(const srv_txn_map *map, const char *id, int32_t id_len, uint64_t h)
{
    if (!map->nbuckets)
        return NULL;
    srv_txn_entry **pp = &map->buckets[h % map->nbuckets];
    for (; *pp; pp = &(*pp)->next) {
        const srv_txn_meta *m = (*pp)->meta;
        if ((*pp)->hash == h && m->id_len == id_len && memcmp(m->txn_id, id, (size_t)id_len) == 0)
            return pp;
    }
    return pp;
}

srv_txn_meta *srv_txn_map_get(const srv_txn_map *map, const char *id, int32_t id_len)
{
    srv_txn_entry **pp = find(map, id, id_len, hash_id(id, id_len));
    return pp && *pp ? (*pp)->meta : NULL;
}

static int grow(srv_txn_map *map)
{
    size_t nb = map->nbuckets ? map->nbuckets * 2 : 16;
    srv_txn_entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < map->nbuckets; i++) {
        srv_txn_entry *e = map->buckets[i];
        while (e) {
            srv_txn_entry *n = e->next;
            e->next = b[e->hash % nb];
            b[e->hash % nb] = e;
            e = n;
        }
    }
    free(map->buckets);
    map->buckets = b;
    map->nbuckets = nb;
    return 0;
}

int srv_txn_map_put(srv_txn_map *map, srv_txn_meta *m)
{
    uint64_t h = hash_id(m->txn_id, m->id_len);
    srv_txn_entry **pp = find(map, m->txn_id, m->id_len, h);
    if (pp && *pp) {
        if ((*pp)->meta != m)
            srv_txn_meta_free((*pp)->meta);
        (*pp)->meta = m;
        return 0;
    }
    if (map->count + 1 > map->nbuckets && grow(map))
        return -1;
    srv_txn_entry *e = malloc(sizeof(*e));
    if (!e)
        return -1;
    e->hash = h;
    e->meta = m;
    e->next = map->buckets[h % map->nbuckets];
    map->buckets[h % map->nbuckets] = e;
    map->count++;
    return 0;
}

void srv_txn_map_remove(srv_txn_map *map, const char *id, int32_t id_len)
{
    srv_txn_entry **pp = find(map, id, id_len, hash_id(id, id_len));
    if (!pp || !*pp)
        return;
    srv_txn_entry *e = *pp;
    *pp = e->next;
    srv_txn_meta_free(e->meta);
    free(e);
    map->count--;
}

void srv_txn_map_each(const srv_txn_map *map, void (*fn)(srv_txn_meta *m, void *arg), void *arg)
{
    for (size_t b = 0; b < map->nbuckets; b++)
        for (srv_txn_entry *e = map->buckets[b]; e; e = e->next)
            fn(e->meta, arg);
}

int srv_txn_replay_record(srv_txn_map *map, const uint8_t *key, int32_t klen, const uint8_t *value,
                          int32_t vlen)
{
    srv_txn_logrec r;
    int rc = srv_txn_log_decode(key, klen, value, vlen, &r);
    if (rc == SRV_TXN_LOG_OK) {
        if (r.tombstone) {
            srv_txn_map_remove(map, r.txn_id, r.id_len);
        } else {
            srv_txn_meta *m = srv_txn_meta_from_image(r.txn_id, r.id_len, &r.img);
            if (!m || srv_txn_map_put(map, m)) {
                srv_txn_meta_free(m);
                rc = SRV_TXN_LOG_E_NOMEM;
            }
        }
    }
    srv_txn_logrec_clear(&r);
    return rc;
}

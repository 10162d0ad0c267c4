/*
 * share_state.h — the records of __share_group_state in Kafka 4.4's shape,
 * and the replay of them into the state of each share-partition.
 *
 * A key is the int16 record type (0 ShareSnapshot, 1 ShareUpdate) then
 * ShareSnapshotKey / ShareUpdateKey v0 (group id, topic id, partition); a
 * value is the int16 version 0 then ShareSnapshotValue / ShareUpdateValue
 * (flexible). A snapshot is a share-partition's whole state; an update holds
 * a start offset (-1: unchanged) and the state batches that changed, merged
 * over the state before it, as Kafka's ShareCoordinatorShard does.
 *
 * Owns the byte layout of those records (no other file writes or parses
 * them), the persisted image of one share-partition (srv_ss_image), the
 * replay map and the choice of a share-partition's state partition (Kafka's
 * "group:topicId:partition" hash).
 * Must not: touch a log, a shard or a clock (pure: unit-tested in
 * tests/test_share_state.c), or apply a record half-way (decoded whole first,
 * every length bounds-checked).
 */
#ifndef SRV_SHARE_STATE_H
#define SRV_SHARE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define SRV_SHARE_STATE_TOPIC "__share_group_state"

enum { SRV_SS_SNAPSHOT = 0, SRV_SS_UPDATE = 1 };

/* Delivery states as persisted: Kafka never persists Acquired. */
enum { SRV_SS_AVAILABLE = 0, SRV_SS_ACKNOWLEDGED = 2, SRV_SS_ARCHIVED = 4 };

typedef struct srv_ss_batch {
    int64_t first, last;
    int8_t state;
    int16_t delivery;
} srv_ss_batch;

/* A share-partition's persisted state; batches are heap, sorted, disjoint. */
typedef struct srv_ss_image {
    int32_t snapshot_epoch;
    int32_t state_epoch;
    int32_t leader_epoch;
    int64_t start;             /* an update's -1: unchanged */
    int32_t delivery_complete; /* tagged; -1 unknown */
    int64_t create_ts, write_ts;
    srv_ss_batch *batches;
    int32_t nbatches;
} srv_ss_image;

void srv_ss_image_clear(srv_ss_image *img);

/* The state partition of (group, topic, partition) among nparts: Kafka's
 * Utils.abs(("group:" + topicId base64 + ":" + partition).hashCode()) % n. */
int32_t srv_ss_partition_for(kp_str group_id, const kp_uuid *topic, int32_t partition, int32_t nparts);

/* Key bytes (type + key v0) and value bytes (version 0 + value) into w;
 * 0 or a KP_E_* code. An update writes img->start as given (-1 allowed). */
int srv_ss_key(kp_writer *w, int type, kp_str group_id, const kp_uuid *topic, int32_t partition);
int srv_ss_value(kp_writer *w, int type, const srv_ss_image *img);

enum {
    SRV_SS_OK = 0,
    SRV_SS_E_TYPE = 1,      /* not a share record type: skipped */
    SRV_SS_E_VERSION = 2,   /* a value version newer than 0 */
    SRV_SS_E_MALFORMED = 3, /* short, overlong or inconsistent bytes */
    SRV_SS_E_NOMEM = 4,
};

/* One decoded record. A null value (tombstone) has tombstone set. */
typedef struct srv_ss_rec {
    int type;
    char *group; /* heap, NUL after group_len bytes */
    int32_t group_len;
    kp_uuid topic;
    int32_t partition;
    bool tombstone;
    srv_ss_image img;
} srv_ss_rec;

int srv_ss_decode(const uint8_t *key, int32_t klen, const uint8_t *value, int32_t vlen, srv_ss_rec *out);
void srv_ss_rec_clear(srv_ss_rec *r);

/* Merges an update into a state: its start offset (unless -1) replaces the
 * state's, its batches replace what they cover, and batches below the start
 * offset are dropped. 0, or -1 when memory ran out (state unchanged). */
int srv_ss_merge(srv_ss_image *state, const srv_ss_image *update);

/* ---- the replay map: every share-partition of the partitions read ------- */

typedef struct srv_ss_entry {
    struct srv_ss_entry *next;
    char *group;
    int32_t group_len;
    kp_uuid topic;
    int32_t partition;
    int32_t updates;     /* updates since the last snapshot */
    int64_t snap_offset; /* offset of its latest snapshot (-1: none seen) */
    srv_ss_image img;
} srv_ss_entry;

typedef struct srv_ss_map {
    srv_ss_entry **buckets;
    size_t nbuckets, count;
    int failed; /* srv_ss_track ran out of memory: never prune */
} srv_ss_map;

void srv_ss_map_init(srv_ss_map *m);
void srv_ss_map_free(srv_ss_map *m);
srv_ss_entry *srv_ss_map_get(const srv_ss_map *m, kp_str group, const kp_uuid *topic, int32_t partition);
void srv_ss_map_each(const srv_ss_map *m, void (*fn)(srv_ss_entry *e, void *arg), void *arg);

/* Applies the record at offset, in log order: a snapshot replaces the entry
 * (and is where its state starts now), an update is merged into it (an
 * update before any snapshot starts from an empty state), a tombstone
 * removes it. A SRV_SS_* code; a bad record changes nothing. */
int srv_ss_replay(srv_ss_map *m, int64_t offset, const uint8_t *key, int32_t klen, const uint8_t *value,
                  int32_t vlen);

/* The pruning of one state partition: a map whose entries only say where
 * each share-partition's latest snapshot is (images unused). */
/* Notes a record written at offset: a snapshot moves its share-partition's
 * snapshot offset (an update of one not seen yet pins offset). 0, or -1 when
 * memory ran out (then nothing may be pruned: srv_ss_prune_point says -1). */
int srv_ss_track(srv_ss_map *m, kp_str group, const kp_uuid *topic, int32_t partition, int type,
                 int64_t offset);
/* Forgets a share-partition whose tombstone is durable: it needs no record
 * any more, so it no longer holds the prune point back. */
void srv_ss_untrack(srv_ss_map *m, kp_str group, const kp_uuid *topic, int32_t partition);
/* The offset below which no share-partition of m needs a record any more:
 * the smallest of their latest-snapshot offsets; -1 when there is none. */
int64_t srv_ss_prune_point(const srv_ss_map *m);

#endif

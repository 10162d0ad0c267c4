/*
 * share_coord.h — the share coordinator wired into the shards: the
 * `__share_group_state` topic (created through the controller when share
 * groups are first used), the state records written for a share-partition
 * before the answer that depends on them, and the start-up replay that puts
 * every share-partition's state back on its group's coordinator shard.
 *
 * A share-partition's state lives with its group (share_group.c) on the
 * group's coordinator shard; its records go to the state partition Kafka
 * would choose ("group:topicId:partition" hash), whose owner may be another
 * shard: a partition op (partcall.h) from the coordinator shard, so that the
 * records of one share-partition are appended in the order they were made.
 *
 * A state partition is pruned as Kafka's share coordinator does it: below the
 * oldest latest-snapshot of the share-partitions written to it nothing is
 * needed any more (its owner shard tracks where each one's latest snapshot is).
 *
 * Owns the per-shard share-group store creation, the persist jobs and the
 * prune trackers. Must
 * not: decide share-partition states (share_partition.c), parse or build
 * record bytes itself (share_state.c), or block a loop (the only blocking
 * reads are the start-up load, before the loops run).
 */
#ifndef SRV_SHARE_COORD_H
#define SRV_SHARE_COORD_H

#include "broker.h"
#include "share_group.h"

/* The shard's share groups, created on first use with the broker's configs. */
srv_share_groups *srv_share_store(srv_shard *s);

/* 0 when __share_group_state exists; else asks the controller to create it
 * (Kafka 4.4's configs: delete, retention.ms=-1) and returns
 * COORDINATOR_NOT_AVAILABLE. */
int16_t srv_share_state_ready(srv_shard *s);

/* Writes the state of the share-partitions tps[0..n) of group (on shard s, the
 * group's coordinator, which must hold them initialised; others are skipped)
 * and calls done(s, arg) once every record is durable or failed; errs[i] gets
 * the Kafka error of tps[i] (0 when written). A ShareSnapshot the first time
 * and after share.coordinator.snapshot.update.records.per.snapshot updates,
 * else a ShareUpdate. done may run before this returns when there is nothing
 * to write. */
void srv_share_persist(srv_shard *s, kp_str group, const srv_share_tp *tps, int n, int16_t *errs,
                       void (*done)(srv_shard *s, void *arg), void *arg);

/* Writes a tombstone (ShareSnapshot key, null value) for each of tps[0..n)
 * of group, which DeleteGroups, DeleteShareGroupOffsets or a reset dropped,
 * and calls done(s, arg) once every one is durable or failed (errs[i] as
 * srv_share_persist). A durable tombstone also takes the share-partition out
 * of its state partition's prune tracker. Nothing is written (errs[i] 0)
 * while __share_group_state does not exist: no state of them is durable. */
void srv_share_persist_drop(srv_shard *s, kp_str group, const srv_share_tp *tps, int n, int16_t *errs,
                            void (*done)(srv_shard *s, void *arg), void *arg);

/* Writes, for each of tps[0..n) reset by AlterShareGroupOffsets -1, Kafka's
 * record of it: a ShareSnapshot with start offset -1 and no batches (the
 * replay restores nothing from it). done and errs as srv_share_persist. */
void srv_share_persist_reset(srv_shard *s, kp_str group, const srv_share_tp *tps, int n, int16_t *errs,
                             void (*done)(srv_shard *s, void *arg), void *arg);

/* The coordinator shard of a group id (group/coord's routing), -1 when it has
 * none yet (no __consumer_offsets). */
typedef int (*srv_share_route_fn)(srv_broker *b, kp_str group_id);

/* Start-up, before the loops run: puts the dynamic group configs of the
 * metadata log back into the share groups, reads every __share_group_state
 * partition and restores each share-partition's state on its group's
 * coordinator shard. 0 or a negative errno / storage code. */
int srv_share_state_start(srv_broker *b, srv_share_route_fn route);
/* After the loops stopped: frees what the start and the writes kept. */
void srv_share_state_stop(srv_broker *b);

#endif

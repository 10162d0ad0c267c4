/*
 * group_internal.h — what the files of the classic group coordinator share:
 * the srv_groups map, the join phases, and the helpers one file owns and the
 * others call (group.c: map, lifecycle, timers, tombstones; group_classic.c:
 * members and the rebalance; group_offsets.c: committed offsets;
 * group_replay.c: loading; consumer.c: KIP-848 groups).
 *
 * Owns nothing: declarations only. Must not: be included outside group/
 * (group.h is the public face), or declare what only its own file uses.
 */
#ifndef SRV_GROUP_INTERNAL_H
#define SRV_GROUP_INTERNAL_H

#include <stdint.h>

#include "batch.h"
#include "group.h"

/* srv_group.join_phase */
enum { JOIN_NONE = 0, JOIN_INITIAL = 1, JOIN_DELAYED = 2 };

/* A pending transactional offset (group_txn.c), keyed like Kafka's
 * pendingTransactionalOffsets by producer, then group, topic, partition. */
typedef struct srv_gtxn {
    struct srv_gtxn *next;
    int64_t pid;
    int32_t cpart; /* the __consumer_offsets partition its record is in */
    char *group;
    char *topic;
    int32_t partition;
    srv_goffset v; /* v.seq: log order of its record */
} srv_gtxn;

struct srv_groups {
    srv_groups_config cfg;
    srv_groups_env env;
    srv_group **buckets;
    size_t nbuckets, count;
    int64_t seq;   /* last log order handed out (srv_goffset.seq) */
    srv_gtxn *txn; /* pending transactional offsets, newest first */
};

/* ---- group.c: the map, lifecycle, timers -------------------------------- */

int64_t srv_groupi_now(const srv_groups *gs);
const srv_groups_config *srv_groupi_cfg(const srv_groups *gs);
const srv_groups_env *srv_groupi_env(const srv_groups *gs);
/* FNV-1a step: the hash of the group map and of the offsets of a group. */
uint64_t srv_groupi_fnv(const void *p, size_t n, uint64_t h);
/* A new, empty group in the map (NULL: out of memory). */
srv_group *srv_groupi_create(srv_groups *gs, kp_str id, int32_t partition);
/* Unlinks the group (it becomes Dead) and drops the map's reference. */
void srv_groupi_remove(srv_group *g);
void srv_groupi_ref(srv_group *g);
void srv_groupi_unref(srv_group *g);
/* Hands the group's earliest deadline to env->arm when it changed. */
void srv_groupi_rearm(srv_group *g);
/* Sets the state and its timestamp (state_ts). */
void srv_groupi_transition(srv_group *g, int state);
/* Replaces *dst by a copy of src (NULL allowed); out of memory keeps *dst. */
void srv_groupi_set_str(char **dst, const char *src);
void srv_groupi_member_free(srv_gmember *m);
void srv_groupi_subscribed_clear(srv_group *g);
/* 1 when topic is in the group's subscriptions (or they are unknown). */
int srv_groupi_subscribed_to(const srv_group *g, const char *topic);
/* Keeps srv_group.state / subscribed in line with the consumer members. */
void srv_groupi_sync_consumer(srv_group *g);
/* Finishes bb (rc: an encoding error met while filling it) and appends the
 * batch to the group's __consumer_offsets partition; bb is freed either way.
 * Returns 0 when appended: g then holds one more reference, which done must
 * drop (a group removed meanwhile stays valid, as Dead, until then).
 * Otherwise done never runs. */
int srv_groupi_append(srv_group *g, kp_batch_builder *bb, int rc, srv_group_append_done done, void *ctx);
/* srv_groupi_append for records whose outcome only matters as an error:
 * *error (may be NULL) is set and done (may be NULL) runs when durable. */
void srv_groupi_append_tombs(srv_group *g, kp_batch_builder *bb, int rc, int16_t *error,
                             srv_group_done_cb done, void *ctx);
/* The tombstone(s) of the group's own records, by kind. */
int srv_groupi_add_group_tombstone(kp_batch_builder *bb, int64_t ts, const srv_group *g);

/* ---- group_classic.c: members and the rebalance ------------------------- */

srv_gmember *srv_groupi_member_get(const srv_group *g, kp_str id);
/* A member from a JoinGroup (copied), not yet in the group. */
srv_gmember *srv_groupi_member_new(const srv_join_req *rq, const char *id);
/* validateCurrentMember: 0, UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID. */
int16_t srv_groupi_validate_member(const srv_group *g, kp_str member_id, kp_str instance_id);
/* The member's session starts over. */
void srv_groupi_heartbeat_ok(srv_group *g, srv_gmember *m);
/* Consumer protocol groups: subscribed from the members' metadata. */
void srv_groupi_compute_subscribed(srv_group *g);
/* Drops members, protocol and generation: an empty classic group. */
void srv_groupi_clear_membership(srv_group *g);
/* Drops the classic membership of an empty classic group (upgrade). */
void srv_groupi_clear_classic(srv_group *g);
/* The classic deadlines due at t (srv_group_fire). */
void srv_groupi_classic_fire(srv_group *g, int64_t t);
/* Online upgrade: every parked JoinGroup and SyncGroup is answered with err. */
void srv_groupi_abort_parked(srv_group *g, int16_t err);
/* Online downgrade: g (no longer a consumer group, no classic member) takes
 * the n members ms (owned from now on) at generation, Stable, adds its
 * GroupMetadata record to bb and starts a rebalance. Returns the record's
 * encoding error (0: added). */
int srv_groupi_from_consumer(srv_group *g, srv_gmember **ms, int n, int32_t generation, kp_batch_builder *bb,
                             int64_t ts);

/* ---- group_offsets.c: committed offsets --------------------------------- */

void srv_groupi_offset_put(srv_group *g, kp_str topic, int32_t p, const srv_goffset *v);
void srv_groupi_offset_del(srv_group *g, kp_str topic, int32_t p);
void srv_groupi_offsets_clear(srv_group *g);

/* ---- group_txn.c: pending transactional offsets -------------------------- */

/* Keeps o as producer pid's pending offset (a copy; replaces the producer's
 * earlier one for the same partition). o->seq 0: the next log order. */
void srv_groupi_txn_put(srv_groups *gs, int32_t cpart, int64_t pid, kp_str group, kp_str topic, int32_t p,
                        const srv_goffset *o);
/* Drops every producer's pending offset of group for topic/p (a tombstone),
 * or all of the group's when topic.len < 0 (the group is deleted). */
void srv_groupi_txn_drop(srv_groups *gs, kp_str group, kp_str topic, int32_t p);
/* 1 when the group has any pending transactional offset. */
int srv_groupi_txn_any(const srv_groups *gs, kp_str group);
/* Calls fn for each (topic, partition) the group has pending (may repeat). */
void srv_groupi_txn_foreach(const srv_groups *gs, kp_str group, void (*fn)(void *arg, const srv_gtxn *e),
                            void *arg);
void srv_groupi_txn_free(srv_groups *gs);

/* ---- group_replay.c: loading -------------------------------------------- */

/* The group a replayed record belongs to, created when new; its partition is
 * the one being replayed (NULL: out of memory). */
srv_group *srv_groupi_load_get(srv_groups *gs, int32_t partition, kp_str id);

#endif

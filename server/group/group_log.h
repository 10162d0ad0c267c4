/*
 * group_log.h — the records of __consumer_offsets, in Kafka's shape: keys and
 * values are an int16 version followed by the generated codec's body
 * (OffsetCommitKey v1 / OffsetCommitValue v3 (v1 when an expire timestamp is
 * set) / GroupMetadataKey v2 / GroupMetadataValue v3, what Kafka 3.9 writes);
 * a null value is a tombstone, so compaction keeps the latest per key. The
 * KIP-848 consumer group records (key versions 3-8, value version 0) too.
 *
 * Owns the encoding and the replay of those records into a srv_groups (no
 * other file writes their bytes), and what a group API answers when writing
 * them failed. Must not: touch the log itself (the caller appends and reads).
 */
#ifndef SRV_GROUP_LOG_H
#define SRV_GROUP_LOG_H

#include "batch.h"
#include "group.h"

/* Adds an offset commit record (o NULL: tombstone) to bb. */
int srv_glog_add_offset(kp_batch_builder *bb, int64_t ts, kp_str group, kp_str topic, int32_t partition,
                        const srv_goffset *o);

/* Adds the group's metadata record; assignments (per member, in g->members
 * order) replace the members' current ones when not NULL. tombstone: a null
 * value (the group is gone). */
int srv_glog_add_group(kp_batch_builder *bb, int64_t ts, const srv_group *g, const kp_bytes *assignments,
                       int tombstone);

/* KIP-848 consumer group records; a NULL value (epoch, cg, m, t): tombstone.
 * group and member are the coordinator's sstr. */
struct srv_cgroup;
struct srv_cmember;
struct srv_tps;
int srv_glog_add_cg_epoch(kp_batch_builder *bb, int64_t ts, const char *group, const int32_t *epoch);
int srv_glog_add_cg_target_epoch(kp_batch_builder *bb, int64_t ts, const char *group, const int32_t *epoch);
int srv_glog_add_cg_topics(kp_batch_builder *bb, int64_t ts, const char *group, const struct srv_cgroup *cg);
int srv_glog_add_cg_member(kp_batch_builder *bb, int64_t ts, const char *group, const char *id,
                           const struct srv_cmember *m);
int srv_glog_add_cg_target(kp_batch_builder *bb, int64_t ts, const char *group, const char *id,
                           const struct srv_tps *t);
int srv_glog_add_cg_current(kp_batch_builder *bb, int64_t ts, const char *group, const char *id,
                            const struct srv_cmember *m);
/* The resolution of a regex subscription (ConsumerGroupRegularExpression):
 * r NULL is its tombstone; version is the metadata version it was resolved
 * against. */
struct srv_cregex;
int srv_glog_add_cg_regex(kp_batch_builder *bb, int64_t ts, const char *group, const char *regex,
                          const struct srv_cregex *r, int64_t version);
/* The tombstones of every consumer record of g (deletion, conversion). */
int srv_glog_add_cg_tombstones(kp_batch_builder *bb, int64_t ts, const srv_group *g);

/* The error a group API answers when appending its records failed with e,
 * one mapping for the classic and the KIP-848 protocols as in Kafka 4 (its
 * GroupCoordinatorService.handleOperationException): a missing or
 * under-replicated partition is COORDINATOR_NOT_AVAILABLE, a lost leadership
 * or failed disk NOT_COORDINATOR, a too-large write UNKNOWN_SERVER_ERROR,
 * anything else itself. Offset commits answer too-large differently (group_offsets.c
 * commit_error). Not srv_st_to_kafka (partcall.c): that maps storage codes to
 * the Kafka errors this function starts from. */
int16_t srv_glog_write_error(int16_t e);

/* Replays one batch of a __consumer_offsets partition into gs. Records of
 * other kinds (share groups, future versions) are skipped; KIP-848 consumer
 * group records go to consumer.c. */
int srv_glog_replay_batch(srv_groups *gs, int32_t partition, const kp_batch *b);

/* Loading hooks, implemented by group_replay.c. pid >= 0: the record is in
 * that producer's transactional batch (pending until its marker). */
void srv_groups_load_offset(srv_groups *gs, int32_t partition, kp_str group, kp_str topic, int32_t p,
                            const srv_goffset *o, int64_t pid);
struct kp_group_metadata_value;
void srv_groups_load_group(srv_groups *gs, int32_t partition, kp_str group,
                           const struct kp_group_metadata_value *v);
/* After the last batch: drops groups the records left with nothing. */
void srv_groups_load_finish(srv_groups *gs);

#endif

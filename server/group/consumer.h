/*
 * consumer.h — the consumer group protocol of KIP-848 (ConsumerGroupHeartbeat)
 * inside the shard's group coordinator: member epochs, the group epoch, the
 * target assignment computed by a server-side assignor ("uniform", "range"),
 * the per-member reconciliation (a partition is handed to a member only once
 * no other member still owns it), regex subscriptions (resolved against the
 * coordinator's metadata, see docs/design.md "Regex subscriptions") and the
 * records of __consumer_offsets that keep all of it across restarts (their
 * bytes: group_log.c).
 *
 * Kafka 3.9's GroupMetadataManager / CurrentAssignmentBuilder are the
 * reference for every decision and error code.
 *
 * A group id is either classic or consumer: srv_group.cg is non-NULL for a
 * consumer group. The committed offsets stay in srv_group for both kinds.
 *
 * Owns: the srv_cgroup of each consumer group and when its records are
 * written. Must not: block, touch a shard, or keep pointers a caller gave it
 * (everything is copied).
 */
#ifndef SRV_GROUP_CONSUMER_H
#define SRV_GROUP_CONSUMER_H

#include <stdint.h>

#include "batch.h"
#include "group.h"

/* Kafka's defaults of the group.consumer.* broker configs. */
#define SRV_CGROUP_HEARTBEAT_INTERVAL_MS 5000  /* group.consumer.heartbeat.interval.ms */
#define SRV_CGROUP_SESSION_TIMEOUT_MS    45000 /* group.consumer.session.timeout.ms */
/* Subscriptions are kept per member: bound them (Kafka bounds the request). */
#define SRV_CGROUP_MAX_SUBSCRIPTIONS 10000

/* Member epochs with a meaning (ConsumerGroupHeartbeatRequest). */
#define SRV_CEPOCH_LEAVE        (-1)
#define SRV_CEPOCH_LEAVE_STATIC (-2)

/* MemberState of ConsumerGroupCurrentMemberAssignmentValue. */
enum { SRV_CM_STABLE = 0, SRV_CM_UNREVOKED = 1, SRV_CM_UNRELEASED = 2 };

/* A set of partitions: sorted by (topic id, partition), no duplicates. */
typedef struct srv_tp {
    kp_uuid topic;
    int32_t partition;
} srv_tp;

typedef struct srv_tps {
    int n, cap;
    srv_tp *v;
} srv_tps;

void srv_tps_free(srv_tps *s);
int srv_tps_add(srv_tps *s, kp_uuid topic, int32_t partition); /* keeps the order; 0 or -1 (memory) */
int srv_tps_has(const srv_tps *s, kp_uuid topic, int32_t partition);
int srv_tps_eq(const srv_tps *a, const srv_tps *b);

/* A run of one topic's partitions in a set (the wire and record shape). */
typedef struct srv_tpgroup {
    kp_uuid topic;
    const int32_t *parts;
    int32_t n;
} srv_tpgroup;
/* Splits s into per-topic runs: out and parts need room for s->n entries;
 * returns the number of runs. */
int srv_tps_groups(const srv_tps *s, srv_tpgroup *out, int32_t *parts);

typedef struct srv_cmember {
    char *id;
    char *instance_id; /* NULL: dynamic */
    char *rack_id;
    char *client_id;
    char *client_host;
    char *assignor; /* NULL: none asked */
    int nsubs;
    char **subs; /* subscribed topic names, sorted */
    char *regex; /* SubscribedTopicRegex, NULL: none */
    int32_t rebalance_timeout_ms;
    int32_t epoch, prev_epoch;
    int8_t state;               /* SRV_CM_* */
    srv_tps assigned;           /* what the member owns now */
    srv_tps revoking;           /* what it must give up before its next epoch */
    srv_tps target;             /* its share of the group's target assignment */
    int64_t session_deadline;   /* -1: none */
    int64_t rebalance_deadline; /* revocation due by then, -1: none */
    /* A classic member of a consumer group (online migration, KIP-848): it
     * speaks JoinGroup/SyncGroup/Heartbeat. protocols NULL: a member of the
     * consumer protocol. */
    int nprotocols;
    srv_gprotocol *protocols;   /* the JoinGroup's protocols, in its order */
    int32_t classic_session_ms; /* its JoinGroup session timeout */
    int64_t classic_deadline;   /* JoinGroup or SyncGroup due by then, -1: none */
} srv_cmember;

/* A subscribed topic as it was when the target assignment was computed. */
typedef struct srv_ctopic {
    char *name;
    kp_uuid id;
    int32_t nparts;
} srv_ctopic;

/* A regex of the group's members and the topics it resolved to, recorded
 * as a ConsumerGroupRegularExpression (Kafka 4.x) and replayed. */
typedef struct srv_cregex {
    char *regex;
    int ntopics;
    char **topics; /* sorted names */
} srv_cregex;

typedef struct srv_cgroup {
    int32_t epoch;            /* group epoch */
    int32_t assignment_epoch; /* epoch of the target assignment */
    int nmembers, mcap;
    srv_cmember **members; /* in join order */
    int ntopics;
    srv_ctopic *topics; /* subscription metadata, sorted by name */
    int nregexes;
    srv_cregex *regexes;     /* one per distinct regex of the members */
    uint64_t regex_version;  /* metadata version they were resolved against, 0: never */
    int8_t default_assignor; /* SRV_ASSIGNOR_* of group.consumer.assignors */
} srv_cgroup;

/* "Empty", "Assigning", "Reconciling", "Stable" (ConsumerGroupState). */
const char *srv_cgroup_state_name(const srv_cgroup *cg);
srv_cmember *srv_cgroup_member(const srv_cgroup *cg, kp_str member_id);
/* The assignor the group runs: the one most members asked for, else the default. */
kp_str srv_cgroup_assignor(const srv_cgroup *cg);

/* ---- ConsumerGroupHeartbeat ---------------------------------------------- */

typedef struct srv_chb_req {
    kp_str group_id;
    kp_str member_id;
    int32_t member_epoch;
    kp_str instance_id; /* len < 0: none */
    kp_str rack_id;
    kp_str client_id;
    kp_str client_host;
    int32_t rebalance_timeout_ms; /* -1: unchanged */
    int nsubs;                    /* -1: unchanged */
    const kp_str *subs;
    kp_str regex;    /* len < 0: unchanged, 0: none */
    kp_str assignor; /* len < 0: unchanged */
    /* Who sent it: regexes resolve to the topics this principal may DESCRIBE
     * (Kafka uses the context of the heartbeat that triggers the refresh). */
    kp_str principal;
    kp_str host;
    int nowned; /* -1: not sent */
    const srv_tp *owned;
} srv_chb_req;

typedef struct srv_chb_result {
    int16_t error;
    const char *message; /* NULL: none */
    kp_str member_id;    /* null on errors */
    int32_t member_epoch;
    int32_t heartbeat_interval_ms;
    const srv_tps *assignment; /* NULL: not sent */
} srv_chb_result;

typedef void (*srv_chb_cb)(void *ctx, const srv_chb_result *r);
/* Answers once the records of the change are durable (or at once when
 * nothing changed). */
void srv_cgroup_heartbeat(srv_groups *gs, int32_t partition, const srv_chb_req *rq, srv_chb_cb cb, void *ctx);

/* ---- classic members of a consumer group (online migration) ------------- */

/* 1 when m joined with the classic protocol. */
int srv_cmember_is_classic(const srv_cmember *m);
/* JoinGroup, SyncGroup, Heartbeat and LeaveGroup of a group that is a
 * non-empty consumer group (group_classic.c routes them here): its classic
 * members are driven as Kafka's classicGroup*ToConsumerGroup do. */
void srv_cgroup_classic_join(srv_group *g, const srv_join_req *rq, srv_join_cb cb, void *ctx);
void srv_cgroup_classic_sync(srv_group *g, const srv_sync_req *rq, srv_sync_cb cb, void *ctx);
int16_t srv_cgroup_classic_heartbeat(srv_group *g, int32_t generation, kp_str member_id, kp_str instance_id);
void srv_cgroup_classic_leave(srv_group *g, int n, srv_leave_member *members);

/* ---- used by the group files --------------------------------------------- */

/* OffsetCommit / OffsetFetch of a consumer group (ConsumerGroup.validateOffsetCommit/Fetch). */
int16_t srv_cgroup_validate_commit(const srv_group *g, kp_str member_id, int32_t member_epoch,
                                   int16_t api_version);
int16_t srv_cgroup_validate_fetch(const srv_group *g, kp_str member_id, int32_t member_epoch);
/* Session and rebalance deadlines. */
int64_t srv_cgroup_next_deadline(const srv_group *g);
void srv_cgroup_fire(srv_group *g, int64_t now);
void srv_cgroup_free(srv_cgroup *cg);
/* After replay: sessions start now, derived state is rebuilt. */
void srv_cgroup_load_finish(srv_group *g);

/* ---- replay (group_log.c) ------------------------------------------------- */

struct kp_consumer_group_member_metadata_value;
struct kp_consumer_group_partition_metadata_value;
struct kp_consumer_group_target_assignment_member_value;
struct kp_consumer_group_current_member_assignment_value;
struct kp_consumer_group_regular_expression_value;
/* value NULL: tombstone. */
void srv_cgroup_load_epoch(srv_groups *gs, int32_t partition, kp_str group, const int32_t *epoch);
void srv_cgroup_load_topics(srv_groups *gs, int32_t partition, kp_str group,
                            const struct kp_consumer_group_partition_metadata_value *v);
void srv_cgroup_load_member(srv_groups *gs, int32_t partition, kp_str group, kp_str member,
                            const struct kp_consumer_group_member_metadata_value *v);
void srv_cgroup_load_target_epoch(srv_groups *gs, int32_t partition, kp_str group, const int32_t *epoch);
void srv_cgroup_load_target(srv_groups *gs, int32_t partition, kp_str group, kp_str member,
                            const struct kp_consumer_group_target_assignment_member_value *v);
void srv_cgroup_load_current(srv_groups *gs, int32_t partition, kp_str group, kp_str member,
                             const struct kp_consumer_group_current_member_assignment_value *v);
void srv_cgroup_load_regex(srv_groups *gs, int32_t partition, kp_str group, kp_str regex,
                           const struct kp_consumer_group_regular_expression_value *v);

#endif

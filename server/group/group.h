/*
 * group.h — the classic consumer group coordinator of one shard: groups,
 * members, the rebalance state machine (Empty → PreparingRebalance →
 * CompletingRebalance → Stable → Dead), static members (KIP-345), the
 * member-id-required join (KIP-394), committed offsets and their retention.
 *
 * Kafka 3.9's classic GroupCoordinator is the reference for every decision
 * and error code; comments name the Kafka behaviour where it is not obvious.
 *
 * Owns: the groups of the __consumer_offsets partitions its shard owns, and
 * the records it writes there. Must not: block, touch another shard, or know
 * about connections: it talks to the outside through srv_groups_env (clock,
 * log appends, timers) and through result callbacks, so unit tests can drive
 * it with a fake clock and a fake log (server/tests/fake_group_env.h).
 *
 * Implemented by group.c (the map, lifecycle, timers), group_classic.c (the
 * classic protocol), group_offsets.c (committed offsets) and group_replay.c
 * (loading), which share group_internal.h; consumer.c runs KIP-848 groups.
 *
 * Result callbacks may run inline (before the call returns) or later (timers,
 * durable appends). They must copy what they keep: the strings and bytes they
 * see belong to the coordinator. They must not call back into the
 * coordinator.
 */
#ifndef SRV_GROUP_H
#define SRV_GROUP_H

#include <stdint.h>

#include "wire.h"

#define SRV_OFFSETS_TOPIC "__consumer_offsets"

/* Kafka's defaults that are not broker configs here. */
#define SRV_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS 300000 /* GroupCoordinator.NewMemberJoinTimeoutMs */
#define SRV_GROUP_OFFSET_METADATA_MAX        4096   /* offset.metadata.max.bytes */
/* Protocol metadata is opaque to the coordinator but kept in memory per
 * member: bound it so one client cannot pin an arbitrary amount. */
#define SRV_GROUP_MAX_PROTOCOLS      64
#define SRV_GROUP_MAX_PROTOCOL_BYTES (1 << 20)

enum srv_group_state {
    SRV_GS_EMPTY = 0,
    SRV_GS_PREPARING = 1,
    SRV_GS_COMPLETING = 2,
    SRV_GS_STABLE = 3,
    SRV_GS_DEAD = 4,
};
const char *srv_group_state_name(int state); /* "Empty", "PreparingRebalance", ... */

typedef struct srv_groups srv_groups;
struct srv_join_result;
struct srv_sync_result;
typedef struct srv_group srv_group;
typedef struct srv_gmember srv_gmember;

/* ---- environment ------------------------------------------------------- */

/* An append's outcome: 0 or the Kafka error of the log (storage error codes
 * already mapped with srv_st_to_kafka). */
typedef void (*srv_group_append_done)(void *ctx, int16_t error);

typedef struct srv_groups_env {
    void *arg;
    int64_t (*now_ms)(void *arg); /* wall clock: timeouts and record timestamps */
    /* Appends one record batch to partition `partition` of __consumer_offsets.
     * done runs exactly once, inline or later, with 0 once durable. */
    void (*append)(void *arg, int32_t partition, const uint8_t *batch, size_t len, srv_group_append_done done,
                   void *ctx);
    /* The group's earliest deadline changed: fire srv_group_fire(g) at
     * deadline_ms (-1: nothing due). drop frees whatever arm allocated. */
    void (*arm)(void *arg, srv_group *g, int64_t deadline_ms);
    void (*drop)(void *arg, srv_group *g);
    /* The topic named `name` in the coordinator's metadata: 1 with its id and
     * partition count, 0 when it does not exist (consumer groups, KIP-848). */
    int (*topic)(void *arg, kp_str name, kp_uuid *id, int32_t *nparts);
    /* Regex subscriptions (may be NULL: no topic matches). The version of the
     * coordinator's metadata (it changes with topics and ACLs), its i-th
     * topic name (0 past the last), and whether principal at host may
     * DESCRIBE a topic (1 also when the authorizer is off). */
    uint64_t (*meta_version)(void *arg);
    int (*topic_at)(void *arg, int i, kp_str *name);
    int (*may_describe)(void *arg, kp_str principal, kp_str host, kp_str topic);
} srv_groups_env;

typedef struct srv_groups_config {
    int32_t min_session_timeout_ms;
    int32_t max_session_timeout_ms;
    int32_t initial_rebalance_delay_ms;
    int32_t max_size;
    int64_t offsets_retention_ms;
    /* group.consumer.* (KIP-848); 0: Kafka's default. */
    int32_t consumer_heartbeat_interval_ms;
    int32_t consumer_session_timeout_ms;
    int32_t consumer_max_size; /* group.consumer.max.size; 0: unbounded */
    int migration_policy;      /* group.consumer.migration.policy: SRV_GMIG_* (config.h) */
    int nassignors;            /* group.consumer.assignors; 0: uniform, range */
    int8_t assignors[2];       /* SRV_ASSIGNOR_* (config.h), the first is the default */
} srv_groups_config;

srv_groups *srv_groups_new(const srv_groups_config *cfg, const srv_groups_env *env);
/* Frees every group. Callbacks still parked are dropped without running:
 * only for shutdown and tests. */
void srv_groups_free(srv_groups *gs);
/* Runs the group's due deadlines (session, join, sync); the env's timer. */
void srv_group_fire(srv_group *g);
/* Tests without timers: fire every group whose deadline has passed. */
void srv_groups_poll(srv_groups *gs);
/* The env's arg (the owning shard's context). */
void *srv_groups_env_arg(const srv_groups *gs);
/* Offsets retention pass (offsets.retention.minutes): expires offsets and
 * removes empty groups left without offsets. */
void srv_groups_expire_offsets(srv_groups *gs);

/* __consumer_offsets partition of a group: abs(Java String.hashCode) % n. */
int32_t srv_group_partition_for(kp_str group_id, int32_t npartitions);

/* ---- state (read-only outside group/) ----------------------------------- */

typedef struct srv_gprotocol {
    char *name;
    uint8_t *meta;
    int32_t len;
} srv_gprotocol;

struct srv_gmember {
    char *id;
    char *instance_id; /* NULL: dynamic member */
    char *client_id;
    char *client_host;
    char *protocol_type;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    int nprotocols;
    srv_gprotocol *protocols; /* in the member's order of preference */
    uint8_t *assignment;
    int32_t assignment_len;
    /* parked JoinGroup / SyncGroup of this member */
    void (*join_cb)(void *ctx, const struct srv_join_result *r);
    void *join_ctx;
    void (*sync_cb)(void *ctx, const struct srv_sync_result *r);
    void *sync_ctx;
    int is_new;       /* joined but never completed a join: expires on the new-member timeout */
    int pending_sync; /* got its JoinGroup answer, has not sent SyncGroup yet */
    int64_t deadline; /* session expiry */
};

typedef struct srv_goffset {
    struct srv_goffset *next;
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int64_t commit_ts;
    int64_t expire_ts; /* -1: by the group's retention rule */
    /* Log order of the record that set it (0 when put: the next number). A
     * committed transaction's offset wins only over an older one, as Kafka
     * compares record offsets (replayEndTransactionMarker). */
    int64_t seq;
} srv_goffset;

typedef struct srv_gpending {
    char *id;
    int64_t deadline;
} srv_gpending;

struct srv_group {
    srv_group *next; /* hash chain */
    srv_groups *gs;
    char *id;
    int32_t partition;
    int state;
    int refs; /* the map's, plus one per append in flight */
    int32_t generation;
    char *protocol_type; /* NULL: none yet (a group that only commits offsets) */
    char *protocol_name; /* NULL unless a generation with members is running */
    char *leader;
    int nmembers, mcap;
    srv_gmember **members; /* in join order */
    int n_awaiting_join;
    int npending, pcap;
    srv_gpending *pending; /* member ids handed out with MEMBER_ID_REQUIRED */
    int new_member_added;
    int join_phase; /* 0, JOIN_INITIAL (group.initial.rebalance.delay.ms), JOIN_DELAYED */
    int64_t join_deadline;
    int32_t join_delay_ms;        /* the running initial delay */
    int32_t join_remaining_ms;    /* what the initial delays may still add */
    int32_t rebalance_timeout_ms; /* max over members when the rebalance began */
    int64_t sync_deadline;        /* pending SyncGroup expiry, -1: none */
    int64_t state_ts;             /* wall clock of the last transition, -1: unknown */
    int nsubscribed;              /* consumer groups: union of subscribed topics, */
    char **subscribed;            /* -1 in nsubscribed when not known */
    size_t onb, ocount;
    srv_goffset **obuckets;
    int pending_commits;   /* offset appends in flight (retention leaves the group alone) */
    struct srv_cgroup *cg; /* non-NULL: a consumer group (KIP-848, consumer.h) */
    int64_t armed;         /* deadline handed to env->arm */
    void *timer;           /* the env's */
};

srv_group *srv_groups_find(srv_groups *gs, kp_str id);
/* Calls fn for every live group (ListGroups). */
void srv_groups_foreach(srv_groups *gs, void (*fn)(void *arg, const srv_group *g), void *arg);
const srv_goffset *srv_group_offset(const srv_group *g, kp_str topic, int32_t partition);
void srv_group_foreach_offset(const srv_group *g, void (*fn)(void *arg, const srv_goffset *o), void *arg);
/* The metadata of member m for the group's protocol (empty when none). */
kp_bytes srv_gmember_metadata(const srv_group *g, const srv_gmember *m);

/* ---- JoinGroup ---------------------------------------------------------- */

typedef struct srv_join_protocol {
    kp_str name;
    kp_bytes metadata;
} srv_join_protocol;

typedef struct srv_join_req {
    kp_str group_id;
    kp_str member_id;
    kp_str instance_id; /* len < 0: none */
    kp_str client_id;
    kp_str client_host;
    kp_str protocol_type;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    int nprotocols;
    const srv_join_protocol *protocols;
    int require_known_member_id; /* v4+ without instance id (KIP-394) */
    int support_skip_assignment; /* v9+ (KIP-814) */
} srv_join_req;

typedef struct srv_join_member {
    kp_str member_id;
    kp_str instance_id; /* len < 0: none */
    kp_bytes metadata;
} srv_join_member;

typedef struct srv_join_result {
    int16_t error;
    int32_t generation;
    kp_str member_id;
    kp_str protocol_type; /* len < 0: none */
    kp_str protocol_name; /* len < 0: none */
    kp_str leader;        /* "" when none */
    int skip_assignment;
    int nmembers; /* the leader's list, else 0 */
    const srv_join_member *members;
} srv_join_result;

typedef void (*srv_join_cb)(void *ctx, const srv_join_result *r);
void srv_group_join(srv_groups *gs, int32_t partition, const srv_join_req *rq, srv_join_cb cb, void *ctx);

/* ---- SyncGroup ---------------------------------------------------------- */

typedef struct srv_sync_assignment {
    kp_str member_id;
    kp_bytes assignment;
} srv_sync_assignment;

typedef struct srv_sync_req {
    kp_str group_id;
    int32_t generation;
    kp_str member_id;
    kp_str instance_id;
    kp_str protocol_type; /* len < 0: not checked (before v5) */
    kp_str protocol_name;
    int nassignments;
    const srv_sync_assignment *assignments;
} srv_sync_req;

typedef struct srv_sync_result {
    int16_t error;
    kp_str protocol_type; /* len < 0: none */
    kp_str protocol_name;
    kp_bytes assignment;
} srv_sync_result;

typedef void (*srv_sync_cb)(void *ctx, const srv_sync_result *r);
void srv_group_sync(srv_groups *gs, const srv_sync_req *rq, srv_sync_cb cb, void *ctx);

/* ---- Heartbeat, LeaveGroup ---------------------------------------------- */

int16_t srv_group_heartbeat(srv_groups *gs, kp_str group_id, int32_t generation, kp_str member_id,
                            kp_str instance_id);

typedef struct srv_leave_member {
    kp_str member_id;
    kp_str instance_id;
    int16_t error; /* out */
} srv_leave_member;

/* Returns the request-level error; fills each member's. */
int16_t srv_group_leave(srv_groups *gs, kp_str group_id, int n, srv_leave_member *members);

/* ---- offsets ------------------------------------------------------------ */

typedef struct srv_commit_item {
    kp_str topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    kp_str metadata; /* len < 0: "" */
    int64_t commit_ts;
    int64_t expire_ts; /* -1: none */
    int16_t error;     /* in: a refusal already decided (unknown topic); out: the result */
} srv_commit_item;

typedef void (*srv_group_done_cb)(void *ctx);

/* OffsetCommit: every item's error is set when done runs (inline or later). */
/* generation is the member epoch for a consumer group; api_version is the
 * OffsetCommit version (v9+ answers GROUP_ID_NOT_FOUND for unknown groups). */
void srv_group_commit(srv_groups *gs, int32_t partition, kp_str group_id, int32_t generation,
                      kp_str member_id, kp_str instance_id, int16_t api_version, int n,
                      srv_commit_item *items, srv_group_done_cb done, void *ctx);

/* OffsetFetch v9+ with a member id / epoch: the consumer group's check
 * (classic groups and other versions: 0). */
int16_t srv_group_validate_fetch(srv_groups *gs, kp_str group_id, kp_str member_id, int32_t member_epoch);

/* DeleteGroups, one group: *error set when done runs. */
void srv_group_delete(srv_groups *gs, kp_str group_id, int16_t *error, srv_group_done_cb done, void *ctx);

typedef struct srv_offset_del_item {
    kp_str topic;
    int32_t partition;
    int16_t error; /* in/out as for srv_commit_item */
} srv_offset_del_item;

/* OffsetDelete: *error (group level) and the items' errors set when done runs. */
void srv_group_delete_offsets(srv_groups *gs, kp_str group_id, int n, srv_offset_del_item *items,
                              int16_t *error, srv_group_done_cb done, void *ctx);

/* ---- offsets in transactions (TxnOffsetCommit) ------------------------- */

typedef struct srv_txn_commit_req {
    kp_str group_id;
    kp_str member_id;   /* "" before v3 */
    kp_str instance_id; /* len < 0: none */
    int32_t generation; /* -1 before v3 */
    int64_t producer_id;
    int16_t producer_epoch;
} srv_txn_commit_req;

/* TxnOffsetCommit: the offsets are written to the group's partition in one
 * transactional batch of the producer and kept pending (not visible to
 * OffsetFetch) until that producer's marker: every item's error is set when
 * done runs. */
void srv_group_txn_commit(srv_groups *gs, int32_t partition, const srv_txn_commit_req *rq, int n,
                          srv_commit_item *items, srv_group_done_cb done, void *ctx);

/* A COMMIT (commit = 1) or ABORT marker of producer_id became durable on
 * partition `partition` of __consumer_offsets: that producer's pending offsets
 * of the groups there become committed (unless a newer commit exists) or are
 * dropped. */
void srv_groups_txn_complete(srv_groups *gs, int32_t partition, int64_t producer_id, int commit);

/* 1 when group_id has a pending transactional offset for topic/partition
 * (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT). */
int srv_group_txn_pending(const srv_groups *gs, kp_str group_id, kp_str topic, int32_t partition);

#endif

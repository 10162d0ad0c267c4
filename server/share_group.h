/*
 * share_group.h — share groups (KIP-932) of one coordinator shard: members
 * and their epochs, the simple assignment, share sessions, the
 * share-partitions of every group (share_partition.h), the admin operations
 * on them (offsets, deletion) and the groups' dynamic configs.
 *
 * A share group lives on the shard that owns its __consumer_offsets
 * partition, as every group; ShareGroupHeartbeat, ShareGroupDescribe,
 * ShareFetch and ShareAcknowledge reach it as group calls (group/coord.h)
 * and read records on the partitions' owners themselves (handlers/).
 *
 * Owns the share groups' state in memory; what survives a restart is each
 * share-partition's state, written by share_coord.c and put back through
 * srv_share_restore (members and sessions are not kept: consumers rejoin).
 * Must not: read a clock or metadata itself (now_ms and the topic lookup come
 * in), touch another shard, or keep pointers into a caller's memory.
 */
#ifndef SRV_SHARE_GROUP_H
#define SRV_SHARE_GROUP_H

#include <stdint.h>

#include "share_partition.h"
#include "wire.h"

typedef struct srv_share_cfg {
    int32_t heartbeat_ms;    /* group.share.heartbeat.interval.ms */
    int32_t session_ms;      /* group.share.session.timeout.ms */
    int32_t lock_ms;         /* group.share.record.lock.duration.ms */
    int32_t max_delivery;    /* group.share.delivery.count.limit */
    int32_t max_locks;       /* group.share.partition.max.record.locks */
    int32_t max_size;        /* group.share.max.size */
    int auto_reset_earliest; /* share.auto.offset.reset=earliest (default latest) */
} srv_share_cfg;

/* A topic by name in the coordinator's metadata: 1 with id and partitions. */
typedef int (*srv_share_topic_fn)(void *arg, kp_str name, kp_uuid *id, int32_t *nparts);

typedef struct srv_share_groups srv_share_groups;
srv_share_groups *srv_share_groups_new(const srv_share_cfg *cfg);
void srv_share_groups_free(srv_share_groups *sg);

typedef struct srv_share_tp {
    kp_uuid topic;
    int32_t partition;
} srv_share_tp;

/* ---- ShareGroupHeartbeat ------------------------------------------------ */

typedef struct srv_shb_req {
    kp_str group_id, member_id, rack_id, client_id, client_host;
    int32_t member_epoch;
    int32_t nsubs; /* -1: unchanged */
    const kp_str *subs;
} srv_shb_req;

typedef struct srv_shb_result {
    int16_t error;
    const char *message; /* static text or NULL; else msg[0, msglen) when msglen > 0 */
    char msg[512];
    int32_t msglen;
    int32_t member_epoch;
    int32_t heartbeat_ms;
    int32_t nassigned;      /* -1: no assignment in the answer */
    srv_share_tp *assigned; /* in the arena given */
} srv_shb_result;

void srv_share_heartbeat(srv_share_groups *sg, const srv_shb_req *rq, int64_t now_ms,
                         srv_share_topic_fn topic, void *targ, kp_arena *a, srv_shb_result *out);

/* ---- ShareGroupDescribe -------------------------------------------------- */

typedef struct srv_shd_member {
    kp_str member_id, rack_id, client_id, client_host;
    int32_t member_epoch;
    int32_t nsubs;
    kp_str *subs;
    int32_t nassigned;
    srv_share_tp *assigned;
} srv_shd_member;

typedef struct srv_shd_group {
    int16_t error;
    const char *state; /* "Empty", "Stable", "Dead" */
    int32_t epoch;
    int32_t nmembers;
    srv_shd_member *members;
} srv_shd_group;

/* Copies into a; error GROUP_ID_NOT_FOUND when there is no such share group. */
void srv_share_describe(srv_share_groups *sg, kp_str group_id, int64_t now_ms, srv_share_topic_fn topic,
                        void *targ, kp_arena *a, srv_shd_group *out);
/* Calls fn for every share group (ListGroups). */
void srv_share_foreach(srv_share_groups *sg, void (*fn)(void *arg, kp_str id, const char *state), void *arg);

/* What the metrics publish (metrics_http.c), read without changing anything:
 * every share group with its members whose session has not timed out at
 * now_ms, then each of its initialised share-partitions. */
typedef struct srv_share_stat_fns {
    void (*group)(void *arg, kp_str id, int32_t nmembers);
    void (*part)(void *arg, kp_str id, const srv_share_tp *tp, const srv_share_part *sp);
} srv_share_stat_fns;
void srv_share_stats(srv_share_groups *sg, int64_t now_ms, const srv_share_stat_fns *fns, void *arg);

/* ---- ShareFetch / ShareAcknowledge --------------------------------------- */

typedef struct srv_share_ackb {
    int64_t first, last;
    const int8_t *types;
    int32_t ntypes;
} srv_share_ackb;

/* One partition of a ShareFetch or ShareAcknowledge. */
typedef struct srv_share_item {
    srv_share_tp tp;
    int nacks;
    const srv_share_ackb *acks;
    int fetch;           /* in the session's fetch set (ShareFetch) */
    int16_t ack_error;   /* out */
    const char *ack_why; /* out: Kafka's message of ack_error (static), or NULL */
    int16_t error;       /* out: partition error */
    /* out of begin: where to read; -1 with fetch: nothing to read now */
    int64_t read_from;
    int probe; /* share-partition not initialised: read only its offsets */
    /* in to acquire: what the read found */
    int64_t last;      /* last offset of the batches read, -1: none */
    int64_t log_start; /* -1: unknown */
    int64_t hwm;
    /* share.auto.offset.reset=by_duration: out of begin, its duration for a
     * probe (-1: none; the reader looks up the wall clock minus it); in to
     * acquire, the first offset stamped at or after that time (-1: none,
     * the share-partition starts at the end). */
    int64_t reset_ago_ms;
    int64_t ts_offset;
    /* out of acquire */
    int nranges;
    srv_sp_range *ranges;
} srv_share_item;

typedef struct srv_share_sreq {
    kp_str group_id, member_id;
    int32_t epoch;
    int is_fetch;
    int renew; /* v2 with IsRenewAck: RENEW acknowledgements allowed */
    int nforgotten;
    const srv_share_tp *forgotten;
    /* The connection the request came over (a token unique in the broker's
     * life, 0: unknown): a session opened by it ends when it closes. */
    uint64_t conn;
} srv_share_sreq;

/* The session and acknowledgement step of a ShareFetch (is_fetch) or a
 * ShareAcknowledge: validates member and session epoch, applies the
 * acknowledgements, and for a fetch replaces *items by the session's fetch
 * set (allocated in a) with where to read each. Returns the top-level error. */
int16_t srv_share_begin(srv_share_groups *sg, const srv_share_sreq *rq, int64_t now_ms, kp_arena *a,
                        srv_share_item **items, int *nitems);

/* The acquisition step of a ShareFetch after its reads: acquires for the
 * member what each read returned, max_records in all. */
int16_t srv_share_acquire(srv_share_groups *sg, const srv_share_sreq *rq, int32_t max_records, int64_t now_ms,
                          kp_arena *a, srv_share_item *items, int nitems);

/* The connection `conn` closed (never 0): as Kafka drops a share session
 * with the connection that opened it, the member's session ends and every
 * record it holds acquired becomes Available again, its delivery count kept
 * (the member stays until its heartbeats stop). Nothing when the session was
 * opened again since over another connection, or closed already. Returns how many records went
 * back, or -1 when conn's session of that member is not there. */
int srv_share_conn_closed(srv_share_groups *sg, kp_str group_id, kp_str member_id, uint64_t conn,
                          int64_t now_ms);

/* Lock duration in force for a group (the answer's AcquisitionLockTimeoutMs):
 * its share.record.lock.duration.ms, else the broker's. */
int32_t srv_share_lock_ms(srv_share_groups *sg, kp_str group_id);

/* ---- Admin: offsets and deletion ------------------------------------------ */

/* One share-partition as DescribeShareGroupOffsets shows it. */
typedef struct srv_share_off {
    srv_share_tp tp;
    int64_t start; /* -1: no state (never fetched, or reset) */
    int64_t done;  /* Acknowledged or Archived records in flight (for the lag) */
} srv_share_off;

/* Every share-partition with state of a group, sorted by topic then
 * partition, copied into a (DescribeShareGroupOffsets without topics).
 * Returns how many; 0 when the group is unknown; -1 out of memory. */
int srv_share_offsets_all(srv_share_groups *sg, kp_str group_id, int64_t now_ms, kp_arena *a,
                          srv_share_off **out);
/* Fills start/done of one share-partition (-1 / 0 when it has no state). */
void srv_share_offset_of(srv_share_groups *sg, kp_str group_id, srv_share_off *o);

/* Alter/DeleteShareGroupOffsets and DeleteGroups need an empty group:
 * returns 0, GROUP_ID_NOT_FOUND (no such share group) or NON_EMPTY_GROUP. */
int16_t srv_share_check_empty(srv_share_groups *sg, kp_str group_id, int64_t now_ms);
/* AlterShareGroupOffsets of one partition of an empty group (created when
 * unknown, as Kafka does): the share-partition starts at `start` with
 * nothing in flight; a negative start forgets its state (the next fetch
 * initialises it from share.auto.offset.reset). 0 or an error. */
int16_t srv_share_alter_offset(srv_share_groups *sg, kp_str group_id, const srv_share_tp *tp, int64_t start);
/* DeleteShareGroupOffsets of one topic: every share-partition of it goes. */
void srv_share_delete_topic(srv_share_groups *sg, kp_str group_id, const kp_uuid *topic);
/* The share-partitions of a group (of one topic unless topic is NULL),
 * initialised or not, into out[0..cap): how many there are (may exceed cap;
 * 0 when the group is unknown). What DeleteGroups, DeleteShareGroupOffsets
 * and a reset must tombstone in __share_group_state. */
int srv_share_tps(srv_share_groups *sg, kp_str group_id, const kp_uuid *topic, srv_share_tp *out, int cap);
/* DeleteGroups of a share group: 0, GROUP_ID_NOT_FOUND or NON_EMPTY_GROUP. */
int16_t srv_share_delete_group(srv_share_groups *sg, kp_str group_id, int64_t now_ms);
/* Whether a share group of this id exists (deleting a group of another kind). */
int srv_share_exists(srv_share_groups *sg, kp_str group_id);

/* ---- Group configs (IncrementalAlterConfigs on GROUP resources) ----------- */

enum srv_share_gkey {
    SRV_SGK_AUTO_RESET,     /* share.auto.offset.reset: enum srv_share_reset */
    SRV_SGK_LOCK_MS,        /* share.record.lock.duration.ms */
    SRV_SGK_SESSION_MS,     /* share.session.timeout.ms */
    SRV_SGK_HEARTBEAT_MS,   /* share.heartbeat.interval.ms */
    SRV_SGK_DELIVERY_LIMIT, /* share.delivery.count.limit */
    SRV_SGK_MAX_LOCKS,      /* share.partition.max.record.locks */
    SRV_SGK_RENEW_ENABLE,   /* share.renew.acknowledge.enable: 0 or 1 (default 1) */
    SRV_SGK_COUNT
};

enum srv_share_reset {
    SRV_SHARE_RESET_LATEST = 0,
    SRV_SHARE_RESET_EARLIEST = 1,
    SRV_SHARE_RESET_BY_DURATION = 2, /* the first record stamped at or after now - reset_ms */
};

/* A group's overrides: set[k] says whether key k is set, val[k] its value;
 * reset_ms is the duration of SRV_SHARE_RESET_BY_DURATION. */
typedef struct srv_share_gconf {
    int set[SRV_SGK_COUNT];
    int64_t val[SRV_SGK_COUNT];
    int64_t reset_ms;
} srv_share_gconf;

/* Kafka's name of key k (share.auto.offset.reset, ...). */
const char *srv_share_gkey_name(int k);
/* share.auto.offset.reset's value (p, n) as Kafka's GroupConfig takes it:
 * "earliest", "latest" or "by_duration:" and an ISO-8601 duration as
 * java.time.Duration parses it (PnDTnHnMn.nS, signs per field, not negative
 * in all). 0 with *mode (enum srv_share_reset) and *ms, or -1. */
int srv_share_parse_reset(const char *p, size_t n, int *mode, int64_t *ms);
/* Sets key (a Kafka name) to value, both as the metadata log keeps them
 * (validated when they were set): 0, or -1 when either is not understood. */
int srv_share_gconf_set_str(srv_share_gconf *g, const char *key, const char *value);

/* The group's overrides (all unset when none). */
void srv_share_gconf_get(srv_share_groups *sg, kp_str group_id, srv_share_gconf *out);
/* Replaces the group's overrides (validated by the caller) and applies them
 * to its share-partitions and members. 0, or -1 out of memory. */
int srv_share_gconf_put(srv_share_groups *sg, kp_str group_id, const srv_share_gconf *in);

/* ---- The simple assignor (exposed for tests) ------------------------------ */

/* The member's current assignment (tests): NULL with *n = -1 when unknown. */
const srv_share_tp *srv_share_assigned(srv_share_groups *sg, kp_str group_id, kp_str member_id, int *n);

/* How many share-partitions a group keeps state for, initialised or not
 * (tests; -1: no such group). */
int srv_share_nparts(srv_share_groups *sg, kp_str group_id);

/* The share-partition of a group (tests, describe): NULL when none. */
const srv_share_part *srv_share_part_of(srv_share_groups *sg, kp_str group_id, const srv_share_tp *tp);
/* The same, to count the state records written for it (share_coord.c). */
srv_share_part *srv_share_part_mut(srv_share_groups *sg, kp_str group_id, const srv_share_tp *tp);

/* Puts back a share-partition's persisted state (the start-up replay of
 * __share_group_state): the group is created empty if needed, the
 * share-partition initialised at start with runs. 0, or -1 when memory ran out. */
int srv_share_restore(srv_share_groups *sg, kp_str group_id, const srv_share_tp *tp, int64_t start,
                      const srv_sp_run *runs, int nruns);

#endif

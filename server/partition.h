/*
 * partition.h — the partitions one shard owns: their logs, and the fetch
 * requests (of any shard) waiting for new data in them; with a quorum the
 * replicas this node follows too, and for the replicated ones it leads the
 * high watermark over the ISR.
 *
 * Must not: be touched by any thread but the owning shard's.
 */
#ifndef SRV_PARTITION_H
#define SRV_PARTITION_H

#include "broker.h"
#include "meta.h"
#include "st_log.h"
#include "txn_part.h"

/* A fetch on some shard waiting for data: woken by a message to it. */
typedef struct srv_part_waiter {
    struct srv_part_waiter *next;
    int shard;
    uint64_t wait_id;
    int64_t expire_ms; /* dropped after this even if never woken */
} srv_part_waiter;

/* What a leader knows of one follower of a partition: where its log ends
 * (the offset of its last fetch) and when it last fetched up to the
 * leader's end. */
typedef struct srv_follower {
    int32_t id;
    int64_t leo;
    int64_t caught_up_ms;
} srv_follower;

/* An acks=all produce waiting for the high watermark of a replicated
 * partition to reach `end` (the offset after its batch): done runs on the
 * owner once it does (error 0), at `deadline_ms` (REQUEST_TIMED_OUT), or
 * when the partition stops being led here (NOT_LEADER_OR_FOLLOWER). */
typedef struct srv_hw_wait {
    struct srv_hw_wait *next;
    int64_t end;
    int64_t deadline_ms;
    void (*done)(srv_shard *owner, struct srv_hw_wait *w, int16_t error);
} srv_hw_wait;

typedef struct srv_part {
    struct srv_part *next; /* hash chain */
    kp_uuid topic_id;
    int32_t partition;
    char *topic;
    st_log *log; /* NULL: offline, its log could not be opened */
    int open_rc; /* why (a storage code), while offline */
    srv_part_waiter *waiters;
    int64_t last_hwm;
    srv_txn_guards guards; /* markers' times for the verification guard (txn_part.h) */
    /* With a quorum, a shard holds the partitions this node is a replica of
     * and leads some of them; clients are served only those (set from each
     * version by srv_partmap_reconcile). Always 1 on a single node. */
    int leader;
    /* Leader: its followers, as their fetches tell (replica.h). */
    int nfollowers;
    srv_follower followers[SRV_RF_MAX];
    /* Leader of a replicated partition: min over the ISR of their log ends
     * (its own: its durable end), never moving back while it leads; the
     * produces waiting for it. */
    int64_t hw;
    srv_hw_wait *hw_waits;
    /* Follower: the leader's high watermark, capped at this log's end. */
    int64_t follower_hw;
    int16_t fetch_error;    /* follower: the last error its leader answered (logged once) */
    int64_t fetch_retry_ms; /* follower: left out of its leader's fetches until then */
} srv_part;

/* A partition whose log could not be opened stays listed, offline: every
 * request for it answers KAFKA_STORAGE_ERROR (as Kafka does for a replica on
 * an offline log dir) instead of looking unknown, which clients retry. */
static inline int srv_part_offline(const srv_part *p)
{
    return p && !p->log;
}

/* Offline partitions as one owner shard last published them to all shards
 * (immutable, reference counted; see srv_partmap_reconcile). */
typedef struct srv_offline_set {
    int refs; /* atomic */
    int n;
    struct srv_offline_part {
        kp_uuid topic_id;
        int32_t partition;
    } e[];
} srv_offline_set;
void srv_offline_set_unref(srv_offline_set *o);
/* 1 when the owner of (topic_id, partition) reported it offline. For
 * Metadata on any shard; s->offline[owner] is that shard's view. */
int srv_part_reported_offline(const srv_shard *s, const kp_uuid *topic_id, int32_t partition);

srv_partmap *srv_partmap_new(srv_shard *s);
/* Shutdown, after the loops stopped: finishes every log's work in flight and
 * runs its callbacks while partitions, groups and coordinators still exist
 * (blocking). srv_partmap_free then closes and frees. */
void srv_partmap_drain(srv_partmap *pm);
void srv_partmap_free(srv_partmap *pm); /* closes every log (blocking: shutdown) */
/* The partition if this node leads it (what clients and coordinators may
 * use), else NULL. */
srv_part *srv_partmap_get(srv_partmap *pm, const kp_uuid *topic_id, int32_t partition);
/* The partition if this node holds a replica of it, led or followed. */
srv_part *srv_partmap_get_replica(srv_partmap *pm, const kp_uuid *topic_id, int32_t partition);
/* Opens the partitions of `m` this shard owns, this node is a replica of
 * and it lacks; closes and deletes those whose topic is gone. */
void srv_partmap_reconcile(srv_partmap *pm, const srv_meta *m);
void srv_partmap_tick(srv_partmap *pm, int64_t now_ms);
/* Calls fn for every partition the shard holds (led or followed). fn must
 * not open or close partitions. */
void srv_partmap_each(srv_partmap *pm, void (*fn)(srv_part *p, void *arg), void *arg);
/* A leader's note of a follower's fetch at `offset`: its log end; caught up
 * when that is the leader's end. */
void srv_part_follower_fetched(srv_shard *s, srv_part *p, int32_t replica, int64_t offset);
/* The placement of p when it is replicated (more than one replica) and led
 * here, else NULL: a single node or RF 1 keeps the storage engine's
 * high watermark. */
const srv_part_repl *srv_part_replicated(const srv_shard *s, const srv_part *p);
/* What consumers may read of p: its high watermark (recomputed), or -1
 * when p is not replicated (the log's own high watermark applies). */
int64_t srv_part_consumer_hw(srv_shard *s, srv_part *p);
/* Recomputes p's high watermark; when it moved, answers the produces it
 * satisfies and wakes parked fetches. */
void srv_part_hw_advance(srv_shard *s, srv_part *p);
/* Parks w until the high watermark reaches w->end (done may run before
 * this returns). */
void srv_part_hw_wait(srv_shard *s, srv_part *p, srv_hw_wait *w);

/* Appends this shard's partition gauges (Prometheus text) to an evbuffer. */
struct evbuffer;
void srv_partmap_print_metrics(srv_partmap *pm, struct evbuffer *out);
/* Calls fn for every partition with an open log (metrics). */
void srv_partmap_each_open(srv_partmap *pm, void (*fn)(void *arg, const srv_part *p), void *arg);

/* Parks a waiter; srv_part_wake() wakes every waiter (fetch_wait.h) once the
 * high watermark moves. */
void srv_part_add_waiter(srv_shard *s, srv_part *p, int shard, uint64_t wait_id, int64_t expire_ms);
void srv_part_wake(srv_shard *s, srv_part *p);

#endif

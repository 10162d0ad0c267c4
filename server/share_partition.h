/*
 * share_partition.h — the state of one share-partition (KIP-932): which
 * records of a topic partition a share group has delivered, to whom, how
 * often, and which are done.
 *
 * Owns the in-flight window [start, end): per offset its state (Available,
 * Acquired, Acknowledged, Archived), delivery count, acquiring member and
 * acquisition lock deadline; the moves between those states (acquire,
 * ACCEPT / RELEASE / REJECT / GAP, lock expiry, a member's release) and the
 * advance of the share-partition start offset past finished records.
 * Must not: read a clock, a log or another shard: time comes in as now_ms and
 * offsets from the caller's reads, so it is pure and unit-tested with a fake
 * clock (tests/test_share_partition.c).
 */
#ifndef SRV_SHARE_PARTITION_H
#define SRV_SHARE_PARTITION_H

#include <stddef.h>
#include <stdint.h>

enum srv_sp_state {
    SRV_SP_AVAILABLE = 0,
    SRV_SP_ACQUIRED = 1,
    SRV_SP_ACKNOWLEDGED = 2,
    SRV_SP_ARCHIVED = 4,
};

/* Acknowledge types as on the wire (ShareFetch / ShareAcknowledge). */
/* RENEW (KIP-1222, ShareFetch/ShareAcknowledge v2): the record stays
 * acquired by its member with a fresh lock. */
enum srv_sp_ack {
    SRV_ACK_GAP = 0,
    SRV_ACK_ACCEPT = 1,
    SRV_ACK_RELEASE = 2,
    SRV_ACK_REJECT = 3,
    SRV_ACK_RENEW = 4
};

typedef struct srv_sp_rec {
    uint8_t state;
    uint16_t delivery; /* times acquired */
    uint32_t owner;    /* member serial of the acquirer (Acquired only) */
    int64_t deadline;  /* acquisition lock expiry (Acquired only) */
} srv_sp_rec;

typedef struct srv_share_part {
    int64_t start;    /* share-partition start offset: every offset below is done */
    int64_t end;      /* first offset never acquired: in flight is [start, end) */
    srv_sp_rec *recs; /* recs[i] is offset start + i */
    size_t cap;
    int32_t lock_ms;       /* group.share.record.lock.duration.ms */
    int32_t max_delivery;  /* group.share.delivery.count.limit */
    int32_t max_in_flight; /* group.share.partition.max.record.locks */
    int32_t updates;       /* state records written since the last snapshot (share_coord.c) */
    /* Counted since srv_sp_init, for the metrics (kbroker_share_partition_*):
     * acknowledgements by wire type (indexed by SRV_ACK_*, RENEW included),
     * acquisitions of a record delivered before, and records archived because
     * they reached max_delivery. */
    uint64_t acks[SRV_ACK_RENEW + 1];
    uint64_t redeliveries;
    uint64_t archived_at_limit;
} srv_share_part;

/* One run of offsets with the same persisted state (share_state.h's
 * delivery states: Acquired is persisted as Available). */
typedef struct srv_sp_run {
    int64_t first, last;
    int8_t state;
    int16_t delivery;
} srv_sp_run;

typedef struct srv_sp_range {
    int64_t first, last;
    int16_t delivery;
} srv_sp_range;

void srv_sp_init(srv_share_part *sp, int64_t start, int32_t lock_ms, int32_t max_delivery,
                 int32_t max_in_flight);
void srv_sp_free(srv_share_part *sp);

/* Records whose lock expired go back to Available (or Archived at the
 * delivery limit). Returns how many moved. */
int srv_sp_expire(srv_share_part *sp, int64_t now_ms);
/* The earliest deadline of an acquired record, or -1. */
int64_t srv_sp_next_deadline(const srv_share_part *sp);

/* Where the next read should begin: the first Available record in flight,
 * else end. -1 when the window is full and nothing is Available. */
int64_t srv_sp_read_from(const srv_share_part *sp);

/* Acquires for `owner` the Available records in [from, last] and new
 * records past end up to last, at most max_records and within the in-flight
 * bound. Writes at most nout ranges (contiguous offsets of one delivery
 * count) and returns how many; -1 on allocation failure. */
int srv_sp_acquire(srv_share_part *sp, uint32_t owner, int64_t from, int64_t last, int32_t max_records,
                   int64_t now_ms, srv_sp_range *out, int nout);

/* Applies one acknowledgement batch of `owner`. types has ntypes entries:
 * one for the whole range, or one per offset. Offsets below start are done
 * already and skipped, as Kafka does. Returns 0, or the Kafka error of the
 * batch with Kafka's message in *why (static, may be NULL): INVALID_REQUEST
 * for a malformed batch or one reaching past the window, INVALID_RECORD_STATE
 * when a record is not acquired, or acquired by another member. Nothing
 * changes on error. */
int16_t srv_sp_ack(srv_share_part *sp, uint32_t owner, int64_t first, int64_t last, const int8_t *types,
                   int32_t ntypes, const char **why);
/* The same, RENEW allowed: a renewed record's lock runs lock_ms from now_ms
 * (its delivery count unchanged). now_ms -1: RENEW is INVALID_REQUEST, as
 * in srv_sp_ack; SRV_SP_RENEW_DISABLED (the group's
 * share.renew.acknowledge.enable=false): a batch with a RENEW is checked as
 * any, then refused INVALID_RECORD_STATE, as Kafka orders it. */
#define SRV_SP_RENEW_DISABLED (-2)
int16_t srv_sp_ack_at(srv_share_part *sp, uint32_t owner, int64_t first, int64_t last, const int8_t *types,
                      int32_t ntypes, int64_t now_ms, const char **why);

/* Every record acquired by owner goes back (its session closed, it left). */
int srv_sp_release_owner(srv_share_part *sp, uint32_t owner);

/* The log start moved past start (retention, DeleteRecords). */
void srv_sp_move_start(srv_share_part *sp, int64_t log_start);

/* The window as persisted: runs of [start, end) with the same state and
 * delivery count, an acquired record written as Available (its lock does not
 * survive a restart, its delivery count does). Writes at most nout runs into
 * out and returns how many there are in all (call again with more room when
 * larger than nout). */
int srv_sp_runs(const srv_share_part *sp, srv_sp_run *out, int nout);

/* Replaces the state by a persisted one: start offset and runs (sorted,
 * disjoint, at or past start; offsets between runs are Available with no
 * delivery). A record delivered max_delivery times already is archived, as
 * a lock expiry would have done. 0, or -1 when memory ran out (sp is then
 * empty at start). */
int srv_sp_restore(srv_share_part *sp, int64_t start, const srv_sp_run *runs, int nruns);

/* State of one offset (tests, describe): ACKNOWLEDGED below start, -1 past end. */
int srv_sp_state_of(const srv_share_part *sp, int64_t offset, int *delivery);
/* Records in flight that are not finished (lag within the window). */
int64_t srv_sp_in_flight(const srv_share_part *sp);
/* Records acquired under a lock that has not expired at now_ms (a lapsed
 * lock is given back only when the group is next touched). */
int64_t srv_sp_acquired(const srv_share_part *sp, int64_t now_ms);

#endif

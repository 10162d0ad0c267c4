/*
 * txn_coord.h — the transaction coordinator inside the broker: the
 * __transaction_state topic, one srv_txn_map per partition on the shard that
 * owns it (loaded at start-up), the round trip of a transactional request to
 * that shard, the records written before each answer, the COMMIT/ABORT
 * markers sent to the transaction's partitions afterwards, and the timeout
 * and expiration scans.
 *
 * A transactional id is coordinated by the shard owning its
 * __transaction_state partition (abs(Java hashCode(id)) % partitions, the
 * rule of group/ srv_group_partition_for: the handler computes it and passes
 * it in, core never links to group/). The decisions are txn_state.c's; this
 * module only runs their steps.
 *
 * Owns the per-shard coordinator context (srv_txns) and the txn ops while
 * they are on the coordinator. Must not: touch a srv_txns from any thread but
 * its shard's, decide a transition itself, block a loop (the only blocking
 * reads are the start-up load, before the loops run), or include a handler:
 * the marker append is injected by main.c (srv_txn_marker_fn).
 */
#ifndef SRV_TXN_COORD_H
#define SRV_TXN_COORD_H

#include <stdbool.h>

#include "broker.h"
#include "call.h"
#include "partition.h"
#include "txn_replay.h"
#include "txn_state.h"

#define SRV_TXN_TOPIC "__transaction_state"

typedef struct srv_txns srv_txns; /* one per shard (broker.h: s->txns) */

/* One marker for one partition, on the partition's owner shard. */
typedef struct srv_txn_marker_args {
    int64_t producer_id;
    int16_t producer_epoch;
    int commit;
    int32_t coordinator_epoch;
    int8_t txn_version;
} srv_txn_marker_args;
typedef void (*srv_txn_marker_done)(void *arg, int16_t error);
/* Appends the control batch to p and calls done(arg, error) once it is
 * durable or refused (write_txn_markers.c, injected: core cannot link to it). */
typedef void (*srv_txn_marker_fn)(srv_shard *owner, srv_part *p, const srv_txn_marker_args *m,
                                  srv_txn_marker_done done, void *arg);

/* Start-up, from main() after the partitions are open and before the shards
 * run: each shard loads the __transaction_state partitions it owns (blocking);
 * Prepare* ids get their markers re-sent once the loops run. */
int srv_txns_start(srv_broker *b, srv_txn_marker_fn marker);
void srv_txns_stop(srv_broker *b);

/* Whether transactional ids can be coordinated now. When __transaction_state
 * is missing its creation is started and COORDINATOR_NOT_AVAILABLE returned
 * (Kafka creates it on the first FindCoordinator of a transactional id). */
int16_t srv_txns_ready(srv_shard *s);
/* Partitions of __transaction_state in this shard's metadata, 0 when missing. */
int32_t srv_txns_nparts(const srv_shard *s);

typedef enum srv_txn_op_kind {
    SRV_TXN_OP_INIT = 1,    /* InitProducerId with a transactional id */
    SRV_TXN_OP_ADD_PARTS,   /* AddPartitionsToTxn (v0-3, and v4+ not verify-only) */
    SRV_TXN_OP_VERIFY,      /* AddPartitionsToTxn v4+ verify-only, KIP-890 produce verification */
    SRV_TXN_OP_ADD_OFFSETS, /* AddOffsetsToTxn */
    SRV_TXN_OP_END,         /* EndTxn */
    SRV_TXN_OP_DESCRIBE,    /* DescribeTransactions */
    SRV_TXN_OP_LIST,        /* ListTransactions: one shard, every partition it owns */
} srv_txn_op_kind;

/* What DescribeTransactions and ListTransactions copy out (heap). */
typedef struct srv_txn_desc {
    char *txn_id;
    int32_t id_len;
    srv_txn_image img;
} srv_txn_desc;

typedef struct srv_txn_op srv_txn_op;
/* Back on the request's shard; the function owns op (srv_txn_op_free). */
typedef void (*srv_txn_op_done_fn)(srv_shard *s, srv_txn_op *op);

struct srv_txn_op {
    srv_call call; /* call.req: the request the op works for */
    srv_txn_op_kind kind;
    int32_t partition; /* of __transaction_state; -1: the whole shard (LIST) */
    kp_uuid topic_id;
    srv_txn_op_done_fn done;
    void *user; /* the caller's, never touched on the coordinator */
    /* Frees user when the op is freed with it still set (the request was
     * answered while the op was out); done clears it when it takes user. */
    void (*drop_user)(void *user);
    /* the request (read on the coordinator; points into the request's arena) */
    kp_str txn_id;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;   /* INIT */
    bool has_expected;    /* INIT: KIP-360 producer id and epoch given */
    bool commit;          /* END */
    int16_t client_tv;    /* ADD_PARTS, ADD_OFFSETS, END, VERIFY: 2 for KIP-890 versions */
    bool implicit_add;    /* VERIFY from Produce v12+ / TxnOffsetCommit v5+: add, do not just verify */
    int64_t add_first_ms; /* implicit add: srv_mono_ms() it first waited, 0: none */
    int64_t decide_ns;    /* VERIFY: srv_now_ns() of the decision that answered it (the guard's start) */
    srv_txn_tp *parts;    /* ADD_PARTS, VERIFY: heap, freed with the op (topics point into the request) */
    int32_t nparts;
    int32_t offsets_partition; /* ADD_OFFSETS */
    /* LIST filters (count -1: none) */
    const kp_str *states;
    int32_t nstates;
    const int64_t *pids;
    int32_t npids;
    int64_t min_duration_ms; /* -1: none */
    /* results */
    int16_t error;
    int64_t out_pid;
    int16_t out_epoch;
    int16_t *per_part;   /* VERIFY: heap array of nparts, freed with the op */
    srv_txn_desc *descs; /* DESCRIBE (one) and LIST: heap, freed with the op */
    int32_t ndescs;
};

srv_txn_op *srv_txn_op_new(srv_txn_op_kind kind, srv_txn_op_done_fn done);
/* Sends op to the coordinator of its transactional id (partition: the
 * handler's srv_group_partition_for over srv_txns_nparts). Returns 0, or the
 * error to answer with when there is no coordinator yet: then nothing was
 * sent and op is still the caller's. */
int16_t srv_txn_op_send(srv_req *req, srv_txn_op *op, int32_t partition);
/* Sends a LIST op to shard `shard`. */
void srv_txn_op_send_shard(srv_req *req, srv_txn_op *op, int shard);
void srv_txn_op_free(srv_txn_op *op);

/* KIP-890 part 1, shared by Produce and TxnOffsetCommit: asks the
 * coordinator of txn_id (its __transaction_state partition, from the
 * handler's srv_group_partition_for) whether each of parts (heap, taken in
 * every case) is in the producer's ongoing transaction. With client_tv 2
 * (Produce v12+, TxnOffsetCommit v5+: KIP-890 part 2) the coordinator adds
 * them instead, as AddPartitionsToTxn would, and one error answers all.
 * Returns 0 when sent: done(op) runs later on the request's shard and reads
 * each part's answer with srv_txn_verify_result. Else the error to answer:
 * nothing was sent and user is still the caller's. */
int16_t srv_txn_verify_send(srv_req *req, int32_t partition, kp_str txn_id, int64_t producer_id,
                            int16_t producer_epoch, int16_t client_tv, srv_txn_tp *parts, int32_t nparts,
                            srv_txn_op_done_fn done, void *user, void (*drop_user)(void *user));
/* The coordinator's answer for part i of a verify op: the op's error, else the part's. */
int16_t srv_txn_verify_result(const srv_txn_op *op, int32_t i);

/* The transaction version a request's version implies (Kafka's
 * KafkaApis): 2 for Produce v12+, TxnOffsetCommit v5+, AddPartitionsToTxn
 * v5+ and EndTxn v5+ (KIP-890 part 2, sent only by clients that saw
 * transaction.version 2 finalized), else 0. */
int16_t srv_txn_client_tv(int16_t api_key, int16_t version);

/* Kafka's error for an old request version (KafkaApis): PRODUCER_FENCED is
 * INVALID_PRODUCER_EPOCH below first_fenced_version. */
int16_t srv_txn_map_fenced(int16_t error, int16_t version, int16_t first_fenced_version);

/* A Produce's answer for a partition the coordinator refused to verify
 * (KIP-890 part 1), as Kafka 4.4 answers (run and compared): a partition
 * outside the transaction INVALID_TXN_STATE with *msg before Produce v11,
 * TRANSACTION_ABORTABLE from v11; a fence INVALID_PRODUCER_EPOCH; a
 * coordinator not ready NOT_ENOUGH_REPLICAS (ReplicaManager's mapping: the
 * producer retries); *msg NULL otherwise. */
int16_t srv_txn_produce_error(int16_t verify_error, int16_t produce_version, const char **msg);

/* A TxnOffsetCommit's answer when the coordinator refused to verify the
 * group's __consumer_offsets partition, as Kafka 4.4 answers (run and
 * compared): outside the transaction INVALID_TXN_STATE before v4,
 * TRANSACTION_ABORTABLE from v4; a fence INVALID_PRODUCER_EPOCH; a
 * coordinator not ready COORDINATOR_NOT_AVAILABLE (the group coordinator's
 * mapping of ReplicaManager's NOT_ENOUGH_REPLICAS: the producer retries). */
int16_t srv_txn_offset_commit_error(int16_t verify_error, int16_t version);

#endif

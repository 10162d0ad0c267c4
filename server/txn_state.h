/*
 * txn_state.h — the transaction coordinator's metadata of one transactional
 * id and its decisions, as pure functions: each takes the metadata, the
 * request and the time, and fills a srv_txn_step with the Kafka error a
 * client gets and, when the state changes, the record to persist, the
 * markers to write afterwards and the producer id it consumed. Kafka's
 * TransactionCoordinator / TransactionMetadata are the reference; each
 * decision names the function it mirrors.
 *
 * The caller (the handler layer, later) runs a step as Kafka does:
 *   step.write == false: answer step.error now.
 *   step.write == true:  srv_txn_begin (the id is busy: concurrent requests
 *     get CONCURRENT_TRANSACTIONS), append the record (srv_txn_step_record),
 *     then srv_txn_written on success or srv_txn_write_failed on failure, and
 *     only then answer (step.error on success, the write's error otherwise).
 *   step.markers != NONE after srv_txn_written: write that marker to every
 *     partition of the metadata; when all are durable, srv_txn_decide_complete
 *     (meanwhile the id is pending its Complete state, as in Kafka; a failed
 *     Complete write leaves it so: write it again).
 *
 * Owns the metadata struct and every state rule. Must not: allocate producer
 * ids (the caller offers one, a step says if it took it), read a clock, touch
 * a log or the network, or keep a pointer to the caller's request.
 */
#ifndef SRV_TXN_STATE_H
#define SRV_TXN_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "txn_log.h"

#define SRV_TXN_NO_PENDING    (-1)
#define SRV_TXN_OFFSETS_TOPIC "__consumer_offsets"

typedef struct srv_txn_cfg {
    int32_t max_timeout_ms;   /* transaction.max.timeout.ms (Kafka's default 900000) */
    int64_t id_expiration_ms; /* transactional.id.expiration.ms (Kafka's default 604800000) */
    int16_t tv_level;         /* finalized transaction.version: the log value version, and the
                                 version of aborts the coordinator starts itself (fences, timeouts) */
} srv_txn_cfg;

typedef struct srv_txn_meta {
    char *txn_id; /* heap, NUL after id_len bytes */
    int32_t id_len;
    srv_txn_image img;  /* what the last record says */
    int16_t last_epoch; /* in memory only (no field in the record): -1 after a load */
    int pending;        /* the srv_txn_state being written (Complete* while a Prepare state's markers
                           are written), SRV_TXN_DEAD for a tombstone, or NO_PENDING */
    bool failed_fence;  /* a fence's write failed: its epoch was never handed out, do not bump again */
} srv_txn_meta;

typedef enum srv_txn_marker {
    SRV_TXN_MARK_NONE = 0,
    SRV_TXN_MARK_COMMIT,
    SRV_TXN_MARK_ABORT,
} srv_txn_marker;

typedef struct srv_txn_step {
    int16_t error;           /* the client's error code (see the flow above) */
    bool write;              /* persist next (or a tombstone) before answering */
    bool tombstone;          /* expiration: the key with a null value; the id goes once written */
    bool fence;              /* the write fences the current producer (a failure is remembered) */
    bool pid_used;           /* the offered new producer id was taken */
    srv_txn_image next;      /* the record's content (owned by the step) */
    int16_t next_last_epoch; /* the in-memory last epoch after the transition */
    srv_txn_marker markers;  /* after the write: markers to every partition of next */
    int64_t answer_pid;      /* InitProducerId, and EndTxn v5+ (KIP-890), on success */
    int16_t answer_epoch;
} srv_txn_step;

/* Epochs Short.MaxValue - 1 and above are exhausted (TransactionMetadata.isEpochExhausted):
 * the coordinator keeps MaxValue to fence with. */
bool srv_txn_epoch_exhausted(int16_t epoch);

/* A new id's metadata, as Kafka creates it before the first InitProducerId
 * (producer id given, epoch -1, Empty); NULL when memory ran out. */
srv_txn_meta *srv_txn_meta_new(const char *id, int32_t id_len, int64_t producer_id, int32_t timeout_ms,
                               int64_t now);
/* The metadata a loaded record describes (takes img; last epoch -1, nothing pending). */
srv_txn_meta *srv_txn_meta_from_image(const char *id, int32_t id_len, srv_txn_image *img);
void srv_txn_meta_free(srv_txn_meta *m);

void srv_txn_step_clear(srv_txn_step *s);
/* The step's key and value bytes (value empty and *tombstone set for a tombstone). */
int srv_txn_step_record(const srv_txn_cfg *cfg, const srv_txn_meta *m, const srv_txn_step *s, kp_writer *key,
                        kp_writer *value);

void srv_txn_begin(srv_txn_meta *m, const srv_txn_step *s);
void srv_txn_written(srv_txn_meta *m, srv_txn_step *s); /* takes s->next */
void srv_txn_write_failed(srv_txn_meta *m, const srv_txn_step *s);

/* InitProducerId with a transactional id. The caller runs the precheck
 * first and, when the id has no metadata, creates it with srv_txn_meta_new
 * (a producer id of its own), as Kafka does before deciding; that metadata
 * stays even if the write fails. has_expected: KIP-360's producer id and
 * epoch in the request (both not -1). */
int16_t srv_txn_init_precheck(const srv_txn_cfg *cfg, int32_t id_len, int32_t timeout_ms);
void srv_txn_decide_init(const srv_txn_cfg *cfg, srv_txn_meta *m, int32_t timeout_ms, bool has_expected,
                         int64_t exp_pid, int16_t exp_epoch, int64_t new_pid, int64_t now, srv_txn_step *out);

/* AddPartitionsToTxn (client_tv: 2 for a v5+ request or a KIP-890 implicit add, else 0). */
void srv_txn_decide_add_partitions(const srv_txn_meta *m, int64_t pid, int16_t epoch, const srv_txn_tp *parts,
                                   int32_t nparts, int16_t client_tv, int64_t now, srv_txn_step *out);
/* AddOffsetsToTxn: the group's __consumer_offsets partition joins the transaction. */
void srv_txn_decide_add_offsets(const srv_txn_meta *m, int64_t pid, int16_t epoch, int32_t offsets_partition,
                                int16_t client_tv, int64_t now, srv_txn_step *out);
/* AddPartitionsToTxn v4+ verify-only: returns the error for all partitions,
 * or 0 with per_part[i] = NONE or TRANSACTION_ABORTABLE. Never writes. */
int16_t srv_txn_verify_partitions(const srv_txn_meta *m, int64_t pid, int16_t epoch, const srv_txn_tp *parts,
                                  int32_t nparts, int16_t *per_part);

/* EndTxn from a client (client_tv: 2 for a v5+ request, else 0). */
void srv_txn_decide_end(const srv_txn_cfg *cfg, srv_txn_meta *m, int64_t pid, int16_t epoch, bool commit,
                        int16_t client_tv, int64_t new_pid, int64_t now, srv_txn_step *out);

/* Every marker of a Prepare* state is durable: the Complete* record. */
void srv_txn_decide_complete(const srv_txn_meta *m, int64_t now, srv_txn_step *out);
/* The marker a loaded or running metadata still owes (Prepare* states), else NONE. */
srv_txn_marker srv_txn_markers_owed(const srv_txn_meta *m);

/* transaction.timeout.ms: an Ongoing transaction started more than its timeout ago. */
bool srv_txn_timed_out(const srv_txn_meta *m, int64_t now);
void srv_txn_decide_timeout(const srv_txn_cfg *cfg, srv_txn_meta *m, int64_t now, srv_txn_step *out);

/* transactional.id.expiration.ms: an idle Empty / Complete* id becomes a tombstone. */
bool srv_txn_expired(const srv_txn_cfg *cfg, const srv_txn_meta *m, int64_t now);
void srv_txn_decide_expire(const srv_txn_cfg *cfg, const srv_txn_meta *m, srv_txn_step *out);

#endif

/*
 * txn_log.h — the records of __transaction_state, in Kafka's shape: the key
 * is the int16 record type 0 then TransactionLogKey v0 (the transactional
 * id); the value is an int16 version (0, or 1 = flexible with the tagged
 * PreviousProducerId, NextProducerId and ClientTransactionVersion of
 * KIP-890) then TransactionLogValue; a null value is the tombstone of an
 * expired transactional id.
 *
 * Owns the byte layout of those records (no other file writes or parses
 * them) and the persisted image of one transactional id (srv_txn_image).
 * Must not: decide anything about transactions (txn_state.c does), touch a
 * log, or trust a record read back (every length is bounds-checked, a bad
 * record is refused whole with a code, never applied half-way).
 */
#ifndef SRV_TXN_LOG_H
#define SRV_TXN_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* Kafka's TransactionState ids: the TransactionStatus byte of the value.
 * Dead and PrepareEpochFence are never written by Kafka; a record carrying
 * them is refused on read. */
typedef enum srv_txn_state {
    SRV_TXN_EMPTY = 0,
    SRV_TXN_ONGOING = 1,
    SRV_TXN_PREPARE_COMMIT = 2,
    SRV_TXN_PREPARE_ABORT = 3,
    SRV_TXN_COMPLETE_COMMIT = 4,
    SRV_TXN_COMPLETE_ABORT = 5,
    SRV_TXN_DEAD = 6,
    SRV_TXN_PREPARE_EPOCH_FENCE = 7,
} srv_txn_state;

#define SRV_TXN_NO_PID   ((int64_t)-1)
#define SRV_TXN_NO_EPOCH ((int16_t)-1)

const char *srv_txn_state_name(srv_txn_state s); /* Kafka's names ("PrepareCommit"), for Describe/List */

/* A partition in a transaction; the topic is a heap copy of topic_len bytes
 * (a NUL follows, for log lines only). */
typedef struct srv_txn_tp {
    char *topic;
    int32_t topic_len;
    int32_t partition;
} srv_txn_tp;

/* What one value record holds. parts are in record order; an Empty image
 * is written with a null partition list, every other state with an array
 * (possibly empty), as Kafka's TransactionLog.valueToBytes does. */
typedef struct srv_txn_image {
    int64_t producer_id;
    int64_t prev_producer_id; /* tagged 0 (v1+), default -1 */
    int64_t next_producer_id; /* tagged 1 (v1+), default -1 */
    int16_t producer_epoch;
    int32_t timeout_ms;
    srv_txn_state state;
    srv_txn_tp *parts;
    int32_t nparts;
    int64_t last_update_ms;
    int64_t start_ms;
    int16_t client_tv; /* tagged 2 (v1+), default 0: the client's transaction version */
} srv_txn_image;

void srv_txn_image_init(srv_txn_image *img);  /* defaults: no pid, no epoch, Empty, no partitions */
void srv_txn_image_clear(srv_txn_image *img); /* frees the partitions, then init */
/* Deep copy; 0, or -1 when memory ran out (dst is then cleared). */
int srv_txn_image_copy(srv_txn_image *dst, const srv_txn_image *src);
/* Appends (topic, partition) unless present; 0, or -1 when memory ran out. */
int srv_txn_image_add_part(srv_txn_image *img, const char *topic, int32_t topic_len, int32_t partition);
bool srv_txn_image_has_part(const srv_txn_image *img, const char *topic, int32_t topic_len,
                            int32_t partition);
bool srv_txn_image_equal(const srv_txn_image *a, const srv_txn_image *b); /* partitions as sets */

/* The value version Kafka writes for a finalized transaction.version feature
 * level (TransactionVersion.transactionLogValueVersion): 0 for TV0, else 1. */
int16_t srv_txn_log_value_version(int16_t tv_level);

/* Key bytes (record type 0 + the id) into w; 0 or a KP_E_* code. */
int srv_txn_log_key(kp_writer *w, const char *txn_id, int32_t id_len);
/* Value bytes (version + body) into w; 0 or a KP_E_* code. Version 0 cannot
 * carry the tagged fields: they are written only from version 1. */
int srv_txn_log_value(kp_writer *w, int16_t version, const srv_txn_image *img);

enum {
    SRV_TXN_LOG_OK = 0,
    SRV_TXN_LOG_E_KEY_VERSION = 1,   /* another coordinator's record type: skipped, as Kafka does */
    SRV_TXN_LOG_E_VALUE_VERSION = 2, /* a value version newer than 1 */
    SRV_TXN_LOG_E_MALFORMED = 3,     /* short, overlong or inconsistent bytes */
    SRV_TXN_LOG_E_STATE = 4,         /* a status byte that is not a persisted state */
    SRV_TXN_LOG_E_NOMEM = 5,
};

/* One decoded record: a value, or the tombstone of txn_id. */
typedef struct srv_txn_logrec {
    char *txn_id; /* heap copy, NUL after id_len bytes */
    int32_t id_len;
    bool tombstone;
    int16_t value_version;
    srv_txn_image img;
} srv_txn_logrec;

/* Decodes a key and a value (value NULL with vlen < 0: tombstone) into out
 * (which the caller clears with srv_txn_logrec_clear, also after an error). */
int srv_txn_log_decode(const uint8_t *key, int32_t klen, const uint8_t *value, int32_t vlen,
                       srv_txn_logrec *out);
void srv_txn_logrec_clear(srv_txn_logrec *r);

#endif

/*
 * validate.h — the checks Kafka's broker makes on a batch a client produces
 * (UnifiedLog.analyzeAndValidateRecords and LogValidator), with Kafka's error
 * codes, per-record errors (Produce v8+, KIP-467) and messages.
 *
 * Owns: the per-topic validation policy (cleanup.policy, timestamp type and
 * bounds, max.message.bytes) and the verdict on one partition's records of a
 * Produce request: base offset, batch size, CRC, offset range and count,
 * control and transactional flags, producer fields, each record's form, keys
 * on compacted topics, CreateTime bounds and producer-set LogAppendTime.
 *
 * Must not: touch partitions, the storage engine or another shard's memory
 * (messages are built in the caller's arena); decompress a batch unless a
 * record-level rule of the topic needs its records; change the batch.
 */
#ifndef SRV_VALIDATE_H
#define SRV_VALIDATE_H

#include "config.h"
#include "kp_messages.h"
#include "meta.h"

typedef struct srv_validate_policy {
    int compact;           /* cleanup.policy contains "compact": records need keys */
    int del;               /* cleanup.policy contains "delete": DeleteRecords is allowed */
    int log_append_time;   /* message.timestamp.type=LogAppendTime */
    int64_t ts_before_ms;  /* CreateTime: how far in the past (INT64_MAX: no bound) */
    int64_t ts_after_ms;   /* ... and in the future */
    int64_t max_msg_bytes; /* max.message.bytes: the whole batch, 12-byte log header included */
    int64_t segment_bytes; /* segment.bytes: no batch may be larger than a segment */
    size_t max_plain;      /* cap on a decompressed records section */
    int txn_allowed;       /* per request, not cached: transactional batches may go to the log */
} srv_validate_policy;

/* The topic's effective settings (override, else broker synonym, else
 * default), resolved as Kafka 3.9 does, the deprecated
 * message.timestamp.difference.max.ms included. */
void srv_validate_policy_init(srv_validate_policy *p, const srv_config *broker, const srv_topic *t);
/* The same from a per-thread cache keyed by broker config, metadata
 * version and topic id; the pointer is valid until the next call. */
const srv_validate_policy *srv_validate_policy_get(const srv_config *broker, const srv_meta *m,
                                                   const srv_topic *t);

typedef struct srv_validate_result {
    int16_t error;        /* KP_ERR_*; 0 = valid or not a single magic-2 batch (the caller's checks) */
    kp_str error_message; /* len -1: null (Kafka sets it only with record errors) */
    kp_produce_response_batch_index_and_error_message *record_errors;
    int32_t record_errors_count;
    int before_log; /* refused before the log is asked (Kafka then answers no log start offset) */
} srv_validate_result;

/* Validates the records of one partition of a Produce request (version
 * api_version) against p at wall-clock now_ms, in Kafka's order. topic and
 * partition go into the messages. With a == NULL only the error code is
 * produced (Produce v0-7 carry no messages); otherwise messages and record
 * errors are allocated in a. Returns out->error. Records that are not one
 * magic-2 batch are left to the caller, except that Produce v3+ refuses any
 * other magic with INVALID_RECORD, as Kafka does. */
int16_t srv_validate_produce(const srv_validate_policy *p, kp_str topic, int32_t partition,
                             const uint8_t *data, size_t len, int16_t api_version, int64_t now_ms,
                             kp_arena *a, srv_validate_result *out);

/* The error for records the handler's framing check refused (iter_rc:
 * kp_batch_iter_next's result, or 1 when the batch was followed by more
 * bytes): CORRUPT_MESSAGE when the CRC does not match, as Kafka checks it
 * first; UNSUPPORTED_FOR_MESSAGE_FORMAT for a legacy set it cannot convert;
 * else INVALID_RECORD (Kafka sends no message with any of them). */
int16_t srv_validate_framing_error(const uint8_t *data, size_t len, int iter_rc);

#endif

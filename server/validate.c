/*
 * validate.c — Kafka's produce-time validation of a client's batch (see
 * validate.h): the same checks, order, error codes and messages as Apache
 * Kafka's broker (compared against Kafka 4.1 on the wire).
 *
 * Owns: the policy resolution from topic and broker configs, the batch and
 * record checks, and the KIP-467 record errors and messages.
 * Must not: touch partitions or storage, keep state between calls (but
 * the per-thread policy cache, valid for one metadata version), or allocate
 * anywhere but the caller's arena (and a scratch buffer for a decompressed
 * records section, freed before returning).
 */
#include "srv_assert.h"
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "codec.h"
#include "errors.h"
#include "logging.h"
#include "topic_config.h"

/* Kafka's own lower bound for the decompression scratch: a batch within
 * max.message.bytes may inflate well past it. */
#define PLAIN_MIN_CAP (64u << 20)

void srv_validate_policy_init(srv_validate_policy *p, const srv_config *broker, const srv_topic *t)
{
    static __thread srv_topic_config tc; /* large: keep it off the stack */
    srv_topic_overrides(t, &tc);
    char v[SRV_CONFIG_VALUE_MAX];
    v[0] = 0;
    srv_topic_config_value(broker, &tc, "cleanup.policy", v, sizeof(v), NULL);
    p->compact = strstr(v, "compact") != NULL;
    p->del = strstr(v, "delete") != NULL;
    v[0] = 0;
    srv_topic_config_value(broker, &tc, "message.timestamp.type", v, sizeof(v), NULL);
    p->log_append_time = strcmp(v, "LogAppendTime") == 0;
    int64_t before = INT64_MAX, after = INT64_MAX, diff = INT64_MAX, max = 0, seg = INT64_MAX;
    srv_topic_config_long(broker, &tc, "message.timestamp.before.max.ms", &before);
    srv_topic_config_long(broker, &tc, "message.timestamp.after.max.ms", &after);
    srv_topic_config_long(broker, &tc, "message.timestamp.difference.max.ms", &diff);
    srv_topic_config_long(broker, &tc, "max.message.bytes", &max);
    srv_topic_config_long(broker, &tc, "segment.bytes", &seg);
    /* Kafka 3.6-3.9: a bound left at its default falls back to the
     * deprecated difference.max.ms (Kafka 4 removed that key). */
    p->ts_before_ms = before != INT64_MAX ? before : diff;
    p->ts_after_ms = after != INT64_MAX ? after : diff;
    p->max_msg_bytes = max;
    p->segment_bytes = seg;
    size_t cap = (size_t)(max > 0 ? max : 0) * 16;
    p->max_plain = cap > PLAIN_MIN_CAP ? cap : PLAIN_MIN_CAP;
}

/* Resolving a policy parses configs (about 1.5 us); produce requests look
 * their topics up here instead. An entry holds for one metadata version:
 * topic configs change only with a new version, broker configs are static. */
#define POLICY_CACHE 64
typedef struct cached_policy {
    const srv_config *broker;
    uint64_t version;
    kp_uuid id;
    srv_validate_policy p;
} cached_policy;
static __thread cached_policy policy_cache[POLICY_CACHE];

const srv_validate_policy *srv_validate_policy_get(const srv_config *broker, const srv_meta *m,
                                                   const srv_topic *t)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ t->id.b[i]) * 16777619u;
    cached_policy *c = &policy_cache[h % POLICY_CACHE];
    if (c->broker != broker || c->version != m->version || memcmp(&c->id, &t->id, sizeof(t->id)) != 0) {
        srv_validate_policy_init(&c->p, broker, t);
        c->broker = broker;
        c->version = m->version;
        c->id = t->id;
    }
    return &c->p;
}

/* Java's long arithmetic wraps; Kafka's messages show the wrapped bounds. */
static int64_t jadd(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
static int64_t jsub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

static kp_str arena_printf(kp_arena *a, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kp_str arena_printf(kp_arena *a, size_t cap, const char *fmt, ...)
{
    char *buf = kp_arena_alloc(a, cap);
    if (!buf)
        return (kp_str){NULL, -1};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        return (kp_str){NULL, -1};
    return (kp_str){buf, (size_t)n < cap ? n : (int32_t)cap - 1};
}

static int16_t fail(srv_validate_result *out, int16_t err)
{
    out->error = err;
    return err;
}

enum rec_verdict { REC_OK = 0, REC_NO_KEY, REC_BAD_TS, REC_LAT_SET };

/* LogValidator.validateRecord for magic 2: the key rule first, then the
 * timestamp rules. */
static int record_verdict(const srv_validate_policy *p, const kp_batch_header *h, const kp_record *r,
                          int64_t now)
{
    if (p->compact && r->key.len < 0)
        return REC_NO_KEY;
    if (!p->log_append_time && r->timestamp != -1) {
        int64_t diff = jsub(now, r->timestamp);
        if (diff > p->ts_before_ms || jsub(0, diff) > p->ts_after_ms)
            return REC_BAD_TS;
    } else if (h->attributes & KP_ATTR_LOG_APPEND_TIME) {
        return REC_LAT_SET;
    }
    return REC_OK;
}

static kp_str record_message(const srv_validate_policy *p, int verdict, const kp_record *r, kp_str topic,
                             int32_t partition, int64_t now, kp_str *no_key_msg, kp_arena *a)
{
    switch (verdict) {
    case REC_NO_KEY:
        /* The same text for every keyless record: built once. */
        if (no_key_msg->len < 0)
            *no_key_msg = arena_printf(
                a, 400, "Compacted topic cannot accept message without key in topic partition %.*s-%d",
                (int)topic.len, topic.p, (int)partition);
        return *no_key_msg;
    case REC_BAD_TS:
        return arena_printf(
            a, 200,
            "Timestamp %lld of message with offset %lld is out of range. The timestamp should be "
            "within [%lld, %lld]",
            (long long)r->timestamp, (long long)r->offset, (long long)jsub(now, p->ts_before_ms),
            (long long)jadd(now, p->ts_after_ms));
    default:
        return arena_printf(
            a, 300,
            "Invalid timestamp type in message DefaultRecord(offset=%lld, timestamp=%lld, key=%d "
            "bytes, value=%d bytes). Producer should not set timestamp type to LogAppendTime.",
            (long long)r->offset, (long long)r->timestamp, r->key.len < 0 ? 0 : (int)r->key.len,
            r->value.len < 0 ? 0 : (int)r->value.len);
    }
}

/* LogValidator.processRecordErrors: one top-level message for the batch. */
static void summary_message(srv_validate_result *out, kp_arena *a)
{
    if (out->error == KP_ERR_INVALID_TIMESTAMP) {
        out->error_message = kp_str_c("One or more records have been rejected due to invalid timestamp");
        return;
    }
    size_t cap = 160;
    int32_t shown = out->record_errors_count < 3 ? out->record_errors_count : 3;
    for (int32_t i = 0; i < shown; i++)
        cap += 48 + (size_t)(out->record_errors[i].batch_index_error_message.len > 0
                                 ? out->record_errors[i].batch_index_error_message.len
                                 : 0);
    char *buf = kp_arena_alloc(a, cap);
    if (!buf)
        return;
    size_t n =
        (size_t)snprintf(buf, cap,
                         "One or more records have been rejected due to %d record errors in total, and only "
                         "showing the first three errors at most: [",
                         (int)out->record_errors_count);
    for (int32_t i = 0; i < shown && n < cap; i++) {
        kp_str m = out->record_errors[i].batch_index_error_message;
        n += (size_t)snprintf(buf + n, cap - n, "%sRecordError(batchIndex=%d, message='%.*s')", i ? ", " : "",
                              (int)out->record_errors[i].batch_index, m.len > 0 ? (int)m.len : 0,
                              m.len > 0 ? m.p : "");
    }
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "]");
    out->error_message = (kp_str){buf, (int32_t)(n < cap ? n : cap - 1)};
}

/* Walks the records (decompressed into plain when needed) applying the
 * record rules; fills the record errors. */
static int16_t check_records(const srv_validate_policy *p, const kp_batch *b, kp_str topic, int32_t partition,
                             int64_t now, kp_arena *a, srv_validate_result *out)
{
    int codec = b->h.attributes & KP_ATTR_CODEC_MASK;
    const uint8_t *recs = b->records;
    size_t n = b->records_size;
    kp_writer plain;
    kp_writer_init(&plain, 0);
    if (codec != KP_CODEC_NONE) {
        int rc = kp_decompress(codec, b->records, b->records_size, p->max_plain, &plain);
        if (rc != 0) {
            kp_writer_free(&plain);
            /* Kafka: an unreadable compressed stream is a corrupt record. */
            return fail(out, rc == KP_E_UNSUPPORTED ? KP_ERR_UNSUPPORTED_COMPRESSION_TYPE
                             : rc == KP_E_TOO_LARGE ? KP_ERR_MESSAGE_TOO_LARGE
                                                    : KP_ERR_INVALID_RECORD);
        }
        recs = plain.buf;
        n = plain.len;
    }
    kp_record_iter it;
    kp_record r;
    kp_record_iter_init(&it, &b->h, recs, n);
    int more, has_ts = 0, nerr = 0;
    kp_str no_key_msg = {NULL, -1};
    int32_t idx = 0;
    /* Errors are rare: a first pass counts them without allocating. */
    while ((more = kp_record_iter_next(&it, &r)) == 1) {
        int v = record_verdict(p, &b->h, &r, now);
        if (v != REC_OK) {
            nerr++;
            has_ts |= v != REC_NO_KEY;
        }
        idx++;
    }
    if (more < 0 || idx != b->h.record_count) {
        kp_writer_free(&plain);
        return fail(out, KP_ERR_INVALID_RECORD); /* a malformed record: no record errors, as in Kafka */
    }
    if (nerr == 0) {
        kp_writer_free(&plain);
        return 0;
    }
    out->error = has_ts ? KP_ERR_INVALID_TIMESTAMP : KP_ERR_INVALID_RECORD;
    if (a) {
        out->record_errors = kp_arena_alloc(a, (size_t)nerr * sizeof(*out->record_errors));
        if (out->record_errors) {
            kp_record_iter_init(&it, &b->h, recs, n);
            idx = 0;
            while (kp_record_iter_next(&it, &r) == 1) {
                int v = record_verdict(p, &b->h, &r, now);
                if (v != REC_OK) {
                    /* Both passes see the same bytes and clock. */
                    SRV_ASSERT(out->record_errors_count < nerr,
                               "validate: second pass found more record errors than the first (%d)", nerr);
                    kp_produce_response_batch_index_and_error_message *e =
                        &out->record_errors[out->record_errors_count++];
                    e->batch_index = idx;
                    e->batch_index_error_message =
                        record_message(p, v, &r, topic, partition, now, &no_key_msg, a);
                }
                idx++;
            }
            summary_message(out, a);
        }
    }
    kp_writer_free(&plain);
    return out->error;
}

/* UnifiedLog.append, after validation: a batch larger than a whole segment
 * is RECORD_LIST_TOO_LARGE (Kafka measures the batch it would store, which
 * differs from the produced one only when compression.type rewrites it). */
static int16_t segment_check(const srv_validate_policy *p, int64_t size, srv_validate_result *out)
{
    if (size <= p->segment_bytes)
        return 0;
    out->before_log = 1;
    return fail(out, KP_ERR_RECORD_LIST_TOO_LARGE);
}

/* A batch-level refusal; Kafka checks the CRC before these, so a corrupt
 * batch is named corrupt (computed here only on this rare path). */
static int16_t refuse(srv_validate_result *out, const uint8_t *data, size_t size, uint32_t crc, int16_t err)
{
    if (kp_crc32c(0, data + KP_BATCH_CRC_START, size - KP_BATCH_CRC_START) != crc) {
        out->before_log = 1;
        err = KP_ERR_CORRUPT_MESSAGE;
    }
    return fail(out, err);
}

int16_t srv_validate_produce(const srv_validate_policy *p, kp_str topic, int32_t partition,
                             const uint8_t *data, size_t len, int16_t api_version, int64_t now_ms,
                             kp_arena *a, srv_validate_result *out)
{
    memset(out, 0, sizeof(*out));
    out->error_message = (kp_str){NULL, -1};
    if ((!data || len == 0) && api_version >= 3) {
        /* ProduceRequest.validateRecords: exactly one batch, so none is wrong. */
        out->before_log = 1;
        return fail(out, KP_ERR_INVALID_RECORD);
    }
    if (!data || len <= 16)
        return 0; /* too short to hold a magic byte: the caller's framing checks answer */
    if (data[16] != 2) {
        /* Produce v3+ is magic 2 only (ProduceRequest.validateRecords). */
        if (api_version < 3 || data[16] > 1)
            return 0;
        out->before_log = 1;
        return fail(out, KP_ERR_INVALID_RECORD);
    }
    kp_batch b;
    if (kp_batch_header_parse(data, len, &b.h) != 0)
        return 0;
    const kp_batch_header *h = &b.h;
    /* Kafka refuses the transactional batches of a request without a
     * transactional id (authorizing the null id fails); the handler allows
     * them only for a request with an id that partitions take unverified. */
    if ((h->attributes & KP_ATTR_TRANSACTIONAL) && !p->txn_allowed) {
        out->before_log = 1;
        return fail(out, KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    }
    int64_t size = (int64_t)KP_BATCH_LOG_OVERHEAD + h->batch_length;
    if (h->batch_length < KP_BATCH_HEADER_SIZE - KP_BATCH_LOG_OVERHEAD || (uint64_t)size > len)
        return 0; /* truncated or lying length: the storage engine's checks answer */
    /* UnifiedLog.analyzeAndValidateRecords, then LogValidator.validateBatch. */
    if (h->base_offset != 0)
        return fail(out, KP_ERR_INVALID_RECORD);
    if (size > p->max_msg_bytes) {
        out->before_log = 1;
        return fail(out, KP_ERR_MESSAGE_TOO_LARGE);
    }
    if ((int64_t)h->last_offset_delta + 1 <= 0 || h->record_count <= 0 ||
        (int64_t)h->last_offset_delta + 1 != h->record_count || (h->attributes & KP_ATTR_CONTROL) ||
        (h->producer_id >= 0 && h->base_sequence < 0))
        return refuse(out, data, (size_t)size, h->crc, KP_ERR_INVALID_RECORD);
    /* Uncompressed records are walked here only when the topic has a record
     * rule (keys, CreateTime bounds) or the producer set LogAppendTime
     * itself: otherwise the handler's and the storage engine's walks are
     * the only ones. Compressed records are always inflated and walked, as
     * Kafka does: nothing else looks inside them, and a wrong count or
     * inner offsets would reach consumers. */
    int codec = h->attributes & KP_ATTR_CODEC_MASK;
    if (codec > KP_CODEC_ZSTD)
        return 0; /* unknown codec: the storage engine refuses it */
    int bounded = !p->log_append_time && (p->ts_before_ms != INT64_MAX || p->ts_after_ms != INT64_MAX);
    if (codec == KP_CODEC_NONE && !p->compact && !bounded && !(h->attributes & KP_ATTR_LOG_APPEND_TIME))
        return segment_check(p, size, out);
    if (kp_crc32c(0, data + KP_BATCH_CRC_START, (size_t)size - KP_BATCH_CRC_START) != h->crc) {
        out->before_log = 1;
        return fail(out, KP_ERR_CORRUPT_MESSAGE);
    }
    b.data = data;
    b.size = (size_t)size;
    b.records = data + KP_BATCH_HEADER_SIZE;
    b.records_size = (size_t)size - KP_BATCH_HEADER_SIZE;
    if (check_records(p, &b, topic, partition, now_ms, a, out))
        return out->error;
    return segment_check(p, size, out);
}

int16_t srv_validate_framing_error(const uint8_t *data, size_t len, int iter_rc)
{
    if (iter_rc == KP_E_UNSUPPORTED)
        return KP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    kp_batch_header h;
    if (iter_rc < 0 && kp_batch_header_parse(data, len, &h) == 0 && h.batch_length >= 0 &&
        (uint64_t)KP_BATCH_LOG_OVERHEAD + (uint64_t)h.batch_length <= len &&
        kp_crc32c(0, data + KP_BATCH_CRC_START,
                  KP_BATCH_LOG_OVERHEAD + (size_t)h.batch_length - KP_BATCH_CRC_START) != h.crc)
        return KP_ERR_CORRUPT_MESSAGE;
    return KP_ERR_INVALID_RECORD;
}

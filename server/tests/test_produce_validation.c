/*
 * test_produce_validation.c — Kafka's produce-time record validation against
 * a real kbroker process: error codes, KIP-467 record errors and messages per
 * Produce version, as Apache Kafka 4.1 answered the same requests (keys on
 * compacted topics, CreateTime bounds, producer-set LogAppendTime, the
 * log_append_time_ms answer, max.message.bytes before recompression,
 * segment.bytes, batch header rules, compressed record counts, CRC before
 * form, magic for v3+, empty records, v0-2 message sets), and DeleteRecords
 * refused by a cleanup.policy without "delete" (POLICY_VIOLATION, Kafka 4.4).
 *
 * Test-only; starts its own broker (wire_util.h) and stops it.
 */
#include "kb_test.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "codec.h"
#include "errors.h"
#include "frame.h"
#include "legacy.h"
#include "wire_util.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void create_topic(const char *name, const char *k1, const char *v1, const char *k2, const char *v2)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    kp_create_topics_request rq;
    kp_create_topics_request_init(&rq);
    kp_create_topics_request_creatable_topic t;
    kp_create_topics_request_creatable_topic_init(&t);
    kp_create_topics_request_creatable_topic_config c[2];
    kp_create_topics_request_creatable_topic_config_init(&c[0]);
    kp_create_topics_request_creatable_topic_config_init(&c[1]);
    t.name = kp_str_c(name);
    t.num_partitions = 1;
    t.replication_factor = 1;
    t.configs = c;
    t.configs_count = 0;
    if (k1) {
        c[0].name = kp_str_c(k1);
        c[0].value = kp_str_c(v1);
        t.configs_count = 1;
    }
    if (k2) {
        c[1].name = kp_str_c(k2);
        c[1].value = kp_str_c(v2);
        t.configs_count = 2;
    }
    rq.topics = &t;
    rq.topics_count = 1;
    rq.timeout_ms = 5000;
    CU_ASSERT_EQUAL_FATAL(send_request(fd, KP_API_CREATE_TOPICS, 7, 1, &rq), 0);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_create_topics_response resp;
    int32_t corr;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(recv_response(fd, KP_API_CREATE_TOPICS, 7, &corr, &a, &resp, &frame), 0);
    CU_ASSERT_EQUAL(resp.topics[0].error_code, 0);
    free(frame);
    kp_arena_reset(&a);
    close(fd);
}

/* One batch: n records, key[i] NULL when keyless, timestamps ts0 + i. */
typedef struct rec_spec {
    const char *key; /* NULL: null key */
    const char *value;
    int64_t ts;
} rec_spec;

static void build(kp_writer *out, const rec_spec *r, int n, int codec)
{
    kp_writer_init(out, 0);
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, codec);
    for (int i = 0; i < n; i++) {
        kp_bytes k =
            r[i].key ? (kp_bytes){(const uint8_t *)r[i].key, (int32_t)strlen(r[i].key)} : KP_BYTES_NULL;
        kp_bytes v = {(const uint8_t *)r[i].value, (int32_t)strlen(r[i].value)};
        CU_ASSERT_EQUAL_FATAL(kp_batch_builder_add(&bb, r[i].ts, k, v, NULL, 0), 0);
    }
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, out), 0);
    kp_batch_builder_free(&bb);
}

/* Header field offsets of a magic-2 batch, for crafting what no builder
 * writes. */
#define OFF_BASE_OFFSET 0
#define OFF_ATTRIBUTES  21
#define OFF_LOD         23
#define OFF_PRODUCER_ID 43
#define OFF_BASE_SEQ    53
#define OFF_COUNT       57

static void fix_crc(kp_writer *w)
{
    uint32_t crc = kp_crc32c(0, w->buf + KP_BATCH_CRC_START, w->len - KP_BATCH_CRC_START);
    kp_put_be32(w->buf + 17, crc);
}

/* The decoded answer of one partition, strings copied out of the frame. */
typedef struct answer {
    int16_t error;
    int64_t base_offset, log_append_time, log_start_offset;
    int nrec;
    int32_t rec_index[8];
    char rec_msg[8][400];
    int has_msg;
    char msg[1200];
} answer;

static void copy_str(char *dst, size_t cap, kp_str s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = 0;
}

static answer produce_raw(const char *topic, const uint8_t *recs, size_t len, int16_t v)
{
    answer ans;
    memset(&ans, 0, sizeof(ans));
    ans.error = -100;
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    kp_produce_request rq;
    kp_produce_request_init(&rq);
    kp_produce_request_topic_produce_data td;
    kp_produce_request_topic_produce_data_init(&td);
    kp_produce_request_partition_produce_data pd;
    kp_produce_request_partition_produce_data_init(&pd);
    pd.index = 0;
    pd.records = (kp_bytes){recs, (int32_t)len};
    td.name = kp_str_c(topic);
    td.partition_data = &pd;
    td.partition_data_count = 1;
    rq.acks = -1;
    rq.timeout_ms = 5000;
    rq.topic_data = &td;
    rq.topic_data_count = 1;
    CU_ASSERT_EQUAL_FATAL(send_request(fd, KP_API_PRODUCE, v, 2, &rq), 0);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_produce_response resp;
    int32_t corr;
    uint8_t *frame = NULL;
    if (recv_response(fd, KP_API_PRODUCE, v, &corr, &a, &resp, &frame) == 0 && resp.responses_count == 1 &&
        resp.responses[0].partition_responses_count == 1) {
        const kp_produce_response_partition_produce_response *pr = &resp.responses[0].partition_responses[0];
        ans.error = pr->error_code;
        ans.base_offset = pr->base_offset;
        ans.log_append_time = pr->log_append_time_ms;
        ans.log_start_offset = pr->log_start_offset;
        ans.nrec = pr->record_errors_count > 0 ? pr->record_errors_count : 0;
        for (int i = 0; i < ans.nrec && i < 8; i++) {
            ans.rec_index[i] = pr->record_errors[i].batch_index;
            copy_str(ans.rec_msg[i], sizeof(ans.rec_msg[i]), pr->record_errors[i].batch_index_error_message);
        }
        ans.has_msg = pr->error_message.len >= 0;
        copy_str(ans.msg, sizeof(ans.msg), pr->error_message);
    }
    free(frame);
    kp_arena_reset(&a);
    close(fd);
    return ans;
}

static answer produce_w(const char *topic, kp_writer *w, int16_t v)
{
    answer a = produce_raw(topic, w->buf, w->len, v);
    return a;
}

/* The max_timestamp and attributes of the batch at offset 0 (Fetch v4). */
static int fetch_first(const char *topic, int64_t *max_ts, int16_t *attrs)
{
    int fd = connect_broker();
    if (fd < 0)
        return -1;
    kp_fetch_request rq;
    kp_fetch_request_init(&rq);
    rq.replica_id = -1;
    rq.max_wait_ms = 10;
    rq.min_bytes = 1;
    rq.max_bytes = 1 << 20;
    kp_fetch_request_fetch_topic t;
    kp_fetch_request_fetch_topic_init(&t);
    kp_fetch_request_fetch_partition p;
    kp_fetch_request_fetch_partition_init(&p);
    p.partition = 0;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    t.topic = kp_str_c(topic);
    t.partitions = &p;
    t.partitions_count = 1;
    rq.topics = &t;
    rq.topics_count = 1;
    int rc = -1;
    if (send_request(fd, KP_API_FETCH, 4, 3, &rq) == 0) {
        kp_arena a;
        kp_arena_init(&a, 0);
        kp_fetch_response resp;
        int32_t corr;
        uint8_t *frame = NULL;
        if (recv_response(fd, KP_API_FETCH, 4, &corr, &a, &resp, &frame) == 0 && resp.responses_count == 1 &&
            resp.responses[0].partitions_count == 1) {
            kp_bytes r = resp.responses[0].partitions[0].records;
            kp_batch_header h;
            if (r.len > 0 && kp_batch_header_parse(r.p, (size_t)r.len, &h) == 0) {
                *max_ts = h.max_timestamp;
                *attrs = h.attributes;
                rc = 0;
            }
        }
        free(frame);
        kp_arena_reset(&a);
    }
    close(fd);
    return rc;
}

#define NO_KEY_MSG(t) "Compacted topic cannot accept message without key in topic partition " t "-0"

static void test_keyless_on_compacted(void)
{
    create_topic("vc", "cleanup.policy", "compact", NULL, NULL);
    int64_t now = now_ms();
    rec_spec r[3] = {{NULL, "v", now}, {"k", "v", now}, {NULL, "v", now}};
    kp_writer w;
    build(&w, r, 3, KP_CODEC_NONE);
    /* v9 (flexible) and v8: record errors and the summary, as Kafka 4.1. */
    for (int16_t v = 8; v <= 9; v++) {
        answer a = produce_w("vc", &w, v);
        CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
        CU_ASSERT_EQUAL(a.base_offset, -1);
        CU_ASSERT_EQUAL(a.log_start_offset, 0);
        CU_ASSERT_EQUAL_FATAL(a.nrec, 2);
        CU_ASSERT_EQUAL(a.rec_index[0], 0);
        CU_ASSERT_EQUAL(a.rec_index[1], 2);
        CU_ASSERT_STRING_EQUAL(a.rec_msg[0], NO_KEY_MSG("vc"));
        CU_ASSERT_STRING_EQUAL(a.rec_msg[1], NO_KEY_MSG("vc"));
        CU_ASSERT_STRING_EQUAL(
            a.msg,
            "One or more records have been rejected due to 2 record errors in total, and "
            "only showing the first three errors at most: [RecordError(batchIndex=0, "
            "message='" NO_KEY_MSG("vc") "'), RecordError(batchIndex=2, message='" NO_KEY_MSG("vc") "')]");
    }
    /* v7 has neither field: the code alone. */
    answer a7 = produce_w("vc", &w, 7);
    CU_ASSERT_EQUAL(a7.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL(a7.nrec, 0);
    kp_writer_free(&w);

    /* Five keyless records: all five listed, three in the summary. */
    rec_spec r5[5];
    for (int i = 0; i < 5; i++)
        r5[i] = (rec_spec){NULL, "v", now};
    build(&w, r5, 5, KP_CODEC_NONE);
    answer a5 = produce_w("vc", &w, 9);
    CU_ASSERT_EQUAL(a5.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL(a5.nrec, 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(a5.msg, "due to 5 record errors in total"));
    CU_ASSERT_PTR_NOT_NULL(strstr(a5.msg, "RecordError(batchIndex=2,"));
    CU_ASSERT_PTR_NULL(strstr(a5.msg, "RecordError(batchIndex=3,"));
    kp_writer_free(&w);

    /* Compressed: inflated and checked the same way. */
    rec_spec rz[2] = {{"k", "v", now}, {NULL, "v", now}};
    build(&w, rz, 2, KP_CODEC_GZIP);
    answer az = produce_w("vc", &w, 9);
    CU_ASSERT_EQUAL(az.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL_FATAL(az.nrec, 1);
    CU_ASSERT_EQUAL(az.rec_index[0], 1);
    CU_ASSERT_STRING_EQUAL(az.rec_msg[0], NO_KEY_MSG("vc"));
    kp_writer_free(&w);

    /* Keyed records are still welcome, and nothing refused was stored. */
    rec_spec ok[1] = {{"k", "v", now}};
    build(&w, ok, 1, KP_CODEC_NONE);
    answer aok = produce_w("vc", &w, 9);
    CU_ASSERT_EQUAL(aok.error, 0);
    CU_ASSERT_EQUAL(aok.base_offset, 0);
    kp_writer_free(&w);
}

static int64_t jadd(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static void test_timestamp_bounds(void)
{
    create_topic("vt", "message.timestamp.before.max.ms", "3600000", NULL, NULL);
    create_topic("vf", "message.timestamp.after.max.ms", "3600000", NULL, NULL);
    int64_t t0 = now_ms();
    int64_t old = t0 - 7200000;
    rec_spec r[2] = {{"k", "v", t0}, {"k", "v", old}};
    kp_writer w;
    build(&w, r, 2, KP_CODEC_NONE);
    answer a = produce_w("vt", &w, 9);
    int64_t t1 = now_ms();
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_TIMESTAMP);
    CU_ASSERT_EQUAL(a.log_start_offset, 0);
    CU_ASSERT_STRING_EQUAL(a.msg, "One or more records have been rejected due to invalid timestamp");
    CU_ASSERT_EQUAL_FATAL(a.nrec, 1);
    CU_ASSERT_EQUAL(a.rec_index[0], 1);
    long long ts, off, lo, hi;
    CU_ASSERT_EQUAL_FATAL(sscanf(a.rec_msg[0],
                                 "Timestamp %lld of message with offset %lld is out of range. The timestamp "
                                 "should be within [%lld, %lld]",
                                 &ts, &off, &lo, &hi),
                          4);
    CU_ASSERT_EQUAL(ts, old);
    CU_ASSERT_EQUAL(off, 1);
    CU_ASSERT(lo >= t0 - 3600000 && lo <= t1 - 3600000);
    /* after.max.ms is unbounded (Long.MAX_VALUE): Kafka prints the wrapped sum. */
    CU_ASSERT_EQUAL(hi, jadd(lo + 3600000, INT64_MAX));
    kp_writer_free(&w);

    /* Compressed, too far in the future on the other topic. */
    int64_t fut = t0 + 7200000;
    rec_spec rf[1] = {{"k", "v", fut}};
    build(&w, rf, 1, KP_CODEC_GZIP);
    a = produce_w("vf", &w, 8);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_TIMESTAMP);
    CU_ASSERT_EQUAL_FATAL(a.nrec, 1);
    CU_ASSERT_EQUAL(a.rec_index[0], 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.rec_msg[0], "of message with offset 0 is out of range"));
    kp_writer_free(&w);

    /* No timestamp (-1) is never out of range. */
    rec_spec rn[1] = {{"k", "v", -1}};
    build(&w, rn, 1, KP_CODEC_NONE);
    a = produce_w("vt", &w, 9);
    CU_ASSERT_EQUAL(a.error, 0);
    kp_writer_free(&w);
}

static void test_log_append_time(void)
{
    create_topic("vla", "message.timestamp.type", "LogAppendTime", NULL, NULL);
    int64_t t0 = now_ms();
    rec_spec r[1] = {{"k", "v", 1000}};
    kp_writer w;
    build(&w, r, 1, KP_CODEC_NONE);
    answer a = produce_w("vla", &w, 9);
    int64_t t1 = now_ms();
    CU_ASSERT_EQUAL(a.error, 0);
    CU_ASSERT(a.log_append_time >= t0 && a.log_append_time <= t1);
    int64_t max_ts = 0;
    int16_t attrs = 0;
    CU_ASSERT_EQUAL_FATAL(fetch_first("vla", &max_ts, &attrs), 0);
    CU_ASSERT_EQUAL(max_ts, a.log_append_time); /* the stored stamp is the one answered */
    CU_ASSERT(attrs & KP_ATTR_LOG_APPEND_TIME);
    kp_writer_free(&w);

    /* A producer may not set LogAppendTime itself. */
    build(&w, r, 1, KP_CODEC_NONE);
    kp_put_be16(w.buf + OFF_ATTRIBUTES,
                (uint16_t)(kp_be16(w.buf + OFF_ATTRIBUTES) | KP_ATTR_LOG_APPEND_TIME));
    fix_crc(&w);
    a = produce_w("vla", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_TIMESTAMP);
    CU_ASSERT_EQUAL_FATAL(a.nrec, 1);
    CU_ASSERT_STRING_EQUAL(a.rec_msg[0],
                           "Invalid timestamp type in message DefaultRecord(offset=0, timestamp=1000, "
                           "key=1 bytes, value=1 bytes). Producer should not set timestamp type to "
                           "LogAppendTime.");
    CU_ASSERT_STRING_EQUAL(a.msg, "One or more records have been rejected due to invalid timestamp");
    kp_writer_free(&w);
}

/* On a CreateTime topic a producer's LogAppendTime bit is accepted (its
 * timestamp is in bounds) and stored as CreateTime, as Kafka's
 * setMaxTimestamp(CREATE_TIME, ...) does. */
static void test_log_append_time_bit_on_create_time_topic(void)
{
    create_topic("vct", NULL, NULL, NULL, NULL);
    int64_t now = now_ms();
    rec_spec r[1] = {{"k", "v", now}};
    kp_writer w;
    build(&w, r, 1, KP_CODEC_NONE);
    kp_put_be16(w.buf + OFF_ATTRIBUTES,
                (uint16_t)(kp_be16(w.buf + OFF_ATTRIBUTES) | KP_ATTR_LOG_APPEND_TIME));
    fix_crc(&w);
    answer a = produce_w("vct", &w, 9);
    CU_ASSERT_EQUAL(a.error, 0);
    CU_ASSERT_EQUAL(a.log_append_time, -1);
    int64_t max_ts = 0;
    int16_t attrs = 0;
    CU_ASSERT_EQUAL_FATAL(fetch_first("vct", &max_ts, &attrs), 0);
    CU_ASSERT_EQUAL(attrs & KP_ATTR_LOG_APPEND_TIME, 0);
    CU_ASSERT_EQUAL(max_ts, now);
    kp_writer_free(&w);
}

static void test_max_message_bytes(void)
{
    create_topic("vm", "max.message.bytes", "1000", NULL, NULL);
    create_topic("vmz", "max.message.bytes", "1000", "compression.type", "gzip");
    char big[2001];
    memset(big, 'x', 2000);
    big[2000] = 0;
    rec_spec r[1] = {{"k", big, now_ms()}};
    kp_writer w;
    build(&w, r, 1, KP_CODEC_NONE);
    /* Kafka: MESSAGE_TOO_LARGE, no message, no log start offset. */
    answer a = produce_w("vm", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_MESSAGE_TOO_LARGE);
    CU_ASSERT_EQUAL(a.has_msg, 0);
    CU_ASSERT_EQUAL(a.log_start_offset, -1);
    /* The size that counts is the produced batch's, before the topic's
     * compression.type shrinks it. */
    a = produce_w("vmz", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_MESSAGE_TOO_LARGE);
    kp_writer_free(&w);
    /* The same record compressed by the producer fits. */
    build(&w, r, 1, KP_CODEC_GZIP);
    a = produce_w("vm", &w, 9);
    CU_ASSERT_EQUAL(a.error, 0);
    kp_writer_free(&w);
}

/* Batch header rules (UnifiedLog / LogValidator.validateBatch): all
 * INVALID_RECORD without a message, with the log start offset. */
static void test_batch_rules(void)
{
    create_topic("vp", NULL, NULL, NULL, NULL);
    int64_t now = now_ms();
    rec_spec r2[2] = {{"k", "a", now}, {"k", "b", now}};
    rec_spec r1[1] = {{"k", "a", now}};
    kp_writer w;
    answer a;

    build(&w, r1, 1, KP_CODEC_NONE); /* base offset must be 0 */
    kp_put_be64(w.buf + OFF_BASE_OFFSET, 5);
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL(a.has_msg, 0);
    CU_ASSERT_EQUAL(a.log_start_offset, 0);
    kp_writer_free(&w);

    build(&w, r2, 2, KP_CODEC_NONE); /* count 1 but offsets span 2 */
    kp_put_be32(w.buf + OFF_COUNT, 1);
    kp_put_be32(w.buf + OFF_LOD, 1);
    fix_crc(&w);
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL(a.has_msg, 0);
    kp_writer_free(&w);

    build(&w, r1, 1, KP_CODEC_NONE); /* count 1, offset range 2 (one record) */
    kp_put_be32(w.buf + OFF_LOD, 1);
    fix_crc(&w);
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    kp_writer_free(&w);

    build(&w, r1, 1, KP_CODEC_NONE); /* a control batch from a client */
    kp_put_be16(w.buf + OFF_ATTRIBUTES, (uint16_t)(kp_be16(w.buf + OFF_ATTRIBUTES) | KP_ATTR_CONTROL));
    fix_crc(&w);
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    kp_writer_free(&w);

    build(&w, r1, 1, KP_CODEC_NONE); /* a producer id without a sequence */
    kp_put_be64(w.buf + OFF_PRODUCER_ID, 7);
    kp_put_be32(w.buf + OFF_BASE_SEQ, (uint32_t)-1);
    fix_crc(&w);
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    kp_writer_free(&w);

    build(&w, r1, 1, KP_CODEC_NONE); /* transactional, no transactional id */
    kp_put_be64(w.buf + OFF_PRODUCER_ID, 7);
    kp_put_be32(w.buf + OFF_BASE_SEQ, 0);
    kp_put_be16(w.buf + OFF_ATTRIBUTES, (uint16_t)(kp_be16(w.buf + OFF_ATTRIBUTES) | KP_ATTR_TRANSACTIONAL));
    fix_crc(&w);
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    CU_ASSERT_EQUAL(a.log_start_offset, -1);
    kp_writer_free(&w);

    build(&w, r1, 1, KP_CODEC_GZIP); /* compressed: count says 2, one record inside */
    kp_put_be32(w.buf + OFF_COUNT, 2);
    kp_put_be32(w.buf + OFF_LOD, 1);
    fix_crc(&w);
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL(a.has_msg, 0);
    kp_writer_free(&w);

    build(&w, r1, 1, KP_CODEC_NONE); /* CRC first: a corrupt batch is corrupt */
    w.buf[w.len - 1] = 'w';
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_CORRUPT_MESSAGE);
    CU_ASSERT_EQUAL(a.has_msg, 0);
    kp_writer_free(&w);

    /* Produce v3+ carries magic 2 only: a magic-1 set is INVALID_RECORD. */
    uint8_t m1[34] = {0};
    kp_put_be32(m1 + 8, 22);
    m1[16] = 1;
    a = produce_raw("vp", m1, sizeof(m1), 8);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);

    /* And nothing of the above was appended. */
    build(&w, r1, 1, KP_CODEC_NONE);
    a = produce_w("vp", &w, 9);
    CU_ASSERT_EQUAL(a.error, 0);
    CU_ASSERT_EQUAL(a.base_offset, 0);
    kp_writer_free(&w);
}

/* IncrementalAlterConfigs v1 SET of one topic key. */
static void alter_topic(const char *topic, const char *key, const char *value)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    kp_incremental_alter_configs_request rq;
    kp_incremental_alter_configs_request_init(&rq);
    kp_incremental_alter_configs_request_alter_configs_resource res;
    kp_incremental_alter_configs_request_alter_configs_resource_init(&res);
    kp_incremental_alter_configs_request_alterable_config c;
    kp_incremental_alter_configs_request_alterable_config_init(&c);
    c.name = kp_str_c(key);
    c.value = kp_str_c(value);
    c.config_operation = 0; /* SET */
    res.resource_type = 2;  /* TOPIC */
    res.resource_name = kp_str_c(topic);
    res.configs = &c;
    res.configs_count = 1;
    rq.resources = &res;
    rq.resources_count = 1;
    CU_ASSERT_EQUAL_FATAL(send_request(fd, KP_API_INCREMENTAL_ALTER_CONFIGS, 1, 4, &rq), 0);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_incremental_alter_configs_response resp;
    int32_t corr;
    uint8_t *frame = NULL;
    CU_ASSERT_EQUAL_FATAL(recv_response(fd, KP_API_INCREMENTAL_ALTER_CONFIGS, 1, &corr, &a, &resp, &frame),
                          0);
    CU_ASSERT_EQUAL_FATAL(resp.responses_count, 1);
    CU_ASSERT_EQUAL(resp.responses[0].error_code, 0);
    free(frame);
    kp_arena_reset(&a);
    close(fd);
}

/* A topic made compacted after it took keyless records refuses the next
 * ones: the rules follow config changes (each makes a new metadata version). */
static void test_rules_follow_config_changes(void)
{
    create_topic("valt", NULL, NULL, NULL, NULL);
    rec_spec r[1] = {{NULL, "v", now_ms()}};
    kp_writer w;
    build(&w, r, 1, KP_CODEC_NONE);
    answer a = produce_w("valt", &w, 9);
    CU_ASSERT_EQUAL(a.error, 0);
    alter_topic("valt", "cleanup.policy", "compact");
    /* Published to every shard over the rings: bounded wait for it. */
    for (int i = 0; i < 100; i++) {
        a = produce_w("valt", &w, 9);
        if (a.error)
            break;
        usleep(20000);
    }
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL(a.nrec, 1);
    kp_writer_free(&w);
}

/* A batch larger than segment.bytes (RECORD_LIST_TOO_LARGE) and a partition
 * with no batch at all (INVALID_RECORD): refused before the log is asked,
 * so without a log start offset, as Kafka 4.1 answers. */
static void test_segment_size_and_empty_records(void)
{
    create_topic("vseg", "segment.bytes", "1048576", "max.message.bytes", "3000000");
    size_t n = 1500000;
    char *big = malloc(n + 1);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'x', n);
    big[n] = 0;
    rec_spec r[1] = {{"k", big, now_ms()}};
    kp_writer w;
    build(&w, r, 1, KP_CODEC_NONE);
    answer a = produce_w("vseg", &w, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_RECORD_LIST_TOO_LARGE);
    CU_ASSERT_EQUAL(a.has_msg, 0);
    CU_ASSERT_EQUAL(a.log_start_offset, -1);
    kp_writer_free(&w);
    free(big);

    a = produce_raw("vseg", (const uint8_t *)"", 0, 9);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL(a.has_msg, 0);
    CU_ASSERT_EQUAL(a.log_start_offset, -1);
}

/* Produce v0-2 (magic 0/1 message sets, converted to one batch): the same
 * record rules, the code alone (no message fields in those versions). */
static void test_legacy_message_sets(void)
{
    create_topic("vlc", "cleanup.policy", "compact", NULL, NULL);
    rec_spec r[2] = {{"k", "v", now_ms()}, {NULL, "v", now_ms()}};
    kp_writer w, legacy;
    build(&w, r, 2, KP_CODEC_NONE);
    kp_writer_init(&legacy, 0);
    CU_ASSERT_EQUAL_FATAL(kp_batches_to_legacy(w.buf, w.len, 0, 1 << 20, &legacy), 0);
    answer a = produce_raw("vlc", legacy.buf, legacy.len, 2);
    CU_ASSERT_EQUAL(a.error, KP_ERR_INVALID_RECORD);
    CU_ASSERT_EQUAL(a.base_offset, -1);
    kp_writer_free(&legacy);
    kp_writer_free(&w);
    /* A keyed set is stored. */
    build(&w, r, 1, KP_CODEC_NONE);
    kp_writer_init(&legacy, 0);
    CU_ASSERT_EQUAL_FATAL(kp_batches_to_legacy(w.buf, w.len, 0, 1 << 20, &legacy), 0);
    a = produce_raw("vlc", legacy.buf, legacy.len, 2);
    CU_ASSERT_EQUAL(a.error, 0);
    CU_ASSERT_EQUAL(a.base_offset, 0);
    kp_writer_free(&legacy);
    kp_writer_free(&w);
}

static int16_t delete_records(const char *topic)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    kp_delete_records_request rq;
    kp_delete_records_request_init(&rq);
    kp_delete_records_request_delete_records_topic t;
    kp_delete_records_request_delete_records_topic_init(&t);
    kp_delete_records_request_delete_records_partition p;
    kp_delete_records_request_delete_records_partition_init(&p);
    p.partition_index = 0;
    p.offset = 0;
    t.name = kp_str_c(topic);
    t.partitions = &p;
    t.partitions_count = 1;
    rq.topics = &t;
    rq.topics_count = 1;
    rq.timeout_ms = 5000;
    CU_ASSERT_EQUAL_FATAL(send_request(fd, KP_API_DELETE_RECORDS, 2, 3, &rq), 0);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_delete_records_response resp;
    int32_t corr;
    uint8_t *frame = NULL;
    int16_t err = -100;
    if (recv_response(fd, KP_API_DELETE_RECORDS, 2, &corr, &a, &resp, &frame) == 0 &&
        resp.topics_count == 1 && resp.topics[0].partitions_count == 1)
        err = resp.topics[0].partitions[0].error_code;
    free(frame);
    kp_arena_reset(&a);
    close(fd);
    return err;
}

/* DeleteRecords needs "delete" in cleanup.policy (Kafka: POLICY_VIOLATION otherwise). */
static void test_delete_records_policy(void)
{
    create_topic("vdr-c", "cleanup.policy", "compact", NULL, NULL);
    create_topic("vdr-cd", "cleanup.policy", "compact,delete", NULL, NULL);
    create_topic("vdr-d", NULL, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(delete_records("vdr-c"), KP_ERR_POLICY_VIOLATION);
    CU_ASSERT_EQUAL(delete_records("vdr-cd"), 0);
    CU_ASSERT_EQUAL(delete_records("vdr-d"), 0);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("produce validation", NULL, NULL);
    CU_add_test(s, "keyless records on a compacted topic", test_keyless_on_compacted);
    CU_add_test(s, "CreateTime bounds", test_timestamp_bounds);
    CU_add_test(s, "LogAppendTime", test_log_append_time);
    CU_add_test(s, "LogAppendTime bit on a CreateTime topic", test_log_append_time_bit_on_create_time_topic);
    CU_add_test(s, "max.message.bytes", test_max_message_bytes);
    CU_add_test(s, "batch header rules", test_batch_rules);
    CU_add_test(s, "legacy message sets", test_legacy_message_sets);
    CU_add_test(s, "segment.bytes, empty records", test_segment_size_and_empty_records);
    CU_add_test(s, "rules follow config changes", test_rules_follow_config_changes);
    CU_add_test(s, "DeleteRecords and cleanup.policy", test_delete_records_policy);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = wire_setup, .teardown = stop_broker};

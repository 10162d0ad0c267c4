/*
 * test_broker_wire.c — protocol-level tests against a real kbroker process
 * (2 shards, ephemeral port, temp data dir), for behaviour no Debian client
 * exercises: incremental fetch sessions (KIP-227), pipelined responses in
 * request order, refusals (ApiVersions of an unknown version, unknown
 * API keys, oversized frames) and large frames arriving in pieces.
 */
#include "kb_test.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batch.h"
#include "errors.h"
#include "frame.h"
#include "wire_util.h"

static void create_topic_n(int fd, const char *name, int32_t nparts)
{
    CU_ASSERT_EQUAL(wire_create_topic(fd, name, nparts, NULL), 0);
}

static void create_topic(int fd, const char *name)
{
    create_topic_n(fd, name, 2);
}

static int16_t last_produce_error;

/* Produces n records; returns the base offset (-1 on error, then
 * last_produce_error says which). */
static int64_t produce_as(int fd, const char *topic, int32_t partition, int n, int64_t pid, int32_t seq)
{
    kp_writer bw;
    kp_writer_init(&bw, 0);
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    if (pid >= 0)
        kp_batch_builder_set_producer(&bb, pid, 3, seq, 0);
    for (int i = 0; i < n; i++)
        kp_batch_builder_add(&bb, 1700000000000 + i, KP_BYTES_NULL, (kp_bytes){(const uint8_t *)"value", 5},
                             NULL, 0);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, &bw), 0);
    kp_batch_builder_free(&bb);
    kp_produce_request rq;
    kp_produce_request_init(&rq);
    kp_produce_request_topic_produce_data td;
    kp_produce_request_topic_produce_data_init(&td);
    kp_produce_request_partition_produce_data pd;
    kp_produce_request_partition_produce_data_init(&pd);
    pd.index = partition;
    pd.records = (kp_bytes){bw.buf, (int32_t)bw.len};
    td.name = kp_str_c(topic);
    td.partition_data = &pd;
    td.partition_data_count = 1;
    rq.acks = -1;
    rq.timeout_ms = 5000;
    rq.topic_data = &td;
    rq.topic_data_count = 1;
    CU_ASSERT_EQUAL_FATAL(send_request(fd, KP_API_PRODUCE, 9, 2, &rq), 0);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_produce_response resp;
    int32_t corr;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(recv_response(fd, KP_API_PRODUCE, 9, &corr, &a, &resp, &frame), 0);
    last_produce_error = resp.responses[0].partition_responses[0].error_code;
    int64_t base = last_produce_error ? -1 : resp.responses[0].partition_responses[0].base_offset;
    free(frame);
    kp_arena_reset(&a);
    kp_writer_free(&bw);
    return base;
}

/* One Fetch v12 (names, flexible) with the given session fields. */
static void produce(int fd, const char *topic, int32_t partition, int n)
{
    CU_ASSERT(produce_as(fd, topic, partition, n, -1, 0) >= 0);
}

static const char *fetch_topic = "sess";

static int fetch(int fd, int32_t session, int32_t epoch, int with_parts, int64_t off0, int64_t off1,
                 int forget1, kp_arena *a, kp_fetch_response *resp, uint8_t **frame)
{
    kp_fetch_request rq;
    kp_fetch_request_init(&rq);
    rq.replica_id = -1;
    rq.max_wait_ms = 50;
    rq.min_bytes = 1;
    rq.max_bytes = 1 << 20;
    rq.session_id = session;
    rq.session_epoch = epoch;
    kp_fetch_request_fetch_topic t;
    kp_fetch_request_fetch_topic_init(&t);
    kp_fetch_request_fetch_partition p[2];
    for (int i = 0; i < 2; i++) {
        kp_fetch_request_fetch_partition_init(&p[i]);
        p[i].partition = i;
        p[i].fetch_offset = i == 0 ? off0 : off1;
        p[i].partition_max_bytes = 1 << 20;
    }
    t.topic = kp_str_c(fetch_topic);
    t.partitions = p;
    t.partitions_count = 2;
    if (with_parts) {
        rq.topics = &t;
        rq.topics_count = 1;
    }
    kp_fetch_request_forgotten_topic ft;
    kp_fetch_request_forgotten_topic_init(&ft);
    int32_t forget_p = 1;
    if (forget1) {
        ft.topic = kp_str_c(fetch_topic);
        ft.partitions = &forget_p;
        ft.partitions_count = 1;
        rq.forgotten_topics_data = &ft;
        rq.forgotten_topics_data_count = 1;
    }
    if (send_request(fd, KP_API_FETCH, 12, 3, &rq))
        return -1;
    int32_t corr;
    return recv_response(fd, KP_API_FETCH, 12, &corr, a, resp, frame);
}

static int count_parts(const kp_fetch_response *r)
{
    int n = 0;
    for (int32_t i = 0; i < r->responses_count; i++)
        n += r->responses[i].partitions_count;
    return n;
}

static void test_fetch_sessions(void)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    create_topic(fd, "sess");
    produce(fd, "sess", 0, 3);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_fetch_response r;
    uint8_t *frame;
    /* Sessionless: session id 0 back, both partitions. */
    CU_ASSERT_EQUAL_FATAL(fetch(fd, 0, -1, 1, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(r.session_id, 0);
    CU_ASSERT_EQUAL(count_parts(&r), 2);
    free(frame);
    /* A new session: full answer, a session id. */
    CU_ASSERT_EQUAL_FATAL(fetch(fd, 0, 0, 1, 3, 0, 0, &a, &r, &frame), 0);
    int32_t id = r.session_id;
    CU_ASSERT(id != 0);
    CU_ASSERT_EQUAL(r.error_code, 0);
    CU_ASSERT_EQUAL(count_parts(&r), 2);
    free(frame);
    /* Incremental with no changes: nothing new, no partitions. */
    CU_ASSERT_EQUAL_FATAL(fetch(fd, id, 1, 0, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(r.session_id, id);
    CU_ASSERT_EQUAL(count_parts(&r), 0);
    free(frame);
    /* New data on partition 1 only: just that partition, with records. */
    produce(fd, "sess", 1, 2);
    CU_ASSERT_EQUAL_FATAL(fetch(fd, id, 2, 0, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL_FATAL(count_parts(&r), 1);
    CU_ASSERT_EQUAL(r.responses[0].partitions[0].partition_index, 1);
    CU_ASSERT_EQUAL(r.responses[0].partitions[0].high_watermark, 2);
    CU_ASSERT(r.responses[0].partitions[0].records.len > 0);
    free(frame);
    /* Forget partition 1, produce to it: the session no longer reports it. */
    CU_ASSERT_EQUAL_FATAL(fetch(fd, id, 3, 0, 0, 0, 1, &a, &r, &frame), 0);
    free(frame);
    produce(fd, "sess", 1, 1);
    CU_ASSERT_EQUAL_FATAL(fetch(fd, id, 4, 0, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(count_parts(&r), 0);
    free(frame);
    /* Wrong epoch, unknown id. */
    CU_ASSERT_EQUAL_FATAL(fetch(fd, id, 9, 0, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(r.error_code, KP_ERR_INVALID_FETCH_SESSION_EPOCH);
    free(frame);
    CU_ASSERT_EQUAL_FATAL(fetch(fd, 0x7ffff0f0, 1, 0, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(r.error_code, KP_ERR_FETCH_SESSION_ID_NOT_FOUND);
    free(frame);
    /* Close the session (epoch -1): answered as a sessionless full fetch. */
    CU_ASSERT_EQUAL_FATAL(fetch(fd, id, -1, 1, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(r.session_id, 0);
    CU_ASSERT_EQUAL(count_parts(&r), 2);
    free(frame);
    CU_ASSERT_EQUAL_FATAL(fetch(fd, id, 5, 0, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(r.error_code, KP_ERR_FETCH_SESSION_ID_NOT_FOUND);
    free(frame);
    kp_arena_reset(&a);
    close(fd);
}

/* A full fetch (epoch -1 or 0) naming a session the broker does not have is served, like Kafka does:
 * kafka-go's Client.Fetch always sends session id -1, epoch -1. A partition in error carries no offsets. */
static void test_fetch_full_unknown_session(void)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    create_topic(fd, "nosess");
    produce(fd, "nosess", 0, 2);
    fetch_topic = "nosess";
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_fetch_response r;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(fetch(fd, -1, -1, 1, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(r.error_code, 0);
    CU_ASSERT_EQUAL(r.session_id, 0);
    CU_ASSERT_EQUAL(count_parts(&r), 2);
    free(frame);
    /* Epoch 0 with an unknown id opens a new session. */
    CU_ASSERT_EQUAL_FATAL(fetch(fd, 0x7ffff0f0, 0, 1, 0, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL(r.error_code, 0);
    CU_ASSERT(r.session_id != 0 && r.session_id != 0x7ffff0f0);
    CU_ASSERT_EQUAL(count_parts(&r), 2);
    free(frame);
    /* Out of range: Kafka answers a partition in error with no offsets (-1), the others as usual. */
    CU_ASSERT_EQUAL_FATAL(fetch(fd, 0, -1, 1, 1000, 0, 0, &a, &r, &frame), 0);
    CU_ASSERT_EQUAL_FATAL(count_parts(&r), 2);
    const kp_fetch_response_partition_data *p0 = &r.responses[0].partitions[0];
    const kp_fetch_response_partition_data *p1 = &r.responses[0].partitions[1];
    CU_ASSERT_EQUAL(p0->error_code, KP_ERR_OFFSET_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(p0->high_watermark, -1);
    CU_ASSERT_EQUAL(p0->last_stable_offset, -1);
    CU_ASSERT_EQUAL(p0->log_start_offset, -1);
    CU_ASSERT_EQUAL(p1->error_code, 0);
    CU_ASSERT_EQUAL(p1->high_watermark, 0);
    CU_ASSERT_EQUAL(p1->log_start_offset, 0);
    free(frame);
    fetch_topic = "sess";
    kp_arena_reset(&a);
    close(fd);
}

/* 60 pipelined requests (fetches that park, and instant ones) come back in
 * request order. */
static void test_pipelining_order(void)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    kp_writer w;
    kp_writer_init(&w, 0);
    for (int i = 0; i < 60; i++) {
        if (i % 3 == 0) {
            kp_fetch_request rq;
            kp_fetch_request_init(&rq);
            rq.replica_id = -1;
            rq.max_wait_ms = 30;
            rq.min_bytes = 1 << 20; /* never satisfied: waits the full 30 ms */
            kp_fetch_request_fetch_topic t;
            kp_fetch_request_fetch_topic_init(&t);
            kp_fetch_request_fetch_partition p;
            kp_fetch_request_fetch_partition_init(&p);
            p.partition = 0;
            p.partition_max_bytes = 1000;
            t.topic = kp_str_c("sess");
            t.partitions = &p;
            t.partitions_count = 1;
            rq.topics = &t;
            rq.topics_count = 1;
            kp_request_encode(&w, KP_API_FETCH, 11, 1000 + i, kp_str_c("p"), &rq);
        } else {
            kp_api_versions_request rq;
            kp_api_versions_request_init(&rq);
            kp_request_encode(&w, KP_API_API_VERSIONS, 3, 1000 + i, kp_str_c("p"), &rq);
        }
    }
    CU_ASSERT_EQUAL_FATAL(send_all(fd, w.buf, w.len), 0);
    kp_writer_free(&w);
    for (int i = 0; i < 60; i++) {
        size_t len = 0;
        uint8_t *f = read_frame(fd, &len);
        if (!f)
            fprintf(stderr, "pipelining: no response %d of 60 (%s)\n", i, strerror(errno));
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL((int32_t)kp_be32(f), 1000 + i);
        free(f);
    }
    close(fd);
}

static void test_refusals(void)
{
    /* ApiVersions v99: error 35 in a v0 body listing the supported range. */
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t req[] = {0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 7, 0xff, 0xff};
    CU_ASSERT_EQUAL_FATAL(send_all(fd, req, sizeof(req)), 0);
    size_t len = 0;
    uint8_t *f = read_frame(fd, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    kp_reader r;
    kp_reader_init(&r, f + 4, len - 4);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_api_versions_response av;
    CU_ASSERT_EQUAL((int32_t)kp_be32(f), 7);
    CU_ASSERT_EQUAL_FATAL(kp_api_versions_response_decode(&r, &a, 0, &av), 0);
    CU_ASSERT_EQUAL(av.error_code, KP_ERR_UNSUPPORTED_VERSION);
    /* Only ApiVersions' own range, as Kafka (KIP-511). */
    CU_ASSERT_EQUAL_FATAL(av.api_keys_count, 1);
    CU_ASSERT_EQUAL(av.api_keys[0].api_key, KP_API_API_VERSIONS);
    CU_ASSERT(av.api_keys[0].min_version == 0 && av.api_keys[0].max_version >= 3);
    free(f);
    kp_arena_reset(&a);
    close(fd);
    /* An unknown API key and a 2 GB frame: the connection is closed. */
    uint8_t unknown[] = {0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff};
    uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 18};
    const uint8_t *bad[] = {unknown, huge};
    size_t badlen[] = {sizeof(unknown), sizeof(huge)};
    for (int i = 0; i < 2; i++) {
        fd = connect_broker();
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT_EQUAL(send_all(fd, bad[i], badlen[i]), 0);
        char c;
        CU_ASSERT_EQUAL(read(fd, &c, 1), 0); /* EOF: closed by the broker */
        close(fd);
    }
    /* The broker still serves others. */
    fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    produce(fd, "sess", 0, 1);
    close(fd);
}

/* A produce frame far above the direct-read threshold, sent in pieces with
 * pauses and followed in the same write by another request: both are
 * answered in order, every record is stored, and a large frame cut off by
 * the client leaves a log line and a broker that still serves others. */
static void test_large_frames_in_pieces(void)
{
    enum { RECS = 300, VLEN = 1024 };
    static uint8_t val[VLEN];
    memset(val, 'x', sizeof(val));
    kp_writer bw;
    kp_writer_init(&bw, 0);
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    for (int i = 0; i < RECS; i++) {
        val[0] = (uint8_t)('a' + i % 26);
        kp_batch_builder_add(&bb, 1700000000000 + i, KP_BYTES_NULL, (kp_bytes){val, VLEN}, NULL, 0);
    }
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, &bw), 0);
    kp_batch_builder_free(&bb);
    kp_produce_request rq;
    kp_produce_request_init(&rq);
    kp_produce_request_topic_produce_data td;
    kp_produce_request_topic_produce_data_init(&td);
    kp_produce_request_partition_produce_data pd;
    kp_produce_request_partition_produce_data_init(&pd);
    pd.index = 1;
    pd.records = (kp_bytes){bw.buf, (int32_t)bw.len};
    td.name = kp_str_c("sess");
    td.partition_data = &pd;
    td.partition_data_count = 1;
    rq.acks = -1;
    rq.timeout_ms = 5000;
    rq.topic_data = &td;
    rq.topic_data_count = 1;
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL_FATAL(kp_request_encode(&w, KP_API_PRODUCE, 9, 41, kp_str_c("p"), &rq), 0);
    size_t produce_len = w.len;
    kp_api_versions_request av;
    kp_api_versions_request_init(&av);
    CU_ASSERT_EQUAL_FATAL(kp_request_encode(&w, KP_API_API_VERSIONS, 3, 42, kp_str_c("p"), &av), 0);
    CU_ASSERT_FATAL(produce_len > 256 * 1024);

    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    size_t cuts[] = {0, 6, 70000, produce_len - 5, w.len};
    for (int i = 0; i + 1 < (int)(sizeof(cuts) / sizeof(cuts[0])); i++) {
        CU_ASSERT_EQUAL_FATAL(send_all(fd, w.buf + cuts[i], cuts[i + 1] - cuts[i]), 0);
        usleep(30000);
    }
    kp_arena a;
    kp_arena_init(&a, 0);
    size_t len = 0;
    uint8_t *f = read_frame(fd, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    kp_reader r;
    kp_reader_init(&r, f, len);
    kp_response_header h;
    CU_ASSERT_EQUAL_FATAL(
        kp_response_header_decode(&r, &a, (int16_t)kp_response_header_version(KP_API_PRODUCE, 9), &h), 0);
    CU_ASSERT_EQUAL(h.correlation_id, 41);
    kp_produce_response resp;
    CU_ASSERT_EQUAL_FATAL(kp_produce_response_decode(&r, &a, 9, &resp), 0);
    CU_ASSERT_EQUAL(resp.responses[0].partition_responses[0].error_code, 0);
    int64_t base = resp.responses[0].partition_responses[0].base_offset;
    CU_ASSERT(base >= 0);
    free(f);
    f = read_frame(fd, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL((int32_t)kp_be32(f), 42);
    free(f);
    /* The next produce lands right after all RECS records. */
    CU_ASSERT_EQUAL(produce_as(fd, "sess", 1, 1, -1, 0), base + RECS);
    close(fd);

    /* Cut off inside the large frame: logged, nothing answered, others served. */
    fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send_all(fd, w.buf, 100000), 0);
    usleep(50000);
    close(fd);
    fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(produce_as(fd, "sess", 1, 1, -1, 0), base + RECS + 1);
    close(fd);
    int logged = 0;
    for (int i = 0; i < 50 && !logged; i++) {
        FILE *lf = fopen(log_path, "r");
        char line[512];
        while (lf && fgets(line, sizeof(line), lf))
            if (strstr(line, "closed by the peer with 100000 bytes of an incomplete frame"))
                logged = 1;
        if (lf)
            fclose(lf);
        if (!logged)
            usleep(20000);
    }
    CU_ASSERT_TRUE(logged);
    kp_arena_reset(&a);
    kp_writer_free(&w);
    kp_writer_free(&bw);
}

/* connections.max.idle.ms: a silent connection is closed, an active one
 * is not. */
static void test_idle_close(void)
{
    int idle = connect_broker(), busy = connect_broker();
    CU_ASSERT_FATAL(idle >= 0 && busy >= 0);
    for (int i = 0; i < 6; i++) { /* 3 s, a request every 500 ms on `busy` */
        kp_api_versions_request rq;
        kp_api_versions_request_init(&rq);
        CU_ASSERT_EQUAL(send_request(busy, 18, 3, i, &rq), 0);
        size_t len = 0;
        uint8_t *f = read_frame(busy, &len);
        CU_ASSERT_PTR_NOT_NULL(f);
        free(f);
        usleep(500000);
    }
    char c;
    ssize_t got = read(idle, &c, 1);
    if (got != 0)
        fprintf(stderr, "idle read: %zd (%s)\n", got, strerror(errno));
    CU_ASSERT_EQUAL(got, 0); /* EOF: closed by the broker */
    close(idle);
    close(busy);
}

/* DescribeProducers lists the idempotent producer that wrote to a partition. */
static void test_describe_producers(void)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    create_topic(fd, "prod");
    CU_ASSERT_EQUAL(produce_as(fd, "prod", 1, 4, 424242, 0), 0);
    CU_ASSERT_EQUAL(produce_as(fd, "prod", 1, 2, 424242, 4), 4);
    /* A retried batch is acknowledged with its original offset, not re-appended. */
    CU_ASSERT_EQUAL(produce_as(fd, "prod", 1, 2, 424242, 4), 4);
    CU_ASSERT_EQUAL(produce_as(fd, "prod", 1, 1, 424242, 6), 6);
    /* A gap in the sequence is refused, and nothing is appended. */
    CU_ASSERT_EQUAL(produce_as(fd, "prod", 1, 1, 424242, 9), -1);
    CU_ASSERT_EQUAL(last_produce_error, KP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CU_ASSERT_EQUAL(produce_as(fd, "prod", 1, 1, 424242, 7), 7);
    kp_describe_producers_request rq;
    kp_describe_producers_request_init(&rq);
    kp_describe_producers_request_topic_request t;
    kp_describe_producers_request_topic_request_init(&t);
    int32_t parts[2] = {0, 1};
    t.name = kp_str_c("prod");
    t.partition_indexes = parts;
    t.partition_indexes_count = 2;
    rq.topics = &t;
    rq.topics_count = 1;
    CU_ASSERT_EQUAL_FATAL(send_request(fd, KP_API_DESCRIBE_PRODUCERS, 0, 9, &rq), 0);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_describe_producers_response resp;
    int32_t corr;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(recv_response(fd, KP_API_DESCRIBE_PRODUCERS, 0, &corr, &a, &resp, &frame), 0);
    CU_ASSERT_EQUAL_FATAL(resp.topics_count, 1);
    CU_ASSERT_EQUAL_FATAL(resp.topics[0].partitions_count, 2);
    CU_ASSERT_EQUAL(resp.topics[0].partitions[0].active_producers_count, 0);
    const kp_describe_producers_response_partition_response *p1 = &resp.topics[0].partitions[1];
    CU_ASSERT_EQUAL(p1->error_code, 0);
    CU_ASSERT_EQUAL_FATAL(p1->active_producers_count, 1);
    CU_ASSERT_EQUAL(p1->active_producers[0].producer_id, 424242);
    CU_ASSERT_EQUAL(p1->active_producers[0].producer_epoch, 3);
    CU_ASSERT_EQUAL(p1->active_producers[0].last_sequence, 7);
    free(frame);
    kp_arena_reset(&a);
    close(fd);
}

/* A response that outgrows the request's arena (64 MiB) is refused whole:
 * the connection closes with a log line, never an answer with holes (before
 * the arena's sticky failed flag, Metadata answered the mentions past the
 * limit with UNKNOWN_SERVER_ERROR and no partitions). Here: a 100-partition
 * topic named 14000 times, 6.4 KB of partition entries per mention. */
static void test_arena_exhausted(void)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    create_topic_n(fd, "wide", 100);
    kp_arena a;
    kp_arena_init(&a, 0);
    int32_t corr;
    uint8_t *frame;

    enum { MENTIONS = 14000 };
    kp_metadata_request_metadata_request_topic *ts = calloc(MENTIONS, sizeof(*ts));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ts);
    for (int i = 0; i < MENTIONS; i++) {
        kp_metadata_request_metadata_request_topic_init(&ts[i]);
        ts[i].name = kp_str_c("wide");
    }
    kp_metadata_request md;
    kp_metadata_request_init(&md);
    md.topics = ts;
    md.topics_count = MENTIONS;
    md.allow_auto_topic_creation = 0;
    CU_ASSERT_EQUAL_FATAL(send_request(fd, KP_API_METADATA, 12, 2, &md), 0);
    free(ts);
    size_t len = 0;
    frame = read_frame(fd, &len);
    if (frame) { /* what the wrong answer looked like */
        kp_arena big;
        kp_arena_init(&big, (size_t)1 << 30);
        kp_reader r;
        kp_reader_init(&r, frame, len);
        kp_response_header h;
        kp_metadata_response resp;
        int holes = -1;
        if (kp_response_header_decode(&r, &big, 1, &h) == 0 &&
            kp_metadata_response_decode(&r, &big, 12, &resp) == 0)
            for (int32_t i = holes = 0; i < resp.topics_count; i++)
                holes += resp.topics[i].error_code != 0 || resp.topics[i].partitions_count != 100;
        fprintf(stderr, "arena exhausted: answered anyway, %d of %d mentions wrong\n", holes, MENTIONS);
        kp_arena_reset(&big);
        free(frame);
    }
    CU_ASSERT_PTR_NULL(frame);
    char c;
    CU_ASSERT_EQUAL(recv(fd, &c, 1, 0), 0); /* closed by the broker, not a timeout */
    close(fd);
    kp_arena_reset(&a);

    /* The broker said why, and still serves. */
    FILE *lf = fopen(log_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(lf);
    char line[1024];
    int said = 0;
    while (fgets(line, sizeof(line), lf))
        said |= strstr(line, "out of memory building the response") != NULL;
    fclose(lf);
    CU_ASSERT(said);
    fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    kp_api_versions_request av;
    kp_api_versions_request_init(&av);
    kp_api_versions_response avr;
    CU_ASSERT_EQUAL(send_request(fd, KP_API_API_VERSIONS, 3, 3, &av), 0);
    CU_ASSERT_EQUAL(recv_response(fd, KP_API_API_VERSIONS, 3, &corr, &a, &avr, &frame), 0);
    CU_ASSERT_EQUAL(avr.error_code, 0);
    free(frame);
    kp_arena_reset(&a);
    close(fd);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("broker wire", NULL, NULL);
    CU_add_test(s, "idle connections closed", test_idle_close);
    CU_add_test(s, "incremental fetch sessions", test_fetch_sessions);
    CU_add_test(s, "full fetch naming an unknown session", test_fetch_full_unknown_session);
    CU_add_test(s, "pipelined responses in order", test_pipelining_order);
    CU_add_test(s, "refusals", test_refusals);
    CU_add_test(s, "large frames in pieces", test_large_frames_in_pieces);
    CU_add_test(s, "describe producers", test_describe_producers);
    CU_add_test(s, "a response that outgrows its arena is refused", test_arena_exhausted);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = wire_setup, .teardown = stop_broker};

/*
 * kbench.c — end-to-end Kafka benchmark over librdkafka: produce and consume
 * throughput, produce-to-consume latency at a fixed rate, and produce ack
 * latency, against a broker and optionally against librdkafka's in-process
 * mock cluster as a reference peer.
 *
 * Owns: workload generation (fixed-rate schedules, payloads carrying their
 * intended send time), topic preparation (admin CreateTopics, or the mock's
 * own API), timing, the latency histograms (tools/hdr.c) and the report
 * (table, or one JSON object with --json).
 *
 * Must not: report a figure it did not measure; time latency from the actual
 * send of a fixed-rate message instead of its scheduled time (that hides the
 * stalls of the system under test — coordinated omission); count warm-up or
 * priming messages in a result; use consumer groups (the broker does not serve
 * them yet: consumers assign() explicit partitions and offsets).
 *
 * Every client runs in this process, so producer and consumer share
 * CLOCK_MONOTONIC and the send timestamp in a payload is directly comparable
 * with the receive time.
 */
#include "hdr.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S      1000000000ull
#define LAT_MAX_NS    (10ull * 60 * NS_PER_S) /* histogram range: 10 minutes */
#define PAYLOAD_HDR   32                      /* magic, flags, run id, intended ns, seq */
#define PAYLOAD_MAGIC 0x4b42454eu             /* "KBEN" */
#define FLAG_MEASURED 1u
#define FLAG_PRIME    2u
#define LETTER_POOL   4096               /* payload bytes come from a random window into this */
#define IDLE_LIMIT_NS (15ull * NS_PER_S) /* consumers give up after this long without data */

typedef enum { MODE_PRODUCE, MODE_CONSUME, MODE_E2E, MODE_ROUNDTRIP } bench_mode;
static const char *const mode_names[] = {"produce", "consume", "e2e", "roundtrip"};

typedef struct {
    bench_mode mode;
    const char *bootstrap, *topic, *peer, *acks, *compression;
    int partitions, producers, consumers, linger_ms, batch_size, fetch_wait_ms;
    size_t msg_size;
    uint64_t count;
    double duration, rate, warmup, interval;
    bool json;
} opts;

/* One benchmark run against one target (our broker or the mock). */
typedef struct {
    const char *target;
    const char *bootstrap;
    bool ok;
    char why[256]; /* the reason when !ok */
    int partitions;
    uint64_t msgs, bytes, errors, lost, prefilled;
    double secs;
    bool has_lat;
    hdr_hist lat; /* nanoseconds */
} result;

static atomic_bool g_stop;

/* snprintf for diagnostics: truncating a long error message is acceptable,
 * and going through vsnprintf keeps -Wformat-truncation from flagging it. */
__attribute__((format(printf, 3, 4))) static void msgf(char *dst, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, len, fmt, ap);
    va_end(ap);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / NS_PER_S), .tv_nsec = (long)(t % NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !atomic_load(&g_stop))
        ;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, true);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---------------------------------------------------------------- clients */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* librdkafka logs connection churn at warning level; only errors matter
     * to a benchmark's reader, anything else is noise in the report. */
    if (level <= 3)
        fprintf(stderr, "kbench: %s: %s: %s\n", rd_kafka_name(rk), fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    /* Transport errors while handles are being destroyed are expected. */
    if (atomic_load(&g_stop) && err == RD_KAFKA_RESP_ERR__TRANSPORT)
        return;
    fprintf(stderr, "kbench: %s: %s: %s\n", rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}

static bool conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *why, size_t whylen)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        msgf(why, whylen, "%s=%s: %s", k, v, err);
        return false;
    }
    return true;
}

/* -X key=value: librdkafka properties for the clients of the tested broker
 * (TLS and SASL settings for a secured listener), not for the mock. */
#define MAX_XPROPS 32
static const char *g_xprops[MAX_XPROPS];
static int g_nxprops;

static rd_kafka_conf_t *base_conf(const char *bootstrap, char *why, size_t whylen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, log_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    if ((bootstrap && !conf_set(c, "bootstrap.servers", bootstrap, why, whylen)) ||
        !conf_set(c, "client.id", "kbench", why, whylen)) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    for (int i = 0; bootstrap && i < g_nxprops; i++) {
        const char *eq = strchr(g_xprops[i], '=');
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - g_xprops[i]), g_xprops[i]);
        if (!conf_set(c, key, eq + 1, why, whylen)) {
            rd_kafka_conf_destroy(c);
            return NULL;
        }
    }
    return c;
}

/* A producer handle used only for metadata and admin requests, or (without
 * a bootstrap) to host the mock cluster. */
static rd_kafka_t *admin_client(const char *bootstrap, char *why, size_t whylen)
{
    rd_kafka_conf_t *c = base_conf(bootstrap, why, whylen);
    if (!c)
        return NULL;
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk) {
        msgf(why, whylen, "rd_kafka_new: %s", err);
        rd_kafka_conf_destroy(c);
    }
    return rk;
}

/* Partition count of topic (0 when it does not exist, -1 on error). The
 * all-topics form is used because asking for one topic would make a broker
 * with auto-creation create it with its default partition count. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, bool need_leaders, char *why, size_t whylen)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (err) {
        msgf(why, whylen, "metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    int n = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, topic) != 0 || t->err)
            continue;
        n = t->partition_cnt;
        for (int p = 0; p < t->partition_cnt && need_leaders; p++)
            if (t->partitions[p].leader < 0 || t->partitions[p].err)
                n = 0; /* not served yet */
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Creates the topic with the admin API unless it exists; returns the
 * partition count actually in use, or -1. */
static int ensure_topic(const opts *o, const char *bootstrap, char *why, size_t whylen)
{
    rd_kafka_t *rk = admin_client(bootstrap, why, whylen);
    if (!rk)
        return -1;
    int n = topic_partitions(rk, o->topic, false, why, whylen);
    if (n == 0) {
        char err[256];
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(o->topic, o->partitions, 1, err, sizeof err);
        if (!nt) {
            msgf(why, whylen, "NewTopic: %s", err);
            rd_kafka_destroy(rk);
            return -1;
        }
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_operation_timeout(ao, 10000, err, sizeof err);
        rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
        const char *msg = "no CreateTopics answer in 30 s";
        if (ev && rd_kafka_event_error(ev)) {
            e = rd_kafka_event_error(ev);
            msg = rd_kafka_event_error_string(ev);
        } else if (ev) {
            size_t cnt = 0;
            const rd_kafka_topic_result_t **tr =
                rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
            e = cnt ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR__BAD_MSG;
            msg = cnt && rd_kafka_topic_result_error_string(tr[0]) ? rd_kafka_topic_result_error_string(tr[0])
                                                                   : rd_kafka_err2str(e);
        }
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            msgf(why, whylen, "CreateTopics %s: %s", o->topic, msg);
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(ao);
        rd_kafka_NewTopic_destroy(nt);
        rd_kafka_queue_destroy(q);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rd_kafka_destroy(rk);
            return -1;
        }
    }
    /* Wait until every partition has a leader, so the first produce does not
     * pay for the topic's creation. */
    uint64_t deadline = now_ns() + 30 * NS_PER_S;
    while ((n = topic_partitions(rk, o->topic, true, why, whylen)) == 0 && now_ns() < deadline)
        usleep(100000);
    if (n == 0)
        msgf(why, whylen, "topic %s has no leader for every partition after 30 s", o->topic);
    rd_kafka_destroy(rk);
    return n > 0 ? n : -1;
}

/* ---------------------------------------------------------------- a run */

typedef struct run run;

typedef struct {
    run *r;
    int idx;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    uint64_t target; /* measured messages to send (UINT64_MAX: until t_end) */
    char *buf;       /* one message, rebuilt before each produce */
    char *letters;   /* LETTER_POOL + msg_size random letters */
    uint64_t rng;
    hdr_hist lat; /* ack latency, recorded by the delivery report callback */
    uint64_t sent_measured, delivered, bytes, errors, dr_count, last_dr_ns;
    char first_error[160];
    pthread_t th;
} producer;

typedef struct {
    run *r;
    int idx;
    rd_kafka_t *rk;
    int *parts, nparts;
    bool *eof;
    int neof;
    hdr_hist lat; /* produce-to-consume latency */
    hdr_hist ivl; /* --interval: the current interval's latencies */
    uint64_t ivl_end, ivl_no;
    uint64_t msgs, bytes, errors, t_last;
    char first_error[160];
    pthread_t th;
} consumer;

struct run {
    const opts *o;
    result *res;
    int partitions;
    uint64_t run_id;
    uint64_t t_start, t_measure, t_end;
    bool ack_latency; /* producers record delivery-report latency */
    bool closed_loop; /* one message in flight per producer */
    bool use_schedule;
    double rate_per_producer;
    producer *prods;
    int nprod;
    consumer *cons;
    int ncons;
    uint64_t consume_target;       /* consume mode: stop after this many */
    atomic_uint_fast64_t consumed; /* consume and e2e: measured messages received */
    atomic_uint_fast64_t primes;   /* e2e: priming messages seen by consumers */
    atomic_uint_fast64_t expected; /* e2e: measured messages sent (final once producers_done) */
    atomic_bool producers_done;
};

static void put_u32(char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put_u64(char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static uint32_t get_u32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get_u64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Random upper-case letters, like Kafka's producer-perf-test: compressible
 * roughly as much as text, so --compression has something to do. */
static void fill_payload(producer *p, uint64_t seq, uint64_t intended, uint32_t flags)
{
    size_t n = p->r->o->msg_size;
    memcpy(p->buf, p->letters + rng_next(&p->rng) % LETTER_POOL, n);
    if (n >= PAYLOAD_HDR) {
        put_u32(p->buf, PAYLOAD_MAGIC);
        put_u32(p->buf + 4, flags);
        put_u64(p->buf + 8, p->r->run_id);
        put_u64(p->buf + 16, intended);
        put_u64(p->buf + 24, seq);
    }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    producer *p = opaque;
    uint64_t now = now_ns();
    uint64_t intended = (uint64_t)(uintptr_t)m->_private; /* 0: a priming message */
    p->dr_count++;
    if (m->err) {
        if (!p->errors++)
            msgf(p->first_error, sizeof p->first_error, "delivery: %s", rd_kafka_err2str(m->err));
        return;
    }
    if (intended == 0 || intended < p->r->t_measure)
        return;
    p->delivered++;
    p->bytes += m->len;
    p->last_dr_ns = now;
    if (p->r->ack_latency)
        hdr_record(&p->lat, now - intended);
}

static bool producer_open(run *r, producer *p, const char *bootstrap, char *why, size_t whylen)
{
    const opts *o = r->o;
    rd_kafka_conf_t *c = base_conf(bootstrap, why, whylen);
    if (!c)
        return false;
    char v[32];
    snprintf(v, sizeof v, "%d", o->linger_ms);
    bool ok = conf_set(c, "acks", o->acks, why, whylen) &&
              conf_set(c, "compression.codec", o->compression, why, whylen) &&
              conf_set(c, "linger.ms", v, why, whylen);
    if (ok && o->batch_size > 0) {
        snprintf(v, sizeof v, "%d", o->batch_size);
        ok = conf_set(c, "batch.size", v, why, whylen);
    }
    if (!ok) {
        rd_kafka_conf_destroy(c);
        return false;
    }
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_opaque(c, p);
    char err[256];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!p->rk) {
        msgf(why, whylen, "producer: %s", err);
        rd_kafka_conf_destroy(c);
        return false;
    }
    p->rkt = rd_kafka_topic_new(p->rk, o->topic, NULL);
    if (!p->rkt) {
        msgf(why, whylen, "topic handle: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return false;
    }
    /* One priming message per partition, flushed: connections, metadata and
     * the broker's first-append paths are set up before anything is timed. */
    fill_payload(p, 0, 0, FLAG_PRIME);
    for (int part = 0; part < r->partitions; part++)
        if (rd_kafka_produce(p->rkt, part, RD_KAFKA_MSG_F_COPY, p->buf, o->msg_size, NULL, 0, NULL) == -1) {
            msgf(why, whylen, "priming produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
            return false;
        }
    if (rd_kafka_flush(p->rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR || p->errors) {
        msgf(why, whylen, "priming messages not acknowledged in 30 s%s%s", p->errors ? ": " : "",
             p->first_error);
        return false;
    }
    p->errors = 0;
    p->dr_count = 0;
    return true;
}

static void *producer_main(void *arg)
{
    producer *p = arg;
    run *r = p->r;
    const opts *o = r->o;
    /* The default 50 us timer slack would add up to 50 us of our own lateness
     * to every scheduled send; with it at 1 ns the wake-up is as early as the
     * kernel can manage. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    double interval = r->use_schedule ? 1e9 / r->rate_per_producer : 0;
    sleep_until(r->t_start);
    for (uint64_t seq = 1; !atomic_load(&g_stop); seq++) {
        uint64_t intended = now_ns();
        if (r->use_schedule) {
            /* The schedule, not the clock, decides when a message is due:
             * after a stall, the overdue messages go out back to back and
             * each carries the time it should have been sent. */
            uint64_t due = r->t_start + (uint64_t)((double)(seq - 1) * interval);
            if (due > intended) {
                rd_kafka_poll(p->rk, 0);
                sleep_until(due);
            }
            intended = due;
        }
        if (intended >= r->t_end)
            break;
        bool measured = intended >= r->t_measure;
        if (measured && p->sent_measured >= p->target)
            break;
        fill_payload(p, seq, intended, measured ? FLAG_MEASURED : 0);
        uint64_t before = p->dr_count;
        while (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, p->buf, o->msg_size, NULL,
                                0, (void *)(uintptr_t)intended) == -1) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                if (!p->errors++)
                    msgf(p->first_error, sizeof p->first_error, "produce: %s", rd_kafka_err2str(e));
                goto done;
            }
            rd_kafka_poll(p->rk, 1); /* the client's queue is full: let acks drain it */
        }
        if (measured)
            p->sent_measured++;
        if (r->closed_loop) {
            while (p->dr_count == before && !atomic_load(&g_stop))
                rd_kafka_poll(p->rk, 100);
        } else {
            rd_kafka_poll(p->rk, 0);
        }
    }
done:
    if (rd_kafka_flush(p->rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        int left = rd_kafka_outq_len(p->rk);
        if (!p->errors)
            msgf(p->first_error, sizeof p->first_error, "%d messages not acknowledged 60 s after the end",
                 left);
        p->errors += (uint64_t)left;
    }
    return NULL;
}

static bool consumer_open(run *r, consumer *c, const char *bootstrap, bool from_end, char *why, size_t whylen)
{
    rd_kafka_conf_t *conf = base_conf(bootstrap, why, whylen);
    if (!conf)
        return false;
    /* group.id is required by librdkafka's consumer API even with assign();
     * no offsets are ever committed or fetched, so the broker's missing group
     * coordinator is never needed for data. */
    char fw[32];
    snprintf(fw, sizeof fw, "%d", r->o->fetch_wait_ms);
    bool ok =
        conf_set(conf, "group.id", "kbench", why, whylen) &&
        conf_set(conf, "fetch.wait.max.ms", fw, why, whylen) &&
        conf_set(conf, "enable.auto.commit", "false", why, whylen) &&
        conf_set(conf, "enable.auto.offset.store", "false", why, whylen) &&
        conf_set(conf, "enable.partition.eof", r->o->mode == MODE_CONSUME ? "true" : "false", why, whylen);
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    char err[256];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!c->rk) {
        msgf(why, whylen, "consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(c->nparts);
    for (int i = 0; i < c->nparts; i++) {
        int64_t lo = 0, hi = 0;
        if (from_end) {
            /* Start at the current end, explicitly: messages produced after
             * this point are all seen, older runs' messages are not. */
            rd_kafka_resp_err_t e =
                rd_kafka_query_watermark_offsets(c->rk, r->o->topic, c->parts[i], &lo, &hi, 10000);
            if (e) {
                msgf(why, whylen, "watermarks of partition %d: %s", c->parts[i], rd_kafka_err2str(e));
                rd_kafka_topic_partition_list_destroy(tl);
                return false;
            }
        }
        rd_kafka_topic_partition_list_add(tl, r->o->topic, c->parts[i])->offset =
            from_end ? hi : RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    if (e) {
        msgf(why, whylen, "assign: %s", rd_kafka_err2str(e));
        return false;
    }
    return true;
}

static bool consumer_finished(consumer *c)
{
    run *r = c->r;
    if (r->o->mode == MODE_CONSUME)
        return c->neof == c->nparts || atomic_load(&r->consumed) >= r->consume_target;
    return atomic_load(&r->producers_done) && atomic_load(&r->consumed) >= atomic_load(&r->expected);
}

/* One line per --interval on stderr: a long run (a soak) shows how latency
 * evolves within one continuous load instead of restarting the clients for
 * every sample. Intervals are by receive time, from the end of the warm-up. */
static void interval_flush(consumer *c)
{
    if (c->ivl.total) {
        fprintf(stderr,
                "kbench-interval consumer=%d t_s=%.3f n=%" PRIu64 " p50_us=%.1f p99_us=%.1f p99.9_us=%.1f "
                "max_us=%.1f\n",
                c->idx, (double)(c->ivl_no + 1) * c->r->o->interval, c->ivl.total,
                (double)hdr_percentile(&c->ivl, 50) / 1e3, (double)hdr_percentile(&c->ivl, 99) / 1e3,
                (double)hdr_percentile(&c->ivl, 99.9) / 1e3, (double)c->ivl.max / 1e3);
        hdr_reset(&c->ivl);
    }
}

static void interval_record(consumer *c, uint64_t now, uint64_t lat)
{
    uint64_t len = (uint64_t)(c->r->o->interval * 1e9);
    if (!c->ivl_end)
        c->ivl_end = c->r->t_measure + len;
    while (now >= c->ivl_end) {
        interval_flush(c);
        c->ivl_end += len;
        c->ivl_no++;
    }
    hdr_record(&c->ivl, lat);
}

static void *consumer_main(void *arg)
{
    consumer *c = arg;
    run *r = c->r;
    bool e2e = r->o->mode == MODE_E2E;
    uint64_t last_data = now_ns();
    while (!atomic_load(&g_stop) && !consumer_finished(c)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
        uint64_t now = now_ns();
        if (!m) {
            /* Consume mode has no producer to wait for; e2e waits for the
             * producers, then at most IDLE_LIMIT_NS for stragglers. */
            bool waiting = e2e && !atomic_load(&r->producers_done);
            if (!waiting && now - last_data > IDLE_LIMIT_NS)
                break;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            for (int i = 0; i < c->nparts; i++)
                if (c->parts[i] == m->partition && !c->eof[i]) {
                    c->eof[i] = true;
                    c->neof++;
                }
        } else if (m->err) {
            if (!c->errors++)
                msgf(c->first_error, sizeof c->first_error, "consume: %s", rd_kafka_message_errstr(m));
        } else if (!e2e) {
            last_data = now;
            c->msgs++;
            c->bytes += m->len;
            c->t_last = now;
            atomic_fetch_add(&r->consumed, 1);
        } else if (m->len >= PAYLOAD_HDR && get_u32(m->payload) == PAYLOAD_MAGIC &&
                   get_u64((const char *)m->payload + 8) == r->run_id) {
            last_data = now;
            uint32_t flags = get_u32((const char *)m->payload + 4);
            if (flags & FLAG_PRIME) {
                atomic_fetch_add(&r->primes, 1);
            } else if (flags & FLAG_MEASURED) {
                uint64_t intended = get_u64((const char *)m->payload + 16);
                hdr_record(&c->lat, now - intended);
                if (r->o->interval > 0)
                    interval_record(c, now, now - intended);
                c->msgs++;
                c->bytes += m->len;
                c->t_last = now;
                atomic_fetch_add(&r->consumed, 1);
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (r->o->interval > 0)
        interval_flush(c);
    return NULL;
}

static void producer_close(producer *p)
{
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    hdr_free(&p->lat);
    free(p->buf);
    free(p->letters);
}

static void consumer_close(consumer *c)
{
    if (c->rk) {
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
    }
    hdr_free(&c->lat);
    hdr_free(&c->ivl);
    free(c->parts);
    free(c->eof);
}

static bool producers_alloc(run *r, int n)
{
    r->nprod = n;
    r->prods = calloc((size_t)n, sizeof *r->prods);
    if (!r->prods)
        return false;
    for (int i = 0; i < n; i++) {
        producer *p = &r->prods[i];
        p->r = r;
        p->idx = i;
        p->rng = r->run_id ^ (0x9E3779B97F4A7C15ull * (uint64_t)(i + 1));
        p->buf = malloc(r->o->msg_size);
        p->letters = malloc(LETTER_POOL + r->o->msg_size);
        if (!p->buf || !p->letters || hdr_init(&p->lat, LAT_MAX_NS))
            return false;
        for (size_t k = 0; k < LETTER_POOL + r->o->msg_size; k++)
            p->letters[k] = (char)('A' + rng_next(&p->rng) % 26);
    }
    return true;
}

static bool consumers_alloc(run *r, int n)
{
    if (n > r->partitions)
        n = r->partitions; /* a consumer without a partition would only idle */
    r->ncons = n;
    r->cons = calloc((size_t)n, sizeof *r->cons);
    if (!r->cons)
        return false;
    for (int i = 0; i < n; i++) {
        consumer *c = &r->cons[i];
        c->r = r;
        c->idx = i;
        c->parts = calloc((size_t)r->partitions, sizeof *c->parts);
        c->eof = calloc((size_t)r->partitions, sizeof *c->eof);
        if (!c->parts || !c->eof || hdr_init(&c->lat, LAT_MAX_NS) || hdr_init(&c->ivl, LAT_MAX_NS))
            return false;
        for (int p = i; p < r->partitions; p += n)
            c->parts[c->nparts++] = p;
    }
    return true;
}

static void fail(result *res, const char *why)
{
    res->ok = false;
    if (!res->why[0])
        msgf(res->why, sizeof res->why, "%s", why);
}

/* Runs the producers of r from now: the schedule starts a little in the
 * future so every thread is waiting for it, not racing to it. */
static void run_producers(run *r)
{
    const opts *o = r->o;
    r->t_start = now_ns() + 50 * 1000000ull;
    r->t_measure = r->t_start + (uint64_t)(o->warmup * 1e9);
    r->t_end = o->duration > 0 ? r->t_measure + (uint64_t)(o->duration * 1e9) : UINT64_MAX;
    for (int i = 0; i < r->nprod; i++) {
        producer *p = &r->prods[i];
        p->target = o->count ? o->count / (uint64_t)r->nprod + ((uint64_t)i < o->count % (uint64_t)r->nprod)
                             : UINT64_MAX;
        pthread_create(&p->th, NULL, producer_main, p);
    }
    uint64_t sent = 0;
    for (int i = 0; i < r->nprod; i++) {
        pthread_join(r->prods[i].th, NULL);
        sent += r->prods[i].sent_measured;
    }
    atomic_store(&r->expected, sent);
    atomic_store(&r->producers_done, true);
}

/* Fills the topic up to r->consume_target messages for the consume mode, so
 * a fresh topic (always the case with the mock) has something to read. */
static bool prefill(run *r, const char *bootstrap, uint64_t *added, char *why, size_t whylen)
{
    rd_kafka_t *rk = admin_client(bootstrap, why, whylen);
    if (!rk)
        return false;
    uint64_t have = 0;
    for (int p = 0; p < r->partitions; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, r->o->topic, p, &lo, &hi, 10000);
        if (e) {
            msgf(why, whylen, "watermarks of partition %d: %s", p, rd_kafka_err2str(e));
            rd_kafka_destroy(rk);
            return false;
        }
        have += (uint64_t)(hi - lo);
    }
    rd_kafka_destroy(rk);
    *added = 0;
    if (have >= r->consume_target)
        return true;
    /* A fill run: as fast as possible, nothing timed. */
    opts fo = *r->o;
    fo.count = r->consume_target - have;
    fo.duration = 0;
    fo.warmup = 0;
    fo.rate = 0;
    fo.mode = MODE_PRODUCE;
    run fr = {.o = &fo, .res = r->res, .partitions = r->partitions, .run_id = r->run_id};
    bool ok = producers_alloc(&fr, 1) && producer_open(&fr, &fr.prods[0], bootstrap, why, whylen);
    if (ok) {
        run_producers(&fr);
        *added = fr.prods[0].delivered;
        if (fr.prods[0].errors) {
            msgf(why, whylen, "prefill: %s", fr.prods[0].first_error);
            ok = false;
        }
    }
    if (fr.prods)
        producer_close(&fr.prods[0]);
    free(fr.prods);
    return ok;
}

static void run_bench(const opts *o, const char *bootstrap, int partitions, result *res)
{
    run r = {.o = o, .res = res, .partitions = partitions};
    res->ok = true;
    res->partitions = partitions;
    hdr_init(&res->lat, LAT_MAX_NS);
    uint64_t seed = now_ns() ^ ((uint64_t)getpid() << 32);
    r.run_id = rng_next(&seed) | 1;
    r.ack_latency = o->mode == MODE_PRODUCE || o->mode == MODE_ROUNDTRIP;
    r.use_schedule = o->rate > 0;
    r.closed_loop = o->mode == MODE_ROUNDTRIP && o->rate <= 0;
    r.rate_per_producer = o->rate / o->producers;
    char why[256] = "";

    if (o->mode == MODE_CONSUME) {
        r.consume_target = o->count ? o->count : 1000000;
        if (!prefill(&r, bootstrap, &res->prefilled, why, sizeof why))
            return fail(res, why);
    }
    if (o->mode == MODE_CONSUME || o->mode == MODE_E2E) {
        if (!consumers_alloc(&r, o->consumers))
            fail(res, "out of memory");
        for (int i = 0; i < r.ncons && res->ok; i++)
            if (!consumer_open(&r, &r.cons[i], bootstrap, o->mode == MODE_E2E, why, sizeof why))
                fail(res, why);
    }
    uint64_t t0 = now_ns();
    if (res->ok)
        for (int i = 0; i < r.ncons; i++)
            pthread_create(&r.cons[i].th, NULL, consumer_main, &r.cons[i]);
    if (o->mode != MODE_CONSUME && res->ok) {
        if (!producers_alloc(&r, o->producers))
            fail(res, "out of memory");
        for (int i = 0; i < r.nprod && res->ok; i++)
            if (!producer_open(&r, &r.prods[i], bootstrap, why, sizeof why))
                fail(res, why);
        /* e2e: the consumers must already be fetching when the schedule
         * starts, or the first messages would wait for the fetcher. */
        uint64_t want = (uint64_t)r.nprod * (uint64_t)partitions;
        uint64_t deadline = now_ns() + 30 * NS_PER_S;
        while (res->ok && o->mode == MODE_E2E && atomic_load(&r.primes) < want && !atomic_load(&g_stop)) {
            if (now_ns() > deadline)
                fail(res, "consumers did not see the priming messages within 30 s");
            usleep(1000);
        }
        if (res->ok)
            run_producers(&r);
        else
            atomic_store(&r.producers_done, true);
    }
    if (!res->ok)
        atomic_store(&r.producers_done, true), atomic_store(&r.expected, 0);
    uint64_t t_last = 0;
    for (int i = 0; i < r.ncons; i++) {
        consumer *c = &r.cons[i];
        if (res->ok)
            pthread_join(c->th, NULL);
        res->msgs += c->msgs;
        res->bytes += c->bytes;
        res->errors += c->errors;
        if (c->errors)
            fail(res, c->first_error);
        if (c->t_last > t_last)
            t_last = c->t_last;
        hdr_merge(&res->lat, &c->lat);
    }
    for (int i = 0; i < r.nprod; i++) {
        producer *p = &r.prods[i];
        res->errors += p->errors;
        if (p->errors)
            fail(res, p->first_error);
        if (o->mode != MODE_E2E) {
            res->msgs += p->delivered;
            res->bytes += p->bytes;
            if (p->last_dr_ns > t_last)
                t_last = p->last_dr_ns;
            hdr_merge(&res->lat, &p->lat);
        }
    }
    res->has_lat = o->mode != MODE_CONSUME;
    if (o->mode == MODE_E2E) {
        uint64_t exp = atomic_load(&r.expected);
        res->lost = exp > res->msgs ? exp - res->msgs : 0;
    }
    /* Throughput is over the measured window: from the end of the warm-up
     * (consume: from the assignment) to the last acknowledgement or receipt. */
    uint64_t from = o->mode == MODE_CONSUME ? t0 : r.t_measure;
    res->secs = t_last > from ? (double)(t_last - from) / 1e9 : 0;
    if (atomic_load(&g_stop))
        fail(res, "interrupted");
    atomic_store(&g_stop, true); /* quiet the error callbacks during teardown */
    for (int i = 0; i < r.ncons; i++)
        consumer_close(&r.cons[i]);
    for (int i = 0; i < r.nprod; i++)
        producer_close(&r.prods[i]);
    atomic_store(&g_stop, false);
    free(r.cons);
    free(r.prods);
}

/* ---------------------------------------------------------------- report */

typedef struct {
    const char *label, *json;
    double pct; /* latency percentile; <0 for non-latency rows */
} lat_row;

static const lat_row lat_rows[] = {
    {"p50", "p50", 50},       {"p90", "p90", 90},          {"p99", "p99", 99},
    {"p99.9", "p99.9", 99.9}, {"p99.99", "p99.99", 99.99}, {"max", "max", 100},
};

static double msg_rate(const result *r)
{
    return r->secs > 0 ? (double)r->msgs / r->secs : 0;
}
static double mb_rate(const result *r)
{
    return r->secs > 0 ? (double)r->bytes / 1e6 / r->secs : 0;
}
static double lat_us(const result *r, double pct)
{
    return (double)hdr_percentile(&r->lat, pct) / 1e3;
}

static const char *latency_definition(const opts *o)
{
    switch (o->mode) {
    case MODE_E2E:
        return o->rate > 0
                   ? "produce-to-consume latency: consumer receive time minus each message's intended "
                     "send time on the fixed-rate schedule (coordinated-omission corrected)"
                   : "produce-to-consume latency: consumer receive time minus actual send time; no "
                     "schedule (--rate 0), so queueing under saturation dominates";
    case MODE_ROUNDTRIP:
        return o->rate > 0 ? "produce ack latency: delivery report time minus each message's intended send "
                             "time on the fixed-rate schedule (coordinated-omission corrected)"
                           : "produce ack latency: delivery report time minus send time, one message in "
                             "flight per producer (closed loop: a stall delays the next send, so use --rate "
                             "for a coordinated-omission-corrected figure)";
    case MODE_PRODUCE:
        return o->rate > 0 ? "produce ack latency from each message's intended send time on the fixed-rate "
                             "schedule (coordinated-omission corrected)"
                           : "produce ack latency (delivery report minus send time) at full speed: mostly "
                             "time queued in the client";
    case MODE_CONSUME:
        break;
    }
    return "none (throughput only)";
}

static const char *mock_note = "the peer is librdkafka's in-process mock cluster: in memory, no durability "
                               "(no disk, no fsync), so it flatters the peer";

static void print_config(const opts *o, const result *rs, int n)
{
    printf("kbench %s: topic=%s partitions=%d msg-size=%zu", mode_names[o->mode], o->topic, rs[0].partitions,
           o->msg_size);
    if (o->count)
        printf(" count=%" PRIu64, o->count);
    if (o->duration > 0)
        printf(" duration=%gs", o->duration);
    printf(" warmup=%gs rate=%s", o->warmup,
           o->rate > 0 ? "" : (o->mode == MODE_ROUNDTRIP ? "closed-loop" : "max"));
    if (o->rate > 0)
        printf("%g msg/s", o->rate);
    printf("\n  acks=%s compression=%s linger.ms=%d producers=%d consumers=%d", o->acks, o->compression,
           o->linger_ms, o->producers, o->consumers);
    if (o->batch_size > 0)
        printf(" batch.size=%d", o->batch_size);
    if (o->mode == MODE_E2E || o->mode == MODE_CONSUME)
        printf(" fetch.wait.max.ms=%d", o->fetch_wait_ms);
    printf("\n");
    for (int i = 0; i < n; i++)
        printf("  %s: %s\n", rs[i].target, rs[i].bootstrap);
}

static void print_table(const opts *o, const result *rs, int n)
{
    print_config(o, rs, n);
    printf("\n%-14s", "");
    for (int i = 0; i < n; i++)
        printf(" %14s", rs[i].target);
    if (n == 2)
        printf(" %14s", "ratio");
    printf("\n");
#define ROW(label, fmt, expr, with_ratio)                                                                    \
    do {                                                                                                     \
        double v_[2] = {0, 0};                                                                               \
        printf("%-14s", label);                                                                              \
        for (int i = 0; i < n; i++) {                                                                        \
            const result *r = &rs[i];                                                                        \
            v_[i] = (expr);                                                                                  \
            printf(" " fmt, v_[i]);                                                                          \
        }                                                                                                    \
        if (n == 2 && (with_ratio) && v_[1] > 0)                                                             \
            printf(" %14.2f", v_[0] / v_[1]);                                                                \
        printf("\n");                                                                                        \
    } while (0)
    ROW("messages", "%14.0f", (double)r->msgs, 0);
    ROW("seconds", "%14.3f", r->secs, 0);
    ROW("msg/s", "%14.0f", msg_rate(r), 1);
    ROW("MB/s", "%14.2f", mb_rate(r), 1);
    if (rs[0].has_lat) {
        for (size_t k = 0; k < sizeof lat_rows / sizeof lat_rows[0]; k++) {
            char label[32];
            snprintf(label, sizeof label, "%s (us)", lat_rows[k].label);
            ROW(label, "%14.1f", lat_us(r, lat_rows[k].pct), 1);
        }
        ROW("mean (us)", "%14.1f", hdr_mean(&r->lat) / 1e3, 1);
    }
    ROW("errors", "%14.0f", (double)r->errors, 0);
    if (o->mode == MODE_E2E)
        ROW("lost", "%14.0f", (double)r->lost, 0);
#undef ROW
    if (n == 2)
        printf("ratio = %s / %s (throughput: >1 is better for %s; latency: <1 is better for %s)\n",
               rs[0].target, rs[1].target, rs[0].target, rs[0].target);
    printf("latency: %s\n", latency_definition(o));
    printf("MB/s counts payload bytes (10^6 B/s); payloads are random upper-case letters\n");
    for (int i = 0; i < n; i++) {
        if (rs[i].prefilled)
            printf("%s: %" PRIu64 " messages were produced first so the topic had enough to read\n",
                   rs[i].target, rs[i].prefilled);
        if (rs[i].lat.clamped)
            printf("%s: %" PRIu64 " latencies above 10 min were clamped into the top bucket\n", rs[i].target,
                   rs[i].lat.clamped);
        if (!rs[i].ok)
            printf("%s: FAILED: %s\n", rs[i].target, rs[i].why);
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(rs[i].target, "mock"))
            printf("note: %s\n", mock_note);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_json(const opts *o, const result *rs, int n)
{
    printf("{\n  \"mode\": \"%s\",\n  \"config\": {\"topic\": ", mode_names[o->mode]);
    json_str(o->topic);
    printf(", \"partitions\": %d, \"msg_size\": %zu, \"count\": %" PRIu64 ", \"duration_s\": %g, "
           "\"warmup_s\": %g, \"rate\": %g, \"acks\": ",
           rs[0].partitions, o->msg_size, o->count, o->duration, o->warmup, o->rate);
    json_str(o->acks);
    printf(", \"compression\": ");
    json_str(o->compression);
    printf(", \"linger_ms\": %d, \"batch_size\": %d, \"producers\": %d, \"consumers\": %d, "
           "\"fetch_wait_ms\": %d},\n",
           o->linger_ms, o->batch_size, o->producers, o->consumers, o->fetch_wait_ms);
    printf("  \"latency_definition\": ");
    json_str(latency_definition(o));
    printf(",\n  \"results\": [\n");
    for (int i = 0; i < n; i++) {
        const result *r = &rs[i];
        printf("    {\"target\": ");
        json_str(r->target);
        printf(", \"bootstrap\": ");
        json_str(r->bootstrap);
        printf(", \"ok\": %s, ", r->ok ? "true" : "false");
        if (!r->ok) {
            printf("\"error\": ");
            json_str(r->why);
            printf(", ");
        }
        printf("\"msgs\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"seconds\": %.6f, \"msg_per_s\": %.1f, "
               "\"mb_per_s\": %.3f, \"errors\": %" PRIu64 ", \"lost\": %" PRIu64 ", \"prefilled\": %" PRIu64,
               r->msgs, r->bytes, r->secs, msg_rate(r), mb_rate(r), r->errors, r->lost, r->prefilled);
        if (r->has_lat) {
            printf(",\n     \"latency_us\": {");
            for (size_t k = 0; k < sizeof lat_rows / sizeof lat_rows[0]; k++)
                printf("\"%s\": %.1f, ", lat_rows[k].json, lat_us(r, lat_rows[k].pct));
            printf("\"mean\": %.1f, \"count\": %" PRIu64 ", \"clamped\": %" PRIu64 "}",
                   hdr_mean(&r->lat) / 1e3, r->lat.total, r->lat.clamped);
        }
        printf("}%s\n", i + 1 < n ? "," : "");
    }
    printf("  ]");
    if (n == 2) {
        double t1 = msg_rate(&rs[1]), l1 = lat_us(&rs[1], 99);
        printf(",\n  \"ratios\": {\"numerator\": ");
        json_str(rs[0].target);
        printf(", \"denominator\": ");
        json_str(rs[1].target);
        printf(", \"throughput\": %.3f", t1 > 0 ? msg_rate(&rs[0]) / t1 : 0);
        if (rs[0].has_lat)
            printf(", \"p99\": %.3f", l1 > 0 ? lat_us(&rs[0], 99) / l1 : 0);
        printf("}");
    }
    bool mock = false;
    for (int i = 0; i < n; i++)
        mock |= !strcmp(rs[i].target, "mock");
    if (mock) {
        printf(",\n  \"notes\": [");
        json_str(mock_note);
        printf("]");
    }
    printf("\n}\n");
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kbench MODE [options]\n"
            "modes:\n"
            "  produce    producer throughput (and ack latency)\n"
            "  consume    read the topic from the beginning with assign(); fills it first if it holds\n"
            "             fewer than --count messages (default 1000000)\n"
            "  e2e        fixed-rate producer, consumer measures produce-to-consume latency\n"
            "  roundtrip  produce ack latency; --rate 0 (default) keeps one message in flight\n"
            "options:\n"
            "  --bootstrap HOST:PORT  broker to test (omit with --peer mock to test only the mock)\n"
            "  --peer mock            also run against librdkafka's in-process mock cluster\n"
            "  --topic NAME           default kbench\n"
            "  --partitions N         created with the admin API if the topic is missing (default 2)\n"
            "  --msg-size BYTES       default 100 (e2e needs >= %d)\n"
            "  --count N | --duration S   measured messages or seconds (default 10 s); both: first wins\n"
            "  --warmup S             seconds sent before measuring (default 0)\n"
            "  --rate N               msg/s over all producers, 0 = as fast as possible\n"
            "                         (default 0; e2e: 1000)\n"
            "  --acks all|1|0         default all\n"
            "  --compression none|gzip|snappy|lz4|zstd   default none\n"
            "  --linger-ms N          default 5 (e2e, roundtrip: 0)\n"
            "  --batch-size BYTES     producer batch.size (default librdkafka's)\n"
            "  --producers N          producer threads, each its own client (default 1)\n"
            "  --consumers N          consumer threads splitting the partitions (default 1)\n"
            "  --fetch-wait-ms N      consumer fetch.wait.max.ms (default 500, librdkafka's); the mock\n"
            "                         does not wake a waiting fetch when data arrives, so e2e against it\n"
            "                         needs a small value to measure anything but this wait\n"
            "  --interval S           e2e: also print each consumer's latency percentiles every S\n"
            "                         seconds to stderr (kbench-interval lines)\n"
            "  --json                 one JSON object instead of the table\n"
            "  -X KEY=VALUE           librdkafka property of every client of the tested broker, e.g.\n"
            "                         -X security.protocol=SSL -X ssl.ca.location=ca.pem (not the mock)\n",
            PAYLOAD_HDR);
}

static bool parse_num(const char *s, double lo, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo) || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 1;
    }
    int m = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(argv[1], mode_names[i]))
            m = i;
    if (m < 0) {
        fprintf(stderr, "kbench: unknown mode '%s'\n", argv[1]);
        return 2;
    }
    *o = (opts){.mode = (bench_mode)m,
                .topic = "kbench",
                .acks = "all",
                .compression = "none",
                .partitions = 2,
                .producers = 1,
                .consumers = 1,
                .linger_ms = -1,
                .msg_size = 100,
                .fetch_wait_ms = 500,
                .rate = -1};
    static const struct option lo[] = {
        {"bootstrap", 1, 0, 'b'},   {"topic", 1, 0, 't'},
        {"partitions", 1, 0, 'p'},  {"msg-size", 1, 0, 's'},
        {"count", 1, 0, 'n'},       {"duration", 1, 0, 'd'},
        {"rate", 1, 0, 'r'},        {"acks", 1, 0, 'a'},
        {"compression", 1, 0, 'z'}, {"linger-ms", 1, 0, 'l'},
        {"batch-size", 1, 0, 'B'},  {"producers", 1, 0, 'P'},
        {"consumers", 1, 0, 'C'},   {"json", 0, 0, 'j'},
        {"warmup", 1, 0, 'w'},      {"peer", 1, 0, 'm'},
        {"help", 0, 0, 'h'},        {"fetch-wait-ms", 1, 0, 'f'},
        {"interval", 1, 0, 'i'},    {0, 0, 0, 0},
    };
    optind = 2;
    int c, li = 0;
    double v;
    while ((li = -1, c = getopt_long(argc, argv, "X:", lo, &li)) != -1) {
        bool ok = true;
        switch (c) {
        case 'X':
            ok = strchr(optarg, '=') && strchr(optarg, '=') != optarg && g_nxprops < MAX_XPROPS;
            if (ok)
                g_xprops[g_nxprops++] = optarg;
            break;
        case 'b':
            o->bootstrap = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'a':
            o->acks = optarg;
            break;
        case 'z':
            o->compression = optarg;
            break;
        case 'm':
            o->peer = optarg;
            ok = !strcmp(optarg, "mock");
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'p':
            ok = parse_num(optarg, 1, &v) && v <= 100000 && (o->partitions = (int)v) == v;
            break;
        case 's':
            ok = parse_num(optarg, 1, &v) && v <= 100e6 && (o->msg_size = (size_t)v) == v;
            break;
        case 'n':
            ok = parse_num(optarg, 1, &v) && (o->count = (uint64_t)v) == v;
            break;
        case 'd':
            ok = parse_num(optarg, 0, &v) && v > 0 && (o->duration = v) > 0;
            break;
        case 'w':
            ok = parse_num(optarg, 0, &o->warmup);
            break;
        case 'r':
            ok = parse_num(optarg, 0, &o->rate);
            break;
        case 'l':
            ok = parse_num(optarg, 0, &v) && v <= 900000 && (o->linger_ms = (int)v) == v;
            break;
        case 'f':
            ok = parse_num(optarg, 0, &v) && v <= 300000 && (o->fetch_wait_ms = (int)v) == v;
            break;
        case 'i':
            ok = parse_num(optarg, 0, &v) && v >= 0.01 && (o->interval = v) > 0;
            break;
        case 'B':
            ok = parse_num(optarg, 1, &v) && v <= 2147483647 && (o->batch_size = (int)v) == v;
            break;
        case 'P':
            ok = parse_num(optarg, 1, &v) && v <= 1024 && (o->producers = (int)v) == v;
            break;
        case 'C':
            ok = parse_num(optarg, 1, &v) && v <= 1024 && (o->consumers = (int)v) == v;
            break;
        default:
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "kbench: bad value for %s%s: '%s'\n", li >= 0 ? "--" : "-",
                    li >= 0 ? lo[li].name : "X", optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kbench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->bootstrap && !o->peer) {
        fprintf(stderr, "kbench: give --bootstrap, --peer mock, or both\n");
        return 2;
    }
    if (o->rate < 0)
        o->rate = o->mode == MODE_E2E ? 1000 : 0;
    if (o->linger_ms < 0)
        o->linger_ms = o->mode == MODE_E2E || o->mode == MODE_ROUNDTRIP ? 0 : 5;
    if (!o->count && o->duration <= 0)
        o->duration = o->mode == MODE_CONSUME ? 0 : 10;
    if (o->mode == MODE_E2E && o->msg_size < PAYLOAD_HDR) {
        fprintf(stderr, "kbench: e2e needs --msg-size >= %d (the payload carries its send time)\n",
                PAYLOAD_HDR);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    result rs[2];
    memset(rs, 0, sizeof rs);
    int n = 0;
    if (o.bootstrap) {
        result *r = &rs[n++];
        r->target = "kbroker";
        r->bootstrap = o.bootstrap;
        int parts = ensure_topic(&o, o.bootstrap, r->why, sizeof r->why);
        if (parts < 0) {
            r->ok = false;
            hdr_init(&r->lat, LAT_MAX_NS);
        } else {
            if (parts != o.partitions)
                fprintf(stderr, "kbench: topic %s exists with %d partitions; using them\n", o.topic, parts);
            run_bench(&o, o.bootstrap, parts, r);
        }
    }
    if (o.peer && !atomic_load(&g_stop)) {
        result *r = &rs[n++];
        r->target = "mock";
        hdr_init(&r->lat, LAT_MAX_NS);
        char why[256] = "";
        /* The mock cluster lives in its own thread of this process, hosted by
         * a client handle that must outlive it. Same partition count as the
         * broker run, so the two runs spread messages the same way. */
        int parts = n == 2 ? rs[0].partitions : o.partitions;
        if (parts <= 0)
            parts = o.partitions;
        rd_kafka_t *host = admin_client(NULL, why, sizeof why);
        rd_kafka_mock_cluster_t *mc = host ? rd_kafka_mock_cluster_new(host, 1) : NULL;
        if (!mc) {
            msgf(r->why, sizeof r->why, "cannot start the mock cluster%s%s", why[0] ? ": " : "", why);
            r->bootstrap = "";
        } else if (rd_kafka_mock_topic_create(mc, o.topic, parts, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            msgf(r->why, sizeof r->why, "mock topic creation failed");
            r->bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
        } else {
            r->bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
            hdr_free(&r->lat);
            run_bench(&o, r->bootstrap, parts, r);
        }
        if (n == 2 && rs[0].partitions <= 0)
            rs[0].partitions = parts;
        r->partitions = parts;
        /* Print before the mock is gone: its bootstrap string belongs to it. */
        if (o.json)
            print_json(&o, rs, n);
        else
            print_table(&o, rs, n);
        fflush(stdout);
        if (mc)
            rd_kafka_mock_cluster_destroy(mc);
        if (host)
            rd_kafka_destroy(host);
    } else {
        if (o.json)
            print_json(&o, rs, n);
        else
            print_table(&o, rs, n);
    }
    bool ok = true;
    for (int i = 0; i < n; i++) {
        ok &= rs[i].ok;
        hdr_free(&rs[i].lat);
    }
    return ok ? 0 : 1;
}

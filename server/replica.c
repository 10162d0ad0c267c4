/*
 * replica.c — the follower side of replication (Kafka's replica fetcher):
 * for every leader node that leads a partition this shard follows, one
 * client connection to that leader's first listener, which sends Fetch v16
 * with ReplicaState (this node's id) for all of them, one request at a
 * time, and appends the batches it gets to the follower's logs with the
 * leader's offsets (st_log_append_replica).
 *
 * Owns the shard's fetchers (struct srv_replicas). Must not: block the loop
 * (the leader's registered host must be a numeric address: no resolver
 * here), touch a partition this node leads, or keep response bytes past
 * the appends (storage copies them).
 */
#include "replica.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "logging.h"
#include "meta.h"
#include "partition.h"
#include "st_log.h"

#define FETCH_VERSION        16 /* the newest kbroker serves; ReplicaState from v15, as Kafka 4.4's brokers */
#define FETCH_MAX_WAIT_MS    500
#define FETCH_PART_MAX_BYTES (1 << 20)
#define FETCH_MAX_BYTES      (8 << 20)
#define RETRY_MS             500
#define BUSY_RETRY_MS        50
#define RESPONSE_MAX_BYTES   (64 << 20)

typedef struct fetcher {
    struct fetcher *next;
    srv_shard *s;
    int32_t leader;
    char addr[300]; /* host:port of the leader's first listener */
    struct bufferevent *bev;
    int inflight; /* a Fetch is out: one at a time, read timeout armed */
    int32_t corr;
    int64_t retry_at_ms;
    int wanted; /* still leads a partition this shard follows (this tick) */
} fetcher;

struct srv_replicas {
    fetcher *head;
    int32_t next_corr;
};

/* Kafka's replica.socket.timeout.ms, beyond the leader's long poll. */
static int64_t socket_timeout_ms(const fetcher *f)
{
    int64_t t = f->s->b->cfg.replica_socket_timeout_ms;
    return (t > 0 ? t : 30000) + FETCH_MAX_WAIT_MS;
}

static void fetcher_close(fetcher *f)
{
    if (f->bev)
        bufferevent_free(f->bev);
    f->bev = NULL;
    f->inflight = 0;
}

static void fetcher_fail(fetcher *f, const char *why)
{
    srv_warn("replica fetcher: leader %d at %s: %s; retrying", (int)f->leader, f->addr, why);
    fetcher_close(f);
    f->retry_at_ms = f->s->now_ms + RETRY_MS;
}

/* The leader of a followed partition, or -1 (led here, unplaced, offline). */
static int32_t followed_leader(srv_shard *s, const srv_part *x, const srv_topic **tp)
{
    if (x->leader || !x->log)
        return -1;
    const srv_topic *t = srv_meta_topic_by_id(s->meta, &x->topic_id);
    if (!t || x->partition >= t->nparts)
        return -1;
    int32_t l = srv_topic_leader(t, x->partition, -1);
    const srv_broker_reg *r = l >= 0 ? srv_meta_broker(s->meta, l) : NULL;
    if (!r || r->fenced || l == s->b->cfg.node_id)
        return -1;
    if (tp)
        *tp = t;
    return l;
}

/* ---- the request ------------------------------------------------------- */

typedef struct build_ctx {
    fetcher *f;
    kp_arena *a;
    kp_fetch_request *rq;
    int cap;
} build_ctx;

static void add_part(srv_part *x, void *arg)
{
    build_ctx *bc = arg;
    const srv_topic *t = NULL;
    if (followed_leader(bc->f->s, x, &t) != bc->f->leader)
        return;
    if (bc->f->s->now_ms < x->fetch_retry_ms)
        return; /* backing off after its own error: the others go on */
    kp_fetch_request *rq = bc->rq;
    kp_fetch_request_fetch_topic *ft = NULL;
    for (int32_t i = 0; i < rq->topics_count && !ft; i++)
        if (memcmp(rq->topics[i].topic_id.b, x->topic_id.b, 16) == 0)
            ft = &rq->topics[i];
    if (!ft) {
        if (rq->topics_count == bc->cap) {
            int ncap = bc->cap ? bc->cap * 2 : 8;
            kp_fetch_request_fetch_topic *nt = kp_arena_alloc(bc->a, sizeof(*nt) * (size_t)ncap);
            if (!nt)
                return;
            if (rq->topics_count)
                memcpy(nt, rq->topics, sizeof(*nt) * (size_t)rq->topics_count);
            rq->topics = nt;
            bc->cap = ncap;
        }
        ft = &rq->topics[rq->topics_count++];
        kp_fetch_request_fetch_topic_init(ft);
        ft->topic_id = x->topic_id;
        ft->partitions_count = 0;
        ft->partitions = kp_arena_alloc(bc->a, sizeof(*ft->partitions) * (size_t)t->nparts);
        if (!ft->partitions) {
            rq->topics_count--;
            return;
        }
    }
    kp_fetch_request_fetch_partition *fp = &ft->partitions[ft->partitions_count++];
    kp_fetch_request_fetch_partition_init(fp);
    const srv_part_repl *r = srv_topic_repl(t, x->partition);
    fp->partition = x->partition;
    fp->current_leader_epoch = r ? r->leader_epoch : -1;
    fp->fetch_offset = st_log_end_offset(x->log);
    fp->last_fetched_epoch = -1;
    fp->log_start_offset = st_log_start_offset(x->log);
    fp->partition_max_bytes = FETCH_PART_MAX_BYTES;
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static int fetcher_connect(fetcher *f)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    if (evutil_parse_sockaddr_port(f->addr, (struct sockaddr *)&ss, &len) != 0) {
        fetcher_fail(f, "not a numeric address (host names are not resolved by the replica fetcher)");
        return -1;
    }
    f->bev = bufferevent_socket_new(f->s->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!f->bev) {
        fetcher_fail(f, "out of memory");
        return -1;
    }
    bufferevent_setcb(f->bev, on_read, NULL, on_event, f);
    bufferevent_enable(f->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(f->bev, (struct sockaddr *)&ss, len) != 0) {
        fetcher_fail(f, "cannot connect");
        return -1;
    }
    return 0;
}

static void fetcher_send(fetcher *f)
{
    srv_shard *s = f->s;
    kp_arena a;
    kp_arena_init(&a, 16384);
    kp_fetch_request rq;
    kp_fetch_request_init(&rq);
    kp_fetch_request_replica_state rs = {s->b->cfg.node_id, -1};
    rq.replica_id = -1;
    rq.replica_state = &rs;
    rq.max_wait_ms = FETCH_MAX_WAIT_MS;
    rq.min_bytes = 1;
    rq.max_bytes = FETCH_MAX_BYTES;
    rq.isolation_level = 0;
    rq.session_id = 0;
    rq.session_epoch = -1; /* sessionless: every fetch names every partition */
    rq.topics_count = 0;
    rq.forgotten_topics_data_count = 0;
    rq.rack_id = kp_str_c(s->b->cfg.broker_rack);
    build_ctx bc = {f, &a, &rq, 0};
    srv_partmap_each(s->parts, add_part, &bc);
    if (rq.topics_count == 0 || kp_arena_failed(&a)) {
        kp_arena_reset(&a);
        return;
    }
    if (!f->bev && fetcher_connect(f) != 0) {
        kp_arena_reset(&a);
        return;
    }
    kp_writer w;
    kp_writer_init(&w, 4096);
    kp_write_i32(&w, 0);
    kp_request_header h;
    kp_request_header_init(&h);
    h.request_api_key = KP_API_FETCH;
    h.request_api_version = FETCH_VERSION;
    f->corr = ++s->replicas->next_corr;
    h.correlation_id = f->corr;
    h.client_id = kp_str_c("kbroker-replica-fetcher");
    kp_request_header_encode(&w, (int16_t)kp_request_header_version(KP_API_FETCH, FETCH_VERSION), &h);
    kp_fetch_request_encode(&w, FETCH_VERSION, &rq);
    kp_arena_reset(&a);
    if (w.err) {
        kp_writer_free(&w);
        fetcher_fail(f, "cannot encode a Fetch");
        return;
    }
    uint32_t n = (uint32_t)(w.len - 4);
    w.buf[0] = (uint8_t)(n >> 24);
    w.buf[1] = (uint8_t)(n >> 16);
    w.buf[2] = (uint8_t)(n >> 8);
    w.buf[3] = (uint8_t)n;
    int rc = bufferevent_write(f->bev, w.buf, w.len);
    kp_writer_free(&w);
    if (rc != 0) {
        fetcher_fail(f, "cannot queue a Fetch");
        return;
    }
    /* A half-open connection would leave this Fetch out forever. */
    int64_t to = socket_timeout_ms(f);
    struct timeval tv = {(time_t)(to / 1000), (suseconds_t)(to % 1000) * 1000};
    bufferevent_set_timeouts(f->bev, &tv, NULL);
    f->inflight = 1;
}

/* ---- the answer -------------------------------------------------------- */

static void append_done(void *arg, int rc, int64_t base_offset)
{
    (void)arg;
    if (rc < 0 && rc != ST_E_CLOSED)
        srv_warn("replica fetcher: a copied batch at offset %lld did not become durable: %s",
                 (long long)base_offset, st_strerror(rc));
}

static void apply_partition(fetcher *f, const kp_uuid *topic_id, const kp_fetch_response_partition_data *pd)
{
    srv_shard *s = f->s;
    srv_part *x = srv_partmap_get_replica(s->parts, topic_id, pd->partition_index);
    if (!x || followed_leader(s, x, NULL) != f->leader)
        return; /* led here now, or no longer this leader's: the answer is stale */
    if (pd->error_code) {
        if (pd->error_code == KP_ERR_OFFSET_OUT_OF_RANGE && pd->error_code != x->fetch_error)
            srv_error("replica fetcher: %s-%d: log end %lld is outside leader %d's log (below its log start, "
                      "or past its end after a leader change): this replica needs truncation, which is not "
                      "served yet, and stays behind until then",
                      x->topic, (int)x->partition, (long long)st_log_end_offset(x->log), (int)f->leader);
        else if (pd->error_code != x->fetch_error)
            srv_warn("replica fetcher: %s-%d from leader %d: error %d (%s)", x->topic, (int)x->partition,
                     (int)f->leader, (int)pd->error_code, kp_error_name(pd->error_code));
        x->fetch_error = pd->error_code;
        x->fetch_retry_ms = s->now_ms + RETRY_MS;
        return;
    }
    x->fetch_error = 0;
    if (pd->records.len > 0) {
        kp_batch_iter it;
        kp_batch b;
        kp_batch_iter_init(&it, pd->records.p, (size_t)pd->records.len, 0);
        while (kp_batch_iter_next(&it, &b) == 1) {
            int64_t leo = st_log_end_offset(x->log);
            if (b.h.base_offset + b.h.last_offset_delta < leo)
                continue; /* the read began at the batch holding our end */
            int rc = st_log_append_replica(x->log, b.data, b.size, append_done, NULL);
            if (rc == ST_E_BUSY) {
                /* Full of unflushed bytes: the next fetch resumes here once
                 * the flush made room, not at once (that spun). */
                x->fetch_retry_ms = s->now_ms + BUSY_RETRY_MS;
                break;
            }
            if (rc != 0) {
                srv_warn(
                    "replica fetcher: %s-%d: cannot append the leader's batch at %lld (log end %lld): %s",
                    x->topic, (int)x->partition, (long long)b.h.base_offset, (long long)leo, st_strerror(rc));
                x->fetch_retry_ms = s->now_ms + RETRY_MS;
                break;
            }
        }
    }
    int64_t leo = st_log_end_offset(x->log);
    x->follower_hw = pd->high_watermark < leo ? pd->high_watermark : leo;
}

static void on_response(fetcher *f, const uint8_t *p, size_t n)
{
    kp_reader r;
    kp_reader_init(&r, p, n);
    kp_arena a;
    kp_arena_init(&a, 16384);
    kp_response_header h;
    kp_fetch_response resp;
    if (kp_response_header_decode(&r, &a, (int16_t)kp_response_header_version(KP_API_FETCH, FETCH_VERSION),
                                  &h) != 0 ||
        h.correlation_id != f->corr || kp_fetch_response_decode(&r, &a, FETCH_VERSION, &resp) != 0) {
        kp_arena_reset(&a);
        fetcher_fail(f, "undecodable Fetch answer");
        return;
    }
    f->inflight = 0;
    bufferevent_set_timeouts(f->bev, NULL, NULL);
    if (resp.error_code) {
        f->retry_at_ms = f->s->now_ms + RETRY_MS;
    } else {
        for (int32_t i = 0; i < resp.responses_count; i++) {
            const kp_fetch_response_fetchable_topic_response *tr = &resp.responses[i];
            for (int32_t j = 0; j < tr->partitions_count; j++)
                apply_partition(f, &tr->topic_id, &tr->partitions[j]);
        }
    }
    kp_arena_reset(&a);
    /* The leader long-polls: asking again at once costs nothing while idle. */
    if (f->s->now_ms >= f->retry_at_ms)
        fetcher_send(f);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    fetcher *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (f->bev && evbuffer_get_length(in) >= 4) {
        uint8_t hdr[4];
        evbuffer_copyout(in, hdr, 4);
        uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        if (n > RESPONSE_MAX_BYTES) {
            fetcher_fail(f, "oversized answer");
            return;
        }
        if (evbuffer_get_length(in) < 4 + (size_t)n)
            return;
        uint8_t *p = evbuffer_pullup(in, 4 + (ssize_t)n);
        if (!p) {
            fetcher_fail(f, "out of memory");
            return;
        }
        f->s->now_ms = srv_now_ms();
        on_response(f, p + 4, n);
        if (f->bev)
            evbuffer_drain(bufferevent_get_input(f->bev), 4 + (size_t)n);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    fetcher *f = arg;
    if (what & BEV_EVENT_CONNECTED) {
        srv_info("replica fetcher: connected to leader %d at %s", (int)f->leader, f->addr);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        fetcher_fail(f, "no answer within replica.socket.timeout.ms");
    else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
        fetcher_fail(f, what & BEV_EVENT_EOF ? "connection closed" : "connection failed");
}

/* ---- the tick ---------------------------------------------------------- */

static void mark_wanted(srv_part *x, void *arg)
{
    srv_shard *s = arg;
    int32_t l = followed_leader(s, x, NULL);
    if (l < 0)
        return;
    const srv_broker_reg *reg = srv_meta_broker(s->meta, l);
    char addr[sizeof(((fetcher *)0)->addr)];
    snprintf(addr, sizeof(addr), "%s:%d", reg->host, (int)reg->port);
    fetcher *f = s->replicas->head;
    while (f && f->leader != l)
        f = f->next;
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f)
            return;
        f->s = s;
        f->leader = l;
        memcpy(f->addr, addr, sizeof(addr));
        f->next = s->replicas->head;
        s->replicas->head = f;
    } else if (strcmp(f->addr, addr) != 0) {
        fetcher_close(f); /* the leader registered again elsewhere */
        memcpy(f->addr, addr, sizeof(addr));
    }
    f->wanted = 1;
}

void srv_replicas_tick(srv_shard *s)
{
    if (!s->b->quorum || !s->meta)
        return;
    if (!s->replicas && !(s->replicas = calloc(1, sizeof(*s->replicas))))
        return;
    for (fetcher *f = s->replicas->head; f; f = f->next)
        f->wanted = 0;
    srv_partmap_each(s->parts, mark_wanted, s);
    for (fetcher **fp = &s->replicas->head; *fp;) {
        fetcher *f = *fp;
        if (!f->wanted) {
            *fp = f->next;
            fetcher_close(f);
            free(f);
            continue;
        }
        if (!f->inflight && s->now_ms >= f->retry_at_ms)
            fetcher_send(f);
        fp = &f->next;
    }
}

void srv_replicas_stop(srv_shard *s)
{
    if (!s->replicas)
        return;
    while (s->replicas->head) {
        fetcher *f = s->replicas->head;
        s->replicas->head = f->next;
        fetcher_close(f);
        free(f);
    }
    free(s->replicas);
    s->replicas = NULL;
}

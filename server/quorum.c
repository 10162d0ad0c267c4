/*
 * quorum.c — the metadata quorum on canonical raft (quorum.h): a raft server
 * with the libuv I/O backend on a thread of its own, whose state machine is
 * the compacted metadata log (quorum_store.h).
 *
 * Record flow: the controller (shard 0) of the leader proposes a batch
 * (srv_quorum_propose); raft replicates and commits it; every node's state
 * machine applies committed entries in order, replays the store into a new
 * version and hands it to shard 0, which adopts and publishes it to every
 * shard as controller.c publishes its own. Raft snapshots are the store
 * encoded as one batch: the compacted metadata log.
 *
 * Registration: the leader registers itself through its own controller;
 * every other node sends Kafka's BrokerRegistration, then BrokerHeartbeat
 * every broker.heartbeat.interval.ms, to the leader's first listener from
 * this thread. The leader's shard 0 fences a broker it has not heard from
 * for broker.session.timeout.ms. Metadata changes made on a follower are
 * forwarded on the same connection: clients' requests in Envelopes
 * (handlers/envelope.c), auto-creations as CreateTopics, in an Envelope
 * naming the caller (controller.h).
 *
 * Owns `<log.dir>/__raft_metadata/`, the raft thread and its loop, and on
 * shard 0 the hand-over event and the fencing timer. Must not: call raft
 * outside the raft thread, or touch shard state outside shard 0's events.
 */
#include "quorum.h"

#include <errno.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <event2/event.h>

#include "call.h"
#include "clock.h"
#include "controller.h"
#include "errors.h"
#include "logging.h"
#include "quorum_store.h"
#include "srv_assert.h"

/* Raft's own snapshot trigger, in entries, beside Kafka's in bytes. */
#define SNAPSHOT_ENTRIES 1024

/* The first bytes of every entry the quorum proposes. */
#define ENTRY_MAGIC "KBM1"

/* Hand-over items, both directions, under q->mu. */
enum { QM_PROPOSE = 1, QM_PUBLISH, QM_DONE, QM_LEADER, QM_FORWARD, QM_FORWARDED };

/* A request forwarded to the active controller (raft thread): a creation
 * as CreateTopics, whose `op` goes back to shard 0's controller with the
 * answer, or a client's request in an Envelope, whose answer goes to cb. */
#define FWD_VERSION 7
typedef struct qfwd {
    struct qfwd *next;
    srv_ctl_op *op;
    srv_quorum_fwd_cb cb; /* NULL: op's creation */
    void *ctx;
    int16_t key, ver;
    uint8_t *frame; /* the whole request, its correlation id set when sent */
    size_t len;
    int32_t corr;
    int64_t since;
} qfwd;
typedef struct qmsg {
    struct qmsg *next;
    int kind;
    uint8_t *batch; /* QM_PROPOSE: raft_malloc'd, moved to raft */
    size_t len;
    st_append_cb done;
    void *ctx;
    int rc;
    srv_meta *meta;           /* QM_PUBLISH: one reference */
    srv_quorum_fwd_cb fwd_cb; /* QM_FORWARD(ED) of a request: its answer's receiver */
    int16_t fwd_key, fwd_ver;
} qmsg;

typedef struct qprop {
    struct raft_apply req;
    srv_quorum *q;
    st_append_cb done;
    void *ctx;
} qprop;

/* The follower's connection to the leader's broker listener. */
typedef struct qclient {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_getaddrinfo_t resolve;
    int state; /* 0 closed, 1 connecting, 2 up, 3 closing, 4 resolving, 5 resolution cancelled */
    int32_t leader;
    int registered; /* the leader answered our registration */
    int in_flight;  /* a request is out: one at a time */
    int16_t in_api; /* ... of this API */
    int64_t sent_at;
    int32_t corr;
    uint8_t *rbuf;
    size_t rlen, rcap;
    int64_t epoch;
    qfwd *fwd_wait; /* not sent yet: no connection to the leader */
    qfwd *fwd_out;  /* sent, answered by correlation id */
    int32_t fwd_corr;
} qclient;

struct srv_quorum {
    srv_broker *b;
    pthread_t thread;
    int thread_started;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    char dir[4096];
    char address[300];
    int raft_up, stop, closed;
    int stage; /* 1 transport, 2 io, 3 raft initialised: what a failed setup releases */
    int init_rc;
    /* the state machine (raft thread) */
    srv_qstore store;
    uint64_t applied;
    uint64_t bytes_since_snapshot; /* metadata.log.max.record.bytes.between.snapshots */
    unsigned entries_since_snapshot;
    srv_meta *latest; /* the version of the store; under mu for main's start-up read */
    int caught_up;    /* under mu */
    qclient cl;
    int64_t last_register_try;
    /* hand-over */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    qmsg *in_head, *in_tail;
    qmsg *out_head, *out_tail;
    int out_fd;
    struct event *out_ev;
    int leader_ready; /* atomic */
    int32_t leader;   /* atomic */
    int was_leader;   /* raft thread */
    struct raft_barrier barrier;
    int barrier_out;
    /* shard 0: the active controller's view of heartbeats */
    struct event *fence_ev;
    int32_t *heard_id;
    int64_t *heard_at;
    int nheard, capheard;
    int fencing; /* a fencing op is out */
    int registering;
    int64_t leader_since;
    int creating; /* the offsets topic's creation is out */
    srv_topic_spec offsets_spec;
    srv_topic_cfg_kv offsets_cfg[2];
    char offsets_segment[24];
    srv_ctl_op offsets_op;
};

/* ---- hand-over ------------------------------------------------------------ */

static void push(qmsg **head, qmsg **tail, qmsg *m)
{
    m->next = NULL;
    if (*tail)
        (*tail)->next = m;
    else
        *head = m;
    *tail = m;
}

/* Raft thread -> shard 0. */
static void to_shard0(srv_quorum *q, qmsg *m)
{
    pthread_mutex_lock(&q->mu);
    push(&q->out_head, &q->out_tail, m);
    pthread_mutex_unlock(&q->mu);
    uint64_t one = 1;
    /* The eventfd only rings: a failed write means it is already set. */
    ssize_t w = write(q->out_fd, &one, sizeof(one));
    (void)w;
}

static qmsg *qmsg_new(int kind)
{
    qmsg *m = calloc(1, sizeof(*m));
    SRV_ASSERT(m != NULL, "out of memory handing metadata over between the raft thread and shard 0");
    m->kind = kind;
    return m;
}

int srv_quorum_is_leader(void *arg)
{
    srv_quorum *q = arg;
    return __atomic_load_n(&q->leader_ready, __ATOMIC_ACQUIRE);
}

int32_t srv_quorum_leader_id(const srv_quorum *q)
{
    return __atomic_load_n(&q->leader, __ATOMIC_ACQUIRE);
}

/* ---- the state machine (raft thread) ----------------------------------------- */

/* A new version from the store: kept as the latest and handed to shard 0. */
static int publish_store(srv_quorum *q)
{
    srv_meta *m = NULL;
    int rc = srv_qstore_meta(&q->store, q->applied, &m);
    if (rc) {
        /* Every node replays the same committed log: a version that cannot
         * be built here cannot be anywhere, and serving an older one would
         * make this node silently diverge. */
        SRV_ASSERT(rc == 0, "metadata quorum: committed entry %llu does not replay (%d)",
                   (unsigned long long)q->applied, rc);
    }
    pthread_mutex_lock(&q->mu);
    srv_meta *old = q->latest;
    q->latest = srv_meta_ref(m);
    pthread_mutex_unlock(&q->mu);
    if (old)
        srv_meta_unref(old);
    qmsg *pm = qmsg_new(QM_PUBLISH);
    pm->meta = m;
    to_shard0(q, pm);
    return 0;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    srv_quorum *q = fsm->data;
    *result = NULL;
    const uint8_t *p = buf->base;
    size_t n = buf->len >= 8 ? (size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7] : 0;
    SRV_ASSERT(buf->len >= 8 && memcmp(p, ENTRY_MAGIC, 4) == 0 && n <= buf->len - 8,
               "metadata quorum: a committed entry of %zu bytes is not a metadata entry", buf->len);
    int rc = srv_qstore_apply(&q->store, p + 8, n);
    /* Entries are checked before they are proposed: one that does not apply
     * here is a bug or a corruption, and skipping it would diverge. */
    SRV_ASSERT(rc == 0, "metadata quorum: committed entry of %zu bytes does not apply (%d)", buf->len, rc);
    q->applied++;
    /* Kafka snapshots by bytes of records: once enough are applied, lower
     * raft's entry threshold to what is applied since the last snapshot,
     * which makes raft take one now (fsm_snapshot raises it again). */
    q->bytes_since_snapshot += n;
    q->entries_since_snapshot++;
    if (q->bytes_since_snapshot >= (uint64_t)q->b->cfg.metadata_snapshot_bytes)
        raft_set_snapshot_threshold(&q->raft, q->entries_since_snapshot);
    return publish_store(q);
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    srv_quorum *q = fsm->data;
    q->bytes_since_snapshot = 0;
    q->entries_since_snapshot = 0;
    raft_set_snapshot_threshold(&q->raft, SNAPSHOT_ENTRIES);
    kp_writer w;
    kp_writer_init(&w, 4096);
    int rc = srv_qstore_encode(&q->store, &w);
    if (rc || w.err) {
        kp_writer_free(&w);
        return RAFT_NOMEM;
    }
    /* 8 bytes of applied count, 8 of length, the compacted log, padding to
     * 8 bytes as the entries have. */
    size_t total = (16 + w.len + 7) & ~(size_t)7;
    struct raft_buffer *b = raft_malloc(sizeof(*b));
    uint8_t *data = raft_calloc(1, total);
    if (!b || !data) {
        raft_free(b);
        raft_free(data);
        kp_writer_free(&w);
        return RAFT_NOMEM;
    }
    for (int i = 0; i < 8; i++) {
        data[i] = (uint8_t)(q->applied >> (56 - 8 * i));
        data[8 + i] = (uint8_t)((uint64_t)w.len >> (56 - 8 * i));
    }
    memcpy(data + 16, w.buf, w.len);
    b->base = data;
    b->len = total;
    kp_writer_free(&w);
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    srv_quorum *q = fsm->data;
    if (buf->len < 16)
        return RAFT_MALFORMED;
    const uint8_t *p = buf->base;
    uint64_t n = 0;
    for (int i = 8; i < 16; i++)
        n = n << 8 | p[i];
    if (n > buf->len - 16)
        return RAFT_MALFORMED;
    srv_qstore fresh = {0};
    int rc = srv_qstore_apply(&fresh, p + 16, (size_t)n);
    if (rc) {
        srv_qstore_free(&fresh);
        return RAFT_MALFORMED;
    }
    srv_qstore_free(&q->store);
    q->store = fresh;
    q->applied = 0;
    for (int i = 0; i < 8; i++)
        q->applied = q->applied << 8 | p[i];
    raft_free(buf->base); /* restore owns the snapshot's buffer */
    srv_info("metadata quorum: restored a snapshot of %d records (%llu entries applied)", q->store.n,
             (unsigned long long)q->applied);
    return publish_store(q);
}

/* ---- proposals (raft thread) ---------------------------------------------------- */

static void prop_done(struct raft_apply *req, int status, void *result)
{
    (void)result;
    qprop *p = req->data;
    qmsg *m = qmsg_new(QM_DONE);
    m->done = p->done;
    m->ctx = p->ctx;
    m->rc = status == 0                                                 ? 0
            : status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST ? SRV_CTL_E_NOT_CONTROLLER
                                                                        : -EIO;
    if (status)
        srv_warn("metadata quorum: a proposal failed: %s", raft_strerror(status));
    to_shard0(p->q, m);
    free(p);
}

static void propose_now(srv_quorum *q, qmsg *m)
{
    qprop *p = calloc(1, sizeof(*p));
    int rc = RAFT_NOMEM;
    if (p && q->raft_up && raft_state(&q->raft) == RAFT_LEADER) {
        p->q = q;
        p->done = m->done;
        p->ctx = m->ctx;
        p->req.data = p;
        struct raft_buffer buf = {m->batch, m->len};
        rc = raft_apply(&q->raft, &p->req, &buf, 1, prop_done);
        if (rc == 0) {
            free(m);
            return;
        }
    } else if (p) {
        rc = RAFT_NOTLEADER;
    }
    free(p);
    raft_free(m->batch);
    m->batch = NULL;
    m->kind = QM_DONE;
    m->rc = rc == RAFT_NOTLEADER || rc == RAFT_LEADERSHIPLOST ? SRV_CTL_E_NOT_CONTROLLER : -EIO;
    to_shard0(q, m);
}

void srv_quorum_propose(srv_quorum *q, const uint8_t *batch, size_t len, st_append_cb done, void *ctx)
{
    qmsg *m = qmsg_new(QM_PROPOSE);
    /* Framed (magic, length) and padded to 8 bytes: raft's libuv store
     * requires entries of a multiple of 8 bytes without checking it
     * (unaligned entries are an open upstream issue, canonical/raft#189);
     * others come back shifted after a restart, which we saw. */
    size_t total = (8 + len + 7) & ~(size_t)7;
    m->batch = raft_calloc(1, total);
    SRV_ASSERT(m->batch != NULL, "out of memory proposing %zu bytes of metadata", len);
    memcpy(m->batch, ENTRY_MAGIC, 4);
    m->batch[4] = (uint8_t)(len >> 24);
    m->batch[5] = (uint8_t)(len >> 16);
    m->batch[6] = (uint8_t)(len >> 8);
    m->batch[7] = (uint8_t)len;
    memcpy(m->batch + 8, batch, len);
    m->len = total;
    m->done = done;
    m->ctx = ctx;
    pthread_mutex_lock(&q->mu);
    push(&q->in_head, &q->in_tail, m);
    pthread_mutex_unlock(&q->mu);
    uv_async_send(&q->wake);
}

/* ---- leadership (raft thread) ------------------------------------------------------ */

static void barrier_done(struct raft_barrier *req, int status)
{
    srv_quorum *q = req->data;
    q->barrier_out = 0;
    if (status != 0 || raft_state(&q->raft) != RAFT_LEADER)
        return;
    /* Everything committed before this term is applied here now: the
     * controller may check changes against this node's version. */
    __atomic_store_n(&q->leader_ready, 1, __ATOMIC_RELEASE);
    srv_info("metadata quorum: node %d is the active controller", (int)q->b->cfg.node_id);
    to_shard0(q, qmsg_new(QM_LEADER));
}

static void watch_leadership(srv_quorum *q)
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&q->raft, &id, &addr);
    int32_t lid = id ? (int32_t)id : -1;
    if (__atomic_exchange_n(&q->leader, lid, __ATOMIC_ACQ_REL) != lid && lid >= 0)
        srv_info("metadata quorum: leader is node %d", (int)lid);
    int leader = raft_state(&q->raft) == RAFT_LEADER;
    if (leader && !q->was_leader && !q->barrier_out) {
        q->barrier.data = q;
        if (raft_barrier(&q->raft, &q->barrier, barrier_done) == 0)
            q->barrier_out = 1;
    }
    if (!leader)
        __atomic_store_n(&q->leader_ready, 0, __ATOMIC_RELEASE);
    if (leader != q->was_leader && !leader)
        q->cl.registered = 0;
    q->was_leader = leader && (q->barrier_out || srv_quorum_is_leader(q));
    /* Start-up waits for this: a leader is known and its commit applied. */
    if (lid >= 0 && raft_last_applied(&q->raft) >= q->raft.commit_index) {
        pthread_mutex_lock(&q->mu);
        if (!q->caught_up) {
            q->caught_up = 1;
            pthread_cond_broadcast(&q->cond);
        }
        pthread_mutex_unlock(&q->mu);
    }
}

/* ---- registration and heartbeats of a follower (raft thread) --------------------- */

/* Raft thread: f's answer (NULL: none) goes back to shard 0's controller. */
static void fwd_finish(srv_quorum *q, qfwd *f, const uint8_t *body, size_t len)
{
    qmsg *m = qmsg_new(QM_FORWARDED);
    m->ctx = f->cb ? f->ctx : f->op;
    m->fwd_cb = f->cb;
    m->fwd_key = f->key;
    if (body) {
        m->batch = malloc(len ? len : 1);
        if (m->batch) {
            memcpy(m->batch, body, len);
            m->len = len;
        }
    }
    to_shard0(q, m);
    free(f->frame);
    free(f);
}

static void fwd_fail_all(srv_quorum *q, qfwd **list)
{
    while (*list) {
        qfwd *f = *list;
        *list = f->next;
        fwd_finish(q, f, NULL, 0);
    }
}

static void cl_close_cb(uv_handle_t *h)
{
    qclient *cl = h->data;
    cl->state = 0;
}

static void cl_close(srv_quorum *q)
{
    qclient *cl = &q->cl;
    if (cl->state == 1 || cl->state == 2) {
        cl->state = 3;
        uv_close((uv_handle_t *)&cl->tcp, cl_close_cb);
    } else if (cl->state == 4) {
        cl->state = 5; /* its callback comes (cancelled or not) and ends it */
        uv_cancel((uv_req_t *)&cl->resolve);
    }
    cl->in_flight = 0;
    cl->rlen = 0;
    cl->registered = 0;
    /* Sent but unanswered: whether the controller made them is unknown
     * here; the clients' retries settle it (NOT_CONTROLLER). */
    fwd_fail_all(q, &cl->fwd_out);
}

static void cl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    qclient *cl = h->data;
    if (cl->rcap - cl->rlen < 4096) {
        size_t cap = cl->rcap ? cl->rcap * 2 : 8192;
        uint8_t *nb = realloc(cl->rbuf, cap);
        if (!nb) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        cl->rbuf = nb;
        cl->rcap = cap;
    }
    *buf = uv_buf_init((char *)cl->rbuf + cl->rlen, (unsigned)(cl->rcap - cl->rlen));
}

/* One whole response: its error decides what comes next. */
static void cl_response(srv_quorum *q, const uint8_t *p, size_t n)
{
    qclient *cl = &q->cl;
    int32_t corr =
        n >= 4 ? (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) : 0;
    for (qfwd **fp = &cl->fwd_out; *fp; fp = &(*fp)->next) {
        if ((*fp)->corr != corr)
            continue;
        qfwd *f = *fp;
        *fp = f->next;
        kp_reader fr;
        kp_reader_init(&fr, p, n);
        kp_arena fa;
        kp_arena_init(&fa, 1024);
        kp_response_header fh;
        int hv = kp_response_header_version(f->key, f->ver);
        if (kp_response_header_decode(&fr, &fa, (int16_t)hv, &fh) == 0)
            fwd_finish(q, f, p + (n - kp_reader_left(&fr)), kp_reader_left(&fr));
        else
            fwd_finish(q, f, NULL, 0);
        kp_arena_reset(&fa);
        return;
    }
    kp_reader r;
    kp_reader_init(&r, p, n);
    kp_arena a;
    kp_arena_init(&a, 1024);
    kp_response_header h;
    int16_t err = KP_ERR_UNKNOWN_SERVER_ERROR;
    const int16_t ver = 0; /* both APIs are sent at v0 (cl_send) */
    if (kp_response_header_decode(&r, &a, (int16_t)kp_response_header_version(cl->in_api, ver), &h) == 0 &&
        h.correlation_id == cl->corr) {
        if (cl->in_api == KP_API_BROKER_REGISTRATION) {
            kp_broker_registration_response resp;
            if (kp_broker_registration_response_decode(&r, &a, ver, &resp) == 0) {
                err = resp.error_code;
                if (err == 0) {
                    cl->registered = 1;
                    cl->epoch = resp.broker_epoch;
                    srv_info("metadata quorum: registered with the active controller (node %d)",
                             (int)cl->leader);
                }
            }
        } else {
            kp_broker_heartbeat_response resp;
            if (kp_broker_heartbeat_response_decode(&r, &a, ver, &resp) == 0) {
                err = resp.error_code;
                /* Fenced meanwhile (or the controller forgot us): register again. */
                if (err || resp.is_fenced)
                    cl->registered = 0;
            }
        }
    }
    kp_arena_reset(&a);
    cl->in_flight = 0;
    if (err && err != KP_ERR_NOT_CONTROLLER)
        srv_warn("metadata quorum: %s to node %d answered error %d",
                 cl->in_api == KP_API_BROKER_REGISTRATION ? "registration" : "heartbeat", (int)cl->leader,
                 (int)err);
    if (err)
        cl->registered = 0;
}

static void cl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    qclient *cl = s->data;
    srv_quorum *q = (srv_quorum *)((char *)cl - offsetof(srv_quorum, cl));
    if (nread < 0) {
        cl_close(q);
        return;
    }
    cl->rlen += (size_t)nread;
    while (cl->rlen >= 4) {
        uint32_t len = (uint32_t)cl->rbuf[0] << 24 | (uint32_t)cl->rbuf[1] << 16 |
                       (uint32_t)cl->rbuf[2] << 8 | cl->rbuf[3];
        /* Answers are bounded as requests are: a CreateTopics of a thousand
         * topics answers well above a MiB. */
        if (len > (uint32_t)q->b->cfg.socket_request_max_bytes) {
            cl_close(q);
            return;
        }
        if (cl->rlen < 4 + (size_t)len)
            return;
        cl_response(q, cl->rbuf + 4, len);
        memmove(cl->rbuf, cl->rbuf + 4 + len, cl->rlen - 4 - len);
        cl->rlen -= 4 + len;
    }
}

static void cl_written(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
    (void)status; /* a failed write shows as a failed read */
}

static void cl_send(srv_quorum *q)
{
    qclient *cl = &q->cl;
    srv_broker *b = q->b;
    kp_writer w;
    kp_writer_init(&w, 512);
    kp_write_i32(&w, 0); /* the size, set below */
    kp_request_header h;
    kp_request_header_init(&h);
    h.request_api_key = cl->registered ? KP_API_BROKER_HEARTBEAT : KP_API_BROKER_REGISTRATION;
    h.request_api_version = 0;
    h.correlation_id = ++cl->corr;
    h.client_id = kp_str_c("kbroker-quorum");
    kp_request_header_encode(&w, (int16_t)kp_request_header_version(h.request_api_key, 0), &h);
    if (!cl->registered) {
        kp_broker_registration_request rq;
        kp_broker_registration_request_init(&rq);
        kp_broker_registration_request_listener l;
        kp_broker_registration_request_listener_init(&l);
        l.name = kp_str_c(b->cfg.listeners[0].name);
        l.host = kp_str_c(b->adv[0].host);
        l.port = (uint16_t)b->adv[0].port;
        l.security_protocol = b->cfg.listeners[0].proto;
        rq.broker_id = b->cfg.node_id;
        rq.cluster_id = kp_str_c(b->cluster_id);
        rq.listeners = &l;
        rq.listeners_count = 1;
        rq.features_count = 0;
        rq.rack = b->cfg.broker_rack[0] ? kp_str_c(b->cfg.broker_rack) : KP_STR_NULL;
        kp_broker_registration_request_encode(&w, 0, &rq);
    } else {
        kp_broker_heartbeat_request rq;
        kp_broker_heartbeat_request_init(&rq);
        rq.broker_id = b->cfg.node_id;
        rq.broker_epoch = cl->epoch;
        rq.current_metadata_offset = (int64_t)q->applied;
        kp_broker_heartbeat_request_encode(&w, 0, &rq);
    }
    if (w.err) {
        kp_writer_free(&w);
        return;
    }
    uint32_t n = (uint32_t)(w.len - 4);
    w.buf[0] = (uint8_t)(n >> 24);
    w.buf[1] = (uint8_t)(n >> 16);
    w.buf[2] = (uint8_t)(n >> 8);
    w.buf[3] = (uint8_t)n;
    uv_write_t *req = malloc(sizeof(*req));
    if (!req) {
        kp_writer_free(&w);
        return;
    }
    req->data = w.buf; /* the writer's buffer is freed when written */
    uv_buf_t ub = uv_buf_init((char *)w.buf, (unsigned)w.len);
    if (uv_write(req, (uv_stream_t *)&cl->tcp, &ub, 1, cl_written) != 0) {
        free(req);
        kp_writer_free(&w);
        cl_close(q);
        return;
    }
    cl->in_flight = 1;
    cl->in_api = h.request_api_key;
    cl->sent_at = srv_now_ms();
}

static void fwd_send_waiting(srv_quorum *q)
{
    qclient *cl = &q->cl;
    while (cl->fwd_wait && cl->state == 2) {
        qfwd *f = cl->fwd_wait;
        cl->fwd_wait = f->next;
        f->corr = ++cl->fwd_corr;
        f->frame[8] = (uint8_t)((uint32_t)f->corr >> 24);
        f->frame[9] = (uint8_t)((uint32_t)f->corr >> 16);
        f->frame[10] = (uint8_t)((uint32_t)f->corr >> 8);
        f->frame[11] = (uint8_t)f->corr;
        uv_write_t *req = malloc(sizeof(*req));
        uv_buf_t ub = uv_buf_init((char *)f->frame, (unsigned)f->len);
        if (req) {
            req->data = NULL; /* the frame stays with f until answered */
            if (uv_write(req, (uv_stream_t *)&cl->tcp, &ub, 1, cl_written) == 0) {
                f->next = cl->fwd_out;
                cl->fwd_out = f;
                continue;
            }
            free(req);
        }
        fwd_finish(q, f, NULL, 0);
    }
}

static void cl_connected(uv_connect_t *c, int status);

static void cl_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    qclient *cl = req->data;
    srv_quorum *q = (srv_quorum *)((char *)cl - offsetof(srv_quorum, cl));
    if (status != 0 || !res || cl->state != 4 || __atomic_load_n(&q->stop, __ATOMIC_ACQUIRE)) {
        if (status != 0 && status != UV_ECANCELED)
            srv_warn("metadata quorum: cannot resolve the leader's endpoint: %s", uv_strerror(status));
        cl->state = 0; /* tried again on a later tick */
        uv_freeaddrinfo(res);
        return;
    }
    uv_tcp_init(&q->loop, &cl->tcp);
    cl->tcp.data = cl;
    cl->conn.data = cl;
    cl->state = 1;
    if (uv_tcp_connect(&cl->conn, &cl->tcp, res->ai_addr, cl_connected) != 0)
        cl_close(q);
    uv_freeaddrinfo(res);
}

static void cl_connected(uv_connect_t *c, int status)
{
    qclient *cl = c->data;
    srv_quorum *q = (srv_quorum *)((char *)cl - offsetof(srv_quorum, cl));
    if (cl->state != 1)
        return;
    if (status != 0) {
        cl_close(q);
        return;
    }
    cl->state = 2;
    uv_read_start((uv_stream_t *)&cl->tcp, cl_alloc, cl_read);
    cl_send(q);
    fwd_send_waiting(q);
}

/* Each tick: a follower keeps registered with, and heartbeating to, the
 * leader through the leader's registered endpoint. */
static void cl_tick(srv_quorum *q)
{
    qclient *cl = &q->cl;
    int32_t lid = srv_quorum_leader_id(q);
    int64_t tnow = srv_now_ms();
    /* Waiting without a leader to send to: refused after a while (the
     * client retries); this node leading now: refused at once, the retry
     * comes to this node's controller. */
    for (qfwd **fp = &cl->fwd_wait; *fp;) {
        qfwd *f = *fp;
        if (lid == q->b->cfg.node_id || tnow - f->since > 15000) {
            *fp = f->next;
            fwd_finish(q, f, NULL, 0);
        } else {
            fp = &f->next;
        }
    }
    if (lid < 0 || lid == q->b->cfg.node_id ||
        __atomic_load_n(&q->b->ready_count, __ATOMIC_ACQUIRE) < q->b->nshards) {
        cl_close(q);
        return;
    }
    if (cl->leader != lid) {
        cl_close(q);
        cl->leader = lid;
    }
    if (cl->state == 3)
        return;
    if (cl->state == 0) {
        const srv_broker_reg *r = q->latest ? srv_meta_broker(q->latest, lid) : NULL;
        if (!r)
            return; /* the leader has not registered itself yet */
        /* Resolved off the loop (an advertised name such as localhost). */
        char port[8];
        snprintf(port, sizeof(port), "%u", (unsigned)r->port);
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        cl->resolve.data = cl;
        cl->state = 4;
        if (uv_getaddrinfo(&q->loop, &cl->resolve, cl_resolved, r->host, port, &hints) != 0)
            cl->state = 0;
        return;
    }
    if (cl->state != 2)
        return;
    fwd_send_waiting(q);
    int64_t now = srv_now_ms();
    if (cl->in_flight) {
        /* An answer that never comes: the session timeout would fence us,
         * so start over on a new connection well before it. */
        if (now - cl->sent_at > q->b->cfg.broker_session_timeout_ms / 2)
            cl_close(q);
        return;
    }
    /* Unregistered (refused by a node that just lost the lead, or fenced):
     * again soon, but not on every tick. */
    int64_t every = cl->registered ? q->b->cfg.broker_heartbeat_interval_ms : 250;
    if (now - cl->sent_at >= every)
        cl_send(q);
}

/* ---- the raft thread ---------------------------------------------------------------- */

static void drain_in(srv_quorum *q)
{
    pthread_mutex_lock(&q->mu);
    qmsg *m = q->in_head;
    q->in_head = q->in_tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while (m) {
        qmsg *next = m->next;
        if (m->kind == QM_FORWARD) {
            qfwd *f = calloc(1, sizeof(*f));
            SRV_ASSERT(f != NULL, "out of memory forwarding a request to the active controller");
            f->cb = m->fwd_cb;
            if (f->cb)
                f->ctx = m->ctx;
            else
                f->op = m->ctx;
            f->key = m->fwd_key;
            f->ver = m->fwd_ver;
            f->frame = m->batch;
            f->len = m->len;
            f->since = srv_now_ms();
            qfwd **tail = &q->cl.fwd_wait;
            while (*tail)
                tail = &(*tail)->next;
            *tail = f; /* in order */
            free(m);
        } else {
            propose_now(q, m);
        }
        m = next;
    }
}

static void on_raft_closed(struct raft *r)
{
    srv_quorum *q = r->data;
    q->closed = 1;
    raft_uv_close(&q->io);
    raft_uv_tcp_close(&q->transport);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_wake(uv_async_t *a)
{
    srv_quorum *q = a->data;
    if (__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE)) {
        cl_close(q);
        uv_timer_stop(&q->timer);
        close_handle((uv_handle_t *)&q->timer);
        close_handle((uv_handle_t *)&q->wake);
        drain_in(q); /* refused: raft is going */
        if (q->raft_up)
            raft_close(&q->raft, on_raft_closed);
        return;
    }
    drain_in(q);
    if (q->raft_up)
        watch_leadership(q);
}

static void on_timer(uv_timer_t *t)
{
    srv_quorum *q = t->data;
    if (!q->raft_up || __atomic_load_n(&q->stop, __ATOMIC_ACQUIRE))
        return;
    watch_leadership(q);
    cl_tick(q);
}

/* Raft's own start-up (loading its log and snapshot) on this thread. */
static int raft_setup(srv_quorum *q)
{
    srv_broker *b = q->b;
    int rc = raft_uv_tcp_init(&q->transport, &q->loop);
    if (rc)
        return rc;
    q->stage = 1;
    snprintf(q->address, sizeof(q->address), "%s:%u", b->cfg.ctl_host[0] ? b->cfg.ctl_host : "0.0.0.0",
             (unsigned)b->cfg.ctl_port);
    rc = raft_uv_init(&q->io, &q->loop, q->dir, &q->transport);
    if (rc)
        return rc;
    q->stage = 2;
    q->fsm.version = 1;
    q->fsm.data = q;
    q->fsm.apply = fsm_apply;
    q->fsm.snapshot = fsm_snapshot;
    q->fsm.restore = fsm_restore;
    /* Our own address as the voters list spells it: that is what others
     * connect to. */
    const char *self = q->address;
    static __thread char addr[SRV_MAX_VOTERS][300];
    for (int i = 0; i < b->cfg.nvoters; i++) {
        snprintf(addr[i], sizeof(addr[i]), "%s:%u", b->cfg.voters[i].host, (unsigned)b->cfg.voters[i].port);
        if (b->cfg.voters[i].id == b->cfg.node_id)
            self = addr[i];
    }
    rc = raft_init(&q->raft, &q->io, &q->fsm, (raft_id)b->cfg.node_id, self);
    if (rc)
        return rc;
    q->stage = 3;
    q->raft.data = q;
    raft_uv_tcp_set_bind_address(&q->transport, q->address);
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (int i = 0; i < b->cfg.nvoters && rc == 0; i++)
        rc = raft_configuration_add(&conf, (raft_id)b->cfg.voters[i].id, addr[i], RAFT_VOTER);
    /* Every voter bootstraps the same configuration; a node with a log
     * already refuses, which is its normal restart. */
    if (rc == 0) {
        rc = raft_bootstrap(&q->raft, &conf);
        if (rc == RAFT_CANTBOOTSTRAP)
            rc = 0;
    }
    raft_configuration_close(&conf);
    if (rc)
        return rc;
    /* Kafka's quorum defaults are 1 s elections and a fetch every 500 ms;
     * raft's heartbeats stand for those fetches. */
    raft_set_election_timeout(&q->raft, 1000);
    raft_set_heartbeat_timeout(&q->raft, 100);
    raft_set_snapshot_threshold(&q->raft, SNAPSHOT_ENTRIES);
    raft_set_snapshot_trailing(&q->raft, 128);
    raft_set_pre_vote(&q->raft, true);
    rc = raft_start(&q->raft);
    if (rc)
        return rc;
    q->raft_up = 1;
    return 0;
}

static void *quorum_main(void *arg)
{
    srv_quorum *q = arg;
    int rc = raft_setup(q);
    pthread_mutex_lock(&q->mu);
    q->init_rc = rc ? rc : 0;
    if (rc)
        q->caught_up = 1; /* start-up stops waiting and sees the error */
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    if (rc) {
        srv_error("metadata quorum: cannot start raft in %s on %s: %s", q->dir, q->address,
                  q->stage == 3 ? raft_errmsg(&q->raft) : raft_strerror(rc));
        close_handle((uv_handle_t *)&q->timer);
        close_handle((uv_handle_t *)&q->wake);
        if (q->stage == 3) {
            raft_close(&q->raft, on_raft_closed);
        } else {
            if (q->stage >= 2)
                raft_uv_close(&q->io);
            if (q->stage >= 1)
                raft_uv_tcp_close(&q->transport);
        }
    } else {
        uv_timer_start(&q->timer, on_timer, 50, 50);
    }
    uv_run(&q->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- shard 0 ---------------------------------------------------------------------- */

typedef struct fence_op {
    srv_ctl_op op;
    srv_broker_reg reg;
    srv_quorum *q;
} fence_op;

static void reg_done(srv_shard *on, srv_ctl_op *op)
{
    (void)on;
    fence_op *f = (fence_op *)op;
    if (f->reg.fenced)
        f->q->fencing = 0;
    else
        f->q->registering = 0;
    if (op->reg_error == 0 && f->reg.fenced)
        srv_info("metadata quorum: broker %d fenced: not heard from for %lld ms", (int)f->reg.id,
                 (long long)f->q->b->cfg.broker_session_timeout_ms);
    free(f);
}

static void submit_reg(srv_quorum *q, const srv_broker_reg *r)
{
    fence_op *f = calloc(1, sizeof(*f));
    if (!f)
        return; /* tried again on the next tick */
    f->reg = *r;
    f->q = q;
    f->op.kind = SRV_CTL_REGISTER;
    f->op.reg = &f->reg;
    f->op.done = reg_done;
    if (r->fenced)
        q->fencing = 1;
    else
        q->registering = 1;
    srv_ctl_submit(&q->b->shards[0], NULL, &f->op);
}

static int heard_index(srv_quorum *q, int32_t id)
{
    for (int i = 0; i < q->nheard; i++)
        if (q->heard_id[i] == id)
            return i;
    if (q->nheard == q->capheard) {
        int cap = q->capheard ? q->capheard * 2 : 8;
        int32_t *ni = realloc(q->heard_id, sizeof(*ni) * (size_t)cap);
        if (!ni)
            return -1;
        q->heard_id = ni;
        int64_t *na = realloc(q->heard_at, sizeof(*na) * (size_t)cap);
        if (!na)
            return -1;
        q->heard_at = na;
        q->capheard = cap;
    }
    q->heard_id[q->nheard] = id;
    q->heard_at[q->nheard] = srv_now_ms();
    return q->nheard++;
}

static void heard_cb(void *arg, int32_t id)
{
    srv_quorum_heard(arg, id);
}

void srv_quorum_heard(srv_quorum *q, int32_t id)
{
    int i = heard_index(q, id);
    if (i >= 0)
        q->heard_at[i] = srv_now_ms();
}

static void offsets_created(srv_shard *on, srv_ctl_op *op)
{
    (void)on;
    srv_quorum *q = (srv_quorum *)((char *)op - offsetof(srv_quorum, offsets_op));
    q->creating = 0;
    if (q->offsets_spec.error && q->offsets_spec.error != KP_ERR_TOPIC_ALREADY_EXISTS)
        srv_warn("metadata quorum: creating %s failed (error %d): %s; tried again", "__consumer_offsets",
                 (int)q->offsets_spec.error, q->offsets_spec.message);
}

/* The active controller creates the offsets topic itself once the voters
 * have registered (or a session after it took over): a follower that a
 * client asks first cannot create it (changes are made by the active
 * controller only), and placing its partitions before the brokers are
 * there would put them all on the first one. */
static void ensure_offsets_topic(srv_quorum *q, const srv_meta *m, int64_t now)
{
    const srv_config *cfg = &q->b->cfg;
    if (q->creating || srv_meta_topic(m, kp_str_c("__consumer_offsets")))
        return;
    int live = 0;
    for (int i = 0; i < cfg->nvoters; i++) {
        const srv_broker_reg *r = srv_meta_broker(m, cfg->voters[i].id);
        live += r && !r->fenced;
    }
    if (live < cfg->nvoters && now - q->leader_since < 2 * cfg->broker_session_timeout_ms)
        return;
    /* Kafka's offsetsTopicConfigs, as group/coord.c makes them. */
    snprintf(q->offsets_segment, sizeof(q->offsets_segment), "%d", (int)cfg->offsets_topic_segment_bytes);
    q->offsets_cfg[0] = (srv_topic_cfg_kv){"cleanup.policy", "compact"};
    q->offsets_cfg[1] = (srv_topic_cfg_kv){"segment.bytes", q->offsets_segment};
    memset(&q->offsets_spec, 0, sizeof(q->offsets_spec));
    q->offsets_spec.name = kp_str_c("__consumer_offsets");
    q->offsets_spec.nparts = cfg->offsets_topic_num_partitions;
    q->offsets_spec.replication = -1;
    q->offsets_spec.ncfg = 2;
    q->offsets_spec.cfg = q->offsets_cfg;
    memset(&q->offsets_op, 0, sizeof(q->offsets_op));
    q->offsets_op.kind = SRV_CTL_CREATE;
    q->offsets_op.nspecs = 1;
    q->offsets_op.specs = &q->offsets_spec;
    q->offsets_op.done = offsets_created;
    q->creating = 1;
    srv_ctl_submit(&q->b->shards[0], NULL, &q->offsets_op);
}

/* The active controller fences, one broker at a time, those it has not
 * heard from for broker.session.timeout.ms (itself excepted). */
static void on_fence_tick(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    srv_quorum *q = arg;
    if (!srv_quorum_is_leader(q))
        return;
    const srv_meta *m = srv_ctl_current(q->b->ctl);
    int64_t now = srv_now_ms();
    ensure_offsets_topic(q, m, now);
    if (q->fencing)
        return;
    for (int i = 0; i < m->nbrokers; i++) {
        const srv_broker_reg *r = &m->brokers[i];
        if (r->fenced || r->id == q->b->cfg.node_id)
            continue;
        int k = heard_index(q, r->id);
        if (k < 0 || now - q->heard_at[k] < q->b->cfg.broker_session_timeout_ms)
            continue;
        srv_broker_reg f = *r;
        f.fenced = 1;
        submit_reg(q, &f);
        return;
    }
}

/* Shard 0: a creation made on a follower, encoded as CreateTopics for the
 * active controller and handed to the raft thread, which holds the
 * connection to it. */
static void forward_op(void *arg, srv_ctl_op *op)
{
    srv_quorum *q = arg;
    kp_arena a;
    kp_arena_init(&a, 1u << 20);
    kp_create_topics_request rq;
    kp_create_topics_request_init(&rq);
    rq.timeout_ms = 30000;
    rq.validate_only = (uint8_t)(op->validate_only != 0);
    rq.topics = kp_arena_alloc(&a, sizeof(*rq.topics) * (size_t)(op->nspecs + 1));
    rq.topics_count = 0;
    for (int i = 0; rq.topics && i < op->nspecs; i++) {
        const srv_topic_spec *sp = &op->specs[i];
        if (sp->skip)
            continue;
        kp_create_topics_request_creatable_topic *t = &rq.topics[rq.topics_count++];
        kp_create_topics_request_creatable_topic_init(t);
        t->name = sp->name;
        t->num_partitions = sp->nparts;
        t->replication_factor = sp->replication;
        t->assignments_count = 0;
        if (sp->assign) {
            /* As the client sent it: the counts stand for the assignment. */
            t->num_partitions = -1;
            t->replication_factor = -1;
            t->assignments = kp_arena_alloc(&a, sizeof(*t->assignments) * (size_t)(sp->assign_n + 1));
            for (int32_t p = 0; t->assignments && p < sp->assign_n; p++) {
                kp_create_topics_request_creatable_replica_assignment *ra = &t->assignments[p];
                kp_create_topics_request_creatable_replica_assignment_init(ra);
                ra->partition_index = p;
                ra->broker_ids = (int32_t *)&sp->assign[(size_t)p * (size_t)sp->assign_rf];
                ra->broker_ids_count = sp->assign_rf;
                t->assignments_count++;
            }
        }
        t->configs = kp_arena_alloc(&a, sizeof(*t->configs) * (size_t)(sp->ncfg + 1));
        t->configs_count = 0;
        for (int k = 0; t->configs && k < sp->ncfg; k++) {
            kp_create_topics_request_creatable_topic_config_init(&t->configs[k]);
            t->configs[k].name = kp_str_c(sp->cfg[k].key);
            t->configs[k].value = kp_str_c(sp->cfg[k].value);
            t->configs_count++;
        }
    }
    kp_writer w;
    kp_writer_init(&w, 512);
    kp_write_i32(&w, 0);
    kp_request_header h;
    kp_request_header_init(&h);
    h.request_api_key = KP_API_CREATE_TOPICS;
    h.request_api_version = FWD_VERSION;
    h.correlation_id = 0; /* set by the raft thread when sent */
    h.client_id = kp_str_c("kbroker-forward");
    kp_request_header_encode(&w, (int16_t)kp_request_header_version(KP_API_CREATE_TOPICS, FWD_VERSION), &h);
    kp_create_topics_request_encode(&w, FWD_VERSION, &rq);
    int bad = w.err || kp_arena_failed(&a) || !rq.topics;
    kp_arena_reset(&a);
    if (bad) {
        kp_writer_free(&w);
        srv_ctl_forwarded(q->b->ctl, op, NULL, 0, FWD_VERSION);
        return;
    }
    uint32_t n = (uint32_t)(w.len - 4);
    w.buf[0] = (uint8_t)(n >> 24);
    w.buf[1] = (uint8_t)(n >> 16);
    w.buf[2] = (uint8_t)(n >> 8);
    w.buf[3] = (uint8_t)n;
    int16_t key = KP_API_CREATE_TOPICS, ver = FWD_VERSION;
    if (op->as_principal && op->as_principal[0] && op->as_host) {
        /* The caller's creation: the controller authorizes it as the caller. */
        kp_writer ew;
        kp_writer_init(&ew, w.len + 128);
        int rc = srv_envelope_encode(&ew, w.buf + 4, w.len - 4, op->as_principal, op->as_host);
        kp_writer_free(&w);
        if (rc) {
            kp_writer_free(&ew);
            srv_ctl_forwarded(q->b->ctl, op, NULL, 0, FWD_VERSION);
            return;
        }
        w = ew;
        key = KP_API_ENVELOPE;
        ver = 0;
    }
    qmsg *m = qmsg_new(QM_FORWARD);
    m->batch = w.buf; /* the writer's buffer moves on */
    m->len = w.len;
    m->ctx = op;
    m->fwd_key = key;
    m->fwd_ver = ver;
    pthread_mutex_lock(&q->mu);
    push(&q->in_head, &q->in_tail, m);
    pthread_mutex_unlock(&q->mu);
    uv_async_send(&q->wake);
}

int srv_envelope_encode(kp_writer *w, const uint8_t *inner, size_t len, const char *principal,
                        const char *host)
{
    uint8_t addr[16];
    int32_t alen = inet_pton(AF_INET, host, addr) == 1 ? 4 : inet_pton(AF_INET6, host, addr) == 1 ? 16 : 0;
    if (!alen)
        return -1;
    const char *colon = strchr(principal, ':');
    kp_default_principal_data d;
    kp_default_principal_data_init(&d);
    d.type = colon ? (kp_str){principal, (int32_t)(colon - principal)} : kp_str_c("User");
    d.name = colon ? kp_str_c(colon + 1) : kp_str_c("ANONYMOUS");
    d.token_authenticated = 0;
    kp_writer pw;
    kp_writer_init(&pw, 64);
    kp_write_i16(&pw, 0); /* DefaultPrincipalData's version, then the data */
    int bad = kp_default_principal_data_encode(&pw, 0, &d) != 0 || pw.err;
    kp_envelope_request er;
    kp_envelope_request_init(&er);
    er.request_data.p = inner;
    er.request_data.len = (int32_t)len;
    er.request_principal.p = pw.buf;
    er.request_principal.len = (int32_t)pw.len;
    er.client_host_address.p = addr;
    er.client_host_address.len = alen;
    bad = bad || kp_request_encode(w, KP_API_ENVELOPE, 0, 0, kp_str_c("kbroker-forward"), &er) != 0 || w->err;
    kp_writer_free(&pw);
    return bad ? -1 : 0;
}

void srv_quorum_forward(srv_quorum *q, uint8_t *frame, size_t len, int16_t key, int16_t ver,
                        srv_quorum_fwd_cb cb, void *ctx)
{
    SRV_ASSERT(len >= 12 && cb != NULL, "a forwarded request without a header (%zu bytes) or receiver", len);
    qmsg *m = qmsg_new(QM_FORWARD);
    m->batch = frame;
    m->len = len;
    m->ctx = ctx;
    m->fwd_cb = cb;
    m->fwd_key = key;
    m->fwd_ver = ver;
    pthread_mutex_lock(&q->mu);
    push(&q->in_head, &q->in_tail, m);
    pthread_mutex_unlock(&q->mu);
    uv_async_send(&q->wake);
}

/* This node's own registration, made by its own controller when it leads. */
static void register_self(srv_quorum *q)
{
    srv_broker *b = q->b;
    srv_broker_reg r;
    memset(&r, 0, sizeof(r));
    r.id = b->cfg.node_id;
    snprintf(r.host, sizeof(r.host), "%s", b->adv[0].host);
    r.port = (uint16_t)b->adv[0].port;
    snprintf(r.rack, sizeof(r.rack), "%s", b->cfg.broker_rack);
    const srv_broker_reg *cur = srv_meta_broker(srv_ctl_current(b->ctl), r.id);
    if (cur && memcmp(cur, &r, sizeof(r)) == 0)
        return;
    submit_reg(q, &r);
}

/* Shard 0: the Envelope answer to a forwarded creation; the CreateTopics
 * response inside it goes to the controller (NULL: none readable). */
static void forwarded_in_envelope(srv_quorum *q, srv_ctl_op *op, const uint8_t *body, size_t len)
{
    kp_arena a;
    kp_arena_init(&a, 1024);
    kp_reader r;
    kp_reader_init(&r, body, body ? len : 0);
    kp_envelope_response er;
    kp_envelope_response_init(&er);
    kp_response_header h;
    kp_reader ir;
    int ok = body && kp_envelope_response_decode(&r, &a, 0, &er) == 0 && er.error_code == 0 &&
             er.response_data.len >= 0;
    if (body && !ok)
        srv_warn(
            "metadata quorum: the active controller refused a forwarded topic creation's Envelope (error %d)",
            (int)er.error_code);
    if (ok) {
        kp_reader_init(&ir, er.response_data.p, (size_t)er.response_data.len);
        ok = kp_response_header_decode(
                 &ir, &a, (int16_t)kp_response_header_version(KP_API_CREATE_TOPICS, FWD_VERSION), &h) == 0;
    }
    if (ok)
        srv_ctl_forwarded(q->b->ctl, op, er.response_data.p + (er.response_data.len - kp_reader_left(&ir)),
                          kp_reader_left(&ir), FWD_VERSION);
    else
        srv_ctl_forwarded(q->b->ctl, op, NULL, 0, FWD_VERSION);
    kp_arena_reset(&a);
}

static void on_handover(evutil_socket_t fd, short ev, void *arg)
{
    (void)ev;
    srv_quorum *q = arg;
    uint64_t v;
    ssize_t rd = read(fd, &v, sizeof(v));
    (void)rd;
    pthread_mutex_lock(&q->mu);
    qmsg *m = q->out_head;
    q->out_head = q->out_tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while (m) {
        qmsg *next = m->next;
        if (m->kind == QM_PUBLISH) {
            /* Versions only move forward: start-up took the latest one
             * already, and the ones applied before it are still queued
             * here; publishing them would make the shards delete the
             * partitions of every topic created since. */
            if (m->meta->version > srv_ctl_current(q->b->ctl)->version) {
                srv_ctl_adopt(q->b->ctl, srv_meta_ref(m->meta));
                srv_ctl_publish_all(q->b, m->meta); /* the reference moves on */
            } else {
                srv_meta_unref(m->meta);
            }
        } else if (m->kind == QM_DONE) {
            m->done(m->ctx, m->rc, 0);
        } else if (m->kind == QM_FORWARDED && m->fwd_cb) {
            m->fwd_cb(m->ctx, m->batch, m->len); /* the answer's memory moves on */
        } else if (m->kind == QM_FORWARDED && m->fwd_key == KP_API_ENVELOPE) {
            forwarded_in_envelope(q, m->ctx, m->batch, m->len);
            free(m->batch);
        } else if (m->kind == QM_FORWARDED) {
            srv_ctl_forwarded(q->b->ctl, m->ctx, m->batch, m->len, FWD_VERSION);
            free(m->batch);
        } else if (m->kind == QM_LEADER) {
            /* Everyone gets a full session from the new controller. */
            q->nheard = 0;
            q->leader_since = srv_now_ms();
            register_self(q);
        }
        free(m);
        m = next;
    }
}

/* ---- start and stop ------------------------------------------------------------- */

int srv_quorum_start(srv_broker *b, srv_meta **initial)
{
    srv_quorum *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->b = b;
    q->leader = -1;
    q->cl.leader = -1;
    q->cl.fwd_corr = 1 << 30; /* apart from the heartbeats' correlation ids */
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    snprintf(q->dir, sizeof(q->dir), "%s/__raft_metadata", b->cfg.log_dirs[0]);
    if (mkdir(q->dir, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        srv_error("cannot create %s: %s", q->dir, strerror(e));
        free(q);
        return -e;
    }
    q->out_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->out_fd < 0 || uv_loop_init(&q->loop) != 0) {
        free(q);
        return -EIO;
    }
    uv_async_init(&q->loop, &q->wake, on_wake);
    q->wake.data = q;
    uv_timer_init(&q->loop, &q->timer);
    q->timer.data = q;
    srv_shard *s0 = &b->shards[0];
    q->out_ev = event_new(s0->base, q->out_fd, EV_READ | EV_PERSIST, on_handover, q);
    q->fence_ev = event_new(s0->base, -1, EV_PERSIST, on_fence_tick, q);
    struct timeval tick = {0, 250 * 1000};
    if (!q->out_ev || !q->fence_ev || event_add(q->out_ev, NULL) != 0 || event_add(q->fence_ev, &tick) != 0)
        return -ENOMEM;
    b->quorum = q;
    srv_ctl_set_quorum(b->ctl, srv_quorum_is_leader, q);
    srv_ctl_set_replication(b->ctl, b->cfg.default_replication_factor,
                            b->cfg.offsets_topic_replication_factor,
                            b->cfg.transaction_state_log_replication_factor);
    srv_ctl_set_heard(b->ctl, heard_cb);
    srv_ctl_set_forward(b->ctl, forward_op);
    if (pthread_create(&q->thread, NULL, quorum_main, q) != 0)
        return -EAGAIN;
    q->thread_started = 1;
    /* Bounded: a node may start before a majority of its voters does. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&q->mu);
    while (!q->caught_up && pthread_cond_timedwait(&q->cond, &q->mu, &until) == 0)
        ;
    int rc = q->init_rc;
    srv_meta *m = q->latest ? srv_meta_ref(q->latest) : NULL;
    int caught = q->caught_up;
    pthread_mutex_unlock(&q->mu);
    if (rc)
        return -EIO;
    if (!m)
        m = srv_meta_new_empty();
    if (!m)
        return -ENOMEM;
    srv_info("metadata quorum: node %d on %s, %d voters, %s (%d topics, %d brokers)", (int)b->cfg.node_id,
             q->address, b->cfg.nvoters, caught ? "caught up" : "no quorum yet: starting from the local log",
             m->ntopics, m->nbrokers);
    *initial = m;
    return 0;
}

void srv_quorum_stop(srv_broker *b)
{
    srv_quorum *q = b->quorum;
    if (!q)
        return;
    if (q->thread_started) {
        __atomic_store_n(&q->stop, 1, __ATOMIC_RELEASE);
        uv_async_send(&q->wake);
        pthread_join(q->thread, NULL);
    }
    uv_loop_close(&q->loop);
    if (q->out_ev)
        event_free(q->out_ev);
    if (q->fence_ev)
        event_free(q->fence_ev);
    /* What shard 0 never took: completions to nobody (the shards are gone). */
    for (qmsg *m = q->out_head; m;) {
        qmsg *next = m->next;
        if (m->meta)
            srv_meta_unref(m->meta);
        if (m->kind == QM_FORWARDED)
            free(m->batch);
        free(m);
        m = next;
    }
    /* Forwards never answered (the shards are gone): their memory only. */
    for (qfwd *lists[2] = {q->cl.fwd_wait, q->cl.fwd_out}, *f = NULL; lists[0] || lists[1];) {
        qfwd **l = lists[0] ? &lists[0] : &lists[1];
        f = *l;
        *l = f->next;
        free(f->frame);
        free(f);
    }
    if (q->latest)
        srv_meta_unref(q->latest);
    srv_qstore_free(&q->store);
    free(q->cl.rbuf);
    free(q->heard_id);
    free(q->heard_at);
    close(q->out_fd);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond);
    free(q);
    b->quorum = NULL;
}

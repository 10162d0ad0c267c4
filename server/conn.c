/*
 * conn.c — client connections: accept, read frames, queue requests, write
 * responses in request order, backpressure, idle timeouts.
 *
 * Owns the connection and the lifetime of its requests, its transport (a
 * plain socket or TLS through bufferevent_openssl, handshake included) and,
 * on SASL listeners, the gate before authentication: only ApiVersions,
 * SaslHandshake and SaslAuthenticate, frames up to
 * sasl.server.max.receive.size, and the bare tokens of SaslHandshake v0;
 * KIP-368 sessions: a SaslHandshake on an authenticated connection whose
 * session expires starts a re-authentication, and any other request after
 * the expiry closes the connection, as Kafka's SocketServer does; and the
 * failed-login answers held for the delay auth_limit.c gives (listed per
 * shard, freed at shutdown). It keeps one opaque slot for the handler layer
 * (srv_req_conn_ext) and hands it to srv_broker.conn_closed on close.
 *
 * Must not: interpret request bodies (dispatch.c does), or trust a frame
 * length: a frame above socket.request.max.bytes closes the connection
 * before any allocation.
 *
 * Large frames (produce batches) are read from the socket straight into
 * their final buffer once the bufferevent has seen their header: copying
 * them out of the evbuffer was one full extra pass over every produced byte.
 * Small frames still arrive through the evbuffer, where many pipelined
 * requests share one read. Such a buffer is allocated when the header
 * arrives (bounded by socket.request.max.bytes, as in Kafka); its pages
 * stay untouched until the bytes come.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "logging.h"
#include "auth_limit.h"
#include "meta.h"
#include "oauth.h"
#include "sasl.h"
#include "scram.h"
#include "scram_store.h"
#include "srv_assert.h"
#include "meta.h"
#include "quota.h"
#include "throttle_conn.h"
#include "throttle_req.h"
#include "tls.h"

/* A slow reader stops being served once this much output is waiting. */
#define OUTPUT_HIGH_WATER (32u << 20)
#define MAX_SINGLE_WRITE  (1u << 20)

/* Frames at least this large that are not yet fully buffered are read
 * directly into their own allocation. */
#define DIRECT_READ_MIN (32u << 10)

struct srv_conn {
    srv_conn *next, *prev;
    srv_shard *s;
    struct bufferevent *bev;
    char peer[64];
    char client_host[64]; /* "/ip" as Kafka's DescribeGroups shows it */
    srv_req *head, *tail;
    size_t queued_bytes; /* request bytes not yet answered */
    int nreqs;
    int read_paused;
    int listener; /* index in the broker's listener list */
    int in_read;  /* inside on_read: closing is deferred to its end */
    int dead;
    int tls;    /* SSL or SASL_SSL listener: bev is a bufferevent_openssl */
    int tls_up; /* the TLS handshake completed */
    int auth;   /* enum srv_auth_state */
    int close_after_flush;
    char principal[320]; /* "User:ANONYMOUS", "User:<DN>" (mTLS) or "User:<sasl user>" */
    srv_sasl_session sasl;
    struct event *mute_ev; /* KIP-219: reading resumes when it fires */
    int muted;
    srv_req *serial;   /* read nothing more until this request is answered */
    uint8_t *rx_frame; /* a large frame being read directly, or NULL */
    size_t rx_size, rx_got;
    int64_t last_active_ms;
    void *ext; /* what handlers keep about the connection (srv_req_conn_ext) */
};

static size_t max_queued(const srv_conn *c)
{
    size_t q = (size_t)c->s->b->cfg.queued_max_request_bytes;
    return q > 0 ? q : (size_t)c->s->b->cfg.socket_request_max_bytes;
}

static void conn_update_reading(srv_conn *c)
{
    size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
    /* A connection that closes once its answers are out reads nothing more. */
    int pause = c->queued_bytes > max_queued(c) || out > OUTPUT_HIGH_WATER || c->muted || c->serial ||
                c->close_after_flush;
    if (pause && !c->read_paused) {
        bufferevent_disable(c->bev, EV_READ);
        c->read_paused = 1;
    } else if (!pause && c->read_paused) {
        bufferevent_enable(c->bev, EV_READ);
        c->read_paused = 0;
        /* Frames already buffered would otherwise wait for the client's
         * next bytes, which may never come (it waits for our answers). */
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) && !c->in_read)
            bufferevent_trigger(c->bev, EV_READ, BEV_OPT_DEFER_CALLBACKS);
    }
}

static void free_ref(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

void srv_req_free(srv_req *r)
{
    if (r->shard && r->shard->timed == r)
        r->shard->timed = NULL; /* its stretch ends with it: nothing left to charge */
    if (r->pending > 0) {
        r->released = 1;
        r->conn = NULL;
        return;
    }
    SRV_ASSERT(r->pending == 0, "request freed with pending count %d", r->pending);
    if (r->cleanup)
        r->cleanup(r);
    kp_arena_reset(&r->arena);
    kp_writer_free(&r->out);
    for (size_t i = 0; i < r->n_out_mem; i++)
        free(r->out_mem[i]);
    free(r->out_mem);
    free(r->frame);
    free(r);
}

int srv_req_give_mem(srv_req *r, void *mem)
{
    if (r->n_out_mem == r->out_mem_cap) {
        size_t cap = r->out_mem_cap ? r->out_mem_cap * 2 : 16;
        void **n = realloc(r->out_mem, cap * sizeof(*n));
        if (!n)
            return -1;
        r->out_mem = n;
        r->out_mem_cap = cap;
    }
    r->out_mem[r->n_out_mem++] = mem;
    return 0;
}

/* A response sent in pieces by reference: its frame buffer and the given
 * blocks, freed when libevent has released the last piece. */
typedef struct out_hold {
    size_t pieces;
    uint8_t *buf;
    void **mem;
    size_t nmem;
} out_hold;

static void hold_release(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    out_hold *h = arg;
    if (--h->pieces > 0)
        return;
    free(h->buf);
    for (size_t i = 0; i < h->nmem; i++)
        free(h->mem[i]);
    free(h->mem);
    free(h);
}

static int add_piece(struct evbuffer *b, out_hold *h, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    h->pieces++;
    if (evbuffer_add_reference(b, p, n, hold_release, h) == 0)
        return 0;
    h->pieces--;
    return -1;
}

/* Queues r's frame: the encoded buffer interleaved with the referenced
 * fields, no byte copied. All or nothing: the pieces gather in a buffer of
 * their own first. */
static int flush_by_reference(struct evbuffer *out, srv_req *r)
{
    out_hold *h = calloc(1, sizeof(*h));
    struct evbuffer *tmp = evbuffer_new();
    if (!h || !tmp) {
        free(h);
        if (tmp)
            evbuffer_free(tmp);
        return -1;
    }
    h->pieces = 1; /* ours, until the pieces are queued */
    h->buf = r->out.buf;
    h->mem = r->out_mem;
    h->nmem = r->n_out_mem;
    size_t len = r->out.len;
    r->out.buf = NULL;
    r->out.len = r->out.cap = 0;
    r->out_mem = NULL;
    r->n_out_mem = r->out_mem_cap = 0;
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i < r->out.nrefs && rc == 0; i++) {
        const kp_wref *ref = &r->out.refs[i];
        rc = add_piece(tmp, h, h->buf + at, ref->at - at);
        if (rc == 0)
            rc = add_piece(tmp, h, ref->p, ref->len);
        at = ref->at;
    }
    if (rc == 0)
        rc = add_piece(tmp, h, h->buf + at, len - at);
    if (rc == 0)
        rc = evbuffer_add_buffer(out, tmp);
    evbuffer_free(tmp); /* releases the pieces when they could not move */
    hold_release(NULL, 0, h);
    return rc;
}

/* Detaches every request; unfinished ones finish later as orphans. */
static void conn_count_release(srv_shard *s, int listener, const char *ip);

static void conn_free(srv_conn *c)
{
    srv_shard *s = c->s;
    conn_count_release(s, c->listener, c->client_host + 1);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->mute_ev)
        event_free(c->mute_ev);
    bufferevent_free(c->bev);
    srv_m_add(&s->metrics.connections_closed, 1);
    free(c->rx_frame);
    srv_scram_server_free(c->sasl.scram);
    free(c);
}

static void conn_close(srv_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    if (c->ext && c->s->b->conn_closed) {
        c->s->b->conn_closed(c->s, c->ext);
        c->ext = NULL;
    }
    srv_req *r = c->head;
    while (r) {
        srv_req *next = r->next;
        r->conn = NULL;
        r->next = NULL;
        if (r->done)
            srv_req_free(r);
        r = next;
    }
    c->head = c->tail = NULL;
    if (c->in_read)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    else
        conn_free(c);
}

static void conn_flush(srv_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (c->head && c->head->done) {
        srv_req *r = c->head;
        if (!r->no_response && r->out.nrefs) {
            if (flush_by_reference(out, r) != 0) {
                srv_error("connection from %s: out of memory queueing a response; closing", c->peer);
                c->close_after_flush = 1;
            }
        } else if (!r->no_response && r->out.len) {
            /* The encoded response goes to the socket buffer by reference: no
             * copy of what may be megabytes of fetched records. */
            uint8_t *buf = r->out.buf;
            size_t len = r->out.len;
            r->out.buf = NULL;
            r->out.len = r->out.cap = 0;
            if (evbuffer_add_reference(out, buf, len, free_ref, NULL) != 0)
                free(buf);
        }
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->queued_bytes -= r->frame_len;
        c->nreqs--;
        srv_req_free(r);
    }
    if (c->close_after_flush && !c->head) {
        /* Nothing more is read; on_write closes once the answer is out. */
        bufferevent_disable(c->bev, EV_READ);
        c->read_paused = 1;
        if (evbuffer_get_length(out) == 0 && !c->in_read)
            conn_close(c);
        return;
    }
    conn_update_reading(c);
}

static void finish(srv_req *r)
{
    r->done = 1;
    if (!r->conn) {
        srv_req_free(r);
        return;
    }
    srv_conn *c = r->conn;
    if (c->serial == r) {
        c->serial = NULL;
        if (c->head != r)
            conn_update_reading(c);
    }
    c->last_active_ms = r->shard->now_ms;
    srv_shard_metrics *m = &r->shard->metrics;
    if (r->kr.api && r->start_ns)
        srv_hist_record(&m->api[r->kr.hdr.request_api_key], (srv_now_ns() - r->start_ns) / 1000);
    srv_m_add(&m->bytes_out, kp_writer_total(&r->out));
    if (c->head == r)
        conn_flush(c);
}

kp_str srv_req_client_host(srv_req *r)
{
    if (r->as_host)
        return kp_str_c(r->as_host);
    return r->conn ? kp_arena_strz(&r->arena, r->conn->client_host) : kp_str_c("");
}

void **srv_req_conn_ext(srv_req *r)
{
    return r->conn && !r->conn->dead ? &r->conn->ext : NULL;
}

int srv_req_auth_state(const srv_req *r)
{
    return r->conn ? r->conn->auth : SRV_AUTH_GONE;
}

void srv_req_set_auth(srv_req *r, int state, const char *principal)
{
    if (!r->conn)
        return;
    r->conn->auth = state;
    if (principal) {
        snprintf(r->conn->principal, sizeof(r->conn->principal), "%s", principal);
        srv_debug("connection from %s authenticated as %s", r->conn->peer, r->conn->principal);
    }
}

srv_sasl_session *srv_req_sasl(srv_req *r)
{
    return r->conn ? &r->conn->sasl : NULL;
}

/* Kafka: a re-authentication may start at most once a second. */
#define REAUTH_MIN_INTERVAL_MS 1000

static int64_t sasl_complete(srv_conn *c, const char *principal, int64_t cred_exp_ms, char *msg, size_t cap)
{
    srv_sasl_session *ss = &c->sasl;
    if (ss->reauth && strcmp(principal, c->principal) != 0) {
        /* Kafka prints KafkaPrincipal as type.name here. */
        const char *was = strchr(c->principal, ':'), *now = strchr(principal, ':');
        snprintf(msg, cap, "Cannot change principals during re-authentication from User.%s: User.%s",
                 was ? was + 1 : c->principal, now ? now + 1 : principal);
        return -1;
    }
    int64_t max = c->s->b->reauth_ms[c->listener][ss->mech], life = 0, now = srv_now_ms();
    if (cred_exp_ms || max > 0) {
        if (!cred_exp_ms)
            life = max;
        else
            life = max > 0 && max < cred_exp_ms - now ? max : cred_exp_ms - now;
        life = life < 0 ? 0 : life;
        ss->expires_mono = srv_mono_ms() + life;
    } else {
        ss->expires_mono = 0;
    }
    if (ss->reauth)
        srv_info("connection from %s re-authenticated as %s (session lifetime %lld ms)", c->peer, principal,
                 (long long)life);
    ss->reauth = 0;
    c->auth = SRV_AUTH_DONE;
    snprintf(c->principal, sizeof(c->principal), "%s", principal);
    srv_debug("connection from %s authenticated as %s", c->peer, c->principal);
    return life;
}

int64_t srv_req_sasl_complete(srv_req *r, const char *principal, int64_t cred_exp_ms, char *msg, size_t cap)
{
    if (!r->conn) {
        snprintf(msg, cap, "connection closed");
        return -1;
    }
    return sasl_complete(r->conn, principal, cred_exp_ms, msg, cap);
}

struct srv_scram_server *srv_req_scram(const srv_req *r)
{
    return r->conn ? r->conn->sasl.scram : NULL;
}

void srv_req_set_scram(srv_req *r, struct srv_scram_server *x)
{
    if (!r->conn) {
        srv_scram_server_free(x);
        return;
    }
    srv_scram_server_free(r->conn->sasl.scram);
    r->conn->sasl.scram = x;
}

kp_str srv_req_user(srv_req *r)
{
    const char *p = r->as_principal ? r->as_principal : r->conn ? r->conn->principal : "User:ANONYMOUS";
    const char *colon = strchr(p, ':');
    return kp_arena_strz(&r->arena, colon ? colon + 1 : p);
}

void srv_req_serialize(srv_req *r)
{
    srv_conn *c = r->conn;
    if (!c || c->dead || r->done)
        return;
    c->serial = r;
    conn_update_reading(c);
}

static void on_unmute(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_conn *c = arg;
    c->muted = 0;
    if (!c->dead)
        conn_update_reading(c);
}

void srv_req_mute(srv_req *r, int64_t ms)
{
    srv_conn *c = r->conn;
    /* An Envelope's connection is a follower's link to this controller,
     * shared by all its forwards: the throttle travels back in the inner
     * answer and the follower mutes its own client, as Kafka's forwarding
     * broker does. */
    if (!c || c->dead || ms <= 0 || r->enveloped)
        return;
    if (ms > r->mute_ms)
        r->mute_ms = ms;
    if (!c->mute_ev)
        c->mute_ev = evtimer_new(c->s->base, on_unmute, c);
    if (!c->mute_ev)
        return; /* out of memory: served unthrottled rather than muted for ever */
    /* A later throttle replaces an earlier one, as Kafka's channel keeps
     * only the last throttle end. */
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->mute_ev, &tv);
    c->muted = 1;
    conn_update_reading(c);
}

kp_str srv_req_principal(const srv_req *r)
{
    if (r->as_principal && r->conn)
        return kp_str_c(r->as_principal);
    return r->conn ? kp_str_c(r->conn->principal) : kp_str_c("");
}

kp_str srv_req_host(const srv_req *r)
{
    if (r->as_host && r->conn)
        return kp_str_c(r->as_host + 1);
    return r->conn ? kp_str_c(r->conn->client_host + 1) : kp_str_c(""); /* client_host is "/ip" */
}

const char *srv_req_peer(const srv_req *r)
{
    return r->conn ? r->conn->peer : "?";
}

/* A failed-login answer waiting out its delay. Listed per shard so that a
 * shutdown during the wait frees it (the timer never fires then). */
typedef struct delayed_answer {
    struct event *ev;
    srv_req *r;
    struct delayed_answer *prev, *next;
} delayed_answer;

static void delayed_unlink(srv_shard *s, delayed_answer *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        s->delayed_answers = d->next;
    if (d->next)
        d->next->prev = d->prev;
}

static void on_delayed_answer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    delayed_answer *d = arg;
    srv_req *r = d->r;
    delayed_unlink(r->shard, d);
    event_free(d->ev);
    free(d);
    if (r->conn)
        r->conn->close_after_flush = 1;
    finish(r);
}

static void answer_after(srv_req *r, int64_t wait_ms)
{
    /* The request stays not done meanwhile: if the client leaves, the
     * connection closes and the timer frees the orphan through finish(). */
    delayed_answer *d = calloc(1, sizeof(*d));
    if (d) {
        d->r = r;
        d->ev = evtimer_new(r->shard->base, on_delayed_answer, d);
    }
    struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)((wait_ms % 1000) * 1000)};
    if (!d || !d->ev || evtimer_add(d->ev, &tv) != 0) {
        if (d && d->ev)
            event_free(d->ev);
        free(d);
        if (r->conn)
            r->conn->close_after_flush = 1;
        finish(r);
        return;
    }
    d->next = r->shard->delayed_answers;
    if (d->next)
        d->next->prev = d;
    r->shard->delayed_answers = d;
}

void srv_req_respond_then_close(srv_req *r, const void *body, int delay_ms)
{
    if (r->conn && body) {
        if (kp_response_encode(&r->out, r->kr.hdr.request_api_key, r->kr.hdr.request_api_version,
                               r->kr.hdr.correlation_id, body) != 0 ||
            kp_arena_failed(&r->arena)) {
            srv_req_fail_close(r, "cannot encode the authentication failure");
            return;
        }
    }
    /* The delay is a budget of the client's address, kept on the shard
     * that owns the address (auth_limit.h), not of this connection. */
    if (delay_ms > 0 && r->conn)
        srv_authlim_failure(r, r->conn->client_host + 1, delay_ms, answer_after);
    else
        answer_after(r, delay_ms);
}

/* The inner answer of an Envelope (handlers/envelope.c): its header and
 * body at the inner request's version become the Envelope response's data.
 * Client quotas are the forwarding broker's to apply, on the client's own
 * connection, so none is applied here. */
static int encode_enveloped(srv_req *r, const void *body)
{
    kp_writer inner;
    kp_writer_init(&inner, 256);
    int rc = kp_response_encode(&inner, r->kr.hdr.request_api_key, r->kr.hdr.request_api_version,
                                r->kr.hdr.correlation_id, body);
    if (rc == 0 && (inner.err || inner.len < 4))
        rc = KP_E_NOMEM;
    if (rc == 0) {
        kp_envelope_response er;
        kp_envelope_response_init(&er);
        er.response_data.p = inner.buf + 4; /* past the size: the data is header and body */
        er.response_data.len = (int32_t)(inner.len - 4);
        er.error_code = 0;
        rc = kp_response_encode(&r->out, KP_API_ENVELOPE, 0, r->env_corr, &er);
    }
    kp_writer_free(&inner);
    return rc;
}

void srv_req_respond(srv_req *r, const void *body)
{
    /* The one check of the request arena's sticky flag: a body built after
     * a refused allocation may lack pieces (an empty list, a "" string), so
     * it is never sent; the connection closes with a log line, as handlers
     * did on each NULL before. */
    if (kp_arena_failed(&r->arena)) {
        srv_req_fail_close(r, "out of memory building the response");
        return;
    }
    if (r->conn && r->enveloped) {
        int rc = encode_enveloped(r, body);
        if (rc) {
            srv_error("cannot encode the Envelope of a %s v%d response: %s",
                      r->kr.api ? r->kr.api->name : "?", r->kr.hdr.request_api_version, kp_strerror(rc));
            srv_req_fail_close(r, "response encoding failed");
            return;
        }
        finish(r);
        return;
    }
    if (r->conn)
        body = srv_quota_respond(r, body);
    if (r->conn) {
        /* Size first (the encoder in counting mode), so the buffer is
         * allocated once instead of doubling its way up. */
        kp_writer cw;
        kp_writer_init_counting(&cw);
        if (r->n_out_mem) {
            /* The large fields stay where they are: only the rest is
             * encoded, so the counted size would overshoot. */
            kp_writer_refs_enable(&r->out, SRV_REF_MIN);
        } else if (kp_response_encode(&cw, r->kr.hdr.request_api_key, r->kr.hdr.request_api_version,
                                      r->kr.hdr.correlation_id, body) == 0) {
            kp_writer_reserve(&r->out, cw.len);
        }
        int rc = kp_response_encode(&r->out, r->kr.hdr.request_api_key, r->kr.hdr.request_api_version,
                                    r->kr.hdr.correlation_id, body);
        if (rc) {
            /* Our own response could not be encoded: a bug, not client input. */
            srv_error("cannot encode %s v%d response: %s", r->kr.api ? r->kr.api->name : "?",
                      r->kr.hdr.request_api_version, kp_strerror(rc));
            srv_req_fail_close(r, "response encoding failed");
            return;
        }
    }
    finish(r);
}

void srv_req_respond_none(srv_req *r)
{
    r->no_response = 1;
    finish(r);
}

/* A request that came in an Envelope and would close its connection
 * answers the Envelope with an error instead: the connection is the
 * follower's link to this controller, carrying other clients' forwards.
 * A malformed inner request is UNSUPPORTED_VERSION, as Kafka 4.4's
 * controller answers an inner request it cannot parse (EnvelopeUtils turns
 * the parse failure into UnsupportedVersionException); our own failure
 * (the arena out of memory) UNKNOWN_SERVER_ERROR. 0 when answered. */
static int envelope_instead_of_close(srv_req *r, const char *why)
{
    if (!r->conn || !r->enveloped || r->conn->dead)
        return -1;
    int16_t err = kp_arena_failed(&r->arena) ? KP_ERR_UNKNOWN_SERVER_ERROR : KP_ERR_UNSUPPORTED_VERSION;
    kp_envelope_response er;
    kp_envelope_response_init(&er);
    er.response_data.p = NULL;
    er.response_data.len = -1;
    er.error_code = err;
    if (r->out.len != 0) /* a half-written answer: only closing can end it */
        return -1;
    if (kp_response_encode(&r->out, KP_API_ENVELOPE, 0, r->env_corr, &er) != 0 || r->out.err)
        return -1;
    srv_warn("Envelope from %s answered %d instead of closing the link: %s (inner api %d v%d, correlation id "
             "%d)",
             r->conn->peer, (int)err, why, r->kr.hdr.request_api_key, r->kr.hdr.request_api_version,
             r->kr.hdr.correlation_id);
    r->no_response = 0;
    finish(r);
    return 0;
}

void srv_req_respond_none_then_close(srv_req *r, const char *why)
{
    srv_conn *c = r->conn;
    if (envelope_instead_of_close(r, why) == 0)
        return;
    if (c) {
        srv_info(
            "closing connection from %s once earlier answers are out: %s (api %d v%d, correlation id %d)",
            c->peer, why, r->kr.hdr.request_api_key, r->kr.hdr.request_api_version, r->kr.hdr.correlation_id);
        c->close_after_flush = 1;
        conn_update_reading(c);
    }
    srv_req_respond_none(r);
}

void srv_req_fail_close(srv_req *r, const char *why)
{
    srv_conn *c = r->conn;
    int16_t key = r->kr.hdr.request_api_key;
    srv_m_add(&r->shard->metrics.api_errors[key >= 0 && key <= KP_API_KEY_MAX ? key : KP_API_KEY_MAX + 1], 1);
    if (envelope_instead_of_close(r, why) == 0)
        return;
    if (c) {
        srv_warn("closing connection from %s: %s (api %d v%d, correlation id %d)", c->peer, why,
                 r->kr.hdr.request_api_key, r->kr.hdr.request_api_version, r->kr.hdr.correlation_id);
        conn_close(c); /* detaches r: it is freed as an orphan below */
    }
    finish(r);
}

/* A bare SCRAM message after SaslHandshake v0: the server's message goes
 * back bare too; the exchange ends authenticated or closed unanswered. */
static void raw_scram_token(srv_conn *c, srv_req *r)
{
    const uint8_t *out;
    size_t out_len;
    const char *msg, *why;
    char cmsg[300];
    int rc = srv_scram_server_step(c->sasl.scram, r->frame, r->frame_len, srv_scram_set_lookup,
                                   c->s->meta->scram, &out, &out_len, &msg, &why);
    if (rc == SRV_SCRAM_DONE) {
        size_t ul;
        const char *user = srv_scram_server_user(c->sasl.scram, &ul);
        char principal[300];
        snprintf(principal, sizeof(principal), "User:%.*s", (int)ul, user);
        if (sasl_complete(c, principal, 0, cmsg, sizeof(cmsg)) < 0) {
            rc = SRV_SCRAM_FAILED;
            msg = why = cmsg;
        }
    }
    if (rc == SRV_SCRAM_FAILED) {
        srv_info("failed authentication with %s on listener %s (%s: %s)", c->peer,
                 c->s->b->cfg.listeners[c->listener].name, msg, why);
        r->no_response = 1;
        c->close_after_flush = 1;
        srv_req_respond_then_close(r, NULL, c->s->b->cfg.connection_failed_authentication_delay_ms);
        return;
    }
    /* out lives in the exchange's state: written before it is freed. */
    uint8_t len[4] = {(uint8_t)(out_len >> 24), (uint8_t)(out_len >> 16), (uint8_t)(out_len >> 8),
                      (uint8_t)out_len};
    kp_writer_reserve(&r->out, sizeof(len) + out_len);
    kp_write_raw(&r->out, len, sizeof(len));
    kp_write_raw(&r->out, out, out_len);
    if (rc == SRV_SCRAM_DONE) {
        srv_scram_server_free(c->sasl.scram);
        c->sasl.scram = NULL;
    }
    finish(r);
}

/* SaslHandshake v0 was answered: this frame is the client's bare SASL
 * token (no request header), answered by a bare token. Kafka closes the
 * connection on failure without an answer. */
static void raw_sasl_token(srv_conn *c, srv_req *r)
{
    if (c->sasl.scram) {
        raw_scram_token(c, r);
        return;
    }
    char user[256] = "", principal[300], cmsg[300];
    const char *msg = NULL;
    int64_t exp = 0;
    const srv_broker *b = c->s->b;
    srv_oauth_result ores;
    if (c->sasl.bad_mech) {
        msg = "re-authentication with another SASL mechanism than the session's";
    } else if (c->sasl.mech == SRV_MECH_OAUTHBEARER) {
        SRV_ASSERT(b->oauth[c->listener], "OAUTHBEARER negotiated on listener %d without a validator",
                   c->listener);
        int rc = srv_oauth_step(b->oauth[c->listener], &c->sasl.oauth_error_sent, r->frame, r->frame_len,
                                srv_now_ms(), &ores);
        if (rc == SRV_OAUTH_CHALLENGE) {
            uint32_t n = (uint32_t)ores.challenge_len;
            uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
            kp_writer_reserve(&r->out, sizeof(len) + ores.challenge_len);
            kp_write_raw(&r->out, len, sizeof(len));
            kp_write_raw(&r->out, ores.challenge, ores.challenge_len);
            finish(r);
            return;
        }
        msg = rc == SRV_OAUTH_OK ? NULL : ores.why;
        snprintf(user, sizeof(user), "%s", ores.name);
        exp = ores.exp_ms;
    } else if (srv_sasl_plain_check(b->plain_users[c->listener], r->frame, r->frame_len, user, sizeof(user),
                                    &msg) == 0) {
        msg = NULL;
    }
    snprintf(principal, sizeof(principal), "User:%s", user);
    if (!msg && sasl_complete(c, principal, exp, cmsg, sizeof(cmsg)) < 0)
        msg = cmsg;
    if (msg) {
        srv_info("failed authentication with %s on listener %s (%s)", c->peer,
                 b->cfg.listeners[c->listener].name, msg);
        r->no_response = 1;
        c->close_after_flush = 1;
        srv_req_respond_then_close(r, NULL, b->cfg.connection_failed_authentication_delay_ms);
        return;
    }
    static const uint8_t empty_token[4];
    kp_writer_reserve(&r->out, sizeof(empty_token));
    kp_write_raw(&r->out, empty_token, sizeof(empty_token));
    finish(r);
}

/* Before authentication a SASL listener serves only ApiVersions,
 * SaslHandshake and SaslAuthenticate (Kafka's SaslServerAuthenticator);
 * anything else closes the connection. Returns 1 when r may be dispatched. */
static int sasl_gate(srv_conn *c, srv_req *r)
{
    if (c->auth == SRV_AUTH_WAIT_RAW_TOKEN) {
        raw_sasl_token(c, r);
        return 0;
    }
    int16_t key = r->frame_len >= 2 ? (int16_t)kp_be16(r->frame) : -1;
    /* After SaslHandshake v1 only the token may come (Kafka's AUTHENTICATE state). */
    if (key == KP_API_SASL_AUTHENTICATE ||
        (c->auth == SRV_AUTH_WAIT_HANDSHAKE && (key == KP_API_API_VERSIONS || key == KP_API_SASL_HANDSHAKE)))
        return 1;
    if (r->frame_len >= 8) {
        r->kr.hdr.request_api_key = key;
        r->kr.hdr.request_api_version = (int16_t)kp_be16(r->frame + 2);
        r->kr.hdr.correlation_id = (int32_t)kp_be32(r->frame + 4);
    }
    srv_req_fail_close(r, "request before SASL authentication (only ApiVersions, SaslHandshake and "
                          "SaslAuthenticate are allowed)");
    return 0;
}

/* KIP-368 on an authenticated connection whose session expires: a
 * SaslHandshake starts a re-authentication (at most once a second, as in
 * Kafka; otherwise it is served as usual and refused), and any request
 * past the expiry closes the connection. Returns 0 when r was consumed. */
static int session_alive(srv_conn *c, srv_req *r)
{
    int64_t now = srv_mono_ms();
    int16_t key = r->frame_len >= 2 ? (int16_t)kp_be16(r->frame) : -1;
    if (key == KP_API_SASL_HANDSHAKE &&
        (!c->sasl.reauth_begin || now - c->sasl.reauth_begin >= REAUTH_MIN_INTERVAL_MS)) {
        c->sasl.reauth_begin = now;
        c->sasl.reauth = 1;
        c->auth = SRV_AUTH_WAIT_HANDSHAKE;
        srv_debug("connection from %s (%s) begins re-authentication", c->peer, c->principal);
        return 1;
    }
    if (now <= c->sasl.expires_mono)
        return 1;
    srv_info("closing connection from %s (%s): its SASL session expired %lld ms ago and it did not "
             "re-authenticate (connections.max.reauth.ms / credential lifetime)",
             c->peer, c->principal, (long long)(now - c->sasl.expires_mono));
    conn_close(c); /* r is detached and freed below */
    finish(r);
    return 0;
}

/* Queues a complete frame (ownership passes to the request) and dispatches it. */
static void deliver(srv_conn *c, uint8_t *frame, size_t size)
{
    srv_shard *s = c->s;
    srv_req *r = calloc(1, sizeof(*r));
    if (!r) {
        free(frame);
        srv_error("out of memory reading from %s", c->peer);
        conn_close(c);
        return;
    }
    r->frame = frame;
    r->frame_len = size;
    r->start_ns = srv_now_ns();
    srv_m_add(&s->metrics.bytes_in, 4 + size);
    r->conn = c;
    r->shard = s;
    r->listener = c->listener;
    kp_arena_init(&r->arena, 0);
    kp_writer_init(&r->out, 0);
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->queued_bytes += r->frame_len;
    c->nreqs++;
    if (c->auth == SRV_AUTH_DONE && c->sasl.expires_mono && !session_alive(c, r))
        return;
    if (c->auth != SRV_AUTH_NOT_SASL && c->auth != SRV_AUTH_DONE && !sasl_gate(c, r)) {
        if (!c->dead)
            conn_update_reading(c);
        return;
    }
    /* The handler may answer inline, close the connection, or park. */
    int timed = srv_req_timed_begin(r);
    s->b->dispatch(r);
    srv_req_timed_end(s, timed);
    if (!c->dead)
        conn_update_reading(c);
}

static void peer_closed(srv_conn *c, size_t partial)
{
    /* A client leaving mid-frame or with requests unanswered is worth a
     * line: that is how truncated or abandoned traffic shows up. */
    if (partial)
        srv_warn("connection from %s closed by the peer with %zu bytes of an incomplete frame", c->peer,
                 partial);
    else if (c->nreqs)
        srv_info("connection from %s closed by the peer with %d requests unanswered", c->peer, c->nreqs);
    conn_close(c);
}

/* Continues a direct read: first what the bufferevent already holds, then
 * the socket itself until it would block. Returns 1 when the frame is
 * complete, 0 when more bytes are needed or the connection ended. */
static int direct_read(srv_conn *c, struct evbuffer *in)
{
    size_t want = c->rx_size - c->rx_got;
    size_t avail = evbuffer_get_length(in);
    if (avail) {
        size_t n = avail < want ? avail : want;
        evbuffer_remove(in, c->rx_frame + c->rx_got, n);
        c->rx_got += n;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    while (c->rx_got < c->rx_size) {
        ssize_t n = recv(fd, c->rx_frame + c->rx_got, c->rx_size - c->rx_got, 0);
        if (n > 0) {
            c->rx_got += (size_t)n;
        } else if (n == 0) {
            peer_closed(c, 4 + c->rx_got);
            return 0;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else {
            if (errno != ECONNRESET && errno != EPIPE)
                srv_debug("connection from %s: %s", c->peer, strerror(errno));
            peer_closed(c, 4 + c->rx_got);
            return 0;
        }
    }
    return 1;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    srv_conn *c = arg;
    srv_shard *s = c->s;
    struct evbuffer *in = bufferevent_get_input(bev);
    SRV_BUSY_BEGIN();
    s->now_ms = srv_now_ms();
    c->last_active_ms = s->now_ms;
    c->in_read = 1;
    while (!c->read_paused && !c->dead) {
        if (c->rx_frame) {
            if (!direct_read(c, in))
                break;
            uint8_t *frame = c->rx_frame;
            c->rx_frame = NULL;
            deliver(c, frame, c->rx_size);
            continue;
        }
        uint8_t hdr[4];
        if (evbuffer_copyout(in, hdr, 4) < 4)
            break;
        int32_t size = (int32_t)kp_be32(hdr);
        if (c->auth != SRV_AUTH_NOT_SASL && c->auth != SRV_AUTH_DONE &&
            (size < 0 || size > s->b->cfg.sasl_server_max_receive_size)) {
            srv_warn("closing connection from %s: frame of %d bytes before SASL authentication exceeds "
                     "sasl.server.max.receive.size (%d)",
                     c->peer, size, (int)s->b->cfg.sasl_server_max_receive_size);
            conn_close(c);
            break;
        }
        if (size < 0 || (int64_t)size > s->b->cfg.socket_request_max_bytes) {
            srv_warn("closing connection from %s: frame of %d bytes exceeds socket.request.max.bytes (%lld)",
                     c->peer, size, (long long)s->b->cfg.socket_request_max_bytes);
            conn_close(c);
            break;
        }
        int whole = evbuffer_get_length(in) >= 4 + (size_t)size;
        /* Direct reads bypass the bufferevent, hence TLS: such frames wait
         * whole in the evbuffer. */
        if (!whole && (c->tls || (size_t)size < DIRECT_READ_MIN))
            break;
        uint8_t *frame = malloc(size ? (size_t)size : 1);
        if (!frame) {
            srv_error("out of memory reading from %s", c->peer);
            conn_close(c);
            break;
        }
        evbuffer_drain(in, 4);
        if (!whole) {
            c->rx_frame = frame;
            c->rx_size = (size_t)size;
            c->rx_got = 0;
            continue;
        }
        evbuffer_remove(in, frame, (size_t)size);
        deliver(c, frame, (size_t)size);
    }
    /* A close after answers that ended with an answer-less request (a failed
     * acks=0 produce) has nothing left to write: no on_write will come. */
    if (!c->dead && c->close_after_flush && !c->head && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_close(c);
    c->in_read = 0;
    if (c->dead)
        conn_free(c);
    SRV_BUSY_END(s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    srv_conn *c = arg;
    if (c->dead)
        return;
    if (c->close_after_flush && !c->head) {
        conn_close(c);
        return;
    }
    conn_update_reading(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    srv_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* With TLS, "connected" means the handshake is done. */
        c->tls_up = 1;
        if (srv_tls_principal(bufferevent_openssl_get_ssl(c->bev), c->principal, sizeof(c->principal)) != 0 &&
            c->s->b->cfg.listeners[c->listener].proto == SRV_PROTO_SSL) {
            /* As Kafka: no mapping rule for the certificate, no principal. */
            srv_info("failed authentication with %s on listener %s (no ssl.principal.mapping.rules rule "
                     "applies to %s)",
                     c->peer, c->s->b->cfg.listeners[c->listener].name, c->principal);
            conn_close(c);
            return;
        }
        srv_debug("TLS connection from %s: principal %s", c->peer, c->principal);
        return;
    }
    if (c->tls && !c->tls_up && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
        /* Kafka logs these at INFO as failed authentications: scanners,
         * plaintext clients on a TLS port, clients without a certificate. */
        unsigned long e = bufferevent_get_openssl_error(c->bev);
        char why[200] = "connection closed by the peer";
        if (e)
            ERR_error_string_n(e, why, sizeof(why));
        srv_info("failed authentication with %s on listener %s (SSL handshake failed: %s)", c->peer,
                 c->s->b->cfg.listeners[c->listener].name, why);
        conn_close(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        size_t partial = evbuffer_get_length(bufferevent_get_input(c->bev));
        if (c->rx_frame)
            partial += 4 + c->rx_got;
        if (!partial && !c->nreqs && (what & BEV_EVENT_ERROR) && errno != ECONNRESET && errno != EPIPE)
            srv_debug("connection from %s: %s", c->peer, strerror(errno));
        peer_closed(c, partial);
    }
}

/* The listener callbacks' argument: which shard, which listener. */
typedef struct listen_ctx {
    srv_shard *s;
    int idx;
    struct event *resume_ev; /* re-enables accepting after a descriptor shortage */
    int64_t last_log_ms;
    unsigned failures; /* accept errors since the last log line */
    int fd_paused;     /* out of descriptors: resume_ev re-enables */
    int rate_paused;   /* max.connection.creation.rate: rate_ev re-enables */
    struct event *rate_ev;
    int64_t ip_log_ms;   /* last max.connections.per.ip line */
    unsigned ip_refused; /* refusals since that line */
    int enabled;
} listen_ctx;

/* How long accepting pauses when the process (or system) is out of
 * descriptors: the pending connection stays in the backlog meanwhile. */
#define ACCEPT_PAUSE_MS   100
#define ACCEPT_LOG_GAP_MS 10000

/* Makes an accepted socket a connection of shard s, unless s is at its
 * connection limit. The limit is checked here, on the owning shard, because
 * the acceptor (shard 0) must not read another shard's count. */
static void conn_adopt(srv_shard *s, evutil_socket_t fd, const struct sockaddr *sa, int listener)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    if (s->nconns >= s->b->max_conns_per_shard) {
        /* Over the descriptors left beside the partitions' budget: closed
         * at once, as Kafka does over its limit. */
        evutil_closesocket(fd);
        conn_count_release(s, listener, ip);
        int64_t now = srv_mono_ms();
        s->conns_refused++;
        if (s->conns_refused_log_ms == 0 || now - s->conns_refused_log_ms >= ACCEPT_LOG_GAP_MS) {
            srv_warn(
                "closing new connections on listener %s: %d open on this shard, the most the descriptors "
                "allow (RLIMIT_NOFILE); %u refused since the last report",
                s->b->cfg.listeners[listener].name, s->nconns, s->conns_refused);
            s->conns_refused_log_ms = now;
            s->conns_refused = 0;
        }
        return;
    }
    srv_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        evutil_closesocket(fd);
        conn_count_release(s, listener, ip);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->s = s;
    c->listener = listener;
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
    snprintf(c->client_host, sizeof(c->client_host), "/%s", ip);
    uint8_t proto = s->b->cfg.listeners[listener].proto;
    c->auth = SRV_PROTO_IS_SASL(proto) ? SRV_AUTH_WAIT_HANDSHAKE : SRV_AUTH_NOT_SASL;
    snprintf(c->principal, sizeof(c->principal), "User:ANONYMOUS");
    if (SRV_PROTO_IS_TLS(proto)) {
        SRV_ASSERT(s->b->tls_ctx[listener], "TLS listener %d has no context", listener);
        SSL_CTX *ctx = srv_tls_slot_ctx(s->b->tls_ctx[listener], s->id);
        SSL *ssl = SSL_new(ctx);
        c->tls = 1;
        /* The handshake runs inside the bufferevent, on this shard's loop,
         * never blocking it. BEV_OPT_CLOSE_ON_FREE also frees the SSL. */
        c->bev = ssl ? bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!c->bev && ssl)
            SSL_free(ssl);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
        /* libevent writes at most 16 KiB per loop turn by default: a 16 MiB
         * fetch answer then took a thousand writev calls and as many epoll
         * turns. The socket's send buffer bounds a write anyway. */
        if (c->bev)
            bufferevent_set_max_single_write(c->bev, MAX_SINGLE_WRITE);
    }
    if (!c->bev) {
        evutil_closesocket(fd);
        conn_count_release(s, listener, ip);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->last_active_ms = srv_now_ms();
    srv_m_add(&s->metrics.connections_opened, 1);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    srv_debug("connection from %s", c->peer);
}

/* An accepted socket travelling from the acceptor shard to its new owner,
 * and back to the acceptor to be freed. */
typedef struct handoff {
    srv_msg msg;
    evutil_socket_t fd;
    int listener;
    int from;
    struct sockaddr_storage sa;
} handoff;

static void handoff_free(srv_shard *on, srv_msg *m)
{
    (void)on;
    free(m);
}

static void handoff_adopt(srv_shard *on, srv_msg *m)
{
    handoff *h = (handoff *)m;
    conn_adopt(on, h->fd, (const struct sockaddr *)&h->sa, h->listener);
    h->msg.fn = handoff_free;
    srv_shard_send(on, h->from, &h->msg);
}

/* ---- connection limits (throttle_conn.h), kept by the accepting shard -- */

/* Accepting pauses, as Kafka's acceptor waits, while the broker or the
 * listener is at max.connections, while max.connection.creation.rate asks
 * for it, or while descriptors ran out. */
static void listeners_update(srv_shard *a)
{
    listen_ctx *lcs = a->listen_ctx;
    for (int i = 0; lcs && i < a->nlisteners; i++) {
        listen_ctx *lc = &lcs[i];
        int on = !lc->fd_paused && !lc->rate_paused && !srv_connlimit_full(a->connlimit, i);
        if (on != lc->enabled) {
            if (on)
                evconnlistener_enable(a->listeners[i]);
            else
                evconnlistener_disable(a->listeners[i]);
            lc->enabled = on;
        }
    }
}

typedef struct release_msg {
    srv_msg msg;
    int listener;
    int from;
    char ip[INET6_ADDRSTRLEN];
} release_msg;

static void release_free(srv_shard *on, srv_msg *m)
{
    (void)on;
    free(m);
}

static void release_apply(srv_shard *a, const char *ip, int listener)
{
    srv_connlimit_release(a->connlimit, listener, ip);
    listeners_update(a);
}

static void release_on_acceptor(srv_shard *a, srv_msg *m)
{
    release_msg *r = (release_msg *)m;
    if (a->connlimit)
        release_apply(a, r->ip, r->listener);
    r->msg.fn = release_free;
    srv_shard_send(a, r->from, &r->msg);
}

/* A counted connection is gone: the accepting shard's counts drop by one.
 * At shutdown the counts no longer matter (the acceptor may be gone). */
static void conn_count_release(srv_shard *s, int listener, const char *ip)
{
    if (__atomic_load_n(&s->b->stopping, __ATOMIC_ACQUIRE))
        return;
    if (s->id == SRV_ACCEPT_SHARD) {
        if (s->connlimit)
            release_apply(s, ip, listener);
        return;
    }
    release_msg *r = calloc(1, sizeof(*r));
    /* A lost release would keep a slot taken for ever. */
    SRV_ASSERT(r != NULL, "out of memory releasing a connection count");
    r->msg.fn = release_on_acceptor;
    r->listener = listener;
    r->from = s->id;
    snprintf(r->ip, sizeof(r->ip), "%s", ip);
    srv_shard_send(s, SRV_ACCEPT_SHARD, &r->msg);
}

static void on_rate_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    listen_ctx *lc = arg;
    lc->rate_paused = 0;
    listeners_update(lc->s);
}

typedef struct delayed_close {
    struct event *ev;
    evutil_socket_t fd;
} delayed_close;

static void on_delayed_close(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    delayed_close *d = arg;
    evutil_closesocket(d->fd);
    event_free(d->ev);
    free(d);
}

/* Over its address's connection_creation_rate: Kafka holds the connection,
 * unserved, for the throttle time, then closes it. */
static void ip_throttled(listen_ctx *lc, evutil_socket_t fd, const char *ip, int64_t delay)
{
    srv_shard *a = lc->s;
    delayed_close *d = calloc(1, sizeof(*d));
    if (d) {
        d->fd = fd;
        d->ev = evtimer_new(a->base, on_delayed_close, d);
    }
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    if (!d || !d->ev || evtimer_add(d->ev, &tv) != 0) {
        if (d && d->ev)
            event_free(d->ev);
        free(d);
        evutil_closesocket(fd);
    }
    srv_m_add(&a->metrics.quota_throttle_ms[SRV_QK_CONNECTION_CREATION_RATE], (uint64_t)delay);
    int64_t now = srv_mono_ms();
    lc->ip_refused++;
    if (lc->ip_log_ms == 0 || now - lc->ip_log_ms >= ACCEPT_LOG_GAP_MS) {
        srv_info(
            "Delaying closing of connection from /%s for %lld ms: over its connection_creation_rate quota "
            "(%u refused on listener %s since the last report)",
            ip, (long long)delay, lc->ip_refused, a->b->cfg.listeners[lc->idx].name);
        lc->ip_log_ms = now;
        lc->ip_refused = 0;
    }
}

/* Counts a new connection; 0 to serve it, -1 when it was closed (its
 * address is at max.connections.per.ip: Kafka closes it at once). */
static int conn_count_admit(listen_ctx *lc, evutil_socket_t fd, const struct sockaddr *sa)
{
    srv_shard *a = lc->s;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
    int32_t limit = 0;
    double ip_rate;
    int64_t now = srv_mono_ms();
    if (a->meta && srv_quota_lookup_ip(a->meta->quotas, ip, &ip_rate)) {
        int64_t delay = srv_connlimit_ip_created(a->connlimit, ip, ip_rate, now);
        if (delay > 0) {
            ip_throttled(lc, fd, ip, delay);
            return -1;
        }
    }
    if (srv_connlimit_full(a->connlimit, lc->idx)) {
        /* Accepted in the same loop turn that filled the last slot: over
         * max.connections it cannot wait in the backlog any more. */
        evutil_closesocket(fd);
        srv_info("closing connection from /%s: listener %s is at max.connections", ip,
                 a->b->cfg.listeners[lc->idx].name);
        return -1;
    }
    if (srv_connlimit_admit(a->connlimit, lc->idx, ip, &limit) != 0) {
        evutil_closesocket(fd);
        srv_m_add(&a->metrics.conns_refused_ip, 1);
        int64_t now = srv_mono_ms();
        lc->ip_refused++;
        /* Kafka's line, at most one per gap with the count: a flood of
         * connections must not flood the log. */
        if (lc->ip_log_ms == 0 || now - lc->ip_log_ms >= ACCEPT_LOG_GAP_MS) {
            srv_info("Rejected connection from /%s, address already has the configured maximum of %d "
                     "connections (%u refused on listener %s since the last report)",
                     ip, (int)limit, lc->ip_refused, a->b->cfg.listeners[lc->idx].name);
            lc->ip_log_ms = now;
            lc->ip_refused = 0;
        }
        return -1;
    }
    int64_t wait = srv_connlimit_created(a->connlimit, lc->idx, srv_mono_ms());
    if (wait > 0) {
        if (!lc->rate_ev)
            lc->rate_ev = evtimer_new(a->base, on_rate_resume, lc);
        if (lc->rate_ev) {
            struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
            evtimer_add(lc->rate_ev, &tv);
            lc->rate_paused = 1;
        }
    }
    listeners_update(a);
    return 0;
}

/* Shard 0 accepts for every shard and deals the sockets out round-robin.
 * One listening socket per listener (no SO_REUSEPORT, so no other process
 * can bind the port); the kernel's SO_REUSEPORT hash had spread connections
 * by address, and with every shard's loop watching one shared fd the shard
 * that wins accept() is whichever wakes first, so an idle shard could get
 * most of the connections. Round-robin keeps the counts within one of each
 * other at the price of one ring hop per new connection. */
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    listen_ctx *lc = arg;
    srv_shard *s = lc->s;
    if (conn_count_admit(lc, fd, sa) != 0)
        return;
    int to = (int)(s->accept_rr++ % (unsigned)s->b->nshards);
    if (to == s->id) {
        conn_adopt(s, fd, sa, lc->idx);
        return;
    }
    handoff *h = calloc(1, sizeof(*h));
    if (!h || salen < 0 || (size_t)salen > sizeof(h->sa)) {
        srv_warn("cannot hand an accepted connection to shard %d: %s", to,
                 h ? "bad address" : "out of memory");
        free(h);
        evutil_closesocket(fd);
        char ip[INET6_ADDRSTRLEN] = "?";
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
        conn_count_release(s, lc->idx, ip);
        return;
    }
    h->msg.fn = handoff_adopt;
    h->fd = fd;
    h->listener = lc->idx;
    h->from = s->id;
    memcpy(&h->sa, sa, (size_t)salen);
    srv_shard_send(s, to, &h->msg);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    listen_ctx *lc = arg;
    lc->fd_paused = 0;
    listeners_update(lc->s);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    int err = errno;
    listen_ctx *lc = arg;
    srv_shard *s = lc->s;
    int64_t now = srv_mono_ms();
    lc->failures++;
    /* One line per gap, with the count: a descriptor shortage fails every
     * accept, and a line per attempt would flood the log. */
    if (lc->last_log_ms == 0 || now - lc->last_log_ms >= ACCEPT_LOG_GAP_MS) {
        srv_warn("accept failed on listener %s: %s (%u failures since the last report)%s",
                 s->b->cfg.listeners[lc->idx].name, strerror(err), lc->failures,
                 err == EMFILE || err == ENFILE ? "; pausing accepts, existing connections are still served"
                                                : "");
        lc->last_log_ms = now;
        lc->failures = 0;
    }
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return; /* e.g. ECONNABORTED: that connection is gone, the next one may work */
    /* The listening socket stays readable while the backlog holds the
     * connection we could not take: without a pause the loop would spin on
     * it and starve every existing connection. */
    if (!lc->resume_ev)
        lc->resume_ev = evtimer_new(s->base, on_accept_resume, lc);
    if (lc->resume_ev) {
        (void)l;
        lc->fd_paused = 1;
        listeners_update(s);
        struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
        evtimer_add(lc->resume_ev, &tv);
    }
}

int srv_conns_listen(srv_shard *s)
{
    srv_broker *b = s->b;
    if (s->id != SRV_ACCEPT_SHARD)
        return 0;
    s->listeners = calloc((size_t)b->nlisteners, sizeof(*s->listeners));
    if (!s->listeners)
        return -1;
    s->listen_ctx = calloc((size_t)b->nlisteners, sizeof(listen_ctx));
    if (!s->listen_ctx)
        return -1;
    srv_connlimit_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.nlisteners = b->nlisteners;
    cc.max_total = b->cfg.max_connections;
    cc.max_per_ip = b->cfg.max_connections_per_ip;
    cc.overrides = b->cfg.max_connections_per_ip_overrides;
    cc.samples = b->cfg.quota_window_num;
    cc.window_ms = (int64_t)b->cfg.quota_window_size_seconds * 1000;
    for (int i = 0; i < b->nlisteners && i < SRV_CONNLIMIT_MAX_LISTENERS; i++) {
        const char *name = b->cfg.listeners[i].name;
        const char *v = srv_config_sec(&b->cfg, name, "max.connections");
        cc.max_listener[i] = v ? (int32_t)strtol(v, NULL, 10) : INT32_MAX;
        v = srv_config_sec(&b->cfg, name, "max.connection.creation.rate");
        cc.rate_listener[i] = v ? (int32_t)strtol(v, NULL, 10) : b->cfg.max_connection_creation_rate;
    }
    char err[300];
    s->connlimit = srv_connlimit_new(&cc, err, sizeof(err));
    if (!s->connlimit) {
        srv_error("%s", err);
        return -1;
    }
    for (int i = 0; i < b->nlisteners; i++) {
        int fd = b->listen_fds[i];
        listen_ctx *lc = &((listen_ctx *)s->listen_ctx)[i];
        lc->s = s;
        lc->idx = i;
        s->listeners[i] = evconnlistener_new(s->base, on_accept, lc, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (!s->listeners[i])
            return -1;
        evconnlistener_set_error_cb(s->listeners[i], on_accept_error);
        lc->enabled = 1;
        s->nlisteners++;
    }
    return 0;
}

void srv_conns_unlisten(srv_shard *s)
{
    listen_ctx *lcs = s->listen_ctx;
    for (int i = 0; i < s->nlisteners; i++) {
        evconnlistener_free(s->listeners[i]);
        if (lcs[i].resume_ev)
            event_free(lcs[i].resume_ev);
        if (lcs[i].rate_ev)
            event_free(lcs[i].rate_ev);
    }
    srv_connlimit_free(s->connlimit);
    s->connlimit = NULL;
    free(s->listeners);
    free(s->listen_ctx);
    s->listeners = NULL;
    s->listen_ctx = NULL;
    s->nlisteners = 0;
}

void srv_conns_tick(srv_shard *s)
{
    if (s->connlimit)
        srv_connlimit_expire(s->connlimit, srv_mono_ms());
    /* An idle shard also moves to a reloaded certificate, so the old one
     * can be freed (tls_reload.c). */
    for (int i = 0; i < s->b->cfg.n_listeners; i++)
        if (s->b->tls_ctx[i])
            srv_tls_slot_ctx(s->b->tls_ctx[i], s->id);
    int64_t idle = s->b->cfg.connections_max_idle_ms;
    if (idle <= 0)
        return;
    srv_conn *c = s->conns;
    while (c) {
        srv_conn *next = c->next;
        if (c->nreqs == 0 && s->now_ms - c->last_active_ms > idle) {
            srv_info("closing idle connection from %s (connections.max.idle.ms=%lld)", c->peer,
                     (long long)idle);
            conn_close(c);
        }
        c = next;
    }
}

void srv_conns_close_all(srv_shard *s)
{
    while (s->conns)
        conn_close(s->conns);
    /* Their connections are gone: finish() frees the requests. */
    while (s->delayed_answers) {
        delayed_answer *d = s->delayed_answers;
        srv_req *r = d->r;
        delayed_unlink(s, d);
        event_free(d->ev);
        free(d);
        finish(r);
    }
    srv_authlim_shard_free(s);
}

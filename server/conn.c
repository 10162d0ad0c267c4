/*
 * conn.c — client connections: accept, read frames, queue requests, write
 * responses in request order, backpressure, idle timeouts.
 *
 * Owns the connection and the lifetime of its requests, its transport (a
 * plain socket or TLS through bufferevent_openssl, handshake included) and,
 * on SASL listeners, the gate before authentication: only ApiVersions,
 * SaslHandshake and SaslAuthenticate, frames up to
 * sasl.server.max.receive.size, and the bare tokens of SaslHandshake v0.
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

#include "logging.h"
#include "sasl.h"
#include "srv_assert.h"
#include "tls.h"

/* A slow reader stops being served once this much output is waiting. */
#define OUTPUT_HIGH_WATER (32u << 20)

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
    uint8_t *rx_frame;   /* a large frame being read directly, or NULL */
    size_t rx_size, rx_got;
    int64_t last_active_ms;
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
    int pause = c->queued_bytes > max_queued(c) || out > OUTPUT_HIGH_WATER || c->close_after_flush;
    if (pause && !c->read_paused) {
        bufferevent_disable(c->bev, EV_READ);
        c->read_paused = 1;
    } else if (!pause && c->read_paused) {
        bufferevent_enable(c->bev, EV_READ);
        c->read_paused = 0;
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
    free(r->frame);
    free(r);
}

/* Detaches every request; unfinished ones finish later as orphans. */
static void conn_free(srv_conn *c)
{
    srv_shard *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    bufferevent_free(c->bev);
    srv_m_add(&s->metrics.connections_closed, 1);
    free(c->rx_frame);
    free(c);
}

static void conn_close(srv_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
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
        if (!r->no_response && r->out.len) {
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
    c->last_active_ms = r->shard->now_ms;
    srv_shard_metrics *m = &r->shard->metrics;
    if (r->kr.api && r->start_ns)
        srv_hist_record(&m->api[r->kr.hdr.request_api_key], (srv_now_ns() - r->start_ns) / 1000);
    srv_m_add(&m->bytes_out, r->out.len);
    if (c->head == r)
        conn_flush(c);
}

kp_str srv_req_client_host(srv_req *r)
{
    return r->conn ? kp_arena_strz(&r->arena, r->conn->client_host) : kp_str_c("");
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

kp_str srv_req_principal(const srv_req *r)
{
    return r->conn ? kp_str_c(r->conn->principal) : kp_str_c("");
}

kp_str srv_req_host(const srv_req *r)
{
    return r->conn ? kp_str_c(r->conn->client_host + 1) : kp_str_c(""); /* client_host is "/ip" */
}

const char *srv_req_peer(const srv_req *r)
{
    return r->conn ? r->conn->peer : "?";
}

typedef struct delayed_answer {
    struct event *ev;
    srv_req *r;
} delayed_answer;

static void on_delayed_answer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    delayed_answer *d = arg;
    srv_req *r = d->r;
    event_free(d->ev);
    free(d);
    if (r->conn)
        r->conn->close_after_flush = 1;
    finish(r);
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
    /* The request stays not done meanwhile: if the client leaves, the
     * connection closes and the timer frees the orphan through finish(). */
    delayed_answer *d = calloc(1, sizeof(*d));
    if (d) {
        d->r = r;
        d->ev = evtimer_new(r->shard->base, on_delayed_answer, d);
    }
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    if (!d || !d->ev || evtimer_add(d->ev, &tv) != 0) {
        if (d && d->ev)
            event_free(d->ev);
        free(d);
        if (r->conn)
            r->conn->close_after_flush = 1;
        finish(r);
    }
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
    if (r->conn) {
        /* Size first (the encoder in counting mode), so the buffer is
         * allocated once instead of doubling its way up. */
        kp_writer cw;
        kp_writer_init_counting(&cw);
        if (kp_response_encode(&cw, r->kr.hdr.request_api_key, r->kr.hdr.request_api_version,
                               r->kr.hdr.correlation_id, body) == 0)
            kp_writer_reserve(&r->out, cw.len);
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

void srv_req_respond_none_then_close(srv_req *r, const char *why)
{
    srv_conn *c = r->conn;
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
    if (c) {
        srv_warn("closing connection from %s: %s (api %d v%d, correlation id %d)", c->peer, why,
                 r->kr.hdr.request_api_key, r->kr.hdr.request_api_version, r->kr.hdr.correlation_id);
        conn_close(c); /* detaches r: it is freed as an orphan below */
    }
    finish(r);
}

/* SaslHandshake v0 was answered: this frame is the client's bare PLAIN
 * token (no request header), answered by a bare (empty) token on success.
 * Kafka closes the connection on failure without an answer. */
static void raw_sasl_token(srv_conn *c, srv_req *r)
{
    char user[256];
    const char *msg;
    srv_plain_users *users = c->s->b->plain_users[c->listener];
    if (srv_sasl_plain_check(users, r->frame, r->frame_len, user, sizeof(user), &msg) != 0) {
        srv_info("failed authentication with %s on listener %s (%s)", c->peer,
                 c->s->b->cfg.listeners[c->listener].name, msg);
        r->no_response = 1;
        c->close_after_flush = 1;
        srv_req_respond_then_close(r, NULL, c->s->b->cfg.connection_failed_authentication_delay_ms);
        return;
    }
    c->auth = SRV_AUTH_DONE;
    snprintf(c->principal, sizeof(c->principal), "User:%s", user);
    srv_debug("connection from %s authenticated as %s", c->peer, c->principal);
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
    if (c->auth != SRV_AUTH_NOT_SASL && c->auth != SRV_AUTH_DONE && !sasl_gate(c, r)) {
        if (!c->dead)
            conn_update_reading(c);
        return;
    }
    /* The handler may answer inline, close the connection, or park. */
    r->shard->b->dispatch(r);
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
        srv_tls_principal(bufferevent_openssl_get_ssl(c->bev), c->principal, sizeof(c->principal));
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
    if (s->nconns >= s->b->max_conns_per_shard) {
        /* Over max.connections or the descriptors left beside the
         * partitions' budget: closed at once, as Kafka does over its limit. */
        evutil_closesocket(fd);
        int64_t now = srv_mono_ms();
        s->conns_refused++;
        if (s->conns_refused_log_ms == 0 || now - s->conns_refused_log_ms >= ACCEPT_LOG_GAP_MS) {
            srv_warn("closing new connections on listener %s: %d open on this shard, the most allowed "
                     "(max.connections / RLIMIT_NOFILE); %u refused since the last report",
                     s->b->cfg.listeners[listener].name, s->nconns, s->conns_refused);
            s->conns_refused_log_ms = now;
            s->conns_refused = 0;
        }
        return;
    }
    srv_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->s = s;
    c->listener = listener;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    snprintf(c->client_host, sizeof(c->client_host), "/%s", host);
    uint8_t proto = s->b->cfg.listeners[listener].proto;
    c->auth = SRV_PROTO_IS_SASL(proto) ? SRV_AUTH_WAIT_HANDSHAKE : SRV_AUTH_NOT_SASL;
    snprintf(c->principal, sizeof(c->principal), "User:ANONYMOUS");
    if (SRV_PROTO_IS_TLS(proto)) {
        SSL_CTX *ctx = s->b->tls_ctx[listener];
        SRV_ASSERT(ctx, "TLS listener %d has no context", listener);
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
    }
    if (!c->bev) {
        evutil_closesocket(fd);
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
    evconnlistener_enable(lc->s->listeners[lc->idx]);
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
        evconnlistener_disable(l);
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
    for (int i = 0; i < b->nlisteners; i++) {
        int fd = b->listen_fds[i];
        listen_ctx *lc = &((listen_ctx *)s->listen_ctx)[i];
        lc->s = s;
        lc->idx = i;
        s->listeners[i] = evconnlistener_new(s->base, on_accept, lc, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (!s->listeners[i])
            return -1;
        evconnlistener_set_error_cb(s->listeners[i], on_accept_error);
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
    }
    free(s->listeners);
    free(s->listen_ctx);
    s->listeners = NULL;
    s->listen_ctx = NULL;
    s->nlisteners = 0;
}

void srv_conns_tick(srv_shard *s)
{
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
}

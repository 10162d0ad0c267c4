/*
 * broker.h — the broker's core types: shards, cross-shard messages,
 * connections and in-flight requests.
 *
 * Ownership rules (see docs/design.md):
 * - A shard is one thread with its own event_base and st_io. Everything
 *   reachable from a srv_shard is touched only by that thread, except its
 *   inbox rings and doorbell, which other shards push to.
 * - Cross-shard work is a srv_msg pushed onto the target's ring from the
 *   sender; the message memory belongs to whoever allocated it and travels
 *   back to it (a request goes out, the same message returns as the reply).
 * - A request (srv_req) lives on its connection's shard. Partition work for
 *   other shards is sent as messages that point back to it; the request stays
 *   alive until every such message has returned, even if the connection
 *   closes meanwhile.
 */
#ifndef SRV_BROKER_H
#define SRV_BROKER_H

#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>

#include "authz.h"
#include "clock.h"
#include "config.h"
#include "frame.h"
#include "metrics.h"
#include "ring.h"
#include "st_io.h"

typedef struct srv_broker srv_broker;
typedef struct srv_shard srv_shard;
typedef struct srv_conn srv_conn;
typedef struct srv_req srv_req;
typedef struct srv_meta srv_meta;
typedef struct srv_partmap srv_partmap;

/* The shard whose loop accepts every listener's connections (conn.c). */
#define SRV_ACCEPT_SHARD 0

/* A unit of cross-shard work: fn runs on the target shard's thread. */
typedef struct srv_msg srv_msg;
typedef void (*srv_msg_fn)(srv_shard *on, srv_msg *m);
struct srv_msg {
    srv_msg_fn fn;
    srv_msg *next; /* sender-side overflow list when a ring is full */
};

struct srv_shard {
    int id;
    srv_broker *b;
    pthread_t thread;
    struct event_base *base;
    st_io *io;
    struct event *io_ev;
    int doorbell_fd;
    struct event *doorbell_ev;
    int doorbell_armed; /* atomic: a sender already rang since we last drained */
    /* The request whose work this thread is doing now (dispatch, or a
     * continuation of it), and since when: request_percentage charges it. */
    struct srv_req *timed;
    uint64_t timed_since_ns;
    srv_ring *inbox;    /* inbox[from]: messages from shard `from` */
    srv_msg **overflow; /* overflow[to]: messages that did not fit in to's ring */
    srv_msg **overflow_tail;
    struct event *overflow_ev;
    struct event *tick_ev;
    srv_msg *deferred, *deferred_tail; /* srv_shard_post(): run on the next loop turn */
    struct event *deferred_ev;
    struct evconnlistener **listeners; /* only on SRV_ACCEPT_SHARD */
    void *listen_ctx;                  /* conn.c's per-listener callback arguments */
    int nlisteners;
    unsigned accept_rr; /* the shard the next accepted connection goes to */
    srv_meta *meta;     /* the metadata version this shard serves (one ref held) */
    srv_partmap *parts; /* partitions this shard owns */
    srv_conn *conns;    /* every open connection of this shard */
    uint64_t next_wait_id;
    int64_t next_pid;
    struct srv_fetch_wait *waits;              /* long polls parked on this shard (fetch_wait.c) */
    struct srv_groups *groups;                 /* consumer groups this shard coordinates (group/) */
    struct srv_txns *txns;                     /* transactional ids this shard coordinates (txn_coord.c) */
    struct srv_fetch_sessions *fetch_sessions; /* KIP-227 cache (fetch_session.c) */
    struct srv_replicas *replicas;             /* follower fetchers, with a quorum (replica.c) */
    struct srv_share_groups *share_groups;     /* share groups it coordinates (share_group.c) */
    struct srv_share_trackers *share_state;    /* __share_group_state pruning (share_coord.c) */
    struct srv_throttle *throttle;             /* client quota rates of this shard's clients */
    int64_t quota_share_ms;                    /* srv_mono_ms() of the last usage report (throttle_share.h) */
    struct srv_connlimit *connlimit;           /* SRV_ACCEPT_SHARD: connection counts (throttle_conn.h) */
    int64_t now_ms;                            /* cached at each tick and event */
    unsigned ticks;
    /* shard.c's trim_when_idle: ticks, busy_ns at the last second, idle
     * seconds in a row */
    unsigned trim_ticks;
    uint64_t trim_busy_ns;
    int trim_idle_s;
    srv_shard_metrics metrics;

    /* [owner shard]: that shard's offline partitions, as it published them */
    struct srv_offline_set **offline;
    int nconns;                   /* open connections */
    unsigned conns_refused;       /* over the connection limit since the last log line */
    int64_t conns_refused_log_ms; /* when that line was written */
    struct srv_authlim *authlim;  /* failed logins of the addresses this shard owns (auth_limit.c) */
    void *delayed_answers;        /* conn.c: failed-login answers waiting out their delay */
};

struct srv_broker {
    srv_config cfg;
    int nshards;
    srv_shard *shards;
    int nlisteners;
    int *listen_fds;  /* [listener]: one socket each, accepted on SRV_ACCEPT_SHARD */
    int *bound_ports; /* actual port per listener */
    char cluster_id[32];
    /* What Metadata tells a client to connect to, per listener: the
     * advertised listener of the same name as the one it connected through. */
    struct srv_endpoint {
        char host[256];
        int port;
    } adv[SRV_MAX_LISTENERS];
    int64_t pid_base; /* producer ids: srv_pid_at */
    /* With a quorum, ids are striped by node too (stride = the voters, slot =
     * this node's place among them): nodes started in the same millisecond
     * would hand out the same ids otherwise. 1 (or 0) and 0 on a single node. */
    int pid_stride, pid_slot;
    int64_t features_epoch;     /* ApiVersions' FinalizedFeaturesEpoch (srv_features.h): the start time */
    int stopping;               /* atomic */
    int draining;               /* main only, after the shard threads ended: callbacks publish nothing */
    int ready_count;            /* atomic: shards that finished start-up */
    struct srv_controller *ctl; /* metadata owner, lives on shard 0 */
    struct srv_quorum *quorum;  /* the metadata quorum (quorum.h); NULL on a single node */
    struct srv_metrics_srv *metrics; /* the HTTP scrape thread, if metrics.port is set */

    /* Connections a shard accepts at most: max.connections and what
     * RLIMIT_NOFILE leaves beside the segment-file budget, so clients can
     * never take the descriptors partitions need (main.c). */
    int max_conns_per_shard;

    /* Per listener, built by main.c at start: the published TLS context
     * (SSL and SASL_SSL listeners; replaced without a restart, tls.h) and
     * the SASL/PLAIN users (SASL listeners, read-only). NULL where the
     * protocol has none. */
    struct srv_tls_slot *tls_ctx[SRV_MAX_LISTENERS];
    struct srv_plain_users *plain_users[SRV_MAX_LISTENERS];
    /* SASL listeners: the enabled mechanisms in configuration order
     * (SRV_MECH_*), the OAUTHBEARER validator when enabled, and per
     * mechanism connections.max.reauth.ms (0 = sessions do not expire
     * unless their credential does). */
    uint8_t sasl_mechs[SRV_MAX_LISTENERS][SRV_MECH_COUNT];
    int n_sasl_mechs[SRV_MAX_LISTENERS];
    struct srv_oauth *oauth[SRV_MAX_LISTENERS];
    int64_t reauth_ms[SRV_MAX_LISTENERS][SRV_MECH_COUNT];

    /* authorizer.class.name, super.users, allow.everyone.if.no.acl.found:
     * built by main.c at start, read-only afterwards (authz.h). */
    srv_authz_cfg authz;

    /* Runs a decoded request's handler (handlers/dispatch.c, set by main.c):
     * the one way a connection reaches the handler layer, so core code never
     * names a handler. */
    void (*dispatch)(srv_req *req);
    /* A connection whose srv_req_conn_ext slot is set closed, on its shard
     * (set by main.c with dispatch): the handler layer ends what it tied to
     * the connection (share sessions) and frees ext. */
    void (*conn_closed)(srv_shard *s, void *ext);
};

/* Sends m to shard `to` (runs inline when to == from->id). Never blocks: a
 * full ring parks the message until the ring drains (msg.c). */
void srv_shard_send(srv_shard *from, int to, srv_msg *m);

/* Runs m on this shard on the next turn of its loop, not inline: for work
 * triggered from inside callbacks that must not re-enter their caller. */
void srv_shard_post(srv_shard *s, srv_msg *m);

/* ---- requests --------------------------------------------------------- */

struct srv_req {
    srv_req *next;  /* connection's queue, in arrival order */
    srv_conn *conn; /* NULL once the connection is gone */
    srv_shard *shard;
    uint8_t *frame; /* the request bytes; decoded fields point into it */
    size_t frame_len;
    kp_arena arena;
    kp_request kr; /* header + decoded body */
    kp_writer out; /* the encoded response frame, once done */
    int done;
    int no_response;               /* acks=0 produce */
    int pending;                   /* calls out plus holds (call.h): freed only at 0 */
    int released;                  /* answered and detached: free once pending reaches 0 */
    void (*then)(srv_req *req);    /* runs once pending reaches 0 (srv_req_then) */
    void *state;                   /* the handler's own state */
    void (*cleanup)(srv_req *req); /* frees what the handler holds outside the arena */
    uint64_t start_ns;             /* arrival, for the latency histogram */
    int listener;                  /* index of the listener the connection came through */
    uint64_t cpu_ns;               /* this shard's time on it before the current stretch (srv_req_timed) */
    int64_t mute_ms;               /* the longest srv_req_mute asked for it */
    /* A request a follower forwarded in an Envelope (handlers/envelope.c):
     * kr is the inner request, authorized as the caller the follower named,
     * and the answer goes back wrapped in an Envelope response. */
    int enveloped;
    int32_t env_corr;
    const char *as_principal; /* "type:name", in the arena */
    const char *as_host;      /* "/ip", in the arena */
    /* A follower's forward that got no usable answer, served here instead:
     * the controller answers this error (NOT_CONTROLLER when no answer came)
     * rather than forwarding again. */
    int16_t forward_error;
    void **out_mem; /* blocks the response refers to (srv_req_give_mem) */
    size_t n_out_mem, out_mem_cap;
};

/* The address this request's client should use for this broker. */
static inline const struct srv_endpoint *srv_req_endpoint(const srv_req *req)
{
    return &req->shard->b->adv[req->listener];
}

/* The client's address as Kafka reports it in group descriptions ("/ip"),
 * in the request's arena; "" once the connection is gone. */
kp_str srv_req_client_host(srv_req *req);

/* Authentication state of the request's connection (conn.c). A SASL
 * listener's connection starts in WAIT_HANDSHAKE and may send only
 * ApiVersions, SaslHandshake and SaslAuthenticate until DONE. */
enum srv_auth_state {
    SRV_AUTH_NOT_SASL = 0,      /* PLAINTEXT or SSL listener */
    SRV_AUTH_WAIT_HANDSHAKE,    /* SASL listener, nothing negotiated yet */
    SRV_AUTH_WAIT_AUTHENTICATE, /* SaslHandshake v1 done: tokens come in SaslAuthenticate */
    SRV_AUTH_WAIT_RAW_TOKEN,    /* SaslHandshake v0 done: the next frame is a bare SASL token */
    SRV_AUTH_DONE,              /* authenticated */
    SRV_AUTH_GONE = -1,         /* the connection closed */
};
int srv_req_auth_state(const srv_req *req);
/* The handler layer's slot on the request's connection, NULL once it is gone:
 * what it sets there is handed to srv_broker.conn_closed when the connection
 * closes (the connection neither reads nor frees it). */
void **srv_req_conn_ext(srv_req *req);

/* A connection's SASL session (conn.c keeps it; the SASL handlers and the
 * bare-token path fill it). */
typedef struct srv_sasl_session {
    int mech;                       /* SRV_MECH_* chosen by the last SaslHandshake */
    int bad_mech;                   /* re-authentication asked for another mechanism: the token closes */
    int oauth_error_sent;           /* an OAUTHBEARER error challenge awaits the client's %x01 */
    int reauth;                     /* re-authenticating: the principal may not change */
    int64_t expires_mono;           /* srv_mono_ms() past which requests close the connection; 0 = never */
    int64_t reauth_begin;           /* srv_mono_ms() of the last re-authentication start */
    struct srv_scram_server *scram; /* the SCRAM exchange under way, or NULL (freed with the connection) */
} srv_sasl_session;
/* NULL once the connection is gone. */
srv_sasl_session *srv_req_sasl(srv_req *req);
/* Ends a successful SASL exchange: refuses a changed principal on
 * re-authentication (-1, Kafka's message in msg), else marks the connection
 * authenticated as principal and returns the session lifetime in ms (0 = no
 * expiry): the smaller of the mechanism's connections.max.reauth.ms and the
 * credential's remaining life (cred_exp_ms, wall clock; 0 = none), as
 * Kafka's SaslServerAuthenticator computes it. */
int64_t srv_req_sasl_complete(srv_req *req, const char *principal, int64_t cred_exp_ms, char *msg,
                              size_t cap);
/* Moves the connection to `state`; principal ("User:name") when DONE. */
void srv_req_set_auth(srv_req *req, int state, const char *principal);
/* The SCRAM exchange (scram.h) the connection's SaslHandshake started, NULL
 * for other mechanisms; set_scram hands it to the connection, which frees it
 * (and a previous one) when it closes. */
struct srv_scram_server *srv_req_scram(const srv_req *req);
void srv_req_set_scram(srv_req *req, struct srv_scram_server *x);
/* The principal's name ("ANONYMOUS" for User:ANONYMOUS), as client quotas
 * name users; in the request's arena. */
kp_str srv_req_user(srv_req *req);
/* KIP-219: the connection reads no further request for ms (its answers
 * still leave): a quota's throttle time. */
void srv_req_mute(srv_req *req, int64_t ms);
/* Reads no further request of this connection until req is answered, as
 * Kafka serves one request per connection at a time: a throttled client's
 * pipelined requests then wait for its mute instead of slipping past it. */
void srv_req_serialize(srv_req *req);
/* The connection's principal ("User:ANONYMOUS", "User:<DN>", "User:<name>")
 * and the client's IP address as Kafka's ACLs name hosts; both point into
 * the connection (valid while the request runs on its shard), empty once
 * it is gone. */
kp_str srv_req_principal(const srv_req *req);
kp_str srv_req_host(const srv_req *req);
/* The client's "ip:port" for log lines ("?" once the connection is gone). */
const char *srv_req_peer(const srv_req *req);
/* Like srv_req_respond, but the answer leaves only after delay_ms and the
 * connection then closes once it is written: failed authentications. */
void srv_req_respond_then_close(srv_req *req, const void *body, int delay_ms);

/* Brackets a stretch of this shard's work for req (its dispatch, a call's
 * done, a continuation): the time is charged to req's request_percentage
 * when it is answered. A stretch inside another is part of the outer one.
 * end takes what begin returned; req may be gone by then. */
int srv_req_timed_begin(srv_req *req);
void srv_req_timed_end(srv_shard *s, int began);
/* This shard's time on req so far. */
uint64_t srv_req_cpu_ns(const srv_req *req);

/* Encodes body as the response to req (version of the request) and marks
 * the request done; responses leave the connection in request order. */
void srv_req_respond(srv_req *req, const void *body);
/* Hands the request a malloc'd block that the coming response body points
 * into (a fetch's records). Once a block is given, srv_req_respond sends
 * every bytes field of at least SRV_REF_MIN bytes by reference instead of
 * copying it into the frame, so each such field must lie in a given block;
 * the blocks are freed once the socket has taken them, or with the request.
 * 0, or -1 when out of memory (the block stays the caller's). */
#define SRV_REF_MIN (4u << 10)
int srv_req_give_mem(srv_req *req, void *mem);
void srv_req_respond_none(srv_req *req);
/* No answer, and the connection closes once the answers before this one are
 * written; nothing more is read from it (an acks=0 produce that failed:
 * Kafka closes so the client refreshes its metadata). */
void srv_req_respond_none_then_close(srv_req *req, const char *why);
/* The connection is unusable (protocol violation): log and close it. */
void srv_req_fail_close(srv_req *req, const char *why);
/* Frees a finished request now, or as soon as its last call is back
 * (srv_req_release). */
void srv_req_free(srv_req *req);

/* The k-th producer id of a shard: base + k * nshards + shard on a single
 * node; with a quorum that times the voters plus this node's slot, so that
 * no two nodes ever hand out the same id. */
static inline int64_t srv_pid_at(const srv_broker *b, int64_t k, int shard)
{
    int64_t stride = b->pid_stride > 0 ? b->pid_stride : 1; /* brokers built without main.c: tests */
    return (b->pid_base + k * b->nshards + shard) * stride + b->pid_slot;
}

#endif

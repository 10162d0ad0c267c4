/*
 * share.c — the share-group APIs (KIP-932): ShareGroupHeartbeat,
 * ShareGroupDescribe, ShareFetch and ShareAcknowledge. Group state lives on
 * the group's coordinator shard (share_group.c), reached as group calls;
 * records are read on each partition's owner (partcall.h), never here.
 *
 * A ShareFetch is three steps: (A) on the coordinator, the session epoch and
 * the acknowledgements, and where to read each partition; (B) the reads on
 * the owners; (C) on the coordinator again, the acquisition of what was
 * read. Records another member acquired between A and C are simply not
 * acquired again (the answer lists only this member's acquired ranges).
 *
 * Owns the translation between the wire and share_group.h, and the share
 * sessions each connection opened (ended when it closes). Must not: hold
 * group state, block, or keep a read buffer past the answer.
 */
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "clock.h"
#include "dispatch.h"
#include "errors.h"
#include "fetch_wait.h"
#include "group/coord.h"
#include "meta.h"
#include "partcall.h"
#include "share_coord.h"
#include "share_group.h"
#include "srv_assert.h"
#include "txn_part.h"

/* Between two empty rounds of a long-polling ShareFetch: records released by
 * others or whose locks expire show up without an append to wake us. */
#define SHARE_POLL_STEP_MS  100
#define SHARE_PART_READ_MAX (1 << 20)

static int topic_fn(void *arg, kp_str name, kp_uuid *id, int32_t *nparts)
{
    srv_shard *s = arg;
    const srv_topic *t = srv_meta_topic(s->meta, name);
    if (!t)
        return 0;
    *id = t->id;
    *nparts = t->nparts;
    return 1;
}

/* ---- ShareGroupHeartbeat ------------------------------------------------- */

typedef struct shb_call {
    srv_gcall c;
    srv_shb_req rq;
    kp_share_group_heartbeat_response resp;
} shb_call;

static void shb_fill(shb_call *h, const srv_shb_result *r)
{
    srv_gcall *c = &h->c;
    kp_share_group_heartbeat_response *o = &h->resp;
    o->error_code = r->error;
    o->error_message = r->message      ? kp_arena_strz(&c->arena, r->message)
                       : r->msglen > 0 ? kp_arena_str(&c->arena, (kp_str){r->msg, r->msglen})
                                       : KP_STR_NULL;
    o->member_id = r->error ? KP_STR_NULL : kp_arena_str(&c->arena, h->rq.member_id);
    o->member_epoch = r->member_epoch;
    o->heartbeat_interval_ms = r->error ? 0 : r->heartbeat_ms; /* 0 as well when leaving */
    o->assignment = NULL;
    if (r->error || r->nassigned < 0)
        return;
    kp_share_group_heartbeat_response_assignment *as = kp_arena_alloc(&c->arena, sizeof(*as));
    kp_share_group_heartbeat_response_topic_partitions *tps =
        kp_arena_alloc(&c->arena, ((size_t)r->nassigned + 1) * sizeof(*tps));
    int32_t *parts = kp_arena_alloc(&c->arena, ((size_t)r->nassigned + 1) * sizeof(*parts));
    if (!as || !tps || !parts)
        return; /* the call arena's failed flag refuses the answer */
    kp_share_group_heartbeat_response_assignment_init(as);
    int n = 0;
    for (int32_t i = 0; i < r->nassigned; i++) {
        parts[i] = r->assigned[i].partition;
        if (n && memcmp(tps[n - 1].topic_id.b, r->assigned[i].topic.b, 16) == 0) {
            tps[n - 1].partitions_count++;
            continue;
        }
        kp_share_group_heartbeat_response_topic_partitions_init(&tps[n]);
        tps[n].topic_id = r->assigned[i].topic;
        tps[n].partitions = &parts[i];
        tps[n].partitions_count = 1;
        n++;
    }
    as->topic_partitions = tps;
    as->topic_partitions_count = n;
    o->assignment = as;
}

static void shb_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    shb_call *h = (shb_call *)c;
    srv_share_groups *sg = srv_share_store(owner);
    /* As Kafka's group coordinator initialises share state when a group is
     * first used: the state topic exists by the first acknowledgement. */
    srv_share_state_ready(owner);
    srv_shb_result r;
    if (!sg) {
        memset(&r, 0, sizeof(r));
        r.error = KP_ERR_UNKNOWN_SERVER_ERROR;
        r.nassigned = -1;
    } else {
        srv_share_heartbeat(sg, &h->rq, srv_mono_ms(), topic_fn, owner, &c->arena, &r);
    }
    shb_fill(h, &r);
    srv_call_reply(owner, &c->call);
}

static void shb_error(kp_share_group_heartbeat_response *r, int16_t err)
{
    r->error_code = err;
    r->error_message = KP_STR_NULL;
    r->member_id = KP_STR_NULL;
    r->member_epoch = 0;
    r->heartbeat_interval_ms = 0;
    r->assignment = NULL;
}

static void shb_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    shb_call *h = (shb_call *)c;
    if (c->error)
        shb_error(&h->resp, c->error);
    srv_req_respond(c->call.req, &h->resp);
    srv_gcall_free(c);
}

void srv_h_share_group_heartbeat(srv_req *req)
{
    const kp_share_group_heartbeat_request *rq = req->kr.body;
    shb_call *h = srv_gcall_new(sizeof(*h), shb_run, shb_done);
    if (!h) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_share_group_heartbeat_response_init(&h->resp);
    srv_shb_req *c = &h->rq;
    c->group_id = rq->group_id;
    c->member_id = rq->member_id;
    c->member_epoch = rq->member_epoch;
    c->rack_id = rq->rack_id;
    c->client_id = req->kr.hdr.client_id.len >= 0 ? req->kr.hdr.client_id : kp_str_c("");
    c->client_host = srv_req_client_host(req);
    c->nsubs = rq->subscribed_topic_names_count;
    c->subs = rq->subscribed_topic_names;
    int16_t err = 0;
    const char *msg = NULL;
    if (!srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id))
        err = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    for (int32_t i = 0; !err && i < rq->subscribed_topic_names_count; i++)
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, rq->subscribed_topic_names[i]))
            err = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
    if (!err && rq->group_id.len <= 0) {
        err = KP_ERR_INVALID_REQUEST;
        msg = "GroupId can't be empty.";
    }
    if (!err)
        err = srv_gcall_send(req, &h->c, rq->group_id);
    if (err) {
        shb_error(&h->resp, err);
        if (msg)
            h->resp.error_message = kp_str_c(msg);
        srv_req_respond(req, &h->resp);
        srv_gcall_free(&h->c);
    }
}

/* ---- ShareGroupDescribe -------------------------------------------------- */

typedef struct shd_call {
    srv_gcall c;
    kp_str group_id;
    kp_share_group_describe_response_described_group *out; /* in the request's arena */
    srv_shd_group g;
} shd_call;

static void shd_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    shd_call *h = (shd_call *)c;
    srv_share_groups *sg = srv_share_store(owner);
    if (!sg) {
        memset(&h->g, 0, sizeof(h->g));
        h->g.error = KP_ERR_UNKNOWN_SERVER_ERROR;
    } else {
        srv_share_describe(sg, h->group_id, srv_mono_ms(), topic_fn, owner, &c->arena, &h->g);
    }
    srv_call_reply(owner, &c->call);
}

static void shd_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    shd_call *h = (shd_call *)c;
    srv_req *req = c->call.req;
    kp_share_group_describe_response_described_group *o = h->out;
    kp_arena *a = &req->arena;
    const srv_shd_group *g = &h->g;
    int16_t err = c->error ? c->error : g->error;
    o->error_code = err;
    if (err == KP_ERR_GROUP_ID_NOT_FOUND) {
        /* Kafka's words, and its empty state and assignor. */
        size_t n = (size_t)(h->group_id.len > 0 ? h->group_id.len : 0);
        char *m = kp_arena_alloc(a, n + 17);
        if (m) {
            memcpy(m, "Group ", 6);
            if (n)
                memcpy(m + 6, h->group_id.p, n);
            memcpy(m + 6 + n, " not found.", 11);
            o->error_message = (kp_str){m, (int32_t)(n + 17)};
        }
        o->group_state = kp_str_c("");
        o->assignor_name = kp_str_c("");
    }
    if (!err) {
        o->group_state = kp_arena_strz(a, g->state);
        o->group_epoch = g->epoch;
        o->assignment_epoch = g->epoch;
        o->assignor_name = kp_arena_strz(a, "simple");
        o->members = kp_arena_alloc(a, ((size_t)g->nmembers + 1) * sizeof(*o->members));
        o->members_count = 0;
        for (int32_t i = 0; o->members && i < g->nmembers; i++) {
            const srv_shd_member *m = &g->members[i];
            kp_share_group_describe_response_member *om = &o->members[o->members_count++];
            kp_share_group_describe_response_member_init(om);
            om->member_id = kp_arena_str(a, m->member_id);
            om->rack_id = kp_arena_str(a, m->rack_id);
            om->member_epoch = m->member_epoch;
            om->client_id = kp_arena_str(a, m->client_id);
            om->client_host = kp_arena_str(a, m->client_host);
            om->subscribed_topic_names = kp_arena_alloc(a, ((size_t)m->nsubs + 1) * sizeof(kp_str));
            om->subscribed_topic_names_count = 0;
            for (int32_t k = 0; om->subscribed_topic_names && k < m->nsubs; k++)
                om->subscribed_topic_names[om->subscribed_topic_names_count++] = kp_arena_str(a, m->subs[k]);
            kp_share_group_describe_response_topic_partitions *tps =
                kp_arena_alloc(a, ((size_t)m->nassigned + 1) * sizeof(*tps));
            int32_t *parts = kp_arena_alloc(a, ((size_t)m->nassigned + 1) * sizeof(*parts));
            int n = 0;
            for (int32_t k = 0; tps && parts && k < m->nassigned; k++) {
                parts[k] = m->assigned[k].partition;
                if (n && memcmp(tps[n - 1].topic_id.b, m->assigned[k].topic.b, 16) == 0) {
                    tps[n - 1].partitions_count++;
                    continue;
                }
                kp_share_group_describe_response_topic_partitions_init(&tps[n]);
                tps[n].topic_id = m->assigned[k].topic;
                const srv_topic *t = srv_meta_topic_by_id(req->shard->meta, &m->assigned[k].topic);
                tps[n].topic_name = kp_arena_strz(a, t ? t->name : "");
                tps[n].partitions = &parts[k];
                tps[n].partitions_count = 1;
                n++;
            }
            om->assignment.topic_partitions = tps;
            om->assignment.topic_partitions_count = n;
        }
    }
    srv_gcall_free(c);
    srv_req_release(req);
}

static void shd_then(srv_req *req)
{
    srv_req_respond(req, req->state);
}

void srv_h_share_group_describe(srv_req *req)
{
    const kp_share_group_describe_request *rq = req->kr.body;
    kp_share_group_describe_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    int32_t n = rq->group_ids_count > 0 ? rq->group_ids_count : 0;
    if (!resp) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_share_group_describe_response_init(resp);
    resp->groups = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(*resp->groups));
    if (!resp->groups) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp->groups_count = n;
    req->state = resp;
    srv_req_then(req, shd_then);
    srv_req_hold(req);
    for (int32_t i = 0; i < n; i++) {
        kp_share_group_describe_response_described_group *o = &resp->groups[i];
        kp_share_group_describe_response_described_group_init(o);
        o->group_id = rq->group_ids[i];
        o->authorized_operations = INT32_MIN;
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_GROUP, rq->group_ids[i])) {
            o->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
            continue;
        }
        shd_call *h = srv_gcall_new(sizeof(*h), shd_run, shd_done);
        if (!h) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        h->group_id = rq->group_ids[i];
        h->out = o;
        srv_req_hold(req); /* released by shd_done */
        int16_t err = srv_gcall_send(req, &h->c, rq->group_ids[i]);
        if (err) {
            o->error_code = err;
            srv_gcall_free(&h->c);
            srv_req_release(req);
        }
    }
    srv_req_release(req);
}

/* ---- ShareFetch and ShareAcknowledge -------------------------------------- */

typedef struct sf_part {
    srv_share_item it;
    uint8_t *data; /* the last read, owned by the request */
    size_t len;
    int have; /* data belongs in the answer */
} sf_part;

typedef struct sf_state {
    int ack_only;   /* ShareAcknowledge */
    int renew_only; /* ShareFetch v2 with IsRenewAck: acknowledgements only */
    srv_share_sreq sreq;
    srv_share_item *items; /* in the request's arena */
    int nitems;
    sf_part *parts;
    int32_t max_records;
    int32_t max_bytes;
    int64_t deadline_ms;
    int16_t error;
    int reads_pending;
    int responded;
    int32_t lock_ms; /* the group's share.record.lock.duration.ms */
} sf_state;

typedef struct sf_call {
    srv_gcall c;
    sf_state *st;
    int step; /* 0: begin, 1: acquire */
    int16_t error;
    srv_share_item *items; /* begin's answer, in the call's arena */
    int nitems;
    /* State records written before the reply (share_coord.h), in the call's arena */
    int npersist;
    srv_share_tp *ptps;
    srv_share_item **pitems;
    int16_t *perrs;
} sf_call;

typedef struct sf_read {
    srv_part_op base;
    srv_shard *owner;
    sf_part *sp;
    int64_t offset;
    int32_t max_bytes;
    int probe;
    int64_t reset_ts; /* a probe of share.auto.offset.reset=by_duration: look it up */
    int64_t ts_offset;
    int16_t error;
    int64_t hwm, log_start;
    uint8_t *data;
    size_t len;
} sf_read;

/* ---- Share sessions end with their connection ----------------------------
 *
 * Kafka drops a share session when the connection that opened it closes,
 * and gives back the member's acquired records then: a consumer killed -9
 * sees its records redelivered at once, not when their locks expire. The
 * connection keeps the sessions opened over it (group, member, coordinator
 * shard) under a token of its own; at close each becomes a call to the
 * coordinator, which leaves alone a session opened since over another
 * connection (srv_share_conn_closed). */

/* Sessions one connection remembers: past it the oldest is forgotten, and
 * its records wait for their locks instead (docs/share-groups.md). */
#define SHARE_CONN_MAX_SESSIONS 64

typedef struct conn_sess {
    char *group, *member;
    int32_t glen, mlen;
    int target; /* the group's coordinator shard */
} conn_sess;

typedef struct share_conn {
    uint64_t token;
    int n;
    conn_sess s[SHARE_CONN_MAX_SESSIONS];
} share_conn;

/* Each shard numbers its own connections: no counter is shared. */
static _Thread_local uint64_t conn_serial;

/* The request's connection token (its srv_req_conn_ext slot, made on first
 * use), 0 when the connection is gone or memory ran out: such a session then
 * ends at its records' lock expiry only. */
static uint64_t conn_token(srv_req *req)
{
    void **slot = srv_req_conn_ext(req);
    if (!slot)
        return 0;
    if (!*slot) {
        share_conn *sc = calloc(1, sizeof(*sc));
        if (!sc)
            return 0;
        sc->token = ((uint64_t)(req->shard->id + 1) << 48) | ++conn_serial;
        *slot = sc;
    }
    return ((share_conn *)*slot)->token;
}

static void conn_sess_free(conn_sess *e)
{
    free(e->group);
    free(e->member);
}

static char *copy_str(kp_str v, int32_t *len)
{
    *len = v.len > 0 ? v.len : 0;
    char *p = malloc((size_t)*len + 1);
    if (p && *len)
        memcpy(p, v.p, (size_t)*len);
    return p;
}

/* A session this connection opened (epoch 0 accepted by the coordinator). */
static void conn_remember(srv_req *req, kp_str group, kp_str member, int target)
{
    void **slot = srv_req_conn_ext(req);
    share_conn *sc = slot ? *slot : NULL;
    if (!sc)
        return;
    for (int i = 0; i < sc->n; i++) {
        conn_sess *e = &sc->s[i];
        if (e->glen == group.len && e->mlen == member.len &&
            memcmp(e->group, group.p, (size_t)e->glen) == 0 &&
            memcmp(e->member, member.p, (size_t)e->mlen) == 0) {
            e->target = target;
            return;
        }
    }
    if (sc->n == SHARE_CONN_MAX_SESSIONS) {
        conn_sess_free(&sc->s[0]);
        memmove(&sc->s[0], &sc->s[1], (size_t)(sc->n - 1) * sizeof(sc->s[0]));
        sc->n--;
    }
    conn_sess *e = &sc->s[sc->n];
    e->group = copy_str(group, &e->glen);
    e->member = copy_str(member, &e->mlen);
    e->target = target;
    if (!e->group || !e->member) {
        conn_sess_free(e);
        return;
    }
    sc->n++;
}

typedef struct sclose_call {
    srv_call call;
    uint64_t token;
    conn_sess e; /* owned */
} sclose_call;

static void sclose_run(srv_shard *owner, srv_call *call)
{
    sclose_call *x = (sclose_call *)call;
    srv_share_groups *sg = srv_share_store(owner);
    if (sg)
        srv_share_conn_closed(sg, (kp_str){x->e.group, x->e.glen}, (kp_str){x->e.member, x->e.mlen}, x->token,
                              srv_mono_ms());
    srv_call_reply(owner, call);
}

static void sclose_done(srv_shard *s, srv_call *call)
{
    (void)s;
    sclose_call *x = (sclose_call *)call;
    conn_sess_free(&x->e);
    free(x);
}

void srv_conn_closed(srv_shard *s, void *ext)
{
    share_conn *sc = ext;
    int stopping = __atomic_load_n(&s->b->stopping, __ATOMIC_ACQUIRE);
    for (int i = 0; i < sc->n; i++) {
        sclose_call *x = stopping ? NULL : calloc(1, sizeof(*x));
        if (!x) {
            /* Shutting down (the coordinator's loop may be gone), or out of
             * memory: the records come back when their locks expire. */
            conn_sess_free(&sc->s[i]);
            continue;
        }
        x->token = sc->token;
        x->e = sc->s[i];
        srv_call_init(&x->call, sclose_run, sclose_done, NULL);
        srv_call_send(s, NULL, &x->call, x->e.target);
    }
    free(sc);
}

static void sf_round(srv_req *req);
static void sf_respond(srv_req *req);
static void sf_call_done(srv_shard *s, srv_gcall *c);

static void sf_cleanup(srv_req *req)
{
    sf_state *st = req->state;
    for (int i = 0; st->parts && i < st->nitems; i++)
        free(st->parts[i].data);
}

/* Every share-partition state this step changed is durable: the answer
 * that depends on it may go. A failed write fails what depended on it. */
static void sf_persisted(srv_shard *owner, void *arg)
{
    sf_call *h = arg;
    for (int i = 0; i < h->npersist; i++) {
        srv_share_item *it = h->pitems[i];
        if (!h->perrs[i])
            continue;
        if (h->step == 0) {
            if (!it->ack_error) {
                it->ack_error = h->perrs[i];
                it->ack_why = NULL;
            }
        } else {
            /* Not handed out: they stay acquired in memory until their lock
             * expires, and nothing durable says they were delivered. */
            it->error = h->perrs[i];
            it->nranges = 0;
            it->ranges = NULL;
        }
    }
    srv_call_reply(owner, &h->c.call);
}

static void sf_persist_add(sf_call *h, srv_share_item *it)
{
    h->ptps[h->npersist] = it->tp;
    h->pitems[h->npersist] = it;
    h->npersist++;
}

static int sf_persist_alloc(sf_call *h, int n)
{
    srv_gcall *c = &h->c;
    h->npersist = 0;
    h->ptps = kp_arena_alloc(&c->arena, ((size_t)n + 1) * sizeof(*h->ptps));
    h->pitems = kp_arena_alloc(&c->arena, ((size_t)n + 1) * sizeof(*h->pitems));
    h->perrs = kp_arena_alloc(&c->arena, ((size_t)n + 1) * sizeof(*h->perrs));
    return h->ptps && h->pitems && h->perrs ? 0 : -1;
}

static void sf_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    sf_call *h = (sf_call *)c;
    sf_state *st = h->st;
    srv_share_groups *sg = srv_share_store(owner);
    h->npersist = 0;
    if (!sg) {
        h->error = KP_ERR_UNKNOWN_SERVER_ERROR;
    } else if (h->step == 0) {
        /* The request's items are read here and copied into the call's arena. */
        srv_share_item *items = st->items;
        int n = st->nitems;
        srv_share_item *copy = kp_arena_alloc(&c->arena, ((size_t)n + 1) * sizeof(*copy));
        if (!copy) {
            h->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        } else {
            memcpy(copy, items, (size_t)n * sizeof(*copy));
            h->error = srv_share_begin(sg, &st->sreq, srv_mono_ms(), &c->arena, &copy, &n);
            /* The request's shard waits for this call: its state is ours until the reply. */
            st->lock_ms = srv_share_lock_ms(sg, st->sreq.group_id);
            h->items = copy;
            h->nitems = n;
            if (!h->error && sf_persist_alloc(h, n) < 0)
                h->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            for (int i = 0; !h->error && i < n; i++)
                if (copy[i].nacks > 0)
                    sf_persist_add(h, &copy[i]);
        }
    } else if (srv_share_state_ready(owner) != KP_ERR_NONE) {
        /* No state topic yet (being created): acquire nothing, so that
         * nothing is handed out that could not be written; the fetch polls. */
        for (int i = 0; i < st->nitems; i++)
            st->items[i].nranges = 0;
        h->error = KP_ERR_NONE;
    } else {
        /* Share-partitions initialised by this step are written too (Kafka's
         * InitializeShareGroupState): their start offset must survive. */
        uint8_t *was = kp_arena_alloc(&c->arena, (size_t)st->nitems + 1);
        if (!was || sf_persist_alloc(h, st->nitems) < 0) {
            h->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        } else {
            for (int i = 0; i < st->nitems; i++)
                was[i] = srv_share_part_of(sg, st->sreq.group_id, &st->items[i].tp) != NULL;
            h->error = srv_share_acquire(sg, &st->sreq, st->max_records, srv_mono_ms(), &c->arena, st->items,
                                         st->nitems);
            for (int i = 0; !h->error && i < st->nitems; i++) {
                srv_share_item *it = &st->items[i];
                if (it->nranges > 0 || (!was[i] && srv_share_part_of(sg, st->sreq.group_id, &it->tp)))
                    sf_persist_add(h, it);
            }
        }
    }
    if (h->error || !h->npersist) {
        srv_call_reply(owner, &c->call);
        return;
    }
    srv_share_persist(owner, st->sreq.group_id, h->ptps, h->npersist, h->perrs, sf_persisted, h);
}

static void sf_read_run(srv_shard *owner, srv_part_op *base, srv_part *p);

static void sf_read_cb(void *arg, const st_read_result *res)
{
    sf_read *op = arg;
    op->hwm = res->high_watermark;
    op->log_start = res->log_start_offset;
    if (res->rc) {
        op->error = srv_st_to_kafka(res->rc);
    } else if (res->len) {
        op->data = malloc(res->len);
        if (op->data) {
            memcpy(op->data, res->data, res->len);
            op->len = res->len;
        } else {
            op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    srv_call_reply(op->owner, &op->base.call);
}

static void sf_ts_cb(void *arg, int rc, int64_t offset, int64_t timestamp)
{
    (void)timestamp;
    sf_read *op = arg;
    op->ts_offset = rc ? -1 : offset;
    if (rc)
        op->error = srv_st_to_kafka(rc);
    srv_call_reply(op->owner, &op->base.call);
}

static void sf_read_run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    sf_read *op = (sf_read *)base;
    op->ts_offset = -1;
    if (!p || srv_part_offline(p)) {
        op->error = p ? KP_ERR_KAFKA_STORAGE_ERROR : KP_ERR_NOT_LEADER_OR_FOLLOWER;
        srv_call_reply(owner, &base->call);
        return;
    }
    op->owner = owner;
    op->hwm = st_log_high_watermark(p->log);
    op->log_start = st_log_start_offset(p->log);
    if (op->probe && op->reset_ts >= 0) {
        /* ListOffsets' lookup (an index read may wait on the disk). */
        int r = st_log_offset_for_time(p->log, op->reset_ts, sf_ts_cb, op);
        if (r < 0) {
            op->error = srv_st_to_kafka(r);
            srv_call_reply(owner, &base->call);
        }
        return;
    }
    if (op->probe || op->offset >= op->hwm) {
        srv_call_reply(owner, &base->call);
        return;
    }
    if (op->offset < op->log_start)
        op->offset = op->log_start;
    int r = st_log_read(p->log, op->offset, (size_t)op->max_bytes, sf_read_cb, op);
    if (r < 0) {
        op->error = srv_st_to_kafka(r);
        srv_call_reply(owner, &base->call);
    }
}

static void sf_read_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    sf_read *op = (sf_read *)base;
    srv_req *req = base->call.req;
    sf_part *sp = op->sp;
    free(sp->data);
    sp->data = op->data;
    sp->len = op->len;
    sp->it.error = op->error;
    sp->it.hwm = op->hwm;
    sp->it.log_start = op->log_start;
    sp->it.ts_offset = op->ts_offset;
    sp->it.last = -1;
    if (op->len) {
        int64_t end = srv_txn_batches_end(op->data, op->len);
        sp->it.last = end > 0 ? end - 1 : -1;
    }
    free(op);
    (void)req;
}

static void sf_send(srv_req *req, int step)
{
    sf_state *st = req->state;
    sf_call *h = srv_gcall_new(sizeof(*h), sf_run, sf_call_done);
    if (!h) {
        st->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        sf_respond(req);
        return;
    }
    h->st = st;
    h->step = step;
    int16_t err = srv_gcall_send(req, &h->c, st->sreq.group_id);
    if (err) {
        srv_gcall_free(&h->c);
        st->error = err;
        sf_respond(req);
    }
}

static void sf_reads_then(srv_req *req)
{
    sf_state *st = req->state;
    /* The items now carry what each read found: acquire it. */
    for (int i = 0; i < st->nitems; i++)
        st->items[i] = st->parts[i].it;
    sf_send(req, 1);
}

static void sf_reads(srv_req *req)
{
    sf_state *st = req->state;
    srv_shard *s = req->shard;
    srv_req_then(req, sf_reads_then);
    srv_req_hold(req);
    /* MaxBytes bounds the whole answer: each read takes its share of what is
     * left, from a partition that changes with the clock so that a busy first
     * partition cannot starve the others. */
    int64_t left = st->max_bytes;
    int start = st->nitems > 0 ? (int)((uint64_t)srv_now_ms() % (uint64_t)st->nitems) : 0;
    for (int j = 0; j < st->nitems; j++) {
        int i = (start + j) % st->nitems;
        sf_part *sp = &st->parts[i];
        sp->it = st->items[i];
        sp->it.last = -1;
        sp->it.hwm = -1;
        sp->it.log_start = -1;
        sp->it.ts_offset = -1;
        if (!sp->it.fetch || sp->it.read_from < 0 || sp->it.error || left <= 0)
            continue;
        const srv_topic *t = srv_meta_topic_by_id(s->meta, &sp->it.tp.topic);
        int16_t err = 0;
        sf_read *op =
            t ? srv_part_op_new(t, sp->it.tp.partition, sizeof(*op), sf_read_run, sf_read_done, &err) : NULL;
        if (!op) {
            sp->it.error = t ? (err ? err : KP_ERR_UNKNOWN_SERVER_ERROR) : KP_ERR_UNKNOWN_TOPIC_ID;
            continue;
        }
        op->sp = sp;
        op->offset = sp->it.read_from;
        /* ShareFetch v1 has no per-partition limit: a read is bounded like a
         * consumer's default max.partition.fetch.bytes, and MaxRecords
         * bounds what is acquired of it anyway. */
        op->max_bytes = left < SHARE_PART_READ_MAX ? (int32_t)left : SHARE_PART_READ_MAX;
        left -= op->max_bytes;
        op->probe = sp->it.probe;
        /* by_duration: Kafka's timestamps are wall-clock ones. */
        op->reset_ts = sp->it.reset_ago_ms >= 0 ? srv_now_ms() - sp->it.reset_ago_ms : -1;
        if (sp->it.reset_ago_ms >= 0 && op->reset_ts < 0)
            op->reset_ts = 0;
        srv_part_op_send(req, &op->base);
    }
    srv_req_release(req);
}

static void sf_wait(srv_shard *s, void *arg, srv_wait_why why)
{
    (void)s;
    srv_req *req = arg;
    if (why == SRV_WAIT_SHUTDOWN) {
        sf_respond(req);
        return;
    }
    sf_round(req);
}

static void sf_round(srv_req *req)
{
    sf_reads(req);
}

static void sf_call_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    sf_call *h = (sf_call *)c;
    srv_req *req = c->call.req;
    sf_state *st = req->state;
    int16_t err = c->error ? c->error : h->error;
    if (err) {
        st->error = err;
        srv_gcall_free(c);
        sf_respond(req);
        return;
    }
    if (h->step == 0) {
        /* The session's set, copied into the request's arena. */
        st->items = kp_arena_alloc(&req->arena, ((size_t)h->nitems + 1) * sizeof(*st->items));
        st->parts = kp_arena_alloc(&req->arena, ((size_t)h->nitems + 1) * sizeof(*st->parts));
        if (!st->items || !st->parts) {
            srv_gcall_free(c);
            srv_req_fail_close(req, "out of memory");
            return;
        }
        memcpy(st->items, h->items, (size_t)h->nitems * sizeof(*st->items));
        memset(st->parts, 0, ((size_t)h->nitems + 1) * sizeof(*st->parts));
        st->nitems = h->nitems;
        for (int i = 0; i < st->nitems; i++) {
            st->items[i].acks = NULL; /* applied: never again */
            st->items[i].nacks = st->items[i].nacks ? -1 : 0;
            st->parts[i].it = st->items[i];
        }
        if (st->sreq.epoch == 0 && st->sreq.conn)
            conn_remember(req, st->sreq.group_id, st->sreq.member_id, c->call.target);
        srv_gcall_free(c);
        if (st->ack_only || st->renew_only || st->sreq.epoch == -1) {
            sf_respond(req);
            return;
        }
        sf_round(req);
        return;
    }
    /* Acquisition done: the ranges live in the call's arena; copy them. */
    int got = 0, news = 0;
    for (int i = 0; i < st->nitems; i++) {
        srv_share_item *it = &st->items[i];
        sf_part *sp = &st->parts[i];
        sp->it.read_from = it->read_from;
        sp->it.probe = it->probe;
        sp->it.nranges = it->nranges;
        sp->it.ranges = NULL;
        if (it->nranges > 0) {
            sp->it.ranges = kp_arena_alloc(&req->arena, (size_t)it->nranges * sizeof(*it->ranges));
            if (sp->it.ranges)
                memcpy(sp->it.ranges, it->ranges, (size_t)it->nranges * sizeof(*it->ranges));
            got = 1;
            sp->have = 1;
        }
        if (it->error || it->nacks)
            news = 1;
        it->nranges = 0;
        it->ranges = NULL;
    }
    srv_gcall_free(c);
    int64_t left = st->deadline_ms - srv_mono_ms();
    if (got || news || left <= 0) {
        sf_respond(req);
        return;
    }
    for (int i = 0; i < st->nitems; i++) {
        free(st->parts[i].data);
        st->parts[i].data = NULL;
        st->parts[i].len = 0;
    }
    if (!srv_fetch_wait_park(req->shard, left < SHARE_POLL_STEP_MS ? left : SHARE_POLL_STEP_MS, sf_wait, req))
        sf_respond(req);
}

static int same_topic(const kp_uuid *a, const kp_uuid *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

static void sf_respond(srv_req *req)
{
    sf_state *st = req->state;
    if (st->responded)
        return;
    st->responded = 1;
    kp_arena *a = &req->arena;
    int n = st->nitems;
    int32_t lock_ms = st->lock_ms;
    if (st->ack_only) {
        kp_share_acknowledge_response r;
        kp_share_acknowledge_response_init(&r);
        r.error_code = st->error;
        r.acquisition_lock_timeout_ms = st->error ? 0 : lock_ms; /* Kafka: 0 with a top-level error */
        r.responses = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*r.responses));
        r.responses_count = 0;
        kp_share_acknowledge_response_share_acknowledge_topic_response *tr = NULL;
        for (int i = 0; !st->error && r.responses && i < n; i++) {
            const srv_share_item *it = st->parts ? &st->parts[i].it : &st->items[i];
            if (!tr || !same_topic(&tr->topic_id, &it->tp.topic)) {
                tr = &r.responses[r.responses_count++];
                kp_share_acknowledge_response_share_acknowledge_topic_response_init(tr);
                tr->topic_id = it->tp.topic;
                tr->partitions = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*tr->partitions));
                tr->partitions_count = 0;
                if (!tr->partitions)
                    break;
            }
            kp_share_acknowledge_response_partition_data *pd = &tr->partitions[tr->partitions_count++];
            kp_share_acknowledge_response_partition_data_init(pd);
            pd->partition_index = it->tp.partition;
            pd->error_code = it->error ? it->error : it->ack_error;
            if (!it->error && it->ack_why)
                pd->error_message = kp_str_c(it->ack_why);
        }
        srv_req_respond(req, &r);
        return;
    }
    kp_share_fetch_response r;
    kp_share_fetch_response_init(&r);
    r.error_code = st->error;
    r.acquisition_lock_timeout_ms = st->error ? 0 : lock_ms;
    r.responses = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*r.responses));
    r.responses_count = 0;
    kp_share_fetch_response_share_fetchable_topic_response *tr = NULL;
    for (int i = 0; !st->error && r.responses && st->parts && i < n; i++) {
        sf_part *sp = &st->parts[i];
        const srv_share_item *it = &sp->it;
        if (!sp->have && !it->error && !it->nacks && !it->ack_error)
            continue; /* nothing to say about this partition */
        if (!tr || !same_topic(&tr->topic_id, &it->tp.topic)) {
            tr = &r.responses[r.responses_count++];
            kp_share_fetch_response_share_fetchable_topic_response_init(tr);
            tr->topic_id = it->tp.topic;
            tr->partitions = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*tr->partitions));
            tr->partitions_count = 0;
            if (!tr->partitions)
                break;
        }
        kp_share_fetch_response_partition_data *pd = &tr->partitions[tr->partitions_count++];
        kp_share_fetch_response_partition_data_init(pd);
        pd->partition_index = it->tp.partition;
        pd->error_code = it->error;
        pd->acknowledge_error_code = it->ack_error;
        if (it->ack_why)
            pd->acknowledge_error_message = kp_str_c(it->ack_why);
        pd->records = (kp_bytes){(const uint8_t *)"", 0};
        pd->acquired_records_count = 0;
        if (sp->have && sp->len && it->nranges > 0) {
            pd->records = (kp_bytes){sp->data, (int32_t)sp->len};
            pd->acquired_records = kp_arena_alloc(a, (size_t)it->nranges * sizeof(*pd->acquired_records));
            for (int k = 0; pd->acquired_records && k < it->nranges; k++) {
                pd->acquired_records[k].first_offset = it->ranges[k].first;
                pd->acquired_records[k].last_offset = it->ranges[k].last;
                pd->acquired_records[k].delivery_count = it->ranges[k].delivery;
            }
            pd->acquired_records_count = it->nranges;
        }
    }
    r.node_endpoints_count = 0;
    srv_req_respond(req, &r);
}

static int build_items(srv_req *req, sf_state *st, int32_t ntopics, int is_fetch, const void *topics)
{
    int n = 0;
    for (int32_t i = 0; i < ntopics; i++) {
        int32_t np =
            is_fetch ? ((const kp_share_fetch_request_fetch_topic *)topics)[i].partitions_count
                     : ((const kp_share_acknowledge_request_acknowledge_topic *)topics)[i].partitions_count;
        n += np > 0 ? np : 0;
    }
    st->items = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(*st->items));
    if (!st->items)
        return -1;
    int k = 0;
    for (int32_t i = 0; i < ntopics; i++) {
        if (is_fetch) {
            const kp_share_fetch_request_fetch_topic *t =
                &((const kp_share_fetch_request_fetch_topic *)topics)[i];
            for (int32_t j = 0; j < t->partitions_count; j++) {
                const kp_share_fetch_request_fetch_partition *p = &t->partitions[j];
                srv_share_item *it = &st->items[k++];
                memset(it, 0, sizeof(*it));
                it->tp.topic = t->topic_id;
                it->tp.partition = p->partition_index;
                it->fetch = 1;
                int32_t nb = p->acknowledgement_batches_count > 0 ? p->acknowledgement_batches_count : 0;
                srv_share_ackb *b = kp_arena_alloc(&req->arena, ((size_t)nb + 1) * sizeof(*b));
                if (!b)
                    return -1;
                for (int32_t q = 0; q < nb; q++) {
                    b[q].first = p->acknowledgement_batches[q].first_offset;
                    b[q].last = p->acknowledgement_batches[q].last_offset;
                    b[q].types = p->acknowledgement_batches[q].acknowledge_types;
                    b[q].ntypes = p->acknowledgement_batches[q].acknowledge_types_count;
                }
                it->acks = b;
                it->nacks = nb;
            }
        } else {
            const kp_share_acknowledge_request_acknowledge_topic *t =
                &((const kp_share_acknowledge_request_acknowledge_topic *)topics)[i];
            for (int32_t j = 0; j < t->partitions_count; j++) {
                const kp_share_acknowledge_request_acknowledge_partition *p = &t->partitions[j];
                srv_share_item *it = &st->items[k++];
                memset(it, 0, sizeof(*it));
                it->tp.topic = t->topic_id;
                it->tp.partition = p->partition_index;
                int32_t nb = p->acknowledgement_batches_count > 0 ? p->acknowledgement_batches_count : 0;
                srv_share_ackb *b = kp_arena_alloc(&req->arena, ((size_t)nb + 1) * sizeof(*b));
                if (!b)
                    return -1;
                for (int32_t q = 0; q < nb; q++) {
                    b[q].first = p->acknowledgement_batches[q].first_offset;
                    b[q].last = p->acknowledgement_batches[q].last_offset;
                    b[q].types = p->acknowledgement_batches[q].acknowledge_types;
                    b[q].ntypes = p->acknowledgement_batches[q].acknowledge_types_count;
                }
                it->acks = b;
                it->nacks = nb;
            }
        }
    }
    st->nitems = k;
    return 0;
}

static void share_start(srv_req *req, sf_state *st, kp_str group_id)
{
    req->state = st;
    req->cleanup = sf_cleanup;
    if (!srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, group_id)) {
        st->error = KP_ERR_GROUP_AUTHORIZATION_FAILED;
        sf_respond(req);
        return;
    }
    if (group_id.len <= 0 || st->sreq.member_id.len <= 0) {
        st->error = KP_ERR_INVALID_REQUEST;
        sf_respond(req);
        return;
    }
    sf_send(req, 0);
}

void srv_h_share_fetch(srv_req *req)
{
    const kp_share_fetch_request *rq = req->kr.body;
    sf_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (!st) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    memset(st, 0, sizeof(*st));
    st->lock_ms = req->shard->b->cfg.group_share_record_lock_duration_ms;
    st->sreq.group_id = rq->group_id;
    st->sreq.member_id = rq->member_id;
    st->sreq.epoch = rq->share_session_epoch;
    st->sreq.is_fetch = 1;
    if (st->sreq.epoch == 0)
        st->sreq.conn = conn_token(req);
    if (req->kr.hdr.request_api_version >= 2) {
        /* KIP-1206: record_limit caps what is acquired at MaxRecords, which
         * kbroker does in either mode (batch_optimized may go past it to a
         * batch's end in Kafka, never here). Kafka fails an unknown mode
         * with an unexpected exception: the same code here. */
        if (rq->share_acquire_mode != 0 && rq->share_acquire_mode != 1) {
            st->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            req->state = st;
            sf_respond(req);
            return;
        }
        /* KIP-1222: a fetch that only renews locks reads nothing, and must
         * ask for nothing. */
        st->sreq.renew = rq->is_renew_ack;
        st->renew_only = rq->is_renew_ack;
        if (rq->is_renew_ack && (rq->max_bytes || rq->min_bytes || rq->max_records || rq->max_wait_ms)) {
            st->error = KP_ERR_INVALID_REQUEST;
            req->state = st;
            sf_respond(req);
            return;
        }
    }
    st->max_records = rq->max_records;
    st->max_bytes = rq->max_bytes > 0 ? rq->max_bytes : INT32_MAX;
    if (st->max_bytes > (64 << 20))
        st->max_bytes = 64 << 20;
    st->deadline_ms = srv_mono_ms() + (rq->max_wait_ms > 0 ? rq->max_wait_ms : 0);
    int nf = 0;
    for (int32_t i = 0; i < rq->forgotten_topics_data_count; i++)
        nf += rq->forgotten_topics_data[i].partitions_count > 0
                  ? rq->forgotten_topics_data[i].partitions_count
                  : 0;
    srv_share_tp *fg = kp_arena_alloc(&req->arena, ((size_t)nf + 1) * sizeof(*fg));
    if (!fg || build_items(req, st, rq->topics_count, 1, rq->topics) < 0) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int k = 0;
    for (int32_t i = 0; i < rq->forgotten_topics_data_count; i++)
        for (int32_t j = 0; j < rq->forgotten_topics_data[i].partitions_count; j++) {
            fg[k].topic = rq->forgotten_topics_data[i].topic_id;
            fg[k].partition = rq->forgotten_topics_data[i].partitions[j];
            k++;
        }
    st->sreq.forgotten = fg;
    st->sreq.nforgotten = k;
    share_start(req, st, rq->group_id);
}

void srv_h_share_acknowledge(srv_req *req)
{
    const kp_share_acknowledge_request *rq = req->kr.body;
    sf_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (!st) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    memset(st, 0, sizeof(*st));
    st->lock_ms = req->shard->b->cfg.group_share_record_lock_duration_ms;
    st->ack_only = 1;
    st->sreq.renew = req->kr.hdr.request_api_version >= 2 && rq->is_renew_ack;
    st->sreq.group_id = rq->group_id;
    st->sreq.member_id = rq->member_id;
    st->sreq.epoch = rq->share_session_epoch;
    if (build_items(req, st, rq->topics_count, 0, rq->topics) < 0) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    share_start(req, st, rq->group_id);
}

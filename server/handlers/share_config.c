/*
 * share_config.c — share-group configs on GROUP resources (Kafka's
 * GroupConfig, KIP-932's share.* keys): the GROUP resources of
 * IncrementalAlterConfigs, AlterConfigs and DescribeConfigs (the whole
 * request when it names only groups; else first, configs.c answering).
 *
 * The values are validated here with Kafka 4.4's rules and messages, made
 * durable in the metadata log (the controller's 'G' records, replayed into
 * the share groups at start by share_coord.c), then applied to the group on
 * its coordinator shard (share_group.h), reached as a group call. Kafka's
 * other group keys (consumer.*, streams.*, and the share.* keys kbroker
 * does not apply) are refused with INVALID_CONFIG rather than accepted and
 * ignored.
 *
 * Owns the translation between the wire and srv_share_gconf. Must not: keep
 * group state, or serve any other resource type (configs.c does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authz_req.h"
#include "config.h"
#include "controller.h"
#include "dyncfg.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "share_coord.h"
#include "share_group.h"

#define RES_GROUP 32

#define SRC_STATIC_BROKER 4 /* Kafka's ConfigSource values */
#define SRC_DEFAULT       5
#define SRC_GROUP         8
#define TYPE_BOOLEAN      1 /* Kafka's ConfigType values */
#define TYPE_STRING       2
#define TYPE_INT          3

typedef struct gkey {
    const char *name;
    int key;            /* enum srv_share_gkey */
    const char *broker; /* the broker key it overrides, NULL: none */
    int64_t at_least;   /* ConfigDef's lower bound (INT keys) */
} gkey;

/* In the order Kafka's DescribeConfigs lists them. */
static const gkey KEYS[] = {
    {"share.auto.offset.reset", SRV_SGK_AUTO_RESET, NULL, 0},
    {"share.renew.acknowledge.enable", SRV_SGK_RENEW_ENABLE, NULL, 0},
    {"share.session.timeout.ms", SRV_SGK_SESSION_MS, "group.share.session.timeout.ms", 1},
    {"share.heartbeat.interval.ms", SRV_SGK_HEARTBEAT_MS, "group.share.heartbeat.interval.ms", 1},
    {"share.delivery.count.limit", SRV_SGK_DELIVERY_LIMIT, "group.share.delivery.count.limit", 2},
    {"share.record.lock.duration.ms", SRV_SGK_LOCK_MS, "group.share.record.lock.duration.ms", 1000},
    {"share.partition.max.record.locks", SRV_SGK_MAX_LOCKS, "group.share.partition.max.record.locks", 100},
};
#define NKEYS ((int)(sizeof(KEYS) / sizeof(KEYS[0])))

/* Kafka 4.4's other group configs: known names, not applied by kbroker. */
static const char *const UNSUPPORTED[] = {
    "consumer.session.timeout.ms",       "consumer.heartbeat.interval.ms",
    "consumer.assignment.interval.ms",   "share.isolation.level",
    "share.assignment.interval.ms",      "streams.assignor.name",
    "streams.session.timeout.ms",        "streams.heartbeat.interval.ms",
    "streams.num.standby.replicas",      "streams.initial.rebalance.delay.ms",
    "streams.assignment.interval.ms",    "streams.rack.aware.assignment.tags",
    "errors.deadletterqueue.topic.name", "errors.deadletterqueue.copy.record.enable",
};

int srv_group_configs_only(const srv_req *req)
{
    int32_t n = 0;
    if (req->kr.hdr.request_api_key == KP_API_DESCRIBE_CONFIGS) {
        const kp_describe_configs_request *rq = req->kr.body;
        for (int32_t i = 0; i < rq->resources_count; i++, n++)
            if (rq->resources[i].resource_type != RES_GROUP)
                return 0;
    } else if (req->kr.hdr.request_api_key == KP_API_INCREMENTAL_ALTER_CONFIGS) {
        const kp_incremental_alter_configs_request *rq = req->kr.body;
        for (int32_t i = 0; i < rq->resources_count; i++, n++)
            if (rq->resources[i].resource_type != RES_GROUP)
                return 0;
    } else if (req->kr.hdr.request_api_key == KP_API_ALTER_CONFIGS) {
        const kp_alter_configs_request *rq = req->kr.body;
        for (int32_t i = 0; i < rq->resources_count; i++, n++)
            if (rq->resources[i].resource_type != RES_GROUP)
                return 0;
    }
    return n > 0;
}

/* A broker setting, or Kafka's default when it is not set. */
static int64_t broker_int(const srv_config *cfg, const char *key, int64_t dflt)
{
    const char *v = srv_config_get_raw(cfg, key);
    return v ? atoll(v) : dflt;
}

/* The range Kafka checks a group's value against: the broker's
 * group.share.min/max.* settings for every key. */
static void range_of(const srv_config *cfg, int key, int64_t *lo, int64_t *hi)
{
    switch (key) {
    case SRV_SGK_LOCK_MS:
        *lo = broker_int(cfg, "group.share.min.record.lock.duration.ms", 15000);
        *hi = broker_int(cfg, "group.share.max.record.lock.duration.ms", 60000);
        return;
    case SRV_SGK_SESSION_MS:
        *lo = broker_int(cfg, "group.share.min.session.timeout.ms", 45000);
        *hi = broker_int(cfg, "group.share.max.session.timeout.ms", 60000);
        return;
    case SRV_SGK_HEARTBEAT_MS:
        *lo = broker_int(cfg, "group.share.min.heartbeat.interval.ms", 5000);
        *hi = broker_int(cfg, "group.share.max.heartbeat.interval.ms", 15000);
        return;
    case SRV_SGK_DELIVERY_LIMIT:
        *lo = broker_int(cfg, "group.share.min.delivery.count.limit", 2);
        *hi = broker_int(cfg, "group.share.max.delivery.count.limit", 10);
        return;
    case SRV_SGK_MAX_LOCKS:
        *lo = broker_int(cfg, "group.share.min.partition.max.record.locks", 100);
        *hi = broker_int(cfg, "group.share.max.partition.max.record.locks", 4000);
        return;
    default:
        *lo = 0, *hi = 1;
        return;
    }
}

/* Appends by length (protocol strings are never formatted with %s). */
typedef struct mbuf {
    char b[512];
    int32_t n;
} mbuf;

static void m_add(mbuf *m, const char *p, int32_t n)
{
    if (n <= 0)
        return;
    if (n > (int32_t)sizeof(m->b) - m->n)
        n = (int32_t)sizeof(m->b) - m->n;
    memcpy(m->b + m->n, p, (size_t)n);
    m->n += n;
}

static void m_txt(mbuf *m, const char *z)
{
    m_add(m, z, (int32_t)strlen(z));
}

static void m_str(mbuf *m, kp_str s)
{
    m_add(m, s.p, s.len);
}

static void m_i64(mbuf *m, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", (long long)v);
    m_add(m, b, n);
}

/* "Invalid value <v> for configuration <k>: " */
static void m_invalid(mbuf *m, kp_str value, const char *key)
{
    m_txt(m, "Invalid value ");
    m_str(m, value);
    m_txt(m, " for configuration ");
    m_txt(m, key);
    m_txt(m, ": ");
}

static int parse_int(kp_str v, int64_t *out)
{
    if (v.len <= 0 || v.len > 11)
        return -1;
    char b[16];
    memcpy(b, v.p, (size_t)v.len);
    b[v.len] = 0;
    char *end;
    long long x = strtoll(b, &end, 10);
    if (*end || x < INT32_MIN || x > INT32_MAX)
        return -1;
    *out = x;
    return 0;
}

static const gkey *find_key(kp_str name)
{
    for (int i = 0; i < NKEYS; i++)
        if (kp_str_eq(name, KEYS[i].name))
            return &KEYS[i];
    return NULL;
}

/* One validated change of a group's config. */
typedef struct gchange {
    int key;
    int del;
    int64_t val;
    int64_t reset_ms; /* by_duration's duration */
    kp_str sval;      /* the value as the metadata log keeps it (trimmed) */
} gchange;

/* Java's String.trim, which Kafka's ConfigDef applies to every value. */
static kp_str jtrim(kp_str v)
{
    if (v.len <= 0)
        return v;
    while (v.len > 0 && (unsigned char)v.p[0] <= ' ')
        v.p++, v.len--;
    while (v.len > 0 && (unsigned char)v.p[v.len - 1] <= ' ')
        v.len--;
    return v;
}

/* Validates one alteration (op: Kafka's ConfigOperation, 0 SET, 1 DELETE);
 * 0 with *out, or the error with Kafka's message in m. */
static int16_t check_one(const srv_config *cfg, kp_str name, int8_t op, kp_str raw, gchange *out, mbuf *m)
{
    const gkey *k = find_key(name);
    if (!k) {
        for (size_t i = 0; i < sizeof(UNSUPPORTED) / sizeof(UNSUPPORTED[0]); i++)
            if (kp_str_eq(name, UNSUPPORTED[i])) {
                m_txt(m, "Group config ");
                m_str(m, name);
                m_txt(m, " is not supported by kbroker.");
                return KP_ERR_INVALID_CONFIG;
            }
        m_txt(m, "Unknown group config name: ");
        m_str(m, name);
        return KP_ERR_INVALID_CONFIG;
    }
    *out = (gchange){.key = k->key, .del = op == 1, .sval = KP_STR_NULL};
    if (op == 1)
        return 0; /* DELETE: back to the broker's value */
    if (op == 2 || op == 3) {
        m_txt(m, "Can't ");
        m_txt(m, op == 2 ? "APPEND" : "SUBTRACT");
        m_txt(m, " to key ");
        m_txt(m, k->name);
        m_txt(m, " because its type is not LIST.");
        return KP_ERR_INVALID_CONFIG;
    }
    if (op != 0) {
        m_txt(m, "Unknown config operation.");
        return KP_ERR_INVALID_REQUEST;
    }
    kp_str value = jtrim(raw);
    out->sval = value;
    if (value.len > 0 && memchr(value.p, 0, (size_t)value.len)) {
        m_invalid(m, value, k->name);
        m_txt(m, "contains a NUL byte");
        return KP_ERR_INVALID_CONFIG;
    }
    if (k->key == SRV_SGK_AUTO_RESET) {
        int mode;
        if (value.len > 0 && srv_share_parse_reset(value.p, (size_t)value.len, &mode, &out->reset_ms) == 0) {
            out->val = mode;
            return 0;
        }
        m_invalid(m, value, k->name);
        m_txt(m, "Invalid value `");
        m_str(m, value);
        m_txt(m, "` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' "
                 "or of "
                 "the format 'by_duration:<PnDTnHnMn.nS>'.");
        return KP_ERR_INVALID_CONFIG;
    }
    if (k->key == SRV_SGK_RENEW_ENABLE) {
        /* ConfigDef's BOOLEAN: either word, in any case; kept as the word. */
        if (value.len == 4 && strncasecmp(value.p, "true", 4) == 0) {
            out->val = 1;
            out->sval = kp_str_c("true");
            return 0;
        }
        if (value.len == 5 && strncasecmp(value.p, "false", 5) == 0) {
            out->val = 0;
            out->sval = kp_str_c("false");
            return 0;
        }
        m_invalid(m, value, k->name);
        m_txt(m, "Expected value to be either true or false");
        return KP_ERR_INVALID_CONFIG;
    }
    if (parse_int(value, &out->val) < 0) {
        m_invalid(m, value, k->name);
        m_txt(m, "Not a number of type INT");
        return KP_ERR_INVALID_CONFIG;
    }
    if (out->val < k->at_least) {
        m_invalid(m, value, k->name);
        m_txt(m, "Value must be at least ");
        m_i64(m, k->at_least);
        return KP_ERR_INVALID_CONFIG;
    }
    int64_t lo, hi;
    range_of(cfg, k->key, &lo, &hi);
    if (out->val < lo || out->val > hi) {
        m_txt(m, k->name);
        m_txt(m, " must be in the range ");
        m_i64(m, lo);
        m_txt(m, " to ");
        m_i64(m, hi);
        m_txt(m, " inclusive.");
        return KP_ERR_INVALID_CONFIG;
    }
    return 0;
}

/* ---- IncrementalAlterConfigs and AlterConfigs -------------------------------
 * Validated, then written to the metadata log ('G' records, the controller's
 * SRV_CTL_ALTER_GROUP) so that a restart keeps them, then applied to the
 * group on its coordinator shard. */

typedef struct gres {
    int other; /* not a GROUP resource (a mixed request): configs.c answers it */
    int16_t error;
    kp_str message;
    kp_str name;
    gchange *ch; /* in the request's arena */
    int nch;
} gres;

typedef struct galter {
    srv_ctl_op op;
    srv_req *req;
    void (*next)(srv_req *req); /* a mixed request: configs.c's part, then the answer */
    int incremental;
    int nres;
    gres *res;
    int *dyn_res; /* the resource of each op.dyn[] */
} galter;

typedef struct iac_call {
    srv_gcall c;
    gres *r;
} iac_call;

static void iac_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    iac_call *h = (iac_call *)c;
    srv_share_groups *sg = srv_share_store(owner);
    if (!sg) {
        c->error = KP_ERR_UNKNOWN_SERVER_ERROR;
    } else {
        srv_share_gconf g;
        srv_share_gconf_get(sg, h->r->name, &g);
        for (int i = 0; i < h->r->nch; i++) {
            const gchange *ch = &h->r->ch[i];
            g.set[ch->key] = !ch->del;
            g.val[ch->key] = ch->val;
            if (ch->key == SRV_SGK_AUTO_RESET)
                g.reset_ms = ch->reset_ms;
        }
        if (srv_share_gconf_put(sg, h->r->name, &g) < 0)
            c->error = KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    srv_call_reply(owner, &c->call);
}

static void iac_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    iac_call *h = (iac_call *)c;
    srv_req *req = c->call.req;
    if (c->error && !h->r->error)
        h->r->error = c->error;
    srv_gcall_free(c);
    srv_req_release(req);
}

static void galter_respond(srv_req *req)
{
    galter *st = req->state;
    kp_arena *a = &req->arena;
    if (st->incremental) {
        kp_incremental_alter_configs_response resp;
        kp_incremental_alter_configs_response_init(&resp);
        resp.responses = kp_arena_alloc(a, ((size_t)st->nres + 1) * sizeof(*resp.responses));
        resp.responses_count = resp.responses ? st->nres : 0;
        const kp_incremental_alter_configs_request *rq = req->kr.body;
        for (int i = 0; i < resp.responses_count; i++) {
            kp_incremental_alter_configs_response_alter_configs_resource_response *o = &resp.responses[i];
            kp_incremental_alter_configs_response_alter_configs_resource_response_init(o);
            o->resource_type = rq->resources[i].resource_type;
            o->resource_name = rq->resources[i].resource_name;
            o->error_code = st->res[i].error;
            o->error_message = st->res[i].message;
        }
        srv_req_respond(req, &resp);
    } else {
        kp_alter_configs_response resp;
        kp_alter_configs_response_init(&resp);
        resp.responses = kp_arena_alloc(a, ((size_t)st->nres + 1) * sizeof(*resp.responses));
        resp.responses_count = resp.responses ? st->nres : 0;
        const kp_alter_configs_request *rq = req->kr.body;
        for (int i = 0; i < resp.responses_count; i++) {
            kp_alter_configs_response_alter_configs_resource_response *o = &resp.responses[i];
            kp_alter_configs_response_alter_configs_resource_response_init(o);
            o->resource_type = rq->resources[i].resource_type;
            o->resource_name = rq->resources[i].resource_name;
            o->error_code = st->res[i].error;
            o->error_message = st->res[i].message;
        }
        srv_req_respond(req, &resp);
    }
}

/* Durable (or refused): each resource written whole goes to its group. */
_Static_assert(SRV_GROUPCFG_MAX_ENTRIES == 100000, "galter_persisted's message names the limit");

static void galter_persisted(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    galter *st = (galter *)op;
    srv_req *req = st->req;
    for (int k = 0; k < st->op.ndyn; k++) {
        gres *r = &st->res[st->dyn_res[k]];
        if (st->op.dyn[k].error && !r->error) {
            r->error = st->op.dyn[k].error;
            r->message = r->error == KP_ERR_POLICY_VIOLATION
                             ? kp_str_c("The cluster already holds the most group configs it keeps "
                                        "(100000 group and key pairs): "
                                        "delete some first.")
                             : kp_str_c("The change could not be written to the metadata log.");
        }
    }
    for (int i = 0; i < st->nres; i++) {
        gres *r = &st->res[i];
        if (r->other || r->error || !r->ch)
            continue;
        iac_call *h = srv_gcall_new(sizeof(*h), iac_run, iac_done);
        if (!h) {
            r->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        h->r = r;
        srv_req_hold(req); /* released by iac_done */
        int16_t err = srv_gcall_send(req, &h->c, r->name);
        if (err) {
            r->error = err;
            srv_gcall_free(&h->c);
            srv_req_release(req);
        }
    }
}

/* Validates resource i into r: 0, or -1 out of memory. */
static int galter_check(srv_req *req, galter *st, int i, gres *r)
{
    kp_arena *a = &req->arena;
    const srv_config *cfg = &req->shard->b->cfg;
    int32_t nc;
    if (st->incremental) {
        const kp_incremental_alter_configs_request_alter_configs_resource *ir =
            &((const kp_incremental_alter_configs_request *)req->kr.body)->resources[i];
        r->name = ir->resource_name;
        r->other = ir->resource_type != RES_GROUP;
        nc = ir->configs_count > 0 ? ir->configs_count : 0;
    } else {
        const kp_alter_configs_request_alter_configs_resource *lr =
            &((const kp_alter_configs_request *)req->kr.body)->resources[i];
        r->name = lr->resource_name;
        r->other = lr->resource_type != RES_GROUP;
        /* AlterConfigs replaces the whole set: every key not listed goes. */
        nc = NKEYS + (lr->configs_count > 0 ? lr->configs_count : 0);
    }
    r->message = KP_STR_NULL;
    if (r->other)
        return 0;
    if (!srv_authorize(req, SRV_OP_ALTER_CONFIGS, SRV_RES_GROUP, r->name)) {
        r->error = KP_ERR_GROUP_AUTHORIZATION_FAILED;
        r->message = kp_str_c("Group authorization failed.");
        return 0;
    }
    if (r->name.len <= 0) {
        r->error = KP_ERR_INVALID_REQUEST;
        r->message = kp_str_c("Default group resources are not allowed.");
        return 0;
    }
    if (memchr(r->name.p, 0, (size_t)r->name.len)) {
        /* The metadata log keeps group ids as C strings. */
        r->error = KP_ERR_INVALID_REQUEST;
        r->message = kp_str_c("kbroker keeps no configs for a group id containing a NUL byte.");
        return 0;
    }
    if (!(r->ch = kp_arena_alloc(a, ((size_t)nc + 1) * sizeof(*r->ch))))
        return -1;
    mbuf m = {.n = 0};
    if (st->incremental) {
        const kp_incremental_alter_configs_request_alter_configs_resource *ir =
            &((const kp_incremental_alter_configs_request *)req->kr.body)->resources[i];
        /* As Kafka: the whole resource is refused at its first bad entry. */
        for (int32_t k = 0; !r->error && k < nc; k++)
            r->error = check_one(cfg, ir->configs[k].name, ir->configs[k].config_operation,
                                 ir->configs[k].value, &r->ch[r->nch++], &m);
    } else {
        const kp_alter_configs_request_alter_configs_resource *lr =
            &((const kp_alter_configs_request *)req->kr.body)->resources[i];
        int32_t listed = lr->configs_count > 0 ? lr->configs_count : 0;
        for (int32_t k = 0; !r->error && k < listed; k++)
            r->error = check_one(cfg, lr->configs[k].name, 0, lr->configs[k].value, &r->ch[r->nch++], &m);
        for (int k = 0; !r->error && k < NKEYS; k++) {
            int named = 0;
            for (int32_t j = 0; j < listed && !named; j++)
                named = kp_str_eq(lr->configs[j].name, KEYS[k].name);
            if (!named)
                r->ch[r->nch++] = (gchange){.key = KEYS[k].key, .del = 1, .sval = KP_STR_NULL};
        }
    }
    if (r->error) {
        r->message = kp_arena_str(a, (kp_str){m.b, m.n});
        r->ch = NULL;
        r->nch = 0;
    }
    return 0;
}

static void alter_groups(srv_req *req, void (*next)(srv_req *req))
{
    kp_arena *a = &req->arena;
    int incremental = req->kr.hdr.request_api_key == KP_API_INCREMENTAL_ALTER_CONFIGS;
    int32_t n;
    int validate_only;
    if (incremental) {
        const kp_incremental_alter_configs_request *rq = req->kr.body;
        n = rq->resources_count;
        validate_only = rq->validate_only;
    } else {
        const kp_alter_configs_request *rq = req->kr.body;
        n = rq->resources_count;
        validate_only = rq->validate_only;
    }
    if (n < 0)
        n = 0;
    galter *st = kp_arena_alloc(a, sizeof(*st));
    if (!st || !(st->res = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*st->res)))) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    gres *res = st->res;
    memset(st, 0, sizeof(*st));
    memset(res, 0, ((size_t)n + 1) * sizeof(*res));
    st->res = res;
    st->req = req;
    st->next = next;
    st->incremental = incremental;
    st->nres = n;
    req->state = st;
    int total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (galter_check(req, st, i, &st->res[i]) < 0) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        total += st->res[i].error || st->res[i].other ? 0 : st->res[i].nch;
    }
    srv_dyncfg_change *dyn = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(*dyn));
    st->dyn_res = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(int));
    if (!dyn || !st->dyn_res) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int nd = 0;
    for (int32_t i = 0; i < n; i++) {
        gres *r = &st->res[i];
        for (int k = 0; !r->error && !r->other && k < r->nch; k++) {
            const gchange *ch = &r->ch[k];
            dyn[nd] = (srv_dyncfg_change){.resource = kp_arena_str(a, r->name).p,
                                          .key = srv_share_gkey_name(ch->key),
                                          .value = ch->del ? NULL : kp_arena_str(a, ch->sval).p};
            if (!dyn[nd].resource || (!ch->del && !dyn[nd].value)) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
            st->dyn_res[nd++] = i;
        }
    }
    void (*then)(srv_req *) = next ? next : galter_respond;
    if (validate_only || nd == 0) {
        then(req);
        return;
    }
    st->op.kind = SRV_CTL_ALTER_GROUP;
    st->op.ndyn = nd;
    st->op.dyn = dyn;
    st->op.done = galter_persisted;
    srv_req_then(req, then);
    srv_ctl_submit(req->shard, req, &st->op);
}

int srv_group_configs_any(const srv_req *req)
{
    if (req->kr.hdr.request_api_key == KP_API_DESCRIBE_CONFIGS) {
        const kp_describe_configs_request *rq = req->kr.body;
        for (int32_t i = 0; i < rq->resources_count; i++)
            if (rq->resources[i].resource_type == RES_GROUP)
                return 1;
    } else if (req->kr.hdr.request_api_key == KP_API_INCREMENTAL_ALTER_CONFIGS) {
        const kp_incremental_alter_configs_request *rq = req->kr.body;
        for (int32_t i = 0; i < rq->resources_count; i++)
            if (rq->resources[i].resource_type == RES_GROUP)
                return 1;
    } else if (req->kr.hdr.request_api_key == KP_API_ALTER_CONFIGS) {
        const kp_alter_configs_request *rq = req->kr.body;
        for (int32_t i = 0; i < rq->resources_count; i++)
            if (rq->resources[i].resource_type == RES_GROUP)
                return 1;
    }
    return 0;
}

void srv_group_configs_alter(srv_req *req, void (*next)(srv_req *req))
{
    alter_groups(req, next);
}

int srv_group_configs_result(const srv_req *req, int32_t i, int16_t *error, const char **message)
{
    const galter *st = req->state;
    if (!st || i < 0 || i >= st->nres || st->res[i].other)
        return 0;
    *error = st->res[i].error;
    *message = st->res[i].message.p; /* arena strings end with a NUL */
    return 1;
}

static void respond_state(srv_req *req)
{
    srv_req_respond(req, req->state);
}

/* ---- DescribeConfigs ---------------------------------------------------------- */

typedef kp_describe_configs_response_describe_configs_result dc_result;
typedef kp_describe_configs_response_describe_configs_resource_result dc_entry;

typedef struct dc_call {
    srv_gcall c;
    kp_str group_id;
    srv_share_gconf g; /* filled on the owner */
    const kp_describe_configs_request_describe_configs_resource *r;
    dc_result *out;
} dc_call;

static void dc_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    dc_call *h = (dc_call *)c;
    srv_share_groups *sg = srv_share_store(owner);
    if (!sg)
        c->error = KP_ERR_UNKNOWN_SERVER_ERROR;
    else
        srv_share_gconf_get(sg, h->group_id, &h->g);
    srv_call_reply(owner, &c->call);
}

static int wanted(const kp_describe_configs_request_describe_configs_resource *r, const char *name)
{
    if (r->configuration_keys_count < 0)
        return 1;
    for (int32_t i = 0; i < r->configuration_keys_count; i++)
        if (kp_str_eq(r->configuration_keys[i], name))
            return 1;
    return 0;
}

/* The broker's value of k as a string, and whether it was configured. */
static const char *broker_value(srv_req *req, const gkey *k, char *buf, size_t cap, int *configured)
{
    const srv_config *cfg = &req->shard->b->cfg;
    int64_t v = 0;
    *configured = k->broker && srv_config_get_raw(cfg, k->broker) != NULL;
    switch (k->key) {
    case SRV_SGK_AUTO_RESET:
        return "latest";
    case SRV_SGK_RENEW_ENABLE:
        return "true";
    case SRV_SGK_LOCK_MS:
        v = cfg->group_share_record_lock_duration_ms;
        break;
    case SRV_SGK_SESSION_MS:
        v = cfg->group_share_session_timeout_ms;
        break;
    case SRV_SGK_HEARTBEAT_MS:
        v = cfg->group_share_heartbeat_interval_ms;
        break;
    case SRV_SGK_DELIVERY_LIMIT:
        v = cfg->group_share_delivery_count_limit;
        break;
    case SRV_SGK_MAX_LOCKS:
        v = cfg->group_share_partition_max_record_locks;
        break;
    default:
        break;
    }
    snprintf(buf, cap, "%lld", (long long)v);
    return buf;
}

static void dc_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    dc_call *h = (dc_call *)c;
    srv_req *req = c->call.req;
    const kp_describe_configs_request *rq = req->kr.body;
    kp_arena *a = &req->arena;
    dc_result *o = h->out;
    o->error_code = c->error;
    if (!c->error) {
        o->configs = kp_arena_alloc(a, (size_t)NKEYS * sizeof(*o->configs));
        o->configs_count = 0;
        for (int i = 0; o->configs && i < NKEYS; i++) {
            const gkey *k = &KEYS[i];
            if (!wanted(h->r, k->name))
                continue;
            char bbuf[24], gbuf[24];
            int configured;
            const char *bv = broker_value(req, k, bbuf, sizeof(bbuf), &configured);
            int bsrc = configured ? SRC_STATIC_BROKER : SRC_DEFAULT;
            const char *gv = NULL;
            if (h->g.set[k->key]) {
                if (k->key == SRV_SGK_AUTO_RESET) {
                    /* by_duration as it was set: the metadata's copy. */
                    const char *id = kp_arena_str(a, h->group_id).p;
                    gv = id ? srv_dyncfg_get(req->shard->meta->groupcfg, id, k->name) : NULL;
                    if (!gv)
                        gv = h->g.val[k->key] == SRV_SHARE_RESET_EARLIEST ? "earliest" : "latest";
                } else if (k->key == SRV_SGK_RENEW_ENABLE) {
                    gv = h->g.val[k->key] ? "true" : "false";
                } else
                    snprintf(gbuf, sizeof(gbuf), "%lld", (long long)h->g.val[k->key]), gv = gbuf;
            }
            dc_entry *e = &o->configs[o->configs_count++];
            kp_describe_configs_response_describe_configs_resource_result_init(e);
            e->name = kp_str_c(k->name);
            e->value = kp_arena_strz(a, gv ? gv : bv);
            e->config_source = (int8_t)(gv ? SRC_GROUP : bsrc);
            e->is_default = req->kr.hdr.request_api_version == 0 && !gv && !configured; /* v0 only */
            e->config_type = k->key == SRV_SGK_AUTO_RESET     ? TYPE_STRING
                             : k->key == SRV_SGK_RENEW_ENABLE ? TYPE_BOOLEAN
                                                              : TYPE_INT;
            e->documentation = KP_STR_NULL;
            e->synonyms = kp_arena_alloc(a, 2 * sizeof(*e->synonyms));
            e->synonyms_count = 0;
            if (!rq->include_synonyms || !e->synonyms)
                continue;
            /* Kafka's synonyms: the group's value, then the broker's. */
            if (gv) {
                kp_describe_configs_response_describe_configs_synonym_init(&e->synonyms[e->synonyms_count]);
                e->synonyms[e->synonyms_count].name = kp_str_c(k->name);
                e->synonyms[e->synonyms_count].value = kp_arena_strz(a, gv);
                e->synonyms[e->synonyms_count++].source = SRC_GROUP;
            }
            kp_describe_configs_response_describe_configs_synonym_init(&e->synonyms[e->synonyms_count]);
            e->synonyms[e->synonyms_count].name = kp_str_c(k->broker ? k->broker : k->name);
            e->synonyms[e->synonyms_count].value = kp_arena_strz(a, bv);
            e->synonyms[e->synonyms_count++].source = (int8_t)bsrc;
        }
    }
    srv_gcall_free(c);
    srv_req_release(req);
}

static void describe_groups_configs(srv_req *req, void (*next)(srv_req *req))
{
    const kp_describe_configs_request *rq = req->kr.body;
    kp_arena *a = &req->arena;
    kp_describe_configs_response *resp = kp_arena_alloc(a, sizeof(*resp));
    if (!resp) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_describe_configs_response_init(resp);
    int32_t n = rq->resources_count;
    resp->results = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*resp->results));
    if (!resp->results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp->results_count = n;
    req->state = resp;
    srv_req_then(req, next ? next : respond_state);
    srv_req_hold(req);
    for (int32_t i = 0; i < n; i++) {
        const kp_describe_configs_request_describe_configs_resource *r = &rq->resources[i];
        dc_result *o = &resp->results[i];
        kp_describe_configs_response_describe_configs_result_init(o);
        o->resource_type = r->resource_type;
        o->resource_name = r->resource_name;
        if (r->resource_type != RES_GROUP)
            continue;                    /* a mixed request: configs.c describes it */
        o->error_message = kp_str_c(""); /* Kafka answers "" rather than null here */
        o->configs = kp_arena_alloc(a, sizeof(*o->configs));
        o->configs_count = 0;
        if (!srv_authorize(req, SRV_OP_DESCRIBE_CONFIGS, SRV_RES_GROUP, r->resource_name)) {
            o->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
            o->error_message = kp_str_c("Group authorization failed.");
            continue;
        }
        dc_call *h = srv_gcall_new(sizeof(*h), dc_run, dc_done);
        if (!h) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        h->group_id = r->resource_name;
        h->r = r;
        h->out = o;
        srv_req_hold(req); /* released by dc_done */
        int16_t err = srv_gcall_send(req, &h->c, r->resource_name);
        if (err) {
            o->error_code = err;
            srv_gcall_free(&h->c);
            srv_req_release(req);
        }
    }
    srv_req_release(req);
}

void srv_h_group_configs(srv_req *req)
{
    if (req->kr.hdr.request_api_key == KP_API_DESCRIBE_CONFIGS)
        describe_groups_configs(req, NULL);
    else
        alter_groups(req, NULL);
}

void srv_group_configs_describe(srv_req *req, void (*next)(srv_req *req))
{
    describe_groups_configs(req, next);
}

const kp_describe_configs_response_describe_configs_result *srv_group_configs_described(const srv_req *req,
                                                                                        int32_t i)
{
    const kp_describe_configs_response *resp = req->state;
    if (!resp || i < 0 || i >= resp->results_count || resp->results[i].resource_type != RES_GROUP)
        return NULL;
    return &resp->results[i];
}

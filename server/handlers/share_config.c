/*
 * share_config.c — share-group configs on GROUP resources (Kafka's
 * GroupConfig, KIP-932's share.* keys): IncrementalAlterConfigs and
 * DescribeConfigs requests whose resources are all groups.
 *
 * The values live with the group on its coordinator shard (share_group.h),
 * reached as group calls; they are validated here first with Kafka 4.4's
 * rules and messages. Kafka's other group keys (consumer.*, streams.*, and
 * the share.* keys kbroker does not apply) are refused with INVALID_CONFIG
 * rather than accepted and ignored.
 *
 * Owns the translation between the wire and srv_share_gconf. Must not: keep
 * group state, or serve any other resource type (configs.c does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "config.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "share_coord.h"
#include "share_group.h"

#define RES_GROUP 32

#define SRC_STATIC_BROKER 4 /* Kafka's ConfigSource values */
#define SRC_DEFAULT       5
#define SRC_GROUP         8
#define TYPE_STRING       2 /* Kafka's ConfigType values */
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
    {"share.session.timeout.ms", SRV_SGK_SESSION_MS, "group.share.session.timeout.ms", 1},
    {"share.heartbeat.interval.ms", SRV_SGK_HEARTBEAT_MS, "group.share.heartbeat.interval.ms", 1},
    {"share.delivery.count.limit", SRV_SGK_DELIVERY_LIMIT, "group.share.delivery.count.limit", 2},
    {"share.record.lock.duration.ms", SRV_SGK_LOCK_MS, "group.share.record.lock.duration.ms", 1000},
    {"share.partition.max.record.locks", SRV_SGK_MAX_LOCKS, "group.share.partition.max.record.locks", 100},
};
#define NKEYS ((int)(sizeof(KEYS) / sizeof(KEYS[0])))

/* Kafka 4.4's other group configs: known names, not applied by kbroker. */
static const char *const UNSUPPORTED[] = {
    "consumer.session.timeout.ms",
    "consumer.heartbeat.interval.ms",
    "consumer.assignment.interval.ms",
    "share.isolation.level",
    "share.renew.acknowledge.enable",
    "share.assignment.interval.ms",
    "streams.assignor.name",
    "streams.session.timeout.ms",
    "streams.heartbeat.interval.ms",
    "streams.num.standby.replicas",
    "streams.initial.rebalance.delay.ms",
    "streams.assignment.interval.ms",
    "streams.rack.aware.assignment.tags",
    "errors.deadletterqueue.topic.name",
    "errors.deadletterqueue.copy.record.enable",
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
    }
    return n > 0;
}

/* The range Kafka checks a group's value against: the broker's bounds. */
static void range_of(const srv_config *cfg, int key, int64_t *lo, int64_t *hi)
{
    const char *l = NULL, *h = NULL;
    switch (key) {
    case SRV_SGK_LOCK_MS:
        l = srv_config_get_raw(cfg, "group.share.min.record.lock.duration.ms");
        h = srv_config_get_raw(cfg, "group.share.max.record.lock.duration.ms");
        *lo = l ? atoll(l) : 15000;
        *hi = h ? atoll(h) : 60000;
        return;
    case SRV_SGK_SESSION_MS: /* Kafka's group.share.min/max.session.timeout.ms */
        *lo = 45000, *hi = 60000;
        return;
    case SRV_SGK_HEARTBEAT_MS: /* group.share.min/max.heartbeat.interval.ms */
        *lo = 5000, *hi = 15000;
        return;
    case SRV_SGK_DELIVERY_LIMIT: /* group.share.min/max.delivery.count.limit */
        *lo = 2, *hi = 10;
        return;
    case SRV_SGK_MAX_LOCKS: /* group.share.min/max.partition.max.record.locks */
        *lo = 100, *hi = 4000;
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

/* Validates one alteration; 0, or the error with Kafka's message in m. */
static int16_t check_one(const srv_config *cfg,
                         const kp_incremental_alter_configs_request_alterable_config *c, const gkey **kout,
                         int64_t *val, mbuf *m)
{
    const gkey *k = find_key(c->name);
    if (!k) {
        for (size_t i = 0; i < sizeof(UNSUPPORTED) / sizeof(UNSUPPORTED[0]); i++)
            if (kp_str_eq(c->name, UNSUPPORTED[i])) {
                m_txt(m, "Group config ");
                m_str(m, c->name);
                m_txt(m, " is not supported by kbroker.");
                return KP_ERR_INVALID_CONFIG;
            }
        m_txt(m, "Unknown group config name: ");
        m_str(m, c->name);
        return KP_ERR_INVALID_CONFIG;
    }
    *kout = k;
    if (c->config_operation == 1)
        return 0; /* DELETE: back to the broker's value */
    if (c->config_operation == 2 || c->config_operation == 3) {
        m_txt(m, "Can't ");
        m_txt(m, c->config_operation == 2 ? "APPEND" : "SUBTRACT");
        m_txt(m, " to key ");
        m_txt(m, k->name);
        m_txt(m, " because its type is not LIST.");
        return KP_ERR_INVALID_CONFIG;
    }
    if (c->config_operation != 0) {
        m_txt(m, "Unknown config operation.");
        return KP_ERR_INVALID_REQUEST;
    }
    if (k->key == SRV_SGK_AUTO_RESET) {
        if (kp_str_eq(c->value, "earliest") || kp_str_eq(c->value, "latest")) {
            *val = kp_str_eq(c->value, "earliest");
            return 0;
        }
        if (c->value.len >= 12 && memcmp(c->value.p, "by_duration:", 12) == 0) {
            /* Kafka takes it; kbroker cannot yet look a share-partition's
             * start up by timestamp, so it refuses rather than ignore it. */
            m_txt(m, "share.auto.offset.reset=by_duration is not supported by kbroker.");
            return KP_ERR_INVALID_CONFIG;
        }
        m_invalid(m, c->value, k->name);
        m_txt(m, "Invalid value `");
        m_str(m, c->value);
        m_txt(m, "` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' "
                 "or of "
                 "the format 'by_duration:<PnDTnHnMn.nS>'.");
        return KP_ERR_INVALID_CONFIG;
    }
    if (parse_int(c->value, val) < 0) {
        m_invalid(m, c->value, k->name);
        m_txt(m, "Not a number of type INT");
        return KP_ERR_INVALID_CONFIG;
    }
    if (*val < k->at_least) {
        m_invalid(m, c->value, k->name);
        m_txt(m, "Value must be at least ");
        m_i64(m, k->at_least);
        return KP_ERR_INVALID_CONFIG;
    }
    int64_t lo, hi;
    range_of(cfg, k->key, &lo, &hi);
    if (*val < lo || *val > hi) {
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

/* ---- IncrementalAlterConfigs ------------------------------------------------ */

typedef struct gchange {
    int key;
    int del;
    int64_t val;
} gchange;

typedef struct iac_call {
    srv_gcall c;
    kp_str group_id;
    gchange *ch; /* in the request's arena */
    int nch;
    int validate_only;
    kp_incremental_alter_configs_response_alter_configs_resource_response *out;
} iac_call;

static void iac_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    iac_call *h = (iac_call *)c;
    srv_share_groups *sg = srv_share_store(owner);
    if (!sg) {
        c->error = KP_ERR_UNKNOWN_SERVER_ERROR;
    } else if (!h->validate_only) {
        srv_share_gconf g;
        srv_share_gconf_get(sg, h->group_id, &g);
        for (int i = 0; i < h->nch; i++) {
            g.set[h->ch[i].key] = !h->ch[i].del;
            g.val[h->ch[i].key] = h->ch[i].val;
        }
        if (srv_share_gconf_put(sg, h->group_id, &g) < 0)
            c->error = KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    srv_call_reply(owner, &c->call);
}

static void iac_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    iac_call *h = (iac_call *)c;
    srv_req *req = c->call.req;
    h->out->error_code = c->error;
    srv_gcall_free(c);
    srv_req_release(req);
}

static void respond_state(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void alter_groups(srv_req *req)
{
    const kp_incremental_alter_configs_request *rq = req->kr.body;
    kp_arena *a = &req->arena;
    const srv_config *cfg = &req->shard->b->cfg;
    kp_incremental_alter_configs_response *resp = kp_arena_alloc(a, sizeof(*resp));
    if (!resp) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_incremental_alter_configs_response_init(resp);
    int32_t n = rq->resources_count;
    resp->responses = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*resp->responses));
    if (!resp->responses) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp->responses_count = n;
    req->state = resp;
    srv_req_then(req, respond_state);
    srv_req_hold(req);
    for (int32_t i = 0; i < n; i++) {
        const kp_incremental_alter_configs_request_alter_configs_resource *r = &rq->resources[i];
        kp_incremental_alter_configs_response_alter_configs_resource_response *o = &resp->responses[i];
        kp_incremental_alter_configs_response_alter_configs_resource_response_init(o);
        o->resource_type = r->resource_type;
        o->resource_name = r->resource_name;
        o->error_message = KP_STR_NULL;
        if (!srv_authorize(req, SRV_OP_ALTER_CONFIGS, SRV_RES_GROUP, r->resource_name)) {
            o->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
            o->error_message = kp_str_c("Group authorization failed.");
            continue;
        }
        if (r->resource_name.len <= 0) {
            o->error_code = KP_ERR_INVALID_REQUEST;
            o->error_message = kp_str_c("Default group resources are not allowed.");
            continue;
        }
        int32_t nc = r->configs_count > 0 ? r->configs_count : 0;
        gchange *ch = kp_arena_alloc(a, ((size_t)nc + 1) * sizeof(*ch));
        iac_call *h = ch ? srv_gcall_new(sizeof(*h), iac_run, iac_done) : NULL;
        if (!h) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        /* As Kafka: the whole resource is refused at its first bad entry. */
        int16_t err = 0;
        for (int32_t k = 0; !err && k < nc; k++) {
            mbuf m = {.n = 0};
            const gkey *key = NULL;
            int64_t val = 0;
            err = check_one(cfg, &r->configs[k], &key, &val, &m);
            if (err) {
                o->error_code = err;
                o->error_message = kp_arena_str(a, (kp_str){m.b, m.n});
                break;
            }
            ch[k] = (gchange){.key = key->key, .del = r->configs[k].config_operation == 1, .val = val};
        }
        if (err) {
            srv_gcall_free(&h->c);
            continue;
        }
        h->group_id = r->resource_name;
        h->ch = ch;
        h->nch = nc;
        h->validate_only = rq->validate_only;
        h->out = o;
        srv_req_hold(req); /* released by iac_done */
        err = srv_gcall_send(req, &h->c, r->resource_name);
        if (err) {
            o->error_code = err;
            srv_gcall_free(&h->c);
            srv_req_release(req);
        }
    }
    srv_req_release(req);
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
                if (k->key == SRV_SGK_AUTO_RESET)
                    gv = h->g.val[k->key] ? "earliest" : "latest";
                else
                    snprintf(gbuf, sizeof(gbuf), "%lld", (long long)h->g.val[k->key]), gv = gbuf;
            }
            dc_entry *e = &o->configs[o->configs_count++];
            kp_describe_configs_response_describe_configs_resource_result_init(e);
            e->name = kp_str_c(k->name);
            e->value = kp_arena_strz(a, gv ? gv : bv);
            e->config_source = (int8_t)(gv ? SRC_GROUP : bsrc);
            e->is_default = req->kr.hdr.request_api_version == 0 && !gv && !configured; /* v0 only */
            e->config_type = k->key == SRV_SGK_AUTO_RESET ? TYPE_STRING : TYPE_INT;
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

static void describe_groups_configs(srv_req *req)
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
    srv_req_then(req, respond_state);
    srv_req_hold(req);
    for (int32_t i = 0; i < n; i++) {
        const kp_describe_configs_request_describe_configs_resource *r = &rq->resources[i];
        dc_result *o = &resp->results[i];
        kp_describe_configs_response_describe_configs_result_init(o);
        o->resource_type = r->resource_type;
        o->resource_name = r->resource_name;
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
        describe_groups_configs(req);
    else
        alter_groups(req);
}

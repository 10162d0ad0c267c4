/*
 * configs.c — DescribeConfigs (v0-4), AlterConfigs (v0-2) and
 * IncrementalAlterConfigs (v0-1) for topics and this broker.
 *
 * Topic changes go through the controller (durable, then published); broker
 * configs are static in this version: describing them works, altering them
 * is refused with INVALID_CONFIG and says why, except the key and trust
 * store locations of a TLS listener through IncrementalAlterConfigs, which
 * reload its certificate (tls.h; in memory only) before the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "controller.h"
#include "tls.h"
#include "topic_config.h"

#define RES_TOPIC         2
#define RES_BROKER        4
#define RES_BROKER_LOGGER 8

/* ---- DescribeConfigs ------------------------------------------------- */

static void put_entry(srv_req *req, kp_describe_configs_response_describe_configs_resource_result *o,
                      const srv_config_entry *e, const kp_describe_configs_request *rq)
{
    int16_t v = req->kr.hdr.request_api_version;
    kp_describe_configs_response_describe_configs_resource_result_init(o);
    o->name = kp_arena_strz(&req->arena, e->name);
    o->value = e->value_null ? KP_STR_NULL : kp_arena_strz(&req->arena, e->value);
    o->read_only = (uint8_t)e->read_only;
    o->is_sensitive = (uint8_t)e->sensitive;
    if (v == 0)
        o->is_default = e->source == SRV_SOURCE_DEFAULT_CONFIG;
    else
        o->config_source = (int8_t)e->source;
    o->synonyms_count = 0;
    if (v >= 1 && rq->include_synonyms && e->n_synonyms > 0) {
        o->synonyms = kp_arena_alloc(&req->arena, (size_t)e->n_synonyms * sizeof(*o->synonyms));
        for (int i = 0; o->synonyms && i < e->n_synonyms; i++) {
            o->synonyms[i].name = kp_arena_strz(&req->arena, e->synonyms[i].name);
            o->synonyms[i].value =
                e->synonyms[i].value_null ? KP_STR_NULL : kp_arena_strz(&req->arena, e->synonyms[i].value);
            o->synonyms[i].source = (int8_t)e->synonyms[i].source;
            o->synonyms_count++;
        }
    }
    if (v >= 3) {
        o->config_type = (int8_t)e->type;
        o->documentation = rq->include_documentation ? kp_arena_strz(&req->arena, e->doc) : KP_STR_NULL;
    }
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

void srv_h_describe_configs(srv_req *req)
{
    const kp_describe_configs_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    const srv_config *cfg = &s->b->cfg;
    kp_describe_configs_response resp;
    kp_describe_configs_response_init(&resp);
    int32_t n = rq->resources_count > 0 ? rq->resources_count : 0;
    resp.results = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp.results) + 1);
    if (!resp.results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp.results_count = n;
    static __thread srv_config_entry e; /* ~8 KiB: off the stack */
    static __thread srv_topic_config tc;
    for (int32_t i = 0; i < n; i++) {
        const kp_describe_configs_request_describe_configs_resource *r = &rq->resources[i];
        kp_describe_configs_response_describe_configs_result *o = &resp.results[i];
        kp_describe_configs_response_describe_configs_result_init(o);
        o->resource_type = r->resource_type;
        o->resource_name = r->resource_name;
        const srv_topic *t = NULL;
        size_t count = 0;
        /* As Kafka: DESCRIBE_CONFIGS on the topic or the cluster, before
         * anything about the resource is looked at. */
        if (r->resource_type == RES_TOPIC &&
            !srv_authorize(req, SRV_OP_DESCRIBE_CONFIGS, SRV_RES_TOPIC, r->resource_name)) {
            o->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            o->error_message = kp_str_c("Topic authorization failed.");
            continue;
        }
        if ((r->resource_type == RES_BROKER || r->resource_type == RES_BROKER_LOGGER) &&
            !srv_authorize_cluster(req, SRV_OP_DESCRIBE_CONFIGS)) {
            o->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
            o->error_message = kp_str_c("Cluster authorization failed.");
            continue;
        }
        if (r->resource_type == RES_TOPIC) {
            t = srv_meta_topic(s->meta, r->resource_name);
            if (!t) {
                o->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                o->error_message = kp_str_c("Topic does not exist.");
                continue;
            }
            srv_topic_overrides(t, &tc);
            count = srv_topic_config_key_count();
        } else if (r->resource_type == RES_BROKER) {
            char id[16];
            snprintf(id, sizeof(id), "%d", (int)cfg->node_id);
            if (r->resource_name.len > 0 && !kp_str_eq(r->resource_name, id)) {
                o->error_code = KP_ERR_INVALID_REQUEST;
                o->error_message = kp_str_c("Unexpected broker id: this broker's node.id differs.");
                continue;
            }
            count = srv_config_key_count();
        } else {
            o->error_code = KP_ERR_INVALID_REQUEST;
            o->error_message = kp_str_c("Only topic and broker resources can be described.");
            continue;
        }
        o->configs = kp_arena_alloc(&req->arena, count * sizeof(*o->configs) + 1);
        if (!o->configs) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        o->configs_count = 0;
        for (size_t k = 0; k < count; k++) {
            int ok = t ? srv_topic_config_describe(cfg, &tc, k, &e) : srv_config_describe(cfg, k, &e);
            if (ok != 1 || !wanted(r, e.name))
                continue;
            put_entry(req, &o->configs[o->configs_count++], &e, rq);
        }
    }
    srv_req_respond(req, &resp);
}

/* ---- AlterConfigs / IncrementalAlterConfigs ----------------------------- */

typedef struct alter_state {
    srv_ctl_op op;
    srv_req *req;
    int16_t *errors; /* per resource, before the controller */
    char **messages;
    int *spec_of; /* resource -> spec index, -1 when not sent */
    int nres;
    int incremental;
} alter_state;

/* ---- the broker resource: certificate reload (KIP-856's path) ------------ */

typedef struct reload_ctx {
    alter_state *st;
    int res; /* the resource index */
} reload_ctx;

static void reload_done(srv_req *req, void *arg, int ok, const char *msg)
{
    reload_ctx *rc = arg;
    if (!ok && rc->st->errors[rc->res] == KP_ERR_NONE) {
        /* Kafka answers a key store it cannot use with INVALID_REQUEST. */
        rc->st->errors[rc->res] = KP_ERR_INVALID_REQUEST;
        kp_str m = kp_arena_strz(&req->arena, msg);
        rc->st->messages[rc->res] = m.p ? (char *)m.p : "The key store cannot be used.";
    }
}

static int is_suffix(const char *key, size_t kl, const char *suffix)
{
    size_t sl = strlen(suffix);
    return kl >= sl && memcmp(key + kl - sl, suffix, sl) == 0;
}

/* A broker resource of IncrementalAlterConfigs: the key and trust store
 * locations of a TLS listener (listener.name.<l>.ssl.keystore.location /
 * ssl.truststore.location) are reloaded off the loop, as Kafka does; any
 * other broker key is static here. Returns the number of reloads started
 * (0: the resource got its answer in st). */
static int alter_broker(srv_req *req, alter_state *st, int i,
                        const kp_incremental_alter_configs_request_alter_configs_resource *r,
                        uint8_t validate_only)
{
    srv_broker *b = req->shard->b;
    char id[16];
    snprintf(id, sizeof(id), "%d", (int)b->cfg.node_id);
    st->errors[i] = KP_ERR_INVALID_CONFIG;
    st->messages[i] = "Broker configs are static in this version: edit server.properties and restart (only "
                      "listener.name.<listener>.ssl.keystore.location and ssl.truststore.location can be "
                      "set, to reload certificates).";
    if (r->resource_type != RES_BROKER || !kp_str_eq(r->resource_name, id) || r->configs_count <= 0)
        return 0;
    const char *ks[SRV_MAX_LISTENERS] = {0}, *ts[SRV_MAX_LISTENERS] = {0};
    for (int32_t j = 0; j < r->configs_count; j++) {
        const kp_incremental_alter_configs_request_alterable_config *c = &r->configs[j];
        size_t kl = c->name.len > 0 ? (size_t)c->name.len : 0;
        const char *key = c->name.p;
        int isks = kl && is_suffix(key, kl, ".ssl.keystore.location"),
            ists = kl && is_suffix(key, kl, ".ssl.truststore.location");
        if ((kl == strlen("ssl.keystore.location") && memcmp(key, "ssl.keystore.location", kl) == 0) ||
            (kl == strlen("ssl.truststore.location") && memcmp(key, "ssl.truststore.location", kl) == 0)) {
            /* Kafka's wording. */
            st->errors[i] = KP_ERR_INVALID_REQUEST;
            st->messages[i] = "These security configs can be dynamically updated only per-listener using the "
                              "listener prefix";
            return 0;
        }
        static const char pre[] = "listener.name.";
        if (!(isks || ists) || kl <= sizeof(pre) - 1 || memcmp(key, pre, sizeof(pre) - 1) != 0 ||
            c->config_operation != 0 /* SET */ || c->value.len <= 0 ||
            memchr(c->value.p, 0, (size_t)c->value.len))
            return 0;
        size_t nl =
            kl - (sizeof(pre) - 1) - strlen(isks ? ".ssl.keystore.location" : ".ssl.truststore.location");
        int l = -1;
        for (int k = 0; k < b->cfg.n_listeners && l < 0; k++)
            if (strlen(b->cfg.listeners[k].name) == nl &&
                strncasecmp(b->cfg.listeners[k].name, key + sizeof(pre) - 1, nl) == 0)
                l = k;
        if (l < 0 || !b->tls_ctx[l]) {
            st->errors[i] = KP_ERR_INVALID_REQUEST;
            st->messages[i] = "No SSL or SASL_SSL listener of that name on this broker.";
            return 0;
        }
        const char *v = kp_arena_str(&req->arena, c->value).p;
        if (!v) {
            srv_req_fail_close(req, "out of memory");
            return -1;
        }
        if (isks)
            ks[l] = v;
        else
            ts[l] = v;
    }
    st->errors[i] = KP_ERR_NONE;
    st->messages[i] = NULL;
    int started = 0;
    for (int l = 0; l < b->cfg.n_listeners; l++) {
        if (!ks[l] && !ts[l])
            continue;
        reload_ctx *rc = kp_arena_alloc(&req->arena, sizeof(*rc));
        if (!rc) {
            srv_req_fail_close(req, "out of memory");
            return -1;
        }
        rc->st = st;
        rc->res = i;
        srv_tls_reload_async(req, b->tls_ctx[l], ks[l], ts[l], validate_only, reload_done, rc);
        started++;
    }
    return started;
}

static void submit_after_reloads(srv_req *req)
{
    alter_state *st = req->state;
    srv_ctl_submit(req->shard, req, &st->op);
}

static void alter_done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    alter_state *st = (alter_state *)op;
    srv_req *req = st->req;
    if (st->incremental) {
        const kp_incremental_alter_configs_request *rq = req->kr.body;
        kp_incremental_alter_configs_response resp;
        kp_incremental_alter_configs_response_init(&resp);
        resp.responses = kp_arena_alloc(&req->arena, (size_t)st->nres * sizeof(*resp.responses) + 1);
        resp.responses_count = resp.responses ? st->nres : 0;
        for (int i = 0; i < resp.responses_count; i++) {
            kp_incremental_alter_configs_response_alter_configs_resource_response *o = &resp.responses[i];
            kp_incremental_alter_configs_response_alter_configs_resource_response_init(o);
            o->resource_type = rq->resources[i].resource_type;
            o->resource_name = rq->resources[i].resource_name;
            const srv_topic_spec *sp =
                st->spec_of[i] >= 0 && !op->specs[st->spec_of[i]].skip ? &op->specs[st->spec_of[i]] : NULL;
            o->error_code = sp ? sp->error : st->errors[i];
            o->error_message =
                sp ? (sp->error ? kp_str_c(sp->message) : KP_STR_NULL) : kp_str_c(st->messages[i]);
        }
        srv_req_respond(req, &resp);
    } else {
        const kp_alter_configs_request *rq = req->kr.body;
        kp_alter_configs_response resp;
        kp_alter_configs_response_init(&resp);
        resp.responses = kp_arena_alloc(&req->arena, (size_t)st->nres * sizeof(*resp.responses) + 1);
        resp.responses_count = resp.responses ? st->nres : 0;
        for (int i = 0; i < resp.responses_count; i++) {
            kp_alter_configs_response_alter_configs_resource_response *o = &resp.responses[i];
            kp_alter_configs_response_alter_configs_resource_response_init(o);
            o->resource_type = rq->resources[i].resource_type;
            o->resource_name = rq->resources[i].resource_name;
            const srv_topic_spec *sp =
                st->spec_of[i] >= 0 && !op->specs[st->spec_of[i]].skip ? &op->specs[st->spec_of[i]] : NULL;
            o->error_code = sp ? sp->error : st->errors[i];
            o->error_message =
                sp ? (sp->error ? kp_str_c(sp->message) : KP_STR_NULL) : kp_str_c(st->messages[i]);
        }
        srv_req_respond(req, &resp);
    }
}

/* Common to both APIs: resource checks, then one controller op. */
static void alter(srv_req *req, int incremental)
{
    srv_shard *s = req->shard;
    int32_t n;
    uint8_t validate_only;
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
    alter_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    srv_topic_spec *specs = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*specs) + 1);
    if (!st || !specs || !(st->errors = kp_arena_alloc(&req->arena, (size_t)n * sizeof(int16_t) + 1)) ||
        !(st->messages = kp_arena_alloc(&req->arena, (size_t)n * sizeof(char *) + 1)) ||
        !(st->spec_of = kp_arena_alloc(&req->arena, (size_t)n * sizeof(int) + 1))) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->req = req;
    st->nres = n;
    st->incremental = incremental;
    int nspecs = 0, reloads = 0;
    for (int32_t i = 0; i < n; i++) {
        int8_t type;
        kp_str name;
        int32_t nc;
        if (incremental) {
            const kp_incremental_alter_configs_request_alter_configs_resource *r =
                &((const kp_incremental_alter_configs_request *)req->kr.body)->resources[i];
            type = r->resource_type;
            name = r->resource_name;
            nc = r->configs_count;
        } else {
            const kp_alter_configs_request_alter_configs_resource *r =
                &((const kp_alter_configs_request *)req->kr.body)->resources[i];
            type = r->resource_type;
            name = r->resource_name;
            nc = r->configs_count;
        }
        st->spec_of[i] = -1;
        st->messages[i] = NULL;
        if (type == RES_TOPIC && !srv_authorize(req, SRV_OP_ALTER_CONFIGS, SRV_RES_TOPIC, name)) {
            st->errors[i] = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            st->messages[i] = "Topic authorization failed.";
            continue;
        }
        if ((type == RES_BROKER || type == RES_BROKER_LOGGER) &&
            !srv_authorize_cluster(req, SRV_OP_ALTER_CONFIGS)) {
            st->errors[i] = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
            st->messages[i] = "Cluster authorization failed.";
            continue;
        }
        if (type == RES_BROKER && incremental) {
            if (!reloads++)
                srv_req_hold(req); /* the reloads answer before the controller op is sent */
            if (alter_broker(req, st, i,
                             &((const kp_incremental_alter_configs_request *)req->kr.body)->resources[i],
                             validate_only) < 0) {
                srv_req_release(req);
                return;
            }
            continue;
        }
        if (type == RES_BROKER || type == RES_BROKER_LOGGER) {
            st->errors[i] = KP_ERR_INVALID_CONFIG;
            st->messages[i] =
                "Broker configs are static in this version: edit server.properties and restart.";
            continue;
        }
        if (type != RES_TOPIC) {
            st->errors[i] = KP_ERR_INVALID_REQUEST;
            st->messages[i] = "Unsupported resource type.";
            continue;
        }
        if (!srv_meta_topic(s->meta, name)) {
            st->errors[i] = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            st->messages[i] = "Topic does not exist.";
            continue;
        }
        srv_topic_spec *sp = &specs[nspecs];
        memset(sp, 0, sizeof(*sp));
        sp->name = name;
        sp->replace_all = !incremental;
        if (nc < 0)
            nc = 0;
        sp->alter = kp_arena_alloc(&req->arena, (size_t)nc * sizeof(*sp->alter) + 1);
        for (int32_t j = 0; j < nc && sp->alter; j++) {
            srv_cfg_alter *a = &sp->alter[sp->nalter++];
            kp_str key, value;
            if (incremental) {
                const kp_incremental_alter_configs_request_alterable_config *c =
                    &((const kp_incremental_alter_configs_request *)req->kr.body)->resources[i].configs[j];
                a->op = c->config_operation;
                key = c->name;
                value = c->value;
            } else {
                const kp_alter_configs_request_alterable_config *c =
                    &((const kp_alter_configs_request *)req->kr.body)->resources[i].configs[j];
                a->op = c->value.len < 0 ? SRV_ALTER_DELETE : SRV_ALTER_SET;
                key = c->name;
                value = c->value;
            }
            a->key = kp_arena_str(&req->arena, key).p;
            a->value = kp_arena_str(&req->arena, value).p;
            if (!a->key) {
                st->errors[i] = KP_ERR_INVALID_REQUEST;
                st->messages[i] = "Null config name.";
                sp->skip = 1;
            } else if (memchr(key.p, 0, (size_t)key.len) ||
                       (value.len > 0 && memchr(value.p, 0, (size_t)value.len))) {
                /* The validators see C strings: "retention.ms\0x" would be
                 * retention.ms, "1000\0x" 1000. No topic config takes a NUL. */
                st->errors[i] = KP_ERR_INVALID_CONFIG;
                st->messages[i] = "A config name or value contains a NUL byte.";
                sp->skip = 1;
            }
        }
        st->spec_of[i] = nspecs++;
    }
    st->op.kind = SRV_CTL_ALTER_CONFIGS;
    st->op.validate_only = validate_only;
    st->op.nspecs = nspecs;
    st->op.specs = specs;
    st->op.done = alter_done;
    if (reloads) {
        req->state = st;
        srv_req_then(req, submit_after_reloads);
        srv_req_release(req);
        return;
    }
    srv_ctl_submit(s, req, &st->op);
}

void srv_h_alter_configs(srv_req *req)
{
    alter(req, 0);
}
void srv_h_incremental_alter_configs(srv_req *req)
{
    alter(req, 1);
}

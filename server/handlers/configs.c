/*
 * configs.c — DescribeConfigs (v0-4), AlterConfigs (v0-2) and
 * IncrementalAlterConfigs (v0-1) for topics and this broker.
 *
 * Topic changes go through the controller (durable, then published); broker
 * configs are static except the key and trust store locations of a TLS
 * listener, which IncrementalAlterConfigs sets as dynamic broker configs
 * (dyncfg.h, Kafka's DYNAMIC_BROKER_CONFIG): checked by loading them off the
 * loop, made durable in the metadata log, then loaded for new connections
 * (tls.h) before the answer; AlterConfigs replaces the resource's dynamic
 * values with the ones it lists, as Kafka does. Any other broker change is
 * refused with INVALID_CONFIG and says why. Requests naming only GROUP
 * resources go to share_config.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "controller.h"
#include "dyncfg.h"
#include "tls.h"
#include "topic_config.h"

#define RES_TOPIC         2
#define RES_BROKER        4
#define RES_BROKER_LOGGER 8
#define RES_GROUP         32

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

/* A dynamic value over what the configuration gives (e): Kafka's order of
 * synonyms is per-broker dynamic, cluster-default dynamic, static, default;
 * the value and source are the first one's. */
static void overlay_dynamic(srv_config_entry *e, const srv_dyncfg *d, const char *id)
{
    if (!d)
        return;
    /* Stored keys spell the listener in lower case; the configuration may not. */
    char canon[SRV_CONFIG_NAME_MAX + 64];
    const char *key = e->name;
    static const char pre[] = "listener.name.";
    const char *dot = strncmp(key, pre, sizeof(pre) - 1) == 0 ? strchr(key + sizeof(pre) - 1, '.') : NULL;
    if (dot && srv_dyncfg_listener_key(canon, sizeof(canon), key + sizeof(pre) - 1,
                                       (size_t)(dot - (key + sizeof(pre) - 1)), dot + 1) == 0)
        key = canon;
    const char *mine = id[0] ? srv_dyncfg_get(d, id, key) : NULL, *dflt = srv_dyncfg_get(d, "", key);
    const char *vals[2] = {mine, dflt};
    const int srcs[2] = {SRV_SOURCE_DYNAMIC_BROKER_CONFIG, SRV_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG};
    for (int k = 1; k >= 0; k--) {
        if (!vals[k])
            continue;
        int n = e->n_synonyms < SRV_CONFIG_MAX_SYNONYMS ? e->n_synonyms : SRV_CONFIG_MAX_SYNONYMS - 1;
        memmove(&e->synonyms[1], &e->synonyms[0], (size_t)n * sizeof(e->synonyms[0]));
        srv_config_synonym *sy = &e->synonyms[0];
        sy->name = e->name;
        sy->value_null = e->sensitive;
        snprintf(sy->value, sizeof(sy->value), "%s", e->sensitive ? "" : vals[k]);
        sy->source = srcs[k];
        e->n_synonyms = n + 1;
    }
    if (mine || dflt) {
        e->value_null = e->sensitive;
        snprintf(e->value, sizeof(e->value), "%s", e->sensitive ? "" : mine ? mine : dflt);
        e->source = mine ? srcs[0] : srcs[1];
    }
}

static void describe(srv_req *req);

void srv_h_describe_configs(srv_req *req)
{
    if (srv_group_configs_only(req)) {
        srv_h_group_configs(req); /* share-group configs (share_config.c) */
        return;
    }
    if (srv_group_configs_any(req)) {
        srv_group_configs_describe(req, describe); /* the GROUP resources first */
        return;
    }
    describe(req);
}

static void describe(srv_req *req)
{
    const kp_describe_configs_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    const srv_config *cfg = &s->b->cfg;
    const srv_dyncfg *dyn = s->meta->dyncfg;
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
    char id[16];
    snprintf(id, sizeof(id), "%d", (int)cfg->node_id);
    for (int32_t i = 0; i < n; i++) {
        const kp_describe_configs_request_describe_configs_resource *r = &rq->resources[i];
        kp_describe_configs_response_describe_configs_result *o = &resp.results[i];
        kp_describe_configs_response_describe_configs_result_init(o);
        o->resource_type = r->resource_type;
        o->resource_name = r->resource_name;
        const kp_describe_configs_response_describe_configs_result *g =
            r->resource_type == RES_GROUP ? srv_group_configs_described(req, i) : NULL;
        if (g) {
            *o = *g; /* share_config.c's, a mixed request */
            continue;
        }
        const srv_topic *t = NULL;
        size_t count = 0;
        int cluster_default = 0;
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
            if (r->resource_name.len > 0 && !kp_str_eq(r->resource_name, id)) {
                o->error_code = KP_ERR_INVALID_REQUEST;
                o->error_message = kp_str_c("Unexpected broker id: this broker's node.id differs.");
                continue;
            }
            /* The "" resource is the cluster default: Kafka lists only what
             * was set there dynamically. */
            cluster_default = r->resource_name.len == 0;
            count = cluster_default ? 0 : srv_config_key_count();
        } else {
            o->error_code = KP_ERR_INVALID_REQUEST;
            o->error_message = kp_str_c("Only topic and broker resources can be described.");
            continue;
        }
        size_t ndyn = dyn && r->resource_type == RES_BROKER ? (size_t)dyn->n : 0;
        o->configs = kp_arena_alloc(&req->arena, (count + ndyn) * sizeof(*o->configs) + 1);
        if (!o->configs) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        o->configs_count = 0;
        for (size_t k = 0; k < count; k++) {
            int ok = t ? srv_topic_config_describe(cfg, &tc, k, &e) : srv_config_describe(cfg, k, &e);
            if (ok != 1 || !wanted(r, e.name))
                continue;
            if (!t)
                overlay_dynamic(&e, dyn, id);
            put_entry(req, &o->configs[o->configs_count++], &e, rq);
        }
        /* Dynamic keys the configuration does not list (a listener's trust
         * store set only dynamically), each once. */
        for (size_t k = 0; k < ndyn; k++) {
            const srv_dyncfg_kv *kv = &dyn->kv[k];
            if (cluster_default) {
                if (kv->resource[0] || !wanted(r, kv->key))
                    continue;
                if (srv_config_describe_name(cfg, kv->key, &e) != 0 &&
                    srv_config_describe_listener_key(cfg, kv->key, &e) != 0)
                    continue;
                /* Only the default's own value, as Kafka lists it here. */
                e.n_synonyms = 0;
                overlay_dynamic(&e, dyn, "");
                put_entry(req, &o->configs[o->configs_count++], &e, rq);
                continue;
            }
            if ((kv->resource[0] && strcmp(kv->resource, id) != 0) || !wanted(r, kv->key) ||
                (kv->resource[0] && srv_dyncfg_get(dyn, "", kv->key)) ||
                srv_config_describe_name(cfg, kv->key, &e) == 0 ||
                srv_config_describe_listener_key(cfg, kv->key, &e) != 0)
                continue;
            overlay_dynamic(&e, dyn, id);
            put_entry(req, &o->configs[o->configs_count++], &e, rq);
        }
    }
    srv_req_respond(req, &resp);
}

/* ---- AlterConfigs / IncrementalAlterConfigs ----------------------------- */

/* What a request changes of one TLS listener: the key and trust store
 * locations it loads once the change is durable (NULL: the one in use
 * stays, "": none, the configured inline key). */
typedef struct tls_plan {
    int res; /* the resource that asks; -1: no change */
    const char *ks, *ts;
} tls_plan;

typedef struct alter_state {
    srv_ctl_op op;
    srv_req *req;
    int16_t *errors; /* per resource, before the controller */
    char **messages;
    int *spec_of; /* resource -> spec index, -1 when not sent */
    int nres;
    int incremental;
    uint8_t validate_only;
    /* Dynamic broker configs: the changes (and the resource of each), sent
     * as one controller op of their own before the topic one. */
    srv_ctl_op bop;
    srv_dyncfg_change *dyn;
    int *dyn_res;
    int ndyn;
    tls_plan tls[SRV_MAX_LISTENERS];
} alter_state;

/* ---- the broker resource: dynamic key and trust store locations ---------- */

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

static int is_key(const char *key, size_t kl, const char *name)
{
    return kl == strlen(name) && memcmp(key, name, kl) == 0;
}

/* The location a listener falls back to when no dynamic value applies: its
 * static one ("" when it has none: an inline key, no trust store). */
static const char *static_location(const srv_config *cfg, const char *listener, int keystore)
{
    if (keystore && srv_config_sec(cfg, listener, "ssl.keystore.certificate.chain"))
        return "";
    const char *v =
        srv_config_sec(cfg, listener, keystore ? "ssl.keystore.location" : "ssl.truststore.location");
    return v ? v : "";
}

static void refuse(alter_state *st, int i, int16_t err, const char *msg)
{
    st->errors[i] = err;
    st->messages[i] = (char *)msg;
}

#define STATIC_MSG                                                                                           \
    "Broker configs are static in this version: edit server.properties and restart (only "                   \
    "listener.name.<listener>.ssl.keystore.location and ssl.truststore.location can be set, to reload "      \
    "certificates)."

/* A broker resource of IncrementalAlterConfigs: the key and trust store
 * locations of a TLS listener (listener.name.<l>.ssl.keystore.location /
 * ssl.truststore.location) become dynamic broker configs of this broker
 * (SET) or go back to what applies without them (DELETE); the cluster
 * default ("") cannot take them, as in Kafka (they are per broker); any other
 * broker key is static here. Adds the changes to st->dyn and what they load
 * to st->tls; the resource's answer is in st. -1: out of memory (the request
 * is closed). */
static int alter_broker(srv_req *req, alter_state *st, int i,
                        const kp_incremental_alter_configs_request_alter_configs_resource *r)
{
    srv_broker *b = req->shard->b;
    const srv_dyncfg *d = req->shard->meta->dyncfg;
    char idbuf[16];
    snprintf(idbuf, sizeof(idbuf), "%d", (int)b->cfg.node_id);
    int is_default = r->resource_name.len == 0;
    refuse(st, i, KP_ERR_INVALID_CONFIG, STATIC_MSG);
    if (r->resource_type != RES_BROKER || (!is_default && !kp_str_eq(r->resource_name, idbuf)) ||
        r->configs_count <= 0)
        return 0;
    const char *res = is_default ? "" : kp_arena_strz(&req->arena, idbuf).p;
    if (!res) {
        srv_req_fail_close(req, "out of memory");
        return -1;
    }
    int n0 = st->ndyn;
    tls_plan plan[SRV_MAX_LISTENERS];
    memcpy(plan, st->tls, sizeof(plan));
    char per_broker[512] = "";
    size_t pb = 0;
    for (int32_t j = 0; j < r->configs_count; j++) {
        const kp_incremental_alter_configs_request_alterable_config *c = &r->configs[j];
        size_t kl = c->name.len > 0 ? (size_t)c->name.len : 0;
        const char *key = c->name.p;
        int op = c->config_operation;
        int plain_ks = is_key(key, kl, "ssl.keystore.location"),
            plain_ts = is_key(key, kl, "ssl.truststore.location");
        int isks = kl && is_suffix(key, kl, ".ssl.keystore.location"),
            ists = kl && is_suffix(key, kl, ".ssl.truststore.location");
        static const char pre[] = "listener.name.";
        int listener_key = (isks || ists) && kl > sizeof(pre) - 1 && memcmp(key, pre, sizeof(pre) - 1) == 0 &&
                           !memchr(key, 0, kl);
        if (!(plain_ks || plain_ts || listener_key) || (op != SRV_ALTER_SET && op != SRV_ALTER_DELETE)) {
            st->ndyn = n0;
            refuse(st, i, KP_ERR_INVALID_CONFIG, STATIC_MSG);
            return 0;
        }
        if (is_default && op == SRV_ALTER_SET) {
            /* Kafka names every such key of the request, as a Java set. */
            int w =
                snprintf(per_broker + pb, sizeof(per_broker) - pb, "%s%.*s", pb ? ", " : "", (int)kl, key);
            if (w > 0 && (size_t)w < sizeof(per_broker) - pb)
                pb += (size_t)w;
            continue;
        }
        if (plain_ks || plain_ts) {
            if (op == SRV_ALTER_DELETE)
                continue; /* never stored: nothing to delete, as Kafka answers */
            st->ndyn = n0;
            /* Kafka's wording. */
            refuse(st, i, KP_ERR_INVALID_REQUEST,
                   "These security configs can be dynamically updated only per-listener using the listener "
                   "prefix");
            return 0;
        }
        size_t nl =
            kl - (sizeof(pre) - 1) - strlen(isks ? ".ssl.keystore.location" : ".ssl.truststore.location");
        int l = -1;
        for (int k = 0; k < b->cfg.n_listeners && l < 0; k++)
            if (strlen(b->cfg.listeners[k].name) == nl &&
                strncasecmp(b->cfg.listeners[k].name, key + sizeof(pre) - 1, nl) == 0)
                l = k;
        if (l < 0 || !b->tls_ctx[l]) {
            st->ndyn = n0;
            refuse(st, i, KP_ERR_INVALID_REQUEST, "No SSL or SASL_SSL listener of that name on this broker.");
            return 0;
        }
        char canon[SRV_CONFIG_NAME_MAX + 64];
        const char *base = isks ? "ssl.keystore.location" : "ssl.truststore.location";
        if (srv_dyncfg_listener_key(canon, sizeof(canon), key + sizeof(pre) - 1, nl, base) != 0) {
            st->ndyn = n0;
            refuse(st, i, KP_ERR_INVALID_REQUEST, "Config name too long.");
            return 0;
        }
        const char *v = NULL;
        if (op == SRV_ALTER_SET) {
            if (c->value.len <= 0 || memchr(c->value.p, 0, (size_t)c->value.len)) {
                st->ndyn = n0;
                refuse(st, i, KP_ERR_INVALID_REQUEST, "A key or trust store location must be a file name.");
                return 0;
            }
            v = kp_arena_str(&req->arena, c->value).p;
            if (!v) {
                srv_req_fail_close(req, "out of memory");
                return -1;
            }
        } else if (!srv_dyncfg_get(d, res, canon)) {
            continue; /* no dynamic value: nothing to delete, as Kafka answers */
        }
        const char *k = kp_arena_strz(&req->arena, canon).p;
        if (!k) {
            srv_req_fail_close(req, "out of memory");
            return -1;
        }
        srv_dyncfg_change *ch = &st->dyn[st->ndyn];
        ch->resource = res;
        ch->key = k;
        ch->value = v;
        ch->error = 0;
        st->dyn_res[st->ndyn++] = i;
        /* What the listener loads once this is durable: the new value, or
         * after a DELETE what is left (Kafka's precedence). */
        const char *now = v;
        if (!now && is_default) {
            if (srv_dyncfg_get(d, idbuf, canon))
                continue; /* this broker's own value still wins */
            now = static_location(&b->cfg, b->cfg.listeners[l].name, isks);
        } else if (!now) {
            now = srv_dyncfg_get(d, "", canon);
            if (!now)
                now = static_location(&b->cfg, b->cfg.listeners[l].name, isks);
        }
        plan[l].res = i;
        if (isks)
            plan[l].ks = now;
        else
            plan[l].ts = now;
    }
    if (pb) {
        st->ndyn = n0;
        char *m = kp_arena_alloc(&req->arena, pb + 128);
        if (!m) {
            srv_req_fail_close(req, "out of memory");
            return -1;
        }
        snprintf(m, pb + 128,
                 "Cannot update these configs at default cluster level, broker id must be specified: [%s]",
                 per_broker);
        refuse(st, i, KP_ERR_INVALID_REQUEST, m);
        return 0;
    }
    memcpy(st->tls, plan, sizeof(plan));
    st->errors[i] = KP_ERR_NONE;
    st->messages[i] = NULL;
    return 0;
}

/* AlterConfigs (the legacy API) replaces every dynamic config of the
 * resource, as in Kafka: the listed keys are set, the dynamic keys it does
 * not list are deleted. As IncrementalAlterConfigs operations, for
 * alter_broker; NULL when memory ran out. */
static const kp_incremental_alter_configs_request_alter_configs_resource *
legacy_as_incremental(srv_req *req, const kp_alter_configs_request_alter_configs_resource *r)
{
    const srv_dyncfg *d = req->shard->meta->dyncfg;
    int32_t nc = r->configs_count > 0 ? r->configs_count : 0;
    int nd = d ? d->n : 0;
    kp_incremental_alter_configs_request_alter_configs_resource *ir =
        kp_arena_alloc(&req->arena, sizeof(*ir));
    kp_incremental_alter_configs_request_alterable_config *c =
        kp_arena_alloc(&req->arena, ((size_t)nc + (size_t)nd) * sizeof(*c) + 1);
    if (!ir || !c)
        return NULL;
    ir->resource_type = r->resource_type;
    ir->resource_name = r->resource_name;
    ir->configs = c;
    ir->configs_count = 0;
    for (int32_t j = 0; j < nc; j++) {
        c[ir->configs_count].name = r->configs[j].name;
        c[ir->configs_count].value = r->configs[j].value;
        c[ir->configs_count++].config_operation =
            r->configs[j].value.len < 0 ? SRV_ALTER_DELETE : SRV_ALTER_SET;
    }
    for (int k = 0; k < nd; k++) {
        const srv_dyncfg_kv *kv = &d->kv[k];
        if (!kp_str_eq(r->resource_name, kv->resource))
            continue;
        int listed = 0;
        for (int32_t j = 0; j < nc && !listed; j++)
            listed = r->configs[j].name.len == (int32_t)strlen(kv->key) &&
                     strncasecmp(r->configs[j].name.p, kv->key, strlen(kv->key)) == 0;
        if (listed)
            continue;
        c[ir->configs_count].name = kp_str_c(kv->key);
        c[ir->configs_count].value = KP_STR_NULL;
        c[ir->configs_count++].config_operation = SRV_ALTER_DELETE;
    }
    return ir;
}

/* What listener l loads by the metadata version this shard serves: its
 * dynamic value, else its static one. */
static const char *current_location(srv_req *req, int l, int keystore)
{
    srv_broker *b = req->shard->b;
    const char *name = b->cfg.listeners[l].name;
    char key[SRV_CONFIG_NAME_MAX + 64];
    const char *v = NULL;
    if (srv_dyncfg_listener_key(key, sizeof(key), name, strlen(name),
                                keystore ? "ssl.keystore.location" : "ssl.truststore.location") == 0)
        v = srv_dyncfg_effective(req->shard->meta->dyncfg, b->cfg.node_id, key, NULL);
    if (!v)
        v = static_location(&b->cfg, name, keystore);
    return kp_arena_strz(&req->arena, v).p;
}

/* Loads each planned listener's stores off the loop, then runs next. To
 * check (validate_only) the planned locations; for good, what the current
 * metadata says, ordered by its version: two changes persisted one after
 * the other may have their loads finish in the other order, and the older
 * one must not win. */
static void run_reloads(srv_req *req, alter_state *st, int validate_only, void (*next)(srv_req *))
{
    srv_broker *b = req->shard->b;
    srv_req_hold(req);
    for (int l = 0; l < b->cfg.n_listeners; l++) {
        tls_plan *p = &st->tls[l];
        if (p->res < 0 || st->errors[p->res] != KP_ERR_NONE)
            continue;
        reload_ctx *rc = kp_arena_alloc(&req->arena, sizeof(*rc));
        const char *ks = p->ks, *ts = p->ts;
        if (!validate_only) {
            ks = ks ? current_location(req, l, 1) : NULL;
            ts = ts ? current_location(req, l, 0) : NULL;
        }
        if (!rc || (p->ks && !ks) || (p->ts && !ts)) {
            srv_req_fail_close(req, "out of memory");
            break;
        }
        rc->st = st;
        rc->res = p->res;
        srv_tls_reload_async(req, b->tls_ctx[l], ks, ts, validate_only,
                             validate_only ? 0 : req->shard->meta->version + 1, reload_done, rc);
    }
    srv_req_then(req, next);
    srv_req_release(req);
}

static void submit_after_reloads(srv_req *req)
{
    alter_state *st = req->state;
    srv_ctl_submit(req->shard, req, &st->op);
}

/* The changes are durable and every shard's metadata shows them: now the
 * listeners load the new stores (checked already), then the topic part. */
static void broker_persisted(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    alter_state *st = (alter_state *)((char *)op - offsetof(alter_state, bop));
    srv_req *req = st->req;
    for (int k = 0; k < st->ndyn; k++) {
        int i = st->dyn_res[k];
        if (st->dyn[k].error && st->errors[i] == KP_ERR_NONE)
            refuse(st, i, st->dyn[k].error, "The change could not be written to the metadata log.");
    }
    run_reloads(req, st, 0, submit_after_reloads);
}

/* Every planned store was loaded and checked: persist what passed. */
static void after_check(srv_req *req)
{
    alter_state *st = req->state;
    int live = 0;
    for (int k = 0; k < st->ndyn; k++) {
        if (st->errors[st->dyn_res[k]] != KP_ERR_NONE)
            st->dyn[k].error = st->errors[st->dyn_res[k]]; /* the controller leaves it */
        else
            live++;
    }
    if (!live || st->validate_only) {
        submit_after_reloads(req);
        return;
    }
    memset(&st->bop, 0, sizeof(st->bop));
    st->bop.kind = SRV_CTL_ALTER_BROKER;
    st->bop.ndyn = st->ndyn;
    st->bop.dyn = st->dyn;
    st->bop.done = broker_persisted;
    srv_ctl_submit(req->shard, req, &st->bop);
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
    int16_t *errors = st->errors;
    char **messages = st->messages;
    int *spec_of = st->spec_of;
    memset(st, 0, sizeof(*st));
    st->errors = errors;
    st->messages = messages;
    st->spec_of = spec_of;
    st->req = req;
    st->nres = n;
    st->incremental = incremental;
    st->validate_only = validate_only;
    for (int l = 0; l < SRV_MAX_LISTENERS; l++)
        st->tls[l].res = -1;
    {
        /* At most one change per config of every broker resource, and for
         * AlterConfigs one deletion per dynamic value. */
        size_t total = 0;
        for (int32_t i = 0; i < n; i++) {
            int8_t type;
            int32_t nc;
            if (incremental) {
                const kp_incremental_alter_configs_request *rq = req->kr.body;
                type = rq->resources[i].resource_type;
                nc = rq->resources[i].configs_count;
            } else {
                const kp_alter_configs_request *rq = req->kr.body;
                type = rq->resources[i].resource_type;
                nc = rq->resources[i].configs_count;
                total += s->meta->dyncfg ? (size_t)s->meta->dyncfg->n : 0;
            }
            if (type == RES_BROKER && nc > 0)
                total += (size_t)nc;
        }
        if (!(st->dyn = kp_arena_alloc(&req->arena, total * sizeof(*st->dyn) + 1)) ||
            !(st->dyn_res = kp_arena_alloc(&req->arena, total * sizeof(int) + 1))) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
    }
    int nspecs = 0;
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
            if (alter_broker(req, st, i,
                             &((const kp_incremental_alter_configs_request *)req->kr.body)->resources[i]) < 0)
                return;
            continue;
        }
        if (type == RES_BROKER) {
            const kp_incremental_alter_configs_request_alter_configs_resource *ir =
                legacy_as_incremental(req, &((const kp_alter_configs_request *)req->kr.body)->resources[i]);
            if (!ir) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
            if (ir->configs_count == 0) {
                st->errors[i] = KP_ERR_NONE; /* nothing set, nothing to set: as Kafka */
                continue;
            }
            if (alter_broker(req, st, i, ir) < 0)
                return;
            continue;
        }
        if (type == RES_BROKER_LOGGER) {
            st->errors[i] = KP_ERR_INVALID_CONFIG;
            st->messages[i] =
                "Broker configs are static in this version: edit server.properties and restart.";
            continue;
        }
        int16_t gerr;
        const char *gmsg;
        if (type == RES_GROUP && srv_group_configs_result(req, i, &gerr, &gmsg)) {
            st->errors[i] = gerr; /* done by share_config.c first (a mixed request) */
            st->messages[i] = (char *)gmsg;
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
    req->state = st;
    int planned = 0;
    for (int l = 0; l < SRV_MAX_LISTENERS; l++)
        planned += st->tls[l].res >= 0;
    /* Broker changes: every store checked off the loop first, so that what
     * is persisted can be loaded; the topic part follows. */
    if (planned) {
        run_reloads(req, st, 1, after_check);
        return;
    }
    if (st->ndyn) {
        after_check(req);
        return;
    }
    srv_ctl_submit(s, req, &st->op);
}

static void alter_legacy(srv_req *req)
{
    alter(req, 0);
}

static void alter_incremental(srv_req *req)
{
    alter(req, 1);
}

void srv_h_alter_configs(srv_req *req)
{
    if (srv_group_configs_only(req)) {
        srv_h_group_configs(req); /* share-group configs (share_config.c) */
        return;
    }
    if (srv_group_configs_any(req)) {
        srv_group_configs_alter(req, alter_legacy); /* the GROUP resources first */
        return;
    }
    alter(req, 0);
}
void srv_h_incremental_alter_configs(srv_req *req)
{
    if (srv_group_configs_only(req)) {
        srv_h_group_configs(req); /* share-group configs (share_config.c) */
        return;
    }
    if (srv_group_configs_any(req)) {
        srv_group_configs_alter(req, alter_incremental); /* the GROUP resources first */
        return;
    }
    alter(req, 1);
}

/*
 * client_quotas.c — DescribeClientQuotas (v0-1) and AlterClientQuotas
 * (v0-1), KIP-546. Describe reads the quota set of the shard's metadata
 * version; Alter goes through the controller (SRV_CTL_ALTER_QUOTAS), which
 * validates each entry as Kafka's controller does, persists the changes and
 * publishes them before the answer.
 *
 * Owns nothing beyond the request. Must not: change quotas other than
 * through the controller, or answer an Alter before every shard serves it.
 * Both need rights on the cluster (DESCRIBE_CONFIGS / ALTER_CONFIGS), as in
 * Kafka.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "authz_req.h"
#include "controller.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"
#include "quota.h"
#include "srv_assert.h"
#include "sstr.h"

/* ---- DescribeClientQuotas ---------------------------------------------------- */

static const char *const entity_types[SRV_QE_NTYPES] = {"user", "client-id", "ip"};

/* Kafka answers an entity's components in the order of a java.util.HashMap
 * keyed by their type (ip, client-id, user): the bucket of Java's
 * String.hashCode in a 16-slot table, ties in insertion order. */
static unsigned java_bucket(kp_str s)
{
    uint32_t h = 0;
    for (int32_t i = 0; i < s.len; i++)
        h = 31 * h + (uint8_t)s.p[i];
    h ^= h >> 16;
    return h & 15;
}

/* Insertion sort of n components of `size` bytes whose type (a kp_str) is
 * at type_off: an entity has at most a few. */
static void sort_components(void *arr, int32_t n, size_t size, size_t type_off)
{
    uint8_t *a = arr, tmp[64];
    SRV_ASSERT(size <= sizeof(tmp), "entity component of %zu bytes", size);
    for (int32_t i = 1; i < n; i++)
        for (int32_t j = i; j > 0; j--) {
            kp_str prev, cur;
            memcpy(&prev, a + (size_t)(j - 1) * size + type_off, sizeof(kp_str));
            memcpy(&cur, a + (size_t)j * size + type_off, sizeof(kp_str));
            if (java_bucket(prev) <= java_bucket(cur))
                break;
            memcpy(tmp, a + (size_t)j * size, size);
            memcpy(a + (size_t)j * size, a + (size_t)(j - 1) * size, size);
            memcpy(a + (size_t)(j - 1) * size, tmp, size);
        }
}

static int describe_entry(srv_req *req, const srv_quota_entry *e,
                          kp_describe_client_quotas_response_entry_data *out)
{
    kp_describe_client_quotas_response_entry_data_init(out);
    int ne = 0, nv = 0;
    for (int t = 0; t < SRV_QE_NTYPES; t++)
        ne += (e->present >> t) & 1;
    for (int k = 0; k < SRV_QK_N; k++)
        nv += (e->has >> k) & 1;
    out->entity = kp_arena_alloc(&req->arena, (size_t)ne * sizeof(*out->entity) + 1);
    out->values = kp_arena_alloc(&req->arena, (size_t)nv * sizeof(*out->values) + 1);
    if (!out->entity || !out->values)
        return -1;
    for (int t = 0; t < SRV_QE_NTYPES; t++) {
        if (!(e->present & (1u << t)))
            continue;
        kp_describe_client_quotas_response_entity_data *d = &out->entity[out->entity_count++];
        kp_describe_client_quotas_response_entity_data_init(d);
        d->entity_type = kp_str_c(entity_types[t]);
        /* the set may be replaced after we answer: copy the name */
        d->entity_name = e->name[t] ? kp_arena_str(&req->arena, srv_s(e->name[t])) : KP_STR_NULL;
    }
    for (int k = 0; k < SRV_QK_N; k++) {
        if (!(e->has & (1u << k)))
            continue;
        kp_describe_client_quotas_response_value_data *v = &out->values[out->values_count++];
        kp_describe_client_quotas_response_value_data_init(v);
        v->key = kp_str_c(srv_quota_key_name(k));
        v->value = e->v[k];
    }
    sort_components(out->entity, out->entity_count, sizeof(*out->entity),
                    offsetof(kp_describe_client_quotas_response_entity_data, entity_type));
    return 0;
}

void srv_h_describe_client_quotas(srv_req *req)
{
    const kp_describe_client_quotas_request *rq = req->kr.body;
    kp_describe_client_quotas_response resp;
    kp_describe_client_quotas_response_init(&resp);
    if (!srv_authorize_cluster(req, SRV_OP_DESCRIBE_CONFIGS)) {
        /* Kafka 4.4: the code, no message, no entries. */
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = KP_STR_NULL;
        resp.entries_count = -1;
        srv_req_respond(req, &resp);
        return;
    }
    int32_t n = rq->components_count > 0 ? rq->components_count : 0;
    kp_str *types = kp_arena_alloc(&req->arena, (size_t)n * sizeof(kp_str) + 1);
    kp_str *names = kp_arena_alloc(&req->arena, (size_t)n * sizeof(kp_str) + 1);
    int8_t *match = kp_arena_alloc(&req->arena, (size_t)n + 1);
    srv_quota_filter *f = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*f) + 1);
    if (!types || !names || !match || !f) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        types[i] = rq->components[i].entity_type;
        match[i] = rq->components[i].match_type;
        names[i] = rq->components[i].match;
    }
    char msg[300];
    int16_t err = srv_quota_filter_parse(types, match, names, n, f, msg, sizeof(msg));
    if (err) {
        resp.error_code = err;
        resp.error_message = kp_arena_strz(&req->arena, msg);
        resp.entries_count = -1;
        srv_req_respond(req, &resp);
        return;
    }
    const srv_quota_set *q = req->shard->meta->quotas;
    int total = q ? q->n : 0;
    resp.error_message = kp_str_c("");
    resp.entries = kp_arena_alloc(&req->arena, (size_t)total * sizeof(*resp.entries) + 1);
    if (!resp.entries) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp.entries_count = 0;
    /* Kafka: an empty strict filter asks for the entity with no components,
     * which cannot exist. */
    for (int i = 0; i < total; i++)
        if (srv_quota_filter_match(&q->e[i], f, n, rq->strict) &&
            describe_entry(req, &q->e[i], &resp.entries[resp.entries_count++]) != 0) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
    srv_req_respond(req, &resp);
}

/* ---- AlterClientQuotas --------------------------------------------------------- */

typedef struct acq_state {
    srv_ctl_op op;
    srv_req *req;
    kp_alter_client_quotas_response resp;
    /* Per entry: Kafka's answer when its entity comes again later in the
     * request. Kafka applies the first, drops the others and answers the
     * entity once, with this error. */
    kp_str *dup;
} acq_state;

static void alter_done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    acq_state *st = (acq_state *)op;
    for (int i = 0; i < op->nquotas; i++) {
        kp_alter_client_quotas_response_entry_data *r = &st->resp.entries[i];
        if (r->error_code)
            continue; /* refused by the handler already */
        r->error_code = op->quotas[i].error;
        r->error_message =
            op->quotas[i].error ? kp_arena_strz(&st->req->arena, op->quotas[i].message) : KP_STR_NULL;
    }
    for (int32_t i = 0; i < st->resp.entries_count; i++)
        sort_components(st->resp.entries[i].entity, st->resp.entries[i].entity_count,
                        sizeof(*st->resp.entries[i].entity),
                        offsetof(kp_alter_client_quotas_response_entity_data, entity_type));
    int32_t w = 0;
    for (int32_t i = 0; i < st->resp.entries_count; i++) {
        if (st->dup[i].p) {
            st->resp.entries[i].error_code = KP_ERR_INVALID_REQUEST;
            st->resp.entries[i].error_message = st->dup[i];
        }
        if (st->resp.entries[i].error_code != -1)
            st->resp.entries[w++] = st->resp.entries[i];
    }
    st->resp.entries_count = w;
    srv_req_respond(st->req, &st->resp);
}

void srv_h_alter_client_quotas(srv_req *req)
{
    const kp_alter_client_quotas_request *rq = req->kr.body;
    int32_t n = rq->entries_count > 0 ? rq->entries_count : 0;
    acq_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    srv_quota_alter *qa = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*qa) + 1);
    if (!st || !qa) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->req = req;
    kp_alter_client_quotas_response_init(&st->resp);
    st->resp.entries = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->resp.entries) + 1);
    if (!st->resp.entries) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->resp.entries_count = n;
    st->dup = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->dup) + 1);
    if (!st->dup) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        const kp_alter_client_quotas_request_entry_data *e = &rq->entries[i];
        kp_alter_client_quotas_response_entry_data *r = &st->resp.entries[i];
        kp_alter_client_quotas_response_entry_data_init(r);
        r->error_message = KP_STR_NULL;
        int32_t ne = e->entity_count > 0 ? e->entity_count : 0;
        r->entity = kp_arena_alloc(&req->arena, (size_t)ne * sizeof(*r->entity) + 1);
        if (!r->entity) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        r->entity_count = ne;
        srv_quota_alter *a = &qa[i];
        memset(a, 0, sizeof(*a));
        for (int32_t j = 0; j < ne; j++) {
            kp_alter_client_quotas_response_entity_data_init(&r->entity[j]);
            r->entity[j].entity_type = e->entity[j].entity_type;
            r->entity[j].entity_name = e->entity[j].entity_name;
            int t = -1;
            for (int k = 0; k < SRV_QE_NTYPES; k++)
                if (kp_str_eq(e->entity[j].entity_type, entity_types[k]))
                    t = k;
            if (r->error_code)
                continue;
            char msg[300];
            if (t < 0) {
                kp_str ty = e->entity[j].entity_type;
                snprintf(msg, sizeof(msg), "Unhandled client quota entity type: %.*s",
                         ty.len < 0 ? 0 : (int)ty.len, ty.p ? ty.p : "");
            } else if (a->entity.present & (1u << t)) {
                snprintf(msg, sizeof(msg), "Duplicate %s entity in the quota entity", entity_types[t]);
            } else {
                a->entity.present |= 1u << t;
                a->entity.name[t] = e->entity[j].entity_name;
                continue;
            }
            r->error_code = KP_ERR_INVALID_REQUEST;
            r->error_message = kp_arena_strz(&req->arena, msg);
        }
        if (r->error_code) {
            a->skip = 1; /* answered here, left alone by the controller */
            continue;
        }
        int32_t nops = e->ops_count > 0 ? e->ops_count : 0;
        a->ops = kp_arena_alloc(&req->arena, (size_t)nops * sizeof(*a->ops) + 1);
        if (!a->ops) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        a->nops = nops;
        for (int32_t j = 0; j < nops; j++)
            a->ops[j] = (srv_quota_op){e->ops[j].key, e->ops[j].value, e->ops[j].remove};
    }
    if (!srv_authorize_cluster(req, SRV_OP_ALTER_CONFIGS)) {
        /* Kafka: every entry as asked, refused; nothing is changed. */
        for (int32_t i = 0; i < n; i++) {
            st->resp.entries[i].error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
            st->resp.entries[i].error_message = kp_str_c("Cluster authorization failed.");
        }
        srv_req_respond(req, &st->resp);
        return;
    }
    /* An entity named twice: Kafka answers it once, refused, and leaves it. */
    for (int32_t i = 0; i < n; i++) {
        if (qa[i].skip)
            continue;
        for (int32_t j = i + 1; j < n; j++) {
            if (qa[j].skip || !srv_quota_entity_same(&qa[i].entity, &qa[j].entity))
                continue;
            if (!st->dup[i].p) {
                char msg[300];
                srv_quota_duplicate_text(&qa[i].entity, msg, sizeof(msg));
                st->dup[i] = kp_arena_strz(&req->arena, msg);
            }
            qa[j].skip = 1;
            st->resp.entries[j].error_code = -1; /* dropped from the answer */
        }
    }
    st->op.kind = SRV_CTL_ALTER_QUOTAS;
    st->op.validate_only = rq->validate_only;
    st->op.nquotas = n;
    st->op.quotas = qa;
    st->op.done = alter_done;
    srv_ctl_submit(req->shard, req, &st->op);
}

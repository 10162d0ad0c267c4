/*
 * create_topics.c — CreateTopics (v0-7), incl. validate_only and topic
 * configs; CreatePartitions lives beside it in spirit (controller ops).
 * The answer comes once the topics are durable in the metadata log and open
 * on every shard. A name given twice is refused as a whole and answered
 * once, as Kafka does. From v5 a created (or validated) topic's answer lists
 * its every config as DescribeConfigs would, as Kafka's does.
 */
#include <stdio.h>
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "throttle_req.h"
#include "controller.h"
#include "sstr.h"
#include "topic_config.h"

typedef struct ct_state {
    srv_ctl_op op;
    srv_req *req;
    kp_create_topics_response resp;
    uint8_t *dup; /* per request index: 1 first of a repeated name, 2 a repeat */
} ct_state;

/* The topic's configs: its overrides (the request's, which the controller
 * has just accepted) over the broker's defaults. Out of memory stops the
 * list; the arena's failed flag then refuses the whole answer. */
static void put_configs(srv_req *req, const srv_config *broker, const srv_topic_spec *sp,
                        kp_create_topics_response_creatable_topic_result *r)
{
    static __thread srv_topic_config tc; /* large: off the stack, as in configs.c */
    static __thread srv_config_entry e;
    srv_topic_config_init(&tc);
    for (int k = 0; k < sp->ncfg; k++) {
        /* A stored override the config module does not take is left out,
         * as DescribeConfigs leaves it out (srv_topic_overrides). */
        char err[160];
        (void)srv_topic_config_alter(&tc, SRV_ALTER_SET, sp->cfg[k].key, sp->cfg[k].value, err, sizeof(err));
    }
    size_t count = srv_topic_config_key_count();
    kp_create_topics_response_creatable_topic_configs *cs =
        kp_arena_alloc(&req->arena, count * sizeof(*cs) + 1);
    if (!cs)
        return;
    int32_t n = 0;
    for (size_t k = 0; k < count; k++) {
        if (srv_topic_config_describe(broker, &tc, k, &e) != 1)
            continue;
        kp_create_topics_response_creatable_topic_configs *c = &cs[n++];
        kp_create_topics_response_creatable_topic_configs_init(c);
        c->name = kp_arena_strz(&req->arena, e.name);
        c->value = e.value_null ? KP_STR_NULL : kp_arena_strz(&req->arena, e.value);
        c->read_only = (uint8_t)e.read_only;
        c->config_source = (int8_t)e.source;
        c->is_sensitive = (uint8_t)e.sensitive;
    }
    r->configs = cs;
    r->configs_count = n;
}

static void done(srv_shard *s, srv_ctl_op *op)
{
    ct_state *st = (ct_state *)op;
    srv_req *req = st->req;
    for (int i = 0; i < op->nspecs; i++) {
        srv_topic_spec *sp = &op->specs[i];
        kp_create_topics_response_creatable_topic_result *r = &st->resp.topics[i];
        if (sp->skip)
            continue; /* refused before reaching the controller */
        r->error_code = sp->error;
        r->error_message = sp->error ? kp_str_c(sp->message) : KP_STR_NULL;
        if (!sp->error) {
            r->topic_id = sp->id;
            r->num_partitions = sp->result_nparts;
            r->replication_factor = sp->result_rf > 0 ? sp->result_rf : 1;
            /* As Kafka: configs only for who may DESCRIBE_CONFIGS the topic. */
            if (req->kr.hdr.request_api_version >= 5 &&
                !srv_authorize(req, SRV_OP_DESCRIBE_CONFIGS, SRV_RES_TOPIC, sp->name))
                r->topic_config_error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            else if (req->kr.hdr.request_api_version >= 5)
                put_configs(req, &s->b->cfg, sp, r);
        }
    }
    int32_t w = 0;
    for (int32_t i = 0; i < st->resp.topics_count; i++) {
        /* A refused topic has no configs: Kafka lists none (empty, not null). */
        if (st->resp.topics[i].error_code)
            st->resp.topics[i].configs_count = 0;
        if (st->dup[i] != 2)
            st->resp.topics[w++] = st->resp.topics[i];
    }
    st->resp.topics_count = w;
    /* controller_mutation_rate (KIP-599): throttled and muted as Kafka. */
    st->resp.throttle_time_ms = srv_quota_mutation_ms(req);
    srv_req_mute(req, st->resp.throttle_time_ms);
    srv_req_respond(req, &st->resp);
}

/* A manual assignment for a quorum, checked for shape as Kafka's controller
 * does (the brokers are the controller's to check): partitions 0..n-1 in
 * order, each with the same number of distinct replicas. */
static void manual_assignment(srv_req *req, const kp_create_topics_request_creatable_topic *t,
                              kp_create_topics_response_creatable_topic_result *r, srv_topic_spec *sp)
{
    int32_t n = t->assignments_count, rf = t->assignments[0].broker_ids_count;
    char *msg = kp_arena_alloc(&req->arena, 200);
    /* Above the limit it is refused: no room for partitions x replicas,
     * which a request may make as large as it likes. */
    int32_t *ids = rf > SRV_RF_MAX
                       ? NULL
                       : kp_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)n * (size_t)(rf > 0 ? rf : 1));
    if (!msg || (!ids && rf <= SRV_RF_MAX))
        return; /* the arena's failed flag refuses the whole answer */
    msg[0] = 0;
    for (int32_t j = 0; j < n && !msg[0]; j++) {
        const kp_create_topics_request_creatable_replica_assignment *a = &t->assignments[j];
        if (a->partition_index != j)
            snprintf(msg, 200, "partitions should be a consecutive 0-based integer sequence");
        else if (a->broker_ids_count <= 0)
            snprintf(msg, 200, "The manual partition assignment includes an empty replica list.");
        else if (a->broker_ids_count != rf)
            snprintf(
                msg, 200,
                "The manual partition assignment includes a partition with %d replica(s), but this is not "
                "consistent with previous partitions, which have %d replica(s).",
                (int)a->broker_ids_count, (int)rf);
        for (int32_t k = 0; k < a->broker_ids_count && !msg[0]; k++) {
            for (int32_t q = 0; q < k; q++)
                if (a->broker_ids[q] == a->broker_ids[k] && !msg[0])
                    snprintf(msg, 200,
                             "The manual partition assignment includes the broker %d more than once.",
                             (int)a->broker_ids[k]);
            if (ids)
                ids[(size_t)j * (size_t)rf + (size_t)k] = a->broker_ids[k];
        }
    }
    if (!msg[0] && rf > SRV_RF_MAX)
        snprintf(msg, 200, "Replication factor %d is above kbroker's limit of %d replicas.", (int)rf,
                 SRV_RF_MAX);
    if (msg[0]) {
        r->error_code =
            rf > SRV_RF_MAX ? KP_ERR_INVALID_REPLICATION_FACTOR : KP_ERR_INVALID_REPLICA_ASSIGNMENT;
        r->error_message = kp_str_c(msg);
        return;
    }
    sp->assign = ids;
    sp->assign_rf = (int16_t)rf;
    sp->assign_n = n;
}

void srv_h_create_topics(srv_req *req)
{
    const kp_create_topics_request *rq = req->kr.body;
    int32_t n = rq->topics_count > 0 ? rq->topics_count : 0;
    ct_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    srv_topic_spec *specs = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*specs) + 1);
    if (!st || !specs) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->req = req;
    kp_create_topics_response_init(&st->resp);
    st->resp.topics = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->resp.topics) + 1);
    if (!st->resp.topics) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->resp.topics_count = n;
    srv_str_idx *names = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*names) + 1);
    st->dup = kp_arena_alloc(&req->arena, (size_t)n + 1);
    if (!names || !st->dup) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++)
        names[i] = (srv_str_idx){rq->topics[i].name, i};
    srv_str_mark_dups(names, n, st->dup);
    int32_t node = (int32_t)req->shard->b->cfg.node_id;
    int quorum = req->shard->b->quorum != NULL;
    int cluster_create = srv_authorize_cluster(req, SRV_OP_CREATE);
    for (int32_t i = 0; i < n; i++) {
        const kp_create_topics_request_creatable_topic *t = &rq->topics[i];
        kp_create_topics_response_creatable_topic_result *r = &st->resp.topics[i];
        kp_create_topics_response_creatable_topic_result_init(r);
        r->name = t->name;
        r->num_partitions = -1;
        r->replication_factor = -1;
        r->configs_count = -1;
        srv_topic_spec *sp = &specs[i];
        memset(sp, 0, sizeof(*sp));
        sp->name = t->name;
        sp->nparts = t->num_partitions;
        sp->replication = t->replication_factor;
        if (st->dup[i]) {
            r->error_code = KP_ERR_INVALID_REQUEST;
            r->error_message = kp_str_c("Duplicate topic name.");
            sp->skip = 1;
            continue;
        }
        if (!cluster_create && !srv_authorize(req, SRV_OP_CREATE, SRV_RES_TOPIC, t->name)) {
            r->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            r->error_message = kp_str_c("Authorization failed.");
            sp->skip = 1;
            continue;
        }
        if (t->assignments_count > 0) {
            if (t->num_partitions != -1 || t->replication_factor != -1) {
                r->error_code = KP_ERR_INVALID_REQUEST;
                r->error_message =
                    kp_str_c("Both numPartitions or replicationFactor and replicasAssignments were set.");
            } else if (quorum) {
                manual_assignment(req, t, r, sp);
            }
            /* A single node: every replica must be this node, one each. */
            for (int32_t j = 0; j < t->assignments_count && !r->error_code && !quorum; j++) {
                const kp_create_topics_request_creatable_replica_assignment *a = &t->assignments[j];
                if (a->partition_index != j || a->broker_ids_count != 1 || a->broker_ids[0] != node) {
                    r->error_code = KP_ERR_INVALID_REPLICA_ASSIGNMENT;
                    r->error_message =
                        kp_str_c("Replica assignments must name this single broker once per partition.");
                }
            }
            sp->nparts = t->assignments_count;
            sp->replication = quorum ? -1 : 1;
        }
        int32_t nc = t->configs_count > 0 ? t->configs_count : 0;
        sp->cfg = kp_arena_alloc(&req->arena, (size_t)nc * sizeof(*sp->cfg) + 1);
        for (int32_t j = 0; j < nc && sp->cfg && !r->error_code; j++) {
            const kp_create_topics_request_creatable_topic_config *c = &t->configs[j];
            if (c->name.len < 0 || c->value.len < 0) {
                r->error_code = KP_ERR_INVALID_CONFIG;
                r->error_message = kp_str_c("Null config name or value.");
                break;
            }
            /* The validators see C strings: "retention.ms\0x" would be
             * retention.ms, "1000\0x" 1000. No topic config takes a NUL. */
            if (memchr(c->name.p, 0, (size_t)c->name.len) || memchr(c->value.p, 0, (size_t)c->value.len)) {
                r->error_code = KP_ERR_INVALID_CONFIG;
                r->error_message = kp_str_c("A config name or value contains a NUL byte.");
                break;
            }
            char *k = kp_arena_alloc(&req->arena, (size_t)c->name.len + 1);
            char *v = kp_arena_alloc(&req->arena, (size_t)c->value.len + 1);
            if (!k || !v)
                break;
            memcpy(k, c->name.p, (size_t)c->name.len);
            memcpy(v, c->value.p, (size_t)c->value.len);
            sp->cfg[sp->ncfg].key = k;
            sp->cfg[sp->ncfg].value = v;
            sp->ncfg++;
        }
        if (!r->error_code && srv_quota_mutation(req,
                                                 sp->nparts == -1 ? (double)req->shard->b->cfg.num_partitions
                                                                  : (double)sp->nparts,
                                                 req->kr.hdr.request_api_version >= 6) != 0) {
            r->error_code = KP_ERR_THROTTLING_QUOTA_EXCEEDED;
            r->error_message = KP_STR_NULL /* Kafka sends none */;
        }
        if (r->error_code)
            sp->skip = 1;
    }
    st->op.kind = SRV_CTL_CREATE;
    st->op.validate_only = rq->validate_only;
    st->op.nspecs = n;
    st->op.specs = specs;
    /* When this node is no longer the controller by the time the op runs,
     * the controller forwards it (controller.c): as the caller, never as
     * this node. */
    st->op.as_principal = kp_arena_strz(&req->arena, srv_req_principal(req).p).p;
    st->op.as_host = kp_arena_strz(&req->arena, srv_req_host(req).p).p;
    st->op.done = done;
    srv_ctl_submit(req->shard, req, &st->op);
}

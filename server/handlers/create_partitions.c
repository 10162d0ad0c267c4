/*
 * create_partitions.c — CreatePartitions (v0-3): grow a topic's partition
 * count through the controller; new partitions open on their owner shards
 * before the answer. Manual assignments may only name this broker on a
 * single node; with a quorum they name registered brokers, the same count
 * for each new partition (the controller checks the brokers). A topic
 * named twice is refused as a whole and answered once, as Kafka does.
 */
#include <stdio.h>
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "controller.h"
#include "throttle_req.h"
#include "sstr.h"

typedef struct cp_state {
    srv_ctl_op op;
    srv_req *req;
    kp_create_partitions_response resp;
    uint8_t *dup; /* per request index: 1 first of a repeated name, 2 a repeat */
} cp_state;

static void done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    cp_state *st = (cp_state *)op;
    for (int i = 0; i < op->nspecs; i++) {
        srv_topic_spec *sp = &op->specs[i];
        if (sp->skip)
            continue;
        st->resp.results[i].error_code = sp->error;
        /* Kafka says nothing more about an unknown topic. */
        int says = sp->error && sp->error != KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        st->resp.results[i].error_message = says ? kp_str_c(sp->message) : KP_STR_NULL;
    }
    int32_t w = 0;
    for (int32_t i = 0; i < st->resp.results_count; i++)
        if (st->dup[i] != 2)
            st->resp.results[w++] = st->resp.results[i];
    st->resp.results_count = w;
    st->resp.throttle_time_ms = srv_quota_mutation_ms(st->req);
    srv_req_mute(st->req, st->resp.throttle_time_ms);
    srv_req_respond(st->req, &st->resp);
}

/* With a quorum: the new partitions' replicas, each list non-empty,
 * without repeats and as long as the first. 0, or -1 with r's error set. */
static int manual_assignment(srv_req *req, const kp_create_partitions_request_create_partitions_topic *t,
                             kp_create_partitions_response_create_partitions_topic_result *r,
                             srv_topic_spec *sp)
{
    int32_t n = t->assignments_count, rf = t->assignments[0].broker_ids_count;
    char *msg = kp_arena_alloc(&req->arena, 200);
    /* Above the limit it is refused: no room for partitions x replicas,
     * which a request may make as large as it likes. */
    int32_t *ids = rf > SRV_RF_MAX
                       ? NULL
                       : kp_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)n * (size_t)(rf > 0 ? rf : 1));
    if (!msg || (!ids && rf <= SRV_RF_MAX))
        return -1; /* the arena's failed flag refuses the whole answer */
    msg[0] = 0;
    for (int32_t j = 0; j < n && !msg[0]; j++) {
        const kp_create_partitions_request_create_partitions_assignment *a = &t->assignments[j];
        if (a->broker_ids_count <= 0)
            snprintf(msg, 200, "The manual partition assignment includes an empty replica list.");
        else if (a->broker_ids_count != rf)
            snprintf(msg, 200,
                     "Inconsistent replication factor between partitions, partition 0 has %d while "
                     "partitions [%d] have replication factors [%d], respectively.",
                     (int)rf, (int)j, (int)a->broker_ids_count);
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
        r->error_code = KP_ERR_INVALID_REPLICA_ASSIGNMENT;
        r->error_message = kp_str_c(msg);
        return -1;
    }
    sp->assign = ids;
    sp->assign_rf = (int16_t)rf;
    sp->assign_n = n;
    return 0;
}

void srv_h_create_partitions(srv_req *req)
{
    const kp_create_partitions_request *rq = req->kr.body;
    int32_t n = rq->topics_count > 0 ? rq->topics_count : 0;
    int32_t node = req->shard->b->cfg.node_id;
    cp_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    srv_topic_spec *specs = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*specs) + 1);
    if (!st || !specs) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->req = req;
    kp_create_partitions_response_init(&st->resp);
    st->resp.results = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->resp.results) + 1);
    if (!st->resp.results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->resp.results_count = n;
    srv_str_idx *names = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*names) + 1);
    st->dup = kp_arena_alloc(&req->arena, (size_t)n + 1);
    if (!names || !st->dup) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++)
        names[i] = (srv_str_idx){rq->topics[i].name, i};
    srv_str_mark_dups(names, n, st->dup);
    for (int32_t i = 0; i < n; i++) {
        const kp_create_partitions_request_create_partitions_topic *t = &rq->topics[i];
        kp_create_partitions_response_create_partitions_topic_result *r = &st->resp.results[i];
        kp_create_partitions_response_create_partitions_topic_result_init(r);
        r->name = t->name;
        srv_topic_spec *sp = &specs[i];
        memset(sp, 0, sizeof(*sp));
        sp->name = t->name;
        sp->nparts = t->count;
        if (st->dup[i]) {
            r->error_code = KP_ERR_INVALID_REQUEST;
            r->error_message = kp_str_c("Duplicate topic name.");
            sp->skip = 1;
            continue;
        }
        if (!srv_authorize(req, SRV_OP_ALTER, SRV_RES_TOPIC, t->name)) {
            r->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            r->error_message = kp_str_c("Authorization failed.");
            sp->skip = 1;
            continue;
        }
        if (req->shard->b->quorum && t->assignments_count > 0) {
            if (manual_assignment(req, t, r, sp) != 0)
                sp->skip = 1;
            continue;
        }
        for (int32_t j = 0; j < t->assignments_count; j++) {
            const kp_create_partitions_request_create_partitions_assignment *a = &t->assignments[j];
            if (a->broker_ids_count != 1 || a->broker_ids[0] != node) {
                r->error_code = KP_ERR_INVALID_REPLICA_ASSIGNMENT;
                r->error_message =
                    kp_str_c("Replica assignments must name this single broker once per partition.");
                sp->skip = 1;
                break;
            }
        }
    }
    /* controller_mutation_rate counts the partitions added (KIP-599);
     * strict from v3, which knows THROTTLING_QUOTA_EXCEEDED. */
    for (int32_t i = 0; i < n; i++) {
        const srv_topic *t = specs[i].skip ? NULL : srv_meta_topic(req->shard->meta, specs[i].name);
        if (!t || specs[i].nparts <= t->nparts)
            continue;
        if (srv_quota_mutation(req, (double)(specs[i].nparts - t->nparts),
                               req->kr.hdr.request_api_version >= 3)) {
            st->resp.results[i].error_code = KP_ERR_THROTTLING_QUOTA_EXCEEDED;
            st->resp.results[i].error_message = KP_STR_NULL /* Kafka sends none */;
            specs[i].skip = 1;
        }
    }
    st->op.kind = SRV_CTL_ADD_PARTITIONS;
    st->op.validate_only = rq->validate_only;
    st->op.nspecs = n;
    st->op.specs = specs;
    st->op.done = done;
    srv_ctl_submit(req->shard, req, &st->op);
}

/*
 * find_coordinator.c — FindCoordinator (v0-6, batched keys v4+). Every group
 * and every transactional id is coordinated by this node (the shard that
 * owns the key's __consumer_offsets or __transaction_state partition is an
 * internal detail: requests are routed there by group/coord.c and
 * txn_coord.c). While the topic does not exist yet its creation is started
 * and COORDINATOR_NOT_AVAILABLE answered, as Kafka does (it creates
 * __transaction_state on the first lookup of a transactional id).
 *
 * A found coordinator's error message is Kafka's too: "NONE" (the error's
 * name) in v1-3, "" per key in v4+.
 *
 * Owns the lookup answer. Must not: route or hold coordinator state.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "group/group.h"
#include "meta.h"
#include "txn_coord.h"

#define KEY_GROUP       0
#define KEY_TRANSACTION 1

static int16_t lookup(srv_req *req, int8_t type, kp_str key, kp_str *msg)
{
    *msg = KP_STR_NULL;
    /* As Kafka: DESCRIBE on the group before anything else. */
    if (type == KEY_GROUP && !srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_GROUP, key)) {
        *msg = kp_str_c("Group authorization failed.");
        return KP_ERR_GROUP_AUTHORIZATION_FAILED;
    }
    if (type == KEY_GROUP) {
        int16_t err = srv_groups_ready(req->shard);
        if (err)
            *msg = kp_str_c("The coordinator is not available.");
        return err;
    }
    if (type == KEY_TRANSACTION) {
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TRANSACTIONAL_ID, key)) {
            *msg = kp_str_c("Transactional Id authorization failed.");
            return KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        }
        int16_t err = srv_txns_ready(req->shard);
        if (err)
            *msg = kp_str_c("The coordinator is not available.");
        return err;
    }
    *msg = kp_str_c("Unknown coordinator key type.");
    return KP_ERR_INVALID_REQUEST;
}

/* Who coordinates a found key: this node on its own; with a quorum, the
 * leader of the group's offsets partition (a transactional id's stays
 * here: transactions are not spread over the cluster yet). */
static int16_t coordinator(srv_req *req, int8_t type, kp_str key, int32_t *node, kp_str *host, int32_t *port)
{
    srv_broker *b = req->shard->b;
    *node = (int32_t)b->cfg.node_id;
    *host = kp_str_c(srv_req_endpoint(req)->host);
    *port = srv_req_endpoint(req)->port;
    const srv_meta *m = req->shard->meta;
    const srv_topic *t = type == KEY_GROUP ? srv_meta_topic(m, kp_str_c(SRV_OFFSETS_TOPIC)) : NULL;
    if (!t || !t->leaders)
        return KP_ERR_NONE;
    int32_t lid = t->leaders[srv_group_partition_for(key, t->nparts)];
    if (lid == *node)
        return KP_ERR_NONE;
    const srv_broker_reg *r = srv_meta_broker(m, lid);
    if (!r || r->fenced)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    *node = lid;
    *host = kp_str_c(r->host);
    *port = r->port;
    return KP_ERR_NONE;
}

void srv_h_find_coordinator(srv_req *req)
{
    const kp_find_coordinator_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    kp_find_coordinator_response resp;
    kp_find_coordinator_response_init(&resp);
    if (v < 4) {
        kp_str msg;
        int8_t type = v >= 1 ? rq->key_type : KEY_GROUP;
        resp.error_code = lookup(req, type, rq->key, &msg);
        if (!resp.error_code) {
            resp.error_code = coordinator(req, type, rq->key, &resp.node_id, &resp.host, &resp.port);
            msg = kp_str_c("The coordinator is not available.");
        }
        resp.error_message = resp.error_code ? msg : kp_str_c("NONE");
        if (resp.error_code) {
            resp.node_id = -1;
            resp.host = kp_str_c("");
            resp.port = -1;
        }
        srv_req_respond(req, &resp);
        return;
    }
    int32_t n = rq->coordinator_keys_count > 0 ? rq->coordinator_keys_count : 0;
    resp.coordinators = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp.coordinators) + 1);
    if (!resp.coordinators) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        kp_find_coordinator_response_coordinator *c = &resp.coordinators[i];
        kp_find_coordinator_response_coordinator_init(c);
        kp_str msg;
        c->key = rq->coordinator_keys[i];
        c->error_code = lookup(req, rq->key_type, rq->coordinator_keys[i], &msg);
        if (!c->error_code) {
            c->error_code = coordinator(req, rq->key_type, c->key, &c->node_id, &c->host, &c->port);
            msg = kp_str_c("The coordinator is not available.");
        }
        c->error_message = c->error_code ? msg : kp_str_c("");
        if (c->error_code) {
            c->node_id = -1;
            c->host = kp_str_c("");
            c->port = -1;
        }
    }
    resp.coordinators_count = n;
    srv_req_respond(req, &resp);
}

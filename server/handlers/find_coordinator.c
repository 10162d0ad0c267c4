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

void srv_h_find_coordinator(srv_req *req)
{
    const kp_find_coordinator_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    srv_broker *b = req->shard->b;
    kp_find_coordinator_response resp;
    kp_find_coordinator_response_init(&resp);
    if (v < 4) {
        kp_str msg;
        resp.error_code = lookup(req, v >= 1 ? rq->key_type : KEY_GROUP, rq->key, &msg);
        resp.error_message = resp.error_code ? msg : kp_str_c("NONE");
        resp.node_id = resp.error_code ? -1 : (int32_t)b->cfg.node_id;
        resp.host = kp_str_c(resp.error_code ? "" : srv_req_endpoint(req)->host);
        resp.port = resp.error_code ? -1 : srv_req_endpoint(req)->port;
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
        c->error_message = c->error_code ? msg : kp_str_c("");
        c->node_id = c->error_code ? -1 : (int32_t)b->cfg.node_id;
        c->host = kp_str_c(c->error_code ? "" : srv_req_endpoint(req)->host);
        c->port = c->error_code ? -1 : srv_req_endpoint(req)->port;
    }
    resp.coordinators_count = n;
    srv_req_respond(req, &resp);
}

/*
 * describe_cluster.c — DescribeCluster (v0-1): this broker is the whole
 * cluster and its controller. Only broker endpoints exist here (endpoint
 * type 1); asking for controller endpoints is refused as Kafka does.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"

void srv_h_describe_cluster(srv_req *req)
{
    const kp_describe_cluster_request *rq = req->kr.body;
    srv_broker *b = req->shard->b;
    kp_describe_cluster_response resp;
    kp_describe_cluster_response_init(&resp);
    resp.cluster_id = kp_str_c(b->cluster_id);
    resp.controller_id = b->cfg.node_id;
    resp.endpoint_type = rq->endpoint_type;
    /* As Kafka: the bit set only for who may DESCRIBE the cluster, else 0. */
    resp.cluster_authorized_operations =
        !rq->include_cluster_authorized_operations ? INT32_MIN
        : srv_authorize_cluster(req, SRV_OP_DESCRIBE)
            ? srv_authorized_ops(req, SRV_RES_CLUSTER, kp_str_c(SRV_CLUSTER_RESOURCE))
            : 0;
    if (rq->endpoint_type != 1) {
        resp.error_code = KP_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp.error_message = kp_str_c("Only broker endpoints are served.");
        resp.brokers_count = 0;
        srv_req_respond(req, &resp);
        return;
    }
    kp_describe_cluster_response_describe_cluster_broker *br = kp_arena_alloc(&req->arena, sizeof(*br));
    if (!br) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_describe_cluster_response_describe_cluster_broker_init(br);
    br->broker_id = b->cfg.node_id;
    br->host = kp_str_c(srv_req_endpoint(req)->host);
    br->port = srv_req_endpoint(req)->port;
    br->rack = KP_STR_NULL;
    resp.brokers = br;
    resp.brokers_count = 1;
    srv_req_respond(req, &resp);
}

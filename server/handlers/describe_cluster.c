/*
 * describe_cluster.c — DescribeCluster (v0-1): this broker is the whole
 * cluster and its controller, or with a metadata quorum the registered
 * brokers and the active controller. Only broker endpoints exist here (endpoint
 * type 1); asking for controller endpoints is refused as Kafka does.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"
#include "quorum.h"

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
    const srv_meta *m = req->shard->meta;
    kp_describe_cluster_response_describe_cluster_broker *br =
        kp_arena_alloc(&req->arena, sizeof(*br) * (size_t)(m->nbrokers + 1));
    if (!br) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_describe_cluster_response_describe_cluster_broker_init(br);
    br->broker_id = b->cfg.node_id;
    br->host = kp_str_c(srv_req_endpoint(req)->host);
    br->port = srv_req_endpoint(req)->port;
    br->rack = b->cfg.broker_rack[0] ? kp_str_c(b->cfg.broker_rack) : KP_STR_NULL;
    resp.brokers = br;
    resp.brokers_count = 1;
    /* With a metadata quorum: the other registered, unfenced brokers, and
     * the active controller (as Metadata). */
    for (int i = 0; i < m->nbrokers; i++) {
        const srv_broker_reg *r = &m->brokers[i];
        if (r->fenced || r->id == b->cfg.node_id)
            continue;
        kp_describe_cluster_response_describe_cluster_broker *o = &br[resp.brokers_count++];
        kp_describe_cluster_response_describe_cluster_broker_init(o);
        o->broker_id = r->id;
        o->host = kp_str_c(r->host);
        o->port = r->port;
        o->rack = r->rack[0] ? kp_str_c(r->rack) : KP_STR_NULL;
    }
    if (b->quorum) {
        int32_t lid = srv_quorum_leader_id(b->quorum);
        resp.controller_id = lid >= 0 && srv_meta_broker(m, lid) ? lid : -1;
    }
    srv_req_respond(req, &resp);
}

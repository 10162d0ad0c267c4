/*
 * acls.c — DescribeAcls, CreateAcls and DeleteAcls (v1-3) as Apache Kafka
 * answers them without an authorizer: SECURITY_DISABLED with its message.
 *
 * Owns: those answers. Must not: store or enforce ACLs (this broker has no
 * authorizer; clients and tools probe these APIs and expect Kafka's error,
 * not a missing API).
 */
#include "dispatch.h"
#include "errors.h"

/* Kafka's own wording differs between the describe and the change APIs. */
static const char NO_AUTHORIZER_DESCRIBE[] = "No Authorizer is configured on the broker";
static const char NO_AUTHORIZER[] = "No Authorizer is configured.";

static kp_str no_authorizer(void)
{
    return (kp_str){NO_AUTHORIZER, (int32_t)(sizeof(NO_AUTHORIZER) - 1)};
}

void srv_h_describe_acls(srv_req *req)
{
    kp_describe_acls_response resp;
    kp_describe_acls_response_init(&resp);
    resp.error_code = KP_ERR_SECURITY_DISABLED;
    resp.error_message = (kp_str){NO_AUTHORIZER_DESCRIBE, (int32_t)(sizeof(NO_AUTHORIZER_DESCRIBE) - 1)};
    resp.resources_count = 0;
    srv_req_respond(req, &resp);
}

void srv_h_create_acls(srv_req *req)
{
    const kp_create_acls_request *rq = req->kr.body;
    int32_t n = rq->creations_count > 0 ? rq->creations_count : 0;
    kp_create_acls_response resp;
    kp_create_acls_response_init(&resp);
    resp.results = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp.results) + 1);
    if (!resp.results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp.results_count = n;
    for (int32_t i = 0; i < n; i++) {
        kp_create_acls_response_acl_creation_result_init(&resp.results[i]);
        resp.results[i].error_code = KP_ERR_SECURITY_DISABLED;
        resp.results[i].error_message = no_authorizer();
    }
    srv_req_respond(req, &resp);
}

void srv_h_delete_acls(srv_req *req)
{
    const kp_delete_acls_request *rq = req->kr.body;
    int32_t n = rq->filters_count > 0 ? rq->filters_count : 0;
    kp_delete_acls_response resp;
    kp_delete_acls_response_init(&resp);
    resp.filter_results = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp.filter_results) + 1);
    if (!resp.filter_results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp.filter_results_count = n;
    for (int32_t i = 0; i < n; i++) {
        kp_delete_acls_response_delete_acls_filter_result *f = &resp.filter_results[i];
        kp_delete_acls_response_delete_acls_filter_result_init(f);
        f->error_code = KP_ERR_SECURITY_DISABLED;
        f->error_message = no_authorizer();
        f->matching_acls_count = 0;
    }
    srv_req_respond(req, &resp);
}

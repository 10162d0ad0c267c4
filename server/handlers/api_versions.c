/*
 * api_versions.c — ApiVersions: the versions in dispatch.c's table, nothing
 * more, so a client never picks a version the broker cannot serve.
 */
#include "dispatch.h"
#include "errors.h"

void srv_h_api_versions(srv_req *req)
{
    kp_api_versions_response resp;
    kp_api_versions_response_init(&resp);
    size_t n;
    const srv_api *t = srv_api_table(&n);
    resp.api_keys = kp_arena_alloc(&req->arena, n * sizeof(*resp.api_keys));
    if (!resp.api_keys) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!srv_api_served(req->shard->b, &t[i]) || t[i].unstable == SRV_API_QUORUM)
            continue;
        resp.api_keys[k].api_key = t[i].key;
        resp.api_keys[k].min_version = t[i].min_version;
        resp.api_keys[k].max_version = t[i].max_version;
        k++;
    }
    resp.api_keys_count = k;
    resp.error_code = KP_ERR_NONE;
    srv_req_respond(req, &resp);
}

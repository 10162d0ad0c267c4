/*
 * dispatch.c — request decoding and the API table.
 *
 * Owns which API versions are served. Must not: hold handler logic beyond
 * the protocol-level refusals (malformed, unknown, unsupported).
 */
#include "dispatch.h"

#include <stdio.h>

#include "errors.h"
#include "logging.h"

/* Versions are those Kafka 3.9 serves to clients, where implemented. */
static const srv_api apis[] = {
    {0, 0, 11, srv_h_produce},
    {1, 0, 16, srv_h_fetch},
    {2, 0, 9, srv_h_list_offsets},
    {3, 0, 12, srv_h_metadata},
    {8, 0, 9, srv_h_offset_commit},
    {9, 0, 9, srv_h_offset_fetch},
    {10, 0, 6, srv_h_find_coordinator},
    {11, 0, 9, srv_h_join_group},
    {12, 0, 4, srv_h_heartbeat},
    {13, 0, 5, srv_h_leave_group},
    {14, 0, 5, srv_h_sync_group},
    {15, 0, 5, srv_h_describe_groups},
    {16, 0, 5, srv_h_list_groups},
    {18, 0, 4, srv_h_api_versions},
    {19, 0, 7, srv_h_create_topics},
    {20, 0, 6, srv_h_delete_topics},
    {21, 0, 2, srv_h_delete_records},
    {22, 0, 5, srv_h_init_producer_id},
    {23, 0, 4, srv_h_offset_for_leader_epoch},
    {29, 1, 3, srv_h_describe_acls}, /* v0 removed in Kafka 4 (KIP-896) */
    {30, 1, 3, srv_h_create_acls},
    {31, 1, 3, srv_h_delete_acls},
    {32, 0, 4, srv_h_describe_configs},
    {33, 0, 2, srv_h_alter_configs},
    {35, 0, 4, srv_h_describe_log_dirs},
    {37, 0, 3, srv_h_create_partitions},
    {42, 0, 2, srv_h_delete_groups},
    {44, 0, 1, srv_h_incremental_alter_configs},
    {47, 0, 0, srv_h_offset_delete},
    {60, 0, 1, srv_h_describe_cluster},
    {61, 0, 0, srv_h_describe_producers},
    /* KIP-848: v0 as Kafka 3.9 (v1, with regular expressions, is Kafka 4.0). */
    {68, 0, 1, srv_h_consumer_group_heartbeat},
    {69, 0, 0, srv_h_consumer_group_describe},
};

const srv_api *srv_api_table(size_t *count)
{
    *count = sizeof(apis) / sizeof(apis[0]);
    return apis;
}

static const srv_api *find(int16_t key)
{
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
        if (apis[i].key == key)
            return &apis[i];
    return NULL;
}

/* ApiVersions for a version we do not know: error 35 in a v0 body that
 * still lists every supported range, so the client can pick one. */
static void api_versions_unsupported(srv_req *req)
{
    req->kr.hdr.request_api_version = 0;
    kp_api_versions_response resp;
    kp_api_versions_response_init(&resp);
    resp.error_code = KP_ERR_UNSUPPORTED_VERSION;
    /* Only ApiVersions' own range, as Kafka answers (KIP-511): the client
     * retries with a version from it and learns the rest from that answer. */
    const srv_api *self = find(18);
    resp.api_keys = kp_arena_alloc(&req->arena, sizeof(*resp.api_keys));
    if (!self || !resp.api_keys) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp.api_keys[0].api_key = self->key;
    resp.api_keys[0].min_version = self->min_version;
    resp.api_keys[0].max_version = self->max_version;
    resp.api_keys_count = 1;
    srv_req_respond(req, &resp);
}

void srv_dispatch(srv_req *req)
{
    int rc = kp_request_decode(req->frame, req->frame_len, &req->arena, &req->kr);
    int16_t key = req->kr.hdr.request_api_key, ver = req->kr.hdr.request_api_version;
    const srv_api *api = rc == KP_E_SHORT && req->frame_len < 8 ? NULL : find(key);
    if (key == 18 && (rc == KP_E_VERSION || (api && (ver < api->min_version || ver > api->max_version)))) {
        api_versions_unsupported(req);
        return;
    }
    if (rc == KP_E_VERSION || !api) {
        char why[96];
        snprintf(why, sizeof(why), "unsupported API key %d version %d", key, ver);
        srv_req_fail_close(req, why);
        return;
    }
    if (rc) {
        char why[96];
        snprintf(why, sizeof(why), "malformed request: %s", kp_strerror(rc));
        srv_req_fail_close(req, why);
        return;
    }
    if (ver < api->min_version || ver > api->max_version) {
        char why[96];
        snprintf(why, sizeof(why), "unsupported version %d of API %s", ver, req->kr.api->name);
        srv_req_fail_close(req, why);
        return;
    }
    api->fn(req);
}

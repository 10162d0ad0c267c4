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
#include "quota.h"
#include "srv_assert.h"
#include "throttle_req.h"

/* Versions are those Kafka 3.9 serves to clients, where implemented. */
static const srv_api apis[] = {
    /* v12 is v11 on the wire; with a transactional id it means transactions
     * v2 (the partitions are added implicitly, produce.c). */
    {KP_API_PRODUCE, 0, 12, srv_h_produce, 0},
    {KP_API_FETCH, 0, 16, srv_h_fetch, 0},
    {KP_API_LIST_OFFSETS, 0, 9, srv_h_list_offsets, 0},
    {KP_API_METADATA, 0, 12, srv_h_metadata, 0},
    {KP_API_OFFSET_COMMIT, 0, 9, srv_h_offset_commit, 0},
    {KP_API_OFFSET_FETCH, 0, 9, srv_h_offset_fetch, 0},
    {KP_API_FIND_COORDINATOR, 0, 6, srv_h_find_coordinator, 0},
    {KP_API_JOIN_GROUP, 0, 9, srv_h_join_group, 0},
    {KP_API_HEARTBEAT, 0, 4, srv_h_heartbeat, 0},
    {KP_API_LEAVE_GROUP, 0, 5, srv_h_leave_group, 0},
    {KP_API_SYNC_GROUP, 0, 5, srv_h_sync_group, 0},
    {KP_API_DESCRIBE_GROUPS, 0, 5, srv_h_describe_groups, 0},
    {KP_API_LIST_GROUPS, 0, 5, srv_h_list_groups, 0},
    {KP_API_SASL_HANDSHAKE, 0, 1, srv_h_sasl_handshake, 0},
    {KP_API_API_VERSIONS, 0, 4, srv_h_api_versions, 0},
    {KP_API_CREATE_TOPICS, 0, 7, srv_h_create_topics, 0},
    {KP_API_DELETE_TOPICS, 0, 6, srv_h_delete_topics, 0},
    {KP_API_DELETE_RECORDS, 0, 2, srv_h_delete_records, 0},
    {KP_API_INIT_PRODUCER_ID, 0, 5, srv_h_init_producer_id, 0},
    /* Issue 16, the transaction coordinator: served and advertised whatever
     * unstable.api.versions.enable (docs/transactions.md, "Advertising"). */
    {KP_API_ADD_PARTITIONS_TO_TXN, 0, 5, srv_h_add_partitions_to_txn, 0},
    {KP_API_ADD_OFFSETS_TO_TXN, 0, 4, srv_h_add_offsets_to_txn, 0},
    {KP_API_END_TXN, 0, 5, srv_h_end_txn, 0},
    {KP_API_OFFSET_FOR_LEADER_EPOCH, 0, 4, srv_h_offset_for_leader_epoch, 0},
    {KP_API_WRITE_TXN_MARKERS, 1, 2, srv_h_write_txn_markers, 0},
    {KP_API_TXN_OFFSET_COMMIT, 0, 5, srv_h_txn_offset_commit, 0}, /* v5: implicit AddOffsetsToTxn */
    {KP_API_SASL_AUTHENTICATE, 0, 2, srv_h_sasl_authenticate, 0},
    {KP_API_DESCRIBE_ACLS, 1, 3, srv_h_describe_acls, 0}, /* v0 removed in Kafka 4 (KIP-896) */
    {KP_API_CREATE_ACLS, 1, 3, srv_h_create_acls, 0},
    {KP_API_DELETE_ACLS, 1, 3, srv_h_delete_acls, 0},
    {KP_API_DESCRIBE_CONFIGS, 0, 4, srv_h_describe_configs, 0},
    {KP_API_ALTER_CONFIGS, 0, 2, srv_h_alter_configs, 0},
    {KP_API_DESCRIBE_LOG_DIRS, 0, 4, srv_h_describe_log_dirs, 0},
    {KP_API_CREATE_PARTITIONS, 0, 3, srv_h_create_partitions, 0},
    {KP_API_DELETE_GROUPS, 0, 2, srv_h_delete_groups, 0},
    {KP_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, srv_h_incremental_alter_configs, 0},
    {KP_API_OFFSET_DELETE, 0, 0, srv_h_offset_delete, 0},
    {KP_API_DESCRIBE_CLUSTER, 0, 1, srv_h_describe_cluster, 0},
    {KP_API_DESCRIBE_PRODUCERS, 0, 0, srv_h_describe_producers, 0},
    {KP_API_DESCRIBE_TRANSACTIONS, 0, 0, srv_h_describe_transactions, 0},
    {KP_API_LIST_TRANSACTIONS, 0, 1, srv_h_list_transactions, 0},
    {KP_API_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0, srv_h_describe_user_scram_credentials, 0},
    {KP_API_ALTER_USER_SCRAM_CREDENTIALS, 0, 0, srv_h_alter_user_scram_credentials, 0},
    {KP_API_DESCRIBE_CLIENT_QUOTAS, 0, 1, srv_h_describe_client_quotas, 0},
    {KP_API_ALTER_CLIENT_QUOTAS, 0, 1, srv_h_alter_client_quotas, 0},
    /* KIP-848: v0 as Kafka 3.9 (v1, with regular expressions, is Kafka 4.0). */
    {KP_API_CONSUMER_GROUP_HEARTBEAT, 0, 1, srv_h_consumer_group_heartbeat, 0},
    {KP_API_CONSUMER_GROUP_DESCRIBE, 0, 0, srv_h_consumer_group_describe, 0},
    /* KIP-932 share groups, served by default as Kafka 4.4 does (state and
     * group configs durable, docs/share-groups.md); Kafka 4.4's versions. */
    {KP_API_SHARE_GROUP_HEARTBEAT, 1, 1, srv_h_share_group_heartbeat, 0},
    {KP_API_SHARE_GROUP_DESCRIBE, 1, 1, srv_h_share_group_describe, 0},
    {KP_API_SHARE_FETCH, 1, 2, srv_h_share_fetch, 0},
    {KP_API_SHARE_ACKNOWLEDGE, 1, 2, srv_h_share_acknowledge, 0},
    {KP_API_DESCRIBE_SHARE_GROUP_OFFSETS, 0, 1, srv_h_describe_share_group_offsets, 0},
    {KP_API_ALTER_SHARE_GROUP_OFFSETS, 0, 0, srv_h_alter_share_group_offsets, 0},
    {KP_API_DELETE_SHARE_GROUP_OFFSETS, 0, 0, srv_h_delete_share_group_offsets, 0},
    /* Registration and heartbeats of the metadata quorum's members (quorum.c). */
    {KP_API_BROKER_REGISTRATION, 0, 0, srv_h_broker_registration, SRV_API_QUORUM},
    {KP_API_BROKER_HEARTBEAT, 0, 0, srv_h_broker_heartbeat, SRV_API_QUORUM},
    /* Metadata changes a follower forwards to the active controller (envelope.c). */
    {KP_API_ENVELOPE, 0, 0, srv_h_envelope, SRV_API_QUORUM},
};

const srv_api *srv_api_table(size_t *count)
{
    *count = sizeof(apis) / sizeof(apis[0]);
    return apis;
}

int srv_api_served(const srv_broker *b, const srv_api *api)
{
    if (api->unstable == SRV_API_QUORUM)
        return b->cfg.nvoters > 0;
    return !api->unstable || b->cfg.unstable_api_versions;
}

const srv_api *srv_api_find(const srv_broker *b, int16_t key)
{
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
        if (apis[i].key == key)
            return srv_api_served(b, &apis[i]) ? &apis[i] : NULL;
    return NULL;
}

void srv_dispatch_handler(srv_req *req)
{
    const srv_api *api = srv_api_find(req->shard->b, req->kr.hdr.request_api_key);
    SRV_ASSERT(api != NULL, "a decoded request of API %d has no handler", req->kr.hdr.request_api_key);
    api->fn(req);
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
    const srv_api *self = srv_api_find(req->shard->b, KP_API_API_VERSIONS);
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
    const srv_api *api = rc == KP_E_SHORT && req->frame_len < 8 ? NULL : srv_api_find(req->shard->b, key);
    if (key == KP_API_API_VERSIONS &&
        (rc == KP_E_VERSION || (api && (ver < api->min_version || ver > api->max_version)))) {
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
    /* A client under a request quota is served one request at a time (as
     * Kafka serves every connection), so the mute its answer brings holds
     * back what it pipelined. */
    if (srv_quota_window_max(req, SRV_QK_REQUEST_PERCENTAGE) >= 0)
        srv_req_serialize(req);
    if (srv_forward_wanted(req)) {
        srv_forward(req);
        return;
    }
    api->fn(req);
}

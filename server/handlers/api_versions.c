/*
 * api_versions.c — ApiVersions: the versions in dispatch.c's table, nothing
 * more, so a client never picks a version the broker cannot serve; from v3
 * the features of srv_features.h.
 */
#include "dispatch.h"
#include "errors.h"
#include "srv_features.h"

/* Whether the coordinator APIs a transactions-v2 producer needs are served:
 * the transaction.version feature is only true then. */
static bool txn_served(const srv_broker *b, const srv_api *t, size_t n)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].key != KP_API_END_TXN && t[i].key != KP_API_TXN_OFFSET_COMMIT &&
            t[i].key != KP_API_ADD_PARTITIONS_TO_TXN)
            continue;
        if (!srv_api_served(b, &t[i]))
            return false;
        found++;
    }
    return found == 3;
}

static int put_features(srv_req *req, kp_api_versions_response *resp, bool txn)
{
    srv_feature f[SRV_FEATURES_MAX];
    int nf = srv_features(txn, f);
    resp->supported_features =
        kp_arena_alloc(&req->arena, (size_t)nf * sizeof(*resp->supported_features) + 1);
    resp->finalized_features =
        kp_arena_alloc(&req->arena, (size_t)nf * sizeof(*resp->finalized_features) + 1);
    if (!resp->supported_features || !resp->finalized_features)
        return -1;
    int32_t nfin = 0;
    for (int i = 0; i < nf; i++) {
        kp_str name = {f[i].name, f[i].name_len};
        resp->supported_features[i].name = name;
        resp->supported_features[i].min_version = f[i].min_supported;
        resp->supported_features[i].max_version = f[i].max_supported;
        if (f[i].finalized > 0) {
            /* Kafka answers min = max = the finalized level. */
            resp->finalized_features[nfin].name = name;
            resp->finalized_features[nfin].min_version_level = f[i].finalized;
            resp->finalized_features[nfin].max_version_level = f[i].finalized;
            nfin++;
        }
    }
    resp->supported_features_count = nf;
    resp->finalized_features_count = nfin;
    /* Kafka's epoch is its metadata offset; ours is the start time, which
     * grows across the restarts that are the only way the list changes, so
     * a client that caches the highest epoch it saw picks the change up
     * (Kafka's producer ignores an epoch it has already seen). */
    resp->finalized_features_epoch = req->shard->b->features_epoch;
    return 0;
}

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
    if (put_features(req, &resp, txn_served(req->shard->b, t, n))) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp.error_code = KP_ERR_NONE;
    srv_req_respond(req, &resp);
}

/*
 * throttle_req.c — client quotas applied to a request (throttle_req.h).
 *
 * Owns nothing. Must not: touch another shard's rate table: each shard
 * measures the traffic of its own connections and learns the others' from
 * their usage reports (throttle_share.h), which it sends on when a charge
 * makes one urgent.
 */
#include "throttle_req.h"

#include "meta.h"
#include "quota.h"
#include "srv_assert.h"
#include "throttle.h"
#include "throttle_share.h"

#include <string.h>

#include "kp_messages.h"

static int client_of(srv_req *req, kp_str *user, kp_str *client)
{
    const srv_meta *m = req->shard->meta;
    if (!m || !m->quotas || !req->shard->throttle)
        return 0;
    *user = srv_req_user(req);
    *client = req->kr.hdr.client_id;
    return 1;
}

int32_t srv_quota_charge(srv_req *req, int key, double amount)
{
    kp_str user, client;
    if (!client_of(req, &user, &client))
        return 0;
    int64_t now = srv_mono_ms();
    int64_t ms =
        srv_throttle_record(req->shard->throttle, req->shard->meta->quotas, key, user, client, amount, now);
    srv_quota_share_send(req->shard, srv_throttle_urgent(req->shard->throttle, now));
    if (ms > 0)
        srv_m_add(&req->shard->metrics.quota_throttle_ms[key], (uint64_t)ms);
    return ms > INT32_MAX ? INT32_MAX : (int32_t)ms;
}

void srv_quota_uncharge(srv_req *req, int key, double amount)
{
    kp_str user, client;
    if (client_of(req, &user, &client))
        srv_throttle_unrecord(req->shard->throttle, req->shard->meta->quotas, key, user, client, amount,
                              srv_mono_ms());
}

double srv_quota_window_max(srv_req *req, int key)
{
    kp_str user, client;
    if (!client_of(req, &user, &client))
        return -1;
    return srv_throttle_max_in_window(req->shard->throttle, req->shard->meta->quotas, key, user, client);
}

int srv_quota_mutation(srv_req *req, double permits, int strict)
{
    kp_str user, client;
    if (!client_of(req, &user, &client))
        return 0;
    return srv_throttle_mutation(req->shard->throttle, req->shard->meta->quotas, user, client, permits,
                                 strict, srv_mono_ms());
}

int32_t srv_quota_mutation_ms(srv_req *req)
{
    kp_str user, client;
    if (!client_of(req, &user, &client))
        return 0;
    int64_t ms =
        srv_throttle_mutation_ms(req->shard->throttle, req->shard->meta->quotas, user, client, srv_mono_ms());
    if (ms > 0)
        srv_m_add(&req->shard->metrics.quota_throttle_ms[SRV_QK_CONTROLLER_MUTATION_RATE], (uint64_t)ms);
    return ms > INT32_MAX ? INT32_MAX : (int32_t)ms;
}

int32_t srv_quota_charge_time(srv_req *req, uint64_t ns)
{
    int32_t ms = srv_quota_charge(req, SRV_QK_REQUEST_PERCENTAGE, (double)ns * 100.0 / 1e9);
    int64_t cap = (int64_t)req->shard->b->cfg.quota_window_size_seconds * 1000;
    return ms > cap ? (int32_t)cap : ms;
}

/* Kafka charges what its request handlers do for clients. SASL exchanges
 * (first authentication and KIP-368 re-authentication) are run by its
 * authenticator in the network layer, before and beside KafkaApis, and so
 * is whatever a SASL connection sends before it is authenticated
 * (ApiVersions). Kafka's other exemptions (cluster actions: LeaderAndIsr,
 * UpdateMetadata, ControlledShutdown, WriteTxnMarkers, AlterPartition,
 * broker heartbeats, KRaft; follower fetches) are APIs this broker does not
 * serve. */
static int exempt(srv_req *req)
{
    int16_t key = req->kr.hdr.request_api_key;
    if (key == KP_API_SASL_HANDSHAKE || key == KP_API_SASL_AUTHENTICATE)
        return 1;
    int auth = srv_req_auth_state(req);
    return auth != SRV_AUTH_NOT_SASL && auth != SRV_AUTH_DONE;
}

const void *srv_quota_respond(srv_req *req, const void *body)
{
    /* The common case (no request quota anywhere) costs two loads. */
    const srv_meta *m = req->shard->meta;
    if (!body || !m || !m->quotas || !(m->quotas->keys_used & (1u << SRV_QK_REQUEST_PERCENTAGE)) ||
        exempt(req))
        return body;
    int16_t key = req->kr.hdr.request_api_key, ver = req->kr.hdr.request_api_version;
    int32_t ms = srv_quota_charge_time(req, srv_req_cpu_ns(req));
    /* The rest of this stretch is not charged: the answer leaves now. */
    if (req->shard->timed == req)
        req->shard->timed = NULL;
    if (ms <= 0)
        return body;
    if (ms > req->mute_ms)
        srv_req_mute(req, ms);
    int32_t *f = kp_response_throttle_field(key, ver, (void *)body);
    if (!f || *f >= ms)
        return body;
    /* The handler's body may be const or shared: a shallow copy in the
     * request's arena carries the larger throttle time. */
    const kp_api_desc *api = kp_api_lookup(key);
    SRV_ASSERT(api, "answering API %d, which has no descriptor", key);
    void *copy = kp_arena_alloc(&req->arena, api->response->size);
    if (!copy)
        return body; /* out of memory: the mute still holds the client back */
    memcpy(copy, body, api->response->size);
    kp_response_set_throttle(key, ver, copy, ms);
    return copy;
}

/*
 * throttle_req.h — client quotas applied to a request: the shard's rate
 * table, the quotas of the shard's metadata version, and the client's user
 * and client id, so a handler asks one question ("this request took N
 * bytes: how long must its client wait?").
 *
 * Owns nothing. Must not: mute or answer anything itself (the handler sets
 * throttle_time_ms and calls srv_req_mute, as KIP-219 orders them).
 */
#ifndef SRV_THROTTLE_REQ_H
#define SRV_THROTTLE_REQ_H

#include "broker.h"

/* Records amount on quota key (SRV_QK_*) for req's client; the throttle
 * time in ms, 0 without a quota or within it. */
int32_t srv_quota_charge(srv_req *req, int key, double amount);
void srv_quota_uncharge(srv_req *req, int key, double amount);
/* The most req's client may take in one quota window span, or -1. */
double srv_quota_window_max(srv_req *req, int key);

/* request_percentage: ns of this shard's time spent on req, charged as
 * Kafka charges request handler time (100% = one thread for the whole
 * window); the throttle time, at most one quota window (Kafka's bound). */
int32_t srv_quota_charge_time(srv_req *req, uint64_t ns);
/* request_percentage of every request, in one place (the respond path):
 * charges this shard's time on req (srv_req_cpu_ns: its dispatch and the
 * continuations of its calls on this shard; not time on other shards, nor
 * in the network thread's reads and writes) unless Kafka exempts it, mutes
 * the connection for the throttle time and returns the body to encode:
 * body itself, or a copy whose ThrottleTimeMs is the larger of the one the
 * handler set (a byte-rate or mutation throttle) and this one. */
const void *srv_quota_respond(srv_req *req, const void *body);
/* controller_mutation_rate for `permits` partitions created or deleted:
 * -1 when the request's version knows THROTTLING_QUOTA_EXCEEDED (strict)
 * and the client's quota is already exhausted (refuse that topic), else 0
 * and recorded. */
int srv_quota_mutation(srv_req *req, double permits, int strict);
/* The throttle time to answer a mutating request with (and mute for). */
int32_t srv_quota_mutation_ms(srv_req *req);

#endif

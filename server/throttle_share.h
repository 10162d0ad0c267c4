/*
 * throttle_share.h — client quotas held broker-wide: every exchange period
 * each shard reports the byte and request-time rates it measured to every
 * other shard (one srv_call per peer), so a client spread over shards is
 * throttled on the sum, as one Kafka broker throttles it.
 *
 * Owns nothing: the reports are the calls' own memory, freed when they come
 * back. Must not: touch another shard's rate table except from a call's run
 * on that shard.
 */
#ifndef SRV_THROTTLE_SHARE_H
#define SRV_THROTTLE_SHARE_H

#include "broker.h"
#include "throttle.h"

/* How often a shard reports every recent rate (a client that slows down or
 * stops is seen so). A rate that grows by more than an eighth of its bound
 * is reported at once (srv_throttle_urgent), so what a shard has not told
 * its peers stays under an eighth of the bound plus one request. */
#define SRV_QUOTA_SHARE_MS 200

/* From the shard's tick: sends this shard's report to every peer when a
 * period has passed and a recent rate is worth reporting. */
void srv_quota_share_tick(srv_shard *s, int64_t now_ms);
/* Sends report u (taken: freed here or by the peers) to every other shard. */
void srv_quota_share_send(srv_shard *s, srv_usage *u);

#endif

/*
 * replica.h — the follower side of replication: per shard, one fetcher per
 * leader node, copying into this node's replicas what their leaders have.
 *
 * Owns: the shard's fetcher connections (libevent clients to the leaders'
 * first listeners) and nothing of the partitions but the appends it makes.
 * Must not: be touched by any thread but its shard's, block the loop
 * (addresses must be numeric: no name resolution here), or append to a
 * partition this node leads.
 */
#ifndef SRV_REPLICA_H
#define SRV_REPLICA_H

#include "broker.h"

/* Starts, stops and feeds the fetchers of s from its partitions and its
 * metadata version: called from the shard's tick (cheap when idle). */
void srv_replicas_tick(srv_shard *s);
/* Closes every fetcher of s (its loop stopped or stopping). */
void srv_replicas_stop(srv_shard *s);

#endif

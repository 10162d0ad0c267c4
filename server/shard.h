/*
 * shard.h — start, run and stop shards (see broker.h for the types).
 */
#ifndef SRV_SHARD_H
#define SRV_SHARD_H

#include "broker.h"

int srv_shard_init(srv_broker *b, srv_shard *s, int id); /* main thread */
int srv_shard_start(srv_shard *s);
void srv_shard_join(srv_shard *s);
void srv_shard_destroy(srv_shard *s); /* after join */

#endif

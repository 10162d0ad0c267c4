/*
 * msg.h — a shard's side of cross-shard messaging: its inbox rings, doorbell,
 * overflow lists and deferred queue. srv_shard_send and srv_shard_post, which
 * every module uses, are declared with srv_msg in broker.h.
 *
 * Owns: setting up and tearing down a shard's messaging (called by shard.c
 * only). Must not: be called from any thread but the shard's own once its
 * loop runs.
 */
#ifndef SRV_MSG_H
#define SRV_MSG_H

#include "broker.h"

/* Main thread, after s->base and before the shard's thread starts; b->nshards
 * set. Returns 0 or a negative errno. */
int srv_msg_init(srv_shard *s);
/* On the shard's thread, before its loop: listen for the doorbell. */
void srv_msg_start(srv_shard *s);
/* After join: frees the rings, events and doorbell (undelivered messages
 * are not freed: at shutdown every shard has stopped sending). */
void srv_msg_destroy(srv_shard *s);

#endif

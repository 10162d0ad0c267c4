/*
 * conn.h — client connections of one shard: accept, framing, request queue,
 * ordered responses, backpressure and idle timeouts.
 */
#ifndef SRV_CONN_H
#define SRV_CONN_H

#include "broker.h"

int srv_conns_listen(srv_shard *s);     /* on the shard thread, at start */
void srv_conns_tick(srv_shard *s);      /* idle timeouts */
void srv_conns_close_all(srv_shard *s); /* at shutdown */
void srv_conns_unlisten(srv_shard *s);  /* frees the listeners (after the loop ended) */

#endif

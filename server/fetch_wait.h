/*
 * fetch_wait.h — parked long polls: requests on this shard waiting for data
 * in partitions of any shard, until woken or their max wait passes.
 *
 * Owns: the shard's registry of parked waits (by id), their expiry timers,
 * carrying a partition owner's wake to the waiter's shard, and ending every
 * wait at shutdown. Must not: know what waits (a waiter is a callback and its
 * argument, so core never names a handler), or be touched by any thread but
 * the shard's own (wakes cross shards only as messages).
 */
#ifndef SRV_FETCH_WAIT_H
#define SRV_FETCH_WAIT_H

#include <stdint.h>

#include "broker.h"

typedef enum srv_wait_why {
    SRV_WAIT_DATA,     /* a partition it watches has new data (or changed) */
    SRV_WAIT_EXPIRED,  /* its max wait passed */
    SRV_WAIT_SHUTDOWN, /* the shard stops: answer now */
} srv_wait_why;

/* Called on the waiter's shard, once per wait: the wait is already
 * unregistered (its id is stale) when this runs. */
typedef void (*srv_wait_fn)(srv_shard *s, void *arg, srv_wait_why why);

/* Parks a wait that expires after timeout_ms. Returns its id (never 0), or
 * 0 when out of memory: nothing was parked and the caller answers now. */
uint64_t srv_fetch_wait_park(srv_shard *s, int64_t timeout_ms, srv_wait_fn fn, void *arg);

/* Unregisters a wait without calling it; a stale id is ignored. */
void srv_fetch_wait_cancel(srv_shard *s, uint64_t id);

/* From a partition's owner `from`: wake wait `id` on shard `shard`. Always
 * delivered later (posted or messaged), never inline: owners call this from
 * storage callbacks that must not be re-entered. */
void srv_fetch_wait_notify(srv_shard *from, int shard, uint64_t id);

/* At shutdown, after connections closed: ends every wait (SRV_WAIT_SHUTDOWN),
 * so waiters answer and free themselves. */
void srv_fetch_wait_shutdown(srv_shard *s);

#endif

/*
 * auth_limit.h — the failed-authentication budget of a client address
 * (connection.failed.authentication.delay.ms, per address instead of per
 * connection).
 *
 * Owns: one table per shard of address -> the time its next failure answer
 * may leave, and the srv_call that takes a failure to the shard owning its
 * address (a hash of the address): every failure of one address, whatever
 * shard its connection lives on, is counted on that one shard, so the budget
 * holds across shards without shared state. Must not: answer or close
 * connections (conn.c does, when told how long to wait).
 */
#ifndef SRV_AUTH_LIMIT_H
#define SRV_AUTH_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"

typedef struct srv_authlim srv_authlim;

/* Entries kept per shard: beyond them a failure falls back to waiting the
 * plain delay (Kafka's per-connection behaviour), with a log line. */
#define SRV_AUTHLIM_SLOTS 4096

srv_authlim *srv_authlim_new(void);
void srv_authlim_free(srv_authlim *t);

/* A failure of `host` (hlen bytes) at now_ms: the answers of one address
 * leave at least delay_ms apart, so k failures at once wait delay, 2 delay,
 * ... k delay. Returns how long this one waits (>= delay_ms); -1 when the
 * table is full of live entries (the caller waits delay_ms). */
int64_t srv_authlim_reserve(srv_authlim *t, const char *host, size_t hlen, int64_t now_ms, int delay_ms);

/* From req's shard: reserves on the shard owning `host`, then runs
 * then(req, wait_ms) back on req's shard. */
void srv_authlim_failure(srv_req *req, const char *host, int delay_ms,
                         void (*then)(srv_req *req, int64_t wait_ms));

/* At shutdown, on the shard's thread: frees its table. */
void srv_authlim_shard_free(srv_shard *s);

#endif

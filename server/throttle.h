/*
 * throttle.h — quota enforcement: Kafka's windowed rate (SampledStat +
 * Rate of its metrics library), the throttle time Kafka derives from a
 * violation, and a shard's table of measured rates per quota and client.
 *
 * Owns the rate samples. Must not: be shared between shards (a table
 * belongs to one shard's thread), or read the clock itself (times are
 * passed in, so tests drive a fake clock).
 */
#ifndef SRV_THROTTLE_H
#define SRV_THROTTLE_H

#include <stdint.h>

#include "quota.h"

#define SRV_RATE_MAX_SAMPLES 64

/* Kafka's Rate over a SampledStat of `samples` windows of window_ms each
 * (quota.window.num, quota.window.size.seconds). */
typedef struct srv_rate {
    int samples;
    int64_t window_ms;
    int n;   /* samples created so far */
    int cur; /* the current sample */
    int64_t start[SRV_RATE_MAX_SAMPLES];
    double val[SRV_RATE_MAX_SAMPLES];
} srv_rate;

void srv_rate_init(srv_rate *r, int samples, int64_t window_ms);
void srv_rate_record(srv_rate *r, double v, int64_t now_ms);
/* Undoes a record (Kafka's unrecord of a throttled fetch's bytes). */
void srv_rate_unrecord(srv_rate *r, double v, int64_t now_ms);
/* The span the rate divides by, as Kafka's Rate.windowSize: elapsed since
 * the oldest sample, at least samples-1 full windows. */
int64_t srv_rate_window(srv_rate *r, int64_t now_ms);
/* Per second. */
double srv_rate_measure(srv_rate *r, int64_t now_ms);
/* Kafka's QuotaUtils.throttleTime: 0 while the rate is within bound, else
 * round((rate - bound) / bound * window). */
int64_t srv_rate_throttle_ms(srv_rate *r, double bound, int64_t now_ms);

/* Kafka's TokenBucket (controller_mutation_rate, KIP-599): tokens refill at
 * rate per second up to a burst of rate x samples x window; a record takes
 * tokens and may leave them below zero. */
typedef struct srv_tokens {
    double tokens;
    int64_t last_ms;
    int started;
} srv_tokens;

void srv_tokens_record(srv_tokens *b, double rate, double burst, double permits, int64_t now_ms);
/* The tokens left at now (refilled first). */
double srv_tokens_left(srv_tokens *b, double rate, double burst, int64_t now_ms);
/* Kafka's throttle time of an exhausted bucket: round(-tokens / rate * 1000),
 * 0 while tokens remain. */
int64_t srv_tokens_throttle_ms(srv_tokens *b, double rate, double burst, int64_t now_ms);

/* ---- a shard's table -------------------------------------------------------- */

typedef struct srv_throttle srv_throttle;
srv_throttle *srv_throttle_new(int samples, int64_t window_ms);
void srv_throttle_free(srv_throttle *t);

/* Records `amount` for the client (user = principal name, client id) on
 * quota `key` under the quotas q, and returns the throttle time in ms (0
 * when no quota applies or it is kept). A rate is shared by the clients
 * Kafka's metric tags put together (quota.h, srv_quota_lookup). */
int64_t srv_throttle_record(srv_throttle *t, const srv_quota_set *q, int key, kp_str user, kp_str client,
                            double amount, int64_t now_ms);
/* Takes back a record (a throttled fetch answered without its data). */
void srv_throttle_unrecord(srv_throttle *t, const srv_quota_set *q, int key, kp_str user, kp_str client,
                           double amount, int64_t now_ms);
/* The most a client may take in one window span under its quota (Kafka's
 * getMaxValueInQuotaWindow), or -1 without a quota: bounds fetch sizes. */
double srv_throttle_max_in_window(srv_throttle *t, const srv_quota_set *q, int key, kp_str user,
                                  kp_str client);
/* controller_mutation_rate: with strict (the request's version knows
 * THROTTLING_QUOTA_EXCEEDED), a mutation is refused (returns -1) while the
 * client's tokens are below zero, as Kafka's StrictControllerMutationQuota;
 * otherwise its permits are recorded (0). */
int srv_throttle_mutation(srv_throttle *t, const srv_quota_set *q, kp_str user, kp_str client, double permits,
                          int strict, int64_t now_ms);
/* The throttle time the client's mutations call for at now (0: none). */
int64_t srv_throttle_mutation_ms(srv_throttle *t, const srv_quota_set *q, kp_str user, kp_str client,
                                 int64_t now_ms);
/* Forgets rates idle for an hour (Kafka expires its quota sensors so). */
void srv_throttle_expire(srv_throttle *t, int64_t now_ms);
int srv_throttle_count(const srv_throttle *t);

#endif

/*
 * throttle.h — quota enforcement: Kafka's windowed rate (SampledStat +
 * Rate of its metrics library), the throttle time Kafka derives from a
 * violation, and a shard's table of measured rates per quota and client,
 * with the rates the other shards last reported for the same clients (a
 * usage report: srv_throttle_report / srv_throttle_merge).
 *
 * Owns the rate samples and the peers' reported rates. Must not: be shared
 * between shards (a table belongs to one shard's thread; reports travel as
 * copies, throttle_share.c carries them), or read the clock itself (times
 * are passed in, so tests drive a fake clock).
 */
#ifndef SRV_THROTTLE_H
#define SRV_THROTTLE_H

#include <stddef.h>
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

/* ---- usage reports between shards ------------------------------------------ */

/* A shard adds rates for clients only other shards report while its table
 * holds fewer than this (the memory bound of reports). */
#define SRV_THROTTLE_MAX_REPORTED 65536

/* One client's rate on one quota, measured by the reporting shard. A name
 * of length -1 is not part of the rate's tags. */
typedef struct srv_usage_entry {
    int key;
    kp_str user;
    kp_str client;
    double rate; /* per second, as srv_rate_measure */
} srv_usage_entry;

/* A report: one allocation (entries and their names), immutable once built. */
typedef struct srv_usage {
    int n;
    size_t size; /* of the whole block */
    srv_usage_entry e[];
} srv_usage;

/* The byte-rate and request_percentage rates of t that were recorded within
 * the last window span plus `grace_ms` (so a client that stopped is
 * reported once more at 0 before it leaves the report), or NULL when there
 * is none or memory ran out. Free with free(). */
srv_usage *srv_throttle_report(srv_throttle *t, int64_t grace_ms, int64_t now_ms);
/* The report of one rate that grew, since it was last reported, by more
 * than an eighth of its bound (noted by srv_throttle_record when t shares
 * with other shards), or NULL: sent at once, so a burst is seen by the peers
 * before the next period. Free with free(). */
srv_usage *srv_throttle_urgent(srv_throttle *t, int64_t now_ms);
/* t reports to nshards - 1 peers (urgent reports are noted only when > 1). */
void srv_throttle_share(srv_throttle *t, int nshards);
/* A copy of u for another peer (each report is freed by its receiver). */
srv_usage *srv_usage_copy(const srv_usage *u);
/* Takes peer `from` (of npeers shards)'s report: each listed rate replaces
 * what that peer reported before for the same client. A throttle time is
 * then computed from the sum of this shard's rate and its peers' (the
 * broker-wide rate). A rate a peer stops listing keeps its last value,
 * which srv_throttle_report makes 0. */
void srv_throttle_merge(srv_throttle *t, int from, int npeers, const srv_usage *u, int64_t now_ms);
/* The sum of the peers' last reported rates for (key, tags), 0 if none. */
double srv_throttle_peer_rate(srv_throttle *t, int key, kp_str user, kp_str client);

#endif

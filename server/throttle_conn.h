/*
 * throttle_conn.h — connection limits as Kafka's ConnectionQuotas keeps
 * them: max.connections (broker-wide and per listener), max.connections.per.ip
 * with its overrides, and max.connection.creation.rate per listener.
 *
 * Owns the counts. Must not: be used by any shard but the accepting one
 * (SRV_ACCEPT_SHARD): every connection is accepted there, and the owning
 * shards report closes back to it as messages, so one thread keeps every
 * count without shared mutable state. Knows no sockets or events (conn.c
 * acts on its answers), and reads no clock (times are passed in).
 */
#ifndef SRV_THROTTLE_CONN_H
#define SRV_THROTTLE_CONN_H

#include <stddef.h>
#include <stdint.h>

#define SRV_CONNLIMIT_MAX_LISTENERS 8

typedef struct srv_connlimit srv_connlimit;

typedef struct srv_connlimit_config {
    int nlisteners;
    int32_t max_total;                                  /* max.connections */
    int32_t max_listener[SRV_CONNLIMIT_MAX_LISTENERS];  /* listener.name.<l>.max.connections */
    int32_t rate_listener[SRV_CONNLIMIT_MAX_LISTENERS]; /* (listener.name.<l>.)max.connection.creation.rate */
    int32_t max_per_ip;                                 /* max.connections.per.ip */
    const char *overrides;                              /* max.connections.per.ip.overrides */
    int samples;                                        /* quota.window.num */
    int64_t window_ms;                                  /* quota.window.size.seconds */
} srv_connlimit_config;

/* NULL with err filled when the overrides do not parse (Kafka's message);
 * host names are resolved here (start-up only: it may block). */
srv_connlimit *srv_connlimit_new(const srv_connlimit_config *cfg, char *err, size_t errlen);
void srv_connlimit_free(srv_connlimit *cl);

/* A connection from ip (numeric text) accepted on listener: 0 and counted,
 * or -1 (not counted) when ip already has its most (*limit set). */
int srv_connlimit_admit(srv_connlimit *cl, int listener, const char *ip, int32_t *limit);
void srv_connlimit_release(srv_connlimit *cl, int listener, const char *ip);
/* The listener must stop accepting: it or the broker is at its most. */
int srv_connlimit_full(const srv_connlimit *cl, int listener);
/* Records a connection created on listener at now; the ms accepting on it
 * must pause to keep max.connection.creation.rate (0: none). */
int64_t srv_connlimit_created(srv_connlimit *cl, int listener, int64_t now_ms);
/* connection_creation_rate of ip (a quota of `rate` per second): records
 * the new connection and returns 0, or the ms Kafka delays closing it when
 * it is over (it is then not recorded, as Kafka takes it back). */
int64_t srv_connlimit_ip_created(srv_connlimit *cl, const char *ip, double rate, int64_t now_ms);
/* Forgets per-address rates idle for a whole span. */
void srv_connlimit_expire(srv_connlimit *cl, int64_t now_ms);
int32_t srv_connlimit_total(const srv_connlimit *cl);
int32_t srv_connlimit_ip_count(const srv_connlimit *cl, const char *ip);

#endif

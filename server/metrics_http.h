/*
 * metrics_http.h — the scrape endpoint (metrics.port) and the partition gauges
 * each shard hands it.
 */
#ifndef SRV_METRICS_HTTP_H
#define SRV_METRICS_HTTP_H

#include "metrics.h"

struct srv_broker;
struct srv_shard;

/* Starts the HTTP thread on cfg.metrics_port (0: none). Returns 0 or -errno. */
int srv_metrics_start(struct srv_broker *b);
void srv_metrics_stop(struct srv_broker *b);

/* On the shard's tick: publishes partition gauges when the reader took the
 * previous text (cheap: at most once per tick, never blocking). */
void srv_metrics_publish_partitions(struct srv_shard *s);

#endif

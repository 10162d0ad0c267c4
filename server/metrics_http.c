/*
 * metrics_http.c — the Prometheus endpoint: an HTTP thread (libevent evhttp)
 * that sums the shards' counters on each scrape.
 *
 * Partition gauges need the storage engine, which only the owning shard may
 * touch: each shard renders them as text once a second and hands the text
 * over with an atomic exchange (whoever holds the pointer owns it), so the
 * reader never waits and the shard never blocks. Must not: write a shard's
 * counters or touch its partitions from the HTTP thread.
 */
#include "metrics_http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker.h"
#include "logging.h"
#include "partition.h"

typedef struct srv_metrics_srv {
    pthread_t thread;
    int stop_fd; /* an eventfd: stopping needs no cross-thread libevent call */
    struct event *stop_ev;
    struct event_base *base;
    struct evhttp *http;
    char **cached; /* per shard: the last partition text taken */
    uint64_t *last_busy;
    uint64_t last_scrape_ns;
    double *busy_ratio;
} srv_metrics_srv;

static uint64_t ld(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void hist_sum(srv_histogram *acc, const srv_histogram *h)
{
    for (int i = 0; i < SRV_LAT_NBUCKETS; i++)
        acc->buckets[i] += ld(&h->buckets[i]);
    acc->count += ld(&h->count);
    acc->sum_us += ld(&h->sum_us);
}

static void hist_print(struct evbuffer *out, const char *name, const char *labels, const srv_histogram *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < SRV_LAT_NBUCKETS; i++) {
        cum += h->buckets[i];
        if (i < SRV_LAT_NBUCKETS - 1)
            evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                (double)srv_lat_bounds_us[i] / 1e6, (unsigned long long)cum);
        else
            evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                                (unsigned long long)cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    evbuffer_add_printf(out, "%s_sum%s%s%s %.6f\n", name, open, labels, close, (double)h->sum_us / 1e6);
    evbuffer_add_printf(out, "%s_count%s%s%s %llu\n", name, open, labels, close,
                        (unsigned long long)h->count);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    srv_broker *b = arg;
    srv_metrics_srv *ms = b->metrics;
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    uint64_t now = srv_now_ns();
    uint64_t interval = now - ms->last_scrape_ns;
    ms->last_scrape_ns = now;

    evbuffer_add_printf(out, "# HELP kbroker_request_latency_seconds Time from a request's arrival to its "
                             "answer, by API.\n# TYPE kbroker_request_latency_seconds histogram\n");
    for (int k = 0; k <= KP_API_KEY_MAX; k++) {
        srv_histogram acc = {0};
        for (int s = 0; s < b->nshards; s++)
            hist_sum(&acc, &b->shards[s].metrics.api[k]);
        if (!acc.count)
            continue;
        const kp_api_desc *api = kp_api_lookup((int16_t)k);
        char labels[96];
        snprintf(labels, sizeof(labels), "api=\"%s\"", api ? api->name : "unknown");
        hist_print(out, "kbroker_request_latency_seconds", labels, &acc);
    }
    evbuffer_add_printf(out, "# HELP kbroker_requests_refused_total Requests refused at the protocol level "
                             "(malformed, unsupported), by API key.\n# TYPE kbroker_requests_refused_total "
                             "counter\n");
    for (int k = 0; k <= KP_API_KEY_MAX + 1; k++) {
        uint64_t n = 0;
        for (int s = 0; s < b->nshards; s++)
            n += ld(&b->shards[s].metrics.api_errors[k]);
        if (!n)
            continue;
        if (k <= KP_API_KEY_MAX)
            evbuffer_add_printf(out, "kbroker_requests_refused_total{api_key=\"%d\"} %llu\n", k,
                                (unsigned long long)n);
        else
            evbuffer_add_printf(out, "kbroker_requests_refused_total{api_key=\"unknown\"} %llu\n",
                                (unsigned long long)n);
    }
    srv_histogram sync = {0};
    for (int s = 0; s < b->nshards; s++)
        hist_sum(&sync, &b->shards[s].metrics.sync);
    evbuffer_add_printf(out, "# HELP kbroker_append_durable_seconds Time from an acks=all append to its "
                             "durability (group-committed fdatasync).\n# TYPE kbroker_append_durable_seconds "
                             "histogram\n");
    hist_print(out, "kbroker_append_durable_seconds", "", &sync);

    static const char *const counters[][2] = {
        {"kbroker_bytes_in_total", "Request bytes received."},
        {"kbroker_bytes_out_total", "Response bytes sent."},
        {"kbroker_connections_opened_total", "Client connections accepted."},
        {"kbroker_connections_closed_total", "Client connections closed."},
        {"kbroker_shard_busy_seconds_total", "Time each shard's event loop spent in callbacks."},
    };
    for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[c][0], counters[c][1],
                            counters[c][0]);
        for (int s = 0; s < b->nshards; s++) {
            const srv_shard_metrics *m = &b->shards[s].metrics;
            uint64_t v = c == 0   ? ld(&m->bytes_in)
                         : c == 1 ? ld(&m->bytes_out)
                         : c == 2 ? ld(&m->connections_opened)
                         : c == 3 ? ld(&m->connections_closed)
                                  : ld(&m->busy_ns);
            if (c == 4)
                evbuffer_add_printf(out, "%s{shard=\"%d\"} %.6f\n", counters[c][0], s, (double)v / 1e9);
            else
                evbuffer_add_printf(out, "%s{shard=\"%d\"} %llu\n", counters[c][0], s, (unsigned long long)v);
        }
    }
    evbuffer_add_printf(out,
                        "# HELP kbroker_connections Open client connections.\n# TYPE kbroker_connections "
                        "gauge\n");
    for (int s = 0; s < b->nshards; s++) {
        const srv_shard_metrics *m = &b->shards[s].metrics;
        evbuffer_add_printf(out, "kbroker_connections{shard=\"%d\"} %lld\n", s,
                            (long long)(ld(&m->connections_opened) - ld(&m->connections_closed)));
    }
    static const char *const quota_keys[5] = {"producer_byte_rate", "consumer_byte_rate",
                                              "request_percentage", "controller_mutation_rate",
                                              "connection_creation_rate"};
    evbuffer_add_printf(out,
                        "# HELP kbroker_quota_throttle_seconds_total Throttle time given to clients, per "
                        "quota.\n# TYPE kbroker_quota_throttle_seconds_total counter\n");
    for (int q = 0; q < 5; q++) {
        uint64_t v = 0;
        for (int s = 0; s < b->nshards; s++)
            v += ld(&b->shards[s].metrics.quota_throttle_ms[q]);
        evbuffer_add_printf(out, "kbroker_quota_throttle_seconds_total{quota=\"%s\"} %.3f\n", quota_keys[q],
                            (double)v / 1e3);
    }
    evbuffer_add_printf(out,
                        "# HELP kbroker_connections_refused_per_ip_total Connections closed over "
                        "max.connections.per.ip.\n# TYPE kbroker_connections_refused_per_ip_total counter\n"
                        "kbroker_connections_refused_per_ip_total %llu\n",
                        (unsigned long long)ld(&b->shards[SRV_ACCEPT_SHARD].metrics.conns_refused_ip));
    evbuffer_add_printf(out,
                        "# HELP kbroker_shard_busy_ratio Share of the time since the previous scrape each "
                        "shard spent in callbacks.\n# TYPE kbroker_shard_busy_ratio gauge\n");
    for (int s = 0; s < b->nshards; s++) {
        uint64_t busy = ld(&b->shards[s].metrics.busy_ns);
        double ratio = interval ? (double)(busy - ms->last_busy[s]) / (double)interval : 0;
        ms->last_busy[s] = busy;
        evbuffer_add_printf(out, "kbroker_shard_busy_ratio{shard=\"%d\"} %.4f\n", s, ratio > 1 ? 1 : ratio);
    }
    evbuffer_add_printf(out, "# HELP kbroker_partition_log_end_offset Next offset to be assigned.\n"
                             "# TYPE kbroker_partition_log_end_offset gauge\n"
                             "# HELP kbroker_partition_high_watermark Offset up to which records are "
                             "durable and readable.\n# TYPE kbroker_partition_high_watermark gauge\n"
                             "# HELP kbroker_partition_log_start_offset First readable offset.\n"
                             "# TYPE kbroker_partition_log_start_offset gauge\n"
                             "# HELP kbroker_partition_size_bytes Bytes on disk.\n"
                             "# TYPE kbroker_partition_size_bytes gauge\n");
    for (int s = 0; s < b->nshards; s++) {
        char *fresh = __atomic_exchange_n(&b->shards[s].metrics.partitions, NULL, __ATOMIC_ACQ_REL);
        if (fresh) {
            free(ms->cached[s]);
            ms->cached[s] = fresh;
        }
        if (ms->cached[s])
            evbuffer_add(out, ms->cached[s], strlen(ms->cached[s]));
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

static void on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, HTTP_NOTFOUND, "see /metrics");
}

static void *metrics_main(void *arg)
{
    srv_broker *b = arg;
    event_base_dispatch(b->metrics->base);
    return NULL;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

int srv_metrics_start(srv_broker *b)
{
    if (b->cfg.metrics_port <= 0)
        return 0;
    srv_metrics_srv *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return -ENOMEM;
    b->metrics = ms;
    ms->cached = calloc((size_t)b->nshards, sizeof(char *));
    ms->last_busy = calloc((size_t)b->nshards, sizeof(uint64_t));
    ms->base = event_base_new();
    ms->http = ms->base ? evhttp_new(ms->base) : NULL;
    ms->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ms->stop_ev =
        ms->base && ms->stop_fd >= 0 ? event_new(ms->base, ms->stop_fd, EV_READ, on_stop, ms->base) : NULL;
    if (!ms->cached || !ms->last_busy || !ms->http || !ms->stop_ev)
        return -ENOMEM;
    event_add(ms->stop_ev, NULL);
    const char *host = b->cfg.listeners[0].host[0] ? b->cfg.listeners[0].host : "0.0.0.0";
    if (!evhttp_bind_socket_with_handle(ms->http, host, (uint16_t)b->cfg.metrics_port)) {
        srv_error("cannot listen for metrics on %s:%d", host, (int)b->cfg.metrics_port);
        return -EADDRINUSE;
    }
    evhttp_set_allowed_methods(ms->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(ms->http, "/metrics", on_metrics, b);
    evhttp_set_gencb(ms->http, on_other, b);
    ms->last_scrape_ns = srv_now_ns();
    if (pthread_create(&ms->thread, NULL, metrics_main, b) != 0)
        return -EAGAIN;
    srv_info("metrics: http://%s:%d/metrics", host, (int)b->cfg.metrics_port);
    return 0;
}

void srv_metrics_stop(srv_broker *b)
{
    srv_metrics_srv *ms = b->metrics;
    if (!ms)
        return;
    if (ms->base) {
        if (ms->thread) {
            uint64_t one = 1;
            if (write(ms->stop_fd, &one, sizeof(one)) == sizeof(one))
                pthread_join(ms->thread, NULL);
        }
        if (ms->http)
            evhttp_free(ms->http);
        if (ms->stop_ev)
            event_free(ms->stop_ev);
        event_base_free(ms->base);
    }
    for (int s = 0; ms->cached && s < b->nshards; s++)
        free(ms->cached[s]);
    for (int s = 0; s < b->nshards; s++)
        free(__atomic_exchange_n(&b->shards[s].metrics.partitions, NULL, __ATOMIC_ACQ_REL));
    if (ms->stop_fd >= 0)
        close(ms->stop_fd);
    free(ms->cached);
    free(ms->last_busy);
    free(ms);
    b->metrics = NULL;
}

void srv_metrics_publish_partitions(srv_shard *s)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf)
        return;
    srv_partmap_print_metrics(s->parts, buf);
    size_t n = evbuffer_get_length(buf);
    char *text = malloc(n + 1);
    if (text) {
        evbuffer_remove(buf, text, n);
        text[n] = 0;
        /* Whoever holds the pointer owns the text: a replaced one is ours. */
        free(__atomic_exchange_n(&s->metrics.partitions, text, __ATOMIC_ACQ_REL));
    }
    evbuffer_free(buf);
}

/*
 * metrics_http.c — the Prometheus endpoint: an HTTP thread (libevent evhttp)
 * that sums the shards' counters on each scrape.
 *
 * Partition gauges need the storage engine, which only the owning shard may
 * touch: each shard renders them as text once a second and hands the text
 * over with an atomic exchange (whoever holds the pointer owns it), so the
 * reader never waits and the shard never blocks. Share groups' figures are
 * handed over the same way, as numbers: their lag needs the high watermark of
 * a partition another shard may own, so each shard also hands over its
 * partitions' high watermarks and the reader joins the two. Must not: write a
 * shard's counters or touch its partitions or groups from the HTTP thread.
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
#include "clock.h"
#include "logging.h"
#include "meta.h"
#include "partition.h"
#include "share_group.h"

/* A shard's partitions' high watermarks, sorted by topic id then partition. */
typedef struct srv_m_hwm {
    kp_uuid topic;
    int32_t partition;
    int64_t hwm;
} srv_m_hwm;
struct srv_m_hwms {
    size_t n, cap;
    srv_m_hwm *v;
};

/* One share group or share-partition; label is an offset into labels (the
 * Prometheus label set, escaped, NUL-terminated). */
typedef struct srv_m_sgroup {
    size_t label;
    int32_t members;
} srv_m_sgroup;
typedef struct srv_m_spart {
    size_t label;
    kp_uuid topic;
    int32_t partition;
    int64_t start, done, acquired;
    uint64_t acks[SRV_ACK_RENEW + 1], redeliveries, archived_at_limit;
} srv_m_spart;
struct srv_m_share {
    size_t ngroups, nparts, capg, capp;
    srv_m_sgroup *groups;
    srv_m_spart *parts;
    struct evbuffer *labels; /* while built; then text */
    char *text;
};

typedef struct srv_metrics_srv {
    pthread_t thread;
    int stop_fd; /* an eventfd: stopping needs no cross-thread libevent call */
    struct event *stop_ev;
    struct event_base *base;
    struct evhttp *http;
    char **cached;              /* per shard: the last partition text taken */
    struct srv_m_hwms **hwms;   /* per shard: the last high watermarks taken */
    struct srv_m_share **share; /* per shard: the last share groups taken */
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

static void hwms_free(struct srv_m_hwms *h)
{
    if (h)
        free(h->v);
    free(h);
}

static void share_free(struct srv_m_share *sh)
{
    if (!sh)
        return;
    free(sh->groups);
    free(sh->parts);
    if (sh->labels)
        evbuffer_free(sh->labels);
    free(sh->text);
    free(sh);
}

static int hwm_cmp(const void *x, const void *y)
{
    const srv_m_hwm *a = x, *b = y;
    int c = memcmp(a->topic.b, b->topic.b, 16);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* Takes what each shard handed over since the last scrape (whoever holds a
 * pointer owns it), keeping the previous one otherwise. */
static void take_share(srv_broker *b, srv_metrics_srv *ms)
{
    for (int s = 0; s < b->nshards; s++) {
        struct srv_m_hwms *h = __atomic_exchange_n(&b->shards[s].metrics.hwms, NULL, __ATOMIC_ACQ_REL);
        if (h) {
            hwms_free(ms->hwms[s]);
            ms->hwms[s] = h;
        }
        struct srv_m_share *sh = __atomic_exchange_n(&b->shards[s].metrics.share, NULL, __ATOMIC_ACQ_REL);
        if (sh) {
            share_free(ms->share[s]);
            ms->share[s] = sh;
        }
    }
}

static void print_share(struct evbuffer *out, srv_broker *b, srv_metrics_srv *ms)
{
    take_share(b, ms);
    evbuffer_add_printf(out, "# HELP kbroker_share_group_members Members of a share group whose session has "
                             "not timed out.\n# TYPE kbroker_share_group_members gauge\n");
    for (int s = 0; s < b->nshards; s++) {
        const struct srv_m_share *sh = ms->share[s];
        for (size_t i = 0; sh && i < sh->ngroups; i++)
            evbuffer_add_printf(out, "kbroker_share_group_members{%s} %d\n", sh->text + sh->groups[i].label,
                                (int)sh->groups[i].members);
    }
    evbuffer_add_printf(out,
                        "# HELP kbroker_share_partition_lag Records from the share-partition start offset "
                        "to the high watermark not yet acknowledged or archived (DescribeShareGroupOffsets' "
                        "Lag).\n# TYPE kbroker_share_partition_lag gauge\n");
    for (int s = 0; s < b->nshards; s++) {
        const struct srv_m_share *sh = ms->share[s];
        for (size_t i = 0; sh && i < sh->nparts; i++) {
            const srv_m_spart *p = &sh->parts[i];
            const struct srv_m_hwms *h = ms->hwms[srv_partition_owner(b->nshards, &p->topic, p->partition)];
            srv_m_hwm key = {.topic = p->topic, .partition = p->partition};
            const srv_m_hwm *f = h ? bsearch(&key, h->v, h->n, sizeof(*h->v), hwm_cmp) : NULL;
            if (!f)
                continue; /* not published yet by its owner */
            /* The two sides are published apart, up to a second apart: a
             * start ahead of an older high watermark is no lag, not less. */
            int64_t lag = f->hwm - p->start - p->done;
            evbuffer_add_printf(out, "kbroker_share_partition_lag{%s} %lld\n", sh->text + p->label,
                                (long long)(lag > 0 ? lag : 0));
        }
    }
    static const char *const fam[][3] = {
        {"kbroker_share_partition_start_offset", "gauge",
         "Share-partition start offset: every record below is done."},
        {"kbroker_share_partition_records_acquired", "gauge",
         "Records in flight: acquired under a lock that has not expired."},
        {"kbroker_share_partition_redeliveries_total", "counter",
         "Acquisitions of a record delivered before."},
        {"kbroker_share_partition_archived_at_limit_total", "counter",
         "Records archived because they reached the delivery count limit."},
        {"kbroker_share_partition_acknowledgements_total", "counter", "Acknowledgements, by type."},
    };
    static const char *const ack_names[SRV_ACK_RENEW + 1] = {"gap", "accept", "release", "reject", "renew"};
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam[f][0], fam[f][2], fam[f][0], fam[f][1]);
        for (int s = 0; s < b->nshards; s++) {
            const struct srv_m_share *sh = ms->share[s];
            for (size_t i = 0; sh && i < sh->nparts; i++) {
                const srv_m_spart *p = &sh->parts[i];
                const char *l = sh->text + p->label;
                if (f == 4) {
                    for (int t = 0; t <= SRV_ACK_RENEW; t++)
                        evbuffer_add_printf(out, "%s{%s,type=\"%s\"} %llu\n", fam[f][0], l, ack_names[t],
                                            (unsigned long long)p->acks[t]);
                    continue;
                }
                unsigned long long v = f == 0   ? (unsigned long long)p->start
                                       : f == 1 ? (unsigned long long)p->acquired
                                       : f == 2 ? p->redeliveries
                                                : p->archived_at_limit;
                evbuffer_add_printf(out, "%s{%s} %llu\n", fam[f][0], l, v);
            }
        }
    }
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
    print_share(out, b, ms);
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
    ms->hwms = calloc((size_t)b->nshards, sizeof(*ms->hwms));
    ms->share = calloc((size_t)b->nshards, sizeof(*ms->share));
    ms->last_busy = calloc((size_t)b->nshards, sizeof(uint64_t));
    ms->base = event_base_new();
    ms->http = ms->base ? evhttp_new(ms->base) : NULL;
    ms->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ms->stop_ev =
        ms->base && ms->stop_fd >= 0 ? event_new(ms->base, ms->stop_fd, EV_READ, on_stop, ms->base) : NULL;
    if (!ms->cached || !ms->hwms || !ms->share || !ms->last_busy || !ms->http || !ms->stop_ev)
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
    for (int s = 0; ms->hwms && s < b->nshards; s++)
        hwms_free(ms->hwms[s]);
    for (int s = 0; ms->share && s < b->nshards; s++)
        share_free(ms->share[s]);
    for (int s = 0; s < b->nshards; s++) {
        free(__atomic_exchange_n(&b->shards[s].metrics.partitions, NULL, __ATOMIC_ACQ_REL));
        hwms_free(__atomic_exchange_n(&b->shards[s].metrics.hwms, NULL, __ATOMIC_ACQ_REL));
        share_free(__atomic_exchange_n(&b->shards[s].metrics.share, NULL, __ATOMIC_ACQ_REL));
    }
    if (ms->stop_fd >= 0)
        close(ms->stop_fd);
    free(ms->cached);
    free(ms->hwms);
    free(ms->share);
    free(ms->last_busy);
    free(ms);
    b->metrics = NULL;
}

static void add_hwm(void *arg, const srv_part *p)
{
    struct srv_m_hwms *h = arg;
    if (!h->v)
        return; /* out of memory earlier: nothing published */
    if (h->n == h->cap) {
        srv_m_hwm *v = realloc(h->v, (h->cap ? h->cap * 2 : 64) * sizeof(*v));
        if (!v) {
            free(h->v);
            h->v = NULL;
            return;
        }
        h->v = v;
        h->cap = h->cap ? h->cap * 2 : 64;
    }
    h->v[h->n++] = (srv_m_hwm){p->topic_id, p->partition, st_log_high_watermark(p->log)};
}

static void publish_hwms(srv_shard *s)
{
    struct srv_m_hwms *h = calloc(1, sizeof(*h));
    if (!h || !(h->v = malloc(64 * sizeof(*h->v)))) {
        free(h);
        return;
    }
    h->cap = 64;
    srv_partmap_each_open(s->parts, add_hwm, h);
    if (!h->v) {
        free(h);
        return;
    }
    qsort(h->v, h->n, sizeof(*h->v), hwm_cmp);
    hwms_free(__atomic_exchange_n(&s->metrics.hwms, h, __ATOMIC_ACQ_REL));
}

typedef struct share_pub {
    srv_shard *s;
    struct srv_m_share *sh;
    int64_t now_ms;
    int failed;
} share_pub;

/* The length of the valid UTF-8 sequence at p[0..n), or 0 (overlong
 * forms, surrogates and code points past U+10FFFF are not valid). */
static int utf8_seq(const unsigned char *p, int32_t n)
{
    unsigned char c = p[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (int i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* name="value" for a value that is the client's (a group id, a topic
 * name): Prometheus rejects the whole scrape for a label value that is not
 * UTF-8, so each byte that does not start a valid sequence becomes U+FFFD;
 * backslash, double quote and newline are escaped as the text format
 * requires, and another control byte becomes '?' (a line-based reader
 * would split on a carriage return). */
static void add_label(struct evbuffer *e, const char *name, kp_str v)
{
    evbuffer_add_printf(e, "%s=\"", name);
    const unsigned char *p = (const unsigned char *)v.p;
    for (int32_t i = 0; i < v.len;) {
        unsigned char c = p[i];
        int n = utf8_seq(p + i, v.len - i);
        if (n == 0) {
            evbuffer_add(e, "\xEF\xBF\xBD", 3);
            i++;
            continue;
        }
        if (c == '\\' || c == '"')
            evbuffer_add_printf(e, "\\%c", c);
        else if (c == '\n')
            evbuffer_add(e, "\\n", 2);
        else if (c < 0x20 || c == 0x7f)
            evbuffer_add(e, "?", 1);
        else
            evbuffer_add(e, p + i, (size_t)n);
        i += n;
    }
    evbuffer_add(e, "\"", 1);
}

static void pub_group(void *arg, kp_str id, int32_t nmembers)
{
    share_pub *pp = arg;
    struct srv_m_share *sh = pp->sh;
    if (pp->failed)
        return;
    if (sh->ngroups == sh->capg) {
        size_t cap = sh->capg ? sh->capg * 2 : 16;
        srv_m_sgroup *g = realloc(sh->groups, cap * sizeof(*g));
        if (!g) {
            pp->failed = 1;
            return;
        }
        sh->groups = g;
        sh->capg = cap;
    }
    sh->groups[sh->ngroups++] = (srv_m_sgroup){evbuffer_get_length(sh->labels), nmembers};
    add_label(sh->labels, "group", id);
    evbuffer_add(sh->labels, "", 1);
}

static void pub_part(void *arg, kp_str id, const srv_share_tp *tp, const srv_share_part *sp)
{
    share_pub *pp = arg;
    struct srv_m_share *sh = pp->sh;
    const srv_topic *t = srv_meta_topic_by_id(pp->s->meta, &tp->topic);
    if (pp->failed || !t)
        return; /* a deleted topic's share-partition: nothing to show */
    if (sh->nparts == sh->capp) {
        size_t cap = sh->capp ? sh->capp * 2 : 16;
        srv_m_spart *v = realloc(sh->parts, cap * sizeof(*v));
        if (!v) {
            pp->failed = 1;
            return;
        }
        sh->parts = v;
        sh->capp = cap;
    }
    srv_m_spart *p = &sh->parts[sh->nparts++];
    *p = (srv_m_spart){
        .label = evbuffer_get_length(sh->labels),
        .topic = tp->topic,
        .partition = tp->partition,
        .start = sp->start,
        .done = (sp->end - sp->start) - srv_sp_in_flight(sp),
        .acquired = srv_sp_acquired(sp, pp->now_ms),
        .redeliveries = sp->redeliveries,
        .archived_at_limit = sp->archived_at_limit,
    };
    memcpy(p->acks, sp->acks, sizeof(p->acks));
    add_label(sh->labels, "group", id);
    evbuffer_add(sh->labels, ",", 1);
    add_label(sh->labels, "topic", kp_str_c(t->name));
    evbuffer_add_printf(sh->labels, ",partition=\"%d\"", (int)tp->partition);
    evbuffer_add(sh->labels, "", 1);
}

/* The share groups this shard coordinates, as numbers (see the top). */
static void publish_share(srv_shard *s)
{
    if (!s->share_groups)
        return;
    struct srv_m_share *sh = calloc(1, sizeof(*sh));
    if (!sh || !(sh->labels = evbuffer_new())) {
        free(sh);
        return;
    }
    share_pub pp = {s, sh, srv_mono_ms(), 0};
    static const srv_share_stat_fns fns = {pub_group, pub_part};
    srv_share_stats(s->share_groups, pp.now_ms, &fns, &pp);
    size_t n = evbuffer_get_length(sh->labels);
    if (!pp.failed && (sh->text = malloc(n + 1))) {
        evbuffer_remove(sh->labels, sh->text, n);
        sh->text[n] = 0;
        evbuffer_free(sh->labels);
        sh->labels = NULL;
        share_free(__atomic_exchange_n(&s->metrics.share, sh, __ATOMIC_ACQ_REL));
        return;
    }
    share_free(sh);
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
    publish_hwms(s);
    publish_share(s);
}

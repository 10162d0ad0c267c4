/*
 * throttle_conn.c — connection counts and limits of the accepting shard
 * (throttle_conn.h).
 *
 * Owns the per-address table, the totals and the creation rates. Must not:
 * be touched by another thread than the accepting shard's, or let a count
 * go below zero (a release without an admission is a bug of ours).
 */
#include "throttle_conn.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_assert.h"
#include "throttle.h"

#define IP_TEXT_MAX 64
#define NBUCKETS    1024

typedef struct ip_count {
    struct ip_count *next;
    char ip[IP_TEXT_MAX];
    int32_t n;
    int has_rate; /* connection_creation_rate measured: kept until idle */
    int64_t last_ms;
    srv_rate rate;
} ip_count;

typedef struct ip_override {
    char ip[IP_TEXT_MAX];
    int32_t max;
} ip_override;

struct srv_connlimit {
    srv_connlimit_config cfg;
    int32_t total;
    int32_t per_listener[SRV_CONNLIMIT_MAX_LISTENERS];
    srv_rate rate[SRV_CONNLIMIT_MAX_LISTENERS];
    ip_override *ov;
    int nov;
    ip_count *b[NBUCKETS];
};

static uint32_t ip_hash(const char *ip)
{
    uint32_t h = 2166136261u;
    for (; *ip; ip++)
        h = (h ^ (uint8_t)*ip) * 16777619u;
    return h % NBUCKETS;
}

static ip_count **ip_find(srv_connlimit *cl, const char *ip)
{
    ip_count **pp = &cl->b[ip_hash(ip)];
    while (*pp && strcmp((*pp)->ip, ip) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* "host:count,..." as Kafka's parseCsvMap reads it; names resolved to every
 * address they have. */
static int parse_overrides(srv_connlimit *cl, const char *text, char *err, size_t errlen)
{
    char item[512];
    const char *p = text;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            if (len >= sizeof(item)) {
                snprintf(err, errlen, "max.connections.per.ip.overrides: entry too long");
                return -1;
            }
            memcpy(item, p, len);
            item[len] = 0;
            char *colon = strrchr(item, ':');
            char *end = NULL;
            long v = colon ? strtol(colon + 1, &end, 10) : -1;
            if (!colon || colon == item || !end || *end || end == colon + 1 || v < 0 || v > INT32_MAX) {
                snprintf(err, errlen,
                         "Invalid value %s for configuration max.connections.per.ip.overrides: expected "
                         "host:count",
                         item);
                return -1;
            }
            *colon = 0;
            struct addrinfo hints, *res = NULL;
            memset(&hints, 0, sizeof(hints));
            hints.ai_socktype = SOCK_STREAM;
            if (getaddrinfo(item, NULL, &hints, &res) != 0 || !res) {
                snprintf(err, errlen, "max.connections.per.ip.overrides: cannot resolve host %s", item);
                return -1;
            }
            for (struct addrinfo *a = res; a; a = a->ai_next) {
                char ip[IP_TEXT_MAX] = "";
                if (a->ai_family == AF_INET)
                    inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, ip, sizeof(ip));
                else if (a->ai_family == AF_INET6)
                    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, ip, sizeof(ip));
                else
                    continue;
                ip_override *nov = realloc(cl->ov, (size_t)(cl->nov + 1) * sizeof(*nov));
                if (!nov) {
                    freeaddrinfo(res);
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
                cl->ov = nov;
                snprintf(cl->ov[cl->nov].ip, IP_TEXT_MAX, "%s", ip);
                cl->ov[cl->nov].max = (int32_t)v;
                cl->nov++;
            }
            freeaddrinfo(res);
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

srv_connlimit *srv_connlimit_new(const srv_connlimit_config *cfg, char *err, size_t errlen)
{
    srv_connlimit *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cl->cfg = *cfg;
    cl->cfg.overrides = NULL;
    if (cl->cfg.nlisteners > SRV_CONNLIMIT_MAX_LISTENERS)
        cl->cfg.nlisteners = SRV_CONNLIMIT_MAX_LISTENERS;
    for (int i = 0; i < cl->cfg.nlisteners; i++)
        srv_rate_init(&cl->rate[i], cfg->samples, cfg->window_ms);
    if (cfg->overrides && parse_overrides(cl, cfg->overrides, err, errlen) != 0) {
        srv_connlimit_free(cl);
        return NULL;
    }
    return cl;
}

void srv_connlimit_free(srv_connlimit *cl)
{
    if (!cl)
        return;
    for (int i = 0; i < NBUCKETS; i++)
        while (cl->b[i]) {
            ip_count *c = cl->b[i];
            cl->b[i] = c->next;
            free(c);
        }
    free(cl->ov);
    free(cl);
}

static ip_count *ip_new(const char *ip)
{
    ip_count *c = calloc(1, sizeof(*c));
    if (c)
        snprintf(c->ip, sizeof(c->ip), "%s", ip);
    return c;
}

int64_t srv_connlimit_ip_created(srv_connlimit *cl, const char *ip, double rate, int64_t now_ms)
{
    ip_count **pp = ip_find(cl, ip);
    if (!*pp && !(*pp = ip_new(ip)))
        return 0; /* not measurable: let it through */
    ip_count *c = *pp;
    if (!c->has_rate) {
        srv_rate_init(&c->rate, cl->cfg.samples, cl->cfg.window_ms);
        c->has_rate = 1;
    }
    c->last_ms = now_ms;
    srv_rate_record(&c->rate, 1, now_ms);
    int64_t ms = srv_rate_throttle_ms(&c->rate, rate, now_ms);
    if (ms > 0)
        srv_rate_unrecord(&c->rate, 1, now_ms);
    return ms;
}

void srv_connlimit_expire(srv_connlimit *cl, int64_t now_ms)
{
    int64_t span = (int64_t)cl->cfg.samples * cl->cfg.window_ms;
    for (int i = 0; i < NBUCKETS; i++) {
        ip_count **pp = &cl->b[i];
        while (*pp) {
            ip_count *c = *pp;
            if (c->n == 0 && c->has_rate && now_ms - c->last_ms > span) {
                *pp = c->next;
                free(c);
            } else {
                pp = &c->next;
            }
        }
    }
}

static int32_t ip_max(const srv_connlimit *cl, const char *ip)
{
    for (int i = 0; i < cl->nov; i++)
        if (strcmp(cl->ov[i].ip, ip) == 0)
            return cl->ov[i].max;
    return cl->cfg.max_per_ip;
}

int srv_connlimit_admit(srv_connlimit *cl, int listener, const char *ip, int32_t *limit)
{
    SRV_ASSERT(listener >= 0 && listener < cl->cfg.nlisteners, "connection on unknown listener %d", listener);
    ip_count **pp = ip_find(cl, ip);
    int32_t max = ip_max(cl, ip);
    if ((*pp ? (*pp)->n : 0) >= max) {
        *limit = max;
        return -1;
    }
    if (!*pp && !(*pp = ip_new(ip))) {
        *limit = max; /* cannot count it: refused rather than unbounded */
        return -1;
    }
    (*pp)->n++;
    cl->total++;
    cl->per_listener[listener]++;
    return 0;
}

void srv_connlimit_release(srv_connlimit *cl, int listener, const char *ip)
{
    ip_count **pp = ip_find(cl, ip);
    SRV_ASSERT(*pp && (*pp)->n > 0, "connection from %s released more often than admitted", ip);
    SRV_ASSERT(cl->total > 0 && cl->per_listener[listener] > 0,
               "connection count below zero (total %d, listener %d: %d)", cl->total, listener,
               cl->per_listener[listener]);
    if (--(*pp)->n == 0 && !(*pp)->has_rate) {
        ip_count *c = *pp;
        *pp = c->next;
        free(c);
    }
    cl->total--;
    cl->per_listener[listener]--;
}

int srv_connlimit_full(const srv_connlimit *cl, int listener)
{
    return cl->total >= cl->cfg.max_total || cl->per_listener[listener] >= cl->cfg.max_listener[listener];
}

int64_t srv_connlimit_created(srv_connlimit *cl, int listener, int64_t now_ms)
{
    srv_rate *r = &cl->rate[listener];
    srv_rate_record(r, 1, now_ms);
    return srv_rate_throttle_ms(r, (double)cl->cfg.rate_listener[listener], now_ms);
}

int32_t srv_connlimit_total(const srv_connlimit *cl)
{
    return cl->total;
}

int32_t srv_connlimit_ip_count(const srv_connlimit *cl, const char *ip)
{
    ip_count **pp = ip_find((srv_connlimit *)cl, ip);
    return *pp ? (*pp)->n : 0;
}

/*
 * auth_limit.c — per-address failed-authentication budget (see
 * auth_limit.h).
 *
 * Owns: the per-shard tables (each touched only by its own shard: the table
 * of shard s holds the addresses whose hash falls on s) and the one srv_call
 * that reaches them. Must not: keep a pointer into a request, or be touched
 * from a shard other than the table's owner.
 */
#include "auth_limit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "clock.h"
#include "logging.h"
#include "srv_assert.h"

#define HOST_MAX 64 /* an IPv6 text address is at most 45 bytes */
#define PROBES   32

typedef struct slot {
    int64_t next_ms; /* the next failure answer of this address leaves no earlier; 0 = free */
    uint8_t hlen;
    char host[HOST_MAX];
} slot;

struct srv_authlim {
    int64_t full_log_ms;
    slot s[SRV_AUTHLIM_SLOTS];
};

static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

srv_authlim *srv_authlim_new(void)
{
    return calloc(1, sizeof(srv_authlim));
}

void srv_authlim_free(srv_authlim *t)
{
    free(t);
}

int64_t srv_authlim_reserve(srv_authlim *t, const char *host, size_t hlen, int64_t now_ms, int delay_ms)
{
    if (hlen >= HOST_MAX)
        hlen = HOST_MAX - 1; /* never for a text IP address; keeps the key bounded */
    uint32_t h = fnv1a(host, hlen);
    slot *mine = NULL, *reuse = NULL;
    for (int i = 0; i < PROBES && !mine; i++) {
        slot *sl = &t->s[(h + (uint32_t)i) % SRV_AUTHLIM_SLOTS];
        int live = sl->next_ms > now_ms;
        if (live && sl->hlen == hlen && memcmp(sl->host, host, hlen) == 0)
            mine = sl;
        else if (!live && !reuse)
            reuse = sl;
    }
    if (!mine) {
        if (!reuse)
            return -1;
        /* An expired entry is as good as none: its address has no debt. */
        mine = reuse;
        mine->hlen = (uint8_t)hlen;
        memcpy(mine->host, host, hlen);
        mine->next_ms = now_ms;
    }
    int64_t from = mine->next_ms > now_ms ? mine->next_ms : now_ms;
    mine->next_ms = from + delay_ms;
    return mine->next_ms - now_ms;
}

typedef struct lim_call {
    srv_call call;
    void (*then)(srv_req *req, int64_t wait_ms);
    int delay_ms;
    int64_t wait_ms;
    size_t hlen;
    char host[HOST_MAX];
} lim_call;

static void lim_run(srv_shard *on, srv_call *c)
{
    lim_call *lc = (lim_call *)c;
    if (!on->authlim)
        on->authlim = srv_authlim_new();
    int64_t w =
        on->authlim ? srv_authlim_reserve(on->authlim, lc->host, lc->hlen, srv_mono_ms(), lc->delay_ms) : -1;
    if (w < 0) {
        srv_authlim *t = on->authlim;
        int64_t now = srv_mono_ms();
        if (!t || now - t->full_log_ms > 10000) {
            srv_warn("failed-authentication table of shard %d is full (%d addresses in debt): %.*s waits "
                     "connection.failed.authentication.delay.ms only",
                     on->id, SRV_AUTHLIM_SLOTS, (int)lc->hlen, lc->host);
            if (t)
                t->full_log_ms = now;
        }
        w = lc->delay_ms;
    }
    lc->wait_ms = w;
    srv_call_reply(on, c);
}

static void lim_done(srv_shard *on, srv_call *c)
{
    (void)on;
    lim_call *lc = (lim_call *)c;
    lc->then(c->req, lc->wait_ms);
    free(lc);
}

static void lim_drop(srv_call *c)
{
    free(c);
}

void srv_authlim_failure(srv_req *req, const char *host, int delay_ms,
                         void (*then)(srv_req *req, int64_t wait_ms))
{
    size_t hlen = strnlen(host, HOST_MAX - 1);
    lim_call *lc = calloc(1, sizeof(*lc));
    if (!lc) {
        then(req, delay_ms);
        return;
    }
    srv_call_init(&lc->call, lim_run, lim_done, lim_drop);
    lc->then = then;
    lc->delay_ms = delay_ms;
    lc->hlen = hlen;
    memcpy(lc->host, host, hlen);
    int owner = (int)(fnv1a(host, hlen) % (uint32_t)req->shard->b->nshards);
    srv_call_send(req->shard, req, &lc->call, owner);
}

void srv_authlim_shard_free(srv_shard *s)
{
    srv_authlim_free(s->authlim);
    s->authlim = NULL;
}

/*
 * throttle_share.c — usage reports between shards (throttle_share.h).
 *
 * Owns the report calls in flight (each malloc'd, freed by its done). Must
 * not: send a pointer into a shard's table (a report is a copy), or block.
 */
#include "throttle_share.h"

#include <stdlib.h>

#include "call.h"
#include "clock.h"
#include "srv_assert.h"
#include "throttle.h"

typedef struct share_call {
    srv_call call;
    srv_usage *u;
} share_call;

static void share_free(srv_call *c)
{
    share_call *sc = (share_call *)c;
    free(sc->u);
    free(sc);
}

static void share_run(srv_shard *on, srv_call *c)
{
    share_call *sc = (share_call *)c;
    srv_throttle_merge(on->throttle, c->origin, on->b->nshards, sc->u, srv_mono_ms());
    srv_call_reply(on, c);
}

static void share_done(srv_shard *on, srv_call *c)
{
    (void)on;
    share_free(c);
}

void srv_quota_share_send(srv_shard *s, srv_usage *u)
{
    if (!u)
        return;
    if (s->b->nshards < 2) {
        free(u);
        return;
    }
    int last = s->id == s->b->nshards - 1 ? s->b->nshards - 2 : s->b->nshards - 1;
    for (int to = 0; to < s->b->nshards; to++) {
        if (to == s->id)
            continue;
        /* Each peer frees its own copy; the last gets the original. */
        srv_usage *mine = to == last ? u : srv_usage_copy(u);
        share_call *sc = mine ? malloc(sizeof(*sc)) : NULL;
        if (!sc) {
            /* Out of memory: that peer keeps the last report it had. */
            if (mine && mine != u)
                free(mine);
            if (to == last)
                free(u);
            continue;
        }
        srv_call_init(&sc->call, share_run, share_done, share_free);
        sc->u = mine;
        srv_call_send(s, NULL, &sc->call, to);
    }
}

void srv_quota_share_tick(srv_shard *s, int64_t now_ms)
{
    if (s->b->nshards < 2 || !s->throttle || now_ms - s->quota_share_ms < SRV_QUOTA_SHARE_MS)
        return;
    s->quota_share_ms = now_ms;
    /* Two periods of grace: a client that stopped is reported at 0 at least
     * once after its rate fell to 0, so no peer keeps a stale rate. */
    srv_quota_share_send(s, srv_throttle_report(s->throttle, 2 * SRV_QUOTA_SHARE_MS, now_ms));
}

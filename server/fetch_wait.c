/*
 * fetch_wait.c — the shard's parked long polls (see fetch_wait.h).
 *
 * Owns: the waits list of a srv_shard, each wait's timer, and the wake
 * message. Must not: call into a handler except through a wait's callback,
 * or run a callback inline from srv_fetch_wait_notify.
 */
#include "fetch_wait.h"

#include <event2/event.h>
#include <stdlib.h>

#include "srv_assert.h"

struct srv_fetch_wait {
    struct srv_fetch_wait *next;
    uint64_t id;
    srv_wait_fn fn;
    void *arg;
    srv_shard *s;
    struct event *timer;
};

typedef struct srv_fetch_wait wait_t;

/* Unlinks the wait `id`, or returns NULL when it is gone (answered, expired). */
static wait_t *take(srv_shard *s, uint64_t id)
{
    for (wait_t **pp = &s->waits; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            wait_t *w = *pp;
            *pp = w->next;
            return w;
        }
    return NULL;
}

static void wait_free(wait_t *w)
{
    /* Freeing the timer from inside its own callback is fine: it is no
     * longer pending once it fired. */
    event_free(w->timer);
    free(w);
}

/* Unregisters before calling: the callback may park again or answer. */
static void end_wait(wait_t *w, srv_wait_why why)
{
    srv_shard *s = w->s;
    srv_wait_fn fn = w->fn;
    void *arg = w->arg;
    wait_free(w);
    fn(s, arg, why);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wait_t *w = arg;
    srv_shard *s = w->s;
    SRV_ON_SHARD(s->id);
    wait_t *t = take(s, w->id);
    SRV_ASSERT(t == w, "wait %llu expired but is not parked on shard %d", (unsigned long long)w->id, s->id);
    end_wait(w, SRV_WAIT_EXPIRED);
}

uint64_t srv_fetch_wait_park(srv_shard *s, int64_t timeout_ms, srv_wait_fn fn, void *arg)
{
    SRV_ON_SHARD(s->id);
    wait_t *w = malloc(sizeof(*w));
    if (!w)
        return 0;
    w->timer = evtimer_new(s->base, on_timer, w);
    if (!w->timer) {
        free(w);
        return 0;
    }
    w->id = ++s->next_wait_id;
    w->fn = fn;
    w->arg = arg;
    w->s = s;
    w->next = s->waits;
    s->waits = w;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(w->timer, &tv);
    return w->id;
}

void srv_fetch_wait_cancel(srv_shard *s, uint64_t id)
{
    SRV_ON_SHARD(s->id);
    wait_t *w = take(s, id);
    if (w)
        wait_free(w);
}

typedef struct wake_msg {
    srv_msg msg;
    uint64_t wait_id;
} wake_msg;

static void on_wake(srv_shard *s, srv_msg *m)
{
    wake_msg *wm = (wake_msg *)m;
    uint64_t id = wm->wait_id;
    free(wm);
    wait_t *w = take(s, id);
    if (w)
        end_wait(w, SRV_WAIT_DATA);
    /* else a wake for a fetch that has already answered: nothing to do. */
}

void srv_fetch_wait_notify(srv_shard *from, int shard, uint64_t id)
{
    SRV_ASSERT(shard >= 0 && shard < from->b->nshards, "wake for wait %llu targets shard %d of %d",
               (unsigned long long)id, shard, from->b->nshards);
    if (from->b->draining)
        return; /* shutdown ended every wait (srv_fetch_wait_shutdown) and no loop runs */
    wake_msg *m = malloc(sizeof(*m));
    if (!m)
        return; /* the fetch still answers at its max wait */
    m->msg.fn = on_wake;
    m->wait_id = id;
    if (shard == from->id)
        srv_shard_post(from, &m->msg);
    else
        srv_shard_send(from, shard, &m->msg);
}

void srv_fetch_wait_shutdown(srv_shard *s)
{
    SRV_ON_SHARD(s->id);
    while (s->waits) {
        wait_t *w = s->waits;
        s->waits = w->next;
        end_wait(w, SRV_WAIT_SHUTDOWN);
    }
}

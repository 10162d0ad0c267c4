/*
 * msg.c — messages between shards: one SPSC ring per ordered pair of shards,
 * an eventfd doorbell per shard, a sender-side overflow list per target when
 * its ring is full, and a per-shard queue of posts for the next loop turn.
 *
 * Owns: the message protocol between shards (delivery in send order per
 * pair, never blocking the sender). Must not: touch another shard's state
 * except pushing to its rings and ringing its doorbell, or block the loop.
 */
#include "msg.h"
#include "srv_assert.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define RING_SLOTS 4096

static void ring_doorbell(srv_shard *target)
{
    /* Only the first sender since the target last drained pays the syscall. */
    if (__atomic_exchange_n(&target->doorbell_armed, 1, __ATOMIC_ACQ_REL) == 0) {
        uint64_t one = 1;
        ssize_t n = write(target->doorbell_fd, &one, sizeof(one));
        (void)n; /* EAGAIN means the counter is already non-zero: still rung */
    }
}

void srv_shard_send(srv_shard *from, int to, srv_msg *m)
{
    SRV_ON_SHARD(from->id); /* the rings are single-producer: only from's thread pushes from's side */
    SRV_ASSERT(to >= 0 && to < from->b->nshards && m->fn != NULL, "message to shard %d of %d (fn %p)", to,
               from->b->nshards, (void *)m->fn);
    if (to == from->id) {
        m->fn(from, m);
        return;
    }
    srv_shard *target = &from->b->shards[to];
    m->next = NULL;
    /* Keep order: once something is parked for this target, park behind it. */
    if (from->overflow[to] || srv_ring_push(&target->inbox[from->id], m) != 0) {
        if (from->overflow[to])
            from->overflow_tail[to]->next = m;
        else
            from->overflow[to] = m;
        from->overflow_tail[to] = m;
        event_active(from->overflow_ev, EV_TIMEOUT, 0);
    }
    ring_doorbell(target);
}

void srv_shard_post(srv_shard *s, srv_msg *m)
{
    SRV_ON_SHARD(s->id);
    m->next = NULL;
    if (s->deferred_tail)
        s->deferred_tail->next = m;
    else
        s->deferred = m;
    s->deferred_tail = m;
    event_active(s->deferred_ev, EV_TIMEOUT, 0);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_shard *s = arg;
    SRV_BUSY_BEGIN();
    /* Only what was queued before this turn: new posts wait for the next. */
    srv_msg *m = s->deferred;
    s->deferred = s->deferred_tail = NULL;
    while (m) {
        srv_msg *next = m->next;
        m->fn(s, m);
        m = next;
    }
    SRV_BUSY_END(s);
}

/* Retries parked messages; re-arms itself while any remain. */
static void on_overflow(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_shard *s = arg;
    int left = 0;
    for (int to = 0; to < s->b->nshards; to++) {
        srv_shard *target = &s->b->shards[to];
        int pushed = 0;
        while (s->overflow[to]) {
            srv_msg *m = s->overflow[to];
            srv_msg *next = m->next;
            if (srv_ring_push(&target->inbox[s->id], m) != 0)
                break;
            s->overflow[to] = next;
            pushed = 1;
        }
        if (pushed)
            ring_doorbell(target);
        if (s->overflow[to])
            left = 1;
    }
    if (left) {
        struct timeval tv = {0, 200};
        event_add(s->overflow_ev, &tv);
    }
}

static void drain_inbox(srv_shard *s)
{
    for (int from = 0; from < s->b->nshards; from++) {
        if (from == s->id)
            continue;
        srv_msg *m;
        /* Bounded per wake-up so one busy peer cannot starve the loop. */
        for (int i = 0; i < RING_SLOTS && (m = srv_ring_pop(&s->inbox[from])); i++)
            m->fn(s, m);
    }
}

static void on_doorbell(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    srv_shard *s = arg;
    SRV_BUSY_BEGIN();
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    /* An exchange, not a store: it synchronises with the senders' exchanges,
     * so every message pushed before a sender found the bell armed is seen. */
    __atomic_exchange_n(&s->doorbell_armed, 0, __ATOMIC_ACQ_REL);
    s->now_ms = srv_now_ms();
    drain_inbox(s);
    /* A message pushed between the disarm and the drain is already handled;
     * one pushed after the drain rings again because we disarmed. */
    SRV_BUSY_END(s);
}

int srv_msg_init(srv_shard *s)
{
    srv_broker *b = s->b;
    s->doorbell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->doorbell_fd < 0)
        return -errno;
    s->inbox = calloc((size_t)b->nshards, sizeof(srv_ring));
    s->overflow = calloc((size_t)b->nshards, sizeof(srv_msg *));
    s->overflow_tail = calloc((size_t)b->nshards, sizeof(srv_msg *));
    if (!s->inbox || !s->overflow || !s->overflow_tail)
        return -ENOMEM;
    for (int i = 0; i < b->nshards; i++)
        if (srv_ring_init(&s->inbox[i], RING_SLOTS))
            return -ENOMEM;
    s->doorbell_ev = event_new(s->base, s->doorbell_fd, EV_READ | EV_PERSIST, on_doorbell, s);
    s->overflow_ev = event_new(s->base, -1, 0, on_overflow, s);
    s->deferred_ev = event_new(s->base, -1, 0, on_deferred, s);
    if (!s->doorbell_ev || !s->overflow_ev || !s->deferred_ev)
        return -ENOMEM;
    return 0;
}

void srv_msg_start(srv_shard *s)
{
    event_add(s->doorbell_ev, NULL);
}

void srv_msg_destroy(srv_shard *s)
{
    event_free(s->doorbell_ev);
    event_free(s->overflow_ev);
    event_free(s->deferred_ev);
    for (int i = 0; i < s->b->nshards; i++)
        srv_ring_free(&s->inbox[i]);
    free(s->inbox);
    free(s->overflow);
    free(s->overflow_tail);
    close(s->doorbell_fd);
}

/*
 * shard.c — one thread per core: its event loop, its disk I/O engine, its
 * inbox rings and doorbell, and the periodic tick.
 *
 * Owns: the message protocol between shards. Must not: touch another
 * shard's state except pushing to its rings and ringing its doorbell, or
 * block the loop.
 */
#include "shard.h"

#include <errno.h>
#include <event2/listener.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "fetch_session.h"
#include "logging.h"
#include "meta.h"
#include "partition.h"

#define RING_SLOTS 4096
#define TICK_MS    100

int64_t srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t srv_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_shard *s = arg;
    SRV_BUSY_BEGIN();
    s->now_ms = srv_now_ms();
    st_io_poll(s->io);
    SRV_BUSY_END(s);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_shard *s = arg;
    SRV_BUSY_BEGIN();
    s->now_ms = srv_now_ms();
    srv_partmap_tick(s->parts, s->now_ms);
    srv_conns_tick(s);
    /* The config, not b->metrics: main sets that pointer after the shards
     * started, unsynchronised with them (a data race, found by TSan). */
    if (s->b->cfg.metrics_port > 0 && ++s->ticks % (1000 / TICK_MS) == 0)
        srv_metrics_publish_partitions(s);
    SRV_BUSY_END(s);
    if (__atomic_load_n(&s->b->stopping, __ATOMIC_ACQUIRE))
        event_base_loopbreak(s->base);
}

int srv_shard_init(srv_broker *b, srv_shard *s, int id)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->b = b;
    s->base = event_base_new();
    if (!s->base)
        return -ENOMEM;
    st_io_config iocfg;
    st_io_config_default(&iocfg);
    int rc = st_io_create(&iocfg, &s->io);
    if (rc)
        return rc;
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
    s->io_ev = event_new(s->base, st_io_fd(s->io), EV_READ | EV_PERSIST, on_io, s);
    s->doorbell_ev = event_new(s->base, s->doorbell_fd, EV_READ | EV_PERSIST, on_doorbell, s);
    s->overflow_ev = event_new(s->base, -1, 0, on_overflow, s);
    s->tick_ev = event_new(s->base, -1, EV_PERSIST, on_tick, s);
    s->deferred_ev = event_new(s->base, -1, 0, on_deferred, s);
    if (!s->io_ev || !s->doorbell_ev || !s->overflow_ev || !s->tick_ev || !s->deferred_ev)
        return -ENOMEM;
    s->parts = srv_partmap_new(s);
    s->offline = calloc((size_t)b->nshards, sizeof(*s->offline));
    if (!s->parts || !s->offline)
        return -ENOMEM;
    s->now_ms = srv_now_ms();
    return 0;
}

static void *shard_main(void *arg)
{
    srv_shard *s = arg;
    srv_log_shard = s->id;
    /* Pin to one core: the shard's caches and its core stay together. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(s->id % ncpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
            srv_warn("could not pin shard %d to cpu %ld", s->id, s->id % ncpu);
    }
    event_add(s->io_ev, NULL);
    event_add(s->doorbell_ev, NULL);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(s->tick_ev, &tv);
    if (srv_conns_listen(s) != 0) {
        srv_error("shard %d: cannot listen", s->id);
        __atomic_store_n(&s->b->stopping, 1, __ATOMIC_RELEASE);
    }
    __atomic_add_fetch(&s->b->ready_count, 1, __ATOMIC_ACQ_REL);
    event_base_dispatch(s->base);
    srv_conns_close_all(s);
    srv_fetch_shutdown(s);
    return NULL;
}

int srv_shard_start(srv_shard *s)
{
    return -pthread_create(&s->thread, NULL, shard_main, s);
}

void srv_shard_join(srv_shard *s)
{
    pthread_join(s->thread, NULL);
}

void srv_shard_destroy(srv_shard *s)
{
    /* Partitions first: closing a log drives its st_io to completion. */
    srv_partmap_free(s->parts);
    for (int i = 0; s->offline && i < s->b->nshards; i++)
        srv_offline_set_unref(s->offline[i]);
    free(s->offline);
    srv_fetch_sessions_free(s);
    if (s->meta)
        srv_meta_unref(s->meta);
    event_free(s->io_ev);
    event_free(s->doorbell_ev);
    event_free(s->overflow_ev);
    event_free(s->tick_ev);
    event_free(s->deferred_ev);
    srv_conns_unlisten(s);
    st_io_destroy(s->io);
    for (int i = 0; i < s->b->nshards; i++)
        srv_ring_free(&s->inbox[i]);
    free(s->inbox);
    free(s->overflow);
    free(s->overflow_tail);
    close(s->doorbell_fd);
    event_base_free(s->base);
}

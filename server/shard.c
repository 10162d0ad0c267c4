/*
 * shard.c — one thread per core: start, run and stop it; its event loop, its
 * disk I/O engine and the periodic tick. Messages between shards are msg.c's.
 *
 * Owns: a shard's lifetime (init, thread, join, destroy) and what runs on its
 * tick. Must not: touch another shard's state, or block the loop.
 */
#include "shard.h"

#include <errno.h>
#include <event2/listener.h>
#include <malloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "fetch_session.h"
#include "share_group.h"
#include "fetch_wait.h"
#include "logging.h"
#include "meta.h"
#include "metrics_http.h"
#include "msg.h"
#include "partition.h"
#include "replica.h"
#include "throttle.h"
#include "throttle_share.h"

#define TICK_MS 100

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

/* main.c's mallopt keeps freed blocks in the heap for reuse (no mmap or
 * trim per fetch buffer), so a burst's peak stays resident. A shard that
 * was busy under TRIM_IDLE_BUSY_NS per second for TRIM_IDLE_S seconds in a
 * row gives the free memory back once, with the loop idle; malloc_trim
 * walks every arena, so whichever shard gets idle first returns them all. */
#define TRIM_IDLE_S       10
#define TRIM_IDLE_BUSY_NS (10u * 1000 * 1000)

static void trim_when_idle(srv_shard *s)
{
    if (++s->trim_ticks % (1000 / TICK_MS) != 0)
        return;
    uint64_t busy = __atomic_load_n(&s->metrics.busy_ns, __ATOMIC_RELAXED);
    int idle = busy - s->trim_busy_ns < TRIM_IDLE_BUSY_NS;
    s->trim_busy_ns = busy;
    if (!idle)
        s->trim_idle_s = 0;
    else if (++s->trim_idle_s == TRIM_IDLE_S)
        malloc_trim(0);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_shard *s = arg;
    SRV_BUSY_BEGIN();
    s->now_ms = srv_now_ms();
    srv_partmap_tick(s->parts, s->now_ms);
    srv_replicas_tick(s);
    srv_conns_tick(s);
    if (srv_throttle_count(s->throttle)) {
        int64_t mono = srv_mono_ms();
        srv_throttle_expire(s->throttle, mono);
        srv_quota_share_tick(s, mono);
    }
    /* The config, not b->metrics: main sets that pointer after the shards
     * started, unsynchronised with them (a data race, found by TSan). */
    if (s->b->cfg.metrics_port > 0 && ++s->ticks % (1000 / TICK_MS) == 0)
        srv_metrics_publish_partitions(s);
    trim_when_idle(s);
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
    rc = srv_msg_init(s);
    if (rc)
        return rc;
    s->io_ev = event_new(s->base, st_io_fd(s->io), EV_READ | EV_PERSIST, on_io, s);
    s->tick_ev = event_new(s->base, -1, EV_PERSIST, on_tick, s);
    if (!s->io_ev || !s->tick_ev)
        return -ENOMEM;
    s->parts = srv_partmap_new(s);
    s->offline = calloc((size_t)b->nshards, sizeof(*s->offline));
    s->throttle = srv_throttle_new(b->cfg.quota_window_num, (int64_t)b->cfg.quota_window_size_seconds * 1000);
    if (!s->parts || !s->offline || !s->throttle)
        return -ENOMEM;
    srv_throttle_share(s->throttle, b->nshards);
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
    srv_msg_start(s);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(s->tick_ev, &tv);
    if (srv_conns_listen(s) != 0) {
        srv_error("shard %d: cannot listen", s->id);
        __atomic_store_n(&s->b->stopping, 1, __ATOMIC_RELEASE);
    }
    __atomic_add_fetch(&s->b->ready_count, 1, __ATOMIC_ACQ_REL);
    event_base_dispatch(s->base);
    srv_replicas_stop(s);
    srv_conns_close_all(s);
    srv_fetch_wait_shutdown(s);
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
    srv_share_groups_free(s->share_groups);
    srv_throttle_free(s->throttle);
    if (s->meta)
        srv_meta_unref(s->meta);
    event_free(s->io_ev);
    event_free(s->tick_ev);
    srv_msg_destroy(s);
    srv_conns_unlisten(s);
    st_io_destroy(s->io);
    event_base_free(s->base);
}

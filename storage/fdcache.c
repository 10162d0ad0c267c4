/*
 * fdcache.c — the shard's budget of open segment files: an LRU of segments
 * whose descriptor is open, like a database's table cache.
 *
 * Owns: the count of open segment descriptors per st_io, their recency
 * order, and closing idle ones beyond the budget. Partition and segment
 * counts are then bounded by memory and disk, not by RLIMIT_NOFILE.
 *
 * Must not: close a descriptor anything still uses (a flush in flight, a
 * read, a background job: those hold a segment reference or io_busy), or
 * open files itself (reopening is log.c's, on the background thread).
 *
 * Closing happens on the shard thread: close() of a regular file does not
 * write back or wait for the disk on Linux (no dirty pages are flushed on
 * close; O_DIRECT writes left none, and every write on this descriptor has
 * completed), so it is not blocking disk I/O.
 */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

st_fdcache *st_fdcache_of(st_io *io)
{
    void **slot = st_io_fdcache_slot(io);
    if (!*slot)
        *slot = calloc(1, sizeof(st_fdcache));
    return *slot;
}

static void unlink_lru(st_fdcache *c, st_segment *s)
{
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else
        c->head = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else
        c->tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
}

static void push_head(st_fdcache *c, st_segment *s)
{
    s->lru_prev = NULL;
    s->lru_next = c->head;
    if (c->head)
        c->head->lru_prev = s;
    else
        c->tail = s;
    c->head = s;
}

void st_fdc_remove(st_segment *s)
{
    st_fdcache *c = s->fdc;
    if (!c)
        return;
    unlink_lru(c, s);
    s->fdc = NULL;
    /* Every listed segment was counted when it was added. */
    ST_ASSERT(c->open > 0, "fd cache: open count underflow removing a segment");
    c->open--;
}

void st_fdc_touch(st_segment *s)
{
    st_fdcache *c = s->fdc;
    if (!c || c->head == s)
        return;
    unlink_lru(c, s);
    push_head(c, s);
}

/* Closes the least recently used idle file; 0 when every open one is in use. */
static int evict_one(st_fdcache *c)
{
    for (st_segment *s = c->tail; s; s = s->lru_prev) {
        /* refs == 1: only the log's list holds it, no read or job does. */
        if (s->refs == 1 && !s->io_busy && !s->opening && s->fd >= 0) {
            int fd = s->fd;
            st_fdc_remove(s);
            s->fd = -1;
            close(fd);
            c->closes++;
            return 1;
        }
    }
    return 0;
}

void st_fdc_trim(st_fdcache *c)
{
    while (c && c->max && c->open + c->opening > c->max && evict_one(c))
        ;
}

static int slot_free(st_fdcache *c)
{
    while (c->open + c->opening >= c->max && evict_one(c))
        ;
    return c->open + c->opening < c->max;
}

int st_fdc_reserve(st_io *io, st_log *log, st_segment *s)
{
    st_fdcache *c = st_fdcache_of(io);
    if (!c)
        return 1;
    if (c->max == 0 || (!c->wait_head && slot_free(c))) {
        c->opening++;
        return 1;
    }
    s->refs++;
    s->slot_log = log;
    s->slot_next = NULL;
    if (c->wait_tail)
        c->wait_tail->slot_next = s;
    else
        c->wait_head = s;
    c->wait_tail = s;
    return 0;
}

void st_fdc_pump(st_fdcache *c)
{
    if (!c || c->pumping)
        return;
    c->pumping = 1;
    while (c->wait_head && (c->max == 0 || slot_free(c))) {
        st_segment *s = c->wait_head;
        c->wait_head = s->slot_next;
        if (!c->wait_head)
            c->wait_tail = NULL;
        st_log *log = s->slot_log;
        s->slot_log = NULL;
        c->opening++;
        st_log_start_open(log, s);
        st_segment_unref(s); /* the queue's reference; the open holds its own */
    }
    c->pumping = 0;
}

void st_fdc_opened(st_io *io, st_segment *s)
{
    st_fdcache *c = st_fdcache_of(io);
    if (!c)
        return;
    ST_ASSERT(c->opening > 0, "fd cache: open finished without a reserved slot");
    c->opening--;
    if (s->fd >= 0)
        st_fdc_add(io, s);
    st_fdc_pump(c);
}

void st_fdc_add(st_io *io, st_segment *s)
{
    st_fdcache *c = st_fdcache_of(io);
    if (!c || s->fd < 0)
        return; /* unlisted: never closed early, freed with the segment */
    if (s->fdc) {
        st_fdc_touch(s);
        return;
    }
    s->fdc = c;
    c->open++;
    push_head(c, s);
    st_fdc_trim(c);
}

void st_log_set_max_open_files(st_io *io, unsigned max)
{
    st_fdcache *c = st_fdcache_of(io);
    if (!c)
        return;
    c->max = max;
    st_fdc_trim(c);
    st_fdc_pump(c);
}

void st_log_open_files(st_io *io, st_open_files *out)
{
    st_fdcache *c = st_fdcache_of(io);
    out->max = c ? c->max : 0;
    out->open = c ? c->open : 0;
    out->closes = c ? c->closes : 0;
    out->reopens = c ? c->reopens : 0;
}

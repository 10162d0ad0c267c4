/*
 * ring.c — SPSC ring. The producer publishes a slot with a release store of
 * tail; the consumer frees it with a release store of head.
 */
#include "ring.h"

#include <stdlib.h>

#include "srv_assert.h"

int srv_ring_init(srv_ring *r, size_t cap)
{
    if (cap < 2 || (cap & (cap - 1)))
        return -1;
    r->slots = calloc(cap, sizeof(void *));
    if (!r->slots)
        return -1;
    r->head = r->tail = 0;
    r->mask = cap - 1;
    return 0;
}

void srv_ring_free(srv_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

int srv_ring_push(srv_ring *r, void *p)
{
    size_t t = r->tail;
    size_t h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    /* head only moves towards tail: a larger gap means two producers or a
     * corrupted ring, and a NULL would read as "empty" to the consumer. */
    SRV_ASSERT(t - h <= r->mask + 1 && p != NULL, "ring push: head %zu tail %zu cap %zu item %p", h, t,
               r->mask + 1, p);
    if (t - h > r->mask)
        return -1;
    r->slots[t & r->mask] = p;
    __atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
    return 0;
}

void *srv_ring_pop(srv_ring *r)
{
    size_t h = r->head;
    size_t t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    if (h == t)
        return NULL;
    SRV_ASSERT(t - h <= r->mask + 1, "ring pop: head %zu tail %zu cap %zu (two consumers?)", h, t,
               r->mask + 1);
    void *p = r->slots[h & r->mask];
    __atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE);
    return p;
}

/*
 * ring.h — bounded single-producer/single-consumer ring of pointers: the only
 * channel between two shards (one ring per ordered pair).
 *
 * Owns the lock-free index protocol (acquire/release on head and tail). Must
 * not: be pushed to by more than one thread or popped by more than one.
 */
#ifndef SRV_RING_H
#define SRV_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_ring {
    /* Producer and consumer indexes on their own cache lines: no false sharing. */
    _Alignas(64) size_t head; /* written by the consumer */
    _Alignas(64) size_t tail; /* written by the producer */
    _Alignas(64) size_t mask;
    void **slots;
} srv_ring;

int srv_ring_init(srv_ring *r, size_t capacity_pow2);
void srv_ring_free(srv_ring *r);
int srv_ring_push(srv_ring *r, void *p); /* 0, or -1 when full */
void *srv_ring_pop(srv_ring *r);         /* NULL when empty */

#endif

/*
 * clock.h — the broker's two clocks in milliseconds.
 *
 * Owns: which clock each time comes from. Must not: hold state (a shard
 * caches the wall clock in srv_shard.now_ms itself).
 */
#ifndef SRV_CLOCK_H
#define SRV_CLOCK_H

#include <stdint.h>

/* Wall clock (CLOCK_REALTIME): Kafka timestamps, retention, session ages. */
int64_t srv_now_ms(void);
/* Monotonic clock: deadlines and timeouts, immune to clock steps. */
int64_t srv_mono_ms(void);

#endif

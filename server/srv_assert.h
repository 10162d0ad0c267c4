/*
 * srv_assert.h — always-on checks of the broker's own invariants.
 *
 * Owns: SRV_ASSERT (a rule of our own code broke: log what, where, abort) and
 * SRV_ON_SHARD (shard state touched from its own thread only). Must not: be
 * used for input errors — those are return codes mapped to Kafka errors — or
 * be compiled out: NDEBUG does not touch these, because a broker that goes on
 * after its state is wrong loses or reorders data silently.
 */
#ifndef SRV_ASSERT_H
#define SRV_ASSERT_H

void srv_assert_fail(const char *expr, const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* SRV_ASSERT(cond, "what broke, printf-style", args...). The message should
 * name the rule and the values that broke it. */
#define SRV_ASSERT(cond, ...)                                                                                \
    do {                                                                                                     \
        if (__builtin_expect(!(cond), 0))                                                                    \
            srv_assert_fail(#cond, __FILE__, __LINE__, __VA_ARGS__);                                         \
    } while (0)

/* The calling thread is shard `id`'s loop thread (srv_log_shard is set by the
 * shard thread at start; -1 on the main thread, where start-up and shutdown
 * touch shard state before threads run or after they joined). */
extern __thread int srv_log_shard;
#define SRV_ON_SHARD(id)                                                                                     \
    SRV_ASSERT(srv_log_shard == (id) || srv_log_shard < 0, "shard %d state touched from shard %d",           \
               (int)(id), srv_log_shard)

#endif

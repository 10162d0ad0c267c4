/*
 * logging.h — the broker's log lines: one line each, timestamped, with a level
 * and the shard that wrote it, on stderr.
 *
 * Owns the line format only. Must not: block for long (one write(2) per
 * line, no locks) or allocate.
 */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#ifndef SRV_LOG_LEVELS
#define SRV_LOG_LEVELS
enum srv_log_level { SRV_LOG_DEBUG = 0, SRV_LOG_INFO = 1, SRV_LOG_WARN = 2, SRV_LOG_ERROR = 3 };
#endif

extern int srv_log_level;          /* lines below this level are dropped */
extern __thread int srv_log_shard; /* -1 outside shard threads */

void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adapter for modules that take a (level, message) callback. */
void srv_log_line(int level, const char *msg);

#define srv_error(...) srv_log(SRV_LOG_ERROR, __VA_ARGS__)
#define srv_warn(...)  srv_log(SRV_LOG_WARN, __VA_ARGS__)
#define srv_info(...)  srv_log(SRV_LOG_INFO, __VA_ARGS__)
#define srv_debug(...)                                                                                       \
    do {                                                                                                     \
        if (srv_log_level <= SRV_LOG_DEBUG)                                                                  \
            srv_log(SRV_LOG_DEBUG, __VA_ARGS__);                                                             \
    } while (0)

#endif

/*
 * logging.c — formats and writes log lines. One write(2) per line keeps lines
 * from different shards whole without a lock.
 */
#include "logging.h"

#include "srv_assert.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int srv_log_level = SRV_LOG_INFO;
__thread int srv_log_shard = -1;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static void emit(int level, const char *msg)
{
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int lv = level < 0 ? 0 : level > 3 ? 3 : level;
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s%d] %s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[lv], srv_log_shard < 0 ? "main" : "shard",
                     srv_log_shard < 0 ? 0 : srv_log_shard, msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void srv_log(int level, const char *fmt, ...)
{
    if (level < srv_log_level)
        return;
    char msg[896];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(level, msg);
}

void srv_log_line(int level, const char *msg)
{
    if (level >= srv_log_level)
        emit(level, msg);
}

void srv_assert_fail(const char *expr, const char *file, int line, const char *fmt, ...)
{
    char what[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    /* Logged whatever the level: this is the last line the broker writes. */
    char msg[896];
    snprintf(msg, sizeof(msg), "invariant broken: %s (%s at %s:%d)", what, expr, file, line);
    emit(SRV_LOG_ERROR, msg);
    abort();
}

/*
 * crash.c — the fatal-signal report (see crash.h).
 *
 * Owns: writing the report to stderr (the broker's log) from the signal
 * handler with async-signal-safe calls only. Must not: allocate, lock or
 * format with stdio in the handler.
 */
#include "crash.h"

#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "logging.h"

/* Under a sanitizer its own reports are kept (srv_crash_report_install). */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

static void put(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void put_int(long v)
{
    char buf[24];
    size_t i = sizeof(buf);
    int neg = v < 0;
    unsigned long u = neg ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u && i > 1);
    if (neg)
        buf[--i] = '-';
    put(buf + i, sizeof(buf) - i);
}

static void on_fatal(int sig)
{
    static const char head[] = "kbroker: FATAL signal ";
    put(head, sizeof(head) - 1);
    put_int(sig);
    static const char mid[] = " on shard ";
    put(mid, sizeof(mid) - 1);
    put_int(srv_log_shard); /* -1: main or a helper thread */
    static const char tail[] = "; stack (addr2line -e kbroker resolves the +offsets):\n";
    put(tail, sizeof(tail) - 1);
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    /* SA_RESETHAND restored the default action: the process dies of the
     * same signal (core dump, exit status) as without this report. */
    raise(sig);
}

#endif

void srv_crash_report_install(void)
{
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* backtrace() loads libgcc on its first call, which allocates: done
     * here, not first in a handler. */
    void *warm[2];
    (void)backtrace(warm, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
#endif
}

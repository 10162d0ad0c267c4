/*
 * crash.h — a report in the broker's log when the process dies of a fatal
 * signal (which signal, which thread, the stack), so a crash seen once (in CI,
 * at a user's) can be located afterwards.
 *
 * Owns: the handlers of SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT. Must
 * not: try to recover or keep running; the signal's default action follows.
 */
#ifndef SRV_CRASH_H
#define SRV_CRASH_H

/* Installs the handlers (not under a sanitizer, whose own reports are
 * better). Called once, early in main. */
void srv_crash_report_install(void);

#endif

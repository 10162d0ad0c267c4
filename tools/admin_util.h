/*
 * admin_util.h — shared plumbing of kbroker-admin: global options, exit codes
 * and error reporting, librdkafka client creation with a reachability check,
 * waiting for Admin API results, the JSON writer and the text table.
 *
 * Owns: the process-wide option struct (filled once by main, read-only after),
 * the mapping of failures onto exit codes, and every byte kbroker-admin writes
 * to stdout for tables and JSON.
 *
 * Must not: know any subcommand's semantics; print to stdout outside the
 * writers below (stdout carries only the table or JSON result, so scripts can
 * parse it; diagnostics go to stderr); let librdkafka's own log lines reach
 * the terminal unless --verbose asked for them.
 */
#ifndef ADMIN_UTIL_H
#define ADMIN_UTIL_H

#include <librdkafka/rdkafka.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, documented in --help. */
enum {
    EX_OK = 0,
    EX_FAIL = 1,        /* the broker refused or the operation failed (unknown topic, ...) */
    EX_USAGE = 2,       /* bad command line */
    EX_UNREACHABLE = 3, /* no broker answered within --timeout */
};

#define ADM_MAX_PROPS 32

typedef struct {
    const char *bootstrap;
    int timeout_ms;
    bool json;
    bool verbose;
    int n_props;
    const char *props[ADM_MAX_PROPS][2]; /* -X key=value passed to librdkafka */
} adm_opts;

extern adm_opts g_opts;

/* The client security properties that have an option of their own, named
 * as librdkafka names them (--security.protocol, --sasl.username, ...);
 * NULL-terminated. Any other property goes through -X. */
extern const char *const adm_security_opts[];

/* Adds one librdkafka property (a later one with the same key wins). */
int adm_add_prop(const char *key, const char *value);

/* --command-config FILE: librdkafka properties, one key=value per line,
 * '#' comments, as a Kafka tool reads its --command-config (a password
 * stays off the command line). */
int adm_read_command_config(const char *path);

/* 1 when security.protocol (from the options) is SSL, SASL_PLAINTEXT or
 * SASL_SSL. */
bool adm_secured(void);

/* "kbroker-admin: error: ..." on stderr; returns `code` so callers can
 * `return adm_err(EX_FAIL, ...)`. */
__attribute__((format(printf, 2, 3))) int adm_err(int code, const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void adm_note(const char *fmt, ...);

/* Creates a client of `type` and checks that a broker answers a Metadata
 * request within the timeout. Returns EX_OK with *out set, or an exit code
 * after printing why (unreachable broker: EX_UNREACHABLE). `extra` are
 * additional librdkafka properties (key, value pairs, NULL-terminated);
 * `hook` (may be NULL) sets callbacks on the configuration. */
int adm_client(rd_kafka_type_t type, const char *const *extra, void (*hook)(rd_kafka_conf_t *),
               rd_kafka_t **out);

/* Admin options with the request timeout set; never NULL. */
rd_kafka_AdminOptions_t *adm_admin_options(rd_kafka_t *rk);

/* Waits on `q` for the result event of an Admin call. Returns the event (the
 * caller destroys it) or NULL after printing the request-level error;
 * *code then holds the exit code. */
rd_kafka_event_t *adm_wait_result(rd_kafka_queue_t *q, const char *what, int *code);

/* Exit code for a failed librdkafka call: EX_UNREACHABLE for transport and
 * timeout errors, EX_FAIL otherwise. */
int adm_code_for(rd_kafka_resp_err_t err);

/* A subcommand that runs with an admin client (made and destroyed around it). */
typedef struct adm_sub {
    const char *name;
    int (*fn)(rd_kafka_t *rk, int argc, char **argv);
} adm_sub;

/* Runs the subcommand argv[0] of `cmd` from subs; usage errors name `cmd`
 * and list the subcommands. */
int adm_dispatch(const char *cmd, const adm_sub *subs, size_t nsubs, int argc, char **argv);

/* Full cluster metadata (all topics: never auto-creates). EX_OK or an exit
 * code after printing why. */
int adm_metadata(rd_kafka_t *rk, const struct rd_kafka_metadata **md);
const rd_kafka_metadata_topic_t *adm_find_topic(const struct rd_kafka_metadata *md, const char *name);

/* Strict integer parsing of option values; prints a usage error. */
int adm_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);

/* Option matching for subcommands: "--name VALUE" or "--name=VALUE" at
 * argv[*i] (advancing *i past a separate value). 1 = matched, 0 = not this
 * option, -1 = matched but the value is missing (error printed). */
int adm_take_opt(int argc, char **argv, int *i, const char *name, const char **val);
/* 1 when argv[i] is exactly the flag `name`. */
int adm_flag(char **argv, int i, const char *name);

/* ---- JSON writer (stdout) ------------------------------------------------- */

void jw_obj(void);
void jw_obj_end(void);
void jw_arr(void);
void jw_arr_end(void);
void jw_key(const char *k);
void jw_str(const char *s); /* NULL writes null */
void jw_strn(const char *s, size_t n);
void jw_int(int64_t v);
void jw_double(double v); /* three decimals */
void jw_bool(bool v);
void jw_null(void);
/* Ends one top-level JSON document with a newline and resets the writer. */
void jw_done(void);

/* ---- text table (stdout) --------------------------------------------------- */

typedef struct {
    int ncols;
    const char *const *hdr;
    char **cells; /* row-major, ncols per row */
    size_t n, cap;
} tbl;

void tbl_init(tbl *t, int ncols, const char *const *hdr);
/* Appends one cell; rows fill left to right. */
__attribute__((format(printf, 2, 3))) void tbl_cell(tbl *t, const char *fmt, ...);
/* Prints header and rows with columns padded to their widest cell, then frees. */
void tbl_print(tbl *t);

/* ---- ping ------------------------------------------------------------------- */

/* kbroker-admin ping: an ApiVersions v0 round trip on a plain socket to each
 * bootstrap address (not through librdkafka, so exactly one request is
 * measured and the advertised addresses play no part). */
int cmd_ping(int argc, char **argv);

#endif

/*
 * admin_util.c — see admin_util.h. Also holds `ping`, which speaks the wire
 * protocol directly: the healthcheck must test the one address it was given
 * with one request, which a librdkafka client (bootstrap, then advertised
 * addresses, retries) cannot promise.
 */
#include "admin_util.h"

#include "kp_messages.h"

#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

adm_opts g_opts = {.bootstrap = "localhost:9092", .timeout_ms = 10000};

/* Last error librdkafka reported through error_cb/log_cb: the reason shown
 * when no broker answers (connection refused, name resolution, ...). */
static char g_last_err[512];

int adm_err(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("kbroker-admin: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

void adm_note(const char *fmt, ...)
{
    va_list ap;
    fputs("kbroker-admin: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4) /* warnings and worse: keep as the likely reason of a failure */
        snprintf(g_last_err, sizeof(g_last_err), "%s", buf);
    if (g_opts.verbose)
        fprintf(stderr, "librdkafka %d %s: %s\n", level, fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    (void)err;
    snprintf(g_last_err, sizeof(g_last_err), "%s", reason);
    if (g_opts.verbose)
        fprintf(stderr, "librdkafka error: %s\n", reason);
}

int adm_code_for(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return EX_UNREACHABLE;
    default:
        return EX_FAIL;
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return adm_err(EX_USAGE, "client property %s=%s: %s", k, v, errstr);
    return EX_OK;
}

int adm_client(rd_kafka_type_t type, const char *const *extra, void (*hook)(rd_kafka_conf_t *),
               rd_kafka_t **out)
{
    char num[32], errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = conf_set(conf, "bootstrap.servers", g_opts.bootstrap);
    if (!rc)
        rc = conf_set(conf, "client.id", "kbroker-admin");
    snprintf(num, sizeof(num), "%d", g_opts.timeout_ms);
    /* A broker that accepts the TCP connection but never answers must also
     * end in the timeout, not in librdkafka's 60 s default. */
    if (!rc)
        rc = conf_set(conf, "socket.timeout.ms", num);
    if (!rc && g_opts.timeout_ms >= 1000)
        rc = conf_set(conf, "socket.connection.setup.timeout.ms", num);
    for (const char *const *p = extra; !rc && p && p[0]; p += 2)
        rc = conf_set(conf, p[0], p[1]);
    for (int i = 0; !rc && i < g_opts.n_props; i++)
        rc = conf_set(conf, g_opts.props[i][0], g_opts.props[i][1]);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    if (hook)
        hook(conf);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return adm_err(EX_USAGE, "cannot create client: %s", errstr);
    }
    /* Brokers-only metadata: proves a broker answers before any operation
     * starts, so an unreachable address fails fast with its own exit code
     * instead of as an operation timeout. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, g_opts.timeout_ms);
    if (err) {
        rd_kafka_destroy(rk);
        return adm_err(adm_code_for(err), "cannot reach a broker at %s within %d ms: %s%s%s",
                       g_opts.bootstrap, g_opts.timeout_ms, rd_kafka_err2str(err), g_last_err[0] ? " — " : "",
                       g_last_err);
    }
    rd_kafka_metadata_destroy(md);
    *out = rk;
    return EX_OK;
}

rd_kafka_AdminOptions_t *adm_admin_options(rd_kafka_t *rk)
{
    char errstr[256];
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_AdminOptions_set_request_timeout(o, g_opts.timeout_ms, errstr, sizeof(errstr));
    return o;
}

rd_kafka_event_t *adm_wait_result(rd_kafka_queue_t *q, const char *what, int *code)
{
    /* The request timeout is enforced by librdkafka; the extra margin only
     * guards against a result that never comes. */
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, g_opts.timeout_ms + 5000);
    if (!ev) {
        *code = adm_err(EX_UNREACHABLE, "%s: no answer within %d ms", what, g_opts.timeout_ms);
        return NULL;
    }
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    if (err) {
        *code = adm_err(adm_code_for(err), "%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    *code = EX_OK;
    return ev;
}

int adm_metadata(rd_kafka_t *rk, const struct rd_kafka_metadata **md)
{
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, md, g_opts.timeout_ms);
    if (err)
        return adm_err(adm_code_for(err), "metadata request failed: %s", rd_kafka_err2str(err));
    return EX_OK;
}

const rd_kafka_metadata_topic_t *adm_find_topic(const struct rd_kafka_metadata *md, const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0)
            return &md->topics[i];
    return NULL;
}

int adm_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return adm_err(EX_USAGE, "%s: '%s' is not an integer in [%" PRId64 ", %" PRId64 "]", opt, s, lo, hi);
    *out = v;
    return EX_OK;
}

int adm_take_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != 0)
        return 0;
    if (*i + 1 >= argc) {
        adm_err(EX_USAGE, "option %s needs a value", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

int adm_flag(char **argv, int i, const char *name)
{
    return strcmp(argv[i], name) == 0;
}

/* ---- JSON writer ------------------------------------------------------------ */

#define JW_DEPTH 32
static struct {
    int depth;
    bool need_comma[JW_DEPTH];
    bool after_key;
} jw;

static void jw_sep(void)
{
    if (jw.after_key) {
        jw.after_key = false;
        return;
    }
    if (jw.depth > 0 && jw.need_comma[jw.depth - 1])
        putchar(',');
    if (jw.depth > 0)
        jw.need_comma[jw.depth - 1] = true;
}

static void jw_open(char c)
{
    jw_sep();
    putchar(c);
    if (jw.depth < JW_DEPTH)
        jw.need_comma[jw.depth] = false;
    jw.depth++;
}

static void jw_close(char c)
{
    jw.depth--;
    putchar(c);
}

void jw_obj(void)
{
    jw_open('{');
}
void jw_obj_end(void)
{
    jw_close('}');
}
void jw_arr(void)
{
    jw_open('[');
}
void jw_arr_end(void)
{
    jw_close(']');
}

static void jw_raw_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c); /* bytes >= 0x80 pass through: record payloads are usually UTF-8 */
    }
    putchar('"');
}

void jw_key(const char *k)
{
    jw_sep();
    jw_raw_str(k, strlen(k));
    putchar(':');
    jw.after_key = true;
}

void jw_strn(const char *s, size_t n)
{
    jw_sep();
    if (!s)
        fputs("null", stdout);
    else
        jw_raw_str(s, n);
}

void jw_str(const char *s)
{
    jw_strn(s, s ? strlen(s) : 0);
}

void jw_int(int64_t v)
{
    jw_sep();
    printf("%" PRId64, v);
}

void jw_double(double v)
{
    jw_sep();
    printf("%.3f", v);
}

void jw_bool(bool v)
{
    jw_sep();
    fputs(v ? "true" : "false", stdout);
}

void jw_null(void)
{
    jw_sep();
    fputs("null", stdout);
}

void jw_done(void)
{
    putchar('\n');
    memset(&jw, 0, sizeof(jw));
}

/* ---- table -------------------------------------------------------------------- */

void tbl_init(tbl *t, int ncols, const char *const *hdr)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    t->hdr = hdr;
}

void tbl_cell(tbl *t, const char *fmt, ...)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->cells = realloc(t->cells, t->cap * sizeof(char *));
        if (!t->cells) {
            perror("kbroker-admin");
            exit(EX_FAIL);
        }
    }
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&t->cells[t->n], fmt, ap) < 0) {
        perror("kbroker-admin");
        exit(EX_FAIL);
    }
    va_end(ap);
    t->n++;
}

void tbl_print(tbl *t)
{
    size_t w[32] = {0};
    int nc = t->ncols < 32 ? t->ncols : 32;
    for (int c = 0; c < nc; c++)
        w[c] = strlen(t->hdr[c]);
    for (size_t i = 0; i < t->n; i++) {
        size_t l = strlen(t->cells[i]);
        int c = (int)(i % (size_t)t->ncols);
        if (c < nc && l > w[c])
            w[c] = l;
    }
    for (int c = 0; c < nc; c++)
        printf("%-*s%s", c + 1 < nc ? (int)w[c] : 0, t->hdr[c], c + 1 < nc ? "  " : "\n");
    for (size_t i = 0; i < t->n; i++) {
        int c = (int)(i % (size_t)t->ncols);
        if (c >= nc)
            continue;
        printf("%-*s%s", c + 1 < nc ? (int)w[c] : 0, t->cells[i], c + 1 < nc ? "  " : "\n");
    }
    for (size_t i = 0; i < t->n; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* ---- ping --------------------------------------------------------------------- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Splits "[NAME://]host:port" (host may be [v6]) into host and port. */
static int split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p = strstr(s, "://");
    if (p)
        s = p + 3;
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        snprintf(host, hcap, "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        snprintf(host, hcap, "%.*s", (int)(colon - s), s);
    }
    snprintf(port, pcap, "%s", colon + 1);
    return port[0] ? 0 : -1;
}

/* Waits until fd is ready for `ev` or the deadline passes. */
static int wait_fd(int fd, short ev, int64_t deadline_us)
{
    for (;;) {
        int64_t left = (deadline_us - now_us()) / 1000;
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = ev};
        int r = poll(&pfd, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int read_full(int fd, unsigned char *buf, size_t n, int64_t deadline_us)
{
    size_t got = 0;
    while (got < n) {
        if (wait_fd(fd, POLLIN, deadline_us) != 0)
            return -1;
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r == 0)
            return -2;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int16_t be16(const unsigned char *p)
{
    return (int16_t)((uint16_t)p[0] << 8 | p[1]);
}

typedef struct {
    char addr[300];
    bool ok;
    char why[256];
    double rtt_ms;
    int n_apis;
    int error_code;
} ping_result;

static void ping_one(const char *target, ping_result *r)
{
    char host[256], port[32];
    memset(r, 0, sizeof(*r));
    snprintf(r->addr, sizeof(r->addr), "%s", target);
    if (split_hostport(target, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(r->why, sizeof(r->why), "not a host:port address");
        return;
    }
    int64_t deadline = now_us() + (int64_t)g_opts.timeout_ms * 1000;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gai) {
        snprintf(r->why, sizeof(r->why), "cannot resolve %.200s: %s", host, gai_strerror(gai));
        return;
    }
    int fd = -1;
    snprintf(r->why, sizeof(r->why), "no address");
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (wait_fd(fd, POLLOUT, deadline) != 0) {
                soerr = ETIMEDOUT;
            } else {
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            }
            rc = soerr ? -1 : 0;
            errno = soerr;
        }
        if (rc != 0) {
            snprintf(r->why, sizeof(r->why), "connect: %s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return;

    /* ApiVersions v0: every broker since Kafka 0.10 answers it, and v0 has no
     * tagged fields, so the frame is fixed. */
    static const char client[] = "kbroker-admin";
    unsigned char req[64];
    size_t n = 0, clen = sizeof(client) - 1;
    uint32_t body = 2 + 2 + 4 + 2 + (uint32_t)clen;
    req[n++] = (unsigned char)(body >> 24);
    req[n++] = (unsigned char)(body >> 16);
    req[n++] = (unsigned char)(body >> 8);
    req[n++] = (unsigned char)body;
    req[n++] = 0, req[n++] = KP_API_API_VERSIONS;
    req[n++] = 0, req[n++] = 0;                                         /* version 0 */
    req[n++] = 0x4b, req[n++] = 0x42, req[n++] = 0x50, req[n++] = 0x31; /* correlation id */
    req[n++] = 0, req[n++] = (unsigned char)clen;
    memcpy(req + n, client, clen);
    n += clen;

    int64_t t0 = now_us();
    size_t sent = 0;
    while (sent < n) {
        if (wait_fd(fd, POLLOUT, deadline) != 0) {
            snprintf(r->why, sizeof(r->why), "send timed out");
            close(fd);
            return;
        }
        ssize_t w = send(fd, req + sent, n - sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EINTR && errno != EAGAIN) {
            snprintf(r->why, sizeof(r->why), "send: %s", strerror(errno));
            close(fd);
            return;
        }
        if (w > 0)
            sent += (size_t)w;
    }
    unsigned char hdr[10];
    int rr = read_full(fd, hdr, sizeof(hdr), deadline);
    if (rr != 0) {
        snprintf(r->why, sizeof(r->why),
                 rr == -2 ? "connection closed without an answer"
                          : "no ApiVersions answer within the timeout");
        close(fd);
        return;
    }
    r->rtt_ms = (double)(now_us() - t0) / 1000.0;
    uint32_t size = be32(hdr);
    if (size < 6 || be32(hdr + 4) != 0x4b425031) {
        snprintf(r->why, sizeof(r->why), "answer is not an ApiVersions response");
        close(fd);
        return;
    }
    r->error_code = be16(hdr + 8);
    unsigned char cnt[4];
    if (size >= 10 && read_full(fd, cnt, 4, deadline) == 0)
        r->n_apis = (int)be32(cnt);
    close(fd);
    /* An error code still proves a Kafka broker answered (35 =
     * UNSUPPORTED_VERSION would be a broker that dropped v0). */
    r->ok = r->error_code == 0;
    if (!r->ok)
        snprintf(r->why, sizeof(r->why), "ApiVersions error %s", rd_kafka_err2str(r->error_code));
}

/* A secured listener answers ApiVersions only inside TLS (and, on SASL,
 * serves nothing else before authentication): there ping is a Metadata
 * round trip through librdkafka, which does the TLS handshake and SASL. */
static void ping_secured(const char *target, ping_result *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->addr, sizeof(r->addr), "%s", target);
    const char *saved = g_opts.bootstrap;
    g_opts.bootstrap = r->addr;
    int64_t t0 = now_us();
    rd_kafka_t *rk = NULL;
    int rc = adm_client(RD_KAFKA_PRODUCER, NULL, NULL, &rk);
    g_opts.bootstrap = saved;
    if (rc) {
        snprintf(r->why, sizeof(r->why), "no authenticated Metadata answer (see above)");
        return;
    }
    r->rtt_ms = (double)(now_us() - t0) / 1000.0;
    r->ok = true;
    r->n_apis = -1;
    rd_kafka_destroy(rk);
}

int cmd_ping(int argc, char **argv)
{
    if (argc > 0)
        return adm_err(EX_USAGE, "ping: unexpected argument '%s' (use --bootstrap HOST:PORT[,HOST:PORT])",
                       argv[0]);
    char *list = strdup(g_opts.bootstrap), *save = NULL;
    int rc = EX_OK, count = 0;
    if (g_opts.json)
        jw_arr();
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        ping_result r;
        if (adm_secured())
            ping_secured(tok, &r);
        else
            ping_one(tok, &r);
        count++;
        if (!r.ok)
            rc = EX_UNREACHABLE;
        if (g_opts.json) {
            jw_obj();
            jw_key("broker");
            jw_str(r.addr);
            jw_key("ok");
            jw_bool(r.ok);
            if (r.ok) {
                jw_key("rtt_ms");
                jw_double(r.rtt_ms);
                if (r.n_apis >= 0) {
                    jw_key("api_count");
                    jw_int(r.n_apis);
                } else { /* a secured listener: Metadata through librdkafka */
                    jw_key("authenticated");
                    jw_bool(true);
                }
            } else {
                jw_key("error");
                jw_str(r.why);
            }
            jw_obj_end();
        } else if (r.ok && r.n_apis < 0) {
            printf("%s: connected, authenticated and Metadata answered in %.3f ms\n", r.addr, r.rtt_ms);
        } else if (r.ok) {
            printf("%s: ApiVersions answered in %.3f ms (%d APIs)\n", r.addr, r.rtt_ms, r.n_apis);
        } else {
            adm_err(EX_UNREACHABLE, "%s: %s", r.addr, r.why);
        }
    }
    free(list);
    if (g_opts.json)
        jw_arr_end(), jw_done();
    if (count == 0)
        return adm_err(EX_USAGE, "no broker address given");
    return rc;
}

int adm_dispatch(const char *cmd, const adm_sub *subs, size_t nsubs, int argc, char **argv)
{
    if (argc < 1) {
        char list[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < nsubs && off < sizeof(list); i++)
            off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", subs[i].name);
        return adm_err(EX_USAGE, "%s: missing subcommand (%s)", cmd, list);
    }
    for (size_t i = 0; i < nsubs; i++) {
        if (strcmp(argv[0], subs[i].name) != 0)
            continue;
        rd_kafka_t *rk;
        int rc = adm_client(RD_KAFKA_PRODUCER, NULL, NULL, &rk);
        if (rc)
            return rc;
        rc = subs[i].fn(rk, argc - 1, argv + 1);
        rd_kafka_destroy(rk);
        return rc;
    }
    return adm_err(EX_USAGE, "%s: unknown subcommand '%s'", cmd, argv[0]);
}

/* ---- client security options ---------------------------------------------- */

const char *const adm_security_opts[] = {
    "security.protocol", "ssl.ca.location",  "ssl.certificate.location",
    "ssl.key.location",  "ssl.key.password", "sasl.mechanisms",
    "sasl.username",     "sasl.password",    NULL,
};

int adm_add_prop(const char *key, const char *value)
{
    if (g_opts.n_props == ADM_MAX_PROPS)
        return adm_err(EX_USAGE, "more than %d client properties", ADM_MAX_PROPS);
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return adm_err(EX_FAIL, "out of memory");
    }
    g_opts.props[g_opts.n_props][0] = k;
    g_opts.props[g_opts.n_props++][1] = v;
    return EX_OK;
}

int adm_read_command_config(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return adm_err(EX_USAGE, "--command-config %s: %s", path, strerror(errno));
    char line[4096];
    int rc = EX_OK, lineno = 0;
    while (rc == EX_OK && fgets(line, sizeof(line), f)) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || *p == '!')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            rc = adm_err(EX_USAGE, "--command-config %s:%d: not key=value", path, lineno);
            break;
        }
        char *ke = eq;
        while (ke > p && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        *ke = '\0';
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        rc = adm_add_prop(p, v);
    }
    fclose(f);
    return rc;
}

bool adm_secured(void)
{
    const char *proto = NULL;
    for (int i = 0; i < g_opts.n_props; i++)
        if (strcasecmp(g_opts.props[i][0], "security.protocol") == 0)
            proto = g_opts.props[i][1];
    return proto && strcasecmp(proto, "plaintext") != 0;
}

/*
 * jwks_fetch.c — the file:// and https:// JWKS sources behind jwks_fetch.h.
 *
 * Owns: one blocking GET per call over a fresh TLS connection (HTTP/1.0 so
 * the answer is never chunked and ends at close), certificate and host
 * verification, the 1 MiB and time bounds. Must not: keep state between
 * calls or run on a shard loop (see jwks_fetch.h).
 *
 * Why blocking OpenSSL on a plain socket rather than evhttp: the only caller
 * is a thread that does nothing else, so a loop would add code and no
 * concurrency; socket timeouts bound every step instead.
 */
#include "jwks_fetch.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

int srv_jwks_url_parse(const char *url, srv_jwks_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "file:", 5) == 0) {
        /* file:///path and file:/path, as java.net.URL reads them. */
        const char *path = url + 5;
        if (strncmp(path, "//", 2) == 0) {
            path += 2;
            if (strncmp(path, "localhost/", 10) == 0)
                path += 9;
            else if (*path != '/')
                return srv_cfgk_fail(err, errlen, "'%.200s' names a remote host", url);
        }
        if (*path != '/' || strlen(path) >= sizeof(u->path))
            return srv_cfgk_fail(err, errlen, "'%.200s' is not an absolute file path", url);
        u->scheme = SRV_JWKS_FILE;
        snprintf(u->path, sizeof(u->path), "%s", path);
        return 0;
    }
    if (strncasecmp(url, "https://", 8) != 0)
        return srv_cfgk_fail(
            err, errlen,
            "'%.200s': only https:// and file:// URLs are supported (keys fetched over plain http "
            "could be replaced by anyone on the path)",
            url);
    const char *h = url + 8, *end = h + strcspn(h, "/?#");
    if (strchr(h, '#') || (strchr(h, '@') && strchr(h, '@') < end))
        return srv_cfgk_fail(err, errlen, "'%.200s': user info and fragments are not supported", url);
    const char *hp_end = end, *port = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb || (rb + 1 != end && rb[1] != ':'))
            return srv_cfgk_fail(err, errlen, "'%.200s': bad IPv6 literal", url);
        if (rb + 1 != end)
            port = rb + 2;
        hp_end = rb;
        h++;
    } else {
        const char *c = memchr(h, ':', (size_t)(end - h));
        if (c) {
            port = c + 1;
            hp_end = c;
        }
    }
    size_t hl = (size_t)(hp_end - h);
    if (hl == 0 || hl >= sizeof(u->host))
        return srv_cfgk_fail(err, errlen, "'%.200s': no host or a host too long", url);
    memcpy(u->host, h, hl);
    if (port) {
        size_t pl = (size_t)(end - port);
        if (pl == 0 || pl > 5 || strspn(port, "0123456789") < pl || atoi(port) < 1 || atoi(port) > 65535)
            return srv_cfgk_fail(err, errlen, "'%.200s': bad port", url);
        memcpy(u->port, port, pl);
    } else {
        memcpy(u->port, "443", 4);
    }
    if (*end == 0)
        u->path[0] = '/';
    else if (*end == '?')
        snprintf(u->path, sizeof(u->path), "/%s", end);
    else if (strlen(end) < sizeof(u->path))
        snprintf(u->path, sizeof(u->path), "%s", end);
    else
        return srv_cfgk_fail(err, errlen, "'%.200s': path too long", url);
    for (const char *p = u->path; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return srv_cfgk_fail(err, errlen, "'%.200s': control or space characters in the path", url);
    u->scheme = SRV_JWKS_HTTPS;
    return 0;
}

int64_t srv_jwks_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms)
{
    int64_t w = base_ms > 0 ? base_ms : 1;
    for (int i = 0; i < attempt && w < max_ms; i++)
        w *= 2;
    return w < max_ms ? w : max_ms;
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return srv_cfgk_fail(err, errlen, "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(SRV_JWKS_MAX_BODY + 1);
    size_t n = buf ? fread(buf, 1, SRV_JWKS_MAX_BODY + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > SRV_JWKS_MAX_BODY) {
        free(buf);
        return srv_cfgk_fail(err, errlen, "cannot read %s: %s", path,
                             !buf  ? "out of memory"
                             : bad ? "read error"
                                   : "larger than 1 MiB");
    }
    *out = buf;
    *len = n;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects within the deadline (non-blocking connect, then poll). */
static int dial(const srv_jwks_url *u, int64_t deadline, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &ai);
    if (rc != 0)
        return srv_cfgk_fail(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
    int fd = -1;
    char why[160] = "no address";
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        if (!ok && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int64_t left = deadline - mono_ms();
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (left > 0 && poll(&p, 1, (int)left) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                ok = 1;
            else
                errno = soerr ? soerr : ETIMEDOUT;
        }
        if (!ok) {
            snprintf(why, sizeof(why), "%s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return srv_cfgk_fail(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port, why);
    return fd;
}

/* Waits until fd is ready for what SSL wants, within the deadline. */
static int wait_io(SSL *ssl, int fd, int rc, int64_t deadline)
{
    int e = SSL_get_error(ssl, rc);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return -1;
    int64_t left = deadline - mono_ms();
    struct pollfd p = {.fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
    return left > 0 && poll(&p, 1, (int)left) == 1 ? 0 : -2;
}

static void ssl_why(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "connection closed");
    ERR_clear_error();
}

/* The body of a complete HTTP/1.x answer in buf[0..n) (the connection closed
 * at its end). */
static int parse_answer(char *buf, size_t n, const srv_jwks_url *u, char **body, size_t *len, char *err,
                        size_t errlen)
{
    char *hend = NULL;
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            hend = buf + i;
            break;
        }
    if (n < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || !hend)
        return srv_cfgk_fail(err, errlen, "https://%s:%s%s: not an HTTP/1.x answer", u->host, u->port,
                             u->path);
    int status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (status != 200) {
        const char *le = memchr(buf, '\r', (size_t)(hend - buf) + 1);
        return srv_cfgk_fail(err, errlen, "https://%s:%s%s answered '%.*s'", u->host, u->port, u->path,
                             (int)((le ? le : hend) - buf > 100 ? 100 : (le ? le : hend) - buf), buf);
    }
    /* Header names are matched line by line, without case. */
    long clen = -1;
    for (char *l = memchr(buf, '\n', (size_t)(hend - buf)); l && l < hend;
         l = memchr(l + 1, '\n', (size_t)(hend - l))) {
        char *s = l + 1;
        if (hend - s >= 15 && strncasecmp(s, "Content-Length:", 15) == 0)
            clen = strtol(s + 15, NULL, 10);
        if (hend - s >= 18 && strncasecmp(s, "Transfer-Encoding:", 18) == 0)
            return srv_cfgk_fail(err, errlen,
                                 "https://%s:%s%s: a Transfer-Encoding answer to an HTTP/1.0 request",
                                 u->host, u->port, u->path);
    }
    size_t bl = n - (size_t)(hend + 4 - buf);
    if (clen >= 0 && (size_t)clen != bl)
        return srv_cfgk_fail(err, errlen, "https://%s:%s%s: body of %zu bytes, Content-Length %ld", u->host,
                             u->port, u->path, bl, clen);
    char *b = malloc(bl + 1);
    if (!b)
        return srv_cfgk_fail(err, errlen, "out of memory");
    memcpy(b, hend + 4, bl);
    *body = b;
    *len = bl;
    return 0;
}

static int https_get(const srv_jwks_url *u, const char *cafile, int timeout_ms, char **body, size_t *len,
                     char *err, size_t errlen)
{
    int64_t deadline = mono_ms() + timeout_ms;
    int rc = -1, fd = -1;
    char why[256];
    char *buf = NULL;
    SSL *ssl = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return srv_cfgk_fail(err, errlen, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Servers often close without close_notify; a cut body is caught by
     * Content-Length or by the JSON parse. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1 ||
        (cafile && SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1)) {
        ssl_why(why, sizeof(why));
        srv_cfgk_fail(err, errlen, "cannot load trusted CAs%s%s: %s", cafile ? " from " : "",
                      cafile ? cafile : "", why);
        goto out;
    }
    if ((fd = dial(u, deadline, err, errlen)) < 0)
        goto out;
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        srv_cfgk_fail(err, errlen, "cannot create a TLS connection");
        goto out;
    }
    /* An IP literal is matched against the IP SANs, a name against the DNS ones. */
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(vp, u->host) != 1) {
        SSL_set_tlsext_host_name(ssl, u->host);
        X509_VERIFY_PARAM_set1_host(vp, u->host, 0);
    }
    while ((rc = SSL_connect(ssl)) != 1) {
        int w = wait_io(ssl, fd, rc, deadline);
        if (w != 0) {
            long vr = SSL_get_verify_result(ssl);
            if (vr != X509_V_OK)
                snprintf(why, sizeof(why), "certificate verification failed: %s",
                         X509_verify_cert_error_string(vr));
            else if (w == -2)
                snprintf(why, sizeof(why), "timed out");
            else
                ssl_why(why, sizeof(why));
            rc = srv_cfgk_fail(err, errlen, "TLS handshake with %s:%s failed: %s", u->host, u->port, why);
            goto out;
        }
    }
    char req[1500];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\nUser-Agent: kbroker\r\n"
                      "Connection: close\r\n\r\n",
                      u->path, u->host);
    for (int off = 0; off < rl;) {
        int w = SSL_write(ssl, req + off, rl - off);
        if (w > 0)
            off += w;
        else if (wait_io(ssl, fd, w, deadline) != 0) {
            rc = srv_cfgk_fail(err, errlen, "https://%s:%s%s: cannot send the request", u->host, u->port,
                               u->path);
            goto out;
        }
    }
    /* Headers get 16 KiB on top of the body bound. */
    size_t cap = SRV_JWKS_MAX_BODY + 16384, n = 0;
    if (!(buf = malloc(cap + 1))) {
        rc = srv_cfgk_fail(err, errlen, "out of memory");
        goto out;
    }
    for (;;) {
        if (n == cap + 1) {
            rc = srv_cfgk_fail(err, errlen, "https://%s:%s%s: answer larger than 1 MiB", u->host, u->port,
                               u->path);
            goto out;
        }
        int r = SSL_read(ssl, buf + n, (int)(cap + 1 - n));
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
            break; /* closed: the end of an HTTP/1.0 answer */
        int w = wait_io(ssl, fd, r, deadline);
        if (w != 0) {
            rc = srv_cfgk_fail(err, errlen, "https://%s:%s%s: %s while reading the answer", u->host, u->port,
                               u->path, w == -2 ? "timed out" : "connection error");
            goto out;
        }
    }
    rc = parse_answer(buf, n, u, body, len, err, errlen);
out:
    free(buf);
    if (ssl)
        SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc == 0 ? 0 : -1;
}

int srv_jwks_fetch(const srv_jwks_url *u, const char *cafile, int timeout_ms, char **body, size_t *len,
                   char *err, size_t errlen)
{
    *body = NULL;
    *len = 0;
    if (u->scheme == SRV_JWKS_FILE)
        return read_file(u->path, body, len, err, errlen);
    return https_get(u, cafile, timeout_ms, body, len, err, errlen);
}

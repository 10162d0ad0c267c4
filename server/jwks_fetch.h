/*
 * jwks_fetch.h — getting the text of a JWKS from its endpoint URL
 * (sasl.oauthbearer.jwks.endpoint.url): a file:// path or an https:// GET,
 * and the retry delays between attempts.
 *
 * Owns: URL parsing for these two schemes, one blocking HTTPS GET (OpenSSL,
 * server certificate and host name verified against the system CAs plus an
 * optional PEM file), size and time bounds on the answer. Must not: run on a
 * shard's loop thread after start (every call blocks; oauth.c calls it at
 * start and from its refresher thread), parse the JWKS (jwt.h does).
 */
#ifndef SRV_JWKS_FETCH_H
#define SRV_JWKS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#define SRV_JWKS_MAX_BODY (1 << 20)

enum srv_jwks_scheme { SRV_JWKS_FILE, SRV_JWKS_HTTPS };

typedef struct srv_jwks_url {
    int scheme;
    char host[256];  /* https: the host (brackets of an IPv6 literal removed) */
    char port[8];    /* https: "443" unless given */
    char path[1024]; /* file: the local path; https: path and query, "/" at least */
} srv_jwks_url;

/* Parses file:///p, file:/p, file://localhost/p and https://host[:port][/path].
 * http:// and other schemes are refused with a message in err. */
int srv_jwks_url_parse(const char *url, srv_jwks_url *u, char *err, size_t errlen);

/* The wait before retry number `attempt` (0 = the first retry): base doubled
 * per attempt, at most max (Kafka's exponential retry backoff). */
int64_t srv_jwks_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms);

/* Reads the file or GETs the URL (200 answers only, at most
 * SRV_JWKS_MAX_BODY bytes, the whole exchange within timeout_ms). cafile:
 * extra trusted CAs (PEM) or NULL. Returns 0 with a malloc'ed *body, or -1
 * with err. */
int srv_jwks_fetch(const srv_jwks_url *u, const char *cafile, int timeout_ms, char **body, size_t *len,
                   char *err, size_t errlen);

#endif

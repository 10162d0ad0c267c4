/*
 * oauth.h — SASL/OAUTHBEARER on the broker side (RFC 7628, KIP-255,
 * KIP-768): a listener's validator settings and JWKS, and the server's
 * answer to each client message.
 *
 * Owns: reading the sasl.oauthbearer.* settings of a listener, its JWKS
 * (fetched at start, then kept fresh by a refresher thread per listener),
 * parsing the client's initial response (gs2 header, auth and extensions),
 * the JSON error challenge. Must not: touch connections or the wire (the
 * SaslAuthenticate handler and conn.c do), or read files or the network on
 * a shard thread.
 */
#ifndef SRV_OAUTH_H
#define SRV_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct srv_oauth srv_oauth;

/* Ours, not Kafka's (a JVM broker trusts the JVM's default trust store): a
 * PEM file of CAs trusted for the https:// JWKS endpoint besides the
 * system's. */
#define SRV_OAUTH_CA_KEY "kbroker.sasl.oauthbearer.jwks.endpoint.ca.file"

/* The validator of `listener`: its JWKS (sasl.oauthbearer.jwks.endpoint.url,
 * https:// or file://: fetched here, blocking, then refreshed by a thread of
 * its own every ...refresh.ms and for unknown kids) and its claim rules.
 * Returns 0 and *out, or -1 with a message naming the key in err. */
int srv_oauth_load(const srv_config *cfg, const char *listener, srv_oauth **out, char *err, size_t errlen);
void srv_oauth_free(srv_oauth *o);

/* What the server answers to one OAUTHBEARER client message. */
enum srv_oauth_outcome {
    SRV_OAUTH_OK,        /* authenticated: name and exp_ms set */
    SRV_OAUTH_CHALLENGE, /* send challenge (the JSON error); the client must answer %x01 */
    SRV_OAUTH_FAIL,      /* SASL_AUTHENTICATION_FAILED with msg (NULL: malformed response) */
    SRV_OAUTH_CLOSE,     /* close without an answer (a scheme other than Bearer, as Kafka) */
};

typedef struct srv_oauth_result {
    char name[256]; /* the principal's name (the subject claim), NUL-terminated */
    size_t name_len;
    int64_t exp_ms; /* the token's expiry (wall clock) */
    const uint8_t *challenge;
    size_t challenge_len;
    const char *msg; /* for the client, on SRV_OAUTH_FAIL */
    char why[800];   /* for the log, on CHALLENGE and FAIL */
} srv_oauth_result;

/* One client message. *error_sent is the connection's memory of a
 * challenge already sent (it is set and cleared here): after it, the
 * client's %x01 ends the exchange with a failure. */
int srv_oauth_step(const srv_oauth *o, int *error_sent, const uint8_t *msg, size_t len, int64_t now_ms,
                   srv_oauth_result *res);

#endif

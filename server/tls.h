/*
 * tls.h — the TLS context of an SSL or SASL_SSL listener, built from the
 * listener's ssl.* keys, and the principal a peer certificate gives.
 *
 * Owns: OpenSSL context set-up (key store, trust store, protocols, ciphers,
 * client authentication, the principal mapping rules it carries). Must not: read or write sockets (conn.c
 * drives TLS through libevent's bufferevent_openssl on the connection's shard), or be called on a shard loop
 * once serving: loading keys reads files, which is allowed only at start.
 */
#ifndef SRV_TLS_H
#define SRV_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "config.h"

/* NULL with a message in err when the key material cannot be used. */
SSL_CTX *srv_tls_ctx_new(const srv_config *cfg, const char *listener, char *err, size_t errlen);

/* "User:<name>" when the peer sent a certificate, <name> being what the
 * listener's ssl.principal.mapping.rules (default DEFAULT) make of the
 * subject DN (RFC 2253, as Java's X500Principal.getName() gives it), else
 * "User:ANONYMOUS". -1 when no rule applies (Kafka fails the
 * authentication then): out holds the DN, for the log line. */
int srv_tls_principal(SSL *ssl, char *out, size_t cap);

#endif

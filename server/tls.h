/*
 * tls.h — the TLS context of an SSL or SASL_SSL listener, built from the
 * listener's ssl.* keys, the principal a peer certificate gives, and the
 * published context a listener's shards use, replaced without a restart
 * (tls_reload.c).
 *
 * Owns: OpenSSL context set-up (key store, trust store, protocols, ciphers,
 * client authentication, the principal mapping rules it carries) and its
 * replacement. Must not: read or write sockets (conn.c drives TLS through
 * libevent's bufferevent_openssl on the connection's shard), or build a
 * context on a shard loop: loading keys reads files, done at start and
 * afterwards only on the watcher and helper threads of tls_reload.c.
 */
#ifndef SRV_TLS_H
#define SRV_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* NULL with a message in err when the key material cannot be used. */
SSL_CTX *srv_tls_ctx_new(const srv_config *cfg, const char *listener, char *err, size_t errlen);
/* The same with other key / trust store locations (NULL: the configured
 * ones), for a reload. */
SSL_CTX *srv_tls_ctx_new_at(const srv_config *cfg, const char *listener, const char *keystore,
                            const char *truststore, char *err, size_t errlen);

/* ---- the published context of a listener (tls_reload.c) ------------------ */

typedef struct srv_tls_slot srv_tls_slot;

/* At start: builds the first context. NULL with err as srv_tls_ctx_new. */
srv_tls_slot *srv_tls_slot_new(const srv_config *cfg, const char *listener, int nshards, char *err,
                               size_t errlen);
/* On shard `shard`'s thread: the context new connections use, never
 * blocking (two atomic loads; an OpenSSL reference when a newer one was
 * published). */
SSL_CTX *srv_tls_slot_ctx(srv_tls_slot *sl, int shard);
/* Off the loops: builds a context from new locations (NULL = the ones in
 * use), checks it names the same server as the one in use (subject DN and
 * SubjectAltName, as Kafka), and publishes it unless validate_only. 0, or -1
 * with the reason in msg (the old context stays). */
int srv_tls_slot_reload(srv_tls_slot *sl, const char *keystore, const char *truststore, int validate_only,
                        char *msg, size_t n);
/* The same (never validate only) for changes that must apply in an order:
 * seq older than the newest one applied is superseded and does nothing
 * (1); 0 applied, -1 refused with msg. */
int srv_tls_slot_reload_seq(srv_tls_slot *sl, const char *keystore, const char *truststore, uint64_t seq,
                            char *msg, size_t n);
/* Off the loops: reloads when the key or trust store file changed since it
 * was last read (a SHA-256 of the content); a file that
 * cannot be used is logged once and the old context kept. 0 reloaded, 1
 * unchanged, -1 refused. */
int srv_tls_slot_check(srv_tls_slot *sl);
/* After every shard stopped. */
void srv_tls_slot_free(srv_tls_slot *sl);

/* The file watcher: checks every slot each interval_ms on a thread of its
 * own. NULL when interval_ms <= 0 or no listener has TLS. stop also waits
 * for reload helpers. */
typedef struct srv_tls_watch srv_tls_watch;
srv_tls_watch *srv_tls_watch_start(srv_tls_slot **slots, int n, int64_t interval_ms);
void srv_tls_watch_stop(srv_tls_watch *w);

/* IncrementalAlterConfigs of listener.name.<l>.ssl.keystore.location (or
 * truststore): on a helper thread, then done(req, arg, ok, message) on req's
 * shard; req is held meanwhile. keystore / truststore: NULL keeps the one in
 * use, "" goes back to none (the configured inline key, or no trust store).
 * seq > 0 (not validate_only): srv_tls_slot_reload_seq's order, a
 * superseded reload answering ok. */
struct srv_req;
typedef void (*srv_tls_reload_done)(struct srv_req *req, void *arg, int ok, const char *msg);
void srv_tls_reload_async(struct srv_req *req, srv_tls_slot *sl, const char *keystore, const char *truststore,
                          int validate_only, uint64_t seq, srv_tls_reload_done done, void *arg);

/* "User:<name>" when the peer sent a certificate, <name> being what the
 * listener's ssl.principal.mapping.rules (default DEFAULT) make of the
 * subject DN (RFC 2253, as Java's X500Principal.getName() gives it), else
 * "User:ANONYMOUS". -1 when no rule applies (Kafka fails the
 * authentication then): out holds the DN, for the log line. */
int srv_tls_principal(SSL *ssl, char *out, size_t cap);

/* The DN as Java's X500Principal.getName() spells it (what Kafka's rules
 * and principals see): RFC 2253 order, keywords only for CN, C, L, ST, O,
 * OU, STREET, DC and UID, any other attribute as OID=#<DER in hex>, Java's
 * escaping. Its length, or -1 when it does not fit in cap. */
int srv_tls_dn(X509_NAME *nm, char *out, size_t cap);

#endif

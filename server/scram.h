/*
 * scram.h — SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as
 * Kafka's ScramSaslServer speaks them: credentials derived from a salted
 * password, and the server side of one exchange (client-first,
 * server-first, client-final, server-final).
 *
 * Owns: the SCRAM message grammar Kafka accepts, the key derivations
 * (HMAC/PBKDF2 through OpenSSL) and the proof check. Must not: touch
 * connections, the wire framing or the metadata log (scram_store.c keeps the
 * credentials, the SASL handlers and conn.c carry the tokens), log, or keep
 * a password or salted password after deriving the keys from it.
 */
#ifndef SRV_SCRAM_H
#define SRV_SCRAM_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's ScramMechanism type bytes (AlterUserScramCredentials, records). */
enum { SRV_SCRAM_UNKNOWN = 0, SRV_SCRAM_SHA256 = 1, SRV_SCRAM_SHA512 = 2 };
#define SRV_SCRAM_MIN_ITERATIONS 4096  /* Kafka's ScramMechanism.minIterations */
#define SRV_SCRAM_MAX_ITERATIONS 16384 /* Kafka's ScramMechanism.maxIterations */
#define SRV_SCRAM_KEY_MAX        64    /* SHA-512 */
#define SRV_SCRAM_SALT_MAX       256   /* ours: Kafka's own clients send 24-64 bytes */
#define SRV_SCRAM_USER_MAX       255   /* ours: longer names are refused */

typedef struct srv_scram_cred {
    int mech;
    int32_t iterations;
    size_t salt_len;
    uint8_t salt[SRV_SCRAM_SALT_MAX];
    uint8_t stored_key[SRV_SCRAM_KEY_MAX]; /* H(ClientKey) */
    uint8_t server_key[SRV_SCRAM_KEY_MAX]; /* HMAC(SaltedPassword, "Server Key") */
} srv_scram_cred;

/* "SCRAM-SHA-256" / "SCRAM-SHA-512", or NULL for an unknown type. */
const char *srv_scram_mech_name(int mech);
/* The type of a mechanism name (exact, case-sensitive as Kafka), or UNKNOWN. */
int srv_scram_mech_from_name(const char *name, size_t len);
/* Digest (and key) length of a mechanism: 32 or 64; 0 if unknown. */
size_t srv_scram_key_len(int mech);

/* Hi(password, salt, iterations) of RFC 5802 (PBKDF2-HMAC), key_len bytes
 * into out. 0, or -1 for an unknown mechanism or an OpenSSL failure. */
int srv_scram_salt_password(int mech, const uint8_t *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
                            int32_t iterations, uint8_t *out);
/* StoredKey and ServerKey from a salted password (what
 * AlterUserScramCredentials carries). 0, or -1 (unknown mechanism, salt over
 * SRV_SCRAM_SALT_MAX, empty salted password, OpenSSL). */
int srv_scram_cred_from_salted(int mech, const uint8_t *salted, size_t salted_len, const uint8_t *salt,
                               size_t salt_len, int32_t iterations, srv_scram_cred *out);

/* ---- the server side of one exchange ------------------------------------ */

typedef struct srv_scram_server srv_scram_server;
/* Finds the credential of (user, mech); NULL when there is none. The
 * credential is copied at once: the caller may drop it after returning. */
typedef const srv_scram_cred *(*srv_scram_lookup_fn)(void *arg, const char *user, size_t len, int mech);

enum { SRV_SCRAM_FAILED = -1, SRV_SCRAM_DONE = 0, SRV_SCRAM_CONTINUE = 1 };

srv_scram_server *srv_scram_server_new(int mech);
void srv_scram_server_free(srv_scram_server *s);
/* Tests only: the nonce the server appends to the client's (printable, no
 * ','), instead of a random one. */
void srv_scram_server_fix_nonce(srv_scram_server *s, const char *nonce, size_t len);

/* One client message. CONTINUE: *out (*out_len bytes) is the server-first message
 * (valid until the next call or free). DONE: *out is the server-final
 * message and srv_scram_server_user names the authenticated user. FAILED:
 * *msg is what Kafka answers (its SaslAuthenticationException message) and
 * *why says what was wrong, for the log (never a secret). */
int srv_scram_server_step(srv_scram_server *s, const uint8_t *in, size_t len, srv_scram_lookup_fn lookup,
                          void *arg, const uint8_t **out, size_t *out_len, const char **msg,
                          const char **why);
const char *srv_scram_server_user(const srv_scram_server *s, size_t *len);

#endif

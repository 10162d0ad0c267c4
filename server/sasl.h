/*
 * sasl.h — SASL/PLAIN credentials: the users of a listener's JAAS
 * configuration and the check of a client's PLAIN token against them.
 *
 * Owns: parsing Kafka's JAAS syntax for PlainLoginModule and the password
 * comparison. Must not: touch connections or the wire (conn.c and the
 * SaslHandshake/SaslAuthenticate handlers do), keep plain-text passwords
 * (only their SHA-256 is stored), or compare secrets in variable time.
 */
#ifndef SRV_SASL_H
#define SRV_SASL_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_plain_users srv_plain_users;

/* Parses one JAAS entry, e.g.
 *   org.apache.kafka.common.security.plain.PlainLoginModule required
 *       username="admin" password="admin-secret" user_alice="alice-secret";
 * Every user_<name>="<password>" option defines a user. Returns 0 and *out
 * (free with srv_plain_users_free), or -1 with a message in err. */
int srv_jaas_parse_plain(const char *text, size_t len, srv_plain_users **out, char *err, size_t errlen);
void srv_plain_users_free(srv_plain_users *u);
int srv_plain_users_count(const srv_plain_users *u);

/* Checks a PLAIN token (authzid NUL authcid NUL password, RFC 4616). On
 * success returns 0 and copies the user name (NUL-terminated, truncated to
 * cap) into user; otherwise returns -1 and *msg is Kafka's error message.
 * The time taken does not depend on which part of the password differs,
 * nor on whether the user exists. */
int srv_sasl_plain_check(const srv_plain_users *u, const uint8_t *tok, size_t len, char *user, size_t cap,
                         const char **msg);

#endif

/*
 * scram_store.h — the SCRAM credentials of the cluster: an immutable,
 * reference-counted set that every metadata version (srv_meta) points to,
 * the 'S' records of the metadata log that persist it, and Kafka's rules
 * for AlterUserScramCredentials.
 *
 * Owns: the set, its record format and the validation of alterations. Must
 * not: change a set once it is published (every shard reads it without
 * locks), keep a password (only salt, StoredKey and ServerKey), or do I/O:
 * the controller appends the records this module encodes.
 */
#ifndef SRV_SCRAM_STORE_H
#define SRV_SCRAM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "scram.h"
#include "wire.h"

/* The first key byte of a credential record in the metadata log. */
#define SRV_SCRAM_RECORD_KEY 'S'

typedef struct srv_scram_set srv_scram_set;

/* NULL is the empty set everywhere. */
srv_scram_set *srv_scram_set_ref(srv_scram_set *s);
void srv_scram_set_unref(srv_scram_set *s);
const srv_scram_cred *srv_scram_set_find(const srv_scram_set *s, const char *user, size_t len, int mech);
/* Users in byte order; each with the iterations of each mechanism it has
 * (iters[mech], 0 when absent; iters has room for SRV_SCRAM_SHA512 + 1). */
int srv_scram_set_nusers(const srv_scram_set *s);
const char *srv_scram_set_user(const srv_scram_set *s, int i, size_t *len, int32_t *iters);
/* srv_scram_lookup_fn over a set (arg: the srv_scram_set, NULL = empty). */
const srv_scram_cred *srv_scram_set_lookup(void *set, const char *user, size_t len, int mech);
/* Index of a user, or -1. */
int srv_scram_set_user_index(const srv_scram_set *s, const char *user, size_t len);

/* ---- building sets (the controller's, replay's and tools') ------------------ */

typedef struct srv_scram_edit srv_scram_edit;
srv_scram_edit *srv_scram_edit_new(const srv_scram_set *base);
int srv_scram_edit_put(srv_scram_edit *e, const char *user, size_t len, const srv_scram_cred *c);
void srv_scram_edit_del(srv_scram_edit *e, const char *user, size_t len, int mech);
/* The edited set (NULL when empty); e is freed either way. -1: no memory. */
int srv_scram_edit_finish(srv_scram_edit *e, srv_scram_set **out);
void srv_scram_edit_free(srv_scram_edit *e);

/* ---- records ------------------------------------------------------------------ */

/* Adds the record of (user, mech) to bb: the credential, or a tombstone when
 * c is NULL. Key: 'S', the mechanism byte, the user's bytes. */
int srv_scram_record_add(kp_batch_builder *bb, int64_t now, const char *user, size_t len, int mech,
                         const srv_scram_cred *c);
/* A record of the metadata log whose key starts with 'S', applied to e. 0,
 * KP_E_INVALID (undecodable: the caller skips it) or KP_E_NOMEM. */
int srv_scram_record_apply(srv_scram_edit *e, const uint8_t *key, size_t klen, const uint8_t *val,
                           int32_t vlen);

/* ---- AlterUserScramCredentials ------------------------------------------------ */

typedef struct srv_scram_change {
    kp_str user;
    int8_t mech; /* as the request gave it */
    int is_delete;
    int32_t iterations;
    kp_bytes salt, salted_password;
    /* result, the same for every change of one user (Kafka answers per user) */
    int16_t error;
    const char *message; /* static text, NULL with no error */
} srv_scram_change;

/* Validates changes as Kafka's controller does (per user: empty name, unknown
 * mechanism, iterations 4096..16384, a user altered twice, deleting what does
 * not exist) against base, sets each change's result, adds the records of
 * the accepted ones to bb (unless validate_only) and makes *out the new set
 * (a new reference; base's when nothing changed). Returns the number of
 * records added, or -1 when memory ran out (every result then says so). */
int srv_scram_alter(const srv_scram_set *base, srv_scram_change *ch, int n, kp_batch_builder *bb, int64_t now,
                    srv_scram_set **out);

#endif

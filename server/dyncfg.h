/*
 * dyncfg.h — dynamic broker configs: the values IncrementalAlterConfigs set
 * on a BROKER resource (this broker's id, or "" for the cluster default), an
 * immutable, reference-counted set that every metadata version (srv_meta)
 * points to, and the 'B' records of the metadata log that persist it.
 *
 * Owns: the set, its record format and Kafka's precedence between a
 * per-broker and a cluster-default value. Must not: change a set once it is
 * published (every shard reads it without locks), decide which keys may be
 * set (the handler does: only what can change at run time), or do I/O: the
 * controller appends the records this module encodes.
 */
#ifndef SRV_DYNCFG_H
#define SRV_DYNCFG_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "wire.h"

/* The first key byte of a dynamic broker config record in the metadata log. */
#define SRV_DYNCFG_RECORD_KEY 'B'
/* The same for a dynamic group config (IncrementalAlterConfigs on a GROUP
 * resource): a set of its own (srv_meta.groupcfg) whose resource is the
 * group id, so that a group named like a broker id cannot shadow it. */
#define SRV_GROUPCFG_RECORD_KEY 'G'
/* The most (group, key) pairs the cluster holds: each is in every metadata
 * version and replayed at every start; the controller refuses a new pair
 * beyond it with POLICY_VIOLATION. */
#define SRV_GROUPCFG_MAX_ENTRIES 100000

/* The three strings of an entry are one shared block (dyncfg.c): never
 * free or change them. */
typedef struct srv_dyncfg_kv {
    char *resource; /* a broker id in decimal, or "" for the cluster default */
    char *key;
    char *value;
} srv_dyncfg_kv;

typedef struct srv_dyncfg {
    int refs; /* atomic */
    int n;
    srv_dyncfg_kv *kv; /* sorted by (resource, key) */
} srv_dyncfg;

/* NULL is the empty set everywhere. */
srv_dyncfg *srv_dyncfg_ref(srv_dyncfg *d);
void srv_dyncfg_unref(srv_dyncfg *d);
/* The value set for (resource, key), or NULL. */
const char *srv_dyncfg_get(const srv_dyncfg *d, const char *resource, const char *key);
/* What applies to broker node_id: its own value, else the cluster
 * default's; *source (if given) is SRV_SOURCE_DYNAMIC_BROKER_CONFIG or
 * SRV_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG. NULL when neither is set. */
const char *srv_dyncfg_effective(const srv_dyncfg *d, int32_t node_id, const char *key, int *source);
/* A new set: d with (resource, key) set to value, or removed when value is
 * NULL. *out is NULL when the result is empty. 0, or KP_E_NOMEM. It shares
 * d's entries: O(n) pointer copies, one new entry. */
int srv_dyncfg_with(const srv_dyncfg *d, const char *resource, const char *key, const char *value,
                    srv_dyncfg **out);

/* The key of a listener-scoped setting as stored: "listener.name.<l>.<base>"
 * with the listener name in lower case (Kafka's spelling; listener names
 * compare case-insensitively). 0, or -1 when it does not fit. */
int srv_dyncfg_listener_key(char *out, size_t cap, const char *listener, size_t llen, const char *base);

/* ---- records ------------------------------------------------------------------ */

/* Adds the record of (resource, key) to bb: its value, or a tombstone when
 * value is NULL. Key: 'B', then resource and key as Kafka strings (so a
 * compacted log keeps the latest of each pair); value: a version byte and
 * the value as a Kafka string. */
int srv_dyncfg_record_add(kp_batch_builder *bb, int64_t now, const char *resource, const char *key,
                          const char *value);
/* A record of the metadata log whose key starts with 'B', applied to *d
 * (replaced by the new set). 0, KP_E_INVALID (undecodable: the caller skips
 * it) or KP_E_NOMEM. */
int srv_dyncfg_record_apply(srv_dyncfg **d, const uint8_t *key, size_t klen, const uint8_t *val,
                            int32_t vlen);
/* The same two with another first key byte (SRV_GROUPCFG_RECORD_KEY). */
int srv_dyncfg_record_add_tag(kp_batch_builder *bb, char tag, int64_t now, const char *resource,
                              const char *key, const char *value);
int srv_dyncfg_record_apply_tag(srv_dyncfg **d, char tag, const uint8_t *key, size_t klen, const uint8_t *val,
                                int32_t vlen);

/* Replay: the records of a metadata log applied in order into a mutable
 * edit (created on the first record), made into one set at the end, so a
 * replay of n records is O(n log n), not n copies of the set. */
typedef struct srv_dyncfg_edit srv_dyncfg_edit;
/* 0, KP_E_INVALID (undecodable: the caller skips it) or KP_E_NOMEM. */
int srv_dyncfg_edit_apply_tag(srv_dyncfg_edit **e, char tag, const uint8_t *key, size_t klen,
                              const uint8_t *val, int32_t vlen);
/* The set of e's latest values (NULL when empty); frees e. 0 or
 * KP_E_NOMEM. */
int srv_dyncfg_edit_finish(srv_dyncfg_edit *e, srv_dyncfg **out);
void srv_dyncfg_edit_free(srv_dyncfg_edit *e);
/* How many entries (string copies, one block each) and sets were ever
 * made: what tests count to show that a change or a replay does not copy
 * sets or strings per record. */
void srv_dyncfg_made(long *entries, long *sets);

#endif

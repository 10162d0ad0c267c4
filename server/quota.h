/*
 * quota.h — client quota configuration (KIP-546): the entities (user,
 * client-id, both, each possibly the default; ip), their quota values, the
 * validation AlterClientQuotas applies, the filter DescribeClientQuotas
 * applies, the records of the metadata log, and which quota applies to a
 * (user, client-id) pair with Kafka's precedence.
 *
 * Owns the immutable srv_quota_set that srv_meta points to (one reference
 * per version). Must not: change a set once built (every shard reads it
 * without locks), or know about connections, shards or enforcement
 * (throttle.h does that).
 */
#ifndef SRV_QUOTA_H
#define SRV_QUOTA_H

#include <stdint.h>

#include "wire.h"

/* Entity types, in the order their names are kept. */
enum { SRV_QE_USER = 0, SRV_QE_CLIENT = 1, SRV_QE_IP = 2, SRV_QE_NTYPES = 3 };

/* Quota keys. connection_creation_rate belongs to ip entities only. */
enum {
    SRV_QK_PRODUCER_BYTE_RATE = 0,
    SRV_QK_CONSUMER_BYTE_RATE = 1,
    SRV_QK_REQUEST_PERCENTAGE = 2,
    SRV_QK_CONTROLLER_MUTATION_RATE = 3,
    SRV_QK_CONNECTION_CREATION_RATE = 4,
    SRV_QK_N = 5
};

const char *srv_quota_key_name(int key);

/* An entity as a request names it. name[t].len < 0 with present bit t set:
 * the default entity of type t (<default>, a null name on the wire). */
typedef struct srv_quota_entity {
    unsigned present; /* bit per SRV_QE_* */
    kp_str name[SRV_QE_NTYPES];
} srv_quota_entity;

/* One entity's stored quotas. Names are sstr (sstr.h), NULL for default. */
typedef struct srv_quota_entry {
    unsigned present;
    char *name[SRV_QE_NTYPES];
    unsigned has; /* bit per SRV_QK_* */
    double v[SRV_QK_N];
} srv_quota_entry;

typedef struct srv_quota_set {
    int refs; /* atomic */
    int n;
    srv_quota_entry *e;
    /* Bit per SRV_QK_*: some entity sets that key (enforcement skips the
     * lookup for a key no one limits). */
    unsigned keys_used;
} srv_quota_set;

srv_quota_set *srv_quota_set_new(void);
srv_quota_set *srv_quota_set_ref(srv_quota_set *q);
void srv_quota_set_unref(srv_quota_set *q);
const srv_quota_entry *srv_quota_find(const srv_quota_set *q, const srv_quota_entity *ent);

/* ---- AlterClientQuotas --------------------------------------------------- */

typedef struct srv_quota_op {
    kp_str key;
    double value;
    int remove;
} srv_quota_op;

/* Kafka's checks of one entry (entity, then each op), in Kafka's order and
 * words: 0, or a Kafka error code with msg filled. */
int16_t srv_quota_validate(const srv_quota_entity *ent, const srv_quota_op *ops, int nops, char *msg,
                           size_t msglen);
/* Kafka's answer to an entity named twice in one request. */
void srv_quota_duplicate_text(const srv_quota_entity *ent, char *msg, size_t msglen);
int srv_quota_entity_same(const srv_quota_entity *a, const srv_quota_entity *b);
/* A new set: q with ent's quotas changed by ops (already validated). The
 * entity disappears when it has no quota left. NULL when memory ran out. */
srv_quota_set *srv_quota_apply(const srv_quota_set *q, const srv_quota_entity *ent, const srv_quota_op *ops,
                               int nops);

/* ---- metadata log records ('Q' + entity key, value: the quotas) ---------- */

/* Writes the record key of ent: 'Q', then per entity type a state byte
 * (0 absent, 1 default, 2 named) and the name. Returns w->err. */
int srv_quota_record_key(kp_writer *w, const srv_quota_entity *ent);
/* The record value of e (NULL or empty: a tombstone is written instead). */
int srv_quota_record_value(kp_writer *w, const srv_quota_entry *e);
/* Replay: sets the quotas of the entity in key to those in value (a null
 * value removes it). Returns a new set (q is unchanged) or NULL when the
 * record is malformed or memory ran out (*bad distinguishes). */
srv_quota_set *srv_quota_replay(const srv_quota_set *q, kp_bytes key, kp_bytes value, int *bad);

/* ---- DescribeClientQuotas -------------------------------------------------- */

enum { SRV_QMATCH_EXACT = 0, SRV_QMATCH_DEFAULT = 1, SRV_QMATCH_ANY = 2 };
typedef struct srv_quota_filter {
    int type; /* SRV_QE_* */
    int match;
    kp_str name; /* SRV_QMATCH_EXACT */
} srv_quota_filter;

/* The filter components as received: 0, or a Kafka error code and message
 * (Kafka's checks and words). types[] are the components' entity type names. */
int16_t srv_quota_filter_parse(const kp_str *types, const int8_t *match, const kp_str *names, int n,
                               srv_quota_filter *out, char *msg, size_t msglen);
int srv_quota_filter_match(const srv_quota_entry *e, const srv_quota_filter *f, int n, int strict);

/* ---- enforcement: which quota applies ----------------------------------- */

/* The quota on `key` for a client (user: the principal's name; client id),
 * with Kafka's precedence: user+client-id, user+<default> client, user,
 * <default> user+client-id, <default> user+<default> client, <default>
 * user, client-id, <default> client. Returns 1 and the bound, and the
 * metric tags Kafka gives it (who shares the measured rate: *tag_user /
 * *tag_client set when the user / client id are part of it), or 0. */
int srv_quota_lookup(const srv_quota_set *q, int key, kp_str user, kp_str client, double *bound,
                     int *tag_user, int *tag_client);

/* connection_creation_rate of an address (numeric text): its own ip entity,
 * else the default ip entity. 1 and the bound, or 0. */
int srv_quota_lookup_ip(const srv_quota_set *q, const char *ip, double *bound);

#endif

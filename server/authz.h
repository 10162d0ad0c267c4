/*
 * authz.h — the ACL engine with Apache Kafka's StandardAuthorizer semantics:
 * immutable, reference-counted ACL sets, the authorization decision, the
 * filters of DescribeAcls/DeleteAcls, and the metadata log encoding of one
 * binding.
 *
 * Owns: the ACL set type (srv_acl_set) and every rule of who may do what.
 * Must not: touch shards, connections, requests or disk (srv_authorize in
 * authz_req.h is the one bridge from a request); change a set once built
 * (every shard reads a published set without locks).
 */
#ifndef SRV_AUTHZ_H
#define SRV_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Kafka's wire codes (org.apache.kafka.common.resource.ResourceType, ...). */
enum {
    SRV_RES_UNKNOWN = 0,
    SRV_RES_ANY = 1,
    SRV_RES_TOPIC = 2,
    SRV_RES_GROUP = 3,
    SRV_RES_CLUSTER = 4,
    SRV_RES_TRANSACTIONAL_ID = 5,
    SRV_RES_DELEGATION_TOKEN = 6,
    SRV_RES_USER = 7,
};
enum {
    SRV_PAT_UNKNOWN = 0,
    SRV_PAT_ANY = 1,
    SRV_PAT_MATCH = 2,
    SRV_PAT_LITERAL = 3,
    SRV_PAT_PREFIXED = 4,
};
enum {
    SRV_OP_UNKNOWN = 0,
    SRV_OP_ANY = 1,
    SRV_OP_ALL = 2,
    SRV_OP_READ = 3,
    SRV_OP_WRITE = 4,
    SRV_OP_CREATE = 5,
    SRV_OP_DELETE = 6,
    SRV_OP_ALTER = 7,
    SRV_OP_DESCRIBE = 8,
    SRV_OP_CLUSTER_ACTION = 9,
    SRV_OP_DESCRIBE_CONFIGS = 10,
    SRV_OP_ALTER_CONFIGS = 11,
    SRV_OP_IDEMPOTENT_WRITE = 12,
    SRV_OP_CREATE_TOKENS = 13,
    SRV_OP_DESCRIBE_TOKENS = 14,
};
enum {
    SRV_PERM_UNKNOWN = 0,
    SRV_PERM_ANY = 1,
    SRV_PERM_DENY = 2,
    SRV_PERM_ALLOW = 3,
};

/* The one CLUSTER resource name Kafka accepts. */
#define SRV_CLUSTER_RESOURCE "kafka-cluster"

/* One ACL binding. Strings carry their lengths (any byte may be in them). */
typedef struct srv_acl {
    int8_t rtype, pattern, op, perm;
    kp_str name, principal, host;
} srv_acl;

/* A DescribeAcls / DeleteAcls filter: the same fields, where ANY codes and
 * null strings (len < 0) match everything. */
typedef srv_acl srv_acl_filter;

/* Sorted by (resource type, pattern, name) so that a decision looks at the
 * bindings that can cover the resource only: the literal name, the literal
 * "*", and one binary search per distinct PREFIXED length of the type. */
typedef struct srv_acl_set {
    int refs; /* atomic */
    int n;
    srv_acl *acls;      /* strings point into the set's own storage */
    int32_t *plens;     /* distinct PREFIXED name lengths, ascending per type */
    int plen_at[8 + 1]; /* plens of type t: [plen_at[t], plen_at[t + 1]) */
} srv_acl_set;

/* Settings of the authorizer, fixed at start. */
typedef struct srv_authz_cfg {
    int enabled;            /* authorizer.class.name names StandardAuthorizer */
    int allow_if_no_acl;    /* allow.everyone.if.no.acl.found */
    int nsuper;             /* super.users */
    kp_str super_users[64]; /* point into super_buf */
    char super_buf[1024];
} srv_authz_cfg;

/* Kafka's class names of StandardAuthorizer (the KRaft one, and the name it
 * had while it lived in kafka.security): 1 when `cls` is one of them. */
int srv_authz_class_ok(const char *cls);
/* Parses super.users (';'-separated principals, trimmed); NULL or "" for
 * none. 0, or -1 with err when there are too many or they are too long. */
int srv_authz_cfg_init(srv_authz_cfg *cfg, int enabled, int allow_if_no_acl, const char *super_users,
                       char *err, size_t errlen);

/* A new set holding copies of acls[0..n) (NULL when memory ran out). */
srv_acl_set *srv_acl_set_new(const srv_acl *acls, int n);
/* base without the bindings whose drop[i] is set, plus add[0..nadd): a new
 * set (NULL when memory ran out). base may be NULL (empty). */
srv_acl_set *srv_acl_set_derive(const srv_acl_set *base, const uint8_t *drop, const srv_acl *add, int nadd);
srv_acl_set *srv_acl_set_ref(srv_acl_set *s);
void srv_acl_set_unref(srv_acl_set *s);
/* Index of a binding equal to a in s, or -1. */
int srv_acl_set_find(const srv_acl_set *s, const srv_acl *a);

int srv_acl_equal(const srv_acl *a, const srv_acl *b);

/* Kafka's answer for principal at host doing op on (rtype, name): 1 allowed,
 * 0 denied. Super users are always allowed; a DENY that matches wins over
 * any ALLOW; READ/WRITE/DELETE/ALTER imply DESCRIBE and ALTER_CONFIGS implies
 * DESCRIBE_CONFIGS (for ALLOW only); with no binding at all on the resource,
 * allow.everyone.if.no.acl.found decides. */
int srv_authz_check(const srv_authz_cfg *cfg, const srv_acl_set *set, kp_str principal, kp_str host, int op,
                    int rtype, kp_str name);
/* Kafka's Authorizer.authorizeByResourceType: may the principal do op on
 * at least one resource of rtype? (InitProducerId: WRITE on any topic.) A
 * probe name first (super users, allow.everyone.if.no.acl.found), then the
 * ALLOW patterns not dominated by a DENY: a wildcard DENY denies all, a
 * literal DENY cancels the same literal, a prefixed DENY every name it
 * prefixes. */
int srv_authz_check_any(const srv_authz_cfg *cfg, const srv_acl_set *set, kp_str principal, kp_str host,
                        int op, int rtype);
int srv_authz_is_super(const srv_authz_cfg *cfg, kp_str principal);

/* AclBindingFilter.matches: 1 when binding a passes filter f. */
int srv_acl_filter_match(const srv_acl_filter *f, const srv_acl *a);

/* A binding or filter with a field of code 0 (UNKNOWN): Kafka refuses to
 * parse such a request at all and closes the connection. */
int srv_acl_has_unknown(const srv_acl *a);
/* Kafka's checks of a binding to create, in Kafka's order: 0, or the error
 * code (INVALID_REQUEST with *msg; UNKNOWN_SERVER_ERROR with *msg NULL for
 * ANY/MATCH codes, which Kafka's binding constructor throws on). A principal
 * without a type sets *msg to NULL and *bad_principal. */
int16_t srv_acl_validate_new(const srv_acl *a, const char **msg, int *bad_principal);
/* ... and of a DeleteAcls filter: 0 or a message. DescribeAcls takes any
 * filter (codes Kafka does not know match nothing). */
const char *srv_acl_validate_filter(const srv_acl_filter *f);

/* The metadata log record of one binding: the key (which is also the
 * binding's identity: a tombstone with the same key deletes it) and the
 * value. Both written to w; 0 or a KP_E_* code. */
int srv_acl_encode_key(kp_writer *w, const srv_acl *a);
int srv_acl_encode_value(kp_writer *w, const srv_acl *a);
/* Decodes a value; strings point into p. 0 or KP_E_INVALID. */
int srv_acl_decode_value(const uint8_t *p, size_t n, srv_acl *a);
/* The key record prefix of ACL records. */
#define SRV_ACL_KEY_PREFIX 'A'

#endif

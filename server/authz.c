/*
 * authz.c — the ACL engine: Apache Kafka's StandardAuthorizer decision over
 * an immutable ACL set, the filters of DescribeAcls/DeleteAcls, validation
 * of new bindings, and the metadata log encoding of a binding.
 *
 * Owns: srv_acl_set memory (one allocation per set: the array, then every
 * string). Must not: know requests, shards or the log; modify a set after
 * srv_acl_set_new / srv_acl_set_derive returned it.
 */
#include "authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "srv_assert.h"

#define ACL_RECORD_VERSION 0

static const char *const STANDARD_AUTHORIZER_CLASSES[] = {
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    NULL,
};

int srv_authz_class_ok(const char *cls)
{
    for (int i = 0; STANDARD_AUTHORIZER_CLASSES[i]; i++)
        if (strcmp(cls, STANDARD_AUTHORIZER_CLASSES[i]) == 0)
            return 1;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int srv_authz_cfg_init(srv_authz_cfg *cfg, int enabled, int allow_if_no_acl, const char *super_users,
                       char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = enabled;
    cfg->allow_if_no_acl = allow_if_no_acl;
    if (!super_users)
        return 0;
    size_t len = strlen(super_users);
    if (len >= sizeof(cfg->super_buf)) {
        if (err)
            snprintf(err, errlen, "super.users is longer than %zu bytes", sizeof(cfg->super_buf) - 1);
        return -1;
    }
    memcpy(cfg->super_buf, super_users, len + 1);
    const char *p = cfg->super_buf, *end = cfg->super_buf + len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        const char *a = p, *b = e;
        while (a < b && is_space(*a))
            a++;
        while (b > a && is_space(b[-1]))
            b--;
        if (b > a) {
            if (cfg->nsuper == (int)(sizeof(cfg->super_users) / sizeof(cfg->super_users[0]))) {
                if (err)
                    snprintf(err, errlen, "super.users lists more than %d principals", cfg->nsuper);
                return -1;
            }
            cfg->super_users[cfg->nsuper++] = (kp_str){a, (int32_t)(b - a)};
        }
        p = e + 1;
    }
    return 0;
}

/* ---- sets --------------------------------------------------------------- */

static int str_same(kp_str a, kp_str b)
{
    if (a.len < 0 || b.len < 0)
        return a.len < 0 && b.len < 0;
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, (size_t)a.len) == 0);
}

int srv_acl_equal(const srv_acl *a, const srv_acl *b)
{
    return a->rtype == b->rtype && a->pattern == b->pattern && a->op == b->op && a->perm == b->perm &&
           str_same(a->name, b->name) && str_same(a->principal, b->principal) && str_same(a->host, b->host);
}

static size_t str_room(kp_str s)
{
    return s.len > 0 ? (size_t)s.len : 0;
}

static kp_str copy_into(char **pos, kp_str s)
{
    if (s.len < 0)
        return KP_STR_NULL;
    kp_str r = {*pos, s.len};
    if (s.len)
        memcpy(*pos, s.p, (size_t)s.len);
    *pos += s.len;
    return r;
}

static int key_cmp(int rt_a, int pat_a, kp_str name_a, int rt_b, int pat_b, kp_str name_b)
{
    if (rt_a != rt_b)
        return rt_a < rt_b ? -1 : 1;
    if (pat_a != pat_b)
        return pat_a < pat_b ? -1 : 1;
    int32_t la = name_a.len > 0 ? name_a.len : 0, lb = name_b.len > 0 ? name_b.len : 0;
    int c = memcmp(name_a.p ? name_a.p : "", name_b.p ? name_b.p : "", (size_t)(la < lb ? la : lb));
    if (c)
        return c;
    return la < lb ? -1 : la > lb ? 1 : 0;
}

static int ptr_cmp(const void *x, const void *y)
{
    const srv_acl *a = *(const srv_acl *const *)x, *b = *(const srv_acl *const *)y;
    return key_cmp(a->rtype, a->pattern, a->name, b->rtype, b->pattern, b->name);
}

/* Type codes outside 1..7 (decoded from a damaged record) share slot 0. */
static int type_slot(int rtype)
{
    return rtype >= SRV_RES_ANY && rtype <= SRV_RES_USER ? rtype : 0;
}

/* One allocation: the set, its array, the prefix lengths, then the strings
 * of every binding. src is sorted here. */
static srv_acl_set *build(const srv_acl **src, int n)
{
    qsort(src, (size_t)n, sizeof(*src), ptr_cmp);
    size_t strings = 0;
    for (int i = 0; i < n; i++)
        strings += str_room(src[i]->name) + str_room(src[i]->principal) + str_room(src[i]->host);
    size_t head = sizeof(srv_acl_set) + (size_t)n * sizeof(srv_acl) + ((size_t)n + 1) * sizeof(int32_t);
    srv_acl_set *s = malloc(head + strings);
    if (!s)
        return NULL;
    s->refs = 1;
    s->n = n;
    s->acls = (srv_acl *)(s + 1);
    s->plens = (int32_t *)(s->acls + n);
    char *pos = (char *)s + head;
    for (int i = 0; i < n; i++) {
        srv_acl *d = &s->acls[i];
        *d = *src[i];
        d->name = copy_into(&pos, src[i]->name);
        d->principal = copy_into(&pos, src[i]->principal);
        d->host = copy_into(&pos, src[i]->host);
    }
    SRV_ASSERT((size_t)(pos - (char *)s) == head + strings, "ACL set laid out %zu bytes of %zu",
               (size_t)(pos - (char *)s), head + strings);
    /* Distinct PREFIXED lengths per type: a small set in practice. */
    int np = 0;
    for (int t = 0; t <= 8; t++) {
        s->plen_at[t] = np;
        if (t == 8)
            break;
        int first = np;
        for (int i = 0; i < n; i++) {
            const srv_acl *a = &s->acls[i];
            if (type_slot(a->rtype) != t || a->pattern != SRV_PAT_PREFIXED)
                continue;
            int k = first;
            while (k < np && s->plens[k] < a->name.len)
                k++;
            if (k < np && s->plens[k] == a->name.len)
                continue;
            memmove(&s->plens[k + 1], &s->plens[k], (size_t)(np - k) * sizeof(int32_t));
            s->plens[k] = a->name.len;
            np++;
        }
    }
    return s;
}

/* First index whose key is >= (rtype, pattern, name). */
static int lower(const srv_acl_set *s, int rtype, int pattern, kp_str name)
{
    int lo = 0, hi = s->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const srv_acl *a = &s->acls[mid];
        if (key_cmp(a->rtype, a->pattern, a->name, rtype, pattern, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

srv_acl_set *srv_acl_set_new(const srv_acl *acls, int n)
{
    return srv_acl_set_derive(NULL, NULL, acls, n);
}

srv_acl_set *srv_acl_set_derive(const srv_acl_set *base, const uint8_t *drop, const srv_acl *add, int nadd)
{
    int nbase = base ? base->n : 0;
    const srv_acl **src = malloc(((size_t)nbase + (size_t)nadd + 1) * sizeof(*src));
    if (!src)
        return NULL;
    int n = 0;
    for (int i = 0; i < nbase; i++)
        if (!drop || !drop[i])
            src[n++] = &base->acls[i];
    for (int i = 0; i < nadd; i++)
        src[n++] = &add[i];
    srv_acl_set *s = build(src, n);
    free(src);
    return s;
}

srv_acl_set *srv_acl_set_ref(srv_acl_set *s)
{
    int r = __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    SRV_ASSERT(r > 1, "ACL set %p referenced after its last unref (refs now %d)", (void *)s, r);
    return s;
}

void srv_acl_set_unref(srv_acl_set *s)
{
    if (!s)
        return;
    int r = __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    SRV_ASSERT(r >= 0, "ACL set %p unreferenced once too often (refs now %d)", (void *)s, r);
    if (r == 0)
        free(s);
}

int srv_acl_set_find(const srv_acl_set *s, const srv_acl *a)
{
    if (!s)
        return -1;
    for (int i = lower(s, a->rtype, a->pattern, a->name);
         i < s->n &&
         key_cmp(s->acls[i].rtype, s->acls[i].pattern, s->acls[i].name, a->rtype, a->pattern, a->name) == 0;
         i++)
        if (srv_acl_equal(&s->acls[i], a))
            return i;
    return -1;
}

/* ---- the decision --------------------------------------------------------- */

static int str_is(kp_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len >= 0 && (size_t)s.len == n && memcmp(s.p, lit, n) == 0;
}

int srv_authz_is_super(const srv_authz_cfg *cfg, kp_str principal)
{
    for (int i = 0; i < cfg->nsuper; i++)
        if (str_same(cfg->super_users[i], principal))
            return 1;
    return 0;
}

/* The binding's resource pattern covers the resource (type already equal). */
static int pattern_covers(const srv_acl *a, kp_str name)
{
    if (a->pattern == SRV_PAT_LITERAL)
        return str_is(a->name, "*") || str_same(a->name, name);
    if (a->pattern == SRV_PAT_PREFIXED)
        return name.len >= a->name.len && a->name.len >= 0 &&
               (a->name.len == 0 || memcmp(name.p, a->name.p, (size_t)a->name.len) == 0);
    return 0;
}

/* "User:*" stands for every principal of type User, as in Kafka. */
static int principal_matches(kp_str acl, kp_str principal)
{
    if (str_same(acl, principal))
        return 1;
    return str_is(acl, "User:*") && principal.len >= 5 && memcmp(principal.p, "User:", 5) == 0;
}

static int host_matches(kp_str acl, kp_str host)
{
    return str_is(acl, "*") || str_same(acl, host);
}

/* An ALLOW of acl_op grants op: the same, ALL, or one that implies it. */
static int allow_grants(int acl_op, int op)
{
    if (acl_op == op || acl_op == SRV_OP_ALL)
        return 1;
    if (op == SRV_OP_DESCRIBE)
        return acl_op == SRV_OP_READ || acl_op == SRV_OP_WRITE || acl_op == SRV_OP_DELETE ||
               acl_op == SRV_OP_ALTER;
    if (op == SRV_OP_DESCRIBE_CONFIGS)
        return acl_op == SRV_OP_ALTER_CONFIGS;
    return 0;
}

typedef struct decision {
    kp_str principal, host;
    int op;
    int any_on_resource, allowed, denied;
} decision;

/* The bindings of one key (all cover the resource): the principal's DENY
 * of the operation (or ALL) decides at once; ALLOWs grant it or an implied
 * one. */
static void visit(const srv_acl_set *s, int rtype, int pattern, kp_str name, decision *d)
{
    for (int i = lower(s, rtype, pattern, name); i < s->n && !d->denied; i++) {
        const srv_acl *a = &s->acls[i];
        if (key_cmp(a->rtype, a->pattern, a->name, rtype, pattern, name) != 0)
            break;
        d->any_on_resource = 1;
        if (!principal_matches(a->principal, d->principal) || !host_matches(a->host, d->host))
            continue;
        if (a->perm == SRV_PERM_DENY) {
            /* A DENY names its operation exactly (or ALL): implied ones are
             * not denied, as in Kafka. */
            if (a->op == d->op || a->op == SRV_OP_ALL)
                d->denied = 1;
        } else if (a->perm == SRV_PERM_ALLOW && allow_grants(a->op, d->op)) {
            d->allowed = 1;
        }
    }
}

int srv_authz_check(const srv_authz_cfg *cfg, const srv_acl_set *set, kp_str principal, kp_str host, int op,
                    int rtype, kp_str name)
{
    if (srv_authz_is_super(cfg, principal))
        return 1;
    decision d = {principal, host, op, 0, 0, 0};
    if (set && set->n) {
        static const char star[] = "*";
        if (name.len >= 0 && !str_is(name, star))
            visit(set, rtype, SRV_PAT_LITERAL, name, &d);
        visit(set, rtype, SRV_PAT_LITERAL, (kp_str){star, 1}, &d);
        int t = type_slot(rtype);
        for (int k = set->plen_at[t]; k < set->plen_at[t + 1] && !d.denied && name.len >= 0; k++) {
            if (set->plens[k] > name.len)
                break;
            visit(set, rtype, SRV_PAT_PREFIXED, (kp_str){name.p, set->plens[k]}, &d);
        }
    }
    if (d.denied)
        return 0;
    if (d.allowed)
        return 1;
    return !d.any_on_resource && cfg->allow_if_no_acl;
}

/* One binding of the principal at host, for op exactly or ALL. */
static int applies_to(const srv_acl *a, kp_str principal, kp_str host, int op, int rtype)
{
    return a->rtype == rtype && (a->op == op || a->op == SRV_OP_ALL) &&
           principal_matches(a->principal, principal) && host_matches(a->host, host);
}

/* A DENY dominates allowed (a name of pattern allowed_pat). */
static int dominated(const srv_acl_set *set, const srv_acl *allowed, kp_str principal, kp_str host, int op,
                     int rtype)
{
    for (int i = 0; i < set->n; i++) {
        const srv_acl *d = &set->acls[i];
        if (d->perm != SRV_PERM_DENY || !applies_to(d, principal, host, op, rtype))
            continue;
        if (d->pattern == SRV_PAT_LITERAL && allowed->pattern == SRV_PAT_LITERAL &&
            str_same(d->name, allowed->name))
            return 1;
        if (d->pattern == SRV_PAT_PREFIXED && d->name.len <= allowed->name.len &&
            memcmp(d->name.p, allowed->name.p, (size_t)d->name.len) == 0)
            return 1;
    }
    return 0;
}

/* The resource name Kafka's authorizeByResourceType (StandardAuthorizer's
 * and AclAuthorizer's, its isSuperUserAuthorized step) asks about first:
 * Kafka spells it "hardcode". A super user passes there, and with
 * allow.everyone.if.no.acl.found so does anyone when no binding covers that
 * name. It is Kafka's value, kept verbatim so that a binding on a resource
 * really named so changes the answer as on Kafka (test_authz: "by type"). */
static const char KAFKA_TYPE_PROBE_NAME[] = "hardcode";

int srv_authz_check_any(const srv_authz_cfg *cfg, const srv_acl_set *set, kp_str principal, kp_str host,
                        int op, int rtype)
{
    kp_str probe = {KAFKA_TYPE_PROBE_NAME, (int32_t)(sizeof(KAFKA_TYPE_PROBE_NAME) - 1)};
    if (srv_authz_check(cfg, set, principal, host, op, rtype, probe))
        return 1;
    if (!set)
        return 0;
    for (int i = 0; i < set->n; i++) {
        const srv_acl *d = &set->acls[i];
        if (d->perm == SRV_PERM_DENY && d->pattern == SRV_PAT_LITERAL && str_is(d->name, "*") &&
            applies_to(d, principal, host, op, rtype))
            return 0;
    }
    for (int i = 0; i < set->n; i++) {
        const srv_acl *a = &set->acls[i];
        if (a->perm != SRV_PERM_ALLOW || !applies_to(a, principal, host, op, rtype))
            continue;
        if (a->pattern == SRV_PAT_LITERAL && str_is(a->name, "*"))
            return 1;
        if (!dominated(set, a, principal, host, op, rtype))
            return 1;
    }
    return 0;
}

/* ---- filters ------------------------------------------------------------- */

int srv_acl_filter_match(const srv_acl_filter *f, const srv_acl *a)
{
    if (f->rtype != SRV_RES_ANY && f->rtype != a->rtype)
        return 0;
    if (f->pattern != SRV_PAT_ANY && f->pattern != SRV_PAT_MATCH && f->pattern != a->pattern)
        return 0;
    if (f->name.len >= 0) {
        if (f->pattern == SRV_PAT_ANY || f->pattern == a->pattern) {
            if (!str_same(f->name, a->name))
                return 0;
        } else if (!pattern_covers(a, f->name)) { /* MATCH: the bindings that apply to that name */
            return 0;
        }
    }
    if (f->principal.len >= 0 && !str_same(f->principal, a->principal))
        return 0;
    if (f->host.len >= 0 && !str_same(f->host, a->host))
        return 0;
    if (f->op != SRV_OP_ANY && f->op != a->op)
        return 0;
    if (f->perm != SRV_PERM_ANY && f->perm != a->perm)
        return 0;
    return 1;
}

static int known_rtype(int t)
{
    return t >= SRV_RES_ANY && t <= SRV_RES_USER;
}

int srv_acl_has_unknown(const srv_acl *a)
{
    return a->rtype == SRV_RES_UNKNOWN || a->pattern == SRV_PAT_UNKNOWN || a->op == SRV_OP_UNKNOWN ||
           a->perm == SRV_PERM_UNKNOWN;
}

int16_t srv_acl_validate_new(const srv_acl *a, const char **msg, int *bad_principal)
{
    *msg = NULL;
    *bad_principal = 0;
    if (a->rtype == SRV_RES_ANY || a->pattern == SRV_PAT_ANY || a->pattern == SRV_PAT_MATCH ||
        a->op == SRV_OP_ANY || a->perm == SRV_PERM_ANY)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    if (a->rtype == SRV_RES_CLUSTER && !str_is(a->name, SRV_CLUSTER_RESOURCE))
        *msg = "The only valid name for the CLUSTER resource is kafka-cluster";
    else if (a->name.len <= 0)
        *msg = "Invalid empty resource name";
    else if (a->pattern != SRV_PAT_LITERAL && a->pattern != SRV_PAT_PREFIXED)
        *msg = "Invalid patternType UNKNOWN";
    else if (!known_rtype(a->rtype))
        *msg = "Invalid resourceType UNKNOWN";
    else if (a->op < SRV_OP_ALL || a->op > SRV_OP_DESCRIBE_TOKENS)
        *msg = "Invalid operation UNKNOWN";
    else if (a->perm != SRV_PERM_ALLOW && a->perm != SRV_PERM_DENY)
        *msg = "Invalid permissionType UNKNOWN";
    else if (a->principal.len <= 0 || !memchr(a->principal.p, ':', (size_t)a->principal.len))
        *bad_principal = 1; /* KafkaPrincipal.fromString: "Type:name" */
    else if (a->host.len <= 0)
        *msg = "Host pattern cannot be null or empty";
    else
        return 0;
    return KP_ERR_INVALID_REQUEST;
}

const char *srv_acl_validate_filter(const srv_acl_filter *f)
{
    if (f->pattern < SRV_PAT_ANY || f->pattern > SRV_PAT_PREFIXED || !known_rtype(f->rtype))
        return "Unknown patternFilter.";
    if (f->op < SRV_OP_ANY || f->op > SRV_OP_DESCRIBE_TOKENS || f->perm < SRV_PERM_ANY ||
        f->perm > SRV_PERM_ALLOW)
        return "Unknown entryFilter.";
    return NULL;
}

/* ---- the metadata log record ------------------------------------------------ */

int srv_acl_encode_value(kp_writer *w, const srv_acl *a)
{
    kp_write_i8(w, ACL_RECORD_VERSION);
    kp_write_i8(w, a->rtype);
    kp_write_i8(w, a->pattern);
    kp_write_i8(w, a->op);
    kp_write_i8(w, a->perm);
    kp_write_string(w, a->name);
    kp_write_string(w, a->principal);
    kp_write_string(w, a->host);
    return w->err;
}

/* The key is the value behind a prefix: the binding is its own identity,
 * so creating it twice leaves one record after compaction. */
int srv_acl_encode_key(kp_writer *w, const srv_acl *a)
{
    kp_write_i8(w, SRV_ACL_KEY_PREFIX);
    return srv_acl_encode_value(w, a);
}

int srv_acl_decode_value(const uint8_t *p, size_t n, srv_acl *a)
{
    kp_reader r;
    kp_reader_init(&r, p, n);
    int8_t ver = 0;
    memset(a, 0, sizeof(*a));
    if (kp_read_i8(&r, &ver) || ver != ACL_RECORD_VERSION || kp_read_i8(&r, &a->rtype) ||
        kp_read_i8(&r, &a->pattern) || kp_read_i8(&r, &a->op) || kp_read_i8(&r, &a->perm) ||
        kp_read_string(&r, &a->name) || kp_read_string(&r, &a->principal) || kp_read_string(&r, &a->host) ||
        kp_reader_left(&r) != 0)
        return KP_E_INVALID;
    const char *msg;
    int bad_principal;
    if (srv_acl_validate_new(a, &msg, &bad_principal))
        return KP_E_INVALID;
    return 0;
}

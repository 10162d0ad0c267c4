/*
 * quota.c — client quota configuration: validation as Kafka's controller
 * does it (ClientQuotaControlManager), immutable quota sets, their metadata
 * log records, DescribeClientQuotas filters and the precedence of Kafka's
 * ClientQuotaManager.
 *
 * Owns the srv_quota_set memory. Must not: change a published set, touch
 * connections or shard state, or read names as C strings (they are
 * protocol strings: any byte, NUL included).
 */
#include "quota.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "srv_assert.h"
#include "sstr.h"

static const char *const key_names[SRV_QK_N] = {"producer_byte_rate", "consumer_byte_rate",
                                                "request_percentage", "controller_mutation_rate",
                                                "connection_creation_rate"};
static const char *const type_names[SRV_QE_NTYPES] = {"user", "client-id", "ip"};

const char *srv_quota_key_name(int key)
{
    return key >= 0 && key < SRV_QK_N ? key_names[key] : "?";
}

static int key_index(kp_str k)
{
    for (int i = 0; i < SRV_QK_N; i++)
        if (kp_str_eq(k, key_names[i]))
            return i;
    return -1;
}

static int type_index(kp_str t)
{
    for (int i = 0; i < SRV_QE_NTYPES; i++)
        if (kp_str_eq(t, type_names[i]))
            return i;
    return -1;
}

/* ---- sets ---------------------------------------------------------------- */

srv_quota_set *srv_quota_set_new(void)
{
    srv_quota_set *q = calloc(1, sizeof(*q));
    if (q)
        q->refs = 1;
    return q;
}

srv_quota_set *srv_quota_set_ref(srv_quota_set *q)
{
    int r = __atomic_add_fetch(&q->refs, 1, __ATOMIC_RELAXED);
    SRV_ASSERT(r > 1, "quota set %p referenced after its last unref (refs now %d)", (void *)q, r);
    return q;
}

static void entry_free(srv_quota_entry *e)
{
    for (int t = 0; t < SRV_QE_NTYPES; t++)
        srv_sfree(e->name[t]);
}

void srv_quota_set_unref(srv_quota_set *q)
{
    if (!q)
        return;
    int r = __atomic_sub_fetch(&q->refs, 1, __ATOMIC_ACQ_REL);
    SRV_ASSERT(r >= 0, "quota set %p unreferenced once too often (refs now %d)", (void *)q, r);
    if (r)
        return;
    for (int i = 0; i < q->n; i++)
        entry_free(&q->e[i]);
    free(q->e);
    free(q);
}

static int entry_is(const srv_quota_entry *e, const srv_quota_entity *ent)
{
    if (e->present != ent->present)
        return 0;
    for (int t = 0; t < SRV_QE_NTYPES; t++)
        if ((ent->present & (1u << t)) && !srv_seq(ent->name[t], e->name[t]))
            return 0;
    return 1;
}

const srv_quota_entry *srv_quota_find(const srv_quota_set *q, const srv_quota_entity *ent)
{
    for (int i = 0; q && i < q->n; i++)
        if (entry_is(&q->e[i], ent))
            return &q->e[i];
    return NULL;
}

/* ---- validation (Kafka's words) ------------------------------------------ */

void srv_quota_duplicate_text(const srv_quota_entity *ent, char *msg, size_t msglen)
{
    int n = snprintf(msg, msglen, "Ignoring duplicate entity ClientQuotaEntity(entries={");
    int first = 1;
    /* Java's HashMap order of the types: ip, client-id, user. */
    static const int order[SRV_QE_NTYPES] = {SRV_QE_IP, SRV_QE_CLIENT, SRV_QE_USER};
    for (int o = 0; o < SRV_QE_NTYPES && n >= 0 && (size_t)n < msglen; o++) {
        int t = order[o];
        if (!(ent->present & (1u << t)))
            continue;
        kp_str nm = ent->name[t];
        n += snprintf(msg + n, msglen - (size_t)n, "%s%s=%.*s", first ? "" : ", ", type_names[t],
                      nm.len < 0 ? 4 : (int)nm.len, nm.len < 0 ? "null" : nm.p);
        first = 0;
    }
    if (n >= 0 && (size_t)n < msglen)
        snprintf(msg + n, msglen - (size_t)n, "})");
}

int srv_quota_entity_same(const srv_quota_entity *a, const srv_quota_entity *b)
{
    if (a->present != b->present)
        return 0;
    for (int t = 0; t < SRV_QE_NTYPES; t++)
        if ((a->present & (1u << t)) && !srv_str_same(a->name[t], b->name[t]))
            return 0;
    return 1;
}

static int16_t fail(char *msg, size_t msglen, const char *text)
{
    snprintf(msg, msglen, "%s", text);
    return KP_ERR_INVALID_REQUEST;
}

int16_t srv_quota_validate(const srv_quota_entity *ent, const srv_quota_op *ops, int nops, char *msg,
                           size_t msglen)
{
    if (!ent->present)
        return fail(msg, msglen, "Invalid empty client quota entity");
    int ip = (ent->present & (1u << SRV_QE_IP)) != 0;
    if (ip && ent->present != (1u << SRV_QE_IP))
        /* sic: Kafka's message lacks the space */
        return fail(msg, msglen,
                    "Invalid quota entity combination, IP entity shouldnot be combined with User or "
                    "ClientId");
    if ((ent->present & (1u << SRV_QE_USER)) && ent->name[SRV_QE_USER].len == 0)
        return fail(msg, msglen, "Empty user not supported");
    unsigned seen = 0;
    for (int i = 0; i < nops; i++) {
        int k = key_index(ops[i].key);
        int ok = k >= 0 && (ip ? k == SRV_QK_CONNECTION_CREATION_RATE : k != SRV_QK_CONNECTION_CREATION_RATE);
        if (!ok) {
            snprintf(msg, msglen, "Invalid configuration key %.*s",
                     ops[i].key.len < 0 ? 0 : (int)ops[i].key.len, ops[i].key.p ? ops[i].key.p : "");
            return KP_ERR_INVALID_REQUEST;
        }
        if (seen & (1u << k)) {
            /* Kafka folds the ops into a map and reports the clash as it
             * reports an entity named twice. */
            srv_quota_duplicate_text(ent, msg, msglen);
            return KP_ERR_INVALID_REQUEST;
        }
        seen |= 1u << k;
        if (ops[i].remove)
            continue;
        double v = ops[i].value;
        if (!(v > 0.0)) {
            snprintf(msg, msglen, "Quota %s must be greater than 0", key_names[k]);
            return KP_ERR_INVALID_REQUEST;
        }
        if (k == SRV_QK_PRODUCER_BYTE_RATE || k == SRV_QK_CONSUMER_BYTE_RATE) { /* LONG */
            if (v > 9223372036854775807.0) {
                snprintf(msg, msglen, "Proposed value for %s is too large for a LONG.", key_names[k]);
                return KP_ERR_INVALID_REQUEST;
            }
            if (v != (double)(int64_t)v) {
                snprintf(msg, msglen, "%s cannot be a fractional value.", key_names[k]);
                return KP_ERR_INVALID_REQUEST;
            }
        } else if (k == SRV_QK_CONNECTION_CREATION_RATE) { /* INT */
            if (v > 2147483647.0) {
                snprintf(msg, msglen, "Proposed value for %s is too large for an INT.", key_names[k]);
                return KP_ERR_INVALID_REQUEST;
            }
            if (v != (double)(int64_t)v) {
                snprintf(msg, msglen, "%s cannot be a fractional value.", key_names[k]);
                return KP_ERR_INVALID_REQUEST;
            }
        }
    }
    return 0;
}

static void set_keys_used(srv_quota_set *q)
{
    q->keys_used = 0;
    for (int i = 0; i < q->n; i++)
        q->keys_used |= q->e[i].has;
}

/* A deep copy of q with room for one more entry; `skip` (an index or -1)
 * left out. */
static srv_quota_set *copy_set(const srv_quota_set *q, int skip)
{
    srv_quota_set *nq = srv_quota_set_new();
    if (!nq)
        return NULL;
    int n = q ? q->n : 0;
    nq->e = calloc((size_t)n + 1, sizeof(*nq->e));
    if (!nq->e) {
        free(nq);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (i == skip)
            continue;
        srv_quota_entry *d = &nq->e[nq->n++];
        *d = q->e[i];
        for (int t = 0; t < SRV_QE_NTYPES; t++) {
            d->name[t] = q->e[i].name[t] ? srv_sdupc(q->e[i].name[t]) : NULL;
            if (q->e[i].name[t] && !d->name[t]) {
                srv_quota_set_unref(nq);
                return NULL;
            }
        }
    }
    return nq;
}

/* A new set where ent's values become `has` / `v` (has 0: removed). */
static srv_quota_set *set_entity(const srv_quota_set *q, const srv_quota_entity *ent, unsigned has,
                                 const double *v)
{
    int at = -1;
    for (int i = 0; q && i < q->n; i++)
        if (entry_is(&q->e[i], ent))
            at = i;
    srv_quota_set *nq = copy_set(q, at);
    if (!nq || !has) {
        if (nq)
            set_keys_used(nq);
        return nq;
    }
    srv_quota_entry *e = &nq->e[nq->n];
    memset(e, 0, sizeof(*e));
    e->present = ent->present;
    for (int t = 0; t < SRV_QE_NTYPES; t++) {
        if (!(ent->present & (1u << t)) || ent->name[t].len < 0)
            continue;
        e->name[t] = srv_sdup(ent->name[t]);
        if (!e->name[t]) {
            entry_free(e);
            srv_quota_set_unref(nq);
            return NULL;
        }
    }
    e->has = has;
    memcpy(e->v, v, sizeof(e->v));
    nq->n++;
    set_keys_used(nq);
    return nq;
}

srv_quota_set *srv_quota_apply(const srv_quota_set *q, const srv_quota_entity *ent, const srv_quota_op *ops,
                               int nops)
{
    const srv_quota_entry *old = srv_quota_find(q, ent);
    unsigned has = old ? old->has : 0;
    double v[SRV_QK_N] = {0};
    if (old)
        memcpy(v, old->v, sizeof(v));
    for (int i = 0; i < nops; i++) {
        int k = key_index(ops[i].key);
        SRV_ASSERT(k >= 0, "quota op with key '%.*s' applied unvalidated",
                   (int)(ops[i].key.len < 0 ? 0 : ops[i].key.len), ops[i].key.p ? ops[i].key.p : "");
        if (ops[i].remove) {
            has &= ~(1u << k);
            v[k] = 0;
        } else {
            has |= 1u << k;
            v[k] = ops[i].value;
        }
    }
    return set_entity(q, ent, has, v);
}

/* ---- records --------------------------------------------------------------- */

#define QUOTA_RECORD_VERSION 0

int srv_quota_record_key(kp_writer *w, const srv_quota_entity *ent)
{
    kp_write_i8(w, 'Q');
    for (int t = 0; t < SRV_QE_NTYPES; t++) {
        if (!(ent->present & (1u << t))) {
            kp_write_i8(w, 0);
        } else if (ent->name[t].len < 0) {
            kp_write_i8(w, 1);
        } else {
            kp_write_i8(w, 2);
            kp_write_string(w, ent->name[t]);
        }
    }
    return w->err;
}

int srv_quota_record_value(kp_writer *w, const srv_quota_entry *e)
{
    kp_write_i8(w, QUOTA_RECORD_VERSION);
    int n = 0;
    for (int k = 0; k < SRV_QK_N; k++)
        n += (e->has >> k) & 1;
    kp_write_i32(w, n);
    for (int k = 0; k < SRV_QK_N; k++)
        if (e->has & (1u << k)) {
            kp_write_string(w, kp_str_c(key_names[k]));
            kp_write_f64(w, e->v[k]);
        }
    return w->err;
}

srv_quota_set *srv_quota_replay(const srv_quota_set *q, kp_bytes key, kp_bytes value, int *bad)
{
    *bad = 1;
    kp_reader r;
    kp_reader_init(&r, key.p, key.len < 0 ? 0 : (size_t)key.len);
    int8_t tag;
    srv_quota_entity ent;
    memset(&ent, 0, sizeof(ent));
    if (kp_read_i8(&r, &tag) || tag != 'Q')
        return NULL;
    for (int t = 0; t < SRV_QE_NTYPES; t++) {
        int8_t st;
        if (kp_read_i8(&r, &st))
            return NULL;
        if (st == 0)
            continue;
        ent.present |= 1u << t;
        ent.name[t] = KP_STR_NULL;
        if (st == 2 && (kp_read_string(&r, &ent.name[t]) || ent.name[t].len < 0))
            return NULL;
        if (st != 1 && st != 2)
            return NULL;
    }
    if (!ent.present || kp_reader_left(&r))
        return NULL;
    unsigned has = 0;
    double v[SRV_QK_N] = {0};
    if (value.len >= 0) {
        kp_reader_init(&r, value.p, (size_t)value.len);
        int8_t ver;
        int32_t n;
        if (kp_read_i8(&r, &ver) || ver != QUOTA_RECORD_VERSION || kp_read_i32(&r, &n) || n < 0 ||
            n > SRV_QK_N)
            return NULL;
        for (int32_t i = 0; i < n; i++) {
            kp_str k;
            double d;
            if (kp_read_string(&r, &k) || kp_read_f64(&r, &d))
                return NULL;
            int ki = key_index(k);
            if (ki < 0)
                continue; /* a key of a later version: not ours to enforce */
            has |= 1u << ki;
            v[ki] = d;
        }
    }
    *bad = 0;
    return set_entity(q, &ent, has, v);
}

/* ---- DescribeClientQuotas ---------------------------------------------------- */

int16_t srv_quota_filter_parse(const kp_str *types, const int8_t *match, const kp_str *names, int n,
                               srv_quota_filter *out, char *msg, size_t msglen)
{
    unsigned seen = 0;
    for (int i = 0; i < n; i++) {
        int t = type_index(types[i]);
        if (t < 0) {
            snprintf(msg, msglen, "Unsupported entity type %.*s", types[i].len < 0 ? 0 : (int)types[i].len,
                     types[i].p ? types[i].p : "");
            return KP_ERR_UNSUPPORTED_VERSION;
        }
        if (seen & (1u << t)) {
            snprintf(msg, msglen, "Entity type %s cannot appear more than once in the filter.",
                     type_names[t]);
            return KP_ERR_INVALID_REQUEST;
        }
        seen |= 1u << t;
        switch (match[i]) {
        case SRV_QMATCH_EXACT:
            if (names[i].len < 0)
                return fail(msg, msglen, "Request specified MATCH_TYPE_EXACT, but set match string to null.");
            break;
        case SRV_QMATCH_DEFAULT:
            if (names[i].len >= 0)
                return fail(msg, msglen,
                            "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.");
            break;
        case SRV_QMATCH_ANY:
            if (names[i].len >= 0)
                return fail(msg, msglen,
                            "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.");
            break;
        default:
            snprintf(msg, msglen, "Unknown match type %d", match[i]);
            return KP_ERR_INVALID_REQUEST;
        }
        out[i].type = t;
        out[i].match = match[i];
        out[i].name = names[i];
    }
    return 0;
}

int srv_quota_filter_match(const srv_quota_entry *e, const srv_quota_filter *f, int n, int strict)
{
    unsigned named = 0;
    for (int i = 0; i < n; i++) {
        int t = f[i].type;
        named |= 1u << t;
        if (!(e->present & (1u << t)))
            return 0;
        if (f[i].match == SRV_QMATCH_EXACT && !srv_seq(f[i].name, e->name[t]))
            return 0;
        if (f[i].match == SRV_QMATCH_DEFAULT && e->name[t])
            return 0;
    }
    return !strict || e->present == named;
}

/* ---- precedence -------------------------------------------------------------- */

int srv_quota_lookup(const srv_quota_set *q, int key, kp_str user, kp_str client, double *bound,
                     int *tag_user, int *tag_client)
{
    if (!q || !(q->keys_used & (1u << key)))
        return 0;
    /* Kafka's 8 levels: {user or default user or none} x {client id or
     * default client or none}, most specific first, and the metric tags each
     * level shares its measured rate under. */
    static const struct {
        int user;   /* 0 none, 1 named, 2 default */
        int client; /* likewise */
        int tag_user, tag_client;
    } levels[8] = {{1, 1, 1, 1}, {1, 2, 1, 1}, {1, 0, 1, 0}, {2, 1, 1, 1},
                   {2, 2, 1, 1}, {2, 0, 1, 0}, {0, 1, 0, 1}, {0, 2, 0, 1}};
    for (int l = 0; l < 8; l++) {
        srv_quota_entity ent;
        memset(&ent, 0, sizeof(ent));
        if (levels[l].user) {
            ent.present |= 1u << SRV_QE_USER;
            ent.name[SRV_QE_USER] = levels[l].user == 1 ? user : KP_STR_NULL;
        }
        if (levels[l].client) {
            ent.present |= 1u << SRV_QE_CLIENT;
            ent.name[SRV_QE_CLIENT] = levels[l].client == 1 ? client : KP_STR_NULL;
        }
        /* A named level with no name to match (null client id) is skipped. */
        if ((levels[l].user == 1 && user.len < 0) || (levels[l].client == 1 && client.len < 0))
            continue;
        const srv_quota_entry *e = srv_quota_find(q, &ent);
        if (e && (e->has & (1u << key))) {
            *bound = e->v[key];
            *tag_user = levels[l].tag_user;
            *tag_client = levels[l].tag_client;
            return 1;
        }
    }
    return 0;
}

int srv_quota_lookup_ip(const srv_quota_set *q, const char *ip, double *bound)
{
    if (!q || !(q->keys_used & (1u << SRV_QK_CONNECTION_CREATION_RATE)))
        return 0;
    for (int named = 1; named >= 0; named--) {
        srv_quota_entity ent;
        memset(&ent, 0, sizeof(ent));
        ent.present = 1u << SRV_QE_IP;
        ent.name[SRV_QE_IP] = named ? kp_str_c(ip) : KP_STR_NULL;
        const srv_quota_entry *e = srv_quota_find(q, &ent);
        if (e && (e->has & (1u << SRV_QK_CONNECTION_CREATION_RATE))) {
            *bound = e->v[SRV_QK_CONNECTION_CREATION_RATE];
            return 1;
        }
    }
    return 0;
}

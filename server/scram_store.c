/*
 * scram_store.c — SCRAM credential sets, their metadata log records and
 * AlterUserScramCredentials' rules.
 *
 * Owns: an array of (user, mechanism, credential) sorted by user bytes then
 * mechanism, shared read-only by every shard once built; the record format
 * (key 'S' + mechanism byte + user bytes; value: version, iterations, salt,
 * StoredKey, ServerKey; a null value deletes). Must not: change a finished
 * set, or log (the controller logs; a credential never appears in a line).
 */
#include "scram_store.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define RECORD_VERSION 0

typedef struct entry {
    char *user;
    size_t len;
    int mech;
    srv_scram_cred cred;
} entry;

struct srv_scram_set {
    int refs; /* atomic */
    int n;
    entry *e;
    int nusers;
    int *user_start; /* index into e of each distinct user's first entry */
};

struct srv_scram_edit {
    int n, cap;
    entry *e;
};

static int cmp_key(const char *a, size_t al, int am, const char *b, size_t bl, int bm)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    if (al != bl)
        return al < bl ? -1 : 1;
    return am - bm;
}

/* First index whose key is >= (user, mech). */
static int lower_bound(const entry *e, int n, const char *user, size_t len, int mech)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cmp_key(e[mid].user, e[mid].len, e[mid].mech, user, len, mech) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

srv_scram_set *srv_scram_set_ref(srv_scram_set *s)
{
    if (s)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

static void free_entries(entry *e, int n)
{
    for (int i = 0; i < n; i++) {
        free(e[i].user);
        OPENSSL_cleanse(&e[i].cred, sizeof(e[i].cred));
    }
    free(e);
}

void srv_scram_set_unref(srv_scram_set *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    free_entries(s->e, s->n);
    free(s->user_start);
    free(s);
}

const srv_scram_cred *srv_scram_set_find(const srv_scram_set *s, const char *user, size_t len, int mech)
{
    if (!s)
        return NULL;
    int i = lower_bound(s->e, s->n, user, len, mech);
    if (i < s->n && cmp_key(s->e[i].user, s->e[i].len, s->e[i].mech, user, len, mech) == 0)
        return &s->e[i].cred;
    return NULL;
}

const srv_scram_cred *srv_scram_set_lookup(void *set, const char *user, size_t len, int mech)
{
    return srv_scram_set_find(set, user, len, mech);
}

int srv_scram_set_nusers(const srv_scram_set *s)
{
    return s ? s->nusers : 0;
}

const char *srv_scram_set_user(const srv_scram_set *s, int i, size_t *len, int32_t *iters)
{
    int first = s->user_start[i], end = i + 1 < s->nusers ? s->user_start[i + 1] : s->n;
    for (int m = 0; m <= SRV_SCRAM_SHA512; m++)
        iters[m] = 0;
    for (int k = first; k < end; k++)
        if (s->e[k].mech >= 0 && s->e[k].mech <= SRV_SCRAM_SHA512)
            iters[s->e[k].mech] = s->e[k].cred.iterations;
    *len = s->e[first].len;
    return s->e[first].user;
}

int srv_scram_set_user_index(const srv_scram_set *s, const char *user, size_t len)
{
    if (!s)
        return -1;
    int i = lower_bound(s->e, s->n, user, len, -1);
    if (i >= s->n || s->e[i].len != len || (len && memcmp(s->e[i].user, user, len) != 0))
        return -1;
    int lo = 0, hi = s->nusers - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->user_start[mid] == i)
            return mid;
        if (s->user_start[mid] < i)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* ---- editing ------------------------------------------------------------------ */

static int copy_entry(entry *dst, const char *user, size_t len, int mech, const srv_scram_cred *c)
{
    dst->user = malloc(len + 1);
    if (!dst->user)
        return -1;
    if (len)
        memcpy(dst->user, user, len);
    dst->user[len] = '\0';
    dst->len = len;
    dst->mech = mech;
    dst->cred = *c;
    return 0;
}

srv_scram_edit *srv_scram_edit_new(const srv_scram_set *base)
{
    srv_scram_edit *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    int n = base ? base->n : 0;
    e->cap = n + 8;
    e->e = calloc((size_t)e->cap, sizeof(entry));
    if (!e->e) {
        free(e);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const entry *b = &base->e[i];
        if (copy_entry(&e->e[i], b->user, b->len, b->mech, &b->cred) != 0) {
            srv_scram_edit_free(e);
            return NULL;
        }
        e->n++;
    }
    return e;
}

void srv_scram_edit_free(srv_scram_edit *e)
{
    if (!e)
        return;
    free_entries(e->e, e->n);
    free(e);
}

int srv_scram_edit_put(srv_scram_edit *e, const char *user, size_t len, const srv_scram_cred *c)
{
    int i = lower_bound(e->e, e->n, user, len, c->mech);
    if (i < e->n && cmp_key(e->e[i].user, e->e[i].len, e->e[i].mech, user, len, c->mech) == 0) {
        e->e[i].cred = *c;
        return 0;
    }
    if (e->n == e->cap) {
        int cap = e->cap * 2;
        entry *ne = realloc(e->e, (size_t)cap * sizeof(entry));
        if (!ne)
            return -1;
        e->e = ne;
        e->cap = cap;
    }
    entry tmp;
    if (copy_entry(&tmp, user, len, c->mech, c) != 0)
        return -1;
    memmove(&e->e[i + 1], &e->e[i], (size_t)(e->n - i) * sizeof(entry));
    e->e[i] = tmp;
    e->n++;
    return 0;
}

void srv_scram_edit_del(srv_scram_edit *e, const char *user, size_t len, int mech)
{
    int i = lower_bound(e->e, e->n, user, len, mech);
    if (i >= e->n || cmp_key(e->e[i].user, e->e[i].len, e->e[i].mech, user, len, mech) != 0)
        return;
    free(e->e[i].user);
    OPENSSL_cleanse(&e->e[i].cred, sizeof(e->e[i].cred));
    memmove(&e->e[i], &e->e[i + 1], (size_t)(e->n - i - 1) * sizeof(entry));
    e->n--;
}

int srv_scram_edit_finish(srv_scram_edit *e, srv_scram_set **out)
{
    *out = NULL;
    if (e->n == 0) {
        srv_scram_edit_free(e);
        return 0;
    }
    srv_scram_set *s = calloc(1, sizeof(*s));
    int *starts = calloc((size_t)e->n, sizeof(int));
    if (!s || !starts) {
        free(s);
        free(starts);
        srv_scram_edit_free(e);
        return -1;
    }
    s->refs = 1;
    s->n = e->n;
    s->e = e->e;
    s->user_start = starts;
    for (int i = 0; i < s->n; i++)
        if (i == 0 || s->e[i].len != s->e[i - 1].len ||
            memcmp(s->e[i].user, s->e[i - 1].user, s->e[i].len) != 0)
            starts[s->nusers++] = i;
    free(e);
    *out = s;
    return 0;
}

/* ---- records ------------------------------------------------------------------ */

int srv_scram_record_add(kp_batch_builder *bb, int64_t now, const char *user, size_t len, int mech,
                         const srv_scram_cred *c)
{
    uint8_t *key = malloc(len + 2);
    if (!key)
        return KP_E_NOMEM;
    key[0] = SRV_SCRAM_RECORD_KEY;
    key[1] = (uint8_t)mech;
    if (len)
        memcpy(key + 2, user, len);
    int rc;
    if (!c) {
        rc = kp_batch_builder_add(bb, now, (kp_bytes){key, (int32_t)(len + 2)}, KP_BYTES_NULL, NULL, 0);
    } else {
        size_t kl = srv_scram_key_len(mech);
        kp_writer w;
        kp_writer_init(&w, 64 + c->salt_len + 2 * kl);
        kp_write_i8(&w, RECORD_VERSION);
        kp_write_i32(&w, c->iterations);
        kp_write_bytes(&w, (kp_bytes){c->salt_len ? c->salt : (const uint8_t *)"", (int32_t)c->salt_len});
        kp_write_bytes(&w, (kp_bytes){c->stored_key, (int32_t)kl});
        kp_write_bytes(&w, (kp_bytes){c->server_key, (int32_t)kl});
        rc = w.err ? w.err
                   : kp_batch_builder_add(bb, now, (kp_bytes){key, (int32_t)(len + 2)},
                                          (kp_bytes){w.buf, (int32_t)w.len}, NULL, 0);
        OPENSSL_cleanse(w.buf, w.len);
        kp_writer_free(&w);
    }
    free(key);
    return rc;
}

int srv_scram_record_apply(srv_scram_edit *e, const uint8_t *key, size_t klen, const uint8_t *val,
                           int32_t vlen)
{
    if (klen < 2 || key[0] != SRV_SCRAM_RECORD_KEY)
        return KP_E_INVALID;
    int mech = key[1];
    size_t kl = srv_scram_key_len(mech);
    if (!kl)
        return KP_E_INVALID;
    const char *user = (const char *)key + 2;
    size_t ulen = klen - 2;
    if (vlen < 0) {
        srv_scram_edit_del(e, user, ulen, mech);
        return 0;
    }
    kp_reader r;
    kp_reader_init(&r, val, (size_t)vlen);
    int8_t ver = -1;
    srv_scram_cred c;
    memset(&c, 0, sizeof(c));
    kp_bytes salt = KP_BYTES_NULL, sk = KP_BYTES_NULL, svk = KP_BYTES_NULL;
    if (kp_read_i8(&r, &ver) || ver != RECORD_VERSION || kp_read_i32(&r, &c.iterations) ||
        kp_read_bytes(&r, &salt) || kp_read_bytes(&r, &sk) || kp_read_bytes(&r, &svk) || salt.len < 0 ||
        (size_t)salt.len > SRV_SCRAM_SALT_MAX || sk.len != (int32_t)kl || svk.len != (int32_t)kl)
        return KP_E_INVALID;
    c.mech = mech;
    c.salt_len = (size_t)salt.len;
    if (salt.len)
        memcpy(c.salt, salt.p, (size_t)salt.len);
    memcpy(c.stored_key, sk.p, kl);
    memcpy(c.server_key, svk.p, kl);
    int rc = srv_scram_edit_put(e, user, ulen, &c) ? KP_E_NOMEM : 0;
    OPENSSL_cleanse(&c, sizeof(c));
    return rc;
}

/* ---- AlterUserScramCredentials ------------------------------------------------ */

static const char MSG_EMPTY[] = "Username must not be empty";
static const char MSG_MECH[] = "Unknown SCRAM mechanism";
static const char MSG_FEW[] = "Too few iterations";
static const char MSG_MANY[] = "Too many iterations";
static const char MSG_TWICE[] = "A user credential cannot be altered twice in the same request";
static const char MSG_ABSENT[] = "Attempt to delete a user credential that does not exist";
static const char MSG_SALT[] = "Salt is longer than 256 bytes";

/* Kafka's per-change checks, against the credentials before the request. */
static void validate(const srv_scram_set *base, srv_scram_change *c)
{
    c->error = 0;
    c->message = NULL;
    if (c->user.len <= 0) {
        c->error = KP_ERR_UNACCEPTABLE_CREDENTIAL;
        c->message = MSG_EMPTY;
    } else if (!srv_scram_key_len(c->mech)) {
        c->error = KP_ERR_UNSUPPORTED_SASL_MECHANISM;
        c->message = MSG_MECH;
    } else if (c->is_delete) {
        if (!srv_scram_set_find(base, c->user.p, (size_t)c->user.len, c->mech)) {
            c->error = KP_ERR_RESOURCE_NOT_FOUND;
            c->message = MSG_ABSENT;
        }
    } else if (c->iterations < SRV_SCRAM_MIN_ITERATIONS) {
        c->error = KP_ERR_UNACCEPTABLE_CREDENTIAL;
        c->message = MSG_FEW;
    } else if (c->iterations > SRV_SCRAM_MAX_ITERATIONS) {
        c->error = KP_ERR_UNACCEPTABLE_CREDENTIAL;
        c->message = MSG_MANY;
    } else if (c->salt.len > SRV_SCRAM_SALT_MAX) {
        c->error = KP_ERR_UNACCEPTABLE_CREDENTIAL; /* ours: Kafka has no bound */
        c->message = MSG_SALT;
    } else if (c->salted_password.len <= 0) {
        c->error = KP_ERR_UNKNOWN_SERVER_ERROR; /* Kafka fails deriving keys from it, with no message */
    }
}

static int cmp_user(const srv_scram_change *x, const srv_scram_change *y)
{
    size_t xl = x->user.len > 0 ? (size_t)x->user.len : 0, yl = y->user.len > 0 ? (size_t)y->user.len : 0;
    size_t n = xl < yl ? xl : yl;
    int c = n ? memcmp(x->user.p, y->user.p, n) : 0;
    if (c)
        return c;
    return xl == yl ? 0 : xl < yl ? -1 : 1;
}

/* qsort has no context argument: the changes being sorted, per thread. */
static __thread const srv_scram_change *sorting;

static int cmp_change(const void *a, const void *b)
{
    const srv_scram_change *x = &sorting[*(const int *)a], *y = &sorting[*(const int *)b];
    int c = cmp_user(x, y);
    if (c)
        return c;
    /* Kafka looks at a user's deletions first, then its upsertions. */
    if (x->is_delete != y->is_delete)
        return x->is_delete ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

int srv_scram_alter(const srv_scram_set *base, srv_scram_change *ch, int n, kp_batch_builder *bb, int64_t now,
                    srv_scram_set **out)
{
    *out = NULL;
    int *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    srv_scram_edit *e = srv_scram_edit_new(base);
    if (!idx || !e)
        goto nomem;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    sorting = ch;
    qsort(idx, (size_t)n, sizeof(int), cmp_change);
    int records = 0;
    for (int g = 0; g < n;) {
        int end = g + 1;
        while (end < n && cmp_user(&ch[idx[g]], &ch[idx[end]]) == 0)
            end++;
        /* The first change decides unless it is valid and others follow:
         * then the user was altered twice. */
        srv_scram_change *first = &ch[idx[g]];
        validate(base, first);
        if (first->error == 0 && end - g > 1) {
            first->error = KP_ERR_DUPLICATE_RESOURCE;
            first->message = MSG_TWICE;
        }
        if (first->error == 0 && bb) {
            const char *user = first->user.p;
            size_t len = (size_t)first->user.len;
            srv_scram_cred c;
            if (first->is_delete) {
                srv_scram_edit_del(e, user, len, first->mech);
                if (srv_scram_record_add(bb, now, user, len, first->mech, NULL) != 0)
                    goto nomem;
            } else {
                if (srv_scram_cred_from_salted(
                        first->mech, first->salted_password.p, (size_t)first->salted_password.len,
                        first->salt.len > 0 ? first->salt.p : NULL,
                        first->salt.len > 0 ? (size_t)first->salt.len : 0, first->iterations, &c) != 0)
                    goto nomem;
                int rc = srv_scram_edit_put(e, user, len, &c) ||
                         srv_scram_record_add(bb, now, user, len, first->mech, &c);
                OPENSSL_cleanse(&c, sizeof(c));
                if (rc)
                    goto nomem;
            }
            records++;
        }
        for (int k = g + 1; k < end; k++) {
            ch[idx[k]].error = first->error;
            ch[idx[k]].message = first->message;
        }
        g = end;
    }
    free(idx);
    idx = NULL;
    if (records == 0) {
        srv_scram_edit_free(e);
        *out = srv_scram_set_ref((srv_scram_set *)base);
        return 0;
    }
    if (srv_scram_edit_finish(e, out) != 0) {
        e = NULL;
        goto nomem;
    }
    return records;
nomem:
    free(idx);
    srv_scram_edit_free(e);
    for (int i = 0; i < n; i++) {
        ch[i].error = KP_ERR_UNKNOWN_SERVER_ERROR;
        ch[i].message = "out of memory";
    }
    return -1;
}

/*
 * dyncfg.c — dynamic broker configs (see dyncfg.h): the immutable set of
 * (resource, key, value), Kafka's per-broker over cluster-default
 * precedence, and the 'B' records of the metadata log.
 *
 * Owns: the set and its record codec. Must not: change a published set, or
 * know which keys are dynamic (configs.c decides, main.c applies them at
 * start).
 *
 * A set is a sorted array of pointers to shared, reference-counted entries:
 * a change copies the array (O(n) pointer copies, no string copies), a
 * lookup is a binary search, and the replay of the metadata log collects
 * records in an edit and sorts them once (group configs can be many: up to
 * SRV_GROUPCFG_MAX_ENTRIES).
 */
#include "dyncfg.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errors.h"
#include "srv_assert.h"
#include "sstr.h"

#define DYNCFG_RECORD_VERSION 0

/* The strings of one (resource, key, value) in one block, shared by every
 * set that holds it: a change copies the array of pointers, not the
 * strings. */
typedef struct dyncfg_entry {
    int refs; /* atomic */
    char s[];
} dyncfg_entry;

static long g_entries_made, g_sets_made; /* atomic; srv_dyncfg_made */

void srv_dyncfg_made(long *entries, long *sets)
{
    *entries = __atomic_load_n(&g_entries_made, __ATOMIC_RELAXED);
    *sets = __atomic_load_n(&g_sets_made, __ATOMIC_RELAXED);
}

static dyncfg_entry *entry_of(const srv_dyncfg_kv *kv)
{
    return (dyncfg_entry *)(void *)(kv->resource - offsetof(dyncfg_entry, s));
}

/* A new entry (value NULL: a tombstone, only inside an edit). */
static int entry_new(srv_dyncfg_kv *kv, const char *r, size_t rl, const char *k, size_t kl, const char *v,
                     size_t vl)
{
    dyncfg_entry *e = malloc(sizeof(*e) + rl + 1 + kl + 1 + (v ? vl + 1 : 0));
    if (!e)
        return KP_E_NOMEM;
    e->refs = 1;
    char *p = e->s;
    memcpy(p, r, rl);
    p[rl] = 0;
    kv->resource = p;
    p += rl + 1;
    memcpy(p, k, kl);
    p[kl] = 0;
    kv->key = p;
    p += kl + 1;
    kv->value = NULL;
    if (v) {
        memcpy(p, v, vl);
        p[vl] = 0;
        kv->value = p;
    }
    __atomic_add_fetch(&g_entries_made, 1, __ATOMIC_RELAXED);
    return 0;
}

static void entry_ref(const srv_dyncfg_kv *kv)
{
    __atomic_add_fetch(&entry_of(kv)->refs, 1, __ATOMIC_RELAXED);
}

static void entry_unref(const srv_dyncfg_kv *kv)
{
    dyncfg_entry *e = entry_of(kv);
    int r = __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
    SRV_ASSERT(r >= 0, "dynamic config entry %s/%s unreferenced once too often (refs now %d)", kv->resource,
               kv->key, r);
    if (r == 0)
        free(e);
}

srv_dyncfg *srv_dyncfg_ref(srv_dyncfg *d)
{
    if (d) {
        int r = __atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
        SRV_ASSERT(r > 1, "dynamic config set %p referenced after its last unref (refs now %d)", (void *)d,
                   r);
    }
    return d;
}

static void dyncfg_free(srv_dyncfg *d)
{
    for (int i = 0; i < d->n; i++)
        entry_unref(&d->kv[i]);
    free(d->kv);
    free(d);
}

void srv_dyncfg_unref(srv_dyncfg *d)
{
    if (!d)
        return;
    int r = __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL);
    SRV_ASSERT(r >= 0, "dynamic config set %p unreferenced once too often (refs now %d)", (void *)d, r);
    if (r == 0)
        dyncfg_free(d);
}

static int kv_cmp(const char *ra, const char *ka, const char *rb, const char *kb)
{
    int c = strcmp(ra, rb);
    return c ? c : strcmp(ka, kb);
}

/* The index of (resource, key) in d, or of where it would go; *found
 * says which. */
static int kv_find(const srv_dyncfg *d, const char *resource, const char *key, int *found)
{
    int lo = 0, hi = d ? d->n : 0;
    *found = 0;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = kv_cmp(d->kv[mid].resource, d->kv[mid].key, resource, key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const char *srv_dyncfg_get(const srv_dyncfg *d, const char *resource, const char *key)
{
    int found;
    int i = kv_find(d, resource, key, &found);
    return found ? d->kv[i].value : NULL;
}

const char *srv_dyncfg_effective(const srv_dyncfg *d, int32_t node_id, const char *key, int *source)
{
    char id[16];
    snprintf(id, sizeof(id), "%d", (int)node_id);
    const char *v = srv_dyncfg_get(d, id, key);
    int src = SRV_SOURCE_DYNAMIC_BROKER_CONFIG;
    if (!v) {
        v = srv_dyncfg_get(d, "", key);
        src = SRV_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG;
    }
    if (v && source)
        *source = src;
    return v;
}

int srv_dyncfg_with(const srv_dyncfg *d, const char *resource, const char *key, const char *value,
                    srv_dyncfg **out)
{
    *out = NULL;
    int n = d ? d->n : 0, found;
    int at = kv_find(d, resource, key, &found);
    int nn = n + (value && !found) - (!value && found);
    if (nn == 0)
        return 0;
    srv_dyncfg *nd = calloc(1, sizeof(*nd));
    if (!nd || !(nd->kv = malloc((size_t)nn * sizeof(*nd->kv)))) {
        free(nd);
        return KP_E_NOMEM;
    }
    srv_dyncfg_kv fresh;
    if (value && entry_new(&fresh, resource, strlen(resource), key, strlen(key), value, strlen(value))) {
        free(nd->kv);
        free(nd);
        return KP_E_NOMEM;
    }
    nd->refs = 1;
    __atomic_add_fetch(&g_sets_made, 1, __ATOMIC_RELAXED);
    int tail = at + found; /* the first old entry after the changed one */
    if (at > 0)
        memcpy(nd->kv, d->kv, (size_t)at * sizeof(*nd->kv));
    nd->n = at;
    if (value)
        nd->kv[nd->n++] = fresh;
    if (n > tail)
        memcpy(nd->kv + nd->n, d->kv + tail, (size_t)(n - tail) * sizeof(*nd->kv));
    nd->n += n - tail;
    SRV_ASSERT(nd->n == nn, "dynamic config set of %d entries built with %d", nn, nd->n);
    for (int i = 0; i < nd->n; i++)
        if (!value || i != at)
            entry_ref(&nd->kv[i]);
    *out = nd;
    return 0;
}

int srv_dyncfg_listener_key(char *out, size_t cap, const char *listener, size_t llen, const char *base)
{
    static const char pre[] = "listener.name.";
    size_t bl = strlen(base);
    if (sizeof(pre) - 1 + llen + 1 + bl + 1 > cap)
        return -1;
    memcpy(out, pre, sizeof(pre) - 1);
    for (size_t i = 0; i < llen; i++)
        out[sizeof(pre) - 1 + i] = (char)tolower((unsigned char)listener[i]);
    out[sizeof(pre) - 1 + llen] = '.';
    memcpy(out + sizeof(pre) + llen, base, bl + 1);
    return 0;
}

int srv_dyncfg_record_add(kp_batch_builder *bb, int64_t now, const char *resource, const char *key,
                          const char *value)
{
    return srv_dyncfg_record_add_tag(bb, SRV_DYNCFG_RECORD_KEY, now, resource, key, value);
}

int srv_dyncfg_record_add_tag(kp_batch_builder *bb, char tag, int64_t now, const char *resource,
                              const char *key, const char *value)
{
    kp_writer kw, vw;
    kp_writer_init(&kw, 64);
    kp_writer_init(&vw, 64);
    kp_write_i8(&kw, (int8_t)tag);
    kp_write_string(&kw, kp_str_c(resource));
    kp_write_string(&kw, kp_str_c(key));
    if (value) {
        kp_write_i8(&vw, DYNCFG_RECORD_VERSION);
        kp_write_string(&vw, kp_str_c(value));
    }
    int rc = kw.err ? kw.err : vw.err;
    if (rc == 0)
        rc = kp_batch_builder_add(bb, now, (kp_bytes){kw.buf, (int32_t)kw.len},
                                  value ? (kp_bytes){vw.buf, (int32_t)vw.len} : KP_BYTES_NULL, NULL, 0);
    kp_writer_free(&kw);
    kp_writer_free(&vw);
    return rc;
}

/* Strings of a record are C strings to the rest of the broker: a NUL inside
 * one would cut it, so such a record is not ours. */
static int plain(kp_str s)
{
    return s.len >= 0 && (s.len == 0 || !memchr(s.p, 0, (size_t)s.len));
}

int srv_dyncfg_record_apply(srv_dyncfg **d, const uint8_t *key, size_t klen, const uint8_t *val, int32_t vlen)
{
    return srv_dyncfg_record_apply_tag(d, SRV_DYNCFG_RECORD_KEY, key, klen, val, vlen);
}

/* The strings of a record with first key byte tag_want; *value is
 * KP_STR_NULL for a tombstone. 0 or KP_E_INVALID. */
static int record_decode(char tag_want, const uint8_t *key, size_t klen, const uint8_t *val, int32_t vlen,
                         kp_str *res, kp_str *name, kp_str *value)
{
    kp_reader r;
    kp_reader_init(&r, key, klen);
    int8_t tag = 0, ver = 0;
    *res = *name = *value = KP_STR_NULL;
    if (kp_read_i8(&r, &tag) || tag != (int8_t)tag_want || kp_read_string(&r, res) ||
        kp_read_string(&r, name) || kp_reader_left(&r) != 0 || !plain(*res) || !plain(*name) ||
        name->len == 0)
        return KP_E_INVALID;
    if (vlen >= 0) {
        kp_reader_init(&r, val, (size_t)vlen);
        if (kp_read_i8(&r, &ver) || ver != DYNCFG_RECORD_VERSION || kp_read_string(&r, value) ||
            kp_reader_left(&r) != 0 || !plain(*value))
            return KP_E_INVALID;
    }
    return 0;
}

int srv_dyncfg_record_apply_tag(srv_dyncfg **d, char tag_want, const uint8_t *key, size_t klen,
                                const uint8_t *val, int32_t vlen)
{
    kp_str res, name, value;
    if (record_decode(tag_want, key, klen, val, vlen, &res, &name, &value))
        return KP_E_INVALID;
    char *rs = srv_cdup(res), *ks = srv_cdup(name), *vs = vlen >= 0 ? srv_cdup(value) : NULL;
    int rc = KP_E_NOMEM;
    srv_dyncfg *nd = NULL;
    if (rs && ks && (vlen < 0 || vs))
        rc = srv_dyncfg_with(*d, rs, ks, vs, &nd);
    free(rs);
    free(ks);
    free(vs);
    if (rc)
        return rc;
    srv_dyncfg_unref(*d);
    *d = nd;
    return 0;
}

/* ---- replay: records in log order, one set at the end ---------------------------- */

struct srv_dyncfg_edit {
    srv_dyncfg_kv *kv; /* in log order; value NULL: a tombstone */
    int n, cap;
};

void srv_dyncfg_edit_free(srv_dyncfg_edit *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n; i++)
        entry_unref(&e->kv[i]);
    free(e->kv);
    free(e);
}

int srv_dyncfg_edit_apply_tag(srv_dyncfg_edit **ep, char tag_want, const uint8_t *key, size_t klen,
                              const uint8_t *val, int32_t vlen)
{
    kp_str res, name, value;
    if (record_decode(tag_want, key, klen, val, vlen, &res, &name, &value))
        return KP_E_INVALID;
    srv_dyncfg_edit *e = *ep;
    if (!e && !(e = *ep = calloc(1, sizeof(*e))))
        return KP_E_NOMEM;
    if (e->n == e->cap) {
        int cap = e->cap ? e->cap * 2 : 64;
        srv_dyncfg_kv *kv = realloc(e->kv, (size_t)cap * sizeof(*kv));
        if (!kv)
            return KP_E_NOMEM;
        e->kv = kv;
        e->cap = cap;
    }
    if (entry_new(&e->kv[e->n], (const char *)res.p, (size_t)res.len, (const char *)name.p, (size_t)name.len,
                  vlen >= 0 ? (value.len > 0 ? (const char *)value.p : "") : NULL,
                  vlen >= 0 ? (size_t)value.len : 0))
        return KP_E_NOMEM;
    e->n++;
    return 0;
}

/* An edit's entry and its place in the log: qsort is not stable, and the
 * last record of a pair wins. */
typedef struct edit_pos {
    srv_dyncfg_kv kv;
    int pos;
} edit_pos;

static int edit_cmp(const void *a, const void *b)
{
    const edit_pos *x = a, *y = b;
    int c = kv_cmp(x->kv.resource, x->kv.key, y->kv.resource, y->kv.key);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

int srv_dyncfg_edit_finish(srv_dyncfg_edit *e, srv_dyncfg **out)
{
    *out = NULL;
    if (!e)
        return 0;
    edit_pos *p = malloc((size_t)(e->n ? e->n : 1) * sizeof(*p));
    if (!p) {
        srv_dyncfg_edit_free(e);
        return KP_E_NOMEM;
    }
    for (int i = 0; i < e->n; i++)
        p[i] = (edit_pos){e->kv[i], i};
    qsort(p, (size_t)e->n, sizeof(*p), edit_cmp);
    int kept = 0;
    for (int i = 0; i < e->n; i++) {
        int last = i + 1 == e->n ||
                   kv_cmp(p[i].kv.resource, p[i].kv.key, p[i + 1].kv.resource, p[i + 1].kv.key) != 0;
        if (last && p[i].kv.value)
            e->kv[kept++] = p[i].kv; /* the edit's reference moves to the set */
        else
            entry_unref(&p[i].kv);
    }
    free(p);
    if (kept > 0) {
        srv_dyncfg *d = calloc(1, sizeof(*d));
        if (!d) {
            e->n = kept;
            srv_dyncfg_edit_free(e);
            return KP_E_NOMEM;
        }
        d->refs = 1;
        __atomic_add_fetch(&g_sets_made, 1, __ATOMIC_RELAXED);
        d->n = kept;
        d->kv = e->kv; /* sorted, and exactly what the set holds */
        e->kv = NULL;
        *out = d;
    } else {
        free(e->kv);
    }
    free(e);
    return 0;
}

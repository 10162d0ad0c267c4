/*
 * dyncfg.c — dynamic broker configs (see dyncfg.h): the immutable set of
 * (resource, key, value), Kafka's per-broker over cluster-default
 * precedence, and the 'B' records of the metadata log.
 *
 * Owns: the set and its record codec. Must not: change a published set, or
 * know which keys are dynamic (configs.c decides, main.c applies them at
 * start).
 *
 * A set is a small sorted array copied on every change: a broker has a
 * handful of dynamic keys, changed by an operator now and then.
 */
#include "dyncfg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errors.h"
#include "srv_assert.h"
#include "sstr.h"

#define DYNCFG_RECORD_VERSION 0

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
    for (int i = 0; i < d->n; i++) {
        free(d->kv[i].resource);
        free(d->kv[i].key);
        free(d->kv[i].value);
    }
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

const char *srv_dyncfg_get(const srv_dyncfg *d, const char *resource, const char *key)
{
    for (int i = 0; d && i < d->n; i++)
        if (kv_cmp(d->kv[i].resource, d->kv[i].key, resource, key) == 0)
            return d->kv[i].value;
    return NULL;
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
    int n = d ? d->n : 0;
    srv_dyncfg *nd = calloc(1, sizeof(*nd));
    if (!nd || !(nd->kv = calloc((size_t)n + 1, sizeof(*nd->kv)))) {
        free(nd);
        return KP_E_NOMEM;
    }
    nd->refs = 1;
    int placed = value == NULL;
    for (int i = 0; i <= n; i++) {
        const srv_dyncfg_kv *o = i < n ? &d->kv[i] : NULL;
        int c = o ? kv_cmp(o->resource, o->key, resource, key) : 1;
        if (!placed && c >= 0) {
            srv_dyncfg_kv *k = &nd->kv[nd->n++];
            k->resource = strdup(resource);
            k->key = strdup(key);
            k->value = strdup(value);
            placed = 1;
            if (!k->resource || !k->key || !k->value) {
                dyncfg_free(nd);
                return KP_E_NOMEM;
            }
        }
        if (!o || c == 0)
            continue; /* replaced or removed */
        srv_dyncfg_kv *k = &nd->kv[nd->n++];
        k->resource = strdup(o->resource);
        k->key = strdup(o->key);
        k->value = strdup(o->value);
        if (!k->resource || !k->key || !k->value) {
            dyncfg_free(nd);
            return KP_E_NOMEM;
        }
    }
    if (nd->n == 0) {
        dyncfg_free(nd);
        return 0;
    }
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

int srv_dyncfg_record_apply_tag(srv_dyncfg **d, char tag_want, const uint8_t *key, size_t klen,
                                const uint8_t *val, int32_t vlen)
{
    kp_reader r;
    kp_reader_init(&r, key, klen);
    int8_t tag = 0, ver = 0;
    kp_str res = KP_STR_NULL, name = KP_STR_NULL, value = KP_STR_NULL;
    if (kp_read_i8(&r, &tag) || tag != (int8_t)tag_want || kp_read_string(&r, &res) ||
        kp_read_string(&r, &name) || kp_reader_left(&r) != 0 || !plain(res) || !plain(name) || name.len == 0)
        return KP_E_INVALID;
    if (vlen >= 0) {
        kp_reader_init(&r, val, (size_t)vlen);
        if (kp_read_i8(&r, &ver) || ver != DYNCFG_RECORD_VERSION || kp_read_string(&r, &value) ||
            kp_reader_left(&r) != 0 || !plain(value))
            return KP_E_INVALID;
    }
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

/*
 * quorum_store.c — the compacted metadata log of the quorum's state machine
 * (quorum_store.h).
 *
 * Owns its records' memory. Must not: be shared between threads.
 */
#include "quorum_store.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "controller.h"
#include "errors.h"

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* Index of key, or -(insertion point) - 1. */
static int find(const srv_qstore *s, const uint8_t *key, size_t klen)
{
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = key_cmp(key, klen, s->r[mid].key, s->r[mid].klen);
        if (c == 0)
            return mid;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -lo - 1;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static int put(srv_qstore *s, const kp_record *rec)
{
    if (rec->key.len <= 0)
        return 0; /* keyless records have no state to keep */
    size_t klen = (size_t)rec->key.len;
    int i = find(s, rec->key.p, klen);
    if (rec->value.len < 0) {
        if (i >= 0) {
            free(s->r[i].key);
            free(s->r[i].val);
            memmove(&s->r[i], &s->r[i + 1], sizeof(*s->r) * (size_t)(s->n - i - 1));
            s->n--;
        }
        return 0;
    }
    uint8_t *val = dup_bytes(rec->value.p, (size_t)rec->value.len);
    if (!val)
        return KP_E_NOMEM;
    if (i >= 0) {
        free(s->r[i].val);
        s->r[i].val = val;
        s->r[i].vlen = (size_t)rec->value.len;
        s->r[i].ts = rec->timestamp;
        return 0;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        srv_qrec *nr = realloc(s->r, sizeof(*nr) * (size_t)cap);
        if (!nr) {
            free(val);
            return KP_E_NOMEM;
        }
        s->r = nr;
        s->cap = cap;
    }
    uint8_t *key = dup_bytes(rec->key.p, klen);
    if (!key) {
        free(val);
        return KP_E_NOMEM;
    }
    i = -i - 1;
    memmove(&s->r[i + 1], &s->r[i], sizeof(*s->r) * (size_t)(s->n - i));
    s->r[i] = (srv_qrec){key, klen, val, (size_t)rec->value.len, rec->timestamp};
    s->n++;
    return 0;
}

int srv_qstore_apply(srv_qstore *s, const uint8_t *batches, size_t len)
{
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, batches, len, 1);
    size_t seen = 0;
    int rc;
    while ((rc = kp_batch_iter_next(&it, &b)) == 1) {
        if (b.h.attributes & KP_ATTR_CODEC_MASK)
            return KP_E_UNSUPPORTED; /* the controller never compresses */
        kp_record_iter ri;
        kp_record rec;
        kp_record_iter_init(&ri, &b.h, b.records, b.records_size);
        int r;
        while ((r = kp_record_iter_next(&ri, &rec)) == 1)
            if ((rc = put(s, &rec)) != 0)
                return rc;
        if (r < 0)
            return KP_E_INVALID;
        seen++;
    }
    /* A committed entry is whole batches: anything else is corruption. */
    return rc < 0 || (len && !seen) ? KP_E_INVALID : 0;
}

int srv_qstore_encode(const srv_qstore *s, kp_writer *w)
{
    if (s->n == 0)
        return 0;
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int rc = 0;
    for (int i = 0; i < s->n && rc == 0; i++)
        rc = kp_batch_builder_add(&bb, s->r[i].ts, (kp_bytes){s->r[i].key, (int32_t)s->r[i].klen},
                                  (kp_bytes){s->r[i].val, (int32_t)s->r[i].vlen}, NULL, 0);
    if (rc == 0)
        rc = kp_batch_builder_finish(&bb, w);
    kp_batch_builder_free(&bb);
    return rc;
}

int srv_qstore_meta(const srv_qstore *s, uint64_t version, srv_meta **out)
{
    kp_writer w;
    kp_writer_init(&w, 4096);
    int rc = srv_qstore_encode(s, &w);
    if (rc == 0)
        rc = w.err;
    if (rc == 0)
        rc = srv_ctl_replay(w.buf, w.len, out);
    kp_writer_free(&w);
    if (rc == 0)
        (*out)->version = version;
    return rc;
}

void srv_qstore_free(srv_qstore *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->r[i].key);
        free(s->r[i].val);
    }
    free(s->r);
    memset(s, 0, sizeof(*s));
}

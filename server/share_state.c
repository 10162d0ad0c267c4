/*
 * share_state.c — encoding, decoding and replay of the __share_group_state
 * records (share_state.h).
 *
 * Owns the byte layout through the generated ShareSnapshot / ShareUpdate
 * codecs and the replay map's memory. Must not: keep memory beyond a call
 * except what it hands back, or accept a record with trailing bytes, a null
 * group id or unsorted / overlapping batches: replay applies only whole, sane
 * records.
 */
#include "share_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_messages.h"

#define VALUE_V 0

void srv_ss_image_clear(srv_ss_image *img)
{
    free(img->batches);
    memset(img, 0, sizeof(*img));
    img->delivery_complete = -1;
}

/* ---- the state partition ------------------------------------------------- */

static int32_t java_hash_utf8(int32_t h, const uint8_t *p, int32_t len)
{
    /* String.hashCode runs over UTF-16 code units; a malformed byte counts
     * as U+FFFD as Java's decoder substitutes it. */
    for (int32_t i = 0; i < len;) {
        uint32_t c = p[i];
        int32_t need = c < 0x80             ? 0
                       : (c & 0xE0) == 0xC0 ? 1
                       : (c & 0xF0) == 0xE0 ? 2
                       : (c & 0xF8) == 0xF0 ? 3
                                            : -1;
        int ok = need >= 0 && i + need < len;
        if (need > 0)
            c &= need == 1 ? 0x1F : need == 2 ? 0x0F : 0x07;
        for (int32_t k = 1; ok && k <= need; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                ok = 0;
            else
                c = (c << 6) | (p[i + k] & 0x3F);
        }
        if (!ok) {
            c = 0xFFFD;
            i++;
        } else {
            i += need + 1;
        }
        if (c >= 0x10000) {
            c -= 0x10000;
            h = (int32_t)((uint32_t)h * 31u + (0xD800 + (c >> 10)));
            h = (int32_t)((uint32_t)h * 31u + (0xDC00 + (c & 0x3FF)));
        } else {
            h = (int32_t)((uint32_t)h * 31u + c);
        }
    }
    return h;
}

/* Kafka's Uuid.toString: URL-safe base64 without padding (22 characters). */
static void uuid_b64(const kp_uuid *u, char out[23])
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)u->b[i] << 16;
        int n = 16 - i >= 3 ? 3 : 16 - i;
        if (n > 1)
            v |= (uint32_t)u->b[i + 1] << 8;
        if (n > 2)
            v |= u->b[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (n > 1)
            out[o++] = tab[(v >> 6) & 63];
        if (n > 2)
            out[o++] = tab[v & 63];
    }
    out[o] = 0;
}

int32_t srv_ss_partition_for(kp_str group_id, const kp_uuid *topic, int32_t partition, int32_t nparts)
{
    char tail[64];
    char b64[23];
    uuid_b64(topic, b64);
    int n = snprintf(tail, sizeof(tail), ":%s:%d", b64, (int)partition);
    int32_t h = java_hash_utf8(0, (const uint8_t *)group_id.p, group_id.len > 0 ? group_id.len : 0);
    h = java_hash_utf8(h, (const uint8_t *)tail, n);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return nparts > 0 ? a % nparts : 0;
}

/* ---- encoding ------------------------------------------------------------- */

int srv_ss_key(kp_writer *w, int type, kp_str group_id, const kp_uuid *topic, int32_t partition)
{
    int rc = kp_write_i16(w, (int16_t)type);
    if (rc)
        return rc;
    if (type == SRV_SS_SNAPSHOT) {
        kp_share_snapshot_key k;
        kp_share_snapshot_key_init(&k);
        k.group_id = group_id;
        k.topic_id = *topic;
        k.partition = partition;
        return kp_share_snapshot_key_encode(w, 0, &k);
    }
    kp_share_update_key k;
    kp_share_update_key_init(&k);
    k.group_id = group_id;
    k.topic_id = *topic;
    k.partition = partition;
    return kp_share_update_key_encode(w, 0, &k);
}

int srv_ss_value(kp_writer *w, int type, const srv_ss_image *img)
{
    size_t n = (size_t)(img->nbatches > 0 ? img->nbatches : 0);
    int rc = kp_write_i16(w, VALUE_V);
    if (rc)
        return rc;
    if (type == SRV_SS_SNAPSHOT) {
        kp_share_snapshot_value v;
        kp_share_snapshot_value_init(&v);
        kp_share_snapshot_value_state_batch *b = calloc(n ? n : 1, sizeof(*b));
        if (!b)
            return KP_E_NOMEM;
        for (size_t i = 0; i < n; i++)
            b[i] = (kp_share_snapshot_value_state_batch){img->batches[i].first, img->batches[i].last,
                                                         img->batches[i].state, img->batches[i].delivery};
        v.snapshot_epoch = img->snapshot_epoch;
        v.state_epoch = img->state_epoch;
        v.leader_epoch = img->leader_epoch;
        v.start_offset = img->start;
        v.delivery_complete_count = img->delivery_complete;
        v.create_timestamp = img->create_ts;
        v.write_timestamp = img->write_ts;
        v.state_batches = b;
        v.state_batches_count = (int32_t)n;
        rc = kp_share_snapshot_value_encode(w, VALUE_V, &v);
        free(b);
        return rc;
    }
    kp_share_update_value v;
    kp_share_update_value_init(&v);
    kp_share_update_value_state_batch *b = calloc(n ? n : 1, sizeof(*b));
    if (!b)
        return KP_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        b[i] = (kp_share_update_value_state_batch){img->batches[i].first, img->batches[i].last,
                                                   img->batches[i].state, img->batches[i].delivery};
    v.snapshot_epoch = img->snapshot_epoch;
    v.leader_epoch = img->leader_epoch;
    v.start_offset = img->start;
    v.delivery_complete_count = img->delivery_complete;
    v.state_batches = b;
    v.state_batches_count = (int32_t)n;
    rc = kp_share_update_value_encode(w, VALUE_V, &v);
    free(b);
    return rc;
}

/* ---- decoding ------------------------------------------------------------- */

void srv_ss_rec_clear(srv_ss_rec *r)
{
    free(r->group);
    srv_ss_image_clear(&r->img);
    memset(r, 0, sizeof(*r));
    r->img.delivery_complete = -1;
}

/* Batches must be sane to be merged: each first <= last, in order, disjoint,
 * a persisted state. */
static int batches_ok(const srv_ss_batch *b, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        if (b[i].first < 0 || b[i].first > b[i].last)
            return 0;
        if (b[i].state != SRV_SS_AVAILABLE && b[i].state != SRV_SS_ACKNOWLEDGED &&
            b[i].state != SRV_SS_ARCHIVED)
            return 0;
        if (i && b[i].first <= b[i - 1].last)
            return 0;
    }
    return 1;
}

static int copy_batches(srv_ss_image *img, int32_t n, const void *src, size_t stride)
{
    if (n < 0)
        return SRV_SS_E_MALFORMED;
    img->batches = calloc((size_t)(n ? n : 1), sizeof(*img->batches));
    if (!img->batches)
        return SRV_SS_E_NOMEM;
    /* Both generated batch structs have the same fields in the same order. */
    for (int32_t i = 0; i < n; i++) {
        const kp_share_update_value_state_batch *s =
            (const kp_share_update_value_state_batch *)((const char *)src + (size_t)i * stride);
        img->batches[i] =
            (srv_ss_batch){s->first_offset, s->last_offset, s->delivery_state, s->delivery_count};
    }
    img->nbatches = n;
    return batches_ok(img->batches, n) ? SRV_SS_OK : SRV_SS_E_MALFORMED;
}

static int decode_value(int type, kp_reader *vr, kp_arena *a, srv_ss_image *img)
{
    int16_t ver;
    if (kp_read_i16(vr, &ver))
        return SRV_SS_E_MALFORMED;
    if (ver != VALUE_V)
        return SRV_SS_E_VERSION;
    if (type == SRV_SS_SNAPSHOT) {
        kp_share_snapshot_value v;
        kp_share_snapshot_value_init(&v);
        if (kp_share_snapshot_value_decode(vr, a, ver, &v) || kp_reader_left(vr) != 0)
            return SRV_SS_E_MALFORMED;
        img->snapshot_epoch = v.snapshot_epoch;
        img->state_epoch = v.state_epoch;
        img->leader_epoch = v.leader_epoch;
        img->start = v.start_offset;
        img->delivery_complete = v.delivery_complete_count;
        img->create_ts = v.create_timestamp;
        img->write_ts = v.write_timestamp;
        /* Kafka's InitializeShareGroupState snapshot carries -1: not yet
         * initialised (restore skips it). */
        if (v.start_offset < -1)
            return SRV_SS_E_MALFORMED;
        return copy_batches(img, v.state_batches_count, v.state_batches, sizeof(*v.state_batches));
    }
    kp_share_update_value v;
    kp_share_update_value_init(&v);
    if (kp_share_update_value_decode(vr, a, ver, &v) || kp_reader_left(vr) != 0)
        return SRV_SS_E_MALFORMED;
    img->snapshot_epoch = v.snapshot_epoch;
    img->leader_epoch = v.leader_epoch;
    img->start = v.start_offset;
    img->delivery_complete = v.delivery_complete_count;
    if (v.start_offset < -1)
        return SRV_SS_E_MALFORMED;
    return copy_batches(img, v.state_batches_count, v.state_batches, sizeof(*v.state_batches));
}

int srv_ss_decode(const uint8_t *key, int32_t klen, const uint8_t *value, int32_t vlen, srv_ss_rec *out)
{
    memset(out, 0, sizeof(*out));
    out->img.delivery_complete = -1;
    if (!key || klen < 0)
        return SRV_SS_E_MALFORMED;
    kp_reader kr;
    kp_reader_init(&kr, key, (size_t)klen);
    int16_t type;
    if (kp_read_i16(&kr, &type))
        return SRV_SS_E_MALFORMED;
    if (type != SRV_SS_SNAPSHOT && type != SRV_SS_UPDATE)
        return SRV_SS_E_TYPE;
    out->type = type;
    kp_arena a;
    kp_arena_init(&a, 0);
    int rc = SRV_SS_OK;
    kp_str g;
    /* The two keys have the same fields. */
    kp_share_snapshot_key k;
    kp_share_snapshot_key_init(&k);
    if (kp_share_snapshot_key_decode(&kr, &a, 0, &k) || kp_reader_left(&kr) != 0 || k.group_id.len < 0) {
        rc = SRV_SS_E_MALFORMED;
        goto out;
    }
    g = k.group_id;
    out->group = malloc((size_t)g.len + 1);
    if (!out->group) {
        rc = SRV_SS_E_NOMEM;
        goto out;
    }
    if (g.len)
        memcpy(out->group, g.p, (size_t)g.len);
    out->group[g.len] = 0;
    out->group_len = g.len;
    out->topic = k.topic_id;
    out->partition = k.partition;
    if (!value || vlen < 0) {
        out->tombstone = true;
        goto out;
    }
    kp_reader vr;
    kp_reader_init(&vr, value, (size_t)vlen);
    rc = decode_value(type, &vr, &a, &out->img);
out:
    kp_arena_reset(&a);
    return rc;
}

/* ---- merge ---------------------------------------------------------------- */

int srv_ss_merge(srv_ss_image *state, const srv_ss_image *u)
{
    int64_t start = u->start >= 0 ? u->start : state->start;
    size_t cap = (size_t)state->nbatches * 2 + (size_t)u->nbatches + 1;
    srv_ss_batch *out = calloc(cap, sizeof(*out));
    if (!out)
        return -1;
    size_t n = 0;
    /* The old batches minus what the update covers (a batch may be cut in
     * two), then the update's, then sorted by first offset: both inputs are
     * sorted and disjoint, so a merge of the two lists is enough. */
    srv_ss_batch *rest = calloc(cap, sizeof(*rest));
    if (!rest) {
        free(out);
        return -1;
    }
    size_t nr = 0;
    for (int32_t i = 0; i < state->nbatches; i++) {
        srv_ss_batch b = state->batches[i];
        int64_t lo = b.first;
        for (int32_t j = 0; j < u->nbatches && lo <= b.last; j++) {
            const srv_ss_batch *c = &u->batches[j];
            if (c->last < lo || c->first > b.last)
                continue;
            if (c->first > lo) {
                rest[nr] = b;
                rest[nr].first = lo;
                rest[nr].last = c->first - 1;
                nr++;
            }
            lo = c->last + 1;
        }
        if (lo <= b.last) {
            rest[nr] = b;
            rest[nr].first = lo;
            nr++;
        }
    }
    size_t i = 0, j = 0;
    while (i < nr || j < (size_t)u->nbatches) {
        srv_ss_batch b;
        if (j >= (size_t)u->nbatches || (i < nr && rest[i].first < u->batches[j].first))
            b = rest[i++];
        else
            b = u->batches[j++];
        if (b.last < start)
            continue;
        if (b.first < start)
            b.first = start;
        out[n++] = b;
    }
    free(rest);
    free(state->batches);
    state->batches = out;
    state->nbatches = (int32_t)n;
    state->start = start;
    state->leader_epoch = u->leader_epoch;
    state->delivery_complete = u->delivery_complete;
    return 0;
}

/* ---- the map -------------------------------------------------------------- */

static uint64_t key_hash(kp_str g, const kp_uuid *t, int32_t p)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int32_t i = 0; i < g.len; i++)
        h = (h ^ (uint8_t)g.p[i]) * 1099511628211ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ t->b[i]) * 1099511628211ULL;
    for (int i = 0; i < 4; i++)
        h = (h ^ (uint8_t)((uint32_t)p >> (8 * i))) * 1099511628211ULL;
    return h;
}

void srv_ss_map_init(srv_ss_map *m)
{
    memset(m, 0, sizeof(*m));
}

static void entry_free(srv_ss_entry *e)
{
    free(e->group);
    srv_ss_image_clear(&e->img);
    free(e);
}

void srv_ss_map_free(srv_ss_map *m)
{
    for (size_t b = 0; b < m->nbuckets; b++) {
        srv_ss_entry *e = m->buckets[b];
        while (e) {
            srv_ss_entry *n = e->next;
            entry_free(e);
            e = n;
        }
    }
    free(m->buckets);
    srv_ss_map_init(m);
}

static srv_ss_entry **slot(const srv_ss_map *m, kp_str g, const kp_uuid *t, int32_t p)
{
    if (!m->nbuckets)
        return NULL;
    srv_ss_entry **pp = &m->buckets[key_hash(g, t, p) % m->nbuckets];
    for (; *pp; pp = &(*pp)->next) {
        const srv_ss_entry *e = *pp;
        if (e->partition == p && e->group_len == g.len && memcmp(e->topic.b, t->b, 16) == 0 &&
            (g.len == 0 || memcmp(e->group, g.p, (size_t)g.len) == 0))
            return pp;
    }
    return pp;
}

srv_ss_entry *srv_ss_map_get(const srv_ss_map *m, kp_str g, const kp_uuid *t, int32_t p)
{
    srv_ss_entry **pp = slot(m, g, t, p);
    return pp ? *pp : NULL;
}

void srv_ss_map_each(const srv_ss_map *m, void (*fn)(srv_ss_entry *e, void *arg), void *arg)
{
    for (size_t b = 0; b < m->nbuckets; b++)
        for (srv_ss_entry *e = m->buckets[b]; e; e = e->next)
            fn(e, arg);
}

static int grow(srv_ss_map *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 64;
    srv_ss_entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < m->nbuckets; i++) {
        srv_ss_entry *e = m->buckets[i];
        while (e) {
            srv_ss_entry *n = e->next;
            size_t k = key_hash((kp_str){e->group, e->group_len}, &e->topic, e->partition) % nb;
            e->next = b[k];
            b[k] = e;
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

int srv_ss_replay(srv_ss_map *m, int64_t offset, const uint8_t *key, int32_t klen, const uint8_t *value,
                  int32_t vlen)
{
    srv_ss_rec r;
    int rc = srv_ss_decode(key, klen, value, vlen, &r);
    if (rc) {
        srv_ss_rec_clear(&r);
        return rc;
    }
    kp_str g = {r.group, r.group_len};
    if (m->count >= m->nbuckets && grow(m) < 0) {
        srv_ss_rec_clear(&r);
        return SRV_SS_E_NOMEM;
    }
    srv_ss_entry **pp = slot(m, g, &r.topic, r.partition);
    srv_ss_entry *e = *pp;
    if (r.tombstone) {
        if (e) {
            *pp = e->next;
            entry_free(e);
            m->count--;
        }
        srv_ss_rec_clear(&r);
        return SRV_SS_OK;
    }
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e) {
            srv_ss_rec_clear(&r);
            return SRV_SS_E_NOMEM;
        }
        e->group = r.group;
        e->group_len = r.group_len;
        r.group = NULL;
        e->topic = r.topic;
        e->partition = r.partition;
        e->img.delivery_complete = -1;
        e->snap_offset = offset; /* an update without its snapshot pins itself */
        *pp = e;
        m->count++;
    }
    if (r.type == SRV_SS_SNAPSHOT) {
        srv_ss_image_clear(&e->img);
        e->img = r.img;
        memset(&r.img, 0, sizeof(r.img));
        e->updates = 0;
        e->snap_offset = offset;
    } else {
        if (srv_ss_merge(&e->img, &r.img) < 0) {
            srv_ss_rec_clear(&r);
            return SRV_SS_E_NOMEM;
        }
        e->updates++;
    }
    srv_ss_rec_clear(&r);
    return SRV_SS_OK;
}

int srv_ss_track(srv_ss_map *m, kp_str group, const kp_uuid *topic, int32_t partition, int type,
                 int64_t offset)
{
    if (m->count >= m->nbuckets && grow(m) < 0) {
        m->failed = 1;
        return -1;
    }
    srv_ss_entry **pp = slot(m, group, topic, partition);
    srv_ss_entry *e = *pp;
    if (!e) {
        e = calloc(1, sizeof(*e));
        int32_t n = group.len > 0 ? group.len : 0;
        if (!e || !(e->group = malloc((size_t)n + 1))) {
            free(e);
            m->failed = 1;
            return -1;
        }
        if (n)
            memcpy(e->group, group.p, (size_t)n);
        e->group[n] = 0;
        e->group_len = n;
        e->topic = *topic;
        e->partition = partition;
        e->img.delivery_complete = -1;
        e->snap_offset = offset;
        *pp = e;
        m->count++;
    }
    if (type == SRV_SS_SNAPSHOT && offset > e->snap_offset)
        e->snap_offset = offset;
    return 0;
}

void srv_ss_untrack(srv_ss_map *m, kp_str group, const kp_uuid *topic, int32_t partition)
{
    if (!m->nbuckets)
        return;
    srv_ss_entry **pp = slot(m, group, topic, partition);
    srv_ss_entry *e = *pp;
    if (!e)
        return;
    *pp = e->next;
    entry_free(e);
    m->count--;
}

int64_t srv_ss_prune_point(const srv_ss_map *m)
{
    if (m->failed)
        return -1;
    int64_t low = -1;
    for (size_t b = 0; b < m->nbuckets; b++)
        for (const srv_ss_entry *e = m->buckets[b]; e; e = e->next)
            if (low < 0 || e->snap_offset < low)
                low = e->snap_offset;
    return low;
}

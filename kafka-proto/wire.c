/*
 * wire.c — bounds-checked reader/writer, varints and the request arena.
 *
 * Owns the only code that touches raw input bytes for the generated codecs.
 * Must not: read past r->end, allocate before checking a length against the
 * remaining input, or keep pointers into a frame beyond the caller's arena.
 */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

const char *kp_strerror(int rc)
{
    switch (rc) {
    case KP_OK:
        return "ok";
    case KP_E_SHORT:
        return "input too short";
    case KP_E_INVALID:
        return "invalid length, count or varint";
    case KP_E_NOMEM:
        return "out of memory";
    case KP_E_VERSION:
        return "unsupported version";
    case KP_E_UNSUPPORTED:
        return "value not representable in this version";
    case KP_E_CRC:
        return "checksum mismatch";
    case KP_E_TOO_LARGE:
        return "too large";
    case KP_E_CODEC:
        return "compression codec error";
    }
    return "unknown error";
}

kp_str kp_str_c(const char *s)
{
    kp_str r = {s, s ? (int32_t)strlen(s) : -1};
    return r;
}

int kp_str_eq(kp_str a, const char *s)
{
    if (!s)
        return a.len < 0;
    size_t n = strlen(s);
    return a.len >= 0 && (size_t)a.len == n && memcmp(a.p, s, n) == 0;
}

int kp_uuid_is_zero(const kp_uuid *u)
{
    static const kp_uuid zero;
    return memcmp(u->b, zero.b, 16) == 0;
}

/* ---- arena ------------------------------------------------------------ */

struct kp_arena_chunk {
    kp_arena_chunk *next;
    size_t size;
    size_t used;
    max_align_t data[];
};

#define KP_ARENA_DEFAULT_CAP (64u << 20)
#define KP_ARENA_CHUNK       (16u << 10)

void kp_arena_init(kp_arena *a, size_t cap)
{
    a->head = NULL;
    a->used_total = 0;
    a->cap = cap ? cap : KP_ARENA_DEFAULT_CAP;
    a->failed = 0;
}

void *kp_arena_alloc(kp_arena *a, size_t n)
{
    if (n > a->cap)
        goto refused;
    n = (n + 7) & ~(size_t)7;
    if (n == 0)
        n = 8;
    if (n > a->cap || a->used_total > a->cap - n)
        goto refused;
    kp_arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t sz = n > KP_ARENA_CHUNK ? n : KP_ARENA_CHUNK;
        c = malloc(sizeof(*c) + sz);
        if (!c)
            goto refused;
        c->size = sz;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (uint8_t *)c->data + c->used;
    c->used += n;
    a->used_total += n;
    memset(p, 0, n);
    return p;
refused:
    a->failed = 1;
    return NULL;
}

void kp_arena_reset(kp_arena *a)
{
    kp_arena_chunk *c = a->head;
    while (c) {
        kp_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used_total = 0;
    a->failed = 0;
}

kp_str kp_arena_str(kp_arena *a, kp_str s)
{
    if (s.len < 0)
        return KP_STR_NULL;
    char *p = kp_arena_alloc(a, (size_t)s.len + 1);
    if (!p)
        return KP_STR_NULL;
    if (s.len)
        memcpy(p, s.p, (size_t)s.len);
    return (kp_str){p, s.len};
}

kp_str kp_arena_strz(kp_arena *a, const char *z)
{
    return z ? kp_arena_str(a, (kp_str){z, (int32_t)strlen(z)}) : KP_STR_NULL;
}

kp_bytes kp_arena_bytes(kp_arena *a, kp_bytes b)
{
    kp_str s = kp_arena_str(a, (kp_str){(const char *)b.p, b.len});
    return (kp_bytes){(const uint8_t *)s.p, s.len};
}

/* ---- reader ----------------------------------------------------------- */

void kp_reader_init(kp_reader *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
    r->err = 0;
}

static inline int need(kp_reader *r, size_t n)
{
    if (r->err)
        return r->err;
    if ((size_t)(r->end - r->p) < n)
        return r->err = KP_E_SHORT;
    return 0;
}

static inline int fail(kp_reader *r, int e)
{
    if (!r->err)
        r->err = e;
    return r->err;
}

int kp_read_i8(kp_reader *r, int8_t *v)
{
    if (need(r, 1))
        return r->err;
    *v = (int8_t)*r->p++;
    return 0;
}

int kp_read_bool(kp_reader *r, uint8_t *v)
{
    int8_t b = 0;
    if (kp_read_i8(r, &b))
        return r->err;
    *v = b != 0;
    return 0;
}

int kp_read_u16(kp_reader *r, uint16_t *v)
{
    if (need(r, 2))
        return r->err;
    *v = kp_be16(r->p);
    r->p += 2;
    return 0;
}

int kp_read_i16(kp_reader *r, int16_t *v)
{
    uint16_t u = 0;
    if (kp_read_u16(r, &u))
        return r->err;
    *v = (int16_t)u;
    return 0;
}

int kp_read_u32(kp_reader *r, uint32_t *v)
{
    if (need(r, 4))
        return r->err;
    *v = kp_be32(r->p);
    r->p += 4;
    return 0;
}

int kp_read_i32(kp_reader *r, int32_t *v)
{
    uint32_t u = 0;
    if (kp_read_u32(r, &u))
        return r->err;
    *v = (int32_t)u;
    return 0;
}

int kp_read_i64(kp_reader *r, int64_t *v)
{
    if (need(r, 8))
        return r->err;
    *v = (int64_t)kp_be64(r->p);
    r->p += 8;
    return 0;
}

int kp_read_f64(kp_reader *r, double *v)
{
    int64_t i = 0;
    if (kp_read_i64(r, &i))
        return r->err;
    memcpy(v, &i, sizeof(*v));
    return 0;
}

int kp_read_uuid(kp_reader *r, kp_uuid *v)
{
    if (need(r, 16))
        return r->err;
    memcpy(v->b, r->p, 16);
    r->p += 16;
    return 0;
}

int kp_read_uvarlong_any(kp_reader *r, uint64_t *v)
{
    if (r->err)
        return r->err;
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return fail(r, KP_E_SHORT);
        uint8_t b = *r->p++;
        /* The 10th byte may only carry the top bit of a 64-bit value. */
        if (shift == 63 && (b & 0xfe))
            return fail(r, KP_E_INVALID);
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return fail(r, KP_E_INVALID);
}

int kp_read_uvarint_any(kp_reader *r, uint32_t *v)
{
    if (r->err)
        return r->err;
    uint32_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (r->p >= r->end)
            return fail(r, KP_E_SHORT);
        uint8_t b = *r->p++;
        if (shift == 28 && (b & 0xf0))
            return fail(r, KP_E_INVALID);
        x |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return fail(r, KP_E_INVALID);
}

int kp_read_raw(kp_reader *r, size_t n, const uint8_t **out)
{
    if (need(r, n))
        return r->err;
    *out = r->p;
    r->p += n;
    return 0;
}

int kp_skip(kp_reader *r, size_t n)
{
    const uint8_t *dummy;
    return kp_read_raw(r, n, &dummy);
}

static int read_span(kp_reader *r, int64_t len, const uint8_t **p, int32_t *outlen)
{
    if (len < -1)
        return fail(r, KP_E_INVALID);
    if (len == -1) {
        *p = NULL;
        *outlen = -1;
        return 0;
    }
    if (len > INT32_MAX)
        return fail(r, KP_E_INVALID);
    if (kp_read_raw(r, (size_t)len, p))
        return r->err;
    *outlen = (int32_t)len;
    return 0;
}

int kp_read_string(kp_reader *r, kp_str *s)
{
    int16_t n = 0;
    const uint8_t *p = NULL;
    if (kp_read_i16(r, &n) || read_span(r, n, &p, &s->len))
        return r->err;
    s->p = (const char *)p;
    return 0;
}

int kp_read_compact_string(kp_reader *r, kp_str *s)
{
    uint32_t n = 0;
    const uint8_t *p = NULL;
    if (kp_read_uvarint(r, &n) || read_span(r, (int64_t)n - 1, &p, &s->len))
        return r->err;
    s->p = (const char *)p;
    return 0;
}

int kp_read_bytes(kp_reader *r, kp_bytes *b)
{
    int32_t n = 0;
    if (kp_read_i32(r, &n) || read_span(r, n, &b->p, &b->len))
        return r->err;
    return 0;
}

int kp_read_compact_bytes(kp_reader *r, kp_bytes *b)
{
    uint32_t n = 0;
    if (kp_read_uvarint(r, &n) || read_span(r, (int64_t)n - 1, &b->p, &b->len))
        return r->err;
    return 0;
}

int kp_read_array_len(kp_reader *r, int compact, size_t min_elem_size, int32_t *n)
{
    int64_t count;
    if (compact) {
        uint32_t u = 0;
        if (kp_read_uvarint(r, &u))
            return r->err;
        count = (int64_t)u - 1;
    } else {
        int32_t i = 0;
        if (kp_read_i32(r, &i))
            return r->err;
        count = i;
    }
    if (count < -1 || count > INT32_MAX)
        return fail(r, KP_E_INVALID);
    /* Every element takes at least min_elem_size bytes (at least 1 is assumed),
     * so a count larger than the remaining input is a lie. */
    size_t min = min_elem_size ? min_elem_size : 1;
    if (count > 0 && (uint64_t)count > kp_reader_left(r) / min)
        return fail(r, KP_E_INVALID);
    *n = (int32_t)count;
    return 0;
}

int kp_skip_tagged_fields(kp_reader *r)
{
    uint32_t n = 0;
    if (kp_read_uvarint(r, &n))
        return r->err;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t tag = 0, size = 0;
        if (kp_read_uvarint(r, &tag) || kp_read_uvarint(r, &size) || kp_skip(r, size))
            return r->err;
    }
    return 0;
}

/* ---- writer ----------------------------------------------------------- */

void kp_writer_init(kp_writer *w, size_t initial_cap)
{
    w->ref_min = 0;
    w->refs = NULL;
    w->nrefs = w->refs_cap = 0;
    w->ref_bytes = 0;
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->fixed = 0;
    w->counting = 0;
    w->err = 0;
    if (initial_cap)
        kp_writer_reserve(w, initial_cap);
}

void kp_writer_init_fixed(kp_writer *w, void *buf, size_t cap)
{
    w->ref_min = 0;
    w->refs = NULL;
    w->nrefs = w->refs_cap = 0;
    w->ref_bytes = 0;
    w->buf = buf;
    w->len = 0;
    w->cap = cap;
    w->fixed = 1;
    w->counting = 0;
    w->err = 0;
}

void kp_writer_init_counting(kp_writer *w)
{
    kp_writer_init_fixed(w, NULL, SIZE_MAX);
    w->counting = 1;
}

void kp_writer_free(kp_writer *w)
{
    if (!w->fixed)
        free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    free(w->refs);
    w->refs = NULL;
    w->nrefs = w->refs_cap = 0;
    w->ref_bytes = 0;
}

void kp_writer_refs_enable(kp_writer *w, size_t min_len)
{
    if (!w->fixed && !w->counting)
        w->ref_min = min_len ? min_len : 1;
}

size_t kp_writer_total(const kp_writer *w)
{
    return w->len + w->ref_bytes;
}

/* Lists b instead of copying it (the caller checked ref_min). */
static int write_ref(kp_writer *w, const uint8_t *p, size_t n)
{
    if (w->err)
        return w->err;
    if (w->nrefs == w->refs_cap) {
        size_t cap = w->refs_cap ? w->refs_cap * 2 : 16;
        kp_wref *nr = realloc(w->refs, cap * sizeof(*nr));
        if (!nr)
            return w->err = KP_E_NOMEM;
        w->refs = nr;
        w->refs_cap = cap;
    }
    w->refs[w->nrefs++] = (kp_wref){w->len, p, n};
    w->ref_bytes += n;
    return 0;
}

static int write_value(kp_writer *w, const uint8_t *p, size_t n)
{
    if (w->ref_min && n >= w->ref_min)
        return write_ref(w, p, n);
    return kp_write_raw(w, p, n);
}

int kp_writer_reserve(kp_writer *w, size_t n)
{
    if (w->err)
        return w->err;
    if (w->counting || w->cap - w->len >= n)
        return 0;
    if (w->fixed || n > SIZE_MAX / 2 - w->len)
        return w->err = KP_E_NOMEM;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < n)
        cap *= 2;
    uint8_t *nb = realloc(w->buf, cap);
    if (!nb)
        return w->err = KP_E_NOMEM;
    w->buf = nb;
    w->cap = cap;
    return 0;
}

int kp_write_raw(kp_writer *w, const void *p, size_t n)
{
    if (kp_writer_reserve(w, n))
        return w->err;
    if (n && !w->counting)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

int kp_write_i8(kp_writer *w, int8_t v)
{
    return kp_write_raw(w, &v, 1);
}
int kp_write_bool(kp_writer *w, uint8_t v)
{
    return kp_write_i8(w, v ? 1 : 0);
}

int kp_write_u16(kp_writer *w, uint16_t v)
{
    uint8_t b[2];
    kp_put_be16(b, v);
    return kp_write_raw(w, b, 2);
}

int kp_write_i16(kp_writer *w, int16_t v)
{
    return kp_write_u16(w, (uint16_t)v);
}

int kp_write_u32(kp_writer *w, uint32_t v)
{
    uint8_t b[4];
    kp_put_be32(b, v);
    return kp_write_raw(w, b, 4);
}

int kp_write_i32(kp_writer *w, int32_t v)
{
    return kp_write_u32(w, (uint32_t)v);
}

int kp_write_i64(kp_writer *w, int64_t v)
{
    uint8_t b[8];
    kp_put_be64(b, (uint64_t)v);
    return kp_write_raw(w, b, 8);
}

int kp_write_f64(kp_writer *w, double v)
{
    int64_t i = 0;
    memcpy(&i, &v, sizeof(i));
    return kp_write_i64(w, i);
}

int kp_write_uuid(kp_writer *w, const kp_uuid *v)
{
    return kp_write_raw(w, v->b, 16);
}

int kp_write_uvarlong(kp_writer *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return kp_write_raw(w, b, n);
}

int kp_write_uvarint(kp_writer *w, uint32_t v)
{
    return kp_write_uvarlong(w, v);
}

int kp_write_varint(kp_writer *w, int32_t v)
{
    return kp_write_uvarint(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

int kp_write_varlong(kp_writer *w, int64_t v)
{
    return kp_write_uvarlong(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

int kp_write_string(kp_writer *w, kp_str s)
{
    if (s.len > INT16_MAX)
        return w->err = KP_E_UNSUPPORTED;
    if (s.len < 0)
        return kp_write_i16(w, -1);
    if (kp_write_i16(w, (int16_t)s.len))
        return w->err;
    return kp_write_raw(w, s.p, (size_t)s.len);
}

int kp_write_compact_string(kp_writer *w, kp_str s)
{
    if (s.len < 0)
        return kp_write_uvarint(w, 0);
    if (kp_write_uvarint(w, (uint32_t)s.len + 1))
        return w->err;
    return kp_write_raw(w, s.p, (size_t)s.len);
}

int kp_write_bytes(kp_writer *w, kp_bytes b)
{
    if (b.len < 0)
        return kp_write_i32(w, -1);
    if (kp_write_i32(w, b.len))
        return w->err;
    return write_value(w, b.p, (size_t)b.len);
}

int kp_write_compact_bytes(kp_writer *w, kp_bytes b)
{
    if (b.len < 0)
        return kp_write_uvarint(w, 0);
    if (kp_write_uvarint(w, (uint32_t)b.len + 1))
        return w->err;
    return write_value(w, b.p, (size_t)b.len);
}

int kp_write_array_len(kp_writer *w, int compact, int32_t n)
{
    if (compact)
        return kp_write_uvarint(w, n < 0 ? 0 : (uint32_t)n + 1);
    return kp_write_i32(w, n < 0 ? -1 : n);
}

size_t kp_uvarlong_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t kp_uvarint_size(uint32_t v)
{
    return kp_uvarlong_size(v);
}
size_t kp_varint_size(int32_t v)
{
    return kp_uvarint_size(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}
size_t kp_varlong_size(int64_t v)
{
    return kp_uvarlong_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

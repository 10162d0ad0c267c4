/*
 * wire.h — bounds-checked primitives for the Kafka wire format.
 *
 * Owns: the reader (decoding from an untrusted byte range), the writer
 * (encoding into a caller-provided or growable buffer), Kafka's varints
 * (unsigned, zigzag int32/int64) and the per-request arena that decoded
 * messages live in.
 *
 * Must not: trust any length read from input, allocate in proportion to a
 * length it has not yet checked against the bytes that remain, or know about
 * any particular message (that is the generated code's job).
 *
 * Every reader function returns 0 on success and a negative KP_E* code on
 * failure; after the first failure the reader is poisoned (r->err set) and
 * every later call fails too, so a decoder may check once at the end.
 */
#ifndef KP_WIRE_H
#define KP_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Decoder / encoder status codes (not Kafka error codes; see errors.h). */
enum {
    KP_OK = 0,
    KP_E_SHORT = -1,       /* input ended before the value did */
    KP_E_INVALID = -2,     /* a length, count or varint is impossible */
    KP_E_NOMEM = -3,       /* arena or writer could not grow */
    KP_E_VERSION = -4,     /* version not valid for this message */
    KP_E_UNSUPPORTED = -5, /* value cannot be represented in this version */
    KP_E_CRC = -6,         /* record batch checksum mismatch */
    KP_E_TOO_LARGE = -7,   /* exceeds a configured cap */
    KP_E_CODEC = -8,       /* compression codec failure */
};

const char *kp_strerror(int rc);

/* A string or byte range that points into the frame it was decoded from.
 * len == -1 means null. Strings are not NUL-terminated. */
typedef struct kp_str {
    const char *p;
    int32_t len;
} kp_str;

typedef struct kp_bytes {
    const uint8_t *p;
    int32_t len;
} kp_bytes;

typedef struct kp_uuid {
    uint8_t b[16];
} kp_uuid;

#define KP_STR_NULL   ((kp_str){NULL, -1})
#define KP_BYTES_NULL ((kp_bytes){NULL, -1})
kp_str kp_str_c(const char *s);         /* wrap a C string (not copied) */
int kp_str_eq(kp_str a, const char *s); /* s == NULL compares with null */
int kp_uuid_is_zero(const kp_uuid *u);

/* ---- arena ------------------------------------------------------------ */

/* A bump allocator in chunks. Freed all at once. A cap bounds the total.
 *
 * A refused allocation also sets a sticky flag, so whoever turns what was
 * built in the arena into an answer can check once (kp_arena_failed) instead
 * of every builder turning each NULL into its own error: a value built after
 * a refusal may be missing pieces and must not go out as if it were whole. */
typedef struct kp_arena_chunk kp_arena_chunk;
typedef struct kp_arena {
    kp_arena_chunk *head;
    size_t used_total;
    size_t cap; /* 0 = default cap (64 MiB) */
    int failed; /* an allocation was refused since init / reset */
} kp_arena;

void kp_arena_init(kp_arena *a, size_t cap);
void *kp_arena_alloc(kp_arena *a, size_t n); /* zeroed, 8-aligned; NULL (and failed set) when over cap */
void kp_arena_reset(kp_arena *a);            /* free everything, clear failed */
static inline int kp_arena_failed(const kp_arena *a)
{
    return a->failed;
}
/* Copies into the arena with a NUL after the bytes (for code that needs a C
 * string; the length stays the truth). Null stays null; a refusal gives null
 * (and sets failed). */
kp_str kp_arena_str(kp_arena *a, kp_str s);
kp_str kp_arena_strz(kp_arena *a, const char *z); /* NUL-free text of our own; NULL gives null */
kp_bytes kp_arena_bytes(kp_arena *a, kp_bytes b);
/* For memory that belongs to an answer but lives in another arena (a reply
 * filled on another shard): its refusal taints this arena's answer too. */
static inline void kp_arena_set_failed(kp_arena *a)
{
    a->failed = 1;
}

/* ---- reader ----------------------------------------------------------- */

typedef struct kp_reader {
    const uint8_t *p;
    const uint8_t *end;
    int err;
} kp_reader;

void kp_reader_init(kp_reader *r, const void *buf, size_t len);
static inline size_t kp_reader_left(const kp_reader *r)
{
    return (size_t)(r->end - r->p);
}

int kp_read_i8(kp_reader *r, int8_t *v);
int kp_read_i16(kp_reader *r, int16_t *v);
int kp_read_u16(kp_reader *r, uint16_t *v);
int kp_read_i32(kp_reader *r, int32_t *v);
int kp_read_u32(kp_reader *r, uint32_t *v);
int kp_read_i64(kp_reader *r, int64_t *v);
int kp_read_f64(kp_reader *r, double *v);
int kp_read_bool(kp_reader *r, uint8_t *v);
int kp_read_uuid(kp_reader *r, kp_uuid *v);
int kp_read_uvarint_any(kp_reader *r, uint32_t *v);  /* at most 5 bytes */
int kp_read_uvarlong_any(kp_reader *r, uint64_t *v); /* at most 10 bytes */

/* Varints of one or two bytes are nearly every length and delta in a record
 * batch; they are decoded inline, the rest by the general readers above. */
static inline int kp_read_uvarint(kp_reader *r, uint32_t *v)
{
    const uint8_t *p = r->p;
    if (!r->err && p < r->end) {
        if (!(p[0] & 0x80)) {
            *v = p[0];
            r->p = p + 1;
            return 0;
        }
        if (r->end - p >= 2 && !(p[1] & 0x80)) {
            *v = (uint32_t)(p[0] & 0x7f) | (uint32_t)p[1] << 7;
            r->p = p + 2;
            return 0;
        }
    }
    return kp_read_uvarint_any(r, v);
}

static inline int kp_read_uvarlong(kp_reader *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    if (!r->err && p < r->end) {
        if (!(p[0] & 0x80)) {
            *v = p[0];
            r->p = p + 1;
            return 0;
        }
        if (r->end - p >= 2 && !(p[1] & 0x80)) {
            *v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
            r->p = p + 2;
            return 0;
        }
    }
    return kp_read_uvarlong_any(r, v);
}

static inline int kp_read_varint(kp_reader *r, int32_t *v) /* zigzag */
{
    uint32_t u = 0;
    int e = kp_read_uvarint(r, &u);
    if (e)
        return e;
    *v = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return 0;
}

static inline int kp_read_varlong(kp_reader *r, int64_t *v) /* zigzag */
{
    uint64_t u = 0;
    int e = kp_read_uvarlong(r, &u);
    if (e)
        return e;
    *v = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
    return 0;
}
int kp_read_raw(kp_reader *r, size_t n, const uint8_t **out);
int kp_skip(kp_reader *r, size_t n);

/* Kafka string / bytes in classic (int16 / int32 length) and compact
 * (uvarint length+1) form. Nullability is checked by the caller. */
int kp_read_string(kp_reader *r, kp_str *s);
int kp_read_compact_string(kp_reader *r, kp_str *s);
int kp_read_bytes(kp_reader *r, kp_bytes *b);
int kp_read_compact_bytes(kp_reader *r, kp_bytes *b);

/* Array length: returns the count (-1 for null) in *n. The count is checked
 * against the bytes left, given the smallest possible encoded element size,
 * so a hostile count can never cause a large allocation. */
int kp_read_array_len(kp_reader *r, int compact, size_t min_elem_size, int32_t *n);

/* Skip one tagged-field section, or read its header for a generated decoder. */
int kp_skip_tagged_fields(kp_reader *r);

/* ---- writer ----------------------------------------------------------- */

/* A bytes/records field the writer left out of buf (kp_writer_refs_enable):
 * its len bytes at p belong in the encoding right before buf[at]. */
typedef struct kp_wref {
    size_t at;
    const uint8_t *p;
    size_t len;
} kp_wref;

/* A writer over a growable heap buffer (fixed == 0) or a fixed caller buffer.
 * Like the reader it latches the first error. */
typedef struct kp_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int fixed;
    int counting; /* only counts bytes: how size functions share the encoder */
    int err;
    /* By-reference bytes fields: none unless enabled (all zero). The
     * encoding is buf with each ref's bytes inserted at its position;
     * ref_bytes is their sum, which frame lengths include. */
    size_t ref_min;
    kp_wref *refs;
    size_t nrefs, refs_cap;
    size_t ref_bytes;
} kp_writer;

void kp_writer_init(kp_writer *w, size_t initial_cap); /* growable */
void kp_writer_init_fixed(kp_writer *w, void *buf, size_t cap);
void kp_writer_init_counting(kp_writer *w);
void kp_writer_free(kp_writer *w);
int kp_writer_reserve(kp_writer *w, size_t n);
/* From now on, a bytes or records value of at least min_len bytes is not
 * copied but listed in w->refs (its memory must outlive the encoding's use);
 * a writer that is growable only. For large fetch answers, which go to the
 * socket by reference. */
void kp_writer_refs_enable(kp_writer *w, size_t min_len);
/* The encoded length: buf plus the referenced bytes. */
size_t kp_writer_total(const kp_writer *w);

int kp_write_i8(kp_writer *w, int8_t v);
int kp_write_i16(kp_writer *w, int16_t v);
int kp_write_u16(kp_writer *w, uint16_t v);
int kp_write_i32(kp_writer *w, int32_t v);
int kp_write_u32(kp_writer *w, uint32_t v);
int kp_write_i64(kp_writer *w, int64_t v);
int kp_write_f64(kp_writer *w, double v);
int kp_write_bool(kp_writer *w, uint8_t v);
int kp_write_uuid(kp_writer *w, const kp_uuid *v);
int kp_write_uvarint(kp_writer *w, uint32_t v);
int kp_write_uvarlong(kp_writer *w, uint64_t v);
int kp_write_varint(kp_writer *w, int32_t v);
int kp_write_varlong(kp_writer *w, int64_t v);
int kp_write_raw(kp_writer *w, const void *p, size_t n);
int kp_write_string(kp_writer *w, kp_str s);
int kp_write_compact_string(kp_writer *w, kp_str s);
int kp_write_bytes(kp_writer *w, kp_bytes b);
int kp_write_compact_bytes(kp_writer *w, kp_bytes b);
int kp_write_array_len(kp_writer *w, int compact, int32_t n); /* n == -1: null */

/* Encoded sizes, for the generated size functions. */
size_t kp_uvarint_size(uint32_t v);
size_t kp_uvarlong_size(uint64_t v);
size_t kp_varint_size(int32_t v);
size_t kp_varlong_size(int64_t v);

/* Big-endian helpers on raw memory (callers check bounds). */
static inline uint16_t kp_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t kp_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t kp_be64(const uint8_t *p)
{
    return ((uint64_t)kp_be32(p) << 32) | kp_be32(p + 4);
}
static inline void kp_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void kp_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void kp_put_be64(uint8_t *p, uint64_t v)
{
    kp_put_be32(p, (uint32_t)(v >> 32));
    kp_put_be32(p + 4, (uint32_t)v);
}

#endif

/*
 * cache.c — the chunked, block-aligned write buffer of a segment, which also
 * serves as the partition's tail cache.
 *
 * Owns: chunk memory (4 KiB aligned so O_DIRECT can write straight from it),
 * the mapping from segment positions to chunks, and a few recycled chunks.
 *
 * Must not: decide what may be freed (the log releases chunks once their
 * bytes are in the file and the tail-cache budget is exceeded) or touch a
 * chunk that a write in flight still reads from: only bytes past the log's
 * write position are ever modified, and the partial tail block goes to disk
 * through a separate bounce block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void st_chunks_init(st_chunks *ch, size_t chunk)
{
    memset(ch, 0, sizeof(*ch));
    ch->chunk = chunk;
}

void st_chunks_free(st_chunks *ch)
{
    for (size_t i = 0; i < ch->n; i++)
        free(ch->c[i]);
    for (int i = 0; i < ch->nspare; i++)
        free(ch->spare[i]);
    free(ch->c);
    size_t chunk = ch->chunk;
    memset(ch, 0, sizeof(*ch));
    ch->chunk = chunk;
}

static uint8_t *chunk_alloc(st_chunks *ch)
{
    if (ch->nspare > 0)
        return ch->spare[--ch->nspare];
    void *p = NULL;
    if (posix_memalign(&p, ST_BLOCK, ch->chunk) != 0)
        return NULL;
    ch->allocated += ch->chunk;
    return p;
}

static void chunk_release(st_chunks *ch, uint8_t *p)
{
    if (ch->nspare < (int)(sizeof(ch->spare) / sizeof(ch->spare[0]))) {
        ch->spare[ch->nspare++] = p;
        return;
    }
    free(p);
    ch->allocated -= ch->chunk;
}

/* Makes chunk number k exist (k >= first, contiguous growth only). */
static uint8_t *chunk_get(st_chunks *ch, uint64_t k)
{
    if (ch->n == 0)
        ch->first = k;
    if (k < ch->first)
        return NULL;
    while (ch->first + ch->n <= k) {
        if (ch->n == ch->cap) {
            size_t nc = ch->cap ? ch->cap * 2 : 16;
            uint8_t **np = realloc(ch->c, nc * sizeof(*np));
            if (!np)
                return NULL;
            ch->c = np;
            ch->cap = nc;
        }
        uint8_t *c = chunk_alloc(ch);
        if (!c)
            return NULL;
        ch->c[ch->n++] = c;
    }
    return ch->c[k - ch->first];
}

int st_chunks_write(st_chunks *ch, uint64_t pos, const void *src, size_t len)
{
    const uint8_t *s = src;
    if (ch->n == 0)
        ch->lo = pos;
    while (len > 0) {
        uint64_t k = pos / ch->chunk;
        size_t off = (size_t)(pos % ch->chunk);
        size_t n = ch->chunk - off;
        if (n > len)
            n = len;
        uint8_t *c = chunk_get(ch, k);
        if (!c)
            return -ENOMEM;
        memcpy(c + off, s, n);
        s += n;
        pos += n;
        len -= n;
    }
    return 0;
}

uint8_t *st_chunks_at(const st_chunks *ch, uint64_t pos, size_t *contig)
{
    uint64_t k = pos / ch->chunk;
    if (ch->n == 0 || k < ch->first || k >= ch->first + ch->n)
        return NULL;
    size_t off = (size_t)(pos % ch->chunk);
    *contig = ch->chunk - off;
    return ch->c[k - ch->first] + off;
}

void st_chunks_read(const st_chunks *ch, uint64_t pos, void *dst, size_t len)
{
    uint8_t *d = dst;
    while (len > 0) {
        size_t contig = 0;
        uint8_t *p = st_chunks_at(ch, pos, &contig);
        /* Callers only ask for ranges they know are held. */
        ST_ASSERT(p != NULL, "cache copy of a range the chunks do not hold");
        size_t n = contig < len ? contig : len;
        memcpy(d, p, n);
        d += n;
        pos += n;
        len -= n;
    }
}

uint64_t st_chunks_start(const st_chunks *ch)
{
    return ch->n ? ch->lo : UINT64_MAX;
}

void st_chunks_release_below(st_chunks *ch, uint64_t keep_from)
{
    uint64_t k = keep_from / ch->chunk;
    size_t drop = 0;
    while (drop < ch->n && ch->first + drop < k)
        chunk_release(ch, ch->c[drop++]);
    if (drop) {
        memmove(ch->c, ch->c + drop, (ch->n - drop) * sizeof(*ch->c));
        ch->n -= drop;
        ch->first += drop;
        if (ch->lo < ch->first * ch->chunk)
            ch->lo = ch->first * ch->chunk;
    }
}

int st_chunks_iov(const st_chunks *ch, uint64_t from, uint64_t to, struct iovec *iov, int max)
{
    int n = 0;
    while (from < to) {
        size_t contig = 0;
        uint8_t *p = st_chunks_at(ch, from, &contig);
        ST_ASSERT(p != NULL, "cache iovec of a range the chunks do not hold");
        size_t len = contig < to - from ? contig : (size_t)(to - from);
        if (n == max)
            return -ENOMEM;
        iov[n].iov_base = p;
        iov[n].iov_len = len;
        n++;
        from += len;
    }
    return n;
}

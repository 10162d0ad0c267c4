/*
 * sstr.c — length-keeping heap strings (see sstr.h).
 *
 * Owns: the header in front of the bytes. Must not: accept a pointer that
 * is not an sstr without stopping the process: mixing them up would
 * silently cut strings again.
 */
#include "sstr.h"

#include "srv_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSTR_MAGIC 0x5ab7c0deu

typedef struct sstr_hdr {
    uint32_t magic;
    int32_t len;
} sstr_hdr;

static const sstr_hdr *hdr_of(const char *s)
{
    const sstr_hdr *h = (const sstr_hdr *)(const void *)(s - sizeof(sstr_hdr));
    SRV_ASSERT(h->magic == SSTR_MAGIC,
               "sstr: %p is not a length-keeping string (freed, or from malloc/strdup)", (const void *)s);
    return h;
}

static char *sdup(const char *p, int32_t len)
{
    sstr_hdr *h = malloc(sizeof(sstr_hdr) + (size_t)len + 1);
    if (!h)
        return NULL;
    h->magic = SSTR_MAGIC;
    h->len = len;
    char *s = (char *)(h + 1);
    if (len)
        memcpy(s, p, (size_t)len);
    s[len] = 0;
    return s;
}

char *srv_sdup(kp_str s)
{
    return s.len < 0 ? NULL : sdup(s.p, s.len);
}

char *srv_sdupz(const char *z)
{
    return z ? sdup(z, (int32_t)strlen(z)) : NULL;
}

char *srv_sdupc(const char *s)
{
    return s ? sdup(s, srv_slen(s)) : NULL;
}

char *srv_cdup(kp_str s)
{
    if (s.len < 0)
        return NULL;
    char *p = malloc((size_t)s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.p, (size_t)s.len);
        p[s.len] = 0;
    }
    return p;
}

void srv_sfree(char *s)
{
    if (!s)
        return;
    sstr_hdr *h = (sstr_hdr *)(void *)(s - sizeof(sstr_hdr));
    (void)hdr_of(s);
    h->magic = 0; /* a second free, or a use after it, stops at hdr_of */
    free(h);
}

int32_t srv_slen(const char *s)
{
    return hdr_of(s)->len;
}

kp_str srv_s(const char *s)
{
    return s ? (kp_str){s, srv_slen(s)} : KP_STR_NULL;
}

int srv_seq(kp_str a, const char *s)
{
    if (!s)
        return a.len < 0;
    int32_t n = srv_slen(s);
    return a.len == n && (n == 0 || memcmp(a.p, s, (size_t)n) == 0);
}

int srv_scmp(const char *a, const char *b)
{
    int32_t la = srv_slen(a), lb = srv_slen(b);
    int c = memcmp(a, b, (size_t)(la < lb ? la : lb));
    return c ? c : (la > lb) - (la < lb);
}

int srv_str_same(kp_str a, kp_str b)
{
    if (a.len < 0 || b.len < 0)
        return a.len < 0 && b.len < 0;
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, (size_t)a.len) == 0);
}

static int str_idx_cmp(const void *pa, const void *pb)
{
    const srv_str_idx *a = pa, *b = pb;
    if (a->s.len < 0 || b->s.len < 0) {
        if (a->s.len < 0 && b->s.len < 0)
            return (a->i > b->i) - (a->i < b->i);
        return a->s.len < 0 ? -1 : 1; /* null first */
    }
    int32_t n = a->s.len < b->s.len ? a->s.len : b->s.len;
    int c = n ? memcmp(a->s.p, b->s.p, (size_t)n) : 0;
    if (c)
        return c;
    if (a->s.len != b->s.len)
        return a->s.len < b->s.len ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i); /* equal names keep request order */
}

void srv_str_mark_dups(srv_str_idx *v, int32_t n, uint8_t *dup)
{
    if (n < 2)
        return;
    qsort(v, (size_t)n, sizeof(*v), str_idx_cmp);
    for (int32_t k = 1; k < n; k++) {
        if (srv_str_same(v[k - 1].s, v[k].s)) {
            if (!dup[v[k - 1].i])
                dup[v[k - 1].i] = 1; /* equal names sort in request order */
            dup[v[k].i] = 2;
        }
    }
}

/*
 * json.c — the strict, bounded JSON reader behind json.h.
 *
 * Owns the grammar checks and the node array. Must not: allocate, trust a
 * length or a depth it was not given, or read past text + len (nothing here
 * assumes a NUL terminator). A recursive descent bounded by max_depth: the
 * documents are small and the bound is the caller's.
 */
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    srv_json *doc;
    const char *p, *end, *start;
    int max_depth;
    char *err;
    size_t errlen;
} parser;

static int fail(parser *ps, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "%s at offset %zu", msg, (size_t)(ps->p - ps->start));
    return -1;
}

static void ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int new_node(parser *ps, int type)
{
    srv_json *d = ps->doc;
    if (d->count == d->cap)
        return fail(ps, "more than %d JSON values", d->cap);
    srv_json_node *n = &d->n[d->count];
    memset(n, 0, sizeof(*n));
    n->type = (uint8_t)type;
    n->first = n->next = -1;
    return d->count++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        n = 2, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        n = 3, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        n = 4, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    unsigned v = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    return n;
}

static int string(parser *ps)
{
    ps->p++; /* the opening quote */
    const char *s = ps->p;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20)
            return fail(ps, "control character in a string");
        if (c == '\\') {
            if (ps->end - ps->p < 2)
                return fail(ps, "unterminated escape");
            char e = ps->p[1];
            if (e == 'u') {
                if (ps->end - ps->p < 6 || hexval(ps->p[2]) < 0 || hexval(ps->p[3]) < 0 ||
                    hexval(ps->p[4]) < 0 || hexval(ps->p[5]) < 0)
                    return fail(ps, "bad \\u escape");
                ps->p += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                ps->p += 2;
            } else {
                return fail(ps, "bad escape");
            }
            continue;
        }
        size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
        if (n == 0)
            return fail(ps, "invalid UTF-8 in a string");
        ps->p += n;
    }
    if (ps->p >= ps->end)
        return fail(ps, "unterminated string");
    int i = new_node(ps, SRV_JSON_STR);
    if (i < 0)
        return -1;
    ps->doc->n[i].p = s;
    ps->doc->n[i].len = (size_t)(ps->p - s);
    ps->p++;
    return i;
}

static int number(parser *ps)
{
    const char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end)
        return fail(ps, "bad number");
    if (*ps->p == '0') {
        ps->p++;
    } else if (*ps->p >= '1' && *ps->p <= '9') {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    } else {
        return fail(ps, "bad number");
    }
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        const char *d = ps->p;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
        if (ps->p == d)
            return fail(ps, "bad number");
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        const char *d = ps->p;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
        if (ps->p == d)
            return fail(ps, "bad number");
    }
    int i = new_node(ps, SRV_JSON_NUM);
    if (i < 0)
        return -1;
    ps->doc->n[i].p = s;
    ps->doc->n[i].len = (size_t)(ps->p - s);
    return i;
}

static int literal(parser *ps, const char *word, int type)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected character");
    ps->p += n;
    return new_node(ps, type);
}

static int same_key(const srv_json *d, int a, int b)
{
    char x[256], y[256];
    size_t xl, yl;
    if (srv_json_str(d, a, x, sizeof(x), &xl) != 0 || srv_json_str(d, b, y, sizeof(y), &yl) != 0)
        return d->n[a].len == d->n[b].len && memcmp(d->n[a].p, d->n[b].p, d->n[a].len) == 0;
    return xl == yl && memcmp(x, y, xl) == 0;
}

static int value(parser *ps, int depth);

static int container(parser *ps, int depth, int obj)
{
    if (depth >= ps->max_depth)
        return fail(ps, "nested deeper than %d", ps->max_depth);
    int i = new_node(ps, obj ? SRV_JSON_OBJ : SRV_JSON_ARR);
    if (i < 0)
        return -1;
    ps->p++;
    ws(ps);
    int last = -1;
    if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
        ps->p++;
        return i;
    }
    for (;;) {
        ws(ps);
        int k = -1;
        if (obj) {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected a member name");
            k = string(ps);
            if (k < 0)
                return -1;
            /* Duplicate names: refused, as jose4j does. */
            for (int m = ps->doc->n[i].first; m >= 0; m = ps->doc->n[ps->doc->n[m].next].next)
                if (same_key(ps->doc, m, k))
                    return fail(ps, "member name repeated");
            ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "expected ':'");
            ps->p++;
        }
        int v = value(ps, depth + 1);
        if (v < 0)
            return -1;
        int head = obj ? k : v;
        if (obj)
            ps->doc->n[k].next = v;
        if (last < 0)
            ps->doc->n[i].first = head;
        else
            ps->doc->n[last].next = head;
        last = v;
        ps->doc->n[i].count++;
        ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            ps->p++;
            return i;
        }
        return fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int value(parser *ps, int depth)
{
    ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end");
    switch (*ps->p) {
    case '{':
        return container(ps, depth, 1);
    case '[':
        return container(ps, depth, 0);
    case '"':
        return string(ps);
    case 't':
        return literal(ps, "true", SRV_JSON_TRUE);
    case 'f':
        return literal(ps, "false", SRV_JSON_FALSE);
    case 'n':
        return literal(ps, "null", SRV_JSON_NULL);
    default:
        return number(ps);
    }
}

int srv_json_parse(srv_json *doc, srv_json_node *nodes, int cap, int max_depth, const char *text, size_t len,
                   char *err, size_t errlen)
{
    doc->n = nodes;
    doc->count = 0;
    doc->cap = cap;
    parser ps = {doc, text, text + len, text, max_depth, err, errlen};
    if (value(&ps, 0) < 0)
        return -1;
    ws(&ps);
    if (ps.p != ps.end)
        return fail(&ps, "text after the JSON value");
    return 0;
}

int srv_json_get(const srv_json *doc, int obj, const char *key, size_t klen)
{
    if (obj < 0 || doc->n[obj].type != SRV_JSON_OBJ)
        return -1;
    char buf[256];
    for (int k = doc->n[obj].first; k >= 0; k = doc->n[doc->n[k].next].next) {
        size_t bl;
        if (srv_json_str(doc, k, buf, sizeof(buf), &bl) == 0 && bl == klen && memcmp(buf, key, klen) == 0)
            return doc->n[k].next;
    }
    return -1;
}

static int put(char *out, size_t cap, size_t *o, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80)
        b[0] = (unsigned char)cp, n = 1;
    else if (cp < 0x800)
        b[0] = (unsigned char)(0xc0 | (cp >> 6)), b[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        b[0] = (unsigned char)(0xe0 | (cp >> 12)), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
        b[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
    else
        b[0] = (unsigned char)(0xf0 | (cp >> 18)), b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f)),
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
    if (*o + n > cap)
        return -1;
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

static unsigned hex4(const char *p)
{
    return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

int srv_json_str(const srv_json *doc, int i, char *out, size_t cap, size_t *outlen)
{
    if (i < 0 || doc->n[i].type != SRV_JSON_STR)
        return -1;
    const char *p = doc->n[i].p, *end = p + doc->n[i].len;
    size_t o = 0;
    while (p < end) {
        if (*p != '\\') {
            if (o == cap)
                return -1;
            out[o++] = *p++;
            continue;
        }
        char e = p[1];
        p += 2;
        unsigned cp;
        switch (e) {
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            cp = hex4(p);
            p += 4;
            /* A surrogate pair becomes one code point; a lone surrogate
             * becomes U+FFFD rather than invalid UTF-8. */
            if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = hex4(p + 2);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0xfffd;
            break;
        default:
            cp = (unsigned char)e; /* " \ / */
        }
        if (put(out, cap, &o, cp) != 0)
            return -1;
    }
    *outlen = o;
    if (o < cap)
        out[o] = '\0';
    return 0;
}

int srv_json_i64(const srv_json *doc, int i, int64_t *v)
{
    if (i < 0 || doc->n[i].type != SRV_JSON_NUM || doc->n[i].len >= 64)
        return -1;
    char buf[64];
    memcpy(buf, doc->n[i].p, doc->n[i].len);
    buf[doc->n[i].len] = '\0';
    /* Integers exactly; others (fractions, exponents) through a double. */
    if (!strpbrk(buf, ".eE")) {
        char *e;
        errno = 0;
        long long x = strtoll(buf, &e, 10);
        if (*e || errno == ERANGE)
            return -1;
        *v = x;
        return 0;
    }
    double d = strtod(buf, NULL);
    if (!(d > -9.2e18 && d < 9.2e18))
        return -1;
    *v = (int64_t)d;
    return 0;
}

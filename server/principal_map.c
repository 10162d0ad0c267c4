/*
 * principal_map.c — Kafka's ssl.principal.mapping.rules (see
 * principal_map.h).
 *
 * Owns: the rule grammar as Kafka's SslPrincipalMapper reads it (its
 * splitter and parser are regular expressions; the hand-written scanner
 * below reproduces what they match, including which text ends up in an
 * "unmatched substring" message) and the evaluation of a DN. Must not: log,
 * read files, or change a parsed map (shards read it concurrently).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "principal_map.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 64

typedef struct rule {
    int is_default;
    int lower, upper;
    pcre2_code *re;
    char *repl;
    size_t repl_len;
} rule;

struct srv_pmap {
    int n;
    rule r[MAX_RULES];
};

/* java.util.regex \s */
static int jws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\x0b' || c == '\f' || c == '\r';
}

/* The splitter's "\s*(,\s*|$)" at k: the end of the delimiter, or 0 with
 * *ok = 0 when there is none. */
static size_t delim_at(const char *s, size_t len, size_t k, int *ok)
{
    size_t j = k;
    while (j < len && jws(s[j]))
        j++;
    if (j == len) {
        *ok = 1;
        return j;
    }
    if (s[j] != ',') {
        *ok = 0;
        return 0;
    }
    j++;
    while (j < len && jws(s[j]))
        j++;
    *ok = 1;
    return j;
}

/* "(\\.|[^\\/])*" from i: the first index it cannot take. */
static size_t rule_part(const char *s, size_t len, size_t i)
{
    while (i < len) {
        if (s[i] == '\\') {
            if (i + 1 >= len)
                break;
            i += 2;
        } else if (s[i] == '/') {
            break;
        } else {
            i++;
        }
    }
    return i;
}

/* RULE:pattern/replacement/[LU] at q: the index after [LU], or 0 when the
 * text does not have that shape. Positions of the parts in *p0.. */
static size_t rule_shape(const char *s, size_t len, size_t q, size_t *p0, size_t *p1, size_t *r0, size_t *r1)
{
    if (len - q < 5 || memcmp(s + q, "RULE:", 5) != 0)
        return 0;
    *p0 = q + 5;
    *p1 = rule_part(s, len, *p0);
    if (*p1 >= len || s[*p1] != '/')
        return 0;
    *r0 = *p1 + 1;
    *r1 = rule_part(s, len, *r0);
    if (*r1 >= len || s[*r1] != '/')
        return 0;
    size_t e = *r1 + 1;
    if (e < len && (s[e] == 'L' || s[e] == 'U'))
        e++;
    return e;
}

/* One item of the list, as Kafka's splitter finds it from p: [*b, *e) is the
 * rule text, the return value where the next search starts. */
static size_t split_next(const char *s, size_t len, size_t p, size_t *b, size_t *e)
{
    while (p < len && jws(s[p]))
        p++;
    int ok = 0;
    size_t end = len;
    if (len - p >= 7 && memcmp(s + p, "DEFAULT", 7) == 0) {
        end = delim_at(s, len, p + 7, &ok);
        if (ok) {
            *b = p;
            *e = p + 7;
            return end;
        }
    }
    size_t p0, p1, r0, r1, k = rule_shape(s, len, p, &p0, &p1, &r0, &r1);
    if (k) {
        /* ".*?" then the delimiter: the first place a delimiter fits. */
        for (; k <= len; k++) {
            end = delim_at(s, len, k, &ok);
            if (ok) {
                *b = p;
                *e = k;
                return end;
            }
        }
    }
    for (k = p; k <= len; k++) {
        end = delim_at(s, len, k, &ok);
        if (ok)
            break;
    }
    *b = p;
    *e = k;
    return end;
}

static void free_rule(rule *r)
{
    pcre2_code_free(r->re);
    free(r->repl);
}

void srv_pmap_free(srv_pmap *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++)
        free_rule(&m->r[i]);
    free(m);
}

int srv_pmap_count(const srv_pmap *m)
{
    return m->n;
}

static srv_pmap *bad(srv_pmap *m, char *err, size_t errlen, const char *r, size_t rl, size_t at,
                     const char *why)
{
    if (why)
        snprintf(err, errlen, "Invalid rule: `%.*s`, %s", (int)rl, r, why);
    else
        snprintf(err, errlen, "Invalid rule: `%.*s`, unmatched substring: `%.*s`", (int)rl, r, (int)(rl - at),
                 r + at);
    srv_pmap_free(m);
    return NULL;
}

srv_pmap *srv_pmap_parse(const char *s, size_t len, char *err, size_t errlen)
{
    srv_pmap *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory parsing ssl.principal.mapping.rules");
        return NULL;
    }
    /* String.trim(): every char up to ' ' */
    while (len && (unsigned char)s[0] <= ' ')
        s++, len--;
    while (len && (unsigned char)s[len - 1] <= ' ')
        len--;
    if (len == 0) {
        m->r[m->n++].is_default = 1;
        return m;
    }
    size_t p = 0;
    for (;;) {
        size_t b, e, next = split_next(s, len, p, &b, &e);
        const char *r = s + b;
        size_t rl = e - b;
        if (rl) {
            size_t p0, p1, r0, r1, at = 0;
            int is_default = 0;
            if (rl >= 7 && memcmp(r, "DEFAULT", 7) == 0) {
                at = 7;
                is_default = 1;
            } else {
                at = rule_shape(r, rl, 0, &p0, &p1, &r0, &r1);
            }
            if (at != rl)
                return bad(m, err, errlen, r, rl, at, NULL);
            if (m->n == MAX_RULES)
                return bad(m, err, errlen, r, rl, at, "more than 64 rules");
            rule *ru = &m->r[m->n];
            if (is_default) {
                ru->is_default = 1;
            } else {
                int ec;
                PCRE2_SIZE eo;
                ru->re = pcre2_compile((PCRE2_SPTR)(r + p0), p1 - p0, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                       &ec, &eo, NULL);
                if (!ru->re) {
                    char msg[160], why[220];
                    pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
                    snprintf(why, sizeof(why), "pattern error at offset %zu: %s", (size_t)eo, msg);
                    return bad(m, err, errlen, r, rl, at, why);
                }
                /* Java's replacement syntax: a backslash takes the next
                 * character literally; PCRE2's literal '$' is "$$". */
                ru->repl = malloc(2 * (r1 - r0) + 1);
                if (!ru->repl) {
                    pcre2_code_free(ru->re);
                    return bad(m, err, errlen, r, rl, at, "out of memory");
                }
                size_t o = 0;
                for (size_t i = r0; i < r1; i++) {
                    char c = r[i];
                    if (c == '\\' && i + 1 < r1) {
                        c = r[++i];
                        if (c == '$')
                            ru->repl[o++] = '$';
                    }
                    ru->repl[o++] = c;
                }
                ru->repl[o] = '\0';
                ru->repl_len = o;
                char flag = r1 + 1 < rl ? r[r1 + 1] : 0;
                ru->lower = flag == 'L';
                ru->upper = flag == 'U';
            }
            m->n++;
        }
        if (next >= len)
            break;
        p = next;
    }
    return m;
}

/* Locale.ENGLISH case mapping, ASCII letters only (see docs/security.md). */
static void fold(char *s, size_t n, int upper)
{
    for (size_t i = 0; i < n; i++) {
        if (upper && s[i] >= 'a' && s[i] <= 'z')
            s[i] = (char)(s[i] - 'a' + 'A');
        else if (!upper && s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
    }
}

int srv_pmap_apply(const srv_pmap *m, const char *dn, size_t dnlen, char *out, size_t cap, size_t *outlen)
{
    for (int i = 0; i < m->n; i++) {
        const rule *r = &m->r[i];
        if (r->is_default) {
            if (dnlen + 1 > cap)
                return -1;
            memcpy(out, dn, dnlen);
            out[dnlen] = '\0';
            *outlen = dnlen;
            return 0;
        }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->re, NULL);
        if (!md)
            return -1;
        /* Matcher.matches(): the whole DN. */
        int rc = pcre2_match(r->re, (PCRE2_SPTR)dn, dnlen, 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, md, NULL);
        pcre2_match_data_free(md);
        if (rc < 0)
            continue;
        /* String.replaceAll(pattern, replacement): every match, $n groups,
         * an unset group as "". */
        PCRE2_SIZE olen = cap;
        rc = pcre2_substitute(r->re, (PCRE2_SPTR)dn, dnlen, 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_UNSET_EMPTY, NULL, NULL,
                              (PCRE2_SPTR)r->repl, r->repl_len, (PCRE2_UCHAR *)out, &olen);
        if (rc < 0)
            return -1;
        if (r->lower || r->upper)
            fold(out, olen, r->upper);
        *outlen = olen;
        return 0;
    }
    return -1;
}

/*
 * topic_regex.c — RE2/J's syntax checked by hand, PCRE2 for the matching
 * (see topic_regex.h).
 *
 * Owns: the RE2 grammar as far as it decides acceptance (what PCRE2 takes
 * and RE2 refuses: backreferences, lookaround, atomic groups, possessive and
 * nested quantifiers, Perl/PCRE escapes, verbs, extra flags) and the
 * descriptions RE2/J gives, as Apache Kafka 4.4 answers them. Must not:
 * hand PCRE2 a pattern the checker did not accept, or match without the
 * match limit (the DFA matcher first: linear, as RE2).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "topic_regex.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* RE2/J's error texts (com.google.re2j.PatternSyntaxException descriptions). */
static const char E_PAREN[] = "missing closing )";
/* RE2/J answers an unopened ')' with this rather than "unexpected )". */
static const char E_UNOPENED[] = "regexp/syntax: internal error";
static const char E_BRACKET[] = "missing closing ]";
static const char E_REPEAT_ARG[] = "missing argument to repetition operator";
static const char E_NESTED[] = "invalid nested repetition operator";
static const char E_ESCAPE[] = "invalid escape sequence";
static const char E_TRAILING[] = "trailing backslash at end of expression";
static const char E_PERL[] = "invalid or unsupported Perl syntax";
static const char E_NAMED[] = "invalid named capture";
static const char E_DUP_NAME[] = "duplicate capture group name";
static const char E_COUNT[] = "invalid repeat count";
static const char E_RANGE[] = "invalid character class range";
static const char E_UTF8[] = "invalid UTF-8";

struct srv_topic_regex {
    pcre2_code *re;
    pcre2_match_context *mctx;
};

/* The code point at p[*i] (advanced past it), or -1 for invalid UTF-8. */
static int32_t utf8_next(const unsigned char *p, int32_t n, int32_t *i)
{
    unsigned char c = p[*i];
    int len;
    int32_t cp;
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return -1;
    }
    if (*i + len > n)
        return -1;
    for (int k = 1; k < len; k++) {
        if ((p[*i + k] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[*i + k] & 0x3F);
    }
    static const int32_t min_of[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_of[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *i += len;
    return cp;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_word(unsigned char c)
{
    return is_alnum(c) || c == '_';
}

/* \p / \P at p[i] == 'p' or 'P'; *i advanced past the property. */
static const char *property(const unsigned char *p, int32_t n, int32_t *i)
{
    int32_t j = *i + 1;
    if (j >= n)
        return E_RANGE;
    if (p[j] != '{') {
        /* One-letter general categories only. */
        if (!memchr("CLMNPSZ", p[j], 7))
            return E_RANGE;
        *i = j + 1;
        return NULL;
    }
    int32_t k = j + 1;
    if (k < n && p[k] == '^')
        k++;
    int32_t start = k;
    while (k < n && (is_alnum(p[k]) || p[k] == '_'))
        k++;
    if (k >= n || p[k] != '}' || k == start)
        return E_RANGE;
    /* Whether the name exists is PCRE2's to say (mapped at compile). */
    *i = k + 1;
    return NULL;
}

/* The escape at p[*i] == '\\' as one character: its value in *cp (-1 for
 * a class such as \d that cannot end a range). in_class: inside [...]. */
static const char *escape(const unsigned char *p, int32_t n, int32_t *i, int in_class, int32_t *cp)
{
    int32_t j = *i + 1;
    if (j >= n)
        return E_TRAILING;
    unsigned char c = p[j];
    *cp = -1;
    if (c == '0') {
        /* Octal: \0 and up to two more octal digits, the same in both. */
        int32_t k = j + 1, v = 0;
        while (k < n && k < j + 3 && p[k] >= '0' && p[k] <= '7')
            v = v * 8 + (p[k++] - '0');
        *cp = v;
        *i = k;
        return NULL;
    }
    if (is_digit(c))
        return E_ESCAPE; /* backreferences (RE2's \1x octal is refused too) */
    if (c == 'x') {
        int32_t k = j + 1, v = 0;
        if (k < n && p[k] == '{') {
            int32_t s = ++k;
            while (k < n && is_hex(p[k]) && v <= 0x10FFFF) {
                v = v * 16 + (is_digit(p[k]) ? p[k] - '0' : (p[k] | 0x20) - 'a' + 10);
                k++;
            }
            if (k >= n || p[k] != '}' || k == s || v > 0x10FFFF)
                return E_ESCAPE;
            k++;
        } else {
            for (int d = 0; d < 2; d++, k++) {
                if (k >= n || !is_hex(p[k]))
                    return E_ESCAPE;
                v = v * 16 + (is_digit(p[k]) ? p[k] - '0' : (p[k] | 0x20) - 'a' + 10);
            }
        }
        *cp = v;
        *i = k;
        return NULL;
    }
    if (c == 'p' || c == 'P') {
        *i = j;
        return property(p, n, i);
    }
    const char *simple = in_class ? "aftnrv" : "aftnrvbBAz";
    if (memchr(simple, c, strlen(simple))) {
        static const char from[] = "aftnrv";
        static const int32_t to[] = {7, 12, 9, 10, 13, 11};
        const char *f = memchr(from, c, 6);
        *cp = f ? to[f - from] : -1;
        *i = j + 1;
        return NULL;
    }
    if (memchr("dDsSwW", c, 6)) {
        *i = j + 1;
        return NULL;
    }
    if (c < 0x80 && !is_alnum(c)) {
        *cp = c;
        *i = j + 1;
        return NULL;
    }
    return E_ESCAPE;
}

static const char *const POSIX[] = {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
                                    "lower", "print", "punct", "space", "upper", "word",  "xdigit"};

/* [:name:] at p[*i] == '['; 1 and *i past it when it is one, 0 when the
 * '[' is a literal, -1 for an unknown name. */
static int posix_class(const unsigned char *p, int32_t n, int32_t *i)
{
    int32_t j = *i + 2;
    if (j + 1 < n && p[j] == '^')
        j++;
    int32_t s = j;
    while (j + 1 < n && !(p[j] == ':' && p[j + 1] == ']'))
        j++;
    if (j + 1 >= n)
        return 0;
    for (size_t k = 0; k < sizeof(POSIX) / sizeof(*POSIX); k++)
        if (strlen(POSIX[k]) == (size_t)(j - s) && memcmp(POSIX[k], p + s, (size_t)(j - s)) == 0) {
            *i = j + 2;
            return 1;
        }
    return -1;
}

/* One class item (a character, or -1 in *cp for \d, \pL, [:alpha:]...). */
static const char *class_item(const unsigned char *p, int32_t n, int32_t *i, int32_t *cp)
{
    if (p[*i] == '[' && *i + 1 < n && p[*i + 1] == ':') {
        int r = posix_class(p, n, i);
        if (r < 0)
            return E_RANGE;
        if (r > 0) {
            *cp = -1;
            return NULL;
        }
    }
    if (p[*i] == '\\')
        return escape(p, n, i, 1, cp);
    if ((*cp = utf8_next(p, n, i)) < 0)
        return E_UTF8;
    return NULL;
}

/* [...] at p[*i] == '['; *i past the closing ']'. */
static const char *char_class(const unsigned char *p, int32_t n, int32_t *i)
{
    int32_t j = *i + 1;
    if (j < n && p[j] == '^')
        j++;
    int first = 1;
    for (;;) {
        if (j >= n)
            return E_BRACKET;
        if (p[j] == ']' && !first)
            break;
        first = 0;
        int32_t lo, hi;
        const char *e = class_item(p, n, &j, &lo);
        if (e)
            return e;
        if (j + 1 < n && p[j] == '-' && p[j + 1] != ']') {
            j++;
            if ((e = class_item(p, n, &j, &hi)) != NULL)
                return e;
            if (lo < 0 || hi < 0 || hi < lo)
                return E_RANGE;
        }
    }
    *i = j + 1;
    return NULL;
}

/* {n}, {n,}, {n,m} at p[*i] == '{': 1 with *i past it (and *bad for counts
 * RE2 refuses), 0 when the brace is a literal. */
static int repeat_count(const unsigned char *p, int32_t n, int32_t *i, int *bad)
{
    int32_t j = *i + 1;
    long lo = 0, hi = -1;
    int32_t s = j;
    while (j < n && is_digit(p[j]) && lo <= SRV_TOPIC_REGEX_MAX_REPEAT)
        lo = lo * 10 + (p[j++] - '0');
    while (j < n && is_digit(p[j]))
        j++;
    if (j == s || j >= n)
        return 0;
    if (p[j] == ',') {
        j++;
        int32_t hs = j;
        long v = 0;
        while (j < n && is_digit(p[j]) && v <= SRV_TOPIC_REGEX_MAX_REPEAT)
            v = v * 10 + (p[j++] - '0');
        while (j < n && is_digit(p[j]))
            j++;
        hi = j == hs ? -2 : v; /* -2: unbounded */
    } else {
        hi = lo;
    }
    if (j >= n || p[j] != '}')
        return 0;
    *i = j + 1;
    *bad = lo > SRV_TOPIC_REGEX_MAX_REPEAT || hi > SRV_TOPIC_REGEX_MAX_REPEAT || (hi >= 0 && hi < lo);
    return 1;
}

/* (? at p[*i]: a named group, a flag group (?flags:...) or flags alone
 * (?flags). *opens: 1 when a group opened. */
static const char *perl_group(const unsigned char *p, int32_t n, int32_t *i, int *opens)
{
    int32_t j = *i + 2;
    if (j < n && (p[j] == '<' || (p[j] == 'P' && j + 1 < n && p[j + 1] == '<'))) {
        int32_t k = p[j] == '<' ? j + 1 : j + 2;
        int32_t s = k;
        while (k < n && is_word(p[k]))
            k++;
        if (k >= n || p[k] != '>' || k == s)
            return E_NAMED; /* also lookbehind (?<= and (?<! */
        *i = k + 1;
        *opens = 1;
        return NULL;
    }
    int minus = 0, before = 0, after = 0;
    for (int32_t k = j; k < n; k++) {
        unsigned char c = p[k];
        if (c == 'i' || c == 'm' || c == 's' || c == 'U') {
            if (minus)
                after++;
            else
                before++;
        } else if (c == '-') {
            if (minus)
                return E_PERL;
            minus = 1;
        } else if (c == ':' || c == ')') {
            if ((minus && after == 0) || (!minus && before == 0 && c == ')'))
                return E_PERL;
            *i = k + 1;
            *opens = c == ':';
            return NULL;
        } else {
            return E_PERL;
        }
    }
    return E_PAREN;
}

/* The RE2 grammar alone; srv_topic_regex_check adds what only PCRE2 knows. */
static const char *syntax(kp_str pattern)
{
    const unsigned char *p = (const unsigned char *)pattern.p;
    int32_t n = pattern.len > 0 ? pattern.len : 0;
    /* What the previous item was: nothing to repeat, an operand, a
     * repetition, a repetition already made non-greedy. */
    enum { NONE, OPERAND, REPEAT, REPEAT_LAZY } prev = NONE;
    int32_t depth = 0;
    int32_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *e = NULL;
        int32_t cp;
        int bad;
        switch (c) {
        case '(':
            if (i + 1 < n && p[i + 1] == '?') {
                int opens = 0;
                if ((e = perl_group(p, n, &i, &opens)) != NULL)
                    return e;
                depth += opens;
            } else {
                depth++;
                i++;
            }
            prev = NONE;
            break;
        case ')':
            if (depth == 0)
                return E_UNOPENED;
            depth--;
            i++;
            prev = OPERAND;
            break;
        case '|':
            i++;
            prev = NONE;
            break;
        case '*':
        case '+':
        case '?':
            if (prev == NONE)
                return E_REPEAT_ARG;
            if (prev == REPEAT_LAZY || (prev == REPEAT && c != '?'))
                return E_NESTED;
            prev = prev == REPEAT ? REPEAT_LAZY : REPEAT;
            i++;
            break;
        case '{':
            if (!repeat_count(p, n, &i, &bad)) {
                i++;
                prev = OPERAND;
                break;
            }
            if (prev == NONE)
                return E_REPEAT_ARG;
            if (prev != OPERAND)
                return E_NESTED;
            if (bad)
                return E_COUNT;
            prev = REPEAT;
            break;
        case '[':
            if ((e = char_class(p, n, &i)) != NULL)
                return e;
            prev = OPERAND;
            break;
        case '\\':
            if (i + 1 < n && p[i + 1] == 'Q') {
                /* Literal text up to \E or the end, as in RE2. */
                int32_t k = i + 2;
                while (k < n && !(p[k] == '\\' && k + 1 < n && p[k + 1] == 'E'))
                    k++;
                if (k > i + 2)
                    prev = OPERAND;
                i = k < n ? k + 2 : n;
                break;
            }
            if ((e = escape(p, n, &i, 0, &cp)) != NULL)
                return e;
            prev = OPERAND;
            break;
        default:
            if (utf8_next(p, n, &i) < 0)
                return E_UTF8;
            prev = OPERAND;
            break;
        }
    }
    return depth > 0 ? E_PAREN : NULL;
}

const char *srv_topic_regex_check(kp_str pattern)
{
    const char *why = NULL;
    srv_topic_regex_free(srv_topic_regex_compile(pattern, &why));
    return why;
}

srv_topic_regex *srv_topic_regex_compile(kp_str pattern, const char **why)
{
    if ((*why = syntax(pattern)) != NULL)
        return NULL;
    srv_topic_regex *r = calloc(1, sizeof(*r));
    if (!r) {
        *why = "out of memory";
        return NULL;
    }
    int ec;
    PCRE2_SIZE off;
    /* RE2's $ is the end of the text (without (?m)); \C is refused above and
     * by PCRE2 too. */
    r->re = pcre2_compile((PCRE2_SPTR)(pattern.len > 0 ? pattern.p : ""),
                          pattern.len > 0 ? (size_t)pattern.len : 0,
                          PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C, &ec, &off, NULL);
    if (!r->re) {
        /* What the checker leaves to PCRE2: property names and duplicate
         * group names; anything else PCRE2 refuses is not RE2 either. */
        *why = ec == PCRE2_ERROR_UNKNOWN_UNICODE_PROPERTY      ? E_RANGE
               : ec == PCRE2_ERROR_DUPLICATE_SUBPATTERN_NAME   ? E_DUP_NAME
               : ec == PCRE2_ERROR_MISSING_CLOSING_PARENTHESIS ? E_PAREN
                                                               : E_PERL;
        free(r);
        return NULL;
    }
    r->mctx = pcre2_match_context_create(NULL);
    if (!r->mctx) {
        srv_topic_regex_free(r);
        *why = "out of memory";
        return NULL;
    }
    pcre2_set_match_limit(r->mctx, SRV_TOPIC_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, SRV_TOPIC_REGEX_MATCH_LIMIT / 10);
    return r;
}

void srv_topic_regex_free(srv_topic_regex *r)
{
    if (!r)
        return;
    pcre2_match_context_free(r->mctx);
    pcre2_code_free(r->re);
    free(r);
}

int srv_topic_regex_match(const srv_topic_regex *r, kp_str name)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return -1;
    /* PCRE2's DFA matcher, not its backtracking one: without backreferences
     * and lookaround (refused above) it tracks every alternative at once, as
     * RE2 does, so time grows with name length x pattern size, never
     * exponentially. Java's matches(): anchored at both ends of the name. A
     * name that is not UTF-8 does not match. */
    int ws[SRV_TOPIC_REGEX_DFA_WORKSPACE];
    PCRE2_SPTR subject = (PCRE2_SPTR)(name.len > 0 ? name.p : "");
    size_t len = name.len > 0 ? (size_t)name.len : 0;
    int rc = pcre2_dfa_match(r->re, subject, len, 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, md, r->mctx, ws,
                             SRV_TOPIC_REGEX_DFA_WORKSPACE);
    /* More states alive at once than the workspace holds (large counted
     * repeats): the backtracking matcher, under the match limit. */
    if (rc == PCRE2_ERROR_DFA_WSSIZE)
        rc = pcre2_match(r->re, subject, len, 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, md, r->mctx);
    pcre2_match_data_free(md);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT)
        return -1;
    return 0;
}

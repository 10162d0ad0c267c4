/*
 * sasl.c — SASL/PLAIN users from a JAAS configuration, and the constant-time
 * check of a PLAIN token.
 *
 * Owns: the JAAS tokenizer (the subset Kafka's JaasConfig accepts for one
 * login module) and the user table. Must not: do I/O, log, or keep
 * passwords in clear: each is kept as its SHA-256, and a token's password
 * is hashed the same way, so comparing is fixed-length and CRYPTO_memcmp
 * makes it independent of where the bytes differ.
 */
#include "sasl.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define PLAIN_MODULE "org.apache.kafka.common.security.plain.PlainLoginModule"

typedef struct plain_user {
    char *name;
    size_t name_len;
    unsigned char pw_sha[SHA256_DIGEST_LENGTH];
} plain_user;

struct srv_plain_users {
    plain_user *u;
    int n, cap;
};

typedef struct lexer {
    const char *p, *end;
} lexer;

static void skip_ws(lexer *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

/* A bare word: anything up to whitespace, '=', ';' or '"'. */
static size_t word(lexer *lx, const char **start)
{
    skip_ws(lx);
    *start = lx->p;
    while (lx->p < lx->end && *lx->p != ' ' && *lx->p != '\t' && *lx->p != '\n' && *lx->p != '\r' &&
           *lx->p != '=' && *lx->p != ';' && *lx->p != '"')
        lx->p++;
    return (size_t)(lx->p - *start);
}

/* A value: "quoted" (backslash escapes the next character, as Java's
 * StreamTokenizer does for \" and \\) or a bare word. Unescaped into out. */
static int value(lexer *lx, char *out, size_t cap, size_t *len)
{
    skip_ws(lx);
    size_t o = 0;
    if (lx->p < lx->end && *lx->p == '"') {
        lx->p++;
        while (lx->p < lx->end && *lx->p != '"') {
            char c = *lx->p++;
            if (c == '\\' && lx->p < lx->end)
                c = *lx->p++;
            if (o + 1 >= cap)
                return -1;
            out[o++] = c;
        }
        if (lx->p >= lx->end)
            return -1;
        lx->p++;
    } else {
        const char *s;
        size_t n = word(lx, &s);
        if (n == 0 || n + 1 > cap)
            return -1;
        memcpy(out, s, n);
        o = n;
    }
    out[o] = '\0';
    *len = o;
    return 0;
}

static int add_user(srv_plain_users *t, const char *name, size_t nl, const char *pw, size_t pl)
{
    for (int i = 0; i < t->n; i++)
        if (t->u[i].name_len == nl && memcmp(t->u[i].name, name, nl) == 0) {
            SHA256((const unsigned char *)pw, pl, t->u[i].pw_sha); /* the last one wins, as in a Map */
            return 0;
        }
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 8;
        plain_user *u = realloc(t->u, (size_t)cap * sizeof(*u));
        if (!u)
            return -1;
        t->u = u;
        t->cap = cap;
    }
    plain_user *u = &t->u[t->n];
    u->name = malloc(nl + 1);
    if (!u->name)
        return -1;
    memcpy(u->name, name, nl);
    u->name[nl] = '\0';
    u->name_len = nl;
    SHA256((const unsigned char *)pw, pl, u->pw_sha);
    t->n++;
    return 0;
}

int srv_jaas_parse_plain(const char *text, size_t len, srv_plain_users **out, char *err, size_t errlen)
{
    *out = NULL;
    lexer lx = {text, text + len};
    const char *s;
    size_t n = word(&lx, &s);
    if (n == 0)
        return srv_cfgk_fail(err, errlen, "JAAS config entry is empty: expected '%s required ...;'",
                             PLAIN_MODULE);
    if (n != sizeof(PLAIN_MODULE) - 1 || memcmp(s, PLAIN_MODULE, n) != 0)
        return srv_cfgk_fail(err, errlen, "JAAS config: login module '%.*s' is not %s",
                             (int)(n > 100 ? 100 : n), s, PLAIN_MODULE);
    n = word(&lx, &s);
    static const char *const flags[] = {"required", "requisite", "sufficient", "optional", NULL};
    int ok = 0;
    for (const char *const *f = flags; *f && !ok; f++)
        ok = n == strlen(*f) && strncasecmp(s, *f, n) == 0;
    if (!ok)
        return srv_cfgk_fail(err, errlen,
                             "JAAS config: invalid control flag '%.*s' (required, requisite, sufficient, "
                             "optional)",
                             (int)(n > 40 ? 40 : n), s);
    srv_plain_users *t = calloc(1, sizeof(*t));
    char *val = malloc(len + 1);
    if (!t || !val) {
        free(t);
        free(val);
        return srv_cfgk_fail(err, errlen, "out of memory");
    }
    int terminated = 0;
    for (;;) {
        skip_ws(&lx);
        if (lx.p < lx.end && *lx.p == ';') {
            lx.p++;
            terminated = 1;
            break;
        }
        if (lx.p >= lx.end)
            break;
        const char *k;
        size_t kl = word(&lx, &k);
        skip_ws(&lx);
        if (kl == 0 || lx.p >= lx.end || *lx.p != '=') {
            srv_cfgk_fail(err, errlen, "JAAS config: expected key=value near '%.*s'",
                          (int)(kl > 40 ? 40 : kl), k);
            goto bad;
        }
        lx.p++;
        size_t vl;
        if (value(&lx, val, len + 1, &vl) != 0) {
            srv_cfgk_fail(err, errlen, "JAAS config: value not specified or unterminated for key '%.*s'",
                          (int)(kl > 60 ? 60 : kl), k);
            goto bad;
        }
        if (kl > 5 && memcmp(k, "user_", 5) == 0 && add_user(t, k + 5, kl - 5, val, vl) != 0) {
            srv_cfgk_fail(err, errlen, "out of memory");
            goto bad;
        }
    }
    skip_ws(&lx);
    if (!terminated || lx.p != lx.end) {
        srv_cfgk_fail(err, errlen,
                      terminated ? "JAAS config: more than one login module entry"
                                 : "JAAS config entry does not end with ';'");
        goto bad;
    }
    free(val);
    *out = t;
    return 0;
bad:
    free(val);
    srv_plain_users_free(t);
    return -1;
}

void srv_plain_users_free(srv_plain_users *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n; i++)
        free(t->u[i].name);
    free(t->u);
    free(t);
}

int srv_plain_users_count(const srv_plain_users *t)
{
    return t ? t->n : 0;
}

int srv_sasl_plain_check(const srv_plain_users *t, const uint8_t *tok, size_t len, char *user, size_t cap,
                         const char **msg)
{
    /* Kafka's PlainSaslServer: exactly three NUL-separated parts. */
    const uint8_t *nul1 = memchr(tok, 0, len);
    const uint8_t *nul2 = nul1 ? memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - tok)) : NULL;
    if (!nul1 || !nul2 || memchr(nul2 + 1, 0, len - (size_t)(nul2 + 1 - tok))) {
        *msg = "Invalid SASL/PLAIN response: expected 3 tokens";
        return -1;
    }
    const uint8_t *authz = tok, *name = nul1 + 1, *pw = nul2 + 1;
    size_t authz_len = (size_t)(nul1 - tok), name_len = (size_t)(nul2 - name),
           pw_len = len - (size_t)(pw - tok);
    if (name_len == 0) {
        *msg = "Authentication failed: username not specified";
        return -1;
    }
    if (pw_len == 0) {
        *msg = "Authentication failed: password not specified";
        return -1;
    }
    unsigned char got[SHA256_DIGEST_LENGTH];
    SHA256(pw, pw_len, got);
    /* An unknown user is compared with a digest no password has, so the
     * answer takes as long as for a wrong password. */
    static const unsigned char nobody[SHA256_DIGEST_LENGTH];
    const unsigned char *want = nobody;
    int found = 0;
    for (int i = 0; t && i < t->n; i++)
        if (t->u[i].name_len == name_len && memcmp(t->u[i].name, name, name_len) == 0) {
            want = t->u[i].pw_sha;
            found = 1;
        }
    int same = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
    if (!found || !same) {
        *msg = "Authentication failed: Invalid username or password";
        return -1;
    }
    if (authz_len && (authz_len != name_len || memcmp(authz, name, name_len) != 0)) {
        *msg = "Authentication failed: Client requested an authorization id that is different from username";
        return -1;
    }
    size_t c = name_len < cap - 1 ? name_len : cap - 1;
    memcpy(user, name, c);
    user[c] = '\0';
    *msg = NULL;
    return 0;
}

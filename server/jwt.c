/*
 * jwt.c — JWS compact tokens, JWKS keys and the claim rules behind jwt.h.
 *
 * Owns the checks Kafka's broker-side validator (jose4j underneath) makes:
 * three base64url sections, a JSON header whose "alg" is an asymmetric
 * algorithm, a verification key chosen by "kid" (or, without one, any key
 * of the algorithm's type), the signature, then the claims: exp and iat
 * required, nbf honoured, the clock skew applied to each, aud and iss when
 * configured, a non-empty subject. Must not: allocate per token beyond the
 * decoded sections (bounded by SRV_JWT_MAX_LEN), or tell a client why a
 * token failed (the caller logs it; the client gets "invalid_token").
 */
#include "jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "json.h"

#define JWKS_MAX_KEYS  64
#define JSON_MAX_NODES 512
#define JSON_MAX_DEPTH 16

typedef struct jwk {
    char kid[128];
    size_t kid_len;
    int has_kid;
    int kty_ec;  /* 0 = RSA, 1 = EC */
    int ec_bits; /* 256, 384, 521 for EC keys */
    EVP_PKEY *key;
} jwk;

struct srv_jwks {
    jwk k[JWKS_MAX_KEYS];
    int n;
};

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int srv_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    if (len % 4 == 1)
        return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* The leftover bits of the last character must be zero (canonical). */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    *outlen = o;
    return 0;
}

/* ---- JWKS ---------------------------------------------------------------- */

/* A base64url member of a JWK, decoded into buf. */
static int jwk_bytes(const srv_json *d, int obj, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    int v = srv_json_get(d, obj, name, strlen(name));
    if (v < 0 || d->n[v].type != SRV_JSON_STR || d->n[v].len == 0)
        return -1;
    return srv_b64url_decode(d->n[v].p, d->n[v].len, buf, cap, len);
}

static EVP_PKEY *key_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) == 1) {
        /* fromdata does not check that an EC point lies on its curve. */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        if (!chk || EVP_PKEY_public_check(chk) != 1) {
            EVP_PKEY_free(pk);
            pk = NULL;
        }
        EVP_PKEY_CTX_free(chk);
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *rsa_key(const srv_json *d, int obj)
{
    uint8_t n[1024], e[16];
    size_t nl, el;
    if (jwk_bytes(d, obj, "n", n, sizeof(n), &nl) != 0 || jwk_bytes(d, obj, "e", e, sizeof(e), &el) != 0)
        return NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pk = key_from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pk;
}

static EVP_PKEY *ec_key(const srv_json *d, int obj, int *bits)
{
    int c = srv_json_get(d, obj, "crv", 3);
    char crv[16];
    size_t cl;
    if (c < 0 || srv_json_str(d, c, crv, sizeof(crv) - 1, &cl) != 0)
        return NULL;
    crv[cl] = '\0';
    const char *group;
    size_t coord;
    if (strcmp(crv, "P-256") == 0)
        group = "P-256", coord = 32, *bits = 256;
    else if (strcmp(crv, "P-384") == 0)
        group = "P-384", coord = 48, *bits = 384;
    else if (strcmp(crv, "P-521") == 0)
        group = "P-521", coord = 66, *bits = 521;
    else
        return NULL;
    uint8_t pub[1 + 2 * 66], x[66], y[66];
    size_t xl, yl;
    if (jwk_bytes(d, obj, "x", x, sizeof(x), &xl) != 0 || jwk_bytes(d, obj, "y", y, sizeof(y), &yl) != 0 ||
        xl != coord || yl != coord)
        return NULL;
    pub[0] = 0x04; /* uncompressed point */
    memcpy(pub + 1, x, coord);
    memcpy(pub + 1 + coord, y, coord);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * coord))
        pk = key_from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return pk;
}

void srv_jwks_free(srv_jwks *k)
{
    if (!k)
        return;
    for (int i = 0; i < k->n; i++)
        EVP_PKEY_free(k->k[i].key);
    free(k);
}

int srv_jwks_count(const srv_jwks *k)
{
    return k ? k->n : 0;
}

int srv_jwks_parse(const char *text, size_t len, srv_jwks **out, char *err, size_t errlen)
{
    *out = NULL;
    srv_json_node *nodes = malloc(sizeof(*nodes) * JWKS_MAX_KEYS * 16);
    srv_jwks *ks = calloc(1, sizeof(*ks));
    if (!nodes || !ks) {
        free(nodes);
        free(ks);
        return srv_cfgk_fail(err, errlen, "out of memory");
    }
    srv_json d;
    char jerr[200];
    int rc = -1;
    if (srv_json_parse(&d, nodes, JWKS_MAX_KEYS * 16, JSON_MAX_DEPTH, text, len, jerr, sizeof(jerr)) != 0) {
        srv_cfgk_fail(err, errlen, "JWKS is not valid JSON: %s", jerr);
        goto out;
    }
    int keys = srv_json_get(&d, 0, "keys", 4);
    if (keys < 0 || d.n[keys].type != SRV_JSON_ARR) {
        srv_cfgk_fail(err, errlen, "JWKS has no \"keys\" array");
        goto out;
    }
    int idx = 0;
    for (int o = d.n[keys].first; o >= 0; o = d.n[o].next, idx++) {
        if (d.n[o].type != SRV_JSON_OBJ) {
            srv_cfgk_fail(err, errlen, "JWKS key %d is not a JSON object", idx);
            goto out;
        }
        char kty[8] = "", use[8] = "";
        size_t l;
        int v = srv_json_get(&d, o, "kty", 3);
        if (v < 0 || srv_json_str(&d, v, kty, sizeof(kty) - 1, &l) != 0) {
            srv_cfgk_fail(err, errlen, "JWKS key %d has no usable \"kty\"", idx);
            goto out;
        }
        kty[l] = '\0';
        v = srv_json_get(&d, o, "use", 3);
        if (v >= 0 &&
            (srv_json_str(&d, v, use, sizeof(use), &l) != 0 || l != 3 || memcmp(use, "sig", 3) != 0))
            continue; /* an encryption key */
        int is_ec = strcmp(kty, "EC") == 0;
        if (!is_ec && strcmp(kty, "RSA") != 0)
            continue; /* "oct" and "OKP" keys verify nothing Kafka's validator accepts */
        if (ks->n == JWKS_MAX_KEYS) {
            srv_cfgk_fail(err, errlen, "JWKS has more than %d keys", JWKS_MAX_KEYS);
            goto out;
        }
        jwk *k = &ks->k[ks->n];
        k->kty_ec = is_ec;
        k->key = is_ec ? ec_key(&d, o, &k->ec_bits) : rsa_key(&d, o);
        if (!k->key) {
            srv_cfgk_fail(err, errlen, "JWKS key %d: malformed %s public key", idx, kty);
            goto out;
        }
        v = srv_json_get(&d, o, "kid", 3);
        if (v >= 0) {
            if (srv_json_str(&d, v, k->kid, sizeof(k->kid), &k->kid_len) != 0) {
                EVP_PKEY_free(k->key);
                srv_cfgk_fail(err, errlen, "JWKS key %d: \"kid\" is not a string of at most %zu bytes", idx,
                              sizeof(k->kid));
                goto out;
            }
            k->has_kid = 1;
        }
        ks->n++;
    }
    if (ks->n == 0) {
        srv_cfgk_fail(err, errlen, "JWKS holds no RSA or EC signature key");
        goto out;
    }
    *out = ks;
    ks = NULL;
    rc = 0;
out:
    srv_jwks_free(ks);
    free(nodes);
    return rc;
}

/* ---- tokens -------------------------------------------------------------- */

typedef struct alg {
    const char *name;
    int ec, pss, ec_bits;
    const EVP_MD *(*md)(void);
} alg;

static const alg ALGS[] = {
    {"RS256", 0, 0, 0, EVP_sha256},   {"RS384", 0, 0, 0, EVP_sha384},   {"RS512", 0, 0, 0, EVP_sha512},
    {"PS256", 0, 1, 0, EVP_sha256},   {"PS384", 0, 1, 0, EVP_sha384},   {"PS512", 0, 1, 0, EVP_sha512},
    {"ES256", 1, 0, 256, EVP_sha256}, {"ES384", 1, 0, 384, EVP_sha384}, {"ES512", 1, 0, 521, EVP_sha512},
};

/* JWS carries ECDSA signatures as R || S; OpenSSL wants DER. */
static int ecdsa_der(const uint8_t *sig, size_t len, int bits, uint8_t **der, int *der_len)
{
    size_t half = (size_t)(bits + 7) / 8;
    if (len != 2 * half)
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return -1;
    }
    *der = NULL;
    *der_len = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es);
    return *der_len > 0 ? 0 : -1;
}

static int verify(const alg *a, const jwk *k, const uint8_t *data, size_t dlen, const uint8_t *sig,
                  size_t slen)
{
    if (a->ec != k->kty_ec || (a->ec && a->ec_bits != k->ec_bits))
        return -1;
    /* RFC 7518 3.3/3.5: RSA keys of at least 2048 bits (jose4j enforces it). */
    if (!a->ec && EVP_PKEY_get_bits(k->key) < 2048)
        return -1;
    uint8_t *der = NULL;
    int der_len = 0;
    if (a->ec && ecdsa_der(sig, slen, a->ec_bits, &der, &der_len) != 0)
        return -1;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = m && EVP_DigestVerifyInit(m, &pctx, a->md(), NULL, k->key) == 1;
    if (ok && a->pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
    if (ok)
        ok = a->ec ? EVP_DigestVerify(m, der, (size_t)der_len, data, dlen) == 1
                   : EVP_DigestVerify(m, sig, slen, data, dlen) == 1;
    EVP_MD_CTX_free(m);
    OPENSSL_free(der);
    return ok ? 0 : -1;
}

/* A base64url section decoded into a fresh buffer. */
static uint8_t *section(const char *p, size_t len, size_t *outlen)
{
    uint8_t *b = malloc(len / 4 * 3 + 3);
    if (b && srv_b64url_decode(p, len, b, len / 4 * 3 + 3, outlen) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

/* NumericDate claim in milliseconds: 1 = present, 0 = absent, -1 = not a number. */
static int date_claim(const srv_json *d, const char *name, int64_t *ms)
{
    int v = srv_json_get(d, 0, name, strlen(name));
    if (v < 0)
        return 0;
    int64_t s;
    if (srv_json_i64(d, v, &s) != 0 || s > INT64_MAX / 1000 || s < INT64_MIN / 1000)
        return -1;
    *ms = s * 1000;
    return 1;
}

static int check_claims(const srv_json *d, const srv_jwt_rules *r, srv_jwt_claims *out, char *why, size_t wl)
{
    if (d->n[0].type != SRV_JSON_OBJ)
        return srv_cfgk_fail(why, wl, "the JWT claims are not a JSON object");
    int64_t exp = 0, iat = 0, nbf = 0, skew = r->skew_s * 1000;
    int has_exp = date_claim(d, "exp", &exp), has_iat = date_claim(d, "iat", &iat),
        has_nbf = date_claim(d, "nbf", &nbf);
    if (has_exp < 0 || has_iat < 0 || has_nbf < 0)
        return srv_cfgk_fail(why, wl, "exp, iat or nbf is not a NumericDate");
    if (!has_exp)
        return srv_cfgk_fail(why, wl, "no Expiration Time (exp) claim present");
    if (!has_iat)
        return srv_cfgk_fail(why, wl, "no Issued At (iat) claim present");
    if (r->now_ms - skew >= exp)
        return srv_cfgk_fail(why, wl, "the JWT is no longer valid: exp %lld s, now %lld s (skew %lld s)",
                             (long long)(exp / 1000), (long long)(r->now_ms / 1000), (long long)r->skew_s);
    if (has_nbf && r->now_ms + skew < nbf)
        return srv_cfgk_fail(why, wl, "the JWT is not yet valid: nbf %lld s, now %lld s (skew %lld s)",
                             (long long)(nbf / 1000), (long long)(r->now_ms / 1000), (long long)r->skew_s);
    if (r->issuer) {
        int v = srv_json_get(d, 0, "iss", 3);
        char iss[512];
        size_t il;
        if (v < 0)
            return srv_cfgk_fail(why, wl, "no Issuer (iss) claim present");
        if (srv_json_str(d, v, iss, sizeof(iss), &il) != 0 || il != strlen(r->issuer) ||
            memcmp(iss, r->issuer, il) != 0)
            return srv_cfgk_fail(why, wl, "Issuer (iss) claim does not match the expected issuer %s",
                                 r->issuer);
    }
    /* jose4j's default: without expected audiences a token naming any
     * audience is refused; one without aud passes. */
    int av = srv_json_get(d, 0, "aud", 3);
    if (av >= 0 && r->n_audiences == 0)
        return srv_cfgk_fail(
            why, wl, "Audience (aud) claim present but no sasl.oauthbearer.expected.audience configured");
    if (r->n_audiences > 0) {
        int v = av, match = 0;
        if (v < 0)
            return srv_cfgk_fail(why, wl, "no Audience (aud) claim present");
        int first = d->n[v].type == SRV_JSON_ARR ? d->n[v].first : v;
        for (int e = first; e >= 0 && !match; e = d->n[v].type == SRV_JSON_ARR ? d->n[e].next : -1) {
            char aud[512];
            size_t al;
            if (srv_json_str(d, e, aud, sizeof(aud), &al) != 0)
                return srv_cfgk_fail(why, wl, "Audience (aud) claim is not a string or an array of strings");
            for (int i = 0; i < r->n_audiences && !match; i++)
                match = al == strlen(r->audiences[i]) && memcmp(aud, r->audiences[i], al) == 0;
        }
        if (!match)
            return srv_cfgk_fail(why, wl, "Audience (aud) claim does not contain an expected audience");
    }
    int v = srv_json_get(d, 0, r->sub_claim, strlen(r->sub_claim));
    if (v < 0 || srv_json_str(d, v, out->sub, sizeof(out->sub) - 1, &out->sub_len) != 0)
        return srv_cfgk_fail(why, wl, "no usable subject claim '%s' (a string)", r->sub_claim);
    /* Kafka trims the subject as Java's String.trim() does (bytes <= 0x20). */
    size_t b = 0, e = out->sub_len;
    while (b < e && (unsigned char)out->sub[b] <= 0x20)
        b++;
    while (e > b && (unsigned char)out->sub[e - 1] <= 0x20)
        e--;
    if (b == e)
        return srv_cfgk_fail(why, wl, "subject claim '%s' is empty", r->sub_claim);
    memmove(out->sub, out->sub + b, e - b);
    out->sub_len = e - b;
    out->sub[out->sub_len] = '\0';
    out->exp_ms = exp;
    out->iat_ms = iat;
    out->scope[0] = '\0';
    v = srv_json_get(d, 0, r->scope_claim, strlen(r->scope_claim));
    if (v >= 0) {
        size_t o = 0;
        int first = d->n[v].type == SRV_JSON_ARR ? d->n[v].first : v;
        for (int e = first; e >= 0; e = d->n[v].type == SRV_JSON_ARR ? d->n[e].next : -1) {
            size_t l;
            if (d->n[e].type != SRV_JSON_STR)
                continue;
            if (o && o + 1 < sizeof(out->scope))
                out->scope[o++] = ' ';
            if (srv_json_str(d, e, out->scope + o, sizeof(out->scope) - 1 - o, &l) != 0)
                return srv_cfgk_fail(why, wl, "scope claim '%s' is too long", r->scope_claim);
            o += l;
        }
        out->scope[o] = '\0';
    }
    return 0;
}

int srv_jwt_validate(const srv_jwks *keys, const char *tok, size_t len, const srv_jwt_rules *r,
                     srv_jwt_claims *out, char *why, size_t wl)
{
    if (len > SRV_JWT_MAX_LEN)
        return srv_cfgk_fail(why, wl, "the JWT is %zu bytes, more than %d", len, SRV_JWT_MAX_LEN);
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return srv_cfgk_fail(why, wl,
                             "malformed JWT: expected three sections (header, payload, and signature)");
    size_t hl, pl, sl;
    uint8_t *hdr = section(tok, (size_t)(d1 - tok), &hl);
    uint8_t *pay = section(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
    uint8_t *sig = section(d2 + 1, len - (size_t)(d2 + 1 - tok), &sl);
    srv_json_node *nodes = malloc(sizeof(*nodes) * JSON_MAX_NODES);
    int rc = -1;
    srv_json d;
    char jerr[200];
    if (!nodes) {
        srv_cfgk_fail(why, wl, "out of memory");
        goto out;
    }
    if (!hdr || !pay || !sig) {
        srv_cfgk_fail(why, wl, "malformed JWT: a section is not base64url");
        goto out;
    }
    if (srv_json_parse(&d, nodes, JSON_MAX_NODES, JSON_MAX_DEPTH, (const char *)hdr, hl, jerr,
                       sizeof(jerr)) != 0 ||
        d.n[0].type != SRV_JSON_OBJ) {
        srv_cfgk_fail(why, wl, "malformed JWT header: %s", d.count ? jerr : "not an object");
        goto out;
    }
    char name[16];
    size_t nl;
    int v = srv_json_get(&d, 0, "alg", 3);
    if (v < 0 || srv_json_str(&d, v, name, sizeof(name) - 1, &nl) != 0) {
        srv_cfgk_fail(why, wl, "JWT header has no usable \"alg\"");
        goto out;
    }
    name[nl] = '\0';
    const alg *a = NULL;
    for (size_t i = 0; i < sizeof(ALGS) / sizeof(ALGS[0]) && !a; i++)
        if (strcmp(ALGS[i].name, name) == 0)
            a = &ALGS[i];
    if (!a) {
        srv_cfgk_fail(
            why, wl, "JWT algorithm '%s' is not allowed (RS256/384/512, PS256/384/512, ES256/384/512)", name);
        goto out;
    }
    if (srv_json_get(&d, 0, "crit", 4) >= 0) {
        srv_cfgk_fail(why, wl, "JWT header has critical extensions this broker does not understand");
        goto out;
    }
    char kid[SRV_JWT_MAX_KID];
    size_t kl = 0;
    v = srv_json_get(&d, 0, "kid", 3);
    if (v >= 0 && srv_json_str(&d, v, kid, sizeof(kid), &kl) != 0) {
        srv_cfgk_fail(why, wl, "JWT header \"kid\" is not a string of at most %zu bytes", sizeof(kid));
        goto out;
    }
    int tried = 0, good = 0, named = 0;
    for (int i = 0; i < keys->n && !good; i++) {
        const jwk *k = &keys->k[i];
        if (v >= 0 && (!k->has_kid || k->kid_len != kl || memcmp(k->kid, kid, kl) != 0))
            continue;
        named++;
        if (k->kty_ec != a->ec)
            continue;
        tried++;
        good = verify(a, k, (const uint8_t *)tok, (size_t)(d2 - tok), sig, sl) == 0;
    }
    if (!tried) {
        if (v >= 0) {
            srv_cfgk_fail(why, wl, "no %s key with kid '%.*s' in the JWKS", a->ec ? "EC" : "RSA", (int)kl,
                          kid);
            if (!named) { /* a key of another type under this kid is not a rotation */
                memcpy(out->missing_kid, kid, kl);
                out->missing_kid_len = kl;
                rc = SRV_JWT_E_UNKNOWN_KID;
            }
        } else
            srv_cfgk_fail(why, wl, "no %s key in the JWKS for a JWT without kid", a->ec ? "EC" : "RSA");
        goto out;
    }
    if (!good) {
        srv_cfgk_fail(why, wl, "JWS signature (%s) is invalid", a->name);
        goto out;
    }
    if (srv_json_parse(&d, nodes, JSON_MAX_NODES, JSON_MAX_DEPTH, (const char *)pay, pl, jerr,
                       sizeof(jerr)) != 0) {
        srv_cfgk_fail(why, wl, "malformed JWT claims: %s", jerr);
        goto out;
    }
    rc = check_claims(&d, r, out, why, wl);
out:
    free(hdr);
    free(pay);
    free(sig);
    free(nodes);
    return rc;
}

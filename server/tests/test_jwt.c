/*
 * test_jwt.c — unit tests of server/json.c and server/jwt.c: the strict JSON
 * reader, base64url, JWKS parsing, JWS signatures with RSA and EC keys made
 * here, and the claim rules of Kafka's broker-side validator.
 *
 * Owns nothing outside the process. Must not: depend on files, the network
 * or the clock (every check passes its own "now").
 */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jwt.h"
#include "kb_test.h"

#define NOW_S 1800000000LL

/* ---- helpers ---------------------------------------------------------------- */

static size_t b64u(const uint8_t *in, size_t len, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = A[(acc >> bits) & 63];
        }
    }
    if (bits)
        out[o++] = A[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return o;
}

static EVP_PKEY *rsa_key, *rsa_other, *ec_key, *ec384_key;
static char jwks_text[8192];

static void bn_b64u(EVP_PKEY *k, const char *name, char *out)
{
    BIGNUM *bn = NULL;
    CU_ASSERT_FATAL(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
    uint8_t buf[600];
    int n = BN_bn2bin(bn, buf);
    b64u(buf, (size_t)n, out);
    BN_free(bn);
}

static void ec_xy(EVP_PKEY *k, size_t coord, char *x, char *y)
{
    uint8_t pub[200];
    size_t pl = 0;
    CU_ASSERT_FATAL(
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof(pub), &pl) == 1);
    CU_ASSERT_FATAL(pl == 1 + 2 * coord && pub[0] == 4);
    b64u(pub + 1, coord, x);
    b64u(pub + 1 + coord, coord, y);
}

static int setup(void)
{
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec384_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    return rsa_key && rsa_other && ec_key && ec384_key ? 0 : -1;
}

/* The JWKS of the keys made in setup (built inside a test: it asserts). */
static void build_jwks(void)
{
    if (jwks_text[0])
        return;
    char n[600], e[16], x[100], y[100], x3[100], y3[100];
    bn_b64u(rsa_key, OSSL_PKEY_PARAM_RSA_N, n);
    bn_b64u(rsa_key, OSSL_PKEY_PARAM_RSA_E, e);
    ec_xy(ec_key, 32, x, y);
    ec_xy(ec384_key, 48, x3, y3);
    snprintf(jwks_text, sizeof(jwks_text),
             "{\"keys\":["
             "{\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
             "{\"kty\":\"EC\",\"kid\":\"e3\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\"},"
             "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"c2VjcmV0\"},"
             "{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"%s\",\"e\":\"%s\"}]}",
             n, e, x, y, x3, y3, n, e);
}

static void teardown(void)
{
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec384_key);
}

/* A compact JWS of header and claims (JSON text) signed with k by alg. */
static char *sign(const char *alg, EVP_PKEY *k, const char *header, const char *claims)
{
    char *tok = malloc(8192);
    size_t o = b64u((const uint8_t *)header, strlen(header), tok);
    tok[o++] = '.';
    o += b64u((const uint8_t *)claims, strlen(claims), tok + o);
    size_t signed_len = o;
    tok[o++] = '.';
    tok[o] = '\0';
    if (!k)
        return tok;
    const EVP_MD *md = strstr(alg, "384") ? EVP_sha384() : strstr(alg, "512") ? EVP_sha512() : EVP_sha256();
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    CU_ASSERT_FATAL(EVP_DigestSignInit(m, &pctx, md, NULL, k) == 1);
    if (alg[0] == 'P') {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    uint8_t sig[1024];
    size_t sl = sizeof(sig);
    CU_ASSERT_FATAL(EVP_DigestSign(m, sig, &sl, (const uint8_t *)tok, signed_len) == 1);
    EVP_MD_CTX_free(m);
    if (alg[0] == 'E') {
        /* DER to R || S */
        const uint8_t *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
        int half = strstr(alg, "384") ? 48 : 32;
        uint8_t rs[96];
        BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, half);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + half, half);
        ECDSA_SIG_free(es);
        memcpy(sig, rs, (size_t)(2 * half));
        sl = (size_t)(2 * half);
    }
    b64u(sig, sl, tok + o);
    return tok;
}

static char *claims_token(const char *alg, EVP_PKEY *k, const char *kid, const char *claims)
{
    char header[200];
    if (kid)
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
    else
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    return sign(alg, k, header, claims);
}

static const char *const AUDS[] = {"other", "kafka"};

static srv_jwt_rules rules(void)
{
    srv_jwt_rules r = {AUDS, 2, "https://iss", "sub", "scope", 30, NOW_S * 1000};
    return r;
}

static char good_claims[512];

static const char *claims_ok(void)
{
    snprintf(good_claims, sizeof(good_claims),
             "{\"sub\":\"alice\",\"iss\":\"https://iss\",\"aud\":[\"x\",\"kafka\"],\"iat\":%lld,\"exp\":%lld,"
             "\"scope\":\"read write\"}",
             NOW_S - 10, NOW_S + 600);
    return good_claims;
}

static srv_jwks *jwks(void)
{
    build_jwks();
    srv_jwks *k = NULL;
    char err[300] = "";
    int rc = srv_jwks_parse(jwks_text, strlen(jwks_text), &k, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "\nJWKS: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    return k;
}

/* Validates tok; returns the rc and leaves the reason in why. */
static int check(const srv_jwks *k, const char *tok, const srv_jwt_rules *r, srv_jwt_claims *c, char *why)
{
    return srv_jwt_validate(k, tok, strlen(tok), r, c, why, 300);
}

/* ---- JSON ------------------------------------------------------------------- */

static void test_json_strict(void)
{
    srv_json_node nodes[64];
    srv_json d;
    char err[200];
    static const char *const good[] = {
        "{}",
        "[]",
        "0",
        "-1.5e3",
        "\"a\\u00e9\\ud83d\\ude00\"",
        " {\"a\" : [1, true, false, null, {\"b\":\"c\"}]} ",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = srv_json_parse(&d, nodes, 64, 8, good[i], strlen(good[i]), err, sizeof(err));
        if (rc)
            fprintf(stderr, "\n'%s': %s\n", good[i], err);
        CU_ASSERT_EQUAL(rc, 0);
    }
    static const char *const bad[] = {
        "",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        "-",
        "\"\x01\"",
        "\"\\x\"",
        "\"\\u12g4\"",
        "{\"a\":1}x",
        "{a:1}",
        "\"\xc3\x28\"",
        "tru",
        "[1 2]",
        "{\"a\":1,\"a\":2}",
        "\"\xed\xa0\x80\"",
        "[[[[[[[[[1]]]]]]]]]",
        "'a'",
        "{\"a\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = srv_json_parse(&d, nodes, 64, 8, bad[i], strlen(bad[i]), err, sizeof(err));
        if (rc == 0)
            fprintf(stderr, "\naccepted bad JSON #%zu '%s'\n", i, bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
    }
    /* Node budget. */
    CU_ASSERT_EQUAL(srv_json_parse(&d, nodes, 3, 8, "[1,2,3]", 7, err, sizeof(err)), -1);
    /* Explicit length: a NUL inside a string is a control character, bytes past len are not read. */
    CU_ASSERT_EQUAL(srv_json_parse(&d, nodes, 64, 8, "\"a\0b\"", 5, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(srv_json_parse(&d, nodes, 64, 8, "[1]GARBAGE", 3, err, sizeof(err)), 0);
    /* Lookup, unescaping, numbers. */
    const char *t = "{\"k\\u0065y\":\"v\\n\\u00e9\",\"n\":1700000000.9,\"big\":99999999999999999999}";
    CU_ASSERT_EQUAL_FATAL(srv_json_parse(&d, nodes, 64, 8, t, strlen(t), err, sizeof(err)), 0);
    int v = srv_json_get(&d, 0, "key", 3);
    char out[16];
    size_t ol;
    CU_ASSERT_EQUAL_FATAL(srv_json_str(&d, v, out, sizeof(out), &ol), 0);
    CU_ASSERT_EQUAL(ol, 4);
    CU_ASSERT_EQUAL(memcmp(out, "v\n\xc3\xa9", 4), 0);
    CU_ASSERT_EQUAL(srv_json_str(&d, v, out, 3, &ol), -1);
    int64_t x;
    CU_ASSERT_EQUAL(srv_json_i64(&d, srv_json_get(&d, 0, "n", 1), &x), 0);
    CU_ASSERT_EQUAL(x, 1700000000);
    CU_ASSERT_EQUAL(srv_json_i64(&d, srv_json_get(&d, 0, "big", 3), &x), -1);
    CU_ASSERT_EQUAL(srv_json_get(&d, 0, "missing", 7), -1);
}

/* ---- base64url -------------------------------------------------------------- */

static void test_b64url(void)
{
    uint8_t out[32];
    size_t n;
    CU_ASSERT_EQUAL(srv_b64url_decode("aGVsbG8", 7, out, sizeof(out), &n), 0);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_EQUAL(memcmp(out, "hello", 5), 0);
    CU_ASSERT_EQUAL(srv_b64url_decode("-_8", 3, out, sizeof(out), &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(out[0], 0xfb);
    CU_ASSERT_EQUAL(out[1], 0xff);
    CU_ASSERT_EQUAL(srv_b64url_decode("", 0, out, sizeof(out), &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(srv_b64url_decode("aGVsbG8=", 8, out, sizeof(out), &n), -1); /* padding */
    CU_ASSERT_EQUAL(srv_b64url_decode("a+b/", 4, out, sizeof(out), &n), -1);     /* base64, not url */
    CU_ASSERT_EQUAL(srv_b64url_decode("a", 1, out, sizeof(out), &n), -1);        /* impossible length */
    CU_ASSERT_EQUAL(srv_b64url_decode("aGVsbG9", 7, out, 4, &n), -1);            /* does not fit */
    CU_ASSERT_EQUAL(srv_b64url_decode("aGVsbG8=", 7, out, sizeof(out), &n), 0);  /* explicit length */
    CU_ASSERT_EQUAL(srv_b64url_decode("aGVsbG9", 7, out, sizeof(out), &n), -1);  /* non-zero trailing bits */
    CU_ASSERT_EQUAL(srv_b64url_decode("aGVsbG-", 7, out, sizeof(out), &n), -1);
}

/* ---- JWKS ------------------------------------------------------------------- */

static void test_jwks(void)
{
    srv_jwks *k = jwks();
    CU_ASSERT_EQUAL(srv_jwks_count(k), 3); /* the oct and the enc keys are skipped */
    srv_jwks_free(k);
    static const char *const bad[] = {
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB\"}]}", /* not on the curve */
        "{\"keys\":[1]}",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[300] = "";
        srv_jwks *x = (srv_jwks *)1;
        CU_ASSERT_EQUAL(srv_jwks_parse(bad[i], strlen(bad[i]), &x, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NULL(x);
        CU_ASSERT(err[0] != '\0');
    }
}

/* ---- tokens ----------------------------------------------------------------- */

static void test_signatures(void)
{
    srv_jwks *k = jwks();
    srv_jwt_rules r = rules();
    srv_jwt_claims c;
    char why[300];
    static const struct {
        const char *alg, *kid;
        int which; /* 0 rsa, 1 ec256, 2 ec384 */
    } ok[] = {
        {"RS256", "r1", 0}, {"RS384", "r1", 0}, {"RS512", "r1", 0}, {"PS256", "r1", 0}, {"PS384", "r1", 0},
        {"PS512", "r1", 0}, {"ES256", "e1", 1}, {"ES384", "e3", 2}, {"RS256", NULL, 0}, {"ES256", NULL, 1},
    };
    EVP_PKEY *keys[] = {rsa_key, ec_key, ec384_key};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char *tok = claims_token(ok[i].alg, keys[ok[i].which], ok[i].kid, claims_ok());
        int rc = check(k, tok, &r, &c, why);
        if (rc)
            fprintf(stderr, "\n%s kid %s: %s\n", ok[i].alg, ok[i].kid ? ok[i].kid : "-", why);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_STRING_EQUAL(c.sub, "alice");
        CU_ASSERT_EQUAL(c.exp_ms, (NOW_S + 600) * 1000);
        CU_ASSERT_STRING_EQUAL(c.scope, "read write");
        /* One flipped bit in the signature, then in the claims. */
        size_t n = strlen(tok);
        tok[n - 3] = tok[n - 3] == 'A' ? 'B' : 'A';
        CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
        free(tok);
    }
    /* Signed by a key that is not in the JWKS; a tampered payload. */
    char *tok = claims_token("RS256", rsa_other, "r1", claims_ok());
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "signature"));
    free(tok);
    tok = claims_token("RS256", rsa_key, "r1", claims_ok());
    char *dot = strchr(tok, '.');
    dot[3] = dot[3] == 'x' ? 'y' : 'x';
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
    free(tok);
    /* Algorithm and key type or curve must agree. */
    tok = claims_token("ES256", ec384_key, "e3", claims_ok());
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
    free(tok);
    tok = claims_token("RS256", rsa_key, "e1", claims_ok());
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
    free(tok);
    /* Unknown kid. */
    tok = claims_token("RS256", rsa_key, "nope", claims_ok());
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), SRV_JWT_E_UNKNOWN_KID);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "kid"));
    CU_ASSERT(c.missing_kid_len == 4 && memcmp(c.missing_kid, "nope", 4) == 0);
    free(tok);
    /* alg none (no signature), HS256 and an unknown algorithm. */
    tok = claims_token("none", NULL, NULL, claims_ok());
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not allowed"));
    free(tok);
    tok = claims_token("HS256", rsa_key, "h1", claims_ok());
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
    free(tok);
    /* Unknown critical header. */
    tok = sign("RS256", rsa_key, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"x\"],\"x\":1}", claims_ok());
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
    free(tok);
    srv_jwks_free(k);
}

static void expect_refused(const srv_jwks *k, const char *claims, const srv_jwt_rules *r, const char *needle)
{
    srv_jwt_claims c;
    char why[300] = "";
    char *tok = claims_token("RS256", rsa_key, "r1", claims);
    int rc = check(k, tok, r, &c, why);
    if (rc == 0 || !strstr(why, needle))
        fprintf(stderr, "\nclaims %s: rc %d, '%s' lacks '%s'\n", claims, rc, why, needle);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, needle));
    free(tok);
}

static void test_claims(void)
{
    srv_jwks *k = jwks();
    srv_jwt_rules r = rules();
    char cl[512];
#define CLAIMS(...) (snprintf(cl, sizeof(cl), __VA_ARGS__), cl)
    long long now = NOW_S;
    expect_refused(
        k,
        CLAIMS("{\"sub\":\"a\",\"iss\":\"https://iss\",\"aud\":\"kafka\",\"iat\":%lld,\"exp\":%lld}",
               now - 100, now - 31),
        r.skew_s ? &r : &r, "no longer valid");
    expect_refused(
        k,
        CLAIMS("{\"sub\":\"a\",\"iss\":\"https://iss\",\"aud\":\"kafka\",\"iat\":%lld,\"exp\":%lld,"
               "\"nbf\":%lld}",
               now, now + 100, now + 31),
        &r, "not yet valid");
    expect_refused(k, CLAIMS("{\"sub\":\"a\",\"iss\":\"https://iss\",\"aud\":\"kafka\",\"iat\":%lld}", now),
                   &r, "exp");
    expect_refused(
        k, CLAIMS("{\"sub\":\"a\",\"iss\":\"https://iss\",\"aud\":\"kafka\",\"exp\":%lld}", now + 100), &r,
        "iat");
    expect_refused(
        k,
        CLAIMS("{\"sub\":\"a\",\"iss\":\"https://iss\",\"aud\":\"nope\",\"iat\":%lld,\"exp\":%lld}", now,
               now + 100),
        &r, "Audience");
    expect_refused(
        k, CLAIMS("{\"sub\":\"a\",\"iss\":\"https://iss\",\"iat\":%lld,\"exp\":%lld}", now, now + 100), &r,
        "Audience");
    expect_refused(k,
                   CLAIMS("{\"sub\":\"a\",\"iss\":\"https://x\",\"aud\":\"kafka\",\"iat\":%lld,\"exp\":%lld}",
                          now, now + 100),
                   &r, "Issuer");
    expect_refused(
        k, CLAIMS("{\"iss\":\"https://iss\",\"aud\":\"kafka\",\"iat\":%lld,\"exp\":%lld}", now, now + 100),
        &r, "subject");
    expect_refused(
        k,
        CLAIMS("{\"sub\":\" \",\"iss\":\"https://iss\",\"aud\":\"kafka\",\"iat\":%lld,\"exp\":%lld}", now,
               now + 100),
        &r, "empty");
    expect_refused(
        k,
        CLAIMS("{\"sub\":\"a\",\"iss\":\"https://iss\",\"aud\":\"kafka\",\"iat\":\"x\",\"exp\":%lld}",
               now + 100),
        &r, "NumericDate");
    expect_refused(k, CLAIMS("[1]"), &r, "not a JSON object");
    /* Within the skew: accepted. Other claim names, no audience or issuer configured. */
    srv_jwt_claims c;
    char why[300];
    char *tok =
        claims_token("RS256", rsa_key, "r1",
                     CLAIMS("{\"uid\":\"bob\",\"iat\":%lld,\"exp\":%lld,\"nbf\":%lld,\"scp\":[\"a\",\"b\"]}",
                            now, now - 29, now + 29));
    srv_jwt_rules r2 = {NULL, 0, NULL, "uid", "scp", 30, NOW_S * 1000};
    CU_ASSERT_EQUAL(check(k, tok, &r2, &c, why), 0);
    CU_ASSERT_STRING_EQUAL(c.sub, "bob");
    CU_ASSERT_STRING_EQUAL(c.scope, "a b");
    r2.skew_s = 0;
    CU_ASSERT_EQUAL(check(k, tok, &r2, &c, why), -1);
    free(tok);
    /* Without expected audiences a token naming one is refused (jose4j's default); the subject is trimmed. */
    r2.skew_s = 30;
    tok = claims_token("RS256", rsa_key, "r1",
                       CLAIMS("{\"uid\":\" bob\\t\",\"iat\":%lld,\"exp\":%lld,\"aud\":\"x\"}", now, now + 9));
    CU_ASSERT_EQUAL(check(k, tok, &r2, &c, why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "Audience"));
    free(tok);
    tok = claims_token("RS256", rsa_key, "r1",
                       CLAIMS("{\"uid\":\" bob\\t\",\"iat\":%lld,\"exp\":%lld}", now, now + 9));
    CU_ASSERT_EQUAL(check(k, tok, &r2, &c, why), 0);
    CU_ASSERT_STRING_EQUAL(c.sub, "bob");
    CU_ASSERT_EQUAL(c.sub_len, 3);
    free(tok);
#undef CLAIMS
    srv_jwks_free(k);
}

static void test_malformed_tokens(void)
{
    srv_jwks *k = jwks();
    srv_jwt_rules r = rules();
    srv_jwt_claims c;
    char why[300];
    static const char *const bad[] = {
        "",           "a",          "a.b",           "a.b.c.d", "...", "eyJhbGciOiJSUzI1NiJ9.e30",
        "!!!.e30.AA", "e30.e30.AA", "bnVsbA.e30.AA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(check(k, bad[i], &r, &c, why), -1);
    /* Oversized: refused before decoding. */
    size_t big = SRV_JWT_MAX_LEN + 1;
    char *tok = malloc(big + 1);
    memset(tok, 'A', big);
    tok[10] = '.';
    tok[20] = '.';
    tok[big] = '\0';
    CU_ASSERT_EQUAL(srv_jwt_validate(k, tok, big, &r, &c, why, sizeof(why)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "more than"));
    free(tok);
    /* Deeply nested header. */
    char deep[200];
    size_t o = (size_t)snprintf(deep, sizeof(deep), "{\"alg\":\"RS256\",\"x\":");
    for (int i = 0; i < 40; i++)
        deep[o++] = '[';
    for (int i = 0; i < 40; i++)
        deep[o++] = ']';
    deep[o++] = '}';
    deep[o] = '\0';
    tok = sign("RS256", rsa_key, deep, claims_ok());
    CU_ASSERT_EQUAL(check(k, tok, &r, &c, why), -1);
    free(tok);
    /* Length is explicit: a good token followed by garbage is judged on its bytes only. */
    tok = claims_token("RS256", rsa_key, "r1", claims_ok());
    size_t n = strlen(tok);
    char *longer = malloc(n + 8);
    memcpy(longer, tok, n);
    memcpy(longer + n, "GARBAGE", 8);
    CU_ASSERT_EQUAL(srv_jwt_validate(k, longer, n, &r, &c, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(srv_jwt_validate(k, longer, n + 7, &r, &c, why, sizeof(why)), -1);
    free(longer);
    free(tok);
    srv_jwks_free(k);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("jwt", NULL, NULL);
    CU_add_test(s, "json strict", test_json_strict);
    CU_add_test(s, "base64url", test_b64url);
    CU_add_test(s, "jwks", test_jwks);
    CU_add_test(s, "signatures", test_signatures);
    CU_add_test(s, "claims", test_claims);
    CU_add_test(s, "malformed tokens", test_malformed_tokens);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = setup, .teardown = teardown};

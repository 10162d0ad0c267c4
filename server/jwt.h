/*
 * jwt.h — JSON Web Tokens as Kafka's OAuthBearerValidatorCallbackHandler
 * checks them: JWS compact serialization, signatures against the public
 * keys of a JWKS, and the registered claims (exp, iat, nbf, aud, iss, sub,
 * scope).
 *
 * Owns: base64url, JWKS parsing into OpenSSL keys, signature verification
 * (RS256/384/512, PS256/384/512, ES256/384/512) and the claim rules. Must
 * not: do I/O (the JWKS text is read by the caller), read the clock (the
 * caller passes now), log, or accept alg "none", HMAC algorithms, unknown
 * critical headers, or a signature from a key of the wrong type or curve.
 */
#ifndef SRV_JWT_H
#define SRV_JWT_H

#include <stddef.h>
#include <stdint.h>

/* Tokens longer than this are refused before any decoding. */
#define SRV_JWT_MAX_LEN 16384

/* Decodes unpadded base64url (RFC 7515 section 2). Returns 0 and *outlen, or
 * -1 on a character outside the alphabet, a length that cannot be base64,
 * or when the result does not fit in cap. */
int srv_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen);

typedef struct srv_jwks srv_jwks;

/* Parses a JWK Set ({"keys":[...]}). Keys of type RSA and EC (P-256, P-384,
 * P-521) with "use" absent or "sig" are kept; others are skipped. Returns 0
 * and *out, or -1 with a message in err (bad JSON, a malformed RSA or EC
 * key, no usable key at all). */
int srv_jwks_parse(const char *text, size_t len, srv_jwks **out, char *err, size_t errlen);
int srv_jwks_count(const srv_jwks *k);
void srv_jwks_free(srv_jwks *k);

/* What a token must satisfy. Strings are configuration (NUL-terminated). */
typedef struct srv_jwt_rules {
    const char *const *audiences; /* sasl.oauthbearer.expected.audience; NULL/0 = not checked */
    int n_audiences;
    const char *issuer;      /* sasl.oauthbearer.expected.issuer; NULL = not checked */
    const char *sub_claim;   /* sasl.oauthbearer.sub.claim.name */
    const char *scope_claim; /* sasl.oauthbearer.scope.claim.name */
    int64_t skew_s;          /* sasl.oauthbearer.clock.skew.seconds */
    int64_t now_ms;
} srv_jwt_rules;

#define SRV_JWT_MAX_KID 128 /* longer kids are refused */

typedef struct srv_jwt_claims {
    char sub[256]; /* the principal's name (UTF-8, NUL-terminated) */
    size_t sub_len;
    int64_t exp_ms;
    int64_t iat_ms;
    char scope[512]; /* the scopes, space-separated */
    /* With SRV_JWT_E_UNKNOWN_KID: the kid the key set lacks (not NUL-terminated). */
    char missing_kid[SRV_JWT_MAX_KID];
    size_t missing_kid_len;
} srv_jwt_claims;

/* The token names a kid the key set does not hold: a refreshed set may have it
 * (a JWKS endpoint rotating its keys). */
#define SRV_JWT_E_UNKNOWN_KID (-2)

/* Validates a compact JWS. Returns 0 and fills *out, or -1 (or
 * SRV_JWT_E_UNKNOWN_KID, with out->missing_kid) with the reason in why (for
 * the log; clients only learn "invalid_token"). */
int srv_jwt_validate(const srv_jwks *keys, const char *tok, size_t len, const srv_jwt_rules *rules,
                     srv_jwt_claims *out, char *why, size_t whylen);

#endif

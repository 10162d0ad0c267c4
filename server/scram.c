/*
 * scram.c — SCRAM-SHA-256/512: key derivation and the server side of one
 * exchange, message by message, as Kafka's ScramSaslServer does it.
 *
 * Owns: the parsers of client-first and client-final messages (the grammar
 * of Kafka's ScramMessages: gs2 flag 'n' only, ASCII sasl names with =2C and
 * =3D, extensions), the server-first and server-final messages, and the
 * constant-time proof check. Must not: log, do I/O, or keep secrets longer
 * than the exchange (the credential copy is wiped when the exchange ends).
 */
#include "scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

const char *srv_scram_mech_name(int mech)
{
    return mech == SRV_SCRAM_SHA256 ? "SCRAM-SHA-256" : mech == SRV_SCRAM_SHA512 ? "SCRAM-SHA-512" : NULL;
}

int srv_scram_mech_from_name(const char *name, size_t len)
{
    if (len == 13 && memcmp(name, "SCRAM-SHA-256", 13) == 0)
        return SRV_SCRAM_SHA256;
    if (len == 13 && memcmp(name, "SCRAM-SHA-512", 13) == 0)
        return SRV_SCRAM_SHA512;
    return SRV_SCRAM_UNKNOWN;
}

size_t srv_scram_key_len(int mech)
{
    return mech == SRV_SCRAM_SHA256 ? 32 : mech == SRV_SCRAM_SHA512 ? 64 : 0;
}

static const EVP_MD *md_of(int mech)
{
    return mech == SRV_SCRAM_SHA256 ? EVP_sha256() : mech == SRV_SCRAM_SHA512 ? EVP_sha512() : NULL;
}

static int hmac(int mech, const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t *out)
{
    unsigned int n = 0;
    return HMAC(md_of(mech), key, (int)key_len, data, len, out, &n) && n == srv_scram_key_len(mech) ? 0 : -1;
}

static int digest(int mech, const uint8_t *data, size_t len, uint8_t *out)
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, md_of(mech), NULL) && n == srv_scram_key_len(mech) ? 0 : -1;
}

int srv_scram_salt_password(int mech, const uint8_t *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
                            int32_t iterations, uint8_t *out)
{
    const EVP_MD *md = md_of(mech);
    if (!md || iterations <= 0)
        return -1;
    return PKCS5_PBKDF2_HMAC((const char *)pw, (int)pw_len, salt, (int)salt_len, iterations, md,
                             (int)srv_scram_key_len(mech), out)
               ? 0
               : -1;
}

int srv_scram_cred_from_salted(int mech, const uint8_t *salted, size_t salted_len, const uint8_t *salt,
                               size_t salt_len, int32_t iterations, srv_scram_cred *out)
{
    size_t kl = srv_scram_key_len(mech);
    /* Any non-empty salted password is an HMAC key, as in Kafka; only a
     * client's Hi() of the right length makes a usable credential. */
    if (!kl || salted_len == 0 || salted_len > INT32_MAX || salt_len > SRV_SCRAM_SALT_MAX)
        return -1;
    memset(out, 0, sizeof(*out));
    out->mech = mech;
    out->iterations = iterations;
    out->salt_len = salt_len;
    if (salt_len)
        memcpy(out->salt, salt, salt_len);
    uint8_t client_key[SRV_SCRAM_KEY_MAX];
    int rc = hmac(mech, salted, salted_len, "Client Key", 10, client_key) ||
             digest(mech, client_key, kl, out->stored_key) ||
             hmac(mech, salted, salted_len, "Server Key", 10, out->server_key);
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc ? -1 : 0;
}

/* ---- base64 (RFC 4648, padded), strict ------------------------------------ */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = B64[v >> 18 & 63];
        out[o++] = B64[v >> 12 & 63];
        out[o++] = i + 1 < n ? B64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    return o;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* -1 when malformed or longer than cap. */
static long b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_val(in[i + k])) < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t take = 3 - (size_t)pad;
        if (o + take > cap)
            return -1;
        uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        memcpy(out + o, b, take);
        o += take;
    }
    return (long)o;
}

/* ---- the exchange ----------------------------------------------------------- */

enum { ST_FIRST, ST_FINAL, ST_DONE, ST_FAILED };

struct srv_scram_server {
    int mech;
    int state;
    srv_scram_cred cred;
    char user[SRV_SCRAM_USER_MAX + 1];
    size_t user_len;
    char fixed_nonce[64];
    size_t fixed_nonce_len;
    char *client_first_bare; /* for the AuthMessage */
    size_t cfb_len;
    char *server_first;
    size_t sf_len;
    size_t nonce_off, nonce_len; /* the combined nonce inside server_first */
    char out[128];
};

srv_scram_server *srv_scram_server_new(int mech)
{
    if (!srv_scram_key_len(mech))
        return NULL;
    srv_scram_server *s = calloc(1, sizeof(*s));
    if (s)
        s->mech = mech;
    return s;
}

void srv_scram_server_free(srv_scram_server *s)
{
    if (!s)
        return;
    free(s->client_first_bare);
    free(s->server_first);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

void srv_scram_server_fix_nonce(srv_scram_server *s, const char *nonce, size_t len)
{
    if (len > sizeof(s->fixed_nonce))
        len = sizeof(s->fixed_nonce);
    memcpy(s->fixed_nonce, nonce, len);
    s->fixed_nonce_len = len;
}

const char *srv_scram_server_user(const srv_scram_server *s, size_t *len)
{
    *len = s->state == ST_DONE ? s->user_len : 0;
    return s->state == ST_DONE ? s->user : NULL;
}

static const char *generic_failure(int mech)
{
    return mech == SRV_SCRAM_SHA256
               ? "Authentication failed during authentication due to invalid credentials with SASL mechanism "
                 "SCRAM-SHA-256"
               : "Authentication failed during authentication due to invalid credentials with SASL mechanism "
                 "SCRAM-SHA-512";
}

static int fail(srv_scram_server *s, const char **msg, const char **why, const char *reason)
{
    s->state = ST_FAILED;
    OPENSSL_cleanse(&s->cred, sizeof(s->cred));
    *msg = generic_failure(s->mech);
    *why = reason;
    return SRV_SCRAM_FAILED;
}

typedef struct cursor {
    const char *p, *end;
} cursor;

static int eat(cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* A saslname (Kafka: ASCII 0x01-0x7F but '=' and ',', or =2C / =3D),
 * decoded into out. -1 when malformed, empty or too long. */
static int saslname(cursor *c, char *out, size_t cap, size_t *len)
{
    size_t o = 0;
    while (c->p < c->end && *c->p != ',') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '=') {
            if (c->end - c->p < 3)
                return -1;
            if (memcmp(c->p, "=2C", 3) == 0)
                ch = ',';
            else if (memcmp(c->p, "=3D", 3) == 0)
                ch = '=';
            else
                return -1;
            c->p += 3;
        } else if (ch == 0 || ch > 0x7F) {
            return -1;
        } else {
            c->p++;
        }
        if (o >= cap)
            return -1;
        out[o++] = (char)ch;
    }
    *len = o;
    return o ? 0 : -1;
}

/* Up to the next ',' (or the end): a printable run (0x21-0x7E) when
 * printable, else any 0x01-0x7F; non-empty. */
static int field(cursor *c, int printable, const char **start, size_t *len)
{
    *start = c->p;
    while (c->p < c->end && *c->p != ',') {
        unsigned char ch = (unsigned char)*c->p;
        if (printable ? (ch < 0x21 || ch > 0x7E) : (ch == 0 || ch > 0x7F))
            return -1;
        c->p++;
    }
    *len = (size_t)(c->p - *start);
    return *len ? 0 : -1;
}

/* ",key=value" extensions up to the end, or up to ",p=" when stop_at_proof.
 * Sets *tokenauth when the tokenauth extension is "true" (any case, as
 * Java's Boolean.parseBoolean). */
static int extensions(cursor *c, int stop_at_proof, int *tokenauth)
{
    while (c->p < c->end) {
        if (stop_at_proof && c->end - c->p >= 3 && memcmp(c->p, ",p=", 3) == 0)
            return 0;
        if (!eat(c, ","))
            return -1;
        const char *k = c->p;
        while (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z')))
            c->p++;
        size_t kl = (size_t)(c->p - k);
        if (!kl || !eat(c, "="))
            return -1;
        const char *v;
        size_t vl;
        if (field(c, 0, &v, &vl) != 0)
            return -1;
        if (kl == 9 && memcmp(k, "tokenauth", 9) == 0 && vl == 4 && strncasecmp(v, "true", 4) == 0)
            *tokenauth = 1;
    }
    return 0;
}

static int client_first(srv_scram_server *s, const uint8_t *in, size_t len, srv_scram_lookup_fn lookup,
                        void *arg, const uint8_t **out, size_t *out_len, const char **msg, const char **why)
{
    cursor c = {(const char *)in, (const char *)in + len};
    char authz[SRV_SCRAM_USER_MAX + 1];
    size_t authz_len = 0;
    /* gs2 header: Kafka takes no channel binding ('n' only). */
    if (!eat(&c, "n,"))
        return fail(s, msg, why, "client-first message: gs2 header is not 'n,'");
    if (eat(&c, "a=") && saslname(&c, authz, sizeof(authz) - 1, &authz_len) != 0)
        return fail(s, msg, why, "client-first message: malformed authorization id");
    if (!eat(&c, ","))
        return fail(s, msg, why, "client-first message: malformed gs2 header");
    const char *bare = c.p;
    const char *v;
    size_t vl;
    if (eat(&c, "m=") && (field(&c, 0, &v, &vl) != 0 || !eat(&c, ",")))
        return fail(s, msg, why, "client-first message: malformed reserved attribute");
    if (!eat(&c, "n=") || saslname(&c, s->user, sizeof(s->user) - 1, &s->user_len) != 0)
        return fail(s, msg, why, "client-first message: malformed or missing user name");
    s->user[s->user_len] = '\0';
    const char *cnonce;
    size_t cnonce_len;
    if (!eat(&c, ",r=") || field(&c, 1, &cnonce, &cnonce_len) != 0)
        return fail(s, msg, why, "client-first message: malformed or missing nonce");
    int tokenauth = 0;
    if (extensions(&c, 0, &tokenauth) != 0)
        return fail(s, msg, why, "client-first message: malformed extensions");
    /* Delegation tokens are not enabled: Kafka finds no token owner. */
    if (tokenauth)
        return fail(s, msg, why, "delegation token authentication is not enabled");
    const srv_scram_cred *cred = lookup ? lookup(arg, s->user, s->user_len, s->mech) : NULL;
    if (!cred)
        return fail(s, msg, why, "no such user with this mechanism");
    s->cred = *cred;
    if (authz_len && (authz_len != s->user_len || memcmp(authz, s->user, authz_len) != 0)) {
        fail(s, msg, why, "authorization id differs from the user name");
        *msg = "Authentication failed: Client requested an authorization id that is different from username";
        return SRV_SCRAM_FAILED;
    }
    if (s->cred.iterations < SRV_SCRAM_MIN_ITERATIONS)
        return fail(s, msg, why, "stored credential has fewer iterations than the mechanism's minimum");
    char snonce[64];
    size_t snonce_len;
    if (s->fixed_nonce_len) {
        memcpy(snonce, s->fixed_nonce, s->fixed_nonce_len);
        snonce_len = s->fixed_nonce_len;
    } else {
        uint8_t rnd[24];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            return fail(s, msg, why, "no randomness for the server nonce");
        snonce_len = b64_encode(rnd, sizeof(rnd), snonce); /* printable, never ',' */
    }
    s->cfb_len = (size_t)(c.end - bare);
    s->client_first_bare = malloc(s->cfb_len + 1);
    size_t cap = 2 + cnonce_len + snonce_len + 3 + (SRV_SCRAM_SALT_MAX / 3 + 1) * 4 + 3 + 12;
    s->server_first = malloc(cap);
    if (!s->client_first_bare || !s->server_first)
        return fail(s, msg, why, "out of memory");
    memcpy(s->client_first_bare, bare, s->cfb_len);
    char *o = s->server_first;
    memcpy(o, "r=", 2);
    o += 2;
    s->nonce_off = 2;
    memcpy(o, cnonce, cnonce_len);
    o += cnonce_len;
    memcpy(o, snonce, snonce_len);
    o += snonce_len;
    s->nonce_len = cnonce_len + snonce_len;
    memcpy(o, ",s=", 3);
    o += 3;
    o += b64_encode(s->cred.salt, s->cred.salt_len, o);
    o += snprintf(o, cap - (size_t)(o - s->server_first), ",i=%d", (int)s->cred.iterations);
    s->sf_len = (size_t)(o - s->server_first);
    s->state = ST_FINAL;
    *out = (const uint8_t *)s->server_first;
    *out_len = s->sf_len;
    return SRV_SCRAM_CONTINUE;
}

static int client_final(srv_scram_server *s, const uint8_t *in, size_t len, const uint8_t **out,
                        size_t *out_len, const char **msg, const char **why)
{
    cursor c = {(const char *)in, (const char *)in + len};
    const char *v, *nonce;
    size_t vl, nonce_len;
    if (!eat(&c, "c=") || field(&c, 1, &v, &vl) != 0)
        return fail(s, msg, why, "client-final message: malformed or missing channel binding");
    if (!eat(&c, ",r=") || field(&c, 1, &nonce, &nonce_len) != 0)
        return fail(s, msg, why, "client-final message: malformed or missing nonce");
    int tokenauth = 0;
    if (extensions(&c, 1, &tokenauth) != 0)
        return fail(s, msg, why, "client-final message: malformed extensions");
    const char *without_proof_end = c.p;
    const char *proof_b64;
    size_t proof_b64_len;
    if (!eat(&c, ",p=") || field(&c, 1, &proof_b64, &proof_b64_len) != 0 || c.p != c.end)
        return fail(s, msg, why, "client-final message: malformed or missing proof");
    size_t kl = srv_scram_key_len(s->mech);
    uint8_t proof[SRV_SCRAM_KEY_MAX + 3];
    if (b64_decode(proof_b64, proof_b64_len, proof, sizeof(proof)) != (long)kl)
        return fail(s, msg, why, "client-final message: proof of the wrong length");
    if (nonce_len != s->nonce_len || memcmp(nonce, s->server_first + s->nonce_off, nonce_len) != 0)
        return fail(s, msg, why, "invalid client nonce in the final client message");
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    size_t cfw_len = (size_t)(without_proof_end - (const char *)in);
    size_t am_len = s->cfb_len + 1 + s->sf_len + 1 + cfw_len;
    char *am = malloc(am_len);
    if (!am)
        return fail(s, msg, why, "out of memory");
    memcpy(am, s->client_first_bare, s->cfb_len);
    am[s->cfb_len] = ',';
    memcpy(am + s->cfb_len + 1, s->server_first, s->sf_len);
    am[s->cfb_len + 1 + s->sf_len] = ',';
    memcpy(am + s->cfb_len + 2 + s->sf_len, in, cfw_len);
    uint8_t sig[SRV_SCRAM_KEY_MAX], client_key[SRV_SCRAM_KEY_MAX], computed[SRV_SCRAM_KEY_MAX],
        server_sig[SRV_SCRAM_KEY_MAX];
    int rc = hmac(s->mech, s->cred.stored_key, kl, am, am_len, sig);
    for (size_t i = 0; i < kl; i++)
        client_key[i] = proof[i] ^ sig[i];
    rc = rc || digest(s->mech, client_key, kl, computed) ||
         hmac(s->mech, s->cred.server_key, kl, am, am_len, server_sig);
    free(am);
    int same = rc == 0 && CRYPTO_memcmp(computed, s->cred.stored_key, kl) == 0;
    OPENSSL_cleanse(client_key, sizeof(client_key));
    if (!same)
        return fail(s, msg, why, "invalid client credentials (wrong password)");
    memcpy(s->out, "v=", 2);
    size_t n = 2 + b64_encode(server_sig, kl, s->out + 2);
    OPENSSL_cleanse(&s->cred, sizeof(s->cred));
    s->state = ST_DONE;
    *out = (const uint8_t *)s->out;
    *out_len = n;
    return SRV_SCRAM_DONE;
}

int srv_scram_server_step(srv_scram_server *s, const uint8_t *in, size_t len, srv_scram_lookup_fn lookup,
                          void *arg, const uint8_t **out, size_t *out_len, const char **msg, const char **why)
{
    *out = NULL;
    *out_len = 0;
    *msg = NULL;
    *why = NULL;
    if (s->state == ST_FIRST)
        return client_first(s, in, len, lookup, arg, out, out_len, msg, why);
    if (s->state == ST_FINAL)
        return client_final(s, in, len, out, out_len, msg, why);
    return fail(s, msg, why, "SCRAM exchange already finished");
}

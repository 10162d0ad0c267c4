/*
 * oauth.c — the broker side of SASL/OAUTHBEARER behind oauth.h.
 *
 * Owns: the listener's validator settings (Kafka's names, defaults and
 * listener prefixes), loading the JWKS file at start, the RFC 7628 client
 * response grammar as Kafka's OAuthBearerClientInitialResponse accepts it,
 * and the exchange of OAuthBearerSaslServer: a bad token is answered with
 * the JSON error as a challenge, and the client's %x01 after it ends the
 * exchange with that JSON as the failure message. Must not: read files or
 * the network after start (http(s) JWKS endpoints are refused at start,
 * since fetching them would need a thread of its own), or log (the caller
 * logs, with the peer).
 */
#include "oauth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "jwt.h"

#define OAUTH_MODULE    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
#define OAUTH_VALIDATOR "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
#define MAX_AUDIENCES   16
#define JWKS_MAX_FILE   (1 << 20)

static const uint8_t INVALID_TOKEN[] = "{\"status\":\"invalid_token\"}";

struct srv_oauth {
    srv_jwks *keys;
    char *aud_store[MAX_AUDIENCES];
    int n_aud;
    char issuer[512];
    int has_issuer;
    char sub_claim[128];
    char scope_claim[128];
    int64_t skew_s;
};

static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* listener.name.<l>.oauthbearer.<key>, then listener.name.<l>.<key>, then
 * <key>: Kafka's order for a mechanism's settings. */
static const char *setting(const srv_config *cfg, const char *listener, const char *key)
{
    char mk[SRV_CONFIG_NAME_MAX];
    snprintf(mk, sizeof(mk), "oauthbearer.%s", key);
    const char *v = srv_config_sec(cfg, listener, mk);
    return v ? v : srv_config_sec(cfg, listener, key);
}

/* The JAAS entry must name OAuthBearerLoginModule with a control flag; its
 * options configure a client login and mean nothing to a validating broker. */
static int check_jaas(const char *j, char *err, size_t errlen, const char *listener)
{
    while (*j == ' ' || *j == '\t' || *j == '\n' || *j == '\r')
        j++;
    size_t ml = sizeof(OAUTH_MODULE) - 1;
    if (strncmp(j, OAUTH_MODULE, ml) != 0 || (j[ml] != ' ' && j[ml] != '\t' && j[ml] != '\n'))
        return fail(err, errlen, "listener %s: oauthbearer.sasl.jaas.config must name %s", listener,
                    OAUTH_MODULE);
    const char *f = j + ml;
    while (*f == ' ' || *f == '\t' || *f == '\n' || *f == '\r')
        f++;
    static const char *const flags[] = {"required", "requisite", "sufficient", "optional", NULL};
    int ok = 0;
    for (const char *const *fl = flags; *fl && !ok; fl++) {
        size_t n = strlen(*fl);
        ok = strncasecmp(f, *fl, n) == 0 && (f[n] == ' ' || f[n] == ';' || f[n] == '\t' || f[n] == '\n');
    }
    const char *end = j + strlen(j);
    while (end > j && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    if (!ok || end == j || end[-1] != ';')
        return fail(
            err, errlen,
            "listener %s: oauthbearer.sasl.jaas.config must be '%s required ...;' (a control flag and "
            "a final ';')",
            listener, OAUTH_MODULE);
    return 0;
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(JWKS_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, JWKS_MAX_FILE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > JWKS_MAX_FILE) {
        free(buf);
        return fail(err, errlen, "cannot read %s: %s", path,
                    !buf  ? "out of memory"
                    : bad ? "read error"
                          : "larger than 1 MiB");
    }
    *out = buf;
    *len = n;
    return 0;
}

void srv_oauth_free(srv_oauth *o)
{
    if (!o)
        return;
    srv_jwks_free(o->keys);
    for (int i = 0; i < o->n_aud; i++)
        free(o->aud_store[i]);
    free(o);
}

int srv_oauth_load(const srv_config *cfg, const char *ln, srv_oauth **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *jaas = srv_config_sec(cfg, ln, "oauthbearer.sasl.jaas.config");
    if (!jaas)
        return fail(err, errlen,
                    "listener %s: no JAAS configuration for mechanism OAUTHBEARER: set "
                    "listener.name.%s.oauthbearer.sasl.jaas.config=%s required ;",
                    ln, ln, OAUTH_MODULE);
    if (check_jaas(jaas, err, errlen, ln) != 0)
        return -1;
    const char *cb = srv_config_sec(cfg, ln, "oauthbearer.sasl.server.callback.handler.class");
    if (!cb || strcmp(cb, OAUTH_VALIDATOR) != 0)
        return fail(
            err, errlen,
            "listener %s: OAUTHBEARER needs listener.name.%s.oauthbearer.sasl.server.callback.handler.class"
            "=%s (%s); Kafka's default, the unsecured validator that accepts unsigned tokens, is not "
            "offered",
            ln, ln, OAUTH_VALIDATOR, cb ? "another class is set" : "not set");
    const char *url = setting(cfg, ln, "sasl.oauthbearer.jwks.endpoint.url");
    if (!url || !*url)
        return fail(err, errlen,
                    "listener %s: OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url (a file:// URL)", ln);
    if (strncmp(url, "file:", 5) != 0)
        return fail(
            err, errlen,
            "listener %s: sasl.oauthbearer.jwks.endpoint.url '%.200s': only file:// URLs are supported "
            "(this broker does not fetch JWKS over http(s)); save the JWKS to a file",
            ln, url);
    /* file:///path and file:/path, as java.net.URL reads them. */
    const char *path = url + 5;
    if (strncmp(path, "//", 2) == 0) {
        path += 2;
        if (strncmp(path, "localhost/", 10) == 0)
            path += 9;
        else if (*path != '/')
            return fail(err, errlen,
                        "listener %s: sasl.oauthbearer.jwks.endpoint.url '%.200s' names a remote host", ln,
                        url);
    }
    srv_oauth *o = calloc(1, sizeof(*o));
    if (!o)
        return fail(err, errlen, "out of memory");
    char *text = NULL;
    size_t len = 0;
    char jerr[300];
    if (read_file(path, &text, &len, jerr, sizeof(jerr)) != 0 ||
        srv_jwks_parse(text, len, &o->keys, jerr, sizeof(jerr)) != 0) {
        free(text);
        srv_oauth_free(o);
        return fail(err, errlen, "listener %s: sasl.oauthbearer.jwks.endpoint.url: %s", ln, jerr);
    }
    free(text);
    const char *aud = setting(cfg, ln, "sasl.oauthbearer.expected.audience");
    if (aud && *aud) {
        char item[512];
        srv_cfgk_list_iter it = {aud, 0};
        while (srv_cfgk_list_next(&it, item, sizeof(item))) {
            if (o->n_aud == MAX_AUDIENCES) {
                srv_oauth_free(o);
                return fail(err, errlen, "listener %s: more than %d expected audiences", ln, MAX_AUDIENCES);
            }
            if (!(o->aud_store[o->n_aud++] = strdup(item))) {
                srv_oauth_free(o);
                return fail(err, errlen, "out of memory");
            }
        }
    }
    const char *iss = setting(cfg, ln, "sasl.oauthbearer.expected.issuer");
    if (iss && *iss) {
        snprintf(o->issuer, sizeof(o->issuer), "%s", iss);
        o->has_issuer = 1;
    }
    const char *sub = setting(cfg, ln, "sasl.oauthbearer.sub.claim.name");
    const char *scope = setting(cfg, ln, "sasl.oauthbearer.scope.claim.name");
    snprintf(o->sub_claim, sizeof(o->sub_claim), "%s", sub && *sub ? sub : "sub");
    snprintf(o->scope_claim, sizeof(o->scope_claim), "%s", scope && *scope ? scope : "scope");
    const char *skew = setting(cfg, ln, "sasl.oauthbearer.clock.skew.seconds");
    o->skew_s = 30; /* Kafka's default */
    if (skew && (srv_cfgk_parse_i64(skew, &o->skew_s) != 0 || o->skew_s < 0 || o->skew_s > 86400 * 365)) {
        srv_oauth_free(o);
        return fail(err, errlen,
                    "listener %s: sasl.oauthbearer.clock.skew.seconds '%.40s' is not a number of seconds", ln,
                    skew);
    }
    *out = o;
    return 0;
}

/* ---- the exchange -------------------------------------------------------- */

static int is_alpha(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* VALUE of RFC 7628 (Kafka's pattern): printable ASCII, space, tab, CR, LF. */
static int is_value_char(uint8_t c)
{
    return (c >= 0x21 && c <= 0x7e) || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

typedef struct initial {
    char authzid[256];
    size_t authzid_len;
    const uint8_t *token;
    size_t token_len;
} initial;

/* n,[a=<saslname>],^A(key=value^A)*^A with an auth=Bearer <token> pair. */
static int parse_initial(const uint8_t *m, size_t len, initial *in, char *why, size_t wl)
{
    size_t i = 0;
    memset(in, 0, sizeof(*in));
    if (len < 2 || m[0] != 'n' || m[1] != ',')
        return fail(why, wl, "client response does not start with the gs2 header 'n,'");
    i = 2;
    if (i + 1 < len && m[i] == 'a' && m[i + 1] == '=') {
        i += 2;
        size_t start = i;
        while (i < len && m[i] != ',') {
            uint8_t c = m[i];
            if (c == '=') {
                if (i + 2 < len && m[i + 1] == '2' && (m[i + 2] == 'C' || m[i + 2] == 'c'))
                    c = ',';
                else if (i + 2 < len && m[i + 1] == '3' && (m[i + 2] == 'D' || m[i + 2] == 'd'))
                    c = '=';
                else
                    return fail(why, wl, "bad escape in the authorization id");
                i += 2;
            } else if (c == 0 || c > 0x7f) {
                return fail(why, wl, "bad character in the authorization id");
            }
            if (in->authzid_len == sizeof(in->authzid))
                return fail(why, wl, "authorization id too long");
            in->authzid[in->authzid_len++] = (char)c;
            i++;
        }
        if (i == start)
            return fail(why, wl, "empty authorization id");
    }
    if (i >= len || m[i] != ',')
        return fail(why, wl, "gs2 header does not end with ','");
    i++;
    if (i >= len || m[i] != 0x01)
        return fail(why, wl, "no %%x01 after the gs2 header");
    i++;
    int nkv = 0;
    while (i < len && m[i] != 0x01) {
        size_t k = i;
        while (i < len && is_alpha(m[i]))
            i++;
        size_t kl = i - k;
        if (kl == 0 || i >= len || m[i] != '=')
            return fail(why, wl, "bad key in the client response");
        i++;
        size_t v = i;
        while (i < len && is_value_char(m[i]))
            i++;
        if (i == v || i >= len || m[i] != 0x01)
            return fail(why, wl, "bad value in the client response");
        if (++nkv > 64)
            return fail(why, wl, "more than 64 key/value pairs");
        if (kl == 4 && memcmp(m + k, "auth", 4) == 0) {
            /* <scheme> SP+ <token>, scheme \w+ compared without case */
            size_t p = v, end = i;
            while (p < end && (is_alpha(m[p]) || (m[p] >= '0' && m[p] <= '9') || m[p] == '_'))
                p++;
            if (p == v)
                return fail(why, wl, "invalid 'auth' format in the client response");
            if (p - v != 6 || strncasecmp((const char *)m + v, "Bearer", 6) != 0) {
                fail(why, wl, "invalid scheme '%.*s' in the client response (not Bearer)",
                     (int)(p - v > 40 ? 40 : p - v), (const char *)m + v);
                return -2;
            }
            size_t sp = p;
            while (p < end && m[p] == ' ')
                p++;
            if (p == sp)
                return fail(why, wl, "no space after Bearer");
            /* RFC 6750 b64token: [-._~+/A-Za-z0-9]+ =* */
            size_t t = p;
            while (p < end &&
                   (is_alpha(m[p]) || (m[p] >= '0' && m[p] <= '9') || (m[p] && strchr("-._~+/", m[p]))))
                p++;
            size_t body = p - t;
            while (p < end && m[p] == '=')
                p++;
            if (p != end || body == 0)
                return fail(why, wl, "invalid 'auth' format in the client response");
            in->token = m + t;
            in->token_len = end - t;
        }
        i++; /* the %x01 after the pair; other keys are extensions, all accepted */
    }
    if (i + 1 != len)
        return fail(why, wl, "client response does not end with %%x01%%x01");
    if (!in->token)
        return fail(why, wl, "'auth' not specified in the client response");
    return 0;
}

int srv_oauth_step(const srv_oauth *o, int *error_sent, const uint8_t *m, size_t len, int64_t now_ms,
                   srv_oauth_result *res)
{
    memset(res, 0, sizeof(*res));
    if (*error_sent && len == 1 && m[0] == 0x01) {
        *error_sent = 0;
        res->msg = (const char *)INVALID_TOKEN;
        snprintf(res->why, sizeof(res->why), "%s", (const char *)INVALID_TOKEN);
        return SRV_OAUTH_FAIL;
    }
    *error_sent = 0;
    initial in;
    int prc = parse_initial(m, len, &in, res->why, sizeof(res->why));
    if (prc != 0) /* msg NULL: the caller's generic "invalid credentials" */
        return prc == -2 ? SRV_OAUTH_CLOSE : SRV_OAUTH_FAIL;
    srv_jwt_rules rules = {
        .audiences = (const char *const *)o->aud_store,
        .n_audiences = o->n_aud,
        .issuer = o->has_issuer ? o->issuer : NULL,
        .sub_claim = o->sub_claim,
        .scope_claim = o->scope_claim,
        .skew_s = o->skew_s,
        .now_ms = now_ms,
    };
    srv_jwt_claims cl;
    if (srv_jwt_validate(o->keys, (const char *)in.token, in.token_len, &rules, &cl, res->why,
                         sizeof(res->why)) != 0) {
        *error_sent = 1;
        res->challenge = INVALID_TOKEN;
        res->challenge_len = sizeof(INVALID_TOKEN) - 1;
        return SRV_OAUTH_CHALLENGE;
    }
    if (in.authzid_len && (in.authzid_len != cl.sub_len || memcmp(in.authzid, cl.sub, cl.sub_len) != 0)) {
        snprintf(
            res->why, sizeof(res->why),
            "Authentication failed: Client requested an authorization id (%.*s) that is different from the "
            "token's principal name (%s)",
            (int)in.authzid_len, in.authzid, cl.sub);
        res->msg = res->why;
        return SRV_OAUTH_FAIL;
    }
    memcpy(res->name, cl.sub, cl.sub_len + 1);
    res->name_len = cl.sub_len;
    res->exp_ms = cl.exp_ms;
    return SRV_OAUTH_OK;
}

/*
 * oauth.c — the broker side of SASL/OAUTHBEARER behind oauth.h.
 *
 * Owns: the listener's validator settings (Kafka's names, defaults and
 * listener prefixes), the JWKS in use and its refresher thread (Kafka's
 * RefreshingHttpsJwks: fetched at start, again every refresh.ms, at once for
 * a kid not in the set (once a minute per kid), retries with exponential
 * backoff, the previous keys kept when a refresh fails), the RFC 7628 client
 * response grammar as Kafka's OAuthBearerClientInitialResponse accepts it,
 * and the exchange of OAuthBearerSaslServer: a bad token is answered with
 * the JSON error as a challenge, and the client's %x01 after it ends the
 * exchange with that JSON as the failure message. Must not: read files or
 * the network on a shard thread (only the refresher does, and start), make
 * a shard wait on a lock, or log on a shard (the caller logs, with the peer;
 * the refresher logs its own fetches).
 *
 * Why hazard pointers for the key set: like a TLS context (tls_reload.c) a
 * key set is an immutable published version built off the loops. A shard
 * announces the set it validates with in its own slot and re-checks the
 * published pointer, so the refresher frees a replaced set only once no slot
 * names it; a token being validated keeps the set it started with, and
 * shards take no lock and no reference count.
 */
#include "oauth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "jwks_fetch.h"
#include "jwt.h"
#include "logging.h"
#include "srv_assert.h"

#define OAUTH_MODULE     "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
#define OAUTH_VALIDATOR  "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
#define MAX_AUDIENCES    16
#define FETCH_TIMEOUT_MS 10000
/* Kafka's RefreshingHttpsJwks: a missing kid expedites a refresh at most once
 * a minute, for kids of at most 1000 bytes, 16 kids remembered. */
#define MISSING_KID_MS  60000
#define MISSING_KIDS    16
#define MISSING_KID_MAX SRV_JWT_MAX_KID /* jwt.c refuses longer kids; < PIPE_BUF */
/* Hazard slots: 0 for threads that are not shards, then one per shard (config: shards <= 1024). */
#define HAZARDS 1025

static const uint8_t INVALID_TOKEN[] = "{\"status\":\"invalid_token\"}";

typedef struct hazard {
    srv_jwks *p; /* atomic: the set this shard is validating with, or NULL */
    char pad[56];
} hazard;

struct srv_oauth {
    srv_jwks *keys;  /* atomic: the published set */
    hazard *hazards; /* [HAZARDS] */
    srv_jwks_url url;
    char listener[64];
    char cafile[1024];
    int64_t refresh_ms, backoff_ms, backoff_max_ms;
    char *text; /* refresher: the JWKS text published last */
    size_t text_len;
    srv_jwks *retired[8]; /* refresher: replaced sets still named by a hazard */
    int wake[2];          /* shards write kids (and free a stop byte) to the refresher */
    pthread_t thread;
    int running;
    char *aud_store[MAX_AUDIENCES];
    int n_aud;
    char issuer[512];
    int has_issuer;
    char sub_claim[128];
    char scope_claim[128];
    int64_t skew_s;
};

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
        return srv_cfgk_fail(err, errlen, "listener %s: oauthbearer.sasl.jaas.config must name %s", listener,
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
        return srv_cfgk_fail(
            err, errlen,
            "listener %s: oauthbearer.sasl.jaas.config must be '%s required ...;' (a control flag and "
            "a final ';')",
            listener, OAUTH_MODULE);
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the published key set ------------------------------------------------ */

/* The set a validation uses, announced in the calling thread's hazard slot
 * until keys_release. */
static const srv_jwks *keys_hold(const srv_oauth *o)
{
    int slot = srv_log_shard + 1;
    SRV_ASSERT(slot >= 0 && slot < HAZARDS, "shard %d has no JWKS hazard slot (%d slots)", srv_log_shard,
               HAZARDS);
    srv_jwks *k;
    do {
        k = __atomic_load_n(&o->keys, __ATOMIC_SEQ_CST);
        __atomic_store_n(&o->hazards[slot].p, k, __ATOMIC_SEQ_CST);
    } while (__atomic_load_n(&o->keys, __ATOMIC_SEQ_CST) != k);
    return k;
}

static void keys_release(const srv_oauth *o)
{
    __atomic_store_n(&o->hazards[srv_log_shard + 1].p, NULL, __ATOMIC_SEQ_CST);
}

static int named_by_hazard(const srv_oauth *o, const srv_jwks *k)
{
    for (int i = 0; i < HAZARDS; i++)
        if (__atomic_load_n(&o->hazards[i].p, __ATOMIC_SEQ_CST) == k)
            return 1;
    return 0;
}

/* Refresher only: frees the retired sets no shard still validates with. */
static void reap(srv_oauth *o)
{
    for (int i = 0; i < 8; i++)
        if (o->retired[i] && !named_by_hazard(o, o->retired[i])) {
            srv_jwks_free(o->retired[i]);
            o->retired[i] = NULL;
        }
}

/* Refresher only (or start): publishes k, retiring the set it replaces. */
static void publish(srv_oauth *o, srv_jwks *k)
{
    srv_jwks *old = __atomic_exchange_n(&o->keys, k, __ATOMIC_SEQ_CST);
    if (!old)
        return;
    for (;;) {
        reap(o);
        for (int i = 0; i < 8; i++)
            if (!o->retired[i]) {
                o->retired[i] = old;
                return;
            }
        /* Eight sets each still in a validation: those take microseconds. */
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

/* One fetch and parse; publishes the set when its text changed. */
static int refresh_once(srv_oauth *o, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    srv_jwks *k = NULL;
    if (srv_jwks_fetch(&o->url, o->cafile[0] ? o->cafile : NULL, FETCH_TIMEOUT_MS, &text, &len, err,
                       errlen) != 0)
        return -1;
    if (o->text && len == o->text_len && memcmp(text, o->text, len) == 0) {
        free(text);
        return 0;
    }
    if (srv_jwks_parse(text, len, &k, err, errlen) != 0) {
        free(text);
        return -1;
    }
    free(o->text);
    o->text = text;
    o->text_len = len;
    publish(o, k);
    return 1;
}

/* Kafka's retry: attempts with growing waits until the waits would pass
 * backoff.max.ms. Returns what the last attempt returned. */
static int refresh_retrying(srv_oauth *o, int at_start, char *err, size_t errlen)
{
    int64_t waited = 0;
    for (int attempt = 0;; attempt++) {
        int rc = refresh_once(o, err, errlen);
        if (rc >= 0)
            return rc;
        int64_t w = srv_jwks_backoff_ms(attempt, o->backoff_ms, o->backoff_max_ms);
        if (waited + w > o->backoff_max_ms)
            return -1;
        if (!at_start)
            srv_warn("listener %s: JWKS refresh attempt %d failed (%s); retrying in %lld ms", o->listener,
                     attempt + 1, err, (long long)w);
        struct timespec ts = {(time_t)(w / 1000), (long)(w % 1000) * 1000000};
        nanosleep(&ts, NULL);
        waited += w;
    }
}

/* The refresher: sleeps until the next scheduled refresh or a shard's
 * missing kid, whichever comes first. */
static void *refresher(void *arg)
{
    srv_oauth *o = arg;
    struct {
        char kid[MISSING_KID_MAX];
        uint8_t len;
        int64_t at;
    } missing[MISSING_KIDS];
    memset(missing, 0, sizeof(missing));
    int64_t next = mono_ms() + o->refresh_ms;
    for (;;) {
        int64_t now = mono_ms();
        struct pollfd p = {.fd = o->wake[0], .events = POLLIN};
        int left = next > now ? (int)(next - now > 60000 ? 60000 : next - now) : 0;
        if (poll(&p, 1, left) == 1) {
            uint8_t msg[1 + MISSING_KID_MAX];
            ssize_t n = read(o->wake[0], msg, 1);
            if (n == 1 && msg[0] == 0)
                return NULL;
            if (n == 1 && msg[0] <= MISSING_KID_MAX && read(o->wake[0], msg + 1, msg[0]) == msg[0]) {
                now = mono_ms();
                int seen = 0, oldest = 0;
                for (int i = 0; i < MISSING_KIDS; i++) {
                    if (missing[i].at && now - missing[i].at < MISSING_KID_MS && missing[i].len == msg[0] &&
                        memcmp(missing[i].kid, msg + 1, msg[0]) == 0)
                        seen = 1;
                    if (missing[i].at < missing[oldest].at)
                        oldest = i;
                }
                if (!seen) {
                    memcpy(missing[oldest].kid, msg + 1, msg[0]);
                    missing[oldest].len = msg[0];
                    missing[oldest].at = now;
                    srv_info("listener %s: a token names kid '%.*s', not in the JWKS: refreshing now",
                             o->listener, (int)msg[0], (const char *)msg + 1);
                    next = now;
                }
            }
        }
        if (mono_ms() < next)
            continue;
        char err[400];
        int rc = refresh_retrying(o, 0, err, sizeof(err));
        if (rc < 0)
            srv_warn("listener %s: JWKS refresh from %s failed (%s); keeping the %d keys in use", o->listener,
                     o->url.scheme == SRV_JWKS_FILE ? o->url.path : o->url.host, err,
                     srv_jwks_count(__atomic_load_n(&o->keys, __ATOMIC_SEQ_CST)));
        else if (rc == 1)
            srv_info("listener %s: JWKS refreshed: %d keys", o->listener,
                     srv_jwks_count(__atomic_load_n(&o->keys, __ATOMIC_SEQ_CST)));
        reap(o);
        next = mono_ms() + o->refresh_ms;
    }
}

static int load_ms(const srv_config *cfg, const char *ln, const char *key, int64_t dflt, int64_t *out,
                   char *err, size_t errlen)
{
    const char *v = setting(cfg, ln, key);
    *out = dflt;
    if (v && *v && (srv_cfgk_parse_i64(v, out) != 0 || *out <= 0 || *out > INT64_C(1) << 40))
        return srv_cfgk_fail(err, errlen, "listener %s: %s '%.40s' is not a positive number of milliseconds",
                             ln, key, v);
    return 0;
}

/* The endpoint settings, the first key set (a failure fails the start, as
 * in Kafka) and the refresher. */
static int load_keys(srv_oauth *o, const srv_config *cfg, const char *ln, char *err, size_t errlen)
{
    snprintf(o->listener, sizeof(o->listener), "%s", ln);
    const char *url = setting(cfg, ln, "sasl.oauthbearer.jwks.endpoint.url");
    if (!url || !*url)
        return srv_cfgk_fail(
            err, errlen,
            "listener %s: OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url (an https:// or file:// "
            "URL)",
            ln);
    char uerr[300];
    if (srv_jwks_url_parse(url, &o->url, uerr, sizeof(uerr)) != 0)
        return srv_cfgk_fail(err, errlen, "listener %s: sasl.oauthbearer.jwks.endpoint.url %s", ln, uerr);
    if (load_ms(cfg, ln, "sasl.oauthbearer.jwks.endpoint.refresh.ms", 3600000, &o->refresh_ms, err, errlen) ||
        load_ms(cfg, ln, "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", 100, &o->backoff_ms, err,
                errlen) ||
        load_ms(cfg, ln, "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", 10000, &o->backoff_max_ms,
                err, errlen))
        return -1;
    const char *ca = setting(cfg, ln, SRV_OAUTH_CA_KEY);
    if (ca && *ca) {
        if (strlen(ca) >= sizeof(o->cafile))
            return srv_cfgk_fail(err, errlen, "listener %s: %s too long", ln, SRV_OAUTH_CA_KEY);
        snprintf(o->cafile, sizeof(o->cafile), "%s", ca);
    }
    char ferr[400];
    if (refresh_retrying(o, 1, ferr, sizeof(ferr)) < 0)
        return srv_cfgk_fail(err, errlen,
                             "listener %s: sasl.oauthbearer.jwks.endpoint.url: no usable JWKS at start: %s",
                             ln, ferr);
    if (pipe2(o->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        o->wake[0] = o->wake[1] = -1;
        return srv_cfgk_fail(err, errlen, "listener %s: cannot create the JWKS refresher's pipe: %s", ln,
                             strerror(errno));
    }
    /* The refresher blocks in poll(); only shards' writes must not block. */
    int fl = fcntl(o->wake[0], F_GETFL);
    fcntl(o->wake[0], F_SETFL, fl & ~O_NONBLOCK);
    int rc = pthread_create(&o->thread, NULL, refresher, o);
    if (rc != 0)
        return srv_cfgk_fail(err, errlen, "listener %s: cannot start the JWKS refresher: %s", ln,
                             strerror(rc));
    o->running = 1;
    return 0;
}

void srv_oauth_free(srv_oauth *o)
{
    if (!o)
        return;
    if (o->running) {
        uint8_t stop = 0;
        ssize_t w;
        /* The pipe may be full of kids from shards; the refresher drains it. */
        while ((w = write(o->wake[1], &stop, 1)) != 1 && errno == EAGAIN) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        SRV_ASSERT(w == 1, "cannot wake the JWKS refresher of listener %s: %s", o->listener, strerror(errno));
        pthread_join(o->thread, NULL);
    }
    if (o->wake[0] > 0) {
        close(o->wake[0]);
        close(o->wake[1]);
    }
    srv_jwks_free(o->keys);
    for (int i = 0; i < 8; i++)
        srv_jwks_free(o->retired[i]);
    free(o->hazards);
    free(o->text);
    for (int i = 0; i < o->n_aud; i++)
        free(o->aud_store[i]);
    free(o);
}

int srv_oauth_load(const srv_config *cfg, const char *ln, srv_oauth **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *jaas = srv_config_sec(cfg, ln, "oauthbearer.sasl.jaas.config");
    if (!jaas)
        return srv_cfgk_fail(err, errlen,
                             "listener %s: no JAAS configuration for mechanism OAUTHBEARER: set "
                             "listener.name.%s.oauthbearer.sasl.jaas.config=%s required ;",
                             ln, ln, OAUTH_MODULE);
    if (check_jaas(jaas, err, errlen, ln) != 0)
        return -1;
    const char *cb = srv_config_sec(cfg, ln, "oauthbearer.sasl.server.callback.handler.class");
    if (!cb || strcmp(cb, OAUTH_VALIDATOR) != 0)
        return srv_cfgk_fail(
            err, errlen,
            "listener %s: OAUTHBEARER needs listener.name.%s.oauthbearer.sasl.server.callback.handler.class"
            "=%s (%s); Kafka's default, the unsecured validator that accepts unsigned tokens, is not "
            "offered",
            ln, ln, OAUTH_VALIDATOR, cb ? "another class is set" : "not set");
    srv_oauth *o = calloc(1, sizeof(*o));
    if (!o || !(o->hazards = calloc(HAZARDS, sizeof(hazard)))) {
        free(o);
        return srv_cfgk_fail(err, errlen, "out of memory");
    }
    if (load_keys(o, cfg, ln, err, errlen) != 0) {
        srv_oauth_free(o);
        return -1;
    }
    const char *aud = setting(cfg, ln, "sasl.oauthbearer.expected.audience");
    if (aud && *aud) {
        char item[512];
        srv_cfgk_list_iter it = {aud, 0};
        while (srv_cfgk_list_next(&it, item, sizeof(item))) {
            if (o->n_aud == MAX_AUDIENCES) {
                srv_oauth_free(o);
                return srv_cfgk_fail(err, errlen, "listener %s: more than %d expected audiences", ln,
                                     MAX_AUDIENCES);
            }
            if (!(o->aud_store[o->n_aud++] = strdup(item))) {
                srv_oauth_free(o);
                return srv_cfgk_fail(err, errlen, "out of memory");
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
        return srv_cfgk_fail(
            err, errlen,
            "listener %s: sasl.oauthbearer.clock.skew.seconds '%.40s' is not a number of seconds", ln, skew);
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
        return srv_cfgk_fail(why, wl, "client response does not start with the gs2 header 'n,'");
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
                    return srv_cfgk_fail(why, wl, "bad escape in the authorization id");
                i += 2;
            } else if (c == 0 || c > 0x7f) {
                return srv_cfgk_fail(why, wl, "bad character in the authorization id");
            }
            if (in->authzid_len == sizeof(in->authzid))
                return srv_cfgk_fail(why, wl, "authorization id too long");
            in->authzid[in->authzid_len++] = (char)c;
            i++;
        }
        if (i == start)
            return srv_cfgk_fail(why, wl, "empty authorization id");
    }
    if (i >= len || m[i] != ',')
        return srv_cfgk_fail(why, wl, "gs2 header does not end with ','");
    i++;
    if (i >= len || m[i] != 0x01)
        return srv_cfgk_fail(why, wl, "no %%x01 after the gs2 header");
    i++;
    int nkv = 0;
    while (i < len && m[i] != 0x01) {
        size_t k = i;
        while (i < len && is_alpha(m[i]))
            i++;
        size_t kl = i - k;
        if (kl == 0 || i >= len || m[i] != '=')
            return srv_cfgk_fail(why, wl, "bad key in the client response");
        i++;
        size_t v = i;
        while (i < len && is_value_char(m[i]))
            i++;
        if (i == v || i >= len || m[i] != 0x01)
            return srv_cfgk_fail(why, wl, "bad value in the client response");
        if (++nkv > 64)
            return srv_cfgk_fail(why, wl, "more than 64 key/value pairs");
        if (kl == 4 && memcmp(m + k, "auth", 4) == 0) {
            /* <scheme> SP+ <token>, scheme \w+ compared without case */
            size_t p = v, end = i;
            while (p < end && (is_alpha(m[p]) || (m[p] >= '0' && m[p] <= '9') || m[p] == '_'))
                p++;
            if (p == v)
                return srv_cfgk_fail(why, wl, "invalid 'auth' format in the client response");
            if (p - v != 6 || strncasecmp((const char *)m + v, "Bearer", 6) != 0) {
                srv_cfgk_fail(why, wl, "invalid scheme '%.*s' in the client response (not Bearer)",
                              (int)(p - v > 40 ? 40 : p - v), (const char *)m + v);
                return -2;
            }
            size_t sp = p;
            while (p < end && m[p] == ' ')
                p++;
            if (p == sp)
                return srv_cfgk_fail(why, wl, "no space after Bearer");
            /* RFC 6750 b64token: [-._~+/A-Za-z0-9]+ =* */
            size_t t = p;
            while (p < end &&
                   (is_alpha(m[p]) || (m[p] >= '0' && m[p] <= '9') || (m[p] && strchr("-._~+/", m[p]))))
                p++;
            size_t body = p - t;
            while (p < end && m[p] == '=')
                p++;
            if (p != end || body == 0)
                return srv_cfgk_fail(why, wl, "invalid 'auth' format in the client response");
            in->token = m + t;
            in->token_len = end - t;
        }
        i++; /* the %x01 after the pair; other keys are extensions, all accepted */
    }
    if (i + 1 != len)
        return srv_cfgk_fail(why, wl, "client response does not end with %%x01%%x01");
    if (!in->token)
        return srv_cfgk_fail(why, wl, "'auth' not specified in the client response");
    return 0;
}

/* A token naming a kid the set lacks asks the refresher for a refresh; the
 * refresher rate-limits per kid. The write never blocks: when the pipe is full
 * the refresher has work queued already. */
static void expedite(const srv_oauth *o, const char *kid, size_t n)
{
    if (!o->running || n == 0 || n > MISSING_KID_MAX)
        return;
    uint8_t msg[1 + MISSING_KID_MAX];
    msg[0] = (uint8_t)n;
    memcpy(msg + 1, kid, n);
    ssize_t w = write(o->wake[1], msg, 1 + n); /* one atomic pipe write: n < PIPE_BUF */
    (void)w;
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
    const srv_jwks *keys = keys_hold(o);
    int vrc =
        srv_jwt_validate(keys, (const char *)in.token, in.token_len, &rules, &cl, res->why, sizeof(res->why));
    keys_release(o);
    if (vrc != 0) {
        if (vrc == SRV_JWT_E_UNKNOWN_KID)
            expedite(o, cl.missing_kid, cl.missing_kid_len);
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

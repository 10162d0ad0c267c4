/*
 * throttle.c — quota enforcement: the windowed rate of Kafka's metrics
 * library, the throttle time of a violation, and a shard's table of rates.
 *
 * Owns the table (one per shard, touched only by its thread). Must not:
 * read the clock, or keep a pointer into a quota set (sets are replaced
 * whenever quotas change; a rate is found again by its tags).
 */
#include "throttle.h"

#include <stdlib.h>
#include <string.h>

#include "srv_assert.h"
#include "sstr.h"

/* ---- the rate ------------------------------------------------------------------ */

void srv_rate_init(srv_rate *r, int samples, int64_t window_ms)
{
    memset(r, 0, sizeof(*r));
    r->samples = samples < 2 ? 2 : samples > SRV_RATE_MAX_SAMPLES ? SRV_RATE_MAX_SAMPLES : samples;
    r->window_ms = window_ms > 0 ? window_ms : 1000;
}

/* Samples older than the whole span start over at now, as Kafka's
 * purgeObsoleteSamples does. */
static void purge(srv_rate *r, int64_t now)
{
    int64_t expire = (int64_t)r->samples * r->window_ms;
    for (int i = 0; i < r->n; i++)
        if (now - r->start[i] >= expire) {
            r->start[i] = now;
            r->val[i] = 0;
        }
}

static int current(srv_rate *r, int64_t now)
{
    if (r->n == 0) {
        r->n = 1;
        r->cur = 0;
        r->start[0] = now;
        r->val[0] = 0;
    }
    return r->cur;
}

static void record(srv_rate *r, double v, int64_t now)
{
    int c = current(r, now);
    if (now - r->start[c] >= r->window_ms) {
        /* The next sample starts at the window boundary now falls in, so
         * windows stay aligned to the first one. */
        int64_t prev_end = r->start[c] + r->window_ms;
        int64_t start = now - ((now - prev_end) % r->window_ms);
        c = (c + 1) % r->samples;
        if (c >= r->n)
            r->n = c + 1;
        r->cur = c;
        r->start[c] = start;
        r->val[c] = 0;
    }
    r->val[c] += v;
}

void srv_rate_record(srv_rate *r, double v, int64_t now_ms)
{
    record(r, v, now_ms);
}

void srv_rate_unrecord(srv_rate *r, double v, int64_t now_ms)
{
    record(r, -v, now_ms);
}

int64_t srv_rate_window(srv_rate *r, int64_t now_ms)
{
    purge(r, now_ms);
    int64_t oldest = now_ms;
    if (r->n == 0) {
        current(r, now_ms);
    }
    oldest = r->start[0];
    for (int i = 1; i < r->n; i++)
        if (r->start[i] < oldest)
            oldest = r->start[i];
    int64_t elapsed = now_ms - oldest;
    int64_t full = elapsed / r->window_ms;
    int64_t min_full = r->samples - 1;
    if (full < min_full)
        elapsed += (min_full - full) * r->window_ms;
    return elapsed;
}

double srv_rate_measure(srv_rate *r, int64_t now_ms)
{
    int64_t w = srv_rate_window(r, now_ms); /* purges first */
    double sum = 0;
    for (int i = 0; i < r->n; i++)
        sum += r->val[i];
    return w > 0 ? sum / ((double)w / 1000.0) : 0;
}

int64_t srv_rate_throttle_ms(srv_rate *r, double bound, int64_t now_ms)
{
    double v = srv_rate_measure(r, now_ms);
    if (!(bound > 0) || v <= bound)
        return 0;
    double ms = (v - bound) / bound * (double)srv_rate_window(r, now_ms);
    return (int64_t)(ms + 0.5); /* Java Math.round, ms > 0 */
}

/* ---- the token bucket --------------------------------------------------------- */

static void refill(srv_tokens *b, double rate, double burst, int64_t now_ms)
{
    if (!b->started) {
        /* Kafka's bucket starts from a last update at time 0: full. */
        b->tokens = burst;
        b->started = 1;
    } else if (now_ms > b->last_ms) {
        b->tokens += rate * (double)(now_ms - b->last_ms) / 1000.0;
    }
    if (b->tokens > burst)
        b->tokens = burst;
    b->last_ms = now_ms;
}

void srv_tokens_record(srv_tokens *b, double rate, double burst, double permits, int64_t now_ms)
{
    refill(b, rate, burst, now_ms);
    b->tokens -= permits;
    if (b->tokens > burst)
        b->tokens = burst;
}

double srv_tokens_left(srv_tokens *b, double rate, double burst, int64_t now_ms)
{
    refill(b, rate, burst, now_ms);
    return b->tokens;
}

int64_t srv_tokens_throttle_ms(srv_tokens *b, double rate, double burst, int64_t now_ms)
{
    double left = srv_tokens_left(b, rate, burst, now_ms);
    if (left >= 0 || !(rate > 0))
        return 0;
    return (int64_t)(-left / rate * 1000.0 + 0.5);
}

/* ---- the table --------------------------------------------------------------- */

#define NBUCKETS  256
#define EXPIRE_MS (3600 * 1000)

typedef struct sensor {
    struct sensor *next;
    int key;
    char *user;       /* sstr; NULL: not part of the tags */
    char *client;     /* sstr; NULL: not part of the tags */
    int64_t last_ms;  /* last use here or a peer's last non-zero report */
    int64_t local_ms; /* last record here: what decides it is reported */
    srv_rate rate;
    srv_tokens bucket; /* controller_mutation_rate */
    /* What each peer shard last reported (npeers, NULL until one did), and
     * its sum, kept so a record adds one load, not a loop over shards. */
    double *peer;
    double peer_sum;
    double reported; /* this shard's rate in its last report */
} sensor;

struct srv_throttle {
    int samples;
    int64_t window_ms;
    int count;
    int npeers;
    int nshards;    /* srv_throttle_share: peers to report to, 0 or 1 for none */
    sensor *urgent; /* a rate to report now (srv_throttle_urgent), or NULL */
    sensor *b[NBUCKETS];
};

srv_throttle *srv_throttle_new(int samples, int64_t window_ms)
{
    srv_throttle *t = calloc(1, sizeof(*t));
    if (t) {
        t->samples = samples;
        t->window_ms = window_ms;
    }
    return t;
}

static void sensor_free(sensor *s)
{
    free(s->peer);
    srv_sfree(s->user);
    srv_sfree(s->client);
    free(s);
}

void srv_throttle_free(srv_throttle *t)
{
    if (!t)
        return;
    for (int i = 0; i < NBUCKETS; i++)
        while (t->b[i]) {
            sensor *s = t->b[i];
            t->b[i] = s->next;
            sensor_free(s);
        }
    free(t);
}

static uint32_t hash(int key, kp_str u, kp_str c)
{
    uint32_t h = 2166136261u ^ (uint32_t)key;
    for (int32_t i = 0; i < u.len; i++)
        h = (h ^ (uint8_t)u.p[i]) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (int32_t i = 0; i < c.len; i++)
        h = (h ^ (uint8_t)c.p[i]) * 16777619u;
    return h;
}

/* The rate of (key, tags), created on first use; NULL when out of memory
 * (the request then goes unthrottled rather than failing). */
static sensor *find(srv_throttle *t, int key, kp_str u, kp_str c, int create)
{
    uint32_t h = hash(key, u, c) % NBUCKETS;
    for (sensor *s = t->b[h]; s; s = s->next)
        if (s->key == key && srv_seq(u, s->user) && srv_seq(c, s->client))
            return s;
    if (!create)
        return NULL;
    sensor *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->key = key;
    s->user = u.len >= 0 ? srv_sdup(u) : NULL;
    s->client = c.len >= 0 ? srv_sdup(c) : NULL;
    if ((u.len >= 0 && !s->user) || (c.len >= 0 && !s->client)) {
        sensor_free(s);
        return NULL;
    }
    srv_rate_init(&s->rate, t->samples, t->window_ms);
    s->local_ms = INT64_MIN / 2; /* never recorded here */
    s->next = t->b[h];
    t->b[h] = s;
    t->count++;
    return s;
}

static sensor *lookup(srv_throttle *t, const srv_quota_set *q, int key, kp_str user, kp_str client,
                      double *bound, int create)
{
    int tu = 0, tc = 0;
    if (client.len < 0)
        client = kp_str_c(""); /* Kafka treats a null client id as "" */
    if (!srv_quota_lookup(q, key, user, client, bound, &tu, &tc))
        return NULL;
    return find(t, key, tu ? user : KP_STR_NULL, tc ? client : KP_STR_NULL, create);
}

int64_t srv_throttle_record(srv_throttle *t, const srv_quota_set *q, int key, kp_str user, kp_str client,
                            double amount, int64_t now_ms)
{
    double bound;
    sensor *s = t ? lookup(t, q, key, user, client, &bound, 1) : NULL;
    if (!s)
        return 0;
    s->last_ms = now_ms;
    s->local_ms = now_ms;
    srv_rate_record(&s->rate, amount, now_ms);
    double local = srv_rate_measure(&s->rate, now_ms);
    /* A burst must not wait for the next period to be seen by the peers:
     * past an eighth of the bound more than was last reported, this rate is
     * reported at once (srv_throttle_urgent). */
    if (t->nshards > 1 && s->key != SRV_QK_CONTROLLER_MUTATION_RATE && local - s->reported > bound / 8)
        t->urgent = s;
    /* Kafka's QuotaUtils.throttleTime on the broker-wide rate: this shard's
     * windowed rate plus what its peers last reported. */
    double v = local + s->peer_sum;
    if (!(bound > 0) || v <= bound)
        return 0;
    double ms = (v - bound) / bound * (double)srv_rate_window(&s->rate, now_ms);
    return (int64_t)(ms + 0.5); /* Java Math.round, ms > 0 */
}

void srv_throttle_unrecord(srv_throttle *t, const srv_quota_set *q, int key, kp_str user, kp_str client,
                           double amount, int64_t now_ms)
{
    double bound;
    sensor *s = t ? lookup(t, q, key, user, client, &bound, 0) : NULL;
    if (s)
        srv_rate_unrecord(&s->rate, amount, now_ms);
}

double srv_throttle_max_in_window(srv_throttle *t, const srv_quota_set *q, int key, kp_str user,
                                  kp_str client)
{
    int tu, tc;
    double bound;
    (void)t;
    if (client.len < 0)
        client = kp_str_c("");
    if (!srv_quota_lookup(q, key, user, client, &bound, &tu, &tc))
        return -1;
    return bound * (double)((t ? t->samples : 11) - 1) * (double)(t ? t->window_ms : 1000) / 1000.0;
}

static double burst_of(const srv_throttle *t, double rate)
{
    return rate * (double)t->samples * (double)t->window_ms / 1000.0;
}

int srv_throttle_mutation(srv_throttle *t, const srv_quota_set *q, kp_str user, kp_str client, double permits,
                          int strict, int64_t now_ms)
{
    double rate;
    sensor *s = t ? lookup(t, q, SRV_QK_CONTROLLER_MUTATION_RATE, user, client, &rate, 1) : NULL;
    if (!s)
        return 0;
    s->last_ms = now_ms;
    if (strict && srv_tokens_left(&s->bucket, rate, burst_of(t, rate), now_ms) < 0)
        return -1;
    srv_tokens_record(&s->bucket, rate, burst_of(t, rate), permits, now_ms);
    return 0;
}

int64_t srv_throttle_mutation_ms(srv_throttle *t, const srv_quota_set *q, kp_str user, kp_str client,
                                 int64_t now_ms)
{
    double rate;
    sensor *s = t ? lookup(t, q, SRV_QK_CONTROLLER_MUTATION_RATE, user, client, &rate, 0) : NULL;
    return s ? srv_tokens_throttle_ms(&s->bucket, rate, burst_of(t, rate), now_ms) : 0;
}

void srv_throttle_expire(srv_throttle *t, int64_t now_ms)
{
    for (int i = 0; t && i < NBUCKETS; i++) {
        sensor **pp = &t->b[i];
        while (*pp) {
            sensor *s = *pp;
            if (now_ms - s->last_ms > EXPIRE_MS && now_ms - s->local_ms > EXPIRE_MS) {
                if (t->urgent == s)
                    t->urgent = NULL;
                *pp = s->next;
                sensor_free(s);
                t->count--;
            } else {
                pp = &s->next;
            }
        }
    }
}

int srv_throttle_count(const srv_throttle *t)
{
    return t ? t->count : 0;
}

/* ---- usage reports --------------------------------------------------------- */

static int reported_key(int key)
{
    /* controller_mutation_rate is a token bucket charged where topics are
     * changed; it is not part of the byte and time rates shared here. */
    return key == SRV_QK_PRODUCER_BYTE_RATE || key == SRV_QK_CONSUMER_BYTE_RATE ||
           key == SRV_QK_REQUEST_PERCENTAGE;
}

static int reportable(const srv_throttle *t, const sensor *s, int64_t grace_ms, int64_t now_ms)
{
    return reported_key(s->key) && now_ms - s->local_ms <= (int64_t)t->samples * t->window_ms + grace_ms;
}

static size_t slen(const char *x)
{
    return x ? srv_slen(x) : 0;
}

/* Builds the report of the sensors for which pick() says so (of `only`
 * alone when set: an urgent report costs no walk of the table), and notes
 * each one's rate as reported. */
static srv_usage *build_report(srv_throttle *t,
                               int (*pick)(const srv_throttle *t, const sensor *s, int64_t grace_ms,
                                           int64_t now_ms),
                               int64_t grace_ms, int64_t now_ms, sensor *only)
{
    int n = 0;
    size_t text = 0;
    for (int i = 0; i < (only ? 1 : NBUCKETS); i++)
        for (sensor *s = only ? only : t->b[i]; s; s = only ? NULL : s->next)
            if (pick(t, s, grace_ms, now_ms)) {
                n++;
                text += slen(s->user) + slen(s->client);
            }
    if (n == 0)
        return NULL;
    size_t head = sizeof(srv_usage) + (size_t)n * sizeof(srv_usage_entry);
    srv_usage *u = malloc(head + text + 1);
    if (!u)
        return NULL;
    char *p = (char *)u + head;
    int k = 0;
    for (int i = 0; i < (only ? 1 : NBUCKETS); i++)
        for (sensor *s = only ? only : t->b[i]; s; s = only ? NULL : s->next) {
            if (!pick(t, s, grace_ms, now_ms))
                continue;
            srv_usage_entry *e = &u->e[k++];
            e->key = s->key;
            e->user = KP_STR_NULL;
            e->client = KP_STR_NULL;
            if (s->user) {
                size_t l = srv_slen(s->user);
                memcpy(p, s->user, l);
                e->user = (kp_str){p, (int32_t)l};
                p += l;
            }
            if (s->client) {
                size_t l = srv_slen(s->client);
                memcpy(p, s->client, l);
                e->client = (kp_str){p, (int32_t)l};
                p += l;
            }
            e->rate = srv_rate_measure(&s->rate, now_ms);
            s->reported = e->rate;
        }
    SRV_ASSERT(k == n, "usage report counted %d rates, then wrote %d", n, k);
    u->n = n;
    u->size = head + text + 1;
    return u;
}

srv_usage *srv_throttle_report(srv_throttle *t, int64_t grace_ms, int64_t now_ms)
{
    return t ? build_report(t, reportable, grace_ms, now_ms, NULL) : NULL;
}

static int is_urgent(const srv_throttle *t, const sensor *s, int64_t grace_ms, int64_t now_ms)
{
    (void)grace_ms;
    (void)now_ms;
    return s == t->urgent;
}

srv_usage *srv_throttle_urgent(srv_throttle *t, int64_t now_ms)
{
    if (!t || !t->urgent)
        return NULL;
    srv_usage *u = build_report(t, is_urgent, 0, now_ms, t->urgent);
    t->urgent = NULL;
    return u;
}

void srv_throttle_share(srv_throttle *t, int nshards)
{
    if (t)
        t->nshards = nshards;
}

srv_usage *srv_usage_copy(const srv_usage *u)
{
    srv_usage *c = malloc(u->size);
    if (!c)
        return NULL;
    memcpy(c, u, u->size);
    /* Names point into the block: move them with it. */
    for (int i = 0; i < c->n; i++) {
        if (c->e[i].user.len >= 0)
            c->e[i].user.p = (const char *)c + (c->e[i].user.p - (const char *)u);
        if (c->e[i].client.len >= 0)
            c->e[i].client.p = (const char *)c + (c->e[i].client.p - (const char *)u);
    }
    return c;
}

void srv_throttle_merge(srv_throttle *t, int from, int npeers, const srv_usage *u, int64_t now_ms)
{
    if (!t || !u)
        return;
    SRV_ASSERT(npeers > 0 && from >= 0 && from < npeers, "usage report from shard %d of %d", from, npeers);
    SRV_ASSERT(t->npeers == 0 || t->npeers == npeers, "usage reports from %d shards, then from %d", t->npeers,
               npeers);
    t->npeers = npeers;
    for (int i = 0; i < u->n; i++) {
        const srv_usage_entry *e = &u->e[i];
        SRV_ASSERT(reported_key(e->key), "usage report of quota key %d", e->key);
        int create = e->rate > 0 && t->count < SRV_THROTTLE_MAX_REPORTED;
        sensor *s = find(t, e->key, e->user, e->client, create);
        if (!s)
            continue; /* at 0 and unknown here, or beyond the bound */
        if (!s->peer) {
            s->peer = calloc((size_t)npeers, sizeof(*s->peer));
            if (!s->peer)
                continue; /* out of memory: this client is held per shard */
        }
        s->peer[from] = e->rate;
        double sum = 0;
        for (int j = 0; j < npeers; j++)
            sum += s->peer[j];
        s->peer_sum = sum;
        if (e->rate > 0)
            s->last_ms = now_ms;
    }
}

double srv_throttle_peer_rate(srv_throttle *t, int key, kp_str user, kp_str client)
{
    sensor *s = t ? find(t, key, user, client, 0) : NULL;
    return s ? s->peer_sum : 0;
}

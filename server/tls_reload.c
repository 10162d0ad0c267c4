/*
 * tls_reload.c — certificates replaced without a restart (see tls.h: the
 * srv_tls_slot of a listener).
 *
 * Owns: the published TLS context of each SSL / SASL_SSL listener, its
 * replacement when the key or trust store files change (a watcher thread
 * comparing SHA-256 digests of their content) or
 * when IncrementalAlterConfigs sets listener.name.<l>.ssl.keystore.location
 * (a helper thread per call), Kafka's checks on a new key store (same subject
 * DN and SubjectAltName as the one in use), and freeing a replaced context
 * once no shard can still pick it up.
 *
 * Must not: read a file or build a context on a shard thread, or make a shard
 * wait on a lock. Shards only load two atomics and take an OpenSSL reference
 * (srv_tls_slot_ctx); everything that reads files runs on the watcher or a
 * helper thread, serialised per listener by the slot's mutex, which no shard
 * ever takes.
 *
 * Why an atomic pointer with per-shard references rather than srv_call: the
 * builders are not shards (they must not run on a loop), and a context is an
 * immutable published version like srv_meta: each shard keeps its own
 * reference to the version it uses and records the generation it has seen;
 * a replaced context is released by the publisher only when every shard has
 * seen a later generation, so no shard can be between reading the old
 * pointer and taking its reference. Connections hold their own reference
 * through their SSL, so existing connections keep their certificate.
 */
#include "tls.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call.h"
#include "logging.h"
#include "srv_assert.h"

#define RETIRED_MAX 16

typedef struct fprint {
    int ok; /* the file was read */
    unsigned char sha[32];
} fprint;

typedef struct view {
    SSL_CTX *ctx; /* this shard's reference */
    uint64_t gen; /* atomic: the generation ctx was taken at (read by the publisher) */
    char pad[48]; /* one cache line per shard */
} view;

struct srv_tls_slot {
    const srv_config *cfg;
    char listener[32];
    int nshards;
    pthread_mutex_t mu; /* reloaders only */
    SSL_CTX *cur;       /* atomic: the published context (the publisher's reference) */
    uint64_t gen;       /* atomic: bumped after each publish */
    view *views;        /* [shard] */
    struct {
        SSL_CTX *ctx;
        uint64_t gen; /* freed once every shard has seen this generation */
    } retired[RETIRED_MAX];
    int nretired;
    char ks[PATH_MAX], ts[PATH_MAX]; /* locations in use; "" = none (inline PEM) */
    uint64_t applied_seq;            /* the newest ordered reload published (srv_tls_slot_reload_seq) */
    fprint ks_seen, ts_seen;         /* the content last tried, loaded or not */
};

static int running_jobs; /* atomic: helper threads still touching slots */

static void fp_read(const char *path, fprint *fp)
{
    memset(fp, 0, sizeof(*fp));
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char buf[8192];
    size_t r;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    while (ok && (r = fread(buf, 1, sizeof(buf), f)) > 0)
        ok = EVP_DigestUpdate(md, buf, r) == 1;
    unsigned int dl = 0;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, fp->sha, &dl) == 1;
    EVP_MD_CTX_free(md);
    fclose(f);
    fp->ok = ok;
}

static int fp_same_content(const fprint *a, const fprint *b)
{
    return a->ok == b->ok && (!a->ok || memcmp(a->sha, b->sha, sizeof(a->sha)) == 0);
}

srv_tls_slot *srv_tls_slot_new(const srv_config *cfg, const char *listener, int nshards, char *err, size_t n)
{
    SSL_CTX *ctx = srv_tls_ctx_new_at(cfg, listener, NULL, NULL, err, n);
    if (!ctx)
        return NULL;
    srv_tls_slot *sl = calloc(1, sizeof(*sl));
    view *v = calloc((size_t)nshards, sizeof(view));
    if (!sl || !v) {
        free(sl);
        free(v);
        SSL_CTX_free(ctx);
        snprintf(err, n, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&sl->mu, NULL);
    sl->cfg = cfg;
    snprintf(sl->listener, sizeof(sl->listener), "%s", listener);
    sl->nshards = nshards;
    sl->views = v;
    sl->cur = ctx;
    sl->gen = 1;
    const char *ks = srv_config_sec(cfg, listener, "ssl.keystore.location");
    const char *ts = srv_config_sec(cfg, listener, "ssl.truststore.location");
    snprintf(sl->ks, sizeof(sl->ks), "%s",
             ks && !srv_config_sec(cfg, listener, "ssl.keystore.certificate.chain") ? ks : "");
    snprintf(sl->ts, sizeof(sl->ts), "%s", ts ? ts : "");
    fp_read(sl->ks, &sl->ks_seen);
    fp_read(sl->ts, &sl->ts_seen);
    return sl;
}

SSL_CTX *srv_tls_slot_ctx(srv_tls_slot *sl, int shard)
{
    SRV_ASSERT(shard >= 0 && shard < sl->nshards, "TLS context asked for shard %d of %d", shard, sl->nshards);
    view *v = &sl->views[shard];
    uint64_t g = __atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE);
    if (v->ctx && __atomic_load_n(&v->gen, __ATOMIC_RELAXED) == g)
        return v->ctx;
    /* The publisher keeps `cur` alive until this shard's recorded
     * generation passes the one that replaced it: the reference is taken
     * before the generation is recorded. */
    SSL_CTX *c = __atomic_load_n(&sl->cur, __ATOMIC_ACQUIRE);
    SSL_CTX_up_ref(c);
    SSL_CTX *old = v->ctx;
    v->ctx = c;
    __atomic_store_n(&v->gen, g, __ATOMIC_RELEASE);
    SSL_CTX_free(old);
    return c;
}

/* Under mu: frees the replaced contexts no shard can pick up any more. */
static void collect(srv_tls_slot *sl)
{
    int k = 0;
    for (int i = 0; i < sl->nretired; i++) {
        int seen = 1;
        for (int s = 0; s < sl->nshards && seen; s++)
            seen = __atomic_load_n(&sl->views[s].gen, __ATOMIC_ACQUIRE) >= sl->retired[i].gen;
        if (seen)
            SSL_CTX_free(sl->retired[i].ctx);
        else
            sl->retired[k++] = sl->retired[i];
    }
    sl->nretired = k;
}

static void name_text(X509_NAME *nm, char *out, size_t cap)
{
    if (srv_tls_dn(nm, out, cap) < 0)
        snprintf(out, cap, "(too long)");
}

static const ASN1_OCTET_STRING *san_of(X509 *x)
{
    int i = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);
    return i < 0 ? NULL : X509_EXTENSION_get_data(X509_get_ext(x, i));
}

/* Kafka's ssl.allow.dn.changes / ssl.allow.san.changes (both false by
 * default, not settable here): a new key store must name the same server. */
static int same_identity(SSL_CTX *old, SSL_CTX *nw, char *msg, size_t n)
{
    X509 *a = SSL_CTX_get0_certificate(old), *b = SSL_CTX_get0_certificate(nw);
    if (!a || !b)
        return 1;
    if (X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) != 0) {
        char x[256], y[256];
        name_text(X509_get_subject_name(a), x, sizeof(x));
        name_text(X509_get_subject_name(b), y, sizeof(y));
        snprintf(msg, n, "Keystore DistinguishedName does not match: existing={DN=%s}, new={DN=%s}", x, y);
        return 0;
    }
    const ASN1_OCTET_STRING *sa = san_of(a), *sb = san_of(b);
    if ((sa == NULL) != (sb == NULL) || (sa && ASN1_OCTET_STRING_cmp(sa, sb) != 0)) {
        snprintf(msg, n, "Keystore SubjectAltName does not match the one in use");
        return 0;
    }
    return 1;
}

static void describe_leaf(SSL_CTX *ctx, char *out, size_t cap)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    char dn[256] = "?", until[64] = "?";
    if (x) {
        name_text(X509_get_subject_name(x), dn, sizeof(dn));
        BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL;
        long len = 0;
        if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)))
            len = BIO_get_mem_data(b, &data);
        snprintf(until, sizeof(until), "%.*s", (int)(len > 0 ? len : 0), data ? data : "");
        BIO_free(b);
    }
    snprintf(out, cap, "certificate %s, valid until %s", dn, until);
}

/* Under mu. 0 published (or validated), 1 nothing changed, -1 refused with
 * msg. ks / ts: new locations, NULL = the ones in use. */
static int reload_locked(srv_tls_slot *sl, const char *ks, const char *ts, int validate_only,
                         int only_if_changed, char *msg, size_t n)
{
    const char *nks = ks ? ks : sl->ks, *nts = ts ? ts : sl->ts;
    fprint kf, tf;
    fp_read(nks, &kf);
    fp_read(nts, &tf);
    if (only_if_changed) {
        if (fp_same_content(&kf, &sl->ks_seen) && fp_same_content(&tf, &sl->ts_seen))
            return 1;
        sl->ks_seen = kf;
        sl->ts_seen = tf;
    }
    char err[512];
    SSL_CTX *nw =
        srv_tls_ctx_new_at(sl->cfg, sl->listener, *nks ? nks : NULL, *nts ? nts : NULL, err, sizeof(err));
    if (!nw) {
        snprintf(msg, n, "%s", err);
        return -1;
    }
    SSL_CTX *old = __atomic_load_n(&sl->cur, __ATOMIC_ACQUIRE);
    if (!same_identity(old, nw, msg, n)) {
        SSL_CTX_free(nw);
        return -1;
    }
    if (validate_only) {
        SSL_CTX_free(nw);
        return 0;
    }
    collect(sl);
    if (sl->nretired == RETIRED_MAX) {
        SSL_CTX_free(nw);
        snprintf(msg, n, "%d earlier contexts are still in use by an idle shard; try again later",
                 RETIRED_MAX);
        return -1;
    }
    sl->retired[sl->nretired].ctx = old;
    __atomic_store_n(&sl->cur, nw, __ATOMIC_RELEASE);
    uint64_t g = __atomic_add_fetch(&sl->gen, 1, __ATOMIC_ACQ_REL);
    sl->retired[sl->nretired++].gen = g;
    if (ks)
        snprintf(sl->ks, sizeof(sl->ks), "%s", ks);
    if (ts)
        snprintf(sl->ts, sizeof(sl->ts), "%s", ts);
    sl->ks_seen = kf;
    sl->ts_seen = tf;
    char what[400];
    describe_leaf(nw, what, sizeof(what));
    srv_info("listener %s: TLS key and trust stores reloaded (%s%s%s): new connections use %s", sl->listener,
             *sl->ks ? sl->ks : "inline key", *sl->ts ? ", " : "", sl->ts, what);
    return 0;
}

int srv_tls_slot_reload(srv_tls_slot *sl, const char *ks, const char *ts, int validate_only, char *msg,
                        size_t n)
{
    pthread_mutex_lock(&sl->mu);
    int rc = reload_locked(sl, ks, ts, validate_only, 0, msg, n);
    pthread_mutex_unlock(&sl->mu);
    return rc < 0 ? -1 : 0;
}

int srv_tls_slot_reload_seq(srv_tls_slot *sl, const char *ks, const char *ts, uint64_t seq, char *msg,
                            size_t n)
{
    pthread_mutex_lock(&sl->mu);
    int rc = 1;
    if (seq >= sl->applied_seq) {
        rc = reload_locked(sl, ks, ts, 0, 0, msg, n) < 0 ? -1 : 0;
        if (rc == 0)
            sl->applied_seq = seq;
    }
    pthread_mutex_unlock(&sl->mu);
    return rc;
}

int srv_tls_slot_check(srv_tls_slot *sl)
{
    pthread_mutex_lock(&sl->mu);
    int rc = 1;
    /* The content, not the metadata: a file rewritten in place within one
     * clock tick keeps its mtime (and maybe its size). Key stores are a few
     * KiB, read every few seconds at most, off the loops. */
    if (*sl->ks || *sl->ts) {
        char msg[600];
        rc = reload_locked(sl, NULL, NULL, 0, 1, msg, sizeof(msg));
        if (rc < 0)
            srv_warn("listener %s: the changed key or trust store cannot be used, keeping the current "
                     "certificate: %s",
                     sl->listener, msg);
    }
    collect(sl);
    pthread_mutex_unlock(&sl->mu);
    return rc;
}

void srv_tls_slot_free(srv_tls_slot *sl)
{
    if (!sl)
        return;
    for (int s = 0; s < sl->nshards; s++)
        SSL_CTX_free(sl->views[s].ctx);
    for (int i = 0; i < sl->nretired; i++)
        SSL_CTX_free(sl->retired[i].ctx);
    SSL_CTX_free(sl->cur);
    pthread_mutex_destroy(&sl->mu);
    free(sl->views);
    free(sl);
}

/* ---- the file watcher ------------------------------------------------------- */

struct srv_tls_watch {
    srv_tls_slot **slots;
    int n;
    int64_t interval_ms;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
};

static void *watch_main(void *arg)
{
    srv_tls_watch *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(w->interval_ms / 1000);
        until.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!w->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&w->cv, &w->mu, &until);
        if (w->stop)
            break;
        pthread_mutex_unlock(&w->mu);
        for (int i = 0; i < w->n; i++)
            if (w->slots[i])
                srv_tls_slot_check(w->slots[i]);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

srv_tls_watch *srv_tls_watch_start(srv_tls_slot **slots, int n, int64_t interval_ms)
{
    int any = 0;
    for (int i = 0; i < n; i++)
        any |= slots[i] != NULL;
    if (interval_ms <= 0 || !any)
        return NULL;
    srv_tls_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->slots = slots;
    w->n = n;
    w->interval_ms = interval_ms;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        srv_warn("cannot start the TLS file watcher: certificates are reloaded only through "
                 "IncrementalAlterConfigs");
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

void srv_tls_watch_stop(srv_tls_watch *w)
{
    /* Helper threads of IncrementalAlterConfigs still building a context
     * use the slots: wait for them (each is bounded by reading two files). */
    for (int i = 0; i < 2000 && __atomic_load_n(&running_jobs, __ATOMIC_ACQUIRE) > 0; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* ---- a reload asked by IncrementalAlterConfigs -------------------------------- */

typedef struct job {
    srv_tls_slot *sl;
    char ks[PATH_MAX], ts[PATH_MAX];
    int ks_set, ts_set; /* 0: the location in use stays; else ks / ts, "" = none (the configured key) */
    int validate_only;
    uint64_t seq; /* 0: unordered */
    int finished; /* atomic: the helper thread wrote ok and msg and will not touch the job again */
    int ok;
    char msg[600];
    srv_req *req;
    struct event *poll;
    srv_tls_reload_done done;
    void *arg;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    const char *ks = j->ks_set ? j->ks : NULL, *ts = j->ts_set ? j->ts : NULL;
    if (j->seq && !j->validate_only)
        j->ok = srv_tls_slot_reload_seq(j->sl, ks, ts, j->seq, j->msg, sizeof(j->msg)) >= 0;
    else
        j->ok = srv_tls_slot_reload(j->sl, ks, ts, j->validate_only, j->msg, sizeof(j->msg)) == 0;
    __atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
    __atomic_sub_fetch(&running_jobs, 1, __ATOMIC_ACQ_REL);
    return NULL;
}

static void job_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job *j = arg;
    if (!__atomic_load_n(&j->finished, __ATOMIC_ACQUIRE)) {
        struct timeval tv = {0, 5000};
        evtimer_add(j->poll, &tv);
        return;
    }
    event_free(j->poll);
    srv_req *req = j->req;
    j->done(req, j->arg, j->ok, j->msg);
    free(j);
    srv_req_release(req);
}

void srv_tls_reload_async(srv_req *req, srv_tls_slot *sl, const char *ks, const char *ts, int validate_only,
                          uint64_t seq, srv_tls_reload_done done, void *arg)
{
    job *j = calloc(1, sizeof(*j));
    if (!j) {
        done(req, arg, 0, "out of memory");
        return;
    }
    j->sl = sl;
    snprintf(j->ks, sizeof(j->ks), "%s", ks ? ks : "");
    snprintf(j->ts, sizeof(j->ts), "%s", ts ? ts : "");
    j->ks_set = ks != NULL;
    j->ts_set = ts != NULL;
    j->validate_only = validate_only;
    j->seq = seq;
    j->req = req;
    j->done = done;
    j->arg = arg;
    /* The shard polls for the result: a helper thread cannot wake a loop
     * (libevent runs without its locking here), and a reload is rare. */
    j->poll = evtimer_new(req->shard->base, job_poll, j);
    pthread_attr_t at;
    pthread_t th;
    int started = 0;
    if (j->poll && pthread_attr_init(&at) == 0) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        __atomic_add_fetch(&running_jobs, 1, __ATOMIC_ACQ_REL);
        started = pthread_create(&th, &at, job_main, j) == 0;
        if (!started)
            __atomic_sub_fetch(&running_jobs, 1, __ATOMIC_ACQ_REL);
        pthread_attr_destroy(&at);
    }
    if (!started) {
        if (j->poll)
            event_free(j->poll);
        free(j);
        done(req, arg, 0, "cannot start a thread to load the key store");
        return;
    }
    srv_req_hold(req);
    struct timeval tv = {0, 5000};
    evtimer_add(j->poll, &tv);
}

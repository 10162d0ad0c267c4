/*
 * kbroker-mirror.c — copies topics from a source Kafka-protocol cluster to a
 * destination cluster (one-shot or continuous), translates consumer-group
 * offsets through the recorded offset mapping, and verifies that both sides
 * hold the same records. See tools/MIRROR.md.
 *
 * Owns: topic selection, destination topic creation (partition count and the
 * source's topic-override configs), the copy loop (one assign()-based source
 * consumer, one idempotent destination producer), the checkpoint file (per
 * source partition: next source offset, destination offset, offset mapping),
 * the resume rule that skips records already delivered after the last
 * checkpoint write, group offset translation, --verify, progress output.
 *
 * Must not: record a source offset as copied before the destination confirmed
 * it (delivery report); produce a record twice across a crash (the resume rule
 * counts what the destination already holds); depend on consumer groups for
 * the data path (assign() only; the group.id librdkafka insists on is never
 * used for commits); write the checkpoint in place (temp file, fsync, rename).
 */
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S      1000000000ull
#define MAX_SEGS      4096 /* mapping entries kept per partition before coarsening */
#define BATCH         4096 /* source messages taken from the consumer queue per call */
#define CKPT_MAGIC    "# kbroker-mirror checkpoint v1"
#define EXIT_ERROR    1
#define EXIT_USAGE    2
#define EXIT_DIFFER   3
#define EXIT_INTERRUP 4

/* ---------------------------------------------------------------- state */

/* A run of copied records: source offsets [src_start, src_end) went to
 * destination offsets [dest_start, dest_end). Dense (both spans equal) means
 * record i of the run sits at src_start+i and dest_start+i; a coarse entry
 * (made when a partition has too many gaps to keep every run) only says that
 * the records of that source range are somewhere in that destination range. */
typedef struct {
    int64_t src_start, src_end, dest_start, dest_end;
} seg;

typedef struct {
    int64_t off;
    uint64_t hash;
} rec_hash;

typedef struct {
    rec_hash *v;
    size_t n, cap;
    int64_t lo, hi;
    bool eof;
} hash_list;

typedef struct topic topic;

typedef struct {
    topic *t;
    int32_t id;
    int64_t src_lo, src_hi; /* source watermarks at start */
    int64_t end;            /* one-shot: copy source offsets below this */
    int64_t next_src;       /* confirmed: the next source offset to copy */
    int64_t next_dest;      /* confirmed: the destination offset after the last confirmed record */
    int64_t skip;           /* records the destination already holds beyond the checkpoint */
    int64_t eof_pos;        /* the consumer has seen every source offset below this */
    int64_t inflight;       /* produced, delivery not reported yet */
    seg *segs;
    int nseg, capseg;
    bool handed_all; /* one-shot: every record below `end` was handed to the producer */
    bool paused;
    bool broken; /* a delivery failed: later reports of this partition are not trusted */
    uint64_t records, bytes;
    hash_list vh[2]; /* --verify: source, destination */
} part;

struct topic {
    char *name;
    int nparts;
    part *parts;
    rd_kafka_topic_t *prkt;
    bool dest_exists;
};

/* A checkpoint entry read from the file, consumed by a selected partition or
 * written back unchanged (so a run over fewer topics keeps the others). */
typedef struct {
    char *topic;
    int32_t id;
    int64_t next_src, next_dest;
    seg *segs;
    int nseg;
    bool used;
} ckpt_entry;

typedef struct {
    const char *source, *dest, *checkpoint, *compression;
    char *topics, *groups;
    const char *topic_regex, *group_regex;
    bool follow, verify;
    double max_rate, progress_interval, group_interval;
    int timeout_ms, ckpt_interval_ms, replication_factor;
    char **xprops;
    int nxprops;
} opts;

typedef struct {
    opts o;
    topic *topics;
    int ntopics;
    ckpt_entry *ck;
    int nck;
    rd_kafka_t *src_admin, *dst_admin, *consumer, *producer;
    bool tty;
    bool failed;
    bool soft; /* errors are logged, not fatal (periodic group translation in --follow) */
    char first_error[512];
    uint64_t t0, last_progress, last_ckpt;
    uint64_t produced;
    bool ckpt_dirty;
} mirror;

static atomic_bool g_stop;
static mirror *g_mr; /* for the delivery report callback, whose opaque is the side's error record */

typedef struct {
    const char *side;
    atomic_int last_err;
    char last_reason[256];
} side_errors;
static side_errors g_err_src = {.side = "source"}, g_err_dst = {.side = "destination"};

/* ---------------------------------------------------------------- helpers */

__attribute__((format(printf, 3, 4))) static void msgf(char *dst, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, len, fmt, ap);
    va_end(ap);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static bool g_tty_line; /* a status line is on screen and must be cleared before other output */

__attribute__((format(printf, 1, 2))) static void logf_(const char *fmt, ...)
{
    if (g_tty_line) {
        fputs("\r\033[K", stderr);
        g_tty_line = false;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs("kbroker-mirror: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void fail(mirror *mr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(mirror *mr, const char *fmt, ...)
{
    char msg[sizeof mr->first_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (mr->soft) {
        logf_("error: %s", msg);
        return;
    }
    if (mr->failed)
        return;
    mr->failed = true;
    memcpy(mr->first_error, msg, sizeof msg);
    atomic_store(&g_stop, true);
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, true);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "kbroker-mirror: out of memory\n");
        exit(EXIT_ERROR);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "kbroker-mirror: out of memory\n");
        exit(EXIT_ERROR);
    }
    return d;
}

static bool in_list(const char *csv, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = csv; p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return true;
        p = c ? c + 1 : NULL;
    }
    return false;
}

/* ---------------------------------------------------------------- clients */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* Connection churn is logged at warning level and is retried anyway;
     * only errors are worth the operator's attention. */
    if (level <= 3)
        logf_("librdkafka: %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    side_errors *se = opaque;
    atomic_store(&se->last_err, err);
    msgf(se->last_reason, sizeof se->last_reason, "%s", reason);
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__FATAL)
        atomic_store(&g_stop, true);
    else if (!atomic_load(&g_stop) && err != RD_KAFKA_RESP_ERR__TRANSPORT)
        logf_("%s: %s: %s", se->side, rd_kafka_err2name(err), reason);
}

static bool conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *why, size_t whylen)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        msgf(why, whylen, "%s=%s: %s", k, v, err);
        return false;
    }
    return true;
}

/* Client configuration for one side: bootstrap, then -X KEY=VAL (both sides)
 * and -X source.KEY=VAL / -X dest.KEY=VAL, so SASL and TLS settings reach
 * every client of that side. */
static rd_kafka_conf_t *side_conf(mirror *mr, bool src, const char *role, char *why, size_t whylen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    side_errors *se = src ? &g_err_src : &g_err_dst;
    rd_kafka_conf_set_log_cb(c, log_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    rd_kafka_conf_set_opaque(c, se);
    char id[64];
    snprintf(id, sizeof id, "kbroker-mirror-%s", role);
    bool ok = conf_set(c, "bootstrap.servers", src ? mr->o.source : mr->o.dest, why, whylen) &&
              conf_set(c, "client.id", id, why, whylen);
    for (int i = 0; ok && i < mr->o.nxprops; i++) {
        char *kv = mr->o.xprops[i], *eq = strchr(kv, '=');
        const char *key = kv;
        if (!strncmp(kv, "source.", 7)) {
            if (!src)
                continue;
            key = kv + 7;
        } else if (!strncmp(kv, "dest.", 5)) {
            if (src)
                continue;
            key = kv + 5;
        }
        *eq = '\0';
        ok = conf_set(c, key, eq + 1, why, whylen);
        *eq = '=';
    }
    if (!ok) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

static rd_kafka_t *new_client(rd_kafka_conf_t *c, rd_kafka_type_t type, char *why, size_t whylen)
{
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (!rk) {
        msgf(why, whylen, "rd_kafka_new: %s", err);
        rd_kafka_conf_destroy(c);
    }
    return rk;
}

/* Metadata of every topic, retried in one-second slices so an authentication
 * failure reported through error_cb ends the wait early with its own message
 * instead of a generic timeout. */
static const struct rd_kafka_metadata *cluster_metadata(mirror *mr, rd_kafka_t *rk, bool src)
{
    side_errors *se = src ? &g_err_src : &g_err_dst;
    const char *addr = src ? mr->o.source : mr->o.dest;
    uint64_t deadline = now_ns() + (uint64_t)mr->o.timeout_ms * 1000000ull;
    rd_kafka_resp_err_t err;
    for (;;) {
        const struct rd_kafka_metadata *md;
        err = rd_kafka_metadata(rk, 1, NULL, &md, 1000);
        rd_kafka_poll(rk, 0); /* serves error_cb */
        if (!err)
            return md;
        int last = atomic_load(&se->last_err);
        if (last == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
            fail(mr, "authentication with the %s cluster %s failed: %s", se->side, addr, se->last_reason);
            return NULL;
        }
        if (atomic_load(&g_stop) || now_ns() >= deadline)
            break;
    }
    if (!mr->failed)
        fail(mr, "%s cluster %s unreachable: no metadata within %d ms (%s%s%s)", se->side, addr,
             mr->o.timeout_ms, rd_kafka_err2str(err), se->last_reason[0] ? "; last error: " : "",
             se->last_reason);
    return NULL;
}

/* Waits for one admin result event; NULL (with mr failed) on timeout. */
static rd_kafka_event_t *admin_wait(mirror *mr, rd_kafka_queue_t *q, const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, mr->o.timeout_ms + 5000);
    if (!ev) {
        fail(mr, "%s: no answer within %d ms", what, mr->o.timeout_ms + 5000);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        fail(mr, "%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static rd_kafka_AdminOptions_t *admin_opts(mirror *mr, rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
    char err[256];
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, op);
    rd_kafka_AdminOptions_set_request_timeout(ao, mr->o.timeout_ms, err, sizeof err);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
        rd_kafka_AdminOptions_set_operation_timeout(ao, mr->o.timeout_ms, err, sizeof err);
    return ao;
}

/* ---------------------------------------------------------------- mapping */

static void map_push(part *p, seg s)
{
    if (p->nseg == p->capseg) {
        p->capseg = p->capseg ? 2 * p->capseg : 8;
        p->segs = xrealloc(p->segs, (size_t)p->capseg * sizeof *p->segs);
    }
    p->segs[p->nseg++] = s;
}

static bool seg_dense(const seg *s)
{
    return s->src_end - s->src_start == s->dest_end - s->dest_start;
}

/* Source record `s` is confirmed at destination offset `d`. Dense copying
 * extends the last run, so an ungapped partition needs one entry; gaps in the
 * source (compaction, deleted records, transaction markers) start a new one.
 * Past MAX_SEGS the older half is merged pairwise into coarse entries: group
 * translation inside a coarse entry then maps to its first destination
 * offset — a few records re-read, never one skipped. */
static void map_add(part *p, int64_t s, int64_t d)
{
    seg *l = p->nseg ? &p->segs[p->nseg - 1] : NULL;
    if (l && l->src_end == s && l->dest_end == d && seg_dense(l)) {
        l->src_end++;
        l->dest_end++;
    } else {
        map_push(p, (seg){s, s + 1, d, d + 1});
        if (p->nseg > MAX_SEGS) {
            int half = p->nseg / 2 & ~1, w = 0;
            for (int i = 0; i < half; i += 2)
                p->segs[w++] = (seg){p->segs[i].src_start, p->segs[i + 1].src_end, p->segs[i].dest_start,
                                     p->segs[i + 1].dest_end};
            memmove(p->segs + w, p->segs + half, (size_t)(p->nseg - half) * sizeof *p->segs);
            p->nseg = w + p->nseg - half;
        }
    }
    p->next_src = s + 1;
    p->next_dest = d + 1;
}

/* The destination offset a consumer must start from to continue exactly after
 * source offset `c` - 1 (a committed offset is the next record to read), or
 * -1 when `c` lies beyond what has been confirmed so far. */
static int64_t map_translate(const part *p, int64_t c)
{
    if (c == p->next_src)
        return p->next_dest;
    if (c > p->next_src)
        return -1;
    int lo = 0, hi = p->nseg; /* first entry whose src_end > c */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (p->segs[mid].src_end > c)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == p->nseg)
        return p->next_dest; /* in the gap after the last copied record */
    const seg *s = &p->segs[lo];
    if (c < s->src_start)
        return s->dest_start; /* a gap: the next existing record */
    return seg_dense(s) ? s->dest_start + (c - s->src_start) : s->dest_start;
}

/* ---------------------------------------------------------------- checkpoint */

static bool ckpt_load(mirror *mr)
{
    FILE *f = fopen(mr->o.checkpoint, "r");
    if (!f) {
        if (errno == ENOENT)
            return true;
        fail(mr, "checkpoint %s: %s", mr->o.checkpoint, strerror(errno));
        return false;
    }
    char line[512], name[256];
    int lineno = 0, nparts_end = -1;
    ckpt_entry *cur = NULL;
    int segs_left = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        seg s;
        int32_t id;
        int64_t ns, nd;
        int nseg;
        if (lineno == 1) {
            ok = !strncmp(line, CKPT_MAGIC, strlen(CKPT_MAGIC));
        } else if (line[0] == '#' || line[0] == '\n') {
            continue;
        } else if (segs_left > 0) {
            ok = sscanf(line, "map %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64, &s.src_start, &s.src_end,
                        &s.dest_start, &s.dest_end) == 4 &&
                 s.src_end > s.src_start && s.dest_end > s.dest_start &&
                 (cur->nseg == 0 || cur->segs[cur->nseg - 1].src_end <= s.src_start);
            if (ok) {
                cur->segs[cur->nseg++] = s;
                segs_left--;
            }
        } else if (sscanf(line, "partition %255s %" SCNd32 " %" SCNd64 " %" SCNd64 " %d", name, &id, &ns, &nd,
                          &nseg) == 5 &&
                   id >= 0 && ns >= 0 && nd >= 0 && nseg >= 0 && nseg <= 4 * MAX_SEGS) {
            mr->ck = xrealloc(mr->ck, (size_t)(mr->nck + 1) * sizeof *mr->ck);
            cur = &mr->ck[mr->nck++];
            *cur = (ckpt_entry){.topic = xstrdup(name), .id = id, .next_src = ns, .next_dest = nd};
            cur->segs = xrealloc(NULL, (size_t)nseg * sizeof *cur->segs);
            segs_left = nseg;
        } else if (sscanf(line, "end %d", &nparts_end) == 1) {
            break;
        } else {
            ok = false;
        }
    }
    fclose(f);
    /* The trailing count detects a file cut short by something other than
     * this tool (which only ever renames a complete, fsync'ed file). */
    if (!ok || segs_left || nparts_end != mr->nck) {
        fail(mr, "checkpoint %s is malformed (line %d); refusing to guess where to resume", mr->o.checkpoint,
             lineno);
        return false;
    }
    logf_("resuming from checkpoint %s (%d partitions)", mr->o.checkpoint, mr->nck);
    return true;
}

static void ckpt_write_part(FILE *f, const char *topic, int32_t id, int64_t ns, int64_t nd, const seg *segs,
                            int nseg)
{
    fprintf(f, "partition %s %" PRId32 " %" PRId64 " %" PRId64 " %d\n", topic, id, ns, nd, nseg);
    for (int i = 0; i < nseg; i++)
        fprintf(f, "map %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", segs[i].src_start,
                segs[i].src_end, segs[i].dest_start, segs[i].dest_end);
}

/* Write to PATH.tmp, fsync, rename over PATH, fsync the directory: a crash
 * leaves either the previous or the new checkpoint, never a mix. */
static bool ckpt_save(mirror *mr)
{
    if (!mr->o.checkpoint)
        return true;
    size_t plen = strlen(mr->o.checkpoint);
    char *tmp = xrealloc(NULL, plen + 5);
    memcpy(tmp, mr->o.checkpoint, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        logf_("checkpoint %s: %s", tmp, strerror(errno));
        free(tmp);
        return false;
    }
    int n = 0;
    fprintf(f,
            "%s\n# partition TOPIC PARTITION NEXT_SOURCE_OFFSET NEXT_DEST_OFFSET NMAP\n"
            "# map SRC_START SRC_END DEST_START DEST_END   (half-open ranges)\n",
            CKPT_MAGIC);
    for (int t = 0; t < mr->ntopics; t++)
        for (int i = 0; i < mr->topics[t].nparts; i++, n++) {
            part *p = &mr->topics[t].parts[i];
            ckpt_write_part(f, p->t->name, p->id, p->next_src, p->next_dest, p->segs, p->nseg);
        }
    for (int i = 0; i < mr->nck; i++)
        if (!mr->ck[i].used) {
            ckpt_write_part(f, mr->ck[i].topic, mr->ck[i].id, mr->ck[i].next_src, mr->ck[i].next_dest,
                            mr->ck[i].segs, mr->ck[i].nseg);
            n++;
        }
    fprintf(f, "end %d\n", n);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, mr->o.checkpoint) != 0)
        ok = false;
    if (ok) {
        char *dcopy = xstrdup(mr->o.checkpoint);
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dcopy);
    } else {
        logf_("checkpoint %s: write failed: %s", mr->o.checkpoint, strerror(errno));
    }
    free(tmp);
    mr->ckpt_dirty = false;
    mr->last_ckpt = now_ns();
    return ok;
}

/* ---------------------------------------------------------------- topics */

static bool select_topics(mirror *mr)
{
    const struct rd_kafka_metadata *md = cluster_metadata(mr, mr->src_admin, true);
    if (!md)
        return false;
    regex_t re;
    memset(&re, 0, sizeof re);
    if (mr->o.topic_regex) {
        int rc = regcomp(&re, mr->o.topic_regex, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char e[128];
            regerror(rc, &re, e, sizeof e);
            fail(mr, "--topic-regex '%s': %s", mr->o.topic_regex, e);
            rd_kafka_metadata_destroy(md);
            return false;
        }
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[i];
        bool want = (mr->o.topics && in_list(mr->o.topics, mt->topic)) ||
                    (mr->o.topic_regex && mt->topic[0] != '_' && !regexec(&re, mt->topic, 0, NULL, 0));
        if (!want || mt->err)
            continue;
        mr->topics = xrealloc(mr->topics, (size_t)(mr->ntopics + 1) * sizeof *mr->topics);
        topic *t = &mr->topics[mr->ntopics++];
        *t = (topic){.name = xstrdup(mt->topic), .nparts = mt->partition_cnt};
        t->parts = xrealloc(NULL, (size_t)t->nparts * sizeof *t->parts);
        memset(t->parts, 0, (size_t)t->nparts * sizeof *t->parts);
    }
    /* Metadata lists partitions in any order; ours are indexed by id. */
    for (int t = 0; t < mr->ntopics; t++)
        for (int i = 0; i < mr->topics[t].nparts; i++) {
            mr->topics[t].parts[i].t = &mr->topics[t];
            mr->topics[t].parts[i].id = i;
        }
    if (mr->o.topic_regex)
        regfree(&re);
    for (const char *p = mr->o.topics; p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        bool found = false;
        for (int t = 0; t < mr->ntopics; t++)
            found |= strlen(mr->topics[t].name) == len && !strncmp(mr->topics[t].name, p, len);
        if (!found && len) {
            fail(mr, "topic '%.*s' does not exist on the source cluster %s", (int)len, p, mr->o.source);
            rd_kafka_metadata_destroy(md);
            return false;
        }
        p = c ? c + 1 : NULL;
    }
    rd_kafka_metadata_destroy(md);
    if (!mr->ntopics) {
        fail(mr, "no source topic matches --topic-regex '%s'", mr->o.topic_regex);
        return false;
    }
    return true;
}

/* The source topic's overrides (config source = topic), as name/value pairs
 * in `out` (names at even, values at odd indexes). */
static int source_overrides(mirror *mr, const topic *t, char ***out)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t->name);
    rd_kafka_queue_t *q = rd_kafka_queue_new(mr->src_admin);
    rd_kafka_AdminOptions_t *ao = admin_opts(mr, mr->src_admin, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(mr->src_admin, &cr, 1, ao, q);
    char what[300];
    msgf(what, sizeof what, "DescribeConfigs %s on the source", t->name);
    rd_kafka_event_t *ev = admin_wait(mr, q, what);
    int n = -1;
    *out = NULL;
    if (ev) {
        size_t cnt = 0;
        const rd_kafka_ConfigResource_t **rs =
            rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
        if (cnt != 1 || rd_kafka_ConfigResource_error(rs[0])) {
            fail(mr, "%s: %s", what, cnt ? rd_kafka_ConfigResource_error_string(rs[0]) : "empty answer");
        } else {
            size_t ne = 0;
            const rd_kafka_ConfigEntry_t **es = rd_kafka_ConfigResource_configs(rs[0], &ne);
            n = 0;
            for (size_t i = 0; i < ne; i++) {
                if (rd_kafka_ConfigEntry_source(es[i]) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG ||
                    !rd_kafka_ConfigEntry_value(es[i]))
                    continue;
                *out = xrealloc(*out, (size_t)(n + 2) * sizeof **out);
                (*out)[n++] = xstrdup(rd_kafka_ConfigEntry_name(es[i]));
                (*out)[n++] = xstrdup(rd_kafka_ConfigEntry_value(es[i]));
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    return n;
}

static bool create_dest_topic(mirror *mr, topic *t)
{
    char **cfg;
    int ncfg = source_overrides(mr, t, &cfg);
    if (ncfg < 0)
        return false;
    char err[256];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(t->name, t->nparts, mr->o.replication_factor, err, sizeof err);
    bool ok = nt != NULL;
    if (!ok)
        fail(mr, "NewTopic %s: %s", t->name, err);
    for (int i = 0; ok && i < ncfg; i += 2)
        ok = rd_kafka_NewTopic_set_config(nt, cfg[i], cfg[i + 1]) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ok) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(mr->dst_admin);
        rd_kafka_AdminOptions_t *ao = admin_opts(mr, mr->dst_admin, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_CreateTopics(mr->dst_admin, &nt, 1, ao, q);
        char what[300];
        msgf(what, sizeof what, "CreateTopics %s on the destination", t->name);
        rd_kafka_event_t *ev = admin_wait(mr, q, what);
        if (ev) {
            size_t cnt = 0;
            const rd_kafka_topic_result_t **tr =
                rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
            rd_kafka_resp_err_t e = cnt ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR__BAD_MSG;
            if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                fail(mr, "%s: %s", what,
                     cnt && rd_kafka_topic_result_error_string(tr[0])
                         ? rd_kafka_topic_result_error_string(tr[0])
                         : rd_kafka_err2str(e));
            else {
                logf_("created destination topic %s: %d partitions, %d config overrides", t->name, t->nparts,
                      ncfg / 2);
                for (int i = 0; i < ncfg; i += 2)
                    logf_("  %s=%s", cfg[i], cfg[i + 1]);
            }
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_AdminOptions_destroy(ao);
        rd_kafka_queue_destroy(q);
        ok = !mr->failed;
    }
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    for (int i = 0; i < ncfg; i++)
        free(cfg[i]);
    free(cfg);
    return ok;
}

/* Destination topics: existing ones must have at least the source's partition
 * count (records keep their partition); missing ones are created. Waits until
 * every destination partition has a leader. */
static bool prepare_dest(mirror *mr, bool create)
{
    const struct rd_kafka_metadata *md = cluster_metadata(mr, mr->dst_admin, false);
    if (!md)
        return false;
    for (int t = 0; t < mr->ntopics; t++) {
        topic *tp = &mr->topics[t];
        for (int i = 0; i < md->topic_cnt; i++) {
            if (strcmp(md->topics[i].topic, tp->name) || md->topics[i].err)
                continue;
            tp->dest_exists = true;
            if (md->topics[i].partition_cnt < tp->nparts) {
                fail(mr, "destination topic %s has %d partitions, the source has %d", tp->name,
                     md->topics[i].partition_cnt, tp->nparts);
                rd_kafka_metadata_destroy(md);
                return false;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    bool created = false;
    for (int t = 0; create && t < mr->ntopics; t++)
        if (!mr->topics[t].dest_exists) {
            if (!create_dest_topic(mr, &mr->topics[t]))
                return false;
            created = true;
        }
    for (uint64_t deadline = now_ns() + (uint64_t)mr->o.timeout_ms * 1000000ull; created;) {
        md = cluster_metadata(mr, mr->dst_admin, false);
        if (!md)
            return false;
        int ready = 0;
        for (int t = 0; t < mr->ntopics; t++)
            for (int i = 0; i < md->topic_cnt; i++) {
                const struct rd_kafka_metadata_topic *mt = &md->topics[i];
                if (strcmp(mt->topic, mr->topics[t].name) || mt->err ||
                    mt->partition_cnt < mr->topics[t].nparts)
                    continue;
                bool led = true;
                for (int p = 0; p < mt->partition_cnt; p++)
                    led &= mt->partitions[p].leader >= 0 && !mt->partitions[p].err;
                ready += led;
            }
        rd_kafka_metadata_destroy(md);
        if (ready == mr->ntopics)
            break;
        if (now_ns() > deadline || atomic_load(&g_stop)) {
            fail(mr, "destination topics have no leader for every partition after %d ms", mr->o.timeout_ms);
            return false;
        }
        usleep(100000);
    }
    return true;
}

/* ---------------------------------------------------------------- copy */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    mirror *mr = g_mr;
    topic *t = rd_kafka_topic_opaque(m->rkt);
    part *p = &t->parts[m->partition];
    int64_t s = (int64_t)(intptr_t)m->_private;
    p->inflight--;
    if (m->err) {
        if (!p->broken)
            fail(mr, "delivery of %s[%d] source offset %" PRId64 " to the destination failed: %s", t->name,
                 p->id, s, rd_kafka_err2str(m->err));
        p->broken = true;
        return;
    }
    if (p->broken)
        return;
    if (m->offset != p->next_dest)
        logf_("%s[%d]: destination offset %" PRId64 ", expected %" PRId64
              " (another producer writes to this partition?)",
              t->name, p->id, m->offset, p->next_dest);
    map_add(p, s, m->offset);
    /* Offsets the consumer has passed without returning a record (gaps) are
     * copied too, in the sense that nothing of them is left to copy; only
     * once nothing is in flight, or a later record could still fail. */
    if (p->inflight == 0 && p->eof_pos > p->next_src)
        p->next_src = p->eof_pos;
    p->records++;
    p->bytes += m->len + m->key_len;
    mr->ckpt_dirty = true;
}

/* The consumer reached `pos` (partition EOF). */
static void at_eof(mirror *mr, part *p, int64_t pos)
{
    if (!mr->o.follow && pos > p->end)
        pos = p->end;
    if (pos > p->eof_pos)
        p->eof_pos = pos;
    if (p->inflight == 0 && p->skip == 0 && p->eof_pos > p->next_src) {
        p->next_src = p->eof_pos;
        mr->ckpt_dirty = true;
    }
    if (!mr->o.follow && pos >= p->end) {
        p->handed_all = true;
        if (p->skip > 0)
            fail(mr,
                 "destination %s[%d] holds %" PRId64 " records more than the source has to offer (another "
                 "writer, or a different source?)",
                 p->t->name, p->id, p->skip);
    }
}

static void pause_part(mirror *mr, part *p)
{
    if (p->paused)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->t->name, p->id);
    rd_kafka_pause_partitions(mr->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    p->paused = true;
}

static part *find_part(mirror *mr, const char *topic, int32_t id)
{
    for (int t = 0; t < mr->ntopics; t++)
        if (!strcmp(mr->topics[t].name, topic))
            return id >= 0 && id < mr->topics[t].nparts ? &mr->topics[t].parts[id] : NULL;
    return NULL;
}

/* Hands one source record to the producer, or (resume) accounts for it as
 * already present in the destination. */
static void copy_one(mirror *mr, rd_kafka_message_t *m)
{
    part *p = find_part(mr, rd_kafka_topic_name(m->rkt), m->partition);
    if (!p || p->broken || m->offset < p->next_src)
        return;
    if (!mr->o.follow && m->offset >= p->end) {
        p->handed_all = true;
        pause_part(mr, p);
        return;
    }
    if (p->skip > 0) {
        /* Delivered by an earlier run after its last checkpoint write: the
         * destination holds exactly the next `skip` records in copy order. */
        map_add(p, m->offset, p->next_dest);
        p->skip--;
        mr->ckpt_dirty = true;
    } else {
        rd_kafka_timestamp_type_t tst;
        int64_t ts = rd_kafka_message_timestamp(m, &tst);
        if (tst == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
            ts = 0;
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_message_detach_headers(m, &hdrs);
        for (;;) {
            rd_kafka_resp_err_t e;
            if (hdrs)
                e = rd_kafka_producev(
                    mr->producer, RD_KAFKA_V_RKT(p->t->prkt), RD_KAFKA_V_PARTITION(p->id),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m->key, m->key_len),
                    RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_TIMESTAMP(ts),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)m->offset), RD_KAFKA_V_END);
            else
                e = rd_kafka_producev(mr->producer, RD_KAFKA_V_RKT(p->t->prkt), RD_KAFKA_V_PARTITION(p->id),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(m->key, m->key_len),
                                      RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_TIMESTAMP(ts),
                                      RD_KAFKA_V_OPAQUE((void *)(intptr_t)m->offset), RD_KAFKA_V_END);
            if (!e)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                if (hdrs)
                    rd_kafka_headers_destroy(hdrs);
                fail(mr, "produce to %s[%d]: %s", p->t->name, p->id, rd_kafka_err2str(e));
                p->broken = true;
                return;
            }
            rd_kafka_poll(mr->producer, 10); /* the local queue is full: let deliveries drain it */
        }
        p->inflight++;
        mr->produced++;
    }
    if (!mr->o.follow && m->offset + 1 >= p->end) {
        p->handed_all = true;
        pause_part(mr, p);
        if (p->skip > 0)
            fail(mr,
                 "destination %s[%d] holds %" PRId64 " records more than the source has to offer (another "
                 "writer, or a different source?)",
                 p->t->name, p->id, p->skip);
    }
}

static bool open_copy_clients(mirror *mr)
{
    char why[512];
    rd_kafka_conf_t *c = side_conf(mr, false, "producer", why, sizeof why);
    /* Idempotence gives per-partition order without duplicates from retries;
     * the gapless guarantee turns any lost message into a fatal error instead
     * of a hole, which the resume rule (destination = prefix of the copy
     * order) relies on. */
    bool ok = c && conf_set(c, "enable.idempotence", "true", why, sizeof why) &&
              conf_set(c, "acks", "all", why, sizeof why) &&
              conf_set(c, "enable.gapless.guarantee", "true", why, sizeof why) &&
              conf_set(c, "linger.ms", "5", why, sizeof why) &&
              conf_set(c, "batch.num.messages", "10000", why, sizeof why) &&
              conf_set(c, "queue.buffering.max.messages", "500000", why, sizeof why) &&
              conf_set(c, "compression.codec", mr->o.compression, why, sizeof why);
    if (ok) {
        rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
        mr->producer = new_client(c, RD_KAFKA_PRODUCER, why, sizeof why);
        ok = mr->producer != NULL;
    } else if (c) {
        rd_kafka_conf_destroy(c);
    }
    if (!ok) {
        fail(mr, "destination producer: %s", why);
        return false;
    }
    for (int t = 0; t < mr->ntopics; t++) {
        rd_kafka_topic_conf_t *tc = rd_kafka_default_topic_conf_dup(mr->producer);
        rd_kafka_topic_conf_set_opaque(tc, &mr->topics[t]);
        mr->topics[t].prkt = rd_kafka_topic_new(mr->producer, mr->topics[t].name, tc);
        if (!mr->topics[t].prkt) {
            fail(mr, "topic handle %s: %s", mr->topics[t].name, rd_kafka_err2str(rd_kafka_last_error()));
            return false;
        }
    }
    return true;
}

/* A consumer of one side, assign()-only: the group id exists because the
 * librdkafka consumer API requires one; nothing is ever committed with it. */
static rd_kafka_t *open_consumer(mirror *mr, bool src)
{
    char why[512];
    rd_kafka_conf_t *c = side_conf(mr, src, src ? "source-consumer" : "dest-consumer", why, sizeof why);
    bool ok = c && conf_set(c, "group.id", "kbroker-mirror-unused", why, sizeof why) &&
              conf_set(c, "enable.auto.commit", "false", why, sizeof why) &&
              conf_set(c, "enable.auto.offset.store", "false", why, sizeof why) &&
              conf_set(c, "enable.partition.eof", "true", why, sizeof why) &&
              conf_set(c, "auto.offset.reset", "earliest", why, sizeof why) &&
              conf_set(c, "fetch.wait.max.ms", "100", why, sizeof why) &&
              conf_set(c, "queued.max.messages.kbytes", "65536", why, sizeof why);
    rd_kafka_t *rk = NULL;
    if (ok)
        rk = new_client(c, RD_KAFKA_CONSUMER, why, sizeof why);
    else if (c)
        rd_kafka_conf_destroy(c);
    if (!rk)
        fail(mr, "%s consumer: %s", src ? "source" : "destination", why);
    else
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

static bool watermarks(mirror *mr, rd_kafka_t *rk, const char *side, const char *topic, int32_t id,
                       int64_t *lo, int64_t *hi)
{
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, id, lo, hi, mr->o.timeout_ms);
    if (e)
        fail(mr, "%s watermarks of %s[%d]: %s", side, topic, id, rd_kafka_err2str(e));
    return !e;
}

/* Start positions: the checkpoint's next source offset (or the source's log
 * start), then the resume rule: whatever the destination holds beyond the
 * checkpoint's destination offset was delivered after the checkpoint was
 * written, and is the next records in copy order, so that many source records
 * are skipped (and recorded in the mapping) instead of produced again. */
static bool plan_partitions(mirror *mr)
{
    for (int t = 0; t < mr->ntopics; t++)
        for (int i = 0; i < mr->topics[t].nparts; i++) {
            part *p = &mr->topics[t].parts[i];
            int64_t dlo, dhi;
            if (!watermarks(mr, mr->consumer, "source", p->t->name, p->id, &p->src_lo, &p->src_hi) ||
                !watermarks(mr, mr->producer, "destination", p->t->name, p->id, &dlo, &dhi))
                return false;
            p->end = p->src_hi;
            ckpt_entry *ce = NULL;
            for (int k = 0; k < mr->nck && !ce; k++)
                if (!strcmp(mr->ck[k].topic, p->t->name) && mr->ck[k].id == p->id)
                    ce = &mr->ck[k];
            if (ce) {
                ce->used = true;
                p->next_src = ce->next_src;
                p->next_dest = ce->next_dest;
                p->segs = ce->segs;
                p->nseg = p->capseg = ce->nseg;
                ce->segs = NULL;
            } else if (dhi > dlo) {
                fail(mr,
                     "destination %s[%d] already holds %" PRId64
                     " records but %s; refusing to guess what they "
                     "are (use the earlier run's --checkpoint, or an empty destination topic)",
                     p->t->name, p->id, dhi - dlo,
                     mr->o.checkpoint ? "the checkpoint has no entry for it" : "no --checkpoint was given");
                return false;
            } else {
                p->next_src = p->src_lo;
                p->next_dest = dhi;
            }
            if (dhi < p->next_dest) {
                fail(mr,
                     "destination %s[%d] ends at offset %" PRId64 " but the checkpoint says %" PRId64
                     " records were delivered (destination topic recreated or truncated?)",
                     p->t->name, p->id, dhi, p->next_dest);
                return false;
            }
            p->skip = dhi - p->next_dest;
            if (p->next_src < p->src_lo) {
                if (p->skip) {
                    fail(mr,
                         "source %s[%d]: offsets from %" PRId64 " were deleted before this resume, but the "
                         "destination holds %" PRId64 " records past the checkpoint that came from them",
                         p->t->name, p->id, p->next_src, p->skip);
                    return false;
                }
                logf_("warning: source %s[%d] offsets %" PRId64 "..%" PRId64
                      " were deleted before they were copied",
                      p->t->name, p->id, p->next_src, p->src_lo - 1);
                p->next_src = p->src_lo;
            }
            if (p->next_src > p->src_hi) {
                fail(mr,
                     "source %s[%d] ends at %" PRId64 " but the checkpoint continues at %" PRId64
                     " (source topic recreated?)",
                     p->t->name, p->id, p->src_hi, p->next_src);
                return false;
            }
            if (p->skip)
                logf_("%s[%d]: destination holds %" PRId64 " records delivered after the last checkpoint; "
                      "skipping them at the source",
                      p->t->name, p->id, p->skip);
            p->eof_pos = p->next_src;
            p->handed_all = !mr->o.follow && p->next_src >= p->end && !p->skip;
            if (!mr->o.follow && p->next_src >= p->end && p->skip) {
                fail(mr, "destination %s[%d] holds %" PRId64 " records more than the source has to offer",
                     p->t->name, p->id, p->skip);
                return false;
            }
        }
    return true;
}

static bool assign_all(mirror *mr, rd_kafka_t *rk, bool verify_side_dest)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int t = 0; t < mr->ntopics; t++)
        for (int i = 0; i < mr->topics[t].nparts; i++) {
            part *p = &mr->topics[t].parts[i];
            int64_t off;
            if (mr->o.verify)
                off = p->vh[verify_side_dest].lo;
            else
                off = p->next_src;
            if (mr->o.verify ? p->vh[verify_side_dest].eof : p->handed_all)
                continue;
            rd_kafka_topic_partition_list_add(l, p->t->name, p->id)->offset = off;
        }
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        fail(mr, "assign: %s", rd_kafka_err2str(e));
    return !e;
}

/* ---------------------------------------------------------------- progress */

static void fmt_rate(char *b, size_t n, double v, const char *unit)
{
    if (v >= 1e9)
        snprintf(b, n, "%.2f G%s", v / 1e9, unit);
    else if (v >= 1e6)
        snprintf(b, n, "%.2f M%s", v / 1e6, unit);
    else if (v >= 1e3)
        snprintf(b, n, "%.1f k%s", v / 1e3, unit);
    else
        snprintf(b, n, "%.0f %s", v, unit);
}

static int64_t part_lag(mirror *mr, part *p)
{
    int64_t hi = p->end;
    if (mr->o.follow) {
        int64_t lo, h;
        /* Cached from fetch responses: no request. */
        if (!rd_kafka_get_watermark_offsets(mr->consumer, p->t->name, p->id, &lo, &h) && h >= 0)
            hi = h > p->src_hi ? h : p->src_hi;
        else
            hi = p->src_hi;
    }
    return hi > p->next_src ? hi - p->next_src : 0;
}

static void progress(mirror *mr, bool force)
{
    uint64_t now = now_ns();
    double since = (double)(now - mr->last_progress) / 1e9;
    double interval = mr->tty ? 0.5 : mr->o.progress_interval;
    if (!force && since < interval)
        return;
    static uint64_t prev_recs, prev_bytes, prev_t;
    uint64_t recs = 0, bytes = 0;
    int64_t lag = 0, worst = -1;
    part *wp = NULL;
    char lags[400] = "";
    size_t ll = 0;
    int shown = 0, more = 0;
    for (int t = 0; t < mr->ntopics; t++)
        for (int i = 0; i < mr->topics[t].nparts; i++) {
            part *p = &mr->topics[t].parts[i];
            recs += p->records;
            bytes += p->bytes;
            int64_t l = part_lag(mr, p);
            lag += l;
            if (l > worst) {
                worst = l;
                wp = p;
            }
            if (l > 0 && shown < 12 && ll < sizeof lags - 80) {
                ll += (size_t)snprintf(lags + ll, sizeof lags - ll, " %s[%d]=%" PRId64, p->t->name, p->id, l);
                shown++;
            } else if (l > 0) {
                more++;
            }
        }
    double dt = prev_t ? (double)(now - prev_t) / 1e9 : (double)(now - mr->t0) / 1e9;
    double rr = dt > 0 ? (double)(recs - prev_recs) / dt : 0,
           br = dt > 0 ? (double)(bytes - prev_bytes) / dt : 0;
    prev_recs = recs;
    prev_bytes = bytes;
    prev_t = now;
    mr->last_progress = now;
    char r1[32], r2[32], eta[48] = "";
    fmt_rate(r1, sizeof r1, rr, "rec/s");
    fmt_rate(r2, sizeof r2, br, "B/s");
    if (!mr->o.follow && rr > 0)
        snprintf(eta, sizeof eta, ", ETA %.0f s", (double)lag / rr);
    if (mr->tty) {
        fprintf(stderr, "\r\033[K%" PRIu64 " records copied, %s, %s, lag %" PRId64 "%s", recs, r1, r2, lag,
                eta);
        if (wp && worst > 0)
            fprintf(stderr, " (max %s[%d]=%" PRId64 ")", wp->t->name, wp->id, worst);
        fflush(stderr);
        g_tty_line = true;
    } else {
        logf_("%" PRIu64 " records copied, %s, %s, lag %" PRId64 "%s%s%s%s", recs, r1, r2, lag, eta,
              lag ? "; lag:" : "", lags, more ? " ..." : "");
    }
}

/* ---------------------------------------------------------------- groups */

static bool translate_group(mirror *mr, const char *group)
{
    char what[400];
    rd_kafka_queue_t *q = rd_kafka_queue_new(mr->src_admin);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_AdminOptions_t *ao = admin_opts(mr, mr->src_admin, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets(mr->src_admin, &req, 1, ao, q);
    msgf(what, sizeof what, "group %s: OffsetFetch on the source", group);
    rd_kafka_event_t *ev = admin_wait(mr, q, what);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_queue_destroy(q);
    if (!ev)
        return false;
    size_t ng = 0;
    const rd_kafka_group_result_t **gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &ng);
    if (ng != 1 || rd_kafka_group_result_error(gr[0])) {
        fail(mr, "%s: %s", what,
             ng ? rd_kafka_error_string(rd_kafka_group_result_error(gr[0])) : "no answer");
        rd_kafka_event_destroy(ev);
        return false;
    }
    const rd_kafka_topic_partition_list_t *src = rd_kafka_group_result_partitions(gr[0]);
    rd_kafka_topic_partition_list_t *dst = rd_kafka_topic_partition_list_new(src ? src->cnt : 1);
    int skipped = 0;
    for (int i = 0; src && i < src->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &src->elems[i];
        part *p = find_part(mr, tp->topic, tp->partition);
        if (!p || tp->offset < 0 || tp->err)
            continue;
        int64_t d = map_translate(p, tp->offset);
        if (d < 0) {
            logf_("group %s: %s[%d] committed offset %" PRId64
                  " is past the copied data (next source offset %" PRId64
                  "); not translated, run again once the copy has caught up",
                  group, tp->topic, tp->partition, tp->offset, p->next_src);
            skipped++;
            continue;
        }
        rd_kafka_topic_partition_t *o = rd_kafka_topic_partition_list_add(dst, tp->topic, tp->partition);
        o->offset = d;
        logf_("group %s: %s[%d] source offset %" PRId64 " -> destination offset %" PRId64, group, tp->topic,
              tp->partition, tp->offset, d);
    }
    rd_kafka_event_destroy(ev);
    bool ok = true;
    if (dst->cnt) {
        q = rd_kafka_queue_new(mr->dst_admin);
        rd_kafka_AlterConsumerGroupOffsets_t *alt = rd_kafka_AlterConsumerGroupOffsets_new(group, dst);
        ao = admin_opts(mr, mr->dst_admin, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
        rd_kafka_AlterConsumerGroupOffsets(mr->dst_admin, &alt, 1, ao, q);
        msgf(what, sizeof what, "group %s: OffsetCommit on the destination", group);
        ev = admin_wait(mr, q, what);
        rd_kafka_AdminOptions_destroy(ao);
        rd_kafka_AlterConsumerGroupOffsets_destroy(alt);
        rd_kafka_queue_destroy(q);
        ok = ev != NULL;
        if (ev) {
            gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &ng);
            const rd_kafka_error_t *ge = ng ? rd_kafka_group_result_error(gr[0]) : NULL;
            const rd_kafka_topic_partition_list_t *res = ng ? rd_kafka_group_result_partitions(gr[0]) : NULL;
            if (ge) {
                /* Kafka refuses commits from outside an active group. */
                fail(mr, "%s: %s (the group must have no active members on the destination)", what,
                     rd_kafka_error_string(ge));
                ok = false;
            }
            for (int i = 0; ok && res && i < res->cnt; i++)
                if (res->elems[i].err) {
                    fail(mr, "%s: %s[%d]: %s", what, res->elems[i].topic, res->elems[i].partition,
                         rd_kafka_err2str(res->elems[i].err));
                    ok = false;
                }
            rd_kafka_event_destroy(ev);
        }
    }
    if (ok)
        logf_("group %s: %d partition offsets committed on the destination%s", group, dst->cnt,
              skipped ? " (some skipped, see above)" : "");
    rd_kafka_topic_partition_list_destroy(dst);
    return ok;
}

static bool translate_groups(mirror *mr)
{
    if (!mr->o.groups && !mr->o.group_regex)
        return true;
    bool ok = true;
    for (const char *p = mr->o.groups; ok && p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char g[256];
        snprintf(g, sizeof g, "%.*s", (int)len, p);
        if (len)
            ok = translate_group(mr, g);
        p = c ? c + 1 : NULL;
    }
    if (ok && mr->o.group_regex) {
        regex_t re;
        if (regcomp(&re, mr->o.group_regex, REG_EXTENDED | REG_NOSUB)) {
            fail(mr, "--group-regex '%s' is not a valid extended regular expression", mr->o.group_regex);
            return false;
        }
        rd_kafka_queue_t *q = rd_kafka_queue_new(mr->src_admin);
        rd_kafka_AdminOptions_t *ao = admin_opts(mr, mr->src_admin, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
        rd_kafka_ListConsumerGroups(mr->src_admin, ao, q);
        rd_kafka_event_t *ev = admin_wait(mr, q, "ListGroups on the source");
        rd_kafka_AdminOptions_destroy(ao);
        rd_kafka_queue_destroy(q);
        ok = ev != NULL;
        if (ev) {
            const rd_kafka_ListConsumerGroups_result_t *r = rd_kafka_event_ListConsumerGroups_result(ev);
            size_t n = 0;
            const rd_kafka_ConsumerGroupListing_t **gl = rd_kafka_ListConsumerGroups_result_valid(r, &n);
            for (size_t i = 0; ok && i < n; i++) {
                const char *g = rd_kafka_ConsumerGroupListing_group_id(gl[i]);
                if (!regexec(&re, g, 0, NULL, 0) && !(mr->o.groups && in_list(mr->o.groups, g)))
                    ok = translate_group(mr, g);
            }
            rd_kafka_event_destroy(ev);
        }
        regfree(&re);
    }
    return ok;
}

/* ---------------------------------------------------------------- copy run */

/* error_cb stops the work on these; say why. */
static void fatal_side_errors(mirror *mr)
{
    for (int s = 0; s < 2; s++) {
        side_errors *se = s ? &g_err_dst : &g_err_src;
        int e = atomic_load(&se->last_err);
        if (e == RD_KAFKA_RESP_ERR__AUTHENTICATION || e == RD_KAFKA_RESP_ERR__FATAL)
            fail(mr, "%s cluster: %s: %s", se->side, rd_kafka_err2name(e), se->last_reason);
    }
}

static bool all_done(mirror *mr)
{
    for (int t = 0; t < mr->ntopics; t++)
        for (int i = 0; i < mr->topics[t].nparts; i++)
            if (!mr->topics[t].parts[i].handed_all)
                return false;
    return true;
}

static int run_copy(mirror *mr)
{
    if (!prepare_dest(mr, true) || !open_copy_clients(mr) || !(mr->consumer = open_consumer(mr, true)) ||
        (mr->o.checkpoint && !ckpt_load(mr)) || !plan_partitions(mr))
        return EXIT_ERROR;
    /* Written before anything is produced: from now on the destination's
     * contents are always accounted for by a checkpoint. */
    if (!ckpt_save(mr)) {
        fail(mr, "cannot write the checkpoint %s", mr->o.checkpoint);
        return EXIT_ERROR;
    }
    if (!assign_all(mr, mr->consumer, false))
        return EXIT_ERROR;
    rd_kafka_queue_t *cq = rd_kafka_queue_get_consumer(mr->consumer);
    rd_kafka_message_t **batch = xrealloc(NULL, BATCH * sizeof *batch);
    mr->t0 = mr->last_progress = mr->last_ckpt = now_ns();
    uint64_t last_groups = mr->t0;
    logf_("copying %d topics from %s to %s%s", mr->ntopics, mr->o.source, mr->o.dest,
          mr->o.follow ? " (following; SIGINT/SIGTERM to stop)" : "");
    while (!atomic_load(&g_stop) && !(!mr->o.follow && all_done(mr))) {
        size_t want = BATCH;
        if (mr->o.max_rate > 0) {
            /* Throttle on what has been handed over, so the source and the
             * destination both see at most --max-rate records per second. */
            double allowed = mr->o.max_rate * (double)(now_ns() - mr->t0) / 1e9 - (double)mr->produced;
            if (allowed < 1) {
                rd_kafka_poll(mr->producer, 10);
                progress(mr, false);
                continue;
            }
            if (allowed < (double)want)
                want = (size_t)allowed;
        }
        ssize_t n = rd_kafka_consume_batch_queue(cq, 100, batch, want);
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                part *p = m->rkt ? find_part(mr, rd_kafka_topic_name(m->rkt), m->partition) : NULL;
                if (p)
                    at_eof(mr, p, m->offset);
                if (p && p->handed_all)
                    pause_part(mr, p);
            } else if (m->err) {
                logf_("source: %s", rd_kafka_message_errstr(m));
            } else {
                copy_one(mr, m);
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_poll(mr->producer, 0);
        uint64_t now = now_ns();
        if (mr->ckpt_dirty && now - mr->last_ckpt >= (uint64_t)mr->o.ckpt_interval_ms * 1000000ull)
            ckpt_save(mr);
        if (mr->o.follow && mr->o.group_interval > 0 && now - last_groups >= mr->o.group_interval * 1e9) {
            last_groups = now;
            mr->soft = true;
            translate_groups(mr);
            mr->soft = false;
        }
        progress(mr, false);
    }
    free(batch);
    rd_kafka_queue_destroy(cq);
    fatal_side_errors(mr);
    /* Every handed-over record gets its delivery report before the final
     * checkpoint; what is still unconfirmed after the wait is covered by the
     * resume rule. */
    uint64_t deadline = now_ns() + 60 * NS_PER_S;
    while (rd_kafka_outq_len(mr->producer) > 0 && now_ns() < deadline) {
        rd_kafka_poll(mr->producer, 100);
        progress(mr, false);
    }
    for (int t = 0; t < mr->ntopics; t++)
        for (int i = 0; i < mr->topics[t].nparts; i++) {
            part *p = &mr->topics[t].parts[i];
            if (p->inflight == 0 && !p->broken && p->skip == 0 && p->eof_pos > p->next_src)
                p->next_src = p->eof_pos;
        }
    ckpt_save(mr);
    progress(mr, true);
    if (mr->tty && g_tty_line) {
        fputc('\n', stderr);
        g_tty_line = false;
    }
    if (rd_kafka_outq_len(mr->producer) > 0)
        logf_("%d records still unconfirmed after 60 s; the next run accounts for them",
              rd_kafka_outq_len(mr->producer));
    if (!mr->failed)
        translate_groups(mr);

    double secs = (double)(now_ns() - mr->t0) / 1e9;
    uint64_t tr = 0, tb = 0;
    printf("%-40s %12s %14s\n", "topic", "records", "bytes");
    for (int t = 0; t < mr->ntopics; t++) {
        uint64_t r = 0, b = 0;
        for (int i = 0; i < mr->topics[t].nparts; i++) {
            r += mr->topics[t].parts[i].records;
            b += mr->topics[t].parts[i].bytes;
        }
        printf("%-40s %12" PRIu64 " %14" PRIu64 "\n", mr->topics[t].name, r, b);
        tr += r;
        tb += b;
    }
    char r1[32], r2[32];
    fmt_rate(r1, sizeof r1, secs > 0 ? (double)tr / secs : 0, "rec/s");
    fmt_rate(r2, sizeof r2, secs > 0 ? (double)tb / secs : 0, "B/s");
    printf("%-40s %12" PRIu64 " %14" PRIu64 "\n", "total", tr, tb);
    printf("time %.2f s, %s, %s (key+value bytes)\n", secs, r1, r2);
    fflush(stdout);
    if (mr->failed)
        return EXIT_ERROR;
    if (!mr->o.follow && !all_done(mr)) {
        logf_("interrupted before the copy was complete; run again with the same --checkpoint to resume");
        return EXIT_INTERRUP;
    }
    return 0;
}

/* ---------------------------------------------------------------- verify */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t fnv_field(uint64_t h, const void *p, size_t n)
{
    /* Length first, with -1 for null, so null and empty differ and
     * field boundaries cannot shift. */
    int64_t len = p ? (int64_t)n : -1;
    h = fnv(h, &len, sizeof len);
    return p ? fnv(h, p, n) : h;
}

static uint64_t record_hash(const rd_kafka_message_t *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    h = fnv(h, &ts, sizeof ts);
    h = fnv_field(h, m->key, m->key_len);
    h = fnv_field(h, m->payload, m->len);
    rd_kafka_headers_t *hdrs = NULL;
    int64_t nh = 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        nh = (int64_t)rd_kafka_header_cnt(hdrs);
    h = fnv(h, &nh, sizeof nh);
    for (size_t i = 0; i < (size_t)nh; i++) {
        const char *name;
        const void *val;
        size_t vl;
        rd_kafka_header_get_all(hdrs, i, &name, &val, &vl);
        h = fnv_field(h, name, strlen(name));
        h = fnv_field(h, val, vl);
    }
    return h;
}

/* Reads every partition of one side from its log start to the high watermark
 * captured before reading, hashing each record in order. */
static bool verify_read(mirror *mr, int side)
{
    rd_kafka_t *rk = open_consumer(mr, side == 0);
    if (!rk)
        return false;
    int pending = 0;
    for (int t = 0; t < mr->ntopics; t++) {
        if (side == 1 && !mr->topics[t].dest_exists)
            continue;
        for (int i = 0; i < mr->topics[t].nparts; i++) {
            hash_list *hl = &mr->topics[t].parts[i].vh[side];
            if (!watermarks(mr, rk, side ? "destination" : "source", mr->topics[t].name, i, &hl->lo,
                            &hl->hi)) {
                rd_kafka_destroy(rk);
                return false;
            }
            hl->eof = hl->lo >= hl->hi;
            pending += !hl->eof;
        }
    }
    /* Topics missing on the destination read as empty. */
    for (int t = 0; side == 1 && t < mr->ntopics; t++)
        for (int i = 0; !mr->topics[t].dest_exists && i < mr->topics[t].nparts; i++)
            mr->topics[t].parts[i].vh[1].eof = true;
    bool ok = assign_all(mr, rk, side == 1);
    uint64_t last_data = now_ns();
    while (ok && pending > 0 && !atomic_load(&g_stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (now_ns() - last_data > (uint64_t)mr->o.timeout_ms * 1000000ull) {
                fail(mr, "verify: no data from the %s for %d ms with %d partitions unread",
                     side ? "destination" : "source", mr->o.timeout_ms, pending);
                ok = false;
            }
            continue;
        }
        last_data = now_ns();
        part *p = m->rkt ? find_part(mr, rd_kafka_topic_name(m->rkt), m->partition) : NULL;
        hash_list *hl = p ? &p->vh[side] : NULL;
        if (!hl || hl->eof) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset >= hl->hi) {
                hl->eof = true;
                pending--;
            }
        } else if (m->err) {
            logf_("verify: %s: %s", side ? "destination" : "source", rd_kafka_message_errstr(m));
        } else if (m->offset < hl->hi) {
            if (hl->n == hl->cap) {
                hl->cap = hl->cap ? 2 * hl->cap : 1024;
                hl->v = xrealloc(hl->v, hl->cap * sizeof *hl->v);
            }
            hl->v[hl->n++] = (rec_hash){m->offset, record_hash(m)};
            if (m->offset + 1 >= hl->hi) {
                hl->eof = true;
                pending--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ok && !atomic_load(&g_stop);
}

static int run_verify(mirror *mr)
{
    if (!prepare_dest(mr, false))
        return EXIT_ERROR;
    uint64_t t0 = now_ns();
    if (!verify_read(mr, 0) || !verify_read(mr, 1))
        return mr->failed ? EXIT_ERROR : EXIT_INTERRUP;
    int differ = 0;
    uint64_t total = 0;
    for (int t = 0; t < mr->ntopics; t++) {
        topic *tp = &mr->topics[t];
        if (!tp->dest_exists) {
            printf("%s: DIFFERENT: missing on the destination\n", tp->name);
            differ++;
            continue;
        }
        for (int i = 0; i < tp->nparts; i++) {
            hash_list *s = &tp->parts[i].vh[0], *d = &tp->parts[i].vh[1];
            size_t k = 0;
            while (k < s->n && k < d->n && s->v[k].hash == d->v[k].hash)
                k++;
            total += s->n;
            if (k == s->n && k == d->n) {
                printf("%s[%d]: equal (%zu records)\n", tp->name, i, s->n);
                continue;
            }
            differ++;
            printf("%s[%d]: DIFFERENT: source %zu records, destination %zu; first difference at record #%zu",
                   tp->name, i, s->n, d->n, k);
            if (k < s->n)
                printf(" (source offset %" PRId64 ")", s->v[k].off);
            if (k < d->n)
                printf(" (destination offset %" PRId64 ")", d->v[k].off);
            printf("\n");
        }
    }
    printf("verify: %s, %" PRIu64 " source records compared in %.2f s\n",
           differ ? "DIFFERENCES FOUND" : "all partitions equal", total, (double)(now_ns() - t0) / 1e9);
    fflush(stdout);
    return differ ? EXIT_DIFFER : 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kbroker-mirror --source HOST:PORT --dest HOST:PORT (--topics A,B | --topic-regex RE)\n"
            "                      [options]\n"
            "Copies topics (partition, key, value, headers, timestamp) from the source cluster to the\n"
            "destination, creating missing destination topics with the source's partition count and\n"
            "topic-level config overrides. See tools/MIRROR.md.\n"
            "options:\n"
            "  --topics A,B            topics to copy (comma-separated)\n"
            "  --topic-regex RE        copy every source topic matching this POSIX extended regex\n"
            "                          (names starting with '_' are never matched)\n"
            "  --follow                keep copying new records until SIGINT/SIGTERM (default: copy up to\n"
            "                          the end offsets seen at start, then exit with a summary)\n"
            "  --checkpoint PATH       resumable state: next source offset, destination offset and the\n"
            "                          offset mapping per partition (written atomically)\n"
            "  --checkpoint-interval-ms N   checkpoint write interval (default 1000)\n"
            "  --groups G1,G2          after the copy (and every --group-interval with --follow), commit\n"
            "  --group-regex RE        these source groups' offsets, translated, on the destination\n"
            "  --group-interval S      --follow: seconds between group translations (default 30, 0 = only\n"
            "                          at exit)\n"
            "  --verify                only compare source and destination partition by partition (count\n"
            "                          and a hash of key, value, headers, timestamp); exit 0 iff equal\n"
            "  --compression CODEC     destination producer codec: none|gzip|snappy|lz4|zstd (default none)\n"
            "  --max-rate N            at most N records/s (default unlimited)\n"
            "  --replication-factor N  for created topics (default -1: the destination's default)\n"
            "  --timeout-ms N          cluster/admin request timeout (default 15000)\n"
            "  --progress-interval S   seconds between log lines when stderr is not a TTY (default 10)\n"
            "  -X [source.|dest.]KEY=VALUE   librdkafka property for both sides / one side\n"
            "                          (e.g. -X source.security.protocol=SASL_SSL -X "
            "source.sasl.mechanism=PLAIN)\n"
            "security, per side (SIDE = source or dest; librdkafka's names, the same as -X SIDE.NAME=V):\n"
            "  --SIDE.security.protocol P   PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL\n"
            "  --SIDE.ssl.ca.location FILE  CA certificate(s) of that cluster's brokers (PEM)\n"
            "  --SIDE.ssl.certificate.location FILE, --SIDE.ssl.key.location FILE   client certificate\n"
            "                          and key for mTLS (PEM); --SIDE.ssl.key.password PASS if encrypted\n"
            "  --SIDE.sasl.mechanisms M     PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER\n"
            "  --SIDE.sasl.username U, --SIDE.sasl.password P\n"
            "exit status: 0 done (or verify equal), 1 error, 2 usage, 3 verify found differences,\n"
            "             4 one-shot copy interrupted (resume with the same --checkpoint)\n");
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo) || !(v <= hi))
        return false;
    *out = v;
    return true;
}

enum { SEC_OPT = 1000 };

static int parse_opts(int argc, char **argv, opts *o)
{
    *o = (opts){.compression = "none",
                .progress_interval = 10,
                .group_interval = 30,
                .timeout_ms = 15000,
                .ckpt_interval_ms = 1000,
                .replication_factor = -1};
    static const struct option lo[] = {
        {"source", 1, 0, 's'},
        {"dest", 1, 0, 'd'},
        {"topics", 1, 0, 't'},
        {"topic-regex", 1, 0, 'T'},
        {"groups", 1, 0, 'g'},
        {"group-regex", 1, 0, 'G'},
        {"group-interval", 1, 0, 'I'},
        {"follow", 0, 0, 'f'},
        {"checkpoint", 1, 0, 'c'},
        {"checkpoint-interval-ms", 1, 0, 'C'},
        {"verify", 0, 0, 'v'},
        {"compression", 1, 0, 'z'},
        {"max-rate", 1, 0, 'r'},
        {"replication-factor", 1, 0, 'R'},
        {"timeout-ms", 1, 0, 'o'},
        {"progress-interval", 1, 0, 'p'},
        {"help", 0, 0, 'h'},
        /* librdkafka's security property names, per side: the same as
         * -X source.NAME=VALUE / -X dest.NAME=VALUE. */
        {"source.security.protocol", 1, 0, SEC_OPT + 0},
        {"source.ssl.ca.location", 1, 0, SEC_OPT + 1},
        {"source.ssl.certificate.location", 1, 0, SEC_OPT + 2},
        {"source.ssl.key.location", 1, 0, SEC_OPT + 3},
        {"source.ssl.key.password", 1, 0, SEC_OPT + 4},
        {"source.sasl.mechanisms", 1, 0, SEC_OPT + 5},
        {"source.sasl.username", 1, 0, SEC_OPT + 6},
        {"source.sasl.password", 1, 0, SEC_OPT + 7},
        {"dest.security.protocol", 1, 0, SEC_OPT + 8},
        {"dest.ssl.ca.location", 1, 0, SEC_OPT + 9},
        {"dest.ssl.certificate.location", 1, 0, SEC_OPT + 10},
        {"dest.ssl.key.location", 1, 0, SEC_OPT + 11},
        {"dest.ssl.key.password", 1, 0, SEC_OPT + 12},
        {"dest.sasl.mechanisms", 1, 0, SEC_OPT + 13},
        {"dest.sasl.username", 1, 0, SEC_OPT + 14},
        {"dest.sasl.password", 1, 0, SEC_OPT + 15},
        {0, 0, 0, 0},
    };
    int c, li = -1;
    double v;
    while ((li = -1, c = getopt_long(argc, argv, "X:h", lo, &li)) != -1) {
        bool ok = true;
        switch (c) {
        case 's':
            o->source = optarg;
            break;
        case 'd':
            o->dest = optarg;
            break;
        case 't':
            o->topics = optarg;
            break;
        case 'T':
            o->topic_regex = optarg;
            break;
        case 'g':
            o->groups = optarg;
            break;
        case 'G':
            o->group_regex = optarg;
            break;
        case 'f':
            o->follow = true;
            break;
        case 'c':
            o->checkpoint = optarg;
            break;
        case 'v':
            o->verify = true;
            break;
        case 'z':
            o->compression = optarg;
            break;
        case 'I':
            ok = parse_num(optarg, 0, 1e6, &o->group_interval);
            break;
        case 'C':
            ok = parse_num(optarg, 10, 3600000, &v) && (o->ckpt_interval_ms = (int)v) == v;
            break;
        case 'r':
            ok = parse_num(optarg, 0, 1e12, &o->max_rate);
            break;
        case 'R':
            ok = parse_num(optarg, -1, 32767, &v) && v != 0 && (o->replication_factor = (int)v) == v;
            break;
        case 'o':
            ok = parse_num(optarg, 100, 3600000, &v) && (o->timeout_ms = (int)v) == v;
            break;
        case 'p':
            ok = parse_num(optarg, 0.1, 86400, &o->progress_interval);
            break;
        case 'X':
            ok = strchr(optarg, '=') != NULL;
            o->xprops = xrealloc(o->xprops, (size_t)(o->nxprops + 1) * sizeof *o->xprops);
            o->xprops[o->nxprops++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            if (c >= SEC_OPT && c < SEC_OPT + 16) {
                /* Kept as "side.key=value", the form -X takes. */
                const char *name = lo[li].name;
                size_t n = strlen(name) + strlen(optarg) + 2;
                char *kv = xrealloc(NULL, n);
                snprintf(kv, n, "%s=%s", name, optarg);
                o->xprops = xrealloc(o->xprops, (size_t)(o->nxprops + 1) * sizeof *o->xprops);
                o->xprops[o->nxprops++] = kv;
                break;
            }
            usage(stderr);
            return EXIT_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "kbroker-mirror: bad value for %s%s: '%s'\n", li >= 0 ? "--" : "-",
                    li >= 0 ? lo[li].name : "X", optarg);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kbroker-mirror: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    const char *missing = !o->source                      ? "--source"
                          : !o->dest                      ? "--dest"
                          : !o->topics && !o->topic_regex ? "--topics or --topic-regex"
                                                          : NULL;
    if (missing) {
        fprintf(stderr, "kbroker-mirror: %s is required (--help for usage)\n", missing);
        return EXIT_USAGE;
    }
    const char *res[2] = {o->topic_regex, o->group_regex};
    for (int i = 0; i < 2; i++) {
        regex_t re;
        int rc = res[i] ? regcomp(&re, res[i], REG_EXTENDED | REG_NOSUB) : 0;
        if (rc) {
            char e[128];
            regerror(rc, &re, e, sizeof e);
            fprintf(stderr, "kbroker-mirror: --%s '%s': %s\n", i ? "group-regex" : "topic-regex", res[i], e);
            return EXIT_USAGE;
        }
        if (res[i])
            regfree(&re);
    }
    if (o->verify && (o->follow || o->groups || o->group_regex)) {
        fprintf(stderr,
                "kbroker-mirror: --verify only compares; it does not combine with --follow or groups\n");
        return EXIT_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    mirror mr = {0};
    g_mr = &mr;
    int rc = parse_opts(argc, argv, &mr.o);
    if (rc) {
        free(mr.o.xprops);
        return rc == 1 ? 0 : rc;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    mr.tty = isatty(STDERR_FILENO);

    char why[512];
    rd_kafka_conf_t *c;
    if (!(c = side_conf(&mr, true, "admin", why, sizeof why)) ||
        !(mr.src_admin = new_client(c, RD_KAFKA_PRODUCER, why, sizeof why))) {
        fprintf(stderr, "kbroker-mirror: source client: %s\n", why);
        free(mr.o.xprops);
        return EXIT_USAGE;
    }
    if (!(c = side_conf(&mr, false, "admin", why, sizeof why)) ||
        !(mr.dst_admin = new_client(c, RD_KAFKA_PRODUCER, why, sizeof why))) {
        fprintf(stderr, "kbroker-mirror: destination client: %s\n", why);
        rd_kafka_destroy(mr.src_admin);
        free(mr.o.xprops);
        return EXIT_USAGE;
    }
    if (select_topics(&mr))
        rc = mr.o.verify ? run_verify(&mr) : run_copy(&mr);
    else
        rc = EXIT_ERROR;
    fatal_side_errors(&mr);
    if (mr.failed) {
        logf_("error: %s", mr.first_error);
        rc = EXIT_ERROR;
    }
    if (mr.consumer) {
        rd_kafka_consumer_close(mr.consumer);
        rd_kafka_destroy(mr.consumer);
    }
    for (int t = 0; t < mr.ntopics; t++) {
        if (mr.topics[t].prkt)
            rd_kafka_topic_destroy(mr.topics[t].prkt);
        for (int i = 0; i < mr.topics[t].nparts; i++) {
            free(mr.topics[t].parts[i].segs);
            free(mr.topics[t].parts[i].vh[0].v);
            free(mr.topics[t].parts[i].vh[1].v);
        }
        free(mr.topics[t].parts);
        free(mr.topics[t].name);
    }
    free(mr.topics);
    if (mr.producer)
        rd_kafka_destroy(mr.producer);
    rd_kafka_destroy(mr.src_admin);
    rd_kafka_destroy(mr.dst_admin);
    for (int i = 0; i < mr.nck; i++) {
        free(mr.ck[i].topic);
        free(mr.ck[i].segs);
    }
    free(mr.ck);
    free(mr.o.xprops);
    return rc;
}

/*
 * test_txn_compaction.c — the log engine's duties towards transactions
 * beyond appends: compaction removing aborted data and markers (Kafka's
 * cleaner rules), retention and DeleteRecords past open transactions, and
 * the full-replay fallback keeping what a snapshot knew.
 *
 * Owns its temp directories (removed at the end of each test). Must not
 * depend on the order of tests.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "kb_test.h"
#include "st_test_util.h"

static int g_force_thread;

static int suite_uring(void)
{
    g_force_thread = 0;
    return 0;
}

static int suite_thread(void)
{
    g_force_thread = 1;
    return 0;
}

#define TS0 1700000000000LL

/* ---- writing ------------------------------------------------------------- */

/* One batch of nrec records with keys "<key>" (nrec == 1) or "<key>.<i>"
 * and value val; pid < 0: plain, txn: transactional. */
static int64_t put(st_io *io, st_log *log, int64_t pid, int16_t epoch, int32_t seq, int txn, const char *key,
                   int nrec, const char *val, size_t pad)
{
    kp_batch_builder b;
    kp_batch_builder_init(&b, 0, KP_CODEC_NONE);
    if (pid >= 0)
        kp_batch_builder_set_producer(&b, pid, epoch, seq, txn);
    char v[2048];
    size_t vl = strlen(val);
    memcpy(v, val, vl);
    memset(v + vl, '.', pad);
    for (int i = 0; i < nrec; i++) {
        char k[64];
        int kl = nrec == 1 ? snprintf(k, sizeof(k), "%s", key) : snprintf(k, sizeof(k), "%s.%d", key, i);
        if (kp_batch_builder_add(&b, TS0 + i, (kp_bytes){(const uint8_t *)k, kl},
                                 (kp_bytes){(const uint8_t *)v, (int32_t)(vl + pad)}, NULL, 0) != 0)
            abort();
    }
    kp_writer w;
    kp_writer_init(&w, 256);
    if (kp_batch_builder_finish(&b, &w) != 0)
        abort();
    kp_batch_builder_free(&b);
    int64_t off = -1;
    int rc = tu_append(io, log, w.buf, w.len, &off);
    kp_writer_free(&w);
    return rc < 0 ? rc : off;
}

static int64_t marker(st_io *io, st_log *log, int64_t pid, int16_t epoch, int commit)
{
    kp_writer w;
    kp_writer_init(&w, 128);
    if (kp_batch_build_control(&w, 0, pid, epoch, commit, 1, TS0 + 5000) != 0)
        abort();
    int64_t off = -1;
    int rc = tu_append(io, log, w.buf, w.len, &off);
    kp_writer_free(&w);
    return rc < 0 ? rc : off;
}

/* Plain filler that rolls segments (4 KiB each) under unique keys. */
static void filler(st_io *io, st_log *log, int n)
{
    static int g_fill;
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "fill%d", g_fill++);
        CU_ASSERT(put(io, log, -1, 0, 0, 0, k, 1, "f", 1500) >= 0);
    }
}

static st_log *open_log(st_io *io, const char *dir, const st_log_config *cfg)
{
    st_log *log = NULL;
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, cfg, &log), 0);
    return log;
}

static void compact_cfg(st_log_config *c, int64_t delete_retention_ms)
{
    st_log_config_default(c);
    c->segment_bytes = 4096;
    c->compact = 1;
    c->delete_retention_ms = delete_retention_ms;
}

static int compact(st_io *io, st_log *log)
{
    tu_done d = {0, 0, -1};
    int rc = st_log_compact_now(log, tu_append_cb, &d);
    if (rc < 0)
        return rc;
    tu_wait(io, &d.fired);
    return d.rc;
}

/* ---- reading as a client does ------------------------------------------- */

typedef struct rbatch {
    int64_t base, last, pid;
    int16_t attr;
    int64_t base_ts;
    int32_t count;
} rbatch;

/* What the whole log holds: every batch's header and, for read_committed,
 * the key -> value a client keeps (the last value wins; aborted batches
 * skipped with the aborted list, nothing at or past the LSO), as text. */
typedef struct view {
    rbatch b[512];
    int nb;
    char committed[16384];
    char uncommitted[16384];
    int aborted_records; /* records of batches the aborted list covers */
} view;

static void kv_set(char *dump, size_t cap, const kp_record *r)
{
    /* "key=value\n" lines, the last value of a key replacing the earlier. */
    char line[256];
    int kl = r->key.len > 0 ? r->key.len : 0;
    int vl = r->value.len > 0 ? (r->value.len > 40 ? 40 : r->value.len) : 0;
    char key[128];
    snprintf(key, sizeof(key), "%.*s=", kl, (const char *)r->key.p);
    char *p = dump;
    while ((p = strstr(p, key)) != NULL) {
        if (p == dump || p[-1] == '\n') {
            char *e = strchr(p, '\n');
            memmove(p, e + 1, strlen(e + 1) + 1);
            break;
        }
        p++;
    }
    if (r->value.len < 0)
        return; /* a tombstone: the key is gone */
    snprintf(line, sizeof(line), "%s%.*s\n", key, vl, (const char *)r->value.p);
    if (strlen(dump) + strlen(line) < cap)
        strcat(dump, line);
}

static void read_view(st_io *io, st_log *log, view *v)
{
    memset(v, 0, sizeof(*v));
    st_aborted_txn ab[256];
    size_t nab = st_log_aborted_txns(log, 0, INT64_MAX, ab, 256);
    int64_t lso = st_log_last_stable_offset(log);
    int64_t off = st_log_start_offset(log), hw = st_log_high_watermark(log);
    while (off < hw) {
        tu_rd r;
        CU_ASSERT_EQUAL_FATAL(tu_read(io, log, off, 1 << 20, &r, NULL), 0);
        CU_ASSERT_FATAL(r.len > 0);
        kp_batch_iter it;
        kp_batch b;
        kp_batch_iter_init(&it, r.data, r.len, 1);
        int got;
        while ((got = kp_batch_iter_next(&it, &b)) == 1) {
            int64_t last = b.h.base_offset + b.h.last_offset_delta;
            if (last < off)
                continue;
            if (v->nb < 512)
                v->b[v->nb++] =
                    (rbatch){b.h.base_offset, last, b.h.producer_id, b.h.attributes, b.h.base_timestamp,
                             b.h.record_count};
            off = last + 1;
            if (b.h.attributes & KP_ATTR_CONTROL)
                continue;
            int aborted = 0;
            if (b.h.attributes & KP_ATTR_TRANSACTIONAL)
                for (size_t i = 0; i < nab && i < 256; i++)
                    if (ab[i].producer_id == b.h.producer_id && ab[i].first_offset <= b.h.base_offset &&
                        b.h.base_offset <= ab[i].last_offset)
                        aborted = 1;
            kp_record_iter ri;
            kp_record rec;
            kp_record_iter_init(&ri, &b.h, b.records, b.records_size);
            while (kp_record_iter_next(&ri, &rec) == 1) {
                kv_set(v->uncommitted, sizeof(v->uncommitted), &rec);
                if (aborted)
                    v->aborted_records++;
                else if (rec.offset < lso)
                    kv_set(v->committed, sizeof(v->committed), &rec);
            }
        }
        CU_ASSERT_EQUAL(got, 0);
        free(r.data);
    }
}

static const rbatch *batch_at(const view *v, int64_t off)
{
    for (int i = 0; i < v->nb; i++)
        if (v->b[i].base <= off && off <= v->b[i].last)
            return &v->b[i];
    return NULL;
}

static int records_of(const view *v, int64_t pid)
{
    int n = 0;
    for (int i = 0; i < v->nb; i++)
        if (v->b[i].pid == pid && !(v->b[i].attr & KP_ATTR_CONTROL))
            n += v->b[i].count;
    return n;
}

static size_t aborted_count(st_log *log)
{
    st_aborted_txn ab[64];
    return st_log_aborted_txns(log, 0, INT64_MAX, ab, 64);
}

/* ---- compaction ----------------------------------------------------------- */

/* Committed and aborted transactions over shared keys: after a pass the
 * aborted records are gone and read_committed sees exactly what it saw. */
static void test_aborted_removed(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    compact_cfg(&cfg, 86400000);
    st_log *log = open_log(io, dir, &cfg);
    const int64_t C = 10, A = 20, Z = 30;
    CU_ASSERT(put(io, log, -1, 0, 0, 0, "k", 4, "plain", 0) >= 0);
    CU_ASSERT(put(io, log, C, 0, 0, 1, "k", 2, "committed", 0) >= 0); /* k.0, k.1 */
    CU_ASSERT(put(io, log, A, 0, 0, 1, "k", 3, "ABORTED", 0) >= 0);   /* k.0..k.2 */
    CU_ASSERT(put(io, log, C, 0, 2, 1, "c", 3, "committed", 0) >= 0);
    CU_ASSERT(put(io, log, A, 0, 3, 1, "a", 3, "ABORTED", 0) >= 0);
    int64_t mc = marker(io, log, C, 0, 1);
    int64_t ma = marker(io, log, A, 0, 0);
    /* Both producers write again later, so their batches here are not
     * their last (which would stay, emptied). */
    filler(io, log, 4);
    CU_ASSERT(put(io, log, C, 0, 5, 1, "late", 1, "c2", 0) >= 0);
    CU_ASSERT(marker(io, log, C, 0, 1) >= 0);
    CU_ASSERT(put(io, log, A, 0, 6, 1, "late", 1, "ABORTED", 0) >= 0);
    CU_ASSERT(marker(io, log, A, 0, 0) >= 0);
    /* An open transaction later on: nothing at or past it is cleaned. */
    filler(io, log, 3);
    int64_t open_at = put(io, log, Z, 0, 0, 1, "z", 2, "open", 0);
    filler(io, log, 4);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), open_at);

    static view before, after;
    read_view(io, log, &before);
    CU_ASSERT(records_of(&before, A) == 7);
    CU_ASSERT(strstr(before.committed, "ABORTED") == NULL);
    CU_ASSERT_EQUAL(compact(io, log), 0);
    read_view(io, log, &after);
    /* The aborted records below the LSO are gone; committed data reads the
     * same, at both isolation levels. */
    CU_ASSERT_EQUAL(records_of(&after, A), 0);
    CU_ASSERT_EQUAL(after.aborted_records, 0);
    CU_ASSERT_STRING_EQUAL(before.committed, after.committed);
    CU_ASSERT(strstr(after.uncommitted, "ABORTED") == NULL);
    CU_ASSERT(strstr(after.committed, "k.0=committed") != NULL);
    CU_ASSERT(strstr(after.committed, "k.2=plain") != NULL);
    CU_ASSERT(strstr(after.committed, "c.2=committed") != NULL);
    /* The markers stay this pass; the ABORT's entry too (its data was met). */
    CU_ASSERT(batch_at(&after, mc) && batch_at(&after, mc)->base == mc);
    CU_ASSERT(batch_at(&after, ma) && batch_at(&after, ma)->base == ma);
    CU_ASSERT_EQUAL(aborted_count(log), 2);
    /* The open transaction and what follows it were not touched. */
    CU_ASSERT_EQUAL(records_of(&after, Z), 2);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), open_at);
    /* Offsets stay dense and every read from log start to HW still works. */
    CU_ASSERT_EQUAL(st_log_end_offset(log), st_log_high_watermark(log));
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* Markers: kept while their transaction's data is there, then stamped with
 * a delete horizon, removed by a pass after delete.retention.ms. */
static void test_marker_horizon(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    /* Long enough that the pass right after the stamping one surely runs
     * before the horizon, also under sanitizers on a loaded machine. */
    compact_cfg(&cfg, 2500);
    st_log *log = open_log(io, dir, &cfg);
    const int64_t C = 10, A = 20;
    CU_ASSERT(put(io, log, C, 0, 0, 1, "x", 1, "committed-old", 0) >= 0);
    int64_t mc = marker(io, log, C, 0, 1);
    CU_ASSERT(put(io, log, A, 0, 0, 1, "y", 1, "ABORTED", 0) >= 0);
    int64_t ma = marker(io, log, A, 0, 0);
    CU_ASSERT(put(io, log, -1, 0, 0, 0, "x", 1, "plain-new", 0) >= 0); /* supersedes C's x */
    filler(io, log, 3);
    CU_ASSERT(put(io, log, C, 0, 1, 1, "late", 1, "c", 0) >= 0);
    CU_ASSERT(marker(io, log, C, 0, 1) >= 0);
    CU_ASSERT(put(io, log, A, 0, 1, 1, "late2", 1, "a", 0) >= 0);
    CU_ASSERT(marker(io, log, A, 0, 1) >= 0);
    filler(io, log, 4);

    static view v;
    /* Pass 1 removes the data: markers stay, without a horizon; the ABORT
     * entry stays. */
    CU_ASSERT_EQUAL(compact(io, log), 0);
    read_view(io, log, &v);
    CU_ASSERT_EQUAL(records_of(&v, A), 1); /* only the later, committed one */
    CU_ASSERT_FATAL(batch_at(&v, mc) != NULL && batch_at(&v, ma) != NULL);
    CU_ASSERT_EQUAL(batch_at(&v, mc)->attr & KP_ATTR_DELETE_HORIZON, 0);
    CU_ASSERT_EQUAL(batch_at(&v, ma)->attr & KP_ATTR_DELETE_HORIZON, 0);
    CU_ASSERT_EQUAL(aborted_count(log), 1);
    /* Pass 2 finds no data left: horizons are stamped, the entry goes. */
    int64_t t2 = tu_now_ms();
    CU_ASSERT_EQUAL(compact(io, log), 0);
    read_view(io, log, &v);
    CU_ASSERT_FATAL(batch_at(&v, mc) != NULL && batch_at(&v, ma) != NULL);
    CU_ASSERT(batch_at(&v, mc)->attr & KP_ATTR_DELETE_HORIZON);
    CU_ASSERT(batch_at(&v, ma)->attr & KP_ATTR_DELETE_HORIZON);
    CU_ASSERT(batch_at(&v, ma)->base_ts >= t2 + 2500 && batch_at(&v, ma)->base_ts <= tu_now_ms() + 2500);
    CU_ASSERT_EQUAL(batch_at(&v, ma)->count, 1);
    CU_ASSERT_EQUAL(aborted_count(log), 0);
    /* The stamped marker is a valid batch whose record keeps its timestamp
     * (its delta is now relative to the horizon) and its meaning. */
    {
        tu_rd r;
        CU_ASSERT_EQUAL_FATAL(tu_read(io, log, ma, 1, &r, NULL), 0);
        kp_batch kb;
        CU_ASSERT_EQUAL_FATAL(kp_batch_validate(r.data, r.len, &kb), 0);
        CU_ASSERT_EQUAL(kb.h.base_offset, ma);
        int16_t type = -1;
        int32_t coord = -1;
        CU_ASSERT_EQUAL(kp_txn_marker_parse(&kb, &type, &coord), 0);
        CU_ASSERT_EQUAL(type, KP_CONTROL_ABORT);
        CU_ASSERT_EQUAL(coord, 1);
        kp_record_iter it;
        kp_record rec;
        kp_record_iter_init(&it, &kb.h, kb.records, kb.records_size);
        CU_ASSERT_EQUAL_FATAL(kp_record_iter_next(&it, &rec), 1);
        CU_ASSERT_EQUAL(rec.timestamp, TS0 + 5000);
        CU_ASSERT_EQUAL(rec.offset, ma);
        free(r.data);
    }
    /* Before the horizon a pass keeps them. */
    CU_ASSERT_EQUAL(compact(io, log), 0);
    read_view(io, log, &v);
    CU_ASSERT(batch_at(&v, mc) != NULL && batch_at(&v, ma) != NULL);
    /* After it they go; the data around keeps its offsets. */
    usleep(2600 * 1000);
    CU_ASSERT_EQUAL(compact(io, log), 0);
    read_view(io, log, &v);
    CU_ASSERT(batch_at(&v, mc) == NULL);
    CU_ASSERT(batch_at(&v, ma) == NULL);
    CU_ASSERT(strstr(v.committed, "x=plain-new") != NULL);
    CU_ASSERT(strstr(v.committed, "late=c") != NULL);
    /* The files agree after a restart. */
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(io, dir, &cfg);
    static view w;
    read_view(io, log, &w);
    CU_ASSERT_STRING_EQUAL(v.committed, w.committed);
    CU_ASSERT_EQUAL(v.nb, w.nb);
    CU_ASSERT_EQUAL(aborted_count(log), 0);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* A producer whose last batch is aborted or superseded keeps it, emptied:
 * its sequence survives a replay of the log (no snapshot). */
static void test_last_batch_kept(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    compact_cfg(&cfg, 86400000);
    st_log *log = open_log(io, dir, &cfg);
    const int64_t A = 20;
    CU_ASSERT(put(io, log, A, 3, 0, 1, "y", 4, "ABORTED", 0) >= 0);
    int64_t last = put(io, log, A, 3, 4, 1, "y", 2, "ABORTED", 0);
    CU_ASSERT(marker(io, log, A, 3, 0) >= 0);
    filler(io, log, 5);
    CU_ASSERT_EQUAL(compact(io, log), 0);
    static view v;
    read_view(io, log, &v);
    CU_ASSERT_EQUAL(records_of(&v, A), 0);
    const rbatch *b = batch_at(&v, last);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_EQUAL(b->base, last);
    CU_ASSERT_EQUAL(b->last, last + 1);
    CU_ASSERT_EQUAL(b->count, 0);
    CU_ASSERT(batch_at(&v, 0) == NULL); /* the earlier batch is gone */
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    /* Without the snapshot the replay finds sequence 5 and epoch 3 again. */
    char p[4096];
    snprintf(p, sizeof(p), "%s/producer.snapshot", dir);
    CU_ASSERT_EQUAL(unlink(p), 0);
    log = open_log(io, dir, &cfg);
    st_producer_info info[8];
    size_t n = st_log_producers(log, info, 8);
    int found = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        if (info[i].producer_id == A) {
            found = 1;
            CU_ASSERT_EQUAL(info[i].epoch, 3);
            CU_ASSERT_EQUAL(info[i].last_sequence, 5);
        }
    CU_ASSERT(found);
    /* A retry of that batch is still a duplicate. */
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    kp_batch_builder_set_producer(&bb, A, 3, 4, 1);
    for (int i = 0; i < 2; i++)
        kp_batch_builder_add(&bb, TS0, (kp_bytes){(const uint8_t *)"y", 1},
                             (kp_bytes){(const uint8_t *)"v", 1}, NULL, 0);
    kp_writer w;
    kp_writer_init(&w, 128);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, &w), 0);
    kp_batch_builder_free(&bb);
    int64_t off = -1;
    CU_ASSERT_EQUAL(tu_append(io, log, w.buf, w.len, &off), ST_E_DUPLICATE);
    CU_ASSERT_EQUAL(off, last);
    kp_writer_free(&w);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* A producer whose last entry is a marker (its epoch bumped by it) keeps
 * that marker, emptied once its horizon passed; a replay without snapshot
 * must take the empty control batch for nothing (not a transaction start). */
static void test_emptied_marker_replay(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    compact_cfg(&cfg, 0);
    st_log *log = open_log(io, dir, &cfg);
    const int64_t P = 33;
    CU_ASSERT(put(io, log, P, 0, 0, 1, "p", 2, "ABORTED", 0) >= 0);
    int64_t m = marker(io, log, P, 1, 0); /* bumps P to epoch 1 */
    filler(io, log, 5);
    static view v;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(compact(io, log), 0);
        usleep(20 * 1000);
    }
    read_view(io, log, &v);
    const rbatch *b = batch_at(&v, m);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_EQUAL(b->count, 0);
    CU_ASSERT(b->attr & KP_ATTR_CONTROL);
    CU_ASSERT_EQUAL(records_of(&v, P), 0);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), st_log_high_watermark(log));
    int64_t hw = st_log_high_watermark(log);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    char p[4096];
    snprintf(p, sizeof(p), "%s/producer.snapshot", dir);
    CU_ASSERT_EQUAL(unlink(p), 0);
    log = open_log(io, dir, &cfg);
    CU_ASSERT_EQUAL(st_log_high_watermark(log), hw);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), hw);
    st_producer_info info[8];
    size_t n = st_log_producers(log, info, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        if (info[i].producer_id == P)
            CU_ASSERT_EQUAL(info[i].current_txn_start_offset, -1);
    /* Still appendable and readable as a whole. */
    filler(io, log, 1);
    read_view(io, log, &v);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* Appends, commits and aborts while passes run: read_committed always sees
 * exactly the committed values a model of the writes predicts. */
static void test_race_appends(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    compact_cfg(&cfg, 0);
    st_log *log = open_log(io, dir, &cfg);
    char model[64][32]; /* key i -> last committed value ("" = none) */
    memset(model, 0, sizeof(model));
    int32_t seq[3] = {0, 0, 0};
    int passes = 0;
    static view v;
    for (int round = 0; round < 24; round++) {
        tu_done d = {0, 0, -1};
        int started = st_log_compact_now(log, tu_append_cb, &d) == 0;
        for (int p = 0; p < 3; p++) {
            int64_t pid = 100 + p;
            int commit = (round + p) % 3 != 0;
            char key[16], val[32];
            int ki = (round * 7 + p * 3) % 64;
            snprintf(key, sizeof(key), "r%d", ki);
            snprintf(val, sizeof(val), "%s-%d-%d", commit ? "c" : "ABORTED", round, p);
            CU_ASSERT(put(io, log, pid, 0, seq[p], 1, key, 1, val, 600) >= 0);
            seq[p]++;
            CU_ASSERT(marker(io, log, pid, 0, commit) >= 0);
            if (commit)
                snprintf(model[ki], sizeof(model[ki]), "%s", val);
        }
        if (started) {
            tu_wait(io, &d.fired);
            CU_ASSERT_EQUAL(d.rc, 0);
            passes++;
        }
        read_view(io, log, &v);
        CU_ASSERT(strstr(v.committed, "ABORTED") == NULL);
        for (int k = 0; k < 64; k++) {
            char line[96];
            if (!model[k][0])
                continue;
            snprintf(line, sizeof(line), "r%d=%.32s", k, model[k]);
            CU_ASSERT(strstr(v.committed, line) != NULL);
        }
    }
    CU_ASSERT(passes >= 20);
    /* Some aborted records were cleaned away while markers came and went. */
    CU_ASSERT(records_of(&v, 100) < 24 || records_of(&v, 101) < 24 || records_of(&v, 102) < 24);
    /* Only the tail not yet cleaned still holds aborted records. */
    CU_ASSERT(v.aborted_records < 8);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- restarts after a pass ------------------------------------------------- */

typedef struct state {
    int64_t lso, hw, leo, start;
    size_t naborted;
    st_aborted_txn ab[64];
    size_t nprod;
    st_producer_info prod[16];
    char committed[16384];
} state;

static int cmp_prod(const void *a, const void *b)
{
    int64_t x = ((const st_producer_info *)a)->producer_id, y = ((const st_producer_info *)b)->producer_id;
    return x < y ? -1 : x > y;
}

static void state_of(st_io *io, st_log *log, state *s)
{
    memset(s, 0, sizeof(*s));
    s->lso = st_log_last_stable_offset(log);
    s->hw = st_log_high_watermark(log);
    s->leo = st_log_end_offset(log);
    s->start = st_log_start_offset(log);
    s->naborted = st_log_aborted_txns(log, 0, INT64_MAX, s->ab, 64);
    s->nprod = st_log_producers(log, s->prod, 16);
    qsort(s->prod, s->nprod < 16 ? s->nprod : 16, sizeof(s->prod[0]), cmp_prod);
    static view v;
    read_view(io, log, &v);
    snprintf(s->committed, sizeof(s->committed), "%s", v.committed);
}

static int same_state(const state *a, const state *b)
{
    if (a->lso != b->lso || a->hw != b->hw || a->leo != b->leo || a->start != b->start ||
        a->naborted != b->naborted || a->nprod != b->nprod || strcmp(a->committed, b->committed) != 0)
        return 0;
    for (size_t i = 0; i < a->naborted && i < 64; i++)
        if (memcmp(&a->ab[i], &b->ab[i], sizeof(a->ab[i])) != 0)
            return 0;
    for (size_t i = 0; i < a->nprod && i < 16; i++) {
        const st_producer_info *x = &a->prod[i], *y = &b->prod[i];
        if (x->producer_id != y->producer_id || x->epoch != y->epoch ||
            x->last_sequence != y->last_sequence ||
            x->current_txn_start_offset != y->current_txn_start_offset ||
            x->coordinator_epoch != y->coordinator_epoch)
            return 0;
    }
    return 1;
}

/* Aborts and commits, one transaction left open, two passes. */
static void pass_workload(st_io *io, st_log *log)
{
    for (int i = 0; i < 6; i++) {
        int64_t pid = 40 + i % 3;
        char key[16];
        snprintf(key, sizeof(key), "w%d", i % 4);
        CU_ASSERT(put(io, log, pid, 0, (i / 3) * 2, 1, key, 2, i % 2 ? "ABORTED" : "committed", 500) >= 0);
        CU_ASSERT(marker(io, log, pid, 0, i % 2 == 0) >= 0);
        filler(io, log, 1);
    }
    CU_ASSERT(put(io, log, 49, 0, 0, 1, "open", 1, "open", 0) >= 0);
    filler(io, log, 4);
    CU_ASSERT_EQUAL(compact(io, log), 0);
    CU_ASSERT_EQUAL(compact(io, log), 0);
}

static void test_restart_after_pass(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    compact_cfg(&cfg, 86400000);
    st_log *log = open_log(io, dir, &cfg);
    pass_workload(io, log);
    static state before, after;
    state_of(io, log, &before);
    static view v;
    read_view(io, log, &v);
    CU_ASSERT_EQUAL(v.aborted_records, 0);
    CU_ASSERT(before.lso < before.hw);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(io, dir, &cfg);
    state_of(io, log, &after);
    CU_ASSERT(same_state(&before, &after));
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

static void test_crash_after_pass(void)
{
    char *dir = tu_mkdtemp();
    st_log_config cfg;
    compact_cfg(&cfg, 86400000);
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    static state before, after;
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        st_io *cio = tu_io(g_force_thread);
        st_log *log = NULL;
        if (st_log_open(cio, dir, &cfg, &log) != 0)
            _exit(2);
        pass_workload(cio, log);
        state_of(cio, log, &before);
        if (write(fds[1], &before, sizeof(before)) != (ssize_t)sizeof(before))
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], &before, sizeof(before));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT_EQUAL_FATAL(got, (ssize_t)sizeof(before));
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, &cfg);
    state_of(io, log, &after);
    CU_ASSERT(same_state(&before, &after));
    static view v;
    read_view(io, log, &v);
    CU_ASSERT_EQUAL(v.aborted_records, 0);
    CU_ASSERT(strstr(v.uncommitted, "ABORTED") == NULL);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- retention and DeleteRecords past an open transaction ------------------ */

/* Kafka bounds both by the high watermark only: the open transaction stays
 * open with its first offset below the new start, the LSO is clamped to the
 * log start, the producer's dedup state stays, and its abort later lists
 * the original first offset. And the full replay (damaged .txnindex) keeps
 * it from the snapshot. */
static void retention_case(int by_delete_records)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    st_log_config_default(&cfg);
    cfg.segment_bytes = 4096;
    cfg.retention_ms = -1; /* the records carry 2023 timestamps */
    st_log *log = open_log(io, dir, &cfg);
    const int64_t O = 70, B = 71;
    filler(io, log, 1);
    int64_t first = put(io, log, O, 2, 0, 1, "o", 1, "open", 1000);
    int64_t b0 = put(io, log, B, 0, 0, 1, "b", 1, "ABORTED", 1000);
    filler(io, log, 3);
    CU_ASSERT(put(io, log, O, 2, 1, 1, "o", 1, "open", 1000) >= 0);
    int64_t mb = marker(io, log, B, 0, 0);
    filler(io, log, 6);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), first);
    CU_ASSERT(st_log_segment_count(log) > 4);
    int64_t new_start;
    if (by_delete_records) {
        new_start = mb - 1; /* straddles both transactions */
        tu_done d = {0, 0, -1};
        CU_ASSERT_EQUAL(st_log_delete_records(log, new_start, tu_append_cb, &d), 0);
        tu_wait(io, &d.fired);
        CU_ASSERT_EQUAL(d.rc, 0);
    } else {
        cfg.retention_bytes = 2 * 4096;
        st_log_set_config(log, &cfg);
        st_log_tick(log, tu_now_ms());
        new_start = st_log_start_offset(log);
        CU_ASSERT(new_start > first + 1);
    }
    CU_ASSERT_EQUAL(st_log_start_offset(log), new_start);
    /* Not bounded by the LSO: the open transaction's start is gone. */
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), new_start);
    st_producer_info info[8];
    size_t n = st_log_producers(log, info, 8);
    int seen = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        if (info[i].producer_id == O) {
            seen = 1;
            CU_ASSERT_EQUAL(info[i].current_txn_start_offset, first);
            CU_ASSERT_EQUAL(info[i].last_sequence, 1);
            CU_ASSERT_EQUAL(info[i].epoch, 2);
        }
    CU_ASSERT(seen);
    /* B's aborted transaction began below the start and is still listed
     * while its marker is there. */
    st_aborted_txn ab[8];
    size_t na = st_log_aborted_txns(log, new_start, INT64_MAX, ab, 8);
    if (mb >= new_start) {
        CU_ASSERT_EQUAL_FATAL(na, 1);
        CU_ASSERT_EQUAL(ab[0].first_offset, b0);
    }
    int64_t leo = st_log_end_offset(log);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    /* A damaged .txnindex sends recovery to the full replay: the snapshot
     * still knows the transaction that began in a removed segment. */
    char p[4096];
    {
        /* The first segment's (a missing file becomes a torn one). */
        int damaged = 0;
        for (int64_t off = 0; off <= leo; off++) {
            snprintf(p, sizeof(p), "%s/%020lld.log", dir, (long long)off);
            if (access(p, F_OK) != 0)
                continue;
            snprintf(p, sizeof(p), "%s/%020lld.txnindex", dir, (long long)off);
            int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
            CU_ASSERT(fd >= 0 && write(fd, "x", 1) == 1);
            close(fd);
            damaged++;
            break;
        }
        CU_ASSERT(damaged == 1);
    }
    log = open_log(io, dir, &cfg);
    CU_ASSERT_EQUAL(st_log_start_offset(log), new_start);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), new_start);
    n = st_log_producers(log, info, 8);
    seen = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        if (info[i].producer_id == O) {
            seen = 1;
            CU_ASSERT_EQUAL(info[i].current_txn_start_offset, first);
            CU_ASSERT_EQUAL(info[i].last_sequence, 1);
        }
    CU_ASSERT(seen);
    /* The transaction goes on and its abort records the original start. */
    CU_ASSERT(put(io, log, O, 2, 2, 1, "o", 1, "open", 0) >= 0);
    int64_t mo = marker(io, log, O, 2, 0);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), st_log_high_watermark(log));
    na = st_log_aborted_txns(log, new_start, INT64_MAX, ab, 8);
    CU_ASSERT_FATAL(na >= 1);
    CU_ASSERT_EQUAL(ab[na - 1].producer_id, O);
    CU_ASSERT_EQUAL(ab[na - 1].first_offset, first);
    CU_ASSERT_EQUAL(ab[na - 1].last_offset, mo);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

static void test_delete_records_open_txn(void)
{
    retention_case(1);
}

static void test_retention_open_txn(void)
{
    retention_case(0);
}

static void add_tests(CU_pSuite s)
{
    CU_add_test(s, "aborted_removed", test_aborted_removed);
    CU_add_test(s, "marker_horizon", test_marker_horizon);
    CU_add_test(s, "last_batch_kept", test_last_batch_kept);
    CU_add_test(s, "emptied_marker_replay", test_emptied_marker_replay);
    CU_add_test(s, "race_appends", test_race_appends);
    CU_add_test(s, "restart_after_pass", test_restart_after_pass);
    CU_add_test(s, "crash_after_pass", test_crash_after_pass);
    CU_add_test(s, "delete_records_open_txn", test_delete_records_open_txn);
    CU_add_test(s, "retention_open_txn", test_retention_open_txn);
}

static void register_suites(void)
{
    add_tests(CU_add_suite("txn_compaction_io_uring", suite_uring, NULL));
    add_tests(CU_add_suite("txn_compaction_threads", suite_thread, NULL));
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

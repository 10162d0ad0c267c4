/*
 * test_txn.c — transactions in the log engine: transactional batches and
 * markers through st_log_append, the last stable offset, the aborted
 * transaction list and its .txnindex files, read_committed reads, and all of
 * it across rolls, retention, clean restarts and crashes.
 *
 * Owns its temp directories (removed at the end of each test). Must not
 * depend on the order of tests.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
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

/* ---- helpers ---------------------------------------------------------------- */

/* A transactional (or, txn = 0, idempotent) batch of nrec records. */
static size_t txn_batch(uint8_t **out, int64_t pid, int16_t epoch, int32_t seq, int nrec, size_t vlen,
                        int txn)
{
    kp_batch_builder b;
    kp_batch_builder_init(&b, 0, KP_CODEC_NONE);
    kp_batch_builder_set_producer(&b, pid, epoch, seq, txn);
    uint8_t val[2048];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < nrec; i++) {
        char key[32];
        int kl = snprintf(key, sizeof(key), "p%lld-%d", (long long)pid, seq + i);
        if (kp_batch_builder_add(&b, 1700000000000LL + seq + i, (kp_bytes){(const uint8_t *)key, kl},
                                 (kp_bytes){val, (int32_t)vlen}, NULL, 0) != 0)
            abort();
    }
    kp_writer w;
    kp_writer_init(&w, 256);
    if (kp_batch_builder_finish(&b, &w) != 0)
        abort();
    kp_batch_builder_free(&b);
    *out = w.buf;
    return w.len;
}

/* Appends a transactional batch and returns its base offset (or the error). */
static int64_t put_txn(st_io *io, st_log *log, int64_t pid, int16_t epoch, int32_t seq, int nrec, size_t vlen)
{
    uint8_t *b;
    size_t n = txn_batch(&b, pid, epoch, seq, nrec, vlen, 1);
    int64_t off = -1;
    int rc = tu_append(io, log, b, n, &off);
    free(b);
    return rc < 0 ? rc : off;
}

static int64_t put_plain(st_io *io, st_log *log, int nrec)
{
    uint8_t *b;
    size_t n = tu_batch(&b, nrec, 1700000000000LL, 7, 20, -1, 0, 0, 0);
    int64_t off = -1;
    int rc = tu_append(io, log, b, n, &off);
    free(b);
    return rc < 0 ? rc : off;
}

static int64_t put_marker(st_io *io, st_log *log, int64_t pid, int16_t epoch, int commit, int32_t coord)
{
    kp_writer w;
    kp_writer_init(&w, 128);
    if (kp_batch_build_control(&w, 0, pid, epoch, commit, coord, 1700000001000LL) != 0)
        abort();
    int64_t off = -1;
    int rc = tu_append(io, log, w.buf, w.len, &off);
    kp_writer_free(&w);
    return rc < 0 ? rc : off;
}

/* Base offsets of the batches of a read result. */
static int batch_bases(const uint8_t *p, size_t len, int64_t *out, int max)
{
    int n = 0;
    size_t pos = 0;
    while (pos + 12 <= len && n < max) {
        out[n++] = (int64_t)kp_be64(p + pos);
        pos += 12 + kp_be32(p + pos + 8);
    }
    CU_ASSERT_EQUAL(pos, len);
    return n;
}

typedef struct rd_result {
    int fired, rc;
    int64_t bases[256];
    int n;
    int64_t lso, hw;
} rd_result;

static void rd_cb(void *arg, const st_read_result *res)
{
    rd_result *r = arg;
    r->fired = 1;
    r->rc = res->rc;
    r->lso = res->last_stable_offset;
    r->hw = res->high_watermark;
    r->n = res->rc == 0 ? batch_bases(res->data, res->len, r->bases, 256) : 0;
}

static int read_committed(st_io *io, st_log *log, int64_t off, size_t max, rd_result *r)
{
    memset(r, 0, sizeof(*r));
    int rc = st_log_read_committed(log, off, max, rd_cb, r);
    if (rc < 0)
        return rc;
    tu_wait(io, &r->fired);
    return r->rc;
}

static int read_uncommitted(st_io *io, st_log *log, int64_t off, size_t max, rd_result *r)
{
    memset(r, 0, sizeof(*r));
    int rc = st_log_read(log, off, max, rd_cb, r);
    if (rc < 0)
        return rc;
    tu_wait(io, &r->fired);
    return r->rc;
}

/* Kafka's collectAbortedTransactions, brute force over a known list: every
 * entry whose [first, last] meets [from, upper). */
static size_t expect_aborted(const st_aborted_txn *all, size_t n, int64_t from, int64_t upper,
                             st_aborted_txn *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].last_offset >= from && all[i].first_offset < upper)
            out[k++] = all[i];
    return k;
}

static int same_txn(const st_aborted_txn *a, const st_aborted_txn *b)
{
    return a->producer_id == b->producer_id && a->first_offset == b->first_offset &&
           a->last_offset == b->last_offset && a->last_stable_offset == b->last_stable_offset;
}

/* Every range [from, upper) over [0, end] answers as the brute force does. */
static void check_all_ranges(st_log *log, const st_aborted_txn *all, size_t n, int64_t end)
{
    st_aborted_txn got[64], want[64];
    int bad = 0;
    for (int64_t from = 0; from <= end; from++)
        for (int64_t upper = from; upper <= end + 1; upper++) {
            size_t g = st_log_aborted_txns(log, from, upper, got, 64);
            size_t w = expect_aborted(all, n, from, upper, want);
            if (g != w) {
                bad++;
                continue;
            }
            for (size_t i = 0; i < g; i++)
                if (!same_txn(&got[i], &want[i]))
                    bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);
}

static int64_t txn_start_of(st_log *log, int64_t pid)
{
    st_producer_info info[64];
    size_t n = st_log_producers(log, info, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        if (info[i].producer_id == pid)
            return info[i].current_txn_start_offset;
    return -2; /* not listed */
}

static st_log *open_log(st_io *io, const char *dir, const st_log_config *cfg)
{
    st_log *log = NULL;
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, cfg, &log), 0);
    return log;
}

/* ---- kafka-proto marker helpers -------------------------------------------- */

static void test_marker_bytes(void)
{
    for (int commit = 0; commit < 2; commit++) {
        kp_writer w;
        kp_writer_init(&w, 128);
        CU_ASSERT_EQUAL_FATAL(kp_batch_build_control(&w, 0, 4242, 7, commit, 19, 1700000000123LL), KP_OK);
        kp_batch b;
        CU_ASSERT_EQUAL_FATAL(kp_batch_validate(w.buf, w.len, &b), KP_OK);
        CU_ASSERT(b.h.attributes & KP_ATTR_CONTROL);
        CU_ASSERT(b.h.attributes & KP_ATTR_TRANSACTIONAL);
        CU_ASSERT_EQUAL(b.h.producer_id, 4242);
        CU_ASSERT_EQUAL(b.h.producer_epoch, 7);
        CU_ASSERT_EQUAL(b.h.base_sequence, -1);
        CU_ASSERT_EQUAL(b.h.record_count, 1);
        int16_t type = -5;
        int32_t coord = -5;
        CU_ASSERT_EQUAL(kp_txn_marker_parse(&b, &type, &coord), KP_OK);
        CU_ASSERT_EQUAL(type, commit ? KP_CONTROL_COMMIT : KP_CONTROL_ABORT);
        CU_ASSERT_EQUAL(coord, 19);
        /* The record itself: key = version 0 + type, value = version 0 + coordinator epoch. */
        kp_record_iter it;
        kp_record rec;
        kp_record_iter_init(&it, &b.h, b.records, b.records_size);
        CU_ASSERT_EQUAL_FATAL(kp_record_iter_next(&it, &rec), 1);
        static const uint8_t key_abort[4] = {0, 0, 0, 0}, key_commit[4] = {0, 0, 0, 1};
        static const uint8_t value[6] = {0, 0, 0, 0, 0, 19};
        CU_ASSERT_EQUAL_FATAL(rec.key.len, 4);
        CU_ASSERT_EQUAL(memcmp(rec.key.p, commit ? key_commit : key_abort, 4), 0);
        CU_ASSERT_EQUAL_FATAL(rec.value.len, 6);
        CU_ASSERT_EQUAL(memcmp(rec.value.p, value, 6), 0);
        kp_writer_free(&w);
    }
    /* A data batch, or a control batch with two records, is no marker. */
    uint8_t *d;
    size_t n = txn_batch(&d, 1, 0, 0, 2, 10, 1);
    kp_batch b;
    CU_ASSERT_EQUAL_FATAL(kp_batch_validate(d, n, &b), KP_OK);
    int16_t type;
    int32_t coord;
    CU_ASSERT_EQUAL(kp_txn_marker_parse(&b, &type, &coord), KP_E_INVALID);
    b.h.attributes |= KP_ATTR_CONTROL;
    CU_ASSERT_EQUAL(kp_txn_marker_parse(&b, &type, &coord), KP_E_INVALID);
    free(d);
}

/* ---- interleaved producers: LSO, aborted list, read_committed ------------- */

static void test_interleaved(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, NULL);
    const int64_t A = 1000, B = 2000, C = 3000;
    rd_result r;

    CU_ASSERT_EQUAL(put_plain(io, log, 3), 0); /* 0..2 */
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 3);
    CU_ASSERT_EQUAL(put_txn(io, log, A, 0, 0, 2, 10), 3); /* 3..4 */
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 3);
    CU_ASSERT_EQUAL(st_log_high_watermark(log), 5);
    CU_ASSERT_EQUAL(txn_start_of(log, A), 3);
    CU_ASSERT_EQUAL(put_txn(io, log, B, 0, 0, 2, 10), 5); /* 5..6 */
    CU_ASSERT_EQUAL(put_plain(io, log, 1), 7);
    CU_ASSERT_EQUAL(put_txn(io, log, A, 0, 2, 2, 10), 8); /* 8..9, same transaction */
    CU_ASSERT_EQUAL(txn_start_of(log, A), 3);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 3);

    /* read_committed stops before A's first batch; read_uncommitted does not. */
    CU_ASSERT_EQUAL(read_committed(io, log, 0, 1 << 20, &r), 0);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_EQUAL(r.bases[0], 0);
    CU_ASSERT_EQUAL(r.lso, 3);
    CU_ASSERT_EQUAL(read_committed(io, log, 3, 1 << 20, &r), 0);
    CU_ASSERT_EQUAL(r.n, 0); /* at the LSO: empty, not out of range */
    CU_ASSERT_EQUAL(read_committed(io, log, 7, 1 << 20, &r), 0);
    CU_ASSERT_EQUAL(r.n, 0);
    CU_ASSERT_EQUAL(read_uncommitted(io, log, 0, 1 << 20, &r), 0);
    CU_ASSERT_EQUAL(r.n, 5);

    /* COMMIT A. Until the marker is acked A's transaction still holds the
     * LSO (Kafka's unreplicated transactions): a failed write or a crash
     * could take the commit back. */
    kp_writer cw;
    kp_writer_init(&cw, 128);
    CU_ASSERT_EQUAL_FATAL(kp_batch_build_control(&cw, 0, A, 0, 1, 1, 1700000001000LL), 0);
    tu_done cd = {0, 0, -1};
    int64_t cbase = -1;
    CU_ASSERT_EQUAL_FATAL(st_log_append(log, cw.buf, cw.len, tu_append_cb, &cd, &cbase), 0);
    kp_writer_free(&cw);
    CU_ASSERT_EQUAL(cbase, 10);
    CU_ASSERT_EQUAL(txn_start_of(log, A), -1);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 3);
    tu_wait(io, &cd.fired);
    CU_ASSERT_EQUAL(cd.rc, 0);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 5); /* B's first */
    CU_ASSERT_EQUAL(read_committed(io, log, 0, 1 << 20, &r), 0);
    CU_ASSERT_EQUAL(r.n, 2); /* 0 and A's 3 */
    CU_ASSERT_EQUAL(r.bases[1], 3);
    CU_ASSERT_EQUAL(put_txn(io, log, C, 0, 0, 1, 10), 11);
    CU_ASSERT_EQUAL(put_marker(io, log, B, 0, 0, 1), 12); /* ABORT B while C is open */
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 11);
    CU_ASSERT_EQUAL(txn_start_of(log, C), 11);
    CU_ASSERT_EQUAL(put_marker(io, log, C, 0, 0, 1), 13); /* ABORT C */
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 14);
    CU_ASSERT_EQUAL(st_log_high_watermark(log), 14);
    /* A second transaction of A, left open. */
    CU_ASSERT_EQUAL(put_txn(io, log, A, 0, 4, 1, 10), 14);
    CU_ASSERT_EQUAL(put_marker(io, log, A, 0, 0, 1), 15); /* ABORT A */

    /* LSO of each entry: B's abort saw C ongoing (11); C's and A's none (marker + 1). */
    st_aborted_txn all[3] = {{B, 5, 12, 11}, {C, 11, 13, 14}, {A, 14, 15, 16}};
    check_all_ranges(log, all, 3, 16);
    st_aborted_txn got[4];
    CU_ASSERT_EQUAL(st_log_aborted_txns(log, 0, 16, got, 4), 3);
    CU_ASSERT(same_txn(&got[0], &all[0]) && same_txn(&got[1], &all[1]) && same_txn(&got[2], &all[2]));
    CU_ASSERT_EQUAL(st_log_aborted_txns(log, 0, 16, got, 1), 3); /* count beyond max */
    CU_ASSERT_EQUAL(read_committed(io, log, 0, 1 << 20, &r), 0);
    CU_ASSERT_EQUAL(r.n, 11); /* every batch: the LSO is the HW, Fetch filters with the list */
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- fencing and invalid input ------------------------------------------- */

static void test_fencing(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, NULL);
    const int64_t P = 77;
    CU_ASSERT_EQUAL(put_txn(io, log, P, 5, 0, 1, 10), 0);
    /* An older epoch: data and marker alike are INVALID_PRODUCER_EPOCH. */
    CU_ASSERT_EQUAL(put_txn(io, log, P, 4, 1, 1, 10), ST_E_FENCED);
    CU_ASSERT_EQUAL(put_marker(io, log, P, 4, 0, 3), ST_E_FENCED);
    /* Non-transactional data inside the transaction. */
    uint8_t *b;
    size_t n = txn_batch(&b, P, 5, 1, 1, 10, 0);
    int64_t off;
    CU_ASSERT_EQUAL(tu_append(io, log, b, n, &off), ST_E_INVALID_TXN_STATE);
    free(b);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 0);
    CU_ASSERT_EQUAL(put_marker(io, log, P, 5, 1, 3), 1); /* COMMIT, coordinator epoch 3 */
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 2);
    CU_ASSERT_EQUAL(put_txn(io, log, P, 5, 1, 1, 10), 2);
    /* A marker from an older coordinator. */
    CU_ASSERT_EQUAL(put_marker(io, log, P, 5, 0, 2), ST_E_COORDINATOR_FENCED);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 2);
    /* A marker of a newer epoch (the coordinator's abort after a bump) ends it. */
    CU_ASSERT_EQUAL(put_marker(io, log, P, 6, 0, 3), 3);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 4);
    st_aborted_txn got[2];
    CU_ASSERT_EQUAL_FATAL(st_log_aborted_txns(log, 0, 10, got, 2), 1);
    CU_ASSERT(same_txn(&got[0], &(st_aborted_txn){P, 2, 3, 4}));
    CU_ASSERT_EQUAL(put_txn(io, log, P, 5, 2, 1, 10), ST_E_FENCED);
    /* A producer's control batch that is no marker. */
    n = txn_batch(&b, P, 6, 0, 2, 10, 1);
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    uint16_t attrs = kp_be16(c + 21);
    kp_put_be16(c + 21, (uint16_t)(attrs | KP_ATTR_CONTROL));
    kp_put_be32(c + 17, kp_crc32c(0, c + 21, n - 21));
    CU_ASSERT_EQUAL(tu_append(io, log, c, n, &off), ST_E_INVALID_RECORD);
    free(b);
    free(c);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 4);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- the same through st_log_append_ordered (what the broker uses) -------- */

typedef struct ord_result {
    int accepted, acc_rc, done, done_rc;
    int64_t base;
} ord_result;

static void ord_accepted(void *arg, int rc, int64_t base)
{
    ord_result *r = arg;
    r->accepted++;
    r->acc_rc = rc;
    r->base = base;
}

static void ord_done(void *arg, int rc, int64_t base)
{
    (void)base;
    ord_result *r = arg;
    r->done++;
    r->done_rc = rc;
}

static void test_ordered(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, NULL);
    ord_result r[4];
    memset(r, 0, sizeof(r));
    uint8_t *b;
    size_t n = txn_batch(&b, 61, 3, 0, 2, 10, 1);
    st_log_append_ordered(log, b, n, ord_accepted, ord_done, &r[0]);
    free(b);
    kp_writer w;
    kp_writer_init(&w, 128);
    CU_ASSERT_EQUAL_FATAL(kp_batch_build_control(&w, 0, 61, 2, 0, 1, 1700000001000LL), 0);
    st_log_append_ordered(log, w.buf, w.len, ord_accepted, ord_done, &r[1]); /* old epoch */
    w.len = 0;
    CU_ASSERT_EQUAL_FATAL(kp_batch_build_control(&w, 0, 61, 3, 0, 1, 1700000001000LL), 0);
    st_log_append_ordered(log, w.buf, w.len, ord_accepted, ord_done, &r[2]);
    kp_writer_free(&w);
    tu_wait(io, &r[2].done);
    CU_ASSERT(r[0].accepted == 1 && r[0].acc_rc == 0 && r[0].base == 0 && r[0].done == 1 &&
              r[0].done_rc == 0);
    CU_ASSERT(r[1].accepted == 1 && r[1].acc_rc == ST_E_FENCED && r[1].done == 0);
    CU_ASSERT(r[2].accepted == 1 && r[2].acc_rc == 0 && r[2].base == 2 && r[2].done_rc == 0);
    st_aborted_txn got[2];
    CU_ASSERT_EQUAL_FATAL(st_log_aborted_txns(log, 0, 10, got, 2), 1);
    CU_ASSERT(same_txn(&got[0], &(st_aborted_txn){61, 0, 2, 3}));
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 3);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- markers without a transaction ----------------------------------------- */

static void test_marker_without_txn(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, NULL);
    CU_ASSERT_EQUAL(put_marker(io, log, 500, 0, 0, 1), 0); /* unknown producer, ABORT */
    CU_ASSERT_EQUAL(put_marker(io, log, 500, 0, 1, 1), 1); /* COMMIT */
    uint8_t *b;
    size_t n = txn_batch(&b, 501, 0, 0, 1, 10, 0);
    int64_t off;
    CU_ASSERT_EQUAL(tu_append(io, log, b, n, &off), 0); /* idempotent, idle */
    free(b);
    CU_ASSERT_EQUAL(put_marker(io, log, 501, 0, 0, 1), 3);
    CU_ASSERT_EQUAL(st_log_high_watermark(log), 4);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 4);
    st_aborted_txn got[2];
    CU_ASSERT_EQUAL(st_log_aborted_txns(log, 0, 100, got, 2), 0);
    CU_ASSERT_EQUAL(txn_start_of(log, 501), -1);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    /* Nothing recorded on disk either. */
    char p[4096];
    snprintf(p, sizeof(p), "%s/00000000000000000000.txnindex", dir);
    CU_ASSERT_EQUAL(access(p, F_OK), -1);
    log = open_log(io, dir, NULL);
    CU_ASSERT_EQUAL(st_log_aborted_txns(log, 0, 100, got, 2), 0);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 4);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- segments: transactions spanning rolls, retention, .txnindex ----------- */

static void small_segments(st_log_config *c)
{
    st_log_config_default(c);
    c->segment_bytes = 4096; /* three ~1 KiB batches per segment */
}

static int file_exists(const char *dir, int64_t base, const char *ext)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%020lld%s", dir, (long long)base, ext);
    return access(p, F_OK) == 0;
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
}

static void test_segments_and_retention(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    small_segments(&cfg);
    st_log *log = open_log(io, dir, &cfg);
    const int64_t A = 11, B = 22;
    /* A opens in the first segment and spans several; B aborts inside. */
    CU_ASSERT_EQUAL(put_txn(io, log, A, 1, 0, 1, 1000), 0);
    int32_t seqa = 1, seqb = 0;
    int64_t off = 1;
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(put_txn(io, log, B, 1, seqb++, 1, 1000), off++);
        CU_ASSERT_EQUAL(put_txn(io, log, A, 1, seqa++, 1, 1000), off++);
    }
    CU_ASSERT(st_log_segment_count(log) >= 4);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 0);
    int64_t b_abort = put_marker(io, log, B, 1, 0, 2);
    CU_ASSERT_EQUAL(b_abort, off++);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 0);
    int64_t a_abort = put_marker(io, log, A, 1, 0, 2);
    CU_ASSERT_EQUAL(a_abort, off++);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), off);
    st_aborted_txn all[2] = {{B, 1, b_abort, 0}, {A, 0, a_abort, a_abort + 1}};
    check_all_ranges(log, all, 2, off);
    /* read_committed over many segments (disk reads), small max: one batch each. */
    rd_result r;
    int64_t pos = 0;
    int batches = 0;
    while (pos < st_log_last_stable_offset(log)) {
        CU_ASSERT_EQUAL_FATAL(read_committed(io, log, pos, 1, &r), 0);
        CU_ASSERT_EQUAL_FATAL(r.n, 1);
        CU_ASSERT_EQUAL(r.bases[0], pos);
        pos = r.bases[0] + 1;
        batches++;
    }
    CU_ASSERT_EQUAL(batches, (int)off);

    /* Open another B transaction, roll past the markers, and close: both
     * markers' segments get a .txnindex. */
    int64_t b2 = put_txn(io, log, B, 1, seqb++, 1, 1000);
    CU_ASSERT_EQUAL(b2, off++);
    for (int i = 0; i < 4; i++) { /* big idempotent batches: a few rolls past the markers */
        uint8_t *b;
        size_t n = txn_batch(&b, 33, 0, i, 1, 1000, 0);
        int64_t o = -1;
        CU_ASSERT_EQUAL(tu_append(io, log, b, n, &o), 0);
        CU_ASSERT_EQUAL(o, off++);
        free(b);
    }
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), b2);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    log = open_log(io, dir, &cfg);
    int sb = -1, sa = -1;
    int64_t bases[64];
    unsigned ns = st_log_segment_count(log);
    CU_ASSERT_FATAL(ns <= 64);
    /* Find each marker's segment from the file names. */
    int64_t bs = 0;
    for (int64_t o = 0; o <= off; o++)
        if (file_exists(dir, o, ".log"))
            bases[bs++] = o;
    CU_ASSERT_EQUAL(bs, ns);
    for (int i = 0; i < bs; i++) {
        int64_t end = i + 1 < bs ? bases[i + 1] : INT64_MAX;
        if (b_abort >= bases[i] && b_abort < end)
            sb = i;
        if (a_abort >= bases[i] && a_abort < end)
            sa = i;
        /* Only segments holding an ABORT marker have a .txnindex. */
        int want = (b_abort >= bases[i] && b_abort < end) || (a_abort >= bases[i] && a_abort < end);
        CU_ASSERT_EQUAL(file_exists(dir, bases[i], ".txnindex"), want);
    }
    CU_ASSERT_FATAL(sb >= 0 && sa >= 0);
    check_all_ranges(log, all, 2, off);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), b2);
    CU_ASSERT_EQUAL(txn_start_of(log, B), b2);

    /* DeleteRecords past B's marker's segment: its .txnindex goes with it,
     * and so does the entry; A's stays while its segment does. */
    tu_done d = {0, 0, -1};
    int64_t cut = bases[sb + 1];
    CU_ASSERT_EQUAL(st_log_delete_records(log, cut, tu_append_cb, &d), 0);
    tu_wait(io, &d.fired);
    CU_ASSERT_EQUAL(d.rc, 0);
    for (int i = 0; i < 200 && file_exists(dir, bases[sb], ".log"); i++)
        st_io_wait(io, 10); /* unlinks run on the background thread */
    CU_ASSERT_FALSE(file_exists(dir, bases[sb], ".log"));
    CU_ASSERT_FALSE(file_exists(dir, bases[sb], ".txnindex"));
    st_aborted_txn got[4];
    size_t n = st_log_aborted_txns(log, cut, off + 1, got, 4);
    if (sa > sb) {
        CU_ASSERT_EQUAL(n, 1);
        CU_ASSERT(same_txn(&got[0], &all[1]));
    } else {
        CU_ASSERT_EQUAL(n, 0);
    }
    CU_ASSERT_EQUAL(st_log_aborted_txns(log, 0, cut, got, 4), sa > sb ? 1u : 0u);
    /* The open transaction still holds the LSO (never below the log start). */
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), b2 > cut ? b2 : cut);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    /* Retention by size removes A's segment too, with its .txnindex. */
    st_log_config small = cfg;
    small.retention_bytes = 1;
    log = open_log(io, dir, &small);
    st_log_tick(log, tu_now_ms());
    for (int i = 0; i < 200 && file_exists(dir, bases[sa], ".txnindex"); i++)
        st_io_wait(io, 10);
    CU_ASSERT_FALSE(file_exists(dir, bases[sa], ".log"));
    CU_ASSERT_FALSE(file_exists(dir, bases[sa], ".txnindex"));
    CU_ASSERT_EQUAL(st_log_aborted_txns(log, 0, off + 1, got, 4), 0);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* The .txnindex bytes are Kafka's AbortedTxn entries. */
static void test_txnindex_bytes(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, NULL);
    CU_ASSERT_EQUAL(put_txn(io, log, 0x0102030405060708LL, 0, 0, 2, 10), 0);
    CU_ASSERT_EQUAL(put_txn(io, log, 9, 0, 0, 1, 10), 2);
    CU_ASSERT_EQUAL(put_marker(io, log, 0x0102030405060708LL, 0, 0, 1), 3);
    CU_ASSERT_EQUAL(put_marker(io, log, 9, 0, 0, 1), 4);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    uint8_t want[68];
    put_be16(want, 0);
    put_be64(want + 2, 0x0102030405060708LL);
    put_be64(want + 10, 0);
    put_be64(want + 18, 3);
    put_be64(want + 26, 2); /* producer 9's transaction was still open */
    put_be16(want + 34, 0);
    put_be64(want + 36, 9);
    put_be64(want + 44, 2);
    put_be64(want + 52, 4);
    put_be64(want + 60, 5);
    char p[4096];
    snprintf(p, sizeof(p), "%s/00000000000000000000.txnindex", dir);
    uint8_t got[128];
    int fd = open(p, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    ssize_t n = read(fd, got, sizeof(got));
    close(fd);
    CU_ASSERT_EQUAL_FATAL(n, 68);
    CU_ASSERT_EQUAL(memcmp(got, want, 68), 0);
    /* A damaged .txnindex is not believed: the log is replayed instead. */
    fd = open(p, O_WRONLY | O_APPEND);
    CU_ASSERT_EQUAL(write(fd, "xx", 2), 2);
    close(fd);
    log = open_log(io, dir, NULL);
    st_aborted_txn all[2] = {{0x0102030405060708LL, 0, 3, 2}, {9, 2, 4, 5}};
    check_all_ranges(log, all, 2, 5);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- restarts ------------------------------------------------------------ */

typedef struct txn_view {
    int64_t lso, hw, leo;
    size_t naborted;
    st_aborted_txn aborted[64];
    int64_t starts[4]; /* current transaction start of producers 1..4 */
} txn_view;

static void view_of(st_log *log, txn_view *v)
{
    memset(v, 0, sizeof(*v));
    v->lso = st_log_last_stable_offset(log);
    v->hw = st_log_high_watermark(log);
    v->leo = st_log_end_offset(log);
    v->naborted = st_log_aborted_txns(log, 0, INT64_MAX, v->aborted, 64);
    for (int i = 0; i < 4; i++)
        v->starts[i] = txn_start_of(log, i + 1);
}

/* Which fields of two views differ, so that a rare failure tells where to look. */
static void print_view_diff(const char *what, const txn_view *a, const txn_view *b)
{
    fprintf(stderr, "\n%s: lso %lld/%lld hw %lld/%lld leo %lld/%lld aborted %zu/%zu\n", what,
            (long long)a->lso, (long long)b->lso, (long long)a->hw, (long long)b->hw, (long long)a->leo,
            (long long)b->leo, a->naborted, b->naborted);
    for (int i = 0; i < 4; i++)
        if (a->starts[i] != b->starts[i])
            fprintf(stderr, "  producer %d txn start %lld/%lld\n", i + 1, (long long)a->starts[i],
                    (long long)b->starts[i]);
    size_t n = a->naborted > b->naborted ? a->naborted : b->naborted;
    for (size_t i = 0; i < n && i < 64; i++) {
        const st_aborted_txn *x = i < a->naborted ? &a->aborted[i] : NULL;
        const st_aborted_txn *y = i < b->naborted ? &b->aborted[i] : NULL;
        if (x && y && same_txn(x, y))
            continue;
        fprintf(stderr,
                "  aborted[%zu] got pid %lld [%lld,%lld] lso %lld / want pid %lld [%lld,%lld] lso %lld\n", i,
                x ? (long long)x->producer_id : -1, x ? (long long)x->first_offset : -1,
                x ? (long long)x->last_offset : -1, x ? (long long)x->last_stable_offset : -1,
                y ? (long long)y->producer_id : -1, y ? (long long)y->first_offset : -1,
                y ? (long long)y->last_offset : -1, y ? (long long)y->last_stable_offset : -1);
    }
}

static int same_view(const txn_view *a, const txn_view *b)
{
    if (a->lso != b->lso || a->hw != b->hw || a->leo != b->leo || a->naborted != b->naborted)
        return 0;
    for (size_t i = 0; i < a->naborted && i < 64; i++)
        if (!same_txn(&a->aborted[i], &b->aborted[i]))
            return 0;
    return memcmp(a->starts, b->starts, sizeof(a->starts)) == 0;
}

/* Four producers taking turns: commits, aborts, transactions left open,
 * across rolls. Deterministic, so both sides of a restart can run it. */
static void workload(st_io *io, st_log *log, int rounds)
{
    int32_t seq[4] = {0, 0, 0, 0};
    for (int i = 0; i < rounds; i++) {
        int p = i % 4;
        int64_t pid = p + 1;
        CU_ASSERT(put_txn(io, log, pid, 0, seq[p], 2, 300) >= 0);
        seq[p] += 2;
        if (i % 3 == 2) {
            int q = (i / 3) % 4;
            if (txn_start_of(log, q + 1) >= 0)
                CU_ASSERT(put_marker(io, log, q + 1, 0, i % 2, 1) >= 0);
        }
        if (i % 5 == 0)
            CU_ASSERT(put_plain(io, log, 1) >= 0);
    }
}

static void test_restart_clean(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    small_segments(&cfg);
    st_log *log = open_log(io, dir, &cfg);
    workload(io, log, 40);
    txn_view before, after;
    view_of(log, &before);
    CU_ASSERT(before.naborted >= 3);
    CU_ASSERT(before.lso < before.hw); /* something is still open */
    CU_ASSERT(st_log_segment_count(log) > 3);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(io, dir, &cfg);
    view_of(log, &after);
    CU_ASSERT(same_view(&before, &after));
    /* The open transactions continue: aborting one records the start from
     * before the restart. */
    int p = -1;
    for (int i = 0; i < 4; i++)
        if (after.starts[i] >= 0)
            p = i;
    CU_ASSERT_FATAL(p >= 0);
    int64_t m = put_marker(io, log, p + 1, 0, 0, 1);
    st_aborted_txn got[64];
    size_t n = st_log_aborted_txns(log, 0, INT64_MAX, got, 64);
    CU_ASSERT_EQUAL_FATAL(n, after.naborted + 1);
    CU_ASSERT_EQUAL(got[n - 1].first_offset, after.starts[p]);
    CU_ASSERT_EQUAL(got[n - 1].last_offset, m);
    view_of(log, &before);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(io, dir, &cfg);
    view_of(log, &after);
    CU_ASSERT(same_view(&before, &after));
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* A child runs the workload (every append acked, hence durable), reports
 * its view through a pipe and is killed with SIGKILL: no close, no
 * clean-shutdown marker, no final snapshot. The parent recovers the log. */
static void crash_round(int rounds, int segment_bytes, int drop_marker)
{
    char *dir = tu_mkdtemp();
    st_log_config cfg;
    st_log_config_default(&cfg);
    cfg.segment_bytes = (uint64_t)segment_bytes;
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        st_io *cio = tu_io(g_force_thread);
        st_log *log = NULL;
        if (st_log_open(cio, dir, &cfg, &log) != 0)
            _exit(2);
        workload(cio, log, rounds);
        txn_view v;
        view_of(log, &v);
        if (write(fds[1], &v, sizeof(v)) != (ssize_t)sizeof(v))
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    close(fds[1]);
    txn_view before, after;
    ssize_t got = read(fds[0], &before, sizeof(before));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT_EQUAL_FATAL(got, (ssize_t)sizeof(before));
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* A new log is created with the clean-shutdown marker, which stays
     * while it runs (what a real crash leaves); without it the last
     * segment is scanned in full. */
    if (drop_marker) {
        char marker[4096];
        snprintf(marker, sizeof(marker), "%s/clean-shutdown", dir);
        unlink(marker);
    }
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, &cfg);
    view_of(log, &after);
    CU_ASSERT(same_view(&before, &after));
    CU_ASSERT(before.naborted > 0);
    /* And once more after a clean close of the recovered log. */
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(io, dir, &cfg);
    view_of(log, &after);
    CU_ASSERT(same_view(&before, &after));
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

static void test_restart_crash(void)
{
    crash_round(40, 1 << 30, 0); /* one segment: everything replayed */
    crash_round(40, 4096, 0);    /* many rolls: .txnindex below the roll snapshot, replay above */
    crash_round(40, 4096, 1);
    crash_round(13, 8192, 1);
}

/* ---- a failed write undoes the transaction changes of what it carried ------ */

static int g_child_fails;
#define CHILD_CHECK(x)                                                                                       \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "txn child: check failed at line %d: %s\n", __LINE__, #x);                       \
            g_child_fails++;                                                                                 \
        }                                                                                                    \
    } while (0)

static void count_cb(void *arg, int rc, int64_t off)
{
    (void)off;
    int *v = arg;
    v[rc == 0 ? 0 : 1]++;
}

static int rollback_child(const char *dir)
{
    signal(SIGXFSZ, SIG_IGN);
    st_io *io = tu_io(g_force_thread);
    st_log *log = NULL;
    CHILD_CHECK(st_log_open(io, dir, NULL, &log) == 0);
    const int64_t P = 5, Q = 6;
    CHILD_CHECK(put_txn(io, log, P, 0, 0, 2, 1500) == 0);
    int64_t size = 0;
    for (int i = 0; i < 3; i++) {
        uint8_t *b;
        size_t n = txn_batch(&b, 40, 0, i, 1, 1500, 0);
        int64_t o;
        CHILD_CHECK(tu_append(io, log, b, n, &o) == 0);
        free(b);
    }
    size = st_log_size_bytes(log);
    /* Every later write covers the partial last block, which now lies past
     * the limit: the marker and Q's first batch are accepted in memory and
     * then fail. */
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rlim_t hard = rl.rlim_max;
    rl.rlim_cur = (rlim_t)(size & ~4095);
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    int64_t end = st_log_end_offset(log);
    kp_writer w;
    kp_writer_init(&w, 128);
    CHILD_CHECK(kp_batch_build_control(&w, 0, P, 0, 0, 1, 1700000001000LL) == 0);
    uint8_t *qb;
    size_t qn = txn_batch(&qb, Q, 0, 0, 1, 100, 1);
    int res[2] = {0, 0};
    int64_t o1 = -1, o2 = -1;
    CHILD_CHECK(st_log_append(log, w.buf, w.len, count_cb, res, &o1) == 0);
    CHILD_CHECK(st_log_append(log, qb, qn, count_cb, res, &o2) == 0);
    CHILD_CHECK(o1 == end && o2 == end + 1);
    /* In memory, until the write fails: P's transaction ended (but holds
     * the LSO until its marker is acked), Q's began. */
    CHILD_CHECK(txn_start_of(log, P) == -1 && txn_start_of(log, Q) == end + 1);
    CHILD_CHECK(st_log_last_stable_offset(log) == 0);
    for (int i = 0; i < 2000 && res[0] + res[1] < 2; i++)
        st_io_wait(io, 5);
    CHILD_CHECK(res[0] == 0 && res[1] == 2);
    CHILD_CHECK(st_log_end_offset(log) == end);
    CHILD_CHECK(txn_start_of(log, P) == 0);
    CHILD_CHECK(txn_start_of(log, Q) == -2);
    CHILD_CHECK(st_log_last_stable_offset(log) == 0);
    st_aborted_txn got[2];
    CHILD_CHECK(st_log_aborted_txns(log, 0, INT64_MAX, got, 2) == 0);
    /* Space returns: the marker goes through and aborts what P began at 0. */
    rl.rlim_cur = hard;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    int64_t m = -1;
    CHILD_CHECK(tu_append(io, log, w.buf, w.len, &m) == 0 && m == end);
    CHILD_CHECK(st_log_aborted_txns(log, 0, INT64_MAX, got, 2) == 1);
    CHILD_CHECK(same_txn(&got[0], &(st_aborted_txn){P, 0, end, end + 1}));
    CHILD_CHECK(st_log_last_stable_offset(log) == end + 1);
    CHILD_CHECK(st_log_close(log) == 0);
    CHILD_CHECK(st_log_open(io, dir, NULL, &log) == 0);
    CHILD_CHECK(st_log_aborted_txns(log, 0, INT64_MAX, got, 2) == 1);
    CHILD_CHECK(same_txn(&got[0], &(st_aborted_txn){P, 0, end, end + 1}));
    CHILD_CHECK(st_log_last_stable_offset(log) == end + 1);
    CHILD_CHECK(st_log_close(log) == 0);
    kp_writer_free(&w);
    free(qb);
    st_io_destroy(io);
    return g_child_fails;
}

static void test_failed_write_rollback(void)
{
    char *dir = tu_mkdtemp();
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(rollback_child(dir) ? 1 : 0);
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmrf(dir);
    free(dir);
}

/* ---- many open transactions ended in random order ---------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_many_open(void)
{
    enum { NP = 3000 };
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, NULL);
    static int64_t first[NP];
    static st_aborted_txn want[NP];
    size_t nwant = 0;
    int done[2] = {0, 0};
    /* Pipelined (no wait per append): the HW lags, the LSO must follow it. */
    for (int i = 0; i < NP; i++) {
        uint8_t *b;
        size_t n = txn_batch(&b, 100000 + i, 0, 0, 1, 8, 1);
        CU_ASSERT_EQUAL_FATAL(st_log_append(log, b, n, count_cb, done, &first[i]), 0);
        free(b);
        CU_ASSERT_EQUAL(st_log_last_stable_offset(log),
                        first[0] < st_log_high_watermark(log) ? first[0] : st_log_high_watermark(log));
    }
    /* End them in a scrambled order, commits and aborts mixed; after each
     * marker the LSO is the brute-force minimum. */
    static int open_[NP];
    static int64_t marker[NP];
    for (int i = 0; i < NP; i++)
        open_[i] = 1;
    int bad = 0;
    uint32_t x = 12345;
    for (int k = 0; k < NP; k++) {
        x = x * 1103515245u + 12345u;
        int i = (int)((x >> 8) % NP);
        while (!open_[i])
            i = (i + 1) % NP;
        int commit = (x >> 4) & 1;
        kp_writer w;
        kp_writer_init(&w, 128);
        if (kp_batch_build_control(&w, 0, 100000 + i, 0, commit, 1, 1700000001000LL) != 0)
            abort();
        int64_t lso_before = -1, m = -1;
        for (int j = 0; j < NP; j++)
            if (open_[j] && j != i) {
                lso_before = first[j];
                break;
            }
        CU_ASSERT_EQUAL_FATAL(st_log_append(log, w.buf, w.len, count_cb, done, &m), 0);
        kp_writer_free(&w);
        open_[i] = 0;
        marker[i] = m;
        if (!commit)
            want[nwant++] = (st_aborted_txn){100000 + i, first[i], m, lso_before >= 0 ? lso_before : m + 1};
        /* Open, or ended by a marker not acked yet (at or past the HW). */
        int64_t hw = st_log_high_watermark(log), exp = hw;
        for (int j = 0; j < NP; j++)
            if (open_[j] || marker[j] >= hw) {
                exp = first[j] < hw ? first[j] : hw;
                break;
            }
        if (st_log_last_stable_offset(log) != exp)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int i = 0; i < 2000 && done[0] + done[1] < 2 * NP; i++)
        st_io_wait(io, 5);
    CU_ASSERT_EQUAL(done[0], 2 * NP);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 2 * NP);
    /* Aborted lists at spread ranges against the brute force. */
    static st_aborted_txn got[NP], exp[NP];
    for (int64_t from = 0; from < 2 * NP; from += 97)
        for (int64_t upper = from; upper <= 2 * NP; upper += 389) {
            size_t g = st_log_aborted_txns(log, from, upper, got, NP);
            size_t e = expect_aborted(want, nwant, from, upper, exp);
            CU_ASSERT_EQUAL_FATAL(g, e);
            for (size_t k = 0; k < g; k++)
                if (!same_txn(&got[k], &exp[k]))
                    bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);
    /* The cost of the two reads Fetch makes (printed, not asserted). */
    double t0 = now_s();
    int64_t sum = 0;
    for (int i = 0; i < 1000000; i++)
        sum += st_log_last_stable_offset(log);
    double t1 = now_s();
    size_t total = 0;
    for (int i = 0; i < 10000; i++)
        total += st_log_aborted_txns(log, (i * 7919) % (2 * NP), (i * 7919) % (2 * NP) + 100, got, NP);
    double t2 = now_s();
    fprintf(stderr,
            "(%zu aborted of %d; LSO %.1f ns/call; aborted list over 100 offsets %.2f us/call, %zu hits) ",
            nwant, NP, (t1 - t0) * 1e9 / 1e6, (t2 - t1) * 1e6 / 1e4, total);
    CU_ASSERT(sum > 0);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- kill -9 with appends in flight: recovery equals a replay from scratch -- */

static void noop_cb(void *arg, int rc, int64_t off)
{
    (void)arg;
    (void)rc;
    (void)off;
}

static void inflight_child(const char *dir, uint32_t seed)
{
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    st_log_config_default(&cfg);
    cfg.segment_bytes = 16384;
    st_log *log = NULL;
    if (st_log_open(io, dir, &cfg, &log) != 0)
        _exit(2);
    int32_t seq[4] = {0, 0, 0, 0};
    int open_[4] = {0, 0, 0, 0};
    uint32_t x = seed;
    for (int i = 0;; i++) {
        x = x * 1103515245u + 12345u;
        int p = (int)((x >> 8) % 4);
        uint8_t *b = NULL;
        size_t n;
        kp_writer w = {0};
        if (open_[p] && (x >> 12) % 3 == 0) {
            kp_writer_init(&w, 128);
            if (kp_batch_build_control(&w, 0, p + 1, 0, (x >> 16) & 1, 1, 1700000001000LL) != 0)
                _exit(3);
            b = w.buf;
            n = w.len;
            open_[p] = 0;
        } else if ((x >> 12) % 7 == 1) {
            n = tu_batch(&b, 1, 1700000000000LL, x, 50, -1, 0, 0, 0);
        } else {
            n = txn_batch(&b, p + 1, 0, seq[p], 2, 200, 1);
            seq[p] += 2;
            open_[p] = 1;
        }
        int64_t off;
        int rc;
        while ((rc = st_log_append(log, b, n, noop_cb, NULL, &off)) == ST_E_BUSY)
            st_io_wait(io, 1);
        if (rc != 0)
            _exit(4);
        free(b);
        st_io_poll(io);
        if (i % 8 == 7)
            st_io_wait(io, 1);
    }
}

/* Where the data a log holds ends, reading every batch from offset 0 and
 * checking each one starts where the previous one ended: a recovered log
 * end past it would skip offsets that were never written, which the replay
 * oracle (recovered by the same code) cannot notice. -1 on a gap. */
typedef struct dense_rd {
    int fired, rc;
    int64_t end;
    int gap;
} dense_rd;

static void dense_cb(void *arg, const st_read_result *res)
{
    dense_rd *d = arg;
    d->fired = 1;
    d->rc = res->rc;
    size_t pos = 0;
    while (res->rc == 0 && pos + 27 <= res->len) {
        int64_t base = (int64_t)kp_be64(res->data + pos);
        int32_t delta = (int32_t)kp_be32(res->data + pos + 23);
        if (base != d->end)
            d->gap = 1;
        d->end = base + delta + 1;
        pos += 12 + kp_be32(res->data + pos + 8);
    }
}

static int64_t dense_end(st_io *io, st_log *log)
{
    dense_rd d = {0, 0, 0, 0};
    for (int guard = 0; guard < 100000 && d.end < st_log_end_offset(log); guard++) {
        int64_t before = d.end;
        d.fired = 0;
        int rc = st_log_read(log, d.end, 1 << 20, dense_cb, &d);
        if (rc < 0)
            return rc == ST_E_OUT_OF_RANGE ? d.end : -1;
        tu_wait(io, &d.fired);
        if (d.rc != 0 || d.gap)
            return -1;
        if (d.end == before)
            break; /* nothing more to read: the data ends here */
    }
    return d.end;
}

static int64_t g_inflight_leo, g_inflight_open;
static size_t g_inflight_aborted;
static unsigned g_inflight_segs;

static void inflight_round(uint32_t seed, int kill_ms)
{
    char *dir = tu_mkdtemp();
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        inflight_child(dir, seed);
    struct timespec ts = {0, (long)kill_ms * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* The oracle: the same bytes with neither snapshot nor .txnindex,
     * replayed from the first batch. */
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "cp -a '%s' '%s.copy' && rm -f '%s.copy'/producer.snapshot '%s.copy'/*.txnindex", dir, dir, dir,
             dir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s.copy", dir);
    st_log_config cfg;
    st_log_config_default(&cfg);
    cfg.segment_bytes = 16384;
    st_io *io = tu_io(g_force_thread);
    txn_view got, want;
    st_log *log = open_log(io, dir, &cfg);
    view_of(log, &got);
    int64_t data_end = dense_end(io, log);
    CU_ASSERT_EQUAL(data_end, got.leo);
    if (data_end != got.leo)
        fprintf(stderr, "seed %u kill %d ms: recovered end %lld, data ends at %lld\n", seed, kill_ms,
                (long long)got.leo, (long long)data_end);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(io, copy, &cfg);
    view_of(log, &want);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    CU_ASSERT(same_view(&got, &want));
    if (!same_view(&got, &want))
        fprintf(stderr, "seed %u kill %d ms: lso %lld/%lld leo %lld/%lld aborted %zu/%zu\n", seed, kill_ms,
                (long long)got.lso, (long long)want.lso, (long long)got.leo, (long long)want.leo,
                got.naborted, want.naborted);
    /* And after the clean close, a reopen still agrees. */
    log = open_log(io, dir, &cfg);
    view_of(log, &got);
    CU_ASSERT(same_view(&got, &want));
    if (!same_view(&got, &want)) {
        fprintf(stderr, "seed %u kill %d ms, after clean close and reopen", seed, kill_ms);
        print_view_diff("reopened/oracle", &got, &want);
    }
    g_inflight_leo += got.leo;
    g_inflight_aborted += got.naborted;
    g_inflight_open += got.lso < got.hw;
    g_inflight_segs += st_log_segment_count(log);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(copy);
    tu_rmrf(dir);
    free(dir);
}

static void test_crash_inflight(void)
{
    g_inflight_leo = g_inflight_open = 0;
    g_inflight_aborted = 0;
    g_inflight_segs = 0;
    for (int r = 0; r < 12; r++)
        inflight_round(1000u + (uint32_t)r * 77u, 10 + (r * 13) % 50);
    /* The rounds must have had something to recover. */
    fprintf(stderr, "(12 rounds: %lld offsets, %zu aborted, %u segments, %lld with open transactions) ",
            (long long)g_inflight_leo, g_inflight_aborted, g_inflight_segs, (long long)g_inflight_open);
    CU_ASSERT(g_inflight_aborted > 12 && g_inflight_segs > 24 && g_inflight_open > 0);
}

/* ---- a version 1 producer snapshot (before transactions) still loads ------- */

static void test_snapshot_v1(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir, NULL);
    uint8_t *b;
    size_t n = txn_batch(&b, 9, 2, 0, 2, 10, 0);
    int64_t off;
    CU_ASSERT_EQUAL(tu_append(io, log, b, n, &off), 0);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    /* Version 1 says epoch 3 where the log says 2: only a loaded snapshot
     * can make the next epoch-2 batch fenced. */
    uint8_t snap[18 + 19 + 24 + 4];
    memcpy(snap, "STPS", 4);
    put_be16(snap + 4, 1);
    put_be64(snap + 6, 2);
    snap[14] = snap[15] = snap[16] = 0;
    snap[17] = 1;
    put_be64(snap + 18, 9);
    put_be16(snap + 26, 3);
    snap[28] = 1;
    put_be64(snap + 29, 1700000000001LL);
    uint8_t *e = snap + 37;
    memset(e, 0, 24);
    e[7] = 1; /* first_seq 0, last_seq 1 */
    put_be64(e + 8, 0);
    put_be64(e + 16, 1);
    uint32_t crc = kp_crc32c(0, snap, sizeof(snap) - 4);
    kp_put_be32(snap + sizeof(snap) - 4, crc);
    char p[4096];
    snprintf(p, sizeof(p), "%s/producer.snapshot", dir);
    int fd = open(p, O_WRONLY | O_TRUNC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, snap, sizeof(snap)), (ssize_t)sizeof(snap));
    close(fd);
    log = open_log(io, dir, NULL);
    free(b);
    n = txn_batch(&b, 9, 2, 2, 1, 10, 0);
    CU_ASSERT_EQUAL(tu_append(io, log, b, n, &off), ST_E_FENCED);
    CU_ASSERT_EQUAL(txn_start_of(log, 9), -1);
    CU_ASSERT_EQUAL(st_log_last_stable_offset(log), 2);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    free(b);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

/* ---- compaction keeps transactions whole ------------------------------------ */

static void test_compaction_keeps_txn(void)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log_config cfg;
    small_segments(&cfg);
    cfg.compact = 1;
    st_log *log = open_log(io, dir, &cfg);
    /* An aborted transactional value of key "k" after a committed plain one:
     * the aborted record must not count as the key's latest value. */
    uint8_t *b;
    size_t n = tu_kv(&b, "k", "committed", 1700000000000LL);
    int64_t off;
    CU_ASSERT_EQUAL(tu_append(io, log, b, n, &off), 0);
    free(b);
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    kp_batch_builder_set_producer(&bb, 9, 0, 0, 1);
    kp_batch_builder_add(&bb, 1700000000001LL, (kp_bytes){(const uint8_t *)"k", 1},
                         (kp_bytes){(const uint8_t *)"aborted", 7}, NULL, 0);
    kp_writer w;
    kp_writer_init(&w, 128);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, &w), 0);
    kp_batch_builder_free(&bb);
    CU_ASSERT_EQUAL(tu_append(io, log, w.buf, w.len, &off), 0);
    kp_writer_free(&w);
    CU_ASSERT_EQUAL(put_marker(io, log, 9, 0, 0, 1), 2);
    for (int i = 0; i < 8; i++)
        CU_ASSERT(put_txn(io, log, 50, 0, i, 1, 1000) >= 0);
    CU_ASSERT(put_marker(io, log, 50, 0, 1, 1) >= 0);
    tu_done d = {0, 0, -1};
    CU_ASSERT_EQUAL(st_log_compact_now(log, tu_append_cb, &d), 0);
    tu_wait(io, &d.fired);
    CU_ASSERT_EQUAL(d.rc, 0);
    /* Offsets 0 (the committed value), 1 and 2 are all still there. */
    rd_result r;
    CU_ASSERT_EQUAL(read_uncommitted(io, log, 0, 1, &r), 0);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_EQUAL(r.bases[0], 0);
    CU_ASSERT_EQUAL(read_uncommitted(io, log, 1, 1, &r), 0);
    CU_ASSERT_EQUAL(r.bases[0], 1);
    st_aborted_txn got[2];
    CU_ASSERT_EQUAL(st_log_aborted_txns(log, 0, 3, got, 2), 1);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

static void add_tests(CU_pSuite s)
{
    CU_add_test(s, "marker_bytes", test_marker_bytes);
    CU_add_test(s, "interleaved", test_interleaved);
    CU_add_test(s, "fencing", test_fencing);
    CU_add_test(s, "ordered", test_ordered);
    CU_add_test(s, "marker_without_txn", test_marker_without_txn);
    CU_add_test(s, "segments_and_retention", test_segments_and_retention);
    CU_add_test(s, "txnindex_bytes", test_txnindex_bytes);
    CU_add_test(s, "restart_clean", test_restart_clean);
    CU_add_test(s, "restart_crash", test_restart_crash);
    CU_add_test(s, "compaction_keeps_txn", test_compaction_keeps_txn);
    CU_add_test(s, "failed_write_rollback", test_failed_write_rollback);
    CU_add_test(s, "many_open", test_many_open);
    CU_add_test(s, "crash_inflight", test_crash_inflight);
    CU_add_test(s, "snapshot_v1", test_snapshot_v1);
}

static void register_suites(void)
{
    add_tests(CU_add_suite("txn_io_uring", suite_uring, NULL));
    add_tests(CU_add_suite("txn_threads", suite_thread, NULL));
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_log.c — the partition log through its public API: append/read, rolls,
 * indexes, timestamp lookups, producer state, retention, DeleteRecords,
 * compaction, flush policies and torn tails; every test runs once on the
 * io_uring path and once on the helper-thread path.
 */
#include "kb_test.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "st_io.h"
#include "st_test_util.h"

static int g_force_thread;
static st_io *g_io;
static char *g_dir;

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

static st_log_config small_cfg(void)
{
    st_log_config c;
    st_log_config_default(&c);
    c.segment_bytes = 64 << 10;
    c.chunk_bytes = 16 << 10;
    c.tail_cache_bytes = 16 << 10;
    c.max_unflushed_bytes = 256 << 10;
    c.index_interval_bytes = 1024;
    return c;
}

static st_log *open_log(const st_log_config *c)
{
    st_log *log = NULL;
    int rc = st_log_open(g_io, g_dir, c, &log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return log;
}

static void setup(void)
{
    g_io = tu_io(g_force_thread);
    g_dir = tu_mkdtemp();
}

static void teardown(void)
{
    st_io_destroy(g_io);
    tu_rmrf(g_dir);
    free(g_dir);
}

/* The stored form of a produced batch: same bytes, base offset filled in. */
static int same_batch(const uint8_t *stored, const uint8_t *orig, size_t len, int64_t base)
{
    return (int64_t)kp_be64(stored) == base && memcmp(stored + 8, orig + 8, len - 8) == 0;
}

static void check_backend(void)
{
    setup();
    CU_ASSERT_EQUAL(st_io_uses_uring(g_io), !g_force_thread && st_io_uring_status(g_io) == 0);
    if (!g_force_thread && !st_io_uses_uring(g_io))
        fprintf(stderr, "(io_uring unavailable: %s) ", strerror(-st_io_uring_status(g_io)));
    teardown();
}

static void test_append_read(void)
{
    setup();
    st_log_config c = small_cfg();
    st_log *log = open_log(&c);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 0);
    enum { N = 200 };
    uint8_t *b[N];
    size_t len[N];
    int64_t off[N], expect = 0;
    for (int i = 0; i < N; i++) {
        len[i] =
            tu_batch(&b[i], 1 + i % 5, 1000 + i * 10, (uint32_t)i, 50 + (size_t)(i * 37) % 900, -1, 0, 0, 0);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b[i], len[i], &off[i]), 0);
        CU_ASSERT_EQUAL(off[i], expect);
        expect += 1 + i % 5;
    }
    CU_ASSERT_EQUAL(st_log_end_offset(log), expect);
    CU_ASSERT_EQUAL(st_log_high_watermark(log), expect);
    CU_ASSERT(st_log_segment_count(log) > 3);

    /* Every batch, including by an offset in its middle, from memory or disk. */
    int mem = 0, disk = 0;
    for (int i = 0; i < N; i++) {
        tu_rd r;
        int sync = 0;
        int64_t at = off[i] + (i % 5) / 2;
        CU_ASSERT_EQUAL(tu_read(g_io, log, at, 1, &r, &sync), 0);
        CU_ASSERT_EQUAL(r.len, len[i]);
        if (r.len == len[i]) {
            CU_ASSERT(same_batch(r.data, b[i], len[i], off[i]));
        }
        mem += sync;
        disk += !sync;
        free(r.data);
    }
    CU_ASSERT(mem > 0);
    CU_ASSERT(disk > 0);

    /* max_bytes: whole batches only, never a partial one. */
    tu_rd r;
    CU_ASSERT_EQUAL(tu_read(g_io, log, 0, 3000, &r, NULL), 0);
    kp_batch_iter it;
    kp_batch kb;
    kp_batch_iter_init(&it, r.data, r.len, 1);
    size_t seen = 0;
    int64_t next = 0;
    while (kp_batch_iter_next(&it, &kb) == 1) {
        CU_ASSERT_EQUAL(kb.h.base_offset, next);
        next = kb.h.base_offset + kb.h.last_offset_delta + 1;
        seen += kb.size;
    }
    CU_ASSERT_EQUAL(seen, r.len);
    CU_ASSERT(r.len <= 3000);
    CU_ASSERT(!it.partial);
    free(r.data);

    /* At the end: empty; beyond: out of range. */
    CU_ASSERT_EQUAL(tu_read(g_io, log, expect, 100, &r, NULL), 0);
    CU_ASSERT_EQUAL(r.len, 0);
    free(r.data);
    CU_ASSERT_EQUAL(st_log_read(log, expect + 1, 100, tu_read_cb, &r), ST_E_OUT_OF_RANGE);

    /* Reopen (clean): same content, offsets continue. */
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(&c);
    CU_ASSERT_EQUAL(st_log_end_offset(log), expect);
    for (int i = 0; i < N; i += 7) {
        CU_ASSERT_EQUAL(tu_read(g_io, log, off[i], 1, &r, NULL), 0);
        CU_ASSERT(r.len == len[i] && same_batch(r.data, b[i], len[i], off[i]));
        free(r.data);
    }
    int64_t o;
    CU_ASSERT_EQUAL(tu_append(g_io, log, b[0], len[0], &o), 0);
    CU_ASSERT_EQUAL(o, expect);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    /* Segment files carry 20-digit names and Kafka-format indexes. */
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/00000000000000000000.log", g_dir);
    CU_ASSERT_EQUAL(stat(p, &st), 0);
    snprintf(p, sizeof(p), "%s/00000000000000000000.index", g_dir);
    CU_ASSERT_EQUAL(stat(p, &st), 0);
    CU_ASSERT(st.st_size > 0 && st.st_size % 8 == 0);
    snprintf(p, sizeof(p), "%s/00000000000000000000.timeindex", g_dir);
    CU_ASSERT_EQUAL(stat(p, &st), 0);
    CU_ASSERT(st.st_size > 0 && st.st_size % 12 == 0);
    for (int i = 0; i < N; i++)
        free(b[i]);
    teardown();
}

/* A reader that keeps the read's buffer (st_read_result.keep) instead of
 * copying: its data stays valid after the callback, through later reads. */
typedef struct kept_rd {
    int fired, rc, offered, worth;
    const uint8_t *data;
    size_t len, keep_size;
    void *mem;
} kept_rd;

static void kept_cb(void *arg, const st_read_result *res)
{
    kept_rd *k = arg;
    k->fired = 1;
    k->rc = res->rc;
    k->len = res->len;
    k->data = res->data;
    k->offered = res->keep != NULL && *res->keep != NULL;
    k->keep_size = res->keep_size;
    k->worth = st_read_keep_worth(res);
    if (k->offered) {
        CU_ASSERT(res->data >= (const uint8_t *)*res->keep);
        CU_ASSERT(res->data + res->len <= (const uint8_t *)*res->keep + res->keep_size);
        k->mem = *res->keep;
        *res->keep = NULL;
    }
}

static void test_read_keep(void)
{
    setup();
    st_log_config c = small_cfg();
    st_log *log = open_log(&c);
    enum { N = 120 };
    uint8_t *b[N];
    size_t len[N];
    int64_t off[N];
    for (int i = 0; i < N; i++) {
        len[i] = tu_batch(&b[i], 2, 1000 + i, (uint32_t)i, 300 + (size_t)(i * 53) % 700, -1, 0, 0, 0);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b[i], len[i], &off[i]), 0);
    }
    /* From disk (the first batches are long past the 16 KiB tail cache) and
     * from memory (the last one); each result kept, checked after all reads. */
    int64_t at[3] = {off[0], off[5], off[N - 1]};
    int first[3] = {0, 5, N - 1};
    kept_rd k[3];
    int disk = 0;
    for (int j = 0; j < 3; j++) {
        memset(&k[j], 0, sizeof(k[j]));
        int rc = st_log_read(log, at[j], 8 << 10, kept_cb, &k[j]);
        CU_ASSERT(rc == 0 || rc == 1);
        disk += rc == 1;
        tu_wait(g_io, &k[j].fired);
        CU_ASSERT_EQUAL(k[j].rc, 0);
        CU_ASSERT(k[j].offered);
        /* Kept only when the answer fills at least half of the block: an
         * answer of at most 8 KiB from a disk read of most of a 64 KiB
         * segment is copied; one from memory is its own block. */
        CU_ASSERT_EQUAL(k[j].worth, k[j].len >= k[j].keep_size / 2);
        if (rc == 1) {
            CU_ASSERT(k[j].keep_size > 2 * k[j].len);
            CU_ASSERT_FALSE(k[j].worth);
        } else {
            CU_ASSERT(k[j].worth);
        }
    }
    CU_ASSERT(disk >= 1);
    for (int j = 0; j < 3; j++) {
        size_t pos = 0;
        int i = first[j];
        while (pos < k[j].len && i < N) {
            CU_ASSERT_FATAL(pos + len[i] <= k[j].len);
            CU_ASSERT(same_batch(k[j].data + pos, b[i], len[i], off[i]));
            pos += len[i++];
        }
        CU_ASSERT(pos == k[j].len && pos > 0);
        free(k[j].mem);
    }
    for (int i = 0; i < N; i++)
        free(b[i]);
    st_log_close(log);
    teardown();
}

static void test_invalid_input(void)
{
    setup();
    st_log_config c = small_cfg();
    st_log *log = open_log(&c);
    uint8_t *b;
    size_t len = tu_batch(&b, 3, 1000, 1, 100, -1, 0, 0, 0);
    int64_t off;
    tu_done d = {0};
    uint8_t junk[100];
    memset(junk, 0xAB, sizeof(junk));
    CU_ASSERT(st_log_append(log, junk, sizeof(junk), tu_append_cb, &d, &off) < 0);
    CU_ASSERT(st_log_append(log, b, len - 1, tu_append_cb, &d, &off) < 0);
    uint8_t *bad = malloc(len);
    memcpy(bad, b, len);
    bad[len - 1] ^= 0x55;
    CU_ASSERT_EQUAL(st_log_append(log, bad, len, tu_append_cb, &d, &off), ST_E_CORRUPT);
    /* Two batches in one call are refused: the server splits them. */
    uint8_t *two = malloc(2 * len);
    memcpy(two, b, len);
    memcpy(two + len, b, len);
    CU_ASSERT(st_log_append(log, two, 2 * len, tu_append_cb, &d, &off) < 0);
    CU_ASSERT_EQUAL(d.fired, 0);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 0);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    free(b);
    free(bad);
    free(two);
    teardown();
}

static void test_timestamps(void)
{
    setup();
    st_log_config c = small_cfg();
    c.retention_ms = -1;
    st_log *log = open_log(&c);
    /* 100 batches of 4 records; batch i has timestamps 10000 + 100 i + {0..3}. */
    for (int i = 0; i < 100; i++) {
        uint8_t *b;
        size_t len = tu_batch(&b, 4, 10000 + 100 * i, (uint32_t)i, 300, -1, 0, 0, 0);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, NULL), 0);
        free(b);
    }
    CU_ASSERT(st_log_segment_count(log) > 1);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, 0), 0);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, 10000), 0);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, 10002), 2);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, 10004), 4); /* between batches */
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, 10000 + 100 * 57 + 3), 57 * 4 + 3);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, 10000 + 100 * 99 + 3), 399);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, 10000 + 100 * 99 + 4), -1);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, ST_TS_EARLIEST), 0);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, ST_TS_LATEST), 400);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, ST_TS_MAX), 399);
    /* The same after a restart (time indexes reloaded from files). */
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(&c);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, 10000 + 100 * 31 + 1), 31 * 4 + 1);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, ST_TS_MAX), 399);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

static void test_producer_state(void)
{
    setup();
    st_log_config c = small_cfg();
    st_log *log = open_log(&c);
    uint8_t *b;
    size_t len;
    int64_t off, first = -1;
    int32_t seq = 0;
    for (int i = 0; i < 8; i++) {
        len = tu_batch(&b, 3, 1000, (uint32_t)i, 40, 77, 2, seq, 0);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
        if (i == 5)
            first = off;
        seq += 3;
        free(b);
    }
    /* Duplicate of one of the last five: original offset, nothing appended. */
    int64_t end = st_log_end_offset(log);
    len = tu_batch(&b, 3, 1000, 5, 40, 77, 2, 15, 0);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), ST_E_DUPLICATE);
    CU_ASSERT_EQUAL(off, first);
    CU_ASSERT_EQUAL(st_log_end_offset(log), end);
    free(b);
    /* Gap → out of order; old epoch → fenced; new epoch must restart at 0. */
    tu_done d = {0};
    len = tu_batch(&b, 1, 1000, 9, 40, 77, 2, seq + 1, 0);
    CU_ASSERT_EQUAL(st_log_append(log, b, len, tu_append_cb, &d, &off), ST_E_OUT_OF_ORDER);
    free(b);
    len = tu_batch(&b, 1, 1000, 9, 40, 77, 1, seq, 0);
    CU_ASSERT_EQUAL(st_log_append(log, b, len, tu_append_cb, &d, &off), ST_E_FENCED);
    free(b);
    len = tu_batch(&b, 1, 1000, 9, 40, 77, 3, 5, 0);
    CU_ASSERT_EQUAL(st_log_append(log, b, len, tu_append_cb, &d, &off), ST_E_OUT_OF_ORDER);
    free(b);
    CU_ASSERT_EQUAL(d.fired, 0);

    /* Survives a clean restart (snapshot) ... */
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(&c);
    len = tu_batch(&b, 3, 1000, 7, 40, 77, 2, 21, 0);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), ST_E_DUPLICATE);
    free(b);
    len = tu_batch(&b, 2, 1000, 8, 40, 77, 2, seq, 0);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
    CU_ASSERT_EQUAL(off, end);
    seq += 2;
    free(b);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    /* ... and an unclean one (no marker, no snapshot: replayed from the log). */
    char p[4096];
    snprintf(p, sizeof(p), "%s/clean-shutdown", g_dir);
    CU_ASSERT_EQUAL(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/producer.snapshot", g_dir);
    CU_ASSERT_EQUAL(unlink(p), 0);
    log = open_log(&c);
    len = tu_batch(&b, 2, 1000, 8, 40, 77, 2, seq - 2, 0);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), ST_E_DUPLICATE);
    CU_ASSERT_EQUAL(off, end);
    free(b);
    len = tu_batch(&b, 1, 1000, 8, 40, 77, 2, seq + 3, 0);
    CU_ASSERT_EQUAL(st_log_append(log, b, len, tu_append_cb, &d, &off), ST_E_OUT_OF_ORDER);
    free(b);
    /* A new epoch starting at 0 is accepted. */
    len = tu_batch(&b, 1, 1000, 8, 40, 77, 3, 0, 0);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
    free(b);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

/* A follower copies its leader's batches with their offsets: the same bytes
 * at the same offsets, the producer state learnt from them (a retried
 * batch after a failover is a duplicate), and a batch that does not continue
 * the log refused. */
static int truncate_sync(st_log *log, int64_t offset, int64_t *end)
{
    tu_done d = {0, 0, -1};
    int rc;
    while ((rc = st_log_truncate(log, offset, tu_append_cb, &d)) == ST_E_BUSY)
        st_io_wait(g_io, 10);
    if (rc < 0)
        return rc;
    tu_wait(g_io, &d.fired);
    *end = d.offset;
    return d.rc;
}

/* Idempotent batch i of producer 42: 3 records, sequence 3 * i. */
static size_t trunc_batch(uint8_t **b, int i)
{
    return tu_batch(b, 3, 1000 + i, (uint32_t)i, 1000, 42, 0, 3 * i, 0);
}

static void check_prefix(st_log *log, const tu_rd *orig, int64_t end)
{
    tu_rd r;
    CU_ASSERT_EQUAL_FATAL(tu_read(g_io, log, 0, 1 << 22, &r, NULL), 0);
    kp_batch_iter it;
    kp_batch kb;
    kp_batch_iter_init(&it, orig->data, orig->len, 0);
    size_t want = 0;
    while (kp_batch_iter_next(&it, &kb) == 1 && kb.h.base_offset < end)
        want += kb.size;
    CU_ASSERT_EQUAL(r.len, want);
    CU_ASSERT(r.len == want && memcmp(r.data, orig->data, want) == 0);
    CU_ASSERT_EQUAL(r.hw, end);
    free(r.data);
}

static void test_truncate(void)
{
    setup();
    st_log_config c = small_cfg();
    st_log *log = open_log(&c);
    uint8_t *b;
    size_t len;
    int64_t off, end;
    for (int i = 0; i < 60; i++) {
        len = trunc_batch(&b, i);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
        CU_ASSERT_EQUAL(off, 3 * i);
        free(b);
    }
    unsigned segs = st_log_segment_count(log);
    CU_ASSERT_FATAL(segs >= 3);
    tu_rd orig;
    CU_ASSERT_EQUAL_FATAL(tu_read(g_io, log, 0, 1 << 22, &orig, NULL), 0);

    /* An append not yet durable: the cut must wait for it. */
    len = trunc_batch(&b, 60);
    tu_done d = {0, 0, -1};
    int64_t base = -1;
    CU_ASSERT_EQUAL(st_log_append(log, b, len, tu_append_cb, &d, &base), 0);
    CU_ASSERT_EQUAL(st_log_truncate(log, 30, NULL, NULL), ST_E_BUSY);
    tu_wait(g_io, &d.fired);
    free(b);
    CU_ASSERT_EQUAL(truncate_sync(log, 1000, &end), 0); /* past the end: nothing to cut */
    CU_ASSERT_EQUAL(end, 183);

    /* Mid-batch (batch 50 holds 150..152): the whole batch goes. */
    CU_ASSERT_EQUAL(truncate_sync(log, 151, &end), 0);
    CU_ASSERT_EQUAL(end, 150);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 150);
    CU_ASSERT_EQUAL(st_log_high_watermark(log), 150);
    check_prefix(log, &orig, 150);
    /* Producer state is the one at 150: batch 49 is still a duplicate (its
     * window is rebuilt, not emptied), batch 50 is new again. */
    len = trunc_batch(&b, 49);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), ST_E_DUPLICATE);
    CU_ASSERT_EQUAL(off, 147);
    free(b);
    len = trunc_batch(&b, 50);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
    CU_ASSERT_EQUAL(off, 150);
    free(b);

    /* Into the first segment: the later ones go, appends go on from there. */
    CU_ASSERT_EQUAL(truncate_sync(log, 12, &end), 0);
    CU_ASSERT_EQUAL(end, 12);
    CU_ASSERT_EQUAL(st_log_segment_count(log), 1);
    check_prefix(log, &orig, 12);
    for (int i = 4; i < 30; i++) {
        len = trunc_batch(&b, i);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
        CU_ASSERT_EQUAL(off, 3 * i);
        free(b);
    }
    check_prefix(log, &orig, 90);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(&c);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 90);
    check_prefix(log, &orig, 90);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    /* A crash right after the cut: recovery finds exactly the cut log. */
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        st_io *io = tu_io(g_force_thread);
        st_log *l = NULL;
        if (st_log_open(io, g_dir, &c, &l) != 0)
            _exit(2);
        tu_done cd = {0, 0, -1};
        if (st_log_truncate(l, 30, tu_append_cb, &cd) != 0)
            _exit(3);
        tu_wait(io, &cd.fired);
        if (cd.rc != 0 || cd.offset != 30)
            _exit(4);
        /* Past the producer snapshot's offset (45, the roll's): were it
         * still there, recovery would take producer 42 from it. */
        for (int k = 0; k < 20; k++) {
            uint8_t *ob;
            size_t ol = tu_batch(&ob, 3, 2000 + k, (uint32_t)k, 100, 43, 0, 3 * k, 0);
            if (tu_append(io, l, ob, ol, NULL) != 0)
                _exit(5);
            free(ob);
        }
        _exit(0);
    }
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    log = open_log(&c);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 90);
    tu_rd r;
    CU_ASSERT_EQUAL_FATAL(tu_read(g_io, log, 0, 1 << 22, &r, NULL), 0);
    CU_ASSERT(r.len >= orig.len / 6 && memcmp(r.data, orig.data, orig.len / 6) == 0);
    free(r.data);
    len = trunc_batch(&b, 9);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), ST_E_DUPLICATE);
    free(b);
    len = trunc_batch(&b, 10);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
    CU_ASSERT_EQUAL(off, 90);
    free(b);
    CU_ASSERT_EQUAL(st_log_truncate(log, -1, NULL, NULL), ST_E_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    free(orig.data);
    teardown();
}

static void check_epoch_end(st_log *log, int32_t epoch, int32_t want_epoch, int64_t want_end)
{
    int32_t e = -9;
    int64_t end = -9;
    st_log_epoch_end(log, epoch, &e, &end);
    CU_ASSERT_EQUAL(e, want_epoch);
    CU_ASSERT_EQUAL(end, want_end);
}

/* Leader epochs: stamped into appends, the cache answers Kafka's
 * endOffsetFor, rebuilt at open, cut by truncation. */
static void test_leader_epochs(void)
{
    setup();
    st_log_config c = small_cfg();
    c.leader_epochs = 1;
    st_log *log = open_log(&c);
    uint8_t *b;
    size_t len;
    int64_t off, end;
    int32_t stamps[] = {-1, -1, 3, 3, 3, 5, 5};
    for (int i = 0; i < 7; i++) {
        st_log_set_leader_epoch(log, stamps[i]);
        len = trunc_batch(&b, i);
        kp_batch_set_leader_epoch(b, -1);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
        free(b);
    }
    for (int round = 0; round < 2; round++) {
        CU_ASSERT_EQUAL(st_log_latest_epoch(log), 5);
        check_epoch_end(log, 0, 0, 6);  /* below every epoch: the first one's start */
        check_epoch_end(log, 3, 3, 15); /* epoch 5 starts at batch 5 */
        check_epoch_end(log, 4, 3, 15);
        check_epoch_end(log, 5, 5, 21); /* the latest: the log end */
        check_epoch_end(log, 6, -1, -1);
        check_epoch_end(log, -1, -1, -1);
        tu_rd r;
        CU_ASSERT_EQUAL_FATAL(tu_read(g_io, log, 0, 1 << 22, &r, NULL), 0);
        kp_batch_iter it;
        kp_batch kb;
        kp_batch_iter_init(&it, r.data, r.len, 1); /* CRCs still hold */
        int i = 0;
        while (kp_batch_iter_next(&it, &kb) == 1) {
            CU_ASSERT_EQUAL(kb.h.partition_leader_epoch, stamps[i]);
            i++;
        }
        CU_ASSERT_EQUAL(i, 7);
        free(r.data);
        CU_ASSERT_EQUAL(st_log_close(log), 0);
        log = open_log(&c); /* rebuilt from the batches */
    }
    CU_ASSERT_EQUAL(truncate_sync(log, 15, &end), 0);
    CU_ASSERT_EQUAL(st_log_latest_epoch(log), 3);
    check_epoch_end(log, 3, 3, 15);
    check_epoch_end(log, 5, -1, -1);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    /* A log that does not keep the cache (every single-node partition) does
     * not read its batch headers at open. */
    c.leader_epochs = 0;
    log = open_log(&c);
    CU_ASSERT_EQUAL(st_log_latest_epoch(log), -1);
    /* Nor does an unstamped log take a client's epochs into the cache. */
    for (int i = 0; i < 3; i++) {
        len = trunc_batch(&b, 5 + i); /* the producer goes on after the cut */
        kp_batch_set_leader_epoch(b, 100 + i);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
        free(b);
    }
    CU_ASSERT_EQUAL(st_log_latest_epoch(log), -1);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

static void test_append_replica(void)
{
    setup();
    st_log_config c = small_cfg();
    st_log *leader = open_log(&c);
    char *fdir = tu_mkdtemp();
    st_log *follower = NULL;
    CU_ASSERT_EQUAL_FATAL(st_log_open(g_io, fdir, &c, &follower), 0);
    uint8_t *b;
    size_t len;
    int64_t off;
    for (int i = 0; i < 6; i++) {
        len = tu_batch(&b, 3, 1000 + i, (uint32_t)i, 300, 42, 0, 3 * i, 0);
        CU_ASSERT_EQUAL(tu_append(g_io, leader, b, len, &off), 0);
        free(b);
    }
    tu_rd r;
    CU_ASSERT_EQUAL_FATAL(tu_read(g_io, leader, 0, 1 << 20, &r, NULL), 0);
    kp_batch_iter it;
    kp_batch kb;
    kp_batch_iter_init(&it, r.data, r.len, 0);
    int n = 0;
    while (kp_batch_iter_next(&it, &kb) == 1) {
        /* Out of place (one before the end) first: refused, nothing written. */
        uint8_t *shifted = malloc(kb.size);
        memcpy(shifted, kb.data, kb.size);
        kp_put_be64(shifted, (uint64_t)(kb.h.base_offset - 1));
        tu_done d = {0, 0, -1};
        CU_ASSERT_EQUAL(st_log_append_replica(follower, shifted, kb.size, tu_append_cb, &d),
                        ST_E_OUT_OF_RANGE);
        free(shifted);
        int rc;
        while ((rc = st_log_append_replica(follower, kb.data, kb.size, tu_append_cb, &d)) == ST_E_BUSY)
            st_io_wait(g_io, 10);
        CU_ASSERT_EQUAL(rc, 0);
        tu_wait(g_io, &d.fired);
        CU_ASSERT_EQUAL(d.rc, 0);
        CU_ASSERT_EQUAL(d.offset, kb.h.base_offset);
        n++;
    }
    CU_ASSERT_EQUAL(n, 6);
    CU_ASSERT_EQUAL(st_log_end_offset(follower), st_log_end_offset(leader));
    tu_rd fr;
    CU_ASSERT_EQUAL_FATAL(tu_read(g_io, follower, 0, 1 << 20, &fr, NULL), 0);
    CU_ASSERT_EQUAL(fr.len, r.len);
    CU_ASSERT(fr.len == r.len && memcmp(fr.data, r.data, r.len) == 0);
    free(fr.data);
    free(r.data);
    /* The producer's last batch, retried against the follower (now leader). */
    int64_t end = st_log_end_offset(follower);
    len = tu_batch(&b, 3, 1005, 5, 300, 42, 0, 15, 0);
    CU_ASSERT_EQUAL(tu_append(g_io, follower, b, len, &off), ST_E_DUPLICATE);
    CU_ASSERT_EQUAL(off, 15);
    CU_ASSERT_EQUAL(st_log_end_offset(follower), end);
    free(b);
    len = tu_batch(&b, 1, 1006, 6, 300, 42, 0, 18, 0);
    CU_ASSERT_EQUAL(tu_append(g_io, follower, b, len, &off), 0);
    CU_ASSERT_EQUAL(off, end);
    free(b);
    CU_ASSERT_EQUAL(st_log_close(follower), 0);
    CU_ASSERT_EQUAL(st_log_close(leader), 0);
    tu_rmrf(fdir);
    free(fdir);
    teardown();
}

static int append_replica_wait(st_log *log, const uint8_t *b, size_t len)
{
    tu_done d = {0, 0, -1};
    int rc;
    while ((rc = st_log_append_replica(log, b, len, tu_append_cb, &d)) == ST_E_BUSY)
        st_io_wait(g_io, 10);
    if (rc == 0) {
        tu_wait(g_io, &d.fired);
        rc = d.rc;
    }
    return rc;
}

/* A follower takes what its leader took, as Kafka's: a batch past its end
 * (compaction on the leader left a gap), one above its own
 * max.message.bytes, and the leader's timestamps unchanged where its topic
 * stamps LogAppendTime; the gap survives a restart. */
static void test_append_replica_leader_bytes(void)
{
    setup();
    st_log_config c = small_cfg();
    c.max_batch_bytes = 512;
    c.log_append_time = 1;
    st_log *log = open_log(&c);
    uint8_t *b;
    size_t len = tu_batch(&b, 4, 1234, 1, 300, -1, -1, -1, 0);
    CU_ASSERT_FATAL(len > c.max_batch_bytes);
    int64_t off;
    CU_ASSERT_EQUAL(st_log_append(log, b, len, tu_append_cb, NULL, &off), ST_E_TOO_LARGE);
    kp_put_be64(b, 100);
    CU_ASSERT_EQUAL(append_replica_wait(log, b, len), 0);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 104);
    uint8_t *b2;
    size_t len2 = tu_batch(&b2, 1, 1300, 2, 10, -1, -1, -1, 0);
    kp_put_be64(b2, 103); /* below the end: refused */
    CU_ASSERT_EQUAL(st_log_append_replica(log, b2, len2, tu_append_cb, NULL), ST_E_OUT_OF_RANGE);
    kp_put_be64(b2, 110);
    CU_ASSERT_EQUAL(append_replica_wait(log, b2, len2), 0);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 111);
    for (int pass = 0; pass < 2; pass++) {
        /* An offset in the gap reads from the next batch, as in a
         * compacted log; the bytes are the leader's. */
        tu_rd r;
        CU_ASSERT_EQUAL_FATAL(tu_read(g_io, log, 50, 1 << 20, &r, NULL), 0);
        CU_ASSERT_EQUAL(r.len, len + len2);
        CU_ASSERT(r.len == len + len2 && memcmp(r.data, b, len) == 0 && memcmp(r.data + len, b2, len2) == 0);
        free(r.data);
        CU_ASSERT_EQUAL(st_log_end_offset(log), 111);
        CU_ASSERT_EQUAL(st_log_close(log), 0);
        if (pass == 0)
            log = open_log(&c);
    }
    free(b);
    free(b2);
    teardown();
}

/* A replicated partition's consumers read below its high watermark: no
 * batch at or past `upto`, and an empty answer (not out of range) between
 * it and the log's end. */
static void test_read_upto(void)
{
    setup();
    st_log_config c = small_cfg();
    st_log *log = open_log(&c);
    uint8_t *b;
    int64_t off;
    for (int i = 0; i < 4; i++) { /* batches at 0, 2, 4, 6 */
        size_t len = tu_batch(&b, 2, 1000, (uint32_t)i, 100, -1, 0, 0, 0);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
        free(b);
    }
    tu_rd r;
    memset(&r, 0, sizeof(r));
    int rc = st_log_read_upto(log, 0, 1 << 20, 0, 4, tu_read_cb, &r);
    CU_ASSERT(rc == 0 || rc == 1);
    tu_wait(g_io, &r.fired);
    kp_batch_iter it;
    kp_batch kb;
    kp_batch_iter_init(&it, r.data, r.len, 0);
    int64_t last = -1;
    while (kp_batch_iter_next(&it, &kb) == 1)
        last = kb.h.base_offset;
    CU_ASSERT_EQUAL(last, 2);
    free(r.data);
    memset(&r, 0, sizeof(r));
    CU_ASSERT_EQUAL(st_log_read_upto(log, 6, 1 << 20, 0, 4, tu_read_cb, &r), 0);
    CU_ASSERT(r.fired && r.rc == 0 && r.len == 0);
    free(r.data);
    memset(&r, 0, sizeof(r));
    CU_ASSERT_EQUAL(st_log_read_upto(log, 9, 1 << 20, 0, 4, tu_read_cb, &r), ST_E_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

static int64_t fill(st_log *log, int n, int64_t ts0, int64_t ts_step)
{
    int64_t off = -1;
    for (int i = 0; i < n; i++) {
        uint8_t *b;
        size_t len = tu_batch(&b, 2, ts0 + i * ts_step, (uint32_t)i, 1000, -1, 0, 0, 0);
        CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &off), 0);
        free(b);
    }
    return off;
}

static void test_retention(void)
{
    setup();
    st_log_config c = small_cfg();
    c.retention_ms = -1;
    c.retention_bytes = 200 << 10;
    st_log *log = open_log(&c);
    fill(log, 400, tu_now_ms(), 0);
    unsigned before = st_log_segment_count(log);
    CU_ASSERT(st_log_size_bytes(log) > (400 << 10));
    st_log_tick(log, tu_now_ms());
    CU_ASSERT(st_log_segment_count(log) < before);
    CU_ASSERT(st_log_size_bytes(log) >= (200 << 10));
    CU_ASSERT(st_log_size_bytes(log) < (200 << 10) + (int64_t)c.segment_bytes);
    int64_t start = st_log_start_offset(log);
    CU_ASSERT(start > 0);
    tu_rd r;
    CU_ASSERT_EQUAL(st_log_read(log, start - 1, 100, tu_read_cb, &r), ST_E_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(tu_read(g_io, log, start, 100, &r, NULL), 0);
    CU_ASSERT(r.len > 0 && (int64_t)kp_be64(r.data) == start);
    free(r.data);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(&c);
    CU_ASSERT_EQUAL(st_log_start_offset(log), start);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();

    /* By time: old batches (timestamps a day ago) go, recent ones stay. */
    setup();
    c = small_cfg();
    c.retention_ms = 3600 * 1000;
    log = open_log(&c);
    int64_t now = tu_now_ms();
    fill(log, 150, now - 86400 * 1000, 0);
    int64_t recent = st_log_end_offset(log);
    fill(log, 150, now, 0);
    st_log_tick(log, now);
    start = st_log_start_offset(log);
    CU_ASSERT(start > 0);
    CU_ASSERT(start <= recent);
    /* Only the segment straddling old and new data may keep old batches. */
    CU_ASSERT(recent - start < 2 * 64);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

static void test_delete_records(void)
{
    setup();
    st_log_config c = small_cfg();
    c.retention_ms = -1;
    st_log *log = open_log(&c);
    fill(log, 200, 1000, 1);
    unsigned before = st_log_segment_count(log);
    tu_done d = {0};
    CU_ASSERT_EQUAL(st_log_delete_records(log, st_log_end_offset(log) + 5, tu_append_cb, &d),
                    ST_E_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(st_log_delete_records(log, 251, tu_append_cb, &d), 0);
    tu_wait(g_io, &d.fired);
    CU_ASSERT_EQUAL(d.rc, 0);
    CU_ASSERT_EQUAL(d.offset, 251);
    CU_ASSERT_EQUAL(st_log_start_offset(log), 251);
    CU_ASSERT(st_log_segment_count(log) < before);
    tu_rd r;
    CU_ASSERT_EQUAL(st_log_read(log, 250, 100, tu_read_cb, &r), ST_E_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(tu_read(g_io, log, 251, 100, &r, NULL), 0);
    CU_ASSERT(r.len > 0);
    /* 251 is the second record of the batch at 250: the batch is returned. */
    if (r.len) {
        CU_ASSERT_EQUAL((int64_t)kp_be64(r.data), 250);
    }
    free(r.data);
    CU_ASSERT_EQUAL(tu_offset_for_time(g_io, log, ST_TS_EARLIEST), 251);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    /* Persisted, even across an unclean restart. */
    char p[4096];
    snprintf(p, sizeof(p), "%s/clean-shutdown", g_dir);
    unlink(p);
    log = open_log(&c);
    CU_ASSERT_EQUAL(st_log_start_offset(log), 251);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

typedef struct kv_seen {
    char key[16];
    char val[32];
    int tomb;
    int64_t off;
} kv_seen;

static void test_compaction(void)
{
    setup();
    st_log_config c = small_cfg();
    c.compact = 1;
    c.segment_bytes = 8 << 10;
    c.delete_retention_ms = 3600 * 1000;
    st_log *log = open_log(&c);
    int64_t now = tu_now_ms();
    /* 20 keys, each written 30 times; key 3 deleted recently, key 4 deleted
     * long ago (its tombstone is past delete.retention.ms). */
    enum { K = 20, R = 30 };
    char latest[K][32];
    for (int r = 0; r < R; r++) {
        for (int k = 0; k < K; k++) {
            char key[16], val[32];
            snprintf(key, sizeof(key), "key%d", k);
            snprintf(val, sizeof(val), "v%d-%d", k, r);
            uint8_t *b;
            size_t len = tu_kv(&b, key, val, now);
            CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, NULL), 0);
            free(b);
            strcpy(latest[k], val);
        }
    }
    uint8_t *b;
    size_t len = tu_kv(&b, "key3", NULL, now);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, NULL), 0);
    free(b);
    len = tu_kv(&b, "key4", NULL, now - 2 * 3600 * 1000);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, NULL), 0);
    free(b);
    /* Push everything into sealed segments. */
    fill(log, 12, now, 0);
    int64_t end = st_log_end_offset(log);
    int64_t size_before = st_log_size_bytes(log);
    /* Appends keep working while compaction runs in the background. */
    tu_done d = {0};
    CU_ASSERT_EQUAL(st_log_compact_now(log, tu_append_cb, &d), 0);
    len = tu_kv(&b, "key5", "during", now);
    int64_t during = -1;
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &during), 0);
    CU_ASSERT_EQUAL(during, end);
    free(b);
    char before5[32];
    strcpy(before5, latest[5]);
    strcpy(latest[5], "during");
    tu_wait(g_io, &d.fired);
    CU_ASSERT_EQUAL(d.rc, 0);
    CU_ASSERT(d.offset > 0);
    CU_ASSERT(st_log_size_bytes(log) < size_before / 2);

    /* Read everything: the last value of each key is there at its original
     * offset, older values are gone, offsets increase. */
    int found[K] = {0};
    int64_t at = 0, prev = -1;
    int total = 0;
    while (at < st_log_end_offset(log)) {
        tu_rd r;
        CU_ASSERT_EQUAL_FATAL(tu_read(g_io, log, at, 1 << 20, &r, NULL), 0);
        if (r.len == 0) {
            free(r.data);
            break;
        }
        kp_batch_iter it;
        kp_batch kb;
        kp_batch_iter_init(&it, r.data, r.len, 1);
        while (kp_batch_iter_next(&it, &kb) == 1) {
            kp_record_iter ri;
            kp_record rec;
            kp_record_iter_init(&ri, &kb.h, kb.records, kb.records_size);
            while (kp_record_iter_next(&ri, &rec) == 1) {
                CU_ASSERT(rec.offset > prev);
                prev = rec.offset;
                total++;
                int k;
                if (rec.key.len > 3 && memcmp(rec.key.p, "key", 3) == 0 &&
                    sscanf((const char *)rec.key.p + 3, "%d", &k) == 1 && k >= 0 && k < K) {
                    found[k]++;
                    if (k == 3) {
                        CU_ASSERT_EQUAL(rec.value.len, -1);
                    } else if (k == 5 && rec.value.len == (int32_t)strlen(before5) &&
                               memcmp(rec.value.p, before5, (size_t)rec.value.len) == 0) {
                        CU_ASSERT(rec.offset < during);
                    } else {
                        CU_ASSERT(rec.value.len == (int32_t)strlen(latest[k]) &&
                                  memcmp(rec.value.p, latest[k], (size_t)rec.value.len) == 0);
                    }
                }
            }
            at = kb.h.base_offset + kb.h.last_offset_delta + 1;
        }
        free(r.data);
    }
    for (int k = 0; k < K; k++) {
        if (k == 4) {
            CU_ASSERT_EQUAL(found[k], 0);
        } else if (k == 5) {
            CU_ASSERT(found[k] >= 1 && found[k] <= 2); /* "during" sits in the active segment */
        } else {
            CU_ASSERT_EQUAL(found[k], 1);
        }
    }
    CU_ASSERT(total < K * R / 4);
    /* Offsets are preserved: the end did not move, new appends continue. */
    int64_t o;
    len = tu_kv(&b, "key0", "after", now);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, &o), 0);
    CU_ASSERT_EQUAL(o, during + 1);
    free(b);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    log = open_log(&c);
    CU_ASSERT_EQUAL(st_log_end_offset(log), during + 2);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

static void test_flush_policy(void)
{
    setup();
    st_log_config c = small_cfg();
    c.sync_acks = 0;
    c.flush_messages = 1000000;
    st_log *log = open_log(&c);
    fill(log, 50, 1000, 1);
    st_log_stats s;
    st_log_get_stats(log, &s);
    /* Rolled segments are always synced; the rest waited for the policy. */
    uint64_t syncs = s.syncs;
    CU_ASSERT(s.writes > syncs);
    tu_done d = {0};
    CU_ASSERT_EQUAL(st_log_flush(log, tu_append_cb, &d), 0);
    tu_wait(g_io, &d.fired);
    CU_ASSERT_EQUAL(d.rc, 0);
    CU_ASSERT_EQUAL(d.offset, st_log_end_offset(log));
    st_log_get_stats(log, &s);
    CU_ASSERT(s.syncs > syncs);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    /* flush.messages = 10 with 2-record batches: about one sync per 5 appends. */
    c.flush_messages = 10;
    c.segment_bytes = 1 << 20;
    log = open_log(&c);
    st_log_get_stats(log, &s);
    fill(log, 50, 1000, 1);
    st_log_get_stats(log, &s);
    CU_ASSERT(s.syncs >= 8 && s.syncs <= 12);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

static void group_cb(void *arg, int rc, int64_t off)
{
    (void)off;
    int *n = arg;
    if (rc == 0)
        (*n)++;
}

static void test_group_commit(void)
{
    setup();
    /* Small segments: rolls happen while a flush is in flight. */
    st_log_config c = small_cfg();
    st_log *log = open_log(&c);
    uint8_t *b;
    size_t len = tu_batch(&b, 1, 1000, 1, 1000, -1, 0, 0, 0);
    int done = 0;
    enum { N = 500 };
    int64_t off;
    for (int i = 0; i < N; i++) {
        while (st_log_append(log, b, len, group_cb, &done, &off) == ST_E_BUSY)
            st_io_wait(g_io, 10);
        /* Durability never runs ahead of the acked end. */
        CU_ASSERT(st_log_high_watermark(log) <= st_log_end_offset(log));
    }
    while (done < N)
        st_io_wait(g_io, 10);
    st_log_stats s;
    st_log_get_stats(log, &s);
    CU_ASSERT(s.syncs < N / 2); /* one fdatasync covered many appends */
    CU_ASSERT(s.syncs >= 1);
    CU_ASSERT_EQUAL(st_log_high_watermark(log), N);
    CU_ASSERT(s.memory_bytes < (1 << 20) + (64 << 10) + 4 * c.chunk_bytes);
    CU_ASSERT(st_log_segment_count(log) > 5);
    for (int64_t o = 0; o < N; o++) {
        tu_rd r;
        CU_ASSERT_EQUAL(tu_read(g_io, log, o, 1, &r, NULL), 0);
        CU_ASSERT(r.len == len && same_batch(r.data, b, len, o));
        free(r.data);
    }
    free(b);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    teardown();
}

static void garble(const char *path, off_t from_end, int truncate_instead)
{
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    struct stat st;
    fstat(fd, &st);
    if (truncate_instead) {
        CU_ASSERT_EQUAL(ftruncate(fd, st.st_size - from_end), 0);
    } else {
        uint8_t junk[64];
        memset(junk, 0x5A, sizeof(junk));
        CU_ASSERT_EQUAL(pwrite(fd, junk, sizeof(junk), st.st_size - from_end), (ssize_t)sizeof(junk));
    }
    close(fd);
}

static void test_torn_tail(void)
{
    for (int mode = 0; mode < 4; mode++) {
        setup();
        st_log_config c = small_cfg();
        c.segment_bytes = 1 << 20;
        st_log *log = open_log(&c);
        enum { N = 40 };
        uint8_t *b[N];
        size_t len[N];
        int64_t off[N];
        for (int i = 0; i < N; i++) {
            len[i] = tu_batch(&b[i], 2, 1000 + i, (uint32_t)i, 500, -1, 0, 0, 0);
            CU_ASSERT_EQUAL(tu_append(g_io, log, b[i], len[i], &off[i]), 0);
        }
        CU_ASSERT_EQUAL(st_log_close(log), 0);
        char p[4096];
        snprintf(p, sizeof(p), "%s/clean-shutdown", g_dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/00000000000000000000.log", g_dir);
        int lost = 1; /* batches the damage destroys */
        if (mode == 0)
            garble(p, 30, 1); /* truncated mid-batch */
        else if (mode == 1)
            garble(p, 100, 0); /* garbled in the last batch */
        else if (mode == 2)
            garble(p, (off_t)(len[N - 1] + len[N - 2] - 5), 0); /* the one before last: CRC catches it */
        else {
            lost = 0; /* index damage only */
            snprintf(p, sizeof(p), "%s/00000000000000000000.index", g_dir);
            garble(p, 3, 1);
        }
        if (mode == 2)
            lost = 2;
        log = open_log(&c);
        CU_ASSERT_EQUAL(st_log_end_offset(log), off[N - 1 - lost] + 2);
        for (int i = 0; i < N - lost; i++) {
            tu_rd r;
            CU_ASSERT_EQUAL(tu_read(g_io, log, off[i], 1, &r, NULL), 0);
            CU_ASSERT(r.len == len[i] && same_batch(r.data, b[i], len[i], off[i]));
            free(r.data);
        }
        /* New offsets continue densely after the last whole batch. */
        int64_t o;
        CU_ASSERT_EQUAL(tu_append(g_io, log, b[0], len[0], &o), 0);
        CU_ASSERT_EQUAL(o, off[N - 1 - lost] + 2);
        CU_ASSERT_EQUAL(st_log_close(log), 0);
        for (int i = 0; i < N; i++)
            free(b[i]);
        teardown();
    }
}

static void test_segment_ms_log_append_time(void)
{
    setup();
    st_log_config c = small_cfg();
    c.segment_bytes = 1 << 20;
    c.segment_ms = 30;
    c.log_append_time = 1;
    st_log *log = open_log(&c);
    uint8_t *b;
    size_t len = tu_batch(&b, 3, 1000, 1, 100, -1, 0, 0, 0);
    int64_t before = tu_now_ms();
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, NULL), 0);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, NULL), 0);
    CU_ASSERT_EQUAL(st_log_segment_count(log), 1);
    usleep(40 * 1000);
    CU_ASSERT_EQUAL(tu_append(g_io, log, b, len, NULL), 0);
    CU_ASSERT_EQUAL(st_log_segment_count(log), 2); /* rolled by age */
    /* LogAppendTime: the broker's clock in maxTimestamp, the attribute set,
     * the CRC recomputed (the iterator verifies it). */
    tu_rd r;
    CU_ASSERT_EQUAL(tu_read(g_io, log, 0, 1, &r, NULL), 0);
    kp_batch_iter it;
    kp_batch kb;
    kp_batch_iter_init(&it, r.data, r.len, 1);
    CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &kb), 1);
    CU_ASSERT(kb.h.attributes & KP_ATTR_LOG_APPEND_TIME);
    CU_ASSERT(kb.h.max_timestamp >= before && kb.h.max_timestamp <= tu_now_ms());
    free(r.data);
    CU_ASSERT(tu_offset_for_time(g_io, log, before) == 0);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    free(b);
    teardown();
}

static void add_tests(CU_pSuite s)
{
    CU_add_test(s, "backend", check_backend);
    CU_add_test(s, "append_read_roll_index", test_append_read);
    CU_add_test(s, "invalid_input", test_invalid_input);
    CU_add_test(s, "read_keep", test_read_keep);
    CU_add_test(s, "timestamps", test_timestamps);
    CU_add_test(s, "producer_state", test_producer_state);
    CU_add_test(s, "append_replica keeps the leader's offsets", test_append_replica);
    CU_add_test(s, "append_replica takes what the leader took", test_append_replica_leader_bytes);
    CU_add_test(s, "read_upto stops below the bound", test_read_upto);
    CU_add_test(s, "truncate: cut, producer state, crash right after", test_truncate);
    CU_add_test(s, "leader epochs: stamped, cached, rebuilt, truncated", test_leader_epochs);
    CU_add_test(s, "retention", test_retention);
    CU_add_test(s, "delete_records", test_delete_records);
    CU_add_test(s, "compaction", test_compaction);
    CU_add_test(s, "flush_policy", test_flush_policy);
    CU_add_test(s, "group_commit", test_group_commit);
    CU_add_test(s, "torn_tail", test_torn_tail);
    CU_add_test(s, "segment_ms_log_append_time", test_segment_ms_log_append_time);
}

static void register_suites(void)
{
    add_tests(CU_add_suite("log_io_uring", suite_uring, NULL));
    add_tests(CU_add_suite("log_threads", suite_thread, NULL));
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_close.c — cheap opens and closes: a log unchanged since a clean open
 * keeps its files (marker, snapshot) untouched and closes without rewriting
 * them; the first change removes the marker before anything reaches the
 * disk, so a crash after it still triggers a full recovery; st_log_close_all
 * leaves every log cleanly closed; an idle log gives its write buffer back.
 * Both I/O paths.
 */
#include "kb_test.h"
#include <sys/wait.h>

#include "st_io.h"
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

static int file_ino(const char *dir, const char *name, ino_t *ino)
{
    char p[8192];
    if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, name) >= sizeof(p))
        return -1;
    struct stat st;
    if (stat(p, &st) != 0)
        return -1;
    *ino = st.st_ino;
    return 0;
}

static void append_n(st_io *io, st_log *log, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        uint8_t *b;
        size_t len = tu_batch(&b, 2, 1000 + i, seed + (uint32_t)i, 100, -1, 0, 0, 0);
        CU_ASSERT_EQUAL(tu_append(io, log, b, len, NULL), 0);
        free(b);
    }
}

/* Every batch from 0 to the end, CRC-checked; returns how many records. */
static int64_t check_all(st_io *io, st_log *log)
{
    int64_t off = 0, end = st_log_high_watermark(log);
    while (off < end) {
        tu_rd rd;
        if (tu_read(io, log, off, 1 << 20, &rd, NULL) != 0 || rd.len == 0)
            return -1;
        kp_batch_iter it;
        kp_batch kb;
        kp_batch_iter_init(&it, rd.data, rd.len, 1);
        int n;
        while ((n = kp_batch_iter_next(&it, &kb)) == 1) {
            if (kb.h.base_offset != off) {
                free(rd.data);
                return -1;
            }
            off = kb.h.base_offset + kb.h.last_offset_delta + 1;
        }
        free(rd.data);
        if (n < 0)
            return -1;
    }
    return off;
}

static void test_idle_open_close(void)
{
    st_io *io = tu_io(g_force_thread);
    char *dir = tu_mkdtemp();
    st_log *log;
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, NULL, &log), 0);
    append_n(io, log, 3, 1);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    ino_t m1 = 0, s1 = 0, m2 = 0, s2 = 0;
    CU_ASSERT_EQUAL(file_ino(dir, "clean-shutdown", &m1), 0);
    CU_ASSERT_EQUAL(file_ino(dir, "producer.snapshot", &s1), 0);

    /* Open, read, close: nothing changed, so nothing is rewritten (each
     * rewrite is a new inode through rename, plus fsyncs). */
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, NULL, &log), 0);
    CU_ASSERT_EQUAL(file_ino(dir, "clean-shutdown", &m2), 0); /* still there while unchanged */
    tu_rd rd;
    CU_ASSERT_EQUAL(tu_read(io, log, 0, 1 << 20, &rd, NULL), 0);
    CU_ASSERT(rd.len > 0);
    free(rd.data);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    CU_ASSERT_EQUAL(file_ino(dir, "clean-shutdown", &m2), 0);
    CU_ASSERT_EQUAL(file_ino(dir, "producer.snapshot", &s2), 0);
    CU_ASSERT_EQUAL(m1, m2);
    CU_ASSERT_EQUAL(s1, s2);

    /* A crash after appends (the child exits without closing): the marker
     * is still there, yet what was appended since the clean open is
     * CRC-checked: the acknowledged batch is kept, garbage after it (a
     * plausible header with a wrong CRC, as a torn write may leave) is cut. */
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        st_io *cio = tu_io(g_force_thread);
        st_log *cl;
        if (st_log_open(cio, dir, NULL, &cl) != 0)
            _exit(2);
        uint8_t *b;
        size_t len = tu_batch(&b, 1, 5000, 77, 100, -1, 0, 0, 0);
        int64_t off = -1;
        if (tu_append(cio, cl, b, len, &off) != 0 || off != 6)
            _exit(3);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(file_ino(dir, "clean-shutdown", &m2), 0);
    {
        char seg[8192];
        snprintf(seg, sizeof(seg), "%s/00000000000000000000.log", dir);
        struct stat st;
        CU_ASSERT_EQUAL_FATAL(stat(seg, &st), 0);
        uint8_t *b;
        size_t len = tu_batch(&b, 1, 6000, 78, 100, -1, 0, 0, 0);
        kp_put_be64(b, 7);
        b[len - 1] ^= 0x5a; /* a record byte: CRC mismatch */
        FILE *f = fopen(seg, "r+b");
        CU_ASSERT_FATAL(f != NULL);
        /* Where the child's batch ends (recovery cut the zero padding). */
        st_log *probe;
        CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, NULL, &probe), 0);
        CU_ASSERT_EQUAL(st_log_end_offset(probe), 7);
        int64_t end_pos = st_log_size_bytes(probe);
        st_log_stats ps;
        st_log_get_stats(probe, &ps);
        CU_ASSERT_EQUAL(ps.appends, 0);
        CU_ASSERT_EQUAL(st_log_close(probe), 0);
        CU_ASSERT_EQUAL(fseek(f, (long)end_pos, SEEK_SET), 0);
        CU_ASSERT_EQUAL(fwrite(b, 1, len, f), len);
        fclose(f);
        free(b);
    }
    CU_ASSERT_EQUAL(file_ino(dir, "clean-shutdown", &m2), 0);
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, NULL, &log), 0);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 7);
    CU_ASSERT_EQUAL(check_all(io, log), 7);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    /* A new empty log is clean from the start: opening it again finds the
     * marker and closing it writes nothing. */
    char d2[512];
    snprintf(d2, sizeof(d2), "%s/new-0", dir);
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, d2, NULL, &log), 0);
    CU_ASSERT_EQUAL(file_ino(d2, "clean-shutdown", &m1), 0);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    CU_ASSERT_EQUAL(file_ino(d2, "clean-shutdown", &m2), 0);
    CU_ASSERT_EQUAL(m1, m2);
    CU_ASSERT_NOT_EQUAL(file_ino(d2, "producer.snapshot", &s1), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

#define NCLOSE 12

static void test_close_all(void)
{
    st_io *io = tu_io(g_force_thread);
    char *root = tu_mkdtemp();
    st_log *logs[NCLOSE];
    char d[NCLOSE][512];
    for (int i = 0; i < NCLOSE; i++) {
        snprintf(d[i], sizeof(d[i]), "%s/t-%d", root, i);
        CU_ASSERT_EQUAL_FATAL(st_log_open(io, d[i], NULL, &logs[i]), 0);
        append_n(io, logs[i], i % 3, (uint32_t)i * 10); /* some stay empty */
    }
    CU_ASSERT_EQUAL(st_log_close_all(logs, NCLOSE), 0);
    for (int i = 0; i < NCLOSE; i++) {
        ino_t m;
        CU_ASSERT_EQUAL(file_ino(d[i], "clean-shutdown", &m), 0);
        st_log *log;
        CU_ASSERT_EQUAL_FATAL(st_log_open(io, d[i], NULL, &log), 0);
        CU_ASSERT_EQUAL(st_log_end_offset(log), 2 * (i % 3));
        if (i % 3) {
            tu_rd rd;
            CU_ASSERT_EQUAL(tu_read(io, log, 0, 1 << 20, &rd, NULL), 0);
            CU_ASSERT(rd.len > 0);
            free(rd.data);
        }
        append_n(io, log, 1, 99); /* appends continue at the old end */
        CU_ASSERT_EQUAL(st_log_end_offset(log), 2 * (i % 3) + 2);
        logs[i] = log;
    }
    CU_ASSERT_EQUAL(st_log_close_all(logs, NCLOSE), 0);
    st_io_destroy(io);
    tu_rmrf(root);
    free(root);
}

/* A log nobody writes to gives its write buffer back after a while and
 * takes it again (with the partial last block) on the next append. */
static void test_idle_release(void)
{
    st_io *io = tu_io(g_force_thread);
    char *dir = tu_mkdtemp();
    st_log *log;
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, NULL, &log), 0);
    append_n(io, log, 5, 7); /* about 1.5 KiB: the segment ends mid-block */
    st_log_stats st;
    st_log_get_stats(log, &st);
    size_t busy = st.memory_bytes;
    CU_ASSERT(busy >= (256u << 10)); /* a write-buffer chunk */
    st_log_tick(log, tu_now_ms() + 3600 * 1000);
    st_log_get_stats(log, &st);
    CU_ASSERT(st.memory_bytes < 16u << 10);
    CU_ASSERT_EQUAL(check_all(io, log), 10);
    append_n(io, log, 3, 70);
    CU_ASSERT_EQUAL(check_all(io, log), 16);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    /* After a restart the log starts without a chunk as well. */
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, NULL, &log), 0);
    st_log_get_stats(log, &st);
    CU_ASSERT(st.memory_bytes < 16u << 10);
    CU_ASSERT_EQUAL(check_all(io, log), 16);
    append_n(io, log, 2, 700);
    CU_ASSERT_EQUAL(check_all(io, log), 20);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, NULL, &log), 0);
    CU_ASSERT_EQUAL(check_all(io, log), 20);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

static void add_tests(CU_pSuite s)
{
    CU_add_test(s, "idle_release", test_idle_release);
    CU_add_test(s, "idle_open_close", test_idle_open_close);
    CU_add_test(s, "close_all", test_close_all);
}

static void register_suites(void)
{
    add_tests(CU_add_suite("close_io_uring", suite_uring, NULL));
    add_tests(CU_add_suite("close_threads", suite_thread, NULL));
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

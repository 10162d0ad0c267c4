/*
 * test_close.c — cheap opens and closes: a log unchanged since a clean open
 * keeps its files (marker, snapshot) untouched and closes without rewriting
 * them; the first change removes the marker before anything reaches the
 * disk, so a crash after it still triggers a full recovery; st_log_close_all
 * leaves every log cleanly closed. Both I/O paths.
 */
#include <CUnit/Basic.h>
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

    /* The first append removes the marker before its data is written: a
     * crash right after (the child exits without closing) is then not taken
     * for a clean stop, and recovery keeps the acknowledged batch. */
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
    CU_ASSERT_NOT_EQUAL(file_ino(dir, "clean-shutdown", &m2), 0);
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, NULL, &log), 0);
    CU_ASSERT_EQUAL(st_log_end_offset(log), 7);
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

static void add_tests(CU_pSuite s)
{
    CU_add_test(s, "idle_open_close", test_idle_open_close);
    CU_add_test(s, "close_all", test_close_all);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    add_tests(CU_add_suite("close_io_uring", suite_uring, NULL));
    add_tests(CU_add_suite("close_threads", suite_thread, NULL));
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}

/*
 * test_fdcache.c — the open-file budget: many logs on one st_io under a small
 * budget (and under a low RLIMIT_NOFILE in a child process) keep appending
 * and reading, including old segments whose files were closed and must be
 * reopened, and survive a restart; a file that cannot be reopened gives
 * errors, never a hang. Both I/O paths.
 */
#include "kb_test.h"
#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "st_io.h"
#include "st_test_util.h"

#define NLOGS  48
#define BUDGET 8

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

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the DIR's own descriptor */
}

static st_log_config tiny_cfg(void)
{
    st_log_config c;
    st_log_config_default(&c);
    /* Several segments per log and a tail cache smaller than a segment, so
     * reads of early offsets go to files the budget has closed. */
    c.segment_bytes = 8 << 10;
    c.chunk_bytes = 4 << 10;
    c.tail_cache_bytes = 4 << 10;
    c.max_unflushed_bytes = 64 << 10;
    c.index_interval_bytes = 512;
    return c;
}

static void log_dir(char *buf, size_t cap, const char *root, int i)
{
    snprintf(buf, cap, "%s/t-%d", root, i);
}

/* Opens NLOGS logs, appends `rounds` batches to each in turn (every append
 * touches another log), checks the budget held, reads every batch back. */
static void exercise(st_io *io, const char *root, st_log **logs, int rounds, int64_t expect_start)
{
    st_log_config c = tiny_cfg();
    for (int i = 0; i < NLOGS; i++) {
        char d[4096];
        log_dir(d, sizeof(d), root, i);
        CU_ASSERT_EQUAL_FATAL(st_log_open(io, d, &c, &logs[i]), 0);
        CU_ASSERT_EQUAL(st_log_end_offset(logs[i]), expect_start);
    }
    st_open_files of;
    st_log_open_files(io, &of);
    CU_ASSERT(of.open <= BUDGET);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < NLOGS; i++) {
            uint8_t *b;
            size_t len = tu_batch(&b, 2, 1000 + r, (uint32_t)(i * 1000 + r), 700, -1, 0, 0, 0);
            int64_t off = -1;
            CU_ASSERT_EQUAL(tu_append(io, logs[i], b, len, &off), 0);
            CU_ASSERT_EQUAL(off, expect_start + 2 * r);
            free(b);
        }
    st_log_open_files(io, &of);
    CU_ASSERT(of.open <= BUDGET);
    CU_ASSERT(of.closes > 0);
    for (int i = 0; i < NLOGS; i++) {
        CU_ASSERT(st_log_segment_count(logs[i]) >= 2);
        for (int64_t off = 0; off < expect_start + 2 * rounds; off += 2) {
            tu_rd rd;
            CU_ASSERT_EQUAL_FATAL(tu_read(io, logs[i], off, 1, &rd, NULL), 0);
            kp_batch_iter it;
            kp_batch kb;
            kp_batch_iter_init(&it, rd.data, rd.len, 1);
            CU_ASSERT_EQUAL(kp_batch_iter_next(&it, &kb), 1);
            CU_ASSERT_EQUAL(kb.h.base_offset, off);
            free(rd.data);
        }
    }
    st_log_open_files(io, &of);
    CU_ASSERT(of.open <= BUDGET);
    CU_ASSERT(of.reopens > 0); /* old segments were read from closed files */
}

static void test_budget_restart(void)
{
    st_io *io = tu_io(g_force_thread);
    char *root = tu_mkdtemp();
    int before = count_fds();
    st_log_set_max_open_files(io, BUDGET);
    st_log *logs[NLOGS];
    exercise(io, root, logs, 16, 0);
    /* Segment files beyond the budget are closed: the process holds at most
     * the budget more than before (plus the st_io's own descriptors, which
     * existed already). */
    CU_ASSERT(count_fds() <= before + BUDGET);
    for (int i = 0; i < NLOGS; i++)
        CU_ASSERT_EQUAL(st_log_close(logs[i]), 0);
    st_open_files of;
    st_log_open_files(io, &of);
    CU_ASSERT_EQUAL(of.open, 0);
    /* Everything came back after a clean close, and appends continue. */
    exercise(io, root, logs, 2, 32);
    for (int i = 0; i < NLOGS; i++)
        CU_ASSERT_EQUAL(st_log_close(logs[i]), 0);
    st_io_destroy(io);
    tu_rmrf(root);
    free(root);
}

/* The real limit: a child with RLIMIT_NOFILE far below what NLOGS logs with
 * several segments each would need without the budget. */
static void test_rlimit_child(void)
{
    char *root = tu_mkdtemp();
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {40, 40};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(3);
        st_io *io = tu_io(g_force_thread);
        st_log_set_max_open_files(io, BUDGET);
        st_log_config c = tiny_cfg();
        st_log *logs[NLOGS];
        for (int i = 0; i < NLOGS; i++) {
            char d[4096];
            log_dir(d, sizeof(d), root, i);
            if (st_log_open(io, d, &c, &logs[i]) != 0)
                _exit(4);
        }
        for (int r = 0; r < 12; r++)
            for (int i = 0; i < NLOGS; i++) {
                uint8_t *b;
                size_t len = tu_batch(&b, 1, 1000, (uint32_t)r, 900, -1, 0, 0, 0);
                int64_t off = -1;
                if (tu_append(io, logs[i], b, len, &off) != 0 || off != r)
                    _exit(5);
                free(b);
            }
        /* One append to every log at once: as many flushes in flight as
         * logs, far more than the budget; files beyond it wait for a slot
         * instead of running the process out of descriptors. */
        tu_done done[NLOGS];
        memset(done, 0, sizeof(done));
        for (int i = 0; i < NLOGS; i++) {
            uint8_t *b;
            size_t len = tu_batch(&b, 1, 1000, 99, 900, -1, 0, 0, 0);
            int64_t base = -1;
            if (st_log_append(logs[i], b, len, tu_append_cb, &done[i], &base) != 0 || base != 12)
                _exit(8);
            free(b);
        }
        for (int i = 0; i < NLOGS; i++) {
            tu_wait(io, &done[i].fired);
            if (done[i].rc != 0)
                _exit(9);
        }
        /* Reads of every log at once: the first batch is on disk, in files
         * the budget closed. */
        tu_rd rds[NLOGS];
        memset(rds, 0, sizeof(rds));
        for (int i = 0; i < NLOGS; i++)
            if (st_log_read(logs[i], 0, 1, tu_read_cb, &rds[i]) < 0)
                _exit(10);
        for (int i = 0; i < NLOGS; i++) {
            tu_wait(io, &rds[i].fired);
            if (rds[i].rc != 0 || rds[i].len == 0)
                _exit(6);
            free(rds[i].data);
        }
        for (int i = 0; i < NLOGS; i++)
            if (st_log_close(logs[i]) != 0)
                _exit(7);
        st_io_destroy(io);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "child status %d ", status);
    tu_rmrf(root);
    free(root);
}

/* A closed file that cannot be reopened (its directory moved away): reads
 * and appends answer with the error instead of waiting; once the directory
 * is back the log works again. */
static void test_reopen_failure(void)
{
    st_io *io = tu_io(g_force_thread);
    char *root = tu_mkdtemp();
    st_log_set_max_open_files(io, 1);
    st_log_config c = tiny_cfg();
    char d0[4096], d1[4096], moved[4096];
    log_dir(d0, sizeof(d0), root, 0);
    log_dir(d1, sizeof(d1), root, 1);
    snprintf(moved, sizeof(moved), "%s/moved", root);
    st_log *a, *b;
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, d0, &c, &a), 0);
    CU_ASSERT_EQUAL_FATAL(st_log_open(io, d1, &c, &b), 0);
    uint8_t *bt;
    size_t len = tu_batch(&bt, 1, 1000, 1, 3000, -1, 0, 0, 0);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(tu_append(io, a, bt, len, NULL), 0);
    CU_ASSERT_EQUAL(tu_append(io, b, bt, len, NULL), 0); /* closes a's files */
    CU_ASSERT_EQUAL_FATAL(rename(d0, moved), 0);
    tu_rd rd;
    int rc = tu_read(io, a, 0, 1, &rd, NULL);
    CU_ASSERT(rc < 0);
    if (rc == 0 || rd.fired)
        free(rd.data);
    CU_ASSERT(tu_append(io, a, bt, len, NULL) < 0);
    CU_ASSERT_EQUAL(st_log_high_watermark(a), 6);
    CU_ASSERT_EQUAL_FATAL(rename(moved, d0), 0);
    int64_t off = -1;
    CU_ASSERT_EQUAL(tu_append(io, a, bt, len, &off), 0);
    CU_ASSERT_EQUAL(off, 6);
    CU_ASSERT_EQUAL(tu_read(io, a, 0, 1, &rd, NULL), 0);
    CU_ASSERT(rd.len > 0);
    free(rd.data);
    free(bt);
    CU_ASSERT_EQUAL(st_log_close(a), 0);
    CU_ASSERT_EQUAL(st_log_close(b), 0);
    st_io_destroy(io);
    tu_rmrf(root);
    free(root);
}

static void add_tests(CU_pSuite s)
{
    CU_add_test(s, "budget_restart", test_budget_restart);
    CU_add_test(s, "rlimit_child", test_rlimit_child);
    CU_add_test(s, "reopen_failure", test_reopen_failure);
}

static void register_suites(void)
{
    add_tests(CU_add_suite("fdcache_io_uring", suite_uring, NULL));
    add_tests(CU_add_suite("fdcache_threads", suite_thread, NULL));
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

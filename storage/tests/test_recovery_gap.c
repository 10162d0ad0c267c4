/*
 * test_recovery_gap.c — recovery after a kill that followed two quick rolls:
 * the rolled segment's data never reached the disk, so the directory ends
 * with two empty segment files, the second starting past the real end. The
 * log must end where its data ends (no offsets skipped), and say so again
 * after a clean close and reopen. Both I/O paths.
 *
 * Owns these cases only. Must not depend on timing: the state a kill leaves
 * is built directly on disk.
 */
#include "kb_test.h"
#include <fcntl.h>
#include <unistd.h>

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

static void touch_segment(const char *dir, int64_t base)
{
    char p[8192];
    snprintf(p, sizeof(p), "%s/%020lld.log", dir, (long long)base);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
}

static st_log *open_log(st_io *io, const char *dir)
{
    st_log_config cfg;
    st_log_config_default(&cfg);
    cfg.segment_bytes = 16384;
    st_log *log = NULL;
    CU_ASSERT_FATAL(st_log_open(io, dir, &cfg, &log) == 0);
    return log;
}

static int64_t append_one(st_io *io, st_log *log, uint32_t seed)
{
    uint8_t *b = NULL;
    size_t n = tu_batch(&b, 3, 1700000000000LL, seed, 40, -1, 0, 0, 0);
    int64_t off = -1;
    int rc = tu_append(io, log, b, n, &off);
    free(b);
    return rc == 0 ? off : rc;
}

/* keep_marker: the kill of a log first created empty leaves the
 * clean-shutdown marker of that creation in place (the log does not remove
 * it while it runs); without it, the full recovery path. */
static void two_empty_tails(int keep_marker)
{
    char *dir = tu_mkdtemp();
    st_io *io = tu_io(g_force_thread);
    st_log *log = open_log(io, dir);
    for (uint32_t i = 0; i < 10; i++)
        CU_ASSERT(append_one(io, log, i) == (int64_t)i * 3);
    int64_t end = st_log_end_offset(log);
    CU_ASSERT_EQUAL(end, 30);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    /* The segment rolled at `end` lost all its data; the next roll's file,
     * at end + 77, was created before the kill. */
    touch_segment(dir, end);
    touch_segment(dir, end + 77);
    if (!keep_marker) {
        char m[8192];
        snprintf(m, sizeof(m), "%s/clean-shutdown", dir);
        CU_ASSERT_EQUAL(unlink(m), 0);
    }

    log = open_log(io, dir);
    if (st_log_end_offset(log) != end)
        fprintf(stderr, "\n(marker %d) recovered end %lld, data ends at %lld\n", keep_marker,
                (long long)st_log_end_offset(log), (long long)end);
    CU_ASSERT_EQUAL(st_log_end_offset(log), end);
    CU_ASSERT_EQUAL(st_log_high_watermark(log), end);
    CU_ASSERT_EQUAL(st_log_segment_count(log), 1);
    /* Appends continue densely. */
    CU_ASSERT_EQUAL(append_one(io, log, 100), end);
    CU_ASSERT_EQUAL(st_log_close(log), 0);

    log = open_log(io, dir);
    CU_ASSERT_EQUAL(st_log_end_offset(log), end + 3);
    tu_rd r;
    CU_ASSERT_EQUAL(tu_read(io, log, end, 1 << 20, &r, NULL), 0);
    CU_ASSERT(r.len > 0);
    free(r.data);
    CU_ASSERT_EQUAL(st_log_close(log), 0);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

static void test_two_empty_tails_marker(void)
{
    two_empty_tails(1);
}

static void test_two_empty_tails_no_marker(void)
{
    two_empty_tails(0);
}

static void add_tests(CU_pSuite s)
{
    CU_add_test(s, "two_empty_tails_marker", test_two_empty_tails_marker);
    CU_add_test(s, "two_empty_tails_no_marker", test_two_empty_tails_no_marker);
}

static void register_suites(void)
{
    add_tests(CU_add_suite("recovery_gap_io_uring", suite_uring, NULL));
    add_tests(CU_add_suite("recovery_gap_threads", suite_thread, NULL));
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

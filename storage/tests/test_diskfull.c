/*
 * test_diskfull.c — running out of space.
 *
 * In a child process (so the limit cannot leak into the harness) the file
 * size is capped with RLIMIT_FSIZE and SIGXFSZ ignored; appends must then
 * fail with an error, offsets must go back to the acked end, nothing acked
 * may be lost, and once the limit is lifted the log must work again, also
 * across a restart. Runs on both I/O paths.
 */
#include "kb_test.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "st_io.h"
#include "st_test_util.h"

static int fails;
#define CHECK(x)                                                                                             \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "diskfull child: check failed at line %d: %s\n", __LINE__, #x);                  \
            fails++;                                                                                         \
        }                                                                                                    \
    } while (0)

#define LIMIT (300u << 10)
#define MAXB  400

static int verify(st_io *io, st_log *log, int64_t *offs, uint32_t *seeds, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t *exp;
        size_t len = tu_batch(&exp, 2, 1000 + i, seeds[i], 2000, -1, 0, 0, 0);
        tu_rd r;
        if (tu_read(io, log, offs[i], 1, &r, NULL) != 0 || r.len != len ||
            memcmp(r.data + 8, exp + 8, len - 8) != 0 || (int64_t)kp_be64(r.data) != offs[i]) {
            fprintf(stderr, "diskfull child: batch %d at %lld differs\n", i, (long long)offs[i]);
            fails++;
        }
        free(r.data);
        free(exp);
    }
    return 0;
}

static void burst_cb(void *arg, int rc, int64_t off)
{
    (void)off;
    int *v = arg;
    v[rc == 0 ? 0 : 1]++;
}

static int child(const char *dir, int force_thread)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rlim_t hard = rl.rlim_max;
    rl.rlim_cur = LIMIT;
    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);

    st_io *io = tu_io(force_thread);
    st_log_config c;
    st_log_config_default(&c);
    c.segment_bytes = 4 << 20;
    c.chunk_bytes = 64 << 10;
    st_log *log;
    CHECK(st_log_open(io, dir, &c, &log) == 0);
    static int64_t offs[MAXB];
    static uint32_t seeds[MAXB];
    int n = 0, err = 0;
    off_t acked_bytes = 0;
    while (n < MAXB) {
        uint8_t *b;
        uint32_t seed = (uint32_t)n * 7919u + 1;
        size_t len = tu_batch(&b, 2, 1000 + n, seed, 2000, -1, 0, 0, 0);
        int64_t off = -1;
        int rc = tu_append(io, log, b, len, &off);
        free(b);
        if (rc != 0) {
            err = rc;
            break;
        }
        offs[n] = off;
        seeds[n] = seed;
        acked_bytes += (off_t)len;
        n++;
    }
    CHECK(err < 0);
    CHECK(n > 50 && n < MAXB);
    fprintf(stderr, "(full after %d batches: %s) ", n, st_strerror(err));
    int64_t end = st_log_end_offset(log);
    CHECK(end == st_log_high_watermark(log));
    CHECK(n == 0 || end == offs[n - 1] + 2);

    /* A burst while full: every one fails, none is acked. */
    int res[2] = {0, 0};
    for (int i = 0; i < 8; i++) {
        uint8_t *b;
        size_t len = tu_batch(&b, 2, 1000, 99, 2000, -1, 0, 0, 0);
        int64_t off;
        if (st_log_append(log, b, len, burst_cb, res, &off) != 0)
            res[1]++;
        free(b);
    }
    for (int i = 0; i < 2000 && res[0] + res[1] < 8; i++)
        st_io_wait(io, 5);
    CHECK(res[0] == 0 && res[1] == 8);
    CHECK(st_log_end_offset(log) == end);
    /* What the failed writes left in the file is cut off again, so a crash
     * now could not bring failed batches back. */
    while (st_io_inflight(io) > 0)
        st_io_wait(io, 5);
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/00000000000000000000.log", dir);
    CHECK(stat(path, &st) == 0 && st.st_size == acked_bytes);
    verify(io, log, offs, seeds, n);

    /* Space returns. */
    rl.rlim_cur = hard;
    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    for (int i = 0; i < 20 && n < MAXB; i++) {
        uint8_t *b;
        uint32_t seed = (uint32_t)n * 7919u + 1;
        size_t len = tu_batch(&b, 2, 1000 + n, seed, 2000, -1, 0, 0, 0);
        int64_t off = -1;
        int rc = tu_append(io, log, b, len, &off);
        free(b);
        CHECK(rc == 0);
        CHECK(off == (n == 0 ? 0 : offs[n - 1] + 2));
        offs[n] = off;
        seeds[n] = seed;
        n++;
    }
    verify(io, log, offs, seeds, n);
    CHECK(st_log_close(log) == 0);
    CHECK(st_log_open(io, dir, &c, &log) == 0);
    CHECK(st_log_end_offset(log) == offs[n - 1] + 2);
    verify(io, log, offs, seeds, n);
    CHECK(st_log_close(log) == 0);
    st_io_destroy(io);
    return fails;
}

static void run(int force_thread)
{
    char *dir = tu_mkdtemp();
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(child(dir, force_thread) ? 1 : 0);
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmrf(dir);
    free(dir);
}

static void test_uring(void)
{
    run(0);
}
static void test_threads(void)
{
    run(1);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("diskfull", NULL, NULL);
    CU_add_test(s, "rlimit_fsize_io_uring", test_uring);
    CU_add_test(s, "rlimit_fsize_threads", test_threads);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

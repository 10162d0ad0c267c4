/*
 * test_crash.c — kill -9 during appends, then recover.
 *
 * A child process appends batches and reports each offset it was told is
 * durable (with the seed that regenerates the batch) through a pipe; the
 * parent kills it with SIGKILL at a random moment, reopens the log and checks
 * that every reported offset reads back byte-identical, that everything up to
 * the high watermark is whole, CRC-valid and dense, and that new offsets
 * continue densely. Rounds alternate between the io_uring and thread paths.
 */
#include "kb_test.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "st_io.h"
#include "st_test_util.h"

#define ROUNDS                60
#define MAX_APPENDS_PER_ROUND 300

#define PID 4242

typedef struct report {
    int64_t offset;
    uint32_t seed;
    int32_t seq;
} report;

/* Batches come from an idempotent producer, so its state is checked after
 * every crash too. */
static int nrec_for(uint32_t seed)
{
    return 1 + (int)(seed % 4);
}

static size_t batch_for(uint32_t seed, int32_t seq, uint8_t **out)
{
    size_t vlen = 50 + (seed / 4) % 3000;
    return tu_batch(out, nrec_for(seed), 1000 + seed % 100000, seed, vlen, PID, 0, seq, 0);
}

static st_log_config crash_cfg(void)
{
    st_log_config c;
    st_log_config_default(&c);
    c.segment_bytes = 512 << 10;
    c.chunk_bytes = 64 << 10;
    c.tail_cache_bytes = 64 << 10;
    c.max_unflushed_bytes = 512 << 10;
    c.retention_ms = -1;
    return c;
}

typedef struct child_ctx {
    int fd;
    uint32_t seeds[64];
    int inflight;
} child_ctx;

typedef struct child_req {
    child_ctx *c;
    uint32_t seed;
    int32_t seq;
} child_req;

static void child_cb(void *arg, int rc, int64_t off)
{
    child_req *r = arg;
    if (rc == 0) {
        report rep = {off, r->seed, r->seq};
        if (write(r->c->fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
            _exit(3);
    }
    r->c->inflight--;
    free(r);
}

static void child_main(const char *dir, int fd, int force_thread, uint32_t seed0, int32_t seq)
{
    st_io *io = tu_io(force_thread);
    st_log_config c = crash_cfg();
    st_log *log;
    if (st_log_open(io, dir, &c, &log) != 0)
        _exit(2);
    child_ctx ctx = {fd, {0}, 0};
    uint32_t seed = seed0;
    for (int n = 0; n < MAX_APPENDS_PER_ROUND;) {
        while (ctx.inflight < 16 && n < MAX_APPENDS_PER_ROUND) {
            uint8_t *b;
            seed = seed * 1664525u + 1013904223u;
            size_t len = batch_for(seed, seq, &b);
            child_req *r = malloc(sizeof(*r));
            r->c = &ctx;
            r->seed = seed;
            r->seq = seq;
            int64_t off;
            int rc = st_log_append(log, b, len, child_cb, r, &off);
            free(b);
            if (rc == ST_E_BUSY) {
                free(r);
                break;
            }
            if (rc != 0)
                _exit(4);
            seq += nrec_for(seed);
            ctx.inflight++;
            n++;
        }
        st_io_wait(io, 5);
    }
    while (ctx.inflight > 0)
        st_io_wait(io, 5);
    /* Idle until killed: the parent may kill at any moment. */
    for (;;)
        pause();
}

/* offset -> seed + 1 (0 = not reported) and sequence */
static uint32_t *known;
static int32_t *known_seq;
static size_t known_cap;

static void remember(int64_t off, uint32_t seed, int32_t seq)
{
    if ((size_t)off >= known_cap) {
        size_t nc = known_cap ? known_cap : 4096;
        while (nc <= (size_t)off)
            nc *= 2;
        known = realloc(known, nc * sizeof(*known));
        known_seq = realloc(known_seq, nc * sizeof(*known_seq));
        memset(known + known_cap, 0, (nc - known_cap) * sizeof(*known));
        known_cap = nc;
    }
    known[off] = seed + 1;
    known_seq[off] = seq;
}

/* The last batch seen by verify_range. */
static kp_batch_header last_h;
static uint8_t *last_copy;
static size_t last_len;

/* Reads [from, hw) and checks wholeness, density and reported contents. */
static int64_t verify_range(st_io *io, st_log *log, int64_t from, int *checked)
{
    int64_t at = from, hw = st_log_high_watermark(log);
    while (at < hw) {
        tu_rd r;
        int rc = tu_read(io, log, at, 256 << 10, &r, NULL);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_FATAL(r.len > 0);
        kp_batch_iter it;
        kp_batch b;
        kp_batch_iter_init(&it, r.data, r.len, 1);
        size_t used = 0;
        int n;
        while ((n = kp_batch_iter_next(&it, &b)) == 1) {
            CU_ASSERT_EQUAL(b.h.base_offset, at);
            if (b.h.base_offset != at)
                break;
            if ((size_t)at < known_cap && known[at]) {
                uint8_t *exp;
                size_t len = batch_for(known[at] - 1, known_seq[at], &exp);
                CU_ASSERT(b.size == len && memcmp(b.data + 8, exp + 8, len - 8) == 0);
                free(exp);
                (*checked)++;
            }
            at = b.h.base_offset + b.h.last_offset_delta + 1;
            used += b.size;
            last_h = b.h;
            free(last_copy);
            last_copy = malloc(b.size);
            memcpy(last_copy, b.data, b.size);
            last_len = b.size;
        }
        CU_ASSERT_EQUAL(n, 0);
        CU_ASSERT(!it.partial);
        CU_ASSERT_EQUAL(used, r.len);
        free(r.data);
        if (n != 0 || used != r.len)
            break;
    }
    return at;
}

static void test_crash_rounds(void)
{
    char *dir = tu_mkdtemp();
    srand((unsigned)getpid());
    int64_t verified_to = 0;
    int total_reported = 0, total_checked = 0;
    int32_t next_seq = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int pfd[2];
        CU_ASSERT_FATAL(pipe(pfd) == 0);
        int force_thread = round % 2;
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            child_main(dir, pfd[1], force_thread, (uint32_t)rand() ^ (uint32_t)round, next_seq);
        }
        close(pfd[1]);
        usleep((useconds_t)(2000 + rand() % 40000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        report rep;
        int64_t max_reported = -1;
        while (read(pfd[0], &rep, sizeof(rep)) == (ssize_t)sizeof(rep)) {
            remember(rep.offset, rep.seed, rep.seq);
            if (rep.offset > max_reported)
                max_reported = rep.offset;
            total_reported++;
        }
        close(pfd[0]);

        st_io *io = tu_io(!force_thread);
        st_log_config c = crash_cfg();
        st_log *log;
        CU_ASSERT_EQUAL_FATAL(st_log_open(io, dir, &c, &log), 0);
        /* Every reported offset survived. */
        CU_ASSERT(st_log_high_watermark(log) > max_reported);
        int checked = 0;
        /* Every 10 rounds (and the first time) all of it, else the new part
         * plus the last batch before it (for the producer check below). */
        int64_t from = round % 10 == 9 ? 0 : verified_to;
        if (from > 0 && last_len)
            from = last_h.base_offset;
        int64_t end = verify_range(io, log, from, &checked);
        CU_ASSERT_EQUAL(end, st_log_end_offset(log));
        total_checked += checked;
        /* Producer state survived: a retry of the last batch in the log is a
         * duplicate reported at its original offset, and the next sequence
         * is accepted. */
        int64_t off;
        if (last_len) {
            CU_ASSERT_EQUAL(tu_append(io, log, last_copy, last_len, &off), ST_E_DUPLICATE);
            CU_ASSERT_EQUAL(off, last_h.base_offset);
            next_seq = last_h.base_sequence + last_h.last_offset_delta + 1;
        }
        /* New offsets continue densely. */
        uint8_t *b;
        uint32_t seed = (uint32_t)rand();
        size_t len = batch_for(seed, next_seq, &b);
        CU_ASSERT_EQUAL(tu_append(io, log, b, len, &off), 0);
        CU_ASSERT_EQUAL(off, end);
        remember(off, seed, next_seq);
        next_seq += nrec_for(seed);
        free(b);
        verified_to = st_log_end_offset(log);
        CU_ASSERT_EQUAL(st_log_close(log), 0);
        st_io_destroy(io);
    }
    CU_ASSERT(total_reported > ROUNDS);
    CU_ASSERT(total_checked >= total_reported);
    fprintf(stderr, "(%d durable reports, %d verified) ", total_reported, total_checked);
    free(known);
    free(known_seq);
    free(last_copy);
    tu_rmrf(dir);
    free(dir);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("crash", NULL, NULL);
    CU_add_test(s, "kill9_rounds", test_crash_rounds);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_io.c — st_io on both paths: writes (with and without a linked
 * fdatasync), reads, background calls, completions only from st_io_poll on
 * the calling thread, the eventfd, a submission queue smaller than the work
 * (backlog), and errors surfacing as negative errno.
 */
#include "kb_test.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>

#include "io_internal.h"
#include "st_test_util.h"

static pthread_t g_main;

typedef struct ctx {
    int done;
    long res;
    int wrong_thread;
} ctx;

static void op_cb(st_op *op)
{
    ctx *c = op->arg;
    c->done++;
    c->res = op->res;
    if (!pthread_equal(pthread_self(), g_main))
        c->wrong_thread++;
}

static long call_fn(void *arg)
{
    int *v = arg;
    *v = 42;
    return 7;
}

static void run_ops(int force_thread)
{
    g_main = pthread_self();
    st_io_config cfg;
    st_io_config_default(&cfg);
    cfg.force_thread = force_thread;
    cfg.uring_entries = 4; /* far fewer than the ops below: exercises the backlog */
    st_io *io;
    CU_ASSERT_EQUAL_FATAL(st_io_create(&cfg, &io), 0);
    CU_ASSERT_EQUAL(st_io_uses_uring(io), !force_thread && st_io_uring_status(io) == 0);

    char *dir = tu_mkdtemp();
    char path[4096];
    snprintf(path, sizeof(path), "%s/f", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0644);
    CU_ASSERT_FATAL(fd >= 0);

    enum { N = 64, BS = 4096 };
    uint8_t *buf = NULL;
    CU_ASSERT_FATAL(posix_memalign((void **)&buf, 4096, N * BS) == 0);
    for (int i = 0; i < N * BS; i++)
        buf[i] = (uint8_t)(i * 7 + i / 4096);
    static st_op ops[N];
    static struct iovec iov[N];
    ctx c = {0};
    for (int i = 0; i < N; i++) {
        memset(&ops[i], 0, sizeof(ops[i]));
        iov[i] = (struct iovec){buf + i * BS, BS};
        ops[i].kind = ST_OP_WRITE;
        ops[i].fd = fd;
        ops[i].iov = &iov[i];
        ops[i].iovcnt = 1;
        ops[i].off = (off_t)i * BS;
        ops[i].sync = i % 2;
        ops[i].cb = op_cb;
        ops[i].arg = &c;
        st_io_submit(io, &ops[i]);
    }
    /* Nothing runs before poll: completions belong to this thread. */
    CU_ASSERT_EQUAL(c.done, 0);
    CU_ASSERT_EQUAL(st_io_inflight(io), N);
    struct pollfd p = {st_io_fd(io), POLLIN, 0};
    CU_ASSERT(poll(&p, 1, 5000) == 1);
    while (c.done < N)
        st_io_wait(io, 100);
    CU_ASSERT_EQUAL(c.res, BS);
    CU_ASSERT_EQUAL(c.wrong_thread, 0);
    CU_ASSERT_EQUAL(st_io_inflight(io), 0);

    /* Read it back. */
    uint8_t *rb = NULL;
    CU_ASSERT_FATAL(posix_memalign((void **)&rb, 4096, N * BS) == 0);
    st_op r = {0};
    r.kind = ST_OP_READ;
    r.fd = fd;
    r.buf = rb;
    r.len = N * BS;
    r.cb = op_cb;
    r.arg = &c;
    st_io_submit(io, &r);
    while (c.done < N + 1)
        st_io_wait(io, 100);
    CU_ASSERT_EQUAL(c.res, N * BS);
    CU_ASSERT(memcmp(rb, buf, N * BS) == 0);

    /* Sync alone, a background call, and an error. */
    st_op s = {0};
    s.kind = ST_OP_SYNC;
    s.fd = fd;
    s.cb = op_cb;
    s.arg = &c;
    st_io_submit(io, &s);
    int v = 0;
    st_op call = {0};
    call.kind = ST_OP_CALL;
    call.fn = call_fn;
    call.fn_arg = &v;
    call.cb = op_cb;
    call.arg = &c;
    st_io_submit(io, &call);
    while (c.done < N + 3)
        st_io_wait(io, 100);
    CU_ASSERT_EQUAL(v, 42);
    CU_ASSERT_EQUAL(call.res, 7);
    CU_ASSERT_EQUAL(s.res, 0);
    CU_ASSERT_EQUAL(c.wrong_thread, 0);

    st_op bad = {0};
    struct iovec biov = {buf, BS};
    bad.kind = ST_OP_WRITE;
    bad.fd = fd;
    bad.iov = &biov;
    bad.iovcnt = 1;
    bad.off = 100; /* not block aligned: O_DIRECT refuses */
    bad.sync = 1;
    bad.cb = op_cb;
    bad.arg = &c;
    st_io_submit(io, &bad);
    while (c.done < N + 4)
        st_io_wait(io, 100);
    CU_ASSERT_EQUAL(bad.res, -EINVAL);

    close(fd);
    free(buf);
    free(rb);
    st_io_destroy(io);
    tu_rmrf(dir);
    free(dir);
}

static void test_uring(void)
{
    run_ops(0);
}
static void test_threads(void)
{
    run_ops(1);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("io", NULL, NULL);
    CU_add_test(s, "io_uring", test_uring);
    CU_add_test(s, "threads", test_threads);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

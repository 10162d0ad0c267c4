/*
 * io.c — the asynchronous I/O engine behind st_io.h.
 *
 * Owns: the io_uring instance or the fallback helper threads, the background
 * thread for blocking metadata calls, the completion list and the eventfd.
 *
 * Must not: interpret the data it moves, retry on its own (the log decides
 * what a failed write means), or run a completion callback anywhere but in
 * st_io_poll() on the owning thread — callbacks mutate shard-owned state.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifdef ST_HAVE_URING
#include <liburing.h>
#endif

#include "internal.h"
#include "io_internal.h"

/* A FIFO of ops protected by its owner's mutex. */
typedef struct op_queue {
    st_op *head, *tail;
} op_queue;

static void q_push(op_queue *q, st_op *op)
{
    op->next = NULL;
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
}

static st_op *q_pop(op_queue *q)
{
    st_op *op = q->head;
    if (op) {
        q->head = op->next;
        if (!q->head)
            q->tail = NULL;
    }
    return op;
}

struct st_io {
    int efd;
    int use_uring;
    int uring_status;
#ifdef ST_HAVE_URING
    struct io_uring ring;
    op_queue backlog; /* ops that found the submission queue full */
#endif
    unsigned inflight;
    void *fdcache; /* fdcache.c's, freed with the st_io */

    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* data ops for the fallback workers */
    pthread_cond_t bg_cv;   /* calls for the background thread */
    op_queue work;
    op_queue bg;
    op_queue done;
    int stopping;
    unsigned nworkers;
    pthread_t *workers;
    pthread_t bg_thread;
};

void st_io_config_default(st_io_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->uring_entries = 256;
    cfg->helper_threads = 2;
}

static void signal_efd(st_io *io)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the reader will wake. */
    ssize_t n = write(io->efd, &one, sizeof(one));
    (void)n;
}

static void complete_from_thread(st_io *io, st_op *op)
{
    pthread_mutex_lock(&io->mu);
    q_push(&io->done, op);
    pthread_mutex_unlock(&io->mu);
    signal_efd(io);
}

/* Blocking execution of one data op, as the fallback workers do it. */
static void run_blocking(st_op *op)
{
    switch (op->kind) {
    case ST_OP_WRITE: {
        size_t total = 0, done = 0;
        for (int i = 0; i < op->iovcnt; i++)
            total += op->iov[i].iov_len;
        /* Walk the iovec by hand so a short write continues where it stopped. */
        int idx = 0;
        size_t in_first = 0;
        long rc = 0;
        while (done < total) {
            struct iovec tmp[64];
            int n = 0;
            for (int i = idx; i < op->iovcnt && n < 64; i++, n++) {
                tmp[n] = op->iov[i];
                if (i == idx) {
                    tmp[n].iov_base = (char *)tmp[n].iov_base + in_first;
                    tmp[n].iov_len -= in_first;
                }
            }
            ssize_t w = pwritev(op->fd, tmp, n, op->off + (off_t)done);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rc = -errno;
                break;
            }
            if (w == 0) {
                rc = -ENOSPC;
                break;
            }
            done += (size_t)w;
            size_t adv = (size_t)w;
            while (adv > 0) {
                size_t left = op->iov[idx].iov_len - in_first;
                if (adv >= left) {
                    adv -= left;
                    idx++;
                    in_first = 0;
                } else {
                    in_first += adv;
                    adv = 0;
                }
            }
        }
        if (rc == 0 && op->sync && fdatasync(op->fd) != 0)
            rc = -errno;
        op->res = rc ? rc : (long)total;
        break;
    }
    case ST_OP_SYNC:
        op->res = fdatasync(op->fd) == 0 ? 0 : -errno;
        break;
    case ST_OP_READ: {
        size_t got = 0;
        long rc = 0;
        while (got < op->len) {
            ssize_t r = pread(op->fd, (char *)op->buf + got, op->len - got, op->off + (off_t)got);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                rc = -errno;
                break;
            }
            if (r == 0)
                break;
            got += (size_t)r;
            /* O_DIRECT reads stop short at EOF in whole blocks; one more call
             * would just return 0, so stop on any short block-aligned read. */
            if ((got & 4095) != 0)
                break;
        }
        op->res = rc ? rc : (long)got;
        break;
    }
    case ST_OP_CALL:
        op->res = op->fn(op->fn_arg);
        break;
    }
}

static void *worker_main(void *p)
{
    st_io *io = p;
    pthread_mutex_lock(&io->mu);
    for (;;) {
        st_op *op = q_pop(&io->work);
        if (!op) {
            if (io->stopping)
                break;
            pthread_cond_wait(&io->work_cv, &io->mu);
            continue;
        }
        pthread_mutex_unlock(&io->mu);
        run_blocking(op);
        complete_from_thread(io, op);
        pthread_mutex_lock(&io->mu);
    }
    pthread_mutex_unlock(&io->mu);
    return NULL;
}

static void *bg_main(void *p)
{
    st_io *io = p;
    pthread_mutex_lock(&io->mu);
    for (;;) {
        st_op *op = q_pop(&io->bg);
        if (!op) {
            if (io->stopping)
                break;
            pthread_cond_wait(&io->bg_cv, &io->mu);
            continue;
        }
        pthread_mutex_unlock(&io->mu);
        run_blocking(op);
        complete_from_thread(io, op);
        pthread_mutex_lock(&io->mu);
    }
    pthread_mutex_unlock(&io->mu);
    return NULL;
}

#ifdef ST_HAVE_URING
/* The low bit of user_data marks the fdatasync half of a linked write+sync. */
#define SYNC_TAG 1u

static int uring_prep(st_io *io, st_op *op)
{
    unsigned need = (op->kind == ST_OP_WRITE && op->sync) ? 2 : 1;
    if (io_uring_sq_space_left(&io->ring) < need) {
        io_uring_submit(&io->ring);
        if (io_uring_sq_space_left(&io->ring) < need)
            return -EBUSY;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
    op->res_sync = 0;
    switch (op->kind) {
    case ST_OP_WRITE:
        op->total = 0;
        for (int i = 0; i < op->iovcnt; i++)
            op->total += op->iov[i].iov_len;
        io_uring_prep_writev(sqe, op->fd, op->iov, (unsigned)op->iovcnt, (uint64_t)op->off);
        io_uring_sqe_set_data(sqe, op);
        op->pending = 1;
        if (op->sync) {
            /* Linked: the sync starts only after the write succeeded, so one
             * submission covers the whole flush cycle. */
            sqe->flags |= IOSQE_IO_LINK;
            struct io_uring_sqe *s2 = io_uring_get_sqe(&io->ring);
            io_uring_prep_fsync(s2, op->fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(s2, (uint64_t)(uintptr_t)op | SYNC_TAG);
            op->pending = 2;
        }
        break;
    case ST_OP_SYNC:
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data(sqe, op);
        op->pending = 1;
        break;
    case ST_OP_READ:
        io_uring_prep_read(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)op->off);
        io_uring_sqe_set_data(sqe, op);
        op->pending = 1;
        break;
    case ST_OP_CALL:
        ST_ASSERT(0, "a call op reached the ring (st_io_submit routes them to the background thread)");
    }
    return 0;
}

static void uring_flush_backlog(st_io *io)
{
    int queued = 0;
    while (io->backlog.head) {
        if (uring_prep(io, io->backlog.head) != 0)
            break;
        q_pop(&io->backlog);
        queued = 1;
    }
    if (queued)
        io_uring_submit(&io->ring);
}

/* Returns the op when its last CQE arrived, with op->res final. */
static st_op *uring_cqe(struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    st_op *op = (st_op *)(uintptr_t)(ud & ~(uint64_t)SYNC_TAG);
    int res = cqe->res;
    if (ud & SYNC_TAG) {
        op->res_sync = res;
    } else if (op->kind == ST_OP_WRITE) {
        /* A short O_DIRECT write to a regular file means no space (or a
         * file-size limit); the log rewrites the range later. */
        op->res = res < 0 ? res : ((size_t)res < op->total ? -ENOSPC : res);
    } else {
        op->res = res;
    }
    if (--op->pending > 0)
        return NULL;
    if (op->kind == ST_OP_WRITE && op->sync && op->res >= 0 && op->res_sync < 0)
        op->res = op->res_sync == -ECANCELED ? -EIO : op->res_sync;
    return op;
}
#endif

void st_io_submit(st_io *io, st_op *op)
{
    io->inflight++;
    op->next = NULL;
    if (op->kind == ST_OP_CALL) {
        pthread_mutex_lock(&io->mu);
        q_push(&io->bg, op);
        pthread_cond_signal(&io->bg_cv);
        pthread_mutex_unlock(&io->mu);
        return;
    }
#ifdef ST_HAVE_URING
    if (io->use_uring) {
        if (io->backlog.head || uring_prep(io, op) != 0)
            q_push(&io->backlog, op);
        else
            io_uring_submit(&io->ring);
        return;
    }
#endif
    pthread_mutex_lock(&io->mu);
    q_push(&io->work, op);
    pthread_cond_signal(&io->work_cv);
    pthread_mutex_unlock(&io->mu);
}

int st_io_poll(st_io *io)
{
    uint64_t cnt;
    ssize_t n = read(io->efd, &cnt, sizeof(cnt));
    (void)n;
    int ran = 0;
#ifdef ST_HAVE_URING
    if (io->use_uring) {
        for (;;) {
            struct io_uring_cqe *cqe;
            if (io_uring_peek_cqe(&io->ring, &cqe) != 0)
                break;
            st_op *op = uring_cqe(cqe);
            io_uring_cqe_seen(&io->ring, cqe);
            if (op) {
                io->inflight--;
                op->cb(op);
                ran++;
            }
        }
        uring_flush_backlog(io);
    }
#endif
    pthread_mutex_lock(&io->mu);
    st_op *list = io->done.head;
    io->done.head = io->done.tail = NULL;
    pthread_mutex_unlock(&io->mu);
    while (list) {
        st_op *op = list;
        list = op->next;
        io->inflight--;
        op->cb(op);
        ran++;
    }
    return ran;
}

int st_io_wait(st_io *io, int timeout_ms)
{
    struct pollfd pfd = {.fd = io->efd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);
    if (r < 0 && errno != EINTR)
        return -errno;
    return st_io_poll(io);
}

int st_io_create(const st_io_config *cfg_in, st_io **out)
{
    st_io_config cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        st_io_config_default(&cfg);
    const char *force = getenv("ST_IO_FORCE_THREAD");
    if (force && *force && strcmp(force, "0") != 0)
        cfg.force_thread = 1;
    if (cfg.uring_entries == 0)
        cfg.uring_entries = 256;
    if (cfg.helper_threads == 0)
        cfg.helper_threads = 2;

    st_io *io = calloc(1, sizeof(*io));
    if (!io)
        return -ENOMEM;
    io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (io->efd < 0) {
        int e = -errno;
        free(io);
        return e;
    }
    pthread_mutex_init(&io->mu, NULL);
    pthread_cond_init(&io->work_cv, NULL);
    pthread_cond_init(&io->bg_cv, NULL);

    io->uring_status = -ENOTSUP;
#ifdef ST_HAVE_URING
    if (!cfg.force_thread) {
        int rc = io_uring_queue_init(cfg.uring_entries, &io->ring, 0);
        if (rc == 0) {
            struct io_uring_probe *p = io_uring_get_probe_ring(&io->ring);
            int ok = p && io_uring_opcode_supported(p, IORING_OP_WRITEV) &&
                     io_uring_opcode_supported(p, IORING_OP_READ) &&
                     io_uring_opcode_supported(p, IORING_OP_FSYNC);
            if (p)
                io_uring_free_probe(p);
            if (ok && io_uring_register_eventfd(&io->ring, io->efd) == 0) {
                io->use_uring = 1;
                io->uring_status = 0;
            } else {
                io_uring_queue_exit(&io->ring);
                io->uring_status = -ENOTSUP;
            }
        } else {
            io->uring_status = rc;
        }
    }
#endif
    io->nworkers = io->use_uring ? 0 : cfg.helper_threads;
    if (io->nworkers) {
        io->workers = calloc(io->nworkers, sizeof(pthread_t));
        if (!io->workers) {
            st_io_destroy(io);
            return -ENOMEM;
        }
    }
    for (unsigned i = 0; i < io->nworkers; i++) {
        int rc = pthread_create(&io->workers[i], NULL, worker_main, io);
        if (rc != 0) {
            io->nworkers = i;
            st_io_destroy(io);
            return -rc;
        }
    }
    int rc = pthread_create(&io->bg_thread, NULL, bg_main, io);
    if (rc != 0) {
        io->bg_thread = 0;
        st_io_destroy(io);
        return -rc;
    }
    *out = io;
    return 0;
}

void st_io_destroy(st_io *io)
{
    if (!io)
        return;
    while (io->inflight > 0)
        st_io_wait(io, 100);
    pthread_mutex_lock(&io->mu);
    io->stopping = 1;
    pthread_cond_broadcast(&io->work_cv);
    pthread_cond_broadcast(&io->bg_cv);
    pthread_mutex_unlock(&io->mu);
    for (unsigned i = 0; i < io->nworkers; i++)
        pthread_join(io->workers[i], NULL);
    if (io->bg_thread)
        pthread_join(io->bg_thread, NULL);
    free(io->workers);
#ifdef ST_HAVE_URING
    if (io->use_uring)
        io_uring_queue_exit(&io->ring);
#endif
    pthread_mutex_destroy(&io->mu);
    pthread_cond_destroy(&io->work_cv);
    pthread_cond_destroy(&io->bg_cv);
    close(io->efd);
    free(io->fdcache);
    free(io);
}

void **st_io_fdcache_slot(st_io *io)
{
    return &io->fdcache;
}

int st_io_fd(const st_io *io)
{
    return io->efd;
}
unsigned st_io_inflight(const st_io *io)
{
    return io->inflight;
}
int st_io_uses_uring(const st_io *io)
{
    return io->use_uring;
}
int st_io_uring_status(const st_io *io)
{
    return io->uring_status;
}
const char *st_io_backend_name(const st_io *io)
{
    return io->use_uring ? "io_uring" : "threads";
}

/*
 * io_internal.h — the operation record submitted to an st_io (storage-private).
 *
 * Owns: the st_op layout shared by io.c and its users inside storage/.
 * Must not: be included outside storage/.
 */
#ifndef ST_IO_INTERNAL_H
#define ST_IO_INTERNAL_H

#include <sys/types.h>
#include <sys/uio.h>

#include "st_io.h"

enum st_op_kind {
    ST_OP_WRITE, /* pwritev of iov at off, then fdatasync when sync != 0 */
    ST_OP_SYNC,  /* fdatasync only */
    ST_OP_READ,  /* pread of len bytes into buf at off */
    ST_OP_CALL,  /* fn(fn_arg) on the background thread; res = its return */
};

typedef struct st_op st_op;
typedef void (*st_op_cb)(st_op *op);

struct st_op {
    enum st_op_kind kind;
    int fd;
    int sync;
    const struct iovec *iov;
    int iovcnt;
    off_t off;
    void *buf;
    size_t len;
    long (*fn)(void *fn_arg);
    void *fn_arg;
    /* Bytes transferred (write: all of them on success) or -errno. */
    long res;
    st_op_cb cb;
    void *arg;
    /* io.c private */
    st_op *next;
    int pending;
    long res_sync;
    size_t total;
};

/* The shard's open-file budget, kept here because an st_io is the one
 * per-shard object of storage/; io.c only frees it. */
void **st_io_fdcache_slot(st_io *io);

/* Queues op; op->cb(op) runs later from st_io_poll on the owning thread.
 * Never fails: when the ring is full the op waits in a backlog. */
void st_io_submit(st_io *io, st_op *op);

#endif

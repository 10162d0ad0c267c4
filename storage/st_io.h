/*
 * st_io.h — the per-shard asynchronous disk I/O engine of the storage layer.
 *
 * Owns: one io_uring (when the kernel allows it) or a pool of helper threads
 * (when it does not, or when forced), one background thread for blocking
 * metadata work (open, ftruncate, unlink, index and snapshot files,
 * compaction), and the eventfd through which every completion is announced.
 *
 * Must not: run a completion callback on any thread but the one calling
 * st_io_poll(), know about logs or segments, or block the caller of
 * st_io_submit() on the disk.
 *
 * Use: one st_io per shard. Register st_io_fd() for reading in the shard's
 * event loop; when it fires call st_io_poll(), which runs the completion
 * callbacks on the calling thread. An st_io is not thread-safe: every call but
 * the internal workers' comes from its owning thread.
 */
#ifndef ST_IO_H
#define ST_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_io st_io;

typedef struct st_io_config {
    /* 1: never try io_uring (also forced by the environment variable
     * ST_IO_FORCE_THREAD=1), so the fallback path can be tested. */
    int force_thread;
    unsigned uring_entries;  /* submission queue size; 0 = 256 */
    unsigned helper_threads; /* workers for the fallback path; 0 = 2 */
} st_io_config;

void st_io_config_default(st_io_config *cfg);

/* Returns 0 or a negative errno. Blocking (startup only). */
int st_io_create(const st_io_config *cfg, st_io **out);

/* Waits for every operation still in flight (running their callbacks), then
 * frees everything. Logs using this st_io must be closed first. */
void st_io_destroy(st_io *io);

/* Readable when completions are waiting. */
int st_io_fd(const st_io *io);

/* Runs the callbacks of every finished operation on the calling thread.
 * Never blocks. Returns how many callbacks ran. */
int st_io_poll(st_io *io);

/* Blocks until a completion is announced or timeout_ms passes (-1: no
 * limit), then polls. For startup, shutdown, tests and tools — never on a
 * shard's event loop. Returns the number of callbacks run, or -errno. */
int st_io_wait(st_io *io, int timeout_ms);

/* Operations submitted and not yet completed. */
unsigned st_io_inflight(const st_io *io);

/* 1 when the data path uses io_uring, 0 for the helper-thread fallback. */
int st_io_uses_uring(const st_io *io);
const char *st_io_backend_name(const st_io *io);

/* Why io_uring was not used (0 when it is, or -errno of io_uring_queue_init,
 * or -ENOTSUP when the build lacks liburing or it was forced off). */
int st_io_uring_status(const st_io *io);

#endif

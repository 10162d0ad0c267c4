/*
 * segment.c — one segment's files and per-batch bookkeeping, plus the small
 * blocking file helpers the rest of storage/ shares.
 *
 * Owns: segment lifetime (reference counted: reads in flight keep a deleted
 * segment's descriptor open), naming (20-digit base offset), opening with
 * O_DIRECT or its buffered fallback, sealing (final size, index files) and
 * unlinking, and the segment's aborted transactions with their Kafka-format
 * .txnindex file (encoding, atomic write, validating load).
 *
 * Must not: be called on a shard thread for anything that blocks — opening,
 * sealing, unlinking and the file helpers run at startup, at shutdown or on
 * st_io's background thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static void default_line(int level, const char *msg)
{
    static const char *names[] = {"error", "warn", "info"};
    fprintf(stderr, "storage %s: %s\n", names[level < 0 || level > 2 ? 0 : level], msg);
}

static st_log_line_fn line_fn = default_line;

void st_set_log_line(st_log_line_fn fn)
{
    line_fn = fn ? fn : default_line;
}

void st_logf(int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    line_fn(level, buf);
}

void st_assert_fail(const char *what, const char *expr, const char *file, int line)
{
    st_logf(ST_LL_ERROR, "storage invariant broken: %s (%s at %s:%d)", what, expr, file, line);
    abort();
}

st_segment *st_segment_new(const char *dir, int64_t base)
{
    st_segment *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    size_t n = strlen(dir) + 32;
    s->path = malloc(n);
    if (!s->path) {
        free(s);
        return NULL;
    }
    snprintf(s->path, n, "%s/%020" PRId64 ".log", dir, base);
    s->base = base;
    s->next_offset = base;
    s->fd = -1;
    s->refs = 1;
    s->max_ts = -1;
    s->max_ts_offset = -1;
    return s;
}

void st_segment_unref(st_segment *s)
{
    if (!s)
        return;
    if (--s->refs > 0) {
        /* Back to the log's reference only: its file may be closed for an
         * open waiting for a slot. */
        if (s->refs == 1 && s->fdc && s->fdc->wait_head)
            st_fdc_pump(s->fdc);
        return;
    }
    st_fdc_remove(s);
    if (s->fd >= 0)
        close(s->fd);
    st_index_free(&s->ix);
    free(s->txn);
    free(s->path);
    free(s);
}

int st_segment_open_fd(const char *path, int create, int *direct)
{
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    int fd = open(path, flags | O_DIRECT, 0644);
    *direct = 1;
    if (fd < 0 && errno == EINVAL) {
        static int warned;
        if (!warned++)
            st_logf(ST_LL_WARN, "O_DIRECT refused for %s; using buffered writes + fdatasync", path);
        fd = open(path, flags, 0644);
        *direct = 0;
    }
    if (fd < 0)
        return -errno;
    if (create) {
        /* The new name must survive a crash before any acked data lands in it. */
        char *dir = strdup(path);
        if (!dir) {
            close(fd);
            return -ENOMEM;
        }
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        int rc = st_fsync_dir(dir);
        free(dir);
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    return fd;
}

int st_segment_open_file(st_segment *s, int create)
{
    int direct = 1;
    int fd = st_segment_open_fd(s->path, create, &direct);
    if (fd < 0)
        return fd;
    s->fd = fd;
    s->direct = direct;
    s->created = 1;
    return 0;
}

void st_segment_note_batch(st_segment *s, const kp_batch_header *h, uint32_t pos, uint32_t size,
                           uint32_t interval, int force_index)
{
    uint32_t rel = (uint32_t)(h->base_offset - s->base);
    int indexed = 0;
    if (force_index || s->bytes_since_index >= interval) {
        /* Position 0 needs no entry: a lookup with no entry starts there. */
        if (pos > 0)
            indexed = st_index_add(&s->ix, rel, pos) == 0;
        s->bytes_since_index = 0;
    }
    s->bytes_since_index += size;
    if (h->max_timestamp > s->max_ts) {
        s->max_ts = h->max_timestamp;
        s->max_ts_offset = h->base_offset + h->last_offset_delta;
    }
    /* A time entry at every offset entry where the maximum grew, so the
     * maximum of a segment is its last time entry or lies in the batches
     * after its last offset entry (which recovery walks anyway). */
    if ((indexed || s->ix.tn == 0) && s->max_ts >= 0 &&
        (s->ix.tn == 0 || s->max_ts > s->ix.t[s->ix.tn - 1].ts))
        st_index_add_time(&s->ix, s->max_ts, (uint32_t)(s->max_ts_offset - s->base));
    s->next_offset = h->base_offset + h->last_offset_delta + 1;
    s->size = (uint64_t)pos + size;
}

int st_segment_seal_files(st_segment *s)
{
    /* O_DIRECT writes leave the last block zero-padded; give the file its
     * exact length so other tools see a clean segment. A descriptor the
     * open-file budget closed is not reopened for this: the path will do. */
    if (s->fd >= 0 ? ftruncate(s->fd, (off_t)s->size) != 0
                   : (s->created && truncate(s->path, (off_t)s->size) != 0))
        return -errno;
    if (s->size == 0 && s->ix.n == 0 && s->ix.tn == 0)
        return 0; /* an empty segment needs no index (recovery expects none) */
    return st_index_save(&s->ix, s->path);
}

void st_segment_unlink_files(const char *log_path)
{
    size_t n = strlen(log_path);
    char *p = malloc(n + 16);
    if (!p)
        return;
    unlink(log_path);
    static const char *exts[] = {".index", ".timeindex", ".txnindex"};
    for (size_t i = 0; i < 3; i++) {
        memcpy(p, log_path, n - 4);
        strcpy(p + n - 4, exts[i]);
        unlink(p);
    }
    free(p);
}

int st_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int st_write_file_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[4096], dst[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= sizeof(tmp) ||
        (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    const uint8_t *p = data;
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = -errno;
    if (rc == 0)
        rc = st_fsync_dir(dir);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int st_write_file_nosync(const char *dir, const char *name, const void *data, size_t len)
{
    /* In place: a temporary file is a new inode each time, and creating
     * inodes is what a shutdown of 100,000 partitions spent its time on
     * (ext4's search for a free one). */
    char dst[4096];
    if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst))
        return -ENAMETOOLONG;
    int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    const uint8_t *p = data;
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        done += (size_t)w;
    }
    close(fd);
    return rc;
}

int st_read_small_file(const char *path, void *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = read(fd, buf, cap);
    int e = errno;
    close(fd);
    if (r < 0)
        return -e;
    *len = (size_t)r;
    return 0;
}

/* ---- txnindex -------------------------------------------------------------- */

int st_segment_reserve_txn(st_segment *s)
{
    return st_grow((void **)&s->txn, &s->txncap, s->ntxn + 1, sizeof(*s->txn), 4);
}

int st_segment_add_txn(st_segment *s, const st_aborted_txn *t)
{
    if (st_segment_reserve_txn(s) != 0)
        return -ENOMEM;
    ST_ASSERT(s->ntxn == 0 || s->txn[s->ntxn - 1].last_offset < t->last_offset,
              "aborted transactions of a segment out of marker order");
    ST_ASSERT(t->last_offset >= s->base, "aborted transaction filed under a later segment");
    s->txn[s->ntxn++] = *t;
    return 0;
}

void st_segment_truncate_txn(st_segment *s, int64_t offset)
{
    while (s->ntxn > 0 && s->txn[s->ntxn - 1].last_offset >= offset)
        s->ntxn--;
}

uint8_t *st_txnindex_encode(const st_aborted_txn *e, size_t n)
{
    uint8_t *b = malloc(n ? n * ST_TXN_ENTRY : 1);
    if (!b)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = b + i * ST_TXN_ENTRY;
        kp_put_be16(p, 0);
        kp_put_be64(p + 2, (uint64_t)e[i].producer_id);
        kp_put_be64(p + 10, (uint64_t)e[i].first_offset);
        kp_put_be64(p + 18, (uint64_t)e[i].last_offset);
        kp_put_be64(p + 26, (uint64_t)e[i].last_stable_offset);
    }
    return b;
}

/* "<dir>/<base>.txnindex" split into the directory and the file name, as
 * st_write_file_atomic wants them. */
static int txnindex_name(const char *log_path, char *dir, size_t dcap, char *name, size_t ncap)
{
    const char *slash = strrchr(log_path, '/');
    size_t n = strlen(log_path);
    if (!slash || n < 4 || (size_t)(slash - log_path) >= dcap ||
        (size_t)(log_path + n - 4 - slash) + 10 > ncap)
        return -ENAMETOOLONG;
    memcpy(dir, log_path, (size_t)(slash - log_path));
    dir[slash - log_path] = 0;
    size_t bl = (size_t)(log_path + n - 4 - (slash + 1));
    memcpy(name, slash + 1, bl);
    memcpy(name + bl, ".txnindex", 10);
    return 0;
}

int st_txnindex_write(const char *log_path, const uint8_t *bytes, size_t len, int durable)
{
    char dir[4096], name[256], path[4352];
    int rc = txnindex_name(log_path, dir, sizeof(dir), name, sizeof(name));
    if (rc < 0)
        return rc;
    if (len == 0) {
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (unlink(path) != 0)
            return errno == ENOENT ? 0 : -errno;
        return durable ? st_fsync_dir(dir) : 0;
    }
    return durable ? st_write_file_atomic(dir, name, bytes, len)
                   : st_write_file_nosync(dir, name, bytes, len);
}

int st_txnindex_load(st_segment *s)
{
    char dir[4096], name[256], path[4352];
    int rc = txnindex_name(s->path, dir, sizeof(dir), name, sizeof(name));
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    s->ntxn = 0;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (st.st_size % ST_TXN_ENTRY != 0 || st.st_size > (off_t)ST_MAX_ABORTED_TXNS * ST_TXN_ENTRY)
        return ST_E_STORAGE;
    size_t len = 0, size = (size_t)st.st_size;
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        return -ENOMEM;
    rc = st_read_small_file(path, b, size, &len);
    if (rc == 0 && len != size)
        rc = ST_E_STORAGE;
    for (size_t i = 0; rc == 0 && i < len / ST_TXN_ENTRY; i++) {
        const uint8_t *p = b + i * ST_TXN_ENTRY;
        st_aborted_txn t = {(int64_t)kp_be64(p + 2), (int64_t)kp_be64(p + 10), (int64_t)kp_be64(p + 18),
                            (int64_t)kp_be64(p + 26)};
        /* Never trust bytes read: a bad entry is a bad file. */
        if (kp_be16(p) != 0 || t.first_offset > t.last_offset || t.last_offset < s->base ||
            (s->ntxn > 0 && s->txn[s->ntxn - 1].last_offset >= t.last_offset))
            rc = ST_E_STORAGE;
        else
            rc = st_segment_add_txn(s, &t);
    }
    free(b);
    if (rc != 0)
        s->ntxn = 0;
    return rc;
}

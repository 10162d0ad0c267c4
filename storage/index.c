/*
 * index.c — a segment's sparse offset index and time index.
 *
 * Owns: the in-memory entry arrays, their lookups, and the Kafka-format
 * .index (4-byte relative offset, 4-byte position) and .timeindex (8-byte
 * timestamp, 4-byte relative offset) files, all big-endian.
 *
 * Must not: read the .log (recovery rebuilds indexes from it) or trust an
 * index file: a file that is not consistent with its segment is reported so
 * the caller rebuilds it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void st_index_free(st_index *ix)
{
    free(ix->e);
    free(ix->t);
    memset(ix, 0, sizeof(*ix));
}

void st_index_reset(st_index *ix)
{
    ix->n = 0;
    ix->tn = 0;
}

int st_index_add(st_index *ix, uint32_t rel, uint32_t pos)
{
    /* Entries must grow strictly in both keys, or binary search breaks. */
    if (ix->n && (ix->e[ix->n - 1].rel >= rel || ix->e[ix->n - 1].pos >= pos))
        return 0;
    if (st_grow((void **)&ix->e, &ix->cap, ix->n + 1, sizeof(*ix->e), 64))
        return -ENOMEM;
    ix->e[ix->n++] = (st_index_entry){rel, pos};
    return 0;
}

int st_index_add_time(st_index *ix, int64_t ts, uint32_t rel)
{
    if (ix->tn && (ix->t[ix->tn - 1].ts >= ts || ix->t[ix->tn - 1].rel >= rel))
        return 0;
    if (st_grow((void **)&ix->t, &ix->tcap, ix->tn + 1, sizeof(*ix->t), 64))
        return -ENOMEM;
    ix->t[ix->tn++] = (st_time_entry){ts, rel};
    return 0;
}

uint32_t st_index_lookup(const st_index *ix, uint32_t rel)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ix->e[mid].rel <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? ix->e[lo - 1].pos : 0;
}

uint32_t st_index_lookup_time(const st_index *ix, int64_t ts, uint32_t *pos_out)
{
    size_t lo = 0, hi = ix->tn;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ix->t[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t rel = lo ? ix->t[lo - 1].rel : 0;
    *pos_out = st_index_lookup(ix, rel);
    return rel;
}

void st_index_truncate(st_index *ix, uint32_t pos)
{
    while (ix->n && ix->e[ix->n - 1].pos >= pos)
        ix->n--;
    /* Time entries name offsets, not positions: keep only those whose batch
     * lies before the last surviving offset entry's successor. */
    uint32_t limit = ix->n ? ix->e[ix->n - 1].rel : 0;
    while (ix->tn && ix->t[ix->tn - 1].rel > limit)
        ix->tn--;
}

size_t st_index_memory(const st_index *ix)
{
    return ix->cap * sizeof(st_index_entry) + ix->tcap * sizeof(st_time_entry);
}

static char *sibling(const char *log_path, const char *ext)
{
    size_t n = strlen(log_path);
    /* log_path ends in ".log" */
    char *p = malloc(n + 16);
    if (!p)
        return NULL;
    memcpy(p, log_path, n - 4);
    strcpy(p + n - 4, ext);
    return p;
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size > (64 << 20)) {
        close(fd);
        return ST_E_STORAGE;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            free(buf);
            close(fd);
            return r < 0 ? -errno : ST_E_STORAGE;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = got;
    return 0;
}

int st_index_load(st_index *ix, const char *log_path, uint64_t size)
{
    st_index_reset(ix);
    char *ip = sibling(log_path, ".index");
    char *tp = sibling(log_path, ".timeindex");
    uint8_t *ib = NULL, *tb = NULL;
    size_t il = 0, tl = 0;
    int rc = (!ip || !tp) ? -ENOMEM : 0;
    if (rc == 0)
        rc = read_all(ip, &ib, &il);
    if (rc == 0)
        rc = read_all(tp, &tb, &tl);
    if (rc == 0 && (il % 8 != 0 || tl % 12 != 0))
        rc = ST_E_STORAGE;
    for (size_t i = 0; rc == 0 && i < il; i += 8) {
        uint32_t rel = kp_be32(ib + i), pos = kp_be32(ib + i + 4);
        if (pos >= size || (ix->n && (rel <= ix->e[ix->n - 1].rel || pos <= ix->e[ix->n - 1].pos)))
            rc = ST_E_STORAGE;
        else
            rc = st_index_add(ix, rel, pos);
    }
    for (size_t i = 0; rc == 0 && i < tl; i += 12) {
        int64_t ts = (int64_t)kp_be64(tb + i);
        uint32_t rel = kp_be32(tb + i + 8);
        if (ix->tn && (ts <= ix->t[ix->tn - 1].ts || rel <= ix->t[ix->tn - 1].rel))
            rc = ST_E_STORAGE;
        else
            rc = st_index_add_time(ix, ts, rel);
    }
    if (rc != 0)
        st_index_reset(ix);
    free(ib);
    free(tb);
    free(ip);
    free(tp);
    return rc;
}

static int write_file(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        done += (size_t)w;
    }
    /* No fsync: an index lost in a crash is detected as missing or
     * inconsistent and rebuilt from the .log. */
    close(fd);
    return 0;
}

int st_index_save(const st_index *ix, const char *log_path)
{
    char *ip = sibling(log_path, ".index");
    char *tp = sibling(log_path, ".timeindex");
    uint8_t *ib = malloc(ix->n * 8 + 1);
    uint8_t *tb = malloc(ix->tn * 12 + 1);
    int rc = (!ip || !tp || !ib || !tb) ? -ENOMEM : 0;
    if (rc == 0) {
        for (size_t i = 0; i < ix->n; i++) {
            kp_put_be32(ib + i * 8, ix->e[i].rel);
            kp_put_be32(ib + i * 8 + 4, ix->e[i].pos);
        }
        for (size_t i = 0; i < ix->tn; i++) {
            kp_put_be64(tb + i * 12, (uint64_t)ix->t[i].ts);
            kp_put_be32(tb + i * 12 + 8, ix->t[i].rel);
        }
        rc = write_file(ip, ib, ix->n * 8);
        if (rc == 0)
            rc = write_file(tp, tb, ix->tn * 12);
    }
    free(ib);
    free(tb);
    free(ip);
    free(tp);
    return rc;
}

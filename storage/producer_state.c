/*
 * producer_state.c — idempotent-producer bookkeeping of one partition.
 *
 * Owns: the producer id → (epoch, last 5 batches' sequence ranges and
 * offsets) table, the sequence/epoch checks of Kafka's idempotent producer,
 * and the snapshot format that lets the state survive a restart.
 *
 * Must not: touch files (the log writes and reads snapshots and replays the
 * log tail into this table) or grow without bound: past ST_MAX_PRODUCERS the
 * producer idle the longest is forgotten, exactly as if it had expired.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ST_MAX_PRODUCERS 8192
#define SNAP_MAGIC       0x53545053u /* "STPS" */
#define SNAP_VERSION     1

static size_t slot_of(const st_pstate *ps, int64_t pid)
{
    uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (ps->cap - 1);
}

static st_producer *find(const st_pstate *ps, int64_t pid)
{
    if (!ps->cap)
        return NULL;
    for (size_t i = slot_of(ps, pid);; i = (i + 1) & (ps->cap - 1)) {
        if (!ps->tab[i].used)
            return NULL;
        if (ps->tab[i].pid == pid)
            return &ps->tab[i];
    }
}

static int rehash(st_pstate *ps, size_t ncap)
{
    st_producer *nt = calloc(ncap, sizeof(*nt));
    if (!nt)
        return -ENOMEM;
    st_producer *old = ps->tab;
    size_t ocap = ps->cap;
    ps->tab = nt;
    ps->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].used)
            continue;
        size_t j = slot_of(ps, old[i].pid);
        while (nt[j].used)
            j = (j + 1) & (ncap - 1);
        nt[j] = old[i];
    }
    free(old);
    return 0;
}

/* Backward-shift deletion keeps linear probing free of tombstones. */
static void erase_slot(st_pstate *ps, size_t i)
{
    size_t mask = ps->cap - 1;
    ps->tab[i].used = 0;
    ps->count--;
    for (size_t j = (i + 1) & mask; ps->tab[j].used; j = (j + 1) & mask) {
        size_t home = slot_of(ps, ps->tab[j].pid);
        /* Move j back into the hole when its home is not in (i, j]. */
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            ps->tab[i] = ps->tab[j];
            ps->tab[j].used = 0;
            i = j;
        }
    }
}

static st_producer *insert(st_pstate *ps, int64_t pid)
{
    if (ps->count >= ST_MAX_PRODUCERS) {
        size_t victim = 0;
        int64_t oldest = INT64_MAX;
        for (size_t i = 0; i < ps->cap; i++)
            if (ps->tab[i].used && ps->tab[i].last_ts < oldest) {
                oldest = ps->tab[i].last_ts;
                victim = i;
            }
        erase_slot(ps, victim);
    }
    if ((ps->count + 1) * 2 > ps->cap && rehash(ps, ps->cap ? ps->cap * 2 : 16) != 0)
        return NULL;
    size_t i = slot_of(ps, pid);
    while (ps->tab[i].used)
        i = (i + 1) & (ps->cap - 1);
    memset(&ps->tab[i], 0, sizeof(ps->tab[i]));
    ps->tab[i].used = 1;
    ps->tab[i].pid = pid;
    ps->count++;
    return &ps->tab[i];
}

void st_pstate_free(st_pstate *ps)
{
    free(ps->tab);
    memset(ps, 0, sizeof(*ps));
}

static int32_t seq_add(int32_t seq, int32_t n)
{
    /* Sequences wrap from INT32_MAX to 0. */
    int64_t v = (int64_t)seq + n;
    return (int32_t)(v > INT32_MAX ? v - INT32_MAX - 1 : v);
}

int st_pstate_check(const st_pstate *ps, const kp_batch_header *h, int64_t *dup_offset)
{
    if (h->producer_id < 0)
        return 0;
    const st_producer *p = find(ps, h->producer_id);
    if (!p)
        return 0; /* a new producer, or one whose state expired */
    if (h->producer_epoch < p->epoch)
        return ST_E_FENCED;
    if (h->base_sequence < 0)
        return 0; /* control batches carry no sequence */
    if (h->producer_epoch > p->epoch)
        return h->base_sequence == 0 ? 0 : ST_E_OUT_OF_ORDER;
    int32_t last = seq_add(h->base_sequence, h->last_offset_delta);
    for (int i = 0; i < p->nb; i++) {
        if (p->b[i].first_seq == h->base_sequence && p->b[i].last_seq == last) {
            *dup_offset = p->b[i].base_offset;
            return ST_E_DUPLICATE;
        }
    }
    if (p->nb == 0)
        return 0;
    if (h->base_sequence != seq_add(p->b[p->nb - 1].last_seq, 1))
        return ST_E_OUT_OF_ORDER;
    return 0;
}

int st_pstate_update(st_pstate *ps, const kp_batch_header *h, int64_t base_offset)
{
    if (h->producer_id < 0)
        return 0;
    st_producer *p = find(ps, h->producer_id);
    if (!p) {
        p = insert(ps, h->producer_id);
        if (!p)
            return -ENOMEM;
        p->epoch = h->producer_epoch;
    }
    if (h->producer_epoch != p->epoch) {
        p->epoch = h->producer_epoch;
        p->nb = 0;
    }
    p->last_ts = h->max_timestamp;
    if (h->base_sequence < 0)
        return 0;
    if (p->nb == ST_PRODUCER_WINDOW) {
        memmove(&p->b[0], &p->b[1], (ST_PRODUCER_WINDOW - 1) * sizeof(p->b[0]));
        p->nb--;
    }
    p->b[p->nb++] = (st_pbatch){h->base_sequence, seq_add(h->base_sequence, h->last_offset_delta),
                                base_offset, base_offset + h->last_offset_delta};
    return 0;
}

void st_pstate_truncate(st_pstate *ps, int64_t offset)
{
    for (size_t i = 0; i < ps->cap; i++) {
        st_producer *p = &ps->tab[i];
        if (!p->used)
            continue;
        while (p->nb > 0 && p->b[p->nb - 1].base_offset >= offset)
            p->nb--;
    }
}

size_t st_pstate_memory(const st_pstate *ps)
{
    return ps->cap * sizeof(st_producer);
}

#define ENTRY_MAX (8 + 2 + 1 + 8 + ST_PRODUCER_WINDOW * 24)

int st_pstate_serialize(const st_pstate *ps, int64_t offset, uint8_t **out, size_t *len)
{
    size_t cap = 4 + 2 + 8 + 4 + ps->count * ENTRY_MAX + 4;
    uint8_t *b = malloc(cap), *p = b;
    if (!b)
        return -ENOMEM;
    kp_put_be32(p, SNAP_MAGIC);
    kp_put_be16(p + 4, SNAP_VERSION);
    kp_put_be64(p + 6, (uint64_t)offset);
    kp_put_be32(p + 14, (uint32_t)ps->count);
    p += 18;
    for (size_t i = 0; i < ps->cap; i++) {
        const st_producer *e = &ps->tab[i];
        if (!e->used)
            continue;
        kp_put_be64(p, (uint64_t)e->pid);
        kp_put_be16(p + 8, (uint16_t)e->epoch);
        p[10] = (uint8_t)e->nb;
        kp_put_be64(p + 11, (uint64_t)e->last_ts);
        p += 19;
        for (int j = 0; j < e->nb; j++) {
            kp_put_be32(p, (uint32_t)e->b[j].first_seq);
            kp_put_be32(p + 4, (uint32_t)e->b[j].last_seq);
            kp_put_be64(p + 8, (uint64_t)e->b[j].base_offset);
            kp_put_be64(p + 16, (uint64_t)e->b[j].last_offset);
            p += 24;
        }
    }
    kp_put_be32(p, kp_crc32c(0, b, (size_t)(p - b)));
    p += 4;
    *out = b;
    *len = (size_t)(p - b);
    return 0;
}

int st_pstate_deserialize(st_pstate *ps, const uint8_t *b, size_t len, int64_t *offset)
{
    if (len < 22 || kp_be32(b) != SNAP_MAGIC || kp_be16(b + 4) != SNAP_VERSION)
        return ST_E_STORAGE;
    if (kp_crc32c(0, b, len - 4) != kp_be32(b + len - 4))
        return ST_E_STORAGE;
    *offset = (int64_t)kp_be64(b + 6);
    uint32_t n = kp_be32(b + 14);
    const uint8_t *p = b + 18, *end = b + len - 4;
    for (uint32_t i = 0; i < n; i++) {
        if (end - p < 19)
            return ST_E_STORAGE;
        int64_t pid = (int64_t)kp_be64(p);
        int nb = p[10];
        if (nb > ST_PRODUCER_WINDOW || end - p < 19 + nb * 24 || pid < 0)
            return ST_E_STORAGE;
        st_producer *e = find(ps, pid);
        if (!e && !(e = insert(ps, pid)))
            return -ENOMEM;
        e->epoch = (int16_t)kp_be16(p + 8);
        e->nb = nb;
        e->last_ts = (int64_t)kp_be64(p + 11);
        p += 19;
        for (int j = 0; j < nb; j++) {
            e->b[j].first_seq = (int32_t)kp_be32(p);
            e->b[j].last_seq = (int32_t)kp_be32(p + 4);
            e->b[j].base_offset = (int64_t)kp_be64(p + 8);
            e->b[j].last_offset = (int64_t)kp_be64(p + 16);
            p += 24;
        }
    }
    return p == end ? 0 : ST_E_STORAGE;
}

size_t st_pstate_list(const st_pstate *ps, st_producer_info *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->cap; i++) {
        const st_producer *pr = &ps->tab[i];
        if (!pr->used || pr->nb == 0)
            continue;
        if (n < max) {
            out[n].producer_id = pr->pid;
            out[n].epoch = pr->epoch;
            out[n].last_sequence = pr->b[pr->nb - 1].last_seq;
            out[n].last_timestamp = pr->last_ts;
        }
        n++;
    }
    return n;
}

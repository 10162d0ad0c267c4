/*
 * producer_state.c — idempotent-producer bookkeeping of one partition.
 *
 * Owns: the producer id → (epoch, last 5 batches' sequence ranges and
 * offsets, ongoing transaction's first offset, coordinator epoch) table, the
 * sequence/epoch checks of Kafka's idempotent producer and of transaction
 * markers (ProducerAppendInfo), the first-offset-ordered list of ongoing
 * transactions the last stable offset reads, the undo records of changes
 * not yet acked, and the snapshot format that lets the state survive a
 * restart.
 *
 * Must not: touch files (the log writes and reads snapshots and replays the
 * log tail into this table) or grow without bound: past ST_MAX_PRODUCERS the
 * producer idle the longest is forgotten, exactly as if it had expired —
 * never one with an ongoing transaction (Kafka never expires those; they
 * end by marker, the coordinator aborting expired transactions).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ST_MAX_PRODUCERS 8192
#define SNAP_MAGIC       0x53545053u /* "STPS" */
#define SNAP_VERSION     2           /* 2 adds the transaction fields; 1 is still read */

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
        size_t victim = SIZE_MAX;
        int64_t oldest = INT64_MAX;
        for (size_t i = 0; i < ps->cap; i++)
            if (ps->tab[i].used && ps->tab[i].txn_first < 0 && ps->tab[i].last_ts < oldest) {
                oldest = ps->tab[i].last_ts;
                victim = i;
            }
        if (victim != SIZE_MAX)
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
    ps->tab[i].txn_first = -1;
    ps->tab[i].coord_epoch = -1;
    ps->count++;
    return &ps->tab[i];
}

void st_pstate_free(st_pstate *ps)
{
    free(ps->tab);
    free(ps->on);
    free(ps->end);
    free(ps->undo);
    memset(ps, 0, sizeof(*ps));
}

/* ---- ongoing transactions, ordered by first offset ------------------------ */

/* Index of the first entry with first >= off. */
static size_t on_lower(const st_pstate *ps, int64_t off)
{
    size_t lo = 0, hi = ps->non;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ps->on[mid].first < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int on_insert(st_pstate *ps, int64_t first, int64_t pid)
{
    if (st_grow((void **)&ps->on, &ps->oncap, ps->non + 1, sizeof(*ps->on), 16) != 0)
        return -ENOMEM;
    /* Live appends start transactions at growing offsets: the end. */
    size_t i = on_lower(ps, first);
    memmove(&ps->on[i + 1], &ps->on[i], (ps->non - i) * sizeof(*ps->on));
    ps->on[i] = (st_ongoing){first, pid};
    ps->non++;
    return 0;
}

static void on_remove(st_pstate *ps, int64_t first, int64_t pid)
{
    size_t i = on_lower(ps, first);
    ST_ASSERT(i < ps->non && ps->on[i].first == first && ps->on[i].pid == pid,
              "an ongoing transaction is missing from the first-offset list");
    memmove(&ps->on[i], &ps->on[i + 1], (ps->non - i - 1) * sizeof(*ps->on));
    ps->non--;
}

int64_t st_pstate_first_unstable(const st_pstate *ps)
{
    int64_t first = ps->non ? ps->on[0].first : -1;
    for (size_t i = 0; i < ps->nend; i++)
        if (first < 0 || ps->end[i].first < first)
            first = ps->end[i].first;
    return first;
}

/* Sets p's ongoing transaction (first >= 0) or ends it (-1), keeping the
 * ordered list in step. */
static int set_txn(st_pstate *ps, st_producer *p, int64_t first)
{
    if (p->txn_first == first)
        return 0;
    if (first >= 0 && on_insert(ps, first, p->pid) != 0)
        return -ENOMEM;
    if (p->txn_first >= 0)
        on_remove(ps, p->txn_first, p->pid);
    p->txn_first = first;
    return 0;
}

static int push_undo(st_pstate *ps, st_txn_undo u)
{
    if (st_grow((void **)&ps->undo, &ps->undocap, ps->nundo + 1, sizeof(*ps->undo), 16) != 0)
        return -ENOMEM;
    ps->undo[ps->nundo++] = u;
    return 0;
}

int st_pstate_reserve(st_pstate *ps)
{
    if (st_grow((void **)&ps->on, &ps->oncap, ps->non + 1, sizeof(*ps->on), 16) != 0)
        return -ENOMEM;
    if (st_grow((void **)&ps->undo, &ps->undocap, ps->nundo + 1, sizeof(*ps->undo), 16) != 0)
        return -ENOMEM;
    if (st_grow((void **)&ps->end, &ps->endcap, ps->nend + 1, sizeof(*ps->end), 8) != 0)
        return -ENOMEM;
    return 0;
}

void st_pstate_settle(st_pstate *ps, int64_t offset)
{
    size_t e = 0;
    while (e < ps->nend && ps->end[e].marker < offset)
        e++;
    if (e > 0) {
        memmove(ps->end, ps->end + e, (ps->nend - e) * sizeof(*ps->end));
        ps->nend -= e;
    }
    size_t k = 0;
    while (k < ps->nundo && ps->undo[k].offset < offset)
        k++;
    if (k == 0)
        return;
    memmove(ps->undo, ps->undo + k, (ps->nundo - k) * sizeof(*ps->undo));
    ps->nundo -= k;
}

static int32_t seq_add(int32_t seq, int32_t n)
{
    /* Sequences wrap from INT32_MAX to 0. */
    int64_t v = (int64_t)seq + n;
    return (int32_t)(v > INT32_MAX ? v - INT32_MAX - 1 : v);
}

int st_pstate_check(const st_pstate *ps, const kp_batch_header *h, const st_marker *m, int64_t *dup_offset)
{
    if (h->producer_id < 0)
        return 0;
    const st_producer *p = find(ps, h->producer_id);
    if (!p)
        return 0; /* a new producer, or one whose state expired */
    /* Kafka answers INVALID_PRODUCER_EPOCH for data batches and (before
     * transactions v2, whose stricter marker rule the caller applies) for
     * markers alike. */
    if (h->producer_epoch < p->epoch)
        return ST_E_FENCED;
    if (m)
        return m->coord_epoch < p->coord_epoch ? ST_E_COORDINATOR_FENCED : 0;
    if (p->txn_first >= 0 && !(h->attributes & KP_ATTR_TRANSACTIONAL))
        return ST_E_INVALID_TXN_STATE;
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

int st_pstate_update(st_pstate *ps, const kp_batch_header *h, int64_t base_offset, const st_marker *m,
                     int keep_undo, st_aborted_txn *aborted)
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
    if (m) {
        int rc = 0;
        if (keep_undo && push_undo(ps, (st_txn_undo){base_offset, p->pid, p->txn_first, p->coord_epoch}) != 0)
            return -ENOMEM;
        if (p->txn_first >= 0 && m->type == KP_CONTROL_ABORT) {
            /* Kafka's lastStableOffset(completedTxn): the earliest other
             * ongoing transaction, or just past this marker. */
            int64_t lso = base_offset + 1;
            for (size_t i = 0; i < ps->non && i < 2; i++)
                if (ps->on[i].pid != p->pid) {
                    lso = ps->on[i].first;
                    break;
                }
            *aborted = (st_aborted_txn){p->pid, p->txn_first, base_offset, lso};
            rc = 1;
        }
        /* Live: the transaction holds the LSO until its marker is acked
         * (replayed markers are durable). */
        if (keep_undo && p->txn_first >= 0) {
            ST_ASSERT(ps->nend < ps->endcap, "ending-transaction slot reserved before the append");
            ps->end[ps->nend++] = (st_ending){p->txn_first, base_offset};
        }
        /* A marker without an ongoing transaction ends nothing and records
         * no aborted range (Kafka emits no CompletedTxn for it). */
        set_txn(ps, p, -1);
        p->coord_epoch = m->coord_epoch;
        return rc;
    }
    if ((h->attributes & KP_ATTR_TRANSACTIONAL) && p->txn_first < 0) {
        if (keep_undo && push_undo(ps, (st_txn_undo){base_offset, p->pid, -1, p->coord_epoch}) != 0)
            return -ENOMEM;
        if (set_txn(ps, p, base_offset) != 0) {
            if (keep_undo)
                ps->nundo--;
            return -ENOMEM;
        }
    }
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
    while (ps->nend > 0 && ps->end[ps->nend - 1].marker >= offset)
        ps->nend--;
    /* Newest first, so a producer ends with the state before the first
     * change that is undone. */
    while (ps->nundo > 0 && ps->undo[ps->nundo - 1].offset >= offset) {
        st_txn_undo u = ps->undo[--ps->nundo];
        st_producer *p = find(ps, u.pid);
        if (!p && !(p = insert(ps, u.pid)))
            continue; /* out of memory: the transaction is forgotten, as if expired */
        if (set_txn(ps, p, u.prev_first) == 0)
            p->coord_epoch = u.prev_coord;
    }
}

size_t st_pstate_memory(const st_pstate *ps)
{
    return ps->cap * sizeof(st_producer) + ps->oncap * sizeof(st_ongoing) +
           ps->undocap * sizeof(st_txn_undo) + ps->endcap * sizeof(st_ending);
}

#define ENTRY_HEAD 31 /* pid, epoch, nb, last_ts, txn_first, coord_epoch */
#define ENTRY_MAX  (ENTRY_HEAD + ST_PRODUCER_WINDOW * 24)

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
        kp_put_be64(p + 19, (uint64_t)e->txn_first);
        kp_put_be32(p + 27, (uint32_t)e->coord_epoch);
        p += ENTRY_HEAD;
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

static int cmp_ongoing(const void *a, const void *b)
{
    int64_t x = ((const st_ongoing *)a)->first, y = ((const st_ongoing *)b)->first;
    return x < y ? -1 : x > y;
}

int st_pstate_deserialize(st_pstate *ps, const uint8_t *b, size_t len, int64_t *offset)
{
    int version = len >= 6 ? kp_be16(b + 4) : 0;
    if (len < 22 || kp_be32(b) != SNAP_MAGIC || (version != 1 && version != SNAP_VERSION))
        return ST_E_STORAGE;
    size_t head = version == 1 ? 19 : ENTRY_HEAD;
    if (kp_crc32c(0, b, len - 4) != kp_be32(b + len - 4))
        return ST_E_STORAGE;
    *offset = (int64_t)kp_be64(b + 6);
    uint32_t n = kp_be32(b + 14);
    const uint8_t *p = b + 18, *end = b + len - 4;
    for (uint32_t i = 0; i < n; i++) {
        if ((size_t)(end - p) < head)
            return ST_E_STORAGE;
        int64_t pid = (int64_t)kp_be64(p);
        int nb = p[10];
        if (nb > ST_PRODUCER_WINDOW || (size_t)(end - p) < head + (size_t)nb * 24 || pid < 0)
            return ST_E_STORAGE;
        st_producer *e = find(ps, pid);
        if (!e && !(e = insert(ps, pid)))
            return -ENOMEM;
        e->epoch = (int16_t)kp_be16(p + 8);
        e->nb = nb;
        e->last_ts = (int64_t)kp_be64(p + 11);
        if (version >= 2) {
            int64_t first = (int64_t)kp_be64(p + 19);
            if (first < -1 || e->txn_first >= 0)
                return ST_E_STORAGE; /* a negative offset, or a producer listed twice */
            if (first >= 0) {
                /* Sorted once at the end: inserting in hash order would
                 * shift the array for every entry. */
                if (st_pstate_reserve(ps) != 0)
                    return -ENOMEM;
                ps->on[ps->non++] = (st_ongoing){first, pid};
                e->txn_first = first;
            }
            e->coord_epoch = (int32_t)kp_be32(p + 27);
        }
        p += head;
        for (int j = 0; j < nb; j++) {
            e->b[j].first_seq = (int32_t)kp_be32(p);
            e->b[j].last_seq = (int32_t)kp_be32(p + 4);
            e->b[j].base_offset = (int64_t)kp_be64(p + 8);
            e->b[j].last_offset = (int64_t)kp_be64(p + 16);
            p += 24;
        }
    }
    if (p != end)
        return ST_E_STORAGE;
    if (ps->non > 1)
        qsort(ps->on, ps->non, sizeof(*ps->on), cmp_ongoing);
    for (size_t i = 1; i < ps->non; i++)
        if (ps->on[i].first == ps->on[i - 1].first)
            return ST_E_STORAGE; /* two transactions cannot start at one offset */
    return 0;
}

size_t st_pstate_list(const st_pstate *ps, st_producer_info *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->cap; i++) {
        const st_producer *pr = &ps->tab[i];
        /* A producer that only wrote a marker here is listed, as Kafka
         * lists it (its coordinator epoch is known). */
        if (!pr->used || (pr->nb == 0 && pr->txn_first < 0 && pr->coord_epoch < 0))
            continue;
        if (n < max) {
            out[n].producer_id = pr->pid;
            out[n].epoch = pr->epoch;
            out[n].last_sequence = pr->nb ? pr->b[pr->nb - 1].last_seq : -1;
            out[n].last_timestamp = pr->last_ts;
            out[n].coordinator_epoch = pr->coord_epoch;
            out[n].current_txn_start_offset = pr->txn_first;
        }
        n++;
    }
    return n;
}

size_t st_pstate_last_batches(const st_pstate *ps, st_plast *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->cap; i++) {
        const st_producer *pr = &ps->tab[i];
        if (!pr->used)
            continue;
        if (n < max)
            out[n] = (st_plast){pr->pid, pr->nb ? pr->b[pr->nb - 1].last_offset : -1, pr->epoch};
        n++;
    }
    return n;
}

int st_pstate_seed_before(st_pstate *dst, const st_pstate *src, int64_t offset)
{
    for (size_t i = 0; i < src->cap; i++) {
        const st_producer *e = &src->tab[i];
        if (!e->used)
            continue;
        st_producer *p = find(dst, e->pid);
        if (!p && !(p = insert(dst, e->pid)))
            return -ENOMEM;
        p->epoch = e->epoch;
        p->last_ts = e->last_ts;
        p->coord_epoch = e->coord_epoch;
        p->nb = 0;
        for (int j = 0; j < e->nb; j++)
            if (e->b[j].base_offset < offset)
                p->b[p->nb++] = e->b[j];
        /* Open at the snapshot and begun below offset: no marker of this
         * producer lies between offset and the snapshot. */
        if (e->txn_first >= 0 && e->txn_first < offset && set_txn(dst, p, e->txn_first) != 0)
            return -ENOMEM;
    }
    return 0;
}

/*
 * share_partition.c — one share-partition's in-flight records (KIP-932).
 *
 * Owns the state moves of share_partition.h. Must not: read a clock, a log
 * or another shard (pure: the share group on the coordinator shard drives it).
 */
#include "share_partition.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "srv_assert.h"

void srv_sp_init(srv_share_part *sp, int64_t start, int32_t lock_ms, int32_t max_delivery,
                 int32_t max_in_flight)
{
    memset(sp, 0, sizeof(*sp));
    sp->start = sp->end = start;
    sp->lock_ms = lock_ms;
    sp->max_delivery = max_delivery;
    sp->max_in_flight = max_in_flight;
}

void srv_sp_free(srv_share_part *sp)
{
    free(sp->recs);
    sp->recs = NULL;
    sp->cap = 0;
}

static srv_sp_rec *rec(srv_share_part *sp, int64_t off)
{
    SRV_ASSERT(off >= sp->start && off < sp->end,
               "share partition: offset %lld outside in-flight [%lld, %lld)", (long long)off,
               (long long)sp->start, (long long)sp->end);
    return &sp->recs[off - sp->start];
}

/* Finished records at the front leave the window: Kafka's start offset moves
 * to the first record still to be delivered or acknowledged. */
static void advance(srv_share_part *sp)
{
    size_t n = (size_t)(sp->end - sp->start), k = 0;
    while (k < n && (sp->recs[k].state == SRV_SP_ACKNOWLEDGED || sp->recs[k].state == SRV_SP_ARCHIVED))
        k++;
    if (!k)
        return;
    memmove(sp->recs, sp->recs + k, (n - k) * sizeof(*sp->recs));
    sp->start += (int64_t)k;
}

static void give_back(srv_share_part *sp, srv_sp_rec *r)
{
    /* The delivery count was taken at acquisition: at the limit the record
     * is not offered again (Kafka archives it). */
    r->state = r->delivery >= sp->max_delivery ? SRV_SP_ARCHIVED : SRV_SP_AVAILABLE;
    if (r->state == SRV_SP_ARCHIVED)
        sp->archived_at_limit++;
    r->owner = 0;
    r->deadline = 0;
}

int srv_sp_expire(srv_share_part *sp, int64_t now_ms)
{
    int moved = 0;
    for (int64_t o = sp->start; o < sp->end; o++) {
        srv_sp_rec *r = rec(sp, o);
        if (r->state == SRV_SP_ACQUIRED && r->deadline <= now_ms) {
            give_back(sp, r);
            moved++;
        }
    }
    if (moved)
        advance(sp);
    return moved;
}

int64_t srv_sp_next_deadline(const srv_share_part *sp)
{
    int64_t d = -1;
    for (int64_t o = sp->start; o < sp->end; o++) {
        const srv_sp_rec *r = &sp->recs[o - sp->start];
        if (r->state == SRV_SP_ACQUIRED && (d < 0 || r->deadline < d))
            d = r->deadline;
    }
    return d;
}

int64_t srv_sp_read_from(const srv_share_part *sp)
{
    for (int64_t o = sp->start; o < sp->end; o++)
        if (sp->recs[o - sp->start].state == SRV_SP_AVAILABLE)
            return o;
    return sp->end - sp->start >= sp->max_in_flight ? -1 : sp->end;
}

static int grow(srv_share_part *sp, size_t need)
{
    if (need <= sp->cap)
        return 0;
    size_t cap = sp->cap ? sp->cap : 64;
    while (cap < need)
        cap *= 2;
    srv_sp_rec *r = realloc(sp->recs, cap * sizeof(*r));
    if (!r)
        return -1;
    sp->recs = r;
    sp->cap = cap;
    return 0;
}

static int emit(srv_sp_range *out, int nout, int n, int64_t off, uint16_t delivery)
{
    if (n > 0 && out[n - 1].last + 1 == off && out[n - 1].delivery == (int16_t)delivery) {
        out[n - 1].last = off;
        return n;
    }
    if (n >= nout)
        return -1;
    out[n].first = out[n].last = off;
    out[n].delivery = (int16_t)delivery;
    return n + 1;
}

int srv_sp_acquire(srv_share_part *sp, uint32_t owner, int64_t from, int64_t last, int32_t max_records,
                   int64_t now_ms, srv_sp_range *out, int nout)
{
    SRV_ASSERT(owner != 0, "share partition: member serial 0 is reserved for 'nobody'");
    int n = 0;
    int32_t got = 0;
    if (from < sp->start)
        from = sp->start;
    if (max_records <= 0)
        max_records = INT32_MAX;
    int64_t deadline = now_ms + sp->lock_ms;
    for (int64_t o = from; o <= last && got < max_records; o++) {
        if (o >= sp->end) {
            if (sp->end - sp->start >= sp->max_in_flight)
                break;
            if (grow(sp, (size_t)(sp->end - sp->start) + 1) < 0)
                return n ? n : -1;
            sp->recs[sp->end - sp->start] = (srv_sp_rec){SRV_SP_AVAILABLE, 0, 0, 0};
            sp->end++;
        }
        srv_sp_rec *r = rec(sp, o);
        if (r->state != SRV_SP_AVAILABLE)
            continue;
        int k = emit(out, nout, n, o, (uint16_t)(r->delivery + 1));
        if (k < 0)
            break;
        n = k;
        r->state = SRV_SP_ACQUIRED;
        if (r->delivery)
            sp->redeliveries++;
        r->delivery++;
        r->owner = owner;
        r->deadline = deadline;
        got++;
    }
    /* A record appended past end but not acquired (out of ranges) stays
     * Available: the next read starts there. */
    return n;
}

int16_t srv_sp_ack(srv_share_part *sp, uint32_t owner, int64_t first, int64_t last, const int8_t *types,
                   int32_t ntypes, const char **why)
{
    return srv_sp_ack_at(sp, owner, first, last, types, ntypes, -1, why);
}

int16_t srv_sp_ack_at(srv_share_part *sp, uint32_t owner, int64_t first, int64_t last, const int8_t *types,
                      int32_t ntypes, int64_t now_ms, const char **why)
{
    *why = NULL;
    int8_t top = now_ms >= 0 || now_ms == SRV_SP_RENEW_DISABLED ? SRV_ACK_RENEW : SRV_ACK_REJECT;
    int renews = 0;
    /* Offsets are the client's: no negative ones, and the span counted
     * unsigned so that no pair of them can overflow. */
    if (first < 0 || first > last || ntypes <= 0 ||
        (ntypes != 1 && (uint64_t)ntypes != (uint64_t)last - (uint64_t)first + 1))
        return KP_ERR_INVALID_REQUEST;
    for (int32_t i = 0; i < ntypes; i++) {
        if (types[i] < SRV_ACK_GAP || types[i] > top)
            return KP_ERR_INVALID_REQUEST;
        renews |= types[i] == SRV_ACK_RENEW;
    }
    /* Kafka's checks and words (SharePartition): the window's end first,
     * then every record, whole batch or nothing. */
    if (first >= sp->end && last >= sp->start) {
        *why = "Batch record not found. The first offset in request is past acquired records.";
        return KP_ERR_INVALID_REQUEST;
    }
    if (last >= sp->end && last >= sp->start) {
        *why = "Batch record not found. The last offset in request is past acquired records.";
        return KP_ERR_INVALID_REQUEST;
    }
    int64_t from = first > sp->start ? first : sp->start;
    for (int64_t o = from; o <= last; o++) {
        const srv_sp_rec *r = &sp->recs[o - sp->start];
        if (r->state != SRV_SP_ACQUIRED) {
            *why = "The offset cannot be acknowledged. The offset is not acquired.";
            return KP_ERR_INVALID_RECORD_STATE;
        }
        if (r->owner != owner) {
            *why = "Member is not the owner of offset";
            return KP_ERR_INVALID_RECORD_STATE;
        }
    }
    if (renews && now_ms < 0) {
        *why = "Renewing acquisition locks is not enabled for the group.";
        return KP_ERR_INVALID_RECORD_STATE;
    }
    for (int64_t o = from; o <= last; o++) {
        srv_sp_rec *r = rec(sp, o);
        int8_t t = ntypes == 1 ? types[0] : types[o - first];
        SRV_ASSERT(t >= SRV_ACK_GAP && t <= SRV_ACK_RENEW, "acknowledge type %d passed validation", t);
        sp->acks[t]++;
        switch (t) {
        case SRV_ACK_ACCEPT:
            r->state = SRV_SP_ACKNOWLEDGED;
            break;
        case SRV_ACK_RELEASE:
            give_back(sp, r);
            continue;
        case SRV_ACK_RENEW:
            r->deadline = now_ms + sp->lock_ms;
            continue;
        default: /* REJECT, and GAP (an offset with no record) */
            r->state = SRV_SP_ARCHIVED;
            break;
        }
        r->owner = 0;
        r->deadline = 0;
    }
    advance(sp);
    return 0;
}

int srv_sp_release_owner(srv_share_part *sp, uint32_t owner)
{
    int moved = 0;
    for (int64_t o = sp->start; o < sp->end; o++) {
        srv_sp_rec *r = rec(sp, o);
        if (r->state == SRV_SP_ACQUIRED && r->owner == owner) {
            give_back(sp, r);
            moved++;
        }
    }
    if (moved)
        advance(sp);
    return moved;
}

void srv_sp_move_start(srv_share_part *sp, int64_t log_start)
{
    if (log_start <= sp->start)
        return;
    if (log_start >= sp->end) {
        sp->start = sp->end = log_start;
        return;
    }
    size_t k = (size_t)(log_start - sp->start), n = (size_t)(sp->end - sp->start);
    memmove(sp->recs, sp->recs + k, (n - k) * sizeof(*sp->recs));
    sp->start = log_start;
    advance(sp);
}

int srv_sp_state_of(const srv_share_part *sp, int64_t offset, int *delivery)
{
    if (delivery)
        *delivery = 0;
    if (offset < sp->start)
        return SRV_SP_ACKNOWLEDGED;
    if (offset >= sp->end)
        return -1;
    const srv_sp_rec *r = &sp->recs[offset - sp->start];
    if (delivery)
        *delivery = r->delivery;
    return r->state;
}

int64_t srv_sp_in_flight(const srv_share_part *sp)
{
    int64_t n = 0;
    for (int64_t o = sp->start; o < sp->end; o++) {
        int st = sp->recs[o - sp->start].state;
        if (st == SRV_SP_AVAILABLE || st == SRV_SP_ACQUIRED)
            n++;
    }
    return n;
}

int64_t srv_sp_acquired(const srv_share_part *sp, int64_t now_ms)
{
    int64_t n = 0;
    for (int64_t o = sp->start; o < sp->end; o++) {
        const srv_sp_rec *r = &sp->recs[o - sp->start];
        if (r->state == SRV_SP_ACQUIRED && r->deadline > now_ms)
            n++;
    }
    return n;
}

int srv_sp_runs(const srv_share_part *sp, srv_sp_run *out, int nout)
{
    int n = 0;
    srv_sp_run cur = {0, -1, 0, 0};
    for (int64_t o = sp->start; o < sp->end; o++) {
        const srv_sp_rec *r = &sp->recs[o - sp->start];
        int8_t st = r->state == SRV_SP_ACQUIRED ? SRV_SP_AVAILABLE : (int8_t)r->state;
        int16_t d = (int16_t)r->delivery;
        if (n > 0 && cur.last + 1 == o && cur.state == st && cur.delivery == d) {
            cur.last = o;
        } else {
            cur = (srv_sp_run){o, o, st, d};
            n++;
        }
        if (n <= nout)
            out[n - 1] = cur;
    }
    return n;
}

int srv_sp_restore(srv_share_part *sp, int64_t start, const srv_sp_run *runs, int nruns)
{
    sp->start = sp->end = start;
    int64_t end = start;
    for (int i = 0; i < nruns; i++) {
        SRV_ASSERT(runs[i].first <= runs[i].last && (i == 0 || runs[i].first > runs[i - 1].last),
                   "share partition: restored runs not sorted and disjoint at %d", i);
        if (runs[i].last + 1 > end)
            end = runs[i].last + 1;
    }
    if (end - start > INT32_MAX)
        return -1;
    if (grow(sp, (size_t)(end - start)) < 0)
        return -1;
    for (int64_t o = start; o < end; o++)
        sp->recs[o - start] = (srv_sp_rec){SRV_SP_AVAILABLE, 0, 0, 0};
    sp->end = end;
    for (int i = 0; i < nruns; i++) {
        for (int64_t o = runs[i].first < start ? start : runs[i].first; o <= runs[i].last; o++) {
            srv_sp_rec *r = rec(sp, o);
            r->state = (uint8_t)runs[i].state;
            r->delivery = runs[i].delivery > 0 ? (uint16_t)runs[i].delivery : 0;
            if (r->state == SRV_SP_AVAILABLE && r->delivery >= sp->max_delivery)
                r->state = SRV_SP_ARCHIVED;
        }
    }
    /* Trailing Available records never delivered need no window. */
    while (sp->end > sp->start && sp->recs[sp->end - 1 - sp->start].state == SRV_SP_AVAILABLE &&
           sp->recs[sp->end - 1 - sp->start].delivery == 0)
        sp->end--;
    advance(sp);
    return 0;
}

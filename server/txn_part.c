/*
 * txn_part.c — the pure transaction rules of the partition side (see
 * txn_part.h).
 *
 * Owns a partition's guard table (srv_txn_guards). Must not: touch a log, a shard or the network.
 */
#include "txn_part.h"

#include <stdlib.h>

#include "batch.h"

int64_t srv_txn_batches_end(const uint8_t *data, size_t len)
{
    int64_t end = -1;
    size_t pos = 0;
    kp_batch_header h;
    while (data && len - pos >= KP_BATCH_HEADER_SIZE &&
           kp_batch_header_parse(data + pos, len - pos, &h) == 0) {
        if (h.batch_length <= 0)
            break;
        size_t size = (size_t)KP_BATCH_LOG_OVERHEAD + (size_t)h.batch_length;
        if (size > len - pos)
            break;
        end = h.base_offset + h.last_offset_delta + 1;
        pos += size;
    }
    return end;
}

void srv_txn_bound_list_offset(int64_t req_ts, int64_t lso, int64_t *offset, int64_t *timestamp)
{
    if (req_ts == -2) /* EARLIEST: Kafka does not bound it */
        return;
    if (req_ts == -1) {
        *offset = lso;
        return;
    }
    if (*offset >= lso) {
        *offset = -1;
        *timestamp = -1;
    }
}

void srv_txn_guard_marker(srv_txn_guards *g, int64_t producer_id, int64_t now_ns)
{
    /* Entries past the TTL can no longer refuse anything: a verification
     * that old is refused as EXPIRED before the table is asked. */
    size_t k = 0, found = (size_t)-1;
    for (size_t i = 0; i < g->n; i++) {
        if (g->e[i].producer_id != producer_id && now_ns - g->e[i].marker_ns > SRV_TXN_GUARD_TTL_NS)
            continue;
        g->e[k] = g->e[i];
        if (g->e[k].producer_id == producer_id)
            found = k;
        k++;
    }
    g->n = k;
    if (found != (size_t)-1) {
        g->e[found].marker_ns = now_ns;
        return;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        srv_txn_guard_entry *ne = realloc(g->e, cap * sizeof(*ne));
        if (!ne) {
            /* Never let a marker go unrecorded: refusing every verified batch
             * for a TTL is safe, appending after a marker is not. */
            g->all_ns = now_ns;
            return;
        }
        g->e = ne;
        g->cap = cap;
    }
    g->e[g->n].producer_id = producer_id;
    g->e[g->n].marker_ns = now_ns;
    g->n++;
}

srv_txn_guard_result srv_txn_guard_check(const srv_txn_guards *g, int64_t producer_id, int64_t verify_ns,
                                         int64_t now_ns)
{
    if (now_ns - verify_ns > SRV_TXN_GUARD_TTL_NS)
        return SRV_TXN_GUARD_EXPIRED;
    /* >=: on a tie the order is unknown; refusing is the safe side. */
    if (g->all_ns && g->all_ns >= verify_ns)
        return SRV_TXN_GUARD_STALE;
    for (size_t i = 0; i < g->n; i++)
        if (g->e[i].producer_id == producer_id)
            return g->e[i].marker_ns >= verify_ns ? SRV_TXN_GUARD_STALE : SRV_TXN_GUARD_OK;
    return SRV_TXN_GUARD_OK;
}

void srv_txn_guards_free(srv_txn_guards *g)
{
    free(g->e);
    g->e = NULL;
    g->n = g->cap = 0;
}

/*
 * txn_part.c — the pure transaction rules of the partition side (see
 * txn_part.h).
 *
 * Owns nothing. Must not: touch a log, a shard or the network.
 */
#include "txn_part.h"

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

/*
 * txn_log.c — encoding and decoding of the __transaction_state records.
 *
 * Owns the byte layout of keys and values (see txn_log.h) through the
 * generated TransactionLogKey / TransactionLogValue codecs. Must not: keep
 * memory beyond a call except what it hands back (an image's partitions, a
 * record's id), or accept a record with trailing bytes, a null topic or a
 * status Kafka never persists: replay applies only whole, sane records.
 */
#include "txn_log.h"

#include <stdlib.h>
#include <string.h>

#include "kp_messages.h"

/* CoordinatorRecordType.TRANSACTION_LOG: the int16 before every key. */
#define KEY_TYPE_TXN 0
#define VALUE_MAX_V  1

const char *srv_txn_state_name(srv_txn_state s)
{
    switch (s) {
    case SRV_TXN_EMPTY:
        return "Empty";
    case SRV_TXN_ONGOING:
        return "Ongoing";
    case SRV_TXN_PREPARE_COMMIT:
        return "PrepareCommit";
    case SRV_TXN_PREPARE_ABORT:
        return "PrepareAbort";
    case SRV_TXN_COMPLETE_COMMIT:
        return "CompleteCommit";
    case SRV_TXN_COMPLETE_ABORT:
        return "CompleteAbort";
    case SRV_TXN_DEAD:
        return "Dead";
    case SRV_TXN_PREPARE_EPOCH_FENCE:
        return "PrepareEpochFence";
    }
    return "Unknown";
}

void srv_txn_image_init(srv_txn_image *img)
{
    memset(img, 0, sizeof(*img));
    img->producer_id = SRV_TXN_NO_PID;
    img->prev_producer_id = SRV_TXN_NO_PID;
    img->next_producer_id = SRV_TXN_NO_PID;
    img->producer_epoch = SRV_TXN_NO_EPOCH;
    img->state = SRV_TXN_EMPTY;
    img->last_update_ms = -1;
    img->start_ms = -1;
}

void srv_txn_image_clear(srv_txn_image *img)
{
    for (int32_t i = 0; i < img->nparts; i++)
        free(img->parts[i].topic);
    free(img->parts);
    srv_txn_image_init(img);
}

bool srv_txn_image_has_part(const srv_txn_image *img, const char *topic, int32_t topic_len, int32_t partition)
{
    for (int32_t i = 0; i < img->nparts; i++) {
        const srv_txn_tp *tp = &img->parts[i];
        if (tp->partition == partition && tp->topic_len == topic_len &&
            memcmp(tp->topic, topic, (size_t)topic_len) == 0)
            return true;
    }
    return false;
}

int srv_txn_image_add_part(srv_txn_image *img, const char *topic, int32_t topic_len, int32_t partition)
{
    if (srv_txn_image_has_part(img, topic, topic_len, partition))
        return 0;
    srv_txn_tp *np = realloc(img->parts, sizeof(*np) * (size_t)(img->nparts + 1));
    if (!np)
        return -1;
    img->parts = np;
    char *t = malloc((size_t)topic_len + 1);
    if (!t)
        return -1;
    memcpy(t, topic, (size_t)topic_len);
    t[topic_len] = '\0';
    img->parts[img->nparts++] = (srv_txn_tp){t, topic_len, partition};
    return 0;
}

int srv_txn_image_copy(srv_txn_image *dst, const srv_txn_image *src)
{
    *dst = *src;
    dst->parts = NULL;
    dst->nparts = 0;
    for (int32_t i = 0; i < src->nparts; i++) {
        if (srv_txn_image_add_part(dst, src->parts[i].topic, src->parts[i].topic_len,
                                   src->parts[i].partition)) {
            srv_txn_image_clear(dst);
            return -1;
        }
    }
    return 0;
}

bool srv_txn_image_equal(const srv_txn_image *a, const srv_txn_image *b)
{
    if (a->producer_id != b->producer_id || a->prev_producer_id != b->prev_producer_id ||
        a->next_producer_id != b->next_producer_id || a->producer_epoch != b->producer_epoch ||
        a->timeout_ms != b->timeout_ms || a->state != b->state || a->last_update_ms != b->last_update_ms ||
        a->start_ms != b->start_ms || a->client_tv != b->client_tv || a->nparts != b->nparts)
        return false;
    for (int32_t i = 0; i < a->nparts; i++)
        if (!srv_txn_image_has_part(b, a->parts[i].topic, a->parts[i].topic_len, a->parts[i].partition))
            return false;
    return true;
}

int16_t srv_txn_log_value_version(int16_t tv_level)
{
    return tv_level >= 1 ? 1 : 0;
}

int srv_txn_log_key(kp_writer *w, const char *txn_id, int32_t id_len)
{
    kp_transaction_log_key k;
    kp_transaction_log_key_init(&k);
    k.transactional_id = (kp_str){txn_id, id_len};
    int rc = kp_write_i16(w, KEY_TYPE_TXN);
    return rc ? rc : kp_transaction_log_key_encode(w, 0, &k);
}

int srv_txn_log_value(kp_writer *w, int16_t version, const srv_txn_image *img)
{
    if (version < 0 || version > VALUE_MAX_V)
        return KP_E_UNSUPPORTED;
    kp_transaction_log_value v;
    kp_transaction_log_value_init(&v);
    v.producer_id = img->producer_id;
    v.producer_epoch = img->producer_epoch;
    v.transaction_timeout_ms = img->timeout_ms;
    v.transaction_status = (int8_t)img->state;
    v.transaction_last_update_timestamp_ms = img->last_update_ms;
    v.transaction_start_timestamp_ms = img->start_ms;
    if (version >= 1) {
        v.previous_producer_id = img->prev_producer_id;
        v.next_producer_id = img->next_producer_id;
        v.client_transaction_version = img->client_tv;
    }
    /* Partitions grouped by topic, topics in order of first appearance. */
    kp_transaction_log_value_partitions_schema *topics = NULL;
    int32_t *ids = NULL;
    int32_t ntopics = 0;
    int rc = 0;
    if (img->state == SRV_TXN_EMPTY) {
        v.transaction_partitions = NULL;
        v.transaction_partitions_count = -1;
    } else {
        size_t n = (size_t)img->nparts;
        topics = calloc(n ? n : 1, sizeof(*topics));
        ids = calloc(n ? n : 1, sizeof(*ids));
        if (!topics || !ids) {
            rc = KP_E_NOMEM;
            goto out;
        }
        char *done = calloc(n ? n : 1, 1);
        if (!done) {
            rc = KP_E_NOMEM;
            goto out;
        }
        int32_t used = 0;
        for (int32_t i = 0; i < img->nparts; i++) {
            if (done[i])
                continue;
            kp_transaction_log_value_partitions_schema *t = &topics[ntopics++];
            kp_transaction_log_value_partitions_schema_init(t);
            t->topic = (kp_str){img->parts[i].topic, img->parts[i].topic_len};
            t->partition_ids = &ids[used];
            t->partition_ids_count = 0;
            for (int32_t j = i; j < img->nparts; j++) {
                if (done[j] || img->parts[j].topic_len != img->parts[i].topic_len ||
                    memcmp(img->parts[j].topic, img->parts[i].topic, (size_t)img->parts[i].topic_len) != 0)
                    continue;
                done[j] = 1;
                ids[used++] = img->parts[j].partition;
                t->partition_ids_count++;
            }
        }
        free(done);
        v.transaction_partitions = topics;
        v.transaction_partitions_count = ntopics;
    }
    rc = kp_write_i16(w, version);
    if (rc == 0)
        rc = kp_transaction_log_value_encode(w, version, &v);
out:
    free(topics);
    free(ids);
    return rc;
}

void srv_txn_logrec_clear(srv_txn_logrec *r)
{
    free(r->txn_id);
    srv_txn_image_clear(&r->img);
    memset(r, 0, sizeof(*r));
    srv_txn_image_init(&r->img);
}

static int decode_value(kp_reader *vr, kp_arena *a, srv_txn_logrec *out)
{
    int16_t ver;
    if (kp_read_i16(vr, &ver))
        return SRV_TXN_LOG_E_MALFORMED;
    if (ver < 0 || ver > VALUE_MAX_V)
        return SRV_TXN_LOG_E_VALUE_VERSION;
    kp_transaction_log_value v;
    kp_transaction_log_value_init(&v);
    if (kp_transaction_log_value_decode(vr, a, ver, &v) || kp_reader_left(vr) != 0)
        return SRV_TXN_LOG_E_MALFORMED;
    if (v.transaction_status < SRV_TXN_EMPTY || v.transaction_status > SRV_TXN_COMPLETE_ABORT)
        return SRV_TXN_LOG_E_STATE;
    srv_txn_image *img = &out->img;
    out->value_version = ver;
    img->producer_id = v.producer_id;
    img->prev_producer_id = v.previous_producer_id;
    img->next_producer_id = v.next_producer_id;
    img->producer_epoch = v.producer_epoch;
    img->timeout_ms = v.transaction_timeout_ms;
    img->state = (srv_txn_state)v.transaction_status;
    img->last_update_ms = v.transaction_last_update_timestamp_ms;
    img->start_ms = v.transaction_start_timestamp_ms;
    img->client_tv = v.client_transaction_version;
    /* Kafka reads no partitions for Empty (TransactionLog.read) and needs a
     * list for every other state. */
    if (img->state == SRV_TXN_EMPTY)
        return SRV_TXN_LOG_OK;
    if (v.transaction_partitions_count < 0)
        return SRV_TXN_LOG_E_MALFORMED;
    for (int32_t i = 0; i < v.transaction_partitions_count; i++) {
        const kp_transaction_log_value_partitions_schema *t = &v.transaction_partitions[i];
        if (t->topic.len < 0 || t->partition_ids_count < 0)
            return SRV_TXN_LOG_E_MALFORMED;
        for (int32_t j = 0; j < t->partition_ids_count; j++)
            if (srv_txn_image_add_part(img, t->topic.p, t->topic.len, t->partition_ids[j]))
                return SRV_TXN_LOG_E_NOMEM;
    }
    return SRV_TXN_LOG_OK;
}

int srv_txn_log_decode(const uint8_t *key, int32_t klen, const uint8_t *value, int32_t vlen,
                       srv_txn_logrec *out)
{
    memset(out, 0, sizeof(*out));
    srv_txn_image_init(&out->img);
    if (!key || klen < 0)
        return SRV_TXN_LOG_E_MALFORMED;
    kp_reader kr;
    kp_reader_init(&kr, key, (size_t)klen);
    int16_t type;
    if (kp_read_i16(&kr, &type))
        return SRV_TXN_LOG_E_MALFORMED;
    if (type != KEY_TYPE_TXN)
        return SRV_TXN_LOG_E_KEY_VERSION;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_transaction_log_key k;
    kp_transaction_log_key_init(&k);
    int rc = SRV_TXN_LOG_OK;
    if (kp_transaction_log_key_decode(&kr, &a, 0, &k) || kp_reader_left(&kr) != 0 ||
        k.transactional_id.len < 0) {
        rc = SRV_TXN_LOG_E_MALFORMED;
        goto out;
    }
    out->txn_id = malloc((size_t)k.transactional_id.len + 1);
    if (!out->txn_id) {
        rc = SRV_TXN_LOG_E_NOMEM;
        goto out;
    }
    memcpy(out->txn_id, k.transactional_id.p, (size_t)k.transactional_id.len);
    out->txn_id[k.transactional_id.len] = '\0';
    out->id_len = k.transactional_id.len;
    if (!value || vlen < 0) {
        out->tombstone = true;
        goto out;
    }
    kp_reader vr;
    kp_reader_init(&vr, value, (size_t)vlen);
    rc = decode_value(&vr, &a, out);
out:
    kp_arena_reset(&a);
    return rc;
}

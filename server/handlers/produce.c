/*
 * produce.c — Produce (v3+, magic 2): one batch per partition, appended by
 * the partition's owner shard.
 *
 * acks=all is answered once the storage engine says the batch is durable
 * (its flush policy) and, on a replicated partition, once its high
 * watermark passed the batch (partition.h; min.insync.replicas is checked
 * before appending); acks=1 once the append is accepted; acks=0 never.
 * Idempotent producers: the storage engine's producer state answers
 * duplicates with the original offset and gaps with OUT_OF_ORDER_SEQUENCE.
 *
 * Transactional batches with transaction.partition.verification.enable=true
 * (KIP-890 part 1): before they go to their partitions, one verify-only op
 * asks the id's coordinator (txn_coord.c) whether each partition is in the
 * producer's ongoing transaction; those that are not are answered with
 * Kafka's errors and never appended. With false, they go as they come.
 * Produce v12+ (KIP-890 part 2, transactions v2) asks the coordinator to
 * add the partitions instead, with either setting.
 *
 * Must not: touch a partition from the request's shard, or wait for the
 * coordinator any other way than its srv_call.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "srv_assert.h"
#include "batch.h"
#include "codec.h"
#include "legacy.h"
#include "authz_req.h"
#include "dispatch.h"
#include "group/group.h"
#include "errors.h"
#include "logging.h"
#include "meta.h"
#include "partcall.h"
#include "quota.h"
#include "throttle_req.h"
#include "validate.h"

typedef struct produce_op {
    srv_part_op base;
    kp_bytes records;
    int16_t acks;
    int32_t timeout_ms; /* acks=all on a replicated partition: how long the ISR may take */
    int legacy_ok;      /* Produce v0-2: magic 0/1 message sets, converted here */
    int16_t error;
    int64_t base_offset;
    int64_t log_append_time;
    int64_t log_start_offset;
    kp_produce_response_partition_produce_response *out;
    kp_str out_topic; /* the topic's name in the request (verification) */
    const char *error_message;
    srv_validate_policy pol; /* the topic's record rules (validate.h) */
    int16_t refused;         /* validated on the request's shard: answer this, with the log start offset */
    int64_t verify_ns;       /* when its verification started (the guard, txn_part.h); 0: not verified */
} produce_op;

typedef struct produce_state {
    kp_produce_response resp;
    int16_t acks;
} produce_state;

static void finish(srv_req *req)
{
    produce_state *st = req->state;
    /* Kafka charges the request's size when it answers; the answer leaves at
     * once with the throttle time and the connection then stays muted for it
     * (KIP-219), acks=0 included. */
    int32_t throttle = srv_quota_charge(req, SRV_QK_PRODUCER_BYTE_RATE, (double)req->frame_len);
    /* request_percentage is charged where every answer leaves
     * (srv_req_respond), which keeps the larger of the two throttle times;
     * as Kafka, acks=0 (no answer) is not charged to it. */
    st->resp.throttle_time_ms = throttle;
    srv_req_mute(req, throttle);
    if (st->acks != 0) {
        srv_req_respond(req, &st->resp);
        return;
    }
    /* acks=0 has no answer to carry an error: Kafka closes the connection
     * (checked against 4.4: a refused or unknown topic), so the client
     * notices and refreshes its metadata. */
    for (int32_t i = 0; i < st->resp.responses_count; i++)
        for (int32_t j = 0; j < st->resp.responses[i].partition_responses_count; j++)
            if (st->resp.responses[i].partition_responses[j].error_code) {
                char why[96];
                snprintf(why, sizeof(why), "acks=0 produce failed with error %d",
                         st->resp.responses[i].partition_responses[j].error_code);
                srv_req_respond_none_then_close(req, why);
                return;
            }
    srv_req_respond_none(req);
}

static void op_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    produce_op *op = (produce_op *)base;
    op->out->error_code = op->error;
    op->out->base_offset = op->error ? -1 : op->base_offset;
    op->out->log_append_time_ms = op->log_append_time;
    op->out->log_start_offset = op->log_start_offset;
    if (op->error_message)
        op->out->error_message = kp_str_c(op->error_message);
    free(op);
}

typedef struct wait_ctx {
    produce_op *op; /* NULL once answered (acks 0/1: at acceptance) */
    srv_shard *owner;
    srv_part *part;
    int16_t acks;
    uint64_t t0_ns;     /* append accepted: the start of append -> durable */
    int32_t last_delta; /* the batch's last offset delta */
    srv_hw_wait hw;     /* acks=all on a replicated partition: waiting for the ISR */
} wait_ctx;

/* Kafka answers a refusal by the producer's state (sequence, epoch) without
 * a message: it gives one only with a record's own refusal. */
static const char *append_error_message(int rc)
{
    return rc == ST_E_OUT_OF_ORDER || rc == ST_E_FENCED ? NULL : st_strerror(rc);
}

/* The log took the batch (offsets assigned) or refused it. Appends wait in
 * the log's queue while it applies backpressure, so this may come long after
 * run(): the request (and so op->records) stays alive while op is out. */
static void accepted_cb(void *arg, int rc, int64_t base_offset)
{
    wait_ctx *w = arg;
    produce_op *op = w->op;
    if (rc && rc != ST_E_DUPLICATE) {
        op->error = srv_st_to_kafka(rc);
        op->error_message = append_error_message(rc);
        srv_shard *owner = w->owner;
        free(w); /* refused: the completion never runs */
        srv_call_reply(owner, &op->base.call);
        return;
    }
    w->t0_ns = srv_now_ns();
    if (w->acks != -1) {
        op->base_offset = base_offset; /* the original's offset for a duplicate */
        w->op = NULL;
        srv_call_reply(w->owner, &op->base.call); /* w lives on until the completion */
    }
}

/* The ISR has the batch (or the wait ended): the acks=all answer. */
static void hw_done(srv_shard *owner, srv_hw_wait *hw, int16_t error)
{
    wait_ctx *w = (wait_ctx *)((char *)hw - offsetof(wait_ctx, hw));
    produce_op *op = w->op;
    op->error = error;
    if (error)
        op->error_message =
            error == KP_ERR_REQUEST_TIMED_OUT
                ? "the in-sync replicas did not copy the batch within the request's timeout"
                : "the partition's leadership moved before the in-sync replicas had the batch";
    free(w);
    srv_call_reply(owner, &op->base.call);
}

static void durable_cb(void *arg, int rc, int64_t base_offset)
{
    wait_ctx *w = arg;
    produce_op *op = w->op;
    srv_shard *owner = w->owner;
    if (w->acks != -1) {
        /* acks 0/1 answered already: wake readers once the batch is visible. */
        if (rc == 0)
            srv_part_wake(owner, w->part);
        free(w);
        return;
    }
    if (rc && rc != ST_E_DUPLICATE) {
        op->error = srv_st_to_kafka(rc);
        op->error_message = append_error_message(rc);
    } else {
        op->error = 0;
        op->base_offset = base_offset;
        srv_hist_record(&owner->metrics.sync, (srv_now_ns() - w->t0_ns) / 1000);
        srv_part_wake(owner, w->part);
        if (srv_part_replicated(owner, w->part)) {
            /* Durable here; answered once the high watermark passes it. */
            w->hw.end = base_offset + w->last_delta + 1;
            w->hw.deadline_ms = owner->now_ms + (op->timeout_ms > 0 ? op->timeout_ms : 0);
            w->hw.done = hw_done;
            srv_part_hw_wait(owner, w->part, &w->hw);
            return;
        }
    }
    free(w);
    srv_call_reply(owner, &op->base.call);
}

/* The codec a topic's compression.type asks for: -1 keeps the producer's. */
static int topic_codec(srv_shard *owner, const kp_uuid *topic_id)
{
    const srv_topic *t = srv_meta_topic_by_id(owner->meta, topic_id);
    const char *ct = t ? srv_topic_cfg_get(t, "compression.type") : NULL;
    if (!ct)
        ct = owner->b->cfg.compression_type;
    static const char *const names[] = {"uncompressed", "gzip", "snappy", "lz4", "zstd"};
    for (int i = 0; i < 5; i++)
        if (strcmp(ct, names[i]) == 0)
            return i;
    return -1; /* "producer" */
}

/* Rewrites one batch into another codec, record by record, keeping offsets
 * deltas, timestamps, keys, values, headers and the producer fields (as
 * Kafka does for a topic whose compression.type is not "producer"). */
static int recompress(const kp_batch *b, int codec, size_t max_out, kp_writer *out)
{
    kp_writer plain;
    kp_writer_init(&plain, 0);
    const uint8_t *recs = b->records;
    size_t n = b->records_size;
    int from = b->h.attributes & KP_ATTR_CODEC_MASK, rc = 0;
    if (from != KP_CODEC_NONE) {
        if ((rc = kp_decompress(from, b->records, b->records_size, max_out, &plain)) != 0) {
            kp_writer_free(&plain);
            return rc;
        }
        recs = plain.buf;
        n = plain.len;
    }
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, codec);
    if (b->h.producer_id >= 0)
        kp_batch_builder_set_producer(&bb, b->h.producer_id, b->h.producer_epoch, b->h.base_sequence,
                                      (b->h.attributes & KP_ATTR_TRANSACTIONAL) != 0);
    kp_record_iter it;
    kp_record r;
    kp_record_iter_init(&it, &b->h, recs, n);
    int more;
    kp_record_header hdrs[64];
    while (rc == 0 && (more = kp_record_iter_next(&it, &r)) == 1) {
        int32_t nh = 0;
        size_t pos = 0;
        while (nh < 64 && kp_record_header_next(&r, &pos, &hdrs[nh]) == 1)
            nh++;
        if (nh != r.header_count) {
            rc = KP_E_UNSUPPORTED; /* more headers than we rewrite: keep the batch as sent */
            break;
        }
        rc = kp_batch_builder_add(&bb, r.timestamp, r.key, r.value, hdrs, nh);
    }
    if (rc == 0 && more < 0)
        rc = more;
    if (rc == 0)
        rc = kp_batch_builder_finish(&bb, out);
    kp_batch_builder_free(&bb);
    kp_writer_free(&plain);
    return rc;
}

/* The batch's timestamp type becomes the topic's, as Kafka's setMaxTimestamp
 * does. LogAppendTime topics: the broker's clock goes into the batch here
 * (the storage engine keeps a stamp it finds) so that the response's
 * log_append_time_ms is the stored value. CreateTime topics: a producer's
 * LogAppendTime bit (accepted when its timestamp is in bounds) is cleared. */
static int stamp_timestamp_type(produce_op *op, kp_writer *conv, const uint8_t **data, size_t *len)
{
    kp_batch_header h;
    SRV_ASSERT(kp_batch_header_parse(*data, *len, &h) == 0,
               "produce: a batch that passed the framing check has no header (%zu bytes)", *len);
    if (!op->pol.log_append_time && !(h.attributes & KP_ATTR_LOG_APPEND_TIME))
        return 0;
    if (*data != conv->buf) {
        conv->len = 0;
        if (kp_write_raw(conv, *data, *len) != 0)
            return -1;
        *data = conv->buf;
    }
    if (op->pol.log_append_time) {
        op->log_append_time = srv_now_ms();
        kp_batch_set_max_timestamp(conv->buf, conv->len, op->log_append_time, 1);
    } else {
        kp_batch_set_max_timestamp(conv->buf, conv->len, h.max_timestamp, 0);
    }
    return 0;
}

/* min.insync.replicas (the topic's, else the broker's) of a replicated
 * partition against its ISR, before appending, as Kafka checks acks=all. */
static int not_enough_replicas(srv_shard *owner, srv_part *p, produce_op *op)
{
    const srv_part_repl *r = srv_part_replicated(owner, p);
    if (!r)
        return 0;
    const srv_topic *t = srv_meta_topic_by_id(owner->meta, &p->topic_id);
    const char *v = t ? srv_topic_cfg_get(t, "min.insync.replicas") : NULL;
    long min = v ? strtol(v, NULL, 10) : owner->b->cfg.min_insync_replicas;
    if (r->nisr >= min)
        return 0;
    op->error = KP_ERR_NOT_ENOUGH_REPLICAS;
    op->error_message = "The size of the current ISR is insufficient to satisfy the min.isr requirement";
    srv_call_reply(owner, &op->base.call);
    return 1;
}

static void run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    produce_op *op = (produce_op *)base;
    if (!p) {
        op->error = srv_part_missing_error(owner, &base->topic_id, base->partition);
        srv_call_reply(owner, &base->call);
        return;
    }
    if (srv_part_offline(p)) {
        op->error = KP_ERR_KAFKA_STORAGE_ERROR;
        op->error_message = "the partition's log could not be opened (see the broker log)";
        srv_call_reply(owner, &base->call);
        return;
    }
    op->log_start_offset = st_log_start_offset(p->log);
    if (op->refused) {
        op->error = op->refused;
        srv_call_reply(owner, &base->call);
        return;
    }
    if (op->acks == -1 && not_enough_replicas(owner, p, op))
        return;
    const uint8_t *data = op->records.p;
    size_t len = op->records.len > 0 ? (size_t)op->records.len : 0;
    kp_writer conv;
    kp_writer_init(&conv, 0);
    if (op->legacy_ok && kp_records_are_legacy(data, len)) {
        /* Old clients: one magic-2 batch from the message set, as Kafka does. */
        int rc = kp_legacy_to_batch(data, len, (size_t)owner->b->cfg.message_max_bytes * 4, &conv);
        if (rc) {
            kp_writer_free(&conv);
            op->error = rc == KP_E_CRC         ? KP_ERR_CORRUPT_MESSAGE
                        : rc == KP_E_TOO_LARGE ? KP_ERR_MESSAGE_TOO_LARGE
                                               : KP_ERR_INVALID_RECORD;
            op->error_message = kp_strerror(rc);
            srv_call_reply(owner, &base->call);
            return;
        }
        data = conv.buf;
        len = conv.len;
        /* Validated here, once converted (v0-2 answers carry no messages). */
        srv_validate_result vr;
        if (srv_validate_produce(&op->pol, KP_STR_NULL, base->partition, data, len, 2, srv_now_ms(), NULL,
                                 &vr)) {
            kp_writer_free(&conv);
            op->error = vr.error;
            srv_call_reply(owner, &base->call);
            return;
        }
    }
    /* Produce v3+ carries exactly one magic-2 batch per partition. */
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, data, len, 0);
    int n = kp_batch_iter_next(&it, &b);
    if (n == 1 && (it.p != it.end))
        n = -1;
    if (n == 1 && it.p == it.end && !it.partial && !(b.h.attributes & KP_ATTR_CONTROL)) {
        int want = topic_codec(owner, &base->topic_id);
        if (want >= 0 && want != (b.h.attributes & KP_ATTR_CODEC_MASK)) {
            kp_writer re;
            kp_writer_init(&re, len);
            int rc = recompress(&b, want, (size_t)owner->b->cfg.message_max_bytes * 4, &re);
            if (rc == 0) {
                kp_writer_free(&conv);
                conv = re; /* the rewritten batch replaces the producer's */
                data = conv.buf;
                len = conv.len;
            } else {
                kp_writer_free(&re);
                if (rc != KP_E_UNSUPPORTED) {
                    kp_writer_free(&conv);
                    op->error = rc == KP_E_TOO_LARGE ? KP_ERR_MESSAGE_TOO_LARGE : KP_ERR_CORRUPT_MESSAGE;
                    op->error_message = kp_strerror(rc);
                    srv_call_reply(owner, &base->call);
                    return;
                }
            }
        }
    }
    if (len == 0 || n != 1 || it.partial) {
        kp_writer_free(&conv);
        op->error = srv_validate_framing_error(data, len, n);
        if (op->error == KP_ERR_CORRUPT_MESSAGE)
            op->log_start_offset = -1; /* Kafka refuses a bad CRC before asking the log */
        srv_call_reply(owner, &base->call);
        return;
    }
    if (stamp_timestamp_type(op, &conv, &data, &len) != 0) {
        kp_writer_free(&conv);
        op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        srv_call_reply(owner, &base->call);
        return;
    }
    if (op->verify_ns) {
        /* Kafka's VerificationGuard: a marker since the verification started
         * ended the transaction it vouched for (UnifiedLog refuses such a
         * batch with InvalidTxnStateException). */
        srv_txn_guard_result g =
            srv_txn_guard_check(&p->guards, b.h.producer_id, op->verify_ns, (int64_t)srv_now_ns());
        if (g != SRV_TXN_GUARD_OK) {
            kp_writer_free(&conv);
            op->error = g == SRV_TXN_GUARD_STALE ? KP_ERR_INVALID_TXN_STATE : KP_ERR_NOT_ENOUGH_REPLICAS;
            op->error_message = g == SRV_TXN_GUARD_STALE ? "Record was not part of an ongoing transaction"
                                                         : "the transaction verification took too long";
            srv_call_reply(owner, &base->call);
            return;
        }
    }
    wait_ctx *w = malloc(sizeof(*w));
    if (!w) {
        kp_writer_free(&conv);
        op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        srv_call_reply(owner, &base->call);
        return;
    }
    w->op = op;
    w->owner = owner;
    w->part = p;
    w->acks = op->acks;
    w->t0_ns = srv_now_ns();
    w->last_delta = b.h.last_offset_delta;
    /* Never a retriable refusal for the log's own backpressure: the batch
     * waits in order behind earlier ones (a client retrying a refused request
     * would put it after requests it pipelined later). The connection stops
     * being read while its requests are pending. Both callbacks may run
     * before this returns; op is not touched here afterwards. */
    st_log_append_ordered(p->log, data, len, accepted_cb, durable_cb, w);
    kp_writer_free(&conv); /* the log keeps its own copy */
}

/* The transactional ops of a request waiting for the coordinator's answer. */
typedef struct verify_wait {
    produce_op **ops;
    int32_t n;
} verify_wait;

static void verify_wait_free(void *arg)
{
    verify_wait *vw = arg;
    for (int32_t i = 0; i < vw->n; i++)
        free(vw->ops[i]);
    free(vw->ops);
    free(vw);
}

/* kbroker.test.txn.verification.delay.ms (test-only): the verified ops of
 * a request wait this long before going to their partitions, so a test can
 * land EndTxn's markers in between and see the guard refuse them. */
typedef struct delayed_send {
    srv_req *req;
    produce_op **ops;
    int32_t n;
    struct event *ev;
} delayed_send;

static void on_delayed_send(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    delayed_send *d = arg;
    srv_req *req = d->req;
    for (int32_t i = 0; i < d->n; i++)
        srv_part_op_send(req, &d->ops[i]->base);
    event_free(d->ev);
    free(d->ops);
    free(d);
    srv_req_release(req);
}

static void verified(srv_shard *s, srv_txn_op *vop)
{
    srv_req *req = vop->call.req;
    verify_wait *vw = vop->user;
    vop->drop_user = NULL; /* taken here */
    int16_t version = req->kr.hdr.request_api_version;
    int32_t kept = 0; /* the verified ops, compacted at the front of vw->ops */
    for (int32_t i = 0; i < vw->n; i++) {
        produce_op *op = vw->ops[i];
        const char *msg;
        int16_t err = srv_txn_produce_error(srv_txn_verify_result(vop, i), version, &msg);
        if (err) {
            op->out->error_code = err;
            op->out->base_offset = -1;
            if (msg)
                op->out->error_message = kp_str_c(msg);
            free(op);
            continue;
        }
        /* The guard starts at the coordinator's decision, not when the request
         * left: a previous transaction's marker may land while this add waits
         * (CONCURRENT_TRANSACTIONS right after EndTxn), and is durable before
         * the decision can answer. */
        if (vop->decide_ns)
            op->verify_ns = vop->decide_ns;
        vw->ops[kept++] = op;
    }
    (void)s;
    int32_t delay = req->shard->b->cfg.test_txn_verification_delay_ms;
    delayed_send *d = delay > 0 && kept ? calloc(1, sizeof(*d)) : NULL;
    if (d && (d->ev = evtimer_new(req->shard->base, on_delayed_send, d)) != NULL) {
        d->req = req;
        d->ops = vw->ops;
        d->n = kept;
        srv_req_hold(req); /* released once the ops are sent */
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        evtimer_add(d->ev, &tv);
        free(vw);
        srv_txn_op_free(vop);
        return;
    }
    free(d);
    for (int32_t i = 0; i < kept; i++)
        srv_part_op_send(req, &vw->ops[i]->base);
    free(vw->ops);
    free(vw);
    srv_txn_op_free(vop);
}

/* Whether records hold one transactional batch; its producer id and epoch. */
static int txn_batch_of(kp_bytes records, int64_t *pid, int16_t *epoch)
{
    kp_batch_header h;
    if (records.len <= 0 || kp_batch_header_parse(records.p, (size_t)records.len, &h) != 0)
        return 0;
    if (!(h.attributes & KP_ATTR_TRANSACTIONAL) || (h.attributes & KP_ATTR_CONTROL))
        return 0;
    *pid = h.producer_id;
    *epoch = h.producer_epoch;
    return 1;
}

/* Sends the verify op for the transactional ops; on failure answers them. */
static void verify_and_send(srv_req *req, kp_str txn_id, produce_op **ops, int32_t n, int64_t pid,
                            int16_t epoch)
{
    verify_wait *vw = calloc(1, sizeof(*vw));
    srv_txn_tp *parts = calloc((size_t)n + 1, sizeof(*parts));
    int16_t err = KP_ERR_UNKNOWN_SERVER_ERROR;
    if (vw && parts) {
        for (int32_t i = 0; i < n; i++) {
            /* Read-only on the coordinator: topics stay in the request. */
            parts[i].topic = (char *)ops[i]->out_topic.p;
            parts[i].topic_len = ops[i]->out_topic.len;
            parts[i].partition = ops[i]->base.partition;
        }
        /* The guard: the owner refuses the batch if it wrote a marker for
         * the producer after this instant (moved to the coordinator's
         * decision in verified()). */
        int64_t start = (int64_t)srv_now_ns();
        for (int32_t i = 0; i < n; i++)
            ops[i]->verify_ns = start;
        vw->ops = ops;
        vw->n = n;
        int32_t np = srv_txns_nparts(req->shard);
        err = srv_txn_verify_send(
            req, np > 0 ? srv_group_partition_for(txn_id, np) : -1, txn_id, pid, epoch,
            srv_txn_client_tv(req->kr.hdr.request_api_key, req->kr.hdr.request_api_version), parts, n,
            verified, vw, verify_wait_free);
        if (!err)
            return;
    } else {
        free(parts);
    }
    free(vw);
    const char *msg;
    err = srv_txn_produce_error(err, req->kr.hdr.request_api_version, &msg);
    for (int32_t i = 0; i < n; i++) {
        ops[i]->out->error_code = err;
        ops[i]->out->base_offset = -1;
        free(ops[i]);
    }
    free(ops);
}

void srv_h_produce(srv_req *req)
{
    /* A client under a producer quota is served one request at a time (as
     * Kafka serves every connection), so its mute holds back what it
     * pipelined. */
    if (srv_quota_window_max(req, SRV_QK_PRODUCER_BYTE_RATE) >= 0)
        srv_req_serialize(req);
    const kp_produce_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    produce_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (!st) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = st;
    kp_produce_response_init(&st->resp);
    st->acks = rq->acks;
    int16_t bad_acks = rq->acks != 0 && rq->acks != 1 && rq->acks != -1;
    int32_t nt = rq->topic_data_count > 0 ? rq->topic_data_count : 0;
    st->resp.responses = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*st->resp.responses) + 1);
    st->resp.responses_count = nt;
    /* With transaction.partition.verification.enable=false a partition
     * takes a transactional request's batches without asking a coordinator
     * (Kafka's KIP-890 part 1 off); with true the coordinator is asked first
     * (verify_and_send). */
    int txn = rq->transactional_id.len >= 0;
    /* v12+ (transactions v2) sends no AddPartitionsToTxn: the coordinator's
     * implicit add is the only way in, so it runs whatever the setting. */
    int txn_unverified = txn && !s->b->cfg.txn_partition_verification &&
                         srv_txn_client_tv(req->kr.hdr.request_api_key, req->kr.hdr.request_api_version) < 2;
    int txn_denied = txn && !srv_authorize(req, SRV_OP_WRITE, SRV_RES_TRANSACTIONAL_ID, rq->transactional_id);
    produce_op **wait = NULL; /* transactional ops waiting for the coordinator */
    int32_t nwait = 0, capwait = 0;
    int64_t wait_pid = -1;
    int16_t wait_epoch = -1;
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int32_t i = 0; i < nt; i++) {
        const kp_produce_request_topic_produce_data *td = &rq->topic_data[i];
        kp_produce_response_topic_produce_response *tr = &st->resp.responses[i];
        kp_produce_response_topic_produce_response_init(tr);
        tr->name = td->name;
        int32_t np = td->partition_data_count > 0 ? td->partition_data_count : 0;
        tr->partition_responses =
            kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partition_responses) + 1);
        tr->partition_responses_count = np;
        const srv_topic *t = srv_meta_topic(s->meta, td->name);
        int may_write = srv_authorize(req, SRV_OP_WRITE, SRV_RES_TOPIC, td->name);
        srv_validate_policy pol = {0};
        if (t)
            pol = *srv_validate_policy_get(&s->b->cfg, s->meta, t);
        pol.txn_allowed = txn;
        for (int32_t j = 0; j < np; j++) {
            const kp_produce_request_partition_produce_data *pd = &td->partition_data[j];
            kp_produce_response_partition_produce_response *pr = &tr->partition_responses[j];
            kp_produce_response_partition_produce_response_init(pr);
            pr->index = pd->index;
            pr->base_offset = -1;
            pr->log_append_time_ms = -1;
            pr->log_start_offset = -1;
            if (bad_acks) {
                pr->error_code = KP_ERR_INVALID_REQUIRED_ACKS;
            } else if (txn_denied) {
                pr->error_code = KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            } else if (!may_write) {
                pr->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED; /* before existence, as Kafka */
            } else if (!srv_topic_name_valid(td->name)) {
                pr->error_code = KP_ERR_INVALID_TOPIC_EXCEPTION;
            } else if (srv_topic_is_internal(td->name)) {
                pr->error_code = KP_ERR_INVALID_TOPIC_EXCEPTION;
                pr->error_message = kp_str_c("Cannot append to an internal topic");
            } else if (!t || pd->index < 0 || pd->index >= t->nparts) {
                pr->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                /* Kafka's record validation, before anything is appended. */
                int16_t v = req->kr.hdr.request_api_version;
                srv_validate_result vr;
                srv_validate_produce(&pol, td->name, pd->index, pd->records.p,
                                     pd->records.len > 0 ? (size_t)pd->records.len : 0, v, srv_now_ms(),
                                     v >= 8 ? &req->arena : NULL, &vr);
                pr->error_message = vr.error_message;
                pr->record_errors = vr.record_errors;
                pr->record_errors_count = vr.record_errors_count;
                if (vr.error && vr.before_log) {
                    pr->error_code = vr.error; /* Kafka answers these without the log start offset */
                    continue;
                }
                produce_op *op = calloc(1, sizeof(*op));
                if (!op) {
                    pr->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
                    continue;
                }
                op->pol = pol;
                op->refused = vr.error;
                op->base.topic_id = t->id;
                op->base.partition = pd->index;
                op->base.run = run;
                op->base.done = op_done;
                op->records = pd->records;
                op->acks = rq->acks;
                op->timeout_ms = rq->timeout_ms;
                op->legacy_ok = req->kr.hdr.request_api_version <= 2;
                op->out = pr;
                op->log_append_time = -1;
                op->log_start_offset = -1;
                op->out_topic = td->name;
                int64_t bpid;
                int16_t bepoch;
                if (txn && !txn_unverified && !vr.error && txn_batch_of(pd->records, &bpid, &bepoch)) {
                    if (nwait > 0 && (bpid != wait_pid || bepoch != wait_epoch)) {
                        /* One transactional id, one producer: another one's
                         * batch cannot be in this id's transaction. */
                        free(op);
                        pr->error_code = KP_ERR_INVALID_PRODUCER_ID_MAPPING;
                        continue;
                    }
                    if (nwait == capwait) {
                        int32_t cap = capwait ? capwait * 2 : 8;
                        produce_op **nw = realloc(wait, (size_t)cap * sizeof(*nw));
                        if (!nw) {
                            free(op);
                            pr->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
                            continue;
                        }
                        wait = nw;
                        capwait = cap;
                    }
                    wait_pid = bpid;
                    wait_epoch = bepoch;
                    wait[nwait++] = op;
                    continue;
                }
                srv_part_op_send(req, &op->base);
            }
        }
    }
    if (nwait)
        verify_and_send(req, rq->transactional_id, wait, nwait, wait_pid, wait_epoch);
    else
        free(wait);
    srv_req_release(req);
}

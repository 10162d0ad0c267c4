/*
 * write_txn_markers.c — WriteTxnMarkers (v1-2, as Kafka 4.4): the transaction coordinator's
 * request to end a producer's transaction on partitions. Each partition's
 * owner appends one COMMIT or ABORT control batch and answers once it is
 * durable (Kafka appends markers with acks=all); the request's shard builds
 * the answer.
 *
 * The per-partition append (srv_txn_marker_append) is also the transaction
 * coordinator's: main.c hands it to txn_coord.c, so both paths write a
 * marker the same way and share its durable callback.
 *
 * Owns the marker ops while they are out. Must not: decide transaction
 * outcomes (the coordinator does), or append anywhere but on the owner.
 */
#include <stdlib.h>

#include "authz_req.h"
#include "batch.h"
#include "clock.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "meta.h"
#include "partcall.h"
#include "partition.h"

typedef struct marker_op {
    srv_part_op base;
    int64_t producer_id;
    int16_t producer_epoch;
    int commit;
    int32_t coordinator_epoch;
    int8_t txn_version; /* the marker's transaction version (v2+; 0 before) */
    int16_t error;
    srv_shard *owner; /* set on the owner, for the reply */
    kp_write_txn_markers_response_writable_txn_marker_partition_result *out;
} marker_op;

/* One marker append on the owner, for WriteTxnMarkers or the coordinator's
 * own markers (txn_coord.c): both go through srv_txn_marker_append. */
typedef struct marker_ctx {
    srv_txn_marker_args m; /* what the marker says (producer, result): for durable_cb's users */
    srv_txn_marker_done done;
    void *arg;
    srv_shard *owner;
    srv_part *part;
} marker_ctx;

static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void op_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    marker_op *op = (marker_op *)base;
    op->out->error_code = op->error;
    free(op);
}

/* Refused by the producer state (fencing) or the log: the completion never
 * runs, so the answer goes now. */
static void accepted_cb(void *arg, int rc, int64_t base_offset)
{
    (void)base_offset;
    marker_ctx *c = arg;
    if (rc == 0)
        return;
    srv_txn_marker_done done = c->done;
    void *done_arg = c->arg;
    free(c);
    done(done_arg, srv_st_to_kafka(rc));
}

static void durable_cb(void *arg, int rc, int64_t base_offset)
{
    (void)base_offset;
    marker_ctx *c = arg;
    srv_shard *owner = c->owner;
    srv_txn_marker_done done = c->done;
    void *done_arg = c->arg;
    /* The HW moved over the marker, and with it the LSO: wake fetchers of
     * both isolation levels. */
    if (rc == 0) {
        srv_part_wake(owner, c->part);
        /* A __consumer_offsets partition: the producer's transactional
         * offsets there become committed or are dropped, once the marker is
         * durable (as Kafka's coordinator replays it). */
        srv_groups_on_marker(owner, &c->part->topic_id, c->part->partition, c->m.producer_id, c->m.commit);
    }
    free(c);
    done(done_arg, srv_st_to_kafka(rc));
}

/* INVALID_PRODUCER_EPOCH when the producer has a transaction open at this
 * epoch or a later one (Kafka 4.4 takes a same-epoch v2 marker for a producer
 * with none, as a v0/v1 one). A scan of the producers: markers are rare next
 * to data. */
static int16_t txn_v2_epoch_check(st_log *log, int64_t pid, int16_t epoch)
{
    size_t n = st_log_producers(log, NULL, 0);
    if (!n)
        return 0;
    st_producer_info *list = malloc(n * sizeof(*list));
    if (!list)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    n = st_log_producers(log, list, n);
    int16_t err = 0;
    for (size_t i = 0; i < n; i++)
        if (list[i].producer_id == pid && list[i].current_txn_start_offset >= 0 && list[i].epoch >= epoch)
            err = KP_ERR_INVALID_PRODUCER_EPOCH;
    free(list);
    return err;
}

void srv_txn_marker_append(srv_shard *owner, srv_part *p, const srv_txn_marker_args *m,
                           srv_txn_marker_done done, void *arg)
{
    /* Transactions v2 bump the epoch with every marker (KIP-890): one whose
     * epoch is not above the open transaction's is from an older round. The
     * log applies the v0/v1 rule (>=) only: it cannot know a marker's version. */
    if (m->txn_version >= 2) {
        int16_t err = txn_v2_epoch_check(p->log, m->producer_id, m->producer_epoch);
        if (err) {
            done(arg, err);
            return;
        }
    }
    kp_writer w;
    kp_writer_init(&w, 128);
    marker_ctx *c = malloc(sizeof(*c));
    if (!c || kp_batch_build_control(&w, 0, m->producer_id, m->producer_epoch, m->commit,
                                     m->coordinator_epoch, srv_now_ms()) != 0) {
        free(c);
        kp_writer_free(&w);
        done(arg, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    c->m = *m;
    c->done = done;
    c->arg = arg;
    c->owner = owner;
    c->part = p;
    /* Before the append: a verified batch the owner takes after this point
     * lands behind the marker, so its verification must count as stale. */
    srv_txn_guard_marker(&p->guards, m->producer_id, (int64_t)srv_now_ns());
    /* Ordered, as Produce's appends: a marker never overtakes data batches
     * that wait for room, and it copies the bytes. */
    st_log_append_ordered(p->log, w.buf, w.len, accepted_cb, durable_cb, c);
    kp_writer_free(&w);
}

static void op_appended(void *arg, int16_t error)
{
    marker_op *op = arg;
    op->error = error;
    srv_call_reply(op->owner, &op->base.call);
}

static void run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    marker_op *op = (marker_op *)base;
    if (!p) {
        op->error = KP_ERR_NOT_LEADER_OR_FOLLOWER;
        srv_call_reply(owner, &base->call);
        return;
    }
    if (srv_part_offline(p)) {
        op->error = KP_ERR_KAFKA_STORAGE_ERROR;
        srv_call_reply(owner, &base->call);
        return;
    }
    op->owner = owner;
    srv_txn_marker_args m = {op->producer_id, op->producer_epoch, op->commit, op->coordinator_epoch,
                             op->txn_version};
    srv_txn_marker_append(owner, p, &m, op_appended, op);
}

void srv_h_write_txn_markers(srv_req *req)
{
    const kp_write_txn_markers_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    kp_write_txn_markers_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    int32_t nm = rq->markers_count > 0 ? rq->markers_count : 0;
    if (resp) {
        kp_write_txn_markers_response_init(resp);
        resp->markers = kp_arena_alloc(&req->arena, (size_t)nm * sizeof(*resp->markers) + 1);
    }
    if (!resp || !resp->markers) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = resp;
    resp->markers_count = nm;
    /* Only brokers (the coordinator) write markers: Kafka answers a denied
     * request with CLUSTER_AUTHORIZATION_FAILED on every partition. */
    int allowed = srv_authorize_cluster(req, SRV_OP_CLUSTER_ACTION);
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int32_t i = 0; i < nm; i++) {
        const kp_write_txn_markers_request_writable_txn_marker *m = &rq->markers[i];
        kp_write_txn_markers_response_writable_txn_marker_result *mr = &resp->markers[i];
        kp_write_txn_markers_response_writable_txn_marker_result_init(mr);
        mr->producer_id = m->producer_id;
        int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
        mr->topics = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*mr->topics) + 1);
        mr->topics_count = mr->topics ? nt : 0;
        for (int32_t j = 0; j < mr->topics_count; j++) {
            const kp_write_txn_markers_request_writable_txn_marker_topic *tq = &m->topics[j];
            kp_write_txn_markers_response_writable_txn_marker_topic_result *tr = &mr->topics[j];
            kp_write_txn_markers_response_writable_txn_marker_topic_result_init(tr);
            tr->name = tq->name;
            int32_t np = tq->partition_indexes_count > 0 ? tq->partition_indexes_count : 0;
            tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
            tr->partitions_count = tr->partitions ? np : 0;
            const srv_topic *t = srv_meta_topic(s->meta, tq->name);
            for (int32_t k = 0; k < tr->partitions_count; k++) {
                kp_write_txn_markers_response_writable_txn_marker_partition_result *pr = &tr->partitions[k];
                kp_write_txn_markers_response_writable_txn_marker_partition_result_init(pr);
                pr->partition_index = tq->partition_indexes[k];
                if (!allowed) {
                    pr->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
                    continue;
                }
                marker_op *op =
                    srv_part_op_new(t, pr->partition_index, sizeof(*op), run, op_done, &pr->error_code);
                if (!op)
                    continue;
                op->producer_id = m->producer_id;
                op->producer_epoch = m->producer_epoch;
                op->commit = m->transaction_result != 0;
                op->coordinator_epoch = m->coordinator_epoch;
                op->txn_version = req->kr.hdr.request_api_version >= 2 ? m->transaction_version : 0;
                op->out = pr;
                srv_part_op_send(req, &op->base);
            }
        }
    }
    srv_req_release(req);
}

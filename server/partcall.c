/*
 * partcall.c — partition ops over srv_call: routing to the owner, the
 * partition lookup there, and storage errors as Kafka errors.
 *
 * Owns nothing beyond one op's trip. Must not: hold partition state.
 */
#include "partcall.h"

#include <stdlib.h>

#include "errors.h"
#include "meta.h"
#include "st_log.h"

static void op_run(srv_shard *owner, srv_call *c)
{
    srv_part_op *op = (srv_part_op *)c;
    op->run(owner, op, srv_partmap_get(owner->parts, &op->topic_id, op->partition));
}

static void op_done(srv_shard *s, srv_call *c)
{
    srv_part_op *op = (srv_part_op *)c;
    op->done(s, op);
}

static void op_drop(srv_call *c)
{
    free(c);
}

void *srv_part_op_new(const srv_topic *t, int32_t p, size_t op_size, srv_part_run_fn run,
                      srv_part_done_fn done, int16_t *err)
{
    if (!t || p < 0 || p >= t->nparts) {
        *err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    srv_part_op *op = calloc(1, op_size);
    if (!op) {
        *err = KP_ERR_UNKNOWN_SERVER_ERROR;
        return NULL;
    }
    op->topic_id = t->id;
    op->partition = p;
    op->run = run;
    op->done = done;
    return op;
}

int16_t srv_part_missing_error(const srv_shard *owner, const kp_uuid *topic_id, int32_t partition)
{
    const srv_topic *t = srv_meta_topic_by_id(owner->meta, topic_id);
    if (t && partition >= 0 && partition < t->nparts &&
        srv_topic_leader(t, partition, owner->b->cfg.node_id) != owner->b->cfg.node_id)
        return KP_ERR_NOT_LEADER_OR_FOLLOWER;
    return KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
}

void srv_part_op_send(srv_req *req, srv_part_op *op)
{
    srv_shard *s = req->shard;
    srv_call_init(&op->call, op_run, op_done, op_drop);
    srv_call_send(s, req, &op->call, srv_partition_owner(s->b->nshards, &op->topic_id, op->partition));
}

void srv_part_op_send_from(srv_shard *s, srv_part_op *op)
{
    srv_call_init(&op->call, op_run, op_done, op_drop);
    srv_call_send(s, NULL, &op->call, srv_partition_owner(s->b->nshards, &op->topic_id, op->partition));
}

int16_t srv_st_to_kafka(int rc)
{
    switch (rc) {
    case 0:
        return KP_ERR_NONE;
    case ST_E_INVALID_RECORD:
    case ST_E_CORRUPT:
        return KP_ERR_CORRUPT_MESSAGE;
    case ST_E_TOO_LARGE:
        return KP_ERR_MESSAGE_TOO_LARGE;
    case ST_E_OUT_OF_RANGE:
        return KP_ERR_OFFSET_OUT_OF_RANGE;
    case ST_E_DUPLICATE:
        return KP_ERR_NONE;
    case ST_E_OUT_OF_ORDER:
        return KP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    case ST_E_FENCED:
        return KP_ERR_INVALID_PRODUCER_EPOCH;
    case ST_E_BUSY:
        /* Not reached from appends (they wait in order in the log); a
         * retriable answer for it would let a client reorder its records. */
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    case ST_E_CLOSED:
        return KP_ERR_NOT_LEADER_OR_FOLLOWER;
    case ST_E_UNSUPPORTED:
        return KP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    case ST_E_INVALID_TIMESTAMP:
        return KP_ERR_INVALID_TIMESTAMP;
    case ST_E_INVALID_TXN_STATE:
        return KP_ERR_INVALID_TXN_STATE;
    case ST_E_COORDINATOR_FENCED:
        return KP_ERR_TRANSACTION_COORDINATOR_FENCED;
    default:
        return KP_ERR_KAFKA_STORAGE_ERROR;
    }
}

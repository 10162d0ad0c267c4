/*
 * partcall.h — one piece of partition work sent from a request's shard to
 * the partition's owner and back: a srv_call (call.h) routed by partition.
 *
 * Owns the routing of a partition op to its owner and the lookup of the
 * partition there. Must not: keep a return path of its own (the call's).
 * The op is allocated and freed by the request's shard; the owner only fills
 * results and replies with srv_call_reply(owner, &op->call).
 */
#ifndef SRV_PARTCALL_H
#define SRV_PARTCALL_H

#include "broker.h"
#include "call.h"
#include "partition.h"

typedef struct srv_part_op srv_part_op;
/* On the owner: p is NULL when the owner has no such partition. The function
 * must eventually call srv_call_reply(owner, &op->call) exactly once. */
typedef void (*srv_part_run_fn)(srv_shard *owner, srv_part_op *op, srv_part *p);
/* Back on the request's shard. */
typedef void (*srv_part_done_fn)(srv_shard *s, srv_part_op *op);

/* The error for a partition the owner has not opened: NOT_LEADER_OR_FOLLOWER
 * when another node of the quorum leads it, else UNKNOWN_TOPIC_OR_PARTITION. */
int16_t srv_part_missing_error(const srv_shard *owner, const kp_uuid *topic_id, int32_t partition);

struct srv_part_op {
    srv_call call; /* call.req: the request the op works for */
    kp_uuid topic_id;
    int32_t partition;
    srv_part_run_fn run;
    srv_part_done_fn done;
};

struct srv_topic;

/* Allocates a zeroed op of op_size bytes (a struct whose first member is a
 * srv_part_op) for partition p of topic t, ready for the caller to fill and
 * pass to srv_part_op_send. NULL when the topic or partition does not exist
 * or memory ran out; *err then holds the Kafka error for the partition. */
void *srv_part_op_new(const struct srv_topic *t, int32_t p, size_t op_size, srv_part_run_fn run,
                      srv_part_done_fn done, int16_t *err);

/* Sends op to the owner of (topic_id, partition) as a call of req; run and
 * done must be set. Freed with free() if req is answered while it is out. */
void srv_part_op_send(srv_req *req, srv_part_op *op);
/* Sends op from shard s for no request (the transaction coordinator's
 * markers): done always runs back on s, which frees op. */
void srv_part_op_send_from(srv_shard *s, srv_part_op *op);

/* Storage error (st_log.h) as the Kafka error code a client expects. */
int16_t srv_st_to_kafka(int rc);

#endif

/*
 * coord.h — the group coordinator inside the broker: which shard coordinates
 * a group, the round trip of a group request to that shard, start-up (the
 * __consumer_offsets topic, replay) and shutdown.
 *
 * A group is coordinated by the shard owning its __consumer_offsets
 * partition (abs(Java hashCode(group id)) % partitions, Kafka's rule); its
 * state lives only there. A request arriving on another shard travels there
 * as a srv_gcall (a srv_call, call.h) and comes back with its answer.
 */
#ifndef SRV_GROUP_COORD_H
#define SRV_GROUP_COORD_H

#include "broker.h"
#include "call.h"
#include "group.h"

/* Start-up, from main() after the partitions are open and before the shards
 * run: each shard gets its srv_groups and replays its __consumer_offsets
 * partitions (blocking). Shard 0 creates the topic once its loop runs if it
 * is missing. Returns 0 or a negative errno. */
int srv_groups_start(srv_broker *b);
/* After the shard threads have stopped, before they are destroyed. */
void srv_groups_stop(srv_broker *b);

typedef struct srv_gcall srv_gcall;
/* On the coordinator's shard; must end with srv_call_reply(owner, &c->call). */
typedef void (*srv_gcall_run_fn)(srv_shard *owner, srv_gcall *c, srv_groups *gs);
/* Back on the request's shard; the function owns c (srv_gcall_free). */
typedef void (*srv_gcall_done_fn)(srv_shard *s, srv_gcall *c);

struct srv_gcall {
    srv_call call;     /* call.req: the request the call works for */
    int32_t partition; /* of __consumer_offsets; -1: a shard-wide call */
    kp_uuid topic_id;
    int16_t error; /* set by the router when run never ran (NOT_COORDINATOR...) */
    srv_gcall_run_fn run;
    srv_gcall_done_fn done;
    kp_arena arena; /* the answer's memory: filled on the owner, freed with the call */
};

/* Allocates a zeroed call of `size` bytes (a struct starting with srv_gcall). */
void *srv_gcall_new(size_t size, srv_gcall_run_fn run, srv_gcall_done_fn done);
/* Sends c to the coordinator of group_id. Returns 0, or the error to answer
 * with when there is no coordinator yet (the offsets topic is being
 * created): then nothing was sent and c is still the caller's. */
int16_t srv_gcall_send(srv_req *req, srv_gcall *c, kp_str group_id);
/* Sends c to shard `shard` whatever group (ListGroups). */
void srv_gcall_send_shard(srv_req *req, srv_gcall *c, int shard);
void srv_gcall_free(srv_gcall *c);

/* Copies into the call's arena (owner side); NULL stays NULL. */
kp_str srv_gcall_str(srv_gcall *c, kp_str s);
kp_bytes srv_gcall_bytes(srv_gcall *c, kp_bytes b);

/* On the owner shard of (topic_id, partition), once a COMMIT (commit = 1) or
 * ABORT marker of producer_id is durable there: when that partition is one
 * of __consumer_offsets, the producer's pending offsets of its groups are
 * completed (srv_groups_txn_complete). Any other partition: nothing. */
void srv_groups_on_marker(srv_shard *s, const kp_uuid *topic_id, int32_t partition, int64_t producer_id,
                          int commit);

/* Whether groups can be served now; when the offsets topic is missing its
 * creation is (re)started and COORDINATOR_NOT_AVAILABLE returned. */
int16_t srv_groups_ready(srv_shard *s);

#endif

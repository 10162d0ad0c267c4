/*
 * controller.h — the controller (shard 0): the metadata log, topic changes
 * submitted from any shard, and the publication of each new version.
 *
 * Owns the only writer of srv_meta versions. Must not: be called on any
 * shard but 0 except through srv_ctl_submit.
 */
#ifndef SRV_CONTROLLER_H
#define SRV_CONTROLLER_H

#include "call.h"
#include "meta.h"

/* ---- the controller (shard 0) ---------------------------------------- */

/* One change of AlterConfigs / IncrementalAlterConfigs (SRV_ALTER_* op). */
typedef struct srv_cfg_alter {
    int op;
    const char *key;
    const char *value; /* NULL for DELETE */
} srv_cfg_alter;

typedef struct srv_topic_spec {
    kp_str name;
    int32_t nparts;      /* -1: num.partitions */
    int16_t replication; /* -1: default.replication.factor */
    int ncfg;
    srv_topic_cfg_kv *cfg;
    int skip;   /* refused by the handler already: the controller leaves it */
    int nalter; /* SRV_CTL_ALTER_CONFIGS: the changes, in order */
    srv_cfg_alter *alter;
    int replace_all; /* AlterConfigs: the listed configs replace every override */
    /* results */
    int16_t error;
    char message[160];
    kp_uuid id;
    int32_t result_nparts;
} srv_topic_spec;

/* One controller operation: a srv_call (call.h) from any shard to shard 0,
 * returned when the change is durable and every shard serves it. */
typedef struct srv_ctl_op srv_ctl_op;
typedef void (*srv_ctl_done_fn)(srv_shard *on, srv_ctl_op *op);
enum { SRV_CTL_CREATE = 1, SRV_CTL_DELETE = 2, SRV_CTL_ADD_PARTITIONS = 3, SRV_CTL_ALTER_CONFIGS = 4 };
struct srv_ctl_op {
    srv_call call; /* origin: the submitting shard; call.req: the request, if any */
    int kind;
    int validate_only;
    int nspecs;
    srv_topic_spec *specs; /* owned by the sender (often in its request's arena) */
    srv_ctl_done_fn done;  /* runs on the submitting shard */
    void *arg;
    /* controller bookkeeping */
    srv_ctl_op *next;
    int acks_pending;
    srv_meta *published;
};

/* Blocking, at start-up, before the shards run: opens the metadata log on
 * shard 0's I/O engine and replays it. */
int srv_controller_open(srv_broker *b);
void srv_controller_close(srv_broker *b);
srv_meta *srv_controller_current(srv_broker *b); /* start-up only: a new ref */

/* Submit from any shard, for req (which then waits on it) or for none
 * (NULL); op->done runs on the sender's shard when the change is durable and
 * every shard serves it. op must stay valid until then. */
void srv_ctl_submit(srv_shard *from, srv_req *req, srv_ctl_op *op);

#endif

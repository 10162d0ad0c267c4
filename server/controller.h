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
#include "quota.h"
#include "st_log.h"

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
    /* A manual assignment (with a quorum): assign_rf broker ids for each of
     * assign_n partitions (the new ones, for CreatePartitions), in the
     * sender's memory, checked for shape by the handler; NULL: the
     * controller places the replicas. */
    const int32_t *assign;
    int16_t assign_rf;
    int32_t assign_n;
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
    int16_t result_rf; /* a creation's replication factor (0: 1, a single node's) */
} srv_topic_spec;

/* One entry of AlterClientQuotas (SRV_CTL_ALTER_QUOTAS); names and keys
 * point into the sender's request. */
typedef struct srv_quota_alter {
    srv_quota_entity entity;
    int nops;
    srv_quota_op *ops;
    int skip; /* refused by the handler already: the controller leaves it */
    /* results */
    int16_t error;
    char message[300];
} srv_quota_alter;
/* SRV_CTL_ACLS: CreateAcls (create) or DeleteAcls (filters). The arrays
 * are the sender's; the controller writes only the designated results. */
typedef struct srv_acl_change {
    int ncreate;
    const srv_acl *create; /* validated by the handler */
    int16_t *create_error; /* in: non-zero = refused already, left alone; out: the outcome */
    int nfilter;
    const srv_acl_filter *filters;
    int16_t *filter_error; /* in/out, as create_error */
    /* out (deletions): the set the filters were applied to, a reference for
     * the sender to drop (srv_acl_set_unref; NULL: it was empty), and for
     * each of its bindings the index of the first filter that deleted it or
     * -1 (malloc'd by the controller, freed by the sender with free()). */
    srv_acl_set *before;
    int *deleted_by;
} srv_acl_change;

/* SRV_CTL_ALTER_BROKER: one dynamic broker config change, checked by the
 * handler already (dyncfg.h); value NULL removes it. Strings are the
 * sender's. SRV_CTL_ALTER_GROUP: the same for a group config, the resource
 * being the group id. */
typedef struct srv_dyncfg_change {
    const char *resource; /* a broker id, or "" for the cluster default */
    const char *key;
    const char *value;
    /* result */
    int16_t error;
} srv_dyncfg_change;

/* One controller operation: a srv_call (call.h) from any shard to shard 0,
 * returned when the change is durable and every shard serves it. */
typedef struct srv_ctl_op srv_ctl_op;
typedef void (*srv_ctl_done_fn)(srv_shard *on, srv_ctl_op *op);
enum {
    SRV_CTL_CREATE = 1,
    SRV_CTL_DELETE = 2,
    SRV_CTL_ADD_PARTITIONS = 3,
    SRV_CTL_ALTER_CONFIGS = 4,
    SRV_CTL_ALTER_SCRAM = 5,  /* AlterUserScramCredentials: scram[], not specs[] */
    SRV_CTL_ALTER_QUOTAS = 6, /* nquotas / quotas instead of specs */
    SRV_CTL_ACLS = 7,         /* op->acls */
    SRV_CTL_ALTER_BROKER = 8, /* ndyn / dyn: dynamic broker configs */
    SRV_CTL_REGISTER = 9,     /* op->reg: a broker's registration (or fencing) through the quorum */
    SRV_CTL_HEARTBEAT = 10,   /* op->reg->id: the active controller heard from that broker */
    SRV_CTL_ALTER_GROUP = 11, /* ndyn / dyn: dynamic group configs (resource: the group id) */
};
struct srv_ctl_op {
    srv_call call; /* origin: the submitting shard; call.req: the request, if any */
    int kind;
    int validate_only;
    int nspecs;
    srv_topic_spec *specs; /* owned by the sender (often in its request's arena) */
    int nscram;
    struct srv_scram_change *scram; /* SRV_CTL_ALTER_SCRAM (scram_store.h): results written back */
    int nquotas;
    srv_quota_alter *quotas; /* SRV_CTL_ALTER_QUOTAS, owned by the sender */
    srv_acl_change *acls;    /* SRV_CTL_ACLS */
    int ndyn;
    srv_dyncfg_change *dyn; /* SRV_CTL_ALTER_BROKER, owned by the sender */
    srv_broker_reg *reg;    /* SRV_CTL_REGISTER / HEARTBEAT, owned by the sender */
    int16_t reg_error;      /* result; HEARTBEAT also sets reg->fenced from the current version */
    /* A creation a follower forwards (auto-creation): the caller it goes in
     * an Envelope as, "type:name" and its address without the '/' (the
     * sender's memory); NULL: as the node itself. */
    const char *as_principal, *as_host;
    srv_ctl_done_fn done; /* runs on the submitting shard */
    void *arg;
    /* controller bookkeeping */
    srv_ctl_op *next;
    int acks_pending;
    srv_meta *published;
};

/* ---- the controller's state machine and its environment ------------------
 * What the apply logic needs from the broker is injected, like the group
 * code's srv_groups_env: it runs without shards or disk in unit tests. */
typedef struct srv_controller srv_controller;
typedef struct srv_ctl_env {
    void *arg;
    int64_t (*now)(void *arg); /* record timestamps */
    /* A fresh random topic id: 0, or -1 when none can be made. */
    int (*new_id)(void *arg, kp_uuid *id);
    /* Appends a batch of records to the metadata log, as st_log_append_ordered
     * does: a refusal through accepted, the outcome (durable) through done. */
    void (*append)(void *arg, const uint8_t *batch, size_t len, st_accept_cb accepted, st_append_cb done,
                   void *ctx);
    /* Makes m the version every shard serves (taking its own references);
     * calls srv_ctl_published(c, op) once all do. */
    void (*publish)(void *arg, srv_controller *c, srv_ctl_op *op, srv_meta *m);
    /* op is finished, its results in its specs: hand it back to its sender. */
    void (*finish)(void *arg, srv_ctl_op *op);
} srv_ctl_env;

/* A controller starting from the empty version; num_partitions is a
 * creation's default (num.partitions). */
srv_controller *srv_ctl_new(const srv_ctl_env *env, int32_t num_partitions);
void srv_ctl_free(srv_controller *c);
/* Queues op; operations apply one at a time, in order, each finishing
 * (env.finish) before the next starts. */
void srv_ctl_enqueue(srv_controller *c, srv_ctl_op *op);
void srv_ctl_published(srv_controller *c, srv_ctl_op *op);
const srv_meta *srv_ctl_current(const srv_controller *c);
/* The version that metadata log batches (as read from the log) replay to. */
int srv_ctl_replay(const uint8_t *batches, size_t len, srv_meta **out);

/* ---- with a metadata quorum (quorum.h) -------------------------------------- */

/* Record keys the quorum adds to the metadata log: 'P' + topic id, the
 * leader of each partition; 'N' + big-endian node id, a registration. */
#define SRV_PLACE_RECORD_KEY  'P'
#define SRV_BROKER_RECORD_KEY 'N'
/* The append failed because this node is not (or no longer) the leader. */
#define SRV_CTL_E_NOT_CONTROLLER (-4101)

/* From then on changes are made only while is_leader(arg) says this node is
 * the active controller (others are refused NOT_CONTROLLER) and partitions
 * are placed on the registered brokers. */
void srv_ctl_set_quorum(srv_controller *c, int (*is_leader)(void *arg), void *arg);
/* The active controller heard from broker id (a heartbeat's op), with the
 * argument of srv_ctl_set_quorum. */
void srv_ctl_set_heard(srv_controller *c, void (*heard)(void *arg, int32_t id));
/* A creation on a node that is not the active controller goes to
 * forward(arg, op), which sends it to the active controller as CreateTopics
 * (in an Envelope naming op->as_principal when set) and calls
 * srv_ctl_forwarded with the CreateTopics response's body (NULL: none came).
 * An op whose request has forward_error set (its Envelope got no usable
 * answer) is answered that error instead of being forwarded. */
void srv_ctl_set_forward(srv_controller *c, void (*forward)(void *arg, srv_ctl_op *op));
void srv_ctl_forwarded(srv_controller *c, srv_ctl_op *op, const uint8_t *body, size_t len, int16_t version);
/* Publishes m (a reference moved in) to every shard, for no operation. */
void srv_ctl_publish_all(srv_broker *b, srv_meta *m);
/* m (a reference moved in) is the version the committed log replays to. */
void srv_ctl_adopt(srv_controller *c, srv_meta *m);
/* Replicas of partitions from..nparts-1 with replication factor rf: the
 * leaders round-robin over m's unfenced brokers in placement order (id
 * order; with racks, alternating over the racks) starting at the start-th,
 * each followed by the next rf-1 brokers of that order; ISR = replicas,
 * epochs 0. Returns how many brokers there are to place on; nothing is
 * written when leaders is NULL or rf is not in 1..min(that, SRV_RF_MAX). */
int srv_ctl_place(const srv_meta *m, uint32_t start, int32_t from, int32_t nparts, int16_t rf,
                  int32_t *leaders, srv_part_repl *repl);
/* With a quorum: the replication factors of creations that ask for the default. */
void srv_ctl_set_replication(srv_controller *c, int16_t default_rf, int16_t offsets_rf, int16_t txn_rf);
/* The value and key of a registration record. */
int srv_ctl_encode_broker(kp_writer *w, const srv_broker_reg *r);
void srv_ctl_broker_key(int32_t id, uint8_t key[5]);

/* ---- the broker's controller ------------------------------------------------ */

/* Blocking, at start-up, before the shards run: opens the metadata log on
 * shard 0's I/O engine and replays it. */
int srv_controller_open(srv_broker *b);
/* Shutdown, loops stopped and b->draining set: finishes the metadata log's
 * appends in flight (their callbacks publish nothing). */
void srv_controller_drain(srv_broker *b);
void srv_controller_close(srv_broker *b);
srv_meta *srv_controller_current(srv_broker *b); /* start-up only: a new ref */

/* kbroker-storage format --add-scram, before the broker's first start:
 * appends the records of the credential upserts ch[0..n-1] to the metadata
 * log of log_dir (created when missing), through the same checks and
 * encoder as AlterUserScramCredentials. Refuses (nothing written) when the
 * log holds credentials already or any change is refused. Blocking, without
 * shards: a tool. 0, or -1 with a message in err. */
int srv_controller_bootstrap_scram(const char *log_dir, struct srv_scram_change *ch, int n, char *err,
                                   size_t errlen);

/* Submit from any shard, for req (which then waits on it) or for none
 * (NULL); op->done runs on the sender's shard when the change is durable and
 * every shard serves it. op must stay valid until then. */
void srv_ctl_submit(srv_shard *from, srv_req *req, srv_ctl_op *op);

#endif

/*
 * meta.h — cluster metadata: topics, their ids, partition counts, configs
 * and which shard owns each partition.
 *
 * A srv_meta is an immutable, reference-counted version. The controller (on
 * shard 0) is its only writer: it makes a new version for each change,
 * persists the change in the metadata log, then publishes the version to
 * every shard over the rings. Readers keep the version they started with.
 */
#ifndef SRV_META_H
#define SRV_META_H

#include "broker.h"

#define SRV_TOPIC_NAME_MAX 249

typedef struct srv_topic_cfg_kv {
    char *key;
    char *value;
} srv_topic_cfg_kv;

typedef struct srv_topic {
    char *name;
    kp_uuid id;
    int32_t nparts;
    int ncfg;
    srv_topic_cfg_kv *cfg; /* explicit overrides only */
} srv_topic;

struct srv_meta {
    int refs; /* atomic */
    uint64_t version;
    int ntopics;
    srv_topic *topics; /* sorted by name */
    int *by_id;        /* topic indexes sorted by id (NULL: search linearly) */
};

srv_meta *srv_meta_new_empty(void);
srv_meta *srv_meta_ref(srv_meta *m);
void srv_meta_unref(srv_meta *m);
const srv_topic *srv_meta_topic(const srv_meta *m, kp_str name);
const srv_topic *srv_meta_topic_by_id(const srv_meta *m, const kp_uuid *id);
const char *srv_topic_cfg_get(const srv_topic *t, const char *key); /* NULL when not overridden */

/* A stable owner for a partition: spreads a topic's partitions over shards. */
int srv_partition_owner(int nshards, const kp_uuid *topic_id, int32_t partition);

/* Topics the broker writes itself (__consumer_offsets, __transaction_state):
 * listed as internal, not writable or deletable by clients, as in Kafka. */
int srv_topic_is_internal(kp_str name);

/* Kafka's legal topic names: [a-zA-Z0-9._-], 1..249 chars, not "." or "..". */
int srv_topic_name_valid(kp_str name);

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

/* One controller operation, sent from any shard to shard 0 and returned. */
typedef struct srv_ctl_op srv_ctl_op;
typedef void (*srv_ctl_done_fn)(srv_shard *on, srv_ctl_op *op);
enum { SRV_CTL_CREATE = 1, SRV_CTL_DELETE = 2, SRV_CTL_ADD_PARTITIONS = 3, SRV_CTL_ALTER_CONFIGS = 4 };
struct srv_ctl_op {
    srv_msg msg;
    int kind;
    int from_shard;
    int validate_only;
    int nspecs;
    srv_topic_spec *specs; /* owned by the sender */
    srv_ctl_done_fn done;  /* runs on from_shard */
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

/* Submit from any shard; op->done runs on the sender's shard when the
 * change is durable and every shard serves it. */
void srv_ctl_submit(srv_shard *from, srv_ctl_op *op);

#endif

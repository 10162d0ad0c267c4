/*
 * meta.h — cluster metadata: topics, their ids, partition counts, configs
 * and which shard owns each partition.
 *
 * A srv_meta is an immutable, reference-counted version. The controller
 * (controller.h, on shard 0) is its only writer: it makes a new version for
 * each change, persists the change in the metadata log, then publishes the
 * version to every shard over the rings. Readers keep the version they
 * started with.
 */
#ifndef SRV_META_H
#define SRV_META_H

#include "broker.h"

#define SRV_TOPIC_NAME_MAX 249

typedef struct srv_topic_cfg_kv {
    char *key;
    char *value;
} srv_topic_cfg_kv;

/* Kafka caps a replication factor only by the broker count; kbroker keeps
 * a partition's replica set inline and refuses more than this many. */
#define SRV_RF_MAX 16

/* One partition's replication state, as the active controller placed it:
 * the replicas (preferred leader first), the in-sync replicas, the leader's
 * epoch (+1 at each leader change) and the partition epoch (+1 at every
 * change of the partition's record). */
typedef struct srv_part_repl {
    int32_t leader_epoch;
    int32_t part_epoch;
    int16_t nreplicas;
    int16_t nisr;
    int32_t replicas[SRV_RF_MAX];
    int32_t isr[SRV_RF_MAX];
} srv_part_repl;

typedef struct srv_topic {
    char *name;
    kp_uuid id;
    int32_t nparts;
    int ncfg;
    srv_topic_cfg_kv *cfg; /* explicit overrides only */
    /* With a metadata quorum: the node leading each partition (nparts
     * entries, placed by the active controller); NULL on a single node,
     * where this node leads every partition. */
    int32_t *leaders;
    /* Set exactly when leaders is: each partition's replicas, ISR, epochs. */
    srv_part_repl *repl;
} srv_topic;

/* A broker registered with the metadata quorum (quorum.h). */
typedef struct srv_broker_reg {
    int32_t id;
    char host[256];
    uint16_t port;
    char rack[64]; /* "" = none */
    int fenced;    /* stopped heartbeating: not listed, leads nothing new */
} srv_broker_reg;

struct srv_meta {
    int refs; /* atomic */
    uint64_t version;
    int ntopics;
    srv_topic *topics; /* sorted by name */
    int *by_id;        /* topic indexes sorted by id (NULL: search linearly) */
    /* SCRAM credentials (scram_store.h): shared by versions, NULL when none. */
    struct srv_scram_set *scram;
    /* Client quotas (quota.h), shared by the versions that did not change
     * them; NULL: none. One reference per version. */
    struct srv_quota_set *quotas;
    srv_acl_set *acls; /* the ACLs (authz.h), one reference held; NULL: none */
    /* Dynamic broker configs (dyncfg.h), one reference held; NULL: none. */
    struct srv_dyncfg *dyncfg;
    /* Dynamic group configs ('G' records; the resource is the group id),
     * one reference held; NULL: none. */
    struct srv_dyncfg *groupcfg;
    /* With a metadata quorum: the registered brokers, sorted by id (a copy
     * per version: they are few); 0 on a single node. */
    int nbrokers;
    srv_broker_reg *brokers;
};

srv_meta *srv_meta_new_empty(void);
srv_meta *srv_meta_ref(srv_meta *m);
void srv_meta_unref(srv_meta *m);
const srv_topic *srv_meta_topic(const srv_meta *m, kp_str name);
const srv_topic *srv_meta_topic_by_id(const srv_meta *m, const kp_uuid *id);
const char *srv_topic_cfg_get(const srv_topic *t, const char *key); /* NULL when not overridden */

/* The node leading partition p of t: `self` on a single node. */
int32_t srv_topic_leader(const srv_topic *t, int32_t p, int32_t self);
const srv_broker_reg *srv_meta_broker(const srv_meta *m, int32_t id);
/* 1 when node is one of partition p's replicas (always on a single node). */
int srv_topic_is_replica(const srv_topic *t, int32_t p, int32_t node);
/* Partition p's replication state; NULL on a single node. */
const srv_part_repl *srv_topic_repl(const srv_topic *t, int32_t p);

/* A stable owner for a partition: spreads a topic's partitions over shards. */
int srv_partition_owner(int nshards, const kp_uuid *topic_id, int32_t partition);

/* Topics the broker writes itself (__consumer_offsets, __transaction_state):
 * listed as internal, not writable or deletable by clients, as in Kafka. */
int srv_topic_is_internal(kp_str name);

/* Kafka's legal topic names: [a-zA-Z0-9._-], 1..249 chars, not "." or "..". */
int srv_topic_name_valid(kp_str name);

/* ---- building versions (the controller's) ------------------------------- */

/* A new version: `base` with `upsert` replacing or adding its topic (by id)
 * and `remove` (an id) taken out. NULL when memory ran out. */
srv_meta *srv_meta_derive(const srv_meta *base, const srv_topic *upsert, const kp_uuid *remove);
/* A new version: `base`'s topics with the credential set `scram` (which
 * the version references). NULL when memory ran out. */
srv_meta *srv_meta_with_scram(const srv_meta *base, struct srv_scram_set *scram);
/* A new version: base's topics with the quota set q (a reference of its
 * own is taken). NULL when memory ran out. */
srv_meta *srv_meta_with_quotas(const srv_meta *base, struct srv_quota_set *q);
/* A new version: base with its ACL set replaced by acls (a reference is
 * taken). NULL when memory ran out. */
srv_meta *srv_meta_derive_acls(const srv_meta *base, srv_acl_set *acls);
/* A new version: base with its dynamic broker configs replaced by d (a
 * reference is taken; NULL: none). NULL when memory ran out. */
srv_meta *srv_meta_with_dyncfg(const srv_meta *base, struct srv_dyncfg *d);
srv_meta *srv_meta_with_groupcfg(const srv_meta *base, struct srv_dyncfg *d);
/* (Re)builds m's by-id index of m->topics. */
void srv_meta_index(srv_meta *m);
/* Deep copy; on failure dst holds what was copied, for srv_topic_free. */
int srv_topic_copy(srv_topic *dst, const srv_topic *src);
void srv_topic_free(srv_topic *t);

#endif

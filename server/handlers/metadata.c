/*
 * metadata.c — Metadata (v0-12): this single broker, its topics with ids,
 * partitions (this node leads every one), and auto-creation of unknown
 * topics when auto.create.topics.enable and the client allows it.
 *
 * An auto-created topic is answered only once it exists on every shard, so
 * the client's next produce finds the partitions open.
 *
 * With the authorizer on, as Kafka: topics the principal may not DESCRIBE are
 * left out of an all-topics answer and TOPIC_AUTHORIZATION_FAILED when named;
 * auto-creation needs CREATE on the cluster or on the topic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "controller.h"
#include "partition.h"
#include "quorum.h"

typedef struct md_state {
    srv_ctl_op op;
    srv_req *req;
    uint8_t *no_create; /* per requested topic: missing, and CREATE was denied */
} md_state;

/* With a quorum: the partition as the active controller placed it. A
 * fenced or unknown leader leaves it without one (leader -1,
 * LEADER_NOT_AVAILABLE), as Kafka shows an offline partition; the replicas
 * on fenced brokers are listed as offline, as Kafka lists replicas on
 * brokers it does not see alive. */
static void quorum_partition(srv_req *req, const srv_topic *t, int32_t p,
                             kp_metadata_response_metadata_response_partition *pr)
{
    int32_t node = (int32_t)req->shard->b->cfg.node_id;
    const srv_meta *m = req->shard->meta;
    const srv_part_repl *rp = srv_topic_repl(t, p);
    int32_t leader = t->leaders[p];
    const srv_broker_reg *r = srv_meta_broker(m, leader);
    int live = r && !r->fenced;
    pr->leader_id = live ? leader : -1;
    pr->error_code = live ? KP_ERR_NONE : KP_ERR_LEADER_NOT_AVAILABLE;
    pr->leader_epoch = rp ? rp->leader_epoch : 0;
    pr->replica_nodes = (int32_t *)(rp ? rp->replicas : &t->leaders[p]);
    pr->replica_nodes_count = rp ? rp->nreplicas : 1;
    pr->isr_nodes = (int32_t *)(rp ? rp->isr : &t->leaders[p]);
    pr->isr_nodes_count = rp ? rp->nisr : live;
    pr->offline_replicas_count = 0;
    int32_t *off = kp_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)(pr->replica_nodes_count + 1));
    if (!off)
        return; /* the arena's failed flag refuses the whole answer */
    pr->offline_replicas = off;
    for (int i = 0; i < pr->replica_nodes_count; i++) {
        int32_t id = pr->replica_nodes[i];
        const srv_broker_reg *b = srv_meta_broker(m, id);
        if (!b || b->fenced || (id == node && srv_part_reported_offline(req->shard, &t->id, p)))
            off[pr->offline_replicas_count++] = id;
    }
    if (leader == node && srv_part_reported_offline(req->shard, &t->id, p))
        pr->error_code = KP_ERR_KAFKA_STORAGE_ERROR;
}

static void fill_partitions(srv_req *req, kp_metadata_response_metadata_response_topic *tr,
                            const srv_topic *t)
{
    int32_t node = (int32_t)req->shard->b->cfg.node_id;
    tr->partitions = kp_arena_alloc(&req->arena, (size_t)t->nparts * sizeof(*tr->partitions));
    /* A single node: one replica list shared by all partitions (a quorum's
     * lists are the version's own). */
    int32_t *nodes = kp_arena_alloc(&req->arena, sizeof(int32_t));
    if (!tr->partitions || !nodes)
        return; /* the arena's failed flag refuses the whole answer */
    nodes[0] = node;
    tr->partitions_count = t->nparts;
    for (int32_t p = 0; p < t->nparts; p++) {
        kp_metadata_response_metadata_response_partition *pr = &tr->partitions[p];
        kp_metadata_response_metadata_response_partition_init(pr);
        pr->partition_index = p;
        if (t->leaders) {
            quorum_partition(req, t, p, pr);
            continue;
        }
        pr->leader_id = node;
        pr->leader_epoch = 0;
        pr->replica_nodes = nodes;
        pr->replica_nodes_count = 1;
        pr->isr_nodes = nodes;
        pr->isr_nodes_count = 1;
        pr->offline_replicas_count = 0;
        if (srv_part_reported_offline(req->shard, &t->id, p)) {
            /* Its log could not be opened: never advertised as healthy. */
            pr->error_code = KP_ERR_KAFKA_STORAGE_ERROR;
            pr->offline_replicas = nodes;
            pr->offline_replicas_count = 1;
        }
    }
}

static void fill_topic(srv_req *req, kp_metadata_response_metadata_response_topic *tr, const srv_topic *t)
{
    const kp_metadata_request *rq = req->kr.body;
    tr->error_code = KP_ERR_NONE;
    tr->name = kp_str_c(t->name);
    tr->topic_id = t->id;
    /* Kafka's Topic.isInternal is by name too. */
    tr->is_internal = (uint8_t)srv_topic_is_internal(kp_str_c(t->name));
    tr->topic_authorized_operations =
        req->kr.hdr.request_api_version >= 8 && rq->include_topic_authorized_operations
            ? srv_authorized_ops(req, SRV_RES_TOPIC, kp_str_c(t->name))
            : INT32_MIN;
    fill_partitions(req, tr, t);
}

/* A topic the principal may not see: its name and the error, nothing else. */
static void unauthorized_topic(kp_metadata_response_metadata_response_topic *tr, kp_str name)
{
    tr->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
    tr->name = name;
    tr->topic_id = (kp_uuid){{0}};
    tr->is_internal = (uint8_t)(name.len >= 0 && srv_topic_is_internal(name));
    tr->partitions_count = 0;
}

static void respond(srv_req *req, const uint8_t *no_create)
{
    const kp_metadata_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    srv_broker *b = s->b;
    int16_t v = req->kr.hdr.request_api_version;
    const srv_meta *m = s->meta;
    kp_metadata_response resp;
    kp_metadata_response_init(&resp);
    resp.brokers = kp_arena_alloc(&req->arena, sizeof(*resp.brokers) * (size_t)(m->nbrokers + 1));
    if (!resp.brokers) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_metadata_response_metadata_response_broker_init(resp.brokers);
    resp.brokers[0].node_id = (int32_t)b->cfg.node_id;
    resp.brokers[0].host = kp_str_c(srv_req_endpoint(req)->host);
    resp.brokers[0].port = srv_req_endpoint(req)->port;
    resp.brokers[0].rack = b->cfg.broker_rack[0] ? kp_str_c(b->cfg.broker_rack) : KP_STR_NULL;
    resp.brokers_count = 1;
    /* With a quorum: every other registered, unfenced broker too (this
     * node is listed as the listener the client came through). */
    for (int i = 0; i < m->nbrokers; i++) {
        const srv_broker_reg *r = &m->brokers[i];
        if (r->fenced || r->id == (int32_t)b->cfg.node_id)
            continue;
        kp_metadata_response_metadata_response_broker *br = &resp.brokers[resp.brokers_count++];
        kp_metadata_response_metadata_response_broker_init(br);
        br->node_id = r->id;
        br->host = kp_str_c(r->host);
        br->port = r->port;
        br->rack = r->rack[0] ? kp_str_c(r->rack) : KP_STR_NULL;
    }
    resp.cluster_id = kp_str_c(b->cluster_id);
    resp.controller_id = (int32_t)b->cfg.node_id;
    if (b->quorum) {
        /* Clients send CreateTopics and the like to the controller they see
         * here: the active one. */
        int32_t lid = srv_quorum_leader_id(b->quorum);
        resp.controller_id = lid >= 0 && srv_meta_broker(m, lid) ? lid : -1;
    }
    resp.cluster_authorized_operations =
        v >= 8 && v <= 10 && rq->include_cluster_authorized_operations
            ? srv_authorized_ops(req, SRV_RES_CLUSTER, kp_str_c(SRV_CLUSTER_RESOURCE))
            : INT32_MIN;
    /* v0: an empty list means all topics; v1+: null means all. */
    int all = rq->topics_count < 0 || (v == 0 && rq->topics_count == 0);
    int32_t n = all ? m->ntopics : rq->topics_count;
    resp.topics = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp.topics) + 1);
    if (!resp.topics) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp.topics_count = all ? 0 : n;
    for (int32_t i = 0; i < n; i++) {
        kp_metadata_response_metadata_response_topic *tr = &resp.topics[all ? resp.topics_count : i];
        kp_metadata_response_metadata_response_topic_init(tr);
        tr->topic_authorized_operations = INT32_MIN;
        if (all) {
            if (srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, kp_str_c(m->topics[i].name))) {
                fill_topic(req, tr, &m->topics[i]);
                resp.topics_count++;
            }
            continue;
        }
        const kp_metadata_request_metadata_request_topic *q = &rq->topics[i];
        const srv_topic *t = NULL;
        /* A topic id wins over an empty name: the consumer of KIP-848 asks for
         * the names of its assigned topic ids with Name "" (Kafka 4.4 answers
         * them by id). */
        int by_id = !kp_uuid_is_zero(&q->topic_id) && q->name.len <= 0;
        if (by_id)
            t = srv_meta_topic_by_id(m, &q->topic_id);
        else if (q->name.len >= 0)
            t = srv_meta_topic(m, q->name);
        kp_str name = t ? kp_str_c(t->name) : by_id ? KP_STR_NULL : q->name;
        if (name.len >= 0 && !srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, name)) {
            unauthorized_topic(tr, name);
            continue;
        }
        if (t) {
            fill_topic(req, tr, t);
            continue;
        }
        if (no_create && no_create[i]) {
            unauthorized_topic(tr, name);
            continue;
        }
        tr->name = by_id ? KP_STR_NULL : q->name;
        tr->topic_id = q->topic_id;
        if (by_id || q->name.len < 0)
            tr->error_code = KP_ERR_UNKNOWN_TOPIC_ID;
        else if (!srv_topic_name_valid(q->name))
            tr->error_code = KP_ERR_INVALID_TOPIC_EXCEPTION;
        else
            tr->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    srv_req_respond(req, &resp);
}

static void created(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    md_state *st = (md_state *)op;
    respond(st->req, st->no_create); /* topics that failed to be created answer as unknown */
}

void srv_h_metadata(srv_req *req)
{
    const kp_metadata_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    int16_t v = req->kr.hdr.request_api_version;
    int allow = s->b->cfg.auto_create_topics_enable && (v < 4 || rq->allow_auto_topic_creation);
    int missing = 0, denied = 0;
    uint8_t *no_create = NULL;
    if (allow && rq->topics_count > 0) {
        no_create = kp_arena_alloc(&req->arena, (size_t)rq->topics_count);
        if (!no_create) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        int cluster_create = -1; /* asked once, and only if something is missing */
        for (int32_t i = 0; i < rq->topics_count; i++) {
            kp_str name = rq->topics[i].name;
            if (name.len < 0 || !srv_topic_name_valid(name) || srv_meta_topic(s->meta, name))
                continue;
            if (cluster_create < 0)
                cluster_create = srv_authorize_cluster(req, SRV_OP_CREATE);
            if (!cluster_create && !srv_authorize(req, SRV_OP_CREATE, SRV_RES_TOPIC, name)) {
                no_create[i] = 1;
                denied++;
            } else {
                missing++;
            }
        }
    }
    if (!missing) {
        respond(req, denied ? no_create : NULL);
        return;
    }
    md_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    srv_topic_spec *specs = kp_arena_alloc(&req->arena, (size_t)missing * sizeof(*specs));
    if (!st || !specs) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->no_create = no_create;
    int k = 0;
    for (int32_t i = 0; i < rq->topics_count; i++) {
        kp_str name = rq->topics[i].name;
        if (name.len >= 0 && srv_topic_name_valid(name) && !srv_meta_topic(s->meta, name) && !no_create[i]) {
            specs[k].name = name;
            specs[k].nparts = -1;
            specs[k].replication = -1;
            k++;
        }
    }
    st->req = req;
    st->op.kind = SRV_CTL_CREATE;
    st->op.nspecs = missing;
    st->op.specs = specs;
    /* A follower forwards the creation as the caller, as Kafka's auto-topic
     * creation does (quorum.c). */
    st->op.as_principal = kp_arena_strz(&req->arena, srv_req_principal(req).p).p;
    st->op.as_host = kp_arena_strz(&req->arena, srv_req_host(req).p).p;
    st->op.done = created;
    srv_ctl_submit(s, req, &st->op);
}

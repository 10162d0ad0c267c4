/*
 * group_txn.c — offsets committed inside a transaction (TxnOffsetCommit, see
 * group.h): the checks of Kafka 4.4's group coordinator
 * (validateTransactionalOffsetCommit), the transactional batch written to the
 * group's __consumer_offsets partition, the pending offsets per producer, and
 * their completion by the producer's COMMIT or ABORT marker, live or replayed
 * (replayEndTransactionMarker).
 *
 * Owns every srv_gtxn (the shard's pending transactional offsets). Must not:
 * block, call into a shard, decide a transaction's outcome (the marker does),
 * or make a pending offset visible before its COMMIT marker is durable.
 */
#include "group_internal.h"
#include "sstr.h"

#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "errors.h"
#include "group_log.h"

/* ---- the pending offsets ------------------------------------------------- */

static void gtxn_free(srv_gtxn *e)
{
    srv_sfree(e->group);
    srv_sfree(e->topic);
    srv_sfree(e->v.metadata);
    free(e);
}

void srv_groupi_txn_free(srv_groups *gs)
{
    srv_gtxn *e = gs->txn;
    while (e) {
        srv_gtxn *next = e->next;
        gtxn_free(e);
        e = next;
    }
    gs->txn = NULL;
}

static int same_tp(const srv_gtxn *e, kp_str group, kp_str topic, int32_t p)
{
    return e->partition == p && srv_seq(group, e->group) && srv_seq(topic, e->topic);
}

void srv_groupi_txn_put(srv_groups *gs, int32_t cpart, int64_t pid, kp_str group, kp_str topic, int32_t p,
                        const srv_goffset *o)
{
    char *md = srv_sdupc(o->metadata ? o->metadata : "");
    if (!md)
        return;
    int64_t seq = o->seq > 0 ? o->seq : ++gs->seq;
    for (srv_gtxn *e = gs->txn; e; e = e->next) {
        if (e->pid == pid && same_tp(e, group, topic, p)) {
            srv_sfree(e->v.metadata);
            e->v = *o;
            e->v.metadata = md;
            e->v.seq = seq;
            e->cpart = cpart;
            return;
        }
    }
    srv_gtxn *e = calloc(1, sizeof(*e));
    if (!e || !(e->group = srv_sdup(group)) || !(e->topic = srv_sdup(topic))) {
        if (e) {
            srv_sfree(e->group);
            free(e);
        }
        srv_sfree(md);
        return;
    }
    e->pid = pid;
    e->cpart = cpart;
    e->partition = p;
    e->v = *o;
    e->v.metadata = md;
    e->v.seq = seq;
    e->next = gs->txn;
    gs->txn = e;
}

void srv_groupi_txn_drop(srv_groups *gs, kp_str group, kp_str topic, int32_t p)
{
    srv_gtxn **pp = &gs->txn;
    while (*pp) {
        srv_gtxn *e = *pp;
        int hit = topic.len < 0 ? srv_seq(group, e->group) : same_tp(e, group, topic, p);
        if (hit) {
            *pp = e->next;
            gtxn_free(e);
        } else {
            pp = &e->next;
        }
    }
}

int srv_groupi_txn_any(const srv_groups *gs, kp_str group)
{
    for (const srv_gtxn *e = gs->txn; e; e = e->next)
        if (srv_seq(group, e->group))
            return 1;
    return 0;
}

void srv_groupi_txn_foreach(const srv_groups *gs, kp_str group, void (*fn)(void *arg, const srv_gtxn *e),
                            void *arg)
{
    for (const srv_gtxn *e = gs->txn; e; e = e->next)
        if (srv_seq(group, e->group))
            fn(arg, e);
}

int srv_group_txn_pending(const srv_groups *gs, kp_str group_id, kp_str topic, int32_t partition)
{
    if (group_id.len < 0 || topic.len < 0)
        return 0;
    for (const srv_gtxn *e = gs->txn; e; e = e->next)
        if (same_tp(e, group_id, topic, partition))
            return 1;
    return 0;
}

void srv_groups_txn_complete(srv_groups *gs, int32_t partition, int64_t producer_id, int commit)
{
    srv_gtxn **pp = &gs->txn;
    while (*pp) {
        srv_gtxn *e = *pp;
        if (e->pid != producer_id || e->cpart != partition) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        if (commit) {
            srv_group *g = srv_groupi_load_get(gs, partition, srv_s(e->group));
            const srv_goffset *cur = g ? srv_group_offset(g, srv_s(e->topic), e->partition) : NULL;
            /* Kafka keeps the most recent record when transactional and plain
             * commits mix: a plain commit written after this transaction's
             * record stays. */
            if (g && (!cur || e->v.seq > cur->seq))
                srv_groupi_offset_put(g, srv_s(e->topic), e->partition, &e->v);
        }
        gtxn_free(e);
    }
}

/* ---- TxnOffsetCommit ---------------------------------------------------- */

typedef struct txn_ctx {
    srv_group *g;
    int64_t pid;
    int n;
    srv_commit_item *items;
    srv_group_done_cb done;
    void *ctx;
} txn_ctx;

static void txn_written(void *p, int16_t err)
{
    txn_ctx *c = p;
    srv_group *g = c->g;
    srv_groups *gs = g->gs;
    err = srv_glog_write_error(err);
    for (int i = 0; i < c->n; i++) {
        srv_commit_item *it = &c->items[i];
        if (it->error)
            continue;
        if (err) {
            it->error = err;
        } else if (g->state != SRV_GS_DEAD) {
            srv_goffset v = {0};
            v.offset = it->offset;
            v.leader_epoch = it->leader_epoch;
            char *md = srv_sdup(it->metadata.len >= 0 ? it->metadata : kp_str_c(""));
            v.metadata = md;
            v.commit_ts = it->commit_ts;
            v.expire_ts = -1;
            if (md)
                srv_groupi_txn_put(gs, g->partition, c->pid, srv_s(g->id), it->topic, it->partition, &v);
            srv_sfree(md);
        }
    }
    g->pending_commits--;
    srv_group_done_cb done = c->done;
    void *ctx = c->ctx;
    free(c);
    srv_groupi_unref(g);
    done(ctx);
}

static void fail_items(srv_commit_item *items, int n, int16_t err)
{
    for (int i = 0; i < n; i++)
        if (!items[i].error)
            items[i].error = err;
}

/* Kafka's validateTransactionalOffsetCommit with ClassicGroup's and
 * ConsumerGroup's validateOffsetCommit(isTransactional = true): no
 * REBALANCE_IN_PROGRESS, no member check for the older versions without
 * member id and generation, and a stale member epoch is ILLEGAL_GENERATION. */
static int16_t validate(srv_groups *gs, int32_t partition, const srv_txn_commit_req *rq, srv_group **out)
{
    *out = NULL;
    if (rq->group_id.len <= 0)
        return KP_ERR_INVALID_GROUP_ID;
    srv_group *g = srv_groups_find(gs, rq->group_id);
    if (!g) {
        if (rq->generation >= 0)
            return KP_ERR_ILLEGAL_GENERATION;
        if (!(g = srv_groupi_create(gs, rq->group_id, partition)))
            return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    *out = g;
    if (g->cg) {
        /* Version 9 semantics: the transactional check has no
         * UNSUPPORTED_VERSION for old OffsetCommit versions. */
        int16_t e = srv_cgroup_validate_commit(g, rq->member_id, rq->generation, 9);
        return e == KP_ERR_STALE_MEMBER_EPOCH ? KP_ERR_ILLEGAL_GENERATION : e;
    }
    if (rq->generation < 0 && g->state == SRV_GS_EMPTY)
        return KP_ERR_NONE;
    if (rq->generation >= 0 || rq->member_id.len > 0 || rq->instance_id.len >= 0) {
        int16_t e = srv_groupi_validate_member(g, rq->member_id, rq->instance_id);
        if (e)
            return e;
        if (rq->generation != g->generation)
            return KP_ERR_ILLEGAL_GENERATION;
    }
    return KP_ERR_NONE;
}

void srv_group_txn_commit(srv_groups *gs, int32_t partition, const srv_txn_commit_req *rq, int n,
                          srv_commit_item *items, srv_group_done_cb done, void *ctx)
{
    srv_group *g;
    int16_t err = validate(gs, partition, rq, &g);
    if (err) {
        fail_items(items, n, err);
        done(ctx);
        return;
    }
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    /* A transactional batch of the producer, without a sequence: the log
     * fences an older epoch and opens the producer's transaction on this
     * partition, so the LSO waits for the marker as for any partition. */
    kp_batch_builder_set_producer(&bb, rq->producer_id, rq->producer_epoch, -1, 1);
    int count = 0, rc = 0;
    int64_t t = srv_groupi_now(gs);
    for (int i = 0; i < n && rc == 0; i++) {
        srv_commit_item *it = &items[i];
        if (it->error)
            continue;
        if (it->metadata.len > SRV_GROUP_OFFSET_METADATA_MAX) {
            it->error = KP_ERR_OFFSET_METADATA_TOO_LARGE;
            continue;
        }
        char *topic = srv_sdup(it->topic);
        char *md = srv_sdup(it->metadata.len >= 0 ? it->metadata : kp_str_c(""));
        srv_goffset v = {0};
        v.offset = it->offset;
        v.leader_epoch = it->leader_epoch;
        v.metadata = md;
        v.commit_ts = it->commit_ts;
        v.expire_ts = -1;
        rc = topic && md ? srv_glog_add_offset(&bb, t, srv_s(g->id), srv_s(topic), it->partition, &v)
                         : KP_E_NOMEM;
        srv_sfree(topic);
        srv_sfree(md);
        count++;
    }
    if (count == 0) {
        kp_batch_builder_free(&bb);
        done(ctx);
        return;
    }
    txn_ctx *c = malloc(sizeof(*c));
    if (c) {
        c->g = g;
        c->pid = rq->producer_id;
        c->n = n;
        c->items = items;
        c->done = done;
        c->ctx = ctx;
        g->pending_commits++; /* txn_written may run inline and counts down */
    }
    if (srv_groupi_append(g, &bb, c ? rc : KP_E_NOMEM, txn_written, c) != 0) {
        if (c)
            g->pending_commits--;
        free(c);
        fail_items(items, n, KP_ERR_UNKNOWN_SERVER_ERROR);
        done(ctx);
    }
}

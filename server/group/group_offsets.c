/*
 * group_offsets.c — the committed offsets of the groups of one shard (see
 * group.h): OffsetCommit (classic generations and KIP-848 member epochs),
 * the lookups of OffsetFetch, OffsetDelete, and their retention
 * (offsets.retention.minutes).
 *
 * Owns every srv_goffset and each group's offset table. Must not: block,
 * call into a shard, or change a group's membership (group_classic.c,
 * consumer.c).
 */
#include "group_internal.h"
#include "sstr.h"

#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "errors.h"
#include "group_log.h"
#include "logging.h"

/* ---- the offsets of a group --------------------------------------------- */

/* Offset commits keep their own answer for a record too large, as Kafka's
 * offset store (GroupMetadataManager.storeOffsets) gives it:
 * INVALID_COMMIT_OFFSET_SIZE, the commit's own fault rather than the
 * server's; everything else maps as every coordinator write does. */
static int16_t commit_error(int16_t e)
{
    if (e == KP_ERR_MESSAGE_TOO_LARGE || e == KP_ERR_RECORD_LIST_TOO_LARGE || e == KP_ERR_INVALID_FETCH_SIZE)
        return KP_ERR_INVALID_COMMIT_OFFSET_SIZE;
    return srv_glog_write_error(e);
}

static size_t offset_bucket(const srv_group *g, const char *topic, size_t tl, int32_t p)
{
    uint64_t h = srv_groupi_fnv(topic, tl, 1469598103934665603ull);
    h = srv_groupi_fnv(&p, sizeof(p), h);
    return (size_t)h & (g->onb - 1);
}

static srv_goffset **offset_slot(srv_group *g, kp_str topic, int32_t p)
{
    srv_goffset **pp = &g->obuckets[offset_bucket(g, topic.p, (size_t)(topic.len > 0 ? topic.len : 0), p)];
    while (*pp && !((*pp)->partition == p && srv_seq(topic, (*pp)->topic)))
        pp = &(*pp)->next;
    return pp;
}

const srv_goffset *srv_group_offset(const srv_group *g, kp_str topic, int32_t partition)
{
    if (topic.len < 0)
        return NULL;
    return *offset_slot((srv_group *)g, topic, partition);
}

void srv_group_foreach_offset(const srv_group *g, void (*fn)(void *arg, const srv_goffset *o), void *arg)
{
    for (size_t i = 0; i < g->onb; i++)
        for (const srv_goffset *o = g->obuckets[i]; o; o = o->next)
            fn(arg, o);
}

static void offsets_grow(srv_group *g)
{
    size_t n = g->onb * 2;
    srv_goffset **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return;
    size_t old = g->onb;
    srv_goffset **ob = g->obuckets;
    g->obuckets = nb;
    g->onb = n;
    for (size_t i = 0; i < old; i++) {
        srv_goffset *o = ob[i];
        while (o) {
            srv_goffset *next = o->next;
            size_t h = offset_bucket(g, o->topic, (size_t)srv_slen(o->topic), o->partition);
            o->next = nb[h];
            nb[h] = o;
            o = next;
        }
    }
    free(ob);
}

void srv_groupi_offsets_clear(srv_group *g)
{
    for (size_t i = 0; i < g->onb; i++) {
        srv_goffset *o = g->obuckets[i];
        while (o) {
            srv_goffset *next = o->next;
            srv_sfree(o->topic);
            srv_sfree(o->metadata);
            free(o);
            o = next;
        }
        g->obuckets[i] = NULL;
    }
    g->ocount = 0;
}

void srv_groupi_offset_put(srv_group *g, kp_str topic, int32_t p, const srv_goffset *v)
{
    srv_goffset **pp = offset_slot(g, topic, p);
    char *md = v->metadata ? srv_sdupc(v->metadata) : srv_sdupz("");
    if (!md)
        return;
    srv_goffset *o = *pp;
    if (!o) {
        o = calloc(1, sizeof(*o));
        if (!o || !(o->topic = srv_sdup(topic))) {
            free(o);
            srv_sfree(md);
            return;
        }
        o->partition = p;
        *pp = o;
        g->ocount++;
    }
    srv_sfree(o->metadata);
    o->metadata = md;
    o->offset = v->offset;
    o->leader_epoch = v->leader_epoch;
    o->commit_ts = v->commit_ts;
    o->expire_ts = v->expire_ts;
    o->seq = v->seq > 0 ? v->seq : ++g->gs->seq;
    if (g->ocount > g->onb * 2)
        offsets_grow(g);
}

void srv_groupi_offset_del(srv_group *g, kp_str topic, int32_t p)
{
    srv_goffset **pp = offset_slot(g, topic, p);
    srv_goffset *o = *pp;
    if (!o)
        return;
    *pp = o->next;
    srv_sfree(o->topic);
    srv_sfree(o->metadata);
    free(o);
    g->ocount--;
}

/* ---- OffsetCommit ------------------------------------------------------- */

typedef struct commit_ctx {
    srv_group *g;
    int n;
    srv_commit_item *items;
    srv_group_done_cb done;
    void *ctx;
} commit_ctx;

static void committed(void *p, int16_t err)
{
    commit_ctx *c = p;
    srv_group *g = c->g;
    err = commit_error(err);
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
            v.expire_ts = it->expire_ts;
            if (md)
                srv_groupi_offset_put(g, it->topic, it->partition, &v);
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

void srv_group_commit(srv_groups *gs, int32_t partition, kp_str group_id, int32_t generation,
                      kp_str member_id, kp_str instance_id, int16_t api_version, int n,
                      srv_commit_item *items, srv_group_done_cb done, void *ctx)
{
    int16_t err = KP_ERR_NONE;
    srv_group *g = NULL;
    if (group_id.len < 0) {
        err = KP_ERR_INVALID_GROUP_ID;
    } else if (!(g = srv_groups_find(gs, group_id))) {
        /* generation < 0: a group that only stores offsets (no group
         * management); otherwise a member of a generation we do not know. */
        if (generation >= 0)
            err = api_version >= 9 ? KP_ERR_GROUP_ID_NOT_FOUND : KP_ERR_ILLEGAL_GENERATION;
        else if (!(g = srv_groupi_create(gs, group_id, partition)))
            err = KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    if (!err && g->cg) {
        err = srv_cgroup_validate_commit(g, member_id, generation, api_version);
    } else if (!err) {
        /* validateOffsetCommit */
        if (generation >= 0 || member_id.len > 0 || instance_id.len >= 0) {
            err = srv_groupi_validate_member(g, member_id, instance_id);
            if (!err && generation != g->generation)
                err = KP_ERR_ILLEGAL_GENERATION;
        } else if (g->state != SRV_GS_EMPTY) {
            err = KP_ERR_UNKNOWN_MEMBER_ID; /* only members commit to a non-empty group */
        }
    }
    if (!err && !g->cg && g->state == SRV_GS_COMPLETING)
        err = KP_ERR_REBALANCE_IN_PROGRESS;
    if (err) {
        fail_items(items, n, err);
        done(ctx);
        return;
    }
    srv_gmember *m = srv_groupi_member_get(g, member_id);
    if (m && (g->state == SRV_GS_STABLE || g->state == SRV_GS_PREPARING)) {
        srv_groupi_heartbeat_ok(g, m);
        srv_groupi_rearm(g);
    }
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int count = 0, rc = 0;
    int64_t t = srv_groupi_now(gs);
    char *gid = g->id;
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
        v.expire_ts = it->expire_ts;
        rc = topic && md ? srv_glog_add_offset(&bb, t, srv_s(gid), srv_s(topic), it->partition, &v)
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
    commit_ctx *c = malloc(sizeof(*c));
    if (c) {
        c->g = g;
        c->n = n;
        c->items = items;
        c->done = done;
        c->ctx = ctx;
        /* Before the append: committed() may run inline and counts down. */
        g->pending_commits++;
    }
    if (srv_groupi_append(g, &bb, c ? rc : KP_E_NOMEM, committed, c) != 0) {
        if (c)
            g->pending_commits--;
        free(c);
        fail_items(items, n, KP_ERR_UNKNOWN_SERVER_ERROR);
        done(ctx);
    }
}

/* ---- OffsetDelete ------------------------------------------------------- */

void srv_group_delete_offsets(srv_groups *gs, kp_str group_id, int n, srv_offset_del_item *items,
                              int16_t *error, srv_group_done_cb done, void *ctx)
{
    srv_group *g = group_id.len < 0 ? NULL : srv_groups_find(gs, group_id);
    *error = KP_ERR_NONE;
    if (group_id.len < 0)
        *error = KP_ERR_INVALID_GROUP_ID;
    else if (!g)
        *error = KP_ERR_GROUP_ID_NOT_FOUND;
    else if (g->state != SRV_GS_EMPTY && !srv_seq(kp_str_c("consumer"), g->protocol_type))
        *error = KP_ERR_NON_EMPTY_GROUP;
    if (*error) {
        done(ctx);
        return;
    }
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int rc = 0, count = 0;
    int64_t t = srv_groupi_now(gs);
    for (int i = 0; i < n; i++) {
        srv_offset_del_item *it = &items[i];
        if (it->error)
            continue;
        char *topic = srv_sdup(it->topic);
        if (!topic) {
            it->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        if (g->state != SRV_GS_EMPTY && srv_groupi_subscribed_to(g, topic)) {
            it->error = KP_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
        } else if (srv_group_offset(g, it->topic, it->partition) ||
                   srv_group_txn_pending(gs, srv_s(g->id), it->topic, it->partition)) {
            /* Kafka writes the tombstone for a pending transactional offset
             * too, and the tombstone drops it. */
            if (rc == 0)
                rc = srv_glog_add_offset(&bb, t, srv_s(g->id), srv_s(topic), it->partition, NULL);
            srv_groupi_offset_del(g, it->topic, it->partition);
            srv_groupi_txn_drop(gs, srv_s(g->id), it->topic, it->partition);
            count++;
        }
        srv_sfree(topic);
    }
    if (count == 0) {
        kp_batch_builder_free(&bb);
        done(ctx);
        return;
    }
    srv_groupi_append_tombs(g, &bb, rc, error, done, ctx);
}

/* ---- retention ---------------------------------------------------------- */

typedef struct expire_walk {
    srv_group *g;
    int64_t now, retention, base_state;
    int use_state_ts, skip_subscribed;
    kp_batch_builder *bb;
    int rc, count;
} expire_walk;

static int offset_expired(const expire_walk *w, const srv_goffset *o)
{
    if (w->skip_subscribed && srv_groupi_subscribed_to(w->g, o->topic))
        return 0;
    /* Kafka keeps an offset while a transaction holds a pending one for it. */
    if (srv_group_txn_pending(w->g->gs, srv_s(w->g->id), srv_s(o->topic), o->partition))
        return 0;
    if (o->expire_ts >= 0)
        return w->now >= o->expire_ts;
    int64_t base = w->use_state_ts && w->base_state >= 0 ? w->base_state : o->commit_ts;
    return w->now - base >= w->retention;
}

void srv_groups_expire_offsets(srv_groups *gs)
{
    int64_t t = srv_groupi_now(gs);
    int total = 0, removed_groups = 0;
    for (size_t b = 0; b < gs->nbuckets; b++) {
        srv_group *g = gs->buckets[b];
        while (g) {
            srv_group *next = g->next;
            /* Kafka's rules (GroupMetadata.removeExpiredOffsets): an empty
             * group's offsets expire a retention period after it became
             * empty; a stable consumer group's, for topics it no longer
             * subscribes to; offsets-only groups', after their commit. */
            expire_walk w = {g, t, gs->cfg.offsets_retention_ms, g->state_ts, 0, 0, NULL, 0, 0};
            int eligible = 1;
            if (g->pending_commits > 0) {
                eligible = 0;
            } else if (g->cg) {
                /* Consumer groups (ConsumerGroup.offsetExpirationCondition):
                 * by commit time, never for a subscribed topic. */
                w.use_state_ts = 0;
                w.skip_subscribed = 1;
            } else if (!g->protocol_type) {
                w.use_state_ts = 0;
            } else if (g->state == SRV_GS_EMPTY) {
                w.use_state_ts = 1;
            } else if (srv_seq(kp_str_c("consumer"), g->protocol_type) && g->state == SRV_GS_STABLE &&
                       g->nsubscribed >= 0) {
                w.skip_subscribed = 1;
            } else {
                eligible = 0;
            }
            kp_batch_builder bb;
            kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
            w.bb = &bb;
            if (eligible) {
                for (size_t i = 0; i < g->onb; i++) {
                    srv_goffset *o = g->obuckets[i];
                    while (o) {
                        srv_goffset *on = o->next;
                        if (offset_expired(&w, o)) {
                            if (w.rc == 0)
                                w.rc = srv_glog_add_offset(&bb, t, srv_s(g->id), srv_s(o->topic),
                                                           o->partition, NULL);
                            w.count++;
                            srv_groupi_offset_del(g, srv_s(o->topic), o->partition);
                        }
                        o = on;
                    }
                }
            }
            total += w.count;
            if (g->state == SRV_GS_EMPTY && g->ocount == 0 && g->pending_commits == 0 && g->refs == 1 &&
                !srv_groupi_txn_any(gs, srv_s(g->id))) {
                /* Nothing left: the group goes (with a metadata tombstone). */
                if (w.rc == 0)
                    w.rc = srv_groupi_add_group_tombstone(&bb, t, g);
                g->refs++;
                srv_groupi_remove(g);
                srv_groupi_append_tombs(g, &bb, w.rc, NULL, NULL, NULL);
                srv_groupi_unref(g);
                removed_groups++;
            } else if (w.count > 0) {
                srv_groupi_append_tombs(g, &bb, w.rc, NULL, NULL, NULL);
            } else {
                kp_batch_builder_free(&bb);
            }
            g = next;
        }
    }
    if (total || removed_groups)
        srv_info("removed %d expired offsets and %d empty groups", total, removed_groups);
}

/* ---- OffsetFetch of consumer groups ------------------------------------- */

int16_t srv_group_validate_fetch(srv_groups *gs, kp_str group_id, kp_str member_id, int32_t member_epoch)
{
    srv_group *g = group_id.len < 0 ? NULL : srv_groups_find(gs, group_id);
    if (!g || !g->cg)
        return KP_ERR_NONE;
    return srv_cgroup_validate_fetch(g, member_id, member_epoch);
}

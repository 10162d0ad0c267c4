/*
 * group.c — the group coordinator core of one shard (see group.h): the map
 * of groups, their lifecycle (creation, removal, DeleteGroups, reference
 * counts), their timers, and the helpers the other group files share
 * (group_internal.h). The classic protocol is in group_classic.c, committed
 * offsets in group_offsets.c, the replay of __consumer_offsets in
 * group_replay.c, KIP-848 groups in consumer.c.
 *
 * Owns every srv_group of its srv_groups. Must not: block, call into a
 * shard, or keep a pointer a callback gave it.
 *
 * A group is reference counted: the map holds one reference and every append
 * in flight one more, so a group deleted while its records are being written
 * stays valid (as Dead) until the last completion.
 */
#include "group_internal.h"
#include "sstr.h"

#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "errors.h"
#include "group_log.h"
#include "logging.h"

/* ---- states ------------------------------------------------------------- */

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable",
                                          "Dead"};

const char *srv_group_state_name(int state)
{
    return state >= 0 && state <= SRV_GS_DEAD ? state_names[state] : "Unknown";
}

/* ---- small helpers ------------------------------------------------------ */

static int64_t now(const srv_groups *gs)
{
    return gs->env.now_ms(gs->env.arg);
}

uint64_t srv_groupi_fnv(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

int32_t srv_group_partition_for(kp_str id, int32_t n)
{
    /* Java's String.hashCode runs over UTF-16 code units: decode the UTF-8
     * (a malformed byte counts as U+FFFD, as Java's decoder substitutes). */
    int32_t h = 0;
    const uint8_t *p = (const uint8_t *)id.p;
    int32_t len = id.len > 0 ? id.len : 0;
    for (int32_t i = 0; i < len;) {
        uint32_t c = p[i], need = 0;
        if (c < 0x80)
            need = 0;
        else if ((c & 0xE0) == 0xC0)
            need = 1, c &= 0x1F;
        else if ((c & 0xF0) == 0xE0)
            need = 2, c &= 0x0F;
        else if ((c & 0xF8) == 0xF0)
            need = 3, c &= 0x07;
        else
            need = 99;
        int ok = need != 99 && i + (int32_t)need < len;
        for (uint32_t k = 1; ok && k <= need; k++) {
            if ((p[i + (int32_t)k] & 0xC0) != 0x80)
                ok = 0;
            else
                c = (c << 6) | (p[i + (int32_t)k] & 0x3F);
        }
        if (need == 0)
            ok = 1;
        if (!ok) {
            c = 0xFFFD;
            i += 1;
        } else {
            i += (int32_t)need + 1;
        }
        if (c >= 0x10000) {
            c -= 0x10000;
            h = (int32_t)((uint32_t)h * 31u + (0xD800 + (c >> 10)));
            h = (int32_t)((uint32_t)h * 31u + (0xDC00 + (c & 0x3FF)));
        } else {
            h = (int32_t)((uint32_t)h * 31u + c);
        }
    }
    /* Kafka's Utils.abs: Integer.MIN_VALUE maps to 0. */
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return n > 0 ? a % n : 0;
}

/* ---- groups ------------------------------------------------------------- */

srv_groups *srv_groups_new(const srv_groups_config *cfg, const srv_groups_env *env)
{
    srv_groups *gs = calloc(1, sizeof(*gs));
    if (!gs)
        return NULL;
    gs->cfg = *cfg;
    gs->env = *env;
    gs->nbuckets = 64;
    gs->buckets = calloc(gs->nbuckets, sizeof(*gs->buckets));
    if (!gs->buckets) {
        free(gs);
        return NULL;
    }
    return gs;
}

void srv_groupi_member_free(srv_gmember *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nprotocols; i++) {
        srv_sfree(m->protocols[i].name);
        free(m->protocols[i].meta);
    }
    free(m->protocols);
    srv_sfree(m->id);
    srv_sfree(m->instance_id);
    srv_sfree(m->client_id);
    srv_sfree(m->client_host);
    srv_sfree(m->protocol_type);
    free(m->assignment);
    free(m);
}

void srv_groupi_subscribed_clear(srv_group *g)
{
    for (int i = 0; i < g->nsubscribed; i++)
        srv_sfree(g->subscribed[i]);
    free(g->subscribed);
    g->subscribed = NULL;
    g->nsubscribed = -1;
}

static void group_free(srv_group *g)
{
    for (int i = 0; i < g->nmembers; i++)
        srv_groupi_member_free(g->members[i]);
    free(g->members);
    for (int i = 0; i < g->npending; i++)
        srv_sfree(g->pending[i].id);
    free(g->pending);
    srv_cgroup_free(g->cg);
    srv_groupi_offsets_clear(g);
    free(g->obuckets);
    srv_groupi_subscribed_clear(g);
    srv_sfree(g->id);
    srv_sfree(g->protocol_type);
    srv_sfree(g->protocol_name);
    srv_sfree(g->leader);
    free(g);
}

void srv_groupi_unref(srv_group *g)
{
    if (--g->refs == 0)
        group_free(g);
}

static size_t group_bucket(const srv_groups *gs, kp_str id)
{
    return (size_t)srv_groupi_fnv(id.p, (size_t)(id.len > 0 ? id.len : 0), 1469598103934665603ull) &
           (gs->nbuckets - 1);
}

srv_group *srv_groups_find(srv_groups *gs, kp_str id)
{
    if (id.len < 0)
        return NULL;
    for (srv_group *g = gs->buckets[group_bucket(gs, id)]; g; g = g->next)
        if (srv_seq(id, g->id))
            return g;
    return NULL;
}

static void groups_grow(srv_groups *gs)
{
    size_t n = gs->nbuckets * 2;
    srv_group **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return; /* longer chains, still correct */
    size_t old = gs->nbuckets;
    srv_group **ob = gs->buckets;
    gs->buckets = nb;
    gs->nbuckets = n;
    for (size_t i = 0; i < old; i++) {
        srv_group *g = ob[i];
        while (g) {
            srv_group *next = g->next;
            size_t h = group_bucket(gs, srv_s(g->id));
            g->next = nb[h];
            nb[h] = g;
            g = next;
        }
    }
    free(ob);
}

srv_group *srv_groupi_create(srv_groups *gs, kp_str id, int32_t partition)
{
    srv_group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->id = srv_sdup(id);
    g->onb = 16;
    g->obuckets = calloc(g->onb, sizeof(*g->obuckets));
    if (!g->id || !g->obuckets) {
        srv_sfree(g->id);
        free(g->obuckets);
        free(g);
        return NULL;
    }
    g->gs = gs;
    g->partition = partition;
    g->state = SRV_GS_EMPTY;
    g->refs = 1;
    g->sync_deadline = -1;
    g->state_ts = -1;
    g->armed = -1;
    g->nsubscribed = -1;
    if (gs->count + 1 > gs->nbuckets)
        groups_grow(gs);
    size_t h = group_bucket(gs, id);
    g->next = gs->buckets[h];
    gs->buckets[h] = g;
    gs->count++;
    return g;
}

/* Unlinks the group (it becomes Dead) and drops the map's reference. */
void srv_groupi_remove(srv_group *g)
{
    srv_groups *gs = g->gs;
    srv_group **pp = &gs->buckets[group_bucket(gs, srv_s(g->id))];
    while (*pp && *pp != g)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = g->next;
        gs->count--;
    }
    g->state = SRV_GS_DEAD;
    if (gs->env.drop)
        gs->env.drop(gs->env.arg, g);
    g->timer = NULL;
    g->armed = -1;
    srv_groupi_unref(g);
}

void srv_groups_free(srv_groups *gs)
{
    if (!gs)
        return;
    for (size_t i = 0; i < gs->nbuckets; i++) {
        srv_group *g = gs->buckets[i];
        while (g) {
            srv_group *next = g->next;
            if (gs->env.drop)
                gs->env.drop(gs->env.arg, g);
            group_free(g); /* appends in flight are abandoned with the shard */
            g = next;
        }
    }
    srv_groupi_txn_free(gs);
    free(gs->buckets);
    free(gs);
}

void srv_groups_foreach(srv_groups *gs, void (*fn)(void *arg, const srv_group *g), void *arg)
{
    for (size_t i = 0; i < gs->nbuckets; i++)
        for (srv_group *g = gs->buckets[i]; g; g = g->next)
            fn(arg, g);
}

void srv_groupi_transition(srv_group *g, int state)
{
    g->state = state;
    g->state_ts = now(g->gs);
}

void srv_groupi_set_str(char **dst, const char *src)
{
    char *c = src ? srv_sdupc(src) : NULL;
    if (src && !c)
        return; /* out of memory: keep the old value */
    srv_sfree(*dst);
    *dst = c;
}

/* ---- timers ------------------------------------------------------------- */

static int64_t next_deadline(const srv_group *g)
{
    int64_t d = -1;
#define CONSIDER(x)                                                                                          \
    do {                                                                                                     \
        int64_t v_ = (x);                                                                                    \
        if (v_ >= 0 && (d < 0 || v_ < d))                                                                    \
            d = v_;                                                                                          \
    } while (0)
    if (g->state == SRV_GS_DEAD)
        return -1;
    for (int i = 0; i < g->nmembers; i++)
        CONSIDER(g->members[i]->deadline);
    for (int i = 0; i < g->npending; i++)
        CONSIDER(g->pending[i].deadline);
    if (g->join_phase != JOIN_NONE)
        CONSIDER(g->join_deadline);
    CONSIDER(g->sync_deadline);
    if (g->cg)
        CONSIDER(srv_cgroup_next_deadline(g));
#undef CONSIDER
    return d;
}

static void rearm(srv_group *g)
{
    int64_t d = next_deadline(g);
    if (d == g->armed)
        return;
    g->armed = d;
    if (g->gs->env.arm)
        g->gs->env.arm(g->gs->env.arg, g, d);
}

void srv_group_fire(srv_group *g)
{
    srv_groups *gs = g->gs;
    if (g->state == SRV_GS_DEAD)
        return;
    g->refs++;
    int64_t t = now(gs);
    srv_groupi_classic_fire(g, t);
    if (g->cg)
        srv_cgroup_fire(g, t);
    rearm(g);
    srv_groupi_unref(g);
}

void *srv_groups_env_arg(const srv_groups *gs)
{
    return gs->env.arg;
}

void srv_groups_poll(srv_groups *gs)
{
    int64_t t = now(gs);
    /* Firing never adds or removes groups, so the walk is safe. */
    for (size_t i = 0; i < gs->nbuckets; i++)
        for (srv_group *g = gs->buckets[i]; g; g = g->next) {
            int64_t d = next_deadline(g);
            if (d >= 0 && d <= t)
                srv_group_fire(g);
        }
}

/* ---- subscriptions ------------------------------------------------------ */

int srv_groupi_subscribed_to(const srv_group *g, const char *topic)
{
    if (g->nsubscribed < 0)
        return 1;
    for (int i = 0; i < g->nsubscribed; i++)
        if (srv_scmp(g->subscribed[i], topic) == 0)
            return 1;
    return 0;
}

/* ---- tombstones, DeleteGroups ------------------------------------------- */

typedef struct tomb_ctx {
    srv_group *g;
    int16_t *error;
    srv_group_done_cb done;
    void *ctx;
} tomb_ctx;

static void tombs_written(void *p, int16_t err)
{
    tomb_ctx *c = p;
    if (c->error)
        *c->error = srv_glog_write_error(err);
    srv_group_done_cb done = c->done;
    void *ctx = c->ctx;
    srv_groupi_unref(c->g);
    free(c);
    if (done)
        done(ctx);
}

typedef struct tomb_walk {
    kp_batch_builder *bb;
    const char *group;
    int64_t ts;
    int rc, count;
    const srv_group *g;
} tomb_walk;

static void add_tomb(void *arg, const srv_goffset *o)
{
    tomb_walk *w = arg;
    if (w->rc == 0)
        w->rc = srv_glog_add_offset(w->bb, w->ts, srv_s(w->group), srv_s(o->topic), o->partition, NULL);
    w->count++;
}

static void add_txn_tomb(void *arg, const srv_gtxn *e)
{
    tomb_walk *w = arg;
    if (srv_group_offset(w->g, srv_s(e->topic), e->partition))
        return; /* its tombstone is written already */
    if (w->rc == 0)
        w->rc = srv_glog_add_offset(w->bb, w->ts, srv_s(w->group), srv_s(e->topic), e->partition, NULL);
    w->count++;
}

/* Appends the records in bb (finishing it); done runs when durable. */
int srv_groupi_append(srv_group *g, kp_batch_builder *bb, int rc, srv_group_append_done done, void *ctx)
{
    kp_writer w;
    kp_writer_init(&w, 256);
    if (rc == 0)
        rc = kp_batch_builder_finish(bb, &w);
    kp_batch_builder_free(bb);
    if (rc == 0) {
        g->refs++;
        g->gs->env.append(g->gs->env.arg, g->partition, w.buf, w.len, done, ctx);
    }
    kp_writer_free(&w);
    return rc;
}

void srv_groupi_append_tombs(srv_group *g, kp_batch_builder *bb, int rc, int16_t *error,
                             srv_group_done_cb done, void *ctx)
{
    tomb_ctx *c = malloc(sizeof(*c));
    if (c) {
        c->g = g;
        c->error = error;
        c->done = done;
        c->ctx = ctx;
    }
    if (srv_groupi_append(g, bb, c ? rc : KP_E_NOMEM, tombs_written, c) != 0) {
        free(c);
        if (error)
            *error = KP_ERR_UNKNOWN_SERVER_ERROR;
        if (done)
            done(ctx);
    }
}

/* The tombstone(s) of the group's own records, by kind. */
int srv_groupi_add_group_tombstone(kp_batch_builder *bb, int64_t ts, const srv_group *g)
{
    return g->cg ? srv_glog_add_cg_tombstones(bb, ts, g) : srv_glog_add_group(bb, ts, g, NULL, 1);
}

/* Writes the tombstones of a group that goes away (its offsets, then its
 * metadata) and removes it. */
static void group_delete_now(srv_group *g, int16_t *error, srv_group_done_cb done, void *ctx)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    tomb_walk tw = {&bb, g->id, now(g->gs), 0, 0, g};
    srv_group_foreach_offset(g, add_tomb, &tw);
    /* Pending transactional offsets go too (Kafka's deleteAllOffsets): one
     * tombstone per partition that has no committed offset. */
    srv_groupi_txn_foreach(g->gs, srv_s(g->id), add_txn_tomb, &tw);
    srv_groupi_txn_drop(g->gs, srv_s(g->id), KP_STR_NULL, 0);
    if (tw.rc == 0)
        tw.rc = srv_groupi_add_group_tombstone(&bb, tw.ts, g);
    srv_groupi_offsets_clear(g);
    g->refs++;
    srv_groupi_remove(g); /* Dead from now on; freed after the append */
    srv_groupi_append_tombs(g, &bb, tw.rc, error, done, ctx);
    srv_groupi_unref(g);
}

void srv_group_delete(srv_groups *gs, kp_str group_id, int16_t *error, srv_group_done_cb done, void *ctx)
{
    srv_group *g = group_id.len < 0 ? NULL : srv_groups_find(gs, group_id);
    if (group_id.len < 0)
        *error = KP_ERR_INVALID_GROUP_ID;
    else if (!g)
        *error = KP_ERR_GROUP_ID_NOT_FOUND;
    else if (g->state != SRV_GS_EMPTY)
        *error = KP_ERR_NON_EMPTY_GROUP;
    else {
        *error = KP_ERR_NONE;
        srv_info("group %.*s deleted", SRV_SP(g->id));
        group_delete_now(g, error, done, ctx);
        return;
    }
    done(ctx);
}

/* ---- consumer.c and the other group files ------------------------------- */

int64_t srv_groupi_now(const srv_groups *gs)
{
    return now(gs);
}

const srv_groups_config *srv_groupi_cfg(const srv_groups *gs)
{
    return &gs->cfg;
}

const srv_groups_env *srv_groupi_env(const srv_groups *gs)
{
    return &gs->env;
}

void srv_groupi_ref(srv_group *g)
{
    g->refs++;
}

void srv_groupi_rearm(srv_group *g)
{
    if (g->state != SRV_GS_DEAD)
        rearm(g);
}

void srv_groupi_sync_consumer(srv_group *g)
{
    const srv_cgroup *cg = g->cg;
    if (!cg)
        return;
    int state = cg->nmembers > 0 ? SRV_GS_STABLE : SRV_GS_EMPTY;
    if (state != g->state)
        srv_groupi_transition(g, state);
    /* The union of the subscriptions: offsets of those topics never expire
     * and cannot be deleted (GROUP_SUBSCRIBED_TO_TOPIC). */
    srv_groupi_subscribed_clear(g);
    int total = 0;
    for (int i = 0; i < cg->nmembers; i++)
        total += cg->members[i]->nsubs;
    char **subs = calloc((size_t)total + 1, sizeof(*subs));
    if (!subs)
        return;
    int n = 0;
    for (int i = 0; i < cg->nmembers; i++)
        for (int j = 0; j < cg->members[i]->nsubs; j++) {
            int dup = 0;
            for (int k = 0; k < n && !dup; k++)
                dup = srv_scmp(subs[k], cg->members[i]->subs[j]) == 0;
            if (!dup && (subs[n] = srv_sdupc(cg->members[i]->subs[j])))
                n++;
        }
    g->subscribed = subs;
    g->nsubscribed = n;
}

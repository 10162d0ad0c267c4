/*
 * group_classic.c — the classic group protocol of one shard (see group.h):
 * JoinGroup (KIP-394 member ids, KIP-345 static members), SyncGroup,
 * Heartbeat, LeaveGroup and the rebalance state machine (Empty →
 * PreparingRebalance → CompletingRebalance → Stable), with the group metadata
 * record each generation writes.
 *
 * Owns every srv_gmember and every parked JoinGroup/SyncGroup callback: each
 * one is answered exactly once (or dropped by srv_groups_free at shutdown).
 * Must not: block, call into a shard, keep a pointer a callback gave it, or
 * touch committed offsets (group_offsets.c).
 */
#include "group_internal.h"
#include "sstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "config.h"
#include "consumer.h"
#include "errors.h"
#include "group_log.h"
#include "kp_messages.h"
#include "logging.h"
#include "srv_assert.h"

/* ---- members ------------------------------------------------------------ */

static int kstr_is(kp_str a, const char *b)
{
    return b && srv_seq(a, b);
}

static int member_index(const srv_group *g, kp_str id)
{
    if (id.len < 0)
        return -1;
    for (int i = 0; i < g->nmembers; i++)
        if (srv_seq(id, g->members[i]->id))
            return i;
    return -1;
}

srv_gmember *srv_groupi_member_get(const srv_group *g, kp_str id)
{
    int i = member_index(g, id);
    return i < 0 ? NULL : g->members[i];
}

static srv_gmember *static_member(const srv_group *g, kp_str instance_id)
{
    if (instance_id.len < 0)
        return NULL;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->instance_id && srv_seq(instance_id, g->members[i]->instance_id))
            return g->members[i];
    return NULL;
}

static int pending_index(const srv_group *g, kp_str id)
{
    for (int i = 0; i < g->npending; i++)
        if (srv_seq(id, g->pending[i].id))
            return i;
    return -1;
}

static void pending_remove_at(srv_group *g, int i)
{
    srv_sfree(g->pending[i].id);
    g->pending[i] = g->pending[--g->npending];
}

static int is_leader(const srv_group *g, const char *id)
{
    return g->leader && id && srv_scmp(g->leader, id) == 0;
}

kp_bytes srv_gmember_metadata(const srv_group *g, const srv_gmember *m)
{
    if (g->protocol_name)
        for (int i = 0; i < m->nprotocols; i++)
            if (srv_scmp(m->protocols[i].name, g->protocol_name) == 0)
                return (kp_bytes){m->protocols[i].meta ? m->protocols[i].meta : (const uint8_t *)"",
                                  m->protocols[i].len};
    return (kp_bytes){(const uint8_t *)"", 0};
}

void srv_groupi_heartbeat_ok(srv_group *g, srv_gmember *m)
{
    m->deadline = srv_groupi_now(g->gs) + m->session_timeout_ms;
}

/* ---- answering parked requests ------------------------------------------ */

static void invoke_join(srv_group *g, srv_gmember *m, const srv_join_result *r)
{
    if (!m->join_cb)
        return;
    srv_join_cb cb = m->join_cb;
    void *ctx = m->join_ctx;
    m->join_cb = NULL;
    m->join_ctx = NULL;
    g->n_awaiting_join--;
    cb(ctx, r);
}

static void invoke_sync(srv_gmember *m, const srv_sync_result *r)
{
    if (!m->sync_cb)
        return;
    srv_sync_cb cb = m->sync_cb;
    void *ctx = m->sync_ctx;
    m->sync_cb = NULL;
    m->sync_ctx = NULL;
    cb(ctx, r);
}

static void join_error(srv_join_cb cb, void *ctx, kp_str member_id, int16_t err)
{
    srv_join_result r = {0};
    r.error = err;
    r.generation = -1;
    r.member_id = member_id.len >= 0 ? member_id : kp_str_c("");
    r.leader = kp_str_c("");
    r.protocol_type = r.protocol_name = KP_STR_NULL;
    cb(ctx, &r);
}

static void join_error_member(srv_group *g, srv_gmember *m, const char *member_id, int16_t err)
{
    if (!m->join_cb)
        return;
    srv_join_result r = {0};
    r.error = err;
    r.generation = -1;
    r.member_id = srv_s(member_id);
    r.leader = kp_str_c("");
    r.protocol_type = r.protocol_name = KP_STR_NULL;
    invoke_join(g, m, &r);
}

static void sync_error(srv_sync_cb cb, void *ctx, int16_t err)
{
    srv_sync_result r = {err, KP_STR_NULL, KP_STR_NULL, {(const uint8_t *)"", 0}};
    cb(ctx, &r);
}

/* The join answer of a member for the current generation. */
static void join_answer(srv_group *g, srv_gmember *m, const char *leader, int with_members, int skip)
{
    srv_join_result r = {0};
    srv_join_member *list = NULL;
    if (with_members && g->nmembers > 0) {
        list = calloc((size_t)g->nmembers, sizeof(*list));
        if (list) {
            for (int i = 0; i < g->nmembers; i++) {
                list[i].member_id = srv_s(g->members[i]->id);
                list[i].instance_id = srv_s(g->members[i]->instance_id);
                list[i].metadata = srv_gmember_metadata(g, g->members[i]);
            }
            r.nmembers = g->nmembers;
            r.members = list;
        } else {
            /* Without the list the leader cannot assign: make it rejoin. */
            join_error_member(g, m, m->id, KP_ERR_REBALANCE_IN_PROGRESS);
            return;
        }
    }
    r.error = KP_ERR_NONE;
    r.generation = g->generation;
    r.member_id = srv_s(m->id);
    r.protocol_type = srv_s(g->protocol_type);
    r.protocol_name = srv_s(g->protocol_name);
    r.leader = leader ? srv_s(leader) : kp_str_c("");
    r.skip_assignment = skip;
    if (m->join_cb) {
        invoke_join(g, m, &r);
    }
    free(list);
}

/* ---- persistence -------------------------------------------------------- */

typedef void (*store_fn)(srv_group *g, void *arg, int16_t err);

typedef struct store_ctx {
    srv_group *g;
    store_fn fn;
    void *arg;
} store_ctx;

static void stored(void *p, int16_t err)
{
    store_ctx *c = p;
    srv_group *g = c->g;
    if (c->fn)
        c->fn(g, c->arg, srv_glog_write_error(err));
    free(c);
    if (g->state != SRV_GS_DEAD)
        srv_groupi_rearm(g);
    srv_groupi_unref(g);
}

/* Appends the group's metadata record (GroupCoordinator.storeGroup). */
static void store_group(srv_group *g, const kp_bytes *assignments, store_fn fn, void *arg)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    store_ctx *c = malloc(sizeof(*c));
    int rc = c ? srv_glog_add_group(&bb, srv_groupi_now(g->gs), g, assignments, 0) : KP_E_NOMEM;
    if (c) {
        c->g = g;
        c->fn = fn;
        c->arg = arg;
    }
    if (srv_groupi_append(g, &bb, rc, stored, c) != 0) {
        free(c);
        if (fn)
            fn(g, arg, KP_ERR_UNKNOWN_SERVER_ERROR);
    }
}

static void store_logged(srv_group *g, void *arg, int16_t err)
{
    (void)arg;
    if (err)
        srv_warn("group %.*s: cannot write its metadata (generation %d): error %d", SRV_SP(g->id),
                 g->generation, err);
}

/* ---- protocols ---------------------------------------------------------- */

static int member_supports(const srv_gmember *m, const char *name)
{
    for (int i = 0; i < m->nprotocols; i++)
        if (srv_scmp(m->protocols[i].name, name) == 0)
            return 1;
    return 0;
}

static int all_support(const srv_group *g, const char *name)
{
    for (int i = 0; i < g->nmembers; i++)
        if (!member_supports(g->members[i], name))
            return 0;
    return 1;
}

/* GroupMetadata.supportsProtocols. */
static int supports_protocols(const srv_group *g, const srv_join_req *rq)
{
    if (g->state == SRV_GS_EMPTY || g->nmembers == 0)
        return rq->protocol_type.len > 0 && rq->nprotocols > 0;
    if (!kstr_is(rq->protocol_type, g->protocol_type))
        return 0;
    for (int i = 0; i < rq->nprotocols; i++) {
        char *n = srv_sdup(rq->protocols[i].name);
        int ok = n && all_support(g, n);
        srv_sfree(n);
        if (ok)
            return 1;
    }
    return 0;
}

/* GroupMetadata.selectProtocol: among the protocols every member supports,
 * each member votes for its most preferred; the most votes wins (ties go to
 * the protocol voted first, in member order). */
static const char *select_protocol(const srv_group *g)
{
    const char *best = NULL;
    int best_votes = 0;
    for (int i = 0; i < g->nmembers; i++) {
        const char *vote = NULL;
        const srv_gmember *m = g->members[i];
        for (int k = 0; k < m->nprotocols && !vote; k++)
            if (all_support(g, m->protocols[k].name))
                vote = m->protocols[k].name;
        if (!vote)
            continue;
        int votes = 0;
        for (int j = 0; j < g->nmembers; j++) {
            const srv_gmember *o = g->members[j];
            for (int k = 0; k < o->nprotocols; k++)
                if (all_support(g, o->protocols[k].name)) {
                    votes += srv_scmp(o->protocols[k].name, vote) == 0;
                    break;
                }
        }
        if (votes > best_votes) {
            best = vote;
            best_votes = votes;
        }
    }
    return best;
}

static int member_matches(const srv_gmember *m, const srv_join_req *rq)
{
    if (m->nprotocols != rq->nprotocols)
        return 0;
    for (int i = 0; i < rq->nprotocols; i++) {
        const srv_join_protocol *p = &rq->protocols[i];
        int32_t ml = p->metadata.len > 0 ? p->metadata.len : 0;
        if (!srv_seq(p->name, m->protocols[i].name) || ml != m->protocols[i].len ||
            (ml && memcmp(p->metadata.p, m->protocols[i].meta, (size_t)ml) != 0))
            return 0;
    }
    return 1;
}

static int copy_protocols(const srv_join_req *rq, srv_gprotocol **out)
{
    srv_gprotocol *ps = calloc((size_t)rq->nprotocols + 1, sizeof(*ps));
    if (!ps)
        return -1;
    for (int i = 0; i < rq->nprotocols; i++) {
        int32_t ml = rq->protocols[i].metadata.len > 0 ? rq->protocols[i].metadata.len : 0;
        ps[i].name = srv_sdup(rq->protocols[i].name.len >= 0 ? rq->protocols[i].name : kp_str_c(""));
        ps[i].meta = malloc(ml ? (size_t)ml : 1);
        ps[i].len = ml;
        if (!ps[i].name || !ps[i].meta) {
            for (int k = 0; k <= i; k++) {
                srv_sfree(ps[k].name);
                free(ps[k].meta);
            }
            free(ps);
            return -1;
        }
        if (ml)
            memcpy(ps[i].meta, rq->protocols[i].metadata.p, (size_t)ml);
    }
    *out = ps;
    return 0;
}

static void free_protocols(srv_gprotocol *ps, int n)
{
    for (int i = 0; i < n; i++) {
        srv_sfree(ps[i].name);
        free(ps[i].meta);
    }
    free(ps);
}

/* Consumer groups: the union of the topics the members subscribe to, from
 * ConsumerProtocolSubscription (OffsetDelete and offset retention use it). */
void srv_groupi_compute_subscribed(srv_group *g)
{
    srv_groupi_subscribed_clear(g);
    if (!srv_seq(kp_str_c("consumer"), g->protocol_type) || !g->protocol_name)
        return;
    kp_arena a;
    kp_arena_init(&a, 0);
    int n = 0, cap = 0, ok = 1;
    char **topics = NULL;
    for (int i = 0; i < g->nmembers && ok; i++) {
        kp_bytes md = srv_gmember_metadata(g, g->members[i]);
        kp_reader r;
        int16_t ver;
        kp_consumer_protocol_subscription sub;
        kp_consumer_protocol_subscription_init(&sub);
        kp_reader_init(&r, md.p, (size_t)md.len);
        if (kp_read_i16(&r, &ver) || ver < 0) {
            ok = 0;
            break;
        }
        if (ver > 3)
            ver = 3; /* newer versions only add fields: read what we know, as Kafka does */
        if (kp_consumer_protocol_subscription_decode(&r, &a, ver, &sub) || sub.topics_count < 0) {
            ok = 0;
            break;
        }
        for (int32_t t = 0; t < sub.topics_count && ok; t++) {
            int dup = 0;
            for (int k = 0; k < n && !dup; k++)
                dup = srv_seq(sub.topics[t], topics[k]);
            if (dup)
                continue;
            if (n == cap) {
                int nc = cap ? cap * 2 : 8;
                char **nt = realloc(topics, (size_t)nc * sizeof(*nt));
                if (!nt) {
                    ok = 0;
                    break;
                }
                topics = nt;
                cap = nc;
            }
            if (!(topics[n] = srv_sdup(sub.topics[t])))
                ok = 0;
            else
                n++;
        }
    }
    kp_arena_reset(&a);
    if (!ok) {
        for (int k = 0; k < n; k++)
            srv_sfree(topics[k]);
        free(topics);
        return; /* unknown: treated as subscribed to everything, as Kafka does */
    }
    g->subscribed = topics;
    g->nsubscribed = n;
}

/* ---- the rebalance ------------------------------------------------------ */

static void complete_join(srv_group *g);

static void propagate_assignment(srv_group *g, int16_t err)
{
    for (int i = 0; i < g->nmembers; i++) {
        srv_gmember *m = g->members[i];
        if (!m->sync_cb)
            continue;
        srv_sync_result r;
        r.error = err;
        r.protocol_type = err ? KP_STR_NULL : srv_s(g->protocol_type);
        r.protocol_name = err ? KP_STR_NULL : srv_s(g->protocol_name);
        r.assignment = (kp_bytes){m->assignment ? m->assignment : (const uint8_t *)"",
                                  m->assignment ? m->assignment_len : 0};
        if (err)
            r.assignment = (kp_bytes){(const uint8_t *)"", 0};
        invoke_sync(m, &r);
        /* Sessions that ran out while waiting for the assignment start over. */
        srv_groupi_heartbeat_ok(g, m);
    }
}

static void reset_and_propagate_assignment_error(srv_group *g, int16_t err)
{
    for (int i = 0; i < g->nmembers; i++) {
        free(g->members[i]->assignment);
        g->members[i]->assignment = NULL;
        g->members[i]->assignment_len = 0;
    }
    propagate_assignment(g, err);
}

static int32_t max_rebalance_timeout(const srv_group *g)
{
    int32_t t = 0;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->rebalance_timeout_ms > t)
            t = g->members[i]->rebalance_timeout_ms;
    return t;
}

static void prepare_rebalance(srv_group *g, const char *reason)
{
    srv_groups *gs = g->gs;
    if (g->state == SRV_GS_COMPLETING)
        reset_and_propagate_assignment_error(g, KP_ERR_REBALANCE_IN_PROGRESS);
    g->sync_deadline = -1;
    g->rebalance_timeout_ms = max_rebalance_timeout(g);
    if (g->state == SRV_GS_EMPTY) {
        int32_t delay = gs->cfg.initial_rebalance_delay_ms;
        g->join_phase = JOIN_INITIAL;
        g->join_delay_ms = delay;
        g->join_remaining_ms = g->rebalance_timeout_ms - delay > 0 ? g->rebalance_timeout_ms - delay : 0;
        g->join_deadline = srv_groupi_now(gs) + delay;
    } else {
        g->join_phase = JOIN_DELAYED;
        g->join_deadline = srv_groupi_now(gs) + g->rebalance_timeout_ms;
    }
    int old = g->state;
    srv_groupi_transition(g, SRV_GS_PREPARING);
    srv_info("group %.*s: preparing to rebalance in state %s with old generation %d (%s-%d) (reason: %s)",
             SRV_SP(g->id), srv_group_state_name(old), g->generation, SRV_OFFSETS_TOPIC, g->partition,
             reason);
}

static void maybe_prepare_rebalance(srv_group *g, const char *reason)
{
    if (g->state == SRV_GS_STABLE || g->state == SRV_GS_COMPLETING || g->state == SRV_GS_EMPTY)
        prepare_rebalance(g, reason);
}

static int all_joined(const srv_group *g)
{
    return g->nmembers == g->n_awaiting_join && g->npending == 0;
}

/* DelayedJoin.tryComplete: the initial delay never completes early. */
static void try_complete_join(srv_group *g)
{
    if (g->state == SRV_GS_PREPARING && g->join_phase == JOIN_DELAYED && all_joined(g))
        complete_join(g);
}

/* Removes a member silently (GroupMetadata.remove): its parked requests are
 * answered so none is lost, the leadership moves to the first member left. */
static void member_remove(srv_group *g, int idx, int16_t answer)
{
    srv_gmember *m = g->members[idx];
    join_error_member(g, m, "", answer);
    if (m->sync_cb)
        sync_error((srv_sync_cb)m->sync_cb, m->sync_ctx, answer);
    m->sync_cb = NULL;
    memmove(&g->members[idx], &g->members[idx + 1], (size_t)(g->nmembers - idx - 1) * sizeof(*g->members));
    g->nmembers--;
    if (is_leader(g, m->id)) {
        srv_sfree(g->leader);
        g->leader = g->nmembers > 0 ? srv_sdupc(g->members[0]->id) : NULL;
    }
    srv_groupi_member_free(m);
}

/* removeMemberAndUpdateGroup. */
static void remove_member_and_update(srv_group *g, int idx, const char *reason)
{
    member_remove(g, idx, KP_ERR_UNKNOWN_MEMBER_ID);
    switch (g->state) {
    case SRV_GS_STABLE:
    case SRV_GS_COMPLETING:
        maybe_prepare_rebalance(g, reason);
        break;
    case SRV_GS_PREPARING:
        try_complete_join(g);
        break;
    default:
        break;
    }
}

static int maybe_elect_new_joined_leader(srv_group *g)
{
    if (!g->leader)
        return 0;
    srv_gmember *l = srv_groupi_member_get(g, srv_s(g->leader));
    if (l && l->join_cb)
        return 1;
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->join_cb) {
            srv_groupi_set_str(&g->leader, g->members[i]->id);
            srv_info("group %.*s: new leader %.*s elected", SRV_SP(g->id), SRV_SP(g->leader));
            return 1;
        }
    return 0;
}

static void init_next_generation(srv_group *g)
{
    g->generation++;
    if (g->nmembers > 0) {
        srv_groupi_set_str(&g->protocol_name, select_protocol(g));
        srv_groupi_compute_subscribed(g);
        srv_groupi_transition(g, SRV_GS_COMPLETING);
    } else {
        srv_sfree(g->protocol_name);
        g->protocol_name = NULL;
        srv_groupi_subscribed_clear(g);
        srv_groupi_transition(g, SRV_GS_EMPTY);
    }
    for (int i = 0; i < g->nmembers; i++)
        g->members[i]->pending_sync = 0;
}

/* GroupCoordinator.onCompleteJoin. */
static void complete_join(srv_group *g)
{
    srv_groups *gs = g->gs;
    g->join_phase = JOIN_NONE;
    /* Dynamic members that did not rejoin in time are gone; static ones keep
     * their place (and their old metadata) until their session expires. */
    for (int i = 0; i < g->nmembers;) {
        srv_gmember *m = g->members[i];
        if (!m->join_cb && !m->instance_id) {
            srv_info("group %.*s: removing member %.*s, which did not rejoin", SRV_SP(g->id), SRV_SP(m->id));
            member_remove(g, i, KP_ERR_UNKNOWN_MEMBER_ID);
        } else {
            i++;
        }
    }
    if (g->state == SRV_GS_DEAD)
        return;
    if (!maybe_elect_new_joined_leader(g) && g->nmembers > 0) {
        /* Nobody rejoined: wait another rebalance timeout for the sessions of
         * the silent (static) members to expire. */
        srv_warn("group %.*s: could not complete rebalance because no members rejoined", SRV_SP(g->id));
        g->join_phase = JOIN_DELAYED;
        g->join_deadline = srv_groupi_now(gs) + g->rebalance_timeout_ms;
        return;
    }
    init_next_generation(g);
    if (g->state == SRV_GS_EMPTY) {
        srv_info("group %.*s with generation %d is now empty (%s-%d)", SRV_SP(g->id), g->generation,
                 SRV_OFFSETS_TOPIC, g->partition);
        store_group(g, NULL, store_logged, NULL);
        return;
    }
    srv_info("group %.*s: stabilized generation %d (%s-%d) with %d members, protocol %s", SRV_SP(g->id),
             g->generation, SRV_OFFSETS_TOPIC, g->partition, g->nmembers,
             g->protocol_name ? g->protocol_name : "-");
    /* Callbacks may not re-enter, so the member array is stable here. */
    for (int i = 0; i < g->nmembers; i++) {
        srv_gmember *m = g->members[i];
        join_answer(g, m, g->leader, is_leader(g, m->id), 0);
        srv_groupi_heartbeat_ok(g, m);
        m->is_new = 0;
        m->pending_sync = 1;
    }
    g->sync_deadline = srv_groupi_now(gs) + g->rebalance_timeout_ms;
}

/* ---- timers firing ------------------------------------------------------ */

static void expire_pending_sync(srv_group *g)
{
    g->sync_deadline = -1;
    if (g->state != SRV_GS_COMPLETING && g->state != SRV_GS_STABLE)
        return;
    int removed = 0;
    for (int i = 0; i < g->nmembers;) {
        if (g->members[i]->pending_sync) {
            srv_info("group %.*s: removing member %.*s, which did not send SyncGroup in time", SRV_SP(g->id),
                     SRV_SP(g->members[i]->id));
            member_remove(g, i, KP_ERR_UNKNOWN_MEMBER_ID);
            removed = 1;
        } else {
            i++;
        }
    }
    if (removed)
        prepare_rebalance(g, "removing members on pending sync request expiration");
}

/* The classic deadlines of srv_group_fire: member ids handed out, sessions,
 * the join phase and the pending syncs. */
void srv_groupi_classic_fire(srv_group *g, int64_t t)
{
    srv_groups *gs = g->gs;
    for (int i = 0; i < g->npending;) {
        if (g->pending[i].deadline <= t) {
            pending_remove_at(g, i);
            if (g->state == SRV_GS_PREPARING)
                try_complete_join(g);
        } else {
            i++;
        }
    }
    for (int i = 0; i < g->nmembers && g->state != SRV_GS_DEAD;) {
        srv_gmember *m = g->members[i];
        if (m->deadline < 0 || m->deadline > t) {
            i++;
            continue;
        }
        /* Members waiting for a rebalance satisfy their heartbeats, except
         * new ones (the new-member join timeout). */
        if (!m->is_new && (m->join_cb || m->sync_cb)) {
            srv_groupi_heartbeat_ok(g, m);
            i++;
            continue;
        }
        srv_info("group %.*s: member %.*s has failed (session timeout %d ms), removing it", SRV_SP(g->id),
                 SRV_SP(m->id), m->session_timeout_ms);
        remove_member_and_update(g, i, "removing member on heartbeat expiration");
        i = 0; /* the array moved; re-scan (deadlines met are skipped) */
    }
    if (g->state == SRV_GS_PREPARING && g->join_phase != JOIN_NONE && g->join_deadline <= t) {
        if (g->join_phase == JOIN_INITIAL && g->new_member_added && g->join_remaining_ms != 0) {
            /* InitialDelayedJoin: new members keep extending the wait, by at
             * most the rebalance timeout in total. */
            int32_t delay = gs->cfg.initial_rebalance_delay_ms < g->join_remaining_ms
                                ? gs->cfg.initial_rebalance_delay_ms
                                : g->join_remaining_ms;
            int32_t remaining = g->join_remaining_ms - g->join_delay_ms;
            g->new_member_added = 0;
            g->join_delay_ms = delay;
            g->join_remaining_ms = remaining > 0 ? remaining : 0;
            g->join_deadline = t + delay;
        } else {
            complete_join(g);
        }
    }
    if (g->sync_deadline >= 0 && g->sync_deadline <= t)
        expire_pending_sync(g);
}

/* ---- JoinGroup ---------------------------------------------------------- */

srv_gmember *srv_groupi_member_new(const srv_join_req *rq, const char *id)
{
    srv_gmember *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->id = srv_sdupc(id);
    m->instance_id = srv_sdup(rq->instance_id);
    m->client_id = srv_sdup(rq->client_id.len >= 0 ? rq->client_id : kp_str_c(""));
    m->client_host = srv_sdup(rq->client_host.len >= 0 ? rq->client_host : kp_str_c(""));
    m->protocol_type = srv_sdup(rq->protocol_type.len >= 0 ? rq->protocol_type : kp_str_c(""));
    m->session_timeout_ms = rq->session_timeout_ms;
    m->rebalance_timeout_ms = rq->rebalance_timeout_ms;
    m->deadline = -1;
    if (!m->id || (rq->instance_id.len >= 0 && !m->instance_id) || !m->client_id || !m->client_host ||
        !m->protocol_type || copy_protocols(rq, &m->protocols) != 0) {
        srv_groupi_member_free(m);
        return NULL;
    }
    m->nprotocols = rq->nprotocols;
    return m;
}

/* GroupMetadata.updateMember: new protocols and timeouts, and the parked
 * JoinGroup (a previous one of the same member is answered first). */
static int update_member(srv_group *g, srv_gmember *m, const srv_join_req *rq, srv_join_cb cb, void *ctx)
{
    srv_gprotocol *ps;
    if (copy_protocols(rq, &ps) != 0)
        return -1;
    free_protocols(m->protocols, m->nprotocols);
    m->protocols = ps;
    m->nprotocols = rq->nprotocols;
    m->session_timeout_ms = rq->session_timeout_ms;
    m->rebalance_timeout_ms = rq->rebalance_timeout_ms;
    if (m->join_cb)
        join_error_member(g, m, m->id, KP_ERR_REBALANCE_IN_PROGRESS);
    if (cb) {
        m->join_cb = cb;
        m->join_ctx = ctx;
        g->n_awaiting_join++;
    }
    return 0;
}

static void add_member_and_rebalance(srv_group *g, const srv_join_req *rq, const char *id, srv_join_cb cb,
                                     void *ctx)
{
    srv_gmember *m = srv_groupi_member_new(rq, id);
    if (m && g->nmembers == g->mcap) {
        int nc = g->mcap ? g->mcap * 2 : 4;
        srv_gmember **nm = realloc(g->members, (size_t)nc * sizeof(*nm));
        if (nm) {
            g->members = nm;
            g->mcap = nc;
        }
    }
    if (!m || g->nmembers == g->mcap) {
        srv_groupi_member_free(m);
        join_error(cb, ctx, srv_s(id), KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    m->is_new = 1;
    if (g->state == SRV_GS_PREPARING && g->generation == 0)
        g->new_member_added = 1;
    if (g->nmembers == 0)
        srv_groupi_set_str(&g->protocol_type, m->protocol_type);
    if (!g->leader)
        g->leader = srv_sdupc(id);
    g->members[g->nmembers++] = m;
    m->join_cb = cb;
    m->join_ctx = ctx;
    g->n_awaiting_join++;
    /* A new member cannot heartbeat before its first answer; it gets the
     * new-member join timeout instead of its session timeout. */
    m->deadline = srv_groupi_now(g->gs) + SRV_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS;
    char reason[160];
    snprintf(reason, sizeof(reason), "adding new member %.*s", srv_slen(id) < 100 ? srv_slen(id) : 100, id);
    maybe_prepare_rebalance(g, reason);
}

typedef struct static_ctx {
    char *new_id, *old_id, *instance_id, *leader_before;
    srv_gprotocol *old_protocols;
    int old_nprotocols;
    int32_t old_session, old_rebalance;
    int support_skip;
} static_ctx;

static void static_ctx_free(static_ctx *c)
{
    srv_sfree(c->new_id);
    srv_sfree(c->old_id);
    srv_sfree(c->instance_id);
    srv_sfree(c->leader_before);
    free_protocols(c->old_protocols, c->old_nprotocols);
    free(c);
}

/* Renames a static member (GroupMetadata.replaceStaticMember): whoever still
 * waits under the old id is fenced. */
static void replace_static_member(srv_group *g, srv_gmember *m, const char *new_id)
{
    char *nid = srv_sdupc(new_id);
    if (!nid)
        return;
    join_error_member(g, m, m->id, KP_ERR_FENCED_INSTANCE_ID);
    if (m->sync_cb)
        sync_error((srv_sync_cb)m->sync_cb, m->sync_ctx, KP_ERR_FENCED_INSTANCE_ID);
    m->sync_cb = NULL;
    if (is_leader(g, m->id))
        srv_groupi_set_str(&g->leader, nid);
    srv_sfree(m->id);
    m->id = nid;
}

static void static_stored(srv_group *g, void *arg, int16_t err)
{
    static_ctx *c = arg;
    srv_gmember *m = srv_groupi_member_get(g, srv_s(c->new_id));
    if (m && err) {
        srv_warn("group %.*s: cannot persist static member %.*s: error %d, reverting", SRV_SP(g->id),
                 SRV_SP(c->instance_id), err);
        srv_join_cb cb = m->join_cb;
        void *ctx = m->join_ctx;
        if (cb) {
            m->join_cb = NULL;
            g->n_awaiting_join--;
        }
        free_protocols(m->protocols, m->nprotocols);
        m->protocols = c->old_protocols;
        m->nprotocols = c->old_nprotocols;
        c->old_protocols = NULL;
        c->old_nprotocols = 0;
        m->session_timeout_ms = c->old_session;
        m->rebalance_timeout_ms = c->old_rebalance;
        replace_static_member(g, m, c->old_id);
        srv_groupi_heartbeat_ok(g, m);
        if (cb) {
            srv_join_result r = {0};
            r.error = err;
            r.generation = g->generation;
            r.member_id = kp_str_c("");
            r.protocol_type = srv_s(g->protocol_type);
            r.protocol_name = srv_s(g->protocol_name);
            r.leader = c->leader_before ? srv_s(c->leader_before) : kp_str_c("");
            cb(ctx, &r);
        }
    } else if (m && m->join_cb) {
        if (c->support_skip) {
            /* KIP-814: the leader learns it leads but skips the assignor,
             * which would produce an assignment a stable group ignores. */
            int lead = is_leader(g, m->id);
            join_answer(g, m, g->leader, lead, lead);
        } else {
            /* Before v9: answer with the old leader id so the rejoining
             * leader does not run a pointless assignment. */
            join_answer(g, m, c->leader_before, 0, 0);
        }
    }
    static_ctx_free(c);
}

/* updateStaticMemberAndRebalance: a known static member came back with a
 * new member id. In Stable, it keeps its assignment without a rebalance
 * unless its protocols change the group's selection. */
static void update_static_member(srv_group *g, srv_gmember *m, const srv_join_req *rq, const char *new_id,
                                 srv_join_cb cb, void *ctx)
{
    static_ctx *c = calloc(1, sizeof(*c));
    srv_gprotocol *old_ps = NULL;
    if (c && m->nprotocols > 0) {
        old_ps = calloc((size_t)m->nprotocols, sizeof(*old_ps));
        for (int i = 0; old_ps && i < m->nprotocols; i++) {
            old_ps[i].name = srv_sdupc(m->protocols[i].name);
            old_ps[i].meta = malloc(m->protocols[i].len ? (size_t)m->protocols[i].len : 1);
            old_ps[i].len = m->protocols[i].len;
            if (old_ps[i].meta && m->protocols[i].len)
                memcpy(old_ps[i].meta, m->protocols[i].meta, (size_t)m->protocols[i].len);
        }
    }
    if (!c || (m->nprotocols > 0 && !old_ps)) {
        free(c);
        free(old_ps);
        join_error(cb, ctx, kp_str_c(""), KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    c->old_protocols = old_ps;
    c->old_nprotocols = m->nprotocols;
    c->old_session = m->session_timeout_ms;
    c->old_rebalance = m->rebalance_timeout_ms;
    c->old_id = srv_sdupc(m->id);
    c->new_id = srv_sdupc(new_id);
    c->instance_id = srv_sdupc(m->instance_id);
    c->leader_before = g->leader ? srv_sdupc(g->leader) : NULL;
    c->support_skip = rq->support_skip_assignment;
    srv_info("group %.*s: static member %.*s rejoins with new member id %.*s, old member id %.*s is fenced",
             SRV_SP(g->id), SRV_SP(m->instance_id), SRV_SP(new_id), SRV_SP(m->id));
    replace_static_member(g, m, new_id);
    srv_groupi_heartbeat_ok(g, m);
    if (!c->old_id || !c->new_id || !c->instance_id || srv_scmp(m->id, new_id) != 0 ||
        update_member(g, m, rq, cb, ctx) != 0) {
        static_ctx_free(c);
        join_error(cb, ctx, kp_str_c(""), KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    switch (g->state) {
    case SRV_GS_STABLE: {
        const char *sel = select_protocol(g);
        if (sel && g->protocol_name && srv_scmp(sel, g->protocol_name) == 0) {
            store_group(g, NULL, static_stored, c);
            return;
        }
        maybe_prepare_rebalance(g, "static member rejoined with a change of protocol");
        break;
    }
    case SRV_GS_COMPLETING:
        maybe_prepare_rebalance(g, "updating metadata of a static member");
        break;
    default: /* PreparingRebalance: it simply takes part */
        break;
    }
    static_ctx_free(c);
}

/* Kafka's member id: the client id (the instance id for static members),
 * "-", a random UUID. The prefix is copied byte for byte (snprintf's %.*s
 * would stop at a NUL in it). Returns an sstr, NULL when out of memory. */
static char *new_member_id(kp_str prefix)
{
    uint8_t r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        static uint64_t ctr;
        uint64_t x = ++ctr * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&prefix;
        memcpy(r, &x, 8);
        memcpy(r + 8, &x, 8);
    }
    r[6] = (uint8_t)((r[6] & 0x0F) | 0x40); /* UUID v4, as Java's randomUUID */
    r[8] = (uint8_t)((r[8] & 0x3F) | 0x80);
    int pl = prefix.len > 0 ? prefix.len : 0;
    if (pl > 200)
        pl = 200; /* member ids stay readable and bounded */
    char out[320];
    if (pl)
        memcpy(out, prefix.p, (size_t)pl);
    int n =
        snprintf(out + pl, sizeof(out) - (size_t)pl,
                 "-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
                 r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
    return srv_sdup((kp_str){out, pl + n});
}

static void join_with_new_id(srv_group *g, const srv_join_req *rq, const char *id, srv_join_cb cb, void *ctx);

static void new_member_join(srv_group *g, const srv_join_req *rq, srv_join_cb cb, void *ctx)
{
    if (g->state == SRV_GS_DEAD) {
        join_error(cb, ctx, kp_str_c(""), KP_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (!supports_protocols(g, rq)) {
        join_error(cb, ctx, kp_str_c(""), KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    char *id = new_member_id(rq->instance_id.len >= 0 ? rq->instance_id : rq->client_id);
    if (!id) {
        join_error(cb, ctx, kp_str_c(""), KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    join_with_new_id(g, rq, id, cb, ctx);
    srv_sfree(id);
}

static void join_with_new_id(srv_group *g, const srv_join_req *rq, const char *id, srv_join_cb cb, void *ctx)
{
    if (rq->instance_id.len >= 0) {
        srv_gmember *old = static_member(g, rq->instance_id);
        if (old)
            update_static_member(g, old, rq, id, cb, ctx);
        else
            add_member_and_rebalance(g, rq, id, cb, ctx);
        return;
    }
    if (rq->require_known_member_id) {
        if (g->npending == g->pcap) {
            int nc = g->pcap ? g->pcap * 2 : 4;
            srv_gpending *np = realloc(g->pending, (size_t)nc * sizeof(*np));
            if (!np) {
                join_error(cb, ctx, kp_str_c(""), KP_ERR_UNKNOWN_SERVER_ERROR);
                return;
            }
            g->pending = np;
            g->pcap = nc;
        }
        char *pid = srv_sdupc(id);
        if (!pid) {
            join_error(cb, ctx, kp_str_c(""), KP_ERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        g->pending[g->npending].id = pid;
        g->pending[g->npending].deadline = srv_groupi_now(g->gs) + rq->session_timeout_ms;
        g->npending++;
        join_error(cb, ctx, srv_s(id), KP_ERR_MEMBER_ID_REQUIRED);
        return;
    }
    add_member_and_rebalance(g, rq, id, cb, ctx);
}

/* validateCurrentMember: a static member must be the one holding its
 * instance id; a dynamic one must exist. */
int16_t srv_groupi_validate_member(const srv_group *g, kp_str member_id, kp_str instance_id)
{
    if (instance_id.len >= 0) {
        srv_gmember *m = static_member(g, instance_id);
        if (!m)
            return KP_ERR_UNKNOWN_MEMBER_ID;
        if (!srv_seq(member_id, m->id)) {
            srv_info("group %.*s: member %.*s with group instance id %.*s is fenced by member %.*s",
                     SRV_SP(g->id), member_id.len > 0 ? member_id.len : 0, member_id.p ? member_id.p : "",
                     instance_id.len, instance_id.p, SRV_SP(m->id));
            return KP_ERR_FENCED_INSTANCE_ID;
        }
        return KP_ERR_NONE;
    }
    return srv_groupi_member_get(g, member_id) ? KP_ERR_NONE : KP_ERR_UNKNOWN_MEMBER_ID;
}

static void current_member_join(srv_group *g, const srv_join_req *rq, srv_join_cb cb, void *ctx)
{
    char *mid = srv_sdup(rq->member_id);
    if (!mid) {
        join_error(cb, ctx, kp_str_c(""), KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    int16_t err = KP_ERR_NONE;
    int pi;
    if (g->state == SRV_GS_DEAD) {
        err = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    } else if (!supports_protocols(g, rq)) {
        err = KP_ERR_INCONSISTENT_GROUP_PROTOCOL;
    } else if ((pi = pending_index(g, rq->member_id)) >= 0) {
        if (rq->instance_id.len >= 0) {
            err = KP_ERR_UNKNOWN_MEMBER_ID; /* pending ids are only handed to dynamic members */
        } else {
            pending_remove_at(g, pi);
            add_member_and_rebalance(g, rq, mid, cb, ctx);
        }
    } else if ((err = srv_groupi_validate_member(g, rq->member_id, rq->instance_id)) == KP_ERR_NONE) {
        srv_gmember *m = srv_groupi_member_get(g, rq->member_id);
        char reason[200];
        snprintf(reason, sizeof(reason), "member %.*s joining group during %s",
                 srv_slen(mid) < 100 ? srv_slen(mid) : 100, mid, srv_group_state_name(g->state));
        switch (g->state) {
        case SRV_GS_PREPARING:
            if (update_member(g, m, rq, cb, ctx) != 0)
                err = KP_ERR_UNKNOWN_SERVER_ERROR;
            break;
        case SRV_GS_COMPLETING:
            if (member_matches(m, rq)) {
                /* It lost its JoinGroup answer: give it the same again. */
                m->join_cb = cb;
                m->join_ctx = ctx;
                g->n_awaiting_join++;
                join_answer(g, m, g->leader, is_leader(g, m->id), 0);
            } else if (update_member(g, m, rq, cb, ctx) != 0) {
                err = KP_ERR_UNKNOWN_SERVER_ERROR;
            } else {
                maybe_prepare_rebalance(g, reason);
            }
            break;
        case SRV_GS_STABLE:
            if (is_leader(g, m->id) || !member_matches(m, rq)) {
                /* The leader rejoining asks for a new assignment (e.g. topic
                 * metadata changed); changed metadata needs one too. */
                if (update_member(g, m, rq, cb, ctx) != 0)
                    err = KP_ERR_UNKNOWN_SERVER_ERROR;
                else
                    maybe_prepare_rebalance(g, reason);
            } else {
                m->join_cb = cb;
                m->join_ctx = ctx;
                g->n_awaiting_join++;
                join_answer(g, m, g->leader, 0, 0);
            }
            break;
        default:
            err = KP_ERR_UNKNOWN_MEMBER_ID;
            break;
        }
    }
    if (err)
        join_error(cb, ctx, srv_s(mid), err);
    srv_sfree(mid);
}

/* acceptJoiningMember (group.max.size). */
static int accept_joining(const srv_group *g, kp_str member_id)
{
    srv_gmember *m = srv_groupi_member_get(g, member_id);
    switch (g->state) {
    case SRV_GS_EMPTY:
    case SRV_GS_DEAD:
        return 1;
    case SRV_GS_PREPARING:
        return (m && m->join_cb) || g->n_awaiting_join < g->gs->cfg.max_size;
    default:
        return m || g->nmembers < g->gs->cfg.max_size;
    }
}

/* An empty consumer group becomes classic on a classic join, keeping its
 * offsets (Kafka's maybeDeleteEmptyConsumerGroup): its records are
 * tombstoned first. */
static void downgrade_empty_consumer_group(srv_group *g)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int rc = srv_glog_add_cg_tombstones(&bb, srv_groupi_now(g->gs), g);
    srv_info("group %.*s: empty consumer group converted to a classic group", SRV_SP(g->id));
    srv_cgroup_free(g->cg);
    g->cg = NULL;
    srv_groupi_clear_classic(g);
    srv_groupi_append_tombs(g, &bb, rc, NULL, NULL, NULL);
}

void srv_group_join(srv_groups *gs, int32_t partition, const srv_join_req *rq, srv_join_cb cb, void *ctx)
{
    char *mid = srv_sdup(rq->member_id.len >= 0 ? rq->member_id : kp_str_c(""));
    kp_str echo = mid ? srv_s(mid) : kp_str_c("");
    if (rq->group_id.len <= 0) {
        join_error(cb, ctx, echo, KP_ERR_INVALID_GROUP_ID);
        srv_sfree(mid);
        return;
    }
    if (rq->session_timeout_ms < gs->cfg.min_session_timeout_ms ||
        rq->session_timeout_ms > gs->cfg.max_session_timeout_ms) {
        join_error(cb, ctx, echo, KP_ERR_INVALID_SESSION_TIMEOUT);
        srv_sfree(mid);
        return;
    }
    int64_t total = 0;
    for (int i = 0; i < rq->nprotocols; i++)
        total += rq->protocols[i].metadata.len > 0 ? rq->protocols[i].metadata.len : 0;
    if (rq->nprotocols > SRV_GROUP_MAX_PROTOCOLS || total > SRV_GROUP_MAX_PROTOCOL_BYTES) {
        join_error(cb, ctx, echo, KP_ERR_INVALID_REQUEST);
        srv_sfree(mid);
        return;
    }
    int unknown = rq->member_id.len <= 0;
    srv_group *g = srv_groups_find(gs, rq->group_id);
    if (!g) {
        if (!unknown) {
            join_error(cb, ctx, echo, KP_ERR_UNKNOWN_MEMBER_ID);
            srv_sfree(mid);
            return;
        }
        g = srv_groupi_create(gs, rq->group_id, partition);
        if (!g) {
            join_error(cb, ctx, echo, KP_ERR_UNKNOWN_SERVER_ERROR);
            srv_sfree(mid);
            return;
        }
    }
    if (g->cg && g->cg->nmembers > 0) {
        /* A non-empty consumer group takes classic members unless the
         * migration is disabled (Kafka 4.4 then answers as for a group of
         * another type, seen on the wire). */
        srv_sfree(mid);
        if (gs->cfg.migration_policy == SRV_GMIG_DISABLED)
            join_error(cb, ctx, kp_str_c(""), KP_ERR_INCONSISTENT_GROUP_PROTOCOL);
        else
            srv_cgroup_classic_join(g, rq, cb, ctx);
        return;
    }
    if (g->cg && !unknown) {
        /* An empty consumer group has no member to rejoin. */
        join_error(cb, ctx, echo, KP_ERR_GROUP_ID_NOT_FOUND);
        srv_sfree(mid);
        return;
    }
    if (g->cg)
        downgrade_empty_consumer_group(g);
    g->refs++;
    if (!accept_joining(g, rq->member_id)) {
        int idx = member_index(g, rq->member_id);
        if (idx >= 0)
            remove_member_and_update(g, idx, "group is over capacity");
        join_error(cb, ctx, kp_str_c(""), KP_ERR_GROUP_MAX_SIZE_REACHED);
    } else if (unknown) {
        new_member_join(g, rq, cb, ctx);
    } else {
        current_member_join(g, rq, cb, ctx);
    }
    if (g->state == SRV_GS_PREPARING)
        try_complete_join(g);
    srv_groupi_rearm(g);
    srv_groupi_unref(g);
    srv_sfree(mid);
}

/* ---- SyncGroup ---------------------------------------------------------- */

typedef struct sync_ctx {
    int32_t generation;
    int n;
    char **ids;
    kp_bytes *assign; /* owned copies, in g->members order at store time */
} sync_ctx;

static void sync_ctx_free(sync_ctx *c)
{
    for (int i = 0; i < c->n; i++) {
        srv_sfree(c->ids[i]);
        free((void *)c->assign[i].p);
    }
    free(c->ids);
    free(c->assign);
    free(c);
}

static void sync_stored(srv_group *g, void *arg, int16_t err)
{
    sync_ctx *c = arg;
    /* Another rebalance may have started meanwhile: then this one is moot. */
    if (g->state == SRV_GS_COMPLETING && g->generation == c->generation) {
        if (err) {
            reset_and_propagate_assignment_error(g, err);
            maybe_prepare_rebalance(g, "error when storing group assignment during SyncGroup");
        } else {
            for (int i = 0; i < c->n; i++) {
                srv_gmember *m = srv_groupi_member_get(g, srv_s(c->ids[i]));
                if (!m)
                    continue;
                free(m->assignment);
                m->assignment = (uint8_t *)c->assign[i].p;
                m->assignment_len = c->assign[i].len;
                c->assign[i].p = NULL;
            }
            propagate_assignment(g, KP_ERR_NONE);
            srv_groupi_transition(g, SRV_GS_STABLE);
            srv_info("group %.*s: generation %d is stable", SRV_SP(g->id), g->generation);
        }
    }
    sync_ctx_free(c);
}

static void leader_sync(srv_group *g, const srv_sync_req *rq)
{
    sync_ctx *c = calloc(1, sizeof(*c));
    if (c) {
        c->ids = calloc((size_t)g->nmembers + 1, sizeof(*c->ids));
        c->assign = calloc((size_t)g->nmembers + 1, sizeof(*c->assign));
    }
    int ok = c && c->ids && c->assign;
    for (int i = 0; ok && i < g->nmembers; i++) {
        srv_gmember *m = g->members[i];
        kp_bytes a = {NULL, 0};
        /* The last assignment listed for a member wins; a missing one is empty. */
        for (int k = 0; k < rq->nassignments; k++)
            if (srv_seq(rq->assignments[k].member_id, m->id))
                a = rq->assignments[k].assignment;
        int32_t len = a.len > 0 ? a.len : 0;
        uint8_t *copy = malloc(len ? (size_t)len : 1);
        c->ids[i] = srv_sdupc(m->id);
        c->n = i + 1;
        if (!copy || !c->ids[i]) {
            free(copy);
            ok = 0;
            break;
        }
        if (len)
            memcpy(copy, a.p, (size_t)len);
        c->assign[i] = (kp_bytes){copy, len};
    }
    if (!ok) {
        if (c)
            sync_ctx_free(c);
        reset_and_propagate_assignment_error(g, KP_ERR_UNKNOWN_SERVER_ERROR);
        maybe_prepare_rebalance(g, "out of memory storing the assignment");
        return;
    }
    c->generation = g->generation;
    srv_info("group %.*s: assignment received from leader %.*s for generation %d (%d members)", SRV_SP(g->id),
             SRV_SP(g->leader), g->generation, g->nmembers);
    store_group(g, c->assign, sync_stored, c);
}

void srv_group_sync(srv_groups *gs, const srv_sync_req *rq, srv_sync_cb cb, void *ctx)
{
    if (rq->group_id.len <= 0) {
        sync_error(cb, ctx, KP_ERR_INVALID_GROUP_ID);
        return;
    }
    srv_group *g = srv_groups_find(gs, rq->group_id);
    if (!g) {
        sync_error(cb, ctx, KP_ERR_UNKNOWN_MEMBER_ID);
        return;
    }
    if (g->cg) {
        srv_cgroup_classic_sync(g, rq, cb, ctx);
        return;
    }
    int16_t err = srv_groupi_validate_member(g, rq->member_id, rq->instance_id);
    if (!err && rq->generation != g->generation)
        err = KP_ERR_ILLEGAL_GENERATION;
    if (!err && rq->protocol_type.len >= 0 && !kstr_is(rq->protocol_type, g->protocol_type))
        err = KP_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (!err && rq->protocol_name.len >= 0 && !kstr_is(rq->protocol_name, g->protocol_name))
        err = KP_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (!err && g->state == SRV_GS_EMPTY)
        err = KP_ERR_UNKNOWN_MEMBER_ID;
    if (!err && g->state == SRV_GS_PREPARING)
        err = KP_ERR_REBALANCE_IN_PROGRESS;
    if (err) {
        sync_error(cb, ctx, err);
        return;
    }
    srv_gmember *m = srv_groupi_member_get(g, rq->member_id);
    g->refs++;
    m->pending_sync = 0;
    if (g->state == SRV_GS_COMPLETING) {
        if (m->sync_cb)
            sync_error((srv_sync_cb)m->sync_cb, m->sync_ctx, KP_ERR_REBALANCE_IN_PROGRESS);
        m->sync_cb = (void (*)(void *, const struct srv_sync_result *))cb;
        m->sync_ctx = ctx;
        if (is_leader(g, m->id))
            leader_sync(g, rq);
    } else { /* Stable: the assignment of this generation */
        srv_sync_result r;
        r.error = KP_ERR_NONE;
        r.protocol_type = srv_s(g->protocol_type);
        r.protocol_name = srv_s(g->protocol_name);
        r.assignment = (kp_bytes){m->assignment ? m->assignment : (const uint8_t *)"",
                                  m->assignment ? m->assignment_len : 0};
        srv_groupi_heartbeat_ok(g, m);
        cb(ctx, &r);
    }
    srv_groupi_rearm(g);
    srv_groupi_unref(g);
}

/* ---- Heartbeat, LeaveGroup ---------------------------------------------- */

int16_t srv_group_heartbeat(srv_groups *gs, kp_str group_id, int32_t generation, kp_str member_id,
                            kp_str instance_id)
{
    if (group_id.len <= 0)
        return KP_ERR_INVALID_GROUP_ID;
    srv_group *g = srv_groups_find(gs, group_id);
    if (!g)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    if (g->cg)
        return srv_cgroup_classic_heartbeat(g, generation, member_id, instance_id);
    int16_t err = srv_groupi_validate_member(g, member_id, instance_id);
    if (err)
        return err;
    if (generation != g->generation)
        return KP_ERR_ILLEGAL_GENERATION;
    srv_gmember *m = srv_groupi_member_get(g, member_id);
    switch (g->state) {
    case SRV_GS_EMPTY:
        return KP_ERR_UNKNOWN_MEMBER_ID;
    case SRV_GS_PREPARING:
        srv_groupi_heartbeat_ok(g, m);
        srv_groupi_rearm(g);
        return KP_ERR_REBALANCE_IN_PROGRESS;
    default:
        srv_groupi_heartbeat_ok(g, m);
        srv_groupi_rearm(g);
        return KP_ERR_NONE;
    }
}

int16_t srv_group_leave(srv_groups *gs, kp_str group_id, int n, srv_leave_member *lm)
{
    if (group_id.len <= 0)
        return KP_ERR_INVALID_GROUP_ID;
    srv_group *g = srv_groups_find(gs, group_id);
    if (!g) {
        for (int i = 0; i < n; i++)
            lm[i].error = KP_ERR_UNKNOWN_MEMBER_ID;
        return KP_ERR_NONE;
    }
    if (g->cg) {
        srv_cgroup_classic_leave(g, n, lm);
        return KP_ERR_NONE;
    }
    g->refs++;
    for (int i = 0; i < n; i++) {
        srv_leave_member *x = &lm[i];
        int pi, idx;
        if (x->member_id.len <= 0) {
            /* Administrative removal of a static member by instance id. */
            srv_gmember *m = static_member(g, x->instance_id);
            if (m) {
                srv_info("group %.*s: static member %.*s (%.*s) removed by LeaveGroup", SRV_SP(g->id),
                         SRV_SP(m->instance_id), SRV_SP(m->id));
                remove_member_and_update(g, member_index(g, srv_s(m->id)), "removing member on LeaveGroup");
                x->error = KP_ERR_NONE;
            } else {
                x->error = KP_ERR_UNKNOWN_MEMBER_ID;
            }
        } else if ((pi = pending_index(g, x->member_id)) >= 0) {
            pending_remove_at(g, pi);
            if (g->state == SRV_GS_PREPARING)
                try_complete_join(g);
            x->error = KP_ERR_NONE;
        } else if ((x->error = srv_groupi_validate_member(g, x->member_id, x->instance_id)) == KP_ERR_NONE) {
            idx = member_index(g, x->member_id);
            srv_info("group %.*s: member %.*s left", SRV_SP(g->id), SRV_SP(g->members[idx]->id));
            remove_member_and_update(g, idx, "removing member on LeaveGroup");
        }
    }
    srv_groupi_rearm(g);
    srv_groupi_unref(g);
    return KP_ERR_NONE;
}

/* ---- membership resets (replay, upgrades) ------------------------------- */

void srv_groupi_clear_membership(srv_group *g)
{
    for (int i = 0; i < g->nmembers; i++)
        srv_groupi_member_free(g->members[i]);
    g->nmembers = 0;
    g->n_awaiting_join = 0;
    srv_sfree(g->protocol_type);
    srv_sfree(g->protocol_name);
    srv_sfree(g->leader);
    g->protocol_type = g->protocol_name = g->leader = NULL;
    g->generation = 0;
    g->state = SRV_GS_EMPTY;
    srv_groupi_subscribed_clear(g);
}

void srv_groupi_clear_classic(srv_group *g)
{
    srv_groupi_clear_membership(g);
    for (int i = 0; i < g->npending; i++)
        srv_sfree(g->pending[i].id);
    g->npending = 0;
    g->join_phase = JOIN_NONE;
    g->sync_deadline = -1;
    if (g->cg) {
        char *c = srv_sdupz("consumer");
        if (c) {
            srv_sfree(g->protocol_type);
            g->protocol_type = c;
        }
    }
}

/* ---- online migration (consumer.c converts, this file runs the result) --- */

void srv_groupi_abort_parked(srv_group *g, int16_t err)
{
    for (int i = 0; i < g->nmembers; i++) {
        srv_gmember *m = g->members[i];
        join_error_member(g, m, m->id, err);
        if (m->sync_cb)
            sync_error((srv_sync_cb)m->sync_cb, m->sync_ctx, err);
        m->sync_cb = NULL;
        m->sync_ctx = NULL;
    }
}

int srv_groupi_from_consumer(srv_group *g, srv_gmember **ms, int n, int32_t generation, kp_batch_builder *bb,
                             int64_t ts)
{
    SRV_ASSERT(!g->cg && g->nmembers == 0,
               "group %.*s: classic members built over %d others (consumer state %p)", SRV_SP(g->id),
               g->nmembers, (void *)g->cg);
    srv_groupi_clear_classic(g);
    if (n > g->mcap) {
        srv_gmember **nm = realloc(g->members, (size_t)n * sizeof(*nm));
        if (!nm) {
            for (int i = 0; i < n; i++)
                srv_groupi_member_free(ms[i]);
            return KP_E_NOMEM;
        }
        g->members = nm;
        g->mcap = n;
    }
    for (int i = 0; i < n; i++) {
        srv_groupi_heartbeat_ok(g, ms[i]);
        g->members[g->nmembers++] = ms[i];
    }
    g->generation = generation;
    char *type = srv_sdupz("consumer");
    if (type) {
        srv_sfree(g->protocol_type);
        g->protocol_type = type;
    }
    srv_groupi_set_str(&g->protocol_name, select_protocol(g));
    srv_groupi_set_str(&g->leader, n > 0 ? g->members[0]->id : NULL);
    srv_groupi_compute_subscribed(g);
    srv_groupi_transition(g, SRV_GS_STABLE);
    int rc = srv_glog_add_group(bb, ts, g, NULL, 0);
    /* The members learn of the new generation by rejoining: a rebalance
     * starts at once, as Kafka's convertToClassicGroup does. */
    char reason[300];
    snprintf(reason, sizeof(reason), "Downgrade group %.*s from consumer to classic for member leaving.",
             srv_slen(g->id) < 200 ? srv_slen(g->id) : 200, g->id);
    prepare_rebalance(g, reason);
    return rc;
}

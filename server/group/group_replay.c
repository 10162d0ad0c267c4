/*
 * group_replay.c — loading the classic groups and committed offsets of one
 * shard from the records group_log.c decodes while __consumer_offsets is
 * replayed (startup, a partition taken over).
 *
 * Owns the rebuild of srv_group state from records: the latest record per
 * key wins, a tombstone removes. Must not: write records, answer requests,
 * or trust a record's content (members without a protocol start over).
 */
#include "group_internal.h"
#include "sstr.h"

#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "group_log.h"
#include "kp_messages.h"

/* ---- loading (replay of __consumer_offsets) ----------------------------- */

srv_group *srv_groupi_load_get(srv_groups *gs, int32_t partition, kp_str id)
{
    srv_group *g = srv_groups_find(gs, id);
    if (!g)
        g = srv_groupi_create(gs, id, partition);
    if (g)
        g->partition = partition;
    return g;
}

void srv_groups_load_offset(srv_groups *gs, int32_t partition, kp_str group, kp_str topic, int32_t p,
                            const srv_goffset *o, int64_t pid)
{
    srv_group *g = srv_groupi_load_get(gs, partition, group);
    if (!g)
        return;
    if (o && pid >= 0) {
        srv_groupi_txn_put(gs, partition, pid, group, topic, p, o);
    } else if (o) {
        srv_groupi_offset_put(g, topic, p, o);
    } else {
        /* A tombstone drops every transaction's pending offset too. */
        srv_groupi_offset_del(g, topic, p);
        srv_groupi_txn_drop(gs, group, topic, p);
    }
}

void srv_groups_load_group(srv_groups *gs, int32_t partition, kp_str group, const kp_group_metadata_value *v)
{
    srv_group *g = srv_groupi_load_get(gs, partition, group);
    if (!g)
        return;
    if (g->cg && !v)
        return; /* the classic tombstone of a group upgraded since */
    srv_cgroup_free(g->cg);
    g->cg = NULL;
    srv_groupi_clear_membership(g);
    if (!v)
        return; /* deleted: its offsets have their own tombstones */
    int32_t n = v->members_count > 0 ? v->members_count : 0;
    if (n > g->mcap) {
        srv_gmember **nm = realloc(g->members, (size_t)n * sizeof(*nm));
        if (!nm)
            return;
        g->members = nm;
        g->mcap = n;
    }
    g->protocol_type = v->protocol_type.len > 0 ? srv_sdup(v->protocol_type) : NULL;
    g->protocol_name = v->protocol.len >= 0 ? srv_sdup(v->protocol) : NULL;
    g->leader = v->leader.len >= 0 ? srv_sdup(v->leader) : NULL;
    g->generation = v->generation;
    g->state_ts = v->current_state_timestamp;
    int64_t t = srv_groupi_now(gs);
    for (int32_t i = 0; i < n; i++) {
        const kp_group_metadata_value_member_metadata *mm = &v->members[i];
        srv_join_protocol jp = {v->protocol.len >= 0 ? v->protocol : kp_str_c(""), mm->subscription};
        srv_join_req rq = {0};
        rq.instance_id = mm->group_instance_id;
        rq.client_id = mm->client_id;
        rq.client_host = mm->client_host;
        rq.protocol_type = v->protocol_type;
        rq.session_timeout_ms = mm->session_timeout;
        rq.rebalance_timeout_ms = mm->rebalance_timeout;
        rq.nprotocols = 1;
        rq.protocols = &jp;
        char *id = srv_sdup(mm->member_id);
        srv_gmember *m = id ? srv_groupi_member_new(&rq, id) : NULL;
        srv_sfree(id);
        if (!m)
            continue;
        if (mm->assignment.len > 0 && (m->assignment = malloc((size_t)mm->assignment.len))) {
            memcpy(m->assignment, mm->assignment.p, (size_t)mm->assignment.len);
            m->assignment_len = mm->assignment.len;
        }
        /* Members must heartbeat within a session, as after any restart. */
        m->deadline = t + m->session_timeout_ms;
        g->members[g->nmembers++] = m;
    }
    g->state = g->nmembers > 0 ? SRV_GS_STABLE : SRV_GS_EMPTY;
    if (g->nmembers > 0 && !g->protocol_name) {
        /* A generation with members has a protocol; without, start over. */
        srv_groupi_clear_membership(g);
        return;
    }
    if (g->leader && !srv_groupi_member_get(g, srv_s(g->leader)))
        srv_groupi_set_str(&g->leader, g->nmembers > 0 ? g->members[0]->id : NULL);
    srv_groupi_compute_subscribed(g);
}

void srv_groups_load_finish(srv_groups *gs)
{
    for (size_t b = 0; b < gs->nbuckets; b++) {
        srv_group *g = gs->buckets[b];
        while (g) {
            srv_group *next = g->next;
            if (g->cg)
                srv_cgroup_load_finish(g);
            /* Pending transactional offsets keep their group: their
             * markers are still to come. */
            if (g->nmembers == 0 && g->ocount == 0 && g->generation == 0 && !g->cg &&
                !srv_groupi_txn_any(gs, srv_s(g->id)))
                srv_groupi_remove(g);
            else
                srv_groupi_rearm(g);
            g = next;
        }
    }
}

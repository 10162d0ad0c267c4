/*
 * share_group.c — share groups of one coordinator shard (KIP-932): members,
 * epochs, the simple assignor, share sessions, share-partitions, the admin
 * operations on them and the groups' dynamic configs.
 *
 * Owns what share_group.h says. Must not: read a clock or metadata itself,
 * touch another shard, or keep pointers into a caller's memory (every string
 * kept is copied).
 */
#include "share_group.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "srv_assert.h"

typedef struct spart {
    srv_share_tp tp;
    int initialized;
    int reset; /* start set to -1 by AlterShareGroupOffsets: listed, no state */
    srv_share_part sp;
} spart;

typedef struct smember {
    char *id;
    int32_t idlen;
    uint32_t serial; /* owner of acquired records; never 0 */
    int32_t epoch;
    int32_t prev_epoch; /* Kafka accepts a heartbeat still carrying it */
    char *client_id, *client_host, *rack;
    int32_t client_id_len, client_host_len, rack_len; /* rack_len -1: none */
    int32_t nsubs;
    char **subs;
    int32_t *sublens;
    int64_t deadline;
    int nasg;
    srv_share_tp *asg; /* its target assignment (the simple assignor's) */
    int has_session;
    int32_t session_epoch; /* the epoch its next request must carry */
    uint64_t sess_conn;    /* the connection that opened the session (0: none known) */
    int nsess;
    srv_share_tp *sess; /* the session's fetch set */
} smember;

typedef struct sgroup {
    struct sgroup *next;
    char *id;
    int32_t idlen;
    int32_t epoch;
    uint32_t next_serial;
    int nmembers;
    smember **members;
    int nparts;
    spart **parts;
    int dirty;         /* members or subscriptions changed: assign again */
    uint64_t meta_sig; /* the subscribed topics' ids and sizes last assigned */
} sgroup;

/* Dynamic configs of one group id, kept whether or not the group exists (as
 * Kafka keeps group configs in its metadata, apart from the group). */
typedef struct gconf {
    struct gconf *next;
    char *id;
    int32_t idlen;
    srv_share_gconf c;
} gconf;

struct srv_share_groups {
    srv_share_cfg cfg;
    sgroup *groups;
    gconf *confs;
};

static int seq(kp_str a, const char *b, int32_t blen)
{
    return a.len == blen && (blen <= 0 || memcmp(a.p, b, (size_t)blen) == 0);
}

/* Appends to a result's message by length: ids are protocol strings (any
 * byte, NUL included), never formatted with %s. */
static void msg_add(srv_shb_result *out, const char *p, int32_t n)
{
    if (n <= 0)
        return;
    int32_t room = (int32_t)sizeof(out->msg) - out->msglen;
    if (n > room)
        n = room;
    memcpy(out->msg + out->msglen, p, (size_t)n);
    out->msglen += n;
}

static void msg_txt(srv_shb_result *out, const char *z)
{
    msg_add(out, z, (int32_t)strlen(z));
}

static void msg_int(srv_shb_result *out, int32_t v)
{
    char b[16];
    int n = snprintf(b, sizeof(b), "%d", v);
    msg_add(out, b, n);
}

static char *dup_str(kp_str s, int32_t *len)
{
    int32_t n = s.len > 0 ? s.len : 0;
    char *p = malloc((size_t)n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s.p, (size_t)n);
    p[n] = 0;
    *len = s.len < 0 ? -1 : n;
    return p;
}

static int tp_eq(const srv_share_tp *a, const srv_share_tp *b)
{
    return a->partition == b->partition && memcmp(a->topic.b, b->topic.b, 16) == 0;
}

srv_share_groups *srv_share_groups_new(const srv_share_cfg *cfg)
{
    srv_share_groups *sg = calloc(1, sizeof(*sg));
    if (sg)
        sg->cfg = *cfg;
    return sg;
}

static void member_free(smember *m)
{
    if (!m)
        return;
    for (int32_t i = 0; i < m->nsubs; i++)
        free(m->subs[i]);
    free(m->subs);
    free(m->sublens);
    free(m->id);
    free(m->client_id);
    free(m->client_host);
    free(m->rack);
    free(m->sess);
    free(m->asg);
    free(m);
}

static void group_free(sgroup *g)
{
    for (int i = 0; i < g->nmembers; i++)
        member_free(g->members[i]);
    for (int i = 0; i < g->nparts; i++) {
        srv_sp_free(&g->parts[i]->sp);
        free(g->parts[i]);
    }
    free(g->members);
    free(g->parts);
    free(g->id);
    free(g);
}

void srv_share_groups_free(srv_share_groups *sg)
{
    if (!sg)
        return;
    while (sg->groups) {
        sgroup *g = sg->groups;
        sg->groups = g->next;
        group_free(g);
    }
    while (sg->confs) {
        gconf *c = sg->confs;
        sg->confs = c->next;
        free(c->id);
        free(c);
    }
    free(sg);
}

static sgroup *find_group(srv_share_groups *sg, kp_str id)
{
    for (sgroup *g = sg->groups; g; g = g->next)
        if (seq(id, g->id, g->idlen))
            return g;
    return NULL;
}

static gconf *find_conf(srv_share_groups *sg, kp_str id)
{
    for (gconf *c = sg->confs; c; c = c->next)
        if (seq(id, c->id, c->idlen))
            return c;
    return NULL;
}

/* A group's setting: its override, else the broker's. */
static int64_t gval(srv_share_groups *sg, kp_str id, enum srv_share_gkey k)
{
    gconf *c = find_conf(sg, id);
    if (c && c->c.set[k])
        return c->c.val[k];
    switch (k) {
    case SRV_SGK_AUTO_RESET:
        return sg->cfg.auto_reset_earliest ? SRV_SHARE_RESET_EARLIEST : SRV_SHARE_RESET_LATEST;
    case SRV_SGK_LOCK_MS:
        return sg->cfg.lock_ms;
    case SRV_SGK_SESSION_MS:
        return sg->cfg.session_ms;
    case SRV_SGK_HEARTBEAT_MS:
        return sg->cfg.heartbeat_ms;
    case SRV_SGK_DELIVERY_LIMIT:
        return sg->cfg.max_delivery;
    case SRV_SGK_MAX_LOCKS:
        return sg->cfg.max_locks;
    case SRV_SGK_RENEW_ENABLE:
        return 1; /* Kafka's default; there is no broker key */
    default:
        break;
    }
    SRV_ASSERT(0, "share group config key %d has no broker default", (int)k);
    return 0;
}

static kp_str gid(const sgroup *g)
{
    return (kp_str){g->id, g->idlen};
}

int32_t srv_share_lock_ms(srv_share_groups *sg, kp_str group_id)
{
    return (int32_t)gval(sg, group_id, SRV_SGK_LOCK_MS);
}

static sgroup *make_group(srv_share_groups *sg, kp_str id)
{
    sgroup *g = calloc(1, sizeof(*g));
    if (!g || !(g->id = dup_str(id, &g->idlen))) {
        free(g);
        return NULL;
    }
    g->next_serial = 1;
    g->next = sg->groups;
    sg->groups = g;
    return g;
}

static smember *find_member(sgroup *g, kp_str id, int *idx)
{
    for (int i = 0; i < g->nmembers; i++)
        if (seq(id, g->members[i]->id, g->members[i]->idlen)) {
            if (idx)
                *idx = i;
            return g->members[i];
        }
    return NULL;
}

static spart *find_part(sgroup *g, const srv_share_tp *tp)
{
    for (int i = 0; i < g->nparts; i++)
        if (tp_eq(&g->parts[i]->tp, tp))
            return g->parts[i];
    return NULL;
}

static spart *get_part(srv_share_groups *sg, sgroup *g, const srv_share_tp *tp)
{
    spart *p = find_part(g, tp);
    if (p)
        return p;
    spart **np = realloc(g->parts, ((size_t)g->nparts + 1) * sizeof(*np));
    if (!np)
        return NULL;
    g->parts = np;
    if (!(p = calloc(1, sizeof(*p))))
        return NULL;
    p->tp = *tp;
    srv_sp_init(&p->sp, 0, (int32_t)gval(sg, gid(g), SRV_SGK_LOCK_MS),
                (int32_t)gval(sg, gid(g), SRV_SGK_DELIVERY_LIMIT),
                (int32_t)gval(sg, gid(g), SRV_SGK_MAX_LOCKS));
    g->parts[g->nparts++] = p;
    return p;
}

/* A member gone (left, session expired): its records go back to the others. */
static void remove_member(sgroup *g, int idx)
{
    smember *m = g->members[idx];
    for (int i = 0; i < g->nparts; i++)
        if (g->parts[i]->initialized)
            srv_sp_release_owner(&g->parts[i]->sp, m->serial);
    member_free(m);
    memmove(&g->members[idx], &g->members[idx + 1], (size_t)(g->nmembers - idx - 1) * sizeof(*g->members));
    g->nmembers--;
    g->epoch++;
    g->dirty = 1;
}

/* Sessions end lazily: every operation on a group first drops the members
 * whose session timed out and returns records whose lock expired. */
static void expire(sgroup *g, int64_t now_ms)
{
    for (int i = g->nmembers - 1; i >= 0; i--)
        if (g->members[i]->deadline <= now_ms)
            remove_member(g, i);
    for (int i = 0; i < g->nparts; i++)
        if (g->parts[i]->initialized)
            srv_sp_expire(&g->parts[i]->sp, now_ms);
}

/* Most partitions one member may be assigned (the sum over its subscribed
 * topics, duplicates included). */
#define SHARE_MAX_ASSIGNED (1 << 20)
/* Most partitions in one member's share session, and named in one ShareFetch. */
#define SHARE_MAX_SESSION_PARTS 10000

/* ---- The simple assignor -------------------------------------------------
 *
 * KIP-932's rules as Kafka 4.4's SimpleAssignor applies them: every
 * partition of a subscribed topic goes to at least one member; when members
 * outnumber partitions, partitions are shared so that each has about as many
 * members (at most one apart); the members' assignment sizes differ by at
 * most one (balance before stickiness); a member keeps what it had as far as
 * the balance allows. With different subscriptions (heterogeneous) a topic's
 * partitions are shared among its subscribers only and each partition goes
 * to the least loaded subscriber. Which member gets which partition is not
 * Kafka's (its choice follows Java hash-map iteration); the shape is. */

typedef struct atopic {
    kp_uuid id;
    int32_t np;
    int32_t base;  /* index of its partition 0 among all target partitions */
    int32_t nsubs; /* members subscribed to it */
    int32_t share; /* members wanted per partition */
} atopic;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int topic_index(const atopic *t, int nt, const kp_uuid *id)
{
    for (int i = 0; i < nt; i++)
        if (memcmp(t[i].id.b, id->b, 16) == 0)
            return i;
    return -1;
}

/* The distinct topics the members subscribe to that exist (in the order
 * first named), and their signature. Returns how many, -1 on failure or
 * when they are more partitions than SHARE_MAX_ASSIGNED. */
static int group_topics(const sgroup *g, srv_share_topic_fn topic, void *targ, atopic **out, uint64_t *sig)
{
    int nt = 0, cap = 0;
    atopic *t = NULL;
    int64_t total = 0;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < g->nmembers; i++) {
        const smember *m = g->members[i];
        for (int32_t k = 0; k < m->nsubs; k++) {
            kp_uuid id;
            int32_t np;
            if (!topic(targ, (kp_str){m->subs[k], m->sublens[k]}, &id, &np) || np <= 0)
                continue;
            if (topic_index(t, nt, &id) >= 0)
                continue;
            if (nt == cap) {
                cap = cap ? cap * 2 : 8;
                atopic *nv = realloc(t, (size_t)cap * sizeof(*nv));
                if (!nv) {
                    free(t);
                    return -1;
                }
                t = nv;
            }
            t[nt] = (atopic){.id = id, .np = np, .base = (int32_t)total};
            total += np;
            if (total > SHARE_MAX_ASSIGNED) {
                free(t);
                return -1;
            }
            h = fnv(h, id.b, 16);
            h = fnv(h, &np, sizeof(np));
            nt++;
        }
    }
    *out = t;
    *sig = h;
    return nt;
}

/* Whether member m subscribes to topic index ti (by name: resolved again). */
static int subscribed(const smember *m, const atopic *t, srv_share_topic_fn topic, void *targ)
{
    for (int32_t k = 0; k < m->nsubs; k++) {
        kp_uuid id;
        int32_t np;
        if (topic(targ, (kp_str){m->subs[k], m->sublens[k]}, &id, &np) && memcmp(id.b, t->id.b, 16) == 0)
            return 1;
    }
    return 0;
}

typedef struct ivec {
    int32_t n, cap;
    int32_t *v;
} ivec;

static int ivec_push(ivec *x, int32_t v)
{
    if (x->n == x->cap) {
        int32_t cap = x->cap ? x->cap * 2 : 8;
        int32_t *nv = realloc(x->v, (size_t)cap * sizeof(*nv));
        if (!nv)
            return -1;
        x->v = nv;
        x->cap = cap;
    }
    x->v[x->n++] = v;
    return 0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Assigns the group again. Returns 1 when some member's assignment changed,
 * 0 when none did, -1 on failure (nothing changed then). */
static int rebalance(sgroup *g, srv_share_topic_fn topic, void *targ)
{
    atopic *t = NULL;
    uint64_t sig;
    int nt = group_topics(g, topic, targ, &t, &sig);
    if (nt < 0)
        return -1;
    int nm = g->nmembers, rc = -1;
    int32_t total = nt ? t[nt - 1].base + t[nt - 1].np : 0;
    uint8_t *sub = calloc((size_t)nm * (size_t)nt + 1, 1); /* sub[m * nt + ti] */
    int32_t *cap = calloc((size_t)nm + 1, sizeof(*cap));
    ivec *got = calloc((size_t)nm + 1, sizeof(*got));
    int32_t *nheld = calloc((size_t)total + 1, sizeof(*nheld));
    int32_t *slot = calloc((size_t)total + 1, sizeof(*slot)); /* first holder slot of each partition */
    int32_t *holder = NULL;
    if (!sub || !cap || !got || !nheld || !slot)
        goto out;
    for (int i = 0; i < nm; i++)
        for (int ti = 0; ti < nt; ti++)
            if (subscribed(g->members[i], &t[ti], topic, targ)) {
                sub[(size_t)i * nt + ti] = 1;
                t[ti].nsubs++;
            }
    int homogeneous = 1;
    for (int i = 1; i < nm && homogeneous; i++)
        homogeneous = memcmp(&sub[(size_t)i * nt], sub, (size_t)nt) == 0;
    /* Members wanted per partition: ceil(members / partitions), over the
     * whole subscription when homogeneous, per topic otherwise. */
    int64_t nslots = 0;
    for (int ti = 0; ti < nt; ti++) {
        int32_t members = homogeneous ? nm : t[ti].nsubs, parts = homogeneous ? total : t[ti].np;
        t[ti].share = members ? (members + parts - 1) / parts : 0;
        for (int32_t p = 0; p < t[ti].np; p++) {
            slot[t[ti].base + p] = (int32_t)nslots;
            nslots += t[ti].share;
        }
    }
    if (!(holder = calloc((size_t)nslots + 1, sizeof(*holder))))
        goto out;
    /* Homogeneous: member i may hold ceil(S*(i+1)) - ceil(S*i) of the S =
     * share * partitions / members slots each, so sizes differ by at most
     * one. Heterogeneous: unbounded, the least loaded takes the next. */
    int64_t all = homogeneous && nt ? (int64_t)t[0].share * total : 0;
    for (int i = 0; i < nm; i++)
        cap[i] = homogeneous ? (int32_t)((all * (i + 1) + nm - 1) / nm - (all * i + nm - 1) / nm) : INT32_MAX;
    /* Stickiness: each member keeps its partitions that are still wanted,
     * within its share and the partition's. */
    for (int i = 0; i < nm; i++) {
        const smember *m = g->members[i];
        for (int k = 0; k < m->nasg && got[i].n < cap[i]; k++) {
            int ti = topic_index(t, nt, &m->asg[k].topic);
            if (ti < 0 || !sub[(size_t)i * nt + ti] || m->asg[k].partition >= t[ti].np)
                continue;
            int32_t pi = t[ti].base + m->asg[k].partition;
            if (nheld[pi] >= t[ti].share)
                continue;
            holder[slot[pi] + nheld[pi]++] = i;
            if (ivec_push(&got[i], pi) < 0)
                goto out;
        }
    }
    /* Every partition short of members goes to the least loaded eligible
     * member that does not hold it yet and has room. */
    for (int ti = 0; ti < nt; ti++)
        for (int32_t p = 0; p < t[ti].np; p++) {
            int32_t pi = t[ti].base + p;
            while (nheld[pi] < t[ti].share) {
                int best = -1;
                for (int i = 0; i < nm; i++) {
                    if (!sub[(size_t)i * nt + ti] || got[i].n >= cap[i])
                        continue;
                    int holds = 0;
                    for (int32_t h = 0; h < nheld[pi] && !holds; h++)
                        holds = holder[slot[pi] + h] == i;
                    if (!holds && (best < 0 || got[i].n < got[best].n))
                        best = i;
                }
                if (best < 0)
                    break; /* as Kafka: a slight imbalance rather than a reshuffle */
                holder[slot[pi] + nheld[pi]++] = best;
                if (ivec_push(&got[best], pi) < 0)
                    goto out;
            }
        }
    /* Each member's new assignment, in topic then partition order. */
    int changed = 0;
    for (int i = 0; i < nm; i++) {
        smember *m = g->members[i];
        qsort(got[i].v, (size_t)got[i].n, sizeof(int32_t), cmp_i32);
        srv_share_tp *v = calloc((size_t)got[i].n + 1, sizeof(*v));
        if (!v)
            goto out;
        int ti = 0;
        for (int32_t k = 0; k < got[i].n; k++) {
            while (got[i].v[k] >= t[ti].base + t[ti].np)
                ti++;
            v[k].topic = t[ti].id;
            v[k].partition = got[i].v[k] - t[ti].base;
        }
        int same = got[i].n == m->nasg;
        for (int32_t k = 0; same && k < got[i].n; k++)
            same = tp_eq(&v[k], &m->asg[k]);
        changed |= !same;
        free(m->asg);
        m->asg = v;
        m->nasg = got[i].n;
    }
    g->meta_sig = sig;
    g->dirty = 0;
    rc = changed;
out:
    for (int i = 0; got && i < nm; i++)
        free(got[i].v);
    free(got);
    free(sub);
    free(cap);
    free(nheld);
    free(slot);
    free(holder);
    free(t);
    return rc;
}

/* Assigns again when members or what they subscribe to changed (topics
 * created, deleted or grown count too). Returns as rebalance(). */
static int maybe_rebalance(sgroup *g, srv_share_topic_fn topic, void *targ)
{
    if (!g->dirty) {
        atopic *t = NULL;
        uint64_t sig;
        if (group_topics(g, topic, targ, &t, &sig) < 0)
            return -1;
        free(t);
        if (sig == g->meta_sig)
            return 0;
    }
    return rebalance(g, topic, targ);
}

static srv_share_tp *copy_asg(const smember *m, kp_arena *a)
{
    srv_share_tp *v = kp_arena_alloc(a, ((size_t)m->nasg + 1) * sizeof(*v));
    if (v && m->nasg)
        memcpy(v, m->asg, (size_t)m->nasg * sizeof(*v));
    return v;
}

static int set_subs(smember *m, int32_t n, const kp_str *subs)
{
    char **s = calloc((size_t)n + 1, sizeof(*s));
    int32_t *l = calloc((size_t)n + 1, sizeof(*l));
    if (!s || !l) {
        free(s);
        free(l);
        return -1;
    }
    for (int32_t i = 0; i < n; i++)
        if (!(s[i] = dup_str(subs[i], &l[i]))) {
            while (i-- > 0)
                free(s[i]);
            free(s);
            free(l);
            return -1;
        }
    for (int32_t i = 0; i < m->nsubs; i++)
        free(m->subs[i]);
    free(m->subs);
    free(m->sublens);
    m->subs = s;
    m->sublens = l;
    m->nsubs = n;
    return 0;
}

static int subs_differ(const smember *m, int32_t n, const kp_str *subs)
{
    if (n != m->nsubs)
        return 1;
    for (int32_t i = 0; i < n; i++)
        if (!seq(subs[i], m->subs[i], m->sublens[i]))
            return 1;
    return 0;
}

void srv_share_heartbeat(srv_share_groups *sg, const srv_shb_req *rq, int64_t now_ms,
                         srv_share_topic_fn topic, void *targ, kp_arena *a, srv_shb_result *out)
{
    memset(out, 0, sizeof(*out));
    out->nassigned = -1;
    out->heartbeat_ms = sg->cfg.heartbeat_ms;
    /* Kafka's validation order and messages (GroupMetadataManager). */
    if (rq->group_id.len <= 0) {
        out->error = KP_ERR_INVALID_REQUEST;
        out->message = "GroupId can't be empty.";
        return;
    }
    if (rq->member_id.len <= 0) {
        out->error = KP_ERR_INVALID_REQUEST;
        out->message = "MemberId can't be empty.";
        return;
    }
    if (rq->member_epoch < -1) {
        out->error = KP_ERR_INVALID_REQUEST;
        out->message = "MemberEpoch is invalid.";
        return;
    }
    if (rq->member_epoch == 0 && rq->nsubs <= 0) {
        out->error = KP_ERR_INVALID_REQUEST;
        out->message = "SubscribedTopicNames must be set in first request.";
        return;
    }
    sgroup *g = find_group(sg, rq->group_id);
    if (g)
        expire(g, now_ms);
    int idx = -1;
    smember *m = g ? find_member(g, rq->member_id, &idx) : NULL;
    if (rq->member_epoch != 0 && !m) {
        /* Kafka's words: "Member <id> is not a member of group <id>." */
        out->error = KP_ERR_UNKNOWN_MEMBER_ID;
        msg_txt(out, "Member ");
        msg_add(out, rq->member_id.p, rq->member_id.len);
        msg_txt(out, " is not a member of group ");
        msg_add(out, rq->group_id.p, rq->group_id.len);
        msg_txt(out, ".");
        return;
    }
    if (rq->member_epoch == -1) {
        remove_member(g, idx);
        out->member_epoch = -1;
        out->heartbeat_ms = 0;
        return;
    }
    /* Kafka also takes the epoch the member had before its last move (its
     * answer may have been lost). */
    if (rq->member_epoch > 0 && rq->member_epoch != m->epoch && rq->member_epoch != m->prev_epoch) {
        out->error = KP_ERR_FENCED_MEMBER_EPOCH;
        msg_txt(out, rq->member_epoch > m->epoch ? "The share group member has a greater member epoch ("
                                                 : "The share group member has a smaller member epoch (");
        msg_int(out, rq->member_epoch);
        msg_txt(out, ") than the one known by the group coordinator (");
        msg_int(out, m->epoch);
        msg_txt(out, "). The member must abandon all its partitions and rejoin.");
        return;
    }
    int joined = 0;
    if (!m) {
        if (!g && !(g = make_group(sg, rq->group_id))) {
            out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            return;
        }
        if (sg->cfg.max_size > 0 && g->nmembers >= sg->cfg.max_size) {
            out->error = KP_ERR_GROUP_MAX_SIZE_REACHED;
            return;
        }
        smember **nm = realloc(g->members, ((size_t)g->nmembers + 1) * sizeof(*nm));
        if (!nm) {
            out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            return;
        }
        g->members = nm;
        if (!(m = calloc(1, sizeof(*m))) || !(m->id = dup_str(rq->member_id, &m->idlen))) {
            free(m);
            out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            return;
        }
        m->serial = g->next_serial++;
        if (!g->next_serial)
            g->next_serial = 1;
        g->members[g->nmembers++] = m;
        joined = 1;
    }
    if (rq->client_id.p && !m->client_id)
        m->client_id = dup_str(rq->client_id, &m->client_id_len);
    if (rq->client_host.p && !m->client_host)
        m->client_host = dup_str(rq->client_host, &m->client_host_len);
    if (rq->rack_id.len >= 0) {
        free(m->rack);
        m->rack = dup_str(rq->rack_id, &m->rack_len);
    } else if (!m->rack) {
        m->rack_len = -1;
    }
    int changed = joined;
    if (rq->nsubs >= 0 && subs_differ(m, rq->nsubs, rq->subs)) {
        if (set_subs(m, rq->nsubs, rq->subs) < 0) {
            out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            return;
        }
        changed = 1;
    }
    if (changed)
        g->dirty = 1;
    int moved = maybe_rebalance(g, topic, targ);
    if (moved < 0) {
        out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    /* The group epoch moves with its membership and its assignment; the
     * members whose assignment changed learn it at their next heartbeat. */
    if (changed || moved)
        g->epoch++;
    m->deadline = now_ms + gval(sg, rq->group_id, SRV_SGK_SESSION_MS);
    out->heartbeat_ms = (int32_t)gval(sg, rq->group_id, SRV_SGK_HEARTBEAT_MS);
    /* Share groups never revoke: a member moves straight to the group's
     * epoch, and learns its assignment whenever its epoch moves. */
    if (changed || rq->member_epoch == 0 || m->epoch != g->epoch) {
        if (m->epoch != g->epoch)
            m->prev_epoch = m->epoch;
        m->epoch = g->epoch;
        out->assigned = copy_asg(m, a);
        out->nassigned = out->assigned ? m->nasg : -1;
    }
    out->member_epoch = m->epoch;
}

static kp_str arena_copy(kp_arena *a, const char *p, int32_t len)
{
    if (len < 0)
        return KP_STR_NULL;
    return kp_arena_str(a, (kp_str){p ? p : "", len});
}

void srv_share_describe(srv_share_groups *sg, kp_str group_id, int64_t now_ms, srv_share_topic_fn topic,
                        void *targ, kp_arena *a, srv_shd_group *out)
{
    memset(out, 0, sizeof(*out));
    sgroup *g = find_group(sg, group_id);
    if (!g) {
        out->error = KP_ERR_GROUP_ID_NOT_FOUND;
        out->state = "Dead";
        return;
    }
    expire(g, now_ms);
    /* A change seen here moves the epoch as in a heartbeat, so that members
     * learn their new assignment (on failure: the last assignment stays). */
    if (maybe_rebalance(g, topic, targ) > 0)
        g->epoch++;
    out->state = g->nmembers ? "Stable" : "Empty";
    out->epoch = g->epoch;
    out->nmembers = g->nmembers;
    out->members = kp_arena_alloc(a, ((size_t)g->nmembers + 1) * sizeof(*out->members));
    if (!out->members)
        return; /* the arena's failed flag refuses the answer */
    for (int i = 0; i < g->nmembers; i++) {
        smember *m = g->members[i];
        srv_shd_member *o = &out->members[i];
        o->member_id = arena_copy(a, m->id, m->idlen);
        o->rack_id = arena_copy(a, m->rack, m->rack ? m->rack_len : -1);
        o->client_id = arena_copy(a, m->client_id, m->client_id ? m->client_id_len : 0);
        o->client_host = arena_copy(a, m->client_host, m->client_host ? m->client_host_len : 0);
        o->member_epoch = m->epoch;
        o->nsubs = m->nsubs;
        o->subs = kp_arena_alloc(a, ((size_t)m->nsubs + 1) * sizeof(*o->subs));
        for (int32_t k = 0; o->subs && k < m->nsubs; k++)
            o->subs[k] = arena_copy(a, m->subs[k], m->sublens[k]);
        o->assigned = copy_asg(m, a);
        o->nassigned = o->assigned ? m->nasg : 0;
    }
}

void srv_share_foreach(srv_share_groups *sg, void (*fn)(void *arg, kp_str id, const char *state), void *arg)
{
    for (sgroup *g = sg->groups; g; g = g->next)
        fn(arg, (kp_str){g->id, g->idlen}, g->nmembers ? "Stable" : "Empty");
}

void srv_share_stats(srv_share_groups *sg, int64_t now_ms, const srv_share_stat_fns *fns, void *arg)
{
    for (sgroup *g = sg->groups; g; g = g->next) {
        kp_str id = {g->id, g->idlen};
        /* Read only: a member past its deadline is not counted, but leaving
         * (and giving its records back) happens when the group is next used. */
        int32_t live = 0;
        for (int i = 0; i < g->nmembers; i++)
            live += g->members[i]->deadline > now_ms;
        fns->group(arg, id, live);
        for (int i = 0; i < g->nparts; i++)
            if (g->parts[i]->initialized)
                fns->part(arg, id, &g->parts[i]->tp, &g->parts[i]->sp);
    }
}

static int sess_has(const smember *m, const srv_share_tp *tp)
{
    for (int i = 0; i < m->nsess; i++)
        if (tp_eq(&m->sess[i], tp))
            return 1;
    return 0;
}

static int sess_add(smember *m, const srv_share_tp *tp)
{
    if (sess_has(m, tp))
        return 0;
    srv_share_tp *v = realloc(m->sess, ((size_t)m->nsess + 1) * sizeof(*v));
    if (!v)
        return -1;
    m->sess = v;
    m->sess[m->nsess++] = *tp;
    return 0;
}

static void sess_remove(smember *m, const srv_share_tp *tp)
{
    for (int i = 0; i < m->nsess; i++)
        if (tp_eq(&m->sess[i], tp)) {
            m->sess[i] = m->sess[--m->nsess];
            return;
        }
}

static void apply_acks(srv_share_groups *sg, sgroup *g, smember *m, const srv_share_sreq *rq, int64_t now_ms,
                       srv_share_item *it)
{
    if (!it->nacks)
        return;
    /* RENEW: only in a v2 request that says so (IsRenewAck), else the
     * partition's acknowledgements are refused whole, as Kafka; the group's
     * share.renew.acknowledge.enable is checked per batch (share_partition). */
    int renews = 0;
    for (int k = 0; k < it->nacks; k++)
        for (int32_t t = 0; t < it->acks[k].ntypes; t++)
            renews |= it->acks[k].types[t] == SRV_ACK_RENEW;
    if (renews && !rq->renew) {
        it->ack_error = KP_ERR_INVALID_REQUEST;
        return;
    }
    spart *p = find_part(g, &it->tp);
    if (!p || !p->initialized) {
        it->ack_error = KP_ERR_INVALID_RECORD_STATE;
        return;
    }
    for (int k = 0; k < it->nacks; k++) {
        const srv_share_ackb *b = &it->acks[k];
        const char *why;
        int64_t at = !rq->renew                                     ? -1
                     : gval(sg, rq->group_id, SRV_SGK_RENEW_ENABLE) ? now_ms
                                                                    : SRV_SP_RENEW_DISABLED;
        int16_t e = srv_sp_ack_at(&p->sp, m->serial, b->first, b->last, b->types, b->ntypes, at, &why);
        if (e && !it->ack_error) {
            it->ack_error = e;
            it->ack_why = why;
        }
    }
}

int srv_share_conn_closed(srv_share_groups *sg, kp_str group_id, kp_str member_id, uint64_t conn,
                          int64_t now_ms)
{
    sgroup *g = find_group(sg, group_id);
    if (g)
        expire(g, now_ms);
    smember *m = g ? find_member(g, member_id, NULL) : NULL;
    /* A session opened again since over another connection (epoch 0
     * there) belongs to that connection now: its records stay. */
    if (!m || !m->has_session || conn == 0 || m->sess_conn != conn)
        return -1;
    int moved = 0;
    for (int i = 0; i < g->nparts; i++)
        if (g->parts[i]->initialized)
            moved += srv_sp_release_owner(&g->parts[i]->sp, m->serial);
    m->has_session = 0;
    m->nsess = 0;
    m->sess_conn = 0;
    return moved;
}

int16_t srv_share_begin(srv_share_groups *sg, const srv_share_sreq *rq, int64_t now_ms, kp_arena *a,
                        srv_share_item **items, int *nitems)
{
    sgroup *g = find_group(sg, rq->group_id);
    if (g)
        expire(g, now_ms);
    smember *m = g ? find_member(g, rq->member_id, NULL) : NULL;
    if (!m)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    srv_share_item *in = *items;
    int nin = *nitems;
    int has_acks = 0;
    for (int i = 0; i < nin; i++)
        has_acks |= in[i].nacks > 0;
    if (rq->epoch == 0) {
        /* A new session: acknowledgements need an existing one. */
        if (!rq->is_fetch)
            return KP_ERR_INVALID_SHARE_SESSION_EPOCH;
        if (has_acks)
            return KP_ERR_INVALID_REQUEST;
        m->nsess = 0;
        m->has_session = 1;
        m->session_epoch = 1;
        m->sess_conn = rq->conn;
    } else {
        if (!m->has_session)
            return KP_ERR_SHARE_SESSION_NOT_FOUND;
        if (rq->epoch != -1 && rq->epoch != m->session_epoch)
            return KP_ERR_INVALID_SHARE_SESSION_EPOCH;
        if (rq->epoch != -1)
            m->session_epoch = m->session_epoch == INT32_MAX ? 1 : m->session_epoch + 1;
    }
    for (int i = 0; i < nin; i++)
        apply_acks(sg, g, m, rq, now_ms, &in[i]);
    if (!rq->is_fetch) {
        if (rq->epoch == -1) {
            for (int i = 0; i < g->nparts; i++)
                if (g->parts[i]->initialized)
                    srv_sp_release_owner(&g->parts[i]->sp, m->serial);
            m->has_session = 0;
            m->nsess = 0;
        }
        return 0;
    }
    if (rq->epoch == -1) {
        /* Closing: acknowledge, give back what it still holds, fetch nothing. */
        for (int i = 0; i < g->nparts; i++)
            if (g->parts[i]->initialized)
                srv_sp_release_owner(&g->parts[i]->sp, m->serial);
        m->has_session = 0;
        m->nsess = 0;
        for (int i = 0; i < nin; i++)
            in[i].read_from = -1, in[i].fetch = 0;
        return 0;
    }
    for (int i = 0; i < rq->nforgotten; i++)
        sess_remove(m, &rq->forgotten[i]);
    /* The session's partitions come from the client and are scanned
     * linearly on the coordinator's loop: bounded (Kafka has no such bound;
     * no client comes near it). */
    if (nin > SHARE_MAX_SESSION_PARTS)
        return KP_ERR_INVALID_REQUEST;
    for (int i = 0; i < nin; i++) {
        if (in[i].fetch && !sess_has(m, &in[i].tp) && m->nsess >= SHARE_MAX_SESSION_PARTS)
            return KP_ERR_INVALID_REQUEST;
        if (in[i].fetch && sess_add(m, &in[i].tp) < 0)
            return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    /* The answer: every partition named in the request (their ack results)
     * plus every partition of the session to fetch from. */
    int n = nin;
    for (int i = 0; i < m->nsess; i++) {
        int named = 0;
        for (int k = 0; k < nin && !named; k++)
            named = tp_eq(&in[k].tp, &m->sess[i]);
        if (!named)
            n++;
    }
    srv_share_item *out = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*out));
    if (!out)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    memcpy(out, in, (size_t)nin * sizeof(*out));
    int k = nin;
    for (int i = 0; i < m->nsess; i++) {
        int named = 0;
        for (int j = 0; j < nin && !named; j++)
            named = tp_eq(&in[j].tp, &m->sess[i]);
        if (named)
            continue;
        memset(&out[k], 0, sizeof(out[k]));
        out[k].tp = m->sess[i];
        k++;
    }
    for (int i = 0; i < n; i++) {
        srv_share_item *it = &out[i];
        it->fetch = sess_has(m, &it->tp);
        it->read_from = -1;
        it->probe = 0;
        it->reset_ago_ms = -1;
        it->ts_offset = -1;
        if (!it->fetch)
            continue;
        /* Created by the acquisition step once a read found the partition:
         * naming partitions that do not exist costs no state. */
        spart *p = find_part(g, &it->tp);
        if (!p || !p->initialized) {
            it->probe = 1;
            it->read_from = 0;
            gconf *c = find_conf(sg, rq->group_id);
            if (c && c->c.set[SRV_SGK_AUTO_RESET] &&
                c->c.val[SRV_SGK_AUTO_RESET] == SRV_SHARE_RESET_BY_DURATION)
                it->reset_ago_ms = c->c.reset_ms;
        } else {
            it->read_from = srv_sp_read_from(&p->sp);
        }
    }
    *items = out;
    *nitems = n;
    return 0;
}

int16_t srv_share_acquire(srv_share_groups *sg, const srv_share_sreq *rq, int32_t max_records, int64_t now_ms,
                          kp_arena *a, srv_share_item *items, int nitems)
{
    sgroup *g = find_group(sg, rq->group_id);
    smember *m = g ? find_member(g, rq->member_id, NULL) : NULL;
    if (!m)
        return KP_ERR_UNKNOWN_MEMBER_ID; /* it left or expired while reading */
    int32_t left = max_records > 0 ? max_records : INT32_MAX;
    for (int i = 0; i < nitems; i++) {
        srv_share_item *it = &items[i];
        it->nranges = 0;
        if (!it->fetch || it->error || !sess_has(m, &it->tp))
            continue;
        spart *p = find_part(g, &it->tp);
        if (!p || !p->initialized) {
            if (it->log_start < 0 || it->hwm < 0)
                continue; /* not read: no such partition, or it failed */
            if (!p && !(p = get_part(sg, g, &it->tp)))
                return KP_ERR_UNKNOWN_SERVER_ERROR;
            /* share.auto.offset.reset: where a new share-partition starts. */
            int64_t start = it->hwm;
            int64_t mode = gval(sg, rq->group_id, SRV_SGK_AUTO_RESET);
            if (mode == SRV_SHARE_RESET_EARLIEST)
                start = it->log_start;
            else if (mode == SRV_SHARE_RESET_BY_DURATION && it->ts_offset >= it->log_start &&
                     it->ts_offset < it->hwm)
                start = it->ts_offset; /* no record that recent: the end, as Kafka */
            srv_sp_init(&p->sp, start, (int32_t)gval(sg, rq->group_id, SRV_SGK_LOCK_MS),
                        (int32_t)gval(sg, rq->group_id, SRV_SGK_DELIVERY_LIMIT),
                        (int32_t)gval(sg, rq->group_id, SRV_SGK_MAX_LOCKS));
            p->initialized = 1;
            p->reset = 0;
            /* A later round of the same (long-polling) fetch reads from here. */
            it->probe = 0;
            it->read_from = start;
            continue;
        }
        if (it->probe)
            continue;
        if (it->log_start > p->sp.start)
            srv_sp_move_start(&p->sp, it->log_start);
        srv_sp_expire(&p->sp, now_ms);
        if (it->last < 0 || it->read_from < 0 || left <= 0)
            continue;
        int cap = 64;
        srv_sp_range *r = kp_arena_alloc(a, (size_t)cap * sizeof(*r));
        if (!r)
            return KP_ERR_UNKNOWN_SERVER_ERROR;
        int n = srv_sp_acquire(&p->sp, m->serial, it->read_from, it->last, left, now_ms, r, cap);
        if (n < 0)
            return KP_ERR_UNKNOWN_SERVER_ERROR;
        for (int k = 0; k < n; k++)
            left -= (int32_t)(r[k].last - r[k].first + 1);
        it->ranges = r;
        it->nranges = n;
    }
    return 0;
}

int srv_share_nparts(srv_share_groups *sg, kp_str group_id)
{
    sgroup *g = find_group(sg, group_id);
    return g ? g->nparts : -1;
}

const srv_share_part *srv_share_part_of(srv_share_groups *sg, kp_str group_id, const srv_share_tp *tp)
{
    sgroup *g = find_group(sg, group_id);
    spart *p = g ? find_part(g, tp) : NULL;
    return p && p->initialized ? &p->sp : NULL;
}

/* ---- Admin ---------------------------------------------------------------- */

static int tp_cmp(const void *x, const void *y)
{
    const srv_share_off *a = x, *b = y;
    int c = memcmp(a->tp.topic.b, b->tp.topic.b, 16);
    if (c)
        return c;
    return (a->tp.partition > b->tp.partition) - (a->tp.partition < b->tp.partition);
}

static void fill_off(const spart *p, srv_share_off *o)
{
    if (!p || !p->initialized) {
        o->start = -1;
        o->done = 0;
        return;
    }
    o->start = p->sp.start;
    o->done = (p->sp.end - p->sp.start) - srv_sp_in_flight(&p->sp);
}

int srv_share_offsets_all(srv_share_groups *sg, kp_str group_id, int64_t now_ms, kp_arena *a,
                          srv_share_off **out)
{
    sgroup *g = find_group(sg, group_id);
    *out = NULL;
    if (!g)
        return 0;
    expire(g, now_ms);
    srv_share_off *v = kp_arena_alloc(a, ((size_t)g->nparts + 1) * sizeof(*v));
    if (!v)
        return -1;
    int n = 0;
    for (int i = 0; i < g->nparts; i++) {
        if (!g->parts[i]->initialized && !g->parts[i]->reset)
            continue;
        v[n].tp = g->parts[i]->tp;
        fill_off(g->parts[i], &v[n]);
        n++;
    }
    qsort(v, (size_t)n, sizeof(*v), tp_cmp);
    *out = v;
    return n;
}

void srv_share_offset_of(srv_share_groups *sg, kp_str group_id, srv_share_off *o)
{
    sgroup *g = find_group(sg, group_id);
    fill_off(g ? find_part(g, &o->tp) : NULL, o);
}

int16_t srv_share_check_empty(srv_share_groups *sg, kp_str group_id, int64_t now_ms)
{
    sgroup *g = find_group(sg, group_id);
    if (!g)
        return KP_ERR_GROUP_ID_NOT_FOUND;
    expire(g, now_ms);
    return g->nmembers ? KP_ERR_NON_EMPTY_GROUP : 0;
}

static void drop_part(sgroup *g, int i)
{
    srv_sp_free(&g->parts[i]->sp);
    free(g->parts[i]);
    g->parts[i] = g->parts[--g->nparts];
}

int16_t srv_share_alter_offset(srv_share_groups *sg, kp_str group_id, const srv_share_tp *tp, int64_t start)
{
    sgroup *g = find_group(sg, group_id);
    if (!g) {
        if (!(g = make_group(sg, group_id)))
            return KP_ERR_UNKNOWN_SERVER_ERROR;
        g->epoch = 1; /* as Kafka: a group made by its offsets is at epoch 1 */
    }
    SRV_ASSERT(g->nmembers == 0, "share offsets altered in a group with %d members", g->nmembers);
    spart *p = get_part(sg, g, tp);
    if (!p)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    if (start < 0) {
        /* Kafka keeps the partition, without a start: the next fetch
         * initialises it from share.auto.offset.reset. */
        srv_sp_free(&p->sp);
        /* Empty (start == end) rather than freed with its old window: a
         * loop that reaches it anyway must find nothing in flight. */
        srv_sp_init(&p->sp, p->sp.start, (int32_t)gval(sg, group_id, SRV_SGK_LOCK_MS),
                    (int32_t)gval(sg, group_id, SRV_SGK_DELIVERY_LIMIT),
                    (int32_t)gval(sg, group_id, SRV_SGK_MAX_LOCKS));
        p->initialized = 0;
        p->reset = 1;
        return 0;
    }
    p->reset = 0;
    /* A new start with nothing in flight: no member holds anything (the
     * group is empty), so no acquisition is lost. */
    srv_sp_free(&p->sp);
    srv_sp_init(&p->sp, start, (int32_t)gval(sg, group_id, SRV_SGK_LOCK_MS),
                (int32_t)gval(sg, group_id, SRV_SGK_DELIVERY_LIMIT),
                (int32_t)gval(sg, group_id, SRV_SGK_MAX_LOCKS));
    p->initialized = 1;
    return 0;
}

void srv_share_delete_topic(srv_share_groups *sg, kp_str group_id, const kp_uuid *topic)
{
    sgroup *g = find_group(sg, group_id);
    if (!g)
        return;
    for (int i = g->nparts - 1; i >= 0; i--)
        if (memcmp(g->parts[i]->tp.topic.b, topic->b, 16) == 0)
            drop_part(g, i);
}

int srv_share_tps(srv_share_groups *sg, kp_str group_id, const kp_uuid *topic, srv_share_tp *out, int cap)
{
    sgroup *g = find_group(sg, group_id);
    int n = 0;
    for (int i = 0; g && i < g->nparts; i++) {
        if (topic && memcmp(g->parts[i]->tp.topic.b, topic->b, 16) != 0)
            continue;
        if (n < cap)
            out[n] = g->parts[i]->tp;
        n++;
    }
    return n;
}

int16_t srv_share_delete_group(srv_share_groups *sg, kp_str group_id, int64_t now_ms)
{
    int16_t err = srv_share_check_empty(sg, group_id, now_ms);
    if (err)
        return err;
    for (sgroup **pp = &sg->groups; *pp; pp = &(*pp)->next)
        if (seq(group_id, (*pp)->id, (*pp)->idlen)) {
            sgroup *g = *pp;
            *pp = g->next;
            group_free(g);
            break;
        }
    return 0;
}

int srv_share_exists(srv_share_groups *sg, kp_str group_id)
{
    return find_group(sg, group_id) != NULL;
}

/* ---- Group configs ---------------------------------------------------------- */

static const char *const GKEY_NAMES[SRV_SGK_COUNT] = {
    [SRV_SGK_AUTO_RESET] = "share.auto.offset.reset",
    [SRV_SGK_LOCK_MS] = "share.record.lock.duration.ms",
    [SRV_SGK_SESSION_MS] = "share.session.timeout.ms",
    [SRV_SGK_HEARTBEAT_MS] = "share.heartbeat.interval.ms",
    [SRV_SGK_DELIVERY_LIMIT] = "share.delivery.count.limit",
    [SRV_SGK_MAX_LOCKS] = "share.partition.max.record.locks",
    [SRV_SGK_RENEW_ENABLE] = "share.renew.acknowledge.enable",
};

const char *srv_share_gkey_name(int k)
{
    SRV_ASSERT(k >= 0 && k < SRV_SGK_COUNT, "share group config key %d out of range", k);
    return GKEY_NAMES[k];
}

/* One field of a duration: [+-]digits, at most 18 of them. */
static int dur_num(const char *p, size_t n, size_t *i, int64_t *v, int *negp)
{
    int neg = 0;
    if (*i < n && (p[*i] == '+' || p[*i] == '-'))
        neg = p[(*i)++] == '-';
    size_t d0 = *i;
    int64_t x = 0;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9') {
        if (*i - d0 >= 18)
            return -1;
        x = x * 10 + (p[(*i)++] - '0');
    }
    if (*i == d0)
        return -1;
    *v = neg ? -x : x;
    *negp = neg;
    return 0;
}

static int lower(char c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* java.time.Duration.parse's grammar, in milliseconds (nanoseconds below a
 * millisecond dropped, as Kafka's toMillis does). Each field is bounded so
 * that the sum cannot overflow. */
static int parse_duration(const char *p, size_t n, int64_t *ms)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    if (i >= n || lower(p[i++]) != 'p')
        return -1;
    int64_t total = 0, v;
    int fields = 0, in_t = 0;
    char last = 0; /* units must come in order, each once */
    static const char order[] = "dhms";
    while (i < n) {
        if (!in_t && lower(p[i]) == 't') {
            in_t = 1;
            i++;
            if (i >= n)
                return -1; /* "T" without a time field */
            continue;
        }
        int vneg;
        if (dur_num(p, n, &i, &v, &vneg) < 0 || i >= n)
            return -1;
        int64_t frac_ms = 0;
        if (p[i] == '.' || p[i] == ',') {
            if (!in_t)
                return -1;
            size_t f0 = ++i;
            while (i < n && p[i] >= '0' && p[i] <= '9')
                if (i++ - f0 >= 9)
                    return -1;
            for (size_t k = 0; k < 3; k++)
                frac_ms = frac_ms * 10 + (f0 + k < i ? p[f0 + k] - '0' : 0);
            if (i >= n || lower(p[i]) != 's')
                return -1;
            if (vneg)
                frac_ms = -frac_ms; /* "-0.5S": the fraction takes the field's sign */
        }
        char u = (char)lower(p[i++]);
        const char *pos = strchr(order, u);
        if (!u || !pos || (u == 'd') == in_t || (last && pos <= strchr(order, last)))
            return -1;
        last = u;
        int64_t unit = u == 'd' ? 86400000 : u == 'h' ? 3600000 : u == 'm' ? 60000 : 1000;
        if (v > INT64_MAX / 4 / unit || v < -(INT64_MAX / 4 / unit))
            return -1;
        total += v * unit + frac_ms;
        fields++;
    }
    if (!fields)
        return -1;
    if (neg)
        total = -total;
    if (total < 0)
        return -1; /* Kafka: a negative duration is refused */
    *ms = total;
    return 0;
}

int srv_share_parse_reset(const char *p, size_t n, int *mode, int64_t *ms)
{
    *ms = 0;
    if (n == 8 && memcmp(p, "earliest", 8) == 0) {
        *mode = SRV_SHARE_RESET_EARLIEST;
        return 0;
    }
    if (n == 6 && memcmp(p, "latest", 6) == 0) {
        *mode = SRV_SHARE_RESET_LATEST;
        return 0;
    }
    if (n > 12 && memcmp(p, "by_duration:", 12) == 0 && parse_duration(p + 12, n - 12, ms) == 0) {
        *mode = SRV_SHARE_RESET_BY_DURATION;
        return 0;
    }
    return -1;
}

int srv_share_gconf_set_str(srv_share_gconf *g, const char *key, const char *value)
{
    for (int k = 0; k < SRV_SGK_COUNT; k++) {
        if (strcmp(key, GKEY_NAMES[k]) != 0)
            continue;
        if (k == SRV_SGK_AUTO_RESET) {
            int mode;
            int64_t ms;
            if (srv_share_parse_reset(value, strlen(value), &mode, &ms) < 0)
                return -1;
            g->val[k] = mode;
            g->reset_ms = ms;
        } else if (k == SRV_SGK_RENEW_ENABLE) {
            if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
                return -1;
            g->val[k] = value[0] == 't';
        } else {
            char *end;
            long long v = strtoll(value, &end, 10);
            if (!*value || *end || v < INT32_MIN || v > INT32_MAX)
                return -1;
            g->val[k] = v;
        }
        g->set[k] = 1;
        return 0;
    }
    return -1;
}

void srv_share_gconf_get(srv_share_groups *sg, kp_str group_id, srv_share_gconf *out)
{
    gconf *c = find_conf(sg, group_id);
    if (c)
        *out = c->c;
    else
        memset(out, 0, sizeof(*out));
}

int srv_share_gconf_put(srv_share_groups *sg, kp_str group_id, const srv_share_gconf *in)
{
    gconf *c = find_conf(sg, group_id);
    if (!c) {
        if (!(c = calloc(1, sizeof(*c))) || !(c->id = dup_str(group_id, &c->idlen))) {
            free(c);
            return -1;
        }
        c->next = sg->confs;
        sg->confs = c;
    }
    c->c = *in;
    /* In force at once: the locks and limits of what is acquired from now
     * on (records already acquired keep their deadline), the members'
     * session timeouts from their next heartbeat. */
    sgroup *g = find_group(sg, group_id);
    for (int i = 0; g && i < g->nparts; i++) {
        srv_share_part *sp = &g->parts[i]->sp;
        sp->lock_ms = (int32_t)gval(sg, group_id, SRV_SGK_LOCK_MS);
        sp->max_delivery = (int32_t)gval(sg, group_id, SRV_SGK_DELIVERY_LIMIT);
        sp->max_in_flight = (int32_t)gval(sg, group_id, SRV_SGK_MAX_LOCKS);
    }
    return 0;
}

const srv_share_tp *srv_share_assigned(srv_share_groups *sg, kp_str group_id, kp_str member_id, int *n)
{
    sgroup *g = find_group(sg, group_id);
    smember *m = g ? find_member(g, member_id, NULL) : NULL;
    *n = m ? m->nasg : -1;
    return m ? m->asg : NULL;
}

srv_share_part *srv_share_part_mut(srv_share_groups *sg, kp_str group_id, const srv_share_tp *tp)
{
    sgroup *g = find_group(sg, group_id);
    spart *p = g ? find_part(g, tp) : NULL;
    return p && p->initialized ? &p->sp : NULL;
}

int srv_share_restore(srv_share_groups *sg, kp_str group_id, const srv_share_tp *tp, int64_t start,
                      const srv_sp_run *runs, int nruns)
{
    sgroup *g = find_group(sg, group_id);
    if (!g && !(g = make_group(sg, group_id)))
        return -1;
    spart *p = get_part(sg, g, tp);
    if (!p)
        return -1;
    srv_sp_free(&p->sp);
    /* The group's configs are back already (srv_share_state_start): its
     * delivery limit decides what the restore archives. */
    srv_sp_init(&p->sp, start, (int32_t)gval(sg, group_id, SRV_SGK_LOCK_MS),
                (int32_t)gval(sg, group_id, SRV_SGK_DELIVERY_LIMIT),
                (int32_t)gval(sg, group_id, SRV_SGK_MAX_LOCKS));
    if (srv_sp_restore(&p->sp, start, runs, nruns) < 0)
        return -1;
    p->initialized = 1;
    return 0;
}

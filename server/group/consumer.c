/*
 * consumer.c — the KIP-848 consumer groups of one shard (see consumer.h).
 *
 * Owns every srv_cgroup and srv_cmember and which consumer records of
 * __consumer_offsets (ConsumerGroupMetadata, PartitionMetadata, MemberMetadata,
 * TargetAssignmentMetadata/Member, CurrentMemberAssignment) a change writes;
 * group_log.c encodes them. Must not: block, or answer a heartbeat before
 * its records are durable (Kafka answers once the records are committed).
 *
 * As in Kafka, the in-memory state moves on at once and the records describe
 * the change; a failed append is answered with the storage error and the
 * member's next full heartbeat converges again.
 */
#include "consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/random.h>
#include <time.h>

#include "assignor.h"
#include "config.h"
#include "errors.h"
#include "group_internal.h"
#include "group_log.h"
#include "kp_messages.h"
#include "logging.h"
#include "srv_assert.h"
#include "sstr.h"
#include "topic_regex.h"

/* ---- partition sets ------------------------------------------------------ */

static int tp_cmp(const srv_tp *a, const kp_uuid *t, int32_t p)
{
    int c = memcmp(a->topic.b, t->b, 16);
    if (c)
        return c;
    return a->partition < p ? -1 : a->partition > p ? 1 : 0;
}

/* Index of (t, p) or of where it would go (*found tells). */
static int tps_find(const srv_tps *s, const kp_uuid *t, int32_t p, int *found)
{
    int lo = 0, hi = s->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = tp_cmp(&s->v[mid], t, p);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

void srv_tps_free(srv_tps *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

int srv_tps_add(srv_tps *s, kp_uuid topic, int32_t partition)
{
    int found;
    int i = tps_find(s, &topic, partition, &found);
    if (found)
        return 0;
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 8;
        srv_tp *nv = realloc(s->v, (size_t)nc * sizeof(*nv));
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = nc;
    }
    memmove(&s->v[i + 1], &s->v[i], (size_t)(s->n - i) * sizeof(*s->v));
    s->v[i].topic = topic;
    s->v[i].partition = partition;
    s->n++;
    return 0;
}

int srv_tps_has(const srv_tps *s, kp_uuid topic, int32_t partition)
{
    int found;
    tps_find(s, &topic, partition, &found);
    return found;
}

int srv_tps_eq(const srv_tps *a, const srv_tps *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (tp_cmp(&a->v[i], &b->v[i].topic, b->v[i].partition) != 0)
            return 0;
    return 1;
}

static int tps_copy(srv_tps *dst, const srv_tps *src)
{
    dst->n = 0;
    if (src->n > dst->cap) {
        srv_tp *nv = realloc(dst->v, (size_t)src->n * sizeof(*nv));
        if (!nv)
            return -1;
        dst->v = nv;
        dst->cap = src->n;
    }
    if (src->n)
        memcpy(dst->v, src->v, (size_t)src->n * sizeof(*src->v));
    dst->n = src->n;
    return 0;
}

int srv_tps_groups(const srv_tps *s, srv_tpgroup *out, int32_t *parts)
{
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        parts[i] = s->v[i].partition;
        if (n == 0 || memcmp(out[n - 1].topic.b, s->v[i].topic.b, 16) != 0) {
            out[n].topic = s->v[i].topic;
            out[n].parts = &parts[i];
            out[n].n = 0;
            n++;
        }
        out[n - 1].n++;
    }
    return n;
}

/* ---- members ------------------------------------------------------------- */

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && srv_scmp(a, b) == 0);
}

static void free_subs(char **subs, int n)
{
    for (int i = 0; i < n; i++)
        srv_sfree(subs[i]);
    free(subs);
}

static void free_gprotocols(srv_gprotocol *ps, int n)
{
    for (int i = 0; ps && i < n; i++) {
        srv_sfree(ps[i].name);
        free(ps[i].meta);
    }
    free(ps);
}

static void cmember_free(srv_cmember *m)
{
    if (!m)
        return;
    free_gprotocols(m->protocols, m->nprotocols);
    srv_sfree(m->id);
    srv_sfree(m->instance_id);
    srv_sfree(m->rack_id);
    srv_sfree(m->client_id);
    srv_sfree(m->client_host);
    srv_sfree(m->assignor);
    srv_sfree(m->regex);
    free_subs(m->subs, m->nsubs);
    srv_tps_free(&m->assigned);
    srv_tps_free(&m->revoking);
    srv_tps_free(&m->target);
    free(m);
}

static srv_cmember *cmember_new(kp_str id)
{
    srv_cmember *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->id = srv_sdup(id);
    if (!m->id) {
        free(m);
        return NULL;
    }
    m->rebalance_timeout_ms = -1;
    m->session_deadline = -1;
    m->rebalance_deadline = -1;
    m->classic_deadline = -1;
    return m;
}

srv_cmember *srv_cgroup_member(const srv_cgroup *cg, kp_str id)
{
    if (id.len < 0)
        return NULL;
    for (int i = 0; i < cg->nmembers; i++)
        if (srv_seq(id, cg->members[i]->id))
            return cg->members[i];
    return NULL;
}

static srv_cmember *static_member(const srv_cgroup *cg, kp_str instance)
{
    if (instance.len < 0)
        return NULL;
    for (int i = 0; i < cg->nmembers; i++)
        if (cg->members[i]->instance_id && srv_seq(instance, cg->members[i]->instance_id))
            return cg->members[i];
    return NULL;
}

static int member_index(const srv_cgroup *cg, const srv_cmember *m)
{
    for (int i = 0; i < cg->nmembers; i++)
        if (cg->members[i] == m)
            return i;
    return -1;
}

static int add_member(srv_cgroup *cg, srv_cmember *m)
{
    if (cg->nmembers == cg->mcap) {
        int nc = cg->mcap ? cg->mcap * 2 : 8;
        srv_cmember **nm = realloc(cg->members, (size_t)nc * sizeof(*nm));
        if (!nm)
            return -1;
        cg->members = nm;
        cg->mcap = nc;
    }
    cg->members[cg->nmembers++] = m;
    return 0;
}

/* Removes and frees member idx, keeping the join order of the others. */
static void remove_member_at(srv_cgroup *cg, int idx)
{
    cmember_free(cg->members[idx]);
    memmove(&cg->members[idx], &cg->members[idx + 1],
            (size_t)(cg->nmembers - idx - 1) * sizeof(*cg->members));
    cg->nmembers--;
}

static void free_topics(srv_ctopic *t, int n)
{
    for (int i = 0; i < n; i++)
        srv_sfree(t[i].name);
    free(t);
}

static void free_regexes(srv_cregex *r, int n)
{
    for (int i = 0; i < n; i++) {
        srv_sfree(r[i].regex);
        free_subs(r[i].topics, r[i].ntopics);
    }
    free(r);
}

void srv_cgroup_free(srv_cgroup *cg)
{
    if (!cg)
        return;
    for (int i = 0; i < cg->nmembers; i++)
        cmember_free(cg->members[i]);
    free(cg->members);
    free_topics(cg->topics, cg->ntopics);
    free_regexes(cg->regexes, cg->nregexes);
    free(cg);
}

const char *srv_cgroup_state_name(const srv_cgroup *cg)
{
    if (cg->nmembers == 0)
        return "Empty";
    if (cg->epoch > cg->assignment_epoch)
        return "Assigning";
    for (int i = 0; i < cg->nmembers; i++)
        if (cg->members[i]->epoch != cg->assignment_epoch || cg->members[i]->state != SRV_CM_STABLE)
            return "Reconciling";
    return "Stable";
}

/* The epoch of the member other than self that still owns tp (assigned or
 * pending revocation), -1 when the partition is free. */
static int32_t partition_epoch(const srv_cgroup *cg, const srv_cmember *self, const srv_tp *tp)
{
    for (int i = 0; i < cg->nmembers; i++) {
        const srv_cmember *o = cg->members[i];
        if (o == self)
            continue;
        if (srv_tps_has(&o->assigned, tp->topic, tp->partition) ||
            srv_tps_has(&o->revoking, tp->topic, tp->partition))
            return o->epoch;
    }
    return -1;
}

/* ---- appends ------------------------------------------------------------- */

typedef struct write_ctx {
    srv_group *g;
    srv_chb_cb cb; /* NULL: nobody waits (timers) */
    void *ctx;
    /* A classic member's JoinGroup instead (cb NULL): answered with
     * member_id, r.member_epoch as the generation and protocol_name. */
    srv_join_cb jcb;
    char *protocol_name;
    srv_chb_result r;
    char *member_id;
    srv_tps assignment;
    int with_assignment;
    char message[1200]; /* room for a regex quoted in its error */
} write_ctx;

static void write_ctx_free(write_ctx *w)
{
    srv_sfree(w->member_id);
    srv_sfree(w->protocol_name);
    srv_tps_free(&w->assignment);
    free(w);
}

static void answer_join(write_ctx *w)
{
    srv_join_result r = {0};
    r.error = w->r.error;
    r.member_id = w->member_id ? srv_s(w->member_id) : kp_str_c("");
    r.leader = kp_str_c("");
    r.protocol_type = r.protocol_name = KP_STR_NULL;
    r.generation = -1;
    if (!r.error) {
        r.generation = w->r.member_epoch;
        r.protocol_type = kp_str_c("consumer");
        r.protocol_name = srv_s(w->protocol_name);
    }
    w->jcb(w->ctx, &r);
}

static void answer(write_ctx *w)
{
    if (w->jcb) {
        answer_join(w);
        return;
    }
    if (!w->cb)
        return;
    if (w->r.error) {
        w->r.member_id = KP_STR_NULL;
        w->r.member_epoch = 0;
        w->r.heartbeat_interval_ms = 0;
        w->r.assignment = NULL;
    } else {
        w->r.member_id = w->member_id ? srv_s(w->member_id) : kp_str_c("");
        w->r.assignment = w->with_assignment ? &w->assignment : NULL;
    }
    w->cb(w->ctx, &w->r);
}

static void written(void *p, int16_t err)
{
    write_ctx *w = p;
    srv_group *g = w->g;
    if (err) {
        srv_warn("group %.*s: cannot write its consumer group records: error %d", SRV_SP(g->id), err);
        if (!w->r.error) {
            w->r.error = srv_glog_write_error(err);
            w->r.message = NULL;
        }
    }
    answer(w);
    write_ctx_free(w);
    srv_groupi_rearm(g);
    srv_groupi_unref(g);
}

/* Appends bb (when it holds records) and answers w once durable; answers at
 * once when there is nothing to write. Consumes bb and w. */
static void commit(srv_group *g, kp_batch_builder *bb, int nrec, int rc, write_ctx *w)
{
    if (rc == 0 && nrec == 0) {
        kp_batch_builder_free(bb);
        answer(w);
        write_ctx_free(w);
        return;
    }
    w->g = g;
    if ((rc = srv_groupi_append(g, bb, rc, written, w)) != 0) {
        srv_error("group %.*s: cannot encode its consumer group records (%d)", SRV_SP(g->id), rc);
        if (!w->r.error)
            w->r.error = KP_ERR_UNKNOWN_SERVER_ERROR;
        answer(w);
        write_ctx_free(w);
    }
}

/* ---- subscriptions and the target assignment ---------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return srv_scmp(*(char *const *)a, *(char *const *)b);
}

static const srv_cregex *find_regex(const srv_cgroup *cg, const char *regex)
{
    for (int i = 0; regex && i < cg->nregexes; i++)
        if (srv_scmp(cg->regexes[i].regex, regex) == 0)
            return &cg->regexes[i];
    return NULL;
}

/* The topics m subscribes to: its names and what its regex resolved to
 * (ConsumerGroup.computeSubscribedTopicNames), sorted, without duplicates.
 * The strings are borrowed; free only the array. NULL: out of memory. */
static char **member_topics(const srv_cgroup *cg, const srv_cmember *m, int *n)
{
    const srv_cregex *r = find_regex(cg, m->regex);
    int nr = r ? r->ntopics : 0;
    char **v = malloc(((size_t)m->nsubs + (size_t)nr + 1) * sizeof(*v));
    if (!v)
        return NULL;
    int k = 0;
    for (int i = 0; i < m->nsubs; i++)
        v[k++] = m->subs[i];
    for (int i = 0; i < nr; i++)
        v[k++] = r->topics[i];
    qsort(v, (size_t)k, sizeof(*v), cmp_str);
    int u = 0;
    for (int i = 0; i < k; i++)
        if (u == 0 || srv_scmp(v[i], v[u - 1]) != 0)
            v[u++] = v[i];
    *n = u;
    return v;
}

/* The union of the subscriptions, resolved against the metadata: the
 * subscription metadata Kafka keeps per group. */
static int compute_topics(srv_groups *gs, const srv_cgroup *cg, srv_ctopic **out, int *nout)
{
    int total = 0;
    for (int i = 0; i < cg->nmembers; i++) {
        const srv_cregex *r = find_regex(cg, cg->members[i]->regex);
        total += cg->members[i]->nsubs + (r ? r->ntopics : 0);
    }
    char **names = malloc(((size_t)total + 1) * sizeof(*names));
    srv_ctopic *ts = calloc((size_t)total + 1, sizeof(*ts));
    if (!names || !ts) {
        free(names);
        free(ts);
        return -1;
    }
    int n = 0, k = 0;
    /* Through the members: a regex only a fenced member used no longer counts. */
    for (int i = 0; i < cg->nmembers; i++) {
        const srv_cregex *r = find_regex(cg, cg->members[i]->regex);
        for (int j = 0; j < cg->members[i]->nsubs; j++)
            names[n++] = cg->members[i]->subs[j];
        for (int j = 0; r && j < r->ntopics; j++)
            names[n++] = r->topics[j];
    }
    qsort(names, (size_t)n, sizeof(*names), cmp_str);
    const srv_groups_env *env = srv_groupi_env(gs);
    for (int i = 0; i < n; i++) {
        if (i > 0 && srv_scmp(names[i], names[i - 1]) == 0)
            continue;
        kp_uuid id;
        int32_t np;
        if (!env->topic || !env->topic(env->arg, srv_s(names[i]), &id, &np))
            continue;
        ts[k].name = srv_sdupc(names[i]);
        if (!ts[k].name) {
            free(names);
            free_topics(ts, k);
            return -1;
        }
        ts[k].id = id;
        ts[k].nparts = np;
        k++;
    }
    free(names);
    *out = ts;
    *nout = k;
    return 0;
}

static int topics_eq(const srv_ctopic *a, int na, const srv_ctopic *b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (srv_scmp(a[i].name, b[i].name) != 0 || memcmp(a[i].id.b, b[i].id.b, 16) != 0 ||
            a[i].nparts != b[i].nparts)
            return 0;
    return 1;
}

/* Recomputes the subscription metadata; 1 when it changed (a record added). */
static int refresh_topics(srv_group *g, kp_batch_builder *bb, int64_t ts, int *nrec, int *rc)
{
    srv_cgroup *cg = g->cg;
    srv_ctopic *nt;
    int n;
    if (compute_topics(g->gs, cg, &nt, &n)) {
        *rc = KP_E_NOMEM;
        return 0;
    }
    if (topics_eq(nt, n, cg->topics, cg->ntopics)) {
        free_topics(nt, n);
        return 0;
    }
    free_topics(cg->topics, cg->ntopics);
    cg->topics = nt;
    cg->ntopics = n;
    if (*rc == 0)
        *rc = srv_glog_add_cg_topics(bb, ts, g->id, cg);
    (*nrec)++;
    return 1;
}

static const char *const ASSIGNOR_NAMES[SRV_ASSIGNORS_MAX] = {"uniform", "range"};

/* group.consumer.assignors, in order (the first is the default). */
static int assignors_of(const srv_groups *gs, int8_t out[SRV_ASSIGNORS_MAX])
{
    const srv_groups_config *c = srv_groupi_cfg(gs);
    if (c->nassignors <= 0) {
        out[0] = SRV_ASSIGNOR_UNIFORM;
        out[1] = SRV_ASSIGNOR_RANGE;
        return 2;
    }
    int n = c->nassignors < SRV_ASSIGNORS_MAX ? c->nassignors : SRV_ASSIGNORS_MAX;
    memcpy(out, c->assignors, (size_t)n);
    return n;
}

static int assignor_enabled(const srv_groups *gs, kp_str name)
{
    int8_t a[SRV_ASSIGNORS_MAX];
    int n = assignors_of(gs, a);
    for (int i = 0; i < n; i++)
        if (kp_str_eq(name, ASSIGNOR_NAMES[a[i]]))
            return 1;
    return 0;
}

static srv_cgroup *cgroup_new(const srv_groups *gs)
{
    srv_cgroup *cg = calloc(1, sizeof(*cg));
    int8_t a[SRV_ASSIGNORS_MAX];
    if (cg) {
        assignors_of(gs, a);
        cg->default_assignor = a[0];
    }
    return cg;
}

static int32_t max_size(const srv_groups *gs)
{
    int32_t v = srv_groupi_cfg(gs)->consumer_max_size;
    return v > 0 ? v : INT32_MAX;
}

/* ConsumerGroup.computePreferredServerAssignor: the assignor most members
 * asked for, else the default. */
kp_str srv_cgroup_assignor(const srv_cgroup *cg)
{
    const char *best = NULL;
    int best_n = 0;
    for (int i = 0; i < cg->nmembers; i++) {
        const char *a = cg->members[i]->assignor;
        if (!a)
            continue;
        int c = 0;
        for (int j = 0; j < cg->nmembers; j++)
            if (str_eq(a, cg->members[j]->assignor))
                c++;
        if (c > best_n) {
            best = a;
            best_n = c;
        }
    }
    if (best)
        return srv_s(best);
    SRV_ASSERT(cg->default_assignor >= 0 && cg->default_assignor < SRV_ASSIGNORS_MAX,
               "consumer group default assignor index %d out of range", cg->default_assignor);
    return kp_str_c(ASSIGNOR_NAMES[cg->default_assignor]);
}

/* Computes the target assignment of the current epoch and records what
 * changed (TargetAssignmentBuilder). */
static void update_target(srv_group *g, kp_batch_builder *bb, int64_t ts, int *nrec, int *rc)
{
    srv_cgroup *cg = g->cg;
    srv_asg_member *am = calloc((size_t)cg->nmembers + 1, sizeof(*am));
    if (!am) {
        *rc = KP_E_NOMEM;
        return;
    }
    char ***eff = calloc((size_t)cg->nmembers + 1, sizeof(*eff));
    int oom = eff == NULL;
    for (int i = 0; !oom && i < cg->nmembers; i++) {
        am[i].id = cg->members[i]->id;
        eff[i] = member_topics(cg, cg->members[i], &am[i].nsubs);
        am[i].subs = eff[i];
        am[i].prev = &cg->members[i]->target;
        oom = eff[i] == NULL;
    }
    kp_str name = srv_cgroup_assignor(cg);
    if (oom || srv_assign(name, am, cg->nmembers, cg->topics, cg->ntopics) != 0) {
        *rc = KP_E_NOMEM;
    } else {
        for (int i = 0; i < cg->nmembers; i++) {
            srv_cmember *m = cg->members[i];
            if (srv_tps_eq(&am[i].out, &m->target))
                continue;
            srv_tps_free(&m->target);
            m->target = am[i].out;
            am[i].out = (srv_tps){0};
            if (*rc == 0)
                *rc = srv_glog_add_cg_target(bb, ts, g->id, m->id, &m->target);
            (*nrec)++;
        }
        cg->assignment_epoch = cg->epoch;
        if (*rc == 0)
            *rc = srv_glog_add_cg_target_epoch(bb, ts, g->id, &cg->assignment_epoch);
        (*nrec)++;
        srv_info("group %.*s: target assignment of epoch %d computed by the %.*s assignor", SRV_SP(g->id),
                 cg->epoch, name.len, name.p);
    }
    for (int i = 0; i < cg->nmembers; i++) {
        srv_tps_free(&am[i].out);
        if (eff)
            free(eff[i]);
    }
    free(eff);
    free(am);
}

/* ---- reconciliation (CurrentAssignmentBuilder) -------------------------- */

/* Whether the member still reports owning any of `pending`; a member that
 * did not send its owned partitions is assumed to still own them. */
static int owns_any(const srv_tps *owned, const srv_tps *pending)
{
    if (!owned)
        return 1;
    for (int i = 0; i < owned->n; i++)
        if (srv_tps_has(pending, owned->v[i].topic, owned->v[i].partition))
            return 1;
    return 0;
}

/* Moves m towards the target assignment of epoch target_epoch. Returns 0 or
 * -1 (memory: m unchanged). */
static int next_assignment(const srv_cgroup *cg, srv_cmember *m, int32_t epoch, const srv_tps *owned)
{
    srv_tps keep = {0}, revoke = {0}, give = {0};
    int unreleased = 0, rc = 0;
    for (int i = 0; i < m->assigned.n && rc == 0; i++) {
        const srv_tp *tp = &m->assigned.v[i];
        rc = srv_tps_add(srv_tps_has(&m->target, tp->topic, tp->partition) ? &keep : &revoke, tp->topic,
                         tp->partition);
    }
    for (int i = 0; i < m->target.n && rc == 0; i++) {
        const srv_tp *tp = &m->target.v[i];
        if (srv_tps_has(&keep, tp->topic, tp->partition))
            continue;
        if (partition_epoch(cg, m, tp) != -1)
            unreleased = 1;
        else
            rc = srv_tps_add(&give, tp->topic, tp->partition);
    }
    if (rc) {
        srv_tps_free(&keep);
        srv_tps_free(&revoke);
        srv_tps_free(&give);
        return -1;
    }
    int32_t old = m->epoch;
    if (revoke.n > 0 && owns_any(owned, &revoke)) {
        /* Revoke first: the member keeps its epoch until it acknowledges. */
        m->state = SRV_CM_UNREVOKED;
        m->prev_epoch = old;
        m->epoch = epoch;
        srv_tps_free(&m->assigned);
        srv_tps_free(&m->revoking);
        m->assigned = keep;
        m->revoking = revoke;
        srv_tps_free(&give);
        return 0;
    }
    for (int i = 0; i < give.n && rc == 0; i++)
        rc = srv_tps_add(&keep, give.v[i].topic, give.v[i].partition);
    if (rc) {
        srv_tps_free(&keep);
        srv_tps_free(&revoke);
        srv_tps_free(&give);
        return -1;
    }
    m->state = unreleased ? SRV_CM_UNRELEASED : SRV_CM_STABLE;
    m->prev_epoch = old;
    m->epoch = cg->assignment_epoch;
    srv_tps_free(&m->assigned);
    srv_tps_free(&m->revoking);
    m->assigned = keep;
    srv_tps_free(&revoke);
    srv_tps_free(&give);
    return 0;
}

/* maybeReconcile: returns 1 when the member's current assignment changed. */
static int reconcile(const srv_cgroup *cg, srv_cmember *m, const srv_tps *owned)
{
    if (m->epoch == cg->assignment_epoch && m->state == SRV_CM_STABLE)
        return 0;
    int32_t e = m->epoch, pe = m->prev_epoch;
    int8_t st = m->state;
    srv_tps a = {0}, r = {0};
    if (tps_copy(&a, &m->assigned) || tps_copy(&r, &m->revoking)) {
        srv_tps_free(&a);
        srv_tps_free(&r);
        return 0;
    }
    int rc = 0;
    switch (m->state) {
    case SRV_CM_STABLE:
        rc = next_assignment(cg, m, m->epoch, owned);
        break;
    case SRV_CM_UNREVOKED:
        if (!owns_any(owned, &m->revoking))
            rc = next_assignment(cg, m, m->epoch + 1, owned);
        break;
    default:
        rc = next_assignment(cg, m, m->epoch, owned);
        break;
    }
    int changed = rc == 0 && (e != m->epoch || pe != m->prev_epoch || st != m->state ||
                              !srv_tps_eq(&a, &m->assigned) || !srv_tps_eq(&r, &m->revoking));
    srv_tps_free(&a);
    srv_tps_free(&r);
    return changed;
}

/* ---- regex subscriptions ------------------------------------------------ */

static int names_eq(char *const *a, int na, char *const *b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (srv_scmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

/* The topics of the coordinator's metadata that regex matches as a whole
 * and the heartbeat's principal may DESCRIBE (refreshRegularExpressions and
 * filterTopicDescribeAuthorizedTopics). 0 or -1 (memory). */
static int resolve_one(srv_groups *gs, const srv_chb_req *rq, srv_cregex *out, const char *regex)
{
    const srv_groups_env *env = srv_groupi_env(gs);
    const char *why = NULL;
    out->regex = srv_sdupc(regex);
    if (!out->regex)
        return -1;
    srv_topic_regex *re = srv_topic_regex_compile(srv_s(regex), &why);
    if (!re) {
        /* Refused when it arrived; only a record from elsewhere can hold one. */
        srv_warn("regex subscription `%.*s` cannot be used (%s): it matches no topic", SRV_SP(regex), why);
        return 0;
    }
    int cap = 0, rc = 0, limited = 0;
    kp_str name;
    for (int i = 0; rc == 0 && env->topic_at && env->topic_at(env->arg, i, &name); i++) {
        int m = srv_topic_regex_match(re, name);
        if (m < 0)
            limited++;
        if (m <= 0)
            continue;
        if (env->may_describe && !env->may_describe(env->arg, rq->principal, rq->host, name))
            continue;
        if (out->ntopics == cap) {
            int nc = cap ? cap * 2 : 8;
            char **nv = realloc(out->topics, (size_t)nc * sizeof(*nv));
            if (!nv) {
                rc = -1;
                break;
            }
            out->topics = nv;
            cap = nc;
        }
        if (!(out->topics[out->ntopics] = srv_sdup(name)))
            rc = -1;
        else
            out->ntopics++;
    }
    srv_topic_regex_free(re);
    if (limited)
        srv_warn(
            "regex subscription `%.*s`: %d topic names exhausted the match budget and count as not matching",
            SRV_SP(regex), limited);
    if (out->ntopics > 1)
        qsort(out->topics, (size_t)out->ntopics, sizeof(*out->topics), cmp_str);
    return rc;
}

/* Resolves the members' regexes again when the metadata changed since the
 * last time or a regex is new, and drops those no member uses any more.
 * Returns 1 when the topics of a regex in use changed (a new subscription:
 * the group epoch is bumped). */
static int resolve_regexes(srv_group *g, const srv_chb_req *rq, kp_batch_builder *bb, int64_t ts, int *nrec,
                           int *rcp)
{
    srv_cgroup *cg = g->cg;
    const srv_groups_env *env = srv_groupi_env(g->gs);
    uint64_t version = env->meta_version ? env->meta_version(env->arg) : 0;
    int nuse = 0, fresh = version == cg->regex_version && cg->regex_version != 0;
    for (int i = 0; i < cg->nmembers; i++) {
        const char *r = cg->members[i]->regex;
        if (!r)
            continue;
        nuse++;
        if (!find_regex(cg, r))
            fresh = 0;
    }
    /* An entry no member uses any more goes. */
    for (int j = 0; fresh && j < cg->nregexes; j++) {
        int used = 0;
        for (int i = 0; !used && i < cg->nmembers; i++)
            used = cg->members[i]->regex && srv_scmp(cg->members[i]->regex, cg->regexes[j].regex) == 0;
        fresh = used;
    }
    if (fresh || (nuse == 0 && cg->nregexes == 0))
        return 0;
    srv_cregex *nr = calloc((size_t)nuse + 1, sizeof(*nr));
    if (!nr)
        return 0; /* keep the old resolution; the next heartbeat tries again */
    int k = 0, rc = 0;
    for (int i = 0; rc == 0 && i < cg->nmembers; i++) {
        const char *r = cg->members[i]->regex;
        int seen = 0;
        for (int j = 0; r && j < k; j++)
            seen |= srv_scmp(nr[j].regex, r) == 0;
        if (!r || seen)
            continue;
        rc = resolve_one(g->gs, rq, &nr[k], r);
        k++;
    }
    if (rc) {
        free_regexes(nr, k);
        return 0;
    }
    int changed = 0;
    for (int j = 0; j < k; j++) {
        const srv_cregex *old = find_regex(cg, nr[j].regex);
        if (!old || !names_eq(old->topics, old->ntopics, nr[j].topics, nr[j].ntopics)) {
            changed = 1;
            srv_info("group %.*s: regex `%.*s` resolves to %d topics", SRV_SP(g->id), SRV_SP(nr[j].regex),
                     nr[j].ntopics);
            /* Kafka 4.x keeps each resolution as a record of its own. */
            if (*rcp == 0)
                *rcp = srv_glog_add_cg_regex(bb, ts, g->id, nr[j].regex, &nr[j], (int64_t)version);
            (*nrec)++;
        }
    }
    /* A regex no member uses any more: its record goes too. */
    for (int j = 0; j < cg->nregexes; j++) {
        int kept = 0;
        for (int i = 0; i < k && !kept; i++)
            kept = srv_scmp(nr[i].regex, cg->regexes[j].regex) == 0;
        if (kept)
            continue;
        if (*rcp == 0)
            *rcp = srv_glog_add_cg_regex(bb, ts, g->id, cg->regexes[j].regex, NULL, 0);
        (*nrec)++;
    }
    free_regexes(cg->regexes, cg->nregexes);
    cg->regexes = nr;
    cg->nregexes = k;
    cg->regex_version = version ? version : 1;
    return changed;
}

/* ---- fencing ------------------------------------------------------------- */

/* Removes member idx with its records, refreshes the subscription metadata
 * and bumps the group epoch (consumerGroupFenceMember). The new target is
 * computed by the next heartbeat, as in Kafka. */
static void fence(srv_group *g, int idx, kp_batch_builder *bb, int64_t ts, int *nrec, int *rc)
{
    srv_cgroup *cg = g->cg;
    const char *id = cg->members[idx]->id;
    const char *regex = cg->members[idx]->regex;
    int used = regex == NULL;
    for (int i = 0; !used && i < cg->nmembers; i++)
        used = i != idx && cg->members[i]->regex && srv_scmp(cg->members[i]->regex, regex) == 0;
    for (int j = 0; !used && j < cg->nregexes; j++) {
        if (srv_scmp(cg->regexes[j].regex, regex) != 0)
            continue;
        /* Its regex leaves with it: the resolution's record is tombstoned. */
        if (*rc == 0)
            *rc = srv_glog_add_cg_regex(bb, ts, g->id, regex, NULL, 0);
        (*nrec)++;
        srv_sfree(cg->regexes[j].regex);
        free_subs(cg->regexes[j].topics, cg->regexes[j].ntopics);
        cg->regexes[j] = cg->regexes[--cg->nregexes];
        break;
    }
    if (*rc == 0)
        *rc = srv_glog_add_cg_current(bb, ts, g->id, id, NULL);
    if (*rc == 0)
        *rc = srv_glog_add_cg_target(bb, ts, g->id, id, NULL);
    if (*rc == 0)
        *rc = srv_glog_add_cg_member(bb, ts, g->id, id, NULL);
    *nrec += 3;
    remove_member_at(cg, idx);
    refresh_topics(g, bb, ts, nrec, rc);
    cg->epoch++;
    if (*rc == 0)
        *rc = srv_glog_add_cg_epoch(bb, ts, g->id, &cg->epoch);
    (*nrec)++;
    srv_groupi_sync_consumer(g);
}

/* ---- the heartbeat -------------------------------------------------------- */

static void new_member_id(char *out, size_t cap)
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        /* No entropy source: time and address still make a unique id. */
        uint64_t x = (uint64_t)(uintptr_t)out ^ (uint64_t)time(NULL);
        memcpy(b, &x, 8);
        memcpy(b + 8, &x, 8);
    }
    /* A UUID rendered as Kafka's Uuid.toString (base64url, no padding). */
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < 16 && o + 1 < cap; i++) {
        acc = (acc << 8) | b[i];
        bits += 8;
        while (bits >= 6 && o + 1 < cap) {
            out[o++] = al[(acc >> (bits - 6)) & 63];
            bits -= 6;
        }
    }
    if (bits > 0 && o + 1 < cap)
        out[o++] = al[(acc << (6 - bits)) & 63];
    out[o] = 0;
}

static int16_t fail(write_ctx *w, int16_t err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int16_t fail(write_ctx *w, int16_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->message, sizeof(w->message), fmt, ap);
    va_end(ap);
    w->r.error = err;
    w->r.message = w->message;
    return err;
}

/* throwIfConsumerGroupHeartbeatRequestIsInvalid and the assignor check. */
static int16_t validate(const srv_groups *gs, const srv_chb_req *rq, write_ctx *w)
{
    if (rq->group_id.len <= 0)
        return fail(w, KP_ERR_INVALID_REQUEST, "GroupId can't be empty.");
    if (rq->instance_id.len == 0)
        return fail(w, KP_ERR_INVALID_REQUEST, "InstanceId can't be empty.");
    if (rq->rack_id.len == 0)
        return fail(w, KP_ERR_INVALID_REQUEST, "RackId can't be empty.");
    if (rq->member_epoch > 0 || rq->member_epoch == SRV_CEPOCH_LEAVE) {
        if (rq->member_id.len <= 0)
            return fail(w, KP_ERR_INVALID_REQUEST, "MemberId can't be empty.");
    } else if (rq->member_epoch == 0) {
        if (rq->rebalance_timeout_ms == -1)
            return fail(w, KP_ERR_INVALID_REQUEST, "RebalanceTimeoutMs must be provided in first request.");
        if (rq->nowned != 0)
            return fail(w, KP_ERR_INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.");
        /* Names, a regex or both; empty ones join subscribed to nothing. */
        if (rq->nsubs < 0 && rq->regex.len < 0)
            return fail(
                w, KP_ERR_INVALID_REQUEST,
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.");
    } else if (rq->member_epoch == SRV_CEPOCH_LEAVE_STATIC) {
        if (rq->member_id.len <= 0)
            return fail(w, KP_ERR_INVALID_REQUEST, "MemberId can't be empty.");
        if (rq->instance_id.len < 0)
            return fail(w, KP_ERR_INVALID_REQUEST, "InstanceId can't be null.");
    } else {
        return fail(w, KP_ERR_INVALID_REQUEST, "MemberEpoch is invalid.");
    }
    if (rq->nsubs > SRV_CGROUP_MAX_SUBSCRIPTIONS)
        return fail(w, KP_ERR_INVALID_REQUEST, "Too many subscribed topics.");
    if (rq->assignor.len >= 0 && !assignor_enabled(gs, rq->assignor)) {
        int8_t a[SRV_ASSIGNORS_MAX];
        int n = assignors_of(gs, a);
        return fail(w, KP_ERR_UNSUPPORTED_ASSIGNOR,
                    "ServerAssignor %.*s is not supported. Supported assignors: %s%s%s.",
                    rq->assignor.len > 64 ? 64 : rq->assignor.len, rq->assignor.p, ASSIGNOR_NAMES[a[0]],
                    n > 1 ? ", " : "", n > 1 ? ASSIGNOR_NAMES[a[1]] : "");
    }
    for (int i = 0; i < rq->nsubs; i++)
        if (rq->subs[i].len < 0)
            return fail(w, KP_ERR_INVALID_REQUEST, "SubscribedTopicNames can't contain null.");
    /* An empty regex is no regex subscription (librdkafka sends "" with topic names). */
    if (rq->regex.len > 0) {
        const char *why = srv_topic_regex_check(rq->regex);
        if (why)
            return fail(w, KP_ERR_INVALID_REGULAR_EXPRESSION,
                        "SubscribedTopicRegex `%.*s` is not a valid regular expression: %s.",
                        rq->regex.len > 1024 ? 1024 : rq->regex.len, rq->regex.p, why);
    }
    return KP_ERR_NONE;
}

/* throwIfMemberEpochIsInvalid: a member may come back with its previous
 * epoch (the answer with the new one was lost) if it owns no more than it
 * was given. */
static int16_t check_epoch(const srv_cmember *m, int32_t epoch, const srv_tps *owned, write_ctx *w)
{
    if (epoch > m->epoch)
        return fail(w, KP_ERR_FENCED_MEMBER_EPOCH,
                    "The consumer group member has a greater member epoch (%d) than the one known by the "
                    "group coordinator (%d). The member must abandon all its partitions and rejoin.",
                    epoch, m->epoch);
    if (epoch < m->epoch) {
        int subset = owned != NULL;
        for (int i = 0; subset && i < owned->n; i++)
            if (!srv_tps_has(&m->assigned, owned->v[i].topic, owned->v[i].partition))
                subset = 0;
        if (epoch != m->prev_epoch || !subset)
            return fail(w, KP_ERR_FENCED_MEMBER_EPOCH,
                        "The consumer group member has a smaller member epoch (%d) than the one known by the "
                        "group coordinator (%d). The member must abandon all its partitions and rejoin.",
                        epoch, m->epoch);
    }
    return KP_ERR_NONE;
}

static int set_str(char **dst, kp_str v)
{
    if (v.len < 0) {
        int changed = *dst != NULL;
        srv_sfree(*dst);
        *dst = NULL;
        return changed;
    }
    if (*dst && srv_seq(v, *dst))
        return 0;
    char *c = srv_sdup(v);
    if (!c)
        return 0; /* out of memory: keep the old value */
    srv_sfree(*dst);
    *dst = c;
    return 1;
}

/* Replaces the member's subscription with a sorted, deduplicated copy;
 * returns 1 when it changed. */
static int set_subs(srv_cmember *m, const kp_str *subs, int n)
{
    char **c = calloc((size_t)n + 1, sizeof(*c));
    if (!c)
        return 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!(c[k] = srv_sdup(subs[i]))) {
            free_subs(c, k);
            return 0;
        }
        k++;
    }
    qsort(c, (size_t)k, sizeof(*c), cmp_str);
    int u = 0;
    for (int i = 0; i < k; i++) {
        if (u > 0 && srv_scmp(c[i], c[u - 1]) == 0)
            srv_sfree(c[i]);
        else
            c[u++] = c[i];
    }
    int same = u == m->nsubs;
    for (int i = 0; same && i < u; i++)
        same = srv_scmp(c[i], m->subs[i]) == 0;
    if (same) {
        free_subs(c, u);
        return 0;
    }
    free_subs(m->subs, m->nsubs);
    m->subs = c;
    m->nsubs = u;
    return 1;
}

static int32_t session_ms(const srv_groups *gs)
{
    const srv_groups_config *c = srv_groupi_cfg(gs);
    return c->consumer_session_timeout_ms > 0 ? c->consumer_session_timeout_ms
                                              : SRV_CGROUP_SESSION_TIMEOUT_MS;
}

static int32_t interval_ms(const srv_groups *gs)
{
    const srv_groups_config *c = srv_groupi_cfg(gs);
    return c->consumer_heartbeat_interval_ms > 0 ? c->consumer_heartbeat_interval_ms
                                                 : SRV_CGROUP_HEARTBEAT_INTERVAL_MS;
}

/* ---- online migration (KIP-848 upgrade and downgrade) --------------------- */

int srv_cmember_is_classic(const srv_cmember *m)
{
    return m->protocols != NULL;
}

static int upgrade_enabled(const srv_groups *gs)
{
    int p = srv_groupi_cfg(gs)->migration_policy;
    return p == SRV_GMIG_BIDIRECTIONAL || p == SRV_GMIG_UPGRADE;
}

static int downgrade_enabled(const srv_groups *gs)
{
    int p = srv_groupi_cfg(gs)->migration_policy;
    return p == SRV_GMIG_BIDIRECTIONAL || p == SRV_GMIG_DOWNGRADE;
}

/* Deep copy of n protocols (name, metadata); 0 or -1 (memory). */
static int copy_gprotocols(const srv_gprotocol *src, int n, srv_gprotocol **out)
{
    srv_gprotocol *ps = calloc((size_t)n + 1, sizeof(*ps));
    if (!ps)
        return -1;
    for (int i = 0; i < n; i++) {
        ps[i].name = srv_sdupc(src[i].name);
        ps[i].meta = malloc(src[i].len > 0 ? (size_t)src[i].len : 1);
        ps[i].len = src[i].len > 0 ? src[i].len : 0;
        if (!ps[i].name || !ps[i].meta) {
            free_gprotocols(ps, i + 1);
            return -1;
        }
        if (ps[i].len)
            memcpy(ps[i].meta, src[i].meta, (size_t)ps[i].len);
    }
    *out = ps;
    return 0;
}

/* The member's protocols become the JoinGroup's; 1 when they changed. */
static int set_join_protocols(srv_cmember *m, const srv_join_req *rq)
{
    int same = m->protocols && m->nprotocols == rq->nprotocols;
    for (int i = 0; same && i < rq->nprotocols; i++) {
        int32_t ml = rq->protocols[i].metadata.len > 0 ? rq->protocols[i].metadata.len : 0;
        same = srv_seq(rq->protocols[i].name, m->protocols[i].name) && ml == m->protocols[i].len &&
               (ml == 0 || memcmp(rq->protocols[i].metadata.p, m->protocols[i].meta, (size_t)ml) == 0);
    }
    if (same)
        return 0;
    srv_gprotocol *ps = calloc((size_t)rq->nprotocols + 1, sizeof(*ps));
    if (!ps)
        return 0; /* out of memory: keep the old ones */
    for (int i = 0; i < rq->nprotocols; i++) {
        int32_t ml = rq->protocols[i].metadata.len > 0 ? rq->protocols[i].metadata.len : 0;
        ps[i].name = srv_sdup(rq->protocols[i].name.len >= 0 ? rq->protocols[i].name : kp_str_c(""));
        ps[i].meta = malloc(ml ? (size_t)ml : 1);
        ps[i].len = ml;
        if (!ps[i].name || !ps[i].meta) {
            free_gprotocols(ps, i + 1);
            return 0;
        }
        if (ml)
            memcpy(ps[i].meta, rq->protocols[i].metadata.p, (size_t)ml);
    }
    free_gprotocols(m->protocols, m->nprotocols);
    m->protocols = ps;
    m->nprotocols = rq->nprotocols;
    return 1;
}

/* The ConsumerProtocolSubscription of classic metadata (newer versions are
 * read as the newest we know, as Kafka does). 0, or -1 when malformed. */
static int decode_subscription(kp_bytes md, kp_arena *a, kp_consumer_protocol_subscription *sub)
{
    kp_reader r;
    int16_t ver;
    kp_consumer_protocol_subscription_init(sub);
    kp_reader_init(&r, md.p, md.len > 0 ? (size_t)md.len : 0);
    if (kp_read_i16(&r, &ver) || ver < 0)
        return -1;
    if (ver > 3)
        ver = 3;
    if (kp_consumer_protocol_subscription_decode(&r, a, ver, sub))
        return -1;
    for (int32_t i = 0; i < sub->topics_count; i++)
        if (sub->topics[i].len < 0)
            return -1;
    return 0;
}

/* The version of the embedded protocol of the member's first protocol: its
 * assignments are answered in it (prepareAssignment). */
static int16_t protocol_version(const srv_cmember *m)
{
    kp_reader r;
    int16_t ver = 0;
    if (m->nprotocols <= 0)
        return 0;
    kp_reader_init(&r, m->protocols[0].meta, (size_t)m->protocols[0].len);
    if (kp_read_i16(&r, &ver) || ver < 0)
        return 0;
    return ver > 3 ? 3 : ver;
}

static const srv_ctopic *topic_by_id(const srv_cgroup *cg, const kp_uuid *id)
{
    for (int i = 0; i < cg->ntopics; i++)
        if (memcmp(cg->topics[i].id.b, id->b, 16) == 0)
            return &cg->topics[i];
    return NULL;
}

/* Partitions named by topic (a classic member's assignment or owned
 * partitions) as a set of ids; topics or partitions that do not exist are
 * left out. 0 or -1 (memory). */
static int tps_from_names(srv_groups *gs, srv_tps *out, const kp_str *topics, int32_t *const *parts,
                          const int32_t *counts, int32_t n)
{
    const srv_groups_env *env = srv_groupi_env(gs);
    for (int32_t i = 0; i < n; i++) {
        kp_uuid id;
        int32_t np;
        if (topics[i].len < 0 || !env->topic || !env->topic(env->arg, topics[i], &id, &np))
            continue;
        for (int32_t j = 0; j < counts[i]; j++)
            if (parts[i][j] >= 0 && parts[i][j] < np && srv_tps_add(out, id, parts[i][j]))
                return -1;
    }
    return 0;
}

/* The ConsumerProtocolAssignment bytes of set for classic member m (its
 * SyncGroup answer, or its assignment in a GroupMetadata record), in w.
 * 0 or an encoding error. */
static int assignment_bytes(const srv_cgroup *cg, const srv_cmember *m, const srv_tps *set, kp_writer *w)
{
    int16_t ver = protocol_version(m);
    kp_writer_init(w, 64);
    srv_tpgroup *runs = malloc(((size_t)set->n + 1) * sizeof(*runs));
    int32_t *parts = malloc(((size_t)set->n + 1) * sizeof(*parts));
    kp_consumer_protocol_assignment_topic_partition *tp = calloc((size_t)set->n + 1, sizeof(*tp));
    int rc = runs && parts && tp ? 0 : KP_E_NOMEM;
    if (rc == 0) {
        int nr = srv_tps_groups(set, runs, parts), k = 0;
        for (int i = 0; i < nr; i++) {
            const srv_ctopic *t = topic_by_id(cg, &runs[i].topic);
            if (!t)
                continue; /* deleted since: nothing to consume */
            kp_consumer_protocol_assignment_topic_partition_init(&tp[k]);
            tp[k].topic = srv_s(t->name);
            tp[k].partitions = (int32_t *)runs[i].parts;
            tp[k].partitions_count = runs[i].n;
            k++;
        }
        kp_consumer_protocol_assignment a;
        memset(&a, 0, sizeof(a));
        a.assigned_partitions = tp;
        a.assigned_partitions_count = k;
        a.user_data = KP_BYTES_NULL;
        kp_write_i16(w, ver);
        rc = kp_consumer_protocol_assignment_encode(w, ver, &a);
        if (rc == 0)
            rc = w->err;
    }
    free(runs);
    free(parts);
    free(tp);
    return rc;
}

/* ConsumerGroup.fromClassicGroup and its records (convertToConsumerGroup):
 * the classic members keep their assignment, at an epoch equal to the
 * generation; the group epoch and the target assignment are that
 * generation too. Returns 0, or the error to answer (g unchanged). */
static int16_t upgrade(srv_group *g, kp_batch_builder *bb, int64_t ts, int *nrec, int *rc)
{
    srv_groups *gs = g->gs;
    srv_cgroup *cg = cgroup_new(gs);
    if (!cg)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    kp_arena a;
    kp_arena_init(&a, 0);
    int bad = 0, oom = 0;
    for (int i = 0; i < g->nmembers && !bad && !oom; i++) {
        const srv_gmember *gm = g->members[i];
        srv_cmember *m = cmember_new(srv_s(gm->id));
        if (!m || add_member(cg, m)) {
            cmember_free(m);
            oom = 1;
            break;
        }
        kp_consumer_protocol_subscription sub;
        if (decode_subscription(srv_gmember_metadata(g, gm), &a, &sub)) {
            bad = 1;
            break;
        }
        set_str(&m->instance_id, srv_s(gm->instance_id));
        set_str(&m->rack_id, sub.rack_id.len > 0 ? sub.rack_id : KP_STR_NULL);
        set_str(&m->client_id, srv_s(gm->client_id));
        set_str(&m->client_host, srv_s(gm->client_host));
        m->rebalance_timeout_ms = gm->rebalance_timeout_ms;
        m->classic_session_ms = gm->session_timeout_ms;
        set_subs(m, sub.topics, sub.topics_count > 0 ? sub.topics_count : 0);
        if (copy_gprotocols(gm->protocols, gm->nprotocols, &m->protocols)) {
            oom = 1;
            break;
        }
        m->nprotocols = gm->nprotocols;
        if (gm->assignment_len > 0) {
            kp_reader r;
            int16_t ver;
            kp_consumer_protocol_assignment asg;
            memset(&asg, 0, sizeof(asg));
            kp_reader_init(&r, gm->assignment, (size_t)gm->assignment_len);
            if (kp_read_i16(&r, &ver) || ver < 0 ||
                kp_consumer_protocol_assignment_decode(&r, &a, ver > 3 ? 3 : ver, &asg)) {
                bad = 1;
                break;
            }
            int32_t n = asg.assigned_partitions_count > 0 ? asg.assigned_partitions_count : 0;
            kp_str *names = calloc((size_t)n + 1, sizeof(*names));
            int32_t **ps = calloc((size_t)n + 1, sizeof(*ps));
            int32_t *cs = calloc((size_t)n + 1, sizeof(*cs));
            if (names && ps && cs) {
                for (int32_t k = 0; k < n; k++) {
                    names[k] = asg.assigned_partitions[k].topic;
                    ps[k] = asg.assigned_partitions[k].partitions;
                    cs[k] = asg.assigned_partitions[k].partitions_count > 0
                                ? asg.assigned_partitions[k].partitions_count
                                : 0;
                }
                oom = tps_from_names(gs, &m->assigned, names, ps, cs, n) != 0;
            } else {
                oom = 1;
            }
            free(names);
            free(ps);
            free(cs);
        }
        if (!oom && tps_copy(&m->target, &m->assigned))
            oom = 1;
        m->epoch = m->prev_epoch = g->generation;
        m->state = SRV_CM_STABLE;
        m->session_deadline = ts + m->classic_session_ms;
    }
    kp_arena_reset(&a);
    if (!oom && compute_topics(gs, cg, &cg->topics, &cg->ntopics))
        oom = 1;
    if (bad || oom) {
        srv_cgroup_free(cg);
        if (bad)
            srv_warn("group %.*s: cannot be upgraded to a consumer group: its embedded consumer protocol is "
                     "malformed",
                     SRV_SP(g->id));
        return bad ? KP_ERR_GROUP_ID_NOT_FOUND : KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    cg->epoch = cg->assignment_epoch = g->generation;
    /* The records in Kafka's order: the classic group goes, then the
     * members, the epoch, the subscription metadata, the target assignment
     * and each member's current assignment. */
    if (*rc == 0)
        *rc = srv_glog_add_group(bb, ts, g, NULL, 1);
    for (int i = 0; i < cg->nmembers && *rc == 0; i++)
        *rc = srv_glog_add_cg_member(bb, ts, g->id, cg->members[i]->id, cg->members[i]);
    if (*rc == 0)
        *rc = srv_glog_add_cg_epoch(bb, ts, g->id, &cg->epoch);
    if (*rc == 0)
        *rc = srv_glog_add_cg_topics(bb, ts, g->id, cg);
    for (int i = 0; i < cg->nmembers && *rc == 0; i++)
        *rc = srv_glog_add_cg_target(bb, ts, g->id, cg->members[i]->id, &cg->members[i]->target);
    if (*rc == 0)
        *rc = srv_glog_add_cg_target_epoch(bb, ts, g->id, &cg->assignment_epoch);
    for (int i = 0; i < cg->nmembers && *rc == 0; i++)
        *rc = srv_glog_add_cg_current(bb, ts, g->id, cg->members[i]->id, cg->members[i]);
    *nrec += 4 + 3 * cg->nmembers;
    srv_info("group %.*s: classic group of generation %d with %d members converted to a consumer group",
             SRV_SP(g->id), g->generation, cg->nmembers);
    /* A rebalance in progress is over: its members rejoin the new group. */
    srv_groupi_abort_parked(g, KP_ERR_REBALANCE_IN_PROGRESS);
    g->cg = cg;
    srv_groupi_clear_classic(g);
    srv_groupi_sync_consumer(g);
    return KP_ERR_NONE;
}

/* validateOnlineDowngradeWithFencedMember: member idx leaves and every other
 * member speaks the classic protocol. */
static int downgrade_ok(const srv_group *g, int idx)
{
    const srv_cgroup *cg = g->cg;
    if (cg->nmembers <= 1)
        return 0;
    for (int i = 0; i < cg->nmembers; i++)
        if (i != idx && !cg->members[i]->protocols)
            return 0;
    if (!downgrade_enabled(g->gs)) {
        srv_info("group %.*s: not downgraded to a classic group: the online downgrade is disabled",
                 SRV_SP(g->id));
        return 0;
    }
    if (cg->nmembers - 1 > srv_groupi_cfg(g->gs)->max_size) {
        srv_info("group %.*s: not downgraded to a classic group: it has more members than group.max.size",
                 SRV_SP(g->id));
        return 0;
    }
    return 1;
}

/* convertToClassicGroup: every consumer record of the group is tombstoned,
 * its classic members (all but idx) become a classic group at the group
 * epoch, written as a GroupMetadata record, and a rebalance starts. */
static void downgrade(srv_group *g, int idx, kp_batch_builder *bb, int64_t ts, int *nrec, int *rc)
{
    srv_cgroup *cg = g->cg;
    if (*rc == 0)
        *rc = srv_glog_add_cg_tombstones(bb, ts, g);
    (*nrec)++;
    srv_gmember **ms = calloc((size_t)cg->nmembers + 1, sizeof(*ms));
    int n = 0;
    for (int i = 0; ms && i < cg->nmembers; i++) {
        const srv_cmember *cm = cg->members[i];
        if (i == idx)
            continue;
        srv_join_protocol *jp = calloc((size_t)cm->nprotocols + 1, sizeof(*jp));
        if (!jp) {
            *rc = KP_E_NOMEM;
            continue;
        }
        for (int k = 0; k < cm->nprotocols; k++) {
            jp[k].name = srv_s(cm->protocols[k].name);
            jp[k].metadata = (kp_bytes){cm->protocols[k].meta, cm->protocols[k].len};
        }
        srv_join_req jr;
        memset(&jr, 0, sizeof(jr));
        jr.instance_id = srv_s(cm->instance_id);
        jr.client_id = srv_s(cm->client_id);
        jr.client_host = srv_s(cm->client_host);
        jr.protocol_type = kp_str_c("consumer");
        jr.session_timeout_ms = cm->classic_session_ms;
        jr.rebalance_timeout_ms = cm->rebalance_timeout_ms;
        jr.nprotocols = cm->nprotocols;
        jr.protocols = jp;
        srv_gmember *gm = srv_groupi_member_new(&jr, cm->id);
        free(jp);
        kp_writer w;
        int arc = assignment_bytes(cg, cm, &cm->assigned, &w);
        if (gm && arc == 0 && (gm->assignment = malloc(w.len ? w.len : 1))) {
            memcpy(gm->assignment, w.buf, w.len);
            gm->assignment_len = (int32_t)w.len;
        }
        kp_writer_free(&w);
        if (!gm) {
            *rc = KP_E_NOMEM;
            continue;
        }
        ms[n++] = gm;
    }
    if (!ms)
        *rc = KP_E_NOMEM;
    int32_t generation = cg->epoch;
    srv_info(
        "group %.*s: the last member of the consumer protocol left; %d classic members make it a classic "
        "group again",
        SRV_SP(g->id), n);
    g->cg = NULL;
    srv_cgroup_free(cg);
    int rc2 = srv_groupi_from_consumer(g, ms ? ms : NULL, n, generation, bb, ts);
    if (*rc == 0)
        *rc = rc2;
    (*nrec)++;
    free(ms);
}

/* Member idx leaves: the group is downgraded when that is due, else the
 * member is fenced. Returns 1 when the group is no longer a consumer group. */
static int fence_or_downgrade(srv_group *g, int idx, kp_batch_builder *bb, int64_t ts, int *nrec, int *rc)
{
    if (downgrade_ok(g, idx)) {
        downgrade(g, idx, bb, ts, nrec, rc);
        return 1;
    }
    fence(g, idx, bb, ts, nrec, rc);
    return 0;
}

/* validateConsumerGroupMember and throwIfMemberDoesNotUseClassicProtocol. */
static srv_cmember *classic_member(const srv_cgroup *cg, kp_str member_id, kp_str instance_id, int16_t *err)
{
    srv_cmember *m;
    *err = KP_ERR_NONE;
    if (instance_id.len < 0) {
        m = srv_cgroup_member(cg, member_id);
    } else {
        m = static_member(cg, instance_id);
        if (m && member_id.len > 0 && !srv_seq(member_id, m->id)) {
            *err = KP_ERR_FENCED_INSTANCE_ID;
            return NULL;
        }
    }
    if (!m || !m->protocols) {
        *err = KP_ERR_UNKNOWN_MEMBER_ID;
        return NULL;
    }
    return m;
}

static void join_fail_now(srv_join_cb cb, void *ctx, kp_str member_id, int16_t err)
{
    srv_join_result r = {0};
    r.error = err;
    r.generation = -1;
    r.member_id = member_id.len >= 0 ? member_id : kp_str_c("");
    r.leader = kp_str_c("");
    r.protocol_type = r.protocol_name = KP_STR_NULL;
    cb(ctx, &r);
}

void srv_cgroup_classic_join(srv_group *g, const srv_join_req *rq, srv_join_cb cb, void *ctx)
{
    srv_groups *gs = g->gs;
    srv_cgroup *cg = g->cg;
    write_ctx *w = calloc(1, sizeof(*w));
    if (!w) {
        join_fail_now(cb, ctx, rq->member_id, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    w->jcb = cb;
    w->ctx = ctx;
    w->member_id = srv_sdup(rq->member_id.len >= 0 ? rq->member_id : kp_str_c(""));
    char idbuf[32];
    int unknown = rq->member_id.len <= 0;
    kp_str mid = rq->member_id;
    if (unknown) {
        new_member_id(idbuf, sizeof(idbuf));
        mid = kp_str_c(idbuf);
    }
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int nrec = 0, rc = 0;
    int64_t ts = srv_groupi_now(gs);
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_consumer_protocol_subscription sub;
    srv_cmember *m = NULL, *replaced = NULL;
    int is_new = 0;
    srv_groupi_ref(g);
    if (!srv_cgroup_member(cg, mid) && cg->nmembers >= max_size(gs)) {
        fail(w, KP_ERR_GROUP_MAX_SIZE_REACHED,
             "The consumer group has reached its maximum capacity of %d members.", max_size(gs));
    } else if (!kp_str_eq(rq->protocol_type, "consumer") || rq->nprotocols <= 0) {
        fail(w, KP_ERR_INCONSISTENT_GROUP_PROTOCOL, "Not the consumer embedded protocol.");
    } else if (unknown && rq->require_known_member_id) {
        /* Rejoin with the id handed out (KIP-394). */
        fail(w, KP_ERR_MEMBER_ID_REQUIRED, "Member id required.");
        srv_sfree(w->member_id);
        w->member_id = srv_sdup(mid);
    } else if (decode_subscription(rq->protocols[0].metadata, &a, &sub)) {
        fail(w, KP_ERR_INCONSISTENT_GROUP_PROTOCOL, "Malformed consumer protocol subscription.");
    } else if (rq->instance_id.len < 0) {
        m = srv_cgroup_member(cg, mid);
        is_new = m == NULL;
    } else {
        srv_cmember *old = static_member(cg, rq->instance_id);
        if (!old) {
            m = srv_cgroup_member(cg, mid);
            is_new = m == NULL;
        } else if (srv_seq(mid, old->id)) {
            m = old;
        } else if (unknown) {
            replaced = old;
            is_new = 1;
        } else {
            fail(w, KP_ERR_FENCED_INSTANCE_ID, "Static member is fenced.");
        }
    }
    if (!w->r.error && m && !m->protocols)
        fail(w, KP_ERR_INCONSISTENT_GROUP_PROTOCOL, "The member uses the consumer protocol.");
    if (!w->r.error && is_new) {
        m = cmember_new(mid);
        if (!m || add_member(cg, m)) {
            cmember_free(m);
            m = NULL;
            fail(w, KP_ERR_UNKNOWN_SERVER_ERROR, "Out of memory.");
        }
    }
    if (w->r.error) {
        kp_arena_reset(&a);
        commit(g, &bb, 0, 0, w);
        srv_groupi_unref(g);
        return;
    }
    if (replaced) {
        srv_info("group %.*s: static member %.*s replaces %.*s (instance id %.*s)", SRV_SP(g->id),
                 SRV_SP(m->id), SRV_SP(replaced->id), SRV_SP(replaced->instance_id));
        if (tps_copy(&m->assigned, &replaced->assigned) || tps_copy(&m->target, &replaced->target))
            rc = KP_E_NOMEM;
        m->epoch = replaced->epoch;
        m->prev_epoch = replaced->prev_epoch;
        if (rc == 0)
            rc = srv_glog_add_cg_current(&bb, ts, g->id, replaced->id, NULL);
        if (rc == 0)
            rc = srv_glog_add_cg_target(&bb, ts, g->id, replaced->id, NULL);
        if (rc == 0)
            rc = srv_glog_add_cg_member(&bb, ts, g->id, replaced->id, NULL);
        nrec += 3;
        remove_member_at(cg, member_index(cg, replaced));
    } else if (is_new) {
        srv_info("group %.*s: classic member %.*s joins the consumer group", SRV_SP(g->id), SRV_SP(m->id));
    }

    /* 1. The member (its classic metadata is part of it). */
    int meta_changed = is_new, subs_changed;
    if (is_new)
        set_str(&m->instance_id, rq->instance_id);
    if (sub.rack_id.len > 0)
        meta_changed |= set_str(&m->rack_id, sub.rack_id);
    if (rq->rebalance_timeout_ms != m->rebalance_timeout_ms) {
        m->rebalance_timeout_ms = rq->rebalance_timeout_ms;
        meta_changed = 1;
    }
    subs_changed = set_subs(m, sub.topics, sub.topics_count > 0 ? sub.topics_count : 0);
    meta_changed |= subs_changed;
    meta_changed |= set_str(&m->client_id, rq->client_id.len >= 0 ? rq->client_id : kp_str_c(""));
    meta_changed |= set_str(&m->client_host, rq->client_host.len >= 0 ? rq->client_host : kp_str_c(""));
    meta_changed |= set_join_protocols(m, rq);
    if (m->classic_session_ms != rq->session_timeout_ms) {
        m->classic_session_ms = rq->session_timeout_ms;
        meta_changed = 1;
    }
    if (meta_changed) {
        if (rc == 0)
            rc = srv_glog_add_cg_member(&bb, ts, g->id, m->id, m);
        nrec++;
    }
    srv_groupi_sync_consumer(g);

    /* 2. The group epoch. */
    int bump = refresh_topics(g, &bb, ts, &nrec, &rc) | subs_changed;
    if (bump) {
        cg->epoch++;
        if (rc == 0)
            rc = srv_glog_add_cg_epoch(&bb, ts, g->id, &cg->epoch);
        nrec++;
        srv_info("group %.*s: epoch bumped to %d", SRV_SP(g->id), cg->epoch);
    }

    /* 3. The target assignment. */
    if (cg->epoch > cg->assignment_epoch || replaced)
        update_target(g, &bb, ts, &nrec, &rc);

    /* 4. Reconciliation against what its subscription says it owns. */
    srv_tps owned = {0};
    int32_t no = sub.owned_partitions_count > 0 ? sub.owned_partitions_count : 0;
    kp_str *names = calloc((size_t)no + 1, sizeof(*names));
    int32_t **ps = calloc((size_t)no + 1, sizeof(*ps));
    int32_t *cs = calloc((size_t)no + 1, sizeof(*cs));
    if (names && ps && cs) {
        for (int32_t k = 0; k < no; k++) {
            names[k] = sub.owned_partitions[k].topic;
            ps[k] = sub.owned_partitions[k].partitions;
            cs[k] =
                sub.owned_partitions[k].partitions_count > 0 ? sub.owned_partitions[k].partitions_count : 0;
        }
        if (tps_from_names(gs, &owned, names, ps, cs, no))
            rc = KP_E_NOMEM;
    } else {
        rc = KP_E_NOMEM;
    }
    free(names);
    free(ps);
    free(cs);
    kp_arena_reset(&a);
    if (reconcile(cg, m, &owned)) {
        if (rc == 0)
            rc = srv_glog_add_cg_current(&bb, ts, g->id, m->id, m);
        nrec++;
        srv_info(
            "group %.*s: classic member %.*s is at epoch %d, %d partitions assigned, %d pending revocation",
            SRV_SP(g->id), SRV_SP(m->id), m->epoch, m->assigned.n, m->revoking.n);
    }
    srv_tps_free(&owned);
    /* Its session runs on its own timeout; SyncGroup is due within its
     * rebalance timeout. */
    m->rebalance_deadline = -1;
    m->session_deadline = ts + m->classic_session_ms;
    m->classic_deadline =
        ts + (m->rebalance_timeout_ms > 0 ? m->rebalance_timeout_ms : m->classic_session_ms);
    srv_sfree(w->member_id);
    w->member_id = srv_sdupc(m->id);
    w->protocol_name = srv_sdupc(m->protocols[0].name);
    w->r.member_epoch = m->epoch;
    if (!w->member_id || !w->protocol_name)
        fail(w, KP_ERR_UNKNOWN_SERVER_ERROR, "Out of memory.");
    commit(g, &bb, nrec, rc, w);
    srv_groupi_rearm(g);
    srv_groupi_unref(g);
}

void srv_cgroup_classic_sync(srv_group *g, const srv_sync_req *rq, srv_sync_cb cb, void *ctx)
{
    srv_cgroup *cg = g->cg;
    int16_t err;
    srv_cmember *m = classic_member(cg, rq->member_id, rq->instance_id, &err);
    if (!err && rq->generation != m->epoch)
        err = KP_ERR_ILLEGAL_GENERATION;
    if (!err && rq->protocol_type.len >= 0 && !kp_str_eq(rq->protocol_type, "consumer"))
        err = KP_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (!err && rq->protocol_name.len >= 0 && !srv_seq(rq->protocol_name, m->protocols[0].name))
        err = KP_ERR_INCONSISTENT_GROUP_PROTOCOL;
    int64_t now = srv_groupi_now(g->gs);
    /* A new rebalance began since its join: it must rejoin, unless it
     * already did and still has partitions to revoke. */
    if (!err && cg->epoch > m->epoch && m->state != SRV_CM_UNREVOKED) {
        if (m->classic_deadline < 0)
            m->classic_deadline = now + m->rebalance_timeout_ms;
        err = KP_ERR_REBALANCE_IN_PROGRESS;
    }
    kp_writer w = {0};
    if (!err && assignment_bytes(cg, m, &m->assigned, &w) != 0)
        err = KP_ERR_UNKNOWN_SERVER_ERROR;
    srv_sync_result r;
    memset(&r, 0, sizeof(r));
    r.error = err;
    r.protocol_type = r.protocol_name = KP_STR_NULL;
    r.assignment = (kp_bytes){(const uint8_t *)"", 0};
    if (!err) {
        r.protocol_type = rq->protocol_type;
        r.protocol_name = rq->protocol_name;
        r.assignment = (kp_bytes){w.buf, (int32_t)w.len};
        m->classic_deadline = -1;
        m->session_deadline = now + m->classic_session_ms;
        srv_groupi_rearm(g);
    }
    cb(ctx, &r);
    kp_writer_free(&w);
}

/* ConsumerGroup.waitingOnUnreleasedPartition: a partition of its target is
 * still owned by another member. */
static int waiting_on_unreleased(const srv_cgroup *cg, const srv_cmember *m)
{
    for (int i = 0; i < m->target.n; i++) {
        const srv_tp *tp = &m->target.v[i];
        if (!srv_tps_has(&m->assigned, tp->topic, tp->partition) && partition_epoch(cg, m, tp) != -1)
            return 1;
    }
    return 0;
}

int16_t srv_cgroup_classic_heartbeat(srv_group *g, int32_t generation, kp_str member_id, kp_str instance_id)
{
    srv_cgroup *cg = g->cg;
    int16_t err;
    srv_cmember *m = classic_member(cg, member_id, instance_id, &err);
    if (err)
        return err;
    if (generation != m->epoch)
        return KP_ERR_ILLEGAL_GENERATION;
    int64_t now = srv_groupi_now(g->gs);
    m->session_deadline = now + m->classic_session_ms;
    /* It rejoins to catch up with a new group epoch, to revoke, or to take
     * partitions that were released meanwhile. */
    if (m->epoch < cg->epoch || m->state == SRV_CM_UNREVOKED ||
        (m->state == SRV_CM_UNRELEASED && !waiting_on_unreleased(cg, m))) {
        if (m->classic_deadline < 0)
            m->classic_deadline = now + m->rebalance_timeout_ms;
        err = KP_ERR_REBALANCE_IN_PROGRESS;
    }
    srv_groupi_rearm(g);
    return err;
}

void srv_cgroup_classic_leave(srv_group *g, int n, srv_leave_member *lm)
{
    srv_cgroup *cg = g->cg;
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int nrec = 0, rc = 0, last = -1;
    int64_t ts = srv_groupi_now(g->gs);
    srv_groupi_ref(g);
    for (int i = 0; i < n; i++) {
        srv_cmember *m = classic_member(cg, lm[i].member_id, lm[i].instance_id, &lm[i].error);
        if (m)
            last = i;
    }
    for (int i = 0; i <= last && g->cg; i++) {
        if (lm[i].error)
            continue;
        int16_t e;
        srv_cmember *m = classic_member(cg, lm[i].member_id, lm[i].instance_id, &e);
        if (!m) {
            lm[i].error = e; /* the same member named twice */
            continue;
        }
        srv_info("group %.*s: classic member %.*s left", SRV_SP(g->id), SRV_SP(m->id));
        int idx = member_index(cg, m);
        if (i == last)
            fence_or_downgrade(g, idx, &bb, ts, &nrec, &rc);
        else
            fence(g, idx, &bb, ts, &nrec, &rc);
    }
    if (nrec > 0)
        srv_groupi_append_tombs(g, &bb, rc, NULL, NULL, NULL);
    else
        kp_batch_builder_free(&bb);
    srv_groupi_rearm(g);
    srv_groupi_unref(g);
}

static void leave(srv_groups *gs, srv_group *g, const srv_chb_req *rq, write_ctx *w)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int nrec = 0, rc = 0;
    int64_t ts = srv_groupi_now(gs);
    w->member_id = srv_sdup(rq->member_id);
    w->r.member_epoch = rq->member_epoch;
    if (!g || !g->cg) {
        fail(w, KP_ERR_GROUP_ID_NOT_FOUND, "Group %.*s is not a consumer group.", rq->group_id.len,
             rq->group_id.p);
        commit(g, &bb, 0, 0, w);
        return;
    }
    srv_cgroup *cg = g->cg;
    srv_cmember *m;
    if (rq->instance_id.len < 0) {
        m = srv_cgroup_member(cg, rq->member_id);
        if (!m)
            fail(w, KP_ERR_UNKNOWN_MEMBER_ID, "Member %.*s is not a member of group %.*s.", rq->member_id.len,
                 rq->member_id.p, SRV_SP(g->id));
    } else {
        m = static_member(cg, rq->instance_id);
        if (!m)
            fail(w, KP_ERR_UNKNOWN_MEMBER_ID, "Instance id %.*s is unknown.", rq->instance_id.len,
                 rq->instance_id.p);
        else if (!srv_seq(rq->member_id, m->id)) {
            fail(w, KP_ERR_FENCED_INSTANCE_ID, "Static member %.*s is fenced by member %.*s.",
                 rq->member_id.len, rq->member_id.p, SRV_SP(m->id));
            m = NULL;
        }
    }
    if (m && rq->member_epoch == SRV_CEPOCH_LEAVE_STATIC) {
        /* The static member keeps its partitions (nobody else gets them)
         * until it comes back or its session expires. */
        srv_info("group %.*s: static member %.*s (%.*s) temporarily left", SRV_SP(g->id), SRV_SP(m->id),
                 SRV_SP(m->instance_id));
        m->epoch = SRV_CEPOCH_LEAVE_STATIC;
        srv_tps_free(&m->revoking);
        m->rebalance_deadline = -1;
        rc = srv_glog_add_cg_current(&bb, ts, g->id, m->id, m);
        nrec++;
    } else if (m) {
        srv_info("group %.*s: member %.*s left", SRV_SP(g->id), SRV_SP(m->id));
        fence_or_downgrade(g, member_index(cg, m), &bb, ts, &nrec, &rc);
    }
    commit(g, &bb, nrec, rc, w);
}

void srv_cgroup_heartbeat(srv_groups *gs, int32_t partition, const srv_chb_req *rq, srv_chb_cb cb, void *ctx)
{
    write_ctx *w = calloc(1, sizeof(*w));
    if (!w) {
        srv_chb_result r = {0};
        r.error = KP_ERR_UNKNOWN_SERVER_ERROR;
        cb(ctx, &r);
        return;
    }
    w->cb = cb;
    w->ctx = ctx;
    /* The owned partitions, sorted (never trust the client's order). */
    srv_tps owned = {0};
    int have_owned = rq->nowned >= 0;
    for (int i = 0; i < rq->nowned; i++)
        if (srv_tps_add(&owned, rq->owned[i].topic, rq->owned[i].partition)) {
            fail(w, KP_ERR_UNKNOWN_SERVER_ERROR, "Out of memory.");
            break;
        }
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    srv_group *g = w->r.error || validate(gs, rq, w) ? NULL : srv_groups_find(gs, rq->group_id);
    if (w->r.error) {
        commit(NULL, &bb, 0, 0, w);
        srv_tps_free(&owned);
        return;
    }
    if (rq->member_epoch == SRV_CEPOCH_LEAVE || rq->member_epoch == SRV_CEPOCH_LEAVE_STATIC) {
        kp_batch_builder_free(&bb);
        leave(gs, g, rq, w);
        srv_tps_free(&owned);
        return;
    }
    int nrec = 0, rc = 0, create = rq->member_epoch == 0, upgraded = 0;
    int64_t ts = srv_groupi_now(gs);
    if (!g && !create) {
        fail(w, KP_ERR_GROUP_ID_NOT_FOUND, "Consumer group %.*s not found.", rq->group_id.len,
             rq->group_id.p);
    } else if (!g && !(g = srv_groupi_create(gs, rq->group_id, partition))) {
        fail(w, KP_ERR_UNKNOWN_SERVER_ERROR, "Out of memory.");
    } else if (!g->cg && create && (g->nmembers > 0 || g->state != SRV_GS_EMPTY)) {
        /* A non-empty classic group of the consumer protocol is converted
         * online when the policy allows it (validateOnlineUpgrade); a group
         * at its capacity refuses the newcomer first, as Kafka's checks
         * after the conversion (which it then rolls back) do. */
        int16_t e;
        const char *why = !upgrade_enabled(gs) ? "online upgrade is disabled"
                          : !kp_str_eq(srv_s(g->protocol_type), "consumer")
                              ? "the group does not use the consumer embedded protocol"
                          : g->nmembers > max_size(gs)
                              ? "the group size exceeds the consumer group maximum size"
                              : NULL;
        if (why) {
            srv_info("group %.*s: not upgraded to a consumer group: %s", SRV_SP(g->id), why);
            fail(w, KP_ERR_GROUP_ID_NOT_FOUND,
                 "Cannot upgrade classic group %.*s to consumer group because %s.", SRV_SP(g->id), why);
        } else if (g->nmembers >= max_size(gs) &&
                   (rq->member_id.len <= 0 || !srv_groupi_member_get(g, rq->member_id))) {
            fail(w, KP_ERR_GROUP_MAX_SIZE_REACHED,
                 "The consumer group has reached its maximum capacity of %d members.", max_size(gs));
        } else if ((e = upgrade(g, &bb, ts, &nrec, &rc)) == KP_ERR_NONE) {
            upgraded = 1;
        } else {
            fail(
                w, e,
                e == KP_ERR_GROUP_ID_NOT_FOUND
                    ? "Cannot upgrade the classic group %.*s to consumer group because the embedded consumer "
                      "protocol is malformed."
                    : "Cannot upgrade the classic group %.*s to consumer group.",
                SRV_SP(g->id));
        }
    } else if (!g->cg) {
        /* An empty classic group (or one that only holds offsets) becomes a
         * consumer group whatever the policy; its offsets stay
         * (maybeDeleteEmptyClassicGroup). */
        if (!create) {
            fail(w, KP_ERR_GROUP_ID_NOT_FOUND, "Group %.*s is not a consumer group.", SRV_SP(g->id));
        } else if (!(g->cg = cgroup_new(gs))) {
            fail(w, KP_ERR_UNKNOWN_SERVER_ERROR, "Out of memory.");
        } else {
            if (g->protocol_type || g->generation > 0) {
                rc = srv_glog_add_group(&bb, ts, g, NULL, 1);
                nrec++;
            }
            srv_groupi_clear_classic(g);
            upgraded = 1;
        }
    }
    if (w->r.error) {
        kp_batch_builder_free(&bb);
        kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
        commit(g, &bb, 0, 0, w);
        srv_tps_free(&owned);
        return;
    }
    srv_groupi_ref(g);
    srv_cgroup *cg = g->cg;
    const srv_tps *ownedp = have_owned ? &owned : NULL;
    /* throwIfConsumerGroupIsFull: only members already in the group get in. */
    if (cg->nmembers >= max_size(gs) && (rq->member_id.len <= 0 || !srv_cgroup_member(cg, rq->member_id))) {
        fail(w, KP_ERR_GROUP_MAX_SIZE_REACHED,
             "The consumer group has reached its maximum capacity of %d members.", max_size(gs));
        if (!upgraded) {
            kp_batch_builder_free(&bb);
            kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
            nrec = 0;
            rc = 0;
        }
        commit(g, &bb, nrec, rc, w);
        srv_tps_free(&owned);
        srv_groupi_unref(g);
        return;
    }

    /* The member: existing, new, or a static member replacing its old self. */
    char idbuf[32];
    kp_str mid = rq->member_id;
    if (mid.len <= 0) {
        new_member_id(idbuf, sizeof(idbuf));
        mid = kp_str_c(idbuf);
    }
    srv_cmember *m = NULL, *replaced = NULL;
    int is_new = 0;
    if (rq->instance_id.len < 0) {
        m = srv_cgroup_member(cg, mid);
        if (!m && !create)
            fail(w, KP_ERR_UNKNOWN_MEMBER_ID, "Member %.*s is not a member of group %.*s.", mid.len, mid.p,
                 SRV_SP(g->id));
        else if (m)
            check_epoch(m, rq->member_epoch, ownedp, w);
        else
            is_new = 1;
    } else {
        srv_cmember *old = static_member(cg, rq->instance_id);
        if (create && !old) {
            m = srv_cgroup_member(cg, mid);
            is_new = m == NULL;
        } else if (create) {
            if (old->epoch != SRV_CEPOCH_LEAVE_STATIC)
                fail(w, KP_ERR_UNRELEASED_INSTANCE_ID,
                     "Static member %.*s with instance id %.*s cannot join the group because the instance id "
                     "is "
                     "owned by another member.",
                     SRV_SP(old->id), SRV_SP(old->instance_id));
            else {
                replaced = old;
                is_new = 1;
            }
        } else if (!old) {
            fail(w, KP_ERR_UNKNOWN_MEMBER_ID, "Instance id %.*s is unknown.", rq->instance_id.len,
                 rq->instance_id.p);
        } else if (!srv_seq(mid, old->id)) {
            fail(w, KP_ERR_FENCED_INSTANCE_ID,
                 "Static member %.*s with instance id %.*s is fenced by member %.*s.", mid.len, mid.p,
                 SRV_SP(old->instance_id), SRV_SP(old->id));
        } else if (check_epoch(old, rq->member_epoch, ownedp, w) == KP_ERR_NONE) {
            m = old;
        }
    }
    if (!w->r.error && is_new) {
        m = cmember_new(mid);
        if (!m || add_member(cg, m)) {
            cmember_free(m);
            m = NULL;
            fail(w, KP_ERR_UNKNOWN_SERVER_ERROR, "Out of memory.");
        }
    }
    if (w->r.error) {
        /* The group was converted in memory before this member was refused:
         * its conversion records still go to the log, so that a replay
         * builds the group memory has (Kafka would roll the conversion back;
         * the next heartbeat sees the same group either way). */
        if (!upgraded) {
            kp_batch_builder_free(&bb);
            kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
            nrec = 0;
            rc = 0;
        }
        commit(g, &bb, nrec, rc, w);
        srv_tps_free(&owned);
        srv_groupi_unref(g);
        return;
    }
    if (replaced) {
        /* The new incarnation takes over the old one's partitions and target. */
        srv_info("group %.*s: static member %.*s replaces %.*s (instance id %.*s)", SRV_SP(g->id),
                 SRV_SP(m->id), SRV_SP(replaced->id), SRV_SP(replaced->instance_id));
        if (tps_copy(&m->assigned, &replaced->assigned) || tps_copy(&m->target, &replaced->target))
            rc = KP_E_NOMEM;
        /* Its subscription carries over: an unchanged one bumps no epoch. */
        m->subs = replaced->subs;
        m->nsubs = replaced->nsubs;
        replaced->subs = NULL;
        replaced->nsubs = 0;
        m->assignor = replaced->assignor;
        replaced->assignor = NULL;
        m->regex = replaced->regex;
        replaced->regex = NULL;
        if (rc == 0)
            rc = srv_glog_add_cg_current(&bb, ts, g->id, replaced->id, NULL);
        if (rc == 0)
            rc = srv_glog_add_cg_target(&bb, ts, g->id, replaced->id, NULL);
        if (rc == 0)
            rc = srv_glog_add_cg_member(&bb, ts, g->id, replaced->id, NULL);
        nrec += 3;
        remove_member_at(cg, member_index(cg, replaced));
    } else if (is_new) {
        srv_info("group %.*s: member %.*s joins%s", SRV_SP(g->id), SRV_SP(m->id),
                 rq->instance_id.len >= 0 ? " (static)" : "");
    }

    /* 1. The member's metadata. */
    int meta_changed = is_new, subs_changed = 0;
    if (is_new)
        set_str(&m->instance_id, rq->instance_id);
    if (rq->rack_id.len >= 0)
        meta_changed |= set_str(&m->rack_id, rq->rack_id);
    if (rq->rebalance_timeout_ms != -1 && rq->rebalance_timeout_ms != m->rebalance_timeout_ms) {
        m->rebalance_timeout_ms = rq->rebalance_timeout_ms;
        meta_changed = 1;
    }
    if (rq->assignor.len >= 0)
        meta_changed |= set_str(&m->assignor, rq->assignor);
    if (rq->nsubs >= 0)
        subs_changed = set_subs(m, rq->subs, rq->nsubs);
    if (rq->regex.len >= 0)
        subs_changed |= set_str(&m->regex, rq->regex.len > 0 ? rq->regex : KP_STR_NULL);
    meta_changed |= subs_changed;
    meta_changed |= set_str(&m->client_id, rq->client_id.len >= 0 ? rq->client_id : kp_str_c(""));
    meta_changed |= set_str(&m->client_host, rq->client_host.len >= 0 ? rq->client_host : kp_str_c(""));
    if (meta_changed) {
        if (rc == 0)
            rc = srv_glog_add_cg_member(&bb, ts, g->id, m->id, m);
        nrec++;
    }
    srv_groupi_sync_consumer(g);

    /* 2. The group epoch: bumped by a new subscription or new metadata
     * (topics created, deleted or given more partitions). */
    int resolved = resolve_regexes(g, rq, &bb, ts, &nrec, &rc);
    int bump = refresh_topics(g, &bb, ts, &nrec, &rc) | subs_changed | resolved;
    if (bump) {
        cg->epoch++;
        if (rc == 0)
            rc = srv_glog_add_cg_epoch(&bb, ts, g->id, &cg->epoch);
        nrec++;
        srv_info("group %.*s: epoch bumped to %d", SRV_SP(g->id), cg->epoch);
    }

    /* 3. The target assignment. */
    if (cg->epoch > cg->assignment_epoch || replaced)
        update_target(g, &bb, ts, &nrec, &rc);

    /* 4. Reconciliation of this member. */
    srv_tps before = {0};
    int copied = tps_copy(&before, &m->assigned) == 0;
    if (reconcile(cg, m, ownedp)) {
        if (rc == 0)
            rc = srv_glog_add_cg_current(&bb, ts, g->id, m->id, m);
        nrec++;
        srv_info("group %.*s: member %.*s is at epoch %d (%s), %d partitions assigned, %d pending revocation",
                 SRV_SP(g->id), SRV_SP(m->id), m->epoch,
                 m->state == SRV_CM_STABLE      ? "stable"
                 : m->state == SRV_CM_UNREVOKED ? "unrevoked partitions"
                                                : "unreleased partitions",
                 m->assigned.n, m->revoking.n);
        m->rebalance_deadline =
            m->state == SRV_CM_UNREVOKED && m->rebalance_timeout_ms > 0 ? ts + m->rebalance_timeout_ms : -1;
    }
    m->session_deadline = ts + session_ms(gs);

    /* The answer: the assignment goes with a full request (joining, or
     * after an error) and whenever it changed. */
    int full = rq->member_epoch == 0 || (rq->rebalance_timeout_ms != -1 && rq->nsubs >= 0 && have_owned);
    w->member_id = srv_sdupc(m->id);
    w->r.member_epoch = m->epoch;
    w->r.heartbeat_interval_ms = interval_ms(gs);
    if (full || !copied || !srv_tps_eq(&before, &m->assigned)) {
        w->with_assignment = 1;
        if (tps_copy(&w->assignment, &m->assigned))
            fail(w, KP_ERR_UNKNOWN_SERVER_ERROR, "Out of memory.");
    }
    if (!w->member_id)
        fail(w, KP_ERR_UNKNOWN_SERVER_ERROR, "Out of memory.");
    srv_tps_free(&before);
    srv_tps_free(&owned);
    commit(g, &bb, nrec, rc, w);
    srv_groupi_rearm(g);
    srv_groupi_unref(g);
}

/* ---- offsets -------------------------------------------------------------- */

int16_t srv_cgroup_validate_commit(const srv_group *g, kp_str member_id, int32_t member_epoch,
                                   int16_t api_version)
{
    const srv_cgroup *cg = g->cg;
    /* Admin clients and consumers without group management commit with
     * epoch -1, only while the group is empty. */
    if (member_epoch < 0 && cg->nmembers == 0)
        return KP_ERR_NONE;
    const srv_cmember *m = srv_cgroup_member(cg, member_id);
    if (!m)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    /* A classic member commits with its generation, which is its epoch. */
    if (m->protocols)
        return member_epoch != m->epoch ? KP_ERR_ILLEGAL_GENERATION : KP_ERR_NONE;
    if (api_version < 9)
        return KP_ERR_UNSUPPORTED_VERSION; /* members of the new protocol commit with v9+ */
    if (member_epoch != m->epoch)
        return KP_ERR_STALE_MEMBER_EPOCH;
    return KP_ERR_NONE;
}

int16_t srv_cgroup_validate_fetch(const srv_group *g, kp_str member_id, int32_t member_epoch)
{
    if (member_epoch < 0 && member_id.len < 0)
        return KP_ERR_NONE;
    const srv_cmember *m = srv_cgroup_member(g->cg, member_id);
    if (!m)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    if (member_epoch != m->epoch)
        return m->protocols ? KP_ERR_ILLEGAL_GENERATION : KP_ERR_STALE_MEMBER_EPOCH;
    return KP_ERR_NONE;
}

/* ---- timers --------------------------------------------------------------- */

int64_t srv_cgroup_next_deadline(const srv_group *g)
{
    int64_t d = -1;
    const srv_cgroup *cg = g->cg;
    for (int i = 0; cg && i < cg->nmembers; i++) {
        const srv_cmember *m = cg->members[i];
        int64_t v = m->session_deadline;
        if (m->rebalance_deadline >= 0 && (v < 0 || m->rebalance_deadline < v))
            v = m->rebalance_deadline;
        if (m->classic_deadline >= 0 && (v < 0 || m->classic_deadline < v))
            v = m->classic_deadline;
        if (v >= 0 && (d < 0 || v < d))
            d = v;
    }
    return d;
}

void srv_cgroup_fire(srv_group *g, int64_t now)
{
    srv_cgroup *cg = g->cg;
    if (!cg)
        return;
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int nrec = 0, rc = 0;
    for (int i = 0; i < cg->nmembers;) {
        srv_cmember *m = cg->members[i];
        if (m->session_deadline >= 0 && m->session_deadline <= now) {
            srv_info("group %.*s: member %.*s has failed (session timeout %d ms), fencing it", SRV_SP(g->id),
                     SRV_SP(m->id), m->protocols ? m->classic_session_ms : session_ms(g->gs));
            if (fence_or_downgrade(g, i, &bb, now, &nrec, &rc))
                break;
        } else if (m->protocols && m->classic_deadline >= 0 && m->classic_deadline <= now) {
            srv_info("group %.*s: classic member %.*s did not rejoin or sync within its rebalance timeout "
                     "(%d ms), "
                     "fencing it",
                     SRV_SP(g->id), SRV_SP(m->id), m->rebalance_timeout_ms);
            if (fence_or_downgrade(g, i, &bb, now, &nrec, &rc))
                break;
        } else if (m->state == SRV_CM_UNREVOKED && m->rebalance_deadline >= 0 &&
                   m->rebalance_deadline <= now) {
            srv_info(
                "group %.*s: member %.*s did not revoke its partitions within its rebalance timeout (%d ms), "
                "fencing it",
                SRV_SP(g->id), SRV_SP(m->id), m->rebalance_timeout_ms);
            if (fence_or_downgrade(g, i, &bb, now, &nrec, &rc))
                break;
        } else {
            i++;
        }
    }
    write_ctx *w = calloc(1, sizeof(*w));
    if (!w) {
        kp_batch_builder_free(&bb);
        srv_error("group %.*s: out of memory writing the fencing of members", SRV_SP(g->id));
        return;
    }
    commit(g, &bb, nrec, rc, w);
}

/* ---- replay --------------------------------------------------------------- */

static srv_group *load_cgroup(srv_groups *gs, int32_t partition, kp_str id)
{
    srv_group *g = srv_groupi_load_get(gs, partition, id);
    if (!g)
        return NULL;
    if (!g->cg) {
        srv_cgroup *cg = cgroup_new(gs);
        if (!cg)
            return NULL;
        srv_groupi_clear_classic(g);
        g->cg = cg;
    }
    return g;
}

static srv_cmember *load_member(srv_group *g, kp_str member, int create)
{
    srv_cmember *m = srv_cgroup_member(g->cg, member);
    if (m || !create)
        return m;
    m = cmember_new(member);
    if (m && add_member(g->cg, m)) {
        cmember_free(m);
        m = NULL;
    }
    return m;
}

void srv_cgroup_load_epoch(srv_groups *gs, int32_t partition, kp_str group, const int32_t *epoch)
{
    if (!epoch) {
        /* The group is gone (deleted or converted); its offsets stay. */
        srv_group *g = srv_groups_find(gs, group);
        if (g && g->cg) {
            srv_cgroup_free(g->cg);
            g->cg = NULL;
            srv_groupi_clear_classic(g);
        }
        return;
    }
    srv_group *g = load_cgroup(gs, partition, group);
    if (g)
        g->cg->epoch = *epoch;
}

void srv_cgroup_load_topics(srv_groups *gs, int32_t partition, kp_str group,
                            const kp_consumer_group_partition_metadata_value *v)
{
    srv_group *g = v ? load_cgroup(gs, partition, group) : srv_groups_find(gs, group);
    if (!g || !g->cg)
        return;
    srv_cgroup *cg = g->cg;
    free_topics(cg->topics, cg->ntopics);
    cg->topics = NULL;
    cg->ntopics = 0;
    int32_t n = v && v->topics_count > 0 ? v->topics_count : 0;
    srv_ctopic *t = calloc((size_t)n + 1, sizeof(*t));
    if (!t)
        return;
    int k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (v->topics[i].topic_name.len < 0 || !(t[k].name = srv_sdup(v->topics[i].topic_name)))
            continue;
        t[k].id = v->topics[i].topic_id;
        t[k].nparts = v->topics[i].num_partitions;
        k++;
    }
    /* Kept sorted by name, as computed. */
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && srv_scmp(t[j - 1].name, t[j].name) > 0; j--) {
            srv_ctopic x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    cg->topics = t;
    cg->ntopics = k;
}

void srv_cgroup_load_member(srv_groups *gs, int32_t partition, kp_str group, kp_str member,
                            const kp_consumer_group_member_metadata_value *v)
{
    srv_group *g = v ? load_cgroup(gs, partition, group) : srv_groups_find(gs, group);
    if (!g || !g->cg)
        return;
    srv_cmember *m = load_member(g, member, v != NULL);
    if (!m)
        return;
    if (!v) {
        remove_member_at(g->cg, member_index(g->cg, m));
        return;
    }
    set_str(&m->instance_id, v->instance_id);
    set_str(&m->rack_id, v->rack_id);
    set_str(&m->client_id, v->client_id.len >= 0 ? v->client_id : kp_str_c(""));
    set_str(&m->client_host, v->client_host.len >= 0 ? v->client_host : kp_str_c(""));
    set_str(&m->assignor, v->server_assignor);
    m->rebalance_timeout_ms = v->rebalance_timeout_ms;
    int32_t ns = v->subscribed_topic_names_count > 0 ? v->subscribed_topic_names_count : 0;
    int ok = 1;
    for (int32_t i = 0; i < ns; i++)
        if (v->subscribed_topic_names[i].len < 0)
            ok = 0;
    if (ok)
        set_subs(m, v->subscribed_topic_names, ns);
    set_str(&m->regex, v->subscribed_topic_regex.len > 0 ? v->subscribed_topic_regex : KP_STR_NULL);
    free_gprotocols(m->protocols, m->nprotocols);
    m->protocols = NULL;
    m->nprotocols = 0;
    const kp_consumer_group_member_metadata_value_classic_member_metadata *cm = v->classic_member_metadata;
    if (cm) {
        int32_t np = cm->supported_protocols_count > 0 ? cm->supported_protocols_count : 0;
        srv_gprotocol *ps = calloc((size_t)np + 1, sizeof(*ps));
        int ok = ps != NULL;
        for (int32_t i = 0; ok && i < np; i++) {
            kp_bytes md = cm->supported_protocols[i].metadata;
            int32_t ml = md.len > 0 ? md.len : 0;
            ps[i].name = srv_sdup(cm->supported_protocols[i].name.len >= 0 ? cm->supported_protocols[i].name
                                                                           : kp_str_c(""));
            ps[i].meta = malloc(ml ? (size_t)ml : 1);
            ps[i].len = ml;
            ok = ps[i].name && ps[i].meta;
            if (ok && ml)
                memcpy(ps[i].meta, md.p, (size_t)ml);
        }
        if (ok && np > 0) {
            m->protocols = ps;
            m->nprotocols = np;
            m->classic_session_ms = cm->session_timeout_ms;
        } else {
            free_gprotocols(ps, np);
        }
    }
}

void srv_cgroup_load_target_epoch(srv_groups *gs, int32_t partition, kp_str group, const int32_t *epoch)
{
    srv_group *g = epoch ? load_cgroup(gs, partition, group) : srv_groups_find(gs, group);
    if (g && g->cg)
        g->cg->assignment_epoch = epoch ? *epoch : 0;
}

/* Fills s from the per-topic lists of a record (same layout in every
 * record type: topic id, partitions). */
static void load_set(srv_tps *s, const kp_uuid *ids, const int32_t *const *parts, const int32_t *counts,
                     int32_t n)
{
    s->n = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < (counts[i] > 0 ? counts[i] : 0); j++)
            if (srv_tps_add(s, ids[i], parts[i][j]))
                return;
}

#define LOAD_SET(set, arr, cnt)                                                                              \
    do {                                                                                                     \
        int32_t n_ = (cnt) > 0 ? (cnt) : 0;                                                                  \
        kp_uuid *ids_ = calloc((size_t)n_ + 1, sizeof(*ids_));                                               \
        const int32_t **ps_ = calloc((size_t)n_ + 1, sizeof(*ps_));                                          \
        int32_t *cs_ = calloc((size_t)n_ + 1, sizeof(*cs_));                                                 \
        if (ids_ && ps_ && cs_) {                                                                            \
            for (int32_t i_ = 0; i_ < n_; i_++) {                                                            \
                ids_[i_] = (arr)[i_].topic_id;                                                               \
                ps_[i_] = (arr)[i_].partitions;                                                              \
                cs_[i_] = (arr)[i_].partitions_count;                                                        \
            }                                                                                                \
            load_set((set), ids_, ps_, cs_, n_);                                                             \
        }                                                                                                    \
        free(ids_);                                                                                          \
        free(ps_);                                                                                           \
        free(cs_);                                                                                           \
    } while (0)

void srv_cgroup_load_target(srv_groups *gs, int32_t partition, kp_str group, kp_str member,
                            const kp_consumer_group_target_assignment_member_value *v)
{
    srv_group *g = v ? load_cgroup(gs, partition, group) : srv_groups_find(gs, group);
    if (!g || !g->cg)
        return;
    srv_cmember *m = load_member(g, member, v != NULL);
    if (!m)
        return;
    if (!v) {
        m->target.n = 0;
        return;
    }
    LOAD_SET(&m->target, v->topic_partitions, v->topic_partitions_count);
}

void srv_cgroup_load_current(srv_groups *gs, int32_t partition, kp_str group, kp_str member,
                             const kp_consumer_group_current_member_assignment_value *v)
{
    srv_group *g = v ? load_cgroup(gs, partition, group) : srv_groups_find(gs, group);
    if (!g || !g->cg)
        return;
    srv_cmember *m = load_member(g, member, v != NULL);
    if (!m)
        return;
    if (!v) {
        m->assigned.n = m->revoking.n = 0;
        m->epoch = m->prev_epoch = 0;
        m->state = SRV_CM_STABLE;
        return;
    }
    m->epoch = v->member_epoch;
    m->prev_epoch = v->previous_member_epoch;
    m->state = v->state == SRV_CM_UNREVOKED || v->state == SRV_CM_UNRELEASED ? v->state : SRV_CM_STABLE;
    LOAD_SET(&m->assigned, v->assigned_partitions, v->assigned_partitions_count);
    LOAD_SET(&m->revoking, v->partitions_pending_revocation, v->partitions_pending_revocation_count);
}

void srv_cgroup_load_regex(srv_groups *gs, int32_t partition, kp_str group, kp_str regex,
                           const kp_consumer_group_regular_expression_value *v)
{
    srv_group *g = v ? load_cgroup(gs, partition, group) : srv_groups_find(gs, group);
    if (!g || !g->cg)
        return;
    srv_cgroup *cg = g->cg;
    int j = 0;
    while (j < cg->nregexes && !srv_seq(regex, cg->regexes[j].regex))
        j++;
    if (j < cg->nregexes) {
        srv_sfree(cg->regexes[j].regex);
        free_subs(cg->regexes[j].topics, cg->regexes[j].ntopics);
        cg->regexes[j] = cg->regexes[--cg->nregexes];
    }
    if (!v)
        return;
    int32_t n = v->topics_count > 0 ? v->topics_count : 0;
    srv_cregex r = {0};
    r.regex = srv_sdup(regex);
    r.topics = calloc((size_t)n + 1, sizeof(*r.topics));
    int ok = r.regex && r.topics;
    for (int32_t i = 0; ok && i < n; i++) {
        if (!(r.topics[i] = srv_sdup(v->topics[i])))
            ok = 0;
        else
            r.ntopics++;
    }
    srv_cregex *nv = ok ? realloc(cg->regexes, ((size_t)cg->nregexes + 1) * sizeof(*nv)) : NULL;
    if (!nv) {
        srv_sfree(r.regex);
        free_subs(r.topics, r.ntopics);
        return;
    }
    if (r.ntopics > 1)
        qsort(r.topics, (size_t)r.ntopics, sizeof(*r.topics), cmp_str);
    cg->regexes = nv;
    cg->regexes[cg->nregexes++] = r;
    /* The versions are this process's: the first heartbeat resolves again
     * and writes only what changed. */
    cg->regex_version = 0;
}

void srv_cgroup_load_finish(srv_group *g)
{
    srv_cgroup *cg = g->cg;
    if (!cg)
        return;
    int64_t t = srv_groupi_now(g->gs);
    for (int i = 0; i < cg->nmembers;) {
        srv_cmember *m = cg->members[i];
        if (!m->client_id) {
            /* Assignment records without the member's own record: a member
             * whose removal was cut short; it is not part of the group. */
            remove_member_at(cg, i);
            continue;
        }
        /* Every member must heartbeat within a session, as after any restart. */
        m->session_deadline = t + (m->protocols ? m->classic_session_ms : session_ms(g->gs));
        m->rebalance_deadline =
            m->state == SRV_CM_UNREVOKED && m->rebalance_timeout_ms > 0 ? t + m->rebalance_timeout_ms : -1;
        i++;
    }
    srv_groupi_sync_consumer(g);
}

/*
 * partition.c — a shard's partitions: hash map, open/close as metadata
 * changes, periodic storage work, fetch waiters; with a quorum, which of
 * them this node leads, and for those replicated the followers' log ends,
 * the high watermark over the ISR and the acks=all produces waiting for it.
 *
 * Opening a log at run time (topic creation) happens on the shard thread and
 * may touch the disk (mkdir, open): creations are rare and the storage
 * engine's open is synchronous. Appends, syncs and reads never block here.
 */
#define _XOPEN_SOURCE 700
#include "partition.h"

#include <errno.h>
#include <event2/buffer.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fetch_wait.h"
#include "logging.h"
#include "meta.h"
#include "topic_config.h"
#include "srv_assert.h"

struct srv_partmap {
    srv_shard *s;
    srv_part **buckets;
    size_t nbuckets;
    size_t count;
    int offline_changed; /* an offline partition came or went: publish */
    size_t tick_next;    /* first bucket of the next tick's slice */
};

/* With many partitions each tick visits a slice of them, so every partition
 * is still seen about once a second (retention, segment.ms, idle memory,
 * waiter expiry) without the idle broker spending a fifth of a core on
 * 100,000 of them every 100 ms. Wake-ups on new data come from appends. */
#define TICK_ALL_BELOW 2048
#define TICK_SLICES    10

static size_t hash(const kp_uuid *id, int32_t p)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ id->b[i]) * 1099511628211ull;
    h = (h ^ (uint32_t)p) * 1099511628211ull;
    return (size_t)h;
}

srv_partmap *srv_partmap_new(srv_shard *s)
{
    srv_partmap *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return NULL;
    pm->s = s;
    pm->nbuckets = 256;
    pm->buckets = calloc(pm->nbuckets, sizeof(srv_part *));
    if (!pm->buckets) {
        free(pm);
        return NULL;
    }
    return pm;
}

srv_part *srv_partmap_get_replica(srv_partmap *pm, const kp_uuid *id, int32_t p)
{
    SRV_ON_SHARD(pm->s->id); /* a partition's log is its owner's alone */
    for (srv_part *x = pm->buckets[hash(id, p) & (pm->nbuckets - 1)]; x; x = x->next)
        if (x->partition == p && memcmp(x->topic_id.b, id->b, 16) == 0)
            return x;
    return NULL;
}

srv_part *srv_partmap_get(srv_partmap *pm, const kp_uuid *id, int32_t p)
{
    srv_part *x = srv_partmap_get_replica(pm, id, p);
    return x && x->leader ? x : NULL;
}

static void grow(srv_partmap *pm)
{
    size_t n = pm->nbuckets * 2;
    srv_part **nb = calloc(n, sizeof(srv_part *));
    if (!nb)
        return; /* stay at the old size: longer chains, still correct */
    for (size_t i = 0; i < pm->nbuckets; i++) {
        srv_part *x = pm->buckets[i];
        while (x) {
            srv_part *next = x->next;
            size_t h = hash(&x->topic_id, x->partition) & (n - 1);
            x->next = nb[h];
            nb[h] = x;
            x = next;
        }
    }
    free(pm->buckets);
    pm->buckets = nb;
    pm->nbuckets = n;
}

static void part_free(srv_part *p)
{
    while (p->waiters) {
        srv_part_waiter *w = p->waiters;
        p->waiters = w->next;
        free(w);
    }
    srv_txn_guards_free(&p->guards);
    free(p->topic);
    free(p);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        srv_warn("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

static void hw_answer(srv_shard *s, srv_part *p, int16_t error, int64_t now_ms);
static void lead_change(srv_shard *s, srv_part *x, int leader);

static srv_part *open_part(srv_partmap *pm, const srv_topic *t, int32_t p)
{
    srv_broker *b = pm->s->b;
    char dir[4096];
    st_log_config lc;
    srv_topic_st_config(&b->cfg, t, &lc);
    /* The epoch cache costs a read per batch at open: only replicated
     * partitions of a cluster need it (OffsetForLeaderEpoch, truncation). */
    const srv_part_repl *repl = b->quorum ? srv_topic_repl(t, p) : NULL;
    lc.leader_epochs = repl && repl->nreplicas > 1;
    srv_part *x = calloc(1, sizeof(*x));
    if (!x || !(x->topic = strdup(t->name))) {
        free(x);
        srv_error("out of memory opening %s-%d", t->name, p);
        return NULL;
    }
    int rc = st_partition_dir(dir, sizeof(dir), b->cfg.log_dirs[0], t->name, p);
    if (rc == 0)
        rc = st_log_open(pm->s->io, dir, &lc, &x->log);
    if (rc) {
        /* Listed anyway, offline: clients get KAFKA_STORAGE_ERROR for it
         * (not "unknown", which they would retry forever) until the cause is
         * fixed and the broker restarted. */
        x->log = NULL;
        x->open_rc = rc;
        pm->offline_changed = 1;
        srv_error("partition %s-%d is offline (KAFKA_STORAGE_ERROR): cannot open %s: %s", t->name, p, dir,
                  st_strerror(rc));
    }
    x->topic_id = t->id;
    x->partition = p;
    x->last_hwm = x->log ? st_log_high_watermark(x->log) : 0;
    if (pm->count + 1 > pm->nbuckets)
        grow(pm);
    size_t h = hash(&t->id, p) & (pm->nbuckets - 1);
    x->next = pm->buckets[h];
    pm->buckets[h] = x;
    pm->count++;
    return x;
}

void srv_offline_set_unref(srv_offline_set *o)
{
    if (o && __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(o);
}

int srv_part_reported_offline(const srv_shard *s, const kp_uuid *id, int32_t p)
{
    const srv_offline_set *o = s->offline ? s->offline[srv_partition_owner(s->b->nshards, id, p)] : NULL;
    for (int i = 0; o && i < o->n; i++)
        if (o->e[i].partition == p && memcmp(o->e[i].topic_id.b, id->b, 16) == 0)
            return 1;
    return 0;
}

typedef struct offline_msg {
    srv_msg msg;
    int owner;
    srv_offline_set *set; /* one reference, handed to the receiver */
} offline_msg;

static void on_offline(srv_shard *s, srv_msg *m)
{
    offline_msg *om = (offline_msg *)m;
    srv_offline_set_unref(s->offline[om->owner]);
    s->offline[om->owner] = om->set;
    free(om);
}

/* Tells every shard (Metadata runs on any) which of ours are offline. */
static void publish_offline(srv_partmap *pm)
{
    srv_shard *s = pm->s;
    int n = 0;
    for (size_t i = 0; i < pm->nbuckets; i++)
        for (srv_part *x = pm->buckets[i]; x; x = x->next)
            n += srv_part_offline(x);
    srv_offline_set *o = malloc(sizeof(*o) + (size_t)n * sizeof(o->e[0]));
    if (!o)
        return; /* stays marked: retried at the next reconcile */
    o->n = 0;
    o->refs = s->b->nshards;
    for (size_t i = 0; i < pm->nbuckets; i++)
        for (srv_part *x = pm->buckets[i]; x; x = x->next)
            if (srv_part_offline(x)) {
                o->e[o->n].topic_id = x->topic_id;
                o->e[o->n].partition = x->partition;
                o->n++;
            }
    pm->offline_changed = 0;
    for (int to = 0; to < s->b->nshards; to++) {
        offline_msg *m = malloc(sizeof(*m));
        if (!m) {
            srv_offline_set_unref(o);
            pm->offline_changed = 1;
            continue;
        }
        m->msg.fn = on_offline;
        m->owner = s->id;
        m->set = o;
        srv_shard_send(s, to, &m->msg);
    }
}

void srv_partmap_reconcile(srv_partmap *pm, const srv_meta *m)
{
    srv_shard *s = pm->s;
    /* Gone topics (deleted): close the log and remove the directory. */
    for (size_t i = 0; i < pm->nbuckets; i++) {
        srv_part **pp = &pm->buckets[i];
        while (*pp) {
            srv_part *x = *pp;
            const srv_topic *t = srv_meta_topic_by_id(m, &x->topic_id);
            if (t && x->partition < t->nparts) {
                pp = &x->next;
                continue;
            }
            *pp = x->next;
            pm->count--;
            char dir[4096];
            st_partition_dir(dir, sizeof(dir), s->b->cfg.log_dirs[0], x->topic, x->partition);
            srv_part_wake(s, x); /* waiting fetches re-check and see the topic gone */
            hw_answer(s, x, KP_ERR_NOT_LEADER_OR_FOLLOWER, s->now_ms);
            if (x->log)
                st_log_close(x->log);
            else
                pm->offline_changed = 1;
            nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            srv_info("partition %s-%d deleted", x->topic, x->partition);
            part_free(x);
        }
    }
    for (int i = 0; i < m->ntopics; i++) {
        const srv_topic *t = &m->topics[i];
        st_log_config lc;
        srv_topic_st_config(&s->b->cfg, t, &lc);
        for (int32_t p = 0; p < t->nparts; p++) {
            if (srv_partition_owner(s->b->nshards, &t->id, p) != s->id)
                continue;
            int32_t self = s->b->cfg.node_id;
            if (!srv_topic_is_replica(t, p, self))
                continue;
            srv_part *x = srv_partmap_get_replica(pm, &t->id, p);
            if (!x)
                x = open_part(pm, t, p);
            else if (x->log)
                st_log_set_config(x->log, &lc); /* configs may have changed */
            if (!x)
                continue;
            lead_change(s, x, srv_topic_leader(t, p, self) == self);
            /* A placed partition's leader stamps its epoch into what it
             * appends (followers keep the stamps they fetch). */
            const srv_part_repl *r = srv_topic_repl(t, p);
            if (x->log)
                st_log_set_leader_epoch(x->log, x->leader && r ? r->leader_epoch : -1);
        }
    }
    if (pm->offline_changed)
        publish_offline(pm);
}

void srv_partmap_each(srv_partmap *pm, void (*fn)(srv_part *p, void *arg), void *arg)
{
    for (size_t i = 0; i < pm->nbuckets; i++)
        for (srv_part *x = pm->buckets[i]; x; x = x->next)
            fn(x, arg);
}

const srv_part_repl *srv_part_replicated(const srv_shard *s, const srv_part *p)
{
    if (!p->leader || !p->log)
        return NULL;
    const srv_topic *t = srv_meta_topic_by_id(s->meta, &p->topic_id);
    const srv_part_repl *r = t ? srv_topic_repl(t, p->partition) : NULL;
    return r && r->nreplicas > 1 ? r : NULL;
}

static int64_t compute_hw(srv_shard *s, srv_part *p, const srv_part_repl *r)
{
    int64_t hw = st_log_high_watermark(p->log);
    for (int i = 0; i < r->nisr; i++) {
        if (r->isr[i] == s->b->cfg.node_id)
            continue;
        int64_t leo = 0; /* not heard from since this node leads: holds the HW */
        for (int k = 0; k < p->nfollowers; k++)
            if (p->followers[k].id == r->isr[i])
                leo = p->followers[k].leo;
        if (leo < hw)
            hw = leo;
    }
    return hw > p->hw ? hw : p->hw;
}

static void hw_answer(srv_shard *s, srv_part *p, int16_t error, int64_t now_ms)
{
    srv_hw_wait **wp = &p->hw_waits;
    while (*wp) {
        srv_hw_wait *w = *wp;
        int16_t e = error                      ? error
                    : w->end <= p->hw          ? 0
                    : now_ms >= w->deadline_ms ? KP_ERR_REQUEST_TIMED_OUT
                                               : -1;
        if (e < 0) {
            wp = &w->next;
            continue;
        }
        *wp = w->next;
        w->done(s, w, e);
    }
}

/* A new leader starts from the high watermark it knew as a follower and
 * learns its followers from their fetches; one that stops leading answers
 * the produces that waited on it. */
static void lead_change(srv_shard *s, srv_part *x, int leader)
{
    if (leader && !x->leader) {
        x->hw = x->follower_hw;
        x->nfollowers = 0;
    } else if (!leader && x->leader) {
        hw_answer(s, x, KP_ERR_NOT_LEADER_OR_FOLLOWER, s->now_ms);
    }
    x->leader = leader;
}

void srv_part_hw_advance(srv_shard *s, srv_part *p)
{
    const srv_part_repl *r = srv_part_replicated(s, p);
    if (!r)
        return;
    int64_t hw = compute_hw(s, p, r);
    if (hw == p->hw)
        return;
    p->hw = hw;
    hw_answer(s, p, 0, s->now_ms);
    if (p->waiters)
        srv_part_wake(s, p);
}

void srv_part_hw_wait(srv_shard *s, srv_part *p, srv_hw_wait *w)
{
    w->next = p->hw_waits;
    p->hw_waits = w;
    if (!srv_part_replicated(s, p)) {
        hw_answer(s, p, KP_ERR_NOT_LEADER_OR_FOLLOWER, s->now_ms);
        return;
    }
    p->hw = compute_hw(s, p, srv_part_replicated(s, p));
    hw_answer(s, p, 0, s->now_ms);
}

int64_t srv_part_consumer_hw(srv_shard *s, srv_part *p)
{
    const srv_part_repl *r = srv_part_replicated(s, p);
    if (!r)
        return -1;
    p->hw = compute_hw(s, p, r);
    return p->hw;
}

void srv_part_follower_fetched(srv_shard *s, srv_part *p, int32_t replica, int64_t offset)
{
    srv_follower *f = NULL;
    for (int i = 0; i < p->nfollowers && !f; i++)
        if (p->followers[i].id == replica)
            f = &p->followers[i];
    if (!f) {
        if (p->nfollowers == SRV_RF_MAX)
            return; /* not a replica: placement holds at most SRV_RF_MAX */
        f = &p->followers[p->nfollowers++];
        f->id = replica;
        f->caught_up_ms = 0;
    }
    f->leo = offset;
    if (p->log && offset >= st_log_end_offset(p->log))
        f->caught_up_ms = s->now_ms;
    srv_part_hw_advance(s, p);
}

void srv_partmap_tick(srv_partmap *pm, int64_t now_ms)
{
    size_t from = 0, to = pm->nbuckets;
    if (pm->count >= TICK_ALL_BELOW) {
        size_t step = (pm->nbuckets + TICK_SLICES - 1) / TICK_SLICES;
        from = pm->tick_next < pm->nbuckets ? pm->tick_next : 0;
        to = from + step < pm->nbuckets ? from + step : pm->nbuckets;
        pm->tick_next = to;
    }
    for (size_t i = from; i < to; i++)
        for (srv_part *x = pm->buckets[i]; x; x = x->next) {
            if (!x->log)
                continue;
            st_log_tick(x->log, now_ms);
            if (x->leader && (x->hw_waits || x->nfollowers)) {
                srv_part_hw_advance(pm->s, x);
                hw_answer(pm->s, x, 0, now_ms); /* timeouts */
            }
            int64_t hwm = st_log_high_watermark(x->log);
            if (hwm != x->last_hwm && x->waiters)
                srv_part_wake(pm->s, x);
            x->last_hwm = hwm;
            /* Fetches that answered at their max wait leave waiters behind. */
            srv_part_waiter **wp = &x->waiters;
            while (*wp) {
                if ((*wp)->expire_ms < now_ms) {
                    srv_part_waiter *w = *wp;
                    *wp = w->next;
                    free(w);
                } else {
                    wp = &(*wp)->next;
                }
            }
        }
}

void srv_partmap_print_metrics(srv_partmap *pm, struct evbuffer *out)
{
    for (size_t i = 0; i < pm->nbuckets; i++)
        for (srv_part *x = pm->buckets[i]; x; x = x->next) {
            if (!x->log)
                continue;
            const char *t = x->topic;
            int p = x->partition;
            evbuffer_add_printf(out, "kbroker_partition_log_end_offset{topic=\"%s\",partition=\"%d\"} %lld\n",
                                t, p, (long long)st_log_end_offset(x->log));
            evbuffer_add_printf(out, "kbroker_partition_high_watermark{topic=\"%s\",partition=\"%d\"} %lld\n",
                                t, p, (long long)st_log_high_watermark(x->log));
            evbuffer_add_printf(out,
                                "kbroker_partition_log_start_offset{topic=\"%s\",partition=\"%d\"} %lld\n", t,
                                p, (long long)st_log_start_offset(x->log));
            evbuffer_add_printf(out, "kbroker_partition_size_bytes{topic=\"%s\",partition=\"%d\"} %lld\n", t,
                                p, (long long)st_log_size_bytes(x->log));
        }
}

void srv_partmap_each_open(srv_partmap *pm, void (*fn)(void *arg, const srv_part *p), void *arg)
{
    for (size_t i = 0; i < pm->nbuckets; i++)
        for (srv_part *x = pm->buckets[i]; x; x = x->next)
            if (x->log)
                fn(arg, x);
}

void srv_partmap_drain(srv_partmap *pm)
{
    if (!pm)
        return;
    /* The controller publishes nothing while the broker drains, so no
     * callback changes this map while it is walked. A callback may append to
     * another log: one already drained refuses at once, another is drained
     * in its turn. */
    for (size_t i = 0; i < pm->nbuckets; i++)
        for (srv_part *x = pm->buckets[i]; x; x = x->next)
            if (x->log) {
                int rc = st_log_drain(x->log);
                if (rc)
                    srv_error("draining %s-%d: %s", x->topic, (int)x->partition, st_strerror(rc));
                hw_answer(pm->s, x, KP_ERR_NOT_LEADER_OR_FOLLOWER, pm->s->now_ms);
            }
}

void srv_partmap_free(srv_partmap *pm)
{
    if (!pm)
        return;
    /* All at once: two syncfs() instead of fsyncs per partition (a stop
     * with 100,000 partitions took minutes). */
    st_log **logs = malloc((pm->count ? pm->count : 1) * sizeof(*logs));
    size_t n = 0;
    for (size_t i = 0; i < pm->nbuckets; i++) {
        srv_part *x = pm->buckets[i];
        while (x) {
            srv_part *next = x->next;
            if (x->log && logs)
                logs[n++] = x->log;
            else if (x->log)
                st_log_close(x->log);
            part_free(x);
            x = next;
        }
    }
    if (n > 0) {
        int rc = st_log_close_all(logs, n);
        if (rc)
            srv_error("closing partitions: %s (they will be recovered at the next start)", st_strerror(rc));
    }
    free(logs);
    free(pm->buckets);
    free(pm);
}

void srv_part_add_waiter(srv_shard *s, srv_part *p, int shard, uint64_t wait_id, int64_t expire_ms)
{
    SRV_ON_SHARD(s->id);
    srv_part_waiter *w = malloc(sizeof(*w));
    if (!w)
        return; /* the fetch still answers at its max wait */
    w->shard = shard;
    w->wait_id = wait_id;
    w->expire_ms = expire_ms;
    w->next = p->waiters;
    p->waiters = w;
}

void srv_part_wake(srv_shard *s, srv_part *p)
{
    SRV_ON_SHARD(s->id);
    srv_part_waiter *w = p->waiters;
    p->waiters = NULL;
    if (p->log)
        p->last_hwm = st_log_high_watermark(p->log);
    while (w) {
        srv_part_waiter *next = w->next;
        /* Wakes come from storage callbacks: notify never runs them inline. */
        srv_fetch_wait_notify(s, w->shard, w->wait_id);
        free(w);
        w = next;
    }
}

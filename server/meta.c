/*
 * meta.c — metadata versions: the immutable, reference-counted snapshots
 * shards read, their lookups, and the derivation of a new version from an
 * old one (the controller's only way to change metadata).
 *
 * Owns nothing on disk and no shard state. Must not: change a version once
 * it is published (readers on every shard hold it without locks).
 */
#include "srv_assert.h"
#include "meta.h"
#include "scram_store.h"
#include "dyncfg.h"
#include "quota.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- versions ---------------------------------------------------------- */

srv_meta *srv_meta_new_empty(void)
{
    srv_meta *m = calloc(1, sizeof(*m));
    if (m)
        m->refs = 1;
    return m;
}

srv_meta *srv_meta_ref(srv_meta *m)
{
    /* Only a holder may take another reference: from 0 the version is freed. */
    int r = __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    SRV_ASSERT(r > 1, "metadata version %p referenced after its last unref (refs now %d)", (void *)m, r);
    return m;
}

void srv_topic_free(srv_topic *t)
{
    free(t->name);
    for (int i = 0; i < t->ncfg; i++) {
        free(t->cfg[i].key);
        free(t->cfg[i].value);
    }
    free(t->cfg);
    free(t->leaders);
    t->leaders = NULL;
    free(t->repl);
    t->repl = NULL;
}

void srv_meta_unref(srv_meta *m)
{
    int r = __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL);
    SRV_ASSERT(r >= 0, "metadata version %p unreferenced once too often (refs now %d)", (void *)m, r);
    if (r != 0)
        return;
    for (int i = 0; i < m->ntopics; i++)
        srv_topic_free(&m->topics[i]);
    free(m->topics);
    free(m->by_id);
    srv_scram_set_unref(m->scram);
    srv_quota_set_unref(m->quotas);
    srv_acl_set_unref(m->acls);
    srv_dyncfg_unref(m->dyncfg);
    srv_dyncfg_unref(m->groupcfg);
    free(m->brokers);
    free(m);
}

int32_t srv_topic_leader(const srv_topic *t, int32_t p, int32_t self)
{
    return t->leaders && p >= 0 && p < t->nparts ? t->leaders[p] : self;
}

int srv_topic_is_replica(const srv_topic *t, int32_t p, int32_t node)
{
    const srv_part_repl *r = srv_topic_repl(t, p);
    if (!r)
        return !t->leaders || (p >= 0 && p < t->nparts && t->leaders[p] == node);
    for (int i = 0; i < r->nreplicas; i++)
        if (r->replicas[i] == node)
            return 1;
    return 0;
}

const srv_part_repl *srv_topic_repl(const srv_topic *t, int32_t p)
{
    return t->repl && p >= 0 && p < t->nparts ? &t->repl[p] : NULL;
}

const srv_broker_reg *srv_meta_broker(const srv_meta *m, int32_t id)
{
    for (int i = 0; i < m->nbrokers; i++)
        if (m->brokers[i].id == id)
            return &m->brokers[i];
    return NULL;
}

static int name_cmp(kp_str a, const char *b)
{
    size_t bl = strlen(b);
    size_t n = (size_t)a.len < bl ? (size_t)a.len : bl;
    int c = memcmp(a.p, b, n);
    if (c)
        return c;
    return (size_t)a.len < bl ? -1 : (size_t)a.len > bl ? 1 : 0;
}

const srv_topic *srv_meta_topic(const srv_meta *m, kp_str name)
{
    if (name.len < 0)
        return NULL;
    int lo = 0, hi = m->ntopics - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = name_cmp(name, m->topics[mid].name);
        if (c == 0)
            return &m->topics[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const srv_topic *srv_meta_topic_by_id(const srv_meta *m, const kp_uuid *id)
{
    if (!m->by_id) {
        for (int i = 0; i < m->ntopics; i++)
            if (memcmp(m->topics[i].id.b, id->b, 16) == 0)
                return &m->topics[i];
        return NULL;
    }
    int lo = 0, hi = m->ntopics - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const srv_topic *t = &m->topics[m->by_id[mid]];
        int c = memcmp(id->b, t->id.b, 16);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* qsort has no context argument: the array being indexed, per thread. */
static __thread const srv_topic *index_topics;

static int cmp_by_id(const void *a, const void *b)
{
    return memcmp(index_topics[*(const int *)a].id.b, index_topics[*(const int *)b].id.b, 16);
}

/* Lookups by id (every partition of every request, and each partition at
 * each metadata change) were a scan of all topics: quadratic with 100,000. */
void srv_meta_index(srv_meta *m)
{
    free(m->by_id);
    m->by_id = m->ntopics ? malloc((size_t)m->ntopics * sizeof(int)) : NULL;
    if (!m->by_id)
        return; /* linear lookups: slower, still correct */
    for (int i = 0; i < m->ntopics; i++)
        m->by_id[i] = i;
    index_topics = m->topics;
    qsort(m->by_id, (size_t)m->ntopics, sizeof(int), cmp_by_id);
}

const char *srv_topic_cfg_get(const srv_topic *t, const char *key)
{
    for (int i = 0; i < t->ncfg; i++)
        if (strcmp(t->cfg[i].key, key) == 0)
            return t->cfg[i].value;
    return NULL;
}

int srv_partition_owner(int nshards, const kp_uuid *id, int32_t partition)
{
    /* FNV-1a over the topic id, then the partition: consecutive partitions of
     * one topic land on consecutive shards. */
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ id->b[i]) * 16777619u;
    return (int)((h + (uint32_t)partition) % (uint32_t)nshards);
}

int srv_topic_is_internal(kp_str name)
{
    return kp_str_eq(name, "__consumer_offsets") || kp_str_eq(name, "__transaction_state") ||
           kp_str_eq(name, "__share_group_state");
}

int srv_topic_name_valid(kp_str name)
{
    if (name.len <= 0 || name.len > SRV_TOPIC_NAME_MAX)
        return 0;
    if ((name.len == 1 && name.p[0] == '.') || (name.len == 2 && name.p[0] == '.' && name.p[1] == '.'))
        return 0;
    for (int32_t i = 0; i < name.len; i++) {
        char c = name.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int srv_topic_copy(srv_topic *dst, const srv_topic *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->name = strdup(src->name);
    dst->id = src->id;
    dst->nparts = src->nparts;
    dst->cfg = src->ncfg ? calloc((size_t)src->ncfg, sizeof(*dst->cfg)) : NULL;
    if (!dst->name || (src->ncfg && !dst->cfg))
        return -ENOMEM;
    if (src->leaders) {
        dst->leaders = malloc(sizeof(int32_t) * (size_t)src->nparts);
        if (!dst->leaders)
            return -ENOMEM;
        memcpy(dst->leaders, src->leaders, sizeof(int32_t) * (size_t)src->nparts);
    }
    if (src->repl) {
        dst->repl = malloc(sizeof(*dst->repl) * (size_t)src->nparts);
        if (!dst->repl)
            return -ENOMEM;
        memcpy(dst->repl, src->repl, sizeof(*dst->repl) * (size_t)src->nparts);
    }
    for (int i = 0; i < src->ncfg; i++) {
        dst->cfg[i].key = strdup(src->cfg[i].key);
        dst->cfg[i].value = strdup(src->cfg[i].value);
        dst->ncfg++;
        if (!dst->cfg[i].key || !dst->cfg[i].value)
            return -ENOMEM;
    }
    return 0;
}

/* A new version: `base` with `upsert` replacing or adding its topic (by id)
 * and `remove` (an id) taken out. */
srv_meta *srv_meta_derive(const srv_meta *base, const srv_topic *upsert, const kp_uuid *remove)
{
    srv_meta *m = srv_meta_new_empty();
    if (!m)
        return NULL;
    m->version = base->version + 1;
    m->quotas = base->quotas ? srv_quota_set_ref(base->quotas) : NULL;
    m->topics = calloc((size_t)base->ntopics + 1, sizeof(srv_topic));
    if (!m->topics) {
        srv_quota_set_unref(m->quotas);
        free(m);
        return NULL;
    }
    int inserted = 0;
    for (int i = 0; i < base->ntopics; i++) {
        const srv_topic *t = &base->topics[i];
        if (remove && memcmp(t->id.b, remove->b, 16) == 0)
            continue;
        if (upsert && memcmp(t->id.b, upsert->id.b, 16) == 0)
            continue;
        if (upsert && !inserted && strcmp(upsert->name, t->name) < 0) {
            if (srv_topic_copy(&m->topics[m->ntopics++], upsert))
                goto fail;
            inserted = 1;
        }
        if (srv_topic_copy(&m->topics[m->ntopics++], t))
            goto fail;
    }
    if (upsert && !inserted && srv_topic_copy(&m->topics[m->ntopics++], upsert))
        goto fail;
    srv_meta_index(m);
    m->scram = srv_scram_set_ref(base->scram);
    m->acls = base->acls ? srv_acl_set_ref(base->acls) : NULL;
    m->dyncfg = srv_dyncfg_ref(base->dyncfg);
    m->groupcfg = srv_dyncfg_ref(base->groupcfg);
    if (base->nbrokers) {
        m->brokers = malloc(sizeof(*m->brokers) * (size_t)base->nbrokers);
        if (!m->brokers)
            goto fail;
        memcpy(m->brokers, base->brokers, sizeof(*m->brokers) * (size_t)base->nbrokers);
        m->nbrokers = base->nbrokers;
    }
    return m;
fail:
    srv_meta_unref(m);
    return NULL;
}

srv_meta *srv_meta_with_scram(const srv_meta *base, struct srv_scram_set *scram)
{
    srv_meta *m = srv_meta_derive(base, NULL, NULL);
    if (!m)
        return NULL;
    srv_scram_set_unref(m->scram);
    m->scram = srv_scram_set_ref(scram);
    return m;
}

srv_meta *srv_meta_with_quotas(const srv_meta *base, struct srv_quota_set *q)
{
    /* Copies every topic: quota changes are rare next to the reads that
     * sharing one immutable version spares. */
    srv_meta *m = srv_meta_derive(base, NULL, NULL);
    if (!m)
        return NULL;
    srv_quota_set_unref(m->quotas);
    m->quotas = q ? srv_quota_set_ref(q) : NULL;
    return m;
}

srv_meta *srv_meta_derive_acls(const srv_meta *base, srv_acl_set *acls)
{
    srv_meta *m = srv_meta_derive(base, NULL, NULL);
    if (!m)
        return NULL;
    srv_acl_set_unref(m->acls);
    m->acls = acls ? srv_acl_set_ref(acls) : NULL;
    return m;
}

srv_meta *srv_meta_with_dyncfg(const srv_meta *base, struct srv_dyncfg *d)
{
    srv_meta *m = srv_meta_derive(base, NULL, NULL);
    if (!m)
        return NULL;
    srv_dyncfg_unref(m->dyncfg);
    m->dyncfg = srv_dyncfg_ref(d);
    return m;
}

srv_meta *srv_meta_with_groupcfg(const srv_meta *base, struct srv_dyncfg *d)
{
    srv_meta *m = srv_meta_derive(base, NULL, NULL);
    if (!m)
        return NULL;
    srv_dyncfg_unref(m->groupcfg);
    m->groupcfg = srv_dyncfg_ref(d);
    return m;
}

/*
 * meta.c — metadata versions, the metadata log, and the controller that
 * applies topic changes.
 *
 * Owns `<log.dir>/__cluster_metadata-0/`: a compacted partition log (the
 * storage engine's own) whose records are keyed by topic id and hold the
 * full state of one topic, or a tombstone when it is deleted. Compaction
 * keeps exactly the latest state per topic, so the compacted log *is* the
 * snapshot and replay is bounded by the number of topics plus recent changes.
 *
 * Must not: be written from any shard but 0, or hand out a version that is
 * not yet durable: a change is appended, synced, then published.
 */
#include "srv_assert.h"
#include "meta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "batch.h"
#include "errors.h"
#include "logging.h"
#include "partition.h"
#include "sstr.h"
#include "st_log.h"
#include "topic_config.h"

#define META_RECORD_VERSION 0

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
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

static void topic_free(srv_topic *t)
{
    free(t->name);
    for (int i = 0; i < t->ncfg; i++) {
        free(t->cfg[i].key);
        free(t->cfg[i].value);
    }
    free(t->cfg);
}

void srv_meta_unref(srv_meta *m)
{
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (int i = 0; i < m->ntopics; i++)
        topic_free(&m->topics[i]);
    free(m->topics);
    free(m->by_id);
    free(m);
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
static void meta_index(srv_meta *m)
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
    return kp_str_eq(name, "__consumer_offsets") || kp_str_eq(name, "__transaction_state");
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

static int topic_copy(srv_topic *dst, const srv_topic *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->name = strdup(src->name);
    dst->id = src->id;
    dst->nparts = src->nparts;
    dst->cfg = src->ncfg ? calloc((size_t)src->ncfg, sizeof(*dst->cfg)) : NULL;
    if (!dst->name || (src->ncfg && !dst->cfg))
        return -ENOMEM;
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
static srv_meta *meta_derive(const srv_meta *base, const srv_topic *upsert, const kp_uuid *remove)
{
    srv_meta *m = srv_meta_new_empty();
    if (!m)
        return NULL;
    m->version = base->version + 1;
    m->topics = calloc((size_t)base->ntopics + 1, sizeof(srv_topic));
    if (!m->topics) {
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
            if (topic_copy(&m->topics[m->ntopics++], upsert))
                goto fail;
            inserted = 1;
        }
        if (topic_copy(&m->topics[m->ntopics++], t))
            goto fail;
    }
    if (upsert && !inserted && topic_copy(&m->topics[m->ntopics++], upsert))
        goto fail;
    meta_index(m);
    return m;
fail:
    srv_meta_unref(m);
    return NULL;
}

/* ---- records of the metadata log --------------------------------------- */

static int encode_topic(kp_writer *w, const srv_topic *t)
{
    kp_write_i8(w, META_RECORD_VERSION);
    kp_write_string(w, kp_str_c(t->name));
    kp_write_uuid(w, &t->id);
    kp_write_i32(w, t->nparts);
    kp_write_i32(w, t->ncfg);
    for (int i = 0; i < t->ncfg; i++) {
        kp_write_string(w, kp_str_c(t->cfg[i].key));
        kp_write_string(w, kp_str_c(t->cfg[i].value));
    }
    return w->err;
}

static int decode_topic(const uint8_t *p, size_t n, srv_topic *t)
{
    kp_reader r;
    kp_reader_init(&r, p, n);
    int8_t ver = 0;
    kp_str name = KP_STR_NULL;
    int32_t ncfg = 0;
    memset(t, 0, sizeof(*t));
    if (kp_read_i8(&r, &ver) || ver != META_RECORD_VERSION || kp_read_string(&r, &name) || name.len <= 0 ||
        kp_read_uuid(&r, &t->id) || kp_read_i32(&r, &t->nparts) || kp_read_i32(&r, &ncfg) || ncfg < 0 ||
        (size_t)ncfg > kp_reader_left(&r) / 4 || t->nparts <= 0)
        return KP_E_INVALID;
    t->name = srv_cdup(name);
    t->cfg = ncfg ? calloc((size_t)ncfg, sizeof(*t->cfg)) : NULL;
    if (!t->name || (ncfg && !t->cfg)) {
        topic_free(t);
        return KP_E_NOMEM;
    }
    for (int32_t i = 0; i < ncfg; i++) {
        kp_str k = KP_STR_NULL, v = KP_STR_NULL;
        if (kp_read_string(&r, &k) || kp_read_string(&r, &v) || k.len < 0 || v.len < 0) {
            topic_free(t);
            return KP_E_INVALID;
        }
        t->cfg[i].key = srv_cdup(k);
        t->cfg[i].value = srv_cdup(v);
        t->ncfg++;
    }
    return 0;
}

/* ---- the controller ---------------------------------------------------- */

typedef struct srv_controller {
    srv_broker *b;
    st_log *log;
    srv_meta *cur;
    srv_ctl_op *head, *tail; /* queued operations, applied one at a time */
    int busy;
} srv_controller;

/* Replay applies records to a mutable table and builds one version at the
 * end: deriving a version per record copied every topic each time, which
 * made a start with 25,000 topics take tens of seconds. */
typedef struct replay_table {
    srv_topic *t; /* name NULL: removed */
    int n, cap;
    int *slot; /* open addressing on the id: index + 1, 0 = empty */
    size_t nslots;
} replay_table;

typedef struct replay_state {
    srv_meta *m;
    int64_t next;
    int rc;
    int done;
    replay_table tab;
} replay_state;

static size_t id_hash(const kp_uuid *id)
{
    uint64_t h;
    memcpy(&h, id->b, 8);
    return (size_t)(h * 0x9E3779B97F4A7C15ull);
}

static int *table_find(replay_table *tb, const kp_uuid *id)
{
    size_t mask = tb->nslots - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        int *s = &tb->slot[i];
        if (*s == 0 || memcmp(tb->t[*s - 1].id.b, id->b, 16) == 0)
            return s;
    }
}

static int table_grow(replay_table *tb)
{
    if (tb->n + 1 < tb->cap && (size_t)(tb->n + 1) * 2 < tb->nslots)
        return 0;
    int ncap = tb->cap ? tb->cap * 2 : 1024;
    srv_topic *nt = realloc(tb->t, (size_t)ncap * sizeof(*nt));
    if (!nt)
        return KP_E_NOMEM;
    tb->t = nt;
    tb->cap = ncap;
    size_t ns = (size_t)ncap * 4;
    int *slots = calloc(ns, sizeof(int));
    if (!slots)
        return KP_E_NOMEM;
    free(tb->slot);
    tb->slot = slots;
    tb->nslots = ns;
    for (int i = 0; i < tb->n; i++)
        *table_find(tb, &tb->t[i].id) = i + 1; /* removed entries keep their id: still found */
    return 0;
}

/* Takes t (moved in) or, with t NULL, removes id. */
static int table_apply(replay_table *tb, const kp_uuid *id, srv_topic *t)
{
    if (table_grow(tb))
        return KP_E_NOMEM;
    int *s = table_find(tb, id);
    if (*s) {
        srv_topic *old = &tb->t[*s - 1];
        topic_free(old);
        memset(old, 0, sizeof(*old));
        old->id = *id;
        if (t)
            *old = *t;
        return 0;
    }
    if (!t)
        return 0;
    tb->t[tb->n] = *t;
    *s = ++tb->n;
    return 0;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const srv_topic *)a)->name, ((const srv_topic *)b)->name);
}

/* The table's live topics become st->m (sorted by name, indexed by id). */
static int table_finish(replay_state *st)
{
    replay_table *tb = &st->tab;
    srv_meta *m = srv_meta_new_empty();
    if (!m)
        return KP_E_NOMEM;
    m->topics = calloc((size_t)tb->n + 1, sizeof(srv_topic));
    if (!m->topics) {
        free(m);
        return KP_E_NOMEM;
    }
    for (int i = 0; i < tb->n; i++)
        if (tb->t[i].name)
            m->topics[m->ntopics++] = tb->t[i];
    qsort(m->topics, (size_t)m->ntopics, sizeof(srv_topic), cmp_by_name);
    meta_index(m);
    free(tb->t);
    free(tb->slot);
    memset(tb, 0, sizeof(*tb));
    srv_meta_unref(st->m);
    st->m = m;
    return 0;
}

static void table_free(replay_table *tb)
{
    for (int i = 0; i < tb->n; i++)
        topic_free(&tb->t[i]);
    free(tb->t);
    free(tb->slot);
    memset(tb, 0, sizeof(*tb));
}

static void replay_apply_batch(replay_state *st, const kp_batch *b)
{
    if (b->h.attributes & KP_ATTR_CODEC_MASK) {
        st->rc = KP_E_UNSUPPORTED; /* we never compress the metadata log */
        return;
    }
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, &b->h, b->records, b->records_size);
    while (kp_record_iter_next(&it, &rec) == 1) {
        if (rec.key.len != 17 || rec.key.p[0] != 'T')
            continue;
        kp_uuid id;
        memcpy(id.b, rec.key.p + 1, 16);
        int rc;
        if (rec.value.len < 0) {
            rc = table_apply(&st->tab, &id, NULL);
        } else {
            srv_topic t;
            if (decode_topic(rec.value.p, (size_t)rec.value.len, &t)) {
                srv_warn("metadata log: undecodable topic record at offset %lld skipped",
                         (long long)rec.offset);
                continue;
            }
            rc = table_apply(&st->tab, &t.id, &t);
            if (rc)
                topic_free(&t);
        }
        if (rc) {
            st->rc = rc;
            return;
        }
    }
    st->next = b->h.base_offset + b->h.last_offset_delta + 1;
}

static void replay_cb(void *arg, const st_read_result *res)
{
    replay_state *st = arg;
    st->done = 1;
    if (res->rc) {
        st->rc = res->rc;
        return;
    }
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, res->data, res->len, 0);
    while (st->rc == 0 && kp_batch_iter_next(&it, &b) == 1)
        replay_apply_batch(st, &b);
    if (res->len == 0)
        st->next = res->high_watermark;
}

int srv_controller_open(srv_broker *b)
{
    srv_controller *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->b = b;
    b->ctl = c;
    char dir[4096];
    int rc = st_partition_dir(dir, sizeof(dir), b->cfg.log_dirs[0], "__cluster_metadata", 0);
    if (rc)
        return rc;
    st_log_config lc;
    st_log_config_default(&lc);
    lc.compact = 1;
    lc.retention_ms = -1;
    lc.segment_bytes = 16u << 20;
    rc = st_log_open(b->shards[0].io, dir, &lc, &c->log);
    if (rc) {
        srv_error("cannot open metadata log %s: %s", dir, st_strerror(rc));
        return rc;
    }
    replay_state st = {srv_meta_new_empty(), st_log_start_offset(c->log), 0, 0, {0}};
    if (!st.m)
        return -ENOMEM;
    while (st.rc == 0 && st.next < st_log_high_watermark(c->log)) {
        st.done = 0;
        int64_t before = st.next;
        rc = st_log_read(c->log, st.next, 1u << 20, replay_cb, &st);
        if (rc < 0) {
            st.rc = rc;
            break;
        }
        while (!st.done)
            st_io_wait(b->shards[0].io, 100);
        if (st.next <= before && st.rc == 0) {
            st.rc = -EIO; /* no progress: the log is inconsistent */
            break;
        }
    }
    if (st.rc == 0)
        st.rc = table_finish(&st);
    table_free(&st.tab);
    if (st.rc) {
        srv_error("cannot replay metadata log %s: %s", dir, st_strerror(st.rc));
        srv_meta_unref(st.m);
        return st.rc < 0 ? st.rc : -EIO;
    }
    c->cur = st.m;
    srv_info("metadata: %d topics loaded from %s", c->cur->ntopics, dir);
    return 0;
}

void srv_controller_close(srv_broker *b)
{
    srv_controller *c = b->ctl;
    if (!c)
        return;
    if (c->log)
        st_log_close(c->log);
    if (c->cur)
        srv_meta_unref(c->cur);
    free(c);
    b->ctl = NULL;
}

srv_meta *srv_controller_current(srv_broker *b)
{
    return srv_meta_ref(b->ctl->cur);
}

static void ctl_next(srv_shard *s0);

static void op_return(srv_shard *on, srv_msg *m)
{
    srv_ctl_op *op = (srv_ctl_op *)m;
    op->done(on, op);
}

/* The operation is finished: hand it back to its shard. */
static void ctl_finish(srv_shard *s0, srv_ctl_op *op)
{
    srv_controller *c = s0->b->ctl;
    c->busy = 0;
    op->msg.fn = op_return;
    srv_shard_send(s0, op->from_shard, &op->msg);
    ctl_next(s0);
}

typedef struct publish_msg {
    srv_msg msg;
    srv_meta *meta;
    srv_ctl_op *op;
} publish_msg;

static void publish_ack(srv_shard *s0, srv_msg *m)
{
    publish_msg *pm = (publish_msg *)m;
    srv_ctl_op *op = pm->op;
    free(pm);
    if (op && --op->acks_pending == 0)
        ctl_finish(s0, op);
}

/* Runs on every shard: switch to the new version and open/close partitions. */
static void publish_apply(srv_shard *s, srv_msg *m)
{
    publish_msg *pm = (publish_msg *)m;
    srv_meta *old = s->meta;
    s->meta = pm->meta; /* the message's reference becomes the shard's */
    pm->meta = NULL;
    srv_partmap_reconcile(s->parts, s->meta);
    if (old)
        srv_meta_unref(old);
    pm->msg.fn = publish_ack;
    srv_shard_send(s, 0, &pm->msg);
}

static void publish(srv_shard *s0, srv_ctl_op *op)
{
    srv_controller *c = s0->b->ctl;
    op->acks_pending = s0->b->nshards;
    for (int i = 0; i < s0->b->nshards; i++) {
        publish_msg *pm = calloc(1, sizeof(*pm));
        /* Shards would disagree on the metadata: no safe way on. */
        SRV_ASSERT(pm != NULL, "out of memory publishing metadata");
        pm->msg.fn = publish_apply;
        pm->meta = srv_meta_ref(c->cur);
        pm->op = op;
        srv_shard_send(s0, i, &pm->msg);
    }
}

typedef struct append_ctx {
    srv_shard *s0;
    srv_ctl_op *op;
    srv_meta *next;
} append_ctx;

static void ctl_appended(void *arg, int rc, int64_t base_offset)
{
    (void)base_offset;
    append_ctx *ax = arg;
    srv_shard *s0 = ax->s0;
    srv_ctl_op *op = ax->op;
    srv_controller *c = s0->b->ctl;
    if (rc && rc != ST_E_DUPLICATE) {
        srv_error("metadata log append failed: %s", st_strerror(rc));
        for (int i = 0; i < op->nspecs; i++)
            if (op->specs[i].error == 0 && !op->specs[i].skip) {
                op->specs[i].error = KP_ERR_KAFKA_STORAGE_ERROR;
                snprintf(op->specs[i].message, sizeof(op->specs[i].message), "metadata log: %s",
                         st_strerror(rc));
            }
        srv_meta_unref(ax->next);
        free(ax);
        ctl_finish(s0, op);
        return;
    }
    srv_meta_unref(c->cur);
    c->cur = ax->next;
    free(ax);
    publish(s0, op);
}

/* A refusal comes through the completion path with the same error. */
static void ctl_accepted(void *arg, int rc, int64_t base_offset)
{
    if (rc && rc != ST_E_DUPLICATE)
        ctl_appended(arg, rc, base_offset);
}

static void spec_error(srv_topic_spec *sp, int16_t err, const char *msg)
{
    sp->error = err;
    size_t n = strlen(msg);
    if (n >= sizeof(sp->message))
        n = sizeof(sp->message) - 1;
    memcpy(sp->message, msg, n);
    sp->message[n] = 0;
}

/* Checks one creation against the current version; fills the topic. */
static int prepare_create(srv_controller *c, srv_topic_spec *sp, srv_topic *t)
{
    const srv_config *cfg = &c->b->cfg;
    if (!srv_topic_name_valid(sp->name)) {
        spec_error(sp, KP_ERR_INVALID_TOPIC_EXCEPTION,
                   "Topic name is illegal: it must be 1-249 characters of [a-zA-Z0-9._-], not '.' or '..'");
        return -1;
    }
    if (srv_meta_topic(c->cur, sp->name)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Topic '%.*s' already exists.", sp->name.len, sp->name.p);
        spec_error(sp, KP_ERR_TOPIC_ALREADY_EXISTS, msg);
        return -1;
    }
    int32_t np = sp->nparts == -1 ? (int32_t)cfg->num_partitions : sp->nparts;
    if (np <= 0 || np > 100000) {
        spec_error(sp, KP_ERR_INVALID_PARTITIONS, "Number of partitions must be between 1 and 100000.");
        return -1;
    }
    if (sp->replication != -1 && sp->replication != 1) {
        spec_error(sp, KP_ERR_INVALID_REPLICATION_FACTOR,
                   "Replication factor must be 1: this is a single-node broker.");
        return -1;
    }
    for (int i = 0; i < sp->ncfg; i++) {
        char err[160];
        if (srv_topic_config_validate(sp->cfg[i].key, sp->cfg[i].value, err, sizeof(err)) != 0) {
            spec_error(sp, KP_ERR_INVALID_CONFIG, err);
            return -1;
        }
    }
    memset(t, 0, sizeof(*t));
    kp_str name = sp->name;
    t->name = srv_cdup(name);
    t->nparts = np;
    t->cfg = sp->ncfg ? calloc((size_t)sp->ncfg, sizeof(*t->cfg)) : NULL;
    if (!t->name || (sp->ncfg && !t->cfg)) {
        topic_free(t);
        spec_error(sp, KP_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
        return -1;
    }
    for (int i = 0; i < sp->ncfg; i++) {
        t->cfg[i].key = strdup(sp->cfg[i].key);
        t->cfg[i].value = strdup(sp->cfg[i].value);
        t->ncfg++;
    }
    do {
        if (getrandom(t->id.b, 16, 0) != 16) {
            topic_free(t);
            spec_error(sp, KP_ERR_UNKNOWN_SERVER_ERROR, "no randomness for a topic id");
            return -1;
        }
    } while (kp_uuid_is_zero(&t->id) || srv_meta_topic_by_id(c->cur, &t->id));
    sp->id = t->id;
    sp->result_nparts = np;
    return 0;
}

/* New overrides for an existing topic: the changes applied in order to its
 * current overrides (or to none, for AlterConfigs' replace-all). */
static int prepare_alter(srv_topic_spec *sp, const srv_topic *existing, srv_topic *t)
{
    static __thread srv_topic_config tc; /* large: keep it off the stack */
    if (sp->replace_all)
        srv_topic_config_init(&tc);
    else
        srv_topic_overrides(existing, &tc);
    for (int i = 0; i < sp->nalter; i++) {
        char err[160];
        if (srv_topic_config_alter(&tc, sp->alter[i].op, sp->alter[i].key, sp->alter[i].value, err,
                                   sizeof(err)) != 0) {
            spec_error(sp, KP_ERR_INVALID_CONFIG, err);
            return -1;
        }
    }
    if (topic_copy(t, existing) != 0) {
        topic_free(t);
        spec_error(sp, KP_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
        return -1;
    }
    for (int i = 0; i < t->ncfg; i++) {
        free(t->cfg[i].key);
        free(t->cfg[i].value);
    }
    free(t->cfg);
    t->ncfg = 0;
    int n = srv_topic_config_count(&tc);
    t->cfg = n ? calloc((size_t)n, sizeof(*t->cfg)) : NULL;
    for (int i = 0; i < n && t->cfg; i++) {
        const char *k, *v;
        size_t vl;
        if (srv_topic_config_at(&tc, i, &k, &v, &vl) != 0)
            break;
        t->cfg[i].key = strdup(k);
        t->cfg[i].value = strndup(v, vl);
        t->ncfg++;
    }
    sp->id = t->id;
    return 0;
}

/* Applies op to a scratch version, collecting the records to persist. */
static void ctl_run(srv_shard *s0, srv_ctl_op *op)
{
    srv_controller *c = s0->b->ctl;
    srv_meta *next = srv_meta_ref(c->cur);
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int changes = 0;
    int64_t now = srv_now_ms();
    for (int i = 0; i < op->nspecs; i++) {
        srv_topic_spec *sp = &op->specs[i];
        if (sp->skip)
            continue;
        sp->error = 0;
        sp->message[0] = 0;
        srv_meta *saved = c->cur;
        c->cur = next; /* later specs see earlier ones (duplicates in one request) */
        srv_topic t;
        const srv_topic *existing = srv_meta_topic(next, sp->name);
        int ok = -1;
        if (op->kind == SRV_CTL_CREATE) {
            ok = prepare_create(c, sp, &t);
        } else if (!existing) {
            spec_error(sp, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                       "This server does not host this topic-partition.");
        } else if (op->kind == SRV_CTL_DELETE) {
            sp->id = existing->id;
            ok = 0;
        } else if (op->kind == SRV_CTL_ALTER_CONFIGS) {
            ok = prepare_alter(sp, existing, &t);
        } else { /* add partitions */
            if (sp->nparts <= existing->nparts) {
                char msg[160];
                snprintf(msg, sizeof(msg), "Topic currently has %d partitions, %d would not be an increase.",
                         existing->nparts, sp->nparts);
                spec_error(sp, KP_ERR_INVALID_PARTITIONS, msg);
            } else if (sp->nparts > 100000) {
                spec_error(sp, KP_ERR_INVALID_PARTITIONS, "Number of partitions must be at most 100000.");
            } else if (topic_copy(&t, existing) == 0) {
                t.nparts = sp->nparts;
                sp->id = t.id;
                ok = 0;
            }
        }
        c->cur = saved;
        if (ok != 0)
            continue;
        if (op->validate_only) {
            if (op->kind != SRV_CTL_DELETE)
                topic_free(&t); /* checked, not applied */
            continue;
        }
        uint8_t key[17];
        key[0] = 'T';
        srv_meta *derived;
        if (op->kind == SRV_CTL_DELETE) {
            memcpy(key + 1, sp->id.b, 16);
            kp_batch_builder_add(&bb, now, (kp_bytes){key, 17}, KP_BYTES_NULL, NULL, 0);
            derived = meta_derive(next, NULL, &sp->id);
        } else {
            memcpy(key + 1, t.id.b, 16);
            kp_writer vw;
            kp_writer_init(&vw, 128);
            encode_topic(&vw, &t);
            kp_batch_builder_add(&bb, now, (kp_bytes){key, 17}, (kp_bytes){vw.buf, (int32_t)vw.len}, NULL, 0);
            kp_writer_free(&vw);
            derived = meta_derive(next, &t, NULL);
            topic_free(&t);
        }
        if (!derived) {
            spec_error(sp, KP_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
            continue;
        }
        srv_meta_unref(next);
        next = derived;
        changes++;
    }
    if (!changes) {
        kp_batch_builder_free(&bb);
        srv_meta_unref(next);
        ctl_finish(s0, op);
        return;
    }
    kp_writer bw;
    kp_writer_init(&bw, 256);
    int rc = kp_batch_builder_finish(&bb, &bw);
    kp_batch_builder_free(&bb);
    append_ctx *ax = calloc(1, sizeof(*ax));
    if (rc == 0 && ax) {
        ax->s0 = s0;
        ax->op = op;
        ax->next = next;
        /* Waits (in order) while the log applies backpressure rather than
         * failing a topic change for a local condition. */
        st_log_append_ordered(c->log, bw.buf, bw.len, ctl_accepted, ctl_appended, ax);
        kp_writer_free(&bw);
        return;
    }
    if (rc == 0)
        rc = -ENOMEM;
    kp_writer_free(&bw);
    if (rc) {
        free(ax);
        srv_meta_unref(next);
        for (int i = 0; i < op->nspecs; i++)
            if (op->specs[i].error == 0 && !op->specs[i].skip)
                spec_error(&op->specs[i], KP_ERR_KAFKA_STORAGE_ERROR, "metadata log append failed");
        ctl_finish(s0, op);
    }
}

static void ctl_next(srv_shard *s0)
{
    srv_controller *c = s0->b->ctl;
    if (c->busy || !c->head)
        return;
    srv_ctl_op *op = c->head;
    c->head = op->next;
    if (!c->head)
        c->tail = NULL;
    c->busy = 1;
    ctl_run(s0, op);
}

static void ctl_on_submit(srv_shard *s0, srv_msg *m)
{
    srv_ctl_op *op = (srv_ctl_op *)m;
    srv_controller *c = s0->b->ctl;
    op->next = NULL;
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    ctl_next(s0);
}

void srv_ctl_submit(srv_shard *from, srv_ctl_op *op)
{
    op->from_shard = from->id;
    op->msg.fn = ctl_on_submit;
    srv_shard_send(from, 0, &op->msg);
}

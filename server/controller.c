/*
 * controller.c — the controller: owner of the metadata log on shard 0. It
 * replays the log at start-up, applies topic changes (srv_ctl_op) one at a
 * time, persists each change and publishes the new version to every shard.
 *
 * Owns `<log.dir>/__cluster_metadata-0/`: a compacted partition log (the
 * storage engine's own) whose records are keyed by topic id ('T' + id) and
 * hold the full state of one topic, or a tombstone when it is deleted;
 * SCRAM credentials ('S' keys) are encoded and applied by scram_store.c,
 * client quotas ('Q' keys, one record per entity) by quota.c, ACL bindings
 * ('A' + the binding, authz.h; deleted by a tombstone of the same key) by
 * authz.c, dynamic broker configs ('B' + resource + key, dyncfg.h) and
 * dynamic group configs ('G' + group id + key) by dyncfg.c;
 * records with other first key bytes belong to others and are skipped. Compaction
 * keeps exactly the latest state per topic, so the compacted log *is* the
 * snapshot and replay is bounded by the number of topics plus recent changes.
 *
 * Must not: be written from any shard but 0, or hand out a version that is
 * not yet durable: a change is appended, synced, then published.
 */
#include "controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "authz.h"
#include "batch.h"
#include "dyncfg.h"
#include "errors.h"
#include "logging.h"
#include "partition.h"
#include "quorum.h"
#include "quota.h"
#include "scram_store.h"
#include "srv_assert.h"
#include "sstr.h"
#include "st_log.h"
#include "topic_config.h"

#define META_RECORD_VERSION 0

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
        srv_topic_free(t);
        return KP_E_NOMEM;
    }
    for (int32_t i = 0; i < ncfg; i++) {
        kp_str k = KP_STR_NULL, v = KP_STR_NULL;
        if (kp_read_string(&r, &k) || kp_read_string(&r, &v) || k.len < 0 || v.len < 0) {
            srv_topic_free(t);
            return KP_E_INVALID;
        }
        t->cfg[i].key = srv_cdup(k);
        t->cfg[i].value = srv_cdup(v);
        t->ncfg++;
    }
    return 0;
}

/* A placement ('P' + topic id). Version 0 held each partition's leader
 * alone (replication factor 1); version 1 holds, per partition, the leader,
 * its epoch, the partition epoch, the replicas and the ISR. */
#define PLACE_RECORD_VERSION 1

static int encode_place(kp_writer *w, const srv_topic *t)
{
    kp_write_i8(w, PLACE_RECORD_VERSION);
    kp_write_i32(w, t->nparts);
    for (int32_t i = 0; i < t->nparts; i++) {
        const srv_part_repl *r = &t->repl[i];
        kp_write_i32(w, t->leaders[i]);
        kp_write_i32(w, r->leader_epoch);
        kp_write_i32(w, r->part_epoch);
        kp_write_i16(w, r->nreplicas);
        for (int k = 0; k < r->nreplicas; k++)
            kp_write_i32(w, r->replicas[k]);
        kp_write_i16(w, r->nisr);
        for (int k = 0; k < r->nisr; k++)
            kp_write_i32(w, r->isr[k]);
    }
    return w->err;
}

int srv_ctl_encode_broker(kp_writer *w, const srv_broker_reg *r)
{
    kp_write_i8(w, META_RECORD_VERSION);
    kp_write_i32(w, r->id);
    kp_write_string(w, kp_str_c(r->host));
    kp_write_i32(w, r->port);
    kp_write_string(w, kp_str_c(r->rack));
    kp_write_i8(w, (int8_t)(r->fenced ? 1 : 0));
    return w->err;
}

static int decode_broker(const uint8_t *p, size_t n, srv_broker_reg *r)
{
    kp_reader rd;
    kp_reader_init(&rd, p, n);
    int8_t ver = 0, fenced = 0;
    int32_t port = 0;
    kp_str host = KP_STR_NULL, rack = KP_STR_NULL;
    memset(r, 0, sizeof(*r));
    if (kp_read_i8(&rd, &ver) || ver != META_RECORD_VERSION || kp_read_i32(&rd, &r->id) ||
        kp_read_string(&rd, &host) || kp_read_i32(&rd, &port) || kp_read_string(&rd, &rack) ||
        kp_read_i8(&rd, &fenced) || host.len <= 0 || (size_t)host.len >= sizeof(r->host) || port <= 0 ||
        port > 65535 || rack.len < 0 || (size_t)rack.len >= sizeof(r->rack))
        return KP_E_INVALID;
    memcpy(r->host, host.p, (size_t)host.len);
    memcpy(r->rack, rack.p, (size_t)rack.len);
    r->port = (uint16_t)port;
    r->fenced = fenced != 0;
    return 0;
}

void srv_ctl_broker_key(int32_t id, uint8_t key[5])
{
    key[0] = SRV_BROKER_RECORD_KEY;
    key[1] = (uint8_t)((uint32_t)id >> 24);
    key[2] = (uint8_t)((uint32_t)id >> 16);
    key[3] = (uint8_t)((uint32_t)id >> 8);
    key[4] = (uint8_t)id;
}

/* ---- the controller ---------------------------------------------------- */

struct srv_controller {
    srv_ctl_env env;
    int32_t num_partitions; /* num.partitions: a creation's default */
    /* With a quorum: default.replication.factor, offsets.topic.replication.factor
     * and transaction.state.log.replication.factor (srv_ctl_set_replication). */
    int16_t default_rf, offsets_rf, txn_rf;
    srv_meta *cur;
    srv_ctl_op *head, *tail; /* queued operations, applied one at a time */
    int busy;
    /* The broker's environment (NULL in unit tests). */
    srv_broker *b;
    st_log *log;
    /* With a metadata quorum (srv_ctl_set_quorum): whether this node is the
     * active controller; versions then come from the committed log
     * (srv_ctl_adopt), never from this controller's own scratch versions. */
    int (*is_leader)(void *arg);
    void *leader_arg;
    void (*heard)(void *arg, int32_t id);
    void (*forward)(void *arg, srv_ctl_op *op);
};

/* Replay applies records to a mutable table and builds one version at the
 * end: deriving a version per record copied every topic each time, which
 * made a start with 25,000 topics take tens of seconds. */
typedef struct replay_table {
    srv_topic *t; /* name NULL: removed */
    int n, cap;
    int *slot; /* open addressing on the id: index + 1, 0 = empty */
    size_t nslots;
} replay_table;

/* An ACL record as replayed: its key ('A' + the encoded binding, so the
 * binding's identity) copied out of the read buffer, and whether it is a
 * tombstone. */
typedef struct acl_rec {
    uint8_t *key;
    size_t klen;
    int64_t seq;
    int tomb;
} acl_rec;

typedef struct replay_place {
    kp_uuid id;
    int32_t n;
    int32_t *leaders;
    srv_part_repl *repl;
} replay_place;

typedef struct replay_state {
    srv_meta *m;
    int64_t next;
    int rc;
    int done;
    replay_table tab;
    srv_scram_edit *scram; /* credentials replayed so far (NULL until the first) */
    srv_quota_set *quotas; /* 'Q' records so far (NULL: none) */
    acl_rec *aclr;         /* 'A' records in log order: the last of a key wins */
    int naclr, capaclr;
    srv_dyncfg_edit *dyncfg;   /* 'B' records so far (NULL: none) */
    srv_dyncfg_edit *groupcfg; /* 'G' records so far (NULL: none) */
    /* The quorum's records (quorum.h): 'P' placements, 'N' registrations;
     * the last of a key wins. */
    replay_place *place;
    int nplace, capplace;
    srv_broker_reg *brokers;
    int nbrokers, capbrokers;
} replay_state;

static int acl_finish(replay_state *st, srv_acl_set **out);
static void acl_recs_free(replay_state *st);
static int quorum_finish(replay_state *st, srv_meta *m);

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
        srv_topic_free(old);
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
    srv_meta_index(m);
    free(tb->t);
    free(tb->slot);
    memset(tb, 0, sizeof(*tb));
    if (st->scram) {
        srv_scram_edit *e = st->scram;
        st->scram = NULL;
        if (srv_scram_edit_finish(e, &m->scram) != 0) {
            srv_meta_unref(m);
            return KP_E_NOMEM;
        }
    }
    m->quotas = st->quotas; /* the replay's reference moves in */
    st->quotas = NULL;
    srv_dyncfg_edit *de = st->dyncfg, *ge = st->groupcfg;
    st->dyncfg = st->groupcfg = NULL;
    int rc = srv_dyncfg_edit_finish(de, &m->dyncfg);
    int grc = srv_dyncfg_edit_finish(ge, &m->groupcfg);
    if (rc == 0)
        rc = grc;
    if (rc == 0)
        rc = acl_finish(st, &m->acls);
    if (rc == 0)
        rc = quorum_finish(st, m);
    if (rc) {
        srv_meta_unref(m);
        return rc;
    }
    srv_meta_unref(st->m);
    st->m = m;
    return 0;
}

/* An ACL record: kept (its key) until the end of the replay, which settles
 * every binding at once. Applying each record to a new set as it comes
 * would copy the set once per record: quadratic in the number of ACLs. */
static int replay_acl(replay_state *st, const kp_record *rec)
{
    srv_acl a;
    if (srv_acl_decode_value(rec->key.p + 1, (size_t)rec->key.len - 1, &a)) {
        srv_warn("metadata log: undecodable ACL record at offset %lld skipped", (long long)rec->offset);
        return 0;
    }
    if (st->naclr == st->capaclr) {
        int cap = st->capaclr ? st->capaclr * 2 : 64;
        acl_rec *n = realloc(st->aclr, (size_t)cap * sizeof(*n));
        if (!n)
            return KP_E_NOMEM;
        st->aclr = n;
        st->capaclr = cap;
    }
    uint8_t *key = malloc((size_t)rec->key.len);
    if (!key)
        return KP_E_NOMEM;
    memcpy(key, rec->key.p, (size_t)rec->key.len);
    st->aclr[st->naclr] = (acl_rec){key, (size_t)rec->key.len, st->naclr, rec->value.len < 0};
    st->naclr++;
    return 0;
}

static int acl_rec_cmp(const void *x, const void *y)
{
    const acl_rec *a = x, *b = y;
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    if (a->klen != b->klen)
        return a->klen < b->klen ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The ACL set the replayed records leave: per binding, its last record
 * decides (a tombstone removes it). *out: NULL when none is left. */
static int acl_finish(replay_state *st, srv_acl_set **out)
{
    *out = NULL;
    if (st->naclr == 0)
        return 0;
    qsort(st->aclr, (size_t)st->naclr, sizeof(*st->aclr), acl_rec_cmp);
    srv_acl *live = malloc((size_t)st->naclr * sizeof(*live));
    if (!live)
        return KP_E_NOMEM;
    int n = 0;
    for (int i = 0; i < st->naclr; i++) {
        const acl_rec *r = &st->aclr[i];
        int last = i + 1 == st->naclr || st->aclr[i + 1].klen != r->klen ||
                   memcmp(st->aclr[i + 1].key, r->key, r->klen) != 0;
        if (!last || r->tomb)
            continue;
        int rc = srv_acl_decode_value(r->key + 1, r->klen - 1, &live[n]);
        SRV_ASSERT(rc == 0, "ACL record key decoded at replay no longer decodes (%d)", rc);
        n++;
    }
    int rc = 0;
    if (n > 0 && !(*out = srv_acl_set_new(live, n)))
        rc = KP_E_NOMEM;
    free(live);
    return rc;
}

static void acl_recs_free(replay_state *st)
{
    for (int i = 0; i < st->naclr; i++)
        free(st->aclr[i].key);
    free(st->aclr);
    st->aclr = NULL;
    st->naclr = st->capaclr = 0;
}

/* Client quotas: each record holds the whole state of one entity. */
static void replay_quota(replay_state *st, const kp_record *rec)
{
    int bad = 0;
    srv_quota_set *nq = srv_quota_replay(st->quotas, rec->key, rec->value, &bad);
    if (!nq && bad) {
        srv_warn("metadata log: undecodable client quota record at offset %lld skipped",
                 (long long)rec->offset);
        return;
    }
    if (!nq) {
        st->rc = KP_E_NOMEM;
        return;
    }
    srv_quota_set_unref(st->quotas);
    st->quotas = nq;
}

/* An 'S' record: a SCRAM credential or its tombstone. */
static int replay_scram(replay_state *st, const kp_record *rec)
{
    if (!st->scram && !(st->scram = srv_scram_edit_new(NULL)))
        return KP_E_NOMEM;
    int rc =
        srv_scram_record_apply(st->scram, rec->key.p, (size_t)rec->key.len, rec->value.p, rec->value.len);
    if (rc == KP_E_INVALID) {
        srv_warn("metadata log: undecodable SCRAM credential record at offset %lld skipped",
                 (long long)rec->offset);
        return 0;
    }
    return rc;
}

static void table_free(replay_table *tb)
{
    for (int i = 0; i < tb->n; i++)
        srv_topic_free(&tb->t[i]);
    free(tb->t);
    free(tb->slot);
    memset(tb, 0, sizeof(*tb));
}

/* A 'P' record: the last placement of a topic id wins. */
static int replay_place_rec(replay_state *st, const kp_record *rec)
{
    kp_uuid id;
    memcpy(id.b, rec->key.p + 1, 16);
    replay_place *pl = NULL;
    for (int i = 0; i < st->nplace && !pl; i++)
        if (memcmp(st->place[i].id.b, id.b, 16) == 0)
            pl = &st->place[i];
    if (!pl) {
        if (st->nplace == st->capplace) {
            int cap = st->capplace ? st->capplace * 2 : 16;
            replay_place *np = realloc(st->place, sizeof(*np) * (size_t)cap);
            if (!np)
                return KP_E_NOMEM;
            st->place = np;
            st->capplace = cap;
        }
        pl = &st->place[st->nplace++];
        memset(pl, 0, sizeof(*pl));
        pl->id = id;
    }
    free(pl->leaders);
    pl->leaders = NULL;
    free(pl->repl);
    pl->repl = NULL;
    pl->n = 0;
    if (rec->value.len < 0)
        return 0;
    kp_reader r;
    kp_reader_init(&r, rec->value.p, (size_t)rec->value.len);
    int8_t ver = 0;
    int32_t n = 0;
    if (kp_read_i8(&r, &ver) || (ver != 0 && ver != PLACE_RECORD_VERSION) || kp_read_i32(&r, &n) || n < 0 ||
        (size_t)n > kp_reader_left(&r) / 4) {
        srv_warn("metadata log: undecodable placement record at offset %lld skipped", (long long)rec->offset);
        return 0;
    }
    pl->leaders = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    pl->repl = calloc((size_t)(n ? n : 1), sizeof(*pl->repl));
    if (!pl->leaders || !pl->repl)
        return KP_E_NOMEM;
    int bad = 0;
    for (int32_t i = 0; i < n && !bad; i++) {
        srv_part_repl *x = &pl->repl[i];
        bad |= kp_read_i32(&r, &pl->leaders[i]) != 0;
        if (ver == 0) {
            /* Replication factor 1: the leader is the one replica, in sync. */
            x->nreplicas = x->nisr = 1;
            x->replicas[0] = x->isr[0] = pl->leaders[i];
            continue;
        }
        bad |= kp_read_i32(&r, &x->leader_epoch) || kp_read_i32(&r, &x->part_epoch) ||
               kp_read_i16(&r, &x->nreplicas) || x->nreplicas < 0 || x->nreplicas > SRV_RF_MAX;
        for (int k = 0; k < x->nreplicas && !bad; k++)
            bad |= kp_read_i32(&r, &x->replicas[k]) != 0;
        bad |= bad || kp_read_i16(&r, &x->nisr) || x->nisr < 0 || x->nisr > x->nreplicas;
        for (int k = 0; k < x->nisr && !bad; k++)
            bad |= kp_read_i32(&r, &x->isr[k]) != 0;
    }
    if (bad) {
        srv_warn("metadata log: undecodable placement record at offset %lld skipped", (long long)rec->offset);
        free(pl->leaders);
        free(pl->repl);
        pl->leaders = NULL;
        pl->repl = NULL;
        return 0;
    }
    pl->n = n;
    return 0;
}

/* An 'N' record: a broker's registration, the last of an id wins. */
static int replay_broker(replay_state *st, const kp_record *rec)
{
    srv_broker_reg reg;
    if (rec->value.len < 0 || decode_broker(rec->value.p, (size_t)rec->value.len, &reg) != 0) {
        srv_warn("metadata log: undecodable broker registration at offset %lld skipped",
                 (long long)rec->offset);
        return 0;
    }
    for (int i = 0; i < st->nbrokers; i++)
        if (st->brokers[i].id == reg.id) {
            st->brokers[i] = reg;
            return 0;
        }
    if (st->nbrokers == st->capbrokers) {
        int cap = st->capbrokers ? st->capbrokers * 2 : 8;
        srv_broker_reg *nb = realloc(st->brokers, sizeof(*nb) * (size_t)cap);
        if (!nb)
            return KP_E_NOMEM;
        st->brokers = nb;
        st->capbrokers = cap;
    }
    st->brokers[st->nbrokers++] = reg;
    return 0;
}

static int broker_cmp(const void *a, const void *b)
{
    int32_t x = ((const srv_broker_reg *)a)->id, y = ((const srv_broker_reg *)b)->id;
    return x < y ? -1 : x > y;
}

/* Placements onto the live topics, registrations into m (sorted by id). */
static int quorum_finish(replay_state *st, srv_meta *m)
{
    for (int i = 0; i < st->nplace; i++) {
        const srv_topic *ct = srv_meta_topic_by_id(m, &st->place[i].id);
        if (!ct || !st->place[i].leaders)
            continue;
        srv_topic *t = (srv_topic *)ct; /* m is still being built: nobody reads it yet */
        t->leaders = malloc(sizeof(int32_t) * (size_t)t->nparts);
        t->repl = calloc((size_t)t->nparts, sizeof(*t->repl));
        if (!t->leaders || !t->repl)
            return KP_E_NOMEM;
        /* Partitions without a placement have no leader (LEADER_NOT_AVAILABLE)
         * and no replicas rather than ones guessed. */
        for (int32_t p = 0; p < t->nparts; p++) {
            t->leaders[p] = p < st->place[i].n ? st->place[i].leaders[p] : -1;
            if (p < st->place[i].n)
                t->repl[p] = st->place[i].repl[p];
        }
    }
    if (st->nbrokers) {
        qsort(st->brokers, (size_t)st->nbrokers, sizeof(*st->brokers), broker_cmp);
        m->brokers = st->brokers;
        m->nbrokers = st->nbrokers;
        st->brokers = NULL;
        st->nbrokers = st->capbrokers = 0;
    }
    return 0;
}

static void quorum_recs_free(replay_state *st)
{
    for (int i = 0; i < st->nplace; i++) {
        free(st->place[i].leaders);
        free(st->place[i].repl);
    }
    free(st->place);
    st->place = NULL;
    st->nplace = st->capplace = 0;
    free(st->brokers);
    st->brokers = NULL;
    st->nbrokers = st->capbrokers = 0;
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
        if (rec.key.len > 1 && rec.key.p[0] == SRV_ACL_KEY_PREFIX) {
            int rc = replay_acl(st, &rec);
            if (rc) {
                st->rc = rc;
                return;
            }
            continue;
        }
        if (rec.key.len > 0 && rec.key.p[0] == 'Q') {
            replay_quota(st, &rec);
            if (st->rc)
                return;
            continue;
        }
        if (rec.key.len >= 1 && rec.key.p[0] == SRV_DYNCFG_RECORD_KEY) {
            int rc = srv_dyncfg_edit_apply_tag(&st->dyncfg, SRV_DYNCFG_RECORD_KEY, rec.key.p,
                                               (size_t)rec.key.len, rec.value.p, rec.value.len);
            if (rc == KP_E_INVALID)
                srv_warn("metadata log: undecodable dynamic broker config record at offset %lld skipped",
                         (long long)rec.offset);
            else if (rc) {
                st->rc = rc;
                return;
            }
            continue;
        }
        if (rec.key.len >= 1 && rec.key.p[0] == SRV_GROUPCFG_RECORD_KEY) {
            int rc = srv_dyncfg_edit_apply_tag(&st->groupcfg, SRV_GROUPCFG_RECORD_KEY, rec.key.p,
                                               (size_t)rec.key.len, rec.value.p, rec.value.len);
            if (rc == KP_E_INVALID)
                srv_warn("metadata log: undecodable dynamic group config record at offset %lld skipped",
                         (long long)rec.offset);
            else if (rc) {
                st->rc = rc;
                return;
            }
            continue;
        }
        if (rec.key.len >= 1 && rec.key.p[0] == SRV_SCRAM_RECORD_KEY) {
            if ((st->rc = replay_scram(st, &rec)) != 0)
                return;
            continue;
        }
        if (rec.key.len == 17 && rec.key.p[0] == SRV_PLACE_RECORD_KEY) {
            if ((st->rc = replay_place_rec(st, &rec)) != 0)
                return;
            continue;
        }
        if (rec.key.len == 5 && rec.key.p[0] == SRV_BROKER_RECORD_KEY) {
            if ((st->rc = replay_broker(st, &rec)) != 0)
                return;
            continue;
        }
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
                srv_topic_free(&t);
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

int srv_ctl_replay(const uint8_t *batches, size_t len, srv_meta **out)
{
    replay_state st = {.m = srv_meta_new_empty()};
    if (!st.m)
        return KP_E_NOMEM;
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, batches, len, 0);
    while (st.rc == 0 && kp_batch_iter_next(&it, &b) == 1)
        replay_apply_batch(&st, &b);
    if (st.rc == 0)
        st.rc = table_finish(&st);
    table_free(&st.tab);
    srv_scram_edit_free(st.scram);
    srv_quota_set_unref(st.quotas);
    srv_dyncfg_edit_free(st.dyncfg);
    srv_dyncfg_edit_free(st.groupcfg);
    acl_recs_free(&st);
    quorum_recs_free(&st);
    if (st.rc) {
        srv_meta_unref(st.m);
        return st.rc;
    }
    *out = st.m;
    return 0;
}

srv_controller *srv_ctl_new(const srv_ctl_env *env, int32_t num_partitions)
{
    srv_controller *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->env = *env;
    c->num_partitions = num_partitions;
    c->default_rf = c->offsets_rf = c->txn_rf = 1;
    c->cur = srv_meta_new_empty();
    if (!c->cur) {
        free(c);
        return NULL;
    }
    return c;
}

void srv_ctl_free(srv_controller *c)
{
    SRV_ASSERT(!c->busy && !c->head, "controller freed with operations under way");
    srv_meta_unref(c->cur);
    free(c);
}

const srv_meta *srv_ctl_current(const srv_controller *c)
{
    return c->cur;
}

static const srv_ctl_env broker_env;

/* Opens `<log_dir>/__cluster_metadata-0` on io and replays it into *out.
 * Blocking: start-up and tools only. */
static int open_and_replay(st_io *io, const char *log_dir, st_log **logp, srv_meta **out, char *dir,
                           size_t dcap)
{
    int rc = st_partition_dir(dir, dcap, log_dir, "__cluster_metadata", 0);
    if (rc)
        return rc;
    st_log_config lc;
    st_log_config_default(&lc);
    lc.compact = 1;
    lc.retention_ms = -1;
    lc.segment_bytes = 16u << 20;
    st_log *log = NULL;
    rc = st_log_open(io, dir, &lc, &log);
    if (rc) {
        srv_error("cannot open metadata log %s: %s", dir, st_strerror(rc));
        return rc;
    }
    *logp = log;
    replay_state st = {.m = srv_meta_new_empty(), .next = st_log_start_offset(log)};
    if (!st.m)
        return -ENOMEM;
    while (st.rc == 0 && st.next < st_log_high_watermark(log)) {
        st.done = 0;
        int64_t before = st.next;
        rc = st_log_read(log, st.next, 1u << 20, replay_cb, &st);
        if (rc < 0) {
            st.rc = rc;
            break;
        }
        while (!st.done)
            st_io_wait(io, 100);
        if (st.next <= before && st.rc == 0) {
            st.rc = -EIO; /* no progress: the log is inconsistent */
            break;
        }
    }
    if (st.rc == 0)
        st.rc = table_finish(&st);
    table_free(&st.tab);
    srv_scram_edit_free(st.scram);
    srv_quota_set_unref(st.quotas);
    srv_dyncfg_edit_free(st.dyncfg);
    srv_dyncfg_edit_free(st.groupcfg);
    acl_recs_free(&st);
    quorum_recs_free(&st);
    if (st.rc) {
        srv_error("cannot replay metadata log %s: %s", dir, st_strerror(st.rc));
        srv_meta_unref(st.m);
        return st.rc < 0 ? st.rc : -EIO;
    }
    *out = st.m;
    return 0;
}

int srv_controller_open(srv_broker *b)
{
    srv_controller *c = srv_ctl_new(&broker_env, (int32_t)b->cfg.num_partitions);
    if (!c)
        return -ENOMEM;
    c->env.arg = c;
    c->b = b;
    b->ctl = c;
    if (b->cfg.nvoters)
        return 0; /* the quorum's log is the metadata log (quorum.h) */
    char dir[4096];
    srv_meta *m = NULL;
    int rc = open_and_replay(b->shards[0].io, b->cfg.log_dirs[0], &c->log, &m, dir, sizeof(dir));
    if (rc)
        return rc;
    srv_meta_unref(c->cur);
    c->cur = m;
    srv_info("metadata loaded from %s: %d topics, %d ACLs, %d client quota entities, %d SCRAM users", dir,
             c->cur->ntopics, c->cur->acls ? c->cur->acls->n : 0, c->cur->quotas ? c->cur->quotas->n : 0,
             srv_scram_set_nusers(c->cur->scram));
    return 0;
}

typedef struct bootstrap_append {
    int done, rc;
} bootstrap_append;

static void bootstrap_appended(void *arg, int rc, int64_t base_offset)
{
    (void)base_offset;
    bootstrap_append *ba = arg;
    if (!ba->done) {
        ba->done = 1;
        ba->rc = rc;
    }
}

static void bootstrap_accepted(void *arg, int rc, int64_t base_offset)
{
    if (rc)
        bootstrap_appended(arg, rc, base_offset);
}

int srv_controller_bootstrap_scram(const char *log_dir, srv_scram_change *ch, int n, char *err, size_t errlen)
{
    st_io_config iocfg;
    st_io_config_default(&iocfg);
    st_io *io = NULL;
    int rc = st_io_create(&iocfg, &io);
    if (rc) {
        snprintf(err, errlen, "cannot start the I/O engine: %s", st_strerror(rc));
        return -1;
    }
    char dir[4096];
    st_log *log = NULL;
    srv_meta *m = NULL;
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    kp_writer w;
    kp_writer_init(&w, 256);
    srv_scram_set *set = NULL;
    int ret = -1;
    rc = open_and_replay(io, log_dir, &log, &m, dir, sizeof(dir));
    if (rc) {
        snprintf(err, errlen, "cannot open or replay the metadata log in %s: %s", log_dir, st_strerror(rc));
        goto out;
    }
    /* As kafka-storage format: the first users only, never over existing ones. */
    if (srv_scram_set_nusers(m->scram) > 0) {
        snprintf(err, errlen,
                 "the metadata log %s already holds SCRAM credentials of %d user(s): nothing written", dir,
                 srv_scram_set_nusers(m->scram));
        goto out;
    }
    /* One change at a time: a user may get both mechanisms, which one
     * AlterUserScramCredentials request refuses as altering it twice. */
    int records = 0;
    for (int i = 0; i < n; i++) {
        srv_scram_set *next = NULL;
        int r = srv_scram_alter(set, &ch[i], 1, &bb, srv_now_ms(), &next);
        srv_scram_set_unref(set);
        set = next;
        records += r > 0 ? r : 0;
        if (ch[i].error) {
            snprintf(err, errlen, "user '%.*s': %s (error %d): nothing written",
                     ch[i].user.len > 0 ? ch[i].user.len : 0, ch[i].user.len > 0 ? ch[i].user.p : "",
                     ch[i].message ? ch[i].message : "refused", ch[i].error);
            goto out;
        }
    }
    if (records <= 0 || kp_batch_builder_finish(&bb, &w) != 0) {
        snprintf(err, errlen, "nothing to write");
        goto out;
    }
    bootstrap_append ba = {0, 0};
    st_log_append_ordered(log, w.buf, w.len, bootstrap_accepted, bootstrap_appended, &ba);
    while (!ba.done)
        st_io_wait(io, 100);
    if (ba.rc && ba.rc != ST_E_DUPLICATE) {
        snprintf(err, errlen, "cannot append to the metadata log %s: %s", dir, st_strerror(ba.rc));
        goto out;
    }
    ret = 0;
out:
    if (log && (rc = st_log_close(log)) != 0 && ret == 0) {
        snprintf(err, errlen, "cannot close the metadata log %s: %s", dir, st_strerror(rc));
        ret = -1;
    }
    srv_scram_set_unref(set);
    if (m)
        srv_meta_unref(m);
    kp_writer_free(&w);
    kp_batch_builder_free(&bb);
    st_io_destroy(io);
    return ret;
}

void srv_controller_drain(srv_broker *b)
{
    srv_controller *c = b->ctl;
    SRV_ASSERT(b->draining, "metadata log drained while the broker still publishes");
    if (c && c->log) {
        int rc = st_log_drain(c->log);
        if (rc)
            srv_error("draining the metadata log: %s", st_strerror(rc));
    }
}

void srv_controller_close(srv_broker *b)
{
    srv_controller *c = b->ctl;
    if (!c)
        return;
    if (c->log)
        st_log_close(c->log);
    c->busy = 0; /* whatever was under way ends with the loops */
    c->head = c->tail = NULL;
    srv_ctl_free(c);
    b->ctl = NULL;
}

srv_meta *srv_controller_current(srv_broker *b)
{
    return srv_meta_ref(b->ctl->cur);
}

static void ctl_next(srv_controller *c);

/* The operation is finished: hand it back to its sender, take the next. */
static void ctl_finish(srv_controller *c, srv_ctl_op *op)
{
    SRV_ASSERT(c->busy, "controller finishing an operation while idle");
    c->busy = 0;
    c->env.finish(c->env.arg, op);
    ctl_next(c);
}

void srv_ctl_published(srv_controller *c, srv_ctl_op *op)
{
    ctl_finish(c, op);
}

void srv_ctl_set_replication(srv_controller *c, int16_t default_rf, int16_t offsets_rf, int16_t txn_rf)
{
    c->default_rf = default_rf;
    c->offsets_rf = offsets_rf;
    c->txn_rf = txn_rf;
}

void srv_ctl_set_quorum(srv_controller *c, int (*is_leader)(void *arg), void *arg)
{
    c->is_leader = is_leader;
    c->leader_arg = arg;
}

void srv_ctl_set_heard(srv_controller *c, void (*heard)(void *arg, int32_t id))
{
    c->heard = heard;
}

void srv_ctl_set_forward(srv_controller *c, void (*forward)(void *arg, srv_ctl_op *op))
{
    c->forward = forward;
}

void srv_ctl_adopt(srv_controller *c, srv_meta *m)
{
    srv_meta_unref(c->cur);
    c->cur = m;
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

typedef struct append_ctx {
    srv_controller *c;
    srv_ctl_op *op;
    srv_meta *next;
} append_ctx;

/* Nothing of an ACL change was applied: every item it did not refuse
 * already fails with the storage error. */
static void acl_change_failed(srv_acl_change *ch)
{
    if (!ch)
        return;
    for (int i = 0; i < ch->ncreate; i++)
        if (!ch->create_error[i])
            ch->create_error[i] = KP_ERR_KAFKA_STORAGE_ERROR;
    for (int i = 0; i < ch->nfilter; i++)
        if (!ch->filter_error[i])
            ch->filter_error[i] = KP_ERR_KAFKA_STORAGE_ERROR;
}

/* The change could not be made durable (rc): every part of op not refused
 * already fails with KAFKA_STORAGE_ERROR, whatever kind of change it is. */
static void op_storage_failed(srv_ctl_op *op, int rc)
{
    for (int i = 0; i < op->nspecs; i++)
        if (op->specs[i].error == 0 && !op->specs[i].skip) {
            op->specs[i].error = KP_ERR_KAFKA_STORAGE_ERROR;
            snprintf(op->specs[i].message, sizeof(op->specs[i].message), "metadata log: %s", st_strerror(rc));
        }
    for (int i = 0; i < op->nscram; i++)
        if (op->scram[i].error == 0) {
            op->scram[i].error = KP_ERR_KAFKA_STORAGE_ERROR;
            op->scram[i].message = "metadata log append failed";
        }
    for (int i = 0; i < op->nquotas; i++)
        if (op->quotas[i].error == 0 && !op->quotas[i].skip) {
            op->quotas[i].error = KP_ERR_KAFKA_STORAGE_ERROR;
            snprintf(op->quotas[i].message, sizeof(op->quotas[i].message), "metadata log: %s",
                     st_strerror(rc));
        }
    acl_change_failed(op->acls);
    for (int i = 0; i < op->ndyn; i++)
        if (op->dyn[i].error == 0)
            op->dyn[i].error = KP_ERR_KAFKA_STORAGE_ERROR;
    if (op->reg && op->reg_error == 0)
        op->reg_error = KP_ERR_KAFKA_STORAGE_ERROR;
}

/* Nothing of op is applied: every part not refused already fails with err. */
static void op_failed(srv_ctl_op *op, int16_t err, const char *msg)
{
    for (int i = 0; i < op->nspecs; i++)
        if (op->specs[i].error == 0 && !op->specs[i].skip)
            spec_error(&op->specs[i], err, msg);
    for (int i = 0; i < op->nscram; i++)
        if (op->scram[i].error == 0) {
            op->scram[i].error = err;
            op->scram[i].message = msg;
        }
    for (int i = 0; i < op->nquotas; i++)
        if (op->quotas[i].error == 0 && !op->quotas[i].skip) {
            op->quotas[i].error = err;
            snprintf(op->quotas[i].message, sizeof(op->quotas[i].message), "%s", msg);
        }
    if (op->acls) {
        for (int i = 0; i < op->acls->ncreate; i++)
            if (!op->acls->create_error[i])
                op->acls->create_error[i] = err;
        for (int i = 0; i < op->acls->nfilter; i++)
            if (!op->acls->filter_error[i])
                op->acls->filter_error[i] = err;
    }
    for (int i = 0; i < op->ndyn; i++)
        if (op->dyn[i].error == 0)
            op->dyn[i].error = err;
    if (op->reg && op->reg_error == 0)
        op->reg_error = err;
}

static const char not_controller_msg[] = "This node is not the active controller of the metadata quorum.";

static void ctl_appended(void *arg, int rc, int64_t base_offset)
{
    (void)base_offset;
    append_ctx *ax = arg;
    srv_controller *c = ax->c;
    srv_ctl_op *op = ax->op;
    if (rc == SRV_CTL_E_NOT_CONTROLLER) {
        /* Leadership moved before the change committed: whether it did is
         * unknown here, and the client's retry against the new controller
         * settles it (as Kafka's NOT_CONTROLLER does). */
        op_failed(op, KP_ERR_NOT_CONTROLLER, not_controller_msg);
        srv_meta_unref(ax->next);
        free(ax);
        ctl_finish(c, op);
        return;
    }
    if (c->is_leader && (rc == 0 || rc == ST_E_DUPLICATE)) {
        /* Committed: the quorum's apply has adopted the version the log
         * replays to, ahead of this completion; publish that one. */
        srv_meta_unref(ax->next);
        ax->next = srv_meta_ref(c->cur);
    }
    if (rc && rc != ST_E_DUPLICATE) {
        srv_error("metadata log append failed: %s", st_strerror(rc));
        op_storage_failed(op, rc);
        srv_meta_unref(ax->next);
        free(ax);
        ctl_finish(c, op);
        return;
    }
    srv_meta_unref(c->cur);
    c->cur = ax->next;
    free(ax);
    c->env.publish(c->env.arg, c, op, c->cur);
}

void srv_ctl_forwarded(srv_controller *c, srv_ctl_op *op, const uint8_t *body, size_t len, int16_t version)
{
    SRV_ASSERT(c->busy, "a forwarded operation came back to an idle controller");
    kp_arena a;
    kp_arena_init(&a, 1u << 20);
    kp_reader r;
    kp_reader_init(&r, body, len);
    kp_create_topics_response resp;
    int ok = body && kp_create_topics_response_decode(&r, &a, version, &resp) == 0;
    if (!ok) {
        /* No answer (the controller went away) or none we can read: the
         * outcome is unknown here, the client's retry settles it. */
        op_failed(op, KP_ERR_NOT_CONTROLLER, not_controller_msg);
    } else {
        for (int i = 0; i < op->nspecs; i++) {
            srv_topic_spec *sp = &op->specs[i];
            if (sp->skip || sp->error)
                continue;
            const kp_create_topics_response_creatable_topic_result *res = NULL;
            for (int32_t j = 0; j < resp.topics_count && !res; j++)
                if (resp.topics[j].name.len == sp->name.len &&
                    memcmp(resp.topics[j].name.p, sp->name.p, (size_t)sp->name.len) == 0)
                    res = &resp.topics[j];
            if (!res) {
                spec_error(sp, KP_ERR_UNKNOWN_SERVER_ERROR,
                           "the active controller did not answer for the topic");
                continue;
            }
            sp->error = res->error_code;
            size_t n = res->error_message.len > 0 ? (size_t)res->error_message.len : 0;
            if (n >= sizeof(sp->message))
                n = sizeof(sp->message) - 1;
            if (n)
                memcpy(sp->message, res->error_message.p, n);
            sp->message[n] = 0;
            if (!res->error_code) {
                sp->id = res->topic_id;
                sp->result_nparts = res->num_partitions;
                sp->result_rf = res->replication_factor;
            }
        }
    }
    kp_arena_reset(&a);
    ctl_finish(c, op);
}

/* A refusal comes through the completion path with the same error. */
static void ctl_accepted(void *arg, int rc, int64_t base_offset)
{
    if (rc && rc != ST_E_DUPLICATE)
        ctl_appended(arg, rc, base_offset);
}

/* The unfenced brokers in placement order: id order, or with racks the
 * first broker of each rack (racks by name), then the second of each, and
 * so on, so that consecutive entries sit on different racks (roughly what
 * Kafka's StripedReplicaPlacer achieves). Returns how many. */
static int place_order(const srv_meta *m, int32_t *order)
{
    int n = 0, racked = 0;
    for (int i = 0; i < m->nbrokers; i++)
        if (!m->brokers[i].fenced) {
            racked |= m->brokers[i].rack[0] != 0;
            if (order)
                order[n] = m->brokers[i].id;
            n++;
        }
    if (!racked || !order)
        return n;
    int k = 0;
    for (int round = 0; k < n; round++) {
        const char *prev = NULL; /* racks in name order: the next above prev */
        for (;;) {
            const char *rack = NULL;
            for (int i = 0; i < m->nbrokers; i++) {
                const char *r = m->brokers[i].rack;
                if (!m->brokers[i].fenced && (!prev || strcmp(r, prev) > 0) && (!rack || strcmp(r, rack) < 0))
                    rack = r;
            }
            if (!rack)
                break;
            int seen = 0;
            for (int i = 0; i < m->nbrokers; i++)
                if (!m->brokers[i].fenced && strcmp(m->brokers[i].rack, rack) == 0 && seen++ == round) {
                    order[k++] = m->brokers[i].id;
                    break;
                }
            prev = rack;
        }
    }
    return n;
}

int srv_ctl_place(const srv_meta *m, uint32_t start, int32_t from, int32_t nparts, int16_t rf,
                  int32_t *leaders, srv_part_repl *repl)
{
    int n = place_order(m, NULL);
    if (n == 0 || !leaders || rf < 1 || rf > n || rf > SRV_RF_MAX)
        return n;
    int32_t *order = malloc(sizeof(int32_t) * (size_t)n);
    SRV_ASSERT(order != NULL, "placement order of %d brokers: out of memory", n);
    place_order(m, order);
    for (int32_t p = from; p < nparts; p++) {
        /* Consecutive partitions lead on consecutive brokers; the followers
         * are the brokers after the leader in placement order. */
        int first = (int)((start + (uint32_t)p) % (uint32_t)n);
        srv_part_repl *r = &repl[p];
        memset(r, 0, sizeof(*r));
        r->nreplicas = r->nisr = rf;
        for (int j = 0; j < rf; j++)
            r->replicas[j] = r->isr[j] = order[(first + j) % n];
        leaders[p] = r->replicas[0];
    }
    free(order);
    return n;
}

/* Kafka's refusal of a replication factor the registered brokers cannot hold. */
static void rf_unreachable(srv_topic_spec *sp, int rf, int n)
{
    char msg[sizeof(sp->message)];
    snprintf(msg, sizeof(msg),
             "Unable to replicate the partition %d time(s): The target replication factor of %d cannot be "
             "reached because only %d broker(s) are registered.",
             rf, rf, n);
    spec_error(sp, KP_ERR_INVALID_REPLICATION_FACTOR, msg);
}

/* A manual assignment's partition p (of the spec's assign array) onto r:
 * checked against the registered brokers as Kafka's controller does; the
 * ISR is the unfenced replicas and the leader the first of them. 0, or -1
 * (spec refused). */
static int place_manual(const srv_meta *m, srv_topic_spec *sp, int32_t p, int32_t from, int32_t *leader,
                        srv_part_repl *r)
{
    char msg[sizeof(sp->message)];
    const int32_t *ids = &sp->assign[(size_t)(p - from) * (size_t)sp->assign_rf];
    memset(r, 0, sizeof(*r));
    for (int j = 0; j < sp->assign_rf; j++) {
        const srv_broker_reg *b = srv_meta_broker(m, ids[j]);
        if (!b) {
            snprintf(msg, sizeof(msg),
                     "The manual partition assignment includes broker %d, but no such broker is registered.",
                     (int)ids[j]);
            spec_error(sp, KP_ERR_INVALID_REPLICA_ASSIGNMENT, msg);
            return -1;
        }
        r->replicas[r->nreplicas++] = ids[j];
        if (!b->fenced)
            r->isr[r->nisr++] = ids[j];
    }
    if (r->nisr == 0) {
        snprintf(msg, sizeof(msg),
                 "All brokers specified in the manual partition assignment for partition %d are fenced or in "
                 "controlled shutdown.",
                 (int)p);
        spec_error(sp, KP_ERR_INVALID_REPLICA_ASSIGNMENT, msg);
        return -1;
    }
    *leader = r->isr[0];
    return 0;
}

/* The replication factor a creation asks for: its own, or the default of
 * its kind (Kafka's offsets.topic / transaction.state.log keys for the
 * internal topics). */
static int16_t spec_rf(const srv_controller *c, const srv_topic_spec *sp)
{
    if (sp->replication != -1)
        return sp->replication;
    if (kp_str_eq(sp->name, "__consumer_offsets"))
        return c->offsets_rf;
    if (kp_str_eq(sp->name, "__transaction_state"))
        return c->txn_rf;
    return c->default_rf;
}

/* With a quorum: t's partitions from `from` on get replicas and leaders,
 * from the spec's manual assignment or placed; the topic's id picks where
 * the round starts so that topics do not all start on the same broker.
 * Added partitions take the replication factor of the topic's first. 0, or
 * -1 (spec refused). */
static int place_topic(srv_controller *c, srv_topic_spec *sp, srv_topic *t, const srv_topic *existing,
                       int32_t from)
{
    if (!c->is_leader)
        return 0;
    int32_t *l = malloc(sizeof(int32_t) * (size_t)t->nparts);
    srv_part_repl *rp = calloc((size_t)t->nparts, sizeof(*rp));
    if (!l || !rp) {
        free(l);
        free(rp);
        spec_error(sp, KP_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
        return -1;
    }
    for (int32_t p = 0; p < from; p++) {
        l[p] = srv_topic_leader(existing, p, -1);
        const srv_part_repl *er = srv_topic_repl(existing, p);
        if (er)
            rp[p] = *er;
    }
    int rc = 0;
    if (sp->assign && sp->assign_n != t->nparts - from) {
        char msg[sizeof(sp->message)];
        snprintf(msg, sizeof(msg), "Increasing the number of partitions by %d but %d assignments provided.",
                 (int)(t->nparts - from), (int)sp->assign_n);
        spec_error(sp, KP_ERR_INVALID_REPLICA_ASSIGNMENT, msg);
        rc = -1;
    } else if (sp->assign) {
        for (int32_t p = from; p < t->nparts && rc == 0; p++)
            rc = place_manual(c->cur, sp, p, from, &l[p], &rp[p]);
    } else {
        const srv_part_repl *first = existing ? srv_topic_repl(existing, 0) : NULL;
        int16_t rf = first && first->nreplicas > 0 ? first->nreplicas : spec_rf(c, sp);
        uint32_t start = (uint32_t)t->id.b[0] << 8 | t->id.b[1];
        int n = srv_ctl_place(c->cur, start, from, t->nparts, rf, l, rp);
        if (rf > SRV_RF_MAX) {
            char msg[sizeof(sp->message)];
            snprintf(msg, sizeof(msg), "Replication factor %d is above kbroker's limit of %d replicas.",
                     (int)rf, SRV_RF_MAX);
            spec_error(sp, KP_ERR_INVALID_REPLICATION_FACTOR, msg);
            rc = -1;
        } else if (n == 0 || rf > n) {
            rf_unreachable(sp, rf, n);
            rc = -1;
        }
    }
    if (rc != 0) {
        free(l);
        free(rp);
        return -1;
    }
    free(t->leaders);
    free(t->repl);
    t->leaders = l;
    t->repl = rp;
    return 0;
}

/* Checks one creation against the current version; fills the topic. */
static int prepare_create(srv_controller *c, srv_topic_spec *sp, srv_topic *t)
{
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
    int32_t np = sp->nparts == -1 ? c->num_partitions : sp->nparts;
    if (np <= 0 || np > 100000) {
        spec_error(sp, KP_ERR_INVALID_PARTITIONS, "Number of partitions must be between 1 and 100000.");
        return -1;
    }
    if (sp->replication == 0 || sp->replication < -1) {
        spec_error(sp, KP_ERR_INVALID_REPLICATION_FACTOR,
                   "Replication factor must be larger than 0, or -1 to use the default value.");
        return -1;
    }
    if (!c->is_leader && sp->replication != -1 && sp->replication != 1) {
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
        srv_topic_free(t);
        spec_error(sp, KP_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
        return -1;
    }
    for (int i = 0; i < sp->ncfg; i++) {
        t->cfg[i].key = strdup(sp->cfg[i].key);
        t->cfg[i].value = strdup(sp->cfg[i].value);
        t->ncfg++;
    }
    do {
        if (c->env.new_id(c->env.arg, &t->id) != 0) {
            srv_topic_free(t);
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
    if (srv_topic_copy(t, existing) != 0) {
        srv_topic_free(t);
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

static void ctl_append(srv_controller *c, srv_ctl_op *op, kp_batch_builder *bb, srv_meta *next);

/* AlterUserScramCredentials: scram_store.c checks and encodes, the version
 * gets the new credential set. */
static void ctl_run_scram(srv_controller *c, srv_ctl_op *op)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    srv_scram_set *set = NULL;
    int n = srv_scram_alter(c->cur->scram, op->scram, op->nscram, &bb, c->env.now(c->env.arg), &set);
    srv_meta *next = n > 0 ? srv_meta_with_scram(c->cur, set) : NULL;
    srv_scram_set_unref(set);
    if (n > 0 && !next) {
        for (int i = 0; i < op->nscram; i++) {
            op->scram[i].error = KP_ERR_UNKNOWN_SERVER_ERROR;
            op->scram[i].message = "out of memory";
        }
    }
    if (!next) {
        kp_batch_builder_free(&bb);
        ctl_finish(c, op);
        return;
    }
    srv_info("metadata: SCRAM credentials of %d user(s) changed", n);
    ctl_append(c, op, &bb, next);
}

/* AlterClientQuotas: each valid entry changes one entity; its record holds
 * the entity's whole new state (a tombstone once no quota is left), so the
 * compacted log keeps exactly the latest state of each entity. */
static void ctl_run_quotas(srv_controller *c, srv_ctl_op *op)
{
    srv_quota_set *q = c->cur->quotas ? srv_quota_set_ref(c->cur->quotas) : srv_quota_set_new();
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int changes = 0;
    int64_t now = c->env.now(c->env.arg);
    for (int i = 0; q && i < op->nquotas; i++) {
        srv_quota_alter *qa = &op->quotas[i];
        if (qa->skip)
            continue;
        qa->error = srv_quota_validate(&qa->entity, qa->ops, qa->nops, qa->message, sizeof(qa->message));
        if (qa->error || op->validate_only)
            continue;
        srv_quota_set *nq = srv_quota_apply(q, &qa->entity, qa->ops, qa->nops);
        kp_writer kw, vw;
        kp_writer_init(&kw, 64);
        kp_writer_init(&vw, 64);
        const srv_quota_entry *e = nq ? srv_quota_find(nq, &qa->entity) : NULL;
        int rc = nq ? srv_quota_record_key(&kw, &qa->entity) : KP_E_NOMEM;
        if (rc == 0 && e)
            rc = srv_quota_record_value(&vw, e);
        if (rc == 0)
            rc = kp_batch_builder_add(&bb, now, (kp_bytes){kw.buf, (int32_t)kw.len},
                                      e ? (kp_bytes){vw.buf, (int32_t)vw.len} : KP_BYTES_NULL, NULL, 0);
        kp_writer_free(&kw);
        kp_writer_free(&vw);
        if (rc) {
            srv_quota_set_unref(nq);
            qa->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            snprintf(qa->message, sizeof(qa->message), "out of memory");
            continue;
        }
        srv_quota_set_unref(q);
        q = nq;
        changes++;
    }
    srv_meta *next = changes && q ? srv_meta_with_quotas(c->cur, q) : NULL;
    srv_quota_set_unref(q);
    if (!next) {
        if (changes)
            for (int i = 0; i < op->nquotas; i++)
                if (!op->quotas[i].error && !op->quotas[i].skip) {
                    op->quotas[i].error = KP_ERR_UNKNOWN_SERVER_ERROR;
                    snprintf(op->quotas[i].message, sizeof(op->quotas[i].message), "out of memory");
                }
        kp_batch_builder_free(&bb);
        ctl_finish(c, op);
        return;
    }
    ctl_append(c, op, &bb, next);
}

static int add_acl_record(kp_batch_builder *bb, int64_t now, const srv_acl *a, int tombstone)
{
    kp_writer kw, vw;
    kp_writer_init(&kw, 64);
    kp_writer_init(&vw, 64);
    int rc = srv_acl_encode_key(&kw, a);
    if (rc == 0 && !tombstone)
        rc = srv_acl_encode_value(&vw, a);
    if (rc == 0)
        rc = kp_batch_builder_add(bb, now, (kp_bytes){kw.buf, (int32_t)kw.len},
                                  tombstone ? KP_BYTES_NULL : (kp_bytes){vw.buf, (int32_t)vw.len}, NULL, 0);
    kp_writer_free(&kw);
    kp_writer_free(&vw);
    return rc;
}

/* CreateAcls / DeleteAcls: the new set, one record per binding added
 * (creating an existing binding changes nothing, as in Kafka) and a
 * tombstone per binding a filter deleted. */
static void ctl_run_acls(srv_controller *c, srv_ctl_op *op)
{
    srv_acl_change *ch = op->acls;
    srv_acl_set *base = c->cur->acls;
    int nb = base ? base->n : 0;
    uint8_t *drop = calloc((size_t)nb + 1, 1);
    int *deleted_by = malloc(((size_t)nb + 1) * sizeof(int));
    srv_acl *add = malloc(((size_t)ch->ncreate + 1) * sizeof(srv_acl));
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int64_t now = c->env.now(c->env.arg);
    int nadd = 0, changes = 0, failed = !drop || !deleted_by || !add;
    for (int j = 0; !failed && j < nb; j++)
        deleted_by[j] = -1;
    for (int i = 0; !failed && i < ch->ncreate; i++) {
        if (ch->create_error[i])
            continue;
        const srv_acl *a = &ch->create[i];
        int dup = srv_acl_set_find(base, a) >= 0;
        for (int k = 0; k < nadd && !dup; k++)
            dup = srv_acl_equal(&add[k], a);
        if (dup)
            continue;
        if (add_acl_record(&bb, now, a, 0)) {
            failed = 1;
            break;
        }
        add[nadd++] = *a;
        changes++;
    }
    for (int f = 0; !failed && f < ch->nfilter; f++) {
        if (ch->filter_error[f])
            continue;
        for (int j = 0; j < nb; j++) {
            if (drop[j] || !srv_acl_filter_match(&ch->filters[f], &base->acls[j]))
                continue;
            if (add_acl_record(&bb, now, &base->acls[j], 1)) {
                failed = 1;
                break;
            }
            drop[j] = 1;
            deleted_by[j] = f;
            changes++;
        }
    }
    srv_meta *next = NULL;
    if (!failed && changes) {
        srv_acl_set *set = srv_acl_set_derive(base, drop, add, nadd);
        next = set ? srv_meta_derive_acls(c->cur, set) : NULL;
        srv_acl_set_unref(set);
        failed = !next;
    }
    free(drop);
    free(add);
    if (failed) {
        free(deleted_by);
        kp_batch_builder_free(&bb);
        for (int i = 0; i < ch->ncreate; i++)
            if (!ch->create_error[i])
                ch->create_error[i] = KP_ERR_UNKNOWN_SERVER_ERROR;
        for (int i = 0; i < ch->nfilter; i++)
            if (!ch->filter_error[i])
                ch->filter_error[i] = KP_ERR_UNKNOWN_SERVER_ERROR;
        ctl_finish(c, op);
        return;
    }
    ch->before = base ? srv_acl_set_ref(base) : NULL;
    ch->deleted_by = deleted_by;
    if (!changes) {
        kp_batch_builder_free(&bb);
        ctl_finish(c, op);
        return;
    }
    ctl_append(c, op, &bb, next);
}

/* A (group, key) pair the set does not hold yet: it counts against the cap. */
static int adds_pair(const srv_dyncfg *d, const srv_dyncfg_change *ch)
{
    return !ch->error && ch->value && !(d && srv_dyncfg_get(d, ch->resource, ch->key));
}

/* SRV_GROUPCFG_MAX_ENTRIES, whole groups at a time: when the op's new pairs do
 * not fit, every change of each group that adds one is refused, so no group is
 * left half-altered; validate_only gets the same answer as the real run.
 * Pairs set twice in one op count twice (refusing early, never late). */
static void refuse_past_group_cap(const srv_dyncfg *d, srv_ctl_op *op)
{
    int64_t adding = 0;
    for (int i = 0; i < op->ndyn; i++)
        adding += adds_pair(d, &op->dyn[i]);
    if (adding == 0 || (d ? d->n : 0) + adding <= SRV_GROUPCFG_MAX_ENTRIES)
        return;
    for (int i = 0; i < op->ndyn; i++) {
        if (!adds_pair(d, &op->dyn[i]))
            continue;
        const char *group = op->dyn[i].resource;
        srv_warn("configs of group %s refused: the cluster holds the most group configs it keeps (%d)", group,
                 SRV_GROUPCFG_MAX_ENTRIES);
        for (int j = 0; j < op->ndyn; j++)
            if (!op->dyn[j].error && strcmp(op->dyn[j].resource, group) == 0)
                op->dyn[j].error = KP_ERR_POLICY_VIOLATION;
    }
}

/* Dynamic broker (or group) configs: one record per change, in order (a
 * later change of the same key wins, in the version as in the compacted
 * log). */
static void ctl_run_broker(srv_controller *c, srv_ctl_op *op)
{
    int group = op->kind == SRV_CTL_ALTER_GROUP;
    char tag = group ? SRV_GROUPCFG_RECORD_KEY : SRV_DYNCFG_RECORD_KEY;
    srv_dyncfg *d = srv_dyncfg_ref(group ? c->cur->groupcfg : c->cur->dyncfg);
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int64_t now = c->env.now(c->env.arg);
    if (group)
        refuse_past_group_cap(d, op);
    int failed = 0, changes = 0;
    for (int i = 0; i < op->ndyn && !failed; i++) {
        srv_dyncfg_change *ch = &op->dyn[i];
        if (ch->error || op->validate_only)
            continue;
        srv_dyncfg *nd = NULL;
        failed = srv_dyncfg_with(d, ch->resource, ch->key, ch->value, &nd) != 0 ||
                 srv_dyncfg_record_add_tag(&bb, tag, now, ch->resource, ch->key, ch->value) != 0;
        if (failed) {
            srv_dyncfg_unref(nd);
            break;
        }
        srv_dyncfg_unref(d);
        d = nd;
        changes++;
    }
    srv_meta *next = NULL;
    if (!failed && changes)
        next = group ? srv_meta_with_groupcfg(c->cur, d) : srv_meta_with_dyncfg(c->cur, d);
    srv_dyncfg_unref(d);
    if (!next) {
        if (failed || changes)
            for (int i = 0; i < op->ndyn; i++)
                if (!op->dyn[i].error)
                    op->dyn[i].error = KP_ERR_UNKNOWN_SERVER_ERROR;
        kp_batch_builder_free(&bb);
        ctl_finish(c, op);
        return;
    }
    srv_info("metadata: %d dynamic %s config change(s)", changes, group ? "group" : "broker");
    ctl_append(c, op, &bb, next);
}

/* Applies op to a scratch version, collecting the records to persist. */
/* A registration (or a fencing): one 'N' record with the broker's whole
 * state; the version is the one the quorum's apply makes of it. */
static int isr_has(const srv_part_repl *r, int32_t id)
{
    for (int i = 0; i < r->nisr; i++)
        if (r->isr[i] == id)
            return 1;
    return 0;
}

/* The ISRs a broker's fencing or return changes, as placement records in
 * the same batch as its registration. Fenced: it leaves the ISR of every
 * partition it follows (never the last member; a partition it leads keeps
 * its ISR, as no leader is elected yet). Back: it rejoins the ISR of every
 * partition it is a replica of and whose leader is live; Kafka waits for it
 * to catch up (AlterPartition, not built), here the high watermark waits for
 * it instead. Each change bumps the partition epoch. */
static void isr_follow_registration(srv_controller *c, kp_batch_builder *bb, int32_t id, int fenced)
{
    const srv_meta *m = c->cur;
    for (int i = 0; i < m->ntopics; i++) {
        const srv_topic *t = &m->topics[i];
        if (!t->repl)
            continue;
        srv_part_repl *copy = NULL;
        for (int32_t p = 0; p < t->nparts; p++) {
            const srv_part_repl *r = &t->repl[p];
            int in_isr = isr_has(r, id), replica = srv_topic_is_replica(t, p, id);
            const srv_broker_reg *lb = srv_meta_broker(m, t->leaders[p]);
            int change = fenced ? in_isr && r->nisr > 1 && t->leaders[p] != id
                                : replica && !in_isr && lb && !lb->fenced && r->nisr < r->nreplicas;
            if (!change)
                continue;
            if (!copy) {
                copy = malloc(sizeof(*copy) * (size_t)t->nparts);
                SRV_ASSERT(copy != NULL, "ISR change of %d partitions: out of memory", t->nparts);
                memcpy(copy, t->repl, sizeof(*copy) * (size_t)t->nparts);
            }
            srv_part_repl *w = &copy[p];
            if (fenced) {
                int k = 0;
                for (int j = 0; j < w->nisr; j++)
                    if (w->isr[j] != id)
                        w->isr[k++] = w->isr[j];
                w->nisr = (int16_t)k;
            } else {
                w->isr[w->nisr++] = id;
            }
            w->part_epoch++;
        }
        if (!copy)
            continue;
        srv_topic tmp = *t;
        tmp.repl = copy;
        kp_writer pw;
        kp_writer_init(&pw, 64);
        encode_place(&pw, &tmp);
        uint8_t key[17];
        key[0] = SRV_PLACE_RECORD_KEY;
        memcpy(key + 1, t->id.b, 16);
        kp_batch_builder_add(bb, c->env.now(c->env.arg), (kp_bytes){key, 17},
                             (kp_bytes){pw.buf, (int32_t)pw.len}, NULL, 0);
        kp_writer_free(&pw);
        free(copy);
    }
}

static void ctl_run_register(srv_controller *c, srv_ctl_op *op)
{
    if (!c->is_leader) {
        op->reg_error = KP_ERR_UNSUPPORTED_VERSION; /* no quorum: nothing to register with */
        ctl_finish(c, op);
        return;
    }
    if (op->kind == SRV_CTL_HEARTBEAT) {
        const srv_broker_reg *r = srv_meta_broker(c->cur, op->reg->id);
        if (!r) {
            op->reg_error = KP_ERR_BROKER_ID_NOT_REGISTERED;
        } else {
            op->reg->fenced = r->fenced;
            if (c->heard)
                c->heard(c->leader_arg, op->reg->id);
        }
        ctl_finish(c, op);
        return;
    }
    const srv_broker_reg *cur = srv_meta_broker(c->cur, op->reg->id);
    if (cur && memcmp(cur, op->reg, sizeof(*cur)) == 0) {
        ctl_finish(c, op); /* already so: nothing to write */
        return;
    }
    if (c->heard && !op->reg->fenced)
        c->heard(c->leader_arg, op->reg->id);
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    uint8_t key[5];
    srv_ctl_broker_key(op->reg->id, key);
    kp_writer vw;
    kp_writer_init(&vw, 128);
    srv_ctl_encode_broker(&vw, op->reg);
    kp_batch_builder_add(&bb, c->env.now(c->env.arg), (kp_bytes){key, 5}, (kp_bytes){vw.buf, (int32_t)vw.len},
                         NULL, 0);
    kp_writer_free(&vw);
    isr_follow_registration(c, &bb, op->reg->id, op->reg->fenced);
    ctl_append(c, op, &bb, srv_meta_ref(c->cur));
}

static void ctl_run(srv_controller *c, srv_ctl_op *op)
{
    if (op->kind == SRV_CTL_REGISTER || op->kind == SRV_CTL_HEARTBEAT) {
        ctl_run_register(c, op);
        return;
    }
    if (op->kind == SRV_CTL_ALTER_BROKER || op->kind == SRV_CTL_ALTER_GROUP) {
        ctl_run_broker(c, op);
        return;
    }
    if (op->kind == SRV_CTL_ALTER_SCRAM) {
        ctl_run_scram(c, op);
        return;
    }
    if (op->kind == SRV_CTL_ALTER_QUOTAS) {
        ctl_run_quotas(c, op);
        return;
    }
    if (op->kind == SRV_CTL_ACLS) {
        ctl_run_acls(c, op);
        return;
    }
    srv_meta *next = srv_meta_ref(c->cur);
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    int changes = 0;
    int64_t now = c->env.now(c->env.arg);
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
            if (ok == 0 && place_topic(c, sp, &t, NULL, 0) != 0) {
                srv_topic_free(&t);
                ok = -1;
            }
            if (ok == 0)
                sp->result_rf = t.repl ? t.repl[0].nreplicas : 1;
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
            } else if (srv_topic_copy(&t, existing) == 0) {
                t.nparts = sp->nparts;
                sp->id = t.id;
                ok = 0;
                free(t.leaders); /* sized for the old count */
                t.leaders = NULL;
                free(t.repl);
                t.repl = NULL;
                if (place_topic(c, sp, &t, existing, existing->nparts) != 0) {
                    srv_topic_free(&t);
                    ok = -1;
                }
            }
        }
        c->cur = saved;
        if (ok != 0)
            continue;
        if (op->validate_only) {
            if (op->kind != SRV_CTL_DELETE)
                srv_topic_free(&t); /* checked, not applied */
            continue;
        }
        uint8_t key[17];
        key[0] = 'T';
        srv_meta *derived;
        if (op->kind == SRV_CTL_DELETE) {
            memcpy(key + 1, sp->id.b, 16);
            kp_batch_builder_add(&bb, now, (kp_bytes){key, 17}, KP_BYTES_NULL, NULL, 0);
            if (c->is_leader) {
                key[0] = SRV_PLACE_RECORD_KEY;
                kp_batch_builder_add(&bb, now, (kp_bytes){key, 17}, KP_BYTES_NULL, NULL, 0);
            }
            derived = srv_meta_derive(next, NULL, &sp->id);
        } else {
            memcpy(key + 1, t.id.b, 16);
            kp_writer vw;
            kp_writer_init(&vw, 128);
            encode_topic(&vw, &t);
            kp_batch_builder_add(&bb, now, (kp_bytes){key, 17}, (kp_bytes){vw.buf, (int32_t)vw.len}, NULL, 0);
            kp_writer_free(&vw);
            if (t.leaders && op->kind != SRV_CTL_ALTER_CONFIGS) {
                kp_writer pw;
                kp_writer_init(&pw, 64);
                encode_place(&pw, &t);
                key[0] = SRV_PLACE_RECORD_KEY;
                kp_batch_builder_add(&bb, now, (kp_bytes){key, 17}, (kp_bytes){pw.buf, (int32_t)pw.len}, NULL,
                                     0);
                kp_writer_free(&pw);
            }
            derived = srv_meta_derive(next, &t, NULL);
            srv_topic_free(&t);
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
        ctl_finish(c, op);
        return;
    }
    ctl_append(c, op, &bb, next);
}

/* Persists bb's records (freeing bb), then publishes next (taking it). */
static void ctl_append(srv_controller *c, srv_ctl_op *op, kp_batch_builder *bb, srv_meta *next)
{
    kp_writer bw;
    kp_writer_init(&bw, 256);
    int rc = kp_batch_builder_finish(bb, &bw);
    kp_batch_builder_free(bb);
    append_ctx *ax = calloc(1, sizeof(*ax));
    if (rc == 0 && ax) {
        ax->c = c;
        ax->op = op;
        ax->next = next;
        /* Waits (in order) while the log applies backpressure rather than
         * failing a topic change for a local condition. */
        c->env.append(c->env.arg, bw.buf, bw.len, ctl_accepted, ctl_appended, ax);
        kp_writer_free(&bw);
        return;
    }
    if (rc == 0)
        rc = -ENOMEM;
    kp_writer_free(&bw);
    if (rc) {
        free(ax);
        srv_meta_unref(next);
        op_storage_failed(op, rc);
        ctl_finish(c, op);
    }
}

static void ctl_next(srv_controller *c)
{
    if (c->busy || !c->head)
        return;
    srv_ctl_op *op = c->head;
    c->head = op->next;
    if (!c->head)
        c->tail = NULL;
    c->busy = 1;
    if (c->is_leader && !c->is_leader(c->leader_arg)) {
        /* Creations go to the active controller, as Kafka's brokers forward
         * them (auto-creation included); the other changes are refused and
         * clients send them to the controller. Internal topics are the
         * active controller's to create (quorum.c waits for the brokers to
         * register before placing the offsets topic). */
        int internal = 0;
        for (int i = 0; i < op->nspecs; i++)
            internal |= srv_topic_is_internal(op->specs[i].name);
        /* A client's request whose Envelope got no usable answer is served
         * here with that outcome: forwarding it again as this node would
         * drop the caller's principal. */
        int16_t ferr = op->call.req ? op->call.req->forward_error : 0;
        /* An Envelope's request is a follower's forward: it retries against
         * the new controller on NOT_CONTROLLER, as Kafka's controller
         * answers one it no longer leads for. */
        int env = op->call.req && op->call.req->enveloped;
        if (op->kind == SRV_CTL_CREATE && c->forward && !internal && !ferr && !env) {
            c->forward(c->leader_arg, op); /* back through srv_ctl_forwarded */
            return;
        }
        if (ferr && ferr != KP_ERR_NOT_CONTROLLER)
            op_failed(op, ferr, "The active controller did not serve the forwarded request.");
        else
            op_failed(op, KP_ERR_NOT_CONTROLLER, not_controller_msg);
        ctl_finish(c, op);
        return;
    }
    ctl_run(c, op);
}

void srv_ctl_enqueue(srv_controller *c, srv_ctl_op *op)
{
    op->next = NULL;
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    ctl_next(c);
}

/* ---- the broker's environment: shard 0, the metadata log, the shards ---- */

static int64_t env_now(void *arg)
{
    (void)arg;
    return srv_now_ms();
}

static int env_new_id(void *arg, kp_uuid *id)
{
    (void)arg;
    return getrandom(id->b, 16, 0) == 16 ? 0 : -1;
}

static void env_append(void *arg, const uint8_t *batch, size_t len, st_accept_cb accepted, st_append_cb done,
                       void *ctx)
{
    srv_controller *c = arg;
    if (c->b->quorum) {
        (void)accepted; /* a refusal comes through done, like the rest */
        srv_quorum_propose(c->b->quorum, batch, len, done, ctx);
        return;
    }
    st_log_append_ordered(c->log, batch, len, accepted, done, ctx);
}

typedef struct publish_msg {
    srv_call call; /* from shard 0 to each shard and back */
    srv_meta *meta;
    srv_controller *c;
    srv_ctl_op *op;
} publish_msg;

static void publish_ack(srv_shard *s0, srv_call *call)
{
    (void)s0;
    publish_msg *pm = (publish_msg *)call;
    srv_controller *c = pm->c;
    srv_ctl_op *op = pm->op;
    free(pm);
    if (!op)
        return; /* a version the quorum committed, for no operation here */
    SRV_ASSERT(op->acks_pending > 0, "metadata publication acknowledged %d times too often",
               1 - op->acks_pending);
    if (--op->acks_pending == 0)
        srv_ctl_published(c, op);
}

/* Runs on every shard: switch to the new version and open/close partitions. */
static void publish_apply(srv_shard *s, srv_call *call)
{
    publish_msg *pm = (publish_msg *)call;
    srv_meta *old = s->meta;
    s->meta = pm->meta; /* the message's reference becomes the shard's */
    pm->meta = NULL;
    srv_partmap_reconcile(s->parts, s->meta);
    if (old)
        srv_meta_unref(old);
    srv_call_reply(s, &pm->call);
}

static void env_publish(void *arg, srv_controller *c, srv_ctl_op *op, srv_meta *m)
{
    srv_controller *bc = arg;
    srv_shard *s0 = &bc->b->shards[0];
    if (bc->b->draining) {
        /* The loops have stopped and the shards' partitions are being
         * drained: reconciling them now would open and free partitions under
         * the drain. The record is durable; the next start replays it. */
        srv_ctl_published(c, op);
        return;
    }
    op->acks_pending = s0->b->nshards;
    for (int i = 0; i < s0->b->nshards; i++) {
        publish_msg *pm = calloc(1, sizeof(*pm));
        /* Shards would disagree on the metadata: no safe way on. */
        SRV_ASSERT(pm != NULL, "out of memory publishing metadata");
        srv_call_init(&pm->call, publish_apply, publish_ack, NULL);
        pm->meta = srv_meta_ref(m);
        pm->c = c;
        pm->op = op;
        srv_call_send(s0, NULL, &pm->call, i);
    }
}

void srv_ctl_publish_all(srv_broker *b, srv_meta *m)
{
    srv_shard *s0 = &b->shards[0];
    for (int i = 0; i < b->nshards; i++) {
        publish_msg *pm = calloc(1, sizeof(*pm));
        SRV_ASSERT(pm != NULL, "out of memory publishing metadata");
        srv_call_init(&pm->call, publish_apply, publish_ack, NULL);
        pm->meta = srv_meta_ref(m);
        pm->c = b->ctl;
        srv_call_send(s0, NULL, &pm->call, i);
    }
    srv_meta_unref(m);
}

static void env_finish(void *arg, srv_ctl_op *op)
{
    srv_controller *c = arg;
    srv_call_reply(&c->b->shards[0], &op->call);
}

static const srv_ctl_env broker_env = {NULL, env_now, env_new_id, env_append, env_publish, env_finish};

static void ctl_on_submit(srv_shard *s0, srv_call *call)
{
    srv_ctl_enqueue(s0->b->ctl, (srv_ctl_op *)call);
}

static void ctl_returned(srv_shard *on, srv_call *call)
{
    srv_ctl_op *op = (srv_ctl_op *)call;
    op->done(on, op);
}

void srv_ctl_submit(srv_shard *from, srv_req *req, srv_ctl_op *op)
{
    /* No drop: an op with a request lives in the request's arena, and the
     * request is answered only by op->done. */
    srv_call_init(&op->call, ctl_on_submit, ctl_returned, NULL);
    srv_call_send(from, req, &op->call, 0);
}

/*
 * share_coord.c — the share coordinator wired into the shards (share_coord.h):
 * the __share_group_state topic, the state records written before an answer,
 * the pruning of each state partition, and the start-up replay (with the
 * groups' dynamic configs of the metadata log).
 *
 * Owns the persist jobs (heap, freed when their last record is back) and each
 * shard's prune trackers (the start-up replay's maps, kept). Must not: touch a
 * share group or a tracker from any thread but its shard's (the start-up
 * restore runs before the loops), decide a state, prune below a snapshot that
 * is not durable, or block a loop.
 */
#include "share_coord.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "controller.h"
#include "dyncfg.h"
#include "errors.h"
#include "logging.h"
#include "meta.h"
#include "partcall.h"
#include "share_state.h"
#include "srv_assert.h"
#include "st_log.h"

/* The topic is created once per shard thread at a time; a second creation
 * racing from another shard answers TOPIC_ALREADY_EXISTS, which is fine. */
static __thread int creating;

srv_share_groups *srv_share_store(srv_shard *s)
{
    if (!s->share_groups) {
        const srv_config *c = &s->b->cfg;
        srv_share_cfg sc = {
            .heartbeat_ms = c->group_share_heartbeat_interval_ms,
            .session_ms = c->group_share_session_timeout_ms,
            .lock_ms = c->group_share_record_lock_duration_ms,
            .max_delivery = c->group_share_delivery_count_limit,
            .max_locks = c->group_share_partition_max_record_locks,
            .max_size = c->group_share_max_size,
            .auto_reset_earliest = 0,
        };
        s->share_groups = srv_share_groups_new(&sc);
    }
    return s->share_groups;
}

/* ---- the topic ------------------------------------------------------------ */

typedef struct create_op {
    srv_ctl_op op;
    srv_topic_spec spec;
    srv_topic_cfg_kv cfg[4];
    char segment[24];
} create_op;

static void created(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    create_op *c = (create_op *)op;
    creating = 0;
    if (c->spec.error == KP_ERR_NONE)
        srv_info("created %s with %d partitions", SRV_SHARE_STATE_TOPIC, c->spec.result_nparts);
    else if (c->spec.error != KP_ERR_TOPIC_ALREADY_EXISTS)
        srv_error("cannot create %s: %s (error %d)", SRV_SHARE_STATE_TOPIC, c->spec.message, c->spec.error);
    free(c);
}

int16_t srv_share_state_ready(srv_shard *s)
{
    if (srv_meta_topic(s->meta, kp_str_c(SRV_SHARE_STATE_TOPIC)))
        return KP_ERR_NONE;
    if (creating)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    create_op *c = calloc(1, sizeof(*c));
    if (!c)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    const srv_config *cfg = &s->b->cfg;
    /* Kafka's share.coordinator.state.topic.segment.bytes is an internal
     * config (not listed, not meant to be set): its default. */
    snprintf(c->segment, sizeof(c->segment), "%d", 104857600);
    /* Kafka 4.4's configs of this topic (seen with DescribeConfigs): deleted,
     * never by age (its coordinator prunes below the oldest snapshot still
     * needed), compression as the writer chose, its own segment size. */
    c->cfg[0] = (srv_topic_cfg_kv){.key = "cleanup.policy", .value = "delete"};
    c->cfg[1] = (srv_topic_cfg_kv){.key = "compression.type", .value = "producer"};
    c->cfg[2] = (srv_topic_cfg_kv){.key = "segment.bytes", .value = c->segment};
    c->cfg[3] = (srv_topic_cfg_kv){.key = "retention.ms", .value = "-1"};
    c->spec.name = kp_str_c(SRV_SHARE_STATE_TOPIC);
    c->spec.nparts = cfg->share_state_num_partitions;
    c->spec.replication = -1;
    c->spec.ncfg = 4;
    c->spec.cfg = c->cfg;
    c->op.kind = SRV_CTL_CREATE;
    c->op.nspecs = 1;
    c->op.specs = &c->spec;
    c->op.done = created;
    creating = 1;
    srv_ctl_submit(s, NULL, &c->op);
    return KP_ERR_COORDINATOR_NOT_AVAILABLE;
}

/* ---- pruning ---------------------------------------------------------------- */

typedef struct srv_share_trackers {
    int32_t nparts;
    srv_ss_map **maps; /* by state partition; NULL: nothing written or loaded yet */
} srv_share_trackers;

/* The tracker of a state partition the shard owns; NULL when out of memory. */
static srv_ss_map *tracker(srv_shard *s, int32_t partition, int32_t nparts)
{
    srv_share_trackers *tr = s->share_state;
    if (!tr) {
        if (!(tr = calloc(1, sizeof(*tr))))
            return NULL;
        s->share_state = tr;
    }
    if (partition >= tr->nparts) {
        int32_t n = nparts > partition ? nparts : partition + 1;
        srv_ss_map **m = realloc(tr->maps, (size_t)n * sizeof(*m));
        if (!m)
            return NULL;
        memset(m + tr->nparts, 0, (size_t)(n - tr->nparts) * sizeof(*m));
        tr->maps = m;
        tr->nparts = n;
    }
    if (!tr->maps[partition]) {
        srv_ss_map *m = calloc(1, sizeof(*m));
        if (!m)
            return NULL;
        srv_ss_map_init(m);
        tr->maps[partition] = m;
    }
    return tr->maps[partition];
}

static void pruned(void *arg, int rc, int64_t offset)
{
    (void)arg;
    if (rc)
        srv_warn("%s: pruning below %lld failed: %s", SRV_SHARE_STATE_TOPIC, (long long)offset,
                 st_strerror(rc));
}

/* Deletes what no share-partition of the state partition needs: everything
 * below the oldest of their latest snapshots. */
static void prune(srv_part *p, const srv_ss_map *m)
{
    int64_t point = srv_ss_prune_point(m);
    if (point <= st_log_start_offset(p->log) || point > st_log_high_watermark(p->log))
        return;
    int rc = st_log_delete_records(p->log, point, pruned, NULL);
    if (rc < 0)
        srv_warn("%s: cannot prune below %lld: %s", SRV_SHARE_STATE_TOPIC, (long long)point, st_strerror(rc));
}

void srv_share_state_stop(srv_broker *b)
{
    for (int i = 0; i < b->nshards; i++) {
        srv_share_trackers *tr = b->shards[i].share_state;
        if (!tr)
            continue;
        for (int32_t p = 0; p < tr->nparts; p++) {
            if (tr->maps[p])
                srv_ss_map_free(tr->maps[p]);
            free(tr->maps[p]);
        }
        free(tr->maps);
        free(tr);
        b->shards[i].share_state = NULL;
    }
}

/* ---- writing -------------------------------------------------------------- */

/* persist_op.type of a tombstone (a ShareSnapshot key, null value). */
#define TOMBSTONE (-1)

typedef struct persist_job {
    int outstanding;
    void (*done)(srv_shard *s, void *arg);
    void *arg;
} persist_job;

typedef struct persist_op {
    srv_part_op base;
    srv_shard *owner;
    persist_job *job;
    int16_t *err;
    uint8_t *batch;
    size_t len;
    int16_t error;
    /* the record's key, for the owner's prune tracker */
    int type;
    char *group; /* heap */
    int32_t group_len;
    srv_share_tp tp;
    int32_t nparts;
    srv_ss_map *tracker; /* owner side */
} persist_op;

static void job_step(srv_shard *s, persist_job *j)
{
    if (--j->outstanding > 0)
        return;
    void (*done)(srv_shard *, void *) = j->done;
    void *arg = j->arg;
    free(j);
    done(s, arg);
}

static void append_durable(void *arg, int rc, int64_t base)
{
    persist_op *op = arg;
    op->error = srv_st_to_kafka(rc);
    if (rc == 0 && op->tracker && op->type == TOMBSTONE)
        srv_ss_untrack(op->tracker, (kp_str){op->group, op->group_len}, &op->tp.topic, op->tp.partition);
    else if (rc == 0 && op->tracker)
        srv_ss_track(op->tracker, (kp_str){op->group, op->group_len}, &op->tp.topic, op->tp.partition,
                     op->type, base);
    srv_call_reply(op->owner, &op->base.call);
}

static void append_accepted(void *arg, int rc, int64_t base)
{
    (void)base;
    if (rc == 0)
        return; /* append_durable reports the outcome */
    append_durable(arg, rc, base);
}

static void persist_run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    persist_op *op = (persist_op *)base;
    op->owner = owner;
    if (!p || srv_part_offline(p)) {
        op->error = p ? KP_ERR_KAFKA_STORAGE_ERROR : KP_ERR_NOT_LEADER_OR_FOLLOWER;
        srv_call_reply(owner, &base->call);
        return;
    }
    op->tracker = tracker(owner, base->partition, op->nparts);
    if (op->tracker && op->type == SRV_SS_SNAPSHOT)
        prune(p, op->tracker); /* as of the records durable so far */
    /* Ordered behind earlier appends, as group records: a coordinator write
     * is never refused for a purely local backpressure. */
    st_log_append_ordered(p->log, op->batch, op->len, append_accepted, append_durable, op);
}

static void persist_done(srv_shard *s, srv_part_op *base)
{
    persist_op *op = (persist_op *)base;
    /* Kafka's share coordinator answers a failed write with
     * COORDINATOR_NOT_AVAILABLE or NOT_COORDINATOR, as the group one does. */
    int16_t e = op->error;
    if (e == KP_ERR_UNKNOWN_TOPIC_OR_PARTITION || e == KP_ERR_REQUEST_TIMED_OUT)
        e = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    else if (e == KP_ERR_NOT_LEADER_OR_FOLLOWER || e == KP_ERR_KAFKA_STORAGE_ERROR)
        e = KP_ERR_NOT_COORDINATOR;
    if (e)
        srv_warn("%s-%d: share state record not written (error %d)", SRV_SHARE_STATE_TOPIC, base->partition,
                 op->error);
    *op->err = e;
    persist_job *j = op->job;
    free(op->batch);
    free(op->group);
    free(op);
    job_step(s, j);
}

/* The tombstone of one share-partition in a finished batch: Kafka's share
 * coordinator deletes a state with a null value under the ShareSnapshot key
 * (replay removes the entry whatever the key type). 0 or a KP_E_ code. */
static int build_tombstone(kp_str group, const srv_share_tp *tp, kp_writer *bw, int reset)
{
    kp_writer kw, vw;
    kp_writer_init(&kw, 64);
    kp_writer_init(&vw, 64);
    int64_t now = srv_now_ms();
    /* A reset is Kafka's snapshot without a start (-1) and without batches. */
    srv_ss_image img = {.start = -1, .delivery_complete = -1, .create_ts = now, .write_ts = now};
    int rc = srv_ss_key(&kw, SRV_SS_SNAPSHOT, group, &tp->topic, tp->partition);
    if (!rc && reset)
        rc = srv_ss_value(&vw, SRV_SS_SNAPSHOT, &img);
    if (!rc) {
        kp_batch_builder bb;
        kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
        rc = kp_batch_builder_add(&bb, now, (kp_bytes){kw.buf, (int32_t)kw.len},
                                  reset ? (kp_bytes){vw.buf, (int32_t)vw.len} : KP_BYTES_NULL, NULL, 0);
        if (!rc)
            rc = kp_batch_builder_finish(&bb, bw);
        kp_batch_builder_free(&bb);
    }
    kp_writer_free(&kw);
    kp_writer_free(&vw);
    return rc;
}

/* The record of one share-partition in a finished batch; 0 or a KP_E_ code. */
static int build(srv_shard *s, kp_str group, const srv_share_tp *tp, srv_share_part *sp, kp_writer *bw,
                 int *typep)
{
    int nruns = srv_sp_runs(sp, NULL, 0);
    srv_sp_run *runs = calloc((size_t)(nruns ? nruns : 1), sizeof(*runs));
    srv_ss_batch *b = calloc((size_t)(nruns ? nruns : 1), sizeof(*b));
    if (!runs || !b) {
        free(runs);
        free(b);
        return KP_E_NOMEM;
    }
    srv_sp_runs(sp, runs, nruns);
    int32_t complete = 0;
    for (int i = 0; i < nruns; i++) {
        b[i] = (srv_ss_batch){runs[i].first, runs[i].last, runs[i].state, runs[i].delivery};
        if (runs[i].state != SRV_SS_AVAILABLE)
            complete += (int32_t)(runs[i].last - runs[i].first + 1);
    }
    int64_t now = srv_now_ms();
    srv_ss_image img = {
        .snapshot_epoch = 0,
        .state_epoch = 0,
        .leader_epoch = 0,
        .start = sp->start,
        .delivery_complete = complete,
        .create_ts = now,
        .write_ts = now,
        .batches = b,
        .nbatches = nruns,
    };
    /* sp->updates counts the records since the last snapshot plus one; 0:
     * never written since it was (re)initialised, which a snapshot starts. */
    int type = sp->updates == 0 || sp->updates > s->b->cfg.share_state_updates_per_snapshot ? SRV_SS_SNAPSHOT
                                                                                            : SRV_SS_UPDATE;
    kp_writer kw, vw;
    kp_writer_init(&kw, 64);
    kp_writer_init(&vw, 256);
    int rc = srv_ss_key(&kw, type, group, &tp->topic, tp->partition);
    if (!rc)
        rc = srv_ss_value(&vw, type, &img);
    if (!rc) {
        kp_batch_builder bb;
        kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
        rc = kp_batch_builder_add(&bb, now, (kp_bytes){kw.buf, (int32_t)kw.len},
                                  (kp_bytes){vw.buf, (int32_t)vw.len}, NULL, 0);
        if (!rc)
            rc = kp_batch_builder_finish(&bb, bw);
        kp_batch_builder_free(&bb);
    }
    kp_writer_free(&kw);
    kp_writer_free(&vw);
    free(runs);
    free(b);
    if (!rc)
        sp->updates = type == SRV_SS_SNAPSHOT ? 1 : sp->updates + 1;
    *typep = type;
    return rc;
}

static void write_records(srv_shard *s, kp_str group, const srv_share_tp *tps, int n, int16_t *errs,
                          void (*done)(srv_shard *s, void *arg), void *arg, int drop)
{
    persist_job *j = calloc(1, sizeof(*j));
    if (!j) {
        for (int i = 0; i < n; i++)
            errs[i] = KP_ERR_UNKNOWN_SERVER_ERROR;
        done(s, arg);
        return;
    }
    j->done = done;
    j->arg = arg;
    j->outstanding = 1; /* this function's own, dropped at the end */
    const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_SHARE_STATE_TOPIC));
    srv_share_groups *sg = srv_share_store(s);
    for (int i = 0; i < n; i++) {
        errs[i] = 0;
        srv_share_part *sp = sg && !drop ? srv_share_part_mut(sg, group, &tps[i]) : NULL;
        if (!sp && !drop)
            continue;
        if (!t && drop)
            continue; /* no state topic: nothing durable to delete */
        if (!t) {
            srv_share_state_ready(s);
            errs[i] = KP_ERR_COORDINATOR_NOT_AVAILABLE;
            continue;
        }
        int32_t part = srv_ss_partition_for(group, &tps[i].topic, tps[i].partition, t->nparts);
        int16_t err = 0;
        persist_op *op = srv_part_op_new(t, part, sizeof(*op), persist_run, persist_done, &err);
        if (!op) {
            errs[i] = err ? err : KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        kp_writer bw;
        kp_writer_init(&bw, 512);
        int32_t glen = group.len > 0 ? group.len : 0;
        op->group = malloc((size_t)glen + 1);
        if (drop)
            op->type = drop == 2 ? SRV_SS_SNAPSHOT : TOMBSTONE;
        if (!op->group || (drop ? build_tombstone(group, &tps[i], &bw, drop == 2)
                                : build(s, group, &tps[i], sp, &bw, &op->type))) {
            kp_writer_free(&bw);
            free(op->group);
            free(op);
            errs[i] = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        if (glen)
            memcpy(op->group, group.p, (size_t)glen);
        op->group[glen] = 0;
        op->group_len = glen;
        op->tp = tps[i];
        op->nparts = t->nparts;
        op->batch = bw.buf; /* the writer's buffer is the op's now */
        op->len = bw.len;
        op->job = j;
        op->err = &errs[i];
        j->outstanding++;
        srv_part_op_send_from(s, &op->base);
    }
    job_step(s, j);
}

void srv_share_persist(srv_shard *s, kp_str group, const srv_share_tp *tps, int n, int16_t *errs,
                       void (*done)(srv_shard *s, void *arg), void *arg)
{
    write_records(s, group, tps, n, errs, done, arg, 0);
}

void srv_share_persist_drop(srv_shard *s, kp_str group, const srv_share_tp *tps, int n, int16_t *errs,
                            void (*done)(srv_shard *s, void *arg), void *arg)
{
    write_records(s, group, tps, n, errs, done, arg, 1);
}

void srv_share_persist_reset(srv_shard *s, kp_str group, const srv_share_tp *tps, int n, int16_t *errs,
                             void (*done)(srv_shard *s, void *arg), void *arg)
{
    write_records(s, group, tps, n, errs, done, arg, 2);
}

/* ---- start-up ----------------------------------------------------------------- */

typedef struct load_state {
    srv_ss_map *map;
    int32_t partition;
    int64_t next;
    int rc, done, bad;
} load_state;

static void load_cb(void *arg, const st_read_result *res)
{
    load_state *st = arg;
    st->done = 1;
    if (res->rc) {
        st->rc = res->rc;
        return;
    }
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, res->data, res->len, 0);
    int r;
    while ((r = kp_batch_iter_next(&it, &b)) == 1) {
        st->next = b.h.base_offset + b.h.last_offset_delta + 1;
        /* Never compressed (compression.type=uncompressed), never
         * transactional: anything else is not ours. */
        if ((b.h.attributes & KP_ATTR_CONTROL) || (b.h.attributes & KP_ATTR_CODEC_MASK))
            continue;
        kp_record_iter ri;
        kp_record rec;
        kp_record_iter_init(&ri, &b.h, b.records, b.records_size);
        while (kp_record_iter_next(&ri, &rec) == 1) {
            int rc = srv_ss_replay(st->map, rec.offset, rec.key.p, rec.key.len,
                                   rec.value.len < 0 ? NULL : rec.value.p, rec.value.len);
            if (rc != SRV_SS_OK && rc != SRV_SS_E_TYPE) {
                st->bad++;
                srv_warn("%s-%d: record at offset %lld not loaded (code %d)", SRV_SHARE_STATE_TOPIC,
                         st->partition, (long long)rec.offset, rc);
            }
        }
    }
    if (r < 0)
        st->rc = r;
    if (res->len == 0)
        st->next = res->high_watermark;
}

static int load_partition(srv_shard *s, srv_part *p, int32_t partition, srv_ss_map *map)
{
    load_state st = {map, partition, st_log_start_offset(p->log), 0, 0, 0};
    while (st.rc == 0 && st.next < st_log_high_watermark(p->log)) {
        int64_t before = st.next;
        st.done = 0;
        int rc = st_log_read(p->log, st.next, 1u << 20, load_cb, &st);
        if (rc < 0)
            return rc;
        while (!st.done)
            st_io_wait(s->io, 100);
        if (st.rc == 0 && st.next <= before)
            return -EIO; /* no progress: the log is inconsistent */
    }
    return st.rc;
}

typedef struct restore_ctx {
    srv_broker *b;
    srv_share_route_fn route;
    int restored, skipped, failed;
} restore_ctx;

static void restore_one(srv_ss_entry *e, void *arg)
{
    restore_ctx *c = arg;
    kp_str g = {e->group, e->group_len};
    if (e->img.start < 0) {
        c->skipped++; /* initialised with no start offset yet (Kafka's -1) */
        return;
    }
    int shard = c->route(c->b, g);
    srv_share_groups *sg = shard >= 0 && shard < c->b->nshards ? srv_share_store(&c->b->shards[shard]) : NULL;
    if (!sg) {
        c->skipped++;
        return;
    }
    srv_sp_run *runs = calloc((size_t)(e->img.nbatches ? e->img.nbatches : 1), sizeof(*runs));
    if (!runs) {
        c->failed++;
        return;
    }
    for (int32_t i = 0; i < e->img.nbatches; i++)
        runs[i] = (srv_sp_run){e->img.batches[i].first, e->img.batches[i].last, e->img.batches[i].state,
                               e->img.batches[i].delivery};
    srv_share_tp tp = {e->topic, e->partition};
    if (srv_share_restore(sg, g, &tp, e->img.start, runs, e->img.nbatches) < 0)
        c->failed++;
    else
        c->restored++;
    free(runs);
}

static void drop_image(srv_ss_entry *e, void *arg)
{
    (void)arg;
    srv_ss_image_clear(&e->img); /* the tracker needs the keys and snapshot offsets only */
}

/* The dynamic group configs of the metadata log, put back into each group's
 * coordinator shard (the set is sorted by group id: one group's keys are
 * consecutive). A value this build does not understand is left out with a
 * log line rather than stop the broker. 0, or -1 when memory ran out. */
static int restore_group_configs(srv_broker *b, srv_share_route_fn route)
{
    const srv_dyncfg *d = b->nshards > 0 ? b->shards[0].meta->groupcfg : NULL;
    int groups = 0;
    for (int i = 0; d && i < d->n;) {
        const char *id = d->kv[i].resource;
        srv_share_gconf g;
        memset(&g, 0, sizeof(g));
        for (; i < d->n && strcmp(d->kv[i].resource, id) == 0; i++)
            if (srv_share_gconf_set_str(&g, d->kv[i].key, d->kv[i].value) < 0)
                srv_warn("group config %s=%s of group %s not understood: left out", d->kv[i].key,
                         d->kv[i].value, id);
        kp_str gid = kp_str_c(id);
        int shard = route(b, gid);
        srv_share_groups *sg = shard >= 0 && shard < b->nshards ? srv_share_store(&b->shards[shard]) : NULL;
        if (!sg)
            continue;
        if (srv_share_gconf_put(sg, gid, &g) < 0)
            return -1;
        groups++;
    }
    if (groups)
        srv_info("dynamic configs of %d group(s) restored", groups);
    return 0;
}

int srv_share_state_start(srv_broker *b, srv_share_route_fn route)
{
    int loaded = 0, rc = 0;
    restore_ctx c = {b, route, 0, 0, 0};
    /* Before the state: a restored share-partition takes its group's lock
     * duration and limits. */
    if (restore_group_configs(b, route) < 0)
        return -ENOMEM;
    for (int i = 0; i < b->nshards && rc == 0; i++) {
        srv_shard *s = &b->shards[i];
        const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_SHARE_STATE_TOPIC));
        for (int32_t p = 0; t && p < t->nparts && rc == 0; p++) {
            if (srv_partition_owner(b->nshards, &t->id, p) != s->id)
                continue;
            srv_part *part = srv_partmap_get(s->parts, &t->id, p);
            if (!part || srv_part_offline(part))
                continue;
            /* Each partition's replay becomes its prune tracker. */
            srv_ss_map *map = tracker(s, p, t->nparts);
            if (!map) {
                rc = -ENOMEM;
                break;
            }
            rc = load_partition(s, part, p, map);
            if (rc) {
                srv_error("cannot load %s-%d: %s", SRV_SHARE_STATE_TOPIC, p, st_strerror(rc));
                break;
            }
            srv_ss_map_each(map, restore_one, &c);
            srv_ss_map_each(map, drop_image, NULL);
            loaded++;
        }
    }
    if (rc == 0 && (c.restored || c.skipped || c.failed))
        srv_info(
            "%d share-partition states of %d %s partitions restored (%d without a coordinator or a start, "
            "%d failed)",
            c.restored, loaded, SRV_SHARE_STATE_TOPIC, c.skipped, c.failed);
    if (rc == 0 && c.failed)
        rc = -ENOMEM;
    return rc < 0 ? rc : (rc ? -EIO : 0);
}

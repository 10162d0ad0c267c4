/*
 * coord.c — the group coordinator wired into the shards: the environment of
 * each shard's srv_groups (clock, appends to its __consumer_offsets
 * partitions, libevent timers), the cross-shard group calls, the creation of
 * __consumer_offsets through the controller, the replay at start-up and the
 * periodic offsets retention.
 *
 * Owns the per-shard coordinator context and the routing of srv_gcalls. Must
 * not: touch a srv_groups from any thread but its shard's, or block a loop
 * (the only blocking reads are the start-up replay, before the loops run).
 */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "errors.h"
#include "group_log.h"
#include "logging.h"
#include "controller.h"
#include "partcall.h"
#include "partition.h"

typedef struct coord_shard {
    srv_shard *s;
    struct event *retention_ev;
    struct event *create_ev;
    int creating; /* a creation of the offsets topic is with the controller */
} coord_shard;

/* ---- the environment ---------------------------------------------------- */

static int64_t env_now(void *arg)
{
    (void)arg;
    return srv_now_ms();
}

typedef struct append_ctx {
    srv_group_append_done done;
    void *ctx;
} append_ctx;

static void appended(void *arg, int rc, int64_t base)
{
    (void)base;
    append_ctx *a = arg;
    srv_group_append_done done = a->done;
    void *ctx = a->ctx;
    free(a);
    done(ctx, srv_st_to_kafka(rc));
}

static void group_accepted(void *arg, int rc, int64_t base)
{
    (void)base;
    if (rc == 0)
        return; /* appended() reports the outcome */
    append_ctx *a = arg;
    srv_group_append_done done = a->done;
    void *ctx = a->ctx;
    free(a);
    done(ctx, srv_st_to_kafka(rc));
}

static srv_part *offsets_part(srv_shard *s, int32_t partition)
{
    const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_OFFSETS_TOPIC));
    if (!t || partition < 0 || partition >= t->nparts)
        return NULL;
    srv_part *p = srv_partmap_get(s->parts, &t->id, partition);
    return srv_part_offline(p) ? NULL : p;
}

static void env_append(void *arg, int32_t partition, const uint8_t *batch, size_t len,
                       srv_group_append_done done, void *ctx)
{
    coord_shard *cs = arg;
    srv_part *p = offsets_part(cs->s, partition);
    if (!p) {
        done(ctx, KP_ERR_NOT_LEADER_OR_FOLLOWER); /* the partition moved away: NOT_COORDINATOR */
        return;
    }
    append_ctx *a = malloc(sizeof(*a));
    if (!a) {
        done(ctx, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    a->done = done;
    a->ctx = ctx;
    /* Waits in order behind earlier appends while the log applies
     * backpressure: a refusal here would be a retriable coordinator error
     * for a purely local condition. */
    st_log_append_ordered(p->log, batch, len, group_accepted, appended, a);
}

static int env_topic(void *arg, kp_str name, kp_uuid *id, int32_t *nparts)
{
    coord_shard *cs = arg;
    const srv_topic *t = srv_meta_topic(cs->s->meta, name);
    if (!t)
        return 0;
    *id = t->id;
    *nparts = t->nparts;
    return 1;
}

static uint64_t env_meta_version(void *arg)
{
    coord_shard *cs = arg;
    return cs->s->meta->version;
}

static int env_topic_at(void *arg, int i, kp_str *name)
{
    coord_shard *cs = arg;
    const srv_meta *m = cs->s->meta;
    if (i < 0 || i >= m->ntopics)
        return 0;
    *name = kp_str_c(m->topics[i].name); /* a C string by contract (srv_cdup) */
    return 1;
}

/* The ACLs of the metadata version this shard serves (immutable, shared). */
static int env_may_describe(void *arg, kp_str principal, kp_str host, kp_str topic)
{
    coord_shard *cs = arg;
    const srv_authz_cfg *cfg = &cs->s->b->authz;
    if (!cfg->enabled)
        return 1;
    return srv_authz_check(cfg, cs->s->meta->acls, principal, host, SRV_OP_DESCRIBE, SRV_RES_TOPIC, topic);
}

static void on_group_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_group *g = arg;
    g->armed = -1; /* fired: whatever the next deadline is, arm it again */
    srv_group_fire(g);
}

static void env_arm(void *arg, srv_group *g, int64_t deadline)
{
    coord_shard *cs = arg;
    if (!g->timer) {
        if (deadline < 0)
            return;
        g->timer = event_new(cs->s->base, -1, 0, on_group_timer, g);
        if (!g->timer) {
            srv_error("group %s: no timer (out of memory): its timeouts will not fire", g->id);
            return;
        }
    }
    if (deadline < 0) {
        event_del(g->timer);
        return;
    }
    int64_t ms = deadline - srv_now_ms();
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(g->timer, &tv);
}

static void env_drop(void *arg, srv_group *g)
{
    (void)arg;
    if (g->timer)
        event_free(g->timer);
    g->timer = NULL;
}

/* ---- the offsets topic ------------------------------------------------- */

typedef struct create_op {
    srv_ctl_op op;
    srv_topic_spec spec;
    srv_topic_cfg_kv cfg[2];
    char segment[24];
    coord_shard *cs;
} create_op;

static void created(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    create_op *c = (create_op *)op;
    c->cs->creating = 0;
    if (c->spec.error == KP_ERR_NONE)
        srv_info("created %s with %d partitions", SRV_OFFSETS_TOPIC, c->spec.result_nparts);
    /* NOT_CONTROLLER: a member of a metadata quorum that does not lead it;
     * the active controller creates the topic (quorum.c). */
    else if (c->spec.error != KP_ERR_TOPIC_ALREADY_EXISTS && c->spec.error != KP_ERR_NOT_CONTROLLER)
        srv_error("cannot create %s: %s (error %d)", SRV_OFFSETS_TOPIC, c->spec.message, c->spec.error);
    free(c);
}

static void ensure_offsets_topic(coord_shard *cs)
{
    srv_shard *s = cs->s;
    if (cs->creating || srv_meta_topic(s->meta, kp_str_c(SRV_OFFSETS_TOPIC)))
        return;
    create_op *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    const srv_config *cfg = &s->b->cfg;
    snprintf(c->segment, sizeof(c->segment), "%d", (int)cfg->offsets_topic_segment_bytes);
    /* Kafka's offsetsTopicConfigs: compacted, its own segment size. */
    c->cfg[0].key = "cleanup.policy";
    c->cfg[0].value = "compact";
    c->cfg[1].key = "segment.bytes";
    c->cfg[1].value = c->segment;
    c->spec.name = kp_str_c(SRV_OFFSETS_TOPIC);
    c->spec.nparts = cfg->offsets_topic_num_partitions;
    c->spec.replication = -1;
    c->spec.ncfg = 2;
    c->spec.cfg = c->cfg;
    c->cs = cs;
    c->op.kind = SRV_CTL_CREATE;
    c->op.nspecs = 1;
    c->op.specs = &c->spec;
    c->op.done = created;
    cs->creating = 1;
    srv_ctl_submit(s, NULL, &c->op);
}

static void on_create(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ensure_offsets_topic(arg);
}

int16_t srv_groups_ready(srv_shard *s)
{
    if (!s->groups)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (srv_meta_topic(s->meta, kp_str_c(SRV_OFFSETS_TOPIC)))
        return KP_ERR_NONE;
    ensure_offsets_topic(srv_groups_env_arg(s->groups));
    return KP_ERR_COORDINATOR_NOT_AVAILABLE;
}

static void on_retention(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    coord_shard *cs = arg;
    srv_groups_expire_offsets(cs->s->groups);
}

/* ---- start-up replay ----------------------------------------------------- */

typedef struct replay_state {
    srv_groups *gs;
    int32_t partition;
    int64_t next;
    int rc;
    int done;
} replay_state;

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
    int r;
    while ((r = kp_batch_iter_next(&it, &b)) == 1) {
        srv_glog_replay_batch(st->gs, st->partition, &b);
        st->next = b.h.base_offset + b.h.last_offset_delta + 1;
    }
    if (r < 0)
        st->rc = r;
    if (res->len == 0)
        st->next = res->high_watermark;
}

static int replay_partition(srv_shard *s, srv_part *p, int32_t partition)
{
    replay_state st = {s->groups, partition, st_log_start_offset(p->log), 0, 0};
    while (st.rc == 0 && st.next < st_log_high_watermark(p->log)) {
        int64_t before = st.next;
        st.done = 0;
        int rc = st_log_read(p->log, st.next, 1u << 20, replay_cb, &st);
        if (rc < 0)
            return rc;
        while (!st.done)
            st_io_wait(s->io, 100);
        if (st.rc == 0 && st.next <= before)
            return -EIO; /* no progress: the log is inconsistent */
    }
    return st.rc;
}

int srv_groups_start(srv_broker *b)
{
    const srv_config *cfg = &b->cfg;
    srv_groups_config gc;
    gc.min_session_timeout_ms = cfg->group_min_session_timeout_ms;
    gc.max_session_timeout_ms = cfg->group_max_session_timeout_ms;
    gc.initial_rebalance_delay_ms = cfg->group_initial_rebalance_delay_ms;
    gc.max_size = cfg->group_max_size;
    gc.offsets_retention_ms = (int64_t)cfg->offsets_retention_minutes * 60000;
    gc.consumer_heartbeat_interval_ms = cfg->group_consumer_heartbeat_interval_ms;
    gc.consumer_session_timeout_ms = cfg->group_consumer_session_timeout_ms;
    gc.consumer_max_size = cfg->group_consumer_max_size;
    gc.migration_policy = cfg->group_consumer_migration;
    gc.nassignors = cfg->group_consumer_nassignors;
    _Static_assert(sizeof(gc.assignors) == SRV_ASSIGNORS_MAX,
                   "group.consumer.assignors: one slot per assignor");
    memcpy(gc.assignors, cfg->group_consumer_assignors, sizeof(gc.assignors));
    for (int i = 0; i < b->nshards; i++) {
        srv_shard *s = &b->shards[i];
        coord_shard *cs = calloc(1, sizeof(*cs));
        if (!cs)
            return -ENOMEM;
        cs->s = s;
        srv_groups_env env = {cs,        env_now,          env_append,   env_arm,         env_drop,
                              env_topic, env_meta_version, env_topic_at, env_may_describe};
        s->groups = srv_groups_new(&gc, &env);
        if (!s->groups) {
            free(cs);
            return -ENOMEM;
        }
        int64_t every =
            cfg->offsets_retention_check_interval_ms > 0 ? cfg->offsets_retention_check_interval_ms : 600000;
        cs->retention_ev = event_new(s->base, -1, EV_PERSIST, on_retention, cs);
        if (!cs->retention_ev)
            return -ENOMEM;
        struct timeval tv = {(time_t)(every / 1000), (suseconds_t)((every % 1000) * 1000)};
        event_add(cs->retention_ev, &tv);
        const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_OFFSETS_TOPIC));
        int loaded = 0;
        for (int32_t p = 0; t && p < t->nparts; p++) {
            if (srv_partition_owner(b->nshards, &t->id, p) != s->id)
                continue;
            srv_part *part = srv_partmap_get(s->parts, &t->id, p);
            if (!part || srv_part_offline(part))
                continue;
            int rc = replay_partition(s, part, p);
            if (rc) {
                srv_error("cannot replay %s-%d: %s", SRV_OFFSETS_TOPIC, p, st_strerror(rc));
                return rc < 0 ? rc : -EIO;
            }
            loaded++;
        }
        srv_groups_load_finish(s->groups);
        if (loaded)
            srv_info("shard %d: groups of %d %s partitions loaded", s->id, loaded, SRV_OFFSETS_TOPIC);
        if (i == 0 && !t) {
            /* The controller only runs once the loops do. */
            cs->create_ev = event_new(s->base, -1, 0, on_create, cs);
            struct timeval now = {0, 0};
            if (cs->create_ev)
                event_add(cs->create_ev, &now);
        }
    }
    return 0;
}

void srv_groups_stop(srv_broker *b)
{
    for (int i = 0; i < b->nshards; i++) {
        srv_shard *s = &b->shards[i];
        if (!s->groups)
            continue;
        coord_shard *cs = srv_groups_env_arg(s->groups);
        srv_groups_free(s->groups);
        s->groups = NULL;
        if (cs->retention_ev)
            event_free(cs->retention_ev);
        if (cs->create_ev)
            event_free(cs->create_ev);
        free(cs);
    }
}

/* ---- transaction markers ------------------------------------------------ */

void srv_groups_on_marker(srv_shard *s, const kp_uuid *topic_id, int32_t partition, int64_t producer_id,
                          int commit)
{
    const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_OFFSETS_TOPIC));
    if (!s->groups || !t || memcmp(&t->id, topic_id, sizeof(t->id)) != 0)
        return;
    srv_groups_txn_complete(s->groups, partition, producer_id, commit);
}

/* ---- group calls -------------------------------------------------------- */

void *srv_gcall_new(size_t size, srv_gcall_run_fn run, srv_gcall_done_fn done)
{
    srv_gcall *c = calloc(1, size);
    if (!c)
        return NULL;
    kp_arena_init(&c->arena, 0);
    c->run = run;
    c->done = done;
    c->partition = -1;
    return c;
}

void srv_gcall_free(srv_gcall *c)
{
    if (!c)
        return;
    kp_arena_reset(&c->arena);
    free(c);
}

static void gcall_drop(srv_call *call)
{
    srv_gcall_free((srv_gcall *)call);
}

static void gcall_done(srv_shard *s, srv_call *call)
{
    srv_gcall *c = (srv_gcall *)call;
    if (kp_arena_failed(&c->arena))
        kp_arena_set_failed(&c->call.req->arena); /* the answer is built from c's arena */
    c->done(s, c);
}

static void gcall_run(srv_shard *owner, srv_call *call)
{
    srv_gcall *c = (srv_gcall *)call;
    if (!owner->groups) {
        c->error = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    } else if (c->partition >= 0 && !srv_partmap_get(owner->parts, &c->topic_id, c->partition)) {
        /* The topic changed under the request (deleted, or a newer version
         * not yet here): the client looks the coordinator up again. */
        c->error = KP_ERR_NOT_COORDINATOR;
    }
    if (c->error) {
        srv_call_reply(owner, &c->call);
        return;
    }
    c->run(owner, c, owner->groups);
}

static void send_to(srv_req *req, srv_gcall *c, int shard)
{
    srv_call_init(&c->call, gcall_run, gcall_done, gcall_drop);
    srv_call_send(req->shard, req, &c->call, shard);
}

int16_t srv_gcall_send(srv_req *req, srv_gcall *c, kp_str group_id)
{
    srv_shard *s = req->shard;
    int16_t err = srv_groups_ready(s);
    if (err)
        return err;
    const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_OFFSETS_TOPIC));
    c->topic_id = t->id;
    c->partition = srv_group_partition_for(group_id, t->nparts);
    send_to(req, c, srv_partition_owner(s->b->nshards, &t->id, c->partition));
    return KP_ERR_NONE;
}

void srv_gcall_send_shard(srv_req *req, srv_gcall *c, int shard)
{
    c->partition = -1;
    send_to(req, c, shard);
}

/* A refusal leaves null behind and the arena's failed flag, which gcall_done
 * hands to the request's arena: the answer is never sent with the hole. */
kp_str srv_gcall_str(srv_gcall *c, kp_str s)
{
    return kp_arena_str(&c->arena, s);
}

kp_bytes srv_gcall_bytes(srv_gcall *c, kp_bytes b)
{
    return kp_arena_bytes(&c->arena, b);
}

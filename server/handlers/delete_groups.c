/*
 * delete_groups.c — DeleteGroups (v0-2): an Empty group's offsets and
 * metadata are tombstoned in __consumer_offsets and the group is gone; a
 * group with members is NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.
 * Share groups (KIP-932) are deleted by the same rules from the coordinator
 * shard's share-group store (share_group.h), and each share-partition's
 * state is tombstoned in __share_group_state (share_coord.h) before the
 * answer, so that the replay after a restart does not bring it back.
 */
#include "authz_req.h"
#include "clock.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "share_coord.h"
#include "share_group.h"

typedef struct dg_call {
    srv_gcall c;
    srv_shard *owner;
    kp_str group_id;
    int16_t error;
    srv_share_tp *tps; /* a deleted share group's share-partitions, in the call's arena */
    int16_t *errs;
    int ntps;
    kp_delete_groups_response_deletable_group_result *out;
} dg_call;

/* A deleted share group's tombstones are durable (or failed): a failed one
 * fails the deletion, which would not survive a restart. */
static void share_dropped(srv_shard *owner, void *arg)
{
    dg_call *d = arg;
    for (int i = 0; !d->error && i < d->ntps; i++)
        d->error = d->errs[i];
    srv_call_reply(owner, &d->c.call);
}

static void deleted(void *ctx)
{
    dg_call *d = ctx;
    srv_call_reply(d->owner, &d->c.call);
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    dg_call *d = (dg_call *)c;
    d->owner = owner;
    /* A share group (share_group.c) is deleted where it lives: only when
     * Empty, as Kafka (NON_EMPTY_GROUP otherwise). */
    if (owner->share_groups && srv_share_exists(owner->share_groups, d->group_id)) {
        d->ntps = srv_share_tps(owner->share_groups, d->group_id, NULL, NULL, 0);
        d->tps = kp_arena_alloc(&c->arena, ((size_t)d->ntps + 1) * sizeof(*d->tps));
        d->errs = kp_arena_alloc(&c->arena, ((size_t)d->ntps + 1) * sizeof(*d->errs));
        if (!d->tps || !d->errs)
            d->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        else
            srv_share_tps(owner->share_groups, d->group_id, NULL, d->tps, d->ntps);
        if (!d->error)
            d->error = srv_share_delete_group(owner->share_groups, d->group_id, srv_mono_ms());
        if (d->error || !d->ntps) {
            srv_call_reply(owner, &d->c.call);
            return;
        }
        /* Durable before the answer: else the replay brings the group back. */
        srv_share_persist_drop(owner, d->group_id, d->tps, d->ntps, d->errs, share_dropped, d);
        return;
    }
    srv_group_delete(gs, d->group_id, &d->error, deleted, d);
}

/* Every call is back. */
static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    dg_call *d = (dg_call *)c;
    d->out->error_code = c->error ? c->error : d->error;
    srv_gcall_free(c);
}

void srv_h_delete_groups(srv_req *req)
{
    const kp_delete_groups_request *rq = req->kr.body;
    int32_t n = rq->groups_names_count > 0 ? rq->groups_names_count : 0;
    kp_delete_groups_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    if (resp) {
        kp_delete_groups_response_init(resp);
        resp->results = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp->results) + 1);
    }
    if (!resp || !resp->results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = resp;
    resp->results_count = n;
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int32_t i = 0; i < n; i++) {
        kp_delete_groups_response_deletable_group_result *o = &resp->results[i];
        kp_delete_groups_response_deletable_group_result_init(o);
        o->group_id = rq->groups_names[i].len >= 0 ? rq->groups_names[i] : kp_str_c("");
        if (!srv_authorize(req, SRV_OP_DELETE, SRV_RES_GROUP, rq->groups_names[i])) {
            o->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
            continue;
        }
        if (rq->groups_names[i].len < 0) {
            o->error_code = KP_ERR_INVALID_GROUP_ID;
            continue;
        }
        dg_call *d = srv_gcall_new(sizeof(*d), run, done);
        if (!d) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        d->group_id = rq->groups_names[i];
        d->out = o;
        int16_t err = srv_gcall_send(req, &d->c, rq->groups_names[i]);
        if (err) {
            o->error_code = err;
            srv_gcall_free(&d->c);
        }
    }
    srv_req_release(req);
}

/*
 * delete_topics.c — DeleteTopics (v0-6, by name or by id). Answered once the
 * deletion is durable and every shard has closed and removed the partitions.
 */
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "controller.h"
#include "throttle_req.h"

typedef struct dt_state {
    srv_ctl_op op;
    srv_req *req;
    kp_delete_topics_response resp;
} dt_state;

static void done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    dt_state *st = (dt_state *)op;
    for (int i = 0; i < op->nspecs; i++) {
        srv_topic_spec *sp = &op->specs[i];
        kp_delete_topics_response_deletable_topic_result *r = &st->resp.responses[i];
        if (sp->skip)
            continue;
        r->error_code = sp->error;
        r->error_message = sp->error ? kp_str_c(sp->message) : KP_STR_NULL;
        if (!sp->error)
            r->topic_id = sp->id;
    }
    st->resp.throttle_time_ms = srv_quota_mutation_ms(st->req);
    srv_req_mute(st->req, st->resp.throttle_time_ms);
    srv_req_respond(st->req, &st->resp);
}

void srv_h_delete_topics(srv_req *req)
{
    const kp_delete_topics_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    int16_t v = req->kr.hdr.request_api_version;
    int32_t n = v >= 6 ? rq->topics_count : rq->topic_names_count;
    if (n < 0)
        n = 0;
    dt_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    srv_topic_spec *specs = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*specs) + 1);
    if (!st || !specs) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->req = req;
    kp_delete_topics_response_init(&st->resp);
    st->resp.responses = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->resp.responses) + 1);
    if (!st->resp.responses) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->resp.responses_count = n;
    for (int32_t i = 0; i < n; i++) {
        kp_delete_topics_response_deletable_topic_result *r = &st->resp.responses[i];
        kp_delete_topics_response_deletable_topic_result_init(r);
        srv_topic_spec *sp = &specs[i];
        memset(sp, 0, sizeof(*sp));
        kp_str name;
        if (v >= 6) {
            const kp_delete_topics_request_delete_topic_state *t = &rq->topics[i];
            name = t->name;
            if (name.len < 0) {
                const srv_topic *byid = srv_meta_topic_by_id(s->meta, &t->topic_id);
                r->topic_id = t->topic_id;
                if (!byid) {
                    /* As Kafka: no name to report, and its message. */
                    r->name = KP_STR_NULL;
                    r->error_code = KP_ERR_UNKNOWN_TOPIC_ID;
                    r->error_message = kp_str_c("This server does not host this topic ID.");
                    sp->skip = 1;
                    continue;
                }
                name = kp_str_c(byid->name);
            }
        } else {
            name = rq->topic_names[i];
        }
        r->name = name;
        sp->name = name;
        if (!srv_authorize(req, SRV_OP_DELETE, SRV_RES_TOPIC, name)) {
            r->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            r->error_message = kp_str_c("Authorization failed.");
            sp->skip = 1;
        } else if (srv_topic_is_internal(name)) {
            r->error_code = KP_ERR_INVALID_REQUEST;
            r->error_message = kp_str_c("Internal topics cannot be deleted");
            sp->skip = 1;
        } else if (!s->b->cfg.delete_topic_enable) {
            r->error_code = KP_ERR_TOPIC_DELETION_DISABLED;
            sp->skip = 1;
        } else {
            /* controller_mutation_rate counts the partitions deleted
             * (KIP-599); strict from v5, which knows the error. */
            const srv_topic *t = srv_meta_topic(s->meta, name);
            if (t && srv_quota_mutation(req, (double)t->nparts, v >= 5) != 0) {
                r->error_code = KP_ERR_THROTTLING_QUOTA_EXCEEDED;
                r->error_message = KP_STR_NULL /* Kafka sends none */;
                sp->skip = 1;
            }
        }
    }
    st->op.kind = SRV_CTL_DELETE;
    st->op.nspecs = n;
    st->op.specs = specs;
    st->op.done = done;
    srv_ctl_submit(s, req, &st->op);
}

/*
 * consumer_group_heartbeat.c — ConsumerGroupHeartbeat (v0-v1, KIP-848): decoded
 * here, run by the group's coordinator shard (group/consumer.c), answered
 * once the group's records are durable.
 *
 * Owns the translation between the wire and srv_chb_req / srv_chb_result.
 * Must not: hold group state, or answer from the coordinator's shard (the
 * answer travels back in the call's arena).
 */
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/consumer.h"
#include "group/coord.h"
#include "sstr.h"

typedef struct chb_call {
    srv_gcall c;
    srv_shard *owner;
    srv_chb_req rq;
    kp_consumer_group_heartbeat_response resp;
} chb_call;

static void on_result(void *ctx, const srv_chb_result *r)
{
    chb_call *h = ctx;
    srv_gcall *c = &h->c;
    kp_consumer_group_heartbeat_response *o = &h->resp;
    o->error_code = r->error;
    o->error_message = srv_gcall_str(c, r->message ? kp_str_c(r->message) : KP_STR_NULL);
    o->member_id = srv_gcall_str(c, r->member_id);
    o->member_epoch = r->member_epoch;
    o->heartbeat_interval_ms = r->heartbeat_interval_ms;
    o->assignment = NULL;
    if (r->assignment) {
        const srv_tps *s = r->assignment;
        kp_consumer_group_heartbeat_response_assignment *as = kp_arena_alloc(&c->arena, sizeof(*as));
        srv_tpgroup *runs = kp_arena_alloc(&c->arena, ((size_t)s->n + 1) * sizeof(*runs));
        int32_t *parts = kp_arena_alloc(&c->arena, ((size_t)s->n + 1) * sizeof(*parts));
        kp_consumer_group_heartbeat_response_topic_partitions *tps =
            kp_arena_alloc(&c->arena, ((size_t)s->n + 1) * sizeof(*tps));
        if (as && runs && parts && tps) { /* else the call arena's failed flag refuses the answer */
            int n = srv_tps_groups(s, runs, parts);
            kp_consumer_group_heartbeat_response_assignment_init(as);
            for (int i = 0; i < n; i++) {
                kp_consumer_group_heartbeat_response_topic_partitions_init(&tps[i]);
                tps[i].topic_id = runs[i].topic;
                tps[i].partitions = (int32_t *)runs[i].parts;
                tps[i].partitions_count = runs[i].n;
            }
            as->topic_partitions = tps;
            as->topic_partitions_count = n;
            o->assignment = as;
        }
    }
    srv_call_reply(h->owner, &c->call);
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    chb_call *h = (chb_call *)c;
    h->owner = owner;
    srv_cgroup_heartbeat(gs, c->partition, &h->rq, on_result, h);
}

static void fill_error(kp_consumer_group_heartbeat_response *r, int16_t err)
{
    r->error_code = err;
    r->error_message = KP_STR_NULL;
    r->member_id = KP_STR_NULL;
    r->member_epoch = 0;
    r->heartbeat_interval_ms = 0;
    r->assignment = NULL;
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    chb_call *h = (chb_call *)c;
    srv_req *req = c->call.req;
    if (c->error)
        fill_error(&h->resp, c->error);
    srv_req_respond(req, &h->resp);
    srv_gcall_free(c);
}

void srv_h_consumer_group_heartbeat(srv_req *req)
{
    const kp_consumer_group_heartbeat_request *rq = req->kr.body;
    chb_call *h = srv_gcall_new(sizeof(*h), run, done);
    int n = 0;
    int32_t nt = rq->topic_partitions_count > 0 ? rq->topic_partitions_count : 0;
    for (int32_t i = 0; i < nt; i++)
        n += rq->topic_partitions[i].partitions_count > 0 ? rq->topic_partitions[i].partitions_count : 0;
    srv_tp *owned = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(*owned));
    if (!h || !owned) {
        srv_gcall_free(h ? &h->c : NULL);
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int k = 0;
    for (int32_t i = 0; i < nt; i++)
        for (int32_t j = 0; j < rq->topic_partitions[i].partitions_count; j++) {
            owned[k].topic = rq->topic_partitions[i].topic_id;
            owned[k].partition = rq->topic_partitions[i].partitions[j];
            k++;
        }
    kp_consumer_group_heartbeat_response_init(&h->resp);
    srv_chb_req *c = &h->rq;
    c->group_id = rq->group_id;
    c->member_id = rq->member_id.len >= 0 ? rq->member_id : kp_str_c("");
    c->member_epoch = rq->member_epoch;
    c->instance_id = rq->instance_id;
    c->rack_id = rq->rack_id;
    c->client_id = req->kr.hdr.client_id.len >= 0 ? req->kr.hdr.client_id : kp_str_c("");
    c->client_host = srv_req_client_host(req);
    c->rebalance_timeout_ms = rq->rebalance_timeout_ms;
    c->nsubs = rq->subscribed_topic_names_count;
    c->subs = rq->subscribed_topic_names;
    /* v0 has no regex field: the codec leaves it null. */
    c->regex = req->kr.hdr.request_api_version >= 1 ? rq->subscribed_topic_regex : KP_STR_NULL;
    c->assignor = rq->server_assignor;
    /* Copied into the request's arena: the coordinator reads them while the
     * connection may already be gone. */
    c->principal = kp_arena_str(&req->arena, srv_req_principal(req));
    c->host = kp_arena_str(&req->arena, srv_req_host(req));
    c->nowned = rq->topic_partitions_count < 0 ? -1 : k;
    c->owned = owned;
    /* From v1 (KIP-1082) the client generates its member id, also for its first heartbeat. */
    const char *invalid = rq->group_id.len <= 0 ? "GroupId can't be empty."
                          : req->kr.hdr.request_api_version >= 1 && rq->member_id.len <= 0
                              ? "MemberId can't be empty."
                              : NULL;
    /* As Kafka: READ on the group, then DESCRIBE on every subscribed topic
     * (clients may not learn of topics they cannot see), then validation. */
    int16_t denied = 0;
    if (!srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id))
        denied = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    for (int32_t i = 0; !denied && i < rq->subscribed_topic_names_count; i++)
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, rq->subscribed_topic_names[i]))
            denied = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
    if (denied)
        invalid = NULL;
    int16_t err = denied    ? denied
                  : invalid ? KP_ERR_INVALID_REQUEST
                            : srv_gcall_send(req, &h->c, rq->group_id);
    if (err) {
        fill_error(&h->resp, err);
        if (invalid)
            h->resp.error_message = kp_str_c(invalid);
        srv_req_respond(req, &h->resp);
        srv_gcall_free(&h->c);
    }
}

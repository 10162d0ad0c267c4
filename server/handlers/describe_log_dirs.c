/*
 * describe_log_dirs.c — DescribeLogDirs (v1-4): the data directory with the
 * size of each requested partition (from its owner) and, v4+, the disk's
 * total and usable bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"
#include "partcall.h"

typedef struct ld_op {
    srv_part_op base;
    int64_t size;
    int16_t error;
    kp_describe_log_dirs_response_describe_log_dirs_partition *out;
} ld_op;

/* Every call is back. */
static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void op_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    ld_op *op = (ld_op *)base;
    op->out->partition_size = op->error ? 0 : op->size;
    free(op);
}

static void run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    ld_op *op = (ld_op *)base;
    if (!p)
        op->error = KP_ERR_NOT_LEADER_OR_FOLLOWER;
    else if (srv_part_offline(p))
        op->error = KP_ERR_KAFKA_STORAGE_ERROR;
    else
        op->size = st_log_size_bytes(p->log);
    srv_call_reply(owner, &base->call);
}

static void add_partition(srv_req *req, kp_describe_log_dirs_response_describe_log_dirs_topic *tr,
                          const srv_topic *t, int32_t p)
{
    kp_describe_log_dirs_response_describe_log_dirs_partition *pr = &tr->partitions[tr->partitions_count++];
    kp_describe_log_dirs_response_describe_log_dirs_partition_init(pr);
    pr->partition_index = p;
    ld_op *op = calloc(1, sizeof(*op));
    if (!op)
        return;
    op->base.topic_id = t->id;
    op->base.partition = p;
    op->base.run = run;
    op->base.done = op_done;
    op->out = pr;
    srv_part_op_send(req, &op->base);
}

void srv_h_describe_log_dirs(srv_req *req)
{
    const kp_describe_log_dirs_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    const srv_meta *m = s->meta;
    kp_describe_log_dirs_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    kp_describe_log_dirs_response_describe_log_dirs_result *dir = kp_arena_alloc(&req->arena, sizeof(*dir));
    int all = rq->topics_count < 0;
    int32_t nt = all ? m->ntopics : rq->topics_count;
    if (!resp || !dir) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_describe_log_dirs_response_init(resp);
    kp_describe_log_dirs_response_describe_log_dirs_result_init(dir);
    resp->results = dir;
    resp->results_count = 1;
    req->state = resp;
    if (!srv_authorize_cluster(req, SRV_OP_DESCRIBE)) {
        /* As Kafka: no directory at all, and the error from v3 on. */
        resp->results_count = 0;
        resp->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        srv_req_respond(req, resp);
        return;
    }
    dir->log_dir = kp_str_c(s->b->cfg.log_dirs[0]);
    struct statvfs sv;
    if (statvfs(s->b->cfg.log_dirs[0], &sv) == 0) {
        dir->total_bytes = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
        dir->usable_bytes = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
    }
    dir->topics = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*dir->topics) + 1);
    if (!dir->topics) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    dir->topics_count = 0;
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int32_t i = 0; i < nt; i++) {
        const srv_topic *t = all ? &m->topics[i] : srv_meta_topic(m, rq->topics[i].topic);
        if (!t)
            continue; /* Kafka leaves unknown topics out */
        kp_describe_log_dirs_response_describe_log_dirs_topic *tr = &dir->topics[dir->topics_count++];
        kp_describe_log_dirs_response_describe_log_dirs_topic_init(tr);
        tr->name = kp_str_c(t->name);
        int32_t want = all ? t->nparts : rq->topics[i].partitions_count;
        tr->partitions =
            kp_arena_alloc(&req->arena, (size_t)(want > 0 ? want : 0) * sizeof(*tr->partitions) + 1);
        tr->partitions_count = 0;
        if (!tr->partitions)
            continue;
        for (int32_t j = 0; j < want; j++) {
            int32_t p = all ? j : rq->topics[i].partitions[j];
            if (p >= 0 && p < t->nparts)
                add_partition(req, tr, t, p);
        }
    }
    srv_req_release(req);
}

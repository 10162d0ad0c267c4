/*
 * call.c — the round trip of a srv_call between shards and the count of what
 * a request waits on.
 *
 * Owns the call states and req->pending / req->then. Must not: touch a
 * call's payload, or a request from any shard but its own.
 */
#include "call.h"

#include "metrics.h"
#include "srv_assert.h"

void srv_call_init(srv_call *c, srv_call_fn run, srv_call_fn done, void (*drop)(srv_call *c))
{
    c->run = run;
    c->done = done;
    c->drop = drop;
    c->state = SRV_CALL_IDLE;
    c->req = NULL;
}

static void on_target(srv_shard *on, srv_msg *m)
{
    srv_call *c = (srv_call *)m;
    SRV_ON_SHARD(c->target);
    SRV_ASSERT(on->id == c->target, "call for shard %d delivered to shard %d", c->target, on->id);
    SRV_ASSERT(c->state == SRV_CALL_OUT, "call run in state %d, not out", c->state);
    c->run(on, c);
}

static void on_origin(srv_shard *on, srv_msg *m)
{
    srv_call *c = (srv_call *)m;
    SRV_ON_SHARD(c->origin);
    SRV_ASSERT(on->id == c->origin, "call from shard %d came back to shard %d", c->origin, on->id);
    SRV_ASSERT(c->state == SRV_CALL_REPLIED, "call back in state %d, not replied", c->state);
    c->state = SRV_CALL_BACK;
    srv_req *req = c->req;
    if (!req) {
        c->done(on, c);
        return;
    }
    SRV_ASSERT(req->shard == on, "call of a request of shard %d came back to shard %d", req->shard->id,
               on->id);
    if (req->released) {
        /* Answered already (its connection went, or a fetch's leftover
         * watch): nobody to give the answer to. */
        if (c->drop)
            c->drop(c);
        srv_req_release(req);
        return;
    }
    /* The call still counts while done runs: whatever done does (answer,
     * close), the request cannot be freed under it. */
    int timed = srv_req_timed_begin(req);
    c->done(on, c);
    srv_req_release(req);
    srv_req_timed_end(on, timed);
}

void srv_call_send(srv_shard *from, srv_req *req, srv_call *c, int target)
{
    SRV_ON_SHARD(from->id);
    SRV_ASSERT(c->state == SRV_CALL_IDLE || c->state == SRV_CALL_BACK, "call sent again while out (state %d)",
               c->state);
    SRV_ASSERT(target >= 0 && target < from->b->nshards, "call to shard %d of %d", target, from->b->nshards);
    SRV_ASSERT(c->run && c->done, "call sent without run or done");
    c->req = req;
    c->origin = from->id;
    c->target = target;
    c->state = SRV_CALL_OUT;
    c->msg.fn = on_target;
    if (req) {
        SRV_ASSERT(req->shard == from, "request of shard %d sends from shard %d", req->shard->id, from->id);
        srv_req_hold(req);
    }
    srv_shard_send(from, target, &c->msg);
}

void srv_call_reply(srv_shard *on, srv_call *c)
{
    SRV_ON_SHARD(c->target);
    SRV_ASSERT(on->id == c->target, "call for shard %d replied from shard %d", c->target, on->id);
    SRV_ASSERT(c->state == SRV_CALL_OUT, "call replied in state %d: a second reply, or never sent", c->state);
    c->state = SRV_CALL_REPLIED;
    c->msg.fn = on_origin;
    if (on->b->draining && c->origin != on->id) {
        /* Shutdown: the loops have ended and main drains alone, so nobody
         * would read the origin's ring (an acks=all produce answered by the
         * drain leaked with its request). Main may touch every shard now. */
        on_origin(&on->b->shards[c->origin], &c->msg);
        return;
    }
    srv_shard_send(on, c->origin, &c->msg);
}

void srv_req_hold(srv_req *req)
{
    SRV_ON_SHARD(req->shard->id);
    SRV_ASSERT(req->pending >= 0, "request pending count %d below zero", req->pending);
    req->pending++;
}

int srv_req_release(srv_req *req)
{
    SRV_ON_SHARD(req->shard->id);
    SRV_ASSERT(req->pending > 0, "request released with nothing held or out (pending %d)", req->pending);
    if (--req->pending > 0)
        return 0;
    if (req->released) {
        srv_req_free(req);
        return 1;
    }
    if (req->then) {
        void (*then)(srv_req *) = req->then;
        req->then = NULL;
        then(req);
        return 1;
    }
    return 0;
}

void srv_req_then(srv_req *req, void (*then)(srv_req *req))
{
    SRV_ASSERT(req->then == NULL, "request given a second continuation while waiting");
    req->then = then;
}

int srv_req_timed_begin(srv_req *req)
{
    srv_shard *s = req->shard;
    SRV_ON_SHARD(s->id);
    if (s->timed)
        return 0;
    s->timed = req;
    s->timed_since_ns = srv_now_ns();
    return 1;
}

void srv_req_timed_end(srv_shard *s, int began)
{
    /* timed is cleared when its request is freed or answered (its time is
     * charged then), so what is left here is alive and still working. */
    if (!began || !s->timed)
        return;
    s->timed->cpu_ns += srv_now_ns() - s->timed_since_ns;
    s->timed = NULL;
}

uint64_t srv_req_cpu_ns(const srv_req *req)
{
    const srv_shard *s = req->shard;
    return req->cpu_ns + (s->timed == req ? srv_now_ns() - s->timed_since_ns : 0);
}

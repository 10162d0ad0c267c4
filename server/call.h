/*
 * call.h — the one way work crosses shards and comes back: a srv_call leaves
 * its origin shard, `run` executes on the target shard, srv_call_reply sends
 * the same memory back and `done` executes on the origin. Partition ops
 * (partcall.h), group calls (group/coord.h) and controller operations
 * (controller.h) are srv_calls with their own payload.
 *
 * Owns the call's state machine and a request's count of what it waits on
 * (req->pending: calls out plus holds). Must not: route (which shard owns a
 * partition or a group is the caller's business) or free a call's memory
 * except through its drop function.
 *
 * The rules, checked with SRV_ASSERT:
 * - run executes on the target shard, done on the origin shard;
 * - run ends in exactly one srv_call_reply, possibly later (after an I/O);
 *   a call is not sent again until it is back;
 * - a request is freed only when none of its calls is out and nothing holds
 *   it; req->pending never goes below zero.
 *
 * The request's arena is lent to the target while a call is out: run may read
 * what the call points to in the origin request's arena (names, records,
 * specs) and write the result fields the call designates there, but must not
 * allocate in that arena (it is not thread-safe and belongs to the origin)
 * nor keep any pointer into it after srv_call_reply. The request stays alive
 * until the call is back, whatever happens to its connection.
 */
#ifndef SRV_CALL_H
#define SRV_CALL_H

#include "broker.h"

typedef struct srv_call srv_call;
typedef void (*srv_call_fn)(srv_shard *on, srv_call *c);

enum { SRV_CALL_IDLE = 0, SRV_CALL_OUT = 1, SRV_CALL_REPLIED = 2, SRV_CALL_BACK = 3 };

struct srv_call {
    srv_msg msg;
    srv_req *req; /* the request waiting on this call, or NULL */
    int origin;   /* shard that sent it; done runs there */
    int target;   /* shard where run runs */
    int state;    /* SRV_CALL_* */
    srv_call_fn run;
    srv_call_fn done;
    /* The request was answered without this call (its connection went): the
     * call comes back to nobody and this frees it. NULL when the call's
     * memory is not its own (it lives in the request's arena). */
    void (*drop)(srv_call *c);
};

void srv_call_init(srv_call *c, srv_call_fn run, srv_call_fn done, void (*drop)(srv_call *c));

/* Sends c from shard `from` to shard `target` (inline when they are the
 * same). With req, the request counts the call until it is back and done
 * does not run if the request was answered meanwhile (drop does). */
void srv_call_send(srv_shard *from, srv_req *req, srv_call *c, int target);

/* From run, on the target: hands c back to its origin, exactly once. */
void srv_call_reply(srv_shard *on, srv_call *c);

/* ---- a request waiting on calls ------------------------------------------- */

/* Holds req: its continuation cannot run and it cannot be freed until the
 * matching srv_req_release. Handlers hold while they send, so calls answered
 * inline cannot finish the request half-way through the sending loop. */
void srv_req_hold(srv_req *req);

/* Drops one hold. When nothing is out any more: frees req if it was answered
 * and detached meanwhile, else runs its continuation (srv_req_then). Returns
 * 1 when req must not be touched any more (freed, or its continuation ran),
 * 0 otherwise. */
int srv_req_release(srv_req *req);

/* Runs then(req), once, as soon as the last call is back and the last hold
 * released: the "all replies are in" step of a fan-out handler. */
void srv_req_then(srv_req *req, void (*then)(srv_req *req));

#endif

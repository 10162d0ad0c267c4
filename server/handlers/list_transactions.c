/*
 * list_transactions.c — ListTransactions v0-1: every shard lists the
 * transactional ids it coordinates that match the filters (states, producer
 * ids, v1's duration), the ids the principal may not DESCRIBE are left out,
 * and state filters that name no state are answered back, as KafkaApis does.
 *
 * Owns the fan-out and the answer. Must not: read a coordinator's map from
 * this shard.
 */
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"

typedef struct list_state {
    kp_list_transactions_response resp;
    int32_t cap;
    int16_t error;
} list_state;

static const char *const STATES[] = {"Empty",          "Ongoing",       "PrepareCommit", "PrepareAbort",
                                     "CompleteCommit", "CompleteAbort", "Dead",          "PrepareEpochFence"};

static bool known_state(kp_str s)
{
    for (size_t i = 0; i < sizeof(STATES) / sizeof(STATES[0]); i++) {
        size_t n = strlen(STATES[i]); /* our constants */
        if (s.len == (int32_t)n && memcmp(s.p, STATES[i], n) == 0)
            return true;
    }
    return false;
}

static void finish(srv_req *req)
{
    list_state *st = req->state;
    if (st->error) {
        st->resp.error_code = st->error;
        st->resp.transaction_states_count = 0;
    }
    srv_req_respond(req, &st->resp);
}

static void shard_done(srv_shard *s, srv_txn_op *op)
{
    (void)s;
    srv_req *req = op->call.req;
    list_state *st = req->state;
    if (op->error)
        st->error = op->error;
    for (int32_t i = 0; i < op->ndescs; i++) {
        const srv_txn_desc *d = &op->descs[i];
        kp_str id = {d->txn_id, d->id_len};
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TRANSACTIONAL_ID, id))
            continue;
        if (st->resp.transaction_states_count == st->cap) {
            int32_t cap = st->cap ? st->cap * 2 : 16;
            kp_list_transactions_response_transaction_state *v =
                kp_arena_alloc(&req->arena, (size_t)cap * sizeof(*v));
            if (!v)
                break; /* the arena's failed flag closes the connection */
            if (st->cap)
                memcpy(v, st->resp.transaction_states, (size_t)st->cap * sizeof(*v));
            st->resp.transaction_states = v;
            st->cap = cap;
        }
        kp_list_transactions_response_transaction_state *t =
            &st->resp.transaction_states[st->resp.transaction_states_count++];
        kp_list_transactions_response_transaction_state_init(t);
        t->transactional_id = kp_arena_str(&req->arena, id);
        t->producer_id = d->img.producer_id;
        t->transaction_state = kp_str_c(srv_txn_state_name(d->img.state));
    }
    srv_txn_op_free(op);
}

void srv_h_list_transactions(srv_req *req)
{
    const kp_list_transactions_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    list_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    int32_t nf = rq->state_filters_count > 0 ? rq->state_filters_count : 0;
    if (st) {
        memset(st, 0, sizeof(*st));
        kp_list_transactions_response_init(&st->resp);
        st->resp.unknown_state_filters = kp_arena_alloc(&req->arena, (size_t)nf * sizeof(kp_str) + 1);
        st->resp.transaction_states = kp_arena_alloc(&req->arena, sizeof(*st->resp.transaction_states));
    }
    if (!st || !st->resp.unknown_state_filters || !st->resp.transaction_states) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->cap = 1;
    req->state = st;
    int32_t nknown = 0;
    for (int32_t i = 0; i < nf; i++) {
        if (known_state(rq->state_filters[i]))
            nknown++;
        else
            st->resp.unknown_state_filters[st->resp.unknown_state_filters_count++] = rq->state_filters[i];
    }
    /* Only unknown states asked for: nothing can match. */
    if (nf > 0 && nknown == 0) {
        srv_req_respond(req, &st->resp);
        return;
    }
    srv_req_then(req, finish);
    srv_req_hold(req);
    for (int i = 0; i < s->b->nshards; i++) {
        srv_txn_op *op = srv_txn_op_new(SRV_TXN_OP_LIST, shard_done);
        if (!op) {
            st->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            break;
        }
        op->states = rq->state_filters;
        op->nstates = nf;
        op->pids = rq->producer_id_filters;
        op->npids = rq->producer_id_filters_count > 0 ? rq->producer_id_filters_count : 0;
        op->min_duration_ms = req->kr.hdr.request_api_version >= 1 ? rq->duration_filter : -1;
        srv_txn_op_send_shard(req, op, i);
    }
    srv_req_release(req);
}

/*
 * envelope.c — metadata changes made on a follower of the metadata quorum,
 * forwarded to the active controller in Kafka's Envelope (API 58) with the
 * caller's principal and address, and the active controller's side of it.
 *
 * Follower: a forwardable request (the APIs Kafka forwards that kbroker
 * serves) is wrapped whole in an Envelope and sent, through shard 0, on the
 * raft thread's connection to the controller (quorum.h); the inner response
 * it carries back is the client's answer. No answer, or an Envelope error,
 * and the request runs here instead with that outcome (forward_error: the
 * controller answers NOT_CONTROLLER, or UNKNOWN_SERVER_ERROR as Kafka's
 * forwarding manager does for an Envelope error).
 * Controller: an Envelope from one of the voters' addresses, and from a
 * principal allowed CLUSTER_ACTION on the cluster, runs its inner request
 * through that request's own handler, authorized as the forwarded
 * principal and address; conn.c wraps the answer, and answers the
 * Envelope with an error where the handler would close the connection.
 *
 * Owns which APIs are forwarded, which peers may send an Envelope, and the
 * Envelope's encoding of the caller (DefaultPrincipalData with its version
 * prefix, the address's bytes).
 * Must not: hold the connection to the controller (quorum.c does) or decide
 * a change (the inner request's handler does).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "authz_req.h"
#include "call.h"
#include "dispatch.h"
#include "errors.h"
#include "logging.h"
#include "quorum.h"

/* Kafka's forwardable APIs that kbroker serves: the changes that live in
 * the metadata log. */
static int forwardable(int16_t key)
{
    switch (key) {
    case KP_API_CREATE_TOPICS:
    case KP_API_DELETE_TOPICS:
    case KP_API_CREATE_PARTITIONS:
    case KP_API_ALTER_CONFIGS:
    case KP_API_INCREMENTAL_ALTER_CONFIGS:
    case KP_API_CREATE_ACLS:
    case KP_API_DELETE_ACLS:
    case KP_API_ALTER_CLIENT_QUOTAS:
    case KP_API_ALTER_USER_SCRAM_CREDENTIALS:
        return 1;
    default:
        return 0;
    }
}

/* Config changes go only when every resource is a topic: a broker's own
 * dynamic configs are checked against its own files (TLS stores) and id,
 * and group configs live with the group's coordinator, not in the metadata
 * log; those are served where they arrive (NOT_CONTROLLER on a follower for
 * what needs the controller). */
static int topics_only(const srv_req *req)
{
    int16_t key = req->kr.hdr.request_api_key;
    if (key == KP_API_INCREMENTAL_ALTER_CONFIGS) {
        const kp_incremental_alter_configs_request *r = req->kr.body;
        for (int32_t i = 0; i < r->resources_count; i++)
            if (r->resources[i].resource_type != 2)
                return 0;
    } else if (key == KP_API_ALTER_CONFIGS) {
        const kp_alter_configs_request *r = req->kr.body;
        for (int32_t i = 0; i < r->resources_count; i++)
            if (r->resources[i].resource_type != 2)
                return 0;
    }
    return 1;
}

/* An ACL binding or filter with a code 0 is a request Kafka cannot parse:
 * its broker closes the client's connection before forwarding anything, so
 * such a request stays here, where its handler does the same. */
static int acls_parse(const srv_req *req)
{
    int16_t key = req->kr.hdr.request_api_key;
    int lit = req->kr.hdr.request_api_version < 1; /* v0: every binding LITERAL */
    if (key == KP_API_CREATE_ACLS) {
        const kp_create_acls_request *r = req->kr.body;
        for (int32_t i = 0; i < r->creations_count; i++) {
            const kp_create_acls_request_acl_creation *c = &r->creations[i];
            srv_acl a = {c->resource_type, lit ? SRV_PAT_LITERAL : c->resource_pattern_type,
                         c->operation,     c->permission_type,
                         c->resource_name, c->principal,
                         c->host};
            if (srv_acl_has_unknown(&a))
                return 0;
        }
    } else if (key == KP_API_DELETE_ACLS) {
        const kp_delete_acls_request *r = req->kr.body;
        for (int32_t i = 0; i < r->filters_count; i++) {
            const kp_delete_acls_request_delete_acls_filter *q = &r->filters[i];
            srv_acl_filter f = {q->resource_type_filter,
                                lit ? SRV_PAT_LITERAL : q->pattern_type_filter,
                                q->operation,
                                q->permission_type,
                                q->resource_name_filter,
                                q->principal_filter,
                                q->host_filter};
            if (srv_acl_has_unknown(&f))
                return 0;
        }
    }
    return 1;
}

int srv_forward_wanted(srv_req *req)
{
    srv_broker *b = req->shard->b;
    return b->quorum && req->conn && !req->enveloped && !req->forward_error &&
           forwardable(req->kr.hdr.request_api_key) && topics_only(req) && acls_parse(req) &&
           !srv_quorum_is_leader(b->quorum);
}

/* ---- the follower's side ------------------------------------------------------ */

typedef struct fwd_call {
    srv_call call;
    srv_shard *s0;
    uint8_t *frame; /* the Envelope request until the raft thread takes it */
    size_t len;
    uint8_t *answer; /* the Envelope response's body, malloc'd by quorum.c */
    size_t alen;
} fwd_call;

static void fwd_drop(srv_call *c)
{
    fwd_call *fc = (fwd_call *)c;
    free(fc->frame);
    free(fc->answer);
    free(fc);
}

static void fwd_answered(void *ctx, uint8_t *body, size_t len)
{
    fwd_call *fc = ctx;
    fc->answer = body;
    fc->alen = len;
    srv_call_reply(fc->s0, &fc->call);
}

static void fwd_run(srv_shard *on, srv_call *c)
{
    fwd_call *fc = (fwd_call *)c;
    fc->s0 = on;
    uint8_t *frame = fc->frame;
    fc->frame = NULL;
    srv_quorum_forward(on->b->quorum, frame, fc->len, KP_API_ENVELOPE, 0, fwd_answered, fc);
}

/* Served here after all, with the forward's outcome (controller.c). */
static void serve_here(srv_req *req, int16_t err)
{
    req->forward_error = err;
    srv_dispatch_handler(req);
}

static void fwd_done(srv_shard *on, srv_call *c)
{
    (void)on;
    fwd_call *fc = (fwd_call *)c;
    srv_req *req = c->req;
    if (!fc->answer) {
        fwd_drop(c);
        serve_here(req, KP_ERR_NOT_CONTROLLER);
        return;
    }
    /* The inner body's strings point into the answer: it lives in the
     * request's arena until the request is answered. */
    uint8_t *copy = kp_arena_alloc(&req->arena, fc->alen ? fc->alen : 1);
    size_t n = fc->alen;
    if (copy)
        memcpy(copy, fc->answer, n);
    fwd_drop(c);
    if (!copy) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_reader r;
    kp_reader_init(&r, copy, n);
    kp_envelope_response er;
    int drc = kp_envelope_response_decode(&r, &req->arena, 0, &er);
    if (drc != 0 || er.error_code != KP_ERR_NONE || er.response_data.len < 0) {
        if (drc != 0)
            srv_warn("the active controller's Envelope answer to a forwarded %s request is unreadable: %s",
                     req->kr.api->name, kp_strerror(drc));
        else
            srv_warn("the active controller refused a forwarded %s request (Envelope error %d)",
                     req->kr.api->name, (int)er.error_code);
        serve_here(req, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    int16_t key = req->kr.hdr.request_api_key, ver = req->kr.hdr.request_api_version;
    kp_reader ir;
    kp_reader_init(&ir, er.response_data.p, (size_t)er.response_data.len);
    kp_response_header h;
    void *body = kp_arena_alloc(&req->arena, req->kr.api->response->size);
    if (!body ||
        kp_response_header_decode(&ir, &req->arena, (int16_t)kp_response_header_version(key, ver), &h) ||
        h.correlation_id != req->kr.hdr.correlation_id ||
        req->kr.api->response->decode(&ir, &req->arena, ver, body) != 0) {
        srv_warn("the active controller's answer to a forwarded %s v%d request is unreadable",
                 req->kr.api->name, (int)ver);
        serve_here(req, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    /* The controller's controller_mutation_rate throttle is this client's
     * to wait out (KIP-599): muted here, as Kafka's forwarding broker does. */
    const int32_t *throttle = kp_response_throttle_field(key, ver, body);
    if (throttle)
        srv_req_mute(req, *throttle);
    srv_req_respond(req, body);
}

void srv_forward(srv_req *req)
{
    kp_writer w;
    kp_writer_init(&w, req->frame_len + 128);
    const char *principal = kp_arena_strz(&req->arena, srv_req_principal(req).p).p;
    const char *host = kp_arena_strz(&req->arena, srv_req_host(req).p).p;
    int bad =
        !principal || !host || srv_envelope_encode(&w, req->frame, req->frame_len, principal, host) != 0;
    fwd_call *fc = bad ? NULL : calloc(1, sizeof(*fc));
    if (!fc) {
        kp_writer_free(&w);
        serve_here(req, KP_ERR_NOT_CONTROLLER);
        return;
    }
    fc->frame = w.buf; /* the writer's buffer moves on */
    fc->len = w.len;
    srv_call_init(&fc->call, fwd_run, fwd_done, fwd_drop);
    srv_call_send(req->shard, req, &fc->call, 0);
}

/* ---- the active controller's side -------------------------------------------- */

static void envelope_error(srv_req *req, int16_t err)
{
    kp_envelope_response resp;
    kp_envelope_response_init(&resp);
    resp.response_data.p = NULL;
    resp.response_data.len = -1;
    resp.error_code = err;
    srv_req_respond(req, &resp);
}

/* 1 when the connection's peer address is one of controller.quorum.voters'
 * hosts (IPv4 addresses, config.c checks; an IPv4-mapped IPv6 peer counts
 * as its IPv4 address): only the quorum's nodes send Envelopes. */
static int from_voter(srv_req *req)
{
    kp_str h = srv_req_host(req);
    char ip[INET6_ADDRSTRLEN];
    if (h.len <= 0 || (size_t)h.len >= sizeof(ip))
        return 0;
    memcpy(ip, h.p, (size_t)h.len);
    ip[h.len] = 0;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) != 1) {
        if (inet_pton(AF_INET6, ip, &a6) != 1 || !IN6_IS_ADDR_V4MAPPED(&a6))
            return 0;
        memcpy(&a4, &a6.s6_addr[12], 4);
    }
    const srv_config *cfg = &req->shard->b->cfg;
    for (int i = 0; i < cfg->nvoters; i++) {
        struct in_addr v;
        if (inet_pton(AF_INET, cfg->voters[i].host, &v) == 1 && v.s_addr == a4.s_addr)
            return 1;
    }
    return 0;
}

void srv_h_envelope(srv_req *req)
{
    const kp_envelope_request *er = req->kr.body;
    if (!from_voter(req)) {
        srv_info("Envelope from %s refused: not the address of one of controller.quorum.voters",
                 srv_req_peer(req));
        envelope_error(req, KP_ERR_CLUSTER_AUTHORIZATION_FAILED);
        return;
    }
    if (!srv_authorize_cluster(req, SRV_OP_CLUSTER_ACTION)) {
        srv_info("Envelope from %s refused: %.*s may not CLUSTER_ACTION on the cluster", srv_req_peer(req),
                 (int)srv_req_principal(req).len, srv_req_principal(req).p);
        envelope_error(req, KP_ERR_CLUSTER_AUTHORIZATION_FAILED);
        return;
    }
    kp_reader pr;
    kp_reader_init(&pr, er->request_principal.p,
                   er->request_principal.len > 0 ? (size_t)er->request_principal.len : 0);
    int16_t pver = -1;
    kp_default_principal_data pd;
    if (er->request_principal.len < 2 || kp_read_i16(&pr, &pver) || pver != 0 ||
        kp_default_principal_data_decode(&pr, &req->arena, 0, &pd) || pd.type.len <= 0 || pd.name.len < 0 ||
        memchr(pd.type.p, ':', (size_t)pd.type.len) || memchr(pd.type.p, 0, (size_t)pd.type.len) ||
        (pd.name.len && memchr(pd.name.p, 0, (size_t)pd.name.len))) {
        envelope_error(req, KP_ERR_PRINCIPAL_DESERIALIZATION_FAILURE);
        return;
    }
    char ip[INET6_ADDRSTRLEN];
    int32_t al = er->client_host_address.len;
    if ((al != 4 && al != 16) ||
        !inet_ntop(al == 4 ? AF_INET : AF_INET6, er->client_host_address.p, ip, sizeof(ip))) {
        envelope_error(req, KP_ERR_INVALID_REQUEST);
        return;
    }
    kp_request inner;
    memset(&inner, 0, sizeof(inner));
    int rc = er->request_data.len >= 0
                 ? kp_request_decode(er->request_data.p, (size_t)er->request_data.len, &req->arena, &inner)
                 : KP_E_SHORT;
    const srv_api *api = rc == 0 ? srv_api_find(req->shard->b, inner.hdr.request_api_key) : NULL;
    if (rc == KP_E_VERSION || (api && (inner.hdr.request_api_version < api->min_version ||
                                       inner.hdr.request_api_version > api->max_version))) {
        envelope_error(req, KP_ERR_UNSUPPORTED_VERSION);
        return;
    }
    if (rc || !api || !forwardable(inner.hdr.request_api_key)) {
        envelope_error(req, KP_ERR_INVALID_REQUEST);
        return;
    }
    kp_request outer = req->kr;
    req->kr = inner;
    int ok = topics_only(req);
    req->kr = outer;
    if (!ok) {
        envelope_error(req, KP_ERR_INVALID_REQUEST);
        return;
    }
    size_t plen = (size_t)pd.type.len + 1 + (size_t)pd.name.len;
    char *principal = kp_arena_alloc(&req->arena, plen + 1);
    char *host = kp_arena_alloc(&req->arena, strlen(ip) + 2);
    if (!principal || !host) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    memcpy(principal, pd.type.p, (size_t)pd.type.len);
    principal[pd.type.len] = ':';
    if (pd.name.len)
        memcpy(principal + pd.type.len + 1, pd.name.p, (size_t)pd.name.len);
    principal[plen] = 0;
    host[0] = '/';
    memcpy(host + 1, ip, strlen(ip) + 1);
    req->enveloped = 1;
    req->env_corr = req->kr.hdr.correlation_id;
    req->as_principal = principal;
    req->as_host = host;
    req->kr = inner; /* from here on the request is the caller's */
    api->fn(req);
}

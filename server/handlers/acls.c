/*
 * acls.c — DescribeAcls, CreateAcls and DeleteAcls (v1-3). With the
 * authorizer on (authorizer.class.name, authz.h) they read the ACL set of the
 * shard's metadata version and change it through the controller
 * (SRV_CTL_ACLS), with Kafka's validation, per-item errors and CLUSTER
 * DESCRIBE / ALTER checks; with it off they answer SECURITY_DISABLED as
 * Apache Kafka without an authorizer does.
 *
 * Owns: those answers. Must not: change ACLs but through the controller, or
 * keep a pointer into an ACL set past the answer.
 */
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "controller.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"

/* Kafka's own wording differs between the describe and the change APIs. */
static const char NO_AUTHORIZER_DESCRIBE[] = "No Authorizer is configured on the broker";
static const char NO_AUTHORIZER[] = "No Authorizer is configured.";

static kp_str no_authorizer(void)
{
    return (kp_str){NO_AUTHORIZER, (int32_t)(sizeof(NO_AUTHORIZER) - 1)};
}

/* v0 of these APIs had no pattern type: every binding was LITERAL. */
static int8_t pattern_of(const srv_req *req, int8_t p)
{
    return req->kr.hdr.request_api_version >= 1 ? p : SRV_PAT_LITERAL;
}

/* ---- DescribeAcls ---------------------------------------------------------- */

void srv_h_describe_acls(srv_req *req)
{
    const kp_describe_acls_request *rq = req->kr.body;
    kp_describe_acls_response resp;
    kp_describe_acls_response_init(&resp);
    resp.resources_count = 0;
    srv_acl_filter f = {rq->resource_type_filter,
                        pattern_of(req, rq->pattern_type_filter),
                        rq->operation,
                        rq->permission_type,
                        rq->resource_name_filter,
                        rq->principal_filter,
                        rq->host_filter};
    if (srv_acl_has_unknown(&f)) {
        srv_req_fail_close(req,
                           "DescribeAcls filter with an UNKNOWN (0) code"); /* Kafka cannot parse it either */
        return;
    }
    if (!srv_authz_enabled(req)) {
        resp.error_code = KP_ERR_SECURITY_DISABLED;
        resp.error_message = (kp_str){NO_AUTHORIZER_DESCRIBE, (int32_t)(sizeof(NO_AUTHORIZER_DESCRIBE) - 1)};
        srv_req_respond(req, &resp);
        return;
    }
    if (!srv_authorize_cluster(req, SRV_OP_DESCRIBE)) {
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = kp_str_c("Cluster authorization failed.");
        srv_req_respond(req, &resp);
        return;
    }
    /* Codes Kafka does not know are no error here: they match nothing. */
    const srv_acl_set *set = req->shard->meta->acls;
    int n = set ? set->n : 0;
    /* One resource per (type, name, pattern), in the order first seen. */
    int *res_of = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(int));
    int *first = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(int));
    int *count = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(int));
    resp.resources = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(*resp.resources));
    if (!res_of || !first || !count || !resp.resources) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int nres = 0;
    for (int i = 0; i < n; i++) {
        const srv_acl *a = &set->acls[i];
        res_of[i] = -1;
        if (!srv_acl_filter_match(&f, a))
            continue;
        int r = 0;
        for (; r < nres; r++) {
            const srv_acl *b = &set->acls[first[r]];
            if (b->rtype == a->rtype && b->pattern == a->pattern && b->name.len == a->name.len &&
                memcmp(b->name.p, a->name.p, (size_t)a->name.len) == 0)
                break;
        }
        if (r == nres) {
            first[nres] = i;
            count[nres++] = 0;
        }
        res_of[i] = r;
        count[r]++;
    }
    for (int r = 0; r < nres; r++) {
        kp_describe_acls_response_describe_acls_resource *o = &resp.resources[r];
        const srv_acl *b = &set->acls[first[r]];
        kp_describe_acls_response_describe_acls_resource_init(o);
        o->resource_type = b->rtype;
        o->resource_name = kp_arena_str(&req->arena, b->name);
        o->pattern_type = b->pattern;
        o->acls = kp_arena_alloc(&req->arena, (size_t)count[r] * sizeof(*o->acls) + 1);
        if (!o->acls) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        o->acls_count = 0;
    }
    for (int i = 0; i < n; i++) {
        if (res_of[i] < 0)
            continue;
        const srv_acl *a = &set->acls[i];
        kp_describe_acls_response_describe_acls_resource *o = &resp.resources[res_of[i]];
        kp_describe_acls_response_acl_description *d = &o->acls[o->acls_count++];
        kp_describe_acls_response_acl_description_init(d);
        d->principal = kp_arena_str(&req->arena, a->principal);
        d->host = kp_arena_str(&req->arena, a->host);
        d->operation = a->op;
        d->permission_type = a->perm;
    }
    resp.resources_count = nres;
    srv_req_respond(req, &resp);
}

/* ---- CreateAcls ------------------------------------------------------------- */

typedef struct acl_state {
    srv_ctl_op op;
    srv_acl_change ch;
    srv_req *req;
    kp_create_acls_response cresp;
    kp_delete_acls_response dresp;
} acl_state;

static void create_done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    acl_state *st = (acl_state *)op;
    srv_acl_set_unref(st->ch.before);
    free(st->ch.deleted_by);
    for (int i = 0; i < st->ch.ncreate; i++) {
        kp_create_acls_response_acl_creation_result *r = &st->cresp.results[i];
        if (r->error_code == 0 && st->ch.create_error[i]) {
            r->error_code = st->ch.create_error[i];
            r->error_message = kp_str_c(kp_error_name(r->error_code));
        }
    }
    srv_req_respond(st->req, &st->cresp);
}

/* Kafka's words for a principal without a type, naming it. */
static kp_str bad_principal_message(srv_req *req, kp_str principal)
{
    static const char pre[] = "Could not parse principal from `";
    static const char post[] =
        "` (no colon is present separating the principal type from the principal name)";
    size_t pl = principal.len > 0 ? (size_t)principal.len : 0;
    char *m = kp_arena_alloc(&req->arena, sizeof(pre) + pl + sizeof(post));
    if (!m)
        return KP_STR_NULL; /* the failed arena closes the connection */
    memcpy(m, pre, sizeof(pre) - 1);
    if (pl)
        memcpy(m + sizeof(pre) - 1, principal.p, pl);
    memcpy(m + sizeof(pre) - 1 + pl, post, sizeof(post) - 1);
    return (kp_str){m, (int32_t)(sizeof(pre) - 1 + pl + sizeof(post) - 1)};
}

static acl_state *new_state(srv_req *req, int n)
{
    acl_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (!st)
        return NULL;
    st->req = req;
    st->op.kind = SRV_CTL_ACLS;
    st->op.acls = &st->ch;
    st->ch.create_error = kp_arena_alloc(&req->arena, (size_t)n * sizeof(int16_t) + 1);
    st->ch.filter_error = kp_arena_alloc(&req->arena, (size_t)n * sizeof(int16_t) + 1);
    return st->ch.create_error && st->ch.filter_error ? st : NULL;
}

void srv_h_create_acls(srv_req *req)
{
    const kp_create_acls_request *rq = req->kr.body;
    int32_t n = rq->creations_count > 0 ? rq->creations_count : 0;
    acl_state *st = new_state(req, n);
    srv_acl *create = kp_arena_alloc(&req->arena, (size_t)n * sizeof(srv_acl) + 1);
    if (!st || !create) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_create_acls_response *resp = &st->cresp;
    kp_create_acls_response_init(resp);
    resp->results = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp->results) + 1);
    if (!resp->results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp->results_count = n;
    for (int32_t i = 0; i < n; i++) {
        const kp_create_acls_request_acl_creation *c = &rq->creations[i];
        create[i] = (srv_acl){c->resource_type, pattern_of(req, c->resource_pattern_type),
                              c->operation,     c->permission_type,
                              c->resource_name, c->principal,
                              c->host};
        if (srv_acl_has_unknown(&create[i])) {
            srv_req_fail_close(req, "CreateAcls creation with an UNKNOWN (0) code"); /* as Kafka */
            return;
        }
    }
    int enabled = srv_authz_enabled(req);
    int allowed = enabled && srv_authorize_cluster(req, SRV_OP_ALTER);
    /* An ANY or MATCH code anywhere fails the whole batch in Kafka (its
     * binding constructor throws): every item UNKNOWN_SERVER_ERROR. */
    int batch_fails = 0;
    for (int32_t i = 0; i < n && allowed; i++) {
        const char *m;
        int bp;
        batch_fails |= srv_acl_validate_new(&create[i], &m, &bp) == KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    for (int32_t i = 0; i < n; i++) {
        kp_create_acls_response_acl_creation_result *r = &resp->results[i];
        kp_create_acls_response_acl_creation_result_init(r);
        r->error_message = kp_str_c(""); /* Kafka's answer for a created binding */
        const srv_acl *a = &create[i];
        const char *bad = NULL;
        int bad_principal = 0;
        int16_t invalid = 0;
        if (batch_fails) {
            r->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            r->error_message = KP_STR_NULL;
        } else if (!enabled) {
            r->error_code = KP_ERR_SECURITY_DISABLED;
            r->error_message = no_authorizer();
        } else if (!allowed) {
            r->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
            r->error_message = kp_str_c("Cluster authorization failed.");
        } else if ((invalid = srv_acl_validate_new(a, &bad, &bad_principal)) != 0) {
            r->error_code = invalid;
            r->error_message = bad ? kp_str_c(bad) : KP_STR_NULL;
            if (bad_principal)
                r->error_message = bad_principal_message(req, a->principal);
        }
        st->ch.create_error[i] = r->error_code;
    }
    if (!enabled || !allowed || batch_fails || n == 0) {
        srv_req_respond(req, resp);
        return;
    }
    st->ch.ncreate = n;
    st->ch.create = create;
    st->op.done = create_done;
    srv_ctl_submit(req->shard, req, &st->op);
}

/* ---- DeleteAcls ------------------------------------------------------------- */

static void delete_done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    acl_state *st = (acl_state *)op;
    srv_req *req = st->req;
    kp_delete_acls_response *resp = &st->dresp;
    const srv_acl_set *before = st->ch.before;
    int nb = before ? before->n : 0;
    for (int f = 0; f < st->ch.nfilter; f++) {
        kp_delete_acls_response_delete_acls_filter_result *fr = &resp->filter_results[f];
        if (fr->error_code == 0 && st->ch.filter_error[f]) {
            fr->error_code = st->ch.filter_error[f];
            fr->error_message = kp_str_c(kp_error_name(fr->error_code));
            continue;
        }
        int m = 0;
        for (int j = 0; j < nb && st->ch.deleted_by; j++)
            m += st->ch.deleted_by[j] == f;
        fr->matching_acls = kp_arena_alloc(&req->arena, (size_t)m * sizeof(*fr->matching_acls) + 1);
        if (!fr->matching_acls)
            break; /* srv_req_respond sees the failed arena and closes */
        fr->matching_acls_count = 0;
        for (int j = 0; j < nb && st->ch.deleted_by; j++) {
            if (st->ch.deleted_by[j] != f)
                continue;
            const srv_acl *a = &before->acls[j];
            kp_delete_acls_response_delete_acls_matching_acl *o =
                &fr->matching_acls[fr->matching_acls_count++];
            kp_delete_acls_response_delete_acls_matching_acl_init(o);
            o->error_message = KP_STR_NULL;
            o->resource_type = a->rtype;
            o->resource_name = kp_arena_str(&req->arena, a->name);
            o->pattern_type = a->pattern;
            o->principal = kp_arena_str(&req->arena, a->principal);
            o->host = kp_arena_str(&req->arena, a->host);
            o->operation = a->op;
            o->permission_type = a->perm;
        }
    }
    srv_acl_set_unref(st->ch.before);
    free(st->ch.deleted_by);
    srv_req_respond(req, resp);
}

void srv_h_delete_acls(srv_req *req)
{
    const kp_delete_acls_request *rq = req->kr.body;
    int32_t n = rq->filters_count > 0 ? rq->filters_count : 0;
    acl_state *st = new_state(req, n);
    srv_acl_filter *filters = kp_arena_alloc(&req->arena, (size_t)n * sizeof(srv_acl_filter) + 1);
    if (!st || !filters) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_delete_acls_response *resp = &st->dresp;
    kp_delete_acls_response_init(resp);
    resp->filter_results = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp->filter_results) + 1);
    if (!resp->filter_results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp->filter_results_count = n;
    for (int32_t i = 0; i < n; i++) {
        const kp_delete_acls_request_delete_acls_filter *q = &rq->filters[i];
        filters[i] = (srv_acl_filter){q->resource_type_filter,
                                      pattern_of(req, q->pattern_type_filter),
                                      q->operation,
                                      q->permission_type,
                                      q->resource_name_filter,
                                      q->principal_filter,
                                      q->host_filter};
        if (srv_acl_has_unknown(&filters[i])) {
            srv_req_fail_close(req, "DeleteAcls filter with an UNKNOWN (0) code"); /* as Kafka */
            return;
        }
    }
    int enabled = srv_authz_enabled(req);
    int allowed = enabled && srv_authorize_cluster(req, SRV_OP_ALTER);
    for (int32_t i = 0; i < n; i++) {
        kp_delete_acls_response_delete_acls_filter_result *f = &resp->filter_results[i];
        kp_delete_acls_response_delete_acls_filter_result_init(f);
        f->error_message = KP_STR_NULL;
        f->matching_acls_count = 0;
        const char *bad = NULL;
        if (!enabled) {
            f->error_code = KP_ERR_SECURITY_DISABLED;
            f->error_message = no_authorizer();
        } else if (!allowed) {
            f->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
            f->error_message = kp_str_c("Cluster authorization failed.");
        } else if ((bad = srv_acl_validate_filter(&filters[i])) != NULL) {
            f->error_code = KP_ERR_INVALID_REQUEST;
            f->error_message = kp_str_c(bad);
        }
        st->ch.filter_error[i] = f->error_code;
    }
    if (!enabled || !allowed || n == 0) {
        srv_req_respond(req, resp);
        return;
    }
    st->ch.nfilter = n;
    st->ch.filters = filters;
    st->op.done = delete_done;
    srv_ctl_submit(req->shard, req, &st->op);
}

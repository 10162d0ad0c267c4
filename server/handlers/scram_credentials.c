/*
 * scram_credentials.c — DescribeUserScramCredentials v0 (API 50) and
 * AlterUserScramCredentials v0 (API 51): SCRAM users as Kafka's controller
 * manages them. Describe reads the shard's published metadata version;
 * Alter goes through the controller, which validates, persists the 'S'
 * records and publishes the new credential set before the answer.
 *
 * Owns the answers (one result per user, Kafka's codes and messages). Must
 * not: validate alterations itself (scram_store.c does, on the controller,
 * against the state it changes) or see a salted password after handing it
 * to the controller. Both need rights on the cluster (DESCRIBE / ALTER), as
 * in Kafka.
 */
#include <stdio.h>
#include <string.h>

#include "authz_req.h"
#include "controller.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"
#include "scram_store.h"
#include "sstr.h"

static kp_str arena_msg(srv_req *req, const char *prefix, kp_str name)
{
    size_t pl = strlen(prefix), nl = name.len > 0 ? (size_t)name.len : 0;
    char *p = kp_arena_alloc(&req->arena, pl + nl + 1);
    if (!p)
        return kp_str_c("");
    memcpy(p, prefix, pl);
    if (nl)
        memcpy(p + pl, name.p, nl);
    return (kp_str){p, (int32_t)(pl + nl)};
}

typedef kp_describe_user_scram_credentials_response_describe_user_scram_credentials_result describe_result;
typedef kp_describe_user_scram_credentials_response_credential_info credential_info;

/* A user's credentials, SCRAM-SHA-256 first. */
static int fill_infos(srv_req *req, describe_result *r, const int32_t *iters)
{
    r->credential_infos = kp_arena_alloc(&req->arena, 2 * sizeof(credential_info));
    if (!r->credential_infos)
        return -1;
    r->credential_infos_count = 0;
    for (int m = SRV_SCRAM_SHA256; m <= SRV_SCRAM_SHA512; m++)
        if (iters[m]) {
            credential_info *ci = &r->credential_infos[r->credential_infos_count++];
            kp_describe_user_scram_credentials_response_credential_info_init(ci);
            ci->mechanism = (int8_t)m;
            ci->iterations = iters[m];
        }
    return 0;
}

void srv_h_describe_user_scram_credentials(srv_req *req)
{
    const kp_describe_user_scram_credentials_request *q = req->kr.body;
    const srv_scram_set *set = req->shard->meta->scram;
    kp_describe_user_scram_credentials_response resp;
    kp_describe_user_scram_credentials_response_init(&resp);
    if (!srv_authorize_cluster(req, SRV_OP_DESCRIBE)) {
        /* Kafka 4.4: the top-level code, no message, no results. */
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = KP_STR_NULL;
        resp.results_count = 0;
        srv_req_respond(req, &resp);
        return;
    }
    resp.error_message = kp_str_c("");
    int32_t asked = q->users_count > 0 ? q->users_count : 0;
    int32_t cap = asked ? asked : srv_scram_set_nusers(set);
    resp.results = kp_arena_alloc(&req->arena, (size_t)cap * sizeof(*resp.results) + 1);
    if (!resp.results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int32_t iters[SRV_SCRAM_SHA512 + 1];
    if (!asked) {
        /* A null or empty list: every user, as Kafka answers. */
        for (int i = 0; i < cap; i++) {
            describe_result *r = &resp.results[resp.results_count++];
            kp_describe_user_scram_credentials_response_describe_user_scram_credentials_result_init(r);
            size_t len;
            const char *user = srv_scram_set_user(set, i, &len, iters);
            r->user = (kp_str){user, (int32_t)len};
            r->error_message = kp_str_c("");
            if (fill_infos(req, r, iters) != 0) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
        }
        srv_req_respond(req, &resp);
        return;
    }
    srv_str_idx *names = kp_arena_alloc(&req->arena, (size_t)asked * sizeof(*names));
    uint8_t *dup = kp_arena_alloc(&req->arena, (size_t)asked);
    if (!names || !dup) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < asked; i++)
        names[i] = (srv_str_idx){q->users[i].name, i};
    srv_str_mark_dups(names, asked, dup);
    for (int32_t i = 0; i < asked; i++) {
        if (dup[i] == 2)
            continue; /* answered once, with the first */
        kp_str name = q->users[i].name;
        describe_result *r = &resp.results[resp.results_count++];
        kp_describe_user_scram_credentials_response_describe_user_scram_credentials_result_init(r);
        r->user = name;
        r->error_message = kp_str_c("");
        int u = name.len > 0 ? srv_scram_set_user_index(set, name.p, (size_t)name.len) : -1;
        if (dup[i] == 1) {
            r->error_code = KP_ERR_DUPLICATE_RESOURCE;
            r->error_message = arena_msg(
                req, "Cannot describe SCRAM credentials for the same user twice in a single request: ", name);
        } else if (u < 0) {
            r->error_code = KP_ERR_RESOURCE_NOT_FOUND;
            r->error_message =
                arena_msg(req, "Attempt to describe a user credential that does not exist: ", name);
        } else {
            size_t len;
            srv_scram_set_user(set, u, &len, iters);
            if (fill_infos(req, r, iters) != 0) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
        }
    }
    srv_req_respond(req, &resp);
}

typedef struct alter_state {
    srv_ctl_op op;
    srv_req *req;
    uint8_t *dup; /* per change: 2 when an earlier change named the same user */
} alter_state;

static void alter_done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    alter_state *st = (alter_state *)op;
    srv_req *req = st->req;
    kp_alter_user_scram_credentials_response resp;
    kp_alter_user_scram_credentials_response_init(&resp);
    resp.results = kp_arena_alloc(&req->arena, (size_t)op->nscram * sizeof(*resp.results) + 1);
    if (!resp.results) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int i = 0; i < op->nscram; i++) {
        if (st->dup[i] == 2)
            continue; /* Kafka answers once per user */
        const srv_scram_change *c = &op->scram[i];
        kp_alter_user_scram_credentials_response_alter_user_scram_credentials_result *r =
            &resp.results[resp.results_count++];
        kp_alter_user_scram_credentials_response_alter_user_scram_credentials_result_init(r);
        r->user = c->user;
        r->error_code = c->error;
        r->error_message = c->message ? kp_str_c(c->message) : KP_STR_NULL;
    }
    srv_req_respond(req, &resp);
}

void srv_h_alter_user_scram_credentials(srv_req *req)
{
    const kp_alter_user_scram_credentials_request *q = req->kr.body;
    int32_t nd = q->deletions_count > 0 ? q->deletions_count : 0;
    int32_t nu = q->upsertions_count > 0 ? q->upsertions_count : 0;
    int32_t n = nd + nu;
    alter_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    srv_scram_change *ch = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*ch) + 1);
    srv_str_idx *names = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*names) + 1);
    uint8_t *dup = kp_arena_alloc(&req->arena, (size_t)n + 1);
    if (!st || !ch || !names || !dup) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    /* Deletions first, then upsertions: the order in which Kafka looks at
     * them, and so which change of a user answers for it. */
    for (int32_t i = 0; i < nd; i++) {
        ch[i].user = q->deletions[i].name;
        ch[i].mech = q->deletions[i].mechanism;
        ch[i].is_delete = 1;
    }
    for (int32_t i = 0; i < nu; i++) {
        const kp_alter_user_scram_credentials_request_scram_credential_upsertion *u = &q->upsertions[i];
        srv_scram_change *c = &ch[nd + i];
        c->user = u->name;
        c->mech = u->mechanism;
        c->iterations = u->iterations;
        c->salt = u->salt;
        c->salted_password = u->salted_password;
    }
    for (int32_t i = 0; i < n; i++)
        names[i] = (srv_str_idx){ch[i].user, i};
    srv_str_mark_dups(names, n, dup);
    if (!srv_authorize_cluster(req, SRV_OP_ALTER)) {
        /* Kafka: every user named, once, in byte order (names is sorted
         * now), refused; nothing reaches the controller. */
        kp_alter_user_scram_credentials_response resp;
        kp_alter_user_scram_credentials_response_init(&resp);
        resp.results = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp.results) + 1);
        if (!resp.results) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        for (int32_t k = 0; k < n; k++) {
            if (dup[names[k].i] == 2)
                continue;
            kp_alter_user_scram_credentials_response_alter_user_scram_credentials_result *r =
                &resp.results[resp.results_count++];
            kp_alter_user_scram_credentials_response_alter_user_scram_credentials_result_init(r);
            r->user = names[k].s;
            r->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
            r->error_message = kp_str_c("Cluster authorization failed.");
        }
        srv_req_respond(req, &resp);
        return;
    }
    st->req = req;
    st->dup = dup;
    st->op.kind = SRV_CTL_ALTER_SCRAM;
    st->op.nscram = n;
    st->op.scram = ch;
    st->op.done = alter_done;
    srv_ctl_submit(req->shard, req, &st->op);
}

/*
 * authz_req.c — srv_authorize: a request's principal and client address put
 * to the ACL set of the metadata version its shard serves.
 *
 * Owns nothing. Must not: keep state between calls, or allow anything for a
 * request whose connection is gone (its answer is never sent anyway).
 */
#include "authz_req.h"

#include <string.h>

#include "meta.h"

int srv_authz_enabled(const srv_req *req)
{
    return req->shard->b->authz.enabled;
}

int srv_authorize(srv_req *req, int op, int rtype, kp_str name)
{
    const srv_authz_cfg *cfg = &req->shard->b->authz;
    if (!cfg->enabled)
        return 1;
    if (!req->conn)
        return 0;
    return srv_authz_check(cfg, req->shard->meta->acls, srv_req_principal(req), srv_req_host(req), op, rtype,
                           name);
}

int srv_authorize_any(srv_req *req, int op, int rtype)
{
    const srv_authz_cfg *cfg = &req->shard->b->authz;
    if (!cfg->enabled)
        return 1;
    if (!req->conn)
        return 0;
    return srv_authz_check_any(cfg, req->shard->meta->acls, srv_req_principal(req), srv_req_host(req), op,
                               rtype);
}

int srv_authorize_z(srv_req *req, int op, int rtype, const char *name)
{
    return srv_authorize(req, op, rtype, (kp_str){name, (int32_t)strlen(name)});
}

int srv_authorize_cluster(srv_req *req, int op)
{
    return srv_authorize_z(req, op, SRV_RES_CLUSTER, SRV_CLUSTER_RESOURCE);
}

int srv_authz_super(srv_req *req)
{
    const srv_authz_cfg *cfg = &req->shard->b->authz;
    if (!cfg->enabled)
        return 1;
    return req->conn && srv_authz_is_super(cfg, srv_req_principal(req));
}

/* The operations Kafka lists per resource type (AclEntry.supportedOperations). */
static const int TOPIC_OPS[] = {SRV_OP_READ,   SRV_OP_WRITE,    SRV_OP_CREATE,           SRV_OP_DELETE,
                                SRV_OP_ALTER,  SRV_OP_DESCRIBE, SRV_OP_DESCRIBE_CONFIGS, SRV_OP_ALTER_CONFIGS,
                                SRV_OP_UNKNOWN};
static const int GROUP_OPS[] = {SRV_OP_READ,          SRV_OP_DESCRIBE, SRV_OP_DELETE, SRV_OP_DESCRIBE_CONFIGS,
                                SRV_OP_ALTER_CONFIGS, SRV_OP_UNKNOWN};
static const int CLUSTER_OPS[] = {SRV_OP_CREATE,        SRV_OP_CLUSTER_ACTION,   SRV_OP_DESCRIBE_CONFIGS,
                                  SRV_OP_ALTER_CONFIGS, SRV_OP_IDEMPOTENT_WRITE, SRV_OP_ALTER,
                                  SRV_OP_DESCRIBE,      SRV_OP_UNKNOWN};
static const int TXN_OPS[] = {SRV_OP_DESCRIBE, SRV_OP_WRITE, SRV_OP_UNKNOWN};
static const int TOKEN_OPS[] = {SRV_OP_DESCRIBE, SRV_OP_UNKNOWN};
static const int USER_OPS[] = {SRV_OP_CREATE_TOKENS, SRV_OP_DESCRIBE_TOKENS, SRV_OP_UNKNOWN};

int32_t srv_authorized_ops(srv_req *req, int rtype, kp_str name)
{
    const int *ops = rtype == SRV_RES_TOPIC              ? TOPIC_OPS
                     : rtype == SRV_RES_GROUP            ? GROUP_OPS
                     : rtype == SRV_RES_CLUSTER          ? CLUSTER_OPS
                     : rtype == SRV_RES_TRANSACTIONAL_ID ? TXN_OPS
                     : rtype == SRV_RES_DELEGATION_TOKEN ? TOKEN_OPS
                                                         : USER_OPS;
    int32_t bits = 0;
    for (int i = 0; ops[i] != SRV_OP_UNKNOWN; i++)
        if (srv_authorize(req, ops[i], rtype, name))
            bits |= (int32_t)1 << ops[i];
    return bits;
}

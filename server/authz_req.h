/*
 * authz_req.h — the one call handlers make to authorize a request:
 * srv_authorize(req, op, resource type, name), which reads the request's
 * principal and client address and the ACL set its shard serves.
 *
 * Owns nothing. Must not: decide anything itself (authz.c does), or be
 * bypassed by a handler that serves data while the authorizer is on.
 */
#ifndef SRV_AUTHZ_REQ_H
#define SRV_AUTHZ_REQ_H

#include "authz.h"
#include "broker.h"

/* 1 when the authorizer is off or allows it, 0 when denied. */
int srv_authorize(srv_req *req, int op, int rtype, kp_str name);
/* The same for a resource name that is a C string of ours. */
int srv_authorize_z(srv_req *req, int op, int rtype, const char *name);
/* srv_authz_check_any for the request: op on some resource of rtype. */
int srv_authorize_any(srv_req *req, int op, int rtype);
/* srv_authorize on the CLUSTER resource. */
int srv_authorize_cluster(srv_req *req, int op);
/* Kafka's authorized-operations bit set (1 << op for each operation the
 * resource type supports and the request's principal may do), as Metadata,
 * DescribeCluster and DescribeGroups answer it when asked. */
int32_t srv_authorized_ops(srv_req *req, int rtype, kp_str name);
/* The authorizer is on (authorizer.class.name names StandardAuthorizer). */
int srv_authz_enabled(const srv_req *req);
/* The request's principal is a super user (1 also when the authorizer is off). */
int srv_authz_super(srv_req *req);

#endif

/*
 * dispatch.h — the table of implemented APIs: which versions the broker
 * serves (ApiVersions advertises exactly these) and the handler of each.
 */
#ifndef SRV_DISPATCH_H
#define SRV_DISPATCH_H

#include "broker.h"
#include "txn_coord.h"

typedef void (*srv_handler_fn)(srv_req *req);

#define SRV_API_QUORUM 2
typedef struct srv_api {
    int16_t key;
    int16_t min_version, max_version;
    srv_handler_fn fn;
    /* 1: part of a feature still being built; served and advertised only
     * with unstable.api.versions.enable=true (srv_api_served).
     * SRV_API_QUORUM: between members of the metadata quorum, served only
     * with one and never advertised. */
    int unstable;
} srv_api;

/* Decodes the request and runs its handler, which answers now or later.
 * Malformed frames, unknown keys and unsupported versions close the
 * connection with a log line (ApiVersions gets its UNSUPPORTED_VERSION
 * answer instead, as the protocol requires). */
void srv_dispatch(srv_req *req);

const srv_api *srv_api_table(size_t *count);
/* Whether this broker serves (and ApiVersions lists) api. */
int srv_api_served(const srv_broker *b, const srv_api *api);
/* The served API of that key, or NULL. */
const srv_api *srv_api_find(const srv_broker *b, int16_t key);
/* Runs the handler of an already decoded, served request. */
void srv_dispatch_handler(srv_req *req);

/* Forwarding of metadata changes by a follower of the metadata quorum to
 * the active controller, in an Envelope (envelope.c). */
int srv_forward_wanted(srv_req *req);
void srv_forward(srv_req *req);
void srv_h_envelope(srv_req *req);

/* Handlers, one file each under handlers/. */
void srv_h_api_versions(srv_req *req);
void srv_h_sasl_handshake(srv_req *req);
void srv_h_sasl_authenticate(srv_req *req);
void srv_h_describe_user_scram_credentials(srv_req *req);
void srv_h_alter_user_scram_credentials(srv_req *req);
void srv_h_metadata(srv_req *req);
void srv_h_produce(srv_req *req);
void srv_h_fetch(srv_req *req);
void srv_h_list_offsets(srv_req *req);
void srv_h_create_topics(srv_req *req);
void srv_h_delete_topics(srv_req *req);
void srv_h_init_producer_id(srv_req *req);
void srv_h_create_partitions(srv_req *req);
void srv_h_describe_configs(srv_req *req);
void srv_h_alter_configs(srv_req *req);
void srv_h_incremental_alter_configs(srv_req *req);
void srv_h_delete_records(srv_req *req);
void srv_h_describe_cluster(srv_req *req);
void srv_h_describe_log_dirs(srv_req *req);
void srv_h_offset_for_leader_epoch(srv_req *req);
void srv_h_describe_producers(srv_req *req);
void srv_h_write_txn_markers(srv_req *req);
void srv_h_txn_offset_commit(srv_req *req);
/* The marker append both WriteTxnMarkers and the transaction coordinator use
 * (a srv_txn_marker_fn, handed to txn_coord.c by main.c). */
void srv_txn_marker_append(srv_shard *owner, srv_part *p, const srv_txn_marker_args *m,
                           srv_txn_marker_done done, void *arg);
void srv_h_add_partitions_to_txn(srv_req *req);
void srv_h_add_offsets_to_txn(srv_req *req);
void srv_h_end_txn(srv_req *req);
void srv_h_describe_transactions(srv_req *req);
void srv_h_list_transactions(srv_req *req);
void srv_h_describe_acls(srv_req *req);
void srv_h_create_acls(srv_req *req);
void srv_h_delete_acls(srv_req *req);
void srv_h_find_coordinator(srv_req *req);
void srv_h_join_group(srv_req *req);
void srv_h_sync_group(srv_req *req);
void srv_h_heartbeat(srv_req *req);
void srv_h_leave_group(srv_req *req);
void srv_h_describe_groups(srv_req *req);
void srv_h_list_groups(srv_req *req);
void srv_h_delete_groups(srv_req *req);
void srv_h_offset_commit(srv_req *req);
void srv_h_offset_fetch(srv_req *req);
void srv_h_offset_delete(srv_req *req);
void srv_h_consumer_group_heartbeat(srv_req *req);
void srv_h_consumer_group_describe(srv_req *req);
void srv_h_share_group_heartbeat(srv_req *req);
void srv_h_share_group_describe(srv_req *req);
void srv_h_share_fetch(srv_req *req);
/* srv_broker.conn_closed: a connection's share sessions end with it (share.c). */
void srv_conn_closed(srv_shard *s, void *ext);
void srv_h_share_acknowledge(srv_req *req);
void srv_h_describe_share_group_offsets(srv_req *req);
void srv_h_alter_share_group_offsets(srv_req *req);
void srv_h_delete_share_group_offsets(srv_req *req);
/* DescribeConfigs / IncrementalAlterConfigs / AlterConfigs naming only
 * GROUP resources are served by share_config.c (srv_h_group_configs). */
int srv_group_configs_only(const srv_req *req);
void srv_h_group_configs(srv_req *req);
/* A DescribeConfigs or (Incremental)AlterConfigs mixing GROUP with other
 * resources (srv_group_configs_any). (Incremental)AlterConfigs: the GROUP
 * ones are validated, written and applied first, then next(req) (configs.c)
 * answers the request, taking each GROUP resource's outcome from
 * srv_group_configs_result (1 for a GROUP resource, with its error and
 * message, a C string or NULL; valid until next replaces req->state). */
int srv_group_configs_any(const srv_req *req);
void srv_group_configs_alter(srv_req *req, void (*next)(srv_req *req));
int srv_group_configs_result(const srv_req *req, int32_t i, int16_t *error, const char **message);
/* The same for DescribeConfigs: the GROUP resources are described first,
 * then next(req); srv_group_configs_described gives resource i's result
 * (NULL when it is not a GROUP resource), in the request's arena. */
void srv_group_configs_describe(srv_req *req, void (*next)(srv_req *req));
const kp_describe_configs_response_describe_configs_result *srv_group_configs_described(const srv_req *req,
                                                                                        int32_t i);
void srv_h_describe_client_quotas(srv_req *req);
void srv_h_alter_client_quotas(srv_req *req);
void srv_h_broker_registration(srv_req *req);
void srv_h_broker_heartbeat(srv_req *req);

#endif

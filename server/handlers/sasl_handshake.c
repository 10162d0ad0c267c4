/*
 * sasl_handshake.c — SaslHandshake v0-1: picks the SASL mechanism of a
 * connection on a SASL listener among the listener's
 * sasl.enabled.mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
 *
 * Owns the handshake's answers and state moves, and starting a SCRAM
 * exchange. Must not: check credentials (sasl_authenticate.c and conn.c's
 * bare-token path do).
 */
#include <string.h>

#include "config_keys.h"
#include "dispatch.h"
#include "errors.h"
#include "logging.h"
#include "scram.h"

#define MAX_MECHS 8

void srv_h_sasl_handshake(srv_req *req)
{
    const kp_sasl_handshake_request *q = req->kr.body;
    kp_sasl_handshake_response resp;
    kp_sasl_handshake_response_init(&resp);
    int state = srv_req_auth_state(req);
    if (state != SRV_AUTH_WAIT_HANDSHAKE) {
        /* Not a SASL listener, or already past the handshake: Kafka's
         * KafkaApis answers ILLEGAL_SASL_STATE with no mechanisms. */
        resp.error_code = KP_ERR_ILLEGAL_SASL_STATE;
        resp.mechanisms_count = 0;
        srv_req_respond(req, &resp);
        return;
    }
    /* Kafka lists the listener's enabled mechanisms in their configured
     * order (config.c checked each is one we serve). */
    const srv_config *cfg = &req->shard->b->cfg;
    const char *list = srv_config_sec(cfg, cfg->listeners[req->listener].name, "sasl.enabled.mechanisms");
    kp_str mechs[MAX_MECHS];
    int n = 0, chosen = -1;
    srv_cfgk_list_iter it = {list ? list : "", !list || !*list};
    char item[64];
    while (n < MAX_MECHS && srv_cfgk_list_next(&it, item, sizeof(item))) {
        mechs[n] = kp_arena_strz(&req->arena, item);
        if (kp_str_eq(q->mechanism, item))
            chosen = n;
        n++;
    }
    resp.mechanisms = mechs;
    resp.mechanisms_count = n;
    if (chosen < 0) {
        srv_info("connection from %s asked for SASL mechanism '%.*s', not enabled: closing",
                 srv_req_peer(req),
                 q->mechanism.len > 0 ? (q->mechanism.len > 64 ? 64 : (int)q->mechanism.len) : 0,
                 q->mechanism.len > 0 ? q->mechanism.p : "");
        resp.error_code = KP_ERR_UNSUPPORTED_SASL_MECHANISM;
        srv_req_respond_then_close(req, &resp, 0);
        return;
    }
    int scram = srv_scram_mech_from_name(mechs[chosen].p, (size_t)mechs[chosen].len);
    if (scram != SRV_SCRAM_UNKNOWN) {
        struct srv_scram_server *x = srv_scram_server_new(scram);
        if (!x) {
            srv_req_fail_close(req, "out of memory starting a SCRAM exchange");
            return;
        }
        srv_req_set_scram(req, x);
    }
    srv_req_set_auth(
        req, req->kr.hdr.request_api_version == 0 ? SRV_AUTH_WAIT_RAW_TOKEN : SRV_AUTH_WAIT_AUTHENTICATE,
        NULL);
    resp.error_code = KP_ERR_NONE;
    srv_req_respond(req, &resp);
}

/*
 * sasl_handshake.c — SaslHandshake v0-1: picks the SASL mechanism of a
 * connection on a SASL listener among its sasl.enabled.mechanisms (PLAIN,
 * SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER), also when an authenticated
 * connection re-authenticates (KIP-368, started by conn.c).
 *
 * Owns the handshake's answers and state moves, and starting a SCRAM
 * exchange. Must not: check
 * credentials (sasl_authenticate.c and conn.c's bare-token path do).
 */
#include <string.h>

#include "dispatch.h"
#include "errors.h"
#include "logging.h"
#include "scram.h"

void srv_h_sasl_handshake(srv_req *req)
{
    const kp_sasl_handshake_request *q = req->kr.body;
    kp_sasl_handshake_response resp;
    kp_sasl_handshake_response_init(&resp);
    int state = srv_req_auth_state(req);
    const srv_broker *b = req->shard->b;
    kp_str mechs[SRV_MECH_COUNT];
    int nmechs = 0, chosen = SRV_MECH_NONE;
    for (int i = 0; i < b->n_sasl_mechs[req->listener]; i++) {
        int m = b->sasl_mechs[req->listener][i];
        mechs[nmechs++] = kp_str_c(srv_sasl_mech_name(m));
        if (kp_str_eq(q->mechanism, srv_sasl_mech_name(m)))
            chosen = m;
    }
    if (state != SRV_AUTH_WAIT_HANDSHAKE) {
        /* Not a SASL listener, or already past the handshake: Kafka's
         * KafkaApis answers ILLEGAL_SASL_STATE with no mechanisms. */
        resp.error_code = KP_ERR_ILLEGAL_SASL_STATE;
        resp.mechanisms_count = 0;
        srv_req_respond(req, &resp);
        return;
    }
    resp.mechanisms = mechs;
    resp.mechanisms_count = nmechs;
    if (chosen == SRV_MECH_NONE) {
        srv_info("connection from %s asked for SASL mechanism '%.*s', not enabled: closing",
                 srv_req_peer(req),
                 q->mechanism.len > 0 ? (q->mechanism.len > 64 ? 64 : (int)q->mechanism.len) : 0,
                 q->mechanism.len > 0 ? q->mechanism.p : "");
        resp.error_code = KP_ERR_UNSUPPORTED_SASL_MECHANISM;
        srv_req_respond_then_close(req, &resp, 0);
        return;
    }
    srv_sasl_session *ss = srv_req_sasl(req);
    /* Kafka answers a re-authentication with another mechanism normally,
     * then fails on its token (REAUTH_BAD_MECHANISM). */
    ss->bad_mech = ss->reauth && ss->mech != chosen;
    if (!ss->bad_mech)
        ss->mech = chosen;
    ss->oauth_error_sent = 0;
    if (ss->bad_mech)
        srv_debug(
            "SASL mechanism '%s' requested by %s is not supported for re-authentication of mechanism '%s'",
            srv_sasl_mech_name(chosen), srv_req_peer(req), srv_sasl_mech_name(ss->mech));
    srv_req_set_scram(req, NULL);
    if (!ss->bad_mech && (chosen == SRV_MECH_SCRAM_SHA_256 || chosen == SRV_MECH_SCRAM_SHA_512)) {
        struct srv_scram_server *x =
            srv_scram_server_new(chosen == SRV_MECH_SCRAM_SHA_256 ? SRV_SCRAM_SHA256 : SRV_SCRAM_SHA512);
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

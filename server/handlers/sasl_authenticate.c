/*
 * sasl_authenticate.c — SaslAuthenticate v0-2: the PLAIN token, or one
 * SCRAM message, of a connection that did SaslHandshake v1.
 *
 * Owns the answers (Kafka's codes and messages) and the failure delay.
 * Must not: compare passwords or proofs itself (sasl.c and scram.c do, in
 * constant time).
 */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "errors.h"
#include "logging.h"
#include "meta.h"
#include "sasl.h"
#include "scram.h"
#include "scram_store.h"

static void failed(srv_req *req, kp_sasl_authenticate_response *resp, const char *msg, const char *why)
{
    const srv_broker *b = req->shard->b;
    srv_info("failed authentication with %s on listener %s (%s%s%s)", srv_req_peer(req),
             b->cfg.listeners[req->listener].name, msg, why ? ": " : "", why ? why : "");
    resp->error_code = KP_ERR_SASL_AUTHENTICATION_FAILED;
    resp->error_message = kp_str_c(msg);
    /* connection.failed.authentication.delay.ms: each guess costs the
     * client this long and a new connection (and handshake). */
    srv_req_respond_then_close(req, resp, b->cfg.connection_failed_authentication_delay_ms);
}

/* One SCRAM message: the server's next message goes back in auth_bytes. */
static void scram_step(srv_req *req, struct srv_scram_server *x, const uint8_t *tok, size_t len,
                       kp_sasl_authenticate_response *resp)
{
    const uint8_t *out;
    size_t out_len;
    const char *msg, *why;
    int rc = srv_scram_server_step(x, tok, len, srv_scram_set_lookup, req->shard->meta->scram, &out, &out_len,
                                   &msg, &why);
    if (rc == SRV_SCRAM_FAILED) {
        failed(req, resp, msg, why);
        return;
    }
    uint8_t *copy = kp_arena_alloc(&req->arena, out_len + 1);
    if (!copy) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    memcpy(copy, out, out_len);
    resp->auth_bytes = (kp_bytes){copy, (int32_t)out_len};
    resp->error_code = KP_ERR_NONE;
    if (rc == SRV_SCRAM_DONE) {
        size_t ul;
        const char *user = srv_scram_server_user(x, &ul);
        char principal[300];
        snprintf(principal, sizeof(principal), "User:%.*s", (int)ul, user);
        srv_req_set_auth(req, SRV_AUTH_DONE, principal);
        srv_req_set_scram(req, NULL);
        resp->session_lifetime_ms = 0;
    }
    srv_req_respond(req, resp);
}

void srv_h_sasl_authenticate(srv_req *req)
{
    const kp_sasl_authenticate_request *q = req->kr.body;
    kp_sasl_authenticate_response resp;
    kp_sasl_authenticate_response_init(&resp);
    resp.auth_bytes = (kp_bytes){(const uint8_t *)"", 0};
    int state = srv_req_auth_state(req);
    if (state == SRV_AUTH_WAIT_HANDSHAKE) {
        /* Kafka's authenticator takes this as an illegal SASL state and
         * closes the connection. */
        srv_req_fail_close(req, "SaslAuthenticate before SaslHandshake");
        return;
    }
    if (state != SRV_AUTH_WAIT_AUTHENTICATE) {
        resp.error_code = KP_ERR_ILLEGAL_SASL_STATE;
        resp.error_message = kp_str_c("SaslAuthenticate request received after successful authentication");
        srv_req_respond(req, &resp);
        return;
    }
    const srv_broker *b = req->shard->b;
    char user[256];
    const char *msg = NULL;
    const uint8_t *tok = q->auth_bytes.len > 0 ? q->auth_bytes.p : (const uint8_t *)"";
    size_t len = q->auth_bytes.len > 0 ? (size_t)q->auth_bytes.len : 0;
    struct srv_scram_server *x = srv_req_scram(req);
    if (x) {
        scram_step(req, x, tok, len, &resp);
        return;
    }
    if (srv_sasl_plain_check(b->plain_users[req->listener], tok, len, user, sizeof(user), &msg) != 0) {
        failed(req, &resp, msg, NULL);
        return;
    }
    char principal[300];
    snprintf(principal, sizeof(principal), "User:%s", user);
    srv_req_set_auth(req, SRV_AUTH_DONE, principal);
    resp.error_code = KP_ERR_NONE;
    resp.session_lifetime_ms = 0;
    srv_req_respond(req, &resp);
}

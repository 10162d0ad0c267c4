/*
 * sasl_authenticate.c — SaslAuthenticate v0-2: the PLAIN or OAUTHBEARER
 * token, or one SCRAM message, of a connection that did SaslHandshake v1,
 * first authentication or re-authentication (KIP-368).
 *
 * Owns the answers (Kafka's codes and messages, the OAUTHBEARER error
 * challenge, session_lifetime_ms) and the failure delay. Must not: compare
 * passwords, proofs or tokens itself (sasl.c, scram.c and oauth.c do, the
 * first two in constant time), or compute
 * session lifetimes (conn.c does, for this path and the bare-token one).
 */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "errors.h"
#include "logging.h"
#include "meta.h"
#include "oauth.h"
#include "sasl.h"
#include "scram.h"
#include "scram_store.h"
#include "srv_assert.h"

static void refuse(srv_req *req, kp_sasl_authenticate_response *resp, const char *msg, const char *why)
{
    const srv_broker *b = req->shard->b;
    /* The log names what was wrong (why) after the client's message, when
     * the two differ: Kafka's messages hide the detail from the client. */
    int both = why && msg && strcmp(why, msg) != 0;
    srv_info("failed %s with %s on listener %s (%s%s%s)",
             srv_req_sasl(req)->reauth ? "re-authentication" : "authentication", srv_req_peer(req),
             b->cfg.listeners[req->listener].name, both ? msg : "", both ? ": " : "", why ? why : msg);
    resp->error_code = KP_ERR_SASL_AUTHENTICATION_FAILED;
    resp->error_message = kp_arena_strz(&req->arena, msg);
    /* connection.failed.authentication.delay.ms: each guess costs the
     * client this long and a new connection (and handshake). */
    srv_req_respond_then_close(req, resp, b->cfg.connection_failed_authentication_delay_ms);
}

/* One SCRAM message: the server's next message goes back in auth_bytes;
 * the last one also ends the exchange as any mechanism does. */
static void scram_step(srv_req *req, struct srv_scram_server *x, const uint8_t *tok, size_t len,
                       kp_sasl_authenticate_response *resp)
{
    const uint8_t *out;
    size_t out_len;
    const char *msg, *why;
    int rc = srv_scram_server_step(x, tok, len, srv_scram_set_lookup, req->shard->meta->scram, &out, &out_len,
                                   &msg, &why);
    if (rc == SRV_SCRAM_FAILED) {
        refuse(req, resp, msg, why);
        return;
    }
    /* out lives in the exchange, which ends below: the answer keeps a copy. */
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
        char principal[300], cmsg[300];
        snprintf(principal, sizeof(principal), "User:%.*s", (int)ul, user);
        srv_req_set_scram(req, NULL);
        int64_t life = srv_req_sasl_complete(req, principal, 0, cmsg, sizeof(cmsg));
        if (life < 0) {
            refuse(req, resp, cmsg, cmsg);
            return;
        }
        resp->session_lifetime_ms = life;
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
    srv_sasl_session *ss = srv_req_sasl(req);
    if (ss->bad_mech) {
        /* Kafka closes without an answer here (REAUTH_BAD_MECHANISM). */
        srv_req_fail_close(req, "re-authentication with another SASL mechanism than the session's");
        return;
    }
    char user[256], principal[300], msg[900];
    const char *fail = NULL, *why = NULL;
    int64_t cred_exp = 0;
    const uint8_t *tok = q->auth_bytes.len > 0 ? q->auth_bytes.p : (const uint8_t *)"";
    size_t len = q->auth_bytes.len > 0 ? (size_t)q->auth_bytes.len : 0;
    srv_oauth_result ores;
    struct srv_scram_server *x = srv_req_scram(req);
    if (x) {
        scram_step(req, x, tok, len, &resp);
        return;
    }
    if (ss->mech == SRV_MECH_OAUTHBEARER) {
        SRV_ASSERT(b->oauth[req->listener], "OAUTHBEARER negotiated on listener %d without a validator",
                   req->listener);
        int rc =
            srv_oauth_step(b->oauth[req->listener], &ss->oauth_error_sent, tok, len, srv_now_ms(), &ores);
        if (rc == SRV_OAUTH_CHALLENGE) {
            /* Kafka's OAuthBearerSaslServer: the error is a challenge the
             * client acknowledges with %x01; the failure comes after. */
            srv_info("invalid OAUTHBEARER token from %s on listener %s (%s)", srv_req_peer(req),
                     b->cfg.listeners[req->listener].name, ores.why);
            resp.error_code = KP_ERR_NONE;
            resp.auth_bytes = (kp_bytes){ores.challenge, (int32_t)ores.challenge_len};
            srv_req_respond(req, &resp);
            return;
        }
        if (rc == SRV_OAUTH_CLOSE) {
            srv_info("failed authentication with %s on listener %s (%s)", srv_req_peer(req),
                     b->cfg.listeners[req->listener].name, ores.why);
            srv_req_fail_close(req, "OAUTHBEARER client response with another scheme than Bearer");
            return;
        }
        if (rc == SRV_OAUTH_FAIL) {
            if (!ores.msg) {
                /* A malformed client response: Kafka hides the detail. */
                snprintf(msg, sizeof(msg),
                         "Authentication failed during %s due to invalid credentials with SASL mechanism "
                         "OAUTHBEARER",
                         ss->reauth ? "re-authentication" : "authentication");
                refuse(req, &resp, msg, ores.why);
            } else {
                refuse(req, &resp, ores.msg, ores.why);
            }
            return;
        }
        snprintf(user, sizeof(user), "%s", ores.name);
        cred_exp = ores.exp_ms;
    } else if (srv_sasl_plain_check(b->plain_users[req->listener], tok, len, user, sizeof(user), &fail) !=
               0) {
        refuse(req, &resp, fail, fail);
        return;
    }
    snprintf(principal, sizeof(principal), "User:%s", user);
    int64_t life = srv_req_sasl_complete(req, principal, cred_exp, msg, sizeof(msg));
    if (life < 0) {
        why = msg;
        refuse(req, &resp, msg, why);
        return;
    }
    resp.error_code = KP_ERR_NONE;
    resp.session_lifetime_ms = life; /* v1+; v0 clients are not told */
    srv_req_respond(req, &resp);
}

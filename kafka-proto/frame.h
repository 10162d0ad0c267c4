/*
 * frame.h — whole request and response frames: header + body by API key.
 *
 * Owns: choosing the header version for an API version, decoding a request
 * frame into the generated body type, encoding a response frame with its size
 * prefix. Must not: decide what a broker supports (that is the server's
 * ApiVersions table) or read the socket.
 */
#ifndef KP_FRAME_H
#define KP_FRAME_H

#include "kp_messages.h"

typedef struct kp_request {
    kp_request_header hdr;
    int16_t header_version;
    const kp_api_desc *api; /* NULL when the API key is unknown */
    void *body;             /* the api->request type, in the arena */
} kp_request;

/* Decode one request frame (the bytes after the 4-byte size). On failure the
 * header fields that could be read (key, version, correlation id) are still
 * filled, so the caller can answer with an error:
 *   KP_E_VERSION   unknown API key or version outside the definitions
 *   KP_E_SHORT / KP_E_INVALID / KP_E_NOMEM   malformed frame
 * Trailing bytes after the body are tolerated (Kafka ignores them). */
int kp_request_decode(const uint8_t *buf, size_t len, kp_arena *a, kp_request *req);

/* Encode a request frame with its size prefix (clients, tools, tests). */
int kp_request_encode(kp_writer *w, int16_t key, int16_t version, int32_t correlation_id, kp_str client_id,
                      const void *body);

/* Encode a response frame with its size prefix, header and body. */
int kp_response_encode(kp_writer *w, int16_t key, int16_t version, int32_t correlation_id, const void *body);

#endif

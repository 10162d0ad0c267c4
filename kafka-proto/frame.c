/*
 * frame.c — request/response framing over the generated codecs.
 * Must not: allocate outside the caller's arena and writer.
 */
#include "frame.h"

#include <string.h>

int kp_request_decode(const uint8_t *buf, size_t len, kp_arena *a, kp_request *req)
{
    memset(req, 0, sizeof(*req));
    kp_request_header_init(&req->hdr);
    kp_reader r;
    kp_reader_init(&r, buf, len);
    /* Key, version and correlation id sit at the same place in every header
     * version: read them first so even a refused request can be answered. */
    if (kp_read_i16(&r, &req->hdr.request_api_key) || kp_read_i16(&r, &req->hdr.request_api_version) ||
        kp_read_i32(&r, &req->hdr.correlation_id))
        return r.err;
    req->api = kp_api_lookup(req->hdr.request_api_key);
    int16_t v = req->hdr.request_api_version;
    if (!req->api || v < req->api->min_version || v > req->api->max_version)
        return KP_E_VERSION;
    req->header_version = (int16_t)kp_request_header_version(req->hdr.request_api_key, v);
    kp_reader_init(&r, buf, len);
    int rc = kp_request_header_decode(&r, a, req->header_version, &req->hdr);
    if (rc)
        return rc;
    req->body = kp_arena_alloc(a, req->api->request->size);
    if (!req->body)
        return KP_E_NOMEM;
    return req->api->request->decode(&r, a, v, req->body);
}

static int finish_frame(kp_writer *w, size_t start, size_t start_refs)
{
    if (w->err)
        return w->err;
    size_t n = w->len - start - 4 + (w->ref_bytes - start_refs);
    if (n > INT32_MAX)
        return w->err = KP_E_TOO_LARGE;
    if (!w->counting)
        kp_put_be32(w->buf + start, (uint32_t)n);
    return 0;
}

int kp_request_encode(kp_writer *w, int16_t key, int16_t version, int32_t correlation_id, kp_str client_id,
                      const void *body)
{
    const kp_api_desc *api = kp_api_lookup(key);
    if (!api)
        return w->err = KP_E_VERSION;
    size_t start = w->len, start_refs = w->ref_bytes;
    kp_write_i32(w, 0);
    kp_request_header h;
    kp_request_header_init(&h);
    h.request_api_key = key;
    h.request_api_version = version;
    h.correlation_id = correlation_id;
    h.client_id = client_id;
    int hv = kp_request_header_version(key, version);
    if (kp_request_header_encode(w, (int16_t)hv, &h) || api->request->encode(w, version, body))
        return w->err;
    return finish_frame(w, start, start_refs);
}

int kp_response_encode(kp_writer *w, int16_t key, int16_t version, int32_t correlation_id, const void *body)
{
    const kp_api_desc *api = kp_api_lookup(key);
    if (!api)
        return w->err = KP_E_VERSION;
    size_t start = w->len, start_refs = w->ref_bytes;
    kp_write_i32(w, 0);
    kp_response_header h;
    kp_response_header_init(&h);
    h.correlation_id = correlation_id;
    int hv = kp_response_header_version(key, version);
    if (kp_response_header_encode(w, (int16_t)hv, &h) || api->response->encode(w, version, body))
        return w->err;
    return finish_frame(w, start, start_refs);
}

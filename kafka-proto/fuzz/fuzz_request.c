/*
 * fuzz_request.c — libFuzzer target: any bytes as a request frame.
 *
 * Beyond "no crash": whatever decodes must re-encode, and decoding that
 * encoding must give the same bytes again (a fixed point), so asymmetries
 * between the generated decoder and encoder are found too.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kp_arena a;
    kp_arena_init(&a, 16u << 20);
    kp_request req;
    if (kp_request_decode(data, size, &a, &req) == 0) {
        int16_t v = req.hdr.request_api_version;
        kp_writer w1, w2;
        kp_writer_init(&w1, 0);
        kp_writer_init(&w2, 0);
        if (req.api->request->encode(&w1, v, req.body) != 0)
            abort();
        void *again = kp_arena_alloc(&a, req.api->request->size);
        kp_reader r;
        kp_reader_init(&r, w1.buf, w1.len);
        if (!again || req.api->request->decode(&r, &a, v, again) != 0 || kp_reader_left(&r) != 0)
            abort();
        if (req.api->request->encode(&w2, v, again) != 0 || w1.len != w2.len ||
            memcmp(w1.buf, w2.buf, w1.len) != 0)
            abort();
        kp_writer_free(&w1);
        kp_writer_free(&w2);
    }
    kp_arena_reset(&a);
    return 0;
}

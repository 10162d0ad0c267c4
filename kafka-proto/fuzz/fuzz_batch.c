/*
 * fuzz_batch.c — libFuzzer target: any bytes as the records field of a
 * Produce request. Walks batches (with and without CRC checks, so the fuzzer
 * reaches the record parser), decompresses under a 1 MiB cap, and walks
 * every record and header.
 */
#include <stdlib.h>

#include "batch.h"
#include "codec.h"

static void walk_records(const kp_batch *b, const uint8_t *recs, size_t n)
{
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, &b->h, recs, n);
    while (kp_record_iter_next(&it, &rec) == 1) {
        size_t pos = 0;
        kp_record_header hdr;
        while (kp_record_header_next(&rec, &pos, &hdr) == 1)
            ;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int verify = 0; verify <= 1; verify++) {
        kp_batch_iter it;
        kp_batch b;
        kp_batch_iter_init(&it, data, size, verify);
        while (kp_batch_iter_next(&it, &b) == 1) {
            int codec = b.h.attributes & KP_ATTR_CODEC_MASK;
            if (codec == KP_CODEC_NONE) {
                walk_records(&b, b.records, b.records_size);
            } else {
                kp_writer out;
                kp_writer_init(&out, 0);
                if (kp_decompress(codec, b.records, b.records_size, 1u << 20, &out) == 0)
                    walk_records(&b, out.buf, out.len);
                kp_writer_free(&out);
            }
        }
    }
    return 0;
}

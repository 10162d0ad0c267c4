/*
 * fuzz_legacy.c — libFuzzer target: any bytes as a Produce v0-2 records
 * field (magic 0/1 message set) converted to a magic-2 batch, and that
 * batch (when one comes out) converted back down for old fetchers. Beyond
 * "no crash": a converted batch must validate.
 *
 * The first byte is a mode: with bit 0 set, every top-level message's
 * CRC-32 is recomputed first, so the fuzzer gets past the checksum into the
 * parser and the compressed-wrapper path instead of stopping at the CRC.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "legacy.h"

static void fix_crcs(uint8_t *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 16) {
        uint32_t size = kp_be32(p + off + 8);
        if (size < 4 || size > n - off - 12)
            return;
        kp_put_be32(p + off + 12, (uint32_t)crc32(0, p + off + 16, (uInt)(size - 4)));
        off += 12 + size;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 1)
        fix_crcs(copy, size - 1);
    kp_writer up, down;
    kp_writer_init(&up, 0);
    kp_writer_init(&down, 0);
    if (kp_legacy_to_batch(copy, size - 1, 1u << 20, &up) == 0) {
        kp_batch b;
        if (kp_batch_validate(up.buf, up.len, &b) != 0)
            abort();
        if (kp_batches_to_legacy(up.buf, up.len, data[0] & 2, 1u << 20, &down) != 0)
            abort();
    }
    kp_writer_free(&up);
    kp_writer_free(&down);
    free(copy);
    return 0;
}

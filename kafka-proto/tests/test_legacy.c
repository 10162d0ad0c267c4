/*
 * test_legacy.c — magic 0/1 message sets: down-conversion of batches keeps
 * offsets, keys, values and timestamps; up-conversion (plain and compressed
 * wrappers) gives the same records back as one magic-2 batch; CRC-32
 * mismatches and malformed sizes are refused.
 */
#include "kb_test.h"
#include <string.h>
#include <zlib.h>

#include "codec.h"
#include "legacy.h"

static kp_bytes bs(const char *s)
{
    return s ? (kp_bytes){(const uint8_t *)s, (int32_t)strlen(s)} : KP_BYTES_NULL;
}

static const char *keys[] = {"k0", NULL, "k2", "k3"};
static const char *vals[] = {"v0", "v1", NULL, "a longer value that compresses well well well well well"};

/* A magic-2 batch of the four records above, at base offset 100. */
static void build_batch(kp_writer *out, int codec)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 100, codec);
    for (int i = 0; i < 4; i++) {
        kp_record_header h = {kp_str_c("h"), bs("x")};
        CU_ASSERT_EQUAL(kp_batch_builder_add(&bb, 1700000000000 + i, bs(keys[i]), bs(vals[i]), &h, 1), 0);
    }
    CU_ASSERT_EQUAL(kp_batch_builder_finish(&bb, out), 0);
    kp_batch_builder_free(&bb);
}

static int bytes_is(kp_bytes b, const char *s)
{
    if (!s)
        return b.len < 0;
    return b.len == (int32_t)strlen(s) && memcmp(b.p, s, (size_t)b.len) == 0;
}

/* Checks that `batch` holds the four records (offset deltas 0..3). */
static void check_batch(const uint8_t *p, size_t n, int check_ts)
{
    kp_batch b;
    CU_ASSERT_EQUAL_FATAL(kp_batch_validate(p, n, &b), 0);
    kp_writer plain;
    kp_writer_init(&plain, 0);
    const uint8_t *recs = b.records;
    size_t rs = b.records_size;
    int codec = b.h.attributes & KP_ATTR_CODEC_MASK;
    if (codec) {
        CU_ASSERT_EQUAL_FATAL(kp_decompress(codec, b.records, b.records_size, 1 << 20, &plain), 0);
        recs = plain.buf;
        rs = plain.len;
    }
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, &b.h, recs, rs);
    int i = 0;
    while (kp_record_iter_next(&it, &rec) == 1) {
        CU_ASSERT_FATAL(i < 4);
        CU_ASSERT_TRUE(bytes_is(rec.key, keys[i]));
        CU_ASSERT_TRUE(bytes_is(rec.value, vals[i]));
        if (check_ts)
            CU_ASSERT_EQUAL(rec.timestamp, 1700000000000 + i);
        i++;
    }
    CU_ASSERT_EQUAL(i, 4);
    kp_writer_free(&plain);
}

static void test_down_and_up(void)
{
    for (int codec = 0; codec <= 4; codec++) {
        kp_writer batch, legacy, back;
        kp_writer_init(&batch, 0);
        kp_writer_init(&legacy, 0);
        kp_writer_init(&back, 0);
        build_batch(&batch, codec);
        CU_ASSERT_EQUAL_FATAL(kp_batches_to_legacy(batch.buf, batch.len, 0, 1 << 20, &legacy), 0);
        CU_ASSERT_TRUE(kp_records_are_legacy(legacy.buf, legacy.len));
        CU_ASSERT_FALSE(kp_records_are_legacy(batch.buf, batch.len));
        /* Offsets survive the trip down. */
        CU_ASSERT_EQUAL((int64_t)kp_be64(legacy.buf), 100);
        CU_ASSERT_EQUAL(legacy.buf[16], 1);
        CU_ASSERT_EQUAL_FATAL(kp_legacy_to_batch(legacy.buf, legacy.len, 1 << 20, &back), 0);
        check_batch(back.buf, back.len, 1);
        kp_writer_free(&batch);
        kp_writer_free(&legacy);
        kp_writer_free(&back);
    }
}

static void test_magic0(void)
{
    kp_writer batch, legacy, back;
    kp_writer_init(&batch, 0);
    kp_writer_init(&legacy, 0);
    kp_writer_init(&back, 0);
    build_batch(&batch, 0);
    CU_ASSERT_EQUAL_FATAL(kp_batches_to_legacy(batch.buf, batch.len, 1, 1 << 20, &legacy), 0);
    CU_ASSERT_EQUAL(legacy.buf[16], 0);
    CU_ASSERT_EQUAL_FATAL(kp_legacy_to_batch(legacy.buf, legacy.len, 1 << 20, &back), 0);
    check_batch(back.buf, back.len, 0); /* magic 0 has no timestamps */
    kp_writer_free(&batch);
    kp_writer_free(&legacy);
    kp_writer_free(&back);
}

/* A gzip wrapper message around a magic-1 set, as old producers send it. */
static void test_compressed_wrapper(void)
{
    kp_writer batch, inner, z, wrapped, back;
    kp_writer_init(&batch, 0);
    kp_writer_init(&inner, 0);
    kp_writer_init(&z, 0);
    kp_writer_init(&wrapped, 0);
    kp_writer_init(&back, 0);
    build_batch(&batch, 0);
    CU_ASSERT_EQUAL_FATAL(kp_batches_to_legacy(batch.buf, batch.len, 0, 1 << 20, &inner), 0);
    CU_ASSERT_EQUAL_FATAL(kp_compress(KP_CODEC_GZIP, inner.buf, inner.len, &z), 0);
    size_t size = 4 + 1 + 1 + 8 + 4 + 4 + z.len;
    kp_write_i64(&wrapped, 3);
    kp_write_i32(&wrapped, (int32_t)size);
    kp_write_u32(&wrapped, 0);
    kp_write_i8(&wrapped, 1);
    kp_write_i8(&wrapped, KP_CODEC_GZIP);
    kp_write_i64(&wrapped, 1700000000000);
    kp_write_bytes(&wrapped, KP_BYTES_NULL);
    kp_write_bytes(&wrapped, (kp_bytes){z.buf, (int32_t)z.len});
    kp_put_be32(wrapped.buf + 12, (uint32_t)crc32(0, wrapped.buf + 16, (uInt)(size - 4)));
    CU_ASSERT_EQUAL_FATAL(kp_legacy_to_batch(wrapped.buf, wrapped.len, 1 << 20, &back), 0);
    kp_batch b;
    CU_ASSERT_EQUAL_FATAL(kp_batch_validate(back.buf, back.len, &b), 0);
    CU_ASSERT_EQUAL(b.h.attributes & KP_ATTR_CODEC_MASK, KP_CODEC_GZIP); /* the codec is kept */
    check_batch(back.buf, back.len, 1);
    /* The inflated size is capped. */
    back.len = 0;
    CU_ASSERT_EQUAL(kp_legacy_to_batch(wrapped.buf, wrapped.len, 16, &back), KP_E_TOO_LARGE);
    kp_writer_free(&batch);
    kp_writer_free(&inner);
    kp_writer_free(&z);
    kp_writer_free(&wrapped);
    kp_writer_free(&back);
}

static void test_hostile(void)
{
    kp_writer batch, legacy, back;
    kp_writer_init(&batch, 0);
    kp_writer_init(&legacy, 0);
    kp_writer_init(&back, 0);
    build_batch(&batch, 0);
    CU_ASSERT_EQUAL_FATAL(kp_batches_to_legacy(batch.buf, batch.len, 0, 1 << 20, &legacy), 0);
    /* Any flipped byte after the crc of the first message is caught. */
    for (size_t i = 16; i < 30; i++) {
        legacy.buf[i] ^= 0x10;
        back.len = 0;
        CU_ASSERT_NOT_EQUAL(kp_legacy_to_batch(legacy.buf, legacy.len, 1 << 20, &back), 0);
        legacy.buf[i] ^= 0x10;
    }
    /* Sizes that lie. */
    uint8_t saved[4];
    memcpy(saved, legacy.buf + 8, 4);
    kp_put_be32(legacy.buf + 8, 0x7fffffff);
    CU_ASSERT_EQUAL(kp_legacy_to_batch(legacy.buf, legacy.len, 1 << 20, &back), KP_E_INVALID);
    kp_put_be32(legacy.buf + 8, 3);
    CU_ASSERT_EQUAL(kp_legacy_to_batch(legacy.buf, legacy.len, 1 << 20, &back), KP_E_INVALID);
    memcpy(legacy.buf + 8, saved, 4);
    /* Every prefix: an error or (cut between messages) fewer records, never a crash. */
    for (size_t n = 0; n < legacy.len; n++) {
        back.len = 0;
        uint8_t copy[4096];
        memcpy(copy, legacy.buf, n);
        int rc = kp_legacy_to_batch(copy, n, 1 << 20, &back);
        CU_ASSERT(rc != 0 || n >= 12);
    }
    CU_ASSERT_EQUAL(kp_legacy_to_batch(NULL, 0, 1 << 20, &back), KP_E_INVALID);
    kp_writer_free(&batch);
    kp_writer_free(&legacy);
    kp_writer_free(&back);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("legacy", NULL, NULL);
    CU_add_test(s, "batch -> magic 1 -> batch, each codec", test_down_and_up);
    CU_add_test(s, "magic 0", test_magic0);
    CU_add_test(s, "compressed wrapper", test_compressed_wrapper);
    CU_add_test(s, "hostile input", test_hostile);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

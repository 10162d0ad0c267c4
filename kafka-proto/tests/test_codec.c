/*
 * test_codec.c — the compression codecs: round trips, the framings other
 * clients write (xerial snappy, concatenated members and frames), the
 * decompression-bomb cap, and corrupt or truncated input.
 *
 * Owns: only tests of codec.c. Must not: need network or files; the memory
 * check relies on /proc/self/clear_refs and is skipped where it is missing.
 */
#include "codec.h"

#include "kb_test.h"
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static const int all_codecs[] = {KP_CODEC_NONE, KP_CODEC_GZIP, KP_CODEC_SNAPPY, KP_CODEC_LZ4, KP_CODEC_ZSTD};
static const int real_codecs[] = {KP_CODEC_GZIP, KP_CODEC_SNAPPY, KP_CODEC_LZ4, KP_CODEC_ZSTD};
#define NCODECS(a) (sizeof(a) / sizeof((a)[0]))

#define MIB (1024u * 1024u)

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Text-like data: compressible, but not trivially. */
static uint8_t *make_text(size_t n)
{
    static const char *words[] = {"kafka",  "broker",  "partition", "offset",   "record", "batch",
                                  "leader", "replica", "consumer",  "producer", "topic",  "\n"};
    uint8_t *p = malloc(n ? n : 1);
    size_t i = 0;
    while (i < n) {
        const char *w = words[rng() % 12];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (uint8_t)w[k];
        if (i < n)
            p[i++] = ' ';
    }
    return p;
}

static uint8_t *make_random(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng();
    return p;
}

static void round_trip(int codec, const uint8_t *in, size_t n)
{
    kp_writer c, d;
    kp_writer_init(&c, 0);
    kp_writer_init(&d, 0);
    CU_ASSERT_EQUAL_FATAL(kp_compress(codec, in, n, &c), KP_OK);

    /* Decompression appends: what was in the writer stays. */
    kp_write_raw(&d, "XYZ", 3);
    CU_ASSERT_EQUAL(kp_decompress(codec, c.buf, c.len, n, &d), KP_OK);
    CU_ASSERT_EQUAL(d.len, n + 3);
    if (d.len == n + 3) {
        CU_ASSERT(memcmp(d.buf, "XYZ", 3) == 0);
        CU_ASSERT(n == 0 || memcmp(d.buf + 3, in, n) == 0);
    }
    /* One byte short of the cap is a bomb, and leaves the writer as it was. */
    if (n > 0) {
        CU_ASSERT_EQUAL(kp_decompress(codec, c.buf, c.len, n - 1, &d), KP_E_TOO_LARGE);
        CU_ASSERT_EQUAL(d.len, n + 3);
    }
    kp_writer_free(&c);
    kp_writer_free(&d);
}

static void test_round_trip(void)
{
    static const size_t sizes[] = {0, 1, 5, 100, 4096, 65537, MIB};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint8_t *text = make_text(sizes[s]);
        uint8_t *noise = make_random(sizes[s]);
        for (size_t c = 0; c < NCODECS(all_codecs); c++) {
            round_trip(all_codecs[c], text, sizes[s]);
            round_trip(all_codecs[c], noise, sizes[s]);
        }
        free(text);
        free(noise);
    }
}

static void test_compress_appends(void)
{
    uint8_t *text = make_text(10000);
    for (size_t c = 0; c < NCODECS(all_codecs); c++) {
        kp_writer w, d;
        kp_writer_init(&w, 0);
        kp_writer_init(&d, 0);
        kp_write_raw(&w, "head", 4);
        CU_ASSERT_EQUAL(kp_compress(all_codecs[c], text, 10000, &w), KP_OK);
        CU_ASSERT(memcmp(w.buf, "head", 4) == 0);
        CU_ASSERT_EQUAL(kp_decompress(all_codecs[c], w.buf + 4, w.len - 4, 10000, &d), KP_OK);
        CU_ASSERT(d.len == 10000 && memcmp(d.buf, text, 10000) == 0);
        kp_writer_free(&w);
        kp_writer_free(&d);
    }
    free(text);
}

static void test_lz4_frame_is_kafka_compatible(void)
{
    /* Java's KafkaLZ4BlockInputStream wants: version 01, independent
     * blocks, no block checksum, no content size, 64 KiB blocks. */
    uint8_t *text = make_text(200000);
    kp_writer w;
    kp_writer_init(&w, 0);
    CU_ASSERT_EQUAL_FATAL(kp_compress(KP_CODEC_LZ4, text, 200000, &w), KP_OK);
    CU_ASSERT_FATAL(w.len > 7);
    CU_ASSERT_EQUAL(kp_be32(w.buf), 0x04224D18u); /* magic 0x184D2204, little-endian */
    uint8_t flg = w.buf[4], bd = w.buf[5];
    CU_ASSERT_EQUAL(flg >> 6, 1);      /* version */
    CU_ASSERT(flg & 0x20);             /* block independence */
    CU_ASSERT_FALSE(flg & 0x10);       /* block checksum */
    CU_ASSERT_FALSE(flg & 0x08);       /* content size */
    CU_ASSERT_EQUAL((bd >> 4) & 7, 4); /* 64 KiB */
    kp_writer_free(&w);
    free(text);
}

/* ---- xerial snappy ---------------------------------------------------- */

static void put_xerial_header(kp_writer *w)
{
    static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    kp_write_raw(w, magic, 8);
    kp_write_i32(w, 1); /* version */
    kp_write_i32(w, 1); /* compatible version */
}

/* No CUnit assertions here: the bomb suite's init builds frames too, and
 * CUnit aborts on an assertion outside a test. Errors latch in w->err. */
static void put_xerial_block(kp_writer *w, const uint8_t *in, size_t n)
{
    size_t cap = snappy_max_compressed_length(n);
    char *tmp = malloc(cap);
    size_t clen = cap;
    if (!tmp || snappy_compress((const char *)in, n, tmp, &clen) != SNAPPY_OK) {
        w->err = KP_E_CODEC;
    } else {
        kp_write_i32(w, (int32_t)clen);
        kp_write_raw(w, tmp, clen);
    }
    free(tmp);
}

/* Frames input the way xerial's SnappyOutputStream does (32 KiB blocks). */
static int make_xerial(kp_writer *w, const uint8_t *in, size_t n, size_t block)
{
    put_xerial_header(w);
    for (size_t off = 0; off < n; off += block)
        put_xerial_block(w, in + off, n - off < block ? n - off : block);
    return w->err;
}

static void test_xerial_snappy(void)
{
    size_t n = MIB + 12345;
    uint8_t *text = make_text(n);
    kp_writer x, d;
    kp_writer_init(&x, 0);
    kp_writer_init(&d, 0);
    CU_ASSERT_EQUAL_FATAL(make_xerial(&x, text, n, 32768), KP_OK);
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, x.buf, x.len, n, &d), KP_OK);
    CU_ASSERT(d.len == n && memcmp(d.buf, text, n) == 0);

    d.len = 0;
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, x.buf, x.len, n - 1, &d), KP_E_TOO_LARGE);
    CU_ASSERT_EQUAL(d.len, 0);

    /* A block cut short, a length past the end, a zero and a negative length,
     * and a dangling partial length field. */
    d.len = 0;
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, x.buf, x.len - 1, n, &d), KP_E_CODEC);
    CU_ASSERT_EQUAL(d.len, 0);
    uint8_t *bad = malloc(x.len + 2);
    memcpy(bad, x.buf, x.len);
    kp_put_be32(bad + 16, 0x7fffffff);
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, bad, x.len, n, &d), KP_E_CODEC);
    kp_put_be32(bad + 16, 0);
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, bad, x.len, n, &d), KP_E_CODEC);
    kp_put_be32(bad + 16, 0xffffffff);
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, bad, x.len, n, &d), KP_E_CODEC);
    memcpy(bad, x.buf, x.len);
    bad[x.len] = 0;
    bad[x.len + 1] = 0;
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, bad, x.len + 2, n, &d), KP_E_CODEC);
    CU_ASSERT_EQUAL(d.len, 0);
    free(bad);

    /* A header with no blocks is an empty payload. */
    kp_writer e;
    kp_writer_init(&e, 0);
    put_xerial_header(&e);
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, e.buf, e.len, 0, &d), KP_OK);
    CU_ASSERT_EQUAL(d.len, 0);

    /* A hand-assembled frame with literal-only blocks, byte for byte. */
    static const uint8_t frame[] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
                                    /* block 1: varint len 5, literal tag (len-1)<<2, "hello" */
                                    0, 0, 0, 7, 0x05, 0x10, 'h', 'e', 'l', 'l', 'o',
                                    /* block 2: " world" */
                                    0, 0, 0, 8, 0x06, 0x14, ' ', 'w', 'o', 'r', 'l', 'd'};
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_SNAPPY, frame, sizeof(frame), 64, &d), KP_OK);
    CU_ASSERT(d.len == 11 && memcmp(d.buf, "hello world", 11) == 0);

    kp_writer_free(&e);
    kp_writer_free(&x);
    kp_writer_free(&d);
    free(text);
}

/* ---- concatenation ---------------------------------------------------- */

static void test_concatenated_streams(void)
{
    /* Several gzip members, lz4 frames or zstd frames decode to the
     * concatenation of their contents, as their reference tools do. */
    static const int codecs[] = {KP_CODEC_GZIP, KP_CODEC_LZ4, KP_CODEC_ZSTD};
    uint8_t *a = make_text(3000), *b = make_random(5000);
    for (size_t c = 0; c < 3; c++) {
        kp_writer w, d;
        kp_writer_init(&w, 0);
        kp_writer_init(&d, 0);
        CU_ASSERT_EQUAL(kp_compress(codecs[c], a, 3000, &w), KP_OK);
        CU_ASSERT_EQUAL(kp_compress(codecs[c], b, 5000, &w), KP_OK);
        CU_ASSERT_EQUAL(kp_decompress(codecs[c], w.buf, w.len, 8000, &d), KP_OK);
        CU_ASSERT(d.len == 8000 && memcmp(d.buf, a, 3000) == 0 && memcmp(d.buf + 3000, b, 5000) == 0);
        d.len = 0;
        CU_ASSERT_EQUAL(kp_decompress(codecs[c], w.buf, w.len, 7999, &d), KP_E_TOO_LARGE);
        kp_writer_free(&w);
        kp_writer_free(&d);
    }
    free(a);
    free(b);
}

/* ---- decompression bombs ---------------------------------------------- */

#define BOMB_SIZE (64u * MIB)
#define BOMB_CAP  MIB

static kp_writer bombs[5];         /* by codec id; NONE unused */
static kp_writer zstd_stream_bomb; /* no content size, small window */
static kp_writer zstd_window_bomb; /* single segment: window = 64 MiB */
static kp_writer xerial_bomb;

static int bomb_init(void)
{
    uint8_t *zeros = calloc(1, BOMB_SIZE);
    if (!zeros)
        return 1;
    for (size_t c = 0; c < NCODECS(real_codecs); c++) {
        kp_writer_init(&bombs[real_codecs[c]], 0);
        if (kp_compress(real_codecs[c], zeros, BOMB_SIZE, &bombs[real_codecs[c]]))
            return 1;
    }
    /* Streaming zstd, as Java's zstd-jni writes it: the frame declares no
     * size, so only the cap can stop it. */
    kp_writer_init(&zstd_stream_bomb, ZSTD_compressBound(BOMB_SIZE));
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_inBuffer zin = {zeros, BOMB_SIZE, 0};
    ZSTD_outBuffer zout = {zstd_stream_bomb.buf, zstd_stream_bomb.cap, 0};
    size_t r = ZSTD_compressStream2(cc, &zout, &zin, ZSTD_e_end);
    ZSTD_freeCCtx(cc);
    if (r != 0)
        return 1;
    zstd_stream_bomb.len = zout.pos;

    /* A frame whose window is its whole 64 MiB content: a streaming decoder
     * would have to allocate all of it up front. */
    kp_writer_init(&zstd_window_bomb, ZSTD_compressBound(BOMB_SIZE));
    cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 27);
    r = ZSTD_compress2(cc, zstd_window_bomb.buf, zstd_window_bomb.cap, zeros, BOMB_SIZE);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r))
        return 1;
    zstd_window_bomb.len = r;

    kp_writer_init(&xerial_bomb, 0);
    int rc = make_xerial(&xerial_bomb, zeros, BOMB_SIZE, 32768);
    free(zeros);
    return rc ? 1 : 0;
}

static int bomb_cleanup(void)
{
    for (size_t c = 0; c < 5; c++)
        kp_writer_free(&bombs[c]);
    kp_writer_free(&zstd_stream_bomb);
    kp_writer_free(&zstd_window_bomb);
    kp_writer_free(&xerial_bomb);
    return 0;
}

static long proc_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

/* Resets the peak-RSS counter; 0 when the kernel does not allow it. */
static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return 0;
    int ok = fputs("5", f) >= 0;
    ok &= fclose(f) == 0;
    return ok && proc_status_kb("VmHWM") >= 0;
}

static void expect_bomb_stopped(const char *what, int codec, const kp_writer *bomb)
{
    kp_writer d;
    kp_writer_init(&d, 0);
    int measured = reset_peak_rss();
    long base = proc_status_kb("VmRSS");
    int rc = kp_decompress(codec, bomb->buf, bomb->len, BOMB_CAP, &d);
    long peak = proc_status_kb("VmHWM");
    CU_ASSERT_EQUAL(rc, KP_E_TOO_LARGE);
    CU_ASSERT_EQUAL(d.len, 0);
    /* The writer may double past the cap once, never toward 64 MiB. */
    CU_ASSERT(d.cap <= 2 * BOMB_CAP + 64 * 1024);
    if (measured && base >= 0 && peak >= 0) {
        printf("\n  %-14s %zu bytes in, writer cap %zu KiB, peak RSS +%ld KiB", what, bomb->len, d.cap / 1024,
               peak - base);
        CU_ASSERT(peak - base < 16 * 1024);
    }
    kp_writer_free(&d);
}

static void test_bomb_gzip(void)
{
    expect_bomb_stopped("gzip", KP_CODEC_GZIP, &bombs[KP_CODEC_GZIP]);
}
static void test_bomb_snappy(void)
{
    expect_bomb_stopped("snappy raw", KP_CODEC_SNAPPY, &bombs[KP_CODEC_SNAPPY]);
}
static void test_bomb_xerial(void)
{
    expect_bomb_stopped("snappy xerial", KP_CODEC_SNAPPY, &xerial_bomb);
}
static void test_bomb_lz4(void)
{
    expect_bomb_stopped("lz4", KP_CODEC_LZ4, &bombs[KP_CODEC_LZ4]);
}
static void test_bomb_zstd(void)
{
    expect_bomb_stopped("zstd sized", KP_CODEC_ZSTD, &bombs[KP_CODEC_ZSTD]);
}
static void test_bomb_zstd_window(void)
{
    expect_bomb_stopped("zstd window", KP_CODEC_ZSTD, &zstd_window_bomb);
    /* Refused at the frame header: no output beyond the first 64 KiB step. */
    kp_writer d;
    kp_writer_init(&d, 0);
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_ZSTD, zstd_window_bomb.buf, zstd_window_bomb.len, BOMB_CAP, &d),
                    KP_E_TOO_LARGE);
    CU_ASSERT(d.len == 0 && d.cap <= 64 * 1024);
    /* With a cap that allows it, the same frame is fine. */
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_ZSTD, zstd_window_bomb.buf, zstd_window_bomb.len, BOMB_SIZE, &d),
                    KP_OK);
    CU_ASSERT_EQUAL(d.len, BOMB_SIZE);
    kp_writer_free(&d);
}
static void test_bomb_zstd_stream(void)
{
    expect_bomb_stopped("zstd streamed", KP_CODEC_ZSTD, &zstd_stream_bomb);
}

static void test_bomb_within_cap_is_fine(void)
{
    /* The same streams decode when the cap allows them. */
    kp_writer d;
    kp_writer_init(&d, 0);
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_ZSTD, zstd_stream_bomb.buf, zstd_stream_bomb.len, BOMB_SIZE, &d),
                    KP_OK);
    CU_ASSERT_EQUAL(d.len, BOMB_SIZE);
    d.len = 0;
    CU_ASSERT_EQUAL(
        kp_decompress(KP_CODEC_GZIP, bombs[KP_CODEC_GZIP].buf, bombs[KP_CODEC_GZIP].len, BOMB_SIZE, &d),
        KP_OK);
    CU_ASSERT_EQUAL(d.len, BOMB_SIZE);
    kp_writer_free(&d);
}

/* ---- corrupt input ---------------------------------------------------- */

static void test_garbage(void)
{
    static const char garbage[] = "this is definitely not a compressed stream, whatever it claims";
    kp_writer d;
    kp_writer_init(&d, 0);
    for (size_t c = 0; c < NCODECS(real_codecs); c++) {
        CU_ASSERT_EQUAL(kp_decompress(real_codecs[c], (const uint8_t *)garbage, sizeof(garbage), MIB, &d),
                        KP_E_CODEC);
        CU_ASSERT_EQUAL(kp_decompress(real_codecs[c], (const uint8_t *)garbage, 0, MIB, &d), KP_E_CODEC);
        CU_ASSERT_EQUAL(d.len, 0);
    }
    /* Random input must fail cleanly, whichever error it earns. */
    for (int i = 0; i < 2000; i++) {
        size_t n = rng() % 300;
        uint8_t *junk = make_random(n);
        for (size_t c = 0; c < NCODECS(real_codecs); c++) {
            int rc = kp_decompress(real_codecs[c], junk, n, 64 * 1024, &d);
            CU_ASSERT(rc == KP_E_CODEC || rc == KP_E_TOO_LARGE);
            CU_ASSERT_EQUAL(d.len, 0);
        }
        free(junk);
    }
    kp_writer_free(&d);
}

static void test_truncated_and_flipped(void)
{
    size_t n = 20000;
    uint8_t *text = make_text(n);
    kp_writer d;
    kp_writer_init(&d, 0);
    for (size_t c = 0; c < NCODECS(real_codecs); c++) {
        kp_writer w;
        kp_writer_init(&w, 0);
        CU_ASSERT_EQUAL_FATAL(kp_compress(real_codecs[c], text, n, &w), KP_OK);
        /* No proper prefix of a single stream is a whole stream. */
        for (size_t cut = 0; cut < w.len; cut++) {
            int rc = kp_decompress(real_codecs[c], w.buf, cut, n, &d);
            CU_ASSERT_EQUAL(rc, KP_E_CODEC);
            CU_ASSERT_EQUAL(d.len, 0);
            d.len = 0;
        }
        /* Flipped bytes: any outcome but a crash, an overrun of the cap or
         * partial output left behind on failure. */
        uint8_t *copy = malloc(w.len);
        for (int i = 0; i < 300; i++) {
            memcpy(copy, w.buf, w.len);
            int flips = 1 + (int)(rng() % 4);
            for (int k = 0; k < flips; k++)
                copy[rng() % w.len] ^= (uint8_t)(1 + rng() % 255);
            int rc = kp_decompress(real_codecs[c], copy, w.len, n, &d);
            CU_ASSERT(rc == KP_OK || rc == KP_E_CODEC || rc == KP_E_TOO_LARGE);
            CU_ASSERT(rc == KP_OK ? d.len <= n : d.len == 0);
            d.len = 0;
        }
        free(copy);
        kp_writer_free(&w);
    }
    kp_writer_free(&d);
    free(text);
}

static void test_bad_arguments(void)
{
    uint8_t small[16];
    kp_writer w, d;
    kp_writer_init(&w, 0);
    kp_writer_init(&d, 0);
    CU_ASSERT_EQUAL(kp_compress(5, small, sizeof(small), &w), KP_E_UNSUPPORTED);
    CU_ASSERT_EQUAL(kp_compress(-1, small, sizeof(small), &w), KP_E_UNSUPPORTED);
    CU_ASSERT_EQUAL(kp_decompress(7, small, sizeof(small), 100, &d), KP_E_UNSUPPORTED);
    CU_ASSERT_EQUAL(kp_decompress(KP_CODEC_NONE, small, sizeof(small), 15, &d), KP_E_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(kp_codec_name(KP_CODEC_ZSTD), "zstd");
    CU_ASSERT_STRING_EQUAL(kp_codec_name(9), "unknown");

    /* A fixed writer that is too small fails without a partial write. */
    uint8_t *text = make_text(5000);
    for (size_t c = 0; c < NCODECS(real_codecs); c++) {
        uint8_t fixed[64];
        kp_writer f;
        kp_writer_init_fixed(&f, fixed, sizeof(fixed));
        kp_write_raw(&f, "ab", 2);
        CU_ASSERT_EQUAL(kp_compress(real_codecs[c], text, 5000, &f), KP_E_NOMEM);
        CU_ASSERT_EQUAL(f.len, 2);

        kp_writer_init(&w, 0);
        CU_ASSERT_EQUAL(kp_compress(real_codecs[c], text, 5000, &w), KP_OK);
        kp_writer_init_fixed(&f, fixed, sizeof(fixed));
        CU_ASSERT_EQUAL(kp_decompress(real_codecs[c], w.buf, w.len, 5000, &f), KP_E_NOMEM);
        CU_ASSERT_EQUAL(f.len, 0);
        kp_writer_free(&w);
    }
    free(text);
    kp_writer_free(&d);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("codec", NULL, NULL);
    CU_pSuite b = CU_add_suite("decompression bombs", bomb_init, bomb_cleanup);
    CU_add_test(s, "round trip", test_round_trip);
    CU_add_test(s, "compress appends", test_compress_appends);
    CU_add_test(s, "lz4 frame flags", test_lz4_frame_is_kafka_compatible);
    CU_add_test(s, "xerial snappy", test_xerial_snappy);
    CU_add_test(s, "concatenated streams", test_concatenated_streams);
    CU_add_test(s, "garbage", test_garbage);
    CU_add_test(s, "truncated and flipped", test_truncated_and_flipped);
    CU_add_test(s, "bad arguments", test_bad_arguments);
    CU_add_test(b, "gzip", test_bomb_gzip);
    CU_add_test(b, "snappy raw", test_bomb_snappy);
    CU_add_test(b, "snappy xerial", test_bomb_xerial);
    CU_add_test(b, "lz4", test_bomb_lz4);
    CU_add_test(b, "zstd with content size", test_bomb_zstd);
    CU_add_test(b, "zstd streamed", test_bomb_zstd_stream);
    CU_add_test(b, "zstd huge window", test_bomb_zstd_window);
    CU_add_test(b, "within the cap", test_bomb_within_cap_is_fine);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

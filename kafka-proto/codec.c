/*
 * codec.c — compression and decompression of record-batch payloads.
 *
 * Owns: the glue between kp_writer and zlib, libsnappy, liblz4 (frame API)
 * and libzstd, the xerial snappy framing, and the bomb cap: every
 * decompressor writes into windows handed out by a sink that never lets the
 * output pass max_out.
 *
 * Must not: size an allocation from a length the compressed stream declares
 * (only from input that has been proven to decode), leave partial output in
 * the caller's writer on failure, or look inside record batches.
 */
#include "codec.h"

#include <limits.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* First output step when the writer is full; later steps double with the
 * output so a large payload costs O(log n) reallocations. */
#define SINK_MIN_STEP (64u << 10)

/* A zstd window up to 2^23 covers every level up to 19, whatever the
 * producer's input size; bigger windows are allowed only when max_out is
 * that big, so a 20-byte frame cannot make us reserve 128 MiB. */
#define ZSTD_MIN_WINDOW_LOG 23
/* libzstd's own default limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT, only visible
 * under ZSTD_STATIC_LINKING_ONLY); Kafka's Java decoder uses the same. */
#define ZSTD_MAX_WINDOW_LOG 27

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16

const char *kp_codec_name(int codec)
{
    switch (codec) {
    case KP_CODEC_NONE:
        return "none";
    case KP_CODEC_GZIP:
        return "gzip";
    case KP_CODEC_SNAPPY:
        return "snappy";
    case KP_CODEC_LZ4:
        return "lz4";
    case KP_CODEC_ZSTD:
        return "zstd";
    }
    return "unknown";
}

/* Makes room for n more bytes and returns where they go, or NULL. A counting
 * writer has no memory to hand to a library, so it is refused. */
static uint8_t *out_room(kp_writer *w, size_t n, int *rc)
{
    if ((*rc = kp_writer_reserve(w, n)))
        return NULL;
    if (!w->buf) {
        *rc = KP_E_UNSUPPORTED;
        return NULL;
    }
    return w->buf + w->len;
}

/* ---- compression ------------------------------------------------------ */

static int gzip_compress(const uint8_t *in, size_t in_len, kp_writer *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    int zr = deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? KP_E_NOMEM : KP_E_CODEC;
    /* deflateBound covers a single Z_FINISH call, gzip header and trailer. */
    uLong bound = deflateBound(&z, (uLong)in_len);
    int rc = KP_OK;
    uint8_t *dst = out_room(out, bound, &rc);
    if (dst) {
        z.next_in = (Bytef *)(uintptr_t)in;
        z.avail_in = (uInt)in_len;
        z.next_out = dst;
        z.avail_out = (uInt)bound;
        zr = deflate(&z, Z_FINISH);
        if (zr == Z_STREAM_END)
            out->len += bound - z.avail_out;
        else
            rc = KP_E_CODEC;
    }
    deflateEnd(&z);
    return rc;
}

static int snappy_compress_raw(const uint8_t *in, size_t in_len, kp_writer *out)
{
    size_t bound = snappy_max_compressed_length(in_len);
    int rc = KP_OK;
    uint8_t *dst = out_room(out, bound, &rc);
    if (!dst)
        return rc;
    size_t n = bound;
    if (snappy_compress((const char *)in, in_len, (char *)dst, &n) != SNAPPY_OK)
        return KP_E_CODEC;
    out->len += n;
    return KP_OK;
}

static void lz4_kafka_prefs(LZ4F_preferences_t *prefs)
{
    /* What Kafka's own KafkaLZ4BlockOutputStream writes; its reader (still
     * used by Java consumers) cannot follow linked blocks. */
    memset(prefs, 0, sizeof(*prefs));
    prefs->frameInfo.blockSizeID = LZ4F_max64KB;
    prefs->frameInfo.blockMode = LZ4F_blockIndependent;
    prefs->frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs->frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
    prefs->frameInfo.contentSize = 0;
}

static int lz4_compress(const uint8_t *in, size_t in_len, kp_writer *out)
{
    LZ4F_preferences_t prefs;
    lz4_kafka_prefs(&prefs);
    size_t bound = LZ4F_compressFrameBound(in_len, &prefs);
    int rc = KP_OK;
    uint8_t *dst = out_room(out, bound, &rc);
    if (!dst)
        return rc;
    size_t n = LZ4F_compressFrame(dst, bound, in, in_len, &prefs);
    if (LZ4F_isError(n))
        return KP_E_CODEC;
    out->len += n;
    return KP_OK;
}

static int zstd_compress(const uint8_t *in, size_t in_len, kp_writer *out)
{
    size_t bound = ZSTD_compressBound(in_len);
    int rc = KP_OK;
    uint8_t *dst = out_room(out, bound, &rc);
    if (!dst)
        return rc;
    size_t n = ZSTD_compress(dst, bound, in, in_len, ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(n))
        return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? KP_E_NOMEM : KP_E_CODEC;
    out->len += n;
    return KP_OK;
}

int kp_compress(int codec, const uint8_t *in, size_t in_len, kp_writer *out)
{
    if (out->err)
        return out->err;
    /* A records section lives inside an int32 batch length; refusing more
     * here also keeps every size inside zlib's 32-bit counters. */
    if (in_len > INT32_MAX)
        return KP_E_TOO_LARGE;
    size_t start = out->len;
    int rc;
    switch (codec) {
    case KP_CODEC_NONE:
        rc = kp_write_raw(out, in, in_len);
        break;
    case KP_CODEC_GZIP:
        rc = gzip_compress(in, in_len, out);
        break;
    case KP_CODEC_SNAPPY:
        rc = snappy_compress_raw(in, in_len, out);
        break;
    case KP_CODEC_LZ4:
        rc = lz4_compress(in, in_len, out);
        break;
    case KP_CODEC_ZSTD:
        rc = zstd_compress(in, in_len, out);
        break;
    default:
        return KP_E_UNSUPPORTED;
    }
    if (rc)
        out->len = start;
    return rc;
}

/* ---- decompression ---------------------------------------------------- */

/* Where decompressed bytes go: the caller's writer, clipped to max_out. */
typedef struct sink {
    kp_writer *w;
    size_t start; /* w->len on entry: everything after it is ours */
    size_t max_out;
    uint8_t probe; /* stand-in output byte once max_out is reached */
} sink;

static size_t sink_produced(const sink *s)
{
    return s->w->len - s->start;
}

/* Offers the next output window: the writer's free space, clipped to the
 * cap, growing the writer (doubling) when it is full. Once the cap is reached
 * it offers a single probe byte instead, so a stream with more output is
 * caught while one that only has its trailer left still completes. */
static int sink_window(sink *s, uint8_t **dst, size_t *n)
{
    size_t produced = sink_produced(s);
    size_t allowed = s->max_out - produced;
    if (allowed == 0) {
        *dst = &s->probe;
        *n = 1;
        return KP_OK;
    }
    size_t room = s->w->cap - s->w->len;
    if (room == 0) {
        size_t step = produced < SINK_MIN_STEP ? SINK_MIN_STEP : produced;
        int rc;
        if (!out_room(s->w, step < allowed ? step : allowed, &rc))
            return rc;
        room = s->w->cap - s->w->len;
    } else if (!s->w->buf) {
        return KP_E_UNSUPPORTED;
    }
    *dst = s->w->buf + s->w->len;
    *n = room < allowed ? room : allowed;
    return KP_OK;
}

/* Accounts for the n bytes a codec wrote into the last window. */
static int sink_commit(sink *s, const uint8_t *dst, size_t n)
{
    if (dst == &s->probe)
        return n ? KP_E_TOO_LARGE : KP_OK;
    s->w->len += n;
    return KP_OK;
}

static int gzip_decompress(const uint8_t *in, size_t in_len, sink *s)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    /* 15 + 32: accept gzip and zlib headers alike. */
    int zr = inflateInit2(&z, 15 + 32);
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? KP_E_NOMEM : KP_E_CODEC;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)in_len; /* kp_decompress keeps in_len <= INT32_MAX */
    int rc;
    for (;;) {
        uint8_t *dst;
        size_t n;
        if ((rc = sink_window(s, &dst, &n)))
            break;
        z.next_out = dst;
        z.avail_out = n > UINT_MAX ? UINT_MAX : (uInt)n;
        uInt before = z.avail_out;
        zr = inflate(&z, Z_NO_FLUSH);
        if ((rc = sink_commit(s, dst, before - z.avail_out)))
            break;
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            /* Another gzip member follows (what `cat a.gz b.gz` makes). */
            if (inflateReset(&z) != Z_OK) {
                rc = KP_E_CODEC;
                break;
            }
            continue;
        }
        if (zr == Z_OK)
            continue;
        /* Z_BUF_ERROR with output room means the input ran out mid-stream. */
        rc = zr == Z_MEM_ERROR ? KP_E_NOMEM : KP_E_CODEC;
        break;
    }
    inflateEnd(&z);
    return rc;
}

/* One raw snappy block. The C API needs the whole output at once, so the
 * block is validated first: the declared length is only believed (and
 * allocated) once the stream is known to decode to exactly that much. */
static int snappy_block(const uint8_t *p, size_t n, sink *s)
{
    size_t ulen;
    if (snappy_uncompressed_length((const char *)p, n, &ulen) != SNAPPY_OK)
        return KP_E_CODEC;
    if (ulen > s->max_out - sink_produced(s))
        return KP_E_TOO_LARGE;
    if (snappy_validate_compressed_buffer((const char *)p, n) != SNAPPY_OK)
        return KP_E_CODEC;
    if (ulen == 0)
        return KP_OK;
    int rc;
    uint8_t *dst = out_room(s->w, ulen, &rc);
    if (!dst)
        return rc;
    size_t got = ulen;
    if (snappy_uncompress((const char *)p, n, (char *)dst, &got) != SNAPPY_OK || got != ulen)
        return KP_E_CODEC;
    s->w->len += ulen;
    return KP_OK;
}

static int snappy_decompress(const uint8_t *in, size_t in_len, sink *s)
{
    if (in_len < XERIAL_HEADER_SIZE || memcmp(in, xerial_magic, sizeof(xerial_magic)) != 0)
        return snappy_block(in, in_len, s);
    /* xerial framing: the two version int32s carry nothing we need (every
     * writer uses 1/1 and the block format never changed). */
    kp_reader r;
    kp_reader_init(&r, in + XERIAL_HEADER_SIZE, in_len - XERIAL_HEADER_SIZE);
    while (kp_reader_left(&r)) {
        int32_t blen;
        const uint8_t *blk;
        if (kp_read_i32(&r, &blen) || blen <= 0 || kp_read_raw(&r, (size_t)blen, &blk))
            return KP_E_CODEC;
        int rc = snappy_block(blk, (size_t)blen, s);
        if (rc)
            return rc;
    }
    return KP_OK;
}

static int lz4_decompress(const uint8_t *in, size_t in_len, sink *s)
{
    LZ4F_dctx *d;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
        return KP_E_NOMEM;
    const uint8_t *ip = in, *iend = in + in_len;
    int rc = in_len ? KP_OK : KP_E_CODEC;
    while (!rc) {
        uint8_t *dst;
        size_t n;
        if ((rc = sink_window(s, &dst, &n)))
            break;
        size_t dsz = n, ssz = (size_t)(iend - ip);
        size_t hint = LZ4F_decompress(d, dst, &dsz, ip, &ssz, NULL);
        if (LZ4F_isError(hint)) {
            rc = KP_E_CODEC;
            break;
        }
        ip += ssz;
        if ((rc = sink_commit(s, dst, dsz)))
            break;
        if (hint == 0) {
            /* Frame complete; the context is ready for a following frame. */
            if (ip == iend)
                break;
            continue;
        }
        /* Neither input taken nor output given: the frame is truncated. */
        if (ssz == 0 && dsz == 0)
            rc = KP_E_CODEC;
    }
    LZ4F_freeDecompressionContext(d);
    return rc;
}

static int zstd_window_log(size_t max_out)
{
    int log = ZSTD_MIN_WINDOW_LOG;
    while (log < ZSTD_MAX_WINDOW_LOG && ((size_t)1 << log) < max_out)
        log++;
    return log;
}

static int zstd_decompress(const uint8_t *in, size_t in_len, sink *s)
{
    if (in_len == 0)
        return KP_E_CODEC;
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return KP_E_NOMEM;
    int rc = KP_OK;
    if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, zstd_window_log(s->max_out))))
        rc = KP_E_CODEC;
    ZSTD_inBuffer zin = {in, in_len, 0};
    while (!rc) {
        uint8_t *dst;
        size_t n;
        if ((rc = sink_window(s, &dst, &n)))
            break;
        ZSTD_outBuffer zout = {dst, n, 0};
        size_t in_before = zin.pos;
        size_t r = ZSTD_decompressStream(d, &zout, &zin);
        if (ZSTD_isError(r)) {
            switch (ZSTD_getErrorCode(r)) {
            case ZSTD_error_frameParameter_windowTooLarge:
                rc = KP_E_TOO_LARGE;
                break;
            case ZSTD_error_memory_allocation:
                rc = KP_E_NOMEM;
                break;
            default:
                rc = KP_E_CODEC;
            }
            break;
        }
        if ((rc = sink_commit(s, dst, zout.pos)))
            break;
        if (r == 0) {
            /* Frame decoded and flushed; more input means another frame. */
            if (zin.pos == zin.size)
                break;
            continue;
        }
        if (zout.pos == 0 && zin.pos == in_before)
            rc = KP_E_CODEC;
    }
    ZSTD_freeDCtx(d);
    return rc;
}

int kp_decompress(int codec, const uint8_t *in, size_t in_len, size_t max_out, kp_writer *out)
{
    if (out->err)
        return out->err;
    if (in_len > INT32_MAX)
        return KP_E_TOO_LARGE;
    sink s = {out, out->len, max_out, 0};
    int rc;
    switch (codec) {
    case KP_CODEC_NONE:
        rc = in_len > max_out ? KP_E_TOO_LARGE : kp_write_raw(out, in, in_len);
        break;
    case KP_CODEC_GZIP:
        rc = gzip_decompress(in, in_len, &s);
        break;
    case KP_CODEC_SNAPPY:
        rc = snappy_decompress(in, in_len, &s);
        break;
    case KP_CODEC_LZ4:
        rc = lz4_decompress(in, in_len, &s);
        break;
    case KP_CODEC_ZSTD:
        rc = zstd_decompress(in, in_len, &s);
        break;
    default:
        return KP_E_UNSUPPORTED;
    }
    if (rc)
        out->len = s.start;
    return rc;
}

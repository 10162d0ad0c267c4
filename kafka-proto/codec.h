/*
 * codec.h — the record-batch compression codecs: gzip, snappy, lz4, zstd.
 *
 * Owns: the framing Kafka clients use for each codec (gzip stream, raw or
 * xerial-framed snappy, LZ4 frame, zstd frame) on top of zlib, libsnappy,
 * liblz4 and libzstd, and the decompression-bomb cap.
 *
 * Must not: trust any size declared inside a compressed stream (output grows
 * step by step and never beyond max_out), allocate in proportion to such a
 * size, or know anything about record batches beyond the codec numbers.
 */
#ifndef KP_CODEC_H
#define KP_CODEC_H

#include "batch.h"

/* Compress in[0, in_len) with codec (KP_CODEC_*) and append the result to out.
 * Levels are each library's default (gzip 6, zstd 3 as in Kafka, lz4 fast
 * mode, cheaper than Kafka 3.8's level 9 for a broker that recompresses).
 * lz4 frames use independent 64 KiB blocks and no checksums, as Kafka's own
 * writer does, because older Java readers cannot follow linked blocks; snappy
 * is written raw, which every client reads. in_len above INT32_MAX (more than
 * a batch can hold) is KP_E_TOO_LARGE. Returns KP_OK, KP_E_UNSUPPORTED for an
 * unknown codec or a counting writer, KP_E_NOMEM, KP_E_TOO_LARGE or
 * KP_E_CODEC. On failure out->len is left as it was. */
int kp_compress(int codec, const uint8_t *in, size_t in_len, kp_writer *out);

/* Decompress in[0, in_len) and append the output to out. Snappy input may be
 * raw or xerial-framed; gzip input may hold several concatenated members and
 * lz4/zstd input several concatenated frames. Returns KP_OK, KP_E_TOO_LARGE
 * when the output would exceed max_out bytes (the decompression-bomb cap; a
 * zstd frame whose window exceeds both 8 MiB and max_out is refused the same
 * way, before the decoder reserves it), KP_E_CODEC on corrupt or truncated
 * input, KP_E_UNSUPPORTED for an
 * unknown codec, KP_E_NOMEM. On failure out->len is left as it was (capacity
 * may have grown, by at most about max_out). */
int kp_decompress(int codec, const uint8_t *in, size_t in_len, size_t max_out, kp_writer *out);

/* "none", "gzip", "snappy", "lz4", "zstd" or "unknown". */
const char *kp_codec_name(int codec);

#endif

/*
 * batch.h — Kafka record batches (magic 2): validation, iteration, building.
 *
 * Owns: the 61-byte batch header, CRC-32C (hardware SSE4.2 path with a
 * portable fallback), record iteration (zigzag varints), record headers,
 * control batches and a batch builder for tests, tools and internal logs.
 *
 * Must not: decompress on its own initiative (the caller asks codec.h when it
 * needs the records of a compressed batch), allocate while validating, or
 * trust any length or count inside a batch. Legacy magic 0/1 message sets are
 * recognised and rejected with KP_E_UNSUPPORTED.
 */
#ifndef KP_BATCH_H
#define KP_BATCH_H

#include "wire.h"

#define KP_BATCH_HEADER_SIZE  61 /* through recordCount */
#define KP_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define KP_BATCH_CRC_START    21 /* CRC covers [21, end) */

/* attribute bits */
#define KP_ATTR_CODEC_MASK      0x07
#define KP_ATTR_LOG_APPEND_TIME 0x08
#define KP_ATTR_TRANSACTIONAL   0x10
#define KP_ATTR_CONTROL         0x20
#define KP_ATTR_DELETE_HORIZON  0x40

enum kp_codec_id {
    KP_CODEC_NONE = 0,
    KP_CODEC_GZIP = 1,
    KP_CODEC_SNAPPY = 2,
    KP_CODEC_LZ4 = 3,
    KP_CODEC_ZSTD = 4
};

typedef struct kp_batch_header {
    int64_t base_offset;
    int32_t batch_length; /* bytes after this field */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} kp_batch_header;

/* One batch inside a records blob: its header and where its bytes are. */
typedef struct kp_batch {
    kp_batch_header h;
    const uint8_t *data;    /* start of the batch (baseOffset field) */
    size_t size;            /* KP_BATCH_LOG_OVERHEAD + batch_length */
    const uint8_t *records; /* records section (compressed when codec != 0) */
    size_t records_size;
} kp_batch;

/* CRC-32C (Castagnoli). crc is the running value: start with 0. */
uint32_t kp_crc32c(uint32_t crc, const void *p, size_t n);
int kp_crc32c_hw_available(void);
uint32_t kp_crc32c_sw(uint32_t crc, const void *p, size_t n); /* portable path */

/* Decode the 61-byte header only (no CRC check, no sanity check of any
 * field). Returns KP_E_SHORT when len < 61. */
int kp_batch_header_parse(const uint8_t *p, size_t len, kp_batch_header *h);

/* Validate the batch that starts at p; it is batch_length + 12 bytes long
 * and len may extend past it (out->size says where it ends). Checks, in this
 * order: at least 12 bytes (KP_E_SHORT); magic 2 (0 or 1: KP_E_UNSUPPORTED,
 * anything else KP_E_INVALID); batch_length >= 49 (KP_E_INVALID); the whole
 * batch present (KP_E_SHORT); CRC-32C (KP_E_CRC); record_count >= 0,
 * last_offset_delta >= 0, record_count <= last_offset_delta + 1 (compaction
 * may leave fewer records, never more); a known codec (KP_E_UNSUPPORTED).
 * For an uncompressed batch every record is walked too: exactly record_count
 * records filling the records section exactly, each one well formed (see
 * kp_record_iter_next), else KP_E_INVALID. Compressed records are not looked
 * at. Does not allocate. out may be NULL. */
int kp_batch_validate(const uint8_t *p, size_t len, kp_batch *out);

/* Iterate the batches of a records field (Produce, Fetch, a log segment).
 * kp_batch_iter_next returns 1 and fills *b for each whole valid batch, 0 at
 * the end, negative on a corrupt batch. A truncated trailing batch (allowed
 * in Fetch responses) ends the iteration with 0 and sets it->partial; a
 * Produce handler must treat partial as corrupt. After 0 or an error it->p
 * still points at the partial or corrupt batch (where recovery truncates). */
typedef struct kp_batch_iter {
    const uint8_t *p;
    const uint8_t *end;
    int verify_crc;
    int partial;
} kp_batch_iter;

void kp_batch_iter_init(kp_batch_iter *it, const void *buf, size_t len, int verify_crc);
int kp_batch_iter_next(kp_batch_iter *it, kp_batch *b);

/* In-place edits of a stored, validated batch. Offset and leader epoch lie
 * outside the CRC. kp_batch_set_max_timestamp writes maxTimestamp, sets the
 * timestamp-type bit to LogAppendTime when log_append_time is non-zero and
 * clears it otherwise (as Kafka's setMaxTimestamp does), then recomputes the
 * CRC over the batch_length the header declares; size is the bytes available
 * at batch, and a batch that does not fit in size is left untouched. */
void kp_batch_set_base_offset(uint8_t *batch, int64_t base_offset);
void kp_batch_set_leader_epoch(uint8_t *batch, int32_t epoch);
void kp_batch_set_max_timestamp(uint8_t *batch, size_t size, int64_t ts, int log_append_time);

/* ---- records ---------------------------------------------------------- */

typedef struct kp_record_header {
    kp_str key;
    kp_bytes value; /* len -1: null */
} kp_record_header;

typedef struct kp_record {
    int64_t offset;    /* base_offset + offset delta */
    int64_t timestamp; /* base_timestamp + delta (or max_timestamp for LogAppendTime) */
    int8_t attributes;
    kp_bytes key;   /* len -1: null */
    kp_bytes value; /* len -1: null */
    int32_t header_count;
    const uint8_t *headers; /* raw header section, walk with kp_record_header_next */
    size_t headers_size;
} kp_record;

/* Iterate the (uncompressed) records section of a batch. */
typedef struct kp_record_iter {
    kp_reader r;
    const kp_batch_header *h;
    int32_t remaining;
    int32_t next_delta; /* smallest offset delta the next record may carry */
} kp_record_iter;

/* For a compressed batch pass the decompressed records (codec.h). h must
 * outlive the iterator. */
void kp_record_iter_init(kp_record_iter *it, const kp_batch_header *h, const uint8_t *records, size_t size);
/* 1 = record filled, 0 = done (and the section was fully consumed), <0 = corrupt
 * (KP_E_INVALID; the error sticks). A record is well formed when its length
 * varint equals the bytes its fields take, its offset delta is above the
 * previous record's and at most last_offset_delta, key/value lengths are -1
 * or fit, the header count is >= 0 and every header (non-null key) fits.
 * Pointers in *rec point into the records section. */
int kp_record_iter_next(kp_record_iter *it, kp_record *rec);

/* Walk a record's headers: *pos starts at 0; returns 1, 0 at end, <0 corrupt. */
int kp_record_header_next(const kp_record *rec, size_t *pos, kp_record_header *out);

/* Control records (the one record of a control batch): key = int16 version +
 * int16 type, value for commit/abort = int16 version + int32 coordinator
 * epoch. Fills *type and *coordinator_epoch (-1 for types other than
 * commit/abort, e.g. the KRaft ones). KP_E_INVALID on a short key or value or
 * a negative version. */
#define KP_CONTROL_ABORT  0
#define KP_CONTROL_COMMIT 1
int kp_control_record_parse(const kp_record *rec, int16_t *type, int32_t *coordinator_epoch);

/* A transaction marker: a control batch holding exactly one commit or abort
 * record (Kafka's EndTransactionMarker). Fills *type (KP_CONTROL_ABORT or
 * KP_CONTROL_COMMIT) and *coordinator_epoch. KP_E_INVALID when b is not a
 * control batch, is compressed, holds no or several records, or its record
 * is not a well-formed commit/abort. */
int kp_txn_marker_parse(const kp_batch *b, int16_t *type, int32_t *coordinator_epoch);

/* ---- building --------------------------------------------------------- */

/* Builds one batch in a kp_writer. Records are written uncompressed into an
 * internal buffer; finish compresses (codec.h) when codec != NONE, fills the
 * header and the CRC, and appends the whole batch to out (b->h then holds the
 * header written). Offset deltas are 0, 1, 2...; baseTimestamp is the first
 * record's timestamp. add returns KP_E_INVALID for a key/value length < -1,
 * a null or negative-length header key, a negative header count, and
 * KP_E_TOO_LARGE when the batch would outgrow an int32 length. finish
 * returns KP_E_INVALID for a builder with no records (Kafka never writes an
 * empty batch from a producer) and leaves out->len as it was on failure.
 * Other header bits (e.g. KP_ATTR_CONTROL) may be set in b->h.attributes
 * before finish; the codec bits always come from codec. */
typedef struct kp_batch_builder {
    kp_writer recs;
    kp_batch_header h;
    int codec;
    int32_t count;
    int64_t first_ts;
    int64_t max_ts;
} kp_batch_builder;

void kp_batch_builder_init(kp_batch_builder *b, int64_t base_offset, int codec);
void kp_batch_builder_set_producer(kp_batch_builder *b, int64_t pid, int16_t epoch, int32_t base_seq,
                                   int transactional);
int kp_batch_builder_add(kp_batch_builder *b, int64_t timestamp, kp_bytes key, kp_bytes value,
                         const kp_record_header *headers, int32_t header_count);
int kp_batch_builder_finish(kp_batch_builder *b, kp_writer *out);
void kp_batch_builder_free(kp_batch_builder *b);

/* Control batch (commit = 1, abort = 0) with one record, for transactions. */
int kp_batch_build_control(kp_writer *out, int64_t base_offset, int64_t pid, int16_t epoch, int commit,
                           int32_t coordinator_epoch, int64_t timestamp);

#endif

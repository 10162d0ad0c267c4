/*
 * legacy.h — magic 0/1 message sets (Produce v0-2, Fetch v0-3), converted at
 * the edge: up to one magic-2 batch on the way in, down to magic 1 on the
 * way out, as Kafka does for old clients.
 *
 * Owns the legacy format (offset, size, CRC-32 IEEE, magic, attributes,
 * timestamp in magic 1, key, value; a compressed message wraps a message set
 * in its value). Must not: trust sizes or counts, decompress without a cap,
 * or keep pointers into its input after returning.
 */
#ifndef KP_LEGACY_H
#define KP_LEGACY_H

#include "batch.h"

/* Converts a legacy message set into one magic-2 batch appended to out,
 * compressed with the codec of the (first) wrapper message, if any. Every
 * message's CRC-32 is checked; nested compressed messages are unwrapped once
 * (Kafka never nests deeper). max_decompressed caps each wrapper's inflated
 * size. Returns 0, KP_E_CRC, KP_E_INVALID, KP_E_TOO_LARGE or KP_E_CODEC. */
int kp_legacy_to_batch(const uint8_t *msgset, size_t len, size_t max_decompressed, kp_writer *out);

/* 1 when the first entry of a records field is a legacy (magic 0/1) message. */
int kp_records_are_legacy(const uint8_t *p, size_t len);

/* Appends the records of magic-2 batches (data, len: whole batches as stored)
 * to out as an uncompressed magic-1 (magic 0 when magic0 is set) message
 * set, keeping offsets and timestamps. Control batches are skipped; headers
 * do not exist in the legacy format and are dropped. */
int kp_batches_to_legacy(const uint8_t *data, size_t len, int magic0, size_t max_decompressed,
                         kp_writer *out);

#endif

/*
 * quorum_store.h — the metadata quorum's state machine: the compacted
 * metadata log (the last record of each key, tombstones dropped), which is
 * both what raft snapshots hold and what every node replays its metadata
 * versions from.
 *
 * Owns nothing shared: one store per raft node, used on the raft thread
 * only. Must not: interpret records (controller.c's replay does that).
 */
#ifndef SRV_QUORUM_STORE_H
#define SRV_QUORUM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "meta.h"

typedef struct srv_qrec {
    uint8_t *key;
    size_t klen;
    uint8_t *val;
    size_t vlen;
    int64_t ts;
} srv_qrec;

typedef struct srv_qstore {
    srv_qrec *r; /* sorted by key (bytewise, shorter first on a tie) */
    int n, cap;
} srv_qstore;

/* Applies every record of the batches (as a committed raft entry holds
 * them): a record replaces its key's, a tombstone removes it. 0, or a
 * KP_E_* (the store then holds the records before the failing one). */
int srv_qstore_apply(srv_qstore *s, const uint8_t *batches, size_t len);
/* The whole store as one uncompressed batch (nothing for an empty store). */
int srv_qstore_encode(const srv_qstore *s, kp_writer *w);
/* The metadata version the store replays to, numbered `version`. */
int srv_qstore_meta(const srv_qstore *s, uint64_t version, srv_meta **out);
void srv_qstore_free(srv_qstore *s);

#endif

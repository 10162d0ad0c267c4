/*
 * srv_features.h — the KIP-584 features kbroker advertises in ApiVersions v3+
 * (SupportedFeatures, FinalizedFeatures, FinalizedFeaturesEpoch), with
 * Kafka 4.4's names and levels.
 *
 * A client acts on a finalized level (Kafka 4.x producers switch to
 * transactions v2 when transaction.version >= 2), so only features whose
 * semantics hold in this broker are listed (docs/transactions.md,
 * "Transactions v2"). They depend on static configuration alone, so they
 * change only across a restart.
 *
 * Owns: which features exist and their levels. Must not: depend on a
 * shard's state or on anything that changes while the broker runs.
 */
#ifndef SRV_FEATURES_H
#define SRV_FEATURES_H

#include <stdbool.h>
#include <stdint.h>

typedef struct srv_feature {
    const char *name; /* a literal, with its length below */
    int16_t name_len;
    int16_t min_supported;
    int16_t max_supported;
    int16_t finalized; /* 0: supported only, not in FinalizedFeatures (as Kafka leaves out level 0) */
} srv_feature;

#define SRV_FEATURES_MAX 4

/* Fills out[] (SRV_FEATURES_MAX entries) with the features; txn_served:
 * whether the transaction APIs are served (the handler layer knows, from
 * dispatch.c's table and unstable.api.versions.enable). Returns how many. */
int srv_features(bool txn_served, srv_feature *out);

/* The finalized transaction.version: 2 while the transaction APIs are
 * served, else 0 (not advertised). The coordinator writes its records and
 * starts its own aborts at this level, as Kafka's does at its finalized one. */
int16_t srv_features_txn_version(bool txn_served);

#endif

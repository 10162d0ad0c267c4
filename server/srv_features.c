/*
 * srv_features.c — the features ApiVersions advertises (srv_features.h).
 *
 * Owns: the list and the reason for each entry. Must not: list a feature
 * whose level a client would act on wrongly here.
 */
#include "srv_features.h"

#define LIT(s) s, (int16_t)(sizeof(s) - 1)

int srv_features(bool txn_served, srv_feature *out)
{
    int n = 0;
    /* Level 1 is the KIP-848 consumer protocol, which kbroker serves
     * (ConsumerGroupHeartbeat) whatever the settings; Kafka 4.4 knows no
     * level above 1. */
    out[n++] = (srv_feature){LIT("group.version"), 0, 1, 1};
    /* Level 2 makes Kafka 4.x producers use transactions v2 (KIP-890 part
     * 2: Produce v12 adds partitions implicitly, TxnOffsetCommit v5 the
     * group's offsets partition, EndTxn v5 bumps the epoch). Promised only
     * while the transaction APIs are served: a producer told level 2 would
     * otherwise skip AddPartitionsToTxn against a broker that refuses
     * EndTxn. */
    /* Level 1 is KIP-932 share groups (ShareVersion.SV_1); level 2, which
     * Kafka 4.4 finalizes, adds the share-group dead-letter queue
     * (errors.deadletterqueue.*), which kbroker does not have. */
    out[n++] = (srv_feature){LIT("share.version"), 0, 1, 1};
    if (srv_features_txn_version(txn_served) > 0)
        out[n++] = (srv_feature){LIT("transaction.version"), 0, 2, srv_features_txn_version(txn_served)};
    return n;
}

int16_t srv_features_txn_version(bool txn_served)
{
    return txn_served ? 2 : 0;
}

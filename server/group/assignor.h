/*
 * assignor.h — the server-side partition assignors of KIP-848: "uniform"
 * (balanced and sticky: members keep what they had as far as balance allows)
 * and "range" (per topic, contiguous ranges over the subscribers sorted by
 * member id, the first ones getting one extra partition).
 *
 * Owns: nothing beyond the output sets it fills. Must not: know about groups,
 * records or epochs; it is a pure function of subscriptions, topics and the
 * previous target assignment.
 */
#ifndef SRV_GROUP_ASSIGNOR_H
#define SRV_GROUP_ASSIGNOR_H

#include "consumer.h"

typedef struct srv_asg_member {
    const char *id;
    int nsubs;
    char *const *subs;   /* sorted topic names */
    const srv_tps *prev; /* its previous target (stickiness), may be NULL */
    srv_tps out;         /* filled; the caller frees it */
} srv_asg_member;

/* Computes the target of every member over topics (sorted by name). Returns
 * 0, or -1 when out of memory (the outputs are then incomplete). */
int srv_assign(kp_str name, srv_asg_member *ms, int n, const srv_ctopic *topics, int ntopics);

#endif

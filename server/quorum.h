/*
 * quorum.h — the metadata quorum: this node's canonical-raft server (on its
 * own thread and libuv loop) whose replicated log is the metadata log, the
 * hand-over of committed versions to shard 0, broker registration and
 * heartbeats to the active controller (the raft leader), and the forwarding
 * of metadata changes to it (topic creations, and clients' requests in
 * Envelopes).
 *
 * Owns `<log.dir>/__raft_metadata/` and the raft thread. Must not: run on a
 * shard's loop, or reach shard state except through shard 0's hand-over
 * event (versions are published from there as the controller does).
 */
#ifndef SRV_QUORUM_H
#define SRV_QUORUM_H

#include "broker.h"
#include "meta.h"
#include "st_log.h"

typedef struct srv_quorum srv_quorum;

/* Start-up (blocking, before the shards run): creates the raft server and
 * starts its thread, then waits a bounded time for the log to replay up to
 * the leader's commit so the shards start from current metadata. *initial
 * gets that version (a new reference; the empty one when the quorum could
 * not be reached in time). 0, or a negative errno. */
int srv_quorum_start(srv_broker *b, srv_meta **initial);
/* After the shards stopped: closes raft, joins the thread. */
void srv_quorum_stop(srv_broker *b);

/* Shard 0 only: proposes a batch of metadata records; done(ctx, rc, 0) runs
 * on shard 0 once committed and applied (rc 0) or refused
 * (SRV_CTL_E_NOT_CONTROLLER and others). */
void srv_quorum_propose(srv_quorum *q, const uint8_t *batch, size_t len, st_append_cb done, void *ctx);
/* Any thread: this node is the active controller and has applied every
 * entry of the terms before its own. */
int srv_quorum_is_leader(void *q);
/* Any thread: the raft leader's node id, -1 when none is known. */
int32_t srv_quorum_leader_id(const srv_quorum *q);

/* Receives a forwarded request's answer on shard 0: the response body after
 * its header, malloc'd and now the receiver's (NULL: no answer came: leader
 * lost, connection closed, or no leader for 15 s). */
typedef void (*srv_quorum_fwd_cb)(void *ctx, uint8_t *body, size_t len);
/* Shard 0 only: sends a request frame (malloc'd, its size prefix included,
 * taken over; the correlation id is set when sent) of API key/ver to the
 * active controller on the raft thread's connection; cb(ctx, ...) follows
 * on shard 0, exactly once. */
void srv_quorum_forward(srv_quorum *q, uint8_t *frame, size_t len, int16_t key, int16_t ver,
                        srv_quorum_fwd_cb cb, void *ctx);

/* Any thread: w gets an Envelope request frame (size prefix, correlation id
 * 0) carrying the request frame `inner` (without its size) as principal
 * ("type:name") from host (an IPv4 or IPv6 address): Kafka's
 * DefaultKafkaPrincipalBuilder serialization and the address's bytes.
 * 0, or -1 (an address that is none, or the writer failed). */
int srv_envelope_encode(kp_writer *w, const uint8_t *inner, size_t len, const char *principal,
                        const char *host);

/* Shard 0 only (the BrokerHeartbeat handler's controller op): the active
 * controller heard from broker id. */
void srv_quorum_heard(srv_quorum *q, int32_t id);

#endif

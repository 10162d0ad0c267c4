/*
 * fetch_session.h — incremental fetch sessions (KIP-227), one cache per
 * shard.
 *
 * A session remembers the partitions a client fetches and what it was last
 * told about each, so later fetches send only changes and get back only
 * partitions with news. A session id names the shard that holds it
 * (srv_fetch_session_shard: id % shards, for any shard count): a client whose
 * next connection lands on another shard gets FETCH_SESSION_ID_NOT_FOUND and
 * starts a new session, as the protocol allows. Must not: be shared between shards, or grow without bound
 * (LRU eviction at max.incremental.fetch.session.cache.slots).
 */
#ifndef SRV_FETCH_SESSION_H
#define SRV_FETCH_SESSION_H

#include "broker.h"

typedef struct srv_fs_part {
    char *topic; /* an sstr (sstr.h): a requested name is kept byte for byte */
    kp_uuid topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    /* what the client was last told */
    int64_t hwm, lso, log_start;
    int16_t error;
    int reported;
} srv_fs_part;

typedef struct srv_fetch_session {
    struct srv_fetch_session *next;
    int32_t id;
    int32_t next_epoch;
    int n, cap;
    srv_fs_part *parts;
    int64_t last_used_ms;
} srv_fetch_session;

#define SRV_FETCH_SESSION_SLOTS 1000

/* Resolves a Fetch request's session fields. On success returns 0 and sets
 * *out to the session to serve (NULL for a sessionless fetch) and *full to
 * 1 when every partition must be answered. Returns a Kafka error
 * (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH) otherwise. */
int16_t srv_fetch_session_begin(srv_shard *s, const kp_fetch_request *rq, int16_t version,
                                srv_fetch_session **out, int *full);

/* The shard of an nshards broker that created session `id`, or -1 for an id
 * no shard hands out (0, negative). */
int srv_fetch_session_shard(int nshards, int32_t id);

/* The session with this id, or NULL (evicted, closed, another shard's). */
srv_fetch_session *srv_fetch_session_find(srv_shard *s, int32_t id);

/* Frees every session of the shard (shutdown). */
void srv_fetch_sessions_free(srv_shard *s);

#endif

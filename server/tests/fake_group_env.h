/*
 * fake_group_env.h — the fake environment of the group coordinator's unit
 * tests (test_group_*.c): a clock the test moves by hand, a
 * __consumer_offsets "log" where every append is durable at once (kept when
 * asked, so a restart is a replay of what was written), and a fixed topic
 * metadata (and a one-rule DESCRIBE check) for KIP-848 groups.
 *
 * Owns the kept batches. Must not: start timers (tests fire deadlines with
 * srv_groups_poll), touch the disk, or depend on shards or sockets.
 */
#ifndef FAKE_GROUP_ENV_H
#define FAKE_GROUP_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "group/group.h"

#define FAKE_GROUP_MAX_TOPICS 8

typedef struct fake_group_topic {
    const char *name; /* NUL-terminated: test literals */
    kp_uuid id;
    int32_t nparts; /* tests change it to add partitions */
} fake_group_topic;

typedef struct fake_group_env {
    int64_t now_ms; /* the clock, moved by the test */
    int appends;    /* batches appended so far */
    int keep_log;   /* keep every batch in log */
    uint8_t *log;   /* the batches appended, in order */
    size_t log_len;
    int16_t append_error; /* what appends are answered with (KP_ERR_NONE: durable) */
    int ntopics;
    fake_group_topic topics[FAKE_GROUP_MAX_TOPICS];
    uint64_t version; /* the metadata version: tests bump it with the topics */
    /* Regex subscriptions' DESCRIBE check: denied_principal may not
     * describe denied_topic (NULL: everything allowed). */
    const char *denied_principal;
    const char *denied_topic;
} fake_group_env;

/* A coordinator whose env is fe (which must outlive it). */
srv_groups *fake_group_env_groups(fake_group_env *fe, const srv_groups_config *cfg);
/* Replays the kept log into gs (partition 0) and finishes the load; returns
 * the number of batches replayed, -1 when the log does not parse. */
int fake_group_env_replay(const fake_group_env *fe, srv_groups *gs);
/* Forgets the kept batches. */
void fake_group_env_clear_log(fake_group_env *fe);

#endif

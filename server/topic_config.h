/*
 * topic_config.h — topic-level configs: the topic keys (Kafka 3.9's, with
 * their broker synonyms), a topic's override set and its serialized form,
 * effective values and DescribeConfigs entries, the storage settings of its
 * partitions, and the override set of a topic as metadata stores it.
 *
 * Must not: do I/O, or keep mutable state (as config.h).
 */
#ifndef SRV_TOPIC_CONFIG_H
#define SRV_TOPIC_CONFIG_H

#include "config.h"
#include "st_log.h"

typedef struct srv_topic srv_topic; /* meta.h */

/* A topic's explicit overrides (AlterConfigs/CreateTopics), values validated
 * and in canonical form. Fixed size so it can be copied into published
 * metadata versions without allocation. */
typedef struct srv_topic_override {
    uint8_t key; /* topic key table index */
    uint16_t off;
    uint16_t len;
} srv_topic_override;

typedef struct srv_topic_config {
    uint16_t n;
    uint16_t used;
    srv_topic_override ov[SRV_TOPIC_KEYS_MAX];
    char buf[SRV_TOPIC_CONFIG_BUF];
} srv_topic_config;

void srv_topic_config_init(srv_topic_config *t);
size_t srv_topic_config_key_count(void);
/* 1 when `name` is a topic-level config key. */
int srv_topic_config_known(const char *name);

/* Validates name=value for a topic. Returns 0 or KP_ERR_INVALID_CONFIG (40)
 * with the reason in err (unknown name, unparsable or out-of-range value). */
int srv_topic_config_validate(const char *name, const char *value, char *err, size_t errlen);

/* SET / DELETE / APPEND / SUBTRACT one override (value ignored for DELETE).
 * APPEND and SUBTRACT are only valid for list-typed keys; they start from the
 * topic's override or, without one, the key's Kafka default, as Kafka does.
 * Returns 0 or a Kafka error code (INVALID_CONFIG) with err filled; on error
 * `t` is unchanged. */
int srv_topic_config_alter(srv_topic_config *t, int op, const char *name, const char *value, char *err,
                           size_t errlen);

int srv_topic_config_count(const srv_topic_config *t);
/* i-th override in key-table order; returns 0 or -1 past the end. */
int srv_topic_config_at(const srv_topic_config *t, int i, const char **name, const char **value,
                        size_t *value_len);
/* Override value (NUL-terminated copy into out) or -1 when none. */
int srv_topic_config_get_override(const srv_topic_config *t, const char *name, char *out, size_t cap);

/* Compact form for the metadata log: "name=value\n" per override, key-table
 * order. Returns the length needed (excl. NUL), like snprintf; writes at most
 * cap bytes and NUL-terminates when cap > 0. */
size_t srv_topic_config_serialize(const srv_topic_config *t, char *buf, size_t cap);
/* Parses the serialized form, validating every pair. Returns 0 or
 * KP_ERR_INVALID_CONFIG (t left empty). */
int srv_topic_config_deserialize(srv_topic_config *t, const char *buf, size_t len, char *err, size_t errlen);

/* Effective value of a topic key: override, else the broker synonym
 * (converted to the topic's units), else the default. Returns 0 with *source
 * set (may be NULL), or -1 for an unknown key. */
int srv_topic_config_value(const srv_config *broker, const srv_topic_config *t, const char *name, char *out,
                           size_t cap, int *source);
/* Same, parsed as a number (INT/LONG/SHORT keys) or boolean (0/1). */
int srv_topic_config_long(const srv_config *broker, const srv_topic_config *t, const char *name,
                          int64_t *out);

/* Topic resource for DescribeConfigs: iterate while it returns 1. */
int srv_topic_config_describe(const srv_config *broker, const srv_topic_config *t, size_t index,
                              srv_config_entry *out);
int srv_topic_config_describe_name(const srv_config *broker, const srv_topic_config *t, const char *name,
                                   srv_config_entry *out);

/* Fills the config-derived fields of `out` (segment_bytes, segment_ms,
 * index_interval_bytes, retention_ms, retention_bytes, sync_acks,
 * flush_messages, flush_ms, max_batch_bytes, log_append_time, compact,
 * delete_retention_ms). The memory-sizing fields
 * (chunk_bytes, max_unflushed_bytes, tail_cache_bytes, max_read_bytes) are
 * left as the caller set them: initialise `out` with st_log_config_default()
 * first. */
void srv_topic_config_to_st(const srv_config *broker, const srv_topic_config *t, st_log_config *out);

/* Builds the topic's srv_topic_config from its stored overrides. */
void srv_topic_overrides(const srv_topic *t, srv_topic_config *out);
void srv_topic_st_config(const srv_config *broker, const srv_topic *t, st_log_config *out);

#endif

/*
 * config_keys.h — what config.c (broker keys) and topic_config.c (topic keys)
 * share: the key description, value checks and canonical forms, list values,
 * and the broker settings a topic key falls back to.
 *
 * Owns: nothing of its own; the definitions are config.c's. Must not: be
 * included by anything but config.c and topic_config.c (the rest of the broker
 * uses config.h and topic_config.h).
 */
#ifndef SRV_CONFIG_KEYS_H
#define SRV_CONFIG_KEYS_H

#include "config.h"

enum key_use {
    USE_APPLY = 0,   /* honoured */
    USE_IGNORED = 1, /* Kafka key accepted and validated, but has no effect here */
    USE_CLUSTER = 2, /* ZooKeeper / KRaft / replication key: meaningless on one node */
};

typedef int (*check_fn)(const char *value, char *why, size_t whylen);

typedef struct keydef {
    const char *name;
    uint8_t type;
    uint8_t use;
    const char *def;            /* canonical default; NULL = none (null in DescribeConfigs) */
    int64_t min, max;           /* both 0 = no bounds beyond the type's */
    const char *const *choices; /* allowed STRING values / LIST items (case-sensitive) */
    check_fn check;
    const char *doc;
    const char *note; /* why a USE_IGNORED / USE_CLUSTER key has no effect */
} keydef;

#define I64MAX  "9223372036854775807"
#define MIN_MS  60000LL
#define HOUR_MS 3600000LL

/* Value sets and checks used by both key tables. */
extern const char *const srv_cfgk_ch_cleanup[];
extern const char *const srv_cfgk_ch_compression[];
extern const char *const srv_cfgk_ch_ts_type[];
int srv_cfgk_check_gzip_level(const char *v, char *why, size_t n);
int srv_cfgk_check_version(const char *v, char *why, size_t n);

/* Validates `in` for key k and writes its canonical form; 0 or -1 with err. */
int srv_cfgk_canon(const keydef *k, const char *in, char *out, size_t cap, char *err, size_t errlen);

/* Index of a broker key (srv_config.vals), or -1. */
int srv_cfgk_bkey_find(const char *name);
/* Appends a synonym to a DescribeConfigs entry (dropped when it is full). */
void srv_cfgk_add_syn(srv_config_entry *e, const char *name, const char *value, int source);
/* The synonyms Kafka lists for broker keys `names` (set values, then defaults). */
void srv_cfgk_broker_synonyms(const srv_config *cfg, const char *const *names, int n, srv_config_entry *e);

#endif

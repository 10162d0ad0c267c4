/*
 * config.h — the broker's configuration: server.properties, command-line
 * overrides, and what DescribeConfigs reports for the broker; the types a
 * DescribeConfigs entry has for broker and topic keys alike. Topic-level
 * configs are topic_config.h's.
 *
 * Owns: the table of known broker config keys (name, type, default,
 * validation, documentation), the Java-properties parser and command-line
 * parsing, and the store of ssl.* / sasl.* values (per listener) with the
 * checks that need no file.
 *
 * Must not: do any I/O other than reading the one config file named on the
 * command line; print (messages go through the srv_log_fn callback or the
 * caller's err buffer); keep global mutable state. A srv_config is filled once
 * at startup and is immutable afterwards: shards read it concurrently without
 * locks, so nothing here writes to a srv_config after srv_config_parse_args()
 * (or srv_config_finish()) has returned.
 *
 * Kafka 3.9 is the reference for names, types, defaults and validation.
 * Deliberate differences (all documented in srv_config_usage()):
 *   - listeners defaults to PLAINTEXT://localhost:9092 (Kafka: PLAINTEXT://:9092)
 *     so that a fresh broker is not reachable from the network by accident;
 *   - log.dir defaults to ./data (Kafka: /tmp/kafka-logs);
 *   - node.id / broker.id default to 1 (Kafka: -1, i.e. required / generated);
 *   - replication-factor keys default to 1; default.replication.factor
 *     accepts only 1 without a metadata quorum (a single node);
 *   - security: PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners, SASL
 *     mechanism PLAIN only; keystores PEM or PKCS12 (JKS is refused).
 */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* ---- limits ---------------------------------------------------------------- */

#define SRV_CONFIG_VALUE_MAX    1024 /* longest accepted value (bytes, incl. NUL) */
#define SRV_CONFIG_NAME_MAX     128  /* longest recorded unknown key name */
#define SRV_MAX_LISTENERS       8
#define SRV_MAX_LOG_DIRS        8
#define SRV_MAX_UNKNOWN_KEYS    64 /* distinct unknown keys remembered */
#define SRV_BROKER_KEYS_MAX     160
#define SRV_CONFIG_MAX_SYNONYMS 6
#define SRV_TOPIC_KEYS_MAX      48
#define SRV_TOPIC_CONFIG_BUF    2048 /* total bytes of one topic's override values */
#define SRV_CONFIG_FILE_MAX     (1 << 20)

/* ---- Kafka wire constants (verified against Kafka's DescribeConfigsResponse) */

/* DescribeConfigs v3+ ConfigType. */
enum srv_config_type {
    SRV_TYPE_UNKNOWN = 0,
    SRV_TYPE_BOOLEAN = 1,
    SRV_TYPE_STRING = 2,
    SRV_TYPE_INT = 3,
    SRV_TYPE_SHORT = 4,
    SRV_TYPE_LONG = 5,
    SRV_TYPE_DOUBLE = 6,
    SRV_TYPE_LIST = 7,
    SRV_TYPE_CLASS = 8,
    SRV_TYPE_PASSWORD = 9,
};

/* DescribeConfigs v1+ ConfigSource. Note the real numbering: TOPIC_CONFIG is
 * 1 and DYNAMIC_BROKER_LOGGER_CONFIG was added last (6). */
enum srv_config_source {
    SRV_SOURCE_UNKNOWN = 0,
    SRV_SOURCE_TOPIC_CONFIG = 1, /* "DYNAMIC_TOPIC_CONFIG" in the admin client */
    SRV_SOURCE_DYNAMIC_BROKER_CONFIG = 2,
    SRV_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG = 3,
    SRV_SOURCE_STATIC_BROKER_CONFIG = 4,
    SRV_SOURCE_DEFAULT_CONFIG = 5,
    SRV_SOURCE_DYNAMIC_BROKER_LOGGER_CONFIG = 6,
};

/* IncrementalAlterConfigs operation types. */
enum srv_alter_op {
    SRV_ALTER_SET = 0,
    SRV_ALTER_DELETE = 1,
    SRV_ALTER_APPEND = 2,
    SRV_ALTER_SUBTRACT = 3,
};

/* ---- logging ----------------------------------------------------------------- */

#ifndef SRV_LOG_LEVELS /* shared with log.h */
#define SRV_LOG_LEVELS
enum srv_log_level { SRV_LOG_DEBUG = 0, SRV_LOG_INFO = 1, SRV_LOG_WARN = 2, SRV_LOG_ERROR = 3 };
#endif
typedef void (*srv_log_fn)(int level, const char *msg);

/* ---- broker config -------------------------------------------------------------- */

typedef struct srv_listener {
    char name[32];  /* upper-cased listener name, e.g. "PLAINTEXT" */
    char host[256]; /* "" = all interfaces (only in listeners, never advertised) */
    uint16_t port;  /* 0 in listeners = any free port */
    uint8_t ipv6;   /* host was written in brackets or contains ':' */
    uint8_t proto;  /* SRV_PROTO_*, from listener.security.protocol.map */
} srv_listener;

enum srv_sec_proto { SRV_PROTO_PLAINTEXT = 0, SRV_PROTO_SSL, SRV_PROTO_SASL_PLAINTEXT, SRV_PROTO_SASL_SSL };
#define SRV_PROTO_IS_TLS(p)  ((p) == SRV_PROTO_SSL || (p) == SRV_PROTO_SASL_SSL)
#define SRV_PROTO_IS_SASL(p) ((p) == SRV_PROTO_SASL_PLAINTEXT || (p) == SRV_PROTO_SASL_SSL)

/* SASL mechanisms served (sasl.enabled.mechanisms). */
enum srv_sasl_mech {
    SRV_MECH_NONE = 0,
    SRV_MECH_PLAIN,
    SRV_MECH_OAUTHBEARER,
    SRV_MECH_SCRAM_SHA_256,
    SRV_MECH_SCRAM_SHA_512,
    SRV_MECH_COUNT
};
/* Kafka's name of mechanism m ("" for NONE), and the mechanism a name
 * spells (SRV_MECH_NONE when we do not serve it). */
const char *srv_sasl_mech_name(int m);
int srv_sasl_mech_from_name(const char *name);

/* ssl.*, sasl.* and listener.name.<l>.* values: kept apart from the key
 * table because inline PEM keys and JAAS lines outgrow SRV_CONFIG_VALUE_MAX,
 * and because DescribeConfigs must never show them (they hold secrets). */
#define SRV_SEC_KEYS_MAX  48
#define SRV_SEC_VALUE_MAX 16384
typedef struct srv_sec_kv {
    char key[SRV_CONFIG_NAME_MAX]; /* as written; listener names compared case-insensitively */
    char value[SRV_SEC_VALUE_MAX];
} srv_sec_kv;

enum srv_timestamp_type { SRV_TS_CREATE_TIME = 0, SRV_TS_LOG_APPEND_TIME = 1 };

typedef struct srv_config_value {
    char raw[SRV_CONFIG_VALUE_MAX]; /* canonical text of an explicitly set value */
    uint8_t set;                    /* 0 = not set: the default applies */
    uint8_t source;                 /* SRV_SOURCE_* when set */
} srv_config_value;

/* group.consumer.migration.policy: which way a non-empty group may change
 * protocol online (KIP-848); 0 is Kafka's default. */
enum { SRV_GMIG_BIDIRECTIONAL = 0, SRV_GMIG_UPGRADE = 1, SRV_GMIG_DOWNGRADE = 2, SRV_GMIG_DISABLED = 3 };
/* The server assignors of group.consumer.assignors. */
enum { SRV_ASSIGNOR_UNIFORM = 0, SRV_ASSIGNOR_RANGE = 1 };
#define SRV_ASSIGNORS_MAX 2

/* The SRV_GMIG_* of a valid policy value (any case). */
int srv_config_migration_policy(const char *v);
/* The SRV_ASSIGNOR_* of a valid assignors list, in order, without
 * duplicates; returns how many. */
int srv_config_assignors(const char *v, int8_t out[SRV_ASSIGNORS_MAX]);

/* One of controller.quorum.voters: id@host:port. */
#define SRV_MAX_VOTERS 9
typedef struct srv_voter {
    int32_t id;
    char host[256];
    uint16_t port;
} srv_voter;

typedef struct srv_config {
    /* Effective typed values, computed by srv_config_finish(). Names follow
     * the Kafka keys; times are milliseconds after precedence rules applied. */
    srv_listener listeners[SRV_MAX_LISTENERS]; /* controller listeners removed */
    int n_listeners;
    srv_listener advertised[SRV_MAX_LISTENERS];
    int n_advertised;
    char log_dirs[SRV_MAX_LOG_DIRS][SRV_CONFIG_VALUE_MAX]; /* log.dirs, else log.dir */
    int n_log_dirs;
    int32_t node_id;
    /* The metadata quorum (quorum.h): nvoters 0 keeps the single-node broker. */
    int nvoters;
    srv_voter voters[SRV_MAX_VOTERS];
    char ctl_host[256]; /* this node's controller listener: raft's transport */
    uint16_t ctl_port;
    char broker_rack[64]; /* "" = none */
    int64_t broker_session_timeout_ms;
    int64_t broker_heartbeat_interval_ms;
    int64_t metadata_snapshot_bytes; /* metadata.log.max.record.bytes.between.snapshots */
    int32_t num_partitions;
    int16_t default_replication_factor;
    int16_t offsets_topic_replication_factor;         /* applied with a metadata quorum */
    int16_t transaction_state_log_replication_factor; /* applied with a metadata quorum */
    int auto_create_topics_enable;
    int delete_topic_enable;
    int txn_partition_verification;         /* transaction.partition.verification.enable */
    int32_t test_txn_verification_delay_ms; /* kbroker.test.txn.verification.delay.ms (tests only) */
    int unstable_api_versions;              /* unstable.api.versions.enable */
    int64_t log_retention_ms;               /* log.retention.ms > .minutes > .hours; -1 = forever */
    int64_t log_retention_bytes;
    int32_t log_segment_bytes;
    int64_t log_roll_ms; /* log.roll.ms > log.roll.hours */
    int64_t log_retention_check_interval_ms;
    int64_t log_flush_interval_messages;
    int64_t log_flush_interval_ms; /* log.flush.interval.ms > log.flush.scheduler.interval.ms */
    int log_cleanup_compact;       /* log.cleanup.policy contains "compact" */
    int log_cleanup_delete;        /* log.cleanup.policy contains "delete" */
    int64_t log_cleaner_delete_retention_ms;
    int32_t log_index_interval_bytes;
    int log_message_timestamp_type; /* SRV_TS_* */
    int64_t log_message_timestamp_before_max_ms;
    int64_t log_message_timestamp_after_max_ms;
    char compression_type[16]; /* producer, uncompressed, gzip, snappy, lz4, zstd */
    int32_t message_max_bytes;
    int32_t min_insync_replicas;
    int32_t replica_socket_timeout_ms;
    int32_t socket_request_max_bytes;
    int32_t socket_send_buffer_bytes;    /* -1 = OS default */
    int32_t socket_receive_buffer_bytes; /* -1 = OS default */
    int32_t socket_listen_backlog_size;
    int32_t max_connections;
    int32_t max_connections_per_ip;
    char max_connections_per_ip_overrides[1024]; /* "host:count,..." */
    int32_t max_connection_creation_rate;
    int32_t quota_window_num;
    int32_t quota_window_size_seconds;
    int64_t connections_max_idle_ms;
    int64_t queued_max_request_bytes; /* -1 = unbounded */
    int32_t offsets_retention_minutes;
    int64_t offsets_retention_check_interval_ms;
    int32_t offsets_topic_num_partitions;
    int32_t offsets_topic_segment_bytes;
    int32_t group_initial_rebalance_delay_ms;
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    int32_t group_max_size;
    int32_t group_consumer_heartbeat_interval_ms; /* KIP-848 groups */
    int32_t group_consumer_session_timeout_ms;
    int32_t group_share_heartbeat_interval_ms; /* share groups (KIP-932) */
    int32_t group_share_session_timeout_ms;
    int32_t group_share_record_lock_duration_ms;
    int32_t group_share_delivery_count_limit;
    int32_t group_share_partition_max_record_locks;
    int32_t group_share_max_size;
    int32_t share_state_num_partitions;       /* share.coordinator.state.topic.* */
    int32_t share_state_updates_per_snapshot; /* share.coordinator.snapshot.update.records.per.snapshot */
    int32_t group_consumer_max_size;
    int group_consumer_migration;                       /* SRV_GMIG_* */
    int group_consumer_nassignors;                      /* group.consumer.assignors, in order */
    int8_t group_consumer_assignors[SRV_ASSIGNORS_MAX]; /* SRV_ASSIGNOR_* */
    int32_t transactional_id_expiration_ms;
    int32_t producer_id_expiration_ms;
    int32_t transaction_max_timeout_ms;
    int32_t transaction_state_log_num_partitions;
    int32_t transaction_state_log_segment_bytes;
    int32_t txn_abort_interval_ms;  /* transaction.abort.timed.out.transaction.cleanup.interval.ms */
    int32_t txn_expire_interval_ms; /* transaction.remove.expired.transaction.cleanup.interval.ms */
    int32_t shards;                 /* resolved: "shards" or --shards, 0 = online CPUs */
    int32_t metrics_port;           /* 0 = no metrics endpoint */
    int flush_sync_acks;            /* sync before acks=all answers (storage sync_acks) */

    int32_t log_max_open_files; /* 0 = derived from RLIMIT_NOFILE at start */

    int32_t sasl_server_max_receive_size; /* frames before authentication */
    int32_t connection_failed_authentication_delay_ms;
    int64_t ssl_reload_interval_ms; /* kbroker's own: key/trust store file check period, 0 = off */
    srv_sec_kv sec[SRV_SEC_KEYS_MAX];
    int n_sec;

    /* Raw values per known broker key (index = key table position), for
     * DescribeConfigs and for topic defaults. */
    srv_config_value vals[SRV_BROKER_KEYS_MAX];

    /* Unknown keys seen (each logged once). */
    char unknown[SRV_MAX_UNKNOWN_KEYS][SRV_CONFIG_NAME_MAX];
    int n_unknown;
    int n_unknown_dropped; /* distinct unknown keys beyond SRV_MAX_UNKNOWN_KEYS */

    uint8_t noted[SRV_BROKER_KEYS_MAX]; /* "does not apply" already logged */
    srv_log_fn log;                     /* may be NULL: silent */
} srv_config;

/* srv_config is large (~150 KiB): allocate it statically or on the heap. */

/* Embedded defaults; `log` receives warnings and notes (may be NULL). */
void srv_config_init(srv_config *cfg, srv_log_fn log);

/* Return codes of srv_config_parse_args besides 0 and the negative errors. */
#define SRV_CONFIG_HELP 1

/* Command line: [FILE] [--config FILE] [--set|--override key=value]...
 * [--shards N] [--metrics-port N] [--help|-h]. Long options also accept
 * --opt=value. Precedence regardless of argument order: embedded defaults <
 * config file < --set / --shards / --metrics-port (later ones win). Calls
 * srv_config_finish(). Returns 0, SRV_CONFIG_HELP (print srv_config_usage(),
 * exit 0), or a negative value with a message naming the key/value in err.
 * cfg must have been srv_config_init()ed. */
int srv_config_parse_args(int argc, char **argv, srv_config *cfg, char *err, size_t errlen);

/* The building blocks parse_args uses, for tests and embedding. */
int srv_config_load_file(srv_config *cfg, const char *path, char *err, size_t errlen);
int srv_config_load_string(srv_config *cfg, const char *text, size_t len, const char *origin, char *err,
                           size_t errlen);
/* Sets one key as a static broker config. Unknown keys are recorded and
 * logged once (returns 0); invalid values of known keys return -1. */
int srv_config_set(srv_config *cfg, const char *key, const char *value, char *err, size_t errlen);
/* Applies precedence rules and cross-key checks and fills the typed fields. */
int srv_config_finish(srv_config *cfg, char *err, size_t errlen);

const char *srv_config_usage(void);

/* Raw explicitly-set value of a broker key, NULL when unset or unknown. */
const char *srv_config_get_raw(const srv_config *cfg, const char *key);
/* A security key (ssl.*, sasl.*) as listener `listener` sees it: the
 * listener.name.<listener>.<key> override, else the plain key, else NULL.
 * For the JAAS line pass "plain.sasl.jaas.config": only
 * listener.name.<l>.plain.sasl.jaas.config counts; like Kafka's broker,
 * there is no fallback to the unprefixed sasl.jaas.config. */
/* A key of the ssl/sasl/authorizer table without a listener prefix, or NULL. */
const char *srv_config_sec_global(const srv_config *cfg, const char *key);
const char *srv_config_sec(const srv_config *cfg, const char *listener, const char *key);

/* 1 when `key` was seen as an unknown key. */
int srv_config_is_unknown(const srv_config *cfg, const char *key);

/* ---- DescribeConfigs ---------------------------------------------------------- */

typedef struct srv_config_synonym {
    const char *name;
    char value[SRV_CONFIG_VALUE_MAX];
    int value_null;
    int source;
} srv_config_synonym;

typedef struct srv_config_entry {
    const char *name;
    char value[SRV_CONFIG_VALUE_MAX];
    int value_null; /* Kafka sends null for keys without value or default */
    int source;     /* SRV_SOURCE_* */
    int type;       /* SRV_TYPE_* */
    int read_only;  /* broker keys: 1 (no dynamic broker config); topic keys: 0 */
    int sensitive;  /* PASSWORD keys (ssl.*.password, keys, JAAS): value always null */
    const char *doc;
    const char *default_value; /* NULL = no default */
    int n_synonyms;            /* highest precedence first, as Kafka orders them */
    srv_config_synonym synonyms[SRV_CONFIG_MAX_SYNONYMS];
} srv_config_entry;

/* Broker resource: iterate index = 0, 1, ... while it returns 1. */
size_t srv_config_key_count(void);
int srv_config_describe(const srv_config *cfg, size_t index, srv_config_entry *out);
/* By name: 0, or -1 for a key we do not know. */
int srv_config_describe_name(const srv_config *cfg, const char *name, srv_config_entry *out);
/* listener.name.<l>.<ssl.* or sasl.* key> as the configuration sees it,
 * also when it does not set it (a dynamic value may): 0, or -1 when name is
 * not such a key. out->name is name (kept by the caller). */
int srv_config_describe_listener_key(const srv_config *cfg, const char *name, srv_config_entry *out);

/* ---- value helpers, for every module that reads settings ---------------- */

/* Iterates the comma-separated items of a list value, trimmed. */
typedef struct srv_cfgk_list_iter {
    const char *p;
    int done;
} srv_cfgk_list_iter;
/* The next trimmed item of a list value: 1, or 0 past the last. */
int srv_cfgk_list_next(srv_cfgk_list_iter *it, char *item, size_t cap);
int srv_cfgk_list_contains(const char *list, const char *word);
/* Java's Long.parseLong: 0, or -1 when s is not one. */
int srv_cfgk_parse_i64(const char *s, int64_t *out);
/* Fills err (if any) with the formatted message and returns -1: the one
 * error path of the settings, key store and token parsers. */
int srv_cfgk_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

/*
 * config.c — broker configuration (see config.h).
 *
 * Owns: the broker key table below, the Java-properties parser, CLI parsing,
 * value validation and canonical forms (shared with topic_config.c through
 * config_keys.h) and DescribeConfigs entries for the broker. Topic keys and
 * override sets are topic_config.c's.
 *
 * Must not: do I/O besides reading the config file in srv_config_load_file();
 * print; keep mutable globals (every table here is const). After
 * srv_config_finish() the srv_config is only read, by many shards at once.
 */
#include "config.h"

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_keys.h"
#include "principal_map.h"
#include "srv_assert.h"
#include "errors.h"

/* ---- small helpers ---------------------------------------------------------- */

int srv_cfgk_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void logf_(const srv_config *cfg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(const srv_config *cfg, int level, const char *fmt, ...)
{
    if (!cfg->log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg->log(level, msg);
}

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\n' || c == '\r' || c == '\v';
}

/* Copies s[0..n) trimmed of surrounding whitespace into out (cap bytes).
 * Returns -1 when it does not fit. */
static int trim_copy(const char *s, size_t n, char *out, size_t cap)
{
    while (n && is_ws((unsigned char)s[0])) {
        s++;
        n--;
    }
    while (n && is_ws((unsigned char)s[n - 1]))
        n--;
    if (n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* Java's Long.parseLong: optional sign, decimal digits, nothing else. */
int srv_cfgk_parse_i64(const char *s, int64_t *out)
{
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!*p)
        return -1;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || is_ws((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

static int has_ctrl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

int srv_cfgk_list_next(srv_cfgk_list_iter *it, char *item, size_t cap)
{
    if (it->done)
        return 0;
    const char *comma = strchr(it->p, ',');
    size_t n = comma ? (size_t)(comma - it->p) : strlen(it->p);
    if (trim_copy(it->p, n, item, cap) != 0)
        item[0] = '\0', item[cap - 1] = '\0';
    if (comma)
        it->p = comma + 1;
    else
        it->done = 1;
    return 1;
}

int srv_cfgk_list_contains(const char *list, const char *word)
{
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {list, !*list};
    while (srv_cfgk_list_next(&it, item, sizeof(item)))
        if (strcmp(item, word) == 0)
            return 1;
    return 0;
}

/* ---- key descriptions ---------------------------------------------------------- */

const char *const srv_cfgk_ch_cleanup[] = {"compact", "delete", NULL};
const char *const srv_cfgk_ch_compression[] = {"uncompressed", "zstd",     "lz4", "snappy",
                                               "gzip",         "producer", NULL};
const char *const srv_cfgk_ch_ts_type[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const CH_PROTOCOL[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", NULL};

static int check_listeners(const char *v, char *why, size_t n);
static int check_assignors(const char *v, char *why, size_t n);
static int check_migration_policy(const char *v, char *why, size_t n);
static int check_protocol_map(const char *v, char *why, size_t n);

static int check_nonempty_list(const char *v, char *why, size_t n)
{
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {v, 0};
    while (srv_cfgk_list_next(&it, item, sizeof(item)))
        if (!item[0])
            return srv_cfgk_fail(why, n, "empty list item");
    return 0;
}

int srv_cfgk_check_gzip_level(const char *v, char *why, size_t n)
{
    int64_t x = 0;
    srv_cfgk_parse_i64(v, &x);
    if (x != -1 && (x < 1 || x > 9))
        return srv_cfgk_fail(why, n, "must be -1 (default) or between 1 and 9");
    return 0;
}

/* MetadataVersion-like strings: 3.0, 3.0-IV1, 2.8-IV0, 0.10.2 ... */
int srv_cfgk_check_version(const char *v, char *why, size_t n)
{
    const char *p = v;
    int digits = 0;
    while (isdigit((unsigned char)*p) || *p == '.') {
        digits += isdigit((unsigned char)*p) != 0;
        p++;
    }
    if (digits && *p == '-' && p[1] == 'I' && p[2] == 'V' && isdigit((unsigned char)p[3])) {
        p += 3;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (!digits || *p || v[0] == '.')
        return srv_cfgk_fail(why, n, "not a Kafka version such as 3.0 or 3.0-IV1");
    return 0;
}

/* The assignor a group.consumer.assignors item names: its short name or
 * Kafka's class name (-1: none we run). */
static int assignor_index(const char *item)
{
    static const char *const names[][2] = {
        {"uniform", "org.apache.kafka.coordinator.group.assignor.UniformAssignor"},
        {"range", "org.apache.kafka.coordinator.group.assignor.RangeAssignor"},
    };
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (strcmp(item, names[i][0]) == 0 || strcmp(item, names[i][1]) == 0)
            return i;
    return -1;
}

int srv_config_assignors(const char *v, int8_t out[SRV_ASSIGNORS_MAX])
{
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {v, !*v};
    int n = 0;
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        int idx = assignor_index(item), dup = 0;
        for (int k = 0; k < n; k++)
            dup |= out[k] == idx;
        if (idx >= 0 && !dup && n < SRV_ASSIGNORS_MAX)
            out[n++] = (int8_t)idx;
    }
    return n;
}

/* Kafka loads each item as a class: an unknown one stops the broker. */
static int check_assignors(const char *v, char *why, size_t n)
{
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {v, !*v};
    int count = 0;
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        if (assignor_index(item) < 0)
            return srv_cfgk_fail(why, n, "unknown assignor '%.100s' (supported: uniform, range)", item);
        count++;
    }
    if (count == 0)
        return srv_cfgk_fail(why, n, "at least one assignor is required");
    return 0;
}

int srv_config_migration_policy(const char *v)
{
    if (strcasecmp(v, "disabled") == 0)
        return SRV_GMIG_DISABLED;
    if (strcasecmp(v, "upgrade") == 0)
        return SRV_GMIG_UPGRADE;
    if (strcasecmp(v, "downgrade") == 0)
        return SRV_GMIG_DOWNGRADE;
    return SRV_GMIG_BIDIRECTIONAL;
}

/* Kafka's validator ignores case. */
static int check_migration_policy(const char *v, char *why, size_t n)
{
    if (strcasecmp(v, "disabled") && strcasecmp(v, "upgrade") && strcasecmp(v, "downgrade") &&
        strcasecmp(v, "bidirectional"))
        return srv_cfgk_fail(why, n, "must be one of [disabled, upgrade, downgrade, bidirectional]");
    return 0;
}

/*
 * Broker keys. Defaults are Kafka 3.9's except where config.h says otherwise.
 * Order is the DescribeConfigs order. Every broker synonym of a topic key must
 * be here (the tests check).
 */
static const keydef BKEYS[] = {
    /* our own keys */
    {"shards", SRV_TYPE_INT, USE_APPLY, "0", 0, 1024, NULL, NULL,
     "Number of shards (threads pinned to cores); 0 = number of online CPUs. Also --shards.", NULL},
    {"metrics.port", SRV_TYPE_INT, USE_APPLY, "0", 0, 65535, NULL, NULL,
     "Port of the Prometheus metrics HTTP endpoint; 0 = disabled. Also --metrics-port.", NULL},
    {"flush.sync.acks", SRV_TYPE_BOOLEAN, USE_APPLY, "true", 0, 0, NULL, NULL,
     "Answer acks=all produce requests only after fdatasync made the data durable; when false, "
     "flush.messages/flush.ms drive syncs.",
     NULL},
    {"log.max.open.files", SRV_TYPE_INT, USE_APPLY, "0", 0, INT32_MAX, NULL, NULL,
     "Segment files kept open at once (split over the shards); idle ones beyond it are closed and reopened "
     "on demand. 0 = half of RLIMIT_NOFILE, the rest is left to connections.",
     NULL},
    /* identity and network */
    {"node.id", SRV_TYPE_INT, USE_APPLY, "1", -1, INT32_MAX, NULL, NULL,
     "Id of this node (Kafka's default is -1 = required; ours is 1). Same as broker.id.", NULL},
    {"broker.id", SRV_TYPE_INT, USE_APPLY, "1", -1, INT32_MAX, NULL, NULL,
     "Legacy name of node.id; -1 means the default. Must match node.id when both are set.", NULL},
    {"listeners", SRV_TYPE_LIST, USE_APPLY, "PLAINTEXT://localhost:9092", 0, 0, NULL, check_listeners,
     "Comma-separated NAME://host:port addresses to listen on; empty host = all interfaces "
     "(Kafka's default is PLAINTEXT://:9092).",
     NULL},
    {"advertised.listeners", SRV_TYPE_LIST, USE_APPLY, NULL, 0, 0, NULL, check_listeners,
     "Addresses given to clients in Metadata; defaults to listeners, an empty host becomes localhost.", NULL},
    {"listener.security.protocol.map", SRV_TYPE_STRING, USE_APPLY,
     "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", 0, 0, NULL,
     check_protocol_map,
     "Listener name to security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); a listener must be "
     "in it.",
     NULL},
    {"sasl.server.max.receive.size", SRV_TYPE_INT, USE_APPLY, "524288", 1, INT32_MAX, NULL, NULL,
     "Largest frame a SASL listener accepts before the client has authenticated.", NULL},
    {"ssl.reload.interval.ms", SRV_TYPE_LONG, USE_APPLY, "30000", 0, 86400000, NULL, NULL,
     "kbroker's own: how often the key and trust store files of SSL and SASL_SSL listeners are checked; a "
     "changed file is loaded off the event loops and used by new connections (0: only through "
     "IncrementalAlterConfigs).",
     NULL},
    {"connection.failed.authentication.delay.ms", SRV_TYPE_INT, USE_APPLY, "100", 0, INT32_MAX, NULL, NULL,
     "A failed authentication is answered (and its connection closed) only after this delay, which bounds "
     "how fast one connection can guess passwords.",
     NULL},
    {"socket.request.max.bytes", SRV_TYPE_INT, USE_APPLY, "104857600", 1, INT32_MAX, NULL, NULL,
     "Largest request frame accepted; a bigger frame closes the connection.", NULL},
    {"socket.send.buffer.bytes", SRV_TYPE_INT, USE_APPLY, "102400", -1, INT32_MAX, NULL, NULL,
     "SO_SNDBUF of client sockets; -1 = operating-system default.", NULL},
    {"socket.receive.buffer.bytes", SRV_TYPE_INT, USE_APPLY, "102400", -1, INT32_MAX, NULL, NULL,
     "SO_RCVBUF of client sockets; -1 = operating-system default.", NULL},
    {"socket.listen.backlog.size", SRV_TYPE_INT, USE_APPLY, "50", 1, INT32_MAX, NULL, NULL,
     "listen() backlog of each listening socket.", NULL},
    {"max.connections", SRV_TYPE_INT, USE_APPLY, "2147483647", 0, INT32_MAX, NULL, NULL,
     "Most client connections open at once; further ones are closed on accept.", NULL},
    {"max.connections.per.ip", SRV_TYPE_INT, USE_APPLY, "2147483647", 0, INT32_MAX, NULL, NULL,
     "Most connections from one address; further ones are closed on accept.", NULL},
    {"max.connections.per.ip.overrides", SRV_TYPE_STRING, USE_APPLY, "", 0, 0, NULL, NULL,
     "Per-address limits instead of max.connections.per.ip: a list of host:count.", NULL},
    {"max.connection.creation.rate", SRV_TYPE_INT, USE_APPLY, "2147483647", 0, INT32_MAX, NULL, NULL,
     "New connections per second a listener accepts; accepting waits when it is reached.", NULL},
    {"quota.window.num", SRV_TYPE_INT, USE_APPLY, "11", 1, 64, NULL, NULL,
     "Samples kept in memory for client quotas.", NULL},
    {"quota.window.size.seconds", SRV_TYPE_INT, USE_APPLY, "1", 1, INT32_MAX, NULL, NULL,
     "Time span of each sample for client quotas.", NULL},
    {"connections.max.idle.ms", SRV_TYPE_LONG, USE_APPLY, "600000", 0, 0, NULL, NULL,
     "Close connections idle for longer than this.", NULL},
    {"queued.max.request.bytes", SRV_TYPE_LONG, USE_APPLY, "-1", 0, 0, NULL, NULL,
     "Bytes of requests in flight before reading stops (backpressure); -1 = only the per-connection bound.",
     NULL},
    /* storage */
    {"log.dirs", SRV_TYPE_LIST, USE_APPLY, NULL, 0, 0, NULL, check_nonempty_list,
     "Directories holding partition data; overrides log.dir.", NULL},
    {"log.dir", SRV_TYPE_STRING, USE_APPLY, "./data", 0, 0, NULL, NULL,
     "Data directory used when log.dirs is not set (Kafka's default is /tmp/kafka-logs).", NULL},
    {"num.partitions", SRV_TYPE_INT, USE_APPLY, "1", 1, INT32_MAX, NULL, NULL,
     "Partitions of auto-created topics and of CreateTopics without a count.", NULL},
    {"default.replication.factor", SRV_TYPE_INT, USE_APPLY, "1", 1, INT16_MAX, NULL, NULL,
     "Replication factor of topics created without one; must be 1 on a single-node broker.", NULL},
    {"auto.create.topics.enable", SRV_TYPE_BOOLEAN, USE_APPLY, "true", 0, 0, NULL, NULL,
     "Create a topic when a client asks Metadata or produces to one that does not exist.", NULL},
    {"delete.topic.enable", SRV_TYPE_BOOLEAN, USE_APPLY, "true", 0, 0, NULL, NULL, "Allow DeleteTopics.",
     NULL},
    {"unstable.api.versions.enable", SRV_TYPE_BOOLEAN, USE_APPLY, "false", 0, 0, NULL, NULL,
     "Serve and advertise the APIs whose implementation is not complete yet (marked unstable in "
     "server/handlers/dispatch.c), as Kafka's own setting does for its unreleased APIs. For tests.",
     NULL},
    {"transaction.partition.verification.enable", SRV_TYPE_BOOLEAN, USE_APPLY, "true", 0, 0, NULL, NULL,
     "true: a partition asks the transaction coordinator before taking transactional batches (KIP-890); "
     "with no coordinator yet, they are refused. false: partitions take them unverified. Static here "
     "(dynamic in Kafka).",
     NULL},
    {"kbroker.test.txn.verification.delay.ms", SRV_TYPE_INT, USE_APPLY, "0", 0, 10000, NULL, NULL,
     "Test-only (compat-tests/py/test_txn_guard.py): verified transactional batches wait this long before "
     "going to their partitions, so a test can land a transaction's markers in between. 0 in production.",
     NULL},
    {"log.retention.ms", SRV_TYPE_LONG, USE_APPLY, NULL, 0, 0, NULL, NULL,
     "Time to keep a log segment; wins over log.retention.minutes and .hours; -1 = forever.", NULL},
    {"log.retention.minutes", SRV_TYPE_INT, USE_APPLY, NULL, 0, 0, NULL, NULL,
     "Retention in minutes, used when log.retention.ms is not set.", NULL},
    {"log.retention.hours", SRV_TYPE_INT, USE_APPLY, "168", 0, 0, NULL, NULL,
     "Retention in hours, used when neither log.retention.ms nor .minutes is set.", NULL},
    {"log.retention.bytes", SRV_TYPE_LONG, USE_APPLY, "-1", 0, 0, NULL, NULL,
     "Largest size of a partition before old segments are deleted; -1 = unlimited.", NULL},
    {"log.retention.check.interval.ms", SRV_TYPE_LONG, USE_APPLY, "300000", 1, INT64_MAX, NULL, NULL,
     "How often retention is checked.", NULL},
    {"log.segment.bytes", SRV_TYPE_INT, USE_APPLY, "1073741824", 14, INT32_MAX, NULL, NULL,
     "Size at which a segment is rolled.", NULL},
    {"log.roll.ms", SRV_TYPE_LONG, USE_APPLY, NULL, 1, INT64_MAX, NULL, NULL,
     "Age at which a segment is rolled; wins over log.roll.hours.", NULL},
    {"log.roll.hours", SRV_TYPE_INT, USE_APPLY, "168", 1, INT32_MAX, NULL, NULL,
     "Segment roll age in hours, used when log.roll.ms is not set.", NULL},
    {"log.roll.jitter.ms", SRV_TYPE_LONG, USE_IGNORED, NULL, 0, INT64_MAX, NULL, NULL,
     "Random jitter subtracted from the roll age.", "segments roll exactly at segment.ms"},
    {"log.roll.jitter.hours", SRV_TYPE_INT, USE_IGNORED, "0", 0, INT32_MAX, NULL, NULL,
     "Roll jitter in hours.", "segments roll exactly at segment.ms"},
    {"log.flush.interval.messages", SRV_TYPE_LONG, USE_APPLY, I64MAX, 1, INT64_MAX, NULL, NULL,
     "With flush.sync.acks=false: fdatasync after this many appends.", NULL},
    {"log.flush.interval.ms", SRV_TYPE_LONG, USE_APPLY, NULL, 0, 0, NULL, NULL,
     "With flush.sync.acks=false: fdatasync data older than this; wins over "
     "log.flush.scheduler.interval.ms.",
     NULL},
    {"log.flush.scheduler.interval.ms", SRV_TYPE_LONG, USE_APPLY, I64MAX, 0, 0, NULL, NULL,
     "Time-based flush interval used when log.flush.interval.ms is not set.", NULL},
    {"log.cleanup.policy", SRV_TYPE_LIST, USE_APPLY, "delete", 0, 0, srv_cfgk_ch_cleanup, NULL,
     "Default cleanup policy: delete (retention) and/or compact.", NULL},
    {"log.cleaner.enable", SRV_TYPE_BOOLEAN, USE_IGNORED, "true", 0, 0, NULL, NULL, "Run the log cleaner.",
     "compacted topics are always compacted"},
    {"log.cleaner.delete.retention.ms", SRV_TYPE_LONG, USE_APPLY, "86400000", 0, INT64_MAX, NULL, NULL,
     "How long tombstones are kept in compacted topics.", NULL},
    {"log.cleaner.min.cleanable.ratio", SRV_TYPE_DOUBLE, USE_IGNORED, "0.5", 0, 1, NULL, NULL,
     "Dirty ratio above which a compacted log is cleaned.",
     "the storage engine schedules compaction by a periodic check"},
    {"log.cleaner.min.compaction.lag.ms", SRV_TYPE_LONG, USE_IGNORED, "0", 0, INT64_MAX, NULL, NULL,
     "Minimum age of a record before compaction.", "the storage engine compacts sealed segments only"},
    {"log.cleaner.max.compaction.lag.ms", SRV_TYPE_LONG, USE_IGNORED, I64MAX, 1, INT64_MAX, NULL, NULL,
     "Maximum time a record stays uncompacted.",
     "the storage engine schedules compaction by a periodic check"},
    {"log.cleaner.threads", SRV_TYPE_INT, USE_IGNORED, "1", 0, INT32_MAX, NULL, NULL, "Log cleaner threads.",
     "compaction runs on each partition's shard"},
    {"log.index.interval.bytes", SRV_TYPE_INT, USE_APPLY, "4096", 0, INT32_MAX, NULL, NULL,
     "Bytes between offset index entries.", NULL},
    {"log.index.size.max.bytes", SRV_TYPE_INT, USE_IGNORED, "10485760", 4, INT32_MAX, NULL, NULL,
     "Largest offset index file.", "indexes are sized by the storage engine"},
    {"log.segment.delete.delay.ms", SRV_TYPE_LONG, USE_IGNORED, "60000", 0, INT64_MAX, NULL, NULL,
     "Delay before a deleted segment's files are removed.", "segments are removed when retention drops them"},
    {"log.preallocate", SRV_TYPE_BOOLEAN, USE_IGNORED, "false", 0, 0, NULL, NULL,
     "Preallocate segment files.", "segments grow with O_DIRECT block writes"},
    {"log.message.timestamp.type", SRV_TYPE_STRING, USE_APPLY, "CreateTime", 0, 0, srv_cfgk_ch_ts_type, NULL,
     "Record timestamps: CreateTime (producer's) or LogAppendTime (broker's).", NULL},
    {"log.message.timestamp.difference.max.ms", SRV_TYPE_LONG, USE_APPLY, I64MAX, 0, INT64_MAX, NULL, NULL,
     "Deprecated: largest allowed distance between a CreateTime timestamp and the broker clock.", NULL},
    {"log.message.timestamp.before.max.ms", SRV_TYPE_LONG, USE_APPLY, I64MAX, 0, INT64_MAX, NULL, NULL,
     "How far in the past a CreateTime timestamp may be.", NULL},
    {"log.message.timestamp.after.max.ms", SRV_TYPE_LONG, USE_APPLY, I64MAX, 0, INT64_MAX, NULL, NULL,
     "How far in the future a CreateTime timestamp may be.", NULL},
    {"log.message.downconversion.enable", SRV_TYPE_BOOLEAN, USE_IGNORED, "true", 0, 0, NULL, NULL,
     "Down-convert batches for old fetch versions.", "only record batch format v2 is served"},
    {"log.message.format.version", SRV_TYPE_STRING, USE_IGNORED, "3.0-IV1", 0, 0, NULL,
     srv_cfgk_check_version, "Deprecated on-disk message format version.",
     "record batch format v2 is always used"},
    {"log.local.retention.ms", SRV_TYPE_LONG, USE_IGNORED, "-2", -2, INT64_MAX, NULL, NULL,
     "Local retention with tiered storage.", "tiered storage is not supported"},
    {"log.local.retention.bytes", SRV_TYPE_LONG, USE_IGNORED, "-2", -2, INT64_MAX, NULL, NULL,
     "Local retention size with tiered storage.", "tiered storage is not supported"},
    {"message.max.bytes", SRV_TYPE_INT, USE_APPLY, "1048588", 0, INT32_MAX, NULL, NULL,
     "Largest record batch accepted, including its 12-byte offset/length header.", NULL},
    {"compression.type", SRV_TYPE_STRING, USE_APPLY, "producer", 0, 0, srv_cfgk_ch_compression, NULL,
     "Final compression of stored batches; producer = keep the producer's.", NULL},
    {"compression.gzip.level", SRV_TYPE_INT, USE_APPLY, "-1", 0, 0, NULL, srv_cfgk_check_gzip_level,
     "gzip level when the broker recompresses.", NULL},
    {"compression.lz4.level", SRV_TYPE_INT, USE_APPLY, "9", 1, 17, NULL, NULL,
     "lz4 level when the broker recompresses.", NULL},
    {"compression.zstd.level", SRV_TYPE_INT, USE_APPLY, "3", -131072, 22, NULL, NULL,
     "zstd level when the broker recompresses.", NULL},
    {"min.insync.replicas", SRV_TYPE_INT, USE_APPLY, "1", 1, INT32_MAX, NULL, NULL,
     "acks=all on a replicated partition needs this many in-sync replicas (else NOT_ENOUGH_REPLICAS); "
     "a single node and replication factor 1 do not check it.",
     NULL},
    {"unclean.leader.election.enable", SRV_TYPE_BOOLEAN, USE_CLUSTER, "false", 0, 0, NULL, NULL,
     "Allow out-of-sync replicas to become leader.", "there is no other replica"},
    /* groups, offsets, transactions */
    {"offsets.retention.minutes", SRV_TYPE_INT, USE_APPLY, "10080", 1, INT32_MAX, NULL, NULL,
     "Committed offsets of an empty group are kept this long.", NULL},
    {"offsets.retention.check.interval.ms", SRV_TYPE_LONG, USE_APPLY, "600000", 1, INT64_MAX, NULL, NULL,
     "How often expired offsets are removed.", NULL},
    {"offsets.topic.num.partitions", SRV_TYPE_INT, USE_APPLY, "50", 1, INT32_MAX, NULL, NULL,
     "Partitions of __consumer_offsets (fixed once created).", NULL},
    {"offsets.topic.segment.bytes", SRV_TYPE_INT, USE_APPLY, "104857600", 1, INT32_MAX, NULL, NULL,
     "Segment size of __consumer_offsets.", NULL},
    {"offsets.topic.replication.factor", SRV_TYPE_SHORT, USE_APPLY, "1", 1, INT16_MAX, NULL, NULL,
     "Replication factor of __consumer_offsets with a metadata quorum (Kafka default 3; kbroker 1, so that "
     "a single node or a two-node quorum needs no setting).",
     NULL},
    {"group.initial.rebalance.delay.ms", SRV_TYPE_INT, USE_APPLY, "3000", 0, INT32_MAX, NULL, NULL,
     "Wait for more members before the first rebalance of an empty group.", NULL},
    {"group.min.session.timeout.ms", SRV_TYPE_INT, USE_APPLY, "6000", 0, INT32_MAX, NULL, NULL,
     "Smallest session timeout a consumer may ask for.", NULL},
    {"group.max.session.timeout.ms", SRV_TYPE_INT, USE_APPLY, "1800000", 0, INT32_MAX, NULL, NULL,
     "Largest session timeout a consumer may ask for.", NULL},
    {"group.max.size", SRV_TYPE_INT, USE_APPLY, "2147483647", 1, INT32_MAX, NULL, NULL,
     "Most members in one consumer group.", NULL},
    {"group.consumer.heartbeat.interval.ms", SRV_TYPE_INT, USE_APPLY, "5000", 1, INT32_MAX, NULL, NULL,
     "Heartbeat interval given to members of consumer-protocol (KIP-848) groups.", NULL},
    {"group.consumer.session.timeout.ms", SRV_TYPE_INT, USE_APPLY, "45000", 1, INT32_MAX, NULL, NULL,
     "Session timeout of members of consumer-protocol (KIP-848) groups.", NULL},
    /* Share groups (KIP-932), Kafka's names and defaults. */
    {"group.share.heartbeat.interval.ms", SRV_TYPE_INT, USE_APPLY, "5000", 1, INT32_MAX, NULL, NULL,
     "Heartbeat interval given to members of share groups.", NULL},
    {"group.share.session.timeout.ms", SRV_TYPE_INT, USE_APPLY, "45000", 1, INT32_MAX, NULL, NULL,
     "Session timeout of members of share groups.", NULL},
    {"group.share.min.record.lock.duration.ms", SRV_TYPE_INT, USE_APPLY, "15000", 1000, 3600000, NULL, NULL,
     "Smallest record lock duration a share group may be given.", NULL},
    {"group.share.max.record.lock.duration.ms", SRV_TYPE_INT, USE_APPLY, "60000", 1000, 3600000, NULL, NULL,
     "Largest record lock duration a share group may be given.", NULL},
    {"group.share.min.session.timeout.ms", SRV_TYPE_INT, USE_APPLY, "45000", 1, INT32_MAX, NULL, NULL,
     "Smallest session timeout a share group may be given.", NULL},
    {"group.share.max.session.timeout.ms", SRV_TYPE_INT, USE_APPLY, "60000", 1, INT32_MAX, NULL, NULL,
     "Largest session timeout a share group may be given.", NULL},
    {"group.share.min.heartbeat.interval.ms", SRV_TYPE_INT, USE_APPLY, "5000", 1, INT32_MAX, NULL, NULL,
     "Smallest heartbeat interval a share group may be given.", NULL},
    {"group.share.max.heartbeat.interval.ms", SRV_TYPE_INT, USE_APPLY, "15000", 1, INT32_MAX, NULL, NULL,
     "Largest heartbeat interval a share group may be given.", NULL},
    {"group.share.min.delivery.count.limit", SRV_TYPE_INT, USE_APPLY, "2", 2, 10, NULL, NULL,
     "Smallest delivery count limit a share group may be given.", NULL},
    {"group.share.max.delivery.count.limit", SRV_TYPE_INT, USE_APPLY, "10", 2, 10, NULL, NULL,
     "Largest delivery count limit a share group may be given.", NULL},
    {"group.share.min.partition.max.record.locks", SRV_TYPE_INT, USE_APPLY, "100", 100, 10000, NULL, NULL,
     "Smallest share.partition.max.record.locks a share group may be given.", NULL},
    {"group.share.max.partition.max.record.locks", SRV_TYPE_INT, USE_APPLY, "4000", 100, 10000, NULL, NULL,
     "Largest share.partition.max.record.locks a share group may be given.", NULL},
    {"group.share.record.lock.duration.ms", SRV_TYPE_INT, USE_APPLY, "30000", 1000, 3600000, NULL, NULL,
     "How long a record delivered to a share consumer stays locked to it before it is offered again.", NULL},
    {"group.share.delivery.count.limit", SRV_TYPE_INT, USE_APPLY, "5", 2, 10, NULL, NULL,
     "Deliveries of one record to share consumers before it is archived.", NULL},
    {"group.share.partition.max.record.locks", SRV_TYPE_INT, USE_APPLY, "2000", 100, 10000, NULL, NULL,
     "Most records in flight (acquired or waiting) per share-partition.", NULL},
    {"group.share.max.size", SRV_TYPE_INT, USE_APPLY, "200", 1, 1000, NULL, NULL,
     "Most members in one share group.", NULL},
    {"share.coordinator.state.topic.num.partitions", SRV_TYPE_INT, USE_APPLY, "50", 1, INT32_MAX, NULL, NULL,
     "Partitions of __share_group_state.", NULL},
    {"share.coordinator.snapshot.update.records.per.snapshot", SRV_TYPE_INT, USE_APPLY, "500", 0, 500, NULL,
     NULL, "ShareUpdate records of one share-partition between two of its ShareSnapshot records.", NULL},
    {"group.consumer.max.size", SRV_TYPE_INT, USE_APPLY, "2147483647", 1, INT32_MAX, NULL, NULL,
     "Most members in one consumer-protocol (KIP-848) group, classic members of it included.", NULL},
    {"group.consumer.assignors", SRV_TYPE_LIST, USE_APPLY, "uniform,range", 0, 0, NULL, check_assignors,
     "Server assignors members may ask for (uniform, range, or their Kafka class names); the first is the "
     "default.",
     NULL},
    {"group.consumer.migration.policy", SRV_TYPE_STRING, USE_APPLY, "bidirectional", 0, 0, NULL,
     check_migration_policy,
     "Online conversion of non-empty groups between the classic and the consumer protocol: disabled, "
     "upgrade, "
     "downgrade or bidirectional.",
     NULL},
    {"transactional.id.expiration.ms", SRV_TYPE_INT, USE_APPLY, "604800000", 1, INT32_MAX, NULL, NULL,
     "A transactional id idle this long is forgotten.", NULL},
    {"producer.id.expiration.ms", SRV_TYPE_INT, USE_APPLY, "86400000", 1, INT32_MAX, NULL, NULL,
     "Idempotent producer state idle this long is dropped.", NULL},
    {"transaction.max.timeout.ms", SRV_TYPE_INT, USE_APPLY, "900000", 1, INT32_MAX, NULL, NULL,
     "Largest transaction timeout a producer may ask for.", NULL},
    {"transaction.state.log.num.partitions", SRV_TYPE_INT, USE_APPLY, "50", 1, INT32_MAX, NULL, NULL,
     "Partitions of __transaction_state.", NULL},
    {"transaction.state.log.segment.bytes", SRV_TYPE_INT, USE_APPLY, "104857600", 1, INT32_MAX, NULL, NULL,
     "Segment size of __transaction_state.", NULL},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms", SRV_TYPE_INT, USE_APPLY, "10000", 1,
     INT32_MAX, NULL, NULL, "How often the transaction coordinator aborts transactions past their timeout.",
     NULL},
    {"transaction.remove.expired.transaction.cleanup.interval.ms", SRV_TYPE_INT, USE_APPLY, "3600000", 1,
     INT32_MAX, NULL, NULL, "How often the transaction coordinator forgets expired transactional ids.", NULL},
    {"transaction.state.log.replication.factor", SRV_TYPE_SHORT, USE_APPLY, "1", 1, INT16_MAX, NULL, NULL,
     "Replication factor of __transaction_state with a metadata quorum (Kafka default 3; kbroker 1).", NULL},
    {"transaction.state.log.min.isr", SRV_TYPE_INT, USE_CLUSTER, "1", 1, INT32_MAX, NULL, NULL,
     "min.insync.replicas of __transaction_state (Kafka default 2).", "internal topics have one replica"},
    {"transaction.state.log.load.buffer.size", SRV_TYPE_INT, USE_IGNORED, "5242880", 1, INT32_MAX, NULL, NULL,
     "Read size when __transaction_state is loaded.", "the load reads 1 MiB at a time"},
    /* thread pools of Kafka's architecture */
    {"num.network.threads", SRV_TYPE_INT, USE_IGNORED, "3", 1, INT32_MAX, NULL, NULL,
     "Kafka network threads.", "connections are served by shards (see shards)"},
    {"num.io.threads", SRV_TYPE_INT, USE_IGNORED, "8", 1, INT32_MAX, NULL, NULL,
     "Kafka request handler threads.", "requests are served by shards (see shards)"},
    {"num.recovery.threads.per.data.dir", SRV_TYPE_INT, USE_IGNORED, "1", 1, INT32_MAX, NULL, NULL,
     "Kafka log recovery threads.", "each shard recovers its own partitions"},
    {"background.threads", SRV_TYPE_INT, USE_IGNORED, "10", 1, INT32_MAX, NULL, NULL,
     "Kafka background threads.", "background work runs on the shards"},
    {"queued.max.requests", SRV_TYPE_INT, USE_IGNORED, "500", 1, INT32_MAX, NULL, NULL,
     "Kafka request queue length.", "there is no request queue between threads"},
    /* cluster: ZooKeeper, KRaft, replication */
    {"zookeeper.connect", SRV_TYPE_STRING, USE_CLUSTER, NULL, 0, 0, NULL, NULL,
     "ZooKeeper connection string.", "there is no ZooKeeper"},
    {"zookeeper.connection.timeout.ms", SRV_TYPE_INT, USE_CLUSTER, NULL, 0, 0, NULL, NULL,
     "ZooKeeper timeout.", "there is no ZooKeeper"},
    {"zookeeper.session.timeout.ms", SRV_TYPE_INT, USE_CLUSTER, "18000", 0, 0, NULL, NULL,
     "ZooKeeper session timeout.", "there is no ZooKeeper"},
    {"process.roles", SRV_TYPE_LIST, USE_APPLY, "", 0, 0, NULL, NULL,
     "KRaft roles of this node: broker,controller (combined) with a quorum, else nothing.", NULL},
    {"controller.quorum.voters", SRV_TYPE_LIST, USE_APPLY, "", 0, 0, NULL, NULL,
     "The metadata quorum's voters, id@host:port,...: empty keeps the single-node broker.", NULL},
    {"controller.quorum.bootstrap.servers", SRV_TYPE_LIST, USE_CLUSTER, "", 0, 0, NULL, NULL,
     "KRaft controller bootstrap servers.", "there is no controller quorum"},
    {"controller.listener.names", SRV_TYPE_STRING, USE_APPLY, NULL, 0, 0, NULL, NULL,
     "Listeners used by KRaft controllers: the quorum's raft transport listens on the first.", NULL},
    {"inter.broker.listener.name", SRV_TYPE_STRING, USE_CLUSTER, NULL, 0, 0, NULL, NULL,
     "Listener for broker-to-broker traffic.", "there are no other brokers"},
    {"security.inter.broker.protocol", SRV_TYPE_STRING, USE_CLUSTER, "PLAINTEXT", 0, 0, CH_PROTOCOL, NULL,
     "Protocol for broker-to-broker traffic.", "there are no other brokers"},
    {"metadata.log.dir", SRV_TYPE_STRING, USE_CLUSTER, NULL, 0, 0, NULL, NULL,
     "KRaft metadata log directory.", "metadata lives in the first log directory"},
    {"broker.rack", SRV_TYPE_STRING, USE_APPLY, NULL, 0, 0, NULL, NULL,
     "Rack of this broker, registered with the metadata quorum.", NULL},
    {"metadata.log.max.record.bytes.between.snapshots", SRV_TYPE_LONG, USE_APPLY, "20971520", 1, INT64_MAX,
     NULL, NULL,
     "With a metadata quorum: bytes of committed metadata records after which a node snapshots its state.",
     NULL},
    {"broker.session.timeout.ms", SRV_TYPE_INT, USE_APPLY, "9000", 1, INT32_MAX, NULL, NULL,
     "A registered broker not heard from for this long is fenced by the active controller.", NULL},
    {"broker.heartbeat.interval.ms", SRV_TYPE_INT, USE_APPLY, "2000", 1, INT32_MAX, NULL, NULL,
     "How often a broker heartbeats to the active controller.", NULL},
    {"num.replica.fetchers", SRV_TYPE_INT, USE_CLUSTER, "1", 1, INT32_MAX, NULL, NULL,
     "Replica fetcher threads.", "there are no followers"},
    {"replica.lag.time.max.ms", SRV_TYPE_LONG, USE_CLUSTER, "30000", 0, 0, NULL, NULL,
     "Follower lag before it leaves the ISR.", "there are no followers"},
    {"replica.socket.timeout.ms", SRV_TYPE_INT, USE_APPLY, "30000", 1, INT32_MAX, NULL, NULL,
     "A follower's fetch not answered this long after the leader's long poll closes its connection.", NULL},
    {"auto.leader.rebalance.enable", SRV_TYPE_BOOLEAN, USE_CLUSTER, "true", 0, 0, NULL, NULL,
     "Move leadership back to preferred replicas.", "this node leads every partition"},
};

#define N_BKEYS (sizeof(BKEYS) / sizeof(BKEYS[0]))
_Static_assert(sizeof(BKEYS) / sizeof(BKEYS[0]) <= SRV_BROKER_KEYS_MAX, "raise SRV_BROKER_KEYS_MAX");

/* Broker keys that stand for one setting, highest precedence first. */
static const char *const BGROUPS[][4] = {
    {"log.retention.ms", "log.retention.minutes", "log.retention.hours", NULL},
    {"log.roll.ms", "log.roll.hours", NULL, NULL},
    {"log.roll.jitter.ms", "log.roll.jitter.hours", NULL, NULL},
    {"log.flush.interval.ms", "log.flush.scheduler.interval.ms", NULL, NULL},
    {"log.dirs", "log.dir", NULL, NULL},
    {"node.id", "broker.id", NULL, NULL},
};

int srv_cfgk_bkey_find(const char *name)
{
    for (size_t i = 0; i < N_BKEYS; i++)
        if (strcmp(BKEYS[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- validation ------------------------------------------------------------------ */

static const char *type_word(int type)
{
    switch (type) {
    case SRV_TYPE_BOOLEAN:
        return "a boolean (true/false)";
    case SRV_TYPE_INT:
        return "a 32-bit integer";
    case SRV_TYPE_SHORT:
        return "a 16-bit integer";
    case SRV_TYPE_LONG:
        return "a 64-bit integer";
    case SRV_TYPE_DOUBLE:
        return "a number";
    default:
        return "a string";
    }
}

/* Validates `in` for key k and writes its canonical form (trimmed; integers
 * without sign/leading zeros; booleans lower-case; list items trimmed and
 * comma-joined). Errors name the key and the value. */
int srv_cfgk_canon(const keydef *k, const char *in, char *out, size_t cap, char *err, size_t errlen)
{
    char v[SRV_CONFIG_VALUE_MAX];
    char why[256] = "";
    if (trim_copy(in, strlen(in), v, sizeof(v)) != 0 || strlen(v) >= cap)
        return srv_cfgk_fail(err, errlen, "invalid value for config '%s': longer than %d bytes", k->name,
                             SRV_CONFIG_VALUE_MAX - 1);
    if (has_ctrl(v))
        return srv_cfgk_fail(err, errlen, "invalid value for config '%s': contains control characters",
                             k->name);

    switch (k->type) {
    case SRV_TYPE_BOOLEAN:
        if (strcasecmp(v, "true") == 0)
            snprintf(out, cap, "true");
        else if (strcasecmp(v, "false") == 0)
            snprintf(out, cap, "false");
        else
            return srv_cfgk_fail(
                err, errlen, "invalid value '%.200s' for config '%s': expected true or false", v, k->name);
        return 0;
    case SRV_TYPE_INT:
    case SRV_TYPE_SHORT:
    case SRV_TYPE_LONG: {
        int64_t x;
        int64_t lo = k->type == SRV_TYPE_INT ? INT32_MIN : k->type == SRV_TYPE_SHORT ? INT16_MIN : INT64_MIN;
        int64_t hi = k->type == SRV_TYPE_INT ? INT32_MAX : k->type == SRV_TYPE_SHORT ? INT16_MAX : INT64_MAX;
        if (srv_cfgk_parse_i64(v, &x) != 0 || x < lo || x > hi)
            return srv_cfgk_fail(err, errlen, "invalid value '%.200s' for config '%s': expected %s", v,
                                 k->name, type_word(k->type));
        if ((k->min || k->max) && (x < k->min || x > k->max)) {
            if (k->max == INT64_MAX || k->max == hi)
                return srv_cfgk_fail(err, errlen,
                                     "invalid value '%.200s' for config '%s': must be at least %lld", v,
                                     k->name, (long long)k->min);
            return srv_cfgk_fail(err, errlen,
                                 "invalid value '%.200s' for config '%s': must be between %lld and %lld", v,
                                 k->name, (long long)k->min, (long long)k->max);
        }
        snprintf(out, cap, "%lld", (long long)x);
        break;
    }
    case SRV_TYPE_DOUBLE: {
        double d;
        if (parse_double(v, &d) != 0)
            return srv_cfgk_fail(err, errlen, "invalid value '%.200s' for config '%s': expected a number", v,
                                 k->name);
        if ((k->min || k->max) && (d < (double)k->min || d > (double)k->max))
            return srv_cfgk_fail(err, errlen,
                                 "invalid value '%.200s' for config '%s': must be between %lld and %lld", v,
                                 k->name, (long long)k->min, (long long)k->max);
        snprintf(out, cap, "%s", v);
        break;
    }
    case SRV_TYPE_LIST: {
        /* Kafka splits on commas with surrounding whitespace; "" = empty list. */
        char item[SRV_CONFIG_VALUE_MAX];
        size_t len = 0;
        srv_cfgk_list_iter it = {v, !*v};
        out[0] = '\0';
        while (srv_cfgk_list_next(&it, item, sizeof(item))) {
            if (k->choices) {
                int ok = 0;
                for (const char *const *c = k->choices; *c; c++)
                    ok |= strcmp(*c, item) == 0;
                if (!ok) {
                    char allowed[256] = "";
                    for (const char *const *c = k->choices; *c; c++)
                        snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
                                 c == k->choices ? "" : ", ", *c);
                    return srv_cfgk_fail(
                        err, errlen, "invalid value '%.200s' for config '%s': '%.100s' is not one of [%s]", v,
                        k->name, item, allowed);
                }
            }
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", item);
        }
        break;
    }
    default: /* STRING */
        if (k->choices) {
            int ok = 0;
            char allowed[256] = "";
            for (const char *const *c = k->choices; *c; c++) {
                ok |= strcmp(*c, v) == 0;
                snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
                         c == k->choices ? "" : ", ", *c);
            }
            if (!ok)
                return srv_cfgk_fail(err, errlen,
                                     "invalid value '%.200s' for config '%s': must be one of [%s]", v,
                                     k->name, allowed);
        }
        snprintf(out, cap, "%s", v);
        break;
    }
    if (k->check && k->check(out, why, sizeof(why)) != 0)
        return srv_cfgk_fail(err, errlen, "invalid value '%.200s' for config '%s': %s", v, k->name, why);
    return 0;
}

/* ---- listeners ---------------------------------------------------------------- */

static int parse_listener(const char *item, srv_listener *l, char *why, size_t n)
{
    memset(l, 0, sizeof(*l));
    const char *sep = strstr(item, "://");
    if (!sep || sep == item)
        return srv_cfgk_fail(why, n, "listener '%.100s' is not of the form NAME://host:port", item);
    size_t nl = (size_t)(sep - item);
    if (nl >= sizeof(l->name))
        return srv_cfgk_fail(why, n, "listener name in '%.100s' is too long", item);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)item[i];
        if (!isalnum(c) && c != '_' && c != '-')
            return srv_cfgk_fail(
                why, n, "listener name in '%.100s' may only contain letters, digits, '_' and '-'", item);
        l->name[i] = (char)toupper(c);
    }
    const char *hp = sep + 3, *port;
    size_t hl;
    if (*hp == '[') {
        const char *close = strchr(hp, ']');
        if (!close || close[1] != ':')
            return srv_cfgk_fail(why, n, "listener '%.100s': bad [IPv6]:port", item);
        hp++;
        hl = (size_t)(close - hp);
        port = close + 2;
        l->ipv6 = 1;
    } else {
        const char *colon = strrchr(hp, ':');
        if (!colon)
            return srv_cfgk_fail(why, n, "listener '%.100s' has no port", item);
        hl = (size_t)(colon - hp);
        port = colon + 1;
    }
    if (hl >= sizeof(l->host))
        return srv_cfgk_fail(why, n, "listener '%.100s': host name too long", item);
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)hp[i];
        if (!isalnum(c) && c != '-' && c != '%' && c != '.' && c != '_' && c != ':')
            return srv_cfgk_fail(why, n, "listener '%.100s': invalid character in host", item);
        if (c == ':')
            l->ipv6 = 1;
    }
    memcpy(l->host, hp, hl);
    l->host[hl] = '\0';
    int64_t p;
    if (srv_cfgk_parse_i64(port, &p) != 0 || p < 0 || p > 65535 || *port == '+' || *port == '-')
        return srv_cfgk_fail(why, n, "listener '%.100s': port must be a number from 0 to 65535", item);
    l->port = (uint16_t)p;
    return 0;
}

static int parse_listeners(const char *v, srv_listener *out, int max, int *count, char *why, size_t n)
{
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {v, !*v};
    int c = 0;
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        if (c == max)
            return srv_cfgk_fail(why, n, "more than %d listeners", max);
        if (parse_listener(item, &out[c], why, n) != 0)
            return -1;
        for (int j = 0; j < c; j++)
            if (strcmp(out[j].name, out[c].name) == 0)
                return srv_cfgk_fail(why, n, "listener name %s is used twice", out[c].name);
        c++;
    }
    if (c == 0)
        return srv_cfgk_fail(why, n, "no listener given");
    *count = c;
    return 0;
}

static int check_listeners(const char *v, char *why, size_t n)
{
    srv_listener tmp[SRV_MAX_LISTENERS];
    int c;
    return parse_listeners(v, tmp, SRV_MAX_LISTENERS, &c, why, n);
}

/* Looks up listener `name` in a protocol map "NAME:PROTO,...". Writes the
 * upper-cased protocol into proto; returns -1 when the map has no entry. */
static int protocol_of(const char *map, const char *name, char *proto, size_t cap)
{
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {map, !*map};
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        char *colon = strchr(item, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char k[SRV_CONFIG_VALUE_MAX], p[64];
        if (trim_copy(item, strlen(item), k, sizeof(k)) ||
            trim_copy(colon + 1, strlen(colon + 1), p, sizeof(p)))
            continue;
        if (strcasecmp(k, name) == 0) {
            size_t i;
            for (i = 0; p[i] && i + 1 < cap; i++)
                proto[i] = (char)toupper((unsigned char)p[i]);
            proto[i] = '\0';
            return 0;
        }
    }
    return -1;
}

static int check_protocol_map(const char *v, char *why, size_t n)
{
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {v, !*v};
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        char *colon = strchr(item, ':');
        if (!colon || colon == item || !colon[1])
            return srv_cfgk_fail(why, n, "entry '%.100s' is not NAME:PROTOCOL", item);
        char p[64];
        if (trim_copy(colon + 1, strlen(colon + 1), p, sizeof(p)) != 0)
            return srv_cfgk_fail(why, n, "entry '%.100s': unknown security protocol", item);
        int ok = 0;
        for (const char *const *c = CH_PROTOCOL; *c; c++)
            ok |= strcasecmp(*c, p) == 0;
        if (!ok)
            return srv_cfgk_fail(why, n, "entry '%.100s': unknown security protocol '%s'", item, p);
    }
    return 0;
}

/* ---- broker config: values --------------------------------------------------- */

void srv_config_init(srv_config *cfg, srv_log_fn log)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log = log;
}

/* Current text of broker key i: explicit value, else default, else NULL. */
static const char *bval(const srv_config *cfg, size_t i)
{
    if (cfg->vals[i].set)
        return cfg->vals[i].raw;
    return BKEYS[i].def;
}

static const char *bval_name(const srv_config *cfg, const char *name)
{
    int i = srv_cfgk_bkey_find(name);
    return i < 0 ? NULL : bval(cfg, (size_t)i);
}

static int bset(const srv_config *cfg, const char *name)
{
    int i = srv_cfgk_bkey_find(name);
    return i >= 0 && cfg->vals[i].set;
}

/* Typed read of a value that srv_cfgk_canon() already validated (or a default). */
static int64_t bi64(const srv_config *cfg, const char *name)
{
    const char *v = bval_name(cfg, name);
    int64_t x = 0;
    if (v)
        srv_cfgk_parse_i64(v, &x);
    return x;
}

static int bbool(const srv_config *cfg, const char *name)
{
    const char *v = bval_name(cfg, name);
    return v && strcmp(v, "true") == 0;
}

static void note_unknown(srv_config *cfg, const char *key)
{
    for (int i = 0; i < cfg->n_unknown; i++)
        if (strncmp(cfg->unknown[i], key, SRV_CONFIG_NAME_MAX - 1) == 0)
            return;
    if (cfg->n_unknown == SRV_MAX_UNKNOWN_KEYS) {
        /* Past the bound we cannot dedupe; count and stay quiet. */
        cfg->n_unknown_dropped++;
        return;
    }
    snprintf(cfg->unknown[cfg->n_unknown++], SRV_CONFIG_NAME_MAX, "%s", key);
    /* Never the value: unknown keys include passwords (ssl.*, sasl.*). */
    logf_(cfg, SRV_LOG_WARN, "unknown config key '%.120s' ignored", key);
}

static const char *const SASL_MECH_NAMES[SRV_MECH_COUNT] = {
    [SRV_MECH_NONE] = "",
    [SRV_MECH_PLAIN] = "PLAIN",
    [SRV_MECH_OAUTHBEARER] = "OAUTHBEARER",
    [SRV_MECH_SCRAM_SHA_256] = "SCRAM-SHA-256",
    [SRV_MECH_SCRAM_SHA_512] = "SCRAM-SHA-512",
};

const char *srv_sasl_mech_name(int m)
{
    SRV_ASSERT(m >= 0 && m < SRV_MECH_COUNT, "SASL mechanism %d out of range", m);
    return SASL_MECH_NAMES[m];
}

int srv_sasl_mech_from_name(const char *name)
{
    for (int m = SRV_MECH_NONE + 1; m < SRV_MECH_COUNT; m++)
        if (strcmp(name, SASL_MECH_NAMES[m]) == 0)
            return m;
    return SRV_MECH_NONE;
}

/* The ssl.* and sasl.* keys this broker reads (config.h: srv_config_sec). */
static const char *const SEC_KEYS[] = {
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "plain.sasl.jaas.config",
    "oauthbearer.sasl.jaas.config",
    "oauthbearer.sasl.server.callback.handler.class",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "kbroker.sasl.oauthbearer.jwks.endpoint.ca.file",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.clock.skew.seconds",
    "connections.max.reauth.ms",
    "scram-sha-256.sasl.jaas.config",
    "scram-sha-512.sasl.jaas.config",
    /* The authorizer's (authz.h); like Kafka's, not broker configs listed
     * by DescribeConfigs, and super.users can outgrow a broker value. */
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    NULL,
};

static int is_sec_key(const char *key)
{
    for (const char *const *k = SEC_KEYS; *k; k++)
        if (strcmp(*k, key) == 0)
            return 1;
    /* A mechanism's own copy (listener.name.<l>.oauthbearer.<key>, Kafka's
     * per-mechanism settings) of a key that is not already one. */
    if (strncmp(key, "oauthbearer.", 12) == 0)
        return is_sec_key(key + 12);
    static const char reauth[] = "connections.max.reauth.ms";
    static const char *const mech_prefixes[] = {"plain.", "scram-sha-256.", "scram-sha-512."};
    for (size_t i = 0; i < sizeof(mech_prefixes) / sizeof(mech_prefixes[0]); i++) {
        size_t pl = strlen(mech_prefixes[i]);
        if (strncmp(key, mech_prefixes[i], pl) == 0 && strcmp(key + pl, reauth) == 0)
            return 1;
    }
    return 0;
}

/* "listener.name.<l>.<key>": the position of <key>, or NULL. */
static const char *listener_key_suffix(const char *key, size_t *name_len)
{
    static const char pre[] = "listener.name.";
    if (strncmp(key, pre, sizeof(pre) - 1) != 0)
        return NULL;
    const char *name = key + sizeof(pre) - 1, *dot = strchr(name, '.');
    if (!dot || dot == name)
        return NULL;
    *name_len = (size_t)(dot - name);
    return dot + 1;
}

static int sec_store(srv_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    size_t vl = strlen(value);
    if (vl >= SRV_SEC_VALUE_MAX || strlen(key) >= SRV_CONFIG_NAME_MAX)
        return srv_cfgk_fail(err, errlen, "value of config '%.120s' is too long (at most %d bytes)", key,
                             SRV_SEC_VALUE_MAX - 1);
    srv_sec_kv *kv = NULL;
    for (int i = 0; i < cfg->n_sec && !kv; i++)
        if (strcasecmp(cfg->sec[i].key, key) == 0)
            kv = &cfg->sec[i];
    if (!kv) {
        if (cfg->n_sec == SRV_SEC_KEYS_MAX)
            return srv_cfgk_fail(err, errlen, "more than %d ssl/sasl keys", SRV_SEC_KEYS_MAX);
        kv = &cfg->sec[cfg->n_sec++];
        snprintf(kv->key, sizeof(kv->key), "%s", key);
    }
    memcpy(kv->value, value, vl + 1);
    return 0;
}

static const char *sec_get(const srv_config *cfg, const char *key)
{
    for (int i = 0; i < cfg->n_sec; i++)
        if (strcasecmp(cfg->sec[i].key, key) == 0)
            return cfg->sec[i].value;
    return NULL;
}

const char *srv_config_sec(const srv_config *cfg, const char *listener, const char *key)
{
    char full[SRV_CONFIG_NAME_MAX * 2];
    snprintf(full, sizeof(full), "listener.name.%s.%s", listener, key);
    const char *v = sec_get(cfg, full);
    if (v)
        return v;
    /* A broker reads its JAAS line only listener- and mechanism-prefixed:
     * Kafka 4.4 refuses to start with just sasl.jaas.config (checked). */
    static const char jaas[] = ".sasl.jaas.config";
    size_t kl = strlen(key);
    if ((kl > sizeof(jaas) - 1 && strcmp(key + kl - (sizeof(jaas) - 1), jaas) == 0) ||
        strcmp(key, "oauthbearer.sasl.server.callback.handler.class") == 0)
        return NULL;
    return sec_get(cfg, key);
}

const char *srv_config_sec_global(const srv_config *cfg, const char *key)
{
    return sec_get(cfg, key);
}

int srv_config_set(srv_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    size_t lname = 0;
    const char *suffix = listener_key_suffix(key, &lname);
    if (is_sec_key(key) || (suffix && is_sec_key(suffix)))
        return sec_store(cfg, key, value, err, errlen);
    if (suffix &&
        (strcmp(suffix, "max.connections") == 0 || strcmp(suffix, "max.connection.creation.rate") == 0)) {
        /* Per-listener connection limits (throttle_conn.h), read with
         * srv_config_sec like the per-listener TLS keys. */
        int64_t v;
        if (srv_cfgk_parse_i64(value, &v) != 0 || v < 0 || v > INT32_MAX)
            return srv_cfgk_fail(
                err, errlen, "Invalid value %s for configuration %s: Not a number of type INT", value, key);
        return sec_store(cfg, key, value, err, errlen);
    }
    int i = srv_cfgk_bkey_find(key);
    if (i < 0) {
        note_unknown(cfg, key);
        return 0;
    }
    const keydef *k = &BKEYS[i];
    char out[SRV_CONFIG_VALUE_MAX];
    if (srv_cfgk_canon(k, value, out, sizeof(out), err, errlen) != 0)
        return -1;
    memcpy(cfg->vals[i].raw, out, strlen(out) + 1);
    cfg->vals[i].set = 1;
    cfg->vals[i].source = SRV_SOURCE_STATIC_BROKER_CONFIG;
    if (k->use != USE_APPLY && !cfg->noted[i]) {
        cfg->noted[i] = 1;
        if (k->use == USE_CLUSTER)
            logf_(cfg, SRV_LOG_INFO, "config '%s' does not apply to a single-node broker (%s): ignored",
                  k->name, k->note);
        else
            logf_(cfg, SRV_LOG_INFO, "config '%s' is accepted but has no effect here: %s", k->name, k->note);
    }
    return 0;
}

const char *srv_config_get_raw(const srv_config *cfg, const char *key)
{
    int i = srv_cfgk_bkey_find(key);
    return i >= 0 && cfg->vals[i].set ? cfg->vals[i].raw : NULL;
}

int srv_config_is_unknown(const srv_config *cfg, const char *key)
{
    for (int i = 0; i < cfg->n_unknown; i++)
        if (strcmp(cfg->unknown[i], key) == 0)
            return 1;
    return 0;
}

/* ---- Java properties ---------------------------------------------------------- */

static int is_pws(char c)
{
    return c == ' ' || c == '\t' || c == '\f';
}

static void put_utf8(char *out, size_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(const char *s, size_t n, uint32_t *out)
{
    if (n < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Java's loadConvert: \t \n \r \f, \uXXXX (UTF-8 out, surrogate pairs
 * joined), any other \c is c. out needs room for 1.5 * n + 1 bytes. */
static int unescape(const char *s, size_t n, char *out, size_t *olen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i == n)
            break; /* lone trailing backslash (continuation at end of file): dropped */
        c = s[i];
        switch (c) {
        case 't':
            out[o++] = '\t';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(s + i + 1, n - i - 1, &cp) != 0)
                return -1;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 2 < n && s[i + 1] == '\\' && s[i + 2] == 'u' &&
                hex4(s + i + 3, n - i - 3, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                return -1; /* unpaired surrogate: not representable in UTF-8 */
            }
            put_utf8(out, &o, cp);
            break;
        }
        default:
            out[o++] = c;
        }
    }
    out[o] = '\0';
    *olen = o;
    return 0;
}

static int apply_line(srv_config *cfg, const char *line, size_t n, const char *origin, int lineno, char *err,
                      size_t errlen)
{
    /* Key ends at the first unescaped '=', ':' or whitespace; then
     * whitespace, at most one '=' or ':', whitespace; the rest is the value. */
    size_t p = 0;
    while (p < n) {
        char c = line[p];
        if (c == '\\') {
            p += 2;
            continue;
        }
        if (c == '=' || c == ':' || is_pws(c))
            break;
        p++;
    }
    if (p > n)
        p = n; /* a trailing backslash in the key */
    size_t kend = p;
    while (p < n && is_pws(line[p]))
        p++;
    if (p < n && (line[p] == '=' || line[p] == ':'))
        p++;
    while (p < n && is_pws(line[p]))
        p++;

    char *key = malloc(kend * 2 + 1), *val = malloc((n - p) * 2 + 1);
    int rc = 0;
    size_t kl, vl;
    if (!key || !val) {
        rc = srv_cfgk_fail(err, errlen, "%s:%d: out of memory", origin, lineno);
    } else if (unescape(line, kend, key, &kl) != 0 || unescape(line + p, n - p, val, &vl) != 0) {
        rc = srv_cfgk_fail(err, errlen, "%s:%d: malformed \\u escape (four hex digits expected)", origin,
                           lineno);
    } else if (strlen(key) != kl || strlen(val) != vl) {
        rc = srv_cfgk_fail(err, errlen, "%s:%d: \\u0000 is not allowed", origin, lineno);
    } else if (kl == 0) {
        logf_(cfg, SRV_LOG_WARN, "%s:%d: line without a key ignored", origin, lineno);
    } else {
        char e[512];
        if (srv_config_set(cfg, key, val, e, sizeof(e)) != 0)
            rc = srv_cfgk_fail(err, errlen, "%s:%d: %s", origin, lineno, e);
    }
    free(key);
    free(val);
    return rc;
}

int srv_config_load_string(srv_config *cfg, const char *s, size_t n, const char *origin, char *err,
                           size_t errlen)
{
    char *logical = malloc(n + 1);
    if (!logical)
        return srv_cfgk_fail(err, errlen, "%s: out of memory", origin);
    size_t i = 0;
    int lineno = 0, rc = 0;
    while (i < n && rc == 0) {
        lineno++;
        int first = lineno;
        while (i < n && is_pws(s[i]))
            i++;
        if (i < n && (s[i] == '#' || s[i] == '!')) {
            /* Comment lines are never continued, even when they end in '\'. */
            while (i < n && s[i] != '\n' && s[i] != '\r')
                i++;
        }
        if (i >= n || s[i] == '\n' || s[i] == '\r') {
            if (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            i++;
            continue;
        }
        size_t L = 0;
        for (;;) {
            size_t ls = i;
            while (i < n && s[i] != '\n' && s[i] != '\r')
                i++;
            size_t le = i, bs = 0;
            while (le - bs > ls && s[le - bs - 1] == '\\')
                bs++;
            int cont = bs % 2 == 1; /* an odd run of backslashes escapes the newline */
            size_t take = le - ls - (cont ? 1 : 0);
            memcpy(logical + L, s + ls, take);
            L += take;
            if (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            if (i < n)
                i++;
            if (!cont || i >= n)
                break;
            lineno++;
            while (i < n && is_pws(s[i])) /* leading whitespace of a continuation line is dropped */
                i++;
        }
        rc = apply_line(cfg, logical, L, origin, first, err, errlen);
    }
    free(logical);
    return rc;
}

int srv_config_load_file(srv_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return srv_cfgk_fail(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
    char *buf = malloc(SRV_CONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return srv_cfgk_fail(err, errlen, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, SRV_CONFIG_FILE_MAX + 1, f);
    int rerr = ferror(f);
    fclose(f);
    int rc;
    if (rerr)
        rc = srv_cfgk_fail(err, errlen, "cannot read config file %s", path);
    else if (n > SRV_CONFIG_FILE_MAX)
        rc = srv_cfgk_fail(err, errlen, "config file %s is larger than %d bytes", path, SRV_CONFIG_FILE_MAX);
    else
        rc = srv_config_load_string(cfg, buf, n, path, err, errlen);
    free(buf);
    return rc;
}

/* ---- broker config: finishing ------------------------------------------------ */

static int is_controller_listener(const srv_config *cfg, const char *name)
{
    const char *names = bval_name(cfg, "controller.listener.names");
    if (!names)
        return 0;
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {names, !*names};
    while (srv_cfgk_list_next(&it, item, sizeof(item)))
        if (strcasecmp(item, name) == 0)
            return 1;
    return 0;
}

/* How many voters controller.quorum.voters lists: a quorum needs two or
 * more; one (Kafka's single-node sample, the docker images) keeps the
 * single-node broker and its local metadata log, as before quorums. */
static int quorum_voters(const srv_config *cfg)
{
    const char *voters = bval_name(cfg, "controller.quorum.voters");
    if (!voters || !*voters)
        return 0;
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {voters, 0};
    int n = 0;
    while (srv_cfgk_list_next(&it, item, sizeof(item)))
        n++;
    return n;
}

static int is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* What can be checked without reading a file: the key material itself is
 * loaded (and its errors reported) by tls.c and sasl.c at start. */
static int finish_listener_security(srv_config *cfg, const srv_listener *l, char *err, size_t errlen)
{
    const char *ln = l->name;
    if (SRV_PROTO_IS_SASL(l->proto)) {
        const char *mechs = srv_config_sec(cfg, ln, "sasl.enabled.mechanisms");
        if (!mechs)
            mechs = "GSSAPI"; /* Kafka's default */
        char item[SRV_CONFIG_VALUE_MAX];
        srv_cfgk_list_iter it = {mechs, !*mechs};
        int n = 0;
        while (srv_cfgk_list_next(&it, item, sizeof(item))) {
            int mech = srv_sasl_mech_from_name(item);
            if (mech == SRV_MECH_NONE)
                return srv_cfgk_fail(err, errlen,
                                     "listener %s: SASL mechanism '%.60s' in sasl.enabled.mechanisms is not "
                                     "supported by this broker (supported: PLAIN, SCRAM-SHA-256, "
                                     "SCRAM-SHA-512, OAUTHBEARER)",
                                     ln, item);
            if (mech == SRV_MECH_OAUTHBEARER) {
                n++; /* its settings are checked where its validator is built (oauth.c) */
                continue;
            }
            const char *jaas_key = mech == SRV_MECH_PLAIN           ? "plain.sasl.jaas.config"
                                   : mech == SRV_MECH_SCRAM_SHA_256 ? "scram-sha-256.sasl.jaas.config"
                                                                    : "scram-sha-512.sasl.jaas.config";
            /* Kafka loads a JAAS entry per enabled mechanism and fails the
             * start without one; SCRAM's carries no users (they live in the
             * metadata log) but must name ScramLoginModule. */
            const char *jaas = srv_config_sec(cfg, ln, jaas_key);
            if (!jaas)
                return srv_cfgk_fail(err, errlen,
                                     "listener %s: no JAAS configuration for mechanism %s: set "
                                     "listener.name.%s.%s (brokers do not read the unprefixed "
                                     "sasl.jaas.config, as in Kafka)",
                                     ln, item, ln, jaas_key);
            static const char scram_module[] = "org.apache.kafka.common.security.scram.ScramLoginModule";
            if (jaas_key[0] == 's' && strstr(jaas, scram_module) == NULL)
                return srv_cfgk_fail(err, errlen, "listener %s: %s must use %s", ln, jaas_key, scram_module);
            n++;
        }
        if (n == 0)
            return srv_cfgk_fail(err, errlen, "listener %s uses %s but sasl.enabled.mechanisms is empty", ln,
                                 CH_PROTOCOL[l->proto]);
    }
    if (l->proto == SRV_PROTO_SSL) {
        /* Kafka refuses the start on an invalid rule, with this message. */
        const char *rules = srv_config_sec(cfg, ln, "ssl.principal.mapping.rules");
        char why[SRV_CONFIG_VALUE_MAX];
        srv_pmap *pm = rules ? srv_pmap_parse(rules, strlen(rules), why, sizeof(why)) : NULL;
        if (rules && !pm)
            return srv_cfgk_fail(err, errlen, "listener %s: ssl.principal.mapping.rules: %s", ln, why);
        srv_pmap_free(pm);
    }
    if (SRV_PROTO_IS_TLS(l->proto)) {
        const char *type = srv_config_sec(cfg, ln, "ssl.keystore.type");
        if (!type)
            type = "JKS"; /* Kafka's default */
        if (strcasecmp(type, "JKS") == 0)
            return srv_cfgk_fail(
                err, errlen,
                "listener %s: ssl.keystore.type JKS is not supported; convert the keystore "
                "to PKCS12 (keytool -importkeystore -srckeystore ks.jks -destkeystore ks.p12 "
                "-deststoretype PKCS12) or use PEM, and set ssl.keystore.type",
                ln);
        if (strcasecmp(type, "PEM") != 0 && strcasecmp(type, "PKCS12") != 0)
            return srv_cfgk_fail(err, errlen,
                                 "listener %s: unknown ssl.keystore.type '%.40s' (PEM or PKCS12)", ln, type);
        int inline_pem = srv_config_sec(cfg, ln, "ssl.keystore.certificate.chain") != NULL;
        if (!inline_pem && !srv_config_sec(cfg, ln, "ssl.keystore.location"))
            return srv_cfgk_fail(err, errlen,
                                 "listener %s uses %s but has no key: set ssl.keystore.location (or, with "
                                 "type PEM, ssl.keystore.certificate.chain and ssl.keystore.key)",
                                 ln, CH_PROTOCOL[l->proto]);
        const char *ttype = srv_config_sec(cfg, ln, "ssl.truststore.type");
        if (srv_config_sec(cfg, ln, "ssl.truststore.location") && (!ttype || strcasecmp(ttype, "JKS") == 0))
            return srv_cfgk_fail(err, errlen,
                                 "listener %s: ssl.truststore.type JKS is not supported; convert the "
                                 "truststore to PKCS12 or PEM and set ssl.truststore.type",
                                 ln);
        const char *protos = srv_config_sec(cfg, ln, "ssl.enabled.protocols");
        if (protos) {
            char item[SRV_CONFIG_VALUE_MAX];
            srv_cfgk_list_iter it = {protos, !*protos};
            while (srv_cfgk_list_next(&it, item, sizeof(item)))
                if (strcmp(item, "TLSv1.2") != 0 && strcmp(item, "TLSv1.3") != 0)
                    return srv_cfgk_fail(err, errlen,
                                         "listener %s: ssl.enabled.protocols item '%.40s' is not supported "
                                         "(TLSv1.2, TLSv1.3)",
                                         ln, item);
        }
        const char *ca = srv_config_sec(cfg, ln, "ssl.client.auth");
        if (ca && strcmp(ca, "none") != 0 && strcmp(ca, "requested") != 0 && strcmp(ca, "required") != 0)
            return srv_cfgk_fail(
                err, errlen,
                "Invalid value %.40s for configuration ssl.client.auth: String must be one of: "
                "required, requested, none",
                ca);
    }
    return 0;
}

static int finish_listeners(srv_config *cfg, char *err, size_t errlen)
{
    char why[256];
    srv_listener all[SRV_MAX_LISTENERS];
    int n_all = 0;
    const char *map = bval_name(cfg, "listener.security.protocol.map");
    if (parse_listeners(bval_name(cfg, "listeners"), all, SRV_MAX_LISTENERS, &n_all, why, sizeof(why)) != 0)
        return srv_cfgk_fail(err, errlen, "invalid value for config 'listeners': %s", why);
    cfg->n_listeners = 0;
    for (int i = 0; i < n_all; i++) {
        if (is_controller_listener(cfg, all[i].name)) {
            if (quorum_voters(cfg) < 2)
                logf_(cfg, SRV_LOG_INFO, "listener %s is a KRaft controller listener: not opened",
                      all[i].name);
            if (!cfg->ctl_port) { /* the first is raft's transport (quorum.c) */
                snprintf(cfg->ctl_host, sizeof(cfg->ctl_host), "%s", all[i].host);
                cfg->ctl_port = all[i].port;
            }
            continue;
        }
        char proto[64];
        if (protocol_of(map, all[i].name, proto, sizeof(proto)) != 0)
            /* Kafka's wording, so the same mistake reads the same on both. */
            return srv_cfgk_fail(
                err, errlen,
                "Error creating broker listeners from '%.200s': No security protocol defined "
                "for listener %s",
                bval_name(cfg, "listeners"), all[i].name);
        int pi = 0;
        while (CH_PROTOCOL[pi] && strcmp(CH_PROTOCOL[pi], proto) != 0)
            pi++;
        SRV_ASSERT(CH_PROTOCOL[pi], "protocol %s passed check_protocol_map but is unknown", proto);
        all[i].proto = (uint8_t)pi;
        if (finish_listener_security(cfg, &all[i], err, errlen) != 0)
            return -1;
        for (int j = 0; j < cfg->n_listeners; j++)
            if (all[i].port && cfg->listeners[j].port == all[i].port)
                return srv_cfgk_fail(err, errlen, "listeners %s and %s use the same port %u",
                                     cfg->listeners[j].name, all[i].name, all[i].port);
        cfg->listeners[cfg->n_listeners++] = all[i];
    }
    if (cfg->n_listeners == 0)
        return srv_cfgk_fail(err, errlen, "config 'listeners' has no client listener");

    /* advertised.listeners: explicit, or derived from listeners. Clients
     * cannot connect to a wildcard address, so neither may advertise one. */
    const char *adv = bval_name(cfg, "advertised.listeners");
    srv_listener tmp[SRV_MAX_LISTENERS];
    int n_adv = 0;
    if (adv) {
        if (parse_listeners(adv, tmp, SRV_MAX_LISTENERS, &n_adv, why, sizeof(why)) != 0)
            return srv_cfgk_fail(err, errlen, "invalid value for config 'advertised.listeners': %s", why);
    } else {
        memcpy(tmp, cfg->listeners, sizeof(srv_listener) * (size_t)cfg->n_listeners);
        n_adv = cfg->n_listeners;
    }
    cfg->n_advertised = 0;
    for (int i = 0; i < n_adv; i++) {
        srv_listener *l = &tmp[i];
        if (is_controller_listener(cfg, l->name))
            continue;
        int found = 0;
        for (int j = 0; j < cfg->n_listeners; j++)
            found |= strcmp(cfg->listeners[j].name, l->name) == 0;
        if (!found)
            return srv_cfgk_fail(err, errlen, "advertised listener %s is not one of the listeners", l->name);
        if (is_wildcard(l->host))
            return srv_cfgk_fail(
                err, errlen,
                "advertised listener %s uses the non-routable address %s: set advertised.listeners to an "
                "address clients can reach",
                l->name, l->host);
        if (!l->host[0]) {
            /* Kafka would advertise the canonical host name; localhost keeps
             * the single-node default predictable. */
            snprintf(l->host, sizeof(l->host), "localhost");
            l->ipv6 = 0;
        }
        cfg->advertised[cfg->n_advertised++] = *l;
    }
    return 0;
}

static int finish_log_dirs(srv_config *cfg, char *err, size_t errlen)
{
    const char *dirs = bset(cfg, "log.dirs") ? bval_name(cfg, "log.dirs") : bval_name(cfg, "log.dir");
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {dirs, !*dirs};
    cfg->n_log_dirs = 0;
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        if (!item[0])
            return srv_cfgk_fail(err, errlen, "empty directory in log.dirs");
        if (cfg->n_log_dirs == SRV_MAX_LOG_DIRS)
            return srv_cfgk_fail(err, errlen, "more than %d log directories", SRV_MAX_LOG_DIRS);
        for (int j = 0; j < cfg->n_log_dirs; j++)
            if (strcmp(cfg->log_dirs[j], item) == 0)
                return srv_cfgk_fail(err, errlen, "log directory %s is listed twice", item);
        memcpy(cfg->log_dirs[cfg->n_log_dirs++], item, strlen(item) + 1);
    }
    if (cfg->n_log_dirs == 0)
        return srv_cfgk_fail(err, errlen, "no log directory configured (log.dirs / log.dir)");
    return 0;
}

/* Kafka: a negative retention in any unit means "forever" (-1). */
static int64_t retention_ms(const srv_config *cfg)
{
    int64_t v;
    if (bset(cfg, "log.retention.ms"))
        v = bi64(cfg, "log.retention.ms");
    else if (bset(cfg, "log.retention.minutes"))
        v = bi64(cfg, "log.retention.minutes") * MIN_MS;
    else
        v = bi64(cfg, "log.retention.hours") * HOUR_MS;
    return v < 0 ? -1 : v;
}

/* controller.quorum.voters and the settings a quorum member needs; without
 * voters nothing changes (the single-node broker). Kafka's own checks, in
 * its words where it has them. */
static int finish_quorum(srv_config *cfg, char *err, size_t errlen)
{
    cfg->nvoters = 0;
    cfg->broker_rack[0] = 0; /* a single node answers no rack, as before the quorum */
    cfg->broker_session_timeout_ms = bi64(cfg, "broker.session.timeout.ms");
    cfg->broker_heartbeat_interval_ms = bi64(cfg, "broker.heartbeat.interval.ms");
    cfg->metadata_snapshot_bytes = bi64(cfg, "metadata.log.max.record.bytes.between.snapshots");
    const char *voters = bval_name(cfg, "controller.quorum.voters");
    const char *roles = bval_name(cfg, "process.roles");
    char item[SRV_CONFIG_VALUE_MAX];
    if (quorum_voters(cfg) < 2) {
        /* The single-node broker: these keys say what it already is. */
        static const char *const keys[][2] = {
            {"process.roles", "the node is always a combined single-node broker"},
            {"controller.quorum.voters", "a metadata quorum needs two or more voters"},
            {"controller.listener.names", "there is no controller quorum"},
            {"broker.rack", "there is one broker"}};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (bset(cfg, keys[i][0]))
                logf_(cfg, SRV_LOG_INFO, "config '%s' does not apply to a single-node broker (%s): ignored",
                      keys[i][0], keys[i][1]);
        if (bi64(cfg, "default.replication.factor") != 1)
            return srv_cfgk_fail(err, errlen,
                                 "default.replication.factor: a single-node broker holds one replica; only a "
                                 "metadata quorum (controller.quorum.voters) replicates");
        return 0;
    }
    const char *rack = bval_name(cfg, "broker.rack");
    if (rack && strlen(rack) >= sizeof(cfg->broker_rack))
        return srv_cfgk_fail(err, errlen, "broker.rack is longer than %d characters",
                             (int)sizeof(cfg->broker_rack) - 1);
    snprintf(cfg->broker_rack, sizeof(cfg->broker_rack), "%s", rack ? rack : "");
    int broker = 0, controller = 0;
    srv_cfgk_list_iter rit = {roles ? roles : "", !roles || !*roles};
    while (srv_cfgk_list_next(&rit, item, sizeof(item))) {
        if (strcmp(item, "broker") == 0)
            broker = 1;
        else if (strcmp(item, "controller") == 0)
            controller = 1;
        else
            return srv_cfgk_fail(err, errlen, "Unknown process role '%.40s' (must be broker or controller)",
                                 item);
    }
    if (!broker || !controller)
        return srv_cfgk_fail(err, errlen,
                             "process.roles must be broker,controller: only combined nodes are supported "
                             "(dedicated controllers are a later step)");
    if (!bset(cfg, "node.id") && !bset(cfg, "broker.id"))
        return srv_cfgk_fail(err, errlen,
                             "Missing configuration `node.id` which is required when "
                             "`process.roles` is defined");
    if (!cfg->ctl_port)
        return srv_cfgk_fail(err, errlen,
                             "controller.listener.names must name a listener of `listeners` with a port: the "
                             "quorum listens there");
    srv_cfgk_list_iter it = {voters, 0};
    int self = 0;
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        if (cfg->nvoters == SRV_MAX_VOTERS)
            return srv_cfgk_fail(err, errlen, "controller.quorum.voters: at most %d voters", SRV_MAX_VOTERS);
        srv_voter *v = &cfg->voters[cfg->nvoters];
        char *at = strchr(item, '@');
        char *colon = strrchr(item, ':');
        char *end = NULL;
        long id = at ? strtol(item, &end, 10) : -1;
        long port = colon ? strtol(colon + 1, NULL, 10) : 0;
        if (!at || end != at || id < 0 || id > INT32_MAX || !colon || colon < at || port <= 0 ||
            port > 65535 || (size_t)(colon - at - 1) >= sizeof(v->host) || colon == at + 1)
            return srv_cfgk_fail(err, errlen,
                                 "Invalid value '%.100s' in controller.quorum.voters: expected id@host:port",
                                 item);
        v->id = (int32_t)id;
        memcpy(v->host, at + 1, (size_t)(colon - at - 1));
        v->host[colon - at - 1] = 0;
        v->port = (uint16_t)port;
        /* Canonical raft's TCP transport takes IPv4 addresses only and
         * resolves no names: a name here would never form a quorum. */
        struct in_addr ip4;
        if (inet_pton(AF_INET, v->host, &ip4) != 1)
            return srv_cfgk_fail(
                err, errlen,
                "controller.quorum.voters: voter %d's host '%.100s' must be an IPv4 address (the "
                "metadata quorum's transport does not resolve names)",
                (int)id, v->host);
        for (int i = 0; i < cfg->nvoters; i++)
            if (cfg->voters[i].id == v->id)
                return srv_cfgk_fail(err, errlen, "controller.quorum.voters names voter %d twice", (int)id);
        self |= v->id == cfg->node_id;
        cfg->nvoters++;
    }
    if (!self)
        return srv_cfgk_fail(err, errlen,
                             "node.id %d is not one of controller.quorum.voters: a combined node must be a "
                             "voter",
                             (int)cfg->node_id);
    return 0;
}

int srv_config_finish(srv_config *cfg, char *err, size_t errlen)
{
    /* node.id and broker.id name the same thing; disagreeing is an error. */
    int64_t node = bi64(cfg, "node.id"), broker = bi64(cfg, "broker.id");
    if (bset(cfg, "node.id") && bset(cfg, "broker.id") && node != broker)
        return srv_cfgk_fail(err, errlen, "node.id (%lld) and broker.id (%lld) must be equal",
                             (long long)node, (long long)broker);
    int64_t id = bset(cfg, "node.id") ? node : broker;
    cfg->node_id = id < 0 ? 1 : (int32_t)id;

    if (finish_listeners(cfg, err, errlen) != 0 || finish_log_dirs(cfg, err, errlen) != 0 ||
        finish_quorum(cfg, err, errlen) != 0)
        return -1;
    cfg->sasl_server_max_receive_size = (int32_t)bi64(cfg, "sasl.server.max.receive.size");
    cfg->connection_failed_authentication_delay_ms =
        (int32_t)bi64(cfg, "connection.failed.authentication.delay.ms");
    cfg->ssl_reload_interval_ms = bi64(cfg, "ssl.reload.interval.ms");

    cfg->num_partitions = (int32_t)bi64(cfg, "num.partitions");
    cfg->default_replication_factor = (int16_t)bi64(cfg, "default.replication.factor");
    cfg->offsets_topic_replication_factor = (int16_t)bi64(cfg, "offsets.topic.replication.factor");
    cfg->transaction_state_log_replication_factor =
        (int16_t)bi64(cfg, "transaction.state.log.replication.factor");
    cfg->auto_create_topics_enable = bbool(cfg, "auto.create.topics.enable");
    cfg->delete_topic_enable = bbool(cfg, "delete.topic.enable");
    cfg->txn_partition_verification = bbool(cfg, "transaction.partition.verification.enable");
    cfg->test_txn_verification_delay_ms = (int32_t)bi64(cfg, "kbroker.test.txn.verification.delay.ms");
    if (cfg->test_txn_verification_delay_ms > 0) /* at most 10 s: under the guard's 30 s expiry */
        logf_(cfg, SRV_LOG_WARN,
              "kbroker.test.txn.verification.delay.ms=%d is for tests only: every verified transactional "
              "batch waits that long",
              (int)cfg->test_txn_verification_delay_ms);
    cfg->unstable_api_versions = bbool(cfg, "unstable.api.versions.enable");
    cfg->log_retention_ms = retention_ms(cfg);
    cfg->log_retention_bytes = bi64(cfg, "log.retention.bytes");
    cfg->log_segment_bytes = (int32_t)bi64(cfg, "log.segment.bytes");
    cfg->log_roll_ms =
        bset(cfg, "log.roll.ms") ? bi64(cfg, "log.roll.ms") : bi64(cfg, "log.roll.hours") * HOUR_MS;
    cfg->log_retention_check_interval_ms = bi64(cfg, "log.retention.check.interval.ms");
    cfg->log_flush_interval_messages = bi64(cfg, "log.flush.interval.messages");
    cfg->log_flush_interval_ms = bset(cfg, "log.flush.interval.ms")
                                     ? bi64(cfg, "log.flush.interval.ms")
                                     : bi64(cfg, "log.flush.scheduler.interval.ms");
    const char *policy = bval_name(cfg, "log.cleanup.policy");
    cfg->log_cleanup_compact = srv_cfgk_list_contains(policy, "compact");
    cfg->log_cleanup_delete = srv_cfgk_list_contains(policy, "delete");
    cfg->log_cleaner_delete_retention_ms = bi64(cfg, "log.cleaner.delete.retention.ms");
    cfg->log_index_interval_bytes = (int32_t)bi64(cfg, "log.index.interval.bytes");
    cfg->log_message_timestamp_type =
        strcmp(bval_name(cfg, "log.message.timestamp.type"), "LogAppendTime") == 0 ? SRV_TS_LOG_APPEND_TIME
                                                                                   : SRV_TS_CREATE_TIME;
    cfg->log_message_timestamp_before_max_ms = bi64(cfg, "log.message.timestamp.before.max.ms");
    cfg->log_message_timestamp_after_max_ms = bi64(cfg, "log.message.timestamp.after.max.ms");
    snprintf(cfg->compression_type, sizeof(cfg->compression_type), "%s", bval_name(cfg, "compression.type"));
    cfg->message_max_bytes = (int32_t)bi64(cfg, "message.max.bytes");
    cfg->min_insync_replicas = (int32_t)bi64(cfg, "min.insync.replicas");
    cfg->replica_socket_timeout_ms = (int32_t)bi64(cfg, "replica.socket.timeout.ms");
    cfg->socket_request_max_bytes = (int32_t)bi64(cfg, "socket.request.max.bytes");
    cfg->socket_send_buffer_bytes = (int32_t)bi64(cfg, "socket.send.buffer.bytes");
    cfg->socket_receive_buffer_bytes = (int32_t)bi64(cfg, "socket.receive.buffer.bytes");
    cfg->socket_listen_backlog_size = (int32_t)bi64(cfg, "socket.listen.backlog.size");
    cfg->max_connections = (int32_t)bi64(cfg, "max.connections");
    cfg->max_connections_per_ip = (int32_t)bi64(cfg, "max.connections.per.ip");
    snprintf(cfg->max_connections_per_ip_overrides, sizeof(cfg->max_connections_per_ip_overrides), "%s",
             bval_name(cfg, "max.connections.per.ip.overrides"));
    cfg->max_connection_creation_rate = (int32_t)bi64(cfg, "max.connection.creation.rate");
    cfg->quota_window_num = (int32_t)bi64(cfg, "quota.window.num");
    cfg->quota_window_size_seconds = (int32_t)bi64(cfg, "quota.window.size.seconds");
    cfg->connections_max_idle_ms = bi64(cfg, "connections.max.idle.ms");
    cfg->queued_max_request_bytes = bi64(cfg, "queued.max.request.bytes");
    cfg->offsets_retention_minutes = (int32_t)bi64(cfg, "offsets.retention.minutes");
    cfg->offsets_retention_check_interval_ms = bi64(cfg, "offsets.retention.check.interval.ms");
    cfg->offsets_topic_num_partitions = (int32_t)bi64(cfg, "offsets.topic.num.partitions");
    cfg->offsets_topic_segment_bytes = (int32_t)bi64(cfg, "offsets.topic.segment.bytes");
    cfg->group_initial_rebalance_delay_ms = (int32_t)bi64(cfg, "group.initial.rebalance.delay.ms");
    cfg->group_min_session_timeout_ms = (int32_t)bi64(cfg, "group.min.session.timeout.ms");
    cfg->group_max_session_timeout_ms = (int32_t)bi64(cfg, "group.max.session.timeout.ms");
    cfg->group_consumer_heartbeat_interval_ms = (int32_t)bi64(cfg, "group.consumer.heartbeat.interval.ms");
    cfg->group_consumer_session_timeout_ms = (int32_t)bi64(cfg, "group.consumer.session.timeout.ms");
    cfg->group_max_size = (int32_t)bi64(cfg, "group.max.size");
    cfg->group_share_heartbeat_interval_ms = (int32_t)bi64(cfg, "group.share.heartbeat.interval.ms");
    cfg->group_share_session_timeout_ms = (int32_t)bi64(cfg, "group.share.session.timeout.ms");
    cfg->group_share_record_lock_duration_ms = (int32_t)bi64(cfg, "group.share.record.lock.duration.ms");
    {
        /* Kafka refuses to start with a lock duration outside [min, max]; here it is clamped. */
        int32_t lo = (int32_t)bi64(cfg, "group.share.min.record.lock.duration.ms");
        int32_t hi = (int32_t)bi64(cfg, "group.share.max.record.lock.duration.ms");
        if (cfg->group_share_record_lock_duration_ms < lo)
            cfg->group_share_record_lock_duration_ms = lo;
        if (cfg->group_share_record_lock_duration_ms > hi)
            cfg->group_share_record_lock_duration_ms = hi;
    }
    cfg->group_share_delivery_count_limit = (int32_t)bi64(cfg, "group.share.delivery.count.limit");
    cfg->group_share_partition_max_record_locks =
        (int32_t)bi64(cfg, "group.share.partition.max.record.locks");
    cfg->group_share_max_size = (int32_t)bi64(cfg, "group.share.max.size");
    cfg->share_state_num_partitions = (int32_t)bi64(cfg, "share.coordinator.state.topic.num.partitions");
    cfg->share_state_updates_per_snapshot =
        (int32_t)bi64(cfg, "share.coordinator.snapshot.update.records.per.snapshot");
    cfg->group_consumer_max_size = (int32_t)bi64(cfg, "group.consumer.max.size");
    cfg->group_consumer_migration =
        srv_config_migration_policy(bval_name(cfg, "group.consumer.migration.policy"));
    cfg->group_consumer_nassignors =
        srv_config_assignors(bval_name(cfg, "group.consumer.assignors"), cfg->group_consumer_assignors);
    cfg->transactional_id_expiration_ms = (int32_t)bi64(cfg, "transactional.id.expiration.ms");
    cfg->producer_id_expiration_ms = (int32_t)bi64(cfg, "producer.id.expiration.ms");
    cfg->transaction_max_timeout_ms = (int32_t)bi64(cfg, "transaction.max.timeout.ms");
    cfg->transaction_state_log_num_partitions = (int32_t)bi64(cfg, "transaction.state.log.num.partitions");
    cfg->transaction_state_log_segment_bytes = (int32_t)bi64(cfg, "transaction.state.log.segment.bytes");
    cfg->txn_abort_interval_ms =
        (int32_t)bi64(cfg, "transaction.abort.timed.out.transaction.cleanup.interval.ms");
    cfg->txn_expire_interval_ms =
        (int32_t)bi64(cfg, "transaction.remove.expired.transaction.cleanup.interval.ms");
    cfg->metrics_port = (int32_t)bi64(cfg, "metrics.port");
    cfg->flush_sync_acks = bbool(cfg, "flush.sync.acks");
    cfg->log_max_open_files = (int32_t)bi64(cfg, "log.max.open.files");
    cfg->shards = (int32_t)bi64(cfg, "shards");
    if (cfg->shards == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->shards = n > 0 ? (int32_t)(n > 1024 ? 1024 : n) : 1;
    }

    if (cfg->group_min_session_timeout_ms > cfg->group_max_session_timeout_ms)
        return srv_cfgk_fail(
            err, errlen, "group.min.session.timeout.ms (%d) is larger than group.max.session.timeout.ms (%d)",
            cfg->group_min_session_timeout_ms, cfg->group_max_session_timeout_ms);
    if (cfg->n_unknown_dropped)
        logf_(cfg, SRV_LOG_WARN, "%d more unknown config keys ignored", cfg->n_unknown_dropped);
    return 0;
}

/* ---- command line --------------------------------------------------------------- */

const char *srv_config_usage(void)
{
    return "usage: kbroker [server.properties] [options]\n"
           "  --config FILE        read a Kafka server.properties file (also the first bare argument)\n"
           "  --set KEY=VALUE      override one config key (repeatable; --override is the same)\n"
           "  --shards N           number of shards, 0 = one per online CPU (same as --set shards=N)\n"
           "  --metrics-port N     Prometheus metrics port, 0 = off (same as --set metrics.port=N)\n"
           "  -h, --help           print this text\n"
           "\n"
           "Precedence: embedded defaults < config file < --set/--shards/--metrics-port.\n"
           "Kafka 3.9 keys and defaults apply, except: listeners defaults to PLAINTEXT://localhost:9092,\n"
           "log.dir to ./data (Kafka: /tmp/kafka-logs), node.id/broker.id to 1; replication factors\n"
           "must be 1; SASL supports PLAIN only and keystores PEM/PKCS12 (docs/security.md). ZooKeeper/KRaft "
           "keys are accepted\n"
           "and ignored; unknown keys are logged once and ignored. Our own keys: shards, metrics.port,\n"
           "flush.sync.acks (default true: acks=all is answered after fdatasync).\n";
}

/* Matches "--name VALUE" and "--name=VALUE"; *i advances past the value. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **value, char *err,
                     size_t errlen)
{
    size_t nl = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, nl) != 0)
        return 0;
    if (a[nl] == '=') {
        *value = a + nl + 1;
        return 1;
    }
    if (a[nl] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return srv_cfgk_fail(err, errlen, "option %s needs a value", name) * 2;
    *value = argv[++*i];
    return 1;
}

int srv_config_parse_args(int argc, char **argv, srv_config *cfg, char *err, size_t errlen)
{
    const char *file = NULL, *v = NULL;
    /* Pass 1: find the config file and reject bad options before anything is
     * applied, so the file always sits below the overrides. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return SRV_CONFIG_HELP;
        if ((r = opt_value(argc, argv, &i, "--config", &v, err, errlen)) != 0) {
            if (r < 0)
                return -1;
            if (file)
                return srv_cfgk_fail(err, errlen, "only one config file may be given (%s and %s)", file, v);
            file = v;
            continue;
        }
        if ((r = opt_value(argc, argv, &i, "--set", &v, err, errlen)) != 0 ||
            (r = opt_value(argc, argv, &i, "--override", &v, err, errlen)) != 0 ||
            (r = opt_value(argc, argv, &i, "--shards", &v, err, errlen)) != 0 ||
            (r = opt_value(argc, argv, &i, "--metrics-port", &v, err, errlen)) != 0) {
            if (r < 0)
                return -1;
            continue;
        }
        if (a[0] == '-')
            return srv_cfgk_fail(err, errlen, "unknown option %s (try --help)", a);
        if (file)
            return srv_cfgk_fail(err, errlen, "only one config file may be given (%s and %s)", file, a);
        file = a;
    }
    if (file && srv_config_load_file(cfg, file, err, errlen) != 0)
        return -1;
    /* Pass 2: overrides in command-line order. */
    for (int i = 1; i < argc; i++) {
        char e[512];
        const char *key = NULL;
        char keybuf[SRV_CONFIG_VALUE_MAX];
        if (opt_value(argc, argv, &i, "--config", &v, NULL, 0) == 1)
            continue;
        if (opt_value(argc, argv, &i, "--set", &v, NULL, 0) == 1 ||
            opt_value(argc, argv, &i, "--override", &v, NULL, 0) == 1) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                return srv_cfgk_fail(err, errlen, "--set needs KEY=VALUE, got '%.200s'", v);
            if (trim_copy(v, (size_t)(eq - v), keybuf, sizeof(keybuf)) != 0)
                return srv_cfgk_fail(err, errlen, "--set: key too long");
            key = keybuf;
            v = eq + 1;
        } else if (opt_value(argc, argv, &i, "--shards", &v, NULL, 0) == 1) {
            key = "shards";
        } else if (opt_value(argc, argv, &i, "--metrics-port", &v, NULL, 0) == 1) {
            key = "metrics.port";
        } else {
            continue; /* the bare config file argument */
        }
        if (srv_config_set(cfg, key, v, e, sizeof(e)) != 0)
            return srv_cfgk_fail(err, errlen, "command line: %s", e);
    }
    return srv_config_finish(cfg, err, errlen) == 0 ? 0 : -1;
}

/* ---- DescribeConfigs: broker ------------------------------------------------- */

void srv_cfgk_add_syn(srv_config_entry *e, const char *name, const char *value, int source)
{
    if (e->n_synonyms == SRV_CONFIG_MAX_SYNONYMS)
        return;
    srv_config_synonym *s = &e->synonyms[e->n_synonyms++];
    s->name = name;
    s->value_null = value == NULL;
    snprintf(s->value, sizeof(s->value), "%s", value ? value : "");
    s->source = source;
}

/* Synonyms of a broker setting, as Kafka lists them: explicitly set values
 * (static) of every name in the group, highest precedence first, then the
 * defaults. Kafka trims the list to start at the described name; we keep the
 * whole group so that describing log.retention.hours shows that
 * log.retention.ms overrides it. */
void srv_cfgk_broker_synonyms(const srv_config *cfg, const char *const *names, int n, srv_config_entry *e)
{
    for (int i = 0; i < n; i++) {
        int k = srv_cfgk_bkey_find(names[i]);
        if (k >= 0 && cfg->vals[k].set)
            srv_cfgk_add_syn(e, BKEYS[k].name, cfg->vals[k].raw, cfg->vals[k].source);
    }
    for (int i = 0; i < n; i++) {
        int k = srv_cfgk_bkey_find(names[i]);
        if (k >= 0 && BKEYS[k].def)
            srv_cfgk_add_syn(e, BKEYS[k].name, BKEYS[k].def, SRV_SOURCE_DEFAULT_CONFIG);
    }
}

/* The ssl.* and sasl.* keys DescribeConfigs lists for the broker, with
 * Kafka 4.4's defaults and types (seen by describing a Kafka broker). The
 * PASSWORD ones are sensitive: their value is never sent, as in Kafka. Keys
 * Kafka lists that this broker does not read (Java key managers, Kerberos,
 * OAUTHBEARER clients) are left out. */
static const struct {
    const char *name, *def;
    int type;
    const char *doc;
} SECK[] = {
    {"sasl.enabled.mechanisms", "GSSAPI", SRV_TYPE_LIST, "SASL mechanisms a SASL listener offers."},
    {"sasl.jaas.config", NULL, SRV_TYPE_PASSWORD,
     "JAAS login configuration; a broker reads it only as listener.name.<l>.<mechanism>.sasl.jaas.config."},
    {"sasl.mechanism.inter.broker.protocol", "GSSAPI", SRV_TYPE_STRING,
     "SASL mechanism between brokers (single node: not used)."},
    {"ssl.cipher.suites", "", SRV_TYPE_LIST,
     "Allowed cipher suites; empty means the TLS library's defaults."},
    {"ssl.client.auth", "none", SRV_TYPE_STRING, "Client certificates: none, requested or required (mTLS)."},
    {"ssl.enabled.protocols", "TLSv1.2,TLSv1.3", SRV_TYPE_LIST, "TLS versions a listener accepts."},
    {"ssl.key.password", NULL, SRV_TYPE_PASSWORD, "Password of an encrypted private key."},
    {"ssl.keystore.certificate.chain", NULL, SRV_TYPE_PASSWORD, "Inline PEM certificate chain (type PEM)."},
    {"ssl.keystore.key", NULL, SRV_TYPE_PASSWORD, "Inline PEM private key (type PEM)."},
    {"ssl.keystore.location", NULL, SRV_TYPE_STRING, "Key store file: the broker's key and certificate."},
    {"ssl.keystore.password", NULL, SRV_TYPE_PASSWORD, "Password of a PKCS12 key store."},
    {"ssl.keystore.type", "JKS", SRV_TYPE_STRING, "Key store format: PEM or PKCS12 (JKS is refused)."},
    {"ssl.principal.mapping.rules", "DEFAULT", SRV_TYPE_STRING,
     "Rules mapping a client certificate's subject DN to a principal name."},
    {"ssl.truststore.certificates", NULL, SRV_TYPE_PASSWORD, "Inline PEM trusted certificates."},
    {"ssl.truststore.location", NULL, SRV_TYPE_STRING,
     "Trust store file: CAs client certificates must chain to."},
    {"ssl.truststore.password", NULL, SRV_TYPE_PASSWORD, "Password of a PKCS12 trust store."},
    {"ssl.truststore.type", "JKS", SRV_TYPE_STRING, "Trust store format: PEM or PKCS12 (JKS is refused)."},
};
#define N_SECK (sizeof(SECK) / sizeof(SECK[0]))

static int seck_find(const char *name)
{
    for (size_t i = 0; i < N_SECK; i++)
        if (strcmp(SECK[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The security key `name` (a SECK name, or a listener.name.<l>.* key the
 * configuration set) as Kafka describes it: a sensitive value is null. */
static void describe_sec(const srv_config *cfg, const char *name, const char *base, srv_config_entry *e)
{
    memset(e, 0, offsetof(srv_config_entry, synonyms));
    int k = seck_find(base);
    /* JAAS lines (<mechanism>.sasl.jaas.config) are passwords to Kafka. */
    size_t bl = strlen(base), jl = strlen("sasl.jaas.config");
    int jaas = bl >= jl && strcmp(base + bl - jl, "sasl.jaas.config") == 0;
    e->name = name;
    e->type = k >= 0 ? SECK[k].type : jaas ? SRV_TYPE_PASSWORD : SRV_TYPE_STRING;
    e->sensitive = e->type == SRV_TYPE_PASSWORD;
    e->read_only = 1; /* no dynamic broker configs in this version */
    e->doc = k >= 0 ? SECK[k].doc : "Listener-scoped value of a security key.";
    e->default_value = k >= 0 && name == base ? SECK[k].def : NULL;
    const char *set = sec_get(cfg, name);
    if (set)
        srv_cfgk_add_syn(e, name, e->sensitive ? NULL : set, SRV_SOURCE_STATIC_BROKER_CONFIG);
    if (name != base) { /* a listener key falls back to the plain one, then the default */
        const char *plain = sec_get(cfg, base);
        if (plain)
            srv_cfgk_add_syn(e, base, e->sensitive ? NULL : plain, SRV_SOURCE_STATIC_BROKER_CONFIG);
    }
    if (k >= 0 && SECK[k].def)
        srv_cfgk_add_syn(e, SECK[k].name, SECK[k].def, SRV_SOURCE_DEFAULT_CONFIG);
    const char *v = set ? set : k >= 0 && name == base ? SECK[k].def : NULL;
    e->value_null = v == NULL || e->sensitive;
    snprintf(e->value, sizeof(e->value), "%s", e->value_null ? "" : v);
    e->source = e->n_synonyms ? e->synonyms[0].source : SRV_SOURCE_DEFAULT_CONFIG;
}

size_t srv_config_key_count(void)
{
    return N_BKEYS + N_SECK + SRV_SEC_KEYS_MAX;
}

int srv_config_describe(const srv_config *cfg, size_t index, srv_config_entry *e)
{
    if (index >= N_BKEYS) {
        index -= N_BKEYS;
        if (index < N_SECK) {
            describe_sec(cfg, SECK[index].name, SECK[index].name, e);
            return 1;
        }
        index -= N_SECK;
        size_t ln = 0;
        const char *suffix =
            index < (size_t)cfg->n_sec ? listener_key_suffix(cfg->sec[index].key, &ln) : NULL;
        if (!suffix)
            return 0;
        describe_sec(cfg, cfg->sec[index].key, suffix, e);
        return 1;
    }
    const keydef *k = &BKEYS[index];
    memset(e, 0, offsetof(srv_config_entry, synonyms));
    e->name = k->name;
    e->type = k->type;
    e->read_only = 1; /* no dynamic broker configs in this version */
    e->sensitive = 0;
    e->doc = k->doc;
    e->default_value = k->def;
    const char *v = bval(cfg, index);
    e->value_null = v == NULL;
    snprintf(e->value, sizeof(e->value), "%s", v ? v : "");

    const char *const *group = NULL;
    int gn = 0;
    for (size_t g = 0; g < sizeof(BGROUPS) / sizeof(BGROUPS[0]) && !group; g++)
        for (int j = 0; BGROUPS[g][j]; j++)
            if (strcmp(BGROUPS[g][j], k->name) == 0) {
                group = BGROUPS[g];
                while (group[gn])
                    gn++;
                break;
            }
    if (group)
        srv_cfgk_broker_synonyms(cfg, group, gn, e);
    else
        srv_cfgk_broker_synonyms(cfg, &k->name, 1, e);
    e->source = e->n_synonyms ? e->synonyms[0].source : SRV_SOURCE_DEFAULT_CONFIG;
    return 1;
}

int srv_config_describe_listener_key(const srv_config *cfg, const char *name, srv_config_entry *out)
{
    size_t ln = 0;
    const char *suffix = listener_key_suffix(name, &ln);
    if (!suffix || seck_find(suffix) < 0)
        return -1;
    describe_sec(cfg, name, suffix, out);
    return 0;
}

int srv_config_describe_name(const srv_config *cfg, const char *name, srv_config_entry *out)
{
    int i = srv_cfgk_bkey_find(name);
    if (i < 0) {
        int k = seck_find(name);
        if (k >= 0) {
            describe_sec(cfg, SECK[k].name, SECK[k].name, out);
            return 0;
        }
        for (int j = 0; j < cfg->n_sec; j++) {
            size_t ln = 0;
            const char *suffix = listener_key_suffix(cfg->sec[j].key, &ln);
            if (suffix && strcasecmp(cfg->sec[j].key, name) == 0) {
                describe_sec(cfg, cfg->sec[j].key, suffix, out);
                return 0;
            }
        }
        return -1;
    }
    srv_config_describe(cfg, (size_t)i, out);
    return 0;
}

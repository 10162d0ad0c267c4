/*
 * topic_config.c — topic-level configs (see topic_config.h).
 *
 * Owns: the topic key table (TKEYS) and its broker synonyms, override sets
 * and their serialized form, effective values, DescribeConfigs entries for
 * topics, the mapping onto st_log_config, and reading the overrides stored in
 * metadata. Broker keys, the properties parser and the value checks both
 * tables use are config.c's (config_keys.h).
 *
 * Must not: print (except the one warning below, about a stored override
 * that no longer validates: a newer broker dropped a key), do I/O, or keep
 * mutable globals (every table here is const).
 */
#include "topic_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "errors.h"
#include "logging.h"
#include "meta.h"

/* ---- topic keys ------------------------------------------------------------------ */

/* Kafka's ThrottledReplicaListValidator: "*" or partition:broker pairs. */
static int check_throttled(const char *v, char *why, size_t n)
{
    if (strcmp(v, "*") == 0 || !*v)
        return 0;
    char item[SRV_CONFIG_VALUE_MAX];
    srv_cfgk_list_iter it = {v, 0};
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        const char *c = strchr(item, ':');
        int64_t a, b;
        char left[32];
        if (!c || (size_t)(c - item) >= sizeof(left))
            return srv_cfgk_fail(why, n, "must be '*' or a list of partition:brokerId pairs");
        memcpy(left, item, (size_t)(c - item));
        left[c - item] = '\0';
        if (srv_cfgk_parse_i64(left, &a) || srv_cfgk_parse_i64(c + 1, &b) || a < 0 || b < 0)
            return srv_cfgk_fail(why, n, "must be '*' or a list of partition:brokerId pairs");
    }
    return 0;
}

typedef struct tkeydef {
    keydef d;
    const char *syn[3]; /* broker synonyms, highest precedence first */
    int64_t mult[3];    /* unit conversion to the topic key (0 = copy as text) */
} tkeydef;

#define T(name, type, def, lo, hi, ch, chk, doc)                                                             \
    {                                                                                                        \
        name, type, USE_APPLY, def, lo, hi, ch, chk, doc, NULL                                               \
    }

/* Kafka 3.9 topic-level configs and their broker synonyms. */
static const tkeydef TKEYS[] = {
    {T("cleanup.policy", SRV_TYPE_LIST, "delete", 0, 0, srv_cfgk_ch_cleanup, NULL,
       "delete: drop old segments by retention; compact: keep the last record per key."),
     {"log.cleanup.policy"},
     {0}},
    {T("compression.type", SRV_TYPE_STRING, "producer", 0, 0, srv_cfgk_ch_compression, NULL,
       "Compression of stored batches; producer keeps what the producer sent."),
     {"compression.type"},
     {0}},
    {T("compression.gzip.level", SRV_TYPE_INT, "-1", 0, 0, NULL, srv_cfgk_check_gzip_level,
       "gzip level (-1 or 1-9)."),
     {"compression.gzip.level"},
     {0}},
    {T("compression.lz4.level", SRV_TYPE_INT, "9", 1, 17, NULL, NULL, "lz4 level (1-17)."),
     {"compression.lz4.level"},
     {0}},
    {T("compression.zstd.level", SRV_TYPE_INT, "3", -131072, 22, NULL, NULL, "zstd level (-131072-22)."),
     {"compression.zstd.level"},
     {0}},
    {T("delete.retention.ms", SRV_TYPE_LONG, "86400000", 0, INT64_MAX, NULL, NULL,
       "How long tombstones stay readable in a compacted topic."),
     {"log.cleaner.delete.retention.ms"},
     {0}},
    {T("file.delete.delay.ms", SRV_TYPE_LONG, "60000", 0, INT64_MAX, NULL, NULL,
       "Delay before deleted segment files are removed (accepted; removal is immediate here)."),
     {"log.segment.delete.delay.ms"},
     {0}},
    {T("flush.messages", SRV_TYPE_LONG, I64MAX, 1, INT64_MAX, NULL, NULL,
       "With flush.sync.acks=false: fdatasync after this many appends."),
     {"log.flush.interval.messages"},
     {0}},
    {T("flush.ms", SRV_TYPE_LONG, I64MAX, 0, INT64_MAX, NULL, NULL,
       "With flush.sync.acks=false: fdatasync data older than this."),
     {"log.flush.interval.ms", "log.flush.scheduler.interval.ms"},
     {0}},
    {T("follower.replication.throttled.replicas", SRV_TYPE_LIST, "", 0, 0, NULL, check_throttled,
       "Throttled follower replicas (accepted; no replication here)."),
     {NULL},
     {0}},
    {T("index.interval.bytes", SRV_TYPE_INT, "4096", 0, INT32_MAX, NULL, NULL,
       "Bytes between offset index entries."),
     {"log.index.interval.bytes"},
     {0}},
    {T("leader.replication.throttled.replicas", SRV_TYPE_LIST, "", 0, 0, NULL, check_throttled,
       "Throttled leader replicas (accepted; no replication here)."),
     {NULL},
     {0}},
    {T("local.retention.bytes", SRV_TYPE_LONG, "-2", -2, INT64_MAX, NULL, NULL,
       "Local size with tiered storage (accepted; tiered storage is not supported)."),
     {"log.local.retention.bytes"},
     {0}},
    {T("local.retention.ms", SRV_TYPE_LONG, "-2", -2, INT64_MAX, NULL, NULL,
       "Local retention with tiered storage (accepted; tiered storage is not supported)."),
     {"log.local.retention.ms"},
     {0}},
    {T("max.compaction.lag.ms", SRV_TYPE_LONG, I64MAX, 1, INT64_MAX, NULL, NULL,
       "Maximum time a record stays uncompacted (accepted; storage schedules compaction)."),
     {"log.cleaner.max.compaction.lag.ms"},
     {0}},
    {T("max.message.bytes", SRV_TYPE_INT, "1048588", 0, INT32_MAX, NULL, NULL,
       "Largest record batch accepted, including its 12-byte offset/length header."),
     {"message.max.bytes"},
     {0}},
    {T("message.downconversion.enable", SRV_TYPE_BOOLEAN, "true", 0, 0, NULL, NULL,
       "Down-convert for old fetch versions (accepted; only format v2 is served)."),
     {"log.message.downconversion.enable"},
     {0}},
    {T("message.format.version", SRV_TYPE_STRING, "3.0-IV1", 0, 0, NULL, srv_cfgk_check_version,
       "Deprecated message format version (accepted; format v2 is always used)."),
     {"log.message.format.version"},
     {0}},
    {T("message.timestamp.after.max.ms", SRV_TYPE_LONG, I64MAX, 0, INT64_MAX, NULL, NULL,
       "How far in the future a CreateTime timestamp may be."),
     {"log.message.timestamp.after.max.ms"},
     {0}},
    {T("message.timestamp.before.max.ms", SRV_TYPE_LONG, I64MAX, 0, INT64_MAX, NULL, NULL,
       "How far in the past a CreateTime timestamp may be."),
     {"log.message.timestamp.before.max.ms"},
     {0}},
    {T("message.timestamp.difference.max.ms", SRV_TYPE_LONG, I64MAX, 0, INT64_MAX, NULL, NULL,
       "Deprecated: largest distance between a CreateTime timestamp and the broker clock."),
     {"log.message.timestamp.difference.max.ms"},
     {0}},
    {T("message.timestamp.type", SRV_TYPE_STRING, "CreateTime", 0, 0, srv_cfgk_ch_ts_type, NULL,
       "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's clock."),
     {"log.message.timestamp.type"},
     {0}},
    {T("min.cleanable.dirty.ratio", SRV_TYPE_DOUBLE, "0.5", 0, 1, NULL, NULL,
       "Dirty fraction of a compacted log above which it is cleaned (accepted; storage schedules "
       "compaction)."),
     {"log.cleaner.min.cleanable.ratio"},
     {0}},
    {T("min.compaction.lag.ms", SRV_TYPE_LONG, "0", 0, INT64_MAX, NULL, NULL,
       "Minimum age before compaction (accepted; only sealed segments are compacted)."),
     {"log.cleaner.min.compaction.lag.ms"},
     {0}},
    {T("min.insync.replicas", SRV_TYPE_INT, "1", 1, INT32_MAX, NULL, NULL,
       "acks=all needs this many in-sync replicas; above 1 such produces fail on one node."),
     {"min.insync.replicas"},
     {0}},
    {T("preallocate", SRV_TYPE_BOOLEAN, "false", 0, 0, NULL, NULL,
       "Preallocate segment files (accepted; no effect)."),
     {"log.preallocate"},
     {0}},
    {T("remote.log.copy.disable", SRV_TYPE_BOOLEAN, "false", 0, 0, NULL, NULL,
       "Stop copying to tiered storage (accepted; tiered storage is not supported)."),
     {NULL},
     {0}},
    {T("remote.log.delete.on.disable", SRV_TYPE_BOOLEAN, "false", 0, 0, NULL, NULL,
       "Delete remote data when tiering is disabled (accepted; tiered storage is not supported)."),
     {NULL},
     {0}},
    {T("remote.storage.enable", SRV_TYPE_BOOLEAN, "false", 0, 0, NULL, NULL,
       "Tiered storage for this topic; only false is accepted here."),
     {NULL},
     {0}},
    {T("retention.bytes", SRV_TYPE_LONG, "-1", 0, 0, NULL, NULL,
       "Partition size above which old segments are deleted; -1 = unlimited."),
     {"log.retention.bytes"},
     {0}},
    {T("retention.ms", SRV_TYPE_LONG, "604800000", -1, INT64_MAX, NULL, NULL,
       "Age after which segments are deleted; -1 = forever."),
     {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
     {1, MIN_MS, HOUR_MS}},
    {T("segment.bytes", SRV_TYPE_INT, "1073741824", 14, INT32_MAX, NULL, NULL,
       "Size at which a segment is rolled."),
     {"log.segment.bytes"},
     {0}},
    {T("segment.index.bytes", SRV_TYPE_INT, "10485760", 4, INT32_MAX, NULL, NULL,
       "Largest offset index (accepted; indexes are sized by the storage engine)."),
     {"log.index.size.max.bytes"},
     {0}},
    {T("segment.jitter.ms", SRV_TYPE_LONG, "0", 0, INT64_MAX, NULL, NULL,
       "Random roll jitter (accepted; segments roll exactly at segment.ms)."),
     {"log.roll.jitter.ms", "log.roll.jitter.hours"},
     {1, HOUR_MS}},
    {T("segment.ms", SRV_TYPE_LONG, "604800000", 1, INT64_MAX, NULL, NULL,
       "Age at which a segment is rolled."),
     {"log.roll.ms", "log.roll.hours"},
     {1, HOUR_MS}},
    {T("unclean.leader.election.enable", SRV_TYPE_BOOLEAN, "false", 0, 0, NULL, NULL,
       "Allow unclean leader election (accepted; there is one replica)."),
     {"unclean.leader.election.enable"},
     {0}},
};

#define N_TKEYS (sizeof(TKEYS) / sizeof(TKEYS[0]))
_Static_assert(sizeof(TKEYS) / sizeof(TKEYS[0]) <= SRV_TOPIC_KEYS_MAX, "raise SRV_TOPIC_KEYS_MAX");
_Static_assert(SRV_TOPIC_KEYS_MAX <= 255, "override key index is a uint8_t");

static int tkey_find(const char *name)
{
    for (size_t i = 0; i < N_TKEYS; i++)
        if (strcmp(TKEYS[i].d.name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- topic configs ------------------------------------------------------------------ */

void srv_topic_config_init(srv_topic_config *t)
{
    memset(t, 0, sizeof(*t));
}
size_t srv_topic_config_key_count(void)
{
    return N_TKEYS;
}
int srv_topic_config_known(const char *name)
{
    return tkey_find(name) >= 0;
}

static int tvalidate(int k, const char *value, char *out, size_t cap, char *err, size_t errlen)
{
    if (srv_cfgk_canon(&TKEYS[k].d, value, out, cap, err, errlen) != 0)
        return KP_ERR_INVALID_CONFIG;
    /* Topic-level rules Kafka enforces beyond the per-key validators. */
    if (strcmp(TKEYS[k].d.name, "remote.storage.enable") == 0 && strcmp(out, "true") == 0) {
        srv_cfgk_fail(err, errlen,
                      "invalid value 'true' for config 'remote.storage.enable': tiered storage is not "
                      "supported by this broker");
        return KP_ERR_INVALID_CONFIG;
    }
    return 0;
}

int srv_topic_config_validate(const char *name, const char *value, char *err, size_t errlen)
{
    int k = tkey_find(name);
    if (k < 0) {
        srv_cfgk_fail(err, errlen, "unknown topic config '%.200s'", name);
        return KP_ERR_INVALID_CONFIG;
    }
    char out[SRV_CONFIG_VALUE_MAX];
    return tvalidate(k, value, out, sizeof(out), err, errlen);
}

static int ov_find(const srv_topic_config *t, int k)
{
    for (int i = 0; i < t->n; i++)
        if (t->ov[i].key == k)
            return i;
    return -1;
}

static void ov_remove(srv_topic_config *t, int i)
{
    /* Compact the value buffer so deleted values never leak space. */
    uint16_t off = t->ov[i].off, len = t->ov[i].len;
    memmove(t->buf + off, t->buf + off + len, t->used - off - len);
    t->used = (uint16_t)(t->used - len);
    for (int j = 0; j < t->n; j++)
        if (t->ov[j].off > off)
            t->ov[j].off = (uint16_t)(t->ov[j].off - len);
    memmove(&t->ov[i], &t->ov[i + 1], sizeof(t->ov[0]) * (size_t)(t->n - i - 1));
    t->n--;
}

/* Stores a canonical value, keeping overrides sorted by key index. */
static int ov_put(srv_topic_config *t, int k, const char *value, char *err, size_t errlen)
{
    size_t len = strlen(value);
    int at = ov_find(t, k);
    size_t old = at >= 0 ? t->ov[at].len : 0;
    if (t->used - old + len > SRV_TOPIC_CONFIG_BUF) {
        srv_cfgk_fail(err, errlen, "topic config overrides would exceed %d bytes", SRV_TOPIC_CONFIG_BUF);
        return KP_ERR_INVALID_CONFIG;
    }
    if (at >= 0)
        ov_remove(t, at);
    int pos = 0;
    while (pos < t->n && t->ov[pos].key < k)
        pos++;
    memmove(&t->ov[pos + 1], &t->ov[pos], sizeof(t->ov[0]) * (size_t)(t->n - pos));
    t->ov[pos].key = (uint8_t)k;
    t->ov[pos].off = t->used;
    t->ov[pos].len = (uint16_t)len;
    memcpy(t->buf + t->used, value, len);
    t->used = (uint16_t)(t->used + len);
    t->n++;
    return 0;
}

static void ov_value(const srv_topic_config *t, int i, char *out, size_t cap)
{
    size_t len = t->ov[i].len < cap - 1 ? t->ov[i].len : cap - 1;
    memcpy(out, t->buf + t->ov[i].off, len);
    out[len] = '\0';
}

int srv_topic_config_alter(srv_topic_config *t, int op, const char *name, const char *value, char *err,
                           size_t errlen)
{
    int k = tkey_find(name);
    if (k < 0) {
        srv_cfgk_fail(err, errlen, "unknown topic config '%.200s'", name);
        return KP_ERR_INVALID_CONFIG;
    }
    const keydef *d = &TKEYS[k].d;
    char out[SRV_CONFIG_VALUE_MAX];
    int at = ov_find(t, k), rc;
    switch (op) {
    case SRV_ALTER_DELETE:
        if (at >= 0)
            ov_remove(t, at);
        return 0;
    case SRV_ALTER_SET:
        if ((rc = tvalidate(k, value ? value : "", out, sizeof(out), err, errlen)) != 0)
            return rc;
        return ov_put(t, k, out, err, errlen);
    case SRV_ALTER_APPEND:
    case SRV_ALTER_SUBTRACT: {
        if (d->type != SRV_TYPE_LIST) {
            srv_cfgk_fail(err, errlen, "config value %s is not allowed for config key %s: it is not a list",
                          op == SRV_ALTER_APPEND ? "append" : "subtract", name);
            return KP_ERR_INVALID_CONFIG;
        }
        /* Validate the operand as a list of this key first, so a bad item is
         * reported as such and not as a bad result. */
        char operand[SRV_CONFIG_VALUE_MAX], cur[SRV_CONFIG_VALUE_MAX], item[SRV_CONFIG_VALUE_MAX];
        if ((rc = tvalidate(k, value ? value : "", operand, sizeof(operand), err, errlen)) != 0)
            return rc;
        /* Kafka starts from the override or, without one, the topic default. */
        if (at >= 0)
            ov_value(t, at, cur, sizeof(cur));
        else
            snprintf(cur, sizeof(cur), "%s", d->def ? d->def : "");
        char res[SRV_CONFIG_VALUE_MAX * 2];
        size_t rl = 0;
        res[0] = '\0';
        srv_cfgk_list_iter it = {cur, !*cur};
        while (srv_cfgk_list_next(&it, item, sizeof(item))) {
            if (!item[0] || srv_cfgk_list_contains(res, item))
                continue; /* Kafka's append keeps distinct items */
            if (op == SRV_ALTER_SUBTRACT && srv_cfgk_list_contains(operand, item))
                continue;
            rl += (size_t)snprintf(res + rl, sizeof(res) - rl, "%s%s", rl ? "," : "", item);
        }
        if (op == SRV_ALTER_APPEND) {
            srv_cfgk_list_iter it2 = {operand, !*operand};
            while (srv_cfgk_list_next(&it2, item, sizeof(item)))
                if (item[0] && !srv_cfgk_list_contains(res, item))
                    rl += (size_t)snprintf(res + rl, sizeof(res) - rl, "%s%s", rl ? "," : "", item);
        }
        if (rl >= SRV_CONFIG_VALUE_MAX) {
            srv_cfgk_fail(err, errlen, "invalid value for config '%s': longer than %d bytes", name,
                          SRV_CONFIG_VALUE_MAX - 1);
            return KP_ERR_INVALID_CONFIG;
        }
        if ((rc = tvalidate(k, res, out, sizeof(out), err, errlen)) != 0)
            return rc;
        return ov_put(t, k, out, err, errlen);
    }
    default:
        srv_cfgk_fail(err, errlen, "unknown alter operation %d", op);
        return KP_ERR_INVALID_REQUEST;
    }
}

int srv_topic_config_count(const srv_topic_config *t)
{
    return t->n;
}

int srv_topic_config_at(const srv_topic_config *t, int i, const char **name, const char **value,
                        size_t *value_len)
{
    if (i < 0 || i >= t->n)
        return -1;
    *name = TKEYS[t->ov[i].key].d.name;
    *value = t->buf + t->ov[i].off; /* not NUL-terminated: use value_len */
    *value_len = t->ov[i].len;
    return 0;
}

int srv_topic_config_get_override(const srv_topic_config *t, const char *name, char *out, size_t cap)
{
    int k = tkey_find(name), at = k < 0 ? -1 : ov_find(t, k);
    if (at < 0 || cap == 0)
        return -1;
    ov_value(t, at, out, cap);
    return 0;
}

size_t srv_topic_config_serialize(const srv_topic_config *t, char *buf, size_t cap)
{
    size_t need = 0;
    for (int i = 0; i < t->n; i++) {
        const char *name = TKEYS[t->ov[i].key].d.name;
        size_t nl = strlen(name), vl = t->ov[i].len;
        const char *parts[4] = {name, "=", t->buf + t->ov[i].off, "\n"};
        size_t lens[4] = {nl, 1, vl, 1};
        for (int p = 0; p < 4; p++) {
            if (cap && need < cap - 1) {
                size_t room = cap - 1 - need, c = lens[p] < room ? lens[p] : room;
                memcpy(buf + need, parts[p], c);
            }
            need += lens[p];
        }
    }
    if (cap)
        buf[need < cap - 1 ? need : cap - 1] = '\0';
    return need;
}

int srv_topic_config_deserialize(srv_topic_config *t, const char *buf, size_t len, char *err, size_t errlen)
{
    srv_topic_config_init(t);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len;
        const char *eq = memchr(buf + i, '=', end - i);
        char name[SRV_CONFIG_NAME_MAX], value[SRV_CONFIG_VALUE_MAX];
        if (!eq || (size_t)(eq - (buf + i)) >= sizeof(name) ||
            end - (size_t)(eq - buf) - 1 >= sizeof(value)) {
            srv_topic_config_init(t);
            srv_cfgk_fail(err, errlen, "malformed serialized topic config at byte %zu", i);
            return KP_ERR_INVALID_CONFIG;
        }
        memcpy(name, buf + i, (size_t)(eq - (buf + i)));
        name[eq - (buf + i)] = '\0';
        size_t vl = end - (size_t)(eq - buf) - 1;
        memcpy(value, eq + 1, vl);
        value[vl] = '\0';
        int rc = srv_topic_config_alter(t, SRV_ALTER_SET, name, value, err, errlen);
        if (rc != 0) {
            srv_topic_config_init(t);
            return rc;
        }
        i = end + 1;
    }
    return 0;
}

/* Converts broker synonym text to the topic key's units (hours -> ms...). A
 * negative value in a larger unit means "forever", as in Kafka. */
static void convert_syn(const char *v, int64_t mult, char *out, size_t cap)
{
    int64_t x;
    if (mult <= 1 || srv_cfgk_parse_i64(v, &x) != 0) {
        snprintf(out, cap, "%s", v);
        return;
    }
    if (x < 0)
        x = -1;
    else if (x > INT64_MAX / mult)
        x = INT64_MAX;
    else
        x *= mult;
    snprintf(out, cap, "%lld", (long long)x);
}

/* Effective value and source of topic key k. */
static void teff(const srv_config *b, const srv_topic_config *t, int k, char *out, size_t cap, int *source)
{
    int at = t ? ov_find(t, k) : -1;
    if (at >= 0) {
        ov_value(t, at, out, cap);
        *source = SRV_SOURCE_TOPIC_CONFIG;
        return;
    }
    for (int s = 0; s < 3 && TKEYS[k].syn[s]; s++) {
        int bk = srv_cfgk_bkey_find(TKEYS[k].syn[s]);
        if (bk >= 0 && b->vals[bk].set) {
            convert_syn(b->vals[bk].raw, TKEYS[k].mult[s], out, cap);
            *source = b->vals[bk].source;
            return;
        }
    }
    snprintf(out, cap, "%s", TKEYS[k].d.def ? TKEYS[k].d.def : "");
    *source = SRV_SOURCE_DEFAULT_CONFIG;
}

int srv_topic_config_value(const srv_config *broker, const srv_topic_config *t, const char *name, char *out,
                           size_t cap, int *source)
{
    int k = tkey_find(name), src;
    if (k < 0 || cap == 0)
        return -1;
    teff(broker, t, k, out, cap, &src);
    if (source)
        *source = src;
    return 0;
}

int srv_topic_config_long(const srv_config *broker, const srv_topic_config *t, const char *name, int64_t *out)
{
    char v[SRV_CONFIG_VALUE_MAX];
    if (srv_topic_config_value(broker, t, name, v, sizeof(v), NULL) != 0)
        return -1;
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        *out = v[0] == 't';
        return 0;
    }
    return srv_cfgk_parse_i64(v, out);
}

int srv_topic_config_describe(const srv_config *broker, const srv_topic_config *t, size_t index,
                              srv_config_entry *e)
{
    if (index >= N_TKEYS)
        return 0;
    const tkeydef *k = &TKEYS[index];
    memset(e, 0, offsetof(srv_config_entry, synonyms));
    e->name = k->d.name;
    e->type = k->d.type;
    e->read_only = 0; /* changeable with AlterConfigs / IncrementalAlterConfigs */
    e->doc = k->d.doc;
    e->default_value = k->d.def;
    teff(broker, t, (int)index, e->value, sizeof(e->value), &e->source);
    int at = t ? ov_find(t, (int)index) : -1;
    if (at >= 0) {
        char v[SRV_CONFIG_VALUE_MAX];
        ov_value(t, at, v, sizeof(v));
        srv_cfgk_add_syn(e, k->d.name, v, SRV_SOURCE_TOPIC_CONFIG);
    }
    int n = 0;
    while (n < 3 && k->syn[n])
        n++;
    srv_cfgk_broker_synonyms(broker, k->syn, n, e);
    return 1;
}

int srv_topic_config_describe_name(const srv_config *broker, const srv_topic_config *t, const char *name,
                                   srv_config_entry *out)
{
    int k = tkey_find(name);
    if (k < 0)
        return -1;
    srv_topic_config_describe(broker, t, (size_t)k, out);
    return 0;
}

static int64_t tlong(const srv_config *b, const srv_topic_config *t, const char *name)
{
    int64_t x = 0;
    srv_topic_config_long(b, t, name, &x);
    return x;
}

void srv_topic_config_to_st(const srv_config *b, const srv_topic_config *t, st_log_config *out)
{
    char v[SRV_CONFIG_VALUE_MAX];
    int src;

    out->segment_bytes = (uint64_t)tlong(b, t, "segment.bytes");
    out->segment_ms = tlong(b, t, "segment.ms");
    /* Kafka's 0 means "index every batch"; storage reads 0 as "use 4096". */
    int64_t iib = tlong(b, t, "index.interval.bytes");
    out->index_interval_bytes = (uint32_t)(iib < 1 ? 1 : iib);

    teff(b, t, tkey_find("cleanup.policy"), v, sizeof(v), &src);
    int compact = srv_cfgk_list_contains(v, "compact"), del = srv_cfgk_list_contains(v, "delete");
    out->compact = compact;
    /* Without "delete" nothing is removed by age or size. (The storage engine
     * skips retention for compacted logs, so compact,delete behaves like
     * compact.) */
    out->retention_ms = del ? tlong(b, t, "retention.ms") : -1;
    int64_t rb = tlong(b, t, "retention.bytes");
    out->retention_bytes = del && rb >= 0 ? rb : -1;

    out->sync_acks = b->flush_sync_acks;
    /* Kafka's Long.MAX_VALUE means "never", which storage spells 0. */
    int64_t fm = tlong(b, t, "flush.messages");
    out->flush_messages = fm == INT64_MAX ? 0 : fm;
    int64_t fms = tlong(b, t, "flush.ms");
    out->flush_ms = fms == INT64_MAX ? 0 : fms == 0 ? 1 : fms; /* Kafka's 0 = as soon as possible */

    /* max.message.bytes already counts the 12-byte offset+length header that
     * st_log_append's batch length includes (Kafka default 1048588 = 1 MiB +
     * 12), so it maps 1:1. */
    out->max_batch_bytes = (uint32_t)tlong(b, t, "max.message.bytes");

    teff(b, t, tkey_find("message.timestamp.type"), v, sizeof(v), &src);
    out->log_append_time = strcmp(v, "LogAppendTime") == 0;
    out->delete_retention_ms = tlong(b, t, "delete.retention.ms");
    /* min.cleanable.dirty.ratio has no storage field: the engine schedules
     * compaction itself. The key is still validated and described. */
}

/* ---- overrides stored in metadata ------------------------------------------------ */

/* Overrides were validated when stored; one that no longer validates is
 * skipped with a log line. */
void srv_topic_overrides(const srv_topic *t, srv_topic_config *out)
{
    srv_topic_config_init(out);
    for (int i = 0; i < t->ncfg; i++) {
        char err[160];
        if (srv_topic_config_alter(out, SRV_ALTER_SET, t->cfg[i].key, t->cfg[i].value, err, sizeof(err)) != 0)
            srv_warn("topic %s: stored config %s ignored: %s", t->name, t->cfg[i].key, err);
    }
}

void srv_topic_st_config(const srv_config *broker, const srv_topic *t, st_log_config *out)
{
    srv_topic_config tc;
    srv_topic_overrides(t, &tc);
    /* The config module fills only the config-derived fields. */
    st_log_config_default(out);
    srv_topic_config_to_st(broker, &tc, out);
}

/*
 * kbroker-admin.c — command-line administration for any Kafka-protocol broker
 * (kbroker or Apache Kafka), in the spirit of kafka-topics.sh,
 * kafka-consumer-groups.sh and rpk: topics, consumer groups, a line producer
 * and consumer, and `ping` for container healthchecks.
 *
 * Owns: the command line (global options, dispatch), the `topic`, `produce`
 * and `consume` subcommands, and --help. Group subcommands live in
 * admin_group.c, ping and the shared plumbing in admin_util.c.
 *
 * Must not: use anything but the public Kafka protocol through librdkafka
 * (plus ping's raw ApiVersions), so it works against every broker; auto-create
 * topics as a side effect of describing them (metadata is always requested
 * for all topics); join a consumer group (consume assigns partitions).
 */
#include "admin_util.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: kbroker-admin [--bootstrap HOST:PORT] [--json] [--timeout SECONDS] [security options]\n"
    "                     [-X key=value]... COMMAND\n"
    "\n"
    "Topics:\n"
    "  topic list [--exclude-internal]\n"
    "  topic describe [TOPIC...] [--all-configs]      partitions, leaders, watermarks, config overrides\n"
    "  topic create TOPIC [--partitions N] [--replication-factor N] [--config k=v]... [--if-not-exists]\n"
    "  topic delete TOPIC... [--if-exists]\n"
    "  topic add-partitions TOPIC (--total N | --count N)\n"
    "  topic alter-config TOPIC [--set k=v]... [--delete k]...\n"
    "  topic delete-records TOPIC --before OFFSET [--partition P]   OFFSET -1 = everything (high watermark)\n"
    "Consumer groups:\n"
    "  group list\n"
    "  group describe (GROUP... | --all)              members, committed offsets, log-end offsets, lag\n"
    "  group reset-offsets GROUP (--topic T[:P,P...]... | --all-topics)\n"
    "        (--to-earliest | --to-latest | --to-offset N | --to-datetime "
    "YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm]\n"
    "         | --shift-by N) [--dry-run (default) | --execute]\n"
    "  group delete GROUP...\n"
    "Share groups (KIP-932; PLAINTEXT listeners only):\n"
    "  share-group list [--state]\n"
    "  share-group describe GROUP [--offsets (default) | --members]   start offset and lag per partition,\n"
    "        or members and their assignment\n"
    "Records:\n"
    "  produce TOPIC [--key-separator SEP] [--partition P] [--acks all|1|0]   one record per stdin line\n"
    "  consume TOPIC [--from-beginning | --from-end | --offset N] [--partition P] [--count N]\n"
    "        [--exit-at-end] [--idle-timeout SECONDS] [--print-key] [--key-separator SEP]\n"
    "Health:\n"
    "  ping                                           ApiVersions round trip to every bootstrap address\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  -b, --bootstrap, --bootstrap-server LIST   brokers (default localhost:9092)\n"
    "  --json                  machine-readable output (consume: one JSON object per record)\n"
    "  --timeout SECONDS       per-request timeout and connect deadline (default 10)\n"
    "  -X, --property k=v      librdkafka client property\n"
    "  -v, --verbose           show librdkafka's log\n"
    "\n"
    "Security (librdkafka's property names; the same as -X name=value):\n"
    "  --security.protocol P   PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL\n"
    "  --ssl.ca.location FILE  CA certificate(s) that signed the broker's certificate (PEM)\n"
    "  --ssl.certificate.location FILE   client certificate for mTLS (PEM)\n"
    "  --ssl.key.location FILE           its private key (PEM)\n"
    "  --ssl.key.password PASS           password of an encrypted private key\n"
    "  --sasl.mechanisms M     PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER\n"
    "  --sasl.username U, --sasl.password P\n"
    "  --command-config FILE   librdkafka properties, one key=value per line (keeps passwords off the\n"
    "                          command line)\n"
    "  With a security protocol, ping connects through librdkafka (TLS, SASL) and times a Metadata\n"
    "  round trip instead of a bare ApiVersions.\n"
    "\n"
    "Exit status: 0 ok, 1 the operation failed (unknown topic, refused by the broker, ...),\n"
    "2 bad command line, 3 no broker answered within the timeout.\n";

int cmd_group(int argc, char **argv);       /* admin_group.c */
int cmd_share_group(int argc, char **argv); /* admin_share.c */

/* ---- topic list / describe ----------------------------------------------------- */

static bool is_internal(const char *topic)
{
    return strncmp(topic, "__", 2) == 0;
}

static int topic_list(rd_kafka_t *rk, int argc, char **argv)
{
    bool excl = false;
    for (int i = 0; i < argc; i++) {
        if (adm_flag(argv, i, "--exclude-internal"))
            excl = true;
        else
            return adm_err(EX_USAGE, "topic list: unexpected argument '%s'", argv[i]);
    }
    const struct rd_kafka_metadata *md;
    int rc = adm_metadata(rk, &md);
    if (rc)
        return rc;
    static const char *const hdr[] = {"TOPIC", "PARTITIONS", "REPLICAS"};
    tbl t;
    tbl_init(&t, 3, hdr);
    if (g_opts.json)
        jw_arr();
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *tp = &md->topics[i];
        if (tp->err || (excl && is_internal(tp->topic)))
            continue;
        int rf = tp->partition_cnt > 0 ? tp->partitions[0].replica_cnt : 0;
        if (g_opts.json) {
            jw_obj();
            jw_key("name");
            jw_str(tp->topic);
            jw_key("partitions");
            jw_int(tp->partition_cnt);
            jw_key("replication_factor");
            jw_int(rf);
            jw_key("internal");
            jw_bool(is_internal(tp->topic));
            jw_obj_end();
        } else {
            tbl_cell(&t, "%s", tp->topic);
            tbl_cell(&t, "%d", tp->partition_cnt);
            tbl_cell(&t, "%d", rf);
        }
    }
    if (g_opts.json)
        jw_arr_end(), jw_done();
    else
        tbl_print(&t);
    rd_kafka_metadata_destroy(md);
    return EX_OK;
}

/* DescribeConfigs for `n` topics; *ev keeps the result alive while the
 * returned resources are read. */
static int describe_topic_configs(rd_kafka_t *rk, const char *const *topics, int n, rd_kafka_event_t **ev,
                                  const rd_kafka_ConfigResource_t ***res, size_t *nres)
{
    rd_kafka_ConfigResource_t **cr = calloc((size_t)n, sizeof(*cr));
    for (int i = 0; i < n; i++)
        cr[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topics[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_DescribeConfigs(rk, cr, (size_t)n, o, q);
    int rc;
    *ev = adm_wait_result(q, "DescribeConfigs", &rc);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy_array(cr, (size_t)n);
    free(cr);
    if (!*ev)
        return rc;
    *res = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(*ev), nres);
    return EX_OK;
}

static const rd_kafka_ConfigResource_t *find_resource(const rd_kafka_ConfigResource_t **res, size_t n,
                                                      const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rd_kafka_ConfigResource_name(res[i]), name) == 0)
            return res[i];
    return NULL;
}

static bool is_override(const rd_kafka_ConfigEntry_t *e)
{
    return rd_kafka_ConfigEntry_source(e) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG;
}

static int topic_describe(rd_kafka_t *rk, int argc, char **argv)
{
    bool all_configs = false;
    const char **names = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (adm_flag(argv, i, "--all-configs"))
            all_configs = true;
        else if (argv[i][0] == '-') {
            free(names);
            return adm_err(EX_USAGE, "topic describe: unknown option '%s'", argv[i]);
        } else
            names[n++] = argv[i];
    }
    const struct rd_kafka_metadata *md;
    int rc = adm_metadata(rk, &md);
    if (rc) {
        free(names);
        return rc;
    }
    if (n == 0) { /* like kafka-topics --describe without --topic: every topic */
        names = realloc(names, (size_t)md->topic_cnt * sizeof(char *) + 1);
        for (int i = 0; i < md->topic_cnt; i++)
            names[n++] = md->topics[i].topic;
    }
    for (int i = 0; i < n; i++) {
        const rd_kafka_metadata_topic_t *tp = adm_find_topic(md, names[i]);
        if (!tp || tp->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            rc = adm_err(EX_FAIL, "topic '%s' does not exist", names[i]);
            goto out;
        }
    }
    rd_kafka_event_t *cev = NULL;
    const rd_kafka_ConfigResource_t **res = NULL;
    size_t nres = 0;
    if (n > 0 && (rc = describe_topic_configs(rk, names, n, &cev, &res, &nres)) != EX_OK)
        goto out;

    if (g_opts.json)
        jw_arr();
    for (int i = 0; i < n; i++) {
        const rd_kafka_metadata_topic_t *tp = adm_find_topic(md, names[i]);
        const rd_kafka_ConfigResource_t *cr = find_resource(res, nres, names[i]);
        size_t nce = 0;
        const rd_kafka_ConfigEntry_t **ce =
            cr && !rd_kafka_ConfigResource_error(cr) ? rd_kafka_ConfigResource_configs(cr, &nce) : NULL;
        int rf = tp->partition_cnt > 0 ? tp->partitions[0].replica_cnt : 0;
        if (g_opts.json) {
            jw_obj();
            jw_key("name");
            jw_str(tp->topic);
            jw_key("internal");
            jw_bool(is_internal(tp->topic));
            jw_key("partition_count");
            jw_int(tp->partition_cnt);
            jw_key("replication_factor");
            jw_int(rf);
            jw_key("configs");
            jw_obj();
            for (size_t c = 0; c < nce; c++) {
                if (!all_configs && !is_override(ce[c]))
                    continue;
                jw_key(rd_kafka_ConfigEntry_name(ce[c]));
                if (all_configs) {
                    jw_obj();
                    jw_key("value");
                    jw_str(rd_kafka_ConfigEntry_value(ce[c]));
                    jw_key("source");
                    jw_str(rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(ce[c])));
                    jw_obj_end();
                } else {
                    jw_str(rd_kafka_ConfigEntry_value(ce[c]));
                }
            }
            jw_obj_end();
            jw_key("partitions");
            jw_arr();
        } else {
            printf("Topic: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: ", tp->topic,
                   tp->partition_cnt, rf);
            int shown = 0;
            for (size_t c = 0; c < nce; c++)
                if (is_override(ce[c]))
                    printf("%s%s=%s", shown++ ? "," : "", rd_kafka_ConfigEntry_name(ce[c]),
                           rd_kafka_ConfigEntry_value(ce[c]) ? rd_kafka_ConfigEntry_value(ce[c]) : "");
            putchar('\n');
        }
        static const char *const hdr[] = {"PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "LOG-END"};
        tbl t;
        tbl_init(&t, 6, hdr);
        for (int p = 0; p < tp->partition_cnt; p++) {
            const rd_kafka_metadata_partition_t *mp = &tp->partitions[p];
            int64_t lo = -1, hi = -1;
            rd_kafka_resp_err_t werr =
                rd_kafka_query_watermark_offsets(rk, tp->topic, mp->id, &lo, &hi, g_opts.timeout_ms);
            if (werr)
                adm_note("%s[%d]: watermarks unavailable: %s", tp->topic, mp->id, rd_kafka_err2str(werr));
            char reps[256] = "", isr[256] = "";
            for (int r = 0, o = 0; r < mp->replica_cnt && o < (int)sizeof(reps) - 12; r++)
                o += snprintf(reps + o, sizeof(reps) - (size_t)o, "%s%d", r ? "," : "", mp->replicas[r]);
            for (int r = 0, o = 0; r < mp->isr_cnt && o < (int)sizeof(isr) - 12; r++)
                o += snprintf(isr + o, sizeof(isr) - (size_t)o, "%s%d", r ? "," : "", mp->isrs[r]);
            if (g_opts.json) {
                jw_obj();
                jw_key("partition");
                jw_int(mp->id);
                jw_key("leader");
                jw_int(mp->leader);
                jw_key("replicas");
                jw_arr();
                for (int r = 0; r < mp->replica_cnt; r++)
                    jw_int(mp->replicas[r]);
                jw_arr_end();
                jw_key("isr");
                jw_arr();
                for (int r = 0; r < mp->isr_cnt; r++)
                    jw_int(mp->isrs[r]);
                jw_arr_end();
                jw_key("log_start_offset");
                werr ? jw_null() : jw_int(lo);
                jw_key("log_end_offset");
                werr ? jw_null() : jw_int(hi);
                jw_obj_end();
            } else {
                tbl_cell(&t, "%d", mp->id);
                tbl_cell(&t, "%d", mp->leader);
                tbl_cell(&t, "%s", reps);
                tbl_cell(&t, "%s", isr);
                tbl_cell(&t, "%" PRId64, lo);
                tbl_cell(&t, "%" PRId64, hi);
            }
        }
        if (g_opts.json) {
            jw_arr_end();
            jw_obj_end();
        } else {
            tbl_print(&t);
            if (all_configs) {
                static const char *const chdr[] = {"CONFIG", "VALUE", "SOURCE"};
                tbl_init(&t, 3, chdr);
                for (size_t c = 0; c < nce; c++) {
                    const char *v = rd_kafka_ConfigEntry_value(ce[c]);
                    tbl_cell(&t, "%s", rd_kafka_ConfigEntry_name(ce[c]));
                    tbl_cell(&t, "%s", v ? v : "(null)");
                    tbl_cell(&t, "%s", rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(ce[c])));
                }
                tbl_print(&t);
            }
            if (i + 1 < n)
                putchar('\n');
        }
    }
    if (g_opts.json)
        jw_arr_end(), jw_done();
    if (cev)
        rd_kafka_event_destroy(cev);
out:
    rd_kafka_metadata_destroy(md);
    free(names);
    return rc;
}

/* ---- topic create / delete / add-partitions ------------------------------------- */

/* Reports per-topic results of CreateTopics/DeleteTopics/CreatePartitions.
 * `ignore` is an error code that counts as success (--if-[not-]exists). */
static int report_topic_results(const rd_kafka_topic_result_t **tr, size_t n, const char *verb,
                                rd_kafka_resp_err_t ignore)
{
    int rc = EX_OK;
    if (g_opts.json)
        jw_arr();
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);
        const char *name = rd_kafka_topic_result_name(tr[i]);
        const char *msg = rd_kafka_topic_result_error_string(tr[i]);
        bool ok = !err || err == ignore;
        if (!ok)
            rc = EX_FAIL;
        if (g_opts.json) {
            jw_obj();
            jw_key("topic");
            jw_str(name);
            jw_key("ok");
            jw_bool(ok);
            jw_key("error");
            err ? jw_str(rd_kafka_err2name(err)) : jw_null();
            jw_key("message");
            err ? jw_str(msg ? msg : rd_kafka_err2str(err)) : jw_null();
            jw_obj_end();
        } else if (!err) {
            printf("%s topic %s\n", verb, name);
        } else if (ok) {
            printf("topic %s: %s (ignored)\n", name, rd_kafka_err2name(err));
        } else {
            adm_err(EX_FAIL, "topic %s: %s: %s", name, rd_kafka_err2name(err),
                    msg && *msg ? msg : rd_kafka_err2str(err));
        }
    }
    if (g_opts.json)
        jw_arr_end(), jw_done();
    return rc;
}

static int topic_create(rd_kafka_t *rk, int argc, char **argv)
{
    const char *name = NULL, *v;
    int64_t parts = -1, rf = -1;
    bool if_not_exists = false;
    const char *cfg[64];
    int ncfg = 0, m;
    char errstr[512];
    for (int i = 0; i < argc; i++) {
        if ((m = adm_take_opt(argc, argv, &i, "--partitions", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--partitions", v, 1, INT32_MAX, &parts))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--replication-factor", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--replication-factor", v, 1, INT16_MAX, &rf))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--config", &v)) != 0) {
            if (m < 0)
                return EX_USAGE;
            if (!strchr(v, '=') || ncfg == 64)
                return adm_err(EX_USAGE, "--config wants key=value (at most 64)");
            cfg[ncfg++] = v;
        } else if (adm_flag(argv, i, "--if-not-exists")) {
            if_not_exists = true;
        } else if (argv[i][0] == '-' || name) {
            return adm_err(EX_USAGE, "topic create: unexpected argument '%s'", argv[i]);
        } else {
            name = argv[i];
        }
    }
    if (!name)
        return adm_err(EX_USAGE, "topic create: missing TOPIC");
    /* -1 = the broker's num.partitions / default.replication.factor. */
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, (int)parts, (int)rf, errstr, sizeof(errstr));
    if (!nt)
        return adm_err(EX_USAGE, "topic create: %s", errstr);
    for (int i = 0; i < ncfg; i++) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "%s", cfg[i]);
        char *eq = strchr(kv, '=');
        *eq = 0;
        rd_kafka_NewTopic_set_config(nt, kv, eq + 1);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, o, q);
    int rc;
    rd_kafka_event_t *ev = adm_wait_result(q, "CreateTopics", &rc);
    if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rc = report_topic_results(tr, n, "created",
                                  if_not_exists ? RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS
                                                : RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static int topic_delete(rd_kafka_t *rk, int argc, char **argv)
{
    rd_kafka_DeleteTopic_t **dt = calloc((size_t)argc + 1, sizeof(*dt));
    int n = 0;
    bool if_exists = false;
    for (int i = 0; i < argc; i++) {
        if (adm_flag(argv, i, "--if-exists"))
            if_exists = true;
        else if (argv[i][0] == '-') {
            rd_kafka_DeleteTopic_destroy_array(dt, (size_t)n);
            free(dt);
            return adm_err(EX_USAGE, "topic delete: unknown option '%s'", argv[i]);
        } else
            dt[n++] = rd_kafka_DeleteTopic_new(argv[i]);
    }
    if (n == 0) {
        free(dt);
        return adm_err(EX_USAGE, "topic delete: missing TOPIC");
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_DeleteTopics(rk, dt, (size_t)n, o, q);
    int rc;
    rd_kafka_event_t *ev = adm_wait_result(q, "DeleteTopics", &rc);
    if (ev) {
        size_t nr;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &nr);
        rc = report_topic_results(tr, nr, "deleted",
                                  if_exists ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                                            : RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy_array(dt, (size_t)n);
    free(dt);
    return rc;
}

static int topic_add_partitions(rd_kafka_t *rk, int argc, char **argv)
{
    const char *name = NULL, *v;
    int64_t total = -1, count = -1;
    int m;
    char errstr[512];
    for (int i = 0; i < argc; i++) {
        if ((m = adm_take_opt(argc, argv, &i, "--total", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--total", v, 1, INT32_MAX, &total))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--count", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--count", v, 1, INT32_MAX, &count))
                return EX_USAGE;
        } else if (argv[i][0] == '-' || name) {
            return adm_err(EX_USAGE, "topic add-partitions: unexpected argument '%s'", argv[i]);
        } else {
            name = argv[i];
        }
    }
    if (!name || (total < 0) == (count < 0))
        return adm_err(EX_USAGE, "topic add-partitions: give TOPIC and exactly one of --total N, --count N");
    const struct rd_kafka_metadata *md;
    int rc = adm_metadata(rk, &md);
    if (rc)
        return rc;
    const rd_kafka_metadata_topic_t *tp = adm_find_topic(md, name);
    if (!tp || tp->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rd_kafka_metadata_destroy(md);
        return adm_err(EX_FAIL, "topic '%s' does not exist", name);
    }
    int64_t now = tp->partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (count > 0)
        total = now + count;
    if (total <= now)
        return adm_err(EX_FAIL, "topic %s already has %" PRId64 " partitions; the new total must be larger",
                       name, now);
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(name, (size_t)total, errstr, sizeof(errstr));
    if (!np)
        return adm_err(EX_USAGE, "%s", errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_CreatePartitions(rk, &np, 1, o, q);
    rd_kafka_event_t *ev = adm_wait_result(q, "CreatePartitions", &rc);
    if (ev) {
        size_t nr;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &nr);
        char verb[64];
        snprintf(verb, sizeof(verb), "%" PRId64 " -> %" PRId64 " partitions for", now, total);
        rc = report_topic_results(tr, nr, verb, RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
    return rc;
}

/* ---- topic alter-config ------------------------------------------------------------ */

typedef struct {
    char *name, *value; /* value NULL = delete */
} kv;

/* AlterConfigs (the only alter call in librdkafka 2.0) replaces the topic's
 * whole override set, so the current overrides are read first and the
 * requested changes applied on top — what kafka-configs.sh did before
 * IncrementalAlterConfigs. */
static int alter_config_apply(rd_kafka_t *rk, const char *name, kv *ch, int nch);

static int topic_alter_config(rd_kafka_t *rk, int argc, char **argv)
{
    const char *name = NULL, *v;
    kv ch[128];
    int nch = 0, m, rc = EX_OK;
    for (int i = 0; i < argc && !rc; i++) {
        if ((m = adm_take_opt(argc, argv, &i, "--set", &v)) != 0) {
            const char *eq = m > 0 ? strchr(v, '=') : NULL;
            if (!eq || eq == v || nch == 128) {
                rc = m < 0 ? EX_USAGE : adm_err(EX_USAGE, "--set wants key=value");
                break;
            }
            ch[nch].name = strndup(v, (size_t)(eq - v));
            ch[nch++].value = strdup(eq + 1);
        } else if ((m = adm_take_opt(argc, argv, &i, "--delete", &v)) != 0) {
            if (m < 0 || nch == 128) {
                rc = EX_USAGE;
                break;
            }
            ch[nch].name = strdup(v);
            ch[nch++].value = NULL;
        } else if (argv[i][0] == '-' || name) {
            rc = adm_err(EX_USAGE, "topic alter-config: unexpected argument '%s'", argv[i]);
        } else {
            name = argv[i];
        }
    }
    if (!rc && (!name || nch == 0))
        rc = adm_err(EX_USAGE, "topic alter-config: give TOPIC and at least one --set k=v or --delete k");
    if (!rc)
        rc = alter_config_apply(rk, name, ch, nch);
    for (int j = 0; j < nch; j++)
        free(ch[j].name), free(ch[j].value);
    return rc;
}

static int alter_config_apply(rd_kafka_t *rk, const char *name, kv *ch, int nch)
{
    int rc;
    const struct rd_kafka_metadata *md;
    if ((rc = adm_metadata(rk, &md)) != EX_OK)
        return rc;
    bool exists = adm_find_topic(md, name) != NULL;
    rd_kafka_metadata_destroy(md);
    if (!exists)
        return adm_err(EX_FAIL, "topic '%s' does not exist", name);

    rd_kafka_event_t *cev;
    const rd_kafka_ConfigResource_t **res = NULL;
    size_t nres;
    const char *names[1] = {name};
    if ((rc = describe_topic_configs(rk, names, 1, &cev, &res, &nres)) != EX_OK)
        return rc;
    const rd_kafka_ConfigResource_t *cur = find_resource(res, nres, name);
    if (!cur || rd_kafka_ConfigResource_error(cur)) {
        rc = adm_err(EX_FAIL, "DescribeConfigs %s: %s", name,
                     cur ? rd_kafka_ConfigResource_error_string(cur) : "no result");
        rd_kafka_event_destroy(cev);
        return rc;
    }
    rd_kafka_ConfigResource_t *nr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name);
    size_t nce;
    const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(cur, &nce);
    for (size_t c = 0; c < nce; c++) {
        if (!is_override(ce[c]))
            continue;
        const char *k = rd_kafka_ConfigEntry_name(ce[c]);
        bool changed = false;
        for (int j = 0; j < nch; j++)
            changed |= strcmp(ch[j].name, k) == 0;
        if (!changed)
            rd_kafka_ConfigResource_set_config(nr, k, rd_kafka_ConfigEntry_value(ce[c]));
    }
    rd_kafka_event_destroy(cev);
    /* The last --set/--delete of a key wins. */
    for (int j = 0; j < nch; j++) {
        bool later = false;
        for (int k = j + 1; k < nch; k++)
            later |= strcmp(ch[j].name, ch[k].name) == 0;
        if (!later && ch[j].value)
            rd_kafka_ConfigResource_set_config(nr, ch[j].name, ch[j].value);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_AlterConfigs(rk, &nr, 1, o, q);
    rd_kafka_event_t *ev = adm_wait_result(q, "AlterConfigs", &rc);
    if (ev) {
        size_t n;
        const rd_kafka_ConfigResource_t **r =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
        rd_kafka_resp_err_t err = n ? rd_kafka_ConfigResource_error(r[0]) : RD_KAFKA_RESP_ERR__FAIL;
        if (err) {
            const char *es = n ? rd_kafka_ConfigResource_error_string(r[0]) : NULL;
            rc = adm_err(EX_FAIL, "AlterConfigs %s: %s: %s", name, rd_kafka_err2name(err),
                         es && *es ? es : rd_kafka_err2str(err));
        } else if (g_opts.json) {
            jw_obj();
            jw_key("topic");
            jw_str(name);
            jw_key("ok");
            jw_bool(true);
            jw_key("changes");
            jw_obj();
            for (int j = 0; j < nch; j++) {
                jw_key(ch[j].name);
                jw_str(ch[j].value);
            }
            jw_obj_end();
            jw_obj_end();
            jw_done();
        } else {
            for (int j = 0; j < nch; j++)
                if (ch[j].value)
                    printf("topic %s: set %s=%s\n", name, ch[j].name, ch[j].value);
                else
                    printf("topic %s: deleted override %s\n", name, ch[j].name);
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(nr);
    return rc;
}

/* ---- topic delete-records ------------------------------------------------------------ */

static int topic_delete_records(rd_kafka_t *rk, int argc, char **argv)
{
    const char *name = NULL, *v;
    int64_t before = INT64_MIN, part = -1;
    int m, rc;
    for (int i = 0; i < argc; i++) {
        if ((m = adm_take_opt(argc, argv, &i, "--before", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--before", v, -1, INT64_MAX, &before))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--partition", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--partition", v, 0, INT32_MAX, &part))
                return EX_USAGE;
        } else if (argv[i][0] == '-' || name) {
            return adm_err(EX_USAGE, "topic delete-records: unexpected argument '%s'", argv[i]);
        } else {
            name = argv[i];
        }
    }
    if (!name || before == INT64_MIN)
        return adm_err(EX_USAGE, "topic delete-records: give TOPIC and --before OFFSET");
    const struct rd_kafka_metadata *md;
    if ((rc = adm_metadata(rk, &md)) != EX_OK)
        return rc;
    const rd_kafka_metadata_topic_t *tp = adm_find_topic(md, name);
    if (!tp || tp->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rd_kafka_metadata_destroy(md);
        return adm_err(EX_FAIL, "topic '%s' does not exist", name);
    }
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(tp->partition_cnt);
    for (int p = 0; p < tp->partition_cnt; p++)
        if (part < 0 || tp->partitions[p].id == part)
            rd_kafka_topic_partition_list_add(tpl, name, tp->partitions[p].id)->offset =
                before < 0 ? RD_KAFKA_OFFSET_END : before;
    rd_kafka_metadata_destroy(md);
    if (tpl->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(tpl);
        return adm_err(EX_FAIL, "topic %s has no partition %" PRId64, name, part);
    }
    rd_kafka_DeleteRecords_t *dr = rd_kafka_DeleteRecords_new(tpl);
    rd_kafka_topic_partition_list_destroy(tpl);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_DeleteRecords(rk, &dr, 1, o, q);
    rd_kafka_event_t *ev = adm_wait_result(q, "DeleteRecords", &rc);
    if (ev) {
        const rd_kafka_topic_partition_list_t *r =
            rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
        static const char *const hdr[] = {"TOPIC", "PARTITION", "LOG-START", "ERROR"};
        tbl t;
        tbl_init(&t, 4, hdr);
        if (g_opts.json)
            jw_arr();
        for (int i = 0; r && i < r->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &r->elems[i];
            if (e->err)
                rc = EX_FAIL;
            if (g_opts.json) {
                jw_obj();
                jw_key("topic");
                jw_str(e->topic);
                jw_key("partition");
                jw_int(e->partition);
                jw_key("log_start_offset");
                e->err ? jw_null() : jw_int(e->offset);
                jw_key("error");
                e->err ? jw_str(rd_kafka_err2name(e->err)) : jw_null();
                jw_obj_end();
            } else {
                tbl_cell(&t, "%s", e->topic);
                tbl_cell(&t, "%d", e->partition);
                tbl_cell(&t, "%" PRId64, e->err ? -1 : e->offset);
                tbl_cell(&t, "%s", e->err ? rd_kafka_err2name(e->err) : "-");
            }
        }
        if (g_opts.json)
            jw_arr_end(), jw_done();
        else
            tbl_print(&t);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteRecords_destroy(dr);
    return rc;
}

static int cmd_topic(int argc, char **argv)
{
    static const adm_sub subs[] = {{"list", topic_list},
                                   {"describe", topic_describe},
                                   {"create", topic_create},
                                   {"delete", topic_delete},
                                   {"add-partitions", topic_add_partitions},
                                   {"alter-config", topic_alter_config},
                                   {"delete-records", topic_delete_records}};
    return adm_dispatch("topic", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}

/* ---- produce ------------------------------------------------------------------------ */

static long g_delivered, g_failed;
static char g_first_failure[256];

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (!g_failed++)
            snprintf(g_first_failure, sizeof(g_first_failure), "%s", rd_kafka_err2str(m->err));
    } else {
        g_delivered++;
    }
}

static void produce_hook(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
}

static int cmd_produce(int argc, char **argv)
{
    const char *topic = NULL, *sep = NULL, *acks = "all", *v;
    int64_t part = RD_KAFKA_PARTITION_UA;
    int m;
    for (int i = 0; i < argc; i++) {
        if ((m = adm_take_opt(argc, argv, &i, "--key-separator", &v)) != 0) {
            if (m < 0)
                return EX_USAGE;
            if (!*v)
                return adm_err(EX_USAGE, "--key-separator must not be empty");
            sep = v;
        } else if ((m = adm_take_opt(argc, argv, &i, "--partition", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--partition", v, 0, INT32_MAX, &part))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--acks", &v)) != 0) {
            if (m < 0)
                return EX_USAGE;
            acks = v;
        } else if (argv[i][0] == '-' || topic) {
            return adm_err(EX_USAGE, "produce: unexpected argument '%s'", argv[i]);
        } else {
            topic = argv[i];
        }
    }
    if (!topic)
        return adm_err(EX_USAGE, "produce: missing TOPIC");
    char tmo[32];
    snprintf(tmo, sizeof(tmo), "%d", g_opts.timeout_ms);
    const char *extra[] = {"acks", acks, "linger.ms", "5", "message.timeout.ms", tmo, NULL};
    rd_kafka_t *rk;
    int rc = adm_client(RD_KAFKA_PRODUCER, extra, produce_hook, &rk);
    if (rc)
        return rc;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long sent = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = 0;
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = 0;
        const char *key = NULL, *val = line;
        size_t klen = 0, vlen = (size_t)len;
        if (sep) {
            char *at = strstr(line, sep);
            if (!at) {
                adm_err(EX_FAIL, "line %ld has no key separator '%s'", sent + g_failed + 1, sep);
                rc = EX_FAIL;
                break;
            }
            key = line;
            klen = (size_t)(at - line);
            val = at + strlen(sep);
            vlen = (size_t)len - klen - strlen(sep);
        }
        for (;;) {
            if (rd_kafka_produce(rkt, (int32_t)part, RD_KAFKA_MSG_F_COPY, (void *)val, vlen, key, klen,
                                 NULL) == 0)
                break;
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                adm_err(EX_FAIL, "produce to %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
                rc = EX_FAIL;
                goto done;
            }
            rd_kafka_poll(rk, 50);
        }
        sent++;
        rd_kafka_poll(rk, 0);
    }
done:
    free(line);
    rd_kafka_flush(rk, g_opts.timeout_ms + 1000);
    rd_kafka_poll(rk, 0);
    long unacked = sent - g_delivered - g_failed;
    if (g_failed || unacked > 0) {
        adm_err(EX_FAIL, "%ld of %ld records not delivered to %s: %s", g_failed + unacked, sent, topic,
                g_failed ? g_first_failure : "no acknowledgement within the timeout");
        rc = EX_FAIL;
    }
    if (g_opts.json) {
        jw_obj();
        jw_key("topic");
        jw_str(topic);
        jw_key("produced");
        jw_int(g_delivered);
        jw_key("failed");
        jw_int(sent - g_delivered);
        jw_obj_end();
        jw_done();
    } else {
        adm_note("%ld records produced to %s", g_delivered, topic);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- consume ------------------------------------------------------------------------ */

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void print_record(const rd_kafka_message_t *m, bool print_key, const char *sep)
{
    if (g_opts.json) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        jw_obj();
        jw_key("topic");
        jw_str(rd_kafka_topic_name(m->rkt));
        jw_key("partition");
        jw_int(m->partition);
        jw_key("offset");
        jw_int(m->offset);
        jw_key("timestamp");
        ts >= 0 ? jw_int(ts) : jw_null();
        jw_key("key");
        jw_strn(m->key, m->key_len);
        jw_key("value");
        jw_strn(m->payload, m->len);
        rd_kafka_headers_t *hdrs = NULL;
        jw_key("headers");
        jw_arr();
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *hn;
            const void *hv;
            size_t hl;
            for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &hn, &hv, &hl) == 0; i++) {
                jw_obj();
                jw_key("key");
                jw_str(hn);
                jw_key("value");
                jw_strn(hv, hl);
                jw_obj_end();
            }
        }
        jw_arr_end();
        jw_obj_end();
        jw_done();
    } else {
        if (print_key) {
            if (m->key)
                fwrite(m->key, 1, m->key_len, stdout);
            fputs(sep, stdout);
        }
        if (m->payload)
            fwrite(m->payload, 1, m->len, stdout);
        putchar('\n');
    }
}

static int cmd_consume(int argc, char **argv)
{
    const char *topic = NULL, *sep = "\t", *v;
    int64_t start = RD_KAFKA_OFFSET_END, part = -1, count = -1, idle_s = -1;
    bool exit_at_end = false, print_key = false;
    int m;
    for (int i = 0; i < argc; i++) {
        if (adm_flag(argv, i, "--from-beginning")) {
            start = RD_KAFKA_OFFSET_BEGINNING;
        } else if (adm_flag(argv, i, "--from-end")) {
            start = RD_KAFKA_OFFSET_END;
        } else if ((m = adm_take_opt(argc, argv, &i, "--offset", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--offset", v, 0, INT64_MAX, &start))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--partition", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--partition", v, 0, INT32_MAX, &part))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--count", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--count", v, 1, INT64_MAX, &count))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--idle-timeout", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--idle-timeout", v, 1, 86400 * 365, &idle_s))
                return EX_USAGE;
        } else if ((m = adm_take_opt(argc, argv, &i, "--key-separator", &v)) != 0) {
            if (m < 0)
                return EX_USAGE;
            sep = v;
        } else if (adm_flag(argv, i, "--exit-at-end")) {
            exit_at_end = true;
        } else if (adm_flag(argv, i, "--print-key")) {
            print_key = true;
        } else if (argv[i][0] == '-' || topic) {
            return adm_err(EX_USAGE, "consume: unexpected argument '%s'", argv[i]);
        } else {
            topic = argv[i];
        }
    }
    if (!topic)
        return adm_err(EX_USAGE, "consume: missing TOPIC");
    /* librdkafka's consumer wants a group.id even for assign(); with commits
     * off it only looks the coordinator up and never joins or commits. */
    const char *extra[] = {"enable.partition.eof",
                           "true",
                           "auto.offset.reset",
                           "earliest",
                           "group.id",
                           "kbroker-admin-consume",
                           "enable.auto.commit",
                           "false",
                           "enable.auto.offset.store",
                           "false",
                           NULL};
    rd_kafka_t *rk;
    int rc = adm_client(RD_KAFKA_CONSUMER, extra, NULL, &rk);
    if (rc)
        return rc;
    const struct rd_kafka_metadata *md;
    if ((rc = adm_metadata(rk, &md)) != EX_OK) {
        rd_kafka_destroy(rk);
        return rc;
    }
    const rd_kafka_metadata_topic_t *tp = adm_find_topic(md, topic);
    if (!tp || tp->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return adm_err(EX_FAIL, "topic '%s' does not exist", topic);
    }
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(tp->partition_cnt);
    for (int p = 0; p < tp->partition_cnt; p++)
        if (part < 0 || tp->partitions[p].id == part)
            rd_kafka_topic_partition_list_add(tpl, topic, tp->partitions[p].id)->offset = start;
    rd_kafka_metadata_destroy(md);
    int nparts = tpl->cnt;
    if (nparts == 0) {
        rd_kafka_topic_partition_list_destroy(tpl);
        rd_kafka_destroy(rk);
        return adm_err(EX_FAIL, "topic %s has no partition %" PRId64, topic, part);
    }
    rd_kafka_poll_set_consumer(rk);
    /* assign(), not subscribe(): reading must not join or disturb a group. */
    rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, tpl);
    rd_kafka_topic_partition_list_destroy(tpl);
    if (aerr) {
        rd_kafka_destroy(rk);
        return adm_err(EX_FAIL, "assign %s: %s", topic, rd_kafka_err2str(aerr));
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    /* Partitions currently at their end (EOF seen, no record since). */
    bool *at_end = calloc((size_t)INT16_MAX + 1, sizeof(bool));
    int n_at_end = 0;
    int64_t got = 0, idle_ms = 0;
    while (!g_stop && (count < 0 || got < count)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
        if (!msg) {
            idle_ms += 200;
            if (idle_s > 0 && idle_ms >= idle_s * 1000)
                break;
            continue;
        }
        idle_ms = 0;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (msg->partition <= INT16_MAX && !at_end[msg->partition]) {
                at_end[msg->partition] = true;
                n_at_end++;
            }
            rd_kafka_message_destroy(msg);
            if (exit_at_end && n_at_end >= nparts)
                break;
            continue;
        }
        if (msg->err) {
            rd_kafka_resp_err_t e = msg->err;
            adm_err(EX_FAIL, "consume %s: %s", topic, rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                rc = EX_FAIL;
                break;
            }
            continue;
        }
        if (msg->partition <= INT16_MAX && at_end[msg->partition]) {
            at_end[msg->partition] = false;
            n_at_end--;
        }
        print_record(msg, print_key, sep);
        got++;
        rd_kafka_message_destroy(msg);
    }
    fflush(stdout);
    free(at_end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (!g_opts.json)
        adm_note("%" PRId64 " records consumed from %s", got, topic);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------ */

/* --security.protocol VALUE and the other librdkafka names of
 * adm_security_opts: 1 taken, 0 not one of them, -1 bad. */
static int take_security_opt(int argc, char **argv, int *i)
{
    for (const char *const *o = adm_security_opts; *o; o++) {
        char name[64];
        const char *v;
        snprintf(name, sizeof(name), "--%s", *o);
        int m = adm_take_opt(argc, argv, i, name, &v);
        if (m > 0)
            return adm_add_prop(*o, v) == EX_OK ? 1 : -1;
        if (m < 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0, m, rc = EX_OK;
    const char *v;
    for (int i = 1; i < argc; i++) {
        if ((m = adm_take_opt(argc, argv, &i, "--bootstrap", &v)) != 0 ||
            (m = adm_take_opt(argc, argv, &i, "--bootstrap-server", &v)) != 0 ||
            (m = adm_take_opt(argc, argv, &i, "-b", &v)) != 0) {
            if (m < 0) {
                rc = EX_USAGE;
                goto out;
            }
            g_opts.bootstrap = v;
        } else if ((m = adm_take_opt(argc, argv, &i, "--timeout", &v)) != 0) {
            char *end;
            double s = m > 0 ? strtod(v, &end) : 0;
            if (m < 0 || end == v || *end || s <= 0 || s > 86400) {
                rc = adm_err(EX_USAGE, "--timeout wants a positive number of seconds");
                goto out;
            }
            g_opts.timeout_ms = (int)(s * 1000);
        } else if ((m = adm_take_opt(argc, argv, &i, "--property", &v)) != 0 ||
                   (m = adm_take_opt(argc, argv, &i, "-X", &v)) != 0) {
            const char *eq = m > 0 ? strchr(v, '=') : NULL;
            if (!eq || g_opts.n_props == ADM_MAX_PROPS) {
                rc = adm_err(EX_USAGE, "-X wants key=value");
                goto out;
            }
            g_opts.props[g_opts.n_props][0] = strndup(v, (size_t)(eq - v));
            g_opts.props[g_opts.n_props++][1] = eq + 1;
        } else if ((m = adm_take_opt(argc, argv, &i, "--command-config", &v)) != 0) {
            if (m < 0 || (rc = adm_read_command_config(v)) != EX_OK) {
                rc = rc ? rc : EX_USAGE;
                goto out;
            }
        } else if ((m = take_security_opt(argc, argv, &i)) != 0) {
            if (m < 0) {
                rc = EX_USAGE;
                goto out;
            }
        } else if (adm_flag(argv, i, "--json")) {
            g_opts.json = true;
        } else if (adm_flag(argv, i, "-v") || adm_flag(argv, i, "--verbose")) {
            g_opts.verbose = true;
        } else if (adm_flag(argv, i, "-h") || adm_flag(argv, i, "--help") || adm_flag(argv, i, "help")) {
            fputs(usage_text, stdout);
            goto out;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (nrest == 0) {
        fputs(usage_text, stderr);
        rc = EX_USAGE;
    } else if (strcmp(rest[0], "ping") == 0) {
        rc = cmd_ping(nrest - 1, rest + 1);
    } else if (strcmp(rest[0], "topic") == 0 || strcmp(rest[0], "topics") == 0) {
        rc = cmd_topic(nrest - 1, rest + 1);
    } else if (strcmp(rest[0], "group") == 0 || strcmp(rest[0], "groups") == 0) {
        rc = cmd_group(nrest - 1, rest + 1);
    } else if (strcmp(rest[0], "share-group") == 0 || strcmp(rest[0], "share-groups") == 0) {
        rc = cmd_share_group(nrest - 1, rest + 1);
    } else if (strcmp(rest[0], "produce") == 0) {
        rc = cmd_produce(nrest - 1, rest + 1);
    } else if (strcmp(rest[0], "consume") == 0) {
        rc = cmd_consume(nrest - 1, rest + 1);
    } else {
        rc = adm_err(EX_USAGE, "unknown command '%s' (see --help)", rest[0]);
    }
out:
    free(rest);
    fflush(stdout);
    return rc;
}

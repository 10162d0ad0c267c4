/*
 * test_config.c — unit tests of server/config.c and topic_config.c: properties syntax,
 * precedence, listeners, unknown and cluster keys, validation, the CLI,
 * DescribeConfigs entries, topic overrides and the storage mapping.
 *
 * Owns: temporary config files it creates under /tmp (removed again).
 * Must not: depend on other server modules or on the network.
 */
#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "topic_config.h"

#define I64_MAX_STR "9223372036854775807"

/* ---- helpers ------------------------------------------------------------------- */

/* Log lines captured from the config module (tests are single-threaded). */
static char g_log[64][600];
static int g_nlog;

static void capture(int level, const char *msg)
{
    (void)level;
    if (g_nlog < 64)
        snprintf(g_log[g_nlog++], sizeof(g_log[0]), "%s", msg);
}

static int log_count(const char *needle)
{
    int c = 0;
    for (int i = 0; i < g_nlog; i++)
        c += strstr(g_log[i], needle) != NULL;
    return c;
}

static srv_config *new_cfg(void)
{
    srv_config *c = calloc(1, sizeof(*c));
    CU_ASSERT_FATAL(c != NULL);
    g_nlog = 0;
    srv_config_init(c, capture);
    return c;
}

static char g_path[64];

static const char *write_file(const char *text)
{
    snprintf(g_path, sizeof(g_path), "/tmp/test_config_XXXXXX");
    int fd = mkstemp(g_path);
    CU_ASSERT_FATAL(fd >= 0);
    size_t n = strlen(text);
    CU_ASSERT_FATAL(write(fd, text, n) == (ssize_t)n);
    close(fd);
    return g_path;
}

/* Loads `text` as a properties file, then finishes. Returns the rc. */
static int load_text(srv_config *c, const char *text, char *err, size_t errlen)
{
    int rc = srv_config_load_string(c, text, strlen(text), "test.properties", err, errlen);
    if (rc == 0)
        rc = srv_config_finish(c, err, errlen);
    return rc;
}

/* argv-style run with an optional config file (NULL = none). */
static int run_args(srv_config *c, const char *file_text, const char **extra, int n_extra, char *err,
                    size_t errlen)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "kbroker";
    const char *path = NULL;
    if (file_text) {
        path = write_file(file_text);
        argv[argc++] = "--config";
        argv[argc++] = (char *)path;
    }
    for (int i = 0; i < n_extra; i++)
        argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;
    int rc = srv_config_parse_args(argc, argv, c, err, errlen);
    if (path)
        unlink(path);
    return rc;
}

static const srv_config_synonym *find_syn(const srv_config_entry *e, const char *name, int source)
{
    for (int i = 0; i < e->n_synonyms; i++)
        if (strcmp(e->synonyms[i].name, name) == 0 && e->synonyms[i].source == source)
            return &e->synonyms[i];
    return NULL;
}

/* ---- defaults --------------------------------------------------------------------- */

static void test_defaults(void)
{
    srv_config *c = new_cfg();
    char err[512] = "";
    CU_ASSERT_EQUAL(run_args(c, NULL, NULL, 0, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c->n_listeners, 1);
    CU_ASSERT_STRING_EQUAL(c->listeners[0].name, "PLAINTEXT");
    CU_ASSERT_STRING_EQUAL(c->listeners[0].host, "localhost");
    CU_ASSERT_EQUAL(c->listeners[0].port, 9092);
    CU_ASSERT_EQUAL(c->n_advertised, 1);
    CU_ASSERT_STRING_EQUAL(c->advertised[0].host, "localhost");
    CU_ASSERT_EQUAL(c->n_log_dirs, 1);
    CU_ASSERT_STRING_EQUAL(c->log_dirs[0], "./data");
    CU_ASSERT_EQUAL(c->node_id, 1);
    CU_ASSERT_EQUAL(c->num_partitions, 1);
    CU_ASSERT_EQUAL(c->default_replication_factor, 1);
    CU_ASSERT_TRUE(c->auto_create_topics_enable);
    CU_ASSERT_TRUE(c->delete_topic_enable);
    CU_ASSERT_EQUAL(c->log_retention_ms, 168LL * 3600 * 1000);
    CU_ASSERT_EQUAL(c->log_retention_bytes, -1);
    CU_ASSERT_EQUAL(c->log_segment_bytes, 1073741824);
    CU_ASSERT_EQUAL(c->log_roll_ms, 168LL * 3600 * 1000);
    CU_ASSERT_EQUAL(c->log_retention_check_interval_ms, 300000);
    CU_ASSERT_EQUAL(c->log_flush_interval_messages, INT64_MAX);
    CU_ASSERT_EQUAL(c->log_flush_interval_ms, INT64_MAX);
    CU_ASSERT_TRUE(c->log_cleanup_delete);
    CU_ASSERT_FALSE(c->log_cleanup_compact);
    CU_ASSERT_EQUAL(c->message_max_bytes, 1048588);
    CU_ASSERT_EQUAL(c->socket_request_max_bytes, 104857600);
    CU_ASSERT_EQUAL(c->connections_max_idle_ms, 600000);
    CU_ASSERT_EQUAL(c->offsets_retention_minutes, 10080);
    CU_ASSERT_EQUAL(c->offsets_topic_num_partitions, 50);
    CU_ASSERT_EQUAL(c->group_initial_rebalance_delay_ms, 3000);
    CU_ASSERT_EQUAL(c->group_min_session_timeout_ms, 6000);
    CU_ASSERT_EQUAL(c->group_max_session_timeout_ms, 1800000);
    CU_ASSERT_EQUAL(c->log_message_timestamp_type, SRV_TS_CREATE_TIME);
    CU_ASSERT_STRING_EQUAL(c->compression_type, "producer");
    CU_ASSERT_EQUAL(c->transactional_id_expiration_ms, 604800000);
    CU_ASSERT_EQUAL(c->producer_id_expiration_ms, 86400000);
    CU_ASSERT_EQUAL(c->queued_max_request_bytes, -1);
    CU_ASSERT_EQUAL(c->metrics_port, 0);
    CU_ASSERT_TRUE(c->flush_sync_acks);
    CU_ASSERT_TRUE(c->shards >= 1);
    CU_ASSERT_EQUAL(c->n_unknown, 0);
    CU_ASSERT_EQUAL(g_nlog, 0);
    free(c);
}

/* ---- properties syntax ------------------------------------------------------------- */

static void test_properties_syntax(void)
{
    srv_config *c = new_cfg();
    char err[512] = "";
    const char *text = "# comment = not a key\n"
                       "! also a comment\n"
                       "   # indented comment\n"
                       "\n"
                       "   \t \n"
                       "num.partitions=3\n"
                       "  log.retention.bytes :  12345   \n"
                       "log.segment.bytes 2097152\n"
                       "log.dir=/data/a\\\n"
                       "        /more\\\\\n"
                       "my\\:odd\\=key\\ x = v\n"
                       "# a comment ending in a backslash is not continued \\\n"
                       "delete.topic.enable=FALSE\r\n"
                       "compression.type\t=\tlz4\r"
                       "log.message.timestamp.type=\\u004cogAppendTime\n"
                       "auto.create.topics.enable:false\n"
                       "num.partitions=4\n"; /* last one wins */
    CU_ASSERT_EQUAL(load_text(c, text, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c->num_partitions, 4);
    CU_ASSERT_EQUAL(c->log_retention_bytes, 12345);
    CU_ASSERT_EQUAL(c->log_segment_bytes, 2097152);
    CU_ASSERT_STRING_EQUAL(c->log_dirs[0], "/data/a/more\\");
    CU_ASSERT_TRUE(srv_config_is_unknown(c, "my:odd=key x"));
    CU_ASSERT_FALSE(srv_config_is_unknown(c, "a"));
    CU_ASSERT_FALSE(c->delete_topic_enable);
    CU_ASSERT_STRING_EQUAL(c->compression_type, "lz4");
    CU_ASSERT_EQUAL(c->log_message_timestamp_type, SRV_TS_LOG_APPEND_TIME);
    CU_ASSERT_FALSE(c->auto_create_topics_enable);
    CU_ASSERT_EQUAL(c->n_unknown, 1);
    CU_ASSERT_STRING_EQUAL(srv_config_get_raw(c, "delete.topic.enable"), "false");
    free(c);

    /* A control character produced by an escape is rejected, naming the line. */
    c = new_cfg();
    CU_ASSERT_NOT_EQUAL(load_text(c, "\n\nbroker.rack=r\\u00e9\\tx\n", err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.properties:3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "broker.rack"));
    free(c);

    /* \u escapes: UTF-8 output, surrogate pairs, malformed ones. */
    c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c, "log.dir=/d\\u00e9\\uD83D\\uDE00\n", err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(c->log_dirs[0], "/d\xc3\xa9\xf0\x9f\x98\x80");
    free(c);
    c = new_cfg();
    CU_ASSERT_NOT_EQUAL(load_text(c, "log.dir=/d\\u00zz\n", err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\\u escape (four hex digits"));
    free(c);
    c = new_cfg();
    CU_ASSERT_NOT_EQUAL(load_text(c, "log.dir=/d\\uD83D\n", err, sizeof(err)), 0);
    free(c);

    /* A continuation inside the key, and one at end of file. */
    c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c, "num.\\\n   partitions=7\nlog.dir=/x\\", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c->num_partitions, 7);
    CU_ASSERT_STRING_EQUAL(c->log_dirs[0], "/x");
    free(c);
}

/* ---- precedence ---------------------------------------------------------------------- */

static void test_precedence(void)
{
    char err[512] = "";
    srv_config *c = new_cfg();
    /* --set given before --config still wins over the file. */
    const char *args[] = {"--set", "num.partitions=5", "--set=log.retention.bytes=99"};
    CU_ASSERT_EQUAL(run_args(c, "num.partitions=3\nmessage.max.bytes=2000\n", args, 3, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c->num_partitions, 5);
    CU_ASSERT_EQUAL(c->message_max_bytes, 2000);
    CU_ASSERT_EQUAL(c->log_retention_bytes, 99);
    CU_ASSERT_EQUAL(c->socket_request_max_bytes, 104857600);
    srv_config_entry *e = malloc(sizeof(*e));
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "num.partitions", e), 0);
    CU_ASSERT_STRING_EQUAL(e->value, "5");
    CU_ASSERT_EQUAL(e->source, SRV_SOURCE_STATIC_BROKER_CONFIG);
    CU_ASSERT_EQUAL(e->type, SRV_TYPE_INT);
    CU_ASSERT_TRUE(e->read_only);
    CU_ASSERT_PTR_NOT_NULL(find_syn(e, "num.partitions", SRV_SOURCE_DEFAULT_CONFIG));
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "socket.request.max.bytes", e), 0);
    CU_ASSERT_EQUAL(e->source, SRV_SOURCE_DEFAULT_CONFIG);
    CU_ASSERT_STRING_EQUAL(e->value, "104857600");
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "no.such.key", e), -1);
    free(e);
    free(c);

    /* Later --set of the same key wins; --shards is an override like --set. */
    c = new_cfg();
    const char *args2[] = {"--shards", "4", "--set", "shards=6", "--metrics-port=9100", "--set", "shards=3"};
    CU_ASSERT_EQUAL(run_args(c, "shards=2\n", args2, 7, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c->shards, 3);
    CU_ASSERT_EQUAL(c->metrics_port, 9100);
    free(c);

    /* A bare argument is the config file, like kafka-server-start.sh. */
    c = new_cfg();
    const char *path = write_file("num.partitions=9\n");
    char *argv[] = {"kbroker", (char *)path, "--override", "node.id=4", NULL};
    CU_ASSERT_EQUAL(srv_config_parse_args(4, argv, c, err, sizeof(err)), 0);
    unlink(path);
    CU_ASSERT_EQUAL(c->num_partitions, 9);
    CU_ASSERT_EQUAL(c->node_id, 4);
    free(c);
}

static void test_retention_precedence(void)
{
    char err[512] = "";
    struct {
        const char *text;
        int64_t want;
    } cases[] = {
        {"log.retention.hours=24\n", 24LL * 3600000},
        {"log.retention.hours=24\nlog.retention.minutes=30\n", 30LL * 60000},
        {"log.retention.hours=24\nlog.retention.minutes=30\nlog.retention.ms=1000\n", 1000},
        {"log.retention.ms=-1\nlog.retention.hours=1\n", -1},
        {"log.retention.hours=-5\n", -1},
        {"", 168LL * 3600000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        srv_config *c = new_cfg();
        CU_ASSERT_EQUAL(load_text(c, cases[i].text, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(c->log_retention_ms, cases[i].want);
        free(c);
    }
    srv_config *c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c, "log.roll.hours=2\nlog.flush.scheduler.interval.ms=500\n", err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(c->log_roll_ms, 2 * 3600000LL);
    CU_ASSERT_EQUAL(c->log_flush_interval_ms, 500);
    free(c);
    c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c,
                              "log.roll.hours=2\nlog.roll.ms=60000\nlog.flush.interval.ms=7\n"
                              "log.flush.scheduler.interval.ms=500\n",
                              err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(c->log_roll_ms, 60000);
    CU_ASSERT_EQUAL(c->log_flush_interval_ms, 7);
    free(c);
}

/* ---- listeners -------------------------------------------------------------------- */

static void test_listeners(void)
{
    char err[512] = "";
    srv_config *c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c,
                              "listeners=PLAINTEXT://:9092, internal://[::1]:9093,V6://::1:9094\n"
                              "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:plaintext,"
                              "V6:PLAINTEXT\n",
                              err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(c->n_listeners, 3);
    CU_ASSERT_STRING_EQUAL(c->listeners[0].host, "");
    CU_ASSERT_EQUAL(c->listeners[0].port, 9092);
    CU_ASSERT_STRING_EQUAL(c->listeners[1].name, "INTERNAL");
    CU_ASSERT_STRING_EQUAL(c->listeners[1].host, "::1");
    CU_ASSERT_TRUE(c->listeners[1].ipv6);
    CU_ASSERT_EQUAL(c->listeners[1].port, 9093);
    CU_ASSERT_STRING_EQUAL(c->listeners[2].host, "::1");
    CU_ASSERT_TRUE(c->listeners[2].ipv6);
    /* Derived advertised listeners: an empty host becomes localhost. */
    CU_ASSERT_EQUAL(c->n_advertised, 3);
    CU_ASSERT_STRING_EQUAL(c->advertised[0].host, "localhost");
    CU_ASSERT_EQUAL(c->advertised[0].port, 9092);
    CU_ASSERT_STRING_EQUAL(c->advertised[1].host, "::1");
    free(c);

    /* Explicit advertised listeners may be a subset. */
    c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c,
                              "listeners=PLAINTEXT://0.0.0.0:9092\n"
                              "advertised.listeners=PLAINTEXT://broker.example:19092\n",
                              err, sizeof(err)),
                    0);
    CU_ASSERT_STRING_EQUAL(c->listeners[0].host, "0.0.0.0");
    CU_ASSERT_STRING_EQUAL(c->advertised[0].host, "broker.example");
    CU_ASSERT_EQUAL(c->advertised[0].port, 19092);
    free(c);

    /* An SSL name mapped to PLAINTEXT is fine. */
    c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c, "listeners=SSL://:9093\nlistener.security.protocol.map=SSL:PLAINTEXT\n", err,
                              sizeof(err)),
                    0);
    free(c);

    struct {
        const char *text;
        const char *needle;
    } bad[] = {
        {"listeners=SSL://:9093\n", "SSL"},
        {"listeners=SASL_PLAINTEXT://:9093\n", "GSSAPI"},
        {"listeners=FOO://:9093\n", "No security protocol defined for listener FOO"},
        {"listeners=PLAINTEXT://localhost\n", "no port"},
        {"listeners=PLAINTEXT://localhost:70000\n", "0 to 65535"},
        {"listeners=PLAINTEXT://localhost:x1\n", "listeners"},
        {"listeners=localhost:9092\n", "NAME://host:port"},
        {"listeners=PLAINTEXT://a:1,PLAINTEXT://b:2\n", "twice"},
        {"listeners=A://:1,B://:1\nlistener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n", "same port"},
        {"listeners=\n", "listeners"},
        {"listeners=PLAINTEXT://0.0.0.0:9092\n", "non-routable"},
        {"advertised.listeners=OTHER://h:1\n", "not one of the listeners"},
        {"listener.security.protocol.map=PLAINTEXT:TLS\n", "unknown security protocol"},
        {"listener.security.protocol.map=PLAINTEXT\n", "NAME:PROTOCOL"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = new_cfg();
        err[0] = '\0';
        CU_ASSERT_NOT_EQUAL(load_text(c, bad[i].text, err, sizeof(err)), 0);
        if (!strstr(err, bad[i].needle))
            fprintf(stderr, "\ncase %zu: '%s' lacks '%s'\n", i, err, bad[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].needle));
        free(c);
    }
}

/* Kafka 3.9's config/kraft/server.properties must load without noise about
 * unknown keys: controller parts are recognised and skipped. */
static void test_kafka_kraft_sample(void)
{
    char err[512] = "";
    srv_config *c = new_cfg();
    const char *text = "process.roles=broker,controller\n"
                       "node.id=1\n"
                       "controller.quorum.voters=1@localhost:9093\n"
                       "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n"
                       "inter.broker.listener.name=PLAINTEXT\n"
                       "advertised.listeners=PLAINTEXT://localhost:9092\n"
                       "controller.listener.names=CONTROLLER\n"
                       "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,"
                       "SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n"
                       "num.network.threads=3\n"
                       "num.io.threads=8\n"
                       "socket.send.buffer.bytes=102400\n"
                       "socket.receive.buffer.bytes=102400\n"
                       "socket.request.max.bytes=104857600\n"
                       "log.dirs=/tmp/kraft-combined-logs\n"
                       "num.partitions=1\n"
                       "num.recovery.threads.per.data.dir=1\n"
                       "offsets.topic.replication.factor=1\n"
                       "transaction.state.log.replication.factor=1\n"
                       "transaction.state.log.min.isr=1\n"
                       "log.retention.hours=168\n"
                       "log.segment.bytes=1073741824\n"
                       "log.retention.check.interval.ms=300000\n";
    CU_ASSERT_EQUAL(run_args(c, text, NULL, 0, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c->n_unknown, 0);
    CU_ASSERT_EQUAL(c->n_listeners, 1);
    CU_ASSERT_STRING_EQUAL(c->listeners[0].name, "PLAINTEXT");
    CU_ASSERT_EQUAL(c->n_advertised, 1);
    CU_ASSERT_STRING_EQUAL(c->advertised[0].host, "localhost");
    CU_ASSERT_STRING_EQUAL(c->log_dirs[0], "/tmp/kraft-combined-logs");
    CU_ASSERT_EQUAL(log_count("unknown"), 0);
    CU_ASSERT_EQUAL(log_count("'process.roles' does not apply to a single-node broker"), 1);
    CU_ASSERT_EQUAL(log_count("'controller.quorum.voters' does not apply"), 1);
    CU_ASSERT_EQUAL(log_count("'num.io.threads' is accepted but has no effect"), 1);
    CU_ASSERT_EQUAL(log_count("CONTROLLER is a KRaft controller listener"), 1);
    free(c);
}

/* ---- security protocols ---------------------------------------------------------- */

static const char JAAS_LINE[] = "org.apache.kafka.common.security.plain.PlainLoginModule required "
                                "user_alice=\"alice-secret\";";

static void test_security_listeners(void)
{
    char err[512] = "";
    char text[4096];
    srv_config *c = new_cfg();
    snprintf(text, sizeof(text),
             "listeners=PLAINTEXT://:9092,SSL://:9093,SASL_PLAINTEXT://:9094,SASL_SSL://:9095,MTLS://:9096\n"
             "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
             "SASL_SSL:SASL_SSL,MTLS:SSL\n"
             "advertised.listeners=PLAINTEXT://h:9092,SSL://h:9093\n"
             "sasl.enabled.mechanisms=PLAIN\n"
             "listener.name.sasl_plaintext.plain.sasl.jaas.config=%s\n"
             "listener.name.SASL_SSL.plain.sasl.jaas.config=%s\n"
             "ssl.keystore.type=PEM\nssl.keystore.location=/k.pem\nssl.keystore.password=hunter2\n"
             "listener.name.sasl_ssl.ssl.keystore.type=PKCS12\n"
             "listener.name.sasl_ssl.ssl.keystore.location=/k.p12\n"
             "listener.name.mtls.ssl.client.auth=required\n",
             JAAS_LINE, JAAS_LINE);
    CU_ASSERT_EQUAL_FATAL(load_text(c, text, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c->n_listeners, 5);
    CU_ASSERT_EQUAL(c->listeners[0].proto, SRV_PROTO_PLAINTEXT);
    CU_ASSERT_EQUAL(c->listeners[1].proto, SRV_PROTO_SSL);
    CU_ASSERT_EQUAL(c->listeners[2].proto, SRV_PROTO_SASL_PLAINTEXT);
    CU_ASSERT_EQUAL(c->listeners[3].proto, SRV_PROTO_SASL_SSL);
    CU_ASSERT_EQUAL(c->listeners[4].proto, SRV_PROTO_SSL);
    /* listener.name.<l>. overrides win, per listener, names case-insensitive. */
    CU_ASSERT_STRING_EQUAL(srv_config_sec(c, "SASL_SSL", "ssl.keystore.type"), "PKCS12");
    CU_ASSERT_STRING_EQUAL(srv_config_sec(c, "SSL", "ssl.keystore.type"), "PEM");
    CU_ASSERT_STRING_EQUAL(srv_config_sec(c, "MTLS", "ssl.client.auth"), "required");
    CU_ASSERT_PTR_NULL(srv_config_sec(c, "SSL", "ssl.client.auth"));
    CU_ASSERT_STRING_EQUAL(srv_config_sec(c, "SASL_SSL", "plain.sasl.jaas.config"), JAAS_LINE);
    CU_ASSERT_EQUAL(c->sasl_server_max_receive_size, 524288);
    CU_ASSERT_EQUAL(c->connection_failed_authentication_delay_ms, 100);
    /* Secrets are not unknown keys, not logged, and DescribeConfigs lists
     * them as Kafka does: sensitive, value null. */
    CU_ASSERT_FALSE(srv_config_is_unknown(c, "ssl.keystore.password"));
    CU_ASSERT_EQUAL(log_count("hunter2"), 0);
    srv_config_entry e;
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "ssl.keystore.password", &e), 0);
    CU_ASSERT_TRUE(e.sensitive);
    CU_ASSERT_TRUE(e.value_null);
    CU_ASSERT_EQUAL(e.type, SRV_TYPE_PASSWORD);
    CU_ASSERT_EQUAL(e.source, SRV_SOURCE_STATIC_BROKER_CONFIG);
    CU_ASSERT_PTR_NULL(strstr(e.value, "hunter2"));
    for (int i = 0; i < e.n_synonyms; i++)
        CU_ASSERT_TRUE(e.synonyms[i].value_null);
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "listener.name.mtls.ssl.client.auth", &e), 0);
    CU_ASSERT_STRING_EQUAL(e.value, "required");
    CU_ASSERT_FALSE(e.sensitive);
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "listener.name.sasl_ssl.plain.sasl.jaas.config", &e), 0);
    CU_ASSERT_TRUE(e.sensitive && e.value_null);
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "ssl.truststore.type", &e), 0);
    CU_ASSERT_STRING_EQUAL(e.value, "JKS");
    CU_ASSERT_EQUAL(e.source, SRV_SOURCE_DEFAULT_CONFIG);
    free(c);

    struct {
        const char *text;
        const char *needle;
    } bad[] = {
        /* Kafka's wording for a listener absent from the map. */
        {"listeners=PLAINTEXT://:1,EXT://:2\n",
         "Error creating broker listeners from 'PLAINTEXT://:1,EXT://:2': No security protocol defined for "
         "listener EXT"},
        {"listeners=SSL://:1\nssl.keystore.location=/ks.jks\n", "convert the keystore to PKCS12"},
        {"listeners=SSL://:1\nssl.keystore.type=JKS\nssl.keystore.location=/ks.jks\n",
         "JKS is not supported"},
        {"listeners=SSL://:1\nssl.keystore.type=PEM\n", "ssl.keystore.location"},
        {"listeners=SSL://:1\nssl.keystore.type=BCFKS\nssl.keystore.location=/k\n", "PEM or PKCS12"},
        {"listeners=SSL://:1\nssl.keystore.type=PEM\nssl.keystore.location=/k\nssl.client.auth=maybe\n",
         "Invalid value maybe for configuration ssl.client.auth"},
        {"listeners=SSL://:1\nssl.keystore.type=PEM\nssl.keystore.location=/"
         "k\nssl.enabled.protocols=TLSv1.1\n",
         "TLSv1.1"},
        {"listeners=SSL://:1\nssl.keystore.type=PEM\nssl.keystore.location=/k\n"
         "ssl.truststore.location=/t.jks\n",
         "truststore"},
        {"listeners=SASL_PLAINTEXT://:1\nsasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256\n"
         "listener.name.sasl_plaintext.plain.sasl.jaas.config=x\n",
         "SCRAM-SHA-256"},
        {"listeners=SASL_PLAINTEXT://:1\nsasl.enabled.mechanisms=PLAIN\n",
         "listener.name.SASL_PLAINTEXT.plain.sasl.jaas.config"},
        /* A broker does not read the unprefixed key (Kafka 4.4 refuses to start too). */
        {"listeners=SASL_PLAINTEXT://:1\nsasl.enabled.mechanisms=PLAIN\nsasl.jaas.config=x\n", "JAAS"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = new_cfg();
        err[0] = '\0';
        CU_ASSERT_NOT_EQUAL(load_text(c, bad[i].text, err, sizeof(err)), 0);
        if (!strstr(err, bad[i].needle))
            fprintf(stderr, "\ncase %zu: '%s' lacks '%s'\n", i, err, bad[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].needle));
        free(c);
    }
}

/* ---- unknown, cluster and invalid keys ------------------------------------------ */

static void test_unknown_keys(void)
{
    char err[512] = "";
    srv_config *c = new_cfg();
    const char *args[] = {"--set", "my.custom.key=2", "--set", "ssl.keymanager.algorithm=hunter2"};
    CU_ASSERT_EQUAL(run_args(c,
                             "my.custom.key=1\nmy.custom.key=1b\nzookeeper.connect=localhost:2181\n"
                             "zookeeper.connect=zk:2181\n",
                             args, 4, err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(c->n_unknown, 2);
    CU_ASSERT_TRUE(srv_config_is_unknown(c, "my.custom.key"));
    CU_ASSERT_TRUE(srv_config_is_unknown(c, "ssl.keymanager.algorithm"));
    CU_ASSERT_EQUAL(log_count("unknown config key 'my.custom.key' ignored"), 1);
    CU_ASSERT_EQUAL(log_count("unknown config key 'ssl.keymanager.algorithm' ignored"), 1);
    CU_ASSERT_EQUAL(log_count("hunter2"), 0); /* values of unknown keys are never logged */
    CU_ASSERT_EQUAL(log_count("'zookeeper.connect' does not apply to a single-node broker"), 1);
    CU_ASSERT_STRING_EQUAL(srv_config_get_raw(c, "zookeeper.connect"), "zk:2181");
    free(c);
}

static void test_invalid_values(void)
{
    struct {
        const char *text;
        const char *needle1, *needle2;
    } bad[] = {
        {"num.partitions=abc\n", "num.partitions", "abc"},
        {"num.partitions=0\n", "num.partitions", "at least 1"},
        {"num.partitions=2147483648\n", "num.partitions", "32-bit"},
        {"auto.create.topics.enable=yes\n", "auto.create.topics.enable", "yes"},
        {"default.replication.factor=3\n", "default.replication.factor", "single-node"},
        {"log.cleanup.policy=delete,foo\n", "log.cleanup.policy", "foo"},
        {"log.message.timestamp.type=createtime\n", "log.message.timestamp.type", "CreateTime"},
        {"compression.type=brotli\n", "compression.type", "brotli"},
        {"log.cleaner.min.cleanable.ratio=1.5\n", "log.cleaner.min.cleanable.ratio", "1.5"},
        {"log.cleaner.min.cleanable.ratio=nan\n", "log.cleaner.min.cleanable.ratio", "nan"},
        {"log.retention.ms=12x\n", "log.retention.ms", "12x"},
        {"log.retention.bytes=99999999999999999999\n", "log.retention.bytes", "64-bit"},
        {"log.segment.bytes=10\n", "log.segment.bytes", "at least 14"},
        {"metrics.port=65536\n", "metrics.port", "between 0 and 65535"},
        {"shards=-1\n", "shards", "-1"},
        {"compression.gzip.level=0\n", "compression.gzip.level", "-1"},
        {"offsets.topic.replication.factor=40000\n", "offsets.topic.replication.factor", "16-bit"},
        {"node.id=2\nbroker.id=3\n", "node.id", "broker.id"},
        {"group.min.session.timeout.ms=10\ngroup.max.session.timeout.ms=5\n", "group.min.session", "5"},
        {"log.dirs=/a,,/b\n", "log.dirs", "empty"},
        {"log.dirs=/a,/a\n", "/a", "twice"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        srv_config *c = new_cfg();
        char err[512] = "";
        CU_ASSERT_NOT_EQUAL(load_text(c, bad[i].text, err, sizeof(err)), 0);
        int ok = strstr(err, bad[i].needle1) && strstr(err, bad[i].needle2);
        if (!ok)
            fprintf(stderr, "\ncase %zu: '%s'\n", i, err);
        CU_ASSERT_TRUE(ok);
        free(c);
    }
    /* Valid edge values. */
    srv_config *c = new_cfg();
    char err[512] = "";
    CU_ASSERT_EQUAL(load_text(c,
                              "node.id=7\nbroker.id=7\nnum.partitions=+0012\nlog.retention.bytes=-5\n"
                              "log.cleanup.policy=compact , delete\nlog.cleaner.min.cleanable.ratio=1\n"
                              "log.dirs=/a, /b\n",
                              err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(c->node_id, 7);
    CU_ASSERT_EQUAL(c->num_partitions, 12);
    CU_ASSERT_STRING_EQUAL(srv_config_get_raw(c, "num.partitions"), "12");
    CU_ASSERT_STRING_EQUAL(srv_config_get_raw(c, "log.cleanup.policy"), "compact,delete");
    CU_ASSERT_TRUE(c->log_cleanup_compact && c->log_cleanup_delete);
    CU_ASSERT_EQUAL(c->n_log_dirs, 2);
    CU_ASSERT_STRING_EQUAL(c->log_dirs[1], "/b");
    free(c);
    /* broker.id=-1 (Kafka's "generate one") falls back to our default. */
    c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c, "broker.id=-1\n", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c->node_id, 1);
    free(c);
}

/* ---- command line ----------------------------------------------------------------- */

static void test_cli(void)
{
    char err[512];
    srv_config *c = new_cfg();
    const char *help[] = {"--shards", "2", "-h"};
    CU_ASSERT_EQUAL(run_args(c, NULL, help, 3, err, sizeof(err)), SRV_CONFIG_HELP);
    CU_ASSERT_PTR_NOT_NULL(strstr(srv_config_usage(), "--set KEY=VALUE"));
    free(c);

    struct {
        const char *args[3];
        int n;
        const char *needle;
    } bad[] = {
        {{"--bogus"}, 1, "unknown option --bogus"},
        {{"--set", "novalue"}, 2, "KEY=VALUE"},
        {{"--set", "=x"}, 2, "KEY=VALUE"},
        {{"--set"}, 1, "needs a value"},
        {{"--shards", "many"}, 2, "shards"},
        {{"--metrics-port", "-3"}, 2, "metrics.port"},
        {{"--config", "/nonexistent/server.properties"}, 2, "cannot open"},
        {{"a.properties", "b.properties"}, 2, "only one config file"},
        {{"--set", "num.partitions=x"}, 2, "command line"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = new_cfg();
        err[0] = '\0';
        CU_ASSERT_TRUE(run_args(c, NULL, bad[i].args, bad[i].n, err, sizeof(err)) < 0);
        if (!strstr(err, bad[i].needle))
            fprintf(stderr, "\ncli case %zu: '%s'\n", i, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].needle));
        free(c);
    }
    /* An error in the file names the file and line. */
    c = new_cfg();
    CU_ASSERT_TRUE(run_args(c, "\nnum.partitions=-2\n", NULL, 0, err, sizeof(err)) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2: invalid value '-2' for config 'num.partitions'"));
    free(c);
}

/* ---- DescribeConfigs ---------------------------------------------------------------- */

static void test_describe_broker(void)
{
    char err[512];
    srv_config *c = new_cfg();
    srv_config_entry *e = malloc(sizeof(*e));
    CU_ASSERT_EQUAL(load_text(c, "log.retention.hours=24\n", err, sizeof(err)), 0);

    /* log.retention.ms: no value of its own, but set through a synonym. */
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "log.retention.ms", e), 0);
    CU_ASSERT_TRUE(e->value_null);
    CU_ASSERT_EQUAL(e->type, SRV_TYPE_LONG);
    CU_ASSERT_EQUAL(e->source, SRV_SOURCE_STATIC_BROKER_CONFIG);
    CU_ASSERT_EQUAL(e->n_synonyms, 2);
    CU_ASSERT_STRING_EQUAL(e->synonyms[0].name, "log.retention.hours");
    CU_ASSERT_STRING_EQUAL(e->synonyms[0].value, "24");
    CU_ASSERT_EQUAL(e->synonyms[0].source, SRV_SOURCE_STATIC_BROKER_CONFIG);
    CU_ASSERT_STRING_EQUAL(e->synonyms[1].value, "168");
    CU_ASSERT_EQUAL(e->synonyms[1].source, SRV_SOURCE_DEFAULT_CONFIG);
    CU_ASSERT_PTR_NULL(e->default_value);

    CU_ASSERT_EQUAL(srv_config_describe_name(c, "log.cleanup.policy", e), 0);
    CU_ASSERT_EQUAL(e->type, SRV_TYPE_LIST);
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "log.cleaner.min.cleanable.ratio", e), 0);
    CU_ASSERT_EQUAL(e->type, SRV_TYPE_DOUBLE);
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "delete.topic.enable", e), 0);
    CU_ASSERT_EQUAL(e->type, SRV_TYPE_BOOLEAN);
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "listeners", e), 0);
    CU_ASSERT_STRING_EQUAL(e->value, "PLAINTEXT://localhost:9092");
    CU_ASSERT_EQUAL(srv_config_describe_name(c, "offsets.topic.replication.factor", e), 0);
    CU_ASSERT_EQUAL(e->type, SRV_TYPE_SHORT);

    /* Every entry is complete and names are unique. */
    size_t n = srv_config_key_count();
    CU_ASSERT_TRUE(n > 60);
    for (size_t i = 0; i < n; i++) {
        if (srv_config_describe(c, i, e) != 1)
            continue; /* room for listener.name.* keys */
        CU_ASSERT_PTR_NOT_NULL(e->doc);
        CU_ASSERT_TRUE(e->type >= SRV_TYPE_BOOLEAN && e->type <= SRV_TYPE_PASSWORD);
        CU_ASSERT_TRUE(e->read_only);
        CU_ASSERT_EQUAL(e->sensitive, e->type == SRV_TYPE_PASSWORD);
        CU_ASSERT_TRUE(!e->sensitive || e->value_null);
        CU_ASSERT_TRUE(e->source == SRV_SOURCE_DEFAULT_CONFIG ||
                       e->source == SRV_SOURCE_STATIC_BROKER_CONFIG);
        const char *name = e->name;
        srv_config_entry *f = malloc(sizeof(*f));
        for (size_t j = i + 1; j < n; j++)
            if (srv_config_describe(c, j, f) == 1)
                CU_ASSERT_STRING_NOT_EQUAL(name, f->name);
        free(f);
    }
    CU_ASSERT_EQUAL(srv_config_describe(c, n, e), 0);
    free(e);
    free(c);
}

static void test_topic_validate(void)
{
    char err[512];
    CU_ASSERT_EQUAL(srv_topic_config_validate("retention.ms", "1000", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_validate("retention.ms", "-1", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_validate("cleanup.policy", "compact,delete", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_validate("cleanup.policy", "", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_validate("min.cleanable.dirty.ratio", "0.1", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(
        srv_topic_config_validate("leader.replication.throttled.replicas", "0:1, 1:1", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_validate("message.format.version", "2.8-IV1", err, sizeof(err)), 0);

    CU_ASSERT_EQUAL(srv_topic_config_validate("retention.hours", "1", err, sizeof(err)),
                    KP_ERR_INVALID_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown topic config 'retention.hours'"));
    struct {
        const char *name, *value;
    } bad[] = {
        {"retention.ms", "-2"},
        {"retention.ms", "soon"},
        {"segment.bytes", "13"},
        {"segment.ms", "0"},
        {"cleanup.policy", "compact,purge"},
        {"compression.type", "LZ4"},
        {"message.timestamp.type", "logappendtime"},
        {"min.cleanable.dirty.ratio", "-0.1"},
        {"max.message.bytes", "-1"},
        {"flush.messages", "0"},
        {"unclean.leader.election.enable", "maybe"},
        {"remote.storage.enable", "true"},
        {"leader.replication.throttled.replicas", "0-1"},
        {"message.format.version", "latest"},
        {"compression.zstd.level", "23"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(srv_topic_config_validate(bad[i].name, bad[i].value, err, sizeof(err)),
                        KP_ERR_INVALID_CONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].name));
    }
    CU_ASSERT_TRUE(srv_topic_config_known("segment.jitter.ms"));
    CU_ASSERT_FALSE(srv_topic_config_known("log.retention.ms"));
}

static void test_topic_describe(void)
{
    char err[512];
    srv_config *c = new_cfg();
    srv_config_entry *e = malloc(sizeof(*e));
    CU_ASSERT_EQUAL(load_text(c, "log.retention.hours=24\nlog.roll.ms=5000\n", err, sizeof(err)), 0);
    srv_topic_config t;
    srv_topic_config_init(&t);

    /* Broker synonym in hours, shown to the topic in ms. */
    CU_ASSERT_EQUAL(srv_topic_config_describe_name(c, &t, "retention.ms", e), 0);
    CU_ASSERT_STRING_EQUAL(e->value, "86400000");
    CU_ASSERT_EQUAL(e->source, SRV_SOURCE_STATIC_BROKER_CONFIG);
    CU_ASSERT_FALSE(e->read_only);
    CU_ASSERT_EQUAL(e->type, SRV_TYPE_LONG);
    CU_ASSERT_STRING_EQUAL(e->default_value, "604800000");
    const srv_config_synonym *s = find_syn(e, "log.retention.hours", SRV_SOURCE_STATIC_BROKER_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s)
        CU_ASSERT_STRING_EQUAL(s->value, "24");
    CU_ASSERT_PTR_NOT_NULL(find_syn(e, "log.retention.hours", SRV_SOURCE_DEFAULT_CONFIG));

    /* A topic override wins and comes first in the synonyms. */
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "retention.ms", " 1000 ", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_describe_name(c, &t, "retention.ms", e), 0);
    CU_ASSERT_STRING_EQUAL(e->value, "1000");
    CU_ASSERT_EQUAL(e->source, SRV_SOURCE_TOPIC_CONFIG);
    CU_ASSERT_STRING_EQUAL(e->synonyms[0].name, "retention.ms");
    CU_ASSERT_EQUAL(e->synonyms[0].source, SRV_SOURCE_TOPIC_CONFIG);
    CU_ASSERT_EQUAL(e->n_synonyms, 3);

    CU_ASSERT_EQUAL(srv_topic_config_describe_name(c, &t, "segment.ms", e), 0);
    CU_ASSERT_STRING_EQUAL(e->value, "5000");
    CU_ASSERT_EQUAL(srv_topic_config_describe_name(c, &t, "max.message.bytes", e), 0);
    CU_ASSERT_STRING_EQUAL(e->value, "1048588");
    CU_ASSERT_EQUAL(e->source, SRV_SOURCE_DEFAULT_CONFIG);
    CU_ASSERT_EQUAL(e->type, SRV_TYPE_INT);
    CU_ASSERT_PTR_NOT_NULL(find_syn(e, "message.max.bytes", SRV_SOURCE_DEFAULT_CONFIG));
    CU_ASSERT_EQUAL(srv_topic_config_describe_name(c, &t, "retention.hours", e), -1);

    /* Every topic key with a broker synonym lists it, and every synonym is a
     * broker key we know; five keys have no broker synonym in Kafka. */
    int without = 0;
    size_t n = srv_topic_config_key_count();
    CU_ASSERT_TRUE(n >= 35);
    srv_config_entry *f = malloc(sizeof(*f));
    for (size_t i = 0; srv_topic_config_describe(c, &t, i, e); i++) {
        CU_ASSERT_PTR_NOT_NULL(e->doc);
        without += e->n_synonyms == 0;
        for (int j = 0; j < e->n_synonyms; j++)
            if (e->synonyms[j].source != SRV_SOURCE_TOPIC_CONFIG)
                CU_ASSERT_EQUAL(srv_config_describe_name(c, e->synonyms[j].name, f), 0);
        CU_ASSERT_EQUAL(srv_topic_config_validate(e->name, e->value, err, sizeof(err)), 0);
    }
    CU_ASSERT_EQUAL(without, 5);
    free(f);

    int64_t v;
    CU_ASSERT_EQUAL(srv_topic_config_long(c, &t, "retention.ms", &v), 0);
    CU_ASSERT_EQUAL(v, 1000);
    CU_ASSERT_EQUAL(srv_topic_config_long(c, &t, "unclean.leader.election.enable", &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(srv_topic_config_long(c, &t, "min.insync.replicas", &v), 0);
    CU_ASSERT_EQUAL(v, 1);
    free(e);
    free(c);
}

static void test_topic_alter(void)
{
    char err[512], v[256];
    srv_topic_config t;
    srv_topic_config_init(&t);

    /* APPEND without an override starts from Kafka's default "delete". */
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_APPEND, "cleanup.policy", "compact", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_get_override(&t, "cleanup.policy", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "delete,compact");
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_APPEND, "cleanup.policy", "compact", err, sizeof(err)), 0);
    srv_topic_config_get_override(&t, "cleanup.policy", v, sizeof(v));
    CU_ASSERT_STRING_EQUAL(v, "delete,compact");
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_SUBTRACT, "cleanup.policy", "delete", err, sizeof(err)), 0);
    srv_topic_config_get_override(&t, "cleanup.policy", v, sizeof(v));
    CU_ASSERT_STRING_EQUAL(v, "compact");
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_SUBTRACT, "cleanup.policy", "compact", err, sizeof(err)), 0);
    srv_topic_config_get_override(&t, "cleanup.policy", v, sizeof(v));
    CU_ASSERT_STRING_EQUAL(v, "");
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_SET, "cleanup.policy", "compact, delete", err, sizeof(err)), 0);
    srv_topic_config_get_override(&t, "cleanup.policy", v, sizeof(v));
    CU_ASSERT_STRING_EQUAL(v, "compact,delete");
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_SUBTRACT, "cleanup.policy", "purge", err, sizeof(err)),
        KP_ERR_INVALID_CONFIG);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_APPEND, "retention.ms", "5", err, sizeof(err)),
                    KP_ERR_INVALID_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a list"));
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, 7, "retention.ms", "5", err, sizeof(err)),
                    KP_ERR_INVALID_REQUEST);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "segment.bytes", "1", err, sizeof(err)),
                    KP_ERR_INVALID_CONFIG);
    CU_ASSERT_EQUAL(srv_topic_config_count(&t), 1); /* failures leave t unchanged */

    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "segment.bytes", "1048576", err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "retention.ms", "60000", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "retention.ms", "120000", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_count(&t), 3);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_DELETE, "cleanup.policy", NULL, err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_DELETE, "cleanup.policy", NULL, err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(srv_topic_config_count(&t), 2);
    CU_ASSERT_EQUAL(srv_topic_config_get_override(&t, "cleanup.policy", v, sizeof(v)), -1);
    CU_ASSERT_EQUAL(srv_topic_config_get_override(&t, "retention.ms", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "120000");
    /* Buffer compaction on delete keeps the remaining values intact. */
    CU_ASSERT_EQUAL(srv_topic_config_get_override(&t, "segment.bytes", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "1048576");
    CU_ASSERT_EQUAL(t.used, strlen("1048576") + strlen("120000"));

    /* Overrides are bounded. */
    char big[1100];
    memset(big, 0, sizeof(big));
    strcpy(big, "0:0");
    while (strlen(big) < 1000)
        strcat(big, ",1:1");
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "leader.replication.throttled.replicas", big,
                                           err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "follower.replication.throttled.replicas", big,
                                           err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "follower.replication.throttled.replicas", big,
                                           err, sizeof(err)),
                    0); /* replacing in place must not count the old value twice */
    char many[512] = "delete";
    while (strlen(many) < 400)
        strcat(many, ",delete");
    int rc = srv_topic_config_alter(&t, SRV_ALTER_SET, "cleanup.policy", many, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, KP_ERR_INVALID_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "exceed"));
}

static void test_topic_serialize(void)
{
    char err[512];
    srv_topic_config t, u;
    srv_topic_config_init(&t);
    CU_ASSERT_EQUAL(srv_topic_config_serialize(&t, NULL, 0), 0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "segment.ms", "1000", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_SET, "cleanup.policy", "compact,delete", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_SET, "min.cleanable.dirty.ratio", "0.25", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "leader.replication.throttled.replicas", "",
                                           err, sizeof(err)),
                    0);
    size_t need = srv_topic_config_serialize(&t, NULL, 0);
    char buf[512];
    CU_ASSERT_EQUAL(srv_topic_config_serialize(&t, buf, sizeof(buf)), need);
    CU_ASSERT_STRING_EQUAL(buf, "cleanup.policy=compact,delete\nleader.replication.throttled.replicas=\n"
                                "min.cleanable.dirty.ratio=0.25\nsegment.ms=1000\n");
    char small[10];
    CU_ASSERT_EQUAL(srv_topic_config_serialize(&t, small, sizeof(small)), need);
    CU_ASSERT_EQUAL(strlen(small), 9);

    CU_ASSERT_EQUAL(srv_topic_config_deserialize(&u, buf, need, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_count(&u), 4);
    char buf2[512];
    srv_topic_config_serialize(&u, buf2, sizeof(buf2));
    CU_ASSERT_STRING_EQUAL(buf, buf2);
    const char *name, *value;
    size_t vl;
    CU_ASSERT_EQUAL(srv_topic_config_at(&u, 3, &name, &value, &vl), 0);
    CU_ASSERT_STRING_EQUAL(name, "segment.ms");
    CU_ASSERT_EQUAL(vl, 4);
    CU_ASSERT_EQUAL(memcmp(value, "1000", 4), 0);
    CU_ASSERT_EQUAL(srv_topic_config_at(&u, 4, &name, &value, &vl), -1);

    /* Empty input, missing final newline, and corrupt input. */
    CU_ASSERT_EQUAL(srv_topic_config_deserialize(&u, "", 0, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_count(&u), 0);
    CU_ASSERT_EQUAL(srv_topic_config_deserialize(&u, "segment.ms=5", 12, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_topic_config_count(&u), 1);
    CU_ASSERT_EQUAL(srv_topic_config_deserialize(&u, "segment.ms\n", 11, err, sizeof(err)),
                    KP_ERR_INVALID_CONFIG);
    CU_ASSERT_EQUAL(srv_topic_config_count(&u), 0);
    CU_ASSERT_EQUAL(srv_topic_config_deserialize(&u, "bogus=1\n", 8, err, sizeof(err)),
                    KP_ERR_INVALID_CONFIG);
    CU_ASSERT_EQUAL(srv_topic_config_deserialize(&u, "segment.ms=0\n", 13, err, sizeof(err)),
                    KP_ERR_INVALID_CONFIG);
}

/* ---- storage mapping ------------------------------------------------------------- */

static void sentinel_st(st_log_config *s)
{
    memset(s, 0, sizeof(*s));
    s->chunk_bytes = 111;
    s->max_unflushed_bytes = 222;
    s->tail_cache_bytes = 333;
    s->max_read_bytes = 444;
}

static void test_to_st(void)
{
    char err[512];
    srv_config *c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c, "", err, sizeof(err)), 0);
    st_log_config s;
    sentinel_st(&s);
    srv_topic_config_to_st(c, NULL, &s);
    CU_ASSERT_EQUAL(s.segment_bytes, 1073741824u);
    CU_ASSERT_EQUAL(s.segment_ms, 604800000);
    CU_ASSERT_EQUAL(s.index_interval_bytes, 4096u);
    CU_ASSERT_EQUAL(s.retention_ms, 604800000);
    CU_ASSERT_EQUAL(s.retention_bytes, -1);
    CU_ASSERT_EQUAL(s.sync_acks, 1);
    CU_ASSERT_EQUAL(s.flush_messages, 0);
    CU_ASSERT_EQUAL(s.flush_ms, 0);
    CU_ASSERT_EQUAL(s.max_batch_bytes, (1u << 20) + 12);
    CU_ASSERT_EQUAL(s.log_append_time, 0);
    CU_ASSERT_EQUAL(s.compact, 0);
    CU_ASSERT_EQUAL(s.delete_retention_ms, 86400000);
    CU_ASSERT_EQUAL(s.chunk_bytes, 111u);
    CU_ASSERT_EQUAL(s.max_unflushed_bytes, 222u);
    CU_ASSERT_EQUAL(s.tail_cache_bytes, 333u);
    CU_ASSERT_EQUAL(s.max_read_bytes, 444u);
    free(c);

    /* Broker-level settings flow into topics without overrides. */
    c = new_cfg();
    CU_ASSERT_EQUAL(load_text(c,
                              "flush.sync.acks=false\nlog.flush.interval.messages=100\n"
                              "log.flush.scheduler.interval.ms=0\nlog.retention.minutes=10\n"
                              "message.max.bytes=500000\nlog.message.timestamp.type=LogAppendTime\n"
                              "log.cleaner.delete.retention.ms=1000\nlog.segment.bytes=2097152\n"
                              "log.roll.hours=1\nlog.index.interval.bytes=0\n",
                              err, sizeof(err)),
                    0);
    sentinel_st(&s);
    srv_topic_config_to_st(c, NULL, &s);
    CU_ASSERT_EQUAL(s.sync_acks, 0);
    CU_ASSERT_EQUAL(s.flush_messages, 100);
    CU_ASSERT_EQUAL(s.flush_ms, 1);
    CU_ASSERT_EQUAL(s.retention_ms, 600000);
    CU_ASSERT_EQUAL(s.max_batch_bytes, 500000u);
    CU_ASSERT_EQUAL(s.log_append_time, 1);
    CU_ASSERT_EQUAL(s.delete_retention_ms, 1000);
    CU_ASSERT_EQUAL(s.segment_bytes, 2097152u);
    CU_ASSERT_EQUAL(s.segment_ms, 3600000);
    CU_ASSERT_EQUAL(s.index_interval_bytes, 1u);

    /* Topic overrides win. */
    srv_topic_config t;
    srv_topic_config_init(&t);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "cleanup.policy", "compact", err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "retention.bytes", "1000", err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_SET, "message.timestamp.type", "CreateTime", err, sizeof(err)),
        0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "max.message.bytes", "2000", err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(srv_topic_config_alter(&t, SRV_ALTER_SET, "flush.ms", "250", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_SET, "flush.messages", I64_MAX_STR, err, sizeof(err)), 0);
    sentinel_st(&s);
    srv_topic_config_to_st(c, &t, &s);
    CU_ASSERT_EQUAL(s.compact, 1);
    CU_ASSERT_EQUAL(s.retention_ms, -1); /* no "delete": nothing expires */
    CU_ASSERT_EQUAL(s.retention_bytes, -1);
    CU_ASSERT_EQUAL(s.log_append_time, 0);
    CU_ASSERT_EQUAL(s.max_batch_bytes, 2000u);
    CU_ASSERT_EQUAL(s.flush_ms, 250);
    CU_ASSERT_EQUAL(s.flush_messages, 0);
    CU_ASSERT_EQUAL(
        srv_topic_config_alter(&t, SRV_ALTER_APPEND, "cleanup.policy", "delete", err, sizeof(err)), 0);
    srv_topic_config_to_st(c, &t, &s);
    CU_ASSERT_EQUAL(s.compact, 1);
    CU_ASSERT_EQUAL(s.retention_ms, 600000);
    CU_ASSERT_EQUAL(s.retention_bytes, 1000);
    free(c);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "properties syntax", test_properties_syntax);
    CU_add_test(s, "precedence", test_precedence);
    CU_add_test(s, "retention precedence", test_retention_precedence);
    CU_add_test(s, "listeners", test_listeners);
    CU_add_test(s, "security listeners", test_security_listeners);
    CU_add_test(s, "kafka kraft sample", test_kafka_kraft_sample);
    CU_add_test(s, "unknown keys", test_unknown_keys);
    CU_add_test(s, "invalid values", test_invalid_values);
    CU_add_test(s, "cli", test_cli);
    CU_add_test(s, "describe broker", test_describe_broker);
    CU_add_test(s, "topic validate", test_topic_validate);
    CU_add_test(s, "topic describe", test_topic_describe);
    CU_add_test(s, "topic alter", test_topic_alter);
    CU_add_test(s, "topic serialize", test_topic_serialize);
    CU_add_test(s, "to_st", test_to_st);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

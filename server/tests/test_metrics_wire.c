/*
 * test_metrics_wire.c — the Prometheus endpoint (--metrics-port) of a real
 * kbroker (2 shards): /metrics answers with every shard's gauges, and the
 * per-partition lines the shards publish from their own loops appear for a
 * new topic. Under ThreadSanitizer (make tsan) this is also the test of how
 * the shards learn that metrics are on while the main thread starts the
 * endpoint after them.
 */
#include "kb_test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "wire_util.h"

static int metrics_port;

/* A port nobody listens on now (the kernel's pick for a socket closed again). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* GET /metrics; the whole HTTP answer (headers and body) in a malloc'd,
 * NUL-terminated buffer, or NULL. */
static char *scrape(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)metrics_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char get[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf || send_all(fd, get, sizeof(get) - 1) != 0) {
        free(buf);
        close(fd);
        return NULL;
    }
    for (;;) {
        if (len + 1 == cap) {
            char *n = realloc(buf, cap * 2);
            if (!n)
                break;
            buf = n;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0;
    return buf;
}

static void create_topic(const char *name)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(wire_create_topic(fd, name, 2, NULL), 0);
    close(fd);
}

static void test_shard_gauges(void)
{
    char *m = scrape();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT(strncmp(m, "HTTP/1.1 200", 12) == 0 || strncmp(m, "HTTP/1.0 200", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "kbroker_shard_busy_ratio{shard=\"0\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "kbroker_shard_busy_ratio{shard=\"1\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "kbroker_connections{shard=\"1\"}"));
    free(m);
}

/* Each shard publishes its partitions' lines about once a second: both
 * partitions of a new topic (one per shard or both on one) show up. */
static void test_partition_lines(void)
{
    create_topic("metrics-wire");
    int seen = 0;
    for (int i = 0; i < 100 && !seen; i++) {
        usleep(100000);
        char *m = scrape();
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        seen =
            strstr(m, "kbroker_partition_log_end_offset{topic=\"metrics-wire\",partition=\"0\"}") != NULL &&
            strstr(m, "kbroker_partition_log_end_offset{topic=\"metrics-wire\",partition=\"1\"}") != NULL;
        free(m);
    }
    CU_ASSERT(seen);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("metrics wire", NULL, NULL);
    CU_add_test(s, "shard gauges", test_shard_gauges);
    CU_add_test(s, "partition lines published by the shards", test_partition_lines);
}

static int setup(void)
{
    metrics_port = free_port();
    if (metrics_port <= 0)
        return -1;
    snprintf(broker_extra_set, sizeof(broker_extra_set), "metrics.port=%d", metrics_port);
    return wire_setup();
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = setup, .teardown = stop_broker};

/*
 * wire_util.h — test helpers that drive a real kbroker process: start it
 * (2 shards, ephemeral port, a temp data dir kept across restarts), stop it,
 * and send requests / read responses with the generated codecs.
 *
 * Test-only; header-only so each test program stays one file. Must not be
 * included by the broker.
 */
#ifndef SRV_TESTS_WIRE_UTIL_H
#define SRV_TESTS_WIRE_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"

static pid_t broker_pid;
static int broker_port;
static char data_dir[256];

static char log_path[300];

/* One more "--set key=value" for the broker, set before start_broker() by a
 * test that needs a non-default setting (empty: none). */
static char broker_extra_set[256];

/* Starts kbroker on data_dir (created on the first start, kept across a
 * restart). */
static inline int start_broker(void)
{
    if (!data_dir[0]) {
        snprintf(data_dir, sizeof(data_dir), "/tmp/kb-cwire-XXXXXX");
        if (!mkdtemp(data_dir))
            return -1;
    }
    broker_port = 0;
    snprintf(log_path, sizeof(log_path), "%s.log", data_dir);
    /* A restart reuses the path: without this, a child slow to reach its
     * freopen leaves the previous run's ready line (and port) to be read. */
    unlink(log_path);
    broker_pid = fork();
    if (broker_pid == 0) {
        FILE *lf = freopen(log_path, "w", stderr);
        (void)lf;
        char dirs[300];
        snprintf(dirs, sizeof(dirs), "log.dirs=%s", data_dir);
        /* Without an extra setting the NULL in its place ends the list. */
        execl(KB_BROKER_BIN, "kbroker", "--set", "listeners=PLAINTEXT://127.0.0.1:0", "--set", dirs, "--set",
              "connections.max.idle.ms=1500", "--shards", "2", broker_extra_set[0] ? "--set" : (char *)NULL,
              broker_extra_set, (char *)NULL);
        _exit(127);
    }
    /* The ready line carries the bound port. */
    for (int i = 0; i < 200 && broker_port == 0; i++) {
        usleep(50000);
        FILE *f = fopen(log_path, "r");
        char line[1024];
        while (f && fgets(line, sizeof(line), f)) {
            const char *p = strstr(line, "listening on PLAINTEXT://127.0.0.1:");
            if (p)
                broker_port = atoi(p + strlen("listening on PLAINTEXT://127.0.0.1:"));
        }
        if (f)
            fclose(f);
    }
    return broker_port > 0 ? 0 : -1;
}

/* The kb_test_program setup of a wire test: one broker for the whole
 * program, started before its first test. */
static inline int wire_setup(void)
{
    if (start_broker() == 0)
        return 0;
    fprintf(stderr, "broker did not start (log: %s)\n", log_path);
    return -1;
}

/* Stops the process (SIGTERM: a clean shutdown); the data stays. */
static inline void kill_broker(void)
{
    if (broker_pid > 0) {
        kill(broker_pid, SIGTERM);
        int st;
        waitpid(broker_pid, &st, 0);
        broker_pid = 0;
    }
}

static inline void stop_broker(void)
{
    kill_broker();
    if (getenv("KB_KEEP_LOG")) {
        fprintf(stderr, "broker log: %s\n", log_path);
    } else {
        unlink(log_path);
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", data_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", data_dir);
}

static inline int connect_broker(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)broker_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static inline int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response frame into a malloc'd buffer; NULL on EOF/timeout. */
static inline uint8_t *read_frame(int fd, size_t *len)
{
    uint8_t hdr[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t r = read(fd, hdr + got, 4 - got);
        if (r <= 0)
            return NULL;
        got += (size_t)r;
    }
    *len = kp_be32(hdr);
    uint8_t *buf = malloc(*len ? *len : 1);
    got = 0;
    while (got < *len) {
        ssize_t r = read(fd, buf + got, *len - got);
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        got += (size_t)r;
    }
    return buf;
}

static inline int send_request(int fd, int16_t key, int16_t v, int32_t corr, const void *body)
{
    kp_writer w;
    kp_writer_init(&w, 256);
    int rc = kp_request_encode(&w, key, v, corr, kp_str_c("cwire-test"), body);
    if (rc == 0)
        rc = send_all(fd, w.buf, w.len);
    kp_writer_free(&w);
    return rc;
}

/* Reads a response and decodes its body (after the header) into out. */
static inline int recv_response(int fd, int16_t key, int16_t v, int32_t *corr, kp_arena *a, void *out,
                                uint8_t **frame)
{
    size_t len;
    *frame = read_frame(fd, &len);
    if (!*frame)
        return -1;
    kp_reader r;
    kp_reader_init(&r, *frame, len);
    kp_response_header h;
    if (kp_response_header_decode(&r, a, (int16_t)kp_response_header_version(key, v), &h))
        return -2;
    *corr = h.correlation_id;
    return kp_api_lookup(key)->response->decode(&r, a, v, out);
}

/* CreateTopics v7 of one topic with `nparts` partitions, replication factor 1.
 * The topic's error code, or -1 when the request could not be sent or its
 * answer read; *id (may be NULL) gets the topic id. */
static inline int wire_create_topic(int fd, const char *name, int32_t nparts, kp_uuid *id)
{
    kp_create_topics_request rq;
    kp_create_topics_request_init(&rq);
    kp_create_topics_request_creatable_topic t;
    kp_create_topics_request_creatable_topic_init(&t);
    t.name = kp_str_c(name);
    t.num_partitions = nparts;
    t.replication_factor = 1;
    rq.topics = &t;
    rq.topics_count = 1;
    rq.timeout_ms = 10000;
    if (send_request(fd, KP_API_CREATE_TOPICS, 7, 1, &rq) != 0)
        return -1;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_create_topics_response resp;
    int32_t corr;
    uint8_t *frame = NULL;
    int rc = -1;
    if (recv_response(fd, KP_API_CREATE_TOPICS, 7, &corr, &a, &resp, &frame) == 0 && resp.topics_count == 1) {
        rc = resp.topics[0].error_code;
        if (id)
            *id = resp.topics[0].topic_id;
    }
    free(frame);
    kp_arena_reset(&a);
    return rc;
}

/* One request and its decoded response; the decoded strings point into
 * *frame, which the caller frees after use. 0 or -1 (also when the answer
 * is not the request's: a mismatched correlation id). */
static inline int wire_call(int fd, int16_t key, int16_t v, const void *rq, void *resp, kp_arena *a,
                            uint8_t **frame)
{
    static int32_t corr = 100;
    int32_t c = ++corr, got;
    *frame = NULL;
    if (send_request(fd, key, v, c, rq) != 0)
        return -1;
    int rc = recv_response(fd, key, v, &got, a, resp, frame);
    return rc == 0 && got != c ? -1 : rc;
}

#endif

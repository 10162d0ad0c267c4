/*
 * test_strings_wire.c — protocol strings keep every byte, NUL and non-ASCII
 * UTF-8 included, through a real kbroker (2 shards) and a restart of it:
 * commit metadata, group ids that differ only after a NUL, member and
 * instance ids, the client id DescribeGroups reports, topic names echoed by
 * OffsetFetch.
 *
 * Test-only. Must not depend on a client library: the requests are built
 * with the generated codecs so the bytes are exactly the ones we choose.
 */
#include "kb_test.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "frame.h"
#include "wire_util.h"

#define S(lit) ((kp_str){(lit), (int32_t)sizeof(lit) - 1}) /* every byte of a literal, NULs too */

/* "a" and "a\0P" share a __consumer_offsets partition (Java hashCode 97 and
 * 93297, both 47 mod 50), so one shard's group map holds both. */
#define GROUP_A   S("a")
#define GROUP_ANP S("a\0P")
#define TOPIC     "strs"
static const kp_str META_NUL = S("Hello\0world!");                                     /* 12 bytes */
static const kp_str META_UTF8 = S("\xc3\xa9t\xc3\xa9 \xe2\x9c\x93\0\xf0\x9f\x98\x80"); /* été ✓ NUL 😀 */

static int same(kp_str a, kp_str b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.p, b.p, (size_t)a.len) == 0);
}

/* One request with the given client id; the decoded response points into
 * *frame. 0 on success. */
static int call_as(int fd, kp_str client_id, int16_t key, int16_t v, const void *rq, void *resp, kp_arena *a,
                   uint8_t **frame)
{
    static int32_t corr = 500;
    int32_t c = ++corr, got;
    *frame = NULL;
    kp_writer w;
    kp_writer_init(&w, 256);
    int rc = kp_request_encode(&w, key, v, c, client_id, rq);
    if (rc == 0)
        rc = send_all(fd, w.buf, w.len);
    kp_writer_free(&w);
    if (rc != 0)
        return -1;
    rc = recv_response(fd, key, v, &got, a, resp, frame);
    return rc == 0 && got != c ? -1 : rc;
}

static int connect_slow(void)
{
    int fd = connect_broker();
    /* A first JoinGroup waits out group.initial.rebalance.delay.ms (3 s). */
    struct timeval tv = {15, 0};
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void create_topic(int fd, const char *name)
{
    kp_create_topics_request rq;
    kp_create_topics_request_init(&rq);
    kp_create_topics_request_creatable_topic t;
    kp_create_topics_request_creatable_topic_init(&t);
    t.name = kp_str_c(name);
    t.num_partitions = 1;
    t.replication_factor = 1;
    rq.topics = &t;
    rq.topics_count = 1;
    rq.timeout_ms = 5000;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_create_topics_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, S("t"), KP_API_CREATE_TOPICS, 7, &rq, &resp, &a, &frame), 0);
    CU_ASSERT_EQUAL(resp.topics[0].error_code, 0);
    free(frame);
    kp_arena_reset(&a);
}

/* A simple (generation -1) commit of partition 0. */
static int16_t commit(int fd, kp_str group, int64_t offset, kp_str metadata)
{
    kp_offset_commit_request rq;
    kp_offset_commit_request_init(&rq);
    kp_offset_commit_request_offset_commit_request_topic t;
    kp_offset_commit_request_offset_commit_request_topic_init(&t);
    kp_offset_commit_request_offset_commit_request_partition p;
    kp_offset_commit_request_offset_commit_request_partition_init(&p);
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    p.committed_metadata = metadata;
    t.name = kp_str_c(TOPIC);
    t.partitions = &p;
    t.partitions_count = 1;
    rq.group_id = group;
    rq.generation_id_or_member_epoch = -1;
    rq.member_id = kp_str_c("");
    rq.group_instance_id = KP_STR_NULL;
    rq.topics = &t;
    rq.topics_count = 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_offset_commit_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, S("t"), KP_API_OFFSET_COMMIT, 8, &rq, &resp, &a, &frame), 0);
    int16_t err = resp.topics[0].partitions[0].error_code;
    free(frame);
    kp_arena_reset(&a);
    return err;
}

/* OffsetFetch v8 of partition 0: the offset (-1: none) and a copy of the
 * metadata in md (its length in *mdlen). */
static int64_t fetch(int fd, kp_str group, char *md, int32_t *mdlen)
{
    kp_offset_fetch_request rq;
    kp_offset_fetch_request_init(&rq);
    kp_offset_fetch_request_offset_fetch_request_group g;
    kp_offset_fetch_request_offset_fetch_request_group_init(&g);
    kp_offset_fetch_request_offset_fetch_request_topics t;
    kp_offset_fetch_request_offset_fetch_request_topics_init(&t);
    int32_t p = 0;
    t.name = kp_str_c(TOPIC);
    t.partition_indexes = &p;
    t.partition_indexes_count = 1;
    g.group_id = group;
    g.member_id = KP_STR_NULL;
    g.member_epoch = -1;
    g.topics = &t;
    g.topics_count = 1;
    rq.groups = &g;
    rq.groups_count = 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_offset_fetch_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, S("t"), KP_API_OFFSET_FETCH, 8, &rq, &resp, &a, &frame), 0);
    CU_ASSERT_EQUAL_FATAL(resp.groups_count, 1);
    CU_ASSERT(same(resp.groups[0].group_id, group));
    CU_ASSERT_EQUAL(resp.groups[0].error_code, 0);
    CU_ASSERT_EQUAL_FATAL(resp.groups[0].topics_count, 1);
    const kp_offset_fetch_response_offset_fetch_response_partitions *rp =
        &resp.groups[0].topics[0].partitions[0];
    int64_t off = rp->committed_offset;
    *mdlen = rp->metadata.len;
    if (rp->metadata.len > 0)
        memcpy(md, rp->metadata.p, (size_t)rp->metadata.len);
    free(frame);
    kp_arena_reset(&a);
    return off;
}

static void check_offsets(int fd)
{
    char md[64];
    int32_t mdlen;
    CU_ASSERT_EQUAL(fetch(fd, GROUP_ANP, md, &mdlen), 5);
    CU_ASSERT(same((kp_str){md, mdlen}, META_NUL));
    CU_ASSERT_EQUAL(fetch(fd, GROUP_A, md, &mdlen), 7);
    CU_ASSERT(same((kp_str){md, mdlen}, META_UTF8));
}

static void test_commit_metadata_and_group_ids(void)
{
    int fd = connect_slow();
    CU_ASSERT_FATAL(fd >= 0);
    create_topic(fd, TOPIC);
    CU_ASSERT_EQUAL(commit(fd, GROUP_ANP, 5, META_NUL), 0);
    CU_ASSERT_EQUAL(commit(fd, GROUP_A, 7, META_UTF8), 0);
    check_offsets(fd);
    close(fd);

    /* The __consumer_offsets records keep every byte too. */
    kill_broker();
    CU_ASSERT_EQUAL_FATAL(start_broker(), 0);
    fd = connect_slow();
    CU_ASSERT_FATAL(fd >= 0);
    check_offsets(fd);
    close(fd);
}

#define MGROUP    S("m\0grp")
#define CLIENT_ID S("cli\0ent\xc3\xa9")
#define INSTANCE  S("inst\0X")
static const kp_str PROTO_META = S("\0\1meta\0data");
static char member_id[128];
static int32_t member_id_len;

static void describe(int fd)
{
    kp_describe_groups_request rq;
    kp_describe_groups_request_init(&rq);
    kp_str g = MGROUP;
    rq.groups = &g;
    rq.groups_count = 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_describe_groups_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, S("t"), KP_API_DESCRIBE_GROUPS, 5, &rq, &resp, &a, &frame), 0);
    CU_ASSERT_EQUAL_FATAL(resp.groups_count, 1);
    const kp_describe_groups_response_described_group *d = &resp.groups[0];
    CU_ASSERT_EQUAL(d->error_code, 0);
    CU_ASSERT(same(d->group_id, MGROUP));
    CU_ASSERT(kp_str_eq(d->protocol_type, "consumer"));
    CU_ASSERT_EQUAL_FATAL(d->members_count, 1);
    CU_ASSERT(same(d->members[0].member_id, (kp_str){member_id, member_id_len}));
    CU_ASSERT(same(d->members[0].group_instance_id, INSTANCE));
    CU_ASSERT(same(d->members[0].client_id, CLIENT_ID));
    CU_ASSERT(kp_str_eq(d->members[0].client_host, "/127.0.0.1"));
    free(frame);
    kp_arena_reset(&a);
}

static int16_t heartbeat(int fd, kp_str member, kp_str instance)
{
    kp_heartbeat_request rq;
    kp_heartbeat_request_init(&rq);
    rq.group_id = MGROUP;
    rq.generation_id = 1;
    rq.member_id = member;
    rq.group_instance_id = instance;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_heartbeat_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, S("t"), KP_API_HEARTBEAT, 4, &rq, &resp, &a, &frame), 0);
    int16_t err = resp.error_code;
    free(frame);
    kp_arena_reset(&a);
    return err;
}

static void test_member_and_client_ids(void)
{
    int fd = connect_slow();
    CU_ASSERT_FATAL(fd >= 0);
    kp_join_group_request rq;
    kp_join_group_request_init(&rq);
    kp_join_group_request_join_group_request_protocol p;
    kp_join_group_request_join_group_request_protocol_init(&p);
    p.name = kp_str_c("range");
    p.metadata = (kp_bytes){(const uint8_t *)PROTO_META.p, PROTO_META.len};
    rq.group_id = MGROUP;
    rq.session_timeout_ms = 30000;
    rq.rebalance_timeout_ms = 30000;
    rq.member_id = kp_str_c("");
    rq.group_instance_id = INSTANCE;
    rq.protocol_type = kp_str_c("consumer");
    rq.protocols = &p;
    rq.protocols_count = 1;
    rq.reason = KP_STR_NULL;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_join_group_response jr;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, CLIENT_ID, KP_API_JOIN_GROUP, 9, &rq, &jr, &a, &frame), 0);
    CU_ASSERT_EQUAL_FATAL(jr.error_code, 0);
    /* Kafka's static member id: the instance id, "-", a UUID (36). */
    CU_ASSERT_EQUAL(jr.member_id.len, INSTANCE.len + 1 + 36);
    CU_ASSERT_FATAL(jr.member_id.len > INSTANCE.len && jr.member_id.len <= (int32_t)sizeof(member_id));
    CU_ASSERT(memcmp(jr.member_id.p, INSTANCE.p, (size_t)INSTANCE.len) == 0);
    CU_ASSERT(jr.member_id.p[INSTANCE.len] == '-');
    member_id_len = jr.member_id.len;
    memcpy(member_id, jr.member_id.p, (size_t)member_id_len);
    CU_ASSERT(same(jr.leader, jr.member_id));
    CU_ASSERT_EQUAL_FATAL(jr.members_count, 1);
    CU_ASSERT(same(jr.members[0].member_id, jr.member_id));
    CU_ASSERT(same(jr.members[0].group_instance_id, INSTANCE));
    CU_ASSERT(same((kp_str){(const char *)jr.members[0].metadata.p, jr.members[0].metadata.len}, PROTO_META));
    free(frame);
    kp_arena_reset(&a);

    kp_sync_group_request sr;
    kp_sync_group_request_init(&sr);
    kp_sync_group_request_sync_group_request_assignment as;
    kp_sync_group_request_sync_group_request_assignment_init(&as);
    as.member_id = (kp_str){member_id, member_id_len};
    as.assignment = (kp_bytes){(const uint8_t *)"\0a", 2};
    sr.group_id = MGROUP;
    sr.generation_id = 1;
    sr.member_id = (kp_str){member_id, member_id_len};
    sr.group_instance_id = INSTANCE;
    sr.protocol_type = kp_str_c("consumer");
    sr.protocol_name = kp_str_c("range");
    sr.assignments = &as;
    sr.assignments_count = 1;
    kp_sync_group_response sy;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, CLIENT_ID, KP_API_SYNC_GROUP, 5, &sr, &sy, &a, &frame), 0);
    CU_ASSERT_EQUAL(sy.error_code, 0);
    CU_ASSERT_EQUAL(sy.assignment.len, 2);
    free(frame);
    kp_arena_reset(&a);

    kp_str mid = {member_id, member_id_len};
    CU_ASSERT_EQUAL(heartbeat(fd, mid, INSTANCE), 0);
    /* Cut at the NUL, the ids name nobody. */
    CU_ASSERT_EQUAL(heartbeat(fd, mid, S("inst")), KP_ERR_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(heartbeat(fd, (kp_str){member_id, 4}, INSTANCE), KP_ERR_FENCED_INSTANCE_ID);
    CU_ASSERT_EQUAL(heartbeat(fd, (kp_str){member_id, 4}, KP_STR_NULL), KP_ERR_UNKNOWN_MEMBER_ID);
    describe(fd);
    close(fd);

    /* The group metadata record keeps them across a restart. */
    kill_broker();
    CU_ASSERT_EQUAL_FATAL(start_broker(), 0);
    fd = connect_slow();
    CU_ASSERT_FATAL(fd >= 0);
    describe(fd);
    close(fd);
}

/* Fetch v12 (topics by name) of partition 0 of `topic` (len < 0: no
 * topics, an incremental fetch of the session). */
static int fetch_v12(int fd, int32_t session, int32_t epoch, kp_str topic, kp_arena *a,
                     kp_fetch_response *resp, uint8_t **frame)
{
    kp_fetch_request rq;
    kp_fetch_request_init(&rq);
    rq.replica_id = -1;
    rq.max_wait_ms = 10;
    rq.min_bytes = 0;
    rq.max_bytes = 1 << 20;
    rq.session_id = session;
    rq.session_epoch = epoch;
    kp_fetch_request_fetch_topic t;
    kp_fetch_request_fetch_topic_init(&t);
    kp_fetch_request_fetch_partition p;
    kp_fetch_request_fetch_partition_init(&p);
    p.partition = 0;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    t.topic = topic;
    t.partitions = &p;
    t.partitions_count = 1;
    if (topic.len >= 0) {
        rq.topics = &t;
        rq.topics_count = 1;
    }
    return call_as(fd, S("t"), KP_API_FETCH, 12, &rq, resp, a, frame);
}

/* A session for "sess\0x", a topic that does not exist, must not turn into
 * one for the topic "sess" that does. */
static void test_fetch_session_topic_names(void)
{
    int fd = connect_slow();
    CU_ASSERT_FATAL(fd >= 0);
    create_topic(fd, "sess");
    const kp_str ghost = S("sess\0x");
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_fetch_response r;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(fetch_v12(fd, 0, 0, ghost, &a, &r, &frame), 0);
    int32_t id = r.session_id;
    CU_ASSERT(id != 0);
    CU_ASSERT_EQUAL_FATAL(r.responses_count, 1);
    CU_ASSERT(same(r.responses[0].topic, ghost));
    CU_ASSERT_EQUAL(r.responses[0].partitions[0].error_code, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    free(frame);
    kp_arena_reset(&a);
    for (int32_t epoch = 1; epoch <= 2; epoch++) {
        CU_ASSERT_EQUAL_FATAL(fetch_v12(fd, id, epoch, KP_STR_NULL, &a, &r, &frame), 0);
        CU_ASSERT_EQUAL(r.error_code, 0);
        for (int32_t i = 0; i < r.responses_count; i++) {
            CU_ASSERT(same(r.responses[i].topic, ghost));
            for (int32_t k = 0; k < r.responses[i].partitions_count; k++)
                CU_ASSERT_EQUAL(r.responses[i].partitions[k].error_code, KP_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        }
        free(frame);
        kp_arena_reset(&a);
    }
    close(fd);
}

/* CreateTopics of `name` with one config; the topic's error code. */
static int16_t create_with_config(int fd, const char *name, kp_str key, kp_str value)
{
    kp_create_topics_request rq;
    kp_create_topics_request_init(&rq);
    kp_create_topics_request_creatable_topic t;
    kp_create_topics_request_creatable_topic_init(&t);
    kp_create_topics_request_creatable_topic_config c;
    kp_create_topics_request_creatable_topic_config_init(&c);
    c.name = key;
    c.value = value;
    t.name = kp_str_c(name);
    t.num_partitions = 1;
    t.replication_factor = 1;
    t.configs = &c;
    t.configs_count = 1;
    rq.topics = &t;
    rq.topics_count = 1;
    rq.timeout_ms = 5000;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_create_topics_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, S("t"), KP_API_CREATE_TOPICS, 7, &rq, &resp, &a, &frame), 0);
    int16_t err = resp.topics[0].error_code;
    free(frame);
    kp_arena_reset(&a);
    return err;
}

static int16_t alter_config(int fd, const char *topic, kp_str key, kp_str value)
{
    kp_incremental_alter_configs_request rq;
    kp_incremental_alter_configs_request_init(&rq);
    kp_incremental_alter_configs_request_alter_configs_resource r;
    kp_incremental_alter_configs_request_alter_configs_resource_init(&r);
    kp_incremental_alter_configs_request_alterable_config c;
    kp_incremental_alter_configs_request_alterable_config_init(&c);
    c.name = key;
    c.config_operation = 0; /* SET */
    c.value = value;
    r.resource_type = 2; /* TOPIC */
    r.resource_name = kp_str_c(topic);
    r.configs = &c;
    r.configs_count = 1;
    rq.resources = &r;
    rq.resources_count = 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_incremental_alter_configs_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, S("t"), KP_API_INCREMENTAL_ALTER_CONFIGS, 1, &rq, &resp, &a, &frame),
                          0);
    int16_t err = resp.responses[0].error_code;
    free(frame);
    kp_arena_reset(&a);
    return err;
}

/* A NUL cannot shorten a config name or value into a valid one. */
static void test_config_names_and_values(void)
{
    int fd = connect_slow();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(create_with_config(fd, "cfg1", S("retention.ms"), S("1000\0junk")),
                    KP_ERR_INVALID_CONFIG);
    CU_ASSERT_EQUAL(create_with_config(fd, "cfg2", S("retention.ms\0junk"), S("1000")),
                    KP_ERR_INVALID_CONFIG);
    CU_ASSERT_EQUAL(create_with_config(fd, "cfg3", S("retention.ms"), S("1000")), 0);
    CU_ASSERT_EQUAL(alter_config(fd, "cfg3", S("retention.ms"), S("2000\0junk")), KP_ERR_INVALID_CONFIG);
    CU_ASSERT_EQUAL(alter_config(fd, "cfg3", S("retention.ms\0junk"), S("2000")), KP_ERR_INVALID_CONFIG);
    CU_ASSERT_EQUAL(alter_config(fd, "cfg3", S("retention.ms"), S("2000")), 0);
    close(fd);
}

#define CGROUP  S("cg\0x")
#define CINST   S("ci\0d\xc3\xa9")
#define CRACK   S("r\0k")
#define CCLIENT S("cc\0id")
#define CTOPIC  S("nope\0topic") /* subscribed, never created */

static void cg_describe(int fd, kp_str member)
{
    kp_consumer_group_describe_request rq;
    kp_consumer_group_describe_request_init(&rq);
    kp_str ids[1] = {CGROUP};
    rq.group_ids = ids;
    rq.group_ids_count = 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_consumer_group_describe_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, S("t"), KP_API_CONSUMER_GROUP_DESCRIBE, 0, &rq, &resp, &a, &frame), 0);
    CU_ASSERT_EQUAL_FATAL(resp.groups_count, 1);
    const kp_consumer_group_describe_response_described_group *g = &resp.groups[0];
    CU_ASSERT_EQUAL(g->error_code, 0);
    CU_ASSERT(same(g->group_id, CGROUP));
    CU_ASSERT_EQUAL_FATAL(g->members_count, 1);
    const kp_consumer_group_describe_response_member *m = &g->members[0];
    CU_ASSERT(same(m->member_id, member));
    CU_ASSERT(same(m->instance_id, CINST));
    CU_ASSERT(same(m->rack_id, CRACK));
    CU_ASSERT(same(m->client_id, CCLIENT));
    CU_ASSERT_EQUAL_FATAL(m->subscribed_topic_names_count, 1);
    CU_ASSERT(same(m->subscribed_topic_names[0], CTOPIC));
    free(frame);
    kp_arena_reset(&a);
}

/* The KIP-848 protocol: instance, rack and client ids and subscribed topic
 * names with NUL, in memory and in the consumer group records. */
static void test_consumer_group_ids(void)
{
    int fd = connect_slow();
    CU_ASSERT_FATAL(fd >= 0);
    kp_consumer_group_heartbeat_request rq;
    kp_consumer_group_heartbeat_request_init(&rq);
    kp_str subs[1] = {CTOPIC};
    rq.group_id = CGROUP;
    rq.member_id = kp_str_c("");
    rq.member_epoch = 0;
    rq.instance_id = CINST;
    rq.rack_id = CRACK;
    rq.rebalance_timeout_ms = 30000;
    rq.subscribed_topic_names = subs;
    rq.subscribed_topic_names_count = 1;
    rq.subscribed_topic_regex = KP_STR_NULL;
    rq.server_assignor = kp_str_c("uniform");
    rq.topic_partitions = NULL;
    rq.topic_partitions_count = 0;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_consumer_group_heartbeat_response resp;
    uint8_t *frame;
    CU_ASSERT_EQUAL_FATAL(call_as(fd, CCLIENT, KP_API_CONSUMER_GROUP_HEARTBEAT, 0, &rq, &resp, &a, &frame),
                          0);
    CU_ASSERT_EQUAL_FATAL(resp.error_code, 0);
    char mid[64];
    int32_t ml = resp.member_id.len > 0 && resp.member_id.len <= 64 ? resp.member_id.len : 0;
    memcpy(mid, resp.member_id.p, (size_t)ml);
    free(frame);
    kp_arena_reset(&a);
    cg_describe(fd, (kp_str){mid, ml});
    close(fd);

    kill_broker();
    CU_ASSERT_EQUAL_FATAL(start_broker(), 0);
    fd = connect_slow();
    CU_ASSERT_FATAL(fd >= 0);
    cg_describe(fd, (kp_str){mid, ml});
    close(fd);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("protocol strings keep their bytes", NULL, NULL);
    CU_add_test(s, "commit metadata and group ids with NUL, across a restart",
                test_commit_metadata_and_group_ids);
    CU_add_test(s, "member, instance and client ids with NUL, across a restart", test_member_and_client_ids);
    CU_add_test(s, "fetch session topic names with NUL", test_fetch_session_topic_names);
    CU_add_test(s, "config names and values with NUL", test_config_names_and_values);
    CU_add_test(s, "consumer group (KIP-848) ids with NUL, across a restart", test_consumer_group_ids);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = wire_setup, .teardown = stop_broker};

/*
 * test_consumer_wire.c — the KIP-848 consumer group protocol against a real
 * kbroker process (2 shards, ephemeral port, temp data dir): simulated
 * members heartbeat (ConsumerGroupHeartbeat v0 and v1) and reconcile as real
 * clients do (acknowledging revocations and assignments in their next
 * heartbeat), commit offsets with their member epochs, the group is seen by
 * ConsumerGroupDescribe and ListGroups, and a broker restart on the same data
 * directory keeps the group, its epochs, assignments and offsets.
 */
#include "kb_test.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "frame.h"
#include "wire_util.h"

#define NPARTS 6
static kp_uuid topic_id;

static void create_topic6(int fd, const char *name)
{
    CU_ASSERT_EQUAL_FATAL(wire_create_topic(fd, name, NPARTS, &topic_id), 0);
}

typedef struct member {
    char id[64];
    int32_t epoch;
    int nowned;
    int32_t owned[NPARTS];
} member;

/* One heartbeat as a real consumer sends it; returns the error. The member
 * adopts its id and epoch and, when an assignment comes, owns exactly it
 * (revoking what is gone, as a client does before its next heartbeat). */
static int16_t hb_version = 0;

static int16_t heartbeat(int fd, const char *group, member *m, int full)
{
    kp_consumer_group_heartbeat_request rq;
    kp_consumer_group_heartbeat_request_init(&rq);
    kp_str subs[1] = {kp_str_c("cwt")};
    kp_consumer_group_heartbeat_request_topic_partitions tp;
    kp_consumer_group_heartbeat_request_topic_partitions_init(&tp);
    tp.topic_id = topic_id;
    tp.partitions = m->owned;
    tp.partitions_count = m->nowned;
    rq.group_id = kp_str_c(group);
    rq.member_id = kp_str_c(m->id);
    rq.member_epoch = m->epoch;
    rq.instance_id = KP_STR_NULL;
    rq.rack_id = KP_STR_NULL;
    rq.rebalance_timeout_ms = full || m->epoch == 0 ? 30000 : -1;
    rq.subscribed_topic_names = full || m->epoch == 0 ? subs : NULL;
    rq.subscribed_topic_names_count = full || m->epoch == 0 ? 1 : -1;
    /* v1 as librdkafka 2.16 sends it: an empty regex next to the topic names. */
    rq.subscribed_topic_regex = hb_version >= 1 ? kp_str_c("") : KP_STR_NULL;
    rq.server_assignor = m->epoch == 0 ? kp_str_c("uniform") : KP_STR_NULL;
    rq.topic_partitions = &tp;
    rq.topic_partitions_count = m->epoch == 0 ? 0 : 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    uint8_t *frame;
    kp_consumer_group_heartbeat_response resp;
    int rc = wire_call(fd, KP_API_CONSUMER_GROUP_HEARTBEAT, hb_version, &rq, &resp, &a, &frame);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    int16_t err = resp.error_code;
    if (!err) {
        if (rq.member_epoch >= 0) /* a leave answers only the id and epoch */
            CU_ASSERT_EQUAL(resp.heartbeat_interval_ms, 5000);
        snprintf(m->id, sizeof(m->id), "%.*s", resp.member_id.len, resp.member_id.p);
        m->epoch = resp.member_epoch;
        if (resp.assignment) {
            m->nowned = 0;
            for (int32_t i = 0; i < resp.assignment->topic_partitions_count; i++) {
                const kp_consumer_group_heartbeat_response_topic_partitions *t =
                    &resp.assignment->topic_partitions[i];
                CU_ASSERT(memcmp(t->topic_id.b, topic_id.b, 16) == 0);
                for (int32_t k = 0; k < t->partitions_count && m->nowned < NPARTS; k++)
                    m->owned[m->nowned++] = t->partitions[k];
            }
        }
    }
    free(frame);
    kp_arena_reset(&a);
    return err;
}

static void describe(int fd, const char *group, const char *state, int nmembers, int32_t epoch)
{
    kp_consumer_group_describe_request rq;
    kp_consumer_group_describe_request_init(&rq);
    kp_str ids[2] = {kp_str_c(group), kp_str_c("cw-nosuch")};
    rq.group_ids = ids;
    rq.group_ids_count = 2;
    kp_arena a;
    kp_arena_init(&a, 0);
    uint8_t *frame;
    kp_consumer_group_describe_response resp;
    CU_ASSERT_EQUAL_FATAL(wire_call(fd, KP_API_CONSUMER_GROUP_DESCRIBE, 0, &rq, &resp, &a, &frame), 0);
    CU_ASSERT_EQUAL_FATAL(resp.groups_count, 2);
    const kp_consumer_group_describe_response_described_group *g = &resp.groups[0];
    CU_ASSERT_EQUAL(g->error_code, 0);
    CU_ASSERT(kp_str_eq(g->group_state, state));
    CU_ASSERT_EQUAL(g->members_count, nmembers);
    CU_ASSERT_EQUAL(g->group_epoch, epoch);
    CU_ASSERT_EQUAL(g->assignment_epoch, epoch);
    CU_ASSERT(kp_str_eq(g->assignor_name, "uniform"));
    int total = 0;
    for (int32_t i = 0; i < g->members_count; i++)
        for (int32_t t = 0; t < g->members[i].assignment.topic_partitions_count; t++) {
            CU_ASSERT(kp_str_eq(g->members[i].assignment.topic_partitions[t].topic_name, "cwt"));
            total += g->members[i].assignment.topic_partitions[t].partitions_count;
        }
    CU_ASSERT_EQUAL(total, NPARTS);
    CU_ASSERT_EQUAL(resp.groups[1].error_code, KP_ERR_GROUP_ID_NOT_FOUND);
    free(frame);
    kp_arena_reset(&a);
}

static int16_t commit(int fd, const char *group, const member *m, int32_t epoch, int64_t offset)
{
    kp_offset_commit_request rq;
    kp_offset_commit_request_init(&rq);
    kp_offset_commit_request_offset_commit_request_topic t;
    kp_offset_commit_request_offset_commit_request_topic_init(&t);
    kp_offset_commit_request_offset_commit_request_partition p;
    kp_offset_commit_request_offset_commit_request_partition_init(&p);
    p.partition_index = m->owned[0];
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    p.committed_metadata = kp_str_c("");
    t.name = kp_str_c("cwt");
    t.partitions = &p;
    t.partitions_count = 1;
    rq.group_id = kp_str_c(group);
    rq.generation_id_or_member_epoch = epoch;
    rq.member_id = kp_str_c(m->id);
    rq.group_instance_id = KP_STR_NULL;
    rq.topics = &t;
    rq.topics_count = 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    uint8_t *frame;
    kp_offset_commit_response resp;
    CU_ASSERT_EQUAL_FATAL(wire_call(fd, KP_API_OFFSET_COMMIT, 9, &rq, &resp, &a, &frame), 0);
    int16_t err = resp.topics[0].partitions[0].error_code;
    free(frame);
    kp_arena_reset(&a);
    return err;
}

/* OffsetFetch v9 of the group as member m: (error, offset of partition p). */
static int16_t fetch_offset(int fd, const char *group, const member *m, int32_t epoch, int32_t p,
                            int64_t *off)
{
    kp_offset_fetch_request rq;
    kp_offset_fetch_request_init(&rq);
    kp_offset_fetch_request_offset_fetch_request_group g;
    kp_offset_fetch_request_offset_fetch_request_group_init(&g);
    kp_offset_fetch_request_offset_fetch_request_topics t;
    kp_offset_fetch_request_offset_fetch_request_topics_init(&t);
    t.name = kp_str_c("cwt");
    t.partition_indexes = &p;
    t.partition_indexes_count = 1;
    g.group_id = kp_str_c(group);
    g.member_id = kp_str_c(m->id);
    g.member_epoch = epoch;
    g.topics = &t;
    g.topics_count = 1;
    rq.groups = &g;
    rq.groups_count = 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    uint8_t *frame;
    kp_offset_fetch_response resp;
    CU_ASSERT_EQUAL_FATAL(wire_call(fd, KP_API_OFFSET_FETCH, 9, &rq, &resp, &a, &frame), 0);
    int16_t err = resp.groups[0].error_code;
    *off = !err && resp.groups[0].topics_count == 1 ? resp.groups[0].topics[0].partitions[0].committed_offset
                                                    : -2;
    free(frame);
    kp_arena_reset(&a);
    return err;
}

/* The group's type in ListGroups v5 filtered by `type`: 1 when listed. */
static int listed(int fd, const char *group, const char *type)
{
    kp_list_groups_request rq;
    kp_list_groups_request_init(&rq);
    kp_str types[1] = {kp_str_c(type)};
    rq.states_filter = NULL;
    rq.states_filter_count = 0;
    rq.types_filter = types;
    rq.types_filter_count = 1;
    kp_arena a;
    kp_arena_init(&a, 0);
    uint8_t *frame;
    kp_list_groups_response resp;
    CU_ASSERT_EQUAL_FATAL(wire_call(fd, KP_API_LIST_GROUPS, 5, &rq, &resp, &a, &frame), 0);
    int found = 0;
    for (int32_t i = 0; i < resp.groups_count; i++)
        if (kp_str_eq(resp.groups[i].group_id, group)) {
            found = 1;
            CU_ASSERT(kp_str_eq(resp.groups[i].group_type, type));
            CU_ASSERT(kp_str_eq(resp.groups[i].protocol_type, "consumer"));
        }
    free(frame);
    kp_arena_reset(&a);
    return found;
}

static int16_t classic_join(int fd, const char *group)
{
    kp_join_group_request rq;
    kp_join_group_request_init(&rq);
    kp_join_group_request_join_group_request_protocol p;
    kp_join_group_request_join_group_request_protocol_init(&p);
    p.name = kp_str_c("range");
    p.metadata = (kp_bytes){(const uint8_t *)"", 0};
    rq.group_id = kp_str_c(group);
    rq.session_timeout_ms = 10000;
    rq.rebalance_timeout_ms = 10000;
    rq.member_id = kp_str_c("");
    rq.group_instance_id = KP_STR_NULL;
    rq.protocol_type = kp_str_c("consumer");
    rq.protocols = &p;
    rq.protocols_count = 1;
    rq.reason = KP_STR_NULL;
    kp_arena a;
    kp_arena_init(&a, 0);
    uint8_t *frame;
    kp_join_group_response resp;
    CU_ASSERT_EQUAL_FATAL(wire_call(fd, KP_API_JOIN_GROUP, 9, &rq, &resp, &a, &frame), 0);
    int16_t err = resp.error_code;
    free(frame);
    kp_arena_reset(&a);
    return err;
}

/* Heartbeats every member until the group is stable with 2 partitions each. */
static void converge(int fd, const char *group, member *ms, int n)
{
    for (int round = 0; round < 20; round++) {
        int done = 1;
        for (int i = 0; i < n; i++) {
            CU_ASSERT_EQUAL(heartbeat(fd, group, &ms[i], 0), 0);
            if (ms[i].nowned != NPARTS / n || ms[i].epoch != ms[0].epoch)
                done = 0;
        }
        if (done)
            break;
    }
}

static void test_consumer_group(void)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    create_topic6(fd, "cwt");
    const char *group = "cw-group";
    member ms[3];
    memset(ms, 0, sizeof(ms));
    /* The offsets topic may still be in creation: retry the first join. */
    int16_t err = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    for (int i = 0; i < 50 && err == KP_ERR_COORDINATOR_NOT_AVAILABLE; i++) {
        err = heartbeat(fd, group, &ms[0], 1);
        if (err)
            usleep(100000);
    }
    CU_ASSERT_EQUAL_FATAL(err, 0);
    CU_ASSERT_EQUAL(ms[0].nowned, NPARTS);
    CU_ASSERT_EQUAL(heartbeat(fd, group, &ms[1], 1), 0);
    CU_ASSERT_EQUAL(heartbeat(fd, group, &ms[2], 1), 0);
    converge(fd, group, ms, 3);
    int seen[NPARTS] = {0};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(ms[i].nowned, 2);
        CU_ASSERT_EQUAL(ms[i].epoch, 3);
        for (int k = 0; k < ms[i].nowned; k++)
            seen[ms[i].owned[k]]++;
    }
    for (int p = 0; p < NPARTS; p++)
        CU_ASSERT_EQUAL(seen[p], 1);
    describe(fd, group, "Stable", 3, 3);
    CU_ASSERT(listed(fd, group, "consumer"));
    CU_ASSERT(!listed(fd, group, "classic"));
    /* A classic member may join (online migration): first its member id. */
    CU_ASSERT_EQUAL(classic_join(fd, group), KP_ERR_MEMBER_ID_REQUIRED);

    /* Offsets: the member's epoch, not a generation. */
    CU_ASSERT_EQUAL(commit(fd, group, &ms[0], ms[0].epoch, 77), 0);
    CU_ASSERT_EQUAL(commit(fd, group, &ms[0], ms[0].epoch - 1, 78), KP_ERR_STALE_MEMBER_EPOCH);
    int64_t off;
    CU_ASSERT_EQUAL(fetch_offset(fd, group, &ms[0], ms[0].epoch + 1, ms[0].owned[0], &off),
                    KP_ERR_STALE_MEMBER_EPOCH);
    close(fd);

    /* Restart on the same data directory: the group is back as it was. */
    kill_broker();
    CU_ASSERT_EQUAL_FATAL(start_broker(), 0);
    fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    describe(fd, group, "Stable", 3, 3);
    CU_ASSERT_EQUAL(fetch_offset(fd, group, &ms[0], ms[0].epoch, ms[0].owned[0], &off), 0);
    CU_ASSERT_EQUAL(off, 77);
    for (int i = 0; i < 3; i++) {
        int32_t before = ms[i].epoch, nbefore = ms[i].nowned;
        CU_ASSERT_EQUAL(heartbeat(fd, group, &ms[i], 1), 0);
        CU_ASSERT_EQUAL(ms[i].epoch, before);
        CU_ASSERT_EQUAL(ms[i].nowned, nbefore);
    }

    /* One member leaves: the others take over its partitions. */
    member gone = ms[2];
    gone.epoch = -1;
    CU_ASSERT_EQUAL(heartbeat(fd, group, &gone, 0), 0);
    CU_ASSERT_EQUAL(gone.epoch, -1);
    converge(fd, group, ms, 2);
    CU_ASSERT_EQUAL(ms[0].nowned + ms[1].nowned, NPARTS);
    CU_ASSERT_EQUAL(ms[0].nowned, 3);
    describe(fd, group, "Stable", 2, 4);
    /* A fenced epoch and an unknown member. */
    member bad = ms[0];
    bad.epoch += 10;
    CU_ASSERT_EQUAL(heartbeat(fd, group, &bad, 0), KP_ERR_FENCED_MEMBER_EPOCH);
    CU_ASSERT_EQUAL(heartbeat(fd, group, &gone, 0), KP_ERR_UNKNOWN_MEMBER_ID);
    close(fd);
}

/* v1 (Kafka 4.0, KIP-1082; what librdkafka 2.16 and franz-go 1.22 require): the member id is the client's,
 * from the first heartbeat on, and may not be empty. */
static void test_heartbeat_v1(void)
{
    int fd = connect_broker();
    CU_ASSERT_FATAL(fd >= 0);
    hb_version = 1;
    member m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "client-made-id-0123456789");
    int16_t err = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    for (int i = 0; i < 100 && err == KP_ERR_COORDINATOR_NOT_AVAILABLE; i++) {
        err = heartbeat(fd, "cw-v1", &m, 1);
        if (err == KP_ERR_COORDINATOR_NOT_AVAILABLE)
            usleep(50000);
    }
    CU_ASSERT_EQUAL(err, 0);
    CU_ASSERT_STRING_EQUAL(m.id, "client-made-id-0123456789");
    CU_ASSERT(m.epoch > 0);
    CU_ASSERT_EQUAL(heartbeat(fd, "cw-v1", &m, 0), 0);
    member anon;
    memset(&anon, 0, sizeof(anon));
    CU_ASSERT_EQUAL(heartbeat(fd, "cw-v1", &anon, 1), KP_ERR_INVALID_REQUEST);
    hb_version = 0;
    close(fd);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("consumer group wire", NULL, NULL);
    CU_add_test(s, "KIP-848 members, offsets, restart", test_consumer_group);
    CU_add_test(s, "ConsumerGroupHeartbeat v1: the client's member id", test_heartbeat_v1);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = wire_setup, .teardown = stop_broker};

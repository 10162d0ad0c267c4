/*
 * test_share_state.c — unit tests of server/share_state.c (the
 * __share_group_state records) and of the share-partition's persisted form
 * (srv_sp_runs / srv_sp_restore): Kafka 4.4's key and value bytes, the
 * replay of a snapshot followed by updates (merge, start offset, tombstone),
 * refusal of malformed records, the state partition of a key, and a
 * share-partition written, replayed and restored with its acknowledged
 * records done and its acquired ones Available with their delivery counts.
 *
 * Owns: the images, maps and share-partitions it builds. Must not: start a
 * broker, or touch the network or the disk.
 */
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"
#include "share_partition.h"
#include "share_state.h"

static const kp_uuid TOPIC = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};

typedef struct rec {
    kp_writer k, v;
} rec;

static void rec_make(rec *r, int type, const char *group, int32_t partition, const srv_ss_image *img)
{
    kp_writer_init(&r->k, 64);
    kp_writer_init(&r->v, 128);
    CU_ASSERT_EQUAL(srv_ss_key(&r->k, type, kp_str_c(group), &TOPIC, partition), 0);
    if (img)
        CU_ASSERT_EQUAL(srv_ss_value(&r->v, type, img), 0);
}

static int rec_replay(srv_ss_map *m, rec *r, int tombstone)
{
    return srv_ss_replay(m, 0, r->k.buf, (int32_t)r->k.len, tombstone ? NULL : r->v.buf,
                         tombstone ? -1 : (int32_t)r->v.len);
}

static void rec_free(rec *r)
{
    kp_writer_free(&r->k);
    kp_writer_free(&r->v);
}

static void test_key_and_value_bytes(void)
{
    /* Key: int16 record type, then the v0 key (int16-length string, uuid,
     * int32), as Kafka's CoordinatorRecordSerde writes it. */
    kp_writer w;
    kp_writer_init(&w, 64);
    CU_ASSERT_EQUAL(srv_ss_key(&w, SRV_SS_UPDATE, kp_str_c("g1"), &TOPIC, 7), 0);
    static const uint8_t key[] = {0, 1, 0,  2,  'g', '1', 1,  2,  3,  4, 5, 6, 7,
                                  8, 9, 10, 11, 12,  13,  14, 15, 16, 0, 0, 0, 7};
    CU_ASSERT_EQUAL_FATAL(w.len, sizeof(key));
    CU_ASSERT_EQUAL(memcmp(w.buf, key, sizeof(key)), 0);
    kp_writer_free(&w);

    /* Update value: int16 version 0, then flexible: SnapshotEpoch, LeaderEpoch,
     * StartOffset, compact array of batches (each with its empty tag section),
     * then tag 0 DeliveryCompleteCount (not the default -1, so written). */
    srv_ss_batch b = {5, 9, SRV_SS_ACKNOWLEDGED, 1};
    srv_ss_image img = {.snapshot_epoch = 3,
                        .leader_epoch = 2,
                        .start = 5,
                        .delivery_complete = 5,
                        .batches = &b,
                        .nbatches = 1};
    kp_writer_init(&w, 64);
    CU_ASSERT_EQUAL(srv_ss_value(&w, SRV_SS_UPDATE, &img), 0);
    static const uint8_t val[] = {0, 0,                   /* version */
                                  0, 0, 0, 3,             /* SnapshotEpoch */
                                  0, 0, 0, 2,             /* LeaderEpoch */
                                  0, 0, 0, 0, 0, 0, 0, 5, /* StartOffset */
                                  2,                      /* one batch */
                                  0, 0, 0, 0, 0, 0, 0, 5, /* FirstOffset */
                                  0, 0, 0, 0, 0, 0, 0, 9, /* LastOffset */
                                  2,                      /* DeliveryState */
                                  0, 1,                   /* DeliveryCount */
                                  0,                      /* batch tags */
                                  1, 0, 4, 0, 0, 0, 5};   /* tag 0, 4 bytes */
    CU_ASSERT_EQUAL_FATAL(w.len, sizeof(val));
    CU_ASSERT_EQUAL(memcmp(w.buf, val, sizeof(val)), 0);

    /* And back, whole. */
    srv_ss_rec r;
    kp_writer k;
    kp_writer_init(&k, 64);
    srv_ss_key(&k, SRV_SS_UPDATE, kp_str_c("g1"), &TOPIC, 7);
    CU_ASSERT_EQUAL(srv_ss_decode(k.buf, (int32_t)k.len, w.buf, (int32_t)w.len, &r), SRV_SS_OK);
    CU_ASSERT_EQUAL(r.type, SRV_SS_UPDATE);
    CU_ASSERT_EQUAL(r.group_len, 2);
    CU_ASSERT_EQUAL(memcmp(r.group, "g1", 2), 0);
    CU_ASSERT_EQUAL(r.partition, 7);
    CU_ASSERT_EQUAL(memcmp(r.topic.b, TOPIC.b, 16), 0);
    CU_ASSERT_EQUAL(r.img.start, 5);
    CU_ASSERT_EQUAL(r.img.delivery_complete, 5);
    CU_ASSERT_EQUAL_FATAL(r.img.nbatches, 1);
    CU_ASSERT_EQUAL(r.img.batches[0].last, 9);
    CU_ASSERT_EQUAL(r.img.batches[0].state, SRV_SS_ACKNOWLEDGED);
    srv_ss_rec_clear(&r);
    kp_writer_free(&k);
    kp_writer_free(&w);
}

static void test_malformed_refused(void)
{
    srv_ss_map m;
    srv_ss_map_init(&m);
    srv_ss_batch ok = {0, 4, SRV_SS_ACKNOWLEDGED, 1};
    srv_ss_image img = {.start = 0, .delivery_complete = -1, .batches = &ok, .nbatches = 1};
    rec r;
    rec_make(&r, SRV_SS_SNAPSHOT, "g", 0, &img);
    /* A trailing byte, a cut value, an unknown record type, a newer version. */
    uint8_t *buf = malloc(r.v.len + 1);
    memcpy(buf, r.v.buf, r.v.len);
    buf[r.v.len] = 0;
    CU_ASSERT_EQUAL(srv_ss_replay(&m, 0, r.k.buf, (int32_t)r.k.len, buf, (int32_t)r.v.len + 1),
                    SRV_SS_E_MALFORMED);
    CU_ASSERT_EQUAL(srv_ss_replay(&m, 0, r.k.buf, (int32_t)r.k.len, buf, (int32_t)r.v.len - 3),
                    SRV_SS_E_MALFORMED);
    buf[1] = 1;
    CU_ASSERT_EQUAL(srv_ss_replay(&m, 0, r.k.buf, (int32_t)r.k.len, buf, (int32_t)r.v.len), SRV_SS_E_VERSION);
    uint8_t key2[64];
    memcpy(key2, r.k.buf, r.k.len);
    key2[1] = 3; /* ShareGroupMetadata's type, another coordinator's */
    CU_ASSERT_EQUAL(srv_ss_replay(&m, 0, key2, (int32_t)r.k.len, r.v.buf, (int32_t)r.v.len), SRV_SS_E_TYPE);
    CU_ASSERT_EQUAL(m.count, 0);
    free(buf);
    rec_free(&r);
    /* Overlapping batches and a state Kafka never persists (Acquired). */
    srv_ss_batch bad[2] = {{0, 4, SRV_SS_ACKNOWLEDGED, 1}, {4, 6, SRV_SS_AVAILABLE, 1}};
    img.batches = bad;
    img.nbatches = 2;
    rec_make(&r, SRV_SS_SNAPSHOT, "g", 0, &img);
    CU_ASSERT_EQUAL(rec_replay(&m, &r, 0), SRV_SS_E_MALFORMED);
    rec_free(&r);
    srv_ss_batch acq = {0, 4, 1, 1};
    img.batches = &acq;
    img.nbatches = 1;
    rec_make(&r, SRV_SS_SNAPSHOT, "g", 0, &img);
    CU_ASSERT_EQUAL(rec_replay(&m, &r, 0), SRV_SS_E_MALFORMED);
    rec_free(&r);
    CU_ASSERT_EQUAL(m.count, 0);
    srv_ss_map_free(&m);
}

static void test_snapshot_then_updates(void)
{
    srv_ss_map m;
    srv_ss_map_init(&m);
    /* Snapshot: start 10, 10-19 Available delivered once, 20-29 Acknowledged. */
    srv_ss_batch s[] = {{10, 19, SRV_SS_AVAILABLE, 1}, {20, 29, SRV_SS_ACKNOWLEDGED, 1}};
    srv_ss_image snap = {.start = 10, .delivery_complete = -1, .batches = s, .nbatches = 2};
    rec r;
    rec_make(&r, SRV_SS_SNAPSHOT, "g", 3, &snap);
    CU_ASSERT_EQUAL(rec_replay(&m, &r, 0), SRV_SS_OK);
    rec_free(&r);
    /* Update: start unchanged (-1), 12-14 Archived at delivery 2 (cuts the
     * first batch in three). */
    srv_ss_batch u1[] = {{12, 14, SRV_SS_ARCHIVED, 2}};
    srv_ss_image up = {.start = -1, .delivery_complete = -1, .batches = u1, .nbatches = 1};
    rec_make(&r, SRV_SS_UPDATE, "g", 3, &up);
    CU_ASSERT_EQUAL(rec_replay(&m, &r, 0), SRV_SS_OK);
    rec_free(&r);
    srv_ss_entry *e = srv_ss_map_get(&m, kp_str_c("g"), &TOPIC, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->updates, 1);
    CU_ASSERT_EQUAL(e->img.start, 10);
    CU_ASSERT_EQUAL_FATAL(e->img.nbatches, 4);
    CU_ASSERT(e->img.batches[0].first == 10 && e->img.batches[0].last == 11 &&
              e->img.batches[0].delivery == 1);
    CU_ASSERT(e->img.batches[1].first == 12 && e->img.batches[1].last == 14 &&
              e->img.batches[1].state == SRV_SS_ARCHIVED && e->img.batches[1].delivery == 2);
    CU_ASSERT(e->img.batches[2].first == 15 && e->img.batches[2].last == 19 &&
              e->img.batches[2].state == SRV_SS_AVAILABLE);
    CU_ASSERT(e->img.batches[3].first == 20 && e->img.batches[3].last == 29);
    /* Update: start 16 (everything below is done), 16-17 Acknowledged. */
    srv_ss_batch u2[] = {{16, 17, SRV_SS_ACKNOWLEDGED, 1}};
    up.start = 16;
    up.batches = u2;
    rec_make(&r, SRV_SS_UPDATE, "g", 3, &up);
    CU_ASSERT_EQUAL(rec_replay(&m, &r, 0), SRV_SS_OK);
    rec_free(&r);
    CU_ASSERT_EQUAL(e->img.start, 16);
    CU_ASSERT_EQUAL_FATAL(e->img.nbatches, 3);
    CU_ASSERT(e->img.batches[0].first == 16 && e->img.batches[0].last == 17 &&
              e->img.batches[0].state == SRV_SS_ACKNOWLEDGED);
    CU_ASSERT(e->img.batches[1].first == 18 && e->img.batches[1].last == 19 &&
              e->img.batches[1].state == SRV_SS_AVAILABLE);
    CU_ASSERT(e->img.batches[2].first == 20 && e->img.batches[2].last == 29);
    /* Another share-partition of the same group is its own entry; a new
     * snapshot replaces all; a tombstone removes. */
    rec_make(&r, SRV_SS_SNAPSHOT, "g", 4, &snap);
    CU_ASSERT_EQUAL(rec_replay(&m, &r, 0), SRV_SS_OK);
    rec_free(&r);
    CU_ASSERT_EQUAL(m.count, 2);
    srv_ss_image empty = {.start = 30, .delivery_complete = -1};
    rec_make(&r, SRV_SS_SNAPSHOT, "g", 3, &empty);
    CU_ASSERT_EQUAL(rec_replay(&m, &r, 0), SRV_SS_OK);
    CU_ASSERT_EQUAL(e->img.start, 30);
    CU_ASSERT_EQUAL(e->img.nbatches, 0);
    CU_ASSERT_EQUAL(e->updates, 0);
    CU_ASSERT_EQUAL(rec_replay(&m, &r, 1), SRV_SS_OK);
    rec_free(&r);
    CU_ASSERT_PTR_NULL(srv_ss_map_get(&m, kp_str_c("g"), &TOPIC, 3));
    CU_ASSERT_EQUAL(m.count, 1);
    srv_ss_map_free(&m);
}

static void test_partition_for(void)
{
    /* Java: Math.abs(("g:AQIDBAUGBwgJCgsMDQ4PEA:0").hashCode()) % 50, with the
     * topic id in Kafka's Uuid.toString (URL-safe base64, no padding). */
    int32_t h = 0;
    const char *s = "g:AQIDBAUGBwgJCgsMDQ4PEA:0";
    for (const char *p = s; *p; p++)
        h = (int32_t)((uint32_t)h * 31u + (uint8_t)*p);
    int32_t want = (h < 0 ? -h : h) % 50;
    CU_ASSERT_EQUAL(srv_ss_partition_for(kp_str_c("g"), &TOPIC, 0, 50), want);
    CU_ASSERT(srv_ss_partition_for(kp_str_c("g"), &TOPIC, 1, 50) >= 0);
    CU_ASSERT(srv_ss_partition_for(kp_str_c("g"), &TOPIC, 1, 50) < 50);
}

/* A share-partition's state written as a snapshot then an update, replayed
 * and restored: what a restart sees. */
static void test_share_partition_round_trip(void)
{
    srv_share_part sp;
    const char *why;
    static const int8_t ACC[] = {SRV_ACK_ACCEPT}, REL[] = {SRV_ACK_RELEASE}, REJ[] = {SRV_ACK_REJECT};
    srv_sp_init(&sp, 100, 1000, 5, 1000);
    srv_sp_range rg[8];
    CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 1, 100, 109, 0, 0, rg, 8), 1);
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 100, 102, ACC, 1, &why), 0); /* start moves to 103 */
    CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 105, 105, REL, 1, &why), 0);
    srv_ss_map m;
    srv_ss_map_init(&m);
    for (int step = 0; step < 2; step++) {
        srv_sp_run runs[16];
        int n = srv_sp_runs(&sp, runs, 16);
        CU_ASSERT_FATAL(n > 0 && n <= 16);
        srv_ss_batch b[16];
        for (int i = 0; i < n; i++)
            b[i] = (srv_ss_batch){runs[i].first, runs[i].last, runs[i].state, runs[i].delivery};
        srv_ss_image img = {.start = sp.start, .delivery_complete = -1, .batches = b, .nbatches = n};
        rec r;
        rec_make(&r, step == 0 ? SRV_SS_SNAPSHOT : SRV_SS_UPDATE, "grp", 0, &img);
        CU_ASSERT_EQUAL(rec_replay(&m, &r, 0), SRV_SS_OK);
        rec_free(&r);
        if (step == 0) {
            /* 105 again (delivery 2), then 103 accepted, 106 rejected. */
            CU_ASSERT_EQUAL(srv_sp_acquire(&sp, 1, 105, 105, 0, 0, rg, 8), 1);
            CU_ASSERT_EQUAL(rg[0].delivery, 2);
            CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 103, 103, ACC, 1, &why), 0);
            CU_ASSERT_EQUAL(srv_sp_ack(&sp, 1, 106, 106, REJ, 1, &why), 0);
        }
    }
    srv_ss_entry *e = srv_ss_map_get(&m, kp_str_c("grp"), &TOPIC, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    srv_sp_run runs[16];
    for (int32_t i = 0; i < e->img.nbatches; i++)
        runs[i] = (srv_sp_run){e->img.batches[i].first, e->img.batches[i].last, e->img.batches[i].state,
                               e->img.batches[i].delivery};
    srv_share_part back;
    srv_sp_init(&back, e->img.start, 1000, 5, 1000);
    CU_ASSERT_EQUAL(srv_sp_restore(&back, e->img.start, runs, e->img.nbatches), 0);
    /* Acknowledged: below start or Acknowledged; acquired ones Available with
     * their delivery count; the rejected one Archived. */
    CU_ASSERT_EQUAL(back.start, 104);
    int d;
    CU_ASSERT_EQUAL(srv_sp_state_of(&back, 103, NULL), SRV_SP_ACKNOWLEDGED);
    CU_ASSERT_EQUAL(srv_sp_state_of(&back, 104, &d), SRV_SP_AVAILABLE);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT_EQUAL(srv_sp_state_of(&back, 105, &d), SRV_SP_AVAILABLE);
    CU_ASSERT_EQUAL(d, 2);
    CU_ASSERT_EQUAL(srv_sp_state_of(&back, 106, NULL), SRV_SP_ARCHIVED);
    CU_ASSERT_EQUAL(srv_sp_state_of(&back, 109, &d), SRV_SP_AVAILABLE);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT_EQUAL(back.end, 110);
    /* The next delivery of 104 is its second. */
    CU_ASSERT_EQUAL(srv_sp_acquire(&back, 7, 104, 104, 0, 0, rg, 8), 1);
    CU_ASSERT_EQUAL(rg[0].delivery, 2);
    srv_sp_free(&back);
    srv_sp_free(&sp);
    srv_ss_map_free(&m);
}

static void test_restore_at_delivery_limit(void)
{
    /* Delivered max_delivery times and not finished: archived, never offered. */
    srv_sp_run runs[] = {{0, 1, SRV_SS_AVAILABLE, 5}, {2, 2, SRV_SS_AVAILABLE, 4}};
    srv_share_part sp;
    srv_sp_init(&sp, 0, 1000, 5, 1000);
    CU_ASSERT_EQUAL(srv_sp_restore(&sp, 0, runs, 2), 0);
    CU_ASSERT_EQUAL(sp.start, 2);
    CU_ASSERT_EQUAL(srv_sp_read_from(&sp), 2);
    srv_sp_free(&sp);
}

static void test_prune_point(void)
{
    static const kp_uuid T2 = {{9}};
    srv_ss_map m;
    srv_ss_map_init(&m);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), -1);
    /* Where each share-partition's latest snapshot is: below the oldest of
     * them, no record is needed. */
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("a"), &TOPIC, 0, SRV_SS_SNAPSHOT, 0), 0);
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("b"), &TOPIC, 0, SRV_SS_SNAPSHOT, 1), 0);
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("a"), &TOPIC, 0, SRV_SS_UPDATE, 2), 0);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), 0);
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("a"), &TOPIC, 0, SRV_SS_SNAPSHOT, 3), 0);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), 1);
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("b"), &TOPIC, 0, SRV_SS_SNAPSHOT, 4), 0);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), 3);
    /* An update of a share-partition whose snapshot was never seen pins itself. */
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("a"), &T2, 0, SRV_SS_UPDATE, 5), 0);
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("a"), &TOPIC, 0, SRV_SS_SNAPSHOT, 6), 0);
    CU_ASSERT_EQUAL(srv_ss_track(&m, kp_str_c("b"), &TOPIC, 0, SRV_SS_SNAPSHOT, 7), 0);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), 5);
    srv_ss_map_free(&m);

    /* The replay notes the snapshot offsets of what it reads. */
    srv_ss_map_init(&m);
    srv_ss_image snap = {.start = 0, .delivery_complete = -1};
    rec r;
    rec_make(&r, SRV_SS_SNAPSHOT, "g", 0, &snap);
    CU_ASSERT_EQUAL(srv_ss_replay(&m, 40, r.k.buf, (int32_t)r.k.len, r.v.buf, (int32_t)r.v.len), SRV_SS_OK);
    rec_free(&r);
    rec_make(&r, SRV_SS_UPDATE, "g", 0, &(srv_ss_image){.start = -1, .delivery_complete = -1});
    CU_ASSERT_EQUAL(srv_ss_replay(&m, 41, r.k.buf, (int32_t)r.k.len, r.v.buf, (int32_t)r.v.len), SRV_SS_OK);
    rec_free(&r);
    CU_ASSERT_EQUAL(srv_ss_prune_point(&m), 40);
    srv_ss_map_free(&m);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("share_state", NULL, NULL);
    CU_add_test(s, "key and value bytes", test_key_and_value_bytes);
    CU_add_test(s, "malformed records refused", test_malformed_refused);
    CU_add_test(s, "snapshot then updates", test_snapshot_then_updates);
    CU_add_test(s, "state partition of a key", test_partition_for);
    CU_add_test(s, "share-partition round trip", test_share_partition_round_trip);
    CU_add_test(s, "restore at the delivery limit", test_restore_at_delivery_limit);
    CU_add_test(s, "prune point of a state partition", test_prune_point);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

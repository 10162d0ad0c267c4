/*
 * group_log.c — encoding and replay of the __consumer_offsets records.
 *
 * Owns the byte layout of keys and values (see group_log.h). Must not: trust
 * a record read back (a damaged or foreign record is skipped with a warning,
 * never applied half-way), or keep memory beyond a call (scratch arrays
 * are freed before returning; the bytes go into the caller's builder).
 *
 * The only file that knows the bytes of those records, classic and KIP-848
 * alike: consumer.c and group*.c decide what to write, this file how.
 */
#include "group_log.h"

#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "errors.h"
#include "kp_messages.h"
#include "logging.h"
#include "sstr.h"

#define KEY_OFFSET_V  1 /* OffsetCommitKey */
#define KEY_GROUP_V   2 /* GroupMetadataKey */
#define VAL_OFFSET_V  3 /* OffsetCommitValue with leader epoch */
#define VAL_OFFSET_V1 1 /* OffsetCommitValue with an explicit expire timestamp */
#define VAL_GROUP_V   3 /* GroupMetadataValue with group instance ids */

/* Record key versions (the "validVersions" of each key: Kafka's record types). */
#define KEY_CG_EPOCH          3
#define KEY_CG_TOPICS         4
#define KEY_CG_MEMBER         5
#define KEY_CG_TARGET_EPOCH   6
#define KEY_CG_TARGET_MEMBER  7
#define KEY_CG_CURRENT_MEMBER 8
#define KEY_CG_REGEX          16

int srv_glog_add_offset(kp_batch_builder *bb, int64_t ts, kp_str group, kp_str topic, int32_t partition,
                        const srv_goffset *o)
{
    kp_writer kw, vw;
    kp_writer_init(&kw, 64);
    kp_writer_init(&vw, 64);
    kp_offset_commit_key k;
    kp_offset_commit_key_init(&k);
    k.group = group;
    k.topic = topic;
    k.partition = partition;
    kp_write_i16(&kw, KEY_OFFSET_V);
    int rc = kp_offset_commit_key_encode(&kw, KEY_OFFSET_V, &k);
    if (o && rc == 0) {
        int16_t ver = o->expire_ts >= 0 ? VAL_OFFSET_V1 : VAL_OFFSET_V;
        kp_offset_commit_value v;
        kp_offset_commit_value_init(&v);
        v.offset = o->offset;
        v.leader_epoch = o->leader_epoch;
        v.metadata = o->metadata ? srv_s(o->metadata) : kp_str_c("");
        v.commit_timestamp = o->commit_ts;
        v.expire_timestamp = o->expire_ts;
        kp_write_i16(&vw, ver);
        rc = kp_offset_commit_value_encode(&vw, ver, &v);
    }
    if (rc == 0)
        rc = kw.err ? kw.err : vw.err;
    if (rc == 0)
        rc = kp_batch_builder_add(bb, ts, (kp_bytes){kw.buf, (int32_t)kw.len},
                                  o ? (kp_bytes){vw.buf, (int32_t)vw.len} : KP_BYTES_NULL, NULL, 0);
    kp_writer_free(&kw);
    kp_writer_free(&vw);
    return rc;
}

int srv_glog_add_group(kp_batch_builder *bb, int64_t ts, const srv_group *g, const kp_bytes *assignments,
                       int tombstone)
{
    kp_writer kw, vw;
    kp_writer_init(&kw, 64);
    kp_writer_init(&vw, 256);
    kp_group_metadata_key k;
    kp_group_metadata_key_init(&k);
    k.group = srv_s(g->id);
    kp_write_i16(&kw, KEY_GROUP_V);
    int rc = kp_group_metadata_key_encode(&kw, KEY_GROUP_V, &k);
    kp_group_metadata_value_member_metadata *mm = NULL;
    if (!tombstone && rc == 0) {
        mm = calloc((size_t)g->nmembers + 1, sizeof(*mm));
        if (!mm)
            rc = KP_E_NOMEM;
    }
    if (!tombstone && rc == 0) {
        kp_group_metadata_value v;
        kp_group_metadata_value_init(&v);
        v.protocol_type = g->protocol_type ? srv_s(g->protocol_type) : kp_str_c("");
        v.generation = g->generation;
        v.protocol = srv_s(g->protocol_name);
        v.leader = srv_s(g->leader);
        v.current_state_timestamp = g->state_ts;
        for (int i = 0; i < g->nmembers; i++) {
            const srv_gmember *m = g->members[i];
            kp_group_metadata_value_member_metadata_init(&mm[i]);
            mm[i].member_id = srv_s(m->id);
            mm[i].group_instance_id = srv_s(m->instance_id);
            mm[i].client_id = srv_s(m->client_id);
            mm[i].client_host = srv_s(m->client_host);
            mm[i].rebalance_timeout = m->rebalance_timeout_ms;
            mm[i].session_timeout = m->session_timeout_ms;
            mm[i].subscription = srv_gmember_metadata(g, m);
            mm[i].assignment = assignments ? assignments[i] : (kp_bytes){m->assignment, m->assignment_len};
            if (mm[i].assignment.len < 0 || !mm[i].assignment.p)
                mm[i].assignment = (kp_bytes){(const uint8_t *)"", 0};
        }
        v.members = mm;
        v.members_count = g->nmembers;
        kp_write_i16(&vw, VAL_GROUP_V);
        rc = kp_group_metadata_value_encode(&vw, VAL_GROUP_V, &v);
    }
    if (rc == 0)
        rc = kw.err ? kw.err : vw.err;
    if (rc == 0)
        rc = kp_batch_builder_add(bb, ts, (kp_bytes){kw.buf, (int32_t)kw.len},
                                  tombstone ? KP_BYTES_NULL : (kp_bytes){vw.buf, (int32_t)vw.len}, NULL, 0);
    free(mm);
    kp_writer_free(&kw);
    kp_writer_free(&vw);
    return rc;
}

/* ---- KIP-848 consumer group records ------------------------------------------------------------- */

static kp_str cstr(const char *s)
{
    return srv_s(s);
}

/* Adds key kw and value vw (NULL: tombstone) to bb; frees both writers. */
static int add_record(kp_batch_builder *bb, int64_t ts, kp_writer *kw, kp_writer *vw, int rc)
{
    if (rc == 0)
        rc = kw->err ? kw->err : (vw ? vw->err : 0);
    if (rc == 0)
        rc = kp_batch_builder_add(bb, ts, (kp_bytes){kw->buf, (int32_t)kw->len},
                                  vw ? (kp_bytes){vw->buf, (int32_t)vw->len} : KP_BYTES_NULL, NULL, 0);
    kp_writer_free(kw);
    if (vw)
        kp_writer_free(vw);
    return rc;
}

/* Group-level keys (epoch, topics, target epoch) share one shape. */
static int group_key(kp_writer *kw, int16_t ver, const char *group)
{
    kp_writer_init(kw, 64);
    kp_write_i16(kw, ver);
    kp_consumer_group_metadata_key k;
    kp_consumer_group_metadata_key_init(&k);
    k.group_id = srv_s(group);
    /* The three group-level keys are the same single string field. */
    return kp_consumer_group_metadata_key_encode(kw, KEY_CG_EPOCH, &k);
}

/* Member-level keys (member, target member, current member) likewise. */
static int member_key(kp_writer *kw, int16_t ver, const char *group, const char *member)
{
    kp_writer_init(kw, 64);
    kp_write_i16(kw, ver);
    kp_consumer_group_member_metadata_key k;
    kp_consumer_group_member_metadata_key_init(&k);
    k.group_id = srv_s(group);
    k.member_id = srv_s(member);
    return kp_consumer_group_member_metadata_key_encode(kw, KEY_CG_MEMBER, &k);
}

static int rec_epoch(kp_batch_builder *bb, int64_t ts, const char *group, int16_t key, const int32_t *epoch)
{
    kp_writer kw, vw;
    int rc = group_key(&kw, key, group);
    if (!epoch)
        return add_record(bb, ts, &kw, NULL, rc);
    kp_writer_init(&vw, 16);
    kp_write_i16(&vw, 0);
    if (rc == 0 && key == KEY_CG_EPOCH) {
        kp_consumer_group_metadata_value v;
        kp_consumer_group_metadata_value_init(&v);
        v.epoch = *epoch;
        rc = kp_consumer_group_metadata_value_encode(&vw, 0, &v);
    } else if (rc == 0) {
        kp_consumer_group_target_assignment_metadata_value v;
        kp_consumer_group_target_assignment_metadata_value_init(&v);
        v.assignment_epoch = *epoch;
        rc = kp_consumer_group_target_assignment_metadata_value_encode(&vw, 0, &v);
    }
    return add_record(bb, ts, &kw, &vw, rc);
}

int srv_glog_add_cg_topics(kp_batch_builder *bb, int64_t ts, const char *group, const srv_cgroup *cg)
{
    kp_writer kw, vw;
    int rc = group_key(&kw, KEY_CG_TOPICS, group);
    if (!cg)
        return add_record(bb, ts, &kw, NULL, rc);
    kp_writer_init(&vw, 64);
    kp_write_i16(&vw, 0);
    kp_consumer_group_partition_metadata_value_topic_metadata *tm =
        calloc((size_t)cg->ntopics + 1, sizeof(*tm));
    if (!tm)
        rc = KP_E_NOMEM;
    if (rc == 0) {
        for (int i = 0; i < cg->ntopics; i++) {
            kp_consumer_group_partition_metadata_value_topic_metadata_init(&tm[i]);
            tm[i].topic_id = cg->topics[i].id;
            tm[i].topic_name = srv_s(cg->topics[i].name);
            tm[i].num_partitions = cg->topics[i].nparts;
            tm[i].partition_metadata_count = 0; /* no racks here */
        }
        kp_consumer_group_partition_metadata_value v;
        kp_consumer_group_partition_metadata_value_init(&v);
        v.topics = tm;
        v.topics_count = cg->ntopics;
        rc = kp_consumer_group_partition_metadata_value_encode(&vw, 0, &v);
    }
    free(tm);
    return add_record(bb, ts, &kw, &vw, rc);
}

int srv_glog_add_cg_member(kp_batch_builder *bb, int64_t ts, const char *group, const char *id,
                           const srv_cmember *m)
{
    kp_writer kw, vw;
    int rc = member_key(&kw, KEY_CG_MEMBER, group, id);
    if (!m)
        return add_record(bb, ts, &kw, NULL, rc);
    kp_writer_init(&vw, 128);
    kp_write_i16(&vw, 0);
    kp_str *subs = calloc((size_t)m->nsubs + 1, sizeof(*subs));
    if (!subs)
        rc = KP_E_NOMEM;
    if (rc == 0) {
        for (int i = 0; i < m->nsubs; i++)
            subs[i] = srv_s(m->subs[i]);
        kp_consumer_group_member_metadata_value v;
        kp_consumer_group_member_metadata_value_init(&v);
        v.instance_id = cstr(m->instance_id);
        v.rack_id = cstr(m->rack_id);
        v.client_id = m->client_id ? srv_s(m->client_id) : kp_str_c("");
        v.client_host = m->client_host ? srv_s(m->client_host) : kp_str_c("");
        v.subscribed_topic_names = subs;
        v.subscribed_topic_names_count = m->nsubs;
        v.subscribed_topic_regex = cstr(m->regex);
        v.rebalance_timeout_ms = m->rebalance_timeout_ms;
        v.server_assignor = cstr(m->assignor);
        v.classic_member_metadata = NULL;
        kp_consumer_group_member_metadata_value_classic_member_metadata cm;
        kp_consumer_group_member_metadata_value_classic_protocol *ps = NULL;
        if (m->protocols) {
            /* A classic member of the group (online migration): what its
             * JoinGroup said, so a restart or a downgrade still has it. */
            ps = calloc((size_t)m->nprotocols + 1, sizeof(*ps));
            if (!ps) {
                rc = KP_E_NOMEM;
            } else {
                kp_consumer_group_member_metadata_value_classic_member_metadata_init(&cm);
                for (int i = 0; i < m->nprotocols; i++) {
                    kp_consumer_group_member_metadata_value_classic_protocol_init(&ps[i]);
                    ps[i].name = srv_s(m->protocols[i].name);
                    ps[i].metadata =
                        (kp_bytes){m->protocols[i].meta ? m->protocols[i].meta : (const uint8_t *)"",
                                   m->protocols[i].len};
                }
                cm.session_timeout_ms = m->classic_session_ms;
                cm.supported_protocols = ps;
                cm.supported_protocols_count = m->nprotocols;
                v.classic_member_metadata = &cm;
            }
        }
        if (rc == 0)
            rc = kp_consumer_group_member_metadata_value_encode(&vw, 0, &v);
        free(ps);
    }
    free(subs);
    return add_record(bb, ts, &kw, &vw, rc);
}

/* The per-topic runs of a set, in memory the caller frees with free(). */
typedef struct tp_runs {
    int n;
    srv_tpgroup *g;
    int32_t *parts;
} tp_runs;

static int runs_of(const srv_tps *s, tp_runs *r)
{
    r->g = malloc(((size_t)s->n + 1) * sizeof(*r->g));
    r->parts = malloc(((size_t)s->n + 1) * sizeof(*r->parts));
    if (!r->g || !r->parts) {
        free(r->g);
        free(r->parts);
        return KP_E_NOMEM;
    }
    r->n = srv_tps_groups(s, r->g, r->parts);
    return 0;
}

static void runs_free(tp_runs *r)
{
    free(r->g);
    free(r->parts);
}

int srv_glog_add_cg_target(kp_batch_builder *bb, int64_t ts, const char *group, const char *id,
                           const srv_tps *t)
{
    kp_writer kw, vw;
    int rc = member_key(&kw, KEY_CG_TARGET_MEMBER, group, id);
    if (!t)
        return add_record(bb, ts, &kw, NULL, rc);
    kp_writer_init(&vw, 64);
    kp_write_i16(&vw, 0);
    tp_runs r = {0};
    kp_consumer_group_target_assignment_member_value_topic_partition *tps = NULL;
    if (rc == 0)
        rc = runs_of(t, &r);
    if (rc == 0 && !(tps = calloc((size_t)r.n + 1, sizeof(*tps))))
        rc = KP_E_NOMEM;
    if (rc == 0) {
        for (int i = 0; i < r.n; i++) {
            tps[i].topic_id = r.g[i].topic;
            tps[i].partitions = (int32_t *)r.g[i].parts;
            tps[i].partitions_count = r.g[i].n;
        }
        kp_consumer_group_target_assignment_member_value v;
        kp_consumer_group_target_assignment_member_value_init(&v);
        v.topic_partitions = tps;
        v.topic_partitions_count = r.n;
        rc = kp_consumer_group_target_assignment_member_value_encode(&vw, 0, &v);
        runs_free(&r);
    }
    free(tps);
    return add_record(bb, ts, &kw, &vw, rc);
}

static int fill_current(const srv_tps *s, tp_runs *r,
                        kp_consumer_group_current_member_assignment_value_topic_partitions **out)
{
    int rc = runs_of(s, r);
    if (rc)
        return rc;
    *out = calloc((size_t)r->n + 1, sizeof(**out));
    if (!*out) {
        runs_free(r);
        return KP_E_NOMEM;
    }
    for (int i = 0; i < r->n; i++) {
        (*out)[i].topic_id = r->g[i].topic;
        (*out)[i].partitions = (int32_t *)r->g[i].parts;
        (*out)[i].partitions_count = r->g[i].n;
    }
    return 0;
}

int srv_glog_add_cg_current(kp_batch_builder *bb, int64_t ts, const char *group, const char *id,
                            const srv_cmember *m)
{
    kp_writer kw, vw;
    int rc = member_key(&kw, KEY_CG_CURRENT_MEMBER, group, id);
    if (!m)
        return add_record(bb, ts, &kw, NULL, rc);
    kp_writer_init(&vw, 64);
    kp_write_i16(&vw, 0);
    tp_runs ra = {0}, rr = {0};
    kp_consumer_group_current_member_assignment_value v;
    kp_consumer_group_current_member_assignment_value_init(&v);
    v.assigned_partitions = v.partitions_pending_revocation = NULL;
    if (rc == 0)
        rc = fill_current(&m->assigned, &ra, &v.assigned_partitions);
    if (rc == 0 && (rc = fill_current(&m->revoking, &rr, &v.partitions_pending_revocation)) != 0)
        runs_free(&ra);
    if (rc == 0) {
        v.member_epoch = m->epoch;
        v.previous_member_epoch = m->prev_epoch;
        v.state = m->state;
        v.assigned_partitions_count = ra.n;
        v.partitions_pending_revocation_count = rr.n;
        rc = kp_consumer_group_current_member_assignment_value_encode(&vw, 0, &v);
        runs_free(&ra);
        runs_free(&rr);
    }
    free(v.assigned_partitions);
    free(v.partitions_pending_revocation);
    return add_record(bb, ts, &kw, &vw, rc);
}

int srv_glog_add_cg_tombstones(kp_batch_builder *bb, int64_t ts, const srv_group *g)
{
    const srv_cgroup *cg = g->cg;
    int rc = 0;
    for (int i = 0; cg && rc == 0 && i < cg->nmembers; i++) {
        const char *id = cg->members[i]->id;
        rc = srv_glog_add_cg_current(bb, ts, g->id, id, NULL);
        if (rc == 0)
            rc = srv_glog_add_cg_target(bb, ts, g->id, id, NULL);
        if (rc == 0)
            rc = srv_glog_add_cg_member(bb, ts, g->id, id, NULL);
    }
    for (int i = 0; cg && rc == 0 && i < cg->nregexes; i++)
        rc = srv_glog_add_cg_regex(bb, ts, g->id, cg->regexes[i].regex, NULL, 0);
    if (rc == 0)
        rc = srv_glog_add_cg_target_epoch(bb, ts, g->id, NULL);
    if (rc == 0)
        rc = srv_glog_add_cg_topics(bb, ts, g->id, NULL);
    if (rc == 0)
        rc = srv_glog_add_cg_epoch(bb, ts, g->id, NULL);
    return rc;
}

int srv_glog_add_cg_regex(kp_batch_builder *bb, int64_t ts, const char *group, const char *regex,
                          const srv_cregex *r, int64_t version)
{
    kp_writer kw, vw;
    kp_writer_init(&kw, 64);
    kp_write_i16(&kw, KEY_CG_REGEX);
    kp_consumer_group_regular_expression_key k;
    kp_consumer_group_regular_expression_key_init(&k);
    k.group_id = srv_s(group);
    k.regular_expression = srv_s(regex);
    int rc = kp_consumer_group_regular_expression_key_encode(&kw, KEY_CG_REGEX, &k);
    if (!r)
        return add_record(bb, ts, &kw, NULL, rc);
    kp_writer_init(&vw, 64);
    kp_write_i16(&vw, 0);
    kp_str *names = calloc((size_t)r->ntopics + 1, sizeof(*names));
    if (!names && rc == 0)
        rc = KP_E_NOMEM;
    if (rc == 0) {
        for (int i = 0; i < r->ntopics; i++)
            names[i] = srv_s(r->topics[i]);
        kp_consumer_group_regular_expression_value v;
        kp_consumer_group_regular_expression_value_init(&v);
        v.topics = names;
        v.topics_count = r->ntopics;
        v.version = version;
        v.timestamp = ts;
        rc = kp_consumer_group_regular_expression_value_encode(&vw, 0, &v);
    }
    free(names);
    return add_record(bb, ts, &kw, &vw, rc);
}

int srv_glog_add_cg_epoch(kp_batch_builder *bb, int64_t ts, const char *group, const int32_t *epoch)
{
    return rec_epoch(bb, ts, group, KEY_CG_EPOCH, epoch);
}

int srv_glog_add_cg_target_epoch(kp_batch_builder *bb, int64_t ts, const char *group, const int32_t *epoch)
{
    return rec_epoch(bb, ts, group, KEY_CG_TARGET_EPOCH, epoch);
}

static void undecodable(int32_t partition, const kp_record *rec, const char *what)
{
    srv_warn("%s-%d: undecodable %s at offset %lld skipped", SRV_OFFSETS_TOPIC, partition, what,
             (long long)rec->offset);
}

/* The value reader of a consumer record: an int16 version 0 then the body.
 * Returns 1 with vr positioned, 0 for a tombstone, -1 when malformed. */
static int consumer_value(const kp_record *rec, kp_reader *vr)
{
    int16_t vver;
    if (rec->value.len < 0)
        return 0;
    kp_reader_init(vr, rec->value.p, (size_t)rec->value.len);
    if (kp_read_i16(vr, &vver) || vver != 0)
        return -1;
    return 1;
}

/* KIP-848 records (key versions 3-8): ConsumerGroupMetadata,
 * PartitionMetadata, MemberMetadata, TargetAssignmentMetadata,
 * TargetAssignmentMember, CurrentMemberAssignment. */
static void replay_consumer(srv_groups *gs, int32_t partition, const kp_record *rec, int16_t kver,
                            kp_reader *r, kp_arena *a)
{
    kp_reader vr;
    int hv;
    if (kver == 3 || kver == 4 || kver == 6) {
        kp_consumer_group_metadata_key k;
        kp_consumer_group_metadata_key_init(&k);
        /* The three group-level keys share one layout: a group id. */
        if (kp_consumer_group_metadata_key_decode(r, a, 3, &k) || k.group_id.len < 0) {
            undecodable(partition, rec, "consumer group key");
            return;
        }
        if ((hv = consumer_value(rec, &vr)) < 0) {
            undecodable(partition, rec, "consumer group value");
            return;
        }
        if (kver == 3) {
            kp_consumer_group_metadata_value v;
            kp_consumer_group_metadata_value_init(&v);
            if (hv && kp_consumer_group_metadata_value_decode(&vr, a, 0, &v)) {
                undecodable(partition, rec, "consumer group metadata");
                return;
            }
            srv_cgroup_load_epoch(gs, partition, k.group_id, hv ? &v.epoch : NULL);
        } else if (kver == 4) {
            kp_consumer_group_partition_metadata_value v;
            kp_consumer_group_partition_metadata_value_init(&v);
            if (hv && kp_consumer_group_partition_metadata_value_decode(&vr, a, 0, &v)) {
                undecodable(partition, rec, "consumer group partition metadata");
                return;
            }
            srv_cgroup_load_topics(gs, partition, k.group_id, hv ? &v : NULL);
        } else {
            kp_consumer_group_target_assignment_metadata_value v;
            kp_consumer_group_target_assignment_metadata_value_init(&v);
            if (hv && kp_consumer_group_target_assignment_metadata_value_decode(&vr, a, 0, &v)) {
                undecodable(partition, rec, "consumer group target assignment metadata");
                return;
            }
            srv_cgroup_load_target_epoch(gs, partition, k.group_id, hv ? &v.assignment_epoch : NULL);
        }
        return;
    }
    kp_consumer_group_member_metadata_key k;
    kp_consumer_group_member_metadata_key_init(&k);
    /* The three member-level keys share one layout: group id, member id. */
    if (kp_consumer_group_member_metadata_key_decode(r, a, 5, &k) || k.group_id.len < 0 ||
        k.member_id.len < 0) {
        undecodable(partition, rec, "consumer group member key");
        return;
    }
    if ((hv = consumer_value(rec, &vr)) < 0) {
        undecodable(partition, rec, "consumer group member value");
        return;
    }
    if (kver == 5) {
        kp_consumer_group_member_metadata_value v;
        kp_consumer_group_member_metadata_value_init(&v);
        if (hv && kp_consumer_group_member_metadata_value_decode(&vr, a, 0, &v)) {
            undecodable(partition, rec, "consumer group member metadata");
            return;
        }
        srv_cgroup_load_member(gs, partition, k.group_id, k.member_id, hv ? &v : NULL);
    } else if (kver == 7) {
        kp_consumer_group_target_assignment_member_value v;
        kp_consumer_group_target_assignment_member_value_init(&v);
        if (hv && kp_consumer_group_target_assignment_member_value_decode(&vr, a, 0, &v)) {
            undecodable(partition, rec, "consumer group target assignment");
            return;
        }
        srv_cgroup_load_target(gs, partition, k.group_id, k.member_id, hv ? &v : NULL);
    } else {
        kp_consumer_group_current_member_assignment_value v;
        kp_consumer_group_current_member_assignment_value_init(&v);
        if (hv && kp_consumer_group_current_member_assignment_value_decode(&vr, a, 0, &v)) {
            undecodable(partition, rec, "consumer group current assignment");
            return;
        }
        srv_cgroup_load_current(gs, partition, k.group_id, k.member_id, hv ? &v : NULL);
    }
}

/* ConsumerGroupRegularExpression (key version 16). */
static void replay_regex(srv_groups *gs, int32_t partition, const kp_record *rec, kp_reader *r, kp_arena *a)
{
    kp_consumer_group_regular_expression_key k;
    kp_consumer_group_regular_expression_key_init(&k);
    if (kp_consumer_group_regular_expression_key_decode(r, a, KEY_CG_REGEX, &k) || k.group_id.len < 0 ||
        k.regular_expression.len < 0) {
        undecodable(partition, rec, "consumer group regular expression key");
        return;
    }
    kp_reader vr;
    int hv = consumer_value(rec, &vr);
    kp_consumer_group_regular_expression_value v;
    kp_consumer_group_regular_expression_value_init(&v);
    if (hv < 0 || (hv && kp_consumer_group_regular_expression_value_decode(&vr, a, 0, &v))) {
        undecodable(partition, rec, "consumer group regular expression");
        return;
    }
    for (int32_t i = 0; hv && i < v.topics_count; i++)
        if (v.topics[i].len < 0) {
            undecodable(partition, rec, "consumer group regular expression");
            return;
        }
    srv_cgroup_load_regex(gs, partition, k.group_id, k.regular_expression, hv ? &v : NULL);
}

static void replay_record(srv_groups *gs, int32_t partition, const kp_record *rec, kp_arena *a, int64_t pid)
{
    kp_reader r;
    int16_t kver;
    if (rec->key.len < 2)
        return;
    kp_reader_init(&r, rec->key.p, (size_t)rec->key.len);
    kp_read_i16(&r, &kver);
    if (kver == 0 || kver == 1) {
        kp_offset_commit_key k;
        kp_offset_commit_key_init(&k);
        if (kp_offset_commit_key_decode(&r, a, kver, &k) || k.group.len < 0 || k.topic.len < 0) {
            srv_warn("%s-%d: undecodable offset commit key at offset %lld skipped", SRV_OFFSETS_TOPIC,
                     partition, (long long)rec->offset);
            return;
        }
        if (rec->value.len < 0) {
            srv_groups_load_offset(gs, partition, k.group, k.topic, k.partition, NULL, pid);
            return;
        }
        kp_reader vr;
        int16_t vver;
        kp_offset_commit_value v;
        kp_offset_commit_value_init(&v);
        kp_reader_init(&vr, rec->value.p, (size_t)rec->value.len);
        if (kp_read_i16(&vr, &vver) || vver < 0 || vver > 4 ||
            kp_offset_commit_value_decode(&vr, a, vver, &v)) {
            srv_warn("%s-%d: undecodable offset commit value at offset %lld skipped", SRV_OFFSETS_TOPIC,
                     partition, (long long)rec->offset);
            return;
        }
        srv_goffset o = {0};
        o.offset = v.offset;
        o.leader_epoch = vver >= 3 ? v.leader_epoch : -1;
        o.metadata = srv_sdup(v.metadata.len < 0 ? kp_str_c("") : v.metadata);
        o.commit_ts = v.commit_timestamp;
        o.expire_ts = vver == 1 ? v.expire_timestamp : -1;
        if (!o.metadata)
            return;
        srv_groups_load_offset(gs, partition, k.group, k.topic, k.partition, &o, pid);
        srv_sfree(o.metadata);
    } else if (kver == 2) {
        kp_group_metadata_key k;
        kp_group_metadata_key_init(&k);
        if (kp_group_metadata_key_decode(&r, a, kver, &k) || k.group.len < 0) {
            srv_warn("%s-%d: undecodable group metadata key at offset %lld skipped", SRV_OFFSETS_TOPIC,
                     partition, (long long)rec->offset);
            return;
        }
        if (rec->value.len < 0) {
            srv_groups_load_group(gs, partition, k.group, NULL);
            return;
        }
        kp_reader vr;
        int16_t vver;
        kp_group_metadata_value v;
        kp_group_metadata_value_init(&v);
        kp_reader_init(&vr, rec->value.p, (size_t)rec->value.len);
        if (kp_read_i16(&vr, &vver) || vver < 0 || vver > 4 ||
            kp_group_metadata_value_decode(&vr, a, vver, &v)) {
            srv_warn("%s-%d: undecodable group metadata value at offset %lld skipped", SRV_OFFSETS_TOPIC,
                     partition, (long long)rec->offset);
            return;
        }
        if (vver < 1)
            for (int32_t i = 0; i < v.members_count; i++)
                v.members[i].rebalance_timeout = v.members[i].session_timeout;
        srv_groups_load_group(gs, partition, k.group, &v);
    } else if (kver >= 3 && kver <= 8) {
        replay_consumer(gs, partition, rec, kver, &r, a);
    } else if (kver == KEY_CG_REGEX) {
        replay_regex(gs, partition, rec, &r, a);
    }
    /* Other versions are share group records and future kinds: not ours. */
}

int srv_glog_replay_batch(srv_groups *gs, int32_t partition, const kp_batch *b)
{
    if (b->h.attributes & KP_ATTR_CONTROL) {
        /* A transaction marker completes that producer's pending offsets. */
        int16_t type;
        int32_t coordinator_epoch;
        if (kp_txn_marker_parse(b, &type, &coordinator_epoch) == 0)
            srv_groups_txn_complete(gs, partition, b->h.producer_id, type == KP_CONTROL_COMMIT);
        return 0;
    }
    /* Offsets in a producer's transactional batch stay pending until its
     * marker, as Kafka's replay keys them by the batch's producer id. */
    int64_t pid = (b->h.attributes & KP_ATTR_TRANSACTIONAL) ? b->h.producer_id : -1;
    if (b->h.attributes & KP_ATTR_CODEC_MASK) {
        /* We never compress this log; a compressed batch is not ours. */
        srv_warn("%s-%d: compressed batch at offset %lld skipped", SRV_OFFSETS_TOPIC, partition,
                 (long long)b->h.base_offset);
        return 0;
    }
    kp_record_iter it;
    kp_record rec;
    kp_arena a;
    kp_arena_init(&a, 0);
    kp_record_iter_init(&it, &b->h, b->records, b->records_size);
    int rc;
    while ((rc = kp_record_iter_next(&it, &rec)) == 1) {
        replay_record(gs, partition, &rec, &a, pid);
        kp_arena_reset(&a);
    }
    kp_arena_reset(&a);
    return rc < 0 ? rc : 0;
}

int16_t srv_glog_write_error(int16_t e)
{
    switch (e) {
    case KP_ERR_NONE:
        return KP_ERR_NONE;
    case KP_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KP_ERR_NOT_ENOUGH_REPLICAS:
    case KP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case KP_ERR_REQUEST_TIMED_OUT:
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    case KP_ERR_NOT_LEADER_OR_FOLLOWER:
    case KP_ERR_KAFKA_STORAGE_ERROR:
        return KP_ERR_NOT_COORDINATOR;
    case KP_ERR_MESSAGE_TOO_LARGE:
    case KP_ERR_RECORD_LIST_TOO_LARGE:
    case KP_ERR_INVALID_FETCH_SIZE:
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    default:
        return e;
    }
}

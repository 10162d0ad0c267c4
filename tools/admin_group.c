/*
 * admin_group.c — kbroker-admin's `group` subcommands: list, describe (with
 * lag), reset-offsets and delete, in the manner of kafka-consumer-groups.sh.
 *
 * Owns: reading a group's state, members, committed offsets and the log-end
 * offsets they are compared with; computing reset targets; the group tables
 * and JSON.
 *
 * Must not: change a group's offsets without --execute (dry run is the
 * default, as in Kafka's tool); reset the offsets of a group that has active
 * members (the new offsets would be overwritten by the members' next commit,
 * and Kafka's tool refuses too); join the group it inspects.
 */
#include "admin_util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One (topic, partition) row of a group. */
typedef struct {
    char *topic;
    int32_t partition;
    int64_t committed; /* -1 = none */
    int64_t lo, hi;    /* -1 = unknown */
    int64_t target;    /* reset-offsets: new offset */
    const rd_kafka_MemberDescription_t *member;
} grow;

typedef struct {
    grow *v;
    size_t n, cap;
} growset;

static grow *rows_get(growset *s, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].partition == partition && strcmp(s->v[i].topic, topic) == 0)
            return &s->v[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = realloc(s->v, s->cap * sizeof(grow));
    }
    grow *r = &s->v[s->n++];
    memset(r, 0, sizeof(*r));
    r->topic = strdup(topic);
    r->partition = partition;
    r->committed = r->lo = r->hi = r->target = -1;
    return r;
}

static void rows_free(growset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].topic);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int row_cmp(const void *a, const void *b)
{
    const grow *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static void rows_watermarks(rd_kafka_t *rk, growset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            rk, s->v[i].topic, s->v[i].partition, &s->v[i].lo, &s->v[i].hi, g_opts.timeout_ms);
        if (err) {
            s->v[i].lo = s->v[i].hi = -1;
            adm_note("%s[%d]: log-end offset unavailable: %s", s->v[i].topic, s->v[i].partition,
                     rd_kafka_err2str(err));
        }
    }
}

/* Committed offsets of `group` merged into `s` (all partitions it has). */
static int fetch_committed(rd_kafka_t *rk, const char *group, growset *s)
{
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, o, q);
    int rc;
    rd_kafka_event_t *ev = adm_wait_result(q, "OffsetFetch", &rc);
    if (ev) {
        size_t n;
        const rd_kafka_group_result_t **gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        const rd_kafka_error_t *ge = n ? rd_kafka_group_result_error(gr[0]) : NULL;
        if (ge) {
            rc = adm_err(EX_FAIL, "group %s: committed offsets: %s", group, rd_kafka_error_string(ge));
        } else if (n) {
            const rd_kafka_topic_partition_list_t *p = rd_kafka_group_result_partitions(gr[0]);
            for (int i = 0; p && i < p->cnt; i++)
                if (p->elems[i].offset >= 0)
                    rows_get(s, p->elems[i].topic, p->elems[i].partition)->committed = p->elems[i].offset;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    return rc;
}

/* DescribeConsumerGroups; the caller destroys *ev after reading *out. */
static int describe_groups(rd_kafka_t *rk, const char **groups, size_t n, rd_kafka_event_t **ev,
                           const rd_kafka_ConsumerGroupDescription_t ***out, size_t *nout)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_DescribeConsumerGroups(rk, groups, n, o, q);
    int rc;
    *ev = adm_wait_result(q, "DescribeGroups", &rc);
    if (*ev)
        *out = rd_kafka_DescribeConsumerGroups_result_groups(
            rd_kafka_event_DescribeConsumerGroups_result(*ev), nout);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    return rc;
}

static const char *state_name(rd_kafka_consumer_group_state_t st)
{
    return rd_kafka_consumer_group_state_name(st);
}

/* ---- list ------------------------------------------------------------------------- */

/* Group names (strdup'ed) and states; returns EX_OK or an exit code. */
static int list_groups(rd_kafka_t *rk, char ***names, rd_kafka_consumer_group_state_t **states, int **simple,
                       size_t *n)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_ListConsumerGroups(rk, o, q);
    int rc;
    rd_kafka_event_t *ev = adm_wait_result(q, "ListGroups", &rc);
    *n = 0;
    if (ev) {
        const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
        size_t nv, ne;
        const rd_kafka_ConsumerGroupListing_t **v = rd_kafka_ListConsumerGroups_result_valid(res, &nv);
        const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &ne);
        for (size_t i = 0; i < ne; i++) {
            adm_err(EX_FAIL, "ListGroups: %s", rd_kafka_error_string(errs[i]));
            rc = EX_FAIL;
        }
        *names = calloc(nv + 1, sizeof(char *));
        *states = calloc(nv + 1, sizeof(**states));
        *simple = calloc(nv + 1, sizeof(int));
        for (size_t i = 0; i < nv; i++) {
            (*names)[i] = strdup(rd_kafka_ConsumerGroupListing_group_id(v[i]));
            (*states)[i] = rd_kafka_ConsumerGroupListing_state(v[i]);
            (*simple)[i] = rd_kafka_ConsumerGroupListing_is_simple_consumer_group(v[i]);
        }
        *n = nv;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static int group_list(rd_kafka_t *rk, int argc, char **argv)
{
    if (argc > 0)
        return adm_err(EX_USAGE, "group list: unexpected argument '%s'", argv[0]);
    char **names = NULL;
    rd_kafka_consumer_group_state_t *states = NULL;
    int *simple = NULL;
    size_t n;
    int rc = list_groups(rk, &names, &states, &simple, &n);
    if (rc && n == 0) {
        free_names(names, n);
        free(states);
        free(simple);
        return rc;
    }
    static const char *const hdr[] = {"GROUP", "STATE", "TYPE"};
    tbl t;
    tbl_init(&t, 3, hdr);
    if (g_opts.json)
        jw_arr();
    for (size_t i = 0; i < n; i++) {
        if (g_opts.json) {
            jw_obj();
            jw_key("group");
            jw_str(names[i]);
            jw_key("state");
            jw_str(state_name(states[i]));
            jw_key("simple");
            jw_bool(simple[i]);
            jw_obj_end();
        } else {
            tbl_cell(&t, "%s", names[i]);
            tbl_cell(&t, "%s", state_name(states[i]));
            tbl_cell(&t, "%s", simple[i] ? "simple" : "consumer");
        }
    }
    if (g_opts.json)
        jw_arr_end(), jw_done();
    else
        tbl_print(&t);
    free_names(names, n);
    free(states);
    free(simple);
    return rc;
}

/* ---- describe ------------------------------------------------------------------------ */

/* A group the coordinator has no trace of: Kafka answers DescribeGroups for
 * an unknown id with state Dead and no members rather than an error. */
static bool group_missing(const rd_kafka_ConsumerGroupDescription_t *d, const growset *rows)
{
    rd_kafka_consumer_group_state_t st = rd_kafka_ConsumerGroupDescription_state(d);
    return (st == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD || st == RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN) &&
           rd_kafka_ConsumerGroupDescription_member_count(d) == 0 && rows->n == 0;
}

static void describe_one_json(const rd_kafka_ConsumerGroupDescription_t *d, growset *rows)
{
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d);
    size_t nm = rd_kafka_ConsumerGroupDescription_member_count(d);
    jw_obj();
    jw_key("group");
    jw_str(rd_kafka_ConsumerGroupDescription_group_id(d));
    jw_key("state");
    jw_str(state_name(rd_kafka_ConsumerGroupDescription_state(d)));
    jw_key("simple");
    jw_bool(rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(d));
    jw_key("assignor");
    jw_str(rd_kafka_ConsumerGroupDescription_partition_assignor(d));
    jw_key("coordinator");
    if (coord) {
        jw_obj();
        jw_key("id");
        jw_int(rd_kafka_Node_id(coord));
        jw_key("host");
        jw_str(rd_kafka_Node_host(coord));
        jw_key("port");
        jw_int(rd_kafka_Node_port(coord));
        jw_obj_end();
    } else {
        jw_null();
    }
    jw_key("members");
    jw_arr();
    for (size_t m = 0; m < nm; m++) {
        const rd_kafka_MemberDescription_t *md = rd_kafka_ConsumerGroupDescription_member(d, m);
        jw_obj();
        jw_key("consumer_id");
        jw_str(rd_kafka_MemberDescription_consumer_id(md));
        jw_key("client_id");
        jw_str(rd_kafka_MemberDescription_client_id(md));
        jw_key("host");
        jw_str(rd_kafka_MemberDescription_host(md));
        jw_key("group_instance_id");
        jw_str(rd_kafka_MemberDescription_group_instance_id(md));
        jw_key("assignment");
        jw_arr();
        const rd_kafka_topic_partition_list_t *a =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(md));
        for (int i = 0; a && i < a->cnt; i++) {
            jw_obj();
            jw_key("topic");
            jw_str(a->elems[i].topic);
            jw_key("partition");
            jw_int(a->elems[i].partition);
            jw_obj_end();
        }
        jw_arr_end();
        jw_obj_end();
    }
    jw_arr_end();
    int64_t total = 0;
    jw_key("offsets");
    jw_arr();
    for (size_t i = 0; i < rows->n; i++) {
        grow *r = &rows->v[i];
        bool has_lag = r->committed >= 0 && r->hi >= 0;
        int64_t lag = has_lag ? (r->hi > r->committed ? r->hi - r->committed : 0) : 0;
        total += lag;
        jw_obj();
        jw_key("topic");
        jw_str(r->topic);
        jw_key("partition");
        jw_int(r->partition);
        jw_key("committed_offset");
        r->committed >= 0 ? jw_int(r->committed) : jw_null();
        jw_key("log_start_offset");
        r->lo >= 0 ? jw_int(r->lo) : jw_null();
        jw_key("log_end_offset");
        r->hi >= 0 ? jw_int(r->hi) : jw_null();
        jw_key("lag");
        has_lag ? jw_int(lag) : jw_null();
        jw_key("consumer_id");
        jw_str(r->member ? rd_kafka_MemberDescription_consumer_id(r->member) : NULL);
        jw_key("client_id");
        jw_str(r->member ? rd_kafka_MemberDescription_client_id(r->member) : NULL);
        jw_key("host");
        jw_str(r->member ? rd_kafka_MemberDescription_host(r->member) : NULL);
        jw_obj_end();
    }
    jw_arr_end();
    jw_key("total_lag");
    jw_int(total);
    jw_obj_end();
}

/* Empty cells would shift the eye to the next column: show "-". */
static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static void describe_one_text(const rd_kafka_ConsumerGroupDescription_t *d, growset *rows)
{
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d);
    const char *gid = rd_kafka_ConsumerGroupDescription_group_id(d);
    const char *assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    printf("Group %s: state %s, %zu members, assignor %s, coordinator %d (%s:%d)\n", gid,
           state_name(rd_kafka_ConsumerGroupDescription_state(d)),
           rd_kafka_ConsumerGroupDescription_member_count(d), assignor && *assignor ? assignor : "-",
           coord ? rd_kafka_Node_id(coord) : -1, coord ? rd_kafka_Node_host(coord) : "?",
           coord ? rd_kafka_Node_port(coord) : 0);
    static const char *const hdr[] = {"GROUP", "TOPIC",       "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET",
                                      "LAG",   "CONSUMER-ID", "HOST",      "CLIENT-ID"};
    tbl t;
    tbl_init(&t, 9, hdr);
    for (size_t i = 0; i < rows->n; i++) {
        grow *r = &rows->v[i];
        tbl_cell(&t, "%s", gid);
        tbl_cell(&t, "%s", r->topic);
        tbl_cell(&t, "%d", r->partition);
        if (r->committed >= 0)
            tbl_cell(&t, "%" PRId64, r->committed);
        else
            tbl_cell(&t, "-");
        if (r->hi >= 0)
            tbl_cell(&t, "%" PRId64, r->hi);
        else
            tbl_cell(&t, "-");
        if (r->committed >= 0 && r->hi >= 0)
            tbl_cell(&t, "%" PRId64, r->hi > r->committed ? r->hi - r->committed : 0);
        else
            tbl_cell(&t, "-");
        tbl_cell(&t, "%s", or_dash(r->member ? rd_kafka_MemberDescription_consumer_id(r->member) : NULL));
        tbl_cell(&t, "%s", or_dash(r->member ? rd_kafka_MemberDescription_host(r->member) : NULL));
        tbl_cell(&t, "%s", or_dash(r->member ? rd_kafka_MemberDescription_client_id(r->member) : NULL));
    }
    tbl_print(&t);
}

static int group_describe(rd_kafka_t *rk, int argc, char **argv)
{
    bool all = false;
    const char **groups = calloc((size_t)argc + 1, sizeof(char *));
    size_t ng = 0;
    char **listed = NULL;
    size_t nlisted = 0;
    int rc = EX_OK;
    for (int i = 0; i < argc; i++) {
        if (adm_flag(argv, i, "--all") || adm_flag(argv, i, "--all-groups"))
            all = true;
        else if (argv[i][0] == '-') {
            free(groups);
            return adm_err(EX_USAGE, "group describe: unknown option '%s'", argv[i]);
        } else
            groups[ng++] = argv[i];
    }
    if (all) {
        rd_kafka_consumer_group_state_t *st = NULL;
        int *simple = NULL;
        rc = list_groups(rk, &listed, &st, &simple, &nlisted);
        free(st);
        free(simple);
        if (rc) {
            free_names(listed, nlisted);
            free(groups);
            return rc;
        }
        groups = realloc(groups, (nlisted + 1) * sizeof(char *));
        for (size_t i = 0; i < nlisted; i++)
            groups[i] = listed[i];
        ng = nlisted;
    } else if (ng == 0) {
        free(groups);
        return adm_err(EX_USAGE, "group describe: give GROUP... or --all");
    }
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_ConsumerGroupDescription_t **desc = NULL;
    size_t nd = 0;
    if (ng > 0 && (rc = describe_groups(rk, groups, ng, &ev, &desc, &nd)) != EX_OK)
        goto out;
    if (g_opts.json)
        jw_arr();
    for (size_t g = 0; g < nd; g++) {
        const rd_kafka_ConsumerGroupDescription_t *d = desc[g];
        const char *gid = rd_kafka_ConsumerGroupDescription_group_id(d);
        const rd_kafka_error_t *ge = rd_kafka_ConsumerGroupDescription_error(d);
        if (ge) {
            rc = adm_err(EX_FAIL, "group %s: %s", gid, rd_kafka_error_string(ge));
            continue;
        }
        growset rows = {0};
        int frc = fetch_committed(rk, gid, &rows);
        if (frc) {
            rc = frc;
            rows_free(&rows);
            continue;
        }
        size_t nm = rd_kafka_ConsumerGroupDescription_member_count(d);
        for (size_t m = 0; m < nm; m++) {
            const rd_kafka_MemberDescription_t *md = rd_kafka_ConsumerGroupDescription_member(d, m);
            const rd_kafka_topic_partition_list_t *a =
                rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(md));
            for (int i = 0; a && i < a->cnt; i++)
                rows_get(&rows, a->elems[i].topic, a->elems[i].partition)->member = md;
        }
        if (group_missing(d, &rows)) {
            rc = adm_err(EX_FAIL, "consumer group '%s' does not exist", gid);
            rows_free(&rows);
            continue;
        }
        rows_watermarks(rk, &rows);
        qsort(rows.v, rows.n, sizeof(grow), row_cmp);
        if (g_opts.json) {
            describe_one_json(d, &rows);
        } else {
            describe_one_text(d, &rows);
            if (g + 1 < nd)
                putchar('\n');
        }
        rows_free(&rows);
    }
    if (g_opts.json)
        jw_arr_end(), jw_done();
    if (ev)
        rd_kafka_event_destroy(ev);
out:
    free_names(listed, nlisted);
    free(groups);
    return rc;
}

/* ---- reset-offsets --------------------------------------------------------------------- */

enum reset_kind { R_NONE, R_EARLIEST, R_LATEST, R_OFFSET, R_DATETIME, R_SHIFT };

/* "YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm|+hhmm]" -> ms since the epoch. Without
 * a zone the local time zone applies, as in kafka-consumer-groups.sh. */
static int parse_datetime(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int n = 0, frac = 0, fdigits = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &n) != 6)
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
        return -1;
    const char *p = s + n;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (fdigits < 3)
                frac = frac * 10 + (*p - '0'), fdigits++;
            p++;
        }
        while (fdigits < 3)
            frac *= 10, fdigits++;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t;
    if (*p == 0) {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    } else if (*p == 'Z' && p[1] == 0) {
        t = timegm(&tm);
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 && sscanf(p + 1, "%2d%2d", &hh, &mm) != 2)
            return -1;
        int off = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
        t = timegm(&tm) - off;
    } else {
        return -1;
    }
    if (t == (time_t)-1)
        return -1;
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}

/* Adds the partitions named by one --topic value ("T" or "T:0,2"). */
static int add_topic_spec(const struct rd_kafka_metadata *md, const char *spec, growset *want)
{
    char topic[512];
    const char *colon = strchr(spec, ':');
    snprintf(topic, sizeof(topic), "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
    const rd_kafka_metadata_topic_t *tp = adm_find_topic(md, topic);
    if (!tp || tp->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return adm_err(EX_FAIL, "topic '%s' does not exist", topic);
    if (!colon) {
        for (int p = 0; p < tp->partition_cnt; p++)
            rows_get(want, topic, tp->partitions[p].id);
        return EX_OK;
    }
    char *list = strdup(colon + 1), *save = NULL;
    int rc = EX_OK;
    for (char *tok = strtok_r(list, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        int64_t p;
        if ((rc = adm_parse_i64("--topic partition", tok, 0, INT32_MAX, &p)) != EX_OK)
            break;
        bool found = false;
        for (int i = 0; i < tp->partition_cnt; i++)
            found |= tp->partitions[i].id == p;
        if (!found)
            rc = adm_err(EX_FAIL, "topic %s has no partition %" PRId64, topic, p);
        else
            rows_get(want, topic, (int32_t)p);
    }
    free(list);
    return rc;
}

static int group_reset_offsets(rd_kafka_t *rk, int argc, char **argv)
{
    const char *group = NULL, *v;
    const char *topics[64];
    int ntopics = 0, m;
    bool all_topics = false, execute = false, dry_run = false;
    enum reset_kind kind = R_NONE;
    int64_t arg = 0;
    int rc;
    for (int i = 0; i < argc; i++) {
        enum reset_kind k = R_NONE;
        if ((m = adm_take_opt(argc, argv, &i, "--topic", &v)) != 0) {
            if (m < 0 || ntopics == 64)
                return EX_USAGE;
            topics[ntopics++] = v;
        } else if (adm_flag(argv, i, "--all-topics")) {
            all_topics = true;
        } else if (adm_flag(argv, i, "--execute")) {
            execute = true;
        } else if (adm_flag(argv, i, "--dry-run")) {
            dry_run = true;
        } else if (adm_flag(argv, i, "--to-earliest")) {
            k = R_EARLIEST;
        } else if (adm_flag(argv, i, "--to-latest")) {
            k = R_LATEST;
        } else if ((m = adm_take_opt(argc, argv, &i, "--to-offset", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--to-offset", v, 0, INT64_MAX, &arg))
                return EX_USAGE;
            k = R_OFFSET;
        } else if ((m = adm_take_opt(argc, argv, &i, "--shift-by", &v)) != 0) {
            if (m < 0 || adm_parse_i64("--shift-by", v, INT64_MIN / 2, INT64_MAX / 2, &arg))
                return EX_USAGE;
            k = R_SHIFT;
        } else if ((m = adm_take_opt(argc, argv, &i, "--to-datetime", &v)) != 0) {
            if (m < 0)
                return EX_USAGE;
            if (parse_datetime(v, &arg) != 0)
                return adm_err(EX_USAGE, "--to-datetime: '%s' is not YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm]", v);
            k = R_DATETIME;
        } else if (argv[i][0] == '-' || group) {
            return adm_err(EX_USAGE, "group reset-offsets: unexpected argument '%s'", argv[i]);
        } else {
            group = argv[i];
        }
        if (k != R_NONE) {
            if (kind != R_NONE)
                return adm_err(EX_USAGE, "group reset-offsets: give exactly one --to-*/--shift-by option");
            kind = k;
        }
    }
    if (!group)
        return adm_err(EX_USAGE, "group reset-offsets: missing GROUP");
    if (kind == R_NONE)
        return adm_err(EX_USAGE,
                       "group reset-offsets: give one of --to-earliest, --to-latest, --to-offset N, "
                       "--to-datetime T, --shift-by N");
    if ((ntopics > 0) == all_topics)
        return adm_err(EX_USAGE, "group reset-offsets: give --topic T[:P,...] (repeatable) or --all-topics");
    if (execute && dry_run)
        return adm_err(EX_USAGE, "group reset-offsets: --dry-run and --execute exclude each other");

    /* The group must be inactive: members would overwrite the new offsets. */
    rd_kafka_event_t *dev;
    const rd_kafka_ConsumerGroupDescription_t **desc = NULL;
    size_t nd;
    if ((rc = describe_groups(rk, &group, 1, &dev, &desc, &nd)) != EX_OK)
        return rc;
    rd_kafka_consumer_group_state_t st =
        nd ? rd_kafka_ConsumerGroupDescription_state(desc[0]) : RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN;
    const rd_kafka_error_t *ge = nd ? rd_kafka_ConsumerGroupDescription_error(desc[0]) : NULL;
    if (ge)
        rc = adm_err(EX_FAIL, "group %s: %s", group, rd_kafka_error_string(ge));
    else if (st != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY && st != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD)
        rc =
            adm_err(EX_FAIL,
                    "offsets of group '%s' can only be reset while it is inactive, but its state is %s: stop "
                    "its consumers first",
                    group, state_name(st));
    rd_kafka_event_destroy(dev);
    if (rc)
        return rc;

    growset committed = {0}, want = {0};
    if ((rc = fetch_committed(rk, group, &committed)) != EX_OK)
        goto out;
    if (all_topics) {
        for (size_t i = 0; i < committed.n; i++)
            rows_get(&want, committed.v[i].topic, committed.v[i].partition);
        if (want.n == 0) {
            rc = adm_err(EX_FAIL, "group '%s' has no committed offsets: name the topics with --topic", group);
            goto out;
        }
    } else {
        const struct rd_kafka_metadata *md;
        if ((rc = adm_metadata(rk, &md)) != EX_OK)
            goto out;
        for (int i = 0; i < ntopics && !rc; i++)
            rc = add_topic_spec(md, topics[i], &want);
        rd_kafka_metadata_destroy(md);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < want.n; i++)
        want.v[i].committed = rows_get(&committed, want.v[i].topic, want.v[i].partition)->committed;
    rows_watermarks(rk, &want);
    qsort(want.v, want.n, sizeof(grow), row_cmp);

    if (kind == R_DATETIME) {
        rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new((int)want.n);
        for (size_t i = 0; i < want.n; i++)
            rd_kafka_topic_partition_list_add(tpl, want.v[i].topic, want.v[i].partition)->offset = arg;
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, tpl, g_opts.timeout_ms);
        if (err) {
            rd_kafka_topic_partition_list_destroy(tpl);
            rc = adm_err(adm_code_for(err), "offsets for time: %s", rd_kafka_err2str(err));
            goto out;
        }
        for (int i = 0; i < tpl->cnt; i++) {
            grow *r = rows_get(&want, tpl->elems[i].topic, tpl->elems[i].partition);
            /* No record at or after the time: the log end, as Kafka's tool does. */
            r->target = tpl->elems[i].err || tpl->elems[i].offset < 0 ? r->hi : tpl->elems[i].offset;
        }
        rd_kafka_topic_partition_list_destroy(tpl);
    }
    for (size_t i = 0; i < want.n; i++) {
        grow *r = &want.v[i];
        if (r->lo < 0 || r->hi < 0) {
            rc = adm_err(EX_FAIL, "%s[%d]: log offsets unknown, cannot compute a target", r->topic,
                         r->partition);
            goto out;
        }
        switch (kind) {
        case R_EARLIEST:
            r->target = r->lo;
            break;
        case R_LATEST:
            r->target = r->hi;
            break;
        case R_OFFSET:
            r->target = arg;
            break;
        case R_SHIFT:
            if (r->committed < 0) {
                rc = adm_err(EX_FAIL, "%s[%d]: group %s has no committed offset to shift", r->topic,
                             r->partition, group);
                goto out;
            }
            r->target = r->committed + arg;
            break;
        default:
            break;
        }
        /* Out-of-range targets are clamped into the log, as Kafka's tool does. */
        if (r->target < r->lo)
            r->target = r->lo;
        if (r->target > r->hi)
            r->target = r->hi;
    }

    if (execute) {
        rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new((int)want.n);
        for (size_t i = 0; i < want.n; i++)
            rd_kafka_topic_partition_list_add(tpl, want.v[i].topic, want.v[i].partition)->offset =
                want.v[i].target;
        rd_kafka_AlterConsumerGroupOffsets_t *req = rd_kafka_AlterConsumerGroupOffsets_new(group, tpl);
        rd_kafka_topic_partition_list_destroy(tpl);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
        rd_kafka_AlterConsumerGroupOffsets(rk, &req, 1, o, q);
        rd_kafka_event_t *ev = adm_wait_result(q, "OffsetCommit", &rc);
        if (ev) {
            size_t n;
            const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
            const rd_kafka_error_t *e = n ? rd_kafka_group_result_error(gr[0]) : NULL;
            if (e)
                rc = adm_err(EX_FAIL, "group %s: offset commit: %s", group, rd_kafka_error_string(e));
            const rd_kafka_topic_partition_list_t *p = n ? rd_kafka_group_result_partitions(gr[0]) : NULL;
            for (int i = 0; p && i < p->cnt; i++)
                if (p->elems[i].err)
                    rc = adm_err(EX_FAIL, "%s[%d]: offset commit: %s", p->elems[i].topic,
                                 p->elems[i].partition, rd_kafka_err2str(p->elems[i].err));
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_queue_destroy(q);
        rd_kafka_AlterConsumerGroupOffsets_destroy(req);
        if (rc)
            goto out;
    }

    if (g_opts.json) {
        jw_obj();
        jw_key("group");
        jw_str(group);
        jw_key("executed");
        jw_bool(execute);
        jw_key("offsets");
        jw_arr();
        for (size_t i = 0; i < want.n; i++) {
            jw_obj();
            jw_key("topic");
            jw_str(want.v[i].topic);
            jw_key("partition");
            jw_int(want.v[i].partition);
            jw_key("previous_offset");
            want.v[i].committed >= 0 ? jw_int(want.v[i].committed) : jw_null();
            jw_key("new_offset");
            jw_int(want.v[i].target);
            jw_obj_end();
        }
        jw_arr_end();
        jw_obj_end();
        jw_done();
    } else {
        static const char *const hdr[] = {"GROUP", "TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"};
        tbl t;
        tbl_init(&t, 5, hdr);
        for (size_t i = 0; i < want.n; i++) {
            tbl_cell(&t, "%s", group);
            tbl_cell(&t, "%s", want.v[i].topic);
            tbl_cell(&t, "%d", want.v[i].partition);
            if (want.v[i].committed >= 0)
                tbl_cell(&t, "%" PRId64, want.v[i].committed);
            else
                tbl_cell(&t, "-");
            tbl_cell(&t, "%" PRId64, want.v[i].target);
        }
        tbl_print(&t);
    }
    if (!execute)
        adm_note("dry run: offsets not changed (add --execute to apply)");
out:
    rows_free(&committed);
    rows_free(&want);
    return rc;
}

/* ---- delete ---------------------------------------------------------------------------- */

static int group_delete(rd_kafka_t *rk, int argc, char **argv)
{
    if (argc == 0)
        return adm_err(EX_USAGE, "group delete: missing GROUP");
    rd_kafka_DeleteGroup_t **dg = calloc((size_t)argc, sizeof(*dg));
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-') {
            rd_kafka_DeleteGroup_destroy_array(dg, (size_t)i);
            free(dg);
            return adm_err(EX_USAGE, "group delete: unknown option '%s'", argv[i]);
        }
        dg[i] = rd_kafka_DeleteGroup_new(argv[i]);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = adm_admin_options(rk);
    rd_kafka_DeleteGroups(rk, dg, (size_t)argc, o, q);
    int rc;
    rd_kafka_event_t *ev = adm_wait_result(q, "DeleteGroups", &rc);
    if (ev) {
        size_t n;
        const rd_kafka_group_result_t **gr =
            rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
        if (g_opts.json)
            jw_arr();
        for (size_t i = 0; i < n; i++) {
            const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[i]);
            const char *name = rd_kafka_group_result_name(gr[i]);
            if (e)
                rc = EX_FAIL;
            if (g_opts.json) {
                jw_obj();
                jw_key("group");
                jw_str(name);
                jw_key("ok");
                jw_bool(!e);
                jw_key("error");
                e ? jw_str(rd_kafka_error_name(e)) : jw_null();
                jw_key("message");
                e ? jw_str(rd_kafka_error_string(e)) : jw_null();
                jw_obj_end();
            } else if (e) {
                adm_err(EX_FAIL, "group %s: %s: %s", name, rd_kafka_error_name(e), rd_kafka_error_string(e));
            } else {
                printf("deleted group %s\n", name);
            }
        }
        if (g_opts.json)
            jw_arr_end(), jw_done();
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteGroup_destroy_array(dg, (size_t)argc);
    free(dg);
    return rc;
}

int cmd_group(int argc, char **argv)
{
    static const adm_sub subs[] = {{"list", group_list},
                                   {"describe", group_describe},
                                   {"reset-offsets", group_reset_offsets},
                                   {"delete", group_delete}};
    return adm_dispatch("group", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}

/*
 * admin_share.c — kbroker-admin's `share-group` subcommands: list share groups
 * and describe one (start offset and lag per partition, or its members and
 * their assignment), in the manner of Kafka's kafka-share-groups.sh.
 *
 * librdkafka 2.0.2, which the rest of kbroker-admin uses, has no share-group
 * admin API, so these speak the protocol themselves over a plain socket with
 * kafka-proto's codecs: ListGroups v5 (types filter "share"), FindCoordinator
 * v4, ShareGroupDescribe v1 and DescribeShareGroupOffsets v1 (whose Lag is the
 * broker's).
 *
 * Owns: those requests and the share-group tables and JSON. Must not: change
 * anything on the broker, or try a secured listener (no TLS or SASL here: it
 * refuses instead).
 */
#include "admin_util.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "errors.h"
#include "frame.h"
#include "kp_messages.h"

typedef struct {
    int fd;
    int32_t corr;
    kp_arena arena; /* decoded answers point into it and into frames */
    uint8_t **frames;
    size_t nframes;
} sconn;

static void sconn_close(sconn *c);

/* On failure c is left closed (nothing to free), so a caller that drops
 * a connection it could not open leaks nothing. */
static int sconn_open(sconn *c, const char *host, const char *port)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    kp_arena_init(&c->arena, 4096);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        sconn_close(c);
        return adm_err(EX_UNREACHABLE, "%s:%s: %s", host, port, gai_strerror(rc));
    }
    struct timeval tv = {g_opts.timeout_ms / 1000, (g_opts.timeout_ms % 1000) * 1000};
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            c->fd = fd;
        else
            close(fd);
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        int e = errno;
        sconn_close(c);
        return adm_err(EX_UNREACHABLE, "%s:%s: cannot connect: %s", host, port, strerror(e));
    }
    return EX_OK;
}

static void sconn_close(sconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    for (size_t i = 0; i < c->nframes; i++)
        free(c->frames[i]);
    free(c->frames);
    c->frames = NULL;
    c->nframes = 0;
    kp_arena_reset(&c->arena);
    c->fd = -1;
}

static int io_all(int fd, uint8_t *p, size_t n, int writing)
{
    while (n) {
        ssize_t k = writing ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One request and its decoded answer (into out, valid until sconn_close). */
static int sconn_call(sconn *c, int16_t key, int16_t version, const void *body, void *out, const char *what)
{
    kp_writer w;
    kp_writer_init(&w, 256);
    int32_t corr = ++c->corr;
    if (kp_request_encode(&w, key, version, corr, kp_str_c("kbroker-admin"), body) ||
        io_all(c->fd, w.buf, w.len, 1)) {
        kp_writer_free(&w);
        return adm_err(EX_UNREACHABLE, "%s: cannot send the request", what);
    }
    kp_writer_free(&w);
    uint8_t hdr[4];
    if (io_all(c->fd, hdr, 4, 0))
        return adm_err(EX_UNREACHABLE, "%s: no answer within --timeout (or the connection closed)", what);
    uint32_t len = kp_be32(hdr);
    if (len > (64u << 20))
        return adm_err(EX_FAIL, "%s: answer of %u bytes refused", what, len);
    uint8_t *frame = malloc(len ? len : 1);
    uint8_t **fr = frame ? realloc(c->frames, (c->nframes + 1) * sizeof(*fr)) : NULL;
    if (!fr) {
        free(frame);
        return adm_err(EX_FAIL, "out of memory");
    }
    c->frames = fr;
    c->frames[c->nframes++] = frame;
    if (io_all(c->fd, frame, len, 0))
        return adm_err(EX_UNREACHABLE, "%s: answer cut short", what);
    kp_reader r;
    kp_reader_init(&r, frame, len);
    kp_response_header h;
    const kp_api_desc *api = kp_api_lookup(key);
    if (kp_response_header_decode(&r, &c->arena, (int16_t)kp_response_header_version(key, version), &h) ||
        h.correlation_id != corr || api->response->decode(&r, &c->arena, version, out))
        return adm_err(EX_FAIL, "%s: malformed answer (does the broker serve this API version?)", what);
    return EX_OK;
}

/* A connection to the first bootstrap address. */
static int connect_bootstrap(sconn *c)
{
    /* The callers close c on every path, also when it was never opened. */
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    kp_arena_init(&c->arena, 4096);
    if (adm_secured())
        return adm_err(EX_USAGE,
                       "share-group speaks the protocol itself and supports PLAINTEXT listeners only");
    char host[256], port[16];
    const char *b = g_opts.bootstrap;
    const char *end = strchr(b, ',');
    size_t n = end ? (size_t)(end - b) : strlen(b);
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (b[i] == ':')
            colon = b + i;
    if (!colon || (size_t)(colon - b) >= sizeof(host) || n - (size_t)(colon - b) - 1 >= sizeof(port) ||
        colon == b)
        return adm_err(EX_USAGE, "--bootstrap: '%.*s' is not HOST:PORT", (int)n, b);
    memcpy(host, b, (size_t)(colon - b));
    host[colon - b] = 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [v6]:port */
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = 0;
    }
    memcpy(port, colon + 1, n - (size_t)(colon - b) - 1);
    port[n - (size_t)(colon - b) - 1] = 0;
    return sconn_open(c, host, port);
}

/* A connection to the group's coordinator (FindCoordinator v4 through the bootstrap broker). */
static int connect_coordinator(sconn *c, const char *group)
{
    int rc = connect_bootstrap(c);
    if (rc != EX_OK)
        return rc;
    kp_str key = kp_str_c(group);
    kp_find_coordinator_request rq = {.key_type = 0, .coordinator_keys = &key, .coordinator_keys_count = 1};
    kp_find_coordinator_response rs;
    if ((rc = sconn_call(c, KP_API_FIND_COORDINATOR, 4, &rq, &rs, "FindCoordinator")) != EX_OK)
        return rc;
    if (rs.coordinators_count != 1)
        return adm_err(EX_FAIL, "FindCoordinator: %d coordinators in the answer", (int)rs.coordinators_count);
    const kp_find_coordinator_response_coordinator *co = &rs.coordinators[0];
    if (co->error_code)
        return adm_err(EX_FAIL, "group %s: no coordinator: %s", group, kp_error_name(co->error_code));
    char host[256], port[16];
    if (co->host.len <= 0 || co->host.len >= (int32_t)sizeof(host))
        return adm_err(EX_FAIL, "FindCoordinator: bad host in the answer");
    memcpy(host, co->host.p, (size_t)co->host.len);
    host[co->host.len] = 0;
    snprintf(port, sizeof(port), "%d", (int)co->port);
    sconn next;
    if ((rc = sconn_open(&next, host, port)) != EX_OK)
        return rc;
    sconn_close(c);
    *c = next;
    return EX_OK;
}

static int cmp_listed(const void *x, const void *y)
{
    const kp_list_groups_response_listed_group *a = x, *b = y;
    int32_t n = a->group_id.len < b->group_id.len ? a->group_id.len : b->group_id.len;
    int c = n > 0 ? memcmp(a->group_id.p, b->group_id.p, (size_t)n) : 0;
    return c ? c : (a->group_id.len > b->group_id.len) - (a->group_id.len < b->group_id.len);
}

static int share_list(int argc, char **argv)
{
    bool state = false;
    for (int i = 1; i < argc; i++) {
        if (adm_flag(argv, i, "--state"))
            state = true;
        else
            return adm_err(EX_USAGE, "share-group list: unknown option '%s' (--state)", argv[i]);
    }
    sconn c;
    int rc = connect_bootstrap(&c);
    if (rc != EX_OK) {
        sconn_close(&c);
        return rc;
    }
    kp_str share = kp_str_c("share");
    kp_list_groups_request rq = {.states_filter_count = 0, .types_filter = &share, .types_filter_count = 1};
    kp_list_groups_response rs;
    if ((rc = sconn_call(&c, KP_API_LIST_GROUPS, 5, &rq, &rs, "ListGroups")) == EX_OK && rs.error_code)
        rc = adm_err(EX_FAIL, "ListGroups: %s", kp_error_name(rs.error_code));
    if (rc == EX_OK) {
        int32_t n = rs.groups_count > 0 ? rs.groups_count : 0;
        qsort(rs.groups, (size_t)n, sizeof(*rs.groups), cmp_listed);
        if (g_opts.json) {
            jw_arr();
            for (int32_t i = 0; i < n; i++) {
                jw_obj();
                jw_key("group");
                jw_strn(rs.groups[i].group_id.p, (size_t)rs.groups[i].group_id.len);
                jw_key("state");
                jw_strn(rs.groups[i].group_state.p,
                        (size_t)(rs.groups[i].group_state.len > 0 ? rs.groups[i].group_state.len : 0));
                jw_obj_end();
            }
            jw_arr_end();
            jw_done();
        } else {
            static const char *const hdr[] = {"GROUP", "STATE"};
            tbl t;
            tbl_init(&t, state ? 2 : 1, hdr);
            for (int32_t i = 0; i < n; i++) {
                tbl_cell(&t, "%.*s", (int)rs.groups[i].group_id.len, rs.groups[i].group_id.p);
                if (state)
                    tbl_cell(&t, "%.*s",
                             (int)(rs.groups[i].group_state.len > 0 ? rs.groups[i].group_state.len : 0),
                             rs.groups[i].group_state.p);
            }
            tbl_print(&t);
        }
    }
    sconn_close(&c);
    return rc;
}

/* The partitions of one member's assignment as Kafka's tool prints them: topic:0,1;other:2. */
static char *assignment_text(const kp_share_group_describe_response_assignment *as, int *nparts)
{
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    *nparts = 0;
    if (!s)
        return NULL;
    s[0] = 0;
    for (int32_t t = 0; t < as->topic_partitions_count; t++) {
        const kp_share_group_describe_response_topic_partitions *tp = &as->topic_partitions[t];
        for (int32_t p = 0; p < tp->partitions_count; p++) {
            char piece[300];
            int tl = tp->topic_name.len > 200 ? 200 : (tp->topic_name.len > 0 ? tp->topic_name.len : 0);
            int k = p ? snprintf(piece, sizeof(piece), ",%d", (int)tp->partitions[p])
                      : snprintf(piece, sizeof(piece), "%s%.*s:%d", len ? ";" : "", tl, tp->topic_name.p,
                                 (int)tp->partitions[p]);
            if (len + (size_t)k + 1 > cap) {
                while (len + (size_t)k + 1 > cap)
                    cap *= 2;
                char *n = realloc(s, cap);
                if (!n) {
                    free(s);
                    return NULL;
                }
                s = n;
            }
            memcpy(s + len, piece, (size_t)k + 1);
            len += (size_t)k;
            (*nparts)++;
        }
    }
    return s;
}

static int describe_members(sconn *c, const char *group)
{
    kp_str gid = kp_str_c(group);
    kp_share_group_describe_request rq = {.group_ids = &gid, .group_ids_count = 1};
    kp_share_group_describe_response rs;
    int rc = sconn_call(c, KP_API_SHARE_GROUP_DESCRIBE, 1, &rq, &rs, "ShareGroupDescribe");
    if (rc != EX_OK)
        return rc;
    if (rs.groups_count != 1)
        return adm_err(EX_FAIL, "ShareGroupDescribe: %d groups in the answer", (int)rs.groups_count);
    const kp_share_group_describe_response_described_group *g = &rs.groups[0];
    if (g->error_code)
        return adm_err(EX_FAIL, "share group %s: %s%s%.*s", group, kp_error_name(g->error_code),
                       g->error_message.len > 0 ? ": " : "",
                       (int)(g->error_message.len > 0 ? g->error_message.len : 0), g->error_message.p);
    int32_t n = g->members_count > 0 ? g->members_count : 0;
    /* Every member's assignment text before the first byte is written, so
     * that running out of memory leaves no half-written JSON or table. */
    char **as = calloc((size_t)n + 1, sizeof(*as));
    int *np = calloc((size_t)n + 1, sizeof(*np));
    int oom = !as || !np;
    for (int32_t i = 0; !oom && i < n; i++)
        oom = !(as[i] = assignment_text(&g->members[i].assignment, &np[i]));
    if (oom) {
        for (int32_t i = 0; as && i < n; i++)
            free(as[i]);
        free(as);
        free(np);
        return adm_err(EX_FAIL, "out of memory");
    }
    static const char *const hdr[] = {"GROUP",     "CONSUMER-ID", "HOST",
                                      "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"};
    tbl t;
    if (g_opts.json) {
        jw_obj();
        jw_key("group");
        jw_str(group);
        jw_key("state");
        jw_strn(g->group_state.p, (size_t)(g->group_state.len > 0 ? g->group_state.len : 0));
        jw_key("epoch");
        jw_int(g->group_epoch);
        jw_key("members");
        jw_arr();
    } else {
        tbl_init(&t, 6, hdr);
    }
    for (int32_t i = 0; i < n; i++) {
        const kp_share_group_describe_response_member *m = &g->members[i];
        if (g_opts.json) {
            jw_obj();
            jw_key("member_id");
            jw_strn(m->member_id.p, (size_t)(m->member_id.len > 0 ? m->member_id.len : 0));
            jw_key("host");
            jw_strn(m->client_host.p, (size_t)(m->client_host.len > 0 ? m->client_host.len : 0));
            jw_key("client_id");
            jw_strn(m->client_id.p, (size_t)(m->client_id.len > 0 ? m->client_id.len : 0));
            jw_key("member_epoch");
            jw_int(m->member_epoch);
            jw_key("assignment");
            jw_arr();
            for (int32_t k = 0; k < m->assignment.topic_partitions_count; k++) {
                const kp_share_group_describe_response_topic_partitions *tp =
                    &m->assignment.topic_partitions[k];
                for (int32_t p = 0; p < tp->partitions_count; p++) {
                    jw_obj();
                    jw_key("topic");
                    jw_strn(tp->topic_name.p, (size_t)(tp->topic_name.len > 0 ? tp->topic_name.len : 0));
                    jw_key("partition");
                    jw_int(tp->partitions[p]);
                    jw_obj_end();
                }
            }
            jw_arr_end();
            jw_obj_end();
        } else {
            tbl_cell(&t, "%s", group);
            tbl_cell(&t, "%.*s", (int)(m->member_id.len > 0 ? m->member_id.len : 0), m->member_id.p);
            tbl_cell(&t, "%.*s", (int)(m->client_host.len > 0 ? m->client_host.len : 0), m->client_host.p);
            tbl_cell(&t, "%.*s", (int)(m->client_id.len > 0 ? m->client_id.len : 0), m->client_id.p);
            tbl_cell(&t, "%d", np[i]);
            tbl_cell(&t, "%s", as[i][0] ? as[i] : "-");
        }
        free(as[i]);
    }
    free(as);
    free(np);
    if (g_opts.json) {
        jw_arr_end();
        jw_obj_end();
        jw_done();
    } else {
        if (!n)
            adm_note("share group %s has no active members", group);
        tbl_print(&t);
    }
    return EX_OK;
}

typedef struct {
    kp_str topic;
    const kp_describe_share_group_offsets_response_describe_share_group_offsets_response_partition *p;
} offrow;

static int cmp_offrow(const void *x, const void *y)
{
    const offrow *a = x, *b = y;
    int32_t n = a->topic.len < b->topic.len ? a->topic.len : b->topic.len;
    int c = n > 0 ? memcmp(a->topic.p, b->topic.p, (size_t)n) : 0;
    if (!c)
        c = (a->topic.len > b->topic.len) - (a->topic.len < b->topic.len);
    return c ? c
             : (a->p->partition_index > b->p->partition_index) -
                   (a->p->partition_index < b->p->partition_index);
}

static int describe_offsets(sconn *c, const char *group)
{
    /* DescribeShareGroupOffsets answers an unknown group with no topics, not
     * an error: ask whether it exists first, as Kafka's tool does. */
    kp_str gid = kp_str_c(group);
    kp_share_group_describe_request dq = {.group_ids = &gid, .group_ids_count = 1};
    kp_share_group_describe_response ds;
    int rc = sconn_call(c, KP_API_SHARE_GROUP_DESCRIBE, 1, &dq, &ds, "ShareGroupDescribe");
    if (rc != EX_OK)
        return rc;
    if (ds.groups_count == 1 && ds.groups[0].error_code)
        return adm_err(EX_FAIL, "share group %s: %s", group, kp_error_name(ds.groups[0].error_code));
    kp_describe_share_group_offsets_request_describe_share_group_offsets_request_group rg = {
        .group_id = kp_str_c(group), .topics = NULL, .topics_count = -1};
    kp_describe_share_group_offsets_request rq = {.groups = &rg, .groups_count = 1};
    kp_describe_share_group_offsets_response rs;
    rc = sconn_call(c, KP_API_DESCRIBE_SHARE_GROUP_OFFSETS, 1, &rq, &rs, "DescribeShareGroupOffsets");
    if (rc != EX_OK)
        return rc;
    if (rs.groups_count != 1)
        return adm_err(EX_FAIL, "DescribeShareGroupOffsets: %d groups in the answer", (int)rs.groups_count);
    const kp_describe_share_group_offsets_response_describe_share_group_offsets_response_group *g =
        &rs.groups[0];
    if (g->error_code)
        return adm_err(EX_FAIL, "share group %s: %s", group, kp_error_name(g->error_code));
    size_t n = 0;
    for (int32_t t = 0; t < g->topics_count; t++)
        n += g->topics[t].partitions_count > 0 ? (size_t)g->topics[t].partitions_count : 0;
    offrow *rows = calloc(n ? n : 1, sizeof(*rows));
    if (!rows)
        return adm_err(EX_FAIL, "out of memory");
    n = 0;
    for (int32_t t = 0; t < g->topics_count; t++)
        for (int32_t p = 0; p < g->topics[t].partitions_count; p++)
            rows[n++] = (offrow){g->topics[t].topic_name, &g->topics[t].partitions[p]};
    qsort(rows, n, sizeof(*rows), cmp_offrow);
    if (g_opts.json) {
        jw_obj();
        jw_key("group");
        jw_str(group);
        jw_key("partitions");
        jw_arr();
    }
    static const char *const hdr[] = {"GROUP", "TOPIC", "PARTITION", "LEADER-EPOCH", "START-OFFSET", "LAG"};
    tbl tb;
    if (!g_opts.json)
        tbl_init(&tb, 6, hdr);
    for (size_t i = 0; i < n; i++) {
        const offrow *r = &rows[i];
        if (g_opts.json) {
            jw_obj();
            jw_key("topic");
            jw_strn(r->topic.p, (size_t)(r->topic.len > 0 ? r->topic.len : 0));
            jw_key("partition");
            jw_int(r->p->partition_index);
            jw_key("start_offset");
            jw_int(r->p->start_offset);
            jw_key("lag");
            jw_int(r->p->lag);
            jw_key("error");
            jw_str(r->p->error_code ? kp_error_name(r->p->error_code) : NULL);
            jw_obj_end();
        } else {
            tbl_cell(&tb, "%s", group);
            tbl_cell(&tb, "%.*s", (int)(r->topic.len > 0 ? r->topic.len : 0), r->topic.p);
            tbl_cell(&tb, "%d", (int)r->p->partition_index);
            /* -1 is "unknown" on the wire; the tool shows a dash for it, as Kafka's does. */
            if (r->p->leader_epoch >= 0)
                tbl_cell(&tb, "%d", (int)r->p->leader_epoch);
            else
                tbl_cell(&tb, "-");
            if (r->p->start_offset >= 0)
                tbl_cell(&tb, "%lld", (long long)r->p->start_offset);
            else
                tbl_cell(&tb, "-");
            if (r->p->lag >= 0)
                tbl_cell(&tb, "%lld", (long long)r->p->lag);
            else
                tbl_cell(&tb, "-");
        }
    }
    free(rows);
    if (g_opts.json) {
        jw_arr_end();
        jw_obj_end();
        jw_done();
    } else {
        tbl_print(&tb);
    }
    return EX_OK;
}

static int share_describe(int argc, char **argv)
{
    const char *group = NULL;
    bool members = false;
    for (int i = 1; i < argc; i++) {
        if (adm_flag(argv, i, "--members"))
            members = true;
        else if (adm_flag(argv, i, "--offsets"))
            members = false;
        else if (argv[i][0] == '-' || group)
            return adm_err(EX_USAGE, "share-group describe GROUP [--members | --offsets]: unexpected '%s'",
                           argv[i]);
        else
            group = argv[i];
    }
    if (!group)
        return adm_err(EX_USAGE, "share-group describe GROUP [--members | --offsets]");
    sconn c;
    int rc = connect_coordinator(&c, group);
    if (rc == EX_OK)
        rc = members ? describe_members(&c, group) : describe_offsets(&c, group);
    sconn_close(&c);
    return rc;
}

static int share_dispatch(const char *name, int argc, char **argv)
{
    if (strcmp(name, "list") == 0)
        return share_list(argc, argv);
    if (strcmp(name, "describe") == 0)
        return share_describe(argc, argv);
    return adm_err(EX_USAGE, "share-group: unknown subcommand '%s' (list, describe)", name);
}

int cmd_share_group(int argc, char **argv)
{
    if (argc < 1)
        return adm_err(EX_USAGE, "share-group: a subcommand is needed (list, describe)");
    return share_dispatch(argv[0], argc, argv);
}

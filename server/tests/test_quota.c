/*
 * test_quota.c — unit tests of server/quota.c and server/throttle.c: Kafka's
 * 8 levels of quota precedence and the metric tags each shares its rate
 * under, AlterClientQuotas validation in Kafka's words, the metadata log
 * records, DescribeClientQuotas filters, and the windowed rate and throttle
 * time under a fake clock.
 *
 * Owns nothing outside the process. Must not: depend on shards, files or
 * the network.
 */
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "kb_test.h"
#include "quota.h"
#include "sstr.h"
#include "throttle.h"
#include "throttle_conn.h"

static srv_quota_entity ent(const char *user, int has_user, const char *client, int has_client)
{
    srv_quota_entity e;
    memset(&e, 0, sizeof(e));
    if (has_user) {
        e.present |= 1u << SRV_QE_USER;
        e.name[SRV_QE_USER] = user ? kp_str_c(user) : KP_STR_NULL;
    }
    if (has_client) {
        e.present |= 1u << SRV_QE_CLIENT;
        e.name[SRV_QE_CLIENT] = client ? kp_str_c(client) : KP_STR_NULL;
    }
    return e;
}

static srv_quota_set *put(srv_quota_set *q, srv_quota_entity e, const char *key, double v)
{
    srv_quota_op op = {kp_str_c(key), v, 0};
    char msg[256];
    CU_ASSERT_EQUAL(srv_quota_validate(&e, &op, 1, msg, sizeof(msg)), 0);
    srv_quota_set *nq = srv_quota_apply(q, &e, &op, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nq);
    srv_quota_set_unref(q);
    return nq;
}

static double bound_of(const srv_quota_set *q, const char *user, const char *client, int *tu, int *tc)
{
    double b = -1;
    if (!srv_quota_lookup(q, SRV_QK_PRODUCER_BYTE_RATE, kp_str_c(user), kp_str_c(client), &b, tu, tc))
        return -1;
    return b;
}

/* Each level is added from least to most specific; each addition must
 * take over, with the tags Kafka's DefaultQuotaCallback gives it. */
static void test_precedence(void)
{
    srv_quota_set *q = srv_quota_set_new();
    int tu, tc;
    CU_ASSERT_EQUAL(bound_of(q, "alice", "app", &tu, &tc), -1);
    static const struct {
        const char *user;
        int hu;
        const char *client;
        int hc;
        int tu, tc;
    } levels[8] = {
        {NULL, 0, NULL, 1, 0, 1},     /* 8: <default> client */
        {NULL, 0, "app", 1, 0, 1},    /* 7: client-id */
        {NULL, 1, NULL, 0, 1, 0},     /* 6: <default> user */
        {NULL, 1, NULL, 1, 1, 1},     /* 5: <default> user, <default> client */
        {NULL, 1, "app", 1, 1, 1},    /* 4: <default> user, client-id */
        {"alice", 1, NULL, 0, 1, 0},  /* 3: user */
        {"alice", 1, NULL, 1, 1, 1},  /* 2: user, <default> client */
        {"alice", 1, "app", 1, 1, 1}, /* 1: user, client-id */
    };
    for (int i = 0; i < 8; i++) {
        q = put(q, ent(levels[i].user, levels[i].hu, levels[i].client, levels[i].hc), "producer_byte_rate",
                100.0 * (i + 1));
        CU_ASSERT_EQUAL(bound_of(q, "alice", "app", &tu, &tc), 100.0 * (i + 1));
        CU_ASSERT_EQUAL(tu, levels[i].tu);
        CU_ASSERT_EQUAL(tc, levels[i].tc);
    }
    /* Other clients fall to the levels that name no one. */
    CU_ASSERT_EQUAL(bound_of(q, "bob", "other", &tu, &tc), 400.0);   /* <default> user, <default> client */
    CU_ASSERT_EQUAL(bound_of(q, "bob", "app", &tu, &tc), 500.0);     /* <default> user, client-id */
    CU_ASSERT_EQUAL(bound_of(q, "alice", "other", &tu, &tc), 700.0); /* alice, <default> client */
    /* A key is looked up on its own: an entity without it does not hide a
     * less specific one that has it. */
    double b;
    CU_ASSERT_FALSE(
        srv_quota_lookup(q, SRV_QK_CONSUMER_BYTE_RATE, kp_str_c("alice"), kp_str_c("app"), &b, &tu, &tc));
    q = put(q, ent(NULL, 0, NULL, 1), "consumer_byte_rate", 42);
    CU_ASSERT_TRUE(
        srv_quota_lookup(q, SRV_QK_CONSUMER_BYTE_RATE, kp_str_c("alice"), kp_str_c("app"), &b, &tu, &tc));
    CU_ASSERT_EQUAL(b, 42);
    /* Removing the last key of an entity removes it. */
    srv_quota_entity top = ent("alice", 1, "app", 1);
    srv_quota_op rm = {kp_str_c("producer_byte_rate"), 0, 1};
    srv_quota_set *nq = srv_quota_apply(q, &top, &rm, 1);
    CU_ASSERT_PTR_NULL(srv_quota_find(nq, &top));
    CU_ASSERT_EQUAL(bound_of(nq, "alice", "app", &tu, &tc), 700.0);
    CU_ASSERT_EQUAL(nq->n, q->n - 1);
    srv_quota_set_unref(nq);
    srv_quota_set_unref(q);
}

/* Names are protocol strings: a NUL inside matters. */
static void test_names_with_nul(void)
{
    srv_quota_set *q = srv_quota_set_new();
    srv_quota_entity e;
    memset(&e, 0, sizeof(e));
    e.present = 1u << SRV_QE_USER;
    e.name[SRV_QE_USER] = (kp_str){"a\0b", 3};
    q = put(q, e, "producer_byte_rate", 5);
    double b;
    int tu, tc;
    CU_ASSERT_FALSE(
        srv_quota_lookup(q, SRV_QK_PRODUCER_BYTE_RATE, kp_str_c("a"), kp_str_c("c"), &b, &tu, &tc));
    CU_ASSERT_TRUE(
        srv_quota_lookup(q, SRV_QK_PRODUCER_BYTE_RATE, (kp_str){"a\0b", 3}, kp_str_c("c"), &b, &tu, &tc));
    srv_quota_set_unref(q);
}

static void expect_invalid(srv_quota_entity e, const char *key, double v, int16_t code, const char *text)
{
    srv_quota_op op = {kp_str_c(key), v, 0};
    char msg[256] = "";
    CU_ASSERT_EQUAL(srv_quota_validate(&e, &op, 1, msg, sizeof(msg)), code);
    if (strcmp(msg, text) != 0)
        fprintf(stderr, "\nmessage '%s', expected '%s'\n", msg, text);
    CU_ASSERT_STRING_EQUAL(msg, text);
}

/* The answers Apache Kafka 4.4 gave to the same entries. */
static void test_validation(void)
{
    srv_quota_entity bob = ent("bob", 1, NULL, 0);
    expect_invalid(bob, "foo", 1, KP_ERR_INVALID_REQUEST, "Invalid configuration key foo");
    expect_invalid(bob, "producer_byte_rate", -1, KP_ERR_INVALID_REQUEST,
                   "Quota producer_byte_rate must be greater than 0");
    expect_invalid(bob, "producer_byte_rate", 0, KP_ERR_INVALID_REQUEST,
                   "Quota producer_byte_rate must be greater than 0");
    expect_invalid(bob, "producer_byte_rate", 1.5, KP_ERR_INVALID_REQUEST,
                   "producer_byte_rate cannot be a fractional value.");
    expect_invalid(bob, "producer_byte_rate", 1e30, KP_ERR_INVALID_REQUEST,
                   "Proposed value for producer_byte_rate is too large for a LONG.");
    expect_invalid(bob, "connection_creation_rate", 10, KP_ERR_INVALID_REQUEST,
                   "Invalid configuration key connection_creation_rate");
    expect_invalid(ent("", 1, NULL, 0), "producer_byte_rate", 10, KP_ERR_INVALID_REQUEST,
                   "Empty user not supported");
    expect_invalid(ent(NULL, 0, NULL, 0), "producer_byte_rate", 10, KP_ERR_INVALID_REQUEST,
                   "Invalid empty client quota entity");
    srv_quota_op ok = {kp_str_c("request_percentage"), 1.5, 0};
    char msg[256];
    CU_ASSERT_EQUAL(srv_quota_validate(&bob, &ok, 1, msg, sizeof(msg)), 0);
    srv_quota_op dup[2] = {{kp_str_c("producer_byte_rate"), 10, 0}, {kp_str_c("producer_byte_rate"), 20, 0}};
    CU_ASSERT_EQUAL(srv_quota_validate(&bob, dup, 2, msg, sizeof(msg)), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(msg, "Ignoring duplicate entity ClientQuotaEntity(entries={user=bob})");
    /* Removing needs no value. */
    srv_quota_op rm = {kp_str_c("producer_byte_rate"), 0, 1};
    CU_ASSERT_EQUAL(srv_quota_validate(&bob, &rm, 1, msg, sizeof(msg)), 0);
}

/* A set written as records and replayed is the same set; a tombstone
 * removes the entity. */
static void test_records(void)
{
    srv_quota_set *q = srv_quota_set_new();
    q = put(q, ent("alice", 1, NULL, 1), "producer_byte_rate", 1000);
    q = put(q, ent("alice", 1, NULL, 1), "request_percentage", 12.5);
    srv_quota_set *r = srv_quota_set_new();
    for (int i = 0; i < q->n; i++) {
        srv_quota_entity e;
        memset(&e, 0, sizeof(e));
        e.present = q->e[i].present;
        for (int t = 0; t < SRV_QE_NTYPES; t++)
            e.name[t] = q->e[i].name[t] ? srv_s(q->e[i].name[t]) : KP_STR_NULL;
        kp_writer kw, vw;
        kp_writer_init(&kw, 64);
        kp_writer_init(&vw, 64);
        CU_ASSERT_EQUAL(srv_quota_record_key(&kw, &e), 0);
        CU_ASSERT_EQUAL(srv_quota_record_value(&vw, &q->e[i]), 0);
        int bad = 0;
        srv_quota_set *nr = srv_quota_replay(r, (kp_bytes){kw.buf, (int32_t)kw.len},
                                             (kp_bytes){vw.buf, (int32_t)vw.len}, &bad);
        CU_ASSERT_FALSE(bad);
        CU_ASSERT_PTR_NOT_NULL_FATAL(nr);
        srv_quota_set_unref(r);
        r = nr;
        const srv_quota_entry *got = srv_quota_find(r, &e);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_EQUAL(got->has, q->e[i].has);
        CU_ASSERT_EQUAL(got->v[SRV_QK_PRODUCER_BYTE_RATE], 1000);
        CU_ASSERT_EQUAL(got->v[SRV_QK_REQUEST_PERCENTAGE], 12.5);
        /* tombstone */
        nr = srv_quota_replay(r, (kp_bytes){kw.buf, (int32_t)kw.len}, KP_BYTES_NULL, &bad);
        CU_ASSERT_PTR_NOT_NULL_FATAL(nr);
        CU_ASSERT_PTR_NULL(srv_quota_find(nr, &e));
        srv_quota_set_unref(nr);
        kp_writer_free(&kw);
        kp_writer_free(&vw);
    }
    int bad = 0;
    static const uint8_t junk[] = {'Q', 7};
    CU_ASSERT_PTR_NULL(srv_quota_replay(r, (kp_bytes){junk, 2}, KP_BYTES_NULL, &bad));
    CU_ASSERT_TRUE(bad);
    srv_quota_set_unref(r);
    srv_quota_set_unref(q);
}

static void test_filters(void)
{
    srv_quota_set *q = srv_quota_set_new();
    q = put(q, ent("alice", 1, NULL, 0), "producer_byte_rate", 1);
    q = put(q, ent("alice", 1, "app", 1), "producer_byte_rate", 2);
    q = put(q, ent(NULL, 1, NULL, 0), "producer_byte_rate", 3);
    kp_str types[2] = {kp_str_c("user"), kp_str_c("client-id")};
    int8_t match[2] = {SRV_QMATCH_EXACT, SRV_QMATCH_ANY};
    kp_str names[2] = {kp_str_c("alice"), KP_STR_NULL};
    srv_quota_filter f[2];
    char msg[256];
    CU_ASSERT_EQUAL(srv_quota_filter_parse(types, match, names, 1, f, msg, sizeof(msg)), 0);
    int n = 0, strict_n = 0;
    for (int i = 0; i < q->n; i++) {
        n += srv_quota_filter_match(&q->e[i], f, 1, 0);
        strict_n += srv_quota_filter_match(&q->e[i], f, 1, 1);
    }
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(strict_n, 1);
    match[0] = SRV_QMATCH_DEFAULT;
    names[0] = KP_STR_NULL;
    CU_ASSERT_EQUAL(srv_quota_filter_parse(types, match, names, 1, f, msg, sizeof(msg)), 0);
    n = 0;
    for (int i = 0; i < q->n; i++)
        n += srv_quota_filter_match(&q->e[i], f, 1, 0);
    CU_ASSERT_EQUAL(n, 1);
    /* Kafka's refusals */
    kp_str foo = kp_str_c("foo");
    CU_ASSERT_EQUAL(srv_quota_filter_parse(&foo, match, names, 1, f, msg, sizeof(msg)),
                    KP_ERR_UNSUPPORTED_VERSION);
    CU_ASSERT_STRING_EQUAL(msg, "Unsupported entity type foo");
    kp_str two[2] = {kp_str_c("user"), kp_str_c("user")};
    int8_t m2[2] = {SRV_QMATCH_ANY, SRV_QMATCH_ANY};
    kp_str n2[2] = {KP_STR_NULL, KP_STR_NULL};
    CU_ASSERT_EQUAL(srv_quota_filter_parse(two, m2, n2, 2, f, msg, sizeof(msg)), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(msg, "Entity type user cannot appear more than once in the filter.");
    int8_t exact = SRV_QMATCH_EXACT;
    CU_ASSERT_EQUAL(srv_quota_filter_parse(types, &exact, n2, 1, f, msg, sizeof(msg)),
                    KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(msg, "Request specified MATCH_TYPE_EXACT, but set match string to null.");
    int8_t bogus = 3;
    CU_ASSERT_EQUAL(srv_quota_filter_parse(types, &bogus, n2, 1, f, msg, sizeof(msg)),
                    KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(msg, "Unknown match type 3");
    srv_quota_set_unref(q);
}

/* Kafka's Rate: with fewer than samples-1 full windows elapsed, the span is
 * padded to samples-1 windows. */
static void test_rate_window(void)
{
    srv_rate r;
    srv_rate_init(&r, 11, 1000);
    srv_rate_record(&r, 2000000, 0);
    CU_ASSERT_EQUAL(srv_rate_window(&r, 0), 10000);
    CU_ASSERT_DOUBLE_EQUAL(srv_rate_measure(&r, 0), 200000.0, 1e-6);
    /* (200000 - 100000) / 100000 * 10000 */
    CU_ASSERT_EQUAL(srv_rate_throttle_ms(&r, 100000, 0), 10000);
    /* 5.5 s later: span 5500 padded by 5 windows = 10500 */
    CU_ASSERT_EQUAL(srv_rate_window(&r, 5500), 10500);
    CU_ASSERT_EQUAL(srv_rate_throttle_ms(&r, 100000, 5500), 9500);
    /* Within the bound: no throttle. */
    CU_ASSERT_EQUAL(srv_rate_throttle_ms(&r, 300000, 5500), 0);
    /* Samples advance on window boundaries aligned to the first. */
    srv_rate_record(&r, 1000, 5500);
    CU_ASSERT_EQUAL(r.n, 2);
    CU_ASSERT_EQUAL(r.start[1], 5000);
    /* After the whole span (11 windows) the first sample is forgotten. */
    CU_ASSERT_EQUAL(srv_rate_window(&r, 11000), 10000 + 0); /* oldest now 5000: 6000 + 4 windows */
    CU_ASSERT_DOUBLE_EQUAL(srv_rate_measure(&r, 11000), 1000 / 10.0, 1e-6);
    /* A steady rate at the bound is not throttled. */
    srv_rate s;
    srv_rate_init(&s, 11, 1000);
    int64_t worst = 0;
    for (int64_t t = 0; t < 30000; t += 100) {
        srv_rate_record(&s, 9000, t); /* 90 KB/s */
        int64_t th = srv_rate_throttle_ms(&s, 100000, t);
        if (th > worst)
            worst = th;
    }
    CU_ASSERT_EQUAL(worst, 0);
    srv_rate_unrecord(&s, 9000, 29900);
}

/* The table shares a rate as Kafka's tags say: with a user-level quota,
 * two client ids of one user share it; with client-id quotas they do not. */
static void test_table_sharing(void)
{
    srv_throttle *t = srv_throttle_new(11, 1000);
    srv_quota_set *q = srv_quota_set_new();
    q = put(q, ent("alice", 1, NULL, 0), "producer_byte_rate", 1000);
    CU_ASSERT_EQUAL(
        srv_throttle_record(t, q, SRV_QK_PRODUCER_BYTE_RATE, kp_str_c("alice"), kp_str_c("a"), 5000, 0), 0);
    /* 10000 bytes over a 10 s span: exactly the bound, still not over. */
    CU_ASSERT_EQUAL(
        srv_throttle_record(t, q, SRV_QK_PRODUCER_BYTE_RATE, kp_str_c("alice"), kp_str_c("b"), 5000, 0), 0);
    CU_ASSERT_EQUAL(srv_throttle_count(t), 1);
    /* 10000 more from either client id: 2000/s, (2000 - 1000) / 1000 * 10 s */
    CU_ASSERT_EQUAL(
        srv_throttle_record(t, q, SRV_QK_PRODUCER_BYTE_RATE, kp_str_c("alice"), kp_str_c("a"), 10000, 0),
        10000);
    /* No quota for bob: nothing recorded, never throttled. */
    CU_ASSERT_EQUAL(
        srv_throttle_record(t, q, SRV_QK_PRODUCER_BYTE_RATE, kp_str_c("bob"), kp_str_c("a"), 1e9, 0), 0);
    CU_ASSERT_EQUAL(srv_throttle_count(t), 1);
    CU_ASSERT_DOUBLE_EQUAL(
        srv_throttle_max_in_window(t, q, SRV_QK_PRODUCER_BYTE_RATE, kp_str_c("alice"), KP_STR_NULL), 10000,
        1e-9);
    CU_ASSERT_EQUAL(
        srv_throttle_max_in_window(t, q, SRV_QK_CONSUMER_BYTE_RATE, kp_str_c("alice"), KP_STR_NULL), -1);
    /* client-id quotas: separate rates per client id */
    q = put(q, ent(NULL, 0, NULL, 1), "consumer_byte_rate", 1000);
    srv_throttle_record(t, q, SRV_QK_CONSUMER_BYTE_RATE, kp_str_c("x"), kp_str_c("c1"), 1, 0);
    srv_throttle_record(t, q, SRV_QK_CONSUMER_BYTE_RATE, kp_str_c("y"), kp_str_c("c1"), 1, 0);
    srv_throttle_record(t, q, SRV_QK_CONSUMER_BYTE_RATE, kp_str_c("x"), kp_str_c("c2"), 1, 0);
    CU_ASSERT_EQUAL(srv_throttle_count(t), 3);
    srv_throttle_expire(t, 3600 * 1000 + 1);
    CU_ASSERT_EQUAL(srv_throttle_count(t), 0);
    srv_quota_set_unref(q);
    srv_throttle_free(t);
}

/* Counts per address with overrides, the broker-wide and per-listener
 * maximum, and the creation rate's pause. */
static void test_connlimit(void)
{
    srv_connlimit_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.nlisteners = 2;
    cc.max_total = 5;
    cc.max_listener[0] = 4;
    cc.max_listener[1] = 100;
    cc.rate_listener[0] = 2;
    cc.rate_listener[1] = 1000;
    cc.max_per_ip = 2;
    cc.overrides = " 127.0.0.9:3 , 10.1.1.1:0";
    cc.samples = 11;
    cc.window_ms = 1000;
    char err[300];
    CU_ASSERT_PTR_NULL(srv_connlimit_new(&(srv_connlimit_config){.nlisteners = 1, .overrides = "nocount"},
                                         err, sizeof(err)));
    srv_connlimit *cl = srv_connlimit_new(&cc, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
    int32_t lim = -1;
    CU_ASSERT_EQUAL(srv_connlimit_admit(cl, 0, "127.0.0.1", &lim), 0);
    CU_ASSERT_EQUAL(srv_connlimit_admit(cl, 0, "127.0.0.1", &lim), 0);
    CU_ASSERT_EQUAL(srv_connlimit_admit(cl, 0, "127.0.0.1", &lim), -1);
    CU_ASSERT_EQUAL(lim, 2);
    CU_ASSERT_EQUAL(srv_connlimit_admit(cl, 1, "10.1.1.1", &lim), -1);
    CU_ASSERT_EQUAL(lim, 0);
    CU_ASSERT_EQUAL(srv_connlimit_admit(cl, 0, "127.0.0.9", &lim), 0);
    CU_ASSERT_FALSE(srv_connlimit_full(cl, 0));
    CU_ASSERT_EQUAL(srv_connlimit_admit(cl, 0, "127.0.0.9", &lim), 0);
    CU_ASSERT_TRUE(srv_connlimit_full(cl, 0)); /* listener 0 at its 4 */
    CU_ASSERT_FALSE(srv_connlimit_full(cl, 1));
    CU_ASSERT_EQUAL(srv_connlimit_admit(cl, 1, "127.0.0.9", &lim), 0);
    CU_ASSERT_TRUE(srv_connlimit_full(cl, 1)); /* the broker at its 5 */
    CU_ASSERT_EQUAL(srv_connlimit_total(cl), 5);
    srv_connlimit_release(cl, 1, "127.0.0.9");
    srv_connlimit_release(cl, 0, "127.0.0.1");
    CU_ASSERT_FALSE(srv_connlimit_full(cl, 0));
    CU_ASSERT_EQUAL(srv_connlimit_ip_count(cl, "127.0.0.1"), 1);
    CU_ASSERT_EQUAL(srv_connlimit_admit(cl, 0, "127.0.0.1", &lim), 0);
    /* 2 per second on listener 0: 21 at once are over the rate */
    int64_t wait = 0;
    for (int i = 0; i < 21; i++)
        wait = srv_connlimit_created(cl, 0, 0);
    CU_ASSERT_EQUAL(wait, 500); /* 21 / 10 s = 2.1/s: (2.1 - 2) / 2 * 10 s */
    CU_ASSERT_EQUAL(srv_connlimit_created(cl, 1, 0), 0);
    srv_connlimit_free(cl);
}

/* Kafka's TokenBucket for controller_mutation_rate: full at first (rate x
 * samples x window), refilled at the rate, strict refusal only once below
 * zero, throttle time -tokens / rate. */
static void test_mutation_tokens(void)
{
    srv_throttle *t = srv_throttle_new(11, 1000);
    srv_quota_set *q = srv_quota_set_new();
    q = put(q, ent(NULL, 0, "admin", 1), "controller_mutation_rate", 1);
    kp_str u = kp_str_c("ANONYMOUS"), c = kp_str_c("admin");
    /* 11 tokens: 5 + 5 + 5 pass (the third leaves -4), the fourth is refused */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(srv_throttle_mutation(t, q, u, c, 5, 1, 1000), 0);
    CU_ASSERT_EQUAL(srv_throttle_mutation(t, q, u, c, 5, 1, 1000), -1);
    CU_ASSERT_EQUAL(srv_throttle_mutation_ms(t, q, u, c, 1000), 4000);
    /* 2.5 s later: -1.5 tokens left */
    CU_ASSERT_EQUAL(srv_throttle_mutation_ms(t, q, u, c, 3500), 1500);
    CU_ASSERT_EQUAL(srv_throttle_mutation(t, q, u, c, 1, 1, 3500), -1);
    /* permissive (old versions): recorded anyway */
    CU_ASSERT_EQUAL(srv_throttle_mutation(t, q, u, c, 2, 0, 3500), 0);
    CU_ASSERT_EQUAL(srv_throttle_mutation_ms(t, q, u, c, 3500), 3500);
    /* refilled, never beyond the burst */
    CU_ASSERT_EQUAL(srv_throttle_mutation_ms(t, q, u, c, 100000), 0);
    CU_ASSERT_EQUAL(srv_throttle_mutation(t, q, u, c, 11, 1, 100000), 0);
    CU_ASSERT_EQUAL(srv_throttle_mutation(t, q, u, c, 1, 1, 100000), 0);
    CU_ASSERT_EQUAL(srv_throttle_mutation_ms(t, q, u, c, 100000), 1000);
    /* no quota for another client id: never refused */
    CU_ASSERT_EQUAL(srv_throttle_mutation(t, q, u, kp_str_c("other"), 1e6, 1, 100000), 0);
    srv_quota_set_unref(q);
    srv_throttle_free(t);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("quota", NULL, NULL);
    CU_add_test(s, "precedence", test_precedence);
    CU_add_test(s, "names with NUL", test_names_with_nul);
    CU_add_test(s, "validation", test_validation);
    CU_add_test(s, "records", test_records);
    CU_add_test(s, "filters", test_filters);
    CU_pSuite r = CU_add_suite("throttle", NULL, NULL);
    CU_add_test(r, "rate window", test_rate_window);
    CU_add_test(r, "table sharing", test_table_sharing);
    CU_add_test(r, "connection limits", test_connlimit);
    CU_add_test(r, "mutation tokens", test_mutation_tokens);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

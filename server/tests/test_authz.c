/*
 * test_authz.c — unit tests of the ACL engine (server/authz.c) with Kafka's
 * StandardAuthorizer semantics: deny wins, literal vs prefixed vs the "*"
 * literal, the User:* principal and * host, implied operations, super users,
 * allow.everyone.if.no.acl.found, filters of DescribeAcls/DeleteAcls and
 * validation; and of the controller's ACL changes (server/controller.c,
 * SRV_CTL_ACLS) through an in-memory metadata log that replays to the same
 * set, tombstones included, with topic records beside them.
 *
 * Owns: nothing outside the process. Must not: depend on shards or disk.
 */
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "controller.h"
#include "errors.h"
#include "kb_test.h"

static kp_str S(const char *s)
{
    return kp_str_c(s);
}

static srv_acl acl(int rtype, const char *name, int pattern, const char *principal, const char *host, int op,
                   int perm)
{
    return (srv_acl){(int8_t)rtype, (int8_t)pattern, (int8_t)op, (int8_t)perm,
                     S(name),       S(principal),    S(host)};
}

static srv_authz_cfg g_cfg;

static int can(const srv_acl_set *set, const char *principal, const char *host, int op, int rtype,
               const char *name)
{
    return srv_authz_check(&g_cfg, set, S(principal), S(host), op, rtype, S(name));
}

static void cfg(int allow_if_no_acl, const char *supers)
{
    CU_ASSERT_EQUAL_FATAL(srv_authz_cfg_init(&g_cfg, 1, allow_if_no_acl, supers, NULL, 0), 0);
}

static void test_deny_wins(void)
{
    cfg(0, NULL);
    srv_acl a[] = {
        acl(SRV_RES_TOPIC, "t", SRV_PAT_LITERAL, "User:alice", "*", SRV_OP_READ, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "t", SRV_PAT_PREFIXED, "User:*", "*", SRV_OP_READ, SRV_PERM_DENY),
        acl(SRV_RES_TOPIC, "u", SRV_PAT_LITERAL, "User:alice", "*", SRV_OP_ALL, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "u", SRV_PAT_LITERAL, "User:alice", "10.0.0.9", SRV_OP_WRITE, SRV_PERM_DENY),
        acl(SRV_RES_TOPIC, "v", SRV_PAT_LITERAL, "User:alice", "*", SRV_OP_READ, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "v", SRV_PAT_LITERAL, "User:alice", "*", SRV_OP_ALL, SRV_PERM_DENY),
    };
    srv_acl_set *s = srv_acl_set_new(a, 6);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_FALSE(can(s, "User:alice", "1.2.3.4", SRV_OP_READ, SRV_RES_TOPIC, "t"));
    /* A DENY of READ does not deny the DESCRIBE that READ implies. */
    CU_ASSERT_TRUE(can(s, "User:alice", "1.2.3.4", SRV_OP_DESCRIBE, SRV_RES_TOPIC, "t"));
    CU_ASSERT_TRUE(can(s, "User:alice", "1.2.3.4", SRV_OP_WRITE, SRV_RES_TOPIC, "u"));
    CU_ASSERT_FALSE(can(s, "User:alice", "10.0.0.9", SRV_OP_WRITE, SRV_RES_TOPIC, "u"));
    CU_ASSERT_TRUE(can(s, "User:alice", "10.0.0.9", SRV_OP_READ, SRV_RES_TOPIC, "u"));
    CU_ASSERT_FALSE(can(s, "User:alice", "1.2.3.4", SRV_OP_READ, SRV_RES_TOPIC, "v"));
    CU_ASSERT_FALSE(can(s, "User:alice", "1.2.3.4", SRV_OP_DESCRIBE, SRV_RES_TOPIC, "v"));
    srv_acl_set_unref(s);
}

static void test_patterns(void)
{
    cfg(0, NULL);
    srv_acl a[] = {
        acl(SRV_RES_TOPIC, "pay", SRV_PAT_PREFIXED, "User:bob", "*", SRV_OP_WRITE, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "logs", SRV_PAT_LITERAL, "User:bob", "*", SRV_OP_READ, SRV_PERM_ALLOW),
        acl(SRV_RES_GROUP, "*", SRV_PAT_LITERAL, "User:bob", "*", SRV_OP_READ, SRV_PERM_ALLOW),
        /* "*" is a wildcard only as a LITERAL name: as a prefix it is a character. */
        acl(SRV_RES_TRANSACTIONAL_ID, "*", SRV_PAT_PREFIXED, "User:bob", "*", SRV_OP_WRITE, SRV_PERM_ALLOW),
    };
    srv_acl_set *s = srv_acl_set_new(a, 4);
    CU_ASSERT_TRUE(can(s, "User:bob", "h", SRV_OP_WRITE, SRV_RES_TOPIC, "pay"));
    CU_ASSERT_TRUE(can(s, "User:bob", "h", SRV_OP_WRITE, SRV_RES_TOPIC, "payments"));
    CU_ASSERT_FALSE(can(s, "User:bob", "h", SRV_OP_WRITE, SRV_RES_TOPIC, "pa"));
    CU_ASSERT_FALSE(can(s, "User:bob", "h", SRV_OP_WRITE, SRV_RES_TOPIC, "xpay"));
    CU_ASSERT_TRUE(can(s, "User:bob", "h", SRV_OP_READ, SRV_RES_TOPIC, "logs"));
    CU_ASSERT_FALSE(can(s, "User:bob", "h", SRV_OP_READ, SRV_RES_TOPIC, "logs2"));
    CU_ASSERT_FALSE(can(s, "User:bob", "h", SRV_OP_READ, SRV_RES_TOPIC, "pay"));
    CU_ASSERT_TRUE(can(s, "User:bob", "h", SRV_OP_READ, SRV_RES_GROUP, "anything"));
    CU_ASSERT_FALSE(can(s, "User:bob", "h", SRV_OP_READ, SRV_RES_TOPIC, "anything"));
    CU_ASSERT_FALSE(can(s, "User:bob", "h", SRV_OP_WRITE, SRV_RES_TRANSACTIONAL_ID, "tx"));
    CU_ASSERT_TRUE(can(s, "User:bob", "h", SRV_OP_WRITE, SRV_RES_TRANSACTIONAL_ID, "*tx"));
    /* Names are bytes with lengths: a NUL inside is compared, not an end. */
    srv_acl nul = a[1];
    nul.name = (kp_str){"lo\0gs", 5};
    srv_acl_set *s2 = srv_acl_set_new(&nul, 1);
    CU_ASSERT_FALSE(srv_authz_check(&g_cfg, s2, S("User:bob"), S("h"), SRV_OP_READ, SRV_RES_TOPIC, S("lo")));
    CU_ASSERT_TRUE(srv_authz_check(&g_cfg, s2, S("User:bob"), S("h"), SRV_OP_READ, SRV_RES_TOPIC,
                                   (kp_str){"lo\0gs", 5}));
    srv_acl_set_unref(s2);
    srv_acl_set_unref(s);
}

static void test_wildcards(void)
{
    cfg(0, NULL);
    srv_acl a[] = {
        acl(SRV_RES_TOPIC, "t", SRV_PAT_LITERAL, "User:*", "*", SRV_OP_READ, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "h", SRV_PAT_LITERAL, "User:carol", "10.1.1.1", SRV_OP_READ, SRV_PERM_ALLOW),
    };
    srv_acl_set *s = srv_acl_set_new(a, 2);
    CU_ASSERT_TRUE(can(s, "User:anyone", "9.9.9.9", SRV_OP_READ, SRV_RES_TOPIC, "t"));
    CU_ASSERT_TRUE(can(s, "User:ANONYMOUS", "9.9.9.9", SRV_OP_READ, SRV_RES_TOPIC, "t"));
    /* User:* is every User, not another principal type. */
    CU_ASSERT_FALSE(can(s, "Group:x", "9.9.9.9", SRV_OP_READ, SRV_RES_TOPIC, "t"));
    CU_ASSERT_TRUE(can(s, "User:carol", "10.1.1.1", SRV_OP_READ, SRV_RES_TOPIC, "h"));
    CU_ASSERT_FALSE(can(s, "User:carol", "10.1.1.2", SRV_OP_READ, SRV_RES_TOPIC, "h"));
    CU_ASSERT_FALSE(can(s, "User:dave", "10.1.1.1", SRV_OP_READ, SRV_RES_TOPIC, "h"));
    srv_acl_set_unref(s);
}

static void test_implied(void)
{
    cfg(0, NULL);
    static const int describers[] = {SRV_OP_READ, SRV_OP_WRITE, SRV_OP_DELETE, SRV_OP_ALTER, SRV_OP_ALL};
    for (size_t i = 0; i < sizeof(describers) / sizeof(describers[0]); i++) {
        srv_acl a = acl(SRV_RES_TOPIC, "t", SRV_PAT_LITERAL, "User:a", "*", describers[i], SRV_PERM_ALLOW);
        srv_acl_set *s = srv_acl_set_new(&a, 1);
        CU_ASSERT_TRUE(can(s, "User:a", "h", SRV_OP_DESCRIBE, SRV_RES_TOPIC, "t"));
        CU_ASSERT_EQUAL(can(s, "User:a", "h", SRV_OP_DESCRIBE_CONFIGS, SRV_RES_TOPIC, "t"),
                        describers[i] == SRV_OP_ALL);
        srv_acl_set_unref(s);
    }
    srv_acl a[] = {
        acl(SRV_RES_TOPIC, "c", SRV_PAT_LITERAL, "User:a", "*", SRV_OP_ALTER_CONFIGS, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "d", SRV_PAT_LITERAL, "User:a", "*", SRV_OP_DESCRIBE, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "x", SRV_PAT_LITERAL, "User:a", "*", SRV_OP_CREATE, SRV_PERM_ALLOW),
    };
    srv_acl_set *s = srv_acl_set_new(a, 3);
    CU_ASSERT_TRUE(can(s, "User:a", "h", SRV_OP_DESCRIBE_CONFIGS, SRV_RES_TOPIC, "c"));
    CU_ASSERT_FALSE(can(s, "User:a", "h", SRV_OP_DESCRIBE, SRV_RES_TOPIC, "c"));
    /* DESCRIBE implies nothing, and CREATE does not imply DESCRIBE. */
    CU_ASSERT_FALSE(can(s, "User:a", "h", SRV_OP_READ, SRV_RES_TOPIC, "d"));
    CU_ASSERT_FALSE(can(s, "User:a", "h", SRV_OP_DESCRIBE, SRV_RES_TOPIC, "x"));
    srv_acl_set_unref(s);
}

static void test_super_and_no_acl(void)
{
    cfg(0, " User:admin ; User:CN=ops,O=example;;");
    CU_ASSERT_EQUAL(g_cfg.nsuper, 2);
    srv_acl deny = acl(SRV_RES_TOPIC, "t", SRV_PAT_LITERAL, "User:*", "*", SRV_OP_ALL, SRV_PERM_DENY);
    srv_acl_set *s = srv_acl_set_new(&deny, 1);
    CU_ASSERT_TRUE(can(s, "User:admin", "h", SRV_OP_READ, SRV_RES_TOPIC, "t"));
    CU_ASSERT_TRUE(can(s, "User:CN=ops,O=example", "h", SRV_OP_ALTER, SRV_RES_CLUSTER, "kafka-cluster"));
    CU_ASSERT_FALSE(can(s, "User:Admin", "h", SRV_OP_READ, SRV_RES_TOPIC, "t"));
    /* No binding at all: denied, unless allow.everyone.if.no.acl.found. */
    CU_ASSERT_FALSE(can(NULL, "User:x", "h", SRV_OP_READ, SRV_RES_TOPIC, "free"));
    CU_ASSERT_FALSE(can(s, "User:x", "h", SRV_OP_READ, SRV_RES_TOPIC, "free"));
    cfg(1, NULL);
    CU_ASSERT_TRUE(can(NULL, "User:x", "h", SRV_OP_READ, SRV_RES_TOPIC, "free"));
    CU_ASSERT_TRUE(can(s, "User:x", "h", SRV_OP_READ, SRV_RES_TOPIC, "free"));
    CU_ASSERT_FALSE(can(s, "User:x", "h", SRV_OP_READ, SRV_RES_TOPIC, "t"));
    /* Any binding on the resource (even for someone else) takes the default away. */
    srv_acl other = acl(SRV_RES_TOPIC, "t", SRV_PAT_LITERAL, "User:y", "*", SRV_OP_READ, SRV_PERM_ALLOW);
    srv_acl_set *s2 = srv_acl_set_new(&other, 1);
    CU_ASSERT_FALSE(can(s2, "User:x", "h", SRV_OP_READ, SRV_RES_TOPIC, "t"));
    CU_ASSERT_TRUE(can(s2, "User:x", "h", SRV_OP_READ, SRV_RES_GROUP, "t"));
    srv_acl_set_unref(s2);
    srv_acl_set_unref(s);
    char err[128];
    char big[1100];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    CU_ASSERT_EQUAL(srv_authz_cfg_init(&g_cfg, 1, 0, big, err, sizeof(err)), -1);
    CU_ASSERT_TRUE(srv_authz_class_ok("org.apache.kafka.metadata.authorizer.StandardAuthorizer"));
    CU_ASSERT_FALSE(srv_authz_class_ok("kafka.security.authorizer.AclAuthorizer"));
}

static void test_by_resource_type(void)
{
    cfg(0, "User:admin");
    srv_acl a[] = {
        acl(SRV_RES_TOPIC, "pay", SRV_PAT_PREFIXED, "User:a", "*", SRV_OP_WRITE, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "pa", SRV_PAT_PREFIXED, "User:b", "*", SRV_OP_WRITE, SRV_PERM_DENY),
        acl(SRV_RES_TOPIC, "pay", SRV_PAT_PREFIXED, "User:b", "*", SRV_OP_ALL, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "x", SRV_PAT_LITERAL, "User:c", "*", SRV_OP_WRITE, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "x", SRV_PAT_LITERAL, "User:c", "*", SRV_OP_WRITE, SRV_PERM_DENY),
        acl(SRV_RES_TOPIC, "y", SRV_PAT_LITERAL, "User:d", "*", SRV_OP_WRITE, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "*", SRV_PAT_LITERAL, "User:d", "*", SRV_OP_WRITE, SRV_PERM_DENY),
        acl(SRV_RES_TOPIC, "*", SRV_PAT_LITERAL, "User:e", "*", SRV_OP_WRITE, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "z", SRV_PAT_LITERAL, "User:f", "*", SRV_OP_READ, SRV_PERM_ALLOW),
    };
    srv_acl_set *s = srv_acl_set_new(a, 9);
#define ANY_WRITE(p) srv_authz_check_any(&g_cfg, s, S(p), S("h"), SRV_OP_WRITE, SRV_RES_TOPIC)
    CU_ASSERT_TRUE(ANY_WRITE("User:a"));
    CU_ASSERT_FALSE(ANY_WRITE("User:b")); /* the DENY prefix "pa" dominates "pay" */
    CU_ASSERT_FALSE(ANY_WRITE("User:c"));
    CU_ASSERT_FALSE(ANY_WRITE("User:d")); /* a wildcard DENY denies all */
    CU_ASSERT_TRUE(ANY_WRITE("User:e"));
    CU_ASSERT_FALSE(ANY_WRITE("User:f")); /* READ is not WRITE */
    CU_ASSERT_FALSE(ANY_WRITE("User:nobody"));
    CU_ASSERT_TRUE(ANY_WRITE("User:admin"));
#undef ANY_WRITE
    srv_acl_set_unref(s);

    /* With allow.everyone.if.no.acl.found the first, literal probe decides
     * unless a binding covers Kafka's probe name (any principal's: Kafka's
     * "no ACL found" is per resource); then the scan of ALLOW bindings
     * decides (none here). The same DENY on another name leaves the probe
     * allowed. */
    cfg(1, NULL);
    srv_acl on_probe =
        acl(SRV_RES_TOPIC, "hardcode", SRV_PAT_LITERAL, "User:g", "*", SRV_OP_WRITE, SRV_PERM_DENY);
    srv_acl elsewhere =
        acl(SRV_RES_TOPIC, "other", SRV_PAT_LITERAL, "User:g", "*", SRV_OP_WRITE, SRV_PERM_DENY);
    s = srv_acl_set_new(&on_probe, 1);
    CU_ASSERT_FALSE(srv_authz_check_any(&g_cfg, s, S("User:g"), S("h"), SRV_OP_WRITE, SRV_RES_TOPIC));
    CU_ASSERT_FALSE(srv_authz_check_any(&g_cfg, s, S("User:h"), S("h"), SRV_OP_WRITE, SRV_RES_TOPIC));
    srv_acl_set_unref(s);
    s = srv_acl_set_new(&elsewhere, 1);
    CU_ASSERT_TRUE(srv_authz_check_any(&g_cfg, s, S("User:g"), S("h"), SRV_OP_WRITE, SRV_RES_TOPIC));
    srv_acl_set_unref(s);
}

static void test_filters(void)
{
    srv_acl lit = acl(SRV_RES_TOPIC, "orders", SRV_PAT_LITERAL, "User:a", "*", SRV_OP_READ, SRV_PERM_ALLOW);
    srv_acl star = acl(SRV_RES_TOPIC, "*", SRV_PAT_LITERAL, "User:a", "*", SRV_OP_READ, SRV_PERM_ALLOW);
    srv_acl pre = acl(SRV_RES_TOPIC, "ord", SRV_PAT_PREFIXED, "User:a", "*", SRV_OP_READ, SRV_PERM_ALLOW);
    srv_acl grp = acl(SRV_RES_GROUP, "orders", SRV_PAT_LITERAL, "User:b", "h", SRV_OP_DELETE, SRV_PERM_DENY);
    srv_acl_filter any = {SRV_RES_ANY, SRV_PAT_ANY, SRV_OP_ANY, SRV_PERM_ANY,
                          KP_STR_NULL, KP_STR_NULL, KP_STR_NULL};
    CU_ASSERT_TRUE(srv_acl_filter_match(&any, &lit) && srv_acl_filter_match(&any, &grp));
    srv_acl_filter f = any;
    f.name = S("orders");
    CU_ASSERT_TRUE(srv_acl_filter_match(&f, &lit));
    CU_ASSERT_FALSE(srv_acl_filter_match(&f, &star)); /* ANY with a name: that exact name */
    CU_ASSERT_FALSE(srv_acl_filter_match(&f, &pre));
    f.pattern = SRV_PAT_MATCH; /* the bindings that apply to "orders" */
    CU_ASSERT_TRUE(srv_acl_filter_match(&f, &lit) && srv_acl_filter_match(&f, &star) &&
                   srv_acl_filter_match(&f, &pre) && srv_acl_filter_match(&f, &grp));
    f.rtype = SRV_RES_TOPIC;
    CU_ASSERT_FALSE(srv_acl_filter_match(&f, &grp));
    f = any;
    f.pattern = SRV_PAT_PREFIXED;
    CU_ASSERT_TRUE(srv_acl_filter_match(&f, &pre));
    CU_ASSERT_FALSE(srv_acl_filter_match(&f, &lit));
    f = any;
    f.principal = S("User:b");
    f.op = SRV_OP_DELETE;
    f.perm = SRV_PERM_DENY;
    f.host = S("h");
    CU_ASSERT_TRUE(srv_acl_filter_match(&f, &grp));
    f.perm = SRV_PERM_ALLOW;
    CU_ASSERT_FALSE(srv_acl_filter_match(&f, &grp));
    CU_ASSERT_PTR_NULL(srv_acl_validate_filter(&any));
    f = any;
    f.pattern = 9;
    CU_ASSERT_STRING_EQUAL(srv_acl_validate_filter(&f), "Unknown patternFilter.");
    f = any;
    f.op = 77;
    CU_ASSERT_STRING_EQUAL(srv_acl_validate_filter(&f), "Unknown entryFilter.");
}

static int16_t invalid(const srv_acl *a, const char **msg)
{
    int bad_principal = 0;
    int16_t e = srv_acl_validate_new(a, msg, &bad_principal);
    if (bad_principal)
        *msg = "principal";
    return e;
}

static void test_validate_new(void)
{
    const char *msg = "unset";
    srv_acl ok = acl(SRV_RES_TOPIC, "t", SRV_PAT_LITERAL, "User:a", "*", SRV_OP_READ, SRV_PERM_ALLOW);
    CU_ASSERT_EQUAL(invalid(&ok, &msg), 0);
    CU_ASSERT_FALSE(srv_acl_has_unknown(&ok));
    /* ANY and MATCH: Kafka's binding constructor throws, an unknown server error. */
    srv_acl b = ok;
    b.rtype = SRV_RES_ANY;
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_UNKNOWN_SERVER_ERROR);
    CU_ASSERT_PTR_NULL(msg);
    b = ok;
    b.pattern = SRV_PAT_MATCH;
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_UNKNOWN_SERVER_ERROR);
    b = ok;
    b.op = SRV_OP_ANY;
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_UNKNOWN_SERVER_ERROR);
    b = ok;
    b.perm = SRV_PERM_ANY;
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_UNKNOWN_SERVER_ERROR);
    /* Codes beyond Kafka's: INVALID_REQUEST naming the field. */
    b = ok;
    b.rtype = 42;
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(msg, "Invalid resourceType UNKNOWN");
    b.name = S(""); /* the empty name is checked first */
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(msg, "Invalid empty resource name");
    b = ok;
    b.principal = S("alice");
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_INVALID_REQUEST);
    CU_ASSERT_STRING_EQUAL(msg, "principal");
    b = ok;
    b.host = S("");
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_INVALID_REQUEST);
    b = acl(SRV_RES_CLUSTER, "other", SRV_PAT_LITERAL, "User:a", "*", SRV_OP_ALTER, SRV_PERM_ALLOW);
    CU_ASSERT_EQUAL(invalid(&b, &msg), KP_ERR_INVALID_REQUEST);
    b.name = S("kafka-cluster");
    CU_ASSERT_EQUAL(invalid(&b, &msg), 0);
    b = ok;
    b.op = SRV_OP_UNKNOWN;
    CU_ASSERT_TRUE(srv_acl_has_unknown(&b));
}

/* ---- the controller's ACL changes, persisted and replayed ------------------ */

static uint8_t *g_log;
static size_t g_log_len;
static int g_finished, g_fail_rc;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return 1700000000000;
}

static int fake_new_id(void *arg, kp_uuid *id)
{
    (void)arg;
    static uint8_t next;
    memset(id->b, 0, 16);
    id->b[0] = 0xCD;
    id->b[15] = ++next;
    return 0;
}

static void fake_append(void *arg, const uint8_t *batch, size_t len, st_accept_cb accepted, st_append_cb done,
                        void *ctx)
{
    (void)arg;
    (void)accepted;
    if (g_fail_rc) {
        done(ctx, g_fail_rc, -1);
        return;
    }
    uint8_t *n = realloc(g_log, g_log_len + len);
    CU_ASSERT_FATAL(n != NULL);
    memcpy(n + g_log_len, batch, len);
    g_log = n;
    g_log_len += len;
    done(ctx, 0, 0);
}

static void fake_publish(void *arg, srv_controller *c, srv_ctl_op *op, srv_meta *m)
{
    (void)arg;
    (void)m;
    srv_ctl_published(c, op);
}

static void fake_finish(void *arg, srv_ctl_op *op)
{
    (void)arg;
    (void)op;
    g_finished++;
}

static const srv_ctl_env fake_env = {NULL, fake_now, fake_new_id, fake_append, fake_publish, fake_finish};

static void release(srv_acl_change *ch)
{
    srv_acl_set_unref(ch->before);
    free(ch->deleted_by);
    ch->before = NULL;
    ch->deleted_by = NULL;
}

static void run_acls(srv_controller *c, srv_acl_change *ch)
{
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_ACLS;
    op.acls = ch;
    int before = g_finished;
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(g_finished, before + 1);
}

static void test_controller_acls(void)
{
    free(g_log);
    g_log = NULL;
    g_log_len = 0;
    g_fail_rc = 0;
    srv_controller *c = srv_ctl_new(&fake_env, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* A topic record beside the ACL records: replay must keep both. */
    srv_topic_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.name = S("orders");
    sp.nparts = 2;
    sp.replication = -1;
    srv_ctl_op top;
    memset(&top, 0, sizeof(top));
    top.kind = SRV_CTL_CREATE;
    top.nspecs = 1;
    top.specs = &sp;
    srv_ctl_enqueue(c, &top);
    CU_ASSERT_EQUAL_FATAL(sp.error, 0);

    srv_acl add[] = {
        acl(SRV_RES_TOPIC, "orders", SRV_PAT_LITERAL, "User:alice", "*", SRV_OP_READ, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "ord", SRV_PAT_PREFIXED, "User:bob", "*", SRV_OP_WRITE, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "orders", SRV_PAT_LITERAL, "User:alice", "*", SRV_OP_READ,
            SRV_PERM_ALLOW), /* dup */
        acl(SRV_RES_GROUP, "g", SRV_PAT_LITERAL, "User:alice", "*", SRV_OP_READ, SRV_PERM_ALLOW),
        acl(SRV_RES_TOPIC, "refused", SRV_PAT_LITERAL, "User:x", "*", SRV_OP_READ, SRV_PERM_ALLOW),
    };
    int16_t cerr[5] = {0, 0, 0, 0, KP_ERR_INVALID_REQUEST};
    srv_acl_change ch = {5, add, cerr, 0, NULL, NULL, NULL, NULL};
    run_acls(c, &ch);
    release(&ch);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(cerr[i], 0);
    const srv_acl_set *cur = srv_ctl_current(c)->acls;
    CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
    CU_ASSERT_EQUAL(cur->n, 3); /* the duplicate once, the refused one not at all */
    CU_ASSERT_EQUAL(srv_ctl_current(c)->ntopics, 1);
    CU_ASSERT_EQUAL(srv_acl_set_find(cur, &add[4]), -1);

    /* Creating an existing binding again appends nothing. */
    size_t len = g_log_len;
    int16_t cerr1[1] = {0};
    srv_acl_change again = {1, add, cerr1, 0, NULL, NULL, NULL, NULL};
    run_acls(c, &again);
    release(&again);
    CU_ASSERT_EQUAL(cerr1[0], 0);
    CU_ASSERT_EQUAL(g_log_len, len);

    /* Delete everything of alice's on topics; the second filter matches what
     * the first took already, so only the first reports it. */
    srv_acl_filter f[2] = {
        {SRV_RES_TOPIC, SRV_PAT_ANY, SRV_OP_ANY, SRV_PERM_ANY, KP_STR_NULL, S("User:alice"), KP_STR_NULL},
        {SRV_RES_ANY, SRV_PAT_MATCH, SRV_OP_ANY, SRV_PERM_ANY, S("orders"), S("User:alice"), KP_STR_NULL},
    };
    int16_t ferr[2] = {0, 0};
    srv_acl_change del = {0, NULL, NULL, 2, f, ferr, NULL, NULL};
    run_acls(c, &del);
    CU_ASSERT_EQUAL(ferr[0], 0);
    CU_ASSERT_EQUAL(ferr[1], 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(del.before);
    CU_ASSERT_EQUAL(del.before->n, 3);
    int by0 = 0, by1 = 0;
    for (int j = 0; j < del.before->n; j++) {
        by0 += del.deleted_by[j] == 0;
        by1 += del.deleted_by[j] == 1;
    }
    CU_ASSERT_EQUAL(by0, 1);
    CU_ASSERT_EQUAL(by1, 0);
    release(&del);
    CU_ASSERT_EQUAL(srv_ctl_current(c)->acls->n, 2);

    /* A failed append changes nothing and says so per item. */
    g_fail_rc = ST_E_STORAGE;
    int16_t cerr2[1] = {0};
    srv_acl_change fail = {1, &add[4], cerr2, 0, NULL, NULL, NULL, NULL};
    run_acls(c, &fail);
    release(&fail);
    CU_ASSERT_EQUAL(cerr2[0], KP_ERR_KAFKA_STORAGE_ERROR);
    CU_ASSERT_EQUAL(srv_ctl_current(c)->acls->n, 2);
    g_fail_rc = 0;

    /* The log replays to the same ACLs (the tombstone applied) and topics. */
    srv_meta *m = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(g_log, g_log_len, &m), 0);
    CU_ASSERT_EQUAL(m->ntopics, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->acls);
    CU_ASSERT_EQUAL(m->acls->n, 2);
    CU_ASSERT_EQUAL(srv_acl_set_find(m->acls, &add[0]), -1);
    CU_ASSERT_TRUE(srv_acl_set_find(m->acls, &add[1]) >= 0);
    CU_ASSERT_TRUE(srv_acl_set_find(m->acls, &add[3]) >= 0);
    srv_meta_unref(m);
    srv_ctl_free(c);
    free(g_log);
    g_log = NULL;
}

static void test_record_roundtrip(void)
{
    srv_acl a =
        acl(SRV_RES_USER, "u\0x", SRV_PAT_PREFIXED, "User:CN=a,O=b", "::1", SRV_OP_ALTER, SRV_PERM_DENY);
    a.name.len = 3; /* with the NUL */
    kp_writer k, v;
    kp_writer_init(&k, 16);
    kp_writer_init(&v, 16);
    CU_ASSERT_EQUAL(srv_acl_encode_key(&k, &a), 0);
    CU_ASSERT_EQUAL(srv_acl_encode_value(&v, &a), 0);
    CU_ASSERT_EQUAL(k.buf[0], SRV_ACL_KEY_PREFIX);
    CU_ASSERT_EQUAL(k.len, v.len + 1);
    srv_acl d;
    CU_ASSERT_EQUAL(srv_acl_decode_value(v.buf, v.len, &d), 0);
    CU_ASSERT_TRUE(srv_acl_equal(&a, &d));
    CU_ASSERT_EQUAL(srv_acl_decode_value(k.buf + 1, k.len - 1, &d), 0);
    CU_ASSERT_TRUE(srv_acl_equal(&a, &d));
    CU_ASSERT_NOT_EQUAL(srv_acl_decode_value(v.buf, v.len - 1, &d), 0);
    kp_writer_free(&k);
    kp_writer_free(&v);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("authz", NULL, NULL);
    CU_add_test(s, "deny wins", test_deny_wins);
    CU_add_test(s, "literal, prefixed and the * literal", test_patterns);
    CU_add_test(s, "User:* and host *", test_wildcards);
    CU_add_test(s, "implied operations", test_implied);
    CU_add_test(s, "super users and allow.everyone.if.no.acl.found", test_super_and_no_acl);
    CU_add_test(s, "describe/delete filters", test_filters);
    CU_add_test(s, "by resource type (InitProducerId)", test_by_resource_type);
    CU_add_test(s, "validation of new bindings", test_validate_new);
    CU_add_test(s, "record round trip", test_record_roundtrip);
    CU_add_test(s, "controller: create, delete, replay", test_controller_acls);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

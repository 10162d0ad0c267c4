/*
 * test_sasl.c — unit tests of server/sasl.c: Kafka's JAAS syntax for
 * PlainLoginModule and the check of SASL/PLAIN tokens.
 *
 * Owns nothing outside the process. Must not: depend on other server
 * modules, files or the network.
 */
#include <stdio.h>
#include <string.h>

#include "sasl.h"
#include "kb_test.h"

static srv_plain_users *parse_ok(const char *text)
{
    char err[256] = "";
    srv_plain_users *u = NULL;
    int rc = srv_jaas_parse_plain(text, strlen(text), &u, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "\nunexpected JAAS error for '%s': %s\n", text, err);
    CU_ASSERT_EQUAL(rc, 0);
    return u;
}

/* Token "authzid\0user\0password" with explicit length (NULs inside). */
static int check(const srv_plain_users *u, const char *authz, const char *user, const char *pw, char *name,
                 const char **msg)
{
    char tok[256];
    size_t n = 0;
    n += (size_t)snprintf(tok + n, sizeof(tok) - n, "%s", authz) + 1;
    n += (size_t)snprintf(tok + n, sizeof(tok) - n, "%s", user) + 1;
    n += (size_t)snprintf(tok + n, sizeof(tok) - n, "%s", pw);
    return srv_sasl_plain_check(u, (const uint8_t *)tok, n, name, 64, msg);
}

static void test_jaas_users(void)
{
    srv_plain_users *u = parse_ok("org.apache.kafka.common.security.plain.PlainLoginModule required\n"
                                  "  username=\"admin\" password=\"admin-secret\"\n"
                                  "  user_admin=\"admin-secret\" user_alice=\"alice \\\"quoted\\\" secret\"\n"
                                  "  user_bob=bare-word\n"
                                  "  user_b\xc3\xb6"
                                  "b=\"p\xc3\xa4"
                                  "ss\";");
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(srv_plain_users_count(u), 4); /* username/password are not users */
    char name[64];
    const char *msg = "unset";
    CU_ASSERT_EQUAL(check(u, "", "alice", "alice \"quoted\" secret", name, &msg), 0);
    CU_ASSERT_STRING_EQUAL(name, "alice");
    CU_ASSERT_PTR_NULL(msg);
    CU_ASSERT_EQUAL(check(u, "", "bob", "bare-word", name, &msg), 0);
    CU_ASSERT_EQUAL(check(u, "",
                          "b\xc3\xb6"
                          "b",
                          "p\xc3\xa4"
                          "ss",
                          name, &msg),
                    0);
    CU_ASSERT_EQUAL(check(u, "admin", "admin", "admin-secret", name, &msg), 0); /* authzid = user is fine */
    srv_plain_users_free(u);

    /* Flags are case-insensitive, the last definition of a user wins. */
    u = parse_ok(
        "org.apache.kafka.common.security.plain.PlainLoginModule REQUIRED user_a=\"1\" user_a=\"2\";");
    CU_ASSERT_EQUAL(srv_plain_users_count(u), 1);
    CU_ASSERT_EQUAL(check(u, "", "a", "2", name, &msg), 0);
    CU_ASSERT_NOT_EQUAL(check(u, "", "a", "1", name, &msg), 0);
    srv_plain_users_free(u);
}

static void test_plain_refusals(void)
{
    srv_plain_users *u = parse_ok(
        "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";");
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    char name[64];
    const char *msg = NULL;
    static const char invalid[] = "Authentication failed: Invalid username or password";
    CU_ASSERT_EQUAL(check(u, "", "alice", "alice-secreT", name, &msg), -1);
    CU_ASSERT_STRING_EQUAL(msg, invalid);
    CU_ASSERT_EQUAL(check(u, "", "alice", "alice-secret2", name, &msg), -1); /* a longer one */
    CU_ASSERT_EQUAL(check(u, "", "alice", "alice", name, &msg), -1);         /* a prefix */
    CU_ASSERT_EQUAL(check(u, "", "mallory", "alice-secret", name, &msg), -1);
    CU_ASSERT_STRING_EQUAL(msg, invalid); /* unknown user: the same answer */
    CU_ASSERT_EQUAL(check(u, "", "", "alice-secret", name, &msg), -1);
    CU_ASSERT_STRING_EQUAL(msg, "Authentication failed: username not specified");
    CU_ASSERT_EQUAL(check(u, "", "alice", "", name, &msg), -1);
    CU_ASSERT_STRING_EQUAL(msg, "Authentication failed: password not specified");
    CU_ASSERT_EQUAL(check(u, "bob", "alice", "alice-secret", name, &msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "authorization id that is different"));
    /* Not three parts. */
    static const uint8_t two[] = "alice\0alice-secret";
    CU_ASSERT_EQUAL(srv_sasl_plain_check(u, two, sizeof(two) - 1, name, sizeof(name), &msg), -1);
    static const uint8_t four[] = "\0alice\0alice-secret\0x";
    CU_ASSERT_EQUAL(srv_sasl_plain_check(u, four, sizeof(four) - 1, name, sizeof(name), &msg), -1);
    CU_ASSERT_EQUAL(srv_sasl_plain_check(u, (const uint8_t *)"", 0, name, sizeof(name), &msg), -1);
    /* NULs after the password would otherwise be a way to pass a prefix. */
    static const uint8_t nul_pw[] = "\0alice\0alice-secret\0";
    CU_ASSERT_EQUAL(srv_sasl_plain_check(u, nul_pw, sizeof(nul_pw) - 1, name, sizeof(name), &msg), -1);
    srv_plain_users_free(u);
    /* No users at all (NULL table): refused, no crash. */
    CU_ASSERT_EQUAL(check(NULL, "", "alice", "x", name, &msg), -1);
}

static void test_jaas_errors(void)
{
    struct {
        const char *text;
        const char *needle;
    } bad[] = {
        {"", "empty"},
        {"com.example.Other required user_a=\"b\";",
         "is not org.apache.kafka.common.security.plain.PlainLoginModule"},
        {"org.apache.kafka.common.security.plain.PlainLoginModule mandatory user_a=\"b\";", "control flag"},
        {"org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\"",
         "does not end with ';'"},
        {"org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b;", "unterminated"},
        {"org.apache.kafka.common.security.plain.PlainLoginModule required user_a;", "key=value"},
        {"org.apache.kafka.common.security.plain.PlainLoginModule required user_a=;", "value not specified"},
        {"org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\"; "
         "org.apache.kafka.common.security.plain.PlainLoginModule required;",
         "more than one"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        srv_plain_users *u = (srv_plain_users *)1;
        CU_ASSERT_EQUAL(srv_jaas_parse_plain(bad[i].text, strlen(bad[i].text), &u, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NULL(u);
        if (!strstr(err, bad[i].needle))
            fprintf(stderr, "\ncase %zu: '%s' lacks '%s'\n", i, err, bad[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].needle));
    }
    /* Explicit length: bytes after it are not read. */
    static const char t[] =
        "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\";GARBAGE";
    srv_plain_users *u = NULL;
    char err[256];
    CU_ASSERT_EQUAL(srv_jaas_parse_plain(t, sizeof(t) - 1 - 7, &u, err, sizeof(err)), 0);
    srv_plain_users_free(u);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("sasl", NULL, NULL);
    CU_add_test(s, "jaas users", test_jaas_users);
    CU_add_test(s, "plain refusals", test_plain_refusals);
    CU_add_test(s, "jaas errors", test_jaas_errors);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

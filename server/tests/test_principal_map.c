/*
 * test_principal_map.c — unit tests of server/principal_map.c with the
 * examples of Kafka's documentation of ssl.principal.mapping.rules and the
 * messages Kafka 4.4 gives for invalid rules (seen by starting it).
 *
 * Owns nothing outside the process. Must not: depend on other server
 * modules, files or the network.
 */
#include <stdio.h>
#include <string.h>

#include "principal_map.h"
#include "kb_test.h"

static srv_pmap *parse_ok(const char *rules)
{
    char err[512] = "";
    srv_pmap *m = srv_pmap_parse(rules, strlen(rules), err, sizeof(err));
    if (!m)
        fprintf(stderr, "\nunexpected error for '%s': %s\n", rules, err);
    CU_ASSERT_PTR_NOT_NULL(m);
    return m;
}

static void expect_map(const srv_pmap *m, const char *dn, const char *want)
{
    char out[256];
    size_t n = 0;
    int rc = srv_pmap_apply(m, dn, strlen(dn), out, sizeof(out), &n);
    if (!want) {
        CU_ASSERT_EQUAL(rc, -1);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(n, strlen(want));
    if (n != strlen(want) || memcmp(out, want, n) != 0)
        fprintf(stderr, "\n%s -> '%.*s', want '%s'\n", dn, (int)n, out, want);
    CU_ASSERT_NSTRING_EQUAL(out, want, n);
}

static void expect_error(const char *rules, const char *msg)
{
    char err[512] = "";
    srv_pmap *m = srv_pmap_parse(rules, strlen(rules), err, sizeof(err));
    CU_ASSERT_PTR_NULL(m);
    srv_pmap_free(m);
    if (strcmp(err, msg) != 0)
        fprintf(stderr, "\nerror for '%s':\n  got  %s\n  want %s\n", rules, err, msg);
    CU_ASSERT_STRING_EQUAL(err, msg);
}

/* The documented example list and its two examples. */
static void test_documented_examples(void)
{
    srv_pmap *m = parse_ok("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,"
                           "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
                           "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,"
                           "DEFAULT");
    CU_ASSERT_EQUAL(srv_pmap_count(m), 4);
    expect_map(m, "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "serviceuser");
    expect_map(m, "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "adminuser@admin");
    /* Third rule: anything with a CN, lower-cased. */
    expect_map(m, "O=kbroker-tests,CN=Client.One", "client.one");
    /* No CN anywhere: DEFAULT keeps the DN. */
    expect_map(m, "O=kbroker-tests", "O=kbroker-tests");
    srv_pmap_free(m);
}

static void test_upper_and_order(void)
{
    srv_pmap *m = parse_ok("RULE:^CN=(.*),O=(.*)$/$2:$1/U, RULE:^CN=(.*)$/$1/");
    expect_map(m, "CN=client,O=kbroker-tests", "KBROKER-TESTS:CLIENT");
    expect_map(m, "CN=solo", "solo");
    /* No DEFAULT and nothing matches: Kafka fails the authentication. */
    expect_map(m, "OU=x", NULL);
    srv_pmap_free(m);
}

static void test_whole_dn_and_escapes(void)
{
    /* matches() is anchored at both ends even without ^ and $. */
    srv_pmap *m = parse_ok("RULE:CN=([a-z]+)/$1/");
    expect_map(m, "CN=abc", "abc");
    expect_map(m, "CN=abc,O=x", NULL);
    srv_pmap_free(m);
    /* An escaped slash belongs to the pattern; a comma inside a pattern does
     * not split the list. */
    m = parse_ok("RULE:^CN=(.*)\\/(.*),O=z$/$2-$1/,DEFAULT");
    CU_ASSERT_EQUAL(srv_pmap_count(m), 2);
    expect_map(m, "CN=a/b,O=z", "b-a");
    srv_pmap_free(m);
    /* In the replacement a backslash quotes the next character (Java's
     * replaceAll): "a\\\\b$1" gives a\\b<group>, "\\$" a literal $. */
    m = parse_ok("RULE:^CN=(.*)$/a\\\\b$1\\$/");
    expect_map(m, "CN=q", "a\\bq$");
    srv_pmap_free(m);
}

static void test_default_and_empty(void)
{
    srv_pmap *m = parse_ok("DEFAULT");
    expect_map(m, "CN=client,O=kbroker-tests", "CN=client,O=kbroker-tests");
    srv_pmap_free(m);
    m = parse_ok("   ");
    CU_ASSERT_EQUAL(srv_pmap_count(m), 1);
    expect_map(m, "CN=x", "CN=x");
    srv_pmap_free(m);
    /* Empty items are dropped. */
    m = parse_ok(" , DEFAULT ,, ");
    CU_ASSERT_EQUAL(srv_pmap_count(m), 1);
    srv_pmap_free(m);
}

/* Messages as Apache Kafka 4.4 prints them at start. */
static void test_invalid_rules(void)
{
    expect_error("RULE:^CN=(.*?),O=(.*)$/$1/X",
                 "Invalid rule: `RULE:^CN=(.*?),O=(.*)$/$1/X`, unmatched substring: `X`");
    expect_error("DEFAULT, RULE:^CN=(.*)$/$1/LU",
                 "Invalid rule: `RULE:^CN=(.*)$/$1/LU`, unmatched substring: `U`");
    expect_error("RULE:^CN=(.*)$/$1",
                 "Invalid rule: `RULE:^CN=(.*)$/$1`, unmatched substring: `RULE:^CN=(.*)$/$1`");
    expect_error("DEFAULTS", "Invalid rule: `DEFAULTS`, unmatched substring: `S`");
    expect_error("foo", "Invalid rule: `foo`, unmatched substring: `foo`");
    char err[512] = "";
    CU_ASSERT_PTR_NULL(srv_pmap_parse("RULE:^CN=(.*$/$1/", 18, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pattern error"));
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("principal_map", NULL, NULL);
    CU_add_test(s, "documented_examples", test_documented_examples);
    CU_add_test(s, "upper_and_order", test_upper_and_order);
    CU_add_test(s, "whole_dn_and_escapes", test_whole_dn_and_escapes);
    CU_add_test(s, "default_and_empty", test_default_and_empty);
    CU_add_test(s, "invalid_rules", test_invalid_rules);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};

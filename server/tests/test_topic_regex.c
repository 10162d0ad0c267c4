/*
 * test_topic_regex.c — unit tests of server/topic_regex.c: the patterns
 * RE2/J refuses, each with the description Apache Kafka 4.4 answered for it
 * (seen with raw ConsumerGroupHeartbeat requests), the ones it accepts, and
 * whole-name matching without exponential backtracking.
 *
 * Owns nothing outside the process. Must not: depend on other server
 * modules, files or the network.
 */
#include <stdio.h>
#include <string.h>

#include "kb_test.h"
#include "topic_regex.h"

static kp_str S(const char *s)
{
    return (kp_str){s, (int32_t)strlen(s)};
}

static void expect_refused(const char *pattern, const char *why)
{
    const char *got = srv_topic_regex_check(S(pattern));
    if (!got || strcmp(got, why) != 0)
        fprintf(stderr, "\n%s: got %s, want %s\n", pattern, got ? got : "(accepted)", why);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, why);
    const char *why2 = NULL;
    CU_ASSERT_PTR_NULL(srv_topic_regex_compile(S(pattern), &why2));
    CU_ASSERT_PTR_EQUAL(why2, got);
}

static srv_topic_regex *accepted(const char *pattern)
{
    const char *why = NULL;
    srv_topic_regex *r = srv_topic_regex_compile(S(pattern), &why);
    if (!r)
        fprintf(stderr, "\n%s refused: %s\n", pattern, why);
    CU_ASSERT_PTR_NOT_NULL(r);
    return r;
}

/* Kafka 4.4's answers, description for description. */
static void test_refused_like_kafka(void)
{
    expect_refused("(", "missing closing )");
    expect_refused("a)", "regexp/syntax: internal error");
    expect_refused("[a", "missing closing ]");
    expect_refused("*a", "missing argument to repetition operator");
    expect_refused("a**", "invalid nested repetition operator");
    expect_refused("a*+", "invalid nested repetition operator");
    expect_refused("a++", "invalid nested repetition operator");
    expect_refused("x{2}{3}", "invalid nested repetition operator");
    expect_refused("(a)\\1", "invalid escape sequence");
    expect_refused("\\8", "invalid escape sequence");
    expect_refused("\\Ga", "invalid escape sequence");
    expect_refused("\\Z", "invalid escape sequence");
    expect_refused("\\k<n>", "invalid escape sequence");
    expect_refused("\\h", "invalid escape sequence");
    expect_refused("\\e", "invalid escape sequence");
    expect_refused("a\\", "trailing backslash at end of expression");
    expect_refused("a(?=b)", "invalid or unsupported Perl syntax");
    expect_refused("(?>a)", "invalid or unsupported Perl syntax");
    expect_refused("(?x)a", "invalid or unsupported Perl syntax");
    expect_refused("(?|a)", "invalid or unsupported Perl syntax");
    expect_refused("a(?<!b)", "invalid named capture");
    expect_refused("a{2,1}", "invalid repeat count");
    expect_refused("a{1001}", "invalid repeat count");
    expect_refused("[z-a]", "invalid character class range");
    expect_refused("\\pX", "invalid character class range");
    expect_refused("\\p{Foo}", "invalid character class range");
}

/* What PCRE2 would take and RE2 does not: never handed to PCRE2. */
static void test_pcre_only_constructs(void)
{
    expect_refused("(a)(?1)", "invalid or unsupported Perl syntax");
    expect_refused("(?R)", "invalid or unsupported Perl syntax");
    expect_refused("(*UTF)a", "missing argument to repetition operator");
    expect_refused("a(?<=b)", "invalid named capture");
    expect_refused("a(?!b)", "invalid or unsupported Perl syntax");
    expect_refused("(?(1)a|b)", "invalid or unsupported Perl syntax");
    expect_refused("\\Ka", "invalid escape sequence");
    expect_refused("\\Ca", "invalid escape sequence");
    expect_refused("\\R", "invalid escape sequence");
    expect_refused("(?P=n)", "invalid or unsupported Perl syntax");
    expect_refused("[\\b]", "invalid escape sequence");
    expect_refused("[[:foo:]]", "invalid character class range");
    expect_refused("(?P<n>a)(?P<n>b)", "duplicate capture group name");
    expect_refused("a\xff", "invalid UTF-8");
}

static void test_accepted(void)
{
    static const char *const ok[] = {
        "(?P<n>a)",
        "(?<n>a)",
        "(?i)A",
        "\\Qa.b\\E",
        "a*?b+?c??",
        "[[:alpha:]]\\d{2,}",
        "a{2}?",
        "a{,3}",
        "x{",
        "[]a]",
        "[^-a-]",
        "\\x41\\x{42}",
        "\\pL\\p{Greek}\\PN",
        "(?i-s:a.)",
        "\\.\\-\\_",
        "",
        "topic-[0-9]+",
        "^a$",
        "\\Aa\\z",
        "\\0",
        "é+",
        "(?U)a+",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
        const char *why = srv_topic_regex_check(S(ok[i]));
        if (why)
            fprintf(stderr, "\n%s refused: %s\n", ok[i], why);
        CU_ASSERT_PTR_NULL(why);
        srv_topic_regex_free(accepted(ok[i]));
    }
}

/* Java's matches(): the whole name, trying alternatives until one ends at its end. */
static void test_whole_name(void)
{
    srv_topic_regex *r = accepted("orders-(eu|us)");
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("orders-eu")), 1);
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("orders-us")), 1);
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("orders-eu2")), 0);
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("xorders-eu")), 0);
    srv_topic_regex_free(r);
    r = accepted("a|ab");
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("ab")), 1);
    srv_topic_regex_free(r);
    r = accepted("t.*$");
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("t\n")), 0); /* RE2's $ is the end of the text */
    srv_topic_regex_free(r);
    r = accepted("(?i)Orders");
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("ORDERS")), 1);
    srv_topic_regex_free(r);
    r = accepted("\\d+");
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("\xd9\xa3")), 0); /* \d is ASCII in RE2 */
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S("42")), 1);
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, (kp_str){"4\xff", 2}), 0);
    srv_topic_regex_free(r);
}

/* A pattern that makes a backtracking matcher exponential on a long name:
 * the DFA matcher gives the right answer (no match), not a budget refusal. */
static void test_no_exponential_backtracking(void)
{
    srv_topic_regex *r = accepted("(a|aa)*(a|aa)*(a|aa)*(a|aa)*[bc]");
    char name[250];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S(name)), 0);
    name[sizeof(name) - 2] = 'c';
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S(name)), 1);
    srv_topic_regex_free(r);
    /* Many live states at once (a counted repeat): still answered. */
    r = accepted("[a-z]{0,1000}b");
    name[sizeof(name) - 2] = 'b';
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S(name)), 1);
    name[sizeof(name) - 2] = 'a';
    CU_ASSERT_EQUAL(srv_topic_regex_match(r, S(name)), 0);
    srv_topic_regex_free(r);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("topic_regex", NULL, NULL);
    CU_add_test(s, "refused_like_kafka", test_refused_like_kafka);
    CU_add_test(s, "pcre_only_constructs", test_pcre_only_constructs);
    CU_add_test(s, "accepted", test_accepted);
    CU_add_test(s, "whole_name", test_whole_name);
    CU_add_test(s, "no_exponential_backtracking", test_no_exponential_backtracking);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};

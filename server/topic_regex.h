/*
 * topic_regex.h — the regular expressions of KIP-848 regex subscriptions
 * (ConsumerGroupHeartbeat SubscribedTopicRegex) in Kafka's dialect, RE2/J:
 * which patterns are refused (with RE2/J's description of why) and whether a
 * topic name matches one as a whole (Java's Matcher.matches()).
 *
 * Kafka compiles the pattern with RE2/J; kbroker checks the RE2 syntax itself
 * and runs what passes on PCRE2's DFA matcher with a bounded match. docs/design.md,
 * "Regex subscriptions", lists where the two still differ.
 *
 * Owns: the dialect's rules and the compiled form. Must not: log, allocate
 * per match beyond PCRE2's match data, or change a compiled pattern (it may
 * be shared read-only by matches on one thread).
 */
#ifndef SRV_TOPIC_REGEX_H
#define SRV_TOPIC_REGEX_H

#include <stddef.h>

#include "wire.h"

/* Budget of one match (pcre2_set_match_limit) and the DFA matcher's
 * workspace (ints, on the stack). Topic names are at most 249 bytes. */
#define SRV_TOPIC_REGEX_MATCH_LIMIT   100000
#define SRV_TOPIC_REGEX_DFA_WORKSPACE 2048
/* Kafka's (RE2's) largest repeat count in {n,m}. */
#define SRV_TOPIC_REGEX_MAX_REPEAT 1000

typedef struct srv_topic_regex srv_topic_regex;

/* RE2/J's description of what is wrong with pattern (the text Kafka puts
 * after "is not a valid regular expression: "), or NULL when RE2/J would
 * accept it. */
const char *srv_topic_regex_check(kp_str pattern);

/* Compiles a pattern that srv_topic_regex_check accepted. NULL with *why
 * set (RE2/J's description when the pattern is refused, "out of memory"
 * otherwise). */
srv_topic_regex *srv_topic_regex_compile(kp_str pattern, const char **why);
void srv_topic_regex_free(srv_topic_regex *r);

/* 1 when name matches the whole pattern, 0 when not, -1 when the match ran
 * out of its budget (counts as no match). A DFA match as RE2's: time linear
 * in the name's length times the pattern's size; a pattern with more live
 * states than the workspace holds falls back to backtracking under the
 * match limit. */
int srv_topic_regex_match(const srv_topic_regex *r, kp_str name);

#endif

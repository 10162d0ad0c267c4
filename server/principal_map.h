/*
 * principal_map.h — ssl.principal.mapping.rules: Kafka's rules that turn
 * the RFC 2253 subject DN of a client certificate into a principal name.
 *
 * Owns: parsing the rule list with Kafka's syntax and messages
 * (`RULE:pattern/replacement/[LU]`, `DEFAULT`, comma separated, evaluated in
 * order) and applying it to a DN. Patterns are compiled with PCRE2, the
 * closest C engine to java.util.regex (lazy quantifiers, the same escapes).
 * Must not: read files, log, or keep mutable state after parsing: one parsed
 * map is read by every shard at once.
 */
#ifndef SRV_PRINCIPAL_MAP_H
#define SRV_PRINCIPAL_MAP_H

#include <stddef.h>

typedef struct srv_pmap srv_pmap;

/* Parses `rules` (len bytes). NULL with Kafka's message in err when a rule is
 * invalid, e.g. "Invalid rule: `RULE:a/b/X`, unmatched substring: `X`".
 * An empty or all-blank text means DEFAULT, as Kafka's default value. */
srv_pmap *srv_pmap_parse(const char *rules, size_t len, char *err, size_t errlen);

/* The name the first applicable rule gives `dn` (dnlen bytes), written to
 * out with its length in *outlen. Returns 0; -1 when no rule applies (Kafka
 * fails the authentication then) or the result does not fit in cap bytes. */
int srv_pmap_apply(const srv_pmap *m, const char *dn, size_t dnlen, char *out, size_t cap, size_t *outlen);

/* Number of rules kept (empty rules are dropped, as Kafka does). */
int srv_pmap_count(const srv_pmap *m);

void srv_pmap_free(srv_pmap *m);

#endif

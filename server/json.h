/*
 * json.h — a strict, bounded JSON (RFC 8259) reader for the small documents
 * authentication handles: JWT headers and claim sets, JWKS files.
 *
 * Owns: parsing text of explicit length into a flat array of nodes the
 * caller provides (no allocation), string unescaping, member lookup and
 * number conversion. Must not: allocate, recurse deeper than the caller's
 * bound, accept what RFC 8259 forbids (trailing commas, leading zeros,
 * control characters or bad escapes in strings, invalid UTF-8, text after
 * the value) or an object with the same member name twice (jose4j, which
 * Kafka's validator uses, refuses those too).
 */
#ifndef SRV_JSON_H
#define SRV_JSON_H

#include <stddef.h>
#include <stdint.h>

enum srv_json_type {
    SRV_JSON_NULL,
    SRV_JSON_FALSE,
    SRV_JSON_TRUE,
    SRV_JSON_NUM,
    SRV_JSON_STR,
    SRV_JSON_ARR,
    SRV_JSON_OBJ
};

/* One value. Strings point at their raw text between the quotes (escapes
 * still in); arrays and objects list their children through first/next
 * (an object's children alternate: key string, value). */
typedef struct srv_json_node {
    uint8_t type;
    const char *p; /* strings: raw text inside the quotes; numbers: the literal */
    size_t len;
    int first; /* index of the first child, -1 if none */
    int next;  /* index of the next sibling, -1 if last */
    int count; /* children: elements, or members for objects */
} srv_json_node;

typedef struct srv_json {
    srv_json_node *n;
    int count, cap;
} srv_json;

/* Parses text[0..len) into nodes[0..cap) (node 0 is the root). Returns 0,
 * or -1 with a reason in err. */
int srv_json_parse(srv_json *doc, srv_json_node *nodes, int cap, int max_depth, const char *text, size_t len,
                   char *err, size_t errlen);

/* The value of member `key` (klen bytes) of object node `obj`, -1 if absent. */
int srv_json_get(const srv_json *doc, int obj, const char *key, size_t klen);

/* Unescapes string node i into out (UTF-8, not NUL-terminated past *outlen
 * unless room remains). Returns 0, or -1 when it does not fit in cap. */
int srv_json_str(const srv_json *doc, int i, char *out, size_t cap, size_t *outlen);

/* A number node as an integer: fractions are truncated toward zero (JWT
 * NumericDate may carry them). Returns 0, or -1 when not a number or out of
 * int64 range. */
int srv_json_i64(const srv_json *doc, int i, int64_t *v);

#endif

/*
 * sstr.h — heap copies of protocol strings that keep their length.
 *
 * Kafka strings are length-prefixed and may hold any byte, NUL included; a
 * char * copy measured with strlen() lost everything after a NUL (commit
 * metadata "Hello\0world!" came back as "Hello", group "a\0b" was group
 * "a"). An sstr is a char * to the bytes, with its length stored just
 * before them and a NUL just after (for code that needs a C string, never
 * for the length), so long-lived state can keep its char * fields.
 *
 * Owns: that layout, and the one plain heap copy of a protocol string
 * (srv_cdup, for state that is a C string by contract). Must not: be mixed
 * with malloc'd strings: create with srv_sdup*, free with srv_sfree, measure
 * with srv_slen / srv_s (each asserts it was given an sstr). Copies into a
 * request's arena are kafka-proto's (kp_arena_str).
 */
#ifndef SRV_SSTR_H
#define SRV_SSTR_H

#include <stdint.h>

#include "wire.h"

/* A copy of s; NULL when s is null (len < 0) or out of memory. */
char *srv_sdup(kp_str s);
/* A copy of a C string literal or other NUL-free text. */
char *srv_sdupz(const char *z);
/* A copy of an sstr (NULL stays NULL). */
char *srv_sdupc(const char *s);
void srv_sfree(char *s);
/* Not an sstr: a malloc'd copy of s with a NUL after it (free with free()),
 * for state read as a C string whose bytes were checked to hold no NUL
 * (topic names, topic config text). NULL when s is null or out of memory. */
char *srv_cdup(kp_str s);
int32_t srv_slen(const char *s); /* s not NULL */
/* The sstr as a kp_str (not copied); NULL is the null string. */
kp_str srv_s(const char *s);
/* a and the sstr s hold the same bytes (NULL equals only the null string). */
int srv_seq(kp_str a, const char *s);
/* Byte order of two sstrs, shorter first on a common prefix (as Java's
 * String.compareTo for ASCII); both not NULL. */
int srv_scmp(const char *a, const char *b);

/* Two protocol strings hold the same bytes (null equals only null). */
int srv_str_same(kp_str a, kp_str b);

/* A request's name at its index, for srv_str_mark_dups. */
typedef struct srv_str_idx {
    kp_str s;
    int32_t i;
} srv_str_idx;
/* Sorts v[0..n-1] by bytes and, for every name that occurs more than once,
 * sets dup[] of its first index to 1 and of its later ones to 2 (dup, zeroed
 * by the caller, has room for every index). Sorting, not comparing each
 * pair: a request may name thousands of topics. */
void srv_str_mark_dups(srv_str_idx *v, int32_t n, uint8_t *dup);

/* For log lines: printf("%.*s", SRV_SP(s)) prints every byte of the sstr s
 * ("(null)" for NULL). Embedded NULs still end the output there; log lines
 * only show them, answers never come from them. */
#define SRV_SP(s) (int)((s) ? srv_slen(s) : 6), ((s) ? (s) : "(null)")

#endif

/*
 * test_envelope.c — the Envelope a follower of the metadata quorum sends to
 * the active controller (srv_envelope_encode, quorum.c): the inner request
 * carried byte for byte, the caller in Kafka's DefaultKafkaPrincipalBuilder
 * form (int16 version 0, then DefaultPrincipalData v0: compact type, compact
 * name, token flag, no tagged fields), the client's address as its 4 or 16
 * bytes, and refusals of what is no address.
 *
 * Owns: nothing outside the process. Must not: start raft, shards or disk.
 */
#include <string.h>

#include "frame.h"
#include "kb_test.h"
#include "quorum.h"

static int decode(const kp_writer *w, kp_arena *a, kp_request *kr)
{
    if (w->len < 4)
        return -1;
    return kp_request_decode(w->buf + 4, w->len - 4, a, kr);
}

static void test_envelope_carries_request_principal_and_address(void)
{
    static const uint8_t inner[] = {0, 19, 0, 7, 0, 0, 0, 42, 0, 1, 'x', 0, 1, 2, 3};
    kp_writer w;
    kp_writer_init(&w, 64);
    CU_ASSERT_EQUAL_FATAL(srv_envelope_encode(&w, inner, sizeof(inner), "User:alice", "10.1.2.3"), 0);
    kp_arena a;
    kp_arena_init(&a, 4096);
    kp_request kr;
    CU_ASSERT_EQUAL_FATAL(decode(&w, &a, &kr), 0);
    CU_ASSERT_EQUAL(kr.hdr.request_api_key, KP_API_ENVELOPE);
    CU_ASSERT_EQUAL(kr.hdr.request_api_version, 0);
    const kp_envelope_request *er = kr.body;
    CU_ASSERT_EQUAL_FATAL(er->request_data.len, (int32_t)sizeof(inner));
    CU_ASSERT_EQUAL(memcmp(er->request_data.p, inner, sizeof(inner)), 0);
    static const uint8_t principal[] = {0, 0, 5, 'U', 's', 'e', 'r', 6, 'a', 'l', 'i', 'c', 'e', 0, 0};
    CU_ASSERT_EQUAL_FATAL(er->request_principal.len, (int32_t)sizeof(principal));
    CU_ASSERT_EQUAL(memcmp(er->request_principal.p, principal, sizeof(principal)), 0);
    static const uint8_t ip[] = {10, 1, 2, 3};
    CU_ASSERT_EQUAL_FATAL(er->client_host_address.len, 4);
    CU_ASSERT_EQUAL(memcmp(er->client_host_address.p, ip, 4), 0);
    kp_arena_reset(&a);
    kp_writer_free(&w);
}

static void test_envelope_ipv6_and_other_principal_types(void)
{
    static const uint8_t inner[] = {0, 20, 0, 6, 0, 0, 0, 1, 0, 0, 0};
    kp_writer w;
    kp_writer_init(&w, 64);
    /* A name may hold colons: only the first one ends the type. */
    CU_ASSERT_EQUAL_FATAL(srv_envelope_encode(&w, inner, sizeof(inner), "Group:a:b", "::1"), 0);
    kp_arena a;
    kp_arena_init(&a, 4096);
    kp_request kr;
    CU_ASSERT_EQUAL_FATAL(decode(&w, &a, &kr), 0);
    const kp_envelope_request *er = kr.body;
    static const uint8_t principal[] = {0, 0, 6, 'G', 'r', 'o', 'u', 'p', 4, 'a', ':', 'b', 0, 0};
    CU_ASSERT_EQUAL_FATAL(er->request_principal.len, (int32_t)sizeof(principal));
    CU_ASSERT_EQUAL(memcmp(er->request_principal.p, principal, sizeof(principal)), 0);
    CU_ASSERT_EQUAL_FATAL(er->client_host_address.len, 16);
    CU_ASSERT_EQUAL(er->client_host_address.p[15], 1);
    kp_arena_reset(&a);
    kp_writer_free(&w);
}

static void test_envelope_refuses_what_is_no_address(void)
{
    static const uint8_t inner[] = {0, 19, 0, 7, 0, 0, 0, 1, 0, 0, 0};
    kp_writer w;
    kp_writer_init(&w, 64);
    CU_ASSERT_EQUAL(srv_envelope_encode(&w, inner, sizeof(inner), "User:alice", ""), -1);
    CU_ASSERT_EQUAL(srv_envelope_encode(&w, inner, sizeof(inner), "User:alice", "kafka-1"), -1);
    CU_ASSERT_EQUAL(srv_envelope_encode(&w, inner, sizeof(inner), "User:alice", "/10.0.0.1"), -1);
    kp_writer_free(&w);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("envelope", NULL, NULL);
    CU_add_test(s, "carries the request, the principal and the address",
                test_envelope_carries_request_principal_and_address);
    CU_add_test(s, "IPv6 and other principal types", test_envelope_ipv6_and_other_principal_types);
    CU_add_test(s, "refuses what is no address", test_envelope_refuses_what_is_no_address);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

/*
 * test_crc32c.c — CRC-32C against published vectors, and the hardware path
 * against the portable one.
 *
 * Owns: only tests of crc32c.c. Must not: depend on the CPU having SSE4.2
 * (the hardware comparison still runs, through the dispatcher, without it).
 */
#include "batch.h"

#include "kb_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void test_known_vectors(void)
{
    CU_ASSERT_EQUAL(kp_crc32c(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(kp_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(kp_crc32c(0, "", 0), 0u);
    CU_ASSERT_EQUAL(kp_crc32c(0, NULL, 0), 0u);

    /* RFC 3720 (iSCSI) appendix B.4 test patterns. */
    uint8_t buf[48];
    memset(buf, 0, 32);
    CU_ASSERT_EQUAL(kp_crc32c(0, buf, 32), 0x8A9136AAu);
    CU_ASSERT_EQUAL(kp_crc32c_sw(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    CU_ASSERT_EQUAL(kp_crc32c(0, buf, 32), 0x62A8AB43u);
    CU_ASSERT_EQUAL(kp_crc32c_sw(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    CU_ASSERT_EQUAL(kp_crc32c(0, buf, 32), 0x46DD794Eu);
    CU_ASSERT_EQUAL(kp_crc32c_sw(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    CU_ASSERT_EQUAL(kp_crc32c(0, buf, 32), 0x113FDB5Cu);
    CU_ASSERT_EQUAL(kp_crc32c_sw(0, buf, 32), 0x113FDB5Cu);

    /* iSCSI SCSI Read (10) command PDU from the same appendix. */
    static const uint8_t pdu[48] = {0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                                    0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    CU_ASSERT_EQUAL(kp_crc32c(0, pdu, sizeof(pdu)), 0xD9963A56u);
    CU_ASSERT_EQUAL(kp_crc32c_sw(0, pdu, sizeof(pdu)), 0xD9963A56u);
}

static void test_running_value(void)
{
    /* Feeding the buffer in pieces must equal one call over the whole. */
    const char *s = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = kp_crc32c(0, s, n);
    CU_ASSERT_EQUAL(whole, 0x22620404u);
    for (size_t cut = 0; cut <= n; cut++) {
        CU_ASSERT_EQUAL(kp_crc32c(kp_crc32c(0, s, cut), s + cut, n - cut), whole);
        CU_ASSERT_EQUAL(kp_crc32c_sw(kp_crc32c_sw(0, s, cut), s + cut, n - cut), whole);
    }
}

static void test_hw_equals_sw(void)
{
    printf("\n  hardware CRC-32C: %s\n", kp_crc32c_hw_available() ? "yes" : "no");
    size_t cap = 70000;
    uint8_t *buf = malloc(cap + 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (size_t i = 0; i < cap + 16; i++)
        buf[i] = (uint8_t)rng();
    /* Every length through a few words, then random ones, at every
     * alignment: the hardware path has head, body and tail loops. */
    for (size_t len = 0; len < 300; len++)
        for (size_t align = 0; align < 16; align++)
            CU_ASSERT_EQUAL(kp_crc32c(0, buf + align, len), kp_crc32c_sw(0, buf + align, len));
    /* Around the three-stream block sizes of the hardware path. */
    static const size_t edges[] = {767,   768,   769,   775,   776,   1536, 24575,
                                   24576, 24577, 24583, 25344, 49152, 50000};
    for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++)
        for (size_t align = 0; align < 9; align++)
            CU_ASSERT_EQUAL(kp_crc32c(0, buf + align, edges[e]), kp_crc32c_sw(0, buf + align, edges[e]));
    for (int i = 0; i < 500; i++) {
        size_t len = rng() % cap;
        size_t align = rng() % 16;
        uint32_t seed = rng();
        CU_ASSERT_EQUAL(kp_crc32c(seed, buf + align, len), kp_crc32c_sw(seed, buf + align, len));
    }
    free(buf);
}

static void test_detects_single_bit_flips(void)
{
    uint8_t buf[256];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rng();
    uint32_t good = kp_crc32c(0, buf, sizeof(buf));
    for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CU_ASSERT_NOT_EQUAL(kp_crc32c(0, buf, sizeof(buf)), good);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("crc32c", NULL, NULL);
    CU_add_test(s, "known vectors", test_known_vectors);
    CU_add_test(s, "running value", test_running_value);
    CU_add_test(s, "hw equals sw", test_hw_equals_sw);
    CU_add_test(s, "single bit flips", test_detects_single_bit_flips);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

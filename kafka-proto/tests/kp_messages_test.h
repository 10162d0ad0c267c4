/*
 * kp_messages_test.h — test-only helpers generated beside the codecs
 * (kp_messages_test.c): populate a message for a version and compare two.
 * Never linked into the broker.
 */
#ifndef KP_MESSAGES_TEST_H
#define KP_MESSAGES_TEST_H

#include "kp_messages.h"

/* Fill every field that `version` carries with non-default values derived
 * from seed; memory comes from the arena. */
void kp_test_fill(const kp_msg_desc *d, void *o, kp_arena *a, int16_t version, uint32_t seed);
/* 1 when both messages hold the same values in every field. */
int kp_test_equal(const kp_msg_desc *d, const void *x, const void *y);

#endif

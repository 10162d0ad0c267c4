/*
 * kb_test.h — the contract between a CUnit test file and the shared main()
 * (tests/cunit_main.c): the file defines kb_test_program, which registers its
 * suites and, for tests that need one, starts and stops what the whole
 * program shares (a broker process).
 *
 * Owns the test program description. Must not be included by the broker,
 * storage or kafka-proto libraries.
 */
#ifndef KB_TEST_H
#define KB_TEST_H

#include <CUnit/Basic.h>

struct kb_test_program {
    /* Adds the file's suites and tests to the CUnit registry; a failed
     * CU_add_suite/CU_add_test is caught by the main through CU_get_error(). */
    void (*register_suites)(void);
    /* Optional: runs once before the first test, only when the filter leaves
     * at least one test to run; non-zero means the program fails unrun. */
    int (*setup)(void);
    /* Optional: runs once after the tests, also after a failed setup. */
    void (*teardown)(void);
};

/* Defined by each test file. */
extern const struct kb_test_program kb_test_program;

#endif

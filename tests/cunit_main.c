/*
 * cunit_main.c — the one main() of every CUnit test program: registers the
 * program's suites (kb_test_program), keeps only the tests the filter names,
 * runs them and exits non-zero on any failure (assertion, test, suite set-up,
 * registration).
 *
 * Filter: KB_TEST_FILTER=substring, or the first argument; it is matched
 * against "suite/test", so a suite name selects all its tests.
 * KB_TEST_EXCLUDE=substring then drops the tests it matches (a build that
 * cannot meet a test's premise, see storage/CMakeLists.txt).
 *
 * Owns the run policy of the unit and wire test programs. Must not hold any
 * test: test files only register suites.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"

/* Activates the tests whose "suite/test" contains filter and not exclude, and
 * returns how many remain; a suite left without tests is deactivated so its
 * set-up (temp dirs, io_uring rings) does not run for nothing. */
static unsigned apply_filter(const char *filter, const char *exclude)
{
    unsigned active = 0;
    CU_pTestRegistry reg = CU_get_registry();
    for (CU_pSuite s = reg->pSuite; s; s = s->pNext) {
        unsigned in_suite = 0;
        for (CU_pTest t = s->pTest; t; t = t->pNext) {
            char name[512];
            snprintf(name, sizeof(name), "%s/%s", s->pName, t->pName);
            int keep = !filter || !filter[0] || strstr(name, filter) != NULL;
            if (exclude && exclude[0] && strstr(name, exclude) != NULL)
                keep = 0;
            CU_set_test_active(t, keep ? CU_TRUE : CU_FALSE);
            in_suite += keep ? 1u : 0u;
        }
        CU_set_suite_active(s, in_suite ? CU_TRUE : CU_FALSE);
        active += in_suite;
    }
    return active;
}

int main(int argc, char **argv)
{
    /* Tests write to sockets and pipes of processes they kill: a dead peer must
     * fail one test, not end the program. */
    signal(SIGPIPE, SIG_IGN);
    const char *filter = argc > 1 ? argv[1] : getenv("KB_TEST_FILTER");

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: cannot initialize the registry\n");
        return 2;
    }
    kb_test_program.register_suites();
    if (CU_get_error() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: registering the tests failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    /* Filtered-out tests are skipped, not failures. */
    CU_set_fail_on_inactive(CU_FALSE);
    unsigned active = apply_filter(filter, getenv("KB_TEST_EXCLUDE"));
    if (active == 0) {
        printf("no test matches the filter \"%s\"\n", filter ? filter : "");
        CU_cleanup_registry();
        return 0;
    }

    int status = 0;
    if (kb_test_program.setup && kb_test_program.setup() != 0) {
        fprintf(stderr, "test set-up failed\n");
        status = 1;
    } else {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        if (CU_get_number_of_failures() || CU_get_number_of_tests_failed() ||
            CU_get_number_of_suites_failed())
            status = 1;
    }
    if (kb_test_program.teardown)
        kb_test_program.teardown();
    CU_cleanup_registry();
    return status;
}

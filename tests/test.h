/*
 * Minimal assertion kit for unit tests: one line per check, a closing
 * "N passed, N failed" line, and the exit code (0 only when nothing failed).
 */
#ifndef PAY_TESTS_TEST_H
#define PAY_TESTS_TEST_H

#include <stdio.h>
#include <string.h>

static int t_passed, t_failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            t_passed++;                                                      \
        } else {                                                             \
            t_failed++;                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                      \
            printf(__VA_ARGS__);                                             \
            printf("  [%s]\n", #cond);                                       \
        }                                                                    \
    } while (0)

#define CHECK_STR(got, want, ...)                                            \
    do {                                                                     \
        const char *g_ = (got), *w_ = (want);                                \
        int ok_ = (g_ == NULL && w_ == NULL) ||                              \
                  (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0);         \
        CHECK(ok_, __VA_ARGS__);                                             \
        if (!ok_)                                                            \
            printf("     got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)",     \
                   w_ ? w_ : "(null)");                                      \
    } while (0)

#define TEST_DONE()                                                          \
    (printf("%d passed, %d failed\n", t_passed, t_failed),                   \
     (t_failed == 0 && t_passed > 0) ? 0 : 1)

#endif

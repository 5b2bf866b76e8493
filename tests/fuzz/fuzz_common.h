/*
 * Shared bits of the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * - FUZZ_CHECK: an invariant that must hold for every input. A violation
 *   prints what failed and aborts, which libFuzzer reports as a crash and
 *   saves as crash-<sha1> (see README.md, "Turning a finding into a
 *   regression input").
 * - fuzz_arena(): the one static arena of a harness, created on first use.
 *   Every harness resets it at the end of each iteration (as the worker
 *   does at the end of each request), so memory that escapes the arena is
 *   reported by LeakSanitizer. The fuzzing build (CMake PAY_FUZZ=ON)
 *   compiles the project with PAY_ARENA_DEBUG, so every arena allocation
 *   is its own malloc and ASan sees overflows and use-after-reset exactly.
 * - ref_utf8_valid(): an independent strict UTF-8 checker written from the
 *   Unicode table (D92), used as an oracle against app/text.c.
 */
#ifndef PAY_TESTS_FUZZ_COMMON_H
#define PAY_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define FUZZ_CHECK(cond, ...)                                                \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "\nFUZZ INVARIANT FAILED %s:%d: %s\n  ",          \
                    __FILE__, __LINE__, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            abort();                                                         \
        }                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline struct arena *
fuzz_arena(void)
{
    static struct arena *a;
    if (a == NULL)
        a = arena_create(16 * 1024);
    return a;
}

/* A NUL-terminated arena copy of data[0..n) (cut at the first NUL byte,
 * as any C-string API would see it). */
static inline char *
fuzz_cstr(struct arena *a, const uint8_t *data, size_t n)
{
    const void *nul = memchr(data, '\0', n);
    if (nul != NULL)
        n = (size_t)((const uint8_t *)nul - data);
    return arena_strndup(a, (const char *)data, n);
}

/*
 * Strict UTF-8 by the well-formed byte sequence table of Unicode 15, ch. 3,
 * table 3-7 (no NUL byte either, as the app requires).
 */
static inline int
ref_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned b0 = s[i];
        if (b0 == 0)
            return 0;
        if (b0 <= 0x7F) {
            i++;
            continue;
        }
        unsigned lo = 0x80, hi = 0xBF;
        size_t   len;
        if (b0 >= 0xC2 && b0 <= 0xDF)
            len = 2;
        else if (b0 == 0xE0)
            len = 3, lo = 0xA0;
        else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF)
            len = 3;
        else if (b0 == 0xED)
            len = 3, hi = 0x9F;
        else if (b0 == 0xF0)
            len = 4, lo = 0x90;
        else if (b0 >= 0xF1 && b0 <= 0xF3)
            len = 4;
        else if (b0 == 0xF4)
            len = 4, hi = 0x8F;
        else
            return 0;
        if (n - i < len)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += len;
    }
    return 1;
}

/* 1 if the NUL-terminated s is valid UTF-8 (the "valid C string" check). */
static inline int
ref_cstr_utf8(const char *s)
{
    return s != NULL && ref_utf8_valid((const unsigned char *)s, strlen(s));
}

/* 1 if s contains no C0/C1 control, DEL, quote or backslash (UTF-8 assumed
 * valid): what text_echo promises. */
static inline int
ref_echo_safe(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; u[i] != '\0'; i++) {
        if (u[i] < 0x20 || u[i] == 0x7F || u[i] == '"' || u[i] == '\'' ||
            u[i] == '\\')
            return 0;
        /* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8 */
        if (u[i] == 0xC2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F)
            return 0;
    }
    return 1;
}

#endif
